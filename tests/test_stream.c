/*
 * async_stream: the stream transport contract of async/stream.h (DESIGN.md
 * §7; asyncio-semantics.md §3-§4).
 *
 * Streams adopt socketpairs, pipes and real TCP loopback connections made
 * by hand here. A recording protocol (struct rec) logs every callback in
 * order, with the loop iteration, whether it ran inside a library call or
 * outside async_loop_run (both violations except for pause_writing and an
 * old protocol's release), and the bytes it consumed; its consume policy
 * (all, none, N, line, keep N, per-delivery script) and eof_received
 * return are configurable, and an optional hook acts from inside any
 * callback (close, abort, write, set_protocol, ...). Callbacks never assert
 * (a cmocka failure would longjmp through the library): they record, the
 * test checks afterwards.
 *
 * Every run is bounded: a 5 ms repeating guard timer keeps ASYNC_RUN_ONCE
 * from blocking longer, and run_until() gives up after a time cap.
 * SIGPIPE is SIG_DFL throughout; the EPIPE cases run in forked children so
 * a stray SIGPIPE is reported as such instead of killing the suite.
 */
#include "test_util.h"
#include "loop_env.h"

#include <async/stream.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>

#define KIB ((size_t)1024)
#define MIB ((size_t)1024 * 1024)

/* ------------------------------------------------------------------ */
/* Byte pattern for large transfers: byte at offset o is g_pat[o % P]   */

#define PAT_P 65521u
#define PAT_EXT (1024u * 1024u)
static uint8_t g_pat[PAT_P + PAT_EXT];

static void pat_init(void) {
  for (size_t i = 0; i < sizeof g_pat; i++) {
    size_t k = i % PAT_P;
    g_pat[i] = (uint8_t)(k * 131u + (k >> 7) + 1u);
  }
}

/* PAT_EXT valid bytes of the pattern from stream offset off. */
static const uint8_t *pat_at(uint64_t off) { return g_pat + off % PAT_P; }

static void pat_fill(uint8_t *buf, uint64_t off, size_t len) {
  while (len > 0) {
    size_t n = len < PAT_EXT ? len : PAT_EXT;
    memcpy(buf, pat_at(off), n);
    buf += n;
    off += n;
    len -= n;
  }
}

static int pat_ok(uint64_t off, const uint8_t *d, size_t len) {
  while (len > 0) {
    size_t n = len < PAT_EXT ? len : PAT_EXT;
    if (memcmp(d, pat_at(off), n) != 0) {
      return 0;
    }
    d += n;
    off += n;
    len -= n;
  }
  return 1;
}

/* ------------------------------------------------------------------ */
/* The recording protocol                                              */

enum ev { EV_NONE, EV_MADE, EV_DATA, EV_EOF, EV_LOST, EV_PAUSE, EV_RESUME, EV_DRAINED, EV_RELEASE, EV_COUNT };
static const char *const ev_name[EV_COUNT] = {"?",     "made",   "data",    "eof",    "lost",
                                              "pause", "resume", "drained", "release"};

enum consume { C_ALL, C_NONE, C_N, C_KEEP, C_LINE, C_SCRIPT };

#define MAXEV 256
#define MAXDLV 64
#define DLVCAP 128

struct rec;
typedef void (*rec_hook_fn)(struct rec *r, async_stream *s, int ev);

struct rec {
  /* events */
  int ev[MAXEV];
  uint64_t iter[MAXEV];
  uint64_t t_ns[MAXEV];
  size_t wbuf[MAXEV]; /* write buffer size at pause/resume/drained */
  int depth[MAXEV];   /* g_depth at the event */
  int nev;
  int count[EV_COUNT];
  int last_ev, prev_ev; /* the last two events, even past MAXEV */
  /* configuration */
  int consume;
  size_t n;
  size_t script[16];
  int nscript;
  int eof_ret;
  int store;  /* append consumed bytes to got (default 1) */
  int verify; /* check consumed bytes against the pattern */
  int no_made; /* installed by set_protocol: no connection_made */
  int swapped; /* replaced by set_protocol: release without lost */
  int closed_at; /* set when the test closed/aborted: no data after */
  rec_hook_fn hook;
  void *arg;
  /* identity */
  async_stream *stream;
  async_loop *loop;
  /* data */
  uint8_t *got;
  size_t got_len, got_cap;
  int pat_bad;
  size_t dlv_len[MAXDLV];
  uint8_t dlv[MAXDLV][DLVCAP];
  size_t last_len;
  uint8_t last[DLVCAP];
  size_t max_dlv;
  size_t presented;
  const uint8_t *cur; /* current delivery, for hooks */
  size_t cur_len;
  int has_override;
  size_t ret_override;
  /* results */
  int lost_err;
  int fd_in_lost;
  int fd_open_in_lost;
  int bad;
  char badmsg[256];
  int hook_rc[16];
  int nhook_rc;
};

static void rec_init(struct rec *r) {
  memset(r, 0, sizeof *r);
  r->store = 1;
  r->fd_in_lost = -2;
}

static void rec_free(struct rec *r) {
  free(r->got);
  r->got = NULL;
}

static void rec_bad(struct rec *r, const char *fmt, const char *arg) {
  if (!r->bad) {
    snprintf(r->badmsg, sizeof r->badmsg, fmt, arg);
  }
  r->bad++;
}

static void hook_rc(struct rec *r, int rc) {
  if (r->nhook_rc < 16) {
    r->hook_rc[r->nhook_rc++] = rc;
  }
}

static void rec_event(struct rec *r, async_stream *s, int ev) {
  /* order invariants, checked on every event */
  if (r->count[EV_RELEASE] > 0) {
    rec_bad(r, "%s after release", ev_name[ev]);
  } else if (r->count[EV_LOST] > 0 && ev != EV_RELEASE) {
    rec_bad(r, "%s after connection_lost", ev_name[ev]);
  }
  if (ev == EV_MADE && (r->nev > 0 || r->no_made)) {
    rec_bad(r, "%s not first (or twice)", ev_name[ev]);
  }
  if (r->nev == 0 && !r->no_made && ev != EV_MADE) {
    rec_bad(r, "%s before connection_made", ev_name[ev]);
  }
  if (ev == EV_DATA && r->count[EV_EOF] > 0) {
    rec_bad(r, "%s after eof_received", ev_name[ev]);
  }
  if (ev == EV_DATA && r->closed_at) {
    rec_bad(r, "%s after close/abort", ev_name[ev]);
  }
  if ((ev == EV_EOF || ev == EV_LOST) && r->count[ev] > 0) {
    rec_bad(r, "%s twice", ev_name[ev]);
  }
  if (ev != EV_RELEASE && r->stream && s != r->stream) {
    rec_bad(r, "%s: wrong stream pointer", ev_name[ev]);
  }
  int may_be_inside = ev == EV_PAUSE || ev == EV_RELEASE;
  if (!may_be_inside && g_depth > 0) {
    rec_bad(r, "%s ran inside a library call", ev_name[ev]);
  }
  if (!may_be_inside && g_in_run == 0) {
    rec_bad(r, "%s ran outside async_loop_run", ev_name[ev]);
  }
  if (r->nev < MAXEV) {
    int i = r->nev;
    r->ev[i] = ev;
    r->iter[i] = r->loop ? tu_iter_cb(r->loop) : 0;
    r->t_ns[i] = tu_now_ns();
    r->depth[i] = g_depth;
    r->wbuf[i] = (size_t)-1;
    if (ev == EV_PAUSE || ev == EV_RESUME || ev == EV_DRAINED) {
      size_t b = (size_t)-1;
      if (async_stream_write_buffer_size(&b, s) == 0) {
        r->wbuf[i] = b;
      }
    }
  }
  r->nev++;
  r->count[ev]++;
  r->prev_ev = r->last_ev;
  r->last_ev = ev;
}

/* Index of the k-th (0-based) event ev, or -1. */
static int rec_find(const struct rec *r, int ev, int k) {
  int n = r->nev < MAXEV ? r->nev : MAXEV;
  for (int i = 0; i < n; i++) {
    if (r->ev[i] == ev && k-- == 0) {
      return i;
    }
  }
  return -1;
}

static void rec_take(struct rec *r, const uint8_t *d, size_t c) {
  if (c == 0) {
    return;
  }
  if (r->verify && !r->pat_bad && !pat_ok(r->got_len, d, c)) {
    r->pat_bad = 1;
  }
  if (r->store) {
    if (r->got_len + c > r->got_cap) {
      size_t cap = r->got_cap ? r->got_cap : 256;
      while (cap < r->got_len + c) {
        cap *= 2;
      }
      uint8_t *g = realloc(r->got, cap);
      if (!g) {
        rec_bad(r, "%s", "out of memory");
        return;
      }
      r->got = g;
      r->got_cap = cap;
    }
    memcpy(r->got + r->got_len, d, c);
  }
  r->got_len += c;
}

static void rec_made(async_stream *s, void *ud) {
  struct rec *r = ud;
  rec_event(r, s, EV_MADE);
  if (r->hook) {
    r->hook(r, s, EV_MADE);
  }
}

static size_t rec_data(async_stream *s, const uint8_t *d, size_t len, void *ud) {
  struct rec *r = ud;
  rec_event(r, s, EV_DATA);
  if (len == 0) {
    rec_bad(r, "%s", "zero-length delivery");
  }
  if (!d) {
    rec_bad(r, "%s", "NULL data");
    return 0;
  }
  int idx = r->count[EV_DATA] - 1;
  size_t keep = len < DLVCAP ? len : DLVCAP;
  if (idx < MAXDLV) {
    r->dlv_len[idx] = len;
    memcpy(r->dlv[idx], d, keep);
  }
  r->last_len = len;
  memcpy(r->last, d, keep);
  if (len > r->max_dlv) {
    r->max_dlv = len;
  }
  r->presented += len;
  size_t c = len;
  switch (r->consume) {
    case C_NONE: c = 0; break;
    case C_N: c = len < r->n ? len : r->n; break;
    case C_KEEP: c = len > r->n ? len - r->n : 0; break;
    case C_LINE: {
      const uint8_t *nl = memrchr(d, '\n', len);
      c = nl ? (size_t)(nl - d) + 1 : 0;
      break;
    }
    case C_SCRIPT:
      if (idx < r->nscript) {
        c = r->script[idx] < len ? r->script[idx] : len;
      }
      break;
    default: break;
  }
  r->cur = d;
  r->cur_len = len;
  r->has_override = 0;
  if (r->hook) {
    r->hook(r, s, EV_DATA);
  }
  if (r->has_override) {
    c = r->ret_override;
  }
  rec_take(r, d, c);
  r->cur = NULL;
  r->cur_len = 0;
  return c;
}

static int rec_eof(async_stream *s, void *ud) {
  struct rec *r = ud;
  rec_event(r, s, EV_EOF);
  if (r->hook) {
    r->hook(r, s, EV_EOF);
  }
  return r->eof_ret;
}

static void rec_lost(async_stream *s, int err, void *ud) {
  struct rec *r = ud;
  rec_event(r, s, EV_LOST);
  r->lost_err = err;
  int fd = async_stream_fd(s);
  r->fd_in_lost = fd;
  r->fd_open_in_lost = fd >= 0 && fcntl(fd, F_GETFD) != -1;
  if (r->hook) {
    r->hook(r, s, EV_LOST);
  }
}

static void rec_pause(async_stream *s, void *ud) {
  struct rec *r = ud;
  rec_event(r, s, EV_PAUSE);
  if (r->hook) {
    r->hook(r, s, EV_PAUSE);
  }
}

static void rec_resume(async_stream *s, void *ud) {
  struct rec *r = ud;
  rec_event(r, s, EV_RESUME);
  if (r->hook) {
    r->hook(r, s, EV_RESUME);
  }
}

static void rec_drained(async_stream *s, void *ud) {
  struct rec *r = ud;
  rec_event(r, s, EV_DRAINED);
  if (r->hook) {
    r->hook(r, s, EV_DRAINED);
  }
}

static void rec_release(void *ud) {
  struct rec *r = ud;
  if (r->count[EV_RELEASE] > 0) {
    rec_bad(r, "%s", "release called twice");
  }
  if (!r->swapped && r->count[EV_LOST] == 0) {
    rec_bad(r, "%s", "release before connection_lost");
  }
  rec_event(r, NULL, EV_RELEASE);
}

static async_stream_protocol rec_proto(void) {
  async_stream_protocol p = ASYNC_STREAM_PROTOCOL_INIT;
  p.connection_made = rec_made;
  p.data_received = rec_data;
  p.eof_received = rec_eof;
  p.connection_lost = rec_lost;
  p.pause_writing = rec_pause;
  p.resume_writing = rec_resume;
  p.write_drained = rec_drained;
  p.release = rec_release;
  return p;
}

static async_stream *adopt_rec(struct env *e, int fd, struct rec *r) {
  async_stream_protocol p = rec_proto();
  async_stream *s = NULL;
  r->loop = e->loop;
  int rc = LIB(async_stream_adopt(&s, e->loop, fd, &p, r));
  if (rc != 0) {
    fail_msg("async_stream_adopt(fd %d): %s", fd, async_err_name(rc));
  }
  assert_non_null(s);
  r->stream = s;
  return s;
}

static void rec_mark_closed(struct rec *r) { r->closed_at = 1; }

static void rec_dump(const struct rec *r) {
  char line[2048];
  size_t off = 0;
  int n = r->nev < MAXEV ? r->nev : MAXEV;
  off += (size_t)snprintf(line + off, sizeof line - off, "events(%d):", r->nev);
  for (int i = 0; i < n && off < sizeof line - 32; i++) {
    off += (size_t)snprintf(line + off, sizeof line - off, " %s", ev_name[r->ev[i]]);
  }
  print_message("%s; lost_err %s; got %zu bytes; bad: %s\n", line, async_err_name(r->lost_err), r->got_len,
                r->bad ? r->badmsg : "-");
}

/* The invariants every stream obeys (checked per event by rec_event);
 * NULL if fine, else what broke. */
static const char *rec_violation(const struct rec *r, char *why, size_t cap) {
  if (r->bad) {
    snprintf(why, cap, "%s", r->badmsg);
    return why;
  }
  if (r->count[EV_EOF] && r->count[EV_LOST] && r->lost_err != 0) {
    snprintf(why, cap, "eof_received, then connection_lost(%s)", async_err_name(r->lost_err));
    return why;
  }
  if (r->pat_bad) {
    snprintf(why, cap, "received bytes differ from what was sent");
    return why;
  }
  return NULL;
}

static void rec_check(const struct rec *r) {
  char why[256];
  if (rec_violation(r, why, sizeof why)) {
    rec_dump(r);
    fail_msg("%s", why);
  }
}

/* The stream ended: lost(err) once, then release once, both last. */
static void rec_assert_end(const struct rec *r, int err) {
  rec_check(r);
  if (r->count[EV_LOST] != 1 || r->count[EV_RELEASE] != 1 || r->lost_err != err) {
    rec_dump(r);
    fail_msg("want connection_lost(%s) once then release once; got lost x%d (%s), release x%d", async_err_name(err),
             r->count[EV_LOST], async_err_name(r->lost_err), r->count[EV_RELEASE]);
  }
  assert_int_equal(r->last_ev, EV_RELEASE);
  assert_int_equal(r->prev_ev, EV_LOST);
}

/* Events (in order) must be exactly the list given (EV_NONE-terminated). */
static void rec_assert_seq(const struct rec *r, const int *want) {
  int k = 0;
  while (want[k] != EV_NONE) {
    k++;
  }
  int ok = r->nev == k;
  for (int i = 0; ok && i < k; i++) {
    ok = r->ev[i] == want[i];
  }
  if (!ok) {
    rec_dump(r);
    char line[512];
    size_t off = 0;
    for (int i = 0; i < k && off < sizeof line - 16; i++) {
      off += (size_t)snprintf(line + off, sizeof line - off, " %s", ev_name[want[i]]);
    }
    fail_msg("want events:%s", line);
  }
}

#define SEQ(...) ((const int[]){__VA_ARGS__, EV_NONE})

static int c_made(void *a) { return ((struct rec *)a)->count[EV_MADE] > 0; }
static int c_data(void *a) { return ((struct rec *)a)->count[EV_DATA] > 0; }
static int c_eof(void *a) { return ((struct rec *)a)->count[EV_EOF] > 0; }
static int c_released(void *a) { return ((struct rec *)a)->count[EV_RELEASE] > 0; }
static int c_drained(void *a) { return ((struct rec *)a)->count[EV_DRAINED] > 0; }

