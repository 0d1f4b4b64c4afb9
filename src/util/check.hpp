// Invariant checks that stay on in release builds: where a broken internal
// invariant would go on to corrupt memory (a ring popped empty, a reserved
// slot that was never reserved, a scan past the end of an array), stopping
// at once with the place is better than running on.
#pragma once

#include <source_location>

namespace async::util {

// Prints "libasync: internal invariant broken at file:line (function)" and
// aborts. Out of line and cold: a check costs a compare and a branch.
[[noreturn, gnu::cold, gnu::noinline]] void invariant_broken(const std::source_location &where) noexcept;

inline void check(bool holds, const std::source_location &where = std::source_location::current()) noexcept {
  if (!holds) [[unlikely]]
    invariant_broken(where);
}

}  // namespace async::util
