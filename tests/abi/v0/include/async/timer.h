/**
 * @file
 * @brief async_timer: one-shot and repeating timers on the loop's monotonic
 * clock.
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
 *
 * A timer is a handle (async/handle.h): close it with async_handle_close().
 */
#ifndef ASYNC_TIMER_H
#define ASYNC_TIMER_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @brief A timer's callback, run from inside async_loop_run() when the timer
 * expires.
 *
 * @param timer    the timer; the callback may stop, restart or close it.
 * @param userdata the timer's userdata.
 */
typedef void (*async_timer_fn)(async_timer *timer, void *userdata);

/**
 * @brief Creates a stopped timer.
 *
 * @param[out] out      receives the timer.
 * @param      loop     the loop the timer runs on.
 * @param      userdata passed to the timer's callbacks and to its close
 *                      callback (the final notification); may be NULL.
 * @retval 0            *out is the new timer.
 * @retval ASYNC_EINVAL out is NULL, loop is NULL or not a loop.
 * @retval ASYNC_ENOMEM out of memory.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership The timer is the caller's: close it with async_handle_close()
 *            (the loop cannot be freed before). userdata stays the
 *            caller's.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_timer_new(async_timer **out, async_loop *loop, void *userdata);

/**
 * @brief The timer as a handle (the same object).
 *
 * A cast, not a use: the owner-thread check does not apply (the handle
 * call that follows checks the thread).
 *
 * @param timer the timer (closing ones too).
 * @return the handle, or NULL if timer is NULL or not a timer.
 * @ownership The same object: nothing changes hands.
 * @thread Any thread.
 * @callbacks None run inside this call.
 */
ASYNC_API async_handle *async_timer_handle(async_timer *timer);

/**
 * @brief (Re)starts the timer: cb fires after timeout_ms, then every
 * repeat_ms if repeat_ms > 0.
 *
 * Restarting an active timer replaces its timeout, repeat and callback.
 * A 0 ms timer fires on the next iteration, never inside this call.
 *
 * @param timer      the timer.
 * @param timeout_ms milliseconds until the first expiry.
 * @param repeat_ms  the interval after that; 0 for a one-shot timer.
 * @param cb         the callback, with the timer's userdata.
 * @retval 0             started.
 * @retval ASYNC_EINVAL  cb is NULL; timer is NULL or not a timer.
 * @retval ASYNC_ECLOSED the timer is closing.
 * @retval ASYNC_ENOMEM  out of memory (the timer is stopped).
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call; cb runs from inside
 *            async_loop_run().
 */
ASYNC_API int async_timer_start(async_timer *timer, uint64_t timeout_ms, uint64_t repeat_ms, async_timer_fn cb);

/**
 * @brief Stops the timer; a no-op if it is not active.
 *
 * @param timer the timer.
 * @retval 0             stopped.
 * @retval ASYNC_EINVAL  timer is NULL or not a timer.
 * @retval ASYNC_ECLOSED the timer is closing.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_timer_stop(async_timer *timer);

/**
 * @brief Restarts the timer with timeout = repeat (the remembered repeat
 * value), with the callback of the last start; stops it if the repeat is 0.
 *
 * The idle-timeout pattern: each call pushes the expiry repeat_ms into the
 * future.
 *
 * @param timer the timer.
 * @retval 0             restarted (or stopped, for a repeat of 0).
 * @retval ASYNC_EINVAL  timer is NULL or not a timer.
 * @retval ASYNC_ECLOSED the timer is closing.
 * @retval ASYNC_ESTATE  never started: no callback known.
 * @retval ASYNC_ENOMEM  out of memory (the timer is stopped).
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_timer_again(async_timer *timer);

/**
 * @brief Sets the repeat interval; it applies at the next expiry (or the
 * next async_timer_again()).
 *
 * @param timer     the timer.
 * @param repeat_ms the new interval; 0 makes the next expiry the last.
 * @retval 0             set.
 * @retval ASYNC_EINVAL  timer is NULL or not a timer.
 * @retval ASYNC_ECLOSED the timer is closing.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_timer_set_repeat(async_timer *timer, uint64_t repeat_ms);

/**
 * @brief Reads the repeat interval.
 *
 * @param[out] out_ms receives the interval in milliseconds.
 * @param      timer  the timer (closing ones too).
 * @retval 0            *out_ms is set.
 * @retval ASYNC_EINVAL out_ms is NULL; timer is NULL or not a timer.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_timer_get_repeat(uint64_t *out_ms, async_timer *timer);

/**
 * @brief Milliseconds until the timer fires, from a fresh clock read.
 *
 * @param[out] out_ms receives the time, rounded up; 0 if the timer is due
 *                    or not active.
 * @param      timer  the timer (closing ones too).
 * @retval 0            *out_ms is set.
 * @retval ASYNC_EINVAL out_ms is NULL; timer is NULL or not a timer.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_timer_due_in(uint64_t *out_ms, async_timer *timer);

#ifdef __cplusplus
}
#endif

#endif
