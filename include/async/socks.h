/**
 * @file
 * @brief A SOCKS5 client layer (RFC 1928 CONNECT, with no authentication
 * or RFC 1929 username/password): TCP / SOCKS5 / your protocol, as a
 * future of the tunnelled stream.
 *
 * The stream given (lower) is connected to the proxy: a stream from
 * async_tcp_connect(), an accepted one, or a layered one (a rate limiter,
 * another proxy's tunnel). The push takes it over at once (its protocol's
 * release runs inside the call, as for async_layer_push_rate_limit()),
 * sends the greeting, and speaks the handshake: the method the proxy
 * picks (no authentication, or username/password when credentials are
 * given: both are offered then), then the CONNECT request for the target.
 * The proxy's replies may arrive cut anywhere, byte by byte too; bytes the
 * proxy sends after its success reply belong to the tunnel: the protocol
 * above gets them first.
 *
 * On the proxy's success a layer that passes bytes unchanged goes onto
 * lower (async/layer.h) with the protocol and userdata given: a new stream
 * above it, which the protocol drives as any async_stream and cannot tell
 * from a plain connection to the target. Everything async/layer.h says
 * holds for it: flow control, write_eof, close flushing through the stack,
 * abort, async_layer_pop() (the stream below goes on carrying the tunnel
 * for another protocol), async_layer_is_layered() answering 1.
 *
 * The future completes on a later iteration than the call:
 * - DONE once the tunnel stream's connection_made has run; its value is
 *   the async_stream * above, and a reference to it (async/stream.h,
 *   Lifetime), as for async_tcp_connect(). If connection_made closed the
 *   stream at once, the future fails with ASYNC_ECLOSED instead (the
 *   stream's own callbacks still run).
 * - FAILED with the handshake's error, lower aborted (the proxy's
 *   connection is of no further use; unless another protocol took lower
 *   over, which keeps it) and protocol->release(userdata)
 *   called (the protocol saw nothing else). Errors: the proxy's reply code
 *   0x02 ASYNC_EACCES (not allowed), 0x03 ASYNC_ENETUNREACH, 0x04
 *   ASYNC_EHOSTUNREACH, 0x05 ASYNC_ECONNREFUSED, 0x06 ASYNC_ETIMEDOUT (TTL
 *   expired), 0x07 and 0x08 ASYNC_ENOTSUP (command, address type), 0x01
 *   and codes RFC 1928 does not define ASYNC_EPROTO; credentials rejected
 *   by the proxy, or no method acceptable to it (0xFF: it wants
 *   credentials none were given for) ASYNC_EACCES; a malformed reply (a
 *   wrong version, a method never offered, a non-zero reserved byte, an
 *   unknown address type) ASYNC_EPROTO; the proxy closing before its reply
 *   ASYNC_EEOF; lower lost, with its error (ASYNC_ECLOSED when it was
 *   closed here); lower taken by another protocol (another push,
 *   async_stream_set_protocol()) ASYNC_ECLOSED; ASYNC_ENOMEM.
 * - CANCELLED (async_future_cancel() or async_future_free()): during the
 *   handshake lower is aborted and release(userdata) follows from the loop
 *   (a later iteration, never inside the cancelling call); once the tunnel
 *   is up, its stream is aborted and ends through its connection_lost (and
 *   release). async_future_timeout() bounds a handshake this way.
 *
 * Exactly one final notification per userdata: the new protocol's
 * userdata gets its release once (after connection_lost when the tunnel
 * was made), lower's old protocol's userdata got its release inside the
 * push. The caller's references to lower (async_stream_retain(), a connect
 * future's value) keep their meaning.
 *
 * All functions: the loop's thread only. With the loop's owner-thread
 * check on (async_loop_set_thread_check()), a call from another thread
 * returns ASYNC_EWRONGTHREAD and changes nothing.
 */
#ifndef ASYNC_SOCKS_H
#define ASYNC_SOCKS_H

#include "common.h"
#include "stream.h"

