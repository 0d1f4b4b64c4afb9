/*
 * What every TCP echo server (bench/echo_*.c) does the same way:
 *
 * - listens on 127.0.0.1:PORT (backlog 1024), TCP_NODELAY on every
 *   accepted connection;
 * - reads at most ECHO_READ_BUFFER bytes per read into one buffer shared
 *   by all connections, sends them back at once and keeps (copies) only
 *   what the socket did not take;
 * - stops reading a connection while more than ECHO_HIGH_WATER bytes are
 *   unsent and starts again once at most ECHO_LOW_WATER are, so a client
 *   that sends without reading (pump) cannot grow the server without bound:
 *   a connection holds less than ECHO_HIGH_WATER + ECHO_READ_BUFFER unsent
 *   bytes. These are libasync's default write marks, set explicitly in
 *   echo_async.c; echo_uv.c applies them to libuv's write queue;
 * - at end of file stops reading and closes once the unsent bytes are out;
 *   closes at once on any read or send error;
 * - prints "READY" once listening, runs until SIGTERM or SIGINT, then
 *   prints "CPU <seconds> MAXRSS_MIB <MiB>": its CPU time (user + system)
 *   and peak RSS, which bench/run_echo.sh divides by the operations the
 *   load generator counted.
 */
#ifndef ECHO_POLICY_H
#define ECHO_POLICY_H

#include "bench_common.h"

#define ECHO_READ_BUFFER 65536
#define ECHO_HIGH_WATER 65536
#define ECHO_LOW_WATER 16384
#define ECHO_BACKLOG 1024

/* The port from the command line (usage: NAME PORT); exits on bad usage. */
static inline int echo_port(int argc, char **argv) {
  int port = argc == 2 ? atoi(argv[1]) : 0;
  if (port <= 0 || port > 65535) {
    fprintf(stderr, "usage: %s PORT\n", argv[0]);
    exit(2);
  }
  return port;
}

static inline void echo_ready(void) {
  printf("READY\n");
  fflush(stdout);
}

static inline void echo_report(void) { printf("CPU %.6f MAXRSS_MIB %.1f\n", bench_cpu(), bench_maxrss_mib()); }

#endif
