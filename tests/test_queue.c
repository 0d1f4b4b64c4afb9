/*
 * The completion queue (async/queue.h): records in order and in batches,
 * posts from threads, timers, futures, streams (consume and flow control,
 * end of file, loss), servers (accept by token), connects, closing inside,
 * and bad input.
 */
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>

#include "test_util.h"

#define CAP 64

struct qenv {
  async_loop *loop;
  async_queue *q;
  async_event ev[CAP];
};

static void qenv_init(struct qenv *e) {
  e->loop = tu_loop_new();
  assert_int_equal(async_queue_new(&e->q, e->loop), 0);
}

static void qenv_finish(struct qenv *e) {
  assert_int_equal(async_queue_free(e->q), 0);
  async_loop_run(e->loop, ASYNC_RUN_NOWAIT);
  assert_int_equal(async_loop_free(e->loop), 0);
}

/* Polls until a record of kind comes (others are skipped), at most 3 s. */
static async_event next_of(struct qenv *e, uint32_t kind) {
  uint64_t t0 = tu_now_ns();
  for (;;) {
    int n = async_queue_poll(e->ev, 1, e->q, 100);
    assert_true(n >= 0);
    if (n == 1 && e->ev[0].kind == kind) return e->ev[0];
    assert_true(tu_elapsed_ms(t0) < 3000);
  }
}

/* Polls one record, waiting at most 3 s. */
static async_event next(struct qenv *e) {
  int n = async_queue_poll(e->ev, 1, e->q, 3000);
  assert_int_equal(n, 1);
  return e->ev[0];
}

static void no_record(struct qenv *e, int64_t ms) { assert_int_equal(async_queue_poll(e->ev, CAP, e->q, ms), 0); }

/* ---- posts ---------------------------------------------------------------- */

static void test_posts_in_order_and_batches(void **state) {
  (void)state;
  struct qenv e;
  qenv_init(&e);
  for (uint64_t i = 1; i <= 10; ++i) assert_int_equal(async_queue_post(e.q, i), 0);
  uint64_t want = 1;
  int sizes[] = {3, 3, 3, 1};
  for (int b = 0; b < 4; ++b) {
    int n = async_queue_poll(e.ev, 3, e.q, 0);
    assert_int_equal(n, sizes[b]);
    for (int i = 0; i < n; ++i) {
      assert_int_equal(e.ev[i].kind, ASYNC_EVENT_POST);
      assert_int_equal(e.ev[i].token, want++);
      assert_null(e.ev[i].object);
      assert_int_equal(e.ev[i].result, 0);
    }
  }
  no_record(&e, 0);
  qenv_finish(&e);
}

static void test_poll_timeout_waits(void **state) {
  (void)state;
  struct qenv e;
  qenv_init(&e);
  uint64_t t0 = tu_now_ns();
  no_record(&e, 50);
  double ms = tu_elapsed_ms(t0);
  assert_true(ms >= 49.0);
  assert_true(ms < 2000.0);
  qenv_finish(&e);
}

#define THREADS 4
#define PER_THREAD 2000

struct poster {
  async_queue *q;
  uint64_t id;
};

static void *post_many(void *arg) {
  struct poster *p = arg;
  for (uint64_t i = 0; i < PER_THREAD; ++i) assert_int_equal(async_queue_post(p->q, p->id << 32 | i), 0);
  return NULL;
}

static void test_posts_from_threads(void **state) {
  (void)state;
  struct qenv e;
  qenv_init(&e);
  pthread_t t[THREADS];
  struct poster p[THREADS];
  for (int i = 0; i < THREADS; ++i) {
    p[i] = (struct poster){e.q, (uint64_t)i};
    assert_int_equal(pthread_create(&t[i], NULL, post_many, &p[i]), 0);
  }
  uint64_t seen[THREADS] = {0};
  int total = 0;
  uint64_t t0 = tu_now_ns();
  while (total < THREADS * PER_THREAD) {
    int n = async_queue_poll(e.ev, CAP, e.q, 100);  // waits in the loop, woken by the posts
    assert_true(n >= 0);
    for (int i = 0; i < n; ++i) {
      uint64_t id = e.ev[i].token >> 32;
      assert_true(id < THREADS);
      assert_int_equal(e.ev[i].token & 0xffffffffu, seen[id]++);  // per-thread order
    }
    total += n;
    assert_true(tu_elapsed_ms(t0) < 10000);
  }
  for (int i = 0; i < THREADS; ++i) pthread_join(t[i], NULL);
  qenv_finish(&e);
}

