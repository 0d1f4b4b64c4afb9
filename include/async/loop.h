/**
 * @file
 * @brief async_loop: the event loop.
 *
 * One loop per thread. Scheduling follows asyncio (PEP 3156), made
 * stricter: call_soon callbacks run FIFO, never inside the call that
 * scheduled them; each iteration runs only the callbacks queued before it
 * began; timers never fire early and equal deadlines fire in start order.
 *
 * Every function here is for the loop's thread only, except
 * async_loop_new() (the loop then belongs to the thread that runs it) and
 * async_loop_post(), async_loop_wakeup(), async_loop_hold() and
 * async_loop_unhold() (any thread). With the owner-thread check on
 * (async_loop_set_thread_check()), a loop-thread call from another thread
 * returns ASYNC_EWRONGTHREAD (NULL for a function returning a pointer) and
 * changes nothing.
 */
#ifndef ASYNC_LOOP_H
#define ASYNC_LOOP_H

#include "common.h"
#include "handle.h"

#ifdef __cplusplus
extern "C" {
#endif

/** @brief How async_loop_run() runs the loop. */
enum async_run_mode {
  ASYNC_RUN_DEFAULT = 0,              /**< run until no referenced work is left or stopped */
  ASYNC_RUN_ONCE = 1,                 /**< one iteration; blocks until something happens */
  ASYNC_RUN_NOWAIT = 2,               /**< one iteration; never blocks */
  ASYNC_RUN_MODE_FORCE32 = 0x7FFFFFFF /**< keeps the enum 32 bits wide; not a mode */
};

/** @brief The level of a message given to the log hook (async_log_fn). */
enum async_log_level {
  ASYNC_LOG_DEBUG = 0, /**< debugging detail (the library sends none today) */
  ASYNC_LOG_INFO = 1,  /**< information (the library sends none today) */
  ASYNC_LOG_WARNING =
      2, /**< a warning: a slow callback (async_loop_set_slow_callback()), a server pausing its accepts */
  ASYNC_LOG_ERROR =
      3, /**< an error the loop recovers from: an accepted connection dropped, out of memory moving posts (retried) */
  ASYNC_LOG_LEVEL_FORCE32 = 0x7FFFFFFF /**< keeps the enum 32 bits wide; not a level */
};

/** @brief The counters async_loop_metric() reads. */
enum async_metric {
  ASYNC_METRIC_ITERATIONS = 0,      /**< loop iterations run so far */
  ASYNC_METRIC_POLL_TIME = 1,       /**< nanoseconds spent blocked in the poll syscall */
  ASYNC_METRIC_CALLBACKS = 2,       /**< call_soon/post callbacks run so far */
  ASYNC_METRIC_FORCE32 = 0x7FFFFFFF /**< keeps the enum 32 bits wide; not a metric */
};

/**
 * @brief The kinds of object async_loop_walk() reports: every object a user
 * of the loop can hold.
 *
 * The object pointer it passes is the one the creating call returned
 * (async_timer *, async_stream *, async_future *, ...).
 */
enum async_object_kind {
  ASYNC_OBJECT_TIMER = 1,                /**< an async_timer * */
  ASYNC_OBJECT_WATCHER = 2,              /**< an async_watcher * */
  ASYNC_OBJECT_HOOK = 3,                 /**< an async_hook * */
  ASYNC_OBJECT_SIGNAL = 4,               /**< an async_signal * */
  ASYNC_OBJECT_SERVER = 5,               /**< an async_server * */
  ASYNC_OBJECT_STREAM = 6,               /**< an async_stream * */
  ASYNC_OBJECT_DATAGRAM = 7,             /**< an async_datagram * */
  ASYNC_OBJECT_FUTURE = 8,               /**< an async_future * */
  ASYNC_OBJECT_READER = 9,               /**< an async_reader * */
  ASYNC_OBJECT_RECONNECTOR = 10,         /**< an async_reconnector * */
  ASYNC_OBJECT_KIND_FORCE32 = 0x7FFFFFFF /**< keeps the enum 32 bits wide; not a kind */
};

/**
 * @brief Called by async_loop_walk() once per object.
 *
 * @param kind     the object's kind, an enum async_object_kind.
 * @param object   the object, as the call that created it returned it.
 * @param userdata the userdata given to async_loop_walk().
 */
typedef void (*async_walk_fn)(int kind, void *object, void *userdata);

/**
 * @brief Receives the loop's diagnostics (slow callbacks, internal warnings).
 *
 * @param loop     the loop.
 * @param level    an enum async_log_level.
 * @param message  the message; valid for the duration of the call only.
 * @param userdata the userdata given to async_loop_set_log().
 */
typedef void (*async_log_fn)(async_loop *loop, int level, const char *message, void *userdata);

/**
 * @brief Creates a loop.
 *
 * The loop uses 2 file descriptors (epoll, and an eventfd for posts,
 * wakeups and signals), all opened here: once it exists, posting, waking
 * it and watching signals need no further fd.
 *
 * LIBEV_FLAGS in the environment, read here, picks another readiness
 * backend for testing: 1 select, 2 poll, 4 epoll (a sum: the first of
 * epoll, poll, select that works; other bits are ignored). Unset, or
 * naming none of these, it is epoll; setuid and setgid programs ignore it.
 * Under select and poll the loop uses 1 file descriptor, and each poll
 * takes time in proportion to the descriptors watched.
 *
 * @param[out] out receives the loop.
 * @retval 0             *out is the new loop.
 * @retval ASYNC_EINVAL  out is NULL.
 * @retval ASYNC_ENOMEM  out of memory.
 * @retval ASYNC_EMFILE  fewer fds free than the loop needs; nothing is left
 *                       open, never an abort.
 * @ownership The loop is the caller's: free it with async_loop_free().
 * @thread Any thread; the loop then belongs to the thread that runs it.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_loop_new(async_loop **out);

/**
 * @brief Frees the loop.
 *
 * Refused while anything of the loop is left: handles open (closing ones
 * included), transports that have not ended (a retained one that has ended
 * does not count: async/stream.h, Lifetime), futures of the loop with a
 * reference held (async_future_free(), async_future_release()) or a
 * callback still to run, readers not freed, reconnectors not stopped,
 * callbacks queued, posts pending or the loop held (async_loop_hold()),
 * executor jobs out (async/executor.h).
 * Close and free them (async_loop_walk() finds them,
 * async_loop_shutdown() ends them) and run the loop until their callbacks
 * have run, then free.
 *
 * After success, async_loop_post() on this pointer returns ASYNC_ECLOSED
 * (as long as no new loop reuses the address).
 *
 * @param loop the loop.
 * @retval 0                  freed.
 * @retval ASYNC_EINVAL       loop is NULL or not a loop.
 * @retval ASYNC_EBUSY        something above is left, or called from
 *                            inside async_loop_run() or an
 *                            async_loop_walk() / async_loop_shutdown().
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership The loop is gone on success. The log hook's userdata and
 *            the executor's (async/executor.h) are released (their
 *            release callbacks run).
 * @thread The loop's thread only.
 * @callbacks May run the log hook's and the executor's release(userdata)
 *            inside this call (when it succeeds).
 */
ASYNC_API int async_loop_free(async_loop *loop);

/**
 * @brief Runs the loop in the given mode.
 *
 * If async_loop_stop() was called before run, run performs one
 * non-blocking iteration (ready callbacks run) and returns (asyncio
 * semantics).
 *
 * @param loop the loop.
 * @param mode an enum async_run_mode.
 * @retval 0                  no referenced work remains.
 * @retval 1                  work remains (the loop was stopped, or
 *                            ASYNC_RUN_ONCE / ASYNC_RUN_NOWAIT returned with
 *                            work pending).
 * @retval ASYNC_EINVAL       loop is NULL or not a loop, or mode is not an
 *                            enum async_run_mode.
 * @retval ASYNC_EBUSY        already running (nested runs are rejected),
 *                            or inside async_loop_walk() or
 *                            async_loop_shutdown().
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks Any callback of the loop runs inside this call (it runs the
 *            loop).
 */
ASYNC_API int async_loop_run(async_loop *loop, int mode);

/**
 * @brief Asks the loop to return from async_loop_run() after the current
 * iteration.
 *
 * Outside run, the next run does one non-blocking iteration and returns.
 *
 * @param loop the loop.
 * @retval 0                  the stop is requested.
 * @retval ASYNC_EINVAL       loop is NULL or not a loop.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_loop_stop(async_loop *loop);

/**
 * @brief Whether the loop has work that keeps async_loop_run() going.
 *
 * @param loop the loop.
 * @retval 1                  the loop has referenced active handles,
 *                            closing handles, queued callbacks or holds
 *                            (async_loop_hold()).
 * @retval 0                  none of these.
 * @retval ASYNC_EINVAL       loop is NULL or not a loop.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_loop_alive(async_loop *loop);

/**
 * @brief Loop time in milliseconds on the monotonic clock, read at its
 * first use in each iteration (after the iteration's poll; the loop's
 * timer pass is one) and cached for the rest of the iteration, so an
 * iteration that needs no time reads no clock.
 *
 * @param[out] out_ms receives the time.
 * @param      loop   the loop.
 * @retval 0                  *out_ms is set.
 * @retval ASYNC_EINVAL       out_ms is NULL; loop is NULL or not a loop.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_loop_now(uint64_t *out_ms, async_loop *loop);

/**
 * @brief Refreshes the cached loop time from the clock.
 *
 * @param loop the loop.
 * @retval 0                  refreshed.
 * @retval ASYNC_EINVAL       loop is NULL or not a loop.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_loop_now_update(async_loop *loop);

/**
 * @brief How long the loop would block if it were polled now, in
 * milliseconds.
 *
 * For hosts that drive the loop with ASYNC_RUN_NOWAIT.
 *
 * @param[out] out_ms receives 0 when callbacks are queued or the loop is
 *                    stopping, the time until the next timer (rounded up,
 *                    computed from a fresh clock), or -1 when nothing is
 *                    scheduled.
 * @param      loop   the loop.
 * @retval 0                  *out_ms is set.
 * @retval ASYNC_EINVAL       out_ms is NULL; loop is NULL or not a loop.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_loop_timeout(int64_t *out_ms, async_loop *loop);

/**
 * @brief Queues cb(loop, userdata) to run on a later iteration, after every
 * callback queued before it (FIFO).
 *
 * @param loop     the loop.
 * @param cb       the callback; it always runs once this call succeeded.
 * @param userdata passed to cb; may be NULL.
 * @retval 0                  queued.
 * @retval ASYNC_EINVAL       cb is NULL; loop is NULL or not a loop.
 * @retval ASYNC_ENOMEM       out of memory (nothing queued).
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership userdata stays the caller's; cb is its final notification.
 * @thread The loop's thread only.
 * @callbacks None run inside this call; cb runs from inside
 *            async_loop_run().
 */
ASYNC_API int async_loop_call_soon(async_loop *loop, async_callback cb, void *userdata);

/**
 * @brief Thread-safe call_soon: queues cb(loop, userdata) from any thread
 * and wakes the loop.
 *
 * Callbacks posted from one thread run in posting order. Safe to race with
 * async_loop_free(): a post to a freed loop returns ASYNC_ECLOSED. The
 * pointer is not type-checked (the loop may be gone): it is only compared
 * with the live loops' addresses.
 *
 * @param loop     the loop.
 * @param cb       the callback; it always runs once this call succeeded.
 * @param userdata passed to cb; may be NULL.
 * @retval 0             queued.
 * @retval ASYNC_EINVAL  loop or cb is NULL.
 * @retval ASYNC_ECLOSED loop is not a live loop (freed, or never one).
 * @retval ASYNC_ENOMEM  out of memory (nothing queued).
 * @ownership userdata stays the caller's; cb is its final notification.
 * @thread Any thread.
 * @callbacks None run inside this call; cb runs from inside
 *            async_loop_run() on the loop's thread.
 */
ASYNC_API int async_loop_post(async_loop *loop, async_callback cb, void *userdata);

/**
 * @brief Wakes the loop if it is blocked in poll, without queueing
 * anything.
 *
 * @param loop the loop (compared with the live loops, as in
 *             async_loop_post()).
 * @retval 0             woken.
 * @retval ASYNC_EINVAL  loop is NULL.
 * @retval ASYNC_ECLOSED loop is not a live loop (freed, or never one).
 * @ownership Nothing changes hands.
 * @thread Any thread.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_loop_wakeup(async_loop *loop);

/**
 * @brief Installs the log hook.
 *
 * The previous hook's release callback, if any, is called with its
 * userdata. release(userdata) is called when this hook is replaced or the
 * loop is freed.
 *
 * @param loop     the loop.
 * @param log      the hook; NULL removes it.
 * @param release  called with userdata when the hook is replaced or the
 *                 loop freed; may be NULL.
 * @param userdata passed to log and release; may be NULL.
 * @retval 0                  installed.
 * @retval ASYNC_EINVAL       loop is NULL or not a loop.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership userdata stays the caller's; release(userdata) is its final
 *            notification. On failure nothing is installed or released.
 * @thread The loop's thread only.
 * @callbacks May run the previous hook's release(userdata) inside this
 *            call; log runs from inside the loop's calls that report.
 */
ASYNC_API int async_loop_set_log(async_loop *loop, async_log_fn log, async_release_fn release, void *userdata);

/**
 * @brief Reports every callback that runs longer than threshold_ms through
 * the log hook at ASYNC_LOG_WARNING (asyncio's slow_callback_duration).
 *
 * @param loop         the loop.
 * @param threshold_ms the threshold; 0 disables (the default).
 * @retval 0                  set.
 * @retval ASYNC_EINVAL       loop is NULL or not a loop.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_loop_set_slow_callback(async_loop *loop, uint64_t threshold_ms);

/**
 * @brief Reads one metric.
 *
 * @param[out] out    receives the metric's value.
 * @param      loop   the loop.
 * @param      metric an enum async_metric.
 * @retval 0                  *out is set.
 * @retval ASYNC_EINVAL       out is NULL, metric is unknown, or loop is
 *                            NULL or not a loop.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_loop_metric(uint64_t *out, async_loop *loop, int metric);

/**
 * @brief Sets the loop's own userdata, for bindings (the binding's loop
 * object).
 *
 * @param loop     the loop.
 * @param userdata the value async_loop_userdata() returns; may be NULL.
 * @retval 0                  set.
 * @retval ASYNC_EINVAL       loop is NULL or not a loop.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership Not owned by the library: nothing releases it.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_loop_set_userdata(async_loop *loop, void *userdata);

/**
 * @brief The loop's own userdata (async_loop_set_userdata()).
 *
 * @param loop the loop.
 * @return the userdata, NULL until set; NULL for a NULL or non-loop pointer
 *         and when the owner-thread check refuses the caller.
 * @ownership Nothing changes hands: the userdata stays the caller's.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API void *async_loop_userdata(async_loop *loop);

/**
 * @brief Calls fn(kind, object, userdata) once for every object of the loop
 * a user holds.
 *
 * Kind by kind in enum async_object_kind order (streams: those of no
 * server, then each server's accepted ones, server by server):
 * - handles (timers, watchers, hooks, signals, servers) from their
 *   creation until their close callback has returned; closing ones are
 *   visited (async_handle_is_closing() tells them apart);
 * - streams and datagrams from their creation until their connection_lost
 *   is called (a walk inside connection_lost or release no longer visits
 *   that one), closing ones included (a stream a server accepted, one a
 *   connect or reconnector made, one adopted); a retained stream, or one
 *   kept only as a connect future's value, is not visited once ended;
 * - futures and readers until async_future_free() / async_reader_free(),
 *   whatever their state; futures the library keeps for itself (a
 *   connect's lookups, a reconnector's connects) are not visited;
 * - reconnectors until their stopped callback has returned.
 *
 * Inside fn any call allowed on the loop thread may be made, on any
 * object: closing, aborting, cancelling or freeing the visited object or
 * another one is safe (an object freed before its turn is not visited;
 * one created inside fn is visited when it is of a kind not reached yet or
 * linked behind the current one). Nested calls work: async_loop_walk() and
 * async_loop_shutdown() from inside fn, four of them at once in all (a
 * fifth returns ASYNC_EBUSY). async_loop_run(), async_loop_run_until()
 * and async_loop_free() return ASYNC_EBUSY inside fn.
 *
 * @param loop     the loop.
 * @param fn       called once per object.
 * @param userdata passed to fn; may be NULL.
 * @return the number of calls made (>= 0), or a negative code:
 * @retval ASYNC_EINVAL       fn is NULL; loop is NULL or not a loop.
 * @retval ASYNC_EBUSY        inside four nested walks and shutdowns
 *                            already.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership Nothing changes hands: the objects passed to fn are borrowed
 *            for the call; userdata stays the caller's.
 * @thread The loop's thread only.
 * @callbacks fn, and the callbacks that the calls fn makes run inside them.
 */
ASYNC_API int async_loop_walk(async_loop *loop, async_walk_fn fn, void *userdata);

/**
 * @brief Ends every object of the loop that async_loop_walk() would visit,
 * so that the next runs deliver every final notification.
 *
 * In this order:
 * - streams and datagrams are aborted, closing ones too (queued writes are
 *   dropped, zero-copy ones have their done callback queued at once):
 *   connection_lost(ASYNC_ECANCELED), then the protocol's release, run
 *   from the loop; this includes a server's accepted streams and the
 *   streams of connects and reconnectors;
 * - reconnectors stop: stopped(ASYNC_ECANCELED), then release(userdata);
 * - pending futures are cancelled (their callbacks get ASYNC_ECANCELED),
 *   and with them the connects, DNS lookups and reads behind them;
 * - handles not closing yet are closed with close_cb as their close
 *   callback; closing handles keep the close callback they were given;
 *   servers stop listening.
 *
 * Callbacks already queued (call_soon, posts) still run. Futures and
 * readers are not freed: their owner frees them (walk finds them), and
 * async_loop_free() returns ASYNC_EBUSY until then, as it does while the
 * loop is held (async_loop_hold()). Objects created afterwards behave as
 * usual; the loop stays usable. Idempotent: a second call only ends what
 * was created since. Allowed inside any callback of the loop and inside an
 * async_loop_walk() fn. Typical end of a binding's loop:
 * async_loop_shutdown(), async_loop_run(ASYNC_RUN_DEFAULT), free the
 * futures and readers still held, async_loop_free().
 *
 * @param loop     the loop.
 * @param close_cb the close callback of the handles it closes:
 *                 close_cb(handle, userdata) is their final notification;
 *                 NULL: none.
 * @retval 0                  done.
 * @retval ASYNC_EINVAL       loop is NULL or not a loop.
 * @retval ASYNC_EBUSY        inside four nested walks and shutdowns
 *                            already.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership Nothing changes hands: each object's userdata gets its final
 *            notification as listed above.
 * @thread The loop's thread only.
 * @callbacks The cancel hooks (async_future_set_cancel()) of the pending
 *            futures it cancels run inside this call (cancelled = 1), as
 *            inside async_future_cancel(); inside them, as inside a walk's
 *            fn, the loop cannot run or be freed. Every other notification
 *            (connection_lost, release, stopped, close callbacks, done
 *            callbacks, the done of dropped zero-copy writes, a cancelled
 *            connect's release) runs from the loop afterwards.
 */
ASYNC_API int async_loop_shutdown(async_loop *loop, async_close_fn close_cb);

/**
 * @brief Opt-in owner-thread check.
 *
 * With on != 0 the calling thread becomes the loop's owner: from then on
 * every call on the loop or on one of its objects made from another thread
 * returns ASYNC_EWRONGTHREAD (functions that return a pointer return NULL)
 * and changes nothing, instead of racing. The thread-safe calls
 * (async_loop_post(), async_loop_wakeup(), async_loop_hold(),
 * async_loop_unhold()) stay callable from any thread, and so do the
 * async_<type>_handle() casts. Calls on objects of no loop (address
 * lists, byte blocks, name info) are never checked.
 *
 * To hand the loop to another thread (to run or free it there), the owner
 * turns the check off first; the new thread may turn it on again.
 *
 * @param loop the loop.
 * @param on   non-zero turns the check on, with the caller as the owner; 0
 *             turns it off (the default: the check costs one branch then).
 * @retval 0                  set.
 * @retval ASYNC_EINVAL       loop is NULL or not a loop.
 * @retval ASYNC_EWRONGTHREAD the check is on and the caller is not the
 *                            owner.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only (the owner's, while the check is on).
 * @callbacks None run inside this call.
 */
ASYNC_API int async_loop_set_thread_check(async_loop *loop, int on);

/**
 * @brief Holds the loop.
 *
 * While its holds outnumber its unholds, async_loop_run(ASYNC_RUN_DEFAULT)
 * keeps running (blocking in the poll when there is nothing to do),
 * async_loop_alive() returns 1 and async_loop_free() returns ASYNC_EBUSY.
 * For a loop waiting for another thread's post: hold before handing the
 * work over, unhold (async_loop_unhold()) after posting the result.
 *
 * @param loop the loop (compared with the live loops, as in
 *             async_loop_post()).
 * @retval 0             held.
 * @retval ASYNC_EINVAL  loop is NULL.
 * @retval ASYNC_ECLOSED loop is not a live loop (freed, or never one).
 * @ownership Nothing changes hands.
 * @thread Any thread.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_loop_hold(async_loop *loop);

/**
 * @brief Ends one hold of async_loop_hold().
 *
 * An unhold that ends the last hold wakes the loop, so
 * async_loop_run(ASYNC_RUN_DEFAULT) can return.
 *
 * @param loop the loop (compared with the live loops, as in
 *             async_loop_post()).
 * @retval 0             unheld.
 * @retval ASYNC_EINVAL  loop is NULL.
 * @retval ASYNC_ECLOSED loop is not a live loop (freed, or never one).
 * @retval ASYNC_ESTATE  the loop is not held.
 * @ownership Nothing changes hands.
 * @thread Any thread.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_loop_unhold(async_loop *loop);

/**
 * @brief One fd a host loop (GLib, Qt, an SDL frame loop, a plain poll())
 * waits on to drive this loop with ASYNC_RUN_NOWAIT.
 *
 * The fd is readable whenever async_loop_run(loop, ASYNC_RUN_NOWAIT) has
 * something to do: an fd watched by the loop is ready, a timer (also one
 * started after the host began waiting) or an internal deadline (connect,
 * idle and DNS timeouts) is due, callbacks are queued, another thread
 * posted (async_loop_post()) or woke the loop (async_loop_wakeup()), a
 * watched signal arrived, or a DNS answer came in. The host adds the fd to
 * its poll set for reading, with no timeout of its own, and runs the loop
 * with ASYNC_RUN_NOWAIT each time the fd is readable.
 *
 * Never stale: any call on the loop or one of its objects made on the
 * loop's thread between two runs (starting a timer or watcher, a connect,
 * a write, async_loop_call_soon(), ...; libev applies watcher changes only
 * inside its next poll) makes the fd readable, once per gap between runs,
 * so the next NOWAIT run applies it; the fd turns unreadable again once a
 * run has handled everything. The loop queries a host calls around its
 * waits (async_loop_alive(), async_loop_now(), async_loop_now_update(),
 * async_loop_timeout(), async_loop_metric(), async_loop_userdata(),
 * async_loop_fd()) and the runs themselves do not; other getters do (one
 * spurious NOWAIT run). Level-triggered: the fd
 * stays readable until the loop has run, so a host may wait on it with
 * level or edge semantics, but with edge semantics (EPOLLET) it must run
 * the loop after every wake-up. Nothing busy-wakes: with nothing due, the
 * fd stays unreadable. Spurious readiness is possible (a stopped watcher's
 * fd ready once, a call between runs that changed nothing); a NOWAIT run
 * then does nothing.
 *
 * The fd (an epoll fd over libev's epoll fd, an eventfd and a timerfd) is
 * created on the first call; later calls return the same fd. A loop never
 * asked for it opens none of them. async_loop_timeout() stays for hosts
 * that prefer an fd plus a timeout.
 *
 * @param[out] out  receives the fd.
 * @param      loop the loop.
 * @retval 0                  *out is set.
 * @retval ASYNC_EINVAL       out is NULL; loop is NULL or not a loop.
 * @retval ASYNC_ENOTSUP      the loop's backend is select or poll
 *                            (LIBEV_FLAGS=1 or 2), which have no fd to
 *                            nest; only epoll (the default) supports it.
 * @retval ASYNC_EMFILE       no fd is free for the three fds.
 * @retval ASYNC_ENOMEM       out of memory.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership The fd is the loop's: never read, write or close it; it is
 *            closed by async_loop_free() (remove it from the host's poll
 *            set first).
 * @thread The loop's thread only; the host waits on the fd on that thread.
 *         Posts and wakeups from other threads make it readable.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_loop_fd(int *out, async_loop *loop);

/**
 * @brief Runs ready work for at most about budget_us microseconds, for a
 * frame loop that gives the loop a time slice per frame.
 *
 * ASYNC_RUN_NOWAIT runs one iteration whatever it costs: every callback
 * queued before it. This call runs non-blocking iterations while callbacks
 * are queued and the budget lasts, and stops running queued callbacks as
 * soon as the budget is spent: the rest stay queued, in FIFO order, ahead
 * of anything queued later, and run first in the next call. Every call
 * starts with an iteration that polls I/O and runs due timers, so neither
 * starves however much is queued; their callbacks (one pass each) may
 * overrun the budget, as may a single long callback. The loop never
 * blocks in this call.
 *
 * @param loop      the loop.
 * @param budget_us the time budget in microseconds, > 0.
 * @retval 0                  nothing is left queued (the loop may still
 *                            have handles waiting for events or timers;
 *                            async_loop_alive() says).
 * @retval 1                  the budget ran out with callbacks still
 *                            queued.
 * @retval ASYNC_EINVAL       loop is NULL or not a loop; budget_us is 0.
 * @retval ASYNC_EBUSY        the loop is running (nested runs are
 *                            rejected), or inside async_loop_walk() or
 *                            async_loop_shutdown().
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks Any callback of the loop runs inside this call (it runs the
 *            loop).
 */
ASYNC_API int async_loop_run_for(async_loop *loop, uint64_t budget_us);

/**
 * @brief Makes the loop work in the child after fork(): re-creates what the
 * child would otherwise share with its parent.
 *
 * Call it in the child, before anything else of the loop. It makes a new
 * epoll fd (every watched fd added to it again; the poll and select
 * backends have none) and a new wakeup eventfd, and, if the loop has
 * looked names up, a new DNS channel with the same configuration, its
 * sockets new too; if async_loop_fd() was called, a new embedding fd (the
 * child calls async_loop_fd() again and polls that one). Everything else stays registered as it was: handles,
 * timers (with their deadlines), streams, servers, datagram transports,
 * futures, processes' pipe streams, call_soon callbacks and pending posts.
 * The parent's loop is not affected in any way and needs no call.
 *
 * What carries over, and where it runs:
 * - call_soon callbacks and posts queued before the fork were copied with
 *   the memory: they run in the child (as in the parent), once each in
 *   each process. A thread of the parent that posts after the fork posts
 *   to the parent's loop only (the child has no other thread).
 * - DNS lookups in flight are sent again from the child on its new channel
 *   (deadlines unchanged): their futures complete in the child with the
 *   child's own answers, and in the parent with the parent's. If the new
 *   channel cannot be made, they fail in the child with this call's error.
 * - Connections, servers and pipes are the same open files in both
 *   processes (fork() shares them): whichever process reads first gets the
 *   bytes. Close in each process what it is not to use.
 * - A process made by async_process_spawn() is the parent's child, not the
 *   child's: in the child its wait futures fail with ASYNC_ESTATE.
 * As after any fork() of a process with threads, no other thread may have
 * been inside libasync at the moment of the fork.
 *
 * @param loop the loop (in the child).
 * @retval 0                  the loop is the child's own.
 * @retval ASYNC_EINVAL       loop is NULL or not a loop.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller.
 * @retval ASYNC_EBUSY        called from inside async_loop_run() or an
 *                            async_loop_walk() / async_loop_shutdown().
 * @retval ASYNC_ENOMEM       the new DNS channel could not be made (the
 *                            loop works; lookups in flight failed).
 * @retval ASYNC_EMFILE       as ASYNC_ENOMEM, for want of an fd; or the
 *                            new embedding fd could not be made (the
 *                            loop works; async_loop_fd() tries again).
 * @ownership Nothing changes hands.
 * @thread The loop's thread (the thread that called fork()).
 * @callbacks None run inside this call: what the new epoll finds at once
 *            is dispatched by the next iteration.
 */
ASYNC_API int async_loop_fork(async_loop *loop);

#ifdef __cplusplus
}
#endif

#endif
