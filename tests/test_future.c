/*
 * async_future: one-shot completions and their combinators
 * (async/future.h; DESIGN.md §2.5, §6; asyncio-semantics.md §2).
 *
 * State transitions and results, resolve/reject/cancel rules, done
 * callbacks (call_soon, registration order, never inside the completing
 * call, also when added late), the producer cancel hook, freeing inside a
 * done callback and while pending, value destructors, all / any / timeout,
 * async_loop_run_until, and the userdata contract (exactly one final
 * notification per callback userdata).
 */
#include "test_util.h"

#include <limits.h>
#include <string.h>

/* Global sequence: every recorded event takes the next number. */
static int g_seq;

/* One done-callback registration. Never asserts inside callbacks. */
struct cbrec {
  int calls;
  int status;
  int order;              /* g_seq at the (last) call */
  async_future *future;   /* future passed to the call */
  int state_in_cb;        /* async_future_get_state() during the call */
  int result_in_cb;       /* async_future_result() during the call */
  void *value_in_cb;      /* value read during the call */
  uint64_t iter;          /* loop iteration of the call */
  int free_in_cb;         /* free the future inside the callback */
  int free_rc;
  int free2_rc;           /* a second free in the same callback */
  int destroys_in_cb;     /* destructor count seen during the call */
};

static int g_destroys;
static void *g_destroyed_value;

static void *g_destroyed_context;

static void destroy_value(void *value, void *context) {
  g_destroys++;
  g_destroyed_value = value;
  g_destroyed_context = context;
}

static void rec_cb(async_future *f, int status, void *ud) {
  struct cbrec *r = ud;
  r->calls++;
  r->status = status;
  r->order = ++g_seq;
  r->future = f;
  r->state_in_cb = async_future_get_state(f);
  r->value_in_cb = (void *)0x1;
  r->result_in_cb = async_future_result(&r->value_in_cb, f);
  r->iter = tu_iter_cb(async_future_loop(f));
  r->destroys_in_cb = g_destroys;
  if (r->free_in_cb) {
    r->free_rc = async_future_free(f);
    r->free2_rc = async_future_free(f);
  }
}

/* The producer cancel hook. */
struct hookrec {
  int calls;
  int cancelled;
  int state_in_hook;
  async_future *future;
  void *ud;
  int order;
};

static void hook_cb(async_future *f, int cancelled, void *ud) {
  struct hookrec *h = ud;
  h->calls++;
  h->cancelled = cancelled;
  h->state_in_hook = async_future_get_state(f);
  h->future = f;
  h->ud = ud;
  h->order = ++g_seq;
}

struct soonrec {
  int calls;
  int order;
};

static void soon_cb(async_loop *l, void *ud) {
  (void)l;
  struct soonrec *s = ud;
  s->calls++;
  s->order = ++g_seq;
}

static async_future *fut_new(async_loop *loop) {
  async_future *f = NULL;
  assert_int_equal(async_future_new(&f, loop), 0);
  assert_non_null(f);
  return f;
}

/* Registers r (zeroed by the caller) as a recording done callback of f. */
static void add_rec(async_future *f, struct cbrec *r) {
  assert_int_equal(async_future_add_callback(f, rec_cb, r), 0);
}

/* Installs h (zeroed by the caller) as the cancel hook of f. */
static void set_hook(async_future *f, struct hookrec *h) {
  assert_int_equal(async_future_set_cancel(f, hook_cb, h), 0);
}

/* A new future with cancel hook h and recording callbacks r1, r2 (all
 * zeroed by the caller), registered in that order. */
static async_future *fut_hook_recs(async_loop *loop, struct hookrec *h, struct cbrec *r1, struct cbrec *r2) {
  async_future *f = fut_new(loop);
  set_hook(f, h);
  add_rec(f, r1);
  add_rec(f, r2);
  return f;
}

/* n new futures in[i], each with the zeroed cancel hook h[i]. */
static void new_hooked(async_loop *loop, async_future **in, struct hookrec *h, int n) {
  memset(h, 0, sizeof *h * (size_t)n);
  for (int i = 0; i < n; i++) {
    in[i] = fut_new(loop);
    set_hook(in[i], &h[i]);
  }
}

/* all() / any() of the n futures in; the call must succeed. */
static async_future *all_of(async_loop *loop, async_future **in, size_t n) {
  async_future *f = NULL;
  assert_int_equal(async_future_all(&f, loop, in, n), 0);
  return f;
}

static async_future *any_of(async_loop *loop, async_future **in, size_t n) {
  async_future *f = NULL;
  assert_int_equal(async_future_any(&f, loop, in, n), 0);
  return f;
}

/* Frees n futures in order; every free must return 0. */
static void free_futures(async_future **in, int n) {
  for (int i = 0; i < n; i++) {
    assert_int_equal(async_future_free(in[i]), 0);
  }
}

static void reset_globals(void) {
  g_seq = 0;
  g_destroys = 0;
  g_destroyed_value = NULL;
  g_destroyed_context = NULL;
}

static void run_default(async_loop *loop) {
  uint64_t t0 = tu_now_ns();
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_true(tu_elapsed_ms(t0) < 10000.0);
}

/* ------------------------------------------------------------------ */
/* States and results                                                  */

static void test_pending_to_done(void **state) {
  (void)state;
  reset_globals();
  async_loop *loop = tu_loop_new();
  async_future *f = fut_new(loop);
  int x = 5;
  void *v = &v;
  assert_int_equal(async_future_get_state(f), ASYNC_FUTURE_PENDING);
  assert_ptr_equal(async_future_loop(f), loop);
  assert_int_equal(async_future_result(&v, f), ASYNC_ESTATE);
  assert_int_equal(async_future_result(NULL, f), ASYNC_ESTATE);
  assert_int_equal(async_loop_alive(loop), 0); /* a bare future is no work */

  assert_int_equal(async_future_resolve(f, &x, NULL, NULL), 0);
  assert_int_equal(async_future_get_state(f), ASYNC_FUTURE_DONE);
  assert_int_equal(async_future_result(&v, f), 0);
  assert_ptr_equal(v, &x);
  assert_int_equal(async_future_result(NULL, f), 0);
  assert_int_equal(async_future_cancel(f), 0); /* already complete */
  assert_int_equal(async_future_get_state(f), ASYNC_FUTURE_DONE);
  v = NULL;
  assert_int_equal(async_future_result(&v, f), 0);
  assert_ptr_equal(v, &x);
  assert_int_equal(async_future_free(f), 0);
  tu_finish(loop);
}

static void test_pending_to_failed(void **state) {
  (void)state;
  reset_globals();
  async_loop *loop = tu_loop_new();
  async_future *f = fut_new(loop);
  assert_int_equal(async_future_reject(f, ASYNC_ETIMEDOUT), 0);
  assert_int_equal(async_future_get_state(f), ASYNC_FUTURE_FAILED);
  assert_int_equal(async_future_result(NULL, f), ASYNC_ETIMEDOUT);
  void *v = NULL;
  assert_int_equal(async_future_result(&v, f), ASYNC_ETIMEDOUT);
  assert_int_equal(async_future_cancel(f), 0);
  assert_int_equal(async_future_get_state(f), ASYNC_FUTURE_FAILED);
  assert_int_equal(async_future_free(f), 0);

  /* Any negative code, including ones libasync does not define. */
  f = fut_new(loop);
  assert_int_equal(async_future_reject(f, -12345), 0);
  assert_int_equal(async_future_result(NULL, f), -12345);
  assert_int_equal(async_future_free(f), 0);
  f = fut_new(loop);
  assert_int_equal(async_future_reject(f, INT_MIN), 0);
  assert_int_equal(async_future_result(NULL, f), INT_MIN);
  assert_int_equal(async_future_free(f), 0);
  tu_finish(loop);
}

static void test_pending_to_cancelled(void **state) {
  (void)state;
  reset_globals();
  async_loop *loop = tu_loop_new();
  async_future *f = fut_new(loop);
  assert_int_equal(async_future_cancel(f), 1);
  assert_int_equal(async_future_get_state(f), ASYNC_FUTURE_CANCELLED);
  assert_int_equal(async_future_result(NULL, f), ASYNC_ECANCELED);
  assert_int_equal(async_future_cancel(f), 0);
  assert_int_equal(async_future_get_state(f), ASYNC_FUTURE_CANCELLED);
  assert_int_equal(async_future_free(f), 0);
  tu_finish(loop);
}

/* Completing twice -> ESTATE; the failed call changes nothing and the
 * value given to a failed resolve stays the caller's. */
