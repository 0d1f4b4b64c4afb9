/*
 * A program written against the v0 headers runs against the current
 * library: this file is compiled with tests/abi/v0/include (a copy of the
 * headers taken by `scripts/abi.sh snapshot`) instead of include/, and
 * linked with the library just built. It uses a broad slice of the API the
 * way a v0 program would, with the v0 sizes of the option and protocol
 * structs (their _INIT macros), so a changed signature, layout, constant or
 * behaviour shows up here (docs/testing.md "ABI baseline and v0 headers").
 *
 * Self-contained on purpose: tests/test_util.h follows the current headers.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include <async.h>

/* Every test's loop must end empty: all handles closed, all futures freed. */
static void free_loop(async_loop *loop) {
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(async_loop_free(loop), 0);
}

/* ---- version and errors ---------------------------------------------------- */

static void test_version_and_errors(void **state) {
  (void)state;
  assert_int_equal(ASYNC_VERSION_MAJOR, 0);
  assert_int_equal(async_version() >> 16, ASYNC_VERSION_MAJOR);
  assert_non_null(async_version_string());
  assert_string_equal(async_err_name(ASYNC_EINVAL), "ASYNC_EINVAL");
  assert_string_equal(async_err_name(ASYNC_EACCES), "ASYNC_EACCES");
  assert_int_equal(ASYNC_EACCES, -28);
  assert_non_null(async_strerror(ASYNC_ETIMEDOUT));
}

/* ---- call_soon, timers, futures ------------------------------------------- */

struct order {
  int calls[4];
  int count;
};

static void on_soon(async_loop *loop, void *userdata) {
  (void)loop;
  struct order *o = userdata;
  o->calls[o->count++] = 1;
}

static void on_closed(async_handle *handle, void *userdata) {
  (void)handle;
  ++*(int *)userdata;
}

/* A one-shot timer resolves the future it was given as userdata. */
static void on_timer(async_timer *timer, void *userdata) {
  assert_int_equal(async_future_resolve(userdata, (void *)"fired", NULL, NULL), 0);
  assert_int_equal(async_handle_close(async_timer_handle(timer), NULL), 0);
}

static void test_loop_timer_future(void **state) {
  (void)state;
  async_loop *loop;
  assert_int_equal(async_loop_new(&loop), 0);

  struct order o = {{0}, 0};
  assert_int_equal(async_loop_call_soon(loop, on_soon, &o), 0);
  assert_int_equal(o.count, 0); /* never inside the scheduling call */

  async_future *fut;
  async_timer *timer;
  assert_int_equal(async_future_new(&fut, loop), 0);
  assert_int_equal(async_timer_new(&timer, loop, fut), 0);
  assert_int_equal(async_timer_start(timer, 5, 0, on_timer), 0);
  assert_int_equal(async_handle_is_active(async_timer_handle(timer)), 1);

  assert_int_equal(async_loop_run_until(loop, fut), 0);
  assert_int_equal(o.count, 1);
  void *value = NULL;
  assert_int_equal(async_future_result(&value, fut), 0);
  assert_string_equal(value, "fired");
  assert_int_equal(async_future_free(fut), 0);

  /* A repeating timer with a remembered repeat, stopped and closed. */
  int closed = 0;
  assert_int_equal(async_timer_new(&timer, loop, &closed), 0);
  assert_int_equal(async_timer_start(timer, 1000, 250, on_timer), 0);
  uint64_t repeat = 0;
  assert_int_equal(async_timer_get_repeat(&repeat, timer), 0);
  assert_int_equal(repeat, 250);
  assert_int_equal(async_timer_again(timer), 0);
  assert_int_equal(async_timer_stop(timer), 0);
  assert_int_equal(async_handle_close(async_timer_handle(timer), on_closed), 0);
  free_loop(loop);
  assert_int_equal(closed, 1);
}

