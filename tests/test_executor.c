/*
 * The executor hook (async/executor.h): async_loop_set_executor,
 * async_run_in_executor, async_job_run, async_job_discard. Written against
 * the header's contract: results on the loop's thread in the order the
 * jobs finished, never inside the call that scheduled them; cancellation
 * before start and while running; destroy exactly once, on the loop's
 * thread; shutdown and free with jobs out; the executor's release; bad
 * input. The executors are the test's own: a "manual" one that only keeps
 * the jobs (the test runs them, on threads of its own) and a small pthread
 * pool. Every thread a test starts is joined before the test ends.
 */
#include "test_util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

static pthread_t g_loop_thread;

/* ---- work and destroy functions ------------------------------------- */

/* A job's userdata: what the work and destroy saw. */
struct work {
  uintptr_t input;
  atomic_int ran;
  int status; /* what the work returns */
  /* When set, the work announces it started and waits for the gate. */
  atomic_int *started;
  atomic_int *gate;
  int destroyed;
  int destroyed_off_thread;
  void *destroyed_value;
};

static int square_work(void **out_value, void *ud) {
  struct work *w = ud;
  atomic_fetch_add(&w->ran, 1);
  if (w->started) atomic_fetch_add(w->started, 1);
  while (w->gate && !atomic_load(w->gate)) tu_sleep_ms(1);
  uintptr_t *value = malloc(sizeof *value);
  *value = w->input * w->input;
  *out_value = value;
  return w->status;
}

static void work_destroy(void *value, void *ud) {
  struct work *w = ud;
  w->destroyed++;
  if (!pthread_equal(pthread_self(), g_loop_thread)) w->destroyed_off_thread++;
  w->destroyed_value = value;
  free(value);
}

/* ---- a manual executor: keeps jobs for the test to run or discard ---- */

#define MANUAL_MAX 16

struct manual {
  async_job *jobs[MANUAL_MAX];
  int count;
  int refuse; /* submit returns this when negative */
  int released;
};

static int manual_submit(async_job *job, void *ud) {
  struct manual *m = ud;
  if (m->refuse < 0) return m->refuse;
  m->jobs[m->count++] = job;
  return 0;
}

static void manual_release(void *ud) { ((struct manual *)ud)->released++; }

static void *job_run_thread(void *job) {
  return (void *)(intptr_t)async_job_run(job);
}

/* async_job_run(job) on a thread of its own; its result. */
static int run_on_thread(async_job *job) {
  pthread_t t;
  void *rc = NULL;
  assert_int_equal(pthread_create(&t, NULL, job_run_thread, job), 0);
  assert_int_equal(pthread_join(t, &rc), 0);
  return (int)(intptr_t)rc;
}

/* ---- done callbacks -------------------------------------------------- */

struct done_log {
  int order[MANUAL_MAX];
  int status[MANUAL_MAX];
  int count;
  int off_thread;
};

static struct done_log *g_done;

static void log_done(async_future *f, int status, void *ud) {
  (void)f;
  g_done->order[g_done->count] = (int)(intptr_t)ud;
  g_done->status[g_done->count] = status;
  g_done->count++;
  if (!pthread_equal(pthread_self(), g_loop_thread)) g_done->off_thread++;
}

static async_loop *loop_with(struct manual *m) {
  async_loop *loop = tu_loop_new();
  assert_int_equal(async_loop_set_executor(loop, manual_submit, manual_release, m), 0);
  return loop;
}

static async_future *run_work(async_loop *loop, struct work *w) {
  async_future *f = NULL;
  assert_int_equal(async_run_in_executor(&f, loop, square_work, w, work_destroy), 0);
  assert_non_null(f);
  return f;
}

static void setup_thread(void) { g_loop_thread = pthread_self(); }

/* ---- tests ------------------------------------------------------------- */

