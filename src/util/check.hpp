// Invariant checks that stay on in release builds: where a broken internal
// invariant would go on to corrupt memory (a ring popped empty, a reserved
// slot that was never reserved, a scan past the end of an array), stopping
// at once with the place is better than running on.
#pragma once

namespace async::util {

// Prints "libasync: internal invariant broken at file:line" and aborts.
// Out of line and cold: a check costs a compare and a branch.
[[noreturn, gnu::cold, gnu::noinline]] void invariant_broken(const char *file, int line) noexcept;

// The defaults are evaluated where check() is called, so they name the
// caller's place. __builtin_FILE/LINE rather than std::source_location:
// Clang 14 (the fuzzing build) has no std::source_location.
inline void check(bool holds, const char *file = __builtin_FILE(), int line = __builtin_LINE()) noexcept {
  if (!holds) [[unlikely]]
    invariant_broken(file, line);
}

}  // namespace async::util
