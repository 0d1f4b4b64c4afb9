// Random sequences of API calls on one loop, run to the end.
//
// Input: a program of (opcode, argument) byte pairs. Operations create
// timers, call_soon and post callbacks, futures (resolve, reject, cancel,
// free, combinators), streams over socketpairs (write, zero-copy write,
// write_eof, close, abort, pause/resume reading, limits), readers on
// socketpairs (reads, the peer writing and shutting down, free),
// datagrams on 127.0.0.1 (send to themselves, close, abort), TCP servers
// on 127.0.0.1 with raw clients and async_tcp_connect, lookups of literals
// and localhost, and run the loop (NOWAIT, or ONCE bounded by a 1 ms
// guard timer). Some callbacks act on their own object (a timer closes
// itself, a stream closes or aborts itself in data_received, a future
// callback frees its future). At the end everything still open is
// closed, aborted or freed, and the loop runs until it has nothing left.
// Properties: no crash, leak or hang; every userdata given to the library
// gets exactly one final notification; stream and datagram callbacks come
// in their documented order (connection_made first and once, nothing after
// connection_lost, connection_lost once and before release,
// pause_writing/resume_writing alternate); async_loop_free() returns 0.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <async.h>

#include <cstdint>
#include <cstring>
#include <deque>

#include "fuzz_check.h"