static void test_complete_twice(void **state) {
  (void)state;
  reset_globals();
  async_loop *loop = tu_loop_new();
  int a = 1, b = 2;
  void *v = NULL;

  async_future *f = fut_new(loop);
  assert_int_equal(async_future_resolve(f, &a, destroy_value, NULL), 0);
  assert_int_equal(async_future_resolve(f, &b, destroy_value, NULL), ASYNC_ESTATE);
  assert_int_equal(async_future_reject(f, ASYNC_EIO), ASYNC_ESTATE);
  assert_int_equal(async_future_get_state(f), ASYNC_FUTURE_DONE);
  assert_int_equal(async_future_result(&v, f), 0);
  assert_ptr_equal(v, &a);
  assert_int_equal(g_destroys, 0);
  assert_int_equal(async_future_free(f), 0);
  tu_finish(loop);
  loop = tu_loop_new();
  assert_int_equal(g_destroys, 1);
  assert_ptr_equal(g_destroyed_value, &a); /* never &b */

  f = fut_new(loop);
  assert_int_equal(async_future_reject(f, ASYNC_EIO), 0);
  assert_int_equal(async_future_reject(f, ASYNC_EIO), ASYNC_ESTATE);
  assert_int_equal(async_future_resolve(f, &b, destroy_value, NULL), ASYNC_ESTATE);
  assert_int_equal(async_future_result(NULL, f), ASYNC_EIO);
  assert_int_equal(async_future_free(f), 0);

  f = fut_new(loop);
  assert_int_equal(async_future_cancel(f), 1);
  assert_int_equal(async_future_resolve(f, &b, destroy_value, NULL), ASYNC_ESTATE);
  assert_int_equal(async_future_reject(f, ASYNC_EIO), ASYNC_ESTATE);
  assert_int_equal(async_future_get_state(f), ASYNC_FUTURE_CANCELLED);
  assert_int_equal(async_future_free(f), 0);
  tu_finish(loop);
  assert_int_equal(g_destroys, 1); /* &b was never owned by a future */
}

/* reject needs a negative code. */
static void test_reject_nonnegative(void **state) {
  (void)state;
  reset_globals();
  async_loop *loop = tu_loop_new();
  async_future *f = fut_new(loop);
  assert_int_equal(async_future_reject(f, 0), ASYNC_EINVAL);
  assert_int_equal(async_future_reject(f, 1), ASYNC_EINVAL);
  assert_int_equal(async_future_reject(f, INT_MAX), ASYNC_EINVAL);
  assert_int_equal(async_future_get_state(f), ASYNC_FUTURE_PENDING);
  assert_int_equal(async_future_reject(f, ASYNC_EINVAL), 0); /* a valid negative code */
  assert_int_equal(async_future_result(NULL, f), ASYNC_EINVAL);
  assert_int_equal(async_future_free(f), 0);
  tu_finish(loop);
}

/* ------------------------------------------------------------------ */
/* Done callbacks                                                      */

/* Registration order, through call_soon: call_soon callbacks queued before
 * the resolve run before, those queued after it run after; none inside
 * resolve; each exactly once with status 0 and a readable future. */
static void test_callbacks_order_and_call_soon(void **state) {
  (void)state;
  reset_globals();
  async_loop *loop = tu_loop_new();
  async_future *f = fut_new(loop);
  struct cbrec r[3];
  memset(r, 0, sizeof r);
  struct soonrec before = {0}, after = {0};
  int x = 9;
  for (int i = 0; i < 3; i++) {
    add_rec(f, &r[i]);
  }
  assert_int_equal(async_loop_call_soon(loop, soon_cb, &before), 0);
  uint64_t it0 = tu_iterations(loop);
  assert_int_equal(async_future_resolve(f, &x, NULL, NULL), 0);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(r[i].calls, 0); /* never inside resolve */
  }
  assert_int_equal(async_loop_call_soon(loop, soon_cb, &after), 0);
  run_default(loop);
  assert_int_equal(before.order, 1);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(r[i].calls, 1);
    assert_int_equal(r[i].status, 0);
    assert_int_equal(r[i].order, 2 + i);
    assert_ptr_equal(r[i].future, f);
    assert_int_equal(r[i].state_in_cb, ASYNC_FUTURE_DONE);
    assert_int_equal(r[i].result_in_cb, 0);
    assert_ptr_equal(r[i].value_in_cb, &x);
    assert_true(r[i].iter > it0);
  }
  assert_int_equal(after.order, 5);
  /* Exactly once. */
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_NOWAIT), 0);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(r[i].calls, 1);
  }
  assert_int_equal(async_future_free(f), 0);
  tu_finish(loop);
}

/* The status passed to callbacks for FAILED and CANCELLED futures. */
static void test_callback_status_failed_cancelled(void **state) {
  (void)state;
  reset_globals();
  async_loop *loop = tu_loop_new();
  async_future *f1 = fut_new(loop);
  async_future *f2 = fut_new(loop);
  struct cbrec r1 = {0}, r2 = {0};
  add_rec(f1, &r1);
  add_rec(f2, &r2);
  assert_int_equal(async_future_reject(f1, -777), 0);
  assert_int_equal(async_future_cancel(f2), 1);
  assert_int_equal(r1.calls + r2.calls, 0);
  run_default(loop);
  assert_int_equal(r1.calls, 1);
  assert_int_equal(r1.status, -777);
  assert_int_equal(r1.state_in_cb, ASYNC_FUTURE_FAILED);
  assert_int_equal(r1.result_in_cb, -777);
  assert_int_equal(r2.calls, 1);
  assert_int_equal(r2.status, ASYNC_ECANCELED);
  assert_int_equal(r2.state_in_cb, ASYNC_FUTURE_CANCELLED);
  assert_int_equal(r2.result_in_cb, ASYNC_ECANCELED);
  assert_int_equal(r1.order, 1); /* completion order */
  assert_int_equal(r2.order, 2);
  assert_int_equal(async_future_free(f1), 0);
  assert_int_equal(async_future_free(f2), 0);
  tu_finish(loop);
}

/* A callback added to an already-done future runs on a later iteration
 * (never inside add_callback), after the call_soon callbacks queued
 * before it and before those queued after it. */
static void test_callback_on_done_future(void **state) {
  (void)state;
  reset_globals();
  async_loop *loop = tu_loop_new();
  async_future *f = fut_new(loop);
  int x = 3;
  assert_int_equal(async_future_resolve(f, &x, NULL, NULL), 0);
  run_default(loop);
  struct cbrec r1 = {0}, r2 = {0};
  struct soonrec a = {0}, b = {0};
  assert_int_equal(async_loop_call_soon(loop, soon_cb, &a), 0);
  add_rec(f, &r1);
  assert_int_equal(r1.calls, 0);
  add_rec(f, &r2);
  assert_int_equal(async_loop_call_soon(loop, soon_cb, &b), 0);
  assert_int_equal(async_loop_alive(loop), 1); /* scheduled work */
  uint64_t it0 = tu_iterations(loop);
  run_default(loop);
  assert_int_equal(a.order, 1);
  assert_int_equal(r1.order, 2);
  assert_int_equal(r2.order, 3);
  assert_int_equal(b.order, 4);
  assert_int_equal(r1.calls, 1);
  assert_int_equal(r2.calls, 1);
  assert_int_equal(r1.status, 0);
  assert_ptr_equal(r1.value_in_cb, &x);
  assert_true(r1.iter > it0);
  assert_int_equal(async_future_free(f), 0);
  tu_finish(loop);
}

/* Completed with a callback queued; a call_soon and then a second callback
 * are added before the loop runs: each runs "through call_soon" at the
 * time it was scheduled, so the order is cb1, soon, cb2 (asyncio). */
static void test_late_callback_queues_behind_call_soon(void **state) {
  (void)state;
  reset_globals();
  async_loop *loop = tu_loop_new();
  async_future *f = fut_new(loop);
  struct cbrec r1 = {0}, r2 = {0};
  struct soonrec s = {0};
  add_rec(f, &r1);
  assert_int_equal(async_future_resolve(f, NULL, NULL, NULL), 0);
  assert_int_equal(async_loop_call_soon(loop, soon_cb, &s), 0);
  add_rec(f, &r2);
  run_default(loop);
  assert_int_equal(r1.calls, 1);
  assert_int_equal(s.calls, 1);
  assert_int_equal(r2.calls, 1);
  assert_int_equal(r1.order, 1);
  assert_int_equal(s.order, 2);
  assert_int_equal(r2.order, 3);
  assert_int_equal(async_future_free(f), 0);
  tu_finish(loop);
}

/* A callback added from inside a done callback of the same future runs on
 * a later iteration, not in the same pass. */
struct adder {
  struct cbrec inner;
  int add_rc;
  uint64_t iter;
};

