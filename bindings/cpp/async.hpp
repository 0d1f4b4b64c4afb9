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
// Ownership: Loop, task, Future, Bytes, Stream, Server, Timer and AddrInfo
// own their C object, move but never copy, and release it in their
// destructor (a Stream is closed, a Server or Timer closed, a Future
// released: dropping the last reference of a pending future cancels it).
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

// One reference to an async_future. co_await gives its value (the void *
// the producer resolved it with, owned by the future) or throws its error
// (ASYNC_ECANCELED when cancelled).
class Future {
 public:
  Future() noexcept = default;
  // Adopts the caller's reference.
  explicit Future(async_future *future) noexcept : f_(future) {}
  Future(Future &&o) noexcept : f_(std::exchange(o.f_, nullptr)) {}
  Future &operator=(Future &&o) noexcept {
    if (this != &o) {
      reset();
      f_ = std::exchange(o.f_, nullptr);
    }
    return *this;
  }
  Future(const Future &) = delete;
  Future &operator=(const Future &) = delete;
  // Drops the reference: the last one of a pending future cancels it.
  ~Future() { reset(); }

  // A new reference to the same future (async_future_retain()).
  Future share() const {
    check(async_future_retain(f_));
    return Future(f_);
  }
  void reset() noexcept {
    if (f_) async_future_release(std::exchange(f_, nullptr));
  }
  async_future *get() const noexcept { return f_; }
  async_future *release() noexcept { return std::exchange(f_, nullptr); }
  explicit operator bool() const noexcept { return f_ != nullptr; }

  // True if it was pending (and is cancelled now).
  bool cancel() { return check(async_future_cancel(f_)) == 1; }
  // An enum async_future_state.
  int state() const { return check(async_future_get_state(f_)); }
  // The value of a DONE future; throws the error of a FAILED or CANCELLED
  // one, ASYNC_ESTATE while pending.
  void *value() const {
    void *v = nullptr;
    check(async_future_result(&v, f_));
    return v;
  }

  class awaiter : public detail::future_awaiter_base {
   public:
    using future_awaiter_base::future_awaiter_base;
    void *await_resume() { return finish(); }
  };
  // The future stays this object's: keep it alive until the await ends.
  awaiter operator co_await() &noexcept { return awaiter(f_, 0); }

 private:
  async_future *f_ = nullptr;
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

// A coroutine returning T, started when awaited (co_await), run
// (Loop::run) or spawned (Loop::spawn). Destroying it destroys the
// coroutine, cancelling what it waits for.
template <class T>
class [[nodiscard]] task {
 public:
  using promise_type = detail::task_promise<T>;
  using handle_type = std::coroutine_handle<promise_type>;

