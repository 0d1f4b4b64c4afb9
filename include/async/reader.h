/*
 * async_reader: the read_exactly / read_until / read_line / read_some
 * facade over a stream (the helpers proposed in the PEP 3156 discussion),
 * built on consumed-bytes reads.
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
 * All functions: loop thread only.
 */
#ifndef ASYNC_READER_H
#define ASYNC_READER_H

#include "common.h"
#include "stream.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct async_reader async_reader;
typedef struct async_bytes async_bytes;

/*
 * Creates a reader buffering at most limit bytes (0: 64 KiB) before it
 * pauses reading (a read_exactly of more waits for all its bytes). Free it
 * with async_reader_free(), at any time; the memory goes once its stream,
 * if any, has released it too. The loop cannot be freed (ASYNC_EBUSY)
 * until then. Errors: ASYNC_EINVAL, ASYNC_ENOMEM.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_reader_new(async_reader **out, async_loop *loop, size_t limit);

/*
 * The protocol to create the reader's stream with (static; never NULL).
 * Callbacks: none run inside this call.
 */
ASYNC_API const async_stream_protocol *async_reader_protocol(void);

/*
 * Releases the caller's reader, at any point (also inside its protocol's
 * callbacks or a read's done callback): a pending read is cancelled;
 * buffered bytes and bytes still arriving are dropped (a stream paused by
 * the reader reads again). The stream stays open and the caller's to
 * close. Errors: ASYNC_EINVAL (not a reader, freed already).
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_reader_free(async_reader *reader);

/*
 * Exactly n (> 0) bytes. Errors: ASYNC_EINVAL, ASYNC_ESTATE, ASYNC_ENOMEM.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_reader_read_exactly(async_future **out, async_reader *reader, size_t n);

/*
 * Everything up to and including the first delim (1..16 bytes), at most
 * limit bytes with the delimiter counted (0: the reader's limit; at most
 * it): with limit 4, "abc\n" succeeds. Fails with ASYNC_ENOBUFS once limit
 * bytes arrived and no delimiter ends within them (a delimiter straddling
 * the limit does not count; the bytes stay buffered).
 * Errors: ASYNC_EINVAL, ASYNC_ESTATE, ASYNC_ENOMEM.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_reader_read_until(async_future **out, async_reader *reader, const void *delim, size_t delim_len,
                                      size_t limit);

/*
 * read_until "\n".
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_reader_read_line(async_future **out, async_reader *reader, size_t limit);

/*
 * Whatever is buffered (at least 1 byte, at most max > 0), or 0 bytes at EOF.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_reader_read_some(async_future **out, async_reader *reader, size_t max);

/*
 * The bytes of a read's value; NULL / 0 if bytes is not one.
 * Callbacks: none run inside this call.
 */
ASYNC_API const uint8_t *async_bytes_data(const async_bytes *bytes);
ASYNC_API size_t async_bytes_size(const async_bytes *bytes);

#ifdef __cplusplus
}
#endif

#endif
