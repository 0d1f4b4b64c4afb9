#include "core/signal_registry.hpp"

#include <async/error.h>
#include <signal.h>

#include <mutex>

namespace async::core::signal_registry {
namespace {

struct Entry {
  const Loop *owner = nullptr;
  int uses = 0;
  struct sigaction saved;
};

std::mutex g_mutex;
Entry g_entries[NSIG];

}  // namespace

int acquire(int signum, const Loop *loop) noexcept {
  std::lock_guard<std::mutex> lock(g_mutex);
  Entry &e = g_entries[signum];
  if (e.uses > 0 && e.owner != loop) return ASYNC_EBUSY;
  if (e.uses == 0) {
    sigaction(signum, nullptr, &e.saved);
    e.owner = loop;
  }
  ++e.uses;
  return 0;
}

void release(int signum) noexcept {
  std::lock_guard<std::mutex> lock(g_mutex);
  Entry &e = g_entries[signum];
  if (--e.uses > 0) return;
  e.owner = nullptr;
  sigaction(signum, &e.saved, nullptr);
}

}  // namespace async::core::signal_registry
