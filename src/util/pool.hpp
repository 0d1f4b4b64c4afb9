// Free lists of fixed-size blocks for the records one loop makes and frees
// per operation (handles, streams, futures). A freed record's block goes on
// the list of its size class and the next record of that class takes it
// back: no allocator call either way once the loop is warm. Blocks come
// from the library allocator in slabs (4 blocks, then 8, 16, 32 and 64 at
// most), so a burst of records costs an allocation per slab, not one per
// record, and a block needs no allocator header. Memory goes back to the
// allocator when the pool is destroyed (with its loop): a pool holds at
// most its peak of live blocks plus the free rest of each class's last
// slab.
//
// Under AddressSanitizer every block is its own allocation, so use after
// free and leaks of pooled records stay visible.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <utility>

#include "util/alloc.hpp"
#include "util/free_list.hpp"

#if defined(__SANITIZE_ADDRESS__)
#define ASYNC_POOL_PASSTHROUGH 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ASYNC_POOL_PASSTHROUGH 1
#endif
#endif

namespace async::util {

class Pool {
 public:
  Pool() = default;
  Pool(const Pool &) = delete;
  Pool &operator=(const Pool &) = delete;
  ~Pool();

  // size bytes, 16-aligned; nullptr when out of memory. Sizes above the
  // largest class go to the allocator.
  void *alloc(std::size_t size) noexcept {
#ifndef ASYNC_POOL_PASSTHROUGH
    std::size_t c = class_of(size);
    if (c < kClasses)
      if (void *block = free_[c].pop()) return block;
#endif
    return alloc_slow(size);
  }

  // A block from alloc(size), with the same size.
  void free(void *p, std::size_t size) noexcept {
#ifndef ASYNC_POOL_PASSTHROUGH
    std::size_t c = class_of(size);
    if (c < kClasses) {
      free_[c].push(p);
      return;
    }
#else
    (void)size;
#endif
    mem_free(p);
  }

  // As util::make/destroy, in this pool.
  template <class T, class... Args>
  T *make(Args &&...args) noexcept {
    void *p = alloc(sizeof(T));
    return p ? new (p) T(std::forward<Args>(args)...) : nullptr;
  }
  template <class T>
  void destroy(T *obj) noexcept {
    if (obj) {
      obj->~T();
      free(obj, sizeof(T));
    }
  }

 private:
  static constexpr std::size_t kGrain = 16;
  static constexpr std::size_t kClasses = 16;   // blocks of 16 to 256 bytes
  static constexpr unsigned kMaxSlabShift = 4;  // 4 << 4 = 64 blocks

  // A slab's header; its blocks follow, 16-aligned.
  struct alignas(kGrain) Slab {
    Slab *next;
  };

  static std::size_t class_of(std::size_t size) noexcept { return size ? (size - 1) / kGrain : 0; }
  [[gnu::noinline]] void *alloc_slow(std::size_t size) noexcept;

  FreeList free_[kClasses];
  Slab *slabs_ = nullptr;
  std::uint8_t slab_shift_[kClasses] = {};  // the next slab of a class has 4 << shift blocks
};

}  // namespace async::util
