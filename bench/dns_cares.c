/*
 * The same workload as dns_async on raw c-ares driven by a hand-written
 * epoll loop (sock_state_cb + ares_process_fd + ares_timeout): the floor
 * libasync's DNS layer is measured against.
 *
 * usage: dns_cares SERVERS NAME [total]
 */
#define _POSIX_C_SOURCE 200809L
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h> /* ares.h uses fd_set */
#include <sys/socket.h>
#include <ares.h>

#include "bench_common.h"

#define IN_FLIGHT 100

struct run {
  ares_channel channel;
  int epfd;
  const char *name;
  unsigned long started, done, total;
};

static void sock_state_cb(void *data, ares_socket_t fd, int readable, int writable) {
  struct run *r = data;
  struct epoll_event ev = {.events = (readable ? EPOLLIN : 0u) | (writable ? EPOLLOUT : 0u), .data.fd = fd};
  if (!readable && !writable) {
    epoll_ctl(r->epfd, EPOLL_CTL_DEL, fd, NULL);
  } else if (epoll_ctl(r->epfd, EPOLL_CTL_MOD, fd, &ev) != 0) {
    BENCH_ASSERT(epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev) == 0);
  }
}

static void start_one(struct run *r);

static void done_cb(void *arg, int status, int timeouts, struct ares_addrinfo *result) {
  struct run *r = arg;
  (void)timeouts;
  BENCH_ASSERT(status == ARES_SUCCESS);
  ares_freeaddrinfo(result);
  r->done++;
  if (r->started < r->total) start_one(r);
}

static void start_one(struct run *r) {
  struct ares_addrinfo_hints hints = {.ai_flags = ARES_AI_NOSORT, .ai_family = AF_INET};
  r->started++;
  ares_getaddrinfo(r->channel, r->name, NULL, &hints, done_cb, r);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: dns_cares SERVERS NAME [total]\n");
    return 2;
  }
  struct run r = {.name = argv[2], .total = argc > 3 ? strtoul(argv[3], NULL, 10) : 20000u};
  BENCH_ASSERT(ares_library_init(ARES_LIB_INIT_ALL) == ARES_SUCCESS);
  r.epfd = epoll_create1(EPOLL_CLOEXEC);
  BENCH_ASSERT(r.epfd >= 0);
  /* The options libasync uses: its own lookups, DNS only, no search. */
  struct ares_options opts = {.sock_state_cb = sock_state_cb, .sock_state_cb_data = &r, .timeout = 2000, .tries = 2};
  char lookups[] = "b";
  opts.lookups = lookups;
  opts.ndomains = 0;
  int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_LOOKUPS | ARES_OPT_DOMAINS |
             ARES_OPT_NOROTATE;
  BENCH_ASSERT(ares_init_options(&r.channel, &opts, mask) == ARES_SUCCESS);
  BENCH_ASSERT(ares_set_servers_ports_csv(r.channel, argv[1]) == ARES_SUCCESS);

  double t0 = bench_now();
  for (int i = 0; i < IN_FLIGHT && r.started < r.total; i++) start_one(&r);
  while (r.done < r.total) {
    struct timeval tv;
    struct timeval *left = ares_timeout(r.channel, NULL, &tv);
    int timeout_ms = left ? (int)(left->tv_sec * 1000 + left->tv_usec / 1000) + 1 : -1;
    struct epoll_event events[64];
    int n = epoll_wait(r.epfd, events, 64, timeout_ms);
    for (int i = 0; i < n; i++) {
      int fd = events[i].data.fd;
      ares_process_fd(r.channel, (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) ? fd : ARES_SOCKET_BAD,
                      (events[i].events & EPOLLOUT) ? fd : ARES_SOCKET_BAD);
    }
    if (n == 0) ares_process_fd(r.channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
  }
  double secs = bench_now() - t0;
  int threads = bench_threads();
  ares_destroy(r.channel);
  ares_library_cleanup();
  printf("RESULT bench=dns_server lib=c-ares lookups=%lu secs=%.6f ops_per_sec=%.0f threads=%d\n", r.done, secs,
         (double)r.done / secs, threads);
  return 0;
}
