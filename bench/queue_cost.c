/*
 * Cost per event delivered through the completion queue (async/queue.h)
 * against the callback path, on the same events: posts made on the loop's
 * thread, delivered in batches of BATCH. The callback path posts with
 * async_loop_post and runs the loop (one callback per event); the queue
 * path posts with async_queue_post and drains with async_queue_poll (one
 * record per event, BATCH records per call).
 *
 * usage: queue_cost callback|queue EVENTS
 * prints: mode events ns_per_event
 * bench/queue_cost.sh runs it under callgrind at two lengths for the
 * instructions per event.
 */
#define _POSIX_C_SOURCE 200809L
#include <async.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH 256

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t g_sum;
static void on_post(async_loop *loop, void *ud) {
  (void)loop;
  g_sum += (uint64_t)(uintptr_t)ud;
}

static void run_callbacks(async_loop *loop, long events) {
  for (long done = 0; done < events; done += BATCH) {
    for (long i = 0; i < BATCH; ++i) async_loop_post(loop, on_post, (void *)(uintptr_t)(done + i));
    async_loop_run(loop, ASYNC_RUN_NOWAIT);
  }
}

static void run_queue(async_loop *loop, long events) {
  async_queue *q = NULL;
  if (async_queue_new(&q, loop) != 0) exit(1);
  async_event ev[BATCH];
  for (long done = 0; done < events; done += BATCH) {
    for (long i = 0; i < BATCH; ++i) async_queue_post(q, (uint64_t)(done + i));
    int n = async_queue_poll(ev, BATCH, q, 0);
    for (int i = 0; i < n; ++i) g_sum += ev[i].token;
  }
  async_queue_free(q);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s callback|queue EVENTS\n", argv[0]);
    return 2;
  }
  long events = atol(argv[2]);
  int queue = strcmp(argv[1], "queue") == 0;
  async_loop *loop = NULL;
  if (async_loop_new(&loop) != 0) return 1;
  uint64_t t0 = now_ns();
  if (queue)
    run_queue(loop, events);
  else
    run_callbacks(loop, events);
  double ns = (double)(now_ns() - t0) / (double)events;
  async_loop_run(loop, ASYNC_RUN_NOWAIT);
  async_loop_free(loop);
  printf("%s %ld %.1f\n", argv[1], events, ns);
  return g_sum == 0;
}
