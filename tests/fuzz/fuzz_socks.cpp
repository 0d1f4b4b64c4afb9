// A SOCKS5 handshake and tunnel through a layer stack (async/socks.h over
// async/layer.h): the proxy's replies and the tunnel's bytes, cut
// anywhere, come out above as one write would, and the bytes written above
// reach the proxy as one write would.
//
// Input (FuzzedDataProvider): whether a rate limiter sits below SOCKS5 and
// its rates (unlimited, or 1 in 4 40 kB/s), the target (a name, an IPv4 or
// IPv6 literal), credentials or none and whether the proxy wants them, the
// reply's code (0 mostly) and address type, up to 16 cut points for the
// proxy's bytes (the loop runs between pieces), up to 16 for the bytes
// written above, how the tunnel ends (close, pop, abort), then the bytes
// (at most 4 KiB, the first part behind the reply, the rest later).
// The proxy is a plain stream on the other end of a socketpair, scripted
// here. Properties: the proxy reads exactly the greeting, the credentials
// and the request the client must send; on success the protocol above
// gets exactly the bytes after the reply, and the proxy exactly the bytes
// written above; a failed reply fails the future with its code and the
// protocol sees only its release; every userdata gets one release,
// connection_lost at most once before it; the loop frees cleanly.
#include <arpa/inet.h>
#include <async.h>
#include <fuzzer/FuzzedDataProvider.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "fuzz_check.h"

