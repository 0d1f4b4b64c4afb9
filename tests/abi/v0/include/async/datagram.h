/**
 * @file
 * @brief async_datagram: a datagram transport (UDP, Unix datagram, or any
 * datagram socket the user adopts: netlink, packet, raw) driven by a
 * protocol, as asyncio's datagram transports (PEP 3156).
 *
 * Callback order, per transport (the same rules as async_stream):
 * - connection_made runs first, through the ready queue: never inside the
 *   call that created the transport. Receiving starts only after it
 *   returned.
 * - datagram_received(data, len, addr, addrlen) gets one datagram: data
 *   points into a buffer the loop's datagram transports share, valid only
 *   during the call; len may be 0 (empty datagrams are delivered); addr is
 *   the sender (NULL with addrlen 0 when the kernel names none, e.g. an
 *   unbound Unix socket). Several datagrams are received per readiness
 *   event (recvmmsg), at most 64 before other work runs. A datagram larger
 *   than 64 KiB (the receive slot) is never delivered cut short: it is
 *   reported as error_received(ASYNC_EMSGSIZE) in its place.
 * - error_received(error) reports a failure that leaves the transport
 *   open: a datagram that could not be sent (ASYNC_EMSGSIZE too large,
 *   ASYNC_EACCES broadcast not allowed, ASYNC_ENETUNREACH, ...), an ICMP
 *   error on a connected socket (ASYNC_ECONNREFUSED: nothing listens at the
 *   peer; ASYNC_EHOSTUNREACH, ...), a truncated datagram (ASYNC_EMSGSIZE),
 *   or lost incoming datagrams (ASYNC_ENOBUFS, netlink's overrun). Errors of
 *   a send are never reported inside async_datagram_send(): they come on a
 *   later loop iteration, in the order they happened. May be NULL (errors
 *   are then dropped).
 * - pause_writing runs inside async_datagram_send() when the queued bytes
 *   go strictly above the high-water mark (default 64 KiB); resume_writing
 *   when they drain to the low-water mark or below (default 16 KiB). Bytes
 *   are datagram payload bytes.
 * - connection_lost runs exactly once, last, never inside a call into the
 *   library: error 0 after close or abort, an ASYNC_E* code when the socket
 *   itself failed (e.g. ASYNC_EBADF: its fd was closed behind the
 *   library's back). No datagram_received comes after close or abort, no
 *   error_received after abort.
 * - release(userdata) follows connection_lost: the final notification for
 *   the protocol's userdata. The transport has then ended.
 *
 * Lifetime, the rule of async_stream (async/stream.h): a datagram
 * transport's memory stays valid until its connection_lost and release
 * have returned AND every async_datagram_retain() has been matched by an
 * async_datagram_release(). With no reference held, the memory goes right
 * after release returns: the pointer must not be used after
 * connection_lost. Once the transport has ended, every call on it returns
 * ASYNC_ECLOSED, except async_datagram_retain() and
 * async_datagram_release(), and async_datagram_loop() and
 * async_datagram_userdata(), which return NULL. An ended transport is
 * detached from its loop: it does not hold async_loop_free() back, and
 * async_datagram_release() never touches the loop (a binding's finalizer
 * may release it after the loop is freed).
 *
 * connection_made, error_received, pause_writing, resume_writing and
 * release may be NULL. Sends never raise SIGPIPE. All functions: the
 * loop's thread only (async_datagram_release() after async_loop_free():
 * any thread). With the loop's owner-thread check on
 * (async_loop_set_thread_check()), a call from another thread returns
 * ASYNC_EWRONGTHREAD (NULL for the pointer getters) and changes nothing.
 */
#ifndef ASYNC_DATAGRAM_H
#define ASYNC_DATAGRAM_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

struct sockaddr;

/** @brief A datagram transport: a socket driven by an async_datagram_protocol. */
typedef struct async_datagram async_datagram;

