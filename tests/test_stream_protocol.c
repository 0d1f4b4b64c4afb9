/*
 * async_stream_protocol's optional parts (async/stream.h): one message per
 * data_received call (ASYNC_STREAM_DELIVER_EACH) and the idle_timeout
 * callback that replaces the ASYNC_ETIMEDOUT abort.
 *
 * The framing tests use a length-prefixed protocol (2-byte big-endian
 * length, then the payload; every payload byte is the frame's sequence
 * number) that parses at most one frame per call and returns 0 on a
 * partial one, as the flag lets it. It records, never asserts, from its
 * callbacks (a cmocka failure would longjmp through the library): frames
 * in order, calls made inside a library call or outside the loop, calls
 * after close/abort/loss, a 0 return presented again at once. The idle
 * tests use a 30 ms period and are bounded by run_until() caps.
 *
 * Streams are one end of an AF_UNIX socketpair; the test writes and reads
 * the other end itself.
 */
#include "test_util.h"
#include "loop_env.h"

#include <async/stream.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

enum action { ACT_NONE, ACT_PAUSE, ACT_PAUSE_RESUME, ACT_CLOSE, ACT_ABORT, ACT_SWAP };

#define MAXFRAMES 64

struct framed {
  async_stream *s;
  /* configuration */
  int hold;             /* return 0 for everything (not ready yet) */
  int act_at;           /* after this many frames, do act (once) */
  enum action act;      /* ... */
  const async_stream_protocol *swap_to; /* ACT_SWAP: set_protocol to this */
  struct framed *swap_ud;               /* ... with this userdata */
  uint8_t first_seq;    /* the sequence number expected first */
  /* record */
  int calls;
  int frames;
  int partials;
  int bad_order;        /* a payload byte not the expected sequence number */
  int bad_context;      /* a callback inside a library call or outside the loop */
  int after_end;        /* data_received after close/abort/eof/lost */
  int stale;            /* a 0 return presented again without new bytes */
  int ended;            /* the protocol closed or aborted the stream */
  size_t zero_len;      /* len of the last call that returned 0, or 0 */
  int eofs, frames_at_eof;
  int lost, lost_err, frames_at_lost;
  int released;
  int idle_calls;
};

static void check_context(struct framed *f) {
  if (g_depth > 0 || g_in_run == 0) f->bad_context++;
}

static size_t frame_put(uint8_t *buf, uint8_t seq, uint16_t n) {
  buf[0] = (uint8_t)(n >> 8);
  buf[1] = (uint8_t)n;
  memset(buf + 2, seq, n);
  return (size_t)n + 2;
}

static void act(struct framed *f, async_stream *s) {
  switch (f->act) {
    case ACT_PAUSE:
      (void)LIB(async_stream_pause_reading(s));
      break;
    case ACT_PAUSE_RESUME:
      (void)LIB(async_stream_pause_reading(s));
      (void)LIB(async_stream_resume_reading(s));
      break;
    case ACT_CLOSE:
      f->ended = 1;
      (void)LIB(async_stream_close(s));
      break;
    case ACT_ABORT:
      f->ended = 1;
      (void)LIB(async_stream_abort(s));
      break;
    case ACT_SWAP:
      (void)LIB(async_stream_set_protocol(s, f->swap_to, f->swap_ud));
      break;
    case ACT_NONE:
      break;
  }
}

/* One frame per call, or 0. */
static size_t framed_data(async_stream *s, const uint8_t *data, size_t len, void *ud) {
  struct framed *f = ud;
  f->calls++;
  check_context(f);
  if (f->ended || f->eofs || f->lost || f->released) f->after_end++;
  if (f->zero_len && len <= f->zero_len) f->stale++;
  f->zero_len = 0;
  size_t need = len < 2 ? 2 : 2 + (((size_t)data[0] << 8) | data[1]);
  if (f->hold || len < need) {
    if (!f->hold) f->partials++;
    f->zero_len = len;
    return 0;
  }
  uint8_t seq = (uint8_t)(f->first_seq + f->frames);
  for (size_t i = 2; i < need; i++) {
    if (data[i] != seq) {
      f->bad_order++;
      break;
    }
  }
  f->frames++;
  if (f->frames == f->act_at) act(f, s);
  return need;
}

static int framed_eof(async_stream *s, void *ud) {
  (void)s;
  struct framed *f = ud;
  check_context(f);
  f->eofs++;
  f->frames_at_eof = f->frames;
  return 0;
}

static void framed_lost(async_stream *s, int err, void *ud) {
  (void)s;
  struct framed *f = ud;
  check_context(f);
  f->lost++;
  f->lost_err = err;
  f->frames_at_lost = f->frames;
}

static void framed_release(void *ud) { ((struct framed *)ud)->released++; }

static async_stream_protocol framed_protocol(uint32_t flags) {
  async_stream_protocol p = ASYNC_STREAM_PROTOCOL_INIT;
  p.data_received = framed_data;
  p.eof_received = framed_eof;
  p.connection_lost = framed_lost;
  p.release = framed_release;
  p.flags = flags;
  return p;
}

/* ------------------------------------------------------------------ */
/* Fixture: a loop, a stream on one end of a socketpair, the peer end  */

struct fx {
  struct env e;
  int peer;
  async_stream *s;
  struct framed f;
  async_stream_protocol p;
};

