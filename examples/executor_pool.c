/*
 * executor_pool: blocking work on a thread pool that belongs to the
 * application, results back on the loop (async/executor.h).
 *
 * The library creates no thread. This program owns a small pthread pool,
 * installs it as the loop's executor, and counts the primes below LIMIT in
 * CHUNKS ranges, one async_run_in_executor() per range. Each future
 * completes on the loop's thread, in the order the ranges finished; the
 * loop sums them and checks the total against pi(LIMIT).
 *
 * Build: cc executor_pool.c $(pkg-config --cflags --libs libasync) -pthread
 */
#include <async.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define THREADS 4
#define CHUNKS 16
#define LIMIT 400000u
#define PRIMES_BELOW_LIMIT 33860u /* pi(400000) */

/* ---- the application's pool: a locked queue and THREADS workers ------ */

struct pool {
  pthread_mutex_t lock;
  pthread_cond_t wake;
  async_job *queue[CHUNKS];
  size_t head, count;
  int stopping;
  pthread_t threads[THREADS];
};

static void *pool_worker(void *arg) {
  struct pool *p = arg;
  pthread_mutex_lock(&p->lock);
  while (!p->stopping) {
    if (p->count == 0) {
      pthread_cond_wait(&p->wake, &p->lock);
      continue;
    }
    async_job *job = p->queue[p->head];
    p->head = (p->head + 1) % CHUNKS;
    p->count--;
    pthread_mutex_unlock(&p->lock);
    async_job_run(job); /* the work runs here, then the job goes back to the loop */
    pthread_mutex_lock(&p->lock);
  }
  pthread_mutex_unlock(&p->lock);
  return NULL;
}

/* The loop's submit function: queue the job, or refuse it when full. */
static int pool_submit(async_job *job, void *userdata) {
  struct pool *p = userdata;
  int rc = ASYNC_EBUSY;
  pthread_mutex_lock(&p->lock);
  if (!p->stopping && p->count < CHUNKS) {
    p->queue[(p->head + p->count++) % CHUNKS] = job;
    pthread_cond_signal(&p->wake);
    rc = 0;
  }
  pthread_mutex_unlock(&p->lock);
  return rc;
}

/* Stops the workers; jobs still queued go back to their loop unrun. */
static void pool_stop(struct pool *p) {
  pthread_mutex_lock(&p->lock);
  p->stopping = 1;
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->lock);
  for (int i = 0; i < THREADS; i++) pthread_join(p->threads[i], NULL);
  for (; p->count > 0; p->count--, p->head = (p->head + 1) % CHUNKS) async_job_discard(p->queue[p->head]);
}

/* ---- the work: runs on a pool thread, touches nothing of the loop ---- */

struct range {
  uint32_t from, to;
};

static int is_prime(uint32_t n) {
  if (n < 2) return 0;
  for (uint32_t d = 2; d * d <= n; d++)
    if (n % d == 0) return 0;
  return 1;
}

static int count_primes(void **out_value, void *userdata) {
  const struct range *r = userdata;
  uint32_t *count = malloc(sizeof *count);
  if (!count) return ASYNC_ENOMEM;
  *count = 0;
  for (uint32_t n = r->from; n < r->to; n++) *count += (uint32_t)is_prime(n);
  *out_value = count;
  return 0;
}

/* destroy(value, userdata): the value's and the range's end, on the loop. */
static void free_count(void *value, void *userdata) {
  (void)userdata;
  free(value);
}

/* ---- the loop side --------------------------------------------------- */

struct tally {
  uint32_t primes;
  int done;
};

static struct range ranges[CHUNKS];

static void range_done(async_future *future, int status, void *userdata) {
  struct tally *t = userdata;
  void *value = NULL;
  if (status == 0 && async_future_result(&value, future) == 0) t->primes += *(uint32_t *)value;
  t->done++;
  async_future_free(future);
}

int main(void) {
  struct pool pool = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};
  for (int i = 0; i < THREADS; i++) {
    if (pthread_create(&pool.threads[i], NULL, pool_worker, &pool) != 0) {
      fprintf(stderr, "pthread_create failed\n");
      return 1;
    }
  }

  async_loop *loop = NULL;
  int rc = async_loop_new(&loop);
  if (rc == 0) rc = async_loop_set_executor(loop, pool_submit, NULL, &pool);
  if (rc != 0) {
    fprintf(stderr, "loop: %s\n", async_strerror(rc));
    return 1;
  }

  struct tally tally = {0, 0};
  for (uint32_t i = 0; i < CHUNKS; i++) {
    ranges[i].from = i * (LIMIT / CHUNKS);
    ranges[i].to = (i + 1) * (LIMIT / CHUNKS);
    async_future *future = NULL;
    rc = async_run_in_executor(&future, loop, count_primes, &ranges[i], free_count);
    if (rc == 0) rc = async_future_add_callback(future, range_done, &tally);
    if (rc != 0) {
      fprintf(stderr, "run_in_executor: %s\n", async_strerror(rc));
      return 1;
    }
  }

  /* Sleeps while the pool works; returns once every job is back. */
  rc = async_loop_run(loop, ASYNC_RUN_DEFAULT);
  pool_stop(&pool);
  if (rc == 0) rc = async_loop_free(loop);

  printf("%u primes below %u in %d ranges on %d threads of our own\n", tally.primes, LIMIT, tally.done, THREADS);
  return rc == 0 && tally.done == CHUNKS && tally.primes == PRIMES_BELOW_LIMIT ? 0 : 1;
}
