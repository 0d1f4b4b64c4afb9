/*
 * async_reconnector (async/reconnect.h): reconnecting after losses and
 * failures with the backoff policy, giving up after max_attempts,
 * reconnect-now and stop from every state and from inside callbacks, the
 * order of callbacks (one release at the end), eof_received reaching the
 * user, and bad input.
 */
#include "test_util.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- a client recording every event in order ----------------------------- */

enum action { NONE, STOP, RECONNECT };

struct client {
  async_reconnector *rc;
  char log[64]; /* M made, D data, L lost, F connect failed, S stopped, R release */
  size_t n;
  int made, lost, failed, stopped, released;
  int handed_over; /* streams taken over with async_stream_set_protocol() */
  int paused, resumed, drained; /* flow control, passed through (not logged) */
  int lost_error, stop_error, fail_error;
  uint32_t failures[16];
  uint64_t retry_ms[16];
  uint64_t made_ms[4];
  char got[64];
  size_t len;
  enum action on_made, on_data, on_lost, on_failed; /* what to call from inside */
};

static void note(struct client *c, char event) {
  if (c->n + 1 < sizeof c->log) c->log[c->n++] = event;
}

static void act(struct client *c, enum action a) {
  if (a == STOP) assert_int_equal(async_reconnector_stop(c->rc), 0);
  if (a == RECONNECT) assert_int_equal(async_reconnector_reconnect(c->rc), 0);
}

static void cl_made(async_stream *s, void *ud) {
  struct client *c = ud;
  note(c, 'M');
  assert_ptr_equal(async_reconnector_stream(c->rc), s);
  assert_int_equal(async_reconnector_state(c->rc), ASYNC_RECONNECT_CONNECTED);
  if (c->made < 4) c->made_ms[c->made] = tu_now_ms();
  c->made++;
  act(c, c->on_made);
}

static size_t cl_data(async_stream *s, const uint8_t *d, size_t n, void *ud) {
  (void)s;
  struct client *c = ud;
  note(c, 'D');
  size_t room = sizeof c->got - c->len;
  memcpy(c->got + c->len, d, n < room ? n : room);
  c->len += n < room ? n : room;
  act(c, c->on_data);
  return n;
}

static void cl_lost(async_stream *s, int err, void *ud) {
  (void)s;
  struct client *c = ud;
  note(c, 'L');
  c->lost++;
  c->lost_error = err;
  assert_null(async_reconnector_stream(c->rc));
  act(c, c->on_lost);
}

static void cl_release(void *ud) {
  struct client *c = ud;
  note(c, 'R');
  c->released++;
}

static void cl_failed(async_reconnector *rc, int err, uint32_t failures, uint64_t retry_ms, void *ud) {
  struct client *c = ud;
  assert_ptr_equal(rc, c->rc);
  note(c, 'F');
  if (c->failed < 16) {
    c->failures[c->failed] = failures;
    c->retry_ms[c->failed] = retry_ms;
  }
  c->failed++;
  c->fail_error = err;
  act(c, c->on_failed);
}

static void cl_stopped(async_reconnector *rc, int err, void *ud) {
  struct client *c = ud;
  assert_ptr_equal(rc, c->rc);
  note(c, 'S');
  c->stopped++;
  c->stop_error = err;
}

static void cl_pause(async_stream *s, void *ud) {
  (void)s;
  ((struct client *)ud)->paused++;
}

static void cl_resume(async_stream *s, void *ud) {
  (void)s;
  ((struct client *)ud)->resumed++;
}

static void cl_drained(async_stream *s, void *ud) {
  (void)s;
  ((struct client *)ud)->drained++;
}

static const async_stream_protocol k_client = {
    sizeof(async_stream_protocol), cl_made, cl_data, NULL, cl_lost, cl_pause, cl_resume, cl_drained, cl_release, 0, NULL,
};

/* A loopback port nothing listens on (bound, then closed). */
static uint16_t refused_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  close(fd);
  return ntohs(a.sin_port);
}

/* async_reconnect_options' jitter: negative is none (0.0 the default, 10 %). */
#define NO_JITTER (-1.0)

