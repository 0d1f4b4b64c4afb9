//! Child processes (async/process.h): [`Command`] builds the options, as
//! `std::process::Command` does; [`Process`] holds the child with its
//! piped standard streams as async [`Stream`]s and its exit as a
//! [`Future`].

use crate::error::check;
use crate::stream::AsyncIo;
use crate::{sys, Error, Future, LoopHandle, LoopInner, Result, Stream};
use std::ffi::{c_void, CString, OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::io::RawFd;
use std::rc::Rc;

/// What a standard stream of the child is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stdio {
    /// The caller's own fd of that number (the default).
    Inherit,
    /// /dev/null.
    Null,
    /// A stream to the child: the caller's end is an async [`Stream`] of
    /// the [`Process`], over a Unix socketpair (`ASYNC_STDIO_PIPE`, libuv's
    /// transport: the kernel moves bytes through it for two thirds of a
    /// pipe's CPU). The child cannot open `/dev/stdin` or `/dev/stdout` on
    /// it (ENXIO): use [`Stdio::Fifo`] for such a child.
    Piped,
    /// As [`Stdio::Piped`], over a real pipe (`ASYNC_STDIO_FIFO`), as
    /// `std::process::Stdio::piped()` gives: the child's fd is a FIFO, which
    /// `/dev/stdin` opens and `tee(2)` takes.
    Fifo,
    /// A fd of the caller's, given to the child (not taken: it stays open).
    Fd(RawFd),
}

/// What to run and how; [`Command::spawn`] starts it.
#[derive(Clone, Debug)]
pub struct Command {
    argv: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    env_clear: bool,
    cwd: Option<OsString>,
    stdio: [Stdio; 3],
    flags: u32,
    uid: u32,
    gid: u32,
}

/// How a child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitStatus {
    code: i32,
    signal: i32,
}

impl ExitStatus {
    /// The exit code (0 to 255), `None` when a signal ended the child.
    pub fn code(&self) -> Option<i32> {
        (self.code >= 0).then(|| self.code)
    }

    /// The signal that ended the child, `None` when it exited.
    pub fn signal(&self) -> Option<i32> {
        (self.signal != 0).then(|| self.signal)
    }

    /// Exited with code 0.
    pub fn success(&self) -> bool {
        self.code == 0
    }

    unsafe fn of(result: *const sys::async_process_result) -> Result<ExitStatus> {
        let (mut code, mut signal) = (0, 0);
        check(sys::async_process_result_status(&mut code, &mut signal, result))?;
        Ok(ExitStatus { code, signal })
    }
}

/// What [`Command::output`] collected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

fn c_string(text: &OsStr) -> Result<CString> {
    CString::new(text.as_bytes()).map_err(|_| Error::INVAL)
}

/// A NULL-terminated array of C strings pointing into `strings`.
fn c_array(strings: &[CString]) -> Vec<*const std::os::raw::c_char> {
    strings.iter().map(|s| s.as_ptr()).chain(std::iter::once(std::ptr::null())).collect()
}

impl Command {
    /// Runs `program`: a path if it has a '/', else looked up in `PATH`.
    pub fn new<S: AsRef<OsStr>>(program: S) -> Command {
        Command {
            argv: vec![program.as_ref().to_owned()],
            env: Vec::new(),
            env_clear: false,
            cwd: None,
            stdio: [Stdio::Inherit; 3],
            flags: 0,
            uid: 0,
            gid: 0,
        }
    }

    /// Adds an argument.
    pub fn arg<S: AsRef<OsStr>>(&mut self, arg: S) -> &mut Command {
        self.argv.push(arg.as_ref().to_owned());
        self
    }

    /// Adds arguments.
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(&mut self, args: I) -> &mut Command {
        self.argv.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets a variable of the child's environment (the caller's otherwise).
    pub fn env<K: AsRef<OsStr>, V: AsRef<OsStr>>(&mut self, key: K, value: V) -> &mut Command {
        self.env.push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Starts the child's environment empty (then only `env`'s variables).
    pub fn env_clear(&mut self) -> &mut Command {
        self.env_clear = true;
        self.env.clear();
        self
    }

    /// The child's working directory.
    pub fn current_dir<S: AsRef<OsStr>>(&mut self, dir: S) -> &mut Command {
        self.cwd = Some(dir.as_ref().to_owned());
        self
    }

    /// The child's stdin.
    pub fn stdin(&mut self, stdio: Stdio) -> &mut Command {
        self.stdio[0] = stdio;
        self
    }

    /// The child's stdout.
    pub fn stdout(&mut self, stdio: Stdio) -> &mut Command {
        self.stdio[1] = stdio;
        self
    }

    /// The child's stderr.
    pub fn stderr(&mut self, stdio: Stdio) -> &mut Command {
        self.stdio[2] = stdio;
        self
    }