static void adder_cb(async_future *f, int status, void *ud) {
  (void)status;
  struct adder *a = ud;
  a->iter = tu_iter_cb(async_future_loop(f));
  a->add_rc = async_future_add_callback(f, rec_cb, &a->inner);
  a->inner.order = -a->inner.calls; /* 0 if inner has not run yet */
}

static void test_add_callback_inside_callback(void **state) {
  (void)state;
  reset_globals();
  async_loop *loop = tu_loop_new();
  async_future *f = fut_new(loop);
  struct adder a;
  memset(&a, 0, sizeof a);
  assert_int_equal(async_future_add_callback(f, adder_cb, &a), 0);
  assert_int_equal(async_future_resolve(f, NULL, NULL, NULL), 0);
  run_default(loop);
  assert_int_equal(a.add_rc, 0);
  assert_int_equal(a.inner.calls, 1);
  assert_true(a.inner.iter > a.iter);
  assert_int_equal(async_future_free(f), 0);
  tu_finish(loop);
}

/* add_callback with a NULL callback fails and schedules nothing. */
static void test_add_callback_null(void **state) {
  (void)state;
  reset_globals();
  async_loop *loop = tu_loop_new();
  async_future *f = fut_new(loop);
  assert_int_equal(async_future_add_callback(f, NULL, NULL), ASYNC_EINVAL);
  assert_int_equal(async_future_resolve(f, NULL, NULL, NULL), 0);
  assert_int_equal(async_future_add_callback(f, NULL, NULL), ASYNC_EINVAL);
  assert_int_equal(async_loop_alive(loop), 0);
  assert_int_equal(async_future_free(f), 0);
  tu_finish(loop);
}

/* ------------------------------------------------------------------ */
/* Cancel hook                                                         */

static void test_cancel_runs_hook_and_callbacks(void **state) {
  (void)state;
  reset_globals();
  async_loop *loop = tu_loop_new();
  struct hookrec h = {0};
  struct cbrec r1 = {0}, r2 = {0};
  async_future *f = fut_hook_recs(loop, &h, &r1, &r2);
  assert_int_equal(async_future_cancel(f), 1);
  /* The hook ran inside cancel, once, with the future already CANCELLED. */
  assert_int_equal(h.calls, 1);
  assert_int_equal(h.cancelled, 1);
  assert_int_equal(h.state_in_hook, ASYNC_FUTURE_CANCELLED);
  assert_ptr_equal(h.future, f);
  assert_ptr_equal(h.ud, &h);
  assert_int_equal(r1.calls + r2.calls, 0);
  assert_int_equal(async_future_cancel(f), 0);
  run_default(loop);
  assert_int_equal(r1.calls, 1);
  assert_int_equal(r2.calls, 1);
  assert_int_equal(r1.status, ASYNC_ECANCELED);
  assert_int_equal(r2.status, ASYNC_ECANCELED);
  assert_true(r1.order < r2.order);
  assert_int_equal(async_future_free(f), 0);
  tu_finish(loop);
  assert_int_equal(h.calls, 1); /* not again on free */
}

static void test_resolve_reject_run_hook_uncancelled(void **state) {
  (void)state;
  reset_globals();
  async_loop *loop = tu_loop_new();
  async_future *f = fut_new(loop);
  struct hookrec h = {0};
  int x = 1;
  set_hook(f, &h);
  assert_int_equal(async_future_resolve(f, &x, NULL, NULL), 0);
  assert_int_equal(h.calls, 1);
  assert_int_equal(h.cancelled, 0);
  assert_int_equal(async_future_cancel(f), 0);
  assert_int_equal(async_future_free(f), 0);
  run_default(loop);
  assert_int_equal(h.calls, 1);

  struct hookrec h2 = {0};
  f = fut_new(loop);
  set_hook(f, &h2);
  assert_int_equal(async_future_reject(f, ASYNC_EIO), 0);
  assert_int_equal(h2.calls, 1);
  assert_int_equal(h2.cancelled, 0);
  assert_int_equal(async_future_free(f), 0);
  tu_finish(loop);
  assert_int_equal(h2.calls, 1);
}

static void test_set_cancel_rules(void **state) {
  (void)state;
  reset_globals();
  async_loop *loop = tu_loop_new();
  struct hookrec h1 = {0}, h2 = {0};
  async_future *f = fut_new(loop);
  assert_int_equal(async_future_set_cancel(f, NULL, NULL), ASYNC_EINVAL);
  set_hook(f, &h1);
  assert_int_equal(async_future_set_cancel(f, hook_cb, &h2), ASYNC_ESTATE);
  assert_int_equal(async_future_cancel(f), 1);
  assert_int_equal(h1.calls, 1);
  assert_int_equal(h2.calls, 0); /* the rejected second hook never runs */
  assert_int_equal(async_future_set_cancel(f, hook_cb, &h2), ASYNC_ESTATE);
  assert_int_equal(async_future_free(f), 0);

  f = fut_new(loop);
  assert_int_equal(async_future_resolve(f, NULL, NULL, NULL), 0);
  assert_int_equal(async_future_set_cancel(f, hook_cb, &h2), ASYNC_ESTATE);
  assert_int_equal(async_future_free(f), 0);
  tu_finish(loop);
  assert_int_equal(h1.calls, 1);
  assert_int_equal(h2.calls, 0);
}

/* cancel on a complete future returns 0 and changes nothing: its callbacks
 * still get the real status. */
static void test_cancel_done_future(void **state) {
  (void)state;
  reset_globals();
  async_loop *loop = tu_loop_new();
  async_future *f = fut_new(loop);
  struct cbrec r = {0};
  int x = 1;
  add_rec(f, &r);
  assert_int_equal(async_future_resolve(f, &x, NULL, NULL), 0);
  assert_int_equal(async_future_cancel(f), 0);
  run_default(loop);
  assert_int_equal(r.calls, 1);
  assert_int_equal(r.status, 0);
  assert_ptr_equal(r.value_in_cb, &x);
  assert_int_equal(async_future_free(f), 0);
  tu_finish(loop);
}

/* ------------------------------------------------------------------ */
/* Freeing                                                             */

/* Freed inside its own done callback: a second callback registered after
 * it still runs and can still read the future; the value is destroyed
 * once, after the last callback. */
static void test_free_inside_callback(void **state) {
  (void)state;
  reset_globals();
  async_loop *loop = tu_loop_new();
  async_future *f = fut_new(loop);
  struct cbrec r1 = {0}, r2 = {0};
  r1.free_in_cb = 1;
  int x = 11;
  add_rec(f, &r1);
  add_rec(f, &r2);
  assert_int_equal(async_future_resolve(f, &x, destroy_value, NULL), 0);
  run_default(loop);
  assert_int_equal(r1.calls, 1);
  assert_int_equal(r1.free_rc, 0);
  assert_int_equal(r1.free2_rc, ASYNC_EINVAL); /* already freed */
  assert_int_equal(r2.calls, 1);
  assert_int_equal(r2.status, 0);
  assert_int_equal(r2.state_in_cb, ASYNC_FUTURE_DONE);
  assert_int_equal(r2.result_in_cb, 0);
  assert_ptr_equal(r2.value_in_cb, &x);
  assert_int_equal(r2.destroys_in_cb, 0); /* not released before r2 ran */
  assert_int_equal(g_destroys, 1);
  assert_ptr_equal(g_destroyed_value, &x);
  assert_int_equal(async_loop_free(loop), 0);
}

/* Freed inside its callback when cancelled and when failed, too. */
static void test_free_inside_callback_cancelled(void **state) {
  (void)state;
  reset_globals();
  async_loop *loop = tu_loop_new();
  struct hookrec h = {0};
  struct cbrec r1 = {0}, r2 = {0};
  async_future *f = fut_hook_recs(loop, &h, &r1, &r2);
  r1.free_in_cb = 1;
  assert_int_equal(async_future_cancel(f), 1);
  run_default(loop);
  assert_int_equal(r1.free_rc, 0);
  assert_int_equal(r2.calls, 1);
  assert_int_equal(r2.status, ASYNC_ECANCELED);
  assert_int_equal(r2.state_in_cb, ASYNC_FUTURE_CANCELLED);
  assert_int_equal(h.calls, 1);
  assert_int_equal(async_loop_free(loop), 0);
}

/* Freeing a pending future cancels it: hook (cancelled = 1) inside free,
 * callbacks with ECANCELED later, the loop freeable afterwards. */
