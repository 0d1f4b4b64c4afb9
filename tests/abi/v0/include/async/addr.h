/**
 * @file
 * @brief Socket address helpers: text to and from struct sockaddr, without
 * DNS.
 *
 * Accepted text forms (numeric hosts only; names go through
 * async_getaddrinfo()):
 *
 *     192.0.2.1            192.0.2.1:8080
 *     ::1                  [::1]:8080
 *     fe80::1%eth0         [fe80::1%eth0]:8080
 *     fe80::1%2            [fe80::1%2]:8080      (numeric scope id)
 *
 * A scope name is turned into an interface index with if_nametoindex(); an
 * unknown interface name is an error. A bare IPv6 address never takes a
 * port (use brackets). Whitespace, empty parts, ports above 65535, a port
 * on a bracket-less IPv6 address or trailing garbage are ASYNC_EINVAL.
 * Details: brackets always need a port (`"[::1]"` is malformed); a port is
 * 1 to 5 decimal digits, no sign; an all-digit scope is an index (1 to
 * 4294967295), any other scope an interface name; a scope is allowed on
 * any IPv6 address, never on IPv4.
 *
 * struct sockaddr is only declared here; include `<sys/socket.h>` and
 * `<netinet/in.h>` to use it, or, without them (a binding with no libc
 * definitions), treat addresses as ASYNC_ADDR_MAXLEN bytes of any
 * alignment and read and build them with async_addr_get_family(),
 * async_addr_get_ip(), async_addr_port(), async_addr_get_scope_id(),
 * async_addr_make() and async_addr_set_port().
 *
 * Pure functions: any thread, no loop needed (no owner-thread check
 * applies); callbacks: none run inside any of them. Nothing changes hands:
 * every buffer stays the caller's.
 */
#ifndef ASYNC_ADDR_H
#define ASYNC_ADDR_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

struct sockaddr;

/** @brief Room for any string async_addr_format() produces, terminator included. */
#define ASYNC_ADDR_STRLEN 80

/** @brief async_addr_format() flag: the address only, no ":port". */
#define ASYNC_ADDR_NOPORT 1u

/** @brief Room for any address the library writes (sizeof(struct sockaddr_storage)). */
#define ASYNC_ADDR_MAXLEN 128

/**
 * @brief Address families, numbered as Linux's AF_* constants.
 *
 * Fixed values, so a binding needs no libc header for them. Every family
 * argument and field of the API takes these (AF_INET and ASYNC_AF_INET are
 * the same number).
 */
enum async_addr_family {
  ASYNC_AF_UNSPEC = 0,                   /**< No family: decided by the addresses (AF_UNSPEC). */
  ASYNC_AF_UNIX = 1,                     /**< Unix domain sockets (AF_UNIX). */
  ASYNC_AF_INET = 2,                     /**< IPv4 (AF_INET). */
  ASYNC_AF_INET6 = 10,                   /**< IPv6 (AF_INET6). */
  ASYNC_ADDR_FAMILY_FORCE32 = 0x7FFFFFFF /**< Not a family: keeps the enum 32 bits wide. */
};

