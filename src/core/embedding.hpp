// The one fd a host loop polls to drive an embedded loop (async_loop_fd).
#pragma once

#include <atomic>
#include <cstdint>

#include "ev/ev_backend.hpp"

namespace async::core {

// An epoll fd over three fds: libev's epoll fd (I/O readiness once libev
// has applied its watcher changes), an eventfd (posts, wakeups, signals,
// and work the loop knows it has: queued callbacks, watcher changes libev
// has not applied yet), and a timerfd armed for the earliest deadline.
// The fd is readable exactly while run(NOWAIT) has something to do
// (docs/design.md, Embedding). Created on the first async_loop_fd(), so a
// loop never embedded pays nothing.
class Embedding {
 public:
  explicit Embedding(ev::Backend &backend) noexcept : backend_(backend) {}
  Embedding(const Embedding &) = delete;
  Embedding &operator=(const Embedding &) = delete;
  ~Embedding() { close_fds(); }

  // Creates (again: after a fork, once libev has re-created its own epoll
  // fd) the three fds. 0, ASYNC_ENOTSUP (the backend has no epoll fd:
  // select, poll), ASYNC_EMFILE or ASYNC_ENOMEM; on failure no fd is open.
  int open() noexcept;
  int fd() const noexcept { return epoll_fd_; }

  // Any thread, and signal handlers (through the backend): makes the fd
  // readable until the next run starts.
  void notify() noexcept;
  // A run starts: what made the fd readable is about to be handled.
  void run_started() noexcept;
  // A run ended: the fd stays readable when more_work (the next NOWAIT
  // run has something to do), and the timer waits for deadline_ns
  // (monotonic; UINT64_MAX for none).
  void run_ended(bool more_work, std::uint64_t deadline_ns) noexcept;

 private:
  void close_fds() noexcept;
  void arm(std::uint64_t deadline_ns) noexcept;

  ev::Backend &backend_;
  int epoll_fd_ = -1;
  int event_fd_ = -1;
  int timer_fd_ = -1;
  // A write to event_fd_ not yet read back. Writers write, then set it;
  // the reader clears it, then reads: a write is never left unread with
  // the flag clear (which would keep the fd readable for ever).
  std::atomic<bool> signalled_{false};
  std::uint64_t armed_ns_ = UINT64_MAX;  // the timerfd's deadline
};

}  // namespace async::core
