#include "tls/tls_layer.hpp"

#include <arpa/inet.h>
#include <async/error.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstring>
#include <mutex>

#include "core/future.hpp"
#include "core/loop.hpp"
#include "net/stream.hpp"
#include "util/alloc.hpp"
#include "util/clock.hpp"

namespace async::tls {

namespace {

// One record's plaintext, at most (2^14).
constexpr std::size_t kPlaintextMax = 16384;
// Ciphertext gathered for one write below, at most: as much as one read
// below brings (Loop::kReadBufferSize), so an echo of it goes down in one
// write. The record that would reach it goes down at once behind the
// gathered bytes (one writev), uncopied.
constexpr std::size_t kGatherMax = core::Loop::kReadBufferSize;

// What a peer that does not speak TLS, or breaks its records, makes
// OpenSSL say: ASYNC_EPROTO rather than a failed negotiation.
bool is_malformed(unsigned long error) noexcept {
  if (ERR_GET_LIB(error) != ERR_LIB_SSL) return false;
  switch (ERR_GET_REASON(error)) {
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_HTTP_REQUEST:
    case SSL_R_HTTPS_PROXY_REQUEST:
    case SSL_R_PACKET_LENGTH_TOO_LONG:
    case SSL_R_RECORD_LENGTH_MISMATCH:
    case SSL_R_ENCRYPTED_LENGTH_TOO_LONG:
    case SSL_R_DECRYPTION_FAILED_OR_BAD_RECORD_MAC:
    case SSL_R_BAD_RECORD_TYPE:
    case SSL_R_UNEXPECTED_MESSAGE:
    case SSL_R_UNEXPECTED_RECORD:
    case SSL_R_LENGTH_MISMATCH:
    case SSL_R_BAD_PACKET_LENGTH: return true;
    default: return false;
  }
}

// Empties the thread's OpenSSL error queue, which SSL_get_error() needs
// before each call. ERR_clear_error() walks every slot of the queue (about
// 700 instructions, four or five times per record); the queue is nearly
// always empty, which ERR_peek_error() tells for a fraction of that.
void clear_errors() noexcept {
  if (ERR_peek_error() != 0) ERR_clear_error();
}

bool is_ip_address(const char *name) noexcept {
  unsigned char addr[16];
  return inet_pton(AF_INET, name, addr) == 1 || inet_pton(AF_INET6, name, addr) == 1;
}

}  // namespace

const char TlsLayer::kKind = 0;

TlsLayer::TlsLayer(core::Loop &loop, Context &ctx) noexcept : net::Layer(loop), ctx_(ctx) {
  ctx_.retain();
  ev::Backend::timer_init(timer_, on_timeout, this);
}

TlsLayer::~TlsLayer() {
  disarm_timer();
  finish_handshake(ASYNC_ECLOSED);
  SSL_free(ssl_);  // and its BIOs
  ctx_.release();
}

namespace {

// A client's server name: NULL (allowed when it does not verify), or 1 to
// kNameMax bytes.
bool bad_server_name(const char *name, const Context &ctx) noexcept {
  return name ? !*name || std::strlen(name) > TlsLayer::kNameMax : ctx.verifies();
}

}  // namespace

int TlsLayer::push(net::Stream **upper, core::Future **handshake, net::Stream &lower, Context &ctx,
                   const char *server_name, const async_stream_protocol &protocol, void *userdata) noexcept {
  if (ctx.server())
    server_name = nullptr;
  else if (bad_server_name(server_name, ctx))
    return ASYNC_EINVAL;  // a verifying client checks a name: there must be one
  if (lower.lost()) return ASYNC_ECLOSED;
  auto *layer = util::make<TlsLayer>(lower.loop(), ctx);
  if (!layer) return ASYNC_ENOMEM;
  int err = layer->start(server_name);
  core::Future *future = nullptr;
  if (!err && handshake && !(future = core::Future::create(lower.loop()))) err = ASYNC_ENOMEM;
  if (err) {
    util::destroy(layer);
    return err;
  }
  if ((err = net::Layer::push(upper, layer, lower, protocol, userdata))) {  // destroys layer
    if (future) future->release_owner();
    return err;
  }
  if (future) {
    future->retain();  // the layer's, until the handshake is done
    future->set_cancel(on_cancel, layer);
    layer->handshake_ = future;
    *handshake = future;
  }
  layer->arm_timer();
  layer->advance();  // a client's hello goes now
  return 0;
}

net::Upgrade TlsLayer::upgrade(Context &ctx) noexcept {
  return net::Upgrade(
      attach, [](void *c) noexcept { static_cast<Context *>(c)->retain(); },
      [](void *c) noexcept { static_cast<Context *>(c)->release(); }, &ctx);
}

int TlsLayer::attach(void *ctx, net::Stream &lower, const char *name, net::Upgrade::Done done, void *owner) noexcept {
  auto &context = *static_cast<Context *>(ctx);
  if (!context.server() && bad_server_name(name, context)) return ASYNC_EINVAL;
  auto *layer = util::make<TlsLayer>(lower.loop(), context);
  if (!layer) return ASYNC_ENOMEM;
  int err = layer->start(context.server() ? nullptr : name);
  if (err) {
    util::destroy(layer);
    return err;
  }
  if ((err = net::Layer::attach(layer, lower))) return err;  // destroys layer
  layer->done_ = done;
  layer->owner_ = owner;
  layer->arm_timer();
  layer->advance();
  return 0;
}

void TlsLayer::on_cancel(async_future *, int cancelled, void *self) noexcept {
  auto *layer = static_cast<TlsLayer *>(self);
  if (!cancelled) return;  // finish_handshake() completed it
  core::Future *future = layer->handshake_;
  layer->handshake_ = nullptr;
  future->release();
  layer->fail(ASYNC_ECANCELED);
}

int TlsLayer::start(const char *server_name) noexcept {
  ssl_ = SSL_new(ctx_.ssl_ctx());
  if (!ssl_) return ASYNC_ETLS;
  const bio_method_st *method = bio_method();
  BIO *bio = method ? BIO_new(method) : nullptr;
  if (!bio) {
    clear_errors();
    return ASYNC_ENOMEM;
  }
  BIO_set_data(bio, this);
  BIO_set_init(bio, 1);
  SSL_set_bio(ssl_, bio, bio);  // one reference for both directions, freed with ssl_
  if (ctx_.server()) {
    SSL_set_accept_state(ssl_);
    return 0;
  }
  SSL_set_connect_state(ssl_);
  if (!server_name) return 0;
  bool ip = is_ip_address(server_name);
  bool ok = ip || SSL_set_tlsext_host_name(ssl_, server_name) == 1;  // no SNI for an address (RFC 6066 §3)
  if (ok && ctx_.verifies()) {
    if (ip) {
      ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), server_name) == 1;
    } else {
      SSL_set_hostflags(ssl_, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      ok = SSL_set1_host(ssl_, server_name) == 1;
    }
  }
  if (!ok) {
    clear_errors();
    return ASYNC_EINVAL;
  }
  std::strcpy(name_, server_name);
  SSL_set_app_data(ssl_, name_);  // the session cache's key (Context::on_new_session())
  if (ssl_session_st *session = ctx_.find_session(name_)) {
    SSL_set_session(ssl_, session);
    SSL_SESSION_free(session);
  }
  return 0;
}

