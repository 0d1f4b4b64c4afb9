// The stream reader facade (async/reader.h): a protocol that buffers what
// arrives (pausing the stream above its limit) and completes one pending
// read future at a time: exactly n, until a delimiter, or some.
#pragma once

#include <async/reader.h>

#include <cstddef>
#include <cstdint>

namespace async::core {

class Loop;
class Future;

class Reader {
 public:
  static constexpr std::uint32_t kTag = 0x52444552;  // "RDER"
  static constexpr std::size_t kDefaultLimit = 64 * 1024;
  static constexpr std::size_t kMaxDelimiter = 16;
  enum class Mode { kExactly, kUntil, kSome };

  static Reader *create(Loop &loop, std::size_t limit) noexcept;
  static const async_stream_protocol kProtocol;

  // A read future, maybe DONE already; ASYNC_ESTATE while one is pending.
  int read(Future **out, Mode mode, std::size_t n, const void *delim, std::size_t delim_len) noexcept;
  void release_owner() noexcept;
  bool owner_released() const noexcept { return owner_released_; }
  std::size_t limit() const noexcept { return limit_; }

  // Use create(); public only for util::make/destroy.
  Reader(Loop &loop, std::size_t limit) noexcept : loop_(loop), limit_(limit) {}
  ~Reader();

  std::uint32_t tag_ = kTag;

 private:
  static void on_made(async_stream *stream, void *self) noexcept;
  static std::size_t on_data(async_stream *stream, const std::uint8_t *data, std::size_t len, void *self) noexcept;
  static int on_eof(async_stream *stream, void *self) noexcept;
  static void on_lost(async_stream *stream, int error, void *self) noexcept;
  static void on_release(void *self) noexcept;
  static void on_cancel(async_future *future, int cancelled, void *self) noexcept;

  // Completes the pending read if the buffer (or the end) decides it.
  void serve() noexcept;
  void complete(std::size_t take) noexcept;
  void fail(int error) noexcept;
  void sync_reading() noexcept;
  void unref() noexcept;

  Loop &loop_;
  std::size_t limit_;
  async_stream *stream_ = nullptr;  // while attached and not lost
  std::uint8_t *buf_ = nullptr;  // up to limit_ plus one read's worth
  std::size_t len_ = 0;
  std::size_t cap_ = 0;
  bool eof_ = false;
  bool lost_ = false;
  int error_ = 0;        // the connection's, once lost
  bool paused_ = false;  // we paused the stream's reading
  bool owner_released_ = false;
  bool attached_ = false;  // a stream's connection_made ran, its release not yet
  int refs_ = 1;  // the owner's, plus the stream's while attached

  Future *pending_ = nullptr;
  Mode mode_ = Mode::kSome;
  std::size_t n_ = 0;  // exactly: n; until: limit; some: max
  std::uint8_t delim_[kMaxDelimiter] = {};
  std::size_t delim_len_ = 0;
};

}  // namespace async::core
