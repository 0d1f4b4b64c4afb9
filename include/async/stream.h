/**
 * @file
 * @brief async_stream: a stream transport (a connected socket, a pipe, a
 * tty) driven by a protocol, as asyncio's transports and protocols (PEP
 * 3156), with the extensions asked for in its design discussion:
 * consumed-bytes reads, a write-drained callback and zero-copy writes.
 *
 * Callback order, per stream:
 * - connection_made runs first, through the ready queue: never inside the
 *   call that created the stream (from a callback, after that callback
 *   returned; from outside the loop, in the next iteration). Reading
 *   starts only after it returned.
 * - data_received(data, len) returns how many bytes it consumed (0..len);
 *   the rest is kept and presented again, in front of newer data, at the
 *   next delivery. Reads go through one buffer shared by the loop's
 *   streams, so an idle stream holds no read buffer; only an unconsumed
 *   tail is kept per stream, bounded by the read limit (default 1 MiB): a
 *   tail that reaches it with nothing consumed ends the stream with
 *   ASYNC_ENOBUFS.
 * - With ASYNC_STREAM_DELIVER_EACH in the protocol's flags, data_received
 *   is called again at once with the rest of the same bytes while it
 *   consumes more than 0 bytes and bytes remain, so it may handle one
 *   message per call (see ASYNC_STREAM_DELIVER_EACH).
 * - At end of file, an unconsumed tail is delivered once more, then
 *   eof_received runs: a non-zero return keeps the stream open for writing
 *   (half-close; call async_stream_close() later), zero closes it.
 * - idle_timeout runs when nothing was read or written for the period of
 *   async_stream_set_idle_timeout(), in place of the ASYNC_ETIMEDOUT abort.
 * - pause_writing runs inside async_stream_write(), async_stream_writev()
 *   and async_stream_write_zc() when the write buffer goes strictly above
 *   the high-water mark (default 64 KiB); resume_writing when it drains to
 *   the low-water mark or below (default 16 KiB); write_drained when it is
 *   empty again (after resume_writing).
 * - connection_lost runs exactly once, last, never inside a call into the
 *   library: error 0 after a clean end (EOF, close, abort), an ASYNC_E*
 *   code otherwise (and then no eof_received). No data_received comes
 *   after eof_received, close or abort.
 * - A pipe's write end is never read; when its reader closes, the stream
 *   ends (as asyncio's write pipe transport) with connection_lost(0) if
 *   nothing was waiting to be written, ASYNC_EPIPE if a write was pending
 *   or failed. A socket whose peer closed with bytes of ours unread
 *   reports ASYNC_ECONNRESET.
 * - release(userdata) follows connection_lost: the final notification for
 *   the protocol's userdata. The stream has then ended.
 *
 * Lifetime, one rule for every stream (accepted, connected or adopted) and
 * for datagram transports (async/datagram.h): a stream's memory stays
 * valid until its connection_lost and release have returned AND every
 * async_stream_retain() has been matched by an async_stream_release(). A
 * connect future's value (async/connect.h) is one such reference, released
 * when the future's memory goes. With no reference held, the memory goes
 * right after release returns: the pointer must not be used after
 * connection_lost. Once the stream has ended, every call on it returns
 * ASYNC_ECLOSED, except async_stream_retain() and async_stream_release(),
 * and async_stream_loop() and async_stream_userdata(), which return NULL.
 * (Before that, inside connection_lost and release, calls answer as for a
 * lost stream: writes return ASYNC_ECLOSED, close and abort do nothing,
 * queries answer.) An ended stream is detached from its loop: it does not
 * hold async_loop_free() back (a stream counts as a live object of its
 * loop, ASYNC_EBUSY, only until it ends), and async_stream_release() never
 * touches the loop, so a binding's finalizer may release it after the
 * loop is freed.
 *
 * Any callback but data_received and connection_lost may be NULL.
 * Writes never raise SIGPIPE (sockets use MSG_NOSIGNAL; pipe writes hold
 * SIGPIPE back and discard one they caused).
 *
 * All functions: the loop's thread only (async_stream_release() after the
 * loop is freed excepted). With the loop's owner-thread check on
 * (async_loop_set_thread_check()), a call from another thread on a stream
 * that has not ended returns ASYNC_EWRONGTHREAD (NULL for the functions
 * returning a pointer) and changes nothing.
 */
