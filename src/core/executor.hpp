// The loop's executor hook (async/executor.h): the application's submit
// function, and the way back for its jobs, from the executor's threads to
// the loop's.
#pragma once

#include <async/executor.h>

#include <atomic>
#include <cstddef>

namespace async::core {

class Future;
class Hook;
class Job;
class Loop;

// One per loop, made on first use and destroyed with the loop (Loop holds
// it), so it outlives every job: a loop cannot be freed while jobs are out.
//
// Jobs come back on any thread by a lock-free push onto returned_ (no
// allocation, nothing that can fail on the executor's thread); the push
// that finds the stack empty wakes the loop. A check hook, active and
// referenced while jobs are out, takes the whole stack after the poll and
// completes the jobs on the loop's thread, oldest first.
class Executor {
 public:
  // The loop's executor, made now if it has none; nullptr when out of memory.
  static Executor *of(Loop &loop) noexcept;

  // Use of(); public only for util::make/destroy. Releases the current
  // executor's userdata.
  explicit Executor(Loop &loop) noexcept : loop_(loop) {}
  Executor(const Executor &) = delete;
  Executor &operator=(const Executor &) = delete;
  ~Executor();

  Loop &loop() const noexcept { return loop_; }
  bool has_submit() const noexcept { return submit_ != nullptr; }
  // Inside the submit function: the executor must not change under it.
  bool submitting() const noexcept { return submitting_ > 0; }

  // Installs submit (nullptr clears), then releases the previous one.
  void set(async_submit_fn submit, async_release_fn release, void *userdata) noexcept;
  // async_run_in_executor(): a job for work, handed to the submit function.
  int run(Future **out, async_work_fn work, void *userdata, async_destroy_fn destroy) noexcept;
  // Any thread: a job run or discarded comes back. The job, and then the
  // loop, may be gone as soon as the push is done.
  void give_back(Job &job) noexcept;

 private:
  static void drain(async_hook *hook, void *self) noexcept;
  void job_out() noexcept;
  void job_back() noexcept;

  Loop &loop_;
  Hook *drain_hook_ = nullptr;  // in the loop's pool; off the registry
  async_submit_fn submit_ = nullptr;
  async_release_fn release_ = nullptr;
  void *userdata_ = nullptr;
  int submitting_ = 0;
  std::size_t out_ = 0;                   // jobs made and not back on the loop's thread yet
  std::atomic<Job *> returned_{nullptr};  // newest first
};

}  // namespace async::core