    /// The child leads a new process group.
    pub fn new_process_group(&mut self) -> &mut Command {
        self.flags |= sys::async_process_flags::ASYNC_PROCESS_NEW_GROUP.0 as u32;
        self
    }

    /// The child leads a new session (not with a new process group: EINVAL).
    pub fn new_session(&mut self) -> &mut Command {
        self.flags |= sys::async_process_flags::ASYNC_PROCESS_NEW_SESSION.0 as u32;
        self
    }

    /// The child runs as `uid`.
    pub fn uid(&mut self, uid: u32) -> &mut Command {
        self.flags |= sys::async_process_flags::ASYNC_PROCESS_SET_UID.0 as u32;
        self.uid = uid;
        self
    }

    /// The child runs as `gid`, with no supplementary group.
    pub fn gid(&mut self, gid: u32) -> &mut Command {
        self.flags |= sys::async_process_flags::ASYNC_PROCESS_SET_GID.0 as u32;
        self.gid = gid;
        self
    }

    /// The child starts with no signal blocked (else the caller's mask).
    pub fn reset_signal_mask(&mut self) -> &mut Command {
        self.flags |= sys::async_process_flags::ASYNC_PROCESS_RESET_SIGMASK.0 as u32;
        self
    }

    fn argv(&self) -> Result<Vec<CString>> {
        self.argv.iter().map(|a| c_string(a)).collect()
    }

    /// The environment to pass: None for the caller's, unchanged.
    fn envp(&self) -> Result<Option<Vec<CString>>> {
        if self.env.is_empty() && !self.env_clear {
            return Ok(None);
        }
        let mut vars: Vec<(OsString, OsString)> =
            if self.env_clear { Vec::new() } else { std::env::vars_os().collect() };
        for (key, value) in &self.env {
            vars.retain(|(k, _)| k != key);
            vars.push((key.clone(), value.clone()));
        }
        let entries = vars.into_iter().map(|(mut key, value)| {
            key.push("=");
            key.push(value);
            c_string(&key)
        });
        entries.collect::<Result<Vec<_>>>().map(Some)
    }

    /// Starts the child on the loop (async_process_spawn); returns once it
    /// exec'd its program: a missing program is [`Error::NOENT`], one the
    /// kernel does not run [`Error::NOEXEC`], never an exit code 127.
    /// [`Error::NOTSUP`] without pidfds (Linux before 5.3, or valgrind).
    pub fn spawn(&self, lp: &LoopHandle) -> Result<Process> {
        let argv = self.argv()?;
        let argv_ptrs = c_array(&argv);
        let envp = self.envp()?;
        let envp_ptrs = envp.as_deref().map(c_array);
        let cwd = self.cwd.as_deref().map(c_string).transpose()?;
        let table = AsyncIo::table();
        let mut ios: [Option<Rc<AsyncIo>>; 3] = [None, None, None];
        let mut options = sys::async_process_options {
            size: std::mem::size_of::<sys::async_process_options>() as u32,
            flags: self.flags,
            argv: argv_ptrs.as_ptr(),
            envp: envp_ptrs.as_ref().map_or(std::ptr::null(), |e| e.as_ptr()),
            cwd: cwd.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
            uid: self.uid,
            gid: self.gid,
            stdio_mode: [0; 3],
            stdio_fd: [0; 3],
            stdio_protocol: [std::ptr::null(); 3],
            stdio_userdata: [std::ptr::null_mut(); 3],
            release: None,
        };
        for (i, stdio) in self.stdio.iter().enumerate() {
            options.stdio_mode[i] = match *stdio {
                Stdio::Inherit => sys::async_stdio_mode::ASYNC_STDIO_INHERIT.0,
                Stdio::Null => sys::async_stdio_mode::ASYNC_STDIO_NULL.0,
                Stdio::Fd(fd) => {
                    options.stdio_fd[i] = fd;
                    sys::async_stdio_mode::ASYNC_STDIO_FD.0
                }
                Stdio::Piped | Stdio::Fifo => {
                    let io = AsyncIo::unattached(lp.as_raw());
                    options.stdio_protocol[i] = &table;
                    // The library's reference, taken back by release.
                    options.stdio_userdata[i] = Rc::into_raw(io.clone()) as *mut c_void;
                    ios[i] = Some(io);
                    if *stdio == Stdio::Fifo {
                        sys::async_stdio_mode::ASYNC_STDIO_FIFO.0
                    } else {
                        sys::async_stdio_mode::ASYNC_STDIO_PIPE.0
                    }
                }
            } as i32;
        }
        let mut raw = std::ptr::null_mut();
        let rc = unsafe { sys::async_process_spawn(&mut raw, lp.as_raw(), &options, std::ptr::null_mut()) };
        if rc < 0 {
            // Nothing was made: the library's references are ours again,
            // but for a late ENOMEM, where the streams made already get
            // their release (which ones is not said: leak, never free twice).
            if rc != sys::async_error::ASYNC_ENOMEM.0 {
                for userdata in options.stdio_userdata.iter().filter(|u| !u.is_null()) {
                    drop(unsafe { Rc::from_raw(*userdata as *const AsyncIo) });
                }
            }
            return Err(Error::from_code(rc));
        }
        let mut process = Process { raw, stdin: None, stdout: None, stderr: None, lp: lp.inner().clone() };
        for (fd, io) in ios.iter_mut().enumerate() {
            if let Some(io) = io.take() {
                let mut stream = std::ptr::null_mut();
                check(unsafe { sys::async_process_stream(&mut stream, raw, fd as i32) })?;
                let stream = unsafe { Stream::with_io(stream, io) }?;
                *[&mut process.stdin, &mut process.stdout, &mut process.stderr][fd] = Some(stream);
            }
        }
        Ok(process)
    }

