//! Child processes (Command, Process, Stdio, ExitStatus, Output) and
//! LoopHandle::after_fork: normal use, bad input, a panic while awaiting,
//! drop order. Under valgrind (3.19 has no pidfd_open) the library refuses
//! with NOTSUP: that contract is what is checked there.

use libasync::{Command, Error, Loop, Stdio};
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

fn under_valgrind() -> bool {
    std::env::var("LD_PRELOAD").map_or(false, |p| p.contains("vgpreload"))
}

#[test]
fn bad_input() {
    let lp = Loop::new().unwrap();
    assert_eq!(Command::new("a\0b").spawn(&lp).err(), Some(Error::INVAL));
    assert_eq!(Command::new("").spawn(&lp).err(), Some(Error::INVAL));
    assert_eq!(Command::new("true").arg("x\0").output(&lp, None, 0).err(), Some(Error::INVAL));
    assert_eq!(Command::new("true").env("A\0", "b").spawn(&lp).err(), Some(Error::INVAL));
    assert_eq!(Command::new("true").new_process_group().new_session().spawn(&lp).err(), Some(Error::INVAL));
    if under_valgrind() {
        assert_eq!(Command::new("true").spawn(&lp).err(), Some(Error::NOTSUP));
        assert_eq!(Command::new("true").output(&lp, None, 0).err(), Some(Error::NOTSUP));
        assert_eq!(lp.run().unwrap(), false, "nothing was left behind");
        return;
    }
    assert_eq!(Command::new("true").stdout(Stdio::Fd(9999)).spawn(&lp).err(), Some(Error::BADF));
    assert_eq!(Command::new("/nonexistent/program").spawn(&lp).err(), Some(Error::NOENT));
    assert_eq!(Command::new("no-such-program-here").output(&lp, None, 0).err(), Some(Error::NOENT));
    assert_eq!(Command::new("true").current_dir("/nonexistent").spawn(&lp).err(), Some(Error::NOENT));
    // A file the kernel does not run (no #! line, no ELF header).
    let path = std::env::temp_dir().join(format!("libasync-noexec-{}", std::process::id()));
    std::fs::write(&path, b"\x01\x02 not a program").unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    assert_eq!(Command::new(&path).spawn(&lp).err(), Some(Error::NOEXEC));
    std::fs::remove_file(&path).unwrap();
    assert_eq!(lp.run().unwrap(), false, "failed spawns leave nothing");
}

#[test]
fn piped_streams_and_exit() {
    if under_valgrind() {
        return; // bad_input checks NOTSUP
    }
    let lp = Loop::new().unwrap();
    let mut child = Command::new("cat").stdin(Stdio::Piped).stdout(Stdio::Piped).spawn(&lp).unwrap();
    assert!(child.id() > 0);
    assert!(child.stderr.is_none());
    let (stdin, stdout) = (child.stdin.take().unwrap(), child.stdout.take().unwrap());
    let exit = child.wait().unwrap();
    let (echoed, status) = lp
        .block_on(async move {
            stdin.write_all(b"hello\nworld\n").await.unwrap();
            drop(stdin); // the child's end of input
            let first = stdout.read_line(1024).await.unwrap();
            let rest = stdout.read_exact(6).await.unwrap();
            (vec![first, rest], exit.await.unwrap())
        })
        .unwrap();
    assert_eq!(echoed, vec![b"hello\n".to_vec(), b"world\n".to_vec()]);
    assert!(status.success());
    assert_eq!((status.code(), status.signal()), (Some(0), None));
    assert_eq!(child.kill(0).unwrap_err(), Error::STATE, "exited: no signal");
}

