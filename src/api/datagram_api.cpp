#include <sys/socket.h>

#include "api/api.hpp"
#include "net/datagram.hpp"
#include "util/sized_struct.hpp"

using async::api::checked_loop;
using async::api::guarded;
using async::api::with_transport;
using async::api::kInvalid;
using async::api::refused_loop;
using async::net::Datagram;
using async::core::Loop;
using async::util::copy_sized;

namespace {

// As with_transport<Datagram>() for socket options of an open UDP (AF_INET/AF_INET6)
// transport: ASYNC_ECLOSED once closing, ASYNC_EINVAL for other families.
template <class Op>
int with_udp(async_datagram *dgram, Op &&op) {
  return with_transport<Datagram>(dgram, [&](Datagram &d) -> int {
    if (!d.is_open()) return ASYNC_ECLOSED;
    return d.is_inet() ? op(d) : kInvalid;
  });
}

}  // namespace

extern "C" {

ASYNC_API int async_udp_open(async_datagram **out, async_loop *loop, const async_udp_options *options,
                             const async_datagram_protocol *protocol, void *userdata) {
  Loop *l = checked_loop(loop);
  async_udp_options copied;
  async_datagram_protocol callbacks;
  if (!out || !l || !options || copy_sized(copied, options) != 0 || !Datagram::copy_protocol(callbacks, protocol))
    return refused_loop(loop);
  return guarded([&]() -> int {
    Datagram *d = nullptr;
    int err = Datagram::open_udp(&d, *l, copied, callbacks, userdata);
    if (!err) *out = d->c_datagram();
    return err;
  });
}

ASYNC_API int async_unix_datagram_open(async_datagram **out, async_loop *loop, const char *local_path,
                                       const char *remote_path, const async_datagram_protocol *protocol,
                                       void *userdata) {
  Loop *l = checked_loop(loop);
  async_datagram_protocol callbacks;
  if (!out || !l || !Datagram::copy_protocol(callbacks, protocol)) return refused_loop(loop);
  return guarded([&]() -> int {
    Datagram *d = nullptr;
    int err = Datagram::open_unix(&d, *l, local_path, remote_path, callbacks, userdata);
    if (!err) *out = d->c_datagram();
    return err;
  });
}

ASYNC_API int async_datagram_adopt(async_datagram **out, async_loop *loop, int fd,
                                   const async_datagram_protocol *protocol, void *userdata) {
  Loop *l = checked_loop(loop);
  async_datagram_protocol callbacks;
  if (!out || !l || !Datagram::copy_protocol(callbacks, protocol)) return refused_loop(loop);
  return guarded([&]() -> int {
    Datagram *d = nullptr;
    int err = Datagram::adopt(&d, *l, fd, callbacks, userdata);
    if (!err) *out = d->c_datagram();
    return err;
  });
}

ASYNC_API int async_datagram_send(async_datagram *dgram, const void *data, size_t len, const struct sockaddr *addr,
                                  size_t addrlen) {
  if (!data && len > 0) return ASYNC_EINVAL;
  return with_transport<Datagram>(dgram, [&](Datagram &d) { return d.send(data, len, addr, addrlen); });
}

ASYNC_API int async_datagram_sendto(async_datagram *dgram, const void *data, size_t len, const char *address) {
  if ((!data && len > 0) || !address) return ASYNC_EINVAL;
  return with_transport<Datagram>(dgram, [&](Datagram &d) { return d.sendto(data, len, address); });
}

ASYNC_API int async_datagram_close(async_datagram *dgram) {
  return with_transport<Datagram>(dgram, [](Datagram &d) {
    d.close();
    return 0;
  });
}

ASYNC_API int async_datagram_abort(async_datagram *dgram) {
  return with_transport<Datagram>(dgram, [](Datagram &d) {
    d.abort(0);
    return 0;
  });
}

ASYNC_API int async_datagram_pause_reading(async_datagram *dgram) {
  return with_transport<Datagram>(dgram, [](Datagram &d) {
    d.pause_reading();
    return 0;
  });
}

ASYNC_API int async_datagram_resume_reading(async_datagram *dgram) {
  return with_transport<Datagram>(dgram, [](Datagram &d) {
    d.resume_reading();
    return 0;
  });
}

ASYNC_API int async_datagram_is_reading(async_datagram *dgram) {
  return with_transport<Datagram>(dgram, [](Datagram &d) { return d.is_reading() ? 1 : 0; });
}

ASYNC_API int async_datagram_set_write_limits(async_datagram *dgram, size_t high, size_t low) {
  return with_transport<Datagram>(dgram, [&](Datagram &d) { return d.set_write_limits(high, low); });
}

ASYNC_API int async_datagram_get_write_limits(size_t *out_high, size_t *out_low, async_datagram *dgram) {
  if (!out_high || !out_low) return ASYNC_EINVAL;
  return with_transport<Datagram>(dgram, [&](Datagram &d) {
    *out_high = d.high();
    *out_low = d.low();
    return 0;
  });
}

ASYNC_API int async_datagram_write_buffer_size(size_t *out, async_datagram *dgram) {
  if (!out) return ASYNC_EINVAL;
  return with_transport<Datagram>(dgram, [&](Datagram &d) {
    *out = d.write_buffer_size();
    return 0;
  });
}

ASYNC_API int async_datagram_fd(async_datagram *dgram) {
  return with_transport<Datagram>(dgram, [](Datagram &d) { return d.fd(); });
}

ASYNC_API async_loop *async_datagram_loop(async_datagram *dgram) { return async::api::transport_loop<Datagram>(dgram); }

ASYNC_API int async_datagram_sockname(struct sockaddr *out, size_t capacity, async_datagram *dgram) {
  if (!out) return ASYNC_EINVAL;
  return with_transport<Datagram>(dgram, [&](Datagram &d) { return d.socket_name(out, capacity, false); });
}

ASYNC_API int async_datagram_peername(struct sockaddr *out, size_t capacity, async_datagram *dgram) {
  if (!out) return ASYNC_EINVAL;
  return with_transport<Datagram>(dgram, [&](Datagram &d) { return d.socket_name(out, capacity, true); });
}

ASYNC_API int async_datagram_join_multicast(async_datagram *dgram, const char *group, const char *iface) {
  if (!group) return ASYNC_EINVAL;
  return with_udp(dgram, [&](Datagram &d) { return d.set_multicast_membership(true, group, iface); });
}

ASYNC_API int async_datagram_leave_multicast(async_datagram *dgram, const char *group, const char *iface) {
  if (!group) return ASYNC_EINVAL;
  return with_udp(dgram, [&](Datagram &d) { return d.set_multicast_membership(false, group, iface); });
}

ASYNC_API int async_datagram_set_multicast_interface(async_datagram *dgram, const char *iface) {
  return with_udp(dgram, [&](Datagram &d) { return d.set_multicast_interface(iface); });
}

ASYNC_API int async_datagram_set_multicast_ttl(async_datagram *dgram, int ttl) {
  if (ttl < 0 || ttl > 255) return ASYNC_EINVAL;
  return with_udp(dgram, [&](Datagram &d) { return d.set_multicast_ttl(ttl); });
}

ASYNC_API int async_datagram_set_multicast_loop(async_datagram *dgram, int on) {
  return with_udp(dgram, [&](Datagram &d) { return d.set_multicast_loop(on != 0); });
}

ASYNC_API int async_datagram_set_broadcast(async_datagram *dgram, int on) {
  return with_udp(dgram, [&](Datagram &d) { return d.set_broadcast(on != 0); });
}

ASYNC_API int async_datagram_retain(async_datagram *dgram) { return async::api::retain_transport<Datagram>(dgram); }

ASYNC_API int async_datagram_release(async_datagram *dgram) { return async::api::release_transport<Datagram>(dgram); }

ASYNC_API void *async_datagram_userdata(async_datagram *dgram) {
  return async::api::transport_userdata<Datagram>(dgram);
}
}
