/*
 * async_signal: POSIX signals as loop callbacks (async/signal.h; DESIGN.md
 * §5; libev.md §14, §17; libuv's we_get_signal(s), signal_pending_on_close
 * tests).
 *
 * Deliveries (coalescing allowed between iterations, exact when one raise
 * per iteration), several watchers of one loop, one loop per signal
 * (ASYNC_EBUSY, no abort) and hand-over after stop/close/free, invalid
 * signal numbers, the previous disposition restored after the last stop,
 * no handler for signals never watched, a pending delivery dropped on
 * stop/close, and ordering through the ready queue.
 *
 * SIGUSR1/SIGUSR2 get a counting handler of the test's own before each
 * test, so a raise that the library does not take never kills the
 * process; that handler is also the "previous disposition" to restore.
 */
#include "test_util.h"

#include <limits.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t g_user_hits[NSIG]; /* our own handler's counts */

static void user_handler(int signum, siginfo_t *info, void *ctx) {
  (void)info;
  (void)ctx;
  if (signum > 0 && signum < NSIG) {
    g_user_hits[signum]++;
  }
}

/* Installs user_handler (SA_SIGINFO, SIGTERM in the mask) for signum. */
static void install_user_handler(int signum) {
  struct sigaction sa = {0};
  sa.sa_sigaction = user_handler;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  sigaddset(&sa.sa_mask, SIGTERM);
  assert_int_equal(sigaction(signum, &sa, NULL), 0);
  g_user_hits[signum] = 0;
}

/* True if signum's current disposition is exactly install_user_handler's. */
static int has_user_handler(int signum) {
  struct sigaction cur = {0};
  if (sigaction(signum, NULL, &cur) != 0) {
    return 0;
  }
  return (cur.sa_flags & SA_SIGINFO) != 0 && cur.sa_sigaction == user_handler &&
         sigismember(&cur.sa_mask, SIGTERM) == 1;
}

static int setup(void **state) {
  (void)state;
  install_user_handler(SIGUSR1);
  install_user_handler(SIGUSR2);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  signal(SIGUSR1, SIG_DFL);
  signal(SIGUSR2, SIG_DFL);
  return 0;
}

/* What a signal callback saw. Never asserts (runs inside the loop). */
struct srec {
  int calls;
  int last_signum;
  async_signal *sig;
  void *ud;
  int *seq;        /* shared sequence counter, may be NULL */
  int order[16];   /* *seq values at each call */
};

static void rec_cb(async_signal *s, int signum, void *ud) {
  struct srec *r = ud;
  if (r->calls < 16) {
    r->order[r->calls] = r->seq ? ++*r->seq : 0;
  }
  r->calls++;
  r->last_signum = signum;
  r->sig = s;
  r->ud = ud;
}

/*
 * Runs NOWAIT iterations until *counter reaches target or max_ms pass,
 * then a few more iterations (to catch duplicates). Returns the final
 * value of *counter.
 */
static int run_until_count(async_loop *loop, const int *counter, int target, int max_ms) {
  uint64_t t0 = tu_now_ns();
  while (*counter < target && tu_elapsed_ms(t0) < (double)max_ms) {
    assert_true(async_loop_run(loop, ASYNC_RUN_NOWAIT) >= 0);
    if (*counter < target) {
      tu_sleep_ms(1);
    }
  }
  for (int i = 0; i < 3; i++) {
    assert_true(async_loop_run(loop, ASYNC_RUN_NOWAIT) >= 0);
  }
  return *counter;
}

/* A new signal watcher with userdata ud; the call must succeed. */
static async_signal *signal_new(async_loop *loop, void *ud) {
  async_signal *s = NULL;
  assert_int_equal(async_signal_new(&s, loop, ud), 0);
  return s;
}

/* A new signal watcher started for signum with cb; both must succeed. */
static async_signal *watch_signal(async_loop *loop, void *ud, int signum, async_signal_fn cb) {
  async_signal *s = signal_new(loop, ud);
  assert_int_equal(async_signal_start(s, signum, cb), 0);
  return s;
}

/* Closes s, runs the loop to the end and frees it. */
static void close_and_finish(async_loop *loop, async_signal *s) {
  tu_close(async_signal_handle(s));
  tu_finish(loop);
}

/* ------------------------------------------------------------------ */

