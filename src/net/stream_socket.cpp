// Stream adoption by the user and the socket options of a stream.
#include <async/error.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "net/layer.hpp"
#include "net/reader.hpp"
#include "net/socket.hpp"
#include "net/stream.hpp"

namespace async::net {

int Stream::adopt_bound(Stream **out, Loop &loop, int fd, const async_stream_protocol &protocol,
                        void *userdata) noexcept {
  if (int err = Reader::bind(protocol, userdata)) return err;
  int err = adopt(out, loop, fd, protocol, userdata);
  if (err) Reader::unbind(protocol, userdata);
  return err;
}

const Stream *Stream::socket_stream() const noexcept {
  if (!layered_) return this;
  const Layer *below = layer();  // nullptr once this stream ended
  return below ? below->bottom() : nullptr;
}

int Stream::socket_fd() const noexcept {
  const Stream *s = socket_stream();
  return s ? s->fd() : ASYNC_ECLOSED;
}

int Stream::socket_name(sockaddr *out, std::size_t capacity, bool peer) const noexcept {
  const Stream *s = socket_stream();
  if (!s) return ASYNC_ECLOSED;
  return s->is_socket() ? net::socket_name(s->fd(), peer, out, capacity) : ASYNC_EINVAL;
}

int Stream::set_nodelay(bool on) noexcept {
  const Stream *s = socket_stream();
  if (!s) return ASYNC_ECLOSED;
  return s->is_tcp() ? set_int_option(s->fd(), IPPROTO_TCP, TCP_NODELAY, on) : ASYNC_EINVAL;
}

int Stream::set_keepalive(bool on, std::uint32_t idle_s) noexcept {
  const Stream *s = socket_stream();
  if (!s) return ASYNC_ECLOSED;
  if (!s->is_tcp()) return ASYNC_EINVAL;
  int err = set_int_option(s->fd(), SOL_SOCKET, SO_KEEPALIVE, on);
  if (!err && on && idle_s > 0) err = set_int_option(s->fd(), IPPROTO_TCP, TCP_KEEPIDLE, static_cast<int>(idle_s));
  return err;
}

}  // namespace async::net
