/*
 * 1M timers start + fire on raw libev: a malloc'd ev_timer array; timer i
 * gets timeout i/1000 + 1 ms, one-shot; run until all fired. A fired libev
 * timer is inactive and holds nothing, so cleanup is only free().
 * Loop: ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV | EVFLAG_NOTIMERFD), the
 * flags libasync uses.
 *
 * Same phases and output as timers_async.c. usage: timers_ev [count]
 */
#define _POSIX_C_SOURCE 200809L
#include <ev.h>

#include "bench_common.h"

static uint64_t fired;

static void timer_cb(struct ev_loop *loop, ev_timer *timer, int revents) {
  (void)loop;
  (void)timer;
  (void)revents;
  fired++;
}

int main(int argc, char **argv) {
  size_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000u;
  struct ev_loop *loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV | EVFLAG_NOTIMERFD);
  BENCH_ASSERT(loop != NULL);

  double w0 = bench_now(), c0 = bench_cpu();
  ev_timer *timers = malloc(n * sizeof *timers);
  BENCH_ASSERT(timers != NULL);
  ev_now_update(loop); /* timeouts count from the start of this phase */
  for (size_t i = 0; i < n; i++) {
    ev_timer_init(&timers[i], timer_cb, (double)(i / 1000 + 1) / 1000.0, 0.);
    ev_timer_start(loop, &timers[i]);
  }
  double w1 = bench_now(), c1 = bench_cpu();
  ev_run(loop, 0);
  double w2 = bench_now(), c2 = bench_cpu();
  BENCH_ASSERT(fired == n);
  free(timers);
  double w3 = bench_now(), c3 = bench_cpu();
  ev_loop_destroy(loop);

  printf("RESULT bench=timers lib=libev timers=%zu start_s=%.4f dispatch_s=%.4f cleanup_s=%.4f "
         "total_s=%.4f start_cpu=%.4f dispatch_cpu=%.4f cleanup_cpu=%.4f total_cpu=%.4f maxrss_mib=%.1f\n",
         n, w1 - w0, w2 - w1, w3 - w2, w3 - w0, c1 - c0, c2 - c1, c3 - c2, c3 - c0, bench_maxrss_mib());
  return 0;
}
