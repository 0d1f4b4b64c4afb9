#include "net/layer.hpp"

#include <async/error.h>

#include "core/loop.hpp"
#include "net/stream.hpp"
#include "net/upgrade.hpp"
#include "util/alloc.hpp"

namespace async::net {

// Presented again at once with the rest of a delivery (a protocol pushing
// this layer inside data_received gets the bytes after its own at once),
// and the lower stream's kept bytes replayed when reading resumes.
const async_stream_protocol Layer::kLowerProtocol = {
    sizeof(async_stream_protocol), nullptr, on_data, on_eof, on_lost, on_pause, on_resume, nullptr, on_release,
    ASYNC_STREAM_DELIVER_EACH,     nullptr,
};

const async_stream_protocol Upgrade::kPlaceholder = {
    sizeof(async_stream_protocol),
    nullptr,
    [](async_stream *, const std::uint8_t *, std::size_t, void *) noexcept -> std::size_t { return 0; },
    nullptr,
    [](async_stream *, int, void *) noexcept {},
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    0,
    nullptr,
};

Layer::~Layer() = default;

int Layer::push(Stream **upper, Layer *layer, Stream &lower, const async_stream_protocol &protocol,
                void *userdata) noexcept {
  int err = lower.state() == Stream::kOpen ? 0 : ASYNC_ECLOSED;
  if (!err) err = Stream::open_layered(&layer->upper_, lower, *layer, &kLowerProtocol, protocol, userdata);
  if (err) {
    util::destroy(layer);
    return err;
  }
  layer->refs_ = 2;  // the upper stream's and the lower stream's protocol's
  layer->lower_ = &lower;
  layer->lower_full_ = lower.writing_paused_;
  layer->sync_reading();  // stopped until the upper stream reads
  *upper = layer->upper_;
  return 0;
}

int Layer::attach(Layer *layer, Stream &lower) noexcept {
  int err = lower.state() == Stream::kOpen ? lower.replace_protocol(kLowerProtocol, layer) : ASYNC_ECLOSED;
  if (err) {
    util::destroy(layer);
    return err;
  }
  layer->refs_ = 1;  // the lower stream's protocol's; the upper stream adds its own
  layer->lower_ = &lower;
  layer->lower_full_ = lower.writing_paused_;
  layer->sync_reading();
  return 0;
}

int Layer::open_upper(Stream **upper, const async_stream_protocol &protocol, void *userdata,
                      Stream::ProtocolCache *cache) noexcept {
  if (!lower_ || lower_->state() != Stream::kOpen) return ASYNC_ECLOSED;
  if (int err = Stream::open_layered(&upper_, *lower_, *this, nullptr, protocol, userdata, cache)) return err;
  ++refs_;
  sync_reading();  // stopped until the upper stream reads
  *upper = upper_;
  return 0;
}

int Layer::pop(const async_stream_protocol &protocol, void *userdata) noexcept {
  if (!upper_ || upper_->state() != Stream::kOpen || !lower_) return ASYNC_ECLOSED;
  popping_ = true;
  pop_protocol_ = protocol;
  pop_userdata_ = userdata;
  upper_->close();  // the bytes above go down first; upper_lost(0) hands over
  return 0;
}

// ---- the upper stream's side -------------------------------------------------

void Layer::upper_watch(bool) noexcept { sync_reading(); }

void Layer::upper_write_eof() noexcept {
  if (lower_) lower_->write_eof();
}

void Layer::upper_lost(int error, bool aborted) noexcept {
  bool writes_went_down = error == 0 && !aborted;
  upper_ = nullptr;
  if (!lower_) return;
  if (!writes_went_down) {
    stop();
    lower_->abort(error);
  } else if (popping_) {
    pop_down_ = true;
    pop_down();
  } else {
    close_down();
  }
}

void Layer::upper_ended() noexcept {
  // The stack failed before the pop's bytes went down; a layer still
  // ending its protocol (pop_down()) hands over later, or the lower
  // stream's end abandons the pop.
  if (!pop_down_) abandon_pop();
  drop_reference();
}

void Layer::abandon_pop() noexcept {
  if (!popping_) return;
  popping_ = false;
  if (pop_protocol_.release) pop_protocol_.release(pop_userdata_);
}

const Stream *Layer::bottom() const noexcept { return lower_ ? lower_->socket_stream() : nullptr; }

void Layer::close_down() noexcept { lower_->close(); }

void Layer::hand_over() noexcept {
  popping_ = false;
  Stream *lower = lower_;
  // The lower stream's release of this layer runs inside: lower_ is cleared.
  if (int err = lower->replace_protocol(pop_protocol_, pop_userdata_)) {
    if (pop_protocol_.release) pop_protocol_.release(pop_userdata_);
    lower->abort(err);
  }
}

// ---- the lower stream's protocol ---------------------------------------------

std::size_t Layer::on_data(async_stream *, const std::uint8_t *data, std::size_t len, void *self) noexcept {
  auto *layer = static_cast<Layer *>(self);
  if (!layer->wants_input()) {
    layer->sync_reading();
    return 0;
  }
  return layer->from_below(data, len);
}

int Layer::on_eof(async_stream *, void *self) noexcept {
  static_cast<Layer *>(self)->lower_eof();
  return 1;  // open for writing until the layer closes it
}

void Layer::lower_eof() noexcept { eof_up(); }

void Layer::eof_up() noexcept {
  if (upper_) upper_->read_eof();
}

void Layer::on_lost(async_stream *, int error, void *self) noexcept { static_cast<Layer *>(self)->lower_lost(error); }

void Layer::lower_lost(int error) noexcept {
  if (upper_) fail_up(error == 0 && upper_->writing() ? ASYNC_EPIPE : error);
}

void Layer::on_pause(async_stream *, void *self) noexcept { static_cast<Layer *>(self)->lower_full_ = true; }

void Layer::on_resume(async_stream *, void *self) noexcept {
  auto *layer = static_cast<Layer *>(self);
  layer->lower_full_ = false;
  layer->lower_room();
}

void Layer::on_release(void *self) noexcept {
  auto *layer = static_cast<Layer *>(self);
  // The next protocol of a stream still open reads it as this layer found it.
  if (layer->lower_paused_) layer->lower_->resume_reading();
  layer->lower_ = nullptr;
  if (layer->pop_down_) layer->abandon_pop();  // the upper stream is gone: no hand-over now
  // Replaced by a hostile async_stream_set_protocol() on the lower stream:
  // the upper one has lost its source.
  if (layer->upper_) layer->fail_up(ASYNC_ECLOSED);
  layer->drop_reference();
}

void Layer::drop_reference() noexcept {
  if (--refs_ == 0) util::destroy(this);
}

// ---- helpers -------------------------------------------------------------------

bool Layer::upper_reading() const noexcept { return upper_ && upper_->is_reading(); }

bool Layer::deliver_up(const std::uint8_t *data, std::size_t len) noexcept {
  return upper_ && upper_->deliver(data, len);
}

void Layer::upper_room() noexcept {
  if (upper_ && upper_->state() != Stream::kLost && upper_->writing()) upper_->write_some();
}

void Layer::sync_reading() noexcept {
  if (!lower_) return;
  bool want = wants_input();
  if (want == !lower_paused_) return;
  lower_paused_ = !want;
  if (want)
    lower_->resume_reading();  // kept bytes replayed (this protocol delivers each)
  else
    lower_->pause_reading();
}

void Layer::fail_up(int error) noexcept {
  if (upper_) upper_->abort(error);
}

}  // namespace async::net
