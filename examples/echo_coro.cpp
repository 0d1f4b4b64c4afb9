// Echo server on C++20 coroutines (bindings/cpp/async.hpp): each connection
// is a task that reads and writes as if it blocked.
//   echo_coro [PORT]      serves 127.0.0.1:PORT (default 7000) until killed
//   echo_coro --self-test serves a free port and checks it with a client
#include <async.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

async::task<void> echo(async::Stream conn) {
  for (;;) {
    async::Bytes bytes = co_await conn.read_some();
    if (bytes.empty()) co_return;  // the client closed
    co_await conn.write(bytes);    // waits while the client does not read
  }
}

async::task<void> serve(async::Loop &loop, async::Server &server) {
  for (;;) loop.spawn(echo(co_await server.accept()));
}

async::task<void> client(async::Loop &loop, std::uint16_t port) {
  async::Stream conn = co_await loop.tcp_connect("127.0.0.1", port);
  for (int i = 0; i < 100; i++) {
    std::string sent = "hello " + std::to_string(i) + "\n";
    co_await conn.write(sent);
    async::Bytes back = co_await conn.read_line();
    if (back.str() != sent) throw std::runtime_error("echo mismatch: " + std::string(back.str()));
  }
}

int main(int argc, char **argv) {
  bool self_test = argc > 1 && std::strcmp(argv[1], "--self-test") == 0;
  async::Loop loop;
  int port = self_test ? 0 : argc > 1 ? std::atoi(argv[1]) : 7000;
  auto server = async::Server::listen_tcp(loop, "127.0.0.1", static_cast<std::uint16_t>(port));
  if (!self_test) std::printf("echo on 127.0.0.1:%u\n", server.port());
  auto serving = serve(loop, server);
  serving.start();
  if (self_test) return loop.run(client(loop, server.port())), 0;
  loop.run();
}