static void test_enotsup_without_executor(void **state) {
  (void)state;
  setup_thread();
  async_loop *loop = tu_loop_new();
  async_future *f = NULL;
  struct work w = {.input = 3};
  assert_int_equal(async_run_in_executor(&f, loop, square_work, &w, work_destroy), ASYNC_ENOTSUP);
  assert_null(f);
  /* Clearing a loop that has none is fine; after a clear it is ENOTSUP
   * again, and the cleared executor was released exactly once. */
  assert_int_equal(async_loop_set_executor(loop, NULL, NULL, NULL), 0);
  struct manual m = {0};
  assert_int_equal(async_loop_set_executor(loop, manual_submit, manual_release, &m), 0);
  assert_int_equal(async_loop_set_executor(loop, NULL, NULL, NULL), 0);
  assert_int_equal(m.released, 1);
  assert_int_equal(async_run_in_executor(&f, loop, square_work, &w, work_destroy), ASYNC_ENOTSUP);
  assert_int_equal(atomic_load(&w.ran), 0);
  assert_int_equal(w.destroyed, 0);
  assert_int_equal(m.released, 1);
  tu_finish(loop);
  assert_int_equal(m.released, 1);
  assert_string_equal(async_err_name(ASYNC_ENOTSUP), "ASYNC_ENOTSUP");
}

static void test_result_on_loop_thread(void **state) {
  (void)state;
  setup_thread();
  struct manual m = {0};
  async_loop *loop = loop_with(&m);
  struct work w = {.input = 7};
  struct done_log log = {0};
  g_done = &log;
  async_future *f = run_work(loop, &w);
  assert_int_equal(m.count, 1);
  assert_int_equal(async_future_add_callback(f, log_done, (void *)(intptr_t)1), 0);
  assert_int_equal(run_on_thread(m.jobs[0]), 0);
  assert_int_equal(atomic_load(&w.ran), 1);
  /* Back, but completed only from inside the loop. */
  assert_int_equal(async_future_get_state(f), ASYNC_FUTURE_PENDING);
  assert_int_equal(tu_wait_future(loop, f, 2000), 0);
  assert_int_equal(log.count, 1);
  assert_int_equal(log.status[0], 0);
  assert_int_equal(log.off_thread, 0);
  void *value = NULL;
  assert_int_equal(async_future_result(&value, f), 0);
  assert_int_equal(*(uintptr_t *)value, 49);
  /* destroy waits for the release, then runs once from the loop. */
  assert_int_equal(async_future_free(f), 0);
  assert_int_equal(w.destroyed, 0);
  assert_int_equal(async_loop_free(loop), ASYNC_EBUSY);
  tu_finish(loop);
  assert_int_equal(w.destroyed, 1);
  assert_int_equal(w.destroyed_off_thread, 0);
  assert_ptr_equal(w.destroyed_value, value);
  assert_int_equal(m.released, 1); /* released by the loop's free */
}

/* An executor running the job inside submit, on the loop's thread. */
static int inline_submit(async_job *job, void *ud) {
  (void)ud;
  return async_job_run(job) == 0 ? 0 : ASYNC_EINTERNAL;
}

static void test_inline_executor_never_inside_call(void **state) {
  (void)state;
  setup_thread();
  async_loop *loop = tu_loop_new();
  assert_int_equal(async_loop_set_executor(loop, inline_submit, NULL, NULL), 0);
  struct work w = {.input = 5};
  struct done_log log = {0};
  g_done = &log;
  async_future *f = run_work(loop, &w);
  assert_int_equal(atomic_load(&w.ran), 1);
  assert_int_equal(async_future_get_state(f), ASYNC_FUTURE_PENDING);
  assert_int_equal(async_future_add_callback(f, log_done, NULL), 0);
  assert_int_equal(log.count, 0);
  async_loop_run(loop, ASYNC_RUN_NOWAIT);
  assert_int_equal(log.count, 1);
  assert_int_equal(async_future_get_state(f), ASYNC_FUTURE_DONE);
  assert_int_equal(async_future_free(f), 0);
  tu_finish(loop);
  assert_int_equal(w.destroyed, 1);
}

