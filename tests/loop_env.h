/*
 * A bounded test loop for transport tests (streams, datagrams): a loop
 * with a 5 ms repeating guard timer, so ASYNC_RUN_ONCE never blocks
 * longer, run_until() with a time cap, and a record of the call context
 * (inside a library call, inside async_loop_run) that recording protocols
 * check their callbacks against. Static inline functions only.
 */
#ifndef LIBASYNC_LOOP_ENV_H
#define LIBASYNC_LOOP_ENV_H

#include "test_util.h"

/* ------------------------------------------------------------------ */
/* Call context: inside a library call / inside async_loop_run          */

static int g_depth;  /* > 0 while the test is inside a (non-run) library call */
static int g_in_run; /* > 0 while inside async_loop_run */
static int g_rc;
/* Wraps a library call that must not run protocol callbacks (but
 * pause_writing) synchronously. Nestable (callbacks use it too). */
#define LIB(call) (g_depth++, g_rc = (call), g_depth--, g_rc)

/* ------------------------------------------------------------------ */
/* Environment: a loop plus a 5 ms guard timer bounding ASYNC_RUN_ONCE  */

struct env {
  async_loop *loop;
  async_timer *guard;
};

static inline void env_init(struct env *e) {
  e->loop = tu_loop_new();
  e->guard = tu_timer_start(e->loop, NULL, 5, 5, tu_noop_timer_cb);
}

static inline int run_once(struct env *e, int mode) {
  g_in_run++;
  int rc = async_loop_run(e->loop, mode);
  g_in_run--;
  return rc;
}

/* Closes the guard, runs (bounded) until nothing is left, frees the loop. */
static inline void env_finish(struct env *e) {
  tu_close(async_timer_handle(e->guard));
  int rc = 1;
  uint64_t end = tu_now_ms() + 2000;
  while (rc != 0 && tu_now_ms() < end) {
    rc = run_once(e, ASYNC_RUN_NOWAIT);
    if (rc != 0) {
      tu_sleep_ms(1);
    }
  }
  if (rc != 0) {
    fail_msg("loop still has work 2 s after the test ended (a transport never finished?)");
  }
  assert_int_equal(async_loop_free(e->loop), 0);
}

typedef int (*cond_fn)(void *arg);
typedef void (*step_fn)(void *arg);

/* Runs ONCE iterations (each <= ~5 ms) until cond(arg) holds, calling
 * step(sarg) before each; 1 if cond held, 0 after max_ms. */
static inline int run_until(struct env *e, cond_fn cond, void *arg, step_fn step, void *sarg, uint64_t max_ms) {
  uint64_t end = tu_now_ms() + max_ms;
  for (;;) {
    if (cond && cond(arg)) {
      return 1;
    }
    if (tu_now_ms() >= end) {
      return 0;
    }
    if (step) {
      step(sarg);
      if (cond && cond(arg)) {
        return 1;
      }
    }
    if (run_once(e, ASYNC_RUN_ONCE) < 0) {
      return 0;
    }
  }
}

/* Runs for ms milliseconds (nothing expected to end it). */
static inline void run_for(struct env *e, uint64_t ms, step_fn step, void *sarg) {
  (void)run_until(e, NULL, NULL, step, sarg, ms);
}

static inline void run_nowait(struct env *e, int n) {
  for (int i = 0; i < n; i++) {
    assert_true(run_once(e, ASYNC_RUN_NOWAIT) >= 0);
  }
}

#endif
