//! Handles: Timer, Watcher, Signal (and the server's handle, stream.rs).
//! Each handle's userdata is one strong reference to its HandleCore, given
//! to the library at creation and taken back by the close callback (the
//! final notification), which also frees the closure.

use crate::error::check;
use crate::{guard, sys, Error, LoopHandle, LoopInner, Result};
use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::rc::Rc;

/// `Watcher` events: the fd is readable.
pub const READABLE: u32 = sys::ASYNC_READABLE;
/// `Watcher` events: the fd is writable.
pub const WRITABLE: u32 = sys::ASYNC_WRITABLE;

pub(crate) enum Callback {
    None,
    Timer(Box<dyn FnMut()>),
    Watcher(Box<dyn FnMut(u32)>),
    Signal(Box<dyn FnMut(i32)>),
    Hook(Box<dyn FnMut()>),
    Server(Box<dyn FnMut() -> Option<(*const sys::async_stream_protocol, *mut c_void)>>),
}

pub(crate) struct HandleCore {
    /// The handle; null once its close callback ran.
    raw: Cell<*mut sys::async_handle>,
    callback: RefCell<Callback>,
    _loop: Rc<LoopInner>,
}

impl HandleCore {
    /// A core for a handle `create` makes with the given userdata.
    pub(crate) fn create(
        lp: &LoopHandle,
        create: impl FnOnce(*mut c_void) -> std::result::Result<*mut sys::async_handle, i32>,
    ) -> Result<Rc<HandleCore>> {
        let core = Rc::new(HandleCore {
            raw: Cell::new(std::ptr::null_mut()),
            callback: RefCell::new(Callback::None),
            _loop: lp.inner().clone(),
        });
        let userdata = Rc::into_raw(core.clone()) as *mut c_void;
        match create(userdata) {
            Ok(raw) => {
                core.raw.set(raw);
                Ok(core)
            }
            Err(rc) => {
                // Not created: the reference given is still ours.
                drop(unsafe { Rc::from_raw(userdata as *const HandleCore) });
                Err(Error::from_code(rc))
            }
        }
    }

    /// The handle while it is open, else ECLOSED.
    pub(crate) fn raw(&self) -> Result<*mut sys::async_handle> {
        let raw = self.raw.get();
        if raw.is_null() {
            Err(Error::CLOSED)
        } else {
            Ok(raw)
        }
    }

    pub(crate) fn set_callback(&self, callback: Callback) {
        *self.callback.borrow_mut() = callback;
    }

    pub(crate) fn close(&self) {
        if let Ok(raw) = self.raw() {
            // ECLOSED when already closing (a loop shutdown): the close
            // callback comes anyway.
            unsafe { sys::async_handle_close(raw, Some(close_trampoline)) };
        }
    }

    /// Runs the callback, out of its cell so that it may replace itself.
    pub(crate) fn dispatch(&self, run: impl FnOnce(&mut Callback)) {
        let mut callback = std::mem::replace(&mut *self.callback.borrow_mut(), Callback::None);
        run(&mut callback);
        let mut slot = self.callback.borrow_mut();
        if matches!(*slot, Callback::None) && !self.raw.get().is_null() {
            *slot = callback;
        }
    }

    pub(crate) fn set_ref(&self, on: bool) -> Result<()> {
        let raw = self.raw()?;
        check(unsafe {
            if on {
                sys::async_handle_ref(raw)
            } else {
                sys::async_handle_unref(raw)
            }
        })
        .map(drop)
    }

    pub(crate) fn has_ref(&self) -> bool {
        self.raw().map(|raw| unsafe { sys::async_handle_has_ref(raw) } > 0).unwrap_or(false)
    }

    pub(crate) fn is_active(&self) -> bool {
        self.raw().map(|raw| unsafe { sys::async_handle_is_active(raw) } > 0).unwrap_or(false)
    }

    pub(crate) fn is_closing(&self) -> bool {
        self.raw().map(|raw| unsafe { sys::async_handle_is_closing(raw) } > 0).unwrap_or(true)
    }
}

