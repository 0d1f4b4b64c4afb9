/*
 * async_handle: close (asynchronous, exactly once, with the handle's
 * userdata), closing-state errors, close from a handle's own callback,
 * active/closing/ref flags, userdata, loop, and the handle casts
 * (async/handle.h; DESIGN.md §2.5, §5; libuv's active / close_order /
 * has_ref / ref tests translated).
 */
#include "test_util.h"

#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Records close callbacks: count, handle, userdata, iteration, order. */
struct closelog {
  int calls;
  async_handle *handle;
  void *ud;
  uint64_t iter;
  int closing_in_cb;
  void *ud_in_cb;
  async_loop *loop_in_cb;
  int order; /* value of *seq when the close callback ran */
  int *seq;
};

static struct closelog *g_cl; /* the closelog close_cb records into */

static void close_cb(async_handle *h, void *ud) {
  struct closelog *c = g_cl;
  c->calls++;
  c->handle = h;
  c->ud = ud;
  c->iter = tu_iter_cb(async_handle_loop(h));
  c->closing_in_cb = async_handle_is_closing(h);
  c->ud_in_cb = async_handle_userdata(h);
  c->loop_in_cb = async_handle_loop(h);
  if (c->seq) {
    c->order = ++*c->seq;
  }
}

/* ------------------------------------------------------------------ */

static void test_close_callback_later_once(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int ctx = 42;
  struct closelog cl;
  memset(&cl, 0, sizeof cl);
  g_cl = &cl;
  async_timer *t = tu_timer_new(loop, &ctx);
  async_handle *h = async_timer_handle(t);
  assert_non_null(h);

  uint64_t it0 = tu_iterations(loop);
  assert_int_equal(async_handle_close(h, close_cb), 0);
  /* Not inside async_handle_close. */
  assert_int_equal(cl.calls, 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(cl.calls, 1);
  assert_ptr_equal(cl.handle, h);
  assert_ptr_equal(cl.ud, &ctx);
  assert_int_equal(cl.closing_in_cb, 1);
  assert_ptr_equal(cl.ud_in_cb, &ctx);
  assert_ptr_equal(cl.loop_in_cb, loop);
  assert_true(cl.iter > it0); /* during a loop iteration */
  /* Exactly once. */
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_NOWAIT), 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(cl.calls, 1);
  assert_int_equal(async_loop_free(loop), 0);
  g_cl = NULL;
}

struct selfclose_soon {
  async_handle *h;
  int rc;
  int close_calls_after;
  uint64_t iter;
};

static void close_from_soon(async_loop *loop, void *ud) {
  struct selfclose_soon *s = ud;
  s->iter = tu_iter_cb(loop);
  s->rc = async_handle_close(s->h, close_cb);
  s->close_calls_after = g_cl->calls;
}

