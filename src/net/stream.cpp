#include "net/stream.hpp"

#include <async/error.h>
#include <async/watcher.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <new>
#include <type_traits>

#include "core/loop.hpp"
#include "net/layer.hpp"
#include "net/reader.hpp"
#include "util/alloc.hpp"
#include "util/byte_queue.hpp"
#include "util/clock.hpp"
#include "util/container_of.hpp"
#include "util/error_table.hpp"
#include "util/fifo.hpp"
#include "util/sized_struct.hpp"
#include "util/sys_error.hpp"

namespace async::net {

struct Stream::Chunk {
  Chunk *next = nullptr;
  const std::uint8_t *data;  // the unsent part
  std::size_t len;
  async_release_fn done;  // zero-copy: the caller's memory, returned here
  void *done_userdata;
  // Copied bytes follow the header when done is null.
};

struct Stream::Protocol {
  async_stream_protocol callbacks{};
  std::size_t refs = 1;
};

struct Stream::Buffers {
  util::ByteQueue tail;      // unconsumed bytes, presented again
  util::Fifo<Chunk> chunks;  // the write queue
  std::size_t queued = 0;
  Layer *layer = nullptr;  // the byte source and sink of a layered stream
};

struct Stream::Idle {
  ev::TimerSlot timer;
  std::uint64_t ms = 0;
};

namespace {

// Reads per readiness event, so one busy stream cannot hold the loop.
constexpr int kReadsPerEvent = 16;
// Chunks gathered into one send.
constexpr int kWriteBatch = 64;

// writev() on a pipe or tty without SIGPIPE: the signal is held back while
// writing, and one this write raised is taken off the pending set. Two
// system calls around the write when the caller does not block SIGPIPE
// itself (then none can be pending for this thread: it would have been
// delivered); a caller that blocks it may have one pending of its own,
// which sigpending() tells apart, so that it is never taken.
ssize_t writev_no_sigpipe(int fd, const iovec *iov, int iovcnt) noexcept {
  sigset_t pipe_set;
  sigset_t old;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  bool caller_blocks = sigismember(&old, SIGPIPE);
  bool was_pending = false;
  if (caller_blocks) {
    sigset_t pending;
    sigpending(&pending);
    was_pending = sigismember(&pending, SIGPIPE);
  }
  ssize_t n = ::writev(fd, iov, iovcnt);
  int err = errno;
  if (n < 0 && err == EPIPE && !was_pending) {
    timespec zero{};
    sigtimedwait(&pipe_set, nullptr, &zero);
  }
  if (!caller_blocks) pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = err;
  return n;
}

// send()'s result for a failed send(2) other than EINTR: 0 when the fd is full.
long send_error() noexcept {
  if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
  return util::from_errno(errno);
}

// Two 64-bit words, for comparing the protocol's callbacks 16 bytes at a time.
using WordPair = std::uint64_t __attribute__((vector_size(16)));

WordPair load_pair(const unsigned char *p) noexcept {
  WordPair pair;
  std::memcpy(&pair, p, sizeof pair);
  return pair;
}

// The eight callbacks from connection_made to release lie back to back.
constexpr std::size_t kCallbacksAt = offsetof(async_stream_protocol, connection_made);
constexpr std::size_t kCallbacksEnd = offsetof(async_stream_protocol, release) + sizeof(async_stream_protocol::release);
static_assert(kCallbacksEnd - kCallbacksAt == 8 * sizeof(void *) && (kCallbacksEnd - kCallbacksAt) % 16 == 0);

// Both sides as copy_protocol() made them (every field present). Every
// field but size, without a branch per field; not the padding after size
// and after flags, which a caller's struct may leave uninitialised.
bool same_callbacks(const async_stream_protocol &a, const async_stream_protocol &b) noexcept {
  const auto *pa = reinterpret_cast<const unsigned char *>(&a) + kCallbacksAt;
  const auto *pb = reinterpret_cast<const unsigned char *>(&b) + kCallbacksAt;
  WordPair diff = load_pair(pa) ^ load_pair(pb);
  for (std::size_t at = 16; at < kCallbacksEnd - kCallbacksAt; at += 16)
    diff |= load_pair(pa + at) ^ load_pair(pb + at);
  return (diff[0] | diff[1] | (a.flags ^ b.flags) |
          (reinterpret_cast<std::uintptr_t>(a.idle_timeout) ^ reinterpret_cast<std::uintptr_t>(b.idle_timeout))) == 0;
}

}  // namespace

bool Stream::copy_protocol(async_stream_protocol &out, const async_stream_protocol *p) noexcept {
  return p && util::copy_sized(out, p) == 0 && out.data_received && out.connection_lost &&
         (out.flags & ~std::uint32_t{ASYNC_STREAM_DELIVER_EACH}) == 0;
}

// What open() needs to know about an fd.
struct Stream::FdTraits {
  int status_flags;  // F_GETFL's, or -1: already non-blocking and close-on-exec
  bool is_socket;
  bool is_tcp;
  bool is_fifo;
  bool nodelay_on;  // TCP_NODELAY is on already

