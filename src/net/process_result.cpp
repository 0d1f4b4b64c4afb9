#include "net/process_result.hpp"

#include <cstring>
#include <new>

#include "util/alloc.hpp"

namespace async::net {

ProcessResult *ProcessResult::create(int exit_code, int signal, const std::uint8_t *out, std::size_t out_len,
                                     const std::uint8_t *err, std::size_t err_len) noexcept {
  void *p = util::mem_alloc(sizeof(ProcessResult) + out_len + err_len);
  if (!p) return nullptr;
  auto *r = new (p) ProcessResult(exit_code, signal, out_len, err_len);
  auto *bytes = reinterpret_cast<std::uint8_t *>(r + 1);
  if (out_len) std::memcpy(bytes, out, out_len);
  if (err_len) std::memcpy(bytes + out_len, err, err_len);
  return r;
}

void ProcessResult::destroy(void *result, void *) noexcept {
  if (!result) return;
  static_cast<ProcessResult *>(result)->mark_dead();
  util::mem_free(result);
}

const std::uint8_t *ProcessResult::output(int fd) const noexcept {
  if (output_size(fd) == 0) return nullptr;
  const auto *bytes = reinterpret_cast<const std::uint8_t *>(this + 1);
  return fd == 1 ? bytes : bytes + out_len_;
}

}  // namespace async::net
