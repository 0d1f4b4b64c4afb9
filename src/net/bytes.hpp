// A read's result (async_bytes): a size and the bytes, one allocation.
#pragma once

#include <cstddef>
#include <cstdint>

#include "util/tagged.hpp"

namespace async::net {

class Bytes : public util::Tagged<0x42595445> {  // "BYTE"
 public:
  // A copy of data (len may be 0); nullptr when out of memory.
  static Bytes *create(const std::uint8_t *data, std::size_t len) noexcept;
  // Matches async_destroy_fn (context unused).
  static void destroy(void *bytes, void *context = nullptr) noexcept;

  const std::uint8_t *data() const noexcept { return reinterpret_cast<const std::uint8_t *>(this + 1); }
  std::size_t size() const noexcept { return size_; }

 private:
  explicit Bytes(std::size_t size) noexcept : size_(size) {}
  std::size_t size_;
};

}  // namespace async::net
