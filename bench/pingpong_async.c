/*
 * Cross-thread post ping-pong on libasync: the main thread's loop and one
 * pthread running its own loop bounce a callback with async_loop_post, N
 * round trips (main -> worker -> main is one). Each loop is kept alive by a
 * referenced timer that never fires (posts alone are not referenced work);
 * at the end the main side posts a quit callback that closes the worker's
 * keep-alive timer, so both runs return.
 *
 * BENCH_PIN=1 pins the main thread to CPU 0 and the worker to CPU 1. The run
 * stops early after BENCH_PINGPONG_MAX_SECONDS and reports the rate over the
 * round trips completed.
 *
 * usage: pingpong_async [round_trips]
 */
#define _GNU_SOURCE /* pthread_setaffinity_np */
#include <async.h>
#include <pthread.h>

#include "bench_common.h"

/* What both threads read is kept off the cache line the main thread writes
 * every round trip (rounds), as the libuv and libev variants do through
 * their per-side structs. */
struct pingpong {
  async_loop *main_loop;
  async_loop *worker_loop; /* published by the worker thread */
  async_timer *worker_keepalive; /* worker thread only */
  pthread_mutex_t lock;
  pthread_cond_t cond;
  _Alignas(64) uint64_t rounds; /* main thread only from here on */
  uint64_t total;
  double deadline; /* bench_now() value after which the run stops early */
  async_timer *main_keepalive;
};

static void never_cb(async_timer *timer, void *userdata) {
  (void)timer;
  (void)userdata;
}

static void pong_cb(async_loop *loop, void *userdata);

/* Worker thread. */
static void ping_cb(async_loop *loop, void *userdata) {
  struct pingpong *pp = userdata;
  (void)loop;
  BENCH_CHECK(async_loop_post(pp->main_loop, pong_cb, pp));
}

/* Worker thread. */
static void quit_cb(async_loop *loop, void *userdata) {
  struct pingpong *pp = userdata;
  (void)loop;
  BENCH_CHECK(async_handle_close(async_timer_handle(pp->worker_keepalive), NULL));
}

/* Main thread. */
static void pong_cb(async_loop *loop, void *userdata) {
  struct pingpong *pp = userdata;
  (void)loop;
  if (++pp->rounds < pp->total && ((pp->rounds & 1023) != 0 || bench_now() < pp->deadline)) {
    BENCH_CHECK(async_loop_post(pp->worker_loop, ping_cb, pp));
  } else {
    BENCH_CHECK(async_loop_post(pp->worker_loop, quit_cb, pp));
    BENCH_CHECK(async_handle_close(async_timer_handle(pp->main_keepalive), NULL));
  }
}

static void *worker_main(void *arg) {
  struct pingpong *pp = arg;
  bench_pin_thread(1);
  async_loop *loop;
  BENCH_CHECK(async_loop_new(&loop));
  BENCH_CHECK(async_timer_new(&pp->worker_keepalive, loop, NULL));
  BENCH_CHECK(async_timer_start(pp->worker_keepalive, UINT64_MAX, 0, never_cb));
  pthread_mutex_lock(&pp->lock);
  pp->worker_loop = loop;
  pthread_cond_signal(&pp->cond);
  pthread_mutex_unlock(&pp->lock);
  BENCH_CHECK(async_loop_run(loop, ASYNC_RUN_DEFAULT));
  BENCH_CHECK(async_loop_free(loop));
  return NULL;
}

int main(int argc, char **argv) {
  struct pingpong pp = {0};
  pp.total = argc > 1 ? strtoull(argv[1], NULL, 10) : 200000u;
  pthread_mutex_init(&pp.lock, NULL);
  pthread_cond_init(&pp.cond, NULL);
  BENCH_CHECK(async_loop_new(&pp.main_loop));
  BENCH_CHECK(async_timer_new(&pp.main_keepalive, pp.main_loop, NULL));
  BENCH_CHECK(async_timer_start(pp.main_keepalive, UINT64_MAX, 0, never_cb));

  bench_pin_thread(0);
  pthread_t worker;
  BENCH_ASSERT(pthread_create(&worker, NULL, worker_main, &pp) == 0);
  pthread_mutex_lock(&pp.lock);
  while (!pp.worker_loop) pthread_cond_wait(&pp.cond, &pp.lock);
  pthread_mutex_unlock(&pp.lock);

  double t0 = bench_now();
  pp.deadline = t0 + BENCH_PINGPONG_MAX_SECONDS;
  BENCH_CHECK(async_loop_post(pp.worker_loop, ping_cb, &pp));
  BENCH_CHECK(async_loop_run(pp.main_loop, ASYNC_RUN_DEFAULT));
  double secs = bench_now() - t0;
  BENCH_ASSERT(pthread_join(worker, NULL) == 0);
  BENCH_ASSERT(pp.rounds <= pp.total);
  BENCH_CHECK(async_loop_free(pp.main_loop));

  printf("RESULT bench=pingpong lib=libasync round_trips=%llu secs=%.6f ops_per_sec=%.0f\n",
         (unsigned long long)pp.rounds, secs, (double)pp.rounds / secs);
  return 0;
}