/* got_len >= the size_t that follows the rec pointer in a struct want. */
struct want {
  struct rec *r;
  size_t len;
  int ndata;
};
static int c_got(void *a) {
  struct want *w = a;
  return w->r->got_len >= w->len;
}
static int c_ndata(void *a) {
  struct want *w = a;
  return w->r->count[EV_DATA] >= w->ndata;
}

/* ------------------------------------------------------------------ */
/* The test's end of a connection                                      */

struct peer {
  int fd;
  uint8_t *buf;
  size_t len, cap;
  size_t chunk; /* max bytes read per step; 0: all available */
  size_t want;  /* c_peer stops at this many bytes (0: at EOF) */
  int eof;
  int err;
};

static void set_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  assert_true(fl >= 0);
  assert_int_equal(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
}

static void peer_init(struct peer *p, int fd) {
  memset(p, 0, sizeof *p);
  p->fd = fd;
  set_nonblock(fd);
}

static void peer_free(struct peer *p) {
  free(p->buf);
  p->buf = NULL;
}

/* Reads what is available (at most chunk bytes); returns bytes read. */
static size_t peer_read(struct peer *p) {
  size_t total = 0;
  while (!p->eof && !p->err) {
    size_t room = p->chunk ? p->chunk - total : 256 * KIB;
    if (p->chunk && total >= p->chunk) {
      break;
    }
    if (room > 256 * KIB) {
      room = 256 * KIB;
    }
    if (p->len + room > p->cap) {
      size_t cap = p->cap ? p->cap : 64 * KIB;
      while (cap < p->len + room) {
        cap *= 2;
      }
      uint8_t *b = realloc(p->buf, cap);
      if (!b) {
        p->err = ENOMEM;
        break;
      }
      p->buf = b;
      p->cap = cap;
    }
    ssize_t n = read(p->fd, p->buf + p->len, room);
    if (n > 0) {
      p->len += (size_t)n;
      total += (size_t)n;
    } else if (n == 0) {
      p->eof = 1;
    } else if (errno == EINTR) {
      continue;
    } else {
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        p->err = errno;
      }
      break;
    }
  }
  return total;
}

static void peer_step(void *a) { (void)peer_read(a); }

static int c_peer(void *a) {
  struct peer *p = a;
  return p->eof || p->err || (p->want && p->len >= p->want);
}

static void send_all(int fd, const void *data, size_t len) {
  const uint8_t *d = data;
  while (len > 0) {
    ssize_t n = send(fd, d, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      fail_msg("send: %s", strerror(errno));
    }
    d += n;
    len -= (size_t)n;
  }
}

static void send_str(int fd, const char *s) { send_all(fd, s, strlen(s)); }

static void make_socketpair(int sv[2]) {
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

static void make_pipe(int p[2]) { assert_int_equal(pipe2(p, O_CLOEXEC), 0); }

/* A listening TCP socket on 127.0.0.1:<ephemeral>; its address in *sin. */
static int tcp_listener(struct sockaddr_in *sin) {
  int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(l >= 0);
  int one = 1;
  assert_int_equal(setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), 0);
  memset(sin, 0, sizeof *sin);
  sin->sin_family = AF_INET;
  sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sin->sin_port = 0;
  assert_int_equal(bind(l, (struct sockaddr *)sin, sizeof *sin), 0);
  assert_int_equal(listen(l, 8), 0);
  socklen_t sl = sizeof *sin;
  assert_int_equal(getsockname(l, (struct sockaddr *)sin, &sl), 0);
  return l;
}

/* A connected TCP loopback pair: *client connected, *server accepted. */
static void tcp_pair(int *client, int *server) {
  struct sockaddr_in sin;
  int l = tcp_listener(&sin);
  int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(c >= 0);
  assert_int_equal(connect(c, (struct sockaddr *)&sin, sizeof sin), 0);
  int s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
  assert_true(s >= 0);
  close(l);
  *client = c;
  *server = s;
}

/* Shrinks fd's send buffer, then fills the kernel until a 1-byte send
 * fails with EAGAIN (fd must not be read from meanwhile). Bytes are 'F'. */
static size_t fill_kernel(int fd) {
  int small = 4096;
  (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  set_nonblock(fd);
  static uint8_t f[64 * 1024];
  memset(f, 'F', sizeof f);
  size_t total = 0;
  size_t sizes[] = {sizeof f, 4096, 1};
  for (int k = 0; k < 3; k++) {
    for (;;) {
      ssize_t n = send(fd, f, sizes[k], MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        total += (size_t)n;
        continue;
      }
      assert_true(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
      break;
    }
  }
  assert_true(total > 0);
  return total;
}

static size_t wbuf(async_stream *s) {
  size_t b = (size_t)-1;
  assert_int_equal(async_stream_write_buffer_size(&b, s), 0);
  return b;
}

static int fd_is_open(int fd) { return fcntl(fd, F_GETFD) != -1; }

/* Closes the stream (if still open) and runs until release. */
static void close_and_wait(struct env *e, struct rec *r, async_stream *s) {
  if (r->count[EV_LOST] == 0) {
    rec_mark_closed(r);
    assert_int_equal(LIB(async_stream_close(s)), 0);
  }
  if (!run_until(e, c_released, r, NULL, NULL, 3000)) {
    rec_dump(r);
    fail_msg("no connection_lost/release within 3 s of close");
  }
}

/* ------------------------------------------------------------------ */
/* Fixture: a loop, one connection (the stream's end and the test's     */
/* end), a recorder for the stream and a reader for the test's end      */

enum fx_kind { FX_PAIR, FX_PAIR_PLAIN, FX_PIPE_READ, FX_PIPE_WRITE, FX_TCP, FX_FILE };
enum act { ACT_NONE, ACT_CLOSE, ACT_ABORT };
struct fx {
  struct env e;
  int fd;         /* the end the stream adopts */
  int peer;       /* the test's end; -1 once the test closed it */
  struct rec r;   /* configure before fx_adopt / fx_made */
  struct peer p;  /* reader on peer, after fx_peer() */
  async_stream *s;
  size_t pre;     /* bytes fx_made_full left in the kernel for the peer */
};

/* A new connection of the kind (socketpair, pipe either way, TCP
 * loopback, or an empty unlinked regular file with no peer) with a fresh
 * recorder: the per-stream part of the fixture. */
static void fx_open(struct fx *f, int kind) {
  int v[2];
  if (kind == FX_TCP) {
    tcp_pair(&f->fd, &f->peer);
  } else if (kind == FX_FILE) {
    char path[] = "/tmp/libasync-stream-XXXXXX";
    f->fd = mkstemp(path);
    assert_true(f->fd >= 0);
    assert_int_equal(unlink(path), 0);
    f->peer = -1;
  } else if (kind == FX_PAIR || kind == FX_PAIR_PLAIN) {
    if (kind == FX_PAIR) {
      make_socketpair(v);
    } else { /* blocking, no CLOEXEC: for checking what adopt sets */
      assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, v), 0);
    }
    f->fd = v[0];
    f->peer = v[1];
  } else {
    make_pipe(v);
    f->fd = kind == FX_PIPE_READ ? v[0] : v[1];
    f->peer = kind == FX_PIPE_READ ? v[1] : v[0];
  }
  rec_init(&f->r);
  memset(&f->p, 0, sizeof f->p);
  f->p.fd = -1;
  f->s = NULL;
  f->pre = 0;
}

/* Setup: the guarded loop plus a connection of the kind. */
static void fx_init(struct fx *f, int kind) {
  env_init(&f->e);
  fx_open(f, kind);
}

/* Closes the test's end now (the stream sees EOF, a reset, EPIPE...). */
static void fx_close_peer(struct fx *f) {
  if (f->peer >= 0) {
    close(f->peer);
    f->peer = -1;
  }
}

/* Frees the per-stream part (its stream must have ended). */
static void fx_drop(struct fx *f) {
  fx_close_peer(f);
  peer_free(&f->p);
  rec_free(&f->r);
}

/* For tests with phases: the next connection, in the same loop. */
static void fx_renew(struct fx *f, int kind) {
  fx_drop(f);
  fx_open(f, kind);
}

/* Teardown: the per-stream part, then the loop (which must drain). */
static void fx_finish(struct fx *f) {
  fx_drop(f);
  env_finish(&f->e);
}

/* Adopts the stream's end with the recorder; connection_made still due. */
static async_stream *fx_adopt(struct fx *f) {
  f->s = adopt_rec(&f->e, f->fd, &f->r);
  return f->s;
}

/* Adopts and runs until connection_made. */
static async_stream *fx_made(struct fx *f) {
  fx_adopt(f);
  if (!run_until(&f->e, c_made, &f->r, NULL, NULL, 2000)) {
    rec_dump(&f->r);
    fail_msg("connection_made never ran");
  }
  return f->s;
}

/* Fills the kernel's send buffer first (so later writes stay buffered;
 * the peer reads those f->pre bytes first), then fx_made. */
static async_stream *fx_made_full(struct fx *f) {
  f->pre = fill_kernel(f->fd);
  return fx_made(f);
}

/* Runs until cond(&f->r); 1 if it held within max_ms. */
static int fx_until(struct fx *f, cond_fn cond, uint64_t max_ms) {
  return run_until(&f->e, cond, &f->r, NULL, NULL, max_ms);
}

/* Runs until the recorder consumed at least len bytes. */
static int fx_until_got(struct fx *f, size_t len) {
  struct want w = {&f->r, len, 0};
  return run_until(&f->e, c_got, &w, NULL, NULL, 2000);
}

/* Runs until data_received ran n times. */
static int fx_until_ndata(struct fx *f, int n) {
  struct want w = {&f->r, 0, n};
  return run_until(&f->e, c_ndata, &w, NULL, NULL, 2000);
}

/* Starts the non-blocking reader on the test's end. */
static struct peer *fx_peer(struct fx *f) {
  peer_init(&f->p, f->peer);
  return &f->p;
}

/* Runs, reading the test's end, until c_peer (EOF, error or p.want). */
static int fx_read_peer(struct fx *f, uint64_t max_ms) {
  return run_until(&f->e, c_peer, &f->p, peer_step, &f->p, max_ms);
}

/* The test closes (ACT_CLOSE) or aborts (ACT_ABORT) the stream. */
static int fx_stop(struct fx *f, int act) {
  rec_mark_closed(&f->r);
  return act == ACT_ABORT ? LIB(async_stream_abort(f->s)) : LIB(async_stream_close(f->s));
}

/* Runs until release; then the events (unless seq is NULL) and the ending
 * lost(err) + release must be as given. */
static void fx_wait_end(struct fx *f, const int *seq, int err) {
  if (!fx_until(f, c_released, 2000)) {
    rec_dump(&f->r);
    fail_msg("no connection_lost/release within 2 s");
  }
  if (seq) {
    rec_assert_seq(&f->r, seq);
  }
  rec_assert_end(&f->r, err);
}

/* The usual last step: close the stream (if still open), expect the
 * events seq (unless NULL) ending in lost(0) + release, tear down. */
static void fx_close_and_end(struct fx *f, const int *seq) {
  close_and_wait(&f->e, &f->r, f->s);
  if (seq) {
    rec_assert_seq(&f->r, seq);
  }
  rec_assert_end(&f->r, 0);
  fx_finish(f);
}

/* Flow control went through one cycle: pause, then resume at <= low
 * bytes buffered, then write_drained at 0; each once, in that order. */
static void rec_assert_flow_cycle(const struct rec *r, size_t low) {
  rec_check(r);
  assert_int_equal(r->count[EV_PAUSE], 1);
  assert_int_equal(r->count[EV_RESUME], 1);
  assert_int_equal(r->count[EV_DRAINED], 1);
  int ip = rec_find(r, EV_PAUSE, 0), ir = rec_find(r, EV_RESUME, 0), id = rec_find(r, EV_DRAINED, 0);
  assert_true(ip < ir && ir < id);
  assert_true(r->wbuf[ir] <= low);
  assert_int_equal(r->wbuf[id], 0);
}

/* Delivery i of data_received presented exactly the string want. */
static void rec_assert_dlv(const struct rec *r, int i, const char *want) {
  assert_int_equal(r->dlv_len[i], strlen(want));
  assert_memory_equal(r->dlv[i], want, strlen(want));
}

/* ================================================================== */
/* Order                                                                */

/* connection_made: not inside adopt, from the loop, before any data; data
 * the peer wrote before adopt comes after it. */
static void test_made_after_adopt_then_early_data(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, FX_PAIR);
  send_str(f.peer, "early bytes");
  async_stream *s = fx_adopt(&f);
  assert_int_equal(f.r.nev, 0); /* nothing inside adopt */
  assert_int_equal(async_stream_fd(s), f.fd);
  assert_ptr_equal(async_stream_loop(s), f.e.loop);
  assert_true(fx_until(&f, c_data, 2000));
  rec_check(&f.r);
  assert_int_equal(f.r.ev[0], EV_MADE);
  assert_int_equal(f.r.ev[1], EV_DATA);
  assert_int_equal(f.r.got_len, strlen("early bytes"));
  assert_memory_equal(f.r.got, "early bytes", f.r.got_len);
  fx_close_and_end(&f, SEQ(EV_MADE, EV_DATA, EV_LOST, EV_RELEASE));
}

struct adopt_ctx {
  int fd;
  struct rec *r;
  async_stream *s;
  int rc;
  uint64_t iter;
  int nev_after;
};

static void adopt_soon_cb(async_loop *loop, void *ud) {
  struct adopt_ctx *c = ud;
  async_stream_protocol p = rec_proto();
  c->iter = tu_iter_cb(loop);
  c->r->loop = loop;
  c->rc = LIB(async_stream_adopt(&c->s, loop, c->fd, &p, c->r));
  c->r->stream = c->s;
  c->nev_after = c->r->nev;
}

/* Adopted inside a loop callback: connection_made runs on a later
 * iteration, not in the current one. */
static void test_made_on_later_iteration(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, FX_PAIR);
  send_str(f.peer, "x");
  struct adopt_ctx c = {.fd = f.fd, .r = &f.r};
  assert_int_equal(async_loop_call_soon(f.e.loop, adopt_soon_cb, &c), 0);
  for (int i = 0; i < 50 && !c_data(&f.r); i++) {
    assert_true(run_once(&f.e, ASYNC_RUN_NOWAIT) >= 0);
  }
  assert_int_equal(c.rc, 0);
  assert_int_equal(c.nev_after, 0);
  assert_true(c_data(&f.r));
  rec_check(&f.r);
  int im = rec_find(&f.r, EV_MADE, 0), id = rec_find(&f.r, EV_DATA, 0);
  assert_int_equal(im, 0);
  if (f.r.iter[im] <= c.iter) {
    fail_msg("connection_made ran in iteration %llu, the adopt's iteration was %llu", (unsigned long long)f.r.iter[im],
             (unsigned long long)c.iter);
  }
  assert_true(f.r.iter[id] >= f.r.iter[im]);
  f.s = c.s;
  fx_close_and_end(&f, NULL);
}

struct io_adopt {
  struct adopt_ctx c;
  int calls;
};

static void io_adopt_cb(async_watcher *w, uint32_t revents, void *ud) {
  (void)revents;
  struct io_adopt *a = ud;
  if (a->calls++ == 0) {
    adopt_soon_cb(async_handle_loop(async_watcher_handle(w)), &a->c);
  }
  async_watcher_stop(w);
}

/* Adopted inside an I/O callback (as a server does after accept):
 * connection_made runs after that callback returned, never inside adopt. */
static void test_made_after_io_callback(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, FX_PAIR);
  int trig[2];
  make_socketpair(trig);
  send_str(trig[1], "go");
  struct io_adopt a = {.c = {.fd = f.fd, .r = &f.r}};
  async_watcher *w = tu_watcher_new(f.e.loop, trig[0], &a);
  assert_int_equal(async_watcher_start(w, ASYNC_READABLE, io_adopt_cb), 0);
  for (int i = 0; i < 50 && !c_made(&f.r); i++) {
    assert_true(run_once(&f.e, ASYNC_RUN_NOWAIT) >= 0);
  }
  assert_int_equal(a.calls, 1);
  assert_int_equal(a.c.rc, 0);
  assert_int_equal(a.c.nev_after, 0);
  assert_true(c_made(&f.r));
  int im = rec_find(&f.r, EV_MADE, 0);
  uint64_t made_iter = f.r.iter[im];
  tu_close(async_watcher_handle(w));
  f.s = a.c.s;
  fx_close_and_end(&f, NULL);
  tu_close_pair(trig);
  /* Work queued by an I/O callback runs in the same iteration's ready
   * pass (loop.h), after the callback returned: never inside adopt. */
  assert_true(made_iter >= a.c.iter);
}

