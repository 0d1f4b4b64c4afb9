//! Streams and servers: callbacks (a [`Protocol`]) or async/await (a
//! [`Stream`] made by [`connect`] or [`Listener::accept`], which buffers
//! what arrives and serves `read_*` and `write_all`).

use crate::addr::{sockaddr_from, Sockaddr};
use crate::error::check;
use crate::handle::{server_factory_trampoline, Callback, HandleCore};
use crate::{cstring, guard, sys, Error, Future, LoopHandle, Result};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::ffi::{c_void, CString};
use std::future::Future as StdFuture;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

/// The callbacks of a stream driven by callbacks (the library's stream
/// protocol). Each gets the stream, borrowed for the call. A callback
/// that panics: the panic goes to the caller of `Loop::run` and the
/// stream is aborted.
pub trait Protocol: 'static {
    /// The stream is ready (the first callback).
    fn connection_made(&mut self, _stream: &StreamRef<'_>) {}
    /// Bytes arrived: returns how many were consumed; the rest comes again
    /// in front of newer bytes.
    fn data_received(&mut self, stream: &StreamRef<'_>, data: &[u8]) -> usize;
    /// The peer's end of file: true keeps the stream open for writing.
    fn eof_received(&mut self, _stream: &StreamRef<'_>) -> bool {
        false
    }
    /// The stream is lost (the last callback): None after a clean end.
    fn connection_lost(&mut self, _stream: &StreamRef<'_>, _error: Option<Error>) {}
    /// The write buffer went above its high-water mark. Inside a write
    /// made by another callback of this protocol it runs right after that
    /// callback returns.
    fn pause_writing(&mut self, _stream: &StreamRef<'_>) {}
    /// The write buffer drained to its low-water mark.
    fn resume_writing(&mut self, _stream: &StreamRef<'_>) {}
}

/// A stream borrowed for a callback (or through a [`Stream`]).
pub struct StreamRef<'a> {
    raw: *mut sys::async_stream,
    _borrow: PhantomData<&'a ()>,
}

/// The buffers of `write_vectored` as the library reads them (struct iovec).
#[repr(C)]
struct IoVec {
    base: *const c_void,
    len: usize,
}

unsafe extern "C" fn drop_vec(userdata: *mut c_void) {
    drop(Box::from_raw(userdata as *mut Vec<u8>));
}

fn status(rc: i32) -> Result<()> {
    check(rc).map(drop)
}

impl<'a> StreamRef<'a> {
    /// The raw stream (valid while borrowed).
    pub fn as_raw(&self) -> *mut sys::async_stream {
        self.raw
    }

    /// Queues `data` (copied); ECLOSED once closing or lost.
    pub fn write(&self, data: &[u8]) -> Result<()> {
        status(unsafe { sys::async_stream_write(self.raw, data.as_ptr() as *const c_void, data.len()) })
    }

    /// Queues several buffers in order (copied).
    pub fn write_vectored(&self, buffers: &[&[u8]]) -> Result<()> {
        let iov: Vec<IoVec> =
            buffers.iter().map(|b| IoVec { base: b.as_ptr() as *const c_void, len: b.len() }).collect();
        let count = i32::try_from(iov.len()).map_err(|_| Error::INVAL)?;
        status(unsafe { sys::async_stream_writev(self.raw, iov.as_ptr() as *const sys::iovec, count) })
    }

    /// Queues `data` without copying it; the vector is dropped once written
    /// (or dropped with the stream).
    pub fn write_owned(&self, data: Vec<u8>) -> Result<()> {
        let (ptr, len) = (data.as_ptr() as *const c_void, data.len());
        let userdata = Box::into_raw(Box::new(data)) as *mut c_void;
        let rc = unsafe { sys::async_stream_write_zc(self.raw, ptr, len, Some(drop_vec), userdata) };
        if rc < 0 {
            unsafe { drop_vec(userdata) };
        }
        status(rc)
    }

    /// Shuts the writing side down once the buffer is written.
    pub fn write_eof(&self) -> Result<()> {
        status(unsafe { sys::async_stream_write_eof(self.raw) })
    }

    /// Closes after flushing the write buffer.
    pub fn close(&self) -> Result<()> {
        status(unsafe { sys::async_stream_close(self.raw) })
    }

    /// Closes now, dropping the write buffer.
    pub fn abort(&self) -> Result<()> {
        status(unsafe { sys::async_stream_abort(self.raw) })
    }

    /// Stops data from being delivered.
    pub fn pause_reading(&self) -> Result<()> {
        status(unsafe { sys::async_stream_pause_reading(self.raw) })
    }

    /// Delivers data again.
    pub fn resume_reading(&self) -> Result<()> {
        status(unsafe { sys::async_stream_resume_reading(self.raw) })
    }

    /// Whether data is being delivered.
    pub fn is_reading(&self) -> bool {
        unsafe { sys::async_stream_is_reading(self.raw) > 0 }
    }

    /// Sets the write buffer's high- and low-water marks.
    pub fn set_write_limits(&self, high: usize, low: usize) -> Result<()> {
        status(unsafe { sys::async_stream_set_write_limits(self.raw, high, low) })
    }

    /// The write buffer's (high, low) marks.
    pub fn write_limits(&self) -> Result<(usize, usize)> {
        let (mut high, mut low) = (0, 0);
        status(unsafe { sys::async_stream_get_write_limits(&mut high, &mut low, self.raw) })?;
        Ok((high, low))
    }

    /// Bytes waiting in the write buffer.
    pub fn write_buffer_size(&self) -> Result<usize> {
        let mut size = 0;
        status(unsafe { sys::async_stream_write_buffer_size(&mut size, self.raw) })?;
        Ok(size)
    }

    /// The most unconsumed bytes kept before reading pauses.
    pub fn set_read_limit(&self, limit: usize) -> Result<()> {
        status(unsafe { sys::async_stream_set_read_limit(self.raw, limit) })
    }

    /// The stream's fd.
    pub fn fd(&self) -> Result<i32> {
        check(unsafe { sys::async_stream_fd(self.raw) })
    }

    /// The local address of a TCP stream.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        let mut addr = Sockaddr::default();
        check(unsafe { sys::async_stream_sockname(addr.as_mut_ptr(), addr.capacity(), self.raw) })?;
        sockaddr_from(&addr)
    }

    /// The peer address of a TCP stream.
    pub fn peer_addr(&self) -> Result<SocketAddr> {
        let mut addr = Sockaddr::default();
        check(unsafe { sys::async_stream_peername(addr.as_mut_ptr(), addr.capacity(), self.raw) })?;
        sockaddr_from(&addr)
    }

    /// TCP_NODELAY on or off.
    pub fn set_nodelay(&self, on: bool) -> Result<()> {
        status(unsafe { sys::async_stream_set_nodelay(self.raw, on as i32) })
    }

    /// TCP keepalive on or off, probing after `idle_s` seconds idle.
    pub fn set_keepalive(&self, on: bool, idle_s: u32) -> Result<()> {
        status(unsafe { sys::async_stream_set_keepalive(self.raw, on as i32, idle_s) })
    }

    /// Aborts the stream with ETIMEDOUT after `timeout_ms` with no I/O (0: off).
    pub fn set_idle_timeout(&self, timeout_ms: u64) -> Result<()> {
        status(unsafe { sys::async_stream_set_idle_timeout(self.raw, timeout_ms) })
    }

    /// An owned reference to the stream (it stays valid after the loss;
    /// calls then return ECLOSED).
    pub fn to_owned(&self) -> Result<Stream> {
        status(unsafe { sys::async_stream_retain(self.raw) })?;
        Ok(Stream { r: StreamRef { raw: self.raw, _borrow: PhantomData }, io: None, below: Vec::new() })
    }
}

/// A callback protocol's userdata: the protocol, and a pause_writing that
/// came inside one of its own callbacks (run once that callback returns).
/// repr(C): a reconnector's userdata starts with one.
#[repr(C)]
struct ProtoCell<P> {
    raw_loop: *mut sys::async_loop,
    proto: RefCell<P>,
    deferred_pause: Cell<bool>,
}

impl<P: Protocol> ProtoCell<P> {
    pub(crate) fn table() -> sys::async_stream_protocol {
        sys::async_stream_protocol {
            size: std::mem::size_of::<sys::async_stream_protocol>() as u32,
            connection_made: Some(made_trampoline::<P>),
            data_received: Some(data_trampoline::<P>),
            eof_received: Some(eof_trampoline::<P>),
            connection_lost: Some(lost_trampoline::<P>),
            pause_writing: Some(pause_trampoline::<P>),
            resume_writing: Some(resume_trampoline::<P>),
            write_drained: None,
            release: Some(release_trampoline::<P>),
            flags: 0,
            idle_timeout: None,
        }
    }

    fn into_userdata(raw_loop: *mut sys::async_loop, proto: P) -> *mut c_void {
        let cell = ProtoCell { raw_loop, proto: RefCell::new(proto), deferred_pause: Cell::new(false) };
        Box::into_raw(Box::new(cell)) as *mut c_void
    }

    /// Runs one callback; a panic aborts the stream (the loop keeps it).
    unsafe fn call<R>(
        userdata: *mut c_void,
        stream: *mut sys::async_stream,
        fallback: R,
        f: impl FnOnce(&mut P, &StreamRef<'_>) -> R,
    ) -> R {
        let cell = &*(userdata as *const ProtoCell<P>);
        let stream_ref = StreamRef { raw: stream, _borrow: PhantomData };
        let mut panicked = true;
        let value = guard(cell.raw_loop, fallback, || {
            let mut proto = cell.proto.borrow_mut();
            let value = f(&mut proto, &stream_ref);
            while cell.deferred_pause.replace(false) {
                proto.pause_writing(&stream_ref);
            }
            panicked = false;
            value
        });
        if panicked {
            sys::async_stream_abort(stream);
        }
        value
    }
}

unsafe extern "C" fn made_trampoline<P: Protocol>(stream: *mut sys::async_stream, userdata: *mut c_void) {
    ProtoCell::<P>::call(userdata, stream, (), |p, s| p.connection_made(s))
}

unsafe extern "C" fn data_trampoline<P: Protocol>(
    stream: *mut sys::async_stream,
    data: *const u8,
    len: usize,
    userdata: *mut c_void,
) -> usize {
    let data = std::slice::from_raw_parts(data, len);
    ProtoCell::<P>::call(userdata, stream, len, |p, s| p.data_received(s, data))
}

unsafe extern "C" fn eof_trampoline<P: Protocol>(stream: *mut sys::async_stream, userdata: *mut c_void) -> i32 {
    ProtoCell::<P>::call(userdata, stream, 0, |p, s| p.eof_received(s) as i32)
}

unsafe extern "C" fn lost_trampoline<P: Protocol>(stream: *mut sys::async_stream, error: i32, userdata: *mut c_void) {
    let error = if error == 0 { None } else { Some(Error::from_code(error)) };
    ProtoCell::<P>::call(userdata, stream, (), |p, s| p.connection_lost(s, error))
}

unsafe extern "C" fn pause_trampoline<P: Protocol>(stream: *mut sys::async_stream, userdata: *mut c_void) {
    let cell = &*(userdata as *const ProtoCell<P>);
    if cell.proto.try_borrow_mut().is_err() {
        // Inside a write of one of this protocol's callbacks.
        cell.deferred_pause.set(true);
        return;
    }
    ProtoCell::<P>::call(userdata, stream, (), |p, s| p.pause_writing(s))
}

unsafe extern "C" fn resume_trampoline<P: Protocol>(stream: *mut sys::async_stream, userdata: *mut c_void) {
    ProtoCell::<P>::call(userdata, stream, (), |p, s| p.resume_writing(s))
}

unsafe extern "C" fn release_trampoline<P: Protocol>(userdata: *mut c_void) {
    let raw_loop = (*(userdata as *const ProtoCell<P>)).raw_loop;
    if (*(userdata as *const ProtoCell<P>)).proto.try_borrow_mut().is_err() {
        // Released inside one of its own callbacks (a layer pushed from
        // data_received), which still borrows it: freed once it returned
        // (leaked if even that cannot be queued, never freed under it).
        sys::async_loop_call_soon(raw_loop, Some(release_later::<P>), userdata);
        return;
    }
    let cell = Box::from_raw(userdata as *mut ProtoCell<P>);
    guard(raw_loop, (), move || drop(cell));
}

unsafe extern "C" fn release_later<P: Protocol>(_loop: *mut sys::async_loop, userdata: *mut c_void) {
    release_trampoline::<P>(userdata)
}

/// The state of an async stream, shared by the Stream and the library
/// (one strong reference each, the library's taken back by release).
pub(crate) struct AsyncIo {
    raw_loop: *mut sys::async_loop,
    buffer: RefCell<Vec<u8>>,
    /// Bytes of `buffer` already read.
    start: Cell<usize>,
    eof: Cell<bool>,
    /// Some(code) once connection_lost ran (0: a clean end).
    lost: Cell<Option<i32>>,
    read_paused: Cell<bool>,
    write_paused: Cell<bool>,
    reader: RefCell<Option<Waker>>,
    writer: RefCell<Option<Waker>>,
    /// Where connection_made hands an accepted stream.
    listener: Option<Weak<ListenerState>>,
    /// A Stream holds it: at the peer's end of file the stream stays open
    /// for its writes. Without one (a connect dropped once complete but
    /// never taken) nothing would ever close it.
    owned: Cell<bool>,
    /// A TLS stream's certificate verification result, kept from
    /// connection_lost (the library answers no query after it).
    pub(crate) verify: Cell<Option<(i32, &'static str)>>,
}

/// Buffered bytes past which reading pauses until a read takes them.
const READ_HIGH_WATER: usize = 256 * 1024;

impl AsyncIo {
    fn new(raw_loop: *mut sys::async_loop, listener: Option<Weak<ListenerState>>) -> Rc<AsyncIo> {
        Rc::new(AsyncIo {
            raw_loop,
            buffer: RefCell::new(Vec::new()),
            start: Cell::new(0),
            eof: Cell::new(false),
            lost: Cell::new(None),
            read_paused: Cell::new(false),
            write_paused: Cell::new(false),
            reader: RefCell::new(None),
            writer: RefCell::new(None),
            listener,
            owned: Cell::new(false),
            verify: Cell::new(None),
        })
    }

    /// The state of a stream made by another call (a child's pipe).
    pub(crate) fn unattached(raw_loop: *mut sys::async_loop) -> Rc<AsyncIo> {
        AsyncIo::new(raw_loop, None)
    }

    pub(crate) fn table() -> sys::async_stream_protocol {
        sys::async_stream_protocol {
            size: std::mem::size_of::<sys::async_stream_protocol>() as u32,
            connection_made: Some(io_made),
            data_received: Some(io_data),
            eof_received: Some(io_eof),
            connection_lost: Some(io_lost),
            pause_writing: Some(io_pause),
            resume_writing: Some(io_resume),
            write_drained: None,
            release: Some(io_release),
            flags: 0,
            idle_timeout: None,
        }
    }

    fn wake(slot: &RefCell<Option<Waker>>) {
        let waker = slot.borrow_mut().take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

unsafe fn io<'a>(userdata: *mut c_void) -> &'a AsyncIo {
    &*(userdata as *const AsyncIo)
}

unsafe extern "C" fn io_made(stream: *mut sys::async_stream, userdata: *mut c_void) {
    let io_rc = {
        Rc::increment_strong_count(userdata as *const AsyncIo);
        Rc::from_raw(userdata as *const AsyncIo)
    };
    let listener = io_rc.listener.as_ref().map(|weak| weak.upgrade());
    match listener {
        None => {} // a connect: its future hands the stream over
        Some(None) => {
            sys::async_stream_abort(stream); // the listener is gone
        }
        Some(Some(listener)) => {
            if let Ok(accepted) = Stream::with_io(stream, io_rc) {
                listener.queue.borrow_mut().push_back(accepted);
            }
            guard(io(userdata).raw_loop, (), || AsyncIo::wake(&listener.waker));
        }
    }
}

unsafe extern "C" fn io_data(
    stream: *mut sys::async_stream,
    data: *const u8,
    len: usize,
    userdata: *mut c_void,
) -> usize {
    let io = io(userdata);
    let buffered = {
        let mut buffer = io.buffer.borrow_mut();
        buffer.extend_from_slice(std::slice::from_raw_parts(data, len));
        buffer.len() - io.start.get()
    };
    if buffered >= READ_HIGH_WATER && !io.read_paused.get() {
        io.read_paused.set(true);
        sys::async_stream_pause_reading(stream);
    }
    guard(io.raw_loop, (), || AsyncIo::wake(&io.reader));
    len
}

unsafe extern "C" fn io_eof(_stream: *mut sys::async_stream, userdata: *mut c_void) -> i32 {
    let io = io(userdata);
    io.eof.set(true);
    guard(io.raw_loop, (), || AsyncIo::wake(&io.reader));
    io.owned.get() as i32 // open for writing until the Stream closes it
}

unsafe extern "C" fn io_lost(stream: *mut sys::async_stream, error: i32, userdata: *mut c_void) {
    let io = io(userdata);
    io.lost.set(Some(error));
    if error == Error::CERT.code() {
        io.verify.set(crate::tls::query_verify(stream).ok());
    }
    guard(io.raw_loop, (), || {
        AsyncIo::wake(&io.reader);
        AsyncIo::wake(&io.writer);
    });
}

unsafe extern "C" fn io_pause(_stream: *mut sys::async_stream, userdata: *mut c_void) {
    io(userdata).write_paused.set(true);
}

unsafe extern "C" fn io_resume(_stream: *mut sys::async_stream, userdata: *mut c_void) {
    let io = io(userdata);
    io.write_paused.set(false);
    guard(io.raw_loop, (), || AsyncIo::wake(&io.writer));
}

unsafe extern "C" fn io_release(userdata: *mut c_void) {
    let io = Rc::from_raw(userdata as *const AsyncIo);
    let raw_loop = io.raw_loop;
    guard(raw_loop, (), move || drop(io));
}

/// An owned stream reference. Made by [`connect`], [`Listener::accept`] or
/// [`Stream::adopt`] it serves async reads and writes; made by
/// [`StreamRef::to_owned`] it only derefs to the [`StreamRef`] calls.
/// Dropping it closes the stream (after flushing) and releases it.
pub struct Stream {
    r: StreamRef<'static>,
    io: Option<Rc<AsyncIo>>,
    /// A layer's stream above holds a reference to each stream below it,
    /// the nearest last, which [`Stream::pop`] hands back (empty otherwise).
    pub(crate) below: Vec<*mut sys::async_stream>,
}

impl Stream {
    /// Takes a reference of `raw` for an async stream.
    pub(crate) unsafe fn with_io(raw: *mut sys::async_stream, io: Rc<AsyncIo>) -> Result<Stream> {
        status(sys::async_stream_retain(raw))?;
        io.owned.set(true);
        Ok(Stream { r: StreamRef { raw, _borrow: PhantomData }, io: Some(io), below: Vec::new() })
    }
}

impl std::ops::Deref for Stream {
    type Target = StreamRef<'static>;
    fn deref(&self) -> &StreamRef<'static> {
        &self.r
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        unsafe {
            sys::async_stream_close(self.r.raw);
            sys::async_stream_release(self.r.raw);
            for below in &self.below {
                sys::async_stream_release(*below);
            }
        }
    }
}

/// A future from a poll function (std's poll_fn needs Rust 1.64).
struct PollFn<F>(F);

impl<T, F: FnMut(&mut Context<'_>) -> Poll<T> + Unpin> StdFuture for PollFn<F> {
    type Output = T;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        (self.get_mut().0)(cx)
    }
}

impl Stream {
    /// Makes an async stream of a connected socket or pipe `fd` (owned from now on).
    pub fn adopt(lp: &LoopHandle, fd: i32) -> Result<Stream> {
        let io = AsyncIo::new(lp.as_raw(), None);
        let table = AsyncIo::table();
        let userdata = Rc::into_raw(io.clone()) as *mut c_void;
        let mut raw = std::ptr::null_mut();
        let rc = unsafe { sys::async_stream_adopt(&mut raw, lp.as_raw(), fd, &table, userdata) };
        if rc < 0 {
            drop(unsafe { Rc::from_raw(userdata as *const AsyncIo) });
            return Err(Error::from_code(rc));
        }
        unsafe { Stream::with_io(raw, io) }
    }

    /// Makes a stream of `fd` driven by `protocol`; the returned reference
    /// may be dropped at once (the stream lives until it is lost).
    pub fn adopt_with<P: Protocol>(lp: &LoopHandle, fd: i32, protocol: P) -> Result<Stream> {
        let table = ProtoCell::<P>::table();
        let userdata = ProtoCell::into_userdata(lp.as_raw(), protocol);
        let mut raw = std::ptr::null_mut();
        let rc = unsafe { sys::async_stream_adopt(&mut raw, lp.as_raw(), fd, &table, userdata) };
        if rc < 0 {
            drop(unsafe { Box::from_raw(userdata as *mut ProtoCell<P>) });
            return Err(Error::from_code(rc));
        }
        unsafe { sys::async_stream_retain(raw) };
        Ok(Stream { r: StreamRef { raw, _borrow: PhantomData }, io: None, below: Vec::new() })
    }

    /// Whether bytes were read from the library but not taken by a read.
    /// The verification result kept when the stream ended with ECERT.
    pub(crate) fn io_verify(&self) -> Option<(i32, &'static str)> {
        self.io.as_ref().and_then(|io| io.verify.get())
    }

    pub(crate) fn has_unread(&self) -> bool {
        self.io.as_ref().map_or(false, |io| io.buffer.borrow().len() > io.start.get())
    }

    /// Gives up this object without closing the stream: its references,
    /// to the stream and to those below it (the nearest last), are the
    /// caller's to release.
    pub(crate) fn into_retained(self) -> Vec<*mut sys::async_stream> {
        let mut this = std::mem::ManuallyDrop::new(self);
        // SAFETY: read once from a value never dropped.
        drop(unsafe { std::ptr::read(&this.io) });
        let mut chain = std::mem::take(&mut this.below);
        chain.push(this.r.raw);
        chain
    }

    fn io(&self) -> Result<&AsyncIo> {
        self.io.as_deref().ok_or(Error::STATE)
    }

    /// Waits until `take(buffered, ended)` says how many buffered bytes to
    /// take (Some), then hands them to `out`. Ended: the peer's end of file
    /// or the loss; a loss with an error fails the read with it instead.
    async fn read_with<T>(
        &self,
        mut take: impl FnMut(&[u8], bool) -> Option<Result<usize>> + Unpin,
        mut out: impl FnMut(&[u8]) -> T + Unpin,
    ) -> Result<T> {
        let io = self.io()?;
        PollFn(move |cx: &mut Context<'_>| {
            let ended = io.eof.get() || io.lost.get().is_some();
            let decision = {
                let buffer = io.buffer.borrow();
                take(&buffer[io.start.get()..], ended)
            };
            match decision {
                Some(Ok(n)) => {
                    let value = {
                        let buffer = io.buffer.borrow();
                        out(&buffer[io.start.get()..io.start.get() + n])
                    };
                    self.consume(io, n);
                    Poll::Ready(Ok(value))
                }
                Some(Err(error)) => Poll::Ready(Err(error)),
                None => match io.lost.get() {
                    Some(code) if code != 0 => Poll::Ready(Err(Error::from_code(code))),
                    _ if ended => Poll::Ready(Err(Error::EOF)),
                    _ => {
                        *io.reader.borrow_mut() = Some(cx.waker().clone());
                        Poll::Pending
                    }
                },
            }
        })
        .await
    }

    fn consume(&self, io: &AsyncIo, n: usize) {
        let start = io.start.get() + n;
        let mut buffer = io.buffer.borrow_mut();
        if start == buffer.len() {
            buffer.clear();
            io.start.set(0);
        } else {
            io.start.set(start);
            if start > buffer.len() / 2 {
                buffer.drain(..start);
                io.start.set(0);
            }
        }
        let buffered = buffer.len() - io.start.get();
        if io.read_paused.get() && buffered < READ_HIGH_WATER {
            io.read_paused.set(false);
            unsafe { sys::async_stream_resume_reading(self.r.raw) };
        }
    }

    /// Reads what has arrived into `out`: at least 1 byte, 0 at the end of
    /// the stream.
    pub async fn read(&self, out: &mut [u8]) -> Result<usize> {
        let max = out.len();
        self.read_with(
            |buffered, ended| match buffered.len().min(max) {
                0 if ended || max == 0 => Some(Ok(0)),
                0 => None,
                n => Some(Ok(n)),
            },
            |bytes| {
                out[..bytes.len()].copy_from_slice(bytes);
                bytes.len()
            },
        )
        .await
    }

    /// Reads what has arrived, at most `max` bytes (empty at the end).
    pub async fn read_some(&self, max: usize) -> Result<Vec<u8>> {
        self.read_with(
            |buffered, ended| match buffered.len().min(max) {
                0 if ended || max == 0 => Some(Ok(0)),
                0 => None,
                n => Some(Ok(n)),
            },
            |bytes| bytes.to_vec(),
        )
        .await
    }

    /// Reads exactly `n` bytes (EOF when the stream ends before).
    pub async fn read_exact(&self, n: usize) -> Result<Vec<u8>> {
        self.read_with(|buffered, _| if buffered.len() >= n { Some(Ok(n)) } else { None }, |bytes| bytes.to_vec()).await
    }

    /// Reads up to and including `delimiter`; NOBUFS when `limit` bytes
    /// hold no delimiter, EOF when the stream ends before one.
    pub async fn read_until(&self, delimiter: &[u8], limit: usize) -> Result<Vec<u8>> {
        if delimiter.is_empty() {
            return Err(Error::INVAL);
        }
        self.read_with(
            |buffered, _| {
                let window = &buffered[..buffered.len().min(limit)];
                match window.windows(delimiter.len()).position(|w| w == delimiter) {
                    Some(at) => Some(Ok(at + delimiter.len())),
                    None if buffered.len() >= limit => Some(Err(Error::NOBUFS)),
                    None => None,
                }
            },
            |bytes| bytes.to_vec(),
        )
        .await
    }

    /// Reads one line, the "\n" included (as read_until).
    pub async fn read_line(&self, limit: usize) -> Result<Vec<u8>> {
        self.read_until(b"\n", limit).await
    }

    /// Writes `data` (copied) and waits while the write buffer is above its
    /// high-water mark.
    pub async fn write_all(&self, data: &[u8]) -> Result<()> {
        let io = self.io()?;
        self.write(data)?;
        PollFn(|cx: &mut Context<'_>| {
            if !io.write_paused.get() {
                return Poll::Ready(Ok(()));
            }
            match io.lost.get() {
                Some(0) => Poll::Ready(Err(Error::CLOSED)),
                Some(code) => Poll::Ready(Err(Error::from_code(code))),
                None => {
                    *io.writer.borrow_mut() = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }
}

/// Connect options (every default: `ConnectOptions::default()`).
#[derive(Clone, Debug, Default)]
pub struct ConnectOptions {
    /// 0 (any), 2 (IPv4 only) or 10 (IPv6 only).
    pub family: i32,
    /// One address at a time instead of Happy Eyeballs.
    pub sequential: bool,
    /// Per attempt; 0: the kernel's.
    pub attempt_timeout_ms: u64,
    /// Lookups and attempts together (ETIMEDOUT); 0: none.
    pub total_timeout_ms: u64,
    /// A client context: the stream comes with TLS on it, once the
    /// handshake is done (its errors fail the connect: [`Error::CERT`],
    /// [`Error::TLS`], ...). A reconnector's connects resume its sessions.
    pub tls: Option<crate::TlsContext>,
    /// The name TLS checks and sends as SNI; None: the host.
    pub server_name: Option<String>,
}

impl ConnectOptions {
    /// The C options, and the server name's C string they point into.
    fn raw(&self) -> Result<(sys::async_connect_options, Option<CString>)> {
        let name = self.server_name.as_deref().map(cstring).transpose()?;
        // SAFETY: all-zero is every default (pointers NULL, callbacks None).
        let mut options: sys::async_connect_options = unsafe { std::mem::zeroed() };
        options.size = std::mem::size_of::<sys::async_connect_options>() as u32;
        options.family = self.family;
        options.sequential = self.sequential as i32;
        options.attempt_timeout_ms = self.attempt_timeout_ms;
        options.total_timeout_ms = self.total_timeout_ms;
        options.tls = self.tls.as_ref().map_or(std::ptr::null_mut(), |ctx| ctx.as_raw());
        options.server_name = name.as_ref().map_or(std::ptr::null(), |n| n.as_ptr());
        Ok((options, name))
    }
}

fn connect_future(lp: &LoopHandle, raw: *mut sys::async_future, io: Option<Rc<AsyncIo>>) -> Future<Stream> {
    unsafe {
        Future::from_raw(lp.inner().clone(), raw, move |raw| {
            let stream = Future::<Stream>::status(raw)? as *mut sys::async_stream;
            match &io {
                Some(io) => Stream::with_io(stream, io.clone()),
                None => {
                    status(sys::async_stream_retain(stream))?;
                    Ok(Stream { r: StreamRef { raw: stream, _borrow: PhantomData }, io: None, below: Vec::new() })
                }
            }
        })
    }
}

/// Connects to host:port (names resolved, Happy Eyeballs) and gives an
/// async [`Stream`]; dropping the future cancels the connect.
pub fn connect(lp: &LoopHandle, host: &str, port: u16) -> Result<Future<Stream>> {
    connect_options(lp, host, port, &ConnectOptions::default())
}

/// [`connect`] with options.
pub fn connect_options(lp: &LoopHandle, host: &str, port: u16, options: &ConnectOptions) -> Result<Future<Stream>> {
    let host = cstring(host)?;
    let io = AsyncIo::new(lp.as_raw(), None);
    let (options, _name) = options.raw()?;
    let table = AsyncIo::table();
    let userdata = Rc::into_raw(io.clone()) as *mut c_void;
    let mut raw = std::ptr::null_mut();
    let rc = unsafe { sys::async_tcp_connect(&mut raw, lp.as_raw(), host.as_ptr(), port, &options, &table, userdata) };
    if rc < 0 {
        drop(unsafe { Rc::from_raw(userdata as *const AsyncIo) });
        return Err(Error::from_code(rc));
    }
    Ok(connect_future(lp, raw, Some(io)))
}

/// Connects to host:port with a callback protocol; the future gives a
/// reference to the stream (drop it at once to leave the stream to the
/// protocol).
pub fn connect_with<P: Protocol>(lp: &LoopHandle, host: &str, port: u16, protocol: P) -> Result<Future<Stream>> {
    let host = cstring(host)?;
    let table = ProtoCell::<P>::table();
    let userdata = ProtoCell::into_userdata(lp.as_raw(), protocol);
    let mut raw = std::ptr::null_mut();
    let rc = unsafe {
        sys::async_tcp_connect(&mut raw, lp.as_raw(), host.as_ptr(), port, std::ptr::null(), &table, userdata)
    };
    if rc < 0 {
        drop(unsafe { Box::from_raw(userdata as *mut ProtoCell<P>) });
        return Err(Error::from_code(rc));
    }
    Ok(connect_future(lp, raw, None))
}

/// Connects to a Unix stream socket (a path, or "@name" for an abstract one).
pub fn connect_unix(lp: &LoopHandle, path: &str) -> Result<Future<Stream>> {
    let path = cstring(path)?;
    let io = AsyncIo::new(lp.as_raw(), None);
    let table = AsyncIo::table();
    let userdata = Rc::into_raw(io.clone()) as *mut c_void;
    let mut raw = std::ptr::null_mut();
    let rc = unsafe { sys::async_unix_connect(&mut raw, lp.as_raw(), path.as_ptr(), &table, userdata) };
    if rc < 0 {
        drop(unsafe { Rc::from_raw(userdata as *const AsyncIo) });
        return Err(Error::from_code(rc));
    }
    Ok(connect_future(lp, raw, Some(io)))
}

/// A listening server; dropping it stops listening (accepted streams go on).
pub struct Server {
    core: Rc<HandleCore>,
    raw: *mut sys::async_server,
}

enum Address<'a> {
    Tcp(Option<&'a str>, u16),
    Unix(&'a str),
}

impl Server {
    fn open(lp: &LoopHandle, address: Address<'_>, accept: Callback) -> Result<Server> {
        let mut raw = std::ptr::null_mut();
        let core = HandleCore::create(lp, |userdata| unsafe {
            let rc = match address {
                Address::Tcp(host, port) => {
                    let host = match host.map(cstring).transpose() {
                        Ok(host) => host,
                        Err(error) => return Err(error.code()),
                    };
                    let host_ptr = host.as_ref().map_or(std::ptr::null(), |h| h.as_ptr());
                    sys::async_tcp_listen(
                        &mut raw,
                        lp.as_raw(),
                        host_ptr,
                        port,
                        0,
                        0,
                        Some(server_factory_trampoline),
                        userdata,
                    )
                }
                Address::Unix(path) => {
                    let path = match cstring(path) {
                        Ok(path) => path,
                        Err(error) => return Err(error.code()),
                    };
                    sys::async_unix_listen(
                        &mut raw,
                        lp.as_raw(),
                        path.as_ptr(),
                        0,
                        Some(server_factory_trampoline),
                        userdata,
                    )
                }
            };
            if rc < 0 {
                Err(rc)
            } else {
                Ok(sys::async_server_handle(raw))
            }
        })?;
        core.set_callback(accept);
        Ok(Server { core, raw })
    }

    fn protocol_factory<P: Protocol, F: FnMut() -> P + 'static>(lp: &LoopHandle, mut factory: F) -> Callback {
        let table = Box::new(ProtoCell::<P>::table());
        let raw_loop = lp.as_raw();
        Callback::Server(Box::new(move || {
            let userdata = ProtoCell::into_userdata(raw_loop, factory());
            Some((&*table as *const sys::async_stream_protocol, userdata))
        }))
    }

    /// Listens on host:port (None: every interface; port 0: a free one);
    /// each connection gets a protocol from `factory`.
    pub fn listen<P: Protocol, F: FnMut() -> P + 'static>(
        lp: &LoopHandle,
        host: Option<&str>,
        port: u16,
        factory: F,
    ) -> Result<Server> {
        Server::open(lp, Address::Tcp(host, port), Server::protocol_factory(lp, factory))
    }

    /// Listens on a Unix socket path.
    pub fn listen_unix<P: Protocol, F: FnMut() -> P + 'static>(
        lp: &LoopHandle,
        path: &str,
        factory: F,
    ) -> Result<Server> {
        Server::open(lp, Address::Unix(path), Server::protocol_factory(lp, factory))
    }

    fn raw(&self) -> Result<*mut sys::async_server> {
        self.core.raw().map(|_| self.raw)
    }

    /// The bound TCP port.
    pub fn port(&self) -> Result<u16> {
        check(unsafe { sys::async_server_port(self.raw()?) }).map(|port| port as u16)
    }

    /// The number of listening sockets.
    pub fn count(&self) -> Result<usize> {
        check(unsafe { sys::async_server_count(self.raw()?) }).map(|n| n as usize)
    }

    /// The address of listening socket `index`.
    pub fn local_addr(&self, index: usize) -> Result<SocketAddr> {
        let mut addr = Sockaddr::default();
        check(unsafe { sys::async_server_sockname(addr.as_mut_ptr(), addr.capacity(), self.raw()?, index) })?;
        sockaddr_from(&addr)
    }

    /// Accepted streams not lost yet.
    pub fn connection_count(&self) -> Result<usize> {
        check(unsafe { sys::async_server_connection_count(self.raw()?) }).map(|n| n as usize)
    }

    /// Connections accepted from now on get TLS with the server context
    /// `ctx` (None: plain again) and reach the factory only once their
    /// handshake is done (async_server_set_tls).
    pub fn set_tls(&self, ctx: Option<&crate::TlsContext>) -> Result<()> {
        let ctx = ctx.map_or(std::ptr::null_mut(), |ctx| ctx.as_raw());
        status(unsafe { sys::async_server_set_tls(self.raw()?, ctx) })
    }

    /// Closes (or aborts) every accepted stream still open.
    pub fn close_connections(&self, abort: bool) -> Result<()> {
        status(unsafe { sys::async_server_close_connections(self.raw()?, abort as i32) })
    }

    /// Stops listening.
    pub fn close(self) {}
}

impl Drop for Server {
    fn drop(&mut self) {
        self.core.close();
    }
}

struct ListenerState {
    queue: RefCell<VecDeque<Stream>>,
    waker: RefCell<Option<Waker>>,
}

/// A server whose connections are awaited as async [`Stream`]s.
pub struct Listener {
    server: Server,
    state: Rc<ListenerState>,
}

impl Listener {
    /// Listens on host:port (None: every interface; port 0: a free one).
    pub fn bind(lp: &LoopHandle, host: Option<&str>, port: u16) -> Result<Listener> {
        Listener::open(lp, Address::Tcp(host, port))
    }

    /// Listens on a Unix socket path.
    pub fn bind_unix(lp: &LoopHandle, path: &str) -> Result<Listener> {
        Listener::open(lp, Address::Unix(path))
    }

    fn open(lp: &LoopHandle, address: Address<'_>) -> Result<Listener> {
        let state = Rc::new(ListenerState { queue: RefCell::new(VecDeque::new()), waker: RefCell::new(None) });
        let (weak, raw_loop, table) = (Rc::downgrade(&state), lp.as_raw(), Box::new(AsyncIo::table()));
        let accept = Callback::Server(Box::new(move || {
            let io = AsyncIo::new(raw_loop, Some(weak.clone()));
            Some((&*table as *const sys::async_stream_protocol, Rc::into_raw(io) as *mut c_void))
        }));
        Ok(Listener { server: Server::open(lp, address, accept)?, state })
    }

    /// The server (port, addresses, connection count).
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// The next connection; ECLOSED once the server was ended.
    pub async fn accept(&self) -> Result<Stream> {
        PollFn(|cx: &mut Context<'_>| {
            if let Some(stream) = self.state.queue.borrow_mut().pop_front() {
                return Poll::Ready(Ok(stream));
            }
            if self.server.core.raw().is_err() {
                return Poll::Ready(Err(Error::CLOSED));
            }
            *self.state.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

/// The callbacks of a [`Reconnector`]: a stream [`Protocol`] for each
/// connection, and the reconnector's own events.
pub trait ReconnectProtocol: Protocol {
    /// A connect failed (`failures` in a row); the next starts in
    /// `retry_ms` (0 when giving up: stopped follows).
    fn connect_failed(&mut self, _error: Error, _failures: u32, _retry_ms: u64) {}
    /// The reconnector ended: None after [`Reconnector::stop`], else the last error.
    fn stopped(&mut self, _error: Option<Error>) {}
}

/// Reconnect options (`ReconnectOptions::default()`: every default).
#[derive(Clone, Debug, Default)]
pub struct ReconnectOptions {
    /// Each connect's options.
    pub connect: ConnectOptions,
    /// First retry and the wait after a loss; 0: 100 ms.
    pub initial_delay_ms: u64,
    /// 0: 30000 ms.
    pub max_delay_ms: u64,
    /// 0.0: 2.0.
    pub multiplier: f64,
    /// 0.0: 0.1; negative: none.
    pub jitter: f64,
    /// Failed connects in a row before giving up; 0: never.
    pub max_attempts: u32,
}

/// A reconnector's userdata: the protocol cell first, then where the
/// stopped callback marks the reconnector gone.
#[repr(C)]
struct ReconnectCell<P> {
    cell: ProtoCell<P>,
    raw: Rc<Cell<*mut sys::async_reconnector>>,
}

unsafe extern "C" fn rc_failed<P: ReconnectProtocol>(
    rc: *mut sys::async_reconnector,
    error: i32,
    failures: u32,
    retry_ms: u64,
    userdata: *mut c_void,
) {
    let stream = sys::async_reconnector_stream(rc);
    ProtoCell::<P>::call(userdata, stream, (), |p, _| p.connect_failed(Error::from_code(error), failures, retry_ms))
}

unsafe extern "C" fn rc_stopped<P: ReconnectProtocol>(
    _rc: *mut sys::async_reconnector,
    error: i32,
    userdata: *mut c_void,
) {
    let cell = &*(userdata as *const ReconnectCell<P>);
    cell.raw.set(std::ptr::null_mut()); // its memory goes after this callback
    let error = if error == 0 { None } else { Some(Error::from_code(error)) };
    ProtoCell::<P>::call(userdata, std::ptr::null_mut(), (), |p, _| p.stopped(error))
}

unsafe extern "C" fn rc_release<P: ReconnectProtocol>(userdata: *mut c_void) {
    let cell = Box::from_raw(userdata as *mut ReconnectCell<P>);
    let raw_loop = cell.cell.raw_loop;
    guard(raw_loop, (), move || drop(cell));
}

/// Keeps a connection to host:port up: connects, and after a failure or a
/// loss connects again after a backoff delay. Dropping it stops it.
pub struct Reconnector {
    raw: Rc<Cell<*mut sys::async_reconnector>>,
    _loop: LoopHandle,
}

/// What a [`Reconnector`] is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReconnectState {
    Connecting,
    Connected,
    Waiting,
    Stopping,
}

impl Reconnector {
    /// Starts connecting to host:port; `protocol` drives each connection.
    pub fn start<P: ReconnectProtocol>(
        lp: &LoopHandle,
        host: &str,
        port: u16,
        options: &ReconnectOptions,
        protocol: P,
    ) -> Result<Reconnector> {
        let host = cstring(host)?;
        let (connect, _name) = options.connect.raw()?;
        let mut raw_options: sys::async_reconnect_options = unsafe { std::mem::zeroed() };
        raw_options.size = std::mem::size_of::<sys::async_reconnect_options>() as u32;
        raw_options.connect = &connect;
        raw_options.initial_delay_ms = options.initial_delay_ms;
        raw_options.max_delay_ms = options.max_delay_ms;
        raw_options.multiplier = options.multiplier;
        raw_options.jitter = options.jitter;
        raw_options.max_attempts = options.max_attempts;
        raw_options.connect_failed = Some(rc_failed::<P>);
        raw_options.stopped = Some(rc_stopped::<P>);
        let mut table = ProtoCell::<P>::table();
        table.release = Some(rc_release::<P>);
        let raw = Rc::new(Cell::new(std::ptr::null_mut()));
        let cell = ReconnectCell {
            cell: ProtoCell { raw_loop: lp.as_raw(), proto: RefCell::new(protocol), deferred_pause: Cell::new(false) },
            raw: raw.clone(),
        };
        let userdata = Box::into_raw(Box::new(cell)) as *mut c_void;
        let mut out = std::ptr::null_mut();
        let rc = unsafe {
            sys::async_reconnector_start(&mut out, lp.as_raw(), host.as_ptr(), port, &raw_options, &table, userdata)
        };
        if rc < 0 {
            drop(unsafe { Box::from_raw(userdata as *mut ReconnectCell<P>) });
            return Err(Error::from_code(rc));
        }
        raw.set(out);
        Ok(Reconnector { raw, _loop: lp.clone() })
    }

    fn raw(&self) -> Result<*mut sys::async_reconnector> {
        let raw = self.raw.get();
        if raw.is_null() {
            Err(Error::CLOSED)
        } else {
            Ok(raw)
        }
    }

    /// Drops the current connection (or wait) and connects again now.
    pub fn reconnect(&self) -> Result<()> {
        status(unsafe { sys::async_reconnector_reconnect(self.raw()?) })
    }

    /// Stops for good; `stopped` follows from the loop.
    pub fn stop(&self) -> Result<()> {
        status(unsafe { sys::async_reconnector_stop(self.raw()?) })
    }

    /// The current state (ECLOSED once stopped).
    pub fn state(&self) -> Result<ReconnectState> {
        let state = check(unsafe { sys::async_reconnector_state(self.raw()?) })? as u32;
        Ok(match state {
            s if s == sys::async_reconnect_state::ASYNC_RECONNECT_CONNECTING.0 => ReconnectState::Connecting,
            s if s == sys::async_reconnect_state::ASYNC_RECONNECT_CONNECTED.0 => ReconnectState::Connected,
            s if s == sys::async_reconnect_state::ASYNC_RECONNECT_WAITING.0 => ReconnectState::Waiting,
            _ => ReconnectState::Stopping,
        })
    }

    /// The connected stream, if any (a new reference).
    pub fn stream(&self) -> Result<Option<Stream>> {
        let stream = unsafe { sys::async_reconnector_stream(self.raw()?) };
        if stream.is_null() {
            return Ok(None);
        }
        StreamRef { raw: stream, _borrow: PhantomData }.to_owned().map(Some)
    }
}

impl Drop for Reconnector {
    fn drop(&mut self) {
        if let Ok(raw) = self.raw() {
            unsafe { sys::async_reconnector_stop(raw) };
        }
    }
}
