#include "net/datagram.hpp"

#include <async/error.h>
#include <async/watcher.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>
#include <string_view>

#include "core/loop.hpp"
#include "util/alloc.hpp"
#include "util/container_of.hpp"
#include "util/sized_struct.hpp"
#include "util/sys_error.hpp"

namespace async::net {

// A queued datagram (payload copied behind the header), a received one
// held back, or an error to report (error != 0, no payload).
struct Datagram::Entry {
  Entry *next = nullptr;
  int error = 0;
  socklen_t addrlen = 0;
  std::size_t len = 0;
  sockaddr_storage addr{};

  const std::uint8_t *data() const noexcept { return reinterpret_cast<const std::uint8_t *>(this + 1); }
  const sockaddr *name() const noexcept { return addrlen ? reinterpret_cast<const sockaddr *>(&addr) : nullptr; }

  // nullptr when out of memory.
  static Entry *make(const void *data, std::size_t len, const void *addr, socklen_t addrlen, int error) noexcept {
    if (len > SIZE_MAX - sizeof(Entry)) return nullptr;
    void *p = util::mem_alloc(sizeof(Entry) + len);
    if (!p) return nullptr;
    auto *e = new (p) Entry();
    e->error = error;
    e->len = len;
    e->addrlen = addrlen;
    if (addrlen) std::memcpy(&e->addr, addr, addrlen);
    if (len) std::memcpy(e + 1, data, len);
    return e;
  }
};

namespace {

// Datagrams received per readiness event, so a flood cannot hold the loop.
constexpr int kReceivesPerEvent = 64;
// Queued datagrams gathered into one sendmmsg(), and calls per event.
constexpr unsigned kSendBatch = 64;
constexpr int kSendCallsPerEvent = 4;

constexpr int kSlots = static_cast<int>(Loop::kDatagramSlots);

// The name an AF_UNIX address gives: a path up to its terminator, or an
// abstract name (leading NUL) with all its bytes.
std::string_view unix_name(const sockaddr *addr, std::size_t addrlen) noexcept {
  constexpr std::size_t kPath = offsetof(sockaddr_un, sun_path);
  if (addrlen <= kPath) return {};
  const char *path = reinterpret_cast<const sockaddr_un *>(addr)->sun_path;
  std::size_t n = addrlen - kPath;
  return {path, path[0] ? strnlen(path, n) : n};
}

}  // namespace

void Datagram::Queue::clear() noexcept {
  while (Entry *e = pop()) util::mem_free(e);
}

bool Datagram::copy_protocol(async_datagram_protocol &out, const async_datagram_protocol *p) noexcept {
  return p && util::copy_sized(out, p) == 0 && out.datagram_received && out.connection_lost;
}

Datagram::Datagram(Loop &loop, int fd) noexcept : loop_(&loop), fd_(fd) {}

Datagram *Datagram::from_registry_node(util::ListNode *node) noexcept {
  return util::container_of(node, &Datagram::registry_node_);
}

Datagram::~Datagram() {
  mark_dead();
  registry_node_.unlink();
  out_.clear();
  errors_.clear();
  held_.clear();
}

int Datagram::adopt(Datagram **out, Loop &loop, int fd, const async_datagram_protocol &protocol,
                    void *userdata) noexcept {
  if (fd < 0 || ::fcntl(fd, F_GETFD) < 0) return ASYNC_EBADF;
  int type = 0;
  int family = AF_UNSPEC;
  socklen_t len = sizeof type;
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) return ASYNC_EINVAL;  // not a socket
  if (type != SOCK_DGRAM && type != SOCK_RAW) return ASYNC_EINVAL;
  len = sizeof family;
  if (::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &family, &len) != 0) return ASYNC_EINVAL;
  // Only these families have peers the library can compare: others (a
  // netlink socket's "peer" is always the kernel) take any destination.
  SocketAddress peer;
  peer.len = sizeof peer.addr;
  bool connected = (family == AF_INET || family == AF_INET6 || family == AF_UNIX) &&
                   ::getpeername(fd, reinterpret_cast<sockaddr *>(&peer.addr), &peer.len) == 0;
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) return ASYNC_EBADF;

  // Everything that can fail comes before the fd is touched.
  if (!loop.datagram_buffer() || !loop.reserve_tasks(2)) return ASYNC_ENOMEM;
  Datagram *d = util::make<Datagram>(loop, fd);
  if (!d) {
    loop.unreserve_task(2);
    return ASYNC_ENOMEM;
  }
  ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  d->family_ = family;
  d->connected_ = connected;
  if (connected) d->peer_ = peer;
  d->protocol_ = protocol;
  d->userdata_ = userdata;
  ev::Backend::io_init(d->io_, fd, 0, on_io, d);
  ev::Backend::timer_init(d->kick_, on_kick, d);
  loop.registry(ASYNC_OBJECT_DATAGRAM).push_back(d->registry_node_);
  loop.transport_opened(run_made, d);
  *out = d;
  return 0;
}

