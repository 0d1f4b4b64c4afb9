// Timers on the loop's heap (DESIGN §4): never early, start order for
// equal deadlines, one expiry per iteration for overdue repeating timers.
#pragma once

#include <async/timer.h>

#include <cstddef>
#include <cstdint>

#include "core/handle.hpp"
#include "core/timer_heap.hpp"

namespace async::core {

class Timer : public Handle {
 public:
  static constexpr std::uint32_t kTag = 0x54494d52;  // "TIMR"
  static constexpr int kObjectKind = ASYNC_OBJECT_TIMER;

  Timer(Loop &loop, void *userdata) noexcept : Handle(handle_kind<Timer>, loop, userdata) {}

  static Timer *from(async_timer *t) noexcept { return reinterpret_cast<Timer *>(t); }
  async_timer *c_timer() noexcept { return reinterpret_cast<async_timer *>(this); }

  int start(std::uint64_t timeout_ms, std::uint64_t repeat_ms, async_timer_fn cb) noexcept;
  void stop() noexcept;
  int again() noexcept;
  void set_repeat(std::uint64_t repeat_ms) noexcept { repeat_ms_ = repeat_ms; }
  std::uint64_t repeat() const noexcept { return repeat_ms_; }
  std::uint64_t due_in_ms() const noexcept;

  // Called by the loop when the deadline has passed.
  void expire() noexcept;

  // The flags first, where they fit in Handle's tail padding: with the
  // index and the run's back link sharing a word, a timer takes 112 bytes,
  // not 144 (a million timers: 32 MB).
  bool in_run_ = false;  // in TimerHeap's sorted run, else in its heap

 private:
  bool firing_ = false;  // a repeating timer's callback is running

 public:
  // The key while active: the deadline, then the start order.
  std::uint64_t deadline_ = 0;
  std::uint64_t seq_ = 0;
  // TimerHeap's bookkeeping: the index in its heap, or the links in its
  // sorted run.
  union {
    std::size_t heap_index_ = 0;
    Timer *run_prev_;
  };
  Timer *run_next_ = nullptr;

 private:
  int arm(std::uint64_t deadline_ns) noexcept;

  async_timer_fn cb_ = nullptr;
  std::uint64_t repeat_ms_ = 0;
};

}  // namespace async::core