static int made_cond(void *a) { return async_stream_is_reading(((struct fx *)a)->s) == 1; }
static int lost_cond(void *a) { return ((struct framed *)a)->lost > 0; }

static void fx_init(struct fx *x, const async_stream_protocol *p) {
  memset(x, 0, sizeof *x);
  env_init(&x->e);
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  x->peer = sv[1];
  x->p = *p;
  assert_int_equal(LIB(async_stream_adopt(&x->s, x->e.loop, sv[0], &x->p, &x->f)), 0);
  x->f.s = x->s;
  assert_true(run_until(&x->e, made_cond, x, NULL, NULL, 1000));
}

static void fx_send(struct fx *x, const uint8_t *buf, size_t len) {
  assert_int_equal(write(x->peer, buf, len), (ssize_t)len);
}

/* Runs a few bounded iterations so what was sent is read and delivered. */
static void fx_settle(struct fx *x) { run_for(&x->e, 30, NULL, NULL); }

static void fx_wait_lost(struct fx *x, struct framed *f) {
  if (!run_until(&x->e, lost_cond, f, NULL, NULL, 2000)) fail_msg("connection_lost did not come");
}

/* Ends the stream (if still open) and the loop; checks the common records. */
static void fx_finish(struct fx *x) {
  if (!x->f.lost && !x->f.released) {
    (void)LIB(async_stream_abort(x->s));
    fx_wait_lost(x, &x->f);
  }
  close(x->peer);
  env_finish(&x->e);
  assert_int_equal(x->f.bad_context, 0);
  assert_int_equal(x->f.after_end, 0);
  assert_int_equal(x->f.bad_order, 0);
  assert_int_equal(x->f.released, 1);
}

/* n frames of sizes 1, 2, 3, ... (sequence numbers from 0) into buf. */
static size_t frames_put(uint8_t *buf, int n) {
  size_t at = 0;
  for (int i = 0; i < n; i++) at += frame_put(buf + at, (uint8_t)i, (uint16_t)(i + 1));
  return at;
}

/* ------------------------------------------------------------------ */
/* One message per call                                                */

/* Five frames in one write, then a frame split across three writes (the
 * header itself cut): every frame arrives in its own call, in order, and
 * each partial frame gets one call returning 0 and is not presented again
 * until more bytes came. */
static void test_each_frames_in_one_write_and_split(void **state) {
  (void)state;
  async_stream_protocol p = framed_protocol(ASYNC_STREAM_DELIVER_EACH);
  struct fx x;
  fx_init(&x, &p);
  uint8_t buf[256];
  size_t n = frames_put(buf, 5);
  fx_send(&x, buf, n);
  fx_settle(&x);
  assert_int_equal(x.f.frames, 5);
  assert_int_equal(x.f.calls, 5); /* no extra call: the last frame consumed everything */

  uint8_t split[64];
  size_t m = frame_put(split, 5, 40);
  fx_send(&x, split, 1); /* half the header */
  fx_settle(&x);
  fx_send(&x, split + 1, 10);
  fx_settle(&x);
  assert_int_equal(x.f.frames, 5);
  assert_int_equal(x.f.partials, 2);
  fx_send(&x, split + 11, m - 11);
  fx_settle(&x);
  assert_int_equal(x.f.frames, 6);
  assert_int_equal(x.f.calls, 8);
  assert_int_equal(x.f.stale, 0);
  fx_finish(&x);
}

/* Complete frames behind a partial one in the same write: the frames before
 * it come one per call, the partial one stops the delivery with 0, and the
 * next bytes complete it. */
static void test_each_stops_at_partial(void **state) {
  (void)state;
  async_stream_protocol p = framed_protocol(ASYNC_STREAM_DELIVER_EACH);
  struct fx x;
  fx_init(&x, &p);
  uint8_t buf[256];
  size_t n = frames_put(buf, 3);
  size_t m = frame_put(buf + n, 3, 20);
  fx_send(&x, buf, n + 7);
  fx_settle(&x);
  assert_int_equal(x.f.frames, 3);
  assert_int_equal(x.f.partials, 1);
  assert_int_equal(x.f.calls, 4);
  fx_send(&x, buf + n + 7, m - 7);
  fx_settle(&x);
  assert_int_equal(x.f.frames, 4);
  assert_int_equal(x.f.calls, 5);
  assert_int_equal(x.f.stale, 0);
  fx_finish(&x);
}

/* Without the flag (today's behaviour): one call per delivery, the frames
 * after the first wait in front of the next bytes. */
static void test_without_flag_one_call_per_read(void **state) {
  (void)state;
  async_stream_protocol p = framed_protocol(0);
  struct fx x;
  fx_init(&x, &p);
  uint8_t buf[256];
  size_t n = frames_put(buf, 3);
  fx_send(&x, buf, n);
  fx_settle(&x);
  assert_int_equal(x.f.frames, 1);
  assert_int_equal(x.f.calls, 1);
  fx_finish(&x);
}

/* A protocol consuming 1 byte per call is called once per byte of a
 * delivery, before the loop goes on (what the flag documents). */
static size_t one_byte(async_stream *s, const uint8_t *data, size_t len, void *ud) {
  (void)s;
  (void)data;
  (void)len;
  struct framed *f = ud;
  check_context(f);
  f->calls++;
  return 1;
}

