/*
 * async_tcp_connect (async/connect.h): connecting to local servers over
 * literals, "localhost" and a hosts-file name (both families, the AAAA and
 * A lookups of Happy Eyeballs), refused connections with every attempt
 * reported, cancellation, local binding, timeouts and bad input.
 */
#include "test_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- a protocol recording its callbacks --------------------------------- */

struct conn {
  int made;
  int lost;
  int released;
  int lost_error;
  int made_before_future; /* connection_made ran before the future's callback */
  int future_calls;
  int future_status;
  async_stream *stream; /* the future's value */
  char got[64];
  size_t len;
};

static void c_made(async_stream *s, void *ud) {
  (void)s;
  struct conn *c = ud;
  c->made++;
  if (c->future_calls == 0) c->made_before_future = 1;
}

static size_t c_data(async_stream *s, const uint8_t *d, size_t n, void *ud) {
  (void)s;
  struct conn *c = ud;
  size_t room = sizeof c->got - c->len;
  memcpy(c->got + c->len, d, n < room ? n : room);
  c->len += n < room ? n : room;
  return n;
}

static void c_lost(async_stream *s, int err, void *ud) {
  (void)s;
  struct conn *c = ud;
  c->lost++;
  c->lost_error = err;
}

static void c_release(void *ud) { ((struct conn *)ud)->released++; }

static const async_stream_protocol k_proto = {
    sizeof(async_stream_protocol), c_made, c_data, NULL, c_lost, NULL, NULL, NULL, c_release,
};

static void future_cb(async_future *f, int status, void *ud) {
  struct conn *c = ud;
  c->future_calls++;
  c->future_status = status;
  void *v = NULL;
  if (status == 0 && async_future_result(&v, f) == 0) c->stream = v;
}

/* ---- an echo server (the library's own) ---------------------------------- */

static size_t echo_data(async_stream *s, const uint8_t *d, size_t n, void *ud) {
  (void)ud;
  async_stream_write(s, d, n);
  return n;
}

static void echo_lost(async_stream *s, int err, void *ud) {
  (void)s;
  (void)err;
  (void)ud;
}

static const async_stream_protocol k_echo = {
    sizeof(async_stream_protocol), NULL, echo_data, NULL, echo_lost, NULL, NULL, NULL, NULL,
};

static int echo_factory(const async_stream_protocol **p, void **ud, async_server *s, void *userdata) {
  (void)s;
  (void)userdata;
  *p = &k_echo;
  *ud = NULL;
  return 0;
}

static async_server *echo_server(async_loop *loop, const char *host) {
  async_server *s = NULL;
  assert_int_equal(async_tcp_listen(&s, loop, host, 0, 0, 0, echo_factory, NULL), 0);
  return s;
}

/* ---- attempt reports ----------------------------------------------------- */

struct attempts {
  int count;
  int families[8];
  int errors[8];
};

static void attempt_cb(const struct sockaddr *addr, size_t len, int error, void *ud) {
  struct attempts *a = ud;
  assert_true(len >= sizeof(struct sockaddr_in));
  if (a->count < 8) {
    a->families[a->count] = addr->sa_family;
    a->errors[a->count] = error;
  }
  a->count++;
}

/* ---- helpers ------------------------------------------------------------- */

