// The set of live loops, so async_loop_post can refuse a freed loop
// (ASYNC_ECLOSED) instead of touching freed memory (DESIGN §3).
#pragma once

#include <async/common.h>

namespace async::core {

class Loop;

namespace loop_registry {

// 0 or ASYNC_ENOMEM.
int add(Loop *loop) noexcept;
// Removes loop unless posts are pending or it is held (then ASYNC_EBUSY);
// after success no post, wakeup or hold can reach it.
int remove(Loop *loop) noexcept;
// Posts to loop if it is live: async_loop_post's result.
int post(const void *loop, async_callback cb, void *userdata) noexcept;
// Wakes loop if it is live: 0 or ASYNC_ECLOSED.
int wakeup(const void *loop) noexcept;
// async_loop_hold/unhold on loop if it is live: 0, ASYNC_ECLOSED, or
// (unhold) ASYNC_ESTATE when not held.
int hold(const void *loop) noexcept;
int unhold(const void *loop) noexcept;

}  // namespace loop_registry
}  // namespace async::core
