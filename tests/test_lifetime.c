/*
 * Object lifetime (async/stream.h and async/datagram.h "Lifetime",
 * async/future.h "References"): one rule for accepted, connected and
 * adopted streams and for datagram transports, and reference-counted
 * futures. Written against the headers as a hostile user: references taken
 * and dropped inside every callback, releases after the loop is gone, one
 * release too many. ASan and valgrind see any use of freed memory.
 */
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>

#include "test_util.h"

/* ---- a recording stream protocol ------------------------------------------ */

struct rec {
  async_stream *stream;
  int made;
  int lost;
  int released;
  int lost_error;
  /* What connection_lost / release do and saw. */
  int retain_in_lost;
  int release_in_lost;
  int retain_in_release;
  int release_in_release;
  int rc_in_lost;
  int rc_in_release;
  int fd_in_lost;
  void *userdata_in_lost;
  async_loop *loop_in_lost;
  /* A future to free inside connection_lost (a connect's, holding a reference). */
  async_future *free_in_lost;
};

static void rec_made(async_stream *s, void *ud) {
  struct rec *r = ud;
  r->stream = s;
  r->made++;
}

static size_t rec_data(async_stream *s, const uint8_t *d, size_t n, void *ud) {
  (void)s;
  (void)d;
  (void)ud;
  return n;
}

static void rec_lost(async_stream *s, int err, void *ud) {
  struct rec *r = ud;
  r->stream = s;
  r->lost++;
  r->lost_error = err;
  r->fd_in_lost = async_stream_fd(s);
  r->userdata_in_lost = async_stream_userdata(s);
  r->loop_in_lost = async_stream_loop(s);
  if (r->retain_in_lost) r->rc_in_lost = async_stream_retain(s);
  if (r->release_in_lost) {
    r->rc_in_lost = async_stream_release(s);
    /* Still valid: the stream has not ended yet. */
    if (async_stream_userdata(s) != ud) r->rc_in_lost = -1000;
  }
  if (r->free_in_lost) {
    async_future_free(r->free_in_lost);
    r->free_in_lost = NULL;
    if (async_stream_userdata(s) != ud) r->rc_in_lost = -1000;
  }
}

static void rec_release(void *ud) {
  struct rec *r = ud;
  r->released++;
  if (r->retain_in_release) r->rc_in_release = async_stream_retain(r->stream);
  if (r->release_in_release) r->rc_in_release = async_stream_release(r->stream);
}

static const async_stream_protocol rec_protocol = {
    sizeof(async_stream_protocol), rec_made, rec_data, NULL, rec_lost, NULL, NULL, NULL, rec_release, 0, NULL,
};

static async_stream *adopt_pair(async_loop *loop, int sp[2], struct rec *r) {
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
  async_stream *s = NULL;
  assert_int_equal(async_stream_adopt(&s, loop, sp[0], &rec_protocol, r), 0);
  r->stream = s;
  return s;
}

/* Every call on an ended stream: ECLOSED, or NULL for the two getters. */
static void assert_stream_ended(async_stream *s) {
  struct sockaddr_storage ss;
  size_t a = 0;
  size_t b = 0;
  assert_int_equal(async_stream_write(s, "x", 1), ASYNC_ECLOSED);
  struct iovec iov = {"x", 1};
  assert_int_equal(async_stream_writev(s, &iov, 1), ASYNC_ECLOSED);
  assert_int_equal(async_stream_write_zc(s, "x", 1, free, NULL), ASYNC_ECLOSED);
  assert_int_equal(async_stream_write_eof(s), ASYNC_ECLOSED);
  assert_int_equal(async_stream_close(s), ASYNC_ECLOSED);
  assert_int_equal(async_stream_abort(s), ASYNC_ECLOSED);
  assert_int_equal(async_stream_pause_reading(s), ASYNC_ECLOSED);
  assert_int_equal(async_stream_resume_reading(s), ASYNC_ECLOSED);
  assert_int_equal(async_stream_is_reading(s), ASYNC_ECLOSED);
  assert_int_equal(async_stream_set_write_limits(s, 10, 5), ASYNC_ECLOSED);
  assert_int_equal(async_stream_get_write_limits(&a, &b, s), ASYNC_ECLOSED);
  assert_int_equal(async_stream_write_buffer_size(&a, s), ASYNC_ECLOSED);
  assert_int_equal(async_stream_set_read_limit(s, 10), ASYNC_ECLOSED);
  assert_int_equal(async_stream_set_protocol(s, &rec_protocol, NULL), ASYNC_ECLOSED);
  assert_int_equal(async_stream_fd(s), ASYNC_ECLOSED);
  assert_int_equal(async_stream_sockname((struct sockaddr *)&ss, sizeof ss, s), ASYNC_ECLOSED);
  assert_int_equal(async_stream_peername((struct sockaddr *)&ss, sizeof ss, s), ASYNC_ECLOSED);
  assert_int_equal(async_stream_set_nodelay(s, 1), ASYNC_ECLOSED);
  assert_int_equal(async_stream_set_keepalive(s, 1, 10), ASYNC_ECLOSED);
  assert_int_equal(async_stream_set_idle_timeout(s, 10), ASYNC_ECLOSED);
  assert_null(async_stream_loop(s));
  assert_null(async_stream_userdata(s));
}