/**
 * @brief A datagram protocol: callbacks plus the userdata given with it.
 *
 * size: sizeof(async_datagram_protocol), read as for async_connect_options
 * (async/connect.h): fields size does not cover are NULL, a size below the
 * first version's or non-zero fields the library does not know are
 * ASYNC_EINVAL. Every callback's default is NULL (not called), but
 * datagram_received and connection_lost are required. The library copies
 * the struct. Each callback gets the transport first and the userdata
 * last; the order they run in is in the file comment above.
 */
typedef struct async_datagram_protocol {
  /** sizeof(async_datagram_protocol): the struct version the caller knows. */
  uint32_t size;
  /** The transport is ready; runs first, never inside the creating call. Default NULL: not called. */
  void (*connection_made)(async_datagram *dgram, void *userdata);
  /**
   * One datagram: data (len bytes, len may be 0) valid only during the
   * call; addr (addrlen bytes) the sender, NULL with addrlen 0 when the
   * kernel names none. Required.
   */
  void (*datagram_received)(async_datagram *dgram, const uint8_t *data, size_t len, const struct sockaddr *addr,
                            size_t addrlen, void *userdata);
  /** A failure that leaves the transport open (an ASYNC_E* code). Default NULL: errors dropped. */
  void (*error_received)(async_datagram *dgram, int error, void *userdata);
  /** The transport is done: exactly once, last; error 0 after close or abort. Required. */
  void (*connection_lost)(async_datagram *dgram, int error, void *userdata);
  /** The send queue went above the high-water mark. Default NULL: not called. */
  void (*pause_writing)(async_datagram *dgram, void *userdata);
  /** The send queue drained to the low-water mark. Default NULL: not called. */
  void (*resume_writing)(async_datagram *dgram, void *userdata);
  /** The final notification for userdata, after connection_lost. Default NULL: not called. */
  void (*release)(void *userdata);
} async_datagram_protocol;

/** @brief C convenience, the same as { sizeof(async_datagram_protocol) }. */
#define ASYNC_DATAGRAM_PROTOCOL_INIT \
  { sizeof(async_datagram_protocol), 0, 0, 0, 0, 0, 0, 0 }

/**
 * @brief async_udp_open() options.
 *
 * Addresses are numeric (async/addr.h forms: `"192.0.2.1:53"`,
 * `"[::1]:53"`, `"[fe80::1%eth0]:53"`; a missing port is 0); resolve names
 * first with async_getaddrinfo(). Every field's default is 0 (NULL); size
 * is read as for async_connect_options (async/connect.h). A family or an
 * address is required.
 */
typedef struct async_udp_options {
  uint32_t size; /**< sizeof(async_udp_options). */
  /** 0 (ASYNC_AF_UNSPEC, default): from the addresses; ASYNC_AF_INET or ASYNC_AF_INET6. */
  int family;
  /** Non-zero: SO_REUSEPORT (several sockets share the port); 0 (default): off. */
  int reuse_port;
  /** Non-zero: SO_BROADCAST (sends to broadcast addresses allowed); 0 (default): off. */
  int broadcast;
  /** IPv6 sockets: non-zero IPV6_V6ONLY; 0 (default): dual stack (IPv4-mapped). */
  int ipv6_only;
  uint32_t send_buffer_size;    /**< SO_SNDBUF in bytes; 0 (default): the system's. */
  uint32_t receive_buffer_size; /**< SO_RCVBUF in bytes; 0 (default): the system's. */
  /**
   * Bind here (`"0.0.0.0:5353"`, `"[::]:0"`); NULL (default): the family's
   * wildcard, port 0 (or, with a remote address, whatever connect picks).
   */
  const char *local_address;
  /**
   * Connect here (port required): sends need no address, and only this
   * peer's datagrams arrive; NULL (default): unconnected.
   */
  const char *remote_address;
} async_udp_options;

/** @brief C convenience, the same as { sizeof(async_udp_options) }: every default. */
#define ASYNC_UDP_OPTIONS_INIT \
  { sizeof(async_udp_options), 0, 0, 0, 0, 0, 0, 0, 0 }