static void test_completion_order(void **state) {
  (void)state;
  setup_thread();
  struct manual m = {0};
  async_loop *loop = loop_with(&m);
  struct work w[4] = {{.input = 0}, {.input = 1}, {.input = 2}, {.input = 3}};
  async_future *f[4];
  struct done_log log = {0};
  g_done = &log;
  for (int i = 0; i < 4; i++) {
    f[i] = run_work(loop, &w[i]);
    assert_int_equal(async_future_add_callback(f[i], log_done, (void *)(intptr_t)i), 0);
  }
  /* Finished 2, 0, 3 (each from another thread), then 1 after the loop
   * took the first three: done callbacks in that order. */
  assert_int_equal(run_on_thread(m.jobs[2]), 0);
  assert_int_equal(run_on_thread(m.jobs[0]), 0);
  assert_int_equal(run_on_thread(m.jobs[3]), 0);
  assert_int_equal(tu_wait_future(loop, f[3], 2000), 0);
  assert_int_equal(log.count, 3);
  assert_int_equal(run_on_thread(m.jobs[1]), 0);
  assert_int_equal(tu_wait_future(loop, f[1], 2000), 0);
  assert_int_equal(log.count, 4);
  int want[4] = {2, 0, 3, 1};
  for (int i = 0; i < 4; i++) {
    assert_int_equal(log.order[i], want[i]);
    assert_int_equal(log.status[i], 0);
  }
  assert_int_equal(log.off_thread, 0);
  for (int i = 0; i < 4; i++) assert_int_equal(async_future_free(f[i]), 0);
  tu_finish(loop);
  for (int i = 0; i < 4; i++) assert_int_equal(w[i].destroyed, 1);
}

static void test_cancel_before_start(void **state) {
  (void)state;
  setup_thread();
  struct manual m = {0};
  async_loop *loop = loop_with(&m);
  struct work w = {.input = 4};
  struct done_log log = {0};
  g_done = &log;
  async_future *f = run_work(loop, &w);
  assert_int_equal(async_future_add_callback(f, log_done, NULL), 0);
  assert_int_equal(async_future_cancel(f), 1);
  assert_int_equal(w.destroyed, 0); /* never inside the cancel */
  /* The job is still out: the loop cannot go, run(NOWAIT) says alive. */
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_NOWAIT), 1);
  assert_int_equal(log.count, 1);
  assert_int_equal(log.status[0], ASYNC_ECANCELED);
  assert_int_equal(async_future_free(f), 0);
  assert_int_equal(async_loop_free(loop), ASYNC_EBUSY);
  /* The executor still runs it: the work is skipped. */
  assert_int_equal(run_on_thread(m.jobs[0]), 1);
  assert_int_equal(atomic_load(&w.ran), 0);
  assert_int_equal(w.destroyed, 0);
  tu_finish(loop);
  assert_int_equal(w.destroyed, 1);
  assert_null(w.destroyed_value);
  assert_int_equal(w.destroyed_off_thread, 0);
}

struct runner {
  async_job *job;
  pthread_t thread;
};

static void *runner_main(void *arg) {
  struct runner *r = arg;
  async_job_run(r->job);
  return NULL;
}

static void test_cancel_while_running(void **state) {
  (void)state;
  setup_thread();
  struct manual m = {0};
  async_loop *loop = loop_with(&m);
  atomic_int started = 0;
  atomic_int gate = 0;
  struct work w = {.input = 6, .started = &started, .gate = &gate};
  async_future *f = run_work(loop, &w);
  struct runner r = {.job = m.jobs[0]};
  assert_int_equal(pthread_create(&r.thread, NULL, runner_main, &r), 0);
  for (int i = 0; i < 2000 && !atomic_load(&started); i++) tu_sleep_ms(1);
  assert_int_equal(atomic_load(&started), 1);
  /* Freed while running: the work finishes, its value is destroyed. */
  assert_int_equal(async_future_free(f), 0);
  atomic_store(&gate, 1);
  async_timer *guard = tu_guard(loop, 5000);
  /* run(DEFAULT) sleeps until the job is back, then has nothing left. */
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  tu_close(async_timer_handle(guard));
  assert_int_equal(pthread_join(r.thread, NULL), 0);
  assert_int_equal(atomic_load(&w.ran), 1);
  assert_int_equal(w.destroyed, 1);
  assert_non_null(w.destroyed_value);
  assert_int_equal(w.destroyed_off_thread, 0);
  tu_finish(loop);
  assert_int_equal(w.destroyed, 1);
}

static void test_discard_and_reuse(void **state) {
  (void)state;
  setup_thread();
  struct manual m = {0};
  async_loop *loop = loop_with(&m);
  struct work w = {.input = 2};
  struct done_log log = {0};
  g_done = &log;
  async_future *f = run_work(loop, &w);
  assert_int_equal(async_future_add_callback(f, log_done, NULL), 0);
  assert_int_equal(async_job_discard(m.jobs[0]), 0);
  /* Given back, not yet taken by the loop: a second pass is refused. */
  assert_int_equal(async_job_discard(m.jobs[0]), ASYNC_ESTATE);
  assert_int_equal(async_job_run(m.jobs[0]), ASYNC_ESTATE);
  assert_int_equal(tu_wait_future(loop, f, 2000), ASYNC_ECANCELED);
  assert_int_equal(async_future_get_state(f), ASYNC_FUTURE_CANCELLED);
  assert_int_equal(log.count, 1);
  assert_int_equal(atomic_load(&w.ran), 0);
  assert_int_equal(async_future_free(f), 0);
  tu_finish(loop);
  assert_int_equal(w.destroyed, 1);
  assert_null(w.destroyed_value);
}

