/*
 * The per-connection echo logic of the servers on readiness loops (raw
 * epoll, raw libev, libevent), so that they differ only in the loop: the
 * socket calls and the policy of echo_policy.h. Each server calls
 * echo_conn_readable / echo_conn_writable when its loop reports the fd
 * readable / writable, closes the connection when they return -1, and
 * otherwise watches exactly what echo_conn_interest asks for.
 *
 * Files including this define _GNU_SOURCE (accept4) before any include.
 */
#ifndef ECHO_CONN_H
#define ECHO_CONN_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>

#include "echo_policy.h"

struct echo_conn {
  int fd;
  int reading; /* 0 while reading is stopped by the high-water mark, or after end of file */
  int eof;     /* end of file read: close once the unsent bytes are out */
  char *out;   /* the unsent bytes are out[head, head + len) */
  size_t head, len, cap;
};

static char echo_buffer[ECHO_READ_BUFFER];

/* A non-blocking socket listening on 127.0.0.1:port; exits on failure. */
static inline int echo_listen(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int on = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  BENCH_ASSERT(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && listen(fd, ECHO_BACKLOG) == 0);
  return fd;
}

/* The next pending connection (non-blocking, TCP_NODELAY), or -1 when none is left. */
static inline int echo_accept(int listen_fd) {
  int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd >= 0) {
    int on = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  }
  return fd;
}

static inline void echo_conn_init(struct echo_conn *c, int fd) {
  memset(c, 0, sizeof *c);
  c->fd = fd;
  c->reading = 1;
}

/* Closes the socket and frees the unsent bytes. */
static inline void echo_conn_close(struct echo_conn *c) {
  close(c->fd);
  free(c->out);
}

/* The loop's flags to watch: read_flag while reading, write_flag while bytes are unsent. */
static inline int echo_conn_interest(const struct echo_conn *c, int read_flag, int write_flag) {
  return (c->reading ? read_flag : 0) | (c->len > 0 ? write_flag : 0);
}

/* Appends data[0, n) to the unsent bytes (the buffer keeps its capacity). */
static inline void echo_conn_keep(struct echo_conn *c, const char *data, size_t n) {
  if (c->head > 0 && c->head + c->len + n > c->cap) {
    memmove(c->out, c->out + c->head, c->len);
    c->head = 0;
  }
  if (c->len + n > c->cap) {
    c->cap = c->len + n > 2 * c->cap ? c->len + n : 2 * c->cap;
    c->out = realloc(c->out, c->cap);
    BENCH_ASSERT(c->out);
  }
  memcpy(c->out + c->head + c->len, data, n);
  c->len += n;
}

/* One send of the unsent bytes; resumes reading at the low-water mark. -1: close (error, or all out after end of file). */
static inline int echo_conn_writable(struct echo_conn *c) {
  ssize_t w = send(c->fd, c->out + c->head, c->len, MSG_NOSIGNAL);
  if (w < 0) return errno == EAGAIN ? 0 : -1;
  c->head += (size_t)w;
  c->len -= (size_t)w;
  if (c->len == 0) c->head = 0;
  if (c->eof) return c->len == 0 ? -1 : 0;
  if (c->len <= ECHO_LOW_WATER) c->reading = 1;
  return 0;
}

/*
 * One read into the shared buffer, sent back at once when nothing is
 * unsent, the rest kept; stops reading above the high-water mark and at
 * end of file. -1: close (error, or end of file with nothing unsent).
 */
static inline int echo_conn_readable(struct echo_conn *c) {
  ssize_t r = read(c->fd, echo_buffer, sizeof echo_buffer);
  if (r == 0) {
    c->eof = 1;
    c->reading = 0;
    return c->len == 0 ? -1 : 0;
  }
  if (r < 0) return errno == EAGAIN ? 0 : -1;
  size_t sent = 0;
  if (c->len == 0) {
    ssize_t w = send(c->fd, echo_buffer, (size_t)r, MSG_NOSIGNAL);
    if (w < 0 && errno != EAGAIN) return -1;
    sent = w > 0 ? (size_t)w : 0;
  }
  if (sent < (size_t)r) echo_conn_keep(c, echo_buffer + sent, (size_t)r - sent);
  if (c->len > ECHO_HIGH_WATER) c->reading = 0;
  return 0;
}

#endif