static void test_each_one_byte_per_call(void **state) {
  (void)state;
  async_stream_protocol p = framed_protocol(ASYNC_STREAM_DELIVER_EACH);
  p.data_received = one_byte;
  struct fx x;
  fx_init(&x, &p);
  uint8_t buf[4000];
  memset(buf, 7, sizeof buf);
  fx_send(&x, buf, sizeof buf);
  fx_settle(&x);
  assert_int_equal(x.f.calls, (int)sizeof buf);
  fx_finish(&x);
}

/* pause_reading inside the second call stops at once; nothing comes while
 * paused; resume_reading runs no callback inside and the kept frames come
 * next from the loop, without any new bytes from the peer. */
static void test_each_pause_inside_then_resume(void **state) {
  (void)state;
  async_stream_protocol p = framed_protocol(ASYNC_STREAM_DELIVER_EACH);
  struct fx x;
  fx_init(&x, &p);
  x.f.act = ACT_PAUSE;
  x.f.act_at = 2;
  uint8_t buf[256];
  size_t n = frames_put(buf, 5);
  fx_send(&x, buf, n);
  fx_settle(&x);
  assert_int_equal(x.f.frames, 2);
  assert_int_equal(x.f.calls, 2);
  assert_int_equal(LIB(async_stream_is_reading(x.s)), 0);
  fx_settle(&x);
  assert_int_equal(x.f.calls, 2);
  assert_int_equal(LIB(async_stream_resume_reading(x.s)), 0);
  assert_int_equal(x.f.calls, 2); /* never inside the call */
  assert_int_equal(LIB(async_stream_resume_reading(x.s)), 0); /* idempotent: one delivery */
  fx_settle(&x);
  assert_int_equal(x.f.frames, 5);
  assert_int_equal(x.f.calls, 5);
  /* later bytes come behind them */
  uint8_t more[16];
  size_t m = frame_put(more, 5, 3);
  fx_send(&x, more, m);
  fx_settle(&x);
  assert_int_equal(x.f.frames, 6);
  assert_int_equal(x.f.stale, 0);
  fx_finish(&x);
}

/* Paused, resumed and paused again before the loop ran: nothing comes. */
static void test_each_resume_then_pause_again(void **state) {
  (void)state;
  async_stream_protocol p = framed_protocol(ASYNC_STREAM_DELIVER_EACH);
  struct fx x;
  fx_init(&x, &p);
  x.f.act = ACT_PAUSE;
  x.f.act_at = 1;
  uint8_t buf[256];
  size_t n = frames_put(buf, 3);
  fx_send(&x, buf, n);
  fx_settle(&x);
  assert_int_equal(x.f.frames, 1);
  assert_int_equal(LIB(async_stream_resume_reading(x.s)), 0);
  assert_int_equal(LIB(async_stream_pause_reading(x.s)), 0);
  fx_settle(&x);
  assert_int_equal(x.f.calls, 1);
  assert_int_equal(LIB(async_stream_resume_reading(x.s)), 0);
  fx_settle(&x);
  assert_int_equal(x.f.frames, 3);
  fx_finish(&x);
}

/* Paused and resumed inside the same call, while a kept tail is being
 * presented: the delivery goes on at once, and nothing presents the partial
 * frame it ends with again before new bytes come. */
static void test_each_pause_resume_inside(void **state) {
  (void)state;
  async_stream_protocol p = framed_protocol(ASYNC_STREAM_DELIVER_EACH);
  struct fx x;
  fx_init(&x, &p);
  x.f.act = ACT_PAUSE_RESUME;
  x.f.act_at = 1;
  uint8_t buf[256];
  size_t n = frames_put(buf, 2);
  size_t m = frame_put(buf + n, 2, 30);
  fx_send(&x, buf, 1); /* kept: the next bytes are presented behind it */
  fx_settle(&x);
  fx_send(&x, buf + 1, n - 1 + 5);
  fx_settle(&x);
  assert_int_equal(x.f.frames, 2);
  assert_int_equal(x.f.partials, 2);
  assert_int_equal(x.f.calls, 4);
  assert_int_equal(x.f.stale, 0);
  fx_send(&x, buf + n + 5, m - 5);
  fx_settle(&x);
  assert_int_equal(x.f.frames, 3);
  assert_int_equal(x.f.stale, 0);
  fx_finish(&x);
}

/* close / abort inside: no further call, connection_lost(0) after the
 * frame that ended it. */
static void end_inside_case(enum action a) {
  async_stream_protocol p = framed_protocol(ASYNC_STREAM_DELIVER_EACH);
  struct fx x;
  fx_init(&x, &p);
  x.f.act = a;
  x.f.act_at = 2;
  uint8_t buf[256];
  size_t n = frames_put(buf, 5);
  fx_send(&x, buf, n);
  fx_wait_lost(&x, &x.f);
  assert_int_equal(x.f.calls, 2);
  assert_int_equal(x.f.lost_err, 0);
  assert_int_equal(x.f.frames_at_lost, 2);
  assert_int_equal(x.f.eofs, 0);
  fx_finish(&x);
}

static void test_each_close_inside_stops(void **state) {
  (void)state;
  end_inside_case(ACT_CLOSE);
}

static void test_each_abort_inside_stops(void **state) {
  (void)state;
  end_inside_case(ACT_ABORT);
}