// ---- connection callbacks -----------------------------------------------

void Datagram::after_made() noexcept {
  if (state_ == State::kLost) return;
  if (!errors_.empty()) kick();  // send errors from before connection_made
  update_io();                   // receiving and queued sends start only now
}

void Datagram::schedule_lost(int error) noexcept {
  state_ = State::kLost;
  lost_error_ = error;
  held_.clear();
  loop_->backend().io_stop(io_);
  loop_->backend().timer_stop(kick_);
  loop_->push_reserved(core::Task{run_lost, this});
}

void Datagram::run_lost(async_loop *, void *self) noexcept {
  auto *d = static_cast<Datagram *>(self);
  d->flush_errors();           // what close() left to report comes before the end
  d->registry_node_.unlink();  // walk no longer sees it
  d->end();
}

void Datagram::drop_queued() noexcept {
  out_.clear();
  errors_.clear();
  queued_ = 0;
}

// ---- readiness ------------------------------------------------------------

bool Datagram::is_reading() const noexcept { return made_ && !paused_ && state_ == State::kOpen; }

void Datagram::update_io() noexcept {
  if (!made_ || state_ == State::kLost) return;
  // Held datagrams go first: the socket waits until they are delivered.
  std::uint32_t events = (is_reading() && held_.empty() ? ASYNC_READABLE : 0u) | (out_.empty() ? 0u : ASYNC_WRITABLE);
  loop_->backend().io_watch(io_, events);
}

void Datagram::on_io(void *self, std::uint32_t revents) noexcept {
  auto *d = static_cast<Datagram *>(self);
  if (revents & ASYNC_READABLE) d->receive();
  if ((revents & ASYNC_WRITABLE) && d->state_ != State::kLost && !d->out_.empty()) d->send_queued();
}

void Datagram::kick() noexcept { loop_->backend().timer_start(kick_, 0); }

void Datagram::on_kick(void *self, std::uint32_t) noexcept {
  auto *d = static_cast<Datagram *>(self);
  d->loop_->backend().timer_stop(d->kick_);
  d->flush_errors();
  d->deliver_held();
}

void Datagram::pause_reading() noexcept {
  paused_ = true;
  update_io();
}

void Datagram::resume_reading() noexcept {
  paused_ = false;
  if (!held_.empty() && is_reading()) kick();
  update_io();
}

// ---- errors -----------------------------------------------------------------

int Datagram::socket_error(int err) noexcept {
  if (err == EBADF || err == ENOTSOCK) {
    abort(ASYNC_EBADF);  // the fd is gone: nothing more can work
    return ASYNC_EBADF;
  }
  return family_ == AF_UNIX ? peer_error(err) : util::from_errno(err);
}

int Datagram::defer_error(int error) noexcept {
  if (!protocol_.error_received || state_ == State::kLost) return 0;
  Entry *e = Entry::make(nullptr, 0, nullptr, 0, error);
  if (!e) return ASYNC_ENOMEM;
  errors_.push(e);
  if (made_) kick();
  return 0;
}

void Datagram::report(int error) noexcept {
  flush_errors();
  if (protocol_.error_received && state_ != State::kLost)
    loop_->invoke([&] { protocol_.error_received(c_datagram(), error, userdata_); });
}

