// The c-ares channel of a resolver (the only code that includes <ares.h>):
// created with the resolver's configuration on the first lookup that needs
// DNS, driven by one io watcher per c-ares socket (opened through c-ares'
// socket functions) and one timer re-armed from ares_timeout() and the
// earliest request deadline. Answers become results here and are handed
// to the request table.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/loop.hpp"
#include "dns/request.hpp"
#include "ev/ev_backend.hpp"

struct ares_channeldata;
struct ares_addrinfo;
struct ares_options;

namespace async::dns {

class Channel {
 public:
  // What the channel is created with; strings owned by the resolver.
  struct Config {
    // The search list's limits (set_search() checks them).
    static constexpr std::size_t kMaxDomains = 8;
    static constexpr std::size_t kMaxDomainsLen = 1024;

    char *servers = nullptr;     // NULL: the system's
    char *hosts_path = nullptr;  // NULL: the system's; "": none
    char *domains = nullptr;     // NULL: the system's
    std::uint32_t ndots = 1;
    std::uint32_t timeout_ms = 2000;
    std::uint32_t tries = 2;
    bool rotate = false;
  };

  Channel(core::Loop &loop, RequestTable &requests) noexcept;
  ~Channel();
  Channel(const Channel &) = delete;
  Channel &operator=(const Channel &) = delete;

  // Creates the channel unless there is one: 0 or an ASYNC_E* code.
  int open(const Config &config) noexcept;
  // Destroys the channel: queries still inside c-ares (all abandoned, their
  // futures are gone) are dropped.
  void close() noexcept;
  // After fork(), when there is a channel: destroys it (closing the
  // sockets shared with the parent), puts the queries in flight back on
  // the table's waiting list, and opens a new one with config.
  int recreate(const Config &config) noexcept;
  // Hands req's query to c-ares (the table had room for it).
  void submit(Request *req) noexcept;
  // Re-arms the timer for c-ares' next timeout or the earliest deadline.
  void rearm() noexcept;

 private:
  struct Socket;

  // c-ares' socket functions (ares_set_socket_functions): the watcher
  // record is made with the socket, and why a socket could not be opened is
  // known.
  static int open_socket(int family, int type, int protocol, void *self) noexcept;
  static int close_socket(int fd, void *self) noexcept;
  static void on_sock_state(void *self, int fd, int readable, int writable) noexcept;
  static void on_socket(void *socket, std::uint32_t revents) noexcept;
  static void on_timer(void *self, std::uint32_t) noexcept;
  static void on_addrinfo(void *request, int status, int timeouts, struct ares_addrinfo *result) noexcept;
  static void on_nameinfo(void *request, int status, int timeouts, char *host, char *service) noexcept;

  // ares_init_options + the configured servers; an ARES_* status.
  int init(ares_channeldata **out, ares_options &opts, int mask, const char *servers) noexcept;
  // The link to fd's record in sockets_ (*link is nullptr if none).
  Socket **find_socket(int fd) noexcept;
  // The ASYNC_* code of a finished c-ares lookup.
  int lookup_error(int ares_status) const noexcept;
  // A live query ares_destroy() gave back during recreate(): back to the
  // waiting list (true), to be sent on the new channel.
  static bool requeue(Request *req) noexcept;
  void process(int read_fd, int write_fd) noexcept;

  core::Loop &loop_;
  RequestTable &requests_;
  ares_channeldata *channel_ = nullptr;
  bool destroying_ = false;
  bool recreating_ = false;  // recreate(): ares_destroy's callbacks re-queue live queries
  bool env_hosts_ = false;   // no hosts file configured: c-ares reads the system's
  ev::TimerSlot timer_;
  // ASYNC_EMFILE or ASYNC_ENOMEM when c-ares could not open a socket during
  // the current c-ares call; 0 otherwise.
  int socket_failure_ = 0;
  Socket *sockets_ = nullptr;
};

}  // namespace async::dns
