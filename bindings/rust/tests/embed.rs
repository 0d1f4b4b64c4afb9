//! Embedding (Loop::fd, Loop::run_for) and the executor hook
//! (set_executor, run_in_executor, Job): normal use, bad input, panics in
//! each callback, drop order.

use libasync::{Error, Job, Loop, RunMode, Timer};
use std::cell::{Cell, RefCell};
use std::os::unix::io::{AsRawFd, RawFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

#[repr(C)]
struct PollFd {
    fd: i32,
    events: i16,
    revents: i16,
}

extern "C" {
    fn poll(fds: *mut PollFd, count: u64, timeout_ms: i32) -> i32;
}

/// Whether `fd` turns readable within `timeout_ms` (a host loop's wait).
fn readable(fd: RawFd, timeout_ms: i32) -> bool {
    let mut entry = PollFd { fd, events: 1, revents: 0 };
    let rc = unsafe { poll(&mut entry, 1, timeout_ms) };
    assert!(rc >= 0, "poll failed");
    rc == 1 && entry.revents & 1 != 0
}

#[test]
fn fd_drives_the_loop_from_a_host_poll() {
    let lp = Loop::new().unwrap();
    let fd = lp.fd().unwrap().as_raw_fd();
    assert_eq!(lp.fd().unwrap().as_raw_fd(), fd, "the same fd every call");
    // Loop::new set the loop's userdata, a call between runs: the fd is
    // readable until a run applied it.
    lp.run_mode(RunMode::NoWait).unwrap();
    assert!(!readable(fd, 0), "nothing to do: not readable");

    let ran = Rc::new(Cell::new(0));
    let r = ran.clone();
    lp.call_soon(move || r.set(r.get() + 1)).unwrap();
    assert!(readable(fd, 1000), "a queued callback makes it readable");
    lp.run_mode(RunMode::NoWait).unwrap();
    assert_eq!(ran.get(), 1);
    assert!(!readable(fd, 0), "handled: unreadable again");

    // A timer started between runs: the host wakes when it is due.
    let timer = Timer::new(&lp).unwrap();
    let r = ran.clone();
    // Before the start: a timer is never early against a clock read before
    // it (one read after could come late on a loaded machine).
    let started = Instant::now();
    timer.start(20, 0, move || r.set(r.get() + 1)).unwrap();
    let mut rounds = 0;
    while ran.get() < 2 && rounds < 20 {
        assert!(readable(fd, 5000), "the timer wakes the host");
        lp.run_mode(RunMode::NoWait).unwrap();
        rounds += 1;
    }
    assert_eq!(ran.get(), 2, "the timer fired");
    assert!(started.elapsed() >= Duration::from_millis(15));

    // A post from another thread wakes it too.
    let poster = lp.poster();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || poster.post(move || tx.send(()).unwrap()).unwrap()).join().unwrap();
    assert!(readable(fd, 5000), "a post makes it readable");
    lp.run_mode(RunMode::NoWait).unwrap();
    rx.try_recv().expect("the post ran");
}

