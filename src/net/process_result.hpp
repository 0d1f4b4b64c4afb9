// How a child ended and what async_process_run() collected of its output
// (async_process_result): one allocation, the output bytes after the record.
#pragma once

#include <cstddef>
#include <cstdint>

#include "util/tagged.hpp"

namespace async::net {

class ProcessResult : public util::Tagged<0x50524553> {  // "PRES"
 public:
  // exit_code -1 after a signal; the output copied; nullptr when out of memory.
  static ProcessResult *create(int exit_code, int signal, const std::uint8_t *out, std::size_t out_len,
                               const std::uint8_t *err, std::size_t err_len) noexcept;
  // Matches async_destroy_fn (context unused).
  static void destroy(void *result, void *context = nullptr) noexcept;

  int exit_code() const noexcept { return exit_code_; }
  int signal() const noexcept { return signal_; }
  // fd 1 or 2; nullptr when there are no bytes.
  const std::uint8_t *output(int fd) const noexcept;
  std::size_t output_size(int fd) const noexcept { return fd == 1 ? out_len_ : err_len_; }

 private:
  ProcessResult(int exit_code, int signal, std::size_t out_len, std::size_t err_len) noexcept
      : exit_code_(exit_code), signal_(signal), out_len_(out_len), err_len_(err_len) {}
  int exit_code_;
  int signal_;
  std::size_t out_len_;
  std::size_t err_len_;
};

}  // namespace async::net