/* set_protocol inside to a protocol with the flag: it gets the next frame
 * at once, in the same delivery. */
static void test_each_swap_to_each_goes_on(void **state) {
  (void)state;
  async_stream_protocol p = framed_protocol(ASYNC_STREAM_DELIVER_EACH);
  async_stream_protocol q = framed_protocol(ASYNC_STREAM_DELIVER_EACH);
  struct framed g;
  memset(&g, 0, sizeof g);
  g.first_seq = 2;
  struct fx x;
  fx_init(&x, &p);
  x.f.act = ACT_SWAP;
  x.f.act_at = 2;
  x.f.swap_to = &q;
  x.f.swap_ud = &g;
  uint8_t buf[256];
  size_t n = frames_put(buf, 5);
  fx_send(&x, buf, n);
  fx_settle(&x);
  assert_int_equal(x.f.frames, 2);
  assert_int_equal(x.f.released, 1);
  assert_int_equal(g.frames, 3);
  assert_int_equal(g.calls, 3);
  (void)LIB(async_stream_abort(x.s));
  fx_wait_lost(&x, &g);
  x.f.lost = 1; /* the stream is g's now */
  fx_finish(&x);
  assert_int_equal(g.bad_order + g.bad_context + g.after_end, 0);
  assert_int_equal(g.released, 1);
}

/* set_protocol inside to a protocol without the flag: the rest waits for
 * that protocol's next delivery (in front of the next bytes). */
static void test_each_swap_to_plain_keeps_rest(void **state) {
  (void)state;
  async_stream_protocol p = framed_protocol(ASYNC_STREAM_DELIVER_EACH);
  async_stream_protocol q = framed_protocol(0);
  struct framed g;
  memset(&g, 0, sizeof g);
  g.first_seq = 2;
  struct fx x;
  fx_init(&x, &p);
  x.f.act = ACT_SWAP;
  x.f.act_at = 2;
  x.f.swap_to = &q;
  x.f.swap_ud = &g;
  uint8_t buf[256];
  size_t n = frames_put(buf, 5);
  fx_send(&x, buf, n);
  fx_settle(&x);
  assert_int_equal(x.f.calls, 2);
  assert_int_equal(g.calls, 0);
  uint8_t more[16];
  size_t m = frame_put(more, 5, 1);
  fx_send(&x, more, m);
  fx_settle(&x);
  assert_int_equal(g.calls, 1); /* one call: frame 2 with 3, 4, 5 behind it */
  assert_int_equal(g.frames, 1);
  (void)LIB(async_stream_abort(x.s));
  fx_wait_lost(&x, &g);
  x.f.lost = 1;
  fx_finish(&x);
  assert_int_equal(g.bad_order + g.bad_context + g.after_end, 0);
}

/* Complete frames kept at end of file (the protocol held them until then):
 * the final delivery gives them one per call, then eof_received, then
 * connection_lost(0). */
static void eof_tail_case(uint32_t flags, int want_frames) {
  async_stream_protocol p = framed_protocol(flags);
  struct fx x;
  fx_init(&x, &p);
  x.f.hold = 1;
  uint8_t buf[256];
  size_t n = frames_put(buf, 4);
  fx_send(&x, buf, n);
  fx_settle(&x);
  assert_int_equal(x.f.frames, 0);
  x.f.hold = 0;
  x.f.zero_len = 0;
  assert_int_equal(shutdown(x.peer, SHUT_WR), 0);
  fx_wait_lost(&x, &x.f);
  assert_int_equal(x.f.frames, want_frames);
  assert_int_equal(x.f.eofs, 1);
  assert_int_equal(x.f.frames_at_eof, want_frames);
  assert_int_equal(x.f.lost_err, 0);
  fx_finish(&x);
}

static void test_each_eof_tail_frames(void **state) {
  (void)state;
  eof_tail_case(ASYNC_STREAM_DELIVER_EACH, 4);
}

static void test_plain_eof_tail_once(void **state) {
  (void)state;
  eof_tail_case(0, 1); /* today's: once more, the rest dropped */
}

/* A pause inside the end of file's final delivery: eof_received waits;
 * resume_reading presents the rest, then eof_received and the loss. */
static void test_each_pause_inside_eof_delivery(void **state) {
  (void)state;
  async_stream_protocol p = framed_protocol(ASYNC_STREAM_DELIVER_EACH);
  struct fx x;
  fx_init(&x, &p);
  x.f.hold = 1;
  uint8_t buf[256];
  size_t n = frames_put(buf, 4);
  fx_send(&x, buf, n);
  fx_settle(&x);
  x.f.hold = 0;
  x.f.zero_len = 0;
  x.f.act = ACT_PAUSE;
  x.f.act_at = 1;
  assert_int_equal(shutdown(x.peer, SHUT_WR), 0);
  fx_settle(&x);
  assert_int_equal(x.f.frames, 1);
  assert_int_equal(x.f.eofs, 0);
  assert_int_equal(x.f.lost, 0);
  assert_int_equal(LIB(async_stream_resume_reading(x.s)), 0);
  fx_wait_lost(&x, &x.f);
  assert_int_equal(x.f.frames, 4);
  assert_int_equal(x.f.frames_at_eof, 4);
  assert_int_equal(x.f.lost_err, 0);
  fx_finish(&x);
}

