// Freed blocks of one size (a loop's streams), kept for the next objects
// of that size instead of going back to the allocator: no allocator call
// per object once warm. Unlike util::Pool's, every block is a whole
// allocation of the library allocator, so an object made in a kept block
// may outlive the cache (a stream retained past its loop) and still be
// freed on its own with mem_free. At most kMaxBlocks are kept (a burst's
// worth); the rest go back at once, and all with the cache.
//
// Under AddressSanitizer nothing is kept (as util::Pool), so use after
// free stays visible.
#pragma once

#include <cstddef>

#include "util/free_list.hpp"
#include "util/pool.hpp"

namespace async::util {

class BlockCache {
 public:
  static constexpr std::size_t kMaxBlocks = 64;

  BlockCache() = default;
  BlockCache(const BlockCache &) = delete;
  BlockCache &operator=(const BlockCache &) = delete;
  ~BlockCache();

  // A kept block, or nullptr when none is (allocate one then).
  void *take() noexcept {
    void *block = free_.pop();
    if (block) --count_;
    return block;
  }

  // A block from mem_alloc of the cache's one size, its object destroyed:
  // kept, or freed when the cache is full.
  void keep(void *block) noexcept {
#ifndef ASYNC_POOL_PASSTHROUGH
    if (count_ < kMaxBlocks) {
      free_.push(block);
      ++count_;
      return;
    }
#endif
    mem_free(block);
  }

 private:
  FreeList free_;
  std::size_t count_ = 0;
};

}  // namespace async::util
