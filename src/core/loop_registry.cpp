#include "core/loop_registry.hpp"

#include <async/error.h>

#include <cstddef>
#include <shared_mutex>

#include "core/loop.hpp"
#include "util/alloc.hpp"

namespace async::core::loop_registry {
namespace {

// Posters take the lock shared and only compare addresses, so a freed
// loop is never dereferenced; loops are few, a flat array is enough.
std::shared_mutex g_lock;
Loop **g_loops = nullptr;
std::size_t g_count = 0;
std::size_t g_capacity = 0;

Loop *find(const void *loop) noexcept {
  for (std::size_t i = 0; i < g_count; ++i)
    if (g_loops[i] == loop) return g_loops[i];
  return nullptr;
}

}  // namespace

int add(Loop *loop) noexcept {
  std::unique_lock lock(g_lock);
  if (g_count == g_capacity) {
    std::size_t capacity = g_capacity ? g_capacity * 2 : 8;
    // An array of pointers: sizeof(T *) is meant.
    // NOLINTNEXTLINE(bugprone-sizeof-expression)
    auto *loops = static_cast<Loop **>(util::mem_realloc(g_loops, capacity * sizeof(Loop *)));
    if (!loops) return ASYNC_ENOMEM;
    g_loops = loops;
    g_capacity = capacity;
  }
  g_loops[g_count++] = loop;
  return 0;
}

int remove(Loop *loop) noexcept {
  std::unique_lock lock(g_lock);
  if (loop->has_pending_posts() || loop->held()) return ASYNC_EBUSY;
  for (std::size_t i = 0; i < g_count; ++i) {
    if (g_loops[i] != loop) continue;
    g_loops[i] = g_loops[--g_count];
    break;
  }
  if (g_count == 0) {
    // Give the memory back so the allocator can be replaced again.
    util::mem_free(g_loops);
    g_loops = nullptr;
    g_capacity = 0;
  }
  return 0;
}

int post(const void *loop, async_callback cb, void *userdata) noexcept {
  std::shared_lock lock(g_lock);
  Loop *live = find(loop);
  return live ? live->post(cb, userdata) : ASYNC_ECLOSED;
}

int wakeup(const void *loop) noexcept {
  std::shared_lock lock(g_lock);
  Loop *live = find(loop);
  if (!live) return ASYNC_ECLOSED;
  live->wake();
  return 0;
}

int hold(const void *loop) noexcept {
  std::shared_lock lock(g_lock);
  Loop *live = find(loop);
  if (!live) return ASYNC_ECLOSED;
  live->hold();
  return 0;
}

int unhold(const void *loop) noexcept {
  std::shared_lock lock(g_lock);
  Loop *live = find(loop);
  return live ? live->unhold() : ASYNC_ECLOSED;
}

}  // namespace async::core::loop_registry
