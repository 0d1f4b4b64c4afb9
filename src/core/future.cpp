#include "core/future.hpp"

#include <async/error.h>

#include "core/loop.hpp"
#include "util/alloc.hpp"
#include "util/container_of.hpp"

namespace async::core {

Future *Future::create(Loop &loop) noexcept {
  Future *future = loop.pool().make<Future>(loop);
  if (!future) return nullptr;
  loop.object_added();
  loop.registry(ASYNC_OBJECT_FUTURE).push_back(future->registry_node_);
  return future;
}

Future *Future::from_registry_node(util::ListNode *node) noexcept {
  return util::container_of(node, &Future::registry_node_);
}

Future::~Future() {
  mark_dead();
  registry_node_.unlink();
  if (destroy_deferred_) {
    if (destroy_)
      loop_->push_call(core::DeferredCall{nullptr, destroy_, value_, destroy_context_});
    else
      loop_->unreserve_call();
  } else if (destroy_) {
    destroy_(value_, destroy_context_);
  }
  // Callbacks never scheduled (only if the future never completed).
  for (std::size_t n = callbacks_.size() - scheduled_; n > 0; --n) loop_->unreserve_task();
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
  // Each callback reserves its ready-queue slot now, so scheduling it on
  // completion cannot fail.
  if (!loop_->reserve_task()) return ASYNC_ENOMEM;
  if (!callbacks_.push(Callback{fn, userdata})) {
    loop_->unreserve_task();
    return ASYNC_ENOMEM;
  }
  if (!pending()) schedule_callbacks();
  return 0;
}

int Future::set_cancel(async_cancel_fn fn, void *userdata) noexcept {
  if (cancel_fn_ || !pending()) return ASYNC_ESTATE;
  cancel_fn_ = fn;
  cancel_userdata_ = userdata;
  return 0;
}

int Future::resolve(void *value, async_destroy_fn destroy, void *context) noexcept {
  if (!pending()) return ASYNC_ESTATE;
  value_ = value;
  destroy_ = destroy;
  destroy_context_ = context;
  complete(ASYNC_FUTURE_DONE, 0);
  return 0;
}

int Future::resolve_user(void *value, async_destroy_fn destroy, void *context) noexcept {
  if (!pending()) return ASYNC_ESTATE;
  if (destroy) {
    if (!loop_->reserve_call()) return ASYNC_ENOMEM;
    destroy_deferred_ = true;
  }
  return resolve(value, destroy, context);
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
  schedule_callbacks();
  release();
}

void Future::schedule_callbacks() noexcept {
  // One ready-queue task per callback, as asyncio's call_soon per
  // callback: a callback added later queues behind work queued meanwhile.
  for (; scheduled_ < callbacks_.size(); ++scheduled_) {
    retain();
    loop_->push_reserved(Task{run_callback, this});
  }
}

void Future::run_callback(async_loop *, void *self) noexcept {
  auto *f = static_cast<Future *>(self);
  // Tasks run in queue order, so this task's callback is the oldest one.
  Callback cb = f->callbacks_.pop();
  --f->scheduled_;
  f->loop_->invoke([&] { cb.fn(f->c_future(), f->status(), cb.userdata); });
  f->release();
}

int Future::retain_reference() noexcept {
  if (user_refs_ == UINT32_MAX) return ASYNC_ERANGE;
  ++user_refs_;
  retain();
  return 0;
}

void Future::drop_reference(bool cancel_pending) noexcept {
  // The reference stays in refs_ until the end: the cancel hook and
  // whatever it calls cannot free the future under us.
  --user_refs_;
  if (user_refs_ == 0) registry_node_.unlink();  // no caller can reach it: walk skips it
  if (cancel_pending || user_refs_ == 0) cancel();
  release();
}

void Future::release() noexcept {
  if (--refs_ == 0) loop_->pool().destroy(this);
}

}  // namespace async::core
