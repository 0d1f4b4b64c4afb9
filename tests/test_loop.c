/*
 * async_loop: creation and teardown, run modes, stop, alive, call_soon
 * ordering and snapshots, starvation, loop time, timeout, metrics, the log
 * hook and the slow-callback report (async/loop.h; DESIGN.md §4; libuv's
 * loop_* / run_* / idle_starvation / metrics tests translated).
 */
#include "test_util.h"

#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Shared small callbacks                                              */

static void count_close_cb(async_handle *h, void *ud) {
  (void)h;
  (void)ud;
}

/* ------------------------------------------------------------------ */
/* new / free                                                          */

static void test_new_free(void **state) {
  (void)state;
  async_loop *loop = NULL;
  assert_int_equal(async_loop_new(&loop), 0);
  assert_non_null(loop);
  async_loop *loop2 = NULL;
  assert_int_equal(async_loop_new(&loop2), 0);
  assert_non_null(loop2);
  assert_ptr_not_equal(loop, loop2);
  assert_int_equal(async_loop_free(loop2), 0);
  assert_int_equal(async_loop_free(loop), 0);

  assert_int_equal(async_loop_new(NULL), ASYNC_EINVAL);
  assert_int_equal(async_loop_free(NULL), ASYNC_EINVAL);
}

/* A fresh loop runs to completion at once in every mode. */
static void test_empty_loop_runs(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  uint64_t t0 = tu_now_ns();
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_ONCE), 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_NOWAIT), 0);
  /* ONCE with nothing to wait for must not block. */
  assert_true(tu_elapsed_ms(t0) < 500.0);
  assert_int_equal(async_loop_run(loop, 3), ASYNC_EINVAL);
  assert_int_equal(async_loop_run(loop, -1), ASYNC_EINVAL);
  assert_int_equal(async_loop_run(NULL, ASYNC_RUN_DEFAULT), ASYNC_EINVAL);
  assert_int_equal(async_loop_free(loop), 0);
}

static int g_close_calls;
static void close_counter(async_handle *h, void *ud) {
  (void)h;
  (void)ud;
  g_close_calls++;
}

/* libuv loop_close: free with an open handle -> EBUSY; after close + run -> 0. */
static void test_free_busy_with_handle(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_timer *t = tu_timer_new(loop, NULL);
  /* Open (even inactive) handle: busy. */
  assert_int_equal(async_loop_free(loop), ASYNC_EBUSY);
  int fired = 0;
  assert_int_equal(async_handle_set_userdata(async_timer_handle(t), &fired), 0);
  assert_int_equal(async_timer_start(t, 5, 0, tu_count_timer_cb), 0);
  assert_int_equal(async_loop_free(loop), ASYNC_EBUSY);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(fired, 1);
  /* Fired, inactive, but still open. */
  assert_int_equal(async_loop_free(loop), ASYNC_EBUSY);

  g_close_calls = 0;
  assert_int_equal(async_handle_close(async_timer_handle(t), close_counter), 0);
  /* Closing handles count too. */
  assert_int_equal(async_loop_free(loop), ASYNC_EBUSY);
  assert_int_equal(g_close_calls, 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(g_close_calls, 1);
  assert_int_equal(async_loop_free(loop), 0);
}

/* Queued callbacks make free fail too; they all run before it succeeds. */
static void test_free_busy_with_queued_callback(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int n = 0;
  assert_int_equal(async_loop_call_soon(loop, tu_count_soon_cb, &n), 0);
  assert_int_equal(async_loop_free(loop), ASYNC_EBUSY);
  assert_int_equal(n, 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(n, 1);
  assert_int_equal(async_loop_free(loop), 0);
}

/* ------------------------------------------------------------------ */
/* Run modes and exact iteration counts                                */

struct requeue {
  int remaining;
  int calls;
  uint64_t iter[128];
  int bad;
};

static void requeue_cb(async_loop *loop, void *ud) {
  struct requeue *r = ud;
  if (r->calls < 128) {
    r->iter[r->calls] = tu_iter_cb(loop);
  }
  r->calls++;
  if (--r->remaining > 0) {
    if (async_loop_call_soon(loop, requeue_cb, r) != 0) {
      r->bad++;
    }
  }
}

static void test_run_modes_iteration_counts(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  uint64_t i0;

  /* NOWAIT: exactly one iteration per call while work is pending. */
  int fired = 0;
  async_timer *t = tu_timer_start(loop, &fired, 10000, 0, tu_count_timer_cb);
  i0 = tu_iterations(loop);
  for (int i = 0; i < 5; i++) {
    assert_int_equal(async_loop_run(loop, ASYNC_RUN_NOWAIT), 1);
  }
  assert_int_equal(tu_iterations(loop) - i0, 5);
  assert_int_equal(fired, 0);

  /* ONCE with a due 0 ms timer: one iteration, the timer fires. */
  assert_int_equal(async_timer_start(t, 0, 0, tu_count_timer_cb), 0);
  i0 = tu_iterations(loop);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_ONCE), 0);
  assert_int_equal(tu_iterations(loop) - i0, 1);
  assert_int_equal(fired, 1);

  /* ONCE with a queued callback: one iteration; it returns 0 (nothing left). */
  int n = 0;
  assert_int_equal(async_loop_call_soon(loop, tu_count_soon_cb, &n), 0);
  i0 = tu_iterations(loop);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_ONCE), 0);
  assert_int_equal(tu_iterations(loop) - i0, 1);
  assert_int_equal(n, 1);

  /* ONCE with a self-requeueing callback: returns 1 while more is queued. */
  struct requeue r = {.remaining = 3};
  assert_int_equal(async_loop_call_soon(loop, requeue_cb, &r), 0);
  i0 = tu_iterations(loop);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_ONCE), 1);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_ONCE), 1);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_ONCE), 0);
  assert_int_equal(tu_iterations(loop) - i0, 3);
  assert_int_equal(r.calls, 3);

  /* DEFAULT with a chain of 20: exactly 20 iterations. */
  memset(&r, 0, sizeof r);
  r.remaining = 20;
  assert_int_equal(async_loop_call_soon(loop, requeue_cb, &r), 0);
  i0 = tu_iterations(loop);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(tu_iterations(loop) - i0, 20);
  assert_int_equal(r.calls, 20);
  assert_int_equal(r.bad, 0);

  tu_close(async_timer_handle(t));
  tu_finish(loop);
}

