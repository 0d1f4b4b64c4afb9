// A child process (async/process.h): its pipe streams, its pidfd watched
// by the loop, and the futures of its exit. The object stays until its
// owner freed it AND the child was reaped: a freed process whose child
// still runs is the loop's reaper for it.
#pragma once

#include <async/process.h>
#include <sys/types.h>

#include <cstdint>

#include "ev/ev_backend.hpp"
#include "net/core_names.hpp"
#include "util/ring.hpp"
#include "util/tagged.hpp"

namespace async::net {

class Stream;

class Process : public util::Tagged<0x50524f43> {  // "PROC"
 public:
  // options as util::copy_sized() left them, protocols[i] the copies of
  // the pipes' protocols; 0 or the ASYNC_E* code of async_process_spawn().
  static int spawn(Process **out, Loop &loop, const async_process_options &options,
                   const async_stream_protocol (&protocols)[3], void *userdata) noexcept;

  static Process *from(async_process *p) noexcept { return reinterpret_cast<Process *>(p); }
  async_process *c_process() noexcept { return reinterpret_cast<async_process *>(this); }

  // A new future of the exit, DONE at once after it; ASYNC_ENOMEM.
  int wait(Future **out) noexcept;
  int kill(int signum) noexcept;
  pid_t pid() const noexcept { return pid_; }
  // The pipe stream of fd (0..2), nullptr for another mode.
  Stream *stream(int fd) const noexcept { return stdio_[fd]; }
  void *userdata() const noexcept { return userdata_; }
  Loop &loop() const noexcept { return loop_; }
  // async_process_free(): drops the streams, releases the userdata.
  void release_owner() noexcept;
  bool owner_released() const noexcept { return !owned_; }

  // Use spawn(); public only for util::make/destroy.
  Process(Loop &loop, void *userdata, async_release_fn release) noexcept;
  ~Process();

 private:
  static void on_pidfd(void *self, std::uint32_t revents) noexcept;
  // Watches the pidfd and holds the loop until the child is reaped.
  void watch(int pidfd) noexcept;
  // The child was reaped (error 0) or lost to another reaper (ASYNC_ESTATE).
  void exited(int exit_code, int signal, int error) noexcept;
  // Completes f with the exit.
  void complete(Future &f) const noexcept;

  struct Waiter {
    Future *future;  // a library reference, until the exit
  };

  Loop &loop_;
  ev::IoSlot io_;  // on the pidfd while the child runs
  pid_t pid_ = 0;
  Stream *stdio_[3] = {nullptr, nullptr, nullptr};  // a reference each, until the owner frees us
  util::Ring<Waiter> waiters_;
  void *userdata_;
  async_release_fn release_;
  int exit_code_ = 0;
  int signal_ = 0;
  int wait_error_ = 0;  // ASYNC_ESTATE when another reaper took the status
  bool owned_ = true;
  bool running_ = true;
};

}  // namespace async::net
