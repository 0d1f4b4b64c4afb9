// A program built against the installed header with
// `c++ -std=c++20 $(pkg-config --cflags --libs libasync)` (cpp_consumer).
#include <async.hpp>

#include <chrono>

async::task<int> lookup(async::Loop &loop) {
  co_await loop.sleep(std::chrono::milliseconds(1));
  async::AddrInfo local = co_await loop.getaddrinfo("127.0.0.1", "80");
  co_return local.port(0) == 80 ? 0 : 1;
}

int main() {
  async::Loop loop;
  return loop.run(lookup(loop));
}
