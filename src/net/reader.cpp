#include "net/reader.hpp"

#include <async/error.h>

#include <algorithm>
#include <cstring>

#include "core/future.hpp"
#include "core/loop.hpp"
#include "net/bytes.hpp"
#include "net/stream.hpp"
#include "util/alloc.hpp"
#include "util/container_of.hpp"

namespace async::net {

const async_stream_protocol Reader::kProtocol = {
    sizeof(async_stream_protocol), on_made, on_data, on_eof, on_lost, nullptr, nullptr, nullptr, on_release, 0, nullptr,
};

Reader *Reader::create(Loop &loop, std::size_t limit) noexcept {
  Reader *r = util::make<Reader>(loop, limit ? limit : kDefaultLimit);
  if (!r) return nullptr;
  loop.object_added();  // the loop outlives it: reads make futures on it
  loop.registry(ASYNC_OBJECT_READER).push_back(r->registry_node_);
  return r;
}

Reader *Reader::from_registry_node(util::ListNode *node) noexcept {
  return util::container_of(node, &Reader::registry_node_);
}

Reader::~Reader() {
  mark_dead();
  registry_node_.unlink();
  buf_.release();
  loop_.object_removed();
}

void Reader::maybe_destroy() noexcept {
  if (!owned_ && !bound_) util::destroy(this);
}

void Reader::release_owner() noexcept {
  owned_ = false;
  registry_node_.unlink();
  if (pending_) pending_->cancel();  // on_cancel forgets it
  // Nobody reads what is buffered or comes later: drop it, and let a
  // paused stream read (and drop) again so its peer is not held up.
  buf_.release();
  sync_reading();
  maybe_destroy();
}

// ---- binding --------------------------------------------------------------------

int Reader::bind_reader(void *userdata) noexcept {
  auto *r = static_cast<Reader *>(userdata);
  if (!r || r->tag_ != kTag) return ASYNC_EINVAL;
  if (r->bound_) return ASYNC_EBUSY;
  if (!r->owned_) return ASYNC_EINVAL;
  r->bound_ = true;
  r->begin_connection(nullptr);
  return 0;
}

void Reader::unbind(const async_stream_protocol &protocol, void *userdata) noexcept {
  if (protocol.release == on_release) static_cast<Reader *>(userdata)->bound_ = false;
}

// ---- the stream's side --------------------------------------------------------

void Reader::begin_connection(async_stream *stream) noexcept {
  stream_ = stream;
  buf_.clear();
  searched_ = 0;
  eof_ = lost_ = paused_ = false;
  error_ = 0;
}

void Reader::on_made(async_stream *stream, void *self) noexcept {
  // Under a reconnector, one binding sees a connection after another.
  auto *r = static_cast<Reader *>(self);
  r->begin_connection(stream);
  r->sync_reading();
}

std::size_t Reader::on_data(async_stream *stream, const std::uint8_t *data, std::size_t len, void *self) noexcept {
  auto *r = static_cast<Reader *>(self);
  r->stream_ = stream;         // set by async_stream_set_protocol(): no connection_made
  if (!r->owned_) return len;  // nobody will read it
  // Takes everything (a refused tail would only come back with new data)
  // and pauses the stream once over the limit: at most limit plus one
  // read's worth is buffered.
  if (!r->buf_.append(data, len)) {
    Stream::from(stream)->abort(ASYNC_ENOMEM);
    r->fail(ASYNC_ENOMEM);
    return len;
  }
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
  // After connection_lost, or without it: a connect that failed, a stream
  // given another protocol. Either way no more bytes come.
  auto *r = static_cast<Reader *>(self);
  r->bound_ = false;
  r->stream_ = nullptr;
  r->lost_ = true;
  r->serve();
  r->maybe_destroy();
}

void Reader::sync_reading() noexcept {
  if (!stream_ || lost_) return;
  // A pending read still wants bytes: read_exactly may need more than the limit.
  bool full = buf_.size() >= limit_ && !pending_;
  if (full != paused_) {
    paused_ = full;
    Stream *s = Stream::from(stream_);
    if (full)
      s->pause_reading();
    else
      s->resume_reading();  // cannot fail: kProtocol has no ASYNC_STREAM_DELIVER_EACH
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
  searched_ = 0;
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
      if (buf_.size() >= n_) return complete(n_);
      break;
    case Mode::kUntil:
      // Only a delimiter ending within the limit counts, so the outcome
      // is the same however the bytes were split into reads.
      if (std::size_t line = find_delimiter(std::min(buf_.size(), n_))) return complete(line);
      if (buf_.size() >= n_) return fail(ASYNC_ENOBUFS);
      break;
    case Mode::kSome:
      if (!buf_.empty()) return complete(std::min(buf_.size(), n_));
      if (ended && !(lost_ && error_)) return complete(0);
      break;
  }
  if (ended) fail(end_error);
}

std::size_t Reader::find_delimiter(std::size_t window) noexcept {
  if (window < delim_len_) return 0;
  const std::uint8_t *end = buf_.data() + window;
  const std::uint8_t *at = std::search<const std::uint8_t *>(buf_.data() + searched_, end, delim_, delim_ + delim_len_);
  if (at != end) return static_cast<std::size_t>(at - buf_.data()) + delim_len_;
  // Each delivery searches only where a delimiter could newly end.
  searched_ = window - delim_len_ + 1;
  return 0;
}

void Reader::complete(std::size_t take) noexcept {
  Bytes *bytes = Bytes::create(buf_.data(), take);
  if (!bytes) return fail(ASYNC_ENOMEM);
  buf_.consume(take);
  Future *f = pending_;
  f->resolve(bytes, Bytes::destroy, nullptr);  // on_cancel(0) forgets it
}

void Reader::fail(int error) noexcept {
  if (Future *f = pending_) f->reject(error);
}

}  // namespace async::net
