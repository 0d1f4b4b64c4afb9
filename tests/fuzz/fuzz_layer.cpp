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
#include "fuzz_stream.h"

namespace {

using namespace fuzz_stream;


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
