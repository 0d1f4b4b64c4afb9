/*
 * Echo server on raw epoll (level-triggered), the floor of event-loop
 * overhead: the connection logic of echo_conn.h, epoll_ctl(MOD) only when
 * the interest changes. Policy and output: echo_policy.h.
 *
 * usage: echo_epoll PORT
 */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/epoll.h>

#include "echo_conn.h"

struct conn {
  struct echo_conn io;
  uint32_t events; /* what epoll watches now */
};

static volatile sig_atomic_t stop;
static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

static void drop(struct conn *c) {
  echo_conn_close(&c->io); /* closing the fd removes it from the epoll set */
  free(c);
}

static void sync_interest(int ep, struct conn *c) {
  uint32_t want = (uint32_t)echo_conn_interest(&c->io, EPOLLIN, EPOLLOUT);
  if (want == c->events) return;
  c->events = want;
  struct epoll_event ev = {.events = want, .data.ptr = c};
  epoll_ctl(ep, EPOLL_CTL_MOD, c->io.fd, &ev);
}

static void accept_all(int ep, int lfd) {
  int fd;
  while ((fd = echo_accept(lfd)) >= 0) {
    struct conn *c = malloc(sizeof *c);
    BENCH_ASSERT(c);
    echo_conn_init(&c->io, fd);
    c->events = EPOLLIN;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }
}

int main(int argc, char **argv) {
  int lfd = echo_listen(echo_port(argc, argv));
  /* SIGTERM and SIGINT are blocked except inside epoll_pwait, so one cannot slip in between the check of stop and the wait */
  sigset_t stop_signals, wait_mask;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigprocmask(SIG_BLOCK, &stop_signals, &wait_mask);
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);
  echo_ready();
  while (!stop) {
    struct epoll_event evs[256];
    int n = epoll_pwait(ep, evs, 256, -1, &wait_mask);
    for (int i = 0; i < n; i++) {
      struct conn *c = evs[i].data.ptr;
      uint32_t e = evs[i].events;
      if (!c) {
        accept_all(ep, lfd);
        continue;
      }
      /* errors and hang-ups come without being asked for: they go to the send if bytes are unsent, else to the read */
      if (((e & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && c->io.len > 0 && echo_conn_writable(&c->io) < 0) ||
          ((e & (EPOLLIN | EPOLLERR | EPOLLHUP)) && c->io.reading && echo_conn_readable(&c->io) < 0))
        drop(c);
      else
        sync_interest(ep, c);
    }
  }
  echo_report();
  return 0;
}