// ---- the BIO ------------------------------------------------------------------

const bio_method_st *TlsLayer::bio_method() noexcept {
  // Made once per process (and kept), or again after running out of memory.
  static std::atomic<bio_method_st *> made{nullptr};
  static std::mutex lock;
  if (bio_method_st *method = made.load(std::memory_order_acquire)) return method;
  std::lock_guard guard(lock);
  if (bio_method_st *method = made.load(std::memory_order_relaxed)) return method;
  int type = BIO_get_new_index();
  bio_method_st *method = type == -1 ? nullptr : BIO_meth_new(type | BIO_TYPE_SOURCE_SINK, "libasync TLS layer");
  if (!method) return nullptr;
  auto ctrl = [](BIO *, int cmd, long, void *) noexcept -> long { return cmd == BIO_CTRL_FLUSH ? 1 : 0; };
  if (BIO_meth_set_read_ex(method, bio_read) != 1 || BIO_meth_set_write_ex(method, bio_write) != 1 ||
      BIO_meth_set_ctrl(method, ctrl) != 1) {
    BIO_meth_free(method);
    return nullptr;
  }
  made.store(method, std::memory_order_release);
  return method;
}

int TlsLayer::bio_read(BIO *bio, char *out, std::size_t capacity, std::size_t *read) noexcept {
  auto *layer = static_cast<TlsLayer *>(BIO_get_data(bio));
  Input *input = layer->input_;
  std::size_t n = input ? std::min(capacity, input->len - input->used) : 0;
  *read = n;
  BIO_clear_retry_flags(bio);
  if (n == 0) {
    BIO_set_retry_read(bio);  // more to come from below, not an end of file
    return 0;
  }
  std::memcpy(out, input->data + input->used, n);
  input->used += n;
  return 1;
}

