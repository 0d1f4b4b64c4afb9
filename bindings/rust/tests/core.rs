//! Loop, call_soon, post, Timer, Future, Promise, executor: every bound
//! function, bad input, panics in callbacks, drop order.

use libasync::{Error, Hook, HookKind, Loop, Poster, Promise, RunMode, Timer};
use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

#[test]
fn error_names_and_messages() {
    assert_eq!(Error::INVAL.name(), "ASYNC_EINVAL");
    assert_eq!(Error::INVAL.code(), -1);
    assert!(!Error::CLOSED.to_string().is_empty());
    assert_eq!(format!("{:?}", Error::CLOSED), "ASYNC_ECLOSED(-4)");
    let boxed: Box<dyn std::error::Error> = Box::new(Error::TIMEDOUT);
    assert_eq!(boxed.to_string(), Error::TIMEDOUT.message());
    assert!(!Error::from_code(-9999).name().is_empty());
    // One constant per code, each named after its own C name.
    let constants = [
        (Error::INVAL, "INVAL"),
        (Error::NOMEM, "NOMEM"),
        (Error::BUSY, "BUSY"),
        (Error::CLOSED, "CLOSED"),
        (Error::CANCELED, "CANCELED"),
        (Error::TIMEDOUT, "TIMEDOUT"),
        (Error::STATE, "STATE"),
        (Error::BADF, "BADF"),
        (Error::MFILE, "MFILE"),
        (Error::IO, "IO"),
        (Error::RANGE, "RANGE"),
        (Error::INTERNAL, "INTERNAL"),
        (Error::NOTFOUND, "NOTFOUND"),
        (Error::NODATA, "NODATA"),
        (Error::REFUSED, "REFUSED"),
        (Error::SERVFAIL, "SERVFAIL"),
        (Error::BADNAME, "BADNAME"),
        (Error::CONNREFUSED, "CONNREFUSED"),
        (Error::CONNRESET, "CONNRESET"),
        (Error::PIPE, "PIPE"),
        (Error::NOBUFS, "NOBUFS"),
        (Error::HOSTUNREACH, "HOSTUNREACH"),
        (Error::NETUNREACH, "NETUNREACH"),
        (Error::ADDRINUSE, "ADDRINUSE"),
        (Error::ADDRNOTAVAIL, "ADDRNOTAVAIL"),
        (Error::EOF, "EOF"),
        (Error::MSGSIZE, "MSGSIZE"),
        (Error::ACCES, "ACCES"),
        (Error::WRONGTHREAD, "WRONGTHREAD"),
        (Error::NOTSUP, "NOTSUP"),
        (Error::NOENT, "NOENT"),
        (Error::NOEXEC, "NOEXEC"),
        (Error::PROTO, "PROTO"),
        (Error::TLS, "TLS"),
        (Error::CERT, "CERT"),
        (Error::TRUNCATED, "TRUNCATED"),
    ];
    for (index, (error, name)) in constants.iter().enumerate() {
        assert_eq!(error.code(), -(index as i32) - 1, "codes in order, no gap");
        assert_eq!(error.name(), format!("ASYNC_E{}", name));
    }
    let (text, number) = libasync::version();
    assert!(!text.is_empty() && number > 0);
}

#[test]
fn call_soon_runs_in_order_once() {
    let lp = Loop::new().unwrap();
    let seen = Rc::new(RefCell::new(Vec::new()));
    for i in 0..3 {
        let seen = seen.clone();
        lp.call_soon(move || seen.borrow_mut().push(i)).unwrap();
    }
    assert_eq!(lp.run().unwrap(), false);
    assert_eq!(*seen.borrow(), vec![0, 1, 2]);
    assert!(lp.metric(libasync::Metric::Callbacks).unwrap() >= 3);
    assert!(lp.metric(libasync::Metric::Iterations).unwrap() >= 1);
    lp.metric(libasync::Metric::PollTimeNs).unwrap();
}