struct delayed {
  async_queue *q;
};

static void *post_later(void *arg) {
  tu_sleep_ms(30);
  assert_int_equal(async_queue_post(((struct delayed *)arg)->q, 99), 0);
  return NULL;
}

static void test_endless_poll_woken_by_post(void **state) {
  (void)state;
  struct qenv e;
  qenv_init(&e);
  struct delayed d = {e.q};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, post_later, &d), 0);
  // Nothing else is alive: the wait still blocks until the post.
  assert_int_equal(async_queue_poll(e.ev, CAP, e.q, -1), 1);
  assert_int_equal(e.ev[0].token, 99);
  pthread_join(t, NULL);
  qenv_finish(&e);
}

/* ---- timers and futures ------------------------------------------------------ */

static void test_timer_records_then_closed(void **state) {
  (void)state;
  struct qenv e;
  qenv_init(&e);
  void *b = NULL;
  assert_int_equal(async_queue_bind(&b, e.q, 7), 0);
  async_timer *t = tu_timer_new(e.loop, b);
  assert_int_equal(async_queue_timer_start(e.q, t, 5, 5), 0);
  for (int i = 0; i < 3; ++i) {
    async_event r = next(&e);
    assert_int_equal(r.kind, ASYNC_EVENT_TIMER);
    assert_int_equal(r.token, 7);
    assert_ptr_equal(r.object, t);
  }
  assert_int_equal(async_queue_free(e.q), ASYNC_EBUSY);  // the CLOSED record is owed
  assert_int_equal(async_queue_close(e.q, async_timer_handle(t)), 0);
  assert_int_equal(async_queue_close(e.q, async_timer_handle(t)), ASYNC_ECLOSED);
  async_event r = next_of(&e, ASYNC_EVENT_CLOSED);
  assert_int_equal(r.token, 7);
  assert_null(r.object);
  qenv_finish(&e);
}

static void test_future_records(void **state) {
  (void)state;
  struct qenv e;
  qenv_init(&e);
  async_future *ok = NULL, *bad = NULL, *done = NULL;
  assert_int_equal(async_future_new(&ok, e.loop), 0);
  assert_int_equal(async_future_new(&bad, e.loop), 0);
  assert_int_equal(async_future_new(&done, e.loop), 0);
  assert_int_equal(async_future_reject(done, ASYNC_ETIMEDOUT), 0);
  assert_int_equal(async_queue_watch(e.q, done, 3), 0);
  assert_int_equal(async_queue_watch(e.q, ok, 1), 0);
  assert_int_equal(async_queue_watch(e.q, bad, 2), 0);
  assert_int_equal(async_future_resolve(ok, NULL, NULL, NULL), 0);
  assert_int_equal(async_future_reject(bad, ASYNC_ECONNREFUSED), 0);
  // Nothing inside the calls: the records come from the loop, in order.
  async_event r[3];
  int got = 0;
  uint64_t t0 = tu_now_ns();
  while (got < 3) {
    int n = async_queue_poll(r + got, (size_t)(3 - got), e.q, 100);
    assert_true(n >= 0);
    got += n;
    assert_true(tu_elapsed_ms(t0) < 3000);
  }
  assert_int_equal(r[0].token, 3);
  assert_int_equal(r[0].result, ASYNC_ETIMEDOUT);
  assert_ptr_equal(r[0].object, done);
  assert_int_equal(r[1].token, 1);
  assert_int_equal(r[1].result, 0);
  assert_int_equal(r[2].token, 2);
  assert_int_equal(r[2].result, ASYNC_ECONNREFUSED);
  for (int i = 0; i < 3; ++i) assert_int_equal(r[i].kind, ASYNC_EVENT_FUTURE);
  async_future_free(ok);
  async_future_free(bad);
  async_future_free(done);
  qenv_finish(&e);
}