  bool write_only() const noexcept { return !is_socket && (status_flags & O_ACCMODE) == O_WRONLY; }
};

Stream::Stream(Loop &loop, Protocol *protocol, const FdTraits &traits, void *userdata) noexcept
    : loop_(&loop),
      protocol_(protocol),
      userdata_(userdata),
      is_tcp_(traits.is_tcp),
      pipe_writer_(traits.write_only() && traits.is_fifo),
      flags_(static_cast<std::uint16_t>(kOpen | (traits.is_socket ? kSocket : 0) |
                                        (traits.write_only() ? kWriteOnly : 0))) {
  // The layout stream.hpp describes.
  static_assert(sizeof(Stream) == 144);
}

inline Stream *Stream::make(Loop &loop, Protocol *protocol, const FdTraits &traits, void *userdata) noexcept {
  // Not from the loop's pool: a retained stream may outlive its loop, so
  // each stream's memory is an allocation of its own, freed on its own.
  void *p = loop.stream_blocks().take();
  if (!p) p = util::mem_alloc(sizeof(Stream));
  return p ? new (p) Stream(loop, protocol, traits, userdata) : nullptr;
}

void Stream::recycle(Loop &loop, Stream &s) noexcept {
  s.~Stream();
  loop.stream_blocks().keep(&s);
}

Stream::~Stream() {
  mark_dead();
  if (has(kExtras)) free_extras();  // most streams end with neither block
  drop_protocol(protocol_);
}

void Stream::free_extras() noexcept {
  drop_queue();
  drop_tail();
  util::destroy(buffers_);
  util::destroy(idle_);  // stopped by schedule_lost()
}

Stream *Stream::from_list_node(util::ListNode *node) noexcept { return util::container_of(node, &Stream::list_node_); }

// ---- shared protocols ---------------------------------------------------

inline Stream::Protocol *Stream::share_protocol(const async_stream_protocol &protocol, ProtocolCache *cache) noexcept {
  // The kept record itself (ProtocolCache::match()) needs no comparing.
  if (cache && cache->last_ &&
      (&protocol == &cache->last_->callbacks || same_callbacks(cache->last_->callbacks, protocol))) {
    ++cache->last_->refs;
    return cache->last_;
  }
  return new_protocol(protocol, cache);
}

Stream::Protocol *Stream::new_protocol(const async_stream_protocol &protocol, ProtocolCache *cache) noexcept {
  auto *record = util::make<Protocol>();
  if (!record) return nullptr;
  record->callbacks = protocol;
  if (cache) {
    drop_protocol(cache->last_);
    cache->last_ = record;
    ++record->refs;
  }
  return record;
}

void Stream::drop_protocol(Protocol *protocol) noexcept {
  if (protocol && --protocol->refs == 0) util::destroy(protocol);
}

Stream::ProtocolCache::~ProtocolCache() { drop_protocol(last_); }

const async_stream_protocol *Stream::ProtocolCache::match(const async_stream_protocol *protocol) const noexcept {
  // Field by field (the padding may be uninitialised); a shorter (older)
  // struct only misses: the caller then copies and checks it as any other.
  if (!last_ || !protocol || protocol->size != sizeof(async_stream_protocol) ||
      !same_callbacks(last_->callbacks, *protocol))
    return nullptr;
  return &last_->callbacks;
}

int Stream::adopt(Stream **out, Loop &loop, int fd, const async_stream_protocol &protocol, void *userdata,
                  ProtocolCache *cache) noexcept {
  if (fd < 0 || ::fcntl(fd, F_GETFD) < 0) return ASYNC_EBADF;
  int type = 0;
  socklen_t len = sizeof type;
  bool is_socket = ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0;
  bool is_tcp = false;
  if (is_socket) {
    int listening = 0;
    len = sizeof listening;
    if (type != SOCK_STREAM) return ASYNC_EINVAL;
    if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening) return ASYNC_EINVAL;
    sockaddr_storage addr{};
    len = sizeof addr;
    if (::getsockname(fd, reinterpret_cast<sockaddr *>(&addr), &len) == 0)
      is_tcp = addr.ss_family == AF_INET || addr.ss_family == AF_INET6;
  }
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) return ASYNC_EBADF;
  struct stat st {};
  bool is_fifo = ::fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
  return open(out, loop, fd, FdTraits{flags, is_socket, is_tcp, is_fifo, false}, protocol, userdata, cache, nullptr);
}

