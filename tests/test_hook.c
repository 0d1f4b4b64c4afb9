/*
 * async_hook: prepare/check/idle placement around the poll, starting a
 * hook from inside its own phase, stopping/closing siblings during
 * dispatch, callback replacement, kinds and bad input (async/hook.h;
 * libuv's idle_check / loop_handles / queue_foreach_delete /
 * idle_starvation tests translated).
 */
#include "test_util.h"

#include <string.h>

/* ------------------------------------------------------------------ */
/* Event log shared by the ordering tests                              */

enum { EV_PREPARE = 1, EV_CHECK = 2, EV_IDLE = 3, EV_TIMER = 4 };

struct evlog {
  int n;
  int kind[256];
  uint64_t iter[256];
  uint64_t ns[256];
  async_loop *loop;
};

static struct evlog g_log;

static void log_event(int kind) {
  if (g_log.n < 256) {
    g_log.kind[g_log.n] = kind;
    g_log.iter[g_log.n] = tu_iter_cb(g_log.loop);
    g_log.ns[g_log.n] = tu_now_ns();
  }
  g_log.n++;
}

static int count_kind(int kind) {
  int c = 0;
  for (int i = 0; i < g_log.n && i < 256; i++) {
    c += g_log.kind[i] == kind;
  }
  return c;
}

static int first_index(int kind) {
  for (int i = 0; i < g_log.n && i < 256; i++) {
    if (g_log.kind[i] == kind) {
      return i;
    }
  }
  return -1;
}

static void prepare_log_cb(async_hook *h, void *ud) {
  (void)h;
  (void)ud;
  log_event(EV_PREPARE);
}

static void check_log_cb(async_hook *h, void *ud) {
  (void)h;
  (void)ud;
  log_event(EV_CHECK);
}

static void idle_log_cb(async_hook *h, void *ud) {
  (void)h;
  (void)ud;
  log_event(EV_IDLE);
}

static void timer_log_cb(async_timer *t, void *ud) {
  (void)t;
  (void)ud;
  log_event(EV_TIMER);
}

/* ------------------------------------------------------------------ */

/* PREPARE runs before the poll, CHECK after it, once per iteration each. */
static void test_prepare_check_around_poll(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  memset(&g_log, 0, sizeof g_log);
  g_log.loop = loop;
  async_hook *p = NULL, *c = NULL;
  p = tu_hook_new(loop, ASYNC_HOOK_PREPARE, NULL);
  c = tu_hook_new(loop, ASYNC_HOOK_CHECK, NULL);
  async_timer *t = tu_timer_new(loop, NULL);
  assert_int_equal(async_hook_start(p, prepare_log_cb), 0);
  assert_int_equal(async_hook_start(c, check_log_cb), 0);
  assert_int_equal(async_handle_is_active(async_hook_handle(p)), 1);
  /* Hooks are referenced handles: an active one keeps the loop alive. */
  assert_int_equal(async_loop_alive(loop), 1);
  assert_int_equal(async_timer_start(t, 60, 0, timer_log_cb), 0);

  uint64_t i0 = tu_iterations(loop);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_ONCE), 1);
  assert_int_equal(tu_iterations(loop) - i0, 1);
  /* One iteration, blocked on the 60 ms timer: P, (poll), C and T. */
  assert_int_equal(g_log.n, 3);
  assert_int_equal(count_kind(EV_PREPARE), 1);
  assert_int_equal(count_kind(EV_CHECK), 1);
  assert_int_equal(count_kind(EV_TIMER), 1);
  int ip = first_index(EV_PREPARE), ic = first_index(EV_CHECK), it = first_index(EV_TIMER);
  assert_int_equal(ip, 0);
  assert_true(ic > ip);
  assert_true(it > ip);
  /* The block happened between prepare and check. */
  assert_true(g_log.ns[ic] - g_log.ns[ip] >= 30u * 1000000u);
  assert_true(g_log.ns[it] - g_log.ns[ip] >= 30u * 1000000u);

  /* NOWAIT: one prepare and one check per iteration. */
  memset(&g_log, 0, sizeof g_log);
  g_log.loop = loop;
  for (int k = 0; k < 10; k++) {
    assert_int_equal(async_loop_run(loop, ASYNC_RUN_NOWAIT), 1);
    /* Each NOWAIT run is one iteration: exactly P then C. */
    assert_int_equal(g_log.n, 2 * (k + 1));
    assert_int_equal(g_log.kind[2 * k], EV_PREPARE);
    assert_int_equal(g_log.kind[2 * k + 1], EV_CHECK);
  }
  assert_int_equal(count_kind(EV_PREPARE), 10);
  assert_int_equal(count_kind(EV_CHECK), 10);

  /* Stopped hooks do not run; stop on a stopped hook is a no-op. */
  assert_int_equal(async_hook_stop(p), 0);
  assert_int_equal(async_hook_stop(p), 0);
  assert_int_equal(async_handle_is_active(async_hook_handle(p)), 0);
  assert_int_equal(async_hook_stop(c), 0);
  assert_int_equal(async_loop_alive(loop), 0);
  memset(&g_log, 0, sizeof g_log);
  g_log.loop = loop;
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_NOWAIT), 0);
  assert_int_equal(g_log.n, 0);

  tu_close(async_hook_handle(p));
  tu_close(async_hook_handle(c));
  tu_close(async_timer_handle(t));
  tu_finish(loop);
}

