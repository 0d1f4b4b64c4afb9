/*
 * async_reader (async/reader.h): read_exactly / read_until / read_line /
 * read_some futures over a stream, limits, end of file, errors, one read at
 * a time, cancellation, freeing, flow control, and use with a connect.
 */
#include "test_util.h"

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct fx {
  async_loop *loop;
  async_reader *reader;
  async_stream *stream;
  int peer;
};

/* A reader on one end of a socketpair, created with protocol (its
 * connection_made still to come); the test writes on the other. */
static void fx_open(struct fx *f, size_t limit, const async_stream_protocol *protocol) {
  f->loop = tu_loop_new();
  assert_int_equal(async_reader_new(&f->reader, f->loop, limit), 0);
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  assert_int_equal(async_stream_adopt(&f->stream, f->loop, sv[0], protocol, f->reader), 0);
  f->peer = sv[1];
}

static void fx_init(struct fx *f, size_t limit) {
  fx_open(f, limit, async_reader_protocol());
  async_loop_run(f->loop, ASYNC_RUN_NOWAIT); /* connection_made */
}

static void fx_finish(struct fx *f) {
  if (f->reader) assert_int_equal(async_reader_free(f->reader), 0);
  if (f->stream) assert_int_equal(async_stream_close(f->stream), 0);
  if (f->peer >= 0) close(f->peer);
  uint64_t t0 = tu_now_ns();
  while (async_loop_run(f->loop, ASYNC_RUN_NOWAIT) > 0) assert_true(tu_elapsed_ms(t0) < 3000.0);
  tu_finish(f->loop);
}

static void send_str(int fd, const char *s) { assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s)); }

/* Runs the loop until f completes; returns its status. */
static int wait_for(struct fx *fx, async_future *f) {
  uint64_t t0 = tu_now_ns();
  while (async_future_get_state(f) == ASYNC_FUTURE_PENDING) {
    async_loop_run(fx->loop, ASYNC_RUN_NOWAIT);
    assert_true(tu_elapsed_ms(t0) < 3000.0);
  }
  return async_future_result(NULL, f);
}

/* The future's bytes equal want; frees the future. */
static void expect_bytes(struct fx *fx, async_future *f, const char *want) {
  assert_int_equal(wait_for(fx, f), 0);
  void *v = NULL;
  assert_int_equal(async_future_result(&v, f), 0);
  assert_int_equal(async_bytes_size(v), strlen(want));
  assert_memory_equal(async_bytes_data(v), want, strlen(want));
  assert_int_equal(async_future_free(f), 0);
}

static void expect_error(struct fx *fx, async_future *f, int error) {
  assert_int_equal(wait_for(fx, f), error);
  assert_int_equal(async_future_free(f), 0);
}

static void test_read_exactly(void **state) {
  (void)state;
  struct fx fx;
  fx_init(&fx, 0);
  async_future *f = NULL;
  assert_int_equal(async_reader_read_exactly(&f, fx.reader, 5), 0);
  assert_int_equal(async_future_get_state(f), ASYNC_FUTURE_PENDING);
  send_str(fx.peer, "hel");
  async_loop_run(fx.loop, ASYNC_RUN_NOWAIT);
  assert_int_equal(async_future_get_state(f), ASYNC_FUTURE_PENDING); /* 3 of 5 */
  send_str(fx.peer, "lo world");
  expect_bytes(&fx, f, "hello");
  /* Already buffered: done before the call returns. */
  assert_int_equal(async_reader_read_exactly(&f, fx.reader, 6), 0);
  assert_int_equal(async_future_get_state(f), ASYNC_FUTURE_DONE);
  expect_bytes(&fx, f, " world");
  fx_finish(&fx);
}