/**
 * @brief Opens a UDP endpoint and makes it a datagram transport.
 *
 * Opens the socket as options say (required: at least a family or an
 * address) and drives it with protocol (copied) and userdata. With port 0
 * the kernel picks a free port: read it with async_datagram_sockname().
 * The socket is non-blocking and close-on-exec, owned by the transport.
 *
 * @param[out] out      receives the transport.
 * @param      loop     the loop it runs on.
 * @param      options  the options (copied); see async_udp_options.
 * @param      protocol the callbacks (copied).
 * @param      userdata passed to every callback; release() is its final
 *                      notification.
 * @retval 0                  *out is the new transport.
 * @retval ASYNC_EINVAL       out, loop, options or protocol NULL; loop not
 *         a loop; an options size the library refuses; an invalid protocol; a malformed address;
 *         addresses of different families or not of options->family; a
 *         family other than 0, ASYNC_AF_INET and ASYNC_AF_INET6; no family
 *         at all; a remote port 0; an option the kernel refuses (EINVAL).
 * @retval ASYNC_EWRONGTHREAD the loop's owner-thread check is on and the
 *         caller is not its owner (async_loop_set_thread_check()).
 * @retval ASYNC_EADDRINUSE   the local address is in use.
 * @retval ASYNC_EADDRNOTAVAIL no such local address.
 * @retval ASYNC_EACCES       a privileged port, or an option or address
 *         the kernel refuses to this process (EACCES, EPERM).
 * @retval ASYNC_ENETUNREACH  the remote address is unreachable.
 * @retval ASYNC_EMFILE       out of file descriptors.
 * @retval ASYNC_ENOMEM       out of memory.
 * @retval ASYNC_ENOBUFS      the kernel is out of socket buffers.
 * @retval ASYNC_EIO          another refusal by the kernel (e.g. IPv6
 *         not supported).
 * @ownership On success the transport is the caller's to close
 *            (async_datagram_close() or async_datagram_abort()); it owns
 *            its socket. userdata stays the caller's until release runs.
 *            On failure nothing is called and userdata stays the caller's.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_udp_open(async_datagram **out, async_loop *loop, const async_udp_options *options,
                             const async_datagram_protocol *protocol, void *userdata);

/**
 * @brief Opens a Unix datagram socket as a datagram transport.
 *
 * Bound to local_path, connected to remote_path, either or both. A path
 * is a filesystem path (an existing file there is not removed:
 * ASYNC_EADDRINUSE; the socket file stays after close: unlink it) or an
 * abstract name written `"@name"`. A transport with no local path can send
 * but receives no replies from unconnected peers (they have no address to
 * answer to).
 *
 * @param[out] out         receives the transport.
 * @param      loop        the loop it runs on.
 * @param      local_path  where to bind; NULL: not bound.
 * @param      remote_path where to connect; NULL: not connected.
 * @param      protocol    the callbacks (copied).
 * @param      userdata    passed to every callback; release() is its final
 *                         notification.
 * @retval 0                  *out is the new transport.
 * @retval ASYNC_EINVAL       out, loop or protocol NULL, loop not a loop,
 *         an invalid protocol, an empty or too long path.
 * @retval ASYNC_EWRONGTHREAD the loop's owner-thread check is on and the
 *         caller is not its owner (async_loop_set_thread_check()).
 * @retval ASYNC_EADDRINUSE   something exists at local_path.
 * @retval ASYNC_ECONNREFUSED no socket at remote_path (or it refuses).
 * @retval ASYNC_EACCES       no permission on a path.
 * @retval ASYNC_EMFILE       out of file descriptors.
 * @retval ASYNC_ENOMEM       out of memory.
 * @retval ASYNC_ENOBUFS      the kernel is out of socket buffers.
 * @retval ASYNC_EIO          another refusal by the kernel (e.g. the
 *         directory of local_path does not exist).
 * @ownership On success the transport is the caller's to close
 *            (async_datagram_close() or async_datagram_abort()); it owns
 *            its socket. userdata stays the caller's until release runs.
 *            On failure nothing is called and userdata stays the caller's.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_unix_datagram_open(async_datagram **out, async_loop *loop, const char *local_path,
                                       const char *remote_path, const async_datagram_protocol *protocol,
                                       void *userdata);

/**
 * @brief Makes a datagram transport of a socket the caller opened.
 *
 * fd is a socket of type SOCK_DGRAM or SOCK_RAW of any family (AF_INET,
 * AF_INET6, AF_UNIX, AF_NETLINK, AF_PACKET, ...), bound and connected as
 * the caller set it up; it is made non-blocking and close-on-exec. A
 * socket connected when adopted (AF_INET, AF_INET6, AF_UNIX) is treated as
 * connected: see async_datagram_send().
 *
 * @param[out] out      receives the transport.
 * @param      loop     the loop it runs on.
 * @param      fd       the socket.
 * @param      protocol the callbacks (copied).
 * @param      userdata passed to every callback; release() is its final
 *                      notification.
 * @retval 0                  *out is the new transport.
 * @retval ASYNC_EINVAL       out, loop or protocol NULL, loop not a loop,
 *         an invalid protocol, fd not a socket, a stream or seqpacket
 *         socket.
 * @retval ASYNC_EWRONGTHREAD the loop's owner-thread check is on and the
 *         caller is not its owner (async_loop_set_thread_check()).
 * @retval ASYNC_EBADF        fd is not open.
 * @retval ASYNC_ENOMEM       out of memory.
 * @ownership On success the transport owns fd (closed after
 *            connection_lost) and is the caller's to close
 *            (async_datagram_close() or async_datagram_abort()); userdata
 *            stays the caller's until release runs. On failure fd and
 *            userdata stay the caller's and nothing is called.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_datagram_adopt(async_datagram **out, async_loop *loop, int fd,
                                   const async_datagram_protocol *protocol, void *userdata);

/**
 * @brief Sends one datagram.
 *
 * On a connected transport addr must be NULL or the peer's address; on an
 * unconnected AF_INET, AF_INET6 or AF_UNIX transport it is required (other
 * families pass it, or NULL, to the kernel as given: a netlink socket
 * sends to the kernel with NULL). The datagram goes out at once when
 * nothing is queued and the socket takes it; otherwise it is copied into
 * the send queue (with addr) and sent when the socket is writable, in
 * order. A datagram the kernel refuses is dropped and its error reported
 * through error_received on a later iteration (never inside this call).
 * An error returned means nothing was sent or queued.
 *
 * @param dgram   the transport.
 * @param data    len bytes; may be NULL when len is 0.
 * @param len     the datagram's size; 0 sends an empty datagram.
 * @param addr    the destination (addrlen bytes), or NULL (see above).
 * @param addrlen the size of addr.
 * @retval 0             the datagram was sent, queued, or dropped with its
 *         error to come through error_received.
 * @retval ASYNC_EINVAL  dgram NULL or not a datagram transport, data NULL
 *         with len > 0, addr of another family or too
 *         short or longer than ASYNC_ADDR_MAXLEN, addr missing where
 *         required, addr other than the peer's on a connected transport.

 * @retval ASYNC_ECLOSED the transport is closing, aborted or ended.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check of dgram's loop is on
 *         and the caller is not its owner.
 * @retval ASYNC_ENOMEM  the datagram could not be queued, or its error
 *         not recorded; nothing sent or queued, the transport stays open.
 * @ownership data and addr stay the caller's (copied when queued).
 * @thread The loop's thread only.
 * @callbacks May run pause_writing inside this call.
 */
