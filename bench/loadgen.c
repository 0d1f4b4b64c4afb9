/*
 * Load generator on raw epoll (no event library), so the servers are
 * measured against the same client.
 *
 * ping-pong: C connections each send an S-byte message and wait for the
 * whole echo before sending the next, for D seconds. Prints round trips/s
 * and the p50/p99 round-trip latency.
 *
 * usage: loadgen PORT C S D
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "bench_common.h"

#define HIST_US 100000 /* latency histogram: 1 us buckets up to 100 ms */

struct conn {
  int fd;
  size_t got;    /* echo bytes received for the current message */
  double sent_at;
};

static uint32_t hist[HIST_US + 1];

static void send_message(struct conn *c, const char *msg, size_t size) {
  c->got = 0;
  c->sent_at = bench_now();
  size_t off = 0;
  while (off < size) { /* small messages: the socket takes them at once */
    ssize_t w = send(c->fd, msg + off, size - off, MSG_NOSIGNAL);
    if (w < 0 && errno == EAGAIN) continue;
    BENCH_ASSERT(w > 0);
    off += (size_t)w;
  }
}

static double percentile(uint64_t total, double p) {
  uint64_t want = (uint64_t)((double)total * p), seen = 0;
  for (int i = 0; i <= HIST_US; i++) {
    seen += hist[i];
    if (seen > want) return i;
  }
  return HIST_US;
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: loadgen PORT CONNECTIONS SIZE SECONDS\n");
    return 2;
  }
  int port = atoi(argv[1]), nconn = atoi(argv[2]);
  size_t size = (size_t)atol(argv[3]);
  double seconds = atof(argv[4]);
  char *msg = malloc(size), *buf = malloc(65536);
  struct conn *conns = calloc((size_t)nconn, sizeof *conns);
  BENCH_ASSERT(msg && buf && conns && nconn > 0 && size > 0);
  memset(msg, 'x', size);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = 0; i < nconn; i++) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    BENCH_ASSERT(fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
    int on = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    conns[i].fd = fd;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &conns[i]};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }
  double t0 = bench_now(), end = t0 + seconds;
  uint64_t trips = 0;
  for (int i = 0; i < nconn; i++) send_message(&conns[i], msg, size);
  for (;;) {
    struct epoll_event evs[256];
    int n = epoll_wait(ep, evs, 256, 1000);
    double now = bench_now();
    for (int i = 0; i < n; i++) {
      struct conn *c = evs[i].data.ptr;
      ssize_t r = read(c->fd, buf, 65536);
      BENCH_ASSERT(r > 0);
      c->got += (size_t)r;
      if (c->got < size) continue;
      BENCH_ASSERT(c->got == size);
      trips++;
      double us = (now - c->sent_at) * 1e6;
      hist[us < HIST_US ? (int)us : HIST_US]++;
      if (now < end) send_message(c, msg, size);
    }
    if (now >= end) break;
  }
  double secs = bench_now() - t0;
  printf("RESULT trips=%llu secs=%.3f ops_per_sec=%.0f p50_us=%.0f p99_us=%.0f\n", (unsigned long long)trips, secs,
         (double)trips / secs, percentile(trips, 0.50), percentile(trips, 0.99));
  return 0;
}