    /// Runs the program with `input` as its stdin (/dev/null for None) and
    /// collects its stdout, stderr and exit (async_process_run, asyncio's
    /// communicate()). The future fails with [`Error::NOBUFS`] when the
    /// output passes `limit` bytes (0: 16 MiB); the child is killed then,
    /// as when the future is dropped pending. Only the arguments of the
    /// command are used (the caller's environment, directory and stdio).
    pub fn output(&self, lp: &LoopHandle, input: Option<&[u8]>, limit: usize) -> Result<Future<Output>> {
        let argv = self.argv()?;
        let argv_ptrs = c_array(&argv);
        let (data, len) = input.map_or((std::ptr::null(), 0), |i| (i.as_ptr(), i.len()));
        let mut raw = std::ptr::null_mut();
        check(unsafe { sys::async_process_run(&mut raw, lp.as_raw(), argv_ptrs.as_ptr(), data, len, limit) })?;
        Ok(unsafe {
            Future::from_raw(lp.inner().clone(), raw, |raw| {
                let result = Future::<()>::status(raw)? as *const sys::async_process_result;
                let output = |fd| -> Result<Vec<u8>> {
                    let (mut data, mut len) = (std::ptr::null(), 0);
                    check(sys::async_process_result_output(&mut data, &mut len, result, fd))?;
                    Ok(if len == 0 { Vec::new() } else { std::slice::from_raw_parts(data, len).to_vec() })
                };
                Ok(Output { status: ExitStatus::of(result)?, stdout: output(1)?, stderr: output(2)? })
            })
        })
    }
}

/// A running (or ended) child. Dropping it lets go of the object, never of
/// the child: the loop reaps it when it exits, and the loop has work (and
/// cannot be freed) until then. Its piped streams are its public fields,
/// to take (`process.stdout.take()`); dropping `stdin` closes the
/// child's input.
pub struct Process {
    raw: *mut sys::async_process,
    /// The child's stdin, when [`Stdio::Piped`] or [`Stdio::Fifo`] (to write).
    pub stdin: Option<Stream>,
    /// The child's stdout, when [`Stdio::Piped`] or [`Stdio::Fifo`] (to read).
    pub stdout: Option<Stream>,
    /// The child's stderr, when [`Stdio::Piped`] or [`Stdio::Fifo`] (to read).
    pub stderr: Option<Stream>,
    lp: Rc<LoopInner>,
}

impl Process {
    /// The child's process id.
    pub fn id(&self) -> u32 {
        // Valid for a live process object on its loop's thread (!Send).
        unsafe { sys::async_process_pid(self.raw) as u32 }
    }

    /// Sends `signal` through the child's pidfd (never to another process
    /// that took its pid): [`Error::STATE`] once it exited, 0 only checks.
    pub fn kill(&self, signal: i32) -> Result<()> {
        check(unsafe { sys::async_process_kill(self.raw, signal) }).map(drop)
    }

    /// A future of the child's exit (each call makes one; it outlives the
    /// Process). [`Error::STATE`] when the program reaped the child itself.
    pub fn wait(&self) -> Result<Future<ExitStatus>> {
        let mut raw = std::ptr::null_mut();
        check(unsafe { sys::async_process_wait(&mut raw, self.raw) })?;
        Ok(unsafe {
            Future::from_raw(self.lp.clone(), raw, |raw| {
                ExitStatus::of(Future::<()>::status(raw)? as *const sys::async_process_result)
            })
        })
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        unsafe { sys::async_process_free(self.raw) };
    }
}

impl LoopHandle {
    /// Makes the loop the child's own after `fork()` (async_loop_fork): a
    /// new epoll and signal fds, DNS channel and embedding fd; handles,
    /// timers, streams and queued callbacks carry over. Call it in the
    /// child only, on the thread that forked, outside a run of the loop
    /// ([`Error::BUSY`] inside one).
    pub fn after_fork(&self) -> Result<()> {
        check(unsafe { sys::async_loop_fork(self.as_raw()) }).map(drop)
    }
}
