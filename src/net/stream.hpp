// A stream transport on one fd driven by a protocol (DESIGN §7): consumed-
// bytes reads through the loop's shared buffer, writes sent at once with
// only the rest queued, high/low-water flow control, close/abort, and
// connection_lost exactly once through the ready queue. Its bytes come from
// and go to either the fd (inline: the hot path) or a layer sitting on a
// lower stream (net/layer.hpp), with the same contract above.
#pragma once

#include <async/stream.h>
#include <async/watcher.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>

#include "ev/ev_backend.hpp"
#include "net/core_names.hpp"
#include "net/transport.hpp"
#include "util/list.hpp"
#include "util/tagged.hpp"
#include "util/water_marks.hpp"

namespace async::net {

class Layer;

class Stream : public util::Tagged<0x5354524d>, public Transport<Stream> {  // "STRM"
 public:
  static constexpr std::size_t kDefaultReadLimit = std::size_t{1024} * 1024;

  // A protocol's callbacks, shared by the streams made with the same ones
  // (reference-counted).
  struct Protocol;
  // The last protocol record a maker of many streams (a server) used,
  // offered to its next stream: a factory that returns the same callbacks
  // every time gets one record for all its streams.
  class ProtocolCache {
   public:
    ProtocolCache() = default;
    ProtocolCache(const ProtocolCache &) = delete;
    ProtocolCache &operator=(const ProtocolCache &) = delete;
    ~ProtocolCache();

    // The kept callbacks when protocol (as a factory returned it, every
    // field present) has the same ones, so the caller can use them
    // without copying; else nullptr.
    const async_stream_protocol *match(const async_stream_protocol *protocol) const noexcept;

   private:
    friend class Stream;
    Protocol *last_ = nullptr;
  };

  // 0, or ASYNC_EINVAL/EBADF/ENOMEM with fd and userdata left to the caller.
  static int adopt(Stream **out, Loop &loop, int fd, const async_stream_protocol &protocol, void *userdata,
                   ProtocolCache *cache = nullptr) noexcept;
  // What adopt_socket() knows of its socket: a Unix one, a TCP one, or a
  // TCP one with TCP_NODELAY on already (accepted from a listener that
  // had it, which Linux passes on), which spares a setsockopt.
  enum class SocketKind : std::uint8_t { kUnix, kTcp, kTcpNoDelay };
  // adopt() for a connected stream socket the library made itself with
  // SOCK_NONBLOCK | SOCK_CLOEXEC (accepted or connected): nothing to probe.
  static int adopt_socket(Stream **out, Loop &loop, int fd, SocketKind kind, const async_stream_protocol &protocol,
                          void *userdata, ProtocolCache *cache) noexcept;
  // What a server keeps of the streams it accepted: their list (each one
  // until its connection_lost, instead of the loop's registry) and the
  // protocol record they share.
  struct Accepted {
    util::List list;
    ProtocolCache protocols;
  };
  // adopt_socket() for a socket a server accepted, onto accepted; 0 or
  // ASYNC_ENOMEM. Six arguments, all in registers, and no stream back.
  static int accept(Loop &loop, int fd, SocketKind kind, const async_stream_protocol &protocol, void *userdata,
                    Accepted &accepted) noexcept;
  // A stream over layer instead of an fd, with layer made lower's protocol
  // (lower_protocol with layer as userdata; nullptr: it is already) once
  // nothing else can fail (Layer::push()): 0, or ASYNC_ENOMEM with nothing
  // changed.
  static int open_layered(Stream **out, Stream &lower, Layer &layer, const async_stream_protocol *lower_protocol,
                          const async_stream_protocol &protocol, void *userdata,
                          ProtocolCache *cache = nullptr) noexcept;
  // async_stream_adopt(): adopt() with a reader protocol bound first (and
  // unbound again on failure). The functions below live in stream_socket.cpp.
  static int adopt_bound(Stream **out, Loop &loop, int fd, const async_stream_protocol &protocol,
                         void *userdata) noexcept;
  // Copies the caller's protocol into out (util::copy_sized()): true for a
  // protocol async_stream_adopt()/set_protocol() accept.
  static bool copy_protocol(async_stream_protocol &out, const async_stream_protocol *protocol) noexcept;

