// The SOCKS5 client of async/socks.h: RFC 1928's CONNECT, with no
// authentication or RFC 1929's username/password, spoken as the protocol
// of the stream to the proxy. The proxy's replies are parsed from the
// stream's kept bytes (consumed-bytes reads: a reply cut anywhere waits
// for the rest), so no buffer of its own. On the proxy's success it pushes
// a Tunnel carrying the user's protocol, inside the delivery of the reply:
// the bytes after the reply go to the tunnel. The future resolves after
// the tunnel stream's connection_made, as a connect's does.
#pragma once

#include <async/stream.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>

#include "net/core_names.hpp"

namespace async::net {

class Stream;

class Socks5 {
 public:
  // The user's credentials: no authentication offered when username is
  // NULL; else username 1-255 bytes, password (NULL: empty) 0-255.
  struct Credentials {
    const char *username;
    const char *password;
  };

  // Starts the handshake on lower toward host:port (host 1-255 bytes, sent
  // as an address when numeric, else as a name the proxy resolves): 0 with
  // *out the user's future, or ASYNC_EINVAL (a bad host or credentials),
  // ASYNC_ECLOSED (lower not open both ways), ASYNC_EBUSY (a reader bound
  // elsewhere), ASYNC_ENOMEM with nothing changed. lower's old protocol's
  // release runs inside.
  static int start(Future **out, Stream &lower, const char *host, std::uint16_t port, const Credentials &credentials,
                   const async_stream_protocol &protocol, void *userdata) noexcept;
  // The same toward an IPv4 or IPv6 address with its port.
  static int start_addr(Future **out, Stream &lower, const sockaddr *addr, std::size_t addrlen,
                        const Credentials &credentials, const async_stream_protocol &protocol, void *userdata) noexcept;

  // Use start(); public only for util::make/destroy.
  explicit Socks5(Loop &loop) noexcept;

 private:
  enum class Phase { kMethod, kAuth, kReply, kDone, kFailed };
  // RFC 1928's longest CONNECT request: a 255-byte name.
  static constexpr std::size_t kMaxRequest = 4 + 1 + 255 + 2;
  // RFC 1929's longest request.
  static constexpr std::size_t kMaxAuth = 3 + 255 + 255;

  static const async_stream_protocol kHandshakeProtocol;
  static std::size_t on_data(async_stream *, const std::uint8_t *data, std::size_t len, void *self) noexcept;
  static int on_eof(async_stream *, void *self) noexcept;
  static void on_lost(async_stream *, int error, void *self) noexcept;
  static void on_release(void *self) noexcept;
  static void on_cancel(async_future *, int cancelled, void *self) noexcept;
  static void release_cancelled(async_loop *, void *self) noexcept;
  static void resolve_after_made(async_loop *, void *self) noexcept;

  // Writes the request's target (ATYP, address, port) at request_ + 3.
  void set_target(const char *host, std::uint16_t port) noexcept;
  bool set_target(const sockaddr *addr, std::size_t addrlen) noexcept;
  bool set_credentials(const Credentials &credentials) noexcept;
  // Takes lower over and sends the greeting.
  int begin(Future **out, Stream &lower, const async_stream_protocol &protocol, void *userdata) noexcept;
  // The bytes of the proxy's reply consumed (0: the rest of it is still to
  // come).
  std::size_t parse(const std::uint8_t *data, std::size_t len) noexcept;
  std::size_t parse_reply(const std::uint8_t *data, std::size_t len) noexcept;
  void send(const std::uint8_t *data, std::size_t len) noexcept;
  void succeed() noexcept;
  void fail(int error) noexcept;
  void drop_reference() noexcept;

  Loop &loop_;
  Stream *lower_ = nullptr;   // until its protocol let go of this one
  Stream *upper_ = nullptr;   // the tunnel's stream, until resolve_after_made()
  Future *future_ = nullptr;  // the user's, until it completes
  async_stream_protocol protocol_{};
  void *userdata_ = nullptr;
  Phase phase_ = Phase::kMethod;
  int refs_ = 2;  // lower's protocol's and the outcome's
  std::uint8_t greeting_[4] = {};
  std::size_t greeting_len_ = 0;
  std::uint8_t auth_[kMaxAuth] = {};
  std::size_t auth_len_ = 0;  // 0: no credentials
  std::uint8_t request_[kMaxRequest] = {};
  std::size_t request_len_ = 0;
};

}  // namespace async::net
