/**
 * @file
 * @brief Conventions shared by the whole libasync API.
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
 *   thread, only from inside async_loop_run(). The only calls on a loop
 *   allowed from any thread are async_loop_post(), async_loop_wakeup(),
 *   async_loop_hold() and async_loop_unhold() (and the
 *   async_<type>_handle() casts); with the loop's owner-thread check on
 *   (async_loop_set_thread_check()), any other call from another thread
 *   returns ASYNC_EWRONGTHREAD.
 * - Callbacks must not unwind (C++ exceptions, Rust panics, longjmp out).
 * - Callbacks inside calls: each function's comment ends with the user
 *   callbacks it may run before it returns ("Callbacks: None run inside
 *   this call." or which ones); every other callback (done, close, release,
 *   destroy, zero-copy done, protocol events) runs from the loop. The
 *   allocator (async/alloc.h) is not counted: any call that allocates or
 *   frees may call it. docs/callbacks.md has the whole table.
 */
#ifndef ASYNC_COMMON_H
#define ASYNC_COMMON_H

#include <stddef.h>
#include <stdint.h>

#if defined(ASYNC_BUILDING_LIBRARY)
#define ASYNC_API __attribute__((visibility("default")))
#else
/**
 * @brief Marks an exported function. Expands to nothing for consumers, so
 * cffi/LuaJIT cdef parsers accept it.
 */
#define ASYNC_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/** @brief An event loop (async/loop.h). */
typedef struct async_loop async_loop;
/** @brief Any handle: timer, watcher, hook, signal, server (async/handle.h). */
typedef struct async_handle async_handle;
/** @brief A timer (async/timer.h). */
typedef struct async_timer async_timer;
/** @brief An fd readiness watcher (async/watcher.h). */
typedef struct async_watcher async_watcher;
/** @brief A prepare, check or idle hook (async/hook.h). */
typedef struct async_hook async_hook;
/** @brief A signal handler (async/signal.h). */
typedef struct async_signal async_signal;
/** @brief A one-shot completion (async/future.h). */
typedef struct async_future async_future;

/**
 * @brief A plain deferred callback (async_loop_call_soon(),
 * async_loop_post()), run from the loop.
 *
 * @param loop     the loop it runs on.
 * @param userdata the userdata given with it; this call is its final
 *                 notification.
 */
typedef void (*async_callback)(async_loop *loop, void *userdata);

/**
 * @brief Releases a userdata the library no longer needs.
 *
 * @param userdata the userdata; this call is its final notification.
 */
typedef void (*async_release_fn)(void *userdata);

/**
 * @brief The runtime version: (major << 16) | (minor << 8) | patch.
 *
 * @return the version of the library loaded (not of the headers).
 * @ownership Nothing changes hands.
 * @thread Any thread.
 * @callbacks None run inside this call.
 */
ASYNC_API uint32_t async_version(void);

/**
 * @brief The runtime version as "MAJOR.MINOR.PATCH".
 *
 * @return the version string, never NULL.
 * @ownership Static storage: never free it.
 * @thread Any thread.
 * @callbacks None run inside this call.
 */
ASYNC_API const char *async_version_string(void);

#ifdef __cplusplus
}
#endif

#endif
