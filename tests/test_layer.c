/*
 * Stream layers (async/layer.h) with the rate limiter: a stream above a
 * layer keeps the whole async_stream contract (reads, writes, flow control
 * both ways, write_eof, close flushing through the stack, abort,
 * connection_lost once and last, one release per userdata), layers stack,
 * push works inside data_received after a plaintext exchange, pop hands
 * the stream below back open, and the limiter holds its rates.
 *
 * The stack sits on one end of a socketpair; the peer is a plain stream on
 * the other end. A recording protocol (struct side) keeps the bytes and a
 * sequence stamp for each callback; callbacks never assert (a cmocka
 * failure would longjmp through the library): the test checks afterwards.
 */
#include "loop_env.h"
#include "test_util.h"

#include <async.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>
#include <sys/uio.h>

#define KIB ((size_t)1024)

static int g_seq;

struct side {
  async_stream *s;
  uint8_t *buf;
  size_t len, cap;
  int made, eof, lost, lost_err, released, paused, resumed, drained, data_calls;
  int eof_keep;        /* eof_received's return */
  size_t consume_max;  /* 0: everything; else at most this many per call */
  int random_consume;  /* consume a random part of each call (at least 1) */
  int pause_in_made;   /* pause reading inside connection_made */
  /* Called from data_received after recording, once per call. */
  void (*on_data)(struct side *side);
  int lost_seq, released_seq;
};

static size_t side_data(async_stream *s, const uint8_t *d, size_t n, void *ud) {
  struct side *x = ud;
  x->s = s;
  size_t take = n;
  if (x->consume_max && take > x->consume_max) take = x->consume_max;
  if (x->random_consume) take = 1 + (size_t)rand() % n;
  if (x->len + take > x->cap) {
    x->cap = (x->len + take) * 2;
    x->buf = realloc(x->buf, x->cap);
  }
  memcpy(x->buf + x->len, d, take);
  x->len += take;
  x->data_calls++;
  if (x->on_data) x->on_data(x);
  return take;
}

static void side_made(async_stream *s, void *ud) {
  struct side *x = ud;
  x->s = s;
  x->made = ++g_seq;
  if (x->pause_in_made) async_stream_pause_reading(s);
}

static int side_eof(async_stream *s, void *ud) {
  (void)s;
  struct side *x = ud;
  x->eof = ++g_seq;
  return x->eof_keep;
}

static void side_lost(async_stream *s, int err, void *ud) {
  (void)s;
  struct side *x = ud;
  x->lost++;
  x->lost_err = err;
  x->lost_seq = ++g_seq;
}

static void side_pause(async_stream *s, void *ud) {
  (void)s;
  ((struct side *)ud)->paused++;
}

static void side_resume(async_stream *s, void *ud) {
  (void)s;
  ((struct side *)ud)->resumed++;
}

static void side_drained(async_stream *s, void *ud) {
  (void)s;
  ((struct side *)ud)->drained++;
}

static void side_release(void *ud) {
  struct side *x = ud;
  x->released++;
  x->released_seq = ++g_seq;
}

static const async_stream_protocol side_protocol = {
    sizeof(async_stream_protocol), side_made, side_data,    side_eof,     side_lost, side_pause,
    side_resume,                   side_drained, side_release, 0,         NULL,
};

/* One message per call: a random consumer still gets every byte at once. */
static const async_stream_protocol side_each_protocol = {
    sizeof(async_stream_protocol), side_made,    side_data,    side_eof, side_lost, side_pause,
    side_resume,                   side_drained, side_release, ASYNC_STREAM_DELIVER_EACH, NULL,
};

static void side_free(struct side *x) { free(x->buf); }

/* A socketpair: *lower adopted with lower_side's protocol, *peer with peer's. */
struct rig {
  struct env e;
  async_stream *lower, *peer;
  struct side lower_side, peer_side;
};

static void rig_init(struct rig *r) {
  memset(r, 0, sizeof *r);
  env_init(&r->e);
  int fd[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
  assert_int_equal(async_stream_adopt(&r->lower, r->e.loop, fd[0], &side_protocol, &r->lower_side), 0);
  assert_int_equal(async_stream_adopt(&r->peer, r->e.loop, fd[1], &side_protocol, &r->peer_side), 0);
}

static void rig_finish(struct rig *r) {
  env_finish(&r->e);
  side_free(&r->lower_side);
  side_free(&r->peer_side);
}

static int c_made(void *a) { return ((struct side *)a)->made != 0; }
static int c_released(void *a) { return ((struct side *)a)->released != 0; }
static size_t g_want;
static int c_len(void *a) { return ((struct side *)a)->len >= g_want; }
static int c_drained(void *a) { return ((struct side *)a)->drained != 0; }

static void fill(uint8_t *buf, size_t len, unsigned seed) {
  for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)((i * 131u + seed) ^ (i >> 8));
}

