// Sole ownership of one object made with util::make (the library
// allocator): destroyed with its owner, as std::unique_ptr would with
// new/delete.
#pragma once

#include "util/alloc.hpp"

namespace async::util {

template <class T>
class Owned {
 public:
  Owned() = default;
  Owned(const Owned &) = delete;
  Owned &operator=(const Owned &) = delete;
  ~Owned() { destroy(ptr_); }

  T *get() const noexcept { return ptr_; }
  // Takes ptr (from util::make), destroying the object held before.
  void reset(T *ptr) noexcept {
    destroy(ptr_);
    ptr_ = ptr;
  }

 private:
  T *ptr_ = nullptr;
};

}  // namespace async::util