/* Closed from inside a callback: the close callback still runs later. */
static void test_close_from_callback_runs_later(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  struct closelog cl;
  memset(&cl, 0, sizeof cl);
  g_cl = &cl;
  async_timer *t = tu_timer_new(loop, NULL);
  struct selfclose_soon s = {.h = async_timer_handle(t), .rc = 99};
  assert_int_equal(async_loop_call_soon(loop, close_from_soon, &s), 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(s.rc, 0);
  assert_int_equal(s.close_calls_after, 0);
  assert_int_equal(cl.calls, 1);
  assert_ptr_equal(cl.ud, NULL);
  assert_true(cl.iter > s.iter); /* a later iteration */
  assert_int_equal(async_loop_free(loop), 0);
  g_cl = NULL;
}

/* close_cb may be NULL; the memory is still released (valgrind/ASan). */
static void test_close_null_callback(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_timer *t = tu_timer_new(loop, NULL);
  async_hook *h = tu_hook_new(loop, ASYNC_HOOK_CHECK, NULL);
  assert_int_equal(async_timer_start(t, 100000, 0, tu_noop_timer_cb), 0);
  assert_int_equal(async_hook_start(h, tu_noop_hook_cb), 0);
  assert_int_equal(async_handle_close(async_timer_handle(t), NULL), 0);
  assert_int_equal(async_handle_close(async_hook_handle(h), NULL), 0);
  assert_int_equal(async_loop_free(loop), ASYNC_EBUSY);
  uint64_t t0 = tu_now_ns();
  tu_finish(loop);
  assert_true(tu_elapsed_ms(t0) < 1000.0);
}

static void test_double_close(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  struct closelog cl;
  memset(&cl, 0, sizeof cl);
  g_cl = &cl;
  async_timer *t = tu_timer_new(loop, NULL);
  async_handle *h = async_timer_handle(t);
  assert_int_equal(async_handle_close(h, close_cb), 0);
  assert_int_equal(async_handle_close(h, close_cb), ASYNC_ECLOSED);
  assert_int_equal(async_handle_close(h, NULL), ASYNC_ECLOSED);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(cl.calls, 1);
  assert_int_equal(async_handle_close(NULL, NULL), ASYNC_EINVAL);
  assert_int_equal(async_loop_free(loop), 0);
  g_cl = NULL;
}

/* Every operation on a closing handle returns ASYNC_ECLOSED. */
static void test_closing_handle_calls(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);

  async_timer *t = tu_timer_new(loop, NULL);
  async_hook *k = tu_hook_new(loop, ASYNC_HOOK_PREPARE, NULL);
  async_watcher *w = tu_watcher_new(loop, sv[0], NULL);
  assert_int_equal(async_timer_start(t, 1000, 50, tu_noop_timer_cb), 0);
  assert_int_equal(async_hook_start(k, tu_noop_hook_cb), 0);
  assert_int_equal(async_watcher_start(w, ASYNC_WRITABLE, tu_noop_watcher_cb), 0);

  tu_close(async_timer_handle(t));
  tu_close(async_hook_handle(k));
  tu_close(async_watcher_handle(w));

  async_handle *hs[3] = {async_timer_handle(t), async_hook_handle(k), async_watcher_handle(w)};
  for (int i = 0; i < 3; i++) {
    assert_int_equal(async_handle_is_closing(hs[i]), 1);
    assert_int_equal(async_handle_is_active(hs[i]), 0);
    assert_int_equal(async_handle_ref(hs[i]), ASYNC_ECLOSED);
    assert_int_equal(async_handle_unref(hs[i]), ASYNC_ECLOSED);
    assert_int_equal(async_handle_close(hs[i], NULL), ASYNC_ECLOSED);
  }
  assert_int_equal(async_timer_start(t, 1, 0, tu_noop_timer_cb), ASYNC_ECLOSED);
  assert_int_equal(async_timer_stop(t), ASYNC_ECLOSED);
  assert_int_equal(async_timer_again(t), ASYNC_ECLOSED);
  assert_int_equal(async_timer_set_repeat(t, 5), ASYNC_ECLOSED);
  assert_int_equal(async_hook_start(k, tu_noop_hook_cb), ASYNC_ECLOSED);
  assert_int_equal(async_hook_stop(k), ASYNC_ECLOSED);
  assert_int_equal(async_watcher_start(w, ASYNC_READABLE, tu_noop_watcher_cb), ASYNC_ECLOSED);
  assert_int_equal(async_watcher_set_events(w, ASYNC_READABLE), ASYNC_ECLOSED);
  assert_int_equal(async_watcher_stop(w), ASYNC_ECLOSED);
  /* The closing handles are inactive: nothing was re-armed. */
  for (int i = 0; i < 3; i++) {
    assert_int_equal(async_handle_is_active(hs[i]), 0);
  }

  tu_finish(loop);
  tu_close_pair(sv);
}

/* ------------------------------------------------------------------ */
/* Close inside the handle's own callback                               */

struct selfclose {
  int calls;
  int rc;
  int closes;
};

static void sc_close_cb(async_handle *h, void *ud) {
  (void)h;
  ((struct selfclose *)ud)->closes++;
}

static void sc_timer_cb(async_timer *t, void *ud) {
  struct selfclose *s = ud;
  s->calls++;
  s->rc = async_handle_close(async_timer_handle(t), sc_close_cb);
}