inline Stream::FdTraits Stream::socket_traits(SocketKind kind) noexcept {
  return {-1, true, kind != SocketKind::kUnix, false, kind == SocketKind::kTcpNoDelay};
}

int Stream::adopt_socket(Stream **out, Loop &loop, int fd, SocketKind kind, const async_stream_protocol &protocol,
                         void *userdata, ProtocolCache *cache) noexcept {
  return open(out, loop, fd, socket_traits(kind), protocol, userdata, cache, nullptr);
}

int Stream::accept(Loop &loop, int fd, SocketKind kind, const async_stream_protocol &protocol, void *userdata,
                   Accepted &accepted) noexcept {
  Stream *s;
  return open(&s, loop, fd, socket_traits(kind), protocol, userdata, &accepted.protocols, &accepted.list);
}

inline int Stream::open(Stream **out, Loop &loop, int fd, const FdTraits &traits, const async_stream_protocol &protocol,
                        void *userdata, ProtocolCache *cache, util::List *list) noexcept {
  // Everything that can fail comes before the fd is touched: the connection
  // callbacks' ready-queue slots, the loop's read buffer, the object.
  if (!loop.ensure_read_buffer() || !loop.reserve_tasks(2)) return ASYNC_ENOMEM;
  Protocol *shared = share_protocol(protocol, cache);
  Stream *s = shared ? make(loop, shared, traits, userdata) : nullptr;
  if (!s) {
    drop_protocol(shared);
    loop.unreserve_task(2);
    return ASYNC_ENOMEM;
  }
  if (traits.status_flags >= 0) {
    ::fcntl(fd, F_SETFL, traits.status_flags | O_NONBLOCK);
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  }
  if (traits.is_tcp && !traits.nodelay_on) {
    int on = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  }
  ev::Backend::io_init_direct(s->io_, fd, 0, on_io);
  (list ? *list : loop.registry(ASYNC_OBJECT_STREAM)).push_back(s->list_node_);
  loop.transport_opened(run_made, s);
  *out = s;
  return 0;
}

int Stream::open_layered(Stream **out, Stream &lower, Layer &layer, const async_stream_protocol *lower_protocol,
                         const async_stream_protocol &protocol, void *userdata, ProtocolCache *cache) noexcept {
  Loop &loop = *lower.loop_;
  if (!loop.reserve_tasks(2)) return ASYNC_ENOMEM;
  Protocol *shared = share_protocol(protocol, cache);
  Stream *s = shared ? make(loop, shared, FdTraits{-1, false, false, false, false}, userdata) : nullptr;
  int err = ASYNC_ENOMEM;
  if (s && s->ensure_buffers()) err = lower_protocol ? lower.replace_protocol(*lower_protocol, &layer) : 0;
  if (err) {
    if (s) s->protocol_ = nullptr;
    util::destroy(s);
    drop_protocol(shared);
    loop.unreserve_task(2);
    return err;
  }
  s->layered_ = true;
  s->buffers_->layer = &layer;
  // Never started: -1 says there is no fd of its own to watch, and the
  // close at its end (Transport::end()) is then a no-op.
  ev::Backend::io_init_direct(s->io_, -1, 0, on_io);
  loop.registry(ASYNC_OBJECT_STREAM).push_back(s->list_node_);
  loop.transport_opened(run_made, s);
  *out = s;
  return 0;
}

