//! Safe binding of libasync: an event loop with timers, watchers, signals,
//! streams, servers, datagrams and DNS, with callbacks and with async/await.
//!
//! Objects of a loop are `!Send` (they belong to the loop's thread); only
//! [`Poster`] crosses threads. Every closure handed to the library is boxed
//! and freed on the object's final notification. A panic inside a callback
//! is caught before it reaches C, stops the loop and is resumed in the
//! caller of [`Loop::run`] (or [`Loop::block_on`]). When the [`Loop`] is
//! dropped, every object still alive is ended (closed, cancelled); calls on
//! it then return [`Error::CLOSED`] (or the library's code).
//!
//! What the compiler refuses (these examples must not compile):
//!
//! A closed handle was moved by `close`:
//! ```compile_fail
//! let lp = libasync::Loop::new().unwrap();
//! let timer = libasync::Timer::new(&lp).unwrap();
//! timer.close();
//! timer.stop();
//! ```
//! A loop's objects stay on its thread:
//! ```compile_fail
//! let lp = libasync::Loop::new().unwrap();
//! let timer = libasync::Timer::new(&lp).unwrap();
//! std::thread::spawn(move || drop(timer));
//! ```
//! A stream borrowed by a callback cannot be kept past it:
//! ```compile_fail
//! struct Keep(Option<&'static libasync::StreamRef<'static>>);
//! impl libasync::Protocol for Keep {
//!     fn data_received(&mut self, stream: &libasync::StreamRef<'_>, data: &[u8]) -> usize {
//!         self.0 = Some(stream);
//!         data.len()
//!     }
//! }
//! ```
//! while a [`Poster`] crosses threads:
//! ```
//! fn send_sync<T: Send + Sync>(_: &T) {}
//! let lp = libasync::Loop::new().unwrap();
//! send_sync(&lp.poster());
//! ```

#[allow(non_upper_case_globals, non_camel_case_types, non_snake_case, dead_code, clippy::all)]
#[rustfmt::skip]
pub mod sys;

mod addr;
mod datagram;
mod dns;
mod error;
mod exec;
mod future;
mod handle;
mod jobs;
mod layer;
mod process;
mod stream;
mod tls;

pub use addr::{format_addr, parse_addr};
pub use datagram::{Datagram, DatagramProtocol, DatagramRef, UdpOptions};
pub use dns::{getaddrinfo, getnameinfo, AddrEntry, AddrInfo, DnsConfig};
pub use error::{Error, Result};
pub use exec::{JoinHandle, Sleep, Timeout};
pub use future::{Future, Promise};
pub use handle::{Hook, HookKind, Signal, Timer, Watcher, READABLE, WRITABLE};
pub use jobs::Job;
pub use process::{Command, ExitStatus, Output, Process, Stdio};
pub use stream::{
    connect, connect_options, connect_unix, connect_with, ConnectOptions, Listener, Protocol, ReconnectOptions,
    ReconnectProtocol, ReconnectState, Reconnector, Server, Stream, StreamRef,
};
pub use tls::{TlsContext, TlsOptions, TlsSide};

use error::check;
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::ffi::{c_void, CStr, CString};
use std::os::unix::io::BorrowedFd;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::ThreadId;

/// The most iterations the end of a loop runs to deliver the final
/// notifications (each is a non-blocking iteration; a few suffice).
const ENDING_ITERATIONS: usize = 1000;

/// The state shared by a loop and its objects (kept alive by them).
pub(crate) struct LoopInner {
    raw: *mut sys::async_loop,
    panic: RefCell<Option<Box<dyn Any + Send>>>,
    /// Cleared before async_loop_free: wakers and posters check it.
    alive: Arc<AtomicBool>,
    owner: ThreadId,
    /// Inside Loop::run or block_on: a nested one is refused (EBUSY).
    running: Cell<bool>,
    pub(crate) exec: exec::Executor,
    /// Freed cells of call_soon closures, reused by the next calls: a
    /// chain of callbacks allocates nothing per call (malloc and free were
    /// 126 of the 763 instructions per callback of examples/callsoon.rs).
    cells: RefCell<Vec<Box<ClosureCell>>>,
}

/// Room for a call_soon closure of up to four words (most capture a
/// handle or two and a counter); larger ones get a box of their own.
type ClosureCell = std::mem::MaybeUninit<[usize; 4]>;

/// The most cells a loop keeps (the deepest fan-out of call_soon reused).
const CACHED_CELLS: usize = 64;

