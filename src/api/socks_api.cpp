#include <cstdint>

#include "api/api.hpp"
#include "core/future.hpp"
#include "net/socks5.hpp"
#include "net/stream.hpp"

using async::api::with_transport;
using async::core::Future;
using async::net::Socks5;
using async::net::Stream;

extern "C" {

ASYNC_API int async_layer_push_socks5(async_future **out, async_stream *lower, const char *host, uint16_t port,
                                      const char *username, const char *password, const async_stream_protocol *protocol,
                                      void *userdata) {
  async_stream_protocol callbacks;
  if (!out || !host || !Stream::copy_protocol(callbacks, protocol)) return ASYNC_EINVAL;
  return with_transport<Stream>(lower, [&](Stream &s) -> int {
    Future *f = nullptr;
    int err = Socks5::start(&f, s, host, port, {username, password}, callbacks, userdata);
    if (!err) *out = f->c_future();
    return err;
  });
}

ASYNC_API int async_layer_push_socks5_addr(async_future **out, async_stream *lower, const struct sockaddr *addr,
                                           size_t addrlen, const char *username, const char *password,
                                           const async_stream_protocol *protocol, void *userdata) {
  async_stream_protocol callbacks;
  if (!out || !addr || !Stream::copy_protocol(callbacks, protocol)) return ASYNC_EINVAL;
  return with_transport<Stream>(lower, [&](Stream &s) -> int {
    Future *f = nullptr;
    int err = Socks5::start_addr(&f, s, addr, addrlen, {username, password}, callbacks, userdata);
    if (!err) *out = f->c_future();
    return err;
  });
}
}
