// async_process_run(): asyncio's communicate() on a Process. Its stdin
// pipe gets the input then its end; stdout and stderr are collected up to
// a limit; the future completes once the child was reaped and both output
// pipes ended. Over the limit, or cancelled, the child is killed.
#pragma once

#include <async/process.h>

#include <cstddef>
#include <cstdint>

#include "net/core_names.hpp"
#include "util/byte_queue.hpp"

namespace async::net {

class Process;

class ProcessRun {
 public:
  static constexpr std::size_t kDefaultLimit = std::size_t{16} * 1024 * 1024;

  // 0 with *out the caller's future, or an async_process_spawn() code.
  static int start(Future **out, Loop &loop, const char *const *argv, const std::uint8_t *input, std::size_t input_len,
                   std::size_t limit) noexcept;

  // Use start(); public only for util::make/destroy.
  explicit ProcessRun(std::size_t limit) noexcept : limit_(limit) {}

 private:
  static const async_stream_protocol kInput;
  static const async_stream_protocol kOutput;

  static void on_input_made(async_stream *stream, void *self) noexcept;
  static std::size_t on_output(async_stream *stream, const std::uint8_t *data, std::size_t len, void *self) noexcept;
  static void on_input_lost(async_stream *stream, int error, void *self) noexcept;
  static void on_output_lost(async_stream *stream, int error, void *self) noexcept;
  static void on_release(void *self) noexcept;
  static void on_exit(async_future *future, int status, void *self) noexcept;
  static void on_cancel(async_future *future, int cancelled, void *self) noexcept;

  // Completes the future once the exit and both outputs are in.
  void maybe_finish() noexcept;
  void unref() noexcept;

  Process *process_ = nullptr;  // until the future completes
  Future *future_ = nullptr;    // a library reference until it completes
  util::ByteQueue input_;       // until written
  util::ByteQueue out_;
  util::ByteQueue err_;
  std::size_t limit_;
  int refs_ = 1;          // the exit callback's, and each stream's until its release
  int outputs_open_ = 2;  // stdout and stderr until their connection_lost
  bool exited_ = false;
  int failure_ = 0;  // ASYNC_ENOBUFS over limit_, ASYNC_ENOMEM: the child was killed
  int exit_code_ = 0;
  int signal_ = 0;
  int exit_error_ = 0;
};

}  // namespace async::net