/* ---- streams ----------------------------------------------------------- */

static void test_adopted_retained_across_lost(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int sp[2];
  struct rec r = {0};
  async_stream *s = adopt_pair(loop, sp, &r);
  assert_ptr_equal(async_stream_userdata(s), &r);
  assert_ptr_equal(async_stream_loop(s), loop);
  assert_int_equal(async_stream_retain(s), 0);
  tu_run_until(loop, &r.made, 1, 3000);
  /* While open, the stream counts: the loop cannot be freed. */
  assert_int_equal(async_loop_free(loop), ASYNC_EBUSY);
  close(sp[1]); /* the peer goes: EOF, close, connection_lost(0) */
  tu_run_until(loop, &r.released, 1, 3000);
  assert_int_equal(r.lost, 1);
  assert_int_equal(r.lost_error, 0);
  /* Inside connection_lost the queries still answered. */
  assert_true(r.fd_in_lost >= 0);
  assert_ptr_equal(r.userdata_in_lost, &r);
  assert_ptr_equal(r.loop_in_lost, loop);
  assert_stream_ended(s);
  /* Still there on later iterations. */
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_NOWAIT), 0);
  assert_stream_ended(s);
  assert_int_equal(async_stream_release(s), 0); /* the memory goes here */
  tu_finish(loop);
}

static void test_retain_inside_lost_and_release(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int sp[2];
  struct rec r = {0};
  r.retain_in_lost = 1;
  r.retain_in_release = 1;
  async_stream *s = adopt_pair(loop, sp, &r);
  tu_run_until(loop, &r.made, 1, 3000);
  assert_int_equal(async_stream_abort(s), 0);
  tu_run_until(loop, &r.released, 1, 3000);
  assert_int_equal(r.rc_in_lost, 0);
  assert_int_equal(r.rc_in_release, 0);
  /* Two references taken by the callbacks: the stream stays readable. */
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_NOWAIT), 0);
  assert_stream_ended(s);
  assert_int_equal(async_stream_release(s), 0);
  assert_stream_ended(s);
  assert_int_equal(async_stream_release(s), 0);
  close(sp[1]);
  tu_finish(loop);
}

static void test_release_inside_lost_and_release(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int sp[2];
  struct rec r = {0};
  r.release_in_lost = 1;
  async_stream *s = adopt_pair(loop, sp, &r);
  assert_int_equal(async_stream_retain(s), 0);
  tu_run_until(loop, &r.made, 1, 3000);
  close(sp[1]);
  tu_run_until(loop, &r.released, 1, 3000);
  assert_int_equal(r.rc_in_lost, 0); /* and the stream was still valid after it */

  /* The last reference dropped inside release(userdata): freed once the
   * library is done with it, after this callback. */
  struct rec r2 = {0};
  r2.release_in_release = 1;
  s = adopt_pair(loop, sp, &r2);
  assert_int_equal(async_stream_retain(s), 0);
  tu_run_until(loop, &r2.made, 1, 3000);
  assert_int_equal(async_stream_close(s), 0);
  tu_run_until(loop, &r2.released, 1, 3000);
  assert_int_equal(r2.rc_in_release, 0);
  close(sp[1]);
  tu_finish(loop);
}

