/*
 * async_watcher: readiness of user-owned fds (async/watcher.h; DESIGN.md
 * §5; libev.md §8-§9, §17; libuv's poll / closed_fd_events tests).
 *
 * Readable/writable on socketpairs and pipes, level-triggered delivery
 * (one callback per iteration while ready), set_events changing interest
 * in place, start replacing events and callback, hang-up reporting, fd
 * number reuse without stale registrations, invalid fds, closing inside
 * the callback, async_watcher_fd.
 *
 * Every readiness used here is synchronous (a write to a socketpair or
 * pipe makes the other end ready before write() returns), so NOWAIT
 * iterations give exact counts.
 */
#include "test_util.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Everything a watcher callback saw. Never asserts (runs inside the loop). */
struct wrec {
  int calls;
  uint32_t last;       /* revents of the last call */
  uint32_t seen;       /* OR of all revents */
  async_watcher *w;    /* watcher passed to the last call */
  void *ud;            /* userdata passed to the last call */
  uint64_t last_iter;  /* iteration of the last call */
  int bad_iter;        /* two calls in one iteration */
};

static void rec_cb(async_watcher *w, uint32_t revents, void *ud) {
  struct wrec *r = ud;
  uint64_t it = tu_iter_cb(async_handle_loop(async_watcher_handle(w)));
  if (r->calls > 0 && it == r->last_iter) {
    r->bad_iter = 1;
  }
  r->last_iter = it;
  r->calls++;
  r->last = revents;
  r->seen |= revents;
  r->w = w;
  r->ud = ud;
}

/* A second recorder callback, to tell which callback ran. */
static void rec_cb2(async_watcher *w, uint32_t revents, void *ud) {
  struct wrec *r = ud;
  r->calls += 100;
  r->last = revents;
  r->w = w;
  r->ud = ud;
}

/* Runs n NOWAIT iterations; each must return >= 0. */
static void run_nowait(async_loop *loop, int n) {
  for (int i = 0; i < n; i++) {
    assert_true(async_loop_run(loop, ASYNC_RUN_NOWAIT) >= 0);
  }
}

