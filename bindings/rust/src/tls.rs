//! TLS (async/tls.h) and SOCKS5 (async/socks.h) layers: a [`TlsContext`]
//! holds certificates and settings for any number of streams;
//! [`Stream::push_tls`] puts TLS on a live stream and
//! [`Stream::push_socks5`] turns a stream to a SOCKS5 proxy into a tunnel.

use crate::addr::Sockaddr;
use crate::error::check;
use crate::stream::AsyncIo;
use crate::{cstring, sys, Error, Future, LoopHandle, Result, Stream, StreamRef};
use std::ffi::{c_void, CStr, CString};
use std::net::SocketAddr;
use std::rc::Rc;

/// Which end of the handshake a context is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsSide {
    /// Connects: verifies the server and checks its name.
    Client,
    /// Accepts: presents a certificate.
    Server,
}

/// The settings of a [`TlsContext`] (async_tls_options); the default is
/// the secure one (a client verifies against the system's CA store).
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    /// PEM file of the CAs that verify the peer.
    pub ca_file: Option<String>,
    /// PEM file of the certificate then its chain (required for a server).
    pub cert_file: Option<String>,
    /// PEM file of cert_file's key (None: in cert_file).
    pub key_file: Option<String>,
    /// ALPN protocols in order of preference ("h2", "http/1.1").
    pub alpn: Vec<String>,
    /// A client does not verify the server (tests, pinning done elsewhere).
    pub no_verify: bool,
    /// A server requires a client certificate signed by ca_file.
    pub verify_client: bool,
    /// A client keeps no sessions to resume.
    pub no_session_cache: bool,
    /// 0: the library's default (30 s).
    pub handshake_timeout_ms: u64,
}

/// A TLS context (async_tls_context): clones share it (retain), the last
/// drop releases it. The C context is atomically reference counted and
/// immutable once made, so it is Send and Sync.
#[derive(Debug)]
pub struct TlsContext {
    raw: *mut sys::async_tls_context,
}

// SAFETY: async_tls_context_retain/release are atomic and the context is
// never changed after async_tls_context_new (async/tls.h).
unsafe impl Send for TlsContext {}
unsafe impl Sync for TlsContext {}

fn optional(text: &Option<String>) -> Result<Option<CString>> {
    text.as_deref().map(cstring).transpose()
}

impl TlsContext {
    /// Loads the certificates and makes a context (async_tls_context_new):
    /// [`Error::TLS`] for a file OpenSSL refuses, [`Error::INVAL`] for a
    /// server without a certificate or a string with a NUL.
    pub fn new(side: TlsSide, options: &TlsOptions) -> Result<TlsContext> {
        let (ca, cert, key) =
            (optional(&options.ca_file)?, optional(&options.cert_file)?, optional(&options.key_file)?);
        let alpn = if options.alpn.is_empty() { None } else { Some(cstring(&options.alpn.join(","))?) };
        let ptr = |text: &Option<CString>| text.as_ref().map_or(std::ptr::null(), |t| t.as_ptr());
        let mut flags = 0;
        for (set, flag) in [
            (options.no_verify, sys::async_tls_flags::ASYNC_TLS_NO_VERIFY),
            (options.verify_client, sys::async_tls_flags::ASYNC_TLS_VERIFY_CLIENT),
            (options.no_session_cache, sys::async_tls_flags::ASYNC_TLS_NO_SESSION_CACHE),
        ] {
            if set {
                flags |= flag.0 as u32;
            }
        }
        let raw_options = sys::async_tls_options {
            size: std::mem::size_of::<sys::async_tls_options>() as u32,
            flags,
            ca_file: ptr(&ca),
            cert_file: ptr(&cert),
            key_file: ptr(&key),
            alpn: ptr(&alpn),
            handshake_timeout_ms: options.handshake_timeout_ms,
        };
        let side = match side {
            TlsSide::Client => sys::async_tls_side::ASYNC_TLS_CLIENT,
            TlsSide::Server => sys::async_tls_side::ASYNC_TLS_SERVER,
        };
        let mut raw = std::ptr::null_mut();
        check(unsafe { sys::async_tls_context_new(&mut raw, side, &raw_options) })?;
        Ok(TlsContext { raw })
    }