static void test_free_pending_cancels(void **state) {
  (void)state;
  reset_globals();
  async_loop *loop = tu_loop_new();
  struct hookrec h = {0};
  struct cbrec r1 = {0}, r2 = {0};
  async_future *f = fut_hook_recs(loop, &h, &r1, &r2);
  assert_int_equal(async_future_free(f), 0);
  assert_int_equal(h.calls, 1);
  assert_int_equal(h.cancelled, 1);
  assert_int_equal(h.state_in_hook, ASYNC_FUTURE_CANCELLED);
  assert_int_equal(r1.calls + r2.calls, 0);
  assert_int_equal(async_loop_free(loop), ASYNC_EBUSY); /* callbacks queued */
  run_default(loop);
  assert_int_equal(r1.calls, 1);
  assert_int_equal(r2.calls, 1);
  assert_int_equal(r1.status, ASYNC_ECANCELED);
  assert_int_equal(r2.status, ASYNC_ECANCELED);
  assert_int_equal(r1.state_in_cb, ASYNC_FUTURE_CANCELLED);
  assert_true(r1.order < r2.order);
  assert_int_equal(async_loop_free(loop), 0);
  assert_int_equal(h.calls, 1);
}

/* A pending future without callbacks or hook: free releases it at once. */
static void test_free_pending_plain(void **state) {
  (void)state;
  reset_globals();
  async_loop *loop = tu_loop_new();
  async_future *f = fut_new(loop);
  /* A live future holds its loop (freeing it later must stay valid). */
  assert_int_equal(async_loop_free(loop), ASYNC_EBUSY);
  assert_int_equal(async_future_free(f), 0);
  tu_finish(loop);
}

/* The value destructor runs exactly once, when the future is released
 * (after free and after its callbacks), never for FAILED/CANCELLED. */
static void test_value_destructor_once(void **state) {
  (void)state;
  reset_globals();
  async_loop *loop = tu_loop_new();
  async_future *f = fut_new(loop);
  struct cbrec r = {0};
  int x = 1;
  add_rec(f, &r);
  assert_int_equal(async_future_resolve(f, &x, destroy_value, NULL), 0);
  run_default(loop);
  assert_int_equal(r.calls, 1);
  assert_int_equal(g_destroys, 0); /* still owned */
  void *v = NULL;
  assert_int_equal(async_future_result(&v, f), 0);
  assert_ptr_equal(v, &x);
  assert_int_equal(async_future_free(f), 0);
  run_default(loop);
  assert_int_equal(g_destroys, 1);
  assert_ptr_equal(g_destroyed_value, &x);

  /* Freed before its callbacks ran: destroyed after them. */
  struct cbrec r2 = {0};
  int y = 2;
  f = fut_new(loop);
  add_rec(f, &r2);
  assert_int_equal(async_future_resolve(f, &y, destroy_value, NULL), 0);
  assert_int_equal(async_future_free(f), 0);
  assert_int_equal(g_destroys, 1);
  run_default(loop);
  assert_int_equal(r2.calls, 1);
  assert_ptr_equal(r2.value_in_cb, &y);
  assert_int_equal(r2.destroys_in_cb, 1);
  assert_int_equal(g_destroys, 2);
  assert_ptr_equal(g_destroyed_value, &y);

  /* A NULL value with a destructor is still "a value": called once. */
  f = fut_new(loop);
  assert_int_equal(async_future_resolve(f, NULL, destroy_value, NULL), 0);
  assert_int_equal(async_future_free(f), 0);
  tu_finish(loop);
  assert_int_equal(g_destroys, 3);
  assert_null(g_destroyed_value);
}

/* ------------------------------------------------------------------ */
/* Combinators                                                         */

static void test_all_success(void **state) {
  (void)state;
  reset_globals();
  async_loop *loop = tu_loop_new();
  async_future *in[3];
  int vals[3] = {10, 20, 30};
  for (int i = 0; i < 3; i++) {
    in[i] = fut_new(loop);
  }
  async_future *all = all_of(loop, in, 3);
  assert_non_null(all);
  assert_ptr_equal(async_future_loop(all), loop);
  struct cbrec r = {0};
  add_rec(all, &r);

  assert_int_equal(async_future_resolve(in[2], &vals[2], NULL, NULL), 0);
  run_default(loop);
  assert_int_equal(async_future_get_state(all), ASYNC_FUTURE_PENDING);
  assert_int_equal(async_future_resolve(in[0], &vals[0], NULL, NULL), 0);
  run_default(loop);
  assert_int_equal(async_future_get_state(all), ASYNC_FUTURE_PENDING);
  assert_int_equal(r.calls, 0);
  assert_int_equal(async_future_resolve(in[1], &vals[1], NULL, NULL), 0);
  run_default(loop);
  assert_int_equal(async_future_get_state(all), ASYNC_FUTURE_DONE);
  void *v = &v;
  assert_int_equal(async_future_result(&v, all), 0);
  assert_null(v);
  assert_int_equal(r.calls, 1);
  assert_int_equal(r.status, 0);
  /* Inputs untouched and still the caller's. */
  for (int i = 0; i < 3; i++) {
    assert_int_equal(async_future_result(&v, in[i]), 0);
    assert_ptr_equal(v, &vals[i]);
    assert_int_equal(async_future_free(in[i]), 0);
  }
  assert_int_equal(async_future_free(all), 0);
  tu_finish(loop);
}

/* Inputs already complete when all() is called. */
static void test_all_inputs_already_done(void **state) {
  (void)state;
  reset_globals();
  async_loop *loop = tu_loop_new();
  async_future *in[2] = {fut_new(loop), fut_new(loop)};
  assert_int_equal(async_future_resolve(in[0], NULL, NULL, NULL), 0);
  assert_int_equal(async_future_resolve(in[1], NULL, NULL, NULL), 0);
  run_default(loop);
  async_future *all = all_of(loop, in, 2);
  assert_int_equal(async_loop_run_until(loop, all), 0);
  assert_int_equal(async_future_get_state(all), ASYNC_FUTURE_DONE);
  assert_int_equal(async_future_free(all), 0);
  assert_int_equal(async_future_free(in[0]), 0);
  assert_int_equal(async_future_free(in[1]), 0);
  tu_finish(loop);
}

/* First failure wins; the others are not cancelled; later outcomes do not
 * change the result. A cancelled input fails it with ECANCELED. */
static void test_all_first_failure_wins(void **state) {
  (void)state;
  reset_globals();
  async_loop *loop = tu_loop_new();
  async_future *in[3];
  struct hookrec h[3];
  new_hooked(loop, in, h, 3);
  async_future *all = all_of(loop, in, 3);
  struct cbrec r = {0};
  add_rec(all, &r);
  assert_int_equal(async_future_reject(in[1], -100), 0);
  run_default(loop);
  assert_int_equal(async_future_get_state(all), ASYNC_FUTURE_FAILED);
  assert_int_equal(async_future_result(NULL, all), -100);
  assert_int_equal(r.calls, 1);
  assert_int_equal(r.status, -100);
  /* Not cancelled. */
  assert_int_equal(async_future_get_state(in[0]), ASYNC_FUTURE_PENDING);
  assert_int_equal(async_future_get_state(in[2]), ASYNC_FUTURE_PENDING);
  assert_int_equal(h[0].calls, 0);
  assert_int_equal(h[2].calls, 0);
  assert_int_equal(async_future_reject(in[2], -200), 0);
  assert_int_equal(async_future_resolve(in[0], NULL, NULL, NULL), 0);
  run_default(loop);
  assert_int_equal(async_future_result(NULL, all), -100);
  assert_int_equal(r.calls, 1);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(h[i].calls, 1);
    assert_int_equal(h[i].cancelled, 0);
    assert_int_equal(async_future_free(in[i]), 0);
  }
  assert_int_equal(async_future_free(all), 0);

  /* A cancelled input: all FAILS with ECANCELED (it is not CANCELLED). */
  async_future *in2[2] = {fut_new(loop), fut_new(loop)};
  all = all_of(loop, in2, 2);
  assert_int_equal(async_future_cancel(in2[1]), 1);
  assert_int_equal(async_loop_run_until(loop, all), ASYNC_ECANCELED);
  assert_int_equal(async_future_get_state(all), ASYNC_FUTURE_FAILED);
  assert_int_equal(async_future_get_state(in2[0]), ASYNC_FUTURE_PENDING);
  assert_int_equal(async_future_free(all), 0);
  assert_int_equal(async_future_free(in2[0]), 0); /* pending: cancelled */
  assert_int_equal(async_future_free(in2[1]), 0);
  tu_finish(loop);
}

/* Cancelling all() cancels every pending input (hooks with cancelled = 1),
 * leaves complete ones alone, and its callbacks get ECANCELED. */
