/*
 * async_future: a one-shot completion, the common currency of libasync
 * (DNS, connect, user code). Modelled on asyncio.Future and nng's aio.
 *
 * States: PENDING -> DONE (a value) | FAILED (an error code) | CANCELLED.
 * A future completes exactly once.
 *
 * References: whoever creates a future (or receives one from an API call)
 * holds one reference to it; async_future_retain() takes another (a
 * binding's clone, a second consumer). Each is dropped once, with either:
 * - async_future_release(): drops the reference. It never cancels while
 *   another reference remains; dropping the last reference of a pending
 *   future cancels it (nothing could complete it or read its outcome).
 * - async_future_free(): async_future_cancel(), then
 *   async_future_release(): a pending future is cancelled even when other
 *   references remain.
 * The memory is released once no reference remains and every scheduled
 * done callback has run. Until then the future counts as a live object of
 * its loop: async_loop_free() returns ASYNC_EBUSY while a reference to any
 * future, completed or not, is held. Any of these calls may come anywhere
 * on the loop thread, including inside the future's own done callback.
 * Calls that need a reference (retain, release, free, add_callback, the
 * combinators, async_loop_run_until) return ASYNC_EINVAL once none is
 * left; the others answer while the memory is there (e.g. inside a done
 * callback scheduled before the last release). One more release than
 * retains is refused (ASYNC_EINVAL) while the memory is there; after that
 * the memory is gone and any call is a use after free, undefined as in any
 * C library.
 *
 * Done callbacks always run through call_soon, in registration order, also
 * when added to a future that is already done; each runs exactly once (with
 * ASYNC_ECANCELED when cancelled) and is the final notification for its
 * userdata.
 *
 * Producer side: async_future_new(), async_future_set_cancel() to hear about
 * cancellation, then async_future_resolve() or async_future_reject().
 */
#ifndef ASYNC_FUTURE_H
#define ASYNC_FUTURE_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

enum async_future_state {
  ASYNC_FUTURE_PENDING = 0,
  ASYNC_FUTURE_DONE = 1,
  ASYNC_FUTURE_FAILED = 2,
  ASYNC_FUTURE_CANCELLED = 3,
  ASYNC_FUTURE_STATE_FORCE32 = 0x7FFFFFFF
};

/*
 * status: 0 (DONE), the error code (FAILED) or ASYNC_ECANCELED (CANCELLED).
 * The future is readable during the call (async_future_result()).
 */
typedef void (*async_future_fn)(async_future *future, int status, void *userdata);

/*
 * Producer hook, called exactly once: with cancelled = 1 inside
 * async_future_cancel()/async_future_free() of a pending future, or the
 * async_future_release() of its last reference (stop the operation now;
 * the future is already CANCELLED, do not complete it), or with
 * cancelled = 0 inside async_future_resolve()/reject() (release only).
 */
typedef void (*async_cancel_fn)(async_future *future, int cancelled, void *userdata);

/*
 * Destroys a resolved value once its future is released: value and the
 * context given to async_future_resolve() with it (so a binding needs no
 * global state to find its runtime). Runs from the loop, on an iteration
 * after the release, never inside a call into the library.
 */
typedef void (*async_destroy_fn)(void *value, void *context);

/*
 * Creates a pending future bound to loop (its callbacks run there).
 * Loop thread only. Errors: ASYNC_EINVAL, ASYNC_ENOMEM.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_future_new(async_future **out, async_loop *loop);

/*
 * Cancels the future if pending, then drops the caller's reference (see
 * References above): async_future_cancel() + async_future_release().
 * Errors: ASYNC_EINVAL (not a future, or no reference left).
 * Callbacks: May run, when the future is pending, its cancel hook (cancelled =
 * 1) inside this call, and for an all/any/timeout future the cancel hooks of
 * its pending inputs; done callbacks are queued and a value's destroy function
 * is deferred (a cancelled connect's release too).
 */
ASYNC_API int async_future_free(async_future *future);

/*
 * The future's loop (borrowed), or NULL for an invalid future.
 * Callbacks: none run inside this call.
 */
ASYNC_API async_loop *async_future_loop(async_future *future);

/*
 * The state (enum async_future_state), or ASYNC_EINVAL. Loop thread only.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_future_get_state(async_future *future);

/*
 * Reads the outcome. DONE: *out_value = the value (borrowed, owned by the
 * future), returns 0. FAILED: returns the error. CANCELLED: returns
 * ASYNC_ECANCELED. PENDING: returns ASYNC_ESTATE. out_value may be NULL.
 * Errors: ASYNC_EINVAL.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_future_result(void **out_value, async_future *future);

/*
 * Schedules cb(future, status, userdata) to run once the future is
 * complete (on a later iteration if it already is).
 * Errors: ASYNC_EINVAL (cb NULL), ASYNC_ENOMEM.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_future_add_callback(async_future *future, async_future_fn cb, void *userdata);

/*
 * Cancels a pending future: state CANCELLED, the producer's cancel hook runs
 * now, done callbacks are scheduled with ASYNC_ECANCELED. Returns 1 if
 * cancelled, 0 if it was already complete. Errors: ASYNC_EINVAL.
 * Callbacks: May run the future's cancel hook (cancelled = 1) inside this call,
 * and for an all/any/timeout future the cancel hooks of its pending inputs;
 * done callbacks are queued (a cancelled connect's release too).
 */