struct idle64 {
  int calls;
};

static void idle64_cb(async_hook *h, void *ud) {
  struct idle64 *s = ud;
  if (++s->calls == 64) {
    async_hook_stop(h);
  }
}

/* libuv run_once: while (run(ONCE)); around a self-stopping idle: 64 calls. */
static void test_run_once_idle_64(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  struct idle64 s = {0};
  async_hook *h = tu_hook_new(loop, ASYNC_HOOK_IDLE, &s);
  assert_int_equal(async_hook_start(h, idle64_cb), 0);
  int runs = 0;
  while (async_loop_run(loop, ASYNC_RUN_ONCE)) {
    runs++;
    if (runs > 1000) {
      break;
    }
  }
  runs++; /* the run that returned 0 */
  assert_int_equal(s.calls, 64);
  assert_int_equal(runs, 64);
  assert_int_equal(async_handle_is_active(async_hook_handle(h)), 0);
  tu_close(async_hook_handle(h));
  tu_finish(loop);
}

/* libuv run_nowait: NOWAIT with a 100 ms timer returns 1 at once. */
static void test_run_nowait_timer(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int fired = 0;
  async_timer *t = tu_timer_start(loop, &fired, 100, 0, tu_count_timer_cb);
  uint64_t t0 = tu_now_ns();
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_NOWAIT), 1);
  assert_true(tu_elapsed_ms(t0) < 90.0);
  assert_int_equal(fired, 0);
  assert_int_equal(async_handle_is_active(async_timer_handle(t)), 1);
  tu_close(async_timer_handle(t));
  tu_finish(loop);
  assert_int_equal(fired, 0);
}

/* ------------------------------------------------------------------ */
/* stop                                                                */

struct stopper {
  int timer_calls;
  int prepare_calls;
};

static void stop_timer_cb(async_timer *t, void *ud) {
  struct stopper *s = ud;
  s->timer_calls++;
  if (s->timer_calls == 3) {
    async_loop_stop(async_handle_loop(async_timer_handle(t)));
  }
  if (s->timer_calls == 10) {
    async_timer_stop(t);
  }
}

static void stop_prepare_cb(async_hook *h, void *ud) {
  (void)h;
  struct stopper *s = ud;
  s->prepare_calls++;
}

/* libuv loop_stop: stop in a timer -> run(DEFAULT) returns 1; later run resumes. */
static void test_stop_in_timer(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  struct stopper s = {0};
  async_timer *t = tu_timer_new(loop, &s);
  async_hook *p = tu_hook_new(loop, ASYNC_HOOK_PREPARE, &s);
  /* The prepare hook is unreferenced so that it does not keep run alive. */
  assert_int_equal(async_hook_start(p, stop_prepare_cb), 0);
  assert_int_equal(async_handle_unref(async_hook_handle(p)), 0);
  assert_int_equal(async_timer_start(t, 2, 2, stop_timer_cb), 0);

  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 1);
  assert_int_equal(s.timer_calls, 3);
  int prep_at_stop = s.prepare_calls;
  assert_true(prep_at_stop >= 3);

  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(s.timer_calls, 10);
  assert_true(s.prepare_calls >= 10);
  assert_true(s.prepare_calls > prep_at_stop);

  tu_close(async_timer_handle(t));
  tu_close(async_hook_handle(p));
  tu_finish(loop);
  assert_int_equal(s.timer_calls, 10);
}

struct sbr {
  int a, b, c;
  async_loop *loop;
};

static void sbr_c(async_loop *loop, void *ud) {
  (void)loop;
  ((struct sbr *)ud)->c++;
}

static void sbr_a(async_loop *loop, void *ud) {
  struct sbr *s = ud;
  s->a++;
  async_loop_call_soon(loop, sbr_c, s);
}

static void sbr_b(async_loop *loop, void *ud) {
  (void)loop;
  ((struct sbr *)ud)->b++;
}

/*
 * Stop before run (asyncio): the next run does one non-blocking iteration,
 * the queued callbacks run, a 50 ms timer does not, then it returns.
 */