static void test_all_cancel_cancels_inputs(void **state) {
  (void)state;
  reset_globals();
  async_loop *loop = tu_loop_new();
  async_future *in[3];
  struct hookrec h[3];
  new_hooked(loop, in, h, 3);
  int x = 1;
  assert_int_equal(async_future_resolve(in[1], &x, NULL, NULL), 0);
  async_future *all = all_of(loop, in, 3);
  struct cbrec r = {0};
  add_rec(all, &r);
  assert_int_equal(async_future_cancel(all), 1);
  assert_int_equal(async_future_get_state(all), ASYNC_FUTURE_CANCELLED);
  assert_int_equal(async_future_get_state(in[0]), ASYNC_FUTURE_CANCELLED);
  assert_int_equal(async_future_get_state(in[1]), ASYNC_FUTURE_DONE);
  assert_int_equal(async_future_get_state(in[2]), ASYNC_FUTURE_CANCELLED);
  assert_int_equal(h[0].calls, 1);
  assert_int_equal(h[0].cancelled, 1);
  assert_int_equal(h[2].calls, 1);
  assert_int_equal(h[2].cancelled, 1);
  assert_int_equal(h[1].cancelled, 0);
  run_default(loop);
  assert_int_equal(r.calls, 1);
  assert_int_equal(r.status, ASYNC_ECANCELED);
  assert_int_equal(async_future_result(NULL, all), ASYNC_ECANCELED);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(h[i].calls, 1);
    assert_int_equal(async_future_free(in[i]), 0);
  }
  assert_int_equal(async_future_free(all), 0);
  tu_finish(loop);
}

/* Freeing all() while pending cancels it, and so its inputs. */
static void test_all_free_pending(void **state) {
  (void)state;
  reset_globals();
  async_loop *loop = tu_loop_new();
  async_future *in[2] = {fut_new(loop), fut_new(loop)};
  async_future *all = all_of(loop, in, 2);
  assert_int_equal(async_future_free(all), 0);
  assert_int_equal(async_future_get_state(in[0]), ASYNC_FUTURE_CANCELLED);
  assert_int_equal(async_future_get_state(in[1]), ASYNC_FUTURE_CANCELLED);
  run_default(loop);
  assert_int_equal(async_future_free(in[0]), 0);
  assert_int_equal(async_future_free(in[1]), 0);
  tu_finish(loop);

  /* The inputs freed first (cancelled): all fails with ECANCELED. */
  loop = tu_loop_new();
  in[0] = fut_new(loop);
  in[1] = fut_new(loop);
  all = all_of(loop, in, 2);
  struct cbrec r = {0};
  add_rec(all, &r);
  assert_int_equal(async_future_free(in[0]), 0);
  assert_int_equal(async_future_free(in[1]), 0);
  run_default(loop);
  assert_int_equal(r.calls, 1);
  assert_int_equal(r.status, ASYNC_ECANCELED);
  assert_int_equal(async_future_get_state(all), ASYNC_FUTURE_FAILED);
  assert_int_equal(async_future_free(all), 0);
  tu_finish(loop);
}

/* all() of nothing: DONE at once, callbacks still on a later iteration. */
static void test_all_count_zero(void **state) {
  (void)state;
  reset_globals();
  async_loop *loop = tu_loop_new();
  async_future *dummy[1] = {NULL};
  async_future *all = all_of(loop, dummy, 0);
  assert_non_null(all);
  assert_int_equal(async_future_get_state(all), ASYNC_FUTURE_DONE);
  void *v = &v;
  assert_int_equal(async_future_result(&v, all), 0);
  assert_null(v);
  struct cbrec r = {0};
  add_rec(all, &r);
  assert_int_equal(r.calls, 0);
  run_default(loop);
  assert_int_equal(r.calls, 1);
  assert_int_equal(r.status, 0);
  assert_int_equal(async_future_free(all), 0);
  tu_finish(loop);
}

/* any(): the first completed input (whatever its outcome) is the value;
 * the others are not cancelled. */
static void test_any_first_completed(void **state) {
  (void)state;
  reset_globals();
  async_loop *loop = tu_loop_new();
  async_future *in[3];
  struct hookrec h[3];
  new_hooked(loop, in, h, 3);
  async_future *any = any_of(loop, in, 3);
  struct cbrec r = {0};
  add_rec(any, &r);
  run_default(loop);
  assert_int_equal(async_future_get_state(any), ASYNC_FUTURE_PENDING);
  assert_int_equal(async_future_reject(in[1], -42), 0); /* a failure counts */
  run_default(loop);
  assert_int_equal(async_future_get_state(any), ASYNC_FUTURE_DONE);
  void *v = NULL;
  assert_int_equal(async_future_result(&v, any), 0);
  assert_ptr_equal(v, in[1]);
  assert_int_equal(r.calls, 1);
  assert_int_equal(r.status, 0);
  assert_ptr_equal(r.value_in_cb, in[1]);
  assert_int_equal(async_future_get_state(in[0]), ASYNC_FUTURE_PENDING);
  assert_int_equal(async_future_get_state(in[2]), ASYNC_FUTURE_PENDING);
  assert_int_equal(h[0].calls, 0);
  assert_int_equal(h[2].calls, 0);
  assert_int_equal(async_future_resolve(in[0], NULL, NULL, NULL), 0);
  run_default(loop);
  assert_int_equal(async_future_result(&v, any), 0);
  assert_ptr_equal(v, in[1]);
  assert_int_equal(r.calls, 1);
  assert_int_equal(async_future_free(any), 0);
  free_futures(in, 3);
  tu_finish(loop);
  assert_int_equal(h[2].calls, 1); /* freed while pending */
  assert_int_equal(h[2].cancelled, 1);
}

/* any(): count 0 -> EINVAL; cancelling it cancels every pending input. */
static void test_any_count_zero_and_cancel(void **state) {
  (void)state;
  reset_globals();
  async_loop *loop = tu_loop_new();
  async_future *in[2] = {fut_new(loop), fut_new(loop)};
  async_future *any = NULL;
  assert_int_equal(async_future_any(&any, loop, in, 0), ASYNC_EINVAL);
  assert_null(any);
  any = any_of(loop, in, 2);
  assert_int_equal(async_future_cancel(any), 1);
  assert_int_equal(async_future_get_state(any), ASYNC_FUTURE_CANCELLED);
  assert_int_equal(async_future_get_state(in[0]), ASYNC_FUTURE_CANCELLED);
  assert_int_equal(async_future_get_state(in[1]), ASYNC_FUTURE_CANCELLED);
  run_default(loop);
  assert_int_equal(async_future_result(NULL, any), ASYNC_ECANCELED);
  assert_int_equal(async_future_free(any), 0);
  assert_int_equal(async_future_free(in[0]), 0);
  assert_int_equal(async_future_free(in[1]), 0);
  tu_finish(loop);
}

/* timeout(): the inner future completes in time -> same outcome and value;
 * the timer does not keep the loop running afterwards. */
struct resolver {
  async_future *f;
  void *value;
  int error;   /* reject with this if < 0 */
  int cancel;  /* cancel instead */
  int rc;
  int calls;
};

static void resolver_timer_cb(async_timer *t, void *ud) {
  struct resolver *r = ud;
  r->calls++;
  if (r->cancel) {
    r->rc = async_future_cancel(r->f);
  } else if (r->error < 0) {
    r->rc = async_future_reject(r->f, r->error);
  } else {
    r->rc = async_future_resolve(r->f, r->value, NULL, NULL);
  }
  async_handle_close(async_timer_handle(t), NULL);
}

static void start_resolver(async_loop *loop, struct resolver *r, uint64_t ms) {
  tu_timer_start(loop, r, ms, 0, resolver_timer_cb);
}

