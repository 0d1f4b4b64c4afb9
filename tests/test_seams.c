/*
 * The seams between the v0 C ABI's features, used together as a binding
 * would: references (retain/release) with async_loop_shutdown() and
 * async_loop_free(), async_loop_walk() with futures retained and freed
 * inside fn, shutdown inside idle_timeout and inside a DELIVER_EACH
 * delivery, the owner-thread check on ended streams after the loop is
 * freed, destroy functions with a context across a shutdown, zero-copy
 * writes dropped by a shutdown, set_protocol inside DELIVER_EACH, holds,
 * a connect future freed inside connection_lost, and the loop's pool.
 * Every userdata must get exactly one final notification.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop_env.h"

/* ------------------------------------------------------------------ */
/* A recording protocol                                                 */

struct rec {
  async_loop *loop;
  int made, lost, released, idle, data_calls;
  int lost_error;
  size_t consume;      /* bytes data_received consumes per call; 0: all */
  int shutdown_in_data; /* data_received calls async_loop_shutdown() */
  int shutdown_in_idle; /* idle_timeout calls async_loop_shutdown() */
  int shutdown_rc;
  async_close_fn close_cb;
  const async_stream_protocol *switch_to; /* set_protocol inside data_received */
  struct rec *switch_ud;
  async_future *free_in_lost; /* async_future_free()d inside connection_lost */
  int free_in_lost_rc;
  char seen[64];
  size_t seen_len;
};

static int g_closed;
static async_loop *g_walk_loop;
static void count_close_cb(async_handle *h, void *ud) {
  (void)h;
  (void)ud;
  g_closed++;
}

static void rec_made(async_stream *s, void *ud) {
  (void)s;
  ((struct rec *)ud)->made++;
}

static size_t rec_data(async_stream *s, const uint8_t *d, size_t n, void *ud) {
  struct rec *r = ud;
  assert_int_equal(g_depth, 0); /* never inside a library call */
  r->data_calls++;
  size_t take = r->consume && r->consume < n ? r->consume : n;
  if (r->seen_len + take <= sizeof r->seen) {
    memcpy(r->seen + r->seen_len, d, take);
    r->seen_len += take;
  }
  if (r->shutdown_in_data) {
    r->shutdown_rc = async_loop_shutdown(r->loop, r->close_cb);
  }
  if (r->switch_to) {
    const async_stream_protocol *p = r->switch_to;
    r->switch_to = NULL;
    assert_int_equal(async_stream_set_protocol(s, p, r->switch_ud), 0);
  }
  return take;
}

static void rec_lost(async_stream *s, int err, void *ud) {
  (void)s;
  struct rec *r = ud;
  assert_int_equal(g_depth, 0);
  r->lost++;
  r->lost_error = err;
  if (r->free_in_lost) {
    r->free_in_lost_rc = async_future_free(r->free_in_lost);
    r->free_in_lost = NULL;
  }
}

static void rec_release(void *ud) {
  struct rec *r = ud;
  /* Once: after lost, when replaced, or when a connect never made it. */
  assert_int_equal(r->released, 0);
  assert_true(r->lost <= 1);
  r->released++;
}

static void rec_idle(async_stream *s, void *ud) {
  struct rec *r = ud;
  r->idle++;
  if (r->shutdown_in_idle) {
    r->shutdown_rc = async_loop_shutdown(r->loop, r->close_cb);
  } else {
    assert_int_equal(async_stream_close(s), 0);
  }
}

static const async_stream_protocol rec_protocol = {
    .size = sizeof(async_stream_protocol),
    .connection_made = rec_made,
    .data_received = rec_data,
    .connection_lost = rec_lost,
    .release = rec_release,
};

static const async_stream_protocol rec_each_idle_protocol = {
    .size = sizeof(async_stream_protocol),
    .connection_made = rec_made,
    .data_received = rec_data,
    .connection_lost = rec_lost,
    .release = rec_release,
    .flags = ASYNC_STREAM_DELIVER_EACH,
    .idle_timeout = rec_idle,
};

static async_stream *adopt(async_loop *loop, int fd, const async_stream_protocol *p, struct rec *r) {
  async_stream *s = NULL;
  r->loop = loop;
  assert_int_equal(async_stream_adopt(&s, loop, fd, p, r), 0);
  return s;
}

/* Runs DEFAULT bounded by an unreferenced 3 s guard; must end with 0. */
static void run_to_end(async_loop *loop) {
  async_timer *g = tu_guard(loop, 3000);
  int rc = async_loop_run(loop, ASYNC_RUN_DEFAULT);
  tu_close(async_timer_handle(g));
  assert_int_equal(rc, 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
}

/* For a shutdown made from a callback: it closes the guard too (with
 * count_close_cb), so the guard is not closed here. */
static void run_to_shutdown(async_loop *loop) {
  async_timer *g = tu_guard(loop, 3000);
  (void)g;
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
}

static int flag_set(void *arg) { return *(int *)arg != 0; }

/* ------------------------------------------------------------------ */
/* Shutdown with retained streams; releases after async_loop_free()     */

struct release_arg {
  async_stream *s;
  int rc;
};

static void *release_thread(void *arg) {
  struct release_arg *a = arg;
  a->rc = async_stream_release(a->s);
  return NULL;
}

static void test_shutdown_retained_release_after_free(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  assert_int_equal(async_loop_set_thread_check(loop, 1), 0);
  int fd[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
  struct rec r0 = {0}, r1 = {0};
  async_stream *s0 = adopt(loop, fd[0], &rec_protocol, &r0);
  async_stream *s1 = adopt(loop, fd[1], &rec_protocol, &r1);
  assert_int_equal(async_stream_retain(s0), 0);
  assert_int_equal(async_stream_retain(s1), 0);
  assert_int_equal(async_stream_retain(s1), 0);
  g_closed = 0;
  async_timer *t = tu_timer_start(loop, NULL, 100000, 0, tu_noop_timer_cb);
  (void)t;
  assert_int_equal(async_loop_shutdown(loop, count_close_cb), 0);
  assert_int_equal(r0.lost + r1.lost + r0.released + r1.released + g_closed, 0); /* all from the loop */
  assert_int_equal(async_loop_free(loop), ASYNC_EBUSY);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(r0.lost, 1);
  assert_int_equal(r1.lost, 1);
  assert_int_equal(r0.released, 1);
  assert_int_equal(r1.released, 1);
  assert_int_equal(r0.lost_error, ASYNC_ECANCELED);
  assert_int_equal(g_closed, 1);
  /* Ended: calls answer ECLOSED, getters NULL, retain/release still work. */
  assert_int_equal(async_stream_write(s0, "x", 1), ASYNC_ECLOSED);
  assert_null(async_stream_userdata(s0));
  assert_null(async_stream_loop(s0));
  assert_int_equal(async_loop_free(loop), 0); /* ended retained streams do not count */
  /* After the free: release on this thread, and on another one. */
  assert_int_equal(async_stream_release(s0), 0);
  assert_int_equal(async_stream_release(s1), 0);
  struct release_arg a = {s1, 1};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, release_thread, &a), 0);
  assert_int_equal(pthread_join(th, NULL), 0);
  assert_int_equal(a.rc, 0);
  assert_int_equal(r0.released + r1.released, 2);
}

