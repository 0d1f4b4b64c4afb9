// One-shot completion (DESIGN §6), modelled on asyncio.Future and nng_aio.
#pragma once

#include <async/future.h>

#include <cstddef>
#include <cstdint>

#include "util/list.hpp"
#include "util/ring.hpp"
#include "util/tagged.hpp"

namespace async::core {

class Loop;

class Future : public util::Tagged<0x46555452> {  // "FUTR"
 public:
  // A pending future owned by the caller; nullptr when out of memory.
  static Future *create(Loop &loop) noexcept;

  static Future *from(async_future *f) noexcept { return reinterpret_cast<Future *>(f); }
  static Future *from_registry_node(util::ListNode *node) noexcept;
  async_future *c_future() noexcept { return reinterpret_cast<async_future *>(this); }

  Loop &loop() const noexcept { return *loop_; }
  int state() const noexcept { return state_; }
  bool pending() const noexcept { return state_ == ASYNC_FUTURE_PENDING; }
  // 0, the error, ASYNC_ECANCELED, or ASYNC_ESTATE while pending.
  int status() const noexcept;
  void *value() const noexcept { return value_; }
  // Hands the value (and the duty to release it) to the caller.
  void *take_value() noexcept {
    void *value = value_;
    value_ = nullptr;
    destroy_ = nullptr;
    return value;
  }
  // A caller still holds a reference (the creator's or a retained one).
  bool referenced() const noexcept { return user_refs_ > 0; }

  int add_callback(async_future_fn fn, void *userdata) noexcept;
  int set_cancel(async_cancel_fn fn, void *userdata) noexcept;
  // A value the library allocated: destroy(value, context) frees memory
  // only and runs in place when the future is released.
  int resolve(void *value, async_destroy_fn destroy, void *context) noexcept;
  // The user's value (async_future_resolve): destroy is user code, so it
  // runs from the ready queue, never inside the call that releases the
  // future; its slot is reserved here (ASYNC_ENOMEM, nothing changed).
  int resolve_user(void *value, async_destroy_fn destroy, void *context) noexcept;
  int reject(int error) noexcept;
  // 1 if cancelled now, 0 if already complete.
  int cancel() noexcept;

  // Callers' references (future.h): the creator's, then
  // async_future_retain()'s. The callers check referenced() first.
  // async_future_free(): cancels a pending future, then drops a reference.
  void release_owner() noexcept { drop_reference(true); }
  // async_future_release(): drops a reference; cancels only a pending
  // future losing its last one (nothing could complete or read it then).
  void release_reference() noexcept { drop_reference(false); }
  // async_future_retain(); ASYNC_ERANGE at 2^32 - 1 references.
  int retain_reference() noexcept;

  // A future the library owns (a connector's lookup): off the loop's
  // registry, so neither walk nor shutdown sees it.
  void make_internal() noexcept { registry_node_.unlink(); }

  // The library's own references keep the memory alive (combinators,
  // scheduled callbacks, run_until); callers never see them.
  void retain() noexcept { ++refs_; }
  void release() noexcept;

  // Use create() and release_owner(); public only for util::make/destroy.
  explicit Future(Loop &loop) noexcept : loop_(&loop) {}
  ~Future();

 private:
  void drop_reference(bool cancel_pending) noexcept;
  void complete(int state, int error) noexcept;
  void schedule_callbacks() noexcept;
  static void run_callback(async_loop *loop, void *self) noexcept;

  struct Callback {
    async_future_fn fn;
    void *userdata;
  };

  Loop *loop_;
  util::ListNode registry_node_;  // on the loop's registry while a caller holds a reference
  util::Ring<Callback> callbacks_;
  void *value_ = nullptr;
  async_destroy_fn destroy_ = nullptr;
  void *destroy_context_ = nullptr;
  async_cancel_fn cancel_fn_ = nullptr;
  void *cancel_userdata_ = nullptr;
  int state_ = ASYNC_FUTURE_PENDING;
  int error_ = 0;
  std::size_t refs_ = 1;           // the callers' and the library's
  std::uint32_t user_refs_ = 1;    // the callers' (part of refs_)
  std::size_t scheduled_ = 0;      // callbacks whose task is in the ready queue
  bool destroy_deferred_ = false;  // destroy_ is the user's: a deferred call is reserved
};

}  // namespace async::core