static void test_work_error(void **state) {
  (void)state;
  setup_thread();
  struct manual m = {0};
  async_loop *loop = loop_with(&m);
  struct work w = {.input = 3, .status = ASYNC_EIO};
  async_future *f = run_work(loop, &w);
  assert_int_equal(run_on_thread(m.jobs[0]), 0);
  assert_int_equal(tu_wait_future(loop, f, 2000), ASYNC_EIO);
  assert_int_equal(async_future_get_state(f), ASYNC_FUTURE_FAILED);
  /* The value the failing work stored still reaches destroy. */
  async_loop_run(loop, ASYNC_RUN_NOWAIT);
  assert_int_equal(w.destroyed, 1);
  assert_non_null(w.destroyed_value);
  assert_int_equal(async_future_free(f), 0);
  tu_finish(loop);
  assert_int_equal(w.destroyed, 1);
}

static void test_submit_fails(void **state) {
  (void)state;
  setup_thread();
  struct manual m = {.refuse = ASYNC_EBUSY};
  async_loop *loop = loop_with(&m);
  struct work w = {.input = 1};
  async_future *f = (async_future *)&w; /* must stay untouched */
  assert_int_equal(async_run_in_executor(&f, loop, square_work, &w, work_destroy), ASYNC_EBUSY);
  assert_ptr_equal(f, &w);
  m.refuse = -1000; /* not an ASYNC_E code: returned as is */
  assert_int_equal(async_run_in_executor(&f, loop, square_work, &w, NULL), -1000);
  /* Nothing left behind: no job, no future, no destroy. */
  assert_int_equal(async_loop_alive(loop), 0);
  assert_int_equal(async_loop_free(loop), 0);
  assert_int_equal(atomic_load(&w.ran), 0);
  assert_int_equal(w.destroyed, 0);
  assert_int_equal(m.released, 1);
}

static void test_executor_replaced_with_jobs_out(void **state) {
  (void)state;
  setup_thread();
  struct manual a = {0};
  struct manual b = {0};
  async_loop *loop = loop_with(&a);
  struct work w1 = {.input = 8};
  struct work w2 = {.input = 9};
  async_future *f1 = run_work(loop, &w1);
  assert_int_equal(async_loop_set_executor(loop, manual_submit, manual_release, &b), 0);
  assert_int_equal(a.released, 1); /* inside the call */
  async_future *f2 = run_work(loop, &w2);
  assert_int_equal(a.count, 1);
  assert_int_equal(b.count, 1);
  /* The old executor's job still completes. */
  assert_int_equal(run_on_thread(a.jobs[0]), 0);
  assert_int_equal(tu_wait_future(loop, f1, 2000), 0);
  assert_int_equal(run_on_thread(b.jobs[0]), 0);
  assert_int_equal(tu_wait_future(loop, f2, 2000), 0);
  /* The same executor again counts as a replacement: released once more. */
  assert_int_equal(async_loop_set_executor(loop, manual_submit, manual_release, &b), 0);
  assert_int_equal(b.released, 1);
  assert_int_equal(async_future_free(f1), 0);
  assert_int_equal(async_future_free(f2), 0);
  tu_finish(loop);
  assert_int_equal(a.released, 1);
  assert_int_equal(b.released, 2);
  assert_int_equal(w1.destroyed, 1);
  assert_int_equal(w2.destroyed, 1);
}

/* Inside submit: the executor cannot change, the loop cannot go. */
struct reentrant {
  async_loop *loop;
  int set_rc;
  int free_rc;
  async_job *job;
};

static int reentrant_submit(async_job *job, void *ud) {
  struct reentrant *r = ud;
  r->set_rc = async_loop_set_executor(r->loop, NULL, NULL, NULL);
  r->free_rc = async_loop_free(r->loop);
  r->job = job;
  return 0;
}