/* The same pause, then set_protocol to a protocol without the flag before
 * resuming: the new protocol gets the kept bytes once (as any protocol's
 * final delivery), then eof_received; the end is not lost. */
static void test_each_paused_eof_then_swap_to_plain(void **state) {
  (void)state;
  async_stream_protocol p = framed_protocol(ASYNC_STREAM_DELIVER_EACH);
  async_stream_protocol q = framed_protocol(0);
  struct framed g;
  memset(&g, 0, sizeof g);
  g.first_seq = 1;
  struct fx x;
  fx_init(&x, &p);
  x.f.hold = 1;
  uint8_t buf[256];
  size_t n = frames_put(buf, 4);
  fx_send(&x, buf, n);
  fx_settle(&x);
  x.f.hold = 0;
  x.f.zero_len = 0;
  x.f.act = ACT_PAUSE;
  x.f.act_at = 1;
  assert_int_equal(shutdown(x.peer, SHUT_WR), 0);
  fx_settle(&x);
  assert_int_equal(x.f.frames, 1);
  assert_int_equal(LIB(async_stream_set_protocol(x.s, &q, &g)), 0);
  assert_int_equal(LIB(async_stream_resume_reading(x.s)), 0);
  fx_wait_lost(&x, &g);
  assert_int_equal(g.calls, 1);
  assert_int_equal(g.frames, 1);
  assert_int_equal(g.eofs, 1);
  assert_int_equal(g.lost_err, 0);
  x.f.lost = 1;
  fx_finish(&x);
  assert_int_equal(g.bad_order + g.bad_context + g.after_end, 0);
  assert_int_equal(g.released, 1);
}

/* Close inside the end of file's final delivery: nothing more, no
 * eof_received. */
static void test_each_close_inside_eof_delivery(void **state) {
  (void)state;
  async_stream_protocol p = framed_protocol(ASYNC_STREAM_DELIVER_EACH);
  struct fx x;
  fx_init(&x, &p);
  x.f.hold = 1;
  uint8_t buf[256];
  size_t n = frames_put(buf, 4);
  fx_send(&x, buf, n);
  fx_settle(&x);
  x.f.hold = 0;
  x.f.zero_len = 0;
  x.f.act = ACT_CLOSE;
  x.f.act_at = 2;
  assert_int_equal(shutdown(x.peer, SHUT_WR), 0);
  fx_wait_lost(&x, &x.f);
  assert_int_equal(x.f.frames, 2);
  assert_int_equal(x.f.eofs, 0);
  fx_finish(&x);
}

/* Unknown flag bits are refused, and so is a size from before flags and
 * idle_timeout existed (below the v0 size; test_options covers sizes). */
static void test_protocol_sizes_and_flags(void **state) {
  (void)state;
  struct env e;
  env_init(&e);
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  async_stream_protocol p = framed_protocol(0xffff0000u);
  async_stream *s = NULL;
  struct framed f;
  memset(&f, 0, sizeof f);
  assert_int_equal(LIB(async_stream_adopt(&s, e.loop, sv[0], &p, &f)), ASYNC_EINVAL);
  p.flags = ASYNC_STREAM_DELIVER_EACH | 2u;
  assert_int_equal(LIB(async_stream_adopt(&s, e.loop, sv[0], &p, &f)), ASYNC_EINVAL);
  /* A size from before flags and idle_timeout: below the v0 size. */
  p.flags = 0;
  p.size = (uint32_t)offsetof(async_stream_protocol, flags);
  assert_int_equal(LIB(async_stream_adopt(&s, e.loop, sv[0], &p, &f)), ASYNC_EINVAL);
  assert_null(s);
  close(sv[0]);
  close(sv[1]);
  env_finish(&e);
  assert_int_equal(f.released, 0); /* refused: nothing called */
  assert_int_equal(f.bad_context, 0);
}

/* ------------------------------------------------------------------ */
/* idle_timeout                                                        */

enum idle_do { IDLE_KEEPALIVE, IDLE_NOTHING, IDLE_CLOSE, IDLE_ABORT, IDLE_OFF, IDLE_SWAP };

static enum idle_do g_idle_do;
static const async_stream_protocol *g_idle_swap;
static uint64_t g_idle_t[16];

static void on_idle(async_stream *s, void *ud) {
  struct framed *f = ud;
  check_context(f);
  if (f->idle_calls < 16) g_idle_t[f->idle_calls] = tu_now_ns();
  f->idle_calls++;
  switch (g_idle_do) {
    case IDLE_KEEPALIVE:
      (void)LIB(async_stream_write(s, "K", 1));
      break;
    case IDLE_NOTHING:
      break;
    case IDLE_CLOSE:
      (void)LIB(async_stream_close(s));
      break;
    case IDLE_ABORT:
      (void)LIB(async_stream_abort(s));
      break;
    case IDLE_OFF:
      (void)LIB(async_stream_set_idle_timeout(s, 0));
      break;
    case IDLE_SWAP:
      (void)LIB(async_stream_set_protocol(s, g_idle_swap, f));
      break;
  }
}

static int idle_cond(void *a) { return ((struct framed *)a)->idle_calls >= 3; }

static void idle_fx(struct fx *x, enum idle_do what) {
  async_stream_protocol p = framed_protocol(0);
  p.idle_timeout = on_idle;
  g_idle_do = what;
  fx_init(x, &p);
  assert_int_equal(LIB(async_stream_set_idle_timeout(x->s, 30)), 0);
}

