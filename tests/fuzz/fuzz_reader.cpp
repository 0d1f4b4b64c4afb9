// The reader's framing (async/reader.h): the same bytes cut at different
// points give the same reads.
//
// Input (FuzzedDataProvider): the reader's limit, a script of up to 16
// reads (read_exactly / read_until / read_line / read_some with their
// sizes, delimiters and limits), up to 16 cut points, then the bytes.
// The fuzzer plays the stream: it calls the reader's protocol callbacks
// directly (connection_made, data_received per piece, eof_received,
// connection_lost, release), which is deterministic and needs no socket.
// Each read is started once the previous one completed; a read_some waits
// until max bytes are buffered or the end came, so that what it returns
// does not depend on the cuts.
// Properties: the script gives the same statuses and bytes whether the
// bytes come in one piece or cut; each result fits its read (exactly n;
// up to and including the first delimiter; 1..max, or 0 at the end); the
// results are consecutive pieces of the stream; every read completes by
// the end of file; the loop frees cleanly.
#include <async.h>
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdio>
#include <algorithm>
#include <cstring>
#include <vector>

#include "fuzz_check.h"

namespace {

enum class Kind : uint8_t { kExactly, kUntil, kLine, kSome };

struct Read {
  Kind kind;
  std::size_t n;  // exactly: n; some: max; until/line: limit
  std::vector<uint8_t> delim;
};

struct Result {
  int status;
  std::vector<uint8_t> bytes;
  bool operator==(const Result &) const = default;
};

struct Script {
  std::size_t limit;
  std::vector<Read> reads;
};

int start(async_future **f, async_reader *reader, const Read &r) {
  switch (r.kind) {
    case Kind::kExactly:
      return async_reader_read_exactly(f, reader, r.n);
    case Kind::kUntil:
      return async_reader_read_until(f, reader, r.delim.data(), r.delim.size(), r.n);
    case Kind::kLine:
      return async_reader_read_line(f, reader, r.n);
    case Kind::kSome:
      return async_reader_read_some(f, reader, r.n);
  }
  return ASYNC_EINVAL;
}

// Feeds data to a fresh reader in pieces of the given sizes (the rest in a
// last piece), then the end of file; returns each read's outcome.
std::vector<Result> run(const Script &script, const std::vector<uint8_t> &data, const std::vector<std::size_t> &cuts) {
  async_loop *loop = nullptr;
  FUZZ_CHECK(async_loop_new(&loop) == 0);
  async_reader *reader = nullptr;
  FUZZ_CHECK(async_reader_new(&reader, loop, script.limit) == 0);
  const async_stream_protocol *proto = async_reader_protocol();
  proto->connection_made(nullptr, reader);

  std::vector<Result> results;
  async_future *pending = nullptr;
  std::size_t next = 0, delivered = 0, consumed = 0;
  bool ended = false;
  // Collects completed reads and starts the next ones while they can go.
  auto pump = [&] {
    for (;;) {
      if (pending) {
        if (async_future_get_state(pending) == ASYNC_FUTURE_PENDING) return;
        void *value = nullptr;
        Result res{async_future_result(&value, pending), {}};
        if (res.status == 0) {
          auto *bytes = static_cast<const async_bytes *>(value);
          const uint8_t *p = async_bytes_data(bytes);
          res.bytes.assign(p, p + async_bytes_size(bytes));
          consumed += res.bytes.size();
        }
        results.push_back(std::move(res));
        FUZZ_CHECK(async_future_free(pending) == 0);
        pending = nullptr;
      }
      if (next == script.reads.size()) return;
      const Read &r = script.reads[next];
      if (r.kind == Kind::kSome && !ended && delivered - consumed < r.n) return;
      ++next;
      int rc = start(&pending, reader, r);
      if (rc != 0) {
        pending = nullptr;
        results.push_back({rc, {}});
      }
    }
  };

  pump();
  std::size_t at = 0;
  for (std::size_t cut : cuts) {
    std::size_t len = cut < data.size() - at ? cut : data.size() - at;
    if (len == 0) continue;
    FUZZ_CHECK(proto->data_received(nullptr, data.data() + at, len, reader) == len);
    at += len;
    delivered += len;
    pump();
  }
  if (at < data.size()) {
    FUZZ_CHECK(proto->data_received(nullptr, data.data() + at, data.size() - at, reader) == data.size() - at);
    delivered = data.size();
    pump();
  }
  ended = true;
  proto->eof_received(nullptr, reader);
  pump();
  // At the end of file every read completes (with bytes or ASYNC_EEOF).
  FUZZ_CHECK(pending == nullptr && next == script.reads.size());

  proto->connection_lost(nullptr, 0, reader);
  proto->release(reader);
  FUZZ_CHECK(async_reader_free(reader) == 0);
  FUZZ_CHECK(async_loop_run(loop, ASYNC_RUN_DEFAULT) == 0);
  FUZZ_CHECK(async_loop_free(loop) == 0);
  return results;
}

// Each result fits its read, and the bytes returned are the stream's, in order.
void check_results(const Script &script, const std::vector<uint8_t> &data, const std::vector<Result> &results) {
  FUZZ_CHECK(results.size() == script.reads.size());
  std::size_t at = 0;
  for (std::size_t i = 0; i < results.size(); ++i) {
    const Read &r = script.reads[i];
    const Result &res = results[i];
    if (res.status != 0) {
      FUZZ_CHECK(res.status == ASYNC_EEOF || res.status == ASYNC_ENOBUFS || res.status == ASYNC_EINVAL);
      continue;
    }
    const std::vector<uint8_t> &b = res.bytes;
    FUZZ_CHECK(b.size() <= data.size() - at && std::equal(b.begin(), b.end(), data.begin() + at));
    at += b.size();
    switch (r.kind) {
      case Kind::kExactly:
        FUZZ_CHECK(b.size() == r.n);
        break;
      case Kind::kUntil:
      case Kind::kLine: {
        const std::vector<uint8_t> line{'\n'};
        const std::vector<uint8_t> &d = r.kind == Kind::kLine ? line : r.delim;
        FUZZ_CHECK(b.size() >= d.size());
        for (std::size_t k = 0; k + d.size() < b.size(); ++k)  // the first occurrence ends it
          FUZZ_CHECK(std::memcmp(b.data() + k, d.data(), d.size()) != 0);
        FUZZ_CHECK(std::memcmp(b.data() + b.size() - d.size(), d.data(), d.size()) == 0);
        break;
      }
      case Kind::kSome:
        FUZZ_CHECK(b.size() <= r.n);
        FUZZ_CHECK(!b.empty() || at == data.size());
        break;
    }
  }
}

void print(const char *what, const std::vector<Result> &results) {
  std::fprintf(stderr, "%s:", what);
  for (const Result &r : results) std::fprintf(stderr, " [%d, %zu bytes]", r.status, r.bytes.size());
  std::fprintf(stderr, "\n");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  Script script;
  // Small limits make the limit's edges reachable; 0 is the default (64 KiB).
  script.limit = in.ConsumeIntegralInRange<std::size_t>(0, 64);
  std::size_t effective = script.limit ? script.limit : 64 * 1024;
  std::size_t count = in.ConsumeIntegralInRange<std::size_t>(1, 16);
  for (std::size_t i = 0; i < count; ++i) {
    Read r{static_cast<Kind>(in.ConsumeIntegralInRange<int>(0, 3)), 0, {}};
    // Sizes up to twice the limit: reads above it are allowed too.
    r.n = in.ConsumeIntegralInRange<std::size_t>(r.kind == Kind::kExactly || r.kind == Kind::kSome ? 1 : 0,
                                                   2 * (effective < 64 ? effective : 64));
    if (r.kind == Kind::kUntil) {
      std::size_t len = in.ConsumeIntegralInRange<std::size_t>(1, 4);
      for (std::size_t k = 0; k < len; ++k) r.delim.push_back(in.ConsumeIntegral<uint8_t>());
    }
    script.reads.push_back(std::move(r));
  }
  std::vector<std::size_t> cuts;
  std::size_t ncuts = in.ConsumeIntegralInRange<std::size_t>(0, 16);
  for (std::size_t i = 0; i < ncuts; ++i) cuts.push_back(in.ConsumeIntegralInRange<std::size_t>(1, 64));
  std::vector<uint8_t> bytes = in.ConsumeRemainingBytes<uint8_t>();

  std::vector<Result> whole = run(script, bytes, {});
  check_results(script, bytes, whole);
  std::vector<Result> cut = run(script, bytes, cuts);
  check_results(script, bytes, cut);
  if (!(whole == cut)) {
    print("in one piece", whole);
    print("cut", cut);
  }
  FUZZ_CHECK(whole == cut);
  return 0;
}
