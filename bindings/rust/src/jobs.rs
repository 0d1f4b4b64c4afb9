//! The executor hook (async/executor.h): blocking work on the program's own
//! threads, its result a [`Future`] on the loop.
//!
//! The program installs an executor with [`LoopHandle::set_executor`]: a
//! closure that takes each [`Job`] and hands it to its thread pool (a
//! channel, a job system). A `Job` is `Send`; [`Job::run`] runs the work on
//! the calling thread, [`Job::discard`] (or dropping the job) gives it back
//! unrun, so each job goes back to the loop exactly once, as the C contract
//! asks. [`LoopHandle::run_in_executor`] boxes a closure as the work; its
//! value (or its panic) travels back to the loop's thread in a box freed by
//! the job's destroy function, the final notification of both.

use crate::error::check;
use crate::{guard, sys, Error, Future, LoopHandle, Result};
use std::ffi::c_void;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

/// One unit of work handed to an executor. Run it once ([`Job::run`]) on
/// any thread, or give it back unrun ([`Job::discard`], or drop it: its
/// future is then cancelled).
pub struct Job {
    raw: *mut sys::async_job,
}

// SAFETY: async_job_run and async_job_discard are for any thread, and a
// Job is used by one thread at a time (it has no &self calls).
unsafe impl Send for Job {}

impl Job {
    /// Runs the work on this thread and gives the job back to its loop:
    /// `true` when the work ran, `false` when its future was cancelled
    /// first (the work did not run).
    pub fn run(self) -> bool {
        let raw = self.raw;
        std::mem::forget(self);
        // SAFETY: a job the executor received and passes on once.
        unsafe { sys::async_job_run(raw) == 0 }
    }

    /// Gives the job back unrun: its future is cancelled.
    pub fn discard(self) {
        drop(self)
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        // SAFETY: as run: the job is passed on once (run forgets self).
        unsafe { sys::async_job_discard(self.raw) };
    }
}

/// The executor's userdata: its loop (for the panic guard) and closure.
struct Submit {
    raw: *mut sys::async_loop,
    submit: Box<dyn Fn(Job)>,
}

unsafe extern "C" fn submit_trampoline(job: *mut sys::async_job, userdata: *mut c_void) -> i32 {
    let state = &*(userdata as *const Submit);
    // A panic drops the job (discarded: its future is cancelled) or left it
    // with the executor: either way it was taken.
    guard(state.raw, 0, || {
        (state.submit)(Job { raw: job });
        0
    })
}

unsafe extern "C" fn submit_release(userdata: *mut c_void) {
    drop(Box::from_raw(userdata as *mut Submit));
}

/// What the work hands back: its value, or its panic to resume on the
/// loop's thread.
type Outcome<T> = Option<std::thread::Result<T>>;

unsafe extern "C" fn work_trampoline<T: Send, F: FnOnce() -> T + Send>(
    out_value: *mut *mut c_void,
    userdata: *mut c_void,
) -> i32 {
    let work = &mut *(userdata as *mut Option<F>);
    if let Some(work) = work.take() {
        // Never unwinds into C: the panic goes to the awaiting task.
        let outcome: Outcome<T> = Some(catch_unwind(AssertUnwindSafe(work)));
        *out_value = Box::into_raw(Box::new(outcome)) as *mut c_void;
    }
    0
}

unsafe extern "C" fn work_destroy<T, F>(value: *mut c_void, userdata: *mut c_void) {
    if !value.is_null() {
        drop(Box::from_raw(value as *mut Outcome<T>));
    }
    drop(Box::from_raw(userdata as *mut Option<F>));
}

impl LoopHandle {
    /// Installs the loop's executor (async_loop_set_executor): `submit`
    /// gets each job of [`LoopHandle::run_in_executor`], on the loop's
    /// thread, and must run or discard it once, on any thread (a dropped
    /// job is discarded). It replaces the previous executor, which is
    /// dropped; jobs it took stay valid. `submit` is `Fn`: it may be
    /// called again from inside itself (a job run at once that submits
    /// more), so keep state in a channel or a `RefCell`.
    pub fn set_executor<F: Fn(Job) + 'static>(&self, submit: F) -> Result<()> {
        let boxed = Box::new(Submit { raw: self.as_raw(), submit: Box::new(submit) });
        let userdata = Box::into_raw(boxed) as *mut c_void;
        let rc = unsafe {
            sys::async_loop_set_executor(self.as_raw(), Some(submit_trampoline), Some(submit_release), userdata)
        };
        if rc < 0 {
            unsafe { submit_release(userdata) };
        }
        check(rc).map(drop)
    }

    /// Removes the executor: run_in_executor then fails with
    /// [`Error::NOTSUP`].
    pub fn clear_executor(&self) -> Result<()> {
        check(unsafe { sys::async_loop_set_executor(self.as_raw(), None, None, std::ptr::null_mut()) }).map(drop)
    }

    /// Runs `work` on the loop's executor (async_run_in_executor); the
    /// future gives its value on the loop's thread. A panic of `work` is
    /// caught on the executor's thread and resumed where the future is
    /// awaited (so in the caller of `run` / `block_on`). Dropping the
    /// future cancels a job not started yet (its work never runs); a
    /// running one finishes and its value is dropped on the loop's thread.
    /// `Error::NOTSUP` without an executor; [`Error::CANCELED`] when the
    /// executor discarded the job.
    pub fn run_in_executor<T, F>(&self, work: F) -> Result<Future<T>>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let userdata = Box::into_raw(Box::new(Some(work))) as *mut c_void;
        let mut raw = std::ptr::null_mut();
        let rc = unsafe {
            sys::async_run_in_executor(
                &mut raw,
                self.as_raw(),
                Some(work_trampoline::<T, F>),
                userdata,
                Some(work_destroy::<T, F>),
            )
        };
        if rc < 0 {
            // Nothing changed hands: work and destroy are never called.
            drop(unsafe { Box::from_raw(userdata as *mut Option<F>) });
            return Err(Error::from_code(rc));
        }
        Ok(unsafe {
            Future::from_raw(self.inner().clone(), raw, |raw| {
                let value = Future::<()>::status(raw)? as *mut Outcome<T>;
                match value.as_mut().and_then(Option::take) {
                    Some(Ok(value)) => Ok(value),
                    Some(Err(payload)) => resume_unwind(payload),
                    None => Err(Error::STATE),
                }
            })
        })
    }
}
