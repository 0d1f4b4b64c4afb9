/*
 * The loop as a binding sees it (async/loop.h): its userdata, walking every
 * object a user holds, shutting everything down so that every userdata
 * gets its final notification exactly once and the loop can be freed, the
 * opt-in owner-thread check, and holds from other threads.
 */
#include "test_util.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>

#include "dns_fixture.h"

/* ---- notes: one per userdata, counting what reached it ------------------ */

struct note {
  int finals;    /* final notifications: close callback, release, future callback */
  int made;      /* connection_made */
  int lost;      /* connection_lost */
  int lost_error;
  int status;    /* a future callback's status */
  int stopped;   /* a reconnector's stopped */
  int stop_error;
  int cancels;   /* a future's cancel hook */
};

#define MAX_NOTES 64
static struct note g_notes[MAX_NOTES];
static int g_used;

static struct note *note_new(void) {
  assert_true(g_used < MAX_NOTES);
  return &g_notes[g_used++];
}

static void notes_reset(void) {
  memset(g_notes, 0, sizeof g_notes);
  g_used = 0;
}

/* Every userdata handed out got exactly one final notification. */
static void assert_each_final_once(void) {
  for (int i = 0; i < g_used; i++) {
    if (g_notes[i].finals != 1) fail_msg("note %d: %d final notifications", i, g_notes[i].finals);
  }
}

static void note_close(async_handle *h, void *ud) {
  (void)h;
  ((struct note *)ud)->finals++;
}

static void note_future(async_future *f, int status, void *ud) {
  (void)f;
  struct note *n = ud;
  n->finals++;
  n->status = status;
}

static void note_cancel(async_future *f, int cancelled, void *ud) {
  (void)f;
  (void)cancelled;
  ((struct note *)ud)->cancels++;
}

static void note_made(async_stream *s, void *ud) {
  (void)s;
  ((struct note *)ud)->made++;
}

static size_t note_data(async_stream *s, const uint8_t *d, size_t n, void *ud) {
  (void)s;
  (void)d;
  (void)ud;
  return n;
}

static void note_lost(async_stream *s, int err, void *ud) {
  (void)s;
  struct note *n = ud;
  n->lost++;
  n->lost_error = err;
}

static void note_release(void *ud) { ((struct note *)ud)->finals++; }

static const async_stream_protocol note_protocol = {
    sizeof(async_stream_protocol), note_made, note_data, NULL, note_lost, NULL, NULL, NULL, note_release, 0, NULL,
};

static void dnote_made(async_datagram *d, void *ud) {
  (void)d;
  ((struct note *)ud)->made++;
}

static void dnote_received(async_datagram *d, const uint8_t *data, size_t len, const struct sockaddr *addr,
                           size_t addrlen, void *ud) {
  (void)d, (void)data, (void)len, (void)addr, (void)addrlen, (void)ud;
}

static void dnote_lost(async_datagram *d, int err, void *ud) {
  (void)d;
  struct note *n = ud;
  n->lost++;
  n->lost_error = err;
}

static const async_datagram_protocol dnote_protocol = {
    sizeof(async_datagram_protocol), dnote_made, dnote_received, NULL, dnote_lost, NULL, NULL, note_release,
};

/* Accepted connections get a note each. */
static int note_factory(const async_stream_protocol **p, void **ud, async_server *s, void *userdata) {
  (void)s;
  (void)userdata;
  *p = &note_protocol;
  *ud = note_new();
  return 0;
}

static void note_stopped(async_reconnector *rc, int error, void *ud) {
  (void)rc;
  struct note *n = ud;
  n->stopped++;
  n->stop_error = error;
}

/* Runs NOWAIT iterations until run returns 0 (nothing left), at most ms. */
static void drain(async_loop *loop, uint64_t ms) {
  uint64_t end = tu_now_ms() + ms;
  while (async_loop_run(loop, ASYNC_RUN_NOWAIT) != 0) {
    if (tu_now_ms() > end) fail_msg("the loop still has work %llu ms after shutdown", (unsigned long long)ms);
    tu_sleep_ms(1);
  }
}

/* ---- walk --------------------------------------------------------------- */

