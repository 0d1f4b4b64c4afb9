/**
 * @file
 * @brief async_signal: POSIX signals delivered as loop callbacks.
 *
 * A signal number can be watched by one loop at a time (process-wide
 * registry): starting a watcher for a signal another loop watches fails with
 * ASYNC_EBUSY. Several watchers of one loop may watch the same signal; each
 * gets every delivery. The library installs a handler only while a watcher
 * for that signal is active, and restores the previous disposition when the
 * last one stops. Callbacks run through the loop's ready queue, in order
 * with call_soon callbacks; a delivery pending when the watcher stops or
 * closes is dropped. Several deliveries between two iterations may coalesce.
 *
 * A signal watcher is a handle (async/handle.h): close it with
 * async_handle_close().
 */
#ifndef ASYNC_SIGNAL_H
#define ASYNC_SIGNAL_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @brief A signal watcher's callback, run from inside async_loop_run() after
 * the signal arrived.
 *
 * @param signal   the signal watcher; the callback may stop, restart or
 *                 close it.
 * @param signum   the signal number.
 * @param userdata the watcher's userdata.
 */
typedef void (*async_signal_fn)(async_signal *signal, int signum, void *userdata);

/**
 * @brief Creates a stopped signal watcher.
 *
 * @param[out] out      receives the signal watcher.
 * @param      loop     the loop the watcher runs on.
 * @param      userdata passed to the watcher's callbacks and to its close
 *                      callback (the final notification); may be NULL.
 * @retval 0            *out is the new signal watcher.
 * @retval ASYNC_EINVAL out is NULL, loop is NULL or not a loop.
 * @retval ASYNC_ENOMEM out of memory.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership The watcher is the caller's: close it with
 *            async_handle_close() (the loop cannot be freed before).
 *            userdata stays the caller's.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_signal_new(async_signal **out, async_loop *loop, void *userdata);

/**
 * @brief The signal watcher as a handle (the same object).
 *
 * A cast, not a use: the owner-thread check does not apply (the handle
 * call that follows checks the thread).
 *
 * @param signal the signal watcher (closing ones too).
 * @return the handle, or NULL if signal is NULL or not a signal watcher.
 * @ownership The same object: nothing changes hands.
 * @thread Any thread.
 * @callbacks None run inside this call.
 */
ASYNC_API async_handle *async_signal_handle(async_signal *signal);

/**
 * @brief Starts watching signum with cb.
 *
 * Restarting with another signum is allowed; restarting with the same one
 * only replaces the callback. Needs no file descriptor (signals reach the
 * loop through its eventfd), so it works with none free.
 *
 * @param signal the signal watcher.
 * @param signum the signal number (1 to NSIG - 1, not SIGKILL or SIGSTOP).
 * @param cb     the callback, with the watcher's userdata.
 * @retval 0             watching; the handler is installed.
 * @retval ASYNC_EINVAL  cb is NULL, signum out of range, SIGKILL or
 *                       SIGSTOP; signal is NULL or not a signal watcher.
 * @retval ASYNC_EBUSY   another loop watches signum (nothing changed).
 * @retval ASYNC_ECLOSED the watcher is closing.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call; cb runs from inside
 *            async_loop_run().
 */
ASYNC_API int async_signal_start(async_signal *signal, int signum, async_signal_fn cb);

/**
 * @brief Stops watching; a no-op if stopped.
 *
 * A delivery queued and not yet run is dropped. The previous disposition
 * of the signal is restored when the last watcher of it stops.
 *
 * @param signal the signal watcher.
 * @retval 0             stopped.
 * @retval ASYNC_EINVAL  signal is NULL or not a signal watcher.
 * @retval ASYNC_ECLOSED the watcher is closing.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_signal_stop(async_signal *signal);

/**
 * @brief The watched signal number.
 *
 * @param signal the signal watcher (closing ones too).
 * @return the signal number, 0 if the watcher is stopped, or a negative
 *         code:
 * @retval ASYNC_EINVAL       signal is NULL or not a signal watcher.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_signal_signum(async_signal *signal);

#ifdef __cplusplus
}
#endif

#endif
