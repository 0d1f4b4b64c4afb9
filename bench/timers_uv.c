/*
 * 1M timers start + fire on libuv (libuv's million_timers shape, 1M instead
 * of 10M): a malloc'd uv_timer_t array, as libuv's own benchmark does; timer
 * i gets timeout i/1000 + 1 ms, one-shot; run until all fired; then
 * uv_close every timer and run to finish the closes.
 *
 * Same phases and output as timers_async.c. usage: timers_uv [count]
 */
#define _POSIX_C_SOURCE 200809L
#include <uv.h>

#include "bench_common.h"

static uint64_t fired;

static void timer_cb(uv_timer_t *timer) {
  (void)timer;
  fired++;
}

int main(int argc, char **argv) {
  size_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000u;
  uv_loop_t loop;
  BENCH_CHECK(uv_loop_init(&loop));

  double w0 = bench_now(), c0 = bench_cpu();
  uv_timer_t *timers = malloc(n * sizeof *timers);
  BENCH_ASSERT(timers != NULL);
  uv_update_time(&loop); /* timeouts count from the start of this phase */
  for (size_t i = 0; i < n; i++) {
    BENCH_CHECK(uv_timer_init(&loop, &timers[i]));
    BENCH_CHECK(uv_timer_start(&timers[i], timer_cb, i / 1000 + 1, 0));
  }
  double w1 = bench_now(), c1 = bench_cpu();
  BENCH_CHECK(uv_run(&loop, UV_RUN_DEFAULT));
  double w2 = bench_now(), c2 = bench_cpu();
  BENCH_ASSERT(fired == n);
  for (size_t i = 0; i < n; i++) uv_close((uv_handle_t *)&timers[i], NULL);
  BENCH_CHECK(uv_run(&loop, UV_RUN_DEFAULT));
  free(timers);
  double w3 = bench_now(), c3 = bench_cpu();
  BENCH_CHECK(uv_loop_close(&loop));

  printf("RESULT bench=timers lib=libuv timers=%zu start_s=%.4f dispatch_s=%.4f cleanup_s=%.4f "
         "total_s=%.4f start_cpu=%.4f dispatch_cpu=%.4f cleanup_cpu=%.4f total_cpu=%.4f maxrss_mib=%.1f\n",
         n, w1 - w0, w2 - w1, w3 - w2, w3 - w0, c1 - c0, c2 - c1, c3 - c2, c3 - c0, bench_maxrss_mib());
  return 0;
}
