#include "core/reader.hpp"

#include <async/error.h>

#include <cstring>

#include "core/bytes.hpp"
#include "core/future.hpp"
#include "core/loop.hpp"
#include "util/alloc.hpp"
#include "util/grow.hpp"

namespace async::core {

const async_stream_protocol Reader::kProtocol = {
    sizeof(async_stream_protocol), on_made, on_data, on_eof, on_lost, nullptr, nullptr, nullptr, on_release,
};

Reader *Reader::create(Loop &loop, std::size_t limit) noexcept {
  return util::make<Reader>(loop, limit ? limit : kDefaultLimit);
}

Reader::~Reader() {
  tag_ = 0xdeadbeef;
  util::mem_free(buf_);
}

void Reader::unref() noexcept {
  if (--refs_ == 0) util::destroy(this);
}

void Reader::release_owner() noexcept {
  owner_released_ = true;
  if (pending_) pending_->cancel();  // on_cancel forgets it
  unref();
}

// ---- the stream's side --------------------------------------------------------

void Reader::on_made(async_stream *stream, void *self) noexcept {
  auto *r = static_cast<Reader *>(self);
  r->stream_ = stream;
  r->attached_ = true;
  ++r->refs_;  // the stream's, until release
  r->sync_reading();
}

std::size_t Reader::on_data(async_stream *stream, const std::uint8_t *data, std::size_t len, void *self) noexcept {
  auto *r = static_cast<Reader *>(self);
  r->stream_ = stream;
  if (r->owner_released_) return len;  // nobody will read it
  // Takes everything (a refused tail would only come back with new data)
  // and pauses the stream once over the limit: at most limit plus one
  // read's worth is buffered.
  if (!util::grow_bytes(&r->buf_, &r->cap_, r->len_ + len)) {
    async_stream_abort(stream);
    r->fail(ASYNC_ENOMEM);
    return len;
  }
  std::memcpy(r->buf_ + r->len_, data, len);
  r->len_ += len;
  r->serve();
  r->sync_reading();
  return len;
}

int Reader::on_eof(async_stream *, void *self) noexcept {
  auto *r = static_cast<Reader *>(self);
  r->eof_ = true;
  r->serve();
  return 1;  // the user may still write; they close the stream
}

void Reader::on_lost(async_stream *, int error, void *self) noexcept {
  auto *r = static_cast<Reader *>(self);
  r->stream_ = nullptr;
  r->lost_ = true;
  r->error_ = error;
  r->serve();
}

void Reader::on_release(void *self) noexcept {
  // A stream that could not be created releases without connection_made.
  auto *r = static_cast<Reader *>(self);
  if (!r->attached_) return;
  r->attached_ = false;
  r->unref();
}

void Reader::sync_reading() noexcept {
  if (!stream_ || lost_) return;
  bool full = len_ >= limit_;
  if (full != paused_) {
    paused_ = full;
    full ? async_stream_pause_reading(stream_) : async_stream_resume_reading(stream_);
  }
}

// ---- reads --------------------------------------------------------------------

int Reader::read(Future **out, Mode mode, std::size_t n, const void *delim, std::size_t delim_len) noexcept {
  if (pending_) return ASYNC_ESTATE;
  Future *f = Future::create(loop_);
  if (!f) return ASYNC_ENOMEM;
  f->set_cancel(on_cancel, this);
  pending_ = f;
  mode_ = mode;
  n_ = n;
  if (delim_len) std::memcpy(delim_, delim, delim_len);
  delim_len_ = delim_len;
  *out = f;
  serve();
  sync_reading();
  return 0;
}

void Reader::on_cancel(async_future *, int, void *self) noexcept {
  static_cast<Reader *>(self)->pending_ = nullptr;  // the bytes stay buffered
}

void Reader::serve() noexcept {
  if (!pending_) return;
  bool ended = eof_ || lost_;
  int end_error = lost_ && error_ ? error_ : ASYNC_EEOF;
  switch (mode_) {
    case Mode::kExactly:
      if (len_ >= n_) return complete(n_);
      break;
    case Mode::kUntil: {
      for (std::size_t i = 0; i + delim_len_ <= len_; ++i)
        if (std::memcmp(buf_ + i, delim_, delim_len_) == 0) return complete(i + delim_len_);
      if (len_ >= n_) return fail(ASYNC_ENOBUFS);
      break;
    }
    case Mode::kSome:
      if (len_ > 0) return complete(len_ < n_ ? len_ : n_);
      if (ended && !(lost_ && error_)) return complete(0);
      break;
  }
  if (ended) fail(end_error);
}

void Reader::complete(std::size_t take) noexcept {
  Bytes *bytes = Bytes::create(buf_, take);
  if (!bytes) return fail(ASYNC_ENOMEM);
  if (take) std::memmove(buf_, buf_ + take, len_ - take);
  len_ -= take;
  Future *f = pending_;
  f->resolve(bytes, Bytes::destroy);  // on_cancel(0) forgets it
}

void Reader::fail(int error) noexcept {
  if (Future *f = pending_) f->reject(error);
}

}  // namespace async::core