  static Stream *from(async_stream *s) noexcept { return reinterpret_cast<Stream *>(s); }
  async_stream *c_stream() noexcept { return reinterpret_cast<async_stream *>(this); }

  // done != nullptr: zero-copy (iovcnt 1, memory borrowed until done runs).
  int write(const iovec *iov, int iovcnt, async_release_fn done, void *done_userdata) noexcept;
  // write() of one buffer, copied if not sent at once (async_stream_write).
  int write(const void *data, std::size_t len) noexcept;
  int write_eof() noexcept;
  void pause_reading() noexcept;
  // 0, or ASYNC_ENOMEM when the kept bytes' delivery could not be queued
  // (the stream is then aborted).
  int resume_reading() noexcept;
  // Inline: one masked compare, asked before every read.
  bool is_reading() const noexcept { return (flags_ & kReadingBits) == (kOpen | kMade); }
  std::size_t high() const noexcept { return marks_.high; }
  std::size_t low() const noexcept { return marks_.low; }
  // Inline: a stream without a buffers block (most) answers 0 without a call.
  std::size_t write_buffer_size() const noexcept { return buffers_ ? queued_bytes() : 0; }
  void set_read_limit(std::size_t limit) noexcept {
    read_limit_ = limit < UINT32_MAX ? static_cast<std::uint32_t>(limit) : UINT32_MAX;
  }
  int set_protocol(const async_stream_protocol &protocol, void *userdata) noexcept;
  // set_protocol() for a protocol bound already (Reader::bind()): 0 or
  // ASYNC_ENOMEM with nothing changed.
  int replace_protocol(const async_stream_protocol &protocol, void *userdata) noexcept;
  int set_idle_timeout(std::uint64_t timeout_ms) noexcept;
  // The socket's own (peer false) or peer's name; ASYNC_EINVAL for a non-socket.
  int socket_name(sockaddr *out, std::size_t capacity, bool peer) const noexcept;
  // TCP options; ASYNC_EINVAL on another kind of stream.
  int set_nodelay(bool on) noexcept;
  int set_keepalive(bool on, std::uint32_t idle_s) noexcept;
  bool lost() const noexcept { return state() == kLost; }
  // Open both ways: not closing, no end of file read or written, not a
  // pipe's write end; a protocol put on it now can still talk with the peer.
  bool open_both_ways() const noexcept { return (flags_ & (kStateBits | kEof | kEofWanted | kWriteOnly)) == kOpen; }
  // The fd this stream owns: -1 for a stream over a layer.
  int fd() const noexcept { return ev::Backend::io_fd(io_); }
  // The fd at the bottom of a layered stream (async_stream_fd()), or
  // ASYNC_ECLOSED once the stream below has ended.
  int socket_fd() const noexcept;
  // The layer this stream sits on; nullptr for a stream on an fd.
  Layer *layer() const noexcept;
  bool is_socket() const noexcept { return has(kSocket); }
  bool is_tcp() const noexcept { return is_tcp_; }
  Loop &loop() const noexcept { return *loop_; }
  void *userdata() const noexcept { return userdata_; }
  // The protocol's release (a facade recognises its streams by it) and the
  // read limit, for the queue's bindings (net/queue_binding.hpp).
  async_release_fn protocol_release() const noexcept { return callbacks().release; }
  std::size_t read_limit() const noexcept { return read_limit_; }
  // A connect future's value holds a reference until the future goes:
  // taken here (once, on a new stream), dropped by release_value() (an
  // async_destroy_fn). Kept apart from the callers' so that their one
  // release too many is refused rather than taking the future's.
  void retain_as_value() noexcept {
    value_ref_ = true;
    ++refs_;
  }
  static void release_value(void *stream, void *context) noexcept;
  // Membership in its server's list of connections (accepted streams) or
  // else in the loop's registry, left when connection_lost has run.
  util::ListNode &list_node() noexcept { return list_node_; }
  static Stream *from_list_node(util::ListNode *node) noexcept;

