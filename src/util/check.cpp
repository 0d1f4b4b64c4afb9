#include "util/check.hpp"

#include <cstdio>
#include <cstdlib>

namespace async::util {

void invariant_broken(const std::source_location &where) noexcept {
  std::fprintf(stderr, "libasync: internal invariant broken at %s:%u (%s)\n", where.file_name(),
               static_cast<unsigned>(where.line()), where.function_name());
  std::abort();
}

}  // namespace async::util
