/*
 * The TLS layer (async/tls.h) against itself and against real peers:
 * libasync client and server in one process over a socketpair or TCP,
 * `openssl s_server` / `openssl s_client` and `socat OPENSSL` started here
 * on 127.0.0.1 with a free port. Certificates (a CA, server, client,
 * expired, wrong-host) are made fresh by tls_certs.sh (argv[1]) in a
 * temporary directory at the start, removed at the end.
 *
 * Callbacks never assert (a cmocka failure would longjmp through the
 * library): they record, and the test checks afterwards.
 */
#include "loop_env.h"
#include "test_util.h"

#include <async.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define OPENSSL_BIN "/usr/bin/openssl"
#define SOCAT "/usr/bin/socat"

static char g_dir[256];    /* the certificates */
static const char *g_certs_script;

static const char *path(const char *name) {
  static char buf[8][512];
  static int next;
  char *p = buf[next++ % 8];
  snprintf(p, 512, "%s/%s", g_dir, name);
  return p;
}

/* ---- a recording protocol ------------------------------------------------ */

struct side {
  async_stream *s;
  uint8_t *buf;
  size_t len, cap;
  int made, eof, lost, lost_err, released;
  int eof_keep;             /* eof_received's return */
  int verify_code;          /* async_tls_verify_error() in connection_lost */
  char verify_reason[128];
  const char *close_after;  /* close once this text came in */
  /* Called from data_received after recording. */
  void (*on_data)(struct side *side);
};

static size_t side_data(async_stream *s, const uint8_t *d, size_t n, void *ud) {
  struct side *x = ud;
  x->s = s;
  if (x->len + n + 1 > x->cap) {
    x->cap = (x->len + n + 1) * 2;
    x->buf = realloc(x->buf, x->cap);
  }
  memcpy(x->buf + x->len, d, n);
  x->len += n;
  x->buf[x->len] = 0;
  if (x->close_after && strstr((char *)x->buf, x->close_after)) async_stream_close(s);
  if (x->on_data) x->on_data(x);
  return n;
}

static void side_made(async_stream *s, void *ud) {
  struct side *x = ud;
  x->s = s;
  x->made++;
}

static int side_eof(async_stream *s, void *ud) {
  (void)s;
  struct side *x = ud;
  x->eof++;
  return x->eof_keep;
}

static void side_lost(async_stream *s, int err, void *ud) {
  struct side *x = ud;
  x->lost++;
  x->lost_err = err;
  const char *reason = NULL;
  x->verify_code = async_tls_verify_error(&reason, s);
  if (reason) snprintf(x->verify_reason, sizeof x->verify_reason, "%s", reason);
}

static void side_release(void *ud) { ((struct side *)ud)->released++; }

static const async_stream_protocol side_protocol = {
    sizeof(async_stream_protocol), side_made, side_data, side_eof, side_lost, NULL, NULL, NULL, side_release, 0, NULL,
};

/* A pop's protocol: bytes that came behind close_notify in one read are
 * presented at once, not with the next ones. */
static const async_stream_protocol each_protocol = {
    sizeof(async_stream_protocol), side_made, side_data, side_eof, side_lost, NULL, NULL, NULL, side_release,
    ASYNC_STREAM_DELIVER_EACH, NULL,
};

static void side_free(struct side *x) {
  free(x->buf);
  x->buf = NULL;
}

static int c_made(void *a) { return ((struct side *)a)->made != 0; }
static int c_released(void *a) { return ((struct side *)a)->released != 0; }
static int c_some(void *a) { return ((struct side *)a)->len > 0; }
static int c_eof(void *a) { return ((struct side *)a)->eof != 0; }
static size_t g_want;
static int c_len(void *a) { return ((struct side *)a)->len >= g_want; }

/* ---- contexts ------------------------------------------------------------ */

static async_tls_context *client_ctx(const char *ca, uint32_t flags, const char *alpn) {
  async_tls_options o = ASYNC_TLS_OPTIONS_INIT;
  o.ca_file = ca ? path(ca) : NULL;
  o.flags = flags;
  o.alpn = alpn;
  async_tls_context *ctx = NULL;
  assert_int_equal(async_tls_context_new(&ctx, ASYNC_TLS_CLIENT, &o), 0);
  return ctx;
}

static async_tls_context *server_ctx(const char *name, uint32_t flags, const char *alpn) {
  char cert[64], key[64];
  snprintf(cert, sizeof cert, "%s.pem", name);
  snprintf(key, sizeof key, "%s.key", name);
  async_tls_options o = ASYNC_TLS_OPTIONS_INIT;
  o.cert_file = path(cert);
  o.key_file = path(key);
  o.ca_file = path("ca.pem");
  o.flags = flags;
  o.alpn = alpn;
  async_tls_context *ctx = NULL;
  assert_int_equal(async_tls_context_new(&ctx, ASYNC_TLS_SERVER, &o), 0);
  return ctx;
}

/* ---- in process: two stacks over a socketpair ----------------------------- */

struct pair {
  struct env e;
  async_stream *a, *b; /* the plain streams: a client's, b server's */
  struct side a_plain, b_plain;
  async_stream *client, *server; /* above TLS */
  struct side cs, ss;
  async_future *client_hs, *server_hs;
};