/* ------------------------------------------------------------------ */

/* Bytes both ways through a layer; the user cannot tell the stream above
 * from one on a socket: socket queries answer for the socketpair, close
 * ends the peer with EOF, callbacks come in the stream order. */
static void test_passthrough(void **state) {
  (void)state;
  struct rig r;
  rig_init(&r);
  struct side up = {0};
  async_stream *upper = NULL;
  assert_true(run_until(&r.e, c_made, &r.lower_side, NULL, NULL, 2000));
  assert_int_equal(LIB(async_layer_push_rate_limit(&upper, r.lower, 0, 0, &side_protocol, &up)), 0);
  assert_int_equal(g_depth, 0);
  /* The lower stream's protocol was replaced: its release ran inside. */
  assert_int_equal(r.lower_side.released, 1);
  assert_int_equal(r.lower_side.lost, 0);
  assert_int_equal(up.made, 0); /* from the loop, never inside the push */
  assert_int_equal(async_layer_is_layered(upper), 1);
  assert_int_equal(async_layer_is_layered(r.lower), 0);
  assert_int_equal(async_stream_fd(upper), async_stream_fd(r.lower));
  struct sockaddr_storage a, b;
  int alen = async_stream_sockname((struct sockaddr *)&a, sizeof a, upper);
  assert_true(alen > 0);
  assert_int_equal(async_stream_sockname((struct sockaddr *)&b, sizeof b, r.lower), alen);
  assert_int_equal(a.ss_family, AF_UNIX);
  assert_int_equal(async_stream_set_nodelay(upper, 1), ASYNC_EINVAL); /* not TCP, as below */
  assert_ptr_equal(async_stream_userdata(upper), &up);
  assert_ptr_equal(async_stream_loop(upper), r.e.loop);

  assert_true(run_until(&r.e, c_made, &up, NULL, NULL, 2000));
  assert_int_equal(async_stream_write(upper, "hello", 5), 0);
  g_want = 5;
  assert_true(run_until(&r.e, c_len, &r.peer_side, NULL, NULL, 2000));
  assert_memory_equal(r.peer_side.buf, "hello", 5);
  assert_int_equal(async_stream_write(r.peer, "world", 5), 0);
  assert_true(run_until(&r.e, c_len, &up, NULL, NULL, 2000));
  assert_memory_equal(up.buf, "world", 5);

  assert_int_equal(async_stream_close(upper), 0);
  assert_true(run_until(&r.e, c_released, &r.peer_side, NULL, NULL, 2000));
  assert_true(run_until(&r.e, c_released, &up, NULL, NULL, 2000));
  assert_int_equal(up.lost, 1);
  assert_int_equal(up.lost_err, 0);
  assert_true(up.made < up.lost_seq && up.lost_seq < up.released_seq);
  assert_int_equal(up.eof, 0);
  assert_true(r.peer_side.eof > 0);
  assert_int_equal(r.peer_side.lost_err, 0);
  assert_int_equal(r.lower_side.lost, 0); /* its protocol went at the push */
  side_free(&up);
  rig_finish(&r);
}

/* Two limiters stacked; the peer writes in random segments and the top
 * protocol consumes random parts: the same bytes arrive, and the other way
 * too (random write sizes from the top). */
static void test_stack_random_segments(void **state) {
  (void)state;
  srand(1234);
  struct rig r;
  rig_init(&r);
  struct side mid = {0}, top = {0};
  top.random_consume = 1;
  async_stream *middle = NULL, *upper = NULL;
  assert_int_equal(async_layer_push_rate_limit(&middle, r.lower, 0, 0, &side_protocol, &mid), 0);
  assert_int_equal(async_layer_push_rate_limit(&upper, middle, 64 * 1024 * 1024, 64 * 1024 * 1024,
                                               &side_each_protocol, &top),
                   0);
  assert_int_equal(mid.released, 1);
  assert_int_equal(async_layer_is_layered(middle), 1);
  const size_t total = 256 * KIB;
  uint8_t *src = malloc(total);
  fill(src, total, 7);
  for (size_t at = 0; at < total;) {
    size_t n = 1 + (size_t)rand() % 5000;
    if (n > total - at) n = total - at;
    assert_int_equal(async_stream_write(r.peer, src + at, n), 0);
    at += n;
  }
  g_want = total;
  if (!run_until(&r.e, c_len, &top, NULL, NULL, 5000))
    fail_msg("top got %zu of %zu bytes, %d calls, lost %d", top.len, total, top.data_calls, top.lost);
  assert_memory_equal(top.buf, src, total);
  for (size_t at = 0; at < total;) {
    size_t n = 1 + (size_t)rand() % 9000;
    if (n > total - at) n = total - at;
    struct iovec iov[2] = {{src + at, n / 2}, {src + at + n / 2, n - n / 2}};
    assert_int_equal(async_stream_writev(upper, iov, 2), 0);
    at += n;
  }
  assert_true(run_until(&r.e, c_len, &r.peer_side, NULL, NULL, 5000));
  assert_memory_equal(r.peer_side.buf, src, total);
  /* Abort at the top aborts every stream below it: the peer sees the end. */
  assert_int_equal(async_stream_abort(upper), 0);
  assert_true(run_until(&r.e, c_released, &r.peer_side, NULL, NULL, 2000));
  assert_true(run_until(&r.e, c_released, &top, NULL, NULL, 2000));
  assert_int_equal(top.lost, 1);
  assert_int_equal(top.lost_err, 0);
  assert_int_equal(mid.lost, 0); /* its protocol went at the second push */
  free(src);
  side_free(&mid);
  side_free(&top);
  rig_finish(&r);
}

