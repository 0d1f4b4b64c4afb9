/*
 * call_soon throughput on raw libev: the same user-space FIFO as the libuv
 * variant (bench_fifo.h), drained by one ev_idle watcher that runs a
 * snapshot of the queue once per loop iteration and is stopped when the
 * queue is empty. Loop: ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV |
 * EVFLAG_NOTIMERFD), the flags libasync uses (never the default loop).
 *
 * Same workload as callsoon_async.c. usage: callsoon_ev chain|fanout [total] [inflight]
 */
#define _POSIX_C_SOURCE 200809L
#include <ev.h>
#include <string.h>

#include "bench_common.h"
#include "bench_fifo.h"

struct soonq {
  struct fifo fifo;
  struct ev_loop *loop;
  ev_idle idle;
};

static void soonq_drain(struct ev_loop *loop, ev_idle *idle, int revents) {
  struct soonq *q = idle->data;
  (void)revents;
  for (size_t n = q->fifo.size; n > 0; n--) {
    struct fifo_task t = fifo_pop(&q->fifo);
    t.cb(q, t.userdata);
  }
  if (q->fifo.size == 0) ev_idle_stop(loop, idle);
}

static void call_soon(struct soonq *q, void (*cb)(void *, void *), void *userdata) {
  BENCH_ASSERT(fifo_push(&q->fifo, cb, userdata) == 0);
  ev_idle_start(q->loop, &q->idle); /* no-op when already active */
}

struct state {
  uint64_t ran;
  uint64_t queued;
  uint64_t total;
};

static void chain_cb(void *ctx, void *userdata) {
  struct state *s = userdata;
  if (++s->ran < s->total) call_soon(ctx, chain_cb, s);
}

static void fanout_cb(void *ctx, void *userdata) {
  struct state *s = userdata;
  s->ran++;
  if (s->queued < s->total) {
    s->queued++;
    call_soon(ctx, fanout_cb, s);
  }
}

int main(int argc, char **argv) {
  int chain = argc > 1 && strcmp(argv[1], "chain") == 0;
  uint64_t total = argc > 2 ? strtoull(argv[2], NULL, 10) : (chain ? 2000000u : 10000000u);
  uint64_t inflight = chain ? 1 : (argc > 3 ? strtoull(argv[3], NULL, 10) : 1000u);
  struct state s = {0, 0, total};
  struct soonq q;
  q.loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV | EVFLAG_NOTIMERFD);
  BENCH_ASSERT(q.loop != NULL);
  BENCH_ASSERT(fifo_init(&q.fifo, 16) == 0);
  ev_idle_init(&q.idle, soonq_drain);
  q.idle.data = &q;

  double t0 = bench_now();
  for (uint64_t i = 0; i < inflight && s.queued < total; i++) {
    s.queued++;
    call_soon(&q, chain ? chain_cb : fanout_cb, &s);
  }
  ev_run(q.loop, 0);
  double secs = bench_now() - t0;

  BENCH_ASSERT(s.ran == total);
  ev_loop_destroy(q.loop);
  fifo_free(&q.fifo);
  printf("RESULT bench=callsoon_%s lib=libev callbacks=%llu secs=%.6f ops_per_sec=%.0f\n",
         chain ? "chain" : "fanout", (unsigned long long)total, secs, (double)total / secs);
  return 0;
}
