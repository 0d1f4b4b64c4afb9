//! Stream layers (async/layer.h): a rate limiter pushed onto a stream
//! gives a new async [`Stream`] above it; [`Stream::pop`] takes the layer
//! off and gives the stream below back.

use crate::error::check;
use crate::stream::AsyncIo;
use crate::{sys, Error, Result, Stream, StreamRef};
use std::ffi::c_void;
use std::rc::Rc;

impl Stream {
    /// Pushes a rate limiter onto this stream (async_layer_push_rate_limit):
    /// the returned async stream passes at most `read_bytes_per_s` bytes per
    /// second up and `write_bytes_per_s` down (0: unlimited). The stream
    /// below is the layer's from now on (this object is consumed; the
    /// stream above closes, aborts and queries through it). Works on any
    /// open stream, layered or not, also one taken with
    /// [`StreamRef::to_owned`] inside its own `data_received`.
    /// [`Error::STATE`] when this async stream holds bytes read but not
    /// taken yet (they would be lost below the layer); on any error the
    /// stream is dropped (closed).
    pub fn push_rate_limit(self, read_bytes_per_s: u64, write_bytes_per_s: u64) -> Result<Stream> {
        if self.has_unread() {
            return Err(Error::STATE);
        }
        let raw_loop = unsafe { sys::async_stream_loop(self.as_raw()) };
        let io = AsyncIo::unattached(raw_loop);
        let table = AsyncIo::table();
        let userdata = Rc::into_raw(io.clone()) as *mut c_void;
        let mut upper = std::ptr::null_mut();
        let rc = unsafe {
            sys::async_layer_push_rate_limit(
                &mut upper,
                self.as_raw(),
                read_bytes_per_s,
                write_bytes_per_s,
                &table,
                userdata,
            )
        };
        if rc < 0 {
            drop(unsafe { Rc::from_raw(userdata as *const AsyncIo) });
            return Err(Error::from_code(rc));
        }
        let mut stream = unsafe { Stream::with_io(upper, io) }?;
        stream.below = self.into_retained();
        Ok(stream)
    }

    /// Takes the layer under this stream off (async_layer_pop): this stream
    /// closes once its bytes went down, and the stream below, still open,
    /// is returned as an async stream. [`Error::INVAL`] for a stream not
    /// made by a push of this crate; on an error this stream is dropped.
    pub fn pop(mut self) -> Result<Stream> {
        if self.below.is_empty() {
            return Err(Error::INVAL);
        }
        let raw_loop = unsafe { sys::async_stream_loop(self.as_raw()) };
        let io = AsyncIo::unattached(raw_loop);
        let table = AsyncIo::table();
        let userdata = Rc::into_raw(io.clone()) as *mut c_void;
        let rc = unsafe { sys::async_layer_pop(self.as_raw(), &table, userdata) };
        if rc < 0 {
            drop(unsafe { Rc::from_raw(userdata as *const AsyncIo) });
            return Err(Error::from_code(rc));
        }
        let mut chain = std::mem::take(&mut self.below);
        let below = chain.pop().expect("checked above");
        // Our references to the streams below become the new Stream's.
        let lower = unsafe { Stream::with_io(below, io) };
        unsafe { sys::async_stream_release(below) };
        match lower {
            Ok(mut lower) => {
                lower.below = chain;
                Ok(lower)
            }
            Err(error) => {
                for below in chain {
                    unsafe { sys::async_stream_release(below) };
                }
                Err(error)
            }
        }
    }
}

impl StreamRef<'_> {
    /// Whether the stream sits on a layer (async_layer_is_layered).
    pub fn is_layered(&self) -> Result<bool> {
        check(unsafe { sys::async_layer_is_layered(self.as_raw()) }).map(|rc| rc == 1)
    }
}