static void test_one_release_too_many(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int sp[2];
  struct rec r = {0};
  async_stream *s = adopt_pair(loop, sp, &r);
  /* No reference of ours: the connection's is not ours to drop. */
  assert_int_equal(async_stream_release(s), ASYNC_EINVAL);
  assert_int_equal(async_stream_retain(s), 0);
  assert_int_equal(async_stream_retain(s), 0);
  assert_int_equal(async_stream_release(s), 0);
  assert_int_equal(async_stream_release(s), 0);
  assert_int_equal(async_stream_release(s), ASYNC_EINVAL);
  /* Nothing broke: the stream works and ends normally. */
  tu_run_until(loop, &r.made, 1, 3000);
  assert_int_equal(async_stream_write(s, "hi", 2), 0);
  char buf[2];
  assert_int_equal(read(sp[1], buf, 2), 2);
  /* Retained once more: after the end, one release frees, a second is
   * refused only while something keeps the memory (here: nothing, so we
   * stop at one). */
  assert_int_equal(async_stream_retain(s), 0);
  assert_int_equal(async_stream_abort(s), 0);
  tu_run_until(loop, &r.released, 1, 3000);
  assert_int_equal(async_stream_release(s), 0);
  close(sp[1]);
  tu_finish(loop);
}

static void test_bad_objects(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_future *f = NULL;
  assert_int_equal(async_future_new(&f, loop), 0);
  assert_int_equal(async_stream_retain(NULL), ASYNC_EINVAL);
  assert_int_equal(async_stream_release(NULL), ASYNC_EINVAL);
  assert_null(async_stream_userdata(NULL));
  assert_int_equal(async_datagram_retain(NULL), ASYNC_EINVAL);
  assert_int_equal(async_datagram_release(NULL), ASYNC_EINVAL);
  assert_null(async_datagram_userdata(NULL));
  assert_null(async_server_userdata(NULL));
  assert_int_equal(async_future_retain(NULL), ASYNC_EINVAL);
  assert_int_equal(async_future_release(NULL), ASYNC_EINVAL);
  /* Objects of another kind. */
  assert_int_equal(async_stream_retain((async_stream *)f), ASYNC_EINVAL);
  assert_int_equal(async_stream_release((async_stream *)loop), ASYNC_EINVAL);
  assert_null(async_stream_userdata((async_stream *)f));
  assert_int_equal(async_datagram_retain((async_datagram *)f), ASYNC_EINVAL);
  assert_int_equal(async_datagram_release((async_datagram *)loop), ASYNC_EINVAL);
  assert_null(async_datagram_userdata((async_datagram *)f));
  assert_null(async_server_userdata((async_server *)f));
  assert_int_equal(async_future_retain((async_future *)loop), ASYNC_EINVAL);
  assert_int_equal(async_future_release((async_future *)loop), ASYNC_EINVAL);
  assert_int_equal(async_future_free(f), 0);
  tu_finish(loop);
}

/* The loop goes first; the binding's finalizer releases later. */
static void test_release_after_loop_free(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int sp[2];
  struct rec r = {0};
  async_stream *s = adopt_pair(loop, sp, &r);
  assert_int_equal(async_stream_retain(s), 0);
  assert_int_equal(async_stream_abort(s), 0);
  tu_run_until(loop, &r.released, 1, 3000);
  /* An ended stream does not hold the loop. */
  tu_finish(loop);
  assert_null(async_stream_loop(s));
  assert_int_equal(async_stream_write(s, "x", 1), ASYNC_ECLOSED);
  assert_int_equal(async_stream_retain(s), 0);
  assert_int_equal(async_stream_release(s), 0);
  assert_int_equal(async_stream_release(s), 0);
  close(sp[1]);
}

static void test_userdata_follows_set_protocol(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int sp[2];
  struct rec r = {0};
  struct rec r2 = {0};
  async_stream *s = adopt_pair(loop, sp, &r);
  assert_ptr_equal(async_stream_userdata(s), &r);
  assert_int_equal(async_stream_set_protocol(s, &rec_protocol, &r2), 0);
  assert_int_equal(r.released, 1); /* the old one's release */
  assert_ptr_equal(async_stream_userdata(s), &r2);
  r2.stream = s;
  assert_int_equal(async_stream_abort(s), 0);
  tu_run_until(loop, &r2.released, 1, 3000);
  assert_ptr_equal(r2.userdata_in_lost, &r2);
  close(sp[1]);
  tu_finish(loop);
}

/* Every callback takes a reference; the test drops them all at the end. */
struct hoard {
  async_stream *stream;
  int taken;
  int failed;
  int eof;
  int drained;
  int released;
  int seen[8];
};

static void hoard_take(struct hoard *h, async_stream *s, int which) {
  if (async_stream_retain(s) == 0) {
    h->taken++;
  } else {
    h->failed++;
  }
  h->seen[which]++;
}

