//! The error type: an `ASYNC_E*` code, named and described by the library.

use crate::sys;
use std::ffi::CStr;
use std::fmt;

/// A libasync error code (`ASYNC_EINVAL`, `ASYNC_ECLOSED`, ...): one
/// constant per code of `enum async_error` (`Error::INVAL` is
/// `ASYNC_EINVAL`); a code outside the enum is kept as is (`from_code`),
/// so matching on the constants needs a `_` arm, as the C enum grows.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Error {
    code: i32,
}

/// The result of every fallible call of this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub const INVAL: Error = Error::from_code(sys::async_error::ASYNC_EINVAL.0);
    pub const NOMEM: Error = Error::from_code(sys::async_error::ASYNC_ENOMEM.0);
    pub const BUSY: Error = Error::from_code(sys::async_error::ASYNC_EBUSY.0);
    pub const CLOSED: Error = Error::from_code(sys::async_error::ASYNC_ECLOSED.0);
    pub const CANCELED: Error = Error::from_code(sys::async_error::ASYNC_ECANCELED.0);
    pub const TIMEDOUT: Error = Error::from_code(sys::async_error::ASYNC_ETIMEDOUT.0);
    pub const STATE: Error = Error::from_code(sys::async_error::ASYNC_ESTATE.0);
    pub const BADF: Error = Error::from_code(sys::async_error::ASYNC_EBADF.0);
    pub const MFILE: Error = Error::from_code(sys::async_error::ASYNC_EMFILE.0);
    pub const IO: Error = Error::from_code(sys::async_error::ASYNC_EIO.0);
    pub const RANGE: Error = Error::from_code(sys::async_error::ASYNC_ERANGE.0);
    pub const INTERNAL: Error = Error::from_code(sys::async_error::ASYNC_EINTERNAL.0);
    pub const NOTFOUND: Error = Error::from_code(sys::async_error::ASYNC_ENOTFOUND.0);
    pub const NODATA: Error = Error::from_code(sys::async_error::ASYNC_ENODATA.0);
    pub const REFUSED: Error = Error::from_code(sys::async_error::ASYNC_EREFUSED.0);
    pub const SERVFAIL: Error = Error::from_code(sys::async_error::ASYNC_ESERVFAIL.0);
    pub const BADNAME: Error = Error::from_code(sys::async_error::ASYNC_EBADNAME.0);
    pub const CONNREFUSED: Error = Error::from_code(sys::async_error::ASYNC_ECONNREFUSED.0);
    pub const CONNRESET: Error = Error::from_code(sys::async_error::ASYNC_ECONNRESET.0);
    pub const PIPE: Error = Error::from_code(sys::async_error::ASYNC_EPIPE.0);
    pub const NOBUFS: Error = Error::from_code(sys::async_error::ASYNC_ENOBUFS.0);
    pub const HOSTUNREACH: Error = Error::from_code(sys::async_error::ASYNC_EHOSTUNREACH.0);
    pub const NETUNREACH: Error = Error::from_code(sys::async_error::ASYNC_ENETUNREACH.0);
    pub const ADDRINUSE: Error = Error::from_code(sys::async_error::ASYNC_EADDRINUSE.0);
    pub const ADDRNOTAVAIL: Error = Error::from_code(sys::async_error::ASYNC_EADDRNOTAVAIL.0);
    pub const EOF: Error = Error::from_code(sys::async_error::ASYNC_EEOF.0);
    pub const MSGSIZE: Error = Error::from_code(sys::async_error::ASYNC_EMSGSIZE.0);
    pub const ACCES: Error = Error::from_code(sys::async_error::ASYNC_EACCES.0);
    pub const WRONGTHREAD: Error = Error::from_code(sys::async_error::ASYNC_EWRONGTHREAD.0);
    pub const NOTSUP: Error = Error::from_code(sys::async_error::ASYNC_ENOTSUP.0);
    pub const NOENT: Error = Error::from_code(sys::async_error::ASYNC_ENOENT.0);
    pub const NOEXEC: Error = Error::from_code(sys::async_error::ASYNC_ENOEXEC.0);
    pub const PROTO: Error = Error::from_code(sys::async_error::ASYNC_EPROTO.0);
    pub const TLS: Error = Error::from_code(sys::async_error::ASYNC_ETLS.0);
    pub const CERT: Error = Error::from_code(sys::async_error::ASYNC_ECERT.0);
    pub const TRUNCATED: Error = Error::from_code(sys::async_error::ASYNC_ETRUNCATED.0);

    /// The error of a code; any value is accepted (unknown codes are named by the library as such).
    pub const fn from_code(code: i32) -> Error {
        Error { code }
    }

    /// The `ASYNC_E*` value.
    pub fn code(&self) -> i32 {
        self.code
    }

    /// The symbolic name, `"ASYNC_EINVAL"` (async_err_name).
    pub fn name(&self) -> &'static str {
        // SAFETY: async_err_name returns a static string for any code.
        unsafe { static_str(sys::async_err_name(self.code)) }
    }

    /// The description (async_strerror).
    pub fn message(&self) -> &'static str {
        // SAFETY: as above.
        unsafe { static_str(sys::async_strerror(self.code)) }
    }
}

unsafe fn static_str(text: *const std::os::raw::c_char) -> &'static str {
    if text.is_null() {
        return "";
    }
    CStr::from_ptr(text).to_str().unwrap_or("")
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name(), self.code)
    }
}

impl std::error::Error for Error {}

/// A status (0 or a count) as a Result.
pub(crate) fn check(rc: i32) -> Result<i32> {
    if rc < 0 {
        Err(Error::from_code(rc))
    } else {
        Ok(rc)
    }
}