#ifndef ASYNC_STREAM_H
#define ASYNC_STREAM_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

struct iovec;
struct sockaddr;

/** @brief A stream transport: a connected stream socket, a pipe or a tty driven by a protocol. */
typedef struct async_stream async_stream;

/** @brief async_stream_protocol flags (a bit set; 0 is the default behaviour). */
enum async_stream_flags {
  /**
   * One message per call: after data_received consumed n bytes with
   * 0 < n < len, it is called again at once, in the same delivery, with
   * the len - n bytes that follow (the same memory, no copy). This repeats
   * until it returns 0 (the rest is kept, as without the flag), consumes
   * everything, or the stream stops reading inside it: pause_reading (the
   * rest is kept and presented again, through the loop, after
   * async_stream_resume_reading()), close or abort (the rest is dropped),
   * or set_protocol to a protocol without the flag (the rest is kept for
   * that protocol's next delivery; a protocol with the flag goes on at
   * once). At end of file the final delivery of the kept tail repeats the
   * same way; eof_received follows when it stops (what is left is
   * dropped), or, after a pause with bytes left, once resume_reading has
   * presented them. There is no fairness bound inside a delivery: a
   * protocol consuming 1 byte per call of a 64 KiB read is called 65,536
   * times before the loop goes on, which is what it asked for.
   */
  ASYNC_STREAM_DELIVER_EACH = 1,
  ASYNC_STREAM_FLAGS_FORCE32 = 0x7FFFFFFF /**< Not a flag: keeps the enum 32 bits wide. */
};

/**
 * @brief A stream protocol: the callbacks of a stream, given with their
 * userdata to async_stream_adopt(), async_stream_set_protocol(), a
 * server's factory, async_tcp_connect(), async_unix_connect() or
 * async_reconnector_start().
 *
 * size is read as for async_connect_options (async/connect.h): fields size
 * does not cover are NULL (0), a size below the first version's or
 * non-zero fields the library does not know are ASYNC_EINVAL. Every
 * callback's default is NULL (not called), but data_received and
 * connection_lost are required. The library copies the struct. Every
 * callback gets the stream and the userdata given with the protocol, and
 * runs from the loop (pause_writing also inside the calls that write, see
 * the file comment).
 */
typedef struct async_stream_protocol {
  uint32_t size; /**< sizeof(async_stream_protocol). */
  /** The stream is ready (the first callback); NULL (default): not called. */
  void (*connection_made)(async_stream *stream, void *userdata);
  /**
   * Bytes arrived: returns how many it consumed (0..len; more counts as
   * len); the rest is presented again, in front of newer bytes. data is
   * valid during the call only. Required.
   */
  size_t (*data_received)(async_stream *stream, const uint8_t *data, size_t len, void *userdata);
  /**
   * The peer's end of file: non-zero keeps the stream open for writing,
   * 0 closes it. NULL (default): closed.
   */
  int (*eof_received)(async_stream *stream, void *userdata);
  /** The stream is lost (the last callback): error 0 after a clean end, else an ASYNC_E* code. Required. */
  void (*connection_lost)(async_stream *stream, int error, void *userdata);
  /** The write buffer went above the high-water mark; NULL (default): not called. */
  void (*pause_writing)(async_stream *stream, void *userdata);
  /** The write buffer drained to the low-water mark; NULL (default): not called. */
  void (*resume_writing)(async_stream *stream, void *userdata);
  /** The write buffer is empty again; NULL (default): not called. */
  void (*write_drained)(async_stream *stream, void *userdata);
  /**
   * The final notification for userdata, after connection_lost (or when a
   * connect fails, or when async_stream_set_protocol() replaces this
   * protocol); NULL (default): not called.
   */
  void (*release)(void *userdata);
  /** enum async_stream_flags bits; 0 (default): none; unknown bits: ASYNC_EINVAL. */
  uint32_t flags;
  /**
   * Nothing was read or written for the idle period: the protocol decides
   * (write a keepalive, close, abort, change the period) instead of the
   * stream aborting with ASYNC_ETIMEDOUT. Runs from the loop. When it
   * returns and the stream is not lost, the idle timer is armed again for
   * the period then in force (as async_stream_set_idle_timeout() set it,
   * also inside the callback; 0 turns it off), counted from now; reads and
   * writes go on resetting it. So a protocol that writes a keepalive, or
   * does nothing, is called again after each idle period. A closed stream
   * still flushing its writes is not the protocol's to keep: its idle
   * timeout aborts it with ASYNC_ETIMEDOUT, callback or not. A period
   * ending before connection_made ran starts again instead (never a call
   * before it). NULL (default): the ASYNC_ETIMEDOUT abort.
   */
  void (*idle_timeout)(async_stream *stream, void *userdata);
} async_stream_protocol;

