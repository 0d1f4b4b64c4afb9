// A layer of a stream stack (async/layer.h): the protocol of the stream
// below it and the byte source and sink of a stream above it, which the
// user drives as any async_stream. This base does what every layer shares:
// it installs itself on the lower stream, makes the upper one, carries
// flow control both ways (the upper stream not reading pauses the lower
// one; the lower one's pause_writing makes take() refuse, so the upper
// stream queues and pauses its own writers), ends the upper stream when the
// lower one is lost, closes or aborts the lower one when the upper one
// ends, and hands the lower stream back to a protocol on pop. A layer
// transforms bytes: take() from above, from_below() from below.
//
// Memory: the lower stream's protocol (until its release) and the upper
// stream (until it ended) each hold a reference; the last one destroys it.
#pragma once

#include <async/stream.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>

#include "net/core_names.hpp"
#include "net/stream.hpp"

namespace async::net {

class Layer {
 public:
  Layer(const Layer &) = delete;
  Layer &operator=(const Layer &) = delete;
  // Public only for util::destroy (the last reference's).
  virtual ~Layer();

  // Makes layer (from util::make, unreferenced) the protocol of lower and
  // the source of a new stream above it driven by protocol and userdata:
  // 0, or ASYNC_ECLOSED (lower is closing or lost) / ASYNC_ENOMEM with
  // nothing changed and layer destroyed. lower's protocol is replaced as
  // by set_protocol() (its release runs).
  static int push(Stream **upper, Layer *layer, Stream &lower, const async_stream_protocol &protocol,
                  void *userdata) noexcept;
  // Makes layer (from util::make, unreferenced) the protocol of lower with
  // no stream above it yet (net/upgrade.hpp): 0, or ASYNC_ECLOSED /
  // ASYNC_ENOMEM with nothing changed and layer destroyed.
  static int attach(Layer *layer, Stream &lower) noexcept;
  // The stream above an attached layer, driven by protocol and userdata:
  // 0, or ASYNC_ECLOSED (the stream below ended) / ASYNC_ENOMEM with
  // nothing changed. cache: a server's, whose streams share one record of
  // the same callbacks (Stream::ProtocolCache).
  int open_upper(Stream **upper, const async_stream_protocol &protocol, void *userdata,
                 Stream::ProtocolCache *cache = nullptr) noexcept;
  // async_layer_pop() on the stream above this layer: ASYNC_ECLOSED unless
  // it is open. The upper stream closes; once its bytes went down and the
  // layer finished, protocol and userdata take the lower stream.
  int pop(const async_stream_protocol &protocol, void *userdata) noexcept;

  // ---- the upper stream's side (Stream calls these) ----
  // Bytes from above: how many the layer took (0: none now; it calls the
  // upper stream's writing again once it can take more), or ASYNC_E*.
  virtual long take(const iovec *iov, int iovcnt) noexcept = 0;
  // Whether the upper stream reads now (is_reading()).
  void upper_watch(bool reading) noexcept;
  // What kind of layer this is: an address each kind owns (nullptr for
  // one no API asks about), so the C API finds its own kind without RTTI.
  virtual const void *kind() const noexcept { return nullptr; }
  // The upper stream's write_eof(), once its queue went down.
  virtual void upper_write_eof() noexcept;
  // The upper stream is lost: after close() (error 0, its bytes went
  // down), or aborted (by abort(), also with 0, or on an error).
  void upper_lost(int error, bool aborted) noexcept;
  // The upper stream ended (Stream::drop_callbacks()): its reference goes.
  void upper_ended() noexcept;
  // The stream on an fd at the bottom of the stack; nullptr once the
  // stream below has ended.
  const Stream *bottom() const noexcept;

 protected:
  explicit Layer(Loop &loop) noexcept : loop_(loop) {}

  // Bytes from the lower stream: how many were consumed (the rest is kept
  // there and presented again).
  virtual std::size_t from_below(const std::uint8_t *data, std::size_t len) noexcept = 0;
  // Whether the lower stream should read now; the base asks when the
  // upper stream's reading changes (sync_reading()).
  virtual bool wants_input() const noexcept { return upper_reading(); }
  // The lower stream has room again (its resume_writing).
  virtual void lower_room() noexcept { upper_room(); }
  // The lower stream's end of file. Default: the upper stream's.
  virtual void lower_eof() noexcept;
  // The lower stream is lost. Default: the upper stream too, with error
  // (ASYNC_EPIPE for 0 with writes pending above).
  virtual void lower_lost(int error) noexcept;
  // The upper stream closed and its bytes went down: the layer flushes
  // and closes the lower stream. Default: lower close().
  virtual void close_down() noexcept;
  // The upper stream was aborted: stop at once. Default: nothing (the base
  // aborts the lower stream).
  virtual void stop() noexcept {}
  // A pop's upper stream closed and its bytes went down: the layer ends
  // its protocol on the lower stream, then calls hand_over(). Default: at
  // once.
  virtual void pop_down() noexcept { hand_over(); }

  // Helpers for layers.
  Loop &loop() const noexcept { return loop_; }
  Stream *lower() const noexcept { return lower_; }
  // The upper stream reads now (open, made, not paused).
  bool upper_reading() const noexcept;
  bool lower_full() const noexcept { return lower_full_; }
  bool has_upper() const noexcept { return upper_ != nullptr; }
  // Presents data to the upper stream's protocol (kept there when not
  // consumed); false when it stopped reading meanwhile.
  bool deliver_up(const std::uint8_t *data, std::size_t len) noexcept;
  // Lets the upper stream send what it queued, if any.
  void upper_room() noexcept;
  // Pauses or resumes the lower stream's reading as wants_input() says.
  void sync_reading() noexcept;
  // Ends the upper stream with error (its queue dropped), if it is open.
  void fail_up(int error) noexcept;
  // The lower stream's end of file to the upper stream (eof_received).
  void eof_up() noexcept;
  // The lower stream to the pop's protocol.
  void hand_over() noexcept;

 private:
  static std::size_t on_data(async_stream *, const std::uint8_t *data, std::size_t len, void *self) noexcept;
  static int on_eof(async_stream *, void *self) noexcept;
  static void on_lost(async_stream *, int error, void *self) noexcept;
  static void on_pause(async_stream *, void *self) noexcept;
  static void on_resume(async_stream *, void *self) noexcept;
  static void on_release(void *self) noexcept;
  static const async_stream_protocol kLowerProtocol;

  void drop_reference() noexcept;
  // A pop whose hand-over can no longer come: its protocol's userdata
  // still gets its final notification.
  void abandon_pop() noexcept;

  Loop &loop_;
  Stream *lower_ = nullptr;  // nullptr once its protocol let go of this layer
  Stream *upper_ = nullptr;  // nullptr once lost
  int refs_ = 0;
  bool lower_full_ = false;    // the lower stream's pause_writing, no resume_writing yet
  bool lower_paused_ = false;  // this layer paused the lower stream's reading
  bool popping_ = false;       // pop() called, the hand-over not done
  bool pop_down_ = false;      // pop_down() called: the hand-over is the layer's to make
  async_stream_protocol pop_protocol_{};
  void *pop_userdata_ = nullptr;
};

}  // namespace async::net
