#include "core/handle.hpp"

#include "core/hook.hpp"
#include "core/loop.hpp"
#include "core/server.hpp"
#include "core/signal.hpp"
#include "core/timer.hpp"
#include "core/watcher.hpp"

namespace async::core {

Handle::Handle(std::uint32_t tag, Loop &loop, void *userdata) noexcept
    : TagWord(tag), loop_(&loop), userdata_(userdata) {}

Handle::~Handle() { mark_dead(); }

bool Handle::is_handle_tag(std::uint32_t tag) noexcept {
  return tag == Timer::kTag || tag == Watcher::kTag || tag == Hook::kTag || tag == Signal::kTag ||
         tag == Server::kTag;
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

void Handle::stop_by_kind() noexcept {
  switch (tag_) {
    case Timer::kTag: static_cast<Timer *>(this)->stop(); break;
    case Watcher::kTag: static_cast<Watcher *>(this)->stop(); break;
    case Hook::kTag: static_cast<Hook *>(this)->stop(); break;
    case Signal::kTag: static_cast<Signal *>(this)->stop(); break;
    case Server::kTag: static_cast<Server *>(this)->stop(); break;
  }
}

void Handle::destroy_by_kind() noexcept {
  switch (tag_) {
    case Timer::kTag: util::destroy(static_cast<Timer *>(this)); break;
    case Watcher::kTag: util::destroy(static_cast<Watcher *>(this)); break;
    case Hook::kTag: util::destroy(static_cast<Hook *>(this)); break;
    case Signal::kTag: util::destroy(static_cast<Signal *>(this)); break;
    case Server::kTag: util::destroy(static_cast<Server *>(this)); break;
  }
}

int Handle::close(async_close_fn close_cb) noexcept {
  stop_by_kind();
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
  handle->destroy_by_kind();
  loop.object_removed();
}

}  // namespace async::core
