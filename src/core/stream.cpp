#include "core/stream.hpp"

#include <async/error.h>
#include <async/watcher.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>

#include "core/loop.hpp"
#include "util/alloc.hpp"
#include "util/clock.hpp"
#include "util/grow.hpp"
#include "util/sys_error.hpp"

namespace async::core {

struct Stream::Chunk {
  Chunk *next = nullptr;
  const std::uint8_t *data;  // the unsent part
  std::size_t len;
  async_release_fn done;  // zero-copy: the caller's memory, returned here
  void *done_userdata;
  // Copied bytes follow the header when done is null.
};

namespace {

// Reads per readiness event, so one busy stream cannot hold the loop.
constexpr int kReadsPerEvent = 16;
// Chunks gathered into one send.
constexpr int kWriteBatch = 64;

// writev() on a pipe or tty without SIGPIPE: the signal is held back while
// writing, and one this write raised is taken off the pending set.
ssize_t writev_no_sigpipe(int fd, const iovec *iov, int iovcnt) noexcept {
  sigset_t pipe_set, old, pending;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  sigpending(&pending);
  bool was_pending = sigismember(&pending, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  ssize_t n = ::writev(fd, iov, iovcnt);
  int err = errno;
  if (n < 0 && err == EPIPE && !was_pending) {
    timespec zero{};
    sigtimedwait(&pipe_set, nullptr, &zero);
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = err;
  return n;
}

}  // namespace

bool Stream::valid_protocol(const async_stream_protocol *p) noexcept {
  return p && p->size >= sizeof(async_stream_protocol) && p->data_received && p->connection_lost;
}

Stream::Stream(Loop &loop, int fd) noexcept : Transport(kTag, loop, fd) {}

Stream::~Stream() {
  drop_queue();
  drop_tail();
}

int Stream::adopt(Stream **out, Loop &loop, int fd, const async_stream_protocol &protocol, void *userdata) noexcept {
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

  // Everything that can fail comes before the fd is touched: the connection
  // callbacks' ready-queue slots, the loop's read buffer, the object.
  if (!loop.read_buffer() || !loop.reserve_tasks(2)) return ASYNC_ENOMEM;
  Stream *s = util::make<Stream>(loop, fd);
  if (!s) {
    loop.unreserve_task(2);
    return ASYNC_ENOMEM;
  }
  if (is_tcp) {
    int on = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  }
  s->is_socket_ = is_socket;
  s->is_tcp_ = is_tcp;
  s->write_only_ = !is_socket && (flags & O_ACCMODE) == O_WRONLY;
  ev::Backend::timer_init(s->idle_, on_idle, s);
  s->attach(flags, protocol, userdata, on_io);
  *out = s;
  return 0;
}

// ---- connection callbacks -----------------------------------------------

void Stream::schedule_lost(int error) noexcept {
  loop_.backend().timer_stop(idle_);
  Transport::schedule_lost(error);
}

void Stream::release(void *stream) noexcept {
  auto *s = static_cast<Stream *>(stream);
  if (--s->refs_ == 0) util::destroy(s);
}

void Stream::close() noexcept {
  if (state_ != State::kOpen) return;
  state_ = State::kClosing;
  if (!head_)
    schedule_lost(0);
  else
    update_io();  // no more reading; the buffer still drains
}

void Stream::abort(int error) noexcept {
  if (state_ == State::kLost) return;
  drop_queue();
  drop_tail();
  schedule_lost(error);
}

int Stream::set_protocol(const async_stream_protocol &protocol, void *userdata) noexcept {
  if (state_ == State::kLost) return ASYNC_ECLOSED;
  async_release_fn old_release = protocol_.release;
  void *old_userdata = userdata_;
  protocol_ = protocol;
  protocol_.size = sizeof protocol_;
  userdata_ = userdata;
  if (old_release) old_release(old_userdata);
  return 0;
}

// ---- readiness ------------------------------------------------------------

bool Stream::is_reading() const noexcept { return made_ && !paused_ && !eof_ && state_ == State::kOpen; }

void Stream::update_io() noexcept {
  if (state_ == State::kLost) return;
  loop_.backend().io_watch(io_, (is_reading() ? ASYNC_READABLE : 0u) | (head_ ? ASYNC_WRITABLE : 0u));
}

void Stream::on_io(void *self, std::uint32_t revents) noexcept {
  auto *s = static_cast<Stream *>(self);
  if (revents & ASYNC_READABLE) s->read_some();
  if ((revents & ASYNC_WRITABLE) && s->state_ != State::kLost && s->head_) s->write_some();
}

void Stream::pause_reading() noexcept {
  paused_ = true;
  update_io();
}

void Stream::resume_reading() noexcept {
  paused_ = false;
  update_io();
}

int Stream::set_idle_timeout(std::uint64_t timeout_ms) noexcept {
  if (state_ == State::kLost) return ASYNC_ECLOSED;
  idle_ms_ = timeout_ms;
  if (timeout_ms == 0)
    loop_.backend().timer_stop(idle_);
  else
    touch();
  return 0;
}

void Stream::touch() noexcept {
  if (idle_ms_) loop_.backend().timer_start(idle_, util::ms_to_ns(idle_ms_));
}

void Stream::on_idle(void *self, std::uint32_t) noexcept { static_cast<Stream *>(self)->abort(ASYNC_ETIMEDOUT); }

// ---- reading ----------------------------------------------------------------

void Stream::read_some() noexcept {
  for (int i = 0; i < kReadsPerEvent && is_reading(); ++i) {
    std::uint8_t *buf = loop_.read_buffer();
    // Never more than the read limit leaves room for: the kept tail stays
    // within it.
    if (tail_len_ >= read_limit_) {  // the limit was lowered below the tail
      abort(ASYNC_ENOBUFS);
      return;
    }
    std::size_t room = read_limit_ - tail_len_;
    std::size_t want = room < Loop::kReadBufferSize ? room : Loop::kReadBufferSize;
    ssize_t n = ::read(fd_, buf, want);
    if (n > 0) {
      touch();
      if (!deliver(buf, static_cast<std::size_t>(n))) return;
      if (static_cast<std::size_t>(n) < want) return;  // drained: skip the EAGAIN read
    } else if (n == 0) {
      read_eof();
      return;
    } else if (errno != EINTR) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) abort(util::from_errno(errno));
      return;
    }
  }
}

bool Stream::deliver(const std::uint8_t *data, std::size_t len) noexcept {
  // With a tail, the new bytes go behind it and the whole is presented.
  const std::uint8_t *view = data;
  std::size_t view_len = len;
  if (tail_len_) {
    if (!util::grow_bytes(&tail_, &tail_cap_, tail_len_ + len)) {
      abort(ASYNC_ENOMEM);
      return false;
    }
    std::memcpy(tail_ + tail_len_, data, len);
    tail_len_ += len;
    view = tail_;
    view_len = tail_len_;
  }
  std::size_t consumed = 0;
  loop_.invoke([&] { consumed = protocol_.data_received(c_stream(), view, view_len, userdata_); });
  if (state_ == State::kLost) return false;  // aborted inside: the tail is gone
  if (consumed > view_len) consumed = view_len;
  std::size_t rest = view_len - consumed;
  if (view == tail_) {
    std::memmove(tail_, tail_ + consumed, rest);
    tail_len_ = rest;
    if (!rest) drop_tail();
  } else if (rest) {
    if (!util::grow_bytes(&tail_, &tail_cap_, rest)) {
      abort(ASYNC_ENOMEM);
      return false;
    }
    std::memcpy(tail_, data + consumed, rest);
    tail_len_ = rest;
  }
  if (consumed == 0 && tail_len_ >= read_limit_) {
    abort(ASYNC_ENOBUFS);
    return false;
  }
  return is_reading();
}

void Stream::read_eof() noexcept {
  eof_ = true;
  if (tail_len_) {
    // The unconsumed tail, once more; what is left of it then is dropped.
    loop_.invoke([&] { protocol_.data_received(c_stream(), tail_, tail_len_, userdata_); });
    drop_tail();
    if (state_ != State::kOpen) return;
  }
  int keep_open = 0;
  if (protocol_.eof_received) loop_.invoke([&] { keep_open = protocol_.eof_received(c_stream(), userdata_); });
  if (state_ != State::kOpen) return;
  if (keep_open)
    update_io();  // half-closed: writing goes on
  else
    close();
}

void Stream::drop_tail() noexcept {
  util::mem_free(tail_);
  tail_ = nullptr;
  tail_len_ = tail_cap_ = 0;
}

// ---- writing ----------------------------------------------------------------

long Stream::send(const iovec *iov, int iovcnt) noexcept {
  for (;;) {
    ssize_t n;
    if (is_socket_ && iovcnt == 1) {
      n = ::send(fd_, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);  // cheaper than sendmsg
    } else if (is_socket_) {
      msghdr msg{};
      msg.msg_iov = const_cast<iovec *>(iov);
      msg.msg_iovlen = static_cast<std::size_t>(iovcnt);
      n = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
    } else {
      n = writev_no_sigpipe(fd_, iov, iovcnt);
    }
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    return util::from_errno(errno);
  }
}

int Stream::write(const iovec *iov, int iovcnt, async_release_fn done, void *done_userdata) noexcept {
  if (state_ != State::kOpen) return ASYNC_ECLOSED;
  if (eof_wanted_) return ASYNC_ESTATE;
  std::size_t total = 0;
  for (int i = 0; i < iovcnt; ++i) {
    if (iov[i].iov_len > SIZE_MAX - total) return ASYNC_EINVAL;
    total += iov[i].iov_len;
  }
  std::size_t sent = 0;
  if (total > 0 && !head_) {
    long n = send(iov, iovcnt);
    if (n < 0) {
      abort(static_cast<int>(n));  // reported through connection_lost
      if (done) done(done_userdata);
      return 0;
    }
    sent = static_cast<std::size_t>(n);
    if (sent) touch();
  }
  if (sent == total) {
    if (done) done(done_userdata);
    return 0;
  }
  if (!queue(iov, iovcnt, sent, done, done_userdata)) {
    abort(ASYNC_ENOMEM);
    return ASYNC_ENOMEM;
  }
  update_io();
  maybe_pause();
  return 0;
}

bool Stream::queue(const iovec *iov, int iovcnt, std::size_t skip, async_release_fn done,
                   void *done_userdata) noexcept {
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
  if (last_)
    last_->next = c;
  else
    head_ = c;
  last_ = c;
  queued_ += len;
  return true;
}

void Stream::write_some() noexcept {
  iovec iov[kWriteBatch];
  int n = 0;
  for (Chunk *c = head_; c && n < kWriteBatch; c = c->next) iov[n++] = {const_cast<std::uint8_t *>(c->data), c->len};
  long sent = send(iov, n);
  if (sent < 0) {
    abort(static_cast<int>(sent));
    return;
  }
  if (sent == 0) return;
  touch();
  auto left = static_cast<std::size_t>(sent);
  queued_ -= left;
  while (left > 0) {
    Chunk *c = head_;
    if (left < c->len) {
      c->data += left;
      c->len -= left;
      break;
    }
    left -= c->len;
    head_ = c->next;
    if (!head_) last_ = nullptr;
    if (c->done) c->done(c->done_userdata);
    util::mem_free(c);
  }
  after_drain();
}

void Stream::after_drain() noexcept {
  if (!maybe_resume()) return;
  if (!head_ && protocol_.write_drained) {
    loop_.invoke([&] { protocol_.write_drained(c_stream(), userdata_); });
    if (state_ == State::kLost) return;
  }
  if (!head_) {
    if (eof_wanted_ && !eof_sent_) shutdown_write();
    if (state_ == State::kClosing) {
      schedule_lost(0);
      return;
    }
  }
  update_io();
}

int Stream::write_eof() noexcept {
  if (state_ != State::kOpen) return ASYNC_ECLOSED;
  if (eof_wanted_) return 0;
  eof_wanted_ = true;
  if (!head_) shutdown_write();
  return 0;
}

void Stream::shutdown_write() noexcept {
  eof_sent_ = true;
  if (is_socket_)
    ::shutdown(fd_, SHUT_WR);
  else if (write_only_)
    close();  // a pipe's write end has nothing left to do
}

void Stream::drop_queue() noexcept {
  while (Chunk *c = head_) {
    head_ = c->next;
    if (c->done) c->done(c->done_userdata);
    util::mem_free(c);
  }
  last_ = nullptr;
  queued_ = 0;
}

}  // namespace async::core
