// Tasks, futures, sleeps, timers, exceptions, cancellation, shutdown and
// moves of bindings/cpp/async.hpp, against the header's contract.
#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "check.hpp"

using namespace std::chrono_literals;
using async::Future;
using async::Loop;
using async::task;

namespace {

// A future's producer side, counting its cancel hook's calls.
struct producer {
  int cancels = 0;
  int completes = 0;
};
void on_cancel(async_future *, int cancelled, void *userdata) {
  auto *p = static_cast<producer *>(userdata);
  (cancelled ? p->cancels : p->completes)++;
}
Future make_future(Loop &loop, producer *p) {
  async_future *f = nullptr;
  async::check(async_future_new(&f, loop.get()));
  Future future(f);
  async::check(async_future_set_cancel(f, on_cancel, p));
  return future;
}
int destroyed = 0;
void destroy_value(void *, void *) { destroyed++; }

double elapsed_ms(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - since).count();
}

task<int> add(Loop &loop, int a, int b) {
  co_await loop.sleep(0ms);
  co_return a + b;
}
task<std::string> chain(Loop &loop) {
  int x = co_await add(loop, 1, 2);
  int y = co_await add(loop, x, 4);
  co_return std::to_string(y);
}
task<int> immediate() { co_return 5; }
task<void> immediate_void() { co_return; }

void test_task_result() {
  Loop loop;
  CHECK(loop.run(chain(loop)) == "7");
  CHECK(loop.run(immediate()) == 5);
  auto t = add(loop, 2, 3);
  CHECK(!t.done());
  t.start();
  CHECK_ERROR(ASYNC_ESTATE, t.result());
  CHECK_ERROR(ASYNC_ESTATE, t.start());
  loop.run();
  CHECK(t.done());
  CHECK(t.result() == 5);
}

task<int> fails(Loop &loop) {
  co_await loop.sleep(0ms);
  throw std::runtime_error("boom");
}
task<int> catches(Loop &loop) {
  try {
    co_await fails(loop);
  } catch (const std::runtime_error &e) {
    co_return std::string(e.what()) == "boom" ? 1 : 2;
  }
  co_return 0;
}

void test_task_exception() {
  Loop loop;
  CHECK(loop.run(catches(loop)) == 1);
  bool thrown = false;
  try {
    loop.run(fails(loop));
  } catch (const std::runtime_error &) {
    thrown = true;
  }
  CHECK(thrown);
  // The error type: code, name, message.
  async::error e(ASYNC_ECONNREFUSED);
  CHECK(e.value() == ASYNC_ECONNREFUSED);
  CHECK(std::string(e.name()) == "ASYNC_ECONNREFUSED");
  CHECK(std::string(e.what()) == std::string("ASYNC_ECONNREFUSED: ") + async_strerror(ASYNC_ECONNREFUSED));
  CHECK(e.code() == std::error_code(ASYNC_ECONNREFUSED, async::category()));
  CHECK_ERROR(ASYNC_EINVAL, async::check(ASYNC_EINVAL));
  CHECK(async::check(3) == 3);
}

task<int> wait_int(Future &f) {
  void *value = co_await f;
  co_return *static_cast<int *>(value);
}

void test_future() {
  Loop loop;
  producer p;
  Future fut = make_future(loop, &p);
  async::Timer timer(loop);
  static int value = 7;
  timer.start(1ms, 0ms, [&] { async::check(async_future_resolve(fut.get(), &value, destroy_value, nullptr)); });
  CHECK(loop.run(wait_int(fut)) == 7);
  CHECK(p.completes == 1 && p.cancels == 0);
  CHECK(fut.state() == ASYNC_FUTURE_DONE);
  CHECK(fut.value() == &value);
  // Awaiting a complete future does not suspend.
  CHECK(loop.run(wait_int(fut)) == 7);
  Future second = fut.share();
  fut.reset();
  CHECK(second.state() == ASYNC_FUTURE_DONE);
  destroyed = 0;
  second.reset();
  loop.run();  // the value's destroy runs from the loop
  CHECK(destroyed == 1);

  // Rejected: the code comes out of the co_await.
  producer q;
  Future rejected = make_future(loop, &q);
  timer.start(1ms, 0ms, [&] { async::check(async_future_reject(rejected.get(), ASYNC_ETIMEDOUT)); });
  CHECK_ERROR(ASYNC_ETIMEDOUT, loop.run(wait_int(rejected)));
  CHECK_ERROR(ASYNC_ETIMEDOUT, rejected.value());

  // Cancelled while awaited.
  producer r;
  Future cancelled = make_future(loop, &r);
  timer.start(1ms, 0ms, [&] { CHECK(cancelled.cancel()); });
  CHECK_ERROR(ASYNC_ECANCELED, loop.run(wait_int(cancelled)));
  CHECK(r.cancels == 1);
  CHECK(!cancelled.cancel());

  // A moved-from future.
  Future empty;
  CHECK_ERROR(ASYNC_EINVAL, loop.run(wait_int(empty)));
  CHECK_ERROR(ASYNC_EINVAL, empty.state());
  CHECK_ERROR(ASYNC_EINVAL, (void)empty.share());
}

