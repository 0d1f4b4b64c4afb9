/**
 * @file
 * @brief TLS as a stream layer (async/layer.h), on OpenSSL: a context holds
 * what connections share (certificates, trust, ALPN, a client's session
 * cache); async_tls_push() puts TLS on a live stream, and the protocol
 * above gets an ordinary async_stream of plaintext.
 *
 * Secure by default: a client verifies the server's certificate against
 * the system's CA store (or options.ca_file) and checks it names the
 * server_name given to the push (a DNS name, or an IP address against the
 * certificate's IP-address SANs); TLS 1.2 is the lowest version either side
 * speaks; renegotiation is refused. Files are read when the context is
 * made, never on the loop's path.
 *
 * A connection through the layer:
 * - The stream above gets connection_made from the loop at once, as any
 *   layered stream; its writes wait in its own buffer until the handshake
 *   is done. The handshake's future (async_tls_push()) resolves then, or
 *   fails with the error that ends the stream.
 * - How it ends, as connection_lost's error on the stream above (also the
 *   handshake future's error if it comes first):
 *   - 0: a clean end. The peer's close_notify comes up as eof_received;
 *     closing the stream above (async_stream_close(), or eof_received
 *     returning 0) sends close_notify and closes the stream below.
 *   - ASYNC_ETRUNCATED: the connection ended (end of file) without the
 *     peer's close_notify, so the data may have been cut short.
 *   - ASYNC_ECONNRESET (and the stream below's other errors): as below.
 *   - ASYNC_ECERT: the peer's certificate failed verification
 *     (async_tls_verify_error() says why).
 *   - ASYNC_ETLS: the handshake failed (no shared version or cipher, an
 *     alert from the peer, a client certificate the server wanted and did
 *     not get).
 *   - ASYNC_EPROTO: the peer does not speak TLS (plaintext HTTP to a TLS
 *     port) or sent a malformed or undecryptable record.
 *   - ASYNC_ETIMEDOUT: the handshake took longer than the context's
 *     handshake timeout.
 * - async_stream_write_eof() above sends close_notify once the buffer went
 *   through (TLS has no half-close: the peer usually answers with its own);
 *   the TCP stream stays open, and reading goes on.
 * - async_layer_pop() on the stream above sends close_notify, waits for the
 *   peer's, and hands the stream below over open: bytes the peer sent after
 *   its close_notify go to the pop's protocol. A peer that ends the
 *   connection instead makes the pop's protocol's release run instead.
 *
 * Without a push of one's own: async_connect_options.tls (async/connect.h)
 * puts TLS on a connect's stream (a reconnector's too, which then resumes
 * its sessions), and async_server_set_tls() on a server's accepted
 * connections; either way the user's protocol sees the stream only once
 * the handshake is done.
 *
 * Memory: OpenSSL allocates with its own allocator (not async_set_allocator()).
 * A context is reference counted and not tied to a loop: any thread may
 * retain, release or push it (a push is on the stream's loop's thread).
 */
#ifndef ASYNC_TLS_H
#define ASYNC_TLS_H

#include "common.h"
#include "future.h"
#include "server.h"
#include "stream.h"

