// Numeric socket addresses: text <-> sockaddr_in/sockaddr_in6, no DNS
// (async/addr.h). Pure functions: no allocation, no exceptions, any thread.
//
// Grammar (strict: no whitespace, no empty parts, no trailing garbage):
//   host   = ipv4 | ipv6 [ "%" scope ]
//   scope  = digits (interface index, 1..UINT32_MAX)
//          | interface name (if_nametoindex(), must exist)
//   text   = ipv4 [ ":" port ] | ipv6 [ "%" scope ] | "[" ipv6 [ "%" scope ] "]:" port
//   port   = 1 to 5 decimal digits, 0..65535, no sign
// A scope is accepted on any IPv6 address (not only link-local ones).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>

namespace async::util {

// Parses a numeric host with no port: "192.0.2.1", "::1", "fe80::1%lo",
// "fe80::1%2". family (AF_UNSPEC, AF_INET or AF_INET6) restricts which
// addresses are accepted. On success *out holds a zeroed sockaddr_in or
// sockaddr_in6 (port 0, scope id set) and *len its size.
// Returns:
//    1             numeric host of an accepted family; *out, *len written;
//    0             not a numeric host of an accepted family (a name, garbage,
//                  or an address of the other family: a caller that needs to
//                  tell those apart can retry with AF_UNSPEC); nothing written;
//    ASYNC_EINVAL  a numeric IPv6 address with an empty, malformed or
//                  unknown scope ("fe80::1%", "fe80::1%nosuchif", "fe80::1%0"),
//                  a scope on an IPv4 address ("192.0.2.1%lo"), a NULL
//                  pointer, or a family other than the three above.
int parse_numeric_host_checked(const char *host, int family, sockaddr_storage *out, socklen_t *len) noexcept;

// parse_numeric_host_checked() == 1: true for a usable numeric host, false
// for anything else (names, malformed scopes, other family, NULL).
bool parse_numeric_host(const char *host, int family, sockaddr_storage *out, socklen_t *len) noexcept;

// async_addr_parse(): text (grammar above) into out, port from the text or
// default_port. Returns sizeof(sockaddr_in) or sizeof(sockaddr_in6);
// ASYNC_EINVAL (NULL, malformed text, unknown interface) or ASYNC_ERANGE
// (capacity below the parsed family's size). out is untouched on error.
int parse_address(sockaddr *out, std::size_t capacity, const char *text, std::uint16_t default_port) noexcept;

// async_addr_format(): addr as "192.0.2.1:80", "[2001:db8::1]:80",
// "[fe80::1%lo]:80" (scope as interface name, else its number); with
// ASYNC_ADDR_NOPORT the host alone, no brackets. Returns the length;
// ASYNC_EINVAL (NULL, unknown flags, other family, addrlen too short) or
// ASYNC_ERANGE (out too small; out[0] = '\0' when capacity > 0).
int format_address(char *out, std::size_t capacity, const sockaddr *addr, std::size_t addrlen,
                   std::uint32_t flags) noexcept;

// async_addr_port(): the port in host byte order, or ASYNC_EINVAL (NULL,
// other family, addrlen too short).
int address_port(const sockaddr *addr, std::size_t addrlen) noexcept;

// async_addr_get_family(): the family field (any family), or ASYNC_EINVAL
// (NULL, addrlen short of the field).
int address_family(const sockaddr *addr, std::size_t addrlen) noexcept;

// async_addr_get_ip(): the IPv4/IPv6 address bytes (network order) into
// out; returns 4 or 16. ASYNC_EINVAL (NULL, other family, addrlen too
// short), ASYNC_ERANGE (capacity too small; nothing written).
int address_ip(std::uint8_t *out, std::size_t capacity, const sockaddr *addr, std::size_t addrlen) noexcept;

// async_addr_get_scope_id(): sin6_scope_id, 0 for AF_INET; errors as address_ip().
int address_scope_id(std::uint32_t *out, const sockaddr *addr, std::size_t addrlen) noexcept;

// async_addr_make(): an AF_INET (ip_len 4, scope_id 0) or AF_INET6 (ip_len
// 16) address into out (any alignment); returns its length. ASYNC_EINVAL
// (NULL, another combination), ASYNC_ERANGE (capacity too small).
int make_address(sockaddr *out, std::size_t capacity, int family, const std::uint8_t *ip, std::size_t ip_len,
                 std::uint16_t port, std::uint32_t scope_id) noexcept;

// async_addr_set_port(): the port of an AF_INET/AF_INET6 address (any
// alignment); errors as address_port().
int set_port(sockaddr *addr, std::size_t addrlen, std::uint16_t port) noexcept;

// A Unix socket address for path: a filesystem path, or an abstract name
// written "@name". Returns its length, or ASYNC_EINVAL (empty, "@" alone,
// too long).
int unix_address(sockaddr_storage *out, const char *path) noexcept;

// The index of an interface named by name ("eth0") or number ("2"); 0 for
// an unknown name, a malformed one, index 0 or NULL.
std::uint32_t interface_index(const char *name) noexcept;

// Sets the port of an AF_INET/AF_INET6 address (host order); other
// families are left alone.
void set_address_port(sockaddr_storage &addr, std::uint16_t port) noexcept;

// A socket address and its length (len 0: none).
struct SocketAddress {
  sockaddr_storage addr{};
  socklen_t len = 0;
};

// The addresses a local name (util::is_local_name) stands for, "::1" then
// "127.0.0.1", or with wildcard those of no host at all, "::" then
// "0.0.0.0": the ones of family (AF_UNSPEC: both), with port. Returns how
// many were written (1 or 2; 0 for another family).
std::size_t local_addresses(SocketAddress out[2], int family, bool wildcard, std::uint16_t port) noexcept;

}  // namespace async::util
