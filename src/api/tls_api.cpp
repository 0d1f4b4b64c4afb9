#include <async/tls.h>

#include "api/api.hpp"
#include "api/tls_hook.hpp"
#include "core/future.hpp"
#include "net/reader.hpp"
#include "net/server.hpp"
#include "net/stream.hpp"
#include "tls/tls_context.hpp"
#include "tls/tls_layer.hpp"
#include "util/sized_struct.hpp"

using async::api::checked;
using async::api::guarded;
using async::api::with_transport;
using async::core::Future;
using async::net::Reader;
using async::net::Server;
using async::net::Stream;
using async::tls::Context;
using async::tls::TlsLayer;
using async::util::copy_sized;

namespace {

// op(TlsLayer&) for a stream above TLS.
template <class Op>
int with_tls(async_stream *stream, Op &&op) noexcept {
  return with_transport<Stream>(stream, [&](Stream &s) -> int {
    TlsLayer *layer = TlsLayer::under(s);
    return layer ? op(*layer) : ASYNC_EINVAL;
  });
}

}  // namespace

int async::api::connect_upgrade(net::Upgrade &out, const async_connect_options &options) noexcept {
  if (!options.tls) return 0;
  Context *c = checked<Context>(options.tls);
  if (!c || c->server()) return ASYNC_EINVAL;
  out = TlsLayer::upgrade(*c);
  return 0;
}

extern "C" {

ASYNC_API int async_tls_context_new(async_tls_context **out, async_tls_side side, const async_tls_options *options) {
  async_tls_options copied;
  if (!out || copy_sized(copied, options) != 0) return ASYNC_EINVAL;
  return guarded([&]() -> int {
    Context *ctx = nullptr;
    int err = Context::create(&ctx, side, copied);
    if (!err) *out = ctx->c_context();
    return err;
  });
}

ASYNC_API int async_tls_context_retain(async_tls_context *ctx) {
  Context *c = checked<Context>(ctx);
  if (!c) return ASYNC_EINVAL;
  c->retain();
  return 0;
}

ASYNC_API int async_tls_context_release(async_tls_context *ctx) {
  Context *c = checked<Context>(ctx);
  if (!c) return ASYNC_EINVAL;
  c->release();
  return 0;
}

ASYNC_API int async_tls_push(async_stream **out, async_future **handshake, async_stream *lower, async_tls_context *ctx,
                             const char *server_name, const async_stream_protocol *protocol, void *userdata) {
  async_stream_protocol callbacks;
  Context *c = checked<Context>(ctx);
  if (!out || !c || !Stream::copy_protocol(callbacks, protocol)) return ASYNC_EINVAL;
  return with_transport<Stream>(lower, [&](Stream &s) -> int {
    if (int err = Reader::bind(callbacks, userdata)) return err;
    Stream *upper = nullptr;
    Future *future = nullptr;
    int err = TlsLayer::push(&upper, handshake ? &future : nullptr, s, *c, server_name, callbacks, userdata);
    if (err) {
      Reader::unbind(callbacks, userdata);
      return err;
    }
    *out = upper->c_stream();
    if (handshake) *handshake = future->c_future();
    return 0;
  });
}

ASYNC_API int async_tls_alpn(char *out, size_t capacity, async_stream *stream) {
  if (!out) return ASYNC_EINVAL;
  return with_tls(stream, [&](TlsLayer &t) { return t.alpn(out, capacity); });
}

ASYNC_API int async_tls_version(async_stream *stream) {
  return with_tls(stream, [](TlsLayer &t) { return t.version(); });
}

ASYNC_API int async_tls_resumed(async_stream *stream) {
  return with_tls(stream, [](TlsLayer &t) { return t.resumed() ? 1 : 0; });
}

ASYNC_API int async_tls_verify_error(const char **reason, async_stream *stream) {
  return with_tls(stream, [&](TlsLayer &t) { return t.verify_error(reason); });
}

ASYNC_API int async_server_set_tls(async_server *server, async_tls_context *ctx) {
  Context *c = ctx ? checked<Context>(ctx) : nullptr;
  if (ctx && (!c || !c->server())) return async::api::refused<Server>(server);
  return async::api::with_open<Server>(server, [&](Server &s) -> int {
    s.set_upgrade(c ? TlsLayer::upgrade(*c) : async::net::Upgrade());
    return 0;
  });
}

ASYNC_API int async_tls_context_add_server_name(async_tls_context *ctx, const char *name, async_tls_context *other) {
  Context *c = checked<Context>(ctx);
  Context *o = checked<Context>(other);
  if (!c || !o || !name) return ASYNC_EINVAL;
  return guarded([&] { return c->add_server_name(name, *o); });
}
}