static void test_stop_before_run(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  struct sbr s = {0};
  int fired = 0;
  async_timer *t = tu_timer_new(loop, &fired);
  uint64_t t_start = tu_now_ns();
  assert_int_equal(async_timer_start(t, 50, 0, tu_count_timer_cb), 0);
  assert_int_equal(async_loop_call_soon(loop, sbr_a, &s), 0);
  assert_int_equal(async_loop_call_soon(loop, sbr_b, &s), 0);
  assert_int_equal(async_loop_stop(loop), 0);

  uint64_t i0 = tu_iterations(loop);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 1);
  /* One iteration, and it did not block until the timer (not fired). */
  assert_int_equal(tu_iterations(loop) - i0, 1);
  assert_int_equal(s.a, 1);
  assert_int_equal(s.b, 1);
  assert_int_equal(s.c, 0); /* queued during the iteration: next one */
  assert_int_equal(fired, 0);

  /* The stop was consumed: the next run goes on normally. */
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(s.c, 1);
  assert_int_equal(fired, 1);
  assert_true(tu_elapsed_ms(t_start) >= 50.0);

  assert_int_equal(async_loop_stop(NULL), ASYNC_EINVAL);
  tu_close(async_timer_handle(t));
  tu_finish(loop);
}

/* Stop before a ONCE run with a long timer: no blocking either. */
static void test_stop_before_run_once(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int fired = 0;
  async_timer *t = tu_timer_start(loop, &fired, 1000, 0, tu_count_timer_cb);
  assert_int_equal(async_loop_stop(loop), 0);
  uint64_t t0 = tu_now_ns();
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_ONCE), 1);
  assert_true(tu_elapsed_ms(t0) < 200.0);
  assert_int_equal(fired, 0);
  tu_close(async_timer_handle(t));
  tu_finish(loop);
  assert_int_equal(fired, 0);
}

/* ------------------------------------------------------------------ */
/* Nested run                                                          */

struct nested {
  int r_default, r_once, r_nowait, r_free;
  int ran;
};

static void nested_cb(async_loop *loop, void *ud) {
  struct nested *n = ud;
  n->ran++;
  n->r_default = async_loop_run(loop, ASYNC_RUN_DEFAULT);
  n->r_once = async_loop_run(loop, ASYNC_RUN_ONCE);
  n->r_nowait = async_loop_run(loop, ASYNC_RUN_NOWAIT);
  n->r_free = async_loop_free(loop);
}

static void nested_timer_cb(async_timer *t, void *ud) {
  nested_cb(async_handle_loop(async_timer_handle(t)), ud);
}

static void test_nested_run_rejected(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  struct nested n = {0};
  assert_int_equal(async_loop_call_soon(loop, nested_cb, &n), 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(n.ran, 1);
  assert_int_equal(n.r_default, ASYNC_EBUSY);
  assert_int_equal(n.r_once, ASYNC_EBUSY);
  assert_int_equal(n.r_nowait, ASYNC_EBUSY);
  assert_int_equal(n.r_free, ASYNC_EBUSY);

  /* Same from a timer callback. */
  struct nested m = {0};
  async_timer *t = tu_timer_start(loop, &m, 1, 0, nested_timer_cb);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(m.ran, 1);
  assert_int_equal(m.r_default, ASYNC_EBUSY);
  assert_int_equal(m.r_once, ASYNC_EBUSY);
  assert_int_equal(m.r_nowait, ASYNC_EBUSY);
  assert_int_equal(m.r_free, ASYNC_EBUSY);
  tu_close(async_timer_handle(t));
  tu_finish(loop);
}

/* ------------------------------------------------------------------ */
/* alive                                                               */

static void test_alive(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  assert_int_equal(async_loop_alive(loop), 0);
  assert_int_equal(async_loop_alive(NULL), ASYNC_EINVAL);

  int fired = 0;
  async_timer *t = tu_timer_new(loop, &fired);
  /* Open but inactive: not alive. */
  assert_int_equal(async_loop_alive(loop), 0);
  assert_int_equal(async_timer_start(t, 5, 0, tu_count_timer_cb), 0);
  assert_int_equal(async_loop_alive(loop), 1);
  assert_int_equal(async_handle_unref(async_timer_handle(t)), 0);
  assert_int_equal(async_loop_alive(loop), 0);
  assert_int_equal(async_handle_ref(async_timer_handle(t)), 0);
  assert_int_equal(async_loop_alive(loop), 1);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(fired, 1);
  assert_int_equal(async_loop_alive(loop), 0);

  assert_int_equal(async_timer_start(t, 5, 0, tu_count_timer_cb), 0);
  assert_int_equal(async_timer_stop(t), 0);
  assert_int_equal(async_loop_alive(loop), 0);

  int n = 0;
  assert_int_equal(async_loop_call_soon(loop, tu_count_soon_cb, &n), 0);
  assert_int_equal(async_loop_alive(loop), 1);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_NOWAIT), 0);
  assert_int_equal(n, 1);
  assert_int_equal(async_loop_alive(loop), 0);

  /* A closing (even unreferenced) handle keeps the loop alive until closed. */
  assert_int_equal(async_handle_unref(async_timer_handle(t)), 0);
  assert_int_equal(async_handle_close(async_timer_handle(t), count_close_cb), 0);
  assert_int_equal(async_loop_alive(loop), 1);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(async_loop_alive(loop), 0);
  assert_int_equal(fired, 1);
  assert_int_equal(async_loop_free(loop), 0);
}

