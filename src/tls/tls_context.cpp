#include "tls/tls_context.hpp"

#include <async/error.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <strings.h>

#include <cstring>

#include "util/alloc.hpp"

namespace async::tls {

namespace {

constexpr std::uint64_t kDefaultHandshakeTimeoutMs = 30000;
constexpr std::uint32_t kKnownFlags = ASYNC_TLS_NO_VERIFY | ASYNC_TLS_VERIFY_CLIENT | ASYNC_TLS_NO_SESSION_CACHE;

// "h2,http/1.1" in ALPN's wire format; false for an empty or too long name.
bool alpn_wire(const char *list, unsigned char (&out)[256], unsigned &out_len) noexcept {
  out_len = 0;
  for (const char *p = list;;) {
    const char *end = std::strchr(p, ',');
    std::size_t n = end ? static_cast<std::size_t>(end - p) : std::strlen(p);
    if (n == 0 || n > 255 || out_len + 1 + n > sizeof out) return false;
    out[out_len++] = static_cast<unsigned char>(n);
    std::memcpy(out + out_len, p, n);
    out_len += static_cast<unsigned>(n);
    if (!end) return true;
    p = end + 1;
  }
}

}  // namespace

int Context::create(Context **out, async_tls_side side, const async_tls_options &options) noexcept {
  if ((side != ASYNC_TLS_CLIENT && side != ASYNC_TLS_SERVER) || (options.flags & ~kKnownFlags)) return ASYNC_EINVAL;
  auto *ctx = util::make<Context>();
  if (!ctx) return ASYNC_ENOMEM;
  int err = ctx->configure(side, options);
  // configure()'s OpenSSL calls leave their reasons on this thread's queue.
  ERR_clear_error();
  if (err) {
    ctx->release();
    return err;
  }
  *out = ctx;
  return 0;
}

int Context::configure(async_tls_side side, const async_tls_options &options) noexcept {
  server_ = side == ASYNC_TLS_SERVER;
  verify_ = server_ ? (options.flags & ASYNC_TLS_VERIFY_CLIENT) != 0 : (options.flags & ASYNC_TLS_NO_VERIFY) == 0;
  handshake_timeout_ms_ = options.handshake_timeout_ms ? options.handshake_timeout_ms : kDefaultHandshakeTimeoutMs;
  if (options.alpn && !alpn_wire(options.alpn, alpn_, alpn_len_)) return ASYNC_EINVAL;
  if (server_ && !options.cert_file) return ASYNC_EINVAL;
  if (options.key_file && !options.cert_file) return ASYNC_EINVAL;

  ctx_ = SSL_CTX_new(server_ ? TLS_server_method() : TLS_client_method());
  if (!ctx_) return ASYNC_ETLS;
  if (!SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION)) return ASYNC_ETLS;
  // Renegotiation off (a peer asking is refused); the layer's writes take
  // partial records and its buffers move between calls.
  SSL_CTX_set_options(ctx_, SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_mode(ctx_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);

  if (options.cert_file) {
    const char *key = options.key_file ? options.key_file : options.cert_file;
    if (SSL_CTX_use_certificate_chain_file(ctx_, options.cert_file) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx_, key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx_) != 1)
      return ASYNC_EINVAL;
  }
  if (options.ca_file) {
    if (SSL_CTX_load_verify_locations(ctx_, options.ca_file, nullptr) != 1) return ASYNC_EINVAL;
  } else if (!server_ && verify_ && SSL_CTX_set_default_verify_paths(ctx_) != 1) {
    return ASYNC_ETLS;
  }
  if (verify_) SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER | (server_ ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), nullptr);

  if (server_) {
    // Resumption through the server's own cache (TLS 1.2 ids) and tickets.
    static const unsigned char kSessionContext[] = "libasync";
    SSL_CTX_set_session_id_context(ctx_, kSessionContext, sizeof kSessionContext - 1);
    if (alpn_len_) SSL_CTX_set_alpn_select_cb(ctx_, on_alpn_select, this);
    SSL_CTX_set_tlsext_servername_callback(ctx_, on_server_name);
    SSL_CTX_set_tlsext_servername_arg(ctx_, this);
  } else {
    if (alpn_len_ && SSL_CTX_set_alpn_protos(ctx_, alpn_, alpn_len_) != 0) return ASYNC_ETLS;
    if (!(options.flags & ASYNC_TLS_NO_SESSION_CACHE)) {
      SSL_CTX_set_session_cache_mode(ctx_, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
      SSL_CTX_sess_set_new_cb(ctx_, on_new_session);
      SSL_CTX_set_app_data(ctx_, this);
    }
  }
  return 0;
}

