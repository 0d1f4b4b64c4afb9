/**
 * @file
 * @brief async_watcher: readiness of a file descriptor the user owns.
 *
 * Level-triggered: the callback runs on every iteration while the fd stays
 * ready. Events can be changed at any time with async_watcher_set_events()
 * without re-creating the watcher. The fd stays the user's: stop or close
 * the watcher before closing the fd.
 *
 * A watcher is a handle (async/handle.h): close it with
 * async_handle_close().
 */
#ifndef ASYNC_WATCHER_H
#define ASYNC_WATCHER_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** @brief Event flag (a bit of a uint32_t set): the fd is readable. */
#define ASYNC_READABLE 1u
/** @brief Event flag (a bit of a uint32_t set): the fd is writable. */
#define ASYNC_WRITABLE 2u

/**
 * @brief A watcher's callback, run from inside async_loop_run() while the fd
 * is ready.
 *
 * @param watcher  the watcher; the callback may change, stop or close it.
 * @param revents  the ready subset of the watched events (an error or
 *                 hang-up reports both; under the select backend, what
 *                 select(2) reports: a pipe's hang-up is ASYNC_READABLE
 *                 alone, see async_loop_new()).
 * @param userdata the watcher's userdata.
 */
typedef void (*async_watcher_fn)(async_watcher *watcher, uint32_t revents, void *userdata);

/**
 * @brief Creates a stopped watcher for fd.
 *
 * @param[out] out      receives the watcher.
 * @param      loop     the loop the watcher runs on.
 * @param      fd       an open file descriptor.
 * @param      userdata passed to the watcher's callbacks and to its close
 *                      callback (the final notification); may be NULL.
 * @retval 0            *out is the new watcher.
 * @retval ASYNC_EINVAL out is NULL, loop is NULL or not a loop, fd < 0.
 * @retval ASYNC_EBADF  fd is not open.
 * @retval ASYNC_ENOMEM out of memory.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership The watcher is the caller's: close it with
 *            async_handle_close() (the loop cannot be freed before). fd
 *            stays the caller's: the watcher never closes it.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_watcher_new(async_watcher **out, async_loop *loop, int fd, void *userdata);

/**
 * @brief The watcher as a handle (the same object).
 *
 * A cast, not a use: the owner-thread check does not apply (the handle
 * call that follows checks the thread).
 *
 * @param watcher the watcher (closing ones too).
 * @return the handle, or NULL if watcher is NULL or not a watcher.
 * @ownership The same object: nothing changes hands.
 * @thread Any thread.
 * @callbacks None run inside this call.
 */
ASYNC_API async_handle *async_watcher_handle(async_watcher *watcher);

/**
 * @brief Starts watching events with cb.
 *
 * Starting an active watcher replaces its events and callback.
 *
 * @param watcher the watcher.
 * @param events  ASYNC_READABLE, ASYNC_WRITABLE or both (not 0).
 * @param cb      the callback, with the watcher's userdata.
 * @retval 0             watching.
 * @retval ASYNC_EINVAL  cb is NULL, events is 0 or has unknown bits;
 *                       watcher is NULL or not a watcher.
 * @retval ASYNC_ECLOSED the watcher is closing.
 * @retval ASYNC_EBADF   the fd was closed behind the watcher's back.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call; cb runs from inside
 *            async_loop_run().
 */
ASYNC_API int async_watcher_start(async_watcher *watcher, uint32_t events, async_watcher_fn cb);

/**
 * @brief Changes the watched events of a started or stopped watcher; 0
 * stops it.
 *
 * A stopped watcher given non-zero events starts again with the callback
 * of its last start.
 *
 * @param watcher the watcher.
 * @param events  ASYNC_READABLE, ASYNC_WRITABLE, both, or 0.
 * @retval 0             changed.
 * @retval ASYNC_EINVAL  events has unknown bits; watcher is NULL or not a
 *                       watcher.
 * @retval ASYNC_ECLOSED the watcher is closing.
 * @retval ASYNC_ESTATE  events is not 0 and the watcher was never started
 *                       (no callback known).
 * @retval ASYNC_EBADF   the fd was closed behind the watcher's back.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_watcher_set_events(async_watcher *watcher, uint32_t events);

/**
 * @brief Stops watching; a no-op if stopped.
 *
 * @param watcher the watcher.
 * @retval 0             stopped.
 * @retval ASYNC_EINVAL  watcher is NULL or not a watcher.
 * @retval ASYNC_ECLOSED the watcher is closing.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_watcher_stop(async_watcher *watcher);

/**
 * @brief The watched file descriptor.
 *
 * @param watcher the watcher (closing ones too).
 * @return the fd (>= 0), or a negative code:
 * @retval ASYNC_EINVAL       watcher is NULL or not a watcher.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership The fd stays the caller's.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_watcher_fd(async_watcher *watcher);

#ifdef __cplusplus
}
#endif

#endif
