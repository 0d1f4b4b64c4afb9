// Growing a malloc-style byte buffer (the library allocator) by doubling.
#pragma once

#include <cstddef>
#include <cstdint>

#include "util/alloc.hpp"

namespace async::util {

// Makes *buf (capacity *cap) hold at least needed bytes, keeping its
// contents; false when out of memory (the buffer is unchanged).
inline bool grow_bytes(std::uint8_t **buf, std::size_t *cap, std::size_t needed) noexcept {
  if (needed <= *cap) return true;
  std::size_t grown_cap = *cap ? *cap : 256;
  while (grown_cap < needed) {
    if (grown_cap > SIZE_MAX / 2) return false;
    grown_cap *= 2;
  }
  auto *grown = static_cast<std::uint8_t *>(mem_realloc(*buf, grown_cap));
  if (!grown) return false;
  *buf = grown;
  *cap = grown_cap;
  return true;
}

}  // namespace async::util
