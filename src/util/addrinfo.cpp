#include "util/addrinfo.hpp"

#include <cstring>
#include <new>

#include "util/alloc.hpp"

namespace async::util {

// Entries start right after the header.
static_assert(sizeof(AddrInfo) % alignof(AddrInfo::Entry) == 0);

AddrInfo *AddrInfo::create(std::size_t count, const char *canon) noexcept {
  std::size_t canon_size = canon ? std::strlen(canon) + 1 : 0;
  void *p = util::mem_alloc(sizeof(AddrInfo) + count * sizeof(Entry) + canon_size);
  if (!p) return nullptr;
  auto *list = new (p) AddrInfo(count, canon_size);
  std::memset(list->entries(), 0, count * sizeof(Entry));
  if (canon) std::memcpy(list->canon(), canon, canon_size);
  return list;
}

void AddrInfo::destroy(void *list, void *) noexcept {
  if (!list) return;
  static_cast<AddrInfo *>(list)->mark_dead();
  util::mem_free(list);
}

void AddrInfo::set(std::size_t i, const sockaddr *addr, std::uint16_t port, int socktype) noexcept {
  Entry &e = entries()[i];
  if (addr->sa_family == AF_INET6) {
    std::memcpy(&e.addr.v6, addr, sizeof e.addr.v6);
    e.addr.v6.sin6_port = htons(port);
    e.len = sizeof e.addr.v6;
  } else {
    std::memcpy(&e.addr.v4, addr, sizeof e.addr.v4);
    e.addr.v4.sin_port = htons(port);
    e.len = sizeof e.addr.v4;
  }
  e.socktype = socktype;
  e.protocol = socktype == SOCK_STREAM ? IPPROTO_TCP : socktype == SOCK_DGRAM ? IPPROTO_UDP : 0;
}

void AddrInfo::ipv6_first() noexcept {
  // Stable partition by insertion: lists are short (tens of entries).
  Entry *e = entries();
  std::size_t placed = 0;
  for (std::size_t i = 0; i < count_; ++i) {
    if (e[i].addr.sa.sa_family != AF_INET6) continue;
    Entry v6 = e[i];
    std::memmove(&e[placed + 1], &e[placed], (i - placed) * sizeof(Entry));
    e[placed++] = v6;
  }
}

}  // namespace async::util
