/*
 * Echo server on raw epoll (level-triggered, one 64 KiB read buffer,
 * writes sent at once, the unsent rest buffered per connection): the
 * floor of event-loop overhead. Runs until SIGTERM/SIGINT, then prints its
 * CPU time.
 *
 * usage: echo_epoll PORT
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "bench_common.h"

struct conn {
  int fd;
  char *pending; /* bytes the socket did not take */
  size_t len;
};

static volatile sig_atomic_t stop;
static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

static void drop(int ep, struct conn *c) {
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  free(c->pending);
  free(c);
}

/* Sends buf (after anything pending); keeps the rest; 0 or -1 on error. */
static int send_or_keep(int ep, struct conn *c, const char *buf, size_t n) {
  size_t off = 0;
  if (c->len == 0) {
    ssize_t w = send(c->fd, buf, n, MSG_NOSIGNAL);
    if (w < 0 && errno != EAGAIN) return -1;
    off = w > 0 ? (size_t)w : 0;
  }
  if (off < n) {
    c->pending = realloc(c->pending, c->len + n - off);
    BENCH_ASSERT(c->pending);
    memcpy(c->pending + c->len, buf + off, n - off);
    c->len += n - off;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: echo_epoll PORT\n");
    return 2;
  }
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int on = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  BENCH_ASSERT(bind(lfd, (struct sockaddr *)&a, sizeof a) == 0 && listen(lfd, 1024) == 0);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);
  static char buf[65536];
  printf("READY\n");
  fflush(stdout);
  while (!stop) {
    struct epoll_event evs[256];
    int n = epoll_wait(ep, evs, 256, -1);
    for (int i = 0; i < n; i++) {
      struct conn *c = evs[i].data.ptr;
      if (!c) {
        int fd;
        while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
          struct conn *nc = calloc(1, sizeof *nc);
          BENCH_ASSERT(nc);
          nc->fd = fd;
          struct epoll_event ev = {.events = EPOLLIN, .data.ptr = nc};
          epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        }
        continue;
      }
      if (evs[i].events & EPOLLOUT) {
        ssize_t w = send(c->fd, c->pending, c->len, MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN) {
          drop(ep, c);
          continue;
        }
        if (w > 0) {
          memmove(c->pending, c->pending + w, c->len - (size_t)w);
          c->len -= (size_t)w;
        }
        if (c->len == 0) {
          struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
          epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        }
      }
      if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        ssize_t r = read(c->fd, buf, sizeof buf);
        if (r == 0 || (r < 0 && errno != EAGAIN) || (r > 0 && send_or_keep(ep, c, buf, (size_t)r) < 0)) drop(ep, c);
      }
    }
  }
  printf("CPU %.6f\n", bench_cpu());
  return 0;
}
