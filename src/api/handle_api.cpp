#include "api/api.hpp"
#include "core/hook.hpp"
#include "core/signal.hpp"
#include "core/timer.hpp"
#include "core/watcher.hpp"
#include "net/server.hpp"

using async::api::checked;
using async::api::checked_loop;
using async::api::guarded;
using async::api::with_object;
using async::api::with_open;
using async::api::refused;
using async::api::refused_loop;
using namespace async::core;
using async::net::Server;

namespace {

// Creates a handle of type T for async_<type>_new.
template <class T, class Out, class... Args>
int new_handle(Out **out, async_loop *loop, void *userdata, Args... args) {
  Loop *l = checked_loop(loop);
  if (!out || !l) return refused_loop(loop);
  return guarded([&]() -> int {
    T *h = Handle::create<T>(*l, userdata, args...);
    if (!h) return ASYNC_ENOMEM;
    *out = reinterpret_cast<Out *>(h);
    return 0;
  });
}

// The handle behind p if it is of type T, for async_<type>_handle: a
// cast, not a use, so any thread may make it (the handle call that
// follows checks the thread).
template <class T>
async_handle *as_handle(const void *p) {
  T *h = async::api::tagged_as<T>(p);
  return h ? h->c_handle() : nullptr;
}

}  // namespace

bool async::api::is_handle_tag(std::uint32_t tag) noexcept {
  return tag == Timer::kTag || tag == Watcher::kTag || tag == Hook::kTag || tag == Signal::kTag || tag == Server::kTag;
}

