#include "net/server.hpp"

#include <async/error.h>
#include <async/loop.h>
#include <async/watcher.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/loop.hpp"
#include "net/layer.hpp"
#include "net/reader.hpp"
#include "net/socket.hpp"
#include "net/stream.hpp"
#include "util/address.hpp"
#include "util/alloc.hpp"
#include "util/clock.hpp"
#include "util/container_of.hpp"
#include "util/error_table.hpp"
#include "util/local_name.hpp"
#include "util/sys_error.hpp"

namespace async::net {

namespace {

// Connections taken per readiness event, so a flood cannot hold the loop.
constexpr int kAcceptsPerEvent = 64;

// The port of addr; 0 for a Unix address.
std::uint16_t port_of(const sockaddr_storage &addr) noexcept {
  int port = util::address_port(reinterpret_cast<const sockaddr *>(&addr), sizeof addr);
  return port > 0 ? static_cast<std::uint16_t>(port) : 0;
}

// A listening socket on addr, or a negative ASYNC_E* code.
int open_listener(const Server::Address &a, int backlog, std::uint32_t flags, bool v6only) noexcept {
  int fd = ::socket(a.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return util::from_errno(errno);
  int on = 1;
  bool ok = true;
  if (a.addr.ss_family != AF_UNIX) ok = ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) == 0;
  if (ok && (flags & ASYNC_LISTEN_REUSEPORT)) ok = ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) == 0;
  if (ok && a.addr.ss_family == AF_INET6 && v6only)
    ok = ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on) == 0;
  if (ok) ok = ::bind(fd, reinterpret_cast<const sockaddr *>(&a.addr), a.len) == 0;
  if (ok) ok = ::listen(fd, backlog) == 0;
  if (!ok) {
    int err = util::from_errno(errno);
    ::close(fd);
    return err;
  }
  return fd;
}

}  // namespace

Server::Server(Loop &loop, void *userdata, async_stream_factory factory) noexcept
    : Handle(handle_kind<Server>, loop, userdata), factory_(factory) {
  ev::Backend::timer_init(retry_, on_retry, this);
}

Server::~Server() {
  stop();
  // Streams still open outlive the server: the loop's registry keeps them.
  loop().registry(ASYNC_OBJECT_STREAM).splice(accepted_.list);
  util::mem_free(listeners_);
}

int Server::host_addresses(Address out[2], const char *host, std::uint16_t port) noexcept {
  if (!host || util::is_local_name(host)) {
    int probe = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe >= 0) ::close(probe);
    return static_cast<int>(util::local_addresses(out, probe >= 0 ? AF_UNSPEC : AF_INET, !host, port));
  }
  if (util::parse_numeric_host_checked(host, AF_UNSPEC, &out[0].addr, &out[0].len) != 1) return ASYNC_EINVAL;
  util::set_address_port(out[0].addr, port);
  return 1;
}

int Server::open(Server **out, Loop &loop, const Address *addrs, std::size_t count, int backlog, std::uint32_t flags,
                 async_stream_factory factory, void *userdata) noexcept {
  Server *s = Handle::create<Server>(loop, userdata, factory);
  if (!s) return ASYNC_ENOMEM;
  int err = s->listen(addrs, count, backlog > 0 ? backlog : kDefaultBacklog, flags);
  if (err) {
    Handle::discard(s);
    return err;
  }
  *out = s;
  return 0;
}

int Server::listen_tcp(Server **out, Loop &loop, const char *host, std::uint16_t port, int backlog, std::uint32_t flags,
                       async_stream_factory factory, void *userdata) noexcept {
  Address addrs[2];
  int n = host_addresses(addrs, host, port);
  if (n < 0) return n;
  return open(out, loop, addrs, static_cast<std::size_t>(n), backlog, flags, factory, userdata);
}

