/*
 * Load generator on raw epoll (no event library), so every echo server is
 * measured against the same client. One mode per run, for D seconds, over
 * C connections to 127.0.0.1:PORT:
 *
 * pingpong  each connection sends an S-byte message and waits for the whole
 *           echo before sending the next. An operation is a round trip;
 *           p50/p99 are round-trip latencies.
 * pump      each connection streams S-byte writes (partial writes resumed)
 *           while reading the echo back, as fast as the sockets take them.
 *           An operation is an echoed byte; rate also in MB/s (10^6 B). The
 *           bytes form a repeating pattern that is checked on receipt, so a
 *           server that loses, repeats or reorders bytes fails the run.
 * churn     C workers, each in a loop: connect, send one S-byte message,
 *           read the whole echo, close. An operation is a connection;
 *           p50/p99 are connect-to-echo latencies. The client closes with
 *           SO_LINGER 0 (an RST) once it has the echo, so neither side keeps
 *           a TIME_WAIT entry and loopback's ephemeral ports cannot run out;
 *           each server sees ECONNRESET on its next read and closes.
 *
 * Output, one line: RESULT mode=M ops=N secs=T ops_per_sec=R [mb_per_sec=]
 * [p50_us= p99_us=]. Errors (a refused connection, a short or corrupt
 * echo, a server that closes) go to stderr and exit 1.
 *
 * usage: loadgen pingpong|pump|churn PORT C S D
 */
#define _GNU_SOURCE
#include <fcntl.h>

#include "loadgen_common.h"

struct conn {
  int fd;
  uint64_t sent, got; /* bytes of the current message (pingpong, churn) or of the stream (pump) */
  double started;     /* when the current message or connection started */
};

struct run {
  int ep, nconn;
  size_t size;
  struct sockaddr_in addr;
  struct conn *conns;
  char *msg; /* loadgen_pattern(size) */
  char buf[READ_SIZE];
  uint64_t ops;
  struct latencies lat;
};

static void watch(struct run *r, struct conn *c, int op, uint32_t events) {
  struct epoll_event ev = {.events = events, .data.ptr = c};
  BENCH_ASSERT(epoll_ctl(r->ep, op, c->fd, &ev) == 0);
}

static void fail_connect(int err) {
  fprintf(stderr, "loadgen: connect: %s\n", strerror(err));
  exit(1);
}

/* Connects every connection (blocking), then makes it non-blocking and watches it for events. */
static void connect_all(struct run *r, uint32_t events) {
  for (int i = 0; i < r->nconn; i++) {
    struct conn *c = &r->conns[i];
    c->fd = loadgen_socket(0, 0);
    if (connect(c->fd, (struct sockaddr *)&r->addr, sizeof r->addr) != 0) fail_connect(errno);
    BENCH_ASSERT(fcntl(c->fd, F_SETFL, O_NONBLOCK) == 0);
    watch(r, c, EPOLL_CTL_ADD, events);
  }
}

/* Sends the (small) message from the start; the socket takes it at once. */
static void send_message(struct run *r, struct conn *c) {
  c->got = 0;
  c->sent = 0;
  while (c->sent < r->size) {
    ssize_t w = send(c->fd, r->msg + c->sent, r->size - c->sent, MSG_NOSIGNAL);
    if (w < 0 && errno == EAGAIN) continue;
    if (w <= 0) {
      perror("loadgen: send");
      exit(1);
    }
    c->sent += (uint64_t)w;
  }
}

/* Reads what is there and checks it is the pattern from offset c->got on; the bytes read. */
static size_t receive(struct run *r, struct conn *c) {
  ssize_t n = read(c->fd, r->buf, sizeof r->buf);
  if (n < 0 && errno == EAGAIN) return 0;
  if (n <= 0) {
    fprintf(stderr, "loadgen: the server closed or failed a connection (%s)\n", n < 0 ? strerror(errno) : "EOF");
    exit(1);
  }
  if (memcmp(r->buf, r->msg + c->got % PATTERN_PERIOD, (size_t)n) != 0) {
    fprintf(stderr, "loadgen: corrupt echo at byte %llu\n", (unsigned long long)c->got);
    exit(1);
  }
  c->got += (uint64_t)n;
  return (size_t)n;
}

/* Reads the echo of the current message; 1 (counted, latency recorded) once all of it is back. */
static int message_echoed(struct run *r, struct conn *c, double now) {
  receive(r, c);
  if (c->got < r->size) return 0;
  BENCH_ASSERT(c->got == r->size);
  r->ops++;
  latency_record(&r->lat, now - c->started);
  return 1;
}

/*
 * Each mode runs for `seconds` after its connections are up and returns the
 * seconds it measured over.
 */