static void test_future_combinators(void **state) {
  (void)state;
  async_loop *loop;
  assert_int_equal(async_loop_new(&loop), 0);

  async_future *in[2];
  assert_int_equal(async_future_new(&in[0], loop), 0);
  assert_int_equal(async_future_new(&in[1], loop), 0);
  async_future *all;
  assert_int_equal(async_future_all(&all, loop, in, 2), 0);
  assert_int_equal(async_future_resolve(in[0], NULL, NULL, NULL), 0);
  assert_int_equal(async_future_reject(in[1], ASYNC_EIO), 0);
  assert_int_equal(async_loop_run_until(loop, all), ASYNC_EIO);

  /* wait_for: a future nobody completes times out. */
  async_future *never, *timed;
  assert_int_equal(async_future_new(&never, loop), 0);
  assert_int_equal(async_future_timeout(&timed, never, 5), 0);
  assert_int_equal(async_loop_run_until(loop, timed), ASYNC_ETIMEDOUT);
  assert_int_equal(async_future_result(NULL, never), ASYNC_ECANCELED);

  async_future *all_free[] = {in[0], in[1], all, never, timed};
  for (size_t i = 0; i < sizeof all_free / sizeof all_free[0]; ++i) {
    assert_int_equal(async_future_free(all_free[i]), 0);
  }
  free_loop(loop);
}

/* ---- TCP echo over 127.0.0.1 ---------------------------------------------- */

/* The server's side: echoes what it gets, closes at the peer's end. */
static size_t echo_data(async_stream *stream, const uint8_t *data, size_t len, void *userdata) {
  (void)userdata;
  assert_int_equal(async_stream_write(stream, data, len), 0);
  return len;
}

static int echo_eof(async_stream *stream, void *userdata) {
  (void)userdata;
  assert_int_equal(async_stream_close(stream), 0);
  return 1;
}

static void echo_lost(async_stream *stream, int error, void *userdata) {
  (void)stream;
  (void)error;
  (void)userdata;
}

static int echo_factory(const async_stream_protocol **out_protocol, void **out_userdata, async_server *server,
                        void *userdata) {
  (void)server;
  static async_stream_protocol echo = ASYNC_STREAM_PROTOCOL_INIT;
  echo.data_received = echo_data;
  echo.eof_received = echo_eof;
  echo.connection_lost = echo_lost;
  ++*(int *)userdata;
  *out_protocol = &echo;
  *out_userdata = NULL;
  return 0;
}

static void test_tcp_echo(void **state) {
  (void)state;
  async_loop *loop;
  assert_int_equal(async_loop_new(&loop), 0);

  int accepted = 0;
  async_server *server;
  assert_int_equal(async_tcp_listen(&server, loop, "127.0.0.1", 0, 0, 0, echo_factory, &accepted), 0);
  int port = async_server_port(server);
  assert_true(port > 0);

  /* The client reads through a reader, connected with the v0 options. */
  async_reader *reader;
  assert_int_equal(async_reader_new(&reader, loop, 0), 0);
  async_connect_options options = ASYNC_CONNECT_OPTIONS_INIT;
  assert_int_equal(options.size, sizeof(async_connect_options));
  options.total_timeout_ms = 5000;
  async_future *connect;
  assert_int_equal(
      async_tcp_connect(&connect, loop, "127.0.0.1", (uint16_t)port, &options, async_reader_protocol(), reader), 0);
  assert_int_equal(async_loop_run_until(loop, connect), 0);
  async_stream *stream = NULL;
  assert_int_equal(async_future_result((void **)&stream, connect), 0);
  assert_non_null(stream);

  static const char line[] = "hello, v0\n";
  assert_int_equal(async_stream_write(stream, line, strlen(line)), 0);
  async_future *read;
  assert_int_equal(async_reader_read_line(&read, reader, 0), 0);
  assert_int_equal(async_loop_run_until(loop, read), 0);
  void *value = NULL;
  assert_int_equal(async_future_result(&value, read), 0);
  assert_int_equal(async_bytes_size(value), strlen(line));
  assert_memory_equal(async_bytes_data(value), line, strlen(line));
  assert_int_equal(accepted, 1);

  /* Our end of file: the server closes, we read the end. */
  assert_int_equal(async_stream_write_eof(stream), 0);
  async_future *rest;
  assert_int_equal(async_reader_read_some(&rest, reader, 64), 0);
  assert_int_equal(async_loop_run_until(loop, rest), 0);
  assert_int_equal(async_future_result(&value, rest), 0);
  assert_int_equal(async_bytes_size(value), 0);

  assert_int_equal(async_stream_close(stream), 0);
  assert_int_equal(async_future_free(rest), 0);
  assert_int_equal(async_future_free(read), 0);
  assert_int_equal(async_future_free(connect), 0);
  assert_int_equal(async_reader_free(reader), 0);
  assert_int_equal(async_handle_close(async_server_handle(server), NULL), 0);
  free_loop(loop);
}