namespace {

enum class Type { kCallback, kTimer, kFuture, kStream, kReader, kDatagram, kServer, kClientFd };

struct State;

// One userdata handed to the library (expects_final), or one object the
// fuzzer owns (a future, a reader, a raw fd). Addresses stay valid: the
// objects live in a deque.
struct Ud {
  Type type;
  State *st;
  bool expects_final = true;
  int finals = 0;
  // Streams and datagrams.
  int made = 0, lost = 0;
  bool eof = false, paused = false;
  void *obj = nullptr;  // the live timer/future/stream/datagram/server, NULL once gone
  async_reader *reader = nullptr;  // a reader and its stream's userdata
  bool reader_owned = false;       // not freed yet
  int fd = -1;               // a socketpair peer or a client socket
  uint8_t behaviour = 0;     // what the object's callbacks do (from the input)
  Ud *holder = nullptr;      // a future callback's future
  bool closing = false;
  bool replaced = false;  // a stream's protocol was replaced: released without connection_lost
};

struct State {
  async_loop *loop = nullptr;
  std::deque<Ud> uds;
  Ud &add(Type type, bool expects_final = true) {
    uds.push_back(Ud{type, this});
    uds.back().expects_final = expects_final;
    return uds.back();
  }
  // The n-th (wrapping) object of type that is still alive, or NULL.
  Ud *pick(Type type, uint8_t n) {
    std::size_t count = 0;
    for (Ud &u : uds)
      if (u.type == type && (u.obj || u.reader_owned)) ++count;
    if (!count) return nullptr;
    std::size_t want = n % count;
    for (Ud &u : uds)
      if (u.type == type && (u.obj || u.reader_owned) && want-- == 0) return &u;
    return nullptr;
  }
};

constexpr std::size_t kMaxObjects = 64;

void final_notification(Ud &u) {
  FUZZ_CHECK(u.expects_final);
  ++u.finals;
  FUZZ_CHECK(u.finals == 1);
}

// ---- callbacks ----------------------------------------------------------------

void on_soon(async_loop *, void *ud) { final_notification(*static_cast<Ud *>(ud)); }
void on_release(void *ud) { final_notification(*static_cast<Ud *>(ud)); }

void on_close(async_handle *, void *ud) {
  Ud &u = *static_cast<Ud *>(ud);
  u.obj = nullptr;  // the handle's memory goes after this returns
  final_notification(u);
}

void on_timer(async_timer *t, void *ud) {
  Ud &u = *static_cast<Ud *>(ud);
  if ((u.behaviour & 3) == 1 && !u.closing) {
    u.closing = true;
    FUZZ_CHECK(async_handle_close(async_timer_handle(t), on_close) == 0);
  }
}

void on_future(async_future *f, int status, void *ud) {
  Ud &u = *static_cast<Ud *>(ud);
  FUZZ_CHECK(status <= 0);
  (void)async_future_result(nullptr, f);  // readable during the call
  // A callback may free its own future.
  if ((u.behaviour & 1) && u.holder && u.holder->obj == f) {
    FUZZ_CHECK(async_future_free(f) == 0);
    u.holder->obj = nullptr;
  }
  final_notification(u);
}

void on_destroy_value(void *value, void *) { final_notification(*static_cast<Ud *>(value)); }

void stream_made(async_stream *s, void *ud) {
  Ud &u = *static_cast<Ud *>(ud);
  FUZZ_CHECK(u.made == 0 && u.lost == 0 && u.finals == 0);
  ++u.made;
  u.obj = s;
}

std::size_t stream_data(async_stream *s, const uint8_t *, std::size_t len, void *ud) {
  Ud &u = *static_cast<Ud *>(ud);
  FUZZ_CHECK(u.made == 1 && u.lost == 0 && !u.eof);
  switch (u.behaviour & 7) {
    case 1:
      async_stream_close(s);
      break;
    case 2:
      async_stream_abort(s);
      break;
    case 3:
      return len / 2;  // keep a tail
    case 4:
      async_stream_write(s, "pong", 4);
      break;
    default:
      break;
  }
  return len;
}

int stream_eof(async_stream *, void *ud) {
  Ud &u = *static_cast<Ud *>(ud);
  FUZZ_CHECK(u.made == 1 && u.lost == 0 && !u.eof);
  u.eof = true;
  return (u.behaviour >> 3) & 1;  // half-close or not
}

void stream_lost(async_stream *, int error, void *ud) {
  Ud &u = *static_cast<Ud *>(ud);
  FUZZ_CHECK(error <= 0);
  FUZZ_CHECK(u.made == 1 && u.lost == 0);
  ++u.lost;
  u.obj = nullptr;
}

void stream_pause(async_stream *, void *ud) {
  Ud &u = *static_cast<Ud *>(ud);
  FUZZ_CHECK(!u.paused && u.lost == 0);
  u.paused = true;
}

void stream_resume(async_stream *, void *ud) {
  Ud &u = *static_cast<Ud *>(ud);
  FUZZ_CHECK(u.paused && u.lost == 0);
  u.paused = false;
}

void stream_release(void *ud) {
  Ud &u = *static_cast<Ud *>(ud);
  // A connect that never made its stream releases alone; so does a
  // protocol replaced by async_stream_set_protocol().
  FUZZ_CHECK(u.lost == u.made || u.replaced);
  final_notification(u);
}

const async_stream_protocol kStreamProtocol = {
    sizeof(async_stream_protocol), stream_made, stream_data, stream_eof, stream_lost,
    stream_pause, stream_resume, nullptr, stream_release, 0, nullptr,
};

// A reader's stream: a protocol whose release is the reader's, with the
// reader as userdata, so the reader is bound to the stream until that
// release (async/reader.h); its other callbacks are the fuzzer's, which
// watch the stream's life and pass each call on to the reader's. The
// reader's release is its final notification, not the fuzzer's:
// async_loop_free() returning 0 shows every reader's memory went.
const async_stream_protocol &reader_protocol() { return *async_reader_protocol(); }

State *g_state = nullptr;  // the run in progress

// The Ud of a reader's live stream (the callbacks get the reader).
Ud &reader_ud(async_stream *s) {
  Ud *found = nullptr;
  for (Ud &u : g_state->uds)
    if (u.type == Type::kReader && u.obj == s) found = &u;
  FUZZ_CHECK(found);
  return *found;
}

void shim_made(async_stream *s, void *reader) {
  Ud &u = reader_ud(s);
  FUZZ_CHECK(u.made == 0 && u.lost == 0);
  ++u.made;
  if (reader_protocol().connection_made) reader_protocol().connection_made(s, reader);
}
std::size_t shim_data(async_stream *s, const uint8_t *d, std::size_t len, void *reader) {
  Ud &u = reader_ud(s);
  FUZZ_CHECK(u.made == 1 && u.lost == 0 && !u.eof);
  return reader_protocol().data_received(s, d, len, reader);
}
int shim_eof(async_stream *s, void *reader) {
  Ud &u = reader_ud(s);
  FUZZ_CHECK(u.made == 1 && u.lost == 0 && !u.eof);
  u.eof = true;
  return reader_protocol().eof_received ? reader_protocol().eof_received(s, reader) : 0;
}
void shim_lost(async_stream *s, int error, void *reader) {
  Ud &u = reader_ud(s);
  reader_protocol().connection_lost(s, error, reader);
  stream_lost(s, error, &u);  // the stream is gone: u.obj is cleared
}

const async_stream_protocol &reader_shim() {
  static const async_stream_protocol shim = {
      sizeof(async_stream_protocol), shim_made, shim_data, shim_eof, shim_lost, nullptr, nullptr, nullptr,
      reader_protocol().release, 0, nullptr,
  };
  return shim;
}

void dgram_made(async_datagram *d, void *ud) {
  Ud &u = *static_cast<Ud *>(ud);
  FUZZ_CHECK(u.made == 0 && u.lost == 0);
  ++u.made;
  u.obj = d;
}
void dgram_received(async_datagram *d, const uint8_t *, std::size_t, const sockaddr *, std::size_t, void *ud) {
  Ud &u = *static_cast<Ud *>(ud);
  FUZZ_CHECK(u.made == 1 && u.lost == 0);
  if ((u.behaviour & 3) == 1) async_datagram_close(d);
  if ((u.behaviour & 3) == 2) async_datagram_abort(d);
}
void dgram_error(async_datagram *, int error, void *ud) {
  Ud &u = *static_cast<Ud *>(ud);
  FUZZ_CHECK(error < 0 && u.made == 1 && u.lost == 0);
}
void dgram_lost(async_datagram *, int error, void *ud) {
  Ud &u = *static_cast<Ud *>(ud);
  FUZZ_CHECK(error <= 0 && u.made == 1 && u.lost == 0);
  ++u.lost;
  u.obj = nullptr;
}
void dgram_release(void *ud) {
  Ud &u = *static_cast<Ud *>(ud);
  FUZZ_CHECK(u.lost == 1);
  final_notification(u);
}

const async_datagram_protocol kDatagramProtocol = {
    sizeof(async_datagram_protocol), dgram_made, dgram_received, dgram_error, dgram_lost, nullptr, nullptr,
    dgram_release,
};

int server_factory(const async_stream_protocol **proto, void **out_ud, async_server *, void *ud) {
  Ud &server = *static_cast<Ud *>(ud);
  if (server.behaviour & 1) return -1;  // refuse
  Ud &conn = server.st->add(Type::kStream);
  conn.behaviour = static_cast<uint8_t>(server.behaviour >> 1);
  *proto = &kStreamProtocol;
  *out_ud = &conn;
  return 0;
}

// ---- operations -------------------------------------------------------------------

void add_future_callback(State &st, Ud &holder, uint8_t arg) {
  Ud &cb = st.add(Type::kCallback);
  cb.behaviour = arg;
  cb.holder = &holder;
  if (async_future_add_callback(static_cast<async_future *>(holder.obj), on_future, &cb) != 0) cb.expects_final = false;
}

Ud &hold_future(State &st, async_future *f, uint8_t arg) {
  Ud &holder = st.add(Type::kFuture, false);
  holder.obj = f;
  add_future_callback(st, holder, arg);
  return holder;
}

int socket_pair(int fds[2]) { return socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds); }