#[test]
fn loop_queries_and_stop() {
    let lp = Loop::new().unwrap();
    assert!(!lp.alive());
    lp.update_now();
    let before = lp.now();
    assert_eq!(lp.poll_timeout(), None, "no timer: no limit");
    let timer = Timer::new(&lp).unwrap();
    timer.start(10_000, 0, || {}).unwrap();
    assert!(lp.alive());
    let handle = lp.clone();
    lp.call_soon(move || handle.stop()).unwrap();
    assert_eq!(lp.run().unwrap(), true, "stopped with the timer pending");
    assert!(lp.now() >= before);
    assert!(lp.poll_timeout().unwrap() > 1000);
    assert_eq!(lp.run_mode(RunMode::NoWait).unwrap(), true);
    lp.set_slow_callback(1000).unwrap();
    lp.set_thread_check(true).unwrap();
    assert!(lp.walk().unwrap().contains(&1), "the timer is walked");
    drop(timer);
    lp.run().unwrap();
    assert!(lp.walk().unwrap().is_empty());
}

#[test]
fn hooks() {
    let lp = Loop::new().unwrap();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let mut hooks = Vec::new();
    for kind in [HookKind::Prepare, HookKind::Check, HookKind::Idle] {
        let hook = Rc::new(Hook::new(&lp, kind).unwrap());
        assert_eq!(hook.kind().unwrap(), kind);
        let (s, h) = (seen.clone(), Rc::downgrade(&hook));
        hook.start(move || {
            s.borrow_mut().push(kind);
            h.upgrade().unwrap().stop().unwrap();
        })
        .unwrap();
        lp.call_soon(|| {}).unwrap(); // a check hook alone would wait in the poll
        lp.run().unwrap();
        hooks.push(hook);
    }
    assert_eq!(*seen.borrow(), vec![HookKind::Prepare, HookKind::Check, HookKind::Idle]);
    // An idle hook: the poll does not block while it is active.
    hooks[2].start(|| panic!("in a hook")).unwrap();
    let payload = catch_unwind(AssertUnwindSafe(|| lp.run())).unwrap_err();
    assert_eq!(panic_message(payload), "in a hook");
    drop(hooks);
    lp.run().unwrap();
}

#[test]
fn nested_run_is_busy() {
    let lp = Loop::new().unwrap();
    let other = Rc::new(Loop::new().unwrap());
    let result = Rc::new(Cell::new(Ok(true)));
    let (r, o) = (result.clone(), other.clone());
    lp.call_soon(move || r.set(o.run())).unwrap();
    lp.run().unwrap();
    assert_eq!(result.get(), Ok(false), "another loop may run inside a callback");
    let (r, o) = (result.clone(), other.clone());
    other.call_soon(move || r.set(o.run())).unwrap();
    other.run().unwrap();
    assert_eq!(result.get(), Err(Error::BUSY), "the same loop may not");
    let (r, o) = (result.clone(), other.clone());
    other.call_soon(move || r.set(o.block_on(async { true }))).unwrap();
    other.run().unwrap();
    assert_eq!(result.get(), Err(Error::BUSY));
    let (r, o) = (Rc::new(Cell::new(None)), other.clone());
    let r2 = r.clone();
    other
        .call_soon(move || {
            let (_promise, future) = Promise::<u8>::new(&o).unwrap();
            r2.set(Some(o.run_until(&future)));
        })
        .unwrap();
    other.run().unwrap();
    assert_eq!(r.get(), Some(Err(Error::BUSY)));
}

#[test]
fn poster_from_threads() {
    let lp = Loop::new().unwrap();
    let poster: Poster = lp.poster();
    fn assert_send_sync<T: Send + Sync>(_: &T) {}
    assert_send_sync(&poster);
    poster.hold().unwrap();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (poster, count) = (poster.clone(), count.clone());
            std::thread::spawn(move || {
                for _ in 0..100 {
                    let count = count.clone();
                    poster
                        .post(move || {
                            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        })
                        .unwrap();
                }
                poster.wakeup().unwrap();
            })
        })
        .collect();
    let (p, c) = (poster.clone(), count.clone());
    let handle = lp.clone();
    let timer = Timer::new(&lp).unwrap();
    timer
        .start(1, 1, move || {
            if c.load(std::sync::atomic::Ordering::SeqCst) == 400 {
                p.unhold().unwrap();
                handle.stop();
            }
        })
        .unwrap();
    lp.run().unwrap();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 400);
    drop(timer);
    drop(lp);
    assert_eq!(poster.post(|| {}), Err(Error::CLOSED), "posting to a dropped loop");
    assert_eq!(poster.wakeup(), Err(Error::CLOSED));
}