/// The close callback of every handle of this crate (and of the loop's shutdown).
pub(crate) unsafe extern "C" fn close_trampoline(handle: *mut sys::async_handle, userdata: *mut c_void) {
    if userdata.is_null() {
        return;
    }
    let core = Rc::from_raw(userdata as *const HandleCore);
    core.raw.set(std::ptr::null_mut());
    let callback = std::mem::replace(&mut *core.callback.borrow_mut(), Callback::None);
    // Dropping a closure runs user code (its captures' Drop).
    let raw_loop = sys::async_handle_loop(handle);
    guard(raw_loop, (), move || {
        drop(callback);
        drop(core);
    });
}

/// Recovers the core of a callback's userdata, borrowed for the call.
unsafe fn core<'a>(userdata: *mut c_void) -> &'a HandleCore {
    &*(userdata as *const HandleCore)
}

macro_rules! handle_methods {
    ($type:ident) => {
        impl $type {
            /// Makes the handle keep `Loop::run` going (the default).
            pub fn set_ref(&self, on: bool) -> Result<()> {
                self.core.set_ref(on)
            }
            /// Whether the handle keeps `Loop::run` going.
            pub fn has_ref(&self) -> bool {
                self.core.has_ref()
            }
            /// Whether the handle is started.
            pub fn is_active(&self) -> bool {
                self.core.is_active()
            }
            /// Whether the handle is closing or closed (the loop was dropped).
            pub fn is_closing(&self) -> bool {
                self.core.is_closing()
            }
            /// Closes the handle; its callback is freed once the close completes.
            pub fn close(self) {}
        }

        impl Drop for $type {
            fn drop(&mut self) {
                self.core.close();
            }
        }
    };
}

/// A timer: a callback after a timeout, then optionally every `repeat` ms.
pub struct Timer {
    core: Rc<HandleCore>,
    raw: *mut sys::async_timer,
}
handle_methods!(Timer);

unsafe extern "C" fn timer_trampoline(timer: *mut sys::async_timer, userdata: *mut c_void) {
    let core = core(userdata);
    let raw_loop = sys::async_handle_loop(sys::async_timer_handle(timer));
    guard(raw_loop, (), || {
        core.dispatch(|callback| {
            if let Callback::Timer(f) = callback {
                f()
            }
        })
    });
}

impl Timer {
    /// A stopped timer of `lp`.
    pub fn new(lp: &LoopHandle) -> Result<Timer> {
        let mut raw = std::ptr::null_mut();
        let core = HandleCore::create(lp, |userdata| unsafe {
            let rc = sys::async_timer_new(&mut raw, lp.as_raw(), userdata);
            if rc < 0 {
                Err(rc)
            } else {
                Ok(sys::async_timer_handle(raw))
            }
        })?;
        Ok(Timer { core, raw })
    }

    fn raw(&self) -> Result<*mut sys::async_timer> {
        self.core.raw().map(|_| self.raw)
    }

    /// (Re)starts: `f` runs after `timeout_ms`, then every `repeat_ms` (0: once).
    pub fn start<F: FnMut() + 'static>(&self, timeout_ms: u64, repeat_ms: u64, f: F) -> Result<()> {
        let raw = self.raw()?;
        check(unsafe { sys::async_timer_start(raw, timeout_ms, repeat_ms, Some(timer_trampoline)) })?;
        self.core.set_callback(Callback::Timer(Box::new(f)));
        Ok(())
    }

    /// Stops the timer.
    pub fn stop(&self) -> Result<()> {
        check(unsafe { sys::async_timer_stop(self.raw()?) }).map(drop)
    }

    /// Restarts with timeout = repeat.
    pub fn again(&self) -> Result<()> {
        check(unsafe { sys::async_timer_again(self.raw()?) }).map(drop)
    }

    /// Sets the repeat interval.
    pub fn set_repeat(&self, repeat_ms: u64) -> Result<()> {
        check(unsafe { sys::async_timer_set_repeat(self.raw()?, repeat_ms) }).map(drop)
    }

    /// The repeat interval.
    pub fn repeat(&self) -> Result<u64> {
        let mut ms = 0;
        check(unsafe { sys::async_timer_get_repeat(&mut ms, self.raw()?) })?;
        Ok(ms)
    }

    /// Milliseconds until the timer fires.
    pub fn due_in(&self) -> Result<u64> {
        let mut ms = 0;
        check(unsafe { sys::async_timer_due_in(&mut ms, self.raw()?) })?;
        Ok(ms)
    }
}

