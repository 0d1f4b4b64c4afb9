// Servers, connects, the reader's reads, writes with flow control, DNS and
// bad input of bindings/cpp/async.hpp, over 127.0.0.1 and an abstract Unix
// socket, each peer started here.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "check.hpp"

using namespace std::chrono_literals;
using async::Bytes;
using async::Loop;
using async::Server;
using async::Stream;
using async::task;

namespace {

// Answers each line with the line, then each "exactly 5" frame, until the end of file.
task<void> line_echo(Stream s) {
  for (;;) {
    Bytes line;
    try {
      line = co_await s.read_line();
    } catch (const async::error &e) {
      if (e.value() == ASYNC_EEOF) co_return;
      throw;
    }
    co_await s.write(line);
  }
}

task<void> serve(Loop &loop, Server &server) {
  for (;;) loop.spawn(line_echo(co_await server.accept()));
}

task<void> client_reads(Loop &loop, std::uint16_t port) {
  Stream s = co_await loop.tcp_connect("127.0.0.1", port);
  s.set_nodelay(true);
  co_await s.write("one\ntwo\r\nthree\n");
  CHECK((co_await s.read_line()).str() == "one\n");
  CHECK((co_await s.read_until("\r\n")).str() == "two\r\n");
  CHECK((co_await s.read_exactly(3)).str() == "thr");
  Bytes rest = co_await s.read_some();
  CHECK(rest.str().size() <= 3 && std::string("ee\n").starts_with(rest.str()));
  if (rest.size() < 3) CHECK((co_await s.read_exactly(3 - rest.size())).size() == 3 - rest.size());
  // A line longer than its limit.
  co_await s.write("0123456789\n");
  CHECK_ERROR(ASYNC_ENOBUFS, co_await s.read_line(4));
  CHECK((co_await s.read_line()).str() == "0123456789\n");
  // One read at a time.
  auto first = s.read_some();
  auto second = s.read_some();
  CHECK_ERROR(ASYNC_ESTATE, co_await second);
  co_await s.write("x\n");
  CHECK((co_await first).str().starts_with("x"));
  // Our end of file: the server's task ends and closes; reads then end.
  s.write_eof();
  Bytes end = co_await s.read_some();
  if (end.size() == 1) end = co_await s.read_some();  // the rest of "x\n"
  CHECK(end.empty());
  CHECK_ERROR(ASYNC_EEOF, co_await s.read_exactly(1));
}

void test_reads() {
  Loop loop;
  Server server = Server::listen_tcp(loop, "127.0.0.1", 0);
  CHECK(server.port() > 0);
  auto serving = serve(loop, server);
  serving.start();
  loop.run(client_reads(loop, server.port()));
}

// Writes 8 MiB to a peer that reads only after 100 ms: write() must wait.
constexpr std::size_t kTotal = 8 << 20;
constexpr std::size_t kChunk = 256 << 10;

task<void> pump(Server &server, std::size_t *max_buffered) {
  Stream s = co_await server.accept();
  std::vector<std::uint8_t> chunk(kChunk);
  for (std::size_t sent = 0; sent < kTotal; sent += kChunk) {
    for (std::size_t i = 0; i < kChunk; i++) chunk[i] = static_cast<std::uint8_t>((sent + i) % 251);
    co_await s.write(std::span<const std::uint8_t>(chunk));
    std::size_t buffered = 0;
    async::check(async_stream_write_buffer_size(&buffered, s.get()));
    *max_buffered = std::max(*max_buffered, buffered);
  }
}

task<void> slow_reader(Loop &loop, std::uint16_t port) {
  Stream s = co_await loop.tcp_connect("localhost", port);
  co_await loop.sleep(100ms);
  for (std::size_t got = 0; got < kTotal;) {
    Bytes b = co_await s.read_exactly(64 << 10);
    for (std::size_t i = 0; i < b.size(); i++) CHECK(b.data()[i] == (got + i) % 251);
    got += b.size();
  }
  CHECK((co_await s.read_some()).empty());  // the server's stream closed when its task ended
}

void test_flow_control() {
  Loop loop;
  Server server = Server::listen_tcp(loop, "127.0.0.1", 0);
  std::size_t max_buffered = 0;
  auto writer = pump(server, &max_buffered);
  writer.start();
  loop.run(slow_reader(loop, server.port()));
  loop.run(std::move(writer));
  // Each write that would pass the high-water mark (64 KiB) waits until its bytes are out.
  CHECK(max_buffered <= 64 << 10);
}

task<void> unix_client(Loop &loop, const char *path) {
  Stream s = co_await loop.unix_connect(path);
  co_await s.write("over unix\n");
  CHECK((co_await s.read_line()).str() == "over unix\n");
}

void test_unix() {
  Loop loop;
  std::string path = "@async-cpp-test-" + std::to_string(getpid());
  Server server = Server::listen_unix(loop, path.c_str());
  auto serving = serve(loop, server);
  serving.start();
  loop.run(unix_client(loop, path.c_str()));
  CHECK_ERROR(ASYNC_ECONNREFUSED, loop.run(unix_client(loop, "@async-cpp-test-nobody-listens")));
}

task<void> lookups(Loop &loop) {
  async::AddrInfo local = co_await loop.getaddrinfo("localhost", "80", 0, 0, ASYNC_DNS_NUMERICSERV);
  CHECK(local.size() >= 1);
  bool loopback = false;
  for (std::size_t i = 0; i < local.size(); i++) {
    loopback = loopback || local.host(i) == "127.0.0.1" || local.host(i) == "::1";
    CHECK(local.port(i) == 80);
  }
  CHECK(loopback);
  async::AddrInfo v6 = co_await loop.getaddrinfo("::1", nullptr);
  CHECK(v6.host(0) == "::1");
  CHECK_ERROR(ASYNC_ERANGE, v6.host(v6.size()));
  auto [addr, len] = v6.addr(0);
  async::NameInfo info = co_await loop.getnameinfo(addr, len, ASYNC_NI_NUMERICHOST | ASYNC_NI_NUMERICSERV);
  CHECK(info.host == "::1");
  CHECK(info.service == "0");
  // Bad input: thrown at the co_await.
  CHECK_ERROR(ASYNC_EINVAL, co_await loop.getaddrinfo(nullptr, nullptr));
  CHECK_ERROR(ASYNC_EBADNAME, co_await loop.getaddrinfo("a..b", "80"));
}

void test_dns() {
  Loop loop;
  loop.run(lookups(loop));
}

task<void> refused(Loop &loop, std::uint16_t port) { Stream s = co_await loop.tcp_connect("127.0.0.1", port); }
task<void> connect_host(Loop &loop, const char *host) { Stream s = co_await loop.tcp_connect(host, 80); }

task<void> bad_input(Loop &loop, Server &server) {
  Stream s = co_await loop.tcp_connect("127.0.0.1", server.port());
  Stream peer = co_await server.accept();
  // A moved-from stream.
  Stream moved = std::move(s);
  CHECK(!s);
  CHECK_ERROR(ASYNC_EINVAL, co_await s.read_some());
  CHECK_ERROR(ASYNC_EINVAL, co_await s.write("x"));
  CHECK_ERROR(ASYNC_EINVAL, s.close());
  // A closed stream: writes and reads throw, nothing hangs.
  moved.close();
  CHECK_ERROR(ASYNC_ECLOSED, co_await moved.write("x"));
  CHECK((co_await peer.read_some()).empty());  // the peer sees the end of file
  // Reads of our closed stream end as at an end of file.
  CHECK((co_await moved.read_some()).empty());
  CHECK_ERROR(ASYNC_EEOF, co_await moved.read_exactly(1));
  CHECK_ERROR(ASYNC_ECLOSED, co_await moved.write("x"));
  // A stream whose connection ended (aborted by the peer).
  peer.abort();
  co_await loop.sleep(10ms);
  CHECK_ERROR(ASYNC_ECLOSED, co_await peer.write("x"));
}

void test_bad_input() {
  Loop loop;
  Server server = Server::listen_tcp(loop, "127.0.0.1", 0);
  loop.run(bad_input(loop, server));
  // A refused connect: the code and its name.
  std::uint16_t port = server.port();
  server.close();
  CHECK(server.get() == nullptr);
  CHECK_ERROR(ASYNC_EINVAL, (void)server.port());
  CHECK_ERROR(ASYNC_ECONNREFUSED, loop.run(refused(loop, port)));
  CHECK_ERROR(ASYNC_EINVAL, loop.run(connect_host(loop, "")));  // an empty host: thrown at the co_await
  CHECK_ERROR(ASYNC_EADDRINUSE, Server::listen_tcp(loop, "127.0.0.1", Server::listen_tcp(loop, "127.0.0.1", 0).port()));
}

task<void> accept_one(Server &server) { Stream s = co_await server.accept(); }
task<void> read_one(Stream &s) { Bytes b = co_await s.read_some(); }

task<void> cancels(Loop &loop, Server &server) {
  // A task in accept() destroyed: the next accept works.
  {
    auto t = accept_one(server);
    t.start();
    auto again = accept_one(server);
    CHECK_ERROR(ASYNC_ESTATE, co_await again);  // one accept at a time
  }
  Stream c = co_await loop.tcp_connect("127.0.0.1", server.port());
  Stream s = co_await server.accept();
  // A task in a read destroyed: its read is cancelled, the next one works.
  {
    auto t = read_one(s);
    t.start();
  }
  co_await c.write("after\n");
  CHECK((co_await s.read_line()).str() == "after\n");
  // A task in a waiting write destroyed: its bytes still go.
  std::string big(1 << 20, 'z');
  {
    auto writer = [](Stream &out, const std::string &bytes) -> task<void> { co_await out.write(bytes); };
    auto t = writer(s, big);
    t.start();
    CHECK(!t.done());
  }
  CHECK((co_await c.read_exactly(big.size())).str() == big);
  // A server closed under a coroutine in accept().
  auto waiting = accept_one(server);
  waiting.start();
  server.close();
  co_await loop.sleep(1ms);
  CHECK(waiting.done());
  CHECK_ERROR(ASYNC_ECLOSED, waiting.result());
}

void test_cancel() {
  Loop loop;
  Server server = Server::listen_tcp(loop, "127.0.0.1", 0);
  loop.run(cancels(loop, server));
}

void test_shutdown_with_connections() {
  Loop loop;
  Server server = Server::listen_tcp(loop, "127.0.0.1", 0);
  auto serving = serve(loop, server);
  serving.start();
  int codes[2] = {0, 0};
  auto client = [](Loop &l, std::uint16_t port, int *out) -> task<void> {
    Stream s = co_await l.tcp_connect("127.0.0.1", port);
    try {
      co_await s.read_line();
    } catch (const async::error &e) {
      out[0] = e.value();
    }
    try {
      co_await s.read_line();
    } catch (const async::error &e) {
      out[1] = e.value();
    }
  };
  auto c = client(loop, server.port(), codes);
  c.start();
  async::Timer timer(loop);
  timer.start(20ms, 0ms, [&] { loop.stop(); });
  loop.run();
  loop.shutdown();
  CHECK(c.done());
  CHECK(codes[0] == ASYNC_ECANCELED);
  CHECK(codes[1] == ASYNC_ECANCELED);
  CHECK_ERROR(ASYNC_ECANCELED, (void)Server::listen_tcp(loop, "127.0.0.1", 0));
}

// Reads complete from the stream's own delivery and resume their coroutine
// there: no future and no ready-queue task per read, so round trips run
// no loop callbacks (ASYNC_METRIC_CALLBACKS counts every ready-queue task).
task<void> round_trips(Loop &loop, Server &server, std::uint64_t *callbacks) {
  Stream c = co_await loop.tcp_connect("127.0.0.1", server.port());
  Stream s = co_await server.accept();
  std::uint64_t before = 0, after = 0;
  async::check(async_loop_metric(&before, loop.get(), ASYNC_METRIC_CALLBACKS));
  for (int i = 0; i < 200; i++) {
    co_await c.write("ping");
    Bytes got = co_await s.read_exactly(4);
    co_await s.write(got);
    CHECK((co_await c.read_some()).str() == "ping");
  }
  async::check(async_loop_metric(&after, loop.get(), ASYNC_METRIC_CALLBACKS));
  *callbacks = after - before;
}

void test_reads_without_loop_callbacks() {
  Loop loop;
  Server server = Server::listen_tcp(loop, "127.0.0.1", 0);
  std::uint64_t callbacks = 0;
  loop.run(round_trips(loop, server, &callbacks));
  CHECK(callbacks < 20);  // 400 reads
}

// A read's Bytes borrow the bytes where they arrived; each keeps them,
// moved or not, while the stream reads on, buffers more, and after the
// Stream is gone.
task<void> kept_bytes(Loop &loop, Server &server) {
  Stream c = co_await loop.tcp_connect("127.0.0.1", server.port());
  Stream s = co_await server.accept();
  co_await c.write("one\ntwo\n");
  Bytes one = co_await s.read_line();
  Bytes two = co_await s.read_line();
  Bytes moved = std::move(one);
  CHECK(one.empty());
  // A read made before it is awaited completes meanwhile, and keeps its bytes too.
  auto early = s.read_some();
  co_await c.write("early");
  co_await loop.sleep(20ms);
  Bytes e = co_await early;
  CHECK(e.str() == "early");
  // Many deliveries, a buffer that grows (and moves) under the earlier Bytes.
  std::string big(200000, 'x');
  for (std::size_t i = 0; i < big.size(); i++) big[i] = static_cast<char>('a' + i % 26);
  co_await c.write(big);
  Bytes first = co_await s.read_exactly(10);
  co_await loop.sleep(20ms);
  CHECK((co_await s.read_exactly(big.size() - 10)).str() == std::string_view(big).substr(10));
  CHECK(first.str() == std::string_view(big).substr(0, 10));
  CHECK(moved.str() == "one\n");
  CHECK(two.str() == "two\n");
  CHECK(e.str() == "early");
  // Bytes outlive their Stream.
  co_await c.write("last");
  Bytes last = co_await s.read_exactly(4);
  s = Stream();
  CHECK(last.str() == "last");
  CHECK((co_await c.read_some()).empty());  // s closed
}

void test_kept_bytes() {
  Loop loop;
  Server server = Server::listen_tcp(loop, "127.0.0.1", 0);
  loop.run(kept_bytes(loop, server));
}

// A Stream destroyed while another coroutine is in its read: that read
// throws ASYNC_ECANCELED, resumed from the loop, never inside the
// destructor.
task<void> dropped_under_read(Loop &loop, Server &server) {
  Stream c = co_await loop.tcp_connect("127.0.0.1", server.port());
  Stream s = co_await server.accept();
  int code = 0;
  auto reader = [](Stream &in, int *out) -> task<void> {
    try {
      co_await in.read_some();
    } catch (const async::error &e) {
      *out = e.value();
    }
  };
  auto t = reader(s, &code);
  t.start();
  s = Stream();
  CHECK(code == 0);
  co_await loop.sleep(1ms);
  CHECK(t.done());
  CHECK(code == ASYNC_ECANCELED);
  // Bad reads, thrown at the co_await.
  Stream c2 = co_await loop.tcp_connect("127.0.0.1", server.port());
  Stream s2 = co_await server.accept();
  CHECK_ERROR(ASYNC_EINVAL, co_await s2.read_exactly(0));
  CHECK_ERROR(ASYNC_EINVAL, co_await s2.read_some(0));
  CHECK_ERROR(ASYNC_EINVAL, co_await s2.read_until(""));
  CHECK_ERROR(ASYNC_EINVAL, co_await s2.read_until("0123456789abcdefg"));
  co_await c2.write("0123456789abcdef|");
  CHECK((co_await s2.read_until("0123456789abcdef")).size() == 16);  // 16 bytes: the longest delimiter
  CHECK((co_await s2.read_some()).str() == "|");
}

void test_dropped_under_read() {
  Loop loop;
  Server server = Server::listen_tcp(loop, "127.0.0.1", 0);
  loop.run(dropped_under_read(loop, server));
}

}  // namespace

int main() {
  const test_case tests[] = {
      {"reads", test_reads},
      {"flow_control", test_flow_control},
      {"unix", test_unix},
      {"dns", test_dns},
      {"bad_input", test_bad_input},
      {"cancel", test_cancel},
      {"shutdown_with_connections", test_shutdown_with_connections},
      {"reads_without_loop_callbacks", test_reads_without_loop_callbacks},
      {"kept_bytes", test_kept_bytes},
      {"dropped_under_read", test_dropped_under_read},
  };
  return run_tests(tests);
}