#ifdef __cplusplus
extern "C" {
#endif

/** @brief A TLS context: the settings and files shared by connections (opaque, reference counted). */
typedef struct async_tls_context async_tls_context;

/** @brief Which end of the handshake a context is for. */
typedef enum async_tls_side {
  ASYNC_TLS_CLIENT = 0,               /**< connects: verifies the server and checks its name. */
  ASYNC_TLS_SERVER = 1,               /**< accepts: presents a certificate. */
  ASYNC_TLS_SIDE_FORCE32 = 0x7FFFFFFF /**< keeps the enum 32 bits wide; not a side */
} async_tls_side;

/** @brief async_tls_options.flags: each one a departure from the secure default. */
typedef enum async_tls_flags {
  /** A client does not verify the server's certificate nor its name (tests, pinning done elsewhere). */
  ASYNC_TLS_NO_VERIFY = 1,
  /** A server asks for a client certificate and fails a handshake without a valid one (options.ca_file). */
  ASYNC_TLS_VERIFY_CLIENT = 2,
  /** A client keeps no sessions to resume (each handshake is a full one). */
  ASYNC_TLS_NO_SESSION_CACHE = 4,
  ASYNC_TLS_FLAGS_FORCE32 = 0x7FFFFFFF /**< keeps the enum 32 bits wide; not a flag */
} async_tls_flags;

/**
 * @brief async_tls_context_new() options; every field's default is 0 (as
 * NULL options). size: sizeof(async_tls_options) as the caller's header
 * has it (docs/design.md, "Option structs").
 */
typedef struct async_tls_options {
  uint32_t size;                 /**< sizeof(async_tls_options). */
  uint32_t flags;                /**< async_tls_flags, or-ed; 0 (default): the secure defaults. */
  const char *ca_file;           /**< PEM file of the CAs that verify the peer; NULL (default): the system's CA
                                      store for a client, none for a server. */
  const char *cert_file;         /**< PEM file, the certificate then its chain; a server's is required; a
                                      client's is its client certificate. NULL (default): none. */
  const char *key_file;          /**< PEM file of cert_file's private key; NULL (default): in cert_file. */
  const char *alpn;              /**< ALPN protocols in order of preference, comma-separated ("h2,http/1.1");
                                      NULL (default): no ALPN. A server picks its first one the client offers. */
  uint64_t handshake_timeout_ms; /**< 0 (default): 30000. */
} async_tls_options;

/** @brief C convenience, the same as { sizeof(async_tls_options) }: every default. */
#define ASYNC_TLS_OPTIONS_INIT \
  { sizeof(async_tls_options), 0, 0, 0, 0, 0, 0 }

/**
 * @brief Makes a TLS context for side, with its files read now.
 *
 * @param[out] out     receives the context, with one reference.
 * @param      side    ASYNC_TLS_CLIENT or ASYNC_TLS_SERVER.
 * @param      options the options (read during the call only); NULL: the
 *                     defaults.
 * @retval 0            *out is the context.
 * @retval ASYNC_EINVAL out is NULL; side is neither; options of a size the
 *                      library refuses, unknown flags; a file that cannot
 *                      be read or parsed, a key that is not cert_file's,
 *                      a server without cert_file, a key without a
 *                      certificate; an ALPN list with an empty or too long
 *                      (over 255 bytes) name.
 * @retval ASYNC_ETLS   OpenSSL could not make the context.
 * @retval ASYNC_ENOMEM out of memory.
 * @ownership The context is the caller's: async_tls_context_release()
 *            drops its reference. Each stream pushed with it holds one
 *            more until it ends. The options' strings are the caller's.
 * @thread Any thread.
 * @callbacks None.
 */
ASYNC_API int async_tls_context_new(async_tls_context **out, async_tls_side side, const async_tls_options *options);

/**
 * @brief Takes one more reference to ctx.
 *
 * @param ctx the context.
 * @retval 0            done.
 * @retval ASYNC_EINVAL ctx is NULL or not a context.
 * @ownership The caller owns one more reference.
 * @thread Any thread.
 * @callbacks None.
 */
ASYNC_API int async_tls_context_retain(async_tls_context *ctx);

/**
 * @brief Drops one reference to ctx; the last one frees it.
 *
 * @param ctx the context.
 * @retval 0            done.
 * @retval ASYNC_EINVAL ctx is NULL or not a context.
 * @ownership The caller's reference is gone; streams using ctx keep
 *            theirs.
 * @thread Any thread.
 * @callbacks None.
 */
ASYNC_API int async_tls_context_release(async_tls_context *ctx);

/**
 * @brief Makes a server context present other's certificate to a client
 * that names name in its SNI (the default certificate, ctx's own, goes to
 * any other name and to a client that sends none).
 *
 * The name matches the client's whole name, ignoring case (no wildcards).
 * The handshake goes on with other's certificate and key, and also with
 * other's ALPN list and the CA certificates it trusts for client
 * certificates (OpenSSL takes them from the context the handshake
 * switched to): configure those alike. ctx's handshake timeout and
 * whether it asks for a client certificate stay. Add the names before
 * ctx is in use (names added later apply to handshakes that start later).
 *
 * @param ctx   a server context.
 * @param name  the server name, 1 to 255 bytes (copied).
 * @param other a server context with no names of its own, not ctx.
 * @retval 0            done.
 * @retval ASYNC_EINVAL ctx, name or other is NULL or not a context; ctx
 *                      or other is a client context; other is ctx or has
 *                      names of its own; name is empty, longer than 255
 *                      bytes or added already.
 * @retval ASYNC_ENOMEM out of memory.
 * @ownership ctx takes a reference to other (released with ctx's last
 *            one); name is copied.
 * @thread Any thread.
 * @callbacks None.
 */
ASYNC_API int async_tls_context_add_server_name(async_tls_context *ctx, const char *name, async_tls_context *other);

/**
 * @brief Puts TLS with a server context on the connections server accepts
 * from now on: each handshakes before the server's factory is called, so
 * the factory and its protocol see only connections whose handshake is
 * done (connection_made comes after it).
 *
 * A connection whose handshake fails (not TLS, a bad client certificate,
 * a peer that gives up, the context's handshake timeout) is closed without
 * reaching the factory, and logged through the loop's log hook at
 * ASYNC_LOG_INFO. Connections still in their handshake are not counted by
 * async_server_connection_count(); async_server_close_connections() and
 * the server's end abort them. Works for async_tcp_listen(),
 * async_tcp_listen_addrinfo() and async_unix_listen() servers alike. The
 * accepted streams are streams above TLS: async_tls_alpn() and the other
 * getters work on them.
 *
 * @param server the server.
 * @param ctx    a server context (retained while the server holds it);
 *               NULL: plain connections from now on.
 * @retval 0                  done.
 * @retval ASYNC_EINVAL       server is NULL or not a server; ctx is not a
 *                            context, or is a client context.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller.
 * @retval ASYNC_ECLOSED      the server handle is closing.
 * @ownership The server holds a reference to ctx until another call
 *            replaces it or the server is freed; the caller keeps its own.
 * @thread The loop's thread only.
 * @callbacks None run inside this call; the factory and the streams'
 *            callbacks run from the loop.
 */
ASYNC_API int async_server_set_tls(async_server *server, async_tls_context *ctx);

/**
 * @brief Pushes TLS onto lower: a new stream above it carries plaintext,
 * and the handshake starts (a client sends its hello now).
 *
 * A client context checks the server's certificate names server_name and
 * sends it as SNI (not for an IP address); with its session cache on, it
 * offers the last session it kept for server_name, so a reconnect with the
 * same context resumes (async_tls_resumed()). See the file comment for how
 * the connection goes and ends, and async/layer.h for the stack's rules.
 *
 * @param[out] out         receives the stream above TLS.
 * @param[out] handshake   receives a future that resolves (value NULL)
 *                         once the handshake is done, or fails with the
 *                         error that ends the stream (ASYNC_ECLOSED for a
 *                         stream above closed first); NULL: none.
 * @param      lower       the stream to put TLS on (open; layered or not).
 * @param      ctx         the context (retained while the stream lives).
 * @param      server_name a client's name of the server (copied, at most
 *                         255 bytes): required unless ctx has
 *                         ASYNC_TLS_NO_VERIFY; ignored by a server.
 * @param      protocol    the callbacks of the stream above (copied).
 * @param      userdata    passed to every callback of the stream above and
 *                         to its release; may be NULL.
 * @retval 0                  *out is the new stream, *handshake (if asked)
 *                            its pending future.
 * @retval ASYNC_EINVAL       out, ctx or protocol is NULL or not what it
 *                            should be; lower is NULL or not a stream; a
 *                            client context without server_name while it
 *                            verifies; server_name empty or too long; a
 *                            protocol async_stream_adopt() refuses, or a
 *                            reader's with a userdata that is not a live
 *                            reader.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller.
 * @retval ASYNC_ECLOSED      lower is closing, lost or has ended.
 * @retval ASYNC_EBUSY        userdata is a reader bound to a stream
 *                            already (async/reader.h).
 * @retval ASYNC_ETLS         OpenSSL could not start the connection.
 * @retval ASYNC_ENOMEM       out of memory.
 * @ownership On success the new stream is the caller's until it ends (the
 *            Lifetime rule of async/stream.h), the future is the caller's
 *            (async_future_free(); cancelling it, or freeing it, while the
 *            handshake runs aborts the stream above and the one below with
 *            ASYNC_ECANCELED), userdata stays the caller's until
 *            release(userdata), and lower's old protocol's userdata got its
 *            release. On an error nothing changed and nothing was called.
 * @thread The loop's thread only.
 * @callbacks lower's old protocol's release runs inside this call;
 *            connection_made of the new stream and the future's callbacks
 *            run from the loop.
 */
ASYNC_API int async_tls_push(async_stream **out, async_future **handshake, async_stream *lower, async_tls_context *ctx,
                             const char *server_name, const async_stream_protocol *protocol, void *userdata);

/**
 * @brief The ALPN protocol the handshake agreed on.
 *
 * @param[out] out      receives the name and a terminating NUL.
 * @param      capacity bytes at out.
 * @param      stream   a stream made by async_tls_push().
 * @return the name's length (0: none agreed, or the handshake is not
 *         done), or:
 * @retval ASYNC_EINVAL       out is NULL; stream is NULL, not a stream or
 *                            not above TLS.
 * @retval ASYNC_ERANGE       capacity is too small for the name and its
 *                            NUL.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller.
 * @retval ASYNC_ECLOSED      the stream has ended (its connection_lost has
 *                            returned).
 * @ownership out is the caller's.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_tls_alpn(char *out, size_t capacity, async_stream *stream);

/**
 * @brief The TLS version the handshake agreed on.
 *
 * @param stream a stream made by async_tls_push().
 * @return 0x0303 (TLS 1.2) or 0x0304 (TLS 1.3); 0 while the handshake is
 *         not done; or:
 * @retval ASYNC_EINVAL       stream is NULL, not a stream or not above TLS.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller.
 * @retval ASYNC_ECLOSED      the stream has ended.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_tls_version(async_stream *stream);

/**
 * @brief Whether the handshake resumed a session (no certificate sent).
 *
 * @param stream a stream made by async_tls_push().
 * @retval 1                  resumed.
 * @retval 0                  a full handshake, or not done.
 * @retval ASYNC_EINVAL       stream is NULL, not a stream or not above TLS.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller.
 * @retval ASYNC_ECLOSED      the stream has ended.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_tls_resumed(async_stream *stream);

/**
 * @brief Why the peer's certificate failed verification: OpenSSL's
 * X509_V_ERR_* code and its text.
 *
 * Asked in connection_lost (or the handshake future's callback) of a
 * stream that ended with ASYNC_ECERT, it says what was wrong ("certificate
 * has expired", "hostname mismatch", "unable to get local issuer
 * certificate").
 *
 * @param[out] reason receives a static string (never freed): "ok" when
 *                    nothing failed; may be NULL.
 * @param      stream a stream made by async_tls_push().
 * @return the X509_V_ERR_* code (0: X509_V_OK), or:
 * @retval ASYNC_EINVAL       stream is NULL, not a stream or not above TLS.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller.
 * @retval ASYNC_ECLOSED      the stream has ended (its connection_lost has
 *                            returned).
 * @ownership *reason is the library's, valid for the process's life.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_tls_verify_error(const char **reason, async_stream *stream);

#ifdef __cplusplus
}
#endif

#endif
