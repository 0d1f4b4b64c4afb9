/*
 * TLS echo server on libuv and OpenSSL through memory BIOs, as libuv users
 * put TLS on a uv_stream (libuv has no TLS of its own): what libuv reads
 * goes into the connection's input BIO, SSL_read takes the plaintext out
 * and SSL_write puts it back, and the output BIO's records go to the socket
 * with uv_try_write, the unsent rest copied into a uv_write. Reading stops
 * while libuv's write queue holds more than the high-water mark and starts
 * again at the low-water mark (echo_uv.c's policy). Policy and output:
 * tls_policy.h.
 *
 * usage: tls_echo_uv PORT CERT_FILE KEY_FILE
 */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <string.h>
#include <uv.h>

#include "tls_raw.h"

static char buffer[ECHO_READ_BUFFER];
static SSL_CTX *ctx;

struct client {
  uv_tcp_t tcp; /* first: the callbacks get it as the client */
  SSL *ssl;
  BIO *in, *out; /* records from the socket; records for the socket */
  int paused;    /* reading stopped by the high-water mark */
};

struct pending_write {
  uv_write_t req;
  char data[]; /* the unsent rest */
};

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  (void)suggested;
  *buf = uv_buf_init(buffer, sizeof buffer);
}

static void on_closed(uv_handle_t *h) {
  struct client *c = (struct client *)h;
  SSL_free(c->ssl); /* and its BIOs */
  free(c);
}

static void drop(struct client *c) {
  if (!uv_is_closing((uv_handle_t *)c)) uv_close((uv_handle_t *)c, on_closed);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void on_written(uv_write_t *req, int status) {
  struct client *c = (struct client *)req->handle;
  free(req);
  if (uv_is_closing((uv_handle_t *)c)) return;
  if (status < 0) {
    drop(c);
    return;
  }
  if (!c->paused || c->tcp.write_queue_size > ECHO_LOW_WATER) return;
  c->paused = 0;
  BENCH_CHECK(uv_read_start((uv_stream_t *)c, on_alloc, on_read));
}

/* The records OpenSSL wrote go to the socket: -1 to close. */
static int flush(struct client *c) {
  char *bytes;
  long n = BIO_get_mem_data(c->out, &bytes);
  if (n <= 0) return 0;
  uv_buf_t b = uv_buf_init(bytes, (unsigned)n);
  int sent = c->tcp.write_queue_size == 0 ? uv_try_write((uv_stream_t *)c, &b, 1) : 0;
  if (sent < 0) sent = 0;
  if (sent < n) {
    struct pending_write *w = malloc(sizeof *w + (size_t)(n - sent));
    BENCH_ASSERT(w);
    memcpy(w->data, bytes + sent, (size_t)(n - sent));
    uv_buf_t rest = uv_buf_init(w->data, (unsigned)(n - sent));
    if (uv_write(&w->req, (uv_stream_t *)c, &rest, 1, on_written) < 0) {
      free(w);
      return -1;
    }
  }
  (void)BIO_reset(c->out);
  return 0;
}

/* The handshake, then the plaintext of the records in: echoed. -1 to close. */
static int advance(struct client *c) {
  if (!SSL_is_init_finished(c->ssl)) {
    int rc = SSL_do_handshake(c->ssl);
    if (rc != 1) {
      int err = SSL_get_error(c->ssl, rc);
      ERR_clear_error();
      return flush(c) < 0 || err != SSL_ERROR_WANT_READ ? -1 : 0;
    }
  }
  int n;
  while ((n = SSL_read(c->ssl, buffer, sizeof buffer)) > 0)
    if (SSL_write(c->ssl, buffer, n) != n) return -1; /* a memory BIO takes everything */
  int err = SSL_get_error(c->ssl, n);
  ERR_clear_error();
  return flush(c) < 0 || err != SSL_ERROR_WANT_READ ? -1 : 0;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  struct client *c = (struct client *)s;
  if (n < 0) { /* the load generator ends with a reset; no close_notify dance */
    drop(c);
    return;
  }
  if (n == 0) return;
  if (BIO_write(c->in, buf->base, (int)n) != n || advance(c) < 0) {
    drop(c);
    return;
  }
  if (s->write_queue_size > ECHO_HIGH_WATER) {
    c->paused = 1;
    uv_read_stop(s);
  }
}

static void on_connection(uv_stream_t *server, int status) {
  BENCH_CHECK(status);
  struct client *c = calloc(1, sizeof *c);
  BENCH_ASSERT(c);
  BENCH_CHECK(uv_tcp_init(server->loop, &c->tcp));
  c->ssl = SSL_new(ctx);
  c->in = BIO_new(BIO_s_mem());
  c->out = BIO_new(BIO_s_mem());
  BENCH_ASSERT(c->ssl && c->in && c->out);
  BIO_set_mem_eof_return(c->in, -1); /* drained means "more to come" */
  SSL_set_bio(c->ssl, c->in, c->out);
  SSL_set_accept_state(c->ssl);
  BENCH_CHECK(uv_accept(server, (uv_stream_t *)c));
  uv_tcp_nodelay(&c->tcp, 1);
  BENCH_CHECK(uv_read_start((uv_stream_t *)c, on_alloc, on_read));
}

static void on_signal(uv_signal_t *s, int signum) {
  if (signum == SIGUSR1)
    tls_report_heap();
  else
    uv_stop(s->loop);
}

int main(int argc, char **argv) {
  struct tls_args args = tls_args(argc, argv);
  ctx = tls_raw_server_ctx(&args);
  signal(SIGPIPE, SIG_IGN); /* libuv writes with write(2): a reset peer would kill the process */
  uv_loop_t *loop = uv_default_loop();
  uv_tcp_t server;
  BENCH_CHECK(uv_tcp_init(loop, &server));
  struct sockaddr_in addr;
  BENCH_CHECK(uv_ip4_addr("127.0.0.1", args.port, &addr));
  BENCH_CHECK(uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0));
  BENCH_CHECK(uv_listen((uv_stream_t *)&server, ECHO_BACKLOG, on_connection));
  uv_signal_t term, intr, usr1;
  uv_signal_init(loop, &term);
  uv_signal_init(loop, &intr);
  uv_signal_init(loop, &usr1);
  uv_signal_start(&term, on_signal, SIGTERM);
  uv_signal_start(&intr, on_signal, SIGINT);
  uv_signal_start(&usr1, on_signal, SIGUSR1);
  echo_ready();
  uv_run(loop, UV_RUN_DEFAULT);
  echo_report();
  return 0;
}
