// A TLS context (async_tls_context): an OpenSSL SSL_CTX with the library's
// secure defaults and the files read at creation, and a client's session
// cache (the last resumable session per server name, which a reconnect
// with the same context offers). Reference counted across threads.
#pragma once

#include <async/tls.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>

#include "util/tagged.hpp"

// OpenSSL's types, named without its headers (only src/tls/*.cpp see them).
struct ssl_ctx_st;
struct ssl_st;
struct ssl_session_st;

namespace async::tls {

class Context : public util::Tagged<0x544c5343> {  // "TLSC"
 public:
  static Context *from(async_tls_context *c) noexcept { return reinterpret_cast<Context *>(c); }
  async_tls_context *c_context() noexcept { return reinterpret_cast<async_tls_context *>(this); }

  // 0 and *out with one reference, or ASYNC_EINVAL / ASYNC_ETLS / ASYNC_ENOMEM.
  static int create(Context **out, async_tls_side side, const async_tls_options &options) noexcept;

  void retain() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept;

  ssl_ctx_st *ssl_ctx() const noexcept { return ctx_; }
  bool server() const noexcept { return server_; }
  bool verifies() const noexcept { return verify_; }
  std::uint64_t handshake_timeout_ms() const noexcept { return handshake_timeout_ms_; }

  // async_tls_context_add_server_name(): 0, or ASYNC_EINVAL / ENOMEM.
  int add_server_name(const char *name, Context &other) noexcept;

  // The session kept for name (a new reference), or nullptr.
  ssl_session_st *find_session(const char *name) noexcept;

  // Use create(); public only for util::make/destroy.
  Context() noexcept = default;
  ~Context();

 private:
  static constexpr std::size_t kSessions = 16;
  static constexpr std::size_t kNameMax = 255;
  struct Session {
    char name[kNameMax + 1];
    ssl_session_st *session;
    std::uint64_t used;  // the cache's clock when stored: the oldest goes first
  };

  int configure(async_tls_side side, const async_tls_options &options) noexcept;
  // OpenSSL's new-session callback: the session of a client connection
  // (SSL_get_app_data(ssl) is its TlsLayer) kept for its server name.
  static int on_new_session(ssl_st *ssl, ssl_session_st *session) noexcept;
  void keep_session(const char *name, ssl_session_st *session) noexcept;
  // The server's ALPN choice: its first protocol the client offers.
  // A server's SNI: the context added for the name the client sent, if any.
  static int on_server_name(ssl_st *ssl, int *alert, void *self) noexcept;
  static int on_alpn_select(ssl_st *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                            unsigned int inlen, void *self) noexcept;

  std::atomic<std::uint32_t> refs_{1};
  ssl_ctx_st *ctx_ = nullptr;
  bool server_ = false;
  bool verify_ = true;
  std::uint64_t handshake_timeout_ms_ = 0;
  // ALPN in wire format (length-prefixed names).
  unsigned char alpn_[256]{};
  unsigned alpn_len_ = 0;
  // Connections on several loops may share one context.
  std::mutex sessions_lock_;
  Session sessions_[kSessions]{};
  std::uint64_t session_clock_ = 0;
  // A server's contexts per name (SNI), each retained; read by handshakes
  // on any loop's thread.
  struct ServerName {
    char name[kNameMax + 1];
    Context *context;
  };
  std::mutex names_lock_;
  ServerName *names_ = nullptr;
  std::size_t names_count_ = 0;
};

}  // namespace async::tls
