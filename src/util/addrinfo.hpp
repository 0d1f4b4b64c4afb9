// The result list of async_getaddrinfo(): one allocation holding the
// entries and the canonical name, released with destroy() (the future's
// value destructor) or async_addrinfo_free().
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>

#include "util/tagged.hpp"

namespace async::util {

class AddrInfo : public util::Tagged<0x41444452> {  // "ADDR"
 public:
  struct Entry {
    union {
      sockaddr sa;
      sockaddr_in v4;
      sockaddr_in6 v6;
    } addr;
    socklen_t len;
    int socktype;
    int protocol;
  };

  // Room for count entries, and a copy of canon (nullptr: no canonical
  // name; "" is one, the root's); nullptr when out of memory.
  static AddrInfo *create(std::size_t count, const char *canon) noexcept;
  // Matches async_destroy_fn (context unused).
  static void destroy(void *list, void *context = nullptr) noexcept;

  std::size_t count() const noexcept { return count_; }
  const Entry &entry(std::size_t i) const noexcept { return entries()[i]; }
  // Copies addr (AF_INET/AF_INET6) into entry i with port and socktype,
  // deriving the protocol from the socktype.
  void set(std::size_t i, const sockaddr *addr, std::uint16_t port, int socktype) noexcept;
  const char *canonname() const noexcept { return canon_size_ ? canon() : nullptr; }
  // Moves the IPv6 entries in front of the IPv4 ones, keeping each family's order.
  void ipv6_first() noexcept;

 private:
  AddrInfo(std::size_t count, std::size_t canon_size) noexcept : count_(count), canon_size_(canon_size) {}
  Entry *entries() const noexcept { return reinterpret_cast<Entry *>(const_cast<AddrInfo *>(this) + 1); }
  char *canon() const noexcept { return reinterpret_cast<char *>(entries() + count_); }

  std::size_t count_;
  std::size_t canon_size_;  // with its terminating NUL; 0 for none
};

}  // namespace async::util