const fn fits_cell<F>() -> bool {
    std::mem::size_of::<F>() <= std::mem::size_of::<ClosureCell>()
        && std::mem::align_of::<F>() <= std::mem::align_of::<ClosureCell>()
}

impl LoopInner {
    pub(crate) fn raw(&self) -> *mut sys::async_loop {
        self.raw
    }

    fn take_panic(&self) {
        let payload = self.panic.borrow_mut().take();
        if let Some(payload) = payload {
            resume_unwind(payload);
        }
    }

    /// Ends everything (the library's shutdown) and runs the loop until
    /// every final notification arrived.
    fn end_all(&self) {
        self.exec.clear();
        // SAFETY: raw is a live loop until LoopInner is dropped.
        unsafe { sys::async_loop_shutdown(self.raw, Some(handle::close_trampoline)) };
        // Non-blocking iterations until no work is left: a hold another
        // thread never ends must not hang a drop (bounded: the C loop is
        // then left allocated rather than freed under that thread).
        for _ in 0..ENDING_ITERATIONS {
            if unsafe { sys::async_loop_run(self.raw, sys::async_run_mode::ASYNC_RUN_NOWAIT.0 as i32) } <= 0 {
                break;
            }
        }
        // A panic while ending has no caller to go to.
        self.panic.borrow_mut().take();
    }
}

impl Drop for LoopInner {
    fn drop(&mut self) {
        self.end_all();
        self.alive.store(false, Ordering::SeqCst);
        // SAFETY: the last reference: nothing of this crate uses raw after.
        // Bounded: every object was ended above; EBUSY can only remain from
        // a post still racing in from another thread.
        for _ in 0..100 {
            if unsafe { sys::async_loop_free(self.raw) } != sys::async_error::ASYNC_EBUSY.0 {
                return;
            }
            unsafe { sys::async_loop_run(self.raw, sys::async_run_mode::ASYNC_RUN_NOWAIT.0 as i32) };
        }
    }
}

/// The LoopInner of a raw loop of this crate, borrowed for a callback.
pub(crate) unsafe fn loop_inner<'a>(raw: *mut sys::async_loop) -> Option<&'a LoopInner> {
    let inner = sys::async_loop_userdata(raw) as *const LoopInner;
    inner.as_ref()
}

/// Runs a callback body; a panic is kept for the caller of run (the first
/// one wins) and stops the loop, and `fallback` is returned to C instead.
pub(crate) fn guard<R>(raw: *mut sys::async_loop, fallback: R, body: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(value) => value,
        Err(payload) => {
            // SAFETY: raw is the loop running this callback.
            match unsafe { loop_inner(raw) } {
                Some(inner) => {
                    let mut slot = inner.panic.borrow_mut();
                    if slot.is_none() {
                        *slot = Some(payload);
                    }
                    unsafe { sys::async_loop_stop(raw) };
                }
                // No loop to carry it to: unwinding into C is worse.
                None => std::process::abort(),
            }
            fallback
        }
    }
}

/// Marks a loop running for a scope (also when a panic unwinds it).
pub(crate) struct Running<'a>(&'a LoopInner);

impl<'a> Running<'a> {
    pub(crate) fn enter(inner: &'a LoopInner) -> Running<'a> {
        inner.running.set(true);
        Running(inner)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.running.set(false);
    }
}

/// An event loop; it belongs to the thread that made it. It derefs to a
/// [`LoopHandle`], which every object's constructor takes.
pub struct Loop {
    handle: LoopHandle,
}

/// A reference to a loop for its objects and tasks (clone it into a
/// spawned task to make timers, connect or sleep there). The loop's
/// objects are ended when the [`Loop`] itself is dropped.
#[derive(Clone)]
pub struct LoopHandle {
    inner: Rc<LoopInner>,
}

impl std::ops::Deref for Loop {
    type Target = LoopHandle;
    fn deref(&self) -> &LoopHandle {
        &self.handle
    }
}

/// How [`Loop::run_mode`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunMode {
    /// Until no referenced work is left, or stopped.
    Default,
    /// One iteration, blocking until something happens.
    Once,
    /// One iteration, never blocking.
    NoWait,
}

/// A loop metric (async_loop_metric).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    Iterations,
    PollTimeNs,
    Callbacks,
}

