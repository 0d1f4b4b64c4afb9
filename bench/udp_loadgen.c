/*
 * UDP load generator on raw epoll (no library), for bench/run_udp.sh.
 *
 *   udp_loadgen PORT pingpong CONNS SIZE SECONDS
 *     CONNS sockets connected to 127.0.0.1:PORT, each with one SIZE-byte
 *     datagram in flight: a reply sends the next one (libuv's ping_udp
 *     workload, CONNS at a time). A datagram unanswered for 100 ms is sent
 *     again and counted lost. Prints
 *       RESULT trips=N seconds=T ops_per_sec=R p50_us=A p99_us=B lost=L
 *   udp_loadgen PORT flood SIZE SECONDS [SENDERS]
 *     SENDERS threads (default 1), each with its own socket, sending
 *     SIZE-byte datagrams to 127.0.0.1:PORT as fast as sendmmsg goes, 64
 *     per call (the senders of libuv's udp_pummel, in a process of their
 *     own so the loop under test only receives). Prints
 *       RESULT sent=N seconds=T
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "bench_common.h"

#define MAX_CONNS 1024
#define MAX_SIZE 65507
#define HIST_US 10000 /* latency histogram: 1 us buckets up to 10 ms */

static uint64_t hist[HIST_US + 1];
static uint8_t payload[MAX_SIZE];

/* A UDP socket connected to 127.0.0.1:port, non-blocking if asked. */
static int udp_socket(int port, int nonblock) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
  BENCH_CHECK(fd);
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  BENCH_CHECK(connect(fd, (struct sockaddr *)&to, sizeof to));
  return fd;
}

static double percentile_us(uint64_t total, double q) {
  uint64_t want = (uint64_t)((double)total * q), seen = 0;
  for (int i = 0; i <= HIST_US; i++) {
    seen += hist[i];
    if (seen > want) return i;
  }
  return HIST_US;
}

static int pingpong(int port, int conns, size_t size, double seconds) {
  static int fds[MAX_CONNS];
  static double sent_at[MAX_CONNS];
  int ep = epoll_create1(EPOLL_CLOEXEC);
  BENCH_CHECK(ep);
  for (int i = 0; i < conns; i++) {
    fds[i] = udp_socket(port, 1);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
    BENCH_CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev));
  }
  uint64_t trips = 0, lost = 0;
  double start = bench_now(), end = start + seconds;
  for (int i = 0; i < conns; i++) {
    sent_at[i] = bench_now();
    BENCH_CHECK(send(fds[i], payload, size, 0));
  }
  static char buf[MAX_SIZE];
  struct epoll_event ready[MAX_CONNS];
  double now = start;
  while (now < end) {
    int n = epoll_wait(ep, ready, MAX_CONNS, 20);
    if (n < 0 && errno == EINTR) continue;
    BENCH_CHECK(n);
    now = bench_now();
    for (int k = 0; k < n; k++) {
      int i = (int)ready[k].data.u32;
      while (recv(fds[i], buf, sizeof buf, 0) >= 0) {
        double us = (now - sent_at[i]) * 1e6;
        hist[us < HIST_US ? (int)us : HIST_US]++;
        trips++;
        sent_at[i] = now;
        if (send(fds[i], payload, size, 0) < 0 && errno != EAGAIN) BENCH_CHECK(-errno);
      }
    }
    for (int i = 0; i < conns; i++) {
      if (now - sent_at[i] > 0.1) { /* lost: send another */
        lost++;
        sent_at[i] = now;
        send(fds[i], payload, size, 0);
      }
    }
  }
  double elapsed = bench_now() - start;
  printf("RESULT trips=%llu seconds=%.3f ops_per_sec=%.0f p50_us=%.0f p99_us=%.0f lost=%llu\n",
         (unsigned long long)trips, elapsed, (double)trips / elapsed, percentile_us(trips, 0.5),
         percentile_us(trips, 0.99), (unsigned long long)lost);
  return 0;
}

struct sender {
  pthread_t thread;
  int port;
  size_t size;
  double seconds;
  uint64_t sent;
};

static void *send_flood(void *arg) {
  struct sender *s = arg;
  int fd = udp_socket(s->port, 0);
  enum { BATCH = 64 };
  struct mmsghdr msgs[BATCH];
  struct iovec iov = {payload, s->size};
  memset(msgs, 0, sizeof msgs);
  for (int i = 0; i < BATCH; i++) {
    msgs[i].msg_hdr.msg_iov = &iov;
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  double start = bench_now();
  while (bench_now() - start < s->seconds) {
    int n = sendmmsg(fd, msgs, BATCH, 0);
    if (n < 0 && (errno == EINTR || errno == ENOBUFS || errno == ECONNREFUSED)) continue;
    BENCH_CHECK(n);
    s->sent += (uint64_t)n;
  }
  close(fd);
  return NULL;
}

static int flood(int port, size_t size, double seconds, int senders) {
  static struct sender s[16];
  double start = bench_now();
  uint64_t sent = 0;
  for (int i = 0; i < senders; i++) {
    s[i] = (struct sender){.port = port, .size = size, .seconds = seconds};
    BENCH_ASSERT(pthread_create(&s[i].thread, NULL, send_flood, &s[i]) == 0);
  }
  for (int i = 0; i < senders; i++) {
    pthread_join(s[i].thread, NULL);
    sent += s[i].sent;
  }
  printf("RESULT sent=%llu seconds=%.3f\n", (unsigned long long)sent, bench_now() - start);
  return 0;
}

int main(int argc, char **argv) {
  int ok = argc >= 5 && ((strcmp(argv[2], "pingpong") == 0 && argc == 6) || (strcmp(argv[2], "flood") == 0 && (argc == 5 || argc == 6)));
  if (!ok) {
    fprintf(stderr, "usage: udp_loadgen PORT pingpong CONNS SIZE SECONDS | PORT flood SIZE SECONDS [SENDERS]\n");
    return 2;
  }
  int port = atoi(argv[1]);
  if (argv[2][0] == 'p') {
    int conns = atoi(argv[3]);
    size_t size = (size_t)atol(argv[4]);
    BENCH_ASSERT(conns > 0 && conns <= MAX_CONNS && size <= MAX_SIZE);
    return pingpong(port, conns, size, atof(argv[5]));
  }
  size_t size = (size_t)atol(argv[3]);
  BENCH_ASSERT(size <= MAX_SIZE);
  int senders = argc == 6 ? atoi(argv[5]) : 1;
  BENCH_ASSERT(senders >= 1 && senders <= 16);
  return flood(port, size, atof(argv[4]), senders);
}