/* ---- UDP to itself, with the v0 options ---------------------------------- */

struct udp_state {
  char got[32];
  size_t len;
  int released;
};

static void udp_received(async_datagram *dgram, const uint8_t *data, size_t len, const struct sockaddr *addr,
                         size_t addrlen, void *userdata) {
  (void)addr;
  (void)addrlen;
  struct udp_state *s = userdata;
  assert_true(len < sizeof s->got);
  memcpy(s->got, data, len);
  s->len = len;
  assert_int_equal(async_datagram_close(dgram), 0);
}

static void udp_lost(async_datagram *dgram, int error, void *userdata) {
  (void)dgram;
  (void)userdata;
  assert_int_equal(error, 0);
}

static void udp_release(void *userdata) { ((struct udp_state *)userdata)->released = 1; }

static void test_udp(void **state) {
  (void)state;
  async_loop *loop;
  assert_int_equal(async_loop_new(&loop), 0);

  async_udp_options options = ASYNC_UDP_OPTIONS_INIT;
  assert_int_equal(options.size, sizeof(async_udp_options));
  options.local_address = "127.0.0.1:0";
  async_datagram_protocol protocol = ASYNC_DATAGRAM_PROTOCOL_INIT;
  protocol.datagram_received = udp_received;
  protocol.connection_lost = udp_lost;
  protocol.release = udp_release;
  struct udp_state s = {{0}, 0, 0};
  async_datagram *dgram;
  assert_int_equal(async_udp_open(&dgram, loop, &options, &protocol, &s), 0);

  struct sockaddr_storage self;
  assert_true(async_datagram_sockname((struct sockaddr *)&self, sizeof self, dgram) > 0);
  assert_int_equal(self.ss_family, AF_INET);
  assert_int_equal(async_datagram_send(dgram, "ping", 4, (struct sockaddr *)&self, sizeof(struct sockaddr_in)), 0);
  free_loop(loop);
  assert_int_equal(s.len, 4);
  assert_memory_equal(s.got, "ping", 4);
  assert_int_equal(s.released, 1);
}

/* ---- DNS ------------------------------------------------------------------ */

static void test_dns_localhost(void **state) {
  (void)state;
  async_loop *loop;
  assert_int_equal(async_loop_new(&loop), 0);

  async_future *lookup;
  assert_int_equal(async_getaddrinfo(&lookup, loop, "localhost", "80", AF_UNSPEC, SOCK_STREAM, 0), 0);
  assert_int_equal(async_loop_run_until(loop, lookup), 0);
  void *value = NULL;
  assert_int_equal(async_future_result(&value, lookup), 0);
  const async_addrinfo *list = value;
  int count = async_addrinfo_count(list);
  assert_true(count > 0);
  for (int i = 0; i < count; ++i) {
    int family = async_addrinfo_family(list, (size_t)i);
    assert_true(family == AF_INET || family == AF_INET6);
    assert_int_equal(async_addrinfo_socktype(list, (size_t)i), SOCK_STREAM);
    const struct sockaddr *addr = NULL;
    assert_true(async_addrinfo_addr(&addr, list, (size_t)i) > 0);
    assert_int_equal(async_addr_port(addr, family == AF_INET ? sizeof(struct sockaddr_in)
                                                             : sizeof(struct sockaddr_in6)),
                     80);
  }
  assert_int_equal(async_future_free(lookup), 0);
  free_loop(loop);
}