void op_timer(State &st, uint8_t arg) {
  Ud &u = st.add(Type::kTimer);
  async_timer *t = nullptr;
  FUZZ_CHECK(async_timer_new(&t, st.loop, &u) == 0);
  u.obj = t;
  u.behaviour = arg;
  FUZZ_CHECK(async_timer_start(t, (arg >> 2) & 3, (arg & 0x10) ? 1 : 0, on_timer) == 0);
}

void op_timer_change(State &st, uint8_t arg) {
  Ud *u = st.pick(Type::kTimer, arg);
  if (!u) return;
  auto *t = static_cast<async_timer *>(u->obj);
  switch (arg & 3) {
    case 0:
      if (!u->closing) {
        u->closing = true;
        FUZZ_CHECK(async_handle_close(async_timer_handle(t), on_close) == 0);
      }
      break;
    case 1:
      async_timer_stop(t);
      break;
    case 2:
      async_timer_again(t);
      break;
    case 3:
      async_timer_set_repeat(t, (arg >> 2) & 1);
      break;
  }
}

// The producer's cancel hook: called exactly once (cancelled or completed).
void on_cancel_hook(async_future *, int cancelled, void *ud) {
  FUZZ_CHECK(cancelled == 0 || cancelled == 1);
  final_notification(*static_cast<Ud *>(ud));
}