static void order_made(async_stream *s, void *ud) {
  (void)s;
  struct framed *f = ud;
  check_context(f);
  if (f->idle_calls) f->bad_order++; /* idle_timeout came first */
  f->frames = -1;                    /* made */
}

/* The idle timer is set right after adopt and has expired before the loop
 * first runs: connection_made still comes first. */
static void test_idle_never_before_made(void **state) {
  (void)state;
  struct env e;
  env_init(&e);
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  async_stream_protocol p = framed_protocol(0);
  p.connection_made = order_made;
  p.idle_timeout = on_idle;
  g_idle_do = IDLE_CLOSE;
  struct framed f;
  memset(&f, 0, sizeof f);
  async_stream *s = NULL;
  assert_int_equal(LIB(async_stream_adopt(&s, e.loop, sv[0], &p, &f)), 0);
  assert_int_equal(LIB(async_stream_set_idle_timeout(s, 1)), 0);
  tu_sleep_ms(20);
  if (!run_until(&e, lost_cond, &f, NULL, NULL, 2000)) fail_msg("connection_lost did not come");
  assert_int_equal(f.frames, -1);
  assert_int_equal(f.bad_order, 0);
  assert_int_equal(f.idle_calls, 1);
  close(sv[1]);
  env_finish(&e);
  assert_int_equal(f.bad_context, 0);
}

/* A keepalive written from the callback every period of an otherwise idle
 * connection; the stream stays open, the peer gets every byte. */
static void test_idle_keepalive_every_period(void **state) {
  (void)state;
  struct fx x;
  uint64_t t0 = tu_now_ns();
  idle_fx(&x, IDLE_KEEPALIVE);
  if (!run_until(&x.e, idle_cond, &x.f, NULL, NULL, 2000)) fail_msg("idle_timeout ran %d times", x.f.idle_calls);
  assert_int_equal(x.f.lost, 0);
  for (int i = 0; i < 3; i++) {
    double ms = (double)(g_idle_t[i] - (i ? g_idle_t[i - 1] : t0)) / 1e6;
    if (ms < 30.0) fail_msg("idle call %d after %.1f ms, want >= 30 ms", i, ms);
  }
  char got[16];
  ssize_t n = recv(x.peer, got, sizeof got, MSG_DONTWAIT);
  assert_true(n >= 3);
  for (ssize_t i = 0; i < n; i++) assert_int_equal(got[i], 'K');
  fx_finish(&x);
}

/* A callback that does nothing is called again after each period. */
static void test_idle_nothing_rearms(void **state) {
  (void)state;
  struct fx x;
  idle_fx(&x, IDLE_NOTHING);
  if (!run_until(&x.e, idle_cond, &x.f, NULL, NULL, 2000)) fail_msg("idle_timeout ran %d times", x.f.idle_calls);
  assert_int_equal(x.f.lost, 0);
  fx_finish(&x);
}

static void idle_ends_case(enum idle_do what) {
  struct fx x;
  idle_fx(&x, what);
  fx_wait_lost(&x, &x.f);
  assert_int_equal(x.f.idle_calls, 1);
  assert_int_equal(x.f.lost_err, 0);
  run_for(&x.e, 80, NULL, NULL);
  assert_int_equal(x.f.idle_calls, 1);
  fx_finish(&x);
}

/* close inside → connection_lost(0), no second call. */
static void test_idle_close_inside(void **state) {
  (void)state;
  idle_ends_case(IDLE_CLOSE);
}

static void test_idle_abort_inside(void **state) {
  (void)state;
  idle_ends_case(IDLE_ABORT);
}

/* set_idle_timeout(0) inside: no more calls, the stream stays open. */
static void test_idle_off_inside(void **state) {
  (void)state;
  struct fx x;
  idle_fx(&x, IDLE_OFF);
  run_for(&x.e, 150, NULL, NULL);
  assert_int_equal(x.f.idle_calls, 1);
  assert_int_equal(x.f.lost, 0);
  fx_finish(&x);
}

/* Reads keep resetting the timer with a callback too. */
static void send_dot(void *a) {
  struct fx *x = a;
  uint8_t frame[3];
  frame_put(frame, (uint8_t)x->f.frames, 1);
  fx_send(x, frame, sizeof frame);
  tu_sleep_ms(5);
}

static void test_idle_reset_by_reads(void **state) {
  (void)state;
  struct fx x;
  idle_fx(&x, IDLE_NOTHING);
  /* a period far above the bytes' spacing, even under valgrind */
  assert_int_equal(LIB(async_stream_set_idle_timeout(x.s, 150)), 0);
  run_for(&x.e, 300, send_dot, &x);
  assert_int_equal(x.f.idle_calls, 0);
  assert_true(x.f.frames > 5);
  fx_finish(&x);
}

/* No callback: today's abort with ASYNC_ETIMEDOUT. */
static void test_idle_null_aborts(void **state) {
  (void)state;
  async_stream_protocol p = framed_protocol(0);
  struct fx x;
  fx_init(&x, &p);
  assert_int_equal(LIB(async_stream_set_idle_timeout(x.s, 30)), 0);
  fx_wait_lost(&x, &x.f);
  assert_int_equal(x.f.lost_err, ASYNC_ETIMEDOUT);
  fx_finish(&x);
}