impl Loop {
    /// A new loop.
    pub fn new() -> Result<Loop> {
        let mut raw = std::ptr::null_mut();
        // SAFETY: out pointer valid.
        check(unsafe { sys::async_loop_new(&mut raw) })?;
        let inner = Rc::new(LoopInner {
            raw,
            panic: RefCell::new(None),
            alive: Arc::new(AtomicBool::new(true)),
            owner: std::thread::current().id(),
            running: Cell::new(false),
            exec: exec::Executor::default(),
            cells: RefCell::new(Vec::new()),
        });
        // SAFETY: the userdata lives as long as the loop (LoopInner frees it).
        unsafe { sys::async_loop_set_userdata(raw, Rc::as_ptr(&inner) as *mut c_void) };
        Ok(Loop { handle: LoopHandle { inner } })
    }

    /// Runs until no referenced work is left (`Ok(false)`) or the loop was
    /// stopped (`Ok(true)`). A panic of a callback resumes here.
    pub fn run(&self) -> Result<bool> {
        self.run_mode(RunMode::Default)
    }

    /// Runs in the given mode; `Ok(true)` when work remains.
    pub fn run_mode(&self, mode: RunMode) -> Result<bool> {
        let mode = match mode {
            RunMode::Default => sys::async_run_mode::ASYNC_RUN_DEFAULT,
            RunMode::Once => sys::async_run_mode::ASYNC_RUN_ONCE,
            RunMode::NoWait => sys::async_run_mode::ASYNC_RUN_NOWAIT,
        };
        if self.inner.running.get() {
            return Err(Error::BUSY);
        }
        let rc = {
            let _running = Running::enter(&self.inner);
            // SAFETY: a live loop.
            unsafe { sys::async_loop_run(self.inner.raw, mode.0 as i32) }
        };
        self.inner.take_panic();
        Ok(check(rc)? != 0)
    }

    /// Runs until `future` completes (async_loop_run_until), giving its
    /// status: `Ok(())` when done, else its error.
    pub fn run_until<T>(&self, future: &Future<T>) -> Result<()> {
        if self.inner.running.get() {
            return Err(Error::BUSY);
        }
        let rc = {
            let _running = Running::enter(&self.inner);
            unsafe { sys::async_loop_run_until(self.inner.raw, future.as_raw()) }
        };
        self.inner.take_panic();
        check(rc).map(drop)
    }

    /// Runs ready work for about `budget` at most (async_loop_run_for), for
    /// a frame loop that gives the loop a time slice per frame: `Ok(true)`
    /// when callbacks are still queued (they run first next time). Never
    /// blocks. A budget under a microsecond is [`Error::INVAL`]; a panic of
    /// a callback resumes here.
    pub fn run_for(&self, budget: std::time::Duration) -> Result<bool> {
        if self.inner.running.get() {
            return Err(Error::BUSY);
        }
        let budget_us = u64::try_from(budget.as_micros()).unwrap_or(u64::MAX);
        let rc = {
            let _running = Running::enter(&self.inner);
            unsafe { sys::async_loop_run_for(self.inner.raw, budget_us) }
        };
        self.inner.take_panic();
        Ok(check(rc)? != 0)
    }

    /// The fd a host loop (GLib, a `poll`, another runtime's reactor) waits
    /// on for reading to drive this loop (async_loop_fd): whenever it is
    /// readable, call `run_mode(RunMode::NoWait)` (or `run_for`). The fd is
    /// the loop's: borrowed, so it cannot outlive the loop; never read or
    /// close it. [`Error::NOTSUP`] on the select and poll backends.
    pub fn fd(&self) -> Result<BorrowedFd<'_>> {
        let mut fd = -1;
        check(unsafe { sys::async_loop_fd(&mut fd, self.inner.raw) })?;
        // SAFETY: open until async_loop_free, which runs after the last
        // reference to the loop, so after this borrow of it.
        Ok(unsafe { BorrowedFd::borrow_raw(fd) })
    }
}

impl LoopHandle {
    pub(crate) fn inner(&self) -> &Rc<LoopInner> {
        &self.inner
    }

    /// The raw loop, for calls of [`sys`] (valid while this handle lives).
    pub fn as_raw(&self) -> *mut sys::async_loop {
        self.inner.raw
    }

    /// Makes run return after the current iteration.
    pub fn stop(&self) {
        unsafe { sys::async_loop_stop(self.inner.raw) };
    }

    /// Whether referenced work keeps run going.
    pub fn alive(&self) -> bool {
        unsafe { sys::async_loop_alive(self.inner.raw) > 0 }
    }

