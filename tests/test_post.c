/*
 * async_loop_post / async_loop_wakeup: the only calls allowed from any
 * thread (async/loop.h; DESIGN.md §3; libuv's async tests translated).
 * Every thread a test starts is joined before the test ends.
 */
#include "test_util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Keepalive: a referenced long timer keeps run(DEFAULT) going while the
 * posts arrive; its callback firing means the posts never came (fail).   */

static void keepalive_expired(async_timer *t, void *ud) {
  (void)t;
  (*(int *)ud)++;
}

/* ------------------------------------------------------------------ */
/* 100000 posts from one thread: exactly N, in order                    */

#define N_POSTS 100000

struct single {
  async_loop *loop;
  async_timer *keepalive;
  int expired;
  long received;
  long out_of_order;
  long post_errors;
  int wrong_thread;
  pthread_t loop_thread;
};

static struct single *g_single;

static void single_cb(async_loop *loop, void *ud) {
  (void)loop;
  struct single *s = g_single;
  uintptr_t seq = (uintptr_t)ud;
  if ((long)seq != s->received) {
    s->out_of_order++;
  }
  if (!pthread_equal(pthread_self(), s->loop_thread)) {
    s->wrong_thread++;
  }
  s->received++;
  if (s->received == N_POSTS) {
    async_timer_stop(s->keepalive);
  }
}

static void *single_poster(void *arg) {
  struct single *s = arg;
  for (uintptr_t i = 0; i < N_POSTS; i++) {
    if (async_loop_post(s->loop, single_cb, (void *)i) != 0) {
      s->post_errors++;
    }
  }
  return NULL;
}

