#include "net/socket.hpp"

#include <arpa/inet.h>
#include <async/error.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/address.hpp"
#include "util/sys_error.hpp"

namespace async::net {

namespace {

// setsockopt() of an int; true on success (errno set otherwise).
bool set_on(int fd, int level, int name, int value) noexcept {
  return ::setsockopt(fd, level, name, &value, sizeof value) == 0;
}

// The IPv4 interface iface names into mreq: an address, a name or an
// index; NULL leaves the kernel's choice. 0 or ASYNC_EINVAL.
int ipv4_interface(const char *iface, ip_mreqn *mreq) noexcept {
  if (!iface) return 0;
  sockaddr_storage addr;
  socklen_t len;
  if (util::parse_numeric_host(iface, AF_INET, &addr, &len)) {
    mreq->imr_address = reinterpret_cast<const sockaddr_in &>(addr).sin_addr;
    return 0;
  }
  mreq->imr_ifindex = static_cast<int>(util::interface_index(iface));
  return mreq->imr_ifindex ? 0 : ASYNC_EINVAL;
}

// The IPv6 interface index iface names (NULL: fallback; 0 is the kernel's
// choice); ASYNC_EINVAL for an unknown one.
int ipv6_interface(const char *iface, std::uint32_t fallback, unsigned *index) noexcept {
  *index = iface ? util::interface_index(iface) : fallback;
  return iface && *index == 0 ? ASYNC_EINVAL : 0;
}

// setsockopt() for multicast calls: ENODEV (no interface with that
// address) reads as ASYNC_EADDRNOTAVAIL.
int set_multicast(int fd, int level, int name, const void *value, socklen_t len) noexcept {
  if (::setsockopt(fd, level, name, value, len) == 0) return 0;
  return errno == ENODEV ? ASYNC_EADDRNOTAVAIL : util::from_errno(errno);
}

}  // namespace

int peer_error(int err) noexcept { return err == ENOENT ? ASYNC_ECONNREFUSED : util::from_errno(err); }

int socket_name(int fd, bool peer, sockaddr *out, std::size_t capacity) noexcept {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  auto *sa = reinterpret_cast<sockaddr *>(&addr);
  if ((peer ? ::getpeername(fd, sa, &len) : ::getsockname(fd, sa, &len)) != 0) return ASYNC_EINVAL;
  if (len > capacity) return ASYNC_ERANGE;
  std::memcpy(out, &addr, len);
  return static_cast<int>(len);
}

int set_int_option(int fd, int level, int name, int value) noexcept {
  return set_on(fd, level, name, value) ? 0 : ASYNC_EINVAL;
}

int open_datagram_socket(int family, const SocketAddress &local, const SocketAddress &remote,
                         const DatagramSocketOptions &options) noexcept {
  int fd = ::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return util::from_errno(errno);
  bool ok = true;
  if (options.reuse_port) ok = set_on(fd, SOL_SOCKET, SO_REUSEPORT, 1);
  if (ok && options.broadcast) ok = set_on(fd, SOL_SOCKET, SO_BROADCAST, 1);
  if (ok && family == AF_INET6) ok = set_on(fd, IPPROTO_IPV6, IPV6_V6ONLY, options.v6only ? 1 : 0);
  if (ok && options.send_buffer) ok = set_on(fd, SOL_SOCKET, SO_SNDBUF, static_cast<int>(options.send_buffer));
  if (ok && options.receive_buffer) ok = set_on(fd, SOL_SOCKET, SO_RCVBUF, static_cast<int>(options.receive_buffer));
  int err = ok ? 0 : util::from_errno(errno);
  if (!err && local.len && ::bind(fd, reinterpret_cast<const sockaddr *>(&local.addr), local.len) != 0)
    err = util::from_errno(errno);
  if (!err && remote.len && ::connect(fd, reinterpret_cast<const sockaddr *>(&remote.addr), remote.len) != 0)
    err = peer_error(errno);
  if (err) {
    ::close(fd);
    return err;
  }
  return fd;
}

int multicast_membership(int fd, int family, bool join, const char *group, const char *iface) noexcept {
  sockaddr_storage addr;
  socklen_t len;
  if (!util::parse_numeric_host(group, family, &addr, &len)) return ASYNC_EINVAL;
  if (family == AF_INET) {
    const auto &sin = reinterpret_cast<const sockaddr_in &>(addr);
    if (!IN_MULTICAST(ntohl(sin.sin_addr.s_addr))) return ASYNC_EINVAL;
    ip_mreqn mreq{};
    mreq.imr_multiaddr = sin.sin_addr;
    int err = ipv4_interface(iface, &mreq);
    if (err) return err;
    return set_multicast(fd, IPPROTO_IP, join ? IP_ADD_MEMBERSHIP : IP_DROP_MEMBERSHIP, &mreq, sizeof mreq);
  }
  const auto &sin6 = reinterpret_cast<const sockaddr_in6 &>(addr);
  if (!IN6_IS_ADDR_MULTICAST(&sin6.sin6_addr)) return ASYNC_EINVAL;
  ipv6_mreq mreq{};
  mreq.ipv6mr_multiaddr = sin6.sin6_addr;
  // A scope on the group ("ff02::1%lo") names the interface too.
  int err = ipv6_interface(iface, sin6.sin6_scope_id, &mreq.ipv6mr_interface);
  if (err) return err;
  return set_multicast(fd, IPPROTO_IPV6, join ? IPV6_ADD_MEMBERSHIP : IPV6_DROP_MEMBERSHIP, &mreq, sizeof mreq);
}

int multicast_interface(int fd, int family, const char *iface) noexcept {
  if (family == AF_INET) {
    ip_mreqn mreq{};
    int err = ipv4_interface(iface, &mreq);
    return err ? err : set_multicast(fd, IPPROTO_IP, IP_MULTICAST_IF, &mreq, sizeof mreq);
  }
  unsigned index = 0;
  int err = ipv6_interface(iface, 0, &index);
  int value = static_cast<int>(index);
  return err ? err : set_multicast(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &value, sizeof value);
}

}  // namespace async::net
