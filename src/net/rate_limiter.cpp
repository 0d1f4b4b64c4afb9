#include "net/rate_limiter.hpp"

#include <async/error.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "core/loop.hpp"
#include "net/stream.hpp"
#include "util/alloc.hpp"
#include "util/clock.hpp"

namespace async::net {

namespace {

// A dry bucket waits for a whole burst (50 ms of its rate): fewer, larger
// sends than trickling a few bytes at each wakeup, and the same average.
constexpr std::uint64_t kBurstsPerSecond = 20;
// In double: a rate times nanoseconds overflows 64 bits past 18 s at
// 1 GB/s, and exact 128-bit division would pull in libgcc's helpers; a
// rounding of a byte in 2^53 is no matter for a rate.
constexpr double kNsPerSecond = 1e9;

}  // namespace

RateLimiter::Bucket::Bucket(std::uint64_t bytes_per_s, std::uint64_t now_ns) noexcept
    : rate(bytes_per_s),
      burst(std::max<std::uint64_t>(bytes_per_s / kBurstsPerSecond, 1)),
      tokens(burst),
      refilled_ns(now_ns) {}

void RateLimiter::Bucket::refill(std::uint64_t now_ns) noexcept {
  if (rate == 0 || tokens == burst) {
    refilled_ns = now_ns;
    return;
  }
  // Whole bytes earned since the last refill; the time of a fraction of a
  // byte is carried to the next one.
  double earned = std::floor(static_cast<double>(now_ns - refilled_ns) * static_cast<double>(rate) / kNsPerSecond);
  if (earned >= static_cast<double>(burst - tokens)) {
    tokens = burst;
    refilled_ns = now_ns;
    return;
  }
  tokens += static_cast<std::uint64_t>(earned);
  refilled_ns += static_cast<std::uint64_t>(earned * kNsPerSecond / static_cast<double>(rate));
}

std::uint64_t RateLimiter::Bucket::pass(std::uint64_t want) noexcept {
  if (rate == 0) return want;
  std::uint64_t n = std::min(want, tokens);
  tokens -= n;
  return n;
}

std::uint64_t RateLimiter::Bucket::ns_to_full() const noexcept {
  return static_cast<std::uint64_t>(
      std::ceil(static_cast<double>(burst - tokens) * kNsPerSecond / static_cast<double>(rate)));
}

RateLimiter::RateLimiter(Loop &loop, std::uint64_t read_rate, std::uint64_t write_rate) noexcept
    : Layer(loop), in_(read_rate, util::monotonic_ns()), out_(write_rate, in_.refilled_ns) {
  ev::Backend::timer_init(timer_, on_timer, this);
}

RateLimiter::~RateLimiter() { stop(); }

int RateLimiter::push(Stream **upper, Stream &lower, std::uint64_t read_rate, std::uint64_t write_rate,
                      const async_stream_protocol &protocol, void *userdata) noexcept {
  auto *limiter = util::make<RateLimiter>(lower.loop(), read_rate, write_rate);
  if (!limiter) return ASYNC_ENOMEM;
  return Layer::push(upper, limiter, lower, protocol, userdata);
}

long RateLimiter::take(const iovec *iov, int iovcnt) noexcept {
  Stream *below = lower();
  if (!below) return ASYNC_ECLOSED;
  if (lower_full()) return 0;  // its resume_writing calls the upper stream again
  std::size_t total = 0;
  for (int i = 0; i < iovcnt; ++i) total += iov[i].iov_len;
  out_.refill(util::monotonic_ns());
  auto n = static_cast<std::size_t>(out_.pass(total));
  if (n < total) starve(out_);
  // The whole buffers that fit, then the part of the next one.
  int whole = 0;
  std::size_t at = 0;
  while (whole < iovcnt && at + iov[whole].iov_len <= n) at += iov[whole++].iov_len;
  int err = whole ? below->write(iov, whole, nullptr, nullptr) : 0;
  if (!err && at < n) {
    iovec part{iov[whole].iov_base, n - at};
    err = below->write(&part, 1, nullptr, nullptr);
  }
  return err ? err : static_cast<long>(n);
}

std::size_t RateLimiter::from_below(const std::uint8_t *data, std::size_t len) noexcept {
  in_.refill(util::monotonic_ns());
  auto n = static_cast<std::size_t>(in_.pass(len));
  if (n) deliver_up(data, n);
  if (in_.rate && in_.tokens == 0) {
    starve(in_);
    sync_reading();  // the lower stream pauses, keeping the rest
  }
  return n;
}

bool RateLimiter::wants_input() const noexcept { return upper_reading() && (in_.rate == 0 || in_.tokens > 0); }

void RateLimiter::starve(Bucket &bucket) noexcept {
  bucket.starved = true;
  if (armed_) return;  // the other bucket's wakeup comes first: both refill then
  armed_ = true;
  loop().backend().timer_start(timer_, bucket.ns_to_full());
}

void RateLimiter::on_timer(void *self, std::uint32_t) noexcept {
  auto *limiter = static_cast<RateLimiter *>(self);
  limiter->armed_ = false;
  limiter->loop().backend().timer_stop(limiter->timer_);  // slots stay armed after firing
  std::uint64_t now = util::monotonic_ns();
  limiter->in_.refill(now);
  limiter->out_.refill(now);
  // Each direction goes on; one still short starves again and re-arms.
  if (std::exchange(limiter->out_.starved, false)) limiter->upper_room();
  if (std::exchange(limiter->in_.starved, false)) limiter->sync_reading();
}

void RateLimiter::close_down() noexcept {
  stop();
  Layer::close_down();
}

void RateLimiter::stop() noexcept {
  if (!armed_) return;
  armed_ = false;
  loop().backend().timer_stop(timer_);
}

}  // namespace async::net
