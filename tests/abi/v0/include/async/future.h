/**
 * @file
 * @brief async_future: a one-shot completion, the common currency of
 * libasync (DNS, connect, user code). Modelled on asyncio.Future and nng's
 * aio.
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
 *
 * The memory is released once no reference remains and every scheduled
 * done callback has run. Until then the future counts as a live object of
 * its loop: async_loop_free() returns ASYNC_EBUSY while a reference to any
 * future, completed or not, is held. Any of these calls may come anywhere
 * on the loop thread, including inside the future's own done callback.
 * Calls that need a reference (retain, release, free, add_callback, the
 * combinators, async_loop_run_until()) return ASYNC_EINVAL once none is
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
 * Producer side: async_future_new(), async_future_set_cancel() to hear
 * about cancellation, then async_future_resolve() or async_future_reject().
 *
 * Threads: every function here is for the loop's thread only. With the
 * owner-thread check on (async_loop_set_thread_check()), a call from
 * another thread returns ASYNC_EWRONGTHREAD (NULL for async_future_loop())
 * and changes nothing.
 */
#ifndef ASYNC_FUTURE_H
#define ASYNC_FUTURE_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** @brief A future's state (async_future_get_state()). */
enum async_future_state {
  ASYNC_FUTURE_PENDING = 0,   /**< not complete yet */
  ASYNC_FUTURE_DONE = 1,      /**< completed with a value (async_future_resolve()) */
  ASYNC_FUTURE_FAILED = 2,    /**< completed with an error code (async_future_reject()) */
  ASYNC_FUTURE_CANCELLED = 3, /**< cancelled (async_future_cancel(), or its last reference dropped while pending) */
  ASYNC_FUTURE_STATE_FORCE32 = 0x7FFFFFFF /**< keeps the enum 32 bits wide; not a state */
};

/**
 * @brief A done callback (async_future_add_callback()), run from the loop
 * once the future is complete.
 *
 * The future is readable during the call (async_future_result()).
 *
 * @param future   the future.
 * @param status   0 (DONE), the error code (FAILED) or ASYNC_ECANCELED
 *                 (CANCELLED).
 * @param userdata the userdata given with the callback.
 */
typedef void (*async_future_fn)(async_future *future, int status, void *userdata);

/**
 * @brief Producer hook (async_future_set_cancel()), called exactly once.
 *
 * With cancelled = 1 inside async_future_cancel() / async_future_free() of
 * a pending future, or the async_future_release() of its last reference
 * (stop the operation now; the future is already CANCELLED, do not
 * complete it); with cancelled = 0 inside async_future_resolve() /
 * async_future_reject() (release only).
 *
 * @param future    the future.
 * @param cancelled 1 when the future was cancelled, 0 when it completed.
 * @param userdata  the userdata given to async_future_set_cancel().
 */
typedef void (*async_cancel_fn)(async_future *future, int cancelled, void *userdata);

/**
 * @brief Destroys a resolved value once its future is released.
 *
 * Runs from the loop, on an iteration after the release, never inside a
 * call into the library.
 *
 * @param value   the value given to async_future_resolve().
 * @param context the context given to async_future_resolve() with it (so a
 *                binding needs no global state to find its runtime).
 */
typedef void (*async_destroy_fn)(void *value, void *context);

/**
 * @brief Creates a pending future bound to loop (its callbacks run there).
 *
 * @param[out] out  receives the future.
 * @param      loop the loop.
 * @retval 0                  *out is the new future.
 * @retval ASYNC_EINVAL       out is NULL; loop is NULL or not a loop.
 * @retval ASYNC_ENOMEM       out of memory.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership The caller holds the future's one reference: drop it with
 *            async_future_free() or async_future_release().
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_future_new(async_future **out, async_loop *loop);

/**
 * @brief Cancels the future if pending, then drops the caller's reference:
 * async_future_cancel() + async_future_release().
 *
 * @param future the future.
 * @retval 0                  done.
 * @retval ASYNC_EINVAL       future is NULL, not a future, or has no
 *                            reference left.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership Drops one reference (see References above); the memory goes
 *            once none is left and the done callbacks have run.
 * @thread The loop's thread only.
 * @callbacks May run, when the future is pending, its cancel hook
 *            (cancelled = 1) inside this call, and for an all/any/timeout
 *            future the cancel hooks of its pending inputs; done callbacks
 *            are queued and a value's destroy function is deferred (a
 *            cancelled connect's release too).
 */
ASYNC_API int async_future_free(async_future *future);

