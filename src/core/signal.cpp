#include "core/signal.hpp"

#include <async/error.h>
#include <signal.h>

#include "core/loop.hpp"
#include "core/signal_registry.hpp"

namespace async::core {

Signal::~Signal() {
  if (has_slot_) loop().unreserve_task();
}

bool Signal::valid_signum(int signum) noexcept {
  return signum > 0 && signum < NSIG && signum != SIGKILL && signum != SIGSTOP;
}

int Signal::start(int signum, async_signal_fn cb) noexcept {
  if (active() && signum == signum_) {
    cb_ = cb;
    return 0;
  }
  int err = signal_registry::acquire(signum, &loop());
  if (err) return err;
  stop();
  signum_ = signum;
  cb_ = cb;
  ev::Backend::signal_init(slot_, signum, raised, this);
  loop().backend().signal_start(slot_);
  set_active(true);
  return 0;
}

void Signal::stop() noexcept {
  if (!active()) return;
  loop().backend().signal_stop(slot_);
  signal_registry::release(signum_);
  delivery_wanted_ = false;  // a queued delivery is dropped
  set_active(false);
}

void Signal::raised(void *self, std::uint32_t) noexcept {
  auto *s = static_cast<Signal *>(self);
  s->delivery_wanted_ = true;
  if (s->delivery_queued_) return;  // coalesced into the queued delivery
  s->delivery_queued_ = true;
  s->has_slot_ = false;
  s->loop().push_reserved(Task{deliver, s});
}

void Signal::deliver(async_loop *, void *self) noexcept {
  auto *s = static_cast<Signal *>(self);
  // Popping our task freed a slot, so taking it back cannot fail.
  s->has_slot_ = s->loop().reserve_task();
  s->delivery_queued_ = false;
  if (!s->delivery_wanted_) return;
  s->delivery_wanted_ = false;
  s->loop().invoke([&] { s->cb_(s->c_signal(), s->signum_, s->userdata()); });
}

}  // namespace async::core
