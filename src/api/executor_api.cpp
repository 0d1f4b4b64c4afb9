#include "api/api.hpp"
#include "core/executor.hpp"
#include "core/future.hpp"
#include "core/job.hpp"

using async::api::checked_loop;
using async::api::guarded;
using async::api::refused_loop;
using async::api::tagged_as;
using async::core::Executor;
using async::core::Future;
using async::core::Job;
using async::core::Loop;

extern "C" {

ASYNC_API int async_loop_set_executor(async_loop *loop, async_submit_fn submit, async_release_fn release,
                                      void *userdata) {
  Loop *l = checked_loop(loop);
  if (!l || (!submit && release)) return refused_loop(loop);
  return guarded([&]() -> int {
    // Clearing a loop that never had one needs no executor state.
    if (!submit && !l->executor().get()) return 0;
    Executor *executor = Executor::of(*l);
    if (!executor) return ASYNC_ENOMEM;
    if (executor->submitting()) return ASYNC_EBUSY;
    executor->set(submit, release, userdata);
    return 0;
  });
}

ASYNC_API int async_run_in_executor(async_future **out, async_loop *loop, async_work_fn work, void *userdata,
                                    async_destroy_fn destroy) {
  Loop *l = checked_loop(loop);
  if (!out || !l || !work) return refused_loop(loop);
  return guarded([&]() -> int {
    Executor *executor = l->executor().get();
    if (!executor) return ASYNC_ENOTSUP;
    Future *future = nullptr;
    int err = executor->run(&future, work, userdata, destroy);
    if (!err) *out = future->c_future();
    return err;
  });
}

// Any thread: tag-checked only (a job's loop thread check is not the
// caller's to pass).
ASYNC_API int async_job_run(async_job *job) {
  Job *j = tagged_as<Job>(job);
  return j ? j->run() : ASYNC_EINVAL;
}

ASYNC_API int async_job_discard(async_job *job) {
  Job *j = tagged_as<Job>(job);
  return j ? j->discard() : ASYNC_EINVAL;
}
}
