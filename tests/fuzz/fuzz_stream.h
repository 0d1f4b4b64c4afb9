// What the stream-layer fuzzers (fuzz_layer, fuzz_tls) share: a protocol
// that records what one side of a stream receives and asserts the end
// rules (connection_lost once, then one release), the fuzzed write cuts,
// and a bounded loop run.
#pragma once

#include <async.h>
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "fuzz_check.h"

namespace fuzz_stream {

inline async_loop *g_loop;  // the loop of the input under test

struct Side {
  std::vector<uint8_t> got;
  std::vector<std::size_t> consume;  // cycled; 0 entries: all
  std::size_t next = 0;
  bool pause_each = false;
  int eof = 0, lost = 0, released = 0;
  int lost_err = 0;
  async_stream *stream = nullptr;
};

inline void on_resume_soon(async_loop *, void *stream) {
  async_stream_resume_reading(static_cast<async_stream *>(stream));
}

inline void made(async_stream *s, void *ud) { static_cast<Side *>(ud)->stream = s; }

inline size_t data(async_stream *s, const uint8_t *d, size_t n, void *ud) {
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

inline int eof(async_stream *, void *ud) {
  static_cast<Side *>(ud)->eof++;
  return 0;
}

inline void lost(async_stream *, int err, void *ud) {
  auto *x = static_cast<Side *>(ud);
  FUZZ_CHECK(x->lost == 0 && x->released == 0);
  x->lost++;
  x->lost_err = err;
}

inline void release(void *ud) {
  auto *x = static_cast<Side *>(ud);
  FUZZ_CHECK(x->released == 0);
  x->released++;
}

// The recording protocol, delivering each chunk apart when each is set.
inline async_stream_protocol protocol(bool each) {
  async_stream_protocol p = {sizeof p, made, data, eof, lost, nullptr, nullptr, nullptr, release,
                             each ? static_cast<uint32_t>(ASYNC_STREAM_DELIVER_EACH) : 0u, nullptr};
  return p;
}

// Up to 16 write sizes of 1 to 3000 bytes.
inline std::vector<std::size_t> cuts(FuzzedDataProvider &in) {
  std::vector<std::size_t> v(in.ConsumeIntegralInRange<std::size_t>(0, 16));
  for (auto &c : v) c = in.ConsumeIntegralInRange<std::size_t>(1, 3000);
  return v;
}

// Writes bytes to s in the pieces cuts says (the last piece takes the rest).
inline void write_cut(async_stream *s, const std::vector<uint8_t> &bytes, const std::vector<std::size_t> &cut) {
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

}  // namespace fuzz_stream
