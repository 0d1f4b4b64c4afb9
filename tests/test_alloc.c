/*
 * The process-wide allocator hook and allocation-failure injection
 * (async/alloc.h; DESIGN.md §2.10: out of memory returns ASYNC_ENOMEM, it
 * never aborts).
 *
 * A counting allocator (thread-safe: a mutex) fails the Nth allocation
 * attempt. Each scenario runs with N = 1, 2, 3, ... until a run sees no
 * injected failure: every failing call must return ASYNC_ENOMEM, the
 * objects that were created must keep working (exact callback counts),
 * and after cleanup the live allocation count must be 0 and the default
 * allocator restorable (the library holds no memory). Each scenario also
 * runs in "persistent" mode, where every attempt from the Nth on fails, so
 * the cleanup paths are shown not to need memory.
 *
 * libev's allocations go through the hook too, but the library falls back
 * to the C library when the hook fails for one of them (libev would abort),
 * so such injected failures are invisible; the live count must still end
 * at 0.
 */
#include "test_util.h"

#include "dns_fixture.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* The counting allocator                                              */

#define HDR 16u /* keeps the user pointer aligned like malloc's */
#define MAGIC_LIVE 0x4c495645u
#define MAGIC_DEAD 0x44454144u

struct counter {
  pthread_mutex_t mu;
  long calls;      /* every call, frees included */
  long attempts;   /* allocation and resize attempts (size > 0) */
  long fail_at;    /* 1-based attempt to fail; 0 = never */
  int persistent;  /* fail every attempt from fail_at on */
  long injected;   /* failures injected */
  long live;       /* blocks allocated and not yet freed */
  long bad_frees;  /* frees/resizes of blocks this allocator did not make */
};

static struct counter g_c = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void *count_realloc(void *ptr, size_t size, void *ud) {
  struct counter *c = ud;
  unsigned char *raw = ptr ? (unsigned char *)ptr - HDR : NULL;
  pthread_mutex_lock(&c->mu);
  c->calls++;
  if (raw != NULL && *(uint32_t *)raw != MAGIC_LIVE) {
    c->bad_frees++;
    pthread_mutex_unlock(&c->mu);
    return NULL;
  }
  if (size == 0) {
    if (raw != NULL) {
      c->live--;
      *(uint32_t *)raw = MAGIC_DEAD;
    }
    pthread_mutex_unlock(&c->mu);
    free(raw);
    return NULL;
  }
  long n = ++c->attempts;
  int fail = c->fail_at > 0 && (c->persistent ? n >= c->fail_at : n == c->fail_at);
  if (fail) {
    c->injected++;
    pthread_mutex_unlock(&c->mu);
    return NULL;
  }
  unsigned char *p = realloc(raw, HDR + size);
  if (p != NULL) {
    *(uint32_t *)p = MAGIC_LIVE;
    if (raw == NULL) {
      c->live++;
    }
  }
  pthread_mutex_unlock(&c->mu);
  return p ? p + HDR : NULL;
}

static void counter_reset(long fail_at, int persistent) {
  pthread_mutex_lock(&g_c.mu);
  g_c.calls = 0;
  g_c.attempts = 0;
  g_c.fail_at = fail_at;
  g_c.persistent = persistent;
  g_c.injected = 0;
  g_c.live = 0;
  g_c.bad_frees = 0;
  pthread_mutex_unlock(&g_c.mu);
}

static void injection_off(void) {
  pthread_mutex_lock(&g_c.mu);
  g_c.fail_at = 0;
  pthread_mutex_unlock(&g_c.mu);
}

static long counter_get(const long *field) {
  pthread_mutex_lock(&g_c.mu);
  long v = *field;
  pthread_mutex_unlock(&g_c.mu);
  return v;
}

static int teardown_restore(void **state) {
  (void)state;
  async_set_allocator(NULL, NULL);
  return 0;
}

/* ------------------------------------------------------------------ */
/* Scenario plumbing                                                   */

static int g_enomem; /* ASYNC_ENOMEM results seen in the current run */

/* 1 if rc is 0, 0 if it is ASYNC_ENOMEM; any other result fails the test. */
static int ok(int rc) {
  if (rc == 0) {
    return 1;
  }
  if (rc != ASYNC_ENOMEM) {
    fail_msg("expected 0 or ASYNC_ENOMEM, got %d (%s)", rc, async_err_name(rc));
  }
  g_enomem++;
  return 0;
}

/* Runs the loop until nothing is left; bounded. */
static void run_to_end(async_loop *loop) {
  uint64_t t0 = tu_now_ns();
  int rc;
  while ((rc = async_loop_run(loop, ASYNC_RUN_DEFAULT)) != 0) {
    assert_true(rc > 0);
    assert_true(tu_elapsed_ms(t0) < 10000.0);
  }
}

/* Runs the scenario and then frees the loop; the scenario returns its loop
 * (NULL if creating it failed) with everything closed. */
typedef async_loop *(*scenario_fn)(void);

static void finish_loop(async_loop *loop) {
  if (loop != NULL) {
    run_to_end(loop);
    assert_int_equal(async_loop_free(loop), 0);
  }
}

static void drive(const char *name, scenario_fn fn, int persistent) {
  const long max_n = 5000;
  long enomem_total = 0, invisible = 0;
  for (long n = 1; n <= max_n; n++) {
    assert_int_equal(async_set_allocator(count_realloc, &g_c), 0);
    counter_reset(n, persistent);
    g_enomem = 0;
    async_loop *loop = fn();
    /* In persistent mode the cleanup runs with allocation still failing
     * (unless the scenario says memory came back). */
    finish_loop(loop);
    long injected = counter_get(&g_c.injected);
    long live = counter_get(&g_c.live);
    long bad = counter_get(&g_c.bad_frees);
    long attempts = counter_get(&g_c.attempts);
    injection_off();
    if (live != 0) {
      fail_msg("%s N=%ld%s: %ld allocations still live after cleanup", name, n,
               persistent ? " (persistent)" : "", live);
    }
    if (bad != 0) {
      fail_msg("%s N=%ld: %ld frees of memory the hook did not allocate", name, n, bad);
    }
    if (g_enomem > 0 && injected == 0) {
      fail_msg("%s N=%ld: ASYNC_ENOMEM without an allocation failure", name, n);
    }
    /* The library holds no memory: the default allocator comes back. */
    assert_int_equal(async_set_allocator(NULL, NULL), 0);
    if (injected == 0) {
      assert_int_equal(g_enomem, 0);
      assert_true(attempts > 0);
      assert_true(n > 1); /* at least one run saw a failure */
      assert_true(enomem_total > 0); /* and at least one was reported */
      print_message("%s%s: %ld runs, %ld allocation attempts, %ld ASYNC_ENOMEM, %ld runs with only "
                    "invisible failures\n",
                    name, persistent ? " (persistent)" : "", n, attempts, enomem_total, invisible);
      return;
    }
    enomem_total += g_enomem;
    if (g_enomem == 0) {
      invisible++;
    }
  }
  fail_msg("%s: still failing after %ld runs", name, max_n);
}

