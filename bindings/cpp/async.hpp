// C++20 coroutines over libasync's C ABI: header-only, nothing but <async.h>.
//
// A task runs on a Loop and awaits futures, sleeps, DNS lookups, connects,
// a server's accepts and a stream's reads and writes as if they blocked:
//
//   async::task<void> echo(async::Stream s) {
//     for (;;) {
//       async::Bytes b = co_await s.read_some();
//       if (b.empty()) co_return;  // the peer's end of file
//       co_await s.write(b);       // waits while the write buffer is full
//     }
//   }
//
// Errors: every C error code becomes an async::error (a std::system_error
// of async::category(): value() is the ASYNC_E* code, name() its
// async_err_name(), what() "NAME: async_strerror"), thrown by the wrapper
// call or at the co_await of the operation that failed. Nothing here returns
// an error code. Exceptions never cross into C: every callback the library
// calls (done callbacks, close callbacks, protocol callbacks, a Timer's
// function) catches; a task's exception is rethrown where it is awaited or
// from Loop::run(task), and one escaping a spawned task or a Timer's
// function is rethrown from the Loop::run call in progress.
//
// Ownership: Loop, task, Future, Stream, Server, Timer and AddrInfo own
// their C object, move but never copy, and release it in their destructor
// (a Stream is closed, a Server or Timer closed, a Future released:
// dropping the last reference of a pending future cancels it). Bytes, a
// read's bytes, move but never copy and stay valid as long as they live.
// Every object of a loop must be destroyed before the Loop. Destroying a
// task suspended in a co_await cancels what it waits for: the C userdata
// of every pending operation still gets exactly one final notification,
// which then only frees the binding's bookkeeping.
//
// Threads: as the C API, everything on the loop's thread (docs/bindings.md).
// docs/bindings.md "C++20 coroutines" has the details.
#ifndef ASYNC_HPP
#define ASYNC_HPP

#include <async.h>

#include <algorithm>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace async {

// ---- errors ---------------------------------------------------------------------

namespace detail {
class category_impl final : public std::error_category {
 public:
  const char *name() const noexcept override { return "async"; }
  std::string message(int code) const override { return async_strerror(code); }
};
}  // namespace detail

// The error category of libasync's codes: message() is async_strerror().
inline const std::error_category &category() noexcept {
  static const detail::category_impl instance;
  return instance;
}

// A libasync error code as an exception.
class error : public std::system_error {
 public:
  explicit error(int code) : std::system_error(code, category(), async_err_name(code)) {}
  // The ASYNC_E* code.
  int value() const noexcept { return code().value(); }
  // Its symbolic name, "ASYNC_ECONNREFUSED".
  const char *name() const noexcept { return async_err_name(value()); }
};

// Throws async::error for a negative return code; returns the others.
inline int check(int rc) {
  if (rc < 0) throw error(rc);
  return rc;
}

template <class T = void>
class task;
class Loop;

namespace detail {

// ---- intrusive list (no allocation to link) -------------------------------------

struct list_node {
  list_node *prev = this;
  list_node *next = this;
  list_node() = default;
  list_node(const list_node &) = delete;
  list_node &operator=(const list_node &) = delete;
  ~list_node() { unlink(); }
  void unlink() noexcept {
    prev->next = next;
    next->prev = prev;
    prev = next = this;
  }
  bool linked() const noexcept { return next != this; }
};

struct list {
  list_node head;
  bool empty() const noexcept { return !head.linked(); }
  list_node *front() noexcept { return head.next; }
  void push_back(list_node &n) noexcept {
    n.unlink();
    n.prev = head.prev;
    n.next = &head;
    head.prev->next = &n;
    head.prev = &n;
  }
};

// ---- ownership ------------------------------------------------------------------

// What Future, task, Stream, Server, Timer and AddrInfo share: one owned
// value (a C object, a coroutine, a node), moved but never copied;
// Release frees it when it is replaced, reset() or destroyed. A moved-from
// owner holds T{} and frees nothing.
template <class T, void (*Release)(T) noexcept>
class owner {
 public:
  owner() noexcept = default;
  explicit owner(T value) noexcept : v_(value) {}
  owner(owner &&o) noexcept : v_(std::exchange(o.v_, T{})) {}
  owner &operator=(owner &&o) noexcept {
    if (this != &o) {
      reset();
      v_ = std::exchange(o.v_, T{});
    }
    return *this;
  }
  ~owner() { reset(); }

  void reset() noexcept {
    if (v_) Release(std::exchange(v_, T{}));
  }

 protected:
  T v_{};
};

// ---- the binding's side of a loop (the loop's userdata) -------------------------

struct loop_state {
  async_loop *loop = nullptr;
  bool closing = false;      // Loop::shutdown() began: every new await throws ASYNC_ECANCELED
  std::exception_ptr error;  // the first exception that escaped a spawned task or a callback
  list handles;              // handle_node: the binding's open handles, closed by shutdown
  list tasks;                // promise_base: spawned tasks not finished yet

  void store(std::exception_ptr e) noexcept {
    if (!error) error = std::move(e);
  }
  void rethrow() {
    if (error) std::rethrow_exception(std::exchange(error, nullptr));
  }
};

inline loop_state *state_of(async_loop *loop) noexcept {
  return loop ? static_cast<loop_state *>(async_loop_userdata(loop)) : nullptr;
}

// Inside a catch: keeps the exception for the Loop's run (a C callback must not unwind).
inline void store_current(async_loop *loop) noexcept {
  if (loop_state *s = state_of(loop)) {
    s->store(std::current_exception());
  } else {
    std::fputs("async.hpp: an exception escaped a callback of a loop that is no async::Loop; dropped\n", stderr);
  }
}

// Resumes a coroutine from a C callback: nothing unwinds into the library.
inline void resume(std::coroutine_handle<> h, async_loop *loop) noexcept {
  try {
    h.resume();
  } catch (...) {
    store_current(loop);
  }
}

inline void throw_if_closing(async_loop *loop) {
  loop_state *s = state_of(loop);
  if (s && s->closing) throw error(ASYNC_ECANCELED);
}

inline loop_state &open_state(loop_state *s) {
  if (!s) throw error(ASYNC_EINVAL);  // a moved-from Loop
  if (s->closing) throw error(ASYNC_ECANCELED);
  return *s;
}

// ---- handles the binding creates (timers, sleeps, servers) ----------------------

// The userdata of a handle: freed once both the handle's close callback
// has run (its final notification) and the C++ owner let go (unref()).
struct handle_node : list_node {
  async_handle *handle = nullptr;
  async_loop *loop = nullptr;
  int refs = 1;  // the owner's; one more while the handle is open; a server's pending connections
  bool closing = false;

  explicit handle_node(async_loop *l) noexcept : loop(l) {}
  virtual ~handle_node() = default;
  handle_node(const handle_node &) = delete;
  handle_node &operator=(const handle_node &) = delete;

  void *userdata() noexcept { return static_cast<handle_node *>(this); }
  static handle_node *from(void *userdata) noexcept { return static_cast<handle_node *>(userdata); }