/* The limiter's rates: 100 kB/s each way moves 30 kB in no less than
 * (30 kB - one 5 kB bucket) / 100 kB/s = 250 ms. */
static void test_rates(void **state) {
  (void)state;
  struct rig r;
  rig_init(&r);
  struct side up = {0};
  async_stream *upper = NULL;
  assert_int_equal(async_layer_push_rate_limit(&upper, r.lower, 100000, 100000, &side_protocol, &up), 0);
  assert_true(run_until(&r.e, c_made, &up, NULL, NULL, 2000));
  const size_t total = 30000;
  uint8_t *src = malloc(total);
  fill(src, total, 3);
  uint64_t t0 = tu_now_ns();
  assert_int_equal(async_stream_write(upper, src, total), 0);
  g_want = total;
  assert_true(run_until(&r.e, c_len, &r.peer_side, NULL, NULL, 5000));
  double write_ms = tu_elapsed_ms(t0);
  assert_memory_equal(r.peer_side.buf, src, total);
  t0 = tu_now_ns();
  assert_int_equal(async_stream_write(r.peer, src, total), 0);
  assert_true(run_until(&r.e, c_len, &up, NULL, NULL, 5000));
  double read_ms = tu_elapsed_ms(t0);
  assert_memory_equal(up.buf, src, total);
  if (write_ms < 245 || read_ms < 245 || write_ms > 3000 || read_ms > 3000)
    fail_msg("30 kB at 100 kB/s: write %.0f ms, read %.0f ms (expected 250 ms to 3 s)", write_ms, read_ms);
  assert_int_equal(async_stream_close(upper), 0);
  assert_true(run_until(&r.e, c_released, &up, NULL, NULL, 2000));
  assert_int_equal(async_stream_close(r.peer), 0);
  free(src);
  side_free(&up);
  rig_finish(&r);
}

/* The stream below full (its peer not reading): the layer takes nothing
 * more, the stream above buffers and runs pause_writing; once the peer
 * reads, resume_writing, write_drained and every byte in order. */
static void test_flow_lower_full(void **state) {
  (void)state;
  struct rig r;
  rig_init(&r);
  struct side up = {0};
  async_stream *upper = NULL;
  assert_int_equal(async_layer_push_rate_limit(&upper, r.lower, 0, 0, &side_protocol, &up), 0);
  assert_true(run_until(&r.e, c_made, &r.peer_side, NULL, NULL, 2000));
  assert_true(run_until(&r.e, c_made, &up, NULL, NULL, 2000));
  assert_int_equal(async_stream_pause_reading(r.peer), 0);
  const size_t chunk = 16 * KIB;
  const size_t max_total = 16 * 1024 * KIB;
  uint8_t *src = malloc(max_total);
  fill(src, max_total, 9);
  size_t total = 0;
  while (!up.paused && total < max_total) {
    assert_int_equal(async_stream_write(upper, src + total, chunk), 0);
    total += chunk;
    run_once(&r.e, ASYNC_RUN_NOWAIT);
  }
  assert_int_equal(up.paused, 1);
  size_t above = 0, below = 0;
  assert_int_equal(async_stream_write_buffer_size(&above, upper), 0);
  assert_int_equal(async_stream_write_buffer_size(&below, r.lower), 0);
  assert_true(above > 64 * KIB); /* above the upper stream's own mark */
  assert_true(below > 64 * KIB); /* the stream below filled up first */
  assert_int_equal(async_stream_resume_reading(r.peer), 0);
  assert_true(run_until(&r.e, c_drained, &up, NULL, NULL, 5000));
  assert_int_equal(up.resumed, 1);
  g_want = total;
  assert_true(run_until(&r.e, c_len, &r.peer_side, NULL, NULL, 5000));
  assert_int_equal(r.peer_side.len, total);
  assert_memory_equal(r.peer_side.buf, src, total);
  assert_int_equal(async_stream_close(upper), 0);
  assert_true(run_until(&r.e, c_released, &r.peer_side, NULL, NULL, 2000));
  free(src);
  side_free(&up);
  rig_finish(&r);
}

