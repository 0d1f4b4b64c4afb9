// The hosts-file reader (src/dns/hosts_file.hpp), through its interface.
//
// Input: the file's contents. It is written to a memfd and read through
// /proc/self/fd (no disk); the names looked up are taken from the input's
// own words plus a few fixed ones.
// Properties: no crash and no read past a buffer for any file; a lookup
// reports at most kMaxAddrs addresses, of the family asked, with a
// terminated canonical name that itself resolves; AF_UNSPEC finds what
// AF_INET and AF_INET6 find; every address a lookup returns has a reverse
// entry, and the name reverse gives for it resolves.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <initializer_list>

#include "dns/hosts_file.hpp"
#include "fuzz_check.h"

using async::dns::HostsFile;
using async::dns::HostsMatch;

namespace {

constexpr int kMaxNames = 4;
constexpr std::size_t kMaxReverse = 2;  // addresses checked in reverse per name: keeps the exec rate up

struct File {
  int fd = memfd_create("hosts", 0);
  char path[64] = {};
  File() { std::snprintf(path, sizeof path, "/proc/self/fd/%d", fd); }
};

File &hosts() {
  static File file;
  return file;
}

bool same_address(const sockaddr_in6 &a, const sockaddr_in6 &b) {
  if (a.sin6_family != b.sin6_family) return false;
  if (a.sin6_family == AF_INET)
    return reinterpret_cast<const sockaddr_in &>(a).sin_addr.s_addr ==
           reinterpret_cast<const sockaddr_in &>(b).sin_addr.s_addr;
  return std::memcmp(&a.sin6_addr, &b.sin6_addr, sizeof a.sin6_addr) == 0;
}

bool contains(const HostsMatch &m, const sockaddr_in6 &addr) {
  for (std::size_t i = 0; i < m.count; ++i)
    if (same_address(m.addrs[i], addr)) return true;
  return false;
}

// The lookup result's own invariants; returns whether it found anything.
bool checked_lookup(const char *path, const char *name, int family, HostsMatch &m) {
  std::memset(&m, 0x5a, sizeof m);  // nothing stale may show through
  bool found = HostsFile::lookup(path, name, family, m);
  FUZZ_CHECK(found == (m.count > 0));
  FUZZ_CHECK(m.count <= HostsMatch::kMaxAddrs);
  if (!found) return false;
  FUZZ_CHECK(std::memchr(m.canon, '\0', sizeof m.canon) != nullptr);
  FUZZ_CHECK(m.canon[0] != '\0');
  for (std::size_t i = 0; i < m.count; ++i) {
    int f = m.addrs[i].sin6_family;
    FUZZ_CHECK(f == AF_INET || f == AF_INET6);
    FUZZ_CHECK(family == AF_UNSPEC || f == family);
  }
  return true;
}

void check_name(const char *path, const char *name) {
  HostsMatch all, v4, v6;
  bool found = checked_lookup(path, name, AF_UNSPEC, all);
  checked_lookup(path, name, AF_INET, v4);
  checked_lookup(path, name, AF_INET6, v6);
  // Below the cap, both families' lines are exactly the unspecified ones.
  if (all.count < HostsMatch::kMaxAddrs) FUZZ_CHECK(all.count == v4.count + v6.count);
  for (std::size_t i = 0; i < v4.count; ++i) FUZZ_CHECK(all.count == HostsMatch::kMaxAddrs || contains(all, v4.addrs[i]));
  for (std::size_t i = 0; i < v6.count; ++i) FUZZ_CHECK(all.count == HostsMatch::kMaxAddrs || contains(all, v6.addrs[i]));
  if (!found) return;

  // The canonical name is a name of a matching line: it resolves (unless it
  // was cut to fit canon).
  if (std::strlen(all.canon) < sizeof all.canon - 1) {
    HostsMatch canon;
    FUZZ_CHECK(checked_lookup(path, all.canon, AF_UNSPEC, canon));
  }
  for (std::size_t i = 0; i < all.count && i < kMaxReverse; ++i) {
    char back[1024];
    std::memset(back, 0x5a, sizeof back);
    FUZZ_CHECK(HostsFile::reverse(path, reinterpret_cast<const sockaddr *>(&all.addrs[i]), back, sizeof back));
    FUZZ_CHECK(std::memchr(back, '\0', sizeof back) != nullptr && back[0] != '\0');
    HostsMatch again;
    FUZZ_CHECK(checked_lookup(path, back, all.addrs[i].sin6_family, again));
    FUZZ_CHECK(contains(again, all.addrs[i]) || again.count == HostsMatch::kMaxAddrs);
  }
  // A reverse into a small buffer stays inside it.
  char tiny[4];
  if (HostsFile::reverse(path, reinterpret_cast<const sockaddr *>(&all.addrs[0]), tiny, sizeof tiny))
    FUZZ_CHECK(std::memchr(tiny, '\0', sizeof tiny) != nullptr);
}

// Up to kMaxNames words of the input that are not first on their line (the
// names the file lists, if it is well formed), each cut to 255 characters.
int pick_names(const uint8_t *data, std::size_t size, char names[][256]) {
  int count = 0;
  bool first = true;
  std::size_t i = 0;
  while (i < size && count < kMaxNames) {
    uint8_t c = data[i];
    if (c == '\n') first = true;
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '#' || c == '\0') {
      ++i;
      continue;
    }
    std::size_t start = i;
    while (i < size && !std::memchr(" \t\r\n#", data[i], 5) && data[i] != '\0') ++i;
    if (!first) {
      std::size_t n = i - start < 255 ? i - start : 255;
      std::memcpy(names[count], data + start, n);
      names[count++][n] = '\0';
    }
    first = false;
  }
  return count;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, std::size_t size) {
  File &file = hosts();
  FUZZ_CHECK(file.fd >= 0);
  FUZZ_CHECK(ftruncate(file.fd, 0) == 0);
  FUZZ_CHECK(pwrite(file.fd, data, size, 0) == static_cast<ssize_t>(size));

  char names[kMaxNames + 2][256];
  int count = pick_names(data, size, names);
  for (const char *fixed : {"localhost", "a"}) std::strcpy(names[count++], fixed);
  for (int i = 0; i < count; ++i) check_name(file.path, names[i]);
  return 0;
}
