#include <async.h>

namespace {

struct ErrorInfo {
  int code;
  const char *name;
  const char *text;
};

constexpr ErrorInfo kErrors[] = {
    {ASYNC_OK, "ASYNC_OK", "success"},
    {ASYNC_EINVAL, "ASYNC_EINVAL", "invalid argument"},
    {ASYNC_ENOMEM, "ASYNC_ENOMEM", "out of memory"},
    {ASYNC_EBUSY, "ASYNC_EBUSY", "resource busy"},
    {ASYNC_ECLOSED, "ASYNC_ECLOSED", "object is closed"},
    {ASYNC_ECANCELED, "ASYNC_ECANCELED", "operation cancelled"},
    {ASYNC_ETIMEDOUT, "ASYNC_ETIMEDOUT", "operation timed out"},
    {ASYNC_ESTATE, "ASYNC_ESTATE", "invalid state for this call"},
    {ASYNC_EBADF, "ASYNC_EBADF", "bad file descriptor"},
    {ASYNC_EMFILE, "ASYNC_EMFILE", "too many open files"},
    {ASYNC_EIO, "ASYNC_EIO", "system call failed"},
    {ASYNC_ERANGE, "ASYNC_ERANGE", "value out of range"},
    {ASYNC_EINTERNAL, "ASYNC_EINTERNAL", "internal error"},
    {ASYNC_ENOTFOUND, "ASYNC_ENOTFOUND", "name not found"},
    {ASYNC_ENODATA, "ASYNC_ENODATA", "name has no address of the requested family"},
    {ASYNC_EREFUSED, "ASYNC_EREFUSED", "DNS server refused the query or could not be reached"},
    {ASYNC_ESERVFAIL, "ASYNC_ESERVFAIL", "DNS server failure"},
    {ASYNC_EBADNAME, "ASYNC_EBADNAME", "malformed host name"},
    {ASYNC_ECONNREFUSED, "ASYNC_ECONNREFUSED", "connection refused"},
    {ASYNC_ECONNRESET, "ASYNC_ECONNRESET", "connection reset by peer"},
    {ASYNC_EPIPE, "ASYNC_EPIPE", "broken pipe"},
    {ASYNC_ENOBUFS, "ASYNC_ENOBUFS", "buffer limit reached"},
    {ASYNC_EHOSTUNREACH, "ASYNC_EHOSTUNREACH", "no route to host"},
    {ASYNC_ENETUNREACH, "ASYNC_ENETUNREACH", "network unreachable"},
    {ASYNC_EADDRINUSE, "ASYNC_EADDRINUSE", "address already in use"},
    {ASYNC_EADDRNOTAVAIL, "ASYNC_EADDRNOTAVAIL", "address not available"},
    {ASYNC_EEOF, "ASYNC_EEOF", "end of stream before the data asked for"},
    {ASYNC_EMSGSIZE, "ASYNC_EMSGSIZE", "message too long"},
    {ASYNC_EACCES, "ASYNC_EACCES", "permission denied"},
};

const ErrorInfo *find(int code) {
  for (const ErrorInfo &e : kErrors)
    if (e.code == code) return &e;
  return nullptr;
}

}  // namespace

extern "C" {

ASYNC_API const char *async_strerror(int code) {
  const ErrorInfo *e = find(code);
  return e ? e->text : "unknown error";
}

ASYNC_API const char *async_err_name(int code) {
  const ErrorInfo *e = find(code);
  return e ? e->name : "ASYNC_UNKNOWN";
}
}
