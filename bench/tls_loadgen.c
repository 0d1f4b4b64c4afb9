/*
 * TLS load generator on OpenSSL and raw epoll (no event library), so every
 * TLS echo server (bench/tls_echo_*.c, and openssl s_server) is measured
 * against the same client. The client verifies the server's certificate
 * against CA_FILE and keeps no sessions: every handshake is a full one.
 * One mode per run, over C connections to 127.0.0.1:PORT:
 *
 * pingpong  handshakes first (not timed), then for D seconds each
 *           connection sends an S-byte message and waits for the whole
 *           echo before sending the next. An operation is a round trip;
 *           p50/p99 are round-trip latencies. The echo is checked.
 * pump      handshakes first, then for D seconds each connection writes
 *           S-byte messages while OpenSSL takes them and reads the echo
 *           back. An operation is an echoed plaintext byte (rate also in
 *           MB/s, 10^6 B); the bytes are a pattern checked on receipt.
 * handshake C workers, each for D seconds in a loop: connect, a full
 *           handshake, one S-byte line (ending in '\n', so that
 *           `openssl s_server -rev` answers it too) and its S-byte answer,
 *           then a close with SO_LINGER 0 (an RST: no TIME_WAIT). An
 *           operation is a handshake; p50/p99 connect-to-answer latencies.
 * idle      connects and handshakes C connections, each with one S-byte
 *           round trip (so the server finished its side too), prints
 *           "IDLE C", then for every line read on stdin opens D more
 *           (D is a count here) and prints "IDLE <total>" again; exits at
 *           end of input. bench/run_tls.sh reads the server's heap at each
 *           step.
 *
 * Output (but idle): RESULT mode=M ops=N secs=T ops_per_sec=R [mb_per_sec=]
 * [p50_us= p99_us=]. Errors go to stderr and exit 1.
 *
 * usage: tls_loadgen pingpong|pump|handshake|idle PORT C S D CA_FILE
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>

#include "loadgen_common.h"

struct conn {
  int fd;
  SSL *ssl;
  int handshaken;
  int write_pending; /* the last SSL_write wants to be called again with the same bytes */
  uint64_t sent, got; /* plaintext bytes of the current message (pingpong, handshake) or of the stream (pump) */
  double started;
};

struct run {
  int ep, nconn;
  size_t size;
  SSL_CTX *ctx;
  struct sockaddr_in addr;
  struct conn *conns;
  char *msg; /* loadgen_pattern(size) */
  char buf[READ_SIZE];
  uint64_t ops;
  struct latencies lat;
};

static void fail_tls(const char *what) {
  fprintf(stderr, "tls_loadgen: %s failed:\n", what);
  ERR_print_errors_fp(stderr);
  exit(1);
}

/* A client context: verifies the server against ca_file, no session cache (full handshakes). */
static SSL_CTX *client_ctx(const char *ca_file) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx || SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) fail_tls("the client context");
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_read_ahead(ctx, 1); /* whole socket reads: the client's cost is not what is measured */
  return ctx;
}

static void watch(struct run *r, struct conn *c, int op, uint32_t events) {
  struct epoll_event ev = {.events = events, .data.ptr = c};
  if (epoll_ctl(r->ep, op, c->fd, &ev) != 0) {
    perror("tls_loadgen: epoll_ctl");
    exit(1);
  }
}

/* A TCP socket (TCP_NODELAY; with linger_zero, close sends an RST) and its SSL, verifying "localhost". */
static void open_conn(struct run *r, struct conn *c, int type_flags, int linger_zero) {
  memset(c, 0, sizeof *c);
  c->fd = loadgen_socket(type_flags, linger_zero);
  c->ssl = SSL_new(r->ctx);
  if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1 || SSL_set1_host(c->ssl, "localhost") != 1) fail_tls("SSL_new");
  SSL_set_connect_state(c->ssl);
}

static void close_conn(struct conn *c) {
  SSL_free(c->ssl);
  close(c->fd);
  c->ssl = NULL;
}

/*
 * SSL_write of the message from the pattern at offset c->sent (or again,
 * after a want): 1 written, 0 OpenSSL waits for the socket (call again
 * with the same bytes), and exits on an error.
 */
static int write_message(struct run *r, struct conn *c) {
  ERR_clear_error();
  int n = SSL_write(c->ssl, r->msg + c->sent % PATTERN_PERIOD, (int)r->size);
  if (n > 0) {
    c->write_pending = 0;
    c->sent += (uint64_t)n;
    return 1;
  }
  int err = SSL_get_error(c->ssl, n);
  if (err != SSL_ERROR_WANT_WRITE && err != SSL_ERROR_WANT_READ) fail_tls("SSL_write");
  c->write_pending = 1;
  return 0;
}

