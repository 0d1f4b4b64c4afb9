/*
 * The SOCKS5 client layer (async/socks.h) against the SOCKS5 server of
 * socks5_server.c, which relays to an echo server of the library: CONNECT
 * with and without username/password, by name, numeric host or address,
 * each reply code and malformed reply, replies byte by byte with the
 * tunnel's first bytes behind them, the proxy closing at each point of the
 * handshake, cancellation, closes inside callbacks, bad inputs, and SOCKS5
 * stacked over the rate limiter. Each userdata gets one release; the
 * protocol of a failed handshake sees nothing else.
 *
 * Callbacks never assert (a cmocka failure would longjmp through the
 * library): they record, and the test checks afterwards.
 */
#include "loop_env.h"
#include "socks5_server.h"
#include "test_util.h"

#include <arpa/inet.h>
#include <async.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

struct side {
  async_stream *s;
  uint8_t buf[70000];
  size_t len;
  int made, lost, lost_err, released, released_in_call;
  int close_in_made, close_in_data;
  async_future *cancel_in_made;
};

static size_t side_data(async_stream *s, const uint8_t *d, size_t n, void *ud) {
  struct side *x = ud;
  if (x->len + n <= sizeof x->buf) {
    memcpy(x->buf + x->len, d, n);
    x->len += n;
  }
  if (x->close_in_data) async_stream_close(s);
  return n;
}

static void side_made(async_stream *s, void *ud) {
  struct side *x = ud;
  x->s = s;
  x->made++;
  if (x->close_in_made) async_stream_close(s);
  if (x->cancel_in_made) async_future_cancel(x->cancel_in_made);
}

static void side_lost(async_stream *s, int err, void *ud) {
  (void)s;
  struct side *x = ud;
  x->lost++;
  x->lost_err = err;
}

static void side_release(void *ud) {
  struct side *x = ud;
  x->released++;
  if (g_depth) x->released_in_call++;
}

static const async_stream_protocol side_protocol = {
    sizeof(async_stream_protocol), side_made, side_data, NULL, side_lost, NULL, NULL, NULL, side_release, 0, NULL,
};

static int c_released(void *a) { return ((struct side *)a)->released != 0; }
static size_t g_want;
static int c_len(void *a) { return ((struct side *)a)->len >= g_want; }
static int c_done(void *a) { return async_future_get_state(a) != ASYNC_FUTURE_PENDING; }

/* A proxy, an echo server behind it, and a stream connected to the proxy. */
struct rig {
  struct env e;
  struct socks5_server proxy;
  async_server *echo;
  uint16_t echo_port;
  async_future *connect;
  async_stream *lower;
  struct side lower_side, up;
};

static struct rig *rig_new(const struct socks5_config *cfg) {
  struct rig *r = calloc(1, sizeof *r);
  assert_non_null(r);
  env_init(&r->e);
  socks5_server_start(&r->proxy, r->e.loop, cfg);
  r->echo = tu_echo_server(r->e.loop, "127.0.0.1", 0);
  r->echo_port = (uint16_t)async_server_port(r->echo);
  assert_int_equal(
      async_tcp_connect(&r->connect, r->e.loop, "127.0.0.1", r->proxy.port, NULL, &side_protocol, &r->lower_side),
      0);
  assert_true(run_until(&r->e, c_done, r->connect, NULL, NULL, 3000));
  void *value = NULL;
  assert_int_equal(async_future_result(&value, r->connect), 0);
  r->lower = value;
  return r;
}

static void rig_free(struct rig *r) {
  socks5_server_stop(&r->proxy);
  tu_close(async_server_handle(r->echo));
  async_future_free(r->connect);
  env_finish(&r->e);
  free(r);
}

/* Pushes SOCKS5 toward the echo server (host NULL: 127.0.0.1) and runs
 * until the future completes; returns its status. */
static int push_and_wait(struct rig *r, const char *host, const char *user, const char *pass, async_future **out) {
  async_future *f = NULL;
  assert_int_equal(LIB(async_layer_push_socks5(&f, r->lower, host ? host : "127.0.0.1", r->echo_port, user, pass,
                                               &side_protocol, &r->up)),
                   0);
  assert_int_equal(r->up.released, 0);
  assert_true(run_until(&r->e, c_done, f, NULL, NULL, 3000));
  int status = async_future_result(NULL, f);
  if (out)
    *out = f;
  else
    async_future_free(f);
  return status;
}