  task() noexcept = default;
  explicit task(handle_type h) noexcept : h_(h) {}
  task(task &&o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
  task &operator=(task &&o) noexcept {
    if (this != &o) {
      if (h_) h_.destroy();
      h_ = std::exchange(o.h_, nullptr);
    }
    return *this;
  }
  task(const task &) = delete;
  task &operator=(const task &) = delete;
  ~task() {
    if (h_) h_.destroy();
  }

  // Starts it now, without giving it away: it runs until its first
  // suspension and goes on from the loop. Read its outcome with co_await
  // or result() once done(); destroying it before cancels it.
  void start() {
    if (!h_) throw error(ASYNC_EINVAL);
    if (h_.promise().started) throw error(ASYNC_ESTATE);
    h_.promise().started = true;
    h_.resume();  // the coroutine's exceptions stay in its promise
  }
  bool done() const noexcept { return !h_ || h_.done(); }
  // The result of a finished task, or its exception; ASYNC_ESTATE before.
  T result() {
    if (!h_) throw error(ASYNC_EINVAL);
    if (!h_.done()) throw error(ASYNC_ESTATE);
    return h_.promise().take();
  }
  handle_type release() noexcept { return std::exchange(h_, nullptr); }

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
  awaiter operator co_await() const noexcept { return awaiter{h_}; }

 private:
  friend class Loop;
  handle_type h_;
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

// The bytes of a read (an async_bytes owned by the read's future).
class Bytes {
 public:
  Bytes() noexcept = default;
  Bytes(Future &&future, void *value) noexcept : f_(std::move(future)), b_(static_cast<const async_bytes *>(value)) {}
  const std::uint8_t *data() const noexcept { return async_bytes_data(b_); }
  std::size_t size() const noexcept { return async_bytes_size(b_); }
  bool empty() const noexcept { return size() == 0; }
  std::span<const std::uint8_t> span() const noexcept { return {data(), size()}; }
  std::string_view str() const noexcept { return {reinterpret_cast<const char *>(data()), size()}; }

 private:
  Future f_;
  const async_bytes *b_ = nullptr;
};

// A getaddrinfo result (async_addrinfo, taken from its future).
class AddrInfo {
 public:
  AddrInfo() noexcept = default;
  explicit AddrInfo(async_addrinfo *list) noexcept : l_(list) {}
  AddrInfo(AddrInfo &&o) noexcept : l_(std::exchange(o.l_, nullptr)) {}
  AddrInfo &operator=(AddrInfo &&o) noexcept {
    if (this != &o) async_addrinfo_free(std::exchange(l_, std::exchange(o.l_, nullptr)));
    return *this;
  }
  AddrInfo(const AddrInfo &) = delete;
  AddrInfo &operator=(const AddrInfo &) = delete;
  ~AddrInfo() { async_addrinfo_free(l_); }

  std::size_t size() const { return static_cast<std::size_t>(check(async_addrinfo_count(l_))); }
  int family(std::size_t i) const { return check(async_addrinfo_family(l_, i)); }
  int socktype(std::size_t i) const { return check(async_addrinfo_socktype(l_, i)); }
  int protocol(std::size_t i) const { return check(async_addrinfo_protocol(l_, i)); }
  // The address of entry i and its length (borrowed from this list).
  std::pair<const struct sockaddr *, std::size_t> addr(std::size_t i) const {
    const struct sockaddr *a = nullptr;
    int len = check(async_addrinfo_addr(&a, l_, i));
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
// read through an async_reader: read_exactly, read_until, read_line,
// read_some give Bytes; write() sends, and waits while the write buffer is
// above its high-water mark. Destroying it closes the stream (queued bytes
// are still sent) and frees the reader.
class Stream {
 public:
  Stream() noexcept = default;
  // Adopts a stream reference and the reader that is its protocol's userdata.
  Stream(async_stream *stream, async_reader *reader) noexcept : s_(stream), r_(reader) {}
  Stream(Stream &&o) noexcept : s_(std::exchange(o.s_, nullptr)), r_(std::exchange(o.r_, nullptr)) {}
  Stream &operator=(Stream &&o) noexcept {
    if (this != &o) {
      reset();
      s_ = std::exchange(o.s_, nullptr);
      r_ = std::exchange(o.r_, nullptr);
    }
    return *this;
  }
  Stream(const Stream &) = delete;
  Stream &operator=(const Stream &) = delete;
  ~Stream() { reset(); }

  // A stream of fd (a connected socket, a pipe): async_stream_adopt().
  static Stream adopt(Loop &loop, int fd);

  using read = detail::op<Bytes>;
  // Exactly n bytes; ASYNC_EEOF if the stream ends first.
  read read_exactly(std::size_t n) { return start(async_reader_read_exactly(&out_, r_, n)); }
  // Up to and including delim; limit 0: the reader's (64 KiB). ASYNC_ENOBUFS past it.
  read read_until(std::string_view delim, std::size_t limit = 0) {
    return start(async_reader_read_until(&out_, r_, delim.data(), delim.size(), limit));
  }
  read read_line(std::size_t limit = 0) { return start(async_reader_read_line(&out_, r_, limit)); }
  // What has arrived, 1 to max bytes; empty at the end of file.
  read read_some(std::size_t max = 65536) { return start(async_reader_read_some(&out_, r_, max)); }

  class [[nodiscard]] write_awaiter {
   public:
    write_awaiter(async_stream *s, const void *data, std::size_t len) noexcept : s_(s), data_(data), len_(len) {}
    write_awaiter(write_awaiter &&o) noexcept
        : s_(o.s_), data_(o.data_), len_(o.len_), rc_(o.rc_), wait_(std::exchange(o.wait_, nullptr)) {}
    write_awaiter &operator=(write_awaiter &&) = delete;
    ~write_awaiter() {
      if (wait_) wait_->h = nullptr;  // the bytes still go; done frees the copy
    }
    bool await_ready() {
      detail::throw_if_closing(async_stream_loop(s_));
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
    async_stream *s_;
    const void *data_;
    std::size_t len_;
    int rc_ = 0;
    detail::write_wait *wait_ = nullptr;
  };
  write_awaiter write(const void *data, std::size_t len) noexcept { return {s_, data, len}; }
  write_awaiter write(std::string_view text) noexcept { return {s_, text.data(), text.size()}; }
  write_awaiter write(std::span<const std::uint8_t> bytes) noexcept { return {s_, bytes.data(), bytes.size()}; }
  write_awaiter write(const Bytes &bytes) noexcept { return {s_, bytes.data(), bytes.size()}; }

  // Flush, then close (async_stream_close()).
  void close() { check(async_stream_close(s_)); }
  // Drop the write buffer and close (async_stream_abort()).
  void abort() { check(async_stream_abort(s_)); }
  // Shut the write side once flushed (async_stream_write_eof()).
  void write_eof() { check(async_stream_write_eof(s_)); }
  void set_nodelay(bool on) { check(async_stream_set_nodelay(s_, on ? 1 : 0)); }
  void set_write_limits(std::size_t high, std::size_t low) { check(async_stream_set_write_limits(s_, high, low)); }
  int fd() const { return check(async_stream_fd(s_)); }
  async_stream *get() const noexcept { return s_; }
  async_reader *reader() const noexcept { return r_; }
  explicit operator bool() const noexcept { return s_ != nullptr; }

  void reset() noexcept {
    if (s_) {
      async_stream_close(s_);  // ASYNC_ECLOSED once ended: nothing to do
      async_stream_release(std::exchange(s_, nullptr));
    }
    if (r_) async_reader_free(std::exchange(r_, nullptr));
  }

 private:
  read start(int rc) { return read(std::exchange(out_, nullptr), rc, &make_bytes); }
  static Bytes make_bytes(Future &&f, void *value) { return Bytes(std::move(f), value); }

  async_stream *s_ = nullptr;
  async_reader *r_ = nullptr;
  async_future *out_ = nullptr;  // a read's future, between the C call and its awaiter
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
    if (!t.h_) throw error(ASYNC_EINVAL);
    auto &p = t.h_.promise();
    if (p.continuation) throw error(ASYNC_ESTATE);  // another coroutine awaits it
    if (!p.started) {
      p.started = true;
      detail::resume(t.h_, s.loop);
    }
    if (!t.h_.done()) {
      p.stop_loop = s.loop;  // set only now: it completes inside a run, never before it
      while (!t.h_.done()) {
        int rc = check(async_loop_run(s.loop, ASYNC_RUN_DEFAULT));
        s.rethrow();
        if (rc == 0 && !t.h_.done()) throw error(ASYNC_ESTATE);
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
    if (!t.h_) throw error(ASYNC_EINVAL);
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
    connect_awaiter(async_future *f, int rc, async_reader *reader) noexcept
        : op(f, rc, &take_stream), reader_(reader) {}
    connect_awaiter(connect_awaiter &&o) noexcept : op(std::move(o)), reader_(std::exchange(o.reader_, nullptr)) {}
    connect_awaiter &operator=(connect_awaiter &&) = delete;
    ~connect_awaiter() {
      if (reader_) async_reader_free(reader_);
    }
    Stream await_resume() {
      async_stream *stream = op::await_resume();
      return Stream(stream, std::exchange(reader_, nullptr));
    }

   private:
    static async_stream *take_stream(Future &&, void *value) {
      auto *stream = static_cast<async_stream *>(value);
      check(async_stream_retain(stream));  // the future's own reference goes with the future
      return stream;
    }
    async_reader *reader_;
  };
  // A TCP connection (async_tcp_connect(); options may be NULL).
  connect_awaiter tcp_connect(const char *host, std::uint16_t port, const async_connect_options *options = nullptr) {
    async_reader *reader = new_reader();
    async_future *f = nullptr;
    int rc = reader ? async_tcp_connect(&f, get(), host, port, options, async_reader_protocol(), reader) : ASYNC_ENOMEM;
    return {f, rc, reader};
  }
  // A Unix socket connection (async_unix_connect()).
  connect_awaiter unix_connect(const char *path) {
    async_reader *reader = new_reader();
    async_future *f = nullptr;
    int rc = reader ? async_unix_connect(&f, get(), path, async_reader_protocol(), reader) : ASYNC_ENOMEM;
    return {f, rc, reader};
  }

  // A reader for a new stream of this loop; NULL (ASYNC_ENOMEM for the caller) without one.
  async_reader *new_reader() const noexcept {
    async_reader *reader = nullptr;
    return async_reader_new(&reader, get(), 0) < 0 ? nullptr : reader;
  }

 private:
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
  async_reader *reader = loop.new_reader();
  if (!reader) throw error(ASYNC_ENOMEM);
  async_stream *stream = nullptr;
  int rc = async_stream_adopt(&stream, loop.get(), fd, async_reader_protocol(), reader);
  if (rc < 0) {
    async_reader_free(reader);
    throw error(rc);
  }
  if (async_stream_retain(stream) < 0) {  // only at 2^32 - 1 references
    async_stream_abort(stream);
    async_reader_free(reader);
    throw error(ASYNC_ERANGE);
  }
  return Stream(stream, reader);
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
class Timer {
 public:
  explicit Timer(Loop &loop) {
    detail::open_state(detail::state_of(loop.get()));
    auto node = std::make_unique<detail::timer_node>(loop.get());
    check(async_timer_new(&node->timer, loop.get(), node->userdata()));
    node->opened(async_timer_handle(node->timer));
    n_ = node.release();
  }
  Timer(Timer &&o) noexcept : n_(std::exchange(o.n_, nullptr)) {}
  Timer &operator=(Timer &&o) noexcept {
    if (this != &o) {
      reset();
      n_ = std::exchange(o.n_, nullptr);
    }
    return *this;
  }
  Timer(const Timer &) = delete;
  Timer &operator=(const Timer &) = delete;
  ~Timer() { reset(); }

  // fn after timeout, then every repeat (0: once). ASYNC_ECLOSED once closed.
  void start(std::chrono::milliseconds timeout, std::chrono::milliseconds repeat, std::function<void()> fn) {
    async_timer *t = get();
    if (!t) throw error(n_ ? ASYNC_ECLOSED : ASYNC_EINVAL);
    n_->fn = std::move(fn);
    check(async_timer_start(t, static_cast<std::uint64_t>(timeout.count()), static_cast<std::uint64_t>(repeat.count()),
                            &detail::timer_node::fired));
  }
  void stop() {
    async_timer *t = get();
    if (!t) throw error(n_ ? ASYNC_ECLOSED : ASYNC_EINVAL);
    check(async_timer_stop(t));
  }
  bool active() const { return get() && check(async_handle_is_active(n_->handle)) == 1; }
  // The timer; NULL once closed (by Loop::shutdown()) or moved from.
  async_timer *get() const noexcept { return n_ && !n_->closing ? n_->timer : nullptr; }

  void reset() noexcept {
    if (!n_) return;
    n_->close();
    std::exchange(n_, nullptr)->unref();
  }

 private:
  detail::timer_node *n_ = nullptr;
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
    async_reader *reader = nullptr;
    if (!handle || closing || async_reader_new(&reader, loop, 0) < 0) {
      async_stream_abort(stream);  // nobody will accept it
      return;
    }
    if (async_stream_set_protocol(stream, async_reader_protocol(), reader) < 0 || async_stream_retain(stream) < 0) {
      async_reader_free(reader);
      async_stream_abort(stream);
      return;
    }
    try {
      ready.emplace_back(stream, reader);
    } catch (...) {
      Stream dropped(stream, reader);
      return;
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
class Server {
 public:
  Server() noexcept = default;
  Server(Server &&o) noexcept : n_(std::exchange(o.n_, nullptr)) {}
  Server &operator=(Server &&o) noexcept {
    if (this != &o) {
      close();
      n_ = std::exchange(o.n_, nullptr);
    }
    return *this;
  }
  Server(const Server &) = delete;
  Server &operator=(const Server &) = delete;
  ~Server() { close(); }

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
  async_server *get() const noexcept { return n_ && !n_->closing ? n_->server : nullptr; }

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
  accept_awaiter accept() noexcept { return accept_awaiter(n_); }

  // Stops listening; connections not accepted yet are closed.
  void close() noexcept {
    if (!n_) return;
    n_->close();
    std::exchange(n_, nullptr)->unref();
  }

 private:
  template <class ListenFn>
  static Server listen(Loop &loop, ListenFn listen_fn) {
    detail::open_state(detail::state_of(loop.get()));
    auto node = std::make_unique<detail::server_node>(loop.get());
    check(listen_fn(&node->server, node->userdata()));
    node->opened(async_server_handle(node->server));
    Server s;
    s.n_ = node.release();
    return s;
  }
  detail::server_node *n_ = nullptr;
};

}  // namespace async

#endif
