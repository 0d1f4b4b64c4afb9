// Base of every long-lived object (DESIGN §5): kind tag, loop, userdata,
// active/ref/closing state and the asynchronous close.
#pragma once

#include <async/handle.h>

#include <cstdint>

#include "core/loop.hpp"
#include "util/alloc.hpp"
#include "util/list.hpp"
#include "util/tagged.hpp"

namespace async::core {

class Handle;

// What differs between handle kinds, one table per kind (handle_kind<T>):
// the tag the API checks, its async_object_kind (the loop's registry list),
// how the kind stops and how it is freed. Handle dispatches through it, so
// the base knows no kind, and kinds defined in layers above core
// (net::Server) are handles like the others.
struct HandleKind {
  std::uint32_t tag;
  int object_kind;
  void (*stop)(Handle &handle) noexcept;
  void (*destroy)(Handle &handle) noexcept;
};

template <class T>
inline constexpr HandleKind handle_kind{
    T::kTag,
    T::kObjectKind,
    [](Handle &h) noexcept { static_cast<T &>(h).stop(); },
    [](Handle &h) noexcept {
      T &handle = static_cast<T &>(h);
      handle.loop().pool().destroy(&handle);
    },
};

class Handle : public util::TagWord {
 public:
  // Ready-queue slots reserved at creation: one for the close.
  static constexpr int kReservedTasks = 1;

  Handle(const HandleKind &kind, Loop &loop, void *userdata) noexcept;
  Handle(const Handle &) = delete;
  Handle &operator=(const Handle &) = delete;
  ~Handle();

  // Creates a handle of type T and registers it with the loop (reserving
  // the ready-queue slot its close will need). nullptr when out of memory.
  template <class T, class... Args>
  static T *create(Loop &loop, void *userdata, Args &&...args) noexcept;

  static Handle *from(async_handle *h) noexcept { return reinterpret_cast<Handle *>(h); }
  static Handle *from_registry_node(util::ListNode *node) noexcept;
  async_handle *c_handle() noexcept { return reinterpret_cast<async_handle *>(this); }

  Loop &loop() const noexcept { return *loop_; }
  void *userdata() const noexcept { return userdata_; }
  void set_userdata(void *userdata) noexcept { userdata_ = userdata; }

  bool active() const noexcept { return active_; }
  bool closing() const noexcept { return closing_; }
  bool referenced() const noexcept { return referenced_; }

  void ref() noexcept;
  void unref() noexcept;
  int close(async_close_fn close_cb) noexcept;
  // An internal handle (a combinator's timer): off the loop's registry, so
  // neither walk nor shutdown sees it; its owner closes it.
  void make_internal() noexcept { registry_node_.unlink(); }
  // Undoes create() for a handle that failed to start and was never given
  // to the user: no close callback, memory released at once.
  template <class T>
  static void discard(T *handle) noexcept;

 protected:
  // Subclasses report start/stop; active referenced handles keep run alive.
  void set_active(bool active) noexcept;

 private:
  void sync_keepalive() noexcept;
  static void finish_close(async_loop *loop, void *self) noexcept;

  const HandleKind *kind_;
  util::ListNode registry_node_;  // on the loop's registry until freed
  Loop *loop_;
  void *userdata_;
  async_close_fn close_cb_ = nullptr;
  bool active_ = false;
  bool referenced_ = true;
  bool counted_ = false;  // holds a loop reference
  bool closing_ = false;
};

template <class T, class... Args>
T *Handle::create(Loop &loop, void *userdata, Args &&...args) noexcept {
  int reserved = 0;
  while (reserved < T::kReservedTasks && loop.reserve_task()) ++reserved;
  T *handle =
      reserved == T::kReservedTasks ? loop.pool().make<T>(loop, userdata, static_cast<Args &&>(args)...) : nullptr;
  if (!handle) {
    while (reserved-- > 0) loop.unreserve_task();
    return nullptr;
  }
  loop.object_added();
  loop.registry(T::kObjectKind).push_back(handle->registry_node_);
  return handle;
}

template <class T>
void Handle::discard(T *handle) noexcept {
  Loop &loop = handle->loop();
  handle->stop();
  for (int i = 0; i < T::kReservedTasks; ++i) loop.unreserve_task();
  loop.pool().destroy(handle);
  loop.object_removed();
}

}  // namespace async::core
