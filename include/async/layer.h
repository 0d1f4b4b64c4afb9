/**
 * @file
 * @brief Stream layers: a protocol stack on one connection, as
 * TCP / RATELIMIT / HTTP (or TCP / TLS / HTTP). A layer is the protocol of
 * the stream below it and the transport of a new stream above it; the
 * protocol above gets an ordinary async_stream and cannot tell it from a
 * stream on a socket: every async_stream_* function works on it, with the
 * contract of async/stream.h.
 *
 * Pushing and popping:
 * - A push (async_layer_push_rate_limit()) works on any stream that is
 *   open, also a layered one (layers stack), also from inside its
 *   data_received: after a plaintext exchange, for example. The layer
 *   replaces the stream's protocol as async_stream_set_protocol() does
 *   (the old protocol's release runs inside the push), and the stream's
 *   bytes not consumed yet go to the layer: the protocol that pushed
 *   inside data_received and consumed n bytes leaves the rest to the layer.
 *   The new stream above gets connection_made from the loop, as any new
 *   stream, and reading starts after it.
 * - async_layer_pop() takes the layer off again: the stream above closes
 *   (its queued bytes go down through the layer, then its connection_lost
 *   runs with 0), and the stream below, still open, gets the protocol
 *   given to the pop (as async_stream_set_protocol(): no connection_made)
 *   and reads again. Bytes the stream below had not passed up stay there
 *   for that protocol; bytes the protocol above left unconsumed are
 *   dropped with its stream.
 *
 * How the stack behaves, whatever the layers:
 * - Flow control goes both ways: a stream above that is not reading
 *   (paused, or its connection_made still to come) pauses the stream
 *   below; a stream below above its high-water mark makes the layer take
 *   nothing more, so the stream above keeps its writes in its own buffer
 *   and runs its pause_writing / resume_writing around its own marks
 *   (async_stream_set_write_limits()).
 * - async_stream_write_eof() above goes down once the stream above's
 *   buffer went through the layer; an end of file from below comes up as
 *   eof_received above (a non-zero return keeps both open for writing).
 * - async_stream_close() above flushes through every layer: its bytes go
 *   down, then the stream below closes (and flushes its own buffer). Its
 *   connection_lost(0) runs once its bytes went into the layer below.
 * - async_stream_abort() above aborts every stream below it.
 * - A stream below that is lost ends the streams above it with its error
 *   (ASYNC_EPIPE when it ended cleanly with writes still queued above).
 *   Each stream's connection_lost runs exactly once and last, then its
 *   release: one final notification per userdata.
 * - Socket queries and options above (async_stream_fd(),
 *   async_stream_sockname(), async_stream_peername(),
 *   async_stream_set_nodelay(), async_stream_set_keepalive()) answer for
 *   the socket at the bottom of the stack while the stream below has not
 *   ended (ASYNC_ECLOSED after).
 *
 * The stream below is not the user's to drive while a layer is on it:
 * writing or reading control on it directly goes past the layer. Replacing
 * its protocol (async_stream_set_protocol()) takes it from the layer: the
 * stream above is then aborted with ASYNC_ECLOSED. The caller's references
 * to the stream below (async_stream_retain(), a connect future's value)
 * keep their meaning; the layer holds none.
 *
 * All functions: the loop's thread only, with the owner-thread check of
 * async/stream.h (ASYNC_EWRONGTHREAD).
 */
#ifndef ASYNC_LAYER_H
#define ASYNC_LAYER_H

