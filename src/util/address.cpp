#include "util/address.hpp"

#include <arpa/inet.h>
#include <async.h>
#include <net/if.h>
#include <sys/un.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <string_view>

namespace async::util {

// The ABI's numbers are the kernel's: family values pass through unchanged.
static_assert(ASYNC_AF_UNSPEC == AF_UNSPEC && ASYNC_AF_UNIX == AF_UNIX && ASYNC_AF_INET == AF_INET &&
              ASYNC_AF_INET6 == AF_INET6);
static_assert(ASYNC_ADDR_MAXLEN == sizeof(sockaddr_storage));
namespace {

// Longest IPv6 text inet_pton() accepts ("ffff:...:255.255.255.255").
constexpr std::size_t kMaxAddrText = INET6_ADDRSTRLEN - 1;
// Longest scope: an interface name (the longest index, 10 digits, is shorter).
constexpr std::size_t kMaxScopeText = IF_NAMESIZE - 1;
// Longest valid async_addr_parse() text: "[" addr "%" scope "]:" 65535.
constexpr std::size_t kMaxText = 1 + kMaxAddrText + 1 + kMaxScopeText + 2 + 5;

static_assert(kMaxText < ASYNC_ADDR_STRLEN, "ASYNC_ADDR_STRLEN must fit every formatted address");

bool is_digits(std::string_view s) noexcept {
  return !s.empty() && std::ranges::all_of(s, [](char c) { return c >= '0' && c <= '9'; });
}

// 1 to 5 digits, 0..65535.
bool parse_port(std::string_view s, std::uint16_t *port) noexcept {
  if (s.size() > 5 || !is_digits(s)) return false;
  std::uint32_t v = 0;
  for (char c : s) v = v * 10 + static_cast<std::uint32_t>(c - '0');
  if (v > 65535) return false;
  *port = static_cast<std::uint16_t>(v);
  return true;
}

// The interface index a scope names, 0 when it is empty, malformed, zero,
// out of range or an unknown interface. All digits means an index.
std::uint32_t parse_scope(std::string_view s) noexcept {
  if (s.empty() || s.size() > kMaxScopeText) return 0;
  if (is_digits(s)) {
    std::uint64_t v = 0;
    for (char c : s) {
      v = v * 10 + static_cast<std::uint64_t>(c - '0');
      if (v > UINT32_MAX) return 0;
    }
    return static_cast<std::uint32_t>(v);
  }
  // Characters Linux never allows in a name. ':' matters: the SIOCGIFINDEX
  // behind if_nametoindex() cuts "lo:junk" at the colon (alias syntax).
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u <= ' ' || u == 0x7f || c == '/' || c == ':') return 0;
  }
  char name[IF_NAMESIZE];
  std::memcpy(name, s.data(), s.size());
  name[s.size()] = '\0';
  return if_nametoindex(name);
}

// parse_numeric_host_checked() on a string that need not be terminated.
int parse_host(std::string_view host, int family, sockaddr_storage *out, socklen_t *len) noexcept {
  if (family != AF_UNSPEC && family != AF_INET && family != AF_INET6) return ASYNC_EINVAL;
  std::size_t pct = host.find('%');
  std::string_view addr = host.substr(0, pct);
  if (addr.empty() || addr.size() > kMaxAddrText) return 0;
  char buf[kMaxAddrText + 1];
  std::memcpy(buf, addr.data(), addr.size());
  buf[addr.size()] = '\0';

  in_addr a4;
  if (inet_pton(AF_INET, buf, &a4) == 1) {
    if (family == AF_INET6) return 0;
    if (pct != std::string_view::npos) return ASYNC_EINVAL;
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr = a4;
    std::memset(out, 0, sizeof *out);
    std::memcpy(out, &sin, sizeof sin);
    *len = sizeof sin;
    return 1;
  }
  in6_addr a6;
  if (family == AF_INET || inet_pton(AF_INET6, buf, &a6) != 1) return 0;
  std::uint32_t scope = 0;
  if (pct != std::string_view::npos) {
    scope = parse_scope(host.substr(pct + 1));
    if (scope == 0) return ASYNC_EINVAL;
  }
  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  sin6.sin6_addr = a6;
  sin6.sin6_scope_id = scope;
  std::memset(out, 0, sizeof *out);
  std::memcpy(out, &sin6, sizeof sin6);
  *len = sizeof sin6;
  return 1;
}

