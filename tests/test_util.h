/*
 * Small helpers shared by the cmocka tests. Static inline functions only,
 * so every test file may include this header whether it uses them or not.
 *
 * Include it instead of (or after) the cmocka prerequisites: it pulls in
 * <stdarg.h>, <stddef.h>, <stdint.h>, <setjmp.h>, <cmocka.h> and <async.h>.
 */
#ifndef LIBASYNC_TEST_UTIL_H
#define LIBASYNC_TEST_UTIL_H

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <async.h>

/* Monotonic clock in nanoseconds (the clock libasync timers use). */
static inline uint64_t tu_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Monotonic clock in milliseconds (truncated). */
static inline uint64_t tu_now_ms(void) { return tu_now_ns() / 1000000u; }

/* Milliseconds elapsed since t0_ns (a tu_now_ns() value), as a double. */
static inline double tu_elapsed_ms(uint64_t t0_ns) {
  return (double)(tu_now_ns() - t0_ns) / 1e6;
}

/* Sleeps (blocks the calling thread) for ms milliseconds, EINTR-safe. */
static inline void tu_sleep_ms(uint64_t ms) {
  struct timespec ts;
  ts.tv_sec = (time_t)(ms / 1000u);
  ts.tv_nsec = (long)((ms % 1000u) * 1000000u);
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* Busy-waits (keeps the CPU) for ms milliseconds on the monotonic clock. */
static inline void tu_spin_ms(uint64_t ms) {
  uint64_t end = tu_now_ns() + ms * 1000000u;
  while (tu_now_ns() < end) {
  }
}

/* Reads one loop metric; fails the test if the call fails. */
static inline uint64_t tu_metric(async_loop *loop, int metric) {
  uint64_t v = 0;
  assert_int_equal(async_loop_metric(&v, loop, metric), 0);
  return v;
}

/* Loop iterations run so far (ASYNC_METRIC_ITERATIONS). */
static inline uint64_t tu_iterations(async_loop *loop) {
  return tu_metric(loop, ASYNC_METRIC_ITERATIONS);
}

/*
 * Iterations for use inside callbacks: never asserts (a failing cmocka
 * assertion would longjmp through the library); UINT64_MAX on error.
 */
static inline uint64_t tu_iter_cb(async_loop *loop) {
  uint64_t v = 0;
  if (async_loop_metric(&v, loop, ASYNC_METRIC_ITERATIONS) != 0) {
    return UINT64_MAX;
  }
  return v;
}

/* A fresh loop; fails the test if creation fails. */
static inline async_loop *tu_loop_new(void) {
  async_loop *loop = NULL;
  assert_int_equal(async_loop_new(&loop), 0);
  assert_non_null(loop);
  return loop;
}

/* The readiness backend of new loops, as async_loop_new() documents it:
 * LIBEV_FLAGS 1 select, 2 poll, 4 epoll (a sum: the first of epoll, poll,
 * select), anything else epoll. For the few expectations that differ per
 * backend; test_backend checks that loops really use this one. */
enum tu_backend { TU_SELECT = 1, TU_POLL = 2, TU_EPOLL = 4 };

static inline enum tu_backend tu_backend(void) {
  const char *text = getenv("LIBEV_FLAGS");
  char *end = NULL;
  unsigned long flags = text ? strtoul(text, &end, 10) : 0;
  if (end == text || *end != '\0') {
    return TU_EPOLL;
  }
  return (flags & TU_EPOLL) ? TU_EPOLL : (flags & TU_POLL) ? TU_POLL : (flags & TU_SELECT) ? TU_SELECT : TU_EPOLL;
}

/* A new (stopped) timer with userdata ud; fails the test on error. */
static inline async_timer *tu_timer_new(async_loop *loop, void *ud) {
  async_timer *t = NULL;
  assert_int_equal(async_timer_new(&t, loop, ud), 0);
  return t;
}

/* A new (stopped) hook of kind with userdata ud; fails the test on error. */
static inline async_hook *tu_hook_new(async_loop *loop, int kind, void *ud) {
  async_hook *h = NULL;
  assert_int_equal(async_hook_new(&h, loop, kind, ud), 0);
  return h;
}

/* A new (stopped) watcher of fd with userdata ud; fails the test on error. */
static inline async_watcher *tu_watcher_new(async_loop *loop, int fd, void *ud) {
  async_watcher *w = NULL;
  assert_int_equal(async_watcher_new(&w, loop, fd, ud), 0);
  return w;
}

/* A new timer with userdata ud, started with (timeout_ms, repeat_ms, cb);
 * fails the test if either call fails. */
static inline async_timer *tu_timer_start(async_loop *loop, void *ud, uint64_t timeout_ms, uint64_t repeat_ms,
                                          async_timer_fn cb) {
  async_timer *t = tu_timer_new(loop, ud);
  assert_int_equal(async_timer_start(t, timeout_ms, repeat_ms, cb), 0);
  return t;
}

/* Closes a handle without a close callback; fails the test on error. */
static inline void tu_close(async_handle *h) {
  assert_int_equal(async_handle_close(h, NULL), 0);
}

/* A timer callback stopping its loop. */
static inline void tu_stop_loop_cb(async_timer *t, void *ud) {
  (void)ud;
  async_loop_stop(async_handle_loop(async_timer_handle(t)));
}

/* An unreferenced timer stopping the loop after ms (it does not keep the
 * loop alive): a bound on a blocking run. Close it with tu_close(). */
static inline async_timer *tu_guard(async_loop *loop, uint64_t ms) {
  async_timer *t = tu_timer_start(loop, NULL, ms, 0, tu_stop_loop_cb);
  assert_int_equal(async_handle_unref(async_timer_handle(t)), 0);
  return t;
}

/*
 * async_loop_run_until() bounded by a guard of ms: returns the future's
 * status, or ASYNC_ESTATE if the guard stopped the loop first.
 */
static inline int tu_wait_future(async_loop *loop, async_future *f, uint64_t ms) {
  async_timer *t = tu_guard(loop, ms);
  int rc = async_loop_run_until(loop, f);
  tu_close(async_timer_handle(t));
  return rc;
}

/*
 * Runs the loop until nothing is left (run(DEFAULT) must return 0), then
 * frees it (must return 0). The caller has closed or stopped everything.
 */
static inline void tu_finish(async_loop *loop) {
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(async_loop_free(loop), 0);
}

/* Callbacks that do nothing, one per callback type. */
static inline void tu_noop_timer_cb(async_timer *t, void *ud) { (void)t; (void)ud; }
static inline void tu_noop_watcher_cb(async_watcher *w, uint32_t ev, void *ud) { (void)w; (void)ev; (void)ud; }
static inline void tu_noop_hook_cb(async_hook *h, void *ud) { (void)h; (void)ud; }
static inline void tu_noop_signal_cb(async_signal *s, int signum, void *ud) { (void)s; (void)signum; (void)ud; }
static inline void tu_noop_soon_cb(async_loop *l, void *ud) { (void)l; (void)ud; }
static inline void tu_noop_future_cb(async_future *f, int status, void *ud) { (void)f; (void)status; (void)ud; }
static inline void tu_noop_cancel_cb(async_future *f, int cancelled, void *ud) { (void)f; (void)cancelled; (void)ud; }
static inline void tu_noop_log_cb(async_loop *l, int level, const char *msg, void *ud) {
  (void)l; (void)level; (void)msg; (void)ud;
}

/* Callbacks that add one to the int their userdata points to. */
static inline void tu_count_timer_cb(async_timer *t, void *ud) { (void)t; (*(int *)ud)++; }
static inline void tu_count_hook_cb(async_hook *h, void *ud) { (void)h; (*(int *)ud)++; }
static inline void tu_count_soon_cb(async_loop *l, void *ud) { (void)l; (*(int *)ud)++; }
static inline void tu_count_close_cb(async_handle *h, void *ud) { (void)h; (*(int *)ud)++; }

/* Closes both fds of a pipe or socketpair (errors ignored). */
static inline void tu_close_pair(int fd[2]) {
  close(fd[0]);
  close(fd[1]);
}

/* ---- stream tests: an echo server on the library itself ----------------- */

static inline size_t tu_echo_data(async_stream *s, const uint8_t *d, size_t n, void *ud) {
  (void)ud;
  async_stream_write(s, d, n);
  return n;
}

/* Counts losses into the int the userdata points to (if any). */
static inline void tu_echo_lost(async_stream *s, int err, void *ud) {
  (void)s;
  (void)err;
  if (ud) (*(int *)ud)++;
}

static const async_stream_protocol tu_echo_protocol = {
    sizeof(async_stream_protocol), NULL, tu_echo_data, NULL, tu_echo_lost, NULL, NULL, NULL, NULL, 0, NULL,
};

/* Every connection echoes; userdata (an int *, or NULL) counts losses. */
static inline int tu_echo_factory(const async_stream_protocol **p, void **ud, async_server *s, void *userdata) {
  (void)s;
  *p = &tu_echo_protocol;
  *ud = userdata;
  return 0;
}

static inline async_server *tu_echo_server(async_loop *loop, const char *host, uint16_t port) {
  async_server *s = NULL;
  assert_int_equal(async_tcp_listen(&s, loop, host, port, 0, 0, tu_echo_factory, NULL), 0);
  return s;
}

/* Runs NOWAIT iterations until *flag >= want, failing after ms. */
static inline void tu_run_until(async_loop *loop, const int *flag, int want, double ms) {
  uint64_t t0 = tu_now_ns();
  while (*flag < want) {
    async_loop_run(loop, ASYNC_RUN_NOWAIT);
    assert_true(tu_elapsed_ms(t0) < ms);
    if (*flag < want) tu_sleep_ms(1);
  }
}

/* Closes a server's listening handle and runs until it is closed. */
static inline void tu_server_close(async_loop *loop, async_server *server) {
  int closed = 0;
  assert_int_equal(async_handle_set_userdata(async_server_handle(server), &closed), 0);
  assert_int_equal(async_handle_close(async_server_handle(server), tu_count_close_cb), 0);
  tu_run_until(loop, &closed, 1, 3000);
}

#endif
