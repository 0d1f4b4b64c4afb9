// The event loop: ready queue, timer heap, hooks, posts, run modes.
#pragma once

#include <async/future.h>
#include <async/loop.h>

#include <cstdint>
#include <mutex>

#include "core/loop_registry.hpp"
#include "core/timer_heap.hpp"
#include "ev/ev_backend.hpp"
#include "util/clock.hpp"
#include "util/list.hpp"
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
  virtual void destroy() noexcept = 0;

 protected:
  ~LoopService() = default;
};

struct Task {
  async_callback cb;
  void *userdata;
};

class Loop : public util::Tagged<0x4c4f4f50> {  // "LOOP"
 public:
  static int create(Loop **out) noexcept;
  // ASYNC_EBUSY while anything is attached; frees the loop on success.
  int destroy() noexcept;

  static Loop *from(async_loop *loop) noexcept { return reinterpret_cast<Loop *>(loop); }
  async_loop *c_loop() noexcept { return reinterpret_cast<async_loop *>(this); }

  int run(int mode) noexcept;
  int run_until(Future &future) noexcept;
  void stop() noexcept;
  // Queued callbacks count even before the next sync_spinning() does.
  bool alive() const noexcept { return backend_.alive() || !ready_.empty(); }

  std::uint64_t now_ns() const noexcept { return now_ns_; }
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
  void wake() noexcept { backend_.wake(); }
  bool has_pending_posts() noexcept;

  // Objects that must be able to queue a task without failing reserve a
  // slot in the ready queue up front (at creation, where ENOMEM can still
  // be reported) and later push into it.
  bool reserve_task() noexcept { return reserve_tasks(1); }
  void unreserve_task(std::size_t n = 1) noexcept { reserved_ -= n; }
  // n slots at once, or none (false when out of memory).
  bool reserve_tasks(std::size_t n) noexcept;
  void push_reserved(Task task) noexcept;

  // A transport (stream, datagram) begins: it counts as a loop object,
  // keeps the loop running, and made (its connection_made task) takes one
  // of the two slots it reserved.
  void transport_opened(async_callback made, void *transport) noexcept;
  // ... and ends, after its connection_lost and release: its fd is closed.
  void transport_closed(int fd) noexcept;

  void set_log(async_log_fn log, async_release_fn release, void *userdata) noexcept;
  void set_slow_callback(std::uint64_t threshold_ms) noexcept { slow_ns_ = util::ms_to_ns(threshold_ms); }
  void log(int level, const char *fmt, ...) noexcept __attribute__((format(printf, 3, 4)));
  int metric(std::uint64_t *out, int which) const noexcept;

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
  // The loop's one service (the resolver), nullptr until registered.
  LoopService *service() noexcept { return service_; }
  void set_service(LoopService *service) noexcept { service_ = service; }

  // The read buffer every stream of the loop reads into (streams hold no
  // buffer while idle); allocated on first use, nullptr when out of memory.
  static constexpr std::size_t kReadBufferSize = std::size_t{64} * 1024;
  std::uint8_t *read_buffer() noexcept;
  // The block every datagram transport of the loop receives into, one
  // datagram per slot (recvmmsg); allocated on first use, nullptr when out
  // of memory. A slot holds any UDP datagram (at most 65,527 bytes).
  static constexpr std::size_t kDatagramSlots = 16;
  static constexpr std::size_t kDatagramSlotSize = std::size_t{64} * 1024;
  std::uint8_t *datagram_buffer() noexcept;
  TimerHeap &timers() noexcept { return timers_; }
  std::uint64_t next_timer_seq() noexcept { return timer_seq_++; }
  util::List &hooks(int kind) noexcept { return hooks_[kind]; }
  void idle_hooks_changed(int delta) noexcept;

  // Where the loop's handles, streams and futures live (util/pool.hpp).
  util::Pool &pool() noexcept { return pool_; }

  void object_added() noexcept { ++objects_; }
  void object_removed() noexcept { --objects_; }

  // Use create() and destroy(); public only for util::make/destroy.
  Loop() = default;
  ~Loop();

 private:
  // One iteration; false when a prepare or idle hook stopped the loop
  // (the poll and what follows it are skipped).
  bool iterate(bool may_block) noexcept;
  void before_poll() noexcept;
  // polled_at: when the poll returned, the iteration's time.
  void after_poll(std::uint64_t polled_at) noexcept;
  static void woken(void *self) noexcept;
  static void run_until_done(async_future *future, int status, void *token) noexcept;

  [[gnu::noinline, gnu::cold]] int call_soon_growing(async_callback cb, void *userdata) noexcept;
  void drain_posts() noexcept;
  void run_ready() noexcept;
  // Out of line, so the pass keeps few registers while the report is off.
  [[gnu::noinline]] void run_timed(Task task) noexcept;
  void run_due_timers() noexcept;
  void arm_timer() noexcept;
  void sync_spinning() noexcept;
  void report_if_slow(std::uint64_t start) noexcept;

  // First, so destroyed last: the members below may still free records.
  util::Pool pool_;
  ev::Backend backend_;
  util::Ring<Task> ready_;
  std::size_t reserved_ = 0;
  TimerHeap timers_;
  util::List hooks_[3];
  std::uint64_t now_ns_ = 0;
  std::uint64_t timer_seq_ = 0;
  std::uint64_t poll_timer_seq_ = 0;  // timer_seq_ when this iteration polled
  std::uint64_t armed_deadline_ = 0;
  bool timer_armed_ = false;
  bool spinning_ = false;  // the next poll must not block
  bool running_ = false;
  bool ready_ref_ = false;
  bool stop_requested_ = false;
  bool stopped_ = false;  // the last run ended through stop()
  bool posts_stalled_ = false;
  int idle_hooks_ = 0;
  std::size_t objects_ = 0;  // handles (closing ones too) and live futures
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

  std::mutex post_mutex_;
  util::Ring<Task> posted_;
};

}  // namespace async::core