static void sc_hook_cb(async_hook *h, void *ud) {
  struct selfclose *s = ud;
  s->calls++;
  s->rc = async_handle_close(async_hook_handle(h), sc_close_cb);
}

static void sc_watcher_cb(async_watcher *w, uint32_t ev, void *ud) {
  (void)ev;
  struct selfclose *s = ud;
  s->calls++;
  s->rc = async_handle_close(async_watcher_handle(w), sc_close_cb);
}

static void test_close_in_own_callback(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  assert_int_equal(write(sv[1], "x", 1), 1);

  /* A repeating timer, three hooks and a readable (level-triggered) watcher
   * each close themselves in their first callback: exactly one call each. */
  struct selfclose st = {.rc = 99}, sp = {.rc = 99}, sk = {.rc = 99}, si = {.rc = 99},
                   sw = {.rc = 99};
  async_hook *p = NULL, *c = NULL, *i = NULL;
  async_timer *t = tu_timer_new(loop, &st);
  p = tu_hook_new(loop, ASYNC_HOOK_PREPARE, &sp);
  c = tu_hook_new(loop, ASYNC_HOOK_CHECK, &sk);
  i = tu_hook_new(loop, ASYNC_HOOK_IDLE, &si);
  async_watcher *w = tu_watcher_new(loop, sv[0], &sw);
  assert_int_equal(async_timer_start(t, 1, 1, sc_timer_cb), 0);
  assert_int_equal(async_hook_start(p, sc_hook_cb), 0);
  assert_int_equal(async_hook_start(c, sc_hook_cb), 0);
  assert_int_equal(async_hook_start(i, sc_hook_cb), 0);
  assert_int_equal(async_watcher_start(w, ASYNC_READABLE, sc_watcher_cb), 0);

  uint64_t t0 = tu_now_ns();
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_true(tu_elapsed_ms(t0) < 1000.0);
  struct selfclose *all[5] = {&st, &sp, &sk, &si, &sw};
  for (int k = 0; k < 5; k++) {
    assert_int_equal(all[k]->calls, 1);
    assert_int_equal(all[k]->rc, 0);
    assert_int_equal(all[k]->closes, 1);
  }
  assert_int_equal(async_loop_free(loop), 0);
  tu_close_pair(sv);
}

/* ------------------------------------------------------------------ */
/* Flags                                                                */

