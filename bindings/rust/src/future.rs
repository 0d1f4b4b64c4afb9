//! libasync futures as `std::future::Future`s.
//!
//! A Future<T> owns one reference to a C future and a function that turns
//! its outcome into a `Result<T>`. Polled while pending, it adds one done
//! callback whose userdata (an Rc holding the waker) the callback takes
//! back: the library calls it exactly once, also when the future is
//! cancelled or dropped pending (with ASYNC_ECANCELED).

use crate::error::check;
use crate::{guard, sys, Error, LoopHandle, LoopInner, Result};
use std::cell::RefCell;
use std::ffi::c_void;
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

type Take<T> = Box<dyn FnMut(*mut sys::async_future) -> Result<T>>;

/// A libasync future giving a `Result<T>` (await it inside
/// [`Loop::block_on`] or [`Loop::spawn`]). Dropping it pending cancels it.
pub struct Future<T> {
    raw: *mut sys::async_future,
    waiter: Option<Rc<RefCell<Option<Waker>>>>,
    take: Take<T>,
    _loop: Rc<LoopInner>,
}

unsafe extern "C" fn done_trampoline(future: *mut sys::async_future, _status: i32, userdata: *mut c_void) {
    let waiter = Rc::from_raw(userdata as *const RefCell<Option<Waker>>);
    let waker = waiter.borrow_mut().take();
    if let Some(waker) = waker {
        guard(sys::async_future_loop(future), (), || waker.wake());
    }
}

impl<T> Future<T> {
    /// Wraps a future the caller owns one reference of.
    pub(crate) unsafe fn from_raw(
        lp: Rc<LoopInner>,
        raw: *mut sys::async_future,
        take: impl FnMut(*mut sys::async_future) -> Result<T> + 'static,
    ) -> Future<T> {
        Future { raw, waiter: None, take: Box::new(take), _loop: lp }
    }

    /// The raw future (valid while this Future lives).
    pub fn as_raw(&self) -> *mut sys::async_future {
        self.raw
    }

    /// Whether the future is complete (done, failed or cancelled).
    pub fn is_done(&self) -> bool {
        unsafe { sys::async_future_get_state(self.raw) != sys::async_future_state::ASYNC_FUTURE_PENDING.0 as i32 }
    }

    /// Cancels the future if pending (its await then gives ECANCELED).
    pub fn cancel(&self) -> Result<()> {
        check(unsafe { sys::async_future_cancel(self.raw) }).map(drop)
    }

    /// The outcome now: `None` while pending. The value is handed over once.
    pub fn try_result(&mut self) -> Option<Result<T>> {
        if self.is_done() {
            Some((self.take)(self.raw))
        } else {
            None
        }
    }

    /// A future that fails with ETIMEDOUT unless this one completes within
    /// `timeout_ms` (async_future_timeout); this one is cancelled then.
    pub fn timeout(self, timeout_ms: u64) -> Result<Future<T>>
    where
        T: 'static,
    {
        let mut raw = std::ptr::null_mut();
        check(unsafe { sys::async_future_timeout(&mut raw, self.raw, timeout_ms) })?;
        let mut inner = self;
        let lp = inner._loop.clone();
        // The outer future's status (ETIMEDOUT), then the inner one's value.
        Ok(unsafe {
            Future::from_raw(lp, raw, move |raw| {
                Future::<()>::status(raw)?;
                (inner.take)(inner.raw)
            })
        })
    }

    /// The status of the C future: Ok once done, its error when it failed.
    pub(crate) fn status(raw: *mut sys::async_future) -> Result<*mut c_void> {
        let mut value = std::ptr::null_mut();
        check(unsafe { sys::async_future_result(&mut value, raw) })?;
        Ok(value)
    }
}

