// 4-ary min-heap of timers keyed by (deadline, start sequence), so equal
// deadlines fire in start order. Keys live in the array for cache-friendly
// comparisons (siblings share cache lines, and the shallower tree touches
// fewer timers); each timer knows its index for O(log n) removal.
#pragma once

#include <cstddef>
#include <cstdint>

namespace async::core {

class Timer;

class TimerHeap {
 public:
  struct Entry {
    std::uint64_t deadline;
    std::uint64_t seq;
    Timer *timer;
  };

  TimerHeap() = default;
  TimerHeap(const TimerHeap &) = delete;
  TimerHeap &operator=(const TimerHeap &) = delete;
  ~TimerHeap();

  bool empty() const noexcept { return size_ == 0; }
  const Entry &top() const noexcept { return entries_[0]; }

  // false when growing failed; never for a holder re-pushing right after
  // unhold() (see hold()).
  bool push(const Entry &entry) noexcept;
  void remove(std::size_t index) noexcept;

  // A firing repeating timer holds the slot its entry left, so its re-arm
  // after the callback cannot run out of memory even if the callback
  // started other timers: pushes grow the array before taking held slots.
  void hold() noexcept { ++held_; }
  void unhold() noexcept { --held_; }

 private:
  static constexpr std::size_t kArity = 4;

  static bool less(const Entry &a, const Entry &b) noexcept {
    return a.deadline < b.deadline || (a.deadline == b.deadline && a.seq < b.seq);
  }
  void place(std::size_t index, const Entry &entry) noexcept;
  void sift_up(std::size_t index, Entry entry) noexcept;
  // Moves the hole at index down to a leaf along the smaller children;
  // returns the leaf's index.
  std::size_t hole_to_leaf(std::size_t index) noexcept;

  Entry *entries_ = nullptr;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
  std::size_t held_ = 0;  // slots kept free for firing repeating timers
};

}  // namespace async::core
