// Design notes: docs/design.md, Embedding. Level-triggered throughout: the
// epoll fd is readable while one of its three fds is, and each of those
// stays readable until the loop consumes it (libev's epoll fd until its
// events are handled, the eventfd until run_started() reads it, the timerfd
// until run_ended() re-arms it). The host never reads anything.

#include "core/embedding.hpp"

#include <async/error.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

#include "util/clock.hpp"
#include "util/sys_error.hpp"

namespace async::core {

namespace {

int add_readable(int epoll_fd, int fd) noexcept {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = fd;
  return ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev);
}

}  // namespace

int Embedding::open() noexcept {
  close_fds();
  int backend_fd = backend_.backend_fd();
  if (backend_fd < 0) return ASYNC_ENOTSUP;
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  event_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  timer_fd_ = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  int err = 0;
  if (epoll_fd_ < 0 || event_fd_ < 0 || timer_fd_ < 0 || add_readable(epoll_fd_, backend_fd) ||
      add_readable(epoll_fd_, event_fd_) || add_readable(epoll_fd_, timer_fd_))
    err = errno == ENOMEM ? ASYNC_ENOMEM : errno == EMFILE || errno == ENFILE ? ASYNC_EMFILE : util::from_errno(errno);
  if (err) {
    close_fds();
    return err;
  }
  armed_ns_ = UINT64_MAX;
  backend_.set_signal_fd(event_fd_);
  // Whatever happened before now is not reflected in the fd yet: the
  // first NOWAIT run sorts it out.
  notify();
  return 0;
}

void Embedding::close_fds() noexcept {
  if (event_fd_ >= 0) backend_.set_signal_fd(-1);
  for (int *fd : {&epoll_fd_, &event_fd_, &timer_fd_}) {
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
  }
  signalled_.store(false);
}

void Embedding::notify() noexcept {
  std::uint64_t one = 1;
  // Only EAGAIN can fail it (the counter at its maximum): readable anyway.
  [[maybe_unused]] ssize_t n = ::write(event_fd_, &one, sizeof one);
  signalled_.store(true);
}

void Embedding::run_started() noexcept {
  // A signal handler writes without the flag: while signals are watched,
  // always read.
  if (!signalled_.exchange(false) && !backend_.watches_signals()) return;
  std::uint64_t count;
  [[maybe_unused]] ssize_t n = ::read(event_fd_, &count, sizeof count);
}

void Embedding::run_ended(bool more_work, std::uint64_t deadline_ns) noexcept {
  if (more_work && !signalled_.load()) notify();
  arm(deadline_ns);
}

void Embedding::arm(std::uint64_t deadline_ns) noexcept {
  // A deadline already armed and still ahead needs nothing; one that has
  // passed is re-armed too, which clears the timerfd's readiness.
  if (deadline_ns == armed_ns_ && (deadline_ns == UINT64_MAX || deadline_ns > util::monotonic_ns())) return;
  itimerspec spec{};
  if (deadline_ns != UINT64_MAX) {
    // 0 would disarm it: a deadline at or before the epoch of the clock
    // (never in practice) becomes 1 ns.
    std::uint64_t at = deadline_ns ? deadline_ns : 1;
    spec.it_value.tv_sec = static_cast<time_t>(at / 1000000000u);
    spec.it_value.tv_nsec = static_cast<long>(at % 1000000000u);
  }
  ::timerfd_settime(timer_fd_, TFD_TIMER_ABSTIME, &spec, nullptr);
  armed_ns_ = deadline_ns;
}

}  // namespace async::core
