// A layer a connector or a server puts on each new connection before its
// user sees it (TLS from async_connect_options.tls or
// async_server_set_tls()). src/net stays below src/tls: src/api hands it
// this hook, and src/net never learns what the layer is.
//
// The layer goes on the stream with no stream above it (Layer::attach());
// once it is ready (a handshake done) it says so through done, and the
// owner opens the user's stream above it (Layer::open_upper()), whose
// connection_made runs from the loop. A layer that failed says why and
// ends the stream below itself.
#pragma once

#include <async/stream.h>

#include "net/core_names.hpp"

namespace async::net {

class Layer;
class Stream;

class Upgrade {
 public:
  // Called once: (owner, layer, 0) when layer is ready for the stream
  // above, or (owner, nullptr, error) once it failed (the stream below is
  // aborted right after).
  using Done = void (*)(void *owner, Layer *layer, int error) noexcept;
  // Puts the layer on lower (open, its protocol a placeholder that is
  // replaced): 0, or an ASYNC_E* code with lower left as it was.
  using Start = int (*)(void *context, Stream &lower, const char *name, Done done, void *owner) noexcept;
  using Hold = void (*)(void *context) noexcept;

  Upgrade() noexcept = default;
  // context is retained (and released when this goes).
  Upgrade(Start start, Hold retain, Hold release, void *context) noexcept
      : start_(start), retain_(retain), release_(release), context_(context) {
    retain_(context_);
  }
  Upgrade(const Upgrade &other) noexcept { *this = other; }
  Upgrade &operator=(const Upgrade &other) noexcept {
    if (this == &other) return *this;
    if (other.start_) other.retain_(other.context_);
    if (start_) release_(context_);
    start_ = other.start_;
    retain_ = other.retain_;
    release_ = other.release_;
    context_ = other.context_;
    return *this;
  }
  ~Upgrade() {
    if (start_) release_(context_);
  }

  explicit operator bool() const noexcept { return start_ != nullptr; }
  int start(Stream &lower, const char *name, Done done, void *owner) const noexcept {
    return start_(context_, lower, name, done, owner);
  }

  // The protocol of a stream made for an upgrade, until the layer replaces
  // it: nothing to tell anyone.
  static const async_stream_protocol kPlaceholder;

 private:
  Start start_ = nullptr;
  Hold retain_ = nullptr;
  Hold release_ = nullptr;
  void *context_ = nullptr;
};

}  // namespace async::net
