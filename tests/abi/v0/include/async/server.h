/**
 * @file
 * @brief async_server: a listening socket set (TCP on every address of a
 * host, or a Unix socket) whose accepted connections become async_stream
 * transports with a protocol chosen per connection by a factory callback.
 *
 * A server is a handle: close it with async_handle_close(), which stops
 * listening (the close callback is the final notification for the
 * server's userdata). Accepted streams live on independently; closing or
 * aborting them is a separate call (async_server_close_connections()).
 *
 * Accepting drains up to 64 connections per readiness event. When the
 * process runs out of file descriptors (EMFILE/ENFILE) the server stops
 * accepting for 100 ms and logs it through the loop's log hook: the loop
 * never spins on a pending connection it cannot take.
 *
 * All functions: the loop's thread only. With the loop's owner-thread
 * check on (async_loop_set_thread_check()), a call from another thread
 * returns ASYNC_EWRONGTHREAD (NULL for async_server_userdata()) and changes
 * nothing; async_server_handle(), a cast, is not checked.
 */
#ifndef ASYNC_SERVER_H
#define ASYNC_SERVER_H

#include "common.h"
#include "dns.h"
#include "stream.h"

#ifdef __cplusplus
extern "C" {
#endif

/** @brief A server: listening sockets and the streams they accepted. */
typedef struct async_server async_server;

/**
 * @brief Called for each accepted connection, inside the server's
 * readiness callback (from inside async_loop_run()).
 *
 * Return 0 and set *out_protocol and *out_userdata to accept it: the
 * stream is created with them and connection_made follows on a later
 * iteration. If the stream cannot be created (out of memory),
 * protocol->release(userdata) is called and the connection closed. An
 * invalid protocol, or a reader's protocol (async/reader.h) whose reader
 * cannot be bound, gets the connection closed and logged, and nothing is
 * released. Return a negative value to refuse: the connection is closed
 * and nothing else is called.
 *
 * @param[out] out_protocol receives the protocol (read at once; may point
 *                          to a static struct).
 * @param[out] out_userdata receives the stream's userdata.
 * @param      server       the server.
 * @param      userdata     the server's userdata.
 * @return 0 to accept, a negative value to refuse.
 */
typedef int (*async_stream_factory)(const async_stream_protocol **out_protocol, void **out_userdata,
                                    async_server *server, void *userdata);

/** @brief async_tcp_listen() flag: SO_REUSEPORT, several servers share the port. */
#define ASYNC_LISTEN_REUSEPORT 1u
/** @brief async_tcp_listen() flag: IPv6 sockets accept IPv6 only (always so when v4 is bound too). */
#define ASYNC_LISTEN_V6ONLY 2u

/**
 * @brief Listens on host:port.
 *
 * host NULL: every interface, "::" and "0.0.0.0"; a local name
 * ("localhost" in any case, with or without the final dot, or a name
 * under it such as "foo.localhost"; RFC 6761 §6.3, as in async/dns.h):
 * "::1" and "127.0.0.1"; or a numeric address (scope ids allowed). On a
 * host without IPv6 the IPv6 address is left out. For other names resolve
 * them first (async_getaddrinfo() with ASYNC_DNS_PASSIVE) and use
 * async_tcp_listen_addrinfo(). Port 0 picks a free port, the same one for
 * every address (async_server_port()). SO_REUSEADDR is always set.
 *
 * @param[out] out      receives the server.
 * @param      loop     the loop the server runs on.
 * @param      host     the address to listen on, as above; may be NULL.
 * @param      port     the port; 0 picks a free one.
 * @param      backlog  the listen backlog; <= 0 means the default (511).
 * @param      flags    ASYNC_LISTEN_REUSEPORT, ASYNC_LISTEN_V6ONLY, or 0.
 * @param      factory  chooses each connection's protocol.
 * @param      userdata passed to factory and to the server's close
 *                      callback; may be NULL.
 * @retval 0                     *out is the new server, listening.
 * @retval ASYNC_EINVAL          out or factory is NULL, loop is NULL or
 *                               not a loop, unknown flags; host is a name
 *                               (not numeric nor local).
 * @retval ASYNC_EWRONGTHREAD    the loop's thread check refused the
 *                               caller.
 * @retval ASYNC_EADDRINUSE      the address is in use.
 * @retval ASYNC_EADDRNOTAVAIL   the address is not local.
 * @retval ASYNC_EACCES          a privileged port without the right.
 * @retval ASYNC_EMFILE          out of file descriptors.
 * @retval ASYNC_ENOBUFS         the kernel is out of buffers.
 * @retval ASYNC_ENOMEM          out of memory.
 * @retval ASYNC_EIO             another system error.
 * @ownership The server is the caller's: close it with
 *            async_handle_close(). userdata stays the caller's. On error
 *            nothing is listening and nothing is called.
 * @thread The loop's thread only.
 * @callbacks None run inside this call; factory runs from the loop.
 */
ASYNC_API int async_tcp_listen(async_server **out, async_loop *loop, const char *host, uint16_t port, int backlog,
                               uint32_t flags, async_stream_factory factory, void *userdata);

/**
 * @brief As async_tcp_listen() on every address of a getaddrinfo result
 * (its ports included).
 *
 * @param[out] out      receives the server.
 * @param      loop     the loop the server runs on.
 * @param      addrs    the addresses (async_getaddrinfo()'s value).
 * @param      backlog  as for async_tcp_listen().
 * @param      flags    as for async_tcp_listen().
 * @param      factory  as for async_tcp_listen().
 * @param      userdata as for async_tcp_listen().
 * @retval 0                     *out is the new server, listening.
 * @retval ASYNC_EINVAL          out, addrs or factory is NULL, addrs is not
 *                               an address list or is empty, loop is NULL
 *                               or not a loop, unknown flags.
 * @retval ASYNC_EWRONGTHREAD    the loop's thread check refused the
 *                               caller.
 * @retval ASYNC_EADDRINUSE      as for async_tcp_listen().
 * @retval ASYNC_EADDRNOTAVAIL   as for async_tcp_listen().
 * @retval ASYNC_EACCES          as for async_tcp_listen().
 * @retval ASYNC_EMFILE          as for async_tcp_listen().
 * @retval ASYNC_ENOBUFS         as for async_tcp_listen().
 * @retval ASYNC_ENOMEM          as for async_tcp_listen().
 * @retval ASYNC_EIO             as for async_tcp_listen().
 * @ownership As for async_tcp_listen(); addrs stays the caller's (read
 *            during the call only).
 * @thread The loop's thread only.
 * @callbacks None run inside this call; factory runs from the loop.
 */
ASYNC_API int async_tcp_listen_addrinfo(async_server **out, async_loop *loop, const async_addrinfo *addrs, int backlog,
                                        uint32_t flags, async_stream_factory factory, void *userdata);

/**
 * @brief Listens on a Unix stream socket: a filesystem path, or an
 * abstract name written with a leading `@` character.
 *
 * An existing socket file is not removed (ASYNC_EADDRINUSE).
 *
 * @param[out] out      receives the server.
 * @param      loop     the loop the server runs on.
 * @param      path     the path, or the abstract name.
 * @param      backlog  as for async_tcp_listen().
 * @param      factory  as for async_tcp_listen().
 * @param      userdata as for async_tcp_listen().
 * @retval 0                     *out is the new server, listening.
 * @retval ASYNC_EINVAL          out, path or factory is NULL, loop is NULL
 *                               or not a loop; path is empty or too long.
 * @retval ASYNC_EWRONGTHREAD    the loop's thread check refused the
 *                               caller.
 * @retval ASYNC_EADDRINUSE      the path or name exists already.
 * @retval ASYNC_EACCES          no permission on the path's directory.
 * @retval ASYNC_EMFILE          as for async_tcp_listen().
 * @retval ASYNC_ENOBUFS         as for async_tcp_listen().
 * @retval ASYNC_ENOMEM          out of memory.
 * @retval ASYNC_EIO             another system error (a missing
 *                               directory, for one).
 * @ownership As for async_tcp_listen(); path stays the caller's (copied).
 *            Closing the server does not remove the socket file.
 * @thread The loop's thread only.
 * @callbacks None run inside this call; factory runs from the loop.
 */
ASYNC_API int async_unix_listen(async_server **out, async_loop *loop, const char *path, int backlog,
                                async_stream_factory factory, void *userdata);

/**
 * @brief The server as a handle (the same object).
 *
 * @param server the server (closing ones too).
 * @return the handle, or NULL if server is NULL or not a server.
 * @ownership The same object: nothing changes hands.
 * @thread The loop's thread only (a cast: the loop's thread check does
 *         not apply).
 * @callbacks None run inside this call.
 */
ASYNC_API async_handle *async_server_handle(async_server *server);

/**
 * @brief The bound TCP port.
 *
 * @param server the server.
 * @return the port in host order (0 for a Unix server), or ASYNC_EINVAL
 *         (server NULL or not a server), ASYNC_EWRONGTHREAD (the loop's
 *         thread check refused the caller), ASYNC_ECLOSED (the server is
 *         closing) or ASYNC_EIO (the socket's name could not be read).
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_server_port(async_server *server);

/**
 * @brief The number of listening sockets.
 *
 * @param server the server.
 * @return the number (> 0), or ASYNC_EINVAL (server NULL or not a
 *         server), ASYNC_EWRONGTHREAD (the loop's thread check refused the
 *         caller) or ASYNC_ECLOSED (the server is closing).
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_server_count(async_server *server);

/**
 * @brief The address of a listening socket.
 *
 * @param[out] out      receives the address.
 * @param      capacity the bytes out has room for.
 * @param      server   the server.
 * @param      index    the socket, 0 to async_server_count() - 1.
 * @return the address's length (> 0), or ASYNC_EINVAL (out NULL, server
 *         NULL or not a server), ASYNC_EWRONGTHREAD (the loop's thread
 *         check refused the caller), ASYNC_ECLOSED (the server is
 *         closing), ASYNC_ERANGE (index out of range, or capacity too
 *         small) or ASYNC_EIO (the socket's name could not be read).
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_server_sockname(struct sockaddr *out, size_t capacity, async_server *server, size_t index);

/**
 * @brief The number of accepted streams not yet lost.
 *
 * Works while the server is closing, until its close callback ran.
 *
 * @param server the server.
 * @return the number (>= 0), or ASYNC_EINVAL (server NULL or not a
 *         server) or ASYNC_EWRONGTHREAD (the loop's thread check refused
 *         the caller).
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_server_connection_count(async_server *server);

/**
 * @brief Closes or aborts every accepted stream still open.
 *
 * abort 0: each is closed (flushed, then connection_lost(0)); non-zero:
 * aborted. Works after the server handle was closed too, until its close
 * callback ran.
 *
 * @param server the server.
 * @param abort  0 to close, non-zero to abort.
 * @retval 0                  done.
 * @retval ASYNC_EINVAL       server is NULL or not a server.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call; the streams' connection_lost and
 *            release run from the loop.
 */
ASYNC_API int async_server_close_connections(async_server *server, int abort);

/**
 * @brief The userdata the factory gets now: the listen call's, or the
 * latest async_handle_set_userdata()'s.
 *
 * The same as async_handle_userdata(async_server_handle(server)). Works
 * while the server is closing, until its close callback ran.
 *
 * @param server the server.
 * @return the userdata, or NULL if server is NULL or not a server, or the
 *         loop's thread check refused the caller.
 * @ownership Borrowed: the userdata stays the caller's.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API void *async_server_userdata(async_server *server);

#ifdef __cplusplus
}
#endif

#endif