ASYNC_API int async_future_cancel(async_future *future);

/*
 * Producer: installs the cancel hook (replacing none: once only).
 * Errors: ASYNC_EINVAL (cancel NULL), ASYNC_ESTATE (already set or not pending).
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_future_set_cancel(async_future *future, async_cancel_fn cancel, void *userdata);

/*
 * Producer: completes the future with value. destroy (may be NULL) is called
 * as destroy(value, context) once the future is released (freed by its
 * owner and its callbacks run): from the ready queue, on a later iteration,
 * never inside async_future_free() or any other call; async_loop_free()
 * returns ASYNC_EBUSY until it has run. It is the final notification for
 * value and context. On failure, value and context stay the caller's and
 * destroy is never called.
 * Errors: ASYNC_EINVAL, ASYNC_ESTATE (already complete, cancelled included),
 * ASYNC_ENOMEM (no room to queue destroy later).
 * Callbacks: May run the future's cancel hook (cancelled = 0) inside this
 * call; done callbacks are queued.
 */
ASYNC_API int async_future_resolve(async_future *future, void *value, async_destroy_fn destroy, void *context);

/*
 * Producer: fails the future with error (a negative code).
 * Errors: ASYNC_EINVAL (error >= 0), ASYNC_ESTATE (already complete).
 * Callbacks: May run the future's cancel hook (cancelled = 0) inside this call;
 * done callbacks are queued.
 */
ASYNC_API int async_future_reject(async_future *future, int error);

/*
 * A future that is DONE (value NULL) when all futures are DONE, or FAILED
 * with the status of the first one that fails or is cancelled; the others
 * are not cancelled then (asyncio.gather). Cancelling it cancels every
 * pending input. count 0 gives a future that is already DONE (its
 * callbacks still run on a later iteration). The
 * inputs stay owned by the caller (free them when convenient; freeing a
 * pending input cancels it). All futures must belong to loop.
 * Errors: ASYNC_EINVAL, ASYNC_ENOMEM.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_future_all(async_future **out, async_loop *loop, async_future *const *futures, size_t count);

/*
 * A future that is DONE as soon as one of futures completes (whatever its
 * outcome); its value is that input (an async_future *, borrowed). The
 * others are not cancelled (asyncio.wait FIRST_COMPLETED). Cancelling it
 * cancels every pending input. count must be > 0.
 * Errors: ASYNC_EINVAL, ASYNC_ENOMEM.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_future_any(async_future **out, async_loop *loop, async_future *const *futures, size_t count);

/*
 * A future that completes like future (DONE with its value, borrowed, or
 * FAILED/CANCELLED with its status) unless timeout_ms pass first: then
 * future is cancelled and the result FAILS with ASYNC_ETIMEDOUT
 * (asyncio.wait_for). Cancelling the result cancels future.
 * Errors: ASYNC_EINVAL, ASYNC_ENOMEM.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_future_timeout(async_future **out, async_future *future, uint64_t timeout_ms);

/*
 * Runs the loop until future is complete and returns its status (0, the
 * error, or ASYNC_ECANCELED). The synchronous wrapper over the async API.
 * Errors: ASYNC_EINVAL, ASYNC_EBUSY (loop already running), ASYNC_ENOMEM
 * (registering its completion callback failed), ASYNC_ESTATE (the loop ran
 * out of work or was stopped before the future completed).
 * Callbacks: Any callback of the loop runs inside this call (it runs the loop).
 */
ASYNC_API int async_loop_run_until(async_loop *loop, async_future *future);

/*
 * Takes another reference to future (see References above).
 * Errors: ASYNC_EINVAL (not a future, or no reference left: a future whose
 * last reference was dropped cannot be taken back), ASYNC_ERANGE
 * (2^32 - 1 references held already: none taken). Loop thread only.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_future_retain(async_future *future);

/*
 * Drops one reference (see References above). Never cancels while another
 * reference remains; the last reference of a pending future cancels it.
 * When no reference and no scheduled callback remains, the memory (and
 * the value, through its destructor) is released inside this call.
 * Errors: ASYNC_EINVAL (not a future, or no reference left).
 * Loop thread only. Callbacks: the producer's cancel hook when the last
 * reference of a pending future goes; done callbacks run on a later
 * iteration, and so does the value's destroy function when the memory goes.
 */
ASYNC_API int async_future_release(async_future *future);

#ifdef __cplusplus
}
#endif

#endif
