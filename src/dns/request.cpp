#include "dns/request.hpp"

#include <async/error.h>

#include "core/future.hpp"
#include "core/loop.hpp"
#include "util/alloc.hpp"
#include "util/clock.hpp"

namespace async::dns {

namespace {

// Live lookups handed to c-ares at once; the rest wait in libasync. 1,000
// queries sent in one burst overflow a default UDP receive buffer (212,992
// bytes hold ~270 answers) on either side, and the lost ones come back only
// through retransmission timeouts.
constexpr std::size_t kMaxLiveInAres = 64;
// c-ares 1.18 cannot cancel one query: a lookup cancelled or past its
// deadline leaves its query to finish in the background and stops counting
// against kMaxLiveInAres. This caps the lookups inside c-ares, abandoned
// ones included, so they cannot pile up: at most 256 queries (two per
// AF_UNSPEC lookup) are ever outstanding, within one receive buffer.
constexpr std::size_t kMaxInAres = 2 * kMaxLiveInAres;

}  // namespace

Request *RequestTable::make() noexcept { return util::make<Request>(this); }

int RequestTable::start(core::Future **out, Request *req, std::uint64_t deadline_ms) noexcept {
  core::Future *future = core::Future::create(loop_);
  if (!future) return ASYNC_ENOMEM;
  future->set_cancel(on_cancel, req);
  req->future = future;
  req->deadline_ns = util::saturating_add(util::monotonic_ns(), util::ms_to_ns(deadline_ms));
  insert_live(req);
  set_live(1);
  mark_changed();
  *out = future;
  return 0;
}

void RequestTable::insert_live(Request *req) noexcept {
  util::ListNode *after = live_.end()->prev;
  while (after != live_.end() && Request::of(after)->deadline_ns > req->deadline_ns) after = after->prev;
  live_.insert_after(*after, req->node);
}

void RequestTable::set_live(long delta) noexcept {
  bool was = live_count_ > 0;
  live_count_ += delta;
  bool is = live_count_ > 0;
  // Pending lookups are work: they keep async_loop_run() going.
  if (is != was) is ? loop_.backend().ref() : loop_.backend().unref();
}

bool RequestTable::has_room() const noexcept { return live_in_ares_ < kMaxLiveInAres && in_ares_count_ < kMaxInAres; }

bool RequestTable::wait_unless_room(Request *req) noexcept {
  if (has_room() && waiting_.empty()) return true;
  waiting_.push_back(req->wait_node);
  return false;
}

Request *RequestTable::next_to_submit() noexcept {
  if (!has_room() || waiting_.empty()) return nullptr;
  Request *req = Request::of_wait(waiting_.front());
  req->wait_node.unlink();
  return req;
}

void RequestTable::handed(Request *req) noexcept {
  req->in_ares = true;  // the callback may run before the c-ares call returns
  ++in_ares_count_;
  ++live_in_ares_;
  mark_changed();
}

void RequestTable::answered(Request *req) noexcept {
  req->in_ares = false;
  --in_ares_count_;
  if (!req->decided) --live_in_ares_;
}

void RequestTable::requeue(Request *req) noexcept {
  waiting_.push_back(req->wait_node);
  mark_changed();
}

// A request decided while c-ares has its query leaves room for another at
// once (the resolver hands it over before the next poll); the query
// finishes in the background.
bool RequestTable::decide(Request *req) noexcept {
  if (req->decided) return false;
  req->decided = true;
  if (req->in_ares) --live_in_ares_;
  return true;
}

void RequestTable::finish(Request *req, int status) noexcept {
  if (!decide(req)) return;
  req->status = status;
  req->wait_node.unlink();
  req->node.unlink();
  done_.push_back(req->node);
}

void RequestTable::expire_deadlines() noexcept {
  std::uint64_t now = util::monotonic_ns();
  while (!live_.empty()) {
    Request *req = Request::of(live_.front());
    if (req->deadline_ns > now) break;
    finish(req, ASYNC_ETIMEDOUT);  // unlinks req
  }
}

std::uint64_t RequestTable::next_deadline_in() noexcept {
  if (live_.empty()) return UINT64_MAX;
  std::uint64_t now = util::monotonic_ns();
  std::uint64_t deadline = Request::of(live_.front())->deadline_ns;
  return deadline > now ? deadline - now : 0;
}

void RequestTable::complete_done() noexcept {
  while (!done_.empty()) {
    Request *req = Request::of(done_.front());
    req->node.unlink();
    set_live(-1);
    if (core::Future *future = req->future) {
      // Completing runs on_cancel(cancelled = 0), which forgets the future.
      if (req->status == 0) {
        void *result = req->result;
        req->result = nullptr;
        future->resolve(result, req->destroy_result, nullptr);
      } else {
        future->reject(req->status);
      }
    }
    maybe_free(req);
  }
}

void RequestTable::on_cancel(async_future *, int cancelled, void *request) noexcept {
  auto *req = static_cast<Request *>(request);
  req->future = nullptr;
  if (!cancelled) return;  // complete_done() is handing over the outcome
  RequestTable *t = req->table;
  t->decide(req);
  req->wait_node.unlink();
  if (req->node.linked()) {
    req->node.unlink();
    t->set_live(-1);
  }
  // c-ares, if it has the query, calls back later: 1.18 can only cancel
  // every query of a channel at once, so it is left to finish.
  t->maybe_free(req);
  t->mark_changed();
}

void RequestTable::maybe_free(Request *req) noexcept {
  if (req->in_ares || req->node.linked() || req->future) return;
  if (req->result) req->destroy_result(req->result, nullptr);
  util::destroy(req);
}

}  // namespace async::dns
