/*
 * TLS echo server on raw epoll (level-triggered) and OpenSSL on the
 * non-blocking sockets themselves (SSL_set_fd; SSL_read / SSL_write), the
 * floor of TLS event-loop overhead. read_ahead is on, so a socket read
 * takes what is there rather than a record header and then its body.
 * Plaintext read is written back at once; a write OpenSSL could not finish
 * (SSL_ERROR_WANT_WRITE) keeps its bytes, and what is read meanwhile is
 * appended, until a later SSL_write of them all completes; reading stops
 * above the high-water mark of echo_policy.h and starts again once the
 * bytes are out. Policy and output: tls_policy.h.
 *
 * usage: tls_echo_epoll PORT CERT_FILE KEY_FILE
 */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/epoll.h>

#include "echo_conn.h"
#include "tls_raw.h"

struct conn {
  int fd;
  SSL *ssl;
  int handshaken;
  int reading;     /* 0 while the unsent bytes are above the high-water mark */
  int want_write;  /* OpenSSL waits for the socket to be writable (handshake or write) */
  char *out;       /* plaintext OpenSSL has not finished writing: out[0, len) */
  size_t len, cap;
  uint32_t events; /* what epoll watches now */
};

static volatile sig_atomic_t stop, heap_asked;
static void on_signal(int sig) {
  if (sig == SIGUSR1)
    heap_asked = 1;
  else
    stop = 1;
}

static void drop(struct conn *c) {
  SSL_free(c->ssl);
  close(c->fd); /* closing the fd removes it from the epoll set */
  free(c->out);
  free(c);
}

static void sync_interest(int ep, struct conn *c) {
  uint32_t want = (c->reading && !c->want_write ? EPOLLIN : 0) | (c->want_write ? EPOLLOUT : 0);
  if (want == c->events) return;
  c->events = want;
  struct epoll_event ev = {.events = want, .data.ptr = c};
  epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* The kind of SSL_get_error() for rc: 0 to wait (want_write set as asked), -1 for a failure or the peer's end. */
static int wait_or_fail(struct conn *c, int rc) {
  int err = SSL_get_error(c->ssl, rc);
  ERR_clear_error();
  c->want_write = err == SSL_ERROR_WANT_WRITE;
  return err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE ? 0 : -1;
}

static void keep(struct conn *c, const char *data, size_t n) {
  if (c->len + n > c->cap) {
    c->cap = c->len + n > 2 * c->cap ? c->len + n : 2 * c->cap;
    c->out = realloc(c->out, c->cap);
    BENCH_ASSERT(c->out);
  }
  memcpy(c->out + c->len, data, n);
  c->len += n;
}

/* SSL_write of the unsent bytes (all of them, or none until the socket has room): -1 to close. */
static int write_out(struct conn *c) {
  int rc = SSL_write(c->ssl, c->out, (int)c->len);
  if (rc <= 0) return wait_or_fail(c, rc);
  c->want_write = 0;
  c->len = 0;
  c->reading = 1;
  return 0;
}

/* Reads the records there are and writes their plaintext back: -1 to close. */
static int read_in(struct conn *c) {
  while (c->reading) {
    int n = SSL_read(c->ssl, echo_buffer, sizeof echo_buffer);
    if (n <= 0) return wait_or_fail(c, n);
    if (c->len > 0) { /* a write waits: the bytes queue behind it */
      keep(c, echo_buffer, (size_t)n);
      if (c->len > ECHO_HIGH_WATER) c->reading = 0;
      continue;
    }
    int rc = SSL_write(c->ssl, echo_buffer, n);
    if (rc <= 0) {
      if (wait_or_fail(c, rc) < 0) return -1;
      keep(c, echo_buffer, (size_t)n); /* called again with these bytes */
      if (c->want_write) return 0;
    }
  }
  return 0;
}

static int advance(struct conn *c) {
  if (!c->handshaken) {
    int rc = SSL_do_handshake(c->ssl);
    if (rc != 1) return wait_or_fail(c, rc);
    c->handshaken = 1;
    c->want_write = 0;
  }
  if (c->len > 0 && write_out(c) < 0) return -1;
  if (c->want_write) return 0;
  return read_in(c);
}

static void accept_all(int ep, int lfd, SSL_CTX *ctx) {
  int fd;
  while ((fd = echo_accept(lfd)) >= 0) {
    struct conn *c = calloc(1, sizeof *c);
    BENCH_ASSERT(c);
    c->fd = fd;
    c->reading = 1;
    c->ssl = SSL_new(ctx);
    BENCH_ASSERT(c->ssl && SSL_set_fd(c->ssl, fd) == 1);
    SSL_set_accept_state(c->ssl);
    c->events = EPOLLIN;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }
}

int main(int argc, char **argv) {
  struct tls_args args = tls_args(argc, argv);
  SSL_CTX *ctx = tls_raw_server_ctx(&args);
  SSL_CTX_set_read_ahead(ctx, 1);
  int lfd = echo_listen(args.port);
  /* the signals are blocked except inside epoll_pwait, so one cannot slip in between the checks and the wait */
  sigset_t handled, wait_mask;
  sigemptyset(&handled);
  sigaddset(&handled, SIGTERM);
  sigaddset(&handled, SIGINT);
  sigaddset(&handled, SIGUSR1);
  sigprocmask(SIG_BLOCK, &handled, &wait_mask);
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  signal(SIGUSR1, on_signal);
  signal(SIGPIPE, SIG_IGN); /* OpenSSL writes to the socket with write(2) */
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);
  echo_ready();
  while (!stop) {
    if (heap_asked) {
      heap_asked = 0;
      tls_report_heap();
    }
    struct epoll_event evs[256];
    int n = epoll_pwait(ep, evs, 256, -1, &wait_mask);
    for (int i = 0; i < n; i++) {
      struct conn *c = evs[i].data.ptr;
      if (!c) {
        accept_all(ep, lfd, ctx);
        continue;
      }
      if (advance(c) < 0)
        drop(c);
      else
        sync_interest(ep, c);
    }
  }
  echo_report();
  return 0;
}
