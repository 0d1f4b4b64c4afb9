// Listening sockets whose accepted connections become streams (DESIGN §7,
// servers). A handle: closing it stops listening; accepted streams live on.
#pragma once

#include <async/server.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>

#include "core/handle.hpp"
#include "ev/ev_backend.hpp"
#include "net/socket.hpp"
#include "net/stream.hpp"
#include "net/upgrade.hpp"
#include "util/addrinfo.hpp"
#include "util/list.hpp"

namespace async::net {

using core::Handle;
using core::handle_kind;
using core::Loop;

using util::SocketAddress;

class Server : public Handle {
 public:
  static constexpr std::uint32_t kTag = 0x53525652;  // "SRVR"
  static constexpr int kObjectKind = ASYNC_OBJECT_SERVER;
  static constexpr int kDefaultBacklog = 511;
  // How long accepting pauses when the process is out of fds.
  static constexpr std::uint64_t kRetryMs = 100;
  // Port 0 on several addresses: how many ports to try.
  static constexpr int kPickTries = 8;

  using Address = SocketAddress;

  Server(Loop &loop, void *userdata, async_stream_factory factory) noexcept;
  ~Server();

  static Server *from(async_server *s) noexcept { return reinterpret_cast<Server *>(s); }
  async_server *c_server() noexcept { return reinterpret_cast<async_server *>(this); }

  // A server listening on host (host_addresses()), on the first
  // kMaxAddresses entries of list, or on a Unix path; backlog <= 0 is the
  // default. 0, or an ASYNC_E* code with nothing left (no handle, no socket).
  static int listen_tcp(Server **out, Loop &loop, const char *host, std::uint16_t port, int backlog,
                        std::uint32_t flags, async_stream_factory factory, void *userdata) noexcept;
  static int listen_addrinfo(Server **out, Loop &loop, const util::AddrInfo &list, int backlog, std::uint32_t flags,
                             async_stream_factory factory, void *userdata) noexcept;
  static int listen_unix(Server **out, Loop &loop, const char *path, int backlog, async_stream_factory factory,
                         void *userdata) noexcept;
  static constexpr std::size_t kMaxAddresses = 16;
  // Closes the listening sockets (the handle's stop).
  void stop() noexcept;

  int port() const noexcept;
  std::size_t count() const noexcept { return count_; }
  int sockname(sockaddr *out, std::size_t capacity, std::size_t index) const noexcept;
  std::size_t connection_count() noexcept;
  // The accepted streams until their connection_lost (Stream::list_node()).
  util::List &connections() noexcept { return accepted_.list; }
  void close_connections(bool abort) noexcept;
  // The layer connections accepted from now on get before the factory sees
  // them (async_server_set_tls()); an empty one: none.
  void set_upgrade(const Upgrade &upgrade) noexcept { upgrade_ = upgrade; }

 private:
  // The addresses async_tcp_listen() listens on for host: NULL, the
  // wildcards; a local name, loopback; or a numeric address. IPv6 ones are
  // left out on a host without IPv6. Their count, or ASYNC_EINVAL.
  static int host_addresses(Address out[2], const char *host, std::uint16_t port) noexcept;
  // Creates the server handle and listens; on failure nothing is left.
  static int open(Server **out, Loop &loop, const Address *addrs, std::size_t count, int backlog, std::uint32_t flags,
                  async_stream_factory factory, void *userdata) noexcept;
  // Binds and listens on every address (port 0: one free port for all);
  // 0, or an ASYNC_E* code with nothing left listening.
  int listen(const Address *addrs, std::size_t count, int backlog, std::uint32_t flags) noexcept;

  struct Listener {
    ev::IoSlot io;
    Server *owner;
    int fd;
    Stream::SocketKind kind;  // of the sockets it accepts
    // The listener has TCP_NODELAY: the first accepted socket tells
    // whether they inherit it (kind becomes kTcpNoDelay).
    bool probe_nodelay;

    void learn_nodelay(int accepted) noexcept;
  };

  static void on_accept(struct ev_loop *loop, struct ev_io *w, int revents) noexcept;
  static void on_retry(void *self, std::uint32_t) noexcept;
  // One listening socket per address, or an error with none left open.
  int bind_all(const Address *addrs, std::size_t count, int backlog, std::uint32_t flags) noexcept;
  // Inline in on_accept(), its one caller: a frame less per connection.
  [[gnu::always_inline]] void take(int fd, Stream::SocketKind kind) noexcept;
  // The factory's protocol for a new connection, bound (Reader::bind()):
  // the kept callbacks when they are the previous connection's, else
  // copied into copied; nullptr when it refused or gave one that cannot
  // be used (logged). Inline: in on_accept() it saves a frame per connection.
  [[gnu::always_inline]] const async_stream_protocol *protocol_for(async_stream_protocol &copied,
                                                                   void *&userdata) noexcept;
  // An accepted connection whose upgrade is not ready yet.
  struct Upgrading {
    util::ListNode node;
    Server *server;  // nullptr once the server is gone
    Stream *lower;
  };
  void start_upgrade(int fd, Stream::SocketKind kind) noexcept;
  static void on_upgraded(void *upgrading, Layer *layer, int error) noexcept;
  void abort_upgrading() noexcept;
  void set_accepting(bool on) noexcept;

  async_stream_factory factory_;
  Listener *listeners_ = nullptr;
  std::size_t count_ = 0;
  ev::TimerSlot retry_;
  // Accepted streams whose factory returned the same callbacks share one
  // copy of them.
  Stream::Accepted accepted_;
  Upgrade upgrade_;
  util::List upgrading_;  // Upgrading records
};

}  // namespace async::net