/* ------------------------------------------------------------------ */
/* Scenarios                                                           */

/* A new loop, or NULL when creation failed with ASYNC_ENOMEM (counted by
 * ok(); any other error fails the test). */
static async_loop *sc_loop_new(void) {
  async_loop *loop = NULL;
  if (!ok(async_loop_new(&loop))) {
    return NULL;
  }
  assert_non_null(loop);
  return loop;
}

static async_loop *sc_loop(void) {
  async_loop *loop = sc_loop_new();
  if (loop == NULL) {
    return NULL;
  }
  int ran = 0;
  /* The loop runs and its cheap calls do not allocate-fail. */
  if (ok(async_loop_call_soon(loop, tu_count_soon_cb, &ran))) {
    assert_int_equal(async_loop_run(loop, ASYNC_RUN_NOWAIT), 0);
    assert_int_equal(ran, 1);
  }
  return loop;
}

static async_loop *sc_call_soon(void) {
  async_loop *loop = sc_loop_new();
  if (loop == NULL) {
    return NULL;
  }
  static int ran;
  ran = 0;
  int queued = 0;
  for (int i = 0; i < 300; i++) {
    queued += ok(async_loop_call_soon(loop, tu_count_soon_cb, &ran));
  }
  run_to_end(loop);
  assert_int_equal(ran, queued);
  return loop;
}

struct poster {
  async_loop *loop;
  int *ran;
  int posted;
  int other;
};

static void *post_thread(void *arg) {
  struct poster *p = arg;
  for (int i = 0; i < 100; i++) {
    int rc = async_loop_post(p->loop, tu_count_soon_cb, p->ran);
    if (rc == 0) {
      p->posted++;
    } else if (rc != ASYNC_ENOMEM) {
      p->other++;
    }
  }
  return NULL;
}

static async_loop *sc_post(void) {
  async_loop *loop = sc_loop_new();
  if (loop == NULL) {
    return NULL;
  }
  static int ran;
  ran = 0;
  int posted = 0;
  for (int i = 0; i < 100; i++) {
    posted += ok(async_loop_post(loop, tu_count_soon_cb, &ran));
  }
  /* And from another thread (the allocator is called there). */
  struct poster p = {.loop = loop, .ran = &ran};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, post_thread, &p), 0);
  assert_int_equal(pthread_join(th, NULL), 0);
  assert_int_equal(p.other, 0);
  if (p.posted < 100) {
    g_enomem++;
  }
  posted += p.posted;
  /* Accepted posts are never lost: at worst they wait for memory (moving
   * them to the ready queue may need some). In persistent mode, first run
   * while allocation still fails (a stall must not crash or drop posts),
   * then let memory come back. */
  if (g_c.persistent) {
    for (int i = 0; i < 3; i++) {
      assert_true(async_loop_run(loop, ASYNC_RUN_NOWAIT) >= 0);
    }
    assert_true(ran <= posted);
    injection_off();
  }
  uint64_t t0 = tu_now_ns();
  while (ran < posted && tu_elapsed_ms(t0) < 5000.0) {
    assert_true(async_loop_run(loop, ASYNC_RUN_NOWAIT) >= 0);
  }
  assert_int_equal(ran, posted);
  return loop;
}

#define N_TIMERS 40

static void rep_fire_cb(async_timer *t, void *ud) {
  (*(int *)ud)++;
  async_timer_stop(t);
}

static async_loop *sc_timers(void) {
  async_loop *loop = sc_loop_new();
  if (loop == NULL) {
    return NULL;
  }
  static int fired, closed;
  fired = 0;
  closed = 0;
  async_timer *t[N_TIMERS];
  int created = 0, started = 0;
  for (int i = 0; i < N_TIMERS; i++) {
    t[i] = NULL;
    if (!ok(async_timer_new(&t[i], loop, &fired))) {
      t[i] = NULL;
      continue;
    }
    created++;
    started += ok(async_timer_start(t[i], (uint64_t)(i % 3), 0, tu_count_timer_cb));
  }
  /* A repeating one re-armed through again(). */
  async_timer *rep = NULL;
  int rep_ok = ok(async_timer_new(&rep, loop, &fired));
  if (rep_ok) {
    created++;
    if (ok(async_timer_start(rep, 100000, 1, rep_fire_cb))) {
      if (ok(async_timer_again(rep))) {
        started++;
      }
    }
  }
  uint64_t t0 = tu_now_ns();
  while (fired < started && tu_elapsed_ms(t0) < 5000.0) {
    assert_true(async_loop_run(loop, ASYNC_RUN_ONCE) >= 0);
  }
  assert_int_equal(fired, started);
  for (int i = 0; i < N_TIMERS; i++) {
    if (t[i] != NULL) {
      assert_int_equal(async_handle_set_userdata(async_timer_handle(t[i]), &closed), 0);
      assert_int_equal(async_handle_close(async_timer_handle(t[i]), tu_count_close_cb), 0);
    }
  }
  if (rep_ok) {
    assert_int_equal(async_handle_set_userdata(async_timer_handle(rep), &closed), 0);
    assert_int_equal(async_handle_close(async_timer_handle(rep), tu_count_close_cb), 0);
  }
  run_to_end(loop);
  assert_int_equal(closed, created);
  return loop;
}

struct wctx {
  int calls;
};

static void w_cb(async_watcher *w, uint32_t ev, void *ud) {
  (void)w;
  (void)ev;
  ((struct wctx *)ud)->calls++;
}

#define N_WATCHERS 12