/* One raise per iteration: exactly one callback each, with signum, the
 * watcher and its userdata. */
static void test_one_raise_per_iteration(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  struct srec r = {0};
  async_signal *s = signal_new(loop, &r);
  assert_int_equal(async_signal_signum(s), 0);
  assert_int_equal(async_handle_is_active(async_signal_handle(s)), 0);
  assert_int_equal(async_signal_start(s, SIGUSR1, rec_cb), 0);
  assert_int_equal(async_signal_signum(s), SIGUSR1);
  assert_int_equal(async_handle_is_active(async_signal_handle(s)), 1);
  assert_false(has_user_handler(SIGUSR1)); /* the library's handler now */

  for (int i = 1; i <= 10; i++) {
    assert_int_equal(raise(SIGUSR1), 0);
    assert_int_equal(r.calls, i - 1); /* never inside raise() */
    assert_int_equal(run_until_count(loop, &r.calls, i, 2000), i);
  }
  assert_int_equal(r.last_signum, SIGUSR1);
  assert_ptr_equal(r.sig, s);
  assert_ptr_equal(r.ud, &r);
  assert_int_equal(g_user_hits[SIGUSR1], 0); /* all taken by the library */

  close_and_finish(loop, s);
  assert_true(has_user_handler(SIGUSR1));
}

/* Several raises between two iterations may coalesce: at least one call,
 * at most one per raise. */
static void test_raises_coalesce(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  struct srec r = {0};
  async_signal *s = watch_signal(loop, &r, SIGUSR1, rec_cb);
  for (int i = 0; i < 5; i++) {
    assert_int_equal(raise(SIGUSR1), 0);
  }
  int n = run_until_count(loop, &r.calls, 1, 2000);
  assert_true(n >= 1);
  assert_true(n <= 5);
  assert_int_equal(r.last_signum, SIGUSR1);
  /* Nothing more arrives later. */
  tu_sleep_ms(5);
  assert_true(async_loop_run(loop, ASYNC_RUN_NOWAIT) >= 0);
  assert_int_equal(r.calls, n);
  close_and_finish(loop, s);
}

/* Two watchers of one loop on one signal each get every delivery; after
 * one stops, the other still gets them and the handler stays installed. */
static void test_two_watchers_one_loop(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  struct srec a = {0}, b = {0};
  async_signal *sa = NULL, *sb = NULL;
  sa = signal_new(loop, &a);
  sb = signal_new(loop, &b);
  assert_int_equal(async_signal_start(sa, SIGUSR2, rec_cb), 0);
  assert_int_equal(async_signal_start(sb, SIGUSR2, rec_cb), 0);
  for (int i = 1; i <= 3; i++) {
    assert_int_equal(raise(SIGUSR2), 0);
    run_until_count(loop, &b.calls, i, 2000);
    run_until_count(loop, &a.calls, i, 2000);
    assert_int_equal(a.calls, i);
    assert_int_equal(b.calls, i);
  }
  assert_ptr_equal(a.sig, sa);
  assert_ptr_equal(b.sig, sb);
  assert_int_equal(a.last_signum, SIGUSR2);
  assert_int_equal(b.last_signum, SIGUSR2);

  assert_int_equal(async_signal_stop(sa), 0);
  assert_int_equal(async_signal_signum(sa), 0);
  assert_false(has_user_handler(SIGUSR2)); /* sb still watches */
  assert_int_equal(raise(SIGUSR2), 0);
  assert_int_equal(run_until_count(loop, &b.calls, 4, 2000), 4);
  assert_int_equal(a.calls, 3);
  assert_int_equal(g_user_hits[SIGUSR2], 0);

  assert_int_equal(async_signal_stop(sb), 0);
  assert_true(has_user_handler(SIGUSR2));
  /* Now the process's own handler gets it, the watchers do not. */
  assert_int_equal(raise(SIGUSR2), 0);
  assert_int_equal(g_user_hits[SIGUSR2], 1);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_NOWAIT), 0);
  assert_int_equal(a.calls, 3);
  assert_int_equal(b.calls, 4);

  tu_close(async_signal_handle(sa));
  close_and_finish(loop, sb);
}

/* One loop per signal: a second loop gets ASYNC_EBUSY (and no abort); it
 * can take the signal after the first loop's watcher stops, closes, or
 * the first loop is gone. */
