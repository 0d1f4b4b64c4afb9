#include "net/queue.hpp"

#include <async/error.h>

#include "core/future.hpp"
#include "core/loop.hpp"
#include "core/loop_registry.hpp"
#include "core/timer.hpp"
#include "net/queue_binding.hpp"
#include "util/alloc.hpp"

namespace async::net {

Queue *Queue::create(Loop &loop) noexcept {
  core::Timer *deadline = core::Handle::create<core::Timer>(loop, nullptr);
  if (!deadline) return nullptr;
  deadline->make_internal();
  Queue *q = util::make<Queue>(loop, *deadline);
  if (!q) {
    core::Handle::discard(deadline);
    return nullptr;
  }
  deadline->set_userdata(q);
  loop.object_added();
  return q;
}

Queue::~Queue() {
  mark_dead();
  core::Handle::discard(&deadline_);
  loop_.object_removed();
}

int Queue::free() noexcept {
  destroy_delivered();
  if (polling_ || !bindings_.empty() || !retired_.empty()) return ASYNC_EBUSY;
  util::destroy(this);
  return 0;
}

// ---- records ------------------------------------------------------------------

bool Queue::reserve_final() noexcept {
  if (!ring_.reserve(finals_ + 1)) return false;
  ++finals_;
  return true;
}

bool Queue::push(const async_event &event) noexcept {
  // Room for every final record owed stays free whatever else comes.
  if (!ring_.reserve(finals_ + 1)) return false;
  ring_.push_into_room(event);
  ++pushed_;
  return true;
}

void Queue::push_final(const async_event &event) noexcept {
  --finals_;
  ring_.push_into_room(event);  // reserved by reserve_final()
  ++pushed_;
}

Binding *Queue::bind(std::uint64_t token) noexcept {
  if (!reserve_final()) return nullptr;
  Binding *b = util::make<Binding>(*this, token);
  if (!b) {
    forget_final();
    return nullptr;
  }
  bindings_.push_back(b->node_);
  return b;
}

Binding *Queue::binding_at(const void *p) noexcept {
  if (!p) return nullptr;
  for (util::ListNode *n = bindings_.front(); n != bindings_.end(); n = n->next) {
    Binding *b = Binding::from_node(n);
    if (b == p) return b;
  }
  return nullptr;
}

void Queue::retire(Binding &binding) noexcept {
  binding.node_.unlink();
  binding.final_seq_ = pushed_ - 1;
  retired_.push(&binding);
}

void Queue::destroy_delivered() noexcept {
  while (!retired_.empty() && retired_.front()->final_seq_ < delivered_) util::destroy(retired_.pop());
}

int Queue::watch(Future &future, std::uint64_t token) noexcept {
  if (&future.loop() != &loop_) return ASYNC_EINVAL;
  Binding *b = bind(token);
  if (!b) return ASYNC_ENOMEM;
  b->take(Binding::Role::kFuture);
  if (int err = future.add_callback(Binding::on_future, b)) {
    forget_final();
    util::destroy(b);
    return err;
  }
  return 0;
}

// ---- posts ----------------------------------------------------------------------

int Queue::post(std::uint64_t token) noexcept {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(post_mutex_);
    if (!posted_.push(token)) return ASYNC_ENOMEM;
    wake = !wake_sent_;
    wake_sent_ = true;
  }
  // One wakeup per batch of posts: the loop's thread takes them all.
  return wake ? core::loop_registry::wakeup(loop_.c_loop()) : 0;
}

void Queue::take_posts() noexcept {
  std::lock_guard<std::mutex> lock(post_mutex_);
  // What finds no room (out of memory) stays posted for the next poll.
  while (!posted_.empty() && ring_.reserve(finals_ + 1)) {
    push(async_event{posted_.pop(), ASYNC_EVENT_POST, 0, nullptr, nullptr, 0});
  }
  wake_sent_ = false;
}

// ---- poll -----------------------------------------------------------------------

void Queue::on_deadline(async_timer *, void *self) noexcept { static_cast<Queue *>(self)->timed_out_ = true; }

int Queue::wait(std::int64_t timeout_ms) noexcept {
  if (timeout_ms == 0) {
    int r = loop_.run(ASYNC_RUN_NOWAIT);
    take_posts();
    return r < 0 ? r : 0;
  }
  // A referenced deadline timer (or a hold, to wait without end) keeps
  // each ONCE iteration blocking until something happens.
  timed_out_ = false;
  if (timeout_ms > 0) {
    if (int err = deadline_.start(static_cast<std::uint64_t>(timeout_ms), 0, on_deadline)) return err;
  } else {
    loop_.hold();
  }
  int r = 0;
  while (ring_.empty() && !timed_out_) {
    r = loop_.run(ASYNC_RUN_ONCE);
    take_posts();
    if (r < 0) break;
  }
  if (timeout_ms > 0)
    deadline_.stop();
  else
    loop_.unhold();
  return r < 0 ? r : 0;
}

int Queue::poll(async_event *out, std::size_t capacity, std::int64_t timeout_ms) noexcept {
  if (polling_) return ASYNC_EBUSY;
  polling_ = true;
  destroy_delivered();
  take_posts();
  int err = ring_.empty() ? wait(timeout_ms) : 0;
  polling_ = false;
  if (err < 0) return err;
  std::size_t n = 0;
  while (n < capacity && !ring_.empty()) out[n++] = ring_.pop();
  delivered_ += n;
  return static_cast<int>(n);
}

}  // namespace async::net