static void test_post_100000_in_order(void **state) {
  (void)state;
  struct single s;
  memset(&s, 0, sizeof s);
  g_single = &s;
  s.loop = tu_loop_new();
  s.loop_thread = pthread_self();
  s.keepalive = tu_timer_start(s.loop, &s.expired, 20000, 0, keepalive_expired);

  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, single_poster, &s), 0);
  assert_int_equal(async_loop_run(s.loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(pthread_join(th, NULL), 0);

  assert_int_equal(s.expired, 0);
  assert_int_equal(s.post_errors, 0);
  assert_int_equal(s.received, N_POSTS);
  assert_int_equal(s.out_of_order, 0);
  assert_int_equal(s.wrong_thread, 0);
  /* Nothing more arrives. */
  assert_int_equal(async_loop_run(s.loop, ASYNC_RUN_NOWAIT), 0);
  assert_int_equal(s.received, N_POSTS);
  tu_close(async_timer_handle(s.keepalive));
  tu_finish(s.loop);
  g_single = NULL;
}

/* ------------------------------------------------------------------ */
/* Several threads at once                                              */

#define N_THREADS 4
#define N_PER_THREAD 25000

struct multi {
  async_loop *loop;
  async_timer *keepalive;
  int expired;
  long received;
  long next[N_THREADS];
  long out_of_order;
  atomic_long post_errors;
};

struct multi_arg {
  struct multi *m;
  uintptr_t tid;
};

static struct multi *g_multi;

static void multi_cb(async_loop *loop, void *ud) {
  (void)loop;
  struct multi *m = g_multi;
  uintptr_t v = (uintptr_t)ud;
  uintptr_t tid = v / 1000000u, seq = v % 1000000u;
  if (tid >= N_THREADS || (long)seq != m->next[tid]) {
    m->out_of_order++;
  } else {
    m->next[tid]++;
  }
  m->received++;
  if (m->received == (long)N_THREADS * N_PER_THREAD) {
    async_timer_stop(m->keepalive);
  }
}

static void *multi_poster(void *arg) {
  struct multi_arg *a = arg;
  for (uintptr_t i = 0; i < N_PER_THREAD; i++) {
    if (async_loop_post(a->m->loop, multi_cb, (void *)(a->tid * 1000000u + i)) != 0) {
      atomic_fetch_add(&a->m->post_errors, 1);
    }
  }
  return NULL;
}

static void test_post_many_threads(void **state) {
  (void)state;
  struct multi m;
  memset(&m, 0, sizeof m);
  atomic_init(&m.post_errors, 0);
  g_multi = &m;
  m.loop = tu_loop_new();
  m.keepalive = tu_timer_start(m.loop, &m.expired, 20000, 0, keepalive_expired);

  pthread_t th[N_THREADS];
  struct multi_arg args[N_THREADS];
  for (int i = 0; i < N_THREADS; i++) {
    args[i].m = &m;
    args[i].tid = (uintptr_t)i;
    assert_int_equal(pthread_create(&th[i], NULL, multi_poster, &args[i]), 0);
  }
  assert_int_equal(async_loop_run(m.loop, ASYNC_RUN_DEFAULT), 0);
  for (int i = 0; i < N_THREADS; i++) {
    assert_int_equal(pthread_join(th[i], NULL), 0);
  }
  assert_int_equal(m.expired, 0);
  assert_int_equal(atomic_load(&m.post_errors), 0);
  assert_int_equal(m.received, (long)N_THREADS * N_PER_THREAD);
  assert_int_equal(m.out_of_order, 0);
  for (int i = 0; i < N_THREADS; i++) {
    assert_int_equal(m.next[i], N_PER_THREAD);
  }
  tu_close(async_timer_handle(m.keepalive));
  tu_finish(m.loop);
  g_multi = NULL;
}

/* ------------------------------------------------------------------ */
/* A post wakes a loop blocked in poll                                  */

struct wake {
  async_loop *loop;
  uint64_t delay_ms;
  int use_wakeup; /* 1: async_loop_wakeup, 0: async_loop_post */
  atomic_ullong sent_ns;
  int rc;
  int got;
  uint64_t got_ns;
};

static void wake_cb(async_loop *loop, void *ud) {
  (void)loop;
  struct wake *w = ud;
  w->got++;
  w->got_ns = tu_now_ns();
}

static void *wake_thread(void *arg) {
  struct wake *w = arg;
  tu_sleep_ms(w->delay_ms);
  atomic_store(&w->sent_ns, tu_now_ns());
  if (w->use_wakeup) {
    w->rc = async_loop_wakeup(w->loop);
  } else {
    w->rc = async_loop_post(w->loop, wake_cb, w);
  }
  return NULL;
}

/* A fresh loop in w (a 60 ms delay, post or wakeup as use_wakeup says)
 * kept alive by a 5 s timer counting into *expired, which it returns. */
static async_timer *wake_init(struct wake *w, int use_wakeup, int *expired) {
  memset(w, 0, sizeof *w);
  atomic_init(&w->sent_ns, 0);
  w->loop = tu_loop_new();
  w->delay_ms = 60;
  w->use_wakeup = use_wakeup;
  return tu_timer_start(w->loop, expired, 5000, 0, keepalive_expired);
}

static void test_post_wakes_blocked_poll(void **state) {
  (void)state;
  struct wake w;
  int expired = 0;
  async_timer *keep = wake_init(&w, 0, &expired);

  pthread_t th;
  uint64_t t0 = tu_now_ns();
  assert_int_equal(pthread_create(&th, NULL, wake_thread, &w), 0);
  /* ONCE blocks (5 s timer); the post must end the block promptly. */
  int runs = 0;
  while (w.got == 0 && runs < 10 && tu_elapsed_ms(t0) < 3000.0) {
    assert_int_equal(async_loop_run(w.loop, ASYNC_RUN_ONCE), 1);
    runs++;
  }
  assert_int_equal(pthread_join(th, NULL), 0);
  assert_int_equal(w.rc, 0);
  assert_int_equal(w.got, 1);
  assert_int_equal(expired, 0);
  double latency = (double)(w.got_ns - atomic_load(&w.sent_ns)) / 1e6;
  assert_true(latency < 300.0);
  assert_true(tu_elapsed_ms(t0) >= (double)w.delay_ms);
  assert_true(runs <= 3);
  tu_close(async_timer_handle(keep));
  tu_finish(w.loop);
}

/* async_loop_wakeup from another thread ends a blocked run(ONCE). */
static void test_wakeup_blocked_run_once(void **state) {
  (void)state;
  struct wake w;
  int expired = 0;
  async_timer *keep = wake_init(&w, 1, &expired);

  pthread_t th;
  uint64_t t0 = tu_now_ns();
  assert_int_equal(pthread_create(&th, NULL, wake_thread, &w), 0);
  assert_int_equal(async_loop_run(w.loop, ASYNC_RUN_ONCE), 1);
  double el = tu_elapsed_ms(t0);
  assert_int_equal(pthread_join(th, NULL), 0);
  assert_int_equal(w.rc, 0);
  assert_int_equal(expired, 0);
  assert_true(el < 2000.0);
  /* A wakeup queues nothing. */
  assert_int_equal(w.got, 0);
  uint64_t cbs = tu_metric(w.loop, ASYNC_METRIC_CALLBACKS);
  assert_int_equal(cbs, 0);

  /* From the loop thread itself, outside run: the next ONCE does not block. */
  assert_int_equal(async_loop_wakeup(w.loop), 0);
  uint64_t t1 = tu_now_ns();
  assert_int_equal(async_loop_run(w.loop, ASYNC_RUN_ONCE), 1);
  assert_true(tu_elapsed_ms(t1) < 2000.0);
  assert_int_equal(expired, 0);

  assert_int_equal(async_loop_wakeup(NULL), ASYNC_EINVAL);
  tu_close(async_timer_handle(keep));
  tu_finish(w.loop);
}

/* ------------------------------------------------------------------ */
/* A loop that never waits: a call_soon chain, no fd watched. Its polls
 * are skipped (docs/design.md, One loop iteration); a post must still
 * arrive within a few iterations, and every iteration is counted.       */

struct spin {
  struct wake w;
  uint64_t chained;
  uint64_t chained_at_post; /* the chain's length when the post ran */
  uint64_t deadline_ns;
};

static void spin_post_cb(async_loop *loop, void *ud) {
  (void)loop;
  struct spin *s = ud;
  s->w.got++;
  s->chained_at_post = s->chained;
}

static void *spin_thread(void *arg) {
  struct spin *s = arg;
  tu_sleep_ms(s->w.delay_ms);
  s->w.rc = async_loop_post(s->w.loop, spin_post_cb, s);
  return NULL;
}

static void spin_chain_cb(async_loop *loop, void *ud) {
  struct spin *s = ud;
  s->chained++;
  /* Ends the chain a few iterations after the post ran, or at the deadline
   * (then the test fails below). */
  if (s->w.got ? s->chained - s->chained_at_post >= 10 : tu_now_ns() >= s->deadline_ns) return;
  assert_int_equal(async_loop_call_soon(loop, spin_chain_cb, s), 0);
}

static void test_post_reaches_spinning_loop(void **state) {
  (void)state;
  struct spin s;
  memset(&s, 0, sizeof s);
  s.w.loop = tu_loop_new();
  s.w.delay_ms = 30;
  s.deadline_ns = tu_now_ns() + 3000000000u;
  uint64_t iterations0 = tu_metric(s.w.loop, ASYNC_METRIC_ITERATIONS);
  assert_int_equal(async_loop_call_soon(s.w.loop, spin_chain_cb, &s), 0);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, spin_thread, &s), 0);
  assert_int_equal(async_loop_run(s.w.loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(pthread_join(th, NULL), 0);
  assert_int_equal(s.w.rc, 0);
  assert_int_equal(s.w.got, 1);
  assert_true(tu_now_ns() < s.deadline_ns);
  /* One chained callback per iteration, skipped polls counted too. */
  assert_true(tu_metric(s.w.loop, ASYNC_METRIC_ITERATIONS) - iterations0 >= s.chained);
  tu_finish(s.w.loop);
}

/* ------------------------------------------------------------------ */
/* Freed loops                                                          */

static void never_cb(async_loop *loop, void *ud) {
  (void)loop;
  (*(int *)ud)++;
}

static void test_post_freed_loop(void **state) {
  (void)state;
  int n = 0;
  async_loop *loop = tu_loop_new();
  assert_int_equal(async_loop_post(NULL, never_cb, &n), ASYNC_EINVAL);
  assert_int_equal(async_loop_post(loop, NULL, &n), ASYNC_EINVAL);
  /* A post from the loop's own thread works too. */
  assert_int_equal(async_loop_post(loop, never_cb, &n), 0);
  assert_int_equal(n, 0);
  /* A pending post makes free fail; run drains it. */
  assert_int_equal(async_loop_free(loop), ASYNC_EBUSY);
  assert_int_equal(n, 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(n, 1);
  assert_int_equal(async_loop_free(loop), 0);
  /* The address only is compared: no new loop was created meanwhile. */
  assert_int_equal(async_loop_post(loop, never_cb, &n), ASYNC_ECLOSED);
  assert_int_equal(async_loop_wakeup(loop), ASYNC_ECLOSED);
  assert_int_equal(n, 1);
}

/* A thread posts in a tight loop while the main thread drains and frees. */

struct race {
  async_loop *loop;
  atomic_long posted;   /* successful posts */
  atomic_long closed;   /* ASYNC_ECLOSED returns (the thread stops at the first) */
  atomic_long other;    /* any other return value: a bug */
  atomic_int stop;      /* emergency brake */
  unsigned burst_mask;  /* the poster pauses after each burst_mask+1 posts */
  long ran;             /* callbacks run (loop thread) */
};

static void race_cb(async_loop *loop, void *ud) {
  (void)loop;
  ((struct race *)ud)->ran++;
}

static void *race_poster(void *arg) {
  struct race *r = arg;
  unsigned i = 0;
  while (!atomic_load(&r->stop)) {
    int rc = async_loop_post(r->loop, race_cb, r);
    if (rc == 0) {
      atomic_fetch_add(&r->posted, 1);
    } else if (rc == ASYNC_ECLOSED) {
      atomic_fetch_add(&r->closed, 1);
      break;
    } else {
      atomic_fetch_add(&r->other, 1);
      break;
    }
    /* Mostly tight; a short pause now and then gives free a window. */
    if ((++i & r->burst_mask) == 0) {
      struct timespec ts = {0, 20000};
      nanosleep(&ts, NULL);
    }
  }
  return NULL;
}

static void test_post_races_free(void **state) {
  (void)state;
  for (int round = 0; round < 20; round++) {
    struct race r;
    memset(&r, 0, sizeof r);
    atomic_init(&r.posted, 0);
    atomic_init(&r.closed, 0);
    atomic_init(&r.other, 0);
    atomic_init(&r.stop, 0);
    static const unsigned masks[] = {63u, 4095u, 7u, 1023u};
    r.burst_mask = masks[round % 4];
    r.loop = tu_loop_new();
    async_loop *loop = r.loop;

    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, race_poster, &r), 0);
    /* Let posts flow for a few ms (and at least a few posts arrive). */
    uint64_t t0 = tu_now_ns();
    while (tu_elapsed_ms(t0) < 3.0 ||
           (atomic_load(&r.posted) < 100 && tu_elapsed_ms(t0) < 3000.0)) {
      int rc = async_loop_run(loop, ASYNC_RUN_NOWAIT);
      assert_true(rc == 0 || rc == 1);
    }
    /* Stop, drain, free: free is EBUSY while posts are pending. */
    assert_int_equal(async_loop_stop(loop), 0);
    int rc = async_loop_run(loop, ASYNC_RUN_NOWAIT);
    assert_true(rc == 0 || rc == 1);
    int freed = 0, busy = 0;
    uint64_t t1 = tu_now_ns();
    while (tu_elapsed_ms(t1) < 5000.0) {
      rc = async_loop_free(loop);
      if (rc == 0) {
        freed = 1;
        break;
      }
      if (rc != ASYNC_EBUSY) {
        break;
      }
      busy++;
      rc = async_loop_run(loop, ASYNC_RUN_NOWAIT);
      if (rc != 0 && rc != 1) {
        break;
      }
    }
    if (!freed) {
      /* Clean up before failing, so no thread outlives the test. */
      atomic_store(&r.stop, 1);
      pthread_join(th, NULL);
      while (async_loop_free(loop) == ASYNC_EBUSY) {
        async_loop_run(loop, ASYNC_RUN_NOWAIT);
      }
      fail_msg("round %d: async_loop_free never succeeded (last rc %d)", round, rc);
    }
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(atomic_load(&r.other), 0);
    assert_int_equal(atomic_load(&r.closed), 1);
    /* Every post that succeeded ran exactly once before the free. */
    assert_int_equal(r.ran, atomic_load(&r.posted));
    assert_true(r.posted > 0);
    if (getenv("TU_VERBOSE")) print_message("round %d posted %ld busy %d\n", round, (long)atomic_load(&r.posted), busy);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_post_100000_in_order),
      cmocka_unit_test(test_post_many_threads),
      cmocka_unit_test(test_post_wakes_blocked_poll),
      cmocka_unit_test(test_wakeup_blocked_run_once),
      cmocka_unit_test(test_post_reaches_spinning_loop),
      cmocka_unit_test(test_post_freed_loop),
      cmocka_unit_test(test_post_races_free),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