  // Takes the handle just created with userdata(): the loop closes it at shutdown.
  void opened(async_handle *h) noexcept {
    handle = h;
    ++refs;
    if (loop_state *s = state_of(loop)) s->handles.push_back(*this);
  }
  void close() noexcept {
    if (!handle || closing) return;
    closing = true;
    if (async_handle_close(handle, &handle_node::closed) < 0) closed(handle, userdata());
  }
  void unref() noexcept {
    if (--refs == 0) delete this;
  }
  // The owner lets go (a Timer's or a Server's release).
  static void close_and_unref(handle_node *n) noexcept {
    n->close();
    n->unref();
  }
  // Inside the close callback, before the handle's reference goes.
  virtual void on_closed() noexcept {}

 private:
  static void closed(async_handle *, void *userdata) noexcept {
    handle_node *n = from(userdata);
    n->unlink();
    n->handle = nullptr;
    n->on_closed();
    n->unref();
  }
};

// ---- futures --------------------------------------------------------------------

// The userdata of a done callback: outlives a coroutine frame destroyed
// while it waits (h is then null and the callback only frees it).
struct future_wait {
  std::coroutine_handle<> h;
  static void done(async_future *future, int, void *userdata) noexcept {
    auto *w = static_cast<future_wait *>(userdata);
    if (!w->h) {
      delete w;
      return;
    }
    resume(w->h, async_future_loop(future));  // the awaiter frees w
  }
};

// Suspends until a future completes (not at all when it is complete
// already); finish() gives its value or throws its error.
class future_awaiter_base {
 public:
  future_awaiter_base(async_future *future, int rc) noexcept
      : future_(future), rc_(future || rc < 0 ? rc : ASYNC_EINVAL) {}
  future_awaiter_base(future_awaiter_base &&o) noexcept
      : future_(o.future_), rc_(o.rc_), wait_(std::exchange(o.wait_, nullptr)) {}
  future_awaiter_base &operator=(future_awaiter_base &&) = delete;
  ~future_awaiter_base() {
    if (wait_) wait_->h = nullptr;  // the frame goes while waiting: the callback frees the node
  }

  bool await_ready() {
    if (rc_ < 0) return true;
    throw_if_closing(async_future_loop(future_));
    return async_future_get_state(future_) != ASYNC_FUTURE_PENDING;
  }
  bool await_suspend(std::coroutine_handle<> h) {
    wait_ = new future_wait{h};
    int rc = async_future_add_callback(future_, &future_wait::done, wait_);
    if (rc < 0) {
      delete std::exchange(wait_, nullptr);
      rc_ = rc;
      return false;
    }
    return true;
  }

 protected:
  void *finish() {
    delete std::exchange(wait_, nullptr);
    if (rc_ < 0) throw error(rc_);
    void *value = nullptr;
    check(async_future_result(&value, future_));
    return value;
  }

 private:
  async_future *future_;
  int rc_;
  future_wait *wait_ = nullptr;
};

}  // namespace detail

// ---- Future ---------------------------------------------------------------------

namespace detail {
inline void release_future(async_future *future) noexcept { async_future_release(future); }
}  // namespace detail

// One reference to an async_future. co_await gives its value (the void *
// the producer resolved it with, owned by the future) or throws its error
// (ASYNC_ECANCELED when cancelled). Dropping the reference (destructor,
// reset(), assignment) cancels a pending future whose last reference it was.
class Future : public detail::owner<async_future *, &detail::release_future> {
 public:
  Future() noexcept = default;
  // Adopts the caller's reference.
  explicit Future(async_future *future) noexcept : owner(future) {}

  // A new reference to the same future (async_future_retain()).
  Future share() const {
    check(async_future_retain(v_));
    return Future(v_);
  }
  async_future *get() const noexcept { return v_; }
  async_future *release() noexcept { return std::exchange(v_, nullptr); }
  explicit operator bool() const noexcept { return v_ != nullptr; }

  // True if it was pending (and is cancelled now).
  bool cancel() { return check(async_future_cancel(v_)) == 1; }
  // An enum async_future_state.
  int state() const { return check(async_future_get_state(v_)); }
  // The value of a DONE future; throws the error of a FAILED or CANCELLED
  // one, ASYNC_ESTATE while pending.
  void *value() const {
    void *v = nullptr;
    check(async_future_result(&v, v_));
    return v;
  }

  class awaiter : public detail::future_awaiter_base {
   public:
    using future_awaiter_base::future_awaiter_base;
    void *await_resume() { return finish(); }
  };
  // The future stays this object's: keep it alive until the await ends.
  awaiter operator co_await() &noexcept { return awaiter(v_, 0); }
};

namespace detail {

// An operation that the C API starts with a future: owns the future (and
// cancels it if the awaiting frame goes) and turns its value into Result.
template <class Result>
class [[nodiscard]] op : public future_awaiter_base {
 public:
  using make_fn = Result (*)(Future &&, void *);
  op(async_future *future, int rc, make_fn make) noexcept
      : future_awaiter_base(future, rc), owned_(future), make_(make) {}
  Result await_resume() {
    void *value = finish();
    return make_(std::move(owned_), value);
  }

 private:
  Future owned_;  // destroyed before the base detaches its node: the callback runs later, never inside
  make_fn make_;
};

}  // namespace detail

// ---- task -----------------------------------------------------------------------

namespace detail {

struct promise_base : list_node {  // linked in loop_state::tasks while spawned
  std::coroutine_handle<> continuation;
  std::coroutine_handle<> self;  // set when spawned: the loop destroys it
  std::exception_ptr exception;
  loop_state *spawned = nullptr;
  async_loop *stop_loop = nullptr;  // Loop::run(task): stop the loop when done
  bool started = false;

  std::suspend_always initial_suspend() noexcept { return {}; }
  struct final_awaiter {
    bool await_ready() noexcept { return false; }
    template <class Promise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> h) noexcept {
      promise_base &p = h.promise();
      if (p.stop_loop) async_loop_stop(p.stop_loop);
      if (loop_state *s = p.spawned) {
        if (p.exception) s->store(p.exception);
        h.destroy();  // unlinks it
        return std::noop_coroutine();
      }
      return p.continuation ? p.continuation : std::noop_coroutine();
    }
    void await_resume() noexcept {}
  };
  final_awaiter final_suspend() noexcept { return {}; }
  void unhandled_exception() noexcept { exception = std::current_exception(); }
  void rethrow() {
    if (exception) std::rethrow_exception(exception);
  }
};

template <class T>
struct task_promise : promise_base {
  std::optional<T> value;
  task<T> get_return_object() noexcept;
  template <class U = T>
  void return_value(U &&v) {
    value.emplace(std::forward<U>(v));
  }
  T take() {
    rethrow();
    return std::move(*value);
  }
};

template <>
struct task_promise<void> : promise_base {
  task<void> get_return_object() noexcept;
  void return_void() noexcept {}
  void take() { rethrow(); }
};

}  // namespace detail

namespace detail {
template <class Promise>
void destroy_frame(std::coroutine_handle<Promise> h) noexcept {
  h.destroy();
}
}  // namespace detail

