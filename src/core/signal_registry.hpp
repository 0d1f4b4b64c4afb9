// Process-wide map of which loop watches which signal (DESIGN §5): libev
// aborts when two loops watch one signal, so the second gets ASYNC_EBUSY.
// It also remembers the disposition from before the first watcher, to
// restore it when the last one stops (libev would leave SIG_DFL).
#pragma once

namespace async::core {

class Loop;

namespace signal_registry {

// Takes one use of signum for loop: 0 or ASYNC_EBUSY.
int acquire(int signum, const Loop *loop) noexcept;
// Gives it back; restores the saved disposition after the last use.
void release(int signum) noexcept;

}  // namespace signal_registry
}  // namespace async::core
