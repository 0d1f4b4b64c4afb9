// Local host names (RFC 6761 §6.3): the one rule the listener, the connector
// and the resolver share, so a name means loopback for all or for none.
#pragma once

#include <cstddef>
#include <string_view>

namespace async::util {

// "localhost" in any case, with or without the root dot, or any name under
// it ("foo.localhost"). "localhostx", "localhost.example" and ".localhost"
// (an empty label) are not.
constexpr bool is_local_name(std::string_view name) noexcept {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  constexpr std::string_view kLocal = "localhost";
  if (name.size() < kLocal.size()) return false;
  std::size_t start = name.size() - kLocal.size();
  for (std::size_t i = 0; i < kLocal.size(); ++i) {
    char c = name[start + i];
    if ((c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c) != kLocal[i]) return false;
  }
  return start == 0 || (start >= 2 && name[start - 1] == '.');
}

static_assert(is_local_name("localhost") && is_local_name("LOCALHOST.") && is_local_name("Foo.LocalHost"));
static_assert(!is_local_name("localhostx") && !is_local_name("localhost.example") && !is_local_name(".localhost"));
static_assert(!is_local_name("xlocalhost") && !is_local_name("localhost..") && !is_local_name(""));

}  // namespace async::util
