#include "api/api.hpp"
#include "core/loop_registry.hpp"

using async::api::checked_loop;
using async::api::guarded;
using async::api::kInvalid;
using async::core::Loop;

extern "C" {

ASYNC_API int async_loop_new(async_loop **out) {
  if (!out) return ASYNC_EINVAL;
  return guarded([&]() -> int {
    Loop *loop = nullptr;
    int err = Loop::create(&loop);
    if (!err) *out = loop->c_loop();
    return err;
  });
}

ASYNC_API int async_loop_free(async_loop *loop) {
  Loop *l = checked_loop(loop);
  return l ? guarded([&] { return l->destroy(); }) : kInvalid;
}

ASYNC_API int async_loop_run(async_loop *loop, int mode) {
  Loop *l = checked_loop(loop);
  if (!l || mode < ASYNC_RUN_DEFAULT || mode > ASYNC_RUN_NOWAIT) return ASYNC_EINVAL;
  return guarded([&]() -> int { return l->run(mode); });
}

ASYNC_API int async_loop_stop(async_loop *loop) {
  Loop *l = checked_loop(loop);
  if (!l) return ASYNC_EINVAL;
  l->stop();
  return 0;
}

ASYNC_API int async_loop_alive(async_loop *loop) {
  Loop *l = checked_loop(loop);
  return l ? l->alive() : kInvalid;
}

ASYNC_API int async_loop_now(uint64_t *out_ms, async_loop *loop) {
  Loop *l = checked_loop(loop);
  if (!l || !out_ms) return ASYNC_EINVAL;
  *out_ms = l->now_ns() / 1000000u;
  return 0;
}

ASYNC_API int async_loop_now_update(async_loop *loop) {
  Loop *l = checked_loop(loop);
  if (!l) return ASYNC_EINVAL;
  l->now_update();
  return 0;
}

ASYNC_API int async_loop_timeout(int64_t *out_ms, async_loop *loop) {
  Loop *l = checked_loop(loop);
  if (!l || !out_ms) return ASYNC_EINVAL;
  *out_ms = l->timeout_ms();
  return 0;
}

ASYNC_API int async_loop_call_soon(async_loop *loop, async_callback cb, void *userdata) {
  Loop *l = checked_loop(loop);
  if (!l || !cb) return ASYNC_EINVAL;
  return l->call_soon(cb, userdata);
}

// Not tag-checked: the loop may be freed already; the registry only
// compares addresses.
ASYNC_API int async_loop_post(async_loop *loop, async_callback cb, void *userdata) {
  if (!loop || !cb) return ASYNC_EINVAL;
  return guarded([&]() -> int { return async::core::loop_registry::post(loop, cb, userdata); });
}

ASYNC_API int async_loop_wakeup(async_loop *loop) {
  if (!loop) return ASYNC_EINVAL;
  return guarded([&]() -> int { return async::core::loop_registry::wakeup(loop); });
}

ASYNC_API int async_loop_set_log(async_loop *loop, async_log_fn log, async_release_fn release, void *userdata) {
  Loop *l = checked_loop(loop);
  if (!l) return ASYNC_EINVAL;
  l->set_log(log, release, userdata);
  return 0;
}

ASYNC_API int async_loop_set_slow_callback(async_loop *loop, uint64_t threshold_ms) {
  Loop *l = checked_loop(loop);
  if (!l) return ASYNC_EINVAL;
  l->set_slow_callback(threshold_ms);
  return 0;
}

ASYNC_API int async_loop_metric(uint64_t *out, async_loop *loop, int metric) {
  Loop *l = checked_loop(loop);
  if (!l || !out) return ASYNC_EINVAL;
  return l->metric(out, metric);
}
}