int Server::listen_addrinfo(Server **out, Loop &loop, const util::AddrInfo &list, int backlog, std::uint32_t flags,
                            async_stream_factory factory, void *userdata) noexcept {
  Address picked[kMaxAddresses];
  std::size_t n = 0;
  for (std::size_t i = 0; i < list.count() && n < kMaxAddresses; ++i) {
    const util::AddrInfo::Entry &e = list.entry(i);
    picked[n] = Address{};
    std::memcpy(&picked[n].addr, &e.addr, e.len);
    picked[n].len = e.len;
    ++n;
  }
  return open(out, loop, picked, n, backlog, flags, factory, userdata);
}

int Server::listen_unix(Server **out, Loop &loop, const char *path, int backlog, async_stream_factory factory,
                        void *userdata) noexcept {
  Address a{};
  int len = util::unix_address(&a.addr, path);
  if (len < 0) return len;
  a.len = static_cast<socklen_t>(len);
  return open(out, loop, &a, 1, backlog, 0, factory, userdata);
}

int Server::listen(const Address *addrs, std::size_t count, int backlog, std::uint32_t flags) noexcept {
  if (count == 0) return ASYNC_EINVAL;
  listeners_ = static_cast<Listener *>(util::mem_alloc(count * sizeof(Listener)));
  if (!listeners_) return ASYNC_ENOMEM;
  bool pick = false;
  for (std::size_t i = 0; i < count; ++i) pick |= port_of(addrs[i].addr) == 0;
  // A port picked on the first address may be taken on another one by an
  // unrelated socket: pick again.
  int err = bind_all(addrs, count, backlog, flags);
  for (int tries = 1; err == ASYNC_EADDRINUSE && pick && count > 1 && tries < kPickTries; ++tries)
    err = bind_all(addrs, count, backlog, flags);
  if (err) return err;
  set_accepting(true);
  set_active(true);
  return 0;
}

int Server::bind_all(const Address *addrs, std::size_t count, int backlog, std::uint32_t flags) noexcept {
  bool mixed = false;
  for (std::size_t i = 1; i < count; ++i) mixed |= addrs[i].addr.ss_family != addrs[0].addr.ss_family;
  std::uint16_t picked = 0;
  for (std::size_t i = 0; i < count; ++i) {
    // Port 0: the first bind picks one, the others take the same.
    Address a = addrs[i];
    if (port_of(a.addr) == 0) util::set_address_port(a.addr, picked);
    int fd = open_listener(a, backlog, flags, mixed || (flags & ASYNC_LISTEN_V6ONLY));
    if (fd < 0) {
      stop();
      return fd;
    }
    Listener &l = listeners_[count_++];
    l.owner = this;
    l.fd = fd;
    bool tcp = a.addr.ss_family != AF_UNIX;
    l.kind = tcp ? Stream::SocketKind::kTcp : Stream::SocketKind::kUnix;
    l.probe_nodelay = tcp && set_int_option(fd, IPPROTO_TCP, TCP_NODELAY, 1) == 0;
    ev::Backend::io_init_direct(l.io, fd, ASYNC_READABLE, on_accept);
    if (picked == 0 && port_of(a.addr) == 0) {
      sockaddr_storage bound{};
      socklen_t len = sizeof bound;
      if (::getsockname(fd, reinterpret_cast<sockaddr *>(&bound), &len) == 0) picked = port_of(bound);
    }
  }
  return 0;
}

void Server::stop() noexcept {
  // Now, not at the destruction an iteration later: a handshake ending in
  // between would reach the factory of a closed server.
  abort_upgrading();
  if (!listeners_) return;
  set_accepting(false);
  for (std::size_t i = 0; i < count_; ++i) ::close(listeners_[i].fd);
  count_ = 0;
  set_active(false);
}

void Server::set_accepting(bool on) noexcept {
  ev::Backend &backend = loop().backend();
  for (std::size_t i = 0; i < count_; ++i) on ? backend.io_start(listeners_[i].io) : backend.io_stop(listeners_[i].io);
  backend.timer_stop(retry_);
}