static void pair_open(struct pair *p) {
  memset(p, 0, sizeof *p);
  env_init(&p->e);
  int fd[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
  assert_int_equal(async_stream_adopt(&p->a, p->e.loop, fd[0], &side_protocol, &p->a_plain), 0);
  assert_int_equal(async_stream_adopt(&p->b, p->e.loop, fd[1], &side_protocol, &p->b_plain), 0);
}

static void pair_push(struct pair *p, async_tls_context *cctx, const char *name, async_tls_context *sctx) {
  assert_int_equal(LIB(async_tls_push(&p->client, &p->client_hs, p->a, cctx, name, &side_protocol, &p->cs)), 0);
  assert_int_equal(LIB(async_tls_push(&p->server, &p->server_hs, p->b, sctx, NULL, &side_protocol, &p->ss)), 0);
  assert_int_equal(p->cs.made + p->ss.made, 0); /* from the loop */
}

static int c_both_done(void *a) {
  struct pair *p = a;
  return async_future_get_state(p->client_hs) != ASYNC_FUTURE_PENDING &&
         async_future_get_state(p->server_hs) != ASYNC_FUTURE_PENDING;
}

static int c_both_released(void *a) {
  struct pair *p = a;
  return p->cs.released && p->ss.released;
}

static void pair_finish(struct pair *p) {
  if (p->client_hs) assert_int_equal(async_future_free(p->client_hs), 0);
  if (p->server_hs) assert_int_equal(async_future_free(p->server_hs), 0);
  env_finish(&p->e);
  side_free(&p->cs);
  side_free(&p->ss);
  side_free(&p->a_plain);
  side_free(&p->b_plain);
}

static int status_of(async_future *f) {
  void *v = NULL;
  return async_future_result(&v, f);
}

/* Handshake, ALPN, version, bytes both ways, close_notify from the client:
 * the server sees eof_received, answers with its own, both end with 0. */
static void test_loopback(void **state) {
  (void)state;
  async_tls_context *cctx = client_ctx("ca.pem", 0, "h2,http/1.1");
  async_tls_context *sctx = server_ctx("server", 0, "http/1.1,h2");
  struct pair p;
  pair_open(&p);
  pair_push(&p, cctx, "localhost", sctx);
  /* The stacks hold their contexts: the caller's references may go now. */
  assert_int_equal(async_tls_context_release(cctx), 0);
  assert_int_equal(async_tls_context_release(sctx), 0);
  assert_int_equal(async_tls_version(p.client), 0); /* not done yet */
  assert_true(run_until(&p.e, c_both_done, &p, NULL, NULL, 20000));
  assert_int_equal(status_of(p.client_hs), 0);
  assert_int_equal(status_of(p.server_hs), 0);
  char alpn[32];
  assert_int_equal(async_tls_alpn(alpn, sizeof alpn, p.client), 8);
  assert_string_equal(alpn, "http/1.1"); /* the server's preference */
  assert_int_equal(async_tls_alpn(alpn, sizeof alpn, p.server), 8);
  assert_int_equal(async_tls_alpn(alpn, 8, p.server), ASYNC_ERANGE);
  assert_int_equal(async_tls_version(p.client), 0x0304);
  assert_int_equal(async_tls_resumed(p.client), 0);
  const char *reason = NULL;
  assert_int_equal(async_tls_verify_error(&reason, p.client), 0);
  assert_string_equal(reason, "ok");

  assert_int_equal(async_stream_write(p.client, "ping", 4), 0);
  g_want = 4;
  assert_true(run_until(&p.e, c_len, &p.ss, NULL, NULL, 2000));
  assert_string_equal((char *)p.ss.buf, "ping");
  assert_int_equal(async_stream_write(p.server, "pong!", 5), 0);
  g_want = 5;
  assert_true(run_until(&p.e, c_len, &p.cs, NULL, NULL, 2000));
  assert_string_equal((char *)p.cs.buf, "pong!");
  /* The plain streams saw ciphertext only. */
  assert_int_equal(p.a_plain.len + p.b_plain.len, 0);

  assert_int_equal(async_stream_close(p.client), 0);
  assert_true(run_until(&p.e, c_both_released, &p, NULL, NULL, 2000));
  assert_int_equal(p.ss.eof, 1);
  assert_int_equal(p.ss.lost_err, 0);
  assert_int_equal(p.cs.lost_err, 0);
  assert_int_equal(p.cs.lost, 1);
  assert_int_equal(p.ss.lost, 1);
  pair_finish(&p);
}


/* Runs a pair to the end of both handshakes with fresh contexts; the
 * contexts' references are the caller's. */
static void pair_handshake(struct pair *p, async_tls_context *cctx, const char *name, async_tls_context *sctx) {
  pair_open(p);
  pair_push(p, cctx, name, sctx);
  assert_true(run_until(&p->e, c_both_done, p, NULL, NULL, 20000)); /* valgrind is slow */
}

/* A client whose server certificate fails: ECERT on the client with the
 * reason, in connection_lost and on the handshake future. */
static void expect_cert_failure(const char *ca, const char *server, const char *name, const char *reason) {
  async_tls_context *cctx = client_ctx(ca, 0, NULL);
  async_tls_context *sctx = server_ctx(server, 0, NULL);
  struct pair p;
  pair_handshake(&p, cctx, name, sctx);
  assert_int_equal(status_of(p.client_hs), ASYNC_ECERT);
  assert_true(run_until(&p.e, c_both_released, &p, NULL, NULL, 3000));
  assert_int_equal(p.cs.lost_err, ASYNC_ECERT);
  assert_string_equal(p.cs.verify_reason, reason);
  assert_true(p.cs.verify_code > 0);
  assert_int_equal(p.cs.made, 1);
  assert_int_equal(p.cs.lost, 1);
  assert_int_equal(p.ss.lost, 1);
  assert_int_equal(p.ss.lost_err, ASYNC_ETLS); /* the client's alert */
  assert_int_equal(status_of(p.server_hs), ASYNC_ETLS);
  pair_finish(&p);
  async_tls_context_release(cctx);
  async_tls_context_release(sctx);
}

static void test_verify_failures(void **state) {
  (void)state;
  expect_cert_failure("other-ca.pem", "server", "localhost", "self-signed certificate in certificate chain");
  expect_cert_failure("ca.pem", "expired", "localhost", "certificate has expired");
  expect_cert_failure("ca.pem", "wronghost", "localhost", "hostname mismatch");
  expect_cert_failure("ca.pem", "server", "other.test", "hostname mismatch");
  /* IP-address SANs: 127.0.0.1 and ::1 are in the certificate, 10.0.0.1 is not. */
  expect_cert_failure("ca.pem", "server", "10.0.0.1", "IP address mismatch");
  const char *good[] = {"127.0.0.1", "::1", "LOCALHOST"};
  for (size_t i = 0; i < 3; i++) {
    async_tls_context *cctx = client_ctx("ca.pem", 0, NULL);
    async_tls_context *sctx = server_ctx("server", 0, NULL);
    struct pair p;
    pair_handshake(&p, cctx, good[i], sctx);
    assert_int_equal(status_of(p.client_hs), 0);
    assert_int_equal(async_stream_close(p.client), 0);
    assert_true(run_until(&p.e, c_both_released, &p, NULL, NULL, 3000));
    pair_finish(&p);
    async_tls_context_release(cctx);
    async_tls_context_release(sctx);
  }
  /* ASYNC_TLS_NO_VERIFY: the untrusted certificate is accepted. */
  async_tls_context *cctx = client_ctx(NULL, ASYNC_TLS_NO_VERIFY, NULL);
  async_tls_context *sctx = server_ctx("wronghost", 0, NULL);
  struct pair p;
  pair_handshake(&p, cctx, NULL, sctx);
  assert_int_equal(status_of(p.client_hs), 0);
  assert_int_equal(async_stream_close(p.client), 0);
  assert_true(run_until(&p.e, c_both_released, &p, NULL, NULL, 3000));
  pair_finish(&p);
  async_tls_context_release(cctx);
  async_tls_context_release(sctx);
}

/* Client certificates: a server that wants one gets it; without one its
 * handshake fails (ETLS), and so does the client's connection. */
static void test_client_certificate(void **state) {
  (void)state;
  async_tls_options o = ASYNC_TLS_OPTIONS_INIT;
  o.ca_file = path("ca.pem");
  o.cert_file = path("client.pem");
  o.key_file = path("client.key");
  async_tls_context *with_cert = NULL;
  assert_int_equal(async_tls_context_new(&with_cert, ASYNC_TLS_CLIENT, &o), 0);
  async_tls_context *without = client_ctx("ca.pem", 0, NULL);
  async_tls_context *sctx = server_ctx("server", ASYNC_TLS_VERIFY_CLIENT, NULL);

  struct pair p;
  pair_handshake(&p, with_cert, "localhost", sctx);
  assert_int_equal(status_of(p.client_hs), 0);
  assert_int_equal(status_of(p.server_hs), 0);
  assert_int_equal(async_stream_close(p.server), 0);
  assert_true(run_until(&p.e, c_both_released, &p, NULL, NULL, 3000));
  assert_int_equal(p.cs.lost_err, 0);
  assert_int_equal(p.ss.lost_err, 0);
  pair_finish(&p);

  pair_handshake(&p, without, "localhost", sctx);
  assert_int_equal(status_of(p.server_hs), ASYNC_ETLS);
  assert_true(run_until(&p.e, c_both_released, &p, NULL, NULL, 3000));
  assert_int_equal(p.ss.lost_err, ASYNC_ETLS);
  assert_int_equal(p.cs.lost_err, ASYNC_ETLS); /* the server's alert */
  pair_finish(&p);
  async_tls_context_release(with_cert);
  async_tls_context_release(without);
  async_tls_context_release(sctx);
}

/* The client context's session cache: a second connection with the same
 * context to the same name resumes, one to another name does not. */
static void test_resumption(void **state) {
  (void)state;
  async_tls_context *cctx = client_ctx("ca.pem", 0, NULL);
  async_tls_context *sctx = server_ctx("server", 0, NULL);
  const char *names[] = {"localhost", "localhost", "127.0.0.1"};
  int want[] = {0, 1, 0};
  for (int i = 0; i < 3; i++) {
    struct pair p;
    pair_handshake(&p, cctx, names[i], sctx);
    assert_int_equal(status_of(p.client_hs), 0);
    /* TLS 1.3 tickets come after the handshake: exchange data first. */
    assert_int_equal(async_stream_write(p.server, "x", 1), 0);
    g_want = 1;
    assert_true(run_until(&p.e, c_len, &p.cs, NULL, NULL, 2000));
    assert_int_equal(async_tls_resumed(p.client), want[i]);
    assert_int_equal(async_tls_resumed(p.server), want[i]);
    assert_int_equal(async_stream_close(p.client), 0);
    assert_true(run_until(&p.e, c_both_released, &p, NULL, NULL, 3000));
    pair_finish(&p);
  }
  async_tls_context_release(cctx);
  async_tls_context_release(sctx);
}

/* An end of file without close_notify is ETRUNCATED, on both sides of the
 * handshake; a clean close after write_eof is 0. */
static void test_truncation(void **state) {
  (void)state;
  async_tls_context *cctx = client_ctx("ca.pem", 0, NULL);
  async_tls_context *sctx = server_ctx("server", 0, NULL);
  struct pair p;
  pair_handshake(&p, cctx, "localhost", sctx);
  assert_int_equal(status_of(p.client_hs), 0);
  /* Past the layer: the server's socket closes without close_notify. */
  assert_int_equal(async_stream_abort(p.b), 0);
  assert_true(run_until(&p.e, c_both_released, &p, NULL, NULL, 3000));
  assert_int_equal(p.cs.lost_err, ASYNC_ETRUNCATED);
  assert_int_equal(p.cs.eof, 0);
  pair_finish(&p);

  /* Before the handshake is done: the handshake future fails too. */
  pair_open(&p);
  assert_int_equal(async_tls_push(&p.client, &p.client_hs, p.a, cctx, "localhost", &side_protocol, &p.cs), 0);
  g_want = 1;
  assert_true(run_until(&p.e, c_len, &p.b_plain, NULL, NULL, 2000)); /* the hello */
  assert_int_equal(async_stream_close(p.b), 0);
  assert_true(run_until(&p.e, c_released, &p.cs, NULL, NULL, 3000));
  assert_int_equal(p.cs.lost_err, ASYNC_ETRUNCATED);
  assert_int_equal(status_of(p.client_hs), ASYNC_ETRUNCATED);
  pair_finish(&p);

  /* write_eof sends close_notify; the server writes on, then closes. */
  pair_handshake(&p, cctx, "localhost", sctx);
  p.ss.eof_keep = 1;
  assert_int_equal(async_stream_write(p.client, "last", 4), 0);
  assert_int_equal(async_stream_write_eof(p.client), 0);
  assert_true(run_until(&p.e, c_eof, &p.ss, NULL, NULL, 2000));
  assert_string_equal((char *)p.ss.buf, "last");
  assert_int_equal(async_stream_write(p.server, "answer", 6), 0);
  assert_int_equal(async_stream_close(p.server), 0);
  assert_true(run_until(&p.e, c_both_released, &p, NULL, NULL, 3000));
  assert_string_equal((char *)p.cs.buf, "answer");
  assert_int_equal(p.cs.eof, 1);
  assert_int_equal(p.cs.lost_err, 0);
  assert_int_equal(p.ss.lost_err, 0);
  pair_finish(&p);
  async_tls_context_release(cctx);
  async_tls_context_release(sctx);
}

/* A peer that does not speak TLS: EPROTO, not a failed negotiation. */
static void test_not_tls(void **state) {
  (void)state;
  async_tls_context *sctx = server_ctx("server", 0, NULL);
  struct pair p;
  pair_open(&p);
  assert_int_equal(async_tls_push(&p.server, &p.server_hs, p.b, sctx, NULL, &side_protocol, &p.ss), 0);
  assert_int_equal(async_stream_write(p.a, "GET / HTTP/1.0\r\n\r\n", 18), 0);
  assert_true(run_until(&p.e, c_released, &p.ss, NULL, NULL, 3000));
  assert_int_equal(p.ss.lost_err, ASYNC_EPROTO);
  assert_int_equal(status_of(p.server_hs), ASYNC_EPROTO);
  assert_int_equal(async_stream_close(p.a), 0);
  pair_finish(&p);
  async_tls_context_release(sctx);
}

/* A peer that never answers the hello: ETIMEDOUT after the context's
 * handshake timeout. */
static void test_handshake_timeout(void **state) {
  (void)state;
  async_tls_options o = ASYNC_TLS_OPTIONS_INIT;
  o.flags = ASYNC_TLS_NO_VERIFY;
  o.handshake_timeout_ms = 100;
  async_tls_context *cctx = NULL;
  assert_int_equal(async_tls_context_new(&cctx, ASYNC_TLS_CLIENT, &o), 0);
  struct pair p;
  pair_open(&p);
  uint64_t t0 = tu_now_ns();
  assert_int_equal(async_tls_push(&p.client, &p.client_hs, p.a, cctx, NULL, &side_protocol, &p.cs), 0);
  assert_true(run_until(&p.e, c_released, &p.cs, NULL, NULL, 3000));
  double ms = tu_elapsed_ms(t0);
  assert_true(ms >= 90.0 && ms < 2000.0);
  assert_int_equal(p.cs.lost_err, ASYNC_ETIMEDOUT);
  assert_int_equal(status_of(p.client_hs), ASYNC_ETIMEDOUT);
  assert_true(run_until(&p.e, c_released, &p.b_plain, NULL, NULL, 3000)); /* the socket closed */
  assert_true(p.b_plain.len > 0);                                          /* after the hello */
  pair_finish(&p);
  async_tls_context_release(cctx);
}

/* STARTTLS: a plaintext greeting, TLS pushed on both live streams (the
 * server inside data_received), then popped on both: close_notify both
 * ways, and the TCP streams go on in plaintext. The server's first
 * plaintext follows its close_notify at once, so the client reads both
 * together: the bytes after close_notify go to the client's pop. */
static struct {
  async_tls_context *sctx;
  struct side *ss, *back;
  async_stream *tcp, *server;
  int push_rc, pop_rc, tail_rc;
} g_st;

static void st_server_plain_data(struct side *x) {
  if (!strstr((char *)x->buf, "STARTTLS\n") || g_st.server) return;
  async_stream_write(x->s, "GO\n", 3);
  g_st.tcp = x->s;
  g_st.push_rc = async_tls_push(&g_st.server, NULL, x->s, g_st.sctx, NULL, &side_protocol, g_st.ss);
}

static int st_server_eof(async_stream *s, void *ud) {
  (void)ud;
  /* The client's close_notify: pop in turn, and go on in plaintext. */
  g_st.pop_rc = async_layer_pop(s, &each_protocol, g_st.back);
  g_st.tail_rc = async_stream_write(g_st.tcp, "tail+", 5);
  return 1;
}

static void test_starttls_and_pop(void **state) {
  (void)state;
  memset(&g_st, 0, sizeof g_st);
  async_tls_context *cctx = client_ctx("ca.pem", 0, NULL);
  g_st.sctx = server_ctx("server", 0, NULL);
  struct side ss = {0}, server_back = {0}, client_back = {0};
  g_st.ss = &ss;
  g_st.back = &server_back;
  async_stream_protocol server_tls = side_protocol;
  server_tls.eof_received = st_server_eof;
  struct pair p;
  pair_open(&p);
  p.b_plain.on_data = st_server_plain_data;
  assert_true(run_until(&p.e, c_made, &p.a_plain, NULL, NULL, 2000));
  assert_int_equal(async_stream_write(p.a, "STARTTLS\n", 9), 0);
  g_want = 3;
  assert_true(run_until(&p.e, c_len, &p.a_plain, NULL, NULL, 2000));
  assert_string_equal((char *)p.a_plain.buf, "GO\n");
  assert_int_equal(g_st.push_rc, 0);
  assert_int_equal(async_stream_set_protocol(g_st.server, &server_tls, &ss), 0);
  assert_int_equal(async_tls_push(&p.client, &p.client_hs, p.a, cctx, "localhost", &side_protocol, &p.cs), 0);
  assert_int_equal(tu_wait_future(p.e.loop, p.client_hs, 3000), 0);
  assert_int_equal(async_stream_write(p.client, "secret", 6), 0);
  g_want = 6;
  assert_true(run_until(&p.e, c_len, &ss, NULL, NULL, 2000));
  assert_string_equal((char *)ss.buf, "secret");

  assert_int_equal(async_layer_pop(p.client, &each_protocol, &client_back), 0);
  assert_true(run_until(&p.e, c_released, &p.cs, NULL, NULL, 3000));
  assert_true(run_until(&p.e, c_released, &ss, NULL, NULL, 3000));
  assert_int_equal(g_st.pop_rc, 0);
  assert_int_equal(g_st.tail_rc, 0);
  assert_int_equal(p.cs.lost_err, 0);
  assert_int_equal(ss.lost_err, 0);
  assert_int_equal(ss.eof, 0); /* the pop replaced eof_received's answer */
  /* Plaintext again, both ways, on the same TCP streams. */
  assert_int_equal(async_stream_write(p.a, "plain", 5), 0);
  assert_int_equal(async_stream_write(p.b, "text", 4), 0);
  g_want = 5;
  assert_true(run_until(&p.e, c_len, &server_back, NULL, NULL, 3000));
  g_want = 9;
  assert_true(run_until(&p.e, c_len, &client_back, NULL, NULL, 3000));
  assert_string_equal((char *)server_back.buf, "plain");
  assert_string_equal((char *)client_back.buf, "tail+text");
  assert_int_equal(async_stream_close(p.a), 0);
  assert_true(run_until(&p.e, c_released, &server_back, NULL, NULL, 3000));
  assert_true(run_until(&p.e, c_released, &client_back, NULL, NULL, 3000));
  pair_finish(&p);
  side_free(&ss);
  side_free(&server_back);
  side_free(&client_back);
  async_tls_context_release(cctx);
  async_tls_context_release(g_st.sctx);
}

/* Bad inputs: NULLs, wrong kinds, bad options and files, calls on ended
 * streams; nothing crashes or leaks. */
static void test_bad_inputs(void **state) {
  (void)state;
  async_tls_context *ctx = NULL;
  async_tls_options o = ASYNC_TLS_OPTIONS_INIT;
  assert_int_equal(async_tls_context_new(NULL, ASYNC_TLS_CLIENT, NULL), ASYNC_EINVAL);
  assert_int_equal(async_tls_context_new(&ctx, (async_tls_side)7, NULL), ASYNC_EINVAL);
  assert_int_equal(async_tls_context_new(&ctx, ASYNC_TLS_SERVER, NULL), ASYNC_EINVAL); /* no certificate */
  o.flags = 64;
  assert_int_equal(async_tls_context_new(&ctx, ASYNC_TLS_CLIENT, &o), ASYNC_EINVAL);
  o.flags = 0;
  o.size = 8;
  assert_int_equal(async_tls_context_new(&ctx, ASYNC_TLS_CLIENT, &o), ASYNC_EINVAL);
  o.size = sizeof o;
  o.ca_file = "/nonexistent/ca.pem";
  assert_int_equal(async_tls_context_new(&ctx, ASYNC_TLS_CLIENT, &o), ASYNC_EINVAL);
  o.ca_file = NULL;
  o.cert_file = path("server.pem");
  o.key_file = path("client.key"); /* not the certificate's */
  assert_int_equal(async_tls_context_new(&ctx, ASYNC_TLS_SERVER, &o), ASYNC_EINVAL);
  o.key_file = path("ca.pem"); /* not a key */
  assert_int_equal(async_tls_context_new(&ctx, ASYNC_TLS_SERVER, &o), ASYNC_EINVAL);
  o.cert_file = NULL;
  o.key_file = path("client.key"); /* a key without a certificate */
  assert_int_equal(async_tls_context_new(&ctx, ASYNC_TLS_CLIENT, &o), ASYNC_EINVAL);
  o.key_file = NULL;
  const char *bad_alpn[] = {"", "h2,", ",h2", "h2,,http/1.1"};
  for (size_t i = 0; i < 4; i++) {
    o.alpn = bad_alpn[i];
    assert_int_equal(async_tls_context_new(&ctx, ASYNC_TLS_CLIENT, &o), ASYNC_EINVAL);
  }
  o.alpn = NULL;
  assert_null(ctx);
  assert_int_equal(async_tls_context_retain(NULL), ASYNC_EINVAL);
  assert_int_equal(async_tls_context_release(NULL), ASYNC_EINVAL);

  async_tls_context *cctx = client_ctx("ca.pem", 0, NULL);
  struct pair p;
  pair_open(&p);
  async_stream *up = NULL;
  char name[300];
  memset(name, 'a', sizeof name - 1);
  name[sizeof name - 1] = 0;
  assert_int_equal(async_tls_push(NULL, NULL, p.a, cctx, "localhost", &side_protocol, NULL), ASYNC_EINVAL);
  assert_int_equal(async_tls_push(&up, NULL, NULL, cctx, "localhost", &side_protocol, NULL), ASYNC_EINVAL);
  assert_int_equal(async_tls_push(&up, NULL, p.a, NULL, "localhost", &side_protocol, NULL), ASYNC_EINVAL);
  assert_int_equal(async_tls_push(&up, NULL, p.a, cctx, "localhost", NULL, NULL), ASYNC_EINVAL);
  /* Wrong kinds: a loop for a stream, a loop for a context. */
  assert_int_equal(async_tls_push(&up, NULL, (async_stream *)p.e.loop, cctx, "localhost", &side_protocol, NULL),
                   ASYNC_EINVAL);
  assert_int_equal(async_tls_push(&up, NULL, p.a, (async_tls_context *)p.e.loop, "x", &side_protocol, NULL),
                   ASYNC_EINVAL);
  assert_int_equal(async_tls_context_retain((async_tls_context *)p.e.loop), ASYNC_EINVAL);
  /* A verifying client needs a name, of at most 255 bytes. */
  assert_int_equal(async_tls_push(&up, NULL, p.a, cctx, NULL, &side_protocol, NULL), ASYNC_EINVAL);
  assert_int_equal(async_tls_push(&up, NULL, p.a, cctx, "", &side_protocol, NULL), ASYNC_EINVAL);
  assert_int_equal(async_tls_push(&up, NULL, p.a, cctx, name, &side_protocol, NULL), ASYNC_EINVAL);
  assert_null(up);
  assert_int_equal(p.a_plain.released, 0); /* nothing changed */
  /* Queries on a stream that is not above TLS. */
  char buf[16];
  const char *reason = NULL;
  assert_int_equal(async_tls_version(p.a), ASYNC_EINVAL);
  assert_int_equal(async_tls_resumed(p.a), ASYNC_EINVAL);
  assert_int_equal(async_tls_alpn(buf, sizeof buf, p.a), ASYNC_EINVAL);
  assert_int_equal(async_tls_verify_error(&reason, p.a), ASYNC_EINVAL);
  assert_int_equal(async_tls_version(NULL), ASYNC_EINVAL);
  assert_int_equal(async_tls_alpn(NULL, 0, p.a), ASYNC_EINVAL);
  async_stream *rl = NULL;
  struct side rls = {0};
  assert_int_equal(async_layer_push_rate_limit(&rl, p.b, 0, 0, &side_protocol, &rls), 0);
  assert_int_equal(async_tls_version(rl), ASYNC_EINVAL); /* another kind of layer */

  /* Pushing twice on one stream: the second layer takes it from the
   * first, whose stream above ends with ECLOSED (async/layer.h). */
  struct side first = {0}, second = {0};
  async_stream *s1 = NULL, *s2 = NULL;
  assert_int_equal(async_tls_push(&s1, NULL, p.a, cctx, "localhost", &side_protocol, &first), 0);
  assert_int_equal(async_tls_push(&s2, NULL, p.a, cctx, "localhost", &side_protocol, &second), 0);
  assert_true(run_until(&p.e, c_released, &first, NULL, NULL, 2000));
  assert_int_equal(first.lost_err, ASYNC_ECLOSED);
  /* After close: calls on the ended stream, a push on a closed stream. */
  assert_int_equal(async_stream_close(s2), 0);
  assert_int_equal(async_tls_push(&up, NULL, s2, cctx, "localhost", &side_protocol, NULL), ASYNC_ECLOSED);
  assert_true(run_until(&p.e, c_released, &second, NULL, NULL, 2000));
  assert_int_equal(async_stream_close(rl), 0);
  assert_true(run_until(&p.e, c_released, &rls, NULL, NULL, 2000));
  pair_finish(&p);
  side_free(&first);
  side_free(&second);
  side_free(&rls);
  async_tls_context_release(cctx);
}

/* ---- real peers: openssl s_server / s_client, socat ------------------------ */

/* A port free right now on 127.0.0.1. */
static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(0x7f000001);
  socklen_t len = sizeof a;
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  close(fd);
  return ntohs(a.sin_port);
}

