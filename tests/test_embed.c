/*
 * async_loop_fd() and async_loop_run_for() (async/loop.h): the fd is
 * readable exactly while a NOWAIT run has work, never stale after a change
 * made between runs (libuv#1565), never busy; a plain poll() host and an
 * epoll host nesting the fd drive timers, posts, a watcher and a TCP echo
 * (embed_host.h). Under the select and poll backends async_loop_fd()
 * returns ASYNC_ENOTSUP, which the tests assert. run_for: the budget, FIFO
 * order across calls, I/O and timers served while callbacks saturate it.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>

#include "embed_host.h"

/* Whether async_loop_fd() works under this backend; asserts ENOTSUP when not. */
static int fd_supported(void) {
  async_loop *loop = tu_loop_new();
  int fd = -1;
  int rc = async_loop_fd(&fd, loop);
  if (tu_backend() == TU_EPOLL) {
    assert_int_equal(rc, 0);
  } else {
    assert_int_equal(rc, ASYNC_ENOTSUP);
    assert_int_equal(fd, -1);
  }
  assert_int_equal(async_loop_free(loop), 0);
  return rc == 0;
}

/* 1 if fd is readable within ms, else 0. */
static int readable_within(int fd, int ms) {
  struct pollfd p = {fd, POLLIN, 0};
  int n;
  uint64_t t0 = tu_now_ns();
  /* A signal to this thread interrupts the poll: wait out the rest. */
  while ((n = poll(&p, 1, ms)) < 0 && errno == EINTR) {
    int spent = (int)tu_elapsed_ms(t0);
    ms = ms > spent ? ms - spent : 0;
  }
  assert_true(n >= 0);
  return n == 1 && (p.revents & POLLIN);
}

/* Runs NOWAIT until the fd is no longer readable (at most 20 runs). */
static void settle(async_loop *loop, int fd) {
  for (int i = 0; i < 20 && readable_within(fd, 0); i++) async_loop_run(loop, ASYNC_RUN_NOWAIT);
  assert_false(readable_within(fd, 0));
}

static async_loop *embedded(int *fd) {
  async_loop *loop = tu_loop_new();
  assert_int_equal(async_loop_fd(fd, loop), 0);
  int again = -1;
  assert_int_equal(async_loop_fd(&again, loop), 0);
  assert_int_equal(again, *fd); /* one fd per loop */
  settle(loop, *fd);
  return loop;
}

/* ---- bad input ---------------------------------------------------------- */

static void *wrong_thread_calls(void *arg) {
  async_loop *loop = arg;
  int fd = -1;
  static int results[2];
  results[0] = async_loop_fd(&fd, loop);
  results[1] = async_loop_run_for(loop, 1000);
  return results;
}

static void test_bad_input(void **state) {
  (void)state;
  int fd = -1;
  assert_int_equal(async_loop_fd(NULL, NULL), ASYNC_EINVAL);
  assert_int_equal(async_loop_fd(&fd, NULL), ASYNC_EINVAL);
  assert_int_equal(async_loop_fd(&fd, (async_loop *)&fd), ASYNC_EINVAL); /* not a loop */
  assert_int_equal(async_loop_run_for(NULL, 1000), ASYNC_EINVAL);
  async_loop *loop = tu_loop_new();
  assert_int_equal(async_loop_fd(NULL, loop), ASYNC_EINVAL);
  assert_int_equal(async_loop_run_for(loop, 0), ASYNC_EINVAL);
  assert_int_equal(async_loop_set_thread_check(loop, 1), 0);
  pthread_t t;
  void *res = NULL;
  assert_int_equal(pthread_create(&t, NULL, wrong_thread_calls, loop), 0);
  assert_int_equal(pthread_join(t, &res), 0);
  assert_int_equal(((int *)res)[0], ASYNC_EWRONGTHREAD);
  assert_int_equal(((int *)res)[1], ASYNC_EWRONGTHREAD);
  assert_int_equal(async_loop_free(loop), 0);
}

static void nested_cb(async_loop *loop, void *ud) {
  int *rc = ud;
  int fd;
  rc[0] = async_loop_run_for(loop, 1000);
  rc[1] = async_loop_fd(&fd, loop); /* allowed inside a run */
}

static void test_run_for_nested(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int rc[2] = {1, 1};
  assert_int_equal(async_loop_call_soon(loop, nested_cb, rc), 0);
  assert_int_equal(async_loop_run_for(loop, 100000), 0);
  assert_int_equal(rc[0], ASYNC_EBUSY);
  assert_int_equal(rc[1], tu_backend() == TU_EPOLL ? 0 : ASYNC_ENOTSUP);
  tu_finish(loop);
}

