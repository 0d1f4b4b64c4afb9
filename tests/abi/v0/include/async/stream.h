/*
 * async_stream: a stream transport (a connected socket, a pipe, a tty)
 * driven by a protocol, as asyncio's transports and protocols (PEP 3156),
 * with the extensions asked for in its design discussion: consumed-bytes
 * reads, a write-drained callback and zero-copy writes.
 *
 * Callback order, per stream:
 * - connection_made runs first, through the ready queue: never inside the
 *   call that created the stream (from a callback, after that callback
 *   returned; from outside the loop, in the next iteration). Reading
 *   starts only after it returned.
 * - data_received(data, len) returns how many bytes it consumed (0..len);
 *   the rest is kept and presented again, in front of newer data, at the
 *   next delivery. Reads go through one buffer shared by the loop's streams,
 *   so an idle stream holds no read buffer; only an unconsumed tail is kept
 *   per stream, bounded by the read limit (default 1 MiB): a tail that
 *   reaches it with nothing consumed ends the stream with ASYNC_ENOBUFS.
 * - With ASYNC_STREAM_DELIVER_EACH in the protocol's flags, data_received
 *   is called again at once with the rest of the same bytes while it
 *   consumes more than 0 bytes and bytes remain, so it may handle one
 *   message per call (see the flag below).
 * - At end of file, an unconsumed tail is delivered once more, then
 *   eof_received runs: a non-zero return keeps the stream open for writing
 *   (half-close; call async_stream_close() later), zero closes it.
 * - idle_timeout runs when nothing was read or written for the period of
 *   async_stream_set_idle_timeout(), in place of the ASYNC_ETIMEDOUT abort.
 * - pause_writing runs inside async_stream_write*() when the write buffer
 *   goes strictly above the high-water mark (default 64 KiB);
 *   resume_writing when it drains to the low-water mark or below (default
 *   16 KiB); write_drained when it is empty again (after resume_writing).
 * - connection_lost runs exactly once, last, never inside a call into the
 *   library: error 0 after a clean end (EOF, close, abort), an ASYNC_E*
 *   code otherwise (and then no eof_received). No data_received comes after
 *   eof_received, close or abort.
 * - A pipe's write end is never read; when its reader closes, the stream
 *   ends (as asyncio's write pipe transport) with connection_lost(0) if
 *   nothing was waiting to be written, ASYNC_EPIPE if a write was pending
 *   or failed. A socket whose peer closed with bytes of ours unread reports
 *   ASYNC_ECONNRESET.
 * - release(userdata) follows connection_lost: the final notification for
 *   the protocol's userdata. The stream has then ended.
 *
 * Lifetime, one rule for every stream (accepted, connected or adopted) and
 * for datagram transports (async/datagram.h): a stream's memory stays valid
 * until its connection_lost and release have returned AND every
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
 * hold async_loop_free() back (a stream counts as a live object of its loop,
 * ASYNC_EBUSY, only until it ends), and async_stream_release() never touches
 * the loop, so a binding's finalizer may release it after the loop is freed.
 *
 * Any callback but data_received and connection_lost may be NULL.
 * Writes never raise SIGPIPE (sockets use MSG_NOSIGNAL; pipe writes hold
 * SIGPIPE back and discard one they caused). All functions: loop thread only.
 */
#ifndef ASYNC_STREAM_H
#define ASYNC_STREAM_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

struct iovec;
struct sockaddr;

typedef struct async_stream async_stream;