static async_reconnect_options options(uint64_t initial_ms, uint64_t max_ms, double multiplier, double jitter,
                                       uint32_t max_attempts) {
  async_reconnect_options o = ASYNC_RECONNECT_OPTIONS_INIT;
  o.initial_delay_ms = initial_ms;
  o.max_delay_ms = max_ms;
  o.multiplier = multiplier;
  o.jitter = jitter;
  o.max_attempts = max_attempts;
  o.connect_failed = cl_failed;
  o.stopped = cl_stopped;
  return o;
}

static void start(struct client *c, async_loop *loop, uint16_t port, async_reconnect_options o) {
  assert_int_equal(async_reconnector_start(&c->rc, loop, "127.0.0.1", port, &o, &k_client, c), 0);
  /* Nothing runs inside the call. */
  assert_int_equal(c->n, 0);
  assert_int_equal(async_reconnector_state(c->rc), ASYNC_RECONNECT_CONNECTING);
}

/* Stops the reconnector and checks its final notifications. */
static void stop_and_check(struct client *c, async_loop *loop) {
  assert_int_equal(async_reconnector_stop(c->rc), 0);
  assert_int_equal(async_reconnector_stop(c->rc), 0); /* idempotent */
  assert_int_equal(async_reconnector_state(c->rc), ASYNC_RECONNECT_STOPPING);
  assert_int_equal(async_reconnector_reconnect(c->rc), ASYNC_ECLOSED);
  assert_int_equal(c->stopped, 0); /* never inside the call */
  tu_run_until(loop, &c->released, 1, 3000);
  assert_int_equal(c->stopped, 1);
  assert_int_equal(c->stop_error, 0);
  assert_int_equal(c->released, 1);
  assert_int_equal(c->made, c->lost + c->handed_over);
  assert_string_equal(c->log + c->n - 2, "SR");
}

/* ---- tests ----------------------------------------------------------------- */

/* Each loss leads to a new connection after initial_delay_ms; release only at the end. */
static void test_reconnects_after_loss(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_server *server = tu_echo_server(loop, "127.0.0.1", 0);
  struct client c = {0};
  start(&c, loop, (uint16_t)async_server_port(server), options(30, 1000, 2.0, NO_JITTER, 0));
  tu_run_until(loop, &c.made, 1, 3000);
  assert_int_equal(async_stream_write(async_reconnector_stream(c.rc), "hi", 2), 0);
  while (c.len < 2) async_loop_run(loop, ASYNC_RUN_ONCE);
  assert_memory_equal(c.got, "hi", 2);
  for (int i = 1; i <= 2; i++) {
    assert_int_equal(async_server_close_connections(server, 0), 0);
    tu_run_until(loop, &c.lost, i, 3000);
    assert_int_equal(c.lost_error, 0);
    assert_int_equal(async_reconnector_state(c.rc), ASYNC_RECONNECT_WAITING);
    tu_run_until(loop, &c.made, i + 1, 3000);
    double gap = (double)(c.made_ms[i] - c.made_ms[i - 1]);
    assert_true(gap >= 29.0);
  }
  assert_int_equal(c.failed, 0);
  assert_int_equal(c.released, 0);
  stop_and_check(&c, loop);
  assert_string_equal(c.log, "MDLMLMLSR");
  tu_server_close(loop, server);
  tu_finish(loop);
}

static int cl_eof(async_stream *s, void *ud) {
  (void)s;
  note(ud, 'E');
  return 0; /* close: lost, then a new connection */
}

/* The user's eof_received is reached through the reconnector: the client
 * ends its side, the echo server closes at that EOF, the client hears EOF,
 * closes, and is connected again. */
