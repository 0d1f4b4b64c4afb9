// Answers known without DNS: numeric hosts, local names (RFC 6761 §6.3),
// the configured hosts file, and services as ports. No c-ares here.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>

#include "dns/hosts_file.hpp"
#include "dns/request.hpp"

namespace async::dns {

// A port number "0".."65535" (digits only), or a service name looked up
// in /etc/services for the socket type's protocol: 0 or ASYNC_EINVAL.
int parse_service(const char *service, int socktype, std::uint32_t flags, std::uint16_t *port) noexcept;

// A host name of 1..253 characters (a root dot aside).
bool valid_host(const char *host) noexcept;

// getaddrinfo's answer when it needs no DNS: false when DNS must be asked;
// else true with *status (0 or ASYNC_ENODATA) and, for 0, req.result
// (nullptr when out of memory). host is NULL (the local addresses) or
// numeric (numeric_kind != 0, parsed into numeric) or a name.
bool answer_addrinfo(Request &req, const char *host, int numeric_kind, const sockaddr_storage &numeric, bool passive,
                     const char *hosts_path, int *status) noexcept;

// getnameinfo's host and service when they need no DNS (numeric, or in the
// hosts file); false otherwise. host has room for kHostNameSize bytes.
bool answer_nameinfo(char *host, char *service, std::size_t service_size, const sockaddr *addr, std::size_t addrlen,
                     std::uint16_t port, std::uint32_t flags, const char *hosts_path) noexcept;

}  // namespace async::dns