/* With the thread check on, another thread's retain/release of an ended
 * stream (the loop still alive) are not refused as EWRONGTHREAD for a live
 * stream would be; the last release then frees after the loop is gone. */
struct retain_arg {
  async_stream *s;
  int retain_rc, write_rc;
};

static void *retain_thread(void *arg) {
  struct retain_arg *a = arg;
  a->write_rc = async_stream_write(a->s, "x", 1);
  a->retain_rc = async_stream_retain(a->s);
  return NULL;
}

static void test_thread_check_live_stream_refused(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  assert_int_equal(async_loop_set_thread_check(loop, 1), 0);
  int fd[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
  struct rec r = {0};
  async_stream *s = adopt(loop, fd[0], &rec_protocol, &r);
  struct retain_arg a = {s, 1, 1};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, retain_thread, &a), 0);
  assert_int_equal(pthread_join(th, NULL), 0);
  assert_int_equal(a.write_rc, ASYNC_EWRONGTHREAD);
  assert_int_equal(a.retain_rc, ASYNC_EWRONGTHREAD);
  assert_int_equal(async_stream_retain(s), 0);
  assert_int_equal(async_loop_shutdown(loop, NULL), 0);
  run_to_end(loop);
  assert_int_equal(r.released, 1);
  assert_int_equal(async_loop_free(loop), 0);
  assert_int_equal(async_stream_release(s), 0);
  close(fd[1]);
}

/* ------------------------------------------------------------------ */
/* Walk over futures retained, released and freed inside fn            */

struct walk_state {
  async_future *f[4];
  int visits;
  int futures;
};

static void walk_free_all(int kind, void *object, void *ud) {
  struct walk_state *w = ud;
  w->visits++;
  if (kind != ASYNC_OBJECT_FUTURE) {
    return;
  }
  w->futures++;
  async_future *f = object;
  assert_int_equal(async_future_retain(f), 0);
  assert_int_equal(async_future_release(f), 0);
  /* The first visit frees every future: the others are not visited. */
  for (int i = 0; i < 4; i++) {
    if (w->f[i]) {
      assert_int_equal(async_future_free(w->f[i]), 0);
      w->f[i] = NULL;
    }
  }
}

static void test_walk_frees_futures_inside_fn(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  struct walk_state w = {0};
  for (int i = 0; i < 4; i++) {
    assert_int_equal(async_future_new(&w.f[i], loop), 0);
  }
  assert_int_equal(async_future_resolve(w.f[1], NULL, NULL, NULL), 0);
  assert_int_equal(async_loop_walk(loop, walk_free_all, &w), 1);
  assert_int_equal(w.futures, 1);
  /* The pool reuses the memory: new futures are visited, freed ones not. */
  async_future *g = NULL;
  assert_int_equal(async_future_new(&g, loop), 0);
  struct walk_state w2 = {.f = {g}};
  assert_int_equal(async_loop_walk(loop, walk_free_all, &w2), 1);
  tu_finish(loop);
}

/* A future retained inside fn survives its owner's free; walk still sees
 * it until the last reference goes, and loop_free waits for it. */
static void walk_retain(int kind, void *object, void *ud) {
  if (kind == ASYNC_OBJECT_FUTURE) {
    assert_int_equal(async_future_retain(object), 0);
    (*(int *)ud)++;
  }
}

static void walk_count(int kind, void *object, void *ud) {
  (void)object;
  if (kind == ASYNC_OBJECT_FUTURE) {
    (*(int *)ud)++;
  }
}

static void test_walk_retained_future_outlives_free(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_future *f = NULL;
  assert_int_equal(async_future_new(&f, loop), 0);
  int n = 0;
  assert_int_equal(async_loop_walk(loop, walk_retain, &n), 1);
  assert_int_equal(n, 1);
  assert_int_equal(async_future_release(f), 0); /* one reference left: not cancelled */
  assert_int_equal(async_future_get_state(f), ASYNC_FUTURE_PENDING);
  n = 0;
  assert_int_equal(async_loop_walk(loop, walk_count, &n), 1);
  assert_int_equal(n, 1);
  assert_int_equal(async_loop_shutdown(loop, NULL), 0); /* cancels it */
  assert_int_equal(async_future_get_state(f), ASYNC_FUTURE_CANCELLED);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(async_loop_free(loop), ASYNC_EBUSY); /* a reference is held */
  assert_int_equal(async_future_release(f), 0);
  tu_finish(loop);
}

/* ------------------------------------------------------------------ */
/* Shutdown inside idle_timeout and inside a DELIVER_EACH delivery      */