Layer *Stream::layer() const noexcept { return layered_ ? buffers_->layer : nullptr; }

// ---- connection callbacks -----------------------------------------------

const async_stream_protocol &Stream::callbacks() const noexcept { return protocol_->callbacks; }

// The record's count is not atomic: it goes back here, on the loop's thread,
// and not in ~Stream(), which a release after async_loop_free() may run on
// any thread while a sibling stream's release runs on another.
void Stream::drop_callbacks() noexcept {
  drop_protocol(protocol_);
  protocol_ = nullptr;
  if (Layer *below = layer()) {
    buffers_->layer = nullptr;
    below->upper_ended();
  }
}

void Stream::schedule_lost(int error, bool aborted) noexcept {
  set_state(kLost);
  // The codes are 0, -1, ... in the table's order (error_table.hpp checks
  // that), so the table's length bounds the lowest.
  static_assert(1 - static_cast<int>(std::size(util::kErrors)) >= INT8_MIN, "lost_error_ holds every ASYNC_E* code");
  lost_error_ = static_cast<std::int8_t>(error);
  loop_->push_reserved(core::Task{run_lost, this});
  if (has(kExtras)) [[unlikely]]  // an idle timer or a layer below has one
    lost_extras(error, aborted);
  else
    loop_->backend().io_stop(io_);  // a tail call
}

void Stream::lost_extras(int error, bool aborted) noexcept {
  if (idle_) loop_->backend().timer_stop(idle_->timer);
  if (layered_)
    buffers_->layer->upper_lost(error, aborted);  // closes or aborts what is below
  else
    loop_->backend().io_stop(io_);
}

void Stream::run_lost(async_loop *, void *self) noexcept {
  auto *s = static_cast<Stream *>(self);
  s->list_node_.unlink();
  s->end();  // set_protocol() refuses from now on: the callbacks stay
}

void Stream::release_value(void *stream, void *) noexcept {
  auto *s = static_cast<Stream *>(stream);
  s->value_ref_ = false;
  s->drop_reference();
}

int Stream::set_protocol(const async_stream_protocol &protocol, void *userdata) noexcept {
  if (state() == kLost) return ASYNC_ECLOSED;
  if (int err = Reader::bind(protocol, userdata)) return err;
  int err = replace_protocol(protocol, userdata);
  if (err) Reader::unbind(protocol, userdata);
  return err;
}

int Stream::replace_protocol(const async_stream_protocol &protocol, void *userdata) noexcept {
  async_release_fn old_release = protocol_->callbacks.release;
  void *old_userdata = userdata_;
  if (!same_callbacks(protocol_->callbacks, protocol)) {
    if (protocol_->refs == 1) {
      protocol_->callbacks = protocol;  // this stream's alone: rewritten
    } else {
      Protocol *own = share_protocol(protocol, nullptr);
      if (!own) return ASYNC_ENOMEM;  // nothing changed
      drop_protocol(protocol_);
      protocol_ = own;
    }
  }
  userdata_ = userdata;
  if (old_release) old_release(old_userdata);
  return 0;
}

// ---- readiness ------------------------------------------------------------

void Stream::update_io() noexcept {
  if (state() == kLost) return;
  if (layered_) {
    buffers_->layer->upper_watch(is_reading());
    return;
  }
  // A pipe's write end is never read: it turns readable (an error) only
  // once the reader has gone, which is how asyncio notices that too.
  bool readable = is_reading() || (pipe_writer_ && has(kMade));
  loop_->backend().io_watch(io_, (readable ? ASYNC_READABLE : 0u) | (writing() ? ASYNC_WRITABLE : 0u));
}

void Stream::on_io(struct ev_loop *loop, struct ev_io *w, int revents) noexcept {
  Stream *s = util::container_of(&ev::Backend::io_slot(w), &Stream::io_);
  if (revents == ASYNC_READABLE && s->reads_plain())
    s->read_plain();  // the usual event
  else
    s->on_events(ev::Backend::io_revents(loop, w, revents));  // a tail call
}