// A coroutine returning T, started when awaited (co_await), run
// (Loop::run) or spawned (Loop::spawn). Destroying it destroys the
// coroutine, cancelling what it waits for.
template <class T>
class [[nodiscard]] task : public detail::owner<std::coroutine_handle<detail::task_promise<T>>,
                                                &detail::destroy_frame<detail::task_promise<T>>> {
 public:
  using promise_type = detail::task_promise<T>;
  using handle_type = std::coroutine_handle<promise_type>;

  task() noexcept = default;
  explicit task(handle_type h) noexcept : task::owner(h) {}

  // Starts it now, without giving it away: it runs until its first
  // suspension and goes on from the loop. Read its outcome with co_await
  // or result() once done(); destroying it before cancels it.
  void start() {
    if (!this->v_) throw error(ASYNC_EINVAL);
    if (this->v_.promise().started) throw error(ASYNC_ESTATE);
    this->v_.promise().started = true;
    this->v_.resume();  // the coroutine's exceptions stay in its promise
  }
  bool done() const noexcept { return !this->v_ || this->v_.done(); }
  // The result of a finished task, or its exception; ASYNC_ESTATE before.
  T result() {
    if (!this->v_) throw error(ASYNC_EINVAL);
    if (!this->v_.done()) throw error(ASYNC_ESTATE);
    return this->v_.promise().take();
  }
  handle_type release() noexcept { return std::exchange(this->v_, nullptr); }

  struct awaiter {
    handle_type h;
    bool await_ready() const noexcept { return !h || h.done(); }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<> caller) {
      promise_type &p = h.promise();
      if (p.continuation) throw error(ASYNC_ESTATE);  // awaited twice at once
      p.continuation = caller;
      if (p.started) return std::noop_coroutine();
      p.started = true;
      return h;  // start it; it resumes the caller when done
    }
    T await_resume() {
      if (!h) throw error(ASYNC_EINVAL);  // a moved-from task
      return h.promise().take();
    }
  };
  // The task object must outlive the await (a temporary does).
  awaiter operator co_await() const noexcept { return awaiter{this->v_}; }

 private:
  friend class Loop;
};

namespace detail {
template <class T>
task<T> task_promise<T>::get_return_object() noexcept {
  return task<T>(task<T>::handle_type::from_promise(*this));
}
inline task<void> task_promise<void>::get_return_object() noexcept {
  return task<void>(task<void>::handle_type::from_promise(*this));
}
}  // namespace detail

// ---- results ---------------------------------------------------------------------

// A getaddrinfo result (async_addrinfo, taken from its future).
namespace detail {
inline void free_addrinfo(async_addrinfo *list) noexcept { async_addrinfo_free(list); }
}  // namespace detail

class AddrInfo : public detail::owner<async_addrinfo *, &detail::free_addrinfo> {
 public:
  AddrInfo() noexcept = default;
  explicit AddrInfo(async_addrinfo *list) noexcept : owner(list) {}

  std::size_t size() const { return static_cast<std::size_t>(check(async_addrinfo_count(v_))); }
  int family(std::size_t i) const { return check(async_addrinfo_family(v_, i)); }
  int socktype(std::size_t i) const { return check(async_addrinfo_socktype(v_, i)); }
  int protocol(std::size_t i) const { return check(async_addrinfo_protocol(v_, i)); }
  // The address of entry i and its length (borrowed from this list).
  std::pair<const struct sockaddr *, std::size_t> addr(std::size_t i) const {
    const struct sockaddr *a = nullptr;
    int len = check(async_addrinfo_addr(&a, v_, i));
    return {a, static_cast<std::size_t>(len)};
  }
  // Entry i's address as text, without the port: "192.0.2.1", "::1".
  std::string host(std::size_t i) const {
    auto [a, len] = addr(i);
    char text[ASYNC_ADDR_STRLEN];
    return std::string(
        text, static_cast<std::size_t>(check(async_addr_format(text, sizeof text, a, len, ASYNC_ADDR_NOPORT))));
  }
  std::uint16_t port(std::size_t i) const {
    auto [a, len] = addr(i);
    return static_cast<std::uint16_t>(check(async_addr_port(a, len)));
  }
  const char *canonname() const noexcept { return async_addrinfo_canonname(l_); }
  async_addrinfo *get() const noexcept { return l_; }

 private:
  async_addrinfo *l_ = nullptr;
};

// A getnameinfo result.
struct NameInfo {
  std::string host;
  std::string service;
};

// ---- Stream ---------------------------------------------------------------------

namespace detail {
class stream_node;
struct server_node;
}  // namespace detail

// The bytes of a read. A read that the arriving bytes decide borrows them
// where they are, without a copy; just before that memory can go (the
// delivery they came in returns, the stream buffers more bytes, the Stream
// is destroyed) a Bytes still alive takes a copy of its own. So a Bytes
// stays valid for as long as it lives, whatever happens to its stream. If
// that copy cannot be allocated, the Bytes is left empty and the stream
// is aborted: its reads then throw ASYNC_ENOMEM.
class Bytes {
 public:
  Bytes() noexcept = default;
  Bytes(Bytes &&o) noexcept { take(o); }
  Bytes &operator=(Bytes &&o) noexcept {
    if (this != &o) {
      detach();
      take(o);
    }
    return *this;
  }
  ~Bytes() { detach(); }

  const std::uint8_t *data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  std::span<const std::uint8_t> span() const noexcept { return {data_, size_}; }
  std::string_view str() const noexcept { return {reinterpret_cast<const char *>(data_), size_}; }

 private:
  friend class detail::stream_node;
  void take(Bytes &o) noexcept;
  void detach() noexcept;
  bool own() noexcept;

  const std::uint8_t *data_ = nullptr;
  std::size_t size_ = 0;
  std::unique_ptr<std::uint8_t[]> owned_;  // the copy, once it has one
  detail::stream_node *lender_ = nullptr;  // while data_ is borrowed
};

namespace detail {

enum class read_mode { exactly, until, some };

// One read of a Stream (Stream::read). It is the stream's pending read
// from the call that makes it (a second read made meanwhile throws
// ASYNC_ESTATE at its co_await), completes as soon as the bytes decide
// it, even before its co_await, and, destroyed first, is withdrawn: its
// bytes stay for the next read. The stream points at it: it never moves.
class [[nodiscard]] read_op {
 public:
  static constexpr std::size_t max_delimiter = 16;  // as the C reader's

  read_op(stream_node *node, read_mode mode, std::size_t n, std::string_view delim = {}) noexcept;
  read_op(const read_op &) = delete;
  read_op &operator=(const read_op &) = delete;
  ~read_op();

  bool await_ready();
  void await_suspend(std::coroutine_handle<> h) noexcept { h_ = h; }
  Bytes await_resume() {
    h_ = nullptr;
    if (status_ < 0) throw error(status_);
    return std::move(bytes_);
  }

