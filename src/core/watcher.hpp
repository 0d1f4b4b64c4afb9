// Readiness of a user-owned fd (DESIGN §5), events changeable in place.
#pragma once

#include <async/watcher.h>

#include <cstdint>

#include "core/handle.hpp"
#include "ev/ev_backend.hpp"

namespace async::core {

class Watcher : public Handle {
 public:
  static constexpr std::uint32_t kTag = 0x57415443;  // "WATC"
  static constexpr int kObjectKind = ASYNC_OBJECT_WATCHER;

  Watcher(Loop &loop, void *userdata, int fd) noexcept;

  static Watcher *from(async_watcher *w) noexcept { return reinterpret_cast<Watcher *>(w); }
  async_watcher *c_watcher() noexcept { return reinterpret_cast<async_watcher *>(this); }

  int start(std::uint32_t events, async_watcher_fn cb) noexcept;
  int set_events(std::uint32_t events) noexcept;
  void stop() noexcept;
  int fd() const noexcept { return fd_; }

 private:
  static void dispatch(void *self, std::uint32_t revents) noexcept;

  ev::IoSlot io_;
  async_watcher_fn cb_ = nullptr;
  int fd_;
};

// 0 if fd is an open descriptor, else ASYNC_EBADF (ASYNC_EINVAL if < 0).
int check_fd(int fd) noexcept;

}  // namespace async::core
