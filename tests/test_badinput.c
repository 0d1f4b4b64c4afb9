/*
 * Bad input never crashes (DESIGN.md §2.11): NULL pointers, wrong object
 * kinds (every object carries a tag checked at the boundary), foreign
 * memory, double close, use between close and its callback, invalid fds,
 * signal numbers, run modes, metrics, hook kinds and event masks, for
 * every public function. After each group the loop still works (a timer
 * fires) and everything is freed (async_loop_free == 0).
 */
#include "test_util.h"

#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void count_timer_cb(async_timer *t, void *ud) {
  (*(int *)ud)++;
  async_handle_close(async_timer_handle(t), NULL);
}

/* The loop still works: a fresh 1 ms timer fires exactly once and
 * run(DEFAULT) returns 0 (so the caller must have nothing else active). */
static void assert_loop_works(async_loop *loop) {
  int fired = 0;
  tu_timer_start(loop, &fired, 1, 0, count_timer_cb);
  uint64_t t0 = tu_now_ns();
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_true(tu_elapsed_ms(t0) < 5000.0);
  assert_int_equal(fired, 1);
}

/* Memory that is no libasync object (zeroed / all ones), aligned. */
static uint64_t g_foreign0[16];
static uint64_t g_foreign1[16];

/* ------------------------------------------------------------------ */

static void test_null_loop_functions(void **state) {
  (void)state;
  uint64_t u = 0;
  int64_t i64 = 0;
  assert_int_equal(async_loop_new(NULL), ASYNC_EINVAL);
  assert_int_equal(async_loop_free(NULL), ASYNC_EINVAL);
  assert_int_equal(async_loop_run(NULL, ASYNC_RUN_DEFAULT), ASYNC_EINVAL);
  assert_int_equal(async_loop_run(NULL, ASYNC_RUN_NOWAIT), ASYNC_EINVAL);
  assert_int_equal(async_loop_stop(NULL), ASYNC_EINVAL);
  assert_int_equal(async_loop_alive(NULL), ASYNC_EINVAL);
  assert_int_equal(async_loop_now(&u, NULL), ASYNC_EINVAL);
  assert_int_equal(async_loop_now_update(NULL), ASYNC_EINVAL);
  assert_int_equal(async_loop_timeout(&i64, NULL), ASYNC_EINVAL);
  assert_int_equal(async_loop_call_soon(NULL, tu_noop_soon_cb, NULL), ASYNC_EINVAL);
  assert_int_equal(async_loop_post(NULL, tu_noop_soon_cb, NULL), ASYNC_EINVAL);
  assert_int_equal(async_loop_wakeup(NULL), ASYNC_EINVAL);
  assert_int_equal(async_loop_set_log(NULL, tu_noop_log_cb, NULL, NULL), ASYNC_EINVAL);
  assert_int_equal(async_loop_set_slow_callback(NULL, 10), ASYNC_EINVAL);
  assert_int_equal(async_loop_metric(&u, NULL, ASYNC_METRIC_ITERATIONS), ASYNC_EINVAL);
  assert_int_equal(async_loop_run_until(NULL, NULL), ASYNC_EINVAL);

  async_loop *loop = tu_loop_new();
  /* NULL outputs and callbacks on a good loop. */
  assert_int_equal(async_loop_now(NULL, loop), ASYNC_EINVAL);
  assert_int_equal(async_loop_timeout(NULL, loop), ASYNC_EINVAL);
  assert_int_equal(async_loop_metric(NULL, loop, ASYNC_METRIC_ITERATIONS), ASYNC_EINVAL);
  assert_int_equal(async_loop_call_soon(loop, NULL, NULL), ASYNC_EINVAL);
  assert_int_equal(async_loop_post(loop, NULL, NULL), ASYNC_EINVAL);
  assert_int_equal(async_loop_run_until(loop, NULL), ASYNC_EINVAL);
  /* Nothing got queued by the failed calls. */
  assert_int_equal(async_loop_alive(loop), 0);
  assert_int_equal(async_loop_timeout(&i64, loop), 0);
  assert_int_equal(i64, -1);
  assert_loop_works(loop);
  assert_int_equal(async_loop_free(loop), 0);
}

static void test_null_constructors(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  async_timer *t = NULL;
  async_watcher *w = NULL;
  async_hook *h = NULL;
  async_signal *s = NULL;
  async_future *f = NULL;

  assert_int_equal(async_timer_new(NULL, loop, NULL), ASYNC_EINVAL);
  assert_int_equal(async_timer_new(&t, NULL, NULL), ASYNC_EINVAL);
  assert_int_equal(async_watcher_new(NULL, loop, sv[0], NULL), ASYNC_EINVAL);
  assert_int_equal(async_watcher_new(&w, NULL, sv[0], NULL), ASYNC_EINVAL);
  assert_int_equal(async_hook_new(NULL, loop, ASYNC_HOOK_IDLE, NULL), ASYNC_EINVAL);
  assert_int_equal(async_hook_new(&h, NULL, ASYNC_HOOK_IDLE, NULL), ASYNC_EINVAL);
  assert_int_equal(async_signal_new(NULL, loop, NULL), ASYNC_EINVAL);
  assert_int_equal(async_signal_new(&s, NULL, NULL), ASYNC_EINVAL);
  assert_int_equal(async_future_new(NULL, loop), ASYNC_EINVAL);
  assert_int_equal(async_future_new(&f, NULL), ASYNC_EINVAL);
  assert_null(t);
  assert_null(w);
  assert_null(h);
  assert_null(s);
  assert_null(f);

  async_future *in[1] = {NULL};
  async_future *out = NULL;
  assert_int_equal(async_future_all(NULL, loop, in, 0), ASYNC_EINVAL);
  assert_int_equal(async_future_all(&out, NULL, in, 0), ASYNC_EINVAL);
  assert_int_equal(async_future_any(NULL, loop, in, 1), ASYNC_EINVAL);
  assert_int_equal(async_future_timeout(&out, NULL, 10), ASYNC_EINVAL);
  assert_null(out);

  /* Nothing was created: the loop is free to go. */
  assert_int_equal(async_loop_alive(loop), 0);
  assert_loop_works(loop);
  assert_int_equal(async_loop_free(loop), 0);
  tu_close_pair(sv);
}

