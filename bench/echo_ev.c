/*
 * Echo server on raw libev: one ev_io per connection (its events changed
 * only when the interest changes), the connection logic of echo_conn.h, a
 * loop from ev_loop_new with libasync's flags (epoll backend). Policy and
 * output: echo_policy.h.
 *
 * usage: echo_ev PORT
 */
#define _GNU_SOURCE
#include <ev.h>
#include <signal.h>

#include "echo_conn.h"

#define LOOP_FLAGS (EVBACKEND_EPOLL | EVFLAG_NOENV | EVFLAG_NOTIMERFD)

struct conn {
  ev_io watcher; /* first: the callback gets it as the conn */
  struct echo_conn io;
};

static void on_conn(struct ev_loop *loop, ev_io *w, int revents) {
  struct conn *c = (struct conn *)w;
  if (((revents & EV_WRITE) && echo_conn_writable(&c->io) < 0) ||
      ((revents & EV_READ) && echo_conn_readable(&c->io) < 0)) {
    ev_io_stop(loop, w);
    echo_conn_close(&c->io);
    free(c);
    return;
  }
  int want = echo_conn_interest(&c->io, EV_READ, EV_WRITE);
  if (want == (w->events & (EV_READ | EV_WRITE))) return;
  ev_io_stop(loop, w);
  ev_io_modify(w, want);
  ev_io_start(loop, w);
}

static void on_listen(struct ev_loop *loop, ev_io *w, int revents) {
  (void)revents;
  int fd;
  while ((fd = echo_accept(w->fd)) >= 0) {
    struct conn *c = malloc(sizeof *c);
    BENCH_ASSERT(c);
    echo_conn_init(&c->io, fd);
    ev_io_init(&c->watcher, on_conn, fd, EV_READ);
    ev_io_start(loop, &c->watcher);
  }
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents) {
  (void)w;
  (void)revents;
  ev_break(loop, EVBREAK_ALL);
}

int main(int argc, char **argv) {
  int lfd = echo_listen(echo_port(argc, argv));
  struct ev_loop *loop = ev_loop_new(LOOP_FLAGS);
  BENCH_ASSERT(loop);
  ev_io listener;
  ev_io_init(&listener, on_listen, lfd, EV_READ);
  ev_io_start(loop, &listener);
  ev_signal term, intr;
  ev_signal_init(&term, on_signal, SIGTERM);
  ev_signal_init(&intr, on_signal, SIGINT);
  ev_signal_start(loop, &term);
  ev_signal_start(loop, &intr);
  echo_ready();
  ev_run(loop, 0);
  echo_report();
  return 0;
}
