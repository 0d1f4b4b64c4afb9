// System errors (errno values) as ASYNC_E* codes.
#pragma once

namespace async::util {

// The ASYNC_E* code for errno value err; ASYNC_EIO for anything unlisted.
int from_errno(int err) noexcept;

// 0 if a file descriptor can be opened now, else its ASYNC_E* code
// (ASYNC_EMFILE when none is free). For libraries that cannot report
// failing to open one; another thread may take it right after.
int fd_available() noexcept;

}  // namespace async::util
