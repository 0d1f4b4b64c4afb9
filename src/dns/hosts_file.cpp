#include "dns/hosts_file.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <strings.h>
#include <unistd.h>

#include <cstring>

namespace async::dns {
namespace {

constexpr std::size_t kLineMax = 1024;

// Calls on_line(fields, count) for every line with an address and at least
// one name; stops early when it returns true. Fixed buffers, no allocation.
template <class F>
bool for_each_line(const char *path, F &&on_line) noexcept {
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[4096];
  char line[kLineMax];
  std::size_t len = 0;
  bool overlong = false, found = false;
  auto finish_line = [&]() {
    if (!overlong) {
      line[len] = '\0';
      if (char *hash = std::strchr(line, '#')) *hash = '\0';
      char *fields[34];
      int count = 0;
      char *save = nullptr;
      for (char *tok = strtok_r(line, " \t\r", &save); tok && count < 34; tok = strtok_r(nullptr, " \t\r", &save))
        fields[count++] = tok;
      if (count >= 2 && on_line(fields, count)) found = true;
    }
    len = 0;
    overlong = false;
  };
  ssize_t n;
  while (!found && (n = ::read(fd, buf, sizeof buf)) > 0) {
    for (ssize_t i = 0; i < n && !found; ++i) {
      if (buf[i] == '\n') {
        finish_line();
      } else if (len + 1 < kLineMax) {
        line[len++] = buf[i];
      } else {
        overlong = true;
      }
    }
  }
  if (!found && len > 0) finish_line();
  ::close(fd);
  return found;
}

// Parses a hosts-file address into out; false if it is not one.
bool parse(const char *text, sockaddr_in6 &out) noexcept {
  std::memset(&out, 0, sizeof out);
  auto *v4 = reinterpret_cast<sockaddr_in *>(&out);
  if (inet_pton(AF_INET, text, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    return true;
  }
  char copy[INET6_ADDRSTRLEN + 1];
  std::size_t n = std::strcspn(text, "%");  // a scope is ignored, as c-ares does
  if (n >= sizeof copy) return false;
  std::memcpy(copy, text, n);
  copy[n] = '\0';
  if (inet_pton(AF_INET6, copy, &out.sin6_addr) != 1) return false;
  out.sin6_family = AF_INET6;
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
  for_each_line(path, [&](char **fields, int count) {
    sockaddr_in6 addr;
    if (!parse(fields[0], addr)) return false;
    if (family != AF_UNSPEC && addr.sin6_family != family) return false;
    for (int i = 1; i < count; ++i) {
      if (strcasecmp(fields[i], name) != 0) continue;
      if (out.count == 0) copy_name(out.canon, sizeof out.canon, fields[1]);
      out.addrs[out.count++] = addr;
      break;
    }
    return out.count == HostsMatch::kMaxAddrs;
  });
  return out.count > 0;
}

bool HostsFile::reverse(const char *path, const sockaddr *addr, char *name, std::size_t size) noexcept {
  return for_each_line(path, [&](char **fields, int) {
    sockaddr_in6 entry;
    if (!parse(fields[0], entry) || !same_address(entry, addr)) return false;
    copy_name(name, size, fields[1]);
    return true;
  });
}

}  // namespace async::dns
