/*
 * Echo server on libasync's C++20 coroutines (bindings/cpp/async.hpp): a
 * task per connection reads what has arrived (read_some, at most
 * ECHO_READ_BUFFER bytes) and writes it back; a write that would pass the
 * high-water mark (ECHO_HIGH_WATER) waits until its bytes are out, and the
 * task reads nothing meanwhile. Policy and output: echo_policy.h; the same
 * load as bench/echo_async.c (bench/run_echo.sh).
 *
 * usage: echo_coro PORT
 */
#include <signal.h>
#include <async.hpp>

#include "echo_policy.h"

static async::task<void> echo(async::Stream conn) {
  conn.set_write_limits(ECHO_HIGH_WATER, ECHO_LOW_WATER);
  for (;;) {
    async::Bytes bytes = co_await conn.read_some(ECHO_READ_BUFFER);
    if (bytes.empty()) co_return;  // end of file: the Stream closes once its bytes are out
    co_await conn.write(bytes);
  }
}

// A connection's error ends its task (and closes it), never the server.
static async::task<void> echo_guarded(async::Stream conn) {
  try {
    co_await echo(std::move(conn));
  } catch (const async::error &) {
  }
}

static async::task<void> serve(async::Loop &loop, async::Server &server) {
  for (;;) loop.spawn(echo_guarded(co_await server.accept()));
}

static void on_signal(async_signal *, int, void *loop) { async_loop_stop(static_cast<async_loop *>(loop)); }

int main(int argc, char **argv) {
  int port = echo_port(argc, argv);
  async::Loop loop;
  auto server = async::Server::listen_tcp(loop, "127.0.0.1", static_cast<uint16_t>(port), ECHO_BACKLOG);
  async_signal *term, *intr;
  BENCH_CHECK(async_signal_new(&term, loop.get(), loop.get()));
  BENCH_CHECK(async_signal_new(&intr, loop.get(), loop.get()));
  BENCH_CHECK(async_signal_start(term, SIGTERM, on_signal));
  BENCH_CHECK(async_signal_start(intr, SIGINT, on_signal));
  auto serving = serve(loop, server);
  serving.start();
  echo_ready();
  loop.run();
  echo_report();
  return 0;
}