/* The tunnel echoes len bytes written on the stream above. */
static void check_echo(struct rig *r, async_stream *upper, size_t len) {
  uint8_t *data = malloc(len);
  for (size_t i = 0; i < len; i++) data[i] = (uint8_t)(i * 7 + 3);
  size_t before = r->up.len;
  assert_int_equal(async_stream_write(upper, data, len), 0);
  g_want = before + len;
  assert_true(run_until(&r->e, c_len, &r->up, NULL, NULL, 5000));
  assert_memory_equal(r->up.buf + before, data, len);
  free(data);
}

/* A failed handshake: the protocol saw nothing but its release (from the
 * loop), and the stream to the proxy was aborted. */
static int c_lower_gone(void *a) { return async_stream_write_buffer_size(&(size_t){0}, a) == ASYNC_ECLOSED; }

static void check_failed(struct rig *r) {
  assert_true(run_until(&r->e, c_released, &r->up, NULL, NULL, 3000));
  assert_true(run_until(&r->e, c_lower_gone, r->lower, NULL, NULL, 3000));
  assert_int_equal(r->up.made, 0);
  assert_int_equal(r->up.lost, 0);
  assert_int_equal(r->up.released, 1);
  assert_int_equal(r->up.released_in_call, 0);
  assert_int_equal(r->lower_side.released, 1);
}

/* ------------------------------------------------------------------ */

static void test_no_auth(void **state) {
  (void)state;
  struct rig *r = rig_new(NULL);
  async_future *f = NULL;
  assert_int_equal(push_and_wait(r, NULL, NULL, NULL, &f), 0);
  /* The old protocol of the stream below was released inside the push. */
  assert_int_equal(r->lower_side.released, 1);
  assert_int_equal(r->lower_side.lost, 0);
  void *value = NULL;
  assert_int_equal(async_future_result(&value, f), 0);
  async_stream *upper = value;
  assert_ptr_equal(upper, r->up.s);
  assert_int_equal(r->up.made, 1);
  assert_int_equal(async_layer_is_layered(upper), 1);
  assert_int_equal(r->proxy.connects, 1);
  assert_int_equal(r->proxy.last_type, 1);
  assert_string_equal(r->proxy.last_host, "127.0.0.1");
  assert_int_equal(r->proxy.last_port, r->echo_port);
  check_echo(r, upper, 64 * 1024);
  assert_int_equal(async_stream_close(upper), 0);
  assert_true(run_until(&r->e, c_released, &r->up, NULL, NULL, 3000));
  assert_int_equal(r->up.lost, 1);
  assert_int_equal(r->up.lost_err, 0);
  async_future_free(f);
  rig_free(r);
}

static void test_name_and_ipv6_literal(void **state) {
  (void)state;
  struct rig *r = rig_new(NULL);
  assert_int_equal(push_and_wait(r, "localhost", NULL, NULL, NULL), 0);
  assert_int_equal(r->proxy.last_type, 3);
  assert_string_equal(r->proxy.last_host, "localhost");
  check_echo(r, r->up.s, 100);
  async_stream_close(r->up.s);
  rig_free(r);

  /* A numeric IPv6 host goes as an address (the connect to ::1 may fail
   * on a host without IPv6: the request is what is checked). */
  r = rig_new(NULL);
  int status = push_and_wait(r, "::1", NULL, NULL, NULL);
  assert_int_equal(r->proxy.last_type, 4);
  assert_string_equal(r->proxy.last_host, "::1");
  if (status == 0) async_stream_close(r->up.s);
  rig_free(r);
}

