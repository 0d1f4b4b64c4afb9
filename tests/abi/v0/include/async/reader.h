/**
 * @file
 * @brief async_reader: the read_exactly / read_until / read_line /
 * read_some facade over a stream (the helpers proposed in the PEP 3156
 * discussion), built on consumed-bytes reads.
 *
 * A reader is a stream protocol: create the stream (async_stream_adopt,
 * async_tcp_connect, async_unix_connect, async_reconnector_start, a
 * server's factory, or async_stream_set_protocol) with
 * async_reader_protocol() and the reader as userdata. Incoming bytes are
 * buffered in the reader (reading pauses once its limit is buffered and no
 * read waits for more); each read returns a future whose value, on
 * success, is an async_bytes * owned by the future.
 * One read at a time: a read while another is pending is ASYNC_ESTATE.
 * A read that the buffered bytes already satisfy completes before it
 * returns (its callbacks still run later, as always). What read_exactly
 * and read_until give never depends on how the peer's bytes were split
 * into reads (read_some gives what has arrived).
 *
 * One stream per reader: a reader is bound from the call that hands it
 * over (with any protocol whose release is the reader's) until that
 * stream's, connect's or reconnector's release. Handing a bound reader to
 * any of the calls above fails with ASYNC_EBUSY (nothing changes; a
 * server's factory returning one gets its connection closed and logged,
 * and the reader is not released); the reader's protocol with a userdata
 * that is not a live reader fails with ASYNC_EINVAL. Once released, a
 * reader may be bound again: the new stream starts afresh, bytes left
 * from the old one are dropped (as at each new connection of a
 * reconnector). A release without connection_lost (a connect that failed,
 * a stream given another protocol) ends reads as an end of file does.
 *
 * At the peer's end of file the stream stays open for writing (close it
 * with async_stream_close when done); reads then fail with ASYNC_EEOF when
 * the buffered bytes cannot satisfy them, except read_some, which
 * completes with 0 bytes. If the connection is lost with an error, pending
 * and later reads fail with it.
 * All functions: loop thread only. With the loop's owner-thread check on
 * (async_loop_set_thread_check()), a reader call from another thread
 * returns ASYNC_EWRONGTHREAD and changes nothing (a read's value is of no
 * loop: async_bytes_data() and async_bytes_size() are not checked).
 */
#ifndef ASYNC_READER_H
#define ASYNC_READER_H

#include "common.h"
#include "stream.h"

