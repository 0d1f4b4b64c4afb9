/*
 * call_soon throughput on libuv, written the way a libuv user gets
 * call_soon semantics (libuv has no call_soon):
 *
 *   - a user-space FIFO of {cb, userdata} (bench_fifo.h: a growable ring,
 *     no allocation per callback);
 *   - one uv_idle_t, started when a callback is queued (uv_idle_start is a
 *     no-op when already active), which drains a snapshot of the queue once
 *     per loop iteration: callbacks queued during a drain run on the next
 *     iteration, the same semantics as async_loop_call_soon;
 *   - the idle handle is stopped when the queue is empty, so the loop can
 *     block or exit.
 *
 * Same workload as callsoon_async.c. usage: callsoon_uv chain|fanout [total] [inflight]
 */
#define _POSIX_C_SOURCE 200809L
#include <string.h>
#include <uv.h>

#include "bench_common.h"
#include "bench_fifo.h"

struct soonq {
  struct fifo fifo;
  uv_idle_t idle;
};

static void soonq_drain(uv_idle_t *idle) {
  struct soonq *q = idle->data;
  for (size_t n = q->fifo.size; n > 0; n--) {
    struct fifo_task t = fifo_pop(&q->fifo);
    t.cb(q, t.userdata);
  }
  if (q->fifo.size == 0) uv_idle_stop(idle);
}

static void call_soon(struct soonq *q, void (*cb)(void *, void *), void *userdata) {
  BENCH_ASSERT(fifo_push(&q->fifo, cb, userdata) == 0);
  BENCH_CHECK(uv_idle_start(&q->idle, soonq_drain));
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
  uv_loop_t loop;
  struct soonq q;
  BENCH_CHECK(uv_loop_init(&loop));
  BENCH_ASSERT(fifo_init(&q.fifo, 16) == 0);
  BENCH_CHECK(uv_idle_init(&loop, &q.idle));
  q.idle.data = &q;

  double t0 = bench_now();
  for (uint64_t i = 0; i < inflight && s.queued < total; i++) {
    s.queued++;
    call_soon(&q, chain ? chain_cb : fanout_cb, &s);
  }
  BENCH_CHECK(uv_run(&loop, UV_RUN_DEFAULT));
  double secs = bench_now() - t0;

  BENCH_ASSERT(s.ran == total);
  uv_close((uv_handle_t *)&q.idle, NULL);
  BENCH_CHECK(uv_run(&loop, UV_RUN_DEFAULT));
  BENCH_CHECK(uv_loop_close(&loop));
  fifo_free(&q.fifo);
  printf("RESULT bench=callsoon_%s lib=libuv callbacks=%llu secs=%.6f ops_per_sec=%.0f\n",
         chain ? "chain" : "fanout", (unsigned long long)total, secs, (double)total / secs);
  return 0;
}