static void test_freed_future_gives_canceled(void **state) {
  (void)state;
  struct qenv e;
  qenv_init(&e);
  async_future *f = NULL;
  assert_int_equal(async_future_new(&f, e.loop), 0);
  assert_int_equal(async_queue_watch(e.q, f, 5), 0);
  assert_int_equal(async_future_free(f), 0);
  async_event r = next(&e);
  assert_int_equal(r.kind, ASYNC_EVENT_FUTURE);
  assert_int_equal(r.result, ASYNC_ECANCELED);
  qenv_finish(&e);
}

/* ---- streams ----------------------------------------------------------------- */

static async_stream *queue_stream(struct qenv *e, int fd, uint64_t token) {
  void *b = NULL;
  assert_int_equal(async_queue_bind(&b, e->q, token), 0);
  async_stream *s = NULL;
  assert_int_equal(async_stream_adopt(&s, e->loop, fd, async_queue_protocol(), b), 0);
  return s;
}

static void send_all(int fd, const char *text) {
  size_t len = strlen(text);
  assert_int_equal(send(fd, text, len, 0), (ssize_t)len);
}

static void test_stream_consume_and_flow_control(void **state) {
  (void)state;
  struct qenv e;
  qenv_init(&e);
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  async_stream *s = queue_stream(&e, sv[0], 11);
  async_event r = next(&e);
  assert_int_equal(r.kind, ASYNC_EVENT_CONNECTED);
  assert_int_equal(r.token, 11);
  assert_ptr_equal(r.object, s);
  assert_int_equal(async_stream_consume(s, 0), ASYNC_ESTATE);  // no DATA yet

  send_all(sv[1], "hello");
  r = next(&e);
  assert_int_equal(r.kind, ASYNC_EVENT_DATA);
  assert_int_equal(r.len, 5);
  assert_memory_equal(r.data, "hello", 5);
  // Unanswered, the stream reads nothing more: flow control.
  send_all(sv[1], "world");
  no_record(&e, 30);
  assert_int_equal(async_stream_is_reading(s), 0);
  // Two consumed: the rest comes back in front of the new bytes.
  assert_int_equal(async_stream_consume(s, 2), 0);
  assert_int_equal(async_stream_consume(s, 2), ASYNC_ESTATE);
  r = next(&e);
  assert_int_equal(r.kind, ASYNC_EVENT_DATA);
  assert_int_equal(r.len, 8);
  assert_memory_equal(r.data, "lloworld", 8);
  assert_int_equal(async_stream_consume(s, 100), 0);  // more counts as all

  // Writes go out as usual; the peer's end of file, then our close.
  assert_int_equal(async_stream_write(s, "ok", 2), 0);
  char buf[4];
  assert_int_equal(recv(sv[1], buf, sizeof buf, 0), 2);
  close(sv[1]);
  r = next(&e);
  assert_int_equal(r.kind, ASYNC_EVENT_EOF);
  assert_int_equal(async_stream_close(s), 0);
  r = next(&e);
  assert_int_equal(r.kind, ASYNC_EVENT_LOST);
  assert_int_equal(r.result, 0);
  assert_int_equal(r.token, 11);
  assert_ptr_equal(r.object, s);
  // The stream is still there (held until the next poll) but has ended.
  assert_int_equal(async_stream_consume(s, 0), ASYNC_ECLOSED);
  no_record(&e, 0);
  qenv_finish(&e);
}

static void test_unconsumed_rest_comes_before_eof(void **state) {
  (void)state;
  struct qenv e;
  qenv_init(&e);
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  async_stream *s = queue_stream(&e, sv[0], 12);
  assert_int_equal(next(&e).kind, ASYNC_EVENT_CONNECTED);
  send_all(sv[1], "abc");
  async_event r = next(&e);
  assert_int_equal(r.len, 3);
  close(sv[1]);
  assert_int_equal(async_stream_consume(s, 1), 0);
  r = next(&e);
  assert_int_equal(r.kind, ASYNC_EVENT_DATA);
  assert_int_equal(r.len, 2);
  assert_memory_equal(r.data, "bc", 2);
  r = next(&e);
  assert_int_equal(r.kind, ASYNC_EVENT_EOF);
  assert_int_equal(async_stream_close(s), 0);
  assert_int_equal(next(&e).kind, ASYNC_EVENT_LOST);
  qenv_finish(&e);
}

