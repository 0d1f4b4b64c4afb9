/**
 * @file
 * @brief async_reconnector: a persistent TCP client that keeps a
 * connection to host:port up, the reconnect() of the PEP 3156 design
 * discussion.
 *
 * It owns the host, port, connect options (async/connect.h) and a backoff
 * policy. Each connection is an async_stream driven by the protocol given
 * at start, with the same callback order as any stream (async/stream.h):
 * connection_made first, connection_lost exactly once and last, for every
 * connection in turn. The protocol's release(userdata) is not called per
 * connection but once, as the reconnector's final notification.
 *
 * Life cycle:
 * - connecting: async_tcp_connect() is in flight. Success runs the new
 *   stream's connection_made and resets the failure count. A failure (a
 *   lookup error, every attempt refused or unreachable, a timeout) counts
 *   one consecutive failure and is reported to connect_failed with the
 *   delay before the next try.
 * - connected: when the stream's connection_lost has run, the next connect
 *   starts after initial_delay_ms (jittered).
 * - waiting: the backoff delay before the next connect. After n
 *   consecutive failures it is initial_delay_ms * multiplier^(n-1), at
 *   most max_delay_ms, then randomized uniformly within +/- jitter of
 *   itself (and again at most max_delay_ms).
 * - stopping: after async_reconnector_stop(), or when max_attempts
 *   consecutive connects failed. A connect in flight is cancelled, a live
 *   stream closed (its connection_lost runs); then stopped(error) runs,
 *   then release(userdata); then the reconnector's memory is released (do
 *   not use the pointer once stopped has returned).
 *
 * Every callback runs from the loop, never inside a call into the library.
 * An active reconnector keeps the loop running, and async_loop_free()
 * returns ASYNC_EBUSY until it has stopped.
 *
 * All functions: the loop's thread only. With the loop's owner-thread
 * check on (async_loop_set_thread_check()), a call from another thread
 * returns ASYNC_EWRONGTHREAD (NULL for async_reconnector_stream()) and
 * changes nothing.
 */
#ifndef ASYNC_RECONNECT_H
#define ASYNC_RECONNECT_H

#include "common.h"
#include "connect.h"
#include "stream.h"