void Datagram::flush_errors() noexcept {
  // abort() inside error_received empties the queue: the loop ends there.
  while (Entry *e = errors_.pop()) {
    int error = e->error;
    util::mem_free(e);
    loop_->invoke([&] { protocol_.error_received(c_datagram(), error, userdata_); });
  }
}

// ---- receiving ----------------------------------------------------------------

void Datagram::receive() noexcept {
  std::uint8_t *block = loop_->datagram_buffer();  // allocated by adopt()
  mmsghdr msgs[kSlots];
  iovec iov[kSlots];
  sockaddr_storage names[kSlots];
  for (int budget = kReceivesPerEvent; budget > 0 && is_reading() && held_.empty();) {
    int want = budget < kSlots ? budget : kSlots;
    for (int i = 0; i < want; ++i) {
      iov[i] = {block + static_cast<std::size_t>(i) * Loop::kDatagramSlotSize, Loop::kDatagramSlotSize};
      msgs[i].msg_hdr = msghdr{};
      msgs[i].msg_hdr.msg_name = &names[i];
      msgs[i].msg_hdr.msg_namelen = sizeof names[i];
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int got = ::recvmmsg(fd_, msgs, static_cast<unsigned>(want), 0, nullptr);
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      int error = socket_error(errno);
      if (state_ == State::kOpen) report(error);  // an ICMP error, a netlink overrun, ...
      return;                                     // one per event: a lasting error cannot hold the loop
    }
    budget -= got;
    for (int i = 0; i < got; ++i) {
      if (!is_reading()) {
        // Paused inside a callback: the rest of the batch waits, in order.
        if (state_ == State::kOpen) hold(msgs + i, got - i);
        return;
      }
      const msghdr &h = msgs[i].msg_hdr;
      deliver(static_cast<const std::uint8_t *>(h.msg_iov->iov_base), msgs[i].msg_len, names[i], h.msg_namelen,
              (h.msg_flags & MSG_TRUNC) != 0);
    }
    if (got < want) return;  // drained: skip the EAGAIN call
  }
}

void Datagram::deliver(const std::uint8_t *data, std::size_t len, const sockaddr_storage &addr, socklen_t addrlen,
                       bool truncated) noexcept {
  if (truncated) {
    report(ASYNC_EMSGSIZE);  // never a cut datagram as if it were whole
    return;
  }
  const sockaddr *name = addrlen ? reinterpret_cast<const sockaddr *>(&addr) : nullptr;
  loop_->invoke([&] { protocol_.datagram_received(c_datagram(), data, len, name, addrlen, userdata_); });
}

void Datagram::deliver(const Entry &held) noexcept {
  deliver(held.data(), held.len, held.addr, held.addrlen, held.error != 0);
}

void Datagram::hold(const mmsghdr *msgs, int count) noexcept {
  for (int i = 0; i < count; ++i) {
    const msghdr &h = msgs[i].msg_hdr;
    bool truncated = (h.msg_flags & MSG_TRUNC) != 0;
    Entry *e = Entry::make(h.msg_iov->iov_base, truncated ? 0 : msgs[i].msg_len, h.msg_name, h.msg_namelen,
                           truncated ? ASYNC_EMSGSIZE : 0);
    if (!e) {
      report(ASYNC_ENOMEM);  // the rest of the batch is lost: say so
      return;
    }
    held_.push(e);
  }
}

void Datagram::deliver_held() noexcept {
  while (is_reading() && !held_.empty()) {
    Entry *e = held_.pop();
    deliver(*e);
    util::mem_free(e);
  }
  update_io();
}

// ---- sending ------------------------------------------------------------------

bool Datagram::is_peer(const sockaddr *addr, std::size_t addrlen) const noexcept {
  const auto *peer = reinterpret_cast<const sockaddr *>(&peer_.addr);
  if (family_ == AF_UNIX) return unix_name(addr, addrlen) == unix_name(peer, peer_.len);
  if (family_ == AF_INET) {
    const auto &a = *reinterpret_cast<const sockaddr_in *>(addr);
    const auto &p = *reinterpret_cast<const sockaddr_in *>(peer);
    return a.sin_port == p.sin_port && a.sin_addr.s_addr == p.sin_addr.s_addr;
  }
  const auto &a = *reinterpret_cast<const sockaddr_in6 *>(addr);
  const auto &p = *reinterpret_cast<const sockaddr_in6 *>(peer);
  return a.sin6_port == p.sin6_port && IN6_ARE_ADDR_EQUAL(&a.sin6_addr, &p.sin6_addr) &&
         (a.sin6_scope_id == 0 || a.sin6_scope_id == p.sin6_scope_id);
}