impl<T> std::future::Future for Future<T> {
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let this = self.get_mut();
        if let Some(result) = this.try_result() {
            return Poll::Ready(result);
        }
        match &this.waiter {
            Some(waiter) => {
                let mut slot = waiter.borrow_mut();
                if !matches!(&*slot, Some(w) if w.will_wake(cx.waker())) {
                    *slot = Some(cx.waker().clone());
                }
            }
            None => {
                let waiter = Rc::new(RefCell::new(Some(cx.waker().clone())));
                let userdata = Rc::into_raw(waiter.clone()) as *mut c_void;
                let rc = unsafe { sys::async_future_add_callback(this.raw, Some(done_trampoline), userdata) };
                if rc < 0 {
                    drop(unsafe { Rc::from_raw(userdata as *const RefCell<Option<Waker>>) });
                    return Poll::Ready(Err(Error::from_code(rc)));
                }
                this.waiter = Some(waiter);
            }
        }
        Poll::Pending
    }
}

impl<T> Drop for Future<T> {
    fn drop(&mut self) {
        // Cancels a pending future; the done callback still comes once.
        unsafe { sys::async_future_free(self.raw) };
    }
}

/// The producer's side of a [`Future`] made by [`Promise::new`].
pub struct Promise<T> {
    raw: *mut sys::async_future,
    _value: PhantomData<T>,
    _loop: Rc<LoopInner>,
}

unsafe extern "C" fn destroy_value<T>(value: *mut c_void, _context: *mut c_void) {
    drop(Box::from_raw(value as *mut Option<T>));
}

unsafe extern "C" fn cancel_trampoline<F: FnOnce(bool)>(
    future: *mut sys::async_future,
    cancelled: i32,
    userdata: *mut c_void,
) {
    let hook = Box::from_raw(userdata as *mut F);
    guard(sys::async_future_loop(future), (), move || hook(cancelled != 0));
}

impl<T: 'static> Promise<T> {
    /// A pending future of `lp` and the promise that completes it.
    pub fn new(lp: &LoopHandle) -> Result<(Promise<T>, Future<T>)> {
        let mut raw = std::ptr::null_mut();
        check(unsafe { sys::async_future_new(&mut raw, lp.as_raw()) })?;
        // The promise holds a reference of its own.
        unsafe { sys::async_future_retain(raw) };
        let future = unsafe {
            Future::from_raw(lp.inner().clone(), raw, |raw| {
                let value = Future::<T>::status(raw)? as *mut Option<T>;
                value.as_mut().and_then(Option::take).ok_or(Error::STATE)
            })
        };
        Ok((Promise { raw, _value: PhantomData, _loop: lp.inner().clone() }, future))
    }

    /// Completes the future with `value` (ESTATE when it is complete already).
    pub fn resolve(&self, value: T) -> Result<()> {
        let boxed = Box::into_raw(Box::new(Some(value))) as *mut c_void;
        let rc = unsafe { sys::async_future_resolve(self.raw, boxed, Some(destroy_value::<T>), std::ptr::null_mut()) };
        if rc < 0 {
            drop(unsafe { Box::from_raw(boxed as *mut Option<T>) });
        }
        check(rc).map(drop)
    }

    /// Fails the future with `error`.
    pub fn reject(&self, error: Error) -> Result<()> {
        check(unsafe { sys::async_future_reject(self.raw, error.code()) }).map(drop)
    }

    /// Installs the cancel hook: `hook(true)` when the future is cancelled,
    /// `hook(false)` when it completes otherwise (called exactly once).
    pub fn on_cancel<F: FnOnce(bool) + 'static>(&self, hook: F) -> Result<()> {
        let userdata = Box::into_raw(Box::new(hook)) as *mut c_void;
        let rc = unsafe { sys::async_future_set_cancel(self.raw, Some(cancel_trampoline::<F>), userdata) };
        if rc < 0 {
            drop(unsafe { Box::from_raw(userdata as *mut F) });
        }
        check(rc).map(drop)
    }

    /// Whether the future is still pending.
    pub fn is_pending(&self) -> bool {
        unsafe { sys::async_future_get_state(self.raw) == sys::async_future_state::ASYNC_FUTURE_PENDING.0 as i32 }
    }
}

impl<T> Drop for Promise<T> {
    fn drop(&mut self) {
        // Drops the promise's reference only; a pending future is
        // cancelled when its last reference goes.
        unsafe { sys::async_future_release(self.raw) };
    }
}
