#include "net/socks5.hpp"

#include <arpa/inet.h>
#include <async/error.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>

#include "core/future.hpp"
#include "core/loop.hpp"
#include "net/reader.hpp"
#include "net/stream.hpp"
#include "net/tunnel.hpp"
#include "util/alloc.hpp"

namespace async::net {

namespace {

// RFC 1928 and RFC 1929 constants.
constexpr std::uint8_t kVersion = 5;
constexpr std::uint8_t kAuthVersion = 1;
constexpr std::uint8_t kNoAuth = 0x00;
constexpr std::uint8_t kUserPass = 0x02;
constexpr std::uint8_t kNoAcceptable = 0xFF;
constexpr std::uint8_t kConnect = 1;
constexpr std::uint8_t kIPv4 = 1;
constexpr std::uint8_t kName = 3;
constexpr std::uint8_t kIPv6 = 4;
constexpr std::size_t kMaxField = 255;  // a name, a username, a password

// A reply's REP field as an error code.
int reply_error(std::uint8_t rep) noexcept {
  switch (rep) {
    case 0x02: return ASYNC_EACCES;  // not allowed by the ruleset
    case 0x03: return ASYNC_ENETUNREACH;
    case 0x04: return ASYNC_EHOSTUNREACH;
    case 0x05: return ASYNC_ECONNREFUSED;
    case 0x06: return ASYNC_ETIMEDOUT;  // TTL expired
    case 0x07:                          // command not supported
    case 0x08:                          // address type not supported
      return ASYNC_ENOTSUP;
    default: return ASYNC_EPROTO;  // 0x01, general failure, and codes RFC 1928 does not define
  }
}

void put_port(std::uint8_t *at, std::uint16_t port) noexcept {
  at[0] = static_cast<std::uint8_t>(port >> 8);
  at[1] = static_cast<std::uint8_t>(port & 0xFF);
}

}  // namespace

// Each reply is parsed again with the bytes after it at once; a push inside
// on_data takes effect for those bytes (the tunnel gets them).
const async_stream_protocol Socks5::kHandshakeProtocol = {
    sizeof(async_stream_protocol), nullptr, on_data, on_eof, on_lost, nullptr, nullptr, nullptr, on_release,
    ASYNC_STREAM_DELIVER_EACH,     nullptr,
};

Socks5::Socks5(Loop &loop) noexcept : loop_(loop) {
  greeting_[0] = kVersion;
  request_[0] = kVersion;
  request_[1] = kConnect;
  request_[2] = 0;  // reserved
}

int Socks5::start(Future **out, Stream &lower, const char *host, std::uint16_t port, const Credentials &credentials,
                  const async_stream_protocol &protocol, void *userdata) noexcept {
  std::size_t host_len = std::strlen(host);
  if (host_len == 0 || host_len > kMaxField) return ASYNC_EINVAL;
  auto *s = util::make<Socks5>(lower.loop());
  if (!s) return ASYNC_ENOMEM;
  s->set_target(host, port);
  if (!s->set_credentials(credentials)) {
    util::destroy(s);
    return ASYNC_EINVAL;
  }
  return s->begin(out, lower, protocol, userdata);
}

int Socks5::start_addr(Future **out, Stream &lower, const sockaddr *addr, std::size_t addrlen,
                       const Credentials &credentials, const async_stream_protocol &protocol, void *userdata) noexcept {
  auto *s = util::make<Socks5>(lower.loop());
  if (!s) return ASYNC_ENOMEM;
  if (!s->set_target(addr, addrlen) || !s->set_credentials(credentials)) {
    util::destroy(s);
    return ASYNC_EINVAL;
  }
  return s->begin(out, lower, protocol, userdata);
}

void Socks5::set_target(const char *host, std::uint16_t port) noexcept {
  std::uint8_t *at = request_ + 3;
  // A numeric host goes as an address: the proxy need not parse it as a name.
  if (inet_pton(AF_INET, host, at + 1) == 1) {
    *at = kIPv4;
    at += 1 + 4;
  } else if (inet_pton(AF_INET6, host, at + 1) == 1) {
    *at = kIPv6;
    at += 1 + 16;
  } else {
    std::size_t len = std::strlen(host);
    at[0] = kName;
    at[1] = static_cast<std::uint8_t>(len);
    std::copy_n(host, len, at + 2);  // a length-prefixed name: no terminator
    at += 2 + len;
  }
  put_port(at, port);
  request_len_ = static_cast<std::size_t>(at + 2 - request_);
}

bool Socks5::set_target(const sockaddr *addr, std::size_t addrlen) noexcept {
  std::uint8_t *at = request_ + 3;
  std::uint16_t port = 0;
  if (addr->sa_family == AF_INET && addrlen >= sizeof(sockaddr_in)) {
    sockaddr_in in4;
    std::memcpy(&in4, addr, sizeof in4);
    *at = kIPv4;
    std::memcpy(at + 1, &in4.sin_addr, 4);
    at += 1 + 4;
    port = ntohs(in4.sin_port);
  } else if (addr->sa_family == AF_INET6 && addrlen >= sizeof(sockaddr_in6)) {
    sockaddr_in6 in6;
    std::memcpy(&in6, addr, sizeof in6);
    *at = kIPv6;
    std::memcpy(at + 1, &in6.sin6_addr, 16);
    at += 1 + 16;
    port = ntohs(in6.sin6_port);
  } else {
    return false;
  }
  put_port(at, port);
  request_len_ = static_cast<std::size_t>(at + 2 - request_);
  return true;
}

bool Socks5::set_credentials(const Credentials &credentials) noexcept {
  if (!credentials.username) {
    greeting_[1] = 1;
    greeting_[2] = kNoAuth;
    greeting_len_ = 3;
    return credentials.password == nullptr;
  }
  const char *password = credentials.password ? credentials.password : "";
  std::size_t user_len = std::strlen(credentials.username);
  std::size_t pass_len = std::strlen(password);
  if (user_len == 0 || user_len > kMaxField || pass_len > kMaxField) return false;
  // Both offered: the proxy that needs no authentication may say so.
  greeting_[1] = 2;
  greeting_[2] = kNoAuth;
  greeting_[3] = kUserPass;
  greeting_len_ = 4;
  auth_[0] = kAuthVersion;
  auth_[1] = static_cast<std::uint8_t>(user_len);
  std::memcpy(auth_ + 2, credentials.username, user_len);
  auth_[2 + user_len] = static_cast<std::uint8_t>(pass_len);
  std::memcpy(auth_ + 3 + user_len, password, pass_len);
  auth_len_ = 3 + user_len + pass_len;
  return true;
}

int Socks5::begin(Future **out, Stream &lower, const async_stream_protocol &protocol, void *userdata) noexcept {
  Loop &loop = lower.loop();
  int err = lower.open_both_ways() ? Reader::bind(protocol, userdata) : ASYNC_ECLOSED;
  if (err) {
    util::destroy(this);
    return err;
  }
  Future *future = Future::create(loop);
  // One ready-queue slot for the outcome: resolve_after_made() or
  // release_cancelled().
  bool reserved = future && loop.reserve_task();
  err = reserved ? lower.replace_protocol(kHandshakeProtocol, this) : ASYNC_ENOMEM;
  if (err) {
    if (reserved) loop.unreserve_task();
    if (future) future->release_owner();
    Reader::unbind(protocol, userdata);
    util::destroy(this);
    return err;
  }
  lower_ = &lower;
  protocol_ = protocol;
  userdata_ = userdata;
  future->set_cancel(on_cancel, this);
  future_ = future;
  // An old protocol's pause must not stall the handshake.
  lower.resume_reading();
  send(greeting_, greeting_len_);
  *out = future;
  return 0;
}

// Any failure of a write aborts lower: on_lost() reports it.
void Socks5::send(const std::uint8_t *data, std::size_t len) noexcept {
  iovec iov{const_cast<std::uint8_t *>(data), len};
  (void)lower_->write(&iov, 1, nullptr, nullptr);
}

std::size_t Socks5::on_data(async_stream *, const std::uint8_t *data, std::size_t len, void *self) noexcept {
  auto *s = static_cast<Socks5 *>(self);
  ++s->refs_;  // the tunnel's push releases this protocol inside
  std::size_t used = s->parse(data, len);
  s->drop_reference();
  return used;
}

std::size_t Socks5::parse(const std::uint8_t *data, std::size_t len) noexcept {
  switch (phase_) {
    case Phase::kMethod:
      if (len < 2) return 0;
      if (data[0] != kVersion) {
        fail(ASYNC_EPROTO);
      } else if (data[1] == kNoAuth) {
        phase_ = Phase::kReply;
        send(request_, request_len_);
      } else if (data[1] == kUserPass && auth_len_) {
        phase_ = Phase::kAuth;
        send(auth_, auth_len_);
      } else {
        // 0xFF: none of the methods offered is acceptable (the proxy wants
        // credentials); any other: one never offered.
        fail(data[1] == kNoAcceptable ? ASYNC_EACCES : ASYNC_EPROTO);
      }
      return 2;
    case Phase::kAuth:
      if (len < 2) return 0;
      if (data[0] != kAuthVersion) {
        fail(ASYNC_EPROTO);
      } else if (data[1] != 0) {
        fail(ASYNC_EACCES);
      } else {
        phase_ = Phase::kReply;
        send(request_, request_len_);
      }
      return 2;
    case Phase::kReply: return parse_reply(data, len);
    case Phase::kDone:
    case Phase::kFailed: break;
  }
  return len;  // failed: lower is aborted and its bytes are of no use
}

std::size_t Socks5::parse_reply(const std::uint8_t *data, std::size_t len) noexcept {
  // VER REP RSV ATYP BND.ADDR BND.PORT; an error is known from REP alone
  // (a proxy may close right after it).
  if (len < 2) return 0;
  if (data[0] != kVersion || data[1] != 0) {
    fail(data[0] != kVersion ? ASYNC_EPROTO : reply_error(data[1]));
    return len;
  }
  if (len < 5) return 0;
  std::size_t addr_len = 0;
  switch (data[3]) {
    case kIPv4: addr_len = 4; break;
    case kIPv6: addr_len = 16; break;
    case kName: addr_len = 1 + std::size_t{data[4]}; break;
    default: break;
  }
  if (data[2] != 0 || addr_len == 0) {
    fail(ASYNC_EPROTO);
    return len;
  }
  std::size_t reply_len = 4 + addr_len + 2;
  if (len < reply_len) return 0;
  succeed();
  return reply_len;
}

void Socks5::succeed() noexcept {
  // lower's protocol becomes the tunnel: on_release() runs inside, and is
  // no failure then.
  phase_ = Phase::kDone;
  Stream *upper = nullptr;
  if (int err = Tunnel::push(&upper, *lower_, protocol_, userdata_)) {
    phase_ = Phase::kReply;  // nothing changed: the handshake fails as any other
    fail(err);
    return;
  }
  upper_ = upper;
  // Queued behind the tunnel stream's connection_made.
  loop_.push_reserved(core::Task{resolve_after_made, this});
}

void Socks5::fail(int error) noexcept {
  if (phase_ == Phase::kDone || phase_ == Phase::kFailed) return;
  phase_ = Phase::kFailed;
  loop_.unreserve_task();
  if (future_) future_->reject(error);  // forgets future_ through on_cancel(0)
  if (protocol_.release) protocol_.release(userdata_);
  // The proxy's connection is of no use after a failed handshake.
  if (lower_) lower_->abort(error);
  drop_reference();  // the outcome's
}

int Socks5::on_eof(async_stream *, void *self) noexcept {
  static_cast<Socks5 *>(self)->fail(ASYNC_EEOF);  // the proxy closed before its reply
  return 0;
}

void Socks5::on_lost(async_stream *, int error, void *self) noexcept {
  static_cast<Socks5 *>(self)->fail(error ? error : ASYNC_ECLOSED);
}

void Socks5::on_release(void *self) noexcept {
  auto *s = static_cast<Socks5 *>(self);
  s->lower_ = nullptr;
  // Replaced by another push or async_stream_set_protocol() on lower
  // before the proxy's reply: the handshake has lost its stream.
  s->fail(ASYNC_ECLOSED);
  s->drop_reference();
}

void Socks5::on_cancel(async_future *, int cancelled, void *self) noexcept {
  auto *s = static_cast<Socks5 *>(self);
  s->future_ = nullptr;
  if (!cancelled) return;  // fail() or resolve_after_made() is completing it
  if (s->upper_) {
    s->upper_->abort(ASYNC_ECANCELED);  // tunnelled already: it ends through connection_lost
    return;
  }
  s->phase_ = Phase::kFailed;
  if (s->lower_) s->lower_->abort(ASYNC_ECANCELED);
  // The release is not needed inside async_future_cancel()/free(): it runs
  // from the ready queue, in the slot reserved for the outcome.
  s->loop_.push_reserved(core::Task{release_cancelled, s});
}

void Socks5::release_cancelled(async_loop *, void *self) noexcept {
  auto *s = static_cast<Socks5 *>(self);
  if (s->protocol_.release) s->protocol_.release(s->userdata_);
  s->drop_reference();
}

void Socks5::resolve_after_made(async_loop *, void *self) noexcept {
  auto *s = static_cast<Socks5 *>(self);
  Stream *upper = s->upper_;
  s->upper_ = nullptr;
  if (Future *future = s->future_) {
    if (upper->lost()) {
      future->reject(ASYNC_ECLOSED);  // connection_made closed it already
    } else {
      // The value is a reference (stream.h's lifetime rule).
      upper->retain_as_value();
      future->resolve(upper->c_stream(), Stream::release_value, nullptr);
    }
  }
  s->drop_reference();
}

void Socks5::drop_reference() noexcept {
  if (--refs_ == 0) util::destroy(this);
}

}  // namespace async::net
