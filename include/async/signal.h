/*
 * async_signal: POSIX signals delivered as loop callbacks.
 *
 * A signal number can be watched by one loop at a time (process-wide
 * registry): starting a watcher for a signal another loop watches fails with
 * ASYNC_EBUSY. Several watchers of one loop may watch the same signal; each
 * gets every delivery. The library installs a handler only while a watcher
 * for that signal is active, and restores the previous disposition when the
 * last one stops. Callbacks run through the loop's ready queue, in order
 * with call_soon callbacks; a delivery pending when the watcher stops or
 * closes is dropped. Several deliveries between two iterations may coalesce.
 */
#ifndef ASYNC_SIGNAL_H
#define ASYNC_SIGNAL_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef void (*async_signal_fn)(async_signal *signal, int signum, void *userdata);

/*
 * Creates a stopped signal watcher. Loop thread only.
 * Errors: ASYNC_EINVAL, ASYNC_ENOMEM.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_signal_new(async_signal **out, async_loop *loop, void *userdata);

/*
 * The signal watcher as a handle (same object), or NULL if not a signal
 * watcher.
 * Callbacks: none run inside this call.
 */
ASYNC_API async_handle *async_signal_handle(async_signal *signal);

/*
 * Starts watching signum (restarting with another signum is allowed).
 * Needs no file descriptor (signals reach the loop through its eventfd),
 * so it works with none free.
 * Errors: ASYNC_EINVAL (cb NULL; signum out of range, SIGKILL or SIGSTOP),
 * ASYNC_EBUSY (another loop watches signum), ASYNC_ECLOSED, ASYNC_ENOMEM.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_signal_start(async_signal *signal, int signum, async_signal_fn cb);

/*
 * Stops watching; a no-op if stopped. Errors: ASYNC_EINVAL, ASYNC_ECLOSED.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_signal_stop(async_signal *signal);

/*
 * The watched signal number (0 if stopped), or ASYNC_EINVAL.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_signal_signum(async_signal *signal);

#ifdef __cplusplus
}
#endif

#endif