static void test_addr_and_bound_types(void **state) {
  (void)state;
  for (uint8_t type = 1; type <= 4; type++) {
    if (type == 2) continue;
    struct socks5_config cfg = {.bound_type = type};
    struct rig *r = rig_new(&cfg);
    struct sockaddr_in sin = {0};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(r->echo_port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    async_future *f = NULL;
    assert_int_equal(LIB(async_layer_push_socks5_addr(&f, r->lower, (struct sockaddr *)&sin, sizeof sin, NULL, NULL,
                                                      &side_protocol, &r->up)),
                     0);
    assert_true(run_until(&r->e, c_done, f, NULL, NULL, 3000));
    assert_int_equal(async_future_result(NULL, f), 0);
    assert_int_equal(r->proxy.last_type, 1);
    assert_int_equal(r->proxy.last_port, r->echo_port);
    check_echo(r, r->up.s, 10);
    async_stream_close(r->up.s);
    async_future_free(f);
    rig_free(r);
  }
}

static void test_auth(void **state) {
  (void)state;
  struct socks5_config cfg = {.username = "alice", .password = "s3cret"};
  struct rig *r = rig_new(&cfg);
  assert_int_equal(push_and_wait(r, NULL, "alice", "s3cret", NULL), 0);
  assert_int_equal(r->proxy.auths, 1);
  check_echo(r, r->up.s, 1000);
  async_stream_close(r->up.s);
  rig_free(r);

  /* Credentials offered to a proxy that needs none: it picks no-auth. */
  r = rig_new(NULL);
  assert_int_equal(push_and_wait(r, NULL, "alice", NULL, NULL), 0);
  assert_int_equal(r->proxy.auths, 0);
  check_echo(r, r->up.s, 10);
  async_stream_close(r->up.s);
  rig_free(r);
}

static void test_auth_rejected(void **state) {
  (void)state;
  struct socks5_config cfg = {.username = "alice", .password = "s3cret"};
  struct rig *r = rig_new(&cfg);
  assert_int_equal(push_and_wait(r, NULL, "alice", "wrong", NULL), ASYNC_EACCES);
  check_failed(r);
  assert_int_equal(r->proxy.connects, 0);
  rig_free(r);

  /* No credentials for a proxy that wants them: no acceptable method. */
  r = rig_new(&cfg);
  assert_int_equal(push_and_wait(r, NULL, NULL, NULL, NULL), ASYNC_EACCES);
  check_failed(r);
  rig_free(r);
}

static void test_reply_codes(void **state) {
  (void)state;
  static const struct {
    uint8_t rep;
    int err;
  } codes[] = {
      {1, ASYNC_EPROTO},       {2, ASYNC_EACCES},    {3, ASYNC_ENETUNREACH}, {4, ASYNC_EHOSTUNREACH},
      {5, ASYNC_ECONNREFUSED}, {6, ASYNC_ETIMEDOUT}, {7, ASYNC_ENOTSUP},     {8, ASYNC_ENOTSUP},
      {9, ASYNC_EPROTO},       {0xFF, ASYNC_EPROTO},
  };
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
    for (int drip = 0; drip <= 1; drip++) {
      struct socks5_config cfg = {.reply = codes[i].rep, .byte_by_byte = drip};
      struct rig *r = rig_new(&cfg);
      assert_int_equal(push_and_wait(r, NULL, NULL, NULL, NULL), codes[i].err);
      check_failed(r);
      rig_free(r);
    }
  }
}

static void test_refused_target(void **state) {
  (void)state;
  struct rig *r = rig_new(NULL);
  /* A server's port once it is closed: nothing listens there. */
  async_server *gone = tu_echo_server(r->e.loop, "127.0.0.1", 0);
  uint16_t port = (uint16_t)async_server_port(gone);
  tu_server_close(r->e.loop, gone);
  async_future *f = NULL;
  assert_int_equal(async_layer_push_socks5(&f, r->lower, "127.0.0.1", port, NULL, NULL, &side_protocol, &r->up), 0);
  assert_true(run_until(&r->e, c_done, f, NULL, NULL, 3000));
  assert_int_equal(async_future_result(NULL, f), ASYNC_ECONNREFUSED);
  async_future_free(f);
  check_failed(r);
  rig_free(r);
}

/* Every reply byte in a read of its own, with auth, and the tunnel's first
 * bytes right behind the success reply: they are the protocol's. */
