// One async_run_in_executor() call (async/executor.h): the work, its
// future and its result, travelling from the loop to an executor thread
// and back.
#pragma once

#include <async/executor.h>

#include <atomic>
#include <cstdint>

#include "util/tagged.hpp"

namespace async::core {

class Executor;
class Future;

class Job : public util::Tagged<0x4a4f4220> {  // "JOB "
 public:
  // A job for future (installed as its producer), counted as a loop
  // object, its destroy call reserved; nullptr when out of memory.
  static Job *create(Executor &executor, Future &future, async_work_fn work, void *userdata,
                     async_destroy_fn destroy) noexcept;

  static Job *from(async_job *job) noexcept { return reinterpret_cast<Job *>(job); }
  async_job *c_job() noexcept { return reinterpret_cast<async_job *>(this); }

  // Any thread, once each job: async_job_run() and async_job_discard().
  int run() noexcept;
  int discard() noexcept;

  // The loop's thread, once back: completes the future, queues destroy,
  // frees the job.
  void finish() noexcept;
  // The loop's thread: frees a job the submit function refused.
  void abandon() noexcept;

  // The link of the executor's stack of returned jobs.
  Job *&next() noexcept { return next_; }

  // Use create(); public only for the pool.
  Job(Executor &executor, Future &future, async_work_fn work, void *userdata, async_destroy_fn destroy) noexcept
      : executor_(executor), future_(&future), work_(work), userdata_(userdata), destroy_(destroy) {}
  ~Job() { mark_dead(); }

 private:
  // kQueued -> kRunning -> kReturned (run), kQueued -> kReturned
  // (discard), kQueued -> kCancelled (the loop, when the future is
  // cancelled first) -> kReturned (run or discard, the work skipped).
  enum : std::uint8_t { kQueued, kRunning, kCancelled, kReturned };

  // The future's producer hook: the future completed or was cancelled.
  static void future_completed(async_future *future, int cancelled, void *self) noexcept;
  // From kQueued or kCancelled to kReturned (or kRunning): the state it
  // was taken from, or kReturned when it was taken before.
  std::uint8_t take(bool to_run) noexcept;
  void free_record() noexcept;

  Executor &executor_;
  Future *future_;  // while pending; loop thread only
  async_work_fn work_;
  void *userdata_;
  async_destroy_fn destroy_;
  // Written by the thread that runs the work, read by the loop once back.
  void *value_ = nullptr;
  int status_ = 0;
  bool ran_ = false;
  std::atomic<std::uint8_t> state_{kQueued};
  Job *next_ = nullptr;
};

}  // namespace async::core