 private:
  friend class stream_node;
  stream_node *node_;  // while pending
  const loop_state *state_;
  read_mode mode_;
  std::size_t n_;  // exactly: the count; until: the limit; some: the most
  std::uint8_t delim_[max_delimiter] = {};
  std::size_t delim_len_ = 0;
  int status_ = 0;
  bool done_ = false;
  Bytes bytes_;
  std::coroutine_handle<> h_;  // while suspended in its co_await
};

// What arrived that no read took yet: a FIFO of bytes in one block.
class byte_buffer {
 public:
  std::size_t size() const noexcept { return tail_ - head_; }
  const std::uint8_t *data() const noexcept { return mem_.get() + head_; }
  // The memory stays (a read may borrow consumed bytes) until the next append.
  void consume(std::size_t n) noexcept {
    head_ += n;
    if (head_ == tail_) head_ = tail_ = 0;
  }
  // May move the bytes; false when out of memory (nothing changed).
  bool append(const std::uint8_t *bytes, std::size_t n) noexcept {
    if (n > cap_ - tail_) {
      std::size_t need = size() + n;
      if (need <= cap_) {
        std::memmove(mem_.get(), data(), size());
      } else {
        std::size_t cap = std::max(need, 2 * cap_);
        std::unique_ptr<std::uint8_t[]> mem(new (std::nothrow) std::uint8_t[cap]);
        if (!mem) return false;
        if (size()) std::memcpy(mem.get(), data(), size());
        mem_ = std::move(mem);
        cap_ = cap;
      }
      tail_ -= head_;
      head_ = 0;
    }
    std::memcpy(mem_.get() + tail_, bytes, n);
    tail_ += n;
    return true;
  }
  void release() noexcept {
    mem_.reset();
    head_ = tail_ = cap_ = 0;
  }

 private:
  std::unique_ptr<std::uint8_t[]> mem_;
  std::size_t head_ = 0, tail_ = 0, cap_ = 0;
};

// A Stream's protocol userdata. It completes the pending read from the
// stream's own callbacks and resumes its coroutine there: no future, no
// trip through the ready queue. A read that a delivery decides with
// nothing buffered takes the bytes where they arrived (lent, no copy);
// the rest is buffered, and the stream paused while limit bytes are
// buffered and no read waits (as async_reader does). Freed once both the
// owner (a Stream, or a connect under way) and the stream's release (its
// final notification) have let go.
class stream_node {
 public:
  static constexpr std::size_t limit = std::size_t{64} * 1024;

  explicit stream_node(async_loop *l) noexcept : loop_(l), state_(state_of(l)) {}
  stream_node(const stream_node &) = delete;
  stream_node &operator=(const stream_node &) = delete;

  // The library took the node as the userdata of protocol.
  void handed() noexcept { ++refs_; }
  // The owner's stream reference (async_stream_retain()), now known.
  void set_stream(async_stream *stream) noexcept { stream_ = conn_ = stream; }
  async_stream *stream() const noexcept { return stream_; }
  bool closing() const noexcept { return state_ && state_->closing; }

  // The owner lets go: closes the stream (queued bytes still go), drops
  // what is buffered and cancels the pending read (ASYNC_ECANCELED, its
  // coroutine resumed from the loop).
  static void release(stream_node *n) noexcept {
    n->owned_ = false;
    n->unlend();
    n->buf_.release();
    if (async_stream *s = std::exchange(n->stream_, nullptr)) {
      async_stream_close(s);  // ASYNC_ECLOSED once ended: nothing to do
      async_stream_release(s);
    }
    if (read_op *r = n->pending_) {
      if (r->h_ && async_loop_call_soon(n->loop_, &cancel_soon, n) == 0)
        ++n->refs_;
      else
        n->finish(ASYNC_ECANCELED);  // nobody suspended in it (or no memory to defer)
    }
    n->unref();
  }

  static const async_stream_protocol protocol;

 private:
  friend class read_op;
  friend class ::async::Bytes;

  void unref() noexcept {
    if (--refs_ == 0) delete this;
  }

  void start(read_op *r) noexcept {
    pending_ = r;
    searched_ = 0;
    if (buf_.size() || eof_ || lost_) serve();  // else only a delivery can decide it
    sync_reading();
  }
  void withdraw() noexcept {
    pending_ = nullptr;
    sync_reading();
  }

  static void on_made(async_stream *stream, void *userdata) noexcept {
    static_cast<stream_node *>(userdata)->conn_ = stream;
  }
  static std::size_t on_data(async_stream *stream, const std::uint8_t *data, std::size_t len, void *userdata) noexcept {
    auto *n = static_cast<stream_node *>(userdata);
    n->conn_ = stream;  // given by async_stream_set_protocol(): no connection_made
    if (!n->owned_) return len;
    // The library's reference keeps the node while a resumed coroutine drops its Stream.
    std::size_t used = 0;
    // Nothing buffered: a read these bytes decide takes them where they are.
    while (n->pending_ && !n->buf_.size() && used < len && n->owned_) {
      std::size_t take = n->decide(data + used, len - used);
      if (!take) break;
      n->complete(data + used, take);
      used += take;
    }
    if (used < len && n->owned_) {
      n->unlend();  // appending may move the buffer
      if (!n->buf_.append(data + used, len - used)) n->fail_connection(ASYNC_ENOMEM);
      n->serve();
    }
    n->unlend();  // data is valid during this call only
    n->sync_reading();
    return len;
  }
  static int on_eof(async_stream *, void *userdata) noexcept {
    auto *n = static_cast<stream_node *>(userdata);
    n->eof_ = true;
    n->serve();
    return 1;  // the Stream may still write; it closes when done
  }
  static void on_lost(async_stream *, int error, void *userdata) noexcept {
    auto *n = static_cast<stream_node *>(userdata);
    n->conn_ = nullptr;
    n->lost_ = true;
    if (!n->error_) n->error_ = error;  // a failure of ours came first
    n->serve();
  }
  static void on_release(void *userdata) noexcept {
    // After connection_lost, or without it (a connect that failed): no more bytes come.
    auto *n = static_cast<stream_node *>(userdata);
    n->conn_ = nullptr;
    n->lost_ = true;
    n->serve();
    n->unref();
  }
  static void cancel_soon(async_loop *, void *userdata) noexcept {
    auto *n = static_cast<stream_node *>(userdata);
    if (n->pending_) n->finish(ASYNC_ECANCELED);
    n->unref();
  }

  // How many of these bytes (nothing buffered before them) complete the pending read; 0: they do not.
  std::size_t decide(const std::uint8_t *data, std::size_t len) const noexcept {
    const read_op &r = *pending_;
    switch (r.mode_) {
      case read_mode::exactly: return len >= r.n_ ? r.n_ : 0;
      case read_mode::until: return delimiter_end(data, std::min(len, r.n_), 0);
      case read_mode::some: return std::min(len, r.n_);
    }
    return 0;
  }
  // The length up to the end of the first delimiter starting at from or after, within window bytes; 0: none.
  std::size_t delimiter_end(const std::uint8_t *data, std::size_t window, std::size_t from) const noexcept {
    const read_op &r = *pending_;
    if (window < r.delim_len_) return 0;
    const std::uint8_t *end = data + window;
    const std::uint8_t *at = std::search(data + from, end, r.delim_, r.delim_ + r.delim_len_);
    return at == end ? 0 : static_cast<std::size_t>(at - data) + r.delim_len_;
  }