ASYNC_API int async_datagram_send(async_datagram *dgram, const void *data, size_t len, const struct sockaddr *addr,
                                  size_t addrlen);

/**
 * @brief As async_datagram_send(), to an address given as text.
 *
 * address: the `"host:port"` forms of async/addr.h (port required) on
 * AF_INET/AF_INET6 transports (an IPv4 address on an IPv6 dual-stack
 * transport is sent as IPv4-mapped), a path or `"@abstract"` name on
 * AF_UNIX transports.
 *
 * @param dgram   the transport.
 * @param data    len bytes; may be NULL when len is 0.
 * @param len     the datagram's size; 0 sends an empty datagram.
 * @param address the destination.
 * @retval 0             the datagram was sent, queued, or dropped with its
 *         error to come through error_received.
 * @retval ASYNC_EINVAL  dgram NULL or not a datagram transport, data NULL
 *         with len > 0, address NULL or malformed,
 *         a port 0, a transport of another family than AF_INET, AF_INET6
 *         and AF_UNIX, an address other than the peer's on a connected
 *         transport.

 * @retval ASYNC_ECLOSED the transport is closing, aborted or ended.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check of dgram's loop is on
 *         and the caller is not its owner.
 * @retval ASYNC_ENOMEM  the datagram could not be queued, or its error
 *         not recorded; nothing sent or queued, the transport stays open.
 * @ownership data and address stay the caller's (copied when queued).
 * @thread The loop's thread only.
 * @callbacks May run pause_writing inside this call.
 */