/* IDLE runs once per iteration while active and keeps the poll from blocking. */
static void test_idle_keeps_poll_nonblocking(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int idles = 0, fired = 0;
  async_hook *i = tu_hook_new(loop, ASYNC_HOOK_IDLE, &idles);
  async_timer *t = tu_timer_new(loop, &fired);
  uint64_t t0 = tu_now_ns();
  assert_int_equal(async_timer_start(t, 500, 0, tu_count_timer_cb), 0);
  assert_int_equal(async_hook_start(i, tu_count_hook_cb), 0);

  assert_int_equal(async_loop_run(loop, ASYNC_RUN_ONCE), 1);
  assert_true(tu_elapsed_ms(t0) < 250.0);
  assert_int_equal(idles, 1);
  assert_int_equal(fired, 0);
  uint64_t i0 = tu_iterations(loop);
  for (int k = 0; k < 20; k++) {
    assert_int_equal(async_loop_run(loop, ASYNC_RUN_ONCE), 1);
  }
  assert_true(tu_elapsed_ms(t0) < 400.0);
  assert_int_equal(idles, 21);
  assert_int_equal(tu_iterations(loop) - i0, 20);
  assert_int_equal(fired, 0);

  /* Stopped: the poll blocks again, until the timer. */
  assert_int_equal(async_hook_stop(i), 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_ONCE), 0);
  assert_int_equal(fired, 1);
  assert_true(tu_elapsed_ms(t0) >= 500.0);
  assert_int_equal(idles, 21);

  tu_close(async_hook_handle(i));
  tu_close(async_timer_handle(t));
  tu_finish(loop);
}

/* libuv idle_starvation: active idle + check never starve a 50 ms timer. */
struct starve {
  async_hook *idle, *check;
  int idles, checks, fired;
};

static void starve_idle_cb(async_hook *h, void *ud) {
  (void)h;
  ((struct starve *)ud)->idles++;
}

static void starve_check_cb(async_hook *h, void *ud) {
  (void)h;
  ((struct starve *)ud)->checks++;
}

static void starve_timer_cb(async_timer *t, void *ud) {
  struct starve *s = ud;
  s->fired++;
  async_handle_close(async_hook_handle(s->idle), NULL);
  async_handle_close(async_hook_handle(s->check), NULL);
  async_handle_close(async_timer_handle(t), NULL);
}

