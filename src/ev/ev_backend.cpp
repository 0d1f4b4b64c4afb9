// Design notes (src/ev/: libev and nothing else).
//
// References. libev keeps ev_run(DEFAULT) going, and lets ev_run(ONCE)
// block, while its count of active referenced watchers is above zero;
// the library decides what keeps a loop alive itself (Backend::ref/unref,
// counted in refs_). So libev's count is left as its watchers make it
// (at least 1: the wakeup watcher is active from open() to ~Backend())
// and never decides anything: poll() asks for a non-blocking iteration
// while refs_ is 0, and run() starts one then, or breaks ev_run at the
// end of the iteration in which refs_ reached 0 (last_unref()). No start
// or stop of a watcher costs a reference call into libev, and no
// iteration a test of refs_.

#include "ev/ev_backend.hpp"

#include <async/error.h>
#include <async/watcher.h>
#include <ev.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <climits>
#include <csetjmp>
#include <csignal>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include <unistd.h>

#include "util/alloc.hpp"
#include "util/check.hpp"
#include "util/clock.hpp"
#include "util/container_of.hpp"

namespace async::ev {

static_assert(sizeof(ev_io) <= sizeof(IoSlot::raw));
static_assert(offsetof(ev_io, fd) == IoSlot::kFdOffset);
static_assert(sizeof(ev_signal) <= sizeof(SignalSlot::raw));
static_assert(sizeof(ev_timer) <= sizeof(TimerSlot::raw));
static_assert(ASYNC_READABLE == EV_READ && ASYNC_WRITABLE == EV_WRITE);
static_assert(Backend::kIoEvents == (EV_READ | EV_WRITE));
static_assert(EV_ERROR == INT_MIN, "Backend::io_given_up() tests the sign bit");

namespace {

ev_io *as_io(IoSlot &slot) { return reinterpret_cast<ev_io *>(slot.raw); }
const ev_io *as_io(const IoSlot &slot) { return reinterpret_cast<const ev_io *>(slot.raw); }
ev_signal *as_signal(SignalSlot &slot) { return reinterpret_cast<ev_signal *>(slot.raw); }
ev_timer *as_timer(TimerSlot &slot) { return reinterpret_cast<ev_timer *>(slot.raw); }

// The backend: epoll, unless LIBEV_FLAGS names select (1) or poll (2) so the
// test suite can run under each (async/loop.h). libev's own reading of it
// stays off (EVFLAG_NOENV): it would take the whole value as the flags,
// dropping EVFLAG_NOTIMERFD, and accept backends we never test. Read with
// secure_getenv, so a setuid or setgid program ignores it.
unsigned backend_from_env() noexcept {
  constexpr unsigned kTested = EVBACKEND_SELECT | EVBACKEND_POLL | EVBACKEND_EPOLL;
  const char *text = secure_getenv("LIBEV_FLAGS");
  char *end = nullptr;
  unsigned long value = text ? std::strtoul(text, &end, 10) : 0;
  unsigned backends = end && end != text && *end == '\0' ? static_cast<unsigned>(value) & kTested : 0;
  return backends ? backends : static_cast<unsigned>(EVBACKEND_EPOLL);
}

// libev aborts when its allocator returns NULL, so its blocks fall back to
// the C library when the hook fails; a header remembers which allocator
// owns each block.
struct alignas(16) BlockHeader {
  std::size_t size;
  bool from_hook;
};

void *ev_allocator(void *ptr, long size) noexcept {
  BlockHeader *old = ptr ? static_cast<BlockHeader *>(ptr) - 1 : nullptr;
  if (size <= 0) {
    if (old) old->from_hook ? util::mem_free(old) : std::free(old);
    return nullptr;
  }
  std::size_t bytes = sizeof(BlockHeader) + static_cast<std::size_t>(size);
  if (old && old->from_hook) {
    if (auto *grown = static_cast<BlockHeader *>(util::mem_realloc(old, bytes))) {
      grown->size = static_cast<std::size_t>(size);
      return grown + 1;
    }
  } else if (old) {
    auto *grown = static_cast<BlockHeader *>(std::realloc(old, bytes));
    if (!grown) return nullptr;
    grown->size = static_cast<std::size_t>(size);
    return grown + 1;
  }
  bool from_hook = true;
  auto *block = static_cast<BlockHeader *>(util::mem_alloc(bytes));
  if (!block) {
    from_hook = false;
    block = static_cast<BlockHeader *>(std::malloc(bytes));
    if (!block) return nullptr;
  }
  block->size = static_cast<std::size_t>(size);
  block->from_hook = from_hook;
  if (old) {
    std::memcpy(block + 1, old + 1, old->size < block->size ? old->size : block->size);
    old->from_hook ? util::mem_free(old) : std::free(old);
  }
  return block + 1;
}

// Where ev_syserr goes instead of aborting while this thread is inside
// start_wakeup(), with the failing call's errno.
struct Recovery {
  std::jmp_buf env;
  volatile int err;  // set between setjmp and longjmp
};
thread_local Recovery *t_recovery = nullptr;

// libev reports internal syscall failures here and expects no return. The
// one a library call can meet (no fd for the wakeup eventfd) is recovered
// from; the others cannot happen unless libev's own fds were closed behind
// its back (docs/design.md): print and abort, saying who we are.
void ev_syserr(const char *msg) noexcept {
  int err = errno;
  if (Recovery *r = t_recovery) {
    r->err = err;
    // Only libev frames (C) and this function are skipped: nothing to unwind.
    std::longjmp(r->env, 1);
  }
  std::fprintf(stderr, "libasync: fatal libev error: %s: %s\n", msg, std::strerror(err));
  std::abort();
}

// Starts w, which makes libev create its wakeup eventfd (or pipe) now: that
// fd also carries signals, so nothing later needs a new one. libev has no
// error return here and loops calling ev_syserr, which jumps back; libev
// has changed nothing by then (the failed call opened no fd, w is not
// started). 0 or an errno value.
int start_wakeup(struct ev_loop *loop, ev_async *w) noexcept {
  Recovery recovery{};
  t_recovery = &recovery;
  if (setjmp(recovery.env) != 0) {
    t_recovery = nullptr;
    return recovery.err ? recovery.err : EIO;
  }
  ev_async_start(loop, w);
  t_recovery = nullptr;
  return 0;
}

// The code for errno err from a call creating an fd.
int fd_error(int err) noexcept { return err == ENOMEM ? ASYNC_ENOMEM : ASYNC_EMFILE; }

}  // namespace

struct Backend::Impl {
  struct ev_loop *loop = nullptr;
  int signal_fd = -1;                        // set_signal_fd()
  std::array<unsigned, NSIG> signal_uses{};  // active signal watchers per signal
  unsigned signals_watched = 0;
  LoopEvents events{};
  ev_async async;
  ev_timer timer;
  bool may_block = false;        // the current poll is timed for poll_ns
  bool forked = false;           // fork() left events pending: the next poll must not block
  bool timer_fired = false;      // the poll timer went off since arm_timer()
  bool running = false;          // inside run()'s ev_run
  Backend::Step step = nullptr;  // run()'s
  void *step_owner = nullptr;
  // Active io and signal watchers: while there are none, libev has nothing
  // to poll but its own wakeup (see Backend::poll). A stopped signal
  // watcher counts until the next libev poll, which drops a delivery
  // libev noted before the stop (else a restart would receive it).
  long sources = 0;
  long signals_stopped = 0;
  std::uint64_t iterations = 0;
  ev_tstamp poll_started = 0;  // libev's time when the current blocking poll began
  ev_tstamp poll_time = 0;     // seconds, summed as libev measures them
};

namespace {

Backend::Impl *impl_of(struct ev_loop *loop) { return static_cast<Backend::Impl *>(ev_userdata(loop)); }

void on_async(struct ev_loop *loop, ev_async *, int) noexcept {
  auto *impl = impl_of(loop);
  impl->events.woken(impl->events.owner);
}

// The timer only ends the poll; expired library timers run after it. It
// is noted because libev reads its clock after the library's: it may fire
// a moment before the library sees its deadline, and must then be re-armed.
void on_timer(struct ev_loop *loop, ev_timer *, int) noexcept { impl_of(loop)->timer_fired = true; }

// poll_time sums the time spent in polls that may block on libev's own
// clock, which it reads right before the poll (then this runs) and right
// after it (then ev_run returns): no clock read of ours per iteration.
// libev's time is the monotonic clock plus an offset to the real-time
// clock, re-read every half second at most: a poll across a jump of the
// real-time clock may count it (or count nothing), as any wall-clock
// measure would. libev calls this only while it is installed: for polls
// that may block.
void before_block(struct ev_loop *loop) noexcept { impl_of(loop)->poll_started = ev_now(loop); }

// After a poll: its iteration counted, the time a blocking one took, and
// signal watchers stopped before it no longer counted as sources.
void after_poll(Backend::Impl *impl, bool may_block) noexcept {
  ++impl->iterations;
  if (may_block) {
    // ev_run always polls after before_block(); libev's time is from
    // right after the poll.
    ev_tstamp blocked = ev_now(impl->loop) - impl->poll_started;
    if (blocked > 0) impl->poll_time += blocked;
  }
  if (impl->signals_stopped) {
    impl->sources -= impl->signals_stopped;
    impl->signals_stopped = 0;
  }
}

// ev_run dispatches on entry, where nothing is ever pending (each ev_run
// dispatches everything it queued before returning), and after its poll,
// where often nothing is either: ev_pending_count (five additions) is much
// cheaper than ev_invoke_pending walking libev's five priority lists.
void invoke_if_pending(struct ev_loop *loop) noexcept {
  if (ev_pending_count(loop)) ev_invoke_pending(loop);
}

// run()'s dispatch after each poll: the callbacks, then the owner's step,
// which may end the run. ev_run dispatches on entry (enter_run()), after
// each poll, and after prepare or fork watchers, of which this loop has
// none: so every call here follows a poll.
void invoke_and_step(struct ev_loop *loop) noexcept {
  auto *impl = impl_of(loop);
  // A poll that may block returns with something pending but for a
  // signal or a spurious wakeup: no count first.
  ev_invoke_pending(loop);
  after_poll(impl, true);
  if (!impl->step(impl->step_owner)) ev_break(loop, EVBREAK_ONE);
}

// run()'s dispatch on entry to ev_run, before any poll: no step, and
// invoke_and_step() from here on, with no flag to test per iteration.
// Nothing is pending (can_run(): no events a fork() left).
void enter_run(struct ev_loop *loop) noexcept {
  util::check(ev_pending_count(loop) == 0);
  ev_set_invoke_pending_cb(loop, invoke_and_step);
}

// fork()'s iteration: what it finds stays pending for the next ev_run,
// which dispatches it on entry.
void keep_pending(struct ev_loop *) noexcept {}

void on_slot_timer(struct ev_loop *, ev_timer *w, int) noexcept {
  auto *slot = reinterpret_cast<TimerSlot *>(w);
  if (slot->armed.linked()) slot->armed.unlink();  // fired: next_timer_ns() skips it
  slot->fn(w->data, 0);
}

// EV_ERROR means libev gave up on the fd (Backend::io_given_up()) and
// stopped the watcher itself: it no longer counts as a source.
void rebalance_killed(struct ev_loop *loop, int revents) noexcept {
  if (!(revents & EV_ERROR)) return;
  --impl_of(loop)->sources;
}

// The usual event ends in a tail call to the owner; for a watcher libev
// gave up on, the owner hears of every event it watched, and its read or
// write then finds the error.
void on_io(struct ev_loop *loop, ev_io *w, int revents) noexcept {
  reinterpret_cast<IoSlot *>(w)->fn(w->data, Backend::io_revents(loop, w, revents));
}

// Per signal, the fd (+1; 0 for none) a signal writes after libev noted it:
// the eventfd of an embedded loop watching it (one loop per signal,
// core/signal_registry.hpp). Read from the signal handler.
std::array<std::atomic<int>, NSIG> g_signal_fds{};

// libev's own handler (ev_feed_signal) and, for an embedded loop, a write
// to its host-visible eventfd: libev writes its own wakeup fd only while a
// thread blocks inside ev_run, never while a host sleeps on the fd.
// Async-signal-safe: an atomic load and write(2), errno preserved.
void forward_signal(int signum) noexcept {
  int saved = errno;
  ev_feed_signal(signum);
  if (int fd = g_signal_fds[static_cast<std::size_t>(signum)].load(std::memory_order_acquire) - 1; fd >= 0) {
    std::uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(fd, &one, sizeof one);
  }
  errno = saved;
}

// Replaces libev's handler (same mask and flags as libev installs).
void install_forward(int signum) noexcept {
  struct sigaction sa {};
  sa.sa_handler = forward_signal;
  sigfillset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(signum, &sa, nullptr);
}

void on_signal(struct ev_loop *, ev_signal *w, int) noexcept {
  auto *slot = reinterpret_cast<SignalSlot *>(w);
  slot->fn(w->data, 0);
}

}  // namespace

void install_allocator() noexcept {
  static std::once_flag once;
  std::call_once(once, [] {
    ev_set_allocator(ev_allocator);
    ev_set_syserr_cb(ev_syserr);
  });
}

Backend::~Backend() {
  if (!impl_) return;
  struct ev_loop *loop = impl_->loop;
  ev_async_stop(loop, &impl_->async);
  if (ev_is_active(&impl_->timer)) ev_timer_stop(loop, &impl_->timer);
  ev_loop_destroy(loop);
  util::destroy(impl_);
}

int Backend::open(const LoopEvents &events) noexcept {
  install_allocator();
  Impl *impl = util::make<Impl>();
  if (!impl) return ASYNC_ENOMEM;
  // The backend named by LIBEV_FLAGS, else epoll only (libev would fall back
  // to poll when epoll_create fails).
  struct ev_loop *loop = ev_loop_new(backend_from_env() | EVFLAG_NOENV | EVFLAG_NOTIMERFD);
  if (!loop) {
    int err = errno;
    util::destroy(impl);
    return fd_error(err);
  }
  ev_async_init(&impl->async, on_async);
  if (int err = start_wakeup(loop, &impl->async)) {
    ev_loop_destroy(loop);
    util::destroy(impl);
    return fd_error(err);
  }
  impl->loop = loop;
  impl->events = events;
  ev_set_userdata(loop, impl);
  ev_set_invoke_pending_cb(loop, invoke_if_pending);
  ev_timer_init(&impl->timer, on_timer, 0., 0.);
  impl_ = impl;
  return 0;
}

void Backend::poll(bool may_block) noexcept {
  bool forked = impl_->forked;
  if (forked) {
    impl_->forked = false;
    may_block = false;  // the events dispatched on entry may queue work
  }
  // A poll that may not block, on a loop with no fd or signal watched,
  // could only find the wakeup: libev's ev_async_send sets the watcher's
  // flag before anything else, and a blocking ev_run sees it and does not
  // block. So the flag is read instead of calling epoll_wait(0) (libuv
  // makes no syscall either when it has no fds). The poll timer and
  // libev's time are not needed meanwhile: the library's timers run from
  // its own heap and arm_timer() refreshes libev's time; the internal
  // timer slots (DNS) are not skipped over.
  if (!may_block && !forked && impl_->sources == 0 && armed_timers_.empty() &&
      !__atomic_load_n(&impl_->async.sent, __ATOMIC_ACQUIRE)) {
    ++impl_->iterations;
    return;
  }
  // A non-blocking poll needs no start time: no call at all before it.
  // Swapped only when the kind of poll changes (libev checks for null).
  if (may_block != impl_->may_block) {
    impl_->may_block = may_block;
    ev_set_loop_release_cb(impl_->loop, may_block ? before_block : nullptr, nullptr);
  }
  // Blocking only while something referenced is alive.
  ev_run(impl_->loop, may_block && alive() ? EVRUN_ONCE : EVRUN_NOWAIT);
  after_poll(impl_, may_block);
}

bool Backend::can_run() const noexcept { return !impl_->forked; }

void Backend::run(Step step, void *owner) noexcept {
  if (!impl_->may_block) {
    impl_->may_block = true;
    ev_set_loop_release_cb(impl_->loop, before_block, nullptr);
  }
  impl_->step = step;
  impl_->step_owner = owner;
  ev_set_invoke_pending_cb(impl_->loop, enter_run);
  // With no reference, one iteration that does not block, as poll(true).
  impl_->running = true;
  ev_run(impl_->loop, alive() ? 0 : EVRUN_NOWAIT);
  impl_->running = false;
  ev_set_invoke_pending_cb(impl_->loop, invoke_if_pending);
}

void Backend::fork() noexcept {
  struct ev_loop *loop = impl_->loop;
  ev_loop_fork(loop);
  // libev re-creates the epoll fd (re-adding every watched fd) and its
  // wakeup eventfd at the start of its next ev_run: run one now, so that
  // from here on the child shares neither with its parent, with nothing
  // dispatched inside the caller's call.
  ev_set_invoke_pending_cb(loop, keep_pending);
  ev_run(loop, EVRUN_NOWAIT);
  ev_set_invoke_pending_cb(loop, invoke_if_pending);
  impl_->forked = true;
}

// libev's count would go on: with no reference left run()'s ev_run ends
// once this iteration's callbacks and step are done, as poll() would not
// block. Only there: poll()'s single iteration ends anyway, and a break
// set while it dispatches on entry (what a fork left pending) would skip
// its poll. Outside ev_run the request would be moot: ev_run clears it
// on entry.
void Backend::last_unref() noexcept {
  if (impl_->running) ev_break(impl_->loop, EVBREAK_ONE);
}

void Backend::arm_timer(std::uint64_t delay_ns) noexcept {
  struct ev_loop *loop = impl_->loop;
  if (ev_is_active(&impl_->timer)) ev_timer_stop(loop, &impl_->timer);
  // libev measures from its cached time: refresh it so the wakeup cannot
  // come before the library deadline (the caller read the clock earlier).
  ev_now_update(loop);
  // A huge repeat keeps the watcher active after it fires, so libev never
  // stops it behind our back.
  ev_timer_set(&impl_->timer, static_cast<double>(delay_ns) / 1e9, 1e9);
  ev_timer_start(loop, &impl_->timer);
  impl_->timer_fired = false;
}

bool Backend::timer_fired() const noexcept { return impl_->timer_fired; }

void Backend::disarm_timer() noexcept {
  if (ev_is_active(&impl_->timer)) ev_timer_stop(impl_->loop, &impl_->timer);
}

void Backend::wake() noexcept { ev_async_send(impl_->loop, &impl_->async); }

int Backend::backend_fd() noexcept {
  // libev has no accessor: ev_embed_start reads the fd into the embed
  // watcher's io member (docs/design.md, Embedding). The host is a poll
  // loop, which opens no fd.
  if (ev_backend(impl_->loop) != EVBACKEND_EPOLL) return -1;
  struct ev_loop *host = ev_loop_new(static_cast<unsigned>(EVBACKEND_POLL) | EVFLAG_NOENV);
  if (!host) return -1;
  ev_embed probe;
  ev_embed_init(&probe, nullptr, impl_->loop);
  ev_embed_start(host, &probe);
  int fd = probe.io.fd;
  ev_embed_stop(host, &probe);
  ev_loop_destroy(host);
  return fd;
}

// libev applies changes in the next ev_run before its poll, where it also
// counts the iteration: pending until the count passes the current one.
// Counted here, not cleared in poll(), so a loop never embedded pays
// nothing per iteration, and a test per start.
void Backend::note_change() noexcept { applied_at_ = ev_iteration(impl_->loop) + 1; }

void Backend::track_changes() noexcept {
  tracking_changes_ = true;
  note_change();
}

bool Backend::changes_pending() const noexcept {
  // With no watcher active, what is left to apply are stops, which can
  // make nothing ready (and poll() may skip libev meanwhile). libev's
  // count is an unsigned int that wraps: compare the difference.
  return impl_->sources > 0 && static_cast<int>(applied_at_ - ev_iteration(impl_->loop)) > 0;
}

std::uint64_t Backend::next_timer_ns() noexcept {
  if (armed_timers_.empty()) return UINT64_MAX;
  // Computed here rather than stored at each start, so a loop never
  // embedded pays no clock read per start. The clock is read after libev's
  // (and rounded up by 1 us), so the deadline is never before libev's own.
  ev_now_update(impl_->loop);
  std::uint64_t now = util::monotonic_ns();
  double next = 1e300;
  for (util::ListNode *n = armed_timers_.front(); n != armed_timers_.end(); n = n->next) {
    TimerSlot *slot = util::container_of(n, &TimerSlot::armed);
    double remaining = ev_timer_remaining(impl_->loop, as_timer(*slot));
    if (remaining < next) next = remaining;
  }
  if (next <= 0) return now;
  return next >= 1e9 ? UINT64_MAX : now + static_cast<std::uint64_t>(next * 1e9) + 1000u;
}
std::uint64_t Backend::iterations() const noexcept { return impl_->iterations; }
std::uint64_t Backend::poll_ns() const noexcept { return static_cast<std::uint64_t>(impl_->poll_time * 1e9); }

void Backend::io_init(IoSlot &slot, int fd, std::uint32_t events, Dispatch fn, void *owner) noexcept {
  ev_io *w = as_io(slot);
  ev_io_init(w, on_io, fd, static_cast<int>(events));
  w->data = owner;
  slot.fn = fn;
}

void Backend::io_init_direct(IoSlot &slot, int fd, std::uint32_t events, IoHandler handler) noexcept {
  ev_io_init(as_io(slot), handler, fd, static_cast<int>(events));
  slot.fn = nullptr;
}

std::uint32_t Backend::io_killed(struct ev_loop *loop, struct ev_io *w, int revents) noexcept {
  rebalance_killed(loop, revents);
  return static_cast<std::uint32_t>(w->events) & kIoEvents;
}

void Backend::io_start(IoSlot &slot) noexcept {
  ev_io *w = as_io(slot);
  if (ev_is_active(w)) return;
  ev_io_start(impl_->loop, w);
  ++impl_->sources;
  changed();
}

void Backend::io_stop(IoSlot &slot) noexcept {
  ev_io *w = as_io(slot);
  if (!ev_is_active(w)) {
    // A kill notice dropped here would never reach on_io.
    rebalance_killed(impl_->loop, ev_clear_pending(impl_->loop, w));
    return;
  }
  ev_io_stop(impl_->loop, w);
  --impl_->sources;
}

void Backend::io_set_events(IoSlot &slot, std::uint32_t events) noexcept {
  ev_io *w = as_io(slot);
  bool active = ev_is_active(w);
  if (active) io_stop(slot);
  ev_io_modify(w, static_cast<int>(events));
  if (active) io_start(slot);
}

bool Backend::io_active(const IoSlot &slot) noexcept { return ev_is_active(as_io(slot)); }

void Backend::io_watch(IoSlot &slot, std::uint32_t events) noexcept {
  if (!events) {
    io_stop(slot);
  } else if (!io_active(slot)) {
    ev_io_modify(as_io(slot), static_cast<int>(events));
    io_start(slot);
  } else if (io_events(slot) != events) {
    io_set_events(slot, events);
  }
}

std::uint32_t Backend::io_events(const IoSlot &slot) noexcept {
  return static_cast<std::uint32_t>(as_io(slot)->events) & (EV_READ | EV_WRITE);
}

void Backend::signal_init(SignalSlot &slot, int signum, Dispatch fn, void *owner) noexcept {
  ev_signal *w = as_signal(slot);
  ev_signal_init(w, on_signal, signum);
  w->data = owner;
  slot.fn = fn;
}

void Backend::signal_start(SignalSlot &slot) noexcept {
  ev_signal *w = as_signal(slot);
  if (ev_is_active(w)) return;
  ev_signal_start(impl_->loop, w);
  ++impl_->sources;
  changed();
  ++impl_->signals_watched;
  auto signum = static_cast<std::size_t>(w->signum);
  if (impl_->signal_uses[signum]++ == 0) {
    // libev installed its handler on the first watcher: take its place.
    g_signal_fds[signum].store(impl_->signal_fd + 1, std::memory_order_release);
    install_forward(w->signum);
  }
}

void Backend::signal_stop(SignalSlot &slot) noexcept {
  ev_signal *w = as_signal(slot);
  if (!ev_is_active(w)) {
    ev_clear_pending(impl_->loop, w);
    return;
  }
  ev_signal_stop(impl_->loop, w);
  ++impl_->signals_stopped;
  --impl_->signals_watched;
  --impl_->signal_uses[static_cast<std::size_t>(w->signum)];
}

void Backend::set_signal_fd(int fd) noexcept {
  impl_->signal_fd = fd;
  for (std::size_t signum = 1; signum < NSIG; ++signum)
    if (impl_->signal_uses[signum] > 0) g_signal_fds[signum].store(fd + 1, std::memory_order_release);
}

bool Backend::watches_signals() const noexcept { return impl_->signals_watched > 0; }

void Backend::timer_init(TimerSlot &slot, Dispatch fn, void *owner) noexcept {
  ev_timer *w = as_timer(slot);
  ev_timer_init(w, on_slot_timer, 0., 0.);
  w->data = owner;
  slot.fn = fn;
}

void Backend::timer_start(TimerSlot &slot, std::uint64_t delay_ns) noexcept {
  timer_stop(slot);
  ev_timer *w = as_timer(slot);
  // As arm_timer(): measured from a fresh time, never early, and a huge
  // repeat so libev never stops it behind our back.
  ev_now_update(impl_->loop);
  ev_timer_set(w, static_cast<double>(delay_ns) / 1e9, 1e9);
  ev_timer_start(impl_->loop, w);
  armed_timers_.push_back(slot.armed);
}

void Backend::timer_stop(TimerSlot &slot) noexcept {
  if (slot.armed.linked()) slot.armed.unlink();
  ev_timer *w = as_timer(slot);
  if (!ev_is_active(w)) {
    ev_clear_pending(impl_->loop, w);
    return;
  }
  ev_timer_stop(impl_->loop, w);
}

}  // namespace async::ev
