// The event loop: ready queue, timer heap, hooks, posts, run modes.
#pragma once

#include <async/future.h>
#include <async/loop.h>

#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <mutex>

#include "core/embedding.hpp"
#include "core/executor.hpp"
#include "core/loop_registry.hpp"
#include "core/timer_heap.hpp"
#include "ev/ev_backend.hpp"
#include "util/block_cache.hpp"
#include "util/check.hpp"
#include "util/clock.hpp"
#include "util/list.hpp"
#include "util/owned.hpp"
#include "util/pool.hpp"
#include "util/ring.hpp"
#include "util/tagged.hpp"

namespace async::core {

class Future;

// A subsystem of a layer above core (the DNS resolver of dns/) that the
// loop drives every iteration without knowing it: that layer registers it
// on first use (set_service) and the loop destroys it with itself.
class LoopService {
 public:
  virtual void before_poll() noexcept = 0;
  // After the poll, before the ready queue runs.
  virtual void after_poll() noexcept = 0;
  // Work that after_poll() will do: the next poll must not block.
  virtual bool has_work() noexcept = 0;
  // In the child after fork(): re-creates what it shares with the parent
  // (sockets); 0 or an ASYNC_E* code.
  virtual int after_fork() noexcept = 0;
  virtual void destroy() noexcept = 0;

 protected:
  ~LoopService() = default;
};

struct Task {
  async_callback cb;
  void *userdata;
};

// A user callback the library owes but must not run inside the call that
// made it due: a zero-copy write's done (release(arg)) or a resolved
// value's destroy function (destroy(arg, context)). It runs from the ready
// queue in its own task.
struct DeferredCall {
  async_release_fn release;
  async_destroy_fn destroy;
  void *arg;
  void *context;
};

class Loop : public util::Tagged<0x4c4f4f50> {  // "LOOP"
 public:
  static int create(Loop **out) noexcept;
  // ASYNC_EBUSY while anything is attached; frees the loop on success.
  int destroy() noexcept;

  static Loop *from(async_loop *loop) noexcept { return reinterpret_cast<Loop *>(loop); }
  async_loop *c_loop() noexcept { return reinterpret_cast<async_loop *>(this); }

  // ASYNC_EBUSY when running, or inside a visit of the object lists.
  int run(int mode) noexcept;
  // NOWAIT iterations until nothing is ready or budget_ns has passed; the
  // ready queue stops where the budget ran out. 1 when callbacks are left
  // queued, else 0; ASYNC_EBUSY as run().
  int run_for(std::uint64_t budget_ns) noexcept;
  // async_loop_fork(): in the child after fork(), each owner of an fd the
  // child shares with its parent re-creates it (the backend's epoll fd and
  // wakeup eventfd, the resolver's channel and sockets); ASYNC_EBUSY as run().
  int fork() noexcept;
  int run_until(Future &future) noexcept;
  void stop() noexcept;
  // Queued callbacks and holds count even before the next sync_spinning()
  // does, and the holds' reference no longer once they have ended.
  bool alive() const noexcept { return backend_.refs() > (hold_ref_ ? 1 : 0) || !ready_.empty() || held(); }

  // The iteration's time, read from the clock at its first use after the
  // poll (or the start of a run) and cached for the rest of the iteration:
  // an iteration that needs no time (no timer due to be checked, no
  // async_loop_now()) reads no clock.
  std::uint64_t now_ns() noexcept {
    if (now_stale_) now_update();
    return now_ns_;
  }
  void now_update() noexcept;
  std::int64_t timeout_ms() const noexcept;

  int call_soon(async_callback cb, void *userdata) noexcept {
    // Inline, and growing is a separate call, so this path saves no registers.
    if (!ready_.has_room(reserved_ + 1)) return call_soon_growing(cb, userdata);
    ready_.push_into_room(Task{cb, userdata});
    return 0;
  }
  // Thread-safe part of async_loop_post; the caller proved the loop is live.
  int post(async_callback cb, void *userdata) noexcept;
  // Thread-safe, as post().
  void wake() noexcept;
  bool has_pending_posts() noexcept;

