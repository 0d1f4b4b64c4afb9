#include "util/byte_queue.hpp"

#include <cstring>

#include "util/alloc.hpp"
#include "util/check.hpp"

namespace async::util {

bool ByteQueue::append(const std::uint8_t *bytes, std::size_t len) noexcept {
  if (len > SIZE_MAX - size_) return false;
  if (size_ + len > capacity_ && !grow(size_ + len)) return false;
  if (len) std::memcpy(data_ + size_, bytes, len);
  size_ += len;
  return true;
}

void ByteQueue::consume(std::size_t n) noexcept {
  check(n <= size_);  // else the move below would read past the bytes
  size_ -= n;
  if (n && size_) std::memmove(data_, data_ + n, size_);
}

void ByteQueue::release() noexcept {
  mem_free(data_);
  data_ = nullptr;
  size_ = capacity_ = 0;
}

bool ByteQueue::grow(std::size_t needed) noexcept {
  std::size_t capacity = capacity_ ? capacity_ : 256;
  while (capacity < needed) {
    if (capacity > SIZE_MAX / 2) return false;
    capacity *= 2;
  }
  auto *grown = static_cast<std::uint8_t *>(mem_realloc(data_, capacity));
  if (!grown) return false;
  data_ = grown;
  capacity_ = capacity;
  return true;
}

}  // namespace async::util