static void make_socketpair(int sv[2]) {
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

static void make_pipe(int p[2]) { assert_int_equal(pipe2(p, O_CLOEXEC), 0); }

static void write_byte(int fd) {
  char c = 'x';
  assert_int_equal(write(fd, &c, 1), 1);
}

static void read_byte(int fd) {
  char c = 0;
  assert_int_equal(read(fd, &c, 1), 1);
  assert_int_equal(c, 'x');
}

static void set_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  assert_true(fl >= 0);
  assert_int_equal(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
}

/* A new watcher of fd, started for events with cb; both must succeed. */
static async_watcher *watch(async_loop *loop, int fd, void *ud, uint32_t events, async_watcher_fn cb) {
  async_watcher *w = tu_watcher_new(loop, fd, ud);
  assert_int_equal(async_watcher_start(w, events, cb), 0);
  return w;
}

/* Closes the watcher, runs the loop to the end and frees it. */
static void close_and_finish(async_loop *loop, async_watcher *w) {
  tu_close(async_watcher_handle(w));
  tu_finish(loop);
}

/* ------------------------------------------------------------------ */

/* Socketpair, READABLE: nothing until data arrives, then one callback per
 * iteration while unread (level-triggered), none after the data is read. */
static void test_readable_socketpair_level(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int sv[2];
  make_socketpair(sv);
  struct wrec r = {0};
  async_watcher *w = tu_watcher_new(loop, sv[0], &r);
  assert_int_equal(async_handle_is_active(async_watcher_handle(w)), 0);
  assert_int_equal(async_watcher_start(w, ASYNC_READABLE, rec_cb), 0);
  assert_int_equal(async_handle_is_active(async_watcher_handle(w)), 1);

  run_nowait(loop, 3);
  assert_int_equal(r.calls, 0); /* writable, but only READABLE is watched */

  write_byte(sv[1]);
  assert_int_equal(r.calls, 0); /* never inside write / outside run */
  uint64_t it0 = tu_iterations(loop);
  run_nowait(loop, 5);
  assert_int_equal(tu_iterations(loop) - it0, 5);
  assert_int_equal(r.calls, 5); /* once per iteration while readable */
  assert_int_equal(r.bad_iter, 0);
  assert_int_equal(r.last, ASYNC_READABLE);
  assert_int_equal(r.seen, ASYNC_READABLE);
  assert_ptr_equal(r.w, w);
  assert_ptr_equal(r.ud, &r);

  read_byte(sv[0]);
  run_nowait(loop, 3);
  assert_int_equal(r.calls, 5);

  /* Readable again: fires again. */
  write_byte(sv[1]);
  run_nowait(loop, 2);
  assert_int_equal(r.calls, 7);
  read_byte(sv[0]);

  close_and_finish(loop, w);
  tu_close_pair(sv);
}

/* Socketpair, WRITABLE: an empty send buffer is writable every iteration;
 * a full one is not until the peer drains it. */
static void test_writable_socketpair_level(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int sv[2];
  make_socketpair(sv);
  set_nonblock(sv[1]);
  struct wrec r = {0};
  async_watcher *w = watch(loop, sv[1], &r, ASYNC_WRITABLE, rec_cb);
  run_nowait(loop, 4);
  assert_int_equal(r.calls, 4);
  assert_int_equal(r.bad_iter, 0);
  assert_int_equal(r.seen, ASYNC_WRITABLE);

  /* Fill sv[1]'s buffer: no longer writable. */
  static char buf[65536];
  memset(buf, 'y', sizeof buf);
  size_t total = 0;
  for (int i = 0; i < 100000; i++) {
    ssize_t n = write(sv[1], buf, sizeof buf);
    if (n < 0) {
      assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
      break;
    }
    total += (size_t)n;
  }
  assert_true(total > 0);
  run_nowait(loop, 3);
  assert_int_equal(r.calls, 4);

  /* Drain the peer completely: writable again. */
  set_nonblock(sv[0]);
  size_t got = 0;
  for (;;) {
    ssize_t n = read(sv[0], buf, sizeof buf);
    if (n <= 0) {
      break;
    }
    got += (size_t)n;
  }
  assert_int_equal(got, total);
  run_nowait(loop, 2);
  assert_int_equal(r.calls, 6);
  assert_int_equal(r.last, ASYNC_WRITABLE);

  close_and_finish(loop, w);
  tu_close_pair(sv);
}

/* Pipe: read end readable after a write, write end writable; the read end
 * is never writable. */
static void test_pipe_readable_writable(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int p[2];
  make_pipe(p);
  struct wrec rr = {0}, wr = {0};
  async_watcher *rw = NULL, *ww = NULL;
  rw = tu_watcher_new(loop, p[0], &rr);
  ww = tu_watcher_new(loop, p[1], &wr);
  /* Both events on the read end: nothing while the pipe is empty. */
  assert_int_equal(async_watcher_start(rw, ASYNC_READABLE | ASYNC_WRITABLE, rec_cb), 0);
  assert_int_equal(async_watcher_start(ww, ASYNC_WRITABLE, rec_cb), 0);
  run_nowait(loop, 3);
  assert_int_equal(rr.calls, 0);
  assert_int_equal(wr.calls, 3);
  assert_int_equal(wr.seen, ASYNC_WRITABLE);

  write_byte(p[1]);
  run_nowait(loop, 2);
  assert_int_equal(rr.calls, 2);
  assert_int_equal(rr.seen, ASYNC_READABLE); /* the ready subset only */
  assert_int_equal(wr.calls, 5);
  read_byte(p[0]);
  run_nowait(loop, 1);
  assert_int_equal(rr.calls, 2);

  tu_close(async_watcher_handle(rw));
  tu_close(async_watcher_handle(ww));
  tu_finish(loop);
  tu_close_pair(p);
}

/* Hang-up reports both events (to a watcher watching both), only the
 * watched one to a watcher watching one. Under the select backend a pipe's
 * hang-up is READABLE alone: select(2) has no hang-up of its own and
 * never counts a pipe's read end as writable (async/watcher.h). */
static void test_hangup_reports_both(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int p[2];
  make_pipe(p);
  struct wrec r = {0};
  async_watcher *w = watch(loop, p[0], &r, ASYNC_READABLE | ASYNC_WRITABLE, rec_cb);
  run_nowait(loop, 2);
  assert_int_equal(r.calls, 0);
  close(p[1]); /* writer gone: hang-up on the read end */
  run_nowait(loop, 1);
  assert_int_equal(r.calls, 1);
  assert_int_equal(r.last, tu_backend() == TU_SELECT ? ASYNC_READABLE : ASYNC_READABLE | ASYNC_WRITABLE);

  /* Only READABLE watched: the hang-up reports READABLE only. */
  assert_int_equal(async_watcher_set_events(w, ASYNC_READABLE), 0);
  run_nowait(loop, 1);
  assert_int_equal(r.calls, 2);
  assert_int_equal(r.last, ASYNC_READABLE);
  close_and_finish(loop, w);
  close(p[0]);

  /* Socketpair whose peer closed, watched for both. */
  loop = tu_loop_new();
  int sv[2];
  make_socketpair(sv);
  memset(&r, 0, sizeof r);
  w = tu_watcher_new(loop, sv[0], &r);
  assert_int_equal(async_watcher_start(w, ASYNC_READABLE, rec_cb), 0);
  run_nowait(loop, 1);
  assert_int_equal(r.calls, 0);
  close(sv[1]);
  assert_int_equal(async_watcher_set_events(w, ASYNC_READABLE | ASYNC_WRITABLE), 0);
  run_nowait(loop, 1);
  assert_int_equal(r.calls, 1);
  assert_int_equal(r.last, ASYNC_READABLE | ASYNC_WRITABLE);
  close_and_finish(loop, w);
  close(sv[0]);
}

/* set_events changes interest in place: READ -> WRITE -> READ|WRITE ->
 * READ -> 0 (stops) -> WRITE (resumes with the same callback). */
static void test_set_events_sequence(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int sv[2];
  make_socketpair(sv);
  struct wrec r = {0};
  async_watcher *w = tu_watcher_new(loop, sv[0], &r);
  async_handle *h = async_watcher_handle(w);
  assert_int_equal(async_watcher_start(w, ASYNC_READABLE, rec_cb), 0);
  run_nowait(loop, 2);
  assert_int_equal(r.calls, 0); /* not readable */

  assert_int_equal(async_watcher_set_events(w, ASYNC_WRITABLE), 0);
  assert_int_equal(r.calls, 0); /* never inside set_events */
  assert_int_equal(async_handle_is_active(h), 1);
  run_nowait(loop, 2);
  assert_int_equal(r.calls, 2);
  assert_int_equal(r.seen, ASYNC_WRITABLE);
  assert_ptr_equal(r.w, w); /* same object */

  write_byte(sv[1]); /* now readable too */
  assert_int_equal(async_watcher_set_events(w, ASYNC_READABLE | ASYNC_WRITABLE), 0);
  run_nowait(loop, 1);
  assert_int_equal(r.calls, 3);
  assert_int_equal(r.last, ASYNC_READABLE | ASYNC_WRITABLE);

  assert_int_equal(async_watcher_set_events(w, ASYNC_READABLE), 0);
  run_nowait(loop, 1);
  assert_int_equal(r.calls, 4);
  assert_int_equal(r.last, ASYNC_READABLE);

  /* Same events again: a no-op that keeps watching. */
  assert_int_equal(async_watcher_set_events(w, ASYNC_READABLE), 0);
  run_nowait(loop, 1);
  assert_int_equal(r.calls, 5);
  assert_int_equal(r.last, ASYNC_READABLE);

  /* 0 stops it: nothing fires, nothing keeps run(DEFAULT) alive. */
  assert_int_equal(async_watcher_set_events(w, 0), 0);
  assert_int_equal(async_handle_is_active(h), 0);
  run_nowait(loop, 3);
  assert_int_equal(r.calls, 5);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(r.calls, 5);
  assert_int_equal(async_watcher_set_events(w, 0), 0); /* stopping again: no-op */

  /* A stopped (previously started) watcher resumes with its callback. */
  assert_int_equal(async_watcher_set_events(w, ASYNC_WRITABLE), 0);
  assert_int_equal(async_handle_is_active(h), 1);
  run_nowait(loop, 1);
  assert_int_equal(r.calls, 6);
  assert_int_equal(r.last, ASYNC_WRITABLE);
  assert_int_equal(r.bad_iter, 0);

  /* Unknown bits are rejected and change nothing. */
  assert_int_equal(async_watcher_set_events(w, 4u), ASYNC_EINVAL);
  assert_int_equal(async_watcher_set_events(w, ASYNC_READABLE | 0x80000000u), ASYNC_EINVAL);
  assert_int_equal(async_handle_is_active(h), 1);
  run_nowait(loop, 1);
  assert_int_equal(r.calls, 7);
  assert_int_equal(r.last, ASYNC_WRITABLE);

  read_byte(sv[0]);
  close_and_finish(loop, w);
  tu_close_pair(sv);
}

/* set_events on a never-started watcher: no callback known -> ESTATE. */
static void test_set_events_before_start(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int sv[2];
  make_socketpair(sv);
  async_watcher *w = tu_watcher_new(loop, sv[0], NULL);
  assert_int_equal(async_watcher_set_events(w, ASYNC_WRITABLE), ASYNC_ESTATE);
  assert_int_equal(async_watcher_set_events(w, ASYNC_READABLE), ASYNC_ESTATE);
  assert_int_equal(async_watcher_set_events(w, ASYNC_READABLE | ASYNC_WRITABLE), ASYNC_ESTATE);
  assert_int_equal(async_handle_is_active(async_watcher_handle(w)), 0);
  /* Nothing is watched: the loop has no work. */
  assert_int_equal(async_loop_alive(loop), 0);
  close_and_finish(loop, w);
  tu_close_pair(sv);
}

/* Starting an active watcher replaces its events and its callback. */
static void test_start_replaces_callback(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int sv[2];
  make_socketpair(sv);
  struct wrec r = {0};
  async_watcher *w = watch(loop, sv[0], &r, ASYNC_WRITABLE, rec_cb);
  run_nowait(loop, 1);
  assert_int_equal(r.calls, 1);

  assert_int_equal(async_watcher_start(w, ASYNC_WRITABLE, rec_cb2), 0);
  assert_int_equal(async_handle_is_active(async_watcher_handle(w)), 1);
  run_nowait(loop, 1);
  assert_int_equal(r.calls, 101); /* rec_cb2 only */
  assert_int_equal(r.last, ASYNC_WRITABLE);

  /* New events too: READABLE only, nothing to read -> silent. */
  assert_int_equal(async_watcher_start(w, ASYNC_READABLE, rec_cb), 0);
  run_nowait(loop, 2);
  assert_int_equal(r.calls, 101);
  write_byte(sv[1]);
  run_nowait(loop, 1);
  assert_int_equal(r.calls, 102);
  assert_int_equal(r.last, ASYNC_READABLE);

  /* Stop then start again works; stop twice is a no-op. */
  assert_int_equal(async_watcher_stop(w), 0);
  assert_int_equal(async_watcher_stop(w), 0);
  assert_int_equal(async_handle_is_active(async_watcher_handle(w)), 0);
  run_nowait(loop, 2);
  assert_int_equal(r.calls, 102);
  assert_int_equal(async_watcher_start(w, ASYNC_READABLE, rec_cb2), 0);
  run_nowait(loop, 1);
  assert_int_equal(r.calls, 202);

  /* Invalid starts fail and leave the watcher as it was. */
  assert_int_equal(async_watcher_start(w, 0, rec_cb), ASYNC_EINVAL);
  assert_int_equal(async_watcher_start(w, 8u, rec_cb), ASYNC_EINVAL);
  assert_int_equal(async_watcher_start(w, ASYNC_READABLE, NULL), ASYNC_EINVAL);
  run_nowait(loop, 1);
  assert_int_equal(r.calls, 302); /* still rec_cb2 on READABLE */

  read_byte(sv[0]);
  close_and_finish(loop, w);
  tu_close_pair(sv);
}

/* Makes a socketpair whose first fd has number want (which must be free). */
static void socketpair_at(int sv[2], int want) {
  make_socketpair(sv);
  if (sv[0] != want) {
    assert_true(sv[1] != want);
    assert_int_equal(dup3(sv[0], want, O_CLOEXEC), want);
    close(sv[0]);
    sv[0] = want;
  }
}

/* stop -> close(fd) -> a new file gets the same number -> a NEW watcher on
 * it gets its events, and so does the OLD watcher restarted (libev.md §8:
 * on epoll a restart without ev_io_set loses every event). */
static void test_fd_reuse_no_stale_registration(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int a[2];
  make_socketpair(a);
  int num = a[0];
  struct wrec r1 = {0}, r2 = {0};
  async_watcher *w1 = NULL, *w2 = NULL;
  w1 = tu_watcher_new(loop, num, &r1);
  assert_int_equal(async_watcher_start(w1, ASYNC_READABLE, rec_cb), 0);
  write_byte(a[1]);
  run_nowait(loop, 1);
  assert_int_equal(r1.calls, 1);

  assert_int_equal(async_watcher_stop(w1), 0);
  tu_close_pair(a);

  int b[2];
  socketpair_at(b, num);
  assert_int_equal(b[0], num);
  w2 = tu_watcher_new(loop, num, &r2);
  assert_int_equal(async_watcher_fd(w2), num);
  assert_int_equal(async_watcher_start(w2, ASYNC_READABLE, rec_cb), 0);
  run_nowait(loop, 2);
  assert_int_equal(r2.calls, 0); /* the old file's readiness is not reported */
  write_byte(b[1]);
  run_nowait(loop, 1);
  assert_int_equal(r2.calls, 1);
  assert_int_equal(r2.last, ASYNC_READABLE);
  assert_int_equal(r1.calls, 1); /* stopped: silent */
  read_byte(b[0]);
  assert_int_equal(async_watcher_stop(w2), 0);
  tu_close_pair(b);

  /* Old watcher, restarted on the number that now names a third file. */
  int c[2];
  socketpair_at(c, num);
  assert_int_equal(async_watcher_start(w1, ASYNC_READABLE, rec_cb), 0);
  run_nowait(loop, 2);
  assert_int_equal(r1.calls, 1);
  write_byte(c[1]);
  run_nowait(loop, 1);
  assert_int_equal(r1.calls, 2);
  assert_int_equal(r2.calls, 1);
  read_byte(c[0]);
  /* And via set_events after a stop (the other restart path). */
  assert_int_equal(async_watcher_stop(w1), 0);
  tu_close_pair(c);
  int d[2];
  socketpair_at(d, num);
  assert_int_equal(async_watcher_set_events(w1, ASYNC_READABLE), 0);
  write_byte(d[1]);
  run_nowait(loop, 1);
  assert_int_equal(r1.calls, 3);

  tu_close(async_watcher_handle(w1));
  tu_close(async_watcher_handle(w2));
  tu_finish(loop);
  tu_close_pair(d);
}

/* libuv closed_fd_events: inside a callback, stop + close the fd, open a new
 * one with the same number and watch it: no stale event reaches the new
 * watcher (same iteration or later), real events do. */
struct reuse {
  int a[2];
  int b[2];
  int num;
  async_loop *loop;
  async_watcher *w1;
  async_watcher *w2;
  struct wrec r2;
  int w1_calls;
  int errors;
};

static void reuse_w1_cb(async_watcher *w, uint32_t revents, void *ud) {
  (void)revents;
  struct reuse *s = ud;
  s->w1_calls++;
  if (s->w1_calls > 1) {
    return;
  }
  if (async_watcher_stop(w) != 0) {
    s->errors++;
  }
  tu_close_pair(s->a);
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s->b) != 0) {
    s->errors++;
    return;
  }
  if (s->b[0] != s->num) {
    if (dup3(s->b[0], s->num, O_CLOEXEC) != s->num) {
      s->errors++;
    }
    close(s->b[0]);
    s->b[0] = s->num;
  }
  if (async_watcher_new(&s->w2, s->loop, s->num, &s->r2) != 0 ||
      async_watcher_start(s->w2, ASYNC_READABLE, rec_cb) != 0) {
    s->errors++;
  }
}