/* The stream above not reading (paused in connection_made) pauses the
 * stream below: nothing is delivered; resume brings every byte. */
static void test_flow_upper_paused(void **state) {
  (void)state;
  struct rig r;
  rig_init(&r);
  struct side up = {0};
  up.pause_in_made = 1;
  async_stream *upper = NULL;
  assert_int_equal(async_layer_push_rate_limit(&upper, r.lower, 0, 0, &side_protocol, &up), 0);
  assert_true(run_until(&r.e, c_made, &up, NULL, NULL, 2000));
  const size_t total = 512 * KIB;
  uint8_t *src = malloc(total);
  fill(src, total, 5);
  assert_int_equal(async_stream_write(r.peer, src, total), 0);
  uint64_t end = tu_now_ms() + 100;
  while (tu_now_ms() < end) run_once(&r.e, ASYNC_RUN_ONCE);
  assert_int_equal(up.data_calls, 0);
  assert_int_equal(async_stream_is_reading(upper), 0);
  assert_int_equal(async_stream_is_reading(r.lower), 0);
  size_t peer_queued = 0;
  assert_int_equal(async_stream_write_buffer_size(&peer_queued, r.peer), 0);
  assert_true(peer_queued > 0); /* the socketpair filled: nothing read below */
  assert_int_equal(async_stream_resume_reading(upper), 0);
  assert_int_equal(async_stream_is_reading(r.lower), 1);
  g_want = total;
  assert_true(run_until(&r.e, c_len, &up, NULL, NULL, 5000));
  assert_memory_equal(up.buf, src, total);
  assert_int_equal(async_stream_close(r.peer), 0);
  assert_true(run_until(&r.e, c_released, &up, NULL, NULL, 2000));
  assert_true(up.eof > 0);
  assert_int_equal(up.lost_err, 0);
  free(src);
  side_free(&up);
  rig_finish(&r);
}

/* close() while the limiter still holds writes back: connection_lost(0)
 * comes once they went down, the peer gets all of them, then EOF. */
static void test_close_flushes(void **state) {
  (void)state;
  struct rig r;
  rig_init(&r);
  struct side up = {0};
  async_stream *upper = NULL;
  assert_int_equal(async_layer_push_rate_limit(&upper, r.lower, 0, 200000, &side_protocol, &up), 0);
  assert_true(run_until(&r.e, c_made, &up, NULL, NULL, 2000));
  const size_t total = 40000;
  uint8_t *src = malloc(total);
  fill(src, total, 11);
  assert_int_equal(async_stream_write(upper, src, total), 0);
  assert_int_equal(async_stream_close(upper), 0);
  assert_int_equal(async_stream_write(upper, "x", 1), ASYNC_ECLOSED);
  run_once(&r.e, ASYNC_RUN_NOWAIT);
  assert_int_equal(up.lost, 0); /* still flushing through the limiter */
  assert_true(run_until(&r.e, c_released, &r.peer_side, NULL, NULL, 5000));
  assert_int_equal(r.peer_side.len, total);
  assert_memory_equal(r.peer_side.buf, src, total);
  assert_true(r.peer_side.eof > 0);
  assert_int_equal(up.lost, 1);
  assert_int_equal(up.lost_err, 0);
  assert_true(up.lost_seq < r.peer_side.eof);
  free(src);
  side_free(&up);
  rig_finish(&r);
}

/* The peer's write_eof comes up as eof_received; kept open, the stream
 * above still writes (half-close through the layer), then write_eof down. */
static void test_half_close(void **state) {
  (void)state;
  struct rig r;
  rig_init(&r);
  struct side up = {0};
  up.eof_keep = 1;
  r.peer_side.eof_keep = 1;
  async_stream *upper = NULL;
  assert_int_equal(async_layer_push_rate_limit(&upper, r.lower, 0, 0, &side_protocol, &up), 0);
  assert_int_equal(async_stream_write(r.peer, "ping", 4), 0);
  assert_int_equal(async_stream_write_eof(r.peer), 0);
  g_want = 4;
  assert_true(run_until(&r.e, c_len, &up, NULL, NULL, 2000));
  uint64_t end = tu_now_ms() + 50;
  while (!up.eof && tu_now_ms() < end) run_once(&r.e, ASYNC_RUN_ONCE);
  assert_true(up.eof > 0);
  assert_int_equal(up.lost, 0);
  assert_int_equal(async_stream_write(upper, "pong", 4), 0);
  assert_int_equal(async_stream_write_eof(upper), 0);
  assert_true(run_until(&r.e, c_len, &r.peer_side, NULL, NULL, 2000));
  assert_memory_equal(r.peer_side.buf, "pong", 4);
  end = tu_now_ms() + 1000;
  while (!r.peer_side.eof && tu_now_ms() < end) run_once(&r.e, ASYNC_RUN_ONCE);
  assert_true(r.peer_side.eof > 0);
  assert_int_equal(async_stream_close(upper), 0);
  assert_int_equal(async_stream_close(r.peer), 0);
  assert_true(run_until(&r.e, c_released, &up, NULL, NULL, 2000));
  assert_int_equal(up.lost_err, 0);
  side_free(&up);
  rig_finish(&r);
}