/* Peer EOF: made, data, eof, lost(0), release, each once, in that order;
 * nothing afterwards; the fd is open during connection_lost and closed
 * after. */
static void test_lifecycle_eof_lost_release(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, FX_PAIR);
  fx_made(&f);
  send_str(f.peer, "hello");
  assert_int_equal(shutdown(f.peer, SHUT_WR), 0);
  fx_wait_end(&f, SEQ(EV_MADE, EV_DATA, EV_EOF, EV_LOST, EV_RELEASE), 0);
  assert_memory_equal(f.r.got, "hello", 5);
  assert_int_equal(f.r.fd_in_lost, f.fd);
  assert_int_equal(f.r.fd_open_in_lost, 1);
  assert_false(fd_is_open(f.fd)); /* closed after connection_lost */
  /* the peer sees the close */
  struct peer *p = fx_peer(&f);
  assert_true(fx_read_peer(&f, 1000));
  assert_int_equal(p->eof, 1);
  int n = f.r.nev;
  run_nowait(&f.e, 5);
  assert_int_equal(f.r.nev, n);
  fx_finish(&f);
}

/* Shared by the close/abort twins below: act (ACT_CLOSE or ACT_ABORT)
 * right after adopt, with data waiting. */
static void stop_before_made_case(int act) {
  struct fx f;
  fx_init(&f, FX_PAIR);
  send_str(f.peer, "pending");
  fx_adopt(&f);
  assert_int_equal(fx_stop(&f, act), 0);
  assert_int_equal(f.r.nev, 0); /* nothing inside close/abort */
  fx_wait_end(&f, SEQ(EV_MADE, EV_LOST, EV_RELEASE), 0);
  fx_finish(&f);
}

/* Abort right after adopt: connection_made still comes first, then
 * connection_lost(0); no data even though some was waiting. */
static void test_abort_before_made(void **state) {
  (void)state;
  stop_before_made_case(ACT_ABORT);
}

/* Close right after adopt: made, then lost(0); no data_received. */
static void test_close_before_made(void **state) {
  (void)state;
  stop_before_made_case(ACT_CLOSE);
}

/* A pipe's read end: data, then EOF when the write end closes. */
static void test_pipe_read_end(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, FX_PIPE_READ);
  fx_made(&f);
  assert_int_equal(write(f.peer, "through a pipe", 14), 14);
  assert_true(fx_until_got(&f, 14));
  fx_close_peer(&f);
  fx_wait_end(&f, SEQ(EV_MADE, EV_DATA, EV_EOF, EV_LOST, EV_RELEASE), 0);
  assert_memory_equal(f.r.got, "through a pipe", 14);
  assert_false(fd_is_open(f.fd));
  fx_finish(&f);
}

/* A regular file, which epoll refuses (EPERM): libev reports it ready
 * at every poll instead, and the stream reads the file to its end. */
static void test_regular_file_read_to_end(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, FX_FILE);
  assert_int_equal(write(f.fd, "from a file", 11), 11);
  assert_int_equal(lseek(f.fd, 0, SEEK_SET), 0);
  fx_made(&f);
  fx_wait_end(&f, SEQ(EV_MADE, EV_DATA, EV_EOF, EV_LOST, EV_RELEASE), 0);
  assert_memory_equal(f.r.got, "from a file", 11);
  assert_false(fd_is_open(f.fd));
  fx_finish(&f); /* the loop drains: nothing is left watched */
}

/* ================================================================== */
/* Consumed-bytes reads                                                 */

/* Consume all: the bytes arrive once each, in order, over many sends. */
static void test_consume_all(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, FX_PAIR);
  fx_made(&f);
  char expect[1000];
  size_t el = 0;
  for (int i = 0; i < 20; i++) {
    char msg[40];
    int n = snprintf(msg, sizeof msg, "message %d;", i);
    send_str(f.peer, msg);
    memcpy(expect + el, msg, (size_t)n);
    el += (size_t)n;
    if (i % 3 == 0) {
      run_nowait(&f.e, 1);
    }
  }
  assert_true(fx_until_got(&f, el));
  assert_int_equal(f.r.got_len, el);
  assert_int_equal(f.r.presented, el); /* nothing presented twice */
  assert_memory_equal(f.r.got, expect, el);
  fx_close_and_end(&f, NULL);
}

/* Consume 0: the bytes come back in front of the next ones, and not
 * before new data arrives (no busy re-delivery). */
static void test_consume_none_then_more(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, FX_PAIR);
  f.r.consume = C_SCRIPT;
  f.r.script[0] = 0;
  f.r.script[1] = 0;
  f.r.script[2] = SIZE_MAX;
  f.r.nscript = 3;
  fx_made(&f);
  send_str(f.peer, "abc");
  assert_true(fx_until(&f, c_data, 2000));
  run_nowait(&f.e, 5);
  run_for(&f.e, 30, NULL, NULL);
  assert_int_equal(f.r.count[EV_DATA], 1); /* not re-presented without new data */
  send_str(f.peer, "def");
  assert_true(fx_until_ndata(&f, 2));
  send_str(f.peer, "gh");
  assert_true(fx_until_ndata(&f, 3));
  rec_check(&f.r);
  rec_assert_dlv(&f.r, 0, "abc");
  rec_assert_dlv(&f.r, 1, "abcdef");
  rec_assert_dlv(&f.r, 2, "abcdefgh");
  assert_int_equal(f.r.got_len, 8);
  send_str(f.peer, "ij");
  assert_true(fx_until_ndata(&f, 4));
  rec_assert_dlv(&f.r, 3, "ij"); /* all consumed: only the new bytes */
  fx_close_and_end(&f, NULL);
}

/* Line protocol: consumes up to the last '\n'; the partial line is
 * completed by the next data; at EOF the tail comes once more, then
 * eof_received, then lost(0). */
static void test_consume_lines_tail_at_eof(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, FX_PAIR);
  f.r.consume = C_LINE;
  fx_made(&f);
  send_str(f.peer, "line1\nli");
  assert_true(fx_until(&f, c_data, 2000));
  send_str(f.peer, "ne2\nrest");
  assert_true(fx_until_ndata(&f, 2));
  run_for(&f.e, 20, NULL, NULL);
  assert_int_equal(f.r.count[EV_DATA], 2);
  assert_int_equal(shutdown(f.peer, SHUT_WR), 0);
  fx_wait_end(&f, SEQ(EV_MADE, EV_DATA, EV_DATA, EV_DATA, EV_EOF, EV_LOST, EV_RELEASE), 0);
  rec_assert_dlv(&f.r, 0, "line1\nli");
  rec_assert_dlv(&f.r, 1, "line2\nrest");
  rec_assert_dlv(&f.r, 2, "rest");
  assert_int_equal(f.r.got_len, 12);
  assert_memory_equal(f.r.got, "line1\nline2\n", 12);
  fx_finish(&f);
}

/* EOF arriving with the last data: the tail still comes exactly once more
 * (what it leaves unconsumed is discarded), then eof. */
static void test_tail_delivered_once_at_eof(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, FX_PAIR);
  f.r.consume = C_N;
  f.r.n = 3;
  fx_made(&f);
  send_str(f.peer, "0123456789");
  assert_int_equal(shutdown(f.peer, SHUT_WR), 0);
  fx_wait_end(&f, SEQ(EV_MADE, EV_DATA, EV_DATA, EV_EOF, EV_LOST, EV_RELEASE), 0);
  assert_int_equal(f.r.dlv_len[0], 10);
  rec_assert_dlv(&f.r, 1, "3456789");
  assert_int_equal(f.r.got_len, 6);
  fx_finish(&f);
}

/* EOF with nothing retained: no extra delivery. */
static void test_no_tail_no_extra_delivery(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, FX_PAIR);
  fx_made(&f);
  send_str(f.peer, "whole");
  assert_int_equal(shutdown(f.peer, SHUT_WR), 0);
  fx_wait_end(&f, SEQ(EV_MADE, EV_DATA, EV_EOF, EV_LOST, EV_RELEASE), 0);
  fx_finish(&f);
}

/* 1 MiB in 10,000-byte sends, each delivery keeping its last 7 bytes:
 * the retained tails survive the shared read buffer; at EOF the final
 * 7-byte tail comes once and is discarded. */
static void test_keep_tail_large(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, FX_PAIR);
  f.r.consume = C_KEEP;
  f.r.n = 7;
  f.r.verify = 1;
  f.r.store = 0;
  fx_made(&f);
  const size_t total = MIB;
  size_t sent = 0;
  set_nonblock(f.peer);
  uint64_t end = tu_now_ms() + 10000;
  while (sent < total && tu_now_ms() < end) {
    size_t n = total - sent < 10000 ? total - sent : 10000;
    ssize_t k = send(f.peer, pat_at(sent), n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (k > 0) {
      sent += (size_t)k;
    }
    assert_true(run_once(&f.e, ASYNC_RUN_NOWAIT) >= 0);
  }
  assert_int_equal(sent, total);
  assert_int_equal(shutdown(f.peer, SHUT_WR), 0);
  assert_true(fx_until(&f, c_released, 5000));
  rec_assert_end(&f.r, 0);
  assert_int_equal(f.r.count[EV_EOF], 1);
  assert_int_equal(f.r.got_len, total - 7);
  assert_int_equal(f.r.last_len, 7);
  assert_memory_equal(f.r.last, pat_at(total - 7), 7);
  fx_finish(&f);
}

/* Two streams in one loop, both keeping tails: tails are per stream even
 * though reads share one buffer. */
static void test_tails_are_per_stream(void **state) {
  (void)state;
  struct env e;
  env_init(&e);
  int a[2], b[2];
  struct rec ra, rb;
  rec_init(&ra);
  rec_init(&rb);
  ra.consume = rb.consume = C_SCRIPT;
  ra.script[0] = rb.script[0] = 2;
  ra.nscript = rb.nscript = 1;
  make_socketpair(a);
  make_socketpair(b);
  async_stream *sa = adopt_rec(&e, a[0], &ra);
  async_stream *sb = adopt_rec(&e, b[0], &rb);
  send_str(a[1], "AAAA");
  send_str(b[1], "BBBB");
  for (int i = 0; i < 400 && !(c_data(&ra) && c_data(&rb)); i++) {
    assert_true(run_once(&e, ASYNC_RUN_ONCE) >= 0);
  }
  assert_true(c_data(&ra) && c_data(&rb));
  send_str(a[1], "aa");
  send_str(b[1], "bb");
  struct want wa = {&ra, 0, 2}, wb = {&rb, 0, 2};
  assert_true(run_until(&e, c_ndata, &wa, NULL, NULL, 2000));
  assert_true(run_until(&e, c_ndata, &wb, NULL, NULL, 2000));
  assert_int_equal(ra.dlv_len[1], 4);
  assert_memory_equal(ra.dlv[1], "AAaa", 4);
  assert_int_equal(rb.dlv_len[1], 4);
  assert_memory_equal(rb.dlv[1], "BBbb", 4);
  close_and_wait(&e, &ra, sa);
  close_and_wait(&e, &rb, sb);
  rec_assert_end(&ra, 0);
  rec_assert_end(&rb, 0);
  close(a[1]);
  close(b[1]);
  rec_free(&ra);
  rec_free(&rb);
  env_finish(&e);
}

/* Read limit 16, nothing consumed, the peer sends 100 bytes and EOF:
 * connection_lost(ASYNC_ENOBUFS), no eof_received. */
static void test_read_limit_enobufs(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, FX_PAIR);
  f.r.consume = C_NONE;
  async_stream *s = fx_adopt(&f);
  assert_int_equal(LIB(async_stream_set_read_limit(s, 16)), 0);
  uint8_t data[100];
  memset(data, 'L', sizeof data);
  send_all(f.peer, data, sizeof data);
  assert_int_equal(shutdown(f.peer, SHUT_WR), 0);
  fx_wait_end(&f, NULL, ASYNC_ENOBUFS);
  assert_int_equal(f.r.count[EV_EOF], 0);
  assert_true(f.r.count[EV_DATA] >= 1);
  fx_finish(&f);
}

/* Read limit 16: 15 unconsumed bytes are fine; the 16th reaches the
 * limit with nothing consumed: ASYNC_ENOBUFS. */
static void test_read_limit_exact(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, FX_PAIR);
  f.r.consume = C_NONE;
  async_stream *s = fx_made(&f);
  assert_int_equal(LIB(async_stream_set_read_limit(s, 16)), 0);
  send_str(f.peer, "123456789012345");
  assert_true(fx_until(&f, c_data, 2000));
  run_for(&f.e, 30, NULL, NULL);
  assert_int_equal(f.r.count[EV_LOST], 0);
  send_str(f.peer, "6");
  fx_wait_end(&f, NULL, ASYNC_ENOBUFS);
  assert_int_equal(f.r.count[EV_EOF], 0);
  fx_finish(&f);
}

/* Read limit 16, one byte consumed per delivery: the retained tail never
 * exceeds the limit (so no delivery does), the stream is not ended with
 * ENOBUFS (something is consumed every time), and the consumed bytes are
 * the stream's prefix; at EOF: tail once more, eof, lost(0). */
static void test_read_limit_bounds_deliveries(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, FX_PAIR);
  f.r.consume = C_N;
  f.r.n = 1;
  async_stream *s = fx_adopt(&f);
  assert_int_equal(LIB(async_stream_set_read_limit(s, 16)), 0);
  send_all(f.peer, pat_at(0), 100);
  assert_int_equal(shutdown(f.peer, SHUT_WR), 0);
  assert_true(fx_until(&f, c_released, 3000));
  rec_assert_end(&f.r, 0);
  assert_int_equal(f.r.count[EV_EOF], 1);
  if (f.r.max_dlv > 16) {
    fail_msg("a delivery of %zu bytes with read limit 16", f.r.max_dlv);
  }
  assert_true(f.r.got_len >= 1 && f.r.got_len <= 100);
  assert_memory_equal(f.r.got, pat_at(0), f.r.got_len);
  fx_finish(&f);
}

/* ================================================================== */
/* EOF                                                                  */

/* eof_received returning 0 closes: lost(0). With eof_received NULL, the
 * same. */
static void test_eof_return_zero_closes(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, FX_PAIR);
  f.r.eof_ret = 0;
  fx_made(&f);
  fx_close_peer(&f);
  fx_wait_end(&f, SEQ(EV_MADE, EV_EOF, EV_LOST, EV_RELEASE), 0);

  /* eof_received NULL */
  fx_renew(&f, FX_PAIR);
  async_stream_protocol p = rec_proto();
  p.eof_received = NULL;
  f.r.loop = f.e.loop;
  assert_int_equal(LIB(async_stream_adopt(&f.s, f.e.loop, f.fd, &p, &f.r)), 0);
  f.r.stream = f.s;
  send_str(f.peer, "z");
  fx_close_peer(&f);
  fx_wait_end(&f, SEQ(EV_MADE, EV_DATA, EV_LOST, EV_RELEASE), 0);
  fx_finish(&f);
}

/* Half-close over TCP: eof_received returns 1; the stream still writes (the
 * peer reads the reply), nothing more is received; close -> lost(0). */
static void test_eof_keep_open_half_close_tcp(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, FX_TCP);
  f.r.eof_ret = 1;
  async_stream *s = fx_adopt(&f);
  send_str(f.peer, "request");
  assert_int_equal(shutdown(f.peer, SHUT_WR), 0);
  assert_true(fx_until(&f, c_eof, 2000));
  run_for(&f.e, 30, NULL, NULL);
  assert_int_equal(f.r.count[EV_LOST], 0);
  assert_memory_equal(f.r.got, "request", 7);
  assert_int_equal(LIB(async_stream_write(s, "reply", 5)), 0);
  struct peer *p = fx_peer(&f);
  p->want = 5;
  assert_true(fx_read_peer(&f, 2000));
  assert_int_equal(p->len, 5);
  assert_memory_equal(p->buf, "reply", 5);
  assert_int_equal(p->eof, 0);
  close_and_wait(&f.e, &f.r, s);
  rec_assert_seq(&f.r, SEQ(EV_MADE, EV_DATA, EV_EOF, EV_LOST, EV_RELEASE));
  rec_assert_end(&f.r, 0);
  p->want = 0;
  assert_true(fx_read_peer(&f, 2000));
  assert_int_equal(p->eof, 1);
  assert_int_equal(p->len, 5);
  fx_finish(&f);
}

