/*
 * What every TLS echo server (bench/tls_echo_*.c) does the same way, on
 * top of the TCP echo policy of echo_policy.h (127.0.0.1:PORT, TCP_NODELAY,
 * one shared read buffer, the same high/low-water marks, READY when
 * listening, SIGTERM/SIGINT to stop):
 *
 * - TLS with OpenSSL's defaults for a server context (TLS 1.3 when the
 *   client offers it, its default cipher suites and groups, two session
 *   tickets after a handshake), TLS 1.2 at least, the certificate chain
 *   and key of the files on the command line (made at bench time by
 *   bench/run_tls.sh);
 * - the plaintext each record carries is echoed back as it comes;
 * - on SIGUSR1 prints "HEAP <bytes>": the bytes in use in the malloc heap
 *   (mallinfo2: arena blocks in use plus mmap-ed blocks), which
 *   bench/run_tls.sh reads with N and then M idle connections open to
 *   get the heap per idle connection;
 * - at exit prints "CPU <seconds> MAXRSS_MIB <MiB>" (echo_report()).
 *
 * usage: tls_echo_NAME PORT CERT_FILE KEY_FILE
 */
#ifndef TLS_POLICY_H
#define TLS_POLICY_H

#include <malloc.h>

#include "echo_policy.h"

/* Enough fds for bench/run_tls.sh's idle connections (and then some). */
#define TLS_MAX_FDS 8192

struct tls_args {
  int port;
  const char *cert, *key;
};

/* The command line (usage: NAME PORT CERT_FILE KEY_FILE); exits on bad usage. */
static inline struct tls_args tls_args(int argc, char **argv) {
  struct tls_args a = {argc == 4 ? atoi(argv[1]) : 0, argc == 4 ? argv[2] : NULL, argc == 4 ? argv[3] : NULL};
  if (a.port <= 0 || a.port > 65535) {
    fprintf(stderr, "usage: %s PORT CERT_FILE KEY_FILE\n", argv[0]);
    exit(2);
  }
  bench_raise_nofile(TLS_MAX_FDS);
  return a;
}

/* The "HEAP <bytes>" line of SIGUSR1 (called from the loop, not from a signal handler). */
static inline void tls_report_heap(void) {
  struct mallinfo2 mi = mallinfo2();
  printf("HEAP %zu\n", mi.uordblks + mi.hblkhd);
  fflush(stdout);
}

#endif
