/*
 * Shared by the UDP benchmark servers (udp_async.c, udp_uv.c,
 * udp_epoll.c) and bench/run_udp.sh: command line, readiness line, the
 * datagram count and the result line.
 */
#ifndef BENCH_UDP_H
#define BENCH_UDP_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"

/* Receive buffer every server asks for (the kernel caps it at rmem_max). */
#define UDP_BENCH_RCVBUF (4 * 1024 * 1024)

/* Datagrams received, and when the first and the last came. */
struct udp_count {
  uint64_t n;
  double first;
  double last;
};

static inline void udp_count_one(struct udp_count *c) {
  double now = bench_now();
  if (c->n++ == 0) c->first = now;
  c->last = now;
}

/* 1 for "PORT echo", 0 for "PORT sink"; exits with the usage otherwise. */
static inline int udp_server_mode(int argc, char **argv, const char *name) {
  if (argc != 3 || (strcmp(argv[2], "echo") != 0 && strcmp(argv[2], "sink") != 0)) {
    fprintf(stderr, "usage: %s PORT echo|sink\n", name);
    exit(2);
  }
  return strcmp(argv[2], "echo") == 0;
}

static inline void udp_ready(void) {
  printf("READY\n");
  fflush(stdout);
}

static inline void udp_count_print(const struct udp_count *c) {
  printf("RESULT received=%llu span=%.6f cpu=%.6f\n", (unsigned long long)c->n, c->n ? c->last - c->first : 0.0,
         bench_cpu());
  fflush(stdout);
}

#endif