struct seen {
  int count[ASYNC_OBJECT_RECONNECTOR + 1];
  void *last[ASYNC_OBJECT_RECONNECTOR + 1];
  int total;
};

static void seen_fn(int kind, void *object, void *ud) {
  struct seen *s = ud;
  if (kind < ASYNC_OBJECT_TIMER || kind > ASYNC_OBJECT_RECONNECTOR) fail_msg("unknown kind %d", kind);
  s->count[kind]++;
  s->last[kind] = object;
  s->total++;
}

static struct seen walk(async_loop *loop) {
  struct seen s;
  memset(&s, 0, sizeof s);
  int rc = async_loop_walk(loop, seen_fn, &s);
  assert_int_equal(rc, s.total);
  return s;
}

/* Frees the futures and readers still held (inside the walk). */
static void free_held(int kind, void *object, void *ud) {
  int *freed = ud;
  if (kind == ASYNC_OBJECT_FUTURE) {
    assert_int_equal(async_future_free(object), 0);
    ++*freed;
  } else if (kind == ASYNC_OBJECT_READER) {
    assert_int_equal(async_reader_free(object), 0);
    ++*freed;
  } else {
    fail_msg("kind %d still live after shutdown and a run", kind);
  }
}

/* One object of every kind, all live; the ones the test keeps. */
struct zoo {
  async_timer *timer;
  async_watcher *watcher;
  async_hook *hook;
  async_signal *signal;
  async_server *server;
  async_stream *adopted;
  async_datagram *dgram;
  async_future *future;
  async_reader *reader;
  async_reconnector *rc;
  async_future *connect; /* resolved: its value is the client stream */
  int pipe[2];
  int pair[2];
  int dpair[2];
  int reader_pair[2];
  struct note *client;   /* the client stream's note */
};

static void zoo_open(struct zoo *z, async_loop *loop) {
  memset(z, 0, sizeof *z);
  z->timer = tu_timer_start(loop, note_new(), 3600000, 0, tu_noop_timer_cb);
  assert_int_equal(pipe(z->pipe), 0);
  z->watcher = tu_watcher_new(loop, z->pipe[0], note_new());
  assert_int_equal(async_watcher_start(z->watcher, ASYNC_READABLE, tu_noop_watcher_cb), 0);
  z->hook = tu_hook_new(loop, ASYNC_HOOK_PREPARE, note_new());
  assert_int_equal(async_hook_start(z->hook, tu_noop_hook_cb), 0);
  assert_int_equal(async_signal_new(&z->signal, loop, note_new()), 0);
  assert_int_equal(async_signal_start(z->signal, SIGUSR2, tu_noop_signal_cb), 0);
  assert_int_equal(async_tcp_listen(&z->server, loop, "127.0.0.1", 0, 0, 0, note_factory, note_new()), 0);
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, z->pair), 0);
  assert_int_equal(async_stream_adopt(&z->adopted, loop, z->pair[0], &note_protocol, note_new()), 0);
  assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, z->dpair), 0);
  assert_int_equal(async_datagram_adopt(&z->dgram, loop, z->dpair[0], &dnote_protocol, note_new()), 0);
  assert_int_equal(async_future_new(&z->future, loop), 0);
  assert_int_equal(async_future_add_callback(z->future, note_future, note_new()), 0);
  assert_int_equal(async_reader_new(&z->reader, loop, 0), 0);
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, z->reader_pair), 0);
  async_stream *rs = NULL;
  assert_int_equal(async_stream_adopt(&rs, loop, z->reader_pair[0], async_reader_protocol(), z->reader), 0);
  z->client = note_new();
  uint16_t port = (uint16_t)async_server_port(z->server);
  assert_int_equal(async_tcp_connect(&z->connect, loop, "127.0.0.1", port, NULL, &note_protocol, z->client), 0);
  async_reconnect_options ro = ASYNC_RECONNECT_OPTIONS_INIT;
  ro.stopped = note_stopped;
  assert_int_equal(async_reconnector_start(&z->rc, loop, "127.0.0.1", port, &ro, &note_protocol, note_new()), 0);
  /* Connected: the client's stream, the reconnector's, and the server's two. */
  assert_int_equal(tu_wait_future(loop, z->connect, 3000), 0);
  uint64_t end = tu_now_ms() + 3000;
  while (async_reconnector_state(z->rc) != ASYNC_RECONNECT_CONNECTED || async_server_connection_count(z->server) < 2) {
    assert_true(tu_now_ms() < end);
    async_loop_run(loop, ASYNC_RUN_NOWAIT);
    tu_sleep_ms(1);
  }
  async_loop_run(loop, ASYNC_RUN_NOWAIT); /* the guard timer's close */
}