/* STARTTLS's shape: the plaintext protocol reads a greeting and pushes the
 * layer inside data_received; the bytes after the greeting, which came in
 * the same read, go up through the layer. */
static async_stream *g_pushed;
static struct side g_pushed_side;
static void push_after_greeting(struct side *x) {
  if (x->len >= 6 && !g_pushed)
    async_layer_push_rate_limit(&g_pushed, x->s, 0, 0, &side_protocol, &g_pushed_side);
}

static void test_push_inside_data(void **state) {
  (void)state;
  struct rig r;
  rig_init(&r);
  memset(&g_pushed_side, 0, sizeof g_pushed_side);
  g_pushed = NULL;
  r.lower_side.consume_max = 6; /* "HELLO\n" */
  r.lower_side.on_data = push_after_greeting;
  assert_int_equal(async_stream_write(r.peer, "HELLO\nlayered bytes", 19), 0);
  g_want = 13;
  assert_true(run_until(&r.e, c_len, &g_pushed_side, NULL, NULL, 2000));
  assert_non_null(g_pushed);
  assert_int_equal(r.lower_side.len, 6);
  assert_memory_equal(r.lower_side.buf, "HELLO\n", 6);
  assert_memory_equal(g_pushed_side.buf, "layered bytes", 13);
  assert_true(g_pushed_side.made > 0);
  assert_int_equal(async_stream_close(g_pushed), 0);
  assert_true(run_until(&r.e, c_released, &r.peer_side, NULL, NULL, 2000));
  side_free(&g_pushed_side);
  rig_finish(&r);
}

/* Pop: the stream above closes after its held-back bytes went down, the
 * stream below stays open with the pop's protocol, and bytes go on both
 * ways on it. */
static void test_pop(void **state) {
  (void)state;
  struct rig r;
  rig_init(&r);
  struct side up = {0}, after = {0};
  async_stream *upper = NULL;
  assert_int_equal(async_layer_push_rate_limit(&upper, r.lower, 0, 200000, &side_protocol, &up), 0);
  assert_true(run_until(&r.e, c_made, &up, NULL, NULL, 2000));
  const size_t total = 30000;
  uint8_t *src = malloc(total);
  fill(src, total, 13);
  assert_int_equal(async_stream_write(upper, src, total), 0);
  assert_int_equal(async_layer_pop(upper, &side_protocol, &after), 0);
  assert_int_equal(async_layer_pop(upper, &side_protocol, &after), ASYNC_ECLOSED);
  assert_int_equal(up.lost, 0);
  assert_true(run_until(&r.e, c_released, &up, NULL, NULL, 5000));
  assert_int_equal(up.lost_err, 0);
  g_want = total;
  assert_true(run_until(&r.e, c_len, &r.peer_side, NULL, NULL, 2000));
  assert_memory_equal(r.peer_side.buf, src, total);
  /* The stream below goes on, plain, with the pop's protocol. */
  assert_int_equal(async_layer_is_layered(r.lower), 0);
  assert_int_equal(async_stream_write(r.lower, "plain", 5), 0);
  g_want = total + 5;
  assert_true(run_until(&r.e, c_len, &r.peer_side, NULL, NULL, 2000));
  assert_memory_equal(r.peer_side.buf + total, "plain", 5);
  assert_int_equal(async_stream_write(r.peer, "again", 5), 0);
  g_want = 5;
  assert_true(run_until(&r.e, c_len, &after, NULL, NULL, 2000));
  assert_memory_equal(after.buf, "again", 5);
  assert_int_equal(after.made, 0); /* set_protocol's way: no connection_made */
  assert_int_equal(after.released, 0);
  /* And a layer can go on it again. */
  struct side again = {0};
  async_stream *upper2 = NULL;
  assert_int_equal(async_layer_push_rate_limit(&upper2, r.lower, 0, 0, &side_protocol, &again), 0);
  assert_int_equal(after.released, 1);
  assert_int_equal(after.lost, 0);
  assert_int_equal(async_stream_close(upper2), 0);
  assert_true(run_until(&r.e, c_released, &r.peer_side, NULL, NULL, 2000));
  assert_true(run_until(&r.e, c_released, &again, NULL, NULL, 2000));
  free(src);
  side_free(&up);
  side_free(&after);
  side_free(&again);
  rig_finish(&r);
}

/* A pop that never completes (the stack is aborted first): the pop's
 * userdata still gets its one release, after the stream above's. */
