/*
 * A small SOCKS5 server (RFC 1928 CONNECT, RFC 1929 username/password)
 * written with libasync, for tests of the SOCKS5 client layer: it listens
 * on 127.0.0.1 (a free port), connects to the target with
 * async_tcp_connect() and relays bytes both ways. Its faults are chosen by
 * struct socks5_config: a reply code instead of connecting, replies of the
 * test's own bytes (malformed ones), every handshake byte in a write of
 * its own on a later loop iteration, a close after some handshake bytes,
 * silence, bytes of its own right after the success reply.
 */
#ifndef LIBASYNC_SOCKS5_SERVER_H
#define LIBASYNC_SOCKS5_SERVER_H

#include <async.h>
#include <stddef.h>
#include <stdint.h>

struct socks5_config {
  const char *username;          /* non-NULL: username/password required */
  const char *password;          /* with username */
  uint8_t reply;                 /* non-zero: this REP instead of connecting */
  uint8_t bound_type;            /* the success reply's ATYP: 0 or 1 IPv4, 3 a name, 4 IPv6 */
  const uint8_t *method_reply;   /* sent instead of the method reply */
  size_t method_reply_len;
  const uint8_t *auth_reply;     /* sent instead of the auth reply */
  size_t auth_reply_len;
  const uint8_t *connect_reply;  /* sent instead of the connect reply (nothing connected) */
  size_t connect_reply_len;
  const uint8_t *after_reply;    /* sent right behind a success reply, in the same write */
  size_t after_reply_len;
  int byte_by_byte;              /* each handshake byte in a write of its own, an iteration apart */
  int close_early;               /* close after close_after handshake bytes (0: on the greeting) */
  size_t close_after;
  int silent;                    /* read the greeting, never answer */
};

struct socks5_server {
  async_loop *loop;
  async_server *server;
  uint16_t port;
  struct socks5_config cfg;
  /* What the last CONNECT asked: its ATYP, target (text) and port. */
  int connects, auths;
  uint8_t last_type;
  char last_host[256];
  uint16_t last_port;
  int sessions; /* alive */
};

/* Starts listening; asserts (cmocka) on failure. cfg may be NULL. */
void socks5_server_start(struct socks5_server *s, async_loop *loop, const struct socks5_config *cfg);
/* Aborts its connections and closes the listener; run the loop after. */
void socks5_server_stop(struct socks5_server *s);

#endif