/*
 * Reads what OpenSSL has: the plaintext bytes read (0: none now), each
 * checked against the pattern from offset c->got when check is set; exits
 * when the server closed or failed.
 */
static size_t receive(struct run *r, struct conn *c, int check) {
  size_t total = 0;
  for (;;) {
    ERR_clear_error();
    int n = SSL_read(c->ssl, r->buf, sizeof r->buf);
    if (n <= 0) {
      int err = SSL_get_error(c->ssl, n);
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return total;
      fprintf(stderr, "tls_loadgen: the server closed or failed a connection (SSL error %d)\n", err);
      ERR_print_errors_fp(stderr);
      exit(1);
    }
    if (check && memcmp(r->buf, r->msg + c->got % PATTERN_PERIOD, (size_t)n) != 0) {
      fprintf(stderr, "tls_loadgen: corrupt echo at byte %llu\n", (unsigned long long)c->got);
      exit(1);
    }
    c->got += (uint64_t)n;
    total += (size_t)n;
  }
}

/* Connects and handshakes with blocking calls, then the socket goes non-blocking. */
static void connect_blocking(struct run *r, struct conn *c) {
  open_conn(r, c, 0, 0);
  if (connect(c->fd, (struct sockaddr *)&r->addr, sizeof r->addr) != 0) {
    perror("tls_loadgen: connect");
    exit(1);
  }
  if (SSL_connect(c->ssl) != 1) fail_tls("the handshake");
  c->handshaken = 1;
  BENCH_ASSERT(fcntl(c->fd, F_SETFL, O_NONBLOCK) == 0);
}

static void connect_all(struct run *r, uint32_t events) {
  for (int i = 0; i < r->nconn; i++) {
    connect_blocking(r, &r->conns[i]);
    watch(r, &r->conns[i], EPOLL_CTL_ADD, events);
  }
}

/* Sends the message from the pattern's start; the echo is expected back. */
static void start_message(struct run *r, struct conn *c, double now) {
  c->started = now;
  c->sent = c->got = 0;
  write_message(r, c);
}

/* Goes on with the current message; 1 once all its echo is back (counted, latency recorded). */
static int message_echoed(struct run *r, struct conn *c, double now, int check) {
  if (c->write_pending) write_message(r, c);
  receive(r, c, check);
  if (c->got < r->size) return 0;
  BENCH_ASSERT(c->got == r->size);
  r->ops++;
  latency_record(&r->lat, now - c->started);
  return 1;
}

/* One message in flight per connection; ends when the last echo of a message sent before the end came back. */
static double run_pingpong(struct run *r, double seconds) {
  connect_all(r, EPOLLIN);
  double t0 = bench_now(), end = t0 + seconds;
  for (int i = 0; i < r->nconn; i++) start_message(r, &r->conns[i], bench_now());
  int active = r->nconn;
  while (active > 0) {
    struct epoll_event evs[256];
    int n = loadgen_wait(r->ep, evs, 256, "tls_loadgen");
    double now = bench_now();
    for (int i = 0; i < n; i++) {
      struct conn *c = evs[i].data.ptr;
      if (!message_echoed(r, c, now, 1)) continue;
      if (now < end)
        start_message(r, c, now);
      else
        active--;
    }
  }
  return bench_now() - t0;
}

/* Every connection writes while OpenSSL takes messages and reads while readable, until end. */
static double run_pump(struct run *r, double seconds) {
  connect_all(r, EPOLLIN | EPOLLOUT);
  double t0 = bench_now(), end = t0 + seconds;
  while (bench_now() < end) {
    struct epoll_event evs[256];
    int n = loadgen_wait(r->ep, evs, 256, "tls_loadgen");
    for (int i = 0; i < n; i++) {
      struct conn *c = evs[i].data.ptr;
      if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) r->ops += receive(r, c, 1);
      if (evs[i].events & EPOLLOUT) write_message(r, c);
    }
  }
  return bench_now() - t0;
}

/* A worker's next connection: a non-blocking connect; the handshake goes on from the events. */
static void handshake_start(struct run *r, struct conn *c) {
  open_conn(r, c, SOCK_NONBLOCK, 1);
  c->started = bench_now();
  if (connect(c->fd, (struct sockaddr *)&r->addr, sizeof r->addr) != 0 && errno != EINPROGRESS) {
    perror("tls_loadgen: connect");
    exit(1);
  }
  watch(r, c, EPOLL_CTL_ADD, EPOLLOUT);
}

