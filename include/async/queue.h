/**
 * @file
 * @brief async_queue: a pull-style completion queue. Instead of calling a
 * callback per event, the loop writes records (a user token, a kind, a
 * result, and the object or bytes concerned) into a queue that the caller
 * drains in batches with async_queue_poll(), the model of mio's Poll and
 * Go's netpoller. One crossing per batch makes it the cheap path for
 * language bindings (docs/design.md "Completion queue").
 *
 * What goes through a queue, each with the caller's uint64_t token:
 * - async_queue_post(): a POST record, from any thread.
 * - A future given to async_queue_watch(): one FUTURE record when it is
 *   done (its status in result).
 * - Objects whose userdata is a binding (async_queue_bind()):
 *   - a stream created with async_queue_protocol() (adopt, connect,
 *     set_protocol, a reconnector): CONNECTED, DATA, EOF, WRITABLE, then
 *     LOST last;
 *   - a server listening with async_queue_factory(): an ACCEPT record per
 *     connection, whose stream reads nothing until async_queue_accept()
 *     gives it its own token;
 *   - a timer started with async_queue_timer_start(): a TIMER record per
 *     expiry.
 *   A server's or timer's binding ends with the CLOSED record of
 *   async_queue_close(). Close them with it: closed with
 *   async_handle_close() (or async_loop_shutdown()), their binding stays
 *   live and the queue cannot be freed (ASYNC_EBUSY).
 *
 * Rules:
 * - Records come out in the order the loop produced them.
 * - A record is produced only from inside the loop's run (as a callback
 *   would run), never inside the call that caused it: a post or a write
 *   queues nothing the same call could see.
 * - One final record per token handed over: LOST for a stream's binding
 *   (also when the stream never connected or was given another protocol:
 *   ASYNC_ECANCELED), CLOSED for a server's or timer's, FUTURE for a
 *   watch. After it, the token is the caller's again.
 * - The queue keeps room for every final record it owes, reserved when the
 *   binding or watch is made (ASYNC_ENOMEM then, never later). Other
 *   records that cannot be stored for lack of memory: a stream is aborted
 *   with ASYNC_ENOMEM (its LOST record says so), a timer expiry is dropped
 *   (as overdue expiries are merged).
 * - No allocation per record: records live in one ring that grows to the
 *   largest backlog and is reused.
 *
 * Callbacks that must answer at once, in queue mode:
 * - data_received: the queue takes the bytes (copied once into the
 *   binding's buffer), publishes them in a DATA record and pauses the
 *   stream. The caller answers with async_stream_consume(stream, n): the
 *   first n bytes are dropped, reading resumes, and bytes not consumed come
 *   back in front of newer ones in the next DATA record (the consumed-bytes
 *   rule of async/stream.h). A stream whose DATA record is not answered
 *   reads nothing more: that is its flow control. The read limit applies
 *   as to a callback protocol: unconsumed plus newly read bytes above it
 *   end the stream with ASYNC_ENOBUFS.
 * - eof_received: answers "keep open"; the EOF record follows the last
 *   DATA record and the caller closes the stream (async_stream_close())
 *   when done writing.
 * - The server's factory: accepts every connection with a binding that
 *   carries the server's token until async_queue_accept(). A connection
 *   the library could not set up (out of memory) gives a LOST record with
 *   the server's token, ASYNC_ECANCELED and a NULL object.
 * - pause_writing is not a record (it would be produced inside the write
 *   call): compare async_stream_write_buffer_size() with the high-water
 *   mark after a write and wait for the WRITABLE record.
 *
 * Lifetimes: a DATA record's bytes stay valid until the next
 * async_stream_consume() on its stream or, once the stream's LOST record
 * was returned, until the next async_queue_poll(). A stream in a record
 * stays valid (the binding holds a reference) until the poll after the
 * one that returned its LOST record. Futures stay the caller's; a CLOSED
 * record's object is NULL (the handle is gone).
 *
 * All functions: the loop's thread only, but async_queue_post() (any
 * thread) and async_queue_protocol() / async_queue_factory() (pure).
 */
#ifndef ASYNC_QUEUE_H
#define ASYNC_QUEUE_H

#include "common.h"
#include "server.h"
#include "stream.h"