static void test_second_loop_ebusy(void **state) {
  (void)state;
  async_loop *l1 = tu_loop_new();
  async_loop *l2 = tu_loop_new();
  struct srec r1 = {0}, r2 = {0};
  async_signal *s1 = NULL, *s2 = NULL;
  s1 = signal_new(l1, &r1);
  s2 = signal_new(l2, &r2);
  assert_int_equal(async_signal_start(s1, SIGUSR1, rec_cb), 0);
  assert_int_equal(async_signal_start(s2, SIGUSR1, rec_cb), ASYNC_EBUSY);
  assert_int_equal(async_handle_is_active(async_signal_handle(s2)), 0);
  assert_int_equal(async_signal_signum(s2), 0);
  /* A different signal is fine on the second loop. */
  assert_int_equal(async_signal_start(s2, SIGUSR2, rec_cb), 0);
  assert_int_equal(async_signal_start(s2, SIGUSR1, rec_cb), ASYNC_EBUSY);
  /* A failed restart leaves the old one watched. */
  assert_int_equal(async_signal_signum(s2), SIGUSR2);
  assert_int_equal(async_handle_is_active(async_signal_handle(s2)), 1);

  /* The first loop still gets SIGUSR1, the second does not. */
  assert_int_equal(raise(SIGUSR1), 0);
  assert_int_equal(run_until_count(l1, &r1.calls, 1, 2000), 1);
  assert_int_equal(async_loop_run(l2, ASYNC_RUN_NOWAIT), 1);
  assert_int_equal(r2.calls, 0);

  /* Hand-over after stop. */
  assert_int_equal(async_signal_stop(s1), 0);
  assert_int_equal(async_signal_start(s2, SIGUSR1, rec_cb), 0);
  assert_int_equal(async_signal_signum(s2), SIGUSR1);
  assert_int_equal(async_signal_start(s1, SIGUSR1, rec_cb), ASYNC_EBUSY);
  assert_int_equal(raise(SIGUSR1), 0);
  assert_int_equal(run_until_count(l2, &r2.calls, 1, 2000), 1);
  assert_int_equal(r2.last_signum, SIGUSR1);
  assert_int_equal(async_loop_run(l1, ASYNC_RUN_NOWAIT), 0);
  assert_int_equal(r1.calls, 1);
  /* SIGUSR2 was released by the restart: the first loop may take it. */
  assert_int_equal(async_signal_start(s1, SIGUSR2, rec_cb), 0);
  assert_int_equal(async_signal_stop(s1), 0);

  /* Hand-over after close (before the close callback ran). */
  tu_close(async_signal_handle(s2));
  assert_int_equal(async_signal_start(s1, SIGUSR1, rec_cb), 0);
  assert_int_equal(raise(SIGUSR1), 0);
  assert_int_equal(run_until_count(l1, &r1.calls, 2, 2000), 2);
  assert_int_equal(r2.calls, 1);
  tu_finish(l2);

  /* Hand-over after the owning loop is gone. */
  close_and_finish(l1, s1);
  async_loop *l3 = tu_loop_new();
  struct srec r3 = {0};
  async_signal *s3 = watch_signal(l3, &r3, SIGUSR1, rec_cb);
  assert_int_equal(raise(SIGUSR1), 0);
  assert_int_equal(run_until_count(l3, &r3.calls, 1, 2000), 1);
  close_and_finish(l3, s3);
  assert_true(has_user_handler(SIGUSR1));
  assert_true(has_user_handler(SIGUSR2));
  assert_int_equal(g_user_hits[SIGUSR1], 0);
}

/* Invalid signal numbers and NULL callbacks: ASYNC_EINVAL, nothing
 * installed, the watcher unchanged. */
