#include "net/reconnector.hpp"

#include <async/error.h>
#include <async/future.h>

#include <algorithm>
#include <cstring>

#include "core/future.hpp"
#include "core/loop.hpp"
#include "net/connector.hpp"
#include "net/reader.hpp"
#include "net/stream.hpp"
#include "util/alloc.hpp"
#include "util/clock.hpp"
#include "util/container_of.hpp"
#include "util/sized_struct.hpp"

namespace async::net {

namespace {

// The defaults of async_reconnect_options' backoff fields.
constexpr std::uint64_t kInitialDelayMs = 100;
constexpr std::uint64_t kMaxDelayMs = 30000;
constexpr double kMultiplier = 2.0;
constexpr double kJitter = 0.1;

}  // namespace

Reconnector::Reconnector(Loop &loop, const async_stream_protocol &protocol, void *userdata) noexcept
    : loop_(loop), user_(protocol), userdata_(userdata) {
  // Only the callbacks the user gave are forwarded, so NULL keeps its
  // meaning (e.g. no eof_received: close at EOF).
  forward_.size = sizeof forward_;
  forward_.connection_made = fwd_made;
  forward_.data_received = fwd_data;
  forward_.eof_received = user_.eof_received ? fwd_eof : nullptr;
  forward_.connection_lost = fwd_lost;
  forward_.pause_writing = user_.pause_writing ? fwd_event<&async_stream_protocol::pause_writing> : nullptr;
  forward_.resume_writing = user_.resume_writing ? fwd_event<&async_stream_protocol::resume_writing> : nullptr;
  forward_.write_drained = user_.write_drained ? fwd_event<&async_stream_protocol::write_drained> : nullptr;
  forward_.release = fwd_release;
  forward_.flags = user_.flags;
  forward_.idle_timeout = user_.idle_timeout ? fwd_event<&async_stream_protocol::idle_timeout> : nullptr;
  random_ = util::monotonic_ns() ^ reinterpret_cast<std::uintptr_t>(this) ^ 0x9e3779b97f4a7c15u;
  ev::Backend::timer_init(timer_, on_timer, this);
}

Reconnector::~Reconnector() {
  loop_.backend().timer_stop(timer_);
  registry_node_.unlink();
  mark_dead();
}

Reconnector *Reconnector::from_registry_node(util::ListNode *node) noexcept {
  return util::container_of(node, &Reconnector::registry_node_);
}

int Reconnector::copy_config(const char *host, std::uint16_t port, const async_reconnect_options &options) noexcept {
  std::size_t host_len = std::strlen(host);
  if (host_len == 0 || host_len >= sizeof host_) return ASYNC_EINVAL;
  std::memcpy(host_, host, host_len + 1);
  port_ = port;
  if (util::copy_sized(connect_, options.connect) != 0) return ASYNC_EINVAL;
  if (connect_.local_address) {
    std::size_t len = std::strlen(connect_.local_address);
    if (len >= sizeof local_address_) return ASYNC_EINVAL;
    std::memcpy(local_address_, connect_.local_address, len + 1);
    connect_.local_address = local_address_;
  }
  if (connect_.server_name) {
    std::size_t len = std::strlen(connect_.server_name);
    if (len >= sizeof server_name_) return ASYNC_EINVAL;
    std::memcpy(server_name_, connect_.server_name, len + 1);
    connect_.server_name = server_name_;
  }
  // 0 is each field's default; NaN fails every comparison, so it is
  // rejected too.
  initial_ms_ = options.initial_delay_ms ? options.initial_delay_ms : kInitialDelayMs;
  max_ms_ = options.max_delay_ms ? options.max_delay_ms : std::max(kMaxDelayMs, initial_ms_);
  multiplier_ = options.multiplier == 0.0 ? kMultiplier : options.multiplier;
  jitter_ = options.jitter == 0.0 ? kJitter : std::max(options.jitter, 0.0);
  if (max_ms_ < initial_ms_ || !(multiplier_ >= 1.0) || !(jitter_ <= 1.0)) return ASYNC_EINVAL;
  max_attempts_ = options.max_attempts;
  on_connect_failed_ = options.connect_failed;
  on_stopped_ = options.stopped;
  return 0;
}

int Reconnector::start(Reconnector **out, Loop &loop, const char *host, std::uint16_t port,
                       const async_reconnect_options &options, const Upgrade &upgrade,
                       const async_stream_protocol &protocol, void *userdata) noexcept {
  // Bound until run_stopped()'s release, across all the connections.
  if (int err = Reader::bind(protocol, userdata)) return err;
  Reconnector *r = util::make<Reconnector>(loop, protocol, userdata);
  int err = r ? r->copy_config(host, port, options) : ASYNC_ENOMEM;
  if (!err) r->upgrade_ = upgrade;
  // The stopped task's slot, so finishing can never fail.
  bool reserved = !err && loop.reserve_task();
  if (!err) err = reserved ? r->start_connect() : ASYNC_ENOMEM;
  if (err) {
    if (reserved) loop.unreserve_task();
    // A connect start_connect() made and cancelled releases its forwarding
    // protocol, and with it a reference, on a later iteration.
    if (r) r->release();
    Reader::unbind(protocol, userdata);
    return err;
  }
  loop.object_added();
  loop.registry(ASYNC_OBJECT_RECONNECTOR).push_back(r->registry_node_);
  loop.backend().ref();  // a running reconnector keeps the loop running
  *out = r;
  return 0;
}

void Reconnector::release() noexcept {
  if (--refs_ == 0) util::destroy(this);
}

// ---- connecting -------------------------------------------------------------

int Reconnector::start_connect() noexcept {
  Future *f = nullptr;
  int err = Connector::start(&f, loop_, host_, port_, connect_, upgrade_, forward_, this);
  if (err) return err;
  f->make_internal();
  ++refs_;  // the forwarding protocol's, dropped by fwd_release
  if (f->add_callback(on_connected, this) != 0) {
    f->release_owner();  // cancels: the connector releases the protocol
    return ASYNC_ENOMEM;
  }
  ++refs_;  // on_connected's
  future_ = f;
  made_ = false;
  return 0;
}

void Reconnector::on_connected(async_future *future, int status, void *self) noexcept {
  auto *r = static_cast<Reconnector *>(self);
  r->future_ = nullptr;
  Future::from(future)->release_owner();  // drops its reference to the stream
  if (r->made_ || r->stopping_) {
    // Connected (the stream may be lost already), or cancelled by stop().
    if (!r->stream_) r->next_step();
  } else {
    r->connect_failed(status);
  }
  r->release();
}

void Reconnector::on_timer(void *self, std::uint32_t) noexcept {
  auto *r = static_cast<Reconnector *>(self);
  r->loop_.backend().timer_stop(r->timer_);
  r->waiting_ = false;
  int err = r->start_connect();
  if (err) r->connect_failed(err);
}

void Reconnector::connect_failed(int error) noexcept {
  ++failures_;
  bool give_up = max_attempts_ != 0 && failures_ >= max_attempts_;
  std::uint64_t delay = give_up ? 0 : backoff_ms();
  if (on_connect_failed_)
    loop_.invoke([&] { on_connect_failed_(c_reconnector(), error, failures_, delay, userdata_); });
  if (give_up) {
    begin_stop(error);
  } else if (!stopping_) {  // connect_failed may have called stop()
    wait(reconnect_now_ ? 0 : delay);
  }
  reconnect_now_ = false;
}

std::uint64_t Reconnector::backoff_ms() noexcept {
  double max = static_cast<double>(max_ms_);
  double base = static_cast<double>(initial_ms_);
  for (std::uint32_t n = 1; n < failures_ && base < max; ++n) base *= multiplier_;
  if (base > max) base = max;
  // xorshift64: a uniform u in [0, 1) for +/- jitter around base.
  random_ ^= random_ << 13;
  random_ ^= random_ >> 7;
  random_ ^= random_ << 17;
  double u = static_cast<double>(random_ >> 11) * 0x1.0p-53;
  double delay = base * (1.0 + jitter_ * (2.0 * u - 1.0));
  return static_cast<std::uint64_t>(delay < max ? delay : max);
}

void Reconnector::wait(std::uint64_t delay_ms) noexcept {
  waiting_ = true;
  loop_.backend().timer_start(timer_, util::ms_to_ns(delay_ms));
}

void Reconnector::next_step() noexcept {
  if (stopping_) {
    maybe_finish();
    return;
  }
  // After a loss the wait is the first backoff step (failures_ is 0 here).
  std::uint64_t delay = reconnect_now_ ? 0 : backoff_ms();
  reconnect_now_ = false;
  wait(delay);
}

// ---- the forwarding protocol ------------------------------------------------

void Reconnector::fwd_made(async_stream *s, void *self) noexcept {
  auto *r = static_cast<Reconnector *>(self);
  r->stream_ = Stream::from(s);
  r->made_ = true;
  r->failures_ = 0;
  if (r->user_.connection_made) r->user_.connection_made(s, r->userdata_);
}

std::size_t Reconnector::fwd_data(async_stream *s, const std::uint8_t *data, std::size_t len, void *self) noexcept {
  auto *r = static_cast<Reconnector *>(self);
  return r->user_.data_received(s, data, len, r->userdata_);
}

int Reconnector::fwd_eof(async_stream *s, void *self) noexcept {
  auto *r = static_cast<Reconnector *>(self);
  return r->user_.eof_received(s, r->userdata_);
}

void Reconnector::fwd_lost(async_stream *s, int error, void *self) noexcept {
  auto *r = static_cast<Reconnector *>(self);
  r->stream_ = nullptr;
  r->user_.connection_lost(s, error, r->userdata_);
  if (!r->future_) r->next_step();  // else on_connected does, once it ran
}

template <Reconnector::StreamEvent Event>
void Reconnector::fwd_event(async_stream *s, void *self) noexcept {
  auto *r = static_cast<Reconnector *>(self);
  (r->user_.*Event)(s, r->userdata_);
}

void Reconnector::fwd_release(void *self) noexcept {
  auto *r = static_cast<Reconnector *>(self);
  if (r->stream_) {
    // async_stream_set_protocol() took the live stream over: it is no
    // longer this reconnector's connection.
    r->stream_ = nullptr;
    if (!r->future_) r->next_step();
  }
  r->release();
}

// ---- control ----------------------------------------------------------------

int Reconnector::reconnect() noexcept {
  if (stopping_) return ASYNC_ECLOSED;
  if (stream_) {
    reconnect_now_ = true;
    stream_->abort(0);
  } else if (waiting_) {
    wait(0);
  } else if (!future_) {
    reconnect_now_ = true;  // inside connect_failed or connection_lost: no delay after it
  }
  return 0;
}

void Reconnector::stop() noexcept { stop(0); }

void Reconnector::stop(int error) noexcept {
  if (!stopping_) begin_stop(error);
}

void Reconnector::begin_stop(int error) noexcept {
  stopping_ = true;
  stop_error_ = error;
  if (waiting_) {
    waiting_ = false;
    loop_.backend().timer_stop(timer_);
  }
  if (future_) future_->cancel();  // on_connected still runs, then maybe_finish
  if (stream_) stream_->close();   // its connection_lost leads to maybe_finish
  maybe_finish();
}

void Reconnector::maybe_finish() noexcept {
  if (!stopping_ || future_ || stream_ || finish_queued_) return;
  finish_queued_ = true;
  loop_.push_reserved(core::Task{run_stopped, this});
}

void Reconnector::run_stopped(async_loop *, void *self) noexcept {
  auto *r = static_cast<Reconnector *>(self);
  Loop &loop = r->loop_;
  if (r->on_stopped_) loop.invoke([&] { r->on_stopped_(r->c_reconnector(), r->stop_error_, r->userdata_); });
  if (r->user_.release) r->user_.release(r->userdata_);
  r->registry_node_.unlink();
  loop.object_removed();
  loop.backend().unref();
  r->release();
}

int Reconnector::state() const noexcept {
  if (stopping_) return ASYNC_RECONNECT_STOPPING;
  if (stream_) return ASYNC_RECONNECT_CONNECTED;
  return waiting_ ? ASYNC_RECONNECT_WAITING : ASYNC_RECONNECT_CONNECTING;
}

async_stream *Reconnector::stream() const noexcept { return stream_ ? stream_->c_stream() : nullptr; }

}  // namespace async::net