static void test_null_handle_functions(void **state) {
  (void)state;
  uint64_t u = 0;
  assert_int_equal(async_handle_close(NULL, NULL), ASYNC_EINVAL);
  assert_int_equal(async_handle_ref(NULL), ASYNC_EINVAL);
  assert_int_equal(async_handle_unref(NULL), ASYNC_EINVAL);
  assert_int_equal(async_handle_has_ref(NULL), ASYNC_EINVAL);
  assert_int_equal(async_handle_is_active(NULL), ASYNC_EINVAL);
  assert_int_equal(async_handle_is_closing(NULL), ASYNC_EINVAL);
  assert_null(async_handle_loop(NULL));
  assert_null(async_handle_userdata(NULL));
  assert_int_equal(async_handle_set_userdata(NULL, &u), ASYNC_EINVAL);

  assert_null(async_timer_handle(NULL));
  assert_int_equal(async_timer_start(NULL, 1, 0, tu_noop_timer_cb), ASYNC_EINVAL);
  assert_int_equal(async_timer_stop(NULL), ASYNC_EINVAL);
  assert_int_equal(async_timer_again(NULL), ASYNC_EINVAL);
  assert_int_equal(async_timer_set_repeat(NULL, 1), ASYNC_EINVAL);
  assert_int_equal(async_timer_get_repeat(&u, NULL), ASYNC_EINVAL);
  assert_int_equal(async_timer_due_in(&u, NULL), ASYNC_EINVAL);

  assert_null(async_watcher_handle(NULL));
  assert_int_equal(async_watcher_start(NULL, ASYNC_READABLE, tu_noop_watcher_cb), ASYNC_EINVAL);
  assert_int_equal(async_watcher_set_events(NULL, ASYNC_READABLE), ASYNC_EINVAL);
  assert_int_equal(async_watcher_stop(NULL), ASYNC_EINVAL);
  assert_int_equal(async_watcher_fd(NULL), ASYNC_EINVAL);

  assert_null(async_hook_handle(NULL));
  assert_int_equal(async_hook_start(NULL, tu_noop_hook_cb), ASYNC_EINVAL);
  assert_int_equal(async_hook_stop(NULL), ASYNC_EINVAL);
  assert_int_equal(async_hook_get_kind(NULL), ASYNC_EINVAL);

  assert_null(async_signal_handle(NULL));
  assert_int_equal(async_signal_start(NULL, SIGUSR1, tu_noop_signal_cb), ASYNC_EINVAL);
  assert_int_equal(async_signal_stop(NULL), ASYNC_EINVAL);
  assert_int_equal(async_signal_signum(NULL), ASYNC_EINVAL);

  /* NULL outputs and callbacks on good objects. */
  async_loop *loop = tu_loop_new();
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  async_signal *s = NULL;
  async_timer *t = tu_timer_new(loop, NULL);
  async_watcher *w = tu_watcher_new(loop, sv[0], NULL);
  async_hook *h = tu_hook_new(loop, ASYNC_HOOK_CHECK, NULL);
  assert_int_equal(async_signal_new(&s, loop, NULL), 0);
  assert_int_equal(async_timer_get_repeat(NULL, t), ASYNC_EINVAL);
  assert_int_equal(async_timer_due_in(NULL, t), ASYNC_EINVAL);
  assert_int_equal(async_timer_start(t, 1, 0, NULL), ASYNC_EINVAL);
  assert_int_equal(async_watcher_start(w, ASYNC_READABLE, NULL), ASYNC_EINVAL);
  assert_int_equal(async_hook_start(h, NULL), ASYNC_EINVAL);
  assert_int_equal(async_signal_start(s, SIGUSR1, NULL), ASYNC_EINVAL);
  assert_int_equal(async_timer_again(t), ASYNC_ESTATE); /* never started */
  /* None of them started. */
  assert_int_equal(async_handle_is_active(async_timer_handle(t)), 0);
  assert_int_equal(async_handle_is_active(async_watcher_handle(w)), 0);
  assert_int_equal(async_handle_is_active(async_hook_handle(h)), 0);
  assert_int_equal(async_handle_is_active(async_signal_handle(s)), 0);
  assert_int_equal(async_loop_alive(loop), 0);
  tu_close(async_timer_handle(t));
  tu_close(async_watcher_handle(w));
  tu_close(async_hook_handle(h));
  tu_close(async_signal_handle(s));
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_loop_works(loop);
  assert_int_equal(async_loop_free(loop), 0);
  tu_close_pair(sv);
}

