/*
 * Echo server on libuv, written as a performance-minded libuv user would:
 * one shared read buffer, uv_try_write first, only the unsent rest copied
 * into a uv_write; reading stops while libuv's write queue holds more than
 * the high-water mark and starts again at the low-water mark. Policy and
 * output: echo_policy.h.
 *
 * usage: echo_uv PORT
 */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <string.h>
#include <uv.h>

#include "echo_policy.h"

static char buffer[ECHO_READ_BUFFER];

struct client {
  uv_tcp_t tcp; /* first: the callbacks get it as the client */
  int paused;   /* reading stopped by the high-water mark */
  uv_shutdown_t shutdown; /* at end of file with writes queued */
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

static void on_closed(uv_handle_t *h) { free(h); }

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void on_shutdown(uv_shutdown_t *req, int status) {
  (void)status;
  if (!uv_is_closing((uv_handle_t *)req->handle)) uv_close((uv_handle_t *)req->handle, on_closed);
}

static void on_written(uv_write_t *req, int status) {
  struct client *c = (struct client *)req->handle;
  free(req);
  if (uv_is_closing((uv_handle_t *)c)) return;
  if (status < 0) { /* a paused stream would never see the error through a read */
    uv_close((uv_handle_t *)c, on_closed);
    return;
  }
  if (!c->paused || c->tcp.write_queue_size > ECHO_LOW_WATER) return;
  c->paused = 0;
  BENCH_CHECK(uv_read_start((uv_stream_t *)c, on_alloc, on_read));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  if (n == UV_EOF && s->write_queue_size > 0) { /* closes once the queued writes are out */
    BENCH_CHECK(uv_shutdown(&((struct client *)s)->shutdown, s, on_shutdown));
    return;
  }
  if (n < 0) {
    uv_close((uv_handle_t *)s, on_closed);
    return;
  }
  if (n == 0) return;
  uv_buf_t b = uv_buf_init(buf->base, (unsigned)n);
  int sent = uv_try_write(s, &b, 1);
  if (sent < 0) sent = 0;
  if (sent == n) return;
  struct pending_write *w = malloc(sizeof *w + (size_t)(n - sent));
  BENCH_ASSERT(w);
  memcpy(w->data, buf->base + sent, (size_t)(n - sent));
  uv_buf_t rest = uv_buf_init(w->data, (unsigned)(n - sent));
  if (uv_write(&w->req, s, &rest, 1, on_written) < 0) {
    free(w);
    uv_close((uv_handle_t *)s, on_closed);
    return;
  }
  if (s->write_queue_size > ECHO_HIGH_WATER) {
    ((struct client *)s)->paused = 1;
    uv_read_stop(s);
  }
}

static void on_connection(uv_stream_t *server, int status) {
  BENCH_CHECK(status);
  struct client *c = malloc(sizeof *c);
  BENCH_ASSERT(c);
  c->paused = 0;
  BENCH_CHECK(uv_tcp_init(server->loop, &c->tcp));
  BENCH_CHECK(uv_accept(server, (uv_stream_t *)c));
  uv_tcp_nodelay(&c->tcp, 1);
  BENCH_CHECK(uv_read_start((uv_stream_t *)c, on_alloc, on_read));
}

static void on_signal(uv_signal_t *s, int signum) {
  (void)signum;
  uv_stop(s->loop);
}

int main(int argc, char **argv) {
  int port = echo_port(argc, argv);
  signal(SIGPIPE, SIG_IGN); /* libuv writes with write(2): a reset peer would kill the process */
  uv_loop_t *loop = uv_default_loop();
  uv_tcp_t server;
  BENCH_CHECK(uv_tcp_init(loop, &server));
  struct sockaddr_in addr;
  BENCH_CHECK(uv_ip4_addr("127.0.0.1", port, &addr));
  BENCH_CHECK(uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0));
  BENCH_CHECK(uv_listen((uv_stream_t *)&server, ECHO_BACKLOG, on_connection));
  uv_signal_t term, intr;
  uv_signal_init(loop, &term);
  uv_signal_init(loop, &intr);
  uv_signal_start(&term, on_signal, SIGTERM);
  uv_signal_start(&intr, on_signal, SIGINT);
  echo_ready();
  uv_run(loop, UV_RUN_DEFAULT);
  echo_report();
  return 0;
}
