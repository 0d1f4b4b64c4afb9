// The libev layer: the only code that sees <ev.h> (DESIGN §1). Core objects
// hold watcher storage as opaque slots and get events back through plain
// function pointers, so data flows one way: libev -> core -> user.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "util/list.hpp"

// libev's loop and fd watcher, named only through pointers (IoHandler).
struct ev_loop;
struct ev_io;

namespace async::ev {

// Receives a watcher's events: owner as given at init, revents as
// ASYNC_READABLE/ASYNC_WRITABLE bits (signal watchers get 0).
using Dispatch = void (*)(void *owner, std::uint32_t revents) noexcept;

// Opaque storage for one libev watcher (sizes checked in ev_backend.cpp).
struct IoSlot {
  // Where ev_io keeps its fd (checked in ev_backend.cpp), so io_fd() is a
  // load the compiler can inline: owners need not store the fd twice.
  static constexpr std::size_t kFdOffset = 40;
  alignas(8) unsigned char raw[48];
  Dispatch fn;
};
struct SignalSlot {
  alignas(8) unsigned char raw[48];
  Dispatch fn;
};
struct TimerSlot {
  alignas(8) unsigned char raw[64];
  Dispatch fn;
  // While armed and not yet fired: on the backend's list of armed slots,
  // for next_timer_ns().
  util::ListNode armed;
};

// What the loop hears from libev besides fd events.
struct LoopEvents {
  void *owner;
  void (*woken)(void *owner);  // ev_async: a post or wakeup arrived
};

class Backend {
 public:
  // The readiness bits an fd watcher reports (ASYNC_READABLE | ASYNC_WRITABLE).
  static constexpr std::uint32_t kIoEvents = 3;

  Backend() = default;
  Backend(const Backend &) = delete;
  Backend &operator=(const Backend &) = delete;
  ~Backend();

  // Creates the libev loop (epoll; select or poll when LIBEV_FLAGS says so)
  // and its internal watchers.
  // 0, ASYNC_ENOMEM or ASYNC_EMFILE.
  int open(const LoopEvents &events) noexcept;

  // One libev iteration (the loop drives its own): poll, blocking only when
  // may_block and a reference is held, then run the fd, timer and wakeup
  // callbacks it found.
  void poll(bool may_block) noexcept;

  // Iterations in one ev_run, for a loop that runs until told to stop:
  // each polls as poll(true) does, runs the callbacks it found, then
  // step(owner), which returns whether the next poll may block; the run
  // ends after a step that says no, or after the iteration in which the
  // last reference went (the next poll would not block either); one
  // entered with none polls once without blocking. Saves ev_run's entry
  // and exit per iteration. Not while fork() left events pending
  // (can_run()).
  using Step = bool (*)(void *owner);
  void run(Step step, void *owner) noexcept;
  bool can_run() const noexcept;

  // In the child after fork(): a new epoll fd and wakeup eventfd, every
  // watcher kept. What the poll this takes finds is dispatched by the next
  // poll(), which does not block.
  void fork() noexcept;

  // Loop references: run() keeps going, and poll(true) may block, while
  // the count is > 0. libev's own count plays no part (ev_backend.cpp).
  void ref() noexcept { ++refs_; }
  void unref() noexcept {
    if (--refs_ == 0) last_unref();
  }
  bool alive() const noexcept { return refs_ > 0; }
  long refs() const noexcept { return refs_; }

  // Wakes the poll at the latest after delay_ns; disarm() cancels.
  void arm_timer(std::uint64_t delay_ns) noexcept;
  void disarm_timer() noexcept;
  // The armed timer went off: it no longer wakes a poll until re-armed.
  bool timer_fired() const noexcept;

  // Thread-safe: makes the loop call LoopEvents::woken soon.
  void wake() noexcept;

  // For a host loop embedding this one (core/embedding.hpp).
  // libev's epoll fd, or -1 under the select and poll backends, which have
  // none. Costs a throw-away libev loop: callers keep the answer.
  int backend_fd() noexcept;
  // Whether a watcher was started or changed since the last poll began:
  // libev applies such changes to its epoll set only inside the next poll.
  // Only once track_changes() was called (a loop never embedded does not
  // ask); what came before counts as pending until the next poll.
  bool changes_pending() const noexcept;
  void track_changes() noexcept;
  // The earliest deadline (monotonic ns) of the timer slots armed and not
  // yet fired, UINT64_MAX when none. Walks the armed slots.
  std::uint64_t next_timer_ns() noexcept;
  // An eventfd that a signal for this loop's signal watchers writes (after
  // libev has noted the signal), so a host sleeping outside poll() hears
  // it; -1 for none. Not owned.
  void set_signal_fd(int fd) noexcept;
  // Whether a signal watcher is active (a signal may write the fd above at
  // any time).
  bool watches_signals() const noexcept;

