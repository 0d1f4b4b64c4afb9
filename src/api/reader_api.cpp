#include "api/api.hpp"
#include "core/future.hpp"
#include "net/bytes.hpp"
#include "net/reader.hpp"

using async::api::checked;
using async::api::checked_loop;
using async::api::guarded;
using async::api::refused;
using async::api::refused_loop;
using async::net::Bytes;
using async::core::Future;
using async::core::Loop;
using async::net::Reader;

namespace {

// A reader its owner has not freed.
Reader *owned(async_reader *reader) {
  Reader *r = checked<Reader>(reader);
  return r && !r->owner_released() ? r : nullptr;
}

int start_read(async_future **out, async_reader *reader, Reader::Mode mode, std::size_t n, const void *delim,
               std::size_t delim_len) {
  Reader *r = owned(reader);
  if (!out || !r) return refused<Reader>(reader);
  return guarded([&]() -> int {
    Future *f = nullptr;
    int err = r->read(&f, mode, n, delim, delim_len);
    if (!err) *out = f->c_future();
    return err;
  });
}

}  // namespace

extern "C" {

ASYNC_API int async_reader_new(async_reader **out, async_loop *loop, size_t limit) {
  Loop *l = checked_loop(loop);
  if (!out || !l) return refused_loop(loop);
  return guarded([&]() -> int {
    Reader *r = Reader::create(*l, limit);
    if (!r) return ASYNC_ENOMEM;
    *out = reinterpret_cast<async_reader *>(r);
    return 0;
  });
}

ASYNC_API const async_stream_protocol *async_reader_protocol(void) { return &Reader::kProtocol; }

ASYNC_API int async_reader_free(async_reader *reader) {
  Reader *r = owned(reader);
  if (!r) return refused<Reader>(reader);
  return guarded([&]() -> int {
    r->release_owner();
    return 0;
  });
}

ASYNC_API int async_reader_read_exactly(async_future **out, async_reader *reader, size_t n) {
  if (n == 0) return ASYNC_EINVAL;
  return start_read(out, reader, Reader::Mode::kExactly, n, nullptr, 0);
}

ASYNC_API int async_reader_read_until(async_future **out, async_reader *reader, const void *delim, size_t delim_len,
                                      size_t limit) {
  Reader *r = owned(reader);
  if (!r || !delim || delim_len == 0 || delim_len > Reader::kMaxDelimiter) return refused<Reader>(reader);
  if (limit == 0 || limit > r->limit()) limit = r->limit();
  return start_read(out, reader, Reader::Mode::kUntil, limit, delim, delim_len);
}

ASYNC_API int async_reader_read_line(async_future **out, async_reader *reader, size_t limit) {
  return async_reader_read_until(out, reader, "\n", 1, limit);
}

ASYNC_API int async_reader_read_some(async_future **out, async_reader *reader, size_t max) {
  if (max == 0) return ASYNC_EINVAL;
  return start_read(out, reader, Reader::Mode::kSome, max, nullptr, 0);
}

ASYNC_API const uint8_t *async_bytes_data(const async_bytes *bytes) {
  const Bytes *b = checked<Bytes>(bytes);
  return b ? b->data() : nullptr;
}

ASYNC_API size_t async_bytes_size(const async_bytes *bytes) {
  const Bytes *b = checked<Bytes>(bytes);
  return b ? b->size() : 0;
}
}