  // Completes the pending read if the buffered bytes (or the end) decide it: async_reader's rules.
  void serve() noexcept {
    read_op *r = pending_;
    if (!r) return;
    if (!owned_) return finish(ASYNC_ECANCELED);
    bool ended = eof_ || lost_;
    switch (r->mode_) {
      case read_mode::exactly:
        if (buf_.size() >= r->n_) return complete_buffered(r->n_);
        break;
      case read_mode::until: {
        // Only a delimiter ending within the limit counts, however the bytes were split.
        std::size_t window = std::min(buf_.size(), r->n_);
        if (std::size_t line = delimiter_end(buf_.data(), window, searched_)) return complete_buffered(line);
        if (window >= r->delim_len_) searched_ = window - r->delim_len_ + 1;  // where a delimiter can newly end
        if (buf_.size() >= r->n_) return finish(ASYNC_ENOBUFS);
        break;
      }
      case read_mode::some:
        if (buf_.size()) return complete_buffered(std::min(buf_.size(), r->n_));
        if (ended && !(lost_ && error_)) return complete(nullptr, 0);
        break;
    }
    if (ended) finish(lost_ && error_ ? error_ : ASYNC_EEOF);
  }
  void complete_buffered(std::size_t take) noexcept {
    const std::uint8_t *data = buf_.data();
    buf_.consume(take);  // before the coroutine resumes and reads on
    complete(data, take);
  }
  // The pending read gets these bytes, lent.
  void complete(const std::uint8_t *data, std::size_t take) noexcept {
    unlend();  // one lender at a time: an earlier read's Bytes gets its copy
    Bytes &b = pending_->bytes_;
    b.data_ = data;
    b.size_ = take;
    if (take) {
      b.lender_ = this;
      lent_ = &b;
    }
    finish(0);
  }
  void finish(int status) noexcept {
    read_op *r = std::exchange(pending_, nullptr);
    r->node_ = nullptr;  // the Stream may go before the read
    r->status_ = status;
    r->done_ = true;
    if (r->h_) resume(r->h_, loop_);
  }
  void unlend() noexcept {
    if (Bytes *b = std::exchange(lent_, nullptr); b && !b->own()) fail_connection(ASYNC_ENOMEM);
  }
  void fail_connection(int error) noexcept {
    if (!error_) error_ = error;
    lost_ = true;
    if (conn_) async_stream_abort(conn_);
  }
  void sync_reading() noexcept {
    // A pending read still wants bytes: read_exactly may need more than the limit.
    bool full = buf_.size() >= limit && !pending_;
    if (full == paused_ || !owned_ || !conn_ || lost_) return;
    paused_ = full;
    if (full)
      async_stream_pause_reading(conn_);
    else
      async_stream_resume_reading(conn_);
  }

  async_loop *loop_;
  loop_state *state_;
  int refs_ = 1;                    // the owner's; the library's once handed(); a deferred cancel's
  async_stream *stream_ = nullptr;  // the owner's reference
  async_stream *conn_ = nullptr;    // the live connection, as its callbacks give it
  read_op *pending_ = nullptr;
  Bytes *lent_ = nullptr;  // the Bytes borrowing a delivery's or the buffer's memory
  byte_buffer buf_;
  std::size_t searched_ = 0;  // until: starts of a delimiter ruled out
  int error_ = 0;             // the connection's, once lost
  bool eof_ = false;
  bool lost_ = false;
  bool paused_ = false;  // we paused the stream's reading
  bool owned_ = true;
};

inline constexpr async_stream_protocol stream_node::protocol = {
    sizeof(async_stream_protocol),
    &on_made,
    &on_data,
    &on_eof,
    &on_lost,
    nullptr,
    nullptr,
    nullptr,
    &on_release,
    0,
    nullptr,
};

inline read_op::read_op(stream_node *node, read_mode mode, std::size_t n, std::string_view delim) noexcept
    : node_(node), state_(node ? node->state_ : nullptr), mode_(mode), n_(n) {
  if (!node || (mode == read_mode::until ? delim.empty() || delim.size() > max_delimiter : n == 0)) {
    status_ = ASYNC_EINVAL;
  } else if (node->pending_) {
    status_ = ASYNC_ESTATE;  // one read at a time
  } else {
    if (mode == read_mode::until) {
      std::memcpy(delim_, delim.data(), delim.size());
      delim_len_ = delim.size();
      if (n_ == 0 || n_ > stream_node::limit) n_ = stream_node::limit;
    }
    node->start(this);  // may complete it now
    return;
  }
  node_ = nullptr;
  done_ = true;
}

inline read_op::~read_op() {
  if (node_) node_->withdraw();
}

inline bool read_op::await_ready() {
  if (state_ && state_->closing) throw error(ASYNC_ECANCELED);
  return done_;
}

}  // namespace detail

inline void Bytes::take(Bytes &o) noexcept {
  data_ = std::exchange(o.data_, nullptr);
  size_ = std::exchange(o.size_, 0);
  owned_ = std::move(o.owned_);
  lender_ = std::exchange(o.lender_, nullptr);
  if (lender_) lender_->lent_ = this;
}

inline void Bytes::detach() noexcept {
  if (lender_) std::exchange(lender_, nullptr)->lent_ = nullptr;
}

// The lender's memory is about to go: a copy of its own (false: out of memory, left empty).
inline bool Bytes::own() noexcept {
  lender_ = nullptr;
  std::unique_ptr<std::uint8_t[]> copy(new (std::nothrow) std::uint8_t[size_]);
  if (!copy) {
    data_ = nullptr;
    size_ = 0;
    return false;
  }
  std::memcpy(copy.get(), data_, size_);
  data_ = copy.get();
  owned_ = std::move(copy);
  return true;
}

namespace detail {

// A write that waits: a copy of the bytes written zero-copy, so its done
// callback (the final notification) says when they and everything queued
// before them are out, or dropped. Outlives a frame destroyed meanwhile.
struct write_wait {
  std::coroutine_handle<> h;
  async_loop *loop;
  std::unique_ptr<std::uint8_t[]> bytes;
  static void done(void *userdata) noexcept {
    auto *w = static_cast<write_wait *>(userdata);
    if (!w->h) {
      delete w;
      return;
    }
    resume(w->h, w->loop);  // the awaiter frees w
  }
};

}  // namespace detail

// A connected stream (accepted, connected, or adopted with Stream::adopt)
// on the binding's own protocol: read_exactly, read_until, read_line and
// read_some give Bytes, with async_reader's rules (async/reader.h; a
// 64 KiB buffer limit); write() sends, and waits while the write buffer is
// above its high-water mark. Destroying it closes the stream (queued bytes
// are still sent).
class Stream : public detail::owner<detail::stream_node *, &detail::stream_node::release> {
 public:
  Stream() noexcept = default;

  // A stream of fd (a connected socket, a pipe): async_stream_adopt().
  static Stream adopt(Loop &loop, int fd);

