// A queue binding (async_queue_bind): the userdata through which one
// stream, server, timer or watched future turns its callbacks into
// records of its queue. The callbacks that must answer at once answer for
// the caller: a stream's bytes are taken into the binding's buffer and
// held (the stream paused) until async_stream_consume; end of file keeps
// the stream open; the factory accepts with a new binding.
#pragma once

#include <async/queue.h>

#include <cstddef>
#include <cstdint>

#include "net/core_names.hpp"
#include "util/byte_queue.hpp"
#include "util/list.hpp"
#include "util/tagged.hpp"

namespace async::net {

class Queue;
class Stream;

class Binding : public util::Tagged<0x51424e44> {  // "QBND"
 public:
  // What took the binding; kNone until then (async_queue_unbind may free it).
  enum class Role : std::uint8_t { kNone, kStream, kHandle, kFuture };

  static const async_stream_protocol kProtocol;
  static int factory(const async_stream_protocol **out_protocol, void **out_userdata, async_server *server,
                     void *self) noexcept;
  static void on_timer(async_timer *timer, void *self) noexcept;
  static void on_closed(async_handle *handle, void *self) noexcept;
  static void on_future(async_future *future, int status, void *self) noexcept;
  // The queue-mode binding of a stream, or nullptr.
  static Binding *of(Stream &stream) noexcept;
  static Binding *from_node(util::ListNode *node) noexcept;

  int consume(Stream &stream, std::size_t n) noexcept;
  int accept(Stream &stream, std::uint64_t token) noexcept;
  Role role() const noexcept { return role_; }
  void take(Role role) noexcept { role_ = role; }

  Binding(Queue &queue, std::uint64_t token) noexcept : queue_(queue), token_(token) {}
  ~Binding();

  util::ListNode node_;          // in the queue's live bindings
  Binding *next = nullptr;       // in the queue's retired ones (util::Fifo)
  std::uint64_t final_seq_ = 0;  // the final record's number, once pushed

 private:
  static void on_made(async_stream *stream, void *self) noexcept;
  static std::size_t on_data(async_stream *stream, const std::uint8_t *data, std::size_t len, void *self) noexcept;
  static int on_eof(async_stream *stream, void *self) noexcept;
  static void on_writable(async_stream *stream, void *self) noexcept;
  static void on_lost(async_stream *stream, int error, void *self) noexcept;
  static void on_release(void *self) noexcept;

  void attach(async_stream *stream) noexcept;
  // A stream record; a failed push aborts the stream (ASYNC_ENOMEM).
  void report(std::uint32_t kind) noexcept;
  void present() noexcept;
  void finish(async_event event) noexcept;

  Queue &queue_;
  std::uint64_t token_;
  Role role_ = Role::kNone;
  async_stream *stream_ = nullptr;  // from its first callback on
  bool retained_ = false;           // a reference to stream_ held until the destructor
  util::ByteQueue held_;            // bytes not consumed yet
  bool presented_ = false;          // a DATA record waits for async_stream_consume
  bool accepting_ = false;          // accepted, waiting for async_queue_accept
  bool lost_ = false;               // the final record is pushed
};

}  // namespace async::net