static void test_idle_check_no_timer_starvation(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  struct starve s;
  memset(&s, 0, sizeof s);
  s.idle = tu_hook_new(loop, ASYNC_HOOK_IDLE, &s);
  s.check = tu_hook_new(loop, ASYNC_HOOK_CHECK, &s);
  async_timer *t = tu_timer_new(loop, &s);
  assert_int_equal(async_hook_start(s.idle, starve_idle_cb), 0);
  assert_int_equal(async_hook_start(s.check, starve_check_cb), 0);
  uint64_t t0 = tu_now_ns();
  assert_int_equal(async_timer_start(t, 50, 0, starve_timer_cb), 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  double el = tu_elapsed_ms(t0);
  assert_int_equal(s.fired, 1);
  assert_true(el >= 50.0);
  assert_true(el < 1000.0);
  assert_true(s.idles >= 2);
  assert_true(s.checks >= 2);
  assert_int_equal(async_loop_free(loop), 0);
}

/* ------------------------------------------------------------------ */
/* Started inside its own phase: first runs on the next iteration      */

struct starter {
  async_hook *other;
  int calls;
  uint64_t first_iter;
  int started_other;
  int restart_self; /* stop + start itself every call */
};

static void starter_cb(async_hook *h, void *ud) {
  struct starter *s = ud;
  if (s->calls == 0) {
    s->first_iter = tu_iter_cb(async_handle_loop(async_hook_handle(h)));
  }
  s->calls++;
  if (s->other && !s->started_other) {
    s->started_other = 1;
    async_hook_start(s->other, starter_cb);
  }
  if (s->restart_self) {
    async_hook_stop(h);
    async_hook_start(h, starter_cb);
  }
}

static void run_started_in_own_phase(int kind) {
  async_loop *loop = tu_loop_new();
  struct starter a, b, c;
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  memset(&c, 0, sizeof c);
  async_hook *ha = NULL, *hb = NULL, *hc = NULL;
  ha = tu_hook_new(loop, kind, &a);
  hb = tu_hook_new(loop, kind, &b);
  hc = tu_hook_new(loop, kind, &c);
  a.other = hb;
  c.restart_self = 1;
  assert_int_equal(async_hook_start(ha, starter_cb), 0);
  assert_int_equal(async_hook_start(hc, starter_cb), 0);
  for (int k = 0; k < 3; k++) {
    assert_int_equal(async_loop_run(loop, ASYNC_RUN_NOWAIT), 1);
  }
  assert_int_equal(a.calls, 3);
  assert_int_equal(b.calls, 2);
  assert_int_equal(b.first_iter, a.first_iter + 1);
  /* Restarting itself from its own callback: still once per iteration. */
  assert_int_equal(c.calls, 3);
  assert_int_equal(async_handle_is_active(async_hook_handle(hb)), 1);
  tu_close(async_hook_handle(ha));
  tu_close(async_hook_handle(hb));
  tu_close(async_hook_handle(hc));
  tu_finish(loop);
}

static void test_started_in_own_phase_prepare(void **state) {
  (void)state;
  run_started_in_own_phase(ASYNC_HOOK_PREPARE);
}

static void test_started_in_own_phase_check(void **state) {
  (void)state;
  run_started_in_own_phase(ASYNC_HOOK_CHECK);
}

static void test_started_in_own_phase_idle(void **state) {
  (void)state;
  run_started_in_own_phase(ASYNC_HOOK_IDLE);
}

/* ------------------------------------------------------------------ */
/* Stopping / closing siblings during dispatch                          */

#define N_SIB 4

struct sibs {
  async_hook *h[N_SIB];
  int calls[N_SIB];
  int closed[N_SIB];
  int close_cbs[N_SIB];
  int use_close;
  int bad;
};

struct sib {
  struct sibs *all;
  int idx;
};

static void sib_close_cb(async_handle *h, void *ud) {
  (void)h;
  struct sib *s = ud;
  s->all->close_cbs[s->idx]++;
}

static void sib_cb(async_hook *h, void *ud) {
  struct sib *s = ud;
  struct sibs *all = s->all;
  if (all->h[s->idx] != h || all->closed[s->idx]) {
    all->bad++;
  }
  all->calls[s->idx]++;
  for (int j = 0; j < N_SIB; j++) {
    if (j == s->idx || all->closed[j]) {
      continue;
    }
    if (all->use_close) {
      all->closed[j] = 1;
      if (async_handle_close(async_hook_handle(all->h[j]), sib_close_cb) != 0) {
        all->bad++;
      }
    } else if (async_hook_stop(all->h[j]) != 0) {
      all->bad++;
    }
  }
}

static void run_siblings(int kind, int use_close) {
  async_loop *loop = tu_loop_new();
  struct sibs all;
  struct sib me[N_SIB];
  memset(&all, 0, sizeof all);
  all.use_close = use_close;
  for (int i = 0; i < N_SIB; i++) {
    me[i].all = &all;
    me[i].idx = i;
    all.h[i] = tu_hook_new(loop, kind, &me[i]);
    assert_int_equal(async_hook_start(all.h[i], sib_cb), 0);
  }
  /* Whichever runs first stops/closes all the others: exactly one runs. */
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_NOWAIT), 1);
  int total = 0, winner = -1;
  for (int i = 0; i < N_SIB; i++) {
    total += all.calls[i];
    if (all.calls[i]) {
      winner = i;
    }
  }
  assert_int_equal(total, 1);
  assert_int_equal(all.bad, 0);
  assert_true(winner >= 0);
  /* The others stay silent; the winner keeps running once per iteration. */
  for (int k = 0; k < 3; k++) {
    assert_int_equal(async_loop_run(loop, ASYNC_RUN_NOWAIT), 1);
  }
  for (int i = 0; i < N_SIB; i++) {
    assert_int_equal(all.calls[i], i == winner ? 4 : 0);
  }
  assert_int_equal(all.bad, 0);
  if (use_close) {
    for (int i = 0; i < N_SIB; i++) {
      assert_int_equal(all.close_cbs[i], i == winner ? 0 : 1);
    }
    all.closed[winner] = 1;
    assert_int_equal(async_handle_close(async_hook_handle(all.h[winner]), sib_close_cb), 0);
    tu_finish(loop);
    for (int i = 0; i < N_SIB; i++) {
      assert_int_equal(all.close_cbs[i], 1);
    }
  } else {
    for (int i = 0; i < N_SIB; i++) {
      assert_int_equal(async_handle_is_active(async_hook_handle(all.h[i])), i == winner ? 1 : 0);
      tu_close(async_hook_handle(all.h[i]));
    }
    tu_finish(loop);
  }
}