static void test_reentrant_submit(void **state) {
  (void)state;
  setup_thread();
  async_loop *loop = tu_loop_new();
  struct reentrant r = {.loop = loop};
  assert_int_equal(async_loop_set_executor(loop, reentrant_submit, NULL, &r), 0);
  struct work w = {.input = 1};
  async_future *f = run_work(loop, &w);
  assert_int_equal(r.set_rc, ASYNC_EBUSY);
  assert_int_equal(r.free_rc, ASYNC_EBUSY);
  assert_int_equal(async_job_run(r.job), 0);
  assert_int_equal(tu_wait_future(loop, f, 2000), 0);
  assert_int_equal(async_future_free(f), 0);
  tu_finish(loop);
  assert_int_equal(w.destroyed, 1);
}

/* The release may free the loop: set_executor touches nothing after it. */
struct freeing {
  async_loop *loop;
  int free_rc;
};

static void release_frees_loop(void *ud) {
  struct freeing *x = ud;
  x->free_rc = async_loop_free(x->loop);
}

static void test_release_frees_loop(void **state) {
  (void)state;
  setup_thread();
  async_loop *loop = tu_loop_new();
  struct freeing x = {.loop = loop, .free_rc = 1};
  assert_int_equal(async_loop_set_executor(loop, manual_submit, release_frees_loop, &x), 0);
  assert_int_equal(async_loop_set_executor(loop, NULL, NULL, NULL), 0);
  assert_int_equal(x.free_rc, 0);
}

/* A submit function scheduling more work: each call hands over its own job. */
struct nesting {
  async_loop *loop;
  struct manual jobs;
  struct work inner;
  async_future *inner_future;
  int inner_rc;
};

static int nesting_submit(async_job *job, void *ud) {
  struct nesting *n = ud;
  if (n->jobs.count == 0) {
    n->jobs.jobs[n->jobs.count++] = job;
    n->inner_rc = async_run_in_executor(&n->inner_future, n->loop, square_work, &n->inner, work_destroy);
    return 0;
  }
  n->jobs.jobs[n->jobs.count++] = job;
  return 0;
}

static void test_nested_submit(void **state) {
  (void)state;
  setup_thread();
  async_loop *loop = tu_loop_new();
  struct nesting n = {.loop = loop, .inner = {.input = 11}};
  assert_int_equal(async_loop_set_executor(loop, nesting_submit, NULL, &n), 0);
  struct work outer = {.input = 10};
  async_future *f = run_work(loop, &outer);
  assert_int_equal(n.inner_rc, 0);
  assert_int_equal(n.jobs.count, 2);
  assert_int_equal(run_on_thread(n.jobs.jobs[1]), 0);
  assert_int_equal(run_on_thread(n.jobs.jobs[0]), 0);
  assert_int_equal(tu_wait_future(loop, f, 2000), 0);
  void *value = NULL;
  assert_int_equal(async_future_result(&value, n.inner_future), 0);
  assert_int_equal(*(uintptr_t *)value, 121);
  assert_int_equal(async_future_result(&value, f), 0);
  assert_int_equal(*(uintptr_t *)value, 100);
  assert_int_equal(async_future_free(f), 0);
  assert_int_equal(async_future_free(n.inner_future), 0);
  tu_finish(loop);
  assert_int_equal(outer.destroyed, 1);
  assert_int_equal(n.inner.destroyed, 1);
}

static void test_bad_input(void **state) {
  (void)state;
  setup_thread();
  struct manual m = {0};
  async_loop *loop = loop_with(&m);
  async_future *f = NULL;
  struct work w = {.input = 1};
  int not_a_loop = 0;
  assert_int_equal(async_run_in_executor(NULL, loop, square_work, &w, work_destroy), ASYNC_EINVAL);
  assert_int_equal(async_run_in_executor(&f, NULL, square_work, &w, work_destroy), ASYNC_EINVAL);
  assert_int_equal(async_run_in_executor(&f, (async_loop *)&not_a_loop, square_work, &w, NULL), ASYNC_EINVAL);
  assert_int_equal(async_run_in_executor(&f, loop, NULL, &w, work_destroy), ASYNC_EINVAL);
  assert_int_equal(async_loop_set_executor(NULL, manual_submit, NULL, &m), ASYNC_EINVAL);
  assert_int_equal(async_loop_set_executor((async_loop *)&not_a_loop, manual_submit, NULL, &m), ASYNC_EINVAL);
  assert_int_equal(async_loop_set_executor(loop, NULL, manual_release, &m), ASYNC_EINVAL);
  assert_int_equal(async_job_run(NULL), ASYNC_EINVAL);
  assert_int_equal(async_job_discard(NULL), ASYNC_EINVAL);
  assert_int_equal(async_job_run((async_job *)loop), ASYNC_EINVAL);
  assert_int_equal(async_job_discard((async_job *)&not_a_loop), ASYNC_EINVAL);
  /* Nothing of the refused calls reached the executor or the work. */
  assert_null(f);
  assert_int_equal(m.count, 0);
  assert_int_equal(m.released, 0);
  assert_int_equal(atomic_load(&w.ran), 0);
  tu_finish(loop);
  assert_int_equal(m.released, 1);
}