static void test_read_line_across_chunks(void **state) {
  (void)state;
  struct fx fx;
  fx_init(&fx, 0);
  async_future *f = NULL;
  assert_int_equal(async_reader_read_line(&f, fx.reader, 0), 0);
  send_str(fx.peer, "ab");
  async_loop_run(fx.loop, ASYNC_RUN_NOWAIT);
  assert_int_equal(async_future_get_state(f), ASYNC_FUTURE_PENDING);
  send_str(fx.peer, "c\nd");
  expect_bytes(&fx, f, "abc\n");
  assert_int_equal(async_reader_read_some(&f, fx.reader, 100), 0);
  expect_bytes(&fx, f, "d");
  /* A multi-byte delimiter. */
  assert_int_equal(async_reader_read_until(&f, fx.reader, "\r\n\r\n", 4, 0), 0);
  send_str(fx.peer, "GET / HTTP/1.1\r\nHost: x\r\n\r\nrest");
  expect_bytes(&fx, f, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_int_equal(async_reader_read_some(&f, fx.reader, 2), 0);
  expect_bytes(&fx, f, "re"); /* at most max */
  fx_finish(&fx);
}

/* No delimiter within the limit: ASYNC_ENOBUFS, the bytes stay. */
static void test_read_until_limit(void **state) {
  (void)state;
  struct fx fx;
  fx_init(&fx, 16);
  async_future *f = NULL;
  assert_int_equal(async_reader_read_line(&f, fx.reader, 8), 0);
  send_str(fx.peer, "0123456789");
  expect_error(&fx, f, ASYNC_ENOBUFS);
  assert_int_equal(async_reader_read_exactly(&f, fx.reader, 10), 0);
  expect_bytes(&fx, f, "0123456789");
  fx_finish(&fx);
}

static void test_eof(void **state) {
  (void)state;
  struct fx fx;
  fx_init(&fx, 0);
  send_str(fx.peer, "abc");
  assert_int_equal(shutdown(fx.peer, SHUT_WR), 0);
  async_future *f = NULL;
  assert_int_equal(async_reader_read_exactly(&f, fx.reader, 5), 0);
  expect_error(&fx, f, ASYNC_EEOF); /* only 3 bytes ever come */
  assert_int_equal(async_reader_read_line(&f, fx.reader, 0), 0);
  expect_error(&fx, f, ASYNC_EEOF);
  assert_int_equal(async_reader_read_some(&f, fx.reader, 100), 0);
  expect_bytes(&fx, f, "abc");
  assert_int_equal(async_reader_read_some(&f, fx.reader, 100), 0);
  expect_bytes(&fx, f, ""); /* end of file: 0 bytes */
  /* Still writable after the peer's EOF. */
  assert_int_equal(async_stream_write(fx.stream, "bye", 3), 0);
  char buf[8];
  assert_int_equal(read(fx.peer, buf, sizeof buf), 3);
  fx_finish(&fx);
}

/* Lost with an error (the peer closed with our bytes unread: a reset):
 * the pending read fails with it. */
static void test_lost_with_error(void **state) {
  (void)state;
  struct fx fx;
  fx_init(&fx, 0);
  async_future *f = NULL;
  assert_int_equal(async_reader_read_exactly(&f, fx.reader, 4), 0);
  assert_int_equal(async_stream_write(fx.stream, "unread", 6), 0);
  close(fx.peer);
  fx.peer = -1;
  expect_error(&fx, f, ASYNC_ECONNRESET);
  fx.stream = NULL; /* lost */
  fx_finish(&fx);
}

/* Aborted on our side: the read sees the end of the stream. */
static void test_abort_ends_reads(void **state) {
  (void)state;
  struct fx fx;
  fx_init(&fx, 0);
  async_future *f = NULL;
  assert_int_equal(async_reader_read_exactly(&f, fx.reader, 4), 0);
  assert_int_equal(async_stream_abort(fx.stream), 0);
  fx.stream = NULL;
  expect_error(&fx, f, ASYNC_EEOF);
  fx_finish(&fx);
}

static void test_one_read_at_a_time(void **state) {
  (void)state;
  struct fx fx;
  fx_init(&fx, 0);
  async_future *f = NULL, *g = NULL;
  assert_int_equal(async_reader_read_exactly(&f, fx.reader, 4), 0);
  assert_int_equal(async_reader_read_some(&g, fx.reader, 4), ASYNC_ESTATE);
  /* Cancelling frees the slot; the bytes that came meanwhile stay. */
  send_str(fx.peer, "xy");
  async_loop_run(fx.loop, ASYNC_RUN_NOWAIT);
  assert_int_equal(async_future_cancel(f), 1);
  assert_int_equal(async_future_free(f), 0);
  assert_int_equal(async_reader_read_some(&g, fx.reader, 4), 0);
  expect_bytes(&fx, g, "xy");
  fx_finish(&fx);
}

/* Freeing the reader cancels its read; the stream keeps going. */
static void test_free_with_pending_read(void **state) {
  (void)state;
  struct fx fx;
  fx_init(&fx, 0);
  async_future *f = NULL;
  assert_int_equal(async_reader_read_line(&f, fx.reader, 0), 0);
  assert_int_equal(async_reader_free(fx.reader), 0);
  fx.reader = NULL;
  assert_int_equal(async_future_get_state(f), ASYNC_FUTURE_CANCELLED);
  send_str(fx.peer, "dropped\n");
  async_loop_run(fx.loop, ASYNC_RUN_NOWAIT);
  assert_int_equal(async_future_free(f), 0);
  fx_finish(&fx);
}

/* Over the limit, the stream stops reading; a read that takes the bytes
 * restarts it. */
static void test_flow_control(void **state) {
  (void)state;
  struct fx fx;
  fx_init(&fx, 16);
  static char big[32 * 1024];
  memset(big, 'z', sizeof big);
  assert_int_equal(write(fx.peer, big, sizeof big), (ssize_t)sizeof big);
  for (int i = 0; i < 5; i++) async_loop_run(fx.loop, ASYNC_RUN_NOWAIT);
  assert_int_equal(async_stream_is_reading(fx.stream), 0);
  size_t got = 0;
  while (got < sizeof big) {
    async_future *f = NULL;
    assert_int_equal(async_reader_read_some(&f, fx.reader, 4096), 0);
    assert_int_equal(wait_for(&fx, f), 0);
    void *v = NULL;
    assert_int_equal(async_future_result(&v, f), 0);
    got += async_bytes_size(v);
    assert_int_equal(async_future_free(f), 0);
  }
  assert_int_equal(got, sizeof big);
  assert_int_equal(async_stream_is_reading(fx.stream), 1);
  fx_finish(&fx);
}

/* The reader as the protocol of a connect, against an echo server. */
static void test_with_connect(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_server *server = tu_echo_server(loop, "127.0.0.1", 0);
  async_reader *reader = NULL;
  assert_int_equal(async_reader_new(&reader, loop, 0), 0);
  async_future *c = NULL;
  assert_int_equal(async_tcp_connect(&c, loop, "127.0.0.1", (uint16_t)async_server_port(server), NULL,
                                     async_reader_protocol(), reader),
                   0);
  assert_int_equal(async_loop_run_until(loop, c), 0);
  void *stream = NULL;
  assert_int_equal(async_future_result(&stream, c), 0);
  assert_int_equal(async_stream_write(stream, "ping\npong\n", 10), 0);
  async_future *f = NULL;
  assert_int_equal(async_reader_read_line(&f, reader, 0), 0);
  assert_int_equal(async_loop_run_until(loop, f), 0);
  void *v = NULL;
  assert_int_equal(async_future_result(&v, f), 0);
  assert_int_equal(async_bytes_size(v), 5);
  assert_memory_equal(async_bytes_data(v), "ping\n", 5);
  assert_int_equal(async_future_free(f), 0);
  assert_int_equal(async_stream_close(stream), 0);
  assert_int_equal(async_future_free(c), 0);
  assert_int_equal(async_reader_free(reader), 0);
  assert_int_equal(async_server_close_connections(server, 0), 0);
  assert_int_equal(async_handle_close(async_server_handle(server), NULL), 0);
  tu_finish(loop);
}

/* ---- the reader's lifetime: freed at any point, one release per stream -- */

static int g_frees;

static void free_reader(void *reader) {
  assert_int_equal(async_reader_free(reader), 0);
  g_frees++;
}

/* The reader's callbacks, each freeing the reader first (a user's protocol
 * wrapping the reader's, as hostile as it gets), then passing on. */
static void free_then_made(async_stream *s, void *r) {
  free_reader(r);
  async_reader_protocol()->connection_made(s, r);
}

static size_t free_then_data(async_stream *s, const uint8_t *d, size_t n, void *r) {
  free_reader(r);
  return async_reader_protocol()->data_received(s, d, n, r);
}

static int free_then_eof(async_stream *s, void *r) {
  free_reader(r);
  return async_reader_protocol()->eof_received(s, r);
}

static void free_then_lost(async_stream *s, int error, void *r) {
  free_reader(r);
  async_reader_protocol()->connection_lost(s, error, r);
}

static void free_in_done(async_future *f, int status, void *r) {
  (void)f;
  assert_int_equal(status, 0);
  free_reader(r);
}

enum free_point { FREE_BEFORE_MADE, FREE_IN_MADE, FREE_IN_DATA, FREE_IN_EOF, FREE_IN_LOST, FREE_IN_DONE,
                  FREE_AFTER_LOST };

/* One stream's life (made, a line, the peer's EOF, close) with the reader
 * freed at point: freed once, no use after free, nothing leaked (ASan and
 * valgrind check the last two). */
static void run_free_at(enum free_point point) {
  async_stream_protocol p = *async_reader_protocol();
  if (point == FREE_IN_MADE) p.connection_made = free_then_made;
  if (point == FREE_IN_DATA) p.data_received = free_then_data;
  if (point == FREE_IN_EOF) p.eof_received = free_then_eof;
  if (point == FREE_IN_LOST) p.connection_lost = free_then_lost;
  g_frees = 0;
  struct fx fx;
  fx_open(&fx, 0, &p);
  if (point == FREE_BEFORE_MADE) free_reader(fx.reader);
  async_future *f = NULL;
  if (point == FREE_IN_DONE) {
    assert_int_equal(async_reader_read_line(&f, fx.reader, 0), 0);
    assert_int_equal(async_future_add_callback(f, free_in_done, fx.reader), 0);
  }
  async_loop_run(fx.loop, ASYNC_RUN_NOWAIT); /* connection_made */
  send_str(fx.peer, "line\n");
  assert_int_equal(shutdown(fx.peer, SHUT_WR), 0);
  for (int i = 0; i < 5; i++) async_loop_run(fx.loop, ASYNC_RUN_NOWAIT);
  assert_int_equal(async_stream_close(fx.stream), 0);
  fx.stream = NULL;
  for (int i = 0; i < 5; i++) async_loop_run(fx.loop, ASYNC_RUN_NOWAIT);
  if (point == FREE_AFTER_LOST) free_reader(fx.reader);
  assert_int_equal(g_frees, 1);
  if (f) expect_bytes(&fx, f, "line\n");
  fx.reader = NULL;
  fx_finish(&fx);
}

/* The reported case: async_reader_free() before connection_made ran. */
static void test_free_before_made(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_reader *r = NULL;
  assert_int_equal(async_reader_new(&r, loop, 0), 0);
  int sp[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
  async_stream *s = NULL;
  assert_int_equal(async_stream_adopt(&s, loop, sp[0], async_reader_protocol(), r), 0);
  assert_int_equal(async_reader_free(r), 0);
  for (int i = 0; i < 3; i++) async_loop_run(loop, ASYNC_RUN_NOWAIT); /* connection_made */
  assert_int_equal(write(sp[1], "dropped", 7), 7);
  for (int i = 0; i < 3; i++) async_loop_run(loop, ASYNC_RUN_NOWAIT);
  assert_int_equal(async_stream_close(s), 0);
  close(sp[1]);
  tu_finish(loop);
}

static void test_free_at_every_point(void **state) {
  (void)state;
  for (int point = FREE_BEFORE_MADE; point <= FREE_AFTER_LOST; point++) run_free_at((enum free_point)point);
}

/* A loop outlives its readers: freeing it with one left is ASYNC_EBUSY. */
static void test_loop_busy_with_reader(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_reader *r = NULL;
  assert_int_equal(async_reader_new(&r, loop, 0), 0);
  assert_int_equal(async_loop_free(loop), ASYNC_EBUSY);
  assert_int_equal(async_reader_free(r), 0);
  tu_finish(loop);
}

/* Freed while its stream is paused (buffer over the limit): the stream
 * reads again (the bytes are dropped), so the peer is not stuck. */
static void test_free_while_paused(void **state) {
  (void)state;
  struct fx fx;
  fx_init(&fx, 16);
  static char big[32 * 1024];
  memset(big, 'z', sizeof big);
  assert_int_equal(write(fx.peer, big, sizeof big), (ssize_t)sizeof big);
  for (int i = 0; i < 5; i++) async_loop_run(fx.loop, ASYNC_RUN_NOWAIT);
  assert_int_equal(async_stream_is_reading(fx.stream), 0);
  assert_int_equal(async_reader_free(fx.reader), 0);
  fx.reader = NULL;
  assert_int_equal(async_stream_is_reading(fx.stream), 1);
  fx_finish(&fx);
}

/* ---- one stream per reader ------------------------------------------------ */

static int g_factory_calls;
static char g_error_log[256];

static void keep_error_log(async_loop *loop, int level, const char *message, void *ud) {
  (void)loop;
  (void)ud;
  if (level == ASYNC_LOG_ERROR) snprintf(g_error_log, sizeof g_error_log, "%s", message);
}

static int bound_reader_factory(const async_stream_protocol **p, void **ud, async_server *s, void *reader) {
  (void)s;
  g_factory_calls++;
  *p = async_reader_protocol();
  *ud = reader;
  return 0;
}

/* A reader bound to a stream is refused (ASYNC_EBUSY) by every other path
 * that binds a protocol's userdata; the first stream goes on unharmed. */
static void test_one_stream_per_reader(void **state) {
  (void)state;
  struct fx fx;
  fx_init(&fx, 0);
  int sp[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
  async_stream *other = NULL;
  assert_int_equal(async_stream_adopt(&other, fx.loop, sp[0], async_reader_protocol(), fx.reader), ASYNC_EBUSY);
  assert_null(other);
  /* The fd stayed ours: adopt it with another protocol. */
  assert_int_equal(async_stream_adopt(&other, fx.loop, sp[0], &tu_echo_protocol, NULL), 0);
  assert_int_equal(async_stream_set_protocol(other, async_reader_protocol(), fx.reader), ASYNC_EBUSY);
  assert_int_equal(async_stream_set_protocol(fx.stream, async_reader_protocol(), fx.reader), ASYNC_EBUSY);
  async_future *c = NULL;
  assert_int_equal(async_tcp_connect(&c, fx.loop, "127.0.0.1", 1, NULL, async_reader_protocol(), fx.reader),
                   ASYNC_EBUSY);
  assert_int_equal(async_unix_connect(&c, fx.loop, "@libasync-test-reader", async_reader_protocol(), fx.reader),
                   ASYNC_EBUSY);
  async_reconnector *rc = NULL;
  assert_int_equal(async_reconnector_start(&rc, fx.loop, "127.0.0.1", 1, NULL, async_reader_protocol(), fx.reader),
                   ASYNC_EBUSY);
  assert_null(c);
  assert_null(rc);
  /* A server whose factory hands out the bound reader: the connection is
   * dropped, the reader left to its stream. */
  async_server *server = NULL;
  assert_int_equal(async_tcp_listen(&server, fx.loop, "127.0.0.1", 0, 0, 0, bound_reader_factory, fx.reader), 0);
  g_factory_calls = 0;
  g_error_log[0] = '\0';
  assert_int_equal(async_loop_set_log(fx.loop, keep_error_log, NULL, NULL), 0);
  async_future *client = NULL;
  assert_int_equal(async_tcp_connect(&client, fx.loop, "127.0.0.1", (uint16_t)async_server_port(server), NULL,
                                     &tu_echo_protocol, NULL),
                   0);
  assert_int_equal(async_loop_run_until(fx.loop, client), 0);
  tu_run_until(fx.loop, &g_factory_calls, 1, 3000);
  /* The log says why, in the error's words. */
  assert_non_null(strstr(g_error_log, async_strerror(ASYNC_EBUSY)));
  /* The first stream still reads. */
  async_future *f = NULL;
  assert_int_equal(async_reader_read_line(&f, fx.reader, 0), 0);
  send_str(fx.peer, "still mine\n");
  expect_bytes(&fx, f, "still mine\n");
  /* The echo stream still echoes (it never became the reader's). */
  assert_int_equal(write(sp[1], "e", 1), 1);
  char echo = 0;
  for (int i = 0; i < 5; i++) async_loop_run(fx.loop, ASYNC_RUN_NOWAIT);
  assert_int_equal(read(sp[1], &echo, 1), 1);
  assert_int_equal(echo, 'e');
  void *client_stream = NULL;
  assert_int_equal(async_future_result(&client_stream, client), 0);
  /* The server dropped it: ended by now (ECLOSED) or about to (closing). */
  int closed = async_stream_close(client_stream);
  assert_true(closed == 0 || closed == ASYNC_ECLOSED);
  assert_int_equal(async_future_free(client), 0);
  assert_int_equal(async_stream_close(other), 0);
  close(sp[1]);
  tu_server_close(fx.loop, server);
  fx_finish(&fx);
}

/* A userdata that is not a reader with the reader's protocol: refused. */
static void test_reader_protocol_needs_reader(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int sp[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
  async_stream *s = NULL;
  assert_int_equal(async_stream_adopt(&s, loop, sp[0], async_reader_protocol(), NULL), ASYNC_EINVAL);
  assert_int_equal(async_stream_adopt(&s, loop, sp[0], async_reader_protocol(), loop), ASYNC_EINVAL);
  tu_close_pair(sp);
  tu_finish(loop);
}

/* Once its stream released it, a reader may serve a new one, afresh. */
static void test_rebind_after_release(void **state) {
  (void)state;
  struct fx fx;
  fx_init(&fx, 0);
  send_str(fx.peer, "old");
  close(fx.peer);
  async_future *f = NULL;
  assert_int_equal(async_reader_read_line(&f, fx.reader, 0), 0);
  expect_error(&fx, f, ASYNC_EEOF); /* the stream ended */
  int sp[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
  assert_int_equal(async_stream_close(fx.stream), 0);
  for (int i = 0; i < 3; i++) async_loop_run(fx.loop, ASYNC_RUN_NOWAIT); /* lost, released */
  assert_int_equal(async_stream_adopt(&fx.stream, fx.loop, sp[0], async_reader_protocol(), fx.reader), 0);
  fx.peer = sp[1];
  assert_int_equal(async_reader_read_line(&f, fx.reader, 0), 0);
  send_str(fx.peer, "new\n");
  expect_bytes(&fx, f, "new\n"); /* the old stream's bytes are gone */
  fx_finish(&fx);
}

/* The stream handed to another protocol releases the reader: reads end as
 * at end of file, and the reader no longer touches that stream. */
static void test_set_protocol_away(void **state) {
  (void)state;
  struct fx fx;
  fx_init(&fx, 0);
  async_future *f = NULL;
  assert_int_equal(async_reader_read_exactly(&f, fx.reader, 4), 0);
  assert_int_equal(async_stream_set_protocol(fx.stream, &tu_echo_protocol, NULL), 0);
  expect_error(&fx, f, ASYNC_EEOF);
  assert_int_equal(async_stream_close(fx.stream), 0);
  fx.stream = NULL;
  for (int i = 0; i < 3; i++) async_loop_run(fx.loop, ASYNC_RUN_NOWAIT); /* the stream is gone */
  assert_int_equal(async_reader_read_some(&f, fx.reader, 4), 0);
  expect_bytes(&fx, f, "");
  fx_finish(&fx);
}

/* A connect that fails releases the reader: a read waiting for it ends. */
static void test_connect_fails(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_reader *reader = NULL;
  assert_int_equal(async_reader_new(&reader, loop, 0), 0);
  async_future *c = NULL;
  assert_int_equal(async_unix_connect(&c, loop, "@libasync-test-reader-none", async_reader_protocol(), reader), 0);
  async_future *f = NULL;
  assert_int_equal(async_reader_read_line(&f, reader, 0), 0);
  assert_int_equal(tu_wait_future(loop, c, 3000), ASYNC_ECONNREFUSED);
  assert_int_equal(tu_wait_future(loop, f, 3000), ASYNC_EEOF);
  assert_int_equal(async_future_free(f), 0);
  assert_int_equal(async_future_free(c), 0);
  assert_int_equal(async_reader_free(reader), 0);
  tu_finish(loop);
}

/* The reader freed while its connect is pending: the connect's release
 * (after a cancel or a failure) or its connection_made comes later and
 * must find the reader still there. */
static void test_free_during_connect(void **state) {
  (void)state;
  for (int mode = 0; mode < 3; mode++) { /* 0: cancelled, 1: refused, 2: connected */
    async_loop *loop = tu_loop_new();
    async_server *server = mode == 2 ? tu_echo_server(loop, "127.0.0.1", 0) : NULL;
    async_reader *reader = NULL;
    assert_int_equal(async_reader_new(&reader, loop, 0), 0);
    async_future *c = NULL;
    assert_int_equal(async_tcp_connect(&c, loop, "127.0.0.1", server ? (uint16_t)async_server_port(server) : 1,
                                       NULL, async_reader_protocol(), reader),
                     0);
    assert_int_equal(async_reader_free(reader), 0);
    if (mode == 0) {
      assert_int_equal(async_future_free(c), 0);
      c = NULL;
    } else {
      assert_int_equal(tu_wait_future(loop, c, 3000), mode == 1 ? ASYNC_ECONNREFUSED : 0);
    }
    if (mode == 2) {
      void *stream = NULL;
      assert_int_equal(async_future_result(&stream, c), 0);
      assert_int_equal(async_stream_close(stream), 0);
      assert_int_equal(async_server_close_connections(server, 0), 0);
    }
    if (c) assert_int_equal(async_future_free(c), 0);
    if (server) tu_server_close(loop, server);
    tu_finish(loop);
  }
}

/* A hand-over that fails leaves the reader unbound (nothing will release it). */
static void test_failed_hand_over(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_reader *reader = NULL;
  assert_int_equal(async_reader_new(&reader, loop, 0), 0);
  async_stream *s = NULL;
  assert_int_equal(async_stream_adopt(&s, loop, -1, async_reader_protocol(), reader), ASYNC_EBADF);
  async_reconnect_options o = ASYNC_RECONNECT_OPTIONS_INIT;
  o.multiplier = 0.5; /* out of range */
  async_reconnector *rc = NULL;
  assert_int_equal(async_reconnector_start(&rc, loop, "127.0.0.1", 1, &o, async_reader_protocol(), reader),
                   ASYNC_EINVAL);
  int sp[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
  assert_int_equal(async_stream_adopt(&s, loop, sp[0], async_reader_protocol(), reader), 0);
  assert_int_equal(async_reader_free(reader), 0);
  assert_int_equal(async_stream_close(s), 0);
  close(sp[1]);
  tu_finish(loop);
}

static int g_stopped;

static void count_stopped(async_reconnector *rc, int error, void *reader) {
  (void)rc;
  (void)reader;
  assert_int_equal(error, 0);
  g_stopped++;
}

/* Runs until the reconnector's state is (want) or is not (!want) state. */
static void run_until_state(async_loop *loop, async_reconnector *rc, int state, int want) {
  uint64_t t0 = tu_now_ns();
  while ((async_reconnector_state(rc) == state) != want) {
    async_loop_run(loop, ASYNC_RUN_NOWAIT);
    assert_true(tu_elapsed_ms(t0) < 3000.0);
    tu_sleep_ms(1);
  }
}

static void echo_line(async_loop *loop, async_reconnector *rc, async_reader *reader, const char *line) {
  assert_int_equal(async_stream_write(async_reconnector_stream(rc), line, strlen(line)), 0);
  async_future *f = NULL;
  assert_int_equal(async_reader_read_line(&f, reader, 0), 0);
  assert_int_equal(tu_wait_future(loop, f, 3000), 0);
  void *v = NULL;
  assert_int_equal(async_future_result(&v, f), 0);
  assert_int_equal(async_bytes_size(v), strlen(line));
  assert_memory_equal(async_bytes_data(v), line, strlen(line));
  assert_int_equal(async_future_free(f), 0);
}

/* A reconnector's protocol: one binding, one connection after another;
 * each connection starts afresh (the last one's end and bytes forgotten). */
static void test_with_reconnector(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_server *server = tu_echo_server(loop, "127.0.0.1", 0);
  async_reader *reader = NULL;
  assert_int_equal(async_reader_new(&reader, loop, 0), 0);
  async_reconnect_options o = ASYNC_RECONNECT_OPTIONS_INIT;
  o.initial_delay_ms = 1;
  o.jitter = -1.0; /* none */
  o.stopped = count_stopped;
  g_stopped = 0;
  async_reconnector *rc = NULL;
  assert_int_equal(async_reconnector_start(&rc, loop, "127.0.0.1", (uint16_t)async_server_port(server), &o,
                                           async_reader_protocol(), reader),
                   0);
  run_until_state(loop, rc, ASYNC_RECONNECT_CONNECTED, 1);
  echo_line(loop, rc, reader, "one\n");
  /* A part line left over when the connection goes. */
  assert_int_equal(async_stream_write(async_reconnector_stream(rc), "part", 4), 0);
  async_future *f = NULL;
  assert_int_equal(async_reader_read_exactly(&f, reader, 2), 0);
  assert_int_equal(tu_wait_future(loop, f, 3000), 0);
  assert_int_equal(async_future_free(f), 0);
  assert_int_equal(async_reconnector_reconnect(rc), 0);
  run_until_state(loop, rc, ASYNC_RECONNECT_CONNECTED, 0);
  run_until_state(loop, rc, ASYNC_RECONNECT_CONNECTED, 1);
  echo_line(loop, rc, reader, "two\n");
  assert_int_equal(async_reconnector_stop(rc), 0);
  tu_run_until(loop, &g_stopped, 1, 3000);
  assert_int_equal(async_reader_free(reader), 0);
  assert_int_equal(async_server_close_connections(server, 0), 0);
  tu_server_close(loop, server);
  tu_finish(loop);
}

/* ---- limits ---------------------------------------------------------------- */

/* read_exactly of more than the reader's limit keeps reading until done. */
static void test_read_exactly_over_limit(void **state) {
  (void)state;
  struct fx fx;
  fx_init(&fx, 16);
  char want[65];
  memset(want, 'q', 64);
  want[64] = '\0';
  async_future *f = NULL;
  assert_int_equal(async_reader_read_exactly(&f, fx.reader, 64), 0);
  assert_int_equal(write(fx.peer, want, 16), 16); /* the limit's worth: reading pauses */
  async_loop_run(fx.loop, ASYNC_RUN_NOWAIT);
  send_str(fx.peer, want + 16);
  expect_bytes(&fx, f, want);
  fx_finish(&fx);
}

/* read_until's outcome for one input, however it is cut into reads. */
struct until_case {
  const char *input;
  const char *delim;
  size_t reader_limit;
  size_t limit;
  int status;       /* 0, ASYNC_ENOBUFS or ASYNC_EEOF (input then EOF) */
  const char *line; /* on success */
};

static const struct until_case k_until_cases[] = {
    {"abcdefgh\n", "\n", 0, 4, ASYNC_ENOBUFS, NULL},
    {"abc\n", "\n", 0, 4, 0, "abc\n"}, /* the limit counts the delimiter */
    {"abcd\n", "\n", 0, 4, ASYNC_ENOBUFS, NULL},
    {"\n", "\n", 0, 1, 0, "\n"},
    {"x\n", "\n", 0, 1, ASYNC_ENOBUFS, NULL},
    {"ab\r\ncd", "\r\n", 0, 4, 0, "ab\r\n"},
    {"abc\r\n", "\r\n", 0, 4, ASYNC_ENOBUFS, NULL}, /* straddles the limit */
    {"abc\r\n", "\r\n", 0, 5, 0, "abc\r\n"},
    {"a\r\r\nb", "\r\n", 0, 4, 0, "a\r\r\n"},
    {"aaab", "aab", 0, 4, 0, "aaab"}, /* a false start overlapping the match */
    {"GET / HTTP/1.1\r\n\r\nbody", "\r\n\r\n", 0, 18, 0, "GET / HTTP/1.1\r\n\r\n"},
    {"GET / HTTP/1.1\r\n\r\nbody", "\r\n\r\n", 0, 17, ASYNC_ENOBUFS, NULL},
    {"one\ntwo\n", "\n", 0, 0, 0, "one\n"},
    {"no delimiter", "\n", 0, 64, ASYNC_EEOF, NULL},
    {"abcdefgh\n", "\n", 4, 0, ASYNC_ENOBUFS, NULL}, /* limit 0: the reader's */
    {"abc\nefgh", "\n", 4, 0, 0, "abc\n"},
    {"abcdefgh\n", "\n", 4, 100, ASYNC_ENOBUFS, NULL}, /* at most the reader's */
};

/* Feeds c->input in pieces cut at the given offsets (the read pending
 * from the start, or issued once everything is buffered), then EOF;
 * checks the outcome and that the rest stays buffered, in order. */
static void run_until_case(const struct until_case *c, const size_t *cuts, size_t ncuts, int read_first) {
  struct fx fx;
  fx_init(&fx, c->reader_limit);
  size_t len = strlen(c->input);
  async_future *f = NULL;
  if (read_first) assert_int_equal(async_reader_read_until(&f, fx.reader, c->delim, strlen(c->delim), c->limit), 0);
  size_t at = 0;
  for (size_t i = 0; i <= ncuts; i++) {
    size_t end = i < ncuts ? cuts[i] : len;
    assert_int_equal(write(fx.peer, c->input + at, end - at), (ssize_t)(end - at));
    at = end;
    async_loop_run(fx.loop, ASYNC_RUN_NOWAIT); /* one delivery */
  }
  assert_int_equal(shutdown(fx.peer, SHUT_WR), 0);
  for (int i = 0; i < 3; i++) async_loop_run(fx.loop, ASYNC_RUN_NOWAIT);
  if (!read_first) assert_int_equal(async_reader_read_until(&f, fx.reader, c->delim, strlen(c->delim), c->limit), 0);
  size_t taken = 0;
  if (c->status == 0) {
    expect_bytes(&fx, f, c->line);
    taken = strlen(c->line);
  } else {
    expect_error(&fx, f, c->status);
  }
  /* The rest, untouched. */
  size_t got = 0;
  for (;;) {
    assert_int_equal(async_reader_read_some(&f, fx.reader, 1000), 0);
    assert_int_equal(wait_for(&fx, f), 0);
    void *v = NULL;
    assert_int_equal(async_future_result(&v, f), 0);
    size_t n = async_bytes_size(v);
    assert_true(taken + got + n <= len);
    assert_memory_equal(async_bytes_data(v), c->input + taken + got, n);
    got += n;
    assert_int_equal(async_future_free(f), 0);
    if (n == 0) break;
  }
  assert_int_equal(taken + got, len);
  fx_finish(&fx);
}

/* The same outcome in one read, byte by byte, and cut at every point. */
static void test_read_until_any_segmentation(void **state) {
  (void)state;
  for (size_t k = 0; k < sizeof k_until_cases / sizeof k_until_cases[0]; k++) {
    const struct until_case *c = &k_until_cases[k];
    size_t len = strlen(c->input);
    size_t bytewise[64];
    assert_true(len <= 64);
    for (size_t i = 1; i < len; i++) bytewise[i - 1] = i;
    for (int read_first = 0; read_first <= 1; read_first++) {
      run_until_case(c, NULL, 0, read_first);
      run_until_case(c, bytewise, len - 1, read_first);
      for (size_t cut = 1; cut < len; cut++) run_until_case(c, &cut, 1, read_first);
    }
  }
}

static void test_bad_input(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_reader *r = NULL;
  async_future *f = NULL;
  assert_int_equal(async_reader_new(NULL, loop, 0), ASYNC_EINVAL);
  assert_int_equal(async_reader_new(&r, NULL, 0), ASYNC_EINVAL);
  assert_int_equal(async_reader_new(&r, loop, 0), 0);
  assert_int_equal(async_reader_read_exactly(&f, r, 0), ASYNC_EINVAL);
  assert_int_equal(async_reader_read_some(&f, r, 0), ASYNC_EINVAL);
  assert_int_equal(async_reader_read_until(&f, r, NULL, 1, 0), ASYNC_EINVAL);
  assert_int_equal(async_reader_read_until(&f, r, "x", 0, 0), ASYNC_EINVAL);
  assert_int_equal(async_reader_read_until(&f, r, "01234567890123456", 17, 0), ASYNC_EINVAL);
  assert_int_equal(async_reader_read_exactly(NULL, r, 1), ASYNC_EINVAL);
  assert_int_equal(async_reader_read_exactly(&f, (async_reader *)loop, 1), ASYNC_EINVAL);
  assert_null(async_bytes_data(NULL));
  assert_int_equal(async_bytes_size((async_bytes *)loop), 0);
  assert_non_null(async_reader_protocol());
  assert_int_equal(async_reader_free(r), 0);
  assert_int_equal(async_reader_free(NULL), ASYNC_EINVAL);
  tu_finish(loop);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_read_exactly),
      cmocka_unit_test(test_read_line_across_chunks),
      cmocka_unit_test(test_read_until_limit),
      cmocka_unit_test(test_eof),
      cmocka_unit_test(test_lost_with_error),
      cmocka_unit_test(test_abort_ends_reads),
      cmocka_unit_test(test_one_read_at_a_time),
      cmocka_unit_test(test_free_with_pending_read),
      cmocka_unit_test(test_flow_control),
      cmocka_unit_test(test_with_connect),
      cmocka_unit_test(test_free_before_made),
      cmocka_unit_test(test_free_at_every_point),
      cmocka_unit_test(test_loop_busy_with_reader),
      cmocka_unit_test(test_free_while_paused),
      cmocka_unit_test(test_one_stream_per_reader),
      cmocka_unit_test(test_reader_protocol_needs_reader),
      cmocka_unit_test(test_rebind_after_release),
      cmocka_unit_test(test_set_protocol_away),
      cmocka_unit_test(test_connect_fails),
      cmocka_unit_test(test_free_during_connect),
      cmocka_unit_test(test_failed_hand_over),
      cmocka_unit_test(test_with_reconnector),
      cmocka_unit_test(test_read_exactly_over_limit),
      cmocka_unit_test(test_read_until_any_segmentation),
      cmocka_unit_test(test_bad_input),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