void Stream::on_events(std::uint32_t revents) noexcept {
  if (revents & ASYNC_READABLE) {
    if (pipe_writer_) {
      reader_gone();  // aborted: nothing left to write
      return;
    }
    read_some();
  }
  if ((revents & ASYNC_WRITABLE) && state() != kLost && writing()) write_some();
}

// What is still queued can never be written; with nothing queued nothing
// was lost (asyncio: BrokenPipeError, or a clean close).
void Stream::reader_gone() noexcept { abort(writing() ? ASYNC_EPIPE : 0); }

void Stream::pause_reading() noexcept {
  set(kPaused);
  update_io();
}

int Stream::resume_reading() noexcept {
  set(kPaused, false);
  update_io();
  // A pause may have stopped a delivery of whole messages: they must not
  // wait for bytes the peer may never send. A tail kept past the end of
  // file waits for this resume whatever the protocol is now (end_input()).
  if (state() == kOpen && tail_len() && (deliver_each() || has(kEof)) && !replay_wanted_) {
    if (int err = loop_->call_soon(run_replay, this)) {
      abort(err);
      return err;
    }
    replay_wanted_ = true;
  }
  return 0;
}

// Queued before any run_lost(), so it runs while the stream's memory lives.
// A presentation since (a read, or a pause and resume inside data_received)
// took the want back: a partial message is not presented again unchanged.
void Stream::run_replay(async_loop *, void *self) noexcept {
  auto *s = static_cast<Stream *>(self);
  bool wanted = s->replay_wanted_;
  s->replay_wanted_ = false;
  if (!wanted || !s->presenting() || !s->tail_len()) return;  // paused again: the next resume queues anew
  if (s->has(kEof))
    s->end_input();  // the final delivery waited for this resume
  else
    s->present_tail();
}

bool Stream::deliver_each() const noexcept { return (protocol_->callbacks.flags & ASYNC_STREAM_DELIVER_EACH) != 0; }

int Stream::set_idle_timeout(std::uint64_t timeout_ms) noexcept {
  if (state() == kLost) return ASYNC_ECLOSED;
  if (!idle_) {
    if (timeout_ms == 0) return 0;
    idle_ = util::make<Idle>();
    if (!idle_) return ASYNC_ENOMEM;
    set(kExtras);
    ev::Backend::timer_init(idle_->timer, on_idle, this);
  }
  idle_->ms = timeout_ms;
  if (timeout_ms == 0)
    loop_->backend().timer_stop(idle_->timer);
  else
    touch();
  return 0;
}

void Stream::touch() noexcept {
  if (idle_ && idle_->ms) loop_->backend().timer_start(idle_->timer, util::ms_to_ns(idle_->ms));
}

void Stream::on_idle(void *self, std::uint32_t) noexcept {
  auto *s = static_cast<Stream *>(self);
  auto *idle_timeout = s->protocol_->callbacks.idle_timeout;
  // A closing stream stalled in its flush is past the protocol's say.
  if (!idle_timeout || s->state() != kOpen) {
    s->abort(ASYNC_ETIMEDOUT);
    return;
  }
  // No protocol callback before connection_made: the period starts again.
  if (!s->has(kMade)) {
    s->touch();
    return;
  }
  s->loop_->invoke([&] { idle_timeout(s->c_stream(), s->userdata_); });
  if (s->state() != kLost) s->touch();  // the next period, in the length now set (0: none)
}

// ---- reading ----------------------------------------------------------------

// One read into the loop's buffer and its delivery: true when another
// may follow (the read filled what it asked for, or was interrupted).
// Inline in both callers, so the usual event keeps no loop count.
inline bool Stream::read_once() noexcept {
  if (!is_reading()) return false;
  // Never more than the read limit leaves room for: the kept tail stays
  // within it.
  std::size_t kept = tail_len();
  if (kept >= read_limit_) {  // the limit was lowered below the tail
    abort(ASYNC_ENOBUFS);
    return false;
  }
  std::size_t want = read_size(read_limit_ - kept);
  std::uint8_t *buf = loop_->read_buffer();  // made with the stream
  ssize_t n = ::read(fd(), buf, want);
  if (n <= 0) {
    int err = n < 0 ? errno : 0;
    if (err == EINTR) return true;
    read_failed(err);
    return false;
  }
  touch();
  // Whether reading goes on is the next read_once()'s test.
  return take_in(buf, static_cast<std::size_t>(n), kept) && static_cast<std::size_t>(n) == want;
}

