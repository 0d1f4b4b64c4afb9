#include "net/bytes.hpp"

#include <cstring>
#include <new>

#include "util/alloc.hpp"

namespace async::net {

Bytes *Bytes::create(const std::uint8_t *data, std::size_t len) noexcept {
  void *p = util::mem_alloc(sizeof(Bytes) + len);
  if (!p) return nullptr;
  auto *b = new (p) Bytes(len);
  if (len) std::memcpy(b + 1, data, len);
  return b;
}

void Bytes::destroy(void *bytes, void *) noexcept {
  if (!bytes) return;
  static_cast<Bytes *>(bytes)->mark_dead();
  util::mem_free(bytes);
}

}  // namespace async::net
