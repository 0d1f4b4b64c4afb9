/*
 * async_handle: what every long-lived object (timer, watcher, hook, signal)
 * is. A pointer to any handle type converts to async_handle * either with
 * a plain C cast or with its async_<type>_handle() function; the handle
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

/* Called once the handle is closed; handle is still readable during the call. */
typedef void (*async_close_fn)(async_handle *handle, void *userdata);

/*
 * Stops the handle and schedules close_cb(handle, userdata) (close_cb may be
 * NULL). Every call that starts, stops or changes the handle returns
 * ASYNC_ECLOSED after this; queries (is_active, is_closing, userdata,
 * get_repeat, due_in, fd, signum, kind) and set_userdata keep working
 * until the close callback has returned.
 * Loop thread only. Errors: ASYNC_EINVAL (not a handle), ASYNC_ECLOSED
 * (already closing).
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_handle_close(async_handle *handle, async_close_fn close_cb);

/*
 * Referenced handles (the default) keep async_loop_run(DEFAULT) running while
 * active; unreferenced ones do not. Idempotent.
 * Errors: ASYNC_EINVAL, ASYNC_ECLOSED.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_handle_ref(async_handle *handle);
ASYNC_API int async_handle_unref(async_handle *handle);

/*
 * 1 if referenced, 0 if not, or ASYNC_EINVAL.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_handle_has_ref(async_handle *handle);

/*
 * 1 if started (a timer pending, a watcher watching, ...), 0 if not, or
 * ASYNC_EINVAL.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_handle_is_active(async_handle *handle);

/*
 * 1 if async_handle_close() was called, 0 if not, or ASYNC_EINVAL.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_handle_is_closing(async_handle *handle);

/*
 * The handle's loop (borrowed), or NULL if handle is not a handle.
 * Callbacks: none run inside this call.
 */
ASYNC_API async_loop *async_handle_loop(async_handle *handle);

/*
 * The userdata given at creation or by set_userdata; passed to every
 * callback of the handle and to its close callback. Not owned by the library.
 * get returns NULL for an invalid handle.
 * Callbacks: none run inside this call.
 */
ASYNC_API void *async_handle_userdata(async_handle *handle);
ASYNC_API int async_handle_set_userdata(async_handle *handle, void *userdata);

#ifdef __cplusplus
}
#endif

#endif