static async_loop *sc_watcher(void) {
  async_loop *loop = sc_loop_new();
  if (loop == NULL) {
    return NULL;
  }
  int sv[N_WATCHERS][2];
  async_watcher *w[N_WATCHERS];
  static struct wctx ctx[N_WATCHERS];
  static int closed;
  closed = 0;
  memset(ctx, 0, sizeof ctx);
  int created = 0;
  int started[N_WATCHERS];
  for (int i = 0; i < N_WATCHERS; i++) {
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv[i]), 0);
    w[i] = NULL;
    started[i] = 0;
    if (!ok(async_watcher_new(&w[i], loop, sv[i][0], &ctx[i]))) {
      w[i] = NULL;
      continue;
    }
    created++;
    started[i] = ok(async_watcher_start(w[i], ASYNC_WRITABLE, w_cb));
    if (started[i]) {
      started[i] = ok(async_watcher_set_events(w[i], ASYNC_READABLE | ASYNC_WRITABLE));
      if (!started[i]) {
        /* A failed change leaves the watcher as it was or stopped. */
        started[i] = async_handle_is_active(async_watcher_handle(w[i]));
      }
    }
  }
  assert_true(async_loop_run(loop, ASYNC_RUN_NOWAIT) >= 0);
  for (int i = 0; i < N_WATCHERS; i++) {
    assert_int_equal(ctx[i].calls, started[i] ? 1 : 0);
    if (w[i] != NULL) {
      assert_int_equal(async_handle_set_userdata(async_watcher_handle(w[i]), &closed), 0);
      assert_int_equal(async_handle_close(async_watcher_handle(w[i]), tu_count_close_cb), 0);
    }
  }
  run_to_end(loop);
  assert_int_equal(closed, created);
  for (int i = 0; i < N_WATCHERS; i++) {
    close(sv[i][0]);
    close(sv[i][1]);
  }
  return loop;
}

static async_loop *sc_hooks(void) {
  async_loop *loop = sc_loop_new();
  if (loop == NULL) {
    return NULL;
  }
  async_hook *h[9];
  static int calls[9];
  memset(calls, 0, sizeof calls);
  int started[9];
  for (int i = 0; i < 9; i++) {
    h[i] = NULL;
    started[i] = 0;
    if (!ok(async_hook_new(&h[i], loop, i % 3, &calls[i]))) {
      h[i] = NULL;
      continue;
    }
    started[i] = ok(async_hook_start(h[i], tu_count_hook_cb));
  }
  assert_true(async_loop_run(loop, ASYNC_RUN_NOWAIT) >= 0);
  for (int i = 0; i < 9; i++) {
    assert_int_equal(calls[i], started[i]);
    if (h[i] != NULL) {
      assert_int_equal(async_handle_close(async_hook_handle(h[i]), NULL), 0);
    }
  }
  return loop;
}

static volatile sig_atomic_t g_usr2_hits;

static void usr2_handler(int sig) {
  (void)sig;
  g_usr2_hits++;
}

static void sig_cb(async_signal *s, int signum, void *ud) {
  (void)s;
  (void)signum;
  (*(int *)ud)++;
}

static async_loop *sc_signal(void) {
  async_loop *loop = sc_loop_new();
  if (loop == NULL) {
    return NULL;
  }
  static int calls;
  calls = 0;
  g_usr2_hits = 0;
  async_signal *s = NULL;
  if (ok(async_signal_new(&s, loop, &calls))) {
    if (ok(async_signal_start(s, SIGUSR2, sig_cb))) {
      assert_int_equal(raise(SIGUSR2), 0);
      uint64_t t0 = tu_now_ns();
      while (calls < 1 && tu_elapsed_ms(t0) < 2000.0) {
        assert_true(async_loop_run(loop, ASYNC_RUN_NOWAIT) >= 0);
      }
      assert_int_equal(calls, 1);
      assert_int_equal(g_usr2_hits, 0);
    }
    assert_int_equal(async_handle_close(async_signal_handle(s), NULL), 0);
  }
  /* Our handler is back either way. */
  struct sigaction sa;
  assert_int_equal(sigaction(SIGUSR2, NULL, &sa), 0);
  assert_true(sa.sa_handler == usr2_handler);
  return loop;
}

/* Futures: every callback userdata is notified exactly once whatever
 * failed. */
#define N_FCB 64

static int g_fnotified[N_FCB];
static int g_fregistered[N_FCB];
static int g_fnext;

static void f_cb(async_future *f, int status, void *ud) {
  (void)f;
  (void)status;
  (*(int *)ud)++;
}

static void add_cb(async_future *f) {
  assert_true(g_fnext < N_FCB);
  int i = g_fnext++;
  g_fregistered[i] = ok(async_future_add_callback(f, f_cb, &g_fnotified[i]));
}

static void count_destroy(void *value, void *context) {
  (void)value;
  ++*(int *)context;
}

static async_loop *sc_futures(void) {
  async_loop *loop = NULL;
  memset(g_fnotified, 0, sizeof g_fnotified);
  memset(g_fregistered, 0, sizeof g_fregistered);
  g_fnext = 0;
  if (!ok(async_loop_new(&loop))) {
    return NULL;
  }
  async_future *f[3] = {NULL, NULL, NULL};
  int nf = 0;
  for (int i = 0; i < 3; i++) {
    if (ok(async_future_new(&f[nf], loop))) {
      nf++;
    }
  }
  if (nf > 0) {
    for (int i = 0; i < 20; i++) {
      add_cb(f[0]); /* grows the callback storage several times */
    }
  }
  async_future *all = NULL, *any = NULL, *tmo = NULL, *all0 = NULL;
  if (nf > 0) {
    if (ok(async_future_all(&all, loop, f, (size_t)nf))) {
      add_cb(all);
    } else {
      all = NULL;
    }
    if (ok(async_future_any(&any, loop, f, (size_t)nf))) {
      add_cb(any);
    } else {
      any = NULL;
    }
    if (ok(async_future_timeout(&tmo, f[nf - 1], 10000))) {
      add_cb(tmo);
    } else {
      tmo = NULL;
    }
  }
  if (ok(async_future_all(&all0, loop, f, 0))) {
    add_cb(all0);
  } else {
    all0 = NULL;
  }
  /* Complete the inputs: resolve, reject, cancel. */
  static int value = 5;
  if (nf > 0) {
    assert_int_equal(async_future_resolve(f[0], &value, NULL, NULL), 0);
  }
  if (nf > 1) {
    assert_int_equal(async_future_reject(f[1], ASYNC_EIO), 0);
  }
  if (nf > 2) {
    assert_int_equal(async_future_cancel(f[2]), 1);
  }
  /* A value with a destroy function: ENOMEM (no room to queue it later)
   * leaves the value the caller's and the future pending; else destroy
   * runs once, after the free, from the loop. */
  static int destroyed;
  destroyed = 0;
  async_future *d = NULL;
  int resolved = 0;
  if (ok(async_future_new(&d, loop))) {
    resolved = ok(async_future_resolve(d, &value, count_destroy, &destroyed));
    assert_int_equal(async_future_get_state(d), resolved ? ASYNC_FUTURE_DONE : ASYNC_FUTURE_PENDING);
    assert_int_equal(async_future_free(d), 0);
    assert_int_equal(destroyed, 0);
  }
  if (any != NULL) {
    int rc = async_loop_run_until(loop, any);
    if (rc != ASYNC_ENOMEM) {
      assert_int_equal(rc, 0);
      void *v = NULL;
      assert_int_equal(async_future_result(&v, any), 0);
      assert_ptr_equal(v, f[0]);
    } else {
      g_enomem++;
    }
  }
  run_to_end(loop);
  if (all != NULL) {
    assert_int_equal(async_future_result(NULL, all), nf > 1 ? ASYNC_EIO : 0);
  }
  if (tmo != NULL) {
    int expect = nf == 1 ? 0 : nf == 2 ? ASYNC_EIO : ASYNC_ECANCELED;
    assert_int_equal(async_future_result(NULL, tmo), expect);
  }
  async_future *owned[] = {all, any, tmo, all0, f[0], f[1], f[2]};
  for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++) {
    if (owned[i] != NULL) {
      assert_int_equal(async_future_free(owned[i]), 0);
    }
  }
  run_to_end(loop);
  assert_int_equal(destroyed, resolved);
  for (int i = 0; i < g_fnext; i++) {
    if (g_fnotified[i] != g_fregistered[i]) {
      fail_msg("future callback %d: registered %d, notified %d", i, g_fregistered[i], g_fnotified[i]);
    }
  }
  return loop;
}

