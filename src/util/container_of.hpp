// The object that holds an intrusive member (a list node), from the
// member's address.
#pragma once

#include <bit>
#include <cstddef>

namespace async::util {

// Outer's address from the address of its field member. The offset comes
// from the member pointer, which the Itanium C++ ABI (GCC, Clang) makes
// the member's byte offset: unlike offsetof it works on classes that are
// not standard-layout (those with a tag base and members of their own).
template <class Outer, class Member>
Outer *container_of(Member *member, Member Outer::*field) noexcept {
  static_assert(sizeof(field) == sizeof(std::ptrdiff_t), "a data member pointer is its offset");
  auto offset = std::bit_cast<std::ptrdiff_t>(field);
  return reinterpret_cast<Outer *>(reinterpret_cast<char *>(member) - offset);
}

}  // namespace async::util
