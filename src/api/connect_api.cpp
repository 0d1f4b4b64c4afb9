#include "api/api.hpp"
#include "api/tls_hook.hpp"
#include "core/future.hpp"
#include "net/connector.hpp"
#include "net/stream.hpp"
#include "util/sized_struct.hpp"

using async::api::checked_loop;
using async::api::guarded;
using async::api::refused_loop;
using async::net::Connector;
using async::core::Future;
using async::core::Loop;
using async::net::Stream;
using async::util::copy_sized;

extern "C" {

ASYNC_API int async_tcp_connect(async_future **out, async_loop *loop, const char *host, uint16_t port,
                                const async_connect_options *options, const async_stream_protocol *protocol,
                                void *userdata) {
  Loop *l = checked_loop(loop);
  async_stream_protocol callbacks;
  async_connect_options copied;
  async::net::Upgrade tls;
  if (!out || !l || !host || !Stream::copy_protocol(callbacks, protocol) || copy_sized(copied, options) != 0 ||
      async::api::connect_upgrade(tls, copied) != 0)
    return refused_loop(loop);
  return guarded([&]() -> int {
    Future *f = nullptr;
    int err = Connector::start(&f, *l, host, port, copied, tls, callbacks, userdata);
    if (!err) *out = f->c_future();
    return err;
  });
}

ASYNC_API int async_unix_connect(async_future **out, async_loop *loop, const char *path,
                                 const async_stream_protocol *protocol, void *userdata) {
  Loop *l = checked_loop(loop);
  async_stream_protocol callbacks;
  if (!out || !l || !path || !Stream::copy_protocol(callbacks, protocol)) return refused_loop(loop);
  return guarded([&]() -> int {
    Future *f = nullptr;
    int err = Connector::start_unix(&f, *l, path, callbacks, userdata);
    if (!err) *out = f->c_future();
    return err;
  });
}
}