#ifdef __cplusplus
extern "C" {
#endif

/** @brief A reader: buffers a stream's bytes and serves one read at a time. */
typedef struct async_reader async_reader;
/** @brief The value of a successful read: bytes owned by the read's future. */
typedef struct async_bytes async_bytes;

/**
 * @brief Creates a reader.
 *
 * The reader buffers at most limit bytes before it pauses its stream's
 * reading (a read_exactly of more waits for all its bytes). Hand it to a
 * stream as the userdata of async_reader_protocol().
 *
 * @param[out] out   receives the reader.
 * @param      loop  the loop its reads' futures belong to.
 * @param      limit the buffer limit in bytes; 0 for 64 KiB.
 * @retval 0            *out is the new reader.
 * @retval ASYNC_EINVAL out is NULL, loop is NULL or not a loop.
 * @retval ASYNC_ENOMEM out of memory.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership The reader is the caller's: free it with async_reader_free(),
 *            at any time; its memory goes once its stream, if any, has
 *            released it too. The loop cannot be freed (ASYNC_EBUSY) until
 *            then.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_reader_new(async_reader **out, async_loop *loop, size_t limit);

/**
 * @brief The protocol to create a reader's stream with.
 *
 * @return the protocol; static, never NULL.
 * @ownership Static storage: never free it.
 * @thread Any thread.
 * @callbacks None run inside this call.
 */
ASYNC_API const async_stream_protocol *async_reader_protocol(void);

/**
 * @brief Releases the caller's reader, at any point (also inside its
 * protocol's callbacks or a read's done callback).
 *
 * A pending read is cancelled (its future's done callbacks run later with
 * ASYNC_ECANCELED); buffered bytes and bytes still arriving are dropped (a
 * stream paused by the reader reads again). The stream stays open.
 *
 * @param reader the reader.
 * @retval 0            released.
 * @retval ASYNC_EINVAL reader is NULL, not a reader, or freed already.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership Ends the caller's ownership of the reader; the stream stays
 *            the caller's to close. Futures of earlier reads stay the
 *            caller's.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_reader_free(async_reader *reader);

/**
 * @brief Reads exactly n bytes.
 *
 * The future completes when n bytes are buffered, or fails with
 * ASYNC_EEOF at an end of file before that, or with the connection's error.
 *
 * @param[out] out    receives the read's future.
 * @param      reader the reader.
 * @param      n      the number of bytes (> 0).
 * @retval 0            *out is the read's future (complete already if the
 *                      buffered bytes satisfy it).
 * @retval ASYNC_EINVAL out is NULL, n is 0; reader is NULL, not a reader,
 *                      or freed.
 * @retval ASYNC_ESTATE another read of this reader is pending.
 * @retval ASYNC_ENOMEM out of memory.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership The future is the caller's (async_future_free()); its value,
 *            an async_bytes *, belongs to the future.
 * @thread The loop's thread only.
 * @callbacks None run inside this call; the future's done callbacks run on
 *            a later iteration, as always.
 */
ASYNC_API int async_reader_read_exactly(async_future **out, async_reader *reader, size_t n);

/**
 * @brief Reads everything up to and including the first delimiter.
 *
 * At most limit bytes, the delimiter counted: with limit 4, "abc" and a
 * newline succeed. The future fails with ASYNC_ENOBUFS once limit bytes arrived
 * and no delimiter ends within them (a delimiter straddling the limit does
 * not count; the bytes stay buffered), with ASYNC_EEOF at an end of file
 * before a delimiter, or with the connection's error.
 *
 * @param[out] out       receives the read's future.
 * @param      reader    the reader.
 * @param      delim     the delimiter.
 * @param      delim_len its length, 1 to 16 bytes.
 * @param      limit     the most bytes to buffer for this read; 0 or more
 *                       than the reader's limit: the reader's limit.
 * @retval 0            *out is the read's future (complete already if the
 *                      buffered bytes decide it).
 * @retval ASYNC_EINVAL out or delim is NULL, delim_len is 0 or above 16;
 *                      reader is NULL, not a reader, or freed.
 * @retval ASYNC_ESTATE another read of this reader is pending.
 * @retval ASYNC_ENOMEM out of memory.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership delim is copied. The future is the caller's
 *            (async_future_free()); its value, an async_bytes *, belongs
 *            to the future.
 * @thread The loop's thread only.
 * @callbacks None run inside this call; the future's done callbacks run on
 *            a later iteration, as always.
 */
ASYNC_API int async_reader_read_until(async_future **out, async_reader *reader, const void *delim, size_t delim_len,
                                      size_t limit);

/**
 * @brief Reads a line: async_reader_read_until() with a newline as the
 * delimiter.
 *
 * @param[out] out    receives the read's future.
 * @param      reader the reader.
 * @param      limit  as for async_reader_read_until().
 * @retval 0            *out is the read's future.
 * @retval ASYNC_EINVAL out is NULL; reader is NULL, not a reader, or freed.
 * @retval ASYNC_ESTATE another read of this reader is pending.
 * @retval ASYNC_ENOMEM out of memory.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership As for async_reader_read_until().
 * @thread The loop's thread only.
 * @callbacks None run inside this call; the future's done callbacks run on
 *            a later iteration, as always.
 */
ASYNC_API int async_reader_read_line(async_future **out, async_reader *reader, size_t limit);

/**
 * @brief Reads whatever is buffered: at least 1 byte, at most max.
 *
 * At an end of file with nothing buffered the future completes with 0
 * bytes; after a connection lost with an error it fails with that error.
 *
 * @param[out] out    receives the read's future.
 * @param      reader the reader.
 * @param      max    the most bytes to take (> 0).
 * @retval 0            *out is the read's future (complete already if
 *                      bytes are buffered).
 * @retval ASYNC_EINVAL out is NULL, max is 0; reader is NULL, not a
 *                      reader, or freed.
 * @retval ASYNC_ESTATE another read of this reader is pending.
 * @retval ASYNC_ENOMEM out of memory.
 * @retval ASYNC_EWRONGTHREAD the owner-thread check is on and the caller is
 *                            not the owner.
 * @ownership The future is the caller's (async_future_free()); its value,
 *            an async_bytes *, belongs to the future.
 * @thread The loop's thread only.
 * @callbacks None run inside this call; the future's done callbacks run on
 *            a later iteration, as always.
 */
ASYNC_API int async_reader_read_some(async_future **out, async_reader *reader, size_t max);

/**
 * @brief The bytes of a read's value.
 *
 * @param bytes a read's value (async_future_result()).
 * @return the first byte (a valid pointer for 0 bytes too), or NULL if
 *         bytes is NULL or not a read's value.
 * @ownership Borrowed: valid while the read's future lives.
 * @thread The loop's thread only (a read's value is of no loop: the
 *         owner-thread check does not apply).
 * @callbacks None run inside this call.
 */
ASYNC_API const uint8_t *async_bytes_data(const async_bytes *bytes);

/**
 * @brief The number of bytes of a read's value.
 *
 * @param bytes a read's value (async_future_result()).
 * @return the size, or 0 if bytes is NULL or not a read's value.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only (a read's value is of no loop: the
 *         owner-thread check does not apply).
 * @callbacks None run inside this call.
 */
ASYNC_API size_t async_bytes_size(const async_bytes *bytes);

#ifdef __cplusplus
}
#endif

#endif