static void zoo_close_fds(struct zoo *z) {
  tu_close_pair(z->pipe);
  close(z->pair[1]);
  close(z->dpair[1]);
  close(z->reader_pair[1]);
}

/* Every kind is visited, with the pointer the creating call returned. */
static void test_walk_sees_each_kind(void **state) {
  (void)state;
  notes_reset();
  async_loop *loop = tu_loop_new();
  struct seen none = walk(loop);
  assert_int_equal(none.total, 0);
  struct zoo z;
  zoo_open(&z, loop);
  struct seen s = walk(loop);
  assert_int_equal(s.count[ASYNC_OBJECT_TIMER], 1);
  assert_ptr_equal(s.last[ASYNC_OBJECT_TIMER], z.timer);
  assert_int_equal(s.count[ASYNC_OBJECT_WATCHER], 1);
  assert_ptr_equal(s.last[ASYNC_OBJECT_WATCHER], z.watcher);
  assert_int_equal(s.count[ASYNC_OBJECT_HOOK], 1);
  assert_ptr_equal(s.last[ASYNC_OBJECT_HOOK], z.hook);
  assert_int_equal(s.count[ASYNC_OBJECT_SIGNAL], 1);
  assert_ptr_equal(s.last[ASYNC_OBJECT_SIGNAL], z.signal);
  assert_int_equal(s.count[ASYNC_OBJECT_SERVER], 1);
  assert_ptr_equal(s.last[ASYNC_OBJECT_SERVER], z.server);
  /* adopted, reader's, client, reconnector's, and the server's two */
  assert_int_equal(s.count[ASYNC_OBJECT_STREAM], 6);
  assert_int_equal(s.count[ASYNC_OBJECT_DATAGRAM], 1);
  assert_ptr_equal(s.last[ASYNC_OBJECT_DATAGRAM], z.dgram);
  /* the user future and the client's connect future; not the
   * reconnector's connects */
  assert_int_equal(s.count[ASYNC_OBJECT_FUTURE], 2);
  assert_int_equal(s.count[ASYNC_OBJECT_READER], 1);
  assert_ptr_equal(s.last[ASYNC_OBJECT_READER], z.reader);
  assert_int_equal(s.count[ASYNC_OBJECT_RECONNECTOR], 1);
  assert_ptr_equal(s.last[ASYNC_OBJECT_RECONNECTOR], z.rc);

  /* A closing handle is visited until its close callback has run. */
  assert_int_equal(async_handle_close(async_timer_handle(z.timer), NULL), 0);
  assert_int_equal(walk(loop).count[ASYNC_OBJECT_TIMER], 1);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_NOWAIT), 1);
  assert_int_equal(walk(loop).count[ASYNC_OBJECT_TIMER], 0);

  /* A server freed before its streams hands them to the loop: still visited. */
  tu_server_close(loop, z.server);
  s = walk(loop);
  assert_int_equal(s.count[ASYNC_OBJECT_SERVER], 0);
  assert_int_equal(s.count[ASYNC_OBJECT_STREAM], 6);

  assert_int_equal(async_loop_shutdown(loop, NULL), 0);
  drain(loop, 3000);
  /* The client stream is lost but kept as the connect future's value: not visited. */
  s = walk(loop);
  assert_int_equal(s.count[ASYNC_OBJECT_STREAM], 0);
  assert_int_equal(s.total, s.count[ASYNC_OBJECT_FUTURE] + s.count[ASYNC_OBJECT_READER]);
  int freed = 0;
  assert_int_equal(async_loop_walk(loop, free_held, &freed), 3);
  assert_int_equal(freed, 3);
  assert_int_equal(async_loop_free(loop), 0);
  zoo_close_fds(&z);
}