static void test_null_future_functions(void **state) {
  (void)state;
  void *v = NULL;
  assert_int_equal(async_future_free(NULL), ASYNC_EINVAL);
  assert_null(async_future_loop(NULL));
  assert_int_equal(async_future_get_state(NULL), ASYNC_EINVAL);
  assert_int_equal(async_future_result(&v, NULL), ASYNC_EINVAL);
  assert_int_equal(async_future_add_callback(NULL, tu_noop_future_cb, NULL), ASYNC_EINVAL);
  assert_int_equal(async_future_cancel(NULL), ASYNC_EINVAL);
  assert_int_equal(async_future_set_cancel(NULL, tu_noop_cancel_cb, NULL), ASYNC_EINVAL);
  assert_int_equal(async_future_resolve(NULL, NULL, NULL, NULL), ASYNC_EINVAL);
  assert_int_equal(async_future_reject(NULL, ASYNC_EIO), ASYNC_EINVAL);
  async_future *out = NULL;
  assert_int_equal(async_future_timeout(&out, NULL, 1), ASYNC_EINVAL);
  assert_null(out);

  async_loop *loop = tu_loop_new();
  async_future *f = NULL;
  assert_int_equal(async_future_new(&f, loop), 0);
  assert_int_equal(async_future_add_callback(f, NULL, NULL), ASYNC_EINVAL);
  assert_int_equal(async_future_set_cancel(f, NULL, NULL), ASYNC_EINVAL);
  assert_int_equal(async_future_timeout(NULL, f, 1), ASYNC_EINVAL);
  /* count > 0 with a NULL array, arrays holding NULL. */
  assert_int_equal(async_future_all(&out, loop, NULL, 1), ASYNC_EINVAL);
  assert_int_equal(async_future_any(&out, loop, NULL, 2), ASYNC_EINVAL);
  async_future *with_null[2] = {f, NULL};
  assert_int_equal(async_future_all(&out, loop, with_null, 2), ASYNC_EINVAL);
  assert_int_equal(async_future_any(&out, loop, with_null, 2), ASYNC_EINVAL);
  assert_null(out);
  /* The failed calls left f alone: pending, no callback attached. */
  assert_int_equal(async_future_get_state(f), ASYNC_FUTURE_PENDING);
  assert_int_equal(async_future_resolve(f, NULL, NULL, NULL), 0);
  assert_int_equal(async_loop_alive(loop), 0);
  assert_int_equal(async_future_free(f), 0);
  assert_loop_works(loop);
  assert_int_equal(async_loop_free(loop), 0);
}

/* ------------------------------------------------------------------ */
/* Wrong kinds                                                          */

struct objs {
  async_loop *loop;
  async_timer *t;
  async_watcher *w;
  async_hook *h;
  async_signal *s;
  async_future *f;
  int sv[2];
  int tfired;
  int wfired;
  int hfired;
};

static void objs_timer_cb(async_timer *t, void *ud) {
  (void)t;
  ((struct objs *)ud)->tfired++;
}

static void objs_watcher_cb(async_watcher *w, uint32_t ev, void *ud) {
  (void)w;
  (void)ev;
  ((struct objs *)ud)->wfired++;
}

static void objs_hook_cb(async_hook *h, void *ud) {
  (void)h;
  ((struct objs *)ud)->hfired++;
}

static void objs_new(struct objs *o) {
  memset(o, 0, sizeof *o);
  o->loop = tu_loop_new();
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, o->sv), 0);
  o->t = tu_timer_new(o->loop, o);
  o->w = tu_watcher_new(o->loop, o->sv[0], o);
  o->h = tu_hook_new(o->loop, ASYNC_HOOK_CHECK, o);
  assert_int_equal(async_signal_new(&o->s, o->loop, o), 0);
  assert_int_equal(async_future_new(&o->f, o->loop), 0);
  /* Active objects, so a wrongly applied stop would show. */
  assert_int_equal(async_timer_start(o->t, 60000, 1000, objs_timer_cb), 0);
  assert_int_equal(async_watcher_start(o->w, ASYNC_WRITABLE, objs_watcher_cb), 0);
  assert_int_equal(async_hook_start(o->h, objs_hook_cb), 0);
  memset(g_foreign0, 0, sizeof g_foreign0);
  memset(g_foreign1, 0xff, sizeof g_foreign1);
}

