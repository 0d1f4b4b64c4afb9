// The caller's option structs and protocols (async_connect_options, ...):
// each starts with uint32_t size, the sizeof the caller was built with, so
// a program built against an older or newer header keeps working
// (docs/design.md, "Option structs").
#pragma once

#include <async.h>

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace async::util {

// The size each struct had in v0, what a program built against v0 passes.
// Frozen once v0 is released: a field appended later leaves it as it is
// (the static_asserts below tie it to the struct's v0 fields), and an
// older caller's struct simply ends before the new field (read as 0, its
// default). Until the v0 freeze, a field appended to a struct moves its
// value with it.
template <class T>
inline constexpr std::uint32_t kV0Size = 0;
template <>
inline constexpr std::uint32_t kV0Size<async_connect_options> = 72;
template <>
inline constexpr std::uint32_t kV0Size<async_reconnect_options> = 72;
template <>
inline constexpr std::uint32_t kV0Size<async_udp_options> = 48;
template <>
inline constexpr std::uint32_t kV0Size<async_datagram_protocol> = 64;
template <>
inline constexpr std::uint32_t kV0Size<async_stream_protocol> = 88;
template <>
inline constexpr std::uint32_t kV0Size<async_process_options> = 120;
// Its first version (async/tls.h), after v0.
template <>
inline constexpr std::uint32_t kV0Size<async_tls_options> = 48;

// Two facts per struct, one per line below:
// - its v0 size ends where its last v0 field ends (true for good);
// - no padding follows its last field, so appending a field always grows
//   sizeof, which is how the library tells a newer caller from an older
//   one (update the field named when appending).
static_assert(kV0Size<async_connect_options> ==
              offsetof(async_connect_options, dns_timeout_ms) + sizeof(async_connect_options::dns_timeout_ms));
static_assert(sizeof(async_connect_options) ==
              offsetof(async_connect_options, server_name) + sizeof(async_connect_options::server_name));
static_assert(kV0Size<async_reconnect_options> ==
              offsetof(async_reconnect_options, stopped) + sizeof(async_reconnect_options::stopped));
static_assert(sizeof(async_reconnect_options) ==
              offsetof(async_reconnect_options, stopped) + sizeof(async_reconnect_options::stopped));
static_assert(kV0Size<async_udp_options> ==
              offsetof(async_udp_options, remote_address) + sizeof(async_udp_options::remote_address));
static_assert(sizeof(async_udp_options) ==
              offsetof(async_udp_options, remote_address) + sizeof(async_udp_options::remote_address));
static_assert(kV0Size<async_datagram_protocol> ==
              offsetof(async_datagram_protocol, release) + sizeof(async_datagram_protocol::release));
static_assert(sizeof(async_datagram_protocol) ==
              offsetof(async_datagram_protocol, release) + sizeof(async_datagram_protocol::release));
static_assert(kV0Size<async_stream_protocol> ==
              offsetof(async_stream_protocol, idle_timeout) + sizeof(async_stream_protocol::idle_timeout));
static_assert(sizeof(async_stream_protocol) ==
              offsetof(async_stream_protocol, idle_timeout) + sizeof(async_stream_protocol::idle_timeout));
static_assert(kV0Size<async_process_options> ==
              offsetof(async_process_options, release) + sizeof(async_process_options::release));
static_assert(sizeof(async_process_options) ==
              offsetof(async_process_options, release) + sizeof(async_process_options::release));

static_assert(kV0Size<async_tls_options> ==
              offsetof(async_tls_options, handshake_timeout_ms) + sizeof(async_tls_options::handshake_timeout_ms));
static_assert(sizeof(async_tls_options) ==
              offsetof(async_tls_options, handshake_timeout_ms) + sizeof(async_tls_options::handshake_timeout_ms));

// The largest size accepted: anything above is garbage, not a newer header
// (the check of the unknown tail would read that far).
inline constexpr std::uint32_t kMaxStructSize = 4096;

// Copies the caller's struct in (its first field its uint32_t size) into
// out, current_size bytes, as this version knows it. in NULL: out is all
// zero (every default). Otherwise size must be at least v0_size and at
// most kMaxStructSize; the bytes size covers are copied and the rest of
// out zeroed (fields of a newer version than the caller's take their
// default). Bytes past current_size (a newer caller's fields) must be
// zero: a field this version cannot honour is refused, not ignored (the
// rule of Linux's copy_struct_from_user()). Only the first size bytes of
// in are read. Returns 0 or ASYNC_EINVAL (out then unspecified).
int copy_sized_struct(void *out, std::size_t current_size, const void *in, std::uint32_t v0_size) noexcept;

// copy_sized_struct() for one of the structs above; out.size is set to
// sizeof out, the struct as the library reads it from then on.
template <class T>
int copy_sized(T &out, const T *in) noexcept {
  static_assert(std::is_trivially_copyable_v<T> && offsetof(T, size) == 0 && kV0Size<T> != 0);
  if (int err = copy_sized_struct(&out, sizeof out, in, kV0Size<T>)) return err;
  out.size = sizeof out;
  return 0;
}

}  // namespace async::util