static void test_timeout_inner_in_time(void **state) {
  (void)state;
  reset_globals();
  async_loop *loop = tu_loop_new();
  int x = 77;

  /* DONE with the inner value. */
  async_future *inner = fut_new(loop);
  struct hookrec h = {0};
  set_hook(inner, &h);
  async_future *tf = NULL;
  assert_int_equal(async_future_timeout(&tf, inner, 10000), 0);
  assert_ptr_equal(async_future_loop(tf), loop);
  struct resolver rs = {.f = inner, .value = &x};
  start_resolver(loop, &rs, 10);
  uint64_t t0 = tu_now_ns();
  assert_int_equal(async_loop_run_until(loop, tf), 0);
  void *v = NULL;
  assert_int_equal(async_future_result(&v, tf), 0);
  assert_ptr_equal(v, &x);
  assert_int_equal(async_future_get_state(inner), ASYNC_FUTURE_DONE);
  assert_int_equal(h.calls, 1);
  assert_int_equal(h.cancelled, 0);
  /* The 10 s timer is gone: run(DEFAULT) returns at once. */
  run_default(loop);
  assert_true(tu_elapsed_ms(t0) < 5000.0);
  assert_int_equal(async_future_free(tf), 0);
  assert_int_equal(async_future_free(inner), 0);
  tu_finish(loop);

  /* FAILED with the inner error. */
  loop = tu_loop_new();
  inner = fut_new(loop);
  assert_int_equal(async_future_timeout(&tf, inner, 10000), 0);
  struct resolver rf = {.f = inner, .error = -555};
  start_resolver(loop, &rf, 5);
  assert_int_equal(async_loop_run_until(loop, tf), -555);
  assert_int_equal(async_future_get_state(tf), ASYNC_FUTURE_FAILED);
  assert_int_equal(async_future_result(NULL, tf), -555);
  assert_int_equal(async_future_free(inner), 0);
  assert_int_equal(async_future_free(tf), 0);
  tu_finish(loop);

  /* CANCELLED when the inner future is cancelled. */
  loop = tu_loop_new();
  inner = fut_new(loop);
  assert_int_equal(async_future_timeout(&tf, inner, 10000), 0);
  struct resolver rc = {.f = inner, .cancel = 1};
  start_resolver(loop, &rc, 5);
  assert_int_equal(async_loop_run_until(loop, tf), ASYNC_ECANCELED);
  assert_int_equal(async_future_get_state(tf), ASYNC_FUTURE_CANCELLED);
  assert_int_equal(async_future_free(tf), 0);
  assert_int_equal(async_future_free(inner), 0);
  t0 = tu_now_ns();
  tu_finish(loop);
  assert_true(tu_elapsed_ms(t0) < 5000.0);
}

/* timeout(): the timer wins -> inner cancelled (hook cancelled = 1), the
 * result FAILS with ETIMEDOUT, never early. */
static void test_timeout_timer_wins(void **state) {
  (void)state;
  reset_globals();
  async_loop *loop = tu_loop_new();
  async_future *inner = fut_new(loop);
  struct hookrec h = {0};
  set_hook(inner, &h);
  struct cbrec ri = {0}, rt = {0};
  add_rec(inner, &ri);
  uint64_t t0 = tu_now_ns();
  async_future *tf = NULL;
  assert_int_equal(async_future_timeout(&tf, inner, 30), 0);
  add_rec(tf, &rt);
  assert_int_equal(async_loop_run_until(loop, tf), ASYNC_ETIMEDOUT);
  assert_true(tu_elapsed_ms(t0) >= 30.0);
  assert_true(tu_elapsed_ms(t0) < 5000.0);
  assert_int_equal(async_future_get_state(tf), ASYNC_FUTURE_FAILED);
  assert_int_equal(async_future_result(NULL, tf), ASYNC_ETIMEDOUT);
  assert_int_equal(async_future_get_state(inner), ASYNC_FUTURE_CANCELLED);
  assert_int_equal(h.calls, 1);
  assert_int_equal(h.cancelled, 1);
  run_default(loop);
  assert_int_equal(ri.calls, 1);
  assert_int_equal(ri.status, ASYNC_ECANCELED);
  assert_int_equal(rt.calls, 1);
  assert_int_equal(rt.status, ASYNC_ETIMEDOUT);
  /* Completing the inner future now is refused (it is cancelled). */
  assert_int_equal(async_future_resolve(inner, NULL, NULL, NULL), ASYNC_ESTATE);
  assert_int_equal(async_future_free(inner), 0);
  assert_int_equal(async_future_free(tf), 0);
  tu_finish(loop);
}

/* Cancelling (or freeing) the timeout future cancels the inner one. */
static void test_timeout_cancel_cancels_inner(void **state) {
  (void)state;
  reset_globals();
  async_loop *loop = tu_loop_new();
  async_future *inner = fut_new(loop);
  struct hookrec h = {0};
  set_hook(inner, &h);
  async_future *tf = NULL;
  assert_int_equal(async_future_timeout(&tf, inner, 60000), 0);
  assert_int_equal(async_future_cancel(tf), 1);
  assert_int_equal(async_future_get_state(tf), ASYNC_FUTURE_CANCELLED);
  assert_int_equal(async_future_get_state(inner), ASYNC_FUTURE_CANCELLED);
  assert_int_equal(h.calls, 1);
  assert_int_equal(h.cancelled, 1);
  uint64_t t0 = tu_now_ns();
  run_default(loop); /* the 60 s timer must not keep it running */
  assert_true(tu_elapsed_ms(t0) < 5000.0);
  assert_int_equal(async_future_free(tf), 0);
  assert_int_equal(async_future_free(inner), 0);
  tu_finish(loop);

  loop = tu_loop_new();
  inner = fut_new(loop);
  assert_int_equal(async_future_timeout(&tf, inner, 60000), 0);
  assert_int_equal(async_future_free(tf), 0);
  assert_int_equal(async_future_get_state(inner), ASYNC_FUTURE_CANCELLED);
  t0 = tu_now_ns();
  run_default(loop);
  assert_true(tu_elapsed_ms(t0) < 5000.0);
  assert_int_equal(async_future_free(inner), 0);
  tu_finish(loop);
}

/* Completion order decides, not input order: two inputs completed before
 * the loop runs -> any() takes the first completed, all() the first
 * failure. */
static void test_combinators_completion_order(void **state) {
  (void)state;
  reset_globals();
  async_loop *loop = tu_loop_new();
  async_future *in[3] = {fut_new(loop), fut_new(loop), fut_new(loop)};
  async_future *any = NULL, *all = NULL;
  any = any_of(loop, in, 3);
  all = all_of(loop, in, 3);
  assert_int_equal(async_future_reject(in[2], -2), 0);
  assert_int_equal(async_future_reject(in[0], -1), 0);
  run_default(loop);
  void *v = NULL;
  assert_int_equal(async_future_result(&v, any), 0);
  assert_ptr_equal(v, in[2]);
  assert_int_equal(async_future_result(NULL, all), -2);
  assert_int_equal(async_future_get_state(in[1]), ASYNC_FUTURE_PENDING);
  assert_int_equal(async_future_free(any), 0);
  assert_int_equal(async_future_free(all), 0);
  free_futures(in, 3);
  tu_finish(loop);
}

/* The same future given twice to all(): DONE once it is. */
static void test_all_same_future_twice(void **state) {
  (void)state;
  reset_globals();
  async_loop *loop = tu_loop_new();
  async_future *f = fut_new(loop);
  async_future *in[2] = {f, f};
  async_future *all = all_of(loop, in, 2);
  run_default(loop);
  assert_int_equal(async_future_get_state(all), ASYNC_FUTURE_PENDING);
  assert_int_equal(async_future_resolve(f, NULL, NULL, NULL), 0);
  assert_int_equal(async_loop_run_until(loop, all), 0);
  assert_int_equal(async_future_free(all), 0);
  assert_int_equal(async_future_free(f), 0);
  tu_finish(loop);
}

/* all() failed and is freed inside its own callback while inputs are still
 * pending; they complete later (no use after free: valgrind/ASan). */
static void test_all_freed_in_callback_inputs_pending(void **state) {
  (void)state;
  reset_globals();
  async_loop *loop = tu_loop_new();
  async_future *in[3] = {fut_new(loop), fut_new(loop), fut_new(loop)};
  async_future *all = all_of(loop, in, 3);
  struct cbrec r = {0};
  r.free_in_cb = 1;
  add_rec(all, &r);
  assert_int_equal(async_future_reject(in[0], -9), 0);
  run_default(loop);
  assert_int_equal(r.calls, 1);
  assert_int_equal(r.status, -9);
  assert_int_equal(r.free_rc, 0);
  assert_int_equal(async_future_get_state(in[1]), ASYNC_FUTURE_PENDING);
  assert_int_equal(async_future_resolve(in[1], NULL, NULL, NULL), 0);
  run_default(loop);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(async_future_free(in[i]), 0); /* in[2]: cancelled */
  }
  tu_finish(loop);
}

/* timeout() of a future that is already complete: its outcome, even with
 * a 0 ms timeout (no time passed before it completed). */