static void test_fd_reuse_inside_callback(void **state) {
  (void)state;
  struct reuse s = {0};
  s.loop = tu_loop_new();
  make_socketpair(s.a);
  s.num = s.a[0];
  s.w1 = tu_watcher_new(s.loop, s.num, &s);
  assert_int_equal(async_watcher_start(s.w1, ASYNC_READABLE, reuse_w1_cb), 0);
  write_byte(s.a[1]);
  run_nowait(s.loop, 1);
  assert_int_equal(s.w1_calls, 1);
  assert_int_equal(s.errors, 0);
  assert_non_null(s.w2);
  run_nowait(s.loop, 3);
  assert_int_equal(s.w1_calls, 1);
  assert_int_equal(s.r2.calls, 0); /* no stale readiness from the old file */
  write_byte(s.b[1]);
  run_nowait(s.loop, 1);
  assert_int_equal(s.r2.calls, 1);
  assert_int_equal(s.r2.last, ASYNC_READABLE);
  read_byte(s.b[0]);
  tu_close(async_watcher_handle(s.w1));
  tu_close(async_watcher_handle(s.w2));
  tu_finish(s.loop);
  tu_close_pair(s.b);
}

/* Invalid fds: negative -> EINVAL, not open -> EBADF; a closed fd at start
 * or set_events -> EBADF. */