static void test_sibling_stop_prepare(void **state) {
  (void)state;
  run_siblings(ASYNC_HOOK_PREPARE, 0);
}
static void test_sibling_stop_check(void **state) {
  (void)state;
  run_siblings(ASYNC_HOOK_CHECK, 0);
}
static void test_sibling_stop_idle(void **state) {
  (void)state;
  run_siblings(ASYNC_HOOK_IDLE, 0);
}
static void test_sibling_close_prepare(void **state) {
  (void)state;
  run_siblings(ASYNC_HOOK_PREPARE, 1);
}
static void test_sibling_close_check(void **state) {
  (void)state;
  run_siblings(ASYNC_HOOK_CHECK, 1);
}
static void test_sibling_close_idle(void **state) {
  (void)state;
  run_siblings(ASYNC_HOOK_IDLE, 1);
}

/* ------------------------------------------------------------------ */
/* Callback replacement, NULL callback, kinds                           */

static void test_start_replaces_callback(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  memset(&g_log, 0, sizeof g_log);
  g_log.loop = loop;
  async_hook *h = tu_hook_new(loop, ASYNC_HOOK_PREPARE, NULL);
  assert_int_equal(async_hook_start(h, check_log_cb), 0);
  /* Starting an active hook returns 0 and replaces the callback. */
  assert_int_equal(async_hook_start(h, prepare_log_cb), 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_NOWAIT), 1);
  assert_int_equal(g_log.n, 1);
  assert_int_equal(g_log.kind[0], EV_PREPARE);
  /* A hook's kind decides its phase, not its callback. */
  assert_int_equal(async_hook_start(h, idle_log_cb), 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_NOWAIT), 1);
  assert_int_equal(g_log.n, 2);
  assert_int_equal(g_log.kind[1], EV_IDLE);
  tu_close(async_hook_handle(h));
  tu_finish(loop);
}

static void test_null_callback(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  for (int kind = ASYNC_HOOK_PREPARE; kind <= ASYNC_HOOK_IDLE; kind++) {
    async_hook *h = tu_hook_new(loop, kind, NULL);
    assert_int_equal(async_hook_start(h, (async_hook_fn)NULL), ASYNC_EINVAL);
    assert_int_equal(async_handle_is_active(async_hook_handle(h)), 0);
    assert_int_equal(async_loop_alive(loop), 0);
    tu_close(async_hook_handle(h));
    assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  }
  assert_int_equal(async_hook_start(NULL, tu_count_hook_cb), ASYNC_EINVAL);
  assert_int_equal(async_hook_stop(NULL), ASYNC_EINVAL);
  tu_finish(loop);
}