/**
 * @brief The future's loop.
 *
 * @param future the future (with or without a reference left, while its
 *               memory is there).
 * @return the loop, or NULL if future is NULL or not a future, or the
 *         owner-thread check refuses the caller.
 * @ownership Borrowed: the loop stays its owner's.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API async_loop *async_future_loop(async_future *future);

/**
 * @brief The future's state.
 *
 * @param future the future.
 * @return an enum async_future_state, or a negative code:
 * @retval ASYNC_EINVAL       future is NULL or not a future.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_future_get_state(async_future *future);

/**
 * @brief Reads the outcome.
 *
 * @param[out] out_value receives the value when the future is DONE; may be
 *                       NULL.
 * @param      future    the future.
 * @retval 0                  DONE: *out_value is the value.
 * @retval ASYNC_ECANCELED    CANCELLED.
 * @retval ASYNC_ESTATE       PENDING.
 * @retval ASYNC_EINVAL       future is NULL or not a future.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @return for a FAILED future, its error code (any negative code,
 *         async_future_reject()).
 * @ownership The value is borrowed, owned by the future: valid until the
 *            future's memory goes.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_future_result(void **out_value, async_future *future);

/**
 * @brief Schedules cb(future, status, userdata) to run once the future is
 * complete (on a later iteration if it already is).
 *
 * @param future   the future.
 * @param cb       the done callback.
 * @param userdata passed to cb; may be NULL.
 * @retval 0                  added.
 * @retval ASYNC_EINVAL       cb is NULL; future is NULL, not a future, or
 *                            has no reference left.
 * @retval ASYNC_ENOMEM       out of memory (nothing added).
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership userdata stays the caller's; cb, run exactly once, is its
 *            final notification.
 * @thread The loop's thread only.
 * @callbacks None run inside this call; cb runs from inside
 *            async_loop_run().
 */
ASYNC_API int async_future_add_callback(async_future *future, async_future_fn cb, void *userdata);

/**
 * @brief Cancels a pending future.
 *
 * State CANCELLED, the producer's cancel hook runs now, done callbacks are
 * scheduled with ASYNC_ECANCELED.
 *
 * @param future the future (with or without a reference left, while its
 *               memory is there).
 * @retval 1                  cancelled.
 * @retval 0                  it was already complete.
 * @retval ASYNC_EINVAL       future is NULL or not a future.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks May run the future's cancel hook (cancelled = 1) inside this
 *            call, and for an all/any/timeout future the cancel hooks of
 *            its pending inputs; done callbacks are queued (a cancelled
 *            connect's release too).
 */
ASYNC_API int async_future_cancel(async_future *future);

/**
 * @brief Producer: installs the cancel hook (replacing none: once only).
 *
 * @param future   the future.
 * @param cancel   the hook, called exactly once (async_cancel_fn).
 * @param userdata passed to cancel; may be NULL.
 * @retval 0                  installed.
 * @retval ASYNC_EINVAL       cancel is NULL; future is NULL or not a
 *                            future.
 * @retval ASYNC_ESTATE       a hook is set already, or the future is not
 *                            pending.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership userdata stays the caller's; cancel is its final
 *            notification.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_future_set_cancel(async_future *future, async_cancel_fn cancel, void *userdata);

/**
 * @brief Producer: completes the future with value.
 *
 * destroy is called as destroy(value, context) once the future is
 * released (freed by its owner and its callbacks run): from the ready
 * queue, on a later iteration, never inside async_future_free() or any
 * other call; async_loop_free() returns ASYNC_EBUSY until it has run.
 *
 * @param future  the future.
 * @param value   the value; may be NULL.
 * @param destroy destroys value once the future is released; may be NULL.
 * @param context passed to destroy with value; may be NULL.
 * @retval 0                  resolved.
 * @retval ASYNC_EINVAL       future is NULL or not a future.
 * @retval ASYNC_ESTATE       already complete (cancelled included).
 * @retval ASYNC_ENOMEM       no room to queue destroy later (only with a
 *                            destroy function).
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership On success value and context belong to the future: destroy
 *            is their final notification. On failure they stay the
 *            caller's and destroy is never called.
 * @thread The loop's thread only.
 * @callbacks May run the future's cancel hook (cancelled = 0) inside this
 *            call; done callbacks are queued.
 */
ASYNC_API int async_future_resolve(async_future *future, void *value, async_destroy_fn destroy, void *context);

/**
 * @brief Producer: fails the future with error.
 *
 * @param future the future.
 * @param error  a negative code, the status the done callbacks get.
 * @retval 0                  rejected.
 * @retval ASYNC_EINVAL       error >= 0; future is NULL or not a future.
 * @retval ASYNC_ESTATE       already complete (cancelled included).
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks May run the future's cancel hook (cancelled = 0) inside this
 *            call; done callbacks are queued.
 */
ASYNC_API int async_future_reject(async_future *future, int error);