/* Starts argv with stdin from stdin_fd (-1: /dev/null) and stdout and
 * stderr to out_path (NULL: /dev/null). */
static pid_t spawn(char *const argv[], int stdin_fd, const char *out_path) {
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int in = stdin_fd >= 0 ? stdin_fd : open("/dev/null", O_RDONLY);
    int out = open(out_path ? out_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(in, 0);
    dup2(out, 1);
    dup2(out, 2);
    for (int fd = 3; fd < 1024; fd++) close(fd); /* a pipe's write end kept here would hide its end */
    execv(argv[0], argv);
    _exit(127);
  }
  return pid;
}

static void stop(pid_t pid) {
  int status;
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
}

/* A TLS client connection to 127.0.0.1:port, retried while the peer
 * starts listening; *tls is the stream above TLS. */
struct conn {
  struct side plain, tls;
  async_stream *stream;
  async_future *connect, *hs;
};

static void conn_open(struct env *e, struct conn *c, int port, async_tls_context *ctx, const char *name) {
  memset(c, 0, sizeof *c);
  uint64_t t0 = tu_now_ns();
  for (;;) {
    assert_int_equal(async_tcp_connect(&c->connect, e->loop, "127.0.0.1", (uint16_t)port, NULL, &side_protocol,
                                       &c->plain),
                     0);
    int st = tu_wait_future(e->loop, c->connect, 3000);
    if (st == 0) break;
    assert_int_equal(st, ASYNC_ECONNREFUSED);
    assert_int_equal(async_future_free(c->connect), 0);
    assert_true(tu_elapsed_ms(t0) < 5000.0);
    tu_sleep_ms(20);
  }
  void *lower = NULL;
  assert_int_equal(async_future_result(&lower, c->connect), 0);
  assert_int_equal(async_tls_push(&c->stream, &c->hs, lower, ctx, name, &side_protocol, &c->tls), 0);
  (void)tu_wait_future(e->loop, c->hs, 5000);
}

