// Helpers for the extern "C" layer: every entry point validates its
// arguments, checks object tags, calls one core method and maps the result,
// and nothing unwinds through the C ABI (DESIGN §2.8).
#pragma once

#include <async.h>

#include <new>
#include <type_traits>

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

// The loop obj belongs to, whose thread check (async_loop_set_thread_check)
// its calls pass; nullptr for objects of no loop (address lists, bytes).
template <class T>
core::Loop *loop_of(T &obj) noexcept {
  if constexpr (std::is_same_v<T, core::Loop>)
    return &obj;
  else if constexpr (requires { obj.ended(); })
    return obj.ended() ? nullptr : &obj.loop();  // an ended transport has no loop
  else if constexpr (requires { obj.loop(); })
    return &obj.loop();
  else
    return nullptr;
}

// Whether tag is that of a handle kind (handle_api.cpp knows them all).
bool is_handle_tag(std::uint32_t tag) noexcept;

// p as a T if its tag is T's (for core::Handle: any handle kind's), else
// nullptr.
template <class T>
T *tagged_as(const void *p) noexcept {
  static_assert(util::TagWord::first_in<T>());
  if (!p) return nullptr;
  const std::uint32_t tag = util::TagWord::tag_at(p);
  if constexpr (std::is_same_v<T, core::Handle>) {
    if (!is_handle_tag(tag)) return nullptr;
  } else if (tag != T::kTag) {
    return nullptr;
  }
  return static_cast<T *>(const_cast<void *>(p));
}

// Whether the caller may use obj: always, unless its loop checks threads
// and the caller is not the loop's (one branch while the check is off).
// The call may change what obj's loop has to do: an embedded loop's fd
// turns readable between runs (Loop::entered).
template <class T>
bool on_its_thread(T &obj) noexcept {
  core::Loop *loop = loop_of(obj);
  return !loop || loop->entered();
}

// The object behind p if its tag is T's and the caller passes its loop's
// thread check, else nullptr: every entry point validates through here
// (checked<core::Handle> for any handle kind), so the thread check covers
// every call.
template <class T>
T *checked(const void *p) noexcept {
  T *obj = tagged_as<T>(p);
  return obj && on_its_thread(*obj) ? obj : nullptr;
}

// The error for a call refused because of p (or of another argument):
// ASYNC_EWRONGTHREAD when p is a T that only the thread check refused,
// else ASYNC_EINVAL.
template <class T>
int refused(const void *p) noexcept {
  T *obj = tagged_as<T>(p);
  return obj && !on_its_thread(*obj) ? ASYNC_EWRONGTHREAD : ASYNC_EINVAL;
}

inline core::Loop *checked_loop(async_loop *loop) noexcept { return checked<core::Loop>(loop); }
// As checked_loop(), for the calls that only read the loop's state or run
// it: a host embedding the loop calls them around every wait, so they must
// not make its fd readable.
inline core::Loop *queried_loop(async_loop *loop) noexcept {
  core::Loop *l = tagged_as<core::Loop>(loop);
  return l && l->on_owner_thread() ? l : nullptr;
}
inline int refused_loop(async_loop *loop) noexcept { return refused<core::Loop>(loop); }

// Runs op(T&) on an object of type T: ASYNC_EINVAL for a NULL or
// wrong-kind pointer, ASYNC_EWRONGTHREAD from a thread the check refuses.
template <class T, class Op>
int with_object(const void *p, Op &&op) noexcept {
  T *obj = checked<T>(p);
  if (!obj) return refused<T>(p);
  return guarded([&] { return op(*obj); });
}

// As with_object(), and ASYNC_ECLOSED once the object is closing.
template <class T, class Op>
int with_open(const void *p, Op &&op) noexcept {
  return with_object<T>(p, [&](T &obj) -> int { return obj.closing() ? ASYNC_ECLOSED : op(obj); });
}

// As with_object() for a transport (net::Transport<T>): ASYNC_ECLOSED once
// it has ended, when its memory is held by references only.
// Every stream and datagram call comes through here. ended() is tested
// before the entry check, so the usual path reads the transport's loop
// once (with_object() tests it after the check's call, reading it again).
template <class T, class Op>
int with_transport(const void *p, Op &&op) noexcept {
  T *obj = tagged_as<T>(p);
  if (!obj) return ASYNC_EINVAL;
  if (obj->ended()) return ASYNC_ECLOSED;
  if (!obj->loop().entered()) [[unlikely]]
    return ASYNC_EWRONGTHREAD;
  return guarded([&] { return op(*obj); });
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
  return obj ? obj->retain() : refused<T>(p);
}

template <class T>
int release_transport(const void *p) noexcept {
  T *obj = checked<T>(p);
  return obj ? obj->release() : refused<T>(p);
}

}  // namespace async::api
