// The one allocator all library memory goes through (DESIGN §2.10).
#pragma once

#include <async/alloc.h>

#include <cstddef>
#include <new>
#include <utility>

namespace async::util {

// Raw allocation through the user's hook; nullptr on failure.
void *mem_alloc(std::size_t size) noexcept;
void *mem_realloc(void *ptr, std::size_t size) noexcept;
void mem_free(void *ptr) noexcept;

// Installs the hook; ASYNC_EBUSY while library memory is live.
int set_allocator(async_realloc_fn fn, void *userdata) noexcept;

// Constructs a T in hook memory; nullptr when out of memory.
template <class T, class... Args>
T *make(Args &&...args) noexcept {
  void *p = mem_alloc(sizeof(T));
  return p ? new (p) T(std::forward<Args>(args)...) : nullptr;
}

template <class T>
void destroy(T *obj) noexcept {
  if (obj) {
    obj->~T();
    mem_free(obj);
  }
}

}  // namespace async::util