static int ipv6_loopback(void) {
  int fd = socket(AF_INET6, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
  int ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
  close(fd);
  return ok;
}

/* Runs NOWAIT iterations until *flag >= want (bounded). */
static void run_until(async_loop *loop, const int *flag, int want, double ms) {
  uint64_t t0 = tu_now_ns();
  while (*flag < want) {
    async_loop_run(loop, ASYNC_RUN_NOWAIT);
    assert_true(tu_elapsed_ms(t0) < ms);
    if (*flag < want) tu_sleep_ms(1);
  }
}

static async_future *connect_to(async_loop *loop, const char *host, uint16_t port, const async_connect_options *o,
                                 struct conn *c) {
  async_future *f = NULL;
  assert_int_equal(async_tcp_connect(&f, loop, host, port, o, &k_proto, c), 0);
  assert_non_null(f);
  /* Never inside the call. */
  assert_int_equal(async_future_state(f), ASYNC_FUTURE_PENDING);
  assert_int_equal(async_future_add_callback(f, future_cb, c), 0);
  return f;
}

/* Connects, checks the stream echoes, closes it; returns the peer family. */
static int connect_and_echo(async_loop *loop, const char *host, uint16_t port, const async_connect_options *o) {
  struct conn c = {0};
  async_future *f = connect_to(loop, host, port, o, &c);
  run_until(loop, &c.future_calls, 1, 3000);
  assert_int_equal(c.future_status, 0);
  assert_int_equal(c.made, 1);
  assert_true(c.made_before_future);
  assert_non_null(c.stream);
  struct sockaddr_storage peer;
  int len = async_stream_peername((struct sockaddr *)&peer, sizeof peer, c.stream);
  assert_true(len > 0);
  assert_int_equal(async_addr_port((struct sockaddr *)&peer, (size_t)len), port);
  assert_int_equal(async_stream_write(c.stream, "ping\n", 5), 0);
  uint64_t t0 = tu_now_ns();
  while (c.len < 5) {
    async_loop_run(loop, ASYNC_RUN_NOWAIT);
    assert_true(tu_elapsed_ms(t0) < 3000.0);
  }
  assert_memory_equal(c.got, "ping\n", 5);
  assert_int_equal(async_stream_close(c.stream), 0);
  run_until(loop, &c.released, 1, 3000);
  assert_int_equal(c.lost, 1);
  assert_int_equal(c.lost_error, 0);
  assert_int_equal(async_future_free(f), 0);
  return peer.ss_family;
}

static void finish(async_loop *loop, async_server *server) {
  int closed = 0;
  if (server) {
    assert_int_equal(async_handle_set_userdata(async_server_handle(server), &closed), 0);
    assert_int_equal(async_handle_close(async_server_handle(server), tu_count_close_cb), 0);
    run_until(loop, &closed, 1, 3000);
  }
  tu_finish(loop);
}

/* ---- tests ----------------------------------------------------------------- */

static void test_connect_literal(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_server *server = echo_server(loop, "127.0.0.1");
  uint16_t port = (uint16_t)async_server_port(server);
  assert_int_equal(connect_and_echo(loop, "127.0.0.1", port, NULL), AF_INET);
  finish(loop, server);
}

/* "localhost": both families, IPv6 first. */
static void test_connect_localhost_prefers_ipv6(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_server *server = echo_server(loop, "localhost");
  uint16_t port = (uint16_t)async_server_port(server);
  int family = connect_and_echo(loop, "localhost", port, NULL);
  assert_int_equal(family, ipv6_loopback() ? AF_INET6 : AF_INET);
  /* Restricted to one family. */
  async_connect_options o = ASYNC_CONNECT_OPTIONS_INIT;
  o.family = AF_INET;
  assert_int_equal(connect_and_echo(loop, "localhost", port, &o), AF_INET);
  finish(loop, server);
}

/* A name from the loop's hosts file: the AAAA and A lookups of Happy
 * Eyeballs, then the IPv6 address first. */
static void test_connect_name(void **state) {
  (void)state;
  char path[] = "/tmp/libasync-connect-hosts-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  const char *hosts = "127.0.0.1 both.test v4.test\n::1 both.test\n";
  assert_int_equal(write(fd, hosts, strlen(hosts)), (ssize_t)strlen(hosts));
  close(fd);
  async_loop *loop = tu_loop_new();
  assert_int_equal(async_dns_set_hosts_file(loop, path), 0);
  async_server *server = echo_server(loop, "localhost");
  uint16_t port = (uint16_t)async_server_port(server);
  assert_int_equal(connect_and_echo(loop, "both.test", port, NULL), ipv6_loopback() ? AF_INET6 : AF_INET);
  assert_int_equal(connect_and_echo(loop, "v4.test", port, NULL), AF_INET);
  /* Sequential (no Happy Eyeballs): one lookup, addresses in order. */
  async_connect_options o = ASYNC_CONNECT_OPTIONS_INIT;
  o.happy_eyeballs = 0;
  assert_int_equal(connect_and_echo(loop, "both.test", port, &o), ipv6_loopback() ? AF_INET6 : AF_INET);
  finish(loop, server);
  unlink(path);
}

/* Nothing listens: every attempt refused and reported, the future fails
 * with the first error, the protocol only hears release. */
static void test_refused_reports_every_attempt(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_server *probe = echo_server(loop, "localhost");
  uint16_t port = (uint16_t)async_server_port(probe);
  finish(loop, probe); /* the port is free again */
  loop = tu_loop_new();
  for (int he = 1; he >= 0; he--) {
    struct attempts a = {0};
    async_connect_options o = ASYNC_CONNECT_OPTIONS_INIT;
    o.happy_eyeballs = he;
    o.attempt_failed = attempt_cb;
    o.attempt_failed_userdata = &a;
    struct conn c = {0};
    async_future *f = connect_to(loop, "localhost", port, &o, &c);
    run_until(loop, &c.future_calls, 1, 3000);
    assert_int_equal(c.future_status, ASYNC_ECONNREFUSED);
    assert_int_equal(a.count, ipv6_loopback() ? 2 : 1);
    assert_int_equal(a.families[0], ipv6_loopback() ? AF_INET6 : AF_INET);
    for (int i = 0; i < a.count; i++) assert_int_equal(a.errors[i], ASYNC_ECONNREFUSED);
    assert_int_equal(c.made, 0);
    assert_int_equal(c.lost, 0);
    assert_int_equal(c.released, 1);
    assert_int_equal(async_future_free(f), 0);
  }
  finish(loop, NULL);
}

/* Cancelled before anything ran: ECANCELED, release once, nothing else;
 * freeing the future works the same. */
static void test_cancel(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_server *server = echo_server(loop, "127.0.0.1");
  uint16_t port = (uint16_t)async_server_port(server);
  struct conn c = {0};
  async_future *f = connect_to(loop, "127.0.0.1", port, NULL, &c);
  assert_int_equal(async_future_cancel(f), 1);
  assert_int_equal(c.released, 1);
  run_until(loop, &c.future_calls, 1, 3000);
  assert_int_equal(c.future_status, ASYNC_ECANCELED);
  assert_int_equal(async_future_free(f), 0);
  struct conn d = {0};
  async_future *g = NULL;
  assert_int_equal(async_tcp_connect(&g, loop, "localhost", port, NULL, &k_proto, &d), 0);
  assert_int_equal(async_future_free(g), 0);
  assert_int_equal(d.released, 1);
  /* Cancelled during the lookups / attempts, a few iterations in. */
  struct conn e[3] = {{0}}; /* outlives the loop below: callbacks come later */
  for (int spins = 1; spins <= 3; spins++) {
    struct conn *x = &e[spins - 1];
    async_future *h = connect_to(loop, "localhost", port, NULL, x);
    for (int i = 0; i < spins; i++) async_loop_run(loop, ASYNC_RUN_NOWAIT);
    assert_int_equal(async_future_free(h), 0);
    run_until(loop, &x->released, 1, 3000);
    run_until(loop, &x->future_calls, 1, 3000);
    /* Either it never connected (release only) or the stream was aborted
     * (made, then lost, then release): one final notification either way. */
    assert_int_equal(x->lost, x->made);
    assert_int_equal(x->released, 1);
  }
  finish(loop, server);
}

/* Bound to a local address first; an attempt whose family the local
 * address cannot reach is reported and skipped. */
static void test_local_address(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_server *server = echo_server(loop, "localhost");
  uint16_t port = (uint16_t)async_server_port(server);
  struct attempts a = {0};
  async_connect_options o = ASYNC_CONNECT_OPTIONS_INIT;
  o.local_address = "127.0.0.1:0";
  o.attempt_failed = attempt_cb;
  o.attempt_failed_userdata = &a;
  assert_int_equal(connect_and_echo(loop, "localhost", port, &o), AF_INET);
  if (ipv6_loopback()) {
    assert_int_equal(a.count, 1);
    assert_int_equal(a.families[0], AF_INET6);
    assert_int_equal(a.errors[0], ASYNC_EADDRNOTAVAIL);
  }
  finish(loop, server);
}

/* An address that never answers (where the network has one): the
 * per-attempt timeout, and the total timeout, end it with ETIMEDOUT. */
static int blackhole_hangs(void) {
  int fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (fd < 0) return 0;
  struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(9)};
  inet_pton(AF_INET6, "100::1", &a.sin6_addr); /* the discard-only prefix (RFC 6666) */
  int hangs = 0;
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    hangs = poll(&p, 1, 100) == 0;
  }
  close(fd);
  return hangs;
}

