#include <async.h>

#include "util/alloc.hpp"

extern "C" {

ASYNC_API int async_set_allocator(async_realloc_fn realloc_fn, void *userdata) {
  return async::util::set_allocator(realloc_fn, userdata);
}

ASYNC_API void async_free(void *ptr) { async::util::mem_free(ptr); }
}