  // Use adopt(); public only for util::destroy.
  ~Stream();

 private:
  friend class Transport<Stream>;
  friend class Layer;  // drives the stream above it as the fd's events would
  // Not a scoped enum: its values are the low bits of flags_ (kStateBits).
  enum State { kOpen, kClosing, kLost };
  State state() const noexcept { return static_cast<State>(flags_ & kStateBits); }
  void set_state(State state) noexcept { flags_ = static_cast<std::uint16_t>((flags_ & ~kStateBits) | state); }
  bool has(std::uint16_t flag) const noexcept { return (flags_ & flag) != 0; }
  void set(std::uint16_t flag, bool on = true) noexcept {
    flags_ = static_cast<std::uint16_t>(on ? flags_ | flag : flags_ & ~flag);
  }
  void set_made() noexcept { set(kMade); }
  struct Chunk;
  struct Buffers;
  struct Idle;
  struct FdTraits;
  // What adopt_socket() and accept() know of their socket.
  static FdTraits socket_traits(SocketKind kind) noexcept;

  // Inline in adopt(), adopt_socket() and accept(): an accept makes one
  // call. The stream is on list until its connection_lost; nullptr: on
  // the loop's registry.
  [[gnu::always_inline]] static int open(Stream **out, Loop &loop, int fd, const FdTraits &traits,
                                         const async_stream_protocol &protocol, void *userdata, ProtocolCache *cache,
                                         util::List *list) noexcept;
  // A reference to a record of protocol's callbacks: the cache's when it
  // has the same ones, else a new one (which the cache keeps from then on);
  // nullptr when out of memory. Inline: an accept takes the kept record
  // without a call.
  [[gnu::always_inline]] static Protocol *share_protocol(const async_stream_protocol &protocol,
                                                         ProtocolCache *cache) noexcept;
  // share_protocol() past the cache: a new record.
  static Protocol *new_protocol(const async_stream_protocol &protocol, ProtocolCache *cache) noexcept;
  // A new stream on the loop, in memory of an ended one when the loop kept
  // some (recycle()); nullptr when out of memory. Inline in each open, so
  // an accept's constant traits fold into the constructor.
  [[gnu::always_inline]] static Stream *make(Loop &loop, Protocol *protocol, const FdTraits &traits,
                                             void *userdata) noexcept;
  // Transport's hook for the last reference going as the stream ends, on
  // the loop's thread: the memory goes to the loop for its next stream.
  static void recycle(Loop &loop, Stream &s) noexcept;
  Stream(Loop &loop, Protocol *protocol, const FdTraits &traits, void *userdata) noexcept;
  static void drop_protocol(Protocol *protocol) noexcept;
  static void on_io(struct ev_loop *loop, struct ev_io *w, int revents) noexcept;
  // on_io() for events other than a readable fd's.
  [[gnu::noinline]] void on_events(std::uint32_t revents) noexcept;
  static void on_idle(void *self, std::uint32_t) noexcept;
  static void run_lost(async_loop *, void *self) noexcept;
  // resume_reading()'s delivery of the kept bytes (ASYNC_STREAM_DELIVER_EACH),
  // unless another delivery presented them first.
  static void run_replay(async_loop *, void *self) noexcept;

