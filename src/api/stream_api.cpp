#include <sys/uio.h>

#include <cstdint>

#include "api/api.hpp"
#include "net/stream.hpp"

using async::api::checked_loop;
using async::api::guarded;
using async::api::refused_loop;
using async::api::with_transport;
using async::core::Loop;
using async::net::Stream;

extern "C" {

ASYNC_API int async_stream_adopt(async_stream **out, async_loop *loop, int fd, const async_stream_protocol *protocol,
                                 void *userdata) {
  Loop *l = checked_loop(loop);
  async_stream_protocol callbacks;
  if (!out || !l || !Stream::copy_protocol(callbacks, protocol)) return refused_loop(loop);
  return guarded([&]() -> int {
    Stream *s = nullptr;
    int err = Stream::adopt_bound(&s, *l, fd, callbacks, userdata);
    if (!err) *out = s->c_stream();
    return err;
  });
}

ASYNC_API int async_stream_write(async_stream *stream, const void *data, size_t len) {
  if (!data && len > 0) return ASYNC_EINVAL;
  return with_transport<Stream>(stream, [&](Stream &s) { return s.write(data, len); });
}

ASYNC_API int async_stream_writev(async_stream *stream, const struct iovec *iov, int iovcnt) {
  if (iovcnt < 0 || iovcnt > 1024 || (!iov && iovcnt > 0)) return ASYNC_EINVAL;
  for (int i = 0; i < iovcnt; ++i)
    if (!iov[i].iov_base && iov[i].iov_len > 0) return ASYNC_EINVAL;
  return with_transport<Stream>(stream, [&](Stream &s) { return s.write(iov, iovcnt, nullptr, nullptr); });
}

ASYNC_API int async_stream_write_zc(async_stream *stream, const void *data, size_t len, async_release_fn done,
                                    void *done_userdata) {
  if ((!data && len > 0) || !done) return ASYNC_EINVAL;
  iovec iov{const_cast<void *>(data), len};
  return with_transport<Stream>(stream, [&](Stream &s) { return s.write(&iov, 1, done, done_userdata); });
}

ASYNC_API int async_stream_write_eof(async_stream *stream) {
  return with_transport<Stream>(stream, [](Stream &s) { return s.write_eof(); });
}

ASYNC_API int async_stream_close(async_stream *stream) {
  return with_transport<Stream>(stream, [](Stream &s) {
    s.close();
    return 0;
  });
}

ASYNC_API int async_stream_abort(async_stream *stream) {
  return with_transport<Stream>(stream, [](Stream &s) {
    s.abort(0);
    return 0;
  });
}

ASYNC_API int async_stream_pause_reading(async_stream *stream) {
  return with_transport<Stream>(stream, [](Stream &s) {
    s.pause_reading();
    return 0;
  });
}

ASYNC_API int async_stream_resume_reading(async_stream *stream) {
  return with_transport<Stream>(stream, [](Stream &s) { return s.resume_reading(); });
}

ASYNC_API int async_stream_is_reading(async_stream *stream) {
  return with_transport<Stream>(stream, [](Stream &s) { return s.is_reading() ? 1 : 0; });
}

ASYNC_API int async_stream_set_write_limits(async_stream *stream, size_t high, size_t low) {
  return with_transport<Stream>(stream, [&](Stream &s) { return s.set_write_limits(high, low); });
}

ASYNC_API int async_stream_get_write_limits(size_t *out_high, size_t *out_low, async_stream *stream) {
  if (!out_high || !out_low) return ASYNC_EINVAL;
  return with_transport<Stream>(stream, [&](Stream &s) {
    *out_high = s.high();
    *out_low = s.low();
    return 0;
  });
}

ASYNC_API int async_stream_write_buffer_size(size_t *out, async_stream *stream) {
  if (!out) return ASYNC_EINVAL;
  return with_transport<Stream>(stream, [&](Stream &s) {
    *out = s.write_buffer_size();
    return 0;
  });
}

ASYNC_API int async_stream_set_read_limit(async_stream *stream, size_t limit) {
  if (limit == 0) return ASYNC_EINVAL;
  return with_transport<Stream>(stream, [&](Stream &s) {
    s.set_read_limit(limit);
    return 0;
  });
}

ASYNC_API int async_stream_set_protocol(async_stream *stream, const async_stream_protocol *protocol, void *userdata) {
  async_stream_protocol callbacks;
  if (!Stream::copy_protocol(callbacks, protocol)) return ASYNC_EINVAL;
  return with_transport<Stream>(stream, [&](Stream &s) { return s.set_protocol(callbacks, userdata); });
}

ASYNC_API int async_stream_fd(async_stream *stream) {
  return with_transport<Stream>(stream, [](Stream &s) { return s.socket_fd(); });
}

ASYNC_API async_loop *async_stream_loop(async_stream *stream) { return async::api::transport_loop<Stream>(stream); }

ASYNC_API int async_stream_sockname(struct sockaddr *out, size_t capacity, async_stream *stream) {
  if (!out) return ASYNC_EINVAL;
  return with_transport<Stream>(stream, [&](Stream &s) { return s.socket_name(out, capacity, false); });
}

ASYNC_API int async_stream_peername(struct sockaddr *out, size_t capacity, async_stream *stream) {
  if (!out) return ASYNC_EINVAL;
  return with_transport<Stream>(stream, [&](Stream &s) { return s.socket_name(out, capacity, true); });
}

ASYNC_API int async_stream_set_nodelay(async_stream *stream, int on) {
  return with_transport<Stream>(stream, [&](Stream &s) { return s.set_nodelay(on != 0); });
}

ASYNC_API int async_stream_set_keepalive(async_stream *stream, int on, uint32_t idle_s) {
  if (idle_s > INT32_MAX) return ASYNC_EINVAL;
  return with_transport<Stream>(stream, [&](Stream &s) { return s.set_keepalive(on != 0, idle_s); });
}

ASYNC_API int async_stream_set_idle_timeout(async_stream *stream, uint64_t timeout_ms) {
  return with_transport<Stream>(stream, [&](Stream &s) { return s.set_idle_timeout(timeout_ms); });
}

ASYNC_API int async_stream_retain(async_stream *stream) { return async::api::retain_transport<Stream>(stream); }

ASYNC_API int async_stream_release(async_stream *stream) { return async::api::release_transport<Stream>(stream); }

ASYNC_API void *async_stream_userdata(async_stream *stream) { return async::api::transport_userdata<Stream>(stream); }
}
