/*
 * DNS lookups per second on libasync with 100 lookups in flight: each
 * completion starts the next until `total` have completed.
 *
 * usage: dns_async dns SERVERS NAME [total]    against a DNS server
 *        dns_async hosts PATH NAME [total]     from a hosts file (no DNS)
 * Every lookup is AF_INET, no service, and must succeed. Prints lookups/s
 * and the process's thread count at the end (libasync creates none).
 */
#define _POSIX_C_SOURCE 200809L
#include <async.h>
#include <string.h>
#include <sys/socket.h>

#include "bench_common.h"

#define IN_FLIGHT 100

struct run {
  async_loop *loop;
  const char *name;
  unsigned long started, done, total;
};

static void start_one(struct run *r);

static void done_cb(async_future *future, int status, void *userdata) {
  struct run *r = userdata;
  BENCH_CHECK(status);
  BENCH_CHECK(async_future_free(future));
  r->done++;
  if (r->started < r->total) start_one(r);
}

static void start_one(struct run *r) {
  async_future *f;
  BENCH_CHECK(async_getaddrinfo(&f, r->loop, r->name, NULL, AF_INET, 0, 0));
  BENCH_CHECK(async_future_add_callback(f, done_cb, r));
  r->started++;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: dns_async dns|hosts SERVERS|PATH NAME [total]\n");
    return 2;
  }
  int dns = strcmp(argv[1], "dns") == 0;
  struct run r = {.name = argv[3], .total = argc > 4 ? strtoul(argv[4], NULL, 10) : 20000u};
  BENCH_CHECK(async_loop_new(&r.loop));
  if (dns) {
    BENCH_CHECK(async_dns_set_servers(r.loop, argv[2]));
    BENCH_CHECK(async_dns_set_hosts_file(r.loop, ""));
  } else {
    BENCH_CHECK(async_dns_set_hosts_file(r.loop, argv[2]));
  }
  BENCH_CHECK(async_dns_set_search(r.loop, "", 1));

  double t0 = bench_now();
  for (int i = 0; i < IN_FLIGHT && r.started < r.total; i++) start_one(&r);
  BENCH_CHECK(async_loop_run(r.loop, ASYNC_RUN_DEFAULT));
  double secs = bench_now() - t0;
  BENCH_ASSERT(r.done == r.total);
  int threads = bench_threads();
  BENCH_CHECK(async_loop_free(r.loop));
  printf("RESULT bench=dns_%s lib=libasync lookups=%lu secs=%.6f ops_per_sec=%.0f threads=%d\n", dns ? "server" : "hosts",
         r.done, secs, (double)r.done / secs, threads);
  return 0;
}