/* ------------------------------------------------------------------ */
/* call_soon                                                           */

struct order {
  int seen[200];
  int n;
};

struct order_item {
  struct order *o;
  int id;
};

static void order_cb(async_loop *loop, void *ud) {
  (void)loop;
  struct order_item *it = ud;
  if (it->o->n < 200) {
    it->o->seen[it->o->n] = it->id;
  }
  it->o->n++;
}

static void test_call_soon_fifo(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  struct order o = {.n = 0};
  struct order_item items[150];
  for (int i = 0; i < 150; i++) {
    items[i].o = &o;
    items[i].id = i;
    assert_int_equal(async_loop_call_soon(loop, order_cb, &items[i]), 0);
  }
  assert_int_equal(o.n, 0);
  uint64_t i0 = tu_iterations(loop);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  /* All queued before the iteration began: one iteration runs them all. */
  assert_int_equal(tu_iterations(loop) - i0, 1);
  assert_int_equal(o.n, 150);
  for (int i = 0; i < 150; i++) {
    assert_int_equal(o.seen[i], i);
  }
  assert_int_equal(async_loop_call_soon(NULL, tu_count_soon_cb, &o), ASYNC_EINVAL);
  assert_int_equal(async_loop_call_soon(loop, NULL, &o), ASYNC_EINVAL);
  assert_int_equal(async_loop_alive(loop), 0);
  assert_int_equal(async_loop_free(loop), 0);
}

struct nosync {
  int outer_runs;
  int inner_runs;
  int inner_seen_during_call; /* inner count right after call_soon returned */
  uint64_t outer_iter, inner_iter;
  int rc;
};

static void nosync_inner(async_loop *loop, void *ud) {
  struct nosync *s = ud;
  s->inner_runs++;
  s->inner_iter = tu_iter_cb(loop);
}

static void nosync_outer(async_loop *loop, void *ud) {
  struct nosync *s = ud;
  s->outer_runs++;
  s->outer_iter = tu_iter_cb(loop);
  s->rc = async_loop_call_soon(loop, nosync_inner, s);
  s->inner_seen_during_call = s->inner_runs;
}