ASYNC_API int async_datagram_sendto(async_datagram *dgram, const void *data, size_t len, const char *address);

/**
 * @brief Closes the transport gracefully.
 *
 * Receiving stops now, the send queue is flushed (errors of queued
 * datagrams still come through error_received), then connection_lost(0).
 * Idempotent (also after abort), until the transport has ended.
 *
 * @param dgram the transport.
 * @retval 0 closing (or closed already).
 * @retval ASYNC_EINVAL dgram is NULL or not a datagram transport.
 * @retval ASYNC_ECLOSED the transport has ended.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check of dgram's loop is on
 *         and the caller is not its owner.
 * @ownership Nothing changes hands; the memory stays valid until
 *            connection_lost and release have returned (and any references
 *            are released).
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_datagram_close(async_datagram *dgram);

/**
 * @brief Aborts the transport.
 *
 * The send queue and any error not yet reported are dropped, then
 * connection_lost(0) runs through the ready queue, never inside this call.
 * Idempotent, until the transport has ended.
 *
 * @param dgram the transport.
 * @retval 0 aborting (or closed already).
 * @retval ASYNC_EINVAL dgram is NULL or not a datagram transport.
 * @retval ASYNC_ECLOSED the transport has ended.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check of dgram's loop is on
 *         and the caller is not its owner.
 * @ownership Nothing changes hands; the memory stays valid until
 *            connection_lost and release have returned (and any references
 *            are released).
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_datagram_abort(async_datagram *dgram);

/**
 * @brief Stops datagram_received.
 *
 * Idempotent; no effect once closing. Datagrams the kernel already handed
 * over in the same batch as the one being delivered when reading was
 * paused are kept and delivered, first, after resume (never dropped).
 *
 * @param dgram the transport.
 * @retval 0 paused (or not reading already).
 * @retval ASYNC_EINVAL dgram is NULL or not a datagram transport.
 * @retval ASYNC_ECLOSED the transport has ended.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check of dgram's loop is on
 *         and the caller is not its owner.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_datagram_pause_reading(async_datagram *dgram);

/**
 * @brief Restarts datagram_received after async_datagram_pause_reading().
 *
 * Idempotent; no effect once closing. Datagrams kept from the batch that
 * was being delivered when reading paused come first.
 *
 * @param dgram the transport.
 * @retval 0 resumed (or reading already, or closing).
 * @retval ASYNC_EINVAL dgram is NULL or not a datagram transport.
 * @retval ASYNC_ECLOSED the transport has ended.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check of dgram's loop is on
 *         and the caller is not its owner.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call; datagram_received runs from
 *            inside async_loop_run().
 */