/* ================================================================== */
/* Writes                                                               */

/* A small write goes out inside the call: the peer reads it before the
 * loop runs again. Also right after adopt, before connection_made. */
static void test_small_write_immediate(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, FX_PAIR);
  async_stream *s = fx_adopt(&f);
  struct peer *p = fx_peer(&f);
  assert_int_equal(LIB(async_stream_write(s, "early", 5)), 0);
  assert_int_equal(peer_read(p), 5);
  assert_memory_equal(p->buf, "early", 5);
  assert_true(fx_until(&f, c_made, 2000));
  assert_int_equal(LIB(async_stream_write(s, "ping", 4)), 0);
  assert_int_equal(wbuf(s), 0);
  assert_int_equal(peer_read(p), 4);
  assert_memory_equal(p->buf + 5, "ping", 4);
  assert_int_equal(f.r.count[EV_PAUSE], 0);
  assert_int_equal(f.r.count[EV_DRAINED], 0); /* never non-empty */
  fx_close_and_end(&f, NULL);
}

/* 8 MiB to a socketpair: what the kernel took is readable at once, the rest
 * is buffered (write_buffer_size says exactly how much), pause_writing ran
 * inside the write; draining slowly delivers every byte in order, then
 * resume_writing (at <= 16 KiB) and write_drained (at 0). */
static void test_large_write_buffered(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, FX_PAIR);
  async_stream *s = fx_made(&f);
  const size_t total = 8 * MIB;
  uint8_t *big = malloc(total);
  assert_non_null(big);
  pat_fill(big, 0, total);
  assert_int_equal(LIB(async_stream_write(s, big, total)), 0);
  memset(big, 0, total); /* the stream copied what it kept */
  size_t b = wbuf(s);
  assert_true(b > 0 && b < total);
  assert_int_equal(f.r.count[EV_PAUSE], 1);
  assert_true(f.r.depth[rec_find(&f.r, EV_PAUSE, 0)] > 0);
  struct peer *p = fx_peer(&f);
  size_t k = peer_read(p);
  assert_int_equal(b + k, total); /* exactly: kernel + buffer */
  assert_int_equal(wbuf(s), b);
  p->chunk = 64 * KIB;
  p->want = total;
  assert_true(fx_read_peer(&f, 20000));
  assert_int_equal(p->len, total);
  assert_true(pat_ok(0, p->buf, total));
  assert_true(fx_until(&f, c_drained, 2000));
  assert_int_equal(wbuf(s), 0);
  rec_assert_flow_cycle(&f.r, 16 * KIB);
  free(big);
  fx_close_and_end(&f, NULL);
}

/* writev: pieces in order; queued behind buffered data, still in order;
 * iovcnt 0 does nothing; 1024 one-byte pieces work; 1025, negative, NULL
 * iov or a NULL base with a length are EINVAL. */
static void test_writev_order(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, FX_PAIR);
  async_stream *s = fx_made(&f);
  struct peer *p = fx_peer(&f);
  struct iovec iov[3] = {{"one ", 4}, {"", 0}, {"two three", 9}};
  assert_int_equal(LIB(async_stream_writev(s, iov, 3)), 0);
  assert_int_equal(peer_read(p), 13);
  assert_memory_equal(p->buf, "one two three", 13);
  assert_int_equal(LIB(async_stream_writev(s, iov, 0)), 0);
  assert_int_equal(LIB(async_stream_writev(s, NULL, 0)), 0);
  assert_int_equal(LIB(async_stream_writev(s, NULL, 1)), ASYNC_EINVAL);
  assert_int_equal(LIB(async_stream_writev(s, iov, -1)), ASYNC_EINVAL);
  struct iovec nullbase = {NULL, 3};
  assert_int_equal(LIB(async_stream_writev(s, &nullbase, 1)), ASYNC_EINVAL);
  static struct iovec many[1025];
  static uint8_t bytes[1025];
  for (int i = 0; i < 1025; i++) {
    bytes[i] = (uint8_t)(i * 7);
    many[i].iov_base = &bytes[i];
    many[i].iov_len = 1;
  }
  assert_int_equal(LIB(async_stream_writev(s, many, 1025)), ASYNC_EINVAL);
  assert_int_equal(peer_read(p), 0); /* nothing of the failed calls */
  assert_int_equal(LIB(async_stream_writev(s, many, 1024)), 0);
  p->want = 13 + 1024;
  assert_true(fx_read_peer(&f, 2000));
  assert_memory_equal(p->buf + 13, bytes, 1024);

  /* behind a buffered 4 MiB write */
  size_t base = p->len;
  const size_t big = 4 * MIB;
  for (size_t q = 0; q < 4; q++) {
    assert_int_equal(LIB(async_stream_write(s, pat_at(q * big / 4), big / 4)), 0);
  }
  assert_true(wbuf(s) > 0);
  struct iovec tail[2] = {{"<v1>", 4}, {"<v2>", 4}};
  assert_int_equal(LIB(async_stream_writev(s, tail, 2)), 0);
  assert_int_equal(LIB(async_stream_write(s, "<w>", 3)), 0);
  p->want = base + big + 11;
  assert_true(fx_read_peer(&f, 10000));
  assert_int_equal(p->len, base + big + 11);
  assert_true(pat_ok(0, p->buf + base, big));
  assert_memory_equal(p->buf + base + big, "<v1><v2><w>", 11);
  fx_close_and_end(&f, NULL);
}

struct zc {
  int calls;
  int depth; /* g_depth at the (last) call */
};

static void zc_done(void *ud) {
  struct zc *z = ud;
  z->calls++;
  z->depth = g_depth;
}

static int c_zc(void *a) { return ((struct zc *)a)->calls > 0; }

/* write_zc sent at once: done exactly once, never inside the call (as
 * libuv's write callback) but from the loop on a later iteration; the
 * caller's buffer may change after done without affecting what was sent. */
static void test_write_zc_immediate(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, FX_PAIR);
  async_stream *s = fx_made(&f);
  struct peer *p = fx_peer(&f);
  static char msg[] = "zero-copy";
  struct zc z = {0};
  assert_int_equal(LIB(async_stream_write_zc(s, msg, 9, zc_done, &z)), 0);
  assert_int_equal(z.calls, 0); /* sent, but done comes later */
  assert_int_equal(peer_read(p), 9);
  assert_true(run_until(&f.e, c_zc, &z, NULL, NULL, 2000));
  assert_int_equal(z.depth, 0);
  memset(msg, '#', 9);
  run_nowait(&f.e, 3);
  assert_int_equal(z.calls, 1);
  assert_memory_equal(p->buf, "zero-copy", 9);
  /* done NULL: EINVAL, nothing sent */
  assert_int_equal(LIB(async_stream_write_zc(s, msg, 9, NULL, NULL)), ASYNC_EINVAL);
  assert_int_equal(LIB(async_stream_write_zc(s, NULL, 9, zc_done, &z)), ASYNC_EINVAL);
  assert_int_equal(peer_read(p), 0);
  assert_int_equal(z.calls, 1);
  close_and_wait(&f.e, &f.r, s);
  rec_assert_end(&f.r, 0);
  assert_int_equal(z.calls, 1);
  fx_finish(&f);
}

/* write_zc queued (kernel full): not done until sent; then done exactly
 * once; order kept between copied and zero-copy writes; the queued bytes
 * count in write_buffer_size. */
static void test_write_zc_queued(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, FX_PAIR);
  async_stream *s = fx_made_full(&f);
  static uint8_t zbuf[5000];
  memset(zbuf, 'Z', sizeof zbuf);
  struct zc z = {0};
  assert_int_equal(LIB(async_stream_write(s, "AAAA", 4)), 0);
  assert_int_equal(LIB(async_stream_write_zc(s, zbuf, sizeof zbuf, zc_done, &z)), 0);
  assert_int_equal(LIB(async_stream_write(s, "CCCC", 4)), 0);
  assert_int_equal(z.calls, 0);
  assert_int_equal(wbuf(s), 4 + sizeof zbuf + 4);
  run_nowait(&f.e, 3);
  assert_int_equal(z.calls, 0); /* the peer reads nothing: nothing sent */
  struct peer *p = fx_peer(&f);
  p->want = f.pre + 4 + sizeof zbuf + 4;
  assert_true(fx_read_peer(&f, 5000));
  assert_true(run_until(&f.e, c_zc, &z, NULL, NULL, 2000));
  assert_int_equal(p->len, f.pre + 4 + sizeof zbuf + 4);
  for (size_t i = 0; i < f.pre; i++) {
    if (p->buf[i] != 'F') {
      fail_msg("prefill byte %zu", i);
    }
  }
  assert_memory_equal(p->buf + f.pre, "AAAA", 4);
  assert_memory_equal(p->buf + f.pre + 4, zbuf, sizeof zbuf);
  assert_memory_equal(p->buf + f.pre + 4 + sizeof zbuf, "CCCC", 4);
  run_nowait(&f.e, 3);
  assert_int_equal(z.calls, 1);
  assert_int_equal(z.depth, 0); /* sent from the loop, not inside a call */
  close_and_wait(&f.e, &f.r, s);
  rec_assert_end(&f.r, 0);
  assert_int_equal(z.calls, 1);
  fx_finish(&f);
}

/* Write after close: ECLOSED, nothing sent; write_zc after close: ECLOSED,
 * done not called; write after write_eof: ESTATE (write, writev, zc);
 * write_eof idempotent. */
static void test_write_state_errors(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, FX_PAIR);
  async_stream *s = fx_made(&f);
  struct peer *p = fx_peer(&f);
  struct zc z = {0};
  assert_int_equal(LIB(async_stream_write_eof(s)), 0);
  assert_int_equal(LIB(async_stream_write_eof(s)), 0);
  assert_int_equal(LIB(async_stream_write(s, "x", 1)), ASYNC_ESTATE);
  struct iovec iov = {"x", 1};
  assert_int_equal(LIB(async_stream_writev(s, &iov, 1)), ASYNC_ESTATE);
  assert_int_equal(LIB(async_stream_write_zc(s, "x", 1, zc_done, &z)), ASYNC_ESTATE);
  assert_true(fx_read_peer(&f, 2000));
  assert_int_equal(p->eof, 1);
  assert_int_equal(p->len, 0);
  assert_int_equal(fx_stop(&f, ACT_CLOSE), 0);
  assert_int_equal(LIB(async_stream_write(s, "x", 1)), ASYNC_ECLOSED);
  assert_int_equal(LIB(async_stream_writev(s, &iov, 1)), ASYNC_ECLOSED);
  assert_int_equal(LIB(async_stream_write_zc(s, "x", 1, zc_done, &z)), ASYNC_ECLOSED);
  assert_int_equal(LIB(async_stream_write_eof(s)), ASYNC_ECLOSED);
  fx_wait_end(&f, NULL, 0);
  assert_int_equal(z.calls, 0);

  /* after abort */
  fx_renew(&f, FX_PAIR);
  s = fx_made(&f);
  assert_int_equal(fx_stop(&f, ACT_ABORT), 0);
  assert_int_equal(LIB(async_stream_write(s, "x", 1)), ASYNC_ECLOSED);
  assert_int_equal(LIB(async_stream_write_zc(s, "x", 1, zc_done, &z)), ASYNC_ECLOSED);
  fx_wait_end(&f, NULL, 0);
  assert_int_equal(z.calls, 0);
  fx_finish(&f);
}

/* write_eof with data buffered: the peer reads every byte, then EOF; the
 * stream keeps reading (the peer's reply arrives); the peer's EOF ends it. */
static void test_write_eof_after_buffered_data(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, FX_PAIR);
  async_stream *s = fx_made(&f);
  const size_t total = 2 * MIB;
  assert_int_equal(LIB(async_stream_write(s, pat_at(0), total / 2)), 0);
  assert_int_equal(LIB(async_stream_write(s, pat_at(total / 2), total / 2)), 0);
  assert_true(wbuf(s) > 0);
  assert_int_equal(LIB(async_stream_write_eof(s)), 0);
  assert_int_equal(async_stream_is_reading(s), 1);
  struct peer *p = fx_peer(&f);
  p->chunk = 128 * KIB;
  assert_true(fx_read_peer(&f, 10000));
  assert_int_equal(p->eof, 1);
  assert_int_equal(p->len, total);
  assert_true(pat_ok(0, p->buf, total));
  send_str(f.peer, "after");
  assert_true(fx_until_got(&f, 5));
  assert_memory_equal(f.r.got, "after", 5);
  fx_close_peer(&f);
  fx_wait_end(&f, NULL, 0);
  assert_int_equal(f.r.count[EV_EOF], 1);
  fx_finish(&f);
}

/* write_eof on a pipe's write end closes it: the reader sees the data,
 * then EOF. */
static void test_write_eof_pipe(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, FX_PIPE_WRITE);
  async_stream *s = fx_made(&f);
  assert_int_equal(LIB(async_stream_write(s, "piped", 5)), 0);
  assert_int_equal(LIB(async_stream_write_eof(s)), 0);
  struct peer *p = fx_peer(&f);
  assert_true(fx_read_peer(&f, 2000));
  assert_int_equal(p->eof, 1);
  assert_int_equal(p->len, 5);
  assert_memory_equal(p->buf, "piped", 5);
  fx_close_and_end(&f, NULL);
}

/* NULL data with len > 0: EINVAL; len 0: 0 and nothing happens (NULL or
 * not). */
static void test_write_null_and_empty(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, FX_PAIR);
  async_stream *s = fx_made(&f);
  struct peer *p = fx_peer(&f);
  assert_int_equal(LIB(async_stream_write(s, NULL, 1)), ASYNC_EINVAL);
  assert_int_equal(LIB(async_stream_write(s, "abc", 0)), 0);
  assert_int_equal(LIB(async_stream_write(s, NULL, 0)), 0);
  struct zc z = {0};
  assert_int_equal(LIB(async_stream_write_zc(s, NULL, 5, zc_done, &z)), ASYNC_EINVAL);
  assert_int_equal(wbuf(s), 0);
  run_nowait(&f.e, 3);
  assert_int_equal(peer_read(p), 0);
  assert_int_equal(f.r.count[EV_PAUSE] + f.r.count[EV_DRAINED], 0);
  assert_int_equal(z.calls, 0);
  fx_close_and_end(&f, NULL);
}

/* ================================================================== */
/* Flow control                                                         */

static void test_write_limits_defaults_and_einval(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, FX_PAIR);
  async_stream *s = fx_made(&f);
  size_t hi = 0, lo = 0;
  assert_int_equal(async_stream_get_write_limits(&hi, &lo, s), 0);
  assert_int_equal(hi, 64 * KIB);
  assert_int_equal(lo, 16 * KIB);
  assert_int_equal(LIB(async_stream_set_write_limits(s, 1000, 100)), 0);
  assert_int_equal(async_stream_get_write_limits(&hi, &lo, s), 0);
  assert_int_equal(hi, 1000);
  assert_int_equal(lo, 100);
  assert_int_equal(LIB(async_stream_set_write_limits(s, 100, 101)), ASYNC_EINVAL);
  assert_int_equal(async_stream_get_write_limits(&hi, &lo, s), 0);
  assert_int_equal(hi, 1000); /* unchanged by the failed call */
  assert_int_equal(lo, 100);
  assert_int_equal(LIB(async_stream_set_write_limits(s, 500, 500)), 0);
  assert_int_equal(LIB(async_stream_set_write_limits(s, 0, 0)), 0);
  assert_int_equal(async_stream_get_write_limits(&hi, &lo, s), 0);
  assert_int_equal(hi, 0);
  assert_int_equal(lo, 0);
  assert_int_equal(async_stream_get_write_limits(NULL, &lo, s), ASYNC_EINVAL);
  assert_int_equal(async_stream_get_write_limits(&hi, NULL, s), ASYNC_EINVAL);
  assert_int_equal(f.r.count[EV_PAUSE], 0); /* nothing buffered */
  fx_close_and_end(&f, NULL);
}

/* High 1000 / low 100 with the kernel full: 1000 buffered does not pause;
 * 1001 pauses inside the write; one pause only; draining: resume_writing
 * once at <= 100, then write_drained at 0. */