static void test_pop_abandoned(void **state) {
  (void)state;
  struct rig r;
  rig_init(&r);
  struct side up = {0}, after = {0};
  async_stream *upper = NULL;
  assert_int_equal(async_layer_push_rate_limit(&upper, r.lower, 0, 1000, &side_protocol, &up), 0);
  assert_true(run_until(&r.e, c_made, &up, NULL, NULL, 2000));
  uint8_t src[4000] = {0};
  assert_int_equal(async_stream_write(upper, src, sizeof src), 0); /* seconds at 1 kB/s */
  assert_int_equal(async_layer_pop(upper, &side_protocol, &after), 0);
  assert_int_equal(async_stream_abort(r.lower), 0);
  assert_true(run_until(&r.e, c_released, &after, NULL, NULL, 2000));
  assert_int_equal(up.lost, 1);
  assert_int_equal(up.lost_err, ASYNC_EPIPE); /* writes were still queued above */
  assert_int_equal(up.released, 1);
  assert_true(up.released_seq < after.released_seq);
  assert_int_equal(after.lost, 0);
  assert_int_equal(after.data_calls, 0);
  assert_true(run_until(&r.e, c_released, &r.peer_side, NULL, NULL, 2000));
  side_free(&up);
  side_free(&after);
  rig_finish(&r);
}

/* Replacing the stream below's protocol takes it from the layer: the
 * stream above ends with ASYNC_ECLOSED. */
static void test_lower_taken(void **state) {
  (void)state;
  struct rig r;
  rig_init(&r);
  struct side up = {0}, taker = {0};
  async_stream *upper = NULL;
  assert_int_equal(async_layer_push_rate_limit(&upper, r.lower, 0, 0, &side_protocol, &up), 0);
  assert_int_equal(async_stream_set_protocol(r.lower, &side_protocol, &taker), 0);
  assert_true(run_until(&r.e, c_released, &up, NULL, NULL, 2000));
  assert_int_equal(up.lost_err, ASYNC_ECLOSED);
  assert_int_equal(async_stream_write(r.peer, "still", 5), 0);
  g_want = 5;
  assert_true(run_until(&r.e, c_len, &taker, NULL, NULL, 2000));
  assert_int_equal(async_stream_close(r.lower), 0);
  assert_true(run_until(&r.e, c_released, &taker, NULL, NULL, 2000));
  assert_true(run_until(&r.e, c_released, &r.peer_side, NULL, NULL, 2000));
  side_free(&up);
  side_free(&taker);
  rig_finish(&r);
}

/* The peer going away ends the whole stack: connection_lost once, last. */
static void test_peer_gone(void **state) {
  (void)state;
  struct rig r;
  rig_init(&r);
  struct side mid = {0}, top = {0};
  async_stream *middle = NULL, *upper = NULL;
  assert_int_equal(async_layer_push_rate_limit(&middle, r.lower, 0, 0, &side_protocol, &mid), 0);
  assert_int_equal(async_layer_push_rate_limit(&upper, middle, 0, 0, &side_protocol, &top), 0);
  assert_true(run_until(&r.e, c_made, &top, NULL, NULL, 2000));
  assert_int_equal(async_stream_retain(upper), 0);
  assert_int_equal(async_stream_abort(r.peer), 0);
  assert_true(run_until(&r.e, c_released, &top, NULL, NULL, 2000));
  assert_int_equal(top.lost, 1);
  assert_true(top.eof > 0 && top.eof < top.lost_seq);
  assert_int_equal(top.lost_err, 0);
  assert_int_equal(async_stream_write(upper, "x", 1), ASYNC_ECLOSED);
  assert_int_equal(async_stream_release(upper), 0);
  side_free(&mid);
  side_free(&top);
  rig_finish(&r);
}

/* Hostile input: every refusal changes nothing and calls nothing. */
static void test_bad_input(void **state) {
  (void)state;
  struct rig r;
  rig_init(&r);
  struct side up = {0};
  async_stream *upper = NULL;
  async_stream_protocol no_lost = side_protocol;
  no_lost.connection_lost = NULL;
  assert_int_equal(async_layer_push_rate_limit(NULL, r.lower, 0, 0, &side_protocol, &up), ASYNC_EINVAL);
  assert_int_equal(async_layer_push_rate_limit(&upper, NULL, 0, 0, &side_protocol, &up), ASYNC_EINVAL);
  assert_int_equal(async_layer_push_rate_limit(&upper, (async_stream *)r.e.loop, 0, 0, &side_protocol, &up),
                   ASYNC_EINVAL);
  assert_int_equal(async_layer_push_rate_limit(&upper, r.lower, 0, 0, NULL, &up), ASYNC_EINVAL);
  assert_int_equal(async_layer_push_rate_limit(&upper, r.lower, 0, 0, &no_lost, &up), ASYNC_EINVAL);
  assert_int_equal(async_layer_pop(r.lower, &side_protocol, &up), ASYNC_EINVAL); /* not layered */
  assert_int_equal(async_layer_pop(NULL, &side_protocol, &up), ASYNC_EINVAL);
  assert_int_equal(async_layer_is_layered(NULL), ASYNC_EINVAL);
  assert_int_equal(r.lower_side.released, 0);
  assert_null(upper);
  assert_int_equal(async_layer_push_rate_limit(&upper, r.lower, 0, 0, &side_protocol, &up), 0);
  assert_int_equal(async_layer_pop(upper, NULL, NULL), ASYNC_EINVAL);
  assert_int_equal(async_layer_pop(upper, &no_lost, NULL), ASYNC_EINVAL);
  assert_int_equal(async_stream_close(upper), 0);
  assert_int_equal(async_layer_pop(upper, &side_protocol, NULL), ASYNC_ECLOSED);
  /* The stream below closes with the one above: a push on it is refused. */
  async_stream *none = NULL;
  assert_int_equal(async_layer_push_rate_limit(&none, r.lower, 0, 0, &side_protocol, &up), ASYNC_ECLOSED);
  assert_null(none);
  assert_true(run_until(&r.e, c_released, &up, NULL, NULL, 2000));
  assert_int_equal(up.released, 1);
  assert_true(run_until(&r.e, c_released, &r.peer_side, NULL, NULL, 2000));
  side_free(&up);
  rig_finish(&r);
}