static void test_eof_reaches_user(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_server *server = tu_echo_server(loop, "127.0.0.1", 0);
  async_stream_protocol p = k_client;
  p.eof_received = cl_eof;
  struct client c = {0};
  async_reconnect_options o = options(10, 10, 1.0, NO_JITTER, 0);
  assert_int_equal(async_reconnector_start(&c.rc, loop, "127.0.0.1", (uint16_t)async_server_port(server), &o, &p, &c),
                   0);
  tu_run_until(loop, &c.made, 1, 3000);
  assert_int_equal(async_stream_write_eof(async_reconnector_stream(c.rc)), 0);
  tu_run_until(loop, &c.made, 2, 3000);
  assert_int_equal(c.lost_error, 0);
  stop_and_check(&c, loop);
  assert_string_equal(c.log, "MELMLSR");
  tu_server_close(loop, server);
  tu_finish(loop);
}

/* Refused connects: exact backoff steps without jitter, capped, then give up. */
static void test_backoff_and_give_up(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  struct client c = {0};
  start(&c, loop, refused_port(), options(5, 25, 3.0, NO_JITTER, 4));
  tu_run_until(loop, &c.released, 1, 3000);
  assert_int_equal(c.failed, 4);
  for (uint32_t i = 0; i < 4; i++) assert_int_equal(c.failures[i], i + 1);
  assert_int_equal(c.retry_ms[0], 5);
  assert_int_equal(c.retry_ms[1], 15);
  assert_int_equal(c.retry_ms[2], 25); /* 45 capped at 25 */
  assert_int_equal(c.retry_ms[3], 0);  /* giving up */
  assert_int_equal(c.fail_error, ASYNC_ECONNREFUSED);
  assert_int_equal(c.stop_error, ASYNC_ECONNREFUSED);
  assert_string_equal(c.log, "FFFFSR");
  /* Nothing keeps the loop alive any more. */
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  tu_finish(loop);
}

/* Jittered delays stay within +/- jitter of the step and under the cap.
 * Eleven delays, so that all of them landing on their step by chance (a
 * delay of 10 +/- 5 truncated is 10 one time in ten, one capped at 40 one
 * time in two) is about 1 in 100,000 rather than the 1 in 1,600 that five
 * gave (seen once in CI). */
static void test_jitter_bounds(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  struct client c = {0};
  start(&c, loop, refused_port(), options(10, 40, 2.0, 0.5, 12));
  tu_run_until(loop, &c.released, 1, 5000);
  const double steps[] = {10, 20, 40, 40, 40, 40, 40, 40, 40, 40, 40};
  int differs = 0;
  for (int i = 0; i < 11; i++) {
    assert_true((double)c.retry_ms[i] >= floor(steps[i] * 0.5));
    assert_true((double)c.retry_ms[i] <= 40.0);
    if ((double)c.retry_ms[i] != steps[i]) differs = 1;
  }
  assert_true(differs);
  tu_finish(loop);
}

/* A server that appears while the client waits: connected, count reset. */
static void test_server_appears(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  uint16_t port = refused_port();
  struct client c = {0};
  start(&c, loop, port, options(20, 20, 1.0, NO_JITTER, 0));
  tu_run_until(loop, &c.failed, 2, 3000);
  async_server *server = tu_echo_server(loop, "127.0.0.1", port);
  tu_run_until(loop, &c.made, 1, 3000);
  /* Lost and refused again: the count starts over at 1. */
  int failed_before = c.failed;
  assert_int_equal(async_server_close_connections(server, 1), 0);
  tu_server_close(loop, server);
  tu_run_until(loop, &c.lost, 1, 3000);
  tu_run_until(loop, &c.failed, failed_before + 1, 3000);
  assert_int_equal(c.failures[failed_before], 1);
  stop_and_check(&c, loop);
  tu_finish(loop);
}