static void hoard_made(async_stream *s, void *ud) { hoard_take(ud, s, 0); }
static size_t hoard_data(async_stream *s, const uint8_t *d, size_t n, void *ud) {
  (void)d;
  hoard_take(ud, s, 1);
  return n;
}
static int hoard_eof(async_stream *s, void *ud) {
  hoard_take(ud, s, 2);
  ((struct hoard *)ud)->eof = 1;
  return 1; /* half-open: writing goes on */
}
static void hoard_lost(async_stream *s, int err, void *ud) {
  (void)err;
  hoard_take(ud, s, 3);
}
static void hoard_pause(async_stream *s, void *ud) { hoard_take(ud, s, 4); }
static void hoard_resume(async_stream *s, void *ud) { hoard_take(ud, s, 5); }
static void hoard_drained(async_stream *s, void *ud) {
  hoard_take(ud, s, 6);
  ((struct hoard *)ud)->drained = 1;
}
static void hoard_release(void *ud) {
  struct hoard *h = ud;
  hoard_take(h, h->stream, 7);
  h->released = 1;
}

static const async_stream_protocol hoard_protocol = {
    sizeof(async_stream_protocol), hoard_made,   hoard_data,    hoard_eof,     hoard_lost,
    hoard_pause,                   hoard_resume, hoard_drained, hoard_release, 0, NULL,
};