/* The owner-thread check: from another thread, EWRONGTHREAD and nothing done. */
struct foreign {
  async_loop *loop;
  struct manual *m;
  struct work *w;
  int set_rc;
  int run_rc;
  async_future *f;
};

static void *foreign_main(void *arg) {
  struct foreign *x = arg;
  x->set_rc = async_loop_set_executor(x->loop, NULL, NULL, NULL);
  x->run_rc = async_run_in_executor(&x->f, x->loop, square_work, x->w, work_destroy);
  return NULL;
}

static void test_wrong_thread(void **state) {
  (void)state;
  setup_thread();
  struct manual m = {0};
  async_loop *loop = loop_with(&m);
  assert_int_equal(async_loop_set_thread_check(loop, 1), 0);
  struct work w = {.input = 1};
  struct foreign x = {.loop = loop, .m = &m, .w = &w};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, foreign_main, &x), 0);
  assert_int_equal(pthread_join(t, NULL), 0);
  assert_int_equal(x.set_rc, ASYNC_EWRONGTHREAD);
  assert_int_equal(x.run_rc, ASYNC_EWRONGTHREAD);
  assert_null(x.f);
  assert_int_equal(m.count, 0);
  assert_int_equal(m.released, 0);
  /* The owner still can; the job runs on another thread as usual. */
  async_future *f = run_work(loop, &w);
  assert_int_equal(run_on_thread(m.jobs[0]), 0);
  assert_int_equal(tu_wait_future(loop, f, 2000), 0);
  assert_int_equal(async_future_free(f), 0);
  tu_finish(loop);
  assert_int_equal(w.destroyed, 1);
}

/* ---- a pthread pool -------------------------------------------------- */

#define POOL_QUEUE 2048
#define POOL_MAX_THREADS 4

struct pool {
  pthread_mutex_t lock;
  pthread_cond_t ready;
  async_job *queue[POOL_QUEUE];
  size_t head, count;
  int stopping;
  pthread_t threads[POOL_MAX_THREADS];
  int nthreads;
  int released;
  int discarded;
};

static void *pool_main(void *arg) {
  struct pool *p = arg;
  pthread_mutex_lock(&p->lock);
  for (;;) {
    while (p->count == 0 && !p->stopping) pthread_cond_wait(&p->ready, &p->lock);
    if (p->count == 0) break;
    async_job *job = p->queue[p->head];
    p->head = (p->head + 1) % POOL_QUEUE;
    p->count--;
    pthread_mutex_unlock(&p->lock);
    async_job_run(job);
    pthread_mutex_lock(&p->lock);
  }
  pthread_mutex_unlock(&p->lock);
  return NULL;
}

static int pool_submit(async_job *job, void *ud) {
  struct pool *p = ud;
  pthread_mutex_lock(&p->lock);
  int rc = ASYNC_EBUSY;
  if (!p->stopping && p->count < POOL_QUEUE) {
    p->queue[(p->head + p->count) % POOL_QUEUE] = job;
    p->count++;
    pthread_cond_signal(&p->ready);
    rc = 0;
  }
  pthread_mutex_unlock(&p->lock);
  return rc;
}

static void pool_release(void *ud) { ((struct pool *)ud)->released++; }

static void pool_start(struct pool *p, int nthreads) {
  memset(p, 0, sizeof *p);
  pthread_mutex_init(&p->lock, NULL);
  pthread_cond_init(&p->ready, NULL);
  p->nthreads = nthreads;
  for (int i = 0; i < nthreads; i++) assert_int_equal(pthread_create(&p->threads[i], NULL, pool_main, p), 0);
}