/* One message in flight per connection; ends when the last echo of a message sent before the end came back. */
static double run_pingpong(struct run *r, double seconds) {
  connect_all(r, EPOLLIN);
  double t0 = bench_now(), end = t0 + seconds;
  for (int i = 0; i < r->nconn; i++) {
    r->conns[i].started = bench_now();
    send_message(r, &r->conns[i]);
  }
  int active = r->nconn;
  while (active > 0) {
    struct epoll_event evs[256];
    int n = loadgen_wait(r->ep, evs, 256, "loadgen");
    double now = bench_now();
    for (int i = 0; i < n; i++) {
      struct conn *c = evs[i].data.ptr;
      if (!message_echoed(r, c, now)) continue;
      if (now < end) {
        c->started = now;
        send_message(r, c);
      } else {
        active--;
      }
    }
  }
  return bench_now() - t0;
}

/* Every connection writes while writable and reads while readable, until end. */
static double run_pump(struct run *r, double seconds) {
  connect_all(r, EPOLLIN | EPOLLOUT);
  double t0 = bench_now(), end = t0 + seconds;
  while (bench_now() < end) {
    struct epoll_event evs[256];
    int n = loadgen_wait(r->ep, evs, 256, "loadgen");
    for (int i = 0; i < n; i++) {
      struct conn *c = evs[i].data.ptr;
      if (evs[i].events & EPOLLOUT) {
        size_t in_chunk = (size_t)(c->sent % r->size);
        ssize_t w = send(c->fd, r->msg + c->sent % PATTERN_PERIOD, r->size - in_chunk, MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN) {
          perror("loadgen: send");
          exit(1);
        }
        if (w > 0) c->sent += (uint64_t)w;
      }
      if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) r->ops += receive(r, c);
    }
  }
  return bench_now() - t0;
}

/* A worker's next connection: a non-blocking connect, the message once connected. */
static void churn_start(struct run *r, struct conn *c) {
  c->started = bench_now();
  c->fd = loadgen_socket(SOCK_NONBLOCK, 1);
  if (connect(c->fd, (struct sockaddr *)&r->addr, sizeof r->addr) == 0) {
    send_message(r, c);
    watch(r, c, EPOLL_CTL_ADD, EPOLLIN);
    return;
  }
  if (errno != EINPROGRESS) fail_connect(errno);
  c->sent = 0;
  c->got = 0;
  watch(r, c, EPOLL_CTL_ADD, EPOLLOUT);
}

static double run_churn(struct run *r, double seconds) {
  double t0 = bench_now(), end = t0 + seconds;
  for (int i = 0; i < r->nconn; i++) churn_start(r, &r->conns[i]);
  int active = r->nconn;
  while (active > 0) {
    struct epoll_event evs[256];
    int n = loadgen_wait(r->ep, evs, 256, "loadgen");
    for (int i = 0; i < n; i++) {
      struct conn *c = evs[i].data.ptr;
      if (c->sent == 0) { /* connected (or refused) */
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) fail_connect(err);
        send_message(r, c);
        watch(r, c, EPOLL_CTL_MOD, EPOLLIN);
        continue;
      }
      double now = bench_now();
      if (!message_echoed(r, c, now)) continue;
      close(c->fd); /* SO_LINGER 0: an RST, no TIME_WAIT */
      if (now < end)
        churn_start(r, c);
      else
        active--;
    }
  }
  return bench_now() - t0;
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: loadgen pingpong|pump|churn PORT CONNECTIONS SIZE SECONDS\n");
    return 2;
  }
  const char *mode = argv[1];
  double (*run_mode)(struct run *, double) = strcmp(mode, "pingpong") == 0 ? run_pingpong
                                           : strcmp(mode, "pump") == 0   ? run_pump
                                           : strcmp(mode, "churn") == 0  ? run_churn
                                                                         : NULL;
  int port = atoi(argv[2]), nconn = atoi(argv[3]);
  long size = atol(argv[4]);
  double seconds = atof(argv[5]);
  if (!run_mode || port <= 0 || port > 65535 || nconn <= 0 || size <= 0 || size > (1L << 30) || !(seconds > 0)) {
    fprintf(stderr, "loadgen: bad arguments (usage: loadgen pingpong|pump|churn PORT CONNECTIONS SIZE SECONDS)\n");
    return 2;
  }
  struct run *r = calloc(1, sizeof *r);
  BENCH_ASSERT(r);
  r->nconn = nconn;
  r->size = (size_t)size;
  r->conns = calloc((size_t)nconn, sizeof *r->conns);
  BENCH_ASSERT(r->conns);
  r->msg = loadgen_pattern(r->size);
  r->ep = epoll_create1(EPOLL_CLOEXEC);
  loadgen_loopback(&r->addr, port);

  double secs = run_mode(r, seconds);
  loadgen_result(mode, r->ops, secs, run_mode == run_pump, &r->lat);
  return 0;
}
