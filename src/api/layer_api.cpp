#include <cstdint>

#include "api/api.hpp"
#include "net/layer.hpp"
#include "net/rate_limiter.hpp"
#include "net/reader.hpp"
#include "net/stream.hpp"

using async::api::with_transport;
using async::net::Layer;
using async::net::RateLimiter;
using async::net::Reader;
using async::net::Stream;

extern "C" {

ASYNC_API int async_layer_push_rate_limit(async_stream **out, async_stream *lower, uint64_t read_bytes_per_s,
                                          uint64_t write_bytes_per_s, const async_stream_protocol *protocol,
                                          void *userdata) {
  async_stream_protocol callbacks;
  if (!out || !Stream::copy_protocol(callbacks, protocol)) return ASYNC_EINVAL;
  return with_transport<Stream>(lower, [&](Stream &s) -> int {
    if (int err = Reader::bind(callbacks, userdata)) return err;
    Stream *upper = nullptr;
    int err = RateLimiter::push(&upper, s, read_bytes_per_s, write_bytes_per_s, callbacks, userdata);
    if (err) {
      Reader::unbind(callbacks, userdata);
      return err;
    }
    *out = upper->c_stream();
    return 0;
  });
}

ASYNC_API int async_layer_pop(async_stream *upper, const async_stream_protocol *protocol, void *userdata) {
  async_stream_protocol callbacks;
  if (!Stream::copy_protocol(callbacks, protocol)) return ASYNC_EINVAL;
  return with_transport<Stream>(upper, [&](Stream &s) -> int {
    Layer *layer = s.layer();
    if (!layer) return ASYNC_EINVAL;
    if (int err = Reader::bind(callbacks, userdata)) return err;
    int err = layer->pop(callbacks, userdata);
    if (err) Reader::unbind(callbacks, userdata);
    return err;
  });
}

ASYNC_API int async_layer_is_layered(async_stream *stream) {
  return with_transport<Stream>(stream, [](Stream &s) { return s.layer() ? 1 : 0; });
}
}
