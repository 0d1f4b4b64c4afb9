/*
 * async_loop: the event loop.
 *
 * One loop per thread. Scheduling follows asyncio (PEP 3156), made
 * stricter: call_soon callbacks run FIFO, never inside the call that
 * scheduled them; each iteration runs only the callbacks queued before it
 * began; timers never fire early and equal deadlines fire in start order.
 */
#ifndef ASYNC_LOOP_H
#define ASYNC_LOOP_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

enum async_run_mode {
  ASYNC_RUN_DEFAULT = 0, /* run until no referenced work is left or stopped */
  ASYNC_RUN_ONCE = 1,    /* one iteration; blocks until something happens */
  ASYNC_RUN_NOWAIT = 2,  /* one iteration; never blocks */
  ASYNC_RUN_MODE_FORCE32 = 0x7FFFFFFF
};

enum async_log_level {
  ASYNC_LOG_DEBUG = 0,
  ASYNC_LOG_INFO = 1,
  ASYNC_LOG_WARNING = 2,
  ASYNC_LOG_ERROR = 3,
  ASYNC_LOG_LEVEL_FORCE32 = 0x7FFFFFFF
};

enum async_metric {
  ASYNC_METRIC_ITERATIONS = 0, /* loop iterations run so far */
  ASYNC_METRIC_POLL_TIME = 1,  /* nanoseconds spent blocked in the poll syscall */
  ASYNC_METRIC_CALLBACKS = 2,  /* call_soon/post callbacks run so far */
  ASYNC_METRIC_FORCE32 = 0x7FFFFFFF
};

/*
 * Receives the loop's diagnostics (slow callbacks, internal warnings).
 * message is valid for the duration of the call only.
 */
typedef void (*async_log_fn)(async_loop *loop, int level, const char *message, void *userdata);

/*
 * Creates a loop. *out receives it; free it with async_loop_free().
 * The loop uses 2 file descriptors (epoll, and an eventfd for posts,
 * wakeups and signals), all opened here: once it exists, posting, waking
 * it and watching signals need no further fd.
 * LIBEV_FLAGS in the environment, read here, picks another readiness
 * backend for testing: 1 select, 2 poll, 4 epoll (a sum: the first of
 * epoll, poll, select that works; other bits are ignored). Unset, or
 * naming none of these, it is epoll; setuid and setgid programs ignore it.
 * Under select and poll the loop uses 1 file descriptor, and each poll
 * takes time in proportion to the descriptors watched.
 * Errors: ASYNC_EINVAL (out NULL), ASYNC_ENOMEM, ASYNC_EMFILE (fewer fds
 * free than the loop needs; nothing is left open, never an abort).
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_loop_new(async_loop **out);

/*
 * Frees the loop. Fails with ASYNC_EBUSY while handles are open (closing
 * ones included), transports have not ended (a retained one that has ended
 * does not count: async/stream.h, Lifetime), futures of the loop keep a
 * reference (async_future_free/_release) or a callback still to run,
 * callbacks are queued or posts are pending:
 * close and free them and run the loop until their callbacks have run,
 * then free. After success,
 * async_loop_post() on this pointer returns ASYNC_ECLOSED (as long as no new
 * loop reuses the address). Releases the log hook's userdata.
 * Errors: ASYNC_EINVAL, ASYNC_EBUSY (also when called from inside run).
 * Callbacks: May run the log hook's release(userdata) inside this call (when it
 * succeeds).
 */
ASYNC_API int async_loop_free(async_loop *loop);

/*
 * Runs the loop in the given mode (enum async_run_mode).
 * Returns 0 when no referenced work remains, 1 when work remains (the loop
 * was stopped, or ONCE/NOWAIT returned with work pending), or a negative
 * code: ASYNC_EINVAL (bad loop or mode), ASYNC_EBUSY (already running:
 * nested runs are rejected).
 * If async_loop_stop() was called before run, run performs one non-blocking
 * iteration (ready callbacks run) and returns (asyncio semantics).
 * Callbacks: Any callback of the loop runs inside this call (it runs the loop).
 */
ASYNC_API int async_loop_run(async_loop *loop, int mode);

/*
 * Asks the loop to return from async_loop_run() after the current iteration.
 * Outside run, the next run does one non-blocking iteration and returns.
 * Errors: ASYNC_EINVAL.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_loop_stop(async_loop *loop);

/*
 * Returns 1 if the loop has referenced active handles, closing handles or
 * queued callbacks, 0 if not, or ASYNC_EINVAL.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_loop_alive(async_loop *loop);

/*
 * Loop time in milliseconds on the monotonic clock, cached at the start of
 * each iteration. Errors: ASYNC_EINVAL.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_loop_now(uint64_t *out_ms, async_loop *loop);

/*
 * Refreshes the cached loop time from the clock. Errors: ASYNC_EINVAL.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_loop_now_update(async_loop *loop);

/*
 * How long the loop would block if it were polled now, in milliseconds:
 * 0 when callbacks are queued or the loop is stopping, the time until the
 * next timer (rounded up, computed from a fresh clock), or -1 when nothing
 * is scheduled. For hosts that drive the loop with ASYNC_RUN_NOWAIT.
 * Errors: ASYNC_EINVAL.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_loop_timeout(int64_t *out_ms, async_loop *loop);

/*
 * Queues cb(loop, userdata) to run on a later iteration, after every
 * callback queued before it (FIFO). The callback is userdata's final
 * notification; it always runs unless the call fails.
 * Loop thread only. Errors: ASYNC_EINVAL (NULL loop/cb), ASYNC_ENOMEM.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_loop_call_soon(async_loop *loop, async_callback cb, void *userdata);

/*
 * Thread-safe call_soon: queues cb(loop, userdata) from any thread and
 * wakes the loop. Callbacks posted from one thread run in posting order.
 * The callback is userdata's final notification. Safe to race with
 * async_loop_free(): a post to a freed loop returns ASYNC_ECLOSED.
 * Any thread. Errors: ASYNC_EINVAL, ASYNC_ECLOSED, ASYNC_ENOMEM.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_loop_post(async_loop *loop, async_callback cb, void *userdata);

/*
 * Wakes the loop if it is blocked in poll, without queueing anything.
 * Any thread. Errors: ASYNC_EINVAL, ASYNC_ECLOSED.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_loop_wakeup(async_loop *loop);

/*
 * Installs the log hook (NULL removes it). The previous hook's release
 * callback, if any, is called with its userdata. release(userdata) is
 * called when this hook is replaced or the loop is freed.
 * Loop thread only. Errors: ASYNC_EINVAL.
 * Callbacks: May run the previous hook's release(userdata) inside this call.
 */
ASYNC_API int async_loop_set_log(async_loop *loop, async_log_fn log, async_release_fn release, void *userdata);

/*
 * Reports every callback that runs longer than threshold_ms through the log
 * hook at ASYNC_LOG_WARNING (asyncio's slow_callback_duration). 0 disables
 * (the default). Loop thread only. Errors: ASYNC_EINVAL.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_loop_set_slow_callback(async_loop *loop, uint64_t threshold_ms);

/*
 * Reads one metric (enum async_metric) into *out.
 * Errors: ASYNC_EINVAL (NULL pointer or unknown metric).
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_loop_metric(uint64_t *out, async_loop *loop, int metric);

#ifdef __cplusplus
}
#endif

#endif
