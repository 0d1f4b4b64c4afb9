/*
 * async_timer: one-shot and repeating timers on the loop's monotonic clock.
 *
 * - Never early: a timer fires when at least timeout_ms have elapsed since
 *   async_timer_start() (measured from a fresh clock read at start).
 * - Timers due in the same iteration fire by deadline, equal deadlines in
 *   start order.
 * - A repeating timer stays active during its callback and is re-armed when
 *   the callback returns, repeat_ms after its scheduled expiry (with the
 *   repeat value the callback may have changed; 0 makes this the last call);
 *   if that is already past, it is re-armed from now, so an overdue timer
 *   fires once, never in a catch-up burst. A one-shot timer is inactive
 *   during its callback.
 * - Huge values saturate (UINT64_MAX means "practically never").
 */
#ifndef ASYNC_TIMER_H
#define ASYNC_TIMER_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef void (*async_timer_fn)(async_timer *timer, void *userdata);

/*
 * Creates a stopped timer. userdata is passed to its callbacks and to its
 * close callback (the final notification). Close with async_handle_close().
 * Loop thread only. Errors: ASYNC_EINVAL, ASYNC_ENOMEM, ASYNC_ECLOSED.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_timer_new(async_timer **out, async_loop *loop, void *userdata);

/*
 * The timer as a handle (same object), or NULL if timer is not a timer.
 * Callbacks: none run inside this call.
 */
ASYNC_API async_handle *async_timer_handle(async_timer *timer);

/*
 * (Re)starts the timer: cb fires after timeout_ms, then every repeat_ms if
 * repeat_ms > 0. Restarting replaces timeout, repeat and callback. A 0 ms
 * timer fires on the next iteration, never inside this call.
 * Errors: ASYNC_EINVAL (cb NULL), ASYNC_ECLOSED, ASYNC_ENOMEM.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_timer_start(async_timer *timer, uint64_t timeout_ms, uint64_t repeat_ms, async_timer_fn cb);

/*
 * Stops the timer; a no-op if it is not active. Errors: ASYNC_EINVAL,
 * ASYNC_ECLOSED.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_timer_stop(async_timer *timer);

/*
 * Restarts the timer with timeout = repeat (the remembered repeat value);
 * stops it if repeat is 0. Errors: ASYNC_EINVAL, ASYNC_ECLOSED,
 * ASYNC_ESTATE (never started: no callback known).
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_timer_again(async_timer *timer);

/*
 * Sets the repeat interval; applies at the next expiry (or again()).
 * Errors: ASYNC_EINVAL, ASYNC_ECLOSED.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_timer_set_repeat(async_timer *timer, uint64_t repeat_ms);

/*
 * Reads the repeat interval. Errors: ASYNC_EINVAL.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_timer_get_repeat(uint64_t *out_ms, async_timer *timer);

/*
 * Milliseconds until the timer fires (rounded up; 0 if due or not active),
 * from a fresh clock. Errors: ASYNC_EINVAL.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_timer_due_in(uint64_t *out_ms, async_timer *timer);

#ifdef __cplusplus
}
#endif

#endif