/** @brief C convenience, the same as { sizeof(async_stream_protocol) }. */
#define ASYNC_STREAM_PROTOCOL_INIT \
  { sizeof(async_stream_protocol), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }

/**
 * @brief Makes a stream of fd: a connected stream socket, a pipe, a tty or
 * any fd readable and/or writable as a byte stream.
 *
 * The stream owns fd from then on: it is made non-blocking and
 * close-on-exec, and closed after connection_lost. TCP sockets get
 * TCP_NODELAY. connection_made follows from the loop.
 *
 * @param[out] out      receives the stream.
 * @param      loop     the loop the stream runs on.
 * @param      fd       the fd.
 * @param      protocol the callbacks (copied).
 * @param      userdata passed to every callback and to release; may be
 *                      NULL.
 * @retval 0                  *out is the new stream.
 * @retval ASYNC_EINVAL       out or protocol is NULL, loop is NULL or not
 *                            a loop; a protocol size the library refuses,
 *                            data_received or connection_lost NULL,
 *                            unknown flag bits; fd is a listening or a
 *                            datagram socket; a reader's protocol
 *                            (async/reader.h) with a userdata that is not
 *                            a live reader.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller.
 * @retval ASYNC_EBADF        fd is not open.
 * @retval ASYNC_EBUSY        userdata is a reader bound to a stream
 *                            already (async/reader.h).
 * @retval ASYNC_ENOMEM       out of memory.
 * @ownership On success the stream owns fd and is the caller's until it
 *            ends (see Lifetime in the file comment); userdata stays the
 *            caller's until release(userdata). On an error fd and userdata
 *            stay the caller's and nothing is called.
 * @thread The loop's thread only.
 * @callbacks None run inside this call; connection_made runs from the
 *            loop.
 */
ASYNC_API int async_stream_adopt(async_stream **out, async_loop *loop, int fd, const async_stream_protocol *protocol,
                                 void *userdata);

/**
 * @brief Sends data now as far as the fd takes it and copies the rest into
 * the write buffer.
 *
 * len 0 does nothing. A send error is not returned: it ends the stream
 * through connection_lost (the call returns 0).
 *
 * @param stream the stream.
 * @param data   the bytes; may be NULL when len is 0.
 * @param len    their number.
 * @retval 0                  sent or buffered.
 * @retval ASYNC_EINVAL       data is NULL with len > 0; stream is NULL or
 *                            not a stream.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller.
 * @retval ASYNC_ECLOSED      the stream is closing, aborted, lost or has
 *                            ended: nothing is sent.
 * @retval ASYNC_ESTATE       after async_stream_write_eof().
 * @retval ASYNC_ENOMEM       out of memory: nothing of data is kept, what
 *                            was sent stays sent, and the stream is
 *                            aborted with ASYNC_ENOMEM.
 * @ownership data is copied (what is not sent at once); it stays the
 *            caller's.
 * @thread The loop's thread only.
 * @callbacks May run pause_writing inside this call.
 */
ASYNC_API int async_stream_write(async_stream *stream, const void *data, size_t len);