/* ---- what makes the fd readable ---------------------------------------- */

/* A loop with nothing to do: the fd stays unreadable. */
static void test_fd_idle(void **state) {
  (void)state;
  if (!fd_supported()) return;
  int fd;
  async_loop *loop = embedded(&fd);
  assert_false(readable_within(fd, 50));
  /* Queries between runs do not wake the host (it calls them every wait). */
  int64_t ms;
  uint64_t now;
  assert_int_equal(async_loop_timeout(&ms, loop), 0);
  assert_int_equal(async_loop_now(&now, loop), 0);
  assert_int_equal(async_loop_alive(loop), 0);
  assert_false(readable_within(fd, 0));
  assert_int_equal(async_loop_free(loop), 0);
}

/* call_soon between runs. */
static void test_fd_call_soon(void **state) {
  (void)state;
  if (!fd_supported()) return;
  int fd, ran = 0;
  async_loop *loop = embedded(&fd);
  assert_int_equal(async_loop_call_soon(loop, tu_count_soon_cb, &ran), 0);
  assert_true(readable_within(fd, 0));
  async_loop_run(loop, ASYNC_RUN_NOWAIT);
  assert_int_equal(ran, 1);
  settle(loop, fd);
  assert_int_equal(async_loop_free(loop), 0);
}

/* A callback queueing another: readable after the run (the next one has work). */
static void requeue_cb(async_loop *loop, void *ud) {
  int *n = ud;
  if (++*n < 3) async_loop_call_soon(loop, requeue_cb, ud);
}

static void test_fd_work_left_by_run(void **state) {
  (void)state;
  if (!fd_supported()) return;
  int fd, n = 0;
  async_loop *loop = embedded(&fd);
  assert_int_equal(async_loop_call_soon(loop, requeue_cb, &n), 0);
  async_loop_run(loop, ASYNC_RUN_NOWAIT);
  assert_int_equal(n, 1);
  assert_true(readable_within(fd, 0));
  async_loop_run(loop, ASYNC_RUN_NOWAIT);
  assert_true(readable_within(fd, 0));
  async_loop_run(loop, ASYNC_RUN_NOWAIT);
  assert_int_equal(n, 3);
  settle(loop, fd);
  assert_int_equal(async_loop_free(loop), 0);
}

/*
 * libuv#1565: a watcher started between runs, its fd made readable only
 * after the host began waiting (by a thread). libev puts the fd in its
 * epoll set only inside its next poll; the host must not sleep through it.
 */
static void test_fd_watcher_between_runs(void **state) {
  (void)state;
  if (!fd_supported()) return;
  struct eh h;
  eh_init(&h);
  settle(h.loop, h.fd);
  assert_int_equal(pipe(h.pipe_fd), 0);
  h.watcher = tu_watcher_new(h.loop, h.pipe_fd[0], &h);
  h.pending = 1;
  assert_int_equal(async_watcher_start(h.watcher, ASYNC_READABLE, eh_watcher_cb), 0);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, eh_pipe_writer, &h), 0);
  /* The host: wait on the fd only (the guard bounds it), run NOWAIT. */
  while (!h.done) {
    assert_true(readable_within(h.fd, 10000));
    async_loop_run(h.loop, ASYNC_RUN_NOWAIT);
  }
  pthread_join(t, NULL);
  eh_finish(&h);
}

/* A timer started between runs, after the host computed nothing. */
static void test_fd_timer(void **state) {
  (void)state;
  if (!fd_supported()) return;
  int fd, fired = 0;
  async_loop *loop = embedded(&fd);
  uint64_t t0 = tu_now_ns();
  async_timer *t = tu_timer_start(loop, &fired, 40, 0, tu_count_timer_cb);
  while (!fired) {
    assert_true(readable_within(fd, 2000));
    async_loop_run(loop, ASYNC_RUN_NOWAIT);
  }
  double ms = tu_elapsed_ms(t0);
  assert_true(ms >= 40);
  assert_true(ms < 1000);
  settle(loop, fd);
  tu_close(async_timer_handle(t));
  tu_finish(loop);
}

static void *delayed_post(void *arg) {
  tu_sleep_ms(30);
  async_loop_post(arg, tu_noop_soon_cb, NULL);
  return NULL;
}

static void *delayed_wakeup(void *arg) {
  tu_sleep_ms(30);
  async_loop_wakeup(arg);
  return NULL;
}