static void test_invalid_fds(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_watcher *w = NULL;
  assert_int_equal(async_watcher_new(&w, loop, -1, NULL), ASYNC_EINVAL);
  assert_int_equal(async_watcher_new(&w, loop, -1000, NULL), ASYNC_EINVAL);
  assert_int_equal(async_watcher_new(&w, loop, INT_MIN, NULL), ASYNC_EINVAL);

  int p[2];
  make_pipe(p);
  int closed_fd = p[0];
  tu_close_pair(p);
  assert_int_equal(fcntl(closed_fd, F_GETFD), -1);
  assert_int_equal(async_watcher_new(&w, loop, closed_fd, NULL), ASYNC_EBADF);
  assert_int_equal(async_watcher_new(&w, loop, 1 << 20, NULL), ASYNC_EBADF);
  assert_int_equal(async_watcher_new(&w, loop, INT_MAX, NULL), ASYNC_EBADF);
  assert_int_equal(async_loop_alive(loop), 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_NOWAIT), 0);

  /* Closed behind the watcher's back before start. */
  make_pipe(p);
  w = tu_watcher_new(loop, p[0], NULL);
  tu_close_pair(p);
  assert_int_equal(async_watcher_start(w, ASYNC_READABLE, tu_noop_watcher_cb), ASYNC_EBADF);
  assert_int_equal(async_handle_is_active(async_watcher_handle(w)), 0);
  tu_close(async_watcher_handle(w));

  /* Started, stopped, fd closed: restart through start or set_events. */
  make_pipe(p);
  w = tu_watcher_new(loop, p[1], NULL);
  assert_int_equal(async_watcher_start(w, ASYNC_WRITABLE, tu_noop_watcher_cb), 0);
  assert_int_equal(async_watcher_stop(w), 0);
  tu_close_pair(p);
  assert_int_equal(async_watcher_set_events(w, ASYNC_WRITABLE), ASYNC_EBADF);
  assert_int_equal(async_watcher_start(w, ASYNC_WRITABLE, tu_noop_watcher_cb), ASYNC_EBADF);
  assert_int_equal(async_handle_is_active(async_watcher_handle(w)), 0);
  tu_close(async_watcher_handle(w));

  /* The loop still works. */
  int sv[2];
  make_socketpair(sv);
  struct wrec r = {0};
  w = tu_watcher_new(loop, sv[0], &r);
  assert_int_equal(async_watcher_start(w, ASYNC_WRITABLE, rec_cb), 0);
  run_nowait(loop, 1);
  assert_int_equal(r.calls, 1);
  close_and_finish(loop, w);
  tu_close_pair(sv);
}

