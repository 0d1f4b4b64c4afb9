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
#include "handle.h"

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
 * The kinds of object async_loop_walk() reports: every object a user of
 * the loop can hold. The object pointer it passes is the one the creating
 * call returned (async_timer *, async_stream *, async_future *, ...).
 */
enum async_object_kind {
  ASYNC_OBJECT_TIMER = 1,
  ASYNC_OBJECT_WATCHER = 2,
  ASYNC_OBJECT_HOOK = 3,
  ASYNC_OBJECT_SIGNAL = 4,
  ASYNC_OBJECT_SERVER = 5,
  ASYNC_OBJECT_STREAM = 6,
  ASYNC_OBJECT_DATAGRAM = 7,
  ASYNC_OBJECT_FUTURE = 8,
  ASYNC_OBJECT_READER = 9,
  ASYNC_OBJECT_RECONNECTOR = 10,
  ASYNC_OBJECT_KIND_FORCE32 = 0x7FFFFFFF
};

/* Called by async_loop_walk() once per object; kind is an enum async_object_kind. */
typedef void (*async_walk_fn)(int kind, void *object, void *userdata);

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
 * readers are not freed, reconnectors have not stopped, callbacks are
 * queued, posts are pending or the loop is held (async_loop_hold): close
 * and free them (async_loop_walk() finds them, async_loop_shutdown() ends
 * them) and run the loop until their callbacks have run, then free. After success,
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
 * nested runs are rejected; also inside async_loop_walk() and
 * async_loop_shutdown()).
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
 * Returns 1 if the loop has referenced active handles, closing handles,
 * queued callbacks or holds (async_loop_hold), 0 if not, or ASYNC_EINVAL.
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

/*
 * The loop's own userdata, for bindings (the binding's loop object).
 * Not owned by the library: nothing releases it. NULL until set.
 * Loop thread only. set: 0 or ASYNC_EINVAL; get: NULL for an invalid loop.
 * Callbacks: none run inside these calls.
 */
ASYNC_API int async_loop_set_userdata(async_loop *loop, void *userdata);
ASYNC_API void *async_loop_userdata(async_loop *loop);

/*
 * Calls fn(kind, object, userdata) once for every object of the loop a
 * user holds, kind by kind in enum order (streams: those of no server,
 * then each server's accepted ones, server by server):
 * - handles (timers, watchers, hooks, signals, servers) from their
 *   creation until their close callback has returned; closing ones are
 *   visited (async_handle_is_closing() tells them apart);
 * - streams and datagrams from their creation until their connection_lost
 *   has returned, closing ones included (a stream a server accepted, one a
 *   connect or reconnector made, one adopted); a stream kept only as a
 *   connect future's value after its connection_lost is not visited;
 * - futures and readers until async_future_free() / async_reader_free(),
 *   whatever their state; futures the library keeps for itself (a
 *   connect's lookups, a reconnector's connects) are not visited;
 * - reconnectors until their stopped callback has returned.
 * Inside fn any call allowed on the loop thread may be made, on any
 * object: closing, aborting, cancelling or freeing the visited object or
 * another one is safe (an object freed before its turn is not visited;
 * one created inside fn is visited when it is of a kind not reached yet or
 * linked behind the current one). Nested calls work: async_loop_walk() and
 * async_loop_shutdown() from inside fn, four of them at once in all
 * (a fifth returns ASYNC_EBUSY). async_loop_run(), async_loop_run_until()
 * and async_loop_free() return ASYNC_EBUSY inside fn.
 * Returns the number of calls made (>= 0), or ASYNC_EINVAL (NULL loop or
 * fn), ASYNC_EBUSY (nested too deep). Loop thread only. Callbacks: fn, and the callbacks that the calls
 * fn makes run inside them.
 */
ASYNC_API int async_loop_walk(async_loop *loop, async_walk_fn fn, void *userdata);