/* Every object is exactly as objs_new left it, and works. */
static void objs_check_and_free(struct objs *o) {
  uint64_t rep = 0;
  assert_int_equal(async_handle_is_active(async_timer_handle(o->t)), 1);
  assert_int_equal(async_timer_get_repeat(&rep, o->t), 0);
  assert_int_equal(rep, 1000);
  assert_int_equal(async_handle_is_active(async_watcher_handle(o->w)), 1);
  assert_int_equal(async_handle_is_active(async_hook_handle(o->h)), 1);
  assert_int_equal(async_handle_is_active(async_signal_handle(o->s)), 0);
  assert_int_equal(async_handle_is_closing(async_timer_handle(o->t)), 0);
  assert_int_equal(async_handle_is_closing(async_watcher_handle(o->w)), 0);
  assert_int_equal(async_handle_is_closing(async_hook_handle(o->h)), 0);
  assert_int_equal(async_handle_is_closing(async_signal_handle(o->s)), 0);
  assert_int_equal(async_handle_has_ref(async_timer_handle(o->t)), 1);
  assert_ptr_equal(async_handle_userdata(async_timer_handle(o->t)), o);
  assert_ptr_equal(async_handle_userdata(async_watcher_handle(o->w)), o);
  assert_int_equal(async_future_get_state(o->f), ASYNC_FUTURE_PENDING);
  assert_int_equal(async_watcher_fd(o->w), o->sv[0]);
  assert_int_equal(async_hook_get_kind(o->h), ASYNC_HOOK_CHECK);
  assert_int_equal(async_signal_signum(o->s), 0);
  assert_int_equal(async_loop_run(o->loop, ASYNC_RUN_NOWAIT), 1);
  assert_int_equal(o->wfired, 1);
  assert_int_equal(o->hfired, 1);
  assert_int_equal(o->tfired, 0);
  tu_close(async_timer_handle(o->t));
  tu_close(async_watcher_handle(o->w));
  tu_close(async_hook_handle(o->h));
  tu_close(async_signal_handle(o->s));
  assert_int_equal(async_future_free(o->f), 0);
  assert_int_equal(async_loop_run(o->loop, ASYNC_RUN_DEFAULT), 0);
  assert_loop_works(o->loop);
  assert_int_equal(async_loop_free(o->loop), 0);
  tu_close_pair(o->sv);
}

/* The kinds of struct objs' objects, as bits, to leave some out. */
enum { WK_TIMER = 1, WK_WATCHER = 2, WK_HOOK = 4, WK_SIGNAL = 8, WK_FUTURE = 16, WK_LOOP = 32 };

/* Calls fn(o, p) for each of o's timer, watcher, hook, signal, future and
 * loop (in that order) whose kind bit is not in skip, then for the zeroed
 * and the all-ones foreign memory. */
static void objs_each_wrong(struct objs *o, int skip, void (*fn)(struct objs *, void *)) {
  void *all[] = {o->t, o->w, o->h, o->s, o->f, o->loop, g_foreign0, g_foreign1};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
    if (i < 6 && (skip & (1 << i)) != 0) {
      continue;
    }
    fn(o, all[i]);
  }
}

/* objs_new, objs_each_wrong(skip, fn), objs_check_and_free. */
static void run_wrong_kind(int skip, void (*fn)(struct objs *, void *)) {
  struct objs o;
  objs_new(&o);
  objs_each_wrong(&o, skip, fn);
  objs_check_and_free(&o);
}

/* Timer functions given a watcher, hook, signal, future, loop or foreign
 * memory. */
static void wrong_timer(struct objs *o, void *p) {
  (void)o;
  async_timer *t = p;
  uint64_t u = 12345;
  assert_null(async_timer_handle(t));
  assert_int_equal(async_timer_start(t, 1, 0, tu_noop_timer_cb), ASYNC_EINVAL);
  assert_int_equal(async_timer_stop(t), ASYNC_EINVAL);
  assert_int_equal(async_timer_again(t), ASYNC_EINVAL);
  assert_int_equal(async_timer_set_repeat(t, 5), ASYNC_EINVAL);
  assert_int_equal(async_timer_get_repeat(&u, t), ASYNC_EINVAL);
  assert_int_equal(async_timer_due_in(&u, t), ASYNC_EINVAL);
}

static void test_wrong_kind_timer(void **state) {
  (void)state;
  run_wrong_kind(WK_TIMER, wrong_timer);
}

static void wrong_watcher(struct objs *o, void *p) {
  (void)o;
  async_watcher *w = p;
  assert_null(async_watcher_handle(w));
  assert_int_equal(async_watcher_start(w, ASYNC_READABLE, tu_noop_watcher_cb), ASYNC_EINVAL);
  assert_int_equal(async_watcher_set_events(w, ASYNC_READABLE), ASYNC_EINVAL);
  assert_int_equal(async_watcher_set_events(w, 0), ASYNC_EINVAL);
  assert_int_equal(async_watcher_stop(w), ASYNC_EINVAL);
  assert_int_equal(async_watcher_fd(w), ASYNC_EINVAL);
}

static void test_wrong_kind_watcher(void **state) {
  (void)state;
  run_wrong_kind(WK_WATCHER, wrong_watcher);
}

static void wrong_hook(struct objs *o, void *p) {
  (void)o;
  async_hook *h = p;
  assert_null(async_hook_handle(h));
  assert_int_equal(async_hook_start(h, tu_noop_hook_cb), ASYNC_EINVAL);
  assert_int_equal(async_hook_stop(h), ASYNC_EINVAL);
  assert_int_equal(async_hook_get_kind(h), ASYNC_EINVAL);
}

static void test_wrong_kind_hook(void **state) {
  (void)state;
  run_wrong_kind(WK_HOOK, wrong_hook);
}

static void wrong_signal(struct objs *o, void *p) {
  (void)o;
  async_signal *s = p;
  assert_null(async_signal_handle(s));
  assert_int_equal(async_signal_start(s, SIGUSR1, tu_noop_signal_cb), ASYNC_EINVAL);
  assert_int_equal(async_signal_stop(s), ASYNC_EINVAL);
  assert_int_equal(async_signal_signum(s), ASYNC_EINVAL);
}