#ifdef __cplusplus
extern "C" {
#endif

struct sockaddr;

/**
 * @brief Pushes a SOCKS5 client onto lower, a stream connected to the
 * proxy, asking it to CONNECT to host:port.
 *
 * A numeric host ("192.0.2.1", "2001:db8::1") is sent as an address, any
 * other as a name the proxy resolves (the client makes no DNS lookup).
 * See the file comment for the handshake and how the future completes.
 *
 * @param[out] out      receives the handshake's future.
 * @param      lower    the stream to the proxy (open both ways; layered
 *                      or not).
 * @param      host     the target: a name or a numeric address, 1 to 255
 *                      bytes (copied).
 * @param      port     the target's port.
 * @param      username NULL: no authentication offered; else RFC 1929's
 *                      username, 1 to 255 bytes (copied).
 * @param      password with a username: its password, 0 to 255 bytes
 *                      (copied; NULL: empty); without one: NULL.
 * @param      protocol the callbacks of the tunnel's stream (copied).
 * @param      userdata passed to them and to release; may be NULL.
 * @retval 0                  *out is the handshake's future, pending;
 *                            lower's protocol is the handshake's.
 * @retval ASYNC_EINVAL       out, host or protocol is NULL; lower is NULL
 *                            or not a stream; host empty or longer than
 *                            255 bytes; a username empty or longer than
 *                            255 bytes, a password longer than 255 bytes,
 *                            or a password without a username; a protocol
 *                            async_stream_adopt() refuses; a reader's
 *                            protocol (async/reader.h) with a userdata
 *                            that is not a live reader.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller.
 * @retval ASYNC_ECLOSED      lower is closing, lost or has ended, its end
 *                            of file was read or written, or it is a
 *                            pipe's write end.
 * @retval ASYNC_EBUSY        userdata is a reader bound to a stream
 *                            already.
 * @retval ASYNC_ENOMEM       out of memory.
 * @ownership The future is the caller's (async_future_free(); freeing it
 *            pending cancels the handshake); its value, the stream above,
 *            is a reference owned by the future. userdata stays the
 *            caller's until release(userdata); lower's old protocol's
 *            userdata got its release. On an error nothing changed and
 *            nothing was called. host, username and password are copied.
 * @thread The loop's thread only.
 * @callbacks lower's old protocol's release runs inside this call; the
 *            tunnel stream's callbacks and the future's done callbacks run
 *            from the loop.
 */
ASYNC_API int async_layer_push_socks5(async_future **out, async_stream *lower, const char *host, uint16_t port,
                                      const char *username, const char *password, const async_stream_protocol *protocol,
                                      void *userdata);

/**
 * @brief async_layer_push_socks5() toward an IPv4 or IPv6 address and its
 * port instead of a host.
 *
 * @param[out] out      receives the handshake's future.
 * @param      lower    the stream to the proxy.
 * @param      addr     the target: a struct sockaddr_in or sockaddr_in6
 *                      with its port (copied).
 * @param      addrlen  its length.
 * @param      username as for async_layer_push_socks5().
 * @param      password as for async_layer_push_socks5().
 * @param      protocol the callbacks of the tunnel's stream (copied).
 * @param      userdata passed to them and to release; may be NULL.
 * @retval 0                  *out is the handshake's future, pending.
 * @retval ASYNC_EINVAL       out, addr or protocol is NULL; lower is NULL
 *                            or not a stream; addr neither IPv4 nor IPv6,
 *                            or addrlen shorter than its family's
 *                            struct; bad credentials or protocol, as for
 *                            async_layer_push_socks5().
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller.
 * @retval ASYNC_ECLOSED      as for async_layer_push_socks5().
 * @retval ASYNC_EBUSY        as for async_layer_push_socks5().
 * @retval ASYNC_ENOMEM       out of memory.
 * @ownership As for async_layer_push_socks5(); addr is copied.
 * @thread The loop's thread only.
 * @callbacks As for async_layer_push_socks5().
 */
ASYNC_API int async_layer_push_socks5_addr(async_future **out, async_stream *lower, const struct sockaddr *addr,
                                           size_t addrlen, const char *username, const char *password,
                                           const async_stream_protocol *protocol, void *userdata);

#ifdef __cplusplus
}
#endif

#endif