  std::uint64_t iterations() const noexcept;
  // Time spent in polls that could block.
  std::uint64_t poll_ns() const noexcept;

  // fd watchers. Slots must be initialised before use and stopped before
  // the slot's memory goes away or its fd is closed.
  static void io_init(IoSlot &slot, int fd, std::uint32_t events, Dispatch fn, void *owner) noexcept;
  // io_init() for an owner on the hot path, whose handler libev calls
  // itself, with no Dispatch call in between: handler(loop, w, revents)
  // finds the slot with io_slot(w), and passes revents through
  // io_revents() unless it is exactly ASYNC_READABLE or ASYNC_WRITABLE.
  using IoHandler = void (*)(struct ev_loop *loop, struct ev_io *w, int revents) noexcept;
  static void io_init_direct(IoSlot &slot, int fd, std::uint32_t events, IoHandler handler) noexcept;
  static IoSlot &io_slot(struct ev_io *w) noexcept { return *reinterpret_cast<IoSlot *>(w); }
  // Whether libev gave up on the watcher (and stopped it): epoll_ctl
  // failed for its fd other than as libev handles (not ENOENT, EEXIST or
  // EPERM: ENOMEM, ENOSPC), or select found the fd closed. libev's
  // EV_ERROR is the sign bit (checked in ev_backend.cpp).
  static bool io_given_up(int revents) noexcept { return revents < 0; }
  // An IoHandler's revents as Dispatch would get them: ASYNC_READABLE/
  // ASYNC_WRITABLE bits; for a watcher libev gave up on, every event it
  // watched, once io_given_up() is accounted for (io_killed()).
  static std::uint32_t io_revents(struct ev_loop *loop, struct ev_io *w, int revents) noexcept {
    return io_given_up(revents) ? io_killed(loop, w, revents) : static_cast<std::uint32_t>(revents) & kIoEvents;
  }
  // The watcher libev gave up on no longer counts as a source: every event
  // it watched.
  [[gnu::cold]] static std::uint32_t io_killed(struct ev_loop *loop, struct ev_io *w, int revents) noexcept;
  void io_start(IoSlot &slot) noexcept;
  void io_stop(IoSlot &slot) noexcept;
  void io_set_events(IoSlot &slot, std::uint32_t events) noexcept;
  static bool io_active(const IoSlot &slot) noexcept;
  static std::uint32_t io_events(const IoSlot &slot) noexcept;
  // Watches exactly events (ASYNC_READABLE/ASYNC_WRITABLE bits): stops the
  // slot for 0, starts or changes it otherwise; nothing when unchanged.
  void io_watch(IoSlot &slot, std::uint32_t events) noexcept;
  static int io_fd(const IoSlot &slot) noexcept {
    int fd;
    std::memcpy(&fd, slot.raw + IoSlot::kFdOffset, sizeof fd);
    return fd;
  }

  static void signal_init(SignalSlot &slot, int signum, Dispatch fn, void *owner) noexcept;
  void signal_start(SignalSlot &slot) noexcept;
  void signal_stop(SignalSlot &slot) noexcept;

  // Timers for internal use (the DNS channel); never keep the loop alive.
  // After firing, a slot stays armed (far in the future) until restarted
  // or stopped; starting an active slot re-arms it.
  static void timer_init(TimerSlot &slot, Dispatch fn, void *owner) noexcept;
  void timer_start(TimerSlot &slot, std::uint64_t delay_ns) noexcept;
  void timer_stop(TimerSlot &slot) noexcept;

  struct Impl;

 private:
  Impl *impl_ = nullptr;
  // The count reached 0: a run() in progress ends after this iteration.
  void last_unref() noexcept;
  void changed() noexcept {
    if (tracking_changes_) note_change();
  }
  void note_change() noexcept;
  // changes_pending() until libev's iteration count reaches this.
  unsigned applied_at_ = 0;
  bool tracking_changes_ = false;
  util::List armed_timers_;
  // ref()s not yet unref()'d.
  long refs_ = 0;
};

// Routes libev's allocations through the library allocator (process-wide, once).
void install_allocator() noexcept;

}  // namespace async::ev