/* Pending futures freed while pending, combinators cancelled (the cleanup
 * paths: cancel hooks, input release). */
static async_loop *sc_futures_cancel(void) {
  async_loop *loop = NULL;
  memset(g_fnotified, 0, sizeof g_fnotified);
  memset(g_fregistered, 0, sizeof g_fregistered);
  g_fnext = 0;
  if (!ok(async_loop_new(&loop))) {
    return NULL;
  }
  async_future *f[2] = {NULL, NULL};
  int nf = 0;
  for (int i = 0; i < 2; i++) {
    if (ok(async_future_new(&f[nf], loop))) {
      add_cb(f[nf]);
      nf++;
    }
  }
  async_future *all = NULL, *tmo = NULL;
  if (nf > 0 && ok(async_future_all(&all, loop, f, (size_t)nf))) {
    add_cb(all);
    assert_int_equal(async_future_cancel(all), 1);
  } else {
    all = NULL;
  }
  if (nf > 0 && ok(async_future_timeout(&tmo, f[0], 1))) {
    add_cb(tmo);
  } else {
    tmo = NULL;
  }
  /* Free everything while (possibly) pending. */
  for (int i = 0; i < nf; i++) {
    assert_int_equal(async_future_free(f[i]), 0);
  }
  if (all != NULL) {
    assert_int_equal(async_future_free(all), 0);
  }
  if (tmo != NULL) {
    assert_int_equal(async_future_free(tmo), 0);
  }
  run_to_end(loop);
  for (int i = 0; i < g_fnext; i++) {
    if (g_fnotified[i] != g_fregistered[i]) {
      fail_msg("future callback %d: registered %d, notified %d", i, g_fregistered[i], g_fnotified[i]);
    }
  }
  return loop;
}

/* Many loops at once (the process-wide loop registry grows). */
#define N_LOOPS 12

static async_loop *sc_many_loops(void) {
  async_loop *loops[N_LOOPS];
  int n = 0;
  for (int i = 0; i < N_LOOPS; i++) {
    if (ok(async_loop_new(&loops[n]))) {
      n++;
    }
  }
  for (int i = 0; i < n; i++) {
    int ran = 0;
    if (ok(async_loop_call_soon(loops[i], tu_count_soon_cb, &ran))) {
      assert_int_equal(async_loop_run(loops[i], ASYNC_RUN_DEFAULT), 0);
      assert_int_equal(ran, 1);
    }
    /* Posts find every registered loop. */
    if (ok(async_loop_post(loops[i], tu_count_soon_cb, &ran))) {
      run_to_end(loops[i]);
    }
  }
  /* Free in an order different from creation. */
  for (int i = n - 1; i >= 0; i -= 2) {
    assert_int_equal(async_loop_free(loops[i]), 0);
  }
  for (int i = n - 2; i >= 0; i -= 2) {
    assert_int_equal(async_loop_free(loops[i]), 0);
  }
  return NULL;
}

/* DNS without a server: literals, localhost, a hosts file, numeric
 * getnameinfo, a lookup left to c-ares against a silent server (a UDP
 * socket nobody reads) that ends at its deadline, and a cancelled one. */
static int g_dns_statuses[8];
static int g_dns_done;

static void dns_cb(async_future *f, int status, void *ud) {
  (void)f;
  int *slot = ud;
  *slot = status;
  g_dns_done++;
}

/* The silent server's socket, opened once per test (not in the scenario:
 * its fd must not vary between runs). */
static int g_hole_fd = -1;
static char g_hole_addr[64];

static async_loop *sc_dns(void) {
  static const char *hosts[] = {"192.0.2.1", "::1", "localhost", "fileonly.test", "silent.test", "cancelled.test"};
  enum { N_LOOKUPS = 6 };
  async_loop *loop = NULL;
  if (!ok(async_loop_new(&loop))) {
    return NULL;
  }
  char hosts_path[512];
  snprintf(hosts_path, sizeof hosts_path, "%s/hosts.txt", DNS_FIXTURE_DIR);
  /* Each setter either applies or reports ENOMEM; without the whole
   * configuration only the lookups that need no DNS run (the others would
   * ask the system's servers). */
  int configured = ok(async_dns_set_servers(loop, g_hole_addr));
  configured &= ok(async_dns_set_hosts_file(loop, hosts_path));
  configured &= ok(async_dns_set_search(loop, "", 1));
  configured &= ok(async_dns_set_timeout(loop, 1000, 1));
  configured &= ok(async_dns_set_deadline(loop, 20));
  int lookups = configured ? N_LOOKUPS : 3;
  async_future *f[N_LOOKUPS + 1];
  int n = 0;
  g_dns_done = 0;
  for (int i = 0; i < lookups; i++) {
    g_dns_statuses[n] = 1;
    if (!ok(async_getaddrinfo(&f[n], loop, hosts[i], "80", AF_UNSPEC, SOCK_STREAM, ASYNC_DNS_CANONNAME))) {
      continue;
    }
    if (!ok(async_future_add_callback(f[n], dns_cb, &g_dns_statuses[n]))) {
      assert_int_equal(async_future_free(f[n]), 0);
      continue;
    }
    if (strcmp(hosts[i], "cancelled.test") == 0) {
      assert_int_equal(async_future_cancel(f[n]), 1);
    }
    n++;
  }
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(80), .sin_addr = {htonl(0xC0000201)}};
  g_dns_statuses[n] = 1;
  if (ok(async_getnameinfo(&f[n], loop, (struct sockaddr *)&sin, sizeof sin, ASYNC_NI_NUMERICHOST | ASYNC_NI_NUMERICSERV))) {
    if (ok(async_future_add_callback(f[n], dns_cb, &g_dns_statuses[n]))) {
      n++;
    } else {
      assert_int_equal(async_future_free(f[n]), 0);
    }
  }
  run_to_end(loop);
  assert_int_equal(g_dns_done, n);
  for (int i = 0; i < n; i++) {
    int st = g_dns_statuses[i];
    if (st != 0 && st != ASYNC_ENOMEM && st != ASYNC_ETIMEDOUT && st != ASYNC_ECANCELED) {
      fail_msg("lookup %d ended with %s", i, async_err_name(st));
    }
    if (st == ASYNC_ENOMEM) {
      g_enomem++;
    }
    assert_int_equal(async_future_free(f[i]), 0);
  }
  return loop;
}

