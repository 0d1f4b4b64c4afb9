#include "api/api.hpp"
#include "api/tls_hook.hpp"
#include "net/reconnector.hpp"
#include "net/stream.hpp"
#include "util/sized_struct.hpp"

using async::api::checked;
using async::api::checked_loop;
using async::api::guarded;
using async::api::refused;
using async::api::refused_loop;
using async::core::Loop;
using async::net::Reconnector;
using async::net::Stream;
using async::util::copy_sized;

extern "C" {

ASYNC_API int async_reconnector_start(async_reconnector **out, async_loop *loop, const char *host, uint16_t port,
                                      const async_reconnect_options *options, const async_stream_protocol *protocol,
                                      void *userdata) {
  Loop *l = checked_loop(loop);
  async_stream_protocol callbacks;
  async_reconnect_options copied;
  async_connect_options connect;
  async::net::Upgrade tls;
  if (!out || !l || !host || !Stream::copy_protocol(callbacks, protocol) || copy_sized(copied, options) != 0 ||
      copy_sized(connect, copied.connect) != 0 || async::api::connect_upgrade(tls, connect) != 0)
    return refused_loop(loop);
  return guarded([&]() -> int {
    Reconnector *r = nullptr;
    int err = Reconnector::start(&r, *l, host, port, copied, tls, callbacks, userdata);
    if (!err) *out = r->c_reconnector();
    return err;
  });
}

ASYNC_API int async_reconnector_reconnect(async_reconnector *rc) {
  Reconnector *r = checked<Reconnector>(rc);
  return r ? guarded([&] { return r->reconnect(); }) : refused<Reconnector>(rc);
}

ASYNC_API int async_reconnector_stop(async_reconnector *rc) {
  Reconnector *r = checked<Reconnector>(rc);
  if (!r) return refused<Reconnector>(rc);
  r->stop();
  return 0;
}

ASYNC_API int async_reconnector_state(async_reconnector *rc) {
  Reconnector *r = checked<Reconnector>(rc);
  return r ? r->state() : refused<Reconnector>(rc);
}

ASYNC_API async_stream *async_reconnector_stream(async_reconnector *rc) {
  Reconnector *r = checked<Reconnector>(rc);
  return r ? r->stream() : nullptr;
}
}