static void test_retain_inside_every_callback(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int sp[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
  struct hoard h = {0};
  assert_int_equal(async_stream_adopt(&h.stream, loop, sp[0], &hoard_protocol, &h), 0);
  tu_run_until(loop, &h.seen[0], 1, 3000);
  assert_int_equal(write(sp[1], "hi", 2), 2);
  tu_run_until(loop, &h.seen[1], 1, 3000);
  assert_int_equal(shutdown(sp[1], SHUT_WR), 0);
  tu_run_until(loop, &h.eof, 1, 3000);
  /* More than the socket takes, with marks that pause at once. */
  static uint8_t big[1 << 20];
  assert_int_equal(async_stream_set_write_limits(h.stream, 1, 0), 0);
  assert_int_equal(async_stream_write(h.stream, big, sizeof big), 0);
  assert_int_equal(h.seen[4], 1);
  assert_int_equal(fcntl(sp[1], F_SETFL, O_NONBLOCK), 0); /* the drain below never blocks */
  uint64_t t0 = tu_now_ns();
  while (!h.drained) {
    static uint8_t sink[65536];
    (void)read(sp[1], sink, sizeof sink);
    async_loop_run(loop, ASYNC_RUN_NOWAIT);
    assert_true(tu_elapsed_ms(t0) < 5000);
  }
  assert_int_equal(h.seen[5], 1);
  assert_int_equal(async_stream_close(h.stream), 0);
  tu_run_until(loop, &h.released, 1, 3000);
  assert_int_equal(h.failed, 0);
  for (int i = 0; i < 8; i++) assert_true(h.seen[i] >= 1);
  /* Every reference still holds the ended stream; the last one frees it. */
  for (int i = 0; i < h.taken; i++) {
    assert_int_equal(async_stream_write(h.stream, "x", 1), ASYNC_ECLOSED);
    assert_int_equal(async_stream_release(h.stream), 0);
  }
  close(sp[1]);
  tu_finish(loop);
}

/* ---- accepted and connected streams: one rule -------------------------- */

static struct rec g_accepted;

static int rec_factory(const async_stream_protocol **p, void **ud, async_server *server, void *userdata) {
  /* The server's userdata, as its getter says. */
  if (async_server_userdata(server) != userdata) return -1;
  *p = &rec_protocol;
  *ud = &g_accepted;
  return 0;
}

static void test_accepted_and_connected_same_rule(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  memset(&g_accepted, 0, sizeof g_accepted);
  int token = 0;
  async_server *server = NULL;
  assert_int_equal(async_tcp_listen(&server, loop, "127.0.0.1", 0, 0, 0, rec_factory, &token), 0);
  assert_ptr_equal(async_server_userdata(server), &token);
  int other = 0;
  assert_int_equal(async_handle_set_userdata(async_server_handle(server), &other), 0);
  assert_ptr_equal(async_server_userdata(server), &other);
  assert_int_equal(async_handle_set_userdata(async_server_handle(server), &token), 0);

  struct rec client = {0};
  async_future *f = NULL;
  assert_int_equal(
      async_tcp_connect(&f, loop, "127.0.0.1", (uint16_t)async_server_port(server), NULL, &rec_protocol, &client), 0);
  assert_int_equal(tu_wait_future(loop, f, 3000), 0);
  tu_run_until(loop, &g_accepted.made, 1, 3000);
  void *value = NULL;
  assert_int_equal(async_future_result(&value, f), 0);
  async_stream *connected = value;
  async_stream *accepted = g_accepted.stream;
  assert_ptr_equal(connected, client.stream);
  assert_ptr_equal(async_stream_userdata(accepted), &g_accepted);
  assert_ptr_equal(async_stream_userdata(connected), &client);

  /* The future's reference is not ours to drop. */
  assert_int_equal(async_stream_release(connected), ASYNC_EINVAL);
  /* Both retained, both ended: both stay, answering ECLOSED. */
  assert_int_equal(async_stream_retain(accepted), 0);
  assert_int_equal(async_stream_retain(connected), 0);
  assert_int_equal(async_stream_close(connected), 0);
  tu_run_until(loop, &client.released, 1, 3000);
  tu_run_until(loop, &g_accepted.released, 1, 3000);
  assert_stream_ended(accepted);
  assert_stream_ended(connected);
  /* Ours dropped, the future's keeps the memory; one more is refused. */
  assert_int_equal(async_stream_release(connected), 0);
  assert_int_equal(async_stream_release(connected), ASYNC_EINVAL);
  assert_stream_ended(connected);
  assert_int_equal(async_future_free(f), 0); /* the memory goes here */
  assert_int_equal(async_stream_release(accepted), 0);
  assert_int_equal(async_server_connection_count(server), 0);
  tu_server_close(loop, server);
  tu_finish(loop);
}

/* The connect future freed inside the stream's connection_lost: its value's
 * reference goes there, the memory after the end. */
static void test_connect_future_freed_inside_lost(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_server *server = tu_echo_server(loop, "127.0.0.1", 0);
  struct rec client = {0};
  async_future *f = NULL;
  assert_int_equal(
      async_tcp_connect(&f, loop, "127.0.0.1", (uint16_t)async_server_port(server), NULL, &rec_protocol, &client), 0);
  assert_int_equal(tu_wait_future(loop, f, 3000), 0);
  client.free_in_lost = f;
  assert_int_equal(async_stream_abort(client.stream), 0);
  tu_run_until(loop, &client.released, 1, 3000);
  assert_null(client.free_in_lost);
  assert_int_equal(client.rc_in_lost, 0);

  /* Retained as well: the future goes inside connection_lost, ours keeps
   * the ended stream. */
  struct rec again = {0};
  assert_int_equal(
      async_tcp_connect(&f, loop, "127.0.0.1", (uint16_t)async_server_port(server), NULL, &rec_protocol, &again), 0);
  assert_int_equal(tu_wait_future(loop, f, 3000), 0);
  assert_int_equal(async_stream_retain(again.stream), 0);
  again.free_in_lost = f;
  assert_int_equal(async_stream_close(again.stream), 0);
  tu_run_until(loop, &again.released, 1, 3000);
  assert_int_equal(again.rc_in_lost, 0);
  assert_stream_ended(again.stream);
  assert_int_equal(async_stream_release(again.stream), 0);
  tu_server_close(loop, server);
  tu_finish(loop);
}

/* ---- datagrams ------------------------------------------------------------ */

struct drec {
  async_datagram *dgram;
  int made;
  int lost;
  int released;
  int retain_in_lost;
  int release_in_lost;
  int release_in_release;
  int rc_in_lost;
  int rc_in_release;
  void *userdata_in_lost;
};

static void drec_made(async_datagram *d, void *ud) {
  struct drec *r = ud;
  r->dgram = d;
  r->made++;
}

static void drec_received(async_datagram *d, const uint8_t *data, size_t len, const struct sockaddr *addr,
                          size_t addrlen, void *ud) {
  (void)d;
  (void)data;
  (void)len;
  (void)addr;
  (void)addrlen;
  (void)ud;
}

static void drec_lost(async_datagram *d, int err, void *ud) {
  (void)err;
  struct drec *r = ud;
  r->lost++;
  r->userdata_in_lost = async_datagram_userdata(d);
  if (r->retain_in_lost) r->rc_in_lost = async_datagram_retain(d);
  if (r->release_in_lost) {
    r->rc_in_lost = async_datagram_release(d);
    if (async_datagram_userdata(d) != ud) r->rc_in_lost = -1000;
  }
}

static void drec_release(void *ud) {
  struct drec *r = ud;
  r->released++;
  if (r->release_in_release) r->rc_in_release = async_datagram_release(r->dgram);
}

static const async_datagram_protocol drec_protocol = {
    sizeof(async_datagram_protocol), drec_made, drec_received, NULL, drec_lost, NULL, NULL, drec_release,
};

static async_datagram *adopt_dgram(async_loop *loop, int sp[2], struct drec *r) {
  assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM, 0, sp), 0);
  async_datagram *d = NULL;
  assert_int_equal(async_datagram_adopt(&d, loop, sp[0], &drec_protocol, r), 0);
  r->dgram = d;
  return d;
}