/**
 * @brief As async_stream_write() for iovcnt buffers, in order.
 *
 * @param stream the stream.
 * @param iov    the buffers; may be NULL when iovcnt is 0.
 * @param iovcnt their number, 0 to 1024.
 * @retval 0                  sent or buffered.
 * @retval ASYNC_EINVAL       iovcnt is negative or above 1024; iov is NULL
 *                            with iovcnt > 0; a buffer's base is NULL with
 *                            a length > 0; the lengths add up past
 *                            SIZE_MAX; stream is NULL or not a stream.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller.
 * @retval ASYNC_ECLOSED      as for async_stream_write().
 * @retval ASYNC_ESTATE       after async_stream_write_eof().
 * @retval ASYNC_ENOMEM       as for async_stream_write().
 * @ownership The bytes are copied (what is not sent at once); iov and the
 *            buffers stay the caller's.
 * @thread The loop's thread only.
 * @callbacks May run pause_writing inside this call.
 */
ASYNC_API int async_stream_writev(async_stream *stream, const struct iovec *iov, int iovcnt);

/**
 * @brief Zero-copy write: the stream keeps a pointer to data until it is
 * sent or dropped, then calls done(done_userdata) exactly once.
 *
 * done runs always from the loop, through the ready queue, never inside
 * this call (also when all of data went out at once) or any other call
 * (abort, close); done callbacks run in the order of their writes, and
 * before connection_lost when the write was dropped (abort, loss).
 *
 * @param stream        the stream.
 * @param data          the bytes; valid until done runs; may be NULL when
 *                      len is 0.
 * @param len           their number.
 * @param done          called once data is no longer used.
 * @param done_userdata passed to done.
 * @retval 0                  sent or queued; done will run.
 * @retval ASYNC_EINVAL       done is NULL, data is NULL with len > 0;
 *                            stream is NULL or not a stream.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller.
 * @retval ASYNC_ECLOSED      as for async_stream_write().
 * @retval ASYNC_ESTATE       after async_stream_write_eof().
 * @retval ASYNC_ENOMEM       as for async_stream_write().
 * @ownership data is borrowed (not copied) until done runs; on an error
 *            return done is not called and data stays the caller's.
 * @thread The loop's thread only.
 * @callbacks May run pause_writing inside this call (as
 *            async_stream_write()); done never runs inside it.
 */
ASYNC_API int async_stream_write_zc(async_stream *stream, const void *data, size_t len, async_release_fn done,
                                    void *done_userdata);

/**
 * @brief Shuts the write side once the buffer is flushed.
 *
 * shutdown(SHUT_WR) for sockets, close for a pipe's write end.
 * Idempotent. Reading goes on.
 *
 * @param stream the stream.
 * @retval 0                  done, or to be done once the buffer is
 *                            flushed.
 * @retval ASYNC_EINVAL       stream is NULL or not a stream.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller.
 * @retval ASYNC_ECLOSED      the stream is closing, aborted, lost or has
 *                            ended.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_stream_write_eof(async_stream *stream);

/**
 * @brief Closes: reading stops now, the write buffer is flushed, then
 * connection_lost(0).
 *
 * Idempotent (also after abort).
 *
 * @param stream the stream.
 * @retval 0                  closing (or closed already).
 * @retval ASYNC_EINVAL       stream is NULL or not a stream.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller.
 * @retval ASYNC_ECLOSED      the stream has ended.
 * @ownership Nothing changes hands; the fd is closed after
 *            connection_lost.
 * @thread The loop's thread only.
 * @callbacks None run inside this call; connection_lost and release run
 *            from the loop.
 */
ASYNC_API int async_stream_close(async_stream *stream);

/**
 * @brief Aborts: the write buffer is dropped, then connection_lost(0)
 * through the ready queue.
 *
 * The dropped zero-copy writes' done callbacks are queued before
 * connection_lost. Idempotent.
 *
 * @param stream the stream.
 * @retval 0                  aborted (or lost already).
 * @retval ASYNC_EINVAL       stream is NULL or not a stream.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller.
 * @retval ASYNC_ECLOSED      the stream has ended.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call; the dropped writes' done
 *            callbacks, connection_lost and release run from the loop.
 */
ASYNC_API int async_stream_abort(async_stream *stream);