#[test]
fn timer_repeats_and_queries() {
    let lp = Loop::new().unwrap();
    let timer = Rc::new(Timer::new(&lp).unwrap());
    assert!(!timer.is_active());
    let fired = Rc::new(Cell::new(0));
    let (f, t) = (fired.clone(), Rc::downgrade(&timer));
    timer
        .start(1, 2, move || {
            f.set(f.get() + 1);
            if f.get() == 3 {
                t.upgrade().unwrap().stop().unwrap();
            }
        })
        .unwrap();
    assert!(timer.is_active() && timer.has_ref() && !timer.is_closing());
    assert_eq!(timer.repeat().unwrap(), 2);
    timer.set_repeat(3).unwrap();
    assert!(timer.due_in().unwrap() <= 1);
    lp.run().unwrap();
    assert_eq!(fired.get(), 3);
    timer.set_ref(false).unwrap();
    assert!(!timer.has_ref());
    timer.set_ref(true).unwrap();
    timer.again().unwrap();
    timer.stop().unwrap();
    Rc::try_unwrap(timer).ok().unwrap().close();
    lp.run().unwrap();
}

#[test]
fn timer_callback_may_replace_itself() {
    let lp = Loop::new().unwrap();
    let timer = Rc::new(Timer::new(&lp).unwrap());
    let seen = Rc::new(RefCell::new(Vec::new()));
    let (s, t) = (seen.clone(), Rc::downgrade(&timer));
    timer
        .start(0, 0, move || {
            s.borrow_mut().push("first");
            let s2 = s.clone();
            t.upgrade().unwrap().start(0, 0, move || s2.borrow_mut().push("second")).unwrap();
        })
        .unwrap();
    lp.run().unwrap();
    assert_eq!(*seen.borrow(), vec!["first", "second"]);
}

/// Counts drops, so a test sees a closure freed exactly once.
struct DropCount(Rc<Cell<u32>>);
impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

#[test]
fn closures_freed_once() {
    let lp = Loop::new().unwrap();
    let drops = Rc::new(Cell::new(0));
    let guard = DropCount(drops.clone());
    lp.call_soon(move || {
        let _kept = &guard;
    })
    .unwrap();
    let timer = Timer::new(&lp).unwrap();
    let guard = DropCount(drops.clone());
    timer
        .start(0, 1, move || {
            let _kept = &guard;
        })
        .unwrap();
    let guard = DropCount(drops.clone());
    timer
        .start(0, 1, move || {
            let _kept = &guard;
        })
        .unwrap(); // replaces: the first closure goes
    assert_eq!(drops.get(), 1);
    lp.run_mode(RunMode::NoWait).unwrap();
    assert_eq!(drops.get(), 2, "the call_soon closure ran and went");
    drop(timer);
    assert_eq!(drops.get(), 2, "freed on the close callback, not before");
    lp.run().unwrap();
    assert_eq!(drops.get(), 3);
}

#[test]
fn panics_resume_in_run() {
    let lp = Loop::new().unwrap();
    lp.call_soon(|| panic!("in call_soon")).unwrap();
    let ran_after = Rc::new(Cell::new(false));
    let r = ran_after.clone();
    lp.call_soon(move || r.set(true)).unwrap();
    let payload = catch_unwind(AssertUnwindSafe(|| lp.run())).unwrap_err();
    assert_eq!(panic_message(payload), "in call_soon");
    lp.run().unwrap();
    assert!(ran_after.get(), "the loop works after a panic");

    let timer = Timer::new(&lp).unwrap();
    timer.start(0, 0, || panic!("in a timer")).unwrap();
    let payload = catch_unwind(AssertUnwindSafe(|| lp.run())).unwrap_err();
    assert_eq!(panic_message(payload), "in a timer");

    lp.poster().post(|| panic!("in a post")).unwrap();
    let payload = catch_unwind(AssertUnwindSafe(|| lp.run())).unwrap_err();
    assert_eq!(panic_message(payload), "in a post");

    lp.spawn(async { panic!("in a task") });
    let payload = catch_unwind(AssertUnwindSafe(|| lp.run())).unwrap_err();
    assert_eq!(panic_message(payload), "in a task");

    let payload = catch_unwind(AssertUnwindSafe(|| lp.block_on(async { panic!("in block_on") }))).unwrap_err();
    assert_eq!(panic_message(payload), "in block_on");

    struct PanicOnDrop;
    impl Drop for PanicOnDrop {
        fn drop(&mut self) {
            panic!("in a closure's drop");
        }
    }
    let timer = Timer::new(&lp).unwrap();
    let bomb = PanicOnDrop;
    timer
        .start(1000, 0, move || {
            let _kept = &bomb;
        })
        .unwrap();
    drop(timer);
    let payload = catch_unwind(AssertUnwindSafe(|| lp.run())).unwrap_err();
    assert_eq!(panic_message(payload), "in a closure's drop");

    lp.set_log(|_, _| panic!("in the log hook")).unwrap();
    lp.set_slow_callback(1).unwrap();
    lp.call_soon(|| std::thread::sleep(std::time::Duration::from_millis(5))).unwrap();
    let payload = catch_unwind(AssertUnwindSafe(|| lp.run())).unwrap_err();
    assert_eq!(panic_message(payload), "in the log hook");
}

