// The tag word every object the C API hands out starts with (docs/design.md,
// "Objects and tags"): its kind's tag while alive, kDeadTag from its
// destruction on, so a stale pointer passed back is refused while its
// memory is not reused yet.
#pragma once

#include <cstddef>
#include <cstdint>

namespace async::util {

class TagWord {
 public:
  static constexpr std::uint32_t kDeadTag = 0xdeadbeef;

  explicit TagWord(std::uint32_t tag) noexcept : tag_(tag) {}

  // The tag of the object at p, read where the C boundary reads it.
  static std::uint32_t tag_at(const void *p) noexcept { return *static_cast<const std::uint32_t *>(p); }

  // In the owner's destructor, before anything there may call back into
  // the API, and before freeing an object that has none (a result whose
  // memory ends with its variable-size part). Not this class's destructor:
  // that would run after the owner's body, and would make those results
  // no longer trivially copyable.
  void mark_dead() noexcept { tag_ = kDeadTag; }

  // T's tag word sits at offset 0, where tag_at() reads it. T is not
  // standard-layout once it adds members, where offsetof is only
  // conditionally supported: GCC and Clang support it for classes
  // without virtual bases.
  template <class T>
  static constexpr bool first_in() noexcept {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winvalid-offsetof"
    return offsetof(T, tag_) == 0;
#pragma GCC diagnostic pop
  }

 protected:
  std::uint32_t tag_;
};

// Base of an object of one kind: Tagged<kTag> gives it T::kTag.
template <std::uint32_t Tag>
class Tagged : public TagWord {
 public:
  static constexpr std::uint32_t kTag = Tag;

  Tagged() noexcept : TagWord(Tag) {}
};

}  // namespace async::util