/// `Stdio::Piped` is a socketpair, which `/dev/stdin` cannot open (ENXIO);
/// `Stdio::Fifo` is a pipe, which it can.
#[test]
fn piped_is_a_socket_fifo_a_pipe() {
    if under_valgrind() {
        return;
    }
    let lp = Loop::new().unwrap();
    let probe = "test -S /dev/stdin && echo socket; test -p /dev/stdin && echo fifo; \
                 cat /dev/stdin 2>/dev/null || echo refused";
    for (mode, want) in [(Stdio::Piped, "socket\nrefused\n"), (Stdio::Fifo, "fifo\nin\n")] {
        let mut child = Command::new("/bin/sh").args(["-c", probe]).stdin(mode).stdout(mode).spawn(&lp).unwrap();
        let (stdin, stdout) = (child.stdin.take().unwrap(), child.stdout.take().unwrap());
        let exit = child.wait().unwrap();
        let (out, status) = lp
            .block_on(async move {
                stdin.write_all(b"in\n").await.unwrap();
                drop(stdin);
                let mut out = Vec::new();
                loop {
                    let chunk = stdout.read_some(1024).await.unwrap();
                    if chunk.is_empty() {
                        break;
                    }
                    out.extend(chunk);
                }
                (out, exit.await.unwrap())
            })
            .unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), want, "{:?}", mode);
        assert!(status.success());
    }
}

#[test]
fn environment_directory_and_flags() {
    if under_valgrind() {
        return;
    }
    let lp = Loop::new().unwrap();
    let mut child = Command::new("/bin/sh")
        .args(["-c", "echo \"$A:$HOME:$(pwd)\"; exit 7"])
        .env_clear()
        .env("A", "b")
        .env("A", "c")
        .current_dir("/")
        .new_process_group()
        .reset_signal_mask()
        .stdout(Stdio::Piped)
        .stdin(Stdio::Null)
        .spawn(&lp)
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let exit = child.wait().unwrap();
    let line = lp.block_on(async move { stdout.read_line(1024).await }).unwrap().unwrap();
    assert_eq!(line, b"c::/\n");
    assert_eq!(lp.block_on(exit).unwrap().unwrap().code(), Some(7));
    // uid/gid of our own (allowed for anyone).
    let me = std::fs::metadata("/proc/self").unwrap();
    let (uid, gid) = (std::os::unix::fs::MetadataExt::uid(&me), std::os::unix::fs::MetadataExt::gid(&me));
    let child = Command::new("true").uid(uid).gid(gid).new_session().spawn(&lp).unwrap();
    assert!(lp.block_on(child.wait().unwrap()).unwrap().unwrap().success());
}

#[test]
fn output_collects_and_limits() {
    if under_valgrind() {
        return;
    }
    let lp = Loop::new().unwrap();
    let out = Command::new("sh").args(["-c", "cat; echo err >&2; exit 3"]).output(&lp, Some(b"in\n"), 0).unwrap();
    let out = lp.block_on(out).unwrap().unwrap();
    assert_eq!((out.stdout.as_slice(), out.stderr.as_slice()), (&b"in\n"[..], &b"err\n"[..]));
    assert_eq!(out.status.code(), Some(3));
    assert!(!out.status.success());
    let big = Command::new("head").args(["-c", "100000", "/dev/zero"]).output(&lp, None, 1000).unwrap();
    assert_eq!(lp.block_on(big).unwrap().unwrap_err(), Error::NOBUFS);
    // Dropped pending: the child is killed and reaped, the loop ends.
    let started = Instant::now();
    drop(Command::new("sleep").arg("30").output(&lp, None, 0).unwrap());
    assert_eq!(lp.run().unwrap(), false);
    assert!(started.elapsed() < Duration::from_secs(10), "the child was killed");
}

