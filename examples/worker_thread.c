/*
 * worker_thread.c: a thread of your own computes, the loop consumes.
 *
 * libasync never creates threads. When you have one (a worker, a GUI
 * thread, a binding's runtime), async_loop_post() is how it hands work to
 * the loop: it is one of the two calls that are safe from any thread. Each
 * posted callback runs on the loop thread, in posting order, and is the
 * final notification for its userdata, so the loop side frees the result.
 *
 * The loop is kept alive by a watchdog timer (a referenced handle) until the
 * worker posts its "done" message; the main thread then joins the worker.
 *
 * Build: cc worker_thread.c $(pkg-config --cflags --libs libasync) -pthread
 */
#include <async.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define JOBS 5
#define WATCHDOG_MS 10000 /* give up if the worker never finishes */

static void check(int rc, const char *what) {
  if (rc < 0) {
    fprintf(stderr, "%s failed: %s (%s)\n", what, async_err_name(rc), async_strerror(rc));
    exit(1);
  }
}

struct app {
  async_loop *loop;
  async_timer *watchdog;
  int received;
  int post_errors; /* written by the worker, read after the join */
  int done;
};

/* One result, allocated by the worker, freed by the loop. */
struct result {
  struct app *app;
  int job;
  uint64_t limit;
  uint64_t primes;
};

static uint64_t count_primes(uint64_t limit) {
  uint64_t n = 0;
  for (uint64_t i = 2; i < limit; i++) {
    int prime = 1;
    for (uint64_t d = 2; d * d <= i; d++) {
      if (i % d == 0) {
        prime = 0;
        break;
      }
    }
    n += (uint64_t)prime;
  }
  return n;
}

/* ---- loop thread ---------------------------------------------------------- */

static void on_result(async_loop *loop, void *userdata) {
  (void)loop;
  struct result *r = userdata;
  r->app->received++;
  printf("loop: job %d: %" PRIu64 " primes below %" PRIu64 "\n", r->job, r->primes, r->limit);
  free(r);
}

static void on_worker_done(async_loop *loop, void *userdata) {
  (void)loop;
  struct app *a = userdata;
  a->done = 1;
  printf("loop: worker finished, %d results received\n", a->received);
  /* The last referenced handle goes away: async_loop_run() returns. */
  check(async_handle_close(async_timer_handle(a->watchdog), NULL), "async_handle_close");
}

static void on_watchdog(async_timer *t, void *userdata) {
  (void)t;
  (void)userdata;
  fprintf(stderr, "watchdog: the worker did not finish in time\n");
  exit(1);
}

/* ---- worker thread: must only use async_loop_post() ---------------------- */

static void *worker(void *arg) {
  struct app *a = arg;
  for (int job = 1; job <= JOBS; job++) {
    struct result *r = malloc(sizeof *r);
    if (r == NULL) {
      a->post_errors++;
      continue;
    }
    r->app = a;
    r->job = job;
    r->limit = (uint64_t)job * 20000;
    r->primes = count_primes(r->limit);
    if (async_loop_post(a->loop, on_result, r) != 0) {
      free(r); /* not posted: the userdata is still ours */
      a->post_errors++;
    }
  }
  if (async_loop_post(a->loop, on_worker_done, a) != 0) {
    a->post_errors++;
  }
  return NULL;
}

int main(void) {
  struct app a = {0};
  check(async_loop_new(&a.loop), "async_loop_new");
  check(async_timer_new(&a.watchdog, a.loop, &a), "async_timer_new");
  check(async_timer_start(a.watchdog, WATCHDOG_MS, 0, on_watchdog), "async_timer_start");

  pthread_t thread;
  if (pthread_create(&thread, NULL, worker, &a) != 0) {
    fprintf(stderr, "pthread_create failed\n");
    return 1;
  }

  int rc = async_loop_run(a.loop, ASYNC_RUN_DEFAULT);
  if (pthread_join(thread, NULL) != 0) {
    fprintf(stderr, "pthread_join failed\n");
    return 1;
  }
  check(rc, "async_loop_run");
  if (a.post_errors != 0) {
    fprintf(stderr, "%d posts failed\n", a.post_errors);
    return 1;
  }
  check(async_loop_free(a.loop), "async_loop_free");
  printf("main: worker joined, %d/%d results\n", a.received, JOBS);
  return a.done && a.received == JOBS ? 0 : 1;
}
