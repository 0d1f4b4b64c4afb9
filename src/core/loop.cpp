// Design notes (src/core/: the loop, handle kinds, futures, timers).
//
// Reserve, then commit. Every task that must run without a way to report
// failure (a close, a connection_made/lost, a future's completion, a
// signal delivery) has its ready-queue slot reserved by the object that
// will queue it, at a moment when ENOMEM can still be returned to the
// user: reserve_task()/reserve_tasks() at creation (Handle::create,
// Stream, Datagram, Connector, Reconnector) or when the task becomes
// possible (a future's done callback when it is added, a signal's next
// delivery), and push_reserved() later, which cannot fail. reserved_ counts the slots
// promised and not yet pushed; ready_ always has capacity for
// ready_.size() + reserved_, so call_soon() and drain_posts() reserve
// above that count rather than into it. An object that never queues its
// task gives the slot back with unreserve_task() (Handle::discard, a
// future freed with callbacks never scheduled, a signal handle closed). Any new object with a task of
// its own follows the same rule, or a push may find no room.
//
// Deferred calls. A user callback that is due inside a call into the
// library but not needed there (a zero-copy write's done, a value's destroy
// function) is queued instead, so that call runs no user code the caller
// did not ask for (docs/callbacks.md). Its two slots (ready task and call
// record) are reserved where ENOMEM can still be returned: reserve_call()
// in async_stream_write_zc() and async_future_resolve(). A queued call keeps
// ready_ non-empty, so async_loop_free() waits for it.

#include "core/loop.hpp"

#include <async/error.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>

#include "core/future.hpp"
#include "core/hook.hpp"
#include "core/loop_registry.hpp"
#include "core/timer.hpp"
#include "util/alloc.hpp"

