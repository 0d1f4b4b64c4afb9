#include "net/queue_binding.hpp"

#include <async/error.h>

#include "core/future.hpp"
#include "core/handle.hpp"
#include "net/queue.hpp"
#include "net/stream.hpp"
#include "util/alloc.hpp"
#include "util/container_of.hpp"

namespace async::net {

const async_stream_protocol Binding::kProtocol = {
    sizeof(async_stream_protocol),
    on_made,
    on_data,
    on_eof,
    on_lost,
    nullptr,
    on_writable,
    nullptr,
    on_release,
    0,
    nullptr,
};

Binding::~Binding() {
  mark_dead();
  node_.unlink();
  held_.release();
  if (retained_) Stream::from(stream_)->release();
}

Binding *Binding::from_node(util::ListNode *node) noexcept { return util::container_of(node, &Binding::node_); }

Binding *Binding::of(Stream &stream) noexcept {
  return stream.protocol_release() == on_release ? static_cast<Binding *>(stream.userdata()) : nullptr;
}

// ---- streams ----------------------------------------------------------------------

void Binding::attach(async_stream *stream) noexcept {
  // A stream given this protocol by set_protocol gets no connection_made:
  // its first callback attaches it.
  if (stream_) return;
  role_ = Role::kStream;
  stream_ = stream;
  // Records name the stream until the final one was polled.
  retained_ = Stream::from(stream)->retain() == 0;
}

void Binding::report(std::uint32_t kind) noexcept {
  if (!queue_.push(async_event{token_, kind, 0, stream_, nullptr, 0})) Stream::from(stream_)->abort(ASYNC_ENOMEM);
}

void Binding::present() noexcept {
  // The stream is paused while a DATA record waits: the bytes stay put.
  if (!queue_.push(async_event{token_, ASYNC_EVENT_DATA, 0, stream_, held_.data(), held_.size()})) {
    Stream::from(stream_)->abort(ASYNC_ENOMEM);
    return;
  }
  presented_ = true;
  Stream::from(stream_)->pause_reading();
}

void Binding::on_made(async_stream *stream, void *self) noexcept {
  auto *b = static_cast<Binding *>(self);
  b->attach(stream);
  if (!b->accepting_) return b->report(ASYNC_EVENT_CONNECTED);
  // Accepted: nothing is read before async_queue_accept gives it a token.
  Stream::from(stream)->pause_reading();
  b->report(ASYNC_EVENT_ACCEPT);
}

std::size_t Binding::on_data(async_stream *stream, const std::uint8_t *data, std::size_t len, void *self) noexcept {
  auto *b = static_cast<Binding *>(self);
  b->attach(stream);
  Stream *s = Stream::from(stream);
  // Paused while presented or accepting; a delivery racing the pause is
  // kept by the stream for later.
  if (b->presented_ || b->accepting_) return 0;
  if (b->held_.size() + len > s->read_limit()) {
    s->abort(ASYNC_ENOBUFS);
    return len;
  }
  if (!b->held_.append(data, len)) {
    s->abort(ASYNC_ENOMEM);
    return len;
  }
  b->present();
  return len;
}

int Binding::on_eof(async_stream *stream, void *self) noexcept {
  auto *b = static_cast<Binding *>(self);
  b->attach(stream);
  // Bytes left unconsumed come once more before the end, as they would to
  // a callback protocol.
  if (!b->held_.empty() && !b->presented_) b->present();
  b->report(ASYNC_EVENT_EOF);
  return 1;  // the caller closes when done writing
}

void Binding::on_writable(async_stream *, void *self) noexcept {
  static_cast<Binding *>(self)->report(ASYNC_EVENT_WRITABLE);
}

void Binding::finish(async_event event) noexcept {
  lost_ = true;
  queue_.push_final(event);
}

void Binding::on_lost(async_stream *stream, int error, void *self) noexcept {
  auto *b = static_cast<Binding *>(self);
  b->attach(stream);
  b->finish(async_event{b->token_, ASYNC_EVENT_LOST, error, b->stream_, nullptr, 0});
}

void Binding::on_release(void *self) noexcept {
  // After connection_lost, or without it: a connect that failed, a
  // stream given another protocol, an accept the library could not finish.
  auto *b = static_cast<Binding *>(self);
  if (!b->lost_) b->finish(async_event{b->token_, ASYNC_EVENT_LOST, ASYNC_ECANCELED, b->stream_, nullptr, 0});
  b->queue_.retire(*b);
}

int Binding::consume(Stream &stream, std::size_t n) noexcept {
  if (!presented_) return ASYNC_ESTATE;
  presented_ = false;
  held_.consume(n < held_.size() ? n : held_.size());
  return stream.resume_reading();
}

int Binding::accept(Stream &stream, std::uint64_t token) noexcept {
  if (!accepting_) return ASYNC_EINVAL;
  accepting_ = false;
  token_ = token;
  return stream.resume_reading();
}

// ---- servers, timers, futures ----------------------------------------------------------

int Binding::factory(const async_stream_protocol **out_protocol, void **out_userdata, async_server *,
                     void *self) noexcept {
  auto *server = static_cast<Binding *>(self);
  server->role_ = Role::kHandle;
  Binding *b = server->queue_.bind(server->token_);
  if (!b) return ASYNC_ENOMEM;  // refused: the connection is closed
  b->role_ = Role::kStream;
  b->accepting_ = true;
  *out_protocol = &kProtocol;
  *out_userdata = b;
  return 0;
}

void Binding::on_timer(async_timer *timer, void *self) noexcept {
  auto *b = static_cast<Binding *>(self);
  // No room: the expiry is dropped, as overdue expiries are merged.
  (void)b->queue_.push(async_event{b->token_, ASYNC_EVENT_TIMER, 0, timer, nullptr, 0});
}

void Binding::on_closed(async_handle *, void *self) noexcept {
  auto *b = static_cast<Binding *>(self);
  b->finish(async_event{b->token_, ASYNC_EVENT_CLOSED, 0, nullptr, nullptr, 0});
  b->queue_.retire(*b);
}

void Binding::on_future(async_future *future, int status, void *self) noexcept {
  auto *b = static_cast<Binding *>(self);
  b->finish(async_event{b->token_, ASYNC_EVENT_FUTURE, status, future, nullptr, 0});
  b->queue_.retire(*b);
}

}  // namespace async::net