  // Objects that must be able to queue a task without failing reserve a
  // slot in the ready queue up front (at creation, where ENOMEM can still
  // be reported) and later push into it.
  bool reserve_task() noexcept { return reserve_tasks(1); }
  void unreserve_task(std::size_t n = 1) noexcept { reserved_ -= n; }
  // n slots at once, or none (false when out of memory). Inline, as
  // push_reserved(): a stream's open and end take both.
  bool reserve_tasks(std::size_t n) noexcept {
    if (!ready_.reserve(reserved_ + n)) return false;
    reserved_ += n;
    return true;
  }
  void push_reserved(Task task) noexcept {
    util::check(reserved_ > 0);  // else the push below could need to grow, and fail
    --reserved_;
    ready_.push_into_room(task);  // capacity was reserved
  }
  // The same for a deferred call: a ready-queue slot and a record slot
  // reserved together (false when out of memory), then pushed or given back.
  bool reserve_call() noexcept;
  void unreserve_call() noexcept;
  void push_call(const DeferredCall &call) noexcept;

  // A transport (stream, datagram) begins: it counts as a loop object,
  // keeps the loop running, and made (its connection_made task) takes one
  // of the two slots it reserved.
  void transport_opened(async_callback made, void *transport) noexcept {
    object_added();
    backend_.ref();
    push_reserved(Task{made, transport});
  }
  // ... and ends, after its connection_lost and release: its fd is closed
  // (-1 for a layered stream: a no-op). Inline, as transport_opened().
  void transport_closed(int fd) noexcept {
    ::close(fd);
    object_removed();
    backend_.unref();
  }

  void set_log(async_log_fn log, async_release_fn release, void *userdata) noexcept;
  void set_slow_callback(std::uint64_t threshold_ms) noexcept {
    slow_ns_ = util::ms_to_ns(threshold_ms);
    timed_ = slow_ns_ || budget_end_ns_;
  }
  void log(int level, const char *fmt, ...) noexcept __attribute__((format(printf, 3, 4)));
  int metric(std::uint64_t *out, int which) const noexcept;

  // Whether invoke() times callbacks (the slow-callback report is on).
  bool times_callbacks() const noexcept { return slow_ns_ != 0; }
  // Runs a user callback, timing it when the slow-callback report is on.
  template <class F>
  void invoke(F &&call) noexcept {
    if (!slow_ns_) {
      call();
      return;
    }
    std::uint64_t start = util::monotonic_ns();
    call();
    report_if_slow(start);
  }

  ev::Backend &backend() noexcept { return backend_; }
  // The fd of async_loop_fd(), its Embedding created on first use: 0,
  // ASYNC_ENOTSUP, ASYNC_EMFILE or ASYNC_ENOMEM.
  int embedding_fd(int *out) noexcept;
  // The embedding's fds, nullptr until async_loop_fd() (for a loop fork:
  // Embedding::open() re-creates them).
  Embedding *embedding() noexcept { return embedding_.load(std::memory_order_acquire); }
  // The loop's one service (the resolver), nullptr until registered.
  LoopService *service() noexcept { return service_; }
  void set_service(LoopService *service) noexcept {
    service_ = service;
    busy_.has_service = service != nullptr;
  }

