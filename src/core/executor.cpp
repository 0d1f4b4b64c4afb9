#include "core/executor.hpp"

#include <async/error.h>

#include "core/future.hpp"
#include "core/hook.hpp"
#include "core/job.hpp"
#include "core/loop.hpp"
#include "core/loop_registry.hpp"
#include "util/alloc.hpp"

namespace async::core {

Executor *Executor::of(Loop &loop) noexcept {
  util::Owned<Executor> &slot = loop.executor();
  if (slot.get()) return slot.get();
  Executor *executor = util::make<Executor>(loop);
  if (!executor) return nullptr;
  // A check hook of the library's own: never on the registry (walk and
  // shutdown do not see it), never counted as an object, never closed.
  executor->drain_hook_ = loop.pool().make<Hook>(loop, executor, ASYNC_HOOK_CHECK);
  if (!executor->drain_hook_) {
    util::destroy(executor);
    return nullptr;
  }
  slot.reset(executor);
  return executor;
}

Executor::~Executor() {
  // With the loop: no job is out (the loop refuses to be freed before), so
  // the hook is stopped.
  if (drain_hook_) loop_.pool().destroy(drain_hook_);
  if (release_) release_(userdata_);
}

void Executor::set(async_submit_fn submit, async_release_fn release, void *userdata) noexcept {
  async_release_fn old_release = release_;
  void *old_userdata = userdata_;
  submit_ = submit;
  release_ = release;
  userdata_ = userdata;
  // Last: the release may call back in (set another executor, free the loop).
  if (old_release) old_release(old_userdata);
}

int Executor::run(Future **out, async_work_fn work, void *userdata, async_destroy_fn destroy) noexcept {
  if (!submit_) return ASYNC_ENOTSUP;
  Future *future = Future::create(loop_);
  if (!future) return ASYNC_ENOMEM;
  Job *job = Job::create(*this, *future, work, userdata, destroy);
  if (!job) {
    future->release_owner();
    return ASYNC_ENOMEM;
  }
  // Out before the submit: the executor may run the job inside it, and a
  // nested async_loop_run() there may complete it.
  job_out();
  ++submitting_;
  int err = submit_(job->c_job(), userdata_);
  --submitting_;
  if (err < 0) {
    future->release_owner();  // cancels it: its producer hook lets go of the job
    job->abandon();
    job_back();
    return err;
  }
  *out = future;
  return 0;
}

void Executor::give_back(Job &job) noexcept {
  // Read first: once the job is pushed, the loop may finish it, and then
  // the loop itself may be freed.
  Loop *loop = &loop_;
  Job *head = returned_.load(std::memory_order_relaxed);
  do {
    job.next() = head;
  } while (!returned_.compare_exchange_weak(head, &job, std::memory_order_release, std::memory_order_relaxed));
  // A push onto a non-empty stack needs no wake: the drain that takes the
  // job before it, which its pusher's wake guarantees, takes it too. Through
  // the registry, which only compares addresses: the loop may be gone.
  if (!head) loop_registry::wakeup(loop);
}

void Executor::drain(async_hook *, void *self) noexcept {
  auto *executor = static_cast<Executor *>(self);
  Job *newest_first = executor->returned_.exchange(nullptr, std::memory_order_acquire);
  Job *oldest_first = nullptr;
  while (newest_first) {
    Job *next = newest_first->next();
    newest_first->next() = oldest_first;
    oldest_first = newest_first;
    newest_first = next;
  }
  while (oldest_first) {
    Job *next = oldest_first->next();
    oldest_first->finish();
    executor->job_back();
    oldest_first = next;
  }
}

// While jobs are out the hook is active and, as an active handle, holds a
// loop reference: run(DEFAULT) sleeps until they come back.
void Executor::job_out() noexcept {
  if (out_++ == 0) drain_hook_->start(drain);
}

void Executor::job_back() noexcept {
  if (--out_ == 0) drain_hook_->stop();
}

}  // namespace async::core