/* Inside fn: closing or freeing the visited object and others. */
struct closer {
  async_loop *loop;
  async_future *victim; /* freed when the first future is visited */
  int futures;
  int handles;
  int nested;
};

static void close_all_fn(int kind, void *object, void *ud) {
  struct closer *c = ud;
  switch (kind) {
    case ASYNC_OBJECT_TIMER:
    case ASYNC_OBJECT_HOOK:
      c->handles++;
      async_handle_close(object, note_close);
      /* The loop cannot run inside fn, nor be freed. */
      if (async_loop_run(c->loop, ASYNC_RUN_NOWAIT) != ASYNC_EBUSY) fail_msg("run inside fn");
      if (async_loop_free(c->loop) != ASYNC_EBUSY) fail_msg("free inside fn");
      break;
    case ASYNC_OBJECT_FUTURE:
      c->futures++;
      if (async_loop_run_until(c->loop, object) != ASYNC_EBUSY) fail_msg("run_until inside fn");
      if (c->victim && object != c->victim) {
        async_future_free(c->victim); /* not visited any more */
        c->victim = NULL;
      }
      async_future_free(object);
      break;
    case ASYNC_OBJECT_STREAM: {
      /* A nested walk sees what is left. */
      struct seen s;
      memset(&s, 0, sizeof s);
      c->nested = async_loop_walk(c->loop, seen_fn, &s);
      async_stream_abort(object);
      break;
    }
    default: fail_msg("unexpected kind %d", kind);
  }
}

static void test_walk_close_and_free_inside_fn(void **state) {
  (void)state;
  notes_reset();
  async_loop *loop = tu_loop_new();
  for (int i = 0; i < 3; i++) tu_timer_start(loop, note_new(), 3600000, 0, tu_noop_timer_cb);
  tu_hook_new(loop, ASYNC_HOOK_CHECK, note_new());
  async_future *f[4];
  for (int i = 0; i < 4; i++) assert_int_equal(async_future_new(&f[i], loop), 0);
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  async_stream *s = NULL;
  assert_int_equal(async_stream_adopt(&s, loop, sv[0], &note_protocol, note_new()), 0);

  struct closer c = {loop, f[2], 0, 0, 0};
  assert_int_equal(async_loop_walk(loop, close_all_fn, &c), 4 + 3 + 1);
  assert_int_equal(c.handles, 4);
  assert_int_equal(c.futures, 3); /* f[2] was freed before its turn */
  assert_int_equal(c.nested, 4 + 1 + 4); /* the closing handles, the stream, the futures */
  assert_int_equal(walk(loop).total, 4 + 1);
  drain(loop, 3000);
  assert_int_equal(walk(loop).total, 0);
  assert_int_equal(async_loop_free(loop), 0);
  assert_each_final_once();
  close(sv[1]);
}

static void test_walk_bad_input(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  struct seen s;
  assert_int_equal(async_loop_walk(NULL, seen_fn, &s), ASYNC_EINVAL);
  assert_int_equal(async_loop_walk(loop, NULL, &s), ASYNC_EINVAL);
  assert_int_equal(async_loop_walk((async_loop *)&s, seen_fn, &s), ASYNC_EINVAL);
  assert_int_equal(async_loop_shutdown(NULL, NULL), ASYNC_EINVAL);
  assert_int_equal(async_loop_free(loop), 0);
}

/* ---- shutdown ----------------------------------------------------------- */

/* Every kind live, plus a connect and a lookup waiting for a DNS server
 * that never answers: one shutdown, one drain, every userdata notified
 * once, then the loop frees. */
