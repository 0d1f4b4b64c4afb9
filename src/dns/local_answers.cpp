#include "dns/local_answers.hpp"

#include <async/addr.h>
#include <async/dns.h>
#include <async/error.h>
#include <netdb.h>
#include <netinet/in.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "dns/hosts_file.hpp"
#include "util/address.hpp"
#include "util/addrinfo.hpp"
#include "util/local_name.hpp"

namespace async::dns {

using util::AddrInfo;

namespace {

constexpr std::size_t kMaxHostLen = 253;

// A one- or two-entry list for host NULL or a local name: loopback, or the
// wildcard with ASYNC_DNS_PASSIVE; IPv6 first for AF_UNSPEC.
AddrInfo *local_list(int family, bool passive, std::uint16_t port, int socktype, const char *canon) noexcept {
  util::SocketAddress addrs[2];
  std::size_t count = util::local_addresses(addrs, family, passive, port);
  AddrInfo *list = AddrInfo::create(count, canon);
  if (!list) return nullptr;
  for (std::size_t i = 0; i < count; ++i) list->set(i, reinterpret_cast<sockaddr *>(&addrs[i].addr), port, socktype);
  return list;
}

AddrInfo *hosts_list(const HostsMatch &match, const Request &req) noexcept {
  AddrInfo *list = AddrInfo::create(match.count, req.canon ? match.canon : nullptr);
  if (!list) return nullptr;
  for (std::size_t i = 0; i < match.count; ++i)
    list->set(i, reinterpret_cast<const sockaddr *>(&match.addrs[i]), req.port, req.socktype);
  return list;
}

}  // namespace

int parse_service(const char *service, int socktype, std::uint32_t flags, std::uint16_t *port) noexcept {
  std::size_t len = std::strlen(service);
  if (len == 0) return ASYNC_EINVAL;
  if (std::strspn(service, "0123456789") == len) {
    if (len > 5) return ASYNC_EINVAL;
    unsigned long value = std::strtoul(service, nullptr, 10);
    if (value > 65535) return ASYNC_EINVAL;
    *port = static_cast<std::uint16_t>(value);
    return 0;
  }
  if (flags & ASYNC_DNS_NUMERICSERV) return ASYNC_EINVAL;
  const char *protos[] = {socktype == SOCK_DGRAM ? "udp" : "tcp", socktype == 0 ? "udp" : nullptr};
  for (const char *proto : protos) {
    if (!proto) break;
    servent entry;
    servent *found = nullptr;
    char buf[1024];
    if (getservbyname_r(service, proto, &entry, buf, sizeof buf, &found) == 0 && found) {
      *port = ntohs(static_cast<std::uint16_t>(found->s_port));
      return 0;
    }
  }
  return ASYNC_EINVAL;
}

bool valid_host(const char *host) noexcept {
  std::size_t len = std::strlen(host);
  if (len == 0) return false;
  if (host[len - 1] == '.') --len;  // a fully qualified name's root dot
  return len > 0 && len <= kMaxHostLen;
}

bool answer_addrinfo(Request &req, const char *host, int numeric_kind, const sockaddr_storage &numeric, bool passive,
                     const char *hosts_path, int *status) noexcept {
  *status = 0;
  HostsMatch match;
  if (!host) {
    req.result = local_list(req.family, passive, req.port, req.socktype, nullptr);
  } else if (numeric_kind) {
    if (req.family != AF_UNSPEC && numeric.ss_family != req.family) {
      *status = ASYNC_ENODATA;
    } else if (AddrInfo *list = AddrInfo::create(1, req.canon ? host : nullptr)) {
      list->set(0, reinterpret_cast<const sockaddr *>(&numeric), req.port, req.socktype);
      req.result = list;
    }
  } else if (util::is_local_name(host)) {
    // Loopback, whatever a hosts file says (RFC 6761 §6.3): as for connect and listen.
    req.result = local_list(req.family, false, req.port, req.socktype, req.canon ? host : nullptr);
  } else if (hosts_path && *hosts_path && HostsFile::lookup(hosts_path, host, req.family, match)) {
    req.result = hosts_list(match, req);
  } else {
    return false;
  }
  return true;
}

bool answer_nameinfo(char *host, char *service, std::size_t service_size, const sockaddr *addr, std::size_t addrlen,
                     std::uint16_t port, std::uint32_t flags, const char *hosts_path) noexcept {
  static_assert(kHostNameSize >= ASYNC_ADDR_STRLEN);
  if (!(flags & ASYNC_NI_NUMERICSERV) && port != 0) return false;
  std::snprintf(service, service_size, "%u", port);
  if (flags & ASYNC_NI_NUMERICHOST)
    return util::format_address(host, kHostNameSize, addr, addrlen, ASYNC_ADDR_NOPORT) >= 0;
  return hosts_path && *hosts_path && HostsFile::reverse(hosts_path, addr, host, kHostNameSize);
}

}  // namespace async::dns