/**
 * @brief A future that is DONE (value NULL) when all futures are DONE, or
 * FAILED with the status of the first one that fails or is cancelled
 * (asyncio.gather).
 *
 * The others are not cancelled then. Cancelling the result cancels every
 * pending input. count 0 gives a future that is already DONE (its
 * callbacks still run on a later iteration).
 *
 * @param[out] out     receives the result future.
 * @param      loop    the loop; every input must belong to it.
 * @param      futures the inputs; may be NULL when count is 0.
 * @param      count   the number of inputs.
 * @retval 0                  *out is the new future.
 * @retval ASYNC_EINVAL       out is NULL; loop is NULL or not a loop;
 *                            futures is NULL with count > 0; an input is
 *                            not a future, has no reference left or
 *                            belongs to another loop.
 * @retval ASYNC_ENOMEM       out of memory (no future made).
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership The caller holds the result's one reference. The inputs stay
 *            owned by the caller (free them when convenient; freeing a
 *            pending input cancels it); the result keeps its own hold on
 *            them.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_future_all(async_future **out, async_loop *loop, async_future *const *futures, size_t count);

/**
 * @brief A future that is DONE as soon as one of futures completes
 * (whatever its outcome); its value is that input (asyncio.wait
 * FIRST_COMPLETED).
 *
 * The others are not cancelled. Cancelling the result cancels every
 * pending input.
 *
 * @param[out] out     receives the result future.
 * @param      loop    the loop; every input must belong to it.
 * @param      futures the inputs.
 * @param      count   the number of inputs; must be > 0.
 * @retval 0                  *out is the new future.
 * @retval ASYNC_EINVAL       count is 0; out is NULL; loop is NULL or not
 *                            a loop; futures is NULL; an input is not a
 *                            future, has no reference left or belongs to
 *                            another loop.
 * @retval ASYNC_ENOMEM       out of memory (no future made).
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership The caller holds the result's one reference. The inputs stay
 *            owned by the caller; the value (an async_future *) is
 *            borrowed.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_future_any(async_future **out, async_loop *loop, async_future *const *futures, size_t count);

/**
 * @brief A future that completes like future unless timeout_ms pass first
 * (asyncio.wait_for).
 *
 * It is DONE with future's value (borrowed), or FAILED/CANCELLED with its
 * status; if timeout_ms pass first, future is cancelled and the result
 * FAILS with ASYNC_ETIMEDOUT. Cancelling the result cancels future.
 *
 * @param[out] out        receives the result future, on future's loop.
 * @param      future     the input.
 * @param      timeout_ms the time limit in milliseconds.
 * @retval 0                  *out is the new future.
 * @retval ASYNC_EINVAL       out is NULL; future is NULL, not a future, or
 *                            has no reference left.
 * @retval ASYNC_ENOMEM       out of memory (no future made).
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership The caller holds the result's one reference; future stays
 *            the caller's.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_future_timeout(async_future **out, async_future *future, uint64_t timeout_ms);

/**
 * @brief Runs the loop until future is complete and returns its status.
 *
 * The synchronous wrapper over the async API.
 *
 * @param loop   the loop.
 * @param future a future of loop.
 * @retval 0                  the future is DONE.
 * @retval ASYNC_ECANCELED    the future was cancelled.
 * @retval ASYNC_EINVAL       loop is NULL or not a loop; future is NULL,
 *                            not a future, has no reference left or
 *                            belongs to another loop.
 * @retval ASYNC_EBUSY        the loop is already running, or inside
 *                            async_loop_walk() or async_loop_shutdown().
 * @retval ASYNC_ENOMEM       registering its completion callback failed.
 * @retval ASYNC_ESTATE       the loop ran out of work or was stopped
 *                            before the future completed.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @return for a FAILED future, its error code.
 * @ownership Nothing changes hands: the caller's reference stays.
 * @thread The loop's thread only.
 * @callbacks Any callback of the loop runs inside this call (it runs the
 *            loop).
 */
ASYNC_API int async_loop_run_until(async_loop *loop, async_future *future);

/**
 * @brief Takes another reference to future (see References above).
 *
 * @param future the future.
 * @retval 0                  taken.
 * @retval ASYNC_EINVAL       future is NULL, not a future, or has no
 *                            reference left (a future whose last reference
 *                            was dropped cannot be taken back).
 * @retval ASYNC_ERANGE       2^32 - 1 references held already: none taken.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership The caller holds one more reference, to drop with
 *            async_future_release() or async_future_free().
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_future_retain(async_future *future);

/**
 * @brief Drops one reference (see References above).
 *
 * Never cancels while another reference remains; the last reference of a
 * pending future cancels it. When no reference and no scheduled callback
 * remains, the memory is released inside this call (the value's destroy
 * function is queued).
 *
 * @param future the future.
 * @retval 0                  dropped.
 * @retval ASYNC_EINVAL       future is NULL, not a future, or has no
 *                            reference left.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership Drops one reference.
 * @thread The loop's thread only.
 * @callbacks The producer's cancel hook (cancelled = 1) when the last
 *            reference of a pending future goes, and for an
 *            all/any/timeout future the cancel hooks of its pending
 *            inputs; done callbacks run on a later iteration, and so does
 *            the value's destroy function when the memory goes.
 */
ASYNC_API int async_future_release(async_future *future);

#ifdef __cplusplus
}
#endif

#endif