/**
 * @brief Stops data_received.
 *
 * Idempotent; no effect once closing. Paused inside data_received, the
 * stream keeps the bytes not consumed (see async_stream_resume_reading()).
 *
 * @param stream the stream.
 * @retval 0                  paused.
 * @retval ASYNC_EINVAL       stream is NULL or not a stream.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller.
 * @retval ASYNC_ECLOSED      the stream has ended.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_stream_pause_reading(async_stream *stream);

/**
 * @brief Restarts data_received.
 *
 * Idempotent; no effect once closing. With ASYNC_STREAM_DELIVER_EACH,
 * bytes kept by a pause inside data_received are presented again through
 * the loop, before any newer bytes, without waiting for more data
 * (without the flag, they come in front of the next read). Bytes kept
 * that way past the end of file are presented at resume whatever the
 * protocol is by then (once, without the flag), then eof_received.
 *
 * @param stream the stream.
 * @retval 0                  reading (or closing).
 * @retval ASYNC_EINVAL       stream is NULL or not a stream.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller.
 * @retval ASYNC_ECLOSED      the stream has ended.
 * @retval ASYNC_ENOMEM       the delivery of the kept bytes could not be
 *                            queued: the stream is aborted with
 *                            ASYNC_ENOMEM, as by async_stream_abort().
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call; data_received and eof_received
 *            run from the loop.
 */
ASYNC_API int async_stream_resume_reading(async_stream *stream);

/**
 * @brief Whether data_received can be called: not paused, not closing,
 * not a write-only fd such as a pipe's write end.
 *
 * @param stream the stream.
 * @retval 1                  reading.
 * @retval 0                  not reading.
 * @retval ASYNC_EINVAL       stream is NULL or not a stream.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller.
 * @retval ASYNC_ECLOSED      the stream has ended.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_stream_is_reading(async_stream *stream);

/**
 * @brief Sets the write buffer's high- and low-water marks in bytes.
 *
 * high 0 pauses whenever anything is buffered, low 0 resumes only when
 * empty. The new high-water mark applies at once.
 *
 * @param stream the stream.
 * @param high   the high-water mark.
 * @param low    the low-water mark (<= high).
 * @retval 0                  set.
 * @retval ASYNC_EINVAL       low > high; stream is NULL or not a stream.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller.
 * @retval ASYNC_ECLOSED      the stream has ended.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks May run pause_writing inside this call (an open stream
 *            whose buffer is above the new high-water mark).
 */
ASYNC_API int async_stream_set_write_limits(async_stream *stream, size_t high, size_t low);

/**
 * @brief The current write buffer marks.
 *
 * @param[out] out_high receives the high-water mark.
 * @param[out] out_low  receives the low-water mark.
 * @param      stream   the stream.
 * @retval 0                  *out_high and *out_low are set.
 * @retval ASYNC_EINVAL       out_high or out_low is NULL; stream is NULL
 *                            or not a stream.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller.
 * @retval ASYNC_ECLOSED      the stream has ended.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_stream_get_write_limits(size_t *out_high, size_t *out_low, async_stream *stream);

/**
 * @brief The number of bytes in the write buffer.
 *
 * @param[out] out    receives the number.
 * @param      stream the stream.
 * @retval 0                  *out is set.
 * @retval ASYNC_EINVAL       out is NULL; stream is NULL or not a stream.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller.
 * @retval ASYNC_ECLOSED      the stream has ended.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_stream_write_buffer_size(size_t *out, async_stream *stream);

/**
 * @brief Sets the most unconsumed bytes kept (the read limit; default
 * 1 MiB).
 *
 * @param stream the stream.
 * @param limit  the limit in bytes, > 0; a limit above 4 GiB - 1 is taken
 *               as 4 GiB - 1.
 * @retval 0                  set.
 * @retval ASYNC_EINVAL       limit is 0; stream is NULL or not a stream.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller.
 * @retval ASYNC_ECLOSED      the stream has ended.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_stream_set_read_limit(async_stream *stream, size_t limit);

/**
 * @brief Replaces the protocol (and its userdata) from now on.
 *
 * The old userdata gets its release call at once. connection_made is not
 * called again. Called inside data_received, the rest of that delivery
 * goes to the new protocol at once if it has ASYNC_STREAM_DELIVER_EACH,
 * else with the next delivery. The idle timer keeps running; the new
 * protocol's idle_timeout (or the abort) applies when it fires.
 *
 * @param stream   the stream.
 * @param protocol the new callbacks (copied).
 * @param userdata their userdata; may be NULL.
 * @retval 0                  replaced.
 * @retval ASYNC_EINVAL       protocol invalid (as for
 *                            async_stream_adopt()); a reader's protocol
 *                            with a userdata that is not a live reader;
 *                            stream is NULL or not a stream.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller.
 * @retval ASYNC_ECLOSED      connection_lost is scheduled already, or the
 *                            stream has ended.
 * @retval ASYNC_EBUSY        userdata is a reader bound to a stream
 *                            already (async/reader.h).
 * @retval ASYNC_ENOMEM       a stream sharing its callbacks with others
 *                            (a server's) needs a copy of the new ones
 *                            and memory ran out.
 * @ownership On success the stream holds userdata until its
 *            release(userdata); the old userdata is released. On an error
 *            the old protocol and userdata stay and nothing is called.
 * @thread The loop's thread only.
 * @callbacks Runs the old protocol's release(old userdata) inside this
 *            call (when it succeeds).
 */