static void test_pause_strictly_above_high(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, FX_PAIR);
  async_stream *s = fx_made_full(&f);
  assert_int_equal(LIB(async_stream_set_write_limits(s, 1000, 100)), 0);
  uint8_t data[1002];
  pat_fill(data, 0, sizeof data);
  assert_int_equal(LIB(async_stream_write(s, data, 600)), 0);
  assert_int_equal(wbuf(s), 600);
  assert_int_equal(LIB(async_stream_write(s, data + 600, 400)), 0);
  assert_int_equal(wbuf(s), 1000);
  assert_int_equal(f.r.count[EV_PAUSE], 0); /* exactly at high: no pause */
  assert_int_equal(LIB(async_stream_write(s, data + 1000, 1)), 0);
  assert_int_equal(f.r.count[EV_PAUSE], 1); /* inside the write */
  int ip = rec_find(&f.r, EV_PAUSE, 0);
  assert_true(f.r.depth[ip] > 0);
  assert_int_equal(f.r.wbuf[ip], 1001);
  assert_int_equal(LIB(async_stream_write(s, data + 1001, 1)), 0);
  assert_int_equal(f.r.count[EV_PAUSE], 1); /* already paused */
  run_nowait(&f.e, 3);
  assert_int_equal(f.r.count[EV_RESUME], 0);
  struct peer *p = fx_peer(&f);
  p->chunk = 1024;
  p->want = f.pre + 1002;
  assert_true(fx_read_peer(&f, 5000));
  assert_true(fx_until(&f, c_drained, 2000));
  assert_int_equal(p->len, f.pre + 1002);
  assert_memory_equal(p->buf + f.pre, data, 1002);
  rec_assert_flow_cycle(&f.r, 100);
  fx_close_and_end(&f, NULL);
}

/* Limits (0, 0): pause as soon as anything is buffered, resume only when
 * empty. */
static void test_limits_zero(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, FX_PAIR);
  async_stream *s = fx_made_full(&f);
  assert_int_equal(LIB(async_stream_set_write_limits(s, 0, 0)), 0);
  assert_int_equal(f.r.count[EV_PAUSE], 0);
  assert_int_equal(LIB(async_stream_write(s, "1", 1)), 0);
  assert_int_equal(f.r.count[EV_PAUSE], 1);
  fx_peer(&f)->want = f.pre + 1;
  assert_true(fx_read_peer(&f, 5000));
  assert_true(fx_until(&f, c_drained, 2000));
  int ir = rec_find(&f.r, EV_RESUME, 0);
  assert_true(ir >= 0);
  assert_int_equal(f.r.wbuf[ir], 0);
  assert_int_equal(f.r.count[EV_RESUME], 1);
  fx_close_and_end(&f, NULL);
}

/* Lowering the high mark below what is buffered pauses inside
 * set_write_limits. */
static void test_set_limits_pauses_at_once(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, FX_PAIR);
  async_stream *s = fx_made_full(&f);
  uint8_t data[2000];
  memset(data, 'd', sizeof data);
  assert_int_equal(LIB(async_stream_write(s, data, sizeof data)), 0);
  assert_int_equal(f.r.count[EV_PAUSE], 0); /* 2000 < 64 KiB */
  assert_int_equal(LIB(async_stream_set_write_limits(s, 1000, 100)), 0);
  assert_int_equal(f.r.count[EV_PAUSE], 1);
  assert_true(f.r.depth[rec_find(&f.r, EV_PAUSE, 0)] > 0);
  fx_peer(&f)->want = f.pre + sizeof data;
  assert_true(fx_read_peer(&f, 5000));
  assert_true(fx_until(&f, c_drained, 2000));
  assert_int_equal(f.r.count[EV_RESUME], 1);
  fx_close_and_end(&f, NULL);
}

/* Writes from inside pause_writing, resume_writing and write_drained are
 * allowed and keep their order. */
static void reentrant_hook(struct rec *r, async_stream *s, int ev) {
  if (ev == EV_PAUSE && r->count[EV_PAUSE] == 1) {
    hook_rc(r, LIB(async_stream_write(s, "<P>", 3)));
  } else if (ev == EV_RESUME && r->count[EV_RESUME] == 1) {
    hook_rc(r, LIB(async_stream_write(s, "<R>", 3)));
  } else if (ev == EV_DRAINED && r->count[EV_DRAINED] == 1) {
    hook_rc(r, LIB(async_stream_write(s, "<D>", 3)));
  }
}

static void test_writes_inside_flow_callbacks(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, FX_PAIR);
  f.r.hook = reentrant_hook;
  async_stream *s = fx_made_full(&f);
  assert_int_equal(LIB(async_stream_set_write_limits(s, 1000, 100)), 0);
  uint8_t data[1001];
  pat_fill(data, 0, sizeof data);
  assert_int_equal(LIB(async_stream_write(s, data, sizeof data)), 0);
  assert_int_equal(f.r.count[EV_PAUSE], 1);
  assert_int_equal(f.r.nhook_rc, 1);
  assert_int_equal(wbuf(s), 1004);
  struct peer *p = fx_peer(&f);
  p->want = f.pre + 1001 + 9;
  assert_true(fx_read_peer(&f, 5000));
  run_for(&f.e, 20, peer_step, p);
  assert_int_equal(p->len, f.pre + 1001 + 9);
  assert_memory_equal(p->buf + f.pre, data, 1001);
  assert_memory_equal(p->buf + f.pre + 1001, "<P><R><D>", 9);
  assert_int_equal(f.r.nhook_rc, 3);
  for (int i = 0; i < f.r.nhook_rc; i++) {
    assert_int_equal(f.r.hook_rc[i], 0);
  }
  rec_check(&f.r);
  assert_int_equal(f.r.count[EV_PAUSE], 1);
  assert_int_equal(f.r.count[EV_RESUME], 1);
  assert_true(f.r.count[EV_DRAINED] >= 1);
  assert_true(rec_find(&f.r, EV_RESUME, 0) < rec_find(&f.r, EV_DRAINED, 0));
  fx_close_and_end(&f, NULL);
}

/* ---- large transfers: a pumping writer and a verifying reader ---- */

struct pump {
  async_stream *s;
  uint64_t total, sent, rx;
  size_t chunk;
  int paused;
  int pauses, resumes;
  int eof_sent;
  int rx_bad;
  int eof;
  int lost, lost_err, released;
  int err;
};

static void pump_more(struct pump *p, async_stream *s) {
  while (!p->paused && p->sent < p->total && !p->err) {
    uint64_t left = p->total - p->sent;
    size_t n = left < p->chunk ? (size_t)left : p->chunk;
    int rc = LIB(async_stream_write(s, pat_at(p->sent), n));
    if (rc != 0) {
      p->err = rc;
      return;
    }
    p->sent += n;
  }
  if (p->sent == p->total && !p->eof_sent) {
    p->eof_sent = 1;
    int rc = LIB(async_stream_write_eof(s));
    if (rc != 0) {
      p->err = rc;
    }
  }
}

static void pump_made(async_stream *s, void *ud) {
  struct pump *p = ud;
  p->s = s;
  pump_more(p, s);
}

static size_t pump_data(async_stream *s, const uint8_t *d, size_t len, void *ud) {
  (void)s;
  struct pump *p = ud;
  if (!p->rx_bad && !pat_ok(p->rx, d, len)) {
    p->rx_bad = 1;
  }
  p->rx += len;
  return len;
}

static int pump_eof(async_stream *s, void *ud) {
  (void)s;
  ((struct pump *)ud)->eof++;
  return 0;
}

static void pump_lost(async_stream *s, int err, void *ud) {
  (void)s;
  struct pump *p = ud;
  p->lost++;
  p->lost_err = err;
}

static void pump_pause(async_stream *s, void *ud) {
  (void)s;
  struct pump *p = ud;
  p->paused = 1;
  p->pauses++;
}

static void pump_resume(async_stream *s, void *ud) {
  struct pump *p = ud;
  p->paused = 0;
  p->resumes++;
  pump_more(p, s);
}

static void pump_release(void *ud) { ((struct pump *)ud)->released++; }

static async_stream_protocol pump_proto(void) {
  async_stream_protocol p = ASYNC_STREAM_PROTOCOL_INIT;
  p.connection_made = pump_made;
  p.data_received = pump_data;
  p.eof_received = pump_eof;
  p.connection_lost = pump_lost;
  p.pause_writing = pump_pause;
  p.resume_writing = pump_resume;
  p.release = pump_release;
  return p;
}

struct two {
  struct pump *a;
  struct rec *b;
};
static int c_both_done(void *a) {
  struct two *t = a;
  return t->a->released > 0 && t->b->count[EV_RELEASE] > 0;
}

/* 128 MiB one way through a socketpair, stream to stream, with flow
 * control; the reader verifies every byte; bounded time. */
static void test_large_roundtrip_socketpair(void **state) {
  (void)state;
  struct env e;
  env_init(&e);
  int sv[2];
  make_socketpair(sv);
  struct pump w;
  memset(&w, 0, sizeof w);
  w.total = 128 * MIB;
  w.chunk = 256 * KIB;
  struct rec r;
  rec_init(&r);
  r.store = 0;
  r.verify = 1;
  async_stream_protocol pp = pump_proto();
  async_stream *sw = NULL;
  assert_int_equal(async_stream_adopt(&sw, e.loop, sv[0], &pp, &w), 0);
  adopt_rec(&e, sv[1], &r);
  uint64_t t0 = tu_now_ns();
  struct two t = {&w, &r};
  if (!run_until(&e, c_both_done, &t, NULL, NULL, 25000)) {
    rec_dump(&r);
    fail_msg("not done in 25 s: sent %llu, received %zu, pauses %d, resumes %d", (unsigned long long)w.sent, r.got_len,
             w.pauses, w.resumes);
  }
  print_message("128 MiB socketpair: %.0f ms\n", tu_elapsed_ms(t0));
  assert_int_equal(w.err, 0);
  assert_int_equal(w.sent, w.total);
  rec_assert_end(&r, 0);
  assert_int_equal(r.got_len, w.total);
  assert_int_equal(r.pat_bad, 0);
  assert_int_equal(r.count[EV_EOF], 1);
  assert_true(w.pauses >= 1);
  assert_true(w.resumes >= 1);
  assert_int_equal(w.lost, 1);
  assert_int_equal(w.lost_err, 0);
  assert_int_equal(w.released, 1);
  rec_free(&r);
  env_finish(&e);
}

/* TCP echo: the server echoes with flow control (pause_reading while its
 * writes are paused); the client writes 64 MiB and verifies the echo. */
struct echo {
  int lost, lost_err, released, err;
  int paused_reading;
};

static size_t echo_data(async_stream *s, const uint8_t *d, size_t len, void *ud) {
  struct echo *x = ud;
  int rc = LIB(async_stream_write(s, d, len));
  if (rc != 0 && !x->err) {
    x->err = rc;
  }
  return len;
}

static void echo_pause(async_stream *s, void *ud) {
  struct echo *x = ud;
  x->paused_reading++;
  if (async_stream_pause_reading(s) != 0) {
    x->err = -100;
  }
}

static void echo_resume(async_stream *s, void *ud) {
  struct echo *x = ud;
  if (async_stream_resume_reading(s) != 0) {
    x->err = -101;
  }
}

static void echo_lost(async_stream *s, int err, void *ud) {
  (void)s;
  struct echo *x = ud;
  x->lost++;
  x->lost_err = err;
}

static void echo_release(void *ud) { ((struct echo *)ud)->released++; }

struct echo_done {
  struct pump *c;
  struct echo *x;
};
static int c_echo_done(void *a) {
  struct echo_done *d = a;
  return d->c->released && d->x->released;
}

static void test_large_tcp_echo(void **state) {
  (void)state;
  struct env e;
  env_init(&e);
  int cfd, sfd;
  tcp_pair(&cfd, &sfd);
  struct pump c;
  memset(&c, 0, sizeof c);
  c.total = 64 * MIB;
  c.chunk = 128 * KIB;
  struct echo x;
  memset(&x, 0, sizeof x);
  async_stream_protocol cp = pump_proto();
  async_stream_protocol sp = ASYNC_STREAM_PROTOCOL_INIT;
  sp.data_received = echo_data;
  sp.connection_lost = echo_lost;
  sp.pause_writing = echo_pause;
  sp.resume_writing = echo_resume;
  sp.release = echo_release; /* eof_received NULL: close (flushing) */
  async_stream *cs = NULL, *ss = NULL;
  assert_int_equal(async_stream_adopt(&cs, e.loop, cfd, &cp, &c), 0);
  assert_int_equal(async_stream_adopt(&ss, e.loop, sfd, &sp, &x), 0);
  uint64_t t0 = tu_now_ns();
  struct echo_done d = {&c, &x};
  if (!run_until(&e, c_echo_done, &d, NULL, NULL, 25000)) {
    fail_msg("not done in 25 s: sent %llu, echoed back %llu, server paused %d times", (unsigned long long)c.sent,
             (unsigned long long)c.rx, x.paused_reading);
  }
  print_message("64 MiB TCP echo: %.0f ms\n", tu_elapsed_ms(t0));
  assert_int_equal(c.err, 0);
  assert_int_equal(x.err, 0);
  assert_int_equal(c.sent, c.total);
  assert_int_equal(c.rx, c.total);
  assert_int_equal(c.rx_bad, 0);
  assert_int_equal(c.eof, 1);
  assert_int_equal(c.lost, 1);
  assert_int_equal(c.lost_err, 0);
  assert_int_equal(x.lost, 1);
  assert_int_equal(x.lost_err, 0);
  assert_int_equal(c.released, 1);
  assert_int_equal(x.released, 1);
  env_finish(&e);
}

/* ================================================================== */
/* Close vs abort                                                       */

/* close flushes: the peer gets everything, then EOF; lost(0) after the
 * flush; reading stops at once (the peer's later data is not delivered). */
static void test_close_flushes(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, FX_PAIR);
  async_stream *s = fx_made_full(&f);
  const size_t n = MIB;
  assert_int_equal(LIB(async_stream_write(s, pat_at(0), n)), 0);
  assert_int_equal(wbuf(s), n);
  assert_int_equal(fx_stop(&f, ACT_CLOSE), 0);
  assert_int_equal(async_stream_is_reading(s), 0);
  send_str(f.peer, "ignored");
  run_nowait(&f.e, 5);
  assert_int_equal(f.r.count[EV_LOST], 0); /* still flushing */
  assert_int_equal(f.r.count[EV_DATA], 0);
  struct peer *p = fx_peer(&f);
  p->chunk = 64 * KIB;
  assert_true(fx_read_peer(&f, 10000));
  /* "ignored" stays unread in the stream's socket, so closing it makes
   * Linux report ECONNRESET to this AF_UNIX peer after the data */
  if (!(p->eof || p->err == ECONNRESET)) {
    fail_msg("peer: eof %d, error %s", p->eof, strerror(p->err));
  }
  assert_int_equal(p->len, f.pre + n);
  assert_true(pat_ok(0, p->buf + f.pre, n));
  fx_wait_end(&f, NULL, 0);
  assert_int_equal(f.r.count[EV_DATA], 0);
  fx_finish(&f);
}

/* abort drops: lost(0) not inside abort but on a later iteration; the
 * peer gets less than everything; a queued zero-copy write is done once,
 * from the loop too. */
static void test_abort_drops(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, FX_PAIR);
  async_stream *s = fx_made_full(&f);
  const size_t n = MIB;
  assert_int_equal(LIB(async_stream_write(s, pat_at(0), n)), 0);
  static uint8_t zbuf[4096];
  struct zc z = {0};
  assert_int_equal(LIB(async_stream_write_zc(s, zbuf, sizeof zbuf, zc_done, &z)), 0);
  assert_int_equal(z.calls, 0);
  int nev = f.r.nev;
  assert_int_equal(fx_stop(&f, ACT_ABORT), 0);
  assert_int_equal(f.r.nev, nev); /* nothing inside abort */
  assert_int_equal(z.calls, 0);   /* the dropped write's done neither */
  assert_int_equal(LIB(async_stream_abort(s)), 0);
  assert_int_equal(LIB(async_stream_close(s)), 0);
  fx_wait_end(&f, NULL, 0);
  assert_int_equal(z.calls, 1);
  assert_int_equal(z.depth, 0);
  struct peer *p = fx_peer(&f);
  assert_true(fx_read_peer(&f, 2000));
  assert_true(p->eof || p->err);
  assert_true(p->len < f.pre + n + sizeof zbuf);
  fx_finish(&f);
}

