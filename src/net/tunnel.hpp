// A layer that passes bytes through unchanged: what a proxy connection is
// once its handshake succeeded (net/socks5.hpp pushes it). It still makes
// the stream above a stream of its own, so the user's protocol gets
// connection_made when the tunnel opens, and async_layer_pop() hands the
// tunnelled stream below to another protocol.
#pragma once

#include "net/layer.hpp"

namespace async::net {

class Tunnel final : public Layer {
 public:
  // Layer::push() of a new tunnel.
  static int push(Stream **upper, Stream &lower, const async_stream_protocol &protocol, void *userdata) noexcept;

  long take(const iovec *iov, int iovcnt) noexcept override;

  // Use push(); public only for util::make/destroy.
  explicit Tunnel(Loop &loop) noexcept : Layer(loop) {}

 private:
  std::size_t from_below(const std::uint8_t *data, std::size_t len) noexcept override;
};

}  // namespace async::net