#[test]
fn log_hook_gets_slow_callbacks() {
    let lp = Loop::new().unwrap();
    let lines = Rc::new(RefCell::new(Vec::new()));
    let l = lines.clone();
    lp.set_log(move |level, message| l.borrow_mut().push((level, message.to_string()))).unwrap();
    lp.set_slow_callback(1).unwrap();
    lp.call_soon(|| std::thread::sleep(std::time::Duration::from_millis(5))).unwrap();
    lp.run().unwrap();
    assert!(!lines.borrow().is_empty());
    lp.set_log(|_, _| {}).unwrap(); // the first hook is released
}

#[test]
fn objects_outlive_the_loop() {
    let lp = Loop::new().unwrap();
    let drops = Rc::new(Cell::new(0));
    let timer = Timer::new(&lp).unwrap();
    let guard = DropCount(drops.clone());
    timer
        .start(10_000, 0, move || {
            let _kept = &guard;
        })
        .unwrap();
    let (promise, future) = Promise::<u32>::new(&lp).unwrap();
    let sleeper = lp.spawn(async {});
    drop(lp); // the loop goes first: the objects are ended
    assert_eq!(drops.get(), 1, "the timer's closure was freed by the loop's end");
    assert!(timer.is_closing());
    assert_eq!(timer.start(1, 0, || {}), Err(Error::CLOSED));
    assert_eq!(timer.stop(), Err(Error::CLOSED));
    assert_eq!(timer.due_in(), Err(Error::CLOSED));
    assert!(future.is_done(), "the pending future was cancelled");
    assert_eq!(promise.resolve(1), Err(Error::STATE));
    drop(sleeper);
    drop(future);
    drop(promise);
    drop(timer); // the C loop is freed with the last object
}

#[test]
fn promise_and_future() {
    let lp = Loop::new().unwrap();
    let (promise, future) = Promise::<String>::new(&lp).unwrap();
    assert!(promise.is_pending());
    let hook = Rc::new(Cell::new(None));
    let h = hook.clone();
    promise.on_cancel(move |cancelled| h.set(Some(cancelled))).unwrap();
    assert_eq!(promise.on_cancel(|_| {}), Err(Error::STATE).or(promise.on_cancel(|_| {})));
    let handle = lp.clone();
    lp.call_soon(move || {
        promise.resolve("hello".to_string()).unwrap();
        assert_eq!(promise.resolve("again".to_string()), Err(Error::STATE));
        drop(handle);
    })
    .unwrap();
    lp.run_until(&future).unwrap();
    assert_eq!(hook.get(), Some(false));
    let value = lp.block_on(future).unwrap();
    assert_eq!(value.unwrap(), "hello");

    let (promise, future) = Promise::<u8>::new(&lp).unwrap();
    promise.reject(Error::TIMEDOUT).unwrap();
    assert_eq!(lp.block_on(future).unwrap(), Err(Error::TIMEDOUT));
    // Nothing will complete it: run_until gives an error, not a hang.
    assert!(lp.run_until(&Promise::<u8>::new(&lp).unwrap().1).is_err());
}