// read_once() for a stream that reads_plain(): no tail (the read limit,
// at least 1, leaves room), no idle timer, and reading goes on only when
// the read filled what it asked for (read_more() tests the rest). The
// frame keeps three registers: the buffer is the loop's, read again.
inline void Stream::read_plain() noexcept {
  std::size_t want = read_size(read_limit_);
  ssize_t n = ::read(fd(), loop_->read_buffer(), want);
  if (n <= 0) [[unlikely]] {
    int err = n < 0 ? errno : 0;
    if (err == EINTR)
      read_more();
    else
      read_failed(err);
    return;
  }
  auto len = static_cast<std::size_t>(n);
  std::size_t consumed = loop_->times_callbacks()
                             ? present_timed(len)
                             : callbacks().data_received(c_stream(), loop_->read_buffer(), len, userdata_);
  if (consumed < len && !take_rest(loop_->read_buffer(), len, consumed)) return;
  if (len == want) read_more();
}

std::size_t Stream::present_timed(std::size_t len) noexcept { return present_once(loop_->read_buffer(), len); }

void Stream::read_some() noexcept {
  if (read_once()) read_more();  // else drained: no EAGAIN read
}

void Stream::read_more() noexcept {
  for (int i = 1; i < kReadsPerEvent && read_once(); ++i) {
  }
}

void Stream::read_failed(int err) noexcept {
  if (err == 0)
    read_eof();
  else if (err != EAGAIN && err != EWOULDBLOCK)
    abort(util::from_errno(err));
}

// Inline in read_once(): the usual read, all of it taken with no tail
// kept, costs no call of its own.
inline bool Stream::take_in(const std::uint8_t *data, std::size_t len, std::size_t kept) noexcept {
  if (!kept) {
    std::size_t consumed = present_once(data, len);
    if (consumed == len) return state() != kLost;  // the usual case: all taken
    return take_rest(data, len, consumed);
  }
  // The new bytes go behind the tail and the whole is presented.
  if (!buffers_->tail.append(data, len)) {
    abort(ASYNC_ENOMEM);
    return false;
  }
  return took(present_tail());
}

bool Stream::take_rest(const std::uint8_t *data, std::size_t len, std::size_t consumed) noexcept {
  if (presents_again(consumed)) {
    consumed = present_rest(data, len, consumed);
    if (consumed == len) return state() != kLost;
  }
  if (state() != kLost && (!ensure_buffers() || !buffers_->tail.append(data + consumed, len - consumed))) {
    abort(ASYNC_ENOMEM);
    return false;
  }
  return took(consumed);
}

bool Stream::took(std::size_t consumed) noexcept {
  if (state() == kLost) return false;  // aborted inside: the tail is gone
  if (consumed == 0 && tail_len() >= read_limit_) {
    abort(ASYNC_ENOBUFS);
    return false;
  }
  return true;
}

bool Stream::deliver(const std::uint8_t *data, std::size_t len) noexcept {
  return take_in(data, len, tail_len()) && is_reading();
}

std::size_t Stream::present_tail() noexcept {
  util::ByteQueue &tail = buffers_->tail;
  std::size_t consumed = present(tail.data(), tail.size());
  if (state() == kLost) return consumed;  // aborted inside: the tail is gone
  replay_wanted_ = false;                 // presented: a queued run_replay() has nothing to do
  tail.consume(consumed);
  if (tail.empty()) drop_tail();
  return consumed;
}

void Stream::read_eof() noexcept {
  set(kEof);
  end_input();
}

void Stream::end_input() noexcept {
  if (tail_len()) {
    // The unconsumed tail, once more; what is left of it then is dropped,
    // unless a pause stopped a one-message-per-call protocol: resume goes on.
    present_tail();
    if (state() != kOpen) return;
    if (has(kPaused) && tail_len() && deliver_each()) return;
    drop_tail();
  }
  int keep_open = 0;
  if (protocol_->callbacks.eof_received)
    loop_->invoke([&] { keep_open = protocol_->callbacks.eof_received(c_stream(), userdata_); });
  if (state() != kOpen) return;
  if (keep_open)
    update_io();  // half-closed: writing goes on
  else
    close();
}