void op_future(State &st, uint8_t arg) {
  async_future *f = nullptr;
  FUZZ_CHECK(async_future_new(&f, st.loop) == 0);
  Ud &holder = hold_future(st, f, arg);
  if (arg & 2) add_future_callback(st, holder, static_cast<uint8_t>(arg >> 2));
  if (arg & 0x40) {
    Ud &hook = st.add(Type::kCallback);
    FUZZ_CHECK(async_future_set_cancel(f, on_cancel_hook, &hook) == 0);
  }
}

void op_future_change(State &st, uint8_t arg) {
  Ud *u = st.pick(Type::kFuture, arg);
  if (!u) return;
  auto *f = static_cast<async_future *>(u->obj);
  switch (arg & 7) {
    case 0: {
      Ud &value = st.add(Type::kCallback);
      if (async_future_resolve(f, &value, on_destroy_value, NULL) != 0) value.expects_final = false;
      break;
    }
    case 1:
      async_future_reject(f, ASYNC_EIO);
      break;
    case 2:
      async_future_cancel(f);
      break;
    case 3:
      FUZZ_CHECK(async_future_free(f) == 0);
      u->obj = nullptr;
      break;
    case 4:
      add_future_callback(st, *u, static_cast<uint8_t>(arg >> 3));
      break;
    case 5: {
      async_future *t = nullptr;
      if (async_future_timeout(&t, f, (arg >> 3) & 3) == 0) hold_future(st, t, arg);
      break;
    }
    case 6:
    case 7: {
      // all/any over up to three live futures
      async_future *in[3];
      std::size_t n = 0;
      for (uint8_t k = 0; k < 3; ++k)
        if (Ud *v = st.pick(Type::kFuture, static_cast<uint8_t>(arg + k * 37)))
          in[n++] = static_cast<async_future *>(v->obj);
      async_future *c = nullptr;
      int rc = (arg & 1) ? async_future_any(&c, st.loop, in, n) : async_future_all(&c, st.loop, in, n);
      if (rc == 0) hold_future(st, c, static_cast<uint8_t>(arg >> 3));
      break;
    }
  }
}

void op_stream_pair(State &st, uint8_t arg) {
  int fds[2];
  if (socket_pair(fds) != 0) return;
  for (int i = 0; i < 2; ++i) {
    Ud &u = st.add(Type::kStream);
    u.behaviour = static_cast<uint8_t>(i ? arg >> 4 : arg);
    async_stream *s = nullptr;
    FUZZ_CHECK(async_stream_adopt(&s, st.loop, fds[i], &kStreamProtocol, &u) == 0);
    u.obj = s;
  }
}