/* set_protocol from a protocol with the callback to one without (inside
 * the callback): the next idle period aborts with ASYNC_ETIMEDOUT. */
static void test_idle_swap_to_without(void **state) {
  (void)state;
  async_stream_protocol plain = framed_protocol(0);
  g_idle_swap = &plain;
  struct fx x;
  idle_fx(&x, IDLE_SWAP);
  fx_wait_lost(&x, &x.f);
  assert_int_equal(x.f.idle_calls, 1);
  assert_int_equal(x.f.lost_err, ASYNC_ETIMEDOUT);
  assert_int_equal(x.f.released, 2); /* the old protocol's, then the new one's */
  x.f.released = 1;
  fx_finish(&x);
}

/* ... and from one without to one with, before the timer fires: the
 * callback runs instead of the abort. */
static void test_idle_swap_to_with(void **state) {
  (void)state;
  async_stream_protocol p = framed_protocol(0);
  async_stream_protocol with = framed_protocol(0);
  with.idle_timeout = on_idle;
  g_idle_do = IDLE_NOTHING;
  struct fx x;
  fx_init(&x, &p);
  assert_int_equal(LIB(async_stream_set_idle_timeout(x.s, 30)), 0);
  assert_int_equal(LIB(async_stream_set_protocol(x.s, &with, &x.f)), 0);
  assert_int_equal(x.f.released, 1); /* the old userdata's release (the same one here) */
  x.f.released = 0;
  if (!run_until(&x.e, idle_cond, &x.f, NULL, NULL, 2000)) fail_msg("idle_timeout ran %d times", x.f.idle_calls);
  assert_int_equal(x.f.lost, 0);
  fx_finish(&x);
}

/* A closed stream whose flush stalls (the peer reads nothing) is aborted
 * with ASYNC_ETIMEDOUT by its idle timeout; the callback is not asked. */