static void test_timeout_of_complete_future(void **state) {
  (void)state;
  reset_globals();
  async_loop *loop = tu_loop_new();
  int x = 4;
  async_future *inner = fut_new(loop);
  assert_int_equal(async_future_resolve(inner, &x, NULL, NULL), 0);
  async_future *tf = NULL;
  assert_int_equal(async_future_timeout(&tf, inner, 0), 0);
  assert_int_equal(async_loop_run_until(loop, tf), 0);
  void *v = NULL;
  assert_int_equal(async_future_result(&v, tf), 0);
  assert_ptr_equal(v, &x);
  assert_int_equal(async_future_free(tf), 0);

  async_future *failed = fut_new(loop);
  assert_int_equal(async_future_reject(failed, -31), 0);
  assert_int_equal(async_future_timeout(&tf, failed, 0), 0);
  assert_int_equal(async_loop_run_until(loop, tf), -31);
  assert_int_equal(async_future_get_state(tf), ASYNC_FUTURE_FAILED);
  assert_int_equal(async_future_free(tf), 0);
  assert_int_equal(async_future_free(failed), 0);
  assert_int_equal(async_future_free(inner), 0);
  tu_finish(loop);
}

/* any() of inputs one of which is already complete. */
static void test_any_input_already_done(void **state) {
  (void)state;
  reset_globals();
  async_loop *loop = tu_loop_new();
  async_future *in[2] = {fut_new(loop), fut_new(loop)};
  assert_int_equal(async_future_cancel(in[1]), 1);
  async_future *any = any_of(loop, in, 2);
  assert_int_equal(async_loop_run_until(loop, any), 0);
  void *v = NULL;
  assert_int_equal(async_future_result(&v, any), 0);
  assert_ptr_equal(v, in[1]);
  assert_int_equal(async_future_get_state(in[0]), ASYNC_FUTURE_PENDING);
  assert_int_equal(async_future_free(any), 0);
  assert_int_equal(async_future_free(in[0]), 0);
  assert_int_equal(async_future_free(in[1]), 0);
  tu_finish(loop);
}

/* ------------------------------------------------------------------ */
/* run_until                                                           */

static void test_run_until_status(void **state) {
  (void)state;
  reset_globals();
  async_loop *loop = tu_loop_new();
  int x = 1;
  async_future *f = fut_new(loop);
  struct resolver r1 = {.f = f, .value = &x};
  start_resolver(loop, &r1, 5);
  assert_int_equal(async_loop_run_until(loop, f), 0);
  assert_int_equal(r1.calls, 1);
  assert_int_equal(async_future_free(f), 0);

  f = fut_new(loop);
  struct resolver r2 = {.f = f, .error = ASYNC_EIO};
  start_resolver(loop, &r2, 5);
  assert_int_equal(async_loop_run_until(loop, f), ASYNC_EIO);
  /* Already complete: returns its status at once. */
  assert_int_equal(async_loop_run_until(loop, f), ASYNC_EIO);
  assert_int_equal(async_future_free(f), 0);

  f = fut_new(loop);
  assert_int_equal(async_future_cancel(f), 1);
  assert_int_equal(async_loop_run_until(loop, f), ASYNC_ECANCELED);
  assert_int_equal(async_future_free(f), 0);
  tu_finish(loop);
}

/* Out of work before completion -> ESTATE (no hang). */
static void stop_timer_cb(async_timer *t, void *ud) {
  async_loop_stop(ud);
  async_handle_close(async_timer_handle(t), NULL);
}

static void test_run_until_out_of_work(void **state) {
  (void)state;
  reset_globals();
  async_loop *loop = tu_loop_new();
  async_future *f = fut_new(loop);
  uint64_t t0 = tu_now_ns();
  assert_int_equal(async_loop_run_until(loop, f), ASYNC_ESTATE);
  assert_true(tu_elapsed_ms(t0) < 5000.0);
  assert_int_equal(async_future_get_state(f), ASYNC_FUTURE_PENDING);

  /* A timer that does not complete it: still ESTATE, once it has fired. */
  async_timer *t = tu_timer_start(loop, NULL, 10, 0, tu_noop_timer_cb);
  assert_int_equal(async_loop_run_until(loop, f), ASYNC_ESTATE);
  assert_true(tu_elapsed_ms(t0) >= 10.0);
  assert_true(tu_elapsed_ms(t0) < 5000.0);
  assert_int_equal(async_future_get_state(f), ASYNC_FUTURE_PENDING);
  tu_close(async_timer_handle(t));

  /* Later it completes and run_until works again. */
  struct resolver r = {.f = f};
  start_resolver(loop, &r, 1);
  assert_int_equal(async_loop_run_until(loop, f), 0);
  assert_int_equal(r.calls, 1);
  assert_int_equal(async_future_free(f), 0);
  tu_finish(loop);
}

/* Stopped while other work remains: ESTATE too. */
static void test_run_until_stopped(void **state) {
  (void)state;
  reset_globals();
  async_loop *loop = tu_loop_new();
  async_future *f = fut_new(loop);
  async_timer *keep = tu_timer_start(loop, NULL, 60000, 0, tu_noop_timer_cb);
  tu_timer_start(loop, loop, 10, 0, stop_timer_cb); /* the stopper */
  uint64_t t0 = tu_now_ns();
  assert_int_equal(async_loop_run_until(loop, f), ASYNC_ESTATE);
  assert_true(tu_elapsed_ms(t0) < 5000.0);
  assert_int_equal(async_future_get_state(f), ASYNC_FUTURE_PENDING);
  tu_close(async_timer_handle(keep));
  assert_int_equal(async_future_free(f), 0);
  tu_finish(loop);
}

/* Nested run_until from a callback -> EBUSY; a future of another loop ->
 * EINVAL. */
struct nested {
  async_future *f;
  int rc;
};

static void nested_cb(async_loop *l, void *ud) {
  struct nested *n = ud;
  n->rc = async_loop_run_until(l, n->f);
  async_future_resolve(n->f, NULL, NULL, NULL);
}

static void test_run_until_nested_and_foreign(void **state) {
  (void)state;
  reset_globals();
  async_loop *loop = tu_loop_new();
  async_loop *other = tu_loop_new();
  struct nested n = {.f = fut_new(loop), .rc = 99};
  assert_int_equal(async_loop_call_soon(loop, nested_cb, &n), 0);
  assert_int_equal(async_loop_run_until(loop, n.f), 0);
  assert_int_equal(n.rc, ASYNC_EBUSY);
  async_future *g = fut_new(other);
  assert_int_equal(async_loop_run_until(loop, g), ASYNC_EINVAL);
  assert_int_equal(async_future_free(g), 0);
  assert_int_equal(async_future_free(n.f), 0);
  tu_finish(loop);
  tu_finish(other);
}

/* Futures chained with timers: f1 resolves after 10 ms, its callback arms
 * a timer that resolves f2 10 ms later, f2's callback resolves f3 via a
 * 0 ms timer. run_until(f3) drives all of it. */
struct chain {
  async_loop *loop;
  async_future *f[3];
  struct resolver r[3];
  int step_calls[3];
  uint64_t t_resolved[3];
  int errors;
};

static void chain_timer_cb(async_timer *t, void *ud);

static void chain_arm(struct chain *c, int i, uint64_t ms) {
  async_timer *t = NULL;
  c->r[i].f = c->f[i];
  c->r[i].value = &c->step_calls[i];
  if (async_timer_new(&t, c->loop, &c->r[i]) != 0 || async_timer_start(t, ms, 0, chain_timer_cb) != 0) {
    c->errors++;
  }
}

static struct chain *g_chain;

static void chain_timer_cb(async_timer *t, void *ud) {
  struct resolver *r = ud;
  resolver_timer_cb(t, ud);
  for (int i = 0; i < 3; i++) {
    if (r == &g_chain->r[i]) {
      g_chain->t_resolved[i] = tu_now_ns();
    }
  }
}

static void chain_cb(async_future *f, int status, void *ud) {
  struct chain *c = ud;
  if (status != 0) {
    c->errors++;
    return;
  }
  for (int i = 0; i < 3; i++) {
    if (f == c->f[i]) {
      c->step_calls[i]++;
      if (i < 2) {
        chain_arm(c, i + 1, i == 0 ? 10 : 0);
        if (async_future_add_callback(c->f[i + 1], chain_cb, c) != 0) {
          c->errors++;
        }
      }
    }
  }
}

static void test_run_until_chain_with_timers(void **state) {
  (void)state;
  reset_globals();
  struct chain c;
  memset(&c, 0, sizeof c);
  g_chain = &c;
  c.loop = tu_loop_new();
  for (int i = 0; i < 3; i++) {
    c.f[i] = fut_new(c.loop);
  }
  uint64_t t0 = tu_now_ns();
  chain_arm(&c, 0, 10);
  assert_int_equal(async_future_add_callback(c.f[0], chain_cb, &c), 0);
  assert_int_equal(async_loop_run_until(c.loop, c.f[2]), 0);
  assert_int_equal(c.errors, 0);
  assert_true(tu_elapsed_ms(t0) >= 20.0);
  assert_true(tu_elapsed_ms(t0) < 5000.0);
  assert_true(c.t_resolved[1] >= c.t_resolved[0] + 10000000u);
  assert_true(c.t_resolved[2] >= c.t_resolved[1]);
  void *v = NULL;
  assert_int_equal(async_future_result(&v, c.f[2]), 0);
  assert_ptr_equal(v, &c.step_calls[2]);
  assert_int_equal(c.step_calls[0], 1);
  assert_int_equal(c.step_calls[1], 1);
  run_default(c.loop);
  assert_int_equal(c.step_calls[2], 1);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(async_future_free(c.f[i]), 0);
  }
  tu_finish(c.loop);
  g_chain = NULL;
}

