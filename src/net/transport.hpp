// The lifecycle Stream and Datagram share (DESIGN §7), as a CRTP base
// without data (it adds no byte to either): connection_made through the
// ready queue, close() that lets queued sends drain and abort() that drops
// them, connection_lost exactly once and last, and pause_writing /
// resume_writing around the write limits (util::WaterMarks).
//
// Derived provides: callbacks() (its async_*_protocol), c_handle(),
// loop(), fd(), userdata_, lost_error_, made_, writing_paused_, marks_,
// state_ (State::kOpen/kClosing/kLost), write_buffer_size(), has_queued()
// (sends wait), stop_receiving() (on close), drop_queued() (on abort),
// after_made(), update_io() and schedule_lost(error); a byte-stream
// transport using present() also presenting() (data_received may be called
// again now).
#pragma once

#include <async/error.h>
#include <async/stream.h>

#include <cstddef>
#include <cstdint>

#include "core/loop.hpp"

namespace async::net {

template <class Derived>
class Transport {
 public:
  // low <= high; may call pause_writing at once.
  int set_write_limits(std::size_t high, std::size_t low) noexcept {
    if (!self().marks_.set(high, low)) return ASYNC_EINVAL;
    maybe_pause();
    return 0;
  }

  // No more receiving; connection_lost once the queued sends are out.
  void close() noexcept {
    Derived &d = self();
    if (d.state_ != Derived::State::kOpen) return;
    d.state_ = Derived::State::kClosing;
    d.stop_receiving();
    if (d.has_queued())
      d.update_io();  // the queue still drains
    else
      d.schedule_lost(0);
  }

  // connection_lost(error) without sending what is queued.
  void abort(int error) noexcept {
    Derived &d = self();
    if (d.state_ == Derived::State::kLost) return;
    d.drop_queued();
    d.schedule_lost(error);
  }

 protected:
  // The ready-queue task of loop.transport_opened(): connection_made, then
  // the transport starts (after_made()).
  static void run_made(async_loop *, void *transport) noexcept {
    Derived &d = *static_cast<Derived *>(transport);
    d.made_ = true;
    const auto &p = d.callbacks();
    if (p.connection_made) d.loop().invoke([&] { p.connection_made(d.c_handle(), d.userdata_); });
    d.after_made();
  }

  // connection_lost, the protocol's release, and the fd's slot back to the
  // loop: what ends every transport, after which it may be freed.
  void tell_lost() noexcept {
    Derived &d = self();
    const auto &p = d.callbacks();
    d.loop().invoke([&] { p.connection_lost(d.c_handle(), d.lost_error_, d.userdata_); });
    if (p.release) p.release(d.userdata_);
    d.loop().transport_closed(d.fd());
  }

  // data_received(data, len) from the loop. With ASYNC_STREAM_DELIVER_EACH
  // it is called again at once with the rest while it consumes something,
  // bytes remain and the transport is still presenting(); the protocol is
  // read afresh each round, so set_protocol() inside takes effect at once.
  // The one place that repeats, for streams and the layers over them (TLS
  // presenting plaintext). Returns the bytes consumed (<= len).
  std::size_t present(const std::uint8_t *data, std::size_t len) noexcept {
    Derived &d = self();
    std::size_t done = 0;
    for (;;) {
      std::size_t n = 0;
      d.loop().invoke([&] { n = d.callbacks().data_received(d.c_handle(), data + done, len - done, d.userdata_); });
      if (n > len - done) n = len - done;  // more than it was given: all of it
      done += n;
      if (n == 0 || done == len || !(d.callbacks().flags & ASYNC_STREAM_DELIVER_EACH) || !d.presenting()) return done;
    }
  }

  // pause_writing once the queue is strictly above the high-water mark.
  void maybe_pause() noexcept {
    Derived &d = self();
    if (d.state_ != Derived::State::kOpen || d.writing_paused_ || d.write_buffer_size() <= d.marks_.high) return;
    d.writing_paused_ = true;
    const auto &p = d.callbacks();
    if (p.pause_writing) d.loop().invoke([&] { p.pause_writing(d.c_handle(), d.userdata_); });
  }

  // resume_writing once a paused queue is at or below the low-water mark;
  // false when the transport was lost meanwhile.
  bool maybe_resume() noexcept {
    Derived &d = self();
    if (!d.writing_paused_ || d.write_buffer_size() > d.marks_.low) return true;
    d.writing_paused_ = false;
    const auto &p = d.callbacks();
    if (p.resume_writing) d.loop().invoke([&] { p.resume_writing(d.c_handle(), d.userdata_); });
    return d.state_ != Derived::State::kLost;
  }

 private:
  Derived &self() noexcept { return static_cast<Derived &>(*this); }
};

}  // namespace async::net
