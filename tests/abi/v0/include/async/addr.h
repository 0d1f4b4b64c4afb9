/*
 * Socket address helpers: text <-> struct sockaddr, without DNS.
 *
 * Accepted text forms (numeric hosts only; names go through
 * async_getaddrinfo()):
 *   "192.0.2.1"            "192.0.2.1:8080"
 *   "::1"                  "[::1]:8080"
 *   "fe80::1%eth0"         "[fe80::1%eth0]:8080"
 *   "fe80::1%2"            "[fe80::1%2]:8080"      (numeric scope id)
 * A scope name is turned into an interface index with if_nametoindex(); an
 * unknown interface name is an error. A bare IPv6 address never takes a
 * port (use brackets). Whitespace, empty parts, ports above 65535, a port
 * on a bracket-less IPv6 address or trailing garbage are ASYNC_EINVAL.
 * Details: brackets always need a port ("[::1]" is malformed); a port is 1
 * to 5 decimal digits, no sign; an all-digit scope is an index (1 to
 * 4294967295), any other scope an interface name; a scope is allowed on
 * any IPv6 address, never on IPv4.
 *
 * struct sockaddr is only declared here; include <sys/socket.h> and
 * <netinet/in.h> to use it, or, without them (a binding with no libc
 * definitions), treat addresses as ASYNC_ADDR_MAXLEN bytes of any
 * alignment and read and build them with async_addr_get_family(),
 * async_addr_get_ip(), async_addr_port(), async_addr_get_scope_id(),
 * async_addr_make() and async_addr_set_port(). Pure functions: any thread,
 * no loop needed; callbacks: none run inside any of them.
 */
#ifndef ASYNC_ADDR_H
#define ASYNC_ADDR_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

struct sockaddr;

/* Room for any string async_addr_format() produces, terminator included. */
#define ASYNC_ADDR_STRLEN 80

/* async_addr_format() flag: the address only, no ":port". */
#define ASYNC_ADDR_NOPORT 1u

/* Room for any address the library writes (sizeof(struct sockaddr_storage)). */
#define ASYNC_ADDR_MAXLEN 128

/*
 * Address families, numbered as Linux's AF_* constants (fixed values, so a
 * binding needs no libc header for them). Every family argument and field
 * of the API takes these (AF_INET and ASYNC_AF_INET are the same number).
 */
enum async_addr_family {
  ASYNC_AF_UNSPEC = 0,
  ASYNC_AF_UNIX = 1,
  ASYNC_AF_INET = 2,
  ASYNC_AF_INET6 = 10,
  ASYNC_ADDR_FAMILY_FORCE32 = 0x7FFFFFFF
};

/*
 * Parses text (forms above) into out, an AF_INET or AF_INET6 address with
 * the port from the text, or default_port when the text has none. out must
 * have room for capacity bytes (sizeof(struct sockaddr_storage) always
 * suffices). Returns the address length (sizeof(struct sockaddr_in) or
 * sizeof(struct sockaddr_in6)).
 * Errors: ASYNC_EINVAL (NULL argument, malformed text, unknown interface),
 * ASYNC_ERANGE (capacity too small for the parsed family).
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_addr_parse(struct sockaddr *out, size_t capacity, const char *text, uint16_t default_port);

/*
 * Writes addr as text into out: "192.0.2.1:80", "[2001:db8::1]:80",
 * "[fe80::1%lo]:80" (scope as interface name, or its number if the index
 * has no name); with ASYNC_ADDR_NOPORT "192.0.2.1", "fe80::1%lo". Returns
 * the string length (without the terminator).
 * Errors: ASYNC_EINVAL (NULL argument, unknown flags, family other than
 * AF_INET/AF_INET6, addrlen too short for the family), ASYNC_ERANGE (out
 * too small: nothing useful written, out[0] = '\0' when capacity > 0).
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_addr_format(char *out, size_t capacity, const struct sockaddr *addr, size_t addrlen,
                                uint32_t flags);

/*
 * The port of an AF_INET/AF_INET6 address (host byte order, 0..65535).
 * Errors: ASYNC_EINVAL (NULL, other family, addrlen too short).
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_addr_port(const struct sockaddr *addr, size_t addrlen);

/*
 * The family of addr (enum async_addr_family: ASYNC_AF_INET,
 * ASYNC_AF_INET6, ASYNC_AF_UNIX), or another family's number as the
 * kernel gave it (e.g. 16 for a netlink sender). Only the family field is
 * read. Errors: ASYNC_EINVAL (NULL, addrlen shorter than the family field).
 */
ASYNC_API int async_addr_get_family(const struct sockaddr *addr, size_t addrlen);

/*
 * Copies the IP address of an AF_INET/AF_INET6 address into out, in
 * network byte order (192.0.2.1 is {192, 0, 2, 1}); returns its length, 4
 * or 16. Errors: ASYNC_EINVAL (NULL, another family, addrlen too short for
 * the family), ASYNC_ERANGE (capacity too small; nothing written).
 */
ASYNC_API int async_addr_get_ip(uint8_t *out, size_t capacity, const struct sockaddr *addr, size_t addrlen);

/*
 * The scope id (interface index) of an AF_INET6 address into *out; 0 for
 * AF_INET, which has none. Errors: as async_addr_get_ip() (no ERANGE).
 */
ASYNC_API int async_addr_get_scope_id(uint32_t *out, const struct sockaddr *addr, size_t addrlen);

/*
 * Writes an address into out (capacity bytes, any alignment): family
 * ASYNC_AF_INET with a 4-byte ip and scope_id 0, or ASYNC_AF_INET6 with a
 * 16-byte ip (network byte order, as async_addr_get_ip() gives it); port
 * in host byte order; the IPv6 flow label 0. Returns the address length
 * (16 or 28), for any function taking an address and its length.
 * Errors: ASYNC_EINVAL (NULL, another family, ip_len not the family's, a
 * scope id on IPv4), ASYNC_ERANGE (capacity too small; nothing written).
 */
ASYNC_API int async_addr_make(struct sockaddr *out, size_t capacity, int family, const uint8_t *ip, size_t ip_len,
                              uint16_t port, uint32_t scope_id);

/*
 * Sets the port (host byte order) of an AF_INET/AF_INET6 address in place.
 * Errors: ASYNC_EINVAL (NULL, another family, addrlen too short; nothing
 * written).
 */
ASYNC_API int async_addr_set_port(struct sockaddr *addr, size_t addrlen, uint16_t port);

#ifdef __cplusplus
}
#endif

#endif