/* A lookup the server answers at once, with allocations failing from
 * inside async_getaddrinfo() on (the record of the socket c-ares opens to
 * send the query included): it ends at once, with its answer or
 * ASYNC_ENOMEM, never at c-ares' timeout. (A failure while c-ares reads
 * the answer is c-ares' own: 1.18 then drops the answer, and the lookup
 * ends at its timeout.) The responder is started once per test (its fds
 * must not vary between runs). */
static struct dnsfx_responder g_resp;
static int g_answered_status;

static async_loop *sc_dns_answered(void) {
  enum { TIMEOUT_MS = 1000 };
  async_loop *loop = NULL;
  if (!ok(async_loop_new(&loop))) {
    return NULL;
  }
  /* Without the whole configuration the lookup would ask the system's servers. */
  int configured = ok(async_dns_set_servers(loop, g_resp.servers));
  configured &= ok(async_dns_set_hosts_file(loop, ""));
  configured &= ok(async_dns_set_search(loop, "", 1));
  configured &= ok(async_dns_set_timeout(loop, TIMEOUT_MS, 1));
  if (!configured) {
    return loop;
  }
  async_future *f = NULL;
  long before = counter_get(&g_c.attempts);
  int started = ok(async_getaddrinfo(&f, loop, "answered.test", NULL, AF_INET, 0, 0));
  long after = counter_get(&g_c.attempts);
  if (!started) {
    return loop;
  }
  long fail_at = counter_get(&g_c.fail_at);
  int failed_in_call = fail_at > before && fail_at <= after;
  g_dns_done = 0;
  g_answered_status = 1;
  if (!ok(async_future_add_callback(f, dns_cb, &g_answered_status))) {
    assert_int_equal(async_future_free(f), 0);
    return loop;
  }
  uint64_t t0 = tu_now_ns();
  run_to_end(loop);
  double elapsed = tu_elapsed_ms(t0);
  assert_int_equal(g_dns_done, 1);
  int st = g_answered_status;
  if (st != 0 && st != ASYNC_ENOMEM && (failed_in_call || st != ASYNC_ETIMEDOUT)) {
    fail_msg("the lookup ended with %s after %.0f ms (allocation %ld failed; the call made %ld to %ld)",
             async_err_name(st), elapsed, fail_at, before + 1, after);
  }
  if (failed_in_call) {
    assert_true(elapsed < TIMEOUT_MS / 2);
  }
  if (st == ASYNC_ENOMEM) {
    g_enomem++;
  }
  assert_int_equal(async_future_free(f), 0);
  return loop;
}

/* ------------------------------------------------------------------ */
/* Tests                                                               */

/* Runs scenario fn with single and with persistent failure injection. */
static void drive_both(const char *name, scenario_fn fn) {
  drive(name, fn, 0);
  drive(name, fn, 1);
}

/* test_inject_NAME: drive_both("NAME", sc_NAME). */
#define INJECT_TEST(name)                        \
  static void test_inject_##name(void **state) { \
    (void)state;                                 \
    drive_both(#name, sc_##name);                \
  }

INJECT_TEST(loop)
INJECT_TEST(many_loops)
INJECT_TEST(call_soon)
INJECT_TEST(post)
INJECT_TEST(timers)
INJECT_TEST(watcher)
INJECT_TEST(hooks)

static void test_inject_signal(void **state) {
  (void)state;
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = usr2_handler;
  sigemptyset(&sa.sa_mask);
  assert_int_equal(sigaction(SIGUSR2, &sa, &old), 0);
  drive_both("signal", sc_signal);
  assert_int_equal(sigaction(SIGUSR2, &old, NULL), 0);
}

INJECT_TEST(futures)
INJECT_TEST(futures_cancel)

/* Streams, a server and a connect: listen, connect, send 100 KiB (more
 * than the socket takes at once, so some is queued), read the echo, close.
 * The accepted side turns on an idle timeout and swaps its protocol for
 * one with other callbacks (both allocate: the timer on first use, a copy
 * of the callbacks its server's streams no longer share); either may fail
 * and the stream goes on with what it had.
 * Every protocol userdata gets exactly one release, whatever failed. */
struct net_side {
  size_t got;
  int released;
  int lost;
  int swapped;
};

static void net_lost(async_stream *s, int err, void *ud);

static size_t net_echo(async_stream *s, const uint8_t *d, size_t n, void *ud) {
  struct net_side *x = ud;
  if (!x->swapped) {
    x->swapped = 1;
    ok(async_stream_set_idle_timeout(s, 60000));
    /* No release: the old protocol's release is the userdata's last. */
    static const async_stream_protocol k_no_release = {
        sizeof(async_stream_protocol), NULL, net_echo, NULL, net_lost, NULL, NULL, NULL, NULL, 0, NULL,
    };
    ok(async_stream_set_protocol(s, &k_no_release, ud));
  }
  async_stream_write(s, d, n); /* ENOMEM aborts the stream: its lost follows */
  return n;
}

static size_t net_count(async_stream *s, const uint8_t *d, size_t n, void *ud) {
  (void)d;
  struct net_side *x = ud;
  x->got += n;
  if (x->got >= 100 * 1024) async_stream_close(s);
  return n;
}

static void net_lost(async_stream *s, int err, void *ud) {
  (void)s;
  (void)err;
  ((struct net_side *)ud)->lost++;
}

static void net_release(void *ud) { ((struct net_side *)ud)->released++; }

static const async_stream_protocol k_net_echo = {
    sizeof(async_stream_protocol), NULL, net_echo, NULL, net_lost, NULL, NULL, NULL, net_release, 0, NULL,
};

static int net_factory(const async_stream_protocol **p, void **ud, async_server *server, void *userdata) {
  (void)server;
  *p = &k_net_echo;
  *ud = userdata;
  return 0;
}

