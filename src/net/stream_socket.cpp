// Stream adoption by the user and the socket options of a stream.
#include <async/error.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

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

int Stream::socket_name(sockaddr *out, std::size_t capacity, bool peer) const noexcept {
  return is_socket() ? net::socket_name(fd(), peer, out, capacity) : ASYNC_EINVAL;
}

int Stream::set_nodelay(bool on) noexcept {
  return is_tcp() ? set_int_option(fd(), IPPROTO_TCP, TCP_NODELAY, on) : ASYNC_EINVAL;
}

int Stream::set_keepalive(bool on, std::uint32_t idle_s) noexcept {
  if (!is_tcp()) return ASYNC_EINVAL;
  int err = set_int_option(fd(), SOL_SOCKET, SO_KEEPALIVE, on);
  if (!err && on && idle_s > 0) err = set_int_option(fd(), IPPROTO_TCP, TCP_KEEPIDLE, static_cast<int>(idle_s));
  return err;
}

}  // namespace async::net
