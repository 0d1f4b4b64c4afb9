// A per-loop hosts file (async_dns_set_hosts_file): c-ares 1.18 has no
// per-channel hosts path, so libasync reads the file itself, field by
// field through fixed buffers (no allocation, lines of any length), on the
// loop thread.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>

namespace async::dns {

// Room for the longest DNS name (253 characters) and its NUL: a name the
// file gives back (canonical name, reverse lookup) is never cut shorter.
constexpr std::size_t kHostNameSize = 254;

struct HostsMatch {
  static constexpr std::size_t kMaxAddrs = 32;
  sockaddr_in6 addrs[kMaxAddrs];  // each holds a sockaddr_in or a sockaddr_in6 (scope id kept)
  std::size_t count = 0;
  char canon[kHostNameSize] = {};  // the first name of the first matching line
};

class HostsFile {
 public:
  // Addresses of family (AF_UNSPEC: both) listed for name (case-insensitive,
  // canonical name or alias), in file order. false when none (or the file
  // cannot be read). Addresses are numeric hosts as async_addr_parse()
  // takes them ("fe80::1%eth0": scope id from the interface name or
  // number; a line whose address does not parse is skipped); fields over
  // 255 bytes are no names.
  static bool lookup(const char *path, const char *name, int family, HostsMatch &out) noexcept;
  // The first name listed for addr (AF_INET/AF_INET6, scope ignored).
  static bool reverse(const char *path, const sockaddr *addr, char *name, std::size_t size) noexcept;
};

}  // namespace async::dns