/* close and abort are idempotent, in any mix: one lost(0). */
static void test_close_abort_idempotent(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, FX_PAIR);
  async_stream *s = fx_made(&f);
  assert_int_equal(fx_stop(&f, ACT_CLOSE), 0);
  assert_int_equal(LIB(async_stream_close(s)), 0);
  assert_int_equal(LIB(async_stream_abort(s)), 0);
  assert_int_equal(LIB(async_stream_abort(s)), 0);
  assert_int_equal(LIB(async_stream_close(s)), 0);
  assert_int_equal(LIB(async_stream_pause_reading(s)), 0);
  assert_int_equal(LIB(async_stream_resume_reading(s)), 0);
  assert_int_equal(async_stream_is_reading(s), 0);
  assert_true(fx_until(&f, c_released, 2000));
  run_nowait(&f.e, 3);
  rec_assert_seq(&f.r, SEQ(EV_MADE, EV_LOST, EV_RELEASE));
  rec_assert_end(&f.r, 0);
  fx_finish(&f);
}

struct act_cfg {
  int ev;
  int act;
};

static void act_hook(struct rec *r, async_stream *s, int ev) {
  struct act_cfg *a = r->arg;
  if (ev != a->ev || r->count[ev] != 1) {
    return;
  }
  rec_mark_closed(r);
  if (a->act == ACT_CLOSE) {
    hook_rc(r, LIB(async_stream_close(s)));
  } else if (a->act == ACT_ABORT) {
    hook_rc(r, LIB(async_stream_abort(s)));
  }
  if (r->count[EV_LOST] != 0) {
    rec_bad(r, "%s", "connection_lost inside close/abort");
  }
}

/* close inside connection_made: no data_received even though data was
 * waiting; lost(0). */
static void test_close_inside_made(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, FX_PAIR);
  send_str(f.peer, "never delivered");
  struct act_cfg a = {EV_MADE, ACT_CLOSE};
  f.r.hook = act_hook;
  f.r.arg = &a;
  fx_adopt(&f);
  fx_wait_end(&f, SEQ(EV_MADE, EV_LOST, EV_RELEASE), 0);
  assert_int_equal(f.r.hook_rc[0], 0);
  fx_finish(&f);
}

/* close / abort inside data_received: no more data_received (even for
 * data already waiting), lost(0) after data_received returned; for abort
 * on a later iteration (stream.h: "then connection_lost(0) on a later
 * iteration"; close only promises "never inside a call"). */
static void close_in_data_case(int act) {
  struct fx f;
  fx_init(&f, FX_PAIR);
  f.r.consume = C_N;
  f.r.n = 1; /* leaves a tail: must not be re-delivered */
  struct act_cfg a = {EV_DATA, act};
  f.r.hook = act_hook;
  f.r.arg = &a;
  async_stream *s = fx_adopt(&f);
  assert_int_equal(LIB(async_stream_set_read_limit(s, 4)), 0); /* more waits in the kernel */
  send_str(f.peer, "first second third");
  assert_true(fx_until(&f, c_data, 2000));
  (void)!send(f.peer, "more", 4, MSG_NOSIGNAL); /* may fail: the fd may be gone already */
  fx_wait_end(&f, SEQ(EV_MADE, EV_DATA, EV_LOST, EV_RELEASE), 0);
  assert_int_equal(f.r.hook_rc[0], 0);
  int id = rec_find(&f.r, EV_DATA, 0), il = rec_find(&f.r, EV_LOST, 0);
  uint64_t data_iter = f.r.iter[id], lost_iter = f.r.iter[il];
  fx_finish(&f);
  /* After data_received returned (the recorder fails any callback made
   * inside a library call), in this iteration's ready pass or later. */
  if (lost_iter < data_iter) {
    fail_msg("connection_lost ran in loop iteration %llu, before data_received's %llu", (unsigned long long)lost_iter,
             (unsigned long long)data_iter);
  }
}

static void test_close_inside_data(void **state) {
  (void)state;
  close_in_data_case(ACT_CLOSE);
}

static void test_abort_inside_data(void **state) {
  (void)state;
  close_in_data_case(ACT_ABORT);
}

/* close inside eof_received (which returns 1): one lost(0). */
static void test_close_inside_eof(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, FX_PAIR);
  f.r.eof_ret = 1;
  struct act_cfg a = {EV_EOF, ACT_CLOSE};
  f.r.hook = act_hook;
  f.r.arg = &a;
  fx_made(&f);
  assert_int_equal(shutdown(f.peer, SHUT_WR), 0);
  fx_wait_end(&f, SEQ(EV_MADE, EV_EOF, EV_LOST, EV_RELEASE), 0);
  fx_finish(&f);
}

/* close inside pause_writing (inside the write): the write still counts,
 * the buffer is flushed, the peer gets everything, then lost(0). */
static void test_close_inside_pause_writing(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, FX_PAIR);
  struct act_cfg a = {EV_PAUSE, ACT_CLOSE};
  f.r.hook = act_hook;
  f.r.arg = &a;
  async_stream *s = fx_made_full(&f);
  assert_int_equal(LIB(async_stream_set_write_limits(s, 1000, 100)), 0);
  uint8_t data[2000];
  pat_fill(data, 0, sizeof data);
  assert_int_equal(LIB(async_stream_write(s, data, sizeof data)), 0);
  assert_int_equal(f.r.count[EV_PAUSE], 1);
  assert_int_equal(f.r.hook_rc[0], 0);
  assert_int_equal(LIB(async_stream_write(s, "x", 1)), ASYNC_ECLOSED);
  struct peer *p = fx_peer(&f);
  p->chunk = 4096;
  assert_true(fx_read_peer(&f, 5000));
  assert_int_equal(p->eof, 1);
  assert_int_equal(p->len, f.pre + sizeof data);
  assert_memory_equal(p->buf + f.pre, data, sizeof data);
  fx_wait_end(&f, NULL, 0);
  fx_finish(&f);
}

/* ================================================================== */
/* Errors                                                               */

/* TCP reset by the peer (SO_LINGER {1, 0}): lost(ECONNRESET), no eof. */
static void test_peer_reset_tcp(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, FX_TCP);
  fx_made(&f);
  send_str(f.peer, "before reset");
  assert_true(fx_until_got(&f, 12));
  struct linger lg = {1, 0};
  assert_int_equal(setsockopt(f.peer, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  fx_close_peer(&f);
  fx_wait_end(&f, SEQ(EV_MADE, EV_DATA, EV_LOST, EV_RELEASE), ASYNC_ECONNRESET);
  assert_int_equal(f.r.count[EV_EOF], 0);
  fx_finish(&f);
}

static char g_self[4096]; /* this executable, for the EPIPE children */

/* SIGPIPE at SIG_DFL, blocked or not: the disposition every EPIPE check
 * (and the suite itself) runs with. */
static void sigpipe_default(int block) {
  signal(SIGPIPE, SIG_DFL);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  sigprocmask(block ? SIG_BLOCK : SIG_UNBLOCK, &set, NULL);
}

/* Runs the EPIPE scenario mode in a fresh process (fork + exec of this
 * binary with --epipe-child, so it inherits no heap or cmocka state) with
 * SIGPIPE at SIG_DFL, unblocked unless block_sigpipe; fails if it was
 * killed by a signal or one of its checks failed. */
static void run_child(int mode, int block_sigpipe, const char *what) {
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    sigpipe_default(block_sigpipe);
    char arg[16];
    snprintf(arg, sizeof arg, "%d", mode);
    execl(g_self, g_self, "--epipe-child", arg, (char *)NULL);
    _exit(99);
  }
  int st = 0;
  while (waitpid(pid, &st, 0) < 0) {
    assert_int_equal(errno, EINTR);
  }
  if (WIFSIGNALED(st)) {
    fail_msg("%s: the process was killed by signal %d%s", what, WTERMSIG(st),
             WTERMSIG(st) == SIGPIPE ? " (SIGPIPE)" : "");
  }
  if (WEXITSTATUS(st) != 0) {
    fail_msg("%s: child check %d failed (99: exec failed)", what, WEXITSTATUS(st));
  }
}

static int child_sigpipe_sanity(void) {
  int p[2];
  if (pipe(p) != 0) {
    return 2;
  }
  close(p[0]);
  (void)!write(p[1], "x", 1); /* must kill us */
  return 3;
}

/* Without the library, such a write kills the process: the checks below
 * would notice a SIGPIPE. */
static void test_sigpipe_default_kills_sanity(void **state) {
  (void)state;
  fflush(stdout);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    sigpipe_default(0);
    _exit(child_sigpipe_sanity());
  }
  int st = 0;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  assert_true(WIFSIGNALED(st));
  assert_int_equal(WTERMSIG(st), SIGPIPE);
}

/* The peer's end goes away (closed) with the stream in some state:
 * - EP_SOCKETPAIR, EP_PIPE: then a write ("x"), which fails;
 * - EP_PIPE_CLOSED_BEFORE: before adopt; a write before connection_made;
 * - EP_*_IDLE: nothing written, nothing pending;
 * - EP_*_PENDING: while a write waits in the buffer. */
enum epipe_mode {
  EP_SOCKETPAIR,
  EP_PIPE,
  EP_PIPE_CLOSED_BEFORE,
  EP_PIPE_IDLE,
  EP_PIPE_PENDING,
  EP_SOCKETPAIR_IDLE,
  EP_SOCKETPAIR_PENDING
};

/* More than a socketpair or a pipe takes: the rest stays queued. */
#define EP_PENDING_LEN (4 * MIB)

/* Child-side: a loop with a guard timer and a recorder, no cmocka
 * assertions. Returns 0 when connection_lost came after made with the code
 * the mode expects (0 with nothing pending, as asyncio; ASYNC_EPIPE when a
 * write failed or waited; ASYNC_ECONNRESET from a socket peer that closed
 * with our bytes unread) and eof_received only where the stream read an
 * end of file, a small number naming the failed check otherwise. */

static int child_epipe(int mode) {
  struct env e;
  if (async_loop_new(&e.loop) != 0) {
    return 10;
  }
  if (async_timer_new(&e.guard, e.loop, NULL) != 0 || async_timer_start(e.guard, 5, 5, tu_noop_timer_cb) != 0) {
    return 11;
  }
  int fds[2];
  int mine, other;
  int is_pair = mode == EP_SOCKETPAIR || mode == EP_SOCKETPAIR_IDLE || mode == EP_SOCKETPAIR_PENDING;
  int idle = mode == EP_PIPE_IDLE || mode == EP_SOCKETPAIR_IDLE;
  int pending = mode == EP_PIPE_PENDING || mode == EP_SOCKETPAIR_PENDING;
  if (is_pair) {
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
      return 12;
    }
    mine = fds[0];
    other = fds[1];
  } else {
    if (pipe2(fds, O_CLOEXEC) != 0) {
      return 12;
    }
    mine = fds[1];
    other = fds[0];
  }
  static struct rec r;
  rec_init(&r);
  r.loop = e.loop;
  async_stream_protocol p = rec_proto();
  async_stream *s = NULL;
  if (mode == EP_PIPE_CLOSED_BEFORE) {
    close(other);
  }
  if (LIB(async_stream_adopt(&s, e.loop, mine, &p, &r)) != 0) {
    return 13;
  }
  r.stream = s;
  int wrc = 0;
  static uint8_t big[EP_PENDING_LEN];
  if (mode == EP_PIPE_CLOSED_BEFORE) {
    wrc = LIB(async_stream_write(s, "x", 1)); /* before connection_made */
  } else {
    if (!run_until(&e, c_made, &r, NULL, NULL, 2000)) {
      return 14;
    }
    size_t queued = 0;
    if (pending && (LIB(async_stream_write(s, big, sizeof big)) != 0 ||
                    async_stream_write_buffer_size(&queued, s) != 0 || queued == 0)) {
      return 23;
    }
    close(other);
    if (!idle && !pending) {
      wrc = LIB(async_stream_write(s, "x", 1));
    }
  }
  if (wrc != 0) {
    return 15; /* "a send error is not returned" */
  }
  if (!run_until(&e, c_released, &r, NULL, NULL, 2000)) {
    return 16;
  }
  char why[256];
  if (rec_violation(&r, why, sizeof why)) {
    fprintf(stderr, "child: %s\n", why);
    return 17;
  }
  if (r.ev[0] != EV_MADE) {
    return 18;
  }
  if (r.count[EV_EOF] != (mode == EP_SOCKETPAIR_IDLE)) {
    return 19;
  }
  /* A socket peer that closes with our bytes unread resets the connection. */
  int want = idle ? 0 : mode == EP_SOCKETPAIR_PENDING ? ASYNC_ECONNRESET : ASYNC_EPIPE;
  if (r.lost_err != want) {
    fprintf(stderr, "child: connection_lost(%s), want %s\n", async_err_name(r.lost_err), async_err_name(want));
    return 20;
  }
  sigset_t pend;
  sigemptyset(&pend);
  sigpending(&pend);
  if (sigismember(&pend, SIGPIPE)) {
    return 21; /* a SIGPIPE the library caused was left pending */
  }
  async_handle_close(async_timer_handle(e.guard), NULL);
  for (int i = 0; i < 100 && async_loop_run(e.loop, ASYNC_RUN_NOWAIT) != 0; i++) {
  }
  if (async_loop_free(e.loop) != 0) {
    return 22;
  }
  rec_free(&r);
  return 0;
}


static void test_epipe_socketpair_no_sigpipe(void **state) {
  (void)state;
  run_child(EP_SOCKETPAIR, 0, "socketpair write after the peer closed");
}

static void test_epipe_pipe_no_sigpipe(void **state) {
  (void)state;
  run_child(EP_PIPE, 0, "pipe write after the read end closed");
}

static void test_epipe_pipe_read_end_closed_before_adopt(void **state) {
  (void)state;
  run_child(EP_PIPE_CLOSED_BEFORE, 0, "pipe adopted with its read end closed");
}

/* The reader goes away from an idle pipe: a clean end (connection_lost(0),
 * as asyncio's write pipe transport), not a read error on the write end. */
static void test_pipe_reader_gone_idle(void **state) {
  (void)state;
  run_child(EP_PIPE_IDLE, 0, "pipe's read end closed, nothing pending");
}

/* The reader goes away while a write waits: ASYNC_EPIPE, no SIGPIPE. */
static void test_pipe_reader_gone_pending(void **state) {
  (void)state;
  run_child(EP_PIPE_PENDING, 0, "pipe's read end closed with a write pending");
}

/* The same on a socketpair: the stream reads the end of file (eof_received,
 * then a clean end); a peer that closes with our bytes unread resets the
 * connection (ASYNC_ECONNRESET, as TCP). */
static void test_socketpair_peer_gone_idle(void **state) {
  (void)state;
  run_child(EP_SOCKETPAIR_IDLE, 0, "socketpair peer closed, nothing pending");
}

static void test_socketpair_peer_gone_pending(void **state) {
  (void)state;
  run_child(EP_SOCKETPAIR_PENDING, 0, "socketpair peer closed with a write pending");
}

/* With SIGPIPE blocked by the application, the library discards the one
 * its pipe write caused (none left pending). */
static void test_epipe_pipe_sigpipe_blocked_not_left_pending(void **state) {
  (void)state;
  run_child(EP_PIPE, 1, "pipe write with SIGPIPE blocked");
}

/* ================================================================== */
/* pause_reading / resume_reading                                       */

static void test_pause_resume_reading(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, FX_PAIR);
  async_stream *s = fx_made(&f);
  assert_int_equal(async_stream_is_reading(s), 1);
  assert_int_equal(LIB(async_stream_pause_reading(s)), 0);
  assert_int_equal(LIB(async_stream_pause_reading(s)), 0);
  assert_int_equal(async_stream_is_reading(s), 0);
  send_str(f.peer, "held");
  run_nowait(&f.e, 5);
  run_for(&f.e, 30, NULL, NULL);
  assert_int_equal(f.r.count[EV_DATA], 0);
  int avail = -1;
  assert_int_equal(ioctl(f.fd, FIONREAD, &avail), 0);
  assert_int_equal(avail, 4); /* kept in the kernel */
  assert_int_equal(LIB(async_stream_resume_reading(s)), 0);
  assert_int_equal(LIB(async_stream_resume_reading(s)), 0);
  assert_int_equal(async_stream_is_reading(s), 1);
  assert_true(fx_until_got(&f, 4));
  assert_int_equal(f.r.count[EV_DATA], 1);
  assert_memory_equal(f.r.got, "held", 4);
  fx_close_and_end(&f, NULL);
}