static void conn_finish(struct env *e, struct conn *c) {
  assert_true(run_until(e, c_released, &c->tls, NULL, NULL, 5000));
  assert_int_equal(async_future_free(c->hs), 0);
  assert_int_equal(async_future_free(c->connect), 0);
  side_free(&c->tls);
  side_free(&c->plain);
}

/* s_server -www: TLS 1.2 and 1.3, ALPN, and the second connection of the
 * same context resumed, as the server's own page says ("Reused"). */
static void test_s_server(void **state) {
  (void)state;
  const char *versions[] = {"-tls1_2", "-tls1_3"};
  for (int v = 0; v < 2; v++) {
    int port = free_port();
    char accept[64];
    snprintf(accept, sizeof accept, "127.0.0.1:%d", port);
    char *argv[] = {OPENSSL_BIN, "s_server", "-accept", accept, "-cert", (char *)path("server.pem"), "-key",
                    (char *)path("server.key"), "-www", "-alpn", "http/1.1", (char *)versions[v], NULL};
    pid_t pid = spawn(argv, -1, NULL);
    struct env e;
    env_init(&e);
    async_tls_context *ctx = client_ctx("ca.pem", 0, "h2,http/1.1");
    for (int round = 0; round < 2; round++) {
      struct conn c;
      conn_open(&e, &c, port, ctx, "localhost");
      assert_int_equal(status_of(c.hs), 0);
      assert_int_equal(async_tls_version(c.stream), v == 0 ? 0x0303 : 0x0304);
      char alpn[16];
      assert_int_equal(async_tls_alpn(alpn, sizeof alpn, c.stream), 8);
      assert_string_equal(alpn, "http/1.1");
      assert_int_equal(async_tls_resumed(c.stream), round);
      assert_int_equal(async_stream_write(c.stream, "GET / HTTP/1.0\r\n\r\n", 18), 0);
      assert_true(run_until(&e, c_released, &c.tls, NULL, NULL, 5000));
      assert_int_equal(c.tls.lost_err, 0); /* s_server sends close_notify */
      assert_int_equal(c.tls.eof, 1);
      assert_non_null(strstr((char *)c.tls.buf, round ? "Reused, TLSv1." : "New, TLSv1."));
      conn_finish(&e, &c);
    }
    async_tls_context_release(ctx);
    env_finish(&e);
    stop(pid);
  }
}

/* SNI: s_server presents server.pem to a client naming localhost and
 * wronghost.pem to others; verification failures against s_server. */
static void test_s_server_sni_and_failures(void **state) {
  (void)state;
  int port = free_port();
  char accept[64];
  snprintf(accept, sizeof accept, "127.0.0.1:%d", port);
  char *argv[] = {OPENSSL_BIN, "s_server", "-accept", accept, "-cert", (char *)path("wronghost.pem"), "-key",
                  (char *)path("wronghost.key"), "-servername", "localhost", "-cert2", (char *)path("server.pem"),
                  "-key2", (char *)path("server.key"), "-www", NULL};
  pid_t pid = spawn(argv, -1, NULL);
  struct env e;
  env_init(&e);
  async_tls_context *ctx = client_ctx("ca.pem", 0, NULL);
  async_tls_context *other = client_ctx("other-ca.pem", 0, NULL);
  struct conn c;
  conn_open(&e, &c, port, ctx, "localhost"); /* SNI: localhost */
  assert_int_equal(status_of(c.hs), 0);
  assert_int_equal(async_stream_close(c.stream), 0);
  conn_finish(&e, &c);
  conn_open(&e, &c, port, ctx, "127.0.0.1"); /* no SNI for an address */
  assert_int_equal(status_of(c.hs), ASYNC_ECERT);
  conn_finish(&e, &c);
  assert_string_equal(c.tls.verify_reason, "IP address mismatch");
  conn_open(&e, &c, port, other, "localhost"); /* an untrusted CA */
  assert_int_equal(status_of(c.hs), ASYNC_ECERT);
  conn_finish(&e, &c);
  assert_int_equal(c.tls.lost_err, ASYNC_ECERT);
  stop(pid);

  /* An expired certificate. */
  port = free_port();
  snprintf(accept, sizeof accept, "127.0.0.1:%d", port);
  char *argv2[] = {OPENSSL_BIN, "s_server", "-accept", accept, "-cert", (char *)path("expired.pem"), "-key",
                   (char *)path("expired.key"), "-www", NULL};
  pid = spawn(argv2, -1, NULL);
  conn_open(&e, &c, port, ctx, "localhost");
  assert_int_equal(status_of(c.hs), ASYNC_ECERT);
  conn_finish(&e, &c);
  assert_string_equal(c.tls.verify_reason, "certificate has expired");
  stop(pid);
  async_tls_context_release(ctx);
  async_tls_context_release(other);
  env_finish(&e);
}

/* s_server killed after the handshake: no close_notify, ETRUNCATED. */
static void test_s_server_truncation(void **state) {
  (void)state;
  int port = free_port();
  char accept[64];
  snprintf(accept, sizeof accept, "127.0.0.1:%d", port);
  int in[2];
  assert_int_equal(pipe(in), 0);
  char *argv[] = {OPENSSL_BIN, "s_server", "-accept", accept, "-cert", (char *)path("server.pem"), "-key",
                  (char *)path("server.key"), "-quiet", NULL};
  pid_t pid = spawn(argv, in[0], NULL);
  close(in[0]);
  struct env e;
  env_init(&e);
  async_tls_context *ctx = client_ctx("ca.pem", 0, NULL);
  struct conn c;
  conn_open(&e, &c, port, ctx, "localhost");
  assert_int_equal(status_of(c.hs), 0);
  assert_int_equal(write(in[1], "data\n", 5), 5); /* s_server sends its stdin */
  g_want = 5;
  assert_true(run_until(&e, c_len, &c.tls, NULL, NULL, 3000));
  stop(pid);
  conn_finish(&e, &c);
  assert_int_equal(c.tls.lost_err, ASYNC_ETRUNCATED);
  assert_int_equal(c.tls.eof, 0);
  close(in[1]);
  async_tls_context_release(ctx);
  env_finish(&e);
}

/* openssl s_client against a libasync server: close_notify both ways. The
 * server pushes TLS in connection_made of each accepted stream. */
static struct {
  async_tls_context *sctx;
  struct side tls[2];
  int n;
  const char *greeting;
  int close_after_greeting;
} g_srv;

static void srv_made(async_stream *s, void *ud) {
  (void)ud;
  if (g_srv.n >= 2) return;
  struct side *x = &g_srv.tls[g_srv.n++];
  async_stream *up = NULL;
  if (async_tls_push(&up, NULL, s, g_srv.sctx, NULL, &side_protocol, x) != 0) return;
  async_stream_write(up, g_srv.greeting, strlen(g_srv.greeting));
  if (g_srv.close_after_greeting) async_stream_close(up);
}

static size_t srv_data(async_stream *s, const uint8_t *d, size_t n, void *ud) {
  (void)s, (void)d, (void)ud;
  return n;
}

static void srv_lost(async_stream *s, int err, void *ud) { (void)s, (void)err, (void)ud; }

