/**
 * @file
 * @brief async_handle: what every long-lived object (timer, watcher, hook,
 * signal, server) is.
 *
 * A pointer to any handle type converts to async_handle * either with a
 * plain C cast or with its async_<type>_handle() function; the handle
 * functions check the object's kind and state at run time.
 *
 * Lifetime: a handle lives until async_handle_close(); its close callback
 * runs on a later loop iteration, after the completions of its pending
 * operations, and the memory is released right after it returns. Closing a
 * handle inside its own callback is safe. The close callback is the final
 * notification for the handle's userdata.
 */
#ifndef ASYNC_HANDLE_H
#define ASYNC_HANDLE_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @brief Called once the handle is closed: the final notification for its
 * userdata.
 *
 * @param handle   the closed handle, still readable during the call (its
 *                 memory is released when the callback returns).
 * @param userdata the handle's userdata.
 */
typedef void (*async_close_fn)(async_handle *handle, void *userdata);

/**
 * @brief Closes a handle: stops it and schedules its close callback.
 *
 * Every call that starts, stops or changes the handle returns
 * ASYNC_ECLOSED after this; queries (is_active, is_closing, userdata,
 * get_repeat, due_in, fd, signum, kind) and set_userdata keep working
 * until the close callback has returned. Completions of operations the
 * stop ends are queued first and run before the close callback.
 *
 * @param handle   a timer, watcher, hook, signal or server.
 * @param close_cb called as close_cb(handle, userdata) on a later
 *                 iteration; may be NULL.
 * @retval 0             the close callback is scheduled.
 * @retval ASYNC_EINVAL  handle is NULL or not a handle.
 * @retval ASYNC_ECLOSED the handle is closing already.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership The library releases the handle's memory right after close_cb
 *            returns (or on that iteration when close_cb is NULL); the
 *            pointer must not be used after that.
 * @thread The loop's thread only.
 * @callbacks None run inside this call; close_cb runs on a later iteration,
 *            from inside async_loop_run().
 */
ASYNC_API int async_handle_close(async_handle *handle, async_close_fn close_cb);

/**
 * @brief Makes the handle keep async_loop_run(ASYNC_RUN_DEFAULT) running
 * while it is active (the default).
 *
 * Idempotent.
 *
 * @param handle the handle.
 * @retval 0             referenced.
 * @retval ASYNC_EINVAL  handle is NULL or not a handle.
 * @retval ASYNC_ECLOSED the handle is closing.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_handle_ref(async_handle *handle);

/**
 * @brief Stops the handle from keeping async_loop_run(ASYNC_RUN_DEFAULT)
 * running; it still works while the loop runs for other reasons.
 *
 * Idempotent.
 *
 * @param handle the handle.
 * @retval 0             unreferenced.
 * @retval ASYNC_EINVAL  handle is NULL or not a handle.
 * @retval ASYNC_ECLOSED the handle is closing.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_handle_unref(async_handle *handle);

/**
 * @brief Tells whether the handle is referenced.
 *
 * @param handle the handle (closing ones too).
 * @retval 1            referenced.
 * @retval 0            unreferenced.
 * @retval ASYNC_EINVAL handle is NULL or not a handle.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_handle_has_ref(async_handle *handle);

/**
 * @brief Tells whether the handle is started (a timer pending, a watcher
 * watching, a server listening, ...).
 *
 * @param handle the handle (closing ones too: they are inactive).
 * @retval 1            active.
 * @retval 0            not active.
 * @retval ASYNC_EINVAL handle is NULL or not a handle.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_handle_is_active(async_handle *handle);

/**
 * @brief Tells whether async_handle_close() was called on the handle.
 *
 * @param handle the handle.
 * @retval 1            closing (its close callback has not returned yet).
 * @retval 0            open.
 * @retval ASYNC_EINVAL handle is NULL or not a handle.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_handle_is_closing(async_handle *handle);

/**
 * @brief The loop the handle belongs to.
 *
 * @param handle the handle (closing ones too).
 * @return the loop, or NULL if handle is NULL or not a handle, or the
 *         owner-thread check refuses the caller.
 * @ownership The loop is borrowed: it stays the caller's.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API async_loop *async_handle_loop(async_handle *handle);

/**
 * @brief The handle's userdata: the one given at creation or by
 * async_handle_set_userdata().
 *
 * It is passed to every callback of the handle and to its close callback.
 *
 * @param handle the handle (closing ones too).
 * @return the userdata, or NULL if handle is NULL or not a handle, or
 *         the owner-thread check refuses the caller.
 * @ownership The userdata is not owned by the library.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API void *async_handle_userdata(async_handle *handle);

/**
 * @brief Replaces the handle's userdata.
 *
 * The new userdata is the one the handle's later callbacks and its close
 * callback get; the old one gets no notification from the library any
 * more. Allowed while the handle is closing, until its close callback.
 *
 * @param handle   the handle.
 * @param userdata the new userdata (may be NULL).
 * @retval 0            replaced.
 * @retval ASYNC_EINVAL handle is NULL or not a handle.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership The userdata is not owned by the library.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_handle_set_userdata(async_handle *handle, void *userdata);

#ifdef __cplusplus
}
#endif

#endif