/* Paused before connection_made: made runs, no data until resume. */
static void test_pause_reading_before_made(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, FX_PAIR);
  send_str(f.peer, "early");
  async_stream *s = fx_adopt(&f);
  assert_int_equal(LIB(async_stream_pause_reading(s)), 0);
  assert_int_equal(async_stream_is_reading(s), 0);
  assert_true(fx_until(&f, c_made, 2000));
  run_for(&f.e, 30, NULL, NULL);
  assert_int_equal(f.r.count[EV_DATA], 0);
  assert_int_equal(LIB(async_stream_resume_reading(s)), 0);
  assert_true(fx_until_got(&f, 5));
  assert_memory_equal(f.r.got, "early", 5);
  fx_close_and_end(&f, NULL);
}

/* pause_reading inside data_received: no further delivery until resume;
 * EOF is not reported while paused either. */
static void pause_in_data_hook(struct rec *r, async_stream *s, int ev) {
  if (ev == EV_DATA && r->count[EV_DATA] == 1) {
    hook_rc(r, LIB(async_stream_pause_reading(s)));
  }
}

static void test_pause_reading_inside_data(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, FX_PAIR);
  f.r.hook = pause_in_data_hook;
  async_stream *s = fx_made(&f);
  send_str(f.peer, "one");
  assert_true(fx_until(&f, c_data, 2000));
  assert_int_equal(async_stream_is_reading(s), 0);
  send_str(f.peer, "two");
  assert_int_equal(shutdown(f.peer, SHUT_WR), 0);
  run_for(&f.e, 40, NULL, NULL);
  assert_int_equal(f.r.count[EV_DATA], 1);
  assert_int_equal(f.r.count[EV_EOF], 0);
  assert_int_equal(LIB(async_stream_resume_reading(s)), 0);
  fx_wait_end(&f, NULL, 0);
  assert_int_equal(f.r.got_len, 6);
  assert_memory_equal(f.r.got, "onetwo", 6);
  assert_int_equal(f.r.count[EV_EOF], 1);
  fx_finish(&f);
}

/* ================================================================== */
/* set_protocol                                                         */

struct swap {
  struct rec *b;
  async_stream_protocol pb;
  int rc;
  int a_released_at_once;
};

static void swap_hook(struct rec *r, async_stream *s, int ev) {
  struct swap *w = r->arg;
  if (ev != EV_DATA || r->count[EV_DATA] != 1) {
    return;
  }
  r->swapped = 1;
  w->b->stream = s;
  w->b->loop = r->loop;
  w->rc = LIB(async_stream_set_protocol(s, &w->pb, w->b));
  w->a_released_at_once = r->count[EV_RELEASE];
}

/* Switching protocols inside data_received: the old userdata is released
 * at once, exactly once; the kept tail and later data go to the new
 * protocol, and so do eof and connection_lost; no second connection_made. */
static void test_set_protocol_inside_data(void **state) {
  (void)state;
  struct fx f; /* f.r: the first protocol's recorder, b: the second's */
  fx_init(&f, FX_PAIR);
  struct rec b;
  rec_init(&b);
  b.no_made = 1;
  struct swap w = {.b = &b, .pb = rec_proto()};
  f.r.consume = C_N;
  f.r.n = 2;
  f.r.hook = swap_hook;
  f.r.arg = &w;
  fx_made(&f);
  send_str(f.peer, "abcd");
  assert_true(fx_until(&f, c_data, 2000));
  assert_int_equal(w.rc, 0);
  assert_int_equal(w.a_released_at_once, 1);
  send_str(f.peer, "ef");
  assert_true(run_until(&f.e, c_data, &b, NULL, NULL, 2000));
  rec_assert_dlv(&b, 0, "cdef");
  fx_close_peer(&f);
  assert_true(run_until(&f.e, c_released, &b, NULL, NULL, 2000));
  rec_assert_seq(&f.r, SEQ(EV_MADE, EV_DATA, EV_RELEASE));
  rec_check(&f.r);
  rec_assert_seq(&b, SEQ(EV_DATA, EV_EOF, EV_LOST, EV_RELEASE));
  rec_assert_end(&b, 0);
  run_nowait(&f.e, 3);
  assert_int_equal(f.r.count[EV_RELEASE], 1);
  rec_free(&b);
  fx_finish(&f);
}

static int release_count;
static void count_release(void *ud) {
  (void)ud;
  release_count++;
}

/* set_protocol from outside callbacks; bad protocols are EINVAL and leave
 * the current one in place; after abort: ECLOSED, the new userdata is not
 * released (it stays the caller's). */
static void test_set_protocol_errors(void **state) {
  (void)state;
  struct fx f; /* f.r: the current protocol's recorder, b: the new one's */
  fx_init(&f, FX_PAIR);
  struct rec b;
  rec_init(&b);
  async_stream *s = fx_made(&f);
  async_stream_protocol bad = rec_proto();
  assert_int_equal(LIB(async_stream_set_protocol(s, NULL, &b)), ASYNC_EINVAL);
  bad.size = 0;
  assert_int_equal(LIB(async_stream_set_protocol(s, &bad, &b)), ASYNC_EINVAL);
  bad = rec_proto();
  bad.data_received = NULL;
  assert_int_equal(LIB(async_stream_set_protocol(s, &bad, &b)), ASYNC_EINVAL);
  bad = rec_proto();
  bad.connection_lost = NULL;
  assert_int_equal(LIB(async_stream_set_protocol(s, &bad, &b)), ASYNC_EINVAL);
  assert_int_equal(f.r.count[EV_RELEASE], 0);
  assert_int_equal(b.nev, 0);
  send_str(f.peer, "still a");
  assert_true(fx_until_got(&f, 7));

  /* a good switch outside callbacks: release of a at once */
  f.r.swapped = 1;
  b.no_made = 1;
  b.loop = f.e.loop;
  b.stream = s;
  async_stream_protocol pb = rec_proto();
  assert_int_equal(LIB(async_stream_set_protocol(s, &pb, &b)), 0);
  assert_int_equal(f.r.count[EV_RELEASE], 1);
  rec_mark_closed(&b);
  assert_int_equal(LIB(async_stream_abort(s)), 0);
  async_stream_protocol pc = ASYNC_STREAM_PROTOCOL_INIT;
  pc.data_received = rec_data;
  pc.connection_lost = rec_lost;
  pc.release = count_release;
  release_count = 0;
  int dummy = 0;
  assert_int_equal(LIB(async_stream_set_protocol(s, &pc, &dummy)), ASYNC_ECLOSED);
  assert_int_equal(release_count, 0);
  assert_int_equal(b.count[EV_RELEASE], 0);
  assert_true(run_until(&f.e, c_released, &b, NULL, NULL, 2000));
  rec_assert_seq(&b, SEQ(EV_LOST, EV_RELEASE));
  rec_assert_end(&b, 0);
  assert_int_equal(release_count, 0);
  rec_free(&b);
  fx_finish(&f);
}

/* ================================================================== */
/* Queries and socket options                                           */

/* fd and loop; the fd was made non-blocking and close-on-exec. */
static void test_fd_loop_flags(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, FX_PAIR_PLAIN); /* blocking, no CLOEXEC */
  async_stream *s = fx_adopt(&f);
  assert_int_equal(async_stream_fd(s), f.fd);
  assert_ptr_equal(async_stream_loop(s), f.e.loop);
  assert_true(fcntl(f.fd, F_GETFL) & O_NONBLOCK);
  assert_true(fcntl(f.fd, F_GETFD) & FD_CLOEXEC);
  fx_close_and_end(&f, NULL);
}

static void test_sockname_peername_tcp(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, FX_TCP);
  async_stream *s = fx_adopt(&f);
  struct sockaddr_storage ss, ref;
  socklen_t rl = sizeof ref;
  memset(&ss, 0, sizeof ss);
  memset(&ref, 0, sizeof ref);
  int n = async_stream_sockname((struct sockaddr *)&ss, sizeof ss, s);
  assert_int_equal(n, (int)sizeof(struct sockaddr_in));
  assert_int_equal(getsockname(f.fd, (struct sockaddr *)&ref, &rl), 0);
  assert_int_equal(rl, (socklen_t)n);
  assert_memory_equal(&ss, &ref, (size_t)n);
  memset(&ss, 0, sizeof ss);
  memset(&ref, 0, sizeof ref);
  rl = sizeof ref;
  n = async_stream_peername((struct sockaddr *)&ss, sizeof ss, s);
  assert_int_equal(n, (int)sizeof(struct sockaddr_in));
  assert_int_equal(getsockname(f.peer, (struct sockaddr *)&ref, &rl), 0);
  assert_memory_equal(&ss, &ref, (size_t)n);
  assert_int_equal(((struct sockaddr_in *)&ss)->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
  /* capacity too small */
  assert_int_equal(async_stream_sockname((struct sockaddr *)&ss, 8, s), ASYNC_ERANGE);
  assert_int_equal(async_stream_peername((struct sockaddr *)&ss, sizeof(struct sockaddr_in) - 1, s), ASYNC_ERANGE);
  assert_int_equal(async_stream_sockname(NULL, sizeof ss, s), ASYNC_EINVAL);
  assert_int_equal(async_stream_peername(NULL, sizeof ss, s), ASYNC_EINVAL);
  fx_close_and_end(&f, NULL);
}

/* AF_UNIX socketpair: unnamed, but a socket: a positive length
 * (AF_UNIX family). A pipe is not a socket: EINVAL. */
static void test_sockname_unix_and_pipe(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, FX_PAIR);
  async_stream *s = fx_made(&f);
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  int n = async_stream_sockname((struct sockaddr *)&ss, sizeof ss, s);
  assert_true(n > 0);
  assert_int_equal(ss.ss_family, AF_UNIX);
  n = async_stream_peername((struct sockaddr *)&ss, sizeof ss, s);
  assert_true(n > 0);
  assert_int_equal(ss.ss_family, AF_UNIX);
  close_and_wait(&f.e, &f.r, s);
  rec_assert_end(&f.r, 0);

  fx_renew(&f, FX_PIPE_READ);
  s = fx_adopt(&f);
  assert_int_equal(async_stream_sockname((struct sockaddr *)&ss, sizeof ss, s), ASYNC_EINVAL);
  assert_int_equal(async_stream_peername((struct sockaddr *)&ss, sizeof ss, s), ASYNC_EINVAL);
  assert_int_equal(async_stream_set_nodelay(s, 1), ASYNC_EINVAL);
  assert_int_equal(async_stream_set_keepalive(s, 1, 10), ASYNC_EINVAL);
  fx_close_and_end(&f, NULL);
}

static int getopt_int(int fd, int level, int name) {
  int v = -1;
  socklen_t l = sizeof v;
  assert_int_equal(getsockopt(fd, level, name, &v, &l), 0);
  return v;
}

/* TCP_NODELAY on after adopt; set_nodelay toggles it; not TCP: EINVAL. */
static void test_nodelay(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, FX_TCP);
  assert_int_equal(getopt_int(f.fd, IPPROTO_TCP, TCP_NODELAY), 0);
  async_stream *s = fx_adopt(&f);
  assert_int_equal(getopt_int(f.fd, IPPROTO_TCP, TCP_NODELAY) != 0, 1);
  assert_int_equal(async_stream_set_nodelay(s, 0), 0);
  assert_int_equal(getopt_int(f.fd, IPPROTO_TCP, TCP_NODELAY), 0);
  assert_int_equal(async_stream_set_nodelay(s, 1), 0);
  assert_int_equal(getopt_int(f.fd, IPPROTO_TCP, TCP_NODELAY) != 0, 1);
  close_and_wait(&f.e, &f.r, s);
  rec_assert_end(&f.r, 0);

  fx_renew(&f, FX_PAIR);
  s = fx_made(&f);
  assert_int_equal(async_stream_set_nodelay(s, 1), ASYNC_EINVAL);
  assert_int_equal(async_stream_set_keepalive(s, 1, 0), ASYNC_EINVAL);
  fx_close_and_end(&f, NULL);
}

static void test_keepalive(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, FX_TCP);
  async_stream *s = fx_adopt(&f);
  int c = f.fd;
  int def_idle = getopt_int(c, IPPROTO_TCP, TCP_KEEPIDLE);
  assert_int_equal(async_stream_set_keepalive(s, 1, 37), 0);
  assert_int_equal(getopt_int(c, SOL_SOCKET, SO_KEEPALIVE) != 0, 1);
  assert_int_equal(getopt_int(c, IPPROTO_TCP, TCP_KEEPIDLE), 37);
  assert_int_equal(async_stream_set_keepalive(s, 0, 0), 0);
  assert_int_equal(getopt_int(c, SOL_SOCKET, SO_KEEPALIVE), 0);
  assert_int_equal(async_stream_set_keepalive(s, 1, 0), 0); /* 0 keeps the idle time */
  assert_int_equal(getopt_int(c, SOL_SOCKET, SO_KEEPALIVE) != 0, 1);
  assert_int_equal(getopt_int(c, IPPROTO_TCP, TCP_KEEPIDLE), 37);
  (void)def_idle;
  fx_close_and_end(&f, NULL);
}

/* Idle timeout 100 ms, no traffic: lost(ETIMEDOUT) no earlier than 100 ms
 * after it was set, no eof. */
static void test_idle_timeout_fires(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, FX_PAIR);
  async_stream *s = fx_made(&f);
  uint64_t t0 = tu_now_ns();
  assert_int_equal(LIB(async_stream_set_idle_timeout(s, 100)), 0);
  fx_wait_end(&f, SEQ(EV_MADE, EV_LOST, EV_RELEASE), ASYNC_ETIMEDOUT);
  double ms = (double)(f.r.t_ns[rec_find(&f.r, EV_LOST, 0)] - t0) / 1e6;
  if (ms < 100.0 || ms > 1000.0) {
    fail_msg("idle timeout after %.1f ms, want 100 ms (+ slack)", ms);
  }
  fx_finish(&f);
}

struct ticker {
  int fd;           /* peer fd to send on, or -1 */
  async_stream *s;  /* stream to write on, or NULL */
  struct peer *p;   /* peer to drain, or NULL */
  uint64_t period_ms, until_ns, next_ns, last_ns;
  int sent;
};

static void ticker_step(void *a) {
  struct ticker *t = a;
  uint64_t now = tu_now_ns();
  if (t->p) {
    (void)peer_read(t->p);
  }
  if (now < t->until_ns && now >= t->next_ns) {
    t->last_ns = tu_now_ns(); /* before the traffic: the idle timer restarts no earlier */
    if (t->fd >= 0) {
      send_str(t->fd, ".");
    } else {
      (void)LIB(async_stream_write(t->s, ".", 1));
    }
    t->sent++;
    t->next_ns = now + t->period_ms * 1000000u;
  }
}

/* Incoming traffic every 30 ms keeps a 150 ms idle timeout from firing;
 * once it stops, lost(ETIMEDOUT) >= 150 ms after the last byte. Outgoing
 * writes keep it alive as well. */
static void idle_traffic_case(int outgoing) {
  struct fx f;
  fx_init(&f, FX_PAIR);
  async_stream *s = fx_made(&f);
  struct peer *p = fx_peer(&f);
  assert_int_equal(LIB(async_stream_set_idle_timeout(s, 150)), 0);
  struct ticker t = {.fd = outgoing ? -1 : f.peer, .s = outgoing ? s : NULL, .p = outgoing ? p : NULL,
                     .period_ms = 30};
  t.until_ns = tu_now_ns() + 450 * 1000000u;
  t.next_ns = 0;
  run_for(&f.e, 450, ticker_step, &t);
  if (f.r.count[EV_LOST] != 0) {
    rec_dump(&f.r);
    fail_msg("idle timeout fired despite %s traffic every 30 ms", outgoing ? "outgoing" : "incoming");
  }
  assert_true(t.sent >= 5);
  fx_wait_end(&f, NULL, ASYNC_ETIMEDOUT);
  double ms = (double)(f.r.t_ns[rec_find(&f.r, EV_LOST, 0)] - t.last_ns) / 1e6;
  if (ms < 150.0 || ms > 1000.0) {
    fail_msg("idle timeout %.1f ms after the last traffic, want 150 ms (+ slack)", ms);
  }
  fx_finish(&f);
}

static void test_idle_timeout_reset_by_reads(void **state) {
  (void)state;
  idle_traffic_case(0);
}

static void test_idle_timeout_reset_by_writes(void **state) {
  (void)state;
  idle_traffic_case(1);
}

/* 0 turns it off; after close: ECLOSED. */
static void test_idle_timeout_off_and_closed(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, FX_PAIR);
  async_stream *s = fx_made(&f);
  assert_int_equal(LIB(async_stream_set_idle_timeout(s, 50)), 0);
  assert_int_equal(LIB(async_stream_set_idle_timeout(s, 0)), 0);
  run_for(&f.e, 200, NULL, NULL);
  assert_int_equal(f.r.count[EV_LOST], 0);
  assert_int_equal(fx_stop(&f, ACT_CLOSE), 0);
  assert_int_equal(LIB(async_stream_set_idle_timeout(s, 50)), ASYNC_ECLOSED);
  fx_wait_end(&f, NULL, 0);
  fx_finish(&f);
}