namespace {

struct Side {
  std::vector<uint8_t> got;
  int made = 0, lost = 0, released = 0;
  int lost_err = 0;
};

void made(async_stream *, void *ud) { static_cast<Side *>(ud)->made++; }

size_t data(async_stream *, const uint8_t *d, size_t n, void *ud) {
  auto *x = static_cast<Side *>(ud);
  FUZZ_CHECK(x->lost == 0 && x->released == 0);
  x->got.insert(x->got.end(), d, d + n);
  return n;
}

void lost(async_stream *, int err, void *ud) {
  auto *x = static_cast<Side *>(ud);
  FUZZ_CHECK(x->lost == 0 && x->released == 0);
  x->lost++;
  x->lost_err = err;
}

void release(void *ud) {
  auto *x = static_cast<Side *>(ud);
  FUZZ_CHECK(x->released == 0);
  x->released++;
}

const async_stream_protocol kProtocol = {sizeof kProtocol, made,    data, nullptr, lost, nullptr,
                                         nullptr,          nullptr, release, 0,    nullptr};

async_loop *g_loop;

template <class F>
bool run_until(F done) {
  for (int i = 0; i < 10000 && !done(); ++i) async_loop_run(g_loop, ASYNC_RUN_ONCE);
  return done();
}

std::vector<std::size_t> cuts(FuzzedDataProvider &in) {
  std::vector<std::size_t> v(in.ConsumeIntegralInRange<std::size_t>(0, 16));
  for (auto &c : v) c = in.ConsumeIntegralInRange<std::size_t>(1, 600);
  return v;
}

// Writes bytes to s in the pieces cut says, the loop running between them
// when pump is set, so the other end reads each apart. Stops when s has
// closed meanwhile (the client gave up on a failed reply): what arrived is
// what the properties check.
void write_cut(async_stream *s, const std::vector<uint8_t> &bytes, const std::vector<std::size_t> &cut, bool pump) {
  std::size_t at = 0;
  for (std::size_t c : cut) {
    if (at >= bytes.size()) break;
    std::size_t n = std::min(c, bytes.size() - at);
    if (async_stream_write(s, bytes.data() + at, n) != 0) return;
    at += n;
    if (pump) async_loop_run(g_loop, ASYNC_RUN_NOWAIT);
  }
  if (at < bytes.size()) (void)async_stream_write(s, bytes.data() + at, bytes.size() - at);
}

// The proxy's bytes read so far start with want: then they are dropped.
bool expect(Side &proxy, const std::vector<uint8_t> &want) {
  if (!run_until([&] { return proxy.got.size() >= want.size(); })) return false;
  FUZZ_CHECK(std::equal(want.begin(), want.end(), proxy.got.begin()));
  proxy.got.erase(proxy.got.begin(), proxy.got.begin() + static_cast<std::ptrdiff_t>(want.size()));
  return true;
}

void append(std::vector<uint8_t> &v, const std::string &s) { v.insert(v.end(), s.begin(), s.end()); }

int reply_error(uint8_t rep) {
  switch (rep) {
    case 2:
      return ASYNC_EACCES;
    case 3:
      return ASYNC_ENETUNREACH;
    case 4:
      return ASYNC_EHOSTUNREACH;
    case 5:
      return ASYNC_ECONNREFUSED;
    case 6:
      return ASYNC_ETIMEDOUT;
    case 7:
    case 8:
      return ASYNC_ENOTSUP;
    default:
      return ASYNC_EPROTO;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *input, size_t size) {
  FuzzedDataProvider in(input, size);
  bool limited = in.ConsumeBool();
  uint64_t read_rate = in.ConsumeIntegralInRange(0, 3) == 0 ? 40000 : 0;
  uint64_t write_rate = in.ConsumeIntegralInRange(0, 3) == 0 ? 40000 : 0;
  int target = in.ConsumeIntegralInRange(0, 2);
  bool credentials = in.ConsumeBool();
  bool proxy_wants_auth = credentials && in.ConsumeBool();
  uint8_t rep = in.ConsumeIntegralInRange(0, 7) == 0 ? in.ConsumeIntegral<uint8_t>() : 0;
  int bound = in.ConsumeIntegralInRange(0, 2);
  auto proxy_cuts = cuts(in);
  auto top_cuts = cuts(in);
  int ending = in.ConsumeIntegralInRange(0, 2);  // close, pop, abort
  std::vector<uint8_t> bytes = in.ConsumeBytes<uint8_t>(4096);
  std::size_t first = bytes.size() / 2;

  async_loop *loop = nullptr;
  FUZZ_CHECK(async_loop_new(&loop) == 0);
  g_loop = loop;
  int fd[2];
  FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, fd) == 0);
  Side below, middle, proxy, top, after;
  async_stream *lower = nullptr, *other = nullptr;
  FUZZ_CHECK(async_stream_adopt(&lower, loop, fd[0], &kProtocol, &below) == 0);
  FUZZ_CHECK(async_stream_adopt(&other, loop, fd[1], &kProtocol, &proxy) == 0);
  FUZZ_CHECK(async_stream_retain(other) == 0);  // written to after it may have ended
  async_stream *base = lower;
  if (limited) FUZZ_CHECK(async_layer_push_rate_limit(&base, lower, read_rate, write_rate, &kProtocol, &middle) == 0);

  static const char *const kHosts[] = {"example.test", "192.0.2.7", "2001:db8::7"};
  const char *host = kHosts[target];
  async_future *future = nullptr;
  FUZZ_CHECK(async_layer_push_socks5(&future, base, host, 8443, credentials ? "user" : nullptr,
                                     credentials ? "pass" : nullptr, &kProtocol, &top) == 0);

  // What the client must send, and the proxy's answers.
  std::vector<uint8_t> greeting = credentials ? std::vector<uint8_t>{5, 2, 0, 2} : std::vector<uint8_t>{5, 1, 0};
  std::vector<uint8_t> auth = {1, 4};
  append(auth, "user");
  auth.push_back(4);
  append(auth, "pass");
  std::vector<uint8_t> request = {5, 1, 0};
  if (target == 0) {
    request.push_back(3);
    request.push_back(static_cast<uint8_t>(std::strlen(host)));
    append(request, host);
  } else {
    uint8_t ip[16];
    int family = target == 1 ? AF_INET : AF_INET6;
    FUZZ_CHECK(inet_pton(family, host, ip) == 1);
    request.push_back(target == 1 ? 1 : 4);
    request.insert(request.end(), ip, ip + (target == 1 ? 4 : 16));
  }
  request.push_back(8443 >> 8);
  request.push_back(8443 & 0xFF);
  std::vector<uint8_t> reply = {5, rep, 0};
  if (bound == 0) {
    reply.insert(reply.end(), {1, 10, 0, 0, 1});
  } else if (bound == 1) {
    reply.insert(reply.end(), {3, 5});
    append(reply, "proxy");
  } else {
    reply.push_back(4);
    reply.insert(reply.end(), 16, 0);
  }
  reply.insert(reply.end(), {0x1F, 0x90});