  // The read buffer every stream of the loop reads into (streams hold no
  // buffer while idle): allocated by the first ensure_read_buffer() (false
  // when out of memory), which every stream on an fd calls when made.
  static constexpr std::size_t kReadBufferSize = std::size_t{64} * 1024;
  bool ensure_read_buffer() noexcept { return read_buffer_ || make_read_buffer(); }
  std::uint8_t *read_buffer() const noexcept { return read_buffer_; }
  // The block every datagram transport of the loop receives into, one
  // datagram per slot (recvmmsg); allocated on first use, nullptr when out
  // of memory. A slot holds any UDP datagram (at most 65,527 bytes).
  static constexpr std::size_t kDatagramSlots = 16;
  static constexpr std::size_t kDatagramSlotSize = std::size_t{64} * 1024;
  std::uint8_t *datagram_buffer() noexcept;
  // The memory of the loop's ended streams, for its next ones (a stream
  // retained past its end frees its own, possibly after the loop).
  util::BlockCache &stream_blocks() noexcept { return stream_blocks_; }
  TimerHeap &timers() noexcept { return timers_; }
  std::uint64_t next_timer_seq() noexcept { return timer_seq_++; }
  util::List &hooks(int kind) noexcept { return hooks_[kind]; }
  // A hook of kind started (+1) or stopped (-1).
  void hooks_changed(int kind, int delta) noexcept;

  // Where the loop's handles, streams and futures live (util/pool.hpp).
  util::Pool &pool() noexcept { return pool_; }

  void object_added() noexcept { ++objects_; }
  void object_removed() noexcept { --objects_; }

  // The objects a user holds, one list per async_object_kind, for
  // async_loop_walk() and async_loop_shutdown() (net/loop_objects.cpp). Each
  // object links itself while the user may hold it; internal ones (a
  // combinator's timer, a connector's lookups) stay off. A server's
  // accepted streams are on its own list instead, reached through it.
  static constexpr int kObjectKinds = ASYNC_OBJECT_RECONNECTOR + 1;
  util::List &registry(int kind) noexcept { return registry_[kind]; }
  // Calls fn(node) for every node of list, those linked meanwhile
  // included; fn may unlink any node. A cursor node keeps the place, so
  // visits nest (user code inside one may start another): each skips the
  // cursors of the others. At most kMaxVisits at once (may_visit() says
  // whether n more fit); the loop cannot run meanwhile.
  static constexpr int kMaxVisits = 8;
  bool may_visit(int n) const noexcept { return visits_ + n <= kMaxVisits; }
  template <class F>
  void visit(util::List &list, F &&fn) noexcept;
  bool visiting() const noexcept { return visits_ > 0; }

  void *userdata() const noexcept { return userdata_; }
  void set_userdata(void *userdata) noexcept { userdata_ = userdata; }

  // The opt-in thread check (async_loop_set_thread_check): the caller
  // becomes the owner when on = true. One load and a branch when off.
  void set_thread_check(bool on) noexcept;
  bool on_owner_thread() const noexcept {
    return !(entry_checks_.load(std::memory_order_acquire) & kCheckThread) || is_owner_thread();
  }
  // As on_owner_thread(), for a call that may change what the loop has to
  // do: between two runs of an embedded loop it makes the host's fd
  // readable, so no change (a watcher libev applies only inside its next
  // poll, a timer, a queued callback) waits unseen (libuv#1565). Still one
  // load and a branch while neither the check nor an embedding is on.
  // Relaxed: a check found on is read again by entered_checked(), with
  // acquire.
  bool entered() noexcept { return entry_checks_.load(std::memory_order_relaxed) == 0 || entered_checked(); }

  // Holds from any thread (async_loop_hold): they keep run(DEFAULT) going.
  // Called under the loop registry's lock, so the loop cannot be freed
  // meanwhile; unhold() wakes the loop when the count drops to 0.
  void hold() noexcept { holds_.fetch_add(1, std::memory_order_relaxed); }
  int unhold() noexcept;
  bool held() const noexcept { return holds_.load(std::memory_order_relaxed) > 0; }

  // Use create() and destroy(); public only for util::make/destroy.
  Loop() = default;
  ~Loop();

