//! DNS lookups (futures) and the loop's resolver settings.

use crate::addr::{socket_addr, Sockaddr};
use crate::error::check;
use crate::{cstring, sys, Future, LoopHandle, Result};
use std::ffi::CStr;
use std::net::SocketAddr;
use std::os::raw::c_char;

/// One address of a lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddrEntry {
    pub addr: SocketAddr,
    /// 2 (IPv4) or 10 (IPv6).
    pub family: i32,
    /// SOCK_STREAM (1), SOCK_DGRAM (2), or 0.
    pub socktype: i32,
    pub protocol: i32,
}

/// The answer of [`getaddrinfo`], copied out of the library's list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddrInfo {
    pub entries: Vec<AddrEntry>,
    /// With `sys::ASYNC_DNS_CANONNAME` in the flags.
    pub canonical_name: Option<String>,
}

unsafe fn owned_str(text: *const c_char) -> Option<String> {
    if text.is_null() {
        None
    } else {
        Some(CStr::from_ptr(text).to_string_lossy().into_owned())
    }
}

unsafe fn take_addrinfo(future: *mut sys::async_future) -> Result<AddrInfo> {
    let mut list = std::ptr::null_mut();
    check(sys::async_addrinfo_take(&mut list, future))?;
    let mut info = AddrInfo { entries: Vec::new(), canonical_name: owned_str(sys::async_addrinfo_canonname(list)) };
    let count = sys::async_addrinfo_count(list).max(0) as usize;
    let mut outcome = Ok(());
    for index in 0..count {
        let mut addr = std::ptr::null();
        let entry = check(sys::async_addrinfo_addr(&mut addr, list, index)).and_then(|len| {
            Ok(AddrEntry {
                addr: socket_addr(addr, len as usize)?,
                family: sys::async_addrinfo_family(list, index),
                socktype: sys::async_addrinfo_socktype(list, index),
                protocol: sys::async_addrinfo_protocol(list, index),
            })
        });
        match entry {
            Ok(entry) => info.entries.push(entry),
            Err(error) => outcome = Err(error),
        }
    }
    sys::async_addrinfo_free(list);
    outcome.map(|_| info)
}

/// Resolves `host` (and `service`, a port number or name) to addresses:
/// `family` 0 (both), 2 or 10; `flags` the `sys::ASYNC_DNS_*` bits.
/// Dropping the future cancels the lookup. The list can be taken once.
pub fn getaddrinfo(
    lp: &LoopHandle,
    host: &str,
    service: Option<&str>,
    family: i32,
    flags: u32,
) -> Result<Future<AddrInfo>> {
    let host = cstring(host)?;
    let service = service.map(cstring).transpose()?;
    let service_ptr = service.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
    let mut raw = std::ptr::null_mut();
    check(unsafe { sys::async_getaddrinfo(&mut raw, lp.as_raw(), host.as_ptr(), service_ptr, family, 0, flags) })?;
    Ok(unsafe { Future::from_raw(lp.inner().clone(), raw, |raw| take_addrinfo(raw)) })
}

/// Reverse lookup: (host, service) of `addr`; `flags` the
/// `sys::ASYNC_DNS_*` bits that apply (NUMERICHOST, NUMERICSERV).
pub fn getnameinfo(lp: &LoopHandle, addr: &SocketAddr, flags: u32) -> Result<Future<(String, String)>> {
    let raw_addr = Sockaddr::from_std(addr)?;
    let mut raw = std::ptr::null_mut();
    check(unsafe { sys::async_getnameinfo(&mut raw, lp.as_raw(), raw_addr.as_ptr(), raw_addr.len, flags) })?;
    Ok(unsafe {
        Future::from_raw(lp.inner().clone(), raw, |raw| {
            let info = Future::<()>::status(raw)? as *const sys::async_nameinfo;
            let host = owned_str(sys::async_nameinfo_host(info)).unwrap_or_default();
            let service = owned_str(sys::async_nameinfo_service(info)).unwrap_or_default();
            Ok((host, service))
        })
    })
}

/// The resolver settings of a loop ([`LoopHandle::dns`]); each applies to
/// lookups started after it.
pub struct DnsConfig<'l> {
    lp: &'l LoopHandle,
}

impl LoopHandle {
    /// The loop's resolver settings.
    pub fn dns(&self) -> DnsConfig<'_> {
        DnsConfig { lp: self }
    }
}

impl DnsConfig<'_> {
    /// Servers, "ip[:port],..." (empty: the system's).
    pub fn set_servers(&self, servers: &str) -> Result<()> {
        let servers = cstring(servers)?;
        check(unsafe { sys::async_dns_set_servers(self.lp.as_raw(), servers.as_ptr()) }).map(drop)
    }

    /// Per-try timeout and tries per server.
    pub fn set_timeout(&self, timeout_ms: u32, tries: u32) -> Result<()> {
        check(unsafe { sys::async_dns_set_timeout(self.lp.as_raw(), timeout_ms, tries) }).map(drop)
    }

    /// The overall deadline of each lookup.
    pub fn set_deadline(&self, deadline_ms: u64) -> Result<()> {
        check(unsafe { sys::async_dns_set_deadline(self.lp.as_raw(), deadline_ms) }).map(drop)
    }

    /// Round-robin over the servers.
    pub fn set_rotate(&self, rotate: bool) -> Result<()> {
        check(unsafe { sys::async_dns_set_rotate(self.lp.as_raw(), rotate as i32) }).map(drop)
    }

    /// The hosts file consulted before DNS.
    pub fn set_hosts_file(&self, path: &str) -> Result<()> {
        let path = cstring(path)?;
        check(unsafe { sys::async_dns_set_hosts_file(self.lp.as_raw(), path.as_ptr()) }).map(drop)
    }

    /// Search domains ("a.example,b.example") and ndots.
    pub fn set_search(&self, domains: &str, ndots: u32) -> Result<()> {
        let domains = cstring(domains)?;
        check(unsafe { sys::async_dns_set_search(self.lp.as_raw(), domains.as_ptr(), ndots) }).map(drop)
    }
}