static void assert_dgram_ended(async_datagram *d) {
  struct sockaddr_storage ss;
  size_t a = 0;
  size_t b = 0;
  assert_int_equal(async_datagram_send(d, "x", 1, NULL, 0), ASYNC_ECLOSED);
  assert_int_equal(async_datagram_sendto(d, "x", 1, "127.0.0.1:9"), ASYNC_ECLOSED);
  assert_int_equal(async_datagram_close(d), ASYNC_ECLOSED);
  assert_int_equal(async_datagram_abort(d), ASYNC_ECLOSED);
  assert_int_equal(async_datagram_pause_reading(d), ASYNC_ECLOSED);
  assert_int_equal(async_datagram_resume_reading(d), ASYNC_ECLOSED);
  assert_int_equal(async_datagram_is_reading(d), ASYNC_ECLOSED);
  assert_int_equal(async_datagram_set_write_limits(d, 10, 5), ASYNC_ECLOSED);
  assert_int_equal(async_datagram_get_write_limits(&a, &b, d), ASYNC_ECLOSED);
  assert_int_equal(async_datagram_write_buffer_size(&a, d), ASYNC_ECLOSED);
  assert_int_equal(async_datagram_fd(d), ASYNC_ECLOSED);
  assert_int_equal(async_datagram_sockname((struct sockaddr *)&ss, sizeof ss, d), ASYNC_ECLOSED);
  assert_int_equal(async_datagram_peername((struct sockaddr *)&ss, sizeof ss, d), ASYNC_ECLOSED);
  assert_int_equal(async_datagram_set_broadcast(d, 1), ASYNC_ECLOSED);
  assert_int_equal(async_datagram_set_multicast_ttl(d, 1), ASYNC_ECLOSED);
  assert_null(async_datagram_loop(d));
  assert_null(async_datagram_userdata(d));
}

static void test_datagram_retained_across_lost(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int sp[2];
  struct drec r = {0};
  r.retain_in_lost = 1;
  async_datagram *d = adopt_dgram(loop, sp, &r);
  assert_ptr_equal(async_datagram_userdata(d), &r);
  assert_ptr_equal(async_datagram_loop(d), loop);
  /* One release too many while open: refused, nothing broken. */
  assert_int_equal(async_datagram_release(d), ASYNC_EINVAL);
  assert_int_equal(async_datagram_retain(d), 0);
  tu_run_until(loop, &r.made, 1, 3000);
  assert_int_equal(async_datagram_send(d, "x", 1, NULL, 0), 0);
  assert_int_equal(async_datagram_close(d), 0);
  tu_run_until(loop, &r.released, 1, 3000);
  assert_int_equal(r.rc_in_lost, 0);
  assert_ptr_equal(r.userdata_in_lost, &r);
  assert_dgram_ended(d);
  /* The loop may go first; the releases come after it. */
  tu_finish(loop);
  assert_dgram_ended(d);
  assert_int_equal(async_datagram_release(d), 0);
  assert_int_equal(async_datagram_release(d), 0);
  tu_close_pair(sp);
}

static void test_datagram_release_inside_callbacks(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int sp[2];
  struct drec r = {0};
  r.release_in_lost = 1;
  async_datagram *d = adopt_dgram(loop, sp, &r);
  assert_int_equal(async_datagram_retain(d), 0);
  tu_run_until(loop, &r.made, 1, 3000);
  assert_int_equal(async_datagram_abort(d), 0);
  tu_run_until(loop, &r.released, 1, 3000);
  assert_int_equal(r.rc_in_lost, 0);
  tu_close_pair(sp);

  struct drec r2 = {0};
  r2.release_in_release = 1;
  d = adopt_dgram(loop, sp, &r2);
  assert_int_equal(async_datagram_retain(d), 0);
  assert_int_equal(async_loop_free(loop), ASYNC_EBUSY); /* open: counted */
  assert_int_equal(async_datagram_close(d), 0);
  tu_run_until(loop, &r2.released, 1, 3000);
  assert_int_equal(r2.rc_in_release, 0);
  tu_close_pair(sp);
  tu_finish(loop);
}