 private:
  // One iteration; false when a prepare or idle hook stopped the loop
  // (the poll and what follows it are skipped).
  bool iterate(bool may_block) noexcept;
  // run(DEFAULT)'s iterations (step: one of them inside ev::Backend::run).
  void run_default() noexcept;
  static bool step(void *self) noexcept;
  // step() of an iteration that is not quiet().
  [[gnu::noinline]] bool full_step() noexcept;
  // step() of a quiet() iteration with callbacks queued (a server's
  // connection_made and connection_lost): after_poll() and prepare(true)
  // reduced to the ready queue's pass.
  [[gnu::noinline]] bool ready_step() noexcept;
  // Nothing for after_poll() and before_poll() to do but the ready queue
  // and their bookkeeping: no hook, service, timer or stalled post.
  bool quiet() const noexcept {
    std::uint64_t busy;
    std::memcpy(&busy, &busy_, sizeof busy);  // one load for the four
    return busy == 0 && timers_.empty();
  }
  // The end of a quiet() iteration's step: sync_spinning(), the run's
  // test and prepare(true) reduced to what they do with no hook, service
  // or timer.
  bool quiet_prepare() noexcept;
  // The end of a full step, from after_poll()'s timers on.
  bool finish_step() noexcept;
  // ready_step() past its callbacks when they made the iteration not
  // quiet(): out of line, so the usual step keeps few registers.
  [[gnu::noinline]] bool ready_step_rest() noexcept;
  // before_poll(synced); false when a prepare or idle hook stopped the loop.
  bool prepare(bool synced) noexcept;
  // Whether run(DEFAULT) goes on after an iteration.
  bool goes_on() const noexcept { return (backend_.alive() || held()) && !stop_requested_; }
  // synced: right after after_poll() (its sync_spinning() still holds
  // unless a hook or the service runs).
  void before_poll(bool synced) noexcept;
  void after_poll() noexcept;
  // after_poll() past the ready queue: due timers, sync_spinning().
  void after_ready() noexcept;
  static void woken(void *self) noexcept;
  static void run_until_done(async_future *future, int status, void *token) noexcept;
  static void run_call(async_loop *loop, void *self) noexcept;

  [[gnu::noinline, gnu::cold]] int call_soon_growing(async_callback cb, void *userdata) noexcept;
  [[gnu::noinline, gnu::cold]] bool make_read_buffer() noexcept;
  void drain_posts() noexcept;
  void run_ready() noexcept;
  // Out of line, so the pass keeps few registers and tests nothing per
  // task while the report and run_for() are off: the pass of n tasks when
  // they are on, and one task of it (false when run_for()'s budget is spent).
  [[gnu::noinline]] void run_ready_timed(std::size_t n) noexcept;
  bool run_timed(Task task) noexcept;
  void run_due_timers() noexcept;
  void arm_timer() noexcept;
  void sync_spinning() noexcept;
  // The queued callbacks' loop reference taken (true) or dropped: out of
  // line, so sync_spinning() stays small enough to inline.
  [[gnu::noinline]] void set_ready_ref(bool ready) noexcept;
  void sync_holds() noexcept;
  // Out of line and cold: entry points inline on_owner_thread(), and with
  // the check off (the usual case) they need no call, so no saved registers.
  [[gnu::cold, gnu::noinline]] bool is_owner_thread() const noexcept;
  // entered() once a check is on. Out of line and cold.
  [[gnu::cold, gnu::noinline]] bool entered_checked() noexcept;
  // What run() and run_for() share around their iterations.
  bool run_begin() noexcept;
  void run_end() noexcept;
  void report_if_slow(std::uint64_t start) noexcept;

