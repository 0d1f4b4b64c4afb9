/*
 * Edge cases found by an adversarial review of src/ against the headers:
 * things closed, cancelled, freed or restarted inside callbacks, combinator
 * corner cases, run_until corner cases, loop reference accounting, and
 * allocation failure on paths that must not fail (ready-queue and timer
 * reservations) or must fail cleanly (Gather::create, TimeoutWait::create).
 *
 * Every test frees its loop (async_loop_free == 0) and checks the userdata
 * contract: each userdata gets exactly one final notification. Callbacks
 * never assert (a cmocka failure would longjmp through the library); they
 * record, and the test body asserts.
 *
 * Allocation-failure tests install a counting allocator (async_set_allocator
 * needs no live library memory: set it before the loop, reset after free).
 */
#include "test_util.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- failing allocator ---------------------------------------------------- */

/* -1: never fail; n >= 0: n more allocations succeed, then every one fails. */
static atomic_int g_fail_after = -1;
static atomic_int g_failures = 0;

static void *failing_realloc(void *ptr, size_t size, void *userdata) {
  (void)userdata;
  if (size == 0) {
    free(ptr);
    return NULL;
  }
  int left = atomic_load(&g_fail_after);
  if (left == 0) {
    atomic_fetch_add(&g_failures, 1);
    return NULL;
  }
  if (left > 0) {
    atomic_fetch_sub(&g_fail_after, 1);
  }
  return realloc(ptr, size);
}

static void use_failing_allocator(void) {
  atomic_store(&g_fail_after, -1);
  atomic_store(&g_failures, 0);
  assert_int_equal(async_set_allocator(failing_realloc, NULL), 0);
}

static void restore_allocator(void) {
  atomic_store(&g_fail_after, -1);
  assert_int_equal(async_set_allocator(NULL, NULL), 0);
}

/* ---- shared recorders ----------------------------------------------------- */

/* Counts final notifications per userdata slot. */
struct notes {
  int calls;
  int status;
  int extra;
};

static void note_future(async_future *f, int status, void *ud) {
  (void)f;
  struct notes *n = ud;
  n->calls++;
  n->status = status;
}

static void note_future_and_free(async_future *f, int status, void *ud) {
  struct notes *n = ud;
  n->calls++;
  n->status = status;
  n->extra = async_future_free(f);
}

static void note_close(async_handle *h, void *ud) {
  (void)h;
  struct notes *n = ud;
  n->calls++;
}

struct cancel_rec {
  int calls;
  int cancelled;
};

static void note_cancel(async_future *f, int cancelled, void *ud) {
  (void)f;
  struct cancel_rec *c = ud;
  c->calls++;
  c->cancelled = cancelled;
}

static async_future *new_future(async_loop *loop) {
  async_future *f = NULL;
  assert_int_equal(async_future_new(&f, loop), 0);
  return f;
}

/* ===========================================================================
 * Findings (each failed before the fix in src/core/)
 * ======================================================================== */

/*
 * async_watcher_set_events() on a never-started watcher must fail with
 * ASYNC_ESTATE (watcher.h). It used to start watching with a NULL callback,
 * which the loop then called (SIGSEGV) as soon as the fd was ready.
 */
static void test_set_events_unstarted_never_calls_null(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int p[2];
  assert_int_equal(pipe(p), 0);
  assert_int_equal(write(p[1], "x", 1), 1); /* readable at once */
  async_watcher *w = tu_watcher_new(loop, p[0], NULL);
  int rc = async_watcher_set_events(w, ASYNC_READABLE);
  int active = async_handle_is_active(async_watcher_handle(w));
  if (rc == 0) {
    async_watcher_stop(w); /* do not let the loop call the NULL callback */
  }
  assert_int_equal(rc, ASYNC_ESTATE);
  assert_int_equal(active, 0);
  tu_close(async_watcher_handle(w));
  tu_finish(loop);
  tu_close_pair(p);
}

/*
 * async_future_timeout: when the input completes before the deadline, the
 * result completes like the input, even if the input's completion and the
 * deadline are handled in the same loop pass (asyncio.wait_for checks
 * fut.done() after the timeout). It used to FAIL with ASYNC_ETIMEDOUT and
 * claim to cancel an input that was already DONE.
 */
struct resolve_ctx {
  async_future *input;
  int value;
  int rc;
};

static void resolve_on_timer(async_timer *t, void *ud) {
  (void)t;
  struct resolve_ctx *c = ud;
  c->rc = async_future_resolve(c->input, &c->value, NULL, NULL);
}

