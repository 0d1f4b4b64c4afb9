#pragma once

#include <cstdint>

namespace async::util {

// CLOCK_MONOTONIC in nanoseconds.
std::uint64_t monotonic_ns() noexcept;

// a + b, clamped to UINT64_MAX.
constexpr std::uint64_t saturating_add(std::uint64_t a, std::uint64_t b) noexcept {
  return a + b < a ? UINT64_MAX : a + b;
}

// ms -> ns, clamped to UINT64_MAX.
constexpr std::uint64_t ms_to_ns(std::uint64_t ms) noexcept {
  return ms > UINT64_MAX / 1000000u ? UINT64_MAX : ms * 1000000u;
}

// ns -> ms, rounded up (so a reported timeout never undershoots).
constexpr std::uint64_t ns_to_ms_ceil(std::uint64_t ns) noexcept { return ns / 1000000u + (ns % 1000000u != 0); }

}  // namespace async::util
