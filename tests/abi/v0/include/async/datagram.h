/*
 * async_datagram: a datagram transport (UDP, Unix datagram, or any
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
 * release may be NULL. Sends never raise SIGPIPE. All functions: loop
 * thread only.
 */
#ifndef ASYNC_DATAGRAM_H
#define ASYNC_DATAGRAM_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

struct sockaddr;

typedef struct async_datagram async_datagram;

/*
 * A datagram protocol: callbacks plus the userdata given with it. size:
 * sizeof(async_datagram_protocol), read as for async_connect_options
 * (async/connect.h): fields size does not cover are NULL, a size below the
 * first version's or non-zero fields the library does not know are
 * ASYNC_EINVAL. Every callback's default is NULL (not called), but
 * datagram_received and connection_lost are required. The library copies
 * the struct.
 */
typedef struct async_datagram_protocol {
  uint32_t size;
  void (*connection_made)(async_datagram *dgram, void *userdata);
  void (*datagram_received)(async_datagram *dgram, const uint8_t *data, size_t len, const struct sockaddr *addr,
                            size_t addrlen, void *userdata);
  void (*error_received)(async_datagram *dgram, int error, void *userdata);
  void (*connection_lost)(async_datagram *dgram, int error, void *userdata);
  void (*pause_writing)(async_datagram *dgram, void *userdata);
  void (*resume_writing)(async_datagram *dgram, void *userdata);
  void (*release)(void *userdata);
} async_datagram_protocol;

/* C convenience, the same as { sizeof(async_datagram_protocol) }. */
#define ASYNC_DATAGRAM_PROTOCOL_INIT \
  { sizeof(async_datagram_protocol), 0, 0, 0, 0, 0, 0, 0 }

/*
 * async_udp_open() options. Addresses are numeric (async/addr.h forms:
 * "192.0.2.1:53", "[::1]:53", "[fe80::1%eth0]:53"; a missing port is 0);
 * resolve names first with async_getaddrinfo(). Every field's default is 0
 * (NULL); size is read as for async_connect_options (async/connect.h).
 * A family or an address is required.
 */
typedef struct async_udp_options {
  uint32_t size;                /* sizeof(async_udp_options) */
  int family;                   /* 0 (ASYNC_AF_UNSPEC, default): from the addresses; ASYNC_AF_INET or
                                   ASYNC_AF_INET6 */
  int reuse_port;               /* non-zero: SO_REUSEPORT (several sockets share the port); 0 (default): off */
  int broadcast;                /* non-zero: SO_BROADCAST (sends to broadcast addresses allowed); 0 (default): off */
  int ipv6_only;                /* IPv6 sockets: non-zero IPV6_V6ONLY; 0 (default): dual stack (IPv4-mapped) */
  uint32_t send_buffer_size;    /* SO_SNDBUF in bytes; 0 (default): the system's */
  uint32_t receive_buffer_size; /* SO_RCVBUF in bytes; 0 (default): the system's */
  const char *local_address;    /* bind here ("0.0.0.0:5353", "[::]:0"); NULL (default): the family's
                                   wildcard, port 0 (or, with a remote address, whatever connect picks) */
  const char *remote_address;   /* connect here (port required): sends need no address, and only
                                   this peer's datagrams arrive; NULL (default): unconnected */
} async_udp_options;

/* C convenience, the same as { sizeof(async_udp_options) }: every default. */
#define ASYNC_UDP_OPTIONS_INIT \
  { sizeof(async_udp_options), 0, 0, 0, 0, 0, 0, 0, 0 }