namespace async::core {

int Loop::create(Loop **out) noexcept {
  Loop *loop = util::make<Loop>();
  if (!loop) return ASYNC_ENOMEM;
  int err = loop->backend_.open({loop, woken});
  if (!err) err = loop_registry::add(loop);
  if (err) {
    util::destroy(loop);
    return err;
  }
  loop->now_update();
  *out = loop;
  return 0;
}

Loop::~Loop() {
  mark_dead();
  util::destroy(embedding_.load(std::memory_order_relaxed));
  if (service_) service_->destroy();
  util::mem_free(read_buffer_);
  util::mem_free(datagram_buffer_);
  if (log_release_) log_release_(log_userdata_);
}

int Loop::destroy() noexcept {
  if (running_ || visiting() || objects_ > 0 || !ready_.empty()) return ASYNC_EBUSY;
  int err = loop_registry::remove(this);
  if (err) return err;
  util::destroy(this);
  return 0;
}

namespace {

// *buffer, allocated with size bytes on first use; nullptr when out of memory.
std::uint8_t *lazy_buffer(std::uint8_t **buffer, std::size_t size) noexcept {
  if (!*buffer) *buffer = static_cast<std::uint8_t *>(util::mem_alloc(size));
  return *buffer;
}

}  // namespace

bool Loop::make_read_buffer() noexcept { return lazy_buffer(&read_buffer_, kReadBufferSize) != nullptr; }

std::uint8_t *Loop::datagram_buffer() noexcept {
  return lazy_buffer(&datagram_buffer_, kDatagramSlots * kDatagramSlotSize);
}

// ---- running ----------------------------------------------------------

bool Loop::run_begin() noexcept {
  if (running_ || visiting()) return false;
  now_stale_ = true;
  running_ = true;
  if (Embedding *embedding = this->embedding()) {
    entry_checks_.fetch_and(~kEmbeddedIdle);
    embedding->run_started();
  }
  return true;
}

void Loop::run_end() noexcept {
  running_ = false;
  stopped_ = stop_requested_;
  stop_requested_ = false;
  if (Embedding *embedding = this->embedding()) {
    // What the next NOWAIT run would do at once: queued callbacks, idle
    // hooks, the resolver's work, posts not yet moved, and watcher changes
    // libev applies only inside its next poll (they may be I/O ready now).
    bool more = spinning_ || !ready_.empty() || busy_.posts_stalled || backend_.changes_pending();
    std::uint64_t deadline = backend_.next_timer_ns();
    if (!timers_.empty()) deadline = std::min(deadline, timers_.top().deadline);
    embedding->run_ended(more, deadline);
    entry_checks_.fetch_or(kEmbeddedIdle);
  }
}

int Loop::run(int mode) noexcept {
  // asyncio: stop() before run() means one non-blocking iteration.
  if (stop_requested_) mode = ASYNC_RUN_NOWAIT;
  if (!run_begin()) return ASYNC_EBUSY;
  if (mode == ASYNC_RUN_DEFAULT)
    run_default();
  else
    iterate(mode != ASYNC_RUN_NOWAIT);
  run_end();
  return alive() ? 1 : 0;
}

int Loop::run_for(std::uint64_t budget_ns) noexcept {
  if (!run_begin()) return ASYNC_EBUSY;
  budget_end_ns_ = util::saturating_add(now_ns(), budget_ns);
  timed_ = true;
  // Every iteration polls first, so I/O is served on every call however
  // much is queued; iterations go on while callbacks are queued and time
  // is left (a callback queued by one runs in the next).
  while (iterate(false) && !stop_requested_ && spinning_ && util::monotonic_ns() < budget_end_ns_) {
  }
  budget_end_ns_ = 0;
  timed_ = slow_ns_ != 0;
  bool left = !ready_.empty();
  run_end();
  return left ? 1 : 0;
}

int Loop::fork() noexcept {
  if (running_ || visiting()) return ASYNC_EBUSY;
  backend_.fork();
  // The embedding nests libev's epoll fd, which fork() just replaced.
  if (Embedding *embedding = this->embedding())
    if (int err = embedding->open()) return err;
  return service_ ? service_->after_fork() : 0;
}

void Loop::stop() noexcept { stop_requested_ = true; }

void Loop::run_until_done(async_future *future, int, void *token) noexcept {
  Loop &loop = Future::from(future)->loop();
  loop.run_until_completed_ = reinterpret_cast<std::uintptr_t>(token);
}

int Loop::run_until(Future &future) noexcept {
  if (running_ || visiting()) return ASYNC_EBUSY;
  // Returns once our callback, registered last, has run: the callbacks
  // registered before it have run by then. The token keeps a callback left
  // over from an earlier, abandoned run_until from ending this one.
  std::uint64_t token = ++run_until_token_;
  // The token travels as the callback's userdata; it is never dereferenced.
  // NOLINTNEXTLINE(performance-no-int-to-ptr)
  int err = future.add_callback(run_until_done, reinterpret_cast<void *>(static_cast<std::uintptr_t>(token)));
  if (err) return err;
  future.retain();  // a callback may free it meanwhile
  int status = ASYNC_ESTATE;
  for (;;) {
    int more = run(ASYNC_RUN_ONCE);
    if (run_until_completed_ == token) {
      status = future.status();
      break;
    }
    if (more == 0 || stopped_) break;
  }
  future.release();
  return status;
}

void Loop::now_update() noexcept {
  now_ns_ = util::monotonic_ns();
  now_stale_ = false;
}

std::int64_t Loop::timeout_ms() const noexcept {
  if (!ready_.empty() || stop_requested_ || idle_hooks_ > 0) return 0;
  if (timers_.empty()) return -1;
  std::uint64_t now = util::monotonic_ns();
  std::uint64_t deadline = timers_.top().deadline;
  if (deadline <= now) return 0;
  std::uint64_t ms = util::ns_to_ms_ceil(deadline - now);
  return ms > INT64_MAX ? INT64_MAX : static_cast<std::int64_t>(ms);
}

// ---- one iteration: idle + prepare hooks, poll, I/O, check hooks, ready
// queue snapshot, due timers --------------------------------------------

bool Loop::prepare(bool synced) noexcept {
  bool stop_before = stop_requested_;
  before_poll(synced);
  // A stop from an idle or prepare hook skips the poll and what follows,
  // as libev's ev_break from a prepare watcher did.
  return !stop_requested_ || stop_before;
}

bool Loop::iterate(bool may_block) noexcept {
  if (!prepare(false)) return false;
  // Every fd callback runs inside poll(), so after_poll() follows all of
  // them: a hot fd cannot starve the ready queue or the timers.
  backend_.poll(may_block && !spinning_);
  after_poll();
  return true;
}

void Loop::run_default() noexcept {
  // As ev_run(0) did: at least one iteration, more while referenced work
  // remains (queued callbacks hold a reference, sync_spinning).
  if (!prepare(false)) return;
  // Each iteration's after_poll() and the next one's prepare() are step().
  // Polls that may block run inside one ev_run, which leaves prepared for
  // a poll that must not block, or with the run over.
  for (run_over_ = false; !run_over_;) {
    if (!spinning_ && backend_.can_run()) {
      backend_.run(step, this);
    } else {
      backend_.poll(!spinning_);
      step(this);
    }
  }
}

bool Loop::step(void *self) noexcept {
  Loop &loop = *static_cast<Loop *>(self);
  // Tail calls both: this frame saves no registers.
  if (!loop.quiet()) return loop.full_step();
  if (!loop.ready_.empty()) return loop.ready_step();
  // after_poll() and prepare(true) reduced to what they would do here (an
  // iteration with only I/O, the usual one of a server): no user code
  // runs, so no stop can come from them.
  loop.now_stale_ = true;
  return loop.quiet_prepare();
}

inline bool Loop::quiet_prepare() noexcept {
  // sync_spinning() with no service and no idle hook.
  bool ready = !ready_.empty();
  if (ready != ready_ref_) set_ready_ref(ready);
  spinning_ = ready;
  if (!goes_on()) {
    run_over_ = true;
    return false;
  }
  // before_poll(true) with no hook, timer or service: none can stop the run.
  poll_timer_seq_ = timer_seq_;
  sync_holds();
  return !ready;
}

// Flattened: run_ready() and quiet_prepare() inline.
[[gnu::flatten]] bool Loop::ready_step() noexcept {
  now_stale_ = true;
  // No check hook, stalled post or service before it, as in after_poll().
  run_ready();
  // A callback started a timer, a hook or the service: they take their
  // full turn. The timers, all started since the poll, are not due yet.
  if (!quiet()) [[unlikely]]
    return ready_step_rest();
  return quiet_prepare();
}

bool Loop::ready_step_rest() noexcept {
  after_ready();
  return finish_step();
}

// Flattened: after_poll() and before_poll() inline, so an iteration
// costs their tests, not their calls and frames.
[[gnu::flatten]] bool Loop::full_step() noexcept {
  after_poll();
  return finish_step();
}

inline bool Loop::finish_step() noexcept {
  if (!goes_on() || !prepare(true)) {
    run_over_ = true;
    return false;
  }
  return !spinning_;
}

void Loop::before_poll(bool synced) noexcept {
  // Empty hook lists (the common case) cost a load, not a call.
  if (!hooks_[ASYNC_HOOK_IDLE].empty()) {
    Hook::run_all(*this, ASYNC_HOOK_IDLE);
    synced = false;
  }
  if (!hooks_[ASYNC_HOOK_PREPARE].empty()) {
    Hook::run_all(*this, ASYNC_HOOK_PREPARE);
    synced = false;
  }
  // Timers started from here on (I/O callbacks, check hooks, ready
  // callbacks, timer callbacks) wait for the next iteration's timer pass.
  poll_timer_seq_ = timer_seq_;
  if (!timers_.empty() || busy_.timer_armed) arm_timer();  // else nothing to arm or disarm
  if (service_) {
    service_->before_poll();
    synced = false;
  }
  // Right after after_poll(), with no hook or service run since, nothing
  // could have queued work: its sync still holds.
  if (!synced) sync_spinning();
  sync_holds();  // once per iteration, before the poll: the only place it decides
}

void Loop::after_poll() noexcept {
  // The clock is read when the iteration first needs the time; callbacks
  // after that run within the same time, as libuv's cached time.
  now_stale_ = true;
  if (!hooks_[ASYNC_HOOK_CHECK].empty()) Hook::run_all(*this, ASYNC_HOOK_CHECK);
  if (busy_.posts_stalled) drain_posts();
  if (service_) service_->after_poll();
  if (!ready_.empty()) run_ready();
  after_ready();
}

void Loop::after_ready() noexcept {
  run_due_timers();
  sync_spinning();
}

void Loop::woken(void *self) noexcept { static_cast<Loop *>(self)->drain_posts(); }

void Loop::run_ready() noexcept {
  // Only what was queued before this pass; the rest waits for the next
  // iteration (after a zero-timeout poll), as in asyncio.
  // Nothing else takes from the queue: the n tasks are there.
  std::size_t n = ready_.size();
  if (timed_) {
    run_ready_timed(n);
    return;
  }
  for (; n > 0; --n) {
    Task task = ready_.pop_known();
    ++callbacks_run_;
    task.cb(c_loop(), task.userdata);
  }
}

void Loop::run_ready_timed(std::size_t n) noexcept {
  for (; n > 0; --n) {
    ++callbacks_run_;
    if (!run_timed(ready_.pop_known())) break;  // run_for's budget is spent: the rest stays queued, in order
  }
}

bool Loop::run_timed(Task task) noexcept {
  invoke([&] { task.cb(c_loop(), task.userdata); });
  return !budget_end_ns_ || util::monotonic_ns() < budget_end_ns_;
}

void Loop::run_due_timers() noexcept {
  // Timers started after this iteration's poll (during its I/O callbacks or
  // this check, this pass included) wait for the next iteration even when
  // already due: a 0 ms timer fires on the next iteration, and one
  // re-arming itself cannot spin here.
  std::uint64_t first_new = poll_timer_seq_;
  while (!timers_.empty()) {
    TimerHeap::Entry top = timers_.top();
    if (top.seq >= first_new || top.deadline > now_ns()) break;
    top.timer->expire();
  }
}

void Loop::arm_timer() noexcept {
  if (timers_.empty()) {
    if (busy_.timer_armed) backend_.disarm_timer();
    busy_.timer_armed = false;
    return;
  }
  std::uint64_t deadline = timers_.top().deadline;
  // Armed for this deadline or an earlier one, and not gone off yet: it
  // still wakes the poll in time. (Gone off is libev's word, not the
  // iteration's clock: libev reads its clock later and may fire first.)
  if (busy_.timer_armed && deadline >= armed_deadline_ && !backend_.timer_fired()) return;
  std::uint64_t now = util::monotonic_ns();
  backend_.arm_timer(deadline > now ? deadline - now : 0);
  armed_deadline_ = deadline;
  busy_.timer_armed = true;
}

// Runs at the end of before_poll and after_poll only: work queued in
// between (I/O callbacks, posts) runs in this iteration's after_poll anyway,
// so only work that must wait for the next iteration keeps the poll short.
void Loop::sync_spinning() noexcept {
  // Queued callbacks are work: they keep run() going and the poll short.
  bool ready = !ready_.empty() || (service_ && service_->has_work());
  if (ready != ready_ref_) set_ready_ref(ready);
  spinning_ = ready || idle_hooks_ > 0;
}

void Loop::set_ready_ref(bool ready) noexcept {
  ready_ref_ = ready;
  ready ? backend_.ref() : backend_.unref();
}

// Another thread's hold reaches the count at once; the loop reference
// that lets the poll block follows here, on the loop's thread, before each
// poll (alive() discounts a reference left behind by a hold since ended).
void Loop::sync_holds() noexcept {
  bool held_now = held();
  if (held_now == hold_ref_) return;
  hold_ref_ = held_now;
  held_now ? backend_.ref() : backend_.unref();
}

int Loop::unhold() noexcept {
  long n = holds_.load(std::memory_order_relaxed);
  do {
    if (n == 0) return ASYNC_ESTATE;
  } while (!holds_.compare_exchange_weak(n, n - 1, std::memory_order_relaxed));
  if (n == 1) wake();  // a run(DEFAULT) held only by us may return now
  return 0;
}

bool Loop::is_owner_thread() const noexcept { return pthread_equal(owner_, pthread_self()) != 0; }

bool Loop::entered_checked() noexcept {
  unsigned checks = entry_checks_.load(std::memory_order_acquire);
  if (checks & kEmbeddedIdle) {
    // Once per gap between runs: the fd is readable from here on.
    entry_checks_.fetch_and(~kEmbeddedIdle);
    embedding()->notify();
  }
  return !(checks & kCheckThread) || is_owner_thread();
}

void Loop::set_thread_check(bool on) noexcept {
  if (on) {
    owner_ = pthread_self();
    entry_checks_.fetch_or(kCheckThread, std::memory_order_release);
  } else {
    entry_checks_.fetch_and(~kCheckThread, std::memory_order_release);
  }
}

int Loop::embedding_fd(int *out) noexcept {
  Embedding *embedding = this->embedding();
  if (!embedding) {
    embedding = util::make<Embedding>(backend_);
    if (!embedding) return ASYNC_ENOMEM;
    if (int err = embedding->open()) {
      util::destroy(embedding);
      return err;
    }
    backend_.track_changes();  // run_end() asks from now on
    // Posts from other threads read it from here on.
    embedding_.store(embedding, std::memory_order_release);
    if (!running_) entry_checks_.fetch_or(kEmbeddedIdle);
  } else if (embedding->fd() < 0) {
    // A loop fork could not re-create the fds: try again.
    if (int err = embedding->open()) return err;
  }
  *out = embedding->fd();
  return 0;
}

void Loop::hooks_changed(int kind, int delta) noexcept {
  busy_.hooks_started += delta;
  if (kind != ASYNC_HOOK_IDLE) return;
  idle_hooks_ += delta;
  sync_spinning();
}

// ---- queues -------------------------------------------------------------

bool Loop::reserve_call() noexcept {
  if (!calls_.reserve(calls_reserved_ + 1) || !reserve_task()) return false;
  ++calls_reserved_;
  return true;
}

void Loop::unreserve_call() noexcept {
  --calls_reserved_;
  unreserve_task();
}

void Loop::push_call(const DeferredCall &call) noexcept {
  util::check(calls_reserved_ > 0);
  --calls_reserved_;
  calls_.push(call);  // cannot fail: capacity was reserved
  push_reserved(Task{run_call, this});
}

void Loop::run_call(async_loop *, void *self) noexcept {
  // Tasks run in queue order, so this task's call is the oldest one.
  DeferredCall call = static_cast<Loop *>(self)->calls_.pop();
  if (call.release)
    call.release(call.arg);
  else
    call.destroy(call.arg, call.context);
}

int Loop::call_soon_growing(async_callback cb, void *userdata) noexcept {
  if (!ready_.reserve(reserved_ + 1)) return ASYNC_ENOMEM;
  ready_.push_into_room(Task{cb, userdata});
  return 0;
}

int Loop::post(async_callback cb, void *userdata) noexcept {
  {
    std::lock_guard<std::mutex> lock(post_mutex_);
    if (!posted_.push(Task{cb, userdata})) return ASYNC_ENOMEM;
  }
  wake();
  return 0;
}

void Loop::wake() noexcept {
  backend_.wake();
  // libev writes its own wakeup fd only while the loop blocks in its poll.
  if (Embedding *embedding = this->embedding()) embedding->notify();
}

bool Loop::has_pending_posts() noexcept {
  std::lock_guard<std::mutex> lock(post_mutex_);
  return !posted_.empty();
}

void Loop::drain_posts() noexcept {
  std::size_t stalled = 0;
  {
    std::lock_guard<std::mutex> lock(post_mutex_);
    busy_.posts_stalled = !ready_.reserve(reserved_ + posted_.size());
    if (busy_.posts_stalled)
      stalled = posted_.size();
    else
      while (!posted_.empty()) ready_.push_into_room(posted_.pop());
  }
  // Logged outside the lock: the log hook is user code and may post.
  // Retried after the next poll; posts stay queued, none is lost.
  if (stalled) log(ASYNC_LOG_ERROR, "out of memory moving %zu posted callbacks; retrying", stalled);
}

// ---- diagnostics ----------------------------------------------------------

void Loop::set_log(async_log_fn log, async_release_fn release, void *userdata) noexcept {
  if (log_release_) log_release_(log_userdata_);
  log_ = log;
  log_release_ = release;
  log_userdata_ = userdata;
}

void Loop::log(int level, const char *fmt, ...) noexcept {
  if (!log_) return;
  char message[256];
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(message, sizeof message, fmt, args);
  va_end(args);
  log_(c_loop(), level, message, log_userdata_);
}

void Loop::report_if_slow(std::uint64_t start) noexcept {
  std::uint64_t elapsed = util::monotonic_ns() - start;
  if (elapsed > slow_ns_)
    log(ASYNC_LOG_WARNING, "slow callback: %llu.%03llu ms", static_cast<unsigned long long>(elapsed / 1000000u),
        static_cast<unsigned long long>(elapsed / 1000u % 1000u));
}

int Loop::metric(std::uint64_t *out, int which) const noexcept {
  switch (which) {
    case ASYNC_METRIC_ITERATIONS: *out = backend_.iterations(); return 0;
    case ASYNC_METRIC_POLL_TIME: *out = backend_.poll_ns(); return 0;
    case ASYNC_METRIC_CALLBACKS: *out = callbacks_run_; return 0;
    default: return ASYNC_EINVAL;
  }
}

}  // namespace async::core