void Stream::drop_tail() noexcept {
  if (buffers_) buffers_->tail.release();
}

void Stream::drop_buffered() noexcept {
  drop_queue();
  drop_tail();
}

std::size_t Stream::tail_len() const noexcept { return buffers_ ? buffers_->tail.size() : 0; }

bool Stream::ensure_buffers() noexcept {
  if (buffers_) return true;
  buffers_ = util::make<Buffers>();
  if (!buffers_) return false;
  set(kExtras);
  return true;
}

// ---- writing ----------------------------------------------------------------

long Stream::send(const iovec *iov, int iovcnt) noexcept {
  for (;;) {
    ssize_t n;
    if (has(kSocket) && iovcnt == 1) {
      n = ::send(fd(), iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);  // cheaper than sendmsg
    } else if (has(kSocket)) {
      msghdr msg{};
      msg.msg_iov = const_cast<iovec *>(iov);
      msg.msg_iovlen = static_cast<std::size_t>(iovcnt);
      n = ::sendmsg(fd(), &msg, MSG_NOSIGNAL);
    } else if (layered_) {
      // Tested past the socket cases (a layered stream is no socket), so
      // a socket stream's send takes no extra branch.
      return buffers_->layer->take(iov, iovcnt);
    } else {
      n = writev_no_sigpipe(fd(), iov, iovcnt);
    }
    if (n >= 0) return n;
    if (errno != EINTR) return send_error();
  }
}

int Stream::write(const iovec *iov, int iovcnt, async_release_fn done, void *done_userdata) noexcept {
  if (state() != kOpen) return ASYNC_ECLOSED;
  if (has(kEofWanted)) return ASYNC_ESTATE;
  std::size_t total = 0;
  for (int i = 0; i < iovcnt; ++i) {
    if (iov[i].iov_len > SIZE_MAX - total) return ASYNC_EINVAL;
    total += iov[i].iov_len;
  }
  // A zero-copy write's done never runs inside this call (as libuv's write
  // callback): it is queued, so its slot is reserved before anything is sent.
  if (done && !loop_->reserve_call()) {
    abort(ASYNC_ENOMEM);  // as any write that runs out of memory
    return ASYNC_ENOMEM;
  }
  long sent = total > 0 && !writing() ? send(iov, iovcnt) : 0;
  return finish_write(iov, iovcnt, sent, total, done, done_userdata);
}

int Stream::write(const void *data, std::size_t len) noexcept {
  // The hot path (an open socket with no extras, so nothing queued and no
  // idle timer to restart; async_stream_write): one send(2) and a return
  // when it takes everything, in a frame that saves few registers.
  // Anything else goes the general way.
  if ((flags_ & (kStateBits | kEofWanted | kSocket | kExtras)) == (kOpen | kSocket) && len > 0) {
    ssize_t n = ::send(fd(), data, len, MSG_NOSIGNAL);
    if (static_cast<std::size_t>(n) == len) return 0;
    return write_rest(data, len, n);
  }
  return write_rest(data, len, -2);
}

int Stream::write_rest(const void *data, std::size_t len, ssize_t n) noexcept {
  if (state() != kOpen) return ASYNC_ECLOSED;
  if (has(kEofWanted)) return ASYNC_ESTATE;
  iovec iov{const_cast<void *>(data), len};
  long sent = 0;
  if (n >= 0)
    sent = n;  // the hot path's send took a part
  else if (n == -1)
    sent = errno == EINTR ? send(&iov, 1) : send_error();  // the hot path's send failed
  else if (len > 0 && !writing())
    sent = send(&iov, 1);
  return finish_write(&iov, 1, sent, len, nullptr, nullptr);
}

int Stream::finish_write(const iovec *iov, int iovcnt, long sent, std::size_t total, async_release_fn done,
                         void *done_userdata) noexcept {
  if (sent < 0) {
    if (done) finish_zero_copy(done, done_userdata);
    abort(static_cast<int>(sent));  // reported through connection_lost
    return 0;
  }
  if (sent > 0) touch();
  if (static_cast<std::size_t>(sent) == total) {
    if (done) finish_zero_copy(done, done_userdata);
    return 0;
  }
  if (!queue(iov, iovcnt, static_cast<std::size_t>(sent), done, done_userdata)) {
    if (done) loop_->unreserve_call();
    abort(ASYNC_ENOMEM);
    return ASYNC_ENOMEM;
  }
  update_io();
  maybe_pause();
  return 0;
}