static void test_timeout_input_done_first_in_same_pass(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  struct resolve_ctx c = {new_future(loop), 42, -100};
  async_timer *t = tu_timer_new(loop, &c);
  assert_int_equal(async_timer_start(t, 5, 0, resolve_on_timer), 0); /* input done at +5 ms */
  async_future *to = NULL;
  assert_int_equal(async_future_timeout(&to, c.input, 30), 0);        /* deadline +30 ms */
  struct notes n = {0, 0, 0};
  assert_int_equal(async_future_add_callback(to, note_future, &n), 0);
  tu_sleep_ms(45); /* both overdue: they run in one timer pass, by deadline */
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(c.rc, 0);
  assert_int_equal(n.calls, 1);
  assert_int_equal(async_future_get_state(c.input), ASYNC_FUTURE_DONE);
  assert_int_equal(n.status, 0); /* not ASYNC_ETIMEDOUT */
  void *v = NULL;
  assert_int_equal(async_future_result(&v, to), 0);
  assert_ptr_equal(v, &c.value);
  assert_int_equal(async_future_free(to), 0);
  assert_int_equal(async_future_free(c.input), 0);
  tu_close(async_timer_handle(t));
  tu_finish(loop);
}

/*
 * A repeating timer is re-armed after its callback. If the callback filled
 * the timer heap (starting another timer), the re-arm needed memory; on
 * ENOMEM the timer stayed "active" outside the heap with a stale index, never
 * fired again, kept run(DEFAULT) alive forever, and stopping it removed
 * another timer's entry. The re-arm must not need memory.
 */
struct rearm {
  async_loop *loop;
  async_timer *extra;
  int r_fired, x_fired, t_fired, reset_ran;
};

static void rearm_x(async_timer *t, void *ud) {
  (void)t;
  ((struct rearm *)ud)->x_fired++;
}

static void rearm_t(async_timer *t, void *ud) {
  (void)t;
  ((struct rearm *)ud)->t_fired++;
}

static void rearm_reset(async_loop *loop, void *ud) {
  (void)loop;
  atomic_store(&g_fail_after, -1);
  ((struct rearm *)ud)->reset_ran++;
}

static void rearm_r(async_timer *t, void *ud) {
  struct rearm *s = ud;
  s->r_fired++;
  if (s->r_fired == 1) {
    async_timer_start(s->extra, 40, 0, rearm_t); /* takes the slot R left */
    async_loop_call_soon(s->loop, rearm_reset, s);
    atomic_store(&g_fail_after, 0); /* the heap cannot grow until reset */
  } else {
    async_handle_close(async_timer_handle(t), NULL);
  }
}

static void stop_loop_cb(async_timer *t, void *ud) {
  (void)t;
  async_loop_stop(ud);
}

