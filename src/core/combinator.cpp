#include "core/combinator.hpp"

#include <async/error.h>

#include "core/future.hpp"
#include "core/handle.hpp"
#include "core/loop.hpp"
#include "core/timer.hpp"
#include "util/alloc.hpp"

namespace async::core {

// ---- all / any -------------------------------------------------------------

Gather::Gather(Future &result, Mode mode, std::size_t count) noexcept : result_(result), mode_(mode), count_(count) {
  result_.retain();
}

Gather::~Gather() {
  for (std::size_t i = 0; i < count_; ++i) inputs_[i]->release();
  util::mem_free(inputs_);
  result_.release();
}

int Gather::create(Future **out, Loop &loop, async_future *const *inputs, std::size_t count, Mode mode) noexcept {
  Future *result = Future::create(loop);
  if (!result) return ASYNC_ENOMEM;
  if (count == 0) {
    result->resolve(nullptr, nullptr, nullptr);
    *out = result;
    return 0;
  }
  Gather *g = util::make<Gather>(*result, mode, count);
  // An array of pointers: sizeof(T *) is meant.
  // NOLINTNEXTLINE(bugprone-sizeof-expression)
  auto **held = static_cast<Future **>(util::mem_alloc(count * sizeof(Future *)));
  // One reserved callback per input, so registering cannot fail half-way.
  bool ok = g && held;
  if (g) g->count_ = 0;  // nothing retained yet
  for (std::size_t i = 0; ok && i < count; ++i) {
    held[i] = Future::from(inputs[i]);
    ok = held[i]->add_callback(on_input, g) == 0;
    if (ok) {
      held[i]->retain();
      g->inputs_ = held;
      g->count_ = i + 1;
    }
  }
  if (!ok) {
    // Inputs that got our callback will call it; let it see a dead result.
    if (g && g->count_ > 0) {
      g->result_.cancel();
      result->release_owner();
      return ASYNC_ENOMEM;
    }
    util::mem_free(held);
    util::destroy(g);
    result->release_owner();
    return ASYNC_ENOMEM;
  }
  result->set_cancel(on_result_cancel, g);
  *out = result;
  return 0;
}

void Gather::on_input(async_future *input, int status, void *self) noexcept {
  auto *g = static_cast<Gather *>(self);
  Future &result = g->result_;
  if (result.pending()) {
    if (g->mode_ == Mode::kAny)
      result.resolve(input, nullptr, nullptr);
    else if (status != 0)
      result.reject(status);
    else if (g->finished_ + 1 == g->count_)
      result.resolve(nullptr, nullptr, nullptr);
  }
  if (++g->finished_ == g->count_) util::destroy(g);
}

void Gather::on_result_cancel(async_future *, int cancelled, void *self) noexcept {
  if (!cancelled) return;
  auto *g = static_cast<Gather *>(self);
  for (std::size_t i = 0; i < g->count_; ++i) g->inputs_[i]->cancel();
}

// ---- timeout ---------------------------------------------------------------

TimeoutWait::TimeoutWait(Future &result, Future &input, Timer &timer) noexcept
    : result_(result), input_(input), timer_(timer) {
  result_.retain();
  input_.retain();
}

TimeoutWait::~TimeoutWait() {
  timer_.close(nullptr);
  input_.release();
  result_.release();
}

int TimeoutWait::create(Future **out, Future &input, std::uint64_t timeout_ms) noexcept {
  Loop &loop = input.loop();
  Future *result = Future::create(loop);
  Timer *timer = result ? Handle::create<Timer>(loop, nullptr) : nullptr;
  if (timer) timer->make_internal();
  TimeoutWait *w = timer ? util::make<TimeoutWait>(*result, input, *timer) : nullptr;
  int err = w ? input.add_callback(on_input, w) : ASYNC_ENOMEM;
  if (!err) {
    timer->set_userdata(w);
    err = timer->start(timeout_ms, 0, on_timer);
    if (err) {
      // The input callback is registered: it will clean up.
      result->cancel();
      result->release_owner();
      return err;
    }
  }
  if (err) {
    if (w)
      util::destroy(w);  // closes the timer
    else if (timer)
      timer->close(nullptr);
    if (result) result->release_owner();
    return err;
  }
  result->set_cancel(on_result_cancel, w);
  *out = result;
  return 0;
}

void TimeoutWait::on_input(async_future *, int status, void *self) noexcept {
  auto *w = static_cast<TimeoutWait *>(self);
  Future &result = w->result_;
  if (result.pending()) {
    if (status == 0)
      result.resolve(w->input_.value(), nullptr, nullptr);
    else if (status == ASYNC_ECANCELED && w->input_.state() == ASYNC_FUTURE_CANCELLED)
      result.cancel();
    else
      result.reject(status);
  }
  util::destroy(w);
}

void TimeoutWait::on_timer(async_timer *, void *self) noexcept {
  auto *w = static_cast<TimeoutWait *>(self);
  // An input that completed before the deadline wins even if its callback
  // (on_input, already queued) has not run yet (asyncio.wait_for checks
  // fut.done() too); cancelling it here would be a no-op anyway.
  if (!w->result_.pending() || !w->input_.pending()) return;
  w->result_.reject(ASYNC_ETIMEDOUT);
  w->input_.cancel();  // its callback (on_input) cleans up
}

void TimeoutWait::on_result_cancel(async_future *, int cancelled, void *self) noexcept {
  if (cancelled) static_cast<TimeoutWait *>(self)->input_.cancel();
}

}  // namespace async::core
