// A send queue's high- and low-water marks (DESIGN §7 flow control):
// pause_writing above high, resume_writing at or below low.
#pragma once

#include <cstddef>

namespace async::util {

struct WaterMarks {
  std::size_t high = std::size_t{64} * 1024;
  std::size_t low = std::size_t{16} * 1024;

  // Sets both; false (nothing changed) unless low <= high.
  bool set(std::size_t new_high, std::size_t new_low) noexcept {
    if (new_low > new_high) return false;
    high = new_high;
    low = new_low;
    return true;
  }
};

}  // namespace async::util