task<void> sleeper(Loop &loop, std::chrono::milliseconds d) { co_await loop.sleep(d); }

void test_sleep() {
  Loop loop;
  auto t0 = std::chrono::steady_clock::now();
  loop.run(sleeper(loop, 30ms));
  CHECK(elapsed_ms(t0) >= 30);
  // Sleeps in parallel end by deadline.
  std::string order;
  auto tagged = [](Loop &l, std::chrono::milliseconds d, std::string &out, char tag) -> task<void> {
    co_await l.sleep(d);
    out += tag;
  };
  loop.spawn(tagged(loop, 20ms, order, 'b'));
  loop.spawn(tagged(loop, 5ms, order, 'a'));
  loop.run();
  CHECK(order == "ab");
}

// Exceptions thrown on a callback path never reach C: they come out of run().
task<void> resumed_then_throws(Future &f) {
  co_await f;
  throw std::logic_error("from a done callback");
}

void test_callback_exceptions() {
  Loop loop;
  async::Timer timer(loop);
  timer.start(1ms, 0ms, [] { throw std::logic_error("from a timer"); });
  bool thrown = false;
  try {
    loop.run();
  } catch (const std::logic_error &e) {
    thrown = std::string(e.what()) == "from a timer";
  }
  CHECK(thrown);

  producer p;
  Future fut = make_future(loop, &p);
  loop.spawn(resumed_then_throws(fut));
  timer.start(1ms, 0ms, [&] { async::check(async_future_resolve(fut.get(), nullptr, nullptr, nullptr)); });
  thrown = false;
  try {
    loop.run();
  } catch (const std::logic_error &e) {
    thrown = std::string(e.what()) == "from a done callback";
  }
  CHECK(thrown);
  loop.run();  // the exception was reported once
}

task<void> hold(Future f) { co_await f; }
task<void> parent(Loop &loop, producer *p) { co_await hold(make_future(loop, p)); }

void test_cancel_by_destroy() {
  Loop loop;
  producer p;
  {
    auto t = hold(make_future(loop, &p));
    t.start();
    CHECK(!t.done());
  }  // destroyed while suspended: its future is released, so cancelled
  CHECK(p.cancels == 1);
  loop.run();  // the done callback still runs once, into nothing

  producer nested;
  {
    auto t = parent(loop, &nested);
    t.start();
  }
  CHECK(nested.cancels == 1);
  loop.run();

  auto t0 = std::chrono::steady_clock::now();
  {
    auto t = sleeper(loop, 10s);
    t.start();
  }
  loop.run();  // the timer is closed: nothing keeps the loop
  CHECK(elapsed_ms(t0) < 5000);

  // Destroyed from a callback inside the run.
  producer q;
  std::optional<task<void>> held(hold(make_future(loop, &q)));
  held->start();
  async::Timer timer(loop);
  timer.start(1ms, 0ms, [&] { held.reset(); });
  loop.run();
  CHECK(q.cancels == 1);
}

