package async

// #include <async.h>
// #include <limits.h>
import "C"

import "strconv"

// Error is a libasync error code (ASYNC_E*). Every code has one exported
// value below, so errors.Is(err, async.ErrClosed) works on any error this
// package returns (also wrapped).
type Error struct {
	Code int    // the ASYNC_E* value (negative)
	Name string // "ASYNC_ECLOSED"
	msg  string
}

func (e *Error) Error() string { return e.msg }

// The codes of include/async/error.h, one value each.
var (
	ErrInvalid      = newError(C.ASYNC_EINVAL)
	ErrNoMemory     = newError(C.ASYNC_ENOMEM)
	ErrBusy         = newError(C.ASYNC_EBUSY)
	ErrClosed       = newError(C.ASYNC_ECLOSED)
	ErrCanceled     = newError(C.ASYNC_ECANCELED)
	ErrTimedOut     = newError(C.ASYNC_ETIMEDOUT)
	ErrState        = newError(C.ASYNC_ESTATE)
	ErrBadFD        = newError(C.ASYNC_EBADF)
	ErrTooManyFiles = newError(C.ASYNC_EMFILE)
	ErrIO           = newError(C.ASYNC_EIO)
	ErrRange        = newError(C.ASYNC_ERANGE)
	ErrInternal     = newError(C.ASYNC_EINTERNAL)
	ErrNotFound     = newError(C.ASYNC_ENOTFOUND)
	ErrNoData       = newError(C.ASYNC_ENODATA)
	ErrRefused      = newError(C.ASYNC_EREFUSED)
	ErrServFail     = newError(C.ASYNC_ESERVFAIL)
	ErrBadName      = newError(C.ASYNC_EBADNAME)
	ErrConnRefused  = newError(C.ASYNC_ECONNREFUSED)
	ErrConnReset    = newError(C.ASYNC_ECONNRESET)
	ErrPipe         = newError(C.ASYNC_EPIPE)
	ErrNoBuffers    = newError(C.ASYNC_ENOBUFS)
	ErrHostUnreach  = newError(C.ASYNC_EHOSTUNREACH)
	ErrNetUnreach   = newError(C.ASYNC_ENETUNREACH)
	ErrAddrInUse    = newError(C.ASYNC_EADDRINUSE)
	ErrAddrNotAvail = newError(C.ASYNC_EADDRNOTAVAIL)
	ErrEOF          = newError(C.ASYNC_EEOF)
	ErrMsgSize      = newError(C.ASYNC_EMSGSIZE)
	ErrAccess       = newError(C.ASYNC_EACCES)
	ErrWrongThread  = newError(C.ASYNC_EWRONGTHREAD)
	ErrNotSupported = newError(C.ASYNC_ENOTSUP)
	ErrNoEntry      = newError(C.ASYNC_ENOENT)
	ErrNoExec       = newError(C.ASYNC_ENOEXEC)
	ErrProtocol     = newError(C.ASYNC_EPROTO)
	ErrTLS          = newError(C.ASYNC_ETLS)
	ErrCert         = newError(C.ASYNC_ECERT)
	ErrTruncated    = newError(C.ASYNC_ETRUNCATED)
	errorsByCode    = map[int]*Error{}
	allErrors       = []*Error{ErrInvalid, ErrNoMemory, ErrBusy, ErrClosed, ErrCanceled, ErrTimedOut, ErrState, ErrBadFD, ErrTooManyFiles, ErrIO, ErrRange, ErrInternal, ErrNotFound, ErrNoData, ErrRefused, ErrServFail, ErrBadName, ErrConnRefused, ErrConnReset, ErrPipe, ErrNoBuffers, ErrHostUnreach, ErrNetUnreach, ErrAddrInUse, ErrAddrNotAvail, ErrEOF, ErrMsgSize, ErrAccess, ErrWrongThread, ErrNotSupported, ErrNoEntry, ErrNoExec, ErrProtocol, ErrTLS, ErrCert, ErrTruncated}
)

func init() {
	for _, e := range allErrors {
		errorsByCode[e.Code] = e
	}
}

func newError(code C.int) *Error {
	return &Error{Code: int(code), Name: C.GoString(C.async_err_name(code)), msg: C.GoString(C.async_strerror(code))}
}

// codeError is the error of a negative result (nil for 0 or more).
func codeError(rc C.int) error {
	if rc >= 0 {
		return nil
	}
	if e, ok := errorsByCode[int(rc)]; ok {
		return e
	}
	return &Error{Code: int(rc), Name: "ASYNC_E" + strconv.Itoa(int(rc)), msg: C.GoString(C.async_strerror(rc))}
}

// Timeout reports whether the error is a time-out (net.Error).
func (e *Error) Timeout() bool { return e.Code == int(C.ASYNC_ETIMEDOUT) }

// Temporary is net.Error's (deprecated) method: no libasync error is.
func (e *Error) Temporary() bool { return false }

// knownCode reports whether the library has a message for code (tests:
// every such code must have its exported value).
func knownCode(code int) bool {
	return C.async_strerror(C.int(code)) != C.async_strerror(C.INT_MIN)
}

// errorOf is codeError for a Go int (tests, and codes read from Go values).
func errorOf(code int) error { return codeError(C.int(code)) }