/* async_stream_protocol flags (a bit set; 0 is the default behaviour). */
enum async_stream_flags {
  /*
   * One message per call: after data_received consumed n bytes with
   * 0 < n < len, it is called again at once, in the same delivery, with the
   * len - n bytes that follow (the same memory, no copy). This repeats
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
  ASYNC_STREAM_FLAGS_FORCE32 = 0x7FFFFFFF
};

/*
 * A stream protocol: callbacks plus the userdata given with it. size:
 * sizeof(async_stream_protocol), read as for async_connect_options
 * (async/connect.h): fields size does not cover are NULL, a size below the
 * first version's or non-zero fields the library does not know are
 * ASYNC_EINVAL. Every callback's default is NULL (not called), but
 * data_received and connection_lost are required. The library copies the
 * struct.
 */
typedef struct async_stream_protocol {
  uint32_t size;
  void (*connection_made)(async_stream *stream, void *userdata);
  size_t (*data_received)(async_stream *stream, const uint8_t *data, size_t len, void *userdata);
  int (*eof_received)(async_stream *stream, void *userdata);
  void (*connection_lost)(async_stream *stream, int error, void *userdata);
  void (*pause_writing)(async_stream *stream, void *userdata);
  void (*resume_writing)(async_stream *stream, void *userdata);
  void (*write_drained)(async_stream *stream, void *userdata);
  void (*release)(void *userdata);
  /* enum async_stream_flags bits; unknown bits: ASYNC_EINVAL. */
  uint32_t flags;
  /*
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
   * before it). NULL: the ASYNC_ETIMEDOUT abort.
   */
  void (*idle_timeout)(async_stream *stream, void *userdata);
} async_stream_protocol;

/* C convenience, the same as { sizeof(async_stream_protocol) }. */
#define ASYNC_STREAM_PROTOCOL_INIT \
  { sizeof(async_stream_protocol), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }

/*
 * Makes a stream of fd, a connected stream socket, pipe, tty or any fd
 * readable and/or writable as a byte stream. The stream owns fd from then
 * on (made non-blocking and close-on-exec; closed after connection_lost).
 * TCP sockets get TCP_NODELAY. protocol is copied; userdata goes to every
 * callback and to release.
 * Errors (fd and userdata stay the caller's, nothing is called):
 * ASYNC_EINVAL (NULL, a protocol size the library refuses, data_received or
 * connection_lost NULL, unknown flag bits, a listening or datagram socket), ASYNC_EBADF (fd not
 * open), ASYNC_EBUSY (a reader bound already, async/reader.h), ASYNC_ENOMEM.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_stream_adopt(async_stream **out, async_loop *loop, int fd, const async_stream_protocol *protocol,
                                 void *userdata);

/*
 * Sends data now as far as the fd takes it and copies the rest into the
 * write buffer. len 0 does nothing. Errors: ASYNC_EINVAL (NULL stream, NULL
 * data with len > 0), ASYNC_ECLOSED (closing, aborted or lost: nothing is
 * sent), ASYNC_ESTATE (after async_stream_write_eof()), ASYNC_ENOMEM (nothing
 * of data is kept; what was sent stays sent, the stream is aborted with
 * ASYNC_ENOMEM). A send error is not returned: it ends the stream through
 * connection_lost.
 * Callbacks: May run pause_writing inside this call.
 */
ASYNC_API int async_stream_write(async_stream *stream, const void *data, size_t len);

/*
 * As async_stream_write() for iovcnt buffers (0..1024), in order.
 * Callbacks: May run pause_writing inside this call.
 */
ASYNC_API int async_stream_writev(async_stream *stream, const struct iovec *iov, int iovcnt);

/*
 * Zero-copy write: the stream keeps a pointer to data until it is sent or
 * dropped, then calls done(done_userdata) exactly once: always from the
 * loop, through the ready queue, never inside this call (also when all of
 * data went out at once) or any other call (abort, close); done callbacks
 * run in the order of their writes, and before connection_lost when the
 * write was dropped (abort, loss). data must stay valid until done. On an
 * error return done is not called and data stays the caller's.
 * Errors: as async_stream_write() (done NULL: ASYNC_EINVAL).
 * Callbacks: May run pause_writing inside this call (as write).
 */
ASYNC_API int async_stream_write_zc(async_stream *stream, const void *data, size_t len, async_release_fn done,
                                    void *done_userdata);

/*
 * Shuts the write side once the buffer is flushed (shutdown(SHUT_WR) for
 * sockets, close for a pipe's write end). Idempotent. Reading goes on.
 * Errors: ASYNC_EINVAL, ASYNC_ECLOSED.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_stream_write_eof(async_stream *stream);

/*
 * Closes: reading stops now, the write buffer is flushed, then
 * connection_lost(0). Idempotent (also after abort). Errors: ASYNC_EINVAL.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_stream_close(async_stream *stream);

/*
 * Aborts: the write buffer is dropped, then connection_lost(0) through the
 * ready queue, never inside this call (the dropped zero-copy writes' done
 * callbacks are queued before it). Idempotent. Errors: ASYNC_EINVAL.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_stream_abort(async_stream *stream);

/*
 * Stops / restarts data_received. Idempotent; no effect once closing.
 * Paused inside data_received, the stream keeps the bytes not consumed.
 * With ASYNC_STREAM_DELIVER_EACH, resume_reading then presents them again
 * through the loop, before any newer bytes, without waiting for more
 * data (without the flag, they come in front of the next read). Bytes
 * kept that way past the end of file are presented at resume whatever the
 * protocol is by then (once, without the flag), then eof_received. Errors:
 * ASYNC_EINVAL, ASYNC_ENOMEM (resume_reading could not queue that
 * delivery: the stream is aborted with ASYNC_ENOMEM, as by
 * async_stream_abort()). Callbacks: none run inside these calls.
 */
ASYNC_API int async_stream_pause_reading(async_stream *stream);
ASYNC_API int async_stream_resume_reading(async_stream *stream);

/*
 * 1 if data_received can be called (not paused, not closing, not a
 * write-only fd such as a pipe's write end), else 0. Errors: ASYNC_EINVAL.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_stream_is_reading(async_stream *stream);

/*
 * Sets the write buffer's high- and low-water marks in bytes (low <= high;
 * high 0 pauses whenever anything is buffered, low 0 resumes only when
 * empty). May call pause_writing at once. Errors: ASYNC_EINVAL (low > high).
 * Callbacks: May run pause_writing inside this call.
 */
ASYNC_API int async_stream_set_write_limits(async_stream *stream, size_t high, size_t low);

/*
 * The current marks. Errors: ASYNC_EINVAL.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_stream_get_write_limits(size_t *out_high, size_t *out_low, async_stream *stream);

/*
 * Bytes in the write buffer. Errors: ASYNC_EINVAL.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_stream_write_buffer_size(size_t *out, async_stream *stream);

/*
 * The most unconsumed bytes kept (> 0; default 1 MiB; a limit above
 * 4 GiB - 1 is taken as 4 GiB - 1). Errors: ASYNC_EINVAL.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_stream_set_read_limit(async_stream *stream, size_t limit);

/*
 * Replaces the protocol (and its userdata) from now on; the old userdata
 * gets its release call at once. connection_made is not called again.
 * Called inside data_received, the rest of that delivery goes to the new
 * protocol at once if it has ASYNC_STREAM_DELIVER_EACH, else with the
 * next delivery. The idle timer keeps running; the new protocol's
 * idle_timeout (or the abort) applies when it fires. Callbacks: the old
 * protocol's release runs inside this call.
 * Errors: ASYNC_EINVAL (as for adopt), ASYNC_ECLOSED (connection_lost
 * already scheduled), ASYNC_EBUSY (as for adopt), ASYNC_ENOMEM (a stream sharing its callbacks with
 * others, e.g. a server's, needs a copy of the new ones). On an error the
 * old protocol and userdata stay and nothing is called.
 * Callbacks: Runs the old protocol's release(old userdata) inside this call
 * (when it succeeds).
 */
ASYNC_API int async_stream_set_protocol(async_stream *stream, const async_stream_protocol *protocol, void *userdata);

/*
 * The stream's fd (owned by the stream). Errors: ASYNC_EINVAL.
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_stream_fd(async_stream *stream);

/*
 * The loop of the stream, or NULL if stream is not one or has ended.
 * Callbacks: none run inside this call.
 */
ASYNC_API async_loop *async_stream_loop(async_stream *stream);

/*
 * Local / peer address of a socket stream into out (capacity bytes);
 * returns its length. Errors: ASYNC_EINVAL (not a socket, NULL),
 * ASYNC_ERANGE (capacity too small).
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_stream_sockname(struct sockaddr *out, size_t capacity, async_stream *stream);
ASYNC_API int async_stream_peername(struct sockaddr *out, size_t capacity, async_stream *stream);

/*
 * TCP_NODELAY on (1) or off (0). Errors: ASYNC_EINVAL (not TCP).
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_stream_set_nodelay(async_stream *stream, int on);

/*
 * TCP keepalive: on, and the idle time before probes (seconds, > 0; 0
 * keeps the system default). Errors: ASYNC_EINVAL (not TCP).
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_stream_set_keepalive(async_stream *stream, int on, uint32_t idle_s);

/*
 * Ends the stream with ASYNC_ETIMEDOUT when nothing was read or written for
 * timeout_ms (0 turns it off; the default), or, when the protocol has an
 * idle_timeout callback, calls it instead (see async_stream_protocol).
 * Each call restarts the period from now; inside idle_timeout it sets the
 * period the timer is armed with next (0: no further calls). Errors:
 * ASYNC_EINVAL, ASYNC_ECLOSED, ASYNC_ENOMEM. Callbacks: none run inside
 * this call.
 */
ASYNC_API int async_stream_set_idle_timeout(async_stream *stream, uint64_t timeout_ms);

/*
 * Takes a reference to stream: its memory stays valid (see Lifetime above)
 * until the matching async_stream_release(), even after it has ended.
 * Allowed anywhere on the loop thread, including inside any of the
 * stream's callbacks (connection_lost and release too) and after it ended.
 * Errors: ASYNC_EINVAL (NULL, not a stream), ASYNC_ERANGE (2^32 - 1
 * references held already: none taken). Thread: as async_stream_release().
 * Callbacks: none run inside this call.
 */
ASYNC_API int async_stream_retain(async_stream *stream);

/*
 * Drops a reference taken with async_stream_retain(). It never closes the
 * stream. When it was the last one and the stream has ended, the memory is
 * freed inside this call; otherwise it goes when the stream ends. Allowed
 * inside the stream's callbacks: the memory is never freed while a library
 * call on the stream is still running. It never touches the loop, so it
 * may come after async_loop_free().
 * Errors: ASYNC_EINVAL (NULL, not a stream, or no reference of the caller
 * left: one more release than retains is refused while the memory is
 * there; after the last reference the memory is gone and a further
 * release is a use after free, undefined as in any C library).
 * Thread: the loop thread while the loop exists; after async_loop_free()
 * any thread, one call on a stream at a time.
 * Callbacks: none run inside this call (release(userdata) ran at the end).
 */
ASYNC_API int async_stream_release(async_stream *stream);

/*
 * The userdata the stream's callbacks get now (the latest
 * async_stream_set_protocol()'s, else adopt's or the factory's or
 * connect's), borrowed. NULL for NULL, not a stream, or an ended stream
 * (its userdata was released). Callbacks: none run inside this call.
 */
ASYNC_API void *async_stream_userdata(async_stream *stream);

#ifdef __cplusplus
}
#endif

#endif
