/*
 * async_reconnector: a persistent TCP client that keeps a connection to
 * host:port up, the reconnect() of the PEP 3156 design discussion.
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
 * - waiting: the backoff delay before the next connect. After n consecutive
 *   failures it is initial_delay_ms * multiplier^(n-1), at most
 *   max_delay_ms, then randomized uniformly within +/- jitter of itself
 *   (and again at most max_delay_ms).
 * - stopping: after async_reconnector_stop(), or when max_attempts
 *   consecutive connects failed. A connect in flight is cancelled, a live
 *   stream closed (its connection_lost runs); then stopped(error) runs,
 *   then release(userdata); then the reconnector's memory is released (do
 *   not use the pointer once stopped has returned).
 *
 * Every callback runs from the loop, never inside a call into the library.
 * An active reconnector keeps the loop running, and async_loop_free()
 * returns ASYNC_EBUSY until it has stopped. All functions: loop thread only.
 */
#ifndef ASYNC_RECONNECT_H
#define ASYNC_RECONNECT_H

#include "common.h"
#include "connect.h"
#include "stream.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct async_reconnector async_reconnector;

/* async_reconnector_state() values. */
enum async_reconnect_state {
  ASYNC_RECONNECT_CONNECTING = 1,
  ASYNC_RECONNECT_CONNECTED = 2,
  ASYNC_RECONNECT_WAITING = 3,
  ASYNC_RECONNECT_STOPPING = 4,
  ASYNC_RECONNECT_STATE_FORCE32 = 0x7FFFFFFF
};

/*
 * Backoff policy and events. Every field's default is 0 (NULL, 0.0): a
 * struct all zero but size means every default, as NULL options do; size
 * is read as for async_connect_options (async/connect.h). The callbacks
 * get the userdata given to async_reconnector_start(); either may be NULL.
 */
typedef struct async_reconnect_options {
  uint32_t size;                        /* sizeof(async_reconnect_options) */
  const async_connect_options *connect; /* each connect's options (copied); NULL (default): the defaults */
  uint64_t initial_delay_ms;            /* first retry, and the wait after a loss; 0 (default): 100 */
  uint64_t max_delay_ms;                /* >= initial_delay_ms; 0 (default): 30000, or initial_delay_ms if
                                           larger */
  double multiplier;                    /* >= 1.0; 0.0 (default): 2.0 */
  double jitter;                        /* up to 1.0; 0.0 (default): 0.1; negative: none (exact steps) */
  uint32_t max_attempts;                /* consecutive failed connects before giving up; 0 (default): never */
  /*
   * A connect failed with error; failures counts the consecutive ones. The
   * next connect starts in retry_ms; when failures reached max_attempts,
   * retry_ms is 0 and stopped(error) follows instead.
   */
  void (*connect_failed)(async_reconnector *rc, int error, uint32_t failures, uint64_t retry_ms, void *userdata);
  /* The reconnector ended: 0 after async_reconnector_stop(), else the last connect error. */
  void (*stopped)(async_reconnector *rc, int error, void *userdata);
} async_reconnect_options;

/* C convenience, the same as { sizeof(async_reconnect_options) }: every default. */
#define ASYNC_RECONNECT_OPTIONS_INIT \
  { sizeof(async_reconnect_options), 0, 0, 0, 0.0, 0.0, 0, 0, 0 }

/*
 * Starts keeping a connection to host:port. The first connect starts at
 * once (its callbacks run from the loop). protocol is copied; its
 * data_received and connection_lost are required as for any stream.
 * Errors (returned; nothing started, nothing called, userdata stays the
 * caller's): ASYNC_EINVAL (NULL, empty or over-long host, invalid protocol,
 * a size of options or options->connect the library refuses, a delay,
 * multiplier or jitter out of range, or what async_tcp_connect() rejects),
 * ASYNC_EBUSY (a reader bound already, async/reader.h), ASYNC_ENOMEM.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_reconnector_start(async_reconnector **out, async_loop *loop, const char *host, uint16_t port,
                                      const async_reconnect_options *options, const async_stream_protocol *protocol,
                                      void *userdata);

/*
 * Connects now: while waiting, the backoff delay is skipped; while
 * connected, the stream is aborted (its connection_lost gets 0) and the
 * next connect starts right after, without delay; while connecting,
 * nothing changes. The failure count is kept.
 * Errors: ASYNC_EINVAL, ASYNC_ECLOSED (stopping).
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_reconnector_reconnect(async_reconnector *rc);

/*
 * Stops for good: the connect in flight is cancelled, or the stream closed
 * (written data is flushed first); then stopped(0) and release(userdata)
 * run. Idempotent. Errors: ASYNC_EINVAL.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_reconnector_stop(async_reconnector *rc);

/*
 * The current state (enum async_reconnect_state), or ASYNC_EINVAL.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_reconnector_state(async_reconnector *rc);

/*
 * The connected stream (between its connection_made and connection_lost), else
 * NULL.
 * Callbacks: none run inside this call.
 */
ASYNC_API async_stream *async_reconnector_stream(async_reconnector *rc);

#ifdef __cplusplus
}
#endif

#endif