static void test_call_soon_never_inline(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  struct nosync s = {0};
  /* Outside run: nothing runs in the call. */
  assert_int_equal(async_loop_call_soon(loop, nosync_outer, &s), 0);
  assert_int_equal(s.outer_runs, 0);
  assert_int_equal(s.inner_runs, 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(s.outer_runs, 1);
  assert_int_equal(s.rc, 0);
  /* Inside a callback: neither inside the call nor in the same iteration. */
  assert_int_equal(s.inner_seen_during_call, 0);
  assert_int_equal(s.inner_runs, 1);
  assert_int_equal(s.inner_iter, s.outer_iter + 1);
  assert_int_equal(async_loop_free(loop), 0);
}

/* A callback re-queueing itself runs once per iteration (snapshot). */
static void test_call_soon_snapshot(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  struct requeue r = {.remaining = 50};
  int other = 0;
  assert_int_equal(async_loop_call_soon(loop, requeue_cb, &r), 0);
  assert_int_equal(async_loop_call_soon(loop, tu_count_soon_cb, &other), 0);
  uint64_t i0 = tu_iterations(loop);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(r.calls, 50);
  assert_int_equal(r.bad, 0);
  assert_int_equal(other, 1);
  assert_int_equal(tu_iterations(loop) - i0, 50);
  for (int i = 1; i < 50; i++) {
    assert_int_equal(r.iter[i], r.iter[i - 1] + 1);
  }
  /* Queued callbacks make the poll non-blocking: with a 1 s timer pending,
   * a requeue chain of 10 runs in 10 quick iterations. */
  int fired = 0;
  async_timer *t = tu_timer_start(loop, &fired, 1000, 0, tu_count_timer_cb);
  memset(&r, 0, sizeof r);
  r.remaining = 10;
  assert_int_equal(async_loop_call_soon(loop, requeue_cb, &r), 0);
  uint64_t t0 = tu_now_ns();
  for (int i = 0; i < 10; i++) {
    assert_int_equal(async_loop_run(loop, ASYNC_RUN_ONCE), 1);
  }
  assert_true(tu_elapsed_ms(t0) < 500.0);
  assert_int_equal(r.calls, 10);
  assert_int_equal(fired, 0);
  tu_close(async_timer_handle(t));
  tu_finish(loop);
}

/* ------------------------------------------------------------------ */
/* A hot fd cannot starve call_soon nor timers                         */

struct hot {
  uint64_t t0;
  int watcher_calls;
  int soon_calls;
  int timer_calls;
  int gave_up;
  async_watcher *w;
  async_timer *t;
};

static void hot_soon(async_loop *loop, void *ud) {
  struct hot *h = ud;
  h->soon_calls++;
  if (h->soon_calls < 20) {
    async_loop_call_soon(loop, hot_soon, h);
  }
}

static void hot_watcher_cb(async_watcher *w, uint32_t revents, void *ud) {
  (void)revents;
  struct hot *h = ud;
  h->watcher_calls++;
  if (tu_elapsed_ms(h->t0) > 3000.0) {
    /* Starved: give up so the test ends (and fails). */
    h->gave_up = 1;
    async_watcher_stop(w);
    async_timer_stop(h->t);
  }
}

static void hot_timer_cb(async_timer *t, void *ud) {
  (void)t;
  struct hot *h = ud;
  h->timer_calls++;
  async_watcher_stop(h->w);
}

static void test_hot_fd_no_starvation(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  assert_int_equal(write(sv[1], "x", 1), 1); /* sv[0] stays readable */

  struct hot h = {0};
  h.w = tu_watcher_new(loop, sv[0], &h);
  h.t = tu_timer_new(loop, &h);
  assert_int_equal(async_watcher_start(h.w, ASYNC_READABLE, hot_watcher_cb), 0);
  h.t0 = tu_now_ns();
  assert_int_equal(async_timer_start(h.t, 20, 0, hot_timer_cb), 0);
  assert_int_equal(async_loop_call_soon(loop, hot_soon, &h), 0);

  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(h.gave_up, 0);
  assert_int_equal(h.timer_calls, 1);
  assert_int_equal(h.soon_calls, 20);
  /* Level-triggered: the fd kept firing while the timer was pending. */
  assert_true(h.watcher_calls >= 2);
  double el = tu_elapsed_ms(h.t0);
  assert_true(el >= 20.0);
  assert_true(el < 1000.0);

  tu_close(async_watcher_handle(h.w));
  tu_close(async_timer_handle(h.t));
  tu_finish(loop);
  tu_close_pair(sv);
}

/* Work started by an I/O callback in an iteration that had nothing but
 * I/O (no timer, hook or queued callback before it) is seen before the next
 * poll: a timer fires on time, an idle hook runs and a queued callback runs
 * without another event, a stop ends the run. Nothing else would wake the
 * loop: a miss blocks in the poll until SIGALRM ends the test. */
struct io_work {
  async_loop *loop;
  async_watcher *w;
  async_timer *t;
  async_hook *hook;
  int kind;
  int done;
  int fd;
};

/* The fd's byte read: a left-over readable fd would wake the next poll. */
static void work_read(struct io_work *x) {
  char c;
  assert_int_equal(read(x->fd, &c, 1), 1);
}

static void work_hook_cb(async_hook *h, void *ud) {
  ((struct io_work *)ud)->done++;
  assert_int_equal(async_hook_stop(h), 0);
}

static void start_work(struct io_work *x) {
  switch (x->kind) {
    case 0: assert_int_equal(async_timer_start(x->t, 5, 0, tu_count_timer_cb), 0); break;
    case 1: assert_int_equal(async_hook_start(x->hook, work_hook_cb), 0); break;
    case 2: assert_int_equal(async_loop_call_soon(x->loop, tu_count_soon_cb, &x->done), 0); break;
    default: assert_int_equal(async_loop_stop(x->loop), 0); x->done++; break;
  }
}

static void work_io_cb(async_watcher *w, uint32_t revents, void *ud) {
  (void)revents;
  assert_int_equal(async_watcher_stop(w), 0);
  work_read(ud);
  start_work(ud);
}

static void work_soon_cb(async_loop *loop, void *ud) {
  (void)loop;
  start_work(ud);
}

/* The fd's callback only queues one that starts the work. */
static void work_io_queue_cb(async_watcher *w, uint32_t revents, void *ud) {
  (void)revents;
  struct io_work *x = ud;
  assert_int_equal(async_watcher_stop(w), 0);
  work_read(x);
  assert_int_equal(async_loop_call_soon(x->loop, work_soon_cb, x), 0);
}

static void check_work_started(async_watcher_fn io_cb) {
  for (int kind = 0; kind < 4; kind++) {
    async_loop *loop = tu_loop_new();
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct io_work x = {loop, NULL, NULL, NULL, kind, 0, sv[0]};
    x.w = tu_watcher_new(loop, sv[0], &x);
    x.t = tu_timer_new(loop, &x.done); /* tu_count_timer_cb counts there */
    x.hook = tu_hook_new(loop, ASYNC_HOOK_IDLE, &x);
    assert_int_equal(async_watcher_start(x.w, ASYNC_READABLE, io_cb), 0);
    /* A few plain iterations first: the fd is not readable yet. */
    assert_int_equal(async_loop_run(loop, ASYNC_RUN_NOWAIT), 1);
    assert_int_equal(write(sv[1], "x", 1), 1);
    alarm(10);
    uint64_t t0 = tu_now_ns();
    int rc = async_loop_run(loop, ASYNC_RUN_DEFAULT);
    alarm(0);
    assert_int_equal(x.done, 1);
    assert_true(tu_elapsed_ms(t0) < 2000.0);
    assert_int_equal(rc, 0);
    tu_close(async_watcher_handle(x.w));
    tu_close(async_timer_handle(x.t));
    tu_close(async_hook_handle(x.hook));
    tu_finish(loop);
    tu_close_pair(sv);
  }
}

static void test_work_started_by_io(void **state) {
  (void)state;
  check_work_started(work_io_cb);
}

/* The same from a callback the fd's callback queued, which runs in that
 * iteration's pass of the ready queue, with nothing else to do: the
 * loop's short way through such an iteration still arms the timer, runs
 * the hook, takes the next queued callback and ends the run on a stop. */
static void test_work_started_by_queued_callback(void **state) {
  (void)state;
  check_work_started(work_io_queue_cb);
}

/* ------------------------------------------------------------------ */
/* Loop time                                                           */

static void test_now_and_update(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  uint64_t a = 0, b = 0, c = 0, d = 0;
  assert_int_equal(async_loop_now(&a, loop), 0);
  tu_sleep_ms(20);
  /* Cached: unchanged without an iteration or now_update. */
  assert_int_equal(async_loop_now(&b, loop), 0);
  assert_int_equal(b, a);
  assert_int_equal(async_loop_now_update(loop), 0);
  assert_int_equal(async_loop_now(&c, loop), 0);
  assert_true(c >= a + 20);
  assert_true(c < a + 1000);
  /* libuv loop_update_time: advances across NOWAIT runs. */
  tu_sleep_ms(15);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_NOWAIT), 0);
  assert_int_equal(async_loop_now(&d, loop), 0);
  assert_true(d >= c + 15);
  /* Spinning NOWAIT alone (no sleep, no now_update) moves loop time on:
   * within 2 s of wall time it must pass d + 40 ms, never going back. */
  uint64_t prev = d;
  uint64_t t0 = tu_now_ns();
  while (prev < d + 40 && tu_elapsed_ms(t0) < 2000.0) {
    assert_int_equal(async_loop_run(loop, ASYNC_RUN_NOWAIT), 0);
    uint64_t x = 0;
    assert_int_equal(async_loop_now(&x, loop), 0);
    assert_true(x >= prev);
    prev = x;
  }
  assert_true(prev >= d + 40);

  assert_int_equal(async_loop_now(NULL, loop), ASYNC_EINVAL);
  assert_int_equal(async_loop_now(&a, NULL), ASYNC_EINVAL);
  assert_int_equal(async_loop_now_update(NULL), ASYNC_EINVAL);
  assert_int_equal(async_loop_free(loop), 0);
}