/* The accepted stream's protocol until TLS replaces it. */
static const async_stream_protocol srv_plain = {
    sizeof(async_stream_protocol), srv_made, srv_data, NULL, srv_lost, NULL, NULL, NULL, NULL, 0, NULL,
};

static int srv_factory(const async_stream_protocol **p, void **ud, async_server *s, void *userdata) {
  (void)s;
  (void)userdata;
  *p = &srv_plain;
  *ud = NULL;
  return 0;
}

static int file_has(const char *file, const char *text) {
  FILE *f = fopen(file, "r");
  if (!f) return 0;
  char buf[8192];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  return strstr(buf, text) != NULL;
}

static void test_s_client(void **state) {
  (void)state;
  memset(&g_srv, 0, sizeof g_srv);
  g_srv.sctx = server_ctx("server", 0, NULL);
  struct env e;
  env_init(&e);
  int port = free_port();
  async_server *server = NULL;
  assert_int_equal(async_tcp_listen(&server, e.loop, "127.0.0.1", (uint16_t)port, 0, 0, srv_factory, NULL), 0);
  char connect[64];
  snprintf(connect, sizeof connect, "127.0.0.1:%d", port);
  const char *out = path("s_client.out");
  char *argv[] = {OPENSSL_BIN, "s_client", "-connect", connect, "-CAfile", (char *)path("ca.pem"), "-servername",
                  "localhost", "-verify_return_error", NULL};

  /* s_client -> libasync: its stdin's end sends close_notify, which our
   * stream gets as eof_received, then connection_lost(0). */
  int in[2];
  assert_int_equal(pipe(in), 0);
  g_srv.greeting = "welcome\n";
  pid_t pid = spawn(argv, in[0], out);
  close(in[0]);
  assert_true(run_until(&e, c_made, &g_srv.tls[0], NULL, NULL, 5000));
  assert_int_equal(write(in[1], "hello\n", 6), 6);
  g_want = 6;
  assert_true(run_until(&e, c_len, &g_srv.tls[0], NULL, NULL, 5000));
  close(in[1]);
  assert_true(run_until(&e, c_released, &g_srv.tls[0], NULL, NULL, 5000));
  assert_int_equal(g_srv.tls[0].eof, 1);
  assert_int_equal(g_srv.tls[0].lost_err, 0);
  assert_string_equal((char *)g_srv.tls[0].buf, "hello\n");
  int status;
  waitpid(pid, &status, 0);
  assert_true(file_has(out, "welcome"));
  assert_true(file_has(out, "Verify return code: 0 (ok)"));

  /* libasync -> s_client: our close sends close_notify; s_client says "closed". */
  assert_int_equal(pipe(in), 0);
  g_srv.greeting = "bye\n";
  g_srv.close_after_greeting = 1;
  pid = spawn(argv, in[0], out);
  close(in[0]);
  assert_true(run_until(&e, c_released, &g_srv.tls[1], NULL, NULL, 5000));
  assert_int_equal(g_srv.tls[1].lost_err, 0);
  uint64_t t0 = tu_now_ms();
  while (waitpid(pid, &status, WNOHANG) == 0 && tu_now_ms() - t0 < 5000) run_once(&e, ASYNC_RUN_ONCE);
  close(in[1]);
  stop(pid);
  assert_true(file_has(out, "bye"));
  assert_true(file_has(out, "closed"));
  tu_server_close(e.loop, server);
  side_free(&g_srv.tls[0]);
  side_free(&g_srv.tls[1]);
  async_tls_context_release(g_srv.sctx);
  env_finish(&e);
}

/* A reset (RST) is ECONNRESET, not a truncation nor a clean end. */
static void test_reset(void **state) {
  (void)state;
  memset(&g_srv, 0, sizeof g_srv);
  g_srv.sctx = server_ctx("server", 0, NULL);
  g_srv.greeting = "hi";
  struct env e;
  env_init(&e);
  int port = free_port();
  async_server *server = NULL;
  assert_int_equal(async_tcp_listen(&server, e.loop, "127.0.0.1", (uint16_t)port, 0, 0, srv_factory, NULL), 0);
  async_tls_context *ctx = client_ctx("ca.pem", 0, NULL);
  struct conn c;
  conn_open(&e, &c, port, ctx, "localhost");
  assert_int_equal(status_of(c.hs), 0);
  g_want = 2;
  assert_true(run_until(&e, c_len, &c.tls, NULL, NULL, 3000));
  assert_true(run_until(&e, c_made, &g_srv.tls[0], NULL, NULL, 3000));
  /* The server's socket closes with SO_LINGER 0: the client gets a reset. */
  int fd = async_stream_fd(g_srv.tls[0].s);
  assert_true(fd >= 0);
  struct linger lg = {1, 0};
  assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  assert_int_equal(async_stream_abort(g_srv.tls[0].s), 0);
  conn_finish(&e, &c);
  assert_int_equal(c.tls.lost_err, ASYNC_ECONNRESET);
  assert_true(run_until(&e, c_released, &g_srv.tls[0], NULL, NULL, 3000));
  tu_server_close(e.loop, server);
  side_free(&g_srv.tls[0]);
  async_tls_context_release(ctx);
  async_tls_context_release(g_srv.sctx);
  env_finish(&e);
}

/* socat OPENSSL-LISTEN as a second peer: an echo over TLS, closed cleanly. */
static void test_socat(void **state) {
  (void)state;
  int port = free_port();
  char listen[512];
  snprintf(listen, sizeof listen, "OPENSSL-LISTEN:%d,bind=127.0.0.1,reuseaddr,cert=%s,key=%s,verify=0", port,
           path("server.pem"), path("server.key"));
  char *argv[] = {SOCAT, "-T", "10", listen, "PIPE", NULL};
  pid_t pid = spawn(argv, -1, NULL);
  struct env e;
  env_init(&e);
  async_tls_context *ctx = client_ctx("ca.pem", 0, NULL);
  struct conn c;
  conn_open(&e, &c, port, ctx, "127.0.0.1");
  assert_int_equal(status_of(c.hs), 0);
  static uint8_t data[256 * 1024];
  for (size_t i = 0; i < sizeof data; i++) data[i] = (uint8_t)(i * 7u + 3u);
  assert_int_equal(async_stream_write(c.stream, data, sizeof data), 0);
  g_want = sizeof data;
  assert_true(run_until(&e, c_len, &c.tls, NULL, NULL, 10000));
  assert_memory_equal(c.tls.buf, data, sizeof data);
  assert_int_equal(async_stream_close(c.stream), 0);
  conn_finish(&e, &c);
  assert_int_equal(c.tls.lost_err, 0);
  async_tls_context_release(ctx);
  env_finish(&e);
  stop(pid);
}

/* ---- TLS through async_tcp_connect, servers and the reconnector ------------ */

/* A server's connections, each recorded in its own side; the factory
 * counts its calls (a connection whose handshake failed never makes one). */
#define TS_CONNS 8
static struct {
  struct side conn[TS_CONNS];
  int factory_calls;
  int version_at_made; /* async_tls_version() inside the first connection_made */
  const char *greeting;
  int close_in_made;
  int logged; /* messages through the loop's log hook */
} g_ts;

static void ts_made(async_stream *s, void *ud) {
  side_made(s, ud);
  if (ud == &g_ts.conn[0]) g_ts.version_at_made = async_tls_version(s);
  if (g_ts.greeting) async_stream_write(s, g_ts.greeting, strlen(g_ts.greeting));
  if (g_ts.close_in_made) async_stream_close(s);
}

static const async_stream_protocol ts_protocol = {
    sizeof(async_stream_protocol), ts_made, side_data, side_eof, side_lost, NULL, NULL, NULL, side_release, 0, NULL,
};

static int ts_factory(const async_stream_protocol **p, void **ud, async_server *s, void *userdata) {
  (void)s, (void)userdata;
  if (g_ts.factory_calls == TS_CONNS) return -1;
  *p = &ts_protocol;
  *ud = &g_ts.conn[g_ts.factory_calls++];
  return 0;
}

static void ts_log(async_loop *l, int level, const char *msg, void *ud) {
  (void)l, (void)level, (void)msg, (void)ud;
  g_ts.logged++;
}

/* A server on host, port 0, with TLS from sctx (none for NULL). */
static async_server *ts_listen(struct env *e, const char *host, async_tls_context *sctx) {
  memset(&g_ts, 0, sizeof g_ts);
  assert_int_equal(async_loop_set_log(e->loop, ts_log, NULL, NULL), 0);
  async_server *server = NULL;
  assert_int_equal(async_tcp_listen(&server, e->loop, host, 0, 0, 0, ts_factory, NULL), 0);
  if (sctx) assert_int_equal(async_server_set_tls(server, sctx), 0);
  return server;
}

static void ts_finish(struct env *e, async_server *server) {
  tu_server_close(e->loop, server);
  for (int i = 0; i < TS_CONNS; i++) side_free(&g_ts.conn[i]);
}

static int c_ts_made(void *a) { return *(int *)a < TS_CONNS && g_ts.conn[*(int *)a].made != 0; }
static int c_ts_released(void *a) { return g_ts.conn[*(int *)a].released != 0; }

static async_future *tls_connect(struct env *e, const char *host, int port, async_tls_context *ctx, const char *name,
                                 const async_stream_protocol *protocol, struct side *x) {
  async_connect_options o = ASYNC_CONNECT_OPTIONS_INIT;
  o.tls = ctx;
  o.server_name = name;
  async_future *f = NULL;
  assert_int_equal(async_tcp_connect(&f, e->loop, host, (uint16_t)port, &o, protocol, x), 0);
  return f;
}

/* Connect with TLS to a TLS server (both loopback addresses; Happy
 * Eyeballs picks the TCP winner): the future resolves with the stream above
 * TLS after the handshake, the server's factory and connection_made come
 * after its handshake, bytes go both ways, close_notify ends both with 0. */