  // The usual readable event's test: reading, and none of the extras
  // (kept tail, idle timer) that read_once() handles.
  bool reads_plain() const noexcept { return (flags_ & (kReadingBits | kExtras)) == (kOpen | kMade); }
  void read_plain() noexcept;
  // read_plain()'s data_received when the loop times callbacks.
  [[gnu::noinline]] std::size_t present_timed(std::size_t len) noexcept;
  void read_some() noexcept;
  // What one read asks for when the read limit leaves room bytes.
  static std::size_t read_size(std::size_t room) noexcept {
    return room < Loop::kReadBufferSize ? room : Loop::kReadBufferSize;
  }
  // One read and its delivery: true when another may follow.
  bool read_once() noexcept;
  // read_some() past its first read: out of line, the usual event reads once.
  [[gnu::noinline]] void read_more() noexcept;
  // A read(2) that returned 0 (err 0: end of file) or failed with errno
  // err (not EINTR): nothing yet (EAGAIN) or an error. Out of line:
  // read_once() keeps few registers.
  [[gnu::noinline]] void read_failed(int err) noexcept;
  // The stream on an fd whose socket this one's options and names are:
  // itself, or for a layered stream the bottom of the stack (nullptr once
  // that has ended).
  const Stream *socket_stream() const noexcept;
  // A pipe's write end saw its reader close.
  [[gnu::cold, gnu::noinline]] void reader_gone() noexcept;
  // false when the stream stopped reading (closed, paused, lost) meanwhile.
  bool deliver(const std::uint8_t *data, std::size_t len) noexcept;
  // deliver() but for its last test: false only when the stream was lost.
  // kept: tail_len(), as the caller knows it.
  bool take_in(const std::uint8_t *data, std::size_t len, std::size_t kept) noexcept;
  // take_in() past its usual case, once data_received consumed consumed
  // of len bytes (fewer): its further rounds (ASYNC_STREAM_DELIVER_EACH),
  // then what is left kept as the tail.
  [[gnu::noinline]] bool take_rest(const std::uint8_t *data, std::size_t len, std::size_t consumed) noexcept;
  // take_in()'s end once consumed bytes of the tail went: false when lost,
  // or aborted because nothing was consumed of a tail at the read limit.
  bool took(std::size_t consumed) noexcept;
  // The kept tail presented again, and what was consumed of it dropped;
  // returns that count.
  std::size_t present_tail() noexcept;
  void read_eof() noexcept;
  // The end of file's final delivery of the tail, then eof_received.
  void end_input() noexcept;
  bool deliver_each() const noexcept;
  void write_some() noexcept;
  // Bytes sent (>= 0) or a negative ASYNC_E* code; 0 when the fd is full.
  long send(const iovec *iov, int iovcnt) noexcept;
  // write(data, len) past its hot path: n is what the hot path's send(2)
  // returned (-1 with errno), or -2 when it made none.
  [[gnu::noinline]] int write_rest(const void *data, std::size_t len, ssize_t n) noexcept;
  // What follows a write's send: sent is send()'s result (0 when nothing
  // was tried); the rest of total is queued.
  int finish_write(const iovec *iov, int iovcnt, long sent, std::size_t total, async_release_fn done,
                   void *done_userdata) noexcept;
  bool queue(const iovec *iov, int iovcnt, std::size_t skip, async_release_fn done, void *done_userdata) noexcept;
  // Something waits in the write queue.
  bool writing() const noexcept;
  std::size_t tail_len() const noexcept;
  // write_buffer_size() of a stream with a buffers block.
  std::size_t queued_bytes() const noexcept;
  // The buffers block, allocated on first use; false when out of memory.
  bool ensure_buffers() noexcept;
  void after_drain() noexcept;
  void shutdown_write() noexcept;
  void drop_queue() noexcept;
  // Queues a zero-copy write's done in the deferred call reserved by write().
  void finish_zero_copy(async_release_fn done, void *done_userdata) noexcept;
  void drop_tail() noexcept;
  // The destructor's part for the buffers block and the idle timer.
  [[gnu::noinline]] void free_extras() noexcept;
  // Transport's hooks.
  std::uint32_t library_refs() const noexcept { return value_ref_ ? 1U : 0U; }
  const async_stream_protocol &callbacks() const noexcept;
  void drop_callbacks() noexcept;
  async_stream *c_handle() noexcept { return c_stream(); }
  bool has_queued() const noexcept { return writing(); }
  void stop_receiving() noexcept {}
  void drop_queued() noexcept {
    if (buffers_) drop_buffered();  // most streams end with nothing buffered
  }
  // drop_queued() of a stream with a buffers block: out of line, so an
  // abort of one without keeps few registers.
  [[gnu::noinline]] void drop_buffered() noexcept;
  // Reading starts only now. A plain stream (the usual accepted one) reads
  // and has nothing queued: the watch needs no other test.
  void after_made() noexcept {
    if (reads_plain())
      loop_->backend().io_watch(io_, ASYNC_READABLE);
    else
      update_io();
  }
  bool presenting() const noexcept { return (flags_ & (kStateBits | kPaused)) == kOpen; }
  // aborted: by abort(), whatever the error (a layer below then stops
  // rather than flushes).
  void schedule_lost(int error, bool aborted = false) noexcept;
  // schedule_lost() past the ready task for a stream with an idle timer
  // or a layer below: out of line, so the usual stream's needs no frame.
  [[gnu::noinline]] void lost_extras(int error, bool aborted) noexcept;
  void schedule_aborted(int error) noexcept { schedule_lost(error, true); }
  void update_io() noexcept;
  void touch() noexcept;