/* ---- futures ------------------------------------------------------------- */

static int g_destroyed;
static void count_destroy(void *value, void *context) {
  (void)value;
  (void)context;
  g_destroyed++;
}

static int g_cancel_hook;
static void count_cancel(async_future *f, int cancelled, void *ud) {
  (void)f;
  (void)ud;
  if (cancelled) g_cancel_hook++;
}

struct fcall {
  int calls;
  int status;
  int free_rc;
  int result_rc;
  int retain_rc;
};

static void record_cb(async_future *f, int status, void *ud) {
  (void)f;
  struct fcall *c = ud;
  c->calls++;
  c->status = status;
}

/* Frees the future it is called for, then reads it (still held). */
static void free_self_cb(async_future *f, int status, void *ud) {
  struct fcall *c = ud;
  c->calls++;
  c->status = status;
  c->free_rc = async_future_free(f);
  c->result_rc = async_future_result(NULL, f);
  c->retain_rc = async_future_retain(f);
}

static void test_future_release_never_cancels_shared(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_future *f = NULL;
  assert_int_equal(async_future_new(&f, loop), 0);
  g_cancel_hook = 0;
  assert_int_equal(async_future_set_cancel(f, count_cancel, NULL), 0);
  assert_int_equal(async_future_retain(f), 0);
  assert_int_equal(async_future_release(f), 0); /* another remains */
  assert_int_equal(async_future_get_state(f), ASYNC_FUTURE_PENDING);
  assert_int_equal(g_cancel_hook, 0);
  struct fcall c = {0};
  assert_int_equal(async_future_add_callback(f, record_cb, &c), 0);
  g_destroyed = 0;
  assert_int_equal(async_future_resolve(f, &c, count_destroy, NULL), 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_NOWAIT), 0);
  assert_int_equal(c.calls, 1);
  assert_int_equal(c.status, 0);
  /* A completed future held by a reference keeps the loop busy. */
  assert_int_equal(async_loop_free(loop), ASYNC_EBUSY);
  assert_int_equal(g_destroyed, 0);
  assert_int_equal(async_future_release(f), 0);
  assert_int_equal(g_destroyed, 0); /* a user's destroy runs from the loop */
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_NOWAIT), 0);
  assert_int_equal(g_destroyed, 1);
  tu_finish(loop);
}

static void test_future_last_release_cancels_pending(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_future *f = NULL;
  assert_int_equal(async_future_new(&f, loop), 0);
  g_cancel_hook = 0;
  assert_int_equal(async_future_set_cancel(f, count_cancel, NULL), 0);
  struct fcall c = {0};
  assert_int_equal(async_future_add_callback(f, record_cb, &c), 0);
  assert_int_equal(async_future_release(f), 0);
  assert_int_equal(g_cancel_hook, 1);
  /* The scheduled callback keeps the memory: the future answers, but no
   * reference of ours is left. */
  assert_int_equal(async_future_get_state(f), ASYNC_FUTURE_CANCELLED);
  assert_int_equal(async_future_release(f), ASYNC_EINVAL);
  assert_int_equal(async_future_free(f), ASYNC_EINVAL);
  assert_int_equal(async_future_retain(f), ASYNC_EINVAL);
  assert_int_equal(async_future_add_callback(f, record_cb, &c), ASYNC_EINVAL);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_NOWAIT), 0);
  assert_int_equal(c.calls, 1);
  assert_int_equal(c.status, ASYNC_ECANCELED);
  tu_finish(loop);
}

static void test_future_free_of_retained_cancels(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_future *f = NULL;
  assert_int_equal(async_future_new(&f, loop), 0);
  g_cancel_hook = 0;
  assert_int_equal(async_future_set_cancel(f, count_cancel, NULL), 0);
  assert_int_equal(async_future_retain(f), 0);
  assert_int_equal(async_future_free(f), 0);
  assert_int_equal(g_cancel_hook, 1);
  assert_int_equal(async_future_get_state(f), ASYNC_FUTURE_CANCELLED);
  /* The retained reference still allows everything a reference allows. */
  struct fcall c = {0};
  assert_int_equal(async_future_add_callback(f, record_cb, &c), 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_NOWAIT), 0);
  assert_int_equal(c.calls, 1);
  assert_int_equal(c.status, ASYNC_ECANCELED);
  assert_int_equal(async_future_result(NULL, f), ASYNC_ECANCELED);
  assert_int_equal(async_loop_free(loop), ASYNC_EBUSY);
  assert_int_equal(async_future_free(f), 0); /* free of a completed one: a release */
  tu_finish(loop);
}