/* reconnect() while waiting skips a long delay; while connected it aborts and reconnects at once. */
static void test_reconnect_now(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  uint16_t port = refused_port();
  struct client c = {0};
  start(&c, loop, port, options(60000, 60000, 1.0, NO_JITTER, 0));
  tu_run_until(loop, &c.failed, 1, 3000);
  assert_int_equal(c.retry_ms[0], 60000);
  assert_int_equal(async_reconnector_state(c.rc), ASYNC_RECONNECT_WAITING);
  async_server *server = tu_echo_server(loop, "127.0.0.1", port);
  assert_int_equal(async_reconnector_reconnect(c.rc), 0);
  assert_int_equal(async_reconnector_state(c.rc), ASYNC_RECONNECT_WAITING);
  tu_run_until(loop, &c.made, 1, 3000);
  /* Connected: abort, lost(0), and connected again without the 60 s wait. */
  assert_int_equal(async_reconnector_reconnect(c.rc), 0);
  assert_int_equal(c.lost, 0); /* never inside the call */
  tu_run_until(loop, &c.made, 2, 3000);
  assert_int_equal(c.lost, 1);
  assert_int_equal(c.lost_error, 0);
  /* Connecting: nothing changes. */
  assert_int_equal(async_server_close_connections(server, 0), 0);
  tu_run_until(loop, &c.lost, 2, 3000);
  assert_int_equal(async_reconnector_state(c.rc), ASYNC_RECONNECT_WAITING);
  assert_int_equal(async_reconnector_reconnect(c.rc), 0);
  assert_int_equal(async_reconnector_reconnect(c.rc), 0);
  tu_run_until(loop, &c.made, 3, 3000);
  stop_and_check(&c, loop);
  assert_string_equal(c.log, "FMLMLMLSR");
  tu_server_close(loop, server);
  tu_finish(loop);
}

/* stop() while connected closes after flushing what was written. */
static void test_stop_connected_flushes(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  /* A raw peer that reads everything until EOF. */
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t alen = sizeof a;
  assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(lfd, 4), 0);
  assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &alen), 0);
  struct client c = {0};
  start(&c, loop, ntohs(a.sin_port), options(10, 10, 1.0, NO_JITTER, 0));
  tu_run_until(loop, &c.made, 1, 3000);
  int peer = accept(lfd, NULL, NULL);
  assert_true(peer >= 0);
  static uint8_t big[16 << 20]; /* more than loopback's socket buffers take */
  memset(big, 'x', sizeof big);
  async_stream *s = async_reconnector_stream(c.rc);
  assert_int_equal(async_stream_write(s, big, sizeof big), 0);
  size_t queued = 0;
  assert_int_equal(async_stream_write_buffer_size(&queued, s), 0);
  assert_true(queued > 64 * 1024);
  assert_int_equal(c.paused, 1); /* inside the write, through the reconnector */
  assert_int_equal(async_reconnector_stop(c.rc), 0);
  size_t total = 0;
  uint8_t buf[65536];
  while (!c.released) {
    async_loop_run(loop, ASYNC_RUN_NOWAIT);
    ssize_t r = recv(peer, buf, sizeof buf, MSG_DONTWAIT);
    if (r > 0) total += (size_t)r;
  }
  ssize_t r;
  while ((r = recv(peer, buf, sizeof buf, 0)) > 0) total += (size_t)r;
  assert_int_equal(r, 0); /* EOF after everything */
  assert_int_equal(total, sizeof big);
  assert_string_equal(c.log, "MLSR");
  assert_int_equal(c.lost_error, 0);
  assert_int_equal(c.resumed, 1); /* the flush drained the buffer */
  assert_int_equal(c.drained, 1);
  close(peer);
  close(lfd);
  tu_finish(loop);
}

/* stop() while a connect is in flight: no stream callbacks, no failure report. */
static void test_stop_connecting(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  struct client c = {0};
  start(&c, loop, refused_port(), options(10, 10, 1.0, NO_JITTER, 0));
  stop_and_check(&c, loop);
  assert_string_equal(c.log, "SR");
  tu_finish(loop);
}

/* stop() while waiting for the next connect. */
static void test_stop_waiting(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  struct client c = {0};
  start(&c, loop, refused_port(), options(60000, 60000, 1.0, NO_JITTER, 0));
  tu_run_until(loop, &c.failed, 1, 3000);
  assert_int_equal(async_reconnector_state(c.rc), ASYNC_RECONNECT_WAITING);
  uint64_t t0 = tu_now_ns();
  stop_and_check(&c, loop);
  assert_true(tu_elapsed_ms(t0) < 1000.0);
  assert_string_equal(c.log, "FSR");
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  tu_finish(loop);
}

/* stop() from inside each callback. */
enum where { IN_MADE, IN_DATA, IN_LOST, IN_FAILED };