/* Stops the threads once the queue is empty (queued jobs still run). */
static void pool_stop(struct pool *p) {
  pthread_mutex_lock(&p->lock);
  p->stopping = 1;
  pthread_cond_broadcast(&p->ready);
  pthread_mutex_unlock(&p->lock);
  for (int i = 0; i < p->nthreads; i++) assert_int_equal(pthread_join(p->threads[i], NULL), 0);
  pthread_cond_destroy(&p->ready);
  pthread_mutex_destroy(&p->lock);
}

#define MANY 1000

struct many {
  struct work w[MANY];
  int done;
  int wrong;
  int off_thread;
};

static struct many *g_many;

static void many_done(async_future *f, int status, void *ud) {
  uintptr_t i = (uintptr_t)ud;
  void *value = NULL;
  if (status != 0 || async_future_result(&value, f) != 0 || *(uintptr_t *)value != i * i) g_many->wrong++;
  if (!pthread_equal(pthread_self(), g_loop_thread)) g_many->off_thread++;
  g_many->done++;
  async_future_free(f);
}

static void test_thousand_jobs_four_threads(void **state) {
  (void)state;
  setup_thread();
  struct pool *p = malloc(sizeof *p);
  struct many *m = calloc(1, sizeof *m);
  g_many = m;
  pool_start(p, 4);
  async_loop *loop = tu_loop_new();
  assert_int_equal(async_loop_set_executor(loop, pool_submit, pool_release, p), 0);
  for (uintptr_t i = 0; i < MANY; i++) {
    m->w[i].input = i;
    async_future *f = run_work(loop, &m->w[i]);
    assert_int_equal(async_future_add_callback(f, many_done, (void *)i), 0);
  }
  async_timer *guard = tu_guard(loop, 20000);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  tu_close(async_timer_handle(guard));
  assert_int_equal(m->done, MANY);
  assert_int_equal(m->wrong, 0);
  assert_int_equal(m->off_thread, 0);
  tu_finish(loop);
  assert_int_equal(p->released, 1);
  for (int i = 0; i < MANY; i++) {
    assert_int_equal(atomic_load(&m->w[i].ran), 1);
    assert_int_equal(m->w[i].destroyed, 1);
    assert_int_equal(m->w[i].destroyed_off_thread, 0);
  }
  pool_stop(p);
  free(m);
  free(p);
}

/* Shutdown with jobs queued and running: every future cancelled, the
 * loop runs until every job is back, then frees. */
static void test_shutdown_with_jobs_in_flight(void **state) {
  (void)state;
  setup_thread();
  enum { JOBS = 8 };
  struct pool *p = malloc(sizeof *p);
  pool_start(p, 2);
  async_loop *loop = tu_loop_new();
  assert_int_equal(async_loop_set_executor(loop, pool_submit, pool_release, p), 0);
  atomic_int started = 0;
  atomic_int gate = 0;
  struct work w[JOBS];
  memset(w, 0, sizeof w);
  async_future *f[JOBS];
  struct done_log log = {0};
  g_done = &log;
  for (int i = 0; i < JOBS; i++) {
    w[i].input = (uintptr_t)i;
    w[i].started = &started;
    w[i].gate = &gate;
    f[i] = run_work(loop, &w[i]);
    assert_int_equal(async_future_add_callback(f[i], log_done, (void *)(intptr_t)i), 0);
  }
  /* Both threads busy, six jobs queued. */
  for (int i = 0; i < 2000 && atomic_load(&started) < 2; i++) tu_sleep_ms(1);
  assert_int_equal(atomic_load(&started), 2);
  assert_int_equal(async_loop_shutdown(loop, NULL), 0);
  assert_int_equal(async_loop_free(loop), ASYNC_EBUSY);
  atomic_store(&gate, 1);
  async_timer *guard = tu_guard(loop, 5000);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  tu_close(async_timer_handle(guard));
  assert_int_equal(log.count, JOBS);
  int ran = 0;
  for (int i = 0; i < JOBS; i++) {
    assert_int_equal(log.status[i], ASYNC_ECANCELED);
    ran += atomic_load(&w[i].ran);
    assert_int_equal(w[i].destroyed, 1);
    assert_int_equal(w[i].destroyed_off_thread, 0);
    /* A job that ran has its value destroyed; a dropped one has none. */
    assert_int_equal(w[i].destroyed_value != NULL, atomic_load(&w[i].ran));
  }
  assert_int_equal(ran, 2);
  assert_int_equal(log.off_thread, 0);
  assert_int_equal(async_loop_free(loop), ASYNC_EBUSY); /* the futures are still held */
  for (int i = 0; i < JOBS; i++) assert_int_equal(async_future_free(f[i]), 0);
  tu_finish(loop);
  assert_int_equal(p->released, 1);
  pool_stop(p);
  free(p);
}