    /// The raw context (valid while this object lives).
    pub fn as_raw(&self) -> *mut sys::async_tls_context {
        self.raw
    }

    /// A server context presents `other`'s certificate to clients that
    /// name `name` in SNI (async_tls_context_add_server_name); other names
    /// get this context's own.
    pub fn add_server_name(&self, name: &str, other: &TlsContext) -> Result<()> {
        let name = cstring(name)?;
        check(unsafe { sys::async_tls_context_add_server_name(self.raw, name.as_ptr(), other.raw) }).map(drop)
    }
}

impl Clone for TlsContext {
    fn clone(&self) -> TlsContext {
        unsafe { sys::async_tls_context_retain(self.raw) };
        TlsContext { raw: self.raw }
    }
}

impl Drop for TlsContext {
    fn drop(&mut self) {
        unsafe { sys::async_tls_context_release(self.raw) };
    }
}

/// References to the streams below a layer, released unless handed on.
struct Chain(Vec<*mut sys::async_stream>);

impl Drop for Chain {
    fn drop(&mut self) {
        for below in self.0.drain(..) {
            unsafe { sys::async_stream_release(below) };
        }
    }
}

/// async_tls_verify_error on a live TLS stream.
pub(crate) fn query_verify(stream: *mut sys::async_stream) -> Result<(i32, &'static str)> {
    let mut reason = std::ptr::null();
    let code = check(unsafe { sys::async_tls_verify_error(&mut reason, stream) })?;
    let reason = if reason.is_null() { "" } else { unsafe { CStr::from_ptr(reason) }.to_str().unwrap_or("") };
    Ok((code, reason))
}

impl Stream {
    /// Puts TLS on this stream (async_tls_push): the returned async stream
    /// carries plaintext (its writes wait until the handshake is done) and
    /// the future resolves once the handshake is, or fails with
    /// [`Error::TLS`], [`Error::CERT`] (then [`Stream::verify_error`] says
    /// why) or [`Error::TIMEDOUT`]; dropping it pending cancels the
    /// handshake (both streams end). `server_name` is the name a client
    /// checks the certificate against and sends as SNI (None: no check,
    /// only with `no_verify`; ignored by a server). Consumes this stream
    /// as [`Stream::push_rate_limit`] does, with the same errors.
    pub fn push_tls(
        self,
        lp: &LoopHandle,
        ctx: &TlsContext,
        server_name: Option<&str>,
    ) -> Result<(Stream, Future<()>)> {
        if self.has_unread() {
            return Err(Error::STATE);
        }
        let name = server_name.map(cstring).transpose()?;
        let io = AsyncIo::unattached(lp.as_raw());
        let table = AsyncIo::table();
        let userdata = Rc::into_raw(io.clone()) as *mut c_void;
        let (mut upper, mut handshake) = (std::ptr::null_mut(), std::ptr::null_mut());
        let rc = unsafe {
            sys::async_tls_push(
                &mut upper,
                &mut handshake,
                self.as_raw(),
                ctx.raw,
                name.as_ref().map_or(std::ptr::null(), |n| n.as_ptr()),
                &table,
                userdata,
            )
        };
        if rc < 0 {
            drop(unsafe { Rc::from_raw(userdata as *const AsyncIo) });
            return Err(Error::from_code(rc));
        }
        let future =
            unsafe { Future::from_raw(lp.inner().clone(), handshake, |raw| Future::<()>::status(raw).map(|_| ())) };
        let mut stream = unsafe { Stream::with_io(upper, io) }?;
        stream.below = self.into_retained();
        Ok((stream, future))
    }

    /// The certificate verification result (async_tls_verify_error): the
    /// X509_V_ERR_* code (0: ok) and OpenSSL's reason; also answers after
    /// a handshake failed with [`Error::CERT`] and the stream ended.
    pub fn verify_error(&self) -> Result<(i32, &'static str)> {
        match self.io_verify() {
            Some(kept) => Ok(kept),
            None => query_verify(self.as_raw()),
        }
    }

