// System errors (errno values) as ASYNC_E* codes.
#pragma once

namespace async::util {

// The ASYNC_E* code for errno value err; ASYNC_EIO for anything unlisted.
int from_errno(int err) noexcept;

}  // namespace async::util