static void test_invalid_signums(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_signal *s = signal_new(loop, NULL);
  const int bad[] = {0, -1, -SIGUSR1, 65, NSIG, NSIG + 1, 128, 1000, INT_MAX, INT_MIN, SIGKILL, SIGSTOP};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(async_signal_start(s, bad[i], tu_noop_signal_cb), ASYNC_EINVAL);
    assert_int_equal(async_signal_signum(s), 0);
    assert_int_equal(async_handle_is_active(async_signal_handle(s)), 0);
  }
  assert_int_equal(async_signal_start(s, SIGUSR1, NULL), ASYNC_EINVAL);
  assert_true(has_user_handler(SIGUSR1));

  /* While active: a bad restart keeps the current signal. */
  assert_int_equal(async_signal_start(s, SIGUSR1, tu_noop_signal_cb), 0);
  assert_int_equal(async_signal_start(s, SIGKILL, tu_noop_signal_cb), ASYNC_EINVAL);
  assert_int_equal(async_signal_start(s, 0, tu_noop_signal_cb), ASYNC_EINVAL);
  assert_int_equal(async_signal_start(s, SIGUSR2, NULL), ASYNC_EINVAL);
  assert_int_equal(async_signal_signum(s), SIGUSR1);
  assert_true(has_user_handler(SIGUSR2));

  /* SIGKILL/SIGSTOP dispositions are untouched (they cannot change). */
  struct sigaction cur;
  assert_int_equal(sigaction(SIGKILL, NULL, &cur), 0);
  assert_true(cur.sa_handler == SIG_DFL);

  close_and_finish(loop, s);
  assert_true(has_user_handler(SIGUSR1));
}

/* The previous disposition (handler, flags, mask) comes back after the
 * last stop, after close, and after restarting with another signal. */
static void test_previous_disposition_restored(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_signal *s = signal_new(loop, NULL);
  assert_true(has_user_handler(SIGUSR1));

  assert_int_equal(async_signal_start(s, SIGUSR1, tu_noop_signal_cb), 0);
  assert_false(has_user_handler(SIGUSR1));
  assert_int_equal(async_signal_stop(s), 0);
  assert_true(has_user_handler(SIGUSR1));
  assert_int_equal(async_signal_stop(s), 0); /* no-op when stopped */
  assert_true(has_user_handler(SIGUSR1));

  /* Restart with another signal: the first one is given back at once. */
  assert_int_equal(async_signal_start(s, SIGUSR1, tu_noop_signal_cb), 0);
  assert_int_equal(async_signal_start(s, SIGUSR2, tu_noop_signal_cb), 0);
  assert_int_equal(async_signal_signum(s), SIGUSR2);
  assert_true(has_user_handler(SIGUSR1));
  assert_false(has_user_handler(SIGUSR2));

  /* Restart with the same signal: still watched, nothing restored. */
  assert_int_equal(async_signal_start(s, SIGUSR2, tu_noop_signal_cb), 0);
  assert_false(has_user_handler(SIGUSR2));

  /* Close restores too (immediately, not only at the close callback). */
  tu_close(async_signal_handle(s));
  assert_true(has_user_handler(SIGUSR2));
  tu_finish(loop);
  assert_true(has_user_handler(SIGUSR2));

  /* A SIG_IGN disposition is restored as SIG_IGN. */
  signal(SIGUSR1, SIG_IGN);
  loop = tu_loop_new();
  s = signal_new(loop, NULL);
  assert_int_equal(async_signal_start(s, SIGUSR1, tu_noop_signal_cb), 0);
  struct sigaction cur;
  assert_int_equal(sigaction(SIGUSR1, NULL, &cur), 0);
  assert_true(cur.sa_handler != SIG_IGN);
  assert_int_equal(async_signal_stop(s), 0);
  assert_int_equal(sigaction(SIGUSR1, NULL, &cur), 0);
  assert_true(cur.sa_handler == SIG_IGN);
  close_and_finish(loop, s);
  install_user_handler(SIGUSR1);
}

/* No handler is installed for signals nobody watched: every disposition
 * is the same after creating loops and using every other feature as
 * before (SIGCHLD stays SIG_DFL: libev's default loop is never made). */