/// Watches a file descriptor for readiness ([`READABLE`], [`WRITABLE`]).
pub struct Watcher {
    core: Rc<HandleCore>,
    raw: *mut sys::async_watcher,
}
handle_methods!(Watcher);

unsafe extern "C" fn watcher_trampoline(watcher: *mut sys::async_watcher, revents: u32, userdata: *mut c_void) {
    let core = core(userdata);
    let raw_loop = sys::async_handle_loop(sys::async_watcher_handle(watcher));
    guard(raw_loop, (), || {
        core.dispatch(|callback| {
            if let Callback::Watcher(f) = callback {
                f(revents)
            }
        })
    });
}

impl Watcher {
    /// A stopped watcher of `fd` (not owned: the caller closes it after the watcher).
    pub fn new(lp: &LoopHandle, fd: i32) -> Result<Watcher> {
        let mut raw = std::ptr::null_mut();
        let core = HandleCore::create(lp, |userdata| unsafe {
            let rc = sys::async_watcher_new(&mut raw, lp.as_raw(), fd, userdata);
            if rc < 0 {
                Err(rc)
            } else {
                Ok(sys::async_watcher_handle(raw))
            }
        })?;
        Ok(Watcher { core, raw })
    }

    fn raw(&self) -> Result<*mut sys::async_watcher> {
        self.core.raw().map(|_| self.raw)
    }

    /// Starts watching `events`; `f(revents)` runs on each readiness.
    pub fn start<F: FnMut(u32) + 'static>(&self, events: u32, f: F) -> Result<()> {
        check(unsafe { sys::async_watcher_start(self.raw()?, events, Some(watcher_trampoline)) })?;
        self.core.set_callback(Callback::Watcher(Box::new(f)));
        Ok(())
    }

    /// Changes the watched events (0 stops).
    pub fn set_events(&self, events: u32) -> Result<()> {
        check(unsafe { sys::async_watcher_set_events(self.raw()?, events) }).map(drop)
    }

    /// Stops watching.
    pub fn stop(&self) -> Result<()> {
        check(unsafe { sys::async_watcher_stop(self.raw()?) }).map(drop)
    }

    /// The watched fd.
    pub fn fd(&self) -> Result<i32> {
        check(unsafe { sys::async_watcher_fd(self.raw()?) })
    }
}

/// Watches a signal number.
pub struct Signal {
    core: Rc<HandleCore>,
    raw: *mut sys::async_signal,
}
handle_methods!(Signal);

unsafe extern "C" fn signal_trampoline(signal: *mut sys::async_signal, signum: i32, userdata: *mut c_void) {
    let core = core(userdata);
    let raw_loop = sys::async_handle_loop(sys::async_signal_handle(signal));
    guard(raw_loop, (), || {
        core.dispatch(|callback| {
            if let Callback::Signal(f) = callback {
                f(signum)
            }
        })
    });
}

impl Signal {
    /// A stopped signal watcher.
    pub fn new(lp: &LoopHandle) -> Result<Signal> {
        let mut raw = std::ptr::null_mut();
        let core = HandleCore::create(lp, |userdata| unsafe {
            let rc = sys::async_signal_new(&mut raw, lp.as_raw(), userdata);
            if rc < 0 {
                Err(rc)
            } else {
                Ok(sys::async_signal_handle(raw))
            }
        })?;
        Ok(Signal { core, raw })
    }

    fn raw(&self) -> Result<*mut sys::async_signal> {
        self.core.raw().map(|_| self.raw)
    }