static void test_shutdown_inside_idle_timeout(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int fd[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
  struct rec r = {.shutdown_in_idle = 1, .close_cb = count_close_cb, .shutdown_rc = 1};
  g_closed = 0;
  async_stream *s = adopt(loop, fd[0], &rec_each_idle_protocol, &r);
  assert_int_equal(async_stream_set_idle_timeout(s, 20), 0);
  async_timer *t = tu_timer_start(loop, NULL, 100000, 0, tu_noop_timer_cb);
  async_hook *h = tu_hook_new(loop, ASYNC_HOOK_PREPARE, NULL);
  (void)t;
  (void)h;
  run_to_shutdown(loop);
  assert_int_equal(r.shutdown_rc, 0);
  assert_int_equal(r.idle, 1);
  assert_int_equal(r.lost, 1);
  assert_int_equal(r.lost_error, ASYNC_ECANCELED);
  assert_int_equal(r.released, 1);
  assert_int_equal(g_closed, 3); /* timer, hook, guard */
  assert_int_equal(async_loop_free(loop), 0);
  close(fd[1]);
}

static void test_shutdown_inside_deliver_each(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int fd[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
  struct rec r = {.consume = 1, .shutdown_in_data = 1, .shutdown_rc = 1, .close_cb = count_close_cb};
  g_closed = 0;
  adopt(loop, fd[0], &rec_each_idle_protocol, &r);
  assert_int_equal(write(fd[1], "abcdef", 6), 6);
  run_to_shutdown(loop);
  assert_int_equal(g_closed, 1); /* the guard */
  assert_int_equal(r.shutdown_rc, 0);
  assert_int_equal(r.data_calls, 1); /* aborted inside: the rest is dropped */
  assert_int_equal(r.lost, 1);
  assert_int_equal(r.lost_error, ASYNC_ECANCELED);
  assert_int_equal(r.released, 1);
  assert_int_equal(async_loop_free(loop), 0);
  close(fd[1]);
}

/* set_protocol inside a DELIVER_EACH delivery to a protocol with the flag
 * and an idle_timeout: the rest goes on at once to the new protocol, whose
 * idle_timeout then closes the stream. */
static void test_set_protocol_inside_deliver_each(void **state) {
  (void)state;
  struct env e;
  env_init(&e);
  int fd[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
  struct rec r2 = {.consume = 1, .loop = e.loop};
  struct rec r1 = {.consume = 1, .switch_to = &rec_each_idle_protocol, .switch_ud = &r2};
  async_stream *s = adopt(e.loop, fd[0], &rec_each_idle_protocol, &r1);
  assert_int_equal(async_stream_retain(s), 0);
  assert_int_equal(async_stream_set_idle_timeout(s, 30), 0);
  assert_int_equal(write(fd[1], "abcd", 4), 4);
  assert_true(run_until(&e, flag_set, &r2.released, NULL, NULL, 2000));
  assert_int_equal(r1.data_calls, 1);
  assert_int_equal(r1.released, 1);
  assert_int_equal(r1.lost, 0);
  assert_int_equal(r2.data_calls, 3);
  assert_memory_equal(r2.seen, "bcd", 3);
  assert_int_equal(r2.idle, 1);
  assert_int_equal(r2.lost, 1);
  assert_int_equal(r2.lost_error, 0);
  assert_int_equal(async_stream_userdata(s), NULL);
  assert_int_equal(async_stream_release(s), 0);
  env_finish(&e);
  close(fd[1]);
}

/* ------------------------------------------------------------------ */
/* destroy with a context across shutdown and loop free                 */

static int g_destroyed;
static int g_destroy_context;
static void destroy_cb(void *value, void *context) {
  assert_ptr_equal(value, (void *)&g_destroyed);
  assert_ptr_equal(context, (void *)&g_destroy_context);
  g_destroyed++;
}

static void test_destroy_context_across_shutdown(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  g_destroyed = 0;
  async_future *a = NULL, *b = NULL;
  assert_int_equal(async_future_new(&a, loop), 0);
  assert_int_equal(async_future_new(&b, loop), 0);
  assert_int_equal(async_future_resolve(a, &g_destroyed, destroy_cb, (void *)&g_destroy_context), 0);
  assert_int_equal(async_future_resolve(b, &g_destroyed, destroy_cb, (void *)&g_destroy_context), 0);
  assert_int_equal(async_future_retain(b), 0);
  assert_int_equal(async_future_free(a), 0);
  assert_int_equal(async_loop_shutdown(loop, NULL), 0);
  assert_int_equal(g_destroyed, 0); /* never inside a call */
  assert_int_equal(async_loop_free(loop), ASYNC_EBUSY);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(g_destroyed, 1);
  assert_int_equal(async_loop_free(loop), ASYNC_EBUSY); /* b is held twice */
  assert_int_equal(async_future_free(b), 0);
  assert_int_equal(async_loop_shutdown(loop, NULL), 0);
  assert_int_equal(async_future_release(b), 0);
  assert_int_equal(g_destroyed, 1);
  assert_int_equal(async_loop_free(loop), ASYNC_EBUSY); /* destroy queued */
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(g_destroyed, 2);
  assert_int_equal(async_loop_free(loop), 0);
  assert_int_equal(g_destroyed, 2);
}

/* ------------------------------------------------------------------ */
/* Zero-copy write's done dropped by a shutdown                         */

static int g_done;
static void zc_done(void *ud) {
  assert_int_equal(g_depth, 0);
  free(ud);
  g_done++;
}

static void test_write_zc_done_then_shutdown(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int fd[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
  struct rec r = {0};
  async_stream *s = adopt(loop, fd[0], &rec_protocol, &r);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_NOWAIT), 1);
  assert_int_equal(r.made, 1);
  g_done = 0;
  size_t len = 4u << 20; /* far more than the socket buffer: stays queued */
  for (int i = 0; i < 3; i++) {
    uint8_t *buf = calloc(1, len);
    assert_non_null(buf);
    assert_int_equal(LIB(async_stream_write_zc(s, buf, len, zc_done, buf)), 0);
  }
  assert_int_equal(g_done, 0);
  assert_int_equal(LIB(async_loop_shutdown(loop, NULL)), 0);
  assert_int_equal(g_done, 0);
  assert_int_equal(async_loop_free(loop), ASYNC_EBUSY);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(g_done, 3);
  assert_int_equal(r.lost, 1);
  assert_int_equal(r.released, 1);
  assert_int_equal(async_loop_free(loop), 0);
  close(fd[1]);
}

/* ------------------------------------------------------------------ */
/* Hold + shutdown + free                                               */

static void *unhold_thread(void *arg) {
  tu_sleep_ms(20);
  assert_int_equal(async_loop_unhold(arg), 0);
  return NULL;
}

static void test_hold_shutdown_free(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  assert_int_equal(async_loop_set_thread_check(loop, 1), 0);
  assert_int_equal(async_loop_hold(loop), 0);
  assert_int_equal(async_loop_shutdown(loop, NULL), 0); /* does not end holds */
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_NOWAIT), 1);
  assert_int_equal(async_loop_free(loop), ASYNC_EBUSY);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, unhold_thread, loop), 0);
  async_timer *g = tu_guard(loop, 3000);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  tu_close(async_timer_handle(g));
  assert_int_equal(pthread_join(th, NULL), 0);
  assert_int_equal(async_loop_unhold(loop), ASYNC_ESTATE);
  tu_finish(loop);
  assert_int_equal(async_loop_hold(loop), ASYNC_ECLOSED);
}

/* ------------------------------------------------------------------ */
/* A connect future freed inside its stream's connection_lost           */

static void test_connect_future_freed_in_lost_after_shutdown(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_server *srv = tu_echo_server(loop, "127.0.0.1", 0);
  int port = async_server_port(srv);
  assert_true(port > 0);
  struct rec r = {0};
  r.loop = loop;
  async_future *f = NULL;
  assert_int_equal(async_tcp_connect(&f, loop, "127.0.0.1", (uint16_t)port, NULL, &rec_protocol, &r), 0);
  assert_int_equal(tu_wait_future(loop, f, 3000), 0);
  void *value = NULL;
  assert_int_equal(async_future_result(&value, f), 0);
  async_stream *s = value;
  assert_int_equal(async_stream_retain(s), 0);
  r.free_in_lost = f;
  g_closed = 0;
  assert_int_equal(async_loop_shutdown(loop, count_close_cb), 0);
  run_to_end(loop);
  assert_int_equal(r.lost, 1);
  assert_int_equal(r.free_in_lost_rc, 0);
  assert_int_equal(r.released, 1);
  assert_int_equal(g_closed, 1); /* the server */
  assert_int_equal(async_loop_free(loop), 0);
  assert_int_equal(async_stream_release(s), 0);
}