ASYNC_API int async_datagram_resume_reading(async_datagram *dgram);

/**
 * @brief Whether datagram_received can be called.
 *
 * @param dgram the transport.
 * @retval 1 made, not paused, not closing.
 * @retval 0 otherwise.
 * @retval ASYNC_EINVAL dgram is NULL or not a datagram transport.
 * @retval ASYNC_ECLOSED the transport has ended.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check of dgram's loop is on
 *         and the caller is not its owner.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_datagram_is_reading(async_datagram *dgram);

/**
 * @brief Sets the send queue's high- and low-water marks in bytes.
 *
 * high 0 pauses whenever anything is queued, low 0 resumes only when
 * empty. May call pause_writing at once.
 *
 * @param dgram the transport.
 * @param high  the high-water mark.
 * @param low   the low-water mark, <= high.
 * @retval 0 set.
 * @retval ASYNC_EINVAL dgram NULL or not a datagram transport, low > high.
 * @retval ASYNC_ECLOSED the transport has ended.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check of dgram's loop is on
 *         and the caller is not its owner.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks May run pause_writing inside this call.
 */
ASYNC_API int async_datagram_set_write_limits(async_datagram *dgram, size_t high, size_t low);

/**
 * @brief Reads the send queue's high- and low-water marks.
 *
 * @param[out] out_high receives the high-water mark in bytes.
 * @param[out] out_low  receives the low-water mark in bytes.
 * @param      dgram    the transport.
 * @retval 0 read.
 * @retval ASYNC_EINVAL out_high or out_low NULL, dgram NULL or not a
 *         datagram transport.
 * @retval ASYNC_ECLOSED the transport has ended.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check of dgram's loop is on
 *         and the caller is not its owner.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_datagram_get_write_limits(size_t *out_high, size_t *out_low, async_datagram *dgram);

/**
 * @brief Reads the payload bytes in the send queue.
 *
 * @param[out] out   receives the byte count.
 * @param      dgram the transport.
 * @retval 0 read.
 * @retval ASYNC_EINVAL out NULL, dgram NULL or not a datagram transport.
 * @retval ASYNC_ECLOSED the transport has ended.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check of dgram's loop is on
 *         and the caller is not its owner.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_datagram_write_buffer_size(size_t *out, async_datagram *dgram);

/**
 * @brief The transport's socket.
 *
 * @param dgram the transport.
 * @return the fd (>= 0) on success.
 * @retval ASYNC_EINVAL dgram is NULL or not a datagram transport.
 * @retval ASYNC_ECLOSED the transport has ended.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check of dgram's loop is on
 *         and the caller is not its owner.
 * @ownership Borrowed: the transport owns the fd and closes it after
 *            connection_lost; never close it yourself.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_datagram_fd(async_datagram *dgram);

/**
 * @brief The loop of the transport.
 *
 * @param dgram the transport.
 * @return the loop; NULL if dgram is not a datagram transport, has ended,
 *         or the owner-thread check of its loop refuses the caller.
 * @ownership Borrowed: the loop stays the caller's.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API async_loop *async_datagram_loop(async_datagram *dgram);

/**
 * @brief Writes the transport's local address into out.
 *
 * @param[out] out      receives the address.
 * @param      capacity the size of out in bytes (ASYNC_ADDR_MAXLEN always
 *                      suffices).
 * @param      dgram    the transport.
 * @return the address length (> 0) on success.
 * @retval ASYNC_EINVAL out NULL, dgram NULL or not a datagram transport,
 *         the kernel gives no address.
 * @retval ASYNC_ERANGE capacity too small.
 * @retval ASYNC_ECLOSED the transport has ended.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check of dgram's loop is on
 *         and the caller is not its owner.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_datagram_sockname(struct sockaddr *out, size_t capacity, async_datagram *dgram);

/**
 * @brief Writes the transport's peer address into out.
 *
 * @param[out] out      receives the address.
 * @param      capacity the size of out in bytes (ASYNC_ADDR_MAXLEN always
 *                      suffices).
 * @param      dgram    the transport.
 * @return the address length (> 0) on success.
 * @retval ASYNC_EINVAL out NULL, dgram NULL or not a datagram transport,
 *         an unconnected transport.
 * @retval ASYNC_ERANGE capacity too small.
 * @retval ASYNC_ECLOSED the transport has ended.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check of dgram's loop is on
 *         and the caller is not its owner.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_datagram_peername(struct sockaddr *out, size_t capacity, async_datagram *dgram);

/**
 * @brief Joins a multicast group on a UDP transport.
 *
 * @param dgram the transport (UDP).
 * @param group a numeric multicast address of the transport's family
 *              (`"239.1.2.3"`, `"ff02::114"`).
 * @param iface NULL (the kernel's choice by route; for IPv6 the group's
 *              scope id if it has one), an interface name (`"eth0"`) or
 *              index (`"2"`), or for IPv4 also an address of the
 *              interface (`"192.0.2.7"`).
 * @retval 0 joined.
 * @retval ASYNC_EINVAL  dgram NULL, not a datagram transport or not a UDP
 *         one, group NULL or not a multicast address of that family,
 *         unknown interface.
 * @retval ASYNC_EADDRINUSE joined already.
 * @retval ASYNC_EADDRNOTAVAIL no interface with that address.
 * @retval ASYNC_ECLOSED the transport is closing or has ended.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check of dgram's loop is on
 *         and the caller is not its owner.
 * @retval ASYNC_ENOBUFS the kernel's limit of memberships is reached.
 * @retval ASYNC_ENOMEM  out of memory in the kernel.
 * @retval ASYNC_EIO     another refusal by the kernel.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_datagram_join_multicast(async_datagram *dgram, const char *group, const char *iface);

/**
 * @brief Leaves a multicast group joined with async_datagram_join_multicast().
 *
 * @param dgram the transport (UDP).
 * @param group a numeric multicast address of the transport's family
 *              (`"239.1.2.3"`, `"ff02::114"`).
 * @param iface NULL (the kernel's choice by route; for IPv6 the group's
 *              scope id if it has one), an interface name (`"eth0"`) or
 *              index (`"2"`), or for IPv4 also an address of the
 *              interface (`"192.0.2.7"`).
 * @retval 0 left.
 * @retval ASYNC_EINVAL  dgram NULL, not a datagram transport or not a UDP
 *         one, group NULL or not a multicast address of that family,
 *         unknown interface.
 * @retval ASYNC_EADDRNOTAVAIL the group was not joined (on that interface);
 *         no interface with that address.
 * @retval ASYNC_ECLOSED the transport is closing or has ended.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check of dgram's loop is on
 *         and the caller is not its owner.
 * @retval ASYNC_ENOBUFS the kernel's limit of memberships is reached.
 * @retval ASYNC_ENOMEM  out of memory in the kernel.
 * @retval ASYNC_EIO     another refusal by the kernel.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_datagram_leave_multicast(async_datagram *dgram, const char *group, const char *iface);

/**
 * @brief Sets the interface multicast datagrams are sent from.
 *
 * IP_MULTICAST_IF / IPV6_MULTICAST_IF.
 *
 * @param dgram the transport (UDP).
 * @param iface as for async_datagram_join_multicast(); NULL restores the
 *              kernel's choice.
 * @retval 0 set.
 * @retval ASYNC_EINVAL  dgram NULL, not a datagram transport or not a UDP
 *         one, unknown interface.
 * @retval ASYNC_EADDRNOTAVAIL no interface with that address.
 * @retval ASYNC_ECLOSED the transport is closing or has ended.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check of dgram's loop is on
 *         and the caller is not its owner.
 * @retval ASYNC_ENOBUFS the kernel's limit of memberships is reached.
 * @retval ASYNC_ENOMEM  out of memory in the kernel.
 * @retval ASYNC_EIO     another refusal by the kernel.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_datagram_set_multicast_interface(async_datagram *dgram, const char *iface);

/**
 * @brief Sets the multicast TTL / hop limit of sent datagrams.
 *
 * @param dgram the transport (UDP).
 * @param ttl   0..255 (default 1).
 * @retval 0 set.
 * @retval ASYNC_EINVAL  dgram NULL, not a datagram transport or not a UDP
 *         one, ttl out of 0..255, or the kernel refused the option.
 * @retval ASYNC_ECLOSED the transport is closing or has ended.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check of dgram's loop is on
 *         and the caller is not its owner.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_datagram_set_multicast_ttl(async_datagram *dgram, int ttl);

/**
 * @brief Whether multicast datagrams this host sends are looped back to its own members.
 *
 * @param dgram the transport (UDP).
 * @param on    1 (the default): looped back; 0: not.
 * @retval 0 set.
 * @retval ASYNC_EINVAL  dgram NULL, not a datagram transport or not a UDP
 *         one, or the kernel refused the option.
 * @retval ASYNC_ECLOSED the transport is closing or has ended.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check of dgram's loop is on
 *         and the caller is not its owner.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_datagram_set_multicast_loop(async_datagram *dgram, int on);

/**
 * @brief Turns SO_BROADCAST on or off on a UDP transport.
 *
 * @param dgram the transport (UDP).
 * @param on    non-zero: on; 0: off.
 * @retval 0 set.
 * @retval ASYNC_EINVAL  dgram NULL, not a datagram transport or not a UDP
 *         one, or the kernel refused the option.
 * @retval ASYNC_ECLOSED the transport is closing or has ended.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check of dgram's loop is on
 *         and the caller is not its owner.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_datagram_set_broadcast(async_datagram *dgram, int on);

/**
 * @brief Takes a reference to dgram.
 *
 * Its memory stays valid (see Lifetime above) until the matching
 * async_datagram_release(), even after it has ended. Allowed anywhere on
 * the loop thread, including inside any of its callbacks (connection_lost
 * and release too) and after it ended.
 *
 * @param dgram the transport.
 * @retval 0 taken.
 * @retval ASYNC_EINVAL dgram NULL or not a datagram transport.
 * @retval ASYNC_ERANGE 2^32 - 1 references held already: none taken.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check of dgram's loop is on
 *         and the caller is not its owner.
 * @ownership The caller holds one more reference, to drop with
 *            async_datagram_release().
 * @thread As async_datagram_release().
 * @callbacks None run inside this call.
 */
