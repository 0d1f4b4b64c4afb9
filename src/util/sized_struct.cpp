#include "util/sized_struct.hpp"

#include <algorithm>
#include <cstring>

namespace async::util {

int copy_sized_struct(void *out, std::size_t current_size, const void *in, std::uint32_t v0_size) noexcept {
  std::memset(out, 0, current_size);
  if (!in) return 0;
  std::uint32_t size = 0;
  std::memcpy(&size, in, sizeof size);
  if (size < v0_size || size > kMaxStructSize) return ASYNC_EINVAL;
  const auto *bytes = static_cast<const unsigned char *>(in);
  if (size > current_size && std::any_of(bytes + current_size, bytes + size, [](unsigned char b) { return b != 0; }))
    return ASYNC_EINVAL;
  std::memcpy(out, in, std::min<std::size_t>(size, current_size));
  return 0;
}

}  // namespace async::util