static void test_repeating_rearm_needs_no_memory(void **state) {
  (void)state;
  use_failing_allocator();
  async_loop *loop = tu_loop_new();
  struct rearm s;
  memset(&s, 0, sizeof s);
  s.loop = loop;
  /* 16 timers in the heap (its first capacity): R, a guard, 14 others. */
  async_timer *r = NULL, *guard = NULL, *x[14];
  r = tu_timer_new(loop, &s);
  s.extra = tu_timer_new(loop, &s);
  guard = tu_timer_start(loop, loop, 500, 0, stop_loop_cb);
  assert_int_equal(async_handle_unref(async_timer_handle(guard)), 0);
  for (int i = 0; i < 14; ++i) {
    x[i] = tu_timer_start(loop, &s, 30, 0, rearm_x);
  }
  assert_int_equal(async_timer_start(r, 0, 5, rearm_r), 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  atomic_store(&g_fail_after, -1);
  assert_int_equal(s.reset_ran, 1);
  assert_int_equal(s.r_fired, 2); /* re-armed despite no memory */
  assert_int_equal(s.x_fired, 14);
  assert_int_equal(s.t_fired, 1);
  tu_close(async_timer_handle(guard));
  tu_close(async_timer_handle(s.extra));
  for (int i = 0; i < 14; ++i) {
    tu_close(async_timer_handle(x[i]));
  }
  tu_finish(loop);
  restore_allocator();
}

/*
 * When moving posted callbacks to the ready queue runs out of memory, the
 * loop logs an error. The log hook must not run under the post queue's
 * lock: a post from another thread (or the hook itself) used to block until
 * the hook returned (a deadlock when the hook posts on the loop thread).
 */
struct post_from_log {
  async_loop *loop;
  pthread_t thread;
  int started;
  atomic_int done;
  int rc;
  int waited_ok;
  int ran;
};

static void count_post(async_loop *loop, void *ud) {
  (void)loop;
  ((struct post_from_log *)ud)->ran++;
}

static void *poster_main(void *arg) {
  struct post_from_log *p = arg;
  p->rc = async_loop_post(p->loop, count_post, p);
  atomic_store(&p->done, 1);
  return NULL;
}

static void post_log_hook(async_loop *loop, int level, const char *message, void *ud) {
  (void)loop;
  (void)message;
  struct post_from_log *p = ud;
  if (level != ASYNC_LOG_ERROR || p->started) {
    return;
  }
  p->started = 1;
  if (pthread_create(&p->thread, NULL, poster_main, p) != 0) {
    p->started = 2;
    return;
  }
  /* A post never waits for loop callbacks: give it 500 ms. */
  for (int i = 0; i < 500 && !atomic_load(&p->done); ++i) {
    tu_sleep_ms(1);
  }
  p->waited_ok = atomic_load(&p->done);
}

static void test_log_hook_not_called_under_post_lock(void **state) {
  (void)state;
  use_failing_allocator();
  async_loop *loop = tu_loop_new();
  struct post_from_log p;
  memset(&p, 0, sizeof p);
  p.loop = loop;
  assert_int_equal(async_loop_set_log(loop, post_log_hook, NULL, &p), 0);
  for (int i = 0; i < 5; ++i) {
    assert_int_equal(async_loop_post(loop, count_post, &p), 0);
  }
  atomic_store(&g_fail_after, 0); /* the ready queue cannot take them */
  async_loop_run(loop, ASYNC_RUN_NOWAIT);
  atomic_store(&g_fail_after, -1);
  assert_int_equal(p.started, 1);
  pthread_join(p.thread, NULL);
  assert_int_equal(p.rc, 0);
  assert_int_equal(p.waited_ok, 1);
  assert_int_equal(p.ran, 0); /* stalled, not lost */
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(p.ran, 6);
  assert_int_equal(async_loop_free(loop), 0);
  restore_allocator();
}

/*
 * "A 0 ms timer fires on the next iteration": started from an I/O callback
 * it used to fire in the same iteration's timer pass (the pass only skipped
 * timers started during the pass itself).
 */
struct zero_from_io {
  async_loop *loop;
  async_timer *timer;
  uint64_t io_iter, timer_iter;
  int io_calls, timer_calls;
};

static void zero_timer_cb(async_timer *t, void *ud) {
  (void)t;
  struct zero_from_io *z = ud;
  z->timer_calls++;
  z->timer_iter = tu_iter_cb(z->loop);
}

static void zero_io_cb(async_watcher *w, uint32_t revents, void *ud) {
  (void)revents;
  struct zero_from_io *z = ud;
  z->io_calls++;
  z->io_iter = tu_iter_cb(z->loop);
  async_timer_start(z->timer, 0, 0, zero_timer_cb);
  async_watcher_stop(w);
}

static void test_zero_timer_from_io_callback_fires_next_iteration(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  struct zero_from_io z;
  memset(&z, 0, sizeof z);
  z.loop = loop;
  int p[2];
  assert_int_equal(pipe(p), 0);
  assert_int_equal(write(p[1], "x", 1), 1);
  async_watcher *w = tu_watcher_new(loop, p[0], &z);
  z.timer = tu_timer_new(loop, &z);
  assert_int_equal(async_watcher_start(w, ASYNC_READABLE, zero_io_cb), 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(z.io_calls, 1);
  assert_int_equal(z.timer_calls, 1);
  assert_true(z.timer_iter > z.io_iter);
  tu_close(async_watcher_handle(w));
  tu_close(async_timer_handle(z.timer));
  tu_finish(loop);
  tu_close_pair(p);
}

/* ===========================================================================
 * Regression coverage of the reviewed corners (passed before and after)
 * ======================================================================== */

/* Ready-queue reservations: with every allocation failing, resolving
 * futures (their dispatch) and closing handles still notify everyone once. */
static void test_reserved_work_runs_without_memory(void **state) {
  (void)state;
  use_failing_allocator();
  async_loop *loop = tu_loop_new();
  enum { NF = 40, NH = 12 };
  async_future *f[NF];
  struct notes fn[NF], hn[NH];
  async_handle *h[NH];
  memset(fn, 0, sizeof fn);
  memset(hn, 0, sizeof hn);
  for (int i = 0; i < NF; ++i) {
    f[i] = new_future(loop);
    assert_int_equal(async_future_add_callback(f[i], note_future_and_free, &fn[i]), 0);
  }
  for (int i = 0; i < NH; ++i) {
    if (i % 3 == 0) {
      async_timer *t = tu_timer_new(loop, &hn[i]);
      h[i] = async_timer_handle(t);
    } else if (i % 3 == 1) {
      async_hook *k = tu_hook_new(loop, ASYNC_HOOK_CHECK, &hn[i]);
      h[i] = async_hook_handle(k);
    } else {
      async_signal *s = NULL;
      assert_int_equal(async_signal_new(&s, loop, &hn[i]), 0);
      h[i] = async_signal_handle(s);
    }
  }
  atomic_store(&g_fail_after, 0);
  for (int i = 0; i < NF; ++i) {
    if (i % 2) {
      assert_int_equal(async_future_resolve(f[i], NULL, NULL, NULL), 0);
    } else {
      assert_int_equal(async_future_cancel(f[i]), 1);
    }
  }
  for (int i = 0; i < NH; ++i) {
    assert_int_equal(async_handle_close(h[i], note_close), 0);
  }
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  atomic_store(&g_fail_after, -1);
  for (int i = 0; i < NF; ++i) {
    assert_int_equal(fn[i].calls, 1);
    assert_int_equal(fn[i].status, i % 2 ? 0 : ASYNC_ECANCELED);
    assert_int_equal(fn[i].extra, 0);
  }
  for (int i = 0; i < NH; ++i) {
    assert_int_equal(hn[i].calls, 1);
  }
  assert_int_equal(async_loop_free(loop), 0);
  restore_allocator();
}

/* Gather::create and TimeoutWait::create failing at every allocation:
 * ENOMEM or success, never a lost or doubled notification, no leak. */
static void test_combinator_create_enomem_everywhere(void **state) {
  (void)state;
  use_failing_allocator();
  int all_ok = 0, to_ok = 0, any_ok = 0;
  for (int k = 0; k < 64 && !(all_ok && to_ok && any_ok); ++k) {
    async_loop *loop = tu_loop_new();
    async_future *in[3];
    struct notes inn[3][4];
    memset(inn, 0, sizeof inn);
    for (int i = 0; i < 3; ++i) {
      in[i] = new_future(loop);
      /* input 1 gets 4 callbacks: the combinator's registration must grow
       * its callback ring (a failure half-way through registration). */
      int nb = i == 1 ? 4 : 1;
      for (int j = 0; j < nb; ++j) {
        assert_int_equal(async_future_add_callback(in[i], note_future, &inn[i][j]), 0);
      }
    }
    async_future *all = NULL, *any = NULL, *to = NULL;
    atomic_store(&g_fail_after, k);
    int rc_all = async_future_all(&all, loop, in, 3);
    int rc_any = async_future_any(&any, loop, in, 3);
    int rc_to = async_future_timeout(&to, in[0], 1000);
    atomic_store(&g_fail_after, -1);
    assert_true(rc_all == 0 || rc_all == ASYNC_ENOMEM);
    assert_true(rc_any == 0 || rc_any == ASYNC_ENOMEM);
    assert_true(rc_to == 0 || rc_to == ASYNC_ENOMEM);
    struct notes rn[3];
    memset(rn, 0, sizeof rn);
    if (rc_all == 0) {
      all_ok = 1;
      assert_int_equal(async_future_add_callback(all, note_future_and_free, &rn[0]), 0);
    }
    if (rc_any == 0) {
      any_ok = 1;
      assert_int_equal(async_future_add_callback(any, note_future_and_free, &rn[1]), 0);
    }
    if (rc_to == 0) {
      to_ok = 1;
      assert_int_equal(async_future_add_callback(to, note_future_and_free, &rn[2]), 0);
    }
    assert_int_equal(async_future_resolve(in[1], NULL, NULL, NULL), 0);
    assert_int_equal(async_future_reject(in[2], ASYNC_EIO), 0);
    for (int i = 0; i < 3; ++i) {
      assert_int_equal(async_future_free(in[i]), 0); /* in[0] pending: cancelled */
    }
    assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
    for (int i = 0; i < 3; ++i) {
      for (int j = 0; j < (i == 1 ? 4 : 1); ++j) {
        assert_int_equal(inn[i][j].calls, 1);
      }
    }
    if (rc_all == 0) {
      assert_int_equal(rn[0].calls, 1);
      assert_int_equal(rn[0].status, ASYNC_EIO); /* the only one done before in[0]'s cancel ran */
    }
    if (rc_any == 0) {
      assert_int_equal(rn[1].calls, 1);
      assert_int_equal(rn[1].status, 0);
    }
    if (rc_to == 0) {
      assert_int_equal(rn[2].calls, 1);
      assert_int_equal(rn[2].status, ASYNC_ECANCELED);
    }
    assert_int_equal(async_loop_free(loop), 0);
  }
  assert_true(all_ok && any_ok && to_ok);
  restore_allocator();
}

/* A future freed in its own callback (registered first) while all, any and
 * timeout still hold it: they complete normally (ASan/valgrind check). */
static void test_input_freed_in_own_callback_held_by_combinators(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_future *a = new_future(loop), *b = new_future(loop);
  struct notes an = {0, 0, 0}, rn[3];
  memset(rn, 0, sizeof rn);
  assert_int_equal(async_future_add_callback(a, note_future_and_free, &an), 0);
  async_future *ins[2] = {a, b};
  async_future *all = NULL, *any = NULL, *to = NULL;
  assert_int_equal(async_future_all(&all, loop, ins, 2), 0);
  assert_int_equal(async_future_any(&any, loop, ins, 2), 0);
  assert_int_equal(async_future_timeout(&to, a, 1000), 0);
  assert_int_equal(async_future_add_callback(all, note_future_and_free, &rn[0]), 0);
  assert_int_equal(async_future_add_callback(any, note_future_and_free, &rn[1]), 0);
  assert_int_equal(async_future_add_callback(to, note_future_and_free, &rn[2]), 0);
  static int value = 7;
  assert_int_equal(async_future_resolve(a, &value, NULL, NULL), 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_ONCE), 1); /* a's callbacks; a freed */
  assert_int_equal(an.calls, 1);
  assert_int_equal(an.extra, 0);
  assert_int_equal(async_future_resolve(b, NULL, NULL, NULL), 0);
  assert_int_equal(async_future_free(b), 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  for (int i = 0; i < 3; ++i) {
    assert_int_equal(rn[i].calls, 1);
    assert_int_equal(rn[i].status, 0);
  }
  assert_int_equal(async_loop_free(loop), 0);
}

/* The same future twice in all/any; cancelling the combined future cancels
 * it once (one producer hook call). */
static void test_same_future_twice(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_future *f = new_future(loop);
  async_future *ins[2] = {f, f};
  async_future *all = NULL, *any = NULL;
  struct notes rn[2];
  memset(rn, 0, sizeof rn);
  assert_int_equal(async_future_all(&all, loop, ins, 2), 0);
  assert_int_equal(async_future_any(&any, loop, ins, 2), 0);
  assert_int_equal(async_future_add_callback(all, note_future, &rn[0]), 0);
  assert_int_equal(async_future_add_callback(any, note_future, &rn[1]), 0);
  assert_int_equal(async_future_resolve(f, NULL, NULL, NULL), 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(rn[0].calls, 1);
  assert_int_equal(rn[0].status, 0);
  assert_int_equal(rn[1].calls, 1);
  void *v = NULL;
  assert_int_equal(async_future_result(&v, any), 0);
  assert_ptr_equal(v, f);
  assert_int_equal(async_future_free(all), 0);
  assert_int_equal(async_future_free(any), 0);
  assert_int_equal(async_future_free(f), 0);

  /* Cancel variant. */
  f = new_future(loop);
  struct cancel_rec cr = {0, 0};
  assert_int_equal(async_future_set_cancel(f, note_cancel, &cr), 0);
  ins[0] = ins[1] = f;
  assert_int_equal(async_future_all(&all, loop, ins, 2), 0);
  memset(rn, 0, sizeof rn);
  assert_int_equal(async_future_add_callback(all, note_future, &rn[0]), 0);
  assert_int_equal(async_future_cancel(all), 1);
  assert_int_equal(cr.calls, 1);
  assert_int_equal(cr.cancelled, 1);
  assert_int_equal(async_future_get_state(f), ASYNC_FUTURE_CANCELLED);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(rn[0].calls, 1);
  assert_int_equal(rn[0].status, ASYNC_ECANCELED);
  assert_int_equal(async_future_free(all), 0);
  assert_int_equal(async_future_free(f), 0);
  assert_int_equal(async_loop_free(loop), 0);
}

/* timeout 0 on an input already DONE gives its value, never ETIMEDOUT;
 * timeout 0 on a pending input times out and cancels it (hook once). */
static void test_timeout_zero(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  static int value = 3;
  async_future *done = new_future(loop), *pending = new_future(loop);
  assert_int_equal(async_future_resolve(done, &value, NULL, NULL), 0);
  struct cancel_rec cr = {0, 0};
  assert_int_equal(async_future_set_cancel(pending, note_cancel, &cr), 0);
  async_future *t1 = NULL, *t2 = NULL;
  assert_int_equal(async_future_timeout(&t1, done, 0), 0);
  assert_int_equal(async_future_timeout(&t2, pending, 0), 0);
  struct notes n1 = {0, 0, 0}, n2 = {0, 0, 0}, np = {0, 0, 0};
  assert_int_equal(async_future_add_callback(t1, note_future, &n1), 0);
  assert_int_equal(async_future_add_callback(t2, note_future, &n2), 0);
  assert_int_equal(async_future_add_callback(pending, note_future, &np), 0);
  assert_int_equal(n1.calls + n2.calls, 0); /* never inline */
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(n1.calls, 1);
  assert_int_equal(n1.status, 0);
  void *v = NULL;
  assert_int_equal(async_future_result(&v, t1), 0);
  assert_ptr_equal(v, &value);
  assert_int_equal(n2.calls, 1);
  assert_int_equal(n2.status, ASYNC_ETIMEDOUT);
  assert_int_equal(cr.calls, 1);
  assert_int_equal(cr.cancelled, 1);
  assert_int_equal(np.calls, 1);
  assert_int_equal(np.status, ASYNC_ECANCELED);
  assert_int_equal(async_future_free(t1), 0);
  assert_int_equal(async_future_free(t2), 0);
  assert_int_equal(async_future_free(done), 0);
  assert_int_equal(async_future_free(pending), 0);
  assert_int_equal(async_loop_free(loop), 0);
}

/* Cancelling the input of a timeout cancels the result; cancelling the
 * result cancels the input; freeing a pending result cancels the input. */
static void test_timeout_cancel_both_ways(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  for (int mode = 0; mode < 3; ++mode) {
    async_future *in = new_future(loop), *to = NULL;
    struct cancel_rec cr = {0, 0};
    struct notes rn = {0, 0, 0};
    assert_int_equal(async_future_set_cancel(in, note_cancel, &cr), 0);
    assert_int_equal(async_future_timeout(&to, in, 10000), 0);
    assert_int_equal(async_future_add_callback(to, note_future, &rn), 0);
    if (mode == 0) {
      assert_int_equal(async_future_cancel(in), 1);
    } else if (mode == 1) {
      assert_int_equal(async_future_cancel(to), 1);
    } else {
      assert_int_equal(async_future_free(to), 0);
      to = NULL;
    }
    assert_int_equal(cr.calls, 1);
    assert_int_equal(cr.cancelled, 1);
    /* The internal timer is closed: run(DEFAULT) does not wait 10 s. */
    uint64_t t0 = tu_now_ns();
    assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
    assert_true(tu_elapsed_ms(t0) < 2000);
    assert_int_equal(rn.calls, 1);
    assert_int_equal(rn.status, ASYNC_ECANCELED);
    if (to) {
      assert_int_equal(async_future_get_state(to), ASYNC_FUTURE_CANCELLED);
      assert_int_equal(async_future_free(to), 0);
    }
    assert_int_equal(async_future_free(in), 0);
  }
  assert_int_equal(async_loop_free(loop), 0);
}

/* Freeing the inputs of all/any before they complete. */
static void test_free_inputs_before_combinator_completes(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_future *a = new_future(loop), *b = new_future(loop);
  async_future *ins[2] = {a, b};
  async_future *all = NULL, *any = NULL;
  assert_int_equal(async_future_all(&all, loop, ins, 2), 0);
  assert_int_equal(async_future_any(&any, loop, ins, 2), 0);
  struct notes rn[2];
  memset(rn, 0, sizeof rn);
  assert_int_equal(async_future_add_callback(all, note_future_and_free, &rn[0]), 0);
  assert_int_equal(async_future_add_callback(any, note_future_and_free, &rn[1]), 0);
  assert_int_equal(async_future_free(a), 0);
  assert_int_equal(async_future_free(b), 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(rn[0].calls, 1);
  assert_int_equal(rn[0].status, ASYNC_ECANCELED);
  assert_int_equal(rn[1].calls, 1);
  assert_int_equal(rn[1].status, 0); /* any: DONE with the first input */
  assert_int_equal(async_loop_free(loop), 0);
}

/* run_until: nested (EBUSY), stop inside (ESTATE, then usable again),
 * another loop's future (EINVAL), an already complete future. */
struct ru {
  async_loop *loop;
  async_future *f;
  int nested_rc;
};

static void ru_nested(async_loop *loop, void *ud) {
  struct ru *r = ud;
  r->nested_rc = async_loop_run_until(loop, r->f);
  async_loop_stop(loop);
}

static void ru_resolve(async_timer *t, void *ud) {
  (void)t;
  async_future_resolve(ud, NULL, NULL, NULL);
}

static void test_run_until_corners(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new(), *other = tu_loop_new();
  struct ru r = {loop, new_future(loop), 0};
  async_future *foreign = new_future(other);
  assert_int_equal(async_loop_run_until(loop, foreign), ASYNC_EINVAL);
  assert_int_equal(async_loop_run_until(other, r.f), ASYNC_EINVAL);

  async_timer *t = tu_timer_start(loop, r.f, 20, 0, ru_resolve);
  assert_int_equal(async_loop_call_soon(loop, ru_nested, &r), 0);
  assert_int_equal(async_loop_run_until(loop, r.f), ASYNC_ESTATE); /* stopped */
  assert_int_equal(r.nested_rc, ASYNC_EBUSY);
  assert_int_equal(async_future_get_state(r.f), ASYNC_FUTURE_PENDING);
  assert_int_equal(async_loop_run_until(loop, r.f), 0); /* the timer resolves it */
  assert_int_equal(async_loop_run_until(loop, r.f), 0); /* already done */
  assert_int_equal(async_future_free(r.f), 0);
  assert_int_equal(async_future_free(foreign), 0);
  tu_close(async_timer_handle(t));
  tu_finish(loop);
  tu_finish(other);
}

/* Repeating timer closed inside its own callback: no further call, one
 * close callback; restarted inside it: the new settings apply at once. */
struct self_timer {
  int calls;
  int mode;
  struct notes closed;
};

static void self_timer_closed(async_handle *h, void *ud) {
  (void)h;
  ((struct self_timer *)ud)->closed.calls++;
}

static void self_timer_cb(async_timer *t, void *ud) {
  struct self_timer *s = ud;
  s->calls++;
  if (s->mode == 0 && s->calls == 2) {
    async_handle_close(async_timer_handle(t), self_timer_closed);
  } else if (s->mode == 1 && s->calls == 1) {
    async_timer_start(t, 1, 0, self_timer_cb); /* now one-shot */
  }
}

static void test_timer_closed_or_restarted_in_own_callback(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  struct self_timer s0, s1;
  memset(&s0, 0, sizeof s0);
  memset(&s1, 0, sizeof s1);
  s1.mode = 1;
  async_timer *t0 = NULL, *t1 = NULL;
  t0 = tu_timer_new(loop, &s0);
  t1 = tu_timer_new(loop, &s1);
  assert_int_equal(async_timer_start(t0, 0, 1, self_timer_cb), 0);
  assert_int_equal(async_timer_start(t1, 0, 1, self_timer_cb), 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(s0.calls, 2);
  assert_int_equal(s0.closed.calls, 1);
  assert_int_equal(s1.calls, 2);
  assert_int_equal(async_handle_is_active(async_timer_handle(t1)), 0);
  tu_close(async_timer_handle(t1));
  tu_finish(loop);
}

/* Two ready watchers: whichever runs first closes the other in the same
 * iteration; the closed one is never called, each close callback once. */
struct pair {
  async_watcher *w[2];
  struct notes n[2];
  int calls;
};

static void pair_close_cb(async_handle *h, void *ud) {
  struct pair *p = ud;
  p->n[(async_handle *)p->w[0] == h ? 0 : 1].calls++; /* w[0] may be freed: compare only */
}

static void pair_cb2(async_watcher *w, uint32_t revents, void *ud) {
  (void)revents;
  struct pair *p = ud;
  p->calls++;
  int me = w == p->w[0] ? 0 : 1;
  async_handle_close(async_watcher_handle(p->w[1 - me]), pair_close_cb);
  async_handle_close(async_watcher_handle(w), pair_close_cb);
}

static void test_watcher_closes_other_pending_watcher(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int a[2], b[2];
  assert_int_equal(pipe(a), 0);
  assert_int_equal(pipe(b), 0);
  assert_int_equal(write(a[1], "x", 1), 1);
  assert_int_equal(write(b[1], "x", 1), 1);
  struct pair p;
  memset(&p, 0, sizeof p);
  p.w[0] = tu_watcher_new(loop, a[0], &p);
  p.w[1] = tu_watcher_new(loop, b[0], &p);
  assert_int_equal(async_watcher_start(p.w[0], ASYNC_READABLE, pair_cb2), 0);
  assert_int_equal(async_watcher_start(p.w[1], ASYNC_READABLE, pair_cb2), 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(p.calls, 1);
  assert_int_equal(p.n[0].calls, 1);
  assert_int_equal(p.n[1].calls, 1);
  assert_int_equal(async_loop_free(loop), 0);
  tu_close_pair(a);
  tu_close_pair(b);
}

/* Signal watcher B stopped / closed by A's callback while B's delivery of
 * the same raise is queued: B's delivery is dropped, B's close cb once. */
struct sigpair {
  async_signal *s[2];
  int calls[2];
  int mode;
  struct notes closed;
};

static void sigpair_closed(async_handle *h, void *ud) {
  (void)h;
  ((struct sigpair *)ud)->closed.calls++;
}

static void sigpair_cb(async_signal *s, int signum, void *ud) {
  (void)signum;
  struct sigpair *p = ud;
  int me = s == p->s[0] ? 0 : 1;
  p->calls[me]++;
  if (p->mode == 0) {
    async_signal_stop(p->s[1 - me]);
  } else {
    async_handle_close(async_signal_handle(p->s[1 - me]), sigpair_closed);
  }
}

static void test_signal_stopped_with_delivery_queued(void **state) {
  (void)state;
  for (int mode = 0; mode < 2; ++mode) {
    async_loop *loop = tu_loop_new();
    struct sigpair p;
    memset(&p, 0, sizeof p);
    p.mode = mode;
    assert_int_equal(async_signal_new(&p.s[0], loop, &p), 0);
    assert_int_equal(async_signal_new(&p.s[1], loop, &p), 0);
    assert_int_equal(async_signal_start(p.s[0], SIGUSR2, sigpair_cb), 0);
    assert_int_equal(async_signal_start(p.s[1], SIGUSR2, sigpair_cb), 0);
    raise(SIGUSR2);
    assert_int_equal(async_loop_run(loop, ASYNC_RUN_NOWAIT), 1);
    assert_int_equal(p.calls[0] + p.calls[1], 1);
    int first = p.calls[0] ? 0 : 1;
    if (mode == 0) {
      tu_close(async_signal_handle(p.s[1 - first]));
    }
    tu_close(async_signal_handle(p.s[first]));
    tu_finish(loop);
    assert_int_equal(p.calls[0] + p.calls[1], 1);
    assert_int_equal(p.closed.calls, mode == 1 ? 1 : 0);
  }
}

/* Loop reference accounting: unref'd handles, closing handles, unref'd
 * idle hooks, queued callbacks. */
static void test_alive_accounting(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int idles = 0, fired = 0;
  async_timer *t = NULL, *u = NULL;
  async_hook *idle = tu_hook_new(loop, ASYNC_HOOK_IDLE, &idles);
  assert_int_equal(async_hook_start(idle, tu_count_hook_cb), 0);
  assert_int_equal(async_handle_unref(async_hook_handle(idle)), 0);
  assert_int_equal(async_loop_alive(loop), 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0); /* does not spin forever */
  assert_true(idles >= 1);

  /* An unref'd timer does not hold run; a referenced one does. */
  u = tu_timer_start(loop, &fired, 10000, 0, tu_count_timer_cb);
  assert_int_equal(async_handle_unref(async_timer_handle(u)), 0);
  t = tu_timer_start(loop, &fired, 10, 0, tu_count_timer_cb);
  assert_int_equal(async_loop_alive(loop), 1);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(fired, 1);
  assert_int_equal(async_loop_alive(loop), 0);

  /* Closing unref'd handles are alive until their close callbacks ran. */
  struct notes n[3];
  memset(n, 0, sizeof n);
  assert_int_equal(async_handle_set_userdata(async_timer_handle(u), &n[0]), 0);
  assert_int_equal(async_handle_set_userdata(async_hook_handle(idle), &n[1]), 0);
  assert_int_equal(async_handle_set_userdata(async_timer_handle(t), &n[2]), 0);
  assert_int_equal(async_handle_close(async_timer_handle(u), note_close), 0);
  assert_int_equal(async_handle_close(async_hook_handle(idle), note_close), 0);
  assert_int_equal(async_handle_close(async_timer_handle(t), note_close), 0);
  assert_int_equal(async_loop_alive(loop), 1);
  assert_int_equal(async_loop_free(loop), ASYNC_EBUSY);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  for (int i = 0; i < 3; ++i) {
    assert_int_equal(n[i].calls, 1);
  }
  assert_int_equal(async_loop_alive(loop), 0);
  assert_int_equal(async_loop_free(loop), 0);
}

/* Posting to a freed loop is refused; freeing inside a callback is EBUSY. */
static void free_inside(async_loop *loop, void *ud) { *(int *)ud = async_loop_free(loop); }

static void test_post_after_free_and_free_inside_run(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int rc = 0;
  assert_int_equal(async_loop_call_soon(loop, free_inside, &rc), 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(rc, ASYNC_EBUSY);
  assert_int_equal(async_loop_free(loop), 0);
  assert_int_equal(async_loop_post(loop, free_inside, &rc), ASYNC_ECLOSED);
  assert_int_equal(async_loop_wakeup(loop), ASYNC_ECLOSED);
}

int main(void) {
  /* SIGUSR2 must not kill the process if a raise is not taken. */
  signal(SIGUSR2, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_set_events_unstarted_never_calls_null),
      cmocka_unit_test(test_timeout_input_done_first_in_same_pass),
      cmocka_unit_test(test_repeating_rearm_needs_no_memory),
      cmocka_unit_test(test_log_hook_not_called_under_post_lock),
      cmocka_unit_test(test_zero_timer_from_io_callback_fires_next_iteration),
      cmocka_unit_test(test_reserved_work_runs_without_memory),
      cmocka_unit_test(test_combinator_create_enomem_everywhere),
      cmocka_unit_test(test_input_freed_in_own_callback_held_by_combinators),
      cmocka_unit_test(test_same_future_twice),
      cmocka_unit_test(test_timeout_zero),
      cmocka_unit_test(test_timeout_cancel_both_ways),
      cmocka_unit_test(test_free_inputs_before_combinator_completes),
      cmocka_unit_test(test_run_until_corners),
      cmocka_unit_test(test_timer_closed_or_restarted_in_own_callback),
      cmocka_unit_test(test_watcher_closes_other_pending_watcher),
      cmocka_unit_test(test_signal_stopped_with_delivery_queued),
      cmocka_unit_test(test_alive_accounting),
      cmocka_unit_test(test_post_after_free_and_free_inside_run),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