    /// The cached loop time in milliseconds.
    pub fn now(&self) -> u64 {
        let mut ms = 0;
        unsafe { sys::async_loop_now(&mut ms, self.inner.raw) };
        ms
    }

    /// Refreshes the cached loop time.
    pub fn update_now(&self) {
        unsafe { sys::async_loop_now_update(self.inner.raw) };
    }

    /// How long a poll now would block: `None` for no limit.
    pub fn poll_timeout(&self) -> Option<u64> {
        let mut ms = 0i64;
        unsafe { sys::async_loop_timeout(&mut ms, self.inner.raw) };
        u64::try_from(ms).ok()
    }

    /// Queues `f` to run on a later iteration (async_loop_call_soon).
    pub fn call_soon<F: FnOnce() + 'static>(&self, f: F) -> Result<()> {
        if !fits_cell::<F>() {
            // One allocation per call.
            let userdata = Box::into_raw(Box::new(f)) as *mut c_void;
            let rc = unsafe { sys::async_loop_call_soon(self.inner.raw, Some(call_once_trampoline::<F>), userdata) };
            if rc < 0 {
                // Not queued: nothing will be called, the closure is still ours.
                drop(unsafe { Box::from_raw(userdata as *mut F) });
            }
            return check(rc).map(drop);
        }
        let cell = self.inner.cells.borrow_mut().pop().unwrap_or_else(|| Box::new(ClosureCell::uninit()));
        let userdata = Box::into_raw(cell);
        // SAFETY: the cell has room and alignment for F (fits_cell).
        unsafe { (userdata as *mut F).write(f) };
        let rc =
            unsafe { sys::async_loop_call_soon(self.inner.raw, Some(cell_trampoline::<F>), userdata as *mut c_void) };
        if rc < 0 {
            drop(unsafe { take_cell::<F>(&self.inner, userdata) });
        }
        check(rc).map(drop)
    }

    /// A handle that queues work on this loop from any thread.
    pub fn poster(&self) -> Poster {
        Poster { raw: self.inner.raw as usize, alive: self.inner.alive.clone() }
    }

    /// Reports callbacks slower than `threshold_ms` through the log hook (0: off).
    pub fn set_slow_callback(&self, threshold_ms: u64) -> Result<()> {
        check(unsafe { sys::async_loop_set_slow_callback(self.inner.raw, threshold_ms) }).map(drop)
    }

    /// Installs the log hook: `log(level, message)`; it replaces the default
    /// (stderr). Level: 2 warning, 3 error (enum async_log_level).
    pub fn set_log<F: FnMut(i32, &str) + 'static>(&self, log: F) -> Result<()> {
        let boxed: Box<Box<dyn FnMut(i32, &str)>> = Box::new(Box::new(log));
        let userdata = Box::into_raw(boxed) as *mut c_void;
        let rc = unsafe { sys::async_loop_set_log(self.inner.raw, Some(log_trampoline), Some(log_release), userdata) };
        if rc < 0 {
            unsafe { log_release(userdata) };
        }
        check(rc).map(drop)
    }

    /// Reads a metric.
    pub fn metric(&self, metric: Metric) -> Result<u64> {
        let metric = match metric {
            Metric::Iterations => sys::async_metric::ASYNC_METRIC_ITERATIONS,
            Metric::PollTimeNs => sys::async_metric::ASYNC_METRIC_POLL_TIME,
            Metric::Callbacks => sys::async_metric::ASYNC_METRIC_CALLBACKS,
        };
        let mut value = 0;
        check(unsafe { sys::async_loop_metric(&mut value, self.inner.raw, metric.0 as i32) })?;
        Ok(value)
    }

    /// Turns the owner-thread check on or off.
    pub fn set_thread_check(&self, on: bool) -> Result<()> {
        check(unsafe { sys::async_loop_set_thread_check(self.inner.raw, on as i32) }).map(drop)
    }

    /// Counts the objects of the loop a user still holds, by kind
    /// (async_loop_walk; kinds are enum async_object_kind).
    pub fn walk(&self) -> Result<Vec<i32>> {
        unsafe extern "C" fn visit(kind: i32, _object: *mut c_void, userdata: *mut c_void) {
            (*(userdata as *mut Vec<i32>)).push(kind);
        }
        let mut kinds = Vec::new();
        let rc = unsafe { sys::async_loop_walk(self.inner.raw, Some(visit), &mut kinds as *mut _ as *mut c_void) };
        check(rc)?;
        Ok(kinds)
    }

    /// Ends every object of the loop now (async_loop_shutdown): transports
    /// aborted, futures cancelled, handles closed; their notifications run
    /// on the next run.
    pub fn shutdown(&self) -> Result<()> {
        check(unsafe { sys::async_loop_shutdown(self.inner.raw, Some(handle::close_trampoline)) }).map(drop)
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        // Objects still held keep the LoopInner (and the C loop) alive but
        // are ended now; the loop itself goes with the last of them.
        self.handle.inner.end_all();
    }
}

