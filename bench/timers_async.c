/*
 * 1M timers start + fire on libasync (libuv's million_timers shape, 1M
 * instead of 10M): timer i gets timeout i/1000 + 1 ms (1 ms more per 1000
 * timers, 1..1000 ms), one-shot; run until all fired; then close them all.
 *
 * Phases (wall and CPU time each): start (async_timer_new + async_timer_start
 * for every timer), dispatch (async_loop_run until all fired), cleanup
 * (async_handle_close for every timer + run to release them). Peak RSS from
 * getrusage(ru_maxrss) at the end; run each variant in its own process.
 *
 * usage: timers_async [count]
 */
#define _POSIX_C_SOURCE 200809L
#include <async.h>

#include "bench_common.h"

static uint64_t fired;

static void timer_cb(async_timer *timer, void *userdata) {
  (void)timer;
  (void)userdata;
  fired++;
}

int main(int argc, char **argv) {
  size_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000u;
  async_loop *loop;
  BENCH_CHECK(async_loop_new(&loop));

  double w0 = bench_now(), c0 = bench_cpu();
  async_timer **timers = malloc(n * sizeof *timers);
  BENCH_ASSERT(timers != NULL);
  for (size_t i = 0; i < n; i++) {
    BENCH_CHECK(async_timer_new(&timers[i], loop, NULL));
    BENCH_CHECK(async_timer_start(timers[i], i / 1000 + 1, 0, timer_cb));
  }
  double w1 = bench_now(), c1 = bench_cpu();
  BENCH_CHECK(async_loop_run(loop, ASYNC_RUN_DEFAULT));
  double w2 = bench_now(), c2 = bench_cpu();
  BENCH_ASSERT(fired == n);
  for (size_t i = 0; i < n; i++) BENCH_CHECK(async_handle_close(async_timer_handle(timers[i]), NULL));
  BENCH_CHECK(async_loop_run(loop, ASYNC_RUN_DEFAULT));
  free(timers);
  double w3 = bench_now(), c3 = bench_cpu();
  BENCH_CHECK(async_loop_free(loop));

  printf("RESULT bench=timers lib=libasync timers=%zu start_s=%.4f dispatch_s=%.4f cleanup_s=%.4f "
         "total_s=%.4f start_cpu=%.4f dispatch_cpu=%.4f cleanup_cpu=%.4f total_cpu=%.4f maxrss_mib=%.1f\n",
         n, w1 - w0, w2 - w1, w3 - w2, w3 - w0, c1 - c0, c2 - c1, c3 - c2, c3 - c0, bench_maxrss_mib());
  return 0;
}
