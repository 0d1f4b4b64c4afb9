/*
 * async_server: a listening socket set (TCP on every address of a host, or
 * a Unix socket) whose accepted connections become async_stream transports
 * with a protocol chosen per connection by a factory callback.
 *
 * A server is a handle: close it with async_handle_close(), which stops
 * listening (the close callback is the final notification for the server's
 * userdata). Accepted streams live on independently; closing or aborting
 * them is a separate call (async_server_close_connections()).
 *
 * Accepting drains up to 64 connections per readiness event. When the
 * process runs out of file descriptors (EMFILE/ENFILE) the server stops
 * accepting for 100 ms and logs it through the loop's log hook: the loop
 * never spins on a pending connection it cannot take.
 * All functions: loop thread only.
 */
#ifndef ASYNC_SERVER_H
#define ASYNC_SERVER_H

#include "common.h"
#include "dns.h"
#include "stream.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct async_server async_server;

/*
 * Called for each accepted connection, inside the server's readiness
 * callback. Return 0 and set *out_protocol (read at once; may point to a
 * static struct) and *out_userdata to accept it: the stream is created with
 * them and connection_made follows on a later iteration. If the stream
 * cannot be created (out of memory), protocol->release(userdata) is called
 * and the connection closed. Return a negative value to refuse: the
 * connection is closed and nothing else is called.
 */
typedef int (*async_stream_factory)(const async_stream_protocol **out_protocol, void **out_userdata,
                                    async_server *server, void *userdata);

/* async_tcp_listen() flags. */
#define ASYNC_LISTEN_REUSEPORT 1u /* SO_REUSEPORT: several servers share the port */
#define ASYNC_LISTEN_V6ONLY 2u    /* IPv6 sockets accept IPv6 only (always so when v4 is bound too) */

/*
 * Listens on host:port. host NULL: every interface, "::" and "0.0.0.0";
 * a local name ("localhost" in any case, with or without the final dot, or
 * a name under it such as "foo.localhost"; RFC 6761 §6.3, as in async/dns.h):
 * "::1" and "127.0.0.1"; or a numeric address (scope ids allowed). On a
 * host without IPv6 the IPv6 address is left out. For other names resolve
 * them first (async_getaddrinfo with ASYNC_DNS_PASSIVE) and use
 * async_tcp_listen_addrinfo(). Port 0 picks a free port, the same one for
 * every address (async_server_port()).
 * backlog <= 0 means the default (511). SO_REUSEADDR is always set.
 * Errors: ASYNC_EINVAL (NULL, a host name, bad flags or factory NULL),
 * ASYNC_EADDRINUSE, ASYNC_EADDRNOTAVAIL, ASYNC_EMFILE, ASYNC_ENOMEM,
 * ASYNC_EIO. On error nothing is listening and nothing is called.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_tcp_listen(async_server **out, async_loop *loop, const char *host, uint16_t port, int backlog,
                               uint32_t flags, async_stream_factory factory, void *userdata);

/*
 * As async_tcp_listen() on every address of a getaddrinfo result (its ports
 * included).
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_tcp_listen_addrinfo(async_server **out, async_loop *loop, const async_addrinfo *addrs, int backlog,
                                        uint32_t flags, async_stream_factory factory, void *userdata);

/*
 * Listens on a Unix stream socket: a filesystem path (an existing socket
 * file is not removed: ASYNC_EADDRINUSE), or an abstract name written with
 * a leading '@' ("@name"). Errors: as async_tcp_listen() (a path too long:
 * ASYNC_EINVAL).
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_unix_listen(async_server **out, async_loop *loop, const char *path, int backlog,
                                async_stream_factory factory, void *userdata);

/*
 * The server as a handle (same object), or NULL if server is not one.
 * Callbacks: none run inside this call.
 */
ASYNC_API async_handle *async_server_handle(async_server *server);

/*
 * The bound TCP port (host order), 0 for a Unix server. Errors: ASYNC_EINVAL,
 * ASYNC_ECLOSED.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_server_port(async_server *server);

/*
 * Number of listening sockets. Errors: ASYNC_EINVAL, ASYNC_ECLOSED.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_server_count(async_server *server);

/*
 * Address of listening socket index into out (capacity bytes); returns its
 * length. Errors: ASYNC_EINVAL, ASYNC_ECLOSED, ASYNC_ERANGE (index or
 * capacity).
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_server_sockname(struct sockaddr *out, size_t capacity, async_server *server, size_t index);

/*
 * Accepted streams not yet lost. Errors: ASYNC_EINVAL.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_server_connection_count(async_server *server);

/*
 * Closes (abort 0: flush, then connection_lost(0)) or aborts (abort
 * non-zero) every accepted stream still open. Works after the server
 * handle was closed too, until its close callback ran.
 * Errors: ASYNC_EINVAL.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_server_close_connections(async_server *server, int abort);

/*
 * The userdata the factory gets now (the listen call's, or the latest
 * async_handle_set_userdata()'s), borrowed; the same as
 * async_handle_userdata(async_server_handle(server)). NULL for NULL or not
 * a server. Works while the server is closing, until its close callback
 * ran. Callbacks: none run inside this call.
 */
ASYNC_API void *async_server_userdata(async_server *server);

#ifdef __cplusplus
}
#endif

#endif