/* A post and a wakeup from another thread wake a host asleep on the fd. */
static void test_fd_post_wakeup(void **state) {
  (void)state;
  if (!fd_supported()) return;
  int fd;
  async_loop *loop = embedded(&fd);
  void *(*fns[2])(void *) = {delayed_post, delayed_wakeup};
  for (int i = 0; i < 2; i++) {
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, fns[i], loop), 0);
    assert_true(readable_within(fd, 2000));
    pthread_join(t, NULL);
    settle(loop, fd);
  }
  assert_int_equal(async_loop_free(loop), 0);
}

static void count_signal(async_signal *s, int signum, void *ud) {
  (void)s;
  (void)signum;
  (*(int *)ud)++;
}

static void *delayed_kill(void *arg) {
  (void)arg;
  tu_sleep_ms(30);
  kill(getpid(), SIGUSR2);
  return NULL;
}

/* A signal arriving while the host sleeps (libev writes its own fd only
 * while blocked inside its poll). */
static void test_fd_signal(void **state) {
  (void)state;
  if (!fd_supported()) return;
  int fd, got = 0;
  async_loop *loop = embedded(&fd);
  async_signal *sig = NULL;
  assert_int_equal(async_signal_new(&sig, loop, &got), 0);
  assert_int_equal(async_signal_start(sig, SIGUSR2, count_signal), 0);
  settle(loop, fd);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, delayed_kill, NULL), 0);
  for (int i = 0; i < 10 && !got; i++) {
    assert_true(readable_within(fd, 2000));
    async_loop_run(loop, ASYNC_RUN_NOWAIT);
  }
  pthread_join(t, NULL);
  assert_int_equal(got, 1);
  settle(loop, fd);
  tu_close(async_signal_handle(sig));
  tu_finish(loop);
}

/* No busy wake: over 1 s with a far timer and an idle watcher, at most 2
 * wake-ups of a host waiting on the fd. */
static void test_fd_no_busy_wake(void **state) {
  (void)state;
  if (!fd_supported()) return;
  int fd, sv[2];
  async_loop *loop = embedded(&fd);
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  async_watcher *w = tu_watcher_new(loop, sv[0], NULL);
  assert_int_equal(async_watcher_start(w, ASYNC_READABLE, tu_noop_watcher_cb), 0);
  async_timer *t = tu_timer_start(loop, NULL, 10000, 0, tu_noop_timer_cb);
  async_loop_run(loop, ASYNC_RUN_NOWAIT);
  int wakeups = 0;
  uint64_t t0 = tu_now_ns();
  for (;;) {
    double left = 1000 - tu_elapsed_ms(t0);
    if (left <= 0) break;
    if (readable_within(fd, (int)left + 1)) {
      wakeups++;
      async_loop_run(loop, ASYNC_RUN_NOWAIT);
    }
  }
  assert_true(wakeups <= 2);
  tu_close(async_watcher_handle(w));
  tu_close(async_timer_handle(t));
  tu_close_pair(sv);
  tu_finish(loop);
}

/* ---- hosts: plain poll() with an infinite timeout, epoll nesting the fd --- */

static void test_poll_host(void **state) {
  (void)state;
  if (!fd_supported()) return;
  struct eh h;
  eh_init(&h);
  eh_start_all(&h);
  while (!h.done) {
    struct pollfd p = {h.fd, POLLIN, 0};
    int n = poll(&p, 1, -1);
    assert_true(n >= 0 || errno == EINTR);
    h.wakeups++;
    async_loop_run(h.loop, ASYNC_RUN_NOWAIT);
  }
  eh_finish(&h);
}

static void test_epoll_host(void **state) {
  (void)state;
  if (!fd_supported()) return;
  struct eh h;
  eh_init(&h);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  assert_true(ep >= 0);
  struct epoll_event ev = {.events = EPOLLIN, .data = {.fd = h.fd}};
  assert_int_equal(epoll_ctl(ep, EPOLL_CTL_ADD, h.fd, &ev), 0);
  eh_start_all(&h);
  while (!h.done) {
    struct epoll_event out;
    int n = epoll_wait(ep, &out, 1, -1);
    assert_true(n >= 0 || errno == EINTR);
    if (n == 1) assert_int_equal(out.data.fd, h.fd);
    async_loop_run(h.loop, ASYNC_RUN_NOWAIT);
  }
  assert_int_equal(epoll_ctl(ep, EPOLL_CTL_DEL, h.fd, NULL), 0);
  close(ep);
  eh_finish(&h);
}

/* ---- run_for ------------------------------------------------------------- */

struct spin {
  int order[4000];
  int ran;
  int bad_order;
  async_loop *loop;
  int requeue; /* each callback queues another (saturation) */
};

