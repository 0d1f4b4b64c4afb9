/*
 * future_chain.c: futures chained with callbacks, and a timeout.
 *
 * 1. A producer resolves a future from a timer (think: a reply arriving).
 * 2. Its done callback runs the second step, which resolves another future
 *    with a value computed from the first.
 * 3. async_loop_run_until() waits for the end of that chain: the
 *    synchronous wrapper over the asynchronous API.
 * 4. A slow operation is wrapped in async_future_timeout(): the deadline
 *    passes first, the slow operation is cancelled (its producer hears about
 *    it through the cancel hook) and the wrapper fails with ASYNC_ETIMEDOUT.
 *
 * Build: cc future_chain.c $(pkg-config --cflags --libs libasync)
 */
#include <async.h>

#include <stdio.h>
#include <stdlib.h>

static void check(int rc, const char *what) {
  if (rc < 0) {
    fprintf(stderr, "%s failed: %s (%s)\n", what, async_err_name(rc), async_strerror(rc));
    exit(1);
  }
}

/* The destroy function of the values below: runs from the loop once their
 * future is released; context counts the values freed. */
static void free_value(void *value, void *context) {
  free(value);
  ++*(int *)context;
}

static int values_freed;

/* ---- a producer: resolves its future with *value after delay_ms --------- */

struct producer {
  async_future *future; /* owned by main(); the producer only completes it */
  async_timer *timer;
  int value;
  int cancelled;
};

static void on_producer_timer(async_timer *t, void *userdata) {
  struct producer *p = userdata;
  int *value = malloc(sizeof *value);
  if (value == NULL) {
    check(ASYNC_ENOMEM, "malloc");
  }
  *value = p->value;
  /* The future owns value from now on and frees it with free_value(). */
  check(async_future_resolve(p->future, value, free_value, &values_freed), "async_future_resolve");
  check(async_handle_close(async_timer_handle(t), NULL), "async_handle_close");
}

/* Called once: cancelled = 1 if the consumer gave up, 0 once we completed it. */
static void on_producer_cancel(async_future *f, int cancelled, void *userdata) {
  (void)f;
  struct producer *p = userdata;
  if (cancelled) {
    p->cancelled = 1;
    printf("producer: cancelled, stopping the operation\n");
    check(async_handle_close(async_timer_handle(p->timer), NULL), "async_handle_close");
  }
}

static void producer_start(struct producer *p, async_loop *loop, int value, uint64_t delay_ms) {
  p->value = value;
  check(async_future_new(&p->future, loop), "async_future_new");
  check(async_future_set_cancel(p->future, on_producer_cancel, p), "async_future_set_cancel");
  check(async_timer_new(&p->timer, loop, p), "async_timer_new");
  check(async_timer_start(p->timer, delay_ms, 0, on_producer_timer), "async_timer_start");
}

/* ---- step 2: runs from the first future's done callback ------------------ */

static void on_first_done(async_future *first, int status, void *userdata) {
  async_future *second = userdata;
  void *value = NULL;
  if (status != 0 || async_future_result(&value, first) != 0) {
    /* Pass the failure down the chain. */
    check(async_future_reject(second, status != 0 ? status : ASYNC_EINTERNAL), "async_future_reject");
    return;
  }
  int *doubled = malloc(sizeof *doubled);
  if (doubled == NULL) {
    check(async_future_reject(second, ASYNC_ENOMEM), "async_future_reject");
    return;
  }
  *doubled = *(int *)value * 2;
  printf("step 1 gave %d, step 2 doubles it\n", *(int *)value);
  check(async_future_resolve(second, doubled, free_value, &values_freed), "async_future_resolve");
}

int main(void) {
  async_loop *loop = NULL;
  check(async_loop_new(&loop), "async_loop_new");

  /* --- a chain: producer (50 ms) -> step 2 --- */
  struct producer fast = {0};
  producer_start(&fast, loop, 21, 50);
  async_future *second = NULL;
  check(async_future_new(&second, loop), "async_future_new");
  check(async_future_add_callback(fast.future, on_first_done, second), "async_future_add_callback");

  check(async_loop_run_until(loop, second), "async_loop_run_until");
  void *value = NULL;
  check(async_future_result(&value, second), "async_future_result");
  printf("chain result: %d\n", *(int *)value);

  /* --- a timeout: the operation takes 1000 ms, we wait 100 ms --- */
  struct producer slow = {0};
  producer_start(&slow, loop, 7, 1000);
  async_future *deadline = NULL;
  check(async_future_timeout(&deadline, slow.future, 100), "async_future_timeout");
  int rc = async_loop_run_until(loop, deadline);
  printf("slow operation: %s; its future is %s\n", async_err_name(rc),
         async_future_get_state(slow.future) == ASYNC_FUTURE_CANCELLED ? "cancelled" : "not cancelled");
  if (rc != ASYNC_ETIMEDOUT || !slow.cancelled) {
    fprintf(stderr, "expected a timeout and a cancelled producer\n");
    return 1;
  }

  /* Release every future, let the loop run the pending close callbacks and
   * destroy functions, then free it. */
  check(async_future_free(fast.future), "async_future_free");
  check(async_future_free(second), "async_future_free");
  check(async_future_free(slow.future), "async_future_free");
  check(async_future_free(deadline), "async_future_free");
  check(async_loop_run(loop, ASYNC_RUN_DEFAULT), "async_loop_run");
  if (values_freed != 2) {
    fprintf(stderr, "expected both values freed, got %d\n", values_freed);
    return 1;
  }
  check(async_loop_free(loop), "async_loop_free");
  return 0;
}