void test_shutdown() {
  Loop loop;
  int codes[3] = {0, 0, 0};
  auto sleepy = [](Loop &l, int *out) -> task<void> {
    try {
      co_await l.sleep(1h);
    } catch (const async::error &e) {
      out[0] = e.value();
    }
    try {
      co_await l.sleep(1ms);  // awaiting after the loop began shutting down
    } catch (const async::error &e) {
      out[1] = e.value();
    }
  };
  auto waiting = [](Future f, int *out) -> task<void> {
    try {
      co_await f;
    } catch (const async::error &e) {
      out[2] = e.value();
    }
  };
  producer p;
  loop.spawn(sleepy(loop, codes));
  loop.spawn(waiting(make_future(loop, &p), codes));
  loop.shutdown();
  CHECK(codes[0] == ASYNC_ECANCELED);
  CHECK(codes[1] == ASYNC_ECANCELED);
  CHECK(codes[2] == ASYNC_ECANCELED);
  CHECK(p.cancels == 1);
  CHECK_ERROR(ASYNC_ECANCELED, loop.spawn(sleeper(loop, 1ms)));
  CHECK_ERROR(ASYNC_ECANCELED, async::Timer timer(loop));
  CHECK_ERROR(ASYNC_ECANCELED, loop.run(sleeper(loop, 1ms)));
}

void test_loop_destroyed_with_tasks() {
  producer p;
  int caught = 0;
  {
    Loop loop;
    loop.spawn(sleeper(loop, 1h));
    loop.spawn(hold(make_future(loop, &p)));
    auto catcher = [](Loop &l, int *out) -> task<void> {
      try {
        co_await l.sleep(1h);
      } catch (const async::error &) {
        ++*out;
      }
      co_await l.sleep(1h);  // throws at once: the loop is closing
    };
    loop.spawn(catcher(loop, &caught));
  }
  CHECK(p.cancels == 1);
  CHECK(caught == 1);
}

void test_moves() {
  static_assert(!std::is_copy_constructible_v<Loop> && std::is_nothrow_move_constructible_v<Loop>);
  static_assert(!std::is_copy_constructible_v<Future> && std::is_nothrow_move_constructible_v<Future>);
  static_assert(!std::is_copy_constructible_v<task<int>> && std::is_nothrow_move_constructible_v<task<int>>);
  static_assert(!std::is_copy_constructible_v<async::Timer> && std::is_nothrow_move_constructible_v<async::Timer>);
  static_assert(!std::is_copy_constructible_v<async::Stream> && std::is_nothrow_move_constructible_v<async::Stream>);
  static_assert(!std::is_copy_constructible_v<async::Server> && std::is_nothrow_move_constructible_v<async::Server>);
  static_assert(!std::is_copy_constructible_v<async::Bytes> && std::is_nothrow_move_constructible_v<async::Bytes>);
  static_assert(!std::is_copy_constructible_v<async::AddrInfo>);
  static_assert(!std::is_copy_assignable_v<Loop> && !std::is_copy_assignable_v<async::Stream>);

  Loop a;
  Loop b(std::move(a));
  CHECK(a.get() == nullptr);
  CHECK_ERROR(ASYNC_EINVAL, a.run());
  CHECK_ERROR(ASYNC_EINVAL, a.spawn(immediate_void()));
  CHECK(b.run(add(b, 1, 1)) == 2);
  Loop c;
  c = std::move(b);  // frees c's own loop first
  CHECK(c.run(add(c, 2, 2)) == 4);

  int fired = 0;
  async::Timer t1(c);
  async::Timer t2(std::move(t1));
  CHECK(t1.get() == nullptr);
  CHECK_ERROR(ASYNC_EINVAL, t1.start(1ms, 0ms, [] {}));
  t2.start(1ms, 0ms, [&] { fired++; });
  async::Timer t3(c);
  t3 = std::move(t2);  // closes t3's own timer
  c.run();
  CHECK(fired == 1);

  auto t = add(c, 3, 3);
  auto moved = std::move(t);
  CHECK_ERROR(ASYNC_EINVAL, c.run(std::move(t)));
  CHECK(c.run(std::move(moved)) == 6);
}

}  // namespace

int main() {
  const test_case tests[] = {
      {"task_result", test_task_result},
      {"task_exception", test_task_exception},
      {"future", test_future},
      {"sleep", test_sleep},
      {"callback_exceptions", test_callback_exceptions},
      {"cancel_by_destroy", test_cancel_by_destroy},
      {"shutdown", test_shutdown},
      {"loop_destroyed_with_tasks", test_loop_destroyed_with_tasks},
      {"moves", test_moves},
  };
  return run_tests(tests);
}