/* Runs until nothing but the server is left, closes it, runs to the end. */
static void run_to_end_with(async_loop *loop, async_server *server) {
  uint64_t t0 = tu_now_ns();
  while (async_server_connection_count(server) > 0 || async_loop_run(loop, ASYNC_RUN_NOWAIT) > 0) {
    if (async_server_connection_count(server) == 0) break;
    async_loop_run(loop, ASYNC_RUN_ONCE);
    assert_true(tu_elapsed_ms(t0) < 10000.0);
  }
  assert_int_equal(async_handle_close(async_server_handle(server), NULL), 0);
  run_to_end(loop);
}

static void zc_count(void *ud) { ++*(int *)ud; }

static async_loop *sc_net(void) {
  static int zc_done, zc_expected;
  zc_done = zc_expected = 0;
  async_loop *loop = NULL;
  if (!ok(async_loop_new(&loop))) {
    return NULL;
  }
  static struct net_side server_side, client;
  memset(&server_side, 0, sizeof server_side);
  memset(&client, 0, sizeof client);
  async_server *server = NULL;
  if (!ok(async_tcp_listen(&server, loop, "127.0.0.1", 0, 0, 0, net_factory, &server_side))) {
    return loop;
  }
  async_stream_protocol proto = ASYNC_STREAM_PROTOCOL_INIT;
  proto.data_received = net_count;
  proto.connection_lost = net_lost;
  proto.release = net_release;
  async_future *f = NULL;
  int connecting = ok(async_tcp_connect(&f, loop, "127.0.0.1", (uint16_t)async_server_port(server), NULL, &proto,
                                        &client));
  if (connecting) {
    int st = async_loop_run_until(loop, f);
    if (st != 0 && st != ASYNC_ENOMEM && st != ASYNC_ECONNRESET) {
      fail_msg("connect ended with %s", async_err_name(st));
    }
    if (st == ASYNC_ENOMEM) {
      g_enomem++;
    }
    void *stream = NULL;
    if (st == 0 && async_future_result(&stream, f) == 0) {
      static uint8_t data[100 * 1024];
      /* ENOMEM aborts the stream; ECLOSED: it was lost already (the
       * server side failed first). Its lost and release follow either way.
       * The second half goes zero-copy: its done runs exactly once if the
       * write succeeded (never inside the call), never if it failed. */
      int rc = async_stream_write(stream, data, sizeof data / 2);
      if (rc != ASYNC_ECLOSED) {
        ok(rc);
      }
      rc = async_stream_write_zc(stream, data + sizeof data / 2, sizeof data / 2, zc_count, &zc_done);
      assert_int_equal(zc_done, 0);
      if (rc != ASYNC_ECLOSED) {
        ok(rc);
      }
      zc_expected = rc == 0;
    }
    assert_int_equal(async_future_free(f), 0);
  } else {
    assert_int_equal(client.released, 0); /* a failed call notifies nothing */
    client.released = 1;
  }
  run_to_end_with(loop, server);
  assert_int_equal(client.released, 1);
  assert_int_equal(zc_done, zc_expected);
  /* The accepted side: one release per connection (after its lost, or
   * alone when its stream could not be created). */
  assert_true(server_side.released <= 1 && server_side.lost <= server_side.released);
  return loop;
}

INJECT_TEST(net)

/* A reconnector against the echo server: it connects (or fails to, and
 * gives up after 3 failed connects), sends, and stops at the echo or at a
 * loss. Its userdata gets exactly one release, whatever failed. */
struct rc_side {
  async_reconnector *rc;
  int released;
};

static void rc_made(async_stream *s, void *ud) {
  (void)ud;
  int rc = async_stream_write(s, "ping", 4);
  if (rc != ASYNC_ECLOSED) ok(rc);
}

static size_t rc_data(async_stream *s, const uint8_t *d, size_t n, void *ud) {
  (void)s;
  (void)d;
  async_reconnector_stop(((struct rc_side *)ud)->rc);
  return n;
}

static void rc_lost(async_stream *s, int err, void *ud) {
  (void)s;
  (void)err;
  async_reconnector_stop(((struct rc_side *)ud)->rc);
}

static void rc_release(void *ud) { ((struct rc_side *)ud)->released++; }

static async_loop *sc_reconnect(void) {
  async_loop *loop = NULL;
  if (!ok(async_loop_new(&loop))) {
    return NULL;
  }
  static struct net_side server_side;
  static struct rc_side client;
  memset(&server_side, 0, sizeof server_side);
  memset(&client, 0, sizeof client);
  async_server *server = NULL;
  if (!ok(async_tcp_listen(&server, loop, "127.0.0.1", 0, 0, 0, net_factory, &server_side))) {
    return loop;
  }
  const async_stream_protocol proto = {
      sizeof(async_stream_protocol), rc_made, rc_data, NULL, rc_lost, NULL, NULL, NULL, rc_release, 0, NULL,
  };
  async_reconnect_options o = ASYNC_RECONNECT_OPTIONS_INIT;
  o.initial_delay_ms = 1;
  o.max_attempts = 3;
  if (ok(async_reconnector_start(&client.rc, loop, "127.0.0.1", (uint16_t)async_server_port(server), &o, &proto,
                                 &client))) {
    uint64_t t0 = tu_now_ns();
    while (!client.released) {
      async_loop_run(loop, ASYNC_RUN_ONCE);
      assert_true(tu_elapsed_ms(t0) < 10000.0);
    }
  } else {
    assert_int_equal(client.released, 0); /* a failed call notifies nothing */
    client.released = 1;
  }
  run_to_end_with(loop, server);
  assert_int_equal(client.released, 1);
  return loop;
}

INJECT_TEST(reconnect)


/* Datagrams: two UDP transports (the receiver pauses inside its first
 * delivery, so the rest of the batch is held in allocated entries, then
 * resumes), a send error recorded for later (an oversize datagram), and an
 * adopted Unix socket whose full send buffer makes sends queue, closed
 * with the queue still full (flushed while the peer reads). Every
 * userdata gets exactly one release; ASYNC_ENOMEM comes back from a call
 * or through error_received. */
struct dg_side {
  int received;
  int errors;
  int lost;
  int released;
  int pause_first;
};

static void dg_recv(async_datagram *d, const uint8_t *data, size_t len, const struct sockaddr *addr,
                    size_t addrlen, void *ud) {
  (void)data;
  (void)len;
  (void)addr;
  (void)addrlen;
  struct dg_side *x = ud;
  if (x->received++ == 0 && x->pause_first) async_datagram_pause_reading(d);
}

static void dg_error(async_datagram *d, int err, void *ud) {
  (void)d;
  if (err == ASYNC_ENOMEM) g_enomem++;
  ((struct dg_side *)ud)->errors++;
}