static void test_byte_by_byte(void **state) {
  (void)state;
  static const uint8_t banner[] = "220 hello\r\n";
  for (uint8_t type = 1; type <= 4; type++) {
    if (type == 2) continue;
    struct socks5_config cfg = {.username = "u",
                                .password = "",
                                .byte_by_byte = 1,
                                .bound_type = type,
                                .after_reply = banner,
                                .after_reply_len = sizeof banner - 1};
    struct rig *r = rig_new(&cfg);
    assert_int_equal(push_and_wait(r, NULL, "u", NULL, NULL), 0);
    g_want = sizeof banner - 1;
    assert_true(run_until(&r->e, c_len, &r->up, NULL, NULL, 3000));
    assert_int_equal(r->up.len, sizeof banner - 1);
    assert_memory_equal(r->up.buf, banner, sizeof banner - 1);
    check_echo(r, r->up.s, 300);
    async_stream_close(r->up.s);
    rig_free(r);
  }
}

static void test_malformed(void **state) {
  (void)state;
  static const uint8_t bad_version[] = {4, 0};
  static const uint8_t not_offered[] = {5, 2};
  static const uint8_t bad_auth_version[] = {5, 0};
  static const uint8_t bad_rsv[] = {5, 0, 1, 1, 127, 0, 0, 1, 0, 80};
  static const uint8_t bad_type[] = {5, 0, 0, 9, 127, 0, 0, 1, 0, 80};
  static const uint8_t bad_reply_version[] = {4, 0, 0, 1, 127, 0, 0, 1, 0, 80};
  struct socks5_config cfgs[] = {
      {.method_reply = bad_version, .method_reply_len = 2},
      {.method_reply = not_offered, .method_reply_len = 2},
      {.username = "u", .password = "p", .auth_reply = bad_auth_version, .auth_reply_len = 2},
      {.connect_reply = bad_rsv, .connect_reply_len = sizeof bad_rsv},
      {.connect_reply = bad_type, .connect_reply_len = sizeof bad_type},
      {.connect_reply = bad_reply_version, .connect_reply_len = sizeof bad_reply_version, .byte_by_byte = 1},
  };
  for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) {
    struct rig *r = rig_new(&cfgs[i]);
    assert_int_equal(push_and_wait(r, NULL, cfgs[i].username, cfgs[i].password, NULL), ASYNC_EPROTO);
    check_failed(r);
    rig_free(r);
  }
}

/* The proxy closes after 0 (on the greeting), 1, 2 (the method reply),
 * 3 (the auth reply's first byte), 4 (the auth reply) and 9 bytes (inside
 * the connect reply). */
static void test_proxy_closes_early(void **state) {
  (void)state;
  static const size_t points[] = {0, 1, 2, 3, 4, 9};
  for (size_t i = 0; i < sizeof points / sizeof points[0]; i++) {
    struct socks5_config cfg = {
        .username = "u", .password = "p", .close_early = 1, .close_after = points[i], .byte_by_byte = 1};
    struct rig *r = rig_new(&cfg);
    assert_int_equal(push_and_wait(r, NULL, "u", "p", NULL), ASYNC_EEOF);
    check_failed(r);
    rig_free(r);
  }
}

static void test_cancel(void **state) {
  (void)state;
  for (int how = 0; how < 3; how++) {
    struct socks5_config cfg = {.silent = 1};
    struct rig *r = rig_new(&cfg);
    async_future *f = NULL;
    assert_int_equal(async_layer_push_socks5(&f, r->lower, "127.0.0.1", r->echo_port, NULL, NULL, &side_protocol,
                                             &r->up),
                     0);
    run_for(&r->e, 20, NULL, NULL);
    assert_int_equal(async_future_get_state(f), ASYNC_FUTURE_PENDING);
    if (how == 0) {
      assert_int_equal(LIB(async_future_cancel(f)), 1);
      assert_int_equal(async_future_get_state(f), ASYNC_FUTURE_CANCELLED);
      async_future_free(f);
    } else if (how == 1) {
      assert_int_equal(LIB(async_future_free(f)), 0);
    } else {
      /* A timeout bounds the handshake: the input is cancelled. */
      async_future *t = NULL;
      assert_int_equal(async_future_timeout(&t, f, 30), 0);
      assert_true(run_until(&r->e, c_done, t, NULL, NULL, 3000));
      assert_int_equal(async_future_result(NULL, t), ASYNC_ETIMEDOUT);
      assert_int_equal(async_future_get_state(f), ASYNC_FUTURE_CANCELLED);
      async_future_free(t);
      async_future_free(f);
    }
    assert_int_equal(r->up.released, 0); /* never inside the cancelling call */
    check_failed(r);
    rig_free(r);
  }
}