static void test_kinds(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  static const int kinds[] = {ASYNC_HOOK_PREPARE, ASYNC_HOOK_CHECK, ASYNC_HOOK_IDLE};
  async_hook *h[3];
  for (int i = 0; i < 3; i++) {
    assert_int_equal(async_hook_new(&h[i], loop, kinds[i], NULL), 0);
    assert_non_null(h[i]);
  }
  for (int i = 0; i < 3; i++) {
    assert_int_equal(async_hook_get_kind(h[i]), kinds[i]);
  }
  assert_int_equal(ASYNC_HOOK_PREPARE, 0);
  assert_int_equal(ASYNC_HOOK_CHECK, 1);
  assert_int_equal(ASYNC_HOOK_IDLE, 2);

  static const int bad[] = {3, 4, -1, 100, ASYNC_HOOK_KIND_FORCE32};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    async_hook *x = NULL;
    assert_int_equal(async_hook_new(&x, loop, bad[i], NULL), ASYNC_EINVAL);
  }
  async_hook *x = NULL;
  assert_int_equal(async_hook_new(NULL, loop, ASYNC_HOOK_IDLE, NULL), ASYNC_EINVAL);
  assert_int_equal(async_hook_new(&x, NULL, ASYNC_HOOK_IDLE, NULL), ASYNC_EINVAL);
  assert_int_equal(async_hook_get_kind(NULL), ASYNC_EINVAL);

  /* A timer is not a hook. */
  async_timer *t = tu_timer_new(loop, NULL);
  assert_int_equal(async_hook_get_kind((async_hook *)t), ASYNC_EINVAL);
  assert_int_equal(async_hook_start((async_hook *)t, tu_count_hook_cb), ASYNC_EINVAL);
  assert_int_equal(async_hook_stop((async_hook *)t), ASYNC_EINVAL);

  /* Still working after all the bad calls. */
  int n = 0;
  assert_int_equal(async_handle_set_userdata(async_hook_handle(h[2]), &n), 0);
  assert_int_equal(async_hook_start(h[2], tu_count_hook_cb), 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_NOWAIT), 1);
  assert_int_equal(n, 1);
  for (int i = 0; i < 3; i++) {
    tu_close(async_hook_handle(h[i]));
  }
  tu_close(async_timer_handle(t));
  tu_finish(loop);
  assert_int_equal(n, 1);
}

/* Unreferenced active hooks do not keep run(DEFAULT) going. */
static void test_unref_hooks(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int n[3] = {0, 0, 0};
  async_hook *h[3];
  for (int i = 0; i < 3; i++) {
    h[i] = tu_hook_new(loop, i, &n[i]);
    assert_int_equal(async_hook_start(h[i], tu_count_hook_cb), 0);
    assert_int_equal(async_loop_alive(loop), 1);
    assert_int_equal(async_handle_unref(async_hook_handle(h[i])), 0);
  }
  assert_int_equal(async_loop_alive(loop), 0);
  uint64_t t0 = tu_now_ns();
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_true(tu_elapsed_ms(t0) < 500.0);
  for (int i = 0; i < 3; i++) {
    assert_true(n[i] <= 1);
    tu_close(async_hook_handle(h[i]));
  }
  tu_finish(loop);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_prepare_check_around_poll),
      cmocka_unit_test(test_idle_keeps_poll_nonblocking),
      cmocka_unit_test(test_idle_check_no_timer_starvation),
      cmocka_unit_test(test_started_in_own_phase_prepare),
      cmocka_unit_test(test_started_in_own_phase_check),
      cmocka_unit_test(test_started_in_own_phase_idle),
      cmocka_unit_test(test_sibling_stop_prepare),
      cmocka_unit_test(test_sibling_stop_check),
      cmocka_unit_test(test_sibling_stop_idle),
      cmocka_unit_test(test_sibling_close_prepare),
      cmocka_unit_test(test_sibling_close_check),
      cmocka_unit_test(test_sibling_close_idle),
      cmocka_unit_test(test_start_replaces_callback),
      cmocka_unit_test(test_null_callback),
      cmocka_unit_test(test_kinds),
      cmocka_unit_test(test_unref_hooks),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