bool Stream::queue(const iovec *iov, int iovcnt, std::size_t skip, async_release_fn done,
                   void *done_userdata) noexcept {
  if (!ensure_buffers()) return false;
  std::size_t total = 0;
  for (int i = 0; i < iovcnt; ++i) total += iov[i].iov_len;
  std::size_t len = total - skip;
  Chunk *c;
  if (done) {
    c = util::make<Chunk>();
    if (!c) return false;
    c->data = static_cast<const std::uint8_t *>(iov[0].iov_base) + skip;
  } else {
    void *p = util::mem_alloc(sizeof(Chunk) + len);
    if (!p) return false;
    c = new (p) Chunk();
    auto *copy = reinterpret_cast<std::uint8_t *>(c + 1);
    std::size_t at = 0;
    for (int i = 0; i < iovcnt; ++i) {
      const auto *base = static_cast<const std::uint8_t *>(iov[i].iov_base);
      std::size_t n = iov[i].iov_len;
      std::size_t from = skip > n ? n : skip;
      skip -= from;
      std::memcpy(copy + at, base + from, n - from);
      at += n - from;
    }
    c->data = copy;
  }
  c->len = len;
  c->done = done;
  c->done_userdata = done_userdata;
  Buffers &b = *buffers_;
  b.chunks.push(c);
  b.queued += len;
  return true;
}

void Stream::write_some() noexcept {
  Buffers &b = *buffers_;
  iovec iov[kWriteBatch];
  int n = 0;
  for (Chunk *c = b.chunks.front(); c && n < kWriteBatch; c = c->next)
    iov[n++] = {const_cast<std::uint8_t *>(c->data), c->len};
  long sent = send(iov, n);
  if (sent < 0) {
    abort(static_cast<int>(sent));
    return;
  }
  if (sent == 0) return;
  touch();
  auto left = static_cast<std::size_t>(sent);
  b.queued -= left;
  while (left > 0) {
    Chunk *c = b.chunks.front();
    if (left < c->len) {
      c->data += left;
      c->len -= left;
      break;
    }
    left -= c->len;
    b.chunks.pop();
    if (c->done) finish_zero_copy(c->done, c->done_userdata);
    util::mem_free(c);
  }
  after_drain();
}

void Stream::after_drain() noexcept {
  if (!maybe_resume()) return;
  if (!writing() && protocol_->callbacks.write_drained) {
    loop_->invoke([&] { protocol_->callbacks.write_drained(c_stream(), userdata_); });
    if (state() == kLost) return;
  }
  if (!writing()) {
    if (has(kEofWanted) && !eof_sent_) shutdown_write();
    if (state() == kClosing) {
      schedule_lost(0);
      return;
    }
  }
  update_io();
}

int Stream::write_eof() noexcept {
  if (state() != kOpen) return ASYNC_ECLOSED;
  if (has(kEofWanted)) return 0;
  set(kEofWanted);
  if (!writing()) shutdown_write();
  return 0;
}

void Stream::shutdown_write() noexcept {
  eof_sent_ = true;
  if (layered_)
    buffers_->layer->upper_write_eof();
  else if (has(kSocket))
    ::shutdown(fd(), SHUT_WR);
  else if (has(kWriteOnly))
    close();  // a pipe's write end has nothing left to do
}

void Stream::drop_queue() noexcept {
  if (!buffers_) return;
  Buffers &b = *buffers_;
  while (Chunk *c = b.chunks.pop()) {
    if (c->done) finish_zero_copy(c->done, c->done_userdata);
    util::mem_free(c);
  }
  b.queued = 0;
}

void Stream::finish_zero_copy(async_release_fn done, void *done_userdata) noexcept {
  // Always through the ready queue, also from an I/O callback: the done
  // callbacks then run in write order, before a connection_lost queued after.
  loop_->push_call(core::DeferredCall{done, nullptr, done_userdata, nullptr});
}

bool Stream::writing() const noexcept { return buffers_ && !buffers_->chunks.empty(); }

std::size_t Stream::queued_bytes() const noexcept { return buffers_->queued; }

}  // namespace async::net