static void stop_inside(enum where where, const char *want) {
  async_loop *loop = tu_loop_new();
  async_server *server = where == IN_FAILED ? NULL : tu_echo_server(loop, "127.0.0.1", 0);
  struct client c = {0};
  c.on_made = where == IN_MADE ? STOP : NONE;
  c.on_data = where == IN_DATA ? STOP : NONE;
  c.on_lost = where == IN_LOST ? STOP : NONE;
  c.on_failed = where == IN_FAILED ? STOP : NONE;
  start(&c, loop, server ? (uint16_t)async_server_port(server) : refused_port(), options(10, 10, 1.0, NO_JITTER, 0));
  if (where == IN_DATA || where == IN_LOST) {
    tu_run_until(loop, &c.made, 1, 3000);
    if (where == IN_DATA) assert_int_equal(async_stream_write(async_reconnector_stream(c.rc), "x", 1), 0);
    if (where == IN_LOST) assert_int_equal(async_server_close_connections(server, 0), 0);
  }
  tu_run_until(loop, &c.released, 1, 3000);
  assert_string_equal(c.log, want);
  assert_int_equal(c.stop_error, 0);
  if (server) tu_server_close(loop, server);
  tu_finish(loop);
}

static void test_stop_inside_callbacks(void **state) {
  (void)state;
  stop_inside(IN_MADE, "MLSR");
  stop_inside(IN_DATA, "MDLSR");
  stop_inside(IN_LOST, "MLSR");
  stop_inside(IN_FAILED, "FSR");
}

/* reconnect() inside connection_lost and connect_failed: no delay after it. */
static void test_reconnect_inside_callbacks(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_server *server = tu_echo_server(loop, "127.0.0.1", 0);
  struct client c = {0};
  c.on_lost = RECONNECT;
  start(&c, loop, (uint16_t)async_server_port(server), options(60000, 60000, 1.0, NO_JITTER, 0));
  tu_run_until(loop, &c.made, 1, 3000);
  assert_int_equal(async_server_close_connections(server, 0), 0);
  tu_run_until(loop, &c.made, 2, 3000);
  c.on_lost = NONE;
  stop_and_check(&c, loop);
  tu_server_close(loop, server);

  struct client d = {0};
  d.on_failed = RECONNECT;
  start(&d, loop, refused_port(), options(60000, 60000, 1.0, NO_JITTER, 0));
  tu_run_until(loop, &d.failed, 3, 3000);
  assert_int_equal(d.retry_ms[0], 60000); /* reported, then skipped */
  d.on_failed = NONE;
  stop_and_check(&d, loop);
  tu_finish(loop);
}

/* A lookup that fails (no address of the family asked for) counts as a failed connect. */
static void test_lookup_failure(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  struct client c = {0};
  async_connect_options co = ASYNC_CONNECT_OPTIONS_INIT;
  co.family = AF_INET6;
  async_reconnect_options o = options(5, 5, 1.0, NO_JITTER, 2);
  o.connect = &co;
  start(&c, loop, 1, o);
  tu_run_until(loop, &c.released, 1, 3000);
  assert_int_equal(c.fail_error, ASYNC_ENODATA);
  assert_string_equal(c.log, "FFSR");
  tu_finish(loop);
}

/* The loop cannot be freed while a reconnector runs. */
static void test_loop_busy(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  struct client c = {0};
  start(&c, loop, refused_port(), options(60000, 60000, 1.0, NO_JITTER, 0));
  tu_run_until(loop, &c.failed, 1, 3000);
  assert_int_equal(async_loop_free(loop), ASYNC_EBUSY);
  stop_and_check(&c, loop);
  tu_finish(loop);
}

/* Taking the stream over with async_stream_set_protocol() detaches it. */
static int taken_lost;
static size_t taken_data(async_stream *s, const uint8_t *d, size_t n, void *ud) {
  (void)s, (void)d, (void)ud;
  return n;
}
static void taken_lost_cb(async_stream *s, int err, void *ud) {
  (void)s, (void)err, (void)ud;
  taken_lost++;
}

