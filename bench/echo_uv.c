/*
 * Echo server on libuv with the same policy as the others: one shared
 * 64 KiB read buffer, uv_try_write first, only the unsent rest copied into
 * a uv_write. Runs until SIGTERM/SIGINT, then prints its CPU time.
 *
 * usage: echo_uv PORT
 */
#define _POSIX_C_SOURCE 200809L
#include <string.h>
#include <uv.h>

#include "bench_common.h"

static char buffer[65536];

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

static void on_written(uv_write_t *req, int status) {
  (void)status;
  free(req);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  if (n < 0) {
    uv_close((uv_handle_t *)s, on_closed);
    return;
  }
  if (n == 0) return;
  uv_buf_t b = uv_buf_init(buf->base, (unsigned)n);
  int sent = uv_try_write(s, &b, 1);
  if (sent < 0) sent = 0;
  if (sent < n) {
    struct pending_write *w = malloc(sizeof *w + (size_t)(n - sent));
    BENCH_ASSERT(w);
    memcpy(w->data, buf->base + sent, (size_t)(n - sent));
    uv_buf_t rest = uv_buf_init(w->data, (unsigned)(n - sent));
    BENCH_CHECK(uv_write(&w->req, s, &rest, 1, on_written));
  }
}

static void on_connection(uv_stream_t *server, int status) {
  BENCH_CHECK(status);
  uv_tcp_t *client = malloc(sizeof *client);
  BENCH_ASSERT(client);
  BENCH_CHECK(uv_tcp_init(server->loop, client));
  BENCH_CHECK(uv_accept(server, (uv_stream_t *)client));
  uv_tcp_nodelay(client, 1);
  BENCH_CHECK(uv_read_start((uv_stream_t *)client, on_alloc, on_read));
}

static void on_signal(uv_signal_t *s, int signum) {
  (void)signum;
  uv_stop(s->loop);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: echo_uv PORT\n");
    return 2;
  }
  uv_loop_t *loop = uv_default_loop();
  uv_tcp_t server;
  BENCH_CHECK(uv_tcp_init(loop, &server));
  struct sockaddr_in addr;
  BENCH_CHECK(uv_ip4_addr("127.0.0.1", atoi(argv[1]), &addr));
  BENCH_CHECK(uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0));
  BENCH_CHECK(uv_listen((uv_stream_t *)&server, 1024, on_connection));
  uv_signal_t term, intr;
  uv_signal_init(loop, &term);
  uv_signal_init(loop, &intr);
  uv_signal_start(&term, on_signal, SIGTERM);
  uv_signal_start(&intr, on_signal, SIGINT);
  printf("READY\n");
  fflush(stdout);
  uv_run(loop, UV_RUN_DEFAULT);
  printf("CPU %.6f\n", bench_cpu());
  return 0;
}