/*
 * Ends every object of the loop that async_loop_walk() would visit, so
 * that the next runs deliver every final notification, in this order:
 * - streams and datagrams are aborted, closing ones too (queued writes are
 *   dropped, zero-copy ones get their done callback at once):
 *   connection_lost(ASYNC_ECANCELED), then the protocol's release, run
 *   from the loop; this includes a server's accepted streams and the
 *   streams of connects and reconnectors;
 * - reconnectors stop: stopped(ASYNC_ECANCELED), then release(userdata);
 * - pending futures are cancelled (their callbacks get ASYNC_ECANCELED), and
 *   with them the connects, DNS lookups and reads behind them;
 * - handles not closing yet are closed with close_cb (NULL: none) as their
 *   close callback: close_cb(handle, userdata) is their final notification;
 *   closing handles keep the close callback they were given; servers stop
 *   listening.
 * Callbacks already queued (call_soon, posts) still run. Futures and
 * readers are not freed: their owner frees them (walk finds them), and
 * async_loop_free() returns ASYNC_EBUSY until then, as it does while the
 * loop is held (async_loop_hold). Objects created afterwards behave as
 * usual; the loop stays usable. Idempotent: a second call only ends what
 * was created since. Allowed inside any callback of the loop and inside
 * an async_loop_walk() fn. Typical end of a binding's loop:
 * async_loop_shutdown(), async_loop_run(ASYNC_RUN_DEFAULT), free the
 * futures and readers still held, async_loop_free().
 * Returns 0, ASYNC_EINVAL, or ASYNC_EBUSY (inside four nested walks and
 * shutdowns already). Loop thread only. Callbacks: what cancelling a
 * future runs inside async_future_cancel() runs inside this call too (its
 * cancel hook, async_future_set_cancel; a pending connect's protocol
 * release), and so do the done callbacks of dropped zero-copy writes
 * (inside them, as inside a walk's fn, the loop cannot run or be freed);
 * every other notification runs from the loop afterwards.
 */
ASYNC_API int async_loop_shutdown(async_loop *loop, async_close_fn close_cb);

/*
 * Opt-in owner-thread check. With on != 0 the calling thread becomes the
 * loop's owner: from then on every call on the loop or on one of its
 * objects made from another thread returns ASYNC_EWRONGTHREAD (functions
 * that return a pointer return NULL) and changes nothing, instead of
 * racing. The thread-safe calls (async_loop_post, _wakeup, _hold, _unhold)
 * stay callable from any thread, and so do the async_<type>_handle() casts.
 * To hand the loop to another thread (to run or free it there), the owner
 * turns the check off first; the new thread may turn it on again. on = 0 turns the check off (the default:
 * the check costs one branch then). Calls on objects of no loop (address
 * lists, byte blocks, name info) are never checked.
 * Errors: ASYNC_EINVAL, ASYNC_EWRONGTHREAD (the check is on and the caller
 * is not the owner). Callbacks: none run inside this call.
 */
ASYNC_API int async_loop_set_thread_check(async_loop *loop, int on);

/*
 * Holds the loop: while its holds outnumber its unholds, async_loop_run
 * (DEFAULT) keeps running (blocking in the poll when there is nothing to
 * do), async_loop_alive() returns 1 and async_loop_free() returns
 * ASYNC_EBUSY. For a loop waiting for another thread's post: hold before
 * handing the work over, unhold after posting the result. An unhold that
 * ends the last hold wakes the loop, so run(DEFAULT) can return.
 * Any thread. Errors: ASYNC_EINVAL (NULL), ASYNC_ECLOSED (the loop was
 * freed), and for unhold ASYNC_ESTATE (not held). Callbacks: none run
 * inside these calls.
 */
ASYNC_API int async_loop_hold(async_loop *loop);
ASYNC_API int async_loop_unhold(async_loop *loop);

#ifdef __cplusplus
}
#endif

#endif
