/*
 * async_tcp_connect: a TCP connection to host:port as a future of a stream.
 *
 * The host is resolved inside the loop (async/dns.h). Literals and local
 * names ("localhost", "LOCALHOST.", "foo.localhost": the loopback addresses
 * "::1" and "127.0.0.1", as async/dns.h and async_tcp_listen() take them)
 * need no lookup. With AF_UNSPEC, AAAA and A are looked up separately, so
 * a family that answers late or never holds the other back only for the
 * resolution delay: attempts start once AAAA has answered (or failed), or
 * once A has answered and the resolution delay (50 ms) has passed without
 * AAAA, or once dns_timeout_ms gives AAAA up, whichever comes first; later
 * answers add their addresses to those still to try.
 * With Happy Eyeballs (RFC 8305, the default) attempts alternate families,
 * IPv6 first, and a new attempt starts every attempt delay (250 ms) while
 * earlier ones are still connecting, or at once when one fails. The first
 * attempt to connect wins; the others are closed.
 * Without Happy Eyeballs (happy_eyeballs = 0) the addresses are tried one
 * at a time, each once the previous one failed: every IPv6 address first,
 * then IPv4 (async_getaddrinfo()'s order).
 *
 * The future completes on a later iteration than this call:
 * - DONE once the stream's connection_made has run; its value is the
 *   async_stream *, usable as long as the future is not freed (once the
 *   stream's connection_lost has run, calls on it return ASYNC_ECLOSED).
 *   If connection_made closed the stream at once, the future fails with
 *   ASYNC_ECLOSED instead (the stream's own callbacks still run).
 * - FAILED with the first error met (a DNS error, or the first attempt's
 *   error, e.g. ASYNC_ECONNREFUSED), or ASYNC_ETIMEDOUT at the total
 *   timeout; protocol->release(userdata) has been called then (the
 *   protocol saw nothing else).
 * - CANCELLED (async_future_cancel or free): lookups and attempts stop;
 *   release(userdata) follows from the loop (a later iteration, before the
 *   future's done callbacks; never inside the cancelling call), or, if the
 *   connection was already made, the stream is aborted and ends through its
 *   connection_lost (and release).
 * Every failed attempt is also reported to options->attempt_failed, if set,
 * with its address and error, from the loop (never inside a call into the
 * library), and only while the future is pending: once it has completed
 * (DONE, FAILED or CANCELLED, also by a cancel or free made inside
 * attempt_failed itself, which is allowed), attempts still in flight are
 * closed without a report. So attempt_failed_userdata, which gets no
 * release of its own, may be freed as soon as the future has completed:
 * right after the async_future_cancel()/free() that cancelled it, or in
 * one of its done callbacks.
 * All functions: loop thread only.
 */
#ifndef ASYNC_CONNECT_H
#define ASYNC_CONNECT_H

#include "common.h"
#include "stream.h"

#ifdef __cplusplus
extern "C" {
#endif

struct sockaddr;

typedef void (*async_attempt_failed_fn)(const struct sockaddr *addr, size_t addrlen, int error, void *userdata);

typedef struct async_connect_options {
  uint32_t size;                          /* sizeof(async_connect_options) */
  int family;                             /* AF_UNSPEC (default), AF_INET or AF_INET6 */
  const char *local_address;              /* bind here first: "192.0.2.7", "[2001:db8::7]:4000"; NULL: any */
  int happy_eyeballs;                     /* non-zero (default): RFC 8305; 0: one attempt at a time (same lookups) */
  uint32_t resolution_delay_ms;           /* default 50 */
  uint32_t attempt_delay_ms;              /* default 250 */
  uint64_t attempt_timeout_ms;            /* per attempt; 0 (default): the kernel's */
  uint64_t total_timeout_ms;              /* lookups and attempts together; 0 (default): none */
  async_attempt_failed_fn attempt_failed; /* NULL: not told */
  void *attempt_failed_userdata;
  /*
   * Lookups still unanswered this long after they started are given up:
   * attempts go on with the addresses of the family that answered; with
   * none, the connect fails (ASYNC_ETIMEDOUT unless a lookup failed first).
   * 0 (default): the loop's lookup deadline (async_dns_set_deadline()).
   */
  uint64_t dns_timeout_ms;
} async_connect_options;

#define ASYNC_CONNECT_OPTIONS_INIT \
  { sizeof(async_connect_options), 0, 0, 1, 50, 250, 0, 0, 0, 0, 0 }

/*
 * Connects to host:port with options (NULL: the defaults) and makes the
 * connection a stream driven by protocol (copied) and userdata.
 * Errors (returned; nothing called, userdata stays the caller's):
 * ASYNC_EINVAL (NULL, empty host, invalid protocol or options, a malformed
 * local address), ASYNC_EBUSY (a reader bound already, async/reader.h),
 * ASYNC_ENOMEM.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_tcp_connect(async_future **out, async_loop *loop, const char *host, uint16_t port,
                                const async_connect_options *options, const async_stream_protocol *protocol,
                                void *userdata);

/*
 * Connects to a Unix stream socket: a filesystem path or an "@abstract"
 * name. The future behaves as for async_tcp_connect() (one attempt; a
 * missing socket fails it with ASYNC_ECONNREFUSED, as the kernel says).
 * Errors (returned): ASYNC_EINVAL (NULL, empty or too long a path, invalid
 * protocol), ASYNC_EBUSY (as for async_tcp_connect()), ASYNC_ENOMEM.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_unix_connect(async_future **out, async_loop *loop, const char *path,
                                 const async_stream_protocol *protocol, void *userdata);

#ifdef __cplusplus
}
#endif

#endif
