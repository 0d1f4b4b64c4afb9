/**
 * @file
 * @brief Error codes and their descriptions.
 *
 * Values are fixed forever: never renumbered, never reused. Every function
 * returns 0 (or a non-negative value) on success and one of these negative
 * codes on failure.
 */
#ifndef ASYNC_ERROR_H
#define ASYNC_ERROR_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @brief The error codes: ASYNC_OK (0) and the negative ASYNC_E* values,
 * each described by async_strerror() and named by async_err_name().
 */
enum async_error {
  ASYNC_OK = 0,              /**< success */
  ASYNC_EINVAL = -1,         /**< invalid argument or wrong object kind */
  ASYNC_ENOMEM = -2,         /**< the allocator returned NULL */
  ASYNC_EBUSY = -3,          /**< resource in use (open handles, signal owned by another loop, nested run) */
  ASYNC_ECLOSED = -4,        /**< object closing/closed, or loop freed */
  ASYNC_ECANCELED = -5,      /**< operation cancelled */
  ASYNC_ETIMEDOUT = -6,      /**< deadline expired */
  ASYNC_ESTATE = -7,         /**< call not valid in the object's current state */
  ASYNC_EBADF = -8,          /**< not an open file descriptor */
  ASYNC_EMFILE = -9,         /**< out of file descriptors */
  ASYNC_EIO = -10,           /**< unexpected system call failure */
  ASYNC_ERANGE = -11,        /**< value out of range */
  ASYNC_EINTERNAL = -12,     /**< internal error (a bug in libasync) */
  ASYNC_ENOTFOUND = -13,     /**< DNS: the name does not exist (NXDOMAIN) */
  ASYNC_ENODATA = -14,       /**< DNS: the name exists but has no address of that family */
  ASYNC_EREFUSED = -15,      /**< DNS: the server refused the query, or none could be reached */
  ASYNC_ESERVFAIL = -16,     /**< DNS: the server failed (SERVFAIL, malformed or unsupported answer) */
  ASYNC_EBADNAME = -17,      /**< DNS: malformed host name (bad label, too long) */
  ASYNC_ECONNREFUSED = -18,  /**< connection refused by the peer */
  ASYNC_ECONNRESET = -19,    /**< connection reset by the peer */
  ASYNC_EPIPE = -20,         /**< the peer closed its reading end */
  ASYNC_ENOBUFS = -21,       /**< a buffer limit was reached (read limit with nothing consumed) */
  ASYNC_EHOSTUNREACH = -22,  /**< no route to the host */
  ASYNC_ENETUNREACH = -23,   /**< network unreachable */
  ASYNC_EADDRINUSE = -24,    /**< address already in use */
  ASYNC_EADDRNOTAVAIL = -25, /**< address not available on this host */
  ASYNC_EEOF = -26,          /**< the stream ended before the data asked for */
  ASYNC_EMSGSIZE = -27,      /**< a datagram too large to send, or larger than the receive buffer */
  ASYNC_EACCES = -28,        /**< permission denied (broadcast without the option, a firewall rule) */
  ASYNC_EWRONGTHREAD = -29,  /**< called from a thread other than the loop's (async_loop_set_thread_check) */
  ASYNC_ENOTSUP = -30,       /**< not supported here (no executor set on the loop, a kernel without the feature) */
  ASYNC_ENOENT = -31,        /**< no such file or directory (a program to run that does not exist) */
  ASYNC_ENOEXEC = -32,       /**< not an executable format the kernel runs */
  ASYNC_EPROTO = -33,        /**< the peer broke the protocol of a layer (a malformed TLS record, a bad SOCKS5 reply) */
  ASYNC_ETLS = -34,          /**< the TLS handshake failed (no common version or cipher, an alert from the peer) */
  ASYNC_ECERT = -35,         /**< the peer's certificate failed verification (async_tls_verify_error() says why) */
  ASYNC_ETRUNCATED = -36,    /**< the connection ended without the peer's TLS close_notify: data may be cut short */
  ASYNC_ERROR_FORCE32 = 0x7FFFFFFF /**< keeps the enum 32 bits wide; not a code */
};

/**
 * @brief A human-readable description of an error code.
 *
 * @param code an error code (any int).
 * @return the description, never NULL; "unknown error" for a code that is
 *         not in enum async_error.
 * @ownership Static storage: never free it.
 * @thread Any thread.
 * @callbacks None run inside this call.
 */
ASYNC_API const char *async_strerror(int code);

/**
 * @brief The symbolic name of an error code ("ASYNC_EINVAL").
 *
 * @param code an error code (any int).
 * @return the name, never NULL; "ASYNC_UNKNOWN" for a code that is not in
 *         enum async_error.
 * @ownership Static storage: never free it.
 * @thread Any thread.
 * @callbacks None run inside this call.
 */
ASYNC_API const char *async_err_name(int code);

#ifdef __cplusplus
}
#endif

#endif