/*
 * Opens a UDP endpoint as options say (required: at least a family or an
 * address) and makes it a datagram transport driven by protocol (copied)
 * and userdata. With port 0 the kernel picks a free port: read it with
 * async_datagram_sockname(). The socket is non-blocking and close-on-exec,
 * owned by the transport.
 * Errors (nothing is called, userdata stays the caller's): ASYNC_EINVAL
 * (NULL, an options size the library refuses, invalid protocol, a malformed address,
 * addresses of different families or not of options->family, no family at
 * all, a remote port 0), ASYNC_EADDRINUSE, ASYNC_EADDRNOTAVAIL (no such
 * local address), ASYNC_EACCES (a privileged port), ASYNC_ENETUNREACH,
 * ASYNC_EMFILE, ASYNC_ENOMEM, ASYNC_EIO.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_udp_open(async_datagram **out, async_loop *loop, const async_udp_options *options,
                             const async_datagram_protocol *protocol, void *userdata);

/*
 * Opens a Unix datagram socket: bound to local_path, connected to
 * remote_path, either or both (NULL: not bound / not connected). A path is
 * a filesystem path (an existing file there is not removed:
 * ASYNC_EADDRINUSE; the socket file stays after close: unlink it) or an
 * abstract name written "@name". A transport with no local path can send
 * but receives no replies from unconnected peers (they have no address to
 * answer to).
 * Errors: ASYNC_EINVAL (NULL, empty or too long a path, invalid protocol),
 * ASYNC_EADDRINUSE, ASYNC_ECONNREFUSED (no socket at remote_path),
 * ASYNC_EACCES, ASYNC_EMFILE, ASYNC_ENOMEM, ASYNC_EIO.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_unix_datagram_open(async_datagram **out, async_loop *loop, const char *local_path,
                                       const char *remote_path, const async_datagram_protocol *protocol,
                                       void *userdata);

/*
 * Makes a datagram transport of fd, a socket of type SOCK_DGRAM or
 * SOCK_RAW of any family (AF_INET, AF_INET6, AF_UNIX, AF_NETLINK,
 * AF_PACKET, ...), bound and connected as the caller set it up. The
 * transport owns fd from then on (made non-blocking and close-on-exec;
 * closed after connection_lost). A socket connected when adopted (AF_INET,
 * AF_INET6, AF_UNIX) is treated as connected: see async_datagram_send().
 * Errors (fd and userdata stay the caller's, nothing is called):
 * ASYNC_EINVAL (NULL, invalid protocol, fd not a socket, a stream or
 * seqpacket socket), ASYNC_EBADF (fd not open), ASYNC_ENOMEM.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_datagram_adopt(async_datagram **out, async_loop *loop, int fd,
                                   const async_datagram_protocol *protocol, void *userdata);

/*
 * Sends one datagram of len bytes (0 allowed: an empty datagram) to addr.
 * On a connected transport addr must be NULL or the peer's address; on an
 * unconnected AF_INET, AF_INET6 or AF_UNIX transport it is required (other
 * families pass it, or NULL, to the kernel as given: a netlink socket
 * sends to the kernel with NULL). The datagram goes out at once when
 * nothing is queued and the socket takes it; otherwise it is copied into
 * the send queue (with addr) and sent when the socket is writable, in
 * order. A datagram the kernel refuses is dropped and its error reported
 * through error_received on a later iteration (never inside this call).
 * Returns 0 when the datagram was sent, queued, or dropped with its error
 * to come. Errors (returned; nothing sent or queued): ASYNC_EINVAL (NULL
 * transport, NULL data with len > 0, addr of another family or too short,
 * addr missing where required, addr other than the peer's on a connected
 * transport), ASYNC_ECLOSED (closing or aborted), ASYNC_ENOMEM (the
 * datagram could not be queued, or its error not recorded; the transport
 * stays open).
 * Callbacks: May run pause_writing inside this call.
 */
ASYNC_API int async_datagram_send(async_datagram *dgram, const void *data, size_t len, const struct sockaddr *addr,
                                  size_t addrlen);

/*
 * As async_datagram_send() to an address given as text: "host:port" forms
 * of async/addr.h (port required) on AF_INET/AF_INET6 transports (an IPv4
 * address on an IPv6 dual-stack transport is sent as IPv4-mapped), a path
 * or "@abstract" name on AF_UNIX transports. Errors: as
 * async_datagram_send(); ASYNC_EINVAL also for a malformed address, a port
 * 0, or a transport of another family.
 * Callbacks: May run pause_writing inside this call.
 */
ASYNC_API int async_datagram_sendto(async_datagram *dgram, const void *data, size_t len, const char *address);

/*
 * Closes: receiving stops now, the send queue is flushed (errors of queued
 * datagrams still come through error_received), then connection_lost(0).
 * Idempotent (also after abort). Errors: ASYNC_EINVAL.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_datagram_close(async_datagram *dgram);

/*
 * Aborts: the send queue and any error not yet reported are dropped, then
 * connection_lost(0) through the ready queue, never inside this call.
 * Idempotent. Errors: ASYNC_EINVAL.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_datagram_abort(async_datagram *dgram);

/*
 * Stops / restarts datagram_received. Idempotent; no effect once closing.
 * Datagrams the kernel already handed over in the same batch as the one
 * being delivered when reading was paused are kept and delivered, first,
 * after resume (never dropped). Errors: ASYNC_EINVAL.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_datagram_pause_reading(async_datagram *dgram);
ASYNC_API int async_datagram_resume_reading(async_datagram *dgram);

/*
 * 1 if datagram_received can be called (made, not paused, not closing), else 0.
 * Errors: ASYNC_EINVAL.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_datagram_is_reading(async_datagram *dgram);

/*
 * Sets the send queue's high- and low-water marks in bytes (low <= high;
 * high 0 pauses whenever anything is queued, low 0 resumes only when
 * empty). May call pause_writing at once. Errors: ASYNC_EINVAL (low >
 * high).
 * Callbacks: May run pause_writing inside this call.
 */
