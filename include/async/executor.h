/**
 * @file
 * @brief The executor hook: blocking work on the application's own threads,
 * its result delivered to the loop as a future (asyncio's
 * loop.run_in_executor()). libasync never creates a thread: the
 * application installs an executor (its thread pool or job system) with
 * async_loop_set_executor(), and async_run_in_executor() hands it one job
 * per call.
 *
 * A job's life:
 * 1. async_run_in_executor() makes the job and its future and calls the
 *    executor's submit function with the job, on the loop's thread.
 * 2. The executor passes the job, exactly once, to async_job_run() (on
 *    any thread, typically a pool thread: the work function runs there) or
 *    to async_job_discard() (it will not run it, e.g. while it shuts down).
 * 3. The job goes back to the loop, which completes the future on its own
 *    thread, from inside async_loop_run(): DONE with the work's value,
 *    FAILED with the work's error code, or CANCELLED when the job was
 *    discarded. Jobs finished by several threads complete their futures in
 *    the order they finished.
 *
 * Cancellation (async_future_cancel(), async_future_free(), the last
 * async_future_release() of the pending future, async_loop_shutdown()): a
 * job not started yet is dropped (async_job_run() then only gives it back,
 * its work never runs); a running job finishes, and its value is destroyed
 * on the loop's thread.
 *
 * The destroy function given to async_run_in_executor() is the final
 * notification of the work's userdata: destroy(value, userdata) runs
 * exactly once per job, on the loop's thread, from the ready queue (never
 * inside a call into the library). value is what the work stored in its
 * out_value (NULL when it stored nothing, or never ran). For a DONE future
 * it runs once the future is released (as async_future_resolve()'s
 * destroy); otherwise as soon as the job is back on the loop.
 *
 * Lifetime: a job counts as an object of its loop from
 * async_run_in_executor() until it is back on the loop's thread, also
 * after its future was cancelled or freed. While a job is out,
 * async_loop_run(loop, ASYNC_RUN_DEFAULT) keeps running (it sleeps until
 * the job comes back) and async_loop_free() returns ASYNC_EBUSY: the
 * executor must run or discard every job it accepted, also after it was
 * replaced or cleared. Once passed to async_job_run() or
 * async_job_discard(), a job pointer is no longer the executor's: the loop
 * frees it (using it again is a use after free).
 *
 * The executor's userdata gets one final notification: its release
 * function, when the executor is replaced or cleared, or when the loop is
 * freed. Jobs it accepted stay valid after that.
 *
 * Threads: async_job_run() and async_job_discard() are for any thread;
 * every other function here is for the loop's thread only (with the
 * owner-thread check on, async_loop_set_thread_check(), another thread
 * gets ASYNC_EWRONGTHREAD). A work function runs on whatever thread calls
 * async_job_run(): from there it may use only the calls documented for any
 * thread (async_loop_post(), async_loop_wakeup(), async_loop_hold()).
 */
#ifndef ASYNC_EXECUTOR_H
#define ASYNC_EXECUTOR_H

#include "common.h"
#include "future.h"

