#include "util/check.hpp"

#include <cstdio>
#include <cstdlib>

namespace async::util {

void invariant_broken(const char *file, int line) noexcept {
  std::fprintf(stderr, "libasync: internal invariant broken at %s:%d\n", file, line);
  std::abort();
}

}  // namespace async::util