static void test_abort_with_data_pending_keeps_bytes(void **state) {
  (void)state;
  struct qenv e;
  qenv_init(&e);
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  async_stream *s = queue_stream(&e, sv[0], 13);
  send_all(sv[1], "bytes");
  // CONNECTED and DATA; then the stream is aborted before DATA is read.
  async_event r[CAP];
  int got = 0;
  uint64_t t0 = tu_now_ns();
  while (got < 2) {
    int n = async_queue_poll(r + got, 1, e.q, 100);
    got += n;
    assert_true(tu_elapsed_ms(t0) < 3000);
  }
  assert_int_equal(r[1].kind, ASYNC_EVENT_DATA);
  assert_int_equal(async_stream_abort(s), 0);
  int n = async_queue_poll(r + 2, 4, e.q, 3000);
  assert_int_equal(n, 1);
  assert_int_equal(r[2].kind, ASYNC_EVENT_LOST);
  // The DATA record's bytes and the stream stay valid until the next poll.
  assert_memory_equal(r[1].data, "bytes", 5);
  assert_int_equal(async_stream_is_reading(s), ASYNC_ECLOSED);
  close(sv[1]);
  no_record(&e, 0);
  qenv_finish(&e);
}

static void test_read_limit_ends_unconsumed_stream(void **state) {
  (void)state;
  struct qenv e;
  qenv_init(&e);
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  async_stream *s = queue_stream(&e, sv[0], 14);
  assert_int_equal(async_stream_set_read_limit(s, 8), 0);
  assert_int_equal(next(&e).kind, ASYNC_EVENT_CONNECTED);
  send_all(sv[1], "12345678");
  async_event r = next(&e);
  assert_int_equal(r.len, 8);
  send_all(sv[1], "9");
  assert_int_equal(async_stream_consume(s, 0), 0);  // none consumed: 9 bytes > 8
  r = next(&e);
  assert_int_equal(r.kind, ASYNC_EVENT_LOST);
  assert_int_equal(r.result, ASYNC_ENOBUFS);
  close(sv[1]);
  qenv_finish(&e);
}

static void test_writable_after_backpressure(void **state) {
  (void)state;
  struct qenv e;
  qenv_init(&e);
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  async_stream *s = queue_stream(&e, sv[0], 15);
  assert_int_equal(next(&e).kind, ASYNC_EVENT_CONNECTED);
  assert_int_equal(async_stream_set_write_limits(s, 1024, 0), 0);
  static uint8_t chunk[65536];
  size_t buffered = 0;
  for (int i = 0; i < 64 && buffered <= 1024; ++i) {
    assert_int_equal(async_stream_write(s, chunk, sizeof chunk), 0);
    assert_int_equal(async_stream_write_buffer_size(&buffered, s), 0);
  }
  assert_true(buffered > 1024);  // above the high-water mark: the caller waits for WRITABLE
  no_record(&e, 0);              // pause_writing is not a record
  // The peer reads everything: the buffer drains, WRITABLE follows.
  uint64_t t0 = tu_now_ns();
  for (;;) {
    uint8_t buf[65536];
    while (recv(sv[1], buf, sizeof buf, MSG_DONTWAIT) > 0) {
    }
    int n = async_queue_poll(e.ev, 1, e.q, 10);
    if (n == 1) {
      assert_int_equal(e.ev[0].kind, ASYNC_EVENT_WRITABLE);
      assert_int_equal(e.ev[0].token, 15);
      break;
    }
    assert_true(tu_elapsed_ms(t0) < 5000);
  }
  assert_int_equal(async_stream_abort(s), 0);
  assert_int_equal(next_of(&e, ASYNC_EVENT_LOST).token, 15);
  close(sv[1]);
  qenv_finish(&e);
}

static void test_set_protocol_away_ends_binding(void **state) {
  (void)state;
  struct qenv e;
  qenv_init(&e);
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  async_stream *s = queue_stream(&e, sv[0], 16);
  assert_int_equal(next(&e).kind, ASYNC_EVENT_CONNECTED);
  // Another protocol takes over: the binding's final record comes, the
  // stream lives on with its new protocol.
  assert_int_equal(async_stream_set_protocol(s, &tu_echo_protocol, NULL), 0);
  async_event r = next(&e);
  assert_int_equal(r.kind, ASYNC_EVENT_LOST);
  assert_int_equal(r.token, 16);
  assert_int_equal(r.result, ASYNC_ECANCELED);
  send_all(sv[1], "echo");
  char buf[8];
  int got = 0;
  uint64_t t0 = tu_now_ns();
  while (got < 4) {
    async_loop_run(e.loop, ASYNC_RUN_NOWAIT);
    ssize_t n = recv(sv[1], buf + got, sizeof buf - (size_t)got, MSG_DONTWAIT);
    if (n > 0) got += (int)n;
    assert_true(tu_elapsed_ms(t0) < 3000);
  }
  assert_memory_equal(buf, "echo", 4);
  assert_int_equal(async_stream_consume(s, 1), ASYNC_EINVAL);  // not in queue mode any more
  assert_int_equal(async_stream_abort(s), 0);
  async_loop_run(e.loop, ASYNC_RUN_NOWAIT);
  close(sv[1]);
  no_record(&e, 0);
  qenv_finish(&e);
}