static void test_no_handler_for_unwatched(void **state) {
  (void)state;
  static struct sigaction before[NSIG];
  for (int sig = 1; sig < NSIG; sig++) {
    memset(&before[sig], 0, sizeof before[sig]);
    sigaction(sig, NULL, &before[sig]); /* fails harmlessly for 32/33 */
  }
  struct sigaction chld;
  assert_int_equal(sigaction(SIGCHLD, NULL, &chld), 0);
  assert_true(chld.sa_handler == SIG_DFL);

  async_loop *l1 = tu_loop_new();
  async_loop *l2 = tu_loop_new();
  async_signal *s = NULL;
  async_timer *t = tu_timer_start(l1, NULL, 1, 0, tu_noop_timer_cb);
  async_hook *h = tu_hook_new(l1, ASYNC_HOOK_CHECK, NULL);
  assert_int_equal(async_hook_start(h, tu_noop_hook_cb), 0);
  s = signal_new(l2, NULL); /* created, never started */
  assert_int_equal(async_loop_call_soon(l2, tu_noop_soon_cb, NULL), 0);
  assert_int_equal(async_loop_post(l2, tu_noop_soon_cb, NULL), 0);
  assert_true(async_loop_run(l1, ASYNC_RUN_ONCE) >= 0);
  assert_true(async_loop_run(l2, ASYNC_RUN_NOWAIT) >= 0);

  for (int sig = 1; sig < NSIG; sig++) {
    struct sigaction now;
    memset(&now, 0, sizeof now);
    if (sigaction(sig, NULL, &now) != 0) {
      continue;
    }
    if (now.sa_handler != before[sig].sa_handler) {
      fail_msg("signal %d: disposition changed by libasync", sig);
    }
  }
  assert_int_equal(sigaction(SIGCHLD, NULL, &chld), 0);
  assert_true(chld.sa_handler == SIG_DFL);
  assert_int_equal(sigaction(SIGPIPE, NULL, &chld), 0);
  assert_true(chld.sa_handler == before[SIGPIPE].sa_handler);

  tu_close(async_timer_handle(t));
  tu_close(async_hook_handle(h));
  close_and_finish(l1, s);
  tu_finish(l2);
  assert_int_equal(sigaction(SIGCHLD, NULL, &chld), 0);
  assert_true(chld.sa_handler == SIG_DFL);
}

/* A delivery pending when the watcher stops or closes is dropped. */
static void test_pending_dropped_on_stop(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  struct srec r = {0};
  async_signal *s = watch_signal(loop, &r, SIGUSR1, rec_cb);
  assert_int_equal(raise(SIGUSR1), 0); /* pending: the loop has not run */
  assert_int_equal(async_signal_stop(s), 0);
  assert_int_equal(run_until_count(loop, &r.calls, 1, 50), 0);
  assert_int_equal(r.calls, 0);

  /* Restarted afterwards: the dropped delivery does not come back, a new
   * one arrives. */
  assert_int_equal(async_signal_start(s, SIGUSR1, rec_cb), 0);
  assert_int_equal(run_until_count(loop, &r.calls, 1, 50), 0);
  assert_int_equal(raise(SIGUSR1), 0);
  assert_int_equal(run_until_count(loop, &r.calls, 1, 2000), 1);
  close_and_finish(loop, s);
  assert_int_equal(r.calls, 1);
}

struct pend_close {
  struct srec r;
  int close_calls;
};

static void pend_close_cb(async_handle *h, void *ud) {
  (void)h;
  ((struct pend_close *)ud)->close_calls++;
}

static void test_pending_dropped_on_close(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  struct pend_close pc = {0};
  async_signal *s = watch_signal(loop, &pc.r, SIGUSR2, rec_cb);
  assert_int_equal(async_handle_set_userdata(async_signal_handle(s), &pc), 0);
  assert_int_equal(raise(SIGUSR2), 0);
  assert_int_equal(async_handle_close(async_signal_handle(s), pend_close_cb), 0);
  tu_finish(loop);
  assert_int_equal(pc.r.calls, 0);
  assert_int_equal(pc.close_calls, 1);
}

/* Two watchers of one signal; whichever callback runs first stops the
 * other one, whose delivery (queued or not yet noticed) is then dropped:
 * exactly one callback in total. */
struct pair {
  async_signal *a;
  async_signal *b;
  int calls_a;
  int calls_b;
  int stop_rc;
};

static void pair_cb(async_signal *s, int signum, void *ud) {
  (void)signum;
  struct pair *p = ud;
  if (s == p->a) {
    p->calls_a++;
    p->stop_rc = async_signal_stop(p->b);
  } else {
    p->calls_b++;
    p->stop_rc = async_signal_stop(p->a);
  }
}

