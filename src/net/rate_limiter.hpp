// The rate limiter layer (async_layer_push_rate_limit()): token buckets,
// one per direction, refilled from the monotonic clock; a direction that
// runs dry stops (the upper stream queues its writes, the lower stream
// pauses its reading) and one timer starts it again once its bucket is
// full.
#pragma once

#include <cstdint>

#include "ev/ev_backend.hpp"
#include "net/layer.hpp"

namespace async::net {

class RateLimiter final : public Layer {
 public:
  // Layer::push() of a new limiter; a rate of 0 is unlimited.
  static int push(Stream **upper, Stream &lower, std::uint64_t read_rate, std::uint64_t write_rate,
                  const async_stream_protocol &protocol, void *userdata) noexcept;

  long take(const iovec *iov, int iovcnt) noexcept override;

  // Use push(); public only for util::make/destroy.
  RateLimiter(Loop &loop, std::uint64_t read_rate, std::uint64_t write_rate) noexcept;
  ~RateLimiter() override;

 private:
  struct Bucket {
    std::uint64_t rate;    // bytes per second, 0: unlimited
    std::uint64_t burst;   // the most it holds: 1/kBurstsPerSecond of a second's bytes
    std::uint64_t tokens;  // bytes it may pass now
    std::uint64_t refilled_ns;
    bool starved = false;  // ran dry with bytes waiting

    Bucket(std::uint64_t bytes_per_s, std::uint64_t now_ns) noexcept;
    void refill(std::uint64_t now_ns) noexcept;
    // Bytes of want it passes now (taken from its tokens).
    std::uint64_t pass(std::uint64_t want) noexcept;
    // Nanoseconds until it is full again.
    std::uint64_t ns_to_full() const noexcept;
  };

  std::size_t from_below(const std::uint8_t *data, std::size_t len) noexcept override;
  bool wants_input() const noexcept override;
  void close_down() noexcept override;
  void stop() noexcept override;
  static void on_timer(void *self, std::uint32_t) noexcept;
  // Marks bucket starved and arms the timer for the first starved bucket
  // to be full again.
  void starve(Bucket &bucket) noexcept;

  Bucket in_;
  Bucket out_;
  ev::TimerSlot timer_;
  bool armed_ = false;
};

}  // namespace async::net