static void test_connect_listen_tls(void **state) {
  (void)state;
  async_tls_context *cctx = client_ctx("ca.pem", 0, "h2,http/1.1");
  async_tls_context *sctx = server_ctx("server", 0, "http/1.1");
  struct env e;
  env_init(&e);
  async_server *server = ts_listen(&e, "localhost", sctx);
  async_tls_context_release(sctx); /* the server holds its own */
  struct side c = {0};
  async_future *f = tls_connect(&e, "localhost", async_server_port(server), cctx, NULL, &side_protocol, &c);
  assert_int_equal(tu_wait_future(e.loop, f, 5000), 0);
  void *value = NULL;
  assert_int_equal(async_future_result(&value, f), 0);
  async_stream *s = value;
  assert_int_equal(c.made, 1);
  assert_true(async_tls_version(s) >= 0x0303);
  char alpn[16];
  assert_int_equal(async_tls_alpn(alpn, sizeof alpn, s), 8);
  assert_string_equal(alpn, "http/1.1");
  int zero = 0;
  assert_true(run_until(&e, c_ts_made, &zero, NULL, NULL, 3000));
  assert_int_equal(g_ts.factory_calls, 1);
  assert_true(g_ts.version_at_made >= 0x0303); /* the handshake was done */
  assert_int_equal(async_server_connection_count(server), 1);
  assert_int_equal(async_stream_write(s, "ping", 4), 0);
  g_want = 4;
  assert_true(run_until(&e, c_len, &g_ts.conn[0], NULL, NULL, 3000));
  assert_int_equal(async_stream_write(g_ts.conn[0].s, "pong", 4), 0);
  assert_true(run_until(&e, c_len, &c, NULL, NULL, 3000));
  assert_string_equal((char *)c.buf, "pong");
  assert_int_equal(async_stream_close(s), 0);
  assert_true(run_until(&e, c_released, &c, NULL, NULL, 3000));
  assert_true(run_until(&e, c_ts_released, &zero, NULL, NULL, 3000));
  assert_int_equal(c.lost_err, 0);
  assert_int_equal(g_ts.conn[0].lost_err, 0);
  assert_int_equal(g_ts.conn[0].eof, 1);
  assert_int_equal(g_ts.logged, 0);
  assert_int_equal(async_future_free(f), 0);
  ts_finish(&e, server);
  async_tls_context_release(cctx);
  env_finish(&e);
  side_free(&c);
}

static void closing_made(async_stream *s, void *ud) {
  side_made(s, ud);
  async_stream_close(s);
}

static const async_stream_protocol closing_protocol = {
    sizeof(async_stream_protocol), closing_made, side_data, side_eof, side_lost, NULL, NULL, NULL, side_release, 0,
    NULL,
};

/* Connect with TLS that fails: a certificate for another name (ECERT), a
 * peer that never answers (the context's handshake timeout), a peer that
 * speaks plaintext (EPROTO), a cancel during the handshake. The protocol
 * sees nothing but its release; a TLS server's factory is never called. */
static void test_connect_tls_failures(void **state) {
  (void)state;
  struct env e;
  env_init(&e);
  async_tls_context *cctx = client_ctx("ca.pem", 0, NULL);
  async_tls_context *sctx = server_ctx("wronghost", 0, NULL);
  async_server *server = ts_listen(&e, "127.0.0.1", sctx);
  struct side c = {0};
  async_future *f = tls_connect(&e, "127.0.0.1", async_server_port(server), cctx, "localhost", &side_protocol, &c);
  assert_int_equal(tu_wait_future(e.loop, f, 5000), ASYNC_ECERT);
  assert_int_equal(c.made + c.lost, 0);
  assert_int_equal(c.released, 1);
  run_for(&e, 100, NULL, NULL);
  assert_int_equal(g_ts.factory_calls, 0); /* the server's handshake failed */
  assert_int_equal(async_future_free(f), 0);
  ts_finish(&e, server);
  side_free(&c);

  /* A plain server, silent, then speaking plaintext. */
  async_tls_options o = ASYNC_TLS_OPTIONS_INIT;
  o.ca_file = path("ca.pem");
  o.handshake_timeout_ms = 200;
  async_tls_context *quick = NULL;
  assert_int_equal(async_tls_context_new(&quick, ASYNC_TLS_CLIENT, &o), 0);
  server = ts_listen(&e, "127.0.0.1", NULL);
  int port = async_server_port(server);
  memset(&c, 0, sizeof c);
  f = tls_connect(&e, "127.0.0.1", port, quick, NULL, &side_protocol, &c);
  assert_int_equal(tu_wait_future(e.loop, f, 5000), ASYNC_ETIMEDOUT);
  assert_int_equal(c.made + c.lost, 0);
  assert_int_equal(c.released, 1);
  assert_int_equal(async_future_free(f), 0);
  side_free(&c);

  g_ts.greeting = "220 plain SMTP\r\n";
  memset(&c, 0, sizeof c);
  f = tls_connect(&e, "127.0.0.1", port, cctx, NULL, &side_protocol, &c);
  assert_int_equal(tu_wait_future(e.loop, f, 5000), ASYNC_EPROTO);
  assert_int_equal(c.made + c.lost, 0);
  assert_int_equal(c.released, 1);
  assert_int_equal(async_future_free(f), 0);
  side_free(&c);
  g_ts.greeting = NULL;

  /* Cancelled once TCP is connected and the handshake waits: the
   * handshake stops (the server sees the connection end), release runs
   * from the loop. */
  memset(&c, 0, sizeof c);
  f = tls_connect(&e, "127.0.0.1", port, cctx, NULL, &side_protocol, &c);
  int third = 2;
  assert_true(run_until(&e, c_ts_made, &third, NULL, NULL, 3000));
  /* The ClientHello arrived: the client's handshake is under way. */
  assert_true(run_until(&e, c_some, &g_ts.conn[2], NULL, NULL, 3000));
  assert_int_equal(async_future_cancel(f), 1);
  assert_int_equal(c.released, 0);
  assert_true(run_until(&e, c_released, &c, NULL, NULL, 3000));
  assert_int_equal(c.made + c.lost, 0);
  assert_int_equal(async_future_get_state(f), ASYNC_FUTURE_CANCELLED);
  assert_true(run_until(&e, c_ts_released, &third, NULL, NULL, 3000));
  assert_int_equal(async_future_free(f), 0);
  side_free(&c);
  ts_finish(&e, server);

  /* connection_made closing the stream above TLS: ECLOSED, as without TLS. */
  server = ts_listen(&e, "127.0.0.1", sctx);
  async_tls_context *lax = client_ctx(NULL, ASYNC_TLS_NO_VERIFY, NULL);
  memset(&c, 0, sizeof c);
  f = tls_connect(&e, "127.0.0.1", async_server_port(server), lax, NULL, &closing_protocol, &c);
  assert_int_equal(tu_wait_future(e.loop, f, 5000), ASYNC_ECLOSED);
  assert_true(run_until(&e, c_released, &c, NULL, NULL, 3000));
  assert_int_equal(c.made, 1);
  assert_int_equal(c.lost_err, 0);
  assert_int_equal(async_future_free(f), 0);
  side_free(&c);
  ts_finish(&e, server);

  async_tls_context_release(lax);
  async_tls_context_release(quick);
  async_tls_context_release(sctx);
  async_tls_context_release(cctx);
  env_finish(&e);
}

/* A TLS server: a plaintext client, an untrusted certificate and a client
 * that never starts its handshake never reach the factory; the failures
 * are logged; close_connections() and the server's close end handshakes
 * in progress; a server closing in connection_made sends close_notify. */
static void test_listen_tls_failures(void **state) {
  (void)state;
  struct env e;
  env_init(&e);
  async_tls_context *sctx = server_ctx("server", 0, NULL);
  async_server *server = ts_listen(&e, "127.0.0.1", sctx);
  int port = async_server_port(server);

  struct side c = {0};
  async_future *f = NULL;
  assert_int_equal(async_tcp_connect(&f, e.loop, "127.0.0.1", (uint16_t)port, NULL, &side_protocol, &c), 0);
  assert_int_equal(tu_wait_future(e.loop, f, 3000), 0);
  void *plain = NULL;
  assert_int_equal(async_future_result(&plain, f), 0);
  assert_int_equal(async_stream_write(plain, "GET / HTTP/1.0\r\n\r\n", 18), 0);
  assert_true(run_until(&e, c_released, &c, NULL, NULL, 3000));
  assert_int_equal(g_ts.factory_calls, 0);
  assert_true(g_ts.logged >= 1);
  assert_int_equal(async_future_free(f), 0);
  side_free(&c);

  async_tls_context *other = client_ctx("other-ca.pem", 0, NULL);
  memset(&c, 0, sizeof c);
  f = tls_connect(&e, "127.0.0.1", port, other, "localhost", &side_protocol, &c);
  assert_int_equal(tu_wait_future(e.loop, f, 3000), ASYNC_ECERT);
  run_for(&e, 100, NULL, NULL);
  assert_int_equal(g_ts.factory_calls, 0);
  assert_int_equal(async_future_free(f), 0);
  side_free(&c);

  /* Silent clients: their handshakes wait, uncounted, until ended. */
  for (int round = 0; round < 2; round++) {
    memset(&c, 0, sizeof c);
    assert_int_equal(async_tcp_connect(&f, e.loop, "127.0.0.1", (uint16_t)port, NULL, &side_protocol, &c), 0);
    assert_int_equal(tu_wait_future(e.loop, f, 3000), 0);
    run_for(&e, 50, NULL, NULL);
    assert_int_equal(async_server_connection_count(server), 0);
    if (round == 0) {
      assert_int_equal(async_server_close_connections(server, 0), 0);
    } else {
      tu_server_close(e.loop, server);
      server = NULL;
    }
    assert_true(run_until(&e, c_released, &c, NULL, NULL, 3000));
    assert_int_equal(g_ts.factory_calls, 0);
    assert_int_equal(async_future_free(f), 0);
    side_free(&c);
  }

  /* The server closes in connection_made: the client gets close_notify. */
  server = ts_listen(&e, "127.0.0.1", sctx);
  g_ts.close_in_made = 1;
  async_tls_context *cctx = client_ctx("ca.pem", 0, NULL);
  memset(&c, 0, sizeof c);
  f = tls_connect(&e, "127.0.0.1", async_server_port(server), cctx, "localhost", &side_protocol, &c);
  assert_true(run_until(&e, c_released, &c, NULL, NULL, 3000));
  assert_int_equal(c.lost_err, 0);
  assert_int_equal(c.eof, 1);
  assert_int_equal(g_ts.factory_calls, 1);
  assert_int_equal(async_future_free(f), 0);
  side_free(&c);
  ts_finish(&e, server);

  async_tls_context_release(cctx);
  async_tls_context_release(other);
  async_tls_context_release(sctx);
  env_finish(&e);
}