void Server::Listener::learn_nodelay(int accepted) noexcept {
  probe_nodelay = false;
  int on = 0;
  socklen_t len = sizeof on;
  if (::getsockopt(accepted, IPPROTO_TCP, TCP_NODELAY, &on, &len) == 0 && on) kind = Stream::SocketKind::kTcpNoDelay;
}

void Server::on_retry(void *self, std::uint32_t) noexcept { static_cast<Server *>(self)->set_accepting(true); }

void Server::on_accept(struct ev_loop *loop, struct ev_io *w, int revents) noexcept {
  Listener *l = util::container_of(&ev::Backend::io_slot(w), &Listener::io);
  Server *s = l->owner;
  if (ev::Backend::io_given_up(revents)) [[unlikely]] {
    // Stopped by libev: what is queued is still accepted below, and said.
    ev::Backend::io_killed(loop, w, revents);
    s->loop().log(ASYNC_LOG_ERROR, "libev gave up watching a listening socket; it accepts no more connections");
  }
  for (int i = 0; i < kAcceptsPerEvent && s->count_ > 0; ++i) {
    int fd = ::accept4(l->fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      if (l->probe_nodelay) [[unlikely]]
        l->learn_nodelay(fd);
      s->take(fd, l->kind);
      continue;
    }
    int err = errno;
    if (err == EAGAIN || err == EWOULDBLOCK) return;  // drained: the usual end, tested first
    if (err == EINTR || err == ECONNABORTED) continue;
    if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
      // The pending connection stays queued; polling for it now would spin.
      s->set_accepting(false);
      s->loop().backend().timer_start(s->retry_, util::ms_to_ns(kRetryMs));
      s->loop().log(ASYNC_LOG_WARNING, "accept: %s; pausing accepts for %llu ms", std::strerror(err),
                    static_cast<unsigned long long>(kRetryMs));
    }
    return;
  }
}

inline const async_stream_protocol *Server::protocol_for(async_stream_protocol &copied, void *&userdata) noexcept {
  const async_stream_protocol *protocol = nullptr;
  int rc = -1;
  loop().invoke([&] { rc = factory_(&protocol, &userdata, c_server(), this->userdata()); });
  if (rc < 0) return nullptr;
  // The callbacks of the previous connection, as factories usually
  // return, are taken as they are; others are copied and checked.
  const async_stream_protocol *kept = accepted_.protocols.match(protocol);
  if (!kept && !Stream::copy_protocol(copied, protocol)) {
    loop().log(ASYNC_LOG_ERROR, "stream factory returned an invalid protocol; connection closed");
    return nullptr;
  }
  const async_stream_protocol &callbacks = kept ? *kept : copied;
  if (int err = Reader::bind(callbacks, userdata)) {
    // Not ours to release: a reader serving another stream, or no reader.
    loop().log(ASYNC_LOG_ERROR, "stream factory returned a reader it cannot bind (%s); connection closed",
               util::error_message(err));
    return nullptr;
  }
  return &callbacks;
}

inline void Server::take(int fd, Stream::SocketKind kind) noexcept {
  if (upgrade_) {
    start_upgrade(fd, kind);
    return;
  }
  async_stream_protocol copied;
  void *protocol_userdata = nullptr;
  const async_stream_protocol *protocol = protocol_for(copied, protocol_userdata);
  if (!protocol) {
    ::close(fd);
    return;
  }
  const async_stream_protocol &callbacks = *protocol;
  int err = Stream::accept(loop(), fd, kind, callbacks, protocol_userdata, accepted_);
  if (err) {
    ::close(fd);
    if (callbacks.release) callbacks.release(protocol_userdata);
    loop().log(ASYNC_LOG_ERROR, "accepted connection dropped: %s", util::error_message(err));
  }
}

