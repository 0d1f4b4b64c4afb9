/*
 * The hosts-file workload on libuv: uv_getaddrinfo (libc getaddrinfo on
 * libuv's thread pool, which reads /etc/hosts through nsswitch) with 100
 * lookups in flight. Neither can be pointed at another hosts file, so the
 * runner uses a name from /etc/hosts and gives libasync that same file.
 *
 * usage: dns_uv NAME [total]
 */
#define _POSIX_C_SOURCE 200809L
#include <netdb.h>
#include <string.h>
#include <sys/socket.h>
#include <uv.h>

#include "bench_common.h"

#define IN_FLIGHT 100

struct run {
  uv_loop_t *loop;
  const char *name;
  unsigned long started, done, total;
  int max_threads;
};

static void start_one(struct run *r);

static void done_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  struct run *r = req->data;
  BENCH_CHECK(status);
  uv_freeaddrinfo(res);
  free(req);
  r->done++;
  if ((r->done & 1023) == 0) {
    int threads = bench_threads();
    if (threads > r->max_threads) r->max_threads = threads;
  }
  if (r->started < r->total) start_one(r);
}

static void start_one(struct run *r) {
  uv_getaddrinfo_t *req = malloc(sizeof *req);
  BENCH_ASSERT(req);
  req->data = r;
  struct addrinfo hints = {.ai_family = AF_INET};
  r->started++;
  BENCH_CHECK(uv_getaddrinfo(r->loop, req, done_cb, r->name, NULL, &hints));
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: dns_uv NAME [total]\n");
    return 2;
  }
  struct run r = {.loop = uv_default_loop(), .name = argv[1], .total = argc > 2 ? strtoul(argv[2], NULL, 10) : 20000u};
  double t0 = bench_now();
  for (int i = 0; i < IN_FLIGHT && r.started < r.total; i++) start_one(&r);
  BENCH_CHECK(uv_run(r.loop, UV_RUN_DEFAULT));
  double secs = bench_now() - t0;
  BENCH_ASSERT(r.done == r.total);
  int threads = bench_threads();
  if (threads > r.max_threads) r.max_threads = threads;
  printf("RESULT bench=dns_hosts lib=libuv lookups=%lu secs=%.6f ops_per_sec=%.0f threads=%d\n", r.done, secs,
         (double)r.done / secs, r.max_threads);
  return 0;
}
