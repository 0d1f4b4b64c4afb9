/*
 * The OpenSSL side shared by the TLS echo servers written on OpenSSL
 * directly (tls_echo_epoll.c, tls_echo_uv.c): the server context as a
 * performance-minded OpenSSL user makes it (bench/tls_policy.h).
 */
#ifndef TLS_RAW_H
#define TLS_RAW_H

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tls_policy.h"

/* OpenSSL's server defaults, TLS 1.2 at least, cert and key from files; exits on failure. */
static inline SSL_CTX *tls_raw_server_ctx(const struct tls_args *a) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
      SSL_CTX_use_certificate_chain_file(ctx, a->cert) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, a->key, SSL_FILETYPE_PEM) != 1) {
    ERR_print_errors_fp(stderr);
    exit(1);
  }
  /* A write that OpenSSL could not finish is called again from the connection's own buffer, which moves. */
  SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  return ctx;
}

#endif