static void test_idle_closing_stalled_aborts(void **state) {
  (void)state;
  struct fx x;
  idle_fx(&x, IDLE_NOTHING);
  int small = 4096;
  assert_int_equal(setsockopt(async_stream_fd(x.s), SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
  static uint8_t big[1 << 20];
  assert_int_equal(LIB(async_stream_write(x.s, big, sizeof big)), 0);
  size_t queued = 0;
  assert_int_equal(LIB(async_stream_write_buffer_size(&queued, x.s)), 0);
  assert_true(queued > 0);
  assert_int_equal(LIB(async_stream_close(x.s)), 0);
  fx_wait_lost(&x, &x.f);
  assert_int_equal(x.f.lost_err, ASYNC_ETIMEDOUT);
  assert_int_equal(x.f.idle_calls, 0);
  fx_finish(&x);
}

/* ------------------------------------------------------------------ */
/* Through a server and a reconnector                                  */

static int tcp_client(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  return fd;
}

struct accepted {
  struct framed f[3];
  async_stream_protocol p[3];
  int n;
};

/* The same callbacks for every connection, the flag on the second only. */
static int flag_factory(const async_stream_protocol **p, void **ud, async_server *server, void *userdata) {
  (void)server;
  struct accepted *a = userdata;
  if (a->n >= 3) return ASYNC_EINVAL;
  a->p[a->n] = framed_protocol(a->n == 1 ? ASYNC_STREAM_DELIVER_EACH : 0);
  *p = &a->p[a->n];
  *ud = &a->f[a->n];
  a->n++;
  return 0;
}

static int three_lost(void *arg) {
  struct accepted *a = arg;
  return a->f[0].lost && a->f[1].lost && a->f[2].lost;
}

static int three_got(void *arg) {
  struct accepted *a = arg;
  return a->f[0].frames && a->f[1].frames == 3 && a->f[2].frames;
}

static int int_set(void *arg) { return *(int *)arg != 0; }

static void close_server(struct env *e, async_server *server) {
  int closed = 0;
  assert_int_equal(async_handle_close(async_server_handle(server), tu_count_close_cb), 0);
  assert_int_equal(async_handle_set_userdata(async_server_handle(server), &closed), 0);
  assert_true(run_until(e, int_set, &closed, NULL, NULL, 2000));
}

/* A server's streams share one record of callbacks when their factory's
 * match: a protocol differing only in flags must not share it. */
static void test_server_streams_keep_their_flags(void **state) {
  (void)state;
  struct env e;
  env_init(&e);
  struct accepted a;
  memset(&a, 0, sizeof a);
  async_server *server = NULL;
  assert_int_equal(async_tcp_listen(&server, e.loop, "127.0.0.1", 0, 0, 0, flag_factory, &a), 0);
  uint8_t buf[64];
  size_t n = frames_put(buf, 3);
  int fds[3];
  for (int i = 0; i < 3; i++) {
    fds[i] = tcp_client((uint16_t)async_server_port(server));
    assert_int_equal(write(fds[i], buf, n), (ssize_t)n);
  }
  if (!run_until(&e, three_got, &a, NULL, NULL, 2000)) fail_msg("frames %d %d %d", a.f[0].frames, a.f[1].frames, a.f[2].frames);
  run_for(&e, 30, NULL, NULL);
  /* accepted in connect order; only the second has the flag */
  assert_int_equal(a.f[0].frames, 1);
  assert_int_equal(a.f[1].frames, 3);
  assert_int_equal(a.f[2].frames, 1);
  for (int i = 0; i < 3; i++) close(fds[i]);
  assert_true(run_until(&e, three_lost, &a, NULL, NULL, 2000));
  close_server(&e, server);
  env_finish(&e);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(a.f[i].bad_context + a.f[i].bad_order + a.f[i].after_end, 0);
    assert_int_equal(a.f[i].released, 1);
  }
}

/* The server side of the reconnector test: three frames in one write. */
static void send_frames_made(async_stream *s, void *ud) {
  (void)ud;
  uint8_t buf[64];
  size_t n = frames_put(buf, 3);
  (void)LIB(async_stream_write(s, buf, n));
}

static size_t sink_data(async_stream *s, const uint8_t *d, size_t n, void *ud) {
  (void)s;
  (void)d;
  (void)ud;
  return n;
}

static void sink_lost(async_stream *s, int err, void *ud) {
  (void)s;
  (void)err;
  (*(int *)ud)++;
}

static int sender_factory(const async_stream_protocol **p, void **ud, async_server *server, void *userdata) {
  (void)server;
  static async_stream_protocol sender = ASYNC_STREAM_PROTOCOL_INIT;
  sender.connection_made = send_frames_made;
  sender.data_received = sink_data;
  sender.connection_lost = sink_lost;
  *p = &sender;
  *ud = userdata;
  return 0;
}

static void idle_made(async_stream *s, void *ud) {
  (void)ud;
  (void)LIB(async_stream_set_idle_timeout(s, 30));
}

static int frames_and_idle(void *arg) {
  struct framed *f = arg;
  return f->frames == 3 && f->idle_calls >= 2;
}

static int released_cond(void *arg) { return ((struct framed *)arg)->released > 0; }

/* A reconnector passes the flag and idle_timeout on to its streams. */
static void test_reconnector_forwards_flags_and_idle(void **state) {
  (void)state;
  struct env e;
  env_init(&e);
  int server_lost = 0;
  async_server *server = NULL;
  assert_int_equal(async_tcp_listen(&server, e.loop, "127.0.0.1", 0, 0, 0, sender_factory, &server_lost), 0);
  async_stream_protocol p = framed_protocol(ASYNC_STREAM_DELIVER_EACH);
  p.connection_made = idle_made;
  p.idle_timeout = on_idle;
  g_idle_do = IDLE_NOTHING;
  struct framed f;
  memset(&f, 0, sizeof f);
  async_reconnect_options o = ASYNC_RECONNECT_OPTIONS_INIT;
  async_reconnector *rc = NULL;
  assert_int_equal(
      async_reconnector_start(&rc, e.loop, "127.0.0.1", (uint16_t)async_server_port(server), &o, &p, &f), 0);
  if (!run_until(&e, frames_and_idle, &f, NULL, NULL, 2000))
    fail_msg("frames %d, idle calls %d", f.frames, f.idle_calls);
  assert_int_equal(f.calls, 3);
  assert_int_equal(f.lost, 0);
  assert_int_equal(async_reconnector_stop(rc), 0);
  assert_true(run_until(&e, released_cond, &f, NULL, NULL, 2000));
  assert_true(run_until(&e, lost_cond, &f, NULL, NULL, 2000));
  close_server(&e, server);
  env_finish(&e);
  assert_int_equal(f.bad_context + f.bad_order, 0);
  assert_int_equal(f.released, 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_each_frames_in_one_write_and_split),
      cmocka_unit_test(test_each_stops_at_partial),
      cmocka_unit_test(test_without_flag_one_call_per_read),
      cmocka_unit_test(test_each_one_byte_per_call),
      cmocka_unit_test(test_each_pause_inside_then_resume),
      cmocka_unit_test(test_each_resume_then_pause_again),
      cmocka_unit_test(test_each_pause_resume_inside),
      cmocka_unit_test(test_each_close_inside_stops),
      cmocka_unit_test(test_each_abort_inside_stops),
      cmocka_unit_test(test_each_swap_to_each_goes_on),
      cmocka_unit_test(test_each_swap_to_plain_keeps_rest),
      cmocka_unit_test(test_each_eof_tail_frames),
      cmocka_unit_test(test_plain_eof_tail_once),
      cmocka_unit_test(test_each_pause_inside_eof_delivery),
      cmocka_unit_test(test_each_paused_eof_then_swap_to_plain),
      cmocka_unit_test(test_each_close_inside_eof_delivery),
      cmocka_unit_test(test_protocol_sizes_and_flags),
      cmocka_unit_test(test_idle_never_before_made),
      cmocka_unit_test(test_idle_keepalive_every_period),
      cmocka_unit_test(test_idle_nothing_rearms),
      cmocka_unit_test(test_idle_close_inside),
      cmocka_unit_test(test_idle_abort_inside),
      cmocka_unit_test(test_idle_off_inside),
      cmocka_unit_test(test_idle_reset_by_reads),
      cmocka_unit_test(test_idle_null_aborts),
      cmocka_unit_test(test_idle_swap_to_without),
      cmocka_unit_test(test_idle_swap_to_with),
      cmocka_unit_test(test_idle_closing_stalled_aborts),
      cmocka_unit_test(test_server_streams_keep_their_flags),
      cmocka_unit_test(test_reconnector_forwards_flags_and_idle),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
