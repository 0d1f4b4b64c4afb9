#include "util/sys_error.hpp"

#include <async/error.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>

namespace async::util {

int from_errno(int err) noexcept {
  switch (err) {
    case 0: return 0;
    case ENOMEM: return ASYNC_ENOMEM;
    case EBADF: return ASYNC_EBADF;
    case EMFILE:
    case ENFILE: return ASYNC_EMFILE;
    case ECONNREFUSED: return ASYNC_ECONNREFUSED;
    case ECONNRESET:
    case ECONNABORTED: return ASYNC_ECONNRESET;
    case EPIPE:
    case ESHUTDOWN: return ASYNC_EPIPE;
    case ETIMEDOUT: return ASYNC_ETIMEDOUT;
    case ENOBUFS: return ASYNC_ENOBUFS;
    case EHOSTUNREACH:
    case EHOSTDOWN: return ASYNC_EHOSTUNREACH;
    case ENETUNREACH:
    case ENETDOWN: return ASYNC_ENETUNREACH;
    case EADDRINUSE: return ASYNC_EADDRINUSE;
    case EADDRNOTAVAIL: return ASYNC_EADDRNOTAVAIL;
    case EINVAL: return ASYNC_EINVAL;
    case ECANCELED: return ASYNC_ECANCELED;
    case EMSGSIZE: return ASYNC_EMSGSIZE;
    case EACCES:
    case EPERM: return ASYNC_EACCES;
    default: return ASYNC_EIO;
  }
}

int fd_available() noexcept {
  int fd = ::eventfd(0, EFD_CLOEXEC);
  if (fd < 0) return from_errno(errno);
  ::close(fd);
  return 0;
}

}  // namespace async::util
