/*
 * What the raw-epoll load generators share (loadgen.c, tls_loadgen.c):
 * the echo pattern, a latency histogram, client sockets, a bounded epoll
 * wait and the RESULT line.
 */
#ifndef LOADGEN_COMMON_H
#define LOADGEN_COMMON_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "bench_common.h"

#define HIST_US 100000 /* latency histogram: 1 us buckets up to 100 ms */
#define READ_SIZE 65536
#define PATTERN_PERIOD 251 /* prime, so the pattern does not line up with power-of-two writes */

struct latencies {
  uint64_t count;
  uint32_t hist[HIST_US + 1];
};

static inline void latency_record(struct latencies *l, double seconds) {
  double us = seconds * 1e6;
  l->hist[us < HIST_US ? (int)us : HIST_US]++;
  l->count++;
}

static inline double latency_percentile(const struct latencies *l, double p) {
  uint64_t want = (uint64_t)((double)l->count * p), seen = 0;
  for (int i = 0; i <= HIST_US; i++) {
    seen += l->hist[i];
    if (seen > want) return i;
  }
  return HIST_US;
}

/* pattern[i] = i % PATTERN_PERIOD, size + READ_SIZE + PATTERN_PERIOD bytes
 * (a message or a read checked at any offset stays inside it). */
static inline char *loadgen_pattern(size_t size) {
  size_t n = size + READ_SIZE + PATTERN_PERIOD;
  char *p = malloc(n);
  BENCH_ASSERT(p);
  for (size_t i = 0; i < n; i++) p[i] = (char)(i % PATTERN_PERIOD);
  return p;
}

static inline void loadgen_loopback(struct sockaddr_in *addr, int port) {
  memset(addr, 0, sizeof *addr);
  addr->sin_family = AF_INET;
  addr->sin_port = htons((uint16_t)port);
  addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

/* A TCP socket (TCP_NODELAY; with linger_zero, close sends an RST). */
static inline int loadgen_socket(int type_flags, int linger_zero) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | type_flags, 0);
  BENCH_ASSERT(fd >= 0);
  int on = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  if (linger_zero) {
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  }
  return fd;
}

/* epoll_wait that fails the run when no event came for 5 s (a server that
 * stopped answering); who names the program in the message. */
static inline int loadgen_wait(int ep, struct epoll_event *evs, int max, const char *who) {
  int n = epoll_wait(ep, evs, max, 5000);
  if (n == 0) {
    fprintf(stderr, "%s: no event for 5 s: the server stopped answering\n", who);
    exit(1);
  }
  BENCH_ASSERT(n > 0 || errno == EINTR);
  return n > 0 ? n : 0;
}

/* RESULT mode=M ops=N secs=T ops_per_sec=R [mb_per_sec=] [p50_us= p99_us=] */
static inline void loadgen_result(const char *mode, uint64_t ops, double secs, int pump, const struct latencies *l) {
  printf("RESULT mode=%s ops=%llu secs=%.3f ops_per_sec=%.0f", mode, (unsigned long long)ops, secs,
         (double)ops / secs);
  if (pump) printf(" mb_per_sec=%.1f", (double)ops / secs / 1e6);
  if (l->count) printf(" p50_us=%.0f p99_us=%.0f", latency_percentile(l, 0.50), latency_percentile(l, 0.99));
  printf("\n");
}

#endif