int TlsLayer::bio_write(BIO *bio, const char *data, std::size_t len, std::size_t *written) noexcept {
  auto *layer = static_cast<TlsLayer *>(BIO_get_data(bio));
  util::ByteQueue &out = layer->out_;
  const auto *bytes = reinterpret_cast<const std::uint8_t *>(data);
  BIO_clear_retry_flags(bio);
  *written = len;  // taken whatever happens below: a failure there ends the stack (flush())
  // Gathered, or down at once when large (or out of memory: the stream
  // below then copies, or fails itself).
  if (out.size() + len < kGatherMax && out.append(bytes, len)) return 1;
  iovec iov[2] = {{const_cast<std::uint8_t *>(out.data()), out.size()}, {const_cast<std::uint8_t *>(bytes), len}};
  int first = out.empty() ? 1 : 0;
  if (!layer->write_down(iov + first, 2 - first)) layer->down_failed_ = true;
  out.clear();
  return 1;
}

TlsLayer *TlsLayer::under(const net::Stream &upper) noexcept {
  net::Layer *layer = upper.layer();
  return layer && layer->kind() == &kKind ? static_cast<TlsLayer *>(layer) : nullptr;
}

// ---- from below -----------------------------------------------------------------

bool TlsLayer::wants_input() const noexcept {
  if (phase_ == Phase::kEnded) return false;
  return phase_ == Phase::kHandshake || pop_waiting_ || (!peer_closed_ && upper_reading());
}

std::size_t TlsLayer::from_below(const std::uint8_t *data, std::size_t len) noexcept {
  if (peer_closed_) return 0;  // after close_notify the bytes are not TLS's
  // OpenSSL reads from these bytes (bio_read()) as it goes: a record's
  // header, then its body, so it stops at a record's end; a record cut
  // short waits inside it for the rest.
  Input input{data, len, 0};
  input_ = &input;
  if (advance()) return input.used;  // handed over: this layer may be gone
  input_ = nullptr;
  flush();  // what the stream above wrote meanwhile
  return input.used;
}

bool TlsLayer::advance() noexcept {
  if (phase_ == Phase::kHandshake) {
    clear_errors();
    int result = SSL_do_handshake(ssl_);
    if (!flush()) return false;
    if (result != 1) {
      if (int err = error_of(SSL_get_error(ssl_, result))) fail(err);
      return false;
    }
    phase_ = Phase::kOpen;
    disarm_timer();
    finish_handshake(0);
    if (eof_wanted_) send_close_notify();
    upper_room();  // what the stream above queued meanwhile goes now
    if (phase_ != Phase::kOpen) return false;
  }
  // No stream above reading yet (an upgrade's opens later): the records
  // wait below.
  return phase_ == Phase::kOpen && wants_input() && read_records();
}

