// Socket-level helpers shared by the transports and their C API: names,
// integer options, datagram sockets opened from parsed addresses, and
// multicast membership. Results are 0 (or a length / fd) or ASYNC_E* codes.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>

#include "util/address.hpp"

namespace async::net {

using util::SocketAddress;

// What async_udp_open() sets before binding.
struct DatagramSocketOptions {
  bool reuse_port = false;
  bool broadcast = false;
  bool v6only = false;
  std::uint32_t send_buffer = 0;     // 0: the system's default
  std::uint32_t receive_buffer = 0;  // 0: the system's default
};

// The ASYNC_E* code of a connect()/sendto() errno: a Unix path with no
// socket bound there (ENOENT) is ASYNC_ECONNREFUSED, like an abstract one.
int peer_error(int err) noexcept;

// getsockname() (peer false) or getpeername() (peer true) of fd into out
// (capacity bytes); its length, ASYNC_EINVAL (no name, e.g. not connected)
// or ASYNC_ERANGE (capacity too small).
int socket_name(int fd, bool peer, sockaddr *out, std::size_t capacity) noexcept;

// setsockopt() of an int option; 0 or ASYNC_EINVAL.
int set_int_option(int fd, int level, int name, int value) noexcept;

// A non-blocking, close-on-exec SOCK_DGRAM socket of family with options
// (AF_INET/AF_INET6 only), bound to local and connected to remote (each
// when its len is non-zero). Returns the fd or an ASYNC_E* code (nothing
// left open).
int open_datagram_socket(int family, const SocketAddress &local, const SocketAddress &remote,
                         const DatagramSocketOptions &options) noexcept;

// Joins (join true) or leaves the numeric multicast group on fd, a socket
// of family AF_INET or AF_INET6, on iface (NULL, a name, an index, or an
// IPv4 interface address). ASYNC_EINVAL for a group that is not a
// multicast address of family or an unknown interface; ASYNC_EADDRINUSE,
// ASYNC_EADDRNOTAVAIL and others from the kernel.
int multicast_membership(int fd, int family, bool join, const char *group, const char *iface) noexcept;

// IP_MULTICAST_IF / IPV6_MULTICAST_IF to iface (as above; NULL resets).
int multicast_interface(int fd, int family, const char *iface) noexcept;

}  // namespace async::net
