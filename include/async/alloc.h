/*
 * Process-wide allocator hook. All memory libasync allocates (including
 * libev's) goes through it, so engines can supply their own allocator and
 * tests can inject allocation failure.
 */
#ifndef ASYNC_ALLOC_H
#define ASYNC_ALLOC_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * realloc-style allocator: realloc_fn(NULL, n, ud) allocates, realloc_fn(p,
 * n, ud) resizes, realloc_fn(p, 0, ud) frees and returns NULL. Returning
 * NULL for n > 0 means out of memory: libasync reports ASYNC_ENOMEM and never
 * aborts. Returned memory must be aligned for any type (like malloc). It may
 * be called from any thread that uses libasync (async_loop_post allocates
 * on the posting thread), so it must be thread-safe.
 */
typedef void *(*async_realloc_fn)(void *ptr, size_t size, void *userdata);

/*
 * Installs the allocator; NULL restores the C library's realloc/free.
 * userdata is passed to every call and is not owned by the library.
 * Errors: ASYNC_EBUSY while any loop exists or any memory allocated by
 * libasync is still live (set it before the first loop). Not thread-safe:
 * call it before any other thread uses libasync.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_set_allocator(async_realloc_fn realloc_fn, void *userdata);

/*
 * Frees memory that libasync allocated and handed to the caller. NULL is a
 * no-op.
 * Callbacks: none run inside this call.
 */
ASYNC_API void async_free(void *ptr);

#ifdef __cplusplus
}
#endif

#endif
