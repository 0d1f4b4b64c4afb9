#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "api/api.hpp"
#include "net/datagram.hpp"
#include "net/socket.hpp"
#include "util/address.hpp"

using async::api::checked;
using async::api::checked_loop;
using async::api::guarded;
using async::api::with_object;
using async::api::kInvalid;
using async::net::Datagram;
using async::net::DatagramSocketOptions;
using async::core::Loop;
using async::util::SocketAddress;

namespace {

// As with_object<Datagram>() for socket options of an open UDP (AF_INET/AF_INET6)
// transport: ASYNC_ECLOSED once closing, ASYNC_EINVAL for other families.
template <class Op>
int with_udp(async_datagram *dgram, Op &&op) {
  return with_object<Datagram>(dgram, [&](Datagram &d) -> int {
    if (!d.is_open()) return ASYNC_ECLOSED;
    return d.is_inet() ? op(d) : kInvalid;
  });
}

// Parses an optional address (NULL: none, len 0) and checks or sets
// *family from it. 0 or ASYNC_EINVAL.
int parse_endpoint(const char *text, int *family, SocketAddress *out) {
  if (!text) return 0;
  int len = async::util::parse_address(reinterpret_cast<sockaddr *>(&out->addr), sizeof out->addr, text, 0);
  if (len < 0) return ASYNC_EINVAL;
  if (*family != AF_UNSPEC && *family != out->addr.ss_family) return ASYNC_EINVAL;
  *family = out->addr.ss_family;
  out->len = static_cast<socklen_t>(len);
  return 0;
}

// Opens the socket and adopts it; on failure nothing is left open.
int open_and_adopt(async_datagram **out, Loop &loop, int family, const SocketAddress &local,
                   const SocketAddress &remote, const DatagramSocketOptions &options,
                   const async_datagram_protocol &protocol, void *userdata) {
  return guarded([&]() -> int {
    int fd = async::net::open_datagram_socket(family, local, remote, options);
    if (fd < 0) return fd;
    Datagram *d = nullptr;
    int err = Datagram::adopt(&d, loop, fd, protocol, userdata);
    if (err) {
      ::close(fd);
      return err;
    }
    *out = d->c_datagram();
    return 0;
  });
}

// An IPv4 address as the IPv4-mapped IPv6 one (::ffff:a.b.c.d), same port.
void map_to_v6(SocketAddress *a) {
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
int destination(const char *text, int family, SocketAddress *out) {
  if (family == AF_UNIX) {
    int len = async::util::unix_address(&out->addr, text);
    if (len < 0) return len;
    out->len = static_cast<socklen_t>(len);
    return 0;
  }
  int parsed = AF_UNSPEC;
  if ((family != AF_INET && family != AF_INET6) || parse_endpoint(text, &parsed, out) != 0) return ASYNC_EINVAL;
  if (async::util::address_port(reinterpret_cast<const sockaddr *>(&out->addr), out->len) == 0) return ASYNC_EINVAL;
  if (parsed == AF_INET && family == AF_INET6) map_to_v6(out);
  return 0;
}

}  // namespace

extern "C" {

ASYNC_API int async_udp_open(async_datagram **out, async_loop *loop, const async_udp_options *options,
                             const async_datagram_protocol *protocol, void *userdata) {
  Loop *l = checked_loop(loop);
  if (!out || !l || !options || options->size < sizeof(async_udp_options) || !Datagram::valid_protocol(protocol))
    return ASYNC_EINVAL;
  int family = options->family;
  if (family != AF_UNSPEC && family != AF_INET && family != AF_INET6) return ASYNC_EINVAL;
  SocketAddress local, remote;
  if (parse_endpoint(options->local_address, &family, &local) != 0 ||
      parse_endpoint(options->remote_address, &family, &remote) != 0 || family == AF_UNSPEC)
    return ASYNC_EINVAL;
  if (remote.len && async::util::address_port(reinterpret_cast<const sockaddr *>(&remote.addr), remote.len) == 0)
    return ASYNC_EINVAL;
  if (!local.len && !remote.len) {  // the family's wildcard, any port
    local.addr.ss_family = static_cast<sa_family_t>(family);
    local.len = family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
  }
  DatagramSocketOptions o;
  o.reuse_port = options->reuse_port != 0;
  o.broadcast = options->broadcast != 0;
  o.v6only = options->ipv6_only != 0;
  o.send_buffer = options->send_buffer_size;
  o.receive_buffer = options->receive_buffer_size;
  return open_and_adopt(out, *l, family, local, remote, o, *protocol, userdata);
}

ASYNC_API int async_unix_datagram_open(async_datagram **out, async_loop *loop, const char *local_path,
                                       const char *remote_path, const async_datagram_protocol *protocol,
                                       void *userdata) {
  Loop *l = checked_loop(loop);
  if (!out || !l || !Datagram::valid_protocol(protocol)) return ASYNC_EINVAL;
  SocketAddress local, remote;
  if (local_path && destination(local_path, AF_UNIX, &local) != 0) return ASYNC_EINVAL;
  if (remote_path && destination(remote_path, AF_UNIX, &remote) != 0) return ASYNC_EINVAL;
  return open_and_adopt(out, *l, AF_UNIX, local, remote, DatagramSocketOptions{}, *protocol, userdata);
}

ASYNC_API int async_datagram_adopt(async_datagram **out, async_loop *loop, int fd,
                                   const async_datagram_protocol *protocol, void *userdata) {
  Loop *l = checked_loop(loop);
  if (!out || !l || !Datagram::valid_protocol(protocol)) return ASYNC_EINVAL;
  return guarded([&]() -> int {
    Datagram *d = nullptr;
    int err = Datagram::adopt(&d, *l, fd, *protocol, userdata);
    if (!err) *out = d->c_datagram();
    return err;
  });
}

ASYNC_API int async_datagram_send(async_datagram *dgram, const void *data, size_t len, const struct sockaddr *addr,
                                  size_t addrlen) {
  if (!data && len > 0) return ASYNC_EINVAL;
  return with_object<Datagram>(dgram, [&](Datagram &d) { return d.send(data, len, addr, addrlen); });
}

ASYNC_API int async_datagram_sendto(async_datagram *dgram, const void *data, size_t len, const char *address) {
  if ((!data && len > 0) || !address) return ASYNC_EINVAL;
  return with_object<Datagram>(dgram, [&](Datagram &d) -> int {
    if (!d.is_open()) return ASYNC_ECLOSED;
    SocketAddress to;
    int err = destination(address, d.family(), &to);
    return err ? err : d.send(data, len, reinterpret_cast<const sockaddr *>(&to.addr), to.len);
  });
}

ASYNC_API int async_datagram_close(async_datagram *dgram) {
  return with_object<Datagram>(dgram, [](Datagram &d) {
    d.close();
    return 0;
  });
}

ASYNC_API int async_datagram_abort(async_datagram *dgram) {
  return with_object<Datagram>(dgram, [](Datagram &d) {
    d.abort(0);
    return 0;
  });
}

ASYNC_API int async_datagram_pause_reading(async_datagram *dgram) {
  return with_object<Datagram>(dgram, [](Datagram &d) {
    d.pause_reading();
    return 0;
  });
}

ASYNC_API int async_datagram_resume_reading(async_datagram *dgram) {
  return with_object<Datagram>(dgram, [](Datagram &d) {
    d.resume_reading();
    return 0;
  });
}

ASYNC_API int async_datagram_is_reading(async_datagram *dgram) {
  return with_object<Datagram>(dgram, [](Datagram &d) { return d.is_reading() ? 1 : 0; });
}

ASYNC_API int async_datagram_set_write_limits(async_datagram *dgram, size_t high, size_t low) {
  return with_object<Datagram>(dgram, [&](Datagram &d) { return d.set_write_limits(high, low); });
}

ASYNC_API int async_datagram_get_write_limits(size_t *out_high, size_t *out_low, async_datagram *dgram) {
  if (!out_high || !out_low) return ASYNC_EINVAL;
  return with_object<Datagram>(dgram, [&](Datagram &d) {
    *out_high = d.high();
    *out_low = d.low();
    return 0;
  });
}

ASYNC_API int async_datagram_write_buffer_size(size_t *out, async_datagram *dgram) {
  if (!out) return ASYNC_EINVAL;
  return with_object<Datagram>(dgram, [&](Datagram &d) {
    *out = d.write_buffer_size();
    return 0;
  });
}

ASYNC_API int async_datagram_fd(async_datagram *dgram) {
  return with_object<Datagram>(dgram, [](Datagram &d) { return d.fd(); });
}

ASYNC_API async_loop *async_datagram_loop(async_datagram *dgram) {
  Datagram *d = checked<Datagram>(dgram);
  return d ? d->loop().c_loop() : nullptr;
}

ASYNC_API int async_datagram_sockname(struct sockaddr *out, size_t capacity, async_datagram *dgram) {
  if (!out) return ASYNC_EINVAL;
  return with_object<Datagram>(dgram, [&](Datagram &d) { return async::net::socket_name(d.fd(), false, out, capacity); });
}

ASYNC_API int async_datagram_peername(struct sockaddr *out, size_t capacity, async_datagram *dgram) {
  if (!out) return ASYNC_EINVAL;
  return with_object<Datagram>(dgram, [&](Datagram &d) { return async::net::socket_name(d.fd(), true, out, capacity); });
}

ASYNC_API int async_datagram_join_multicast(async_datagram *dgram, const char *group, const char *iface) {
  if (!group) return ASYNC_EINVAL;
  return with_udp(dgram, [&](Datagram &d) {
    return async::net::multicast_membership(d.fd(), d.family(), true, group, iface);
  });
}

ASYNC_API int async_datagram_leave_multicast(async_datagram *dgram, const char *group, const char *iface) {
  if (!group) return ASYNC_EINVAL;
  return with_udp(dgram, [&](Datagram &d) {
    return async::net::multicast_membership(d.fd(), d.family(), false, group, iface);
  });
}

ASYNC_API int async_datagram_set_multicast_interface(async_datagram *dgram, const char *iface) {
  return with_udp(dgram, [&](Datagram &d) { return async::net::multicast_interface(d.fd(), d.family(), iface); });
}

ASYNC_API int async_datagram_set_multicast_ttl(async_datagram *dgram, int ttl) {
  if (ttl < 0 || ttl > 255) return ASYNC_EINVAL;
  return with_udp(dgram, [&](Datagram &d) {
    return d.family() == AF_INET ? async::net::set_int_option(d.fd(), IPPROTO_IP, IP_MULTICAST_TTL, ttl)
                                 : async::net::set_int_option(d.fd(), IPPROTO_IPV6, IPV6_MULTICAST_HOPS, ttl);
  });
}

ASYNC_API int async_datagram_set_multicast_loop(async_datagram *dgram, int on) {
  return with_udp(dgram, [&](Datagram &d) {
    return d.family() == AF_INET ? async::net::set_int_option(d.fd(), IPPROTO_IP, IP_MULTICAST_LOOP, on != 0)
                                 : async::net::set_int_option(d.fd(), IPPROTO_IPV6, IPV6_MULTICAST_LOOP, on != 0);
  });
}

ASYNC_API int async_datagram_set_broadcast(async_datagram *dgram, int on) {
  return with_udp(dgram, [&](Datagram &d) { return async::net::set_int_option(d.fd(), SOL_SOCKET, SO_BROADCAST, on != 0); });
}
}
