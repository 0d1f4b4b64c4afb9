/*
 * async_watcher: readiness of a file descriptor the user owns.
 *
 * Level-triggered: the callback runs on every iteration while the fd stays
 * ready. Events can be changed at any time with async_watcher_set_events()
 * without re-creating the watcher. The fd stays the user's: stop or close
 * the watcher before closing the fd.
 */
#ifndef ASYNC_WATCHER_H
#define ASYNC_WATCHER_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Event flags (a uint32_t bit set). */
#define ASYNC_READABLE 1u
#define ASYNC_WRITABLE 2u

/*
 * revents: the ready subset of the watched events (an error or hang-up
 * reports both; under the select backend, what select(2) reports: a pipe's
 * hang-up is READABLE alone, see async_loop_new()).
 */
typedef void (*async_watcher_fn)(async_watcher *watcher, uint32_t revents, void *userdata);

/*
 * Creates a stopped watcher for fd. Close with async_handle_close().
 * Loop thread only. Errors: ASYNC_EINVAL (NULL, fd < 0), ASYNC_EBADF (fd
 * not open), ASYNC_ENOMEM.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_watcher_new(async_watcher **out, async_loop *loop, int fd, void *userdata);

/*
 * The watcher as a handle (same object), or NULL if not a watcher.
 * Callbacks: none run inside this call.
 */
ASYNC_API async_handle *async_watcher_handle(async_watcher *watcher);

/*
 * Starts watching events (ASYNC_READABLE | ASYNC_WRITABLE, non-zero) with cb.
 * Starting an active watcher replaces its events and callback.
 * Errors: ASYNC_EINVAL (cb NULL, events 0 or unknown bits), ASYNC_ECLOSED,
 * ASYNC_EBADF (fd closed behind the watcher's back).
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_watcher_start(async_watcher *watcher, uint32_t events, async_watcher_fn cb);

/*
 * Changes the watched events of a started or stopped watcher; 0 stops it.
 * Errors: ASYNC_EINVAL, ASYNC_ECLOSED, ASYNC_ESTATE (never started: no
 * callback), ASYNC_EBADF.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_watcher_set_events(async_watcher *watcher, uint32_t events);

/*
 * Stops watching; a no-op if stopped. Errors: ASYNC_EINVAL, ASYNC_ECLOSED.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_watcher_stop(async_watcher *watcher);

/*
 * The watched fd. Returns the fd (>= 0) or ASYNC_EINVAL.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_watcher_fd(async_watcher *watcher);

#ifdef __cplusplus
}
#endif

#endif
