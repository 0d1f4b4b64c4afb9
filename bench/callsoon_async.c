/*
 * call_soon throughput on libasync: async_loop_call_soon (public API only).
 *
 *   chain  : one callback in flight; each queues the next (N callbacks,
 *            so N loop iterations, since a callback queued during a pass
 *            runs on the next iteration).
 *   fanout : K callbacks in flight; each re-queues itself until N callbacks
 *            have run in total (N/K iterations of K callbacks).
 *
 * usage: callsoon_async chain|fanout [total] [inflight]
 */
#define _POSIX_C_SOURCE 200809L
#include <async.h>
#include <string.h>

#include "bench_common.h"

struct state {
  uint64_t ran;
  uint64_t queued;
  uint64_t total;
};

static void chain_cb(async_loop *loop, void *userdata) {
  struct state *s = userdata;
  if (++s->ran < s->total) BENCH_CHECK(async_loop_call_soon(loop, chain_cb, s));
}

static void fanout_cb(async_loop *loop, void *userdata) {
  struct state *s = userdata;
  s->ran++;
  if (s->queued < s->total) {
    s->queued++;
    BENCH_CHECK(async_loop_call_soon(loop, fanout_cb, s));
  }
}

int main(int argc, char **argv) {
  int chain = argc > 1 && strcmp(argv[1], "chain") == 0;
  uint64_t total = argc > 2 ? strtoull(argv[2], NULL, 10) : (chain ? 2000000u : 10000000u);
  uint64_t inflight = chain ? 1 : (argc > 3 ? strtoull(argv[3], NULL, 10) : 1000u);
  struct state s = {0, 0, total};
  async_loop *loop;
  BENCH_CHECK(async_loop_new(&loop));

  double t0 = bench_now();
  for (uint64_t i = 0; i < inflight && s.queued < total; i++) {
    s.queued++;
    BENCH_CHECK(async_loop_call_soon(loop, chain ? chain_cb : fanout_cb, &s));
  }
  BENCH_CHECK(async_loop_run(loop, ASYNC_RUN_DEFAULT));
  double secs = bench_now() - t0;

  BENCH_ASSERT(s.ran == total);
  BENCH_CHECK(async_loop_free(loop));
  printf("RESULT bench=callsoon_%s lib=libasync callbacks=%llu secs=%.6f ops_per_sec=%.0f\n",
         chain ? "chain" : "fanout", (unsigned long long)total, secs, (double)total / secs);
  return 0;
}