static void test_wrong_kind_signal(void **state) {
  (void)state;
  struct objs o;
  objs_new(&o);
  objs_each_wrong(&o, WK_SIGNAL, wrong_signal);
  /* No handler was installed by the failed starts. */
  struct sigaction sa;
  assert_int_equal(sigaction(SIGUSR1, NULL, &sa), 0);
  assert_true(sa.sa_handler == SIG_DFL);
  objs_check_and_free(&o);
}

static void wrong_future(struct objs *o, void *p) {
  async_future *f = p;
  void *v = NULL;
  async_future *out = NULL;
  assert_int_equal(async_future_free(f), ASYNC_EINVAL);
  assert_null(async_future_loop(f));
  assert_int_equal(async_future_get_state(f), ASYNC_EINVAL);
  assert_int_equal(async_future_result(&v, f), ASYNC_EINVAL);
  assert_int_equal(async_future_add_callback(f, tu_noop_future_cb, NULL), ASYNC_EINVAL);
  assert_int_equal(async_future_cancel(f), ASYNC_EINVAL);
  assert_int_equal(async_future_set_cancel(f, tu_noop_cancel_cb, NULL), ASYNC_EINVAL);
  assert_int_equal(async_future_resolve(f, NULL, NULL, NULL), ASYNC_EINVAL);
  assert_int_equal(async_future_reject(f, ASYNC_EIO), ASYNC_EINVAL);
  assert_int_equal(async_future_timeout(&out, f, 1), ASYNC_EINVAL);
  assert_int_equal(async_loop_run_until(o->loop, f), ASYNC_EINVAL);
  async_future *arr[2] = {o->f, f};
  assert_int_equal(async_future_all(&out, o->loop, arr, 2), ASYNC_EINVAL);
  assert_int_equal(async_future_any(&out, o->loop, arr, 2), ASYNC_EINVAL);
  assert_null(out);
}

static void test_wrong_kind_future(void **state) {
  (void)state;
  run_wrong_kind(WK_FUTURE, wrong_future);
}

/* Handle functions given a future, a loop or foreign memory. */
static void wrong_handle(struct objs *o, void *p) {
  (void)o;
  async_handle *h = p;
  assert_int_equal(async_handle_close(h, NULL), ASYNC_EINVAL);
  assert_int_equal(async_handle_ref(h), ASYNC_EINVAL);
  assert_int_equal(async_handle_unref(h), ASYNC_EINVAL);
  assert_int_equal(async_handle_has_ref(h), ASYNC_EINVAL);
  assert_int_equal(async_handle_is_active(h), ASYNC_EINVAL);
  assert_int_equal(async_handle_is_closing(h), ASYNC_EINVAL);
  assert_null(async_handle_loop(h));
  assert_null(async_handle_userdata(h));
  assert_int_equal(async_handle_set_userdata(h, NULL), ASYNC_EINVAL);
}

static void test_wrong_kind_handle(void **state) {
  (void)state;
  run_wrong_kind(WK_TIMER | WK_WATCHER | WK_HOOK | WK_SIGNAL, wrong_handle);
}

/* Loop functions given a handle, a future or foreign memory. */
static void wrong_loop(struct objs *o, void *p) {
  async_loop *l = p;
  uint64_t u = 0;
  int64_t i64 = 0;
  async_timer *t = NULL;
  async_watcher *w = NULL;
  async_hook *h = NULL;
  async_signal *s = NULL;
  async_future *f = NULL;
  assert_int_equal(async_loop_free(l), ASYNC_EINVAL);
  assert_int_equal(async_loop_run(l, ASYNC_RUN_NOWAIT), ASYNC_EINVAL);
  assert_int_equal(async_loop_stop(l), ASYNC_EINVAL);
  assert_int_equal(async_loop_alive(l), ASYNC_EINVAL);
  assert_int_equal(async_loop_now(&u, l), ASYNC_EINVAL);
  assert_int_equal(async_loop_now_update(l), ASYNC_EINVAL);
  assert_int_equal(async_loop_timeout(&i64, l), ASYNC_EINVAL);
  assert_int_equal(async_loop_call_soon(l, tu_noop_soon_cb, NULL), ASYNC_EINVAL);
  /* post/wakeup never dereference the pointer: "no such loop". */
  int rc = async_loop_post(l, tu_noop_soon_cb, NULL);
  assert_true(rc == ASYNC_EINVAL || rc == ASYNC_ECLOSED);
  rc = async_loop_wakeup(l);
  assert_true(rc == ASYNC_EINVAL || rc == ASYNC_ECLOSED);
  assert_int_equal(async_loop_set_log(l, tu_noop_log_cb, NULL, NULL), ASYNC_EINVAL);
  assert_int_equal(async_loop_set_slow_callback(l, 5), ASYNC_EINVAL);
  assert_int_equal(async_loop_metric(&u, l, ASYNC_METRIC_ITERATIONS), ASYNC_EINVAL);
  assert_int_equal(async_loop_run_until(l, o->f), ASYNC_EINVAL);
  assert_int_equal(async_timer_new(&t, l, NULL), ASYNC_EINVAL);
  assert_int_equal(async_watcher_new(&w, l, o->sv[1], NULL), ASYNC_EINVAL);
  assert_int_equal(async_hook_new(&h, l, ASYNC_HOOK_PREPARE, NULL), ASYNC_EINVAL);
  assert_int_equal(async_signal_new(&s, l, NULL), ASYNC_EINVAL);
  assert_int_equal(async_future_new(&f, l), ASYNC_EINVAL);
  async_future *arr[1] = {o->f};
  assert_int_equal(async_future_all(&f, l, arr, 1), ASYNC_EINVAL);
  assert_int_equal(async_future_all(&f, l, arr, 0), ASYNC_EINVAL);
  assert_int_equal(async_future_any(&f, l, arr, 1), ASYNC_EINVAL);
  assert_null(t);
  assert_null(w);
  assert_null(h);
  assert_null(s);
  assert_null(f);
}