/// Moves the closure out of its cell and gives the cell back to the loop.
unsafe fn take_cell<F>(inner: &LoopInner, cell: *mut ClosureCell) -> F {
    let f = (cell as *mut F).read();
    let cell = Box::from_raw(cell);
    let mut cells = inner.cells.borrow_mut();
    if cells.len() < CACHED_CELLS {
        cells.push(cell);
    }
    f
}

unsafe extern "C" fn cell_trampoline<F: FnOnce()>(raw: *mut sys::async_loop, userdata: *mut c_void) {
    let cell = userdata as *mut ClosureCell;
    let f = match loop_inner(raw) {
        Some(inner) => take_cell::<F>(inner, cell),
        None => {
            let f = (cell as *mut F).read();
            drop(Box::from_raw(cell));
            f
        }
    };
    guard(raw, (), f);
}

unsafe extern "C" fn call_once_trampoline<F: FnOnce()>(raw: *mut sys::async_loop, userdata: *mut c_void) {
    let f = Box::from_raw(userdata as *mut F);
    guard(raw, (), move || f());
}

unsafe extern "C" fn log_trampoline(
    raw: *mut sys::async_loop,
    level: i32,
    message: *const std::os::raw::c_char,
    userdata: *mut c_void,
) {
    let log = &mut *(userdata as *mut Box<dyn FnMut(i32, &str)>);
    let message = if message.is_null() { "" } else { CStr::from_ptr(message).to_str().unwrap_or("") };
    guard(raw, (), || log(level, message));
}

unsafe extern "C" fn log_release(userdata: *mut c_void) {
    drop(Box::from_raw(userdata as *mut Box<dyn FnMut(i32, &str)>));
}

/// Queues work on a loop from any thread (async_loop_post). Posts made
/// after the loop is freed return [`Error::CLOSED`].
#[derive(Clone)]
pub struct Poster {
    raw: usize,
    alive: Arc<AtomicBool>,
}

impl Poster {
    fn raw(&self) -> Result<*mut sys::async_loop> {
        if self.alive.load(Ordering::SeqCst) {
            Ok(self.raw as *mut sys::async_loop)
        } else {
            Err(Error::CLOSED)
        }
    }

    /// Runs `f` on the loop's thread, in posting order.
    pub fn post<F: FnOnce() + Send + 'static>(&self, f: F) -> Result<()> {
        let raw = self.raw()?;
        let userdata = Box::into_raw(Box::new(f)) as *mut c_void;
        // SAFETY: post is thread-safe and answers ECLOSED for a freed loop.
        let rc = unsafe { sys::async_loop_post(raw, Some(call_once_trampoline::<F>), userdata) };
        if rc < 0 {
            drop(unsafe { Box::from_raw(userdata as *mut F) });
        }
        check(rc).map(drop)
    }

    /// Wakes the loop if it blocks in poll.
    pub fn wakeup(&self) -> Result<()> {
        check(unsafe { sys::async_loop_wakeup(self.raw()?) }).map(drop)
    }

    /// Keeps `run` going until the matching [`Poster::unhold`].
    pub fn hold(&self) -> Result<()> {
        check(unsafe { sys::async_loop_hold(self.raw()?) }).map(drop)
    }

    /// Ends one hold.
    pub fn unhold(&self) -> Result<()> {
        check(unsafe { sys::async_loop_unhold(self.raw()?) }).map(drop)
    }
}

// SAFETY: the calls a Poster makes are the library's thread-safe ones.
unsafe impl Send for Poster {}
unsafe impl Sync for Poster {}

/// The library's version, "MAJOR.MINOR.PATCH", and as a number.
pub fn version() -> (&'static str, u32) {
    unsafe {
        let text = CStr::from_ptr(sys::async_version_string()).to_str().unwrap_or("");
        (text, sys::async_version())
    }
}

pub(crate) fn cstring(text: &str) -> Result<CString> {
    CString::new(text).map_err(|_| Error::INVAL)
}