#[test]
fn future_cancel_and_drop_pending() {
    let lp = Loop::new().unwrap();
    let (promise, future) = Promise::<u8>::new(&lp).unwrap();
    let hook = Rc::new(Cell::new(None));
    let h = hook.clone();
    promise.on_cancel(move |cancelled| h.set(Some(cancelled))).unwrap();
    future.cancel().unwrap();
    assert_eq!(hook.get(), Some(true));
    assert_eq!(lp.block_on(future).unwrap(), Err(Error::CANCELED));

    // Dropped while awaited (its done callback registered): the callback
    // still comes once, the producer sees the cancel.
    struct PollOnce<F>(Option<F>);
    impl<F: std::future::Future + Unpin> std::future::Future for PollOnce<F> {
        type Output = bool;
        fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<bool> {
            let mut inner = self.0.take().unwrap();
            let pending = std::pin::Pin::new(&mut inner).poll(cx).is_pending();
            std::task::Poll::Ready(pending) // inner dropped here
        }
    }
    let (promise, future) = Promise::<u8>::new(&lp).unwrap();
    assert!(lp.block_on(PollOnce(Some(future))).unwrap());
    assert!(!promise.is_pending(), "dropping the awaited future cancelled it");
    lp.run().unwrap();

    // A pending future dropped outright.
    let (promise, future) = Promise::<u8>::new(&lp).unwrap();
    let mut future = future;
    assert!(future.try_result().is_none());
    drop(future);
    assert!(!promise.is_pending());
    lp.run().unwrap();
}

#[test]
fn future_timeout() {
    let lp = Loop::new().unwrap();
    let (_promise, future) = Promise::<u8>::new(&lp).unwrap();
    let timed = future.timeout(5).unwrap();
    assert_eq!(lp.block_on(timed).unwrap(), Err(Error::TIMEDOUT));
    let (promise, future) = Promise::<u8>::new(&lp).unwrap();
    let timed = future.timeout(10_000).unwrap();
    promise.resolve(7).unwrap();
    assert_eq!(lp.block_on(timed).unwrap(), Ok(7));
}

#[test]
fn executor_spawn_sleep_and_wakes_from_threads() {
    let lp = Loop::new().unwrap();
    let handle = lp.clone();
    let order = Rc::new(RefCell::new(Vec::new()));
    let o = order.clone();
    let a = lp.spawn(async move {
        handle.sleep(300).await.unwrap();
        o.borrow_mut().push("slow");
        1
    });
    let (handle, o) = (lp.clone(), order.clone());
    let b = lp.spawn(async move {
        handle.sleep(1).await.unwrap();
        o.borrow_mut().push("fast");
        2
    });
    let sum = lp.block_on(async move { a.await + b.await }).unwrap();
    assert_eq!(sum, 3);
    assert_eq!(*order.borrow(), vec!["fast", "slow"]);

    // A waker used from another thread posts the wake.
    struct Remote {
        started: bool,
        done: std::sync::Arc<std::sync::atomic::AtomicBool>,
    }
    impl std::future::Future for Remote {
        type Output = ();
        fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
            if self.done.load(std::sync::atomic::Ordering::SeqCst) {
                return std::task::Poll::Ready(());
            }
            if !self.started {
                self.started = true;
                let (waker, done) = (cx.waker().clone(), self.done.clone());
                std::thread::spawn(move || {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    done.store(true, std::sync::atomic::Ordering::SeqCst);
                    waker.wake();
                });
            }
            std::task::Poll::Pending
        }
    }
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    lp.block_on(Remote { started: false, done: done.clone() }).unwrap();
    let handle = lp.clone();
    let done2 = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let d = done2.clone();
    lp.block_on(async move { handle.spawn(Remote { started: false, done: d }).await }).unwrap();
    assert!(done2.load(std::sync::atomic::Ordering::SeqCst));
}

#[test]
fn pending_tasks_dropped_with_the_loop() {
    let lp = Loop::new().unwrap();
    let drops = Rc::new(Cell::new(0));
    let guard = DropCount(drops.clone());
    let handle = lp.clone();
    let (_promise, future) = Promise::<u8>::new(&lp).unwrap();
    lp.spawn(async move {
        let _guard = guard;
        let _ = future.await;
        handle.sleep(1).await.unwrap();
    });
    lp.run_mode(RunMode::NoWait).unwrap();
    assert_eq!(drops.get(), 0);
    drop(lp);
    assert_eq!(drops.get(), 1);
}

