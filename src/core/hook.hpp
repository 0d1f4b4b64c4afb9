// Prepare/check/idle hooks run by the loop around its poll (DESIGN §5).
#pragma once

#include <async/hook.h>

#include <cstdint>

#include "core/handle.hpp"
#include "util/list.hpp"

namespace async::core {

class Hook : public Handle {
 public:
  static constexpr std::uint32_t kTag = 0x484f4f4b;  // "HOOK"
  static constexpr int kObjectKind = ASYNC_OBJECT_HOOK;

  Hook(Loop &loop, void *userdata, int kind) noexcept : Handle(handle_kind<Hook>, loop, userdata), kind_(kind) {
    node_.owner = this;
  }

  static Hook *from(async_hook *h) noexcept { return reinterpret_cast<Hook *>(h); }
  async_hook *c_hook() noexcept { return reinterpret_cast<async_hook *>(this); }
  static bool valid_kind(int kind) noexcept { return kind >= ASYNC_HOOK_PREPARE && kind <= ASYNC_HOOK_IDLE; }

  void start(async_hook_fn cb) noexcept;
  void stop() noexcept;
  int kind() const noexcept { return kind_; }

  // Runs every hook of one kind that is active when the pass begins; hooks
  // started during the pass wait for the next one, hooks stopped during it
  // do not run.
  static void run_all(Loop &loop, int kind) noexcept;

 private:
  struct Node : util::ListNode {
    Hook *owner;
  };
  Node node_;
  async_hook_fn cb_ = nullptr;
  int kind_;
};

}  // namespace async::core