// Copies an AF_INET/AF_INET6 address into *ss (addr may be unaligned).
// Returns its family, or ASYNC_EINVAL for another family or a short addrlen.
int load_inet(const sockaddr *addr, std::size_t addrlen, sockaddr_storage *ss) noexcept {
  constexpr std::size_t kFamilyEnd = offsetof(sockaddr, sa_family) + sizeof(sa_family_t);
  if (addrlen < kFamilyEnd) return ASYNC_EINVAL;
  sa_family_t family;
  std::memcpy(&family, reinterpret_cast<const char *>(addr) + offsetof(sockaddr, sa_family), sizeof family);
  std::size_t need = family == AF_INET ? sizeof(sockaddr_in) : family == AF_INET6 ? sizeof(sockaddr_in6) : 0;
  if (need == 0 || addrlen < need) return ASYNC_EINVAL;
  std::memset(ss, 0, sizeof *ss);
  std::memcpy(ss, addr, need);
  return family;
}

// Fixed-size text builder; kMaxText < size, so appends never truncate.
class Text {
 public:
  void put(std::string_view s) noexcept {
    std::size_t n = s.size() < sizeof buf_ - 1 - len_ ? s.size() : sizeof buf_ - 1 - len_;
    std::memcpy(buf_ + len_, s.data(), n);
    len_ += n;
    buf_[len_] = '\0';
  }
  void put_uint(std::uint32_t v) noexcept {
    char digits[10];
    std::size_t n = 0;
    do {
      digits[sizeof digits - 1 - n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    put(std::string_view(digits + sizeof digits - n, n));
  }
  const char *data() const noexcept { return buf_; }
  std::size_t size() const noexcept { return len_; }

 private:
  char buf_[ASYNC_ADDR_STRLEN] = {};
  std::size_t len_ = 0;
};

}  // namespace

int parse_numeric_host_checked(const char *host, int family, sockaddr_storage *out, socklen_t *len) noexcept {
  if (!host || !out || !len) return ASYNC_EINVAL;
  // Bounded scan: anything longer than address + scope is not numeric.
  std::size_t n = strnlen(host, kMaxAddrText + 1 + kMaxScopeText + 1);
  return parse_host(std::string_view(host, n), family, out, len);
}

bool parse_numeric_host(const char *host, int family, sockaddr_storage *out, socklen_t *len) noexcept {
  return parse_numeric_host_checked(host, family, out, len) == 1;
}

int parse_address(sockaddr *out, std::size_t capacity, const char *text, std::uint16_t default_port) noexcept {
  if (!out || !text) return ASYNC_EINVAL;
  std::size_t n = strnlen(text, kMaxText + 1);
  if (n > kMaxText) return ASYNC_EINVAL;
  std::string_view s(text, n);

  std::string_view host;
  int family = AF_UNSPEC;
  std::uint16_t port = default_port;
  if (!s.empty() && s.front() == '[') {
    // "[v6]:port": brackets exist only to carry a port, so it is required.
    std::size_t close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') return ASYNC_EINVAL;
    if (!parse_port(s.substr(close + 2), &port)) return ASYNC_EINVAL;
    host = s.substr(1, close - 1);
    family = AF_INET6;
  } else if (std::size_t colon = s.find(':');
             colon != std::string_view::npos && s.find(':', colon + 1) == std::string_view::npos) {
    // Exactly one colon: "v4:port" (an IPv6 address has at least two).
    if (!parse_port(s.substr(colon + 1), &port)) return ASYNC_EINVAL;
    host = s.substr(0, colon);
    family = AF_INET;
  } else {
    host = s;
  }

  sockaddr_storage ss;
  socklen_t len = 0;
  if (parse_host(host, family, &ss, &len) != 1) return ASYNC_EINVAL;
  if (capacity < len) return ASYNC_ERANGE;
  set_address_port(ss, port);
  std::memcpy(out, &ss, len);
  return static_cast<int>(len);
}

int format_address(char *out, std::size_t capacity, const sockaddr *addr, std::size_t addrlen,
                   std::uint32_t flags) noexcept {
  if (!out || !addr || (flags & ~std::uint32_t{ASYNC_ADDR_NOPORT}) != 0) return ASYNC_EINVAL;
  sockaddr_storage ss;
  int family = load_inet(addr, addrlen, &ss);
  if (family < 0) return family;
  bool with_port = (flags & ASYNC_ADDR_NOPORT) == 0;

  char host[INET6_ADDRSTRLEN];
  std::uint16_t port;
  std::uint32_t scope = 0;
  if (family == AF_INET) {
    const auto *sin = reinterpret_cast<const sockaddr_in *>(&ss);
    if (!inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host)) return ASYNC_EINTERNAL;
    port = ntohs(sin->sin_port);
  } else {
    const auto *sin6 = reinterpret_cast<const sockaddr_in6 *>(&ss);
    if (!inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host)) return ASYNC_EINTERNAL;
    port = ntohs(sin6->sin6_port);
    scope = sin6->sin6_scope_id;
  }

  Text text;
  bool brackets = family == AF_INET6 && with_port;
  if (brackets) text.put("[");
  text.put(host);
  if (scope != 0) {
    text.put("%");
    char name[IF_NAMESIZE];
    // An all-digit interface name would parse back as an index: use the number.
    if (if_indextoname(scope, name) && !is_digits(name)) {
      text.put(name);
    } else {
      text.put_uint(scope);
    }
  }
  if (brackets) text.put("]");
  if (with_port) {
    text.put(":");
    text.put_uint(port);
  }

  if (text.size() >= capacity) {
    if (capacity > 0) out[0] = '\0';
    return ASYNC_ERANGE;
  }
  std::memcpy(out, text.data(), text.size() + 1);
  return static_cast<int>(text.size());
}