static void test_unpolled_final_record_keeps_queue(void **state) {
  (void)state;
  struct qenv e;
  qenv_init(&e);
  void *b = NULL;
  assert_int_equal(async_queue_bind(&b, e.q, 17), 0);
  async_timer *t = tu_timer_new(e.loop, b);
  assert_int_equal(async_queue_timer_start(e.q, t, 1000, 0), 0);
  assert_int_equal(async_queue_close(e.q, async_timer_handle(t)), 0);
  // The loop run by hand produces the record; it waits in the queue.
  assert_int_equal(async_loop_run(e.loop, ASYNC_RUN_NOWAIT), 0);
  assert_int_equal(async_queue_free(e.q), ASYNC_EBUSY);
  async_event r = next(&e);
  assert_int_equal(r.kind, ASYNC_EVENT_CLOSED);
  assert_int_equal(r.token, 17);
  qenv_finish(&e);
}

/* ---- servers and connects ---------------------------------------------------------- */

static void test_server_accepts_by_token(void **state) {
  (void)state;
  struct qenv e;
  qenv_init(&e);
  void *sb = NULL;
  assert_int_equal(async_queue_bind(&sb, e.q, 100), 0);
  async_server *srv = NULL;
  assert_int_equal(async_tcp_listen(&srv, e.loop, "127.0.0.1", 0, 0, 0, async_queue_factory(), sb), 0);
  int port = async_server_port(srv);
  assert_true(port > 0);
  int c = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof a), 0);
  send_all(c, "ping");
  async_event r = next(&e);
  assert_int_equal(r.kind, ASYNC_EVENT_ACCEPT);
  assert_int_equal(r.token, 100);
  async_stream *s = r.object;
  // Not bound yet: nothing is read.
  no_record(&e, 30);
  assert_int_equal(async_queue_accept(s, 101), 0);
  assert_int_equal(async_queue_accept(s, 102), ASYNC_EINVAL);
  r = next(&e);
  assert_int_equal(r.kind, ASYNC_EVENT_DATA);
  assert_int_equal(r.token, 101);
  assert_memory_equal(r.data, "ping", 4);
  assert_int_equal(async_stream_write(s, r.data, r.len), 0);  // echo from the record
  assert_int_equal(async_stream_consume(s, r.len), 0);
  char buf[8];
  assert_int_equal(recv(c, buf, sizeof buf, 0), 4);
  // A second connection the caller refuses by closing it before accept.
  int c2 = socket(AF_INET, SOCK_STREAM, 0);
  assert_int_equal(connect(c2, (struct sockaddr *)&a, sizeof a), 0);
  r = next(&e);
  assert_int_equal(r.kind, ASYNC_EVENT_ACCEPT);
  assert_int_equal(async_stream_close(r.object), 0);
  r = next(&e);
  assert_int_equal(r.kind, ASYNC_EVENT_LOST);
  assert_int_equal(r.token, 100);
  close(c);
  r = next_of(&e, ASYNC_EVENT_EOF);
  assert_int_equal(r.token, 101);
  assert_int_equal(async_stream_close(s), 0);
  r = next(&e);
  assert_int_equal(r.kind, ASYNC_EVENT_LOST);
  assert_int_equal(r.token, 101);
  assert_int_equal(async_queue_close(e.q, async_server_handle(srv)), 0);
  r = next(&e);
  assert_int_equal(r.kind, ASYNC_EVENT_CLOSED);
  assert_int_equal(r.token, 100);
  close(c2);
  qenv_finish(&e);
}