/* ================================================================== */
/* Bad input                                                            */

static int g_release_calls;
static void bad_release(void *ud) {
  (void)ud;
  g_release_calls++;
}

static size_t null_data(async_stream *s, const uint8_t *d, size_t len, void *ud) {
  (void)s;
  (void)d;
  (void)ud;
  return len;
}
static void null_lost(async_stream *s, int err, void *ud) {
  (void)s;
  (void)err;
  (void)ud;
}

static async_stream_protocol bad_proto(void) {
  async_stream_protocol p = ASYNC_STREAM_PROTOCOL_INIT;
  p.data_received = null_data;
  p.connection_lost = null_lost;
  p.release = bad_release;
  return p;
}

/* Adopt must fail with want; fd stays open, release not called, *out not
 * a stream. */
static void adopt_fails(async_loop *loop, int fd, const async_stream_protocol *p, int want, const char *what) {
  async_stream *s = NULL;
  g_release_calls = 0;
  int rc = async_stream_adopt(&s, loop, fd, p, &g_release_calls);
  if (rc != want) {
    fail_msg("adopt(%s): %s, want %s", what, async_err_name(rc), async_err_name(want));
  }
  assert_null(s);
  assert_int_equal(g_release_calls, 0);
  if (fd >= 0 && want != ASYNC_EBADF && !fd_is_open(fd)) {
    fail_msg("adopt(%s) failed but closed the fd", what);
  }
}

static void test_adopt_bad_input(void **state) {
  (void)state;
  struct fx f; /* f.fd is what every bad adopt is tried on */
  fx_init(&f, FX_PAIR);
  async_loop *loop = f.e.loop;
  async_stream_protocol p = bad_proto();
  async_stream *s = NULL;
  assert_int_equal(async_stream_adopt(NULL, loop, f.fd, &p, NULL), ASYNC_EINVAL);
  adopt_fails(NULL, f.fd, &p, ASYNC_EINVAL, "NULL loop");
  adopt_fails((async_loop *)f.e.guard, f.fd, &p, ASYNC_EINVAL, "a timer as loop");
  adopt_fails(loop, f.fd, NULL, ASYNC_EINVAL, "NULL protocol");
  async_stream_protocol q = p;
  q.size = 0;
  adopt_fails(loop, f.fd, &q, ASYNC_EINVAL, "protocol size 0");
  q.size = (uint32_t)sizeof(uint32_t);
  adopt_fails(loop, f.fd, &q, ASYNC_EINVAL, "protocol size 4");
  q = p;
  q.data_received = NULL;
  adopt_fails(loop, f.fd, &q, ASYNC_EINVAL, "data_received NULL");
  q = p;
  q.connection_lost = NULL;
  adopt_fails(loop, f.fd, &q, ASYNC_EINVAL, "connection_lost NULL");
  adopt_fails(loop, -1, &p, ASYNC_EBADF, "fd -1");
  int closed = dup(f.peer);
  assert_true(closed >= 0);
  close(closed);
  adopt_fails(loop, closed, &p, ASYNC_EBADF, "a closed fd");
  struct sockaddr_in sin;
  int l = tcp_listener(&sin);
  adopt_fails(loop, l, &p, ASYNC_EINVAL, "a listening socket");
  close(l);
  int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  assert_true(u >= 0);
  adopt_fails(loop, u, &p, ASYNC_EINVAL, "a UDP socket");
  close(u);
  int ud[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, ud), 0);
  adopt_fails(loop, ud[0], &p, ASYNC_EINVAL, "an AF_UNIX datagram socket");
  tu_close_pair(ud);
  /* none of it left a stream behind: the fd is still adoptable */
  assert_int_equal(async_stream_adopt(&s, loop, f.fd, &p, NULL), 0);
  assert_int_equal(async_stream_close(s), 0);
  for (int i = 0; i < 50; i++) {
    run_once(&f.e, ASYNC_RUN_NOWAIT);
  }
  fx_finish(&f);
}

/* Every function rejects NULL and wrong-kind pointers. */
static void check_stream_funcs(async_stream *s, const char *what) {
  struct sockaddr_storage ss;
  size_t a = 0, b = 0;
  struct iovec iov = {"x", 1};
  struct zc z = {0};
  async_stream_protocol p = bad_proto();
  int rcs[] = {
      async_stream_write(s, "x", 1),
      async_stream_writev(s, &iov, 1),
      async_stream_write_zc(s, "x", 1, zc_done, &z),
      async_stream_write_eof(s),
      async_stream_close(s),
      async_stream_abort(s),
      async_stream_pause_reading(s),
      async_stream_resume_reading(s),
      async_stream_is_reading(s),
      async_stream_set_write_limits(s, 10, 1),
      async_stream_get_write_limits(&a, &b, s),
      async_stream_write_buffer_size(&a, s),
      async_stream_set_read_limit(s, 100),
      async_stream_set_protocol(s, &p, NULL),
      async_stream_fd(s),
      async_stream_sockname((struct sockaddr *)&ss, sizeof ss, s),
      async_stream_peername((struct sockaddr *)&ss, sizeof ss, s),
      async_stream_set_nodelay(s, 1),
      async_stream_set_keepalive(s, 1, 10),
      async_stream_set_idle_timeout(s, 100),
  };
  for (size_t i = 0; i < sizeof rcs / sizeof rcs[0]; i++) {
    if (rcs[i] != ASYNC_EINVAL) {
      fail_msg("%s: function #%zu returned %s, want ASYNC_EINVAL", what, i, async_err_name(rcs[i]));
    }
  }
  assert_null(async_stream_loop(s));
  assert_int_equal(z.calls, 0);
  assert_int_equal(g_release_calls, 0);
}

static void test_null_and_wrong_kind(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, FX_PAIR);
  g_release_calls = 0;
  check_stream_funcs(NULL, "NULL stream");
  check_stream_funcs((async_stream *)f.e.loop, "a loop as stream");
  check_stream_funcs((async_stream *)f.e.guard, "a timer as stream");
  /* output pointers and values on a real stream */
  async_stream *s = fx_made(&f);
  assert_int_equal(async_stream_write_buffer_size(NULL, s), ASYNC_EINVAL);
  assert_int_equal(async_stream_set_read_limit(s, 0), ASYNC_EINVAL);
  assert_int_equal(async_stream_writev(s, NULL, 2), ASYNC_EINVAL);
  /* the loop is unharmed */
  assert_int_equal(async_loop_alive(f.e.loop), 1);
  fx_close_and_end(&f, NULL);
}

/* ================================================================== */
/* Lifetime                                                             */

/* async_loop_free is EBUSY while a stream lives (also while closing);
 * after connection_lost and release it succeeds. */
static void test_loop_free_busy_while_stream_alive(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, FX_PAIR);
  fx_adopt(&f);
  assert_int_equal(async_loop_free(f.e.loop), ASYNC_EBUSY);
  assert_true(fx_until(&f, c_made, 2000));
  assert_int_equal(async_loop_free(f.e.loop), ASYNC_EBUSY);
  assert_int_equal(fx_stop(&f, ACT_CLOSE), 0);
  assert_int_equal(async_loop_free(f.e.loop), ASYNC_EBUSY);
  fx_wait_end(&f, NULL, 0);
  fx_finish(&f); /* frees with 0 */
}

/* The loop keeps running (RUN_DEFAULT does not return) while a stream is
 * alive and idle: checked with one ONCE iteration returning 1. */
static void test_stream_keeps_loop_alive(void **state) {
  (void)state;
  struct fx f;
  fx_init(&f, FX_PAIR);
  tu_close(async_timer_handle(f.e.guard));
  assert_int_equal(async_loop_run(f.e.loop, ASYNC_RUN_DEFAULT), 0);
  fx_adopt(&f);
  assert_int_equal(async_loop_alive(f.e.loop), 1);
  run_nowait(&f.e, 3);
  assert_int_equal(run_once(&f.e, ASYNC_RUN_NOWAIT), 1);
  assert_int_equal(fx_stop(&f, ACT_CLOSE), 0);
  for (int i = 0; i < 100 && !c_released(&f.r); i++) {
    run_once(&f.e, ASYNC_RUN_NOWAIT);
  }
  rec_assert_end(&f.r, 0);
  g_in_run++;
  assert_int_equal(async_loop_run(f.e.loop, ASYNC_RUN_DEFAULT), 0);
  g_in_run--;
  assert_int_equal(async_loop_free(f.e.loop), 0);
  fx_drop(&f); /* the loop is already freed: no env_finish */
}

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  assert_non_null(d);
  int n = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] != '.') {
      n++;
    }
  }
  closedir(d);
  return n;
}

/* Adopting and ending several streams (every ending: close, abort, EOF,
 * reset, error) leaves no fd behind. */
static void test_no_fd_leak(void **state) {
  (void)state;
  int before = count_fds();
  struct env e;
  env_init(&e);
  enum { N = 6 };
  struct rec r[N];
  async_stream *s[N];
  int peers[N];
  int sv[2], pp[2], c, sfd;
  for (int i = 0; i < N; i++) {
    rec_init(&r[i]);
  }
  make_socketpair(sv);
  s[0] = adopt_rec(&e, sv[0], &r[0]);
  peers[0] = sv[1];
  make_socketpair(sv);
  s[1] = adopt_rec(&e, sv[0], &r[1]);
  peers[1] = sv[1];
  make_pipe(pp);
  s[2] = adopt_rec(&e, pp[0], &r[2]);
  peers[2] = pp[1];
  make_pipe(pp);
  s[3] = adopt_rec(&e, pp[1], &r[3]);
  peers[3] = pp[0];
  tcp_pair(&c, &sfd);
  s[4] = adopt_rec(&e, c, &r[4]);
  peers[4] = sfd;
  tcp_pair(&c, &sfd);
  s[5] = adopt_rec(&e, c, &r[5]);
  peers[5] = sfd;
  for (int i = 0; i < N; i++) {
    assert_true(run_until(&e, c_made, &r[i], NULL, NULL, 2000));
  }
  assert_int_equal(LIB(async_stream_close(s[0]) + async_stream_abort(s[1])), 0);
  close(peers[2]);   /* EOF on the pipe's read end */
  assert_int_equal(LIB(async_stream_set_idle_timeout(s[3], 20)), 0);
  close(peers[4]);   /* EOF over TCP */
  struct linger lg = {1, 0};
  assert_int_equal(setsockopt(peers[5], SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  close(peers[5]);   /* reset */
  for (int i = 0; i < N; i++) {
    if (!run_until(&e, c_released, &r[i], NULL, NULL, 3000)) {
      rec_dump(&r[i]);
      fail_msg("stream %d never ended", i);
    }
  }
  int want[N] = {0, 0, 0, ASYNC_ETIMEDOUT, 0, ASYNC_ECONNRESET};
  for (int i = 0; i < N; i++) {
    rec_assert_end(&r[i], want[i]);
    rec_free(&r[i]);
  }
  close(peers[0]);
  close(peers[1]);
  close(peers[3]);
  env_finish(&e);
  assert_int_equal(count_fds(), before);
}

/* ------------------------------------------------------------------ */

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--epipe-child") == 0) {
    return child_epipe(atoi(argv[2])); /* signal state set up by run_child */
  }
  ssize_t n = readlink("/proc/self/exe", g_self, sizeof g_self - 1);
  if (n > 0) {
    g_self[n] = 0;
  } else {
    snprintf(g_self, sizeof g_self, "%s", argv[0]);
  }
  sigpipe_default(0);
  pat_init();
  const struct CMUnitTest tests[] = {
      /* order */
      cmocka_unit_test(test_made_after_adopt_then_early_data),
      cmocka_unit_test(test_made_on_later_iteration),
      cmocka_unit_test(test_made_after_io_callback),
      cmocka_unit_test(test_lifecycle_eof_lost_release),
      cmocka_unit_test(test_abort_before_made),
      cmocka_unit_test(test_close_before_made),
      cmocka_unit_test(test_pipe_read_end),
      cmocka_unit_test(test_regular_file_read_to_end),
      /* consumed-bytes reads */
      cmocka_unit_test(test_consume_all),
      cmocka_unit_test(test_consume_none_then_more),
      cmocka_unit_test(test_consume_lines_tail_at_eof),
      cmocka_unit_test(test_tail_delivered_once_at_eof),
      cmocka_unit_test(test_no_tail_no_extra_delivery),
      cmocka_unit_test(test_keep_tail_large),
      cmocka_unit_test(test_tails_are_per_stream),
      cmocka_unit_test(test_read_limit_enobufs),
      cmocka_unit_test(test_read_limit_exact),
      cmocka_unit_test(test_read_limit_bounds_deliveries),
      /* EOF */
      cmocka_unit_test(test_eof_return_zero_closes),
      cmocka_unit_test(test_eof_keep_open_half_close_tcp),
      /* writes */
      cmocka_unit_test(test_small_write_immediate),
      cmocka_unit_test(test_large_write_buffered),
      cmocka_unit_test(test_writev_order),
      cmocka_unit_test(test_write_zc_immediate),
      cmocka_unit_test(test_write_zc_queued),
      cmocka_unit_test(test_write_state_errors),
      cmocka_unit_test(test_write_eof_after_buffered_data),
      cmocka_unit_test(test_write_eof_pipe),
      cmocka_unit_test(test_write_null_and_empty),
      /* flow control */
      cmocka_unit_test(test_write_limits_defaults_and_einval),
      cmocka_unit_test(test_pause_strictly_above_high),
      cmocka_unit_test(test_limits_zero),
      cmocka_unit_test(test_set_limits_pauses_at_once),
      cmocka_unit_test(test_writes_inside_flow_callbacks),
      cmocka_unit_test(test_large_roundtrip_socketpair),
      cmocka_unit_test(test_large_tcp_echo),
      /* close vs abort */
      cmocka_unit_test(test_close_flushes),
      cmocka_unit_test(test_abort_drops),
      cmocka_unit_test(test_close_abort_idempotent),
      cmocka_unit_test(test_close_inside_made),
      cmocka_unit_test(test_close_inside_data),
      cmocka_unit_test(test_abort_inside_data),
      cmocka_unit_test(test_close_inside_eof),
      cmocka_unit_test(test_close_inside_pause_writing),
      /* errors */
      cmocka_unit_test(test_peer_reset_tcp),
      cmocka_unit_test(test_sigpipe_default_kills_sanity),
      cmocka_unit_test(test_epipe_socketpair_no_sigpipe),
      cmocka_unit_test(test_epipe_pipe_no_sigpipe),
      cmocka_unit_test(test_epipe_pipe_read_end_closed_before_adopt),
      cmocka_unit_test(test_epipe_pipe_sigpipe_blocked_not_left_pending),
      cmocka_unit_test(test_pipe_reader_gone_idle),
      cmocka_unit_test(test_pipe_reader_gone_pending),
      cmocka_unit_test(test_socketpair_peer_gone_idle),
      cmocka_unit_test(test_socketpair_peer_gone_pending),
      /* reading */
      cmocka_unit_test(test_pause_resume_reading),
      cmocka_unit_test(test_pause_reading_before_made),
      cmocka_unit_test(test_pause_reading_inside_data),
      /* set_protocol */
      cmocka_unit_test(test_set_protocol_inside_data),
      cmocka_unit_test(test_set_protocol_errors),
      /* queries */
      cmocka_unit_test(test_fd_loop_flags),
      cmocka_unit_test(test_sockname_peername_tcp),
      cmocka_unit_test(test_sockname_unix_and_pipe),
      cmocka_unit_test(test_nodelay),
      cmocka_unit_test(test_keepalive),
      cmocka_unit_test(test_idle_timeout_fires),
      cmocka_unit_test(test_idle_timeout_reset_by_reads),
      cmocka_unit_test(test_idle_timeout_reset_by_writes),
      cmocka_unit_test(test_idle_timeout_off_and_closed),
      /* bad input */
      cmocka_unit_test(test_adopt_bad_input),
      cmocka_unit_test(test_null_and_wrong_kind),
      /* lifetime */
      cmocka_unit_test(test_loop_free_busy_while_stream_alive),
      cmocka_unit_test(test_stream_keeps_loop_alive),
      cmocka_unit_test(test_no_fd_leak),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
