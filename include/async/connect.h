/**
 * @file
 * @brief async_tcp_connect: a TCP connection to host:port as a future of a
 * stream (and async_unix_connect(), its Unix socket counterpart).
 *
 * The host is resolved inside the loop (async/dns.h). Literals and local
 * names ("localhost", "LOCALHOST.", "foo.localhost": the loopback
 * addresses "::1" and "127.0.0.1", as async/dns.h and async_tcp_listen()
 * take them) need no lookup. With AF_UNSPEC, AAAA and A are looked up
 * separately, so a family that answers late or never holds the other back
 * only for the resolution delay: attempts start once AAAA has answered
 * (or failed), or once A has answered and the resolution delay (50 ms) has
 * passed without AAAA, or once dns_timeout_ms gives AAAA up, whichever
 * comes first; later answers add their addresses to those still to try.
 * With Happy Eyeballs (RFC 8305, the default) attempts alternate families,
 * IPv6 first, and a new attempt starts every attempt delay (250 ms) while
 * earlier ones are still connecting, or at once when one fails. The first
 * attempt to connect wins; the others are closed.
 * Without Happy Eyeballs (sequential non-zero) the addresses are tried one
 * at a time, each once the previous one failed: every IPv6 address first,
 * then IPv4 (async_getaddrinfo()'s order).
 *
 * The future completes on a later iteration than the call:
 * - DONE once the stream's connection_made has run; its value is the
 *   async_stream *, and a reference to it (async/stream.h, Lifetime): the
 *   pointer stays valid as long as the future's memory, even after the
 *   stream ended (calls on it then return ASYNC_ECLOSED). To keep the
 *   stream longer, async_stream_retain() it.
 *   If connection_made closed the stream at once, the future fails with
 *   ASYNC_ECLOSED instead (the stream's own callbacks still run).
 * - FAILED with the first error met (a DNS error, or the first attempt's
 *   error, e.g. ASYNC_ECONNREFUSED), or ASYNC_ETIMEDOUT at the total
 *   timeout; protocol->release(userdata) has been called then (the
 *   protocol saw nothing else).
 * - CANCELLED (async_future_cancel() or async_future_free()): lookups and
 *   attempts stop; release(userdata) follows from the loop (a later
 *   iteration, before the future's done callbacks; never inside the
 *   cancelling call), or, if the connection was already made, the stream
 *   is aborted and ends through its connection_lost (and release).
 *
 * Every failed attempt is also reported to options->attempt_failed, if
 * set, with its address and error, from the loop (never inside a call into
 * the library), and only while the future is pending: once it has
 * completed (DONE, FAILED or CANCELLED, also by a cancel or free made
 * inside attempt_failed itself, which is allowed), attempts still in
 * flight are closed without a report. So attempt_failed_userdata, which
 * gets no release of its own, may be freed as soon as the future has
 * completed: right after the async_future_cancel()/free() that cancelled
 * it, or in one of its done callbacks.
 *
 * All functions: the loop's thread only. With the loop's owner-thread
 * check on (async_loop_set_thread_check()), a call from another thread
 * returns ASYNC_EWRONGTHREAD and changes nothing.
 */
#ifndef ASYNC_CONNECT_H
#define ASYNC_CONNECT_H

#include "common.h"
#include "stream.h"

