// A stack of stream layers (async/layer.h): the same bytes, cut anywhere,
// come out the other end as one write would.
//
// Input (FuzzedDataProvider): the stack's depth (1-3) and each limiter's
// read and write rate (unlimited, or 1 in 4 40 kB/s: a 2 kB bucket that runs dry
// and waits for its timer), whether the top protocol delivers each, up to
// 16 cut points for the peer's writes, up to 16 for the top's writes, up
// to 16 consume amounts (cycled), whether the top pauses and resumes its
// reading at each delivery, how the stack ends (close, pop, abort), then
// the bytes (at most 8 KiB).
// The stack sits on a socketpair whose other end is a plain stream.
// Properties: the top protocol gets exactly the peer's bytes in order, the
// peer gets exactly the top's bytes; a close or pop delivers the top's
// bytes before the end (the peer sees EOF after a close; after a pop the
// stream below goes on with the pop's protocol); every userdata gets one
// release, connection_lost runs once before it; the loop frees cleanly.
#include <async.h>
#include <fuzzer/FuzzedDataProvider.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "fuzz_check.h"

namespace {

struct Side {
  std::vector<uint8_t> got;
  std::vector<std::size_t> consume;  // cycled; 0 entries: all
  std::size_t next = 0;
  bool pause_each = false;
  int eof = 0, lost = 0, released = 0;
  int lost_err = 0;
  async_stream *stream = nullptr;
};

async_loop *g_loop;

void on_resume_soon(async_loop *, void *stream) { async_stream_resume_reading(static_cast<async_stream *>(stream)); }

void made(async_stream *s, void *ud) { static_cast<Side *>(ud)->stream = s; }

size_t data(async_stream *s, const uint8_t *d, size_t n, void *ud) {
  auto *x = static_cast<Side *>(ud);
  FUZZ_CHECK(x->lost == 0 && x->released == 0);
  std::size_t take = n;
  if (!x->consume.empty()) {
    take = x->consume[x->next++ % x->consume.size()];
    if (take == 0 || take > n) take = n;
  }
  x->got.insert(x->got.end(), d, d + take);
  if (x->pause_each && async_stream_is_reading(s) == 1) {
    async_stream_pause_reading(s);
    async_loop_call_soon(g_loop, on_resume_soon, s);
  }
  return take;
}

int eof(async_stream *, void *ud) {
  static_cast<Side *>(ud)->eof++;
  return 0;
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

async_stream_protocol protocol(bool each) {
  async_stream_protocol p = {sizeof p, made, data, eof, lost, nullptr, nullptr, nullptr, release,
                             each ? static_cast<uint32_t>(ASYNC_STREAM_DELIVER_EACH) : 0u, nullptr};
  return p;
}

std::vector<std::size_t> cuts(FuzzedDataProvider &in) {
  std::vector<std::size_t> v(in.ConsumeIntegralInRange<std::size_t>(0, 16));
  for (auto &c : v) c = in.ConsumeIntegralInRange<std::size_t>(1, 3000);
  return v;
}

// Writes bytes to s in the pieces cuts says (the last piece takes the rest).
void write_cut(async_stream *s, const std::vector<uint8_t> &bytes, const std::vector<std::size_t> &cut) {
  std::size_t at = 0;
  for (std::size_t c : cut) {
    if (at >= bytes.size()) break;
    std::size_t n = std::min(c, bytes.size() - at);
    FUZZ_CHECK(async_stream_write(s, bytes.data() + at, n) == 0);
    at += n;
  }
  if (at < bytes.size()) FUZZ_CHECK(async_stream_write(s, bytes.data() + at, bytes.size() - at) == 0);
}

// Runs the loop until done() or 10 s.
template <class F>
bool run_until(F done) {
  for (int i = 0; i < 10000 && !done(); ++i) async_loop_run(g_loop, ASYNC_RUN_ONCE);
  return done();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *input, size_t size) {
  FuzzedDataProvider in(input, size);
  int depth = in.ConsumeIntegralInRange(1, 3);
  uint64_t rates[3][2];
  for (auto &r : rates)
    for (auto &rate : r) rate = in.ConsumeIntegralInRange(0, 3) == 0 ? 40000 : 0;
  bool each = in.ConsumeBool();
  auto peer_cuts = cuts(in);
  auto top_cuts = cuts(in);
  Side top, peer, below, after;
  top.consume.resize(in.ConsumeIntegralInRange<std::size_t>(0, 16));
  for (auto &c : top.consume) c = in.ConsumeIntegralInRange<std::size_t>(0, 4000);
  if (!each) top.consume.clear();  // a tail kept without more bytes coming would wait forever
  top.pause_each = in.ConsumeBool();
  int ending = in.ConsumeIntegralInRange(0, 2);  // close, pop, abort
  std::vector<uint8_t> bytes = in.ConsumeBytes<uint8_t>(8192);

  async_loop *loop = nullptr;
  FUZZ_CHECK(async_loop_new(&loop) == 0);
  g_loop = loop;
  int fd[2];
  FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, fd) == 0);
  async_stream_protocol plain = protocol(false);
  async_stream *lower = nullptr, *other = nullptr;
  FUZZ_CHECK(async_stream_adopt(&lower, loop, fd[0], &plain, &below) == 0);
  FUZZ_CHECK(async_stream_adopt(&other, loop, fd[1], &plain, &peer) == 0);
  std::vector<Side> middles(depth - 1);
  async_stream *stream = lower;
  for (int i = 0; i < depth; ++i) {
    bool last = i == depth - 1;
    async_stream_protocol p = protocol(last && each);
    async_stream *upper = nullptr;
    FUZZ_CHECK(async_layer_push_rate_limit(&upper, stream, rates[i][0], rates[i][1], &p,
                                           last ? &top : &middles[i]) == 0);
    stream = upper;
  }
  async_stream *upper = stream;
  FUZZ_CHECK(async_stream_retain(upper) == 0);

