// The ASYNC_E* codes, each once: code, name and message. async_strerror()
// and async_err_name() read it; include/async/error.h keeps its enum
// literal (a binding reads the values there, and DESIGN §2 allows no
// macro a binding would need), and the static_assert below keeps the two
// in step.
#pragma once

#include <async/error.h>

#include <cstddef>
#include <iterator>

// X(code, message): code is the header's enumerator.
#define ASYNC_ERROR_TABLE(X)                                                \
  X(ASYNC_OK, "success")                                                    \
  X(ASYNC_EINVAL, "invalid argument")                                       \
  X(ASYNC_ENOMEM, "out of memory")                                          \
  X(ASYNC_EBUSY, "resource busy")                                           \
  X(ASYNC_ECLOSED, "object is closed")                                      \
  X(ASYNC_ECANCELED, "operation cancelled")                                 \
  X(ASYNC_ETIMEDOUT, "operation timed out")                                 \
  X(ASYNC_ESTATE, "invalid state for this call")                            \
  X(ASYNC_EBADF, "bad file descriptor")                                     \
  X(ASYNC_EMFILE, "too many open files")                                    \
  X(ASYNC_EIO, "system call failed")                                        \
  X(ASYNC_ERANGE, "value out of range")                                     \
  X(ASYNC_EINTERNAL, "internal error")                                      \
  X(ASYNC_ENOTFOUND, "name not found")                                      \
  X(ASYNC_ENODATA, "name has no address of the requested family")           \
  X(ASYNC_EREFUSED, "DNS server refused the query or could not be reached") \
  X(ASYNC_ESERVFAIL, "DNS server failure")                                  \
  X(ASYNC_EBADNAME, "malformed host name")                                  \
  X(ASYNC_ECONNREFUSED, "connection refused")                               \
  X(ASYNC_ECONNRESET, "connection reset by peer")                           \
  X(ASYNC_EPIPE, "broken pipe")                                             \
  X(ASYNC_ENOBUFS, "buffer limit reached")                                  \
  X(ASYNC_EHOSTUNREACH, "no route to host")                                 \
  X(ASYNC_ENETUNREACH, "network unreachable")                               \
  X(ASYNC_EADDRINUSE, "address already in use")                             \
  X(ASYNC_EADDRNOTAVAIL, "address not available")                           \
  X(ASYNC_EEOF, "end of stream before the data asked for")                  \
  X(ASYNC_EMSGSIZE, "message too long")                                     \
  X(ASYNC_EACCES, "permission denied")                                      \
  X(ASYNC_EWRONGTHREAD, "called from a thread other than the loop's")       \
  X(ASYNC_ENOTSUP, "operation not supported")                               \
  X(ASYNC_ENOENT, "no such file or directory")                              \
  X(ASYNC_ENOEXEC, "exec format error")                                     \
  X(ASYNC_EPROTO, "protocol error")                                         \
  X(ASYNC_ETLS, "TLS handshake failed")                                     \
  X(ASYNC_ECERT, "certificate verification failed")                         \
  X(ASYNC_ETRUNCATED, "connection ended without TLS close_notify")

namespace async::util {

struct ErrorInfo {
  int code;
  const char *name;
  const char *message;
};

#define ASYNC_ERROR_ENTRY(code, message) ErrorInfo{code, #code, message},
inline constexpr ErrorInfo kErrors[] = {ASYNC_ERROR_TABLE(ASYNC_ERROR_ENTRY)};
#undef ASYNC_ERROR_ENTRY

// Codes are 0, -1, -2, ... in the table's order, so the code is its
// index negated; a code renumbered or left out of the table fails here
// (a new code is added to both, with the next free value).
constexpr bool error_codes_dense() {
  for (std::size_t i = 0; i < std::size(kErrors); ++i)
    if (kErrors[i].code != -static_cast<int>(i)) return false;
  return true;
}
static_assert(error_codes_dense(), "error_table.hpp and include/async/error.h disagree");

// The entry of code, nullptr for a code that is not one.
constexpr const ErrorInfo *find_error(int code) noexcept {
  if (code > 0 || code <= -static_cast<int>(std::size(kErrors))) return nullptr;
  return &kErrors[-code];
}

// The text of code, for async_strerror() and for core's log lines; one
// lookup so both say the same.
constexpr const char *error_message(int code) noexcept {
  const ErrorInfo *e = find_error(code);
  return e ? e->message : "unknown error";
}

// The enumerator's name of code, for async_err_name().
constexpr const char *error_name(int code) noexcept {
  const ErrorInfo *e = find_error(code);
  return e ? e->name : "ASYNC_UNKNOWN";
}

}  // namespace async::util