ASYNC_API int async_datagram_retain(async_datagram *dgram);

/**
 * @brief Drops a reference taken with async_datagram_retain().
 *
 * It never closes the transport. When it was the last one and the
 * transport has ended, the memory is freed inside this call; otherwise it
 * goes when the transport ends. Allowed inside the transport's callbacks
 * (the memory is never freed while a library call on it is still
 * running). It never touches the loop, so it may come after
 * async_loop_free().
 *
 * @param dgram the transport.
 * @retval 0 dropped.
 * @retval ASYNC_EINVAL dgram NULL, not a datagram transport, or no
 *         reference of the caller left: refused while the memory is there;
 *         a release after the last reference is a use after free,
 *         undefined as in any C library.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check of dgram's loop is on
 *         and the caller is not its owner.
 * @ownership The caller gives one reference back; dgram must not be
 *            used after its last one.
 * @thread The loop's thread while the loop exists; after
 *         async_loop_free() any thread, one call on a transport at a time.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_datagram_release(async_datagram *dgram);

/**
 * @brief The userdata the transport's callbacks get.
 *
 * @param dgram the transport.
 * @return the userdata; NULL for NULL, not a datagram transport, an ended
 *         one (its userdata was released), or a caller the owner-thread
 *         check of its loop refuses.
 * @ownership Borrowed: the userdata stays the caller's.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API void *async_datagram_userdata(async_datagram *dgram);

#ifdef __cplusplus
}
#endif

#endif