ASYNC_API int async_stream_set_protocol(async_stream *stream, const async_stream_protocol *protocol, void *userdata);

/**
 * @brief The stream's fd.
 *
 * @param stream the stream.
 * @return the fd (>= 0), ASYNC_EINVAL (stream NULL or not a stream),
 *         ASYNC_EWRONGTHREAD (the loop's thread check refused the caller)
 *         or ASYNC_ECLOSED (the stream has ended).
 * @ownership The fd stays the stream's: do not close it.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_stream_fd(async_stream *stream);

/**
 * @brief The loop of the stream.
 *
 * @param stream the stream.
 * @return the loop, or NULL if stream is NULL, not a stream, has ended,
 *         or the loop's thread check refused the caller.
 * @ownership Borrowed: nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API async_loop *async_stream_loop(async_stream *stream);

/**
 * @brief The local address of a socket stream.
 *
 * @param[out] out      receives the address.
 * @param      capacity the bytes out has room for.
 * @param      stream   the stream.
 * @return the address's length (> 0), or ASYNC_EINVAL (out NULL, stream
 *         NULL, not a stream or not a socket), ASYNC_ERANGE (capacity too
 *         small), ASYNC_EWRONGTHREAD (the loop's thread check refused the
 *         caller) or ASYNC_ECLOSED (the stream has ended).
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_stream_sockname(struct sockaddr *out, size_t capacity, async_stream *stream);

/**
 * @brief The peer's address of a socket stream.
 *
 * @param[out] out      receives the address.
 * @param      capacity the bytes out has room for.
 * @param      stream   the stream.
 * @return the address's length (> 0), or ASYNC_EINVAL (out NULL, stream
 *         NULL, not a stream, not a socket, or not connected any more),
 *         ASYNC_ERANGE (capacity too small), ASYNC_EWRONGTHREAD (the
 *         loop's thread check refused the caller) or ASYNC_ECLOSED (the
 *         stream has ended).
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_stream_peername(struct sockaddr *out, size_t capacity, async_stream *stream);

/**
 * @brief Turns TCP_NODELAY on or off.
 *
 * @param stream the stream.
 * @param on     1 (non-zero) for on, 0 for off.
 * @retval 0                  set.
 * @retval ASYNC_EINVAL       the stream is not TCP, or the option could
 *                            not be set; stream is NULL or not a stream.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller.
 * @retval ASYNC_ECLOSED      the stream has ended.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_stream_set_nodelay(async_stream *stream, int on);

/**
 * @brief Turns TCP keepalive on or off, with the idle time before probes.
 *
 * @param stream the stream.
 * @param on     non-zero for on, 0 for off.
 * @param idle_s the idle time before probes in seconds (up to INT32_MAX);
 *               0 keeps the system default.
 * @retval 0                  set.
 * @retval ASYNC_EINVAL       idle_s above INT32_MAX; the stream is not
 *                            TCP, or an option could not be set; stream is
 *                            NULL or not a stream.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller.
 * @retval ASYNC_ECLOSED      the stream has ended.
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_stream_set_keepalive(async_stream *stream, int on, uint32_t idle_s);

/**
 * @brief Ends the stream with ASYNC_ETIMEDOUT when nothing was read or
 * written for timeout_ms, or, when the protocol has an idle_timeout
 * callback, calls it instead (see async_stream_protocol).
 *
 * Each call restarts the period from now; inside idle_timeout it sets the
 * period the timer is armed with next (0: no further calls).
 *
 * @param stream     the stream.
 * @param timeout_ms the idle period; 0 turns it off (the default).
 * @retval 0                  set.
 * @retval ASYNC_EINVAL       stream is NULL or not a stream.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller.
 * @retval ASYNC_ECLOSED      connection_lost is scheduled already, or the
 *                            stream has ended.
 * @retval ASYNC_ENOMEM       out of memory (the first non-zero period).
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call; idle_timeout runs from the loop.
 */
