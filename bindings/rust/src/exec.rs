//! The executor: tasks run on the loop's thread; a waker queues the task's
//! poll with call_soon (on the loop's thread) or post (from another thread).

use crate::error::check;
use crate::{guard, loop_inner, sys, Error, Loop, LoopHandle, Result, Running, Timer};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::c_void;
use std::future::Future as StdFuture;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::ThreadId;

type Task = Pin<Box<dyn StdFuture<Output = ()>>>;

/// The id of block_on's own future (never a spawned task's).
const MAIN: u64 = 0;

#[derive(Default)]
pub(crate) struct Executor {
    tasks: RefCell<HashMap<u64, Task>>,
    next_id: Cell<u64>,
    main_woken: Cell<bool>,
}

impl Executor {
    /// Drops every task (their futures cancel what they wait for).
    pub(crate) fn clear(&self) {
        let tasks = std::mem::take(&mut *self.tasks.borrow_mut());
        drop(tasks);
    }
}

struct TaskWaker {
    raw: usize,
    id: u64,
    owner: ThreadId,
    alive: Arc<AtomicBool>,
    /// A poll is queued already: later wakes before it add nothing.
    queued: AtomicBool,
}

unsafe extern "C" fn poll_trampoline(raw: *mut sys::async_loop, userdata: *mut c_void) {
    let waker = Arc::from_raw(userdata as *const TaskWaker);
    waker.queued.store(false, Ordering::SeqCst);
    let inner = match loop_inner(raw) {
        Some(inner) => inner,
        None => return,
    };
    if waker.id == MAIN {
        inner.exec.main_woken.set(true);
        return;
    }
    // Out of the map while polled: the task may spawn others.
    let task = inner.exec.tasks.borrow_mut().remove(&waker.id);
    if let Some(mut task) = task {
        let id = waker.id;
        let std_waker = Waker::from(waker);
        let mut cx = Context::from_waker(&std_waker);
        let pending = guard(raw, false, || task.as_mut().poll(&mut cx).is_pending());
        if pending {
            inner.exec.tasks.borrow_mut().insert(id, task);
        }
    }
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref()
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.queued.swap(true, Ordering::SeqCst) || !self.alive.load(Ordering::SeqCst) {
            return;
        }
        let raw = self.raw as *mut sys::async_loop;
        let userdata = Arc::into_raw(self.clone()) as *mut c_void;
        // SAFETY: the loop is alive (checked above; on its own thread it
        // cannot be freed meanwhile; post answers ECLOSED to a freed one).
        let rc = unsafe {
            if std::thread::current().id() == self.owner {
                sys::async_loop_call_soon(raw, Some(poll_trampoline), userdata)
            } else {
                sys::async_loop_post(raw, Some(poll_trampoline), userdata)
            }
        };
        if rc < 0 {
            drop(unsafe { Arc::from_raw(userdata as *const TaskWaker) });
        }
    }
}

impl LoopHandle {
    fn waker(&self, id: u64) -> Waker {
        let inner = self.inner();
        Waker::from(Arc::new(TaskWaker {
            raw: inner.raw() as usize,
            id,
            owner: inner.owner,
            alive: inner.alive.clone(),
            queued: AtomicBool::new(false),
        }))
    }
}

impl Loop {
    /// Runs `future` to completion on this loop (spawned tasks and every
    /// callback run meanwhile). EBUSY from inside a callback of the loop
    /// (a nested run); a panic of a callback or task resumes here.
    pub fn block_on<F: StdFuture>(&self, future: F) -> Result<F::Output> {
        let inner = self.inner();
        if inner.running.get() {
            return Err(Error::BUSY);
        }
        let raw = self.as_raw();
        // Held: a wake posted from another thread must find the loop
        // waiting rather than returned for want of work.
        check(unsafe { sys::async_loop_hold(raw) })?;
        let outcome = {
            let _running = Running::enter(inner);
            catch_unwind(AssertUnwindSafe(|| self.drive(future)))
        };
        unsafe { sys::async_loop_unhold(raw) };
        match outcome {
            Ok(outcome) => {
                inner.take_panic();
                outcome
            }
            Err(payload) => resume_unwind(payload),
        }
    }