    /// Turns this stream to a SOCKS5 proxy into a tunnel to host:port
    /// (async_layer_push_socks5; a numeric host is sent as an address,
    /// any other name for the proxy to resolve), with RFC 1929
    /// credentials (user, password) when given. The future gives the
    /// tunnel's async stream once the proxy said yes, or fails with the
    /// proxy's answer as a code ([`Error::CONNREFUSED`], [`Error::ACCES`],
    /// [`Error::PROTO`], ...); dropping it pending cancels. Consumes this
    /// stream as [`Stream::push_rate_limit`] does.
    pub fn push_socks5(
        self,
        lp: &LoopHandle,
        host: &str,
        port: u16,
        credentials: Option<(&str, &str)>,
    ) -> Result<Future<Stream>> {
        let host = cstring(host)?;
        self.socks5(lp, credentials, |out, lower, user, password, table, userdata| unsafe {
            sys::async_layer_push_socks5(out, lower, host.as_ptr(), port, user, password, table, userdata)
        })
    }

    /// [`Stream::push_socks5`] toward an address (async_layer_push_socks5_addr).
    pub fn push_socks5_addr(
        self,
        lp: &LoopHandle,
        addr: SocketAddr,
        credentials: Option<(&str, &str)>,
    ) -> Result<Future<Stream>> {
        let raw = Sockaddr::from_std(&addr)?;
        self.socks5(lp, credentials, |out, lower, user, password, table, userdata| unsafe {
            sys::async_layer_push_socks5_addr(out, lower, raw.as_ptr(), raw.len, user, password, table, userdata)
        })
    }

    #[allow(clippy::type_complexity)]
    fn socks5(
        self,
        lp: &LoopHandle,
        credentials: Option<(&str, &str)>,
        push: impl FnOnce(
            *mut *mut sys::async_future,
            *mut sys::async_stream,
            *const std::os::raw::c_char,
            *const std::os::raw::c_char,
            *const sys::async_stream_protocol,
            *mut c_void,
        ) -> i32,
    ) -> Result<Future<Stream>> {
        if self.has_unread() {
            return Err(Error::STATE);
        }
        let user = credentials.map(|(user, _)| cstring(user)).transpose()?;
        let password = credentials.map(|(_, password)| cstring(password)).transpose()?;
        let ptr = |text: &Option<CString>| text.as_ref().map_or(std::ptr::null(), |t| t.as_ptr());
        let io = AsyncIo::unattached(lp.as_raw());
        let table = AsyncIo::table();
        let userdata = Rc::into_raw(io.clone()) as *mut c_void;
        let mut raw = std::ptr::null_mut();
        let rc = push(&mut raw, self.as_raw(), ptr(&user), ptr(&password), &table, userdata);
        if rc < 0 {
            drop(unsafe { Rc::from_raw(userdata as *const AsyncIo) });
            return Err(Error::from_code(rc));
        }
        let mut chain = Chain(self.into_retained());
        Ok(unsafe {
            Future::from_raw(lp.inner().clone(), raw, move |raw| {
                let tunnel = Future::<Stream>::status(raw)? as *mut sys::async_stream;
                let mut stream = Stream::with_io(tunnel, io.clone())?;
                stream.below = std::mem::take(&mut chain.0);
                Ok(stream)
            })
        })
    }
}

impl StreamRef<'_> {
    /// The ALPN protocol the handshake agreed on (async_tls_alpn); None
    /// when none was, or before the handshake is done.
    pub fn alpn(&self) -> Result<Option<String>> {
        let mut name = [0u8; 256];
        let len = check(unsafe { sys::async_tls_alpn(name.as_mut_ptr() as *mut _, name.len(), self.as_raw()) })?;
        Ok((len > 0).then(|| String::from_utf8_lossy(&name[..len as usize]).into_owned()))
    }

    /// The version agreed on (async_tls_version): 0x0303 (TLS 1.2) or
    /// 0x0304 (TLS 1.3); 0 before the handshake is done.
    pub fn tls_version(&self) -> Result<u16> {
        check(unsafe { sys::async_tls_version(self.as_raw()) }).map(|v| v as u16)
    }

    /// Whether the handshake resumed a session (async_tls_resumed).
    pub fn resumed(&self) -> Result<bool> {
        check(unsafe { sys::async_tls_resumed(self.as_raw()) }).map(|rc| rc == 1)
    }
}