void op_stream_change(State &st, uint8_t arg, uint8_t size) {
  Ud *u = st.pick(Type::kStream, arg);
  if (!u) return;
  auto *s = static_cast<async_stream *>(u->obj);
  static uint8_t payload[255 * 300];
  switch (arg & 15) {
    case 0:
    case 1:
      // Up to 64 KiB and more, past the default high-water mark.
      async_stream_write(s, payload, static_cast<std::size_t>(size) * ((arg & 1) ? 300 : 1));
      break;
    case 2: {
      Ud &done = st.add(Type::kCallback);
      if (async_stream_write_zc(s, payload, size, on_release, &done) != 0) done.expects_final = false;
      break;
    }
    case 3:
      async_stream_write_eof(s);
      break;
    case 4:
      async_stream_close(s);
      break;
    case 5:
      async_stream_abort(s);
      break;
    case 6:
      (size & 1) ? async_stream_pause_reading(s) : async_stream_resume_reading(s);
      break;
    case 7:
      async_stream_set_write_limits(s, size, size / 2);
      async_stream_set_read_limit(s, 1 + size);
      break;
    case 8:
      async_stream_set_idle_timeout(s, size % 3);
      break;
    case 9: {  // another protocol and userdata from now on
      Ud &next = st.add(Type::kStream);
      next.behaviour = size;
      next.made = u->made;
      next.paused = u->paused;
      next.obj = s;
      u->replaced = true;  // its release comes inside the call
      if (async_stream_set_protocol(s, &kStreamProtocol, &next) == 0) {
        u->obj = nullptr;
      } else {
        u->replaced = false;
        next.expects_final = false;
        next.obj = nullptr;
      }
      break;
    }
    case 10: {
      iovec iov[3] = {{payload, size}, {payload, 0}, {payload, static_cast<std::size_t>(size) * 2}};
      async_stream_writev(s, iov, 3);
      break;
    }
    default: {  // queries only
      std::size_t buffered = 0, high = 0, low = 0;
      FUZZ_CHECK(async_stream_write_buffer_size(&buffered, s) == 0);
      FUZZ_CHECK(async_stream_get_write_limits(&high, &low, s) == 0 && low <= high);
      FUZZ_CHECK(async_stream_is_reading(s) >= 0);
      FUZZ_CHECK(async_stream_loop(s) == st.loop);
      break;
    }
  }
}

void op_reader(State &st, uint8_t arg) {
  int fds[2];
  if (socket_pair(fds) != 0) return;
  Ud &u = st.add(Type::kReader, false);
  FUZZ_CHECK(async_reader_new(&u.reader, st.loop, arg & 0x3f) == 0);
  u.reader_owned = true;
  async_stream *s = nullptr;
  FUZZ_CHECK(async_stream_adopt(&s, st.loop, fds[0], &reader_shim(), u.reader) == 0);
  u.obj = s;
  u.fd = fds[1];
}

void op_reader_change(State &st, uint8_t arg, uint8_t size) {
  Ud *u = st.pick(Type::kReader, arg);
  if (!u) return;
  static const uint8_t kText[] = "line one\nline two\r\nthree\n\n";
  async_future *f = nullptr;
  switch (arg & 7) {
    case 0:
    case 1:
      if (u->fd >= 0) (void)!send(u->fd, kText + size % 16, 1 + size % (sizeof kText - 17), MSG_NOSIGNAL);
      break;
    case 2:
      if (u->fd >= 0) shutdown(u->fd, SHUT_WR);
      break;
    case 3:
      if (u->reader_owned && async_reader_read_line(&f, u->reader, size % 32) == 0) hold_future(st, f, size);
      break;
    case 4:
      if (u->reader_owned && async_reader_read_until(&f, u->reader, "\r\n", 2, size % 32) == 0) hold_future(st, f, size);
      break;
    case 5:
      if (u->reader_owned && async_reader_read_exactly(&f, u->reader, 1 + size % 8) == 0) hold_future(st, f, size);
      break;
    case 6:
      if (u->reader_owned && async_reader_read_some(&f, u->reader, 1 + size % 8) == 0) hold_future(st, f, size);
      break;
    case 7:
      if (u->reader_owned) {
        FUZZ_CHECK(async_reader_free(u->reader) == 0);
        u->reader_owned = false;
      }
      break;
  }
}