/* Advances a worker's handshake; 1 once it is done and its line went out. */
static int handshake_step(struct run *r, struct conn *c) {
  ERR_clear_error();
  int rc = SSL_do_handshake(c->ssl);
  if (rc == 1) {
    c->handshaken = 1;
    c->sent = c->got = 0;
    write_message(r, c);
    watch(r, c, EPOLL_CTL_MOD, EPOLLIN);
    return 1;
  }
  int err = SSL_get_error(c->ssl, rc);
  if (err == SSL_ERROR_WANT_READ)
    watch(r, c, EPOLL_CTL_MOD, EPOLLIN);
  else if (err == SSL_ERROR_WANT_WRITE)
    watch(r, c, EPOLL_CTL_MOD, EPOLLOUT);
  else
    fail_tls("the handshake");
  return 0;
}

static double run_handshake(struct run *r, double seconds) {
  double t0 = bench_now(), end = t0 + seconds;
  for (int i = 0; i < r->nconn; i++) handshake_start(r, &r->conns[i]);
  int active = r->nconn;
  while (active > 0) {
    struct epoll_event evs[256];
    int n = loadgen_wait(r->ep, evs, 256, "tls_loadgen");
    for (int i = 0; i < n; i++) {
      struct conn *c = evs[i].data.ptr;
      if (!c->handshaken) {
        if (!handshake_step(r, c)) continue;
      }
      double now = bench_now();
      if (!message_echoed(r, c, now, 0)) continue;
      close_conn(c); /* SO_LINGER 0: an RST, no TIME_WAIT */
      if (now < end)
        handshake_start(r, c);
      else
        active--;
    }
  }
  return bench_now() - t0;
}

/* Connections [from, to): each handshaken and with one round trip done. */
static void idle_open(struct run *r, int from, int to) {
  for (int i = from; i < to; i++) {
    struct conn *c = &r->conns[i];
    connect_blocking(r, c);
    c->sent = c->got = 0;
    BENCH_ASSERT(write_message(r, c));
    while (c->got < r->size) {
      struct pollfd p = {.fd = c->fd, .events = POLLIN};
      if (poll(&p, 1, 5000) != 1) {
        fprintf(stderr, "tls_loadgen: no echo for 5 s\n");
        exit(1);
      }
      receive(r, c, 1);
    }
  }
}

static void run_idle(struct run *r, int more) {
  int open = r->nconn;
  r->conns = realloc(r->conns, sizeof *r->conns * (size_t)open);
  BENCH_ASSERT(r->conns);
  idle_open(r, 0, open);
  printf("IDLE %d\n", open);
  fflush(stdout);
  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    r->conns = realloc(r->conns, sizeof *r->conns * (size_t)(open + more));
    BENCH_ASSERT(r->conns);
    idle_open(r, open, open + more);
    open += more;
    printf("IDLE %d\n", open);
    fflush(stdout);
  }
}

int main(int argc, char **argv) {
  static const char usage[] = "usage: tls_loadgen pingpong|pump|handshake|idle PORT CONNECTIONS SIZE SECONDS CA_FILE";
  if (argc != 7) {
    fprintf(stderr, "%s\n", usage);
    return 2;
  }
  const char *mode = argv[1];
  double (*run_mode)(struct run *, double) = strcmp(mode, "pingpong") == 0    ? run_pingpong
                                           : strcmp(mode, "pump") == 0        ? run_pump
                                           : strcmp(mode, "handshake") == 0   ? run_handshake
                                                                              : NULL;
  int idle = strcmp(mode, "idle") == 0;
  int port = atoi(argv[2]), nconn = atoi(argv[3]);
  long size = atol(argv[4]);
  double seconds = atof(argv[5]);
  if ((!run_mode && !idle) || port <= 0 || port > 65535 || nconn <= 0 || size <= 0 || size > (1L << 30) ||
      !(seconds > 0)) {
    fprintf(stderr, "tls_loadgen: bad arguments (%s)\n", usage);
    return 2;
  }
  struct rlimit fds;
  getrlimit(RLIMIT_NOFILE, &fds);
  bench_raise_nofile((long)fds.rlim_max); /* idle opens more as stdin asks */
  struct run *r = calloc(1, sizeof *r);
  BENCH_ASSERT(r);
  r->nconn = nconn;
  r->size = (size_t)size;
  r->ctx = client_ctx(argv[6]);
  r->conns = calloc((size_t)nconn, sizeof *r->conns);
  BENCH_ASSERT(r->conns);
  r->msg = loadgen_pattern(r->size);
  r->ep = epoll_create1(EPOLL_CLOEXEC);
  loadgen_loopback(&r->addr, port);

  if (run_mode == run_handshake) { /* one line of text, for openssl s_server -rev */
    memset(r->msg, 'x', r->size - 1);
    r->msg[r->size - 1] = '\n';
  }
  if (idle) {
    run_idle(r, (int)seconds);
    return 0;
  }
  double secs = run_mode(r, seconds);
  loadgen_result(mode, r->ops, secs, run_mode == run_pump, &r->lat);
  return 0;
}