#ifdef __cplusplus
extern "C" {
#endif

/** @brief A reconnector: keeps a TCP connection up, reconnecting with backoff. */
typedef struct async_reconnector async_reconnector;

/** @brief async_reconnector_state() values (see the life cycle in the file comment). */
enum async_reconnect_state {
  ASYNC_RECONNECT_CONNECTING = 1,            /**< a connect is in flight. */
  ASYNC_RECONNECT_CONNECTED = 2,             /**< a stream is up (async_reconnector_stream()). */
  ASYNC_RECONNECT_WAITING = 3,               /**< the backoff delay before the next connect. */
  ASYNC_RECONNECT_STOPPING = 4,              /**< stopped or given up: stopped(error) follows. */
  ASYNC_RECONNECT_STATE_FORCE32 = 0x7FFFFFFF /**< not a state: keeps the enum 32 bits wide. */
};

/**
 * @brief async_reconnector_start() options: the backoff policy and events.
 *
 * Every field's default is 0 (NULL, 0.0): a struct all zero but size means
 * every default, as NULL options do; size is read as for
 * async_connect_options (async/connect.h). The callbacks get the userdata
 * given to async_reconnector_start(); either may be NULL.
 */
typedef struct async_reconnect_options {
  uint32_t size;                        /**< sizeof(async_reconnect_options). */
  const async_connect_options *connect; /**< each connect's options (copied, its local_address and
                                             server_name too; its tls context retained until the
                                             reconnector stops, and each connection resumes the session
                                             of the one before); NULL (default): the defaults. */
  uint64_t initial_delay_ms;            /**< first retry, and the wait after a loss; 0 (default): 100. */
  uint64_t max_delay_ms;                /**< >= initial_delay_ms; 0 (default): 30000, or initial_delay_ms if
                                             larger. */
  double multiplier;                    /**< >= 1.0; 0.0 (default): 2.0. */
  double jitter;                        /**< up to 1.0; 0.0 (default): 0.1; negative: none (exact steps). */
  uint32_t max_attempts;                /**< consecutive failed connects before giving up; 0 (default): never. */
  /**
   * A connect failed with error; failures counts the consecutive ones. The
   * next connect starts in retry_ms; when failures reached max_attempts,
   * retry_ms is 0 and stopped(error) follows instead. NULL (default): not
   * told.
   */
  void (*connect_failed)(async_reconnector *rc, int error, uint32_t failures, uint64_t retry_ms, void *userdata);
  /**
   * The reconnector ended: error 0 after async_reconnector_stop(), else
   * the last connect error. release(userdata) follows. NULL (default): not
   * told.
   */
  void (*stopped)(async_reconnector *rc, int error, void *userdata);
} async_reconnect_options;

/** @brief C convenience, the same as { sizeof(async_reconnect_options) }: every default. */
#define ASYNC_RECONNECT_OPTIONS_INIT \
  { sizeof(async_reconnect_options), 0, 0, 0, 0.0, 0.0, 0, 0, 0 }

/**
 * @brief Starts keeping a connection to host:port.
 *
 * The first connect starts at once (its callbacks run from the loop).
 *
 * @param[out] out      receives the reconnector.
 * @param      loop     the loop.
 * @param      host     as for async_tcp_connect() (1 to 255 bytes).
 * @param      port     the port.
 * @param      options  the options (copied); NULL: the defaults.
 * @param      protocol each connection's callbacks (copied); data_received
 *                      and connection_lost are required as for any stream.
 * @param      userdata passed to the protocol's callbacks, to
 *                      connect_failed and stopped, and once to release;
 *                      may be NULL.
 * @retval 0                  *out is the new reconnector, connecting.
 * @retval ASYNC_EINVAL       out, host or protocol is NULL, loop is NULL or
 *                            not a loop; host is empty or longer than 255
 *                            bytes; an invalid protocol; a size of options
 *                            or options->connect the library refuses; a
 *                            delay, multiplier or jitter out of range; a
 *                            connect local_address of 128 bytes or more, or
 *                            what async_tcp_connect() rejects; a reader's
 *                            protocol with a userdata that is not a live
 *                            reader.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller.
 * @retval ASYNC_EBUSY        userdata is a reader bound to a stream
 *                            already (async/reader.h).
 * @retval ASYNC_ENOMEM       out of memory.
 * @ownership The reconnector is the caller's until it stops: its memory
 *            goes once stopped has returned (after release(userdata)), so
 *            do not use the pointer after that. userdata stays the
 *            caller's until release(userdata). On an error nothing is
 *            started or called and userdata stays the caller's.
 * @thread The loop's thread only.
 * @callbacks None run inside this call; every reconnector and stream
 *            callback runs from the loop.
 */
ASYNC_API int async_reconnector_start(async_reconnector **out, async_loop *loop, const char *host, uint16_t port,
                                      const async_reconnect_options *options, const async_stream_protocol *protocol,
                                      void *userdata);

/**
 * @brief Connects now.
 *
 * While waiting, the backoff delay is skipped; while connected, the stream
 * is aborted (its connection_lost gets 0) and the next connect starts
 * right after, without delay; while connecting, nothing changes. The
 * failure count is kept.
 *
 * @param rc the reconnector.
 * @retval 0                  done.
 * @retval ASYNC_EINVAL       rc is NULL or not a reconnector.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller.
 * @retval ASYNC_ECLOSED      the reconnector is stopping.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call; the stream's connection_lost
 *            runs from the loop.
 */
ASYNC_API int async_reconnector_reconnect(async_reconnector *rc);

/**
 * @brief Stops for good.
 *
 * The connect in flight is cancelled, or the stream closed (written data
 * is flushed first); then stopped(0) and release(userdata) run.
 * Idempotent.
 *
 * @param rc the reconnector.
 * @retval 0                  stopping.
 * @retval ASYNC_EINVAL       rc is NULL or not a reconnector.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller.
 * @ownership Nothing changes hands now; the reconnector's memory goes
 *            once stopped has returned.
 * @thread The loop's thread only.
 * @callbacks None run inside this call; connection_lost, stopped and
 *            release run from the loop.
 */
ASYNC_API int async_reconnector_stop(async_reconnector *rc);

/**
 * @brief The current state.
 *
 * @param rc the reconnector.
 * @return an enum async_reconnect_state value, or ASYNC_EINVAL (rc NULL or
 *         not a reconnector) or ASYNC_EWRONGTHREAD (the loop's thread check
 *         refused the caller).
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_reconnector_state(async_reconnector *rc);

/**
 * @brief The connected stream, between its connection_made and
 * connection_lost.
 *
 * The stream is given from the start of its connection_made (inside it
 * too) until its connection_lost starts (NULL inside it), or until an
 * async_stream_set_protocol() on it takes the stream over.
 *
 * @param rc the reconnector.
 * @return the stream, or NULL when none is connected, rc is NULL or not a
 *         reconnector, or the loop's thread check refused the caller.
 * @ownership Borrowed: valid until the stream's connection_lost returns
 *            (async_stream_retain() it to keep it longer).
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API async_stream *async_reconnector_stream(async_reconnector *rc);

#ifdef __cplusplus
}
#endif

#endif
