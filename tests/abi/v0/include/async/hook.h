/**
 * @file
 * @brief async_hook: callbacks around the loop's poll, for embedding and
 * integration (libuv's prepare/check/idle).
 *
 * - PREPARE runs once per iteration just before the loop polls.
 * - CHECK runs once per iteration just after the poll.
 * - IDLE runs once per iteration while active, and keeps the poll from
 *   blocking (the loop spins while an idle hook is active).
 *
 * A hook started from inside its own phase first runs on the next
 * iteration.
 *
 * A hook is a handle (async/handle.h): close it with async_handle_close().
 */
#ifndef ASYNC_HOOK_H
#define ASYNC_HOOK_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** @brief When a hook runs (async_hook_new()). */
enum async_hook_kind {
  ASYNC_HOOK_PREPARE = 0,              /**< once per iteration, just before the poll */
  ASYNC_HOOK_CHECK = 1,                /**< once per iteration, just after the poll */
  ASYNC_HOOK_IDLE = 2,                 /**< once per iteration while active; the poll does not block */
  ASYNC_HOOK_KIND_FORCE32 = 0x7FFFFFFF /**< keeps the enum 32 bits wide; not a kind */
};

/**
 * @brief A hook's callback, run from inside async_loop_run() in the hook's
 * phase of each iteration.
 *
 * @param hook     the hook; the callback may stop, restart or close it.
 * @param userdata the hook's userdata.
 */
typedef void (*async_hook_fn)(async_hook *hook, void *userdata);

/**
 * @brief Creates a stopped hook of the given kind.
 *
 * @param[out] out      receives the hook.
 * @param      loop     the loop the hook runs on.
 * @param      kind     an enum async_hook_kind.
 * @param      userdata passed to the hook's callbacks and to its close
 *                      callback (the final notification); may be NULL.
 * @retval 0                  *out is the new hook.
 * @retval ASYNC_EINVAL       kind is not an enum async_hook_kind; out is
 *                            NULL; loop is NULL or not a loop.
 * @retval ASYNC_ENOMEM       out of memory.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership The hook is the caller's: close it with async_handle_close()
 *            (the loop cannot be freed before). userdata stays the
 *            caller's.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_hook_new(async_hook **out, async_loop *loop, int kind, void *userdata);

/**
 * @brief The hook as a handle (the same object).
 *
 * A cast, not a use: the owner-thread check does not apply (the handle
 * call that follows checks the thread).
 *
 * @param hook the hook (closing ones too).
 * @return the handle, or NULL if hook is NULL or not a hook.
 * @ownership The same object: nothing changes hands.
 * @thread Any thread.
 * @callbacks None run inside this call.
 */
ASYNC_API async_handle *async_hook_handle(async_hook *hook);

/**
 * @brief Starts the hook with cb (replacing the callback if already
 * active).
 *
 * @param hook the hook.
 * @param cb   the callback, with the hook's userdata.
 * @retval 0                  started.
 * @retval ASYNC_EINVAL       cb is NULL; hook is NULL or not a hook.
 * @retval ASYNC_ECLOSED      the hook is closing.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call; cb runs from inside
 *            async_loop_run().
 */
ASYNC_API int async_hook_start(async_hook *hook, async_hook_fn cb);

/**
 * @brief Stops the hook; a no-op if it is stopped.
 *
 * @param hook the hook.
 * @retval 0                  stopped.
 * @retval ASYNC_EINVAL       hook is NULL or not a hook.
 * @retval ASYNC_ECLOSED      the hook is closing.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_hook_stop(async_hook *hook);

/**
 * @brief The hook's kind.
 *
 * @param hook the hook (closing ones too).
 * @return an enum async_hook_kind, or a negative code:
 * @retval ASYNC_EINVAL       hook is NULL or not a hook.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_hook_get_kind(async_hook *hook);

#ifdef __cplusplus
}
#endif

#endif