int Datagram::check_destination(const sockaddr *addr, std::size_t addrlen) const noexcept {
  bool addressed = family_ == AF_INET || family_ == AF_INET6 || family_ == AF_UNIX;
  if (!addr) return connected_ || !addressed ? 0 : ASYNC_EINVAL;
  if (addrlen < sizeof(sa_family_t) || addrlen > sizeof(sockaddr_storage) || addr->sa_family != family_)
    return ASYNC_EINVAL;
  std::size_t need = family_ == AF_INET    ? sizeof(sockaddr_in)
                     : family_ == AF_INET6 ? sizeof(sockaddr_in6)
                     : family_ == AF_UNIX  ? offsetof(sockaddr_un, sun_path) + 1
                                           : sizeof(sa_family_t);
  if (addrlen < need) return ASYNC_EINVAL;
  return connected_ && !is_peer(addr, addrlen) ? ASYNC_EINVAL : 0;
}

int Datagram::send_now(const void *data, std::size_t len, const sockaddr *addr, socklen_t addrlen) noexcept {
  for (;;) {
    ssize_t n = addr ? ::sendto(fd_, data, len, MSG_NOSIGNAL, addr, addrlen) : ::send(fd_, data, len, MSG_NOSIGNAL);
    if (n >= 0) return 1;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    return socket_error(errno);
  }
}

int Datagram::send(const void *data, std::size_t len, const sockaddr *addr, std::size_t addrlen) noexcept {
  if (state_ != State::kOpen) return ASYNC_ECLOSED;
  int err = check_destination(addr, addrlen);
  if (err) return err;
  if (connected_) addr = nullptr;  // the peer's own address: send() is enough
  auto namelen = static_cast<socklen_t>(addr ? addrlen : 0);
  if (out_.empty()) {
    int sent = send_now(data, len, addr, namelen);
    if (sent > 0) return 0;
    if (sent < 0) return state_ == State::kLost ? 0 : defer_error(sent);  // dropped; lost or reported later
  }
  Entry *e = Entry::make(data, len, addr, namelen, 0);
  if (!e) return ASYNC_ENOMEM;
  out_.push(e);
  queued_ += len;
  update_io();
  maybe_pause();
  return 0;
}

void Datagram::send_queued() noexcept {
  mmsghdr msgs[kSendBatch];
  iovec iov[kSendBatch];
  for (int call = 0; call < kSendCallsPerEvent && !out_.empty(); ++call) {
    unsigned n = 0;
    for (Entry *e = out_.front(); e && n < kSendBatch; e = e->next, ++n) {
      iov[n] = {const_cast<std::uint8_t *>(e->data()), e->len};
      msgs[n].msg_hdr = msghdr{};
      msgs[n].msg_hdr.msg_name = const_cast<sockaddr *>(e->name());
      msgs[n].msg_hdr.msg_namelen = e->addrlen;
      msgs[n].msg_hdr.msg_iov = &iov[n];
      msgs[n].msg_hdr.msg_iovlen = 1;
    }
    int sent = ::sendmmsg(fd_, msgs, n, MSG_NOSIGNAL);
    if (sent < 0 && errno == EINTR) continue;
    if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    // A refused datagram (the first one) is dropped and reported.
    int failed = sent < 0 ? socket_error(errno) : 0;
    if (state_ == State::kLost) return;
    for (int i = 0; i < (sent < 0 ? 1 : sent); ++i) {
      Entry *e = out_.pop();
      queued_ -= e->len;
      util::mem_free(e);
    }
    if (failed) {
      report(failed);
      if (state_ == State::kLost) return;
    }
  }
  after_drain();
}

void Datagram::after_drain() noexcept {
  if (!maybe_resume()) return;
  if (out_.empty() && state_ == State::kClosing) {
    schedule_lost(0);
    return;
  }
  update_io();
}

}  // namespace async::net
