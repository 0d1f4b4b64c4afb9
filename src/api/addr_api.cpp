// async/addr.h: the core functions are noexcept and allocation-free, so no
// guarded() wrapper is needed; only the NULL checks live here.
#include <async.h>

#include "util/address.hpp"

extern "C" {

ASYNC_API int async_addr_parse(struct sockaddr *out, size_t capacity, const char *text, uint16_t default_port) {
  if (!out || !text) return ASYNC_EINVAL;
  return async::util::parse_address(out, capacity, text, default_port);
}

ASYNC_API int async_addr_format(char *out, size_t capacity, const struct sockaddr *addr, size_t addrlen,
                                uint32_t flags) {
  if (!out || !addr) return ASYNC_EINVAL;
  return async::util::format_address(out, capacity, addr, addrlen, flags);
}

ASYNC_API int async_addr_port(const struct sockaddr *addr, size_t addrlen) {
  if (!addr) return ASYNC_EINVAL;
  return async::util::address_port(addr, addrlen);
}

ASYNC_API int async_addr_get_family(const struct sockaddr *addr, size_t addrlen) {
  return async::util::address_family(addr, addrlen);
}

ASYNC_API int async_addr_get_ip(uint8_t *out, size_t capacity, const struct sockaddr *addr, size_t addrlen) {
  return async::util::address_ip(out, capacity, addr, addrlen);
}

ASYNC_API int async_addr_get_scope_id(uint32_t *out, const struct sockaddr *addr, size_t addrlen) {
  return async::util::address_scope_id(out, addr, addrlen);
}

ASYNC_API int async_addr_make(struct sockaddr *out, size_t capacity, int family, const uint8_t *ip, size_t ip_len,
                              uint16_t port, uint32_t scope_id) {
  return async::util::make_address(out, capacity, family, ip, ip_len, port, scope_id);
}

ASYNC_API int async_addr_set_port(struct sockaddr *addr, size_t addrlen, uint16_t port) {
  return async::util::set_port(addr, addrlen, port);
}
}