  FUZZ_CHECK(expect(proxy, greeting));
  write_cut(other, {5, static_cast<uint8_t>(proxy_wants_auth ? 2 : 0)}, proxy_cuts, true);
  if (proxy_wants_auth) {
    FUZZ_CHECK(expect(proxy, auth));
    write_cut(other, {1, 0}, proxy_cuts, true);
  }
  FUZZ_CHECK(expect(proxy, request));
  // The reply and the tunnel's first bytes, one stream of bytes cut anywhere.
  std::vector<uint8_t> answer = reply;
  answer.insert(answer.end(), bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(first));
  write_cut(other, answer, proxy_cuts, true);
  FUZZ_CHECK(run_until([&] { return async_future_get_state(future) != ASYNC_FUTURE_PENDING; }));

  if (rep != 0) {
    FUZZ_CHECK(async_future_result(nullptr, future) == reply_error(rep));
    // The stream to the proxy is aborted: the proxy sees its end.
    FUZZ_CHECK(run_until([&] { return top.released && proxy.released; }));
    FUZZ_CHECK(top.made == 0 && top.lost == 0);
  } else {
    void *value = nullptr;
    FUZZ_CHECK(async_future_result(&value, future) == 0);
    auto *upper = static_cast<async_stream *>(value);
    FUZZ_CHECK(top.made == 1);
    std::vector<uint8_t> rest(bytes.begin() + static_cast<std::ptrdiff_t>(first), bytes.end());
    write_cut(other, rest, proxy_cuts, false);
    FUZZ_CHECK(run_until([&] { return top.got.size() >= bytes.size(); }));
    FUZZ_CHECK(top.got == bytes);
    write_cut(upper, bytes, top_cuts, false);
    if (ending == 0) {
      FUZZ_CHECK(async_stream_close(upper) == 0);
      FUZZ_CHECK(run_until([&] { return proxy.released && top.released; }));
      FUZZ_CHECK(top.lost_err == 0);
    } else if (ending == 1) {
      FUZZ_CHECK(async_layer_pop(upper, &kProtocol, &after) == 0);
      FUZZ_CHECK(run_until([&] { return proxy.got.size() >= bytes.size() && top.released; }));
      FUZZ_CHECK(top.lost_err == 0);
      FUZZ_CHECK(async_stream_close(other) == 0);
    } else {
      FUZZ_CHECK(run_until([&] { return proxy.got.size() >= bytes.size(); }));
      FUZZ_CHECK(async_stream_abort(upper) == 0);
    }
    FUZZ_CHECK(run_until([&] { return proxy.released && top.released; }));
    FUZZ_CHECK(proxy.got == bytes);
    FUZZ_CHECK(top.lost == 1);
  }
  FUZZ_CHECK(async_future_free(future) == 0);
  FUZZ_CHECK(async_stream_release(other) == 0);
  FUZZ_CHECK(run_until([&] { return async_loop_run(loop, ASYNC_RUN_NOWAIT) == 0; }));
  FUZZ_CHECK(async_loop_free(loop) == 0);
  FUZZ_CHECK(below.released == 1 && below.lost == 0 && top.released == 1 && proxy.released == 1);
  if (limited) FUZZ_CHECK(middle.released == 1);
  if (ending == 1 && rep == 0) FUZZ_CHECK(after.released == 1);
  return 0;
}