/* The server closed while a handshake is in flight, its client's Finished
 * already on the wire (the client closes it from its own connection_made,
 * run when the client's side of the handshake is done): the handshake is
 * aborted by the close, the factory is never called. */
static async_server *g_closing_server;
static int g_server_closed;

static void close_server_cb(async_handle *h, void *ud) {
  (void)h, (void)ud;
  g_server_closed = 1;
}

static void close_server_made(async_stream *s, void *ud) {
  side_made(s, ud);
  assert_int_equal(async_handle_close(async_server_handle(g_closing_server), close_server_cb), 0);
}

static const async_stream_protocol close_server_protocol = {
    sizeof(async_stream_protocol), close_server_made, side_data, side_eof, side_lost, NULL, NULL, NULL, side_release,
    0, NULL,
};

static int c_server_closed(void *a) {
  (void)a;
  return g_server_closed;
}

static void test_listen_tls_close_in_handshake(void **state) {
  (void)state;
  struct env e;
  env_init(&e);
  async_tls_context *sctx = server_ctx("server", 0, NULL);
  async_tls_context *cctx = client_ctx("ca.pem", 0, NULL);
  g_closing_server = ts_listen(&e, "127.0.0.1", sctx);
  g_server_closed = 0;
  struct side c = {0};
  async_future *f =
      tls_connect(&e, "127.0.0.1", async_server_port(g_closing_server), cctx, "localhost", &close_server_protocol, &c);
  assert_true(run_until(&e, c_server_closed, NULL, NULL, NULL, 3000));
  run_for(&e, 100, NULL, NULL);
  assert_int_equal(g_ts.factory_calls, 0);
  assert_true(run_until(&e, c_released, &c, NULL, NULL, 3000)); /* aborted by the server */
  assert_int_equal(c.made, 1);
  assert_int_equal(async_future_free(f), 0);
  side_free(&c);
  for (int i = 0; i < TS_CONNS; i++) side_free(&g_ts.conn[i]);
  async_tls_context_release(cctx);
  async_tls_context_release(sctx);
  env_finish(&e);
}

/* A reconnector with TLS in its connect options: each connection's
 * handshake is done at connection_made, and the second one resumes the
 * session of the first. */
static struct {
  struct side rec;
  int made;
  int resumed[4];
  const char *request;
  int stopped;
} g_rcs;

static void rcs_made(async_stream *s, void *ud) {
  side_made(s, ud);
  if (g_rcs.made < 4) g_rcs.resumed[g_rcs.made] = async_tls_resumed(s);
  g_rcs.made++;
  if (g_rcs.request) async_stream_write(s, g_rcs.request, strlen(g_rcs.request));
}

static const async_stream_protocol rcs_protocol = {
    sizeof(async_stream_protocol), rcs_made, side_data, side_eof, side_lost, NULL, NULL, NULL, side_release, 0, NULL,
};

static void rcs_stopped(async_reconnector *rc, int error, void *ud) {
  (void)rc, (void)error, (void)ud;
  g_rcs.stopped++;
}

static int c_rcs_two(void *a) {
  (void)a;
  return g_rcs.made >= 2;
}

static async_reconnector *rcs_start(struct env *e, int port, async_tls_context *ctx) {
  async_connect_options co = ASYNC_CONNECT_OPTIONS_INIT;
  co.tls = ctx;
  co.server_name = "localhost";
  async_reconnect_options ro = {sizeof ro, &co, 20, 100, 0, -1.0, 0, NULL, rcs_stopped};
  async_reconnector *rc = NULL;
  assert_int_equal(async_reconnector_start(&rc, e->loop, "127.0.0.1", (uint16_t)port, &ro, &rcs_protocol, &g_rcs.rec),
                   0);
  return rc;
}

static void rcs_finish(struct env *e, async_reconnector *rc) {
  assert_int_equal(async_reconnector_stop(rc), 0);
  assert_true(run_until(e, c_released, &g_rcs.rec, NULL, NULL, 3000));
  assert_int_equal(g_rcs.stopped, 1);
  side_free(&g_rcs.rec);
}

static void test_reconnector_tls(void **state) {
  (void)state;
  struct env e;
  env_init(&e);
  async_tls_context *cctx = client_ctx("ca.pem", 0, NULL);
  async_tls_context *sctx = server_ctx("server", 0, NULL);
  async_server *server = ts_listen(&e, "127.0.0.1", sctx);
  g_ts.greeting = "x"; /* TLS 1.3 tickets come before it */
  g_ts.close_in_made = 1;
  memset(&g_rcs, 0, sizeof g_rcs);
  async_reconnector *rc = rcs_start(&e, async_server_port(server), cctx);
  assert_true(run_until(&e, c_rcs_two, NULL, NULL, NULL, 5000));
  assert_int_equal(g_rcs.resumed[0], 0);
  assert_int_equal(g_rcs.resumed[1], 1);
  rcs_finish(&e, rc);
  ts_finish(&e, server);

  /* Against openssl s_server, which says "Reused" on its page. */
  int port = free_port();
  char accept[64];
  snprintf(accept, sizeof accept, "127.0.0.1:%d", port);
  char *argv[] = {OPENSSL_BIN, "s_server", "-accept", accept, "-cert", (char *)path("server.pem"), "-key",
                  (char *)path("server.key"), "-www", NULL};
  pid_t pid = spawn(argv, -1, NULL);
  memset(&g_rcs, 0, sizeof g_rcs);
  g_rcs.request = "GET / HTTP/1.0\r\n\r\n";
  rc = rcs_start(&e, port, cctx); /* retries until s_server listens */
  assert_true(run_until(&e, c_rcs_two, NULL, NULL, NULL, 10000));
  assert_int_equal(g_rcs.resumed[g_rcs.made - 1], 1);
  rcs_finish(&e, rc);
  stop(pid);

  async_tls_context_release(sctx);
  async_tls_context_release(cctx);
  env_finish(&e);
}

/* Server-side SNI: the default certificate names wrong.example; the one
 * added for "localhost" goes to a client naming it (any case), the default
 * to other names; openssl s_client -servername sees the same. */
static void test_server_sni(void **state) {
  (void)state;
  struct env e;
  env_init(&e);
  async_tls_context *sctx = server_ctx("wronghost", 0, NULL);
  async_tls_context *named = server_ctx("server", 0, NULL);
  assert_int_equal(async_tls_context_add_server_name(sctx, "localhost", named), 0);
  async_tls_context_release(named); /* sctx holds it */
  async_tls_context *cctx = client_ctx("ca.pem", 0, NULL);
  async_server *server = ts_listen(&e, "127.0.0.1", sctx);
  int port = async_server_port(server);
  const char *names[] = {"localhost", "LocalHost", "wrong.example", "other.example"};
  int want[] = {0, 0, 0, ASYNC_ECERT};
  for (int i = 0; i < 4; i++) {
    struct side c = {0};
    async_future *f = tls_connect(&e, "127.0.0.1", port, cctx, names[i], &side_protocol, &c);
    assert_int_equal(tu_wait_future(e.loop, f, 5000), want[i]);
    if (want[i] == 0) {
      void *s = NULL;
      assert_int_equal(async_future_result(&s, f), 0);
      assert_int_equal(async_stream_close(s), 0);
    }
    assert_true(run_until(&e, c_released, &c, NULL, NULL, 3000));
    assert_int_equal(async_future_free(f), 0);
    side_free(&c);
  }

  char connect[64];
  snprintf(connect, sizeof connect, "127.0.0.1:%d", port);
  const char *out = path("sni.out");
  const char *sent[] = {"localhost", "wrong.example"};
  const char *subject[] = {"CN = server", "CN = wronghost"};
  for (int i = 0; i < 2; i++) {
    char *argv[] = {OPENSSL_BIN, "s_client", "-connect", connect, "-CAfile", (char *)path("ca.pem"), "-servername",
                    (char *)sent[i], "-verify_hostname", (char *)sent[i], "-verify_return_error", NULL};
    int in[2];
    assert_int_equal(pipe(in), 0);
    pid_t pid = spawn(argv, in[0], out);
    close(in[0]);
    int n = g_ts.factory_calls;
    assert_true(run_until(&e, c_ts_made, &n, NULL, NULL, 5000));
    close(in[1]);
    int status = 0;
    uint64_t t0 = tu_now_ms();
    while (waitpid(pid, &status, WNOHANG) == 0 && tu_now_ms() - t0 < 5000) run_once(&e, ASYNC_RUN_NOWAIT);
    stop(pid);
    assert_true(file_has(out, subject[i]));
    assert_true(file_has(out, "Verify return code: 0 (ok)"));
  }
  ts_finish(&e, server);
  async_tls_context_release(cctx);
  async_tls_context_release(sctx);
  env_finish(&e);
}

/* A TLS server's streams share one record of callbacks while its
 * factory returns the same ones: a connection given other callbacks gets
 * them, and a protocol replaced on one stream leaves the others as they
 * were. */
static int g_marked_made;
static void *g_marked_ud;
static void marked_made(async_stream *s, void *ud) {
  g_marked_made++;
  g_marked_ud = ud;
  ts_made(s, ud);
}

static const async_stream_protocol marked_protocol = {
    sizeof(async_stream_protocol), marked_made, side_data, side_eof, side_lost, NULL, NULL, NULL, side_release, 0,
    NULL,
};

static int mixed_factory(const async_stream_protocol **p, void **ud, async_server *s, void *userdata) {
  int rc = ts_factory(p, ud, s, userdata);
  if (rc == 0 && g_ts.factory_calls == 2) *p = &marked_protocol; /* the second connection */
  return rc;
}

static struct side g_replaced; /* the replacing protocol's side */

