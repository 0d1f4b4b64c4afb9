#include "core/future.hpp"

#include <async/error.h>

#include "core/loop.hpp"
#include "util/alloc.hpp"

namespace async::core {

Future *Future::create(Loop &loop) noexcept {
  // The slot guarantees the completion can always be scheduled.
  if (!loop.reserve_task()) return nullptr;
  Future *future = util::make<Future>(loop);
  if (!future) {
    loop.unreserve_task();
    return nullptr;
  }
  loop.object_added();
  return future;
}

Future::~Future() {
  tag_ = 0xdeadbeef;
  if (destroy_) destroy_(value_);
  if (has_slot_) loop_->unreserve_task();
  loop_->object_removed();
}

int Future::status() const noexcept {
  switch (state_) {
    case ASYNC_FUTURE_DONE: return 0;
    case ASYNC_FUTURE_FAILED: return error_;
    case ASYNC_FUTURE_CANCELLED: return ASYNC_ECANCELED;
    default: return ASYNC_ESTATE;
  }
}

int Future::add_callback(async_future_fn fn, void *userdata) noexcept {
  if (!callbacks_.push(Callback{fn, userdata})) return ASYNC_ENOMEM;
  if (!pending()) schedule_dispatch();
  return 0;
}

int Future::set_cancel(async_cancel_fn fn, void *userdata) noexcept {
  if (cancel_fn_ || !pending()) return ASYNC_ESTATE;
  cancel_fn_ = fn;
  cancel_userdata_ = userdata;
  return 0;
}

int Future::resolve(void *value, async_destroy_fn destroy) noexcept {
  if (!pending()) return ASYNC_ESTATE;
  value_ = value;
  destroy_ = destroy;
  complete(ASYNC_FUTURE_DONE, 0);
  return 0;
}

int Future::reject(int error) noexcept {
  if (!pending()) return ASYNC_ESTATE;
  complete(ASYNC_FUTURE_FAILED, error);
  return 0;
}

int Future::cancel() noexcept {
  if (!pending()) return 0;
  complete(ASYNC_FUTURE_CANCELLED, ASYNC_ECANCELED);
  return 1;
}

void Future::complete(int state, int error) noexcept {
  state_ = state;
  error_ = error;
  retain();  // the producer hook may free us
  if (async_cancel_fn hook = cancel_fn_) {
    cancel_fn_ = nullptr;
    hook(c_future(), state == ASYNC_FUTURE_CANCELLED, cancel_userdata_);
  }
  if (!callbacks_.empty()) schedule_dispatch();
  release();
}

void Future::schedule_dispatch() noexcept {
  if (dispatch_queued_) return;
  dispatch_queued_ = true;
  has_slot_ = false;
  retain();
  loop_->push_reserved(Task{dispatch, this});
}

void Future::dispatch(async_loop *, void *self) noexcept {
  auto *f = static_cast<Future *>(self);
  // Popping our task freed a slot, so taking it back cannot fail.
  f->has_slot_ = f->loop_->reserve_task();
  f->dispatch_queued_ = false;
  // Callbacks added while these run are scheduled anew (never run inside
  // the call that added them).
  std::size_t n = f->callbacks_.size();
  for (; n > 0; --n) {
    Callback cb = f->callbacks_.pop();
    f->loop_->invoke([&] { cb.fn(f->c_future(), f->status(), cb.userdata); });
  }
  if (!f->callbacks_.empty()) f->schedule_dispatch();
  f->release();
}

void Future::release_owner() noexcept {
  owner_released_ = true;
  retain();
  cancel();
  --refs_;  // the owner's reference
  release();
}

void Future::release() noexcept {
  if (--refs_ == 0) util::destroy(this);
}

}  // namespace async::core