    /// block_on's loop: poll when woken, else run one iteration.
    fn drive<F: StdFuture>(&self, future: F) -> Result<F::Output> {
        let (raw, exec) = (self.as_raw(), &self.inner().exec);
        let mut future = Box::pin(future);
        let waker = self.waker(MAIN);
        let mut cx = Context::from_waker(&waker);
        loop {
            exec.main_woken.set(false);
            if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
                return Ok(value);
            }
            while !exec.main_woken.get() {
                let rc = unsafe { sys::async_loop_run(raw, sys::async_run_mode::ASYNC_RUN_ONCE.0 as i32) };
                if rc < 0 {
                    return Err(Error::from_code(rc));
                }
                if self.inner().panic.borrow().is_some() {
                    return Err(Error::STATE); // take_panic resumes it
                }
            }
        }
    }
}

impl LoopHandle {
    /// Runs `future` as a task of the loop; the handle awaits its output.
    /// Tasks still pending when the Loop is dropped are dropped.
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: StdFuture + 'static,
        F::Output: 'static,
    {
        let exec = &self.inner().exec;
        let id = exec.next_id.get() + 1;
        exec.next_id.set(id);
        let slot = Rc::new(JoinSlot { value: RefCell::new(None), waker: RefCell::new(None) });
        let output = slot.clone();
        let task: Task = Box::pin(async move {
            let value = future.await;
            *output.value.borrow_mut() = Some(value);
            if let Some(waker) = output.waker.borrow_mut().take() {
                waker.wake();
            }
        });
        exec.tasks.borrow_mut().insert(id, task);
        self.waker(id).wake();
        JoinHandle { slot }
    }

    /// A future that completes after `ms` milliseconds (a one-shot timer).
    pub fn sleep(&self, ms: u64) -> Sleep {
        Sleep { loop_: self.clone(), ms, state: None }
    }

    /// `future`, unless `ms` milliseconds pass first: then
    /// `Err(Error::TIMEDOUT)` and `future` is dropped (which cancels what it
    /// waits for).
    pub fn timeout<F: StdFuture>(&self, ms: u64, future: F) -> Timeout<F> {
        Timeout { future: Box::pin(future), deadline: self.sleep(ms) }
    }
}

struct JoinSlot<T> {
    value: RefCell<Option<T>>,
    waker: RefCell<Option<Waker>>,
}

/// The output of a spawned task, as a future (dropping it leaves the task running).
pub struct JoinHandle<T> {
    slot: Rc<JoinSlot<T>>,
}

impl<T> JoinHandle<T> {
    /// Whether the task finished.
    pub fn is_finished(&self) -> bool {
        self.slot.value.borrow().is_some()
    }
}

impl<T> StdFuture for JoinHandle<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        match self.slot.value.borrow_mut().take() {
            Some(value) => Poll::Ready(value),
            None => {
                *self.slot.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

struct SleepState {
    timer: Timer,
    fired: Rc<Cell<bool>>,
    waker: Rc<RefCell<Option<Waker>>>,
}

/// [`Loop::sleep`]'s future: Err only when the timer cannot be made.
pub struct Sleep {
    loop_: LoopHandle,
    ms: u64,
    state: Option<SleepState>,
}

impl StdFuture for Sleep {
    type Output = Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let this = self.get_mut();
        if this.state.is_none() {
            let timer = match Timer::new(&this.loop_) {
                Ok(timer) => timer,
                Err(error) => return Poll::Ready(Err(error)),
            };
            let fired = Rc::new(Cell::new(false));
            let waker: Rc<RefCell<Option<Waker>>> = Rc::new(RefCell::new(None));
            let (f, w) = (fired.clone(), waker.clone());
            let started = timer.start(this.ms, 0, move || {
                f.set(true);
                if let Some(waker) = w.borrow_mut().take() {
                    waker.wake();
                }
            });
            if let Err(error) = started {
                return Poll::Ready(Err(error));
            }
            this.state = Some(SleepState { timer, fired, waker });
        }
        let state = this.state.as_ref().unwrap();
        if state.fired.get() {
            return Poll::Ready(Ok(()));
        }
        if !state.timer.is_active() && state.timer.is_closing() {
            // The loop ended the timer (dropped): it will never fire.
            return Poll::Ready(Err(Error::CLOSED));
        }
        *state.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// [`LoopHandle::timeout`]'s future.
pub struct Timeout<F> {
    future: Pin<Box<F>>,
    deadline: Sleep,
}

impl<F: StdFuture> StdFuture for Timeout<F> {
    type Output = Result<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<F::Output>> {
        if let Poll::Ready(value) = self.future.as_mut().poll(cx) {
            return Poll::Ready(Ok(value));
        }
        match Pin::new(&mut self.deadline).poll(cx) {
            Poll::Ready(Ok(())) => Poll::Ready(Err(Error::TIMEDOUT)),
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => Poll::Pending,
        }
    }
}