/* Closing a watcher inside its own callback: no further calls, the close
 * callback runs once with the userdata, operations after close fail. */
struct selfclose {
  int calls;
  int close_rc;
  int start_rc_after;
  int set_rc_after;
  int stop_rc_after;
  int active_after;
  int closing_after;
  int close_calls;
  void *close_ud;
  async_handle *close_h;
};

static void selfclose_close_cb(async_handle *h, void *ud) {
  struct selfclose *s = ud;
  s->close_calls++;
  s->close_ud = ud;
  s->close_h = h;
}

static void selfclose_cb(async_watcher *w, uint32_t revents, void *ud) {
  (void)revents;
  struct selfclose *s = ud;
  s->calls++;
  s->close_rc = async_handle_close(async_watcher_handle(w), selfclose_close_cb);
  s->start_rc_after = async_watcher_start(w, ASYNC_WRITABLE, selfclose_cb);
  s->set_rc_after = async_watcher_set_events(w, ASYNC_READABLE);
  s->stop_rc_after = async_watcher_stop(w);
  s->active_after = async_handle_is_active(async_watcher_handle(w));
  s->closing_after = async_handle_is_closing(async_watcher_handle(w));
}

static void test_close_inside_callback(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int sv[2];
  make_socketpair(sv);
  struct selfclose s = {0};
  async_watcher *w = watch(loop, sv[0], &s, ASYNC_READABLE | ASYNC_WRITABLE, selfclose_cb);
  write_byte(sv[1]);
  uint64_t t0 = tu_now_ns();
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_true(tu_elapsed_ms(t0) < 5000.0);
  assert_int_equal(s.calls, 1);
  assert_int_equal(s.close_rc, 0);
  assert_int_equal(s.start_rc_after, ASYNC_ECLOSED);
  assert_int_equal(s.set_rc_after, ASYNC_ECLOSED);
  assert_int_equal(s.stop_rc_after, ASYNC_ECLOSED);
  assert_int_equal(s.active_after, 0);
  assert_int_equal(s.closing_after, 1);
  assert_int_equal(s.close_calls, 1);
  assert_ptr_equal(s.close_ud, &s);
  assert_ptr_equal(s.close_h, (async_handle *)w);
  /* The fd is the user's: still open, closable now. */
  assert_true(fcntl(sv[0], F_GETFD) >= 0);
  assert_int_equal(async_loop_free(loop), 0);
  tu_close_pair(sv);
}