  write_cut(other, bytes, peer_cuts);
  FUZZ_CHECK(run_until([&] { return top.got.size() >= bytes.size(); }));
  FUZZ_CHECK(top.got == bytes);
  write_cut(upper, bytes, top_cuts);
  if (ending == 0) {
    FUZZ_CHECK(async_stream_close(upper) == 0);
    FUZZ_CHECK(run_until([&] { return peer.eof && top.released; }));
    FUZZ_CHECK(top.lost_err == 0);
  } else if (ending == 1) {
    FUZZ_CHECK(async_layer_pop(upper, &plain, &after) == 0);
    FUZZ_CHECK(run_until([&] { return peer.got.size() >= bytes.size() && top.released; }));
    FUZZ_CHECK(top.lost_err == 0);
    FUZZ_CHECK(peer.eof == 0);  // the stream below the top layer stays open
    FUZZ_CHECK(async_stream_close(other) == 0);
  } else {
    FUZZ_CHECK(run_until([&] { return peer.got.size() >= bytes.size(); }));
    FUZZ_CHECK(async_stream_abort(upper) == 0);
  }
  FUZZ_CHECK(run_until([&] { return peer.released && top.released; }));
  if (ending != 2) FUZZ_CHECK(peer.got == bytes);
  FUZZ_CHECK(top.lost == 1);
  FUZZ_CHECK(async_stream_release(upper) == 0);
  // Whatever is still open below a popped layer ends with the peer.
  FUZZ_CHECK(run_until([&] { return async_loop_run(loop, ASYNC_RUN_NOWAIT) == 0; }));
  FUZZ_CHECK(async_loop_free(loop) == 0);
  FUZZ_CHECK(below.released == 1 && below.lost == 0);
  for (const Side &m : middles) FUZZ_CHECK(m.released == 1);
  if (ending == 1) FUZZ_CHECK(after.released == 1);
  return 0;
}
