/*
 * Conventions shared by the whole libasync API.
 *
 * - Every object is opaque and reached through a pointer the library
 *   allocated; nothing is passed or returned by value.
 * - Functions return int: 0 (or a non-negative count/flag) on success, a
 *   negative ASYNC_E* code on failure (see async/error.h). A function that
 *   fails never calls the callback it was given.
 * - Outputs come first, then inputs, then the callback and its userdata.
 * - Userdata contract: every userdata handed to the library gets exactly one
 *   final notification (a close callback, a future callback or a release
 *   callback), even on cancellation and loop teardown.
 * - Threads: the library creates none. A loop and everything attached to it
 *   belong to the thread that runs the loop; callbacks run only on that
 *   thread, only from inside async_loop_run(). The only calls allowed from
 *   any thread are async_loop_post() and async_loop_wakeup().
 * - Callbacks must not unwind (C++ exceptions, Rust panics, longjmp out).
 * - Callbacks inside calls: each function's comment ends with the user
 *   callbacks it may run before it returns ("Callbacks: none run inside
 *   this call." or which ones); every other callback (done, close, release,
 *   destroy, zero-copy done, protocol events) runs from the loop. The
 *   allocator (async/alloc.h) is not counted: any call that allocates or
 *   frees may call it. docs/callbacks.md has the whole table.
 */
#ifndef ASYNC_COMMON_H
#define ASYNC_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* Expands to nothing for consumers, so cffi/LuaJIT cdef parsers accept it. */
#if defined(ASYNC_BUILDING_LIBRARY)
#define ASYNC_API __attribute__((visibility("default")))
#else
#define ASYNC_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Opaque object types. */
typedef struct async_loop async_loop;
typedef struct async_handle async_handle;
typedef struct async_timer async_timer;
typedef struct async_watcher async_watcher;
typedef struct async_hook async_hook;
typedef struct async_signal async_signal;
typedef struct async_future async_future;

/* A plain deferred callback (call_soon, post). */
typedef void (*async_callback)(async_loop *loop, void *userdata);

/* Releases a userdata the library no longer needs (its final notification). */
typedef void (*async_release_fn)(void *userdata);

/*
 * Runtime version: (major << 16) | (minor << 8) | patch.
 * Callbacks: none run inside this call.
 */
ASYNC_API uint32_t async_version(void);

/*
 * Runtime version as "MAJOR.MINOR.PATCH"; static storage, never NULL.
 * Callbacks: none run inside this call.
 */
ASYNC_API const char *async_version_string(void);

#ifdef __cplusplus
}
#endif

#endif
