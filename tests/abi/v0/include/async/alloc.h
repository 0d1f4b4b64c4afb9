/**
 * @file
 * @brief Process-wide allocator hook.
 *
 * All memory libasync allocates (including libev's) goes through it, so
 * engines can supply their own allocator and tests can inject allocation
 * failure. Out of memory is reported as ASYNC_ENOMEM, never an abort.
 */
#ifndef ASYNC_ALLOC_H
#define ASYNC_ALLOC_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @brief A realloc-style allocator.
 *
 * realloc_fn(NULL, n, ud) allocates, realloc_fn(p, n, ud) resizes,
 * realloc_fn(p, 0, ud) frees and returns NULL. Returning NULL for n > 0
 * means out of memory: libasync reports ASYNC_ENOMEM and never aborts.
 * Returned memory must be aligned for any type (like malloc). It may be
 * called from any thread that uses libasync (async_loop_post() allocates
 * on the posting thread), so it must be thread-safe. Any call of the
 * library that allocates or frees may call it.
 *
 * @param ptr      the block to resize or free, or NULL to allocate.
 * @param size     the size wanted in bytes; 0 frees ptr.
 * @param userdata the userdata given to async_set_allocator().
 * @return the block, or NULL (out of memory, or after a free).
 */
typedef void *(*async_realloc_fn)(void *ptr, size_t size, void *userdata);

/**
 * @brief Installs the allocator; NULL restores the C library's
 * realloc/free.
 *
 * Set it before the first loop: memory is never freed by another
 * allocator than the one that made it.
 *
 * @param realloc_fn the allocator, or NULL for the C library's.
 * @param userdata   passed to every call of realloc_fn (ignored when it
 *                   is NULL).
 * @retval 0           installed.
 * @retval ASYNC_EBUSY memory allocated by libasync is still live (a loop
 *                     exists, or a result was not freed yet).
 * @ownership userdata stays the caller's and must stay valid while the
 *            allocator is installed; the library never releases it.
 * @thread Not thread-safe: call it before any other thread uses libasync.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_set_allocator(async_realloc_fn realloc_fn, void *userdata);

/**
 * @brief Frees memory that libasync allocated and handed to the caller.
 *
 * @param ptr the memory; NULL is a no-op.
 * @ownership Takes ptr back: it must not be used afterwards.
 * @thread Any thread.
 * @callbacks None run inside this call.
 */
ASYNC_API void async_free(void *ptr);

#ifdef __cplusplus
}
#endif

#endif
