// The lookups of a resolver: each from its start to the hand-over of its
// outcome to the future, ordered by deadline, with the room c-ares has for
// more (kMaxLiveInAres) and cancellation. Knows nothing of c-ares.
#pragma once

#include <async/future.h>
#include <netinet/in.h>

#include <cstddef>
#include <cstdint>

#include "util/container_of.hpp"
#include "util/list.hpp"

namespace async::core {
class Future;
class Loop;
}  // namespace async::core

namespace async::dns {

class Channel;
class RequestTable;

struct Request {
  // In the table's live list (by deadline) until the outcome is decided,
  // then in its done list until the loop hands it to the future.
  util::ListNode node;
  util::ListNode wait_node;  // in the waiting list until handed to c-ares
  RequestTable *table;
  Channel *channel = nullptr;      // once handed to c-ares
  core::Future *future = nullptr;  // until the future completes or is cancelled
  void *result = nullptr;          // AddrInfo or NameInfo, owned until handed over
  async_destroy_fn destroy_result = nullptr;
  int status = 0;
  std::uint64_t deadline_ns = 0;
  bool decided = false;  // outcome known or abandoned; ready slot used or released
  bool in_ares = false;  // c-ares still owes its callback
  // The query, kept until it is handed to c-ares.
  bool nameinfo = false;
  int family = AF_UNSPEC;
  std::uint32_t flags = 0;  // getnameinfo: its ASYNC_NI_* flags
  sockaddr_in6 addr{};      // getnameinfo: a sockaddr_in or sockaddr_in6
  std::size_t addrlen = 0;
  char host[256] = {};
  // What the answer needs to become a result list.
  std::uint16_t port = 0;
  int socktype = 0;
  bool canon = false;

  explicit Request(RequestTable *t) noexcept : table(t) {}

  static Request *of(util::ListNode *n) noexcept { return util::container_of(n, &Request::node); }
  static Request *of_wait(util::ListNode *n) noexcept { return util::container_of(n, &Request::wait_node); }
};

class RequestTable {
 public:
  explicit RequestTable(core::Loop &loop) noexcept : loop_(loop) {}

  // A new request of this table; nullptr when out of memory.
  Request *make() noexcept;
  // Gives req its future (*out) and its deadline deadline_ms from now.
  int start(core::Future **out, Request *req, std::uint64_t deadline_ms) noexcept;
  // Frees req once nothing refers to it any more.
  void maybe_free(Request *req) noexcept;

  // Whether c-ares may take another query now.
  bool has_room() const noexcept;
  // Queues req for c-ares unless it may go now (true: hand it over).
  bool wait_unless_room(Request *req) noexcept;
  // The next waiting request if there is room for it, unlinked; else nullptr.
  Request *next_to_submit() noexcept;
  bool has_waiting() const noexcept { return !waiting_.empty(); }
  // c-ares took req's query, and owes a callback.
  void handed(Request *req) noexcept;
  // c-ares called back for req.
  void answered(Request *req) noexcept;
  // req, live, is to be handed to c-ares again (a new channel after fork()).
  void requeue(Request *req) noexcept;

  // Decides req with status (0: req->result is the answer).
  void finish(Request *req, int status) noexcept;
  // Fails every live request past its deadline with ASYNC_ETIMEDOUT.
  void expire_deadlines() noexcept;
  // ns until the earliest deadline (0 if passed), UINT64_MAX if none.
  std::uint64_t next_deadline_in() noexcept;
  bool has_live() const noexcept { return !live_.empty(); }
  // Completes the futures of decided requests.
  void complete_done() noexcept;
  bool has_done() const noexcept { return !done_.empty(); }

  // Whether the resolver's timer may have to move (a request started or
  // cancelled, c-ares called) since it was last armed.
  void mark_changed() noexcept { changed_ = true; }
  bool changed() const noexcept { return changed_; }
  void clear_changed() noexcept { changed_ = false; }

 private:
  static void on_cancel(async_future *future, int cancelled, void *request) noexcept;
  // Marks the request decided; false if it already was.
  bool decide(Request *req) noexcept;
  // Keeps live_ ordered by deadline (usually an append).
  void insert_live(Request *req) noexcept;
  void set_live(long delta) noexcept;

  core::Loop &loop_;
  bool changed_ = false;
  util::List live_;                // requests awaiting an outcome, by deadline
  util::List done_;                // decided, waiting for complete_done()
  util::List waiting_;             // not yet handed to c-ares (no room, see has_room())
  std::size_t in_ares_count_ = 0;  // requests c-ares owes a callback, abandoned ones included
  std::size_t live_in_ares_ = 0;   // those not decided yet
  long live_count_ = 0;            // requests in live_ or done_: one loop reference while > 0
};

}  // namespace async::dns