/* Socket options and names through the stack on a real TCP connection. */
static void test_tcp_options(void **state) {
  (void)state;
  struct env e;
  env_init(&e);
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sin = {0};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t slen = sizeof sin;
  assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof sin), 0);
  assert_int_equal(listen(lfd, 1), 0);
  assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &slen), 0);
  int cfd = socket(AF_INET, SOCK_STREAM, 0);
  assert_int_equal(connect(cfd, (struct sockaddr *)&sin, sizeof sin), 0);
  int afd = accept(lfd, NULL, NULL);
  assert_true(afd >= 0);
  close(lfd);
  struct side low = {0}, up = {0}, peer = {0};
  async_stream *lower = NULL, *upper = NULL, *other = NULL;
  assert_int_equal(async_stream_adopt(&lower, e.loop, cfd, &side_protocol, &low), 0);
  assert_int_equal(async_stream_adopt(&other, e.loop, afd, &side_protocol, &peer), 0);
  assert_int_equal(async_layer_push_rate_limit(&upper, lower, 0, 0, &side_protocol, &up), 0);
  assert_int_equal(async_stream_set_nodelay(upper, 0), 0);
  assert_int_equal(async_stream_set_keepalive(upper, 1, 30), 0);
  int on = -1;
  socklen_t olen = sizeof on;
  assert_int_equal(getsockopt(cfd, SOL_SOCKET, SO_KEEPALIVE, &on, &olen), 0);
  assert_int_equal(on, 1);
  struct sockaddr_in a, b;
  assert_true(async_stream_peername((struct sockaddr *)&a, sizeof a, upper) > 0);
  assert_true(async_stream_peername((struct sockaddr *)&b, sizeof b, lower) > 0);
  assert_int_equal(a.sin_port, sin.sin_port);
  assert_int_equal(b.sin_port, sin.sin_port);
  assert_int_equal(async_stream_close(upper), 0);
  assert_true(run_until(&e, c_released, &peer, NULL, NULL, 2000));
  assert_true(run_until(&e, c_released, &up, NULL, NULL, 2000));
  env_finish(&e);
  side_free(&low);
  side_free(&up);
  side_free(&peer);
}

/* A zero-copy write above: its done runs from the loop once the bytes
 * went down; the idle timeout above aborts the whole stack. */
static int g_zc_done;
static void zc_done(void *ud) { *(int *)ud += 1; }

static void test_zero_copy_and_idle(void **state) {
  (void)state;
  struct rig r;
  rig_init(&r);
  struct side up = {0};
  async_stream *upper = NULL;
  assert_int_equal(async_layer_push_rate_limit(&upper, r.lower, 0, 100000, &side_protocol, &up), 0);
  assert_true(run_until(&r.e, c_made, &up, NULL, NULL, 2000));
  static uint8_t src[20000];
  fill(src, sizeof src, 17);
  g_zc_done = 0;
  assert_int_equal(LIB(async_stream_write_zc(upper, src, sizeof src, zc_done, &g_zc_done)), 0);
  assert_int_equal(g_zc_done, 0);
  g_want = sizeof src;
  assert_true(run_until(&r.e, c_len, &r.peer_side, NULL, NULL, 3000));
  assert_memory_equal(r.peer_side.buf, src, sizeof src);
  assert_int_equal(g_zc_done, 1);
  uint64_t t0 = tu_now_ns();
  assert_int_equal(async_stream_set_idle_timeout(upper, 50), 0);
  assert_true(run_until(&r.e, c_released, &up, NULL, NULL, 2000));
  assert_true(tu_elapsed_ms(t0) >= 45);
  assert_int_equal(up.lost_err, ASYNC_ETIMEDOUT);
  assert_true(run_until(&r.e, c_released, &r.peer_side, NULL, NULL, 2000));
  side_free(&up);
  rig_finish(&r);
}