static void test_pending_dropped_stop_from_callback(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  struct pair p = {0};
  p.a = signal_new(loop, &p);
  p.b = signal_new(loop, &p);
  assert_int_equal(async_signal_start(p.a, SIGUSR1, pair_cb), 0);
  assert_int_equal(async_signal_start(p.b, SIGUSR1, pair_cb), 0);
  assert_int_equal(raise(SIGUSR1), 0);
  int total = 0;
  uint64_t t0 = tu_now_ns();
  while (p.calls_a + p.calls_b == 0 && tu_elapsed_ms(t0) < 2000.0) {
    assert_true(async_loop_run(loop, ASYNC_RUN_NOWAIT) >= 0);
  }
  for (int i = 0; i < 3; i++) {
    assert_true(async_loop_run(loop, ASYNC_RUN_NOWAIT) >= 0);
  }
  total = p.calls_a + p.calls_b;
  assert_int_equal(total, 1);
  assert_int_equal(p.stop_rc, 0);
  /* The survivor still watches and gets the next one. */
  async_signal *survivor = p.calls_a ? p.a : p.b;
  assert_int_equal(async_signal_signum(survivor), SIGUSR1);
  assert_int_equal(raise(SIGUSR1), 0);
  const int *cnt = p.calls_a ? &p.calls_a : &p.calls_b;
  assert_int_equal(run_until_count(loop, cnt, 2, 2000), 2);
  assert_int_equal(p.calls_a + p.calls_b, 3 - 1);
  tu_close(async_signal_handle(p.a));
  tu_close(async_signal_handle(p.b));
  tu_finish(loop);
  assert_int_equal(p.calls_a + p.calls_b, 2);
}

/* Signal callbacks come through the ready queue: call_soon callbacks queued
 * before the loop noticed the signal run first. */
static int g_seq;

struct soonrec {
  int calls;
  int order;
};

static void soon_rec_cb(async_loop *l, void *ud) {
  (void)l;
  struct soonrec *s = ud;
  s->calls++;
  s->order = ++g_seq;
}

static void test_ready_queue_order(void **state) {
  (void)state;
  g_seq = 0;
  async_loop *loop = tu_loop_new();
  struct srec r = {0};
  r.seq = &g_seq;
  struct soonrec before = {0}, after = {0};
  async_signal *s = watch_signal(loop, &r, SIGUSR1, rec_cb);
  assert_int_equal(async_loop_call_soon(loop, soon_rec_cb, &before), 0);
  assert_int_equal(raise(SIGUSR1), 0);
  assert_int_equal(async_loop_call_soon(loop, soon_rec_cb, &after), 0);
  assert_int_equal(run_until_count(loop, &r.calls, 1, 2000), 1);
  assert_int_equal(before.calls, 1);
  assert_int_equal(after.calls, 1);
  assert_int_equal(before.order, 1);
  assert_int_equal(after.order, 2); /* queued before the loop ran */
  assert_int_equal(r.order[0], 3);
  close_and_finish(loop, s);
}

/* A callback queued before the raise (so it runs before the delivery)
 * restarts the watcher on another signal, stops+restarts it on the same
 * one, or closes it: the queued delivery is dropped in every case, and a
 * restart on another signal never reports the old one under the new. */
struct requeue {
  async_signal *s;
  int mode; /* 0: restart on SIGUSR2, 1: stop + start SIGUSR1, 2: close */
  int rc;
};

static void requeue_soon_cb(async_loop *l, void *ud) {
  (void)l;
  struct requeue *q = ud;
  if (q->mode == 0) {
    q->rc = async_signal_start(q->s, SIGUSR2, rec_cb);
  } else if (q->mode == 1) {
    q->rc = async_signal_stop(q->s);
    if (q->rc == 0) {
      q->rc = async_signal_start(q->s, SIGUSR1, rec_cb);
    }
  } else {
    q->rc = async_handle_close(async_signal_handle(q->s), NULL);
  }
}

