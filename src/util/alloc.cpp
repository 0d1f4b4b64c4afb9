#include "util/alloc.hpp"

#include <async/error.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace async::util {
namespace {

void *libc_realloc(void *ptr, std::size_t size, void *) {
  if (size == 0) {
    std::free(ptr);
    return nullptr;
  }
  // malloc directly: glibc's realloc(NULL) checks more before it gets there.
  return ptr ? std::realloc(ptr, size) : std::malloc(size);
}

async_realloc_fn g_fn = libc_realloc;
void *g_userdata = nullptr;
// Live allocations made through the hook; set_allocator refuses while > 0
// so memory is never freed by a different allocator than made it.
std::atomic<long> g_live{0};

}  // namespace

void *mem_alloc(std::size_t size) noexcept {
  void *p = g_fn(nullptr, size ? size : 1, g_userdata);
  if (p) g_live.fetch_add(1, std::memory_order_relaxed);
  return p;
}

void *mem_realloc(void *ptr, std::size_t size) noexcept {
  if (!ptr) return mem_alloc(size);
  return g_fn(ptr, size ? size : 1, g_userdata);
}

void mem_free(void *ptr) noexcept {
  if (!ptr) return;
  g_fn(ptr, 0, g_userdata);
  g_live.fetch_sub(1, std::memory_order_relaxed);
}

int set_allocator(async_realloc_fn fn, void *userdata) noexcept {
  if (g_live.load() != 0) return ASYNC_EBUSY;
  g_fn = fn ? fn : libc_realloc;
  g_userdata = fn ? userdata : nullptr;
  return 0;
}

}  // namespace async::util