ASYNC_API int async_stream_set_idle_timeout(async_stream *stream, uint64_t timeout_ms);

/**
 * @brief Takes a reference to stream: its memory stays valid (see
 * Lifetime in the file comment) until the matching async_stream_release(),
 * even after it has ended.
 *
 * Allowed anywhere on the loop's thread, including inside any of the
 * stream's callbacks (connection_lost and release too) and after it ended.
 *
 * @param stream the stream.
 * @retval 0                  a reference is taken.
 * @retval ASYNC_EINVAL       stream is NULL or not a stream.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller
 *                            (a stream that has not ended).
 * @retval ASYNC_ERANGE       2^32 - 1 references are held already: none
 *                            taken.
 * @ownership The caller owns one more reference, to drop with
 *            async_stream_release().
 * @thread As async_stream_release().
 * @callbacks None run inside this call.
 */
ASYNC_API int async_stream_retain(async_stream *stream);

/**
 * @brief Drops a reference taken with async_stream_retain().
 *
 * It never closes the stream. When it was the last one and the stream has
 * ended, the memory is freed inside this call; otherwise it goes when the
 * stream ends. Allowed inside the stream's callbacks: the memory is never
 * freed while a library call on the stream is still running. It never
 * touches the loop, so it may come after async_loop_free().
 *
 * @param stream the stream.
 * @retval 0                  the reference is dropped.
 * @retval ASYNC_EINVAL       stream is NULL or not a stream, or the caller
 *                            has no reference left: one more release than
 *                            retains is refused while the memory is there;
 *                            after the last reference the memory is gone
 *                            and a further release is a use after free,
 *                            undefined as in any C library.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller
 *                            (a stream that has not ended).
 * @ownership Ends one of the caller's references.
 * @thread The loop's thread while the loop exists; after
 *         async_loop_free() any thread, one call on a stream at a time.
 * @callbacks None run inside this call (release(userdata) ran at the
 *            end).
 */
ASYNC_API int async_stream_release(async_stream *stream);

/**
 * @brief The userdata the stream's callbacks get now: the latest
 * async_stream_set_protocol()'s, else adopt's, the factory's or
 * connect's.
 *
 * @param stream the stream.
 * @return the userdata, or NULL if stream is NULL, not a stream, has
 *         ended (its userdata was released), or the loop's thread check
 *         refused the caller.
 * @ownership Borrowed: the userdata stays the caller's.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API void *async_stream_userdata(async_stream *stream);

/**
 * @brief Answers a DATA record of a stream in queue mode (async/queue.h):
 * the first n bytes it showed are consumed, and reading resumes.
 *
 * The bytes not consumed come back in front of newer ones in the next DATA
 * record, as with data_received's return (n above the record's length
 * counts as its length). The record's bytes are invalid after this call.
 *
 * @param stream the stream (its protocol is async_queue_protocol()).
 * @param n      the bytes consumed, from the front.
 * @retval 0                  consumed; reading again.
 * @retval ASYNC_EINVAL       stream is NULL, not a stream, or not in queue
 *                            mode.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller.
 * @retval ASYNC_ECLOSED      the stream has ended.
 * @retval ASYNC_ESTATE       no DATA record of the stream waits for an
 *                            answer.
 * @retval ASYNC_ENOMEM       as for async_stream_resume_reading().
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call; the next DATA record comes from
 *            the loop.
 */
ASYNC_API int async_stream_consume(async_stream *stream, size_t n);

#ifdef __cplusplus
}
#endif

#endif