static void test_wrong_kind_loop(void **state) {
  (void)state;
  run_wrong_kind(WK_LOOP, wrong_loop);
}

/* Futures of another loop are not accepted by all/any/run_until. */
static void test_foreign_loop_futures(void **state) {
  (void)state;
  async_loop *l1 = tu_loop_new();
  async_loop *l2 = tu_loop_new();
  async_future *f1 = NULL, *f2 = NULL, *out = NULL;
  assert_int_equal(async_future_new(&f1, l1), 0);
  assert_int_equal(async_future_new(&f2, l2), 0);
  async_future *mixed[2] = {f1, f2};
  assert_int_equal(async_future_all(&out, l1, mixed, 2), ASYNC_EINVAL);
  assert_int_equal(async_future_any(&out, l1, mixed, 2), ASYNC_EINVAL);
  assert_int_equal(async_future_all(&out, l2, mixed, 1), ASYNC_EINVAL);
  assert_int_equal(async_loop_run_until(l1, f2), ASYNC_EINVAL);
  assert_null(out);
  assert_int_equal(async_future_free(f1), 0);
  assert_int_equal(async_future_free(f2), 0);
  assert_loop_works(l1);
  assert_loop_works(l2);
  assert_int_equal(async_loop_free(l1), 0);
  assert_int_equal(async_loop_free(l2), 0);
}

/* ------------------------------------------------------------------ */
/* Double close, use after close                                       */

struct closerec {
  int calls;
  int reclose_rc;     /* async_handle_close from inside the close callback */
  int closing_in_cb;
};

static void close_cb(async_handle *h, void *ud) {
  struct closerec *c = ud;
  c->calls++;
  c->reclose_rc = async_handle_close(h, close_cb);
  c->closing_in_cb = async_handle_is_closing(h);
}

static void test_double_close(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  struct closerec c[4];
  memset(c, 0, sizeof c);
  async_signal *s = NULL;
  async_timer *t = tu_timer_new(loop, &c[0]);
  async_watcher *w = tu_watcher_new(loop, sv[0], &c[1]);
  async_hook *h = tu_hook_new(loop, ASYNC_HOOK_IDLE, &c[2]);
  assert_int_equal(async_signal_new(&s, loop, &c[3]), 0);
  assert_int_equal(async_hook_start(h, tu_noop_hook_cb), 0);
  async_handle *hs[4] = {async_timer_handle(t), async_watcher_handle(w), async_hook_handle(h),
                         async_signal_handle(s)};
  for (int i = 0; i < 4; i++) {
    assert_int_equal(async_handle_close(hs[i], close_cb), 0);
    assert_int_equal(async_handle_close(hs[i], close_cb), ASYNC_ECLOSED);
    assert_int_equal(async_handle_close(hs[i], NULL), ASYNC_ECLOSED);
  }
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  for (int i = 0; i < 4; i++) {
    assert_int_equal(c[i].calls, 1);
    assert_int_equal(c[i].reclose_rc, ASYNC_ECLOSED);
    assert_int_equal(c[i].closing_in_cb, 1);
  }
  assert_loop_works(loop);
  assert_int_equal(async_loop_free(loop), 0);
  tu_close_pair(sv);
}

/* Between close and its callback every operation returns ASYNC_ECLOSED;
 * queries still answer and report the handle closing and inactive. */