/**
 * @brief Parses text (forms above) into an AF_INET or AF_INET6 address.
 *
 * The port is the text's, or default_port when the text has none.
 *
 * @param[out] out          receives the address; room for capacity bytes.
 * @param      capacity     the size of out (ASYNC_ADDR_MAXLEN always
 *                          suffices).
 * @param      text         the address as text.
 * @param      default_port the port when text has none (host byte order).
 * @return the address length (sizeof(struct sockaddr_in) or
 *         sizeof(struct sockaddr_in6)) on success.
 * @retval ASYNC_EINVAL out or text NULL, malformed text, unknown interface.
 * @retval ASYNC_ERANGE capacity too small for the parsed family (nothing
 *         written).
 * @ownership Nothing changes hands.
 * @thread Any thread.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_addr_parse(struct sockaddr *out, size_t capacity, const char *text, uint16_t default_port);

/**
 * @brief Writes addr as text into out.
 *
 * `"192.0.2.1:80"`, `"[2001:db8::1]:80"`, `"[fe80::1%lo]:80"` (scope as
 * interface name, or its number if the index has no name); with
 * ASYNC_ADDR_NOPORT `"192.0.2.1"`, `"fe80::1%lo"`.
 *
 * @param[out] out      receives the text, terminated.
 * @param      capacity the size of out (ASYNC_ADDR_STRLEN always
 *                      suffices).
 * @param      addr     an AF_INET or AF_INET6 address.
 * @param      addrlen  the size of addr.
 * @param      flags    0 or ASYNC_ADDR_NOPORT.
 * @return the string length (without the terminator) on success.
 * @retval ASYNC_EINVAL out or addr NULL, unknown flags, a family other
 *         than AF_INET/AF_INET6, addrlen too short for the family.
 * @retval ASYNC_ERANGE out too small: nothing useful written, out[0] is
 *         the terminator when capacity > 0.
 * @ownership Nothing changes hands.
 * @thread Any thread.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_addr_format(char *out, size_t capacity, const struct sockaddr *addr, size_t addrlen,
                                uint32_t flags);

/**
 * @brief The port of an AF_INET/AF_INET6 address.
 *
 * @param addr    the address.
 * @param addrlen the size of addr.
 * @return the port in host byte order (0..65535) on success.
 * @retval ASYNC_EINVAL addr NULL, another family, addrlen too short.
 * @ownership Nothing changes hands.
 * @thread Any thread.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_addr_port(const struct sockaddr *addr, size_t addrlen);

/**
 * @brief The family of addr.
 *
 * Only the family field is read.
 *
 * @param addr    the address.
 * @param addrlen the size of addr.
 * @return an enum async_addr_family value (ASYNC_AF_INET, ASYNC_AF_INET6,
 *         ASYNC_AF_UNIX), or another family's number as the kernel gave it
 *         (e.g. 16 for a netlink sender).
 * @retval ASYNC_EINVAL addr NULL, addrlen shorter than the family field.
 * @ownership Nothing changes hands.
 * @thread Any thread.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_addr_get_family(const struct sockaddr *addr, size_t addrlen);

/**
 * @brief Copies the IP address of an AF_INET/AF_INET6 address into out.
 *
 * In network byte order (192.0.2.1 is {192, 0, 2, 1}).
 *
 * @param[out] out      receives the IP address.
 * @param      capacity the size of out (16 always suffices).
 * @param      addr     the address.
 * @param      addrlen  the size of addr.
 * @return the IP address length, 4 or 16, on success.
 * @retval ASYNC_EINVAL out or addr NULL, another family, addrlen too short
 *         for the family.
 * @retval ASYNC_ERANGE capacity too small; nothing written.
 * @ownership Nothing changes hands.
 * @thread Any thread.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_addr_get_ip(uint8_t *out, size_t capacity, const struct sockaddr *addr, size_t addrlen);

/**
 * @brief Reads the scope id (interface index) of an AF_INET6 address.
 *
 * @param[out] out     receives the scope id; 0 for AF_INET, which has none.
 * @param      addr    an AF_INET or AF_INET6 address.
 * @param      addrlen the size of addr.
 * @retval 0            *out is set.
 * @retval ASYNC_EINVAL out or addr NULL, another family, addrlen too short
 *         for the family.
 * @ownership Nothing changes hands.
 * @thread Any thread.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_addr_get_scope_id(uint32_t *out, const struct sockaddr *addr, size_t addrlen);

/**
 * @brief Writes an address into out.
 *
 * The IPv6 flow label is 0. The length returned is what any function
 * taking an address and its length wants.
 *
 * @param[out] out      receives the address (capacity bytes, any alignment).
 * @param      capacity the size of out (ASYNC_ADDR_MAXLEN always suffices).
 * @param      family   ASYNC_AF_INET or ASYNC_AF_INET6.
 * @param      ip       the IP address in network byte order, as
 *                      async_addr_get_ip() gives it.
 * @param      ip_len   4 for ASYNC_AF_INET, 16 for ASYNC_AF_INET6.
 * @param      port     the port in host byte order.
 * @param      scope_id the IPv6 scope id (interface index); 0 for IPv4.
 * @return the address length (16 or 28) on success.
 * @retval ASYNC_EINVAL out or ip NULL, another family, ip_len not the
 *         family's, a scope id on IPv4.
 * @retval ASYNC_ERANGE capacity too small; nothing written.
 * @ownership Nothing changes hands.
 * @thread Any thread.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_addr_make(struct sockaddr *out, size_t capacity, int family, const uint8_t *ip, size_t ip_len,
                              uint16_t port, uint32_t scope_id);

/**
 * @brief Sets the port of an AF_INET/AF_INET6 address in place.
 *
 * @param addr    the address.
 * @param addrlen the size of addr.
 * @param port    the port in host byte order.
 * @retval 0            set.
 * @retval ASYNC_EINVAL addr NULL, another family, addrlen too short
 *         (nothing written).
 * @ownership Nothing changes hands.
 * @thread Any thread.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_addr_set_port(struct sockaddr *addr, size_t addrlen, uint16_t port);

#ifdef __cplusplus
}
#endif

#endif
