// Timers keyed by (deadline, start sequence), so equal deadlines fire in
// start order: a sorted run for those started in deadline order (see
// run_head_) and a 4-ary min-heap for the rest. Heap keys live in the array
// for cache-friendly comparisons (siblings share cache lines, and the
// shallower tree touches fewer timers); each timer knows its index for
// O(log n) removal.
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

  bool empty() const noexcept { return size_ == 0 && !run_head_; }
  // The earliest entry: the heap's top or the sorted run's head.
  Entry top() const noexcept;

  // Adds timer with the key it holds (Timer::deadline_, Timer::seq_).
  // false when growing failed; never for a holder re-pushing right after
  // unhold() (see hold()).
  bool push(Timer &timer) noexcept;
  void remove(Timer &timer) noexcept;

  // A firing repeating timer holds the slot its entry left, so its re-arm
  // after the callback cannot run out of memory even if the callback
  // started other timers: pushes grow the array before taking held slots.
  void hold() noexcept { ++held_; }
  void unhold() noexcept { --held_; }

 private:
  static constexpr std::size_t kArity = 4;

  static Entry entry_of(Timer &timer) noexcept;
  static bool less(const Entry &a, const Entry &b) noexcept {
    return a.deadline < b.deadline || (a.deadline == b.deadline && a.seq < b.seq);
  }
  void place(std::size_t index, const Entry &entry) noexcept;
  void sift_up(std::size_t index, Entry entry) noexcept;
  // Moves the hole at index down to a leaf along the smaller children;
  // returns the leaf's index.
  std::size_t hole_to_leaf(std::size_t index) noexcept;

  void remove_at(std::size_t index) noexcept;

  // Timers mostly start in deadline order (one timeout used over and over,
  // a deadline from a later clock): an entry not earlier than the run's
  // tail is appended to this sorted list of timers instead of the heap,
  // O(1) in and out. The array's capacity still covers every timer in
  // either, so any push that fits in the run would fit in the heap too.
  Timer *run_head_ = nullptr;
  Timer *run_tail_ = nullptr;
  std::size_t run_size_ = 0;

  Entry *entries_ = nullptr;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
  std::size_t held_ = 0;  // slots kept free for firing repeating timers
};

}  // namespace async::core
