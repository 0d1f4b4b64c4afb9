/*
 * timers.c: an idle timeout built from one repeating timer and
 * async_timer_again().
 *
 * A simulated connection must see activity at least every IDLE_MS. Each time
 * activity arrives it calls async_timer_again(), which restarts the idle
 * timer with its remembered repeat value, so the deadline slides forward
 * instead of a timer being created or re-started with new arguments (libev's
 * ev_timer_again idiom). The activity stops after a few bursts; IDLE_MS
 * later the idle timer fires, both handles are closed and the loop runs out
 * of work, so the program exits by itself (in about 400 ms).
 *
 * Build: cc timers.c $(pkg-config --cflags --libs libasync)
 */
#include <async.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#define IDLE_MS 150    /* idle timeout */
#define ACTIVITY_MS 50 /* the peer sends something this often... */
#define BURSTS 5       /* ...this many times, then goes quiet */

/* Prints what failed and exits: examples keep error handling short. */
static void check(int rc, const char *what) {
  if (rc < 0) {
    fprintf(stderr, "%s failed: %s (%s)\n", what, async_err_name(rc), async_strerror(rc));
    exit(1);
  }
}

struct conn {
  async_loop *loop;
  async_timer *idle;     /* the idle timeout */
  async_timer *activity; /* simulates the peer */
  uint64_t start_ms;
  int bursts;
  int closed; /* handles whose close callback ran */
};

/* Milliseconds since the demo started, on the loop's clock. */
static uint64_t elapsed(struct conn *c) {
  uint64_t now = 0;
  check(async_loop_now(&now, c->loop), "async_loop_now");
  return now - c->start_ms;
}

static void on_closed(async_handle *h, void *userdata) {
  (void)h;
  struct conn *c = userdata;
  c->closed++;
}

/* The peer did something: push the idle deadline back. */
static void on_activity(async_timer *t, void *userdata) {
  (void)t;
  struct conn *c = userdata;
  c->bursts++;
  uint64_t due = 0;
  check(async_timer_due_in(&due, c->idle), "async_timer_due_in");
  printf("%4" PRIu64 " ms  activity %d (idle timer was due in %" PRIu64 " ms), re-arming\n", elapsed(c), c->bursts,
         due);
  /* Restart the idle timer with its repeat value: due in IDLE_MS again. */
  check(async_timer_again(c->idle), "async_timer_again");
  if (c->bursts == BURSTS) {
    printf("%4" PRIu64 " ms  peer goes quiet\n", elapsed(c));
    check(async_timer_stop(c->activity), "async_timer_stop");
  }
}

/* Nothing happened for IDLE_MS: give up on the connection. */
static void on_idle(async_timer *t, void *userdata) {
  (void)t;
  struct conn *c = userdata;
  printf("%4" PRIu64 " ms  idle for %d ms, closing the connection\n", elapsed(c), IDLE_MS);
  /* Close both timers; their close callbacks run on a later iteration. */
  check(async_handle_close(async_timer_handle(c->idle), on_closed), "async_handle_close");
  check(async_handle_close(async_timer_handle(c->activity), on_closed), "async_handle_close");
}

int main(void) {
  struct conn c = {0};
  check(async_loop_new(&c.loop), "async_loop_new");
  check(async_loop_now(&c.start_ms, c.loop), "async_loop_now");

  /* The idle timer repeats every IDLE_MS: that repeat value is what
   * async_timer_again() re-arms with. */
  check(async_timer_new(&c.idle, c.loop, &c), "async_timer_new");
  check(async_timer_start(c.idle, IDLE_MS, IDLE_MS, on_idle), "async_timer_start");

  check(async_timer_new(&c.activity, c.loop, &c), "async_timer_new");
  check(async_timer_start(c.activity, ACTIVITY_MS, ACTIVITY_MS, on_activity), "async_timer_start");

  /* Runs until no referenced handle is left: both timers closed. */
  check(async_loop_run(c.loop, ASYNC_RUN_DEFAULT), "async_loop_run");
  printf("%4" PRIu64 " ms  loop finished, %d handles closed\n", elapsed(&c), c.closed);

  check(async_loop_free(c.loop), "async_loop_free");
  return c.closed == 2 && c.bursts == BURSTS ? 0 : 1;
}