/* A regular file (which epoll refuses) is always ready, as poll() says:
 * the watcher reports it instead of failing or aborting. */
static void test_regular_file_always_ready(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  FILE *tmp = tmpfile();
  assert_non_null(tmp);
  int fd = fileno(tmp);
  struct wrec r = {0};
  async_watcher *w = watch(loop, fd, &r, ASYNC_READABLE | ASYNC_WRITABLE, rec_cb);
  run_nowait(loop, 3);
  assert_int_equal(r.calls, 3);
  assert_int_equal(r.seen, ASYNC_READABLE | ASYNC_WRITABLE);
  assert_int_equal(async_watcher_set_events(w, ASYNC_WRITABLE), 0);
  run_nowait(loop, 1);
  assert_int_equal(r.calls, 4);
  assert_int_equal(r.last, ASYNC_WRITABLE);
  close_and_finish(loop, w);
  fclose(tmp);
}

/* Two watchers ready in the same iteration; whichever runs first closes
 * the other, which then never runs (no call after close, no use after
 * free under valgrind/ASan). */
struct sib {
  async_watcher *a;
  async_watcher *b;
  int calls_a;
  int calls_b;
  int rc;
  int closed;
};

static void sib_close_cb(async_handle *h, void *ud) {
  (void)h;
  ((struct sib *)ud)->closed++;
}

