// DNS inside the loop (DESIGN §8): one c-ares channel per loop, created on
// the first lookup, driven by one io watcher per c-ares socket and one timer
// re-armed from ares_timeout() after every c-ares call. Lookups complete
// their futures through the ready queue, never inside a c-ares callback or
// the call that started them. <ares.h> stays in the .cpp.
#pragma once

#include <async/common.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>

#include "core/loop.hpp"
#include "ev/ev_backend.hpp"
#include "util/list.hpp"

struct ares_channeldata;
struct ares_addrinfo;
struct ares_options;

namespace async::core {
class Future;
}  // namespace async::core

namespace async::dns {

// The loop's service (core::LoopService): the loop calls the three hooks
// below every iteration and destroy() when it is destroyed.
class Resolver final : public core::LoopService {
 public:
  // The loop's resolver, created and registered with the loop on first
  // use; nullptr when out of memory. The channel itself is created lazily.
  static Resolver *of(core::Loop &loop) noexcept;
  // Destroys the channel: lookups still inside c-ares (all abandoned, their
  // futures are gone) are dropped.
  void destroy() noexcept override;

  int getaddrinfo(core::Future **out, const char *host, const char *service, int family, int socktype,
                  std::uint32_t flags) noexcept;
  int getnameinfo(core::Future **out, const sockaddr *addr, std::size_t addrlen, std::uint32_t flags) noexcept;

  int set_servers(const char *servers) noexcept;
  int set_timeout(std::uint32_t timeout_ms, std::uint32_t tries) noexcept;
  int set_deadline(std::uint64_t deadline_ms) noexcept;
  int set_rotate(bool rotate) noexcept;
  int set_hosts_file(const char *path) noexcept;
  int set_search(const char *domains, std::uint32_t ndots) noexcept;

  // Called before every poll: hands waiting lookups to c-ares if there is
  // room again, and re-arms the channel timer if a c-ares call or a lookup
  // change since the last poll may have moved its deadline (once per
  // iteration, as ares_timeout() is linear in the queries).
  void before_poll() noexcept override {
    if (!waiting_.empty()) submit_waiting();
    if (rearm_pending_) rearm();
  }
  // Called after the poll, before the ready queue runs: completes the
  // futures of lookups decided since (their callbacks are queued behind).
  void after_poll() noexcept override;
  // Decided lookups wait for after_poll(): the next poll must not block.
  bool has_work() noexcept override { return !done_.empty(); }

  // Use of() and destroy(); public only for util::make/destroy.
  explicit Resolver(core::Loop &loop) noexcept;
  ~Resolver();

  struct Request;
  struct Socket;

 private:
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
  static void on_cancel(async_future *future, int cancelled, void *request) noexcept;

  int start(core::Future **out, Request *request) noexcept;
  int open_channel() noexcept;
  // ares_init_options + the configured servers; an ARES_* status.
  int init_channel(ares_channeldata **out, ares_options &opts, int mask) noexcept;
  void close_channel() noexcept;
  // ASYNC_EBUSY while live lookups exist; otherwise drops the channel so the
  // next lookup builds one with the new configuration.
  int reconfigure() noexcept;
  // The link to fd's record in sockets_ (*link is nullptr if none).
  Socket **find_socket(int fd) noexcept;
  // The ASYNC_* code of a finished c-ares lookup.
  int lookup_error(int ares_status) const noexcept;
  void process(int read_fd, int write_fd) noexcept;
  bool has_room() const noexcept;
  void submit(Request *request) noexcept;
  void submit_or_wait(Request *request) noexcept;
  void submit_waiting() noexcept;
  void answered(Request *request) noexcept;
  // Marks the request decided; false if it already was.
  bool decide(Request *request) noexcept;
  void finish(Request *request, int status) noexcept;
  void maybe_free(Request *request) noexcept;
  void expire_deadlines() noexcept;
  void rearm() noexcept;
  void rearm_soon() noexcept { rearm_pending_ = true; }
  // Keeps live_ ordered by deadline (usually an append).
  void insert_live(Request *request) noexcept;
  void set_live(long delta) noexcept;

  core::Loop &loop_;
  ares_channeldata *channel_ = nullptr;
  bool destroying_ = false;
  bool rearm_pending_ = false;
  ev::TimerSlot timer_;
  util::List live_;     // requests awaiting an outcome, by deadline
  util::List done_;     // decided, waiting for after_poll()
  util::List waiting_;  // not yet handed to c-ares (no room, see has_room())
  std::size_t in_ares_count_ = 0;  // requests c-ares owes a callback, abandoned ones included
  std::size_t live_in_ares_ = 0;   // those not decided yet
  // ASYNC_EMFILE or ASYNC_ENOMEM when c-ares could not open a socket during
  // the current c-ares call; 0 otherwise.
  int socket_failure_ = 0;
  long live_count_ = 0;  // requests in live_ or done_: one loop reference while > 0
  Socket *sockets_ = nullptr;

  // Configuration (applied when the channel is created).
  char *servers_ = nullptr;     // NULL: the system's
  char *hosts_path_ = nullptr;  // NULL: the system's; "": none
  char *domains_ = nullptr;     // NULL: the system's
  std::uint32_t ndots_ = 1;
  std::uint32_t timeout_ms_ = 2000;
  std::uint32_t tries_ = 2;
  std::uint64_t deadline_ms_ = 10000;
  bool rotate_ = false;
};

}  // namespace async::dns
