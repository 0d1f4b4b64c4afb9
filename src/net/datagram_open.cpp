// Datagram transports opened from text addresses, and their socket options.
#include <async/error.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "net/datagram.hpp"
#include "net/socket.hpp"
#include "util/address.hpp"

namespace async::net {
namespace {

using util::SocketAddress;

// Parses an optional address (NULL: none, len 0) and checks or sets
// *family from it. 0 or ASYNC_EINVAL.
int parse_endpoint(const char *text, int *family, SocketAddress *out) noexcept {
  if (!text) return 0;
  int len = util::parse_address(reinterpret_cast<sockaddr *>(&out->addr), sizeof out->addr, text, 0);
  if (len < 0) return ASYNC_EINVAL;
  if (*family != AF_UNSPEC && *family != out->addr.ss_family) return ASYNC_EINVAL;
  *family = out->addr.ss_family;
  out->len = static_cast<socklen_t>(len);
  return 0;
}

// Opens the socket and adopts it; on failure nothing is left open.
int open_and_adopt(Datagram **out, Loop &loop, int family, const SocketAddress &local, const SocketAddress &remote,
                   const DatagramSocketOptions &options, const async_datagram_protocol &protocol,
                   void *userdata) noexcept {
  int fd = open_datagram_socket(family, local, remote, options);
  if (fd < 0) return fd;
  int err = Datagram::adopt(out, loop, fd, protocol, userdata);
  if (err) ::close(fd);
  return err;
}

// An IPv4 address as the IPv4-mapped IPv6 one (::ffff:a.b.c.d), same port.
void map_to_v6(SocketAddress *a) noexcept {
  sockaddr_in v4;
  std::memcpy(&v4, &a->addr, sizeof v4);
  sockaddr_in6 v6{};
  v6.sin6_family = AF_INET6;
  v6.sin6_port = v4.sin_port;
  v6.sin6_addr.s6_addr[10] = 0xff;
  v6.sin6_addr.s6_addr[11] = 0xff;
  std::memcpy(&v6.sin6_addr.s6_addr[12], &v4.sin_addr, sizeof v4.sin_addr);
  std::memset(&a->addr, 0, sizeof a->addr);
  std::memcpy(&a->addr, &v6, sizeof v6);
  a->len = sizeof v6;
}

// The destination text names for a transport of family. 0 or ASYNC_EINVAL.
int destination(const char *text, int family, SocketAddress *out) noexcept {
  if (family == AF_UNIX) {
    int len = util::unix_address(&out->addr, text);
    if (len < 0) return len;
    out->len = static_cast<socklen_t>(len);
    return 0;
  }
  int parsed = AF_UNSPEC;
  if ((family != AF_INET && family != AF_INET6) || parse_endpoint(text, &parsed, out) != 0) return ASYNC_EINVAL;
  if (util::address_port(reinterpret_cast<const sockaddr *>(&out->addr), out->len) == 0) return ASYNC_EINVAL;
  if (parsed == AF_INET && family == AF_INET6) map_to_v6(out);
  return 0;
}

}  // namespace

int Datagram::open_udp(Datagram **out, Loop &loop, const async_udp_options &options,
                       const async_datagram_protocol &protocol, void *userdata) noexcept {
  int family = options.family;
  if (family != AF_UNSPEC && family != AF_INET && family != AF_INET6) return ASYNC_EINVAL;
  SocketAddress local;
  SocketAddress remote;
  if (parse_endpoint(options.local_address, &family, &local) != 0 ||
      parse_endpoint(options.remote_address, &family, &remote) != 0 || family == AF_UNSPEC)
    return ASYNC_EINVAL;
  if (remote.len && util::address_port(reinterpret_cast<const sockaddr *>(&remote.addr), remote.len) == 0)
    return ASYNC_EINVAL;
  if (!local.len && !remote.len) {  // the family's wildcard, any port
    local.addr.ss_family = static_cast<sa_family_t>(family);
    local.len = family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
  }
  DatagramSocketOptions o;
  o.reuse_port = options.reuse_port != 0;
  o.broadcast = options.broadcast != 0;
  o.v6only = options.ipv6_only != 0;
  o.send_buffer = options.send_buffer_size;
  o.receive_buffer = options.receive_buffer_size;
  return open_and_adopt(out, loop, family, local, remote, o, protocol, userdata);
}

int Datagram::open_unix(Datagram **out, Loop &loop, const char *local_path, const char *remote_path,
                        const async_datagram_protocol &protocol, void *userdata) noexcept {
  SocketAddress local;
  SocketAddress remote;
  if (local_path && destination(local_path, AF_UNIX, &local) != 0) return ASYNC_EINVAL;
  if (remote_path && destination(remote_path, AF_UNIX, &remote) != 0) return ASYNC_EINVAL;
  return open_and_adopt(out, loop, AF_UNIX, local, remote, DatagramSocketOptions{}, protocol, userdata);
}

int Datagram::sendto(const void *data, std::size_t len, const char *address) noexcept {
  if (!is_open()) return ASYNC_ECLOSED;
  SocketAddress to;
  int err = destination(address, family(), &to);
  return err ? err : send(data, len, reinterpret_cast<const sockaddr *>(&to.addr), to.len);
}

int Datagram::set_multicast_membership(bool join, const char *group, const char *iface) noexcept {
  return multicast_membership(fd(), family(), join, group, iface);
}

int Datagram::set_multicast_interface(const char *iface) noexcept { return multicast_interface(fd(), family(), iface); }

int Datagram::set_multicast_ttl(int ttl) noexcept {
  return family() == AF_INET ? set_int_option(fd(), IPPROTO_IP, IP_MULTICAST_TTL, ttl)
                             : set_int_option(fd(), IPPROTO_IPV6, IPV6_MULTICAST_HOPS, ttl);
}

int Datagram::set_multicast_loop(bool on) noexcept {
  return family() == AF_INET ? set_int_option(fd(), IPPROTO_IP, IP_MULTICAST_LOOP, on)
                             : set_int_option(fd(), IPPROTO_IPV6, IPV6_MULTICAST_LOOP, on);
}

int Datagram::set_broadcast(bool on) noexcept { return set_int_option(fd(), SOL_SOCKET, SO_BROADCAST, on); }

int Datagram::socket_name(sockaddr *out, std::size_t capacity, bool peer) const noexcept {
  return net::socket_name(fd(), peer, out, capacity);
}

}  // namespace async::net
