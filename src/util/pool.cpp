#include "util/pool.hpp"

namespace async::util {

Pool::~Pool() {
  while (Slab *slab = slabs_) {
    slabs_ = slab->next;
    mem_free(slab);
  }
}

void *Pool::alloc_slow(std::size_t size) noexcept {
  std::size_t c = class_of(size);
#ifdef ASYNC_POOL_PASSTHROUGH
  c = kClasses;
#endif
  if (c >= kClasses) return mem_alloc(size);
  std::size_t block_size = (c + 1) * kGrain;
  std::size_t blocks = std::size_t{4} << slab_shift_[c];
  auto *slab = static_cast<Slab *>(mem_alloc(sizeof(Slab) + blocks * block_size));
  if (!slab) return nullptr;
  if (slab_shift_[c] < kMaxSlabShift) ++slab_shift_[c];
  slab->next = slabs_;
  slabs_ = slab;
  // The first block is the caller's, the others go on the free list.
  auto *first = reinterpret_cast<unsigned char *>(slab + 1);
  for (std::size_t i = blocks - 1; i > 0; --i) free_[c].push(first + i * block_size);
  return first;
}

}  // namespace async::util