static void test_protocol_takeover(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_server *server = tu_echo_server(loop, "127.0.0.1", 0);
  struct client c = {0};
  start(&c, loop, (uint16_t)async_server_port(server), options(10, 10, 1.0, NO_JITTER, 0));
  tu_run_until(loop, &c.made, 1, 3000);
  async_stream *s = async_reconnector_stream(c.rc);
  async_stream_protocol p = ASYNC_STREAM_PROTOCOL_INIT;
  p.data_received = taken_data;
  p.connection_lost = taken_lost_cb;
  taken_lost = 0;
  assert_int_equal(async_stream_set_protocol(s, &p, NULL), 0);
  c.handed_over = 1;
  assert_null(async_reconnector_stream(c.rc));
  assert_int_equal(c.released, 0);
  tu_run_until(loop, &c.made, 2, 3000);
  assert_int_equal(async_server_connection_count(server), 2);
  assert_int_equal(async_stream_close(s), 0);
  tu_run_until(loop, &taken_lost, 1, 3000);
  stop_and_check(&c, loop);
  assert_int_equal(c.lost, 1); /* only the second stream's */
  tu_server_close(loop, server);
  tu_finish(loop);
}

static void test_bad_input(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  struct client c = {0};
  async_reconnector *rc = NULL;
  async_reconnect_options o = ASYNC_RECONNECT_OPTIONS_INIT;
  assert_int_equal(async_reconnector_start(NULL, loop, "127.0.0.1", 1, &o, &k_client, &c), ASYNC_EINVAL);
  assert_int_equal(async_reconnector_start(&rc, NULL, "127.0.0.1", 1, &o, &k_client, &c), ASYNC_EINVAL);
  assert_int_equal(async_reconnector_start(&rc, loop, NULL, 1, &o, &k_client, &c), ASYNC_EINVAL);
  assert_int_equal(async_reconnector_start(&rc, loop, "", 1, &o, &k_client, &c), ASYNC_EINVAL);
  char long_host[300];
  memset(long_host, 'a', sizeof long_host - 1);
  long_host[sizeof long_host - 1] = 0;
  assert_int_equal(async_reconnector_start(&rc, loop, long_host, 1, &o, &k_client, &c), ASYNC_EINVAL);
  assert_int_equal(async_reconnector_start(&rc, loop, "127.0.0.1", 1, &o, NULL, &c), ASYNC_EINVAL);
  async_stream_protocol bad = k_client;
  bad.connection_lost = NULL;
  assert_int_equal(async_reconnector_start(&rc, loop, "127.0.0.1", 1, &o, &bad, &c), ASYNC_EINVAL);
  bad = k_client;
  bad.size = 4;
  assert_int_equal(async_reconnector_start(&rc, loop, "127.0.0.1", 1, &o, &bad, &c), ASYNC_EINVAL);

  async_reconnect_options wrong[7];
  for (int i = 0; i < 7; i++) wrong[i] = o;
  wrong[0].size = 8;
  wrong[1].max_delay_ms = 99; /* below the default initial delay, 100 */
  wrong[2].initial_delay_ms = 50;
  wrong[2].max_delay_ms = 49;
  wrong[3].multiplier = 0.5;
  wrong[4].multiplier = NAN;
  wrong[5].jitter = 1.5;
  wrong[6].jitter = NAN;
  for (int i = 0; i < 7; i++)
    assert_int_equal(async_reconnector_start(&rc, loop, "127.0.0.1", 1, &wrong[i], &k_client, &c), ASYNC_EINVAL);
  async_connect_options co = ASYNC_CONNECT_OPTIONS_INIT;
  o.connect = &co;
  co.local_address = "not an address";
  assert_int_equal(async_reconnector_start(&rc, loop, "127.0.0.1", 1, &o, &k_client, &c), ASYNC_EINVAL);
  co.local_address = NULL;
  co.family = 12345;
  assert_int_equal(async_reconnector_start(&rc, loop, "127.0.0.1", 1, &o, &k_client, &c), ASYNC_EINVAL);
  co.family = 0;
  co.size = 4;
  assert_int_equal(async_reconnector_start(&rc, loop, "127.0.0.1", 1, &o, &k_client, &c), ASYNC_EINVAL);
  assert_null(rc);
  assert_int_equal(c.n, 0); /* nothing called, nothing released */

  assert_int_equal(async_reconnector_reconnect(NULL), ASYNC_EINVAL);
  assert_int_equal(async_reconnector_stop(NULL), ASYNC_EINVAL);
  assert_int_equal(async_reconnector_state(NULL), ASYNC_EINVAL);
  assert_null(async_reconnector_stream(NULL));
  /* Another object's pointer is not a reconnector. */
  assert_int_equal(async_reconnector_stop((async_reconnector *)loop), ASYNC_EINVAL);
  /* The loop works on. */
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_NOWAIT), 0);
  tu_finish(loop);
}

