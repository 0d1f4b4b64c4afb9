#include "dns/hosts_file.hpp"

#include <fcntl.h>
#include <strings.h>
#include <unistd.h>

#include <cstring>

#include "util/address.hpp"

namespace async::dns {
namespace {

// Fields up to this long are kept; a longer one is no address and no name
// (names are at most 253 characters), nor is one with a NUL byte (it would
// compare as the text before it): it is left out, and a line that starts
// with one is skipped.
constexpr std::size_t kFieldMax = 256;

enum class Next { kField, kSkipLine, kStop };

// Calls on_field(text, index) for every field of every line, in order
// (index 0: the address, then the names), with comments ('#' to the end of
// the line) left out. on_field says whether to go on with the line, skip to
// the next one or stop (then true is returned). Lines of any length and any
// number of fields, read through fixed buffers, no allocation.
template <class F>
bool for_each_field(const char *path, F &&on_field) noexcept {
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[4096];
  char field[kFieldMax];
  std::size_t len = 0;
  std::size_t index = 0;
  bool unusable = false;
  bool skip = false;
  bool stop = false;
  auto end_field = [&] {
    if (unusable) {
      skip = index == 0;  // no address: the line is no entry
    } else if (len > 0) {
      field[len] = '\0';
      Next next = on_field(static_cast<const char *>(field), index++);
      skip = next == Next::kSkipLine;
      stop = next == Next::kStop;
    }
    len = 0;
    unusable = false;
  };
  ssize_t n;
  while (!stop && (n = ::read(fd, buf, sizeof buf)) > 0) {
    for (ssize_t i = 0; i < n && !stop; ++i) {
      char c = buf[i];
      if (c == '\n') {
        end_field();
        index = 0;
        skip = false;
      } else if (skip) {
        continue;
      } else if (c == '#') {
        end_field();
        skip = true;
      } else if (c == ' ' || c == '\t' || c == '\r') {
        end_field();
      } else if (c != '\0' && len + 1 < kFieldMax) {
        field[len++] = c;
      } else {
        unusable = true;
      }
    }
  }
  if (!stop) end_field();  // a last line without a newline
  ::close(fd);
  return stop;
}

// Parses a hosts-file address into out (a sockaddr_in, or a sockaddr_in6
// with the scope id of "fe80::1%eth0" or "fe80::1%2"); false if it is not one.
bool parse(const char *text, sockaddr_in6 &out) noexcept {
  sockaddr_storage addr;
  socklen_t len = 0;
  if (util::parse_numeric_host_checked(text, AF_UNSPEC, &addr, &len) != 1) return false;
  std::memset(&out, 0, sizeof out);
  std::memcpy(&out, &addr, len);
  return true;
}

bool same_address(const sockaddr_in6 &entry, const sockaddr *addr) noexcept {
  if (entry.sin6_family != addr->sa_family) return false;
  if (addr->sa_family == AF_INET)
    return reinterpret_cast<const sockaddr_in &>(entry).sin_addr.s_addr ==
           reinterpret_cast<const sockaddr_in *>(addr)->sin_addr.s_addr;
  return std::memcmp(&entry.sin6_addr, &reinterpret_cast<const sockaddr_in6 *>(addr)->sin6_addr,
                     sizeof entry.sin6_addr) == 0;
}

void copy_name(char *dst, std::size_t size, const char *src) noexcept {
  std::size_t n = std::strlen(src);
  if (n >= size) n = size - 1;
  std::memcpy(dst, src, n);
  dst[n] = '\0';
}

}  // namespace

bool HostsFile::lookup(const char *path, const char *name, int family, HostsMatch &out) noexcept {
  out.count = 0;
  sockaddr_in6 addr;
  char first[kFieldMax];  // the line's first name: the canonical one if it matches
  for_each_field(path, [&](const char *field, std::size_t index) {
    if (index == 0) {
      bool usable = parse(field, addr) && (family == AF_UNSPEC || addr.sin6_family == family);
      return usable ? Next::kField : Next::kSkipLine;
    }
    if (index == 1) copy_name(first, sizeof first, field);
    if (strcasecmp(field, name) != 0) return Next::kField;
    if (out.count == 0) copy_name(out.canon, sizeof out.canon, first);
    out.addrs[out.count++] = addr;
    return out.count == HostsMatch::kMaxAddrs ? Next::kStop : Next::kSkipLine;
  });
  return out.count > 0;
}

bool HostsFile::reverse(const char *path, const sockaddr *addr, char *name, std::size_t size) noexcept {
  return for_each_field(path, [&](const char *field, std::size_t index) {
    if (index == 0) {
      sockaddr_in6 entry;
      return parse(field, entry) && same_address(entry, addr) ? Next::kField : Next::kSkipLine;
    }
    copy_name(name, size, field);
    return Next::kStop;
  });
}

}  // namespace async::dns