/* The iteration's time is read at its first use after the poll, then
 * cached: a loop that never asks reads no clock per iteration. */
static void now_cb(async_loop *loop, void *userdata) {
  uint64_t *seen = userdata;
  assert_int_equal(async_loop_now(&seen[0], loop), 0);
  tu_sleep_ms(15);
  assert_int_equal(async_loop_now(&seen[1], loop), 0);
}

static void test_now_read_at_first_use(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  uint64_t before = 0, after = 0;
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_NOWAIT), 0);
  assert_int_equal(async_loop_now(&before, loop), 0);
  /* Not read yet when the run returned: the first query reads it. */
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_NOWAIT), 0);
  tu_sleep_ms(30);
  assert_int_equal(async_loop_now(&after, loop), 0);
  assert_true(after >= before + 30);
  /* Then cached until the next iteration, also inside a callback. */
  uint64_t seen[2] = {0, 0};
  assert_int_equal(async_loop_call_soon(loop, now_cb, seen), 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(seen[0], seen[1]);
  assert_true(seen[0] >= after);
  tu_finish(loop);
}

/* ------------------------------------------------------------------ */
/* async_loop_timeout (libuv loop_backend_timeout)                      */

static void test_loop_timeout(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int64_t ms = 12345;
  assert_int_equal(async_loop_timeout(&ms, loop), 0);
  assert_int_equal(ms, -1);

  int fired = 0;
  async_timer *t = tu_timer_new(loop, &fired);
  assert_int_equal(async_loop_timeout(&ms, loop), 0);
  assert_int_equal(ms, -1); /* an inactive timer schedules nothing */
  assert_int_equal(async_timer_start(t, 1000, 0, tu_count_timer_cb), 0);
  assert_int_equal(async_loop_timeout(&ms, loop), 0);
  assert_true(ms >= 950 && ms <= 1000);
  tu_sleep_ms(100);
  /* Computed from a fresh clock. */
  assert_int_equal(async_loop_timeout(&ms, loop), 0);
  assert_true(ms >= 800 && ms <= 900);

  int n = 0;
  assert_int_equal(async_loop_call_soon(loop, tu_count_soon_cb, &n), 0);
  assert_int_equal(async_loop_timeout(&ms, loop), 0);
  assert_int_equal(ms, 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_NOWAIT), 1);
  assert_int_equal(n, 1);
  assert_int_equal(async_loop_timeout(&ms, loop), 0);
  assert_true(ms > 0 && ms <= 900);

  /* Stopping: 0. */
  assert_int_equal(async_loop_stop(loop), 0);
  assert_int_equal(async_loop_timeout(&ms, loop), 0);
  assert_int_equal(ms, 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_NOWAIT), 1);

  assert_int_equal(async_timer_stop(t), 0);
  assert_int_equal(async_loop_timeout(&ms, loop), 0);
  assert_int_equal(ms, -1);

  assert_int_equal(async_loop_timeout(NULL, loop), ASYNC_EINVAL);
  assert_int_equal(async_loop_timeout(&ms, NULL), ASYNC_EINVAL);
  tu_close(async_timer_handle(t));
  tu_finish(loop);
  assert_int_equal(fired, 0);
}

/* ------------------------------------------------------------------ */
/* Metrics                                                             */