/* NULL options: the defaults (100 ms, x2, no limit). */
static void test_defaults(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_server *server = tu_echo_server(loop, "127.0.0.1", 0);
  struct client c = {0};
  assert_int_equal(
      async_reconnector_start(&c.rc, loop, "localhost", (uint16_t)async_server_port(server), NULL, &k_client, &c), 0);
  tu_run_until(loop, &c.made, 1, 3000);
  assert_int_equal(async_server_close_connections(server, 0), 0);
  tu_run_until(loop, &c.made, 2, 3000);
  double gap = (double)(c.made_ms[1] - c.made_ms[0]);
  assert_true(gap >= 89.0); /* 100 ms +/- 10% */
  assert_int_equal(async_reconnector_stop(c.rc), 0);
  tu_run_until(loop, &c.released, 1, 3000);
  assert_string_equal(c.log, "MLMLR"); /* no stopped callback set */
  tu_server_close(loop, server);
  tu_finish(loop);
}

/* A struct all zero but size and the callbacks: every default, a backoff of
 * 100 ms doubling with +/- 10 % jitter, no limit on attempts. */
static void test_zeroed_options_are_defaults(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_reconnect_options o;
  memset(&o, 0, sizeof o);
  o.size = sizeof o;
  o.connect_failed = cl_failed;
  o.stopped = cl_stopped;
  struct client c = {0};
  start(&c, loop, refused_port(), o);
  tu_run_until(loop, &c.failed, 4, 5000);
  const double steps[] = {100, 200, 400};
  for (int i = 0; i < 3; i++) {
    assert_int_equal(c.failures[i], i + 1);
    assert_true((double)c.retry_ms[i] >= steps[i] * 0.9 - 1.0);
    assert_true((double)c.retry_ms[i] <= steps[i] * 1.1 + 1.0);
  }
  assert_int_equal(c.stopped, 0);
  stop_and_check(&c, loop);
  tu_finish(loop);
}

/* An initial delay above the default cap: the cap defaults to it. */
static void test_max_delay_defaults_to_initial(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  struct client c = {0};
  start(&c, loop, refused_port(), options(60000, 0, 0.0, NO_JITTER, 0));
  tu_run_until(loop, &c.failed, 1, 3000);
  assert_int_equal(c.retry_ms[0], 60000);
  stop_and_check(&c, loop);
  tu_finish(loop);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_reconnects_after_loss),
      cmocka_unit_test(test_backoff_and_give_up),
      cmocka_unit_test(test_jitter_bounds),
      cmocka_unit_test(test_server_appears),
      cmocka_unit_test(test_reconnect_now),
      cmocka_unit_test(test_stop_connected_flushes),
      cmocka_unit_test(test_stop_connecting),
      cmocka_unit_test(test_stop_waiting),
      cmocka_unit_test(test_stop_inside_callbacks),
      cmocka_unit_test(test_reconnect_inside_callbacks),
      cmocka_unit_test(test_lookup_failure),
      cmocka_unit_test(test_loop_busy),
      cmocka_unit_test(test_protocol_takeover),
      cmocka_unit_test(test_bad_input),
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_zeroed_options_are_defaults),
      cmocka_unit_test(test_max_delay_defaults_to_initial),
      cmocka_unit_test(test_eof_reaches_user),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