/* Cancelled inside connection_made: the tunnel stream is aborted and ends
 * through connection_lost and release. */
static void test_cancel_in_made(void **state) {
  (void)state;
  struct rig *r = rig_new(NULL);
  async_future *f = NULL;
  assert_int_equal(
      async_layer_push_socks5(&f, r->lower, "127.0.0.1", r->echo_port, NULL, NULL, &side_protocol, &r->up), 0);
  r->up.cancel_in_made = f;
  assert_true(run_until(&r->e, c_released, &r->up, NULL, NULL, 3000));
  assert_int_equal(async_future_get_state(f), ASYNC_FUTURE_CANCELLED);
  assert_int_equal(r->up.made, 1);
  assert_int_equal(r->up.lost, 1);
  assert_int_equal(r->up.lost_err, ASYNC_ECANCELED);
  assert_int_equal(r->up.released, 1);
  async_future_free(f);
  rig_free(r);
}

static void test_close_in_callbacks(void **state) {
  (void)state;
  /* Closed inside connection_made: the future fails with ASYNC_ECLOSED. */
  struct rig *r = rig_new(NULL);
  r->up.close_in_made = 1;
  assert_int_equal(push_and_wait(r, NULL, NULL, NULL, NULL), ASYNC_ECLOSED);
  assert_true(run_until(&r->e, c_released, &r->up, NULL, NULL, 3000));
  assert_int_equal(r->up.lost, 1);
  assert_int_equal(r->up.lost_err, 0);
  rig_free(r);

  /* Closed inside data_received with the proxy's bytes after its reply. */
  static const uint8_t banner[] = "hi";
  struct socks5_config cfg = {.after_reply = banner, .after_reply_len = 2};
  r = rig_new(&cfg);
  r->up.close_in_data = 1;
  assert_int_equal(push_and_wait(r, NULL, NULL, NULL, NULL), 0);
  assert_true(run_until(&r->e, c_released, &r->up, NULL, NULL, 3000));
  assert_int_equal(r->up.len, 2);
  assert_int_equal(r->up.lost, 1);
  rig_free(r);
}

/* The stream below lost during the handshake (aborted by its owner). */
static void test_lower_lost(void **state) {
  (void)state;
  struct socks5_config cfg = {.silent = 1};
  struct rig *r = rig_new(&cfg);
  async_future *f = NULL;
  assert_int_equal(
      async_layer_push_socks5(&f, r->lower, "127.0.0.1", r->echo_port, NULL, NULL, &side_protocol, &r->up), 0);
  run_for(&r->e, 10, NULL, NULL);
  assert_int_equal(async_stream_abort(r->lower), 0);
  assert_true(run_until(&r->e, c_done, f, NULL, NULL, 3000));
  assert_int_equal(async_future_result(NULL, f), ASYNC_ECLOSED);
  async_future_free(f);
  check_failed(r);
  rig_free(r);
}

