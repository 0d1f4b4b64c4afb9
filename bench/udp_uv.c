/*
 * UDP server on libuv, at its best: recvmmsg (UV_UDP_RECVMMSG, one static
 * buffer of 20 datagram slots), echoes with uv_udp_try_send and, only when
 * the socket is full, a copied uv_udp_send. Modes and result line as
 * udp_async.c.
 *
 * usage: udp_uv PORT echo|sink
 */
#define _POSIX_C_SOURCE 200809L
#include <string.h>
#include <uv.h>

#include "bench_common.h"
#include "bench_udp.h"

#define SLOTS 20
static char buffer[SLOTS * 65536];
static struct udp_count count;
static int echo;

struct pending_send {
  uv_udp_send_t req;
  char data[];
};

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  (void)suggested;
  *buf = uv_buf_init(buffer, sizeof buffer);
}

static void on_sent(uv_udp_send_t *req, int status) {
  (void)status;
  free(req);
}

static void on_recv(uv_udp_t *u, ssize_t n, const uv_buf_t *buf, const struct sockaddr *addr, unsigned flags) {
  (void)flags;
  if (n < 0 || addr == NULL) return; /* nothing more to read now, or the buffer's last call */
  udp_count_one(&count);
  if (!echo) return;
  uv_buf_t b = uv_buf_init(buf->base, (unsigned)n);
  if (uv_udp_try_send(u, &b, 1, addr) >= 0) return;
  struct pending_send *s = malloc(sizeof *s + (size_t)n);
  BENCH_ASSERT(s);
  memcpy(s->data, buf->base, (size_t)n);
  uv_buf_t copy = uv_buf_init(s->data, (unsigned)n);
  BENCH_CHECK(uv_udp_send(&s->req, u, &copy, 1, addr, on_sent));
}

static void on_signal(uv_signal_t *s, int signum) {
  (void)signum;
  uv_stop(s->loop);
}

int main(int argc, char **argv) {
  echo = udp_server_mode(argc, argv, "udp_uv");
  uv_loop_t *loop = uv_default_loop();
  uv_udp_t u;
  BENCH_CHECK(uv_udp_init_ex(loop, &u, AF_INET | UV_UDP_RECVMMSG));
  struct sockaddr_in addr;
  BENCH_CHECK(uv_ip4_addr("127.0.0.1", atoi(argv[1]), &addr));
  BENCH_CHECK(uv_udp_bind(&u, (const struct sockaddr *)&addr, 0));
  int rcvbuf = UDP_BENCH_RCVBUF;
  uv_recv_buffer_size((uv_handle_t *)&u, &rcvbuf);
  BENCH_CHECK(uv_udp_recv_start(&u, on_alloc, on_recv));
  BENCH_ASSERT(uv_udp_using_recvmmsg(&u));
  uv_signal_t term, intr;
  uv_signal_init(loop, &term);
  uv_signal_init(loop, &intr);
  uv_signal_start(&term, on_signal, SIGTERM);
  uv_signal_start(&intr, on_signal, SIGINT);
  udp_ready();
  uv_run(loop, UV_RUN_DEFAULT);
  udp_count_print(&count);
  return 0;
}
