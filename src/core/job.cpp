#include "core/job.hpp"

#include <async/error.h>

#include "core/executor.hpp"
#include "core/future.hpp"
#include "core/loop.hpp"
#include "util/check.hpp"

namespace async::core {

Job *Job::create(Executor &executor, Future &future, async_work_fn work, void *userdata,
                 async_destroy_fn destroy) noexcept {
  Loop &loop = executor.loop();
  // destroy runs from the ready queue whatever happens: its slot now,
  // where ASYNC_ENOMEM can still be returned.
  if (destroy && !loop.reserve_call()) return nullptr;
  Job *job = loop.pool().make<Job>(executor, future, work, userdata, destroy);
  if (!job) {
    if (destroy) loop.unreserve_call();
    return nullptr;
  }
  loop.object_added();
  int err = future.set_cancel(future_completed, job);  // a new future: pending, no hook yet
  util::check(err == 0);
  return job;
}

void Job::future_completed(async_future *, int cancelled, void *self) noexcept {
  auto *job = static_cast<Job *>(self);
  job->future_ = nullptr;
  // Not started yet: dropped. Started: it finishes, and finish() destroys
  // the value.
  std::uint8_t queued = kQueued;
  if (cancelled) job->state_.compare_exchange_strong(queued, kCancelled);
}

std::uint8_t Job::take(bool to_run) noexcept {
  std::uint8_t state = kQueued;
  if (state_.compare_exchange_strong(state, to_run ? kRunning : kReturned)) return kQueued;
  if (state == kCancelled && state_.compare_exchange_strong(state, kReturned)) return kCancelled;
  return kReturned;
}

int Job::run() noexcept {
  switch (take(true)) {
    case kQueued:
      ran_ = true;
      status_ = work_(&value_, userdata_);
      state_.store(kReturned);
      executor_.give_back(*this);
      return 0;
    case kCancelled: executor_.give_back(*this); return 1;
    default: return ASYNC_ESTATE;
  }
}

int Job::discard() noexcept {
  if (take(false) == kReturned) return ASYNC_ESTATE;
  executor_.give_back(*this);
  return 0;
}

void Job::finish() noexcept {
  Loop &loop = executor_.loop();
  if (future_ && ran_ && status_ >= 0) {
    // The value goes to the future, whose destroy call replaces the one
    // reserved at create(): given back, then taken again from the room it
    // leaves, so resolving cannot fail.
    if (destroy_) loop.unreserve_call();
    int err = future_->resolve_user(value_, destroy_, userdata_);
    util::check(err == 0);
  } else {
    if (future_) {
      if (ran_)
        future_->reject(status_);
      else
        future_->cancel();  // discarded by the executor
    }
    if (destroy_) loop.push_call(DeferredCall{nullptr, destroy_, value_, userdata_});
  }
  free_record();
}

void Job::abandon() noexcept {
  if (destroy_) executor_.loop().unreserve_call();
  free_record();
}

void Job::free_record() noexcept {
  Loop &loop = executor_.loop();
  loop.object_removed();
  loop.pool().destroy(this);
}

}  // namespace async::core