static void sib_cb(async_watcher *w, uint32_t revents, void *ud) {
  (void)revents;
  struct sib *s = ud;
  if (w == s->a) {
    s->calls_a++;
    if (s->b != NULL) {
      s->rc = async_handle_close(async_watcher_handle(s->b), sib_close_cb);
      s->b = NULL;
    }
  } else {
    s->calls_b++;
    if (s->a != NULL) {
      s->rc = async_handle_close(async_watcher_handle(s->a), sib_close_cb);
      s->a = NULL;
    }
  }
}

static void test_close_sibling_in_callback(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int sv[2], p[2];
  make_socketpair(sv);
  make_pipe(p);
  struct sib s = {0};
  s.a = tu_watcher_new(loop, sv[0], &s);
  s.b = tu_watcher_new(loop, p[1], &s);
  async_watcher *a = s.a, *b = s.b;
  assert_int_equal(async_watcher_start(a, ASYNC_WRITABLE, sib_cb), 0);
  assert_int_equal(async_watcher_start(b, ASYNC_WRITABLE, sib_cb), 0);
  run_nowait(loop, 1);
  assert_int_equal(s.calls_a + s.calls_b, 1);
  assert_int_equal(s.rc, 0);
  run_nowait(loop, 2);
  assert_int_equal(s.closed, 1);
  /* The survivor keeps firing, the closed one never. */
  int before_a = s.calls_a, before_b = s.calls_b;
  run_nowait(loop, 2);
  if (s.a != NULL) {
    assert_int_equal(s.calls_a, before_a + 2);
    assert_int_equal(s.calls_b, before_b);
    tu_close(async_watcher_handle(a));
  } else {
    assert_int_equal(s.calls_b, before_b + 2);
    assert_int_equal(s.calls_a, before_a);
    tu_close(async_watcher_handle(b));
  }
  tu_finish(loop);
  tu_close_pair(sv);
  tu_close_pair(p);
}

