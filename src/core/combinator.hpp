// Futures built from other futures: all / any (asyncio.gather and
// wait(FIRST_COMPLETED)) and timeout (asyncio.wait_for).
#pragma once

#include <async/future.h>

#include <cstddef>
#include <cstdint>

namespace async::core {

class Future;
class Loop;
class Timer;

class Gather {
 public:
  enum class Mode { kAll, kAny };

  // Creates the combined future in *out: 0, ASYNC_EINVAL or ASYNC_ENOMEM.
  static int create(Future **out, Loop &loop, async_future *const *inputs, std::size_t count, Mode mode) noexcept;

  // Public only for util::make/destroy.
  Gather(Future &result, Mode mode, std::size_t count) noexcept;
  ~Gather();

 private:
  static void on_input(async_future *input, int status, void *self) noexcept;
  static void on_result_cancel(async_future *result, int cancelled, void *self) noexcept;

  Future &result_;
  Mode mode_;
  std::size_t count_;
  std::size_t finished_ = 0;
  Future **inputs_ = nullptr;
};

class TimeoutWait {
 public:
  static int create(Future **out, Future &input, std::uint64_t timeout_ms) noexcept;

  TimeoutWait(Future &result, Future &input, Timer &timer) noexcept;
  ~TimeoutWait();

 private:
  static void on_input(async_future *input, int status, void *self) noexcept;
  static void on_timer(async_timer *timer, void *self) noexcept;
  static void on_result_cancel(async_future *result, int cancelled, void *self) noexcept;

  Future &result_;
  Future &input_;
  Timer &timer_;
};

}  // namespace async::core