/* ------------------------------------------------------------------ */
/* Userdata contract                                                   */

/* Every callback userdata gets exactly one notification, through every
 * path: resolve, reject, cancel, free while pending, late add, freed in a
 * callback, combinators (including their own cancellation), timeout. */
#define N_UD 32

static int g_notified[N_UD];

static void ud_cb(async_future *f, int status, void *ud) {
  (void)f;
  (void)status;
  int i = (int)((int *)ud - g_notified);
  if (i >= 0 && i < N_UD) {
    g_notified[i]++;
  }
}

static void ud_free_cb(async_future *f, int status, void *ud) {
  ud_cb(f, status, ud);
  async_future_free(f);
}

static void test_userdata_exactly_once(void **state) {
  (void)state;
  reset_globals();
  memset(g_notified, 0, sizeof g_notified);
  async_loop *loop = tu_loop_new();
  int next = 0;
#define ADD(fut) assert_int_equal(async_future_add_callback((fut), ud_cb, &g_notified[next++]), 0)

  async_future *resolved = fut_new(loop);
  async_future *rejected = fut_new(loop);
  async_future *cancelled = fut_new(loop);
  async_future *freed_pending = fut_new(loop);
  async_future *self_freed = fut_new(loop);
  async_future *never = fut_new(loop); /* freed at the end, still pending */
  ADD(resolved);
  ADD(resolved);
  ADD(rejected);
  ADD(cancelled);
  ADD(freed_pending);
  ADD(freed_pending);
  assert_int_equal(async_future_add_callback(self_freed, ud_free_cb, &g_notified[next++]), 0);
  ADD(self_freed);
  ADD(never);

  async_future *a_in[2] = {fut_new(loop), fut_new(loop)};
  async_future *all = NULL, *any = NULL, *tf = NULL, *tf_inner = fut_new(loop);
  all = all_of(loop, a_in, 2);
  any = any_of(loop, a_in, 2);
  assert_int_equal(async_future_timeout(&tf, tf_inner, 5), 0);
  ADD(a_in[0]);
  ADD(a_in[1]);
  ADD(all);
  ADD(any);
  ADD(tf);
  ADD(tf_inner);

  assert_int_equal(async_future_resolve(resolved, NULL, NULL, NULL), 0);
  assert_int_equal(async_future_reject(rejected, ASYNC_EIO), 0);
  assert_int_equal(async_future_cancel(cancelled), 1);
  assert_int_equal(async_future_free(freed_pending), 0);
  assert_int_equal(async_future_resolve(self_freed, NULL, NULL, NULL), 0);
  assert_int_equal(async_future_resolve(a_in[0], NULL, NULL, NULL), 0);
  run_default(loop); /* the timeout fires too */
  ADD(resolved); /* late, on a done future */
  assert_int_equal(async_future_cancel(all), 1); /* cancels a_in[1] */
  ADD(all);      /* late, on a cancelled future */
  run_default(loop);

  assert_int_equal(async_future_free(never), 0);
  async_future *to_free[] = {resolved, rejected, cancelled, a_in[0], a_in[1], all, any, tf, tf_inner};
  for (size_t i = 0; i < sizeof to_free / sizeof to_free[0]; i++) {
    assert_int_equal(async_future_free(to_free[i]), 0);
  }
  tu_finish(loop);
#undef ADD
  assert_true(next <= N_UD);
  for (int i = 0; i < next; i++) {
    if (g_notified[i] != 1) {
      fail_msg("userdata %d notified %d times", i, g_notified[i]);
    }
  }
  for (int i = next; i < N_UD; i++) {
    assert_int_equal(g_notified[i], 0);
  }
}

/* Frees its future inside its done callback and records whether the
 * value's destroy function ran inside that free. */
static void free_and_count_cb(async_future *f, int status, void *ud) {
  (void)status;
  assert_int_equal(async_future_free(f), 0);
  *(int *)ud = g_destroys;
}

/* A value's destroy function never runs inside async_future_free(), also
 * when the free releases the future at once (no callback pending) or is
 * made inside the future's own callback: it runs from the loop on a later
 * iteration with the context given to async_future_resolve(), and the loop
 * cannot be freed (ASYNC_EBUSY) until it ran. */
static void test_destroy_deferred_with_context(void **state) {
  (void)state;
  reset_globals();
  async_loop *loop = tu_loop_new();
  int x = 5, context = 0;
  async_future *f = fut_new(loop);
  assert_int_equal(async_future_resolve(f, &x, destroy_value, &context), 0);
  assert_int_equal(async_future_free(f), 0);
  assert_int_equal(g_destroys, 0); /* not inside the free */
  assert_int_equal(async_loop_alive(loop), 1);
  assert_int_equal(async_loop_free(loop), ASYNC_EBUSY);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_NOWAIT), 0);
  assert_int_equal(g_destroys, 1);
  assert_ptr_equal(g_destroyed_value, &x);
  assert_ptr_equal(g_destroyed_context, &context);

  /* Freed inside its own done callback. */
  int y = 6, destroys_after_free = -1;
  f = fut_new(loop);
  assert_int_equal(async_future_add_callback(f, free_and_count_cb, &destroys_after_free), 0);
  assert_int_equal(async_future_resolve(f, &y, destroy_value, NULL), 0);
  run_default(loop);
  assert_int_equal(destroys_after_free, 1); /* not inside that free */
  assert_int_equal(g_destroys, 2);
  assert_ptr_equal(g_destroyed_value, &y);
  assert_null(g_destroyed_context);
  assert_int_equal(async_loop_free(loop), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pending_to_done),
      cmocka_unit_test(test_pending_to_failed),
      cmocka_unit_test(test_pending_to_cancelled),
      cmocka_unit_test(test_complete_twice),
      cmocka_unit_test(test_reject_nonnegative),
      cmocka_unit_test(test_callbacks_order_and_call_soon),
      cmocka_unit_test(test_callback_status_failed_cancelled),
      cmocka_unit_test(test_callback_on_done_future),
      cmocka_unit_test(test_late_callback_queues_behind_call_soon),
      cmocka_unit_test(test_add_callback_inside_callback),
      cmocka_unit_test(test_add_callback_null),
      cmocka_unit_test(test_cancel_runs_hook_and_callbacks),
      cmocka_unit_test(test_resolve_reject_run_hook_uncancelled),
      cmocka_unit_test(test_set_cancel_rules),
      cmocka_unit_test(test_cancel_done_future),
      cmocka_unit_test(test_free_inside_callback),
      cmocka_unit_test(test_free_inside_callback_cancelled),
      cmocka_unit_test(test_free_pending_cancels),
      cmocka_unit_test(test_free_pending_plain),
      cmocka_unit_test(test_value_destructor_once),
      cmocka_unit_test(test_destroy_deferred_with_context),
      cmocka_unit_test(test_all_success),
      cmocka_unit_test(test_all_inputs_already_done),
      cmocka_unit_test(test_all_first_failure_wins),
      cmocka_unit_test(test_all_cancel_cancels_inputs),
      cmocka_unit_test(test_all_free_pending),
      cmocka_unit_test(test_all_count_zero),
      cmocka_unit_test(test_any_first_completed),
      cmocka_unit_test(test_any_count_zero_and_cancel),
      cmocka_unit_test(test_timeout_inner_in_time),
      cmocka_unit_test(test_timeout_timer_wins),
      cmocka_unit_test(test_timeout_cancel_cancels_inner),
      cmocka_unit_test(test_combinators_completion_order),
      cmocka_unit_test(test_all_same_future_twice),
      cmocka_unit_test(test_all_freed_in_callback_inputs_pending),
      cmocka_unit_test(test_timeout_of_complete_future),
      cmocka_unit_test(test_any_input_already_done),
      cmocka_unit_test(test_run_until_status),
      cmocka_unit_test(test_run_until_out_of_work),
      cmocka_unit_test(test_run_until_stopped),
      cmocka_unit_test(test_run_until_nested_and_foreign),
      cmocka_unit_test(test_run_until_chain_with_timers),
      cmocka_unit_test(test_userdata_exactly_once),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