/* ------------------------------------------------------------------ */
/* The pool: handles and futures freed in reverse order, then reused   */

static void test_pool_reverse_close_then_free(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  enum { N = 300 };
  async_timer *t[N];
  async_future *f[N];
  for (int round = 0; round < 2; round++) {
    for (int i = 0; i < N; i++) {
      t[i] = tu_timer_start(loop, NULL, 100000, 0, tu_noop_timer_cb);
      assert_int_equal(async_future_new(&f[i], loop), 0);
      assert_int_equal(async_future_add_callback(f[i], tu_noop_future_cb, NULL), 0);
    }
    g_closed = 0;
    for (int i = N - 1; i >= 0; i--) {
      assert_int_equal(async_handle_close(async_timer_handle(t[i]), count_close_cb), 0);
      assert_int_equal(async_future_free(f[i]), 0); /* cancels: callback queued */
    }
    assert_int_equal(async_loop_free(loop), ASYNC_EBUSY);
    assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
    assert_int_equal(g_closed, N);
  }
  assert_int_equal(async_loop_free(loop), 0);
}

/* ------------------------------------------------------------------ */
/* Walk during a reconnector's backoff; stop and shutdown inside fn     */

struct rc_state {
  int failed, stopped, released, stopped_error;
  int walk_rc, walk_other, stop_rc, shutdown_rc;
};

static void rc_failed(async_reconnector *rc, int error, uint32_t failures, uint64_t retry_ms, void *ud) {
  (void)rc;
  (void)error;
  (void)failures;
  (void)retry_ms;
  ((struct rc_state *)ud)->failed++;
}

static void rc_stopped(async_reconnector *rc, int error, void *ud) {
  (void)rc;
  struct rc_state *st = ud;
  st->stopped++;
  st->stopped_error = error;
}

static void rc_release(void *ud) {
  struct rc_state *st = ud;
  assert_int_equal(st->stopped, 1);
  st->released++;
}

static size_t rc_data(async_stream *s, const uint8_t *d, size_t n, void *ud) {
  (void)s;
  (void)d;
  (void)ud;
  return n;
}

static void rc_lost(async_stream *s, int err, void *ud) {
  (void)s;
  (void)err;
  (void)ud;
}

static const async_stream_protocol rc_protocol = {
    .size = sizeof(async_stream_protocol),
    .data_received = rc_data,
    .connection_lost = rc_lost,
    .release = rc_release,
};

static void walk_stop_reconnector(int kind, void *object, void *ud) {
  struct rc_state *st = ud;
  if (kind != ASYNC_OBJECT_RECONNECTOR) {
    st->walk_other++;
    return;
  }
  st->stop_rc = async_reconnector_stop(object);
  st->shutdown_rc = async_loop_shutdown(g_walk_loop, count_close_cb);
}

/* A port nobody listens on: bound, then closed. */
static uint16_t closed_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  socklen_t len = sizeof a;
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  close(fd);
  return ntohs(a.sin_port);
}

