// The TLS layer (async/tls.h): plaintext cut anywhere on one side comes
// out of the other side as one write would, both ways, whatever cuts the
// ciphertext in between.
//
// Input (FuzzedDataProvider): whether a rate limiter (40 kB/s: 2 kB
// buckets) sits under each side's TLS, cutting records at arbitrary
// points; whether the server's protocol delivers each; up to 16 cut points
// for each side's writes; up to 16 consume amounts (cycled) for the
// server; whether the server pauses and resumes at each delivery; how it
// ends (the client closes: close_notify, or aborts); then the bytes (at
// most 8 KiB).
// A libasync client and server over a socketpair, with a certificate made
// once at start by the openssl command (verification off: the handshake,
// not the trust, is under test here; test_tls tests the trust).
// Properties: each side gets exactly the other's bytes in order; a close
// ends both with 0 (the server sees close_notify as an end of file);
// every userdata gets one release after one connection_lost; the loop
// frees cleanly.
#include <async.h>
#include <fuzzer/FuzzedDataProvider.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "fuzz_check.h"
#include "fuzz_stream.h"

namespace {

using namespace fuzz_stream;

async_tls_context *g_client, *g_server;

// The stream TLS goes on: the socket's, or a rate limiter's above it.
async_stream *base(async_stream *socket, bool limit, Side *side) {
  if (!limit) return socket;
  async_stream_protocol p = protocol(false);
  async_stream *upper = nullptr;
  FUZZ_CHECK(async_layer_push_rate_limit(&upper, socket, 40000, 40000, &p, side) == 0);
  return upper;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  char dir[] = "/tmp/fuzz_tls.XXXXXX";
  FUZZ_CHECK(mkdtemp(dir) != nullptr);
  std::string d = dir;
  std::string cmd = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=fuzz"
                    " -keyout " + d + "/key.pem -out " + d + "/cert.pem 2>/dev/null";
  FUZZ_CHECK(std::system(cmd.c_str()) == 0);
  std::string cert = d + "/cert.pem", key = d + "/key.pem";
  async_tls_options o = ASYNC_TLS_OPTIONS_INIT;
  o.cert_file = cert.c_str();
  o.key_file = key.c_str();
  FUZZ_CHECK(async_tls_context_new(&g_server, ASYNC_TLS_SERVER, &o) == 0);  // files read now
  async_tls_options c = ASYNC_TLS_OPTIONS_INIT;
  c.flags = ASYNC_TLS_NO_VERIFY;
  FUZZ_CHECK(async_tls_context_new(&g_client, ASYNC_TLS_CLIENT, &c) == 0);
  FUZZ_CHECK(std::system(("rm -rf " + d).c_str()) == 0);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *input, size_t size) {
  FuzzedDataProvider in(input, size);
  bool limit_client = in.ConsumeIntegralInRange(0, 2) == 0;
  bool limit_server = in.ConsumeIntegralInRange(0, 2) == 0;
  bool each = in.ConsumeBool();
  auto client_cuts = cuts(in);
  auto server_cuts = cuts(in);
  Side client, server, a_plain, b_plain, a_limit, b_limit;
  server.consume.resize(in.ConsumeIntegralInRange<std::size_t>(0, 16));
  for (auto &c : server.consume) c = in.ConsumeIntegralInRange<std::size_t>(0, 4000);
  if (!each) server.consume.clear();  // a tail kept without more bytes coming would wait forever
  server.pause_each = in.ConsumeBool();
  bool abort = in.ConsumeIntegralInRange(0, 3) == 0;
  std::vector<uint8_t> bytes = in.ConsumeBytes<uint8_t>(8192);

  FUZZ_CHECK(async_loop_new(&g_loop) == 0);
  int fd[2];
  FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, fd) == 0);
  async_stream_protocol plain = protocol(false);
  async_stream *a = nullptr, *b = nullptr;
  FUZZ_CHECK(async_stream_adopt(&a, g_loop, fd[0], &plain, &a_plain) == 0);
  FUZZ_CHECK(async_stream_adopt(&b, g_loop, fd[1], &plain, &b_plain) == 0);
  async_stream_protocol client_p = protocol(false), server_p = protocol(each);
  async_stream *cs = nullptr, *ss = nullptr;
  async_future *hs = nullptr;
  FUZZ_CHECK(async_tls_push(&cs, &hs, base(a, limit_client, &a_limit), g_client, nullptr, &client_p, &client) == 0);
  FUZZ_CHECK(async_tls_push(&ss, nullptr, base(b, limit_server, &b_limit), g_server, nullptr, &server_p, &server) ==
             0);
  FUZZ_CHECK(async_stream_retain(cs) == 0);
  FUZZ_CHECK(async_stream_retain(ss) == 0);

  // Written before the handshake is done: the writes wait above TLS.
  write_cut(cs, bytes, client_cuts);
  write_cut(ss, bytes, server_cuts);
  FUZZ_CHECK(run_until([&] {
    return async_future_get_state(hs) != ASYNC_FUTURE_PENDING && server.got.size() >= bytes.size() &&
           client.got.size() >= bytes.size();
  }));
  FUZZ_CHECK(server.got == bytes);
  FUZZ_CHECK(client.got == bytes);
  void *value = nullptr;
  FUZZ_CHECK(async_future_result(&value, hs) == 0);
  if (abort) {
    FUZZ_CHECK(async_stream_abort(cs) == 0);
    FUZZ_CHECK(run_until([&] { return client.released && server.released; }));
    // No close_notify came: an end of file, or a reset where the client's
    // socket closed with bytes unread.
    FUZZ_CHECK(server.eof == 0);
    FUZZ_CHECK(server.lost_err == ASYNC_ETRUNCATED || server.lost_err == ASYNC_ECONNRESET);
  } else {
    FUZZ_CHECK(async_stream_close(cs) == 0);
    FUZZ_CHECK(run_until([&] { return client.released && server.released; }));
    FUZZ_CHECK(server.eof == 1 && server.lost_err == 0 && client.lost_err == 0);
  }
  FUZZ_CHECK(client.lost == 1 && server.lost == 1);
  FUZZ_CHECK(async_stream_release(cs) == 0);
  FUZZ_CHECK(async_stream_release(ss) == 0);
  FUZZ_CHECK(async_future_free(hs) == 0);
  FUZZ_CHECK(run_until([&] { return async_loop_run(g_loop, ASYNC_RUN_NOWAIT) == 0; }));
  FUZZ_CHECK(async_loop_free(g_loop) == 0);
  FUZZ_CHECK(a_plain.released == 1 && b_plain.released == 1);
  return 0;
}
