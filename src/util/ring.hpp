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

  // head_ and tail_ run freely (wrapping is harmless: the difference
  // stays right) and are masked on use, so a push or pop updates one index.
  std::size_t size() const noexcept { return tail_ - head_; }
  bool empty() const noexcept { return tail_ == head_; }

  // false when growing the storage failed (the ring is unchanged).
  bool push(const T &item) noexcept {
    if (size() == capacity_ && !grow_to(size() + 1)) return false;
    push_into_room(item);
    return true;
  }

  T pop() noexcept {
    check(!empty());  // else it would hand out a stale item
    return pop_known();
  }
  // pop() where the caller knows the ring is not empty.
  T pop_known() noexcept { return items_[head_++ & (capacity_ - 1)]; }

  // Makes room for n more items beyond the current size.
  bool reserve(std::size_t n) noexcept { return has_room(n) || grow_to(size() + n); }
  bool has_room(std::size_t n) const noexcept { return capacity_ - size() >= n; }
  // push() into room that has_room() or reserve() found: cannot fail.
  void push_into_room(const T &item) noexcept { items_[tail_++ & (capacity_ - 1)] = item; }

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
    std::size_t count = size();
    for (std::size_t i = 0; i < count; ++i) items[i] = items_[(head_ + i) & (capacity_ - 1)];
    mem_free(items_);
    items_ = items;
    capacity_ = capacity;
    head_ = 0;
    tail_ = count;
    return true;
  }

  T *items_ = nullptr;
  std::size_t capacity_ = 0;  // a power of two
  std::size_t head_ = 0;
  std::size_t tail_ = 0;
};

}  // namespace async::util