static void test_connect_through_queue(void **state) {
  (void)state;
  struct qenv e;
  qenv_init(&e);
  async_server *srv = tu_echo_server(e.loop, "127.0.0.1", 0);
  void *b = NULL;
  assert_int_equal(async_queue_bind(&b, e.q, 21), 0);
  async_future *f = NULL;
  assert_int_equal(async_tcp_connect(&f, e.loop, "127.0.0.1", (uint16_t)async_server_port(srv), NULL,
                                     async_queue_protocol(), b),
                   0);
  assert_int_equal(async_queue_watch(e.q, f, 20), 0);
  async_event r = next(&e);
  assert_int_equal(r.kind, ASYNC_EVENT_CONNECTED);  // connection_made comes before the future
  assert_int_equal(r.token, 21);
  async_stream *s = r.object;
  r = next(&e);
  assert_int_equal(r.kind, ASYNC_EVENT_FUTURE);
  assert_int_equal(r.token, 20);
  assert_int_equal(r.result, 0);
  assert_int_equal(async_stream_write(s, "echo", 4), 0);
  r = next(&e);
  assert_int_equal(r.kind, ASYNC_EVENT_DATA);
  assert_memory_equal(r.data, "echo", 4);
  assert_int_equal(async_stream_consume(s, 4), 0);
  assert_int_equal(async_stream_abort(s), 0);
  r = next(&e);
  assert_int_equal(r.kind, ASYNC_EVENT_LOST);
  async_future_free(f);

  // A refused connect: the binding ends with ECANCELED, the future fails.
  int port = async_server_port(srv);
  tu_server_close(e.loop, srv);
  assert_int_equal(async_queue_bind(&b, e.q, 31), 0);
  assert_int_equal(async_tcp_connect(&f, e.loop, "127.0.0.1", (uint16_t)port, NULL, async_queue_protocol(), b), 0);
  assert_int_equal(async_queue_watch(e.q, f, 30), 0);
  int seen = 0;
  for (int i = 0; i < 2; ++i) {
    r = next(&e);
    if (r.kind == ASYNC_EVENT_LOST) {
      assert_int_equal(r.token, 31);
      assert_int_equal(r.result, ASYNC_ECANCELED);
      seen |= 1;
    } else {
      assert_int_equal(r.kind, ASYNC_EVENT_FUTURE);
      assert_int_equal(r.result, ASYNC_ECONNREFUSED);
      seen |= 2;
    }
  }
  assert_int_equal(seen, 3);
  async_future_free(f);
  no_record(&e, 0);
  qenv_finish(&e);
}

/* ---- bad input ------------------------------------------------------------------ */

static void poll_inside(async_loop *loop, void *ud) {
  (void)loop;
  async_event ev[1];
  *(int *)((void **)ud)[1] = async_queue_poll(ev, 1, ((void **)ud)[0], 0);
}

