// Growable FIFO ring of trivially copyable items. Storage comes from the
// library allocator and is reused, so steady-state push/pop never allocates.
#pragma once

#include "util/alloc.hpp"
#include "util/check.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace async::util {

template <class T>
class Ring {
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  Ring() = default;
  Ring(const Ring &) = delete;
  Ring &operator=(const Ring &) = delete;
  ~Ring() { mem_free(items_); }

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }

  // false when growing the storage failed (the ring is unchanged).
  bool push(const T &item) noexcept {
    if (size_ == capacity_ && !grow_to(size_ + 1)) return false;
    push_into_room(item);
    return true;
  }

  T pop() noexcept {
    check(size_ > 0);  // else it would hand out a stale item and wrap size_
    T item = items_[head_];
    head_ = (head_ + 1) & (capacity_ - 1);
    --size_;
    return item;
  }

  // Makes room for n more items beyond the current size.
  bool reserve(std::size_t n) noexcept { return has_room(n) || grow_to(size_ + n); }
  bool has_room(std::size_t n) const noexcept { return capacity_ - size_ >= n; }
  // push() into room that has_room() or reserve() found: cannot fail.
  void push_into_room(const T &item) noexcept {
    items_[(head_ + size_) & (capacity_ - 1)] = item;
    ++size_;
  }

 private:
  // Out of line and cold so push/reserve stay a few instructions on the
  // hot path (call_soon, the ready queue).
  [[gnu::noinline, gnu::cold]] bool grow_to(std::size_t needed) noexcept {
    std::size_t capacity = capacity_ ? capacity_ : 4;
    while (capacity < needed) {
      if (capacity > SIZE_MAX / 2 / sizeof(T)) return false;
      capacity *= 2;
    }
    T *items = static_cast<T *>(mem_alloc(capacity * sizeof(T)));
    if (!items) return false;
    for (std::size_t i = 0; i < size_; ++i) items[i] = items_[(head_ + i) & (capacity_ - 1)];
    mem_free(items_);
    items_ = items;
    capacity_ = capacity;
    head_ = 0;
    return true;
  }

  T *items_ = nullptr;
  std::size_t capacity_ = 0;  // a power of two
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

}  // namespace async::util
