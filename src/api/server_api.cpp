#include <sys/socket.h>

#include "api/api.hpp"
#include "net/server.hpp"
#include "util/addrinfo.hpp"

using async::api::checked;
using async::api::checked_loop;
using async::api::guarded;
using async::api::refused;
using async::api::refused_loop;
using async::util::AddrInfo;
using async::core::Loop;
using async::net::Server;

namespace {

constexpr std::uint32_t kListenFlags = ASYNC_LISTEN_REUSEPORT | ASYNC_LISTEN_V6ONLY;

// Runs op(Server&) on a server that is not closed yet.
template <class Op>
int with_server(async_server *server, Op &&op) {
  return async::api::with_open<Server>(server, op);
}

}  // namespace

extern "C" {

ASYNC_API int async_tcp_listen(async_server **out, async_loop *loop, const char *host, uint16_t port, int backlog,
                               uint32_t flags, async_stream_factory factory, void *userdata) {
  Loop *l = checked_loop(loop);
  if (!out || !l || !factory || (flags & ~kListenFlags)) return refused_loop(loop);
  return guarded([&]() -> int {
    Server *s = nullptr;
    int err = Server::listen_tcp(&s, *l, host, port, backlog, flags, factory, userdata);
    if (!err) *out = s->c_server();
    return err;
  });
}

ASYNC_API int async_tcp_listen_addrinfo(async_server **out, async_loop *loop, const async_addrinfo *addrs, int backlog,
                                        uint32_t flags, async_stream_factory factory, void *userdata) {
  Loop *l = checked_loop(loop);
  const AddrInfo *list = checked<AddrInfo>(addrs);
  if (!out || !l || !list || !factory || (flags & ~kListenFlags)) return refused_loop(loop);
  return guarded([&]() -> int {
    Server *s = nullptr;
    int err = Server::listen_addrinfo(&s, *l, *list, backlog, flags, factory, userdata);
    if (!err) *out = s->c_server();
    return err;
  });
}

ASYNC_API int async_unix_listen(async_server **out, async_loop *loop, const char *path, int backlog,
                                async_stream_factory factory, void *userdata) {
  Loop *l = checked_loop(loop);
  if (!out || !l || !path || !factory) return refused_loop(loop);
  return guarded([&]() -> int {
    Server *s = nullptr;
    int err = Server::listen_unix(&s, *l, path, backlog, factory, userdata);
    if (!err) *out = s->c_server();
    return err;
  });
}

// A cast, as async_timer_handle(): not thread-checked.
ASYNC_API async_handle *async_server_handle(async_server *server) {
  Server *s = async::api::tagged_as<Server>(server);
  return s ? s->c_handle() : nullptr;
}

ASYNC_API int async_server_port(async_server *server) {
  return with_server(server, [](Server &s) { return s.port(); });
}

ASYNC_API int async_server_count(async_server *server) {
  return with_server(server, [](Server &s) { return static_cast<int>(s.count()); });
}

ASYNC_API int async_server_sockname(struct sockaddr *out, size_t capacity, async_server *server, size_t index) {
  if (!out) return ASYNC_EINVAL;
  return with_server(server, [&](Server &s) { return s.sockname(out, capacity, index); });
}

ASYNC_API int async_server_connection_count(async_server *server) {
  Server *s = checked<Server>(server);
  return s ? static_cast<int>(s->connection_count()) : refused<Server>(server);
}

ASYNC_API int async_server_close_connections(async_server *server, int abort) {
  Server *s = checked<Server>(server);
  if (!s) return refused<Server>(server);
  return guarded([&]() -> int {
    s->close_connections(abort != 0);
    return 0;
  });
}

ASYNC_API void *async_server_userdata(async_server *server) {
  Server *s = checked<Server>(server);
  return s ? s->userdata() : nullptr;
}
}