static void test_server_tls_shared_protocol(void **state) {
  (void)state;
  async_tls_context *cctx = client_ctx("ca.pem", 0, NULL);
  async_tls_context *sctx = server_ctx("server", 0, NULL);
  struct env e;
  env_init(&e);
  memset(&g_ts, 0, sizeof g_ts);
  memset(&g_replaced, 0, sizeof g_replaced);
  g_marked_made = 0;
  async_server *server = NULL;
  assert_int_equal(async_tcp_listen(&server, e.loop, "127.0.0.1", 0, 0, 0, mixed_factory, NULL), 0);
  assert_int_equal(async_server_set_tls(server, sctx), 0);
  struct side c[3];
  memset(c, 0, sizeof c);
  async_future *f[3];
  async_stream *cs[3];
  for (int i = 0; i < 3; i++) {
    f[i] = tls_connect(&e, "127.0.0.1", async_server_port(server), cctx, "localhost", &side_protocol, &c[i]);
    assert_int_equal(tu_wait_future(e.loop, f[i], 5000), 0);
    void *v = NULL;
    assert_int_equal(async_future_result(&v, f[i]), 0);
    cs[i] = v;
    assert_true(run_until(&e, c_ts_made, &i, NULL, NULL, 3000)); /* one at a time: conn[i] is client i's */
  }
  assert_int_equal(g_marked_made, 1);
  assert_ptr_equal(g_marked_ud, &g_ts.conn[1]);
  /* The first stream's protocol replaced: its old userdata is released. */
  assert_int_equal(async_stream_set_protocol(g_ts.conn[0].s, &side_protocol, &g_replaced), 0);
  assert_int_equal(g_ts.conn[0].released, 1);
  const char *text[3] = {"aaaa", "bbbbb", "cccccc"};
  for (int i = 0; i < 3; i++) assert_int_equal(async_stream_write(cs[i], text[i], strlen(text[i])), 0);
  g_want = 4;
  assert_true(run_until(&e, c_len, &g_replaced, NULL, NULL, 3000));
  g_want = 5;
  assert_true(run_until(&e, c_len, &g_ts.conn[1], NULL, NULL, 3000));
  g_want = 6;
  assert_true(run_until(&e, c_len, &g_ts.conn[2], NULL, NULL, 3000));
  assert_memory_equal(g_replaced.buf, "aaaa", 4);
  assert_memory_equal(g_ts.conn[1].buf, "bbbbb", 5);
  assert_memory_equal(g_ts.conn[2].buf, "cccccc", 6);
  assert_int_equal(g_ts.conn[0].len, 0); /* nothing reached the replaced protocol */
  for (int i = 0; i < 3; i++) {
    assert_int_equal(async_stream_close(cs[i]), 0);
    assert_true(run_until(&e, c_released, &c[i], NULL, NULL, 3000));
    assert_int_equal(async_future_free(f[i]), 0);
    side_free(&c[i]);
  }
  assert_true(run_until(&e, c_released, &g_replaced, NULL, NULL, 3000));
  for (int i = 1; i < 3; i++) assert_true(run_until(&e, c_ts_released, &i, NULL, NULL, 3000));
  assert_int_equal(g_replaced.lost_err, 0);
  side_free(&g_replaced);
  ts_finish(&e, server);
  async_tls_context_release(sctx);
  async_tls_context_release(cctx);
  env_finish(&e);
}

/* Cancelling (or freeing) async_tls_push()'s pending handshake future
 * aborts the stream above and the one below: the handshake stops. */
static void test_push_cancel(void **state) {
  (void)state;
  async_tls_context *cctx = client_ctx("ca.pem", 0, NULL);
  async_tls_context *sctx = server_ctx("server", 0, NULL);
  for (int how = 0; how < 2; how++) {
    struct pair p;
    pair_open(&p);
    pair_push(&p, cctx, "localhost", sctx);
    if (how == 0) {
      assert_int_equal(async_future_cancel(p.client_hs), 1);
    } else {
      assert_int_equal(async_future_free(p.client_hs), 0);
      p.client_hs = NULL;
    }
    assert_int_equal(p.cs.lost, 0); /* from the loop */
    assert_true(run_until(&p.e, c_both_released, &p, NULL, NULL, 3000));
    assert_int_equal(p.cs.lost_err, ASYNC_ECANCELED);
    assert_int_not_equal(status_of(p.server_hs), 0);
    assert_int_equal(p.a_plain.released, 1); /* the stream below went too */
    pair_finish(&p);
  }
  async_tls_context_release(cctx);
  async_tls_context_release(sctx);
}

/* Bad input to the connect, server and SNI calls. */
static void test_integration_bad_inputs(void **state) {
  (void)state;
  struct env e;
  env_init(&e);
  async_tls_context *cctx = client_ctx("ca.pem", 0, NULL);
  async_tls_context *sctx = server_ctx("server", 0, NULL);
  async_tls_context *sctx2 = server_ctx("wronghost", 0, NULL);
  async_future *f = NULL;
  struct side c = {0};
  async_connect_options o = ASYNC_CONNECT_OPTIONS_INIT;
  o.server_name = "localhost"; /* without tls */
  assert_int_equal(async_tcp_connect(&f, e.loop, "127.0.0.1", 1, &o, &side_protocol, &c), ASYNC_EINVAL);
  o.tls = sctx; /* a server context */
  assert_int_equal(async_tcp_connect(&f, e.loop, "127.0.0.1", 1, &o, &side_protocol, &c), ASYNC_EINVAL);
  o.tls = (async_tls_context *)e.loop; /* not a context */
  assert_int_equal(async_tcp_connect(&f, e.loop, "127.0.0.1", 1, &o, &side_protocol, &c), ASYNC_EINVAL);
  o.tls = cctx;
  o.server_name = "";
  assert_int_equal(async_tcp_connect(&f, e.loop, "127.0.0.1", 1, &o, &side_protocol, &c), ASYNC_EINVAL);
  char long_name[300];
  memset(long_name, 'a', sizeof long_name - 1);
  long_name[sizeof long_name - 1] = 0;
  o.server_name = long_name;
  assert_int_equal(async_tcp_connect(&f, e.loop, "127.0.0.1", 1, &o, &side_protocol, &c), ASYNC_EINVAL);
  async_reconnector *rc = NULL;
  o.tls = sctx;
  o.server_name = NULL;
  async_reconnect_options ro = {sizeof ro, &o, 0, 0, 0, 0, 0, NULL, NULL};
  assert_int_equal(async_reconnector_start(&rc, e.loop, "127.0.0.1", 1, &ro, &side_protocol, &c), ASYNC_EINVAL);
  assert_int_equal(c.released, 0); /* nothing was called */

  /* A refused connect with TLS fails as without it. */
  o.tls = cctx;
  assert_int_equal(async_tcp_connect(&f, e.loop, "127.0.0.1", (uint16_t)free_port(), &o, &side_protocol, &c), 0);
  assert_int_equal(tu_wait_future(e.loop, f, 3000), ASYNC_ECONNREFUSED);
  assert_int_equal(c.released, 1);
  assert_int_equal(async_future_free(f), 0);

  async_server *server = ts_listen(&e, "127.0.0.1", NULL);
  assert_int_equal(async_server_set_tls(server, cctx), ASYNC_EINVAL); /* a client context */
  assert_int_equal(async_server_set_tls(server, (async_tls_context *)e.loop), ASYNC_EINVAL);
  assert_int_equal(async_server_set_tls(NULL, sctx), ASYNC_EINVAL);
  assert_int_equal(async_server_set_tls((async_server *)sctx, sctx), ASYNC_EINVAL);
  assert_int_equal(async_server_set_tls(server, sctx), 0);
  assert_int_equal(async_server_set_tls(server, sctx2), 0); /* replaced: sctx's reference went */
  assert_int_equal(async_server_set_tls(server, NULL), 0);
  ts_finish(&e, server);

  assert_int_equal(async_tls_context_add_server_name(NULL, "a", sctx2), ASYNC_EINVAL);
  assert_int_equal(async_tls_context_add_server_name(sctx, NULL, sctx2), ASYNC_EINVAL);
  assert_int_equal(async_tls_context_add_server_name(sctx, "a", NULL), ASYNC_EINVAL);
  assert_int_equal(async_tls_context_add_server_name(cctx, "a", sctx2), ASYNC_EINVAL);
  assert_int_equal(async_tls_context_add_server_name(sctx, "a", cctx), ASYNC_EINVAL);
  assert_int_equal(async_tls_context_add_server_name(sctx, "a", sctx), ASYNC_EINVAL);
  assert_int_equal(async_tls_context_add_server_name(sctx, "", sctx2), ASYNC_EINVAL);
  assert_int_equal(async_tls_context_add_server_name(sctx, long_name, sctx2), ASYNC_EINVAL);
  assert_int_equal(async_tls_context_add_server_name(sctx, "a.example", sctx2), 0);
  assert_int_equal(async_tls_context_add_server_name(sctx, "A.example", sctx2), ASYNC_EINVAL); /* added */
  assert_int_equal(async_tls_context_add_server_name(sctx2, "b.example", sctx), ASYNC_EINVAL); /* sctx has names */
  assert_int_equal(async_tls_context_add_server_name(sctx2, "b.example", sctx2), ASYNC_EINVAL);

  async_tls_context_release(sctx2);
  async_tls_context_release(sctx);
  async_tls_context_release(cctx);
  env_finish(&e);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: test_tls tls_certs.sh\n");
    return 1;
  }
  g_certs_script = argv[1];
  snprintf(g_dir, sizeof g_dir, "/tmp/test_tls.XXXXXX");
  if (!mkdtemp(g_dir)) return 1;
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "sh %s %s", g_certs_script, g_dir);
  if (system(cmd) != 0) {
    fprintf(stderr, "tls_certs.sh failed\n");
    return 1;
  }
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_loopback),
      cmocka_unit_test(test_verify_failures),
      cmocka_unit_test(test_client_certificate),
      cmocka_unit_test(test_resumption),
      cmocka_unit_test(test_truncation),
      cmocka_unit_test(test_handshake_timeout),
      cmocka_unit_test(test_not_tls),
      cmocka_unit_test(test_starttls_and_pop),
      cmocka_unit_test(test_bad_inputs),
      cmocka_unit_test(test_s_server),
      cmocka_unit_test(test_s_server_sni_and_failures),
      cmocka_unit_test(test_s_server_truncation),
      cmocka_unit_test(test_s_client),
      cmocka_unit_test(test_reset),
      cmocka_unit_test(test_socat),
      cmocka_unit_test(test_connect_listen_tls),
      cmocka_unit_test(test_connect_tls_failures),
      cmocka_unit_test(test_listen_tls_failures),
      cmocka_unit_test(test_listen_tls_close_in_handshake),
      cmocka_unit_test(test_reconnector_tls),
      cmocka_unit_test(test_server_sni),
      cmocka_unit_test(test_server_tls_shared_protocol),
      cmocka_unit_test(test_push_cancel),
      cmocka_unit_test(test_integration_bad_inputs),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
  if (system(cmd) != 0) return 1;
  return failed;
}