static void test_timeouts(void **state) {
  (void)state;
  if (!blackhole_hangs()) skip(); /* connects to 100::1 fail at once here */
  async_loop *loop = tu_loop_new();
  async_connect_options o = ASYNC_CONNECT_OPTIONS_INIT;
  o.attempt_timeout_ms = 100;
  struct conn c = {0};
  uint64_t t0 = tu_now_ns();
  async_future *f = connect_to(loop, "100::1", 9, &o, &c);
  run_until(loop, &c.future_calls, 1, 3000);
  assert_int_equal(c.future_status, ASYNC_ETIMEDOUT);
  assert_true(tu_elapsed_ms(t0) >= 99.0);
  assert_int_equal(async_future_free(f), 0);
  async_connect_options t = ASYNC_CONNECT_OPTIONS_INIT;
  t.total_timeout_ms = 150;
  struct conn d = {0};
  t0 = tu_now_ns();
  f = connect_to(loop, "100::1", 9, &t, &d);
  run_until(loop, &d.future_calls, 1, 3000);
  assert_int_equal(d.future_status, ASYNC_ETIMEDOUT);
  assert_true(tu_elapsed_ms(t0) >= 149.0);
  assert_int_equal(d.released, 1);
  assert_int_equal(async_future_free(f), 0);
  finish(loop, NULL);
}

