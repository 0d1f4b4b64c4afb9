#include "net/connector.hpp"

#include <async/error.h>
#include <async/watcher.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/future.hpp"
#include "core/loop.hpp"
#include "dns/resolver.hpp"
#include "net/layer.hpp"
#include "net/reader.hpp"
#include "net/socket.hpp"
#include "net/stream.hpp"
#include "util/address.hpp"
#include "util/addrinfo.hpp"
#include "util/alloc.hpp"
#include "util/check.hpp"
#include "util/clock.hpp"
#include "util/local_name.hpp"
#include "util/sys_error.hpp"

namespace async::net {

namespace {

// RFC 8305's recommended delays, the defaults of async_connect_options.
constexpr std::uint32_t kResolutionDelayMs = 50;
constexpr std::uint32_t kAttemptDelayMs = 250;

// An option delay: 0 is the default, a negative value none.
std::uint64_t delay_ns(std::int32_t ms, std::uint32_t default_ms) noexcept {
  if (ms < 0) return 0;
  return util::ms_to_ns(ms == 0 ? default_ms : static_cast<std::uint32_t>(ms));
}

}  // namespace

Connector::Connector(Loop &loop) noexcept : loop_(loop) {
  ev::Backend::timer_init(timer_, on_timer, this);
  ev::Backend::timer_init(total_, on_total, this);
}

Connector::~Connector() { stop_work(); }

int Connector::create(Connector **out, Loop &loop, const async_stream_protocol &protocol, void *userdata) noexcept {
  // Bound until the release, by the stream made or by fail()/on_cancel().
  if (int err = Reader::bind(protocol, userdata)) return err;
  Connector *c = util::make<Connector>(loop);
  Future *future = c ? Future::create(loop) : nullptr;
  // One ready-queue slot for resolving the future after connection_made.
  bool reserved = future && loop.reserve_task();
  // The first step runs from the loop, never inside the user's call.
  int err = reserved ? loop.call_soon(kickoff, c) : ASYNC_ENOMEM;
  if (err) {
    if (reserved) loop.unreserve_task();
    if (future) future->release_owner();
    util::destroy(c);
    Reader::unbind(protocol, userdata);
    return err;
  }
  ++c->refs_;  // the kickoff task's
  c->protocol_ = protocol;
  c->userdata_ = userdata;
  future->set_cancel(on_cancel, c);
  c->future_ = future;
  c->working_ = true;
  loop.backend().ref();  // a connect in progress keeps the loop running
  *out = c;
  return 0;
}

int Connector::start(Future **out, Loop &loop, const char *host, std::uint16_t port,
                     const async_connect_options &options, const Upgrade &upgrade,
                     const async_stream_protocol &protocol, void *userdata) noexcept {
  std::size_t host_len = std::strlen(host);
  if (host_len == 0 || host_len >= sizeof Connector::host_) return ASYNC_EINVAL;
  const char *name = options.server_name ? options.server_name : host;
  std::size_t name_len = std::strlen(name);
  // A name without a layer to give it to is a mistake, not a default.
  if ((options.server_name && !upgrade) || name_len == 0 || name_len >= sizeof Connector::name_) return ASYNC_EINVAL;
  int family = options.family;
  if (family != AF_UNSPEC && family != AF_INET && family != AF_INET6) return ASYNC_EINVAL;
  Address local{};
  if (options.local_address) {
    int len =
        util::parse_address(reinterpret_cast<sockaddr *>(&local.addr), sizeof local.addr, options.local_address, 0);
    if (len < 0) return ASYNC_EINVAL;
    local.len = static_cast<socklen_t>(len);
  }
  if (!dns::Resolver::of(loop)) return ASYNC_ENOMEM;
  Connector *c = nullptr;
  int err = create(&c, loop, protocol, userdata);
  if (err) return err;
  std::memcpy(c->host_, host, host_len + 1);
  std::memcpy(c->name_, name, name_len + 1);
  c->upgrade_ = upgrade;
  c->port_ = port;
  c->family_ = family;
  c->happy_eyeballs_ = options.sequential == 0;
  c->resolution_delay_ns_ = delay_ns(options.resolution_delay_ms, kResolutionDelayMs);
  c->attempt_delay_ns_ = delay_ns(options.attempt_delay_ms, kAttemptDelayMs);
  c->attempt_timeout_ns_ = util::ms_to_ns(options.attempt_timeout_ms);
  c->dns_timeout_ns_ = util::ms_to_ns(options.dns_timeout_ms);
  c->has_local_ = options.local_address != nullptr;
  c->local_ = local;
  c->attempt_failed_ = options.attempt_failed;
  c->attempt_failed_userdata_ = options.attempt_failed_userdata;
  if (options.total_timeout_ms) loop.backend().timer_start(c->total_, util::ms_to_ns(options.total_timeout_ms));
  *out = c->future_;
  return 0;
}

int Connector::start_unix(Future **out, Loop &loop, const char *path, const async_stream_protocol &protocol,
                          void *userdata) noexcept {
  sockaddr_storage addr{};
  int len = util::unix_address(&addr, path);
  if (len < 0) return len;
  Connector *c = nullptr;
  int err = create(&c, loop, protocol, userdata);
  if (err) return err;
  // The one address, known already: kickoff goes straight to the attempt.
  c->v4_[0] = Address{addr, static_cast<socklen_t>(len)};
  c->n4_ = 1;
  *out = c->future_;
  return 0;
}

void Connector::release() noexcept {
  if (--refs_ == 0) util::destroy(this);
}

// ---- resolution -------------------------------------------------------------

void Connector::kickoff(async_loop *, void *self) noexcept {
  auto *c = static_cast<Connector *>(self);
  if (!c->finished_ && c->n4_ > 0) {
    c->try_next();  // a Unix path: nothing to resolve
  } else if (!c->finished_) {
    sockaddr_storage numeric{};
    socklen_t len = 0;
    int kind = util::parse_numeric_host_checked(c->host_, AF_UNSPEC, &numeric, &len);
    int err = kind < 0 ? kind : 0;
    if (kind == 1) {
      if (c->family_ != AF_UNSPEC && numeric.ss_family != c->family_) {
        err = ASYNC_ENODATA;
      } else {
        util::set_address_port(numeric, c->port_);
        c->add_address(reinterpret_cast<const sockaddr *>(&numeric), len);
      }
    } else if (util::is_local_name(c->host_)) {
      // Loopback, known without a lookup, as the listener and the resolver see it.
      SocketAddress local[2];
      std::size_t n = util::local_addresses(local, c->family_, false, c->port_);
      for (std::size_t i = 0; i < n; ++i)
        c->add_address(reinterpret_cast<const sockaddr *>(&local[i].addr), local[i].len);
    } else if (kind == 0) {
      // AAAA and A are asked separately, with or without Happy Eyeballs, so
      // a slow family cannot hold the other back (c-ares 1.18 waits for
      // both on AF_UNSPEC, up to its whole timeout).
      bool split = c->family_ == AF_UNSPEC;
      err = c->lookup(split ? AF_INET6 : c->family_);
      if (!err && split) err = c->lookup(AF_INET);
      if (c->dns_timeout_ns_) c->dns_deadline_ns_ = util::monotonic_ns() + c->dns_timeout_ns_;
    }
    if (err)
      c->fail(err);
    else
      c->try_next();
  }
  c->release();
}

int Connector::lookup(int family) noexcept {
  char service[8];
  std::snprintf(service, sizeof service, "%u", port_);
  Future *f = nullptr;
  int err = dns::Resolver::of(loop_)->getaddrinfo(&f, host_, service, family, SOCK_STREAM, 0);
  if (err) return err;
  f->make_internal();
  err = f->add_callback(on_lookup, this);
  if (err) {
    f->release_owner();
    return err;
  }
  lookups_[family == AF_INET ? 1 : 0] = f;
  ++refs_;  // the callback's
  return 0;
}

void Connector::on_lookup(async_future *future, int status, void *self) noexcept {
  auto *c = static_cast<Connector *>(self);
  Future *f = Future::from(future);
  int slot = f == c->lookups_[0] ? 0 : f == c->lookups_[1] ? 1 : -1;
  if (slot >= 0) {
    // Still ours (not cancelled by stop_work): read it, then free it.
    c->lookups_[slot] = nullptr;
    if (status == 0)
      c->add_addresses(f->value());
    else if (!c->first_error_)
      c->first_error_ = status;
    f->release_owner();
    if (slot == 1 && c->lookups_[0] && c->n4_ > 0) c->v4_ready_ns_ = util::monotonic_ns();  // RFC 8305 §3
    if (slot == 0) c->v4_ready_ns_ = 0;
    c->try_next();
  }
  c->release();
}

void Connector::add_addresses(const void *value) noexcept {
  const auto *list = static_cast<const util::AddrInfo *>(value);
  for (std::size_t i = 0; i < list->count(); ++i) {
    const util::AddrInfo::Entry &e = list->entry(i);
    add_address(&e.addr.sa, e.len);
  }
}

void Connector::add_address(const sockaddr *addr, socklen_t len) noexcept {
  bool v6 = addr->sa_family == AF_INET6;
  std::size_t &n = v6 ? n6_ : n4_;
  if (n == kMaxAddresses) return;
  Address &a = (v6 ? v6_ : v4_)[n++];
  std::memcpy(&a.addr, addr, len);
  a.len = len;
}

// ---- attempts -------------------------------------------------------------

bool Connector::may_start(std::uint64_t now) const noexcept {
  if (!addresses_left() || active_ == kMaxAttempts) return false;
  if (active_ > 0 && (!happy_eyeballs_ || now < last_start_ns_ + attempt_delay_ns_)) return false;
  // Only A answers while AAAA is pending: give AAAA the resolution delay.
  bool only_v4 = used6_ == n6_;
  return !(lookups_[0] && only_v4 && (!v4_ready_ns_ || now < v4_ready_ns_ + resolution_delay_ns_));
}

const Connector::Address &Connector::next_address() noexcept {
  // Happy Eyeballs alternates families, IPv6 first (RFC 8305 §4); one
  // attempt at a time takes the resolver's order, every IPv6 address first.
  bool take_v6 = used6_ < n6_ && (!happy_eyeballs_ || !last_was_v6_ || used4_ == n4_);
  last_was_v6_ = take_v6;
  return take_v6 ? v6_[used6_++] : v4_[used4_++];
}

void Connector::try_next() noexcept {
  std::uint64_t now = util::monotonic_ns();
  while (!finished_ && may_start(now)) {
    start_attempt(next_address());
    now = util::monotonic_ns();
  }
  if (finished_) return;
  if (active_ == 0 && !addresses_left() && !lookups_pending()) {
    fail(first_error_ ? first_error_ : ASYNC_ENOTFOUND);
    return;
  }
  rearm(now);
}

void Connector::start_attempt(const Address &address) noexcept {
  if (has_local_ && local_.addr.ss_family != address.addr.ss_family) {
    report(address, ASYNC_EADDRNOTAVAIL);  // the local address cannot reach this family
    return;
  }
  int fd = ::socket(address.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    report(address, util::from_errno(errno));
    return;
  }
  if ((has_local_ && ::bind(fd, reinterpret_cast<const sockaddr *>(&local_.addr), local_.len) != 0) ||
      (::connect(fd, reinterpret_cast<const sockaddr *>(&address.addr), address.len) != 0 && errno != EINPROGRESS)) {
    int err = peer_error(errno);  // no socket file at a Unix path: nothing listens there
    ::close(fd);
    report(address, err);
    return;
  }
  Attempt *a = attempts_;
  while (a->fd >= 0) util::check(++a != attempts_ + kMaxAttempts);  // may_start() checked there is a free one
  a->owner = this;
  a->fd = fd;
  a->address = address;
  std::uint64_t now = util::monotonic_ns();
  a->deadline_ns = attempt_timeout_ns_ ? now + attempt_timeout_ns_ : UINT64_MAX;
  ev::Backend::io_init(a->io, fd, ASYNC_WRITABLE, on_attempt, a);
  loop_.backend().io_start(a->io);
  ++active_;
  last_start_ns_ = now;
}

void Connector::on_attempt(void *attempt, std::uint32_t) noexcept {
  auto *a = static_cast<Attempt *>(attempt);
  Connector *c = a->owner;
  ++c->refs_;  // attempt_failed (user code) may cancel the future
  c->on_connected_or_failed(*a);
  c->release();
}

void Connector::on_connected_or_failed(Attempt &attempt) noexcept {
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(attempt.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err == 0) {
    win(attempt);
    return;
  }
  attempt_failed(attempt, util::from_errno(err));
  try_next();  // RFC 8305 §5: the next attempt starts at once
}

void Connector::attempt_failed(Attempt &attempt, int error) noexcept {
  Address address = attempt.address;
  close_attempt(attempt);
  report(address, error);
}

void Connector::report(const Address &address, int error) noexcept {
  if (!first_error_) first_error_ = error;
  if (attempt_failed_)
    loop_.invoke([&] {
      attempt_failed_(reinterpret_cast<const sockaddr *>(&address.addr), address.len, error, attempt_failed_userdata_);
    });
}

void Connector::close_attempt(Attempt &attempt) noexcept {
  if (attempt.fd < 0) return;
  loop_.backend().io_stop(attempt.io);
  ::close(attempt.fd);
  attempt.fd = -1;
  --active_;
}

void Connector::on_timer(void *self, std::uint32_t) noexcept {
  auto *c = static_cast<Connector *>(self);
  ++c->refs_;  // attempt_failed (user code) may cancel the future
  std::uint64_t now = util::monotonic_ns();
  for (Attempt &a : c->attempts_)
    if (a.fd >= 0 && a.deadline_ns <= now) c->attempt_failed(a, ASYNC_ETIMEDOUT);
  if (c->lookups_pending() && c->dns_deadline_ns_ && c->dns_deadline_ns_ <= now) {
    c->cancel_lookups();  // what answered so far is all there is
    if (!c->first_error_) c->first_error_ = ASYNC_ETIMEDOUT;
  }
  c->try_next();
  c->release();
}

void Connector::on_total(void *self, std::uint32_t) noexcept { static_cast<Connector *>(self)->fail(ASYNC_ETIMEDOUT); }

void Connector::rearm(std::uint64_t now) noexcept {
  std::uint64_t next = UINT64_MAX;
  for (const Attempt &a : attempts_)
    if (a.fd >= 0 && a.deadline_ns < next) next = a.deadline_ns;  // a past one: on_timer ends it
  // The delays wake us only while they are ahead of now (when may_start()
  // said no): once over, what still waits waits for something else (an
  // answer, a free attempt slot), and a wake-up in the past would spin the
  // loop until then.
  std::uint64_t stagger_end = last_start_ns_ + attempt_delay_ns_;
  if (happy_eyeballs_ && active_ > 0 && addresses_left() && now < stagger_end && stagger_end < next) next = stagger_end;
  std::uint64_t resolution_end = v4_ready_ns_ + resolution_delay_ns_;
  if (lookups_[0] && v4_ready_ns_ && now < resolution_end && resolution_end < next) next = resolution_end;
  if (lookups_pending() && dns_deadline_ns_ && dns_deadline_ns_ < next) next = dns_deadline_ns_;
  if (next == UINT64_MAX) {
    loop_.backend().timer_stop(timer_);
    return;
  }
  loop_.backend().timer_start(timer_, next > now ? next - now : 0);
}

// ---- outcome ----------------------------------------------------------------

void Connector::cancel_lookups() noexcept {
  for (Future *&f : lookups_) {
    if (!f) continue;
    Future *lookup = f;
    f = nullptr;
    lookup->release_owner();  // cancels it; on_lookup still runs (it holds a ref)
  }
}

void Connector::stop_work() noexcept {
  for (Attempt &a : attempts_) close_attempt(a);
  cancel_lookups();
  loop_.backend().timer_stop(timer_);
  loop_.backend().timer_stop(total_);
  if (working_) {
    working_ = false;
    loop_.backend().unref();
  }
}

void Connector::win(Attempt &attempt) noexcept {
  int fd = attempt.fd;
  auto kind = attempt.address.addr.ss_family != AF_UNIX ? Stream::SocketKind::kTcp : Stream::SocketKind::kUnix;
  loop_.backend().io_stop(attempt.io);
  attempt.fd = -1;
  --active_;
  finished_ = true;
  stop_work();  // the losing attempts and lookups
  Stream *stream = nullptr;
  // Made by start_attempt() non-blocking and close-on-exec: nothing to probe.
  int err = upgrade_ ? Stream::adopt_socket(&stream, loop_, fd, kind, Upgrade::kPlaceholder, nullptr, nullptr)
                     : Stream::adopt_socket(&stream, loop_, fd, kind, protocol_, userdata_, nullptr);
  if (err) {
    ::close(fd);
    fail(err);
    return;
  }
  if (!upgrade_) {
    stream_ = stream;
    // Queued behind the stream's connection_made; keeps the outcome's ref.
    loop_.push_reserved(core::Task{resolve_after_made, this});
    return;
  }
  // The user's stream goes on top once the layer is ready (on_upgraded(),
  // which keeps the outcome's ref).
  upgrading_ = stream;  // on_upgraded() may run inside the start
  if ((err = upgrade_.start(*stream, name_, on_upgraded, this))) {
    upgrading_ = nullptr;
    stream->abort(err);
    fail(err);
  }
}

void Connector::on_upgraded(void *self, Layer *layer, int error) noexcept {
  auto *c = static_cast<Connector *>(self);
  Stream *lower = c->upgrading_;
  c->upgrading_ = nullptr;
  if (!error && !c->future_) error = ASYNC_ECANCELED;  // cancelled as it got ready
  Stream *upper = nullptr;
  if (!error) error = layer->open_upper(&upper, c->protocol_, c->userdata_);
  if (error) {
    if (layer) lower->abort(error);
    c->fail(error);  // after a cancel: the release alone
    return;
  }
  c->stream_ = upper;
  c->loop_.push_reserved(core::Task{resolve_after_made, c});
}

void Connector::resolve_after_made(async_loop *, void *self) noexcept {
  auto *c = static_cast<Connector *>(self);
  Stream *stream = c->stream_;
  c->stream_ = nullptr;
  if (Future *future = c->future_) {
    if (stream->lost()) {
      future->reject(ASYNC_ECLOSED);  // connection_made closed it already
    } else {
      // The value is a reference (stream.h's lifetime rule): the stream's
      // memory stays as long as the future's.
      stream->retain_as_value();
      future->resolve(stream->c_stream(), Stream::release_value, nullptr);
    }
  }
  c->release();
}

void Connector::fail(int error) noexcept {
  if (!finished_) {
    finished_ = true;
    stop_work();
  }
  loop_.unreserve_task();
  if (future_) future_->reject(error);  // forgets future_ through on_cancel(0)
  if (protocol_.release) protocol_.release(userdata_);
  release();
}

void Connector::on_cancel(async_future *, int cancelled, void *self) noexcept {
  auto *c = static_cast<Connector *>(self);
  c->future_ = nullptr;
  if (!cancelled) return;  // fail() or resolve_after_made() is completing it
  if (c->stream_) {
    c->stream_->abort(ASYNC_ECANCELED);  // connected already: it ends through connection_lost
    return;
  }
  if (c->upgrading_) {
    c->upgrading_->abort(ASYNC_ECANCELED);  // the layer fails and on_upgraded() releases
    return;
  }
  c->finished_ = true;
  c->stop_work();
  // The release is not needed inside async_future_cancel()/free(): it runs
  // from the ready queue (before the future's done callbacks), in the slot
  // reserved for resolving the future.
  c->loop_.push_reserved(core::Task{release_cancelled, c});
}

void Connector::release_cancelled(async_loop *, void *self) noexcept {
  auto *c = static_cast<Connector *>(self);
  if (c->protocol_.release) c->protocol_.release(c->userdata_);
  c->release();
}

}  // namespace async::net
