/*
 * Cross-thread ping-pong on libuv, the way libuv's benchmark-async.c does
 * it: each side (the main thread's loop, one pthread with its own loop) has
 * a uv_async_t; a message is put in the receiver's mutex-protected slot,
 * then uv_async_send wakes the receiver, whose async callback reads the
 * slot and answers the same way. N round trips; the value -1 tells the
 * worker to close its async handle (its loop then ends).
 *
 * BENCH_PIN=1 pins the main thread to CPU 0 and the worker to CPU 1. The run
 * stops early after BENCH_PINGPONG_MAX_SECONDS and reports the rate over the
 * round trips completed.
 *
 * usage: pingpong_uv [round_trips]
 */
#define _GNU_SOURCE /* pthread_setaffinity_np */
#include <pthread.h>
#include <uv.h>

#include "bench_common.h"

struct side {
  uv_loop_t loop;
  uv_async_t async;
  pthread_mutex_t lock; /* protects slot */
  int64_t slot;
};

struct pingpong {
  struct side main_side;
  struct side worker_side;
  _Alignas(64) uint64_t rounds; /* main thread only, on its own cache line */
  uint64_t total;
  double deadline; /* bench_now() value after which the run stops early */
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int worker_ready;
};

static void send_to(struct side *to, int64_t value) {
  pthread_mutex_lock(&to->lock);
  to->slot = value;
  pthread_mutex_unlock(&to->lock);
  BENCH_CHECK(uv_async_send(&to->async));
}

static int64_t receive(struct side *self) {
  pthread_mutex_lock(&self->lock);
  int64_t value = self->slot;
  pthread_mutex_unlock(&self->lock);
  return value;
}

/* Worker thread: echo every ping. */
static void worker_async_cb(uv_async_t *async) {
  struct pingpong *pp = async->data;
  int64_t value = receive(&pp->worker_side);
  if (value < 0)
    uv_close((uv_handle_t *)async, NULL);
  else
    send_to(&pp->main_side, value);
}

/* Main thread: count the pong, send the next ping. */
static void main_async_cb(uv_async_t *async) {
  struct pingpong *pp = async->data;
  int64_t value = receive(&pp->main_side);
  BENCH_ASSERT((uint64_t)value == pp->rounds);
  if (++pp->rounds < pp->total && ((pp->rounds & 1023) != 0 || bench_now() < pp->deadline)) {
    send_to(&pp->worker_side, (int64_t)pp->rounds);
  } else {
    send_to(&pp->worker_side, -1);
    uv_close((uv_handle_t *)async, NULL);
  }
}

static void *worker_main(void *arg) {
  struct pingpong *pp = arg;
  bench_pin_thread(1);
  struct side *w = &pp->worker_side;
  BENCH_CHECK(uv_loop_init(&w->loop));
  BENCH_CHECK(uv_async_init(&w->loop, &w->async, worker_async_cb));
  w->async.data = pp;
  pthread_mutex_lock(&pp->lock);
  pp->worker_ready = 1;
  pthread_cond_signal(&pp->cond);
  pthread_mutex_unlock(&pp->lock);
  BENCH_CHECK(uv_run(&w->loop, UV_RUN_DEFAULT));
  BENCH_CHECK(uv_loop_close(&w->loop));
  return NULL;
}

int main(int argc, char **argv) {
  static struct pingpong pp;
  pp.total = argc > 1 ? strtoull(argv[1], NULL, 10) : 200000u;
  pthread_mutex_init(&pp.lock, NULL);
  pthread_cond_init(&pp.cond, NULL);
  pthread_mutex_init(&pp.main_side.lock, NULL);
  pthread_mutex_init(&pp.worker_side.lock, NULL);
  BENCH_CHECK(uv_loop_init(&pp.main_side.loop));
  BENCH_CHECK(uv_async_init(&pp.main_side.loop, &pp.main_side.async, main_async_cb));
  pp.main_side.async.data = &pp;

  bench_pin_thread(0);
  pthread_t worker;
  BENCH_ASSERT(pthread_create(&worker, NULL, worker_main, &pp) == 0);
  pthread_mutex_lock(&pp.lock);
  while (!pp.worker_ready) pthread_cond_wait(&pp.cond, &pp.lock);
  pthread_mutex_unlock(&pp.lock);

  double t0 = bench_now();
  pp.deadline = t0 + BENCH_PINGPONG_MAX_SECONDS;
  send_to(&pp.worker_side, 0);
  BENCH_CHECK(uv_run(&pp.main_side.loop, UV_RUN_DEFAULT));
  double secs = bench_now() - t0;
  BENCH_ASSERT(pthread_join(worker, NULL) == 0);
  BENCH_ASSERT(pp.rounds <= pp.total);
  BENCH_CHECK(uv_loop_close(&pp.main_side.loop));

  printf("RESULT bench=pingpong lib=libuv round_trips=%llu secs=%.6f ops_per_sec=%.0f\n",
         (unsigned long long)pp.rounds, secs, (double)pp.rounds / secs);
  return 0;
}
