// Address text <-> sockaddr (async/addr.h).
//
// Input: one mode byte, then either the text to parse (mode bit 0 clear) or
// the raw bytes of a sockaddr to format (mode bit 0 set).
// Properties: parse and format never crash and return a documented code;
// a parsed address formats to text that parses back to the same address
// (family, address, port, scope id), with and without the port; format's
// length and ASYNC_ERANGE behaviour match its contract; async_addr_port
// agrees with the address; the accessors (get_family, get_ip,
// get_scope_id) read it apart and async_addr_make builds it back.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <async.h>

#include <cstdint>
#include <cstring>
#include <initializer_list>

#include "fuzz_check.h"

namespace {

bool same_address(const sockaddr_storage &a, const sockaddr_storage &b) {
  if (a.ss_family != b.ss_family) return false;
  if (a.ss_family == AF_INET) {
    auto &x = reinterpret_cast<const sockaddr_in &>(a);
    auto &y = reinterpret_cast<const sockaddr_in &>(b);
    return x.sin_port == y.sin_port && x.sin_addr.s_addr == y.sin_addr.s_addr;
  }
  auto &x = reinterpret_cast<const sockaddr_in6 &>(a);
  auto &y = reinterpret_cast<const sockaddr_in6 &>(b);
  return x.sin6_port == y.sin6_port && x.sin6_scope_id == y.sin6_scope_id &&
         std::memcmp(&x.sin6_addr, &y.sin6_addr, sizeof x.sin6_addr) == 0;
}

std::size_t family_length(int family) {
  return family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
}

// addr (len bytes, a valid AF_INET/AF_INET6 address) read apart by the
// accessors and made again from the parts: the same address.
void check_accessors(const sockaddr_storage &addr, std::size_t len, int port) {
  auto *sa = reinterpret_cast<const sockaddr *>(&addr);
  FUZZ_CHECK(async_addr_get_family(sa, len) == addr.ss_family);
  std::uint8_t ip[16];
  int ip_len = async_addr_get_ip(ip, sizeof ip, sa, len);
  FUZZ_CHECK(ip_len == (addr.ss_family == AF_INET ? 4 : 16));
  std::uint32_t scope = 0;
  FUZZ_CHECK(async_addr_get_scope_id(&scope, sa, len) == 0);
  sockaddr_storage made;
  std::memset(&made, 0xa5, sizeof made);
  int made_len = async_addr_make(reinterpret_cast<sockaddr *>(&made), sizeof made, addr.ss_family, ip,
                                 static_cast<std::size_t>(ip_len), static_cast<uint16_t>(port), scope);
  FUZZ_CHECK(made_len == static_cast<int>(len));
  FUZZ_CHECK(same_address(addr, made));
}

// addr (len bytes, a valid AF_INET/AF_INET6 address) formats and parses back.
void check_round_trip(const sockaddr_storage &addr, std::size_t len) {
  auto *sa = reinterpret_cast<const sockaddr *>(&addr);
  int port = async_addr_port(sa, len);
  FUZZ_CHECK(port >= 0 && port <= 65535);
  check_accessors(addr, len, port);
  for (uint32_t flags : {0u, unsigned{ASYNC_ADDR_NOPORT}}) {
    char text[ASYNC_ADDR_STRLEN];
    int n = async_addr_format(text, sizeof text, sa, len, flags);
    FUZZ_CHECK(n > 0 && n < ASYNC_ADDR_STRLEN && static_cast<std::size_t>(n) == std::strlen(text));
    // One byte short of the terminator: ASYNC_ERANGE and an empty string.
    char small[ASYNC_ADDR_STRLEN];
    FUZZ_CHECK(async_addr_format(small, static_cast<std::size_t>(n), sa, len, flags) == ASYNC_ERANGE);
    FUZZ_CHECK(small[0] == '\0');
    FUZZ_CHECK(async_addr_format(small, static_cast<std::size_t>(n) + 1, sa, len, flags) == n);
    FUZZ_CHECK(std::strcmp(small, text) == 0);

    sockaddr_storage back;
    // Without the port in the text, the default port must bring it back.
    uint16_t default_port = flags ? static_cast<uint16_t>(port) : 0;
    int back_len = async_addr_parse(reinterpret_cast<sockaddr *>(&back), sizeof back, text, default_port);
    if (back_len < 0) std::fprintf(stderr, "formatted \"%s\" does not parse: %d\n", text, back_len);
    FUZZ_CHECK(back_len == static_cast<int>(family_length(addr.ss_family)));
    FUZZ_CHECK(same_address(addr, back));
  }
}

void fuzz_parse(const uint8_t *data, std::size_t size, uint16_t default_port) {
  char text[256];
  std::size_t n = size < sizeof text - 1 ? size : sizeof text - 1;
  std::memcpy(text, data, n);
  text[n] = '\0';

  sockaddr_storage addr;
  std::memset(&addr, 0xa5, sizeof addr);  // parse must not depend on what out held
  int len = async_addr_parse(reinterpret_cast<sockaddr *>(&addr), sizeof addr, text, default_port);
  if (len < 0) {
    FUZZ_CHECK(len == ASYNC_EINVAL);
    return;
  }
  FUZZ_CHECK(addr.ss_family == AF_INET || addr.ss_family == AF_INET6);
  FUZZ_CHECK(static_cast<std::size_t>(len) == family_length(addr.ss_family));
  // A capacity below the family's length is ASYNC_ERANGE, never an overflow.
  alignas(sockaddr_in6) unsigned char tight[sizeof(sockaddr_in6)];
  int small = async_addr_parse(reinterpret_cast<sockaddr *>(tight), static_cast<std::size_t>(len) - 1, text,
                               default_port);
  FUZZ_CHECK(small == ASYNC_ERANGE);
  check_round_trip(addr, static_cast<std::size_t>(len));
}

void fuzz_format(const uint8_t *data, std::size_t size, uint32_t flags) {
  sockaddr_storage addr;
  std::memset(&addr, 0, sizeof addr);
  std::size_t len = size < sizeof addr ? size : sizeof addr;
  std::memcpy(&addr, data, len);
  auto *sa = reinterpret_cast<const sockaddr *>(&addr);
  char text[ASYNC_ADDR_STRLEN];
  int n = async_addr_format(text, sizeof text, sa, len, flags);
  int port = async_addr_port(sa, len);
  bool valid = (addr.ss_family == AF_INET || addr.ss_family == AF_INET6) && len >= family_length(addr.ss_family);
  if (!valid || flags > ASYNC_ADDR_NOPORT) {
    FUZZ_CHECK(n == ASYNC_EINVAL);
    FUZZ_CHECK(valid || port == ASYNC_EINVAL);
    std::uint8_t ip[16];
    FUZZ_CHECK(valid || async_addr_get_ip(ip, sizeof ip, sa, len) == ASYNC_EINVAL);
    return;
  }
  FUZZ_CHECK(n > 0);
  // The round trip compares what text can carry: not the IPv6 flow label.
  if (addr.ss_family == AF_INET6) reinterpret_cast<sockaddr_in6 &>(addr).sin6_flowinfo = 0;
  check_round_trip(addr, family_length(addr.ss_family));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, std::size_t size) {
  if (size < 1) return 0;
  uint8_t mode = data[0];
  if (mode & 1) {
    // Flags: mostly valid ones, sometimes unknown bits.
    fuzz_format(data + 1, size - 1, (mode >> 1) & 3u);
  } else {
    fuzz_parse(data + 1, size - 1, static_cast<uint16_t>((mode >> 1) * 517u));
  }
  return 0;
}
