// What every transport shares (DESIGN §7), as a base class template over
// the transport (CRTP), its protocol struct and its C type: the fd and its
// watcher, the protocol and its userdata, connection_made and
// connection_lost as ready-queue tasks (their two slots reserved when the
// transport is adopted, so neither can fail later), and the send queue's
// high/low-water flow control.
//
// Derived provides, reachable from this class (friend):
//   void made() noexcept;         after connection_made returned
//   void before_lost() noexcept;  right before connection_lost
//   void dispose() noexcept;      after release and the fd's close
#pragma once

#include <async/error.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>

#include "core/loop.hpp"
#include "ev/ev_backend.hpp"

namespace async::core {

template <class Derived, class Protocol, class CType>
class Transport {
 public:
  static constexpr std::size_t kDefaultHigh = 64 * 1024;
  static constexpr std::size_t kDefaultLow = 16 * 1024;

  CType *c_handle() noexcept { return reinterpret_cast<CType *>(this); }
  int fd() const noexcept { return fd_; }
  Loop &loop() const noexcept { return loop_; }
  std::size_t high() const noexcept { return high_; }
  std::size_t low() const noexcept { return low_; }
  std::size_t write_buffer_size() const noexcept { return queued_; }

  // low <= high; may call pause_writing at once.
  int set_write_limits(std::size_t high, std::size_t low) noexcept {
    if (low > high) return ASYNC_EINVAL;
    high_ = high;
    low_ = low;
    maybe_pause();
    return 0;
  }

  std::uint32_t tag_;  // first: the API layer reads it through the C pointer

 protected:
  enum class State { kOpen, kClosing, kLost };

  Transport(std::uint32_t tag, Loop &loop, int fd) noexcept : tag_(tag), loop_(loop), fd_(fd) {}
  ~Transport() { tag_ = 0xdeadbeef; }
  Transport(const Transport &) = delete;
  Transport &operator=(const Transport &) = delete;

  // Takes the fd over (non-blocking, close-on-exec; fcntl flags given),
  // with protocol and userdata, and queues connection_made. The caller
  // reserved two ready-queue slots.
  void attach(int flags, const Protocol &protocol, void *userdata, ev::Dispatch on_io) noexcept {
    ::fcntl(fd_, F_SETFL, flags | O_NONBLOCK);
    ::fcntl(fd_, F_SETFD, FD_CLOEXEC);
    protocol_ = protocol;
    protocol_.size = sizeof protocol_;
    userdata_ = userdata;
    ev::Backend::io_init(io_, fd_, 0, on_io, static_cast<Derived *>(this));
    loop_.object_added();
    loop_.backend().ref();  // an open transport keeps the loop running
    loop_.push_reserved(Task{run_made, this});
  }

  // Stops watching and queues connection_lost(error).
  void schedule_lost(int error) noexcept {
    state_ = State::kLost;
    lost_error_ = error;
    loop_.backend().io_stop(io_);
    loop_.push_reserved(Task{run_lost, this});
  }

  // pause_writing once the queue is strictly above the high-water mark.
  void maybe_pause() noexcept {
    if (state_ != State::kOpen || writing_paused_ || queued_ <= high_) return;
    writing_paused_ = true;
    if (protocol_.pause_writing) loop_.invoke([&] { protocol_.pause_writing(c_handle(), userdata_); });
  }

  // resume_writing once the queue drained to the low-water mark; false if
  // the transport was lost inside it.
  bool maybe_resume() noexcept {
    if (writing_paused_ && queued_ <= low_) {
      writing_paused_ = false;
      if (protocol_.resume_writing) loop_.invoke([&] { protocol_.resume_writing(c_handle(), userdata_); });
    }
    return state_ != State::kLost;
  }

  Loop &loop_;
  int fd_;
  State state_ = State::kOpen;
  int lost_error_ = 0;
  Protocol protocol_{};
  void *userdata_ = nullptr;
  ev::IoSlot io_;
  bool made_ = false;  // connection_made has run
  std::size_t queued_ = 0;
  std::size_t high_ = kDefaultHigh;
  std::size_t low_ = kDefaultLow;
  bool writing_paused_ = false;  // pause_writing told, resume_writing not yet

 private:
  static Derived *self(void *p) noexcept { return static_cast<Derived *>(static_cast<Transport *>(p)); }

  static void run_made(async_loop *, void *p) noexcept {
    Derived *d = self(p);
    d->made_ = true;
    if (d->protocol_.connection_made)
      d->loop_.invoke([&] { d->protocol_.connection_made(d->c_handle(), d->userdata_); });
    d->made();
  }

  static void run_lost(async_loop *, void *p) noexcept {
    Derived *d = self(p);
    Loop &loop = d->loop_;
    d->before_lost();
    loop.invoke([&] { d->protocol_.connection_lost(d->c_handle(), d->lost_error_, d->userdata_); });
    if (d->protocol_.release) d->protocol_.release(d->userdata_);
    ::close(d->fd_);
    loop.object_removed();
    loop.backend().unref();
    d->dispose();
  }
};

}  // namespace async::core