static void test_shutdown_ends_everything(void **state) {
  (void)state;
  notes_reset();
  struct dnsfx_family silent = {NULL, -1};
  struct dnsfx_responder dns;
  assert_int_equal(dnsfx_responder_start(&dns, &silent, &silent), 0);
  async_loop *loop = tu_loop_new();
  assert_int_equal(async_dns_set_servers(loop, dns.servers), 0);
  struct zoo z;
  zoo_open(&z, loop);

  /* A handle closing already keeps its own close callback. */
  struct note *own = note_new();
  async_timer *closing = tu_timer_new(loop, own);
  assert_int_equal(async_handle_close(async_timer_handle(closing), note_close), 0);
  /* A stopped timer and an unstarted hook are closed too. */
  tu_timer_new(loop, note_new());
  tu_hook_new(loop, ASYNC_HOOK_IDLE, note_new());
  /* A pending connect and a pending lookup. */
  struct note *connect_protocol = note_new();
  async_future *connect = NULL;
  assert_int_equal(async_tcp_connect(&connect, loop, "never.test", 80, NULL, &note_protocol, connect_protocol), 0);
  assert_int_equal(async_future_add_callback(connect, note_future, note_new()), 0);
  async_future *lookup = NULL;
  assert_int_equal(async_getaddrinfo(&lookup, loop, "never.test", "80", 0, 0, 0), 0);
  assert_int_equal(async_future_add_callback(lookup, note_future, note_new()), 0);
  /* A pending read. */
  async_future *read = NULL;
  assert_int_equal(async_reader_read_exactly(&read, z.reader, 10), 0);
  assert_int_equal(async_future_add_callback(read, note_future, note_new()), 0);
  /* A user future with a cancel hook, and one completed already. */
  static struct note hook_note;
  memset(&hook_note, 0, sizeof hook_note);
  struct note *hooked = &hook_note;
  async_future *with_hook = NULL;
  assert_int_equal(async_future_new(&with_hook, loop), 0);
  assert_int_equal(async_future_set_cancel(with_hook, note_cancel, hooked), 0);
  assert_int_equal(async_future_add_callback(with_hook, note_future, note_new()), 0);
  async_future *done = NULL;
  assert_int_equal(async_future_new(&done, loop), 0);
  assert_int_equal(async_future_resolve(done, NULL, NULL, NULL), 0);
  assert_int_equal(async_future_add_callback(done, note_future, note_new()), 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_NOWAIT), 1);

  /* Handles get the shutdown's close callback, run from the loop. */
  int before = g_notes[0].finals;
  assert_int_equal(async_loop_shutdown(loop, note_close), 0);
  assert_int_equal(g_notes[0].finals, before);
  assert_int_equal(hooked->cancels, 1); /* the cancel hook runs inside */
  assert_int_equal(async_loop_shutdown(loop, note_close), 0); /* idempotent */
  drain(loop, 3000);

  int stopped = 0;
  for (int i = 0; i < g_used; i++) {
    struct note *n = &g_notes[i];
    stopped += n->stopped;
    if (n->lost) {
      assert_int_equal(n->lost, 1);
      assert_int_equal(n->lost_error, ASYNC_ECANCELED);
    }
    if (n->stopped) assert_int_equal(n->stop_error, ASYNC_ECANCELED);
  }
  assert_int_equal(stopped, 1); /* the reconnector (its memory is gone now) */
  assert_int_equal(z.client->lost, 1);
  assert_int_equal(connect_protocol->made, 0);
  assert_int_equal(g_notes[g_used - 1].status, 0); /* the completed future's callback */
  assert_int_equal(hooked->cancels, 1);
  /* Futures and readers stay the owner's: freed here, then the loop goes. */
  assert_int_equal(async_loop_free(loop), ASYNC_EBUSY);
  int freed = 0;
  async_loop_walk(loop, free_held, &freed);
  assert_int_equal(freed, 8); /* user, connect x2, lookup, read, hooked, done, reader */
  assert_int_equal(async_loop_free(loop), 0);
  assert_each_final_once();
  for (int i = 0; i < g_used; i++)
    if (g_notes[i].status) assert_int_equal(g_notes[i].status, ASYNC_ECANCELED);
  zoo_close_fds(&z);
  dnsfx_responder_stop(&dns);
}

/* Shutdown from a timer's own callback: that timer is closed too. */
static void shutdown_from_timer(async_timer *t, void *ud) {
  async_loop *loop = async_handle_loop(async_timer_handle(t));
  (void)ud;
  if (async_loop_shutdown(loop, note_close) != 0) fail_msg("shutdown inside a callback");
}

