#include "api/api.hpp"
#include "core/future.hpp"
#include "core/timer.hpp"
#include "net/queue.hpp"
#include "net/queue_binding.hpp"
#include "net/stream.hpp"

using async::api::checked;
using async::api::checked_loop;
using async::api::guarded;
using async::api::refused;
using async::api::refused_loop;
using async::api::with_object;
using async::api::with_transport;
using async::core::Future;
using async::core::Handle;
using async::core::Loop;
using async::core::Timer;
using async::net::Binding;
using async::net::Queue;
using async::net::Stream;

namespace {

// op(Binding&, Stream&) for a stream in queue mode.
template <class Op>
int with_binding(async_stream *stream, Op &&op) {
  return with_transport<Stream>(stream, [&](Stream &s) -> int {
    Binding *b = Binding::of(s);
    return b ? op(*b, s) : ASYNC_EINVAL;
  });
}

}  // namespace

extern "C" {

ASYNC_API int async_queue_new(async_queue **out, async_loop *loop) {
  Loop *l = checked_loop(loop);
  if (!out || !l) return refused_loop(loop);
  return guarded([&]() -> int {
    Queue *q = Queue::create(*l);
    if (!q) return ASYNC_ENOMEM;
    *out = q->c_queue();
    return 0;
  });
}

ASYNC_API int async_queue_free(async_queue *queue) {
  return with_object<Queue>(queue, [](Queue &q) { return q.free(); });
}

ASYNC_API int async_queue_poll(async_event *out, size_t capacity, async_queue *queue, int64_t timeout_ms) {
  if (!out || capacity == 0) return ASYNC_EINVAL;
  if (capacity > INT32_MAX) capacity = INT32_MAX;  // the count is returned as an int
  return with_object<Queue>(queue, [&](Queue &q) { return q.poll(out, capacity, timeout_ms); });
}

ASYNC_API int async_queue_post(async_queue *queue, uint64_t token) {
  // Any thread: the tag is checked, not the owner thread.
  Queue *q = async::api::tagged_as<Queue>(queue);
  if (!q) return ASYNC_EINVAL;
  return guarded([&] { return q->post(token); });
}

ASYNC_API int async_queue_watch(async_queue *queue, async_future *future, uint64_t token) {
  Future *f = checked<Future>(future);
  if (!f) return refused<Future>(future);
  return with_object<Queue>(queue, [&](Queue &q) { return q.watch(*f, token); });
}

ASYNC_API int async_queue_bind(void **out, async_queue *queue, uint64_t token) {
  if (!out) return ASYNC_EINVAL;
  return with_object<Queue>(queue, [&](Queue &q) -> int {
    Binding *b = q.bind(token);
    if (!b) return ASYNC_ENOMEM;
    *out = b;
    return 0;
  });
}

ASYNC_API int async_queue_unbind(async_queue *queue, void *binding) {
  return with_object<Queue>(queue, [&](Queue &q) -> int {
    Binding *b = q.binding_at(binding);
    if (!b) return ASYNC_EINVAL;
    if (b->role() != Binding::Role::kNone) return ASYNC_EBUSY;
    q.forget_final();
    async::util::destroy(b);
    return 0;
  });
}

ASYNC_API const async_stream_protocol *async_queue_protocol(void) { return &Binding::kProtocol; }

ASYNC_API async_stream_factory async_queue_factory(void) { return Binding::factory; }

ASYNC_API int async_queue_accept(async_stream *stream, uint64_t token) {
  return with_binding(stream, [&](Binding &b, Stream &s) { return b.accept(s, token); });
}

ASYNC_API int async_stream_consume(async_stream *stream, size_t n) {
  return with_binding(stream, [&](Binding &b, Stream &s) { return b.consume(s, n); });
}

ASYNC_API int async_queue_timer_start(async_queue *queue, async_timer *timer, uint64_t timeout_ms, uint64_t repeat_ms) {
  Timer *t = checked<Timer>(timer);
  if (!t) return refused<Timer>(timer);
  return with_object<Queue>(queue, [&](Queue &q) -> int {
    Binding *b = q.binding_at(t->userdata());
    if (!b || (b->role() != Binding::Role::kNone && b->role() != Binding::Role::kHandle)) return ASYNC_EINVAL;
    if (t->closing()) return ASYNC_ECLOSED;
    int err = t->start(timeout_ms, repeat_ms, Binding::on_timer);
    if (!err) b->take(Binding::Role::kHandle);
    return err;
  });
}

ASYNC_API int async_queue_close(async_queue *queue, async_handle *handle) {
  Handle *h = checked<Handle>(handle);
  if (!h) return refused<Handle>(handle);
  return with_object<Queue>(queue, [&](Queue &q) -> int {
    Binding *b = q.binding_at(h->userdata());
    if (!b || (b->role() != Binding::Role::kNone && b->role() != Binding::Role::kHandle)) return ASYNC_EINVAL;
    if (h->closing()) return ASYNC_ECLOSED;
    b->take(Binding::Role::kHandle);
    return h->close(Binding::on_closed);
  });
}
}