ASYNC_API int async_datagram_set_write_limits(async_datagram *dgram, size_t high, size_t low);

/*
 * The current marks. Errors: ASYNC_EINVAL.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_datagram_get_write_limits(size_t *out_high, size_t *out_low, async_datagram *dgram);

/*
 * Payload bytes in the send queue. Errors: ASYNC_EINVAL.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_datagram_write_buffer_size(size_t *out, async_datagram *dgram);

/*
 * The transport's socket (owned by the transport). Errors: ASYNC_EINVAL.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_datagram_fd(async_datagram *dgram);

/*
 * The loop of the transport, or NULL if dgram is not one or has ended.
 * Callbacks: none run inside this call.
 */
ASYNC_API async_loop *async_datagram_loop(async_datagram *dgram);

/*
 * Local / peer address into out (capacity bytes); returns its length.
 * Errors: ASYNC_EINVAL (NULL; peername of an unconnected transport),
 * ASYNC_ERANGE (capacity too small).
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_datagram_sockname(struct sockaddr *out, size_t capacity, async_datagram *dgram);
ASYNC_API int async_datagram_peername(struct sockaddr *out, size_t capacity, async_datagram *dgram);

/*
 * Joins / leaves a multicast group on a UDP transport. group: a numeric
 * multicast address of the transport's family ("239.1.2.3", "ff02::114").
 * iface: NULL (the kernel's choice by route), an interface name ("eth0")
 * or index ("2"), or for IPv4 also an address of the interface
 * ("192.0.2.7"). Errors: ASYNC_EINVAL (NULL, not a UDP transport, group
 * not a multicast address of that family, unknown interface),
 * ASYNC_EADDRINUSE (joined already), ASYNC_EADDRNOTAVAIL (leaving a group
 * not joined; no interface with that address), ASYNC_ECLOSED (closing),
 * ASYNC_EIO (another refusal by the kernel).
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_datagram_join_multicast(async_datagram *dgram, const char *group, const char *iface);
ASYNC_API int async_datagram_leave_multicast(async_datagram *dgram, const char *group, const char *iface);

/*
 * The interface multicast datagrams are sent from (IP_MULTICAST_IF /
 * IPV6_MULTICAST_IF): as iface above; NULL restores the kernel's choice.
 * Errors: as async_datagram_join_multicast().
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_datagram_set_multicast_interface(async_datagram *dgram, const char *iface);

/*
 * Multicast TTL / hop limit of sent datagrams, 0..255 (default 1). Errors:
 * ASYNC_EINVAL, ASYNC_ECLOSED.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_datagram_set_multicast_ttl(async_datagram *dgram, int ttl);

/*
 * Whether multicast datagrams this host sends are looped back to its own
 * members (1, the default) or not (0). Errors: ASYNC_EINVAL, ASYNC_ECLOSED.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_datagram_set_multicast_loop(async_datagram *dgram, int on);

/*
 * SO_BROADCAST on (1) or off (0) on a UDP transport. Errors: ASYNC_EINVAL,
 * ASYNC_ECLOSED.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_datagram_set_broadcast(async_datagram *dgram, int on);

/*
 * Takes a reference to dgram: its memory stays valid (see Lifetime above)
 * until the matching async_datagram_release(), even after it has ended.
 * Allowed anywhere on the loop thread, including inside any of its
 * callbacks (connection_lost and release too) and after it ended.
 * Errors: ASYNC_EINVAL (NULL, not a datagram transport), ASYNC_ERANGE
 * (2^32 - 1 references held already: none taken). Thread: as
 * async_datagram_release(). Callbacks: none run inside this call.
 */
ASYNC_API int async_datagram_retain(async_datagram *dgram);

/*
 * Drops a reference taken with async_datagram_retain(). It never closes the
 * transport. When it was the last one and the transport has ended, the
 * memory is freed inside this call; otherwise it goes when the transport
 * ends. Allowed inside the transport's callbacks (the memory is never
 * freed while a library call on it is still running). It never touches the
 * loop, so it may come after async_loop_free().
 * Errors: ASYNC_EINVAL (NULL, not a datagram transport, or no reference of
 * the caller left: refused while the memory is there; a release after the
 * last reference is a use after free, undefined as in any C library).
 * Thread: the loop thread while the loop exists; after async_loop_free()
 * any thread, one call on a transport at a time.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_datagram_release(async_datagram *dgram);

/*
 * The userdata the transport's callbacks get (borrowed). NULL for NULL, not
 * a datagram transport, or an ended one (its userdata was released).
 * Callbacks: none run inside this call.
 */
ASYNC_API void *async_datagram_userdata(async_datagram *dgram);

#ifdef __cplusplus
}
#endif

#endif