/* async_watcher_fd: the fd given at creation, also while stopped; the
 * watcher converts to a handle that knows its loop and userdata. */
static void test_watcher_fd_and_handle(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int sv[2], p[2];
  make_socketpair(sv);
  make_pipe(p);
  int ud = 7;
  async_watcher *w1 = NULL, *w2 = NULL;
  w1 = tu_watcher_new(loop, sv[0], &ud);
  w2 = tu_watcher_new(loop, p[1], NULL);
  assert_int_equal(async_watcher_fd(w1), sv[0]);
  assert_int_equal(async_watcher_fd(w2), p[1]);
  assert_int_equal(async_watcher_start(w1, ASYNC_WRITABLE, tu_noop_watcher_cb), 0);
  assert_int_equal(async_watcher_fd(w1), sv[0]);
  assert_int_equal(async_watcher_stop(w1), 0);
  assert_int_equal(async_watcher_fd(w1), sv[0]);
  assert_int_equal(async_watcher_fd(NULL), ASYNC_EINVAL);

  async_handle *h = async_watcher_handle(w1);
  assert_ptr_equal(h, (async_handle *)w1);
  assert_ptr_equal(async_handle_loop(h), loop);
  assert_ptr_equal(async_handle_userdata(h), &ud);
  assert_null(async_handle_userdata(async_watcher_handle(w2)));
  assert_int_equal(async_handle_has_ref(h), 1);

  tu_close(h);
  tu_close(async_watcher_handle(w2));
  tu_finish(loop);
  tu_close_pair(sv);
  tu_close_pair(p);
}

/* An unreferenced active watcher does not keep run(DEFAULT) going, a
 * referenced one does (stopped from a timer). */
static void stop_watcher_timer_cb(async_timer *t, void *ud) {
  async_watcher_stop(ud);
  async_handle_close(async_timer_handle(t), NULL);
}

static void test_ref_keeps_loop_alive(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int sv[2];
  make_socketpair(sv);
  async_watcher *w = watch(loop, sv[0], NULL, ASYNC_READABLE, tu_noop_watcher_cb);
  assert_int_equal(async_loop_alive(loop), 1);
  assert_int_equal(async_handle_unref(async_watcher_handle(w)), 0);
  assert_int_equal(async_loop_alive(loop), 0);
  uint64_t t0 = tu_now_ns();
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_true(tu_elapsed_ms(t0) < 1000.0);
  assert_int_equal(async_handle_ref(async_watcher_handle(w)), 0);
  t0 = tu_now_ns(); /* before the start: the timer never fires early relative to it */
  tu_timer_start(loop, w, 30, 0, stop_watcher_timer_cb);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_true(tu_elapsed_ms(t0) >= 30.0);
  assert_int_equal(async_handle_is_active(async_watcher_handle(w)), 0);
  close_and_finish(loop, w);
  tu_close_pair(sv);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_readable_socketpair_level),
      cmocka_unit_test(test_writable_socketpair_level),
      cmocka_unit_test(test_pipe_readable_writable),
      cmocka_unit_test(test_hangup_reports_both),
      cmocka_unit_test(test_set_events_sequence),
      cmocka_unit_test(test_set_events_before_start),
      cmocka_unit_test(test_start_replaces_callback),
      cmocka_unit_test(test_fd_reuse_no_stale_registration),
      cmocka_unit_test(test_fd_reuse_inside_callback),
      cmocka_unit_test(test_invalid_fds),
      cmocka_unit_test(test_close_inside_callback),
      cmocka_unit_test(test_close_sibling_in_callback),
      cmocka_unit_test(test_regular_file_always_ready),
      cmocka_unit_test(test_watcher_fd_and_handle),
      cmocka_unit_test(test_ref_keeps_loop_alive),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