  using read = detail::read_op;
  // Exactly n bytes; ASYNC_EEOF if the stream ends first.
  read read_exactly(std::size_t n) noexcept { return read(v_, detail::read_mode::exactly, n); }
  // Up to and including delim (1 to 16 bytes); limit 0: 64 KiB, the most. ASYNC_ENOBUFS past it.
  read read_until(std::string_view delim, std::size_t limit = 0) noexcept {
    return read(v_, detail::read_mode::until, limit, delim);
  }
  read read_line(std::size_t limit = 0) noexcept { return read(v_, detail::read_mode::until, limit, "\n"); }
  // What has arrived, 1 to max bytes; empty at the end of file.
  read read_some(std::size_t max = 65536) noexcept { return read(v_, detail::read_mode::some, max); }
  class [[nodiscard]] write_awaiter {
   public:
    write_awaiter(const detail::stream_node *n, const void *data, std::size_t len) noexcept
        : n_(n), data_(data), len_(len) {}
    write_awaiter(write_awaiter &&o) noexcept
        : n_(o.n_), data_(o.data_), len_(o.len_), rc_(o.rc_), wait_(std::exchange(o.wait_, nullptr)) {}
    write_awaiter &operator=(write_awaiter &&) = delete;
    ~write_awaiter() {
      if (wait_) wait_->h = nullptr;  // the bytes still go; done frees the copy
    }
    bool await_ready() {
      if (n_ && n_->closing()) throw error(ASYNC_ECANCELED);
      async_stream *s_ = n_ ? n_->stream() : nullptr;
      std::size_t queued = 0, high = 0, low = 0;
      rc_ = async_stream_write_buffer_size(&queued, s_);
      if (rc_ >= 0) rc_ = async_stream_get_write_limits(&high, &low, s_);
      if (rc_ < 0) return true;
      if (len_ <= high && queued <= high - len_) {
        rc_ = async_stream_write(s_, data_, len_);  // sent now, or copied into the buffer
        return true;
      }
      // Above the high-water mark: wait until these bytes have left.
      auto w = std::make_unique<detail::write_wait>();
      w->loop = async_stream_loop(s_);
      w->bytes = std::make_unique<std::uint8_t[]>(len_);
      std::memcpy(w->bytes.get(), data_, len_);
      rc_ = async_stream_write_zc(s_, w->bytes.get(), len_, &detail::write_wait::done, w.get());
      if (rc_ < 0) return true;
      wait_ = w.release();
      return false;
    }
    void await_suspend(std::coroutine_handle<> h) noexcept { wait_->h = h; }  // done never runs inside the write
    void await_resume() {
      delete std::exchange(wait_, nullptr);
      check(rc_);
    }

   private:
    const detail::stream_node *n_;
    const void *data_;
    std::size_t len_;
    int rc_ = 0;
    detail::write_wait *wait_ = nullptr;
  };
  write_awaiter write(const void *data, std::size_t len) noexcept { return {v_, data, len}; }
  write_awaiter write(std::string_view text) noexcept { return {v_, text.data(), text.size()}; }
  write_awaiter write(std::span<const std::uint8_t> bytes) noexcept { return {v_, bytes.data(), bytes.size()}; }
  write_awaiter write(const Bytes &bytes) noexcept { return {v_, bytes.data(), bytes.size()}; }

  // Flush, then close (async_stream_close()).
  void close() { check(async_stream_close(get())); }
  // Drop the write buffer and close (async_stream_abort()).
  void abort() { check(async_stream_abort(get())); }
  // Shut the write side once flushed (async_stream_write_eof()).
  void write_eof() { check(async_stream_write_eof(get())); }
  void set_nodelay(bool on) { check(async_stream_set_nodelay(get(), on ? 1 : 0)); }
  void set_write_limits(std::size_t high, std::size_t low) { check(async_stream_set_write_limits(get(), high, low)); }
  int fd() const { return check(async_stream_fd(get())); }
  async_stream *get() const noexcept { return v_ ? v_->stream() : nullptr; }
  explicit operator bool() const noexcept { return v_ != nullptr; }

 private:
  friend class Loop;
  friend struct detail::server_node;
  explicit Stream(detail::stream_node *n) noexcept : owner(n) {}
  // A Stream whose node is not the library's yet; empty when out of memory.
  static Stream make(async_loop *loop) noexcept { return Stream(new (std::nothrow) detail::stream_node(loop)); }
  detail::stream_node *node() const noexcept { return v_; }
};

// ---- Loop -----------------------------------------------------------------------

namespace detail {

struct sleep_node final : handle_node {
  std::coroutine_handle<> h;
  int status = ASYNC_ECANCELED;  // until it fires
  using handle_node::handle_node;
  static void fired(async_timer *, void *userdata) noexcept {
    auto *n = static_cast<sleep_node *>(from(userdata));
    n->status = 0;
    n->close();
    if (n->h) resume(std::exchange(n->h, nullptr), n->loop);
  }
  void on_closed() noexcept override {  // closed by Loop::shutdown() before it fired
    if (h) resume(std::exchange(h, nullptr), loop);
  }
};

}  // namespace detail

class [[nodiscard]] sleep_awaiter {
 public:
  sleep_awaiter(async_loop *loop, std::uint64_t ms) noexcept : loop_(loop), ms_(ms) {}
  sleep_awaiter(sleep_awaiter &&o) noexcept : loop_(o.loop_), ms_(o.ms_), node_(std::exchange(o.node_, nullptr)) {}
  sleep_awaiter &operator=(sleep_awaiter &&) = delete;
  ~sleep_awaiter() {
    if (node_) {  // the frame goes while sleeping: stop the timer
      node_->h = nullptr;
      node_->close();
      node_->unref();
    }
  }
  bool await_ready() {
    detail::throw_if_closing(loop_);
    return false;
  }
  void await_suspend(std::coroutine_handle<> h) {
    auto node = std::make_unique<detail::sleep_node>(loop_);
    async_timer *timer = nullptr;
    check(async_timer_new(&timer, loop_, node->userdata()));
    node->opened(async_timer_handle(timer));
    int rc = async_timer_start(timer, ms_, 0, &detail::sleep_node::fired);
    if (rc < 0) {
      detail::sleep_node *n = node.release();
      n->close();  // the close callback drops the handle's reference
      n->unref();
      throw error(rc);
    }
    node->h = h;
    node_ = node.release();
  }
  void await_resume() {
    int status = node_->status;
    std::exchange(node_, nullptr)->unref();
    check(status);
  }

 private:
  async_loop *loop_;
  std::uint64_t ms_;
  detail::sleep_node *node_ = nullptr;
};

// An event loop (async_loop) with the binding's state as its userdata.
class Loop {
 public:
  Loop() : s_(std::make_unique<detail::loop_state>()) {
    check(async_loop_new(&s_->loop));
    async_loop_set_userdata(s_->loop, s_.get());
  }
  Loop(Loop &&) noexcept = default;
  Loop &operator=(Loop &&o) noexcept {
    if (this != &o) {
      close();
      s_ = std::move(o.s_);
    }
    return *this;
  }
  Loop(const Loop &) = delete;
  Loop &operator=(const Loop &) = delete;
  // shutdown(), then destroys the spawned tasks still suspended and frees
  // the loop. If objects of the loop are still held (a Stream, a Future,
  // ... that outlives it), the loop cannot be freed: it is left allocated
  // and a line says so on stderr.
  ~Loop() { close(); }

  async_loop *get() const noexcept { return s_ ? s_->loop : nullptr; }

  // Runs until no work is left or stop(); rethrows an exception that
  // escaped a spawned task or a callback.
  void run() {
    detail::loop_state &s = state();
    check(async_loop_run(s.loop, ASYNC_RUN_DEFAULT));
    s.rethrow();
  }

  // Starts t (unless started already: task::start()) and runs the loop
  // until t is done: its result, or its exception. ASYNC_ESTATE if the loop runs out of work first (nothing
  // left that could finish t); ASYNC_EBUSY from inside a callback of
  // this loop.
  template <class T>
  T run(task<T> t) {
    detail::loop_state &s = state();
    if (!t.v_) throw error(ASYNC_EINVAL);
    auto &p = t.v_.promise();
    if (p.continuation) throw error(ASYNC_ESTATE);  // another coroutine awaits it
    if (!p.started) {
      p.started = true;
      detail::resume(t.v_, s.loop);
    }
    if (!t.v_.done()) {
      p.stop_loop = s.loop;  // set only now: it completes inside a run, never before it
      while (!t.v_.done()) {
        int rc = check(async_loop_run(s.loop, ASYNC_RUN_DEFAULT));
        s.rethrow();
        if (rc == 0 && !t.v_.done()) throw error(ASYNC_ESTATE);
      }
    }
    s.rethrow();
    return p.take();
  }