static void dg_lost(async_datagram *d, int err, void *ud) {
  (void)d;
  (void)err;
  ((struct dg_side *)ud)->lost++;
}

static void dg_release(void *ud) { ((struct dg_side *)ud)->released++; }

static const async_datagram_protocol k_dg = {
    sizeof(async_datagram_protocol), NULL, dg_recv, dg_error, dg_lost, NULL, NULL, dg_release,
};

/* Runs the loop (bounded) until done() holds, reading and dropping what
 * arrives on fd, if >= 0. */
static void dg_run(async_loop *loop, int fd, int (*done)(void)) {
  uint64_t t0 = tu_now_ns();
  char buf[2048];
  while (!done()) {
    assert_true(tu_elapsed_ms(t0) < 10000.0);
    while (fd >= 0 && recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0) {
    }
    async_loop_run(loop, ASYNC_RUN_NOWAIT);
  }
}

static struct dg_side g_rx, g_tx, g_ux;
static int g_dg_sent, g_dg_have_u;

static int dg_first_delivered(void) { return g_rx.received > 0 || g_dg_sent == 0; }
static int dg_all_delivered(void) {
  return (g_rx.received == g_dg_sent || g_rx.errors > 0) && g_ux.released == g_dg_have_u;
}

static async_loop *sc_datagram(void) {
  async_loop *loop = sc_loop_new();
  if (loop == NULL) {
    return NULL;
  }
  memset(&g_rx, 0, sizeof g_rx);
  memset(&g_tx, 0, sizeof g_tx);
  memset(&g_ux, 0, sizeof g_ux);
  g_rx.pause_first = 1;
  async_datagram *r = NULL, *t = NULL, *u = NULL;
  async_udp_options o = ASYNC_UDP_OPTIONS_INIT;
  o.local_address = "127.0.0.1:0";
  int have_rx = ok(async_udp_open(&r, loop, &o, &k_dg, &g_rx));
  int have_tx = 0;
  if (have_rx) {
    struct sockaddr_storage ss;
    int len = async_datagram_sockname((struct sockaddr *)&ss, sizeof ss, r);
    char addr[ASYNC_ADDR_STRLEN];
    assert_true(len > 0 && async_addr_format(addr, sizeof addr, (struct sockaddr *)&ss, (size_t)len, 0) > 0);
    o.local_address = NULL;
    o.remote_address = addr;
    have_tx = ok(async_udp_open(&t, loop, &o, &k_dg, &g_tx));
  }
  /* Sent before the receiver reads: one batch, mostly held. */
  g_dg_sent = 0;
  if (have_tx) {
    static uint8_t big[70000];
    for (int i = 0; i < 8; i++) {
      ok(async_datagram_send(t, "datagram", 8, NULL, 0)); /* the fast path: nothing to allocate */
    }
    g_dg_sent = 8;
    ok(async_datagram_send(t, big, sizeof big, NULL, 0)); /* its error is recorded for later */
  }
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
  int small = 4096;
  assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
  g_dg_have_u = ok(async_datagram_adopt(&u, loop, sv[0], &k_dg, &g_ux));
  if (!g_dg_have_u) {
    close(sv[0]);
  }
  dg_run(loop, -1, dg_first_delivered);
  if (g_dg_have_u) {
    static uint8_t chunk[1000];
    for (int i = 0; i < 40; i++) {
      ok(async_datagram_send(u, chunk, sizeof chunk, NULL, 0)); /* the later ones queue */
    }
    assert_int_equal(async_datagram_close(u), 0); /* flushed while the peer reads */
  }
  if (have_rx) {
    assert_int_equal(async_datagram_resume_reading(r), 0);
  }
  /* Every datagram comes, unless holding one ran out of memory (said). */
  dg_run(loop, sv[1], dg_all_delivered);
  assert_true(g_rx.received == g_dg_sent || (g_rx.errors > 0 && g_rx.received < g_dg_sent));
  if (have_rx) {
    assert_int_equal(async_datagram_close(r), 0);
  }
  if (have_tx) {
    assert_int_equal(async_datagram_close(t), 0);
  }
  close(sv[1]);
  run_to_end(loop);
  assert_int_equal(g_rx.released, have_rx);
  assert_int_equal(g_tx.released, have_tx);
  assert_int_equal(g_ux.released, g_dg_have_u);
  assert_int_equal(g_rx.lost + g_tx.lost + g_ux.lost, have_rx + have_tx + g_dg_have_u);
  return loop;
}

INJECT_TEST(datagram)