Context::~Context() {
  mark_dead();
  for (std::size_t i = 0; i < names_count_; ++i) names_[i].context->release();
  util::mem_free(names_);
  for (Session &s : sessions_)
    if (s.session) SSL_SESSION_free(s.session);
  SSL_CTX_free(ctx_);
}

void Context::release() noexcept {
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) util::destroy(this);
}

int Context::add_server_name(const char *name, Context &other) noexcept {
  std::size_t len = std::strlen(name);
  if (!server_ || !other.server_ || &other == this || len == 0 || len > kNameMax) return ASYNC_EINVAL;
  // A context named by another has no names of its own: no cycle of
  // references can form. Both locks, so two threads adding each context
  // to the other cannot both pass this check.
  std::scoped_lock guard(names_lock_, other.names_lock_);
  if (other.names_count_) return ASYNC_EINVAL;
  for (std::size_t i = 0; i < names_count_; ++i)
    if (strcasecmp(names_[i].name, name) == 0) return ASYNC_EINVAL;
  auto *grown = static_cast<ServerName *>(util::mem_realloc(names_, (names_count_ + 1) * sizeof(ServerName)));
  if (!grown) return ASYNC_ENOMEM;
  names_ = grown;
  ServerName &entry = names_[names_count_++];
  std::memcpy(entry.name, name, len + 1);
  entry.context = &other;
  other.retain();
  return 0;
}

int Context::on_server_name(ssl_st *ssl, int *, void *self) noexcept {
  auto *ctx = static_cast<Context *>(self);
  const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (!name) return SSL_TLSEXT_ERR_OK;
  std::lock_guard guard(ctx->names_lock_);
  for (std::size_t i = 0; i < ctx->names_count_; ++i) {
    if (strcasecmp(ctx->names_[i].name, name) != 0) continue;
    // The handshake goes on with that context's certificate.
    if (!SSL_set_SSL_CTX(ssl, ctx->names_[i].context->ctx_)) return SSL_TLSEXT_ERR_ALERT_FATAL;
    break;
  }
  return SSL_TLSEXT_ERR_OK;  // another name: the default certificate
}

int Context::on_alpn_select(ssl_st *, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                            unsigned int inlen, void *self) noexcept {
  auto *ctx = static_cast<Context *>(self);
  unsigned char *chosen = nullptr;
  if (SSL_select_next_proto(&chosen, outlen, ctx->alpn_, ctx->alpn_len_, in, inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;  // no common protocol: go on without ALPN
  *out = chosen;
  return SSL_TLSEXT_ERR_OK;
}

int Context::on_new_session(ssl_st *ssl, ssl_session_st *session) noexcept {
  const auto *name = static_cast<const char *>(SSL_get_app_data(ssl));
  auto *ctx = static_cast<Context *>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
  if (!name || !ctx || !SSL_SESSION_is_resumable(session)) return 0;
  ctx->keep_session(name, session);
  return 1;  // the cache took OpenSSL's reference
}

void Context::keep_session(const char *name, ssl_session_st *session) noexcept {
  std::lock_guard guard(sessions_lock_);
  Session *slot = &sessions_[0];
  for (Session &s : sessions_) {
    if (s.session && std::strcmp(s.name, name) == 0) {
      slot = &s;
      break;
    }
    if (!s.session || s.used < slot->used) slot = &s;
  }
  if (slot->session) SSL_SESSION_free(slot->session);
  std::strncpy(slot->name, name, kNameMax);
  slot->session = session;
  slot->used = ++session_clock_;
}

ssl_session_st *Context::find_session(const char *name) noexcept {
  std::lock_guard guard(sessions_lock_);
  for (Session &s : sessions_) {
    if (s.session && std::strcmp(s.name, name) == 0) {
      SSL_SESSION_up_ref(s.session);
      return s.session;
    }
  }
  return nullptr;
}

}  // namespace async::tls