static void test_bad_input(void **state) {
  (void)state;
  struct rig *r = rig_new(NULL);
  async_future *f = NULL;
  char long_name[300];
  memset(long_name, 'a', sizeof long_name);
  long_name[256] = 0;
  char name255[256];
  memset(name255, 'a', 255);
  name255[255] = 0;
  uint16_t p = r->echo_port;
  async_stream *lo = r->lower;
  const async_stream_protocol *sp = &side_protocol;
  void *ud = &r->up;
  assert_int_equal(async_layer_push_socks5(NULL, lo, "h", p, NULL, NULL, sp, ud), ASYNC_EINVAL);
  assert_int_equal(async_layer_push_socks5(&f, NULL, "h", p, NULL, NULL, sp, ud), ASYNC_EINVAL);
  assert_int_equal(async_layer_push_socks5(&f, lo, NULL, p, NULL, NULL, sp, ud), ASYNC_EINVAL);
  assert_int_equal(async_layer_push_socks5(&f, lo, "h", p, NULL, NULL, NULL, ud), ASYNC_EINVAL);
  assert_int_equal(async_layer_push_socks5(&f, lo, "", p, NULL, NULL, sp, ud), ASYNC_EINVAL);
  assert_int_equal(async_layer_push_socks5(&f, lo, long_name, p, NULL, NULL, sp, ud), ASYNC_EINVAL);
  assert_int_equal(async_layer_push_socks5(&f, lo, "h", p, long_name, "x", sp, ud), ASYNC_EINVAL);
  assert_int_equal(async_layer_push_socks5(&f, lo, "h", p, "u", long_name, sp, ud), ASYNC_EINVAL);
  assert_int_equal(async_layer_push_socks5(&f, lo, "h", p, "", "x", sp, ud), ASYNC_EINVAL);
  assert_int_equal(async_layer_push_socks5(&f, lo, "h", p, NULL, "x", sp, ud), ASYNC_EINVAL);
  /* Wrong object kinds as the stream. */
  assert_int_equal(async_layer_push_socks5(&f, (async_stream *)r->e.loop, "h", p, NULL, NULL, sp, ud), ASYNC_EINVAL);
  assert_int_equal(async_layer_push_socks5(&f, (async_stream *)r->connect, "h", p, NULL, NULL, sp, ud),
                   ASYNC_EINVAL);
  /* A protocol without connection_lost, as async_stream_adopt() refuses. */
  async_stream_protocol bad = side_protocol;
  bad.connection_lost = NULL;
  assert_int_equal(async_layer_push_socks5(&f, lo, "h", p, NULL, NULL, &bad, ud), ASYNC_EINVAL);
  /* Addresses. */
  struct sockaddr_in sin = {0};
  sin.sin_family = AF_INET;
  struct sockaddr_un sun = {0};
  sun.sun_family = AF_UNIX;
  const struct sockaddr *sa = (const struct sockaddr *)&sin;
  assert_int_equal(async_layer_push_socks5_addr(&f, lo, NULL, sizeof sin, NULL, NULL, sp, ud), ASYNC_EINVAL);
  assert_int_equal(async_layer_push_socks5_addr(&f, lo, sa, sizeof sin - 1, NULL, NULL, sp, ud), ASYNC_EINVAL);
  assert_int_equal(async_layer_push_socks5_addr(NULL, lo, sa, sizeof sin, NULL, NULL, sp, ud), ASYNC_EINVAL);
  assert_int_equal(async_layer_push_socks5_addr(&f, lo, sa, sizeof sin, NULL, NULL, NULL, ud), ASYNC_EINVAL);
  assert_int_equal(async_layer_push_socks5_addr(&f, lo, (const struct sockaddr *)&sun, sizeof sun, NULL, NULL, sp,
                                                ud),
                   ASYNC_EINVAL);
  assert_int_equal(async_layer_push_socks5_addr(&f, lo, sa, sizeof sin, "u", long_name, sp, ud), ASYNC_EINVAL);
  /* Nothing changed: the stream below keeps its protocol. */
  assert_int_equal(r->lower_side.released, 0);
  assert_int_equal(r->up.released, 0);
  assert_int_equal(async_future_get_state(r->connect), ASYNC_FUTURE_DONE);

  /* Longest name and credentials are accepted (the proxy resolves the name
   * or not: the handshake goes). */
  assert_int_equal(LIB(async_layer_push_socks5(&f, lo, name255, p, name255, name255, sp, ud)), 0);
  assert_true(run_until(&r->e, c_done, f, NULL, NULL, 5000));
  async_future_free(f);
  assert_true(run_until(&r->e, c_released, &r->up, NULL, NULL, 3000));
  assert_int_equal(r->up.released, 1);
  /* The stream below has ended (the handshake failed): ASYNC_ECLOSED. */
  struct side other = {0};
  assert_true(run_until(&r->e, c_released, &r->lower_side, NULL, NULL, 3000));
  assert_int_equal(async_layer_push_socks5(&f, lo, "h", p, NULL, NULL, sp, &other), ASYNC_ECLOSED);
  rig_free(r);

  /* A stream whose end of file was written: nothing to send the greeting on. */
  r = rig_new(NULL);
  assert_int_equal(async_stream_write_eof(r->lower), 0);
  assert_int_equal(async_layer_push_socks5(&f, r->lower, "h", p, NULL, NULL, sp, &other), ASYNC_ECLOSED);
  assert_int_equal(other.released, 0);
  async_stream_close(r->lower);
  rig_free(r);
}