static void test_metrics(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  uint64_t it0 = tu_metric(loop, ASYNC_METRIC_ITERATIONS);
  uint64_t pt0 = tu_metric(loop, ASYNC_METRIC_POLL_TIME);
  uint64_t cb0 = tu_metric(loop, ASYNC_METRIC_CALLBACKS);

  /* Callbacks: exactly the call_soon callbacks that ran. */
  int n = 0;
  for (int i = 0; i < 7; i++) {
    assert_int_equal(async_loop_call_soon(loop, tu_count_soon_cb, &n), 0);
  }
  assert_int_equal(tu_metric(loop, ASYNC_METRIC_CALLBACKS), cb0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(n, 7);
  assert_int_equal(tu_metric(loop, ASYNC_METRIC_CALLBACKS) - cb0, 7);
  uint64_t it1 = tu_metric(loop, ASYNC_METRIC_ITERATIONS);
  assert_int_equal(it1 - it0, 1);

  /* Iterations: +1 per NOWAIT with work pending. */
  int fired = 0;
  async_timer *t = tu_timer_start(loop, &fired, 60, 0, tu_count_timer_cb);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_NOWAIT), 1);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_NOWAIT), 1);
  assert_int_equal(tu_metric(loop, ASYNC_METRIC_ITERATIONS) - it1, 2);

  /* Poll time: blocking on the 60 ms timer adds nearly 60 ms. */
  uint64_t pt1 = tu_metric(loop, ASYNC_METRIC_POLL_TIME);
  uint64_t t0 = tu_now_ns();
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  double el = tu_elapsed_ms(t0);
  assert_int_equal(fired, 1);
  uint64_t pt2 = tu_metric(loop, ASYNC_METRIC_POLL_TIME);
  assert_true(pt2 >= pt0);
  assert_true(pt2 - pt1 >= 20u * 1000000u); /* at least 20 of the ~60 ms */
  assert_true((double)(pt2 - pt1) <= (el + 1.0) * 1e6);
  /* Timer callbacks are not call_soon/post callbacks. */
  assert_int_equal(tu_metric(loop, ASYNC_METRIC_CALLBACKS) - cb0, 7);

  uint64_t v;
  assert_int_equal(async_loop_metric(NULL, loop, ASYNC_METRIC_ITERATIONS), ASYNC_EINVAL);
  assert_int_equal(async_loop_metric(&v, NULL, ASYNC_METRIC_ITERATIONS), ASYNC_EINVAL);
  assert_int_equal(async_loop_metric(&v, loop, 3), ASYNC_EINVAL);
  assert_int_equal(async_loop_metric(&v, loop, -1), ASYNC_EINVAL);
  tu_close(async_timer_handle(t));
  tu_finish(loop);
}

/* ------------------------------------------------------------------ */
/* Log hook and slow callbacks                                         */

struct logctx {
  int messages;
  int warnings;
  int other_levels;
  int bad_loop;
  int empty;
  int released;
  async_loop *loop;
};

static void log_fn(async_loop *loop, int level, const char *message, void *ud) {
  struct logctx *c = ud;
  c->messages++;
  if (level == ASYNC_LOG_WARNING) {
    c->warnings++;
  } else {
    c->other_levels++;
  }
  if (loop != c->loop) {
    c->bad_loop++;
  }
  if (message == NULL || message[0] == '\0') {
    c->empty++;
  }
}

static void log_release(void *ud) { ((struct logctx *)ud)->released++; }

static void slow_cb(async_loop *loop, void *ud) {
  (void)loop;
  (*(int *)ud)++;
  tu_sleep_ms(30);
}

static void slow_timer_cb(async_timer *t, void *ud) {
  (void)t;
  (*(int *)ud)++;
  tu_sleep_ms(30);
}