static void test_shutdown_inside_callback(void **state) {
  (void)state;
  notes_reset();
  async_loop *loop = tu_loop_new();
  tu_timer_start(loop, note_new(), 0, 1, shutdown_from_timer);
  for (int i = 0; i < 3; i++) tu_timer_start(loop, note_new(), 3600000, 0, tu_noop_timer_cb);
  async_future *f = NULL;
  assert_int_equal(async_future_new(&f, loop), 0);
  assert_int_equal(async_future_add_callback(f, note_future, note_new()), 0);
  uint64_t t0 = tu_now_ns();
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_true(tu_elapsed_ms(t0) < 1000);
  assert_int_equal(async_future_free(f), 0);
  assert_int_equal(async_loop_free(loop), 0);
  assert_each_final_once();
  assert_int_equal(g_notes[4].status, ASYNC_ECANCELED);
}

/* Shutdown from inside a walk: the walk goes on, nothing is ended twice. */
static void shutdown_on_first(int kind, void *object, void *ud) {
  (void)kind;
  (void)object;
  async_loop *loop = ud;
  if (async_loop_shutdown(loop, note_close) != 0) fail_msg("shutdown inside walk");
}

static void test_shutdown_inside_walk(void **state) {
  (void)state;
  notes_reset();
  async_loop *loop = tu_loop_new();
  for (int i = 0; i < 3; i++) tu_timer_start(loop, note_new(), 3600000, 0, tu_noop_timer_cb);
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  async_stream *s = NULL;
  assert_int_equal(async_stream_adopt(&s, loop, sv[0], &note_protocol, note_new()), 0);
  assert_int_equal(async_loop_walk(loop, shutdown_on_first, loop), 4);
  drain(loop, 3000);
  assert_int_equal(async_loop_free(loop), 0);
  assert_each_final_once();
  close(sv[1]);
}

/* Objects made after a shutdown behave as usual. */
static void test_loop_usable_after_shutdown(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  assert_int_equal(async_loop_shutdown(loop, NULL), 0);
  int fired = 0;
  async_timer *t = tu_timer_start(loop, &fired, 1, 0, tu_count_timer_cb);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_int_equal(fired, 1);
  tu_close(async_timer_handle(t));
  tu_finish(loop);
}

/* ---- userdata ------------------------------------------------------------ */

static void test_userdata(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  int x;
  assert_null(async_loop_userdata(loop));
  assert_int_equal(async_loop_set_userdata(loop, &x), 0);
  assert_ptr_equal(async_loop_userdata(loop), &x);
  assert_int_equal(async_loop_set_userdata(NULL, &x), ASYNC_EINVAL);
  assert_null(async_loop_userdata(NULL));
  assert_int_equal(async_loop_free(loop), 0);
}

/* ---- thread check ------------------------------------------------------- */

struct foreign {
  async_loop *loop;
  async_timer *timer;
  async_future *future;
  int run, timer_start, close, cancel, call_soon, walk, set_check, alive, shutdown, userdata, udp_open;
  async_datagram *udp;
  void *handle_loop;
  int post, wakeup, hold, unhold;
  struct seen seen;
};

static void *foreign_calls(void *arg) {
  struct foreign *f = arg;
  f->run = async_loop_run(f->loop, ASYNC_RUN_NOWAIT);
  f->timer_start = async_timer_start(f->timer, 10, 0, tu_noop_timer_cb);
  f->close = async_handle_close(async_timer_handle(f->timer), NULL);
  f->cancel = async_future_cancel(f->future);
  f->call_soon = async_loop_call_soon(f->loop, tu_noop_soon_cb, NULL);
  f->walk = async_loop_walk(f->loop, seen_fn, &f->seen);
  f->set_check = async_loop_set_thread_check(f->loop, 0);
  f->alive = async_loop_alive(f->loop);
  f->shutdown = async_loop_shutdown(f->loop, NULL);
  f->userdata = async_loop_set_userdata(f->loop, f);
  async_udp_options udp = ASYNC_UDP_OPTIONS_INIT;
  udp.local_address = "127.0.0.1:0";
  f->udp_open = async_udp_open(&f->udp, f->loop, &udp, &dnote_protocol, note_new());
  f->handle_loop = async_handle_loop(async_timer_handle(f->timer));
  f->post = async_loop_post(f->loop, tu_noop_soon_cb, NULL);
  f->wakeup = async_loop_wakeup(f->loop);
  f->hold = async_loop_hold(f->loop);
  f->unhold = async_loop_unhold(f->loop);
  return NULL;
}