bool TlsLayer::read_records() noexcept {
  // A read takes a record's plaintext (at most 2^14), which goes up as it is.
  std::uint8_t plaintext[kPlaintextMax];
  for (;;) {
    clear_errors();
    int n = SSL_read(ssl_, plaintext, sizeof plaintext);
    if (n > 0) {
      // A pop waiting for close_notify drops what still comes; a pause
      // inside keeps the rest above, and the next records wait below.
      if (!pop_waiting_) deliver_up(plaintext, static_cast<std::size_t>(n));
      if (phase_ != Phase::kOpen) return false;
      // Read all: another SSL_read would only say it wants more. What a
      // read wrote (a key update's answer) goes down at from_below()'s end.
      bool unread = SSL_has_pending(ssl_) || (input_ && input_->used < input_->len);
      if (!unread || !wants_input()) return false;
      continue;
    }
    int kind = SSL_get_error(ssl_, n);
    int err = error_of(kind);
    if (!flush()) return false;  // before a hand-over, or an alert before the end
    if (kind == SSL_ERROR_ZERO_RETURN) return peer_closed();
    if (err) fail(err);
    return false;
  }
}

bool TlsLayer::peer_closed() noexcept {
  peer_closed_ = true;
  if (pop_waiting_) {
    pop_waiting_ = false;
    disarm_timer();
    phase_ = Phase::kEnded;
    input_ = nullptr;  // from_below() no longer touches this layer, which may go now
    hand_over();       // the bytes after close_notify are still below, for the pop's protocol
    return true;
  }
  eof_up();  // eof_received above: returning 0 closes it, and close_notify answers
  return false;
}

void TlsLayer::lower_eof() noexcept {
  // After close_notify the end of file says nothing more; before it the
  // data may have been cut short.
  if (!peer_closed_) fail(ASYNC_ETRUNCATED);
}

void TlsLayer::lower_lost(int error) noexcept {
  if (error == 0 && !peer_closed_) error = ASYNC_ETRUNCATED;
  if (phase_ != Phase::kEnded) {
    phase_ = Phase::kEnded;
    error_ = error;
  }
  disarm_timer();
  finish_handshake(error ? error : ASYNC_ECLOSED);
  net::Layer::lower_lost(error);
}

// ---- from above -----------------------------------------------------------------

long TlsLayer::take(const iovec *iov, int iovcnt) noexcept {
  if (phase_ == Phase::kHandshake) return 0;  // advance() calls upper_room() once done
  if (phase_ != Phase::kOpen || sent_close_ || !lower()) return ASYNC_ECLOSED;
  if (lower_full()) return 0;  // its resume_writing calls the stream above again
  clear_errors();
  std::size_t taken = 0;
  for (int i = 0; i < iovcnt; ++i) {
    const auto *bytes = static_cast<const std::uint8_t *>(iov[i].iov_base);
    for (std::size_t done = 0; done < iov[i].iov_len;) {
      int n = SSL_write(ssl_, bytes + done, static_cast<int>(std::min<std::size_t>(iov[i].iov_len - done, INT_MAX)));
      if (n <= 0) {
        int err = error_of(SSL_get_error(ssl_, n));
        return err ? err : ASYNC_EINTERNAL;  // the layer's BIO never asks to wait
      }
      done += static_cast<std::size_t>(n);
    }
    taken += iov[i].iov_len;
  }
  // Inside from_below() the records wait for its end, to go down together.
  if (input_ ? down_failed_ : !flush()) return ASYNC_ECLOSED;
  return static_cast<long>(taken);
}

void TlsLayer::upper_write_eof() noexcept {
  if (phase_ == Phase::kHandshake)
    eof_wanted_ = true;
  else
    send_close_notify();
}

void TlsLayer::close_down() noexcept {
  disarm_timer();
  finish_handshake(ASYNC_ECLOSED);
  send_close_notify();
  phase_ = Phase::kEnded;
  net::Layer::close_down();
}

void TlsLayer::stop() noexcept {
  disarm_timer();
  finish_handshake(error_ ? error_ : ASYNC_ECLOSED);
  phase_ = Phase::kEnded;
}