void op_datagram(State &st, uint8_t arg) {
  Ud &u = st.add(Type::kDatagram);
  u.behaviour = arg;
  async_udp_options opts = ASYNC_UDP_OPTIONS_INIT;
  opts.local_address = "127.0.0.1:0";
  async_datagram *d = nullptr;
  if (async_udp_open(&d, st.loop, &opts, &kDatagramProtocol, &u) != 0) {
    u.expects_final = false;
    return;
  }
  u.obj = d;
}

void op_datagram_change(State &st, uint8_t arg, uint8_t size) {
  Ud *u = st.pick(Type::kDatagram, arg);
  if (!u) return;
  auto *d = static_cast<async_datagram *>(u->obj);
  static uint8_t payload[2048];
  switch (arg & 3) {
    case 0:
    case 1: {
      sockaddr_storage self;
      int len = async_datagram_sockname(reinterpret_cast<sockaddr *>(&self), sizeof self, d);
      if (len > 0) async_datagram_send(d, payload, size * 8u, reinterpret_cast<sockaddr *>(&self), len);
      break;
    }
    case 2:
      async_datagram_close(d);
      break;
    case 3:
      async_datagram_abort(d);
      break;
  }
}

void op_server(State &st, uint8_t arg) {
  Ud &u = st.add(Type::kServer);
  u.behaviour = arg;
  async_server *s = nullptr;
  if (async_tcp_listen(&s, st.loop, "127.0.0.1", 0, 0, 0, server_factory, &u) != 0) {
    u.expects_final = false;
    return;
  }
  u.obj = s;
}

void op_server_change(State &st, uint8_t arg) {
  Ud *u = st.pick(Type::kServer, arg);
  if (!u || u->closing) return;
  auto *s = static_cast<async_server *>(u->obj);
  int port = async_server_port(s);
  switch (arg & 3) {
    case 0: {  // a raw client
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(static_cast<uint16_t>(port));
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      (void)connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a);
      Ud &c = st.add(Type::kClientFd, false);
      c.fd = fd;
      break;
    }
    case 1: {  // a library client
      Ud &c = st.add(Type::kStream);
      c.behaviour = static_cast<uint8_t>(arg >> 2);
      async_future *f = nullptr;
      if (async_tcp_connect(&f, st.loop, "127.0.0.1", static_cast<uint16_t>(port), nullptr, &kStreamProtocol, &c) !=
          0) {
        c.expects_final = false;
        break;
      }
      hold_future(st, f, static_cast<uint8_t>(arg >> 4));
      break;
    }
    case 2:
      async_server_close_connections(s, arg & 4);
      break;
    case 3:
      u->closing = true;
      FUZZ_CHECK(async_handle_close(async_server_handle(s), on_close) == 0);
      break;
  }
}

void op_lookup(State &st, uint8_t arg) {
  static const char *const kHosts[] = {"localhost", "127.0.0.1", "::1", "sub.localhost"};
  async_future *f = nullptr;
  int rc;
  if (arg & 4) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    rc = async_getnameinfo(&f, st.loop, reinterpret_cast<sockaddr *>(&a), sizeof a,
                           ASYNC_NI_NUMERICHOST | ASYNC_NI_NUMERICSERV);
  } else {
    rc = async_getaddrinfo(&f, st.loop, kHosts[arg & 3], "80", AF_UNSPEC, SOCK_STREAM, 0);
  }
  FUZZ_CHECK(rc == 0);
  hold_future(st, f, static_cast<uint8_t>(arg >> 3));
}