#[test]
fn dropping_a_held_loop_does_not_wait_for_the_hold() {
    let lp = Loop::new().unwrap();
    let poster = lp.poster();
    poster.hold().unwrap(); // as if another thread still had work for it
    let timer = Timer::new(&lp).unwrap(); // keeps the C loop after the Loop
    let started = std::time::Instant::now();
    drop(lp);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    poster.unhold().unwrap(); // the loop itself is still there
    drop(timer); // the last object: the loop is freed now
    assert_eq!(poster.post(|| {}), Err(Error::CLOSED));
}

#[test]
fn shutdown_ends_everything_and_the_loop_goes_on() {
    let lp = Loop::new().unwrap();
    let drops = Rc::new(Cell::new(0));
    let timer = Timer::new(&lp).unwrap();
    let guard = DropCount(drops.clone());
    timer
        .start(60_000, 0, move || {
            let _kept = &guard;
        })
        .unwrap();
    let (_promise, future) = Promise::<u8>::new(&lp).unwrap();
    lp.shutdown().unwrap();
    assert!(future.is_done(), "pending futures cancelled at once");
    lp.run().unwrap();
    assert_eq!(drops.get(), 1, "the handle's close callback freed its closure");
    assert_eq!(timer.start(1, 0, || {}), Err(Error::CLOSED));
    assert_eq!(lp.block_on(future).unwrap(), Err(Error::CANCELED));
    let timer = Timer::new(&lp).unwrap(); // the loop stays usable
    let fired = Rc::new(Cell::new(false));
    let f = fired.clone();
    timer.start(0, 0, move || f.set(true)).unwrap();
    lp.run().unwrap();
    assert!(fired.get());
}

#[test]
fn panic_in_a_cancel_hook_resumes_in_the_next_run() {
    let lp = Loop::new().unwrap();
    let (promise, future) = Promise::<u8>::new(&lp).unwrap();
    promise.on_cancel(|_| panic!("in a cancel hook")).unwrap();
    future.cancel().unwrap(); // the hook runs inside cancel: its panic is kept
    let payload = catch_unwind(AssertUnwindSafe(|| lp.run())).unwrap_err();
    assert_eq!(panic_message(payload), "in a cancel hook");
    drop(future);
    drop(promise);
    lp.run().unwrap();
}

#[test]
fn timeouts() {
    let lp = Loop::new().unwrap();
    let handle = lp.clone();
    let (slow, fast) = lp
        .block_on(async move {
            let (_promise, never) = Promise::<u8>::new(&handle).unwrap();
            let slow = handle.timeout(5, never).await;
            let fast = handle.timeout(10_000, handle.sleep(1)).await;
            (slow, fast)
        })
        .unwrap();
    assert_eq!(slow.err(), Some(Error::TIMEDOUT));
    assert_eq!(fast, Ok(Ok(())));
    lp.run().unwrap(); // nothing left: the timers went with their futures
}

#[test]
fn call_soon_small_and_large_closures() {
    let lp = Loop::new().unwrap();
    let (ran, drops) = (Rc::new(Cell::new(0u64)), Rc::new(Cell::new(0)));
    for round in 0..200u64 {
        // A closure of one word (a reused cell) and one of ten (its own box).
        let (r, d) = (ran.clone(), DropCount(drops.clone()));
        lp.call_soon(move || {
            let _d = &d;
            r.set(r.get() + 1)
        })
        .unwrap();
        let (r, d, big) = (ran.clone(), DropCount(drops.clone()), [round; 8]);
        lp.call_soon(move || {
            let _d = &d;
            r.set(r.get() + big.iter().sum::<u64>() / 8 - round + 1)
        })
        .unwrap();
        if round % 50 == 0 {
            lp.run().unwrap();
        }
    }
    lp.run().unwrap();
    assert_eq!(ran.get(), 400);
    assert_eq!(drops.get(), 400, "each closure dropped once");
    // Pending when the loop goes: dropped once, never run twice.
    let d = DropCount(drops.clone());
    lp.call_soon(move || drop(d)).unwrap();
    let payload = {
        lp.call_soon(|| panic!("in a small closure")).unwrap();
        catch_unwind(AssertUnwindSafe(|| lp.run())).unwrap_err()
    };
    assert_eq!(panic_message(payload), "in a small closure");
    let d = DropCount(drops.clone());
    lp.call_soon(move || drop(d)).unwrap();
    drop(lp);
    assert_eq!(drops.get(), 402);
}
