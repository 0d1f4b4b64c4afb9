// The lifecycle Stream and Datagram share (DESIGN §7), as a CRTP base
// without data (it adds no byte to either): connection_made through the
// ready queue, close() that lets queued sends drain and abort() that drops
// them, connection_lost exactly once and last, and pause_writing /
// resume_writing around the write limits (util::WaterMarks), and the
// lifetime rule of stream.h and datagram.h: the memory stays until the
// transport has ended (connection_lost and release returned) and every
// reference is released.
//
// Derived provides: callbacks() (its async_*_protocol), c_handle(),
// loop(), fd(), loop_ (a pointer), userdata_, refs_ (std::uint32_t, 1 at
// creation: the connection's), library_refs() (those of refs_ the library
// holds besides the connection's), lost_error_, writing_paused_, marks_,
// state() and set_state() (State::kOpen/kClosing/kLost), set_made(),
// write_buffer_size(), has_queued() (sends wait), stop_receiving() (on
// close), drop_queued() (on abort), after_made(), update_io(),
// schedule_lost(error) and drop_callbacks()
// (lets go of callbacks shared with other transports, on the loop's thread
// as end() runs, so the destructor touches nothing shared); a byte-stream
// transport using present() also presenting() (data_received may be called
// again now); optionally recycle(loop, transport) (end()).
#pragma once

#include <async/error.h>
#include <async/stream.h>

#include <cstddef>
#include <cstdint>

#include "core/loop.hpp"
#include "util/alloc.hpp"

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
    if (d.state() != Derived::State::kOpen) return;
    d.set_state(Derived::State::kClosing);
    d.stop_receiving();
    if (d.has_queued())
      d.update_io();  // the queue still drains
    else
      d.schedule_lost(0);
  }

  // connection_lost(error) without sending what is queued.
  void abort(int error) noexcept {
    Derived &d = self();
    if (d.state() == Derived::State::kLost) return;
    d.drop_queued();
    // A stream over a layer tells the layer an abort from a close, also
    // an abort with 0 (async_stream_abort()): nothing more goes down.
    if constexpr (requires { d.schedule_aborted(error); })
      d.schedule_aborted(error);
    else
      d.schedule_lost(error);
  }

  // connection_lost and release have returned: the transport is detached
  // from its loop (which may be freed before it) and only references keep
  // its memory; every call but the loop and userdata queries (NULL now)
  // returns ASYNC_ECLOSED.
  bool ended() const noexcept { return self().loop_ == nullptr; }

  // A caller's reference (async_*_retain); ASYNC_ERANGE at 2^32 - 1 of them.
  int retain() noexcept {
    Derived &d = self();
    if (d.refs_ == UINT32_MAX) return ASYNC_ERANGE;
    ++d.refs_;
    return 0;
  }

  // Drops a caller's reference (async_*_release), freeing the memory when
  // it was the last one and the transport has ended. ASYNC_EINVAL when
  // none is held: the connection's (until ended) and the library's own
  // (library_refs(): a connect future's value) are not the caller's.
  int release() noexcept {
    Derived &d = self();
    if (d.refs_ <= (ended() ? 0U : 1U) + d.library_refs()) return ASYNC_EINVAL;
    drop_reference();
    return 0;
  }

 protected:
  // The ready-queue task of loop.transport_opened(): connection_made, then
  // the transport starts (after_made()).
  static void run_made(async_loop *, void *transport) noexcept {
    Derived &d = *static_cast<Derived *>(transport);
    d.set_made();
    const auto &p = d.callbacks();
    if (p.connection_made) d.loop().invoke([&] { p.connection_made(d.c_handle(), d.userdata_); });
    d.after_made();
  }

  // connection_lost, the protocol's release, and the fd's slot back to the
  // loop: what ends every transport. Then the connection's reference goes:
  // the memory with it, unless a caller holds one (retained meanwhile,
  // even inside these callbacks). Memory that goes here, on the loop's
  // thread, may go back to the loop instead (Derived::recycle(loop, d)).
  void end() noexcept {
    Derived &d = self();
    Loop &loop = d.loop();
    const auto &p = d.callbacks();
    loop.invoke([&] { p.connection_lost(d.c_handle(), d.lost_error_, d.userdata_); });
    if (p.release) p.release(d.userdata_);
    loop.transport_closed(d.fd());
    d.loop_ = nullptr;
    d.userdata_ = nullptr;
    d.drop_callbacks();
    if constexpr (requires { Derived::recycle(loop, d); }) {
      if (d.refs_ == 1) {
        Derived::recycle(loop, d);
        return;
      }
    }
    drop_reference();
  }

  // Touches nothing but the object: the loop may be gone, and a release
  // after async_loop_free() may come from any thread, concurrently with
  // another transport's (end() dropped what is shared with them).
  void drop_reference() noexcept {
    Derived &d = self();
    if (--d.refs_ == 0) util::destroy(&d);
  }

  // data_received(data, len) from the loop. With ASYNC_STREAM_DELIVER_EACH
  // it is called again at once with the rest while it consumes something,
  // bytes remain and the transport is still presenting(); the protocol is
  // read afresh each round, so set_protocol() inside takes effect at once.
  // The one place that repeats, for streams and the layers over them (TLS
  // presenting plaintext). Returns the bytes consumed (<= len).
  std::size_t present(const std::uint8_t *data, std::size_t len) noexcept {
    std::size_t done = present_once(data, len);
    return done == len || !presents_again(done) ? done : present_rest(data, len, done);
  }

  // One data_received of len bytes: those it consumed.
  std::size_t present_once(const std::uint8_t *data, std::size_t len) noexcept {
    Derived &d = self();
    std::size_t n = 0;
    d.loop().invoke([&] { n = d.callbacks().data_received(d.c_handle(), data, len, d.userdata_); });
    return n < len ? n : len;  // more than it was given: all of it
  }
  // Whether present() calls data_received again after it consumed n
  // bytes and some are left.
  bool presents_again(std::size_t n) const noexcept {
    const Derived &d = self();
    return n != 0 && (d.callbacks().flags & ASYNC_STREAM_DELIVER_EACH) && d.presenting();
  }
  // present()'s further rounds, out of line: most protocols take all.
  [[gnu::noinline]] std::size_t present_rest(const std::uint8_t *data, std::size_t len, std::size_t done) noexcept {
    for (;;) {
      std::size_t n = present_once(data + done, len - done);
      done += n;
      if (done == len || !presents_again(n)) return done;
    }
  }

  // pause_writing once the queue is strictly above the high-water mark.
  void maybe_pause() noexcept {
    Derived &d = self();
    if (d.state() != Derived::State::kOpen || d.writing_paused_ || d.write_buffer_size() <= d.marks_.high) return;
    pause();
  }
  // maybe_pause() past its tests, out of line: its callers (a write, a
  // change of the limits) usually stop at them and then need no frame.
  [[gnu::noinline]] void pause() noexcept {
    Derived &d = self();
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
    return d.state() != Derived::State::kLost;
  }

 private:
  Derived &self() noexcept { return static_cast<Derived &>(*this); }
  const Derived &self() const noexcept { return static_cast<const Derived &>(*this); }
};

}  // namespace async::net