int address_port(const sockaddr *addr, std::size_t addrlen) noexcept {
  if (!addr) return ASYNC_EINVAL;
  sockaddr_storage ss;
  int family = load_inet(addr, addrlen, &ss);
  if (family < 0) return family;
  if (family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in *>(&ss)->sin_port);
  return ntohs(reinterpret_cast<const sockaddr_in6 *>(&ss)->sin6_port);
}

int address_family(const sockaddr *addr, std::size_t addrlen) noexcept {
  if (!addr || addrlen < offsetof(sockaddr, sa_family) + sizeof(sa_family_t)) return ASYNC_EINVAL;
  sa_family_t family;
  std::memcpy(&family, reinterpret_cast<const char *>(addr) + offsetof(sockaddr, sa_family), sizeof family);
  return family;
}

int address_ip(std::uint8_t *out, std::size_t capacity, const sockaddr *addr, std::size_t addrlen) noexcept {
  if (!out || !addr) return ASYNC_EINVAL;
  sockaddr_storage ss;
  int family = load_inet(addr, addrlen, &ss);
  if (family < 0) return family;
  const void *ip = family == AF_INET ? static_cast<const void *>(&reinterpret_cast<const sockaddr_in &>(ss).sin_addr)
                                     : &reinterpret_cast<const sockaddr_in6 &>(ss).sin6_addr;
  std::size_t len = family == AF_INET ? sizeof(in_addr) : sizeof(in6_addr);
  if (capacity < len) return ASYNC_ERANGE;
  std::memcpy(out, ip, len);
  return static_cast<int>(len);
}

int address_scope_id(std::uint32_t *out, const sockaddr *addr, std::size_t addrlen) noexcept {
  if (!out || !addr) return ASYNC_EINVAL;
  sockaddr_storage ss;
  int family = load_inet(addr, addrlen, &ss);
  if (family < 0) return family;
  *out = family == AF_INET6 ? reinterpret_cast<const sockaddr_in6 &>(ss).sin6_scope_id : 0;
  return 0;
}

