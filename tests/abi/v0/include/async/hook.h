/*
 * async_hook: callbacks around the loop's poll, for embedding and
 * integration (libuv's prepare/check/idle).
 *
 * - PREPARE runs once per iteration just before the loop polls.
 * - CHECK runs once per iteration just after the poll.
 * - IDLE runs once per iteration while active, and keeps the poll from
 *   blocking (the loop spins while an idle hook is active).
 * A hook started from inside its own phase first runs on the next iteration.
 */
#ifndef ASYNC_HOOK_H
#define ASYNC_HOOK_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

enum async_hook_kind {
  ASYNC_HOOK_PREPARE = 0,
  ASYNC_HOOK_CHECK = 1,
  ASYNC_HOOK_IDLE = 2,
  ASYNC_HOOK_KIND_FORCE32 = 0x7FFFFFFF
};

typedef void (*async_hook_fn)(async_hook *hook, void *userdata);

/*
 * Creates a stopped hook of the given kind (enum async_hook_kind).
 * Loop thread only. Errors: ASYNC_EINVAL, ASYNC_ENOMEM.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_hook_new(async_hook **out, async_loop *loop, int kind, void *userdata);

/*
 * The hook as a handle (same object), or NULL if not a hook.
 * Callbacks: none run inside this call.
 */
ASYNC_API async_handle *async_hook_handle(async_hook *hook);

/*
 * Starts the hook with cb (replacing the callback if already active).
 * Errors: ASYNC_EINVAL (cb NULL), ASYNC_ECLOSED.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_hook_start(async_hook *hook, async_hook_fn cb);

/*
 * Stops the hook; a no-op if stopped. Errors: ASYNC_EINVAL, ASYNC_ECLOSED.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_hook_stop(async_hook *hook);

/*
 * The hook's kind (enum async_hook_kind), or ASYNC_EINVAL. Loop thread
 * only. Callbacks: none run inside this call.
 */
ASYNC_API int async_hook_get_kind(async_hook *hook);

#ifdef __cplusplus
}
#endif

#endif