static void test_active_closing_ref_flags(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int fired = 0;
  async_timer *t = tu_timer_new(loop, &fired);
  async_handle *h = async_timer_handle(t);
  assert_int_equal(async_handle_is_active(h), 0);
  assert_int_equal(async_handle_is_closing(h), 0);
  assert_int_equal(async_handle_has_ref(h), 1);

  assert_int_equal(async_timer_start(t, 1, 0, tu_count_timer_cb), 0);
  assert_int_equal(async_handle_is_active(h), 1);
  assert_int_equal(async_handle_is_closing(h), 0);
  assert_int_equal(async_timer_stop(t), 0);
  assert_int_equal(async_handle_is_active(h), 0);
  assert_int_equal(async_timer_stop(t), 0); /* no-op */
  assert_int_equal(async_handle_is_active(h), 0);

  assert_int_equal(async_timer_start(t, 1, 0, tu_count_timer_cb), 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(fired, 1);
  /* A one-shot timer that fired is inactive. */
  assert_int_equal(async_handle_is_active(h), 0);

  assert_int_equal(async_timer_start(t, 1000, 0, tu_count_timer_cb), 0);
  assert_int_equal(async_handle_is_active(h), 1);
  tu_close(h);
  assert_int_equal(async_handle_is_active(h), 0);
  assert_int_equal(async_handle_is_closing(h), 1);

  assert_int_equal(async_handle_is_active(NULL), ASYNC_EINVAL);
  assert_int_equal(async_handle_is_closing(NULL), ASYNC_EINVAL);
  assert_int_equal(async_handle_has_ref(NULL), ASYNC_EINVAL);
  assert_int_equal(async_handle_ref(NULL), ASYNC_EINVAL);
  assert_int_equal(async_handle_unref(NULL), ASYNC_EINVAL);
  tu_finish(loop);
  assert_int_equal(fired, 1);
}

static void test_ref_unref_idempotent(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_timer *t = tu_timer_new(loop, NULL);
  async_handle *h = async_timer_handle(t);
  assert_int_equal(async_timer_start(t, 100000, 0, tu_noop_timer_cb), 0);
  assert_int_equal(async_loop_alive(loop), 1);

  assert_int_equal(async_handle_unref(h), 0);
  assert_int_equal(async_handle_unref(h), 0);
  assert_int_equal(async_handle_has_ref(h), 0);
  assert_int_equal(async_loop_alive(loop), 0);
  /* One ref undoes any number of unrefs. */
  assert_int_equal(async_handle_ref(h), 0);
  assert_int_equal(async_handle_has_ref(h), 1);
  assert_int_equal(async_loop_alive(loop), 1);
  assert_int_equal(async_handle_ref(h), 0);
  assert_int_equal(async_handle_ref(h), 0);
  assert_int_equal(async_handle_has_ref(h), 1);
  /* One unref undoes any number of refs. */
  assert_int_equal(async_handle_unref(h), 0);
  assert_int_equal(async_handle_has_ref(h), 0);
  assert_int_equal(async_loop_alive(loop), 0);
  uint64_t t0 = tu_now_ns();
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_true(tu_elapsed_ms(t0) < 500.0);

  /* The ref state survives stop/start. */
  assert_int_equal(async_timer_stop(t), 0);
  assert_int_equal(async_timer_start(t, 100000, 0, tu_noop_timer_cb), 0);
  assert_int_equal(async_handle_has_ref(h), 0);
  assert_int_equal(async_loop_alive(loop), 0);
  /* Ref on an inactive handle: referenced, but not alive until started. */
  assert_int_equal(async_timer_stop(t), 0);
  assert_int_equal(async_handle_ref(h), 0);
  assert_int_equal(async_handle_has_ref(h), 1);
  assert_int_equal(async_loop_alive(loop), 0);
  assert_int_equal(async_timer_start(t, 100000, 0, tu_noop_timer_cb), 0);
  assert_int_equal(async_loop_alive(loop), 1);

  tu_close(h);
  tu_finish(loop);
}

/* ------------------------------------------------------------------ */
/* Userdata and loop                                                    */

struct udcheck {
  void *seen_timer;
  void *seen_close;
};

static struct udcheck g_ud;

static void ud_timer_cb(async_timer *t, void *ud) {
  (void)t;
  g_ud.seen_timer = ud;
}

static void ud_close_cb(async_handle *h, void *ud) {
  (void)h;
  g_ud.seen_close = ud;
}

static void test_userdata_and_loop(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int a = 1, b = 2;
  memset(&g_ud, 0, sizeof g_ud);
  async_timer *t = tu_timer_new(loop, &a);
  async_handle *h = async_timer_handle(t);
  assert_ptr_equal(async_handle_userdata(h), &a);
  assert_ptr_equal(async_handle_loop(h), loop);
  assert_int_equal(async_handle_set_userdata(h, &b), 0);
  assert_ptr_equal(async_handle_userdata(h), &b);
  assert_int_equal(async_timer_start(t, 1, 0, ud_timer_cb), 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_ptr_equal(g_ud.seen_timer, &b);
  assert_int_equal(async_handle_set_userdata(h, NULL), 0);
  assert_ptr_equal(async_handle_userdata(h), NULL);
  assert_int_equal(async_handle_set_userdata(h, &a), 0);
  assert_int_equal(async_handle_close(h, ud_close_cb), 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_ptr_equal(g_ud.seen_close, &a);

  assert_ptr_equal(async_handle_userdata(NULL), NULL);
  assert_int_equal(async_handle_set_userdata(NULL, &a), ASYNC_EINVAL);
  assert_ptr_equal(async_handle_loop(NULL), NULL);

  /* Handles of two loops report their own loop. */
  async_loop *loop2 = tu_loop_new();
  async_hook *k = tu_hook_new(loop2, ASYNC_HOOK_IDLE, &b);
  assert_ptr_equal(async_handle_loop(async_hook_handle(k)), loop2);
  assert_ptr_equal(async_handle_userdata(async_hook_handle(k)), &b);
  tu_close(async_hook_handle(k));
  tu_finish(loop2);
  assert_int_equal(async_loop_free(loop), 0);
}

/* A plain C cast gives the same handle as the accessor. */
static void test_handle_casts(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  int ud = 7;
  async_timer *t = tu_timer_new(loop, &ud);
  async_hook *k = tu_hook_new(loop, ASYNC_HOOK_IDLE, &ud);
  async_watcher *w = tu_watcher_new(loop, sv[0], &ud);

  assert_ptr_equal((async_handle *)t, async_timer_handle(t));
  assert_ptr_equal((async_handle *)k, async_hook_handle(k));
  assert_ptr_equal((async_handle *)w, async_watcher_handle(w));
  /* The cast pointer works with the handle functions. */
  assert_ptr_equal(async_handle_loop((async_handle *)t), loop);
  assert_ptr_equal(async_handle_userdata((async_handle *)t), &ud);
  assert_int_equal(async_timer_start(t, 100000, 0, tu_noop_timer_cb), 0);
  assert_int_equal(async_handle_is_active((async_handle *)t), 1);
  assert_int_equal(async_handle_unref((async_handle *)t), 0);
  assert_int_equal(async_handle_has_ref(async_timer_handle(t)), 0);

  /* Wrong kind through the typed accessors: NULL. */
  assert_null(async_timer_handle((async_timer *)k));
  assert_null(async_hook_handle((async_hook *)t));
  assert_null(async_watcher_handle((async_watcher *)t));
  assert_null(async_timer_handle(NULL));
  assert_null(async_hook_handle(NULL));
  assert_null(async_watcher_handle(NULL));
  /* A loop is not a handle. */
  assert_int_equal(async_handle_is_active((async_handle *)loop), ASYNC_EINVAL);
  assert_int_equal(async_handle_close((async_handle *)loop, NULL), ASYNC_EINVAL);

  assert_int_equal(async_handle_close((async_handle *)t, NULL), 0);
  assert_int_equal(async_handle_close((async_handle *)k, NULL), 0);
  assert_int_equal(async_handle_close((async_handle *)w, NULL), 0);
  tu_finish(loop);
  tu_close_pair(sv);
}

/* ------------------------------------------------------------------ */
/* Ordering around close                                                */

struct ordctx {
  int seq;
  int soon_order;
  int fired;
};

static struct ordctx g_ord;

static void ord_soon(async_loop *loop, void *ud) {
  (void)loop;
  (void)ud;
  g_ord.soon_order = ++g_ord.seq;
}

static void ord_timer_cb(async_timer *t, void *ud) {
  (void)t;
  (void)ud;
  g_ord.fired++;
}

/* A call_soon queued before close runs before the close callback; a
 * pending timer closed before firing never calls back. */
static void test_close_order(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  memset(&g_ord, 0, sizeof g_ord);
  struct closelog cl;
  memset(&cl, 0, sizeof cl);
  cl.seq = &g_ord.seq;
  g_cl = &cl;
  async_timer *t = tu_timer_start(loop, NULL, 0, 0, ord_timer_cb);
  assert_int_equal(async_loop_call_soon(loop, ord_soon, NULL), 0);
  assert_int_equal(async_handle_close(async_timer_handle(t), close_cb), 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(g_ord.soon_order, 1);
  assert_int_equal(cl.calls, 1);
  assert_int_equal(cl.order, 2);
  assert_int_equal(g_ord.fired, 0);
  assert_int_equal(async_loop_free(loop), 0);
  g_cl = NULL;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_close_callback_later_once),
      cmocka_unit_test(test_close_from_callback_runs_later),
      cmocka_unit_test(test_close_null_callback),
      cmocka_unit_test(test_double_close),
      cmocka_unit_test(test_closing_handle_calls),
      cmocka_unit_test(test_close_in_own_callback),
      cmocka_unit_test(test_active_closing_ref_flags),
      cmocka_unit_test(test_ref_unref_idempotent),
      cmocka_unit_test(test_userdata_and_loop),
      cmocka_unit_test(test_handle_casts),
      cmocka_unit_test(test_close_order),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