#ifdef __cplusplus
extern "C" {
#endif

/** @brief One unit of work handed to an executor (async_submit_fn). */
typedef struct async_job async_job;

/**
 * @brief The executor's submit function: takes a job to run later.
 *
 * Called on the loop's thread, inside async_run_in_executor(). On success
 * the executor owns the job until it passes it to async_job_run() or
 * async_job_discard() (it may do so from inside this call, on this
 * thread). On failure it must neither keep, run nor discard the job.
 *
 * @param job      the job.
 * @param userdata the userdata given to async_loop_set_executor().
 * @return 0 (or any value >= 0) when the executor took the job; a negative
 *         code when it did not (async_run_in_executor() returns it as is).
 */
typedef int (*async_submit_fn)(async_job *job, void *userdata);

/**
 * @brief The work of a job: runs on the thread that calls async_job_run().
 *
 * @param[out] out_value receives the result (NULL before the call); what
 *                       it holds on return goes to the job's destroy
 *                       function in the end, also on failure.
 * @param      userdata  the userdata given to async_run_in_executor().
 * @return 0 (or any value >= 0): the future is DONE with *out_value; a
 *         negative code: the future FAILS with it.
 */
typedef int (*async_work_fn)(void **out_value, void *userdata);

/**
 * @brief Installs, replaces or clears the loop's executor.
 *
 * The previous executor, if any, is released: its release(userdata) runs
 * inside this call, after the new one is installed (also when both are the
 * same). Jobs it accepted stay valid and complete as usual once it runs or
 * discards them; new jobs go to the new executor.
 *
 * @param loop     the loop.
 * @param submit   the submit function; NULL clears the executor
 *                 (async_run_in_executor() then returns ASYNC_ENOTSUP).
 * @param release  called with userdata once this executor is replaced,
 *                 cleared or the loop freed; may be NULL. Must be NULL when
 *                 submit is.
 * @param userdata passed to submit and release; may be NULL.
 * @retval 0                  installed (or cleared).
 * @retval ASYNC_EINVAL       loop is NULL or not a loop; release is not
 *                            NULL while submit is.
 * @retval ASYNC_EBUSY        called from inside a submit function.
 * @retval ASYNC_ENOMEM       out of memory (first executor of the loop
 *                            only); nothing changed.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership userdata stays the caller's; release is its final
 *            notification (not called when this call fails).
 * @thread The loop's thread only.
 * @callbacks May run the previous executor's release(userdata) inside this
 *            call.
 */
ASYNC_API int async_loop_set_executor(async_loop *loop, async_submit_fn submit, async_release_fn release,
                                      void *userdata);

/**
 * @brief Runs work(out_value, userdata) on the loop's executor; the future
 * completes with its result on the loop's thread.
 *
 * Makes a job and calls the executor's submit function with it (inside
 * this call). The future is DONE with the value the work stored, FAILED
 * with the negative code the work returned, or CANCELLED when the executor
 * discards the job (async_job_discard()). Its done callbacks run from
 * inside async_loop_run(), never inside this call (also when the executor
 * runs the job inside its submit function).
 *
 * @param[out] out      receives the future.
 * @param      loop     the loop.
 * @param      work     the work, run on the executor's thread.
 * @param      userdata passed to work and destroy; may be NULL.
 * @param      destroy  destroy(value, userdata), the final notification of
 *                      userdata (see the top of this file); may be NULL.
 * @retval 0                  *out is the future; the executor has the job.
 * @retval ASYNC_EINVAL       out or work is NULL; loop is NULL or not a
 *                            loop.
 * @retval ASYNC_ENOTSUP      the loop has no executor
 *                            (async_loop_set_executor()).
 * @retval ASYNC_ENOMEM       out of memory.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @return any other negative code: the submit function's, when it refused
 *         the job.
 * @ownership On success the caller holds the future's one reference (drop
 *            it with async_future_free() or async_future_release()), and
 *            userdata belongs to the job until destroy runs (work never
 *            runs after destroy). On failure nothing changes hands: work
 *            and destroy are never called.
 * @thread The loop's thread only.
 * @callbacks Runs the executor's submit function inside this call; work
 *            runs wherever the executor runs it; done callbacks and
 *            destroy run from inside async_loop_run().
 */
ASYNC_API int async_run_in_executor(async_future **out, async_loop *loop, async_work_fn work, void *userdata,
                                    async_destroy_fn destroy);

/**
 * @brief Executor side: runs the job's work on the calling thread, then
 * gives the job back to its loop.
 *
 * When the job's future was cancelled before this call, the work does not
 * run: the job is only given back. Either way the loop completes the
 * future on its own thread (waking it up if it sleeps).
 *
 * @param job the job, as the submit function received it.
 * @retval 0              the work ran.
 * @retval 1              the job was cancelled before it started: the work
 *                        did not run.
 * @retval ASYNC_EINVAL   job is NULL or not a job.
 * @retval ASYNC_ESTATE   the job was already run or discarded (reported
 *                        only while its memory is still there: a job
 *                        passed twice is a use after free).
 * @ownership The job is the loop's again once this call has given it back:
 *            do not use it afterwards.
 * @thread Any thread.
 * @callbacks Runs the job's work inside this call, unless it was
 *            cancelled.
 */
ASYNC_API int async_job_run(async_job *job);

/**
 * @brief Executor side: gives a job back to its loop without running it
 * (an executor shutting down with jobs queued).
 *
 * The future is cancelled (ASYNC_ECANCELED), unless it was cancelled or
 * freed already; the work never runs.
 *
 * @param job the job, as the submit function received it.
 * @retval 0              given back.
 * @retval ASYNC_EINVAL   job is NULL or not a job.
 * @retval ASYNC_ESTATE   the job was already run or discarded (as
 *                        async_job_run()).
 * @ownership The job is the loop's again: do not use it afterwards.
 * @thread Any thread.
 * @callbacks None run inside this call; the loop completes the future and
 *            runs destroy later.
 */
ASYNC_API int async_job_discard(async_job *job);

#ifdef __cplusplus
}
#endif

#endif