extern "C" {

// ---- handle ----------------------------------------------------------------

ASYNC_API int async_handle_close(async_handle *handle, async_close_fn close_cb) {
  return with_open<Handle>(handle, [&](Handle &h) { return h.close(close_cb); });
}

ASYNC_API int async_handle_ref(async_handle *handle) {
  return with_open<Handle>(handle, [](Handle &h) {
    h.ref();
    return 0;
  });
}

ASYNC_API int async_handle_unref(async_handle *handle) {
  return with_open<Handle>(handle, [](Handle &h) {
    h.unref();
    return 0;
  });
}

ASYNC_API int async_handle_has_ref(async_handle *handle) {
  Handle *h = checked<Handle>(handle);
  return h ? h->referenced() : refused<Handle>(handle);
}

ASYNC_API int async_handle_is_active(async_handle *handle) {
  Handle *h = checked<Handle>(handle);
  return h ? h->active() : refused<Handle>(handle);
}

ASYNC_API int async_handle_is_closing(async_handle *handle) {
  Handle *h = checked<Handle>(handle);
  return h ? h->closing() : refused<Handle>(handle);
}

ASYNC_API async_loop *async_handle_loop(async_handle *handle) {
  Handle *h = checked<Handle>(handle);
  return h ? h->loop().c_loop() : nullptr;
}

ASYNC_API void *async_handle_userdata(async_handle *handle) {
  Handle *h = checked<Handle>(handle);
  return h ? h->userdata() : nullptr;
}

ASYNC_API int async_handle_set_userdata(async_handle *handle, void *userdata) {
  return with_object<Handle>(handle, [&](Handle &h) {
    h.set_userdata(userdata);
    return 0;
  });
}

// ---- timer -----------------------------------------------------------------

ASYNC_API int async_timer_new(async_timer **out, async_loop *loop, void *userdata) {
  return new_handle<Timer>(out, loop, userdata);
}

ASYNC_API async_handle *async_timer_handle(async_timer *timer) { return as_handle<Timer>(timer); }

ASYNC_API int async_timer_start(async_timer *timer, uint64_t timeout_ms, uint64_t repeat_ms, async_timer_fn cb) {
  if (!cb) return ASYNC_EINVAL;
  return with_open<Timer>(timer, [&](Timer &t) -> int { return t.start(timeout_ms, repeat_ms, cb); });
}

ASYNC_API int async_timer_stop(async_timer *timer) {
  return with_open<Timer>(timer, [](Timer &t) -> int {
    t.stop();
    return 0;
  });
}

ASYNC_API int async_timer_again(async_timer *timer) {
  return with_open<Timer>(timer, [](Timer &t) -> int { return t.again(); });
}

ASYNC_API int async_timer_set_repeat(async_timer *timer, uint64_t repeat_ms) {
  return with_open<Timer>(timer, [&](Timer &t) -> int {
    t.set_repeat(repeat_ms);
    return 0;
  });
}

ASYNC_API int async_timer_get_repeat(uint64_t *out_ms, async_timer *timer) {
  Timer *t = checked<Timer>(timer);
  if (!t || !out_ms) return refused<Timer>(timer);
  *out_ms = t->repeat();
  return 0;
}

ASYNC_API int async_timer_due_in(uint64_t *out_ms, async_timer *timer) {
  Timer *t = checked<Timer>(timer);
  if (!t || !out_ms) return refused<Timer>(timer);
  *out_ms = t->due_in_ms();
  return 0;
}

// ---- watcher ---------------------------------------------------------------

ASYNC_API int async_watcher_new(async_watcher **out, async_loop *loop, int fd, void *userdata) {
  int err = check_fd(fd);
  if (err) return err;
  return new_handle<Watcher>(out, loop, userdata, fd);
}

ASYNC_API async_handle *async_watcher_handle(async_watcher *watcher) { return as_handle<Watcher>(watcher); }

static bool valid_events(uint32_t events) { return (events & ~(ASYNC_READABLE | ASYNC_WRITABLE)) == 0; }

ASYNC_API int async_watcher_start(async_watcher *watcher, uint32_t events, async_watcher_fn cb) {
  if (!cb || events == 0 || !valid_events(events)) return ASYNC_EINVAL;
  return with_open<Watcher>(watcher, [&](Watcher &w) -> int { return w.start(events, cb); });
}

ASYNC_API int async_watcher_set_events(async_watcher *watcher, uint32_t events) {
  if (!valid_events(events)) return ASYNC_EINVAL;
  return with_open<Watcher>(watcher, [&](Watcher &w) -> int { return w.set_events(events); });
}

ASYNC_API int async_watcher_stop(async_watcher *watcher) {
  return with_open<Watcher>(watcher, [](Watcher &w) -> int {
    w.stop();
    return 0;
  });
}

ASYNC_API int async_watcher_fd(async_watcher *watcher) {
  Watcher *w = checked<Watcher>(watcher);
  return w ? w->fd() : refused<Watcher>(watcher);
}

// ---- hook ------------------------------------------------------------------

ASYNC_API int async_hook_new(async_hook **out, async_loop *loop, int kind, void *userdata) {
  if (!Hook::valid_kind(kind)) return ASYNC_EINVAL;
  return new_handle<Hook>(out, loop, userdata, kind);
}

ASYNC_API async_handle *async_hook_handle(async_hook *hook) { return as_handle<Hook>(hook); }

ASYNC_API int async_hook_start(async_hook *hook, async_hook_fn cb) {
  if (!cb) return ASYNC_EINVAL;
  return with_open<Hook>(hook, [&](Hook &h) -> int {
    h.start(cb);
    return 0;
  });
}

ASYNC_API int async_hook_stop(async_hook *hook) {
  return with_open<Hook>(hook, [](Hook &h) -> int {
    h.stop();
    return 0;
  });
}

ASYNC_API int async_hook_get_kind(async_hook *hook) {
  Hook *h = checked<Hook>(hook);
  return h ? h->kind() : refused<Hook>(hook);
}

// ---- signal ----------------------------------------------------------------

ASYNC_API int async_signal_new(async_signal **out, async_loop *loop, void *userdata) {
  return new_handle<Signal>(out, loop, userdata);
}

ASYNC_API async_handle *async_signal_handle(async_signal *signal) { return as_handle<Signal>(signal); }

ASYNC_API int async_signal_start(async_signal *signal, int signum, async_signal_fn cb) {
  if (!cb || !Signal::valid_signum(signum)) return ASYNC_EINVAL;
  return with_open<Signal>(signal, [&](Signal &s) -> int { return s.start(signum, cb); });
}

ASYNC_API int async_signal_stop(async_signal *signal) {
  return with_open<Signal>(signal, [](Signal &s) -> int {
    s.stop();
    return 0;
  });
}

ASYNC_API int async_signal_signum(async_signal *signal) {
  Signal *s = checked<Signal>(signal);
  return s ? s->signum() : refused<Signal>(signal);
}
}