  // First, so destroyed last: the members below may still free records.
  util::Pool pool_;
  ev::Backend backend_;
  util::Ring<Task> ready_;
  std::size_t reserved_ = 0;
  // Deferred calls, one ready task each (run_call pops the oldest); room
  // for calls_.size() + calls_reserved_.
  util::Ring<DeferredCall> calls_;
  std::size_t calls_reserved_ = 0;
  TimerHeap timers_;
  util::List hooks_[3];
  std::uint64_t now_ns_ = 0;
  bool now_stale_ = false;  // now_ns_ is from before the last poll or run
  std::uint64_t timer_seq_ = 0;
  std::uint64_t poll_timer_seq_ = 0;  // timer_seq_ when this iteration polled
  std::uint64_t armed_deadline_ = 0;
  bool spinning_ = false;  // the next poll must not block
  bool running_ = false;
  bool run_over_ = false;  // step() ended run_default()
  bool ready_ref_ = false;
  bool stop_requested_ = false;
  bool stopped_ = false;  // the last run ended through stop()
  int idle_hooks_ = 0;
  // What makes an iteration not quiet() besides timers, side by side so
  // that quiet() tests them with one load.
  struct Busy {
    std::int32_t hooks_started = 0;  // of every kind
    bool posts_stalled = false;
    bool timer_armed = false;
    bool has_service = false;
    bool unused = false;  // every byte defined: the word is compared whole
  };
  static_assert(sizeof(Busy) == sizeof(std::uint64_t));
  Busy busy_;
  std::size_t objects_ = 0;  // handles (closing ones too) and live futures
  util::List registry_[kObjectKinds];
  // The cursors of the visits in progress, in the loop rather than on the
  // stack: a node is a cursor when it lies in this array.
  util::ListNode cursors_[kMaxVisits];
  int visits_ = 0;
  void *userdata_ = nullptr;
  // Bits of what entered() must look at: the thread check, and an
  // embedded loop between runs.
  static constexpr unsigned kCheckThread = 1;
  static constexpr unsigned kEmbeddedIdle = 2;
  std::atomic<unsigned> entry_checks_{0};
  std::atomic<Embedding *> embedding_{nullptr};
  // run_for(): when its budget ends (monotonic ns), 0 outside run_for.
  std::uint64_t budget_end_ns_ = 0;
  bool timed_ = false;  // slow_ns_ or budget_end_ns_: run_ready() times tasks
  pthread_t owner_{};
  std::atomic<long> holds_{0};
  bool hold_ref_ = false;  // the holds' loop reference
  std::uint64_t callbacks_run_ = 0;
  std::uint64_t slow_ns_ = 0;
  std::uint64_t run_until_token_ = 0;
  std::uint64_t run_until_completed_ = 0;

  async_log_fn log_ = nullptr;
  async_release_fn log_release_ = nullptr;
  void *log_userdata_ = nullptr;

  LoopService *service_ = nullptr;
  std::uint8_t *read_buffer_ = nullptr;
  std::uint8_t *datagram_buffer_ = nullptr;
  util::BlockCache stream_blocks_;

  std::mutex post_mutex_;
  util::Ring<Task> posted_;

 public:
  // The executor hook (core/executor.hpp): made on first use, destroyed
  // with the loop.
  util::Owned<Executor> &executor() noexcept { return executor_; }

 private:
  util::Owned<Executor> executor_;
};

template <class F>
void Loop::visit(util::List &list, F &&fn) noexcept {
  util::check(visits_ < kMaxVisits);
  util::ListNode &cursor = cursors_[visits_++];
  auto is_cursor = [this](const util::ListNode *node) {
    auto at = reinterpret_cast<std::uintptr_t>(node);
    return at >= reinterpret_cast<std::uintptr_t>(cursors_) &&
           at < reinterpret_cast<std::uintptr_t>(cursors_ + kMaxVisits);
  };
  list.insert_after(*list.end(), cursor);
  while (cursor.next != list.end()) {
    util::ListNode *node = cursor.next;
    cursor.unlink();
    list.insert_after(*node, cursor);
    if (!is_cursor(node)) fn(node);
  }
  cursor.unlink();
  --visits_;
}

}  // namespace async::core
