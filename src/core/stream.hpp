// A stream transport on one fd driven by a protocol (DESIGN §7): consumed-
// bytes reads through the loop's shared buffer, writes sent at once with
// only the rest queued, high/low-water flow control, close/abort, and
// connection_lost exactly once through the ready queue.
#pragma once

#include <async/stream.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>

#include "core/transport.hpp"
#include "ev/ev_backend.hpp"
#include "util/list.hpp"

namespace async::core {

class Loop;

class Stream : public Transport<Stream, async_stream_protocol, async_stream> {
 public:
  static constexpr std::uint32_t kTag = 0x5354524d;  // "STRM"
  static constexpr std::size_t kDefaultReadLimit = 1024 * 1024;

  // 0, or ASYNC_EINVAL/EBADF/ENOMEM with fd and userdata left to the caller.
  static int adopt(Stream **out, Loop &loop, int fd, const async_stream_protocol &protocol, void *userdata) noexcept;
  // A protocol async_stream_adopt()/set_protocol() accept.
  static bool valid_protocol(const async_stream_protocol *protocol) noexcept;

  static Stream *from(async_stream *s) noexcept { return reinterpret_cast<Stream *>(s); }
  async_stream *c_stream() noexcept { return c_handle(); }

  // done != nullptr: zero-copy (iovcnt 1, memory borrowed until done runs).
  int write(const iovec *iov, int iovcnt, async_release_fn done, void *done_userdata) noexcept;
  int write_eof() noexcept;
  void close() noexcept;
  void abort(int error) noexcept;
  void pause_reading() noexcept;
  void resume_reading() noexcept;
  bool is_reading() const noexcept;
  void set_read_limit(std::size_t limit) noexcept { read_limit_ = limit; }
  int set_protocol(const async_stream_protocol &protocol, void *userdata) noexcept;
  int set_idle_timeout(std::uint64_t timeout_ms) noexcept;
  bool lost() const noexcept { return state_ == State::kLost; }
  bool is_socket() const noexcept { return is_socket_; }
  bool is_tcp() const noexcept { return is_tcp_; }
  // Extra references keep the memory (not the connection) past
  // connection_lost: calls on a lost stream return ASYNC_ECLOSED.
  void retain() noexcept { ++refs_; }
  // Matches async_destroy_fn (a connect future's value destructor).
  static void release(void *stream) noexcept;
  // Membership in a server's list of connections, left when lost.
  struct ServerLink {
    util::ListNode node;  // first: a ListNode * is a ServerLink *
    Stream *stream;
  };
  util::ListNode &server_node() noexcept { return server_link_.node; }
  static Stream *from_server_node(util::ListNode *node) noexcept {
    return reinterpret_cast<ServerLink *>(node)->stream;
  }

  // Use adopt(); public only for util::make/destroy.
  Stream(Loop &loop, int fd) noexcept;
  ~Stream();

 private:
  friend class Transport<Stream, async_stream_protocol, async_stream>;
  struct Chunk;

  static void on_io(void *self, std::uint32_t revents) noexcept;
  static void on_idle(void *self, std::uint32_t) noexcept;
  // Transport hooks.
  void made() noexcept { update_io(); }  // reading starts only now
  void before_lost() noexcept { server_link_.node.unlink(); }
  void dispose() noexcept { release(this); }

  void read_some() noexcept;
  // false when the stream stopped reading (closed, paused, lost) meanwhile.
  bool deliver(const std::uint8_t *data, std::size_t len) noexcept;
  void read_eof() noexcept;
  void write_some() noexcept;
  // Bytes sent (>= 0) or a negative ASYNC_E* code; 0 when the fd is full.
  long send(const iovec *iov, int iovcnt) noexcept;
  bool queue(const iovec *iov, int iovcnt, std::size_t skip, async_release_fn done, void *done_userdata) noexcept;
  void after_drain() noexcept;
  void shutdown_write() noexcept;
  void drop_queue() noexcept;
  void drop_tail() noexcept;
  void schedule_lost(int error) noexcept;
  void update_io() noexcept;
  void touch() noexcept;

  ServerLink server_link_{{}, this};
  bool is_socket_ = false;
  bool is_tcp_ = false;
  bool write_only_ = false;  // a pipe's write end: write_eof means close
  int refs_ = 1;  // the connection's, dropped after connection_lost
  ev::TimerSlot idle_;
  std::uint64_t idle_ms_ = 0;

  // Reading.
  bool paused_ = false;     // pause_reading()
  bool eof_ = false;        // the peer's end of file was read
  std::uint8_t *tail_ = nullptr;  // unconsumed bytes, presented again
  std::size_t tail_len_ = 0;
  std::size_t tail_cap_ = 0;
  std::size_t read_limit_ = kDefaultReadLimit;

  // Writing.
  Chunk *head_ = nullptr;
  Chunk *last_ = nullptr;
  bool eof_wanted_ = false;      // write_eof() called
  bool eof_sent_ = false;
};

}  // namespace async::core
