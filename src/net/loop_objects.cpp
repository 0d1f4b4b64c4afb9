#include "net/loop_objects.hpp"

#include <async/error.h>

#include "core/future.hpp"
#include "core/handle.hpp"
#include "core/loop.hpp"
#include "net/datagram.hpp"
#include "net/reader.hpp"
#include "net/reconnector.hpp"
#include "net/server.hpp"
#include "net/stream.hpp"

namespace async::net {
namespace {

using util::ListNode;

bool is_handle_kind(int kind) noexcept { return kind >= ASYNC_OBJECT_TIMER && kind <= ASYNC_OBJECT_SERVER; }

// The pointer the user holds for a node of the registry list of kind.
void *object_of(int kind, ListNode *node) noexcept {
  if (is_handle_kind(kind)) return Handle::from_registry_node(node)->c_handle();
  switch (kind) {
    case ASYNC_OBJECT_STREAM: return Stream::from_list_node(node)->c_stream();
    case ASYNC_OBJECT_DATAGRAM: return Datagram::from_registry_node(node)->c_datagram();
    case ASYNC_OBJECT_FUTURE: return Future::from_registry_node(node)->c_future();
    case ASYNC_OBJECT_READER: return Reader::from_registry_node(node);
    default: return Reconnector::from_registry_node(node)->c_reconnector();
  }
}

// Calls fn(stream) for every stream: those on the loop's list, then each
// server's accepted ones.
template <class F>
void each_stream(Loop &loop, F &&fn) noexcept {
  loop.visit(loop.registry(ASYNC_OBJECT_STREAM), [&](ListNode *node) { fn(*Stream::from_list_node(node)); });
  loop.visit(loop.registry(ASYNC_OBJECT_SERVER), [&](ListNode *node) {
    auto *server = static_cast<Server *>(Handle::from_registry_node(node));
    loop.visit(server->connections(), [&](ListNode *c) { fn(*Stream::from_list_node(c)); });
  });
}

}  // namespace

int walk_objects(Loop &loop, async_walk_fn fn, void *userdata) noexcept {
  int calls = 0;
  for (int kind = ASYNC_OBJECT_TIMER; kind < Loop::kObjectKinds; ++kind) {
    auto report = [&](void *object) {
      ++calls;
      loop.invoke([&] { fn(kind, object, userdata); });
    };
    if (kind == ASYNC_OBJECT_STREAM)
      each_stream(loop, [&](Stream &s) { report(s.c_stream()); });
    else
      loop.visit(loop.registry(kind), [&](ListNode *node) { report(object_of(kind, node)); });
  }
  return calls;
}

// Each step can run user code (a future's cancel hook, a zero-copy write's
// done callback) that closes or frees other objects: visit() allows that.
void shutdown_objects(Loop &loop, async_close_fn close_cb) noexcept {
  // Streams first: a reconnector's or a connect's stream ends with
  // ASYNC_ECANCELED here rather than closed by its owner's stop below.
  each_stream(loop, [](Stream &s) { s.abort(ASYNC_ECANCELED); });
  loop.visit(loop.registry(ASYNC_OBJECT_DATAGRAM),
             [](ListNode *node) { Datagram::from_registry_node(node)->abort(ASYNC_ECANCELED); });
  loop.visit(loop.registry(ASYNC_OBJECT_RECONNECTOR),
             [](ListNode *node) { Reconnector::from_registry_node(node)->stop(ASYNC_ECANCELED); });
  // Connects, lookups and reads end with their futures.
  loop.visit(loop.registry(ASYNC_OBJECT_FUTURE), [](ListNode *node) { Future::from_registry_node(node)->cancel(); });
  for (int kind = ASYNC_OBJECT_TIMER; is_handle_kind(kind); ++kind) {
    loop.visit(loop.registry(kind), [&](ListNode *node) {
      Handle *h = Handle::from_registry_node(node);
      if (!h->closing()) h->close(close_cb);
    });
  }
}

}  // namespace async::net