#ifdef __cplusplus
extern "C" {
#endif

struct sockaddr;
struct async_tls_context;

/**
 * @brief A connect attempt failed (async_connect_options.attempt_failed),
 * run from the loop while the connect future is pending.
 *
 * @param addr     the address tried; valid during the call only.
 * @param addrlen  its length.
 * @param error    the attempt's error (an ASYNC_E* code).
 * @param userdata async_connect_options.attempt_failed_userdata.
 */
typedef void (*async_attempt_failed_fn)(const struct sockaddr *addr, size_t addrlen, int error, void *userdata);

/**
 * @brief async_tcp_connect() options.
 *
 * Every field's default is 0 (NULL, 0.0): a struct all zero but size means
 * every default, as NULL options do. size: sizeof(async_connect_options)
 * as the caller's header has it, so programs built against another
 * version keep working (docs/design.md, "Option structs"): the library
 * reads only the fields size covers (the others take their default) and
 * refuses (ASYNC_EINVAL) a size below the first version's or, from a
 * newer header, non-zero fields it does not know. A negative delay means
 * none (0 being the default).
 */
typedef struct async_connect_options {
  uint32_t size;                          /**< sizeof(async_connect_options). */
  int family;                             /**< 0 (ASYNC_AF_UNSPEC, default): both; ASYNC_AF_INET or ASYNC_AF_INET6;
                                               another value: ASYNC_EINVAL. */
  const char *local_address;              /**< bind here first: "192.0.2.7", "[2001:db8::7]:4000" (copied);
                                               NULL (default): any; malformed: ASYNC_EINVAL. */
  int sequential;                         /**< 0 (default): Happy Eyeballs (RFC 8305); non-zero: one attempt at a
                                               time (same lookups). */
  int32_t resolution_delay_ms;            /**< 0 (default): 50; negative: none. */
  int32_t attempt_delay_ms;               /**< 0 (default): 250; negative: none (an attempt per address at once). */
  uint64_t attempt_timeout_ms;            /**< per attempt; 0 (default): the kernel's. */
  uint64_t total_timeout_ms;              /**< lookups and attempts together (ASYNC_ETIMEDOUT); 0 (default):
                                               none. */
  async_attempt_failed_fn attempt_failed; /**< each failed attempt; NULL (default): not told. */
  void *attempt_failed_userdata;          /**< passed to attempt_failed; no release of its own (see the file
                                               comment); NULL (default). */
  /**
   * Lookups still unanswered this long after they started are given up:
   * attempts go on with the addresses of the family that answered; with
   * none, the connect fails (ASYNC_ETIMEDOUT unless a lookup failed first).
   * 0 (default): the loop's lookup deadline (async_dns_set_deadline()).
   */
  uint64_t dns_timeout_ms;
  /**
   * A client TLS context (async/tls.h): the winning connection gets TLS
   * (as async_tls_push() puts it), and the future resolves only once the
   * handshake is done, with the stream above TLS; the protocol sees
   * nothing before (no connection_made for a failed handshake). The
   * handshake's errors fail the future (ASYNC_ECERT, ASYNC_ETLS,
   * ASYNC_EPROTO, ASYNC_ETRUNCATED, ASYNC_ETIMEDOUT at the context's
   * handshake timeout, which runs apart from total_timeout_ms); cancelling
   * during the handshake aborts it. Happy Eyeballs picks the winner on the
   * TCP connect, as without TLS; a server name OpenSSL refuses to check
   * fails it with ASYNC_EINVAL once TCP is up. Retained until the connect is over (a
   * reconnector: until it stopped). NULL (default): plain TCP; a server
   * context, or not a context: ASYNC_EINVAL.
   */
  struct async_tls_context *tls;
  /**
   * The name TLS checks the certificate against and sends as SNI (copied,
   * 1 to 255 bytes). NULL (default): host. Given without tls:
   * ASYNC_EINVAL.
   */
  const char *server_name;
} async_connect_options;

/** @brief C convenience, the same as { sizeof(async_connect_options) }: every default. */
#define ASYNC_CONNECT_OPTIONS_INIT \
  { sizeof(async_connect_options), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }

/**
 * @brief Connects to host:port and makes the connection a stream driven by
 * protocol and userdata.
 *
 * @param[out] out      receives the connect's future (see the file comment
 *                      for how it completes).
 * @param      loop     the loop.
 * @param      host     a name or a numeric address, 1 to 255 bytes.
 * @param      port     the port.
 * @param      options  the options (copied); NULL: the defaults.
 * @param      protocol the stream's callbacks (copied).
 * @param      userdata passed to the stream's callbacks and to release;
 *                      may be NULL.
 * @retval 0                  *out is the connect's future, pending.
 * @retval ASYNC_EINVAL       out, host or protocol is NULL, loop is NULL or
 *                            not a loop; host is empty or longer than 255
 *                            bytes; an invalid protocol (as for
 *                            async_stream_adopt()); options of a size the
 *                            library refuses, a family other than the
 *                            three, a malformed local address, a tls
 *                            that is not a client context, a server_name
 *                            without tls, empty or too long; a reader's
 *                            protocol with a userdata that is not a live
 *                            reader.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller.
 * @retval ASYNC_EBUSY        userdata is a reader bound to a stream
 *                            already (async/reader.h).
 * @retval ASYNC_ENOMEM       out of memory.
 * @ownership The future is the caller's (async_future_free(); freeing it
 *            pending cancels the connect); its value, the stream, is a
 *            reference owned by the future. userdata stays the caller's
 *            until release(userdata). On an error nothing is called and
 *            userdata stays the caller's. host and options (its
 *            local_address too) are copied.
 * @thread The loop's thread only.
 * @callbacks None run inside this call; the stream's callbacks,
 *            attempt_failed and the future's done callbacks run from the
 *            loop.
 */
ASYNC_API int async_tcp_connect(async_future **out, async_loop *loop, const char *host, uint16_t port,
                                const async_connect_options *options, const async_stream_protocol *protocol,
                                void *userdata);

/**
 * @brief Connects to a Unix stream socket: a filesystem path or an
 * abstract name written with a leading `@` character.
 *
 * The future behaves as for async_tcp_connect() (one attempt; a missing
 * socket fails it with ASYNC_ECONNREFUSED, as the kernel says).
 *
 * @param[out] out      receives the connect's future.
 * @param      loop     the loop.
 * @param      path     the path, or the abstract name.
 * @param      protocol the stream's callbacks (copied).
 * @param      userdata passed to the stream's callbacks and to release;
 *                      may be NULL.
 * @retval 0                  *out is the connect's future, pending.
 * @retval ASYNC_EINVAL       out, path or protocol is NULL, loop is NULL or
 *                            not a loop; path is empty or too long; an
 *                            invalid protocol; a reader's protocol with a
 *                            userdata that is not a live reader.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller.
 * @retval ASYNC_EBUSY        as for async_tcp_connect().
 * @retval ASYNC_ENOMEM       out of memory.
 * @ownership As for async_tcp_connect(); path is copied.
 * @thread The loop's thread only.
 * @callbacks None run inside this call; the stream's callbacks and the
 *            future's done callbacks run from the loop.
 */
ASYNC_API int async_unix_connect(async_future **out, async_loop *loop, const char *path,
                                 const async_stream_protocol *protocol, void *userdata);

#ifdef __cplusplus
}
#endif

#endif