/// Re-runs this test binary's `name` test in a child with `env` set
/// (libev reads LIBEV_FLAGS when a loop is made: not in this process,
/// whose other tests run in parallel).
fn in_child(name: &str, env: (&str, &str)) {
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--test-threads=1", "-q"])
        .env(env.0, env.1)
        .env("LIBASYNC_RUST_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&child.stdout);
    assert!(child.status.success(), "the child test failed: {}", stdout);
    assert!(stdout.contains("1 passed"), "the child ran no test: {}", stdout);
}

#[test]
fn fd_is_not_supported_on_the_poll_backend() {
    if std::env::var_os("LIBASYNC_RUST_CHILD").is_none() {
        return in_child("fd_is_not_supported_on_the_poll_backend", ("LIBEV_FLAGS", "2"));
    }
    let lp = Loop::new().unwrap();
    assert_eq!(lp.fd().unwrap_err(), Error::NOTSUP);
    lp.call_soon(|| {}).unwrap();
    assert_eq!(lp.run().unwrap(), false, "the loop itself works");
}

#[test]
fn run_for_keeps_to_its_budget_and_the_order() {
    let lp = Loop::new().unwrap();
    let order = Rc::new(RefCell::new(Vec::new()));
    for i in 0..200 {
        let order = order.clone();
        lp.call_soon(move || {
            order.borrow_mut().push(i);
            std::thread::sleep(Duration::from_micros(200));
        })
        .unwrap();
    }
    assert_eq!(lp.run_for(Duration::from_millis(2)).unwrap(), true, "the budget ran out");
    let first = order.borrow().len();
    assert!(first > 0 && first < 200, "{} callbacks ran in 2 ms", first);
    let mut slices = 1;
    while lp.run_for(Duration::from_millis(2)).unwrap() {
        slices += 1;
        assert!(slices < 1000);
    }
    assert_eq!(*order.borrow(), (0..200).collect::<Vec<_>>(), "FIFO across slices");
}

#[test]
fn run_for_bad_input_nesting_and_panics() {
    let lp = Loop::new().unwrap();
    assert_eq!(lp.run_for(Duration::ZERO).unwrap_err(), Error::INVAL);
    assert_eq!(lp.run_for(Duration::from_nanos(999)).unwrap_err(), Error::INVAL);
    assert_eq!(lp.run_for(Duration::from_secs(1)).unwrap(), false, "nothing queued");

    // Nested inside a callback of the same loop: BUSY.
    let lp = Rc::new(lp);
    let nested = Rc::new(Cell::new(None));
    let (l, n) = (Rc::downgrade(&lp), nested.clone());
    lp.call_soon(move || n.set(Some(l.upgrade().unwrap().run_for(Duration::from_millis(1))))).unwrap();
    lp.run_for(Duration::from_millis(100)).unwrap();
    assert_eq!(nested.get(), Some(Err(Error::BUSY)));

    // A panic resumes in the caller of run_for; the loop goes on.
    lp.call_soon(|| panic!("in a run_for callback")).unwrap();
    let payload = catch_unwind(AssertUnwindSafe(|| lp.run_for(Duration::from_millis(100)))).unwrap_err();
    assert_eq!(panic_message(payload), "in a run_for callback");
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    lp.call_soon(move || r.set(true)).unwrap();
    lp.run_for(Duration::from_millis(100)).unwrap();
    assert!(ran.get());
}

/// An executor of one worker thread fed through a channel; the worker ends
/// when the sender (the loop's executor) is dropped.
fn worker_executor(lp: &Loop) -> std::thread::JoinHandle<usize> {
    let (tx, rx) = mpsc::channel::<Job>();
    lp.set_executor(move |job| tx.send(job).unwrap()).unwrap();
    std::thread::spawn(move || {
        let mut ran = 0;
        for job in rx {
            ran += job.run() as usize;
        }
        ran
    })
}

#[test]
fn run_in_executor_on_a_worker_thread() {
    let lp = Loop::new().unwrap();
    let worker = worker_executor(&lp);
    let loop_thread = std::thread::current().id();
    let future = lp.run_in_executor(move || (6 * 7, std::thread::current().id() != loop_thread)).unwrap();
    let (value, elsewhere) = lp.block_on(future).unwrap().unwrap();
    assert_eq!(value, 42);
    assert!(elsewhere, "the work ran on the worker");

    // Many at once, awaited from tasks; values may be heap objects.
    let handle = lp.clone();
    let total = lp
        .block_on(async move {
            let mut futures = Vec::new();
            for i in 0..20u64 {
                futures.push(handle.run_in_executor(move || vec![i; 3]).unwrap());
            }
            let mut total = 0;
            for future in futures {
                total += future.await.unwrap().iter().sum::<u64>();
            }
            total
        })
        .unwrap();
    assert_eq!(total, 3 * (0..20).sum::<u64>());
    lp.clear_executor().unwrap();
    assert_eq!(worker.join().unwrap(), 21, "clearing drops the sender: the worker ends");
}

#[test]
fn run_in_executor_without_executor_and_inline() {
    let lp = Loop::new().unwrap();
    assert_eq!(lp.run_in_executor(|| 1).err(), Some(Error::NOTSUP));
    lp.set_executor(|job| assert!(job.run())).unwrap();
    assert_eq!(lp.block_on(lp.run_in_executor(|| "inline").unwrap()).unwrap(), Ok("inline"));
    lp.clear_executor().unwrap();
    assert_eq!(lp.clear_executor(), Ok(()), "clearing twice is fine");
    assert_eq!(lp.run_in_executor(|| 1).err(), Some(Error::NOTSUP));
}

/// Counts drops of the values captured by works and returned by them.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn discarded_jobs_cancel_and_free_their_work() {
    let lp = Loop::new().unwrap();
    let drops = Arc::new(AtomicUsize::new(0));
    lp.set_executor(Job::discard).unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let (captured, r) = (Counted(drops.clone()), ran.clone());
    let future = lp
        .run_in_executor(move || {
            let _keep = &captured;
            r.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    assert_eq!(lp.block_on(future).unwrap(), Err(Error::CANCELED));
    assert_eq!(ran.load(Ordering::SeqCst), 0, "a discarded work never runs");
    assert_eq!(drops.load(Ordering::SeqCst), 1, "its closure was freed once");

    // Dropping the job is discarding it.
    lp.set_executor(drop).unwrap();
    let future = lp.run_in_executor(|| 1).unwrap();
    assert_eq!(lp.block_on(future).unwrap(), Err(Error::CANCELED));
}

#[test]
fn future_dropped_before_the_job_runs() {
    let lp = Loop::new().unwrap();
    let (tx, rx) = mpsc::channel::<Job>();
    lp.set_executor(move |job| tx.send(job).unwrap()).unwrap();
    let drops = Arc::new(AtomicUsize::new(0));
    let ran = Arc::new(AtomicUsize::new(0));
    let (captured, r) = (Counted(drops.clone()), ran.clone());
    let future = lp
        .run_in_executor(move || {
            let _keep = &captured;
            r.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    drop(future); // cancels the job not started yet
    let job = rx.try_recv().unwrap();
    assert!(!std::thread::spawn(move || job.run()).join().unwrap(), "cancelled first: not run");
    assert_eq!(lp.run().unwrap(), false, "the job came back: no work left");
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    assert_eq!(drops.load(Ordering::SeqCst), 1);

    // A running job finishes; its value is dropped on the loop's thread.
    let (value_drops, started) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (d, s) = (value_drops.clone(), started.clone());
    let future = lp
        .run_in_executor(move || {
            s.store(1, Ordering::SeqCst);
            Counted(d)
        })
        .unwrap();
    let job = rx.try_recv().unwrap();
    assert!(std::thread::spawn(move || job.run()).join().unwrap());
    drop(future);
    lp.run().unwrap();
    assert_eq!(started.load(Ordering::SeqCst), 1);
    assert_eq!(value_drops.load(Ordering::SeqCst), 1, "the unclaimed value was dropped once");
}

#[test]
fn panics_in_work_and_submit_resume_on_the_loop_thread() {
    let lp = Loop::new().unwrap();
    let worker = worker_executor(&lp);
    let future = lp.run_in_executor(|| -> u32 { panic!("in a work") }).unwrap();
    let payload = catch_unwind(AssertUnwindSafe(|| lp.block_on(future))).unwrap_err();
    assert_eq!(panic_message(payload), "in a work");
    let future = lp.run_in_executor(|| 5).unwrap();
    assert_eq!(lp.block_on(future).unwrap(), Ok(5), "the executor goes on");

    // A panic in the submit closure: the job it dropped is cancelled, the
    // panic resumes in the next run.
    lp.set_executor(|_job| panic!("in submit")).unwrap();
    assert_eq!(worker.join().unwrap(), 2, "the replaced executor was dropped (its worker ran two jobs)");
    let future = lp.run_in_executor(|| 1).unwrap();
    let payload = catch_unwind(AssertUnwindSafe(|| lp.run())).unwrap_err();
    assert_eq!(panic_message(payload), "in submit");
    assert_eq!(lp.block_on(future).unwrap(), Err(Error::CANCELED));
}

#[test]
fn executor_dropped_with_the_loop() {
    let drops = Arc::new(AtomicUsize::new(0));
    let lp = Loop::new().unwrap();
    let kept = Counted(drops.clone());
    lp.set_executor(move |job| {
        let _keep = &kept;
        job.run();
    })
    .unwrap();
    let future = lp.run_in_executor(|| 2).unwrap();
    drop(lp); // the future outlives the loop: ended, not crashed
    assert_eq!(drops.load(Ordering::SeqCst), 0, "the future keeps the C loop");
    drop(future);
    assert_eq!(drops.load(Ordering::SeqCst), 1, "released with the C loop, once");
}