static void call_from_thread(struct foreign *f) {
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, foreign_calls, f), 0);
  assert_int_equal(pthread_join(th, NULL), 0);
}

static void test_thread_check(void **state) {
  (void)state;
  struct foreign f;
  memset(&f, 0, sizeof f);
  notes_reset();
  f.loop = tu_loop_new();
  f.timer = tu_timer_new(f.loop, NULL);
  assert_int_equal(async_future_new(&f.future, f.loop), 0);
  assert_int_equal(async_loop_set_thread_check(f.loop, 1), 0);
  call_from_thread(&f);
  assert_int_equal(f.run, ASYNC_EWRONGTHREAD);
  assert_int_equal(f.timer_start, ASYNC_EWRONGTHREAD);
  assert_int_equal(f.close, ASYNC_EWRONGTHREAD);
  assert_int_equal(f.cancel, ASYNC_EWRONGTHREAD);
  assert_int_equal(f.call_soon, ASYNC_EWRONGTHREAD);
  assert_int_equal(f.walk, ASYNC_EWRONGTHREAD);
  assert_int_equal(f.set_check, ASYNC_EWRONGTHREAD);
  assert_int_equal(f.alive, ASYNC_EWRONGTHREAD);
  assert_int_equal(f.shutdown, ASYNC_EWRONGTHREAD);
  assert_int_equal(f.userdata, ASYNC_EWRONGTHREAD);
  assert_int_equal(f.udp_open, ASYNC_EWRONGTHREAD);
  assert_null(f.handle_loop);
  /* The thread-safe calls work from anywhere. */
  assert_int_equal(f.post, 0);
  assert_int_equal(f.wakeup, 0);
  assert_int_equal(f.hold, 0);
  assert_int_equal(f.unhold, 0);
  /* Nothing changed: the timer is open and stopped, the future pending. */
  assert_int_equal(async_handle_is_closing(async_timer_handle(f.timer)), 0);
  assert_int_equal(async_handle_is_active(async_timer_handle(f.timer)), 0);
  assert_int_equal(async_future_get_state(f.future), ASYNC_FUTURE_PENDING);
  assert_null(async_loop_userdata(f.loop));
  /* Bad input still says EINVAL. */
  assert_int_equal(async_loop_set_thread_check(NULL, 1), ASYNC_EINVAL);

  /* Off again (from the owner): another thread may call. */
  assert_int_equal(async_loop_set_thread_check(f.loop, 0), 0);
  call_from_thread(&f);
  assert_int_equal(f.timer_start, 0);
  assert_int_equal(f.close, 0);
  assert_int_equal(f.cancel, 1);
  assert_int_equal(f.udp_open, 0);
  assert_int_equal(async_datagram_close(f.udp), 0);
  assert_ptr_equal(f.handle_loop, f.loop);
  assert_int_equal(async_future_free(f.future), 0);
  tu_finish(f.loop);
  /* The refused open kept its userdata; the accepted one released its own. */
  assert_int_equal(g_used, 2);
  assert_int_equal(g_notes[0].finals, 0);
  assert_int_equal(g_notes[1].finals, 1);
}

