// The stream reader facade (async/reader.h): a protocol that buffers what
// arrives (pausing the stream above its limit) and completes one pending
// read future at a time: exactly n, until a delimiter, or some.
#pragma once

#include <async/reader.h>

#include <cstddef>
#include <cstdint>

#include "net/core_names.hpp"
#include "util/byte_queue.hpp"
#include "util/list.hpp"
#include "util/tagged.hpp"

namespace async::net {

class Reader : public util::Tagged<0x52444552> {  // "RDER"
 public:
  static constexpr std::size_t kDefaultLimit = std::size_t{64} * 1024;
  static constexpr std::size_t kMaxDelimiter = 16;
  enum class Mode { kExactly, kUntil, kSome };

  static Reader *create(Loop &loop, std::size_t limit) noexcept;
  static const async_stream_protocol kProtocol;

  // Every path that hands a stream protocol's userdata to the library (a
  // stream, a connect, a reconnector) binds it first; the protocol's
  // release unbinds it. A reader (a protocol with the reader's release)
  // serves one of them at a time, and its memory lives until that one's
  // release even once its owner freed it. Other userdata pass untouched.
  // 0, ASYNC_EBUSY (bound already) or ASYNC_EINVAL (not a live reader).
  // Inline: most protocols are not a reader's, which costs a compare.
  static int bind(const async_stream_protocol &protocol, void *userdata) noexcept {
    return protocol.release == on_release ? bind_reader(userdata) : 0;
  }
  // Undoes bind() when the hand-over failed and no release will come.
  static void unbind(const async_stream_protocol &protocol, void *userdata) noexcept;

  // A read future, maybe DONE already; ASYNC_ESTATE while one is pending.
  int read(Future **out, Mode mode, std::size_t n, const void *delim, std::size_t delim_len) noexcept;
  void release_owner() noexcept;
  bool owner_released() const noexcept { return !owned_; }
  Loop &loop() const noexcept { return loop_; }
  static Reader *from_registry_node(util::ListNode *node) noexcept;
  std::size_t limit() const noexcept { return limit_; }

  // Use create(); public only for util::make/destroy.
  Reader(Loop &loop, std::size_t limit) noexcept : loop_(loop), limit_(limit) {}
  ~Reader();

 private:
  static void on_made(async_stream *stream, void *self) noexcept;
  static std::size_t on_data(async_stream *stream, const std::uint8_t *data, std::size_t len, void *self) noexcept;
  static int on_eof(async_stream *stream, void *self) noexcept;
  static void on_lost(async_stream *stream, int error, void *self) noexcept;
  static void on_release(void *self) noexcept;
  // bind() for a reader's protocol.
  static int bind_reader(void *userdata) noexcept;
  static void on_cancel(async_future *future, int cancelled, void *self) noexcept;

  // A new connection (stream, or none yet): the last one's end and bytes
  // are forgotten.
  void begin_connection(async_stream *stream) noexcept;
  // Completes the pending read if the buffer (or the end) decides it.
  void serve() noexcept;
  // The length up to the end of the first delimiter within the first
  // window bytes, or 0.
  std::size_t find_delimiter(std::size_t window) noexcept;
  void complete(std::size_t take) noexcept;
  void fail(int error) noexcept;
  void sync_reading() noexcept;
  // Frees the memory once neither the owner nor a stream holds it.
  void maybe_destroy() noexcept;

  Loop &loop_;
  util::ListNode registry_node_;  // on the loop's registry until the owner frees it
  std::size_t limit_;
  async_stream *stream_ = nullptr;  // while the connection is live
  util::ByteQueue buf_;             // up to limit_ plus one read's worth
  bool eof_ = false;
  bool lost_ = false;
  int error_ = 0;        // the connection's, once lost
  bool paused_ = false;  // we paused the stream's reading
  bool owned_ = true;    // until async_reader_free()
  bool bound_ = false;   // from bind() to the protocol's release

  Future *pending_ = nullptr;
  Mode mode_ = Mode::kSome;
  std::size_t n_ = 0;  // exactly: n; until: limit; some: max
  std::uint8_t delim_[kMaxDelimiter] = {};
  std::size_t delim_len_ = 0;
  std::size_t searched_ = 0;  // until: starts of a delimiter ruled out
};

}  // namespace async::net
