// The completion queue (async/queue.h): records the loop produces for
// bound objects, drained in batches by async_queue_poll. Bindings
// (net/queue_binding.hpp) produce the records; the queue owns the ring,
// the room it keeps for the final records it owes, and the posts from
// other threads.
#pragma once

#include <async/queue.h>

#include <cstddef>
#include <cstdint>
#include <mutex>

#include "net/core_names.hpp"
#include "util/fifo.hpp"
#include "util/list.hpp"
#include "util/ring.hpp"
#include "util/tagged.hpp"

namespace async::core {
class Timer;
}

namespace async::net {

class Binding;

class Queue : public util::Tagged<0x51554555> {  // "QUEU"
 public:
  static Queue *create(Loop &loop) noexcept;
  // ASYNC_EBUSY while a final record is owed or unpolled, or inside poll.
  int free() noexcept;
  static Queue *from(async_queue *q) noexcept { return reinterpret_cast<Queue *>(q); }
  async_queue *c_queue() noexcept { return reinterpret_cast<async_queue *>(this); }
  Loop &loop() const noexcept { return loop_; }

  int poll(async_event *out, std::size_t capacity, std::int64_t timeout_ms) noexcept;
  // Any thread.
  int post(std::uint64_t token) noexcept;
  int watch(Future &future, std::uint64_t token) noexcept;

  // A new binding, its final record's room reserved; nullptr when out of memory.
  Binding *bind(std::uint64_t token) noexcept;
  // Whether p is one of the live bindings (compares addresses only).
  Binding *binding_at(const void *p) noexcept;

  // For bindings: a record that is not final (false when no room could be
  // made); the final one, whose room was reserved.
  bool push(const async_event &event) noexcept;
  void push_final(const async_event &event) noexcept;
  // A binding whose final record was pushed: its memory (the bytes and the
  // stream its records point to) lives until that record was polled.
  void retire(Binding &binding) noexcept;
  // Gives back the room of a final record that will never come.
  void forget_final() noexcept { --finals_; }
  std::uint64_t pushed() const noexcept { return pushed_; }

  // Use create(); public only for util::make/destroy.
  Queue(Loop &loop, core::Timer &deadline) noexcept : loop_(loop), deadline_(deadline) {}
  ~Queue();

 private:
  static void on_deadline(async_timer *timer, void *self) noexcept;
  bool reserve_final() noexcept;
  void take_posts() noexcept;
  void destroy_delivered() noexcept;
  int wait(std::int64_t timeout_ms) noexcept;

  Loop &loop_;
  core::Timer &deadline_;  // internal: bounds a poll's wait
  util::Ring<async_event> ring_;
  std::size_t finals_ = 0;       // final records owed: room kept for each
  std::uint64_t pushed_ = 0;     // records pushed since creation
  std::uint64_t delivered_ = 0;  // records polled since creation
  util::List bindings_;          // live (final record not pushed)
  util::Fifo<Binding> retired_;  // final pushed, in push order
  bool polling_ = false;
  bool timed_out_ = false;

  std::mutex post_mutex_;
  util::Ring<std::uint64_t> posted_;  // guarded by post_mutex_
  bool wake_sent_ = false;            // guarded by post_mutex_
};

}  // namespace async::net
