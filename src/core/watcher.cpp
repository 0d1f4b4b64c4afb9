#include "core/watcher.hpp"

#include <async/error.h>
#include <fcntl.h>

#include "core/loop.hpp"

namespace async::core {

int check_fd(int fd) noexcept {
  if (fd < 0) return ASYNC_EINVAL;
  // libev aborts on a closed fd; refuse it here instead.
  return fcntl(fd, F_GETFD) < 0 ? ASYNC_EBADF : 0;
}

Watcher::Watcher(Loop &loop, void *userdata, int fd) noexcept : Handle(handle_kind<Watcher>, loop, userdata), fd_(fd) {
  ev::Backend::io_init(io_, fd, 0, dispatch, this);
}

int Watcher::start(std::uint32_t events, async_watcher_fn cb) noexcept {
  int err = check_fd(fd_);
  if (err) return err;
  cb_ = cb;
  return set_events(events);
}

int Watcher::set_events(std::uint32_t events) noexcept {
  if (events == 0) {
    stop();
    return 0;
  }
  // Never started: no callback to call when the fd becomes ready.
  if (!cb_) return ASYNC_ESTATE;
  int err = check_fd(fd_);
  if (err) return err;
  ev::Backend &backend = loop().backend();
  if (active()) {
    backend.io_set_events(io_, events);
    return 0;
  }
  // Re-initialised on every start: the fd number may name a new file now.
  ev::Backend::io_init(io_, fd_, events, dispatch, this);
  backend.io_start(io_);
  set_active(true);
  return 0;
}

void Watcher::stop() noexcept {
  if (!active()) return;
  loop().backend().io_stop(io_);
  set_active(false);
}

void Watcher::dispatch(void *self, std::uint32_t revents) noexcept {
  auto *w = static_cast<Watcher *>(self);
  w->loop().invoke([&] { w->cb_(w->c_watcher(), revents, w->userdata()); });
}

}  // namespace async::core
