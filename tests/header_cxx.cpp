// Header test: <async.h> alone must compile as C++17 with
// -Wall -Wextra -pedantic -Werror, with C linkage for every declaration.
#include <async.h>

#include <cstring>

int main() {
  // Linking proves the extern "C" block: a C++-mangled declaration would not resolve.
  return std::strcmp(async_version_string(), ASYNC_VERSION_STRING) == 0 ? 0 : 1;
}