  // Starts t now (it runs until its first suspension) and lets the loop
  // own it; its frame goes when it finishes. An exception escaping it is
  // rethrown from the run in progress. ASYNC_ECANCELED once shutting down.
  void spawn(task<void> t) {
    detail::loop_state &s = detail::open_state(s_.get());
    if (!t.v_) throw error(ASYNC_EINVAL);
    auto h = t.release();
    auto &p = h.promise();
    if (p.started) {
      t = task<void>(h);
      throw error(ASYNC_ESTATE);
    }
    p.started = true;
    p.spawned = &s;
    p.self = h;
    s.tasks.push_back(p);
    detail::resume(h, s.loop);
  }

  void stop() { check(async_loop_stop(get())); }

  // Ends everything: the binding's timers, sleeps and servers are closed
  // (a coroutine in sleep() or accept() resumes with ASYNC_ECANCELED or
  // ASYNC_ECLOSED), then async_loop_shutdown() cancels every pending future
  // and aborts every stream (awaits of them throw ASYNC_ECANCELED), and the
  // loop runs until all of it is delivered. From the start of the call,
  // every new co_await on this loop throws ASYNC_ECANCELED at once, so a
  // coroutine that catches and awaits again does not hang, and spawn(),
  // Timer and Server refuse with the same code. Inside a callback of this
  // loop it does not run the loop: the run in progress delivers.
  void shutdown() {
    detail::loop_state &s = state();
    s.closing = true;
    while (!s.handles.empty()) {
      auto *n = static_cast<detail::handle_node *>(s.handles.front());
      n->unlink();
      n->close();
    }
    check(async_loop_shutdown(s.loop, nullptr));
    int rc = async_loop_run(s.loop, ASYNC_RUN_DEFAULT);
    if (rc != ASYNC_EBUSY) check(rc);
  }

  // Awaitables.
  sleep_awaiter sleep(std::chrono::milliseconds d) const noexcept {
    return {get(), d.count() < 0 ? 0 : static_cast<std::uint64_t>(d.count())};
  }
  detail::op<AddrInfo> getaddrinfo(const char *host, const char *service, int family = 0, int socktype = 0,
                                   std::uint32_t flags = 0) {
    async_future *f = nullptr;
    int rc = async_getaddrinfo(&f, get(), host, service, family, socktype, flags);
    return {f, rc, [](Future &&future, void *) {
              async_addrinfo *list = nullptr;
              check(async_addrinfo_take(&list, future.get()));
              return AddrInfo(list);
            }};
  }
  detail::op<NameInfo> getnameinfo(const struct sockaddr *addr, std::size_t addrlen, std::uint32_t flags = 0) {
    async_future *f = nullptr;
    int rc = async_getnameinfo(&f, get(), addr, addrlen, flags);
    return {f, rc, [](Future &&, void *value) {
              auto *info = static_cast<const async_nameinfo *>(value);
              return NameInfo{async_nameinfo_host(info), async_nameinfo_service(info)};
            }};
  }

  class [[nodiscard]] connect_awaiter : public detail::op<async_stream *> {
   public:
    connect_awaiter(async_future *f, int rc, Stream &&s) noexcept : op(f, rc, &take_stream), s_(std::move(s)) {}
    Stream await_resume() {
      s_.node()->set_stream(op::await_resume());
      return std::move(s_);
    }

   private:
    static async_stream *take_stream(Future &&, void *value) {
      auto *stream = static_cast<async_stream *>(value);
      check(async_stream_retain(stream));  // the future's own reference goes with the future
      return stream;
    }
    Stream s_;  // its node, the connect's protocol userdata; the stream once connected
  };
  // A TCP connection (async_tcp_connect(); options may be NULL).
  connect_awaiter tcp_connect(const char *host, std::uint16_t port, const async_connect_options *options = nullptr) {
    return connect([&](async_future **f, const async_stream_protocol *protocol, void *userdata) {
      return async_tcp_connect(f, get(), host, port, options, protocol, userdata);
    });
  }
  // A Unix socket connection (async_unix_connect()).
  connect_awaiter unix_connect(const char *path) {
    return connect([&](async_future **f, const async_stream_protocol *protocol, void *userdata) {
      return async_unix_connect(f, get(), path, protocol, userdata);
    });
  }

 private:
  template <class ConnectFn>
  connect_awaiter connect(ConnectFn connect_fn) noexcept {
    Stream s = Stream::make(get());
    async_future *f = nullptr;
    int rc = s ? connect_fn(&f, &detail::stream_node::protocol, s.node()) : ASYNC_ENOMEM;
    if (rc == 0) s.node()->handed();
    return {f, rc, std::move(s)};
  }

  detail::loop_state &state() const {
    if (!s_) throw error(ASYNC_EINVAL);
    return *s_;
  }

  void close() noexcept {
    if (!s_) return;
    detail::loop_state &s = *s_;
    try {
      shutdown();
    } catch (...) {
      // shutdown() throws only if the loop cannot run; what follows still frees what it can
    }
    while (!s.tasks.empty()) {
      auto *p = static_cast<detail::promise_base *>(s.tasks.front());
      p->self.destroy();  // its destructors cancel what it waited for
    }
    async_loop_shutdown(s.loop, nullptr);
    async_loop_run(s.loop, ASYNC_RUN_DEFAULT);  // the final notifications of all that
    int rc = async_loop_free(s.loop);
    if (rc < 0) {
      std::fprintf(stderr, "async::Loop: async_loop_free: %s: objects of the loop are still held; the loop is left\n",
                   async_err_name(rc));
      s_.release();  // the loop's userdata: kept with it
      return;
    }
    s_.reset();
  }

  std::unique_ptr<detail::loop_state> s_;
};

inline Stream Stream::adopt(Loop &loop, int fd) {
  Stream s = make(loop.get());
  if (!s) throw error(ASYNC_ENOMEM);
  async_stream *stream = nullptr;
  check(async_stream_adopt(&stream, loop.get(), fd, &detail::stream_node::protocol, s.node()));
  s.node()->handed();
  if (async_stream_retain(stream) < 0) {  // only at 2^32 - 1 references
    async_stream_abort(stream);
    throw error(ASYNC_ERANGE);
  }
  s.node()->set_stream(stream);
  return s;
}

// ---- Timer ----------------------------------------------------------------------

namespace detail {
struct timer_node final : handle_node {
  async_timer *timer = nullptr;
  std::function<void()> fn;
  using handle_node::handle_node;
  static void fired(async_timer *, void *userdata) noexcept {
    auto *n = static_cast<timer_node *>(from(userdata));
    try {
      n->fn();  // may destroy the Timer: the node lives until the close callback
    } catch (...) {
      store_current(n->loop);
    }
  }
  void on_closed() noexcept override { timer = nullptr; }
};
}  // namespace detail