static void test_walk_during_reconnector_backoff(void **state) {
  (void)state;
  struct env e;
  env_init(&e);
  g_walk_loop = e.loop;
  struct rc_state st = {.stop_rc = 1, .shutdown_rc = 1};
  async_reconnect_options o = {.size = sizeof o,
                               .initial_delay_ms = 200,
                               .jitter = -1.0,
                               .connect_failed = rc_failed,
                               .stopped = rc_stopped};
  async_reconnector *rc = NULL;
  assert_int_equal(async_reconnector_start(&rc, e.loop, "127.0.0.1", closed_port(), &o, &rc_protocol, &st), 0);
  assert_true(run_until(&e, flag_set, &st.failed, NULL, NULL, 2000));
  assert_int_equal(async_reconnector_state(rc), ASYNC_RECONNECT_WAITING);
  g_closed = 0;
  /* The guard timer and the reconnector; no future of the connect. */
  assert_int_equal(async_loop_walk(e.loop, walk_stop_reconnector, &st), 2);
  assert_int_equal(st.walk_other, 1);
  assert_int_equal(st.stop_rc, 0);
  assert_int_equal(st.shutdown_rc, 0);
  assert_int_equal(st.stopped + st.released, 0);
  async_timer *g = tu_guard(e.loop, 3000);
  assert_int_equal(async_loop_run(e.loop, ASYNC_RUN_DEFAULT), 0);
  tu_close(async_timer_handle(g));
  assert_int_equal(async_loop_run(e.loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(st.stopped, 1);
  assert_int_equal(st.released, 1);
  assert_int_equal(g_closed, 1); /* env's guard, closed by the shutdown */
  int n = 0;
  assert_int_equal(async_loop_walk(e.loop, walk_count, &n), 0);
  assert_int_equal(async_loop_free(e.loop), 0);
}

/* ------------------------------------------------------------------ */
/* Nested shutdown inside a cancel hook run by a shutdown              */

struct hook_state {
  async_loop *loop;
  int cancels, nested_shutdown_rc, free_rc, run_rc;
};

static void cancel_shutdown_again(async_future *f, int cancelled, void *ud) {
  (void)f;
  struct hook_state *h = ud;
  assert_int_equal(cancelled, 1);
  h->cancels++;
  h->nested_shutdown_rc = async_loop_shutdown(h->loop, NULL);
  h->free_rc = async_loop_free(h->loop);
  h->run_rc = async_loop_run(h->loop, ASYNC_RUN_NOWAIT);
}

static void test_shutdown_in_cancel_hook_of_shutdown(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  struct hook_state h1 = {.loop = loop, .nested_shutdown_rc = 1}, h2 = {.loop = loop, .nested_shutdown_rc = 1};
  async_future *f1 = NULL, *f2 = NULL;
  assert_int_equal(async_future_new(&f1, loop), 0);
  assert_int_equal(async_future_new(&f2, loop), 0);
  assert_int_equal(async_future_set_cancel(f1, cancel_shutdown_again, &h1), 0);
  assert_int_equal(async_future_set_cancel(f2, cancel_shutdown_again, &h2), 0);
  int done = 0;
  assert_int_equal(async_future_add_callback(f2, tu_noop_future_cb, NULL), 0);
  assert_int_equal(async_loop_shutdown(loop, NULL), 0);
  assert_int_equal(h1.cancels, 1);
  assert_int_equal(h2.cancels, 1);
  assert_int_equal(h1.nested_shutdown_rc, 0);
  assert_int_equal(h1.free_rc, ASYNC_EBUSY);
  assert_int_equal(h1.run_rc, ASYNC_EBUSY);
  assert_int_equal(async_future_get_state(f1), ASYNC_FUTURE_CANCELLED);
  assert_int_equal(async_future_get_state(f2), ASYNC_FUTURE_CANCELLED);
  (void)done;
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(async_future_free(f1), 0);
  assert_int_equal(async_future_free(f2), 0);
  assert_int_equal(h1.cancels + h2.cancels, 2);
  tu_finish(loop);
}

/* ------------------------------------------------------------------ */
/* A connect cancelled by its future's free: release deferred, shutdown */

static void test_cancelled_connect_release_then_shutdown(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_server *srv = tu_echo_server(loop, "127.0.0.1", 0);
  int port = async_server_port(srv);
  struct rec r = {.loop = loop};
  async_future *f = NULL;
  assert_int_equal(async_tcp_connect(&f, loop, "127.0.0.1", (uint16_t)port, NULL, &rec_protocol, &r), 0);
  assert_int_equal(LIB(async_future_free(f)), 0);
  assert_int_equal(r.released, 0); /* never inside the call */
  g_closed = 0;
  assert_int_equal(LIB(async_loop_shutdown(loop, count_close_cb)), 0);
  assert_int_equal(r.released, 0);
  assert_int_equal(async_loop_free(loop), ASYNC_EBUSY);
  run_to_end(loop);
  assert_int_equal(r.made, 0);
  assert_int_equal(r.lost, 0);
  assert_int_equal(r.released, 1);
  assert_int_equal(g_closed, 1);
  assert_int_equal(async_loop_free(loop), 0);
}

/* ------------------------------------------------------------------ */
/* Walk over streams: abort + retain inside fn; ended ones not visited  */

static void walk_abort_retain(int kind, void *object, void *ud) {
  if (kind == ASYNC_OBJECT_STREAM) {
    assert_int_equal(async_stream_retain(object), 0);
    assert_int_equal(async_stream_abort(object), 0);
    assert_int_equal(async_stream_abort(object), 0); /* closing: nothing more */
    (*(int *)ud)++;
  }
}

static void test_walk_abort_retained_streams(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int fd[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
  struct rec r0 = {0}, r1 = {0};
  async_stream *s0 = adopt(loop, fd[0], &rec_protocol, &r0);
  async_stream *s1 = adopt(loop, fd[1], &rec_protocol, &r1);
  int n = 0;
  assert_int_equal(async_loop_walk(loop, walk_abort_retain, &n), 2);
  assert_int_equal(n, 2);
  n = 0;
  assert_int_equal(async_loop_walk(loop, walk_count, &n), 2); /* closing streams still visited */
  assert_int_equal(r0.lost + r1.lost, 0);
  tu_finish(loop); /* ended retained streams do not hold the free back */
  assert_int_equal(r0.lost + r1.lost + r0.released + r1.released, 4);
  assert_int_equal(async_stream_release(s1), 0);
  assert_int_equal(async_stream_release(s0), 0);
}

/* ------------------------------------------------------------------ */
/* Option structs at the seams: set_protocol inside DELIVER_EACH with a */
/* larger struct, unknown tail zero (accepted) or not (refused).        */

struct big_protocol {
  async_stream_protocol p;
  uint64_t tail;
};

static struct big_protocol g_big;
static int g_big_rc[2];

static size_t switch_big(async_stream *s, const uint8_t *d, size_t n, void *ud) {
  struct rec *r = ud;
  (void)d;
  int i = r->data_calls++;
  if (i < 2) {
    g_big.tail = i == 0 ? 1 : 0; /* first refused, then accepted */
    g_big_rc[i] = async_stream_set_protocol(s, &g_big.p, r);
  }
  (void)n;
  return 1;
}

static void test_oversized_protocol_inside_deliver_each(void **state) {
  (void)state;
  struct env e;
  env_init(&e);
  int fd[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
  struct rec r = {0};
  async_stream_protocol first = rec_each_idle_protocol;
  first.data_received = switch_big;
  first.release = NULL; /* set_protocol(…, r) again: r released only at the end */
  memset(&g_big, 0, sizeof g_big);
  g_big.p = rec_each_idle_protocol;
  g_big.p.data_received = switch_big;
  g_big.p.size = sizeof g_big;
  async_stream *s = adopt(e.loop, fd[0], &first, &r);
  assert_int_equal(write(fd[1], "abcd", 4), 4);
  assert_true(run_until(&e, NULL, NULL, NULL, NULL, 50) == 0);
  assert_int_equal(g_big_rc[0], ASYNC_EINVAL);
  assert_int_equal(g_big_rc[1], 0);
  assert_int_equal(r.data_calls, 4); /* one byte per call, through both */
  assert_int_equal(r.released, 0);
  assert_int_equal(async_stream_close(s), 0);
  close(fd[1]);
  env_finish(&e);
  assert_int_equal(r.lost, 1);
  assert_int_equal(r.released, 1);
}

/* ------------------------------------------------------------------ */
/* idle_timeout: the period turned off inside, and a protocol without   */
/* the callback set inside it (the next period aborts, ETIMEDOUT).      */

static int g_idle_calls;
static void idle_switch(async_stream *s, void *ud) {
  (void)ud;
  g_idle_calls++;
  assert_int_equal(async_stream_set_protocol(s, &rec_protocol, ud), 0);
}

static void test_set_protocol_inside_idle_timeout(void **state) {
  (void)state;
  struct env e;
  env_init(&e);
  int fd[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
  struct rec r = {0};
  async_stream_protocol p = rec_each_idle_protocol;
  p.idle_timeout = idle_switch;
  p.release = NULL;
  g_idle_calls = 0;
  async_stream *s = adopt(e.loop, fd[0], &p, &r);
  assert_int_equal(async_stream_set_idle_timeout(s, 20), 0);
  assert_true(run_until(&e, flag_set, &r.released, NULL, NULL, 2000));
  assert_int_equal(g_idle_calls, 1);
  assert_int_equal(r.lost, 1);
  assert_int_equal(r.lost_error, ASYNC_ETIMEDOUT);
  close(fd[1]);
  env_finish(&e);
}

/* ------------------------------------------------------------------ */
/* The owner-thread check over every loop-level entry point             */

struct wrong_thread {
  async_loop *loop;
  async_future *f;
  int walk, shutdown, free, release, retain, set_ud, hold, unhold, post;
  void *ud;
};

static void *wrong_thread_calls(void *arg) {
  struct wrong_thread *w = arg;
  w->walk = async_loop_walk(w->loop, walk_count, NULL);
  w->shutdown = async_loop_shutdown(w->loop, NULL);
  w->free = async_loop_free(w->loop);
  w->release = async_future_release(w->f);
  w->retain = async_future_retain(w->f);
  w->set_ud = async_loop_set_userdata(w->loop, NULL);
  w->ud = async_loop_userdata(w->loop);
  w->hold = async_loop_hold(w->loop);
  w->unhold = async_loop_unhold(w->loop);
  w->post = async_loop_post(w->loop, tu_noop_soon_cb, NULL);
  return NULL;
}

static void test_thread_check_loop_entry_points(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int marker = 0;
  assert_int_equal(async_loop_set_userdata(loop, &marker), 0);
  assert_int_equal(async_loop_set_thread_check(loop, 1), 0);
  struct wrong_thread w = {.loop = loop};
  assert_int_equal(async_future_new(&w.f, loop), 0);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, wrong_thread_calls, &w), 0);
  assert_int_equal(pthread_join(th, NULL), 0);
  assert_int_equal(w.walk, ASYNC_EWRONGTHREAD);
  assert_int_equal(w.shutdown, ASYNC_EWRONGTHREAD);
  assert_int_equal(w.free, ASYNC_EWRONGTHREAD);
  assert_int_equal(w.release, ASYNC_EWRONGTHREAD);
  assert_int_equal(w.retain, ASYNC_EWRONGTHREAD);
  assert_int_equal(w.set_ud, ASYNC_EWRONGTHREAD);
  assert_null(w.ud);
  assert_int_equal(w.hold, 0);
  assert_int_equal(w.unhold, 0);
  assert_int_equal(w.post, 0);
  assert_ptr_equal(async_loop_userdata(loop), &marker);
  assert_int_equal(async_future_get_state(w.f), ASYNC_FUTURE_PENDING);
  assert_int_equal(async_loop_shutdown(loop, NULL), 0);
  assert_int_equal(async_future_free(w.f), 0);
  tu_finish(loop);
}

/* ------------------------------------------------------------------ */
/* Shutdown inside the old protocol's release, run by set_protocol      */
/* inside a DELIVER_EACH delivery: the delivery must stop there.        */

static void release_shutdown(void *ud) {
  struct rec *r = ud;
  r->released++;
  r->shutdown_rc = async_loop_shutdown(r->loop, count_close_cb);
}

static void test_shutdown_in_release_inside_set_protocol(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int fd[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
  struct rec r2 = {.consume = 1, .loop = loop};
  struct rec r1 = {.consume = 1, .switch_to = &rec_each_idle_protocol, .switch_ud = &r2, .shutdown_rc = 1};
  async_stream_protocol p = rec_each_idle_protocol;
  p.release = release_shutdown;
  g_closed = 0;
  async_stream *s = adopt(loop, fd[0], &p, &r1);
  assert_int_equal(async_stream_retain(s), 0);
  assert_int_equal(write(fd[1], "abcd", 4), 4);
  run_to_shutdown(loop);
  assert_int_equal(r1.shutdown_rc, 0);
  assert_int_equal(r1.data_calls, 1);
  assert_int_equal(r1.released, 1);
  assert_int_equal(r2.data_calls, 0); /* aborted inside: the rest is dropped */
  assert_int_equal(r2.lost, 1);
  assert_int_equal(r2.lost_error, ASYNC_ECANCELED);
  assert_int_equal(r2.released, 1);
  assert_int_equal(g_closed, 1);
  assert_int_equal(async_loop_free(loop), 0);
  assert_int_equal(async_stream_release(s), 0);
  close(fd[1]);
}

/* ------------------------------------------------------------------ */
/* The last reference dropped inside idle_timeout after an abort        */

static void idle_abort_release(async_stream *s, void *ud) {
  struct rec *r = ud;
  r->idle++;
  assert_int_equal(async_stream_abort(s), 0);
  assert_int_equal(async_stream_release(s), 0); /* the last reference, inside */
  assert_int_equal(async_stream_set_idle_timeout(s, 10), ASYNC_ECLOSED);
}

static void test_release_last_ref_inside_idle_timeout(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int fd[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
  struct rec r = {0};
  async_stream_protocol p = rec_each_idle_protocol;
  p.idle_timeout = idle_abort_release;
  async_stream *s = adopt(loop, fd[0], &p, &r);
  assert_int_equal(async_stream_retain(s), 0);
  assert_int_equal(async_stream_set_idle_timeout(s, 10), 0);
  run_to_end(loop);
  assert_int_equal(r.idle, 1);
  assert_int_equal(r.lost, 1);
  assert_int_equal(r.released, 1);
  assert_int_equal(async_loop_free(loop), 0);
  close(fd[1]);
}

/* ------------------------------------------------------------------ */
/* Shutdown inside a walk, then a walk inside the done callbacks, with  */
/* futures freed inside their own callback and destroy pending         */

static void done_free_self(async_future *f, int status, void *ud) {
  (void)status;
  (*(int *)ud)++;
  assert_int_equal(async_future_free(f), 0);
  int n = 0;
  assert_true(async_loop_walk(async_future_loop(f), walk_count, &n) >= 0);
}

static void walk_shutdown(int kind, void *object, void *ud) {
  (void)kind;
  (void)object;
  assert_int_equal(async_loop_shutdown(ud, NULL), 0);
}

static void test_shutdown_inside_walk_futures_free_themselves(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  g_destroyed = 0;
  int done = 0;
  enum { N = 8 };
  for (int i = 0; i < N; i++) {
    async_future *f = NULL;
    assert_int_equal(async_future_new(&f, loop), 0);
    assert_int_equal(async_future_add_callback(f, done_free_self, &done), 0);
    if (i % 2) {
      assert_int_equal(async_future_resolve(f, &g_destroyed, destroy_cb, &g_destroy_context), 0);
    }
  }
  assert_int_equal(async_loop_walk(loop, walk_shutdown, loop), N);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(done, N);
  assert_int_equal(g_destroyed, N / 2);
  assert_int_equal(async_loop_free(loop), 0);
}

/* ------------------------------------------------------------------ */
/* Streams a server accepted with one protocol, retained, the loop      */
/* freed, then released at the same time from two threads ("after       */
/* async_loop_free() any thread, one call on a stream at a time": two   */
/* different streams may be released at once).                         */

struct accepted {
  async_stream *s[2];
  int n;
};

static void acc_made(async_stream *s, void *ud) {
  struct accepted *a = ud;
  assert_true(a->n < 2);
  a->s[a->n++] = s;
  assert_int_equal(async_stream_retain(s), 0);
}

static const async_stream_protocol acc_protocol = {
    .size = sizeof(async_stream_protocol),
    .connection_made = acc_made,
    .data_received = rc_data,
    .connection_lost = rc_lost,
};

static int acc_factory(const async_stream_protocol **p, void **ud, async_server *srv, void *userdata) {
  (void)srv;
  *p = &acc_protocol;
  *ud = userdata;
  return 0;
}

static pthread_barrier_t g_barrier;
static void *barrier_release(void *arg) {
  pthread_barrier_wait(&g_barrier);
  return (void *)(intptr_t)async_stream_release(arg);
}

static void test_sibling_streams_released_on_two_threads_after_free(void **state) {
  (void)state;
  struct env e;
  env_init(&e);
  struct accepted a = {0};
  async_server *srv = NULL;
  assert_int_equal(async_tcp_listen(&srv, e.loop, "127.0.0.1", 0, 0, 0, acc_factory, &a), 0);
  int port = async_server_port(srv);
  int c[2];
  for (int i = 0; i < 2; i++) {
    c[i] = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(c[i], (struct sockaddr *)&sa, sizeof sa), 0);
  }

  for (int i = 0; i < 400 && a.n < 2; i++) {
    run_once(&e, ASYNC_RUN_ONCE);
  }

  assert_int_equal(a.n, 2);
  assert_int_equal(async_loop_shutdown(e.loop, NULL), 0); /* aborts both, closes the server and guard */
  assert_int_equal(async_loop_run(e.loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(async_loop_free(e.loop), 0);
  assert_int_equal(pthread_barrier_init(&g_barrier, NULL, 2), 0);
  pthread_t th[2];
  for (int i = 0; i < 2; i++) {
    assert_int_equal(pthread_create(&th[i], NULL, barrier_release, a.s[i]), 0);
  }
  for (int i = 0; i < 2; i++) {
    void *rc = NULL;
    assert_int_equal(pthread_join(th[i], &rc), 0);
    assert_int_equal((intptr_t)rc, 0);
    close(c[i]);
  }
  pthread_barrier_destroy(&g_barrier);
}

/* ------------------------------------------------------------------ */
/* Combinators and the library's own objects under walk and shutdown:   */
/* a timeout future's timer is no handle of the user's (not visited,    */
/* never given to shutdown's close_cb).                                 */

struct kinds {
  int count[ASYNC_OBJECT_RECONNECTOR + 1];
};

static void walk_kinds(int kind, void *object, void *ud) {
  (void)object;
  struct kinds *k = ud;
  assert_true(kind >= ASYNC_OBJECT_TIMER && kind <= ASYNC_OBJECT_RECONNECTOR);
  k->count[kind]++;
}

static void count_status(async_future *f, int status, void *ud) {
  (void)f;
  assert_int_equal(status, ASYNC_ECANCELED);
  (*(int *)ud)++;
}

static void test_combinators_walk_and_shutdown(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_future *in[2] = {NULL, NULL}, *all = NULL, *tmo = NULL;
  assert_int_equal(async_future_new(&in[0], loop), 0);
  assert_int_equal(async_future_new(&in[1], loop), 0);
  assert_int_equal(async_future_all(&all, loop, in, 2), 0);
  assert_int_equal(async_future_timeout(&tmo, in[0], 100000), 0);
  struct kinds k = {0};
  assert_int_equal(async_loop_walk(loop, walk_kinds, &k), 4);
  assert_int_equal(k.count[ASYNC_OBJECT_FUTURE], 4);
  assert_int_equal(k.count[ASYNC_OBJECT_TIMER], 0);
  int cancelled = 0;
  for (int i = 0; i < 2; i++) {
    assert_int_equal(async_future_add_callback(in[i], count_status, &cancelled), 0);
  }
  assert_int_equal(async_future_add_callback(all, count_status, &cancelled), 0);
  assert_int_equal(async_future_add_callback(tmo, count_status, &cancelled), 0);
  g_closed = 0;
  assert_int_equal(async_loop_shutdown(loop, count_close_cb), 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(cancelled, 4);
  assert_int_equal(g_closed, 0); /* no handle of the user's was open */
  assert_int_equal(async_future_free(tmo), 0);
  assert_int_equal(async_future_free(all), 0);
  assert_int_equal(async_future_free(in[1]), 0);
  assert_int_equal(async_future_free(in[0]), 0);
  tu_finish(loop);
}

/* A connect in flight (a name to resolve): walk sees the caller's future
 * and the server, not the connect's own lookups; shutdown inside the walk
 * ends it with one release and an ECANCELED future. */
static void walk_shutdown_counting(int kind, void *object, void *ud) {
  (void)object;
  struct kinds *k = ud;
  k->count[kind]++;
  assert_int_equal(async_loop_shutdown(g_walk_loop, count_close_cb), 0);
}

static void test_walk_shutdown_during_connect(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  g_walk_loop = loop;
  async_server *srv = tu_echo_server(loop, "127.0.0.1", 0);
  struct rec r = {.loop = loop};
  async_future *f = NULL;
  assert_int_equal(
      async_tcp_connect(&f, loop, "localhost", (uint16_t)async_server_port(srv), NULL, &rec_protocol, &r), 0);
  int cancelled = 0;
  assert_int_equal(async_future_add_callback(f, count_status, &cancelled), 0);
  struct kinds k = {0};
  g_closed = 0;
  assert_int_equal(async_loop_walk(loop, walk_shutdown_counting, &k), 2);
  assert_int_equal(k.count[ASYNC_OBJECT_SERVER], 1);
  assert_int_equal(k.count[ASYNC_OBJECT_FUTURE], 1);
  assert_int_equal(r.released, 0);
  run_to_end(loop);
  assert_int_equal(cancelled, 1);
  assert_int_equal(r.made + r.lost, 0);
  assert_int_equal(r.released, 1);
  assert_int_equal(g_closed, 1);
  assert_int_equal(async_loop_free(loop), ASYNC_EBUSY); /* the future is held */
  assert_int_equal(async_future_free(f), 0);
  tu_finish(loop);
}

/* ------------------------------------------------------------------ */
/* A closed stream still flushing a zero-copy write: its idle period    */
/* aborts it (ETIMEDOUT) without calling idle_timeout; done runs once.  */

static void test_closing_stream_idle_aborts_zc_done_once(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int fd[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
  struct rec r = {0};
  async_stream *s = adopt(loop, fd[0], &rec_each_idle_protocol, &r);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_NOWAIT), 1);
  g_done = 0;
  size_t len = 4u << 20;
  uint8_t *buf = calloc(1, len);
  assert_non_null(buf);
  assert_int_equal(LIB(async_stream_write_zc(s, buf, len, zc_done, buf)), 0);
  assert_int_equal(async_stream_set_idle_timeout(s, 20), 0);
  assert_int_equal(async_stream_close(s), 0);
  run_to_end(loop);
  assert_int_equal(r.idle, 0);
  assert_int_equal(r.lost, 1);
  assert_int_equal(r.lost_error, ASYNC_ETIMEDOUT);
  assert_int_equal(r.released, 1);
  assert_int_equal(g_done, 1);
  assert_int_equal(async_loop_free(loop), 0);
  close(fd[1]);
}

/* DELIVER_EACH paused inside with bytes left, then a shutdown before the
 * resume: nothing more is delivered, no eof_received, one lost. */
static size_t pause_first(async_stream *s, const uint8_t *d, size_t n, void *ud) {
  struct rec *r = ud;
  (void)d;
  (void)n;
  r->data_calls++;
  assert_int_equal(async_stream_pause_reading(s), 0);
  return 1;
}

static int g_eofs;
static int count_eof(async_stream *s, void *ud) {
  (void)s;
  (void)ud;
  g_eofs++;
  return 0;
}

static void test_deliver_each_paused_then_shutdown(void **state) {
  (void)state;
  struct env e;
  env_init(&e);
  int fd[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
  struct rec r = {0};
  async_stream_protocol p = rec_each_idle_protocol;
  p.data_received = pause_first;
  p.eof_received = count_eof;
  g_eofs = 0;
  adopt(e.loop, fd[0], &p, &r);
  assert_int_equal(write(fd[1], "abcd", 4), 4);
  close(fd[1]);
  assert_true(run_until(&e, flag_set, &r.data_calls, NULL, NULL, 2000));
  assert_true(run_until(&e, NULL, NULL, NULL, NULL, 30) == 0);
  assert_int_equal(r.data_calls, 1); /* paused: the rest is kept */
  assert_int_equal(g_eofs, 0);
  g_closed = 0;
  assert_int_equal(async_loop_shutdown(e.loop, count_close_cb), 0);
  assert_int_equal(async_loop_run(e.loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(r.data_calls, 1);
  assert_int_equal(g_eofs, 0);
  assert_int_equal(r.lost, 1);
  assert_int_equal(r.lost_error, ASYNC_ECANCELED);
  assert_int_equal(r.released, 1);
  assert_int_equal(g_closed, 1); /* env's guard */
  assert_int_equal(async_loop_free(e.loop), 0);
}

/* ------------------------------------------------------------------ */
/* walk inside connection_lost: streams are visited "until their        */
/* connection_lost is called" (loop.h): not inside it, nor after.       */

static int g_walk_in_lost;
static void lost_walks(async_stream *s, int err, void *ud) {
  struct rec *r = ud;
  r->lost++;
  r->lost_error = err;
  struct kinds k = {0};
  assert_true(async_loop_walk(r->loop, walk_kinds, &k) >= 0);
  g_walk_in_lost = k.count[ASYNC_OBJECT_STREAM];
  (void)s;
}

static void test_walk_inside_connection_lost(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int fd[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
  struct rec r = {0};
  async_stream_protocol p = rec_protocol;
  p.connection_lost = lost_walks;
  async_stream *s = adopt(loop, fd[0], &p, &r);
  g_walk_in_lost = -1;
  assert_int_equal(async_stream_abort(s), 0);
  run_to_end(loop);
  assert_int_equal(r.lost, 1);
  assert_int_equal(g_walk_in_lost, 0);
  struct kinds k = {0};
  assert_int_equal(async_loop_walk(loop, walk_kinds, &k), 0);
  assert_int_equal(async_loop_free(loop), 0);
  close(fd[1]);
}

/* ------------------------------------------------------------------ */
/* A destroy function (with its context) that shuts the loop down and   */
/* tries to free it from inside the run: EBUSY there, 0 afterwards.     */

struct destroy_ctx {
  async_loop *loop;
  int calls, shutdown_rc, free_rc;
};

static void destroy_shutdown(void *value, void *context) {
  struct destroy_ctx *c = context;
  assert_ptr_equal(value, c);
  c->calls++;
  c->shutdown_rc = async_loop_shutdown(c->loop, count_close_cb);
  c->free_rc = async_loop_free(c->loop);
}

static void test_destroy_shuts_down_inside_run(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  struct destroy_ctx c = {.loop = loop, .shutdown_rc = 1, .free_rc = 1};
  async_future *f = NULL;
  assert_int_equal(async_future_new(&f, loop), 0);
  assert_int_equal(async_future_resolve(f, &c, destroy_shutdown, &c), 0);
  async_timer *t = tu_timer_start(loop, NULL, 100000, 0, tu_noop_timer_cb);
  (void)t;
  g_closed = 0;
  assert_int_equal(async_future_free(f), 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(c.calls, 1);
  assert_int_equal(c.shutdown_rc, 0);
  assert_int_equal(c.free_rc, ASYNC_EBUSY);
  assert_int_equal(g_closed, 1);
  assert_int_equal(async_loop_free(loop), 0);
  assert_int_equal(c.calls, 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_shutdown_retained_release_after_free),
      cmocka_unit_test(test_thread_check_live_stream_refused),
      cmocka_unit_test(test_walk_frees_futures_inside_fn),
      cmocka_unit_test(test_walk_retained_future_outlives_free),
      cmocka_unit_test(test_shutdown_inside_idle_timeout),
      cmocka_unit_test(test_shutdown_inside_deliver_each),
      cmocka_unit_test(test_set_protocol_inside_deliver_each),
      cmocka_unit_test(test_destroy_context_across_shutdown),
      cmocka_unit_test(test_write_zc_done_then_shutdown),
      cmocka_unit_test(test_hold_shutdown_free),
      cmocka_unit_test(test_connect_future_freed_in_lost_after_shutdown),
      cmocka_unit_test(test_pool_reverse_close_then_free),
      cmocka_unit_test(test_walk_during_reconnector_backoff),
      cmocka_unit_test(test_shutdown_in_cancel_hook_of_shutdown),
      cmocka_unit_test(test_cancelled_connect_release_then_shutdown),
      cmocka_unit_test(test_walk_abort_retained_streams),
      cmocka_unit_test(test_oversized_protocol_inside_deliver_each),
      cmocka_unit_test(test_set_protocol_inside_idle_timeout),
      cmocka_unit_test(test_thread_check_loop_entry_points),
      cmocka_unit_test(test_shutdown_in_release_inside_set_protocol),
      cmocka_unit_test(test_release_last_ref_inside_idle_timeout),
      cmocka_unit_test(test_shutdown_inside_walk_futures_free_themselves),
      cmocka_unit_test(test_sibling_streams_released_on_two_threads_after_free),
      cmocka_unit_test(test_combinators_walk_and_shutdown),
      cmocka_unit_test(test_walk_shutdown_during_connect),
      cmocka_unit_test(test_closing_stream_idle_aborts_zc_done_once),
      cmocka_unit_test(test_deliver_each_paused_then_shutdown),
      cmocka_unit_test(test_walk_inside_connection_lost),
      cmocka_unit_test(test_destroy_shuts_down_inside_run),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
