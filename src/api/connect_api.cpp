#include "api/api.hpp"
#include "core/future.hpp"
#include "net/connector.hpp"
#include "net/stream.hpp"

using async::api::checked_loop;
using async::api::guarded;
using async::api::refused_loop;
using async::net::Connector;
using async::core::Future;
using async::core::Loop;
using async::net::Stream;

extern "C" {

ASYNC_API int async_tcp_connect(async_future **out, async_loop *loop, const char *host, uint16_t port,
                                const async_connect_options *options, const async_stream_protocol *protocol,
                                void *userdata) {
  Loop *l = checked_loop(loop);
  if (!out || !l || !host || !Stream::valid_protocol(protocol)) return refused_loop(loop);
  async_connect_options defaults = ASYNC_CONNECT_OPTIONS_INIT;
  if (options && options->size < sizeof(async_connect_options)) return ASYNC_EINVAL;
  return guarded([&]() -> int {
    Future *f = nullptr;
    int err = Connector::start(&f, *l, host, port, options ? *options : defaults, *protocol, userdata);
    if (!err) *out = f->c_future();
    return err;
  });
}

ASYNC_API int async_unix_connect(async_future **out, async_loop *loop, const char *path,
                                 const async_stream_protocol *protocol, void *userdata) {
  Loop *l = checked_loop(loop);
  if (!out || !l || !path || !Stream::valid_protocol(protocol)) return refused_loop(loop);
  return guarded([&]() -> int {
    Future *f = nullptr;
    int err = Connector::start_unix(&f, *l, path, *protocol, userdata);
    if (!err) *out = f->c_future();
    return err;
  });
}
}
