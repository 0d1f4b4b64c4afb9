#include "api/api.hpp"
#include "core/combinator.hpp"
#include "core/future.hpp"

using async::api::checked;
using async::api::checked_loop;
using async::api::guarded;
using async::api::refused;
using async::api::refused_loop;
using async::core::Future;
using async::core::Gather;
using async::core::Loop;
using async::core::TimeoutWait;

namespace {

// A future a caller holds a reference to.
Future *owned(async_future *future) {
  Future *f = checked<Future>(future);
  return f && f->referenced() ? f : nullptr;
}

int gather(async_future **out, async_loop *loop, async_future *const *futures, size_t count, Gather::Mode mode) {
  Loop *l = checked_loop(loop);
  if (!out || !l || (count > 0 && !futures)) return refused_loop(loop);
  for (size_t i = 0; i < count; ++i) {
    Future *f = owned(futures[i]);
    if (!f || &f->loop() != l) return refused<Future>(futures[i]);
  }
  return guarded([&]() -> int {
    Future *result = nullptr;
    int err = Gather::create(&result, *l, futures, count, mode);
    if (!err) *out = result->c_future();
    return err;
  });
}

}  // namespace

extern "C" {

ASYNC_API int async_future_new(async_future **out, async_loop *loop) {
  Loop *l = checked_loop(loop);
  if (!out || !l) return refused_loop(loop);
  return guarded([&]() -> int {
    Future *f = Future::create(*l);
    if (!f) return ASYNC_ENOMEM;
    *out = f->c_future();
    return 0;
  });
}

ASYNC_API int async_future_free(async_future *future) {
  Future *f = owned(future);
  if (!f) return refused<Future>(future);
  f->release_owner();
  return 0;
}

ASYNC_API async_loop *async_future_loop(async_future *future) {
  Future *f = checked<Future>(future);
  return f ? f->loop().c_loop() : nullptr;
}

ASYNC_API int async_future_get_state(async_future *future) {
  Future *f = checked<Future>(future);
  return f ? f->state() : refused<Future>(future);
}

ASYNC_API int async_future_result(void **out_value, async_future *future) {
  Future *f = checked<Future>(future);
  if (!f) return refused<Future>(future);
  int status = f->status();
  if (status == 0 && out_value) *out_value = f->value();
  return status;
}

ASYNC_API int async_future_add_callback(async_future *future, async_future_fn cb, void *userdata) {
  Future *f = owned(future);
  if (!f || !cb) return refused<Future>(future);
  return guarded([&]() -> int { return f->add_callback(cb, userdata); });
}

ASYNC_API int async_future_cancel(async_future *future) {
  Future *f = checked<Future>(future);
  if (!f) return refused<Future>(future);
  return guarded([&]() -> int { return f->cancel(); });
}

ASYNC_API int async_future_set_cancel(async_future *future, async_cancel_fn cancel, void *userdata) {
  Future *f = checked<Future>(future);
  if (!f || !cancel) return refused<Future>(future);
  return f->set_cancel(cancel, userdata);
}

ASYNC_API int async_future_resolve(async_future *future, void *value, async_destroy_fn destroy, void *context) {
  Future *f = checked<Future>(future);
  if (!f) return refused<Future>(future);
  return guarded([&]() -> int { return f->resolve_user(value, destroy, context); });
}

ASYNC_API int async_future_reject(async_future *future, int error) {
  Future *f = checked<Future>(future);
  if (!f || error >= 0) return refused<Future>(future);
  return guarded([&]() -> int { return f->reject(error); });
}

ASYNC_API int async_future_all(async_future **out, async_loop *loop, async_future *const *futures, size_t count) {
  return gather(out, loop, futures, count, Gather::Mode::kAll);
}

ASYNC_API int async_future_any(async_future **out, async_loop *loop, async_future *const *futures, size_t count) {
  if (count == 0) return ASYNC_EINVAL;
  return gather(out, loop, futures, count, Gather::Mode::kAny);
}

ASYNC_API int async_future_timeout(async_future **out, async_future *future, uint64_t timeout_ms) {
  Future *f = owned(future);
  if (!out || !f) return refused<Future>(future);
  return guarded([&]() -> int {
    Future *result = nullptr;
    int err = TimeoutWait::create(&result, *f, timeout_ms);
    if (!err) *out = result->c_future();
    return err;
  });
}

ASYNC_API int async_loop_run_until(async_loop *loop, async_future *future) {
  Loop *l = checked_loop(loop);
  Future *f = owned(future);
  if (!l || !f || &f->loop() != l) return refused_loop(loop);
  return guarded([&]() -> int { return l->run_until(*f); });
}

ASYNC_API int async_future_retain(async_future *future) {
  Future *f = owned(future);
  return f ? f->retain_reference() : refused<Future>(future);
}

ASYNC_API int async_future_release(async_future *future) {
  Future *f = owned(future);
  if (!f) return refused<Future>(future);
  f->release_reference();
  return 0;
}
}