static void test_use_after_close(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  int ud = 1;
  async_signal *s = NULL;
  async_timer *t = tu_timer_new(loop, &ud);
  async_watcher *w = tu_watcher_new(loop, sv[0], &ud);
  async_hook *h = tu_hook_new(loop, ASYNC_HOOK_PREPARE, &ud);
  assert_int_equal(async_signal_new(&s, loop, &ud), 0);
  assert_int_equal(async_timer_start(t, 50, 50, tu_noop_timer_cb), 0);
  assert_int_equal(async_watcher_start(w, ASYNC_WRITABLE, tu_noop_watcher_cb), 0);
  assert_int_equal(async_hook_start(h, tu_noop_hook_cb), 0);
  assert_int_equal(async_signal_start(s, SIGUSR2, tu_noop_signal_cb), 0);
  async_handle *hs[4] = {async_timer_handle(t), async_watcher_handle(w), async_hook_handle(h),
                         async_signal_handle(s)};
  for (int i = 0; i < 4; i++) {
    tu_close(hs[i]);
  }
  for (int i = 0; i < 4; i++) {
    assert_int_equal(async_handle_close(hs[i], NULL), ASYNC_ECLOSED);
    assert_int_equal(async_handle_ref(hs[i]), ASYNC_ECLOSED);
    assert_int_equal(async_handle_unref(hs[i]), ASYNC_ECLOSED);
    assert_int_equal(async_handle_is_closing(hs[i]), 1);
    assert_int_equal(async_handle_is_active(hs[i]), 0);
    assert_ptr_equal(async_handle_loop(hs[i]), loop);
    assert_ptr_equal(async_handle_userdata(hs[i]), &ud);
  }
  assert_int_equal(async_timer_start(t, 1, 0, tu_noop_timer_cb), ASYNC_ECLOSED);
  assert_int_equal(async_timer_stop(t), ASYNC_ECLOSED);
  assert_int_equal(async_timer_again(t), ASYNC_ECLOSED);
  assert_int_equal(async_timer_set_repeat(t, 7), ASYNC_ECLOSED);
  uint64_t u = 0;
  int rc = async_timer_get_repeat(&u, t);
  assert_true(rc == 0 || rc == ASYNC_ECLOSED);
  rc = async_timer_due_in(&u, t);
  assert_true(rc == 0 || rc == ASYNC_ECLOSED);
  if (rc == 0) {
    assert_int_equal(u, 0); /* not active */
  }
  assert_int_equal(async_watcher_start(w, ASYNC_READABLE, tu_noop_watcher_cb), ASYNC_ECLOSED);
  assert_int_equal(async_watcher_set_events(w, ASYNC_READABLE), ASYNC_ECLOSED);
  assert_int_equal(async_watcher_set_events(w, 0), ASYNC_ECLOSED);
  assert_int_equal(async_watcher_stop(w), ASYNC_ECLOSED);
  assert_int_equal(async_hook_start(h, tu_noop_hook_cb), ASYNC_ECLOSED);
  assert_int_equal(async_hook_stop(h), ASYNC_ECLOSED);
  assert_int_equal(async_signal_start(s, SIGUSR2, tu_noop_signal_cb), ASYNC_ECLOSED);
  assert_int_equal(async_signal_start(s, SIGUSR1, tu_noop_signal_cb), ASYNC_ECLOSED);
  assert_int_equal(async_signal_stop(s), ASYNC_ECLOSED);
  rc = async_signal_signum(s);
  assert_true(rc == 0 || rc == ASYNC_ECLOSED);
  /* Closing released the signal: no handler left behind. */
  struct sigaction sa;
  assert_int_equal(sigaction(SIGUSR2, NULL, &sa), 0);
  assert_true(sa.sa_handler == SIG_DFL);
  /* Still nothing keeps the loop waiting: the close callbacks run now. */
  uint64_t t0 = tu_now_ns();
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_true(tu_elapsed_ms(t0) < 1000.0);
  assert_loop_works(loop);
  assert_int_equal(async_loop_free(loop), 0);
  tu_close_pair(sv);
}

/* Futures: a second free from inside the future's own callback (its memory
 * is still held there) -> EINVAL. */
struct dfree {
  int rc1;
  int rc2;
  int calls;
};

static void dfree_cb(async_future *f, int status, void *ud) {
  (void)status;
  struct dfree *d = ud;
  d->calls++;
  d->rc1 = async_future_free(f);
  d->rc2 = async_future_free(f);
}

static void test_future_double_free_in_callback(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_future *f = NULL;
  assert_int_equal(async_future_new(&f, loop), 0);
  struct dfree d;
  memset(&d, 0, sizeof d);
  assert_int_equal(async_future_add_callback(f, dfree_cb, &d), 0);
  assert_int_equal(async_future_resolve(f, NULL, NULL, NULL), 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(d.calls, 1);
  assert_int_equal(d.rc1, 0);
  assert_int_equal(d.rc2, ASYNC_EINVAL);
  assert_loop_works(loop);
  assert_int_equal(async_loop_free(loop), 0);
}

/* ------------------------------------------------------------------ */
/* Out-of-range values                                                  */

static void test_invalid_fds(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_watcher *w = NULL;
  assert_int_equal(async_watcher_new(&w, loop, -1, NULL), ASYNC_EINVAL);
  assert_int_equal(async_watcher_new(&w, loop, INT_MIN, NULL), ASYNC_EINVAL);
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  int dead = sv[0];
  tu_close_pair(sv);
  assert_int_equal(async_watcher_new(&w, loop, dead, NULL), ASYNC_EBADF);
  assert_int_equal(async_watcher_new(&w, loop, 999999, NULL), ASYNC_EBADF);
  assert_int_equal(async_watcher_new(&w, loop, INT_MAX, NULL), ASYNC_EBADF);
  assert_null(w);
  assert_int_equal(async_loop_alive(loop), 0);
  assert_loop_works(loop);
  assert_int_equal(async_loop_free(loop), 0);
}

static void test_invalid_signums(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_signal *s = NULL;
  assert_int_equal(async_signal_new(&s, loop, NULL), 0);
  const int bad[] = {0, -1, 65, 1000, INT_MAX, INT_MIN, SIGKILL, SIGSTOP};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(async_signal_start(s, bad[i], tu_noop_signal_cb), ASYNC_EINVAL);
  }
  assert_int_equal(async_signal_signum(s), 0);
  assert_int_equal(async_handle_is_active(async_signal_handle(s)), 0);
  tu_close(async_signal_handle(s));
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_loop_works(loop);
  assert_int_equal(async_loop_free(loop), 0);
}