#[test]
fn kill_and_drop_order() {
    if under_valgrind() {
        return;
    }
    let lp = Loop::new().unwrap();
    let child = Command::new("sleep").arg("30").spawn(&lp).unwrap();
    child.kill(0).unwrap();
    assert_eq!(child.kill(65).unwrap_err(), Error::INVAL);
    let exit = child.wait().unwrap();
    child.kill(15).unwrap();
    let status = lp.block_on(exit).unwrap().unwrap();
    assert_eq!((status.code(), status.signal()), (None, Some(15)));

    // The process object dropped first: its wait future still completes.
    let child = Command::new("true").spawn(&lp).unwrap();
    let exit = child.wait().unwrap();
    drop(child);
    assert!(lp.block_on(exit).unwrap().unwrap().success());

    // A stream outliving its process and the child: reads end cleanly.
    let mut child = Command::new("echo").arg("x").stdout(Stdio::Piped).spawn(&lp).unwrap();
    let stdout = child.stdout.take().unwrap();
    let exit = child.wait().unwrap();
    drop(child);
    lp.block_on(exit).unwrap().unwrap();
    let mut all = Vec::new();
    let mut buffer = [0u8; 16];
    lp.block_on(async {
        while let Ok(n) = stdout.read(&mut buffer).await {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buffer[..n]);
        }
    })
    .unwrap();
    assert_eq!(all, b"x\n");
}

#[test]
fn panic_while_awaiting_an_exit_resumes_in_block_on() {
    if under_valgrind() {
        return;
    }
    let lp = Loop::new().unwrap();
    let child = Command::new("true").spawn(&lp).unwrap();
    let exit = child.wait().unwrap();
    let handle = lp.clone();
    let ran_after = Rc::new(Cell::new(false));
    let r = ran_after.clone();
    handle.spawn(async move {
        exit.await.unwrap();
        panic!("after an exit");
    });
    let payload = catch_unwind(AssertUnwindSafe(|| lp.block_on(lp.sleep(10_000)))).unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"after an exit"));
    lp.call_soon(move || r.set(true)).unwrap();
    lp.run().unwrap();
    assert!(ran_after.get());
}

extern "C" {
    fn fork() -> i32;
    fn _exit(code: i32) -> !;
    fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
    fn kill(pid: i32, signal: i32) -> i32;
}

/// Runs this binary's `name` test alone in a child process, where it is
/// the only thread (libtest runs a single test on the main thread): a
/// fork() there copies no other thread's locks.
fn alone(name: &str) -> bool {
    if std::env::var_os("LIBASYNC_RUST_ALONE").is_some() {
        return true;
    }
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--test-threads=1", "-q"])
        .env("LIBASYNC_RUST_ALONE", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&child.stdout);
    assert!(child.status.success(), "the test failed alone: {}", stdout);
    assert!(stdout.contains("1 passed"), "the child ran no test: {}", stdout);
    false
}

#[test]
fn after_fork_gives_the_child_its_own_loop() {
    if !alone("after_fork_gives_the_child_its_own_loop") {
        return;
    }
    let lp = Loop::new().unwrap();
    let ran = Rc::new(Cell::new(0));
    let r = ran.clone();
    lp.call_soon(move || r.set(r.get() + 1)).unwrap();
    // Inside a run: BUSY.
    let (l, busy) = (lp.clone(), Rc::new(Cell::new(None)));
    let b = busy.clone();
    lp.call_soon(move || b.set(Some(l.after_fork()))).unwrap();
    lp.run().unwrap();
    assert_eq!(busy.get(), Some(Err(Error::BUSY)));
    assert_eq!(ran.get(), 1);

    let r = ran.clone();
    lp.call_soon(move || r.set(r.get() + 1)).unwrap();
    // The child does only what a forked thread may: the loop, then _exit.
    let pid = unsafe { fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let ok = lp.after_fork().is_ok() && lp.run().is_ok() && ran.get() == 2 && lp.fd().is_ok();
        unsafe { _exit(if ok { 0 } else { 1 }) };
    }
    let mut status = 0;
    let started = Instant::now();
    while unsafe {
        waitpid(pid, &mut status, 1 /* WNOHANG */)
    } == 0
    {
        if started.elapsed() > Duration::from_secs(20) {
            unsafe { kill(pid, 9) };
            panic!("the forked child hangs");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(status, 0, "the child's loop ran its copy of the callback");
    lp.run().unwrap();
    assert_eq!(ran.get(), 2, "the parent's ran once too");
}
