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
 * <netinet/in.h> to use it. Pure functions: any thread, no loop needed.
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

#ifdef __cplusplus
}
#endif

#endif
