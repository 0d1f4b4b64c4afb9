/*
 * graceful_shutdown.c: a service that does periodic work until SIGINT or
 * SIGTERM, then shuts down cleanly.
 *
 * The signals arrive as ordinary loop callbacks (async_signal), so the
 * shutdown code runs on the loop thread and may touch anything. On a signal
 * it stops the work timer, closes every handle and lets async_loop_run()
 * return because no referenced work is left; then the loop is freed.
 *
 *   ./graceful_shutdown              runs until Ctrl-C (or kill -TERM)
 *   ./graceful_shutdown --self-test  raises SIGTERM to itself after 200 ms
 *
 * Build: cc graceful_shutdown.c $(pkg-config --cflags --libs libasync)
 */
#include <async.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WORK_MS 50       /* one unit of "work" this often */
#define SELF_TEST_MS 200 /* --self-test: SIGTERM after this long */

static void check(int rc, const char *what) {
  if (rc < 0) {
    fprintf(stderr, "%s failed: %s (%s)\n", what, async_err_name(rc), async_strerror(rc));
    exit(1);
  }
}

struct service {
  async_signal *sigint;
  async_signal *sigterm;
  async_timer *work;
  async_timer *self_test; /* NULL unless --self-test */
  int ticks;
  int open_handles;
  int stopping;
};

static void on_closed(async_handle *h, void *userdata) {
  (void)h;
  struct service *s = userdata;
  s->open_handles--;
}

/* The close callback gets the handle's userdata (s); it counts down. */
static void close_handle(async_handle *h) { check(async_handle_close(h, on_closed), "async_handle_close"); }

static void on_work(async_timer *t, void *userdata) {
  (void)t;
  struct service *s = userdata;
  s->ticks++;
  printf("working... tick %d\n", s->ticks);
  fflush(stdout);
}

static void on_signal(async_signal *sig, int signum, void *userdata) {
  (void)sig;
  struct service *s = userdata;
  if (s->stopping) {
    return; /* a second signal while shutting down: nothing more to do */
  }
  s->stopping = 1;
  printf("got %s, shutting down after %d ticks\n", signum == SIGINT ? "SIGINT" : "SIGTERM", s->ticks);

  /* Stop the work first (no more ticks), then close everything. Closing
   * the signal watchers restores the default dispositions. */
  check(async_timer_stop(s->work), "async_timer_stop");
  close_handle(async_timer_handle(s->work));
  close_handle(async_signal_handle(s->sigint));
  close_handle(async_signal_handle(s->sigterm));
  if (s->self_test != NULL) {
    close_handle(async_timer_handle(s->self_test));
  }
}

/* --self-test: play the operator typing `kill -TERM <pid>`. */
static void on_self_test(async_timer *t, void *userdata) {
  (void)t;
  (void)userdata;
  printf("self-test: raising SIGTERM\n");
  if (raise(SIGTERM) != 0) {
    perror("raise");
    exit(1);
  }
}

int main(int argc, char **argv) {
  int self_test = argc > 1 && strcmp(argv[1], "--self-test") == 0;
  if (argc > 2 || (argc == 2 && !self_test)) {
    fprintf(stderr, "usage: %s [--self-test]\n", argv[0]);
    return 2;
  }

  struct service s = {0};
  async_loop *loop = NULL;
  check(async_loop_new(&loop), "async_loop_new");

  check(async_signal_new(&s.sigint, loop, &s), "async_signal_new");
  check(async_signal_start(s.sigint, SIGINT, on_signal), "async_signal_start");
  check(async_signal_new(&s.sigterm, loop, &s), "async_signal_new");
  check(async_signal_start(s.sigterm, SIGTERM, on_signal), "async_signal_start");
  s.open_handles += 2;

  check(async_timer_new(&s.work, loop, &s), "async_timer_new");
  check(async_timer_start(s.work, WORK_MS, WORK_MS, on_work), "async_timer_start");
  s.open_handles++;

  if (self_test) {
    check(async_timer_new(&s.self_test, loop, &s), "async_timer_new");
    check(async_timer_start(s.self_test, SELF_TEST_MS, 0, on_self_test), "async_timer_start");
    s.open_handles++;
  } else {
    printf("running; press Ctrl-C to stop\n");
    fflush(stdout);
  }

  /* Returns 0 once every handle is closed and their close callbacks ran. */
  check(async_loop_run(loop, ASYNC_RUN_DEFAULT), "async_loop_run");
  check(async_loop_free(loop), "async_loop_free");

  printf("clean exit (%d handles left open)\n", s.open_handles);
  return s.open_handles == 0 && s.stopping ? 0 : 1;
}
