// The TLS layer (async_tls_push()): an OpenSSL connection over a BIO of
// the layer's own. OpenSSL reads the records straight from the bytes the
// stream below delivered, one at a time (read-ahead off), and what it did
// not read stays below: a pause above, or the peer's close_notify, stops at
// a record's end, and bytes after close_notify stay for a pop's protocol.
// Plaintext goes up as each record is read. Writes from above go in as
// records once the handshake is done; the ciphertext OpenSSL writes during
// one call is gathered and goes down at its end in one write (a full
// record at once, with what was gathered before it, uncopied).
#pragma once

#include <cstddef>
#include <cstdint>

#include "ev/ev_backend.hpp"
#include "net/layer.hpp"
#include "net/upgrade.hpp"
#include "tls/tls_context.hpp"
#include "util/byte_queue.hpp"

struct bio_st;
struct bio_method_st;

namespace async::core {
class Future;
}

namespace async::tls {

class TlsLayer final : public net::Layer {
 public:
  // Pushes TLS with ctx onto lower; *handshake (when not null) receives
  // the handshake's future. 0 or ASYNC_EINVAL / ECLOSED / ETLS / ENOMEM
  // with nothing changed.
  static int push(net::Stream **upper, core::Future **handshake, net::Stream &lower, Context &ctx,
                  const char *server_name, const async_stream_protocol &protocol, void *userdata) noexcept;
  // The hook that puts TLS with ctx on a connector's or a server's new
  // connections (net/upgrade.hpp); ctx retained while it is held.
  static net::Upgrade upgrade(Context &ctx) noexcept;
  // The TLS layer under upper, or nullptr.
  static TlsLayer *under(const net::Stream &upper) noexcept;

  long take(const iovec *iov, int iovcnt) noexcept override;
  const void *kind() const noexcept override { return &kKind; }

  // async_tls_alpn(): the length, or ASYNC_ERANGE.
  int alpn(char *out, std::size_t capacity) const noexcept;
  int version() const noexcept;
  bool resumed() const noexcept;
  int verify_error(const char **reason) const noexcept;

  // The longest server name (bytes).
  static constexpr std::size_t kNameMax = 255;

  // Use push(); public only for util::make/destroy.
  TlsLayer(core::Loop &loop, Context &ctx) noexcept;
  ~TlsLayer() override;

 private:
  static const char kKind;
  enum class Phase : std::uint8_t { kHandshake, kOpen, kEnded };

  int start(const char *server_name) noexcept;
  // Upgrade::Start: TLS attached to lower, done told when the handshake
  // ended.
  static int attach(void *ctx, net::Stream &lower, const char *name, net::Upgrade::Done done, void *owner) noexcept;
  // The handshake future was cancelled: the stack is aborted.
  static void on_cancel(async_future *, int cancelled, void *self) noexcept;
  std::size_t from_below(const std::uint8_t *data, std::size_t len) noexcept override;
  bool wants_input() const noexcept override;
  void lower_eof() noexcept override;
  void lower_lost(int error) noexcept override;
  void upper_write_eof() noexcept override;
  void close_down() noexcept override;
  void stop() noexcept override;
  void pop_down() noexcept override;

  // Runs the handshake on, or reads the plaintext of, what came in. These
  // return true when a pop's hand-over ran: the layer may be gone then
  // (the lower stream's release dropped its last reference).
  bool advance() noexcept;
  bool read_records() noexcept;
  // The peer's close_notify came in.
  bool peer_closed() noexcept;
  // Sends close_notify once.
  void send_close_notify() noexcept;
  // The layer's BIO method (made once); nullptr when out of memory. Its
  // callbacks: ciphertext from input_, and to out_ (or at once below).
  static const bio_method_st *bio_method() noexcept;
  static int bio_read(bio_st *bio, char *out, std::size_t capacity, std::size_t *read) noexcept;
  static int bio_write(bio_st *bio, const char *data, std::size_t len, std::size_t *written) noexcept;
  // The gathered ciphertext goes to the stream below; false when a write
  // to it failed since the last flush (the stack is ending).
  bool flush() noexcept;
  // Writes iov to the stream below; false when that failed.
  bool write_down(const iovec *iov, int iovcnt) noexcept;
  // The library's code for SSL_get_error()'s kind (0: none, go on); the
  // thread's OpenSSL error queue is cleared.
  int error_of(int kind) noexcept;
  // Ends the stack with error (the handshake future fails with it).
  void fail(int error) noexcept;
  void finish_handshake(int error) noexcept;
  static void on_timeout(void *self, std::uint32_t) noexcept;
  void arm_timer() noexcept;
  void disarm_timer() noexcept;

  // The bytes from_below() was given, while OpenSSL reads them.
  struct Input {
    const std::uint8_t *data;
    std::size_t len;
    std::size_t used;
  };

  Context &ctx_;
  ssl_st *ssl_ = nullptr;
  Input *input_ = nullptr;             // during from_below() only
  util::ByteQueue out_;                // ciphertext OpenSSL wrote, for below at the call's end
  core::Future *handshake_ = nullptr;  // the library's reference until it completes
  net::Upgrade::Done done_ = nullptr;  // an upgrade's owner, told once the handshake ended
  void *owner_ = nullptr;
  ev::TimerSlot timer_;
  bool timer_armed_ = false;
  Phase phase_ = Phase::kHandshake;
  bool peer_closed_ = false;  // the peer's close_notify came in
  bool sent_close_ = false;   // close_notify went out
  bool pop_waiting_ = false;  // a pop waits for the peer's close_notify
  bool eof_wanted_ = false;   // write_eof above before the handshake was done
  bool down_failed_ = false;  // a write below failed since the last flush()
  int error_ = 0;             // what ended the stack, for the handshake future
  // The session cache's key (a client's server name); "" for none.
  char name_[kNameMax + 1]{};
};

}  // namespace async::tls
