// DNS inside the loop (DESIGN §8): lookups checked and answered without
// DNS where they can be (local_answers), the rest sent through the loop's
// c-ares channel (channel), each tracked by the request table (request)
// until its future completes through the ready queue, never inside a c-ares
// callback or the call that started it.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>

#include "core/loop.hpp"
#include "dns/channel.hpp"
#include "dns/request.hpp"

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
    if (requests_.has_waiting()) submit_waiting();
    if (requests_.changed()) channel_.rearm();
  }
  // Called after the poll, before the ready queue runs: completes the
  // futures of lookups decided since (their callbacks are queued behind).
  void after_poll() noexcept override { requests_.complete_done(); }
  // Decided lookups wait for after_poll(): the next poll must not block.
  bool has_work() noexcept override { return requests_.has_done(); }
  // A new channel with the same configuration, lookups in flight sent
  // again on it; if it cannot be made, they fail with its error.
  int after_fork() noexcept override;

  // Use of() and destroy(); public only for util::make/destroy.
  explicit Resolver(core::Loop &loop) noexcept;
  ~Resolver();

 private:
  // Starts req (its future into *out): decided at once when known, else
  // handed to c-ares or queued for room; on failure req is freed.
  int start(core::Future **out, Request *req, bool known, int status) noexcept;
  void submit_waiting() noexcept;
  // ASYNC_EBUSY while live lookups exist; otherwise drops the channel so the
  // next lookup builds one with the new configuration.
  int reconfigure() noexcept;

  RequestTable requests_;  // before channel_, which hands it answers until closed
  Channel channel_;
  Channel::Config config_;  // its strings owned here
  std::uint64_t deadline_ms_ = 10000;
};

}  // namespace async::dns