// Closes, aborts or frees everything still open, then runs the loop dry.
void finish(State &st, async_timer *guard) {
  for (Ud &u : st.uds) {
    switch (u.type) {
      case Type::kTimer:
        if (u.obj && !u.closing) {
          u.closing = true;
          FUZZ_CHECK(async_handle_close(async_timer_handle(static_cast<async_timer *>(u.obj)), on_close) == 0);
        }
        break;
      case Type::kFuture:
        if (u.obj) FUZZ_CHECK(async_future_free(static_cast<async_future *>(u.obj)) == 0);
        u.obj = nullptr;
        break;
      case Type::kStream:
      case Type::kReader:
        if (u.obj) async_stream_abort(static_cast<async_stream *>(u.obj));
        if (u.reader_owned) FUZZ_CHECK(async_reader_free(u.reader) == 0);
        u.reader_owned = false;
        break;
      case Type::kDatagram:
        if (u.obj) async_datagram_abort(static_cast<async_datagram *>(u.obj));
        break;
      case Type::kServer:
        if (u.obj) {
          auto *s = static_cast<async_server *>(u.obj);
          async_server_close_connections(s, 1);
          if (!u.closing) {
            u.closing = true;
            FUZZ_CHECK(async_handle_close(async_server_handle(s), on_close) == 0);
          }
        }
        break;
      case Type::kCallback:
      case Type::kClientFd:
        break;
    }
    if (u.fd >= 0) close(u.fd);
    u.fd = -1;
  }
  FUZZ_CHECK(async_handle_close(async_timer_handle(guard), nullptr) == 0);
  FUZZ_CHECK(async_loop_run(st.loop, ASYNC_RUN_DEFAULT) == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, std::size_t size) {
  State st;
  g_state = &st;
  FUZZ_CHECK(async_loop_new(&st.loop) == 0);
  // ONCE never blocks longer than this unreferenced 1 ms guard.
  async_timer *guard = nullptr;
  FUZZ_CHECK(async_timer_new(&guard, st.loop, nullptr) == 0);
  FUZZ_CHECK(async_timer_start(guard, 1, 1, [](async_timer *, void *) {}) == 0);
  FUZZ_CHECK(async_handle_unref(async_timer_handle(guard)) == 0);

  for (std::size_t i = 0; i + 1 < size && st.uds.size() < kMaxObjects; i += 2) {
    uint8_t op = data[i], arg = data[i + 1];
    uint8_t extra = i + 2 < size ? data[i + 2] : 0;
    switch (op % 18) {
      case 0: op_timer(st, arg); break;
      case 1: op_timer_change(st, arg); break;
      case 2: {
        Ud &u = st.add(Type::kCallback);
        FUZZ_CHECK(async_loop_call_soon(st.loop, on_soon, &u) == 0);
        break;
      }
      case 3: {
        Ud &u = st.add(Type::kCallback);
        FUZZ_CHECK(async_loop_post(st.loop, on_soon, &u) == 0);
        break;
      }
      case 4: op_future(st, arg); break;
      case 5: op_future_change(st, arg); break;
      case 6: op_stream_pair(st, arg); break;
      case 7: op_stream_change(st, arg, extra); break;
      case 8: op_reader(st, arg); break;
      case 9: op_reader_change(st, arg, extra); break;
      case 10: op_datagram(st, arg); break;
      case 11: op_datagram_change(st, arg, extra); break;
      case 12: op_server(st, arg); break;
      case 13: op_server_change(st, arg); break;
      case 14: op_lookup(st, arg); break;
      case 15:
      case 16: FUZZ_CHECK(async_loop_run(st.loop, ASYNC_RUN_NOWAIT) >= 0); break;
      case 17: FUZZ_CHECK(async_loop_run(st.loop, ASYNC_RUN_ONCE) >= 0); break;
    }
  }
  finish(st, guard);
  for (const Ud &u : st.uds) FUZZ_CHECK(u.finals == (u.expects_final ? 1 : 0));
  FUZZ_CHECK(async_loop_free(st.loop) == 0);
  return 0;
}
