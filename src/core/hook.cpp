#include "core/hook.hpp"

#include "core/loop.hpp"

namespace async::core {

void Hook::start(async_hook_fn cb) noexcept {
  cb_ = cb;
  if (active()) return;
  loop().hooks(kind_).push_back(node_);
  loop().hooks_changed(kind_, +1);
  set_active(true);
}

void Hook::stop() noexcept {
  if (!active()) return;
  node_.unlink();
  loop().hooks_changed(kind_, -1);
  set_active(false);
}

void Hook::run_all(Loop &loop, int kind) noexcept {
  util::List &hooks = loop.hooks(kind);
  if (hooks.empty()) return;
  util::List pass;
  pass.splice(hooks);
  while (!pass.empty()) {
    util::ListNode *node = pass.front();
    node->unlink();
    hooks.push_back(*node);
    Hook *hook = static_cast<Node *>(node)->owner;
    loop.invoke([&] { hook->cb_(hook->c_hook(), hook->userdata()); });
  }
}

}  // namespace async::core