static void spin_cb(async_loop *loop, void *ud) {
  struct spin *s = ud;
  (void)loop;
  tu_spin_ms(1);
  s->ran++;
  if (s->requeue) async_loop_call_soon(loop, spin_cb, s);
}

static int g_seq_expected;
static struct spin *g_spin;

static void seq_cb(async_loop *loop, void *ud) {
  (void)loop;
  int seq = (int)(intptr_t)ud;
  if (seq != g_seq_expected) g_spin->bad_order++;
  g_seq_expected++;
  g_spin->ran++;
  tu_spin_ms(1);
}

/* The budget stops the ready queue; the rest runs first in the next call. */
static void test_run_for_fifo(void **state) {
  (void)state;
  static struct spin s;
  memset(&s, 0, sizeof s);
  g_spin = &s;
  g_seq_expected = 0;
  async_loop *loop = tu_loop_new();
  for (int i = 0; i < 40; i++) assert_int_equal(async_loop_call_soon(loop, seq_cb, (void *)(intptr_t)i), 0);
  int calls = 0, next = 40;
  while (s.ran < 50) {
    int before = s.ran;
    uint64_t t0 = tu_now_ns();
    int rc = async_loop_run_for(loop, 5000); /* 5 ms: about 5 callbacks */
    double ms = tu_elapsed_ms(t0);
    calls++;
    assert_true(s.ran > before); /* progress every call */
    /* Each callback takes at least 1 ms: the budget stops the pass after
     * at most 5 (whatever the machine's load, which only makes it fewer). */
    assert_true(s.ran - before <= 6);
    assert_true(ms < 2000);
    if (s.ran < next) assert_int_equal(rc, 1);
    /* Queued between calls: after every earlier one. */
    if (calls == 2)
      for (int i = 0; i < 10; i++) assert_int_equal(async_loop_call_soon(loop, seq_cb, (void *)(intptr_t)next++), 0);
    assert_true(calls < 100);
  }
  assert_true(calls >= 5);
  assert_int_equal(s.bad_order, 0);
  assert_int_equal(async_loop_run_for(loop, 1000), 0);
  tu_finish(loop);
}

static void io_count_cb(async_watcher *w, uint32_t events, void *ud) {
  (void)events;
  char c;
  if (read(async_watcher_fd(w), &c, 1) == 1) (*(int *)ud)++;
}

/* Callbacks that saturate every budget (each queues another) do not
 * starve I/O or due timers: every call serves them. */
static void test_run_for_serves_io(void **state) {
  (void)state;
  static struct spin s;
  memset(&s, 0, sizeof s);
  s.requeue = 1;
  async_loop *loop = tu_loop_new();
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  int io = 0, fired = 0;
  async_watcher *w = tu_watcher_new(loop, sv[0], &io);
  assert_int_equal(async_watcher_start(w, ASYNC_READABLE, io_count_cb), 0);
  for (int i = 0; i < 4; i++) assert_int_equal(async_loop_call_soon(loop, spin_cb, &s), 0);
  async_timer *t = tu_timer_start(loop, &fired, 5, 0, tu_count_timer_cb);
  for (int round = 1; round <= 3; round++) {
    tu_sleep_ms(6); /* the timer is due in the first round */
    assert_int_equal(write(sv[1], "x", 1), 1);
    uint64_t t0 = tu_now_ns();
    int before = s.ran;
    assert_int_equal(async_loop_run_for(loop, 2000), 1); /* callbacks left */
    assert_true(tu_elapsed_ms(t0) < 2000);
    assert_true(s.ran - before <= 3); /* 1 ms each against a 2 ms budget */
    assert_int_equal(io, round);
    assert_int_equal(fired, 1);
    assert_true(s.ran > before);
  }
  s.requeue = 0;
  for (int i = 0; i < 200 && async_loop_run_for(loop, 2000) != 0; i++) {
  }
  tu_close(async_watcher_handle(w));
  tu_close(async_timer_handle(t));
  tu_close_pair(sv);
  tu_finish(loop);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bad_input),
      cmocka_unit_test(test_run_for_nested),
      cmocka_unit_test(test_fd_idle),
      cmocka_unit_test(test_fd_call_soon),
      cmocka_unit_test(test_fd_work_left_by_run),
      cmocka_unit_test(test_fd_watcher_between_runs),
      cmocka_unit_test(test_fd_timer),
      cmocka_unit_test(test_fd_post_wakeup),
      cmocka_unit_test(test_fd_signal),
      cmocka_unit_test(test_fd_no_busy_wake),
      cmocka_unit_test(test_poll_host),
      cmocka_unit_test(test_epoll_host),
      cmocka_unit_test(test_run_for_fifo),
      cmocka_unit_test(test_run_for_serves_io),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