static void test_log_hook_slow_callback(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  struct logctx a = {.loop = loop}, b = {.loop = loop};
  assert_int_equal(async_loop_set_log(loop, log_fn, log_release, &a), 0);
  assert_int_equal(async_loop_set_slow_callback(loop, 10), 0);

  /* Fast callbacks: nothing reported. */
  int n = 0;
  for (int i = 0; i < 5; i++) {
    assert_int_equal(async_loop_call_soon(loop, tu_count_soon_cb, &n), 0);
  }
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(n, 5);
  assert_int_equal(a.messages, 0);

  /* One slow callback: one warning. */
  int s = 0;
  assert_int_equal(async_loop_call_soon(loop, slow_cb, &s), 0);
  assert_int_equal(async_loop_call_soon(loop, tu_count_soon_cb, &n), 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(s, 1);
  assert_int_equal(a.messages, 1);
  assert_int_equal(a.warnings, 1);
  assert_int_equal(a.bad_loop, 0);
  assert_int_equal(a.empty, 0);

  /* "Every callback": a slow timer callback is reported too. */
  int ts = 0;
  async_timer *t = tu_timer_start(loop, &ts, 1, 0, slow_timer_cb);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(ts, 1);
  assert_int_equal(a.warnings, 2);
  assert_int_equal(a.messages, 2);

  /* Threshold 0 disables. */
  assert_int_equal(async_loop_set_slow_callback(loop, 0), 0);
  assert_int_equal(async_loop_call_soon(loop, slow_cb, &s), 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(s, 2);
  assert_int_equal(a.messages, 2);

  /* A threshold above the callback's duration: nothing. */
  assert_int_equal(async_loop_set_slow_callback(loop, 1000), 0);
  assert_int_equal(async_loop_call_soon(loop, slow_cb, &s), 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(s, 3);
  assert_int_equal(a.messages, 2);
  assert_int_equal(a.other_levels, 0);

  /* Replacing the hook releases the old userdata exactly once. */
  assert_int_equal(a.released, 0);
  assert_int_equal(async_loop_set_log(loop, log_fn, log_release, &b), 0);
  assert_int_equal(a.released, 1);
  assert_int_equal(b.released, 0);
  assert_int_equal(async_loop_set_slow_callback(loop, 10), 0);
  assert_int_equal(async_loop_call_soon(loop, slow_cb, &s), 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(a.messages, 2); /* the old hook hears nothing more */
  assert_int_equal(b.warnings, 1);
  assert_int_equal(b.messages, 1);

  assert_int_equal(async_loop_set_log(NULL, log_fn, log_release, &b), ASYNC_EINVAL);
  assert_int_equal(async_loop_set_slow_callback(NULL, 10), ASYNC_EINVAL);
  assert_int_equal(b.released, 0);

  tu_close(async_timer_handle(t));
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  /* Freeing the loop releases the current hook once. */
  assert_int_equal(async_loop_free(loop), 0);
  assert_int_equal(b.released, 1);
  assert_int_equal(a.released, 1);
}

/* set_log(NULL) removes the hook and releases the old userdata once. */
static void test_log_hook_remove(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  struct logctx a = {.loop = loop};
  assert_int_equal(async_loop_set_log(loop, log_fn, log_release, &a), 0);
  assert_int_equal(async_loop_set_log(loop, NULL, NULL, NULL), 0);
  assert_int_equal(a.released, 1);
  assert_int_equal(async_loop_set_slow_callback(loop, 10), 0);
  int s = 0;
  assert_int_equal(async_loop_call_soon(loop, slow_cb, &s), 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(s, 1);
  assert_int_equal(a.messages, 0);
  /* A failed free (busy) does not release the hook. */
  struct logctx b = {.loop = loop};
  assert_int_equal(async_loop_set_log(loop, log_fn, log_release, &b), 0);
  int n = 0;
  assert_int_equal(async_loop_call_soon(loop, tu_count_soon_cb, &n), 0);
  assert_int_equal(async_loop_free(loop), ASYNC_EBUSY);
  assert_int_equal(b.released, 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(async_loop_free(loop), 0);
  assert_int_equal(b.released, 1);
  assert_int_equal(a.released, 1);
}

/* ------------------------------------------------------------------ */
/* Unreferenced handles                                                */

static void unref_self_cb(async_timer *t, void *ud) {
  int *n = ud;
  if (++*n == 3) {
    async_handle_unref(async_timer_handle(t));
  }
}

static void test_unref_does_not_keep_alive(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int fired = 0, idles = 0;
  async_timer *t = tu_timer_start(loop, &fired, 10000, 0, tu_count_timer_cb);
  assert_int_equal(async_handle_unref(async_timer_handle(t)), 0);
  async_hook *idle = tu_hook_new(loop, ASYNC_HOOK_IDLE, &idles);
  assert_int_equal(async_handle_unref(async_hook_handle(idle)), 0);
  assert_int_equal(async_hook_start(idle, tu_count_hook_cb), 0);

  uint64_t t0 = tu_now_ns();
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_ONCE), 0);
  assert_true(tu_elapsed_ms(t0) < 500.0);
  assert_int_equal(fired, 0);
  assert_int_equal(async_handle_is_active(async_timer_handle(t)), 1);

  /* libuv unref_in_prepare_cb-style: unref inside the callback lets run end. */
  int n = 0;
  async_timer *r = tu_timer_start(loop, &n, 2, 2, unref_self_cb);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(n, 3);
  assert_int_equal(async_handle_is_active(async_timer_handle(r)), 1);

  tu_close(async_timer_handle(t));
  tu_close(async_timer_handle(r));
  tu_close(async_hook_handle(idle));
  tu_finish(loop);
  assert_int_equal(fired, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_new_free),
      cmocka_unit_test(test_empty_loop_runs),
      cmocka_unit_test(test_free_busy_with_handle),
      cmocka_unit_test(test_free_busy_with_queued_callback),
      cmocka_unit_test(test_run_modes_iteration_counts),
      cmocka_unit_test(test_run_once_idle_64),
      cmocka_unit_test(test_run_nowait_timer),
      cmocka_unit_test(test_stop_in_timer),
      cmocka_unit_test(test_stop_before_run),
      cmocka_unit_test(test_stop_before_run_once),
      cmocka_unit_test(test_nested_run_rejected),
      cmocka_unit_test(test_alive),
      cmocka_unit_test(test_call_soon_fifo),
      cmocka_unit_test(test_call_soon_never_inline),
      cmocka_unit_test(test_call_soon_snapshot),
      cmocka_unit_test(test_hot_fd_no_starvation),
      cmocka_unit_test(test_work_started_by_io),
      cmocka_unit_test(test_work_started_by_queued_callback),
      cmocka_unit_test(test_now_and_update),
      cmocka_unit_test(test_now_read_at_first_use),
      cmocka_unit_test(test_loop_timeout),
      cmocka_unit_test(test_metrics),
      cmocka_unit_test(test_log_hook_slow_callback),
      cmocka_unit_test(test_log_hook_remove),
      cmocka_unit_test(test_unref_does_not_keep_alive),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
