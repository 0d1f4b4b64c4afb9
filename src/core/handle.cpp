#include "core/handle.hpp"

#include "core/loop.hpp"
#include "util/container_of.hpp"

namespace async::core {

Handle::Handle(const HandleKind &kind, Loop &loop, void *userdata) noexcept
    : TagWord(kind.tag), kind_(&kind), loop_(&loop), userdata_(userdata) {}

Handle::~Handle() {
  mark_dead();
  registry_node_.unlink();
}

Handle *Handle::from_registry_node(util::ListNode *node) noexcept {
  return util::container_of(node, &Handle::registry_node_);
}

void Handle::sync_keepalive() noexcept {
  bool keep = active_ && referenced_;
  if (keep == counted_) return;
  counted_ = keep;
  if (keep)
    loop_->backend().ref();
  else
    loop_->backend().unref();
}

void Handle::set_active(bool active) noexcept {
  active_ = active;
  sync_keepalive();
}

void Handle::ref() noexcept {
  referenced_ = true;
  sync_keepalive();
}

void Handle::unref() noexcept {
  referenced_ = false;
  sync_keepalive();
}

int Handle::close(async_close_fn close_cb) noexcept {
  kind_->stop(*this);
  closing_ = true;
  close_cb_ = close_cb;
  // Queued behind every completion the stop above may have queued, so
  // those run first; the slot was reserved at creation.
  loop_->push_reserved(Task{finish_close, this});
  return 0;
}

void Handle::finish_close(async_loop *, void *self) noexcept {
  auto *handle = static_cast<Handle *>(self);
  Loop &loop = *handle->loop_;
  if (handle->close_cb_) {
    loop.invoke([&] { handle->close_cb_(handle->c_handle(), handle->userdata_); });
  }
  handle->kind_->destroy(*handle);
  loop.object_removed();
}

}  // namespace async::core
