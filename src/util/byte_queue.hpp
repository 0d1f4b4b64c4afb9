// Bytes kept in arrival order and consumed from the front, contiguous so
// they can be presented (or searched) as one buffer: a stream's unconsumed
// tail, a reader's buffer. Storage comes from the library allocator and
// grows by doubling; clear() keeps it for reuse, release() frees it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace async::util {

class ByteQueue {
 public:
  ByteQueue() = default;
  ByteQueue(const ByteQueue &) = delete;
  ByteQueue &operator=(const ByteQueue &) = delete;
  ~ByteQueue() { release(); }

  const std::uint8_t *data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }

  // false when out of memory (the queue is unchanged).
  bool append(const std::uint8_t *bytes, std::size_t len) noexcept;
  // Drops the first n bytes (n <= size()).
  void consume(std::size_t n) noexcept;
  void clear() noexcept { size_ = 0; }
  void release() noexcept;

 private:
  [[gnu::cold]] bool grow(std::size_t needed) noexcept;

  std::uint8_t *data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
};

}  // namespace async::util
