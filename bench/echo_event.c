/*
 * Echo server on libevent's raw event API (no bufferevents: they would
 * read every byte into an evbuffer before it can be written back): a
 * persistent read event and a persistent write event per connection, added
 * and deleted only when the interest changes, the connection logic of
 * echo_conn.h, event_base_new() defaults (epoll backend). Policy and
 * output: echo_policy.h.
 *
 * usage: echo_event PORT
 */
#define _GNU_SOURCE
#include <event2/event.h>
#include <signal.h>

#include "echo_conn.h"

struct conn {
  struct echo_conn io;
  struct event *read_event, *write_event;
  int watching; /* EV_READ | EV_WRITE: the events added now */
};

static void drop(struct conn *c) {
  event_free(c->read_event);
  event_free(c->write_event);
  echo_conn_close(&c->io);
  free(c);
}

static void set_event(struct event *ev, int on) {
  BENCH_CHECK(on ? event_add(ev, NULL) : event_del(ev));
}

static void sync_interest(struct conn *c) {
  int want = echo_conn_interest(&c->io, EV_READ, EV_WRITE), change = want ^ c->watching;
  if (change & EV_READ) set_event(c->read_event, want & EV_READ);
  if (change & EV_WRITE) set_event(c->write_event, want & EV_WRITE);
  c->watching = want;
}

/* The callback of both events of a connection: what says which fired. */
static void on_event(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  struct conn *c = arg;
  if (((what & EV_WRITE) ? echo_conn_writable(&c->io) : echo_conn_readable(&c->io)) < 0)
    drop(c);
  else
    sync_interest(c);
}

static void on_listen(evutil_socket_t lfd, short what, void *arg) {
  (void)what;
  struct event_base *base = arg;
  int fd;
  while ((fd = echo_accept(lfd)) >= 0) {
    struct conn *c = malloc(sizeof *c);
    BENCH_ASSERT(c);
    echo_conn_init(&c->io, fd);
    c->read_event = event_new(base, fd, EV_READ | EV_PERSIST, on_event, c);
    c->write_event = event_new(base, fd, EV_WRITE | EV_PERSIST, on_event, c);
    BENCH_ASSERT(c->read_event && c->write_event);
    c->watching = 0;
    sync_interest(c);
  }
}

static void on_signal(evutil_socket_t signum, short what, void *arg) {
  (void)signum;
  (void)what;
  event_base_loopbreak(arg);
}

int main(int argc, char **argv) {
  int lfd = echo_listen(echo_port(argc, argv));
  struct event_base *base = event_base_new();
  BENCH_ASSERT(base);
  struct event *listener = event_new(base, lfd, EV_READ | EV_PERSIST, on_listen, base);
  struct event *term = evsignal_new(base, SIGTERM, on_signal, base);
  struct event *intr = evsignal_new(base, SIGINT, on_signal, base);
  BENCH_ASSERT(listener && term && intr);
  BENCH_CHECK(event_add(listener, NULL));
  BENCH_CHECK(event_add(term, NULL));
  BENCH_CHECK(event_add(intr, NULL));
  echo_ready();
  BENCH_CHECK(event_base_dispatch(base));
  echo_report();
  return 0;
}
