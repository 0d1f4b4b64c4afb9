#include "core/timer.hpp"

#include <async/error.h>

#include "core/loop.hpp"
#include "util/clock.hpp"

namespace async::core {

// The pool's 112-byte class: a million timers take 32 MB less than at 144
// (docs/design.md, Timers).
static_assert(sizeof(Timer) == 112);

int Timer::arm(std::uint64_t deadline_ns) noexcept {
  Loop &l = loop();
  deadline_ = deadline_ns;
  seq_ = l.next_timer_seq();
  if (!l.timers().push(*this)) return ASYNC_ENOMEM;
  set_active(true);
  return 0;
}

int Timer::start(std::uint64_t timeout_ms, std::uint64_t repeat_ms, async_timer_fn cb) noexcept {
  stop();
  // A fresh clock, not the iteration's cached time, so the timer is never
  // early relative to this call.
  std::uint64_t deadline = util::saturating_add(util::monotonic_ns(), util::ms_to_ns(timeout_ms));
  int err = arm(deadline);
  if (err) return err;
  cb_ = cb;
  repeat_ms_ = repeat_ms;
  return 0;
}

void Timer::stop() noexcept {
  if (!active()) return;
  if (firing_) {
    firing_ = false;  // out of the heap while its callback runs
    loop().timers().unhold();
  } else {
    loop().timers().remove(*this);
  }
  set_active(false);
}

int Timer::again() noexcept {
  if (!cb_) return ASYNC_ESTATE;
  stop();
  if (repeat_ms_ == 0) return 0;
  return arm(util::saturating_add(util::monotonic_ns(), util::ms_to_ns(repeat_ms_)));
}

std::uint64_t Timer::due_in_ms() const noexcept {
  if (!active()) return 0;
  std::uint64_t now = util::monotonic_ns();
  return deadline_ > now ? util::ns_to_ms_ceil(deadline_ - now) : 0;
}

void Timer::expire() noexcept {
  Loop &l = loop();
  l.timers().remove(*this);
  if (repeat_ms_ == 0) {
    set_active(false);
    l.invoke([&] { cb_(c_timer(), userdata()); });
    return;
  }
  // A repeating timer stays active during its callback and is re-armed
  // after it, with the repeat value the callback may have changed, unless
  // the callback stopped, restarted or closed it.
  firing_ = true;
  l.timers().hold();  // the re-arm below must not need memory
  l.invoke([&] { cb_(c_timer(), userdata()); });
  if (!firing_) return;  // stopped, restarted or closed: stop() unheld
  firing_ = false;
  l.timers().unhold();
  if (repeat_ms_ == 0) {
    set_active(false);
    return;
  }
  std::uint64_t repeat_ns = util::ms_to_ns(repeat_ms_);
  std::uint64_t next = util::saturating_add(deadline_, repeat_ns);
  // Overdue: re-arm from now, never a catch-up burst.
  std::uint64_t now = util::monotonic_ns();
  if (next <= now) next = util::saturating_add(now, repeat_ns);
  // Cannot fail: the slot was held through the callback.
  arm(next);
}

}  // namespace async::core