/* async_loop_shutdown() with a stack: every stream ends with
 * ASYNC_ECANCELED and one release, and the loop frees. */
static void test_shutdown(void **state) {
  (void)state;
  struct rig r;
  rig_init(&r);
  struct side mid = {0}, top = {0};
  async_stream *middle = NULL, *upper = NULL;
  assert_int_equal(async_layer_push_rate_limit(&middle, r.lower, 0, 0, &side_protocol, &mid), 0);
  assert_int_equal(async_layer_push_rate_limit(&upper, middle, 0, 0, &side_protocol, &top), 0);
  assert_true(run_until(&r.e, c_made, &top, NULL, NULL, 2000));
  assert_int_equal(async_stream_write(upper, "pending", 7), 0);
  assert_int_equal(async_loop_shutdown(r.e.loop, NULL), 0);
  assert_true(run_until(&r.e, c_released, &top, NULL, NULL, 2000));
  assert_true(run_until(&r.e, c_released, &r.peer_side, NULL, NULL, 2000));
  assert_int_equal(top.lost, 1);
  assert_int_equal(top.lost_err, ASYNC_ECANCELED);
  assert_int_equal(top.released, 1);
  assert_int_equal(mid.released, 1); /* at the second push */
  assert_int_equal(mid.lost, 0);
  side_free(&mid);
  side_free(&top);
  tu_finish(r.e.loop); /* the guard timer went with the shutdown */
  side_free(&r.lower_side);
  side_free(&r.peer_side);
}

/* Out of memory at each allocation a push makes in turn: every refusal is
 * ASYNC_ENOMEM with nothing changed (the stream below keeps its protocol,
 * nothing is called); then the push succeeds and the stack works. */
static long g_alloc_fail_at; /* fail the n-th allocation from now; 0: never */
static void *failing_realloc(void *ptr, size_t size, void *ud) {
  (void)ud;
  if (size == 0) {
    free(ptr);
    return NULL;
  }
  if (g_alloc_fail_at > 0 && --g_alloc_fail_at == 0) return NULL;
  return realloc(ptr, size);
}

static void test_push_out_of_memory(void **state) {
  (void)state;
  assert_int_equal(async_set_allocator(failing_realloc, NULL), 0);
  struct rig r;
  rig_init(&r);
  assert_true(run_until(&r.e, c_made, &r.lower_side, NULL, NULL, 2000));
  struct side up = {0};
  async_stream *upper = NULL;
  int refusals = 0;
  for (long k = 1; k < 64; k++) {
    g_alloc_fail_at = k;
    int rc = async_layer_push_rate_limit(&upper, r.lower, 0, 0, &side_protocol, &up);
    g_alloc_fail_at = 0;
    if (rc == 0) break;
    assert_int_equal(rc, ASYNC_ENOMEM);
    assert_null(upper);
    assert_int_equal(r.lower_side.released, 0);
    assert_int_equal(async_layer_is_layered(r.lower), 0);
    refusals++;
  }
  assert_non_null(upper);
  assert_true(refusals >= 3); /* the limiter, the stream above, its buffers */
  assert_int_equal(r.lower_side.released, 1);
  assert_int_equal(async_stream_write(r.peer, "after", 5), 0);
  g_want = 5;
  assert_true(run_until(&r.e, c_len, &up, NULL, NULL, 2000));
  assert_memory_equal(up.buf, "after", 5);
  assert_int_equal(r.lower_side.data_calls, 0);
  assert_int_equal(async_stream_close(upper), 0);
  assert_true(run_until(&r.e, c_released, &r.peer_side, NULL, NULL, 2000));
  assert_true(run_until(&r.e, c_released, &up, NULL, NULL, 2000));
  side_free(&up);
  rig_finish(&r);
  assert_int_equal(async_set_allocator(NULL, NULL), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_push_out_of_memory), /* first: no library memory may be live */
      cmocka_unit_test(test_passthrough),       cmocka_unit_test(test_stack_random_segments),
      cmocka_unit_test(test_rates),             cmocka_unit_test(test_flow_lower_full),
      cmocka_unit_test(test_flow_upper_paused), cmocka_unit_test(test_close_flushes),
      cmocka_unit_test(test_half_close),        cmocka_unit_test(test_push_inside_data),
      cmocka_unit_test(test_pop),               cmocka_unit_test(test_pop_abandoned),
      cmocka_unit_test(test_lower_taken),       cmocka_unit_test(test_peer_gone),
      cmocka_unit_test(test_bad_input),         cmocka_unit_test(test_tcp_options),
      cmocka_unit_test(test_zero_copy_and_idle), cmocka_unit_test(test_shutdown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