// A timer calling a function (async_timer); closed when destroyed. A
// function's exception is rethrown from the Loop's run in progress.
class Timer : public detail::owner<detail::handle_node *, &detail::handle_node::close_and_unref> {
 public:
  explicit Timer(Loop &loop) {
    detail::open_state(detail::state_of(loop.get()));
    auto node = std::make_unique<detail::timer_node>(loop.get());
    check(async_timer_new(&node->timer, loop.get(), node->userdata()));
    node->opened(async_timer_handle(node->timer));
    v_ = node.release();
  }

  // fn after timeout, then every repeat (0: once). ASYNC_ECLOSED once closed.
  void start(std::chrono::milliseconds timeout, std::chrono::milliseconds repeat, std::function<void()> fn) {
    async_timer *t = get();
    if (!t) throw error(v_ ? ASYNC_ECLOSED : ASYNC_EINVAL);
    node()->fn = std::move(fn);
    check(async_timer_start(t, static_cast<std::uint64_t>(timeout.count()), static_cast<std::uint64_t>(repeat.count()),
                            &detail::timer_node::fired));
  }
  void stop() {
    async_timer *t = get();
    if (!t) throw error(v_ ? ASYNC_ECLOSED : ASYNC_EINVAL);
    check(async_timer_stop(t));
  }
  bool active() const { return get() && check(async_handle_is_active(v_->handle)) == 1; }
  // The timer; NULL once closed (by Loop::shutdown()) or moved from.
  async_timer *get() const noexcept { return v_ && !v_->closing ? node()->timer : nullptr; }

 private:
  detail::timer_node *node() const noexcept { return static_cast<detail::timer_node *>(v_); }
};

// ---- Server ---------------------------------------------------------------------

namespace detail {

struct server_node final : handle_node {
  async_server *server = nullptr;
  std::deque<Stream> ready;        // accepted, not yet taken by accept()
  std::coroutine_handle<> waiter;  // the coroutine in accept()
  using handle_node::handle_node;
  ~server_node() override = default;

  // Each connection starts on this protocol (its userdata holds a reference to the node) and switches to a
  // reader in connection_made, where the stream is first known.
  static int factory(const async_stream_protocol **out_protocol, void **out_userdata, async_server *,
                     void *userdata) noexcept {
    ++from(userdata)->refs;  // until this connection's release
    *out_protocol = &accept_protocol;
    *out_userdata = userdata;
    return 0;
  }
  static void made(async_stream *stream, void *userdata) noexcept {
    auto *n = static_cast<server_node *>(from(userdata));
    ++n->refs;  // set_protocol releases the connection's reference inside
    n->take(stream);
    n->unref();
  }
  void take(async_stream *stream) noexcept {
    Stream s = handle && !closing ? Stream::make(loop) : Stream();
    if (!s || async_stream_set_protocol(stream, &stream_node::protocol, s.node()) < 0) {
      async_stream_abort(stream);  // nobody will accept it
      return;
    }
    s.node()->handed();
    if (async_stream_retain(stream) < 0) {
      async_stream_abort(stream);
      return;
    }
    s.node()->set_stream(stream);
    try {
      ready.push_back(std::move(s));
    } catch (...) {
      return;  // s closes it
    }
    if (waiter) resume(std::exchange(waiter, nullptr), loop);
  }
  static std::size_t data(async_stream *, const std::uint8_t *, std::size_t len, void *) noexcept { return len; }
  static void lost(async_stream *, int, void *) noexcept {}
  static void release(void *userdata) noexcept { from(userdata)->unref(); }
  static constexpr async_stream_protocol accept_protocol = {
      sizeof(async_stream_protocol), &made, &data, nullptr, &lost, nullptr, nullptr, nullptr, &release, 0, nullptr,
  };

  void on_closed() noexcept override {
    server = nullptr;
    ready.clear();  // closes them
    if (waiter) resume(std::exchange(waiter, nullptr), loop);
  }
};

}  // namespace detail

// A listening server (async_server) whose connections are taken with
// co_await accept(), one coroutine at a time. Connections that arrive
// while nobody is in accept() wait (the kernel's backlog, then a queue
// here). Destroying it (or close()) stops listening and closes the
// connections not accepted yet; a coroutine in accept() then throws
// ASYNC_ECLOSED.
class Server : public detail::owner<detail::handle_node *, &detail::handle_node::close_and_unref> {
 public:
  Server() noexcept = default;

  // async_tcp_listen(): host NULL for every interface, port 0 for a free one.
  static Server listen_tcp(Loop &loop, const char *host, std::uint16_t port, int backlog = 0, std::uint32_t flags = 0) {
    return listen(loop, [&](async_server **out, void *userdata) {
      return async_tcp_listen(out, loop.get(), host, port, backlog, flags, &detail::server_node::factory, userdata);
    });
  }
  // async_unix_listen(): a path, or "@name" for an abstract socket.
  static Server listen_unix(Loop &loop, const char *path, int backlog = 0) {
    return listen(loop, [&](async_server **out, void *userdata) {
      return async_unix_listen(out, loop.get(), path, backlog, &detail::server_node::factory, userdata);
    });
  }

  std::uint16_t port() const { return static_cast<std::uint16_t>(check(async_server_port(get()))); }
  async_server *get() const noexcept { return v_ && !v_->closing ? node()->server : nullptr; }

  class [[nodiscard]] accept_awaiter {
   public:
    explicit accept_awaiter(detail::server_node *n) noexcept : n_(n) {}
    accept_awaiter(accept_awaiter &&o) noexcept : n_(o.n_), waiting_(std::exchange(o.waiting_, false)) {}
    accept_awaiter &operator=(accept_awaiter &&) = delete;
    ~accept_awaiter() {
      if (waiting_) n_->waiter = nullptr;  // the node outlives a waiter: it resumes it before it goes
    }
    bool await_ready() {
      if (!n_) throw error(ASYNC_EINVAL);
      detail::throw_if_closing(n_->loop);
      return !n_->ready.empty() || !n_->server || n_->closing;
    }
    void await_suspend(std::coroutine_handle<> h) {
      if (n_->waiter) throw error(ASYNC_ESTATE);  // one accept at a time
      n_->waiter = h;
      waiting_ = true;
    }
    Stream await_resume() {
      waiting_ = false;
      detail::throw_if_closing(n_->loop);
      if (n_->ready.empty()) throw error(ASYNC_ECLOSED);
      Stream s = std::move(n_->ready.front());
      n_->ready.pop_front();
      return s;
    }

   private:
    detail::server_node *n_;
    bool waiting_ = false;
  };
  // The next connection.
  accept_awaiter accept() noexcept { return accept_awaiter(node()); }

  // Stops listening; connections not accepted yet are closed.
  void close() noexcept { reset(); }

 private:
  template <class ListenFn>
  static Server listen(Loop &loop, ListenFn listen_fn) {
    detail::open_state(detail::state_of(loop.get()));
    auto node = std::make_unique<detail::server_node>(loop.get());
    check(listen_fn(&node->server, node->userdata()));
    node->opened(async_server_handle(node->server));
    Server s;
    s.v_ = node.release();
    return s;
  }
  detail::server_node *node() const noexcept { return static_cast<detail::server_node *>(v_); }
};

}  // namespace async

#endif