/* Happy Eyeballs: a first address that hangs does not hold the second one
 * back longer than the attempt delay. */
static void test_happy_eyeballs_stagger(void **state) {
  (void)state;
  if (!blackhole_hangs()) skip();
  char path[] = "/tmp/libasync-he-hosts-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  const char *hosts = "100::1 slow6.test\n127.0.0.1 slow6.test\n";
  assert_int_equal(write(fd, hosts, strlen(hosts)), (ssize_t)strlen(hosts));
  close(fd);
  async_loop *loop = tu_loop_new();
  assert_int_equal(async_dns_set_hosts_file(loop, path), 0);
  async_server *server = echo_server(loop, "127.0.0.1");
  uint64_t t0 = tu_now_ns();
  assert_int_equal(connect_and_echo(loop, "slow6.test", (uint16_t)async_server_port(server), NULL), AF_INET);
  double ms = tu_elapsed_ms(t0);
  assert_true(ms >= 249.0 && ms < 1500.0);
  finish(loop, server);
  unlink(path);
}

/* Unix stream sockets: a path, an abstract name, a missing path. */
static void test_unix_connect(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  char path[108];
  snprintf(path, sizeof path, "/tmp/libasync-connect-%d.sock", (int)getpid());
  unlink(path);
  char name[64];
  snprintf(name, sizeof name, "@libasync-connect-%d", (int)getpid());
  const char *where[] = {path, name};
  for (int i = 0; i < 2; i++) {
    async_server *server = NULL;
    assert_int_equal(async_unix_listen(&server, loop, where[i], 0, echo_factory, NULL), 0);
    struct conn c = {0};
    async_future *f = NULL;
    assert_int_equal(async_unix_connect(&f, loop, where[i], &k_proto, &c), 0);
    assert_int_equal(async_future_add_callback(f, future_cb, &c), 0);
    run_until(loop, &c.future_calls, 1, 3000);
    assert_int_equal(c.future_status, 0);
    assert_true(c.made_before_future);
    assert_int_equal(async_stream_write(c.stream, "unix\n", 5), 0);
    uint64_t t0 = tu_now_ns();
    while (c.len < 5) {
      async_loop_run(loop, ASYNC_RUN_NOWAIT);
      assert_true(tu_elapsed_ms(t0) < 3000.0);
    }
    assert_memory_equal(c.got, "unix\n", 5);
    assert_int_equal(async_stream_close(c.stream), 0);
    run_until(loop, &c.released, 1, 3000);
    assert_int_equal(async_future_free(f), 0);
    int closed = 0;
    assert_int_equal(async_handle_set_userdata(async_server_handle(server), &closed), 0);
    assert_int_equal(async_handle_close(async_server_handle(server), tu_count_close_cb), 0);
    run_until(loop, &closed, 1, 3000);
  }
  unlink(path);
  /* Nothing there. */
  struct conn c = {0};
  async_future *f = NULL;
  assert_int_equal(async_unix_connect(&f, loop, path, &k_proto, &c), 0);
  assert_int_equal(async_future_add_callback(f, future_cb, &c), 0);
  run_until(loop, &c.future_calls, 1, 3000);
  assert_int_equal(c.future_status, ASYNC_ECONNREFUSED);
  assert_int_equal(c.released, 1);
  assert_int_equal(async_future_free(f), 0);
  /* Bad input. */
  char longpath[300];
  memset(longpath, 'a', sizeof longpath - 1);
  longpath[sizeof longpath - 1] = '\0';
  assert_int_equal(async_unix_connect(&f, loop, longpath, &k_proto, &c), ASYNC_EINVAL);
  assert_int_equal(async_unix_connect(&f, loop, "", &k_proto, &c), ASYNC_EINVAL);
  assert_int_equal(async_unix_connect(&f, loop, "@", &k_proto, &c), ASYNC_EINVAL);
  assert_int_equal(async_unix_connect(&f, loop, NULL, &k_proto, &c), ASYNC_EINVAL);
  assert_int_equal(async_unix_connect(NULL, loop, path, &k_proto, &c), ASYNC_EINVAL);
  assert_int_equal(async_unix_connect(&f, loop, path, NULL, &c), ASYNC_EINVAL);
  finish(loop, NULL);
}