static void test_pending_dropped_on_restart(void **state) {
  (void)state;
  for (int mode = 0; mode < 3; mode++) {
    async_loop *loop = tu_loop_new();
    struct srec r;
    memset(&r, 0, sizeof r);
    struct requeue q = {.mode = mode, .rc = 99};
    q.s = signal_new(loop, &r);
    assert_int_equal(async_signal_start(q.s, SIGUSR1, rec_cb), 0);
    assert_int_equal(async_loop_call_soon(loop, requeue_soon_cb, &q), 0);
    assert_int_equal(raise(SIGUSR1), 0);
    assert_int_equal(run_until_count(loop, &r.calls, 1, 50), 0);
    assert_int_equal(q.rc, 0);
    assert_int_equal(r.calls, 0);
    if (mode == 0) {
      assert_int_equal(async_signal_signum(q.s), SIGUSR2);
      assert_true(has_user_handler(SIGUSR1));
      assert_int_equal(raise(SIGUSR2), 0);
      assert_int_equal(run_until_count(loop, &r.calls, 1, 2000), 1);
      assert_int_equal(r.last_signum, SIGUSR2);
    } else if (mode == 1) {
      assert_int_equal(raise(SIGUSR1), 0);
      assert_int_equal(run_until_count(loop, &r.calls, 1, 2000), 1);
      assert_int_equal(r.last_signum, SIGUSR1);
    }
    if (mode != 2) {
      tu_close(async_signal_handle(q.s));
    }
    tu_finish(loop);
    assert_int_equal(r.calls, mode == 2 ? 0 : 1);
    assert_true(has_user_handler(SIGUSR1));
    assert_true(has_user_handler(SIGUSR2));
    assert_int_equal(g_user_hits[SIGUSR1], 0);
  }
}

/* Signals above 31 (real-time) work like the others. */
static void test_realtime_signal(void **state) {
  (void)state;
  int sig = SIGRTMIN + 2;
  assert_true(sig < NSIG);
  install_user_handler(sig);
  async_loop *loop = tu_loop_new();
  struct srec r = {0};
  async_signal *s = watch_signal(loop, &r, sig, rec_cb);
  assert_int_equal(async_signal_signum(s), sig);
  assert_int_equal(raise(sig), 0);
  assert_int_equal(run_until_count(loop, &r.calls, 1, 2000), 1);
  assert_int_equal(r.last_signum, sig);
  assert_int_equal(g_user_hits[sig], 0);
  close_and_finish(loop, s);
  assert_true(has_user_handler(sig));
  signal(sig, SIG_DFL);
}

/* An active signal watcher keeps run(DEFAULT) going; unreferenced, not.
 * run(DEFAULT) returns once the callback closes the watcher. */
static void close_on_signal_cb(async_signal *s, int signum, void *ud) {
  (void)signum;
  (*(int *)ud)++;
  async_handle_close(async_signal_handle(s), NULL);
}

static void raise_timer_cb(async_timer *t, void *ud) {
  (void)ud;
  raise(SIGUSR1);
  async_handle_close(async_timer_handle(t), NULL);
}

static void test_signal_keeps_loop_alive(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int calls = 0;
  async_signal *s = watch_signal(loop, &calls, SIGUSR1, close_on_signal_cb);
  assert_int_equal(async_handle_unref(async_signal_handle(s)), 0);
  assert_int_equal(async_loop_alive(loop), 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(async_handle_ref(async_signal_handle(s)), 0);
  assert_int_equal(async_loop_alive(loop), 1);
  uint64_t t0 = tu_now_ns(); /* before the start: the timer never fires early relative to it */
  tu_timer_start(loop, NULL, 20, 0, raise_timer_cb);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_true(tu_elapsed_ms(t0) >= 20.0);
  assert_true(tu_elapsed_ms(t0) < 5000.0);
  assert_int_equal(calls, 1);
  assert_int_equal(async_loop_free(loop), 0);
  assert_true(has_user_handler(SIGUSR1));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_one_raise_per_iteration, setup, teardown),
      cmocka_unit_test_setup_teardown(test_raises_coalesce, setup, teardown),
      cmocka_unit_test_setup_teardown(test_two_watchers_one_loop, setup, teardown),
      cmocka_unit_test_setup_teardown(test_second_loop_ebusy, setup, teardown),
      cmocka_unit_test_setup_teardown(test_invalid_signums, setup, teardown),
      cmocka_unit_test_setup_teardown(test_previous_disposition_restored, setup, teardown),
      cmocka_unit_test_setup_teardown(test_no_handler_for_unwatched, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pending_dropped_on_stop, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pending_dropped_on_close, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pending_dropped_stop_from_callback, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ready_queue_order, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pending_dropped_on_restart, setup, teardown),
      cmocka_unit_test_setup_teardown(test_realtime_signal, setup, teardown),
      cmocka_unit_test_setup_teardown(test_signal_keeps_loop_alive, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