#include "common.h"
#include "stream.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @brief Pushes a rate limiter onto lower: a new stream above it passes at
 * most read_bytes_per_s bytes per second up and write_bytes_per_s bytes
 * per second down.
 *
 * Each direction is a token bucket holding up to 1/20 of a second's bytes
 * (at least 1): bytes pass at once while it has tokens; a dry bucket
 * stops its direction (the stream below pauses reading, keeping what it
 * read; the stream above keeps its writes in its buffer, with its
 * pause_writing past its high-water mark) and a timer starts it again
 * once the bucket is full. Over any period the bytes passed are at most
 * the rate times the period plus one bucket. See the file comment for the
 * rest of the stack's behaviour.
 *
 * @param[out] out               receives the stream above the limiter.
 * @param      lower             the stream to put the limiter on (open;
 *                               layered or not).
 * @param      read_bytes_per_s  the most bytes passed up per second; 0:
 *                               unlimited.
 * @param      write_bytes_per_s the most bytes passed down per second; 0:
 *                               unlimited.
 * @param      protocol          the callbacks of the stream above (copied).
 * @param      userdata          passed to every callback of the stream
 *                               above and to its release; may be NULL.
 * @retval 0                  *out is the new stream; lower's protocol is
 *                            the limiter's.
 * @retval ASYNC_EINVAL       out or protocol is NULL; a protocol
 *                            async_stream_adopt() refuses; lower is NULL
 *                            or not a stream; a reader's protocol
 *                            (async/reader.h) with a userdata that is not
 *                            a live reader.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller.
 * @retval ASYNC_ECLOSED      lower is closing, lost or has ended.
 * @retval ASYNC_EBUSY        userdata is a reader bound to a stream
 *                            already (async/reader.h).
 * @retval ASYNC_ENOMEM       out of memory.
 * @ownership On success the new stream is the caller's until it ends (the
 *            Lifetime rule of async/stream.h), userdata stays the caller's
 *            until release(userdata), and lower's old protocol's userdata
 *            got its release. On an error nothing changed and nothing was
 *            called.
 * @thread The loop's thread only.
 * @callbacks lower's old protocol's release runs inside this call;
 *            connection_made of the new stream runs from the loop.
 */
ASYNC_API int async_layer_push_rate_limit(async_stream **out, async_stream *lower, uint64_t read_bytes_per_s,
                                          uint64_t write_bytes_per_s, const async_stream_protocol *protocol,
                                          void *userdata);

/**
 * @brief Takes the layer under upper off: upper closes, and the stream
 * below gets protocol and userdata once upper's bytes went through the
 * layer.
 *
 * upper closes as with async_stream_close(), but the stream below stays
 * open: when upper's buffer has gone down through the layer, the stream
 * below's protocol becomes protocol with userdata (as
 * async_stream_set_protocol(); no connection_made) and it reads again,
 * then upper's connection_lost(0) and release run. If the stack fails
 * first (the stream below is lost, or upper is aborted), upper's
 * connection_lost gets the error, the stream below is aborted or lost,
 * and protocol's release(userdata) runs instead, after upper's release.
 *
 * @param upper    a stream made by a layer push, open.
 * @param protocol the callbacks the stream below goes on with (copied).
 * @param userdata passed to them and to their release; may be NULL.
 * @retval 0                  the pop is under way.
 * @retval ASYNC_EINVAL       protocol is NULL or a protocol
 *                            async_stream_adopt() refuses; upper is NULL,
 *                            not a stream, or not a layered stream; a
 *                            reader's protocol with a userdata that is
 *                            not a live reader.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller.
 * @retval ASYNC_ECLOSED      upper is closing, lost or has ended, or the
 *                            stream below is gone.
 * @retval ASYNC_EBUSY        userdata is a reader bound to a stream
 *                            already.
 * @ownership userdata is the library's until protocol's release: the
 *            stream below's, or the one a failed stack runs. On an error
 *            nothing changed and nothing is called.
 * @thread The loop's thread only.
 * @callbacks None run inside this call; the hand-over, connection_lost
 *            and the releases run from the loop.
 */
ASYNC_API int async_layer_pop(async_stream *upper, const async_stream_protocol *protocol, void *userdata);

/**
 * @brief Whether stream sits on a layer (made by a layer push).
 *
 * @param stream the stream.
 * @retval 1                  stream is a layer's stream above.
 * @retval 0                  stream sits on an fd.
 * @retval ASYNC_EINVAL       stream is NULL or not a stream.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller.
 * @retval ASYNC_ECLOSED      the stream has ended.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_layer_is_layered(async_stream *stream);

#ifdef __cplusplus
}
#endif

#endif