static void test_future_free_inside_own_callback_while_retained(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_future *f = NULL;
  assert_int_equal(async_future_new(&f, loop), 0);
  assert_int_equal(async_future_retain(f), 0);
  struct fcall c = {0};
  assert_int_equal(async_future_add_callback(f, free_self_cb, &c), 0);
  g_destroyed = 0;
  assert_int_equal(async_future_resolve(f, &c, count_destroy, NULL), 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_NOWAIT), 0);
  assert_int_equal(c.calls, 1);
  assert_int_equal(c.free_rc, 0);
  assert_int_equal(c.result_rc, 0);
  assert_int_equal(c.retain_rc, 0); /* one reference was left to take from */
  assert_int_equal(g_destroyed, 0);
  void *value = NULL;
  assert_int_equal(async_future_result(&value, f), 0);
  assert_ptr_equal(value, &c);
  assert_int_equal(async_future_release(f), 0);
  assert_int_equal(g_destroyed, 0);
  assert_int_equal(async_future_release(f), 0);
  assert_int_equal(g_destroyed, 0); /* a user's destroy runs from the loop */
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_NOWAIT), 0);
  assert_int_equal(g_destroyed, 1);

  /* Without a retain: the free inside the callback is the last reference;
   * the memory goes after the callback returns. */
  assert_int_equal(async_future_new(&f, loop), 0);
  struct fcall c2 = {0};
  assert_int_equal(async_future_add_callback(f, free_self_cb, &c2), 0);
  assert_int_equal(async_future_resolve(f, &c2, count_destroy, NULL), 0);
  /* 1: the destroy function, deferred by the free, is still queued. */
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_NOWAIT), 1);
  assert_int_equal(g_destroyed, 1);
  assert_int_equal(c2.free_rc, 0);
  assert_int_equal(c2.result_rc, 0);
  assert_int_equal(c2.retain_rc, ASYNC_EINVAL); /* none left to take from */
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_NOWAIT), 0);
  assert_int_equal(g_destroyed, 2);
  tu_finish(loop);
}

static void test_future_combinator_input_released(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_future *in = NULL;
  async_future *all = NULL;
  assert_int_equal(async_future_new(&in, loop), 0);
  assert_int_equal(async_future_retain(in), 0);
  assert_int_equal(async_future_all(&all, loop, &in, 1), 0);
  /* Dropping one of two references: the input stays pending. */
  assert_int_equal(async_future_release(in), 0);
  assert_int_equal(async_future_get_state(in), ASYNC_FUTURE_PENDING);
  assert_int_equal(async_future_resolve(in, NULL, NULL, NULL), 0);
  assert_int_equal(tu_wait_future(loop, all, 3000), 0);
  assert_int_equal(async_future_release(in), 0);
  assert_int_equal(async_future_free(all), 0);
  tu_finish(loop);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_adopted_retained_across_lost),
      cmocka_unit_test(test_retain_inside_lost_and_release),
      cmocka_unit_test(test_release_inside_lost_and_release),
      cmocka_unit_test(test_one_release_too_many),
      cmocka_unit_test(test_bad_objects),
      cmocka_unit_test(test_release_after_loop_free),
      cmocka_unit_test(test_userdata_follows_set_protocol),
      cmocka_unit_test(test_retain_inside_every_callback),
      cmocka_unit_test(test_accepted_and_connected_same_rule),
      cmocka_unit_test(test_connect_future_freed_inside_lost),
      cmocka_unit_test(test_datagram_retained_across_lost),
      cmocka_unit_test(test_datagram_release_inside_callbacks),
      cmocka_unit_test(test_future_release_never_cancels_shared),
      cmocka_unit_test(test_future_last_release_cancels_pending),
      cmocka_unit_test(test_future_free_of_retained_cancels),
      cmocka_unit_test(test_future_free_inside_own_callback_while_retained),
      cmocka_unit_test(test_future_combinator_input_released),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