/* A second push onto the same stream takes it over: the first handshake
 * fails with ASYNC_ECLOSED; each userdata gets one release. */
static void test_push_twice(void **state) {
  (void)state;
  struct socks5_config cfg = {.silent = 1};
  struct rig *r = rig_new(&cfg);
  struct side second = {0};
  async_future *f1 = NULL, *f2 = NULL;
  assert_int_equal(
      async_layer_push_socks5(&f1, r->lower, "127.0.0.1", r->echo_port, NULL, NULL, &side_protocol, &r->up), 0);
  assert_int_equal(
      LIB(async_layer_push_socks5(&f2, r->lower, "127.0.0.1", r->echo_port, NULL, NULL, &side_protocol, &second)),
      0);
  assert_int_equal(async_future_get_state(f1), ASYNC_FUTURE_FAILED);
  assert_int_equal(async_future_result(NULL, f1), ASYNC_ECLOSED);
  assert_int_equal(r->up.released, 1);
  assert_int_equal(second.released, 0);
  async_future_free(f2);
  assert_true(run_until(&r->e, c_released, &second, NULL, NULL, 3000));
  assert_int_equal(second.made + r->up.made, 0);
  async_future_free(f1);
  rig_free(r);
}

/* TCP / RATELIMIT / SOCKS5 / protocol: a stack of two layers, with the
 * limiter shaping the handshake and the tunnel alike; then the SOCKS5
 * layer popped, the limiter's stream going on through the tunnel. */
static void test_over_rate_limiter(void **state) {
  (void)state;
  struct rig *r = rig_new(NULL);
  struct side mid = {0}, after = {0};
  async_stream *limited = NULL;
  assert_int_equal(LIB(async_layer_push_rate_limit(&limited, r->lower, 200000, 200000, &side_protocol, &mid)), 0);
  async_future *f = NULL;
  assert_int_equal(
      LIB(async_layer_push_socks5(&f, limited, "127.0.0.1", r->echo_port, NULL, NULL, &side_protocol, &r->up)), 0);
  assert_int_equal(mid.released, 1);
  assert_true(run_until(&r->e, c_done, f, NULL, NULL, 3000));
  assert_int_equal(async_future_result(NULL, f), 0);
  uint64_t t0 = tu_now_ns();
  check_echo(r, r->up.s, 60000); /* 60 kB each way at 200 kB/s: >= ~250 ms */
  assert_true(tu_elapsed_ms(t0) >= 200);
  /* Pop SOCKS5: the limited stream carries the tunnel on for another protocol. */
  assert_int_equal(async_layer_pop(r->up.s, &side_protocol, &after), 0);
  assert_true(run_until(&r->e, c_released, &r->up, NULL, NULL, 3000));
  assert_int_equal(r->up.lost_err, 0);
  assert_int_equal(async_stream_write(limited, "ping", 4), 0);
  g_want = 4;
  assert_true(run_until(&r->e, c_len, &after, NULL, NULL, 3000));
  assert_memory_equal(after.buf, "ping", 4);
  assert_int_equal(async_stream_close(limited), 0);
  assert_true(run_until(&r->e, c_released, &after, NULL, NULL, 3000));
  async_future_free(f);
  rig_free(r);
  assert_int_equal(after.released, 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_no_auth),
      cmocka_unit_test(test_name_and_ipv6_literal),
      cmocka_unit_test(test_addr_and_bound_types),
      cmocka_unit_test(test_auth),
      cmocka_unit_test(test_auth_rejected),
      cmocka_unit_test(test_reply_codes),
      cmocka_unit_test(test_refused_target),
      cmocka_unit_test(test_byte_by_byte),
      cmocka_unit_test(test_malformed),
      cmocka_unit_test(test_proxy_closes_early),
      cmocka_unit_test(test_cancel),
      cmocka_unit_test(test_cancel_in_made),
      cmocka_unit_test(test_close_in_callbacks),
      cmocka_unit_test(test_lower_lost),
      cmocka_unit_test(test_bad_input),
      cmocka_unit_test(test_push_twice),
      cmocka_unit_test(test_over_rate_limiter),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