#ifdef __cplusplus
extern "C" {
#endif

/** @brief A completion queue on one loop (a loop may have several). */
typedef struct async_queue async_queue;

/** @brief What a record reports (async_event.kind). */
enum async_event_kind {
  ASYNC_EVENT_POST = 1,      /**< async_queue_post(); result 0, object NULL. */
  ASYNC_EVENT_TIMER = 2,     /**< a timer of async_queue_timer_start() expired; object: the timer. */
  ASYNC_EVENT_CLOSED = 3,    /**< async_queue_close() finished (final); object NULL. */
  ASYNC_EVENT_FUTURE = 4,    /**< a watched future is done (final); result: its status; object: the future. */
  ASYNC_EVENT_CONNECTED = 5, /**< a stream's connection_made; object: the stream. */
  ASYNC_EVENT_DATA = 6,      /**< bytes (data, len) to answer with async_stream_consume(); object: the stream. */
  ASYNC_EVENT_EOF = 7,       /**< the peer's end of file; object: the stream (still open for writing). */
  ASYNC_EVENT_WRITABLE = 8,  /**< the write buffer drained to the low-water mark; object: the stream. */
  ASYNC_EVENT_LOST = 9,      /**< the stream ended (final); result: 0 or an ASYNC_E* code; object: the stream. */
  ASYNC_EVENT_ACCEPT = 10,   /**< a server accepted object (a stream); token: the server's. */
  ASYNC_EVENT_KIND_FORCE32 = 0x7FFFFFFF /**< Not a kind: keeps the enum 32 bits wide. */
};

/** @brief One record. The layout is fixed (a later version adds a new function, never a field). */
typedef struct async_event {
  uint64_t token;      /**< the token given with the post, watch, binding or accept. */
  uint32_t kind;       /**< an enum async_event_kind. */
  int32_t result;      /**< 0, or the status or error the kind says. */
  void *object;        /**< the stream, future, timer or NULL, as the kind says. */
  const uint8_t *data; /**< DATA: the bytes; else NULL. */
  size_t len;          /**< DATA: their number; else 0. */
} async_event;

/**
 * @brief Creates a completion queue on a loop.
 *
 * @param[out] out  receives the queue.
 * @param      loop the loop whose events the queue collects.
 * @retval 0                  *out is the new queue.
 * @retval ASYNC_EINVAL       out is NULL, loop is NULL or not a loop.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller.
 * @retval ASYNC_ENOMEM       out of memory.
 * @ownership The queue is the caller's: free it with async_queue_free().
 *            The loop cannot be freed (ASYNC_EBUSY) before.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_queue_new(async_queue **out, async_loop *loop);

/**
 * @brief Frees a queue that owes no final record.
 *
 * Records not yet polled (none final, then) are dropped.
 *
 * @param queue the queue.
 * @retval 0                  freed.
 * @retval ASYNC_EINVAL       queue is NULL or not a queue.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller.
 * @retval ASYNC_EBUSY        a binding or watch has not had its final
 *                            record polled yet, or a poll is running:
 *                            nothing changes.
 * @ownership Ends the caller's ownership. Posts racing with this call
 *            are the caller's error (stop posting threads first).
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_queue_free(async_queue *queue);

/**
 * @brief Copies up to capacity records out of the queue, running the loop
 * while none is there, for up to timeout_ms.
 *
 * With records queued, returns them at once without running the loop.
 * Else: timeout_ms 0 runs one non-blocking iteration; > 0 runs iterations
 * until a record comes or the time is up; < 0 waits for a record however
 * long (also with nothing else alive: a post from another thread can come).
 * Records beyond capacity stay for the next call, in order. Never call it
 * from inside a callback of the loop (the loop is running: ASYNC_EBUSY).
 *
 * @param[out] out       receives the records.
 * @param      capacity  the records out has room for, > 0.
 * @param      queue     the queue.
 * @param      timeout_ms how long to wait for the first record.
 * @return the number of records (0 when the time ran out), or
 *         ASYNC_EINVAL (out NULL, capacity 0, queue NULL or not a queue),
 *         ASYNC_EWRONGTHREAD (the loop's thread check refused the caller),
 *         ASYNC_EBUSY (the loop is running: a call from inside one of its
 *         callbacks, async_loop_walk() or async_loop_shutdown()) or
 *         ASYNC_ENOMEM (the timeout could not be armed: out of memory).
 * @ownership The records are copies; their pointers are borrowed as the
 *            file comment says.
 * @thread The loop's thread only.
 * @callbacks Runs the loop: any callback of the loop may run inside this
 *            call (those of objects not bound to a queue).
 */
ASYNC_API int async_queue_poll(async_event *out, size_t capacity, async_queue *queue, int64_t timeout_ms);

/**
 * @brief Queues a POST record with token, from any thread, and wakes the
 * loop.
 *
 * Posts from one thread come out in posting order. The record comes out
 * of a later poll on the loop's thread, never inside this call.
 *
 * @param queue the queue.
 * @param token returned in the record.
 * @retval 0             queued.
 * @retval ASYNC_EINVAL  queue is NULL or not a queue.
 * @retval ASYNC_ECLOSED the queue's loop is freed.
 * @retval ASYNC_ENOMEM  out of memory (nothing queued).
 * @ownership Nothing changes hands.
 * @thread Any thread, until async_queue_free() (the caller makes sure no
 *         post races with it).
 * @callbacks None run inside this call.
 */
ASYNC_API int async_queue_post(async_queue *queue, uint64_t token);

/**
 * @brief Asks for one FUTURE record with token when future is done.
 *
 * A future done already gives its record from the loop, as a done callback
 * would run. A future freed while pending gives ASYNC_ECANCELED.
 *
 * @param queue  the queue.
 * @param future a future of the queue's loop.
 * @param token  returned in the record.
 * @retval 0                  watched; the FUTURE record will come.
 * @retval ASYNC_EINVAL       queue or future NULL or not what they should
 *                            be, or of another loop.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller.
 * @retval ASYNC_ENOMEM       out of memory: nothing will come.
 * @ownership The future stays the caller's (free it after its record).
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_queue_watch(async_queue *queue, async_future *future, uint64_t token);

/**
 * @brief Makes a binding: a userdata that routes one object's events to the
 * queue with token.
 *
 * Hand it over, once, as the userdata of async_queue_protocol() (to
 * async_stream_adopt(), async_tcp_connect(), async_unix_connect(),
 * async_stream_set_protocol(), async_reconnector_start()), of
 * async_queue_factory() (async_tcp_listen() and the other listens), or of
 * a timer (async_timer_new(), then async_queue_timer_start()).
 *
 * @param[out] out   receives the binding.
 * @param      queue the queue.
 * @param      token returned in the object's records.
 * @retval 0                  *out is the binding.
 * @retval ASYNC_EINVAL       out is NULL, queue is NULL or not a queue.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller.
 * @retval ASYNC_ENOMEM       out of memory.
 * @ownership The binding is the caller's until a call taking it succeeds;
 *            then the object's final record ends it. One never handed
 *            over (the call failed) is freed with async_queue_unbind().
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_queue_bind(void **out, async_queue *queue, uint64_t token);

/**
 * @brief Frees a binding that no object took.
 *
 * @param queue   the queue.
 * @param binding the binding.
 * @retval 0                  freed.
 * @retval ASYNC_EINVAL       queue is NULL or not a queue, binding is not
 *                            one of its bindings.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller.
 * @retval ASYNC_EBUSY        an object uses the binding (it has produced a
 *                            record or was started): nothing changes.
 * @ownership Ends the caller's ownership.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_queue_unbind(async_queue *queue, void *binding);

/**
 * @brief The stream protocol of queue mode (userdata: a binding).
 *
 * @return the protocol; static, never NULL.
 * @ownership Static storage: never free it.
 * @thread Any thread.
 * @callbacks None run inside this call.
 */
ASYNC_API const async_stream_protocol *async_queue_protocol(void);

/**
 * @brief The server factory of queue mode (userdata: a binding).
 *
 * Each accepted connection gets a binding with the server's token and
 * gives an ACCEPT record from the loop (where a stream's connection_made
 * would run); refused for lack of memory, it is closed and nothing comes.
 *
 * @return the factory, never NULL.
 * @ownership Nothing changes hands.
 * @thread Any thread.
 * @callbacks None run inside this call.
 */
ASYNC_API async_stream_factory async_queue_factory(void);

/**
 * @brief Gives an accepted stream (an ACCEPT record's object) its own token
 * and starts reading it.
 *
 * Until then it reads nothing and its records carry the server's token
 * (a LOST record if it ends before).
 *
 * @param stream the stream.
 * @param token  its records' token from now on.
 * @retval 0                  set; reading.
 * @retval ASYNC_EINVAL       stream is NULL or not a stream, not in queue
 *                            mode, or accepted already.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller.
 * @retval ASYNC_ECLOSED      the stream has ended.
 * @retval ASYNC_ENOMEM       as for async_stream_resume_reading().
 * @ownership Nothing changes hands.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_queue_accept(async_stream *stream, uint64_t token);

/**
 * @brief Starts (or restarts) a timer whose userdata is a binding of queue,
 * so that each expiry gives a TIMER record.
 *
 * As async_timer_start() otherwise; async_timer_stop(), async_timer_again()
 * and async_timer_set_repeat() work on it as usual.
 *
 * @param queue      the queue.
 * @param timer      the timer (created with a binding of queue as its
 *                   userdata).
 * @param timeout_ms the first expiry, from now.
 * @param repeat_ms  the period after it; 0: once.
 * @retval 0                  started.
 * @retval ASYNC_EINVAL       queue or timer NULL or not what they should
 *                            be, the timer's userdata is not a binding of
 *                            queue or is one of another object.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller.
 * @retval ASYNC_ECLOSED      the timer is closing.
 * @retval ASYNC_ENOMEM       out of memory (the timer is not started).
 * @ownership The binding now belongs to the timer until its CLOSED record.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_queue_timer_start(async_queue *queue, async_timer *timer, uint64_t timeout_ms, uint64_t repeat_ms);

/**
 * @brief Closes a handle whose userdata is a binding of queue (a timer or
 * a server); a CLOSED record with its token follows, the binding's final
 * record.
 *
 * @param queue  the queue.
 * @param handle the handle (async_timer_handle(), async_server_handle()).
 * @retval 0                  closing.
 * @retval ASYNC_EINVAL       queue or handle NULL or not what they should
 *                            be, or the handle's userdata is not a binding
 *                            of queue.
 * @retval ASYNC_EWRONGTHREAD the loop's thread check refused the caller.
 * @retval ASYNC_ECLOSED      the handle is closing already.
 * @ownership The handle's memory goes after the record is queued.
 * @thread The loop's thread only.
 * @callbacks None run inside this call.
 */
ASYNC_API int async_queue_close(async_queue *queue, async_handle *handle);

#ifdef __cplusplus
}
#endif

#endif