static void test_bad_input(void **state) {
  (void)state;
  struct qenv e;
  qenv_init(&e);
  async_event ev[1];
  async_queue *none = NULL;
  assert_int_equal(async_queue_new(NULL, e.loop), ASYNC_EINVAL);
  assert_int_equal(async_queue_new(&none, NULL), ASYNC_EINVAL);
  assert_int_equal(async_queue_new(&none, (async_loop *)e.q), ASYNC_EINVAL);
  assert_int_equal(async_queue_poll(NULL, 1, e.q, 0), ASYNC_EINVAL);
  assert_int_equal(async_queue_poll(ev, 0, e.q, 0), ASYNC_EINVAL);
  assert_int_equal(async_queue_poll(ev, 1, NULL, 0), ASYNC_EINVAL);
  assert_int_equal(async_queue_poll(ev, 1, (async_queue *)e.loop, 0), ASYNC_EINVAL);
  assert_int_equal(async_queue_post(NULL, 1), ASYNC_EINVAL);
  assert_int_equal(async_queue_post((async_queue *)e.loop, 1), ASYNC_EINVAL);
  assert_int_equal(async_queue_free(NULL), ASYNC_EINVAL);
  assert_int_equal(async_queue_watch(e.q, NULL, 1), ASYNC_EINVAL);
  assert_int_equal(async_queue_bind(NULL, e.q, 1), ASYNC_EINVAL);
  int x = 0;
  assert_int_equal(async_queue_unbind(e.q, &x), ASYNC_EINVAL);
  assert_int_equal(async_queue_unbind(e.q, NULL), ASYNC_EINVAL);
  assert_int_equal(async_queue_accept(NULL, 1), ASYNC_EINVAL);
  assert_int_equal(async_stream_consume(NULL, 1), ASYNC_EINVAL);
  assert_int_equal(async_queue_close(e.q, NULL), ASYNC_EINVAL);
  assert_non_null(async_queue_protocol());
  assert_non_null(async_queue_factory());

  // A future of another loop.
  async_loop *other = tu_loop_new();
  async_future *f = NULL;
  assert_int_equal(async_future_new(&f, other), 0);
  assert_int_equal(async_queue_watch(e.q, f, 1), ASYNC_EINVAL);
  async_future_free(f);
  async_loop_run(other, ASYNC_RUN_NOWAIT);
  assert_int_equal(async_loop_free(other), 0);

  // A timer whose userdata is not a binding of the queue.
  async_timer *t = tu_timer_new(e.loop, &x);
  assert_int_equal(async_queue_timer_start(e.q, t, 1, 0), ASYNC_EINVAL);
  assert_int_equal(async_queue_close(e.q, async_timer_handle(t)), ASYNC_EINVAL);
  tu_close(async_timer_handle(t));

  // A stream not in queue mode.
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  async_stream *s = NULL;
  assert_int_equal(async_stream_adopt(&s, e.loop, sv[0], &tu_echo_protocol, NULL), 0);
  assert_int_equal(async_stream_consume(s, 1), ASYNC_EINVAL);
  assert_int_equal(async_queue_accept(s, 1), ASYNC_EINVAL);
  assert_int_equal(async_stream_abort(s), 0);
  close(sv[1]);

  // A binding: the queue cannot be freed while it lives; unbind frees it.
  void *b = NULL;
  assert_int_equal(async_queue_bind(&b, e.q, 1), 0);
  assert_int_equal(async_queue_free(e.q), ASYNC_EBUSY);
  assert_int_equal(async_queue_unbind(e.q, b), 0);
  assert_int_equal(async_queue_unbind(e.q, b), ASYNC_EINVAL);
  // A binding in use by a timer is not the caller's to unbind.
  assert_int_equal(async_queue_bind(&b, e.q, 2), 0);
  t = tu_timer_new(e.loop, b);
  assert_int_equal(async_queue_timer_start(e.q, t, 1000, 0), 0);
  assert_int_equal(async_queue_unbind(e.q, b), ASYNC_EBUSY);
  assert_int_equal(async_queue_close(e.q, async_timer_handle(t)), 0);
  assert_int_equal(next(&e).kind, ASYNC_EVENT_CLOSED);

  // A poll from inside the loop's own callback is refused.
  int rc = 1;
  void *args[2] = {e.q, &rc};
  assert_int_equal(async_loop_call_soon(e.loop, poll_inside, args), 0);
  assert_int_equal(async_loop_run(e.loop, ASYNC_RUN_NOWAIT), 0);
  assert_int_equal(rc, ASYNC_EBUSY);
  // The loop cannot be freed before the queue.
  assert_int_equal(async_loop_free(e.loop), ASYNC_EBUSY);
  qenv_finish(&e);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_posts_in_order_and_batches),
      cmocka_unit_test(test_poll_timeout_waits),
      cmocka_unit_test(test_posts_from_threads),
      cmocka_unit_test(test_endless_poll_woken_by_post),
      cmocka_unit_test(test_timer_records_then_closed),
      cmocka_unit_test(test_future_records),
      cmocka_unit_test(test_freed_future_gives_canceled),
      cmocka_unit_test(test_stream_consume_and_flow_control),
      cmocka_unit_test(test_unconsumed_rest_comes_before_eof),
      cmocka_unit_test(test_abort_with_data_pending_keeps_bytes),
      cmocka_unit_test(test_read_limit_ends_unconsumed_stream),
      cmocka_unit_test(test_writable_after_backpressure),
      cmocka_unit_test(test_set_protocol_away_ends_binding),
      cmocka_unit_test(test_unpolled_final_record_keeps_queue),
      cmocka_unit_test(test_server_accepts_by_token),
      cmocka_unit_test(test_connect_through_queue),
      cmocka_unit_test(test_bad_input),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
