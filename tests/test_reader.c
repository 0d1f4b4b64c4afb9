/*
 * async_reader (async/reader.h): read_exactly / read_until / read_line /
 * read_some futures over a stream, limits, end of file, errors, one read at
 * a time, cancellation, freeing, flow control, and use with a connect.
 */
#include "test_util.h"

#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct fx {
  async_loop *loop;
  async_reader *reader;
  async_stream *stream;
  int peer;
};

/* A reader on one end of a socketpair; the test writes on the other. */
static void fx_init(struct fx *f, size_t limit) {
  f->loop = tu_loop_new();
  assert_int_equal(async_reader_new(&f->reader, f->loop, limit), 0);
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  assert_int_equal(async_stream_adopt(&f->stream, f->loop, sv[0], async_reader_protocol(), f->reader), 0);
  f->peer = sv[1];
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
  while (async_future_state(f) == ASYNC_FUTURE_PENDING) {
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
  assert_int_equal(async_future_state(f), ASYNC_FUTURE_PENDING);
  send_str(fx.peer, "hel");
  async_loop_run(fx.loop, ASYNC_RUN_NOWAIT);
  assert_int_equal(async_future_state(f), ASYNC_FUTURE_PENDING); /* 3 of 5 */
  send_str(fx.peer, "lo world");
  expect_bytes(&fx, f, "hello");
  /* Already buffered: done before the call returns. */
  assert_int_equal(async_reader_read_exactly(&f, fx.reader, 6), 0);
  assert_int_equal(async_future_state(f), ASYNC_FUTURE_DONE);
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
  assert_int_equal(async_future_state(f), ASYNC_FUTURE_PENDING);
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
  assert_int_equal(async_future_state(f), ASYNC_FUTURE_CANCELLED);
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
      cmocka_unit_test(test_bad_input),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
