//! Socket addresses: std's SocketAddr to and from the library's opaque
//! `struct sockaddr` bytes, through its address accessors.

use crate::error::check;
use crate::{cstring, sys, Error, Result};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};

/// ASYNC_ADDR_MAXLEN bytes, aligned for any sockaddr.
#[repr(C, align(8))]
pub(crate) struct Sockaddr {
    bytes: [u8; sys::ASYNC_ADDR_MAXLEN as usize],
    pub(crate) len: usize,
}

impl Default for Sockaddr {
    fn default() -> Sockaddr {
        Sockaddr { bytes: [0; sys::ASYNC_ADDR_MAXLEN as usize], len: sys::ASYNC_ADDR_MAXLEN as usize }
    }
}

impl Sockaddr {
    pub(crate) fn as_mut_ptr(&mut self) -> *mut sys::sockaddr {
        self.bytes.as_mut_ptr() as *mut sys::sockaddr
    }

    pub(crate) fn as_ptr(&self) -> *const sys::sockaddr {
        self.bytes.as_ptr() as *const sys::sockaddr
    }

    pub(crate) fn capacity(&self) -> usize {
        self.bytes.len()
    }

    /// The library's form of `addr`.
    pub(crate) fn from_std(addr: &SocketAddr) -> Result<Sockaddr> {
        let mut out = Sockaddr::default();
        let (family, ip, scope): (i32, Vec<u8>, u32) = match addr {
            SocketAddr::V4(v4) => (sys::async_addr_family::ASYNC_AF_INET.0 as i32, v4.ip().octets().to_vec(), 0),
            SocketAddr::V6(v6) => {
                (sys::async_addr_family::ASYNC_AF_INET6.0 as i32, v6.ip().octets().to_vec(), v6.scope_id())
            }
        };
        let len = check(unsafe {
            sys::async_addr_make(out.as_mut_ptr(), out.capacity(), family, ip.as_ptr(), ip.len(), addr.port(), scope)
        })?;
        out.len = len as usize;
        Ok(out)
    }
}

/// An IPv4/IPv6 sockaddr of `len` bytes as a SocketAddr.
pub(crate) unsafe fn socket_addr(addr: *const sys::sockaddr, len: usize) -> Result<SocketAddr> {
    let family = check(sys::async_addr_get_family(addr, len))?;
    let port = check(sys::async_addr_port(addr, len))? as u16;
    let mut ip = [0u8; 16];
    let ip_len = check(sys::async_addr_get_ip(ip.as_mut_ptr(), ip.len(), addr, len))?;
    if family == sys::async_addr_family::ASYNC_AF_INET.0 as i32 && ip_len == 4 {
        let v4 = Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]);
        Ok(SocketAddr::new(IpAddr::V4(v4), port))
    } else if family == sys::async_addr_family::ASYNC_AF_INET6.0 as i32 && ip_len == 16 {
        let mut scope = 0;
        check(sys::async_addr_get_scope_id(&mut scope, addr, len))?;
        Ok(SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(ip), port, 0, scope)))
    } else {
        Err(Error::INVAL) // a Unix address has no SocketAddr
    }
}

pub(crate) fn sockaddr_from(addr: &Sockaddr) -> Result<SocketAddr> {
    unsafe { socket_addr(addr.as_ptr(), addr.len) }
}

/// Parses "1.2.3.4", "[::1]:80", "::1", "1.2.3.4:80" (async_addr_parse);
/// `default_port` when the text has none.
pub fn parse_addr(text: &str, default_port: u16) -> Result<SocketAddr> {
    let text = cstring(text)?;
    let mut out = Sockaddr::default();
    let len = check(unsafe { sys::async_addr_parse(out.as_mut_ptr(), out.capacity(), text.as_ptr(), default_port) })?;
    out.len = len as usize;
    sockaddr_from(&out)
}

/// Formats an address as the library does (async_addr_format, flags 0:
/// with the port).
pub fn format_addr(addr: &SocketAddr) -> Result<String> {
    let raw = Sockaddr::from_std(addr)?;
    let mut text = [0u8; 128];
    let len = check(unsafe {
        sys::async_addr_format(text.as_mut_ptr() as *mut std::os::raw::c_char, text.len(), raw.as_ptr(), raw.len, 0)
    })?;
    let end = text.iter().position(|&b| b == 0).unwrap_or(len as usize);
    Ok(String::from_utf8_lossy(&text[..end]).into_owned())
}