/* ---- addresses ------------------------------------------------------------ */

static void test_addr(void **state) {
  (void)state;
  struct sockaddr_storage sa;
  assert_true(async_addr_parse((struct sockaddr *)&sa, sizeof sa, "[::1]:8080", 0) > 0);
  char text[64];
  assert_true(async_addr_format(text, sizeof text, (struct sockaddr *)&sa, sizeof(struct sockaddr_in6), 0) > 0);
  assert_string_equal(text, "[::1]:8080");
  assert_int_equal(async_addr_parse((struct sockaddr *)&sa, sizeof sa, "not an address", 0), ASYNC_EINVAL);
}

/* The calls a binding leans on: loop userdata, walk, hold, references,
 * renamed getters and the address accessors. */
static void count_object(int kind, void *object, void *userdata) {
  (void)object;
  if (kind == ASYNC_OBJECT_TIMER || kind == ASYNC_OBJECT_FUTURE) ++*(int *)userdata;
}

static void test_binding_calls(void **state) {
  (void)state;
  async_loop *loop;
  assert_int_equal(async_loop_new(&loop), 0);
  int tag = 0;
  assert_int_equal(async_loop_set_userdata(loop, &tag), 0);
  assert_ptr_equal(async_loop_userdata(loop), &tag);

  async_timer *timer;
  assert_int_equal(async_timer_new(&timer, loop, NULL), 0);
  async_future *f;
  assert_int_equal(async_future_new(&f, loop), 0);
  int seen = 0;
  assert_int_equal(async_loop_walk(loop, count_object, &seen), 2); /* calls made */
  assert_int_equal(seen, 2);

  assert_int_equal(async_future_retain(f), 0);
  assert_int_equal(async_future_release(f), 0);
  assert_int_equal(async_future_get_state(f), ASYNC_FUTURE_PENDING);
  assert_int_equal(async_loop_hold(loop), 0);
  assert_int_equal(async_loop_alive(loop), 1);
  assert_int_equal(async_loop_unhold(loop), 0);

  assert_int_equal(async_loop_shutdown(loop, NULL), 0);
  assert_int_equal(async_future_get_state(f), ASYNC_FUTURE_CANCELLED);
  assert_int_equal(async_future_free(f), 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(async_loop_free(loop), 0);

  static const uint8_t ip[4] = {192, 0, 2, 7};
  struct sockaddr_storage ss;
  int len = async_addr_make((struct sockaddr *)&ss, sizeof ss, ASYNC_AF_INET, ip, sizeof ip, 8080, 0);
  assert_int_equal(len, (int)sizeof(struct sockaddr_in));
  assert_int_equal(async_addr_get_family((struct sockaddr *)&ss, (size_t)len), ASYNC_AF_INET);
  assert_int_equal(async_addr_port((struct sockaddr *)&ss, (size_t)len), 8080);
  uint8_t back[16];
  assert_int_equal(async_addr_get_ip(back, sizeof back, (struct sockaddr *)&ss, (size_t)len), 4);
  assert_memory_equal(back, ip, sizeof ip);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_version_and_errors), cmocka_unit_test(test_loop_timer_future),
      cmocka_unit_test(test_future_combinators), cmocka_unit_test(test_tcp_echo),
      cmocka_unit_test(test_udp),                cmocka_unit_test(test_dns_localhost),
      cmocka_unit_test(test_addr), cmocka_unit_test(test_binding_calls),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
