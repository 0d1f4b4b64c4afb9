//! Datagram transports (UDP, Unix datagram sockets) driven by callbacks.

use crate::addr::{sockaddr_from, socket_addr, Sockaddr};
use crate::error::check;
use crate::{cstring, guard, sys, Error, LoopHandle, Result};
use std::cell::RefCell;
use std::ffi::{c_void, CString};
use std::marker::PhantomData;
use std::net::SocketAddr;

/// The callbacks of a datagram transport; a panic goes to the caller of
/// `Loop::run` and aborts the transport.
pub trait DatagramProtocol: 'static {
    /// The transport is ready (the first callback).
    fn connection_made(&mut self, _dgram: &DatagramRef<'_>) {}
    /// One datagram; `from` is None when the kernel names no IP sender
    /// (a Unix socket).
    fn datagram_received(&mut self, dgram: &DatagramRef<'_>, data: &[u8], from: Option<SocketAddr>);
    /// A failure that leaves the transport open.
    fn error_received(&mut self, _dgram: &DatagramRef<'_>, _error: Error) {}
    /// The transport is done (the last callback): None after close or abort.
    fn connection_lost(&mut self, _dgram: &DatagramRef<'_>, _error: Option<Error>) {}
}

/// A datagram transport borrowed for a callback (or through a [`Datagram`]).
pub struct DatagramRef<'a> {
    raw: *mut sys::async_datagram,
    _borrow: PhantomData<&'a ()>,
}

/// UDP options (`UdpOptions::default()`: every default).
#[derive(Clone, Debug, Default)]
pub struct UdpOptions {
    /// 0: from the addresses; 2 or 10.
    pub family: i32,
    pub reuse_port: bool,
    pub broadcast: bool,
    pub ipv6_only: bool,
    /// Bind here, numeric ("0.0.0.0:5353", "[::1]:0").
    pub local_address: Option<String>,
    /// Connect here (numeric, with a port).
    pub remote_address: Option<String>,
}

struct Cell<P> {
    raw_loop: *mut sys::async_loop,
    proto: RefCell<P>,
}

unsafe fn call<P: DatagramProtocol>(
    dgram: *mut sys::async_datagram,
    userdata: *mut c_void,
    f: impl FnOnce(&mut P, &DatagramRef<'_>),
) {
    let cell = &*(userdata as *const Cell<P>);
    let dgram_ref = DatagramRef { raw: dgram, _borrow: PhantomData };
    let mut panicked = true;
    guard(cell.raw_loop, (), || {
        f(&mut cell.proto.borrow_mut(), &dgram_ref);
        panicked = false;
    });
    if panicked {
        sys::async_datagram_abort(dgram);
    }
}

unsafe extern "C" fn made<P: DatagramProtocol>(dgram: *mut sys::async_datagram, userdata: *mut c_void) {
    call::<P>(dgram, userdata, |p, d| p.connection_made(d))
}

unsafe extern "C" fn received<P: DatagramProtocol>(
    dgram: *mut sys::async_datagram,
    data: *const u8,
    len: usize,
    addr: *const sys::sockaddr,
    addrlen: usize,
    userdata: *mut c_void,
) {
    let data = if len == 0 { &[][..] } else { std::slice::from_raw_parts(data, len) };
    let from = if addr.is_null() { None } else { socket_addr(addr, addrlen).ok() };
    call::<P>(dgram, userdata, |p, d| p.datagram_received(d, data, from))
}

unsafe extern "C" fn errored<P: DatagramProtocol>(dgram: *mut sys::async_datagram, error: i32, userdata: *mut c_void) {
    call::<P>(dgram, userdata, |p, d| p.error_received(d, Error::from_code(error)))
}

unsafe extern "C" fn lost<P: DatagramProtocol>(dgram: *mut sys::async_datagram, error: i32, userdata: *mut c_void) {
    let error = if error == 0 { None } else { Some(Error::from_code(error)) };
    call::<P>(dgram, userdata, |p, d| p.connection_lost(d, error))
}

unsafe extern "C" fn release<P: DatagramProtocol>(userdata: *mut c_void) {
    let cell = Box::from_raw(userdata as *mut Cell<P>);
    guard(cell.raw_loop, (), move || drop(cell));
}

fn table<P: DatagramProtocol>() -> sys::async_datagram_protocol {
    sys::async_datagram_protocol {
        size: std::mem::size_of::<sys::async_datagram_protocol>() as u32,
        connection_made: Some(made::<P>),
        datagram_received: Some(received::<P>),
        error_received: Some(errored::<P>),
        connection_lost: Some(lost::<P>),
        pause_writing: None,
        resume_writing: None,
        release: Some(release::<P>),
    }
}

/// An owned reference to a datagram transport: dropping it closes the
/// transport and releases it.
pub struct Datagram {
    r: DatagramRef<'static>,
}

impl std::ops::Deref for Datagram {
    type Target = DatagramRef<'static>;
    fn deref(&self) -> &DatagramRef<'static> {
        &self.r
    }
}

impl Drop for Datagram {
    fn drop(&mut self) {
        unsafe {
            sys::async_datagram_close(self.r.raw);
            sys::async_datagram_release(self.r.raw);
        }
    }
}

fn optional(text: &Option<String>) -> Result<Option<CString>> {
    text.as_deref().map(cstring).transpose()
}

impl Datagram {
    fn open<P: DatagramProtocol>(
        lp: &LoopHandle,
        protocol: P,
        open: impl FnOnce(*mut *mut sys::async_datagram, &sys::async_datagram_protocol, *mut c_void) -> i32,
    ) -> Result<Datagram> {
        let userdata =
            Box::into_raw(Box::new(Cell { raw_loop: lp.as_raw(), proto: RefCell::new(protocol) })) as *mut c_void;
        let mut raw = std::ptr::null_mut();
        let rc = open(&mut raw, &table::<P>(), userdata);
        if rc < 0 {
            drop(unsafe { Box::from_raw(userdata as *mut Cell<P>) });
            return Err(Error::from_code(rc));
        }
        unsafe { sys::async_datagram_retain(raw) };
        Ok(Datagram { r: DatagramRef { raw, _borrow: PhantomData } })
    }

    /// A UDP transport.
    pub fn udp<P: DatagramProtocol>(lp: &LoopHandle, options: &UdpOptions, protocol: P) -> Result<Datagram> {
        let (local, remote) = (optional(&options.local_address)?, optional(&options.remote_address)?);
        let mut raw_options: sys::async_udp_options = unsafe { std::mem::zeroed() };
        raw_options.size = std::mem::size_of::<sys::async_udp_options>() as u32;
        raw_options.family = options.family;
        raw_options.reuse_port = options.reuse_port as i32;
        raw_options.broadcast = options.broadcast as i32;
        raw_options.ipv6_only = options.ipv6_only as i32;
        raw_options.local_address = local.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
        raw_options.remote_address = remote.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
        Datagram::open(lp, protocol, |out, table, userdata| unsafe {
            sys::async_udp_open(out, lp.as_raw(), &raw_options, table, userdata)
        })
    }

    /// A Unix datagram transport bound at `local` and/or connected to `remote`.
    pub fn unix<P: DatagramProtocol>(
        lp: &LoopHandle,
        local: Option<&str>,
        remote: Option<&str>,
        protocol: P,
    ) -> Result<Datagram> {
        let (local, remote) = (local.map(cstring).transpose()?, remote.map(cstring).transpose()?);
        Datagram::open(lp, protocol, |out, table, userdata| unsafe {
            sys::async_unix_datagram_open(
                out,
                lp.as_raw(),
                local.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
                remote.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
                table,
                userdata,
            )
        })
    }

    /// A transport of a datagram socket `fd` (owned from now on).
    pub fn adopt<P: DatagramProtocol>(lp: &LoopHandle, fd: i32, protocol: P) -> Result<Datagram> {
        Datagram::open(lp, protocol, |out, table, userdata| unsafe {
            sys::async_datagram_adopt(out, lp.as_raw(), fd, table, userdata)
        })
    }
}

fn status(rc: i32) -> Result<()> {
    check(rc).map(drop)
}

impl DatagramRef<'_> {
    /// Sends to the connected peer (`to` None) or to `to`.
    pub fn send(&self, data: &[u8], to: Option<&SocketAddr>) -> Result<()> {
        let addr = to.map(Sockaddr::from_std).transpose()?;
        let (ptr, len) = addr.as_ref().map_or((std::ptr::null(), 0), |a| (a.as_ptr(), a.len));
        status(unsafe { sys::async_datagram_send(self.raw, data.as_ptr() as *const c_void, data.len(), ptr, len) })
    }

    /// Sends to a numeric address given as text ("127.0.0.1:53", a Unix path).
    pub fn send_to(&self, data: &[u8], address: &str) -> Result<()> {
        let address = cstring(address)?;
        status(unsafe {
            sys::async_datagram_sendto(self.raw, data.as_ptr() as *const c_void, data.len(), address.as_ptr())
        })
    }

    /// Closes once the send queue is written.
    pub fn close(&self) -> Result<()> {
        status(unsafe { sys::async_datagram_close(self.raw) })
    }

    /// Closes now.
    pub fn abort(&self) -> Result<()> {
        status(unsafe { sys::async_datagram_abort(self.raw) })
    }

    pub fn pause_reading(&self) -> Result<()> {
        status(unsafe { sys::async_datagram_pause_reading(self.raw) })
    }

    pub fn resume_reading(&self) -> Result<()> {
        status(unsafe { sys::async_datagram_resume_reading(self.raw) })
    }

    pub fn is_reading(&self) -> bool {
        unsafe { sys::async_datagram_is_reading(self.raw) > 0 }
    }

    pub fn set_write_limits(&self, high: usize, low: usize) -> Result<()> {
        status(unsafe { sys::async_datagram_set_write_limits(self.raw, high, low) })
    }

    /// The send queue's (high, low) marks.
    pub fn write_limits(&self) -> Result<(usize, usize)> {
        let (mut high, mut low) = (0, 0);
        status(unsafe { sys::async_datagram_get_write_limits(&mut high, &mut low, self.raw) })?;
        Ok((high, low))
    }

    /// Payload bytes queued.
    pub fn write_buffer_size(&self) -> Result<usize> {
        let mut size = 0;
        status(unsafe { sys::async_datagram_write_buffer_size(&mut size, self.raw) })?;
        Ok(size)
    }

    pub fn fd(&self) -> Result<i32> {
        check(unsafe { sys::async_datagram_fd(self.raw) })
    }

    /// The local address of a UDP transport.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        let mut addr = Sockaddr::default();
        addr.len =
            check(unsafe { sys::async_datagram_sockname(addr.as_mut_ptr(), addr.capacity(), self.raw) })? as usize;
        sockaddr_from(&addr)
    }

    /// The connected peer of a UDP transport.
    pub fn peer_addr(&self) -> Result<SocketAddr> {
        let mut addr = Sockaddr::default();
        addr.len =
            check(unsafe { sys::async_datagram_peername(addr.as_mut_ptr(), addr.capacity(), self.raw) })? as usize;
        sockaddr_from(&addr)
    }

    pub fn join_multicast(&self, group: &str, iface: Option<&str>) -> Result<()> {
        let (group, iface) = (cstring(group)?, iface.map(cstring).transpose()?);
        let iface_ptr = iface.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
        status(unsafe { sys::async_datagram_join_multicast(self.raw, group.as_ptr(), iface_ptr) })
    }

    pub fn leave_multicast(&self, group: &str, iface: Option<&str>) -> Result<()> {
        let (group, iface) = (cstring(group)?, iface.map(cstring).transpose()?);
        let iface_ptr = iface.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
        status(unsafe { sys::async_datagram_leave_multicast(self.raw, group.as_ptr(), iface_ptr) })
    }

    pub fn set_multicast_interface(&self, iface: &str) -> Result<()> {
        let iface = cstring(iface)?;
        status(unsafe { sys::async_datagram_set_multicast_interface(self.raw, iface.as_ptr()) })
    }

    pub fn set_multicast_ttl(&self, ttl: i32) -> Result<()> {
        status(unsafe { sys::async_datagram_set_multicast_ttl(self.raw, ttl) })
    }

    pub fn set_multicast_loop(&self, on: bool) -> Result<()> {
        status(unsafe { sys::async_datagram_set_multicast_loop(self.raw, on as i32) })
    }

    pub fn set_broadcast(&self, on: bool) -> Result<()> {
        status(unsafe { sys::async_datagram_set_broadcast(self.raw, on as i32) })
    }

    /// An owned reference (valid after the loss; calls then return ECLOSED).
    pub fn to_owned(&self) -> Result<Datagram> {
        status(unsafe { sys::async_datagram_retain(self.raw) })?;
        Ok(Datagram { r: DatagramRef { raw: self.raw, _borrow: PhantomData } })
    }
}
