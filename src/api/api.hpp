// Helpers for the extern "C" layer: every entry point validates its
// arguments, checks object tags, calls one core method and maps the result,
// and nothing unwinds through the C ABI (DESIGN §2.8).
#pragma once

#include <async.h>

#include <new>

#include "core/handle.hpp"
#include "core/loop.hpp"
#include "util/tagged.hpp"

namespace async::api {

// ASYNC_EINVAL as a plain int, for conditionals mixing it with values.
constexpr int kInvalid = ASYNC_EINVAL;

// Runs body, turning any escaping exception into an error code.
template <class F>
int guarded(F &&body) noexcept {
  try {
    return body();
  } catch (const std::bad_alloc &) {
    return ASYNC_ENOMEM;
  } catch (...) {
    return ASYNC_EINTERNAL;
  }
}

// The object behind p if its tag is Tag, else nullptr.
template <class T>
T *checked(const void *p) noexcept {
  static_assert(util::TagWord::first_in<T>());
  if (!p || util::TagWord::tag_at(p) != T::kTag) return nullptr;
  return static_cast<T *>(const_cast<void *>(p));
}

inline core::Loop *checked_loop(async_loop *loop) noexcept { return checked<core::Loop>(loop); }

// Whether tag is that of a handle kind (handle_api.cpp knows them all).
bool is_handle_tag(std::uint32_t tag) noexcept;

// Any handle kind; nullptr for anything else.
inline core::Handle *checked_handle(const void *p) noexcept {
  static_assert(util::TagWord::first_in<core::Handle>());
  if (!p || !is_handle_tag(util::TagWord::tag_at(p))) return nullptr;
  return static_cast<core::Handle *>(const_cast<void *>(p));
}

// Runs op(T&) on an object of type T: ASYNC_EINVAL for a NULL or
// wrong-kind pointer.
template <class T, class Op>
int with_object(const void *p, Op &&op) noexcept {
  T *obj = checked<T>(p);
  if (!obj) return ASYNC_EINVAL;
  return guarded([&] { return op(*obj); });
}

// As with_object(), and ASYNC_ECLOSED once the object is closing.
template <class T, class Op>
int with_open(const void *p, Op &&op) noexcept {
  return with_object<T>(p, [&](T &obj) -> int { return obj.closing() ? ASYNC_ECLOSED : op(obj); });
}

// As with_object() for a transport (net::Transport<T>): ASYNC_ECLOSED once
// it has ended, when its memory is held by references only.
template <class T, class Op>
int with_transport(const void *p, Op &&op) noexcept {
  return with_object<T>(p, [&](T &obj) -> int { return obj.ended() ? ASYNC_ECLOSED : op(obj); });
}

// A transport's loop, or nullptr for an invalid or ended one.
template <class T>
async_loop *transport_loop(const void *p) noexcept {
  T *obj = checked<T>(p);
  return obj && !obj->ended() ? obj->loop().c_loop() : nullptr;
}

// A transport's userdata (nullptr once ended: released by then).
template <class T>
void *transport_userdata(const void *p) noexcept {
  T *obj = checked<T>(p);
  return obj ? obj->userdata() : nullptr;
}

// async_*_retain() and async_*_release() of a transport.
template <class T>
int retain_transport(const void *p) noexcept {
  T *obj = checked<T>(p);
  return obj ? obj->retain() : ASYNC_EINVAL;
}

template <class T>
int release_transport(const void *p) noexcept {
  T *obj = checked<T>(p);
  return obj ? obj->release() : ASYNC_EINVAL;
}

}  // namespace async::api