  // Layout: 144 bytes (368 before), checked in stream.cpp. What every
  // stream needs is inline and packed; what only some streams need (kept
  // bytes, a write queue, the layer below, an idle timer) hangs off
  // pointers allocated on first use, so an idle stream pays 16 bytes for
  // it instead of 120.

  // The connection's reference (until it ended), a connect future's and
  // the callers' (Transport::retain()).
  std::uint32_t refs_ = 1;
  util::ListNode list_node_;
  // nullptr once ended (Transport::end()).
  Loop *loop_;
  ev::IoSlot io_;  // also holds the fd
  // Shared with the other streams made with the same callbacks: a server's
  // streams usually all get one protocol, and a copy each was 72 bytes.
  // nullptr once ended (drop_callbacks()).
  Protocol *protocol_;
  void *userdata_ = nullptr;
  // Kept bytes, the write queue and the layer below (a layered stream's,
  // allocated at its creation): allocated when first needed and kept
  // (a stream that needed them once likely will again, and reuse keeps
  // allocation off the hot path).
  Buffers *buffers_ = nullptr;
  // The idle timeout's timer (80 bytes): allocated by the first
  // set_idle_timeout() that turns it on.
  Idle *idle_ = nullptr;
  // 32 bits (set_read_limit() caps larger limits) leave room for the
  // 32-bit reference count in the same 144 bytes.
  std::uint32_t read_limit_ = kDefaultReadLimit;
  // An ASYNC_E* code (they all fit 8 bits, checked in stream.cpp), kept
  // from schedule_lost() to run_lost().
  std::int8_t lost_error_ = 0;
  bool is_tcp_ : 1 = false;
  bool pipe_writer_ : 1 = false;     // a pipe's or FIFO's write end (also kWriteOnly): readable once its reader is gone
  bool writing_paused_ : 1 = false;  // pause_writing told, resume_writing not yet
  bool eof_sent_ : 1 = false;
  bool value_ref_ : 1 = false;      // a connect future's value holds a reference
  bool replay_wanted_ : 1 = false;  // resume_reading() queued run_replay(), no delivery since
  bool layered_ : 1 = false;        // over a layer (buffers_->layer), not an fd
  // The state and the flags the hot paths test, in one word, so that a
  // test of several (is_reading(), write()'s) is one masked compare.
  static constexpr std::uint16_t kStateBits = 3;   // a State
  static constexpr std::uint16_t kMade = 4;        // connection_made has run
  static constexpr std::uint16_t kPaused = 8;      // pause_reading()
  static constexpr std::uint16_t kEof = 16;        // the peer's end of file was read
  static constexpr std::uint16_t kWriteOnly = 32;  // e.g. a pipe's write end: never read, write_eof means close
  static constexpr std::uint16_t kEofWanted = 64;  // write_eof() called
  static constexpr std::uint16_t kSocket = 128;
  // What is_reading() tests.
  static constexpr std::uint16_t kReadingBits = kStateBits | kMade | kPaused | kEof | kWriteOnly;
  // buffers_ or idle_ allocated (and kept until the stream goes): without
  // either, no tail is kept, no write queued and no idle timer runs, so
  // the plain read and write skip those three tests.
  static constexpr std::uint16_t kExtras = 256;
  std::uint16_t flags_ = kOpen;
  util::WaterMarks marks_;
};

}  // namespace async::net