/* Off by default: another thread's calls are not refused. */
static void test_thread_check_off_by_default(void **state) {
  (void)state;
  struct foreign f;
  memset(&f, 0, sizeof f);
  notes_reset();
  f.loop = tu_loop_new();
  f.timer = tu_timer_new(f.loop, NULL);
  assert_int_equal(async_future_new(&f.future, f.loop), 0);
  call_from_thread(&f);
  assert_true(f.run >= 0);
  assert_int_equal(f.timer_start, 0);
  assert_int_equal(f.close, 0);
  assert_int_equal(f.set_check, 0);
  assert_int_equal(f.userdata, 0);
  assert_int_equal(f.udp_open, 0);
  assert_int_equal(async_datagram_close(f.udp), 0);
  assert_int_equal(async_future_free(f.future), 0);
  tu_finish(f.loop);
}

/* ---- hold / unhold ------------------------------------------------------- */

struct holder {
  async_loop *loop;
  int posted_ran;
  uint64_t unhold_ns;
  int post_rc, unhold_rc;
};

static void posted(async_loop *loop, void *ud) {
  (void)loop;
  ((struct holder *)ud)->posted_ran++;
}

static void *work_then_unhold(void *arg) {
  struct holder *h = arg;
  tu_sleep_ms(100);
  h->post_rc = async_loop_post(h->loop, posted, h);
  tu_sleep_ms(50);
  h->unhold_ns = tu_now_ns();
  h->unhold_rc = async_loop_unhold(h->loop);
  return NULL;
}

/* A held loop with nothing else to do blocks in run(DEFAULT) until the
 * other thread's unhold, then returns. */
static void test_hold_keeps_run_until_unhold(void **state) {
  (void)state;
  struct holder h;
  memset(&h, 0, sizeof h);
  h.loop = tu_loop_new();
  assert_int_equal(async_loop_alive(h.loop), 0);
  assert_int_equal(async_loop_hold(h.loop), 0);
  assert_int_equal(async_loop_alive(h.loop), 1);
  assert_int_equal(async_loop_free(h.loop), ASYNC_EBUSY);
  pthread_t th;
  uint64_t t0 = tu_now_ns(); /* before the thread starts its sleeps */
  assert_int_equal(pthread_create(&th, NULL, work_then_unhold, &h), 0);
  assert_int_equal(async_loop_run(h.loop, ASYNC_RUN_DEFAULT), 0);
  uint64_t returned = tu_now_ns();
  assert_int_equal(pthread_join(th, NULL), 0);
  assert_int_equal(h.post_rc, 0);
  assert_int_equal(h.unhold_rc, 0);
  assert_int_equal(h.posted_ran, 1);
  assert_true(tu_elapsed_ms(t0) >= 140);
  assert_true(returned >= h.unhold_ns);
  assert_true((double)(returned - h.unhold_ns) / 1e6 < 1000);
  assert_int_equal(async_loop_alive(h.loop), 0);
  assert_int_equal(async_loop_unhold(h.loop), ASYNC_ESTATE);
  assert_int_equal(async_loop_free(h.loop), 0);
  assert_int_equal(async_loop_hold(NULL), ASYNC_EINVAL);
  assert_int_equal(async_loop_unhold(NULL), ASYNC_EINVAL);
}

/* Holds count: two holds need two unholds. */
static void test_hold_counts(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  assert_int_equal(async_loop_hold(loop), 0);
  assert_int_equal(async_loop_hold(loop), 0);
  assert_int_equal(async_loop_unhold(loop), 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_NOWAIT), 1);
  assert_int_equal(async_loop_free(loop), ASYNC_EBUSY);
  assert_int_equal(async_loop_unhold(loop), 0);
  assert_int_equal(async_loop_alive(loop), 0); /* at once, before any run */
  assert_int_equal(async_loop_free(loop), 0);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_walk_sees_each_kind),
      cmocka_unit_test(test_walk_close_and_free_inside_fn),
      cmocka_unit_test(test_walk_bad_input),
      cmocka_unit_test(test_shutdown_ends_everything),
      cmocka_unit_test(test_shutdown_inside_callback),
      cmocka_unit_test(test_shutdown_inside_walk),
      cmocka_unit_test(test_loop_usable_after_shutdown),
      cmocka_unit_test(test_userdata),
      cmocka_unit_test(test_thread_check),
      cmocka_unit_test(test_thread_check_off_by_default),
      cmocka_unit_test(test_hold_keeps_run_until_unhold),
      cmocka_unit_test(test_hold_counts),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