void Server::start_upgrade(int fd, Stream::SocketKind kind) noexcept {
  Stream *lower = nullptr;
  auto *u = util::make<Upgrading>();
  int err = u ? Stream::adopt_socket(&lower, loop(), fd, kind, Upgrade::kPlaceholder, nullptr, nullptr) : ASYNC_ENOMEM;
  if (err) {
    ::close(fd);
    util::destroy(u);
    loop().log(ASYNC_LOG_ERROR, "accepted connection dropped: %s", util::error_message(err));
    return;
  }
  u->server = this;
  u->lower = lower;
  upgrading_.push_back(u->node);  // on_upgraded() may run inside the start
  if ((err = upgrade_.start(*lower, nullptr, on_upgraded, u))) {
    u->node.unlink();
    util::destroy(u);
    lower->abort(err);
    loop().log(ASYNC_LOG_ERROR, "accepted connection dropped: %s", util::error_message(err));
  }
}

void Server::on_upgraded(void *upgrading, Layer *layer, int error) noexcept {
  auto *u = static_cast<Upgrading *>(upgrading);
  Server *s = u->server;
  Stream *lower = u->lower;
  u->node.unlink();
  util::destroy(u);
  if (error) {
    // The peer's doing (a failed or abandoned handshake): the connection
    // ends unseen by the factory, as a refused one.
    if (s) s->loop().log(ASYNC_LOG_INFO, "accepted connection's handshake failed: %s", util::error_message(error));
    return;
  }
  async_stream_protocol copied;
  void *userdata = nullptr;
  const async_stream_protocol *callbacks = s ? s->protocol_for(copied, userdata) : nullptr;
  if (!callbacks) {
    lower->abort(s ? 0 : ASYNC_ECANCELED);
    return;
  }
  Stream *upper = nullptr;
  if (int err = layer->open_upper(&upper, *callbacks, userdata, &s->accepted_.protocols)) {
    if (callbacks->release) callbacks->release(userdata);
    lower->abort(err);
    s->loop().log(ASYNC_LOG_ERROR, "accepted connection dropped: %s", util::error_message(err));
    return;
  }
  upper->list_node().unlink();
  s->accepted_.list.push_back(upper->list_node());
}

void Server::abort_upgrading() noexcept {
  while (upgrading_.front() != upgrading_.end()) {
    auto *u = util::container_of(upgrading_.front(), &Upgrading::node);
    u->node.unlink();
    u->server = nullptr;
    u->lower->abort(ASYNC_ECANCELED);  // on_upgraded() follows from the loop
  }
}

int Server::port() const noexcept {
  if (count_ == 0) return 0;
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  if (::getsockname(listeners_[0].fd, reinterpret_cast<sockaddr *>(&bound), &len) != 0) return ASYNC_EIO;
  return port_of(bound);
}

int Server::sockname(sockaddr *out, std::size_t capacity, std::size_t index) const noexcept {
  if (index >= count_) return ASYNC_ERANGE;
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  if (::getsockname(listeners_[index].fd, reinterpret_cast<sockaddr *>(&bound), &len) != 0) return ASYNC_EIO;
  if (len > capacity) return ASYNC_ERANGE;
  std::memcpy(out, &bound, len);
  return static_cast<int>(len);
}

std::size_t Server::connection_count() noexcept {
  std::size_t n = 0;
  for (util::ListNode *node = accepted_.list.front(); node != accepted_.list.end(); node = node->next)
    if (!Stream::from_list_node(node)->lost()) ++n;
  return n;
}

void Server::close_connections(bool abort) noexcept {
  abort_upgrading();  // no user has them yet: nothing to flush
  for (util::ListNode *node = accepted_.list.front(); node != accepted_.list.end(); node = node->next) {
    Stream *s = Stream::from_list_node(node);
    abort ? s->abort(0) : s->close();
  }
}

}  // namespace async::net