    /// Starts watching `signum`; `f(signum)` runs on the loop for each delivery.
    pub fn start<F: FnMut(i32) + 'static>(&self, signum: i32, f: F) -> Result<()> {
        check(unsafe { sys::async_signal_start(self.raw()?, signum, Some(signal_trampoline)) })?;
        self.core.set_callback(Callback::Signal(Box::new(f)));
        Ok(())
    }

    /// Stops watching.
    pub fn stop(&self) -> Result<()> {
        check(unsafe { sys::async_signal_stop(self.raw()?) }).map(drop)
    }

    /// The watched signal number (0 when stopped).
    pub fn signum(&self) -> Result<i32> {
        check(unsafe { sys::async_signal_signum(self.raw()?) })
    }
}

/// When a [`Hook`] runs in each loop iteration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookKind {
    /// Just before the poll.
    Prepare,
    /// Just after the poll.
    Check,
    /// While active; the poll does not block.
    Idle,
}

/// A callback run once per loop iteration (prepare, check or idle).
pub struct Hook {
    core: Rc<HandleCore>,
    raw: *mut sys::async_hook,
}
handle_methods!(Hook);

unsafe extern "C" fn hook_trampoline(hook: *mut sys::async_hook, userdata: *mut c_void) {
    let core = core(userdata);
    let raw_loop = sys::async_handle_loop(sys::async_hook_handle(hook));
    guard(raw_loop, (), || {
        core.dispatch(|callback| {
            if let Callback::Hook(f) = callback {
                f()
            }
        })
    });
}

impl Hook {
    /// A stopped hook of the given kind.
    pub fn new(lp: &LoopHandle, kind: HookKind) -> Result<Hook> {
        let kind = match kind {
            HookKind::Prepare => sys::async_hook_kind::ASYNC_HOOK_PREPARE,
            HookKind::Check => sys::async_hook_kind::ASYNC_HOOK_CHECK,
            HookKind::Idle => sys::async_hook_kind::ASYNC_HOOK_IDLE,
        };
        let mut raw = std::ptr::null_mut();
        let core = HandleCore::create(lp, |userdata| unsafe {
            let rc = sys::async_hook_new(&mut raw, lp.as_raw(), kind.0 as i32, userdata);
            if rc < 0 {
                Err(rc)
            } else {
                Ok(sys::async_hook_handle(raw))
            }
        })?;
        Ok(Hook { core, raw })
    }

    fn raw(&self) -> Result<*mut sys::async_hook> {
        self.core.raw().map(|_| self.raw)
    }

    /// Starts the hook with `f`.
    pub fn start<F: FnMut() + 'static>(&self, f: F) -> Result<()> {
        check(unsafe { sys::async_hook_start(self.raw()?, Some(hook_trampoline)) })?;
        self.core.set_callback(Callback::Hook(Box::new(f)));
        Ok(())
    }

    /// Stops the hook.
    pub fn stop(&self) -> Result<()> {
        check(unsafe { sys::async_hook_stop(self.raw()?) }).map(drop)
    }

    /// The hook's kind.
    pub fn kind(&self) -> Result<HookKind> {
        match check(unsafe { sys::async_hook_get_kind(self.raw()?) })? as u32 {
            k if k == sys::async_hook_kind::ASYNC_HOOK_PREPARE.0 => Ok(HookKind::Prepare),
            k if k == sys::async_hook_kind::ASYNC_HOOK_CHECK.0 => Ok(HookKind::Check),
            _ => Ok(HookKind::Idle),
        }
    }
}

/// The server's factory trampoline (stream.rs makes the callback).
pub(crate) unsafe extern "C" fn server_factory_trampoline(
    out_protocol: *mut *const sys::async_stream_protocol,
    out_userdata: *mut *mut c_void,
    server: *mut sys::async_server,
    userdata: *mut c_void,
) -> i32 {
    let core = core(userdata);
    let raw_loop = sys::async_handle_loop(sys::async_server_handle(server));
    let mut accepted = None;
    guard(raw_loop, (), || {
        core.dispatch(|callback| {
            if let Callback::Server(f) = callback {
                accepted = f();
            }
        })
    });
    match accepted {
        Some((protocol, stream_userdata)) => {
            *out_protocol = protocol;
            *out_userdata = stream_userdata;
            0
        }
        None => -1,
    }
}