/* ---- out of memory: every allocation of the path fails once ---------- */

static long g_attempts;
static long g_fail_at;
static long g_injected;
static long g_live;

/* Single-threaded here (jobs run inline): no lock needed. */
static void *failing_realloc(void *ptr, size_t size, void *ud) {
  (void)ud;
  if (size == 0) {
    if (ptr) g_live--;
    free(ptr);
    return NULL;
  }
  if (++g_attempts == g_fail_at) {
    g_injected++;
    return NULL;
  }
  void *p = realloc(ptr, size);
  if (p && !ptr) g_live++;
  return p;
}

static int counting_release_count;
static void counting_release(void *ud) {
  (void)ud;
  counting_release_count++;
}

static void test_out_of_memory(void **state) {
  (void)state;
  setup_thread();
  enum { JOBS = 3 };
  for (long n = 1;; n++) {
    assert_true(n < 500);
    assert_int_equal(async_set_allocator(failing_realloc, NULL), 0);
    g_attempts = 0;
    g_fail_at = n;
    g_injected = 0;
    g_live = 0;
    counting_release_count = 0;
    struct work w[JOBS];
    memset(w, 0, sizeof w);
    async_future *f[JOBS] = {NULL};
    int set = -1;
    async_loop *loop = NULL;
    if (async_loop_new(&loop) == 0) {
      set = async_loop_set_executor(loop, inline_submit, counting_release, NULL);
      assert_true(set == 0 || set == ASYNC_ENOMEM);
      for (int i = 0; i < JOBS && set == 0; i++) {
        w[i].input = (uintptr_t)i;
        int rc = async_run_in_executor(&f[i], loop, square_work, &w[i], work_destroy);
        assert_true(rc == 0 || rc == ASYNC_ENOMEM);
        /* A refused call runs nothing, ever. */
        if (rc != 0) assert_int_equal(atomic_load(&w[i].ran), 0);
      }
      assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
      for (int i = 0; i < JOBS; i++)
        if (f[i]) assert_int_equal(async_future_free(f[i]), 0);
      tu_finish(loop);
    }
    long injected = g_injected;
    g_fail_at = 0;
    assert_int_equal(g_live, 0);
    assert_int_equal(async_set_allocator(NULL, NULL), 0);
    /* The executor's release runs once if it was set, never otherwise;
     * destroy once per job that was made. */
    assert_int_equal(counting_release_count, set == 0 ? 1 : 0);
    for (int i = 0; i < JOBS; i++) {
      assert_int_equal(w[i].destroyed, f[i] ? 1 : 0);
      assert_int_equal(atomic_load(&w[i].ran), f[i] ? 1 : 0);
    }
    if (injected == 0) break; /* the whole path ran without a failure */
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_enotsup_without_executor),
      cmocka_unit_test(test_result_on_loop_thread),
      cmocka_unit_test(test_inline_executor_never_inside_call),
      cmocka_unit_test(test_completion_order),
      cmocka_unit_test(test_cancel_before_start),
      cmocka_unit_test(test_cancel_while_running),
      cmocka_unit_test(test_discard_and_reuse),
      cmocka_unit_test(test_work_error),
      cmocka_unit_test(test_submit_fails),
      cmocka_unit_test(test_executor_replaced_with_jobs_out),
      cmocka_unit_test(test_reentrant_submit),
      cmocka_unit_test(test_release_frees_loop),
      cmocka_unit_test(test_nested_submit),
      cmocka_unit_test(test_bad_input),
      cmocka_unit_test(test_wrong_thread),
      cmocka_unit_test(test_thousand_jobs_four_threads),
      cmocka_unit_test(test_shutdown_with_jobs_in_flight),
      cmocka_unit_test(test_out_of_memory),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
