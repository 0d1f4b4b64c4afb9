/*
 * Cross-thread ping-pong on raw libev: the same shape as pingpong_uv.c with
 * ev_async: each side (the main thread's loop, one pthread with its own
 * loop, both from ev_loop_new with libasync's flags) has an ev_async; a
 * message goes into the receiver's mutex-protected slot, then
 * ev_async_send wakes the receiver. N round trips; -1 tells the worker to
 * stop its ev_async (its loop then ends).
 *
 * BENCH_PIN=1 pins the main thread to CPU 0 and the worker to CPU 1. The run
 * stops early after BENCH_PINGPONG_MAX_SECONDS and reports the rate over the
 * round trips completed.
 *
 * usage: pingpong_ev [round_trips]
 */
#define _GNU_SOURCE /* pthread_setaffinity_np */
#include <ev.h>
#include <pthread.h>

#include "bench_common.h"

#define LOOP_FLAGS (EVBACKEND_EPOLL | EVFLAG_NOENV | EVFLAG_NOTIMERFD)

struct side {
  struct ev_loop *loop;
  ev_async async;
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
  ev_async_send(to->loop, &to->async);
}

static int64_t receive(struct side *self) {
  pthread_mutex_lock(&self->lock);
  int64_t value = self->slot;
  pthread_mutex_unlock(&self->lock);
  return value;
}

/* Worker thread: echo every ping. */
static void worker_async_cb(struct ev_loop *loop, ev_async *async, int revents) {
  struct pingpong *pp = async->data;
  (void)revents;
  int64_t value = receive(&pp->worker_side);
  if (value < 0)
    ev_async_stop(loop, async);
  else
    send_to(&pp->main_side, value);
}

/* Main thread: count the pong, send the next ping. */
static void main_async_cb(struct ev_loop *loop, ev_async *async, int revents) {
  struct pingpong *pp = async->data;
  (void)revents;
  int64_t value = receive(&pp->main_side);
  BENCH_ASSERT((uint64_t)value == pp->rounds);
  if (++pp->rounds < pp->total && ((pp->rounds & 1023) != 0 || bench_now() < pp->deadline)) {
    send_to(&pp->worker_side, (int64_t)pp->rounds);
  } else {
    send_to(&pp->worker_side, -1);
    ev_async_stop(loop, async);
  }
}

static void *worker_main(void *arg) {
  struct pingpong *pp = arg;
  bench_pin_thread(1);
  struct side *w = &pp->worker_side;
  w->loop = ev_loop_new(LOOP_FLAGS);
  BENCH_ASSERT(w->loop != NULL);
  ev_async_init(&w->async, worker_async_cb);
  w->async.data = pp;
  ev_async_start(w->loop, &w->async);
  pthread_mutex_lock(&pp->lock);
  pp->worker_ready = 1;
  pthread_cond_signal(&pp->cond);
  pthread_mutex_unlock(&pp->lock);
  ev_run(w->loop, 0);
  ev_loop_destroy(w->loop);
  return NULL;
}

int main(int argc, char **argv) {
  static struct pingpong pp;
  pp.total = argc > 1 ? strtoull(argv[1], NULL, 10) : 200000u;
  pthread_mutex_init(&pp.lock, NULL);
  pthread_cond_init(&pp.cond, NULL);
  pthread_mutex_init(&pp.main_side.lock, NULL);
  pthread_mutex_init(&pp.worker_side.lock, NULL);
  pp.main_side.loop = ev_loop_new(LOOP_FLAGS);
  BENCH_ASSERT(pp.main_side.loop != NULL);
  ev_async_init(&pp.main_side.async, main_async_cb);
  pp.main_side.async.data = &pp;
  ev_async_start(pp.main_side.loop, &pp.main_side.async);

  bench_pin_thread(0);
  pthread_t worker;
  BENCH_ASSERT(pthread_create(&worker, NULL, worker_main, &pp) == 0);
  pthread_mutex_lock(&pp.lock);
  while (!pp.worker_ready) pthread_cond_wait(&pp.cond, &pp.lock);
  pthread_mutex_unlock(&pp.lock);

  double t0 = bench_now();
  pp.deadline = t0 + BENCH_PINGPONG_MAX_SECONDS;
  send_to(&pp.worker_side, 0);
  ev_run(pp.main_side.loop, 0);
  double secs = bench_now() - t0;
  BENCH_ASSERT(pthread_join(worker, NULL) == 0);
  BENCH_ASSERT(pp.rounds <= pp.total);
  ev_loop_destroy(pp.main_side.loop);

  printf("RESULT bench=pingpong lib=libev round_trips=%llu secs=%.6f ops_per_sec=%.0f\n",
         (unsigned long long)pp.rounds, secs, (double)pp.rounds / secs);
  return 0;
}
