#include "net/tunnel.hpp"

#include <async/error.h>

#include "net/stream.hpp"
#include "util/alloc.hpp"

namespace async::net {

int Tunnel::push(Stream **upper, Stream &lower, const async_stream_protocol &protocol, void *userdata) noexcept {
  auto *tunnel = util::make<Tunnel>(lower.loop());
  if (!tunnel) return ASYNC_ENOMEM;
  return Layer::push(upper, tunnel, lower, protocol, userdata);
}

long Tunnel::take(const iovec *iov, int iovcnt) noexcept {
  Stream *below = lower();
  if (!below) return ASYNC_ECLOSED;
  if (lower_full()) return 0;  // its resume_writing calls the upper stream again
  std::size_t total = 0;
  for (int i = 0; i < iovcnt; ++i) total += iov[i].iov_len;
  int err = below->write(iov, iovcnt, nullptr, nullptr);
  return err ? err : static_cast<long>(total);
}

// The stream above keeps what its protocol does not consume.
std::size_t Tunnel::from_below(const std::uint8_t *data, std::size_t len) noexcept {
  deliver_up(data, len);
  return len;
}

}  // namespace async::net