static void test_invalid_run_mode(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int fired = 0;
  tu_timer_start(loop, &fired, 0, 0, count_timer_cb);
  uint64_t it0 = tu_iterations(loop);
  const int bad[] = {-1, 3, 4, 100, INT_MAX, INT_MIN, ASYNC_RUN_MODE_FORCE32};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(async_loop_run(loop, bad[i]), ASYNC_EINVAL);
  }
  /* Nothing ran. */
  assert_int_equal(tu_iterations(loop), it0);
  assert_int_equal(fired, 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(fired, 1);
  assert_loop_works(loop);
  assert_int_equal(async_loop_free(loop), 0);
}

static void test_invalid_metric(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  const int bad[] = {-1, 3, 4, 1000, INT_MAX, INT_MIN, ASYNC_METRIC_FORCE32};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    uint64_t u = 0;
    assert_int_equal(async_loop_metric(&u, loop, bad[i]), ASYNC_EINVAL);
  }
  uint64_t u = 99;
  assert_int_equal(async_loop_metric(&u, loop, ASYNC_METRIC_CALLBACKS), 0);
  assert_int_equal(u, 0);
  assert_loop_works(loop);
  assert_int_equal(async_loop_free(loop), 0);
}

static void test_invalid_hook_kind(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  const int bad[] = {-1, 3, 4, 1000, INT_MAX, INT_MIN, ASYNC_HOOK_KIND_FORCE32};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    async_hook *h = NULL;
    assert_int_equal(async_hook_new(&h, loop, bad[i], NULL), ASYNC_EINVAL);
    assert_null(h);
  }
  assert_int_equal(async_loop_alive(loop), 0);
  assert_loop_works(loop);
  assert_int_equal(async_loop_free(loop), 0);
}

static void test_invalid_watcher_events(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  async_watcher *w = tu_watcher_new(loop, sv[0], NULL);
  const uint32_t bad[] = {0u, 4u, 8u, 0x100u, ASYNC_READABLE | 4u, 0xffffffffu, 0x80000000u};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(async_watcher_start(w, bad[i], tu_noop_watcher_cb), ASYNC_EINVAL);
    assert_int_equal(async_handle_is_active(async_watcher_handle(w)), 0);
  }
  assert_int_equal(async_watcher_start(w, ASYNC_WRITABLE, tu_noop_watcher_cb), 0);
  for (size_t i = 1; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(async_watcher_set_events(w, bad[i]), ASYNC_EINVAL);
    assert_int_equal(async_handle_is_active(async_watcher_handle(w)), 1);
  }
  tu_close(async_watcher_handle(w));
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_loop_works(loop);
  assert_int_equal(async_loop_free(loop), 0);
  tu_close_pair(sv);
}

/* ------------------------------------------------------------------ */
/* Calls not allowed in the current state                              */

struct inside {
  async_loop *loop;
  int free_rc;
  int run_rc;
  int run_once_rc;
};

static void inside_cb(async_loop *l, void *ud) {
  struct inside *in = ud;
  in->free_rc = async_loop_free(l);
  in->run_rc = async_loop_run(l, ASYNC_RUN_DEFAULT);
  in->run_once_rc = async_loop_run(l, ASYNC_RUN_NOWAIT);
}

static void test_loop_state_errors(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  struct inside in = {.loop = loop, .free_rc = 99, .run_rc = 99, .run_once_rc = 99};
  assert_int_equal(async_loop_call_soon(loop, inside_cb, &in), 0);
  assert_int_equal(async_loop_free(loop), ASYNC_EBUSY); /* a queued callback */
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(in.free_rc, ASYNC_EBUSY);
  assert_int_equal(in.run_rc, ASYNC_EBUSY);
  assert_int_equal(in.run_once_rc, ASYNC_EBUSY);

  /* Open handles keep free from succeeding, closed ones not after run. */
  async_timer *t = tu_timer_new(loop, NULL);
  assert_int_equal(async_loop_free(loop), ASYNC_EBUSY);
  tu_close(async_timer_handle(t));
  assert_int_equal(async_loop_free(loop), ASYNC_EBUSY); /* closing */
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_loop_works(loop);
  assert_int_equal(async_loop_free(loop), 0);
  /* A post to the freed loop is refused. */
  assert_int_equal(async_loop_post(loop, tu_noop_soon_cb, NULL), ASYNC_ECLOSED);
  assert_int_equal(async_loop_wakeup(loop), ASYNC_ECLOSED);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_null_loop_functions),
      cmocka_unit_test(test_null_constructors),
      cmocka_unit_test(test_null_handle_functions),
      cmocka_unit_test(test_null_future_functions),
      cmocka_unit_test(test_wrong_kind_timer),
      cmocka_unit_test(test_wrong_kind_watcher),
      cmocka_unit_test(test_wrong_kind_hook),
      cmocka_unit_test(test_wrong_kind_signal),
      cmocka_unit_test(test_wrong_kind_future),
      cmocka_unit_test(test_wrong_kind_handle),
      cmocka_unit_test(test_wrong_kind_loop),
      cmocka_unit_test(test_foreign_loop_futures),
      cmocka_unit_test(test_double_close),
      cmocka_unit_test(test_use_after_close),
      cmocka_unit_test(test_future_double_free_in_callback),
      cmocka_unit_test(test_invalid_fds),
      cmocka_unit_test(test_invalid_signums),
      cmocka_unit_test(test_invalid_run_mode),
      cmocka_unit_test(test_invalid_metric),
      cmocka_unit_test(test_invalid_hook_kind),
      cmocka_unit_test(test_invalid_watcher_events),
      cmocka_unit_test(test_loop_state_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
