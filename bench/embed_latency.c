/*
 * Wake-up latency of a loop embedded in a GLib GMainLoop through
 * async_loop_fd() (a GSource made from the fd alone), against the same
 * loop run by itself with async_loop_run(ASYNC_RUN_DEFAULT).
 *
 *   embed_latency post  default|glib N   another thread posts a callback
 *                                        while the loop sleeps; latency =
 *                                        callback start - post call
 *   embed_latency timer default|glib N   a 1 ms timer; latency = callback
 *                                        start - (timer start + 1 ms)
 *
 * Prints "RESULT kind host p50_us=... p99_us=... n=...". The loop is asleep
 * before every sample (the poster waits 200 us between posts, each timer is
 * started from the previous callback).
 */
#define _GNU_SOURCE
#include <async.h>
#include <glib-unix.h>
#include <glib.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void check(int rc, const char *what) {
  if (rc < 0) {
    fprintf(stderr, "%s: %s\n", what, async_err_name(rc));
    exit(1);
  }
}

struct bench {
  async_loop *loop;
  GMainLoop *main; /* NULL: run(DEFAULT) */
  int n, done;
  uint64_t *samples;
  /* post */
  atomic_uint_fast64_t posted_at;
  atomic_int acked;
  /* timer */
  async_timer *timer;
  uint64_t due_at;
};

static void finish_if_done(struct bench *b) {
  if (b->done < b->n) return;
  if (b->main)
    g_main_loop_quit(b->main);
  else
    async_loop_stop(b->loop);
}

static void on_post(async_loop *loop, void *ud) {
  (void)loop;
  uint64_t t = now_ns();
  struct bench *b = ud;
  b->samples[b->done++] = t - atomic_load(&b->posted_at);
  atomic_store(&b->acked, 1);
  finish_if_done(b);
}

static void *poster(void *arg) {
  struct bench *b = arg;
  for (int i = 0; i < b->n; i++) {
    struct timespec pause = {0, 200000};
    nanosleep(&pause, NULL); /* the loop goes back to sleep */
    atomic_store(&b->acked, 0);
    atomic_store(&b->posted_at, now_ns());
    check(async_loop_post(b->loop, on_post, b), "post");
    while (!atomic_load(&b->acked)) sched_yield();
  }
  return NULL;
}

static void on_timer(async_timer *t, void *ud) {
  uint64_t now = now_ns();
  struct bench *b = ud;
  b->samples[b->done++] = now - b->due_at;
  if (b->done < b->n) {
    b->due_at = now_ns() + 1000000u;
    check(async_timer_start(t, 1, 0, on_timer), "timer");
  }
  finish_if_done(b);
}

static gboolean on_fd(gint fd, GIOCondition cond, gpointer ud) {
  (void)fd;
  (void)cond;
  async_loop_run(((struct bench *)ud)->loop, ASYNC_RUN_NOWAIT);
  return G_SOURCE_CONTINUE;
}

static int cmp(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc != 4 || (strcmp(argv[1], "post") && strcmp(argv[1], "timer")) ||
      (strcmp(argv[2], "default") && strcmp(argv[2], "glib"))) {
    fprintf(stderr, "usage: embed_latency post|timer default|glib N\n");
    return 2;
  }
  struct bench b = {.n = atoi(argv[3])};
  if (b.n <= 0) return 2;
  b.samples = calloc((size_t)b.n, sizeof *b.samples);
  check(async_loop_new(&b.loop), "loop");
  int post = strcmp(argv[1], "post") == 0;
  GMainContext *ctx = NULL;
  GSource *src = NULL;
  if (strcmp(argv[2], "glib") == 0) {
    int fd;
    check(async_loop_fd(&fd, b.loop), "async_loop_fd");
    ctx = g_main_context_new();
    b.main = g_main_loop_new(ctx, FALSE);
    src = g_unix_fd_source_new(fd, G_IO_IN);
    g_source_set_callback(src, G_SOURCE_FUNC(on_fd), &b, NULL);
    g_source_attach(src, ctx);
  }
  pthread_t thread;
  if (post) {
    check(async_loop_hold(b.loop), "hold"); /* run(DEFAULT) waits for posts */
    pthread_create(&thread, NULL, poster, &b);
  } else {
    check(async_timer_new(&b.timer, b.loop, &b), "timer");
    b.due_at = now_ns() + 1000000u;
    check(async_timer_start(b.timer, 1, 0, on_timer), "timer");
  }
  if (b.main)
    g_main_loop_run(b.main);
  else
    async_loop_run(b.loop, ASYNC_RUN_DEFAULT);
  if (post) {
    pthread_join(thread, NULL);
    check(async_loop_unhold(b.loop), "unhold");
  } else {
    check(async_handle_close(async_timer_handle(b.timer), NULL), "close");
  }
  if (src) {
    g_source_destroy(src);
    g_source_unref(src);
    g_main_loop_unref(b.main);
    g_main_context_unref(ctx);
  }
  check(async_loop_run(b.loop, ASYNC_RUN_DEFAULT), "run");
  check(async_loop_free(b.loop), "free");
  qsort(b.samples, (size_t)b.n, sizeof *b.samples, cmp);
  printf("RESULT %s %s p50_us=%.1f p99_us=%.1f n=%d\n", argv[1], argv[2], b.samples[b.n / 2] / 1e3,
         b.samples[(size_t)b.n * 99 / 100] / 1e3, b.n);
  free(b.samples);
  return 0;
}