static void test_bad_input(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  struct conn c = {0};
  async_future *f = (async_future *)0x1;
  async_stream_protocol no_lost = k_proto;
  no_lost.connection_lost = NULL;
  async_connect_options small = ASYNC_CONNECT_OPTIONS_INIT;
  small.size = 4;
  async_connect_options bad_family = ASYNC_CONNECT_OPTIONS_INIT;
  bad_family.family = 12345;
  async_connect_options bad_local = ASYNC_CONNECT_OPTIONS_INIT;
  bad_local.local_address = "not an address";
  assert_int_equal(async_tcp_connect(NULL, loop, "127.0.0.1", 1, NULL, &k_proto, &c), ASYNC_EINVAL);
  assert_int_equal(async_tcp_connect(&f, NULL, "127.0.0.1", 1, NULL, &k_proto, &c), ASYNC_EINVAL);
  assert_int_equal(async_tcp_connect(&f, loop, NULL, 1, NULL, &k_proto, &c), ASYNC_EINVAL);
  assert_int_equal(async_tcp_connect(&f, loop, "", 1, NULL, &k_proto, &c), ASYNC_EINVAL);
  assert_int_equal(async_tcp_connect(&f, loop, "127.0.0.1", 1, NULL, NULL, &c), ASYNC_EINVAL);
  assert_int_equal(async_tcp_connect(&f, loop, "127.0.0.1", 1, NULL, &no_lost, &c), ASYNC_EINVAL);
  assert_int_equal(async_tcp_connect(&f, loop, "127.0.0.1", 1, &small, &k_proto, &c), ASYNC_EINVAL);
  assert_int_equal(async_tcp_connect(&f, loop, "127.0.0.1", 1, &bad_family, &k_proto, &c), ASYNC_EINVAL);
  assert_int_equal(async_tcp_connect(&f, loop, "127.0.0.1", 1, &bad_local, &k_proto, &c), ASYNC_EINVAL);
  assert_int_equal(async_tcp_connect(&f, (async_loop *)&c, "127.0.0.1", 1, NULL, &k_proto, &c), ASYNC_EINVAL);
  assert_ptr_equal(f, (async_future *)0x1);
  assert_int_equal(c.released, 0);
  /* A malformed scope fails through the future. */
  f = connect_to(loop, "fe80::1%nosuchif0", 1, NULL, &c);
  run_until(loop, &c.future_calls, 1, 3000);
  assert_int_equal(c.future_status, ASYNC_EINVAL);
  assert_int_equal(c.released, 1);
  assert_int_equal(async_future_free(f), 0);
  finish(loop, NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_connect_literal),
      cmocka_unit_test(test_connect_localhost_prefers_ipv6),
      cmocka_unit_test(test_connect_name),
      cmocka_unit_test(test_refused_reports_every_attempt),
      cmocka_unit_test(test_cancel),
      cmocka_unit_test(test_local_address),
      cmocka_unit_test(test_timeouts),
      cmocka_unit_test(test_happy_eyeballs_stagger),
      cmocka_unit_test(test_unix_connect),
      cmocka_unit_test(test_bad_input),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