int make_address(sockaddr *out, std::size_t capacity, int family, const std::uint8_t *ip, std::size_t ip_len,
                 std::uint16_t port, std::uint32_t scope_id) noexcept {
  if (!out || !ip) return ASYNC_EINVAL;
  sockaddr_storage ss{};
  std::size_t len = 0;
  if (family == AF_INET && ip_len == sizeof(in_addr) && scope_id == 0) {
    auto &sin = reinterpret_cast<sockaddr_in &>(ss);
    sin.sin_family = AF_INET;
    std::memcpy(&sin.sin_addr, ip, ip_len);
    len = sizeof sin;
  } else if (family == AF_INET6 && ip_len == sizeof(in6_addr)) {
    auto &sin6 = reinterpret_cast<sockaddr_in6 &>(ss);
    sin6.sin6_family = AF_INET6;
    std::memcpy(&sin6.sin6_addr, ip, ip_len);
    sin6.sin6_scope_id = scope_id;
    len = sizeof sin6;
  } else {
    return ASYNC_EINVAL;
  }
  if (capacity < len) return ASYNC_ERANGE;
  set_address_port(ss, port);
  std::memcpy(out, &ss, len);
  return static_cast<int>(len);
}

int set_port(sockaddr *addr, std::size_t addrlen, std::uint16_t port) noexcept {
  if (!addr) return ASYNC_EINVAL;
  sockaddr_storage ss;
  int family = load_inet(addr, addrlen, &ss);
  if (family < 0) return family;
  set_address_port(ss, port);
  std::memcpy(addr, &ss, family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6));
  return 0;
}

int unix_address(sockaddr_storage *out, const char *path) noexcept {
  auto *un = reinterpret_cast<sockaddr_un *>(out);
  std::memset(out, 0, sizeof *out);
  un->sun_family = AF_UNIX;
  std::size_t len = std::strlen(path);
  bool abstract = path[0] == '@';
  // Abstract names have no terminator; paths need room for theirs.
  if (len == 0 || len > sizeof un->sun_path - (abstract ? 0 : 1) || (abstract && len == 1)) return ASYNC_EINVAL;
  std::memcpy(un->sun_path, path, len);
  if (abstract) un->sun_path[0] = '\0';
  return static_cast<int>(offsetof(sockaddr_un, sun_path) + len + (abstract ? 0 : 1));
}

std::uint32_t interface_index(const char *name) noexcept {
  if (!name) return 0;
  return parse_scope(std::string_view(name, strnlen(name, kMaxScopeText + 1)));
}

void set_address_port(sockaddr_storage &addr, std::uint16_t port) noexcept {
  if (addr.ss_family == AF_INET) reinterpret_cast<sockaddr_in &>(addr).sin_port = htons(port);
  if (addr.ss_family == AF_INET6) reinterpret_cast<sockaddr_in6 &>(addr).sin6_port = htons(port);
}

std::size_t local_addresses(SocketAddress out[2], int family, bool wildcard, std::uint16_t port) noexcept {
  std::size_t n = 0;
  if (family == AF_UNSPEC || family == AF_INET6) {
    SocketAddress &a = out[n++];
    a = SocketAddress{};
    auto &v6 = reinterpret_cast<sockaddr_in6 &>(a.addr);
    v6.sin6_family = AF_INET6;
    v6.sin6_addr = wildcard ? in6addr_any : in6addr_loopback;
    v6.sin6_port = htons(port);
    a.len = sizeof v6;
  }
  if (family == AF_UNSPEC || family == AF_INET) {
    SocketAddress &a = out[n++];
    a = SocketAddress{};
    auto &v4 = reinterpret_cast<sockaddr_in &>(a.addr);
    v4.sin_family = AF_INET;
    v4.sin_addr.s_addr = htonl(wildcard ? INADDR_ANY : INADDR_LOOPBACK);
    v4.sin_port = htons(port);
    a.len = sizeof v4;
  }
  return n;
}

}  // namespace async::util
