// Signal watchers (DESIGN §5), delivered through the loop's ready queue.
#pragma once

#include <async/signal.h>

#include <cstdint>

#include "core/handle.hpp"
#include "ev/ev_backend.hpp"

namespace async::core {

class Signal : public Handle {
 public:
  static constexpr std::uint32_t kTag = 0x5349474e;  // "SIGN"
  static constexpr int kObjectKind = ASYNC_OBJECT_SIGNAL;
  // The close's slot plus one for deliveries.
  static constexpr int kReservedTasks = 2;

  Signal(Loop &loop, void *userdata) noexcept : Handle(handle_kind<Signal>, loop, userdata) {}
  ~Signal();

  static Signal *from(async_signal *s) noexcept { return reinterpret_cast<Signal *>(s); }
  async_signal *c_signal() noexcept { return reinterpret_cast<async_signal *>(this); }
  static bool valid_signum(int signum) noexcept;

  int start(int signum, async_signal_fn cb) noexcept;
  void stop() noexcept;
  int signum() const noexcept { return active() ? signum_ : 0; }

 private:
  static void raised(void *self, std::uint32_t) noexcept;
  static void deliver(async_loop *loop, void *self) noexcept;

  ev::SignalSlot slot_;
  async_signal_fn cb_ = nullptr;
  int signum_ = 0;
  bool has_slot_ = true;  // owns the delivery's ready-queue reservation
  bool delivery_queued_ = false;
  bool delivery_wanted_ = false;
};

}  // namespace async::core
