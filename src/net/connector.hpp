// async_tcp_connect (DESIGN §7, connect): resolution inside the loop, Happy
// Eyeballs v2 attempts (RFC 8305) or sequential ones, timeouts, cancel; the
// winning socket becomes a Stream and the future resolves after its
// connection_made.
#pragma once

#include <async/connect.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>

#include "ev/ev_backend.hpp"
#include "net/core_names.hpp"
#include "net/socket.hpp"
#include "net/upgrade.hpp"

namespace async::net {

class Stream;

class Connector {
 public:
  // 0 with *out the user's future, or ASYNC_EINVAL/ENOMEM with nothing
  // started and userdata still the caller's. With upgrade (what src/api
  // made of options.tls), the winning connection gets that layer, named
  // options.server_name or else host, and the future resolves with the
  // stream above it once the layer is ready.
  static int start(Future **out, Loop &loop, const char *host, std::uint16_t port, const async_connect_options &options,
                   const Upgrade &upgrade, const async_stream_protocol &protocol, void *userdata) noexcept;
  // The same for a Unix stream socket at path (one attempt); ASYNC_EINVAL
  // for a path util::unix_address() refuses.
  static int start_unix(Future **out, Loop &loop, const char *path, const async_stream_protocol &protocol,
                        void *userdata) noexcept;

  // Use start(); public only for util::make/destroy.
  explicit Connector(Loop &loop) noexcept;
  ~Connector();

 private:
  static constexpr std::size_t kMaxAddresses = 16;  // per family
  static constexpr std::size_t kMaxAttempts = 8;    // connecting at once

  using Address = SocketAddress;
  struct Attempt {
    ev::IoSlot io;
    Connector *owner;
    int fd = -1;
    std::uint64_t deadline_ns = 0;
    Address address;
  };

  // The connector with its user future and first step queued.
  static int create(Connector **out, Loop &loop, const async_stream_protocol &protocol, void *userdata) noexcept;
  static void kickoff(async_loop *, void *self) noexcept;
  static void on_lookup(async_future *future, int status, void *self) noexcept;
  static void on_attempt(void *attempt, std::uint32_t) noexcept;
  static void on_timer(void *self, std::uint32_t) noexcept;
  static void on_total(void *self, std::uint32_t) noexcept;
  static void on_cancel(async_future *, int cancelled, void *self) noexcept;
  static void release_cancelled(async_loop *, void *self) noexcept;
  static void resolve_after_made(async_loop *, void *self) noexcept;
  static void on_upgraded(void *self, Layer *layer, int error) noexcept;

  void on_connected_or_failed(Attempt &attempt) noexcept;
  int lookup(int family) noexcept;
  void add_addresses(const void *value) noexcept;
  void add_address(const sockaddr *addr, socklen_t len) noexcept;
  bool lookups_pending() const noexcept { return lookups_[0] || lookups_[1]; }
  bool addresses_left() const noexcept { return used6_ < n6_ || used4_ < n4_; }
  bool may_start(std::uint64_t now) const noexcept;
  const Address &next_address() noexcept;
  void try_next() noexcept;
  void start_attempt(const Address &address) noexcept;
  void attempt_failed(Attempt &attempt, int error) noexcept;
  void report(const Address &address, int error) noexcept;
  void close_attempt(Attempt &attempt) noexcept;
  void win(Attempt &attempt) noexcept;
  void fail(int error) noexcept;
  void stop_work() noexcept;
  void cancel_lookups() noexcept;
  void rearm(std::uint64_t now) noexcept;  // now: when may_start() last said no
  void release() noexcept;

  Loop &loop_;
  Future *future_ = nullptr;  // the user's, until it completes
  async_stream_protocol protocol_{};
  void *userdata_ = nullptr;
  Stream *stream_ = nullptr;  // the winner, until resolve_after_made
  Upgrade upgrade_;
  Stream *upgrading_ = nullptr;  // the winner while its layer gets ready
  char name_[256] = {};          // the upgrade's name of the server

  int family_ = 0;
  bool happy_eyeballs_ = true;
  std::uint64_t resolution_delay_ns_ = 0;
  std::uint64_t attempt_delay_ns_ = 0;
  std::uint64_t attempt_timeout_ns_ = 0;
  std::uint64_t dns_timeout_ns_ = 0;
  std::uint64_t dns_deadline_ns_ = 0;  // when pending lookups are given up (0: never)
  bool has_local_ = false;
  Address local_{};
  async_attempt_failed_fn attempt_failed_ = nullptr;
  void *attempt_failed_userdata_ = nullptr;
  char host_[256] = {};
  std::uint16_t port_ = 0;

  Future *lookups_[2] = {nullptr, nullptr};  // [0] AAAA (or the only one), [1] A
  Address v6_[kMaxAddresses];
  Address v4_[kMaxAddresses];
  std::size_t n6_ = 0, n4_ = 0, used6_ = 0, used4_ = 0;
  bool last_was_v6_ = false;
  std::uint64_t v4_ready_ns_ = 0;  // when A answers arrived before AAAA's (0: not waiting)

  Attempt attempts_[kMaxAttempts];
  std::size_t active_ = 0;
  std::uint64_t last_start_ns_ = 0;
  ev::TimerSlot timer_;
  ev::TimerSlot total_;

  int first_error_ = 0;
  bool finished_ = false;  // outcome decided (won, failed or cancelled)
  bool working_ = false;   // holds a loop reference
  int refs_ = 1;           // the outcome's, plus one per queued task or lookup callback
};

}  // namespace async::net
