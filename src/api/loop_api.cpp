#include "api/api.hpp"
#include "core/loop_registry.hpp"
#include "net/loop_objects.hpp"

using async::api::checked_loop;
using async::api::queried_loop;
using async::api::guarded;
using async::api::refused_loop;
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
  return l ? guarded([&] { return l->destroy(); }) : refused_loop(loop);
}

ASYNC_API int async_loop_run(async_loop *loop, int mode) {
  Loop *l = queried_loop(loop);
  if (!l || mode < ASYNC_RUN_DEFAULT || mode > ASYNC_RUN_NOWAIT) return refused_loop(loop);
  return guarded([&]() -> int { return l->run(mode); });
}

ASYNC_API int async_loop_stop(async_loop *loop) {
  Loop *l = checked_loop(loop);
  if (!l) return refused_loop(loop);
  l->stop();
  return 0;
}

ASYNC_API int async_loop_alive(async_loop *loop) {
  Loop *l = queried_loop(loop);
  return l ? l->alive() : refused_loop(loop);
}

ASYNC_API int async_loop_now(uint64_t *out_ms, async_loop *loop) {
  Loop *l = queried_loop(loop);
  if (!l || !out_ms) return refused_loop(loop);
  *out_ms = l->now_ns() / 1000000u;
  return 0;
}

ASYNC_API int async_loop_now_update(async_loop *loop) {
  Loop *l = queried_loop(loop);
  if (!l) return refused_loop(loop);
  l->now_update();
  return 0;
}

ASYNC_API int async_loop_timeout(int64_t *out_ms, async_loop *loop) {
  Loop *l = queried_loop(loop);
  if (!l || !out_ms) return refused_loop(loop);
  *out_ms = l->timeout_ms();
  return 0;
}

ASYNC_API int async_loop_call_soon(async_loop *loop, async_callback cb, void *userdata) {
  Loop *l = checked_loop(loop);
  if (!l || !cb) return refused_loop(loop);
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
  if (!l) return refused_loop(loop);
  l->set_log(log, release, userdata);
  return 0;
}

ASYNC_API int async_loop_set_slow_callback(async_loop *loop, uint64_t threshold_ms) {
  Loop *l = checked_loop(loop);
  if (!l) return refused_loop(loop);
  l->set_slow_callback(threshold_ms);
  return 0;
}

ASYNC_API int async_loop_metric(uint64_t *out, async_loop *loop, int metric) {
  Loop *l = queried_loop(loop);
  if (!l || !out) return refused_loop(loop);
  return l->metric(out, metric);
}

ASYNC_API int async_loop_set_userdata(async_loop *loop, void *userdata) {
  Loop *l = checked_loop(loop);
  if (!l) return refused_loop(loop);
  l->set_userdata(userdata);
  return 0;
}

ASYNC_API void *async_loop_userdata(async_loop *loop) {
  Loop *l = queried_loop(loop);
  return l ? l->userdata() : nullptr;
}

ASYNC_API int async_loop_walk(async_loop *loop, async_walk_fn fn, void *userdata) {
  Loop *l = checked_loop(loop);
  if (!l || !fn) return refused_loop(loop);
  if (!l->may_visit(async::net::kObjectVisits)) return ASYNC_EBUSY;
  return guarded([&]() -> int { return async::net::walk_objects(*l, fn, userdata); });
}

ASYNC_API int async_loop_shutdown(async_loop *loop, async_close_fn close_cb) {
  Loop *l = checked_loop(loop);
  if (!l) return refused_loop(loop);
  if (!l->may_visit(async::net::kObjectVisits)) return ASYNC_EBUSY;
  return guarded([&]() -> int {
    async::net::shutdown_objects(*l, close_cb);
    return 0;
  });
}

ASYNC_API int async_loop_set_thread_check(async_loop *loop, int on) {
  Loop *l = checked_loop(loop);
  if (!l) return refused_loop(loop);
  l->set_thread_check(on != 0);
  return 0;
}

// Any thread, as post: the registry finds the loop only while it lives.
ASYNC_API int async_loop_hold(async_loop *loop) {
  if (!loop) return ASYNC_EINVAL;
  return guarded([&]() -> int { return async::core::loop_registry::hold(loop); });
}

ASYNC_API int async_loop_unhold(async_loop *loop) {
  if (!loop) return ASYNC_EINVAL;
  return guarded([&]() -> int { return async::core::loop_registry::unhold(loop); });
}

ASYNC_API int async_loop_fd(int *out, async_loop *loop) {
  Loop *l = queried_loop(loop);
  if (!l || !out) return refused_loop(loop);
  return guarded([&]() -> int { return l->embedding_fd(out); });
}

ASYNC_API int async_loop_run_for(async_loop *loop, uint64_t budget_us) {
  Loop *l = queried_loop(loop);
  if (!l || budget_us == 0) return refused_loop(loop);
  return guarded([&]() -> int { return l->run_for(budget_us > UINT64_MAX / 1000u ? UINT64_MAX : budget_us * 1000u); });
}

ASYNC_API int async_loop_fork(async_loop *loop) {
  Loop *l = checked_loop(loop);
  if (!l) return refused_loop(loop);
  return guarded([&] { return l->fork(); });
}
}