static void test_inject_dns(void **state) {
  (void)state;
  g_hole_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  assert_true(g_hole_fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr = {htonl(INADDR_LOOPBACK)}};
  socklen_t len = sizeof a;
  assert_int_equal(bind(g_hole_fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(getsockname(g_hole_fd, (struct sockaddr *)&a, &len), 0);
  snprintf(g_hole_addr, sizeof g_hole_addr, "127.0.0.1:%u", ntohs(a.sin_port));
  drive_both("dns", sc_dns);
  close(g_hole_fd);
}

static void test_inject_dns_answered(void **state) {
  (void)state;
  struct dnsfx_family a = {"192.0.2.1", 0};
  struct dnsfx_family aaaa = {NULL, -1};
  assert_int_equal(dnsfx_responder_start(&g_resp, &a, &aaaa), 0);
  drive_both("dns_answered", sc_dns_answered);
  dnsfx_responder_stop(&g_resp);
}

/* The hook really receives the library's allocations, and they are all
 * given back. */
static void test_allocator_is_used(void **state) {
  (void)state;
  counter_reset(0, 0);
  assert_int_equal(async_set_allocator(count_realloc, &g_c), 0);
  async_loop *loop = tu_loop_new();
  long live_loop = counter_get(&g_c.live);
  assert_true(live_loop > 0);
  async_timer *t = tu_timer_new(loop, NULL);
  assert_true(counter_get(&g_c.live) > live_loop);
  tu_close(async_timer_handle(t));
  tu_finish(loop);
  assert_int_equal(counter_get(&g_c.live), 0);
  assert_int_equal(counter_get(&g_c.bad_frees), 0);
  assert_int_equal(async_set_allocator(NULL, NULL), 0);
}

/* async_set_allocator while a loop exists -> EBUSY (the old one stays). */
static void test_set_allocator_busy(void **state) {
  (void)state;
  counter_reset(0, 0);
  async_loop *loop = tu_loop_new(); /* default allocator */
  assert_int_equal(async_set_allocator(count_realloc, &g_c), ASYNC_EBUSY);
  async_timer *t = tu_timer_new(loop, NULL);
  assert_int_equal(counter_get(&g_c.calls), 0); /* not installed */
  tu_close(async_timer_handle(t));
  tu_finish(loop);
  assert_int_equal(async_set_allocator(count_realloc, &g_c), 0);

  /* With the hook installed: busy again while a loop lives. */
  loop = tu_loop_new();
  assert_int_equal(async_set_allocator(NULL, NULL), ASYNC_EBUSY);
  assert_int_equal(async_set_allocator(count_realloc, &g_c), ASYNC_EBUSY);
  tu_finish(loop);
  assert_int_equal(counter_get(&g_c.live), 0);
  assert_int_equal(async_set_allocator(NULL, NULL), 0);
}

/* NULL restores the C library's allocator: the hook sees nothing more. */
static void test_allocator_null_restores_default(void **state) {
  (void)state;
  counter_reset(0, 0);
  assert_int_equal(async_set_allocator(count_realloc, &g_c), 0);
  async_loop *loop = tu_loop_new();
  tu_finish(loop);
  long calls = counter_get(&g_c.calls);
  assert_true(calls > 0);
  assert_int_equal(async_set_allocator(NULL, NULL), 0);
  loop = tu_loop_new();
  async_timer *t = tu_timer_new(loop, NULL);
  async_future *f = NULL;
  assert_int_equal(async_future_new(&f, loop), 0);
  assert_int_equal(async_future_free(f), 0);
  tu_close(async_timer_handle(t));
  tu_finish(loop);
  assert_int_equal(counter_get(&g_c.calls), calls);
  /* Installing the default twice is fine. */
  assert_int_equal(async_set_allocator(NULL, NULL), 0);
}

/* async_free(NULL) is a no-op (with and without a hook installed). */
static void test_async_free_null(void **state) {
  (void)state;
  async_free(NULL);
  counter_reset(0, 0);
  assert_int_equal(async_set_allocator(count_realloc, &g_c), 0);
  async_free(NULL);
  assert_int_equal(counter_get(&g_c.calls), 0);
  assert_int_equal(async_set_allocator(NULL, NULL), 0);
}

/* The hook's userdata is passed to every call. */
static void *ud_check_realloc(void *ptr, size_t size, void *ud) {
  if (ud != &g_c) {
    abort();
  }
  return count_realloc(ptr, size, ud);
}

static void test_allocator_userdata(void **state) {
  (void)state;
  counter_reset(0, 0);
  assert_int_equal(async_set_allocator(ud_check_realloc, &g_c), 0);
  async_loop *loop = tu_loop_new();
  assert_int_equal(async_loop_call_soon(loop, tu_count_soon_cb, &(int){0}), 0);
  tu_finish(loop);
  assert_true(counter_get(&g_c.calls) > 0);
  assert_int_equal(counter_get(&g_c.live), 0);
  assert_int_equal(async_set_allocator(NULL, NULL), 0);
}

/* One connection to the echo server at port from a plain socket: a
 * message and its echo, then the client's close and the accepted
 * stream's connection_lost (counted in *lost). */
static void echo_round(async_loop *loop, uint16_t port, int *lost) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(write(fd, "ping", 4), 4);
  char echo[4];
  uint64_t t0 = tu_now_ns();
  while (recv(fd, echo, sizeof echo, MSG_DONTWAIT) != 4) {
    async_loop_run(loop, ASYNC_RUN_NOWAIT);
    assert_true(tu_elapsed_ms(t0) < 3000.0);
  }
  assert_memory_equal(echo, "ping", 4);
  close(fd);
  tu_run_until(loop, lost, *lost + 1, 3000);
}

/* Under AddressSanitizer the library keeps no freed block for reuse (so
 * use after free stays visible): every stream is an allocation. */
#if defined(__SANITIZE_ADDRESS__)
#define REUSES_BLOCKS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define REUSES_BLOCKS 0
#endif
#endif
#ifndef REUSES_BLOCKS
#define REUSES_BLOCKS 1
#endif

/* Connection churn allocates nothing once warm: an accepted stream that
 * has ended leaves its memory to the loop for the next one. */
static void test_accepted_streams_reuse_memory(void **state) {
  (void)state;
  counter_reset(0, 0);
  assert_int_equal(async_set_allocator(count_realloc, &g_c), 0);
  async_loop *loop = tu_loop_new();
  int lost = 0;
  async_server *server = NULL;
  assert_int_equal(async_tcp_listen(&server, loop, "127.0.0.1", 0, 0, 0, tu_echo_factory, &lost), 0);
  uint16_t port = (uint16_t)async_server_port(server);
  echo_round(loop, port, &lost); /* the loop's read buffer, the protocol's record, libev's tables */
  long attempts = counter_get(&g_c.attempts);
  for (int i = 0; i < 3; ++i) echo_round(loop, port, &lost);
  if (REUSES_BLOCKS) assert_int_equal(counter_get(&g_c.attempts), attempts);
  tu_server_close(loop, server);
  tu_finish(loop);
  assert_int_equal(counter_get(&g_c.live), 0);
  assert_int_equal(counter_get(&g_c.bad_frees), 0);
  assert_int_equal(async_set_allocator(NULL, NULL), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_accepted_streams_reuse_memory, teardown_restore),
      cmocka_unit_test_teardown(test_allocator_is_used, teardown_restore),
      cmocka_unit_test_teardown(test_set_allocator_busy, teardown_restore),
      cmocka_unit_test_teardown(test_allocator_null_restores_default, teardown_restore),
      cmocka_unit_test_teardown(test_async_free_null, teardown_restore),
      cmocka_unit_test_teardown(test_allocator_userdata, teardown_restore),
      cmocka_unit_test_teardown(test_inject_loop, teardown_restore),
      cmocka_unit_test_teardown(test_inject_many_loops, teardown_restore),
      cmocka_unit_test_teardown(test_inject_call_soon, teardown_restore),
      cmocka_unit_test_teardown(test_inject_post, teardown_restore),
      cmocka_unit_test_teardown(test_inject_timers, teardown_restore),
      cmocka_unit_test_teardown(test_inject_watcher, teardown_restore),
      cmocka_unit_test_teardown(test_inject_hooks, teardown_restore),
      cmocka_unit_test_teardown(test_inject_signal, teardown_restore),
      cmocka_unit_test_teardown(test_inject_futures, teardown_restore),
      cmocka_unit_test_teardown(test_inject_futures_cancel, teardown_restore),
      cmocka_unit_test_teardown(test_inject_dns, teardown_restore),
      cmocka_unit_test_teardown(test_inject_dns_answered, teardown_restore),
      cmocka_unit_test_teardown(test_inject_net, teardown_restore),
      cmocka_unit_test_teardown(test_inject_reconnect, teardown_restore),
      cmocka_unit_test_teardown(test_inject_datagram, teardown_restore),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