void TlsLayer::pop_down() noexcept {
  if (phase_ != Phase::kOpen) {
    // No session to shut down: the stream below goes back as it is.
    disarm_timer();
    finish_handshake(ASYNC_ECLOSED);
    phase_ = Phase::kEnded;
    hand_over();
    return;
  }
  send_close_notify();
  if (peer_closed_) {
    phase_ = Phase::kEnded;
    hand_over();
    return;
  }
  // The peer's close_notify, within the handshake timeout.
  pop_waiting_ = true;
  arm_timer();
  sync_reading();
}

// ---- helpers ----------------------------------------------------------------------

void TlsLayer::send_close_notify() noexcept {
  if (sent_close_ || phase_ != Phase::kOpen) return;
  sent_close_ = true;
  clear_errors();
  SSL_shutdown(ssl_);
  clear_errors();
  flush();
}

bool TlsLayer::flush() noexcept {
  bool ok = !down_failed_;
  down_failed_ = false;
  if (out_.empty()) return ok;
  iovec iov{const_cast<std::uint8_t *>(out_.data()), out_.size()};
  ok = write_down(&iov, 1) && ok;
  out_.clear();  // copied or sent
  return ok;
}

bool TlsLayer::write_down(const iovec *iov, int iovcnt) noexcept {
  net::Stream *below = lower();
  int err = below ? below->write(iov, iovcnt, nullptr, nullptr) : ASYNC_ECLOSED;
  return err == 0 && lower() && !lower()->lost();
}

int TlsLayer::error_of(int kind) noexcept {
  unsigned long first = ERR_peek_error();
  if (first) ERR_clear_error();
  switch (kind) {
    case SSL_ERROR_NONE:
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
    case SSL_ERROR_ZERO_RETURN: return 0;
    default:
      if (ctx_.verifies() && SSL_get_verify_result(ssl_) != X509_V_OK) return ASYNC_ECERT;
      return is_malformed(first) ? ASYNC_EPROTO : ASYNC_ETLS;
  }
}

void TlsLayer::fail(int error) noexcept {
  if (phase_ == Phase::kEnded) return;
  error_ = error;
  stop();
  if (has_upper())
    fail_up(error);  // the stream above aborts, and with it the stream below
  else if (net::Stream *below = lower())
    below->abort(error);  // a pop waiting for close_notify
}

void TlsLayer::finish_handshake(int error) noexcept {
  if (net::Upgrade::Done done = done_) {
    done_ = nullptr;
    done(owner_, error ? nullptr : this, error);
  }
  core::Future *future = handshake_;
  if (!future) return;
  handshake_ = nullptr;
  if (error)
    future->reject(error);
  else
    future->resolve(nullptr, nullptr, nullptr);
  future->release();
}

void TlsLayer::arm_timer() noexcept {
  timer_armed_ = true;
  loop().backend().timer_start(timer_, util::ms_to_ns(ctx_.handshake_timeout_ms()));
}

void TlsLayer::disarm_timer() noexcept {
  if (!timer_armed_) return;
  timer_armed_ = false;
  loop().backend().timer_stop(timer_);
}

void TlsLayer::on_timeout(void *self, std::uint32_t) noexcept {
  auto *layer = static_cast<TlsLayer *>(self);
  layer->disarm_timer();
  layer->fail(ASYNC_ETIMEDOUT);
}

// ---- queries ------------------------------------------------------------------------

int TlsLayer::alpn(char *out, std::size_t capacity) const noexcept {
  const unsigned char *name = nullptr;
  unsigned len = 0;
  SSL_get0_alpn_selected(ssl_, &name, &len);
  if (len + 1 > capacity) return ASYNC_ERANGE;
  if (len) std::memcpy(out, name, len);
  out[len] = '\0';
  return static_cast<int>(len);
}

int TlsLayer::version() const noexcept { return phase_ == Phase::kHandshake ? 0 : SSL_version(ssl_); }

bool TlsLayer::resumed() const noexcept { return phase_ != Phase::kHandshake && SSL_session_reused(ssl_) == 1; }

int TlsLayer::verify_error(const char **reason) const noexcept {
  long result = SSL_get_verify_result(ssl_);
  if (reason) *reason = X509_verify_cert_error_string(result);
  return static_cast<int>(result);
}

}  // namespace async::tls
