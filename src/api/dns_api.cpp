#include "api/api.hpp"
#include "core/future.hpp"
#include "dns/resolver.hpp"
#include "util/addrinfo.hpp"
#include "util/nameinfo.hpp"

using async::api::checked;
using async::api::checked_loop;
using async::api::guarded;
using async::api::kInvalid;
using async::api::refused;
using async::api::refused_loop;
using async::util::AddrInfo;
using async::core::Future;
using async::core::Loop;
using async::dns::Resolver;

namespace {

// Runs op(Resolver&) on the loop's resolver (created on first use).
template <class Op>
int with_resolver(async_loop *loop, Op &&op) {
  Loop *l = checked_loop(loop);
  if (!l) return refused_loop(loop);
  return guarded([&]() -> int {
    Resolver *r = Resolver::of(*l);
    return r ? op(*r) : ASYNC_ENOMEM;
  });
}

// Entry index of list, or nullptr (with *err set) when either is invalid.
const AddrInfo::Entry *entry_of(const async_addrinfo *list, size_t index, int *err) {
  const AddrInfo *l = checked<AddrInfo>(list);
  *err = !l ? ASYNC_EINVAL : index >= l->count() ? ASYNC_ERANGE : 0;
  return *err ? nullptr : &l->entry(index);
}

}  // namespace

extern "C" {

ASYNC_API int async_getaddrinfo(async_future **out, async_loop *loop, const char *host, const char *service, int family,
                                int socktype, uint32_t flags) {
  if (!out) return ASYNC_EINVAL;
  *out = nullptr;
  return with_resolver(loop, [&](Resolver &r) {
    Future *f = nullptr;
    int err = r.getaddrinfo(&f, host, service, family, socktype, flags);
    if (!err) *out = f->c_future();
    return err;
  });
}

ASYNC_API int async_getnameinfo(async_future **out, async_loop *loop, const struct sockaddr *addr, size_t addrlen,
                                uint32_t flags) {
  if (!out) return ASYNC_EINVAL;
  *out = nullptr;
  if (!addr) return ASYNC_EINVAL;
  return with_resolver(loop, [&](Resolver &r) {
    Future *f = nullptr;
    int err = r.getnameinfo(&f, addr, addrlen, flags);
    if (!err) *out = f->c_future();
    return err;
  });
}

ASYNC_API int async_addrinfo_take(async_addrinfo **out, async_future *future) {
  Future *f = checked<Future>(future);
  if (!out || !f) return refused<Future>(future);
  if (f->state() != ASYNC_FUTURE_DONE) return ASYNC_ESTATE;
  if (!checked<AddrInfo>(f->value())) return ASYNC_EINVAL;
  *out = static_cast<async_addrinfo *>(f->take_value());
  return 0;
}

ASYNC_API void async_addrinfo_free(async_addrinfo *list) {
  if (AddrInfo *l = checked<AddrInfo>(list)) AddrInfo::destroy(l);
}

ASYNC_API int async_addrinfo_count(const async_addrinfo *list) {
  const AddrInfo *l = checked<AddrInfo>(list);
  return l ? static_cast<int>(l->count()) : kInvalid;
}

ASYNC_API int async_addrinfo_family(const async_addrinfo *list, size_t index) {
  int err;
  const AddrInfo::Entry *e = entry_of(list, index, &err);
  return e ? e->addr.sa.sa_family : err;
}

ASYNC_API int async_addrinfo_socktype(const async_addrinfo *list, size_t index) {
  int err;
  const AddrInfo::Entry *e = entry_of(list, index, &err);
  return e ? e->socktype : err;
}

ASYNC_API int async_addrinfo_protocol(const async_addrinfo *list, size_t index) {
  int err;
  const AddrInfo::Entry *e = entry_of(list, index, &err);
  return e ? e->protocol : err;
}

ASYNC_API int async_addrinfo_addr(const struct sockaddr **out, const async_addrinfo *list, size_t index) {
  if (!out) return ASYNC_EINVAL;
  int err;
  const AddrInfo::Entry *e = entry_of(list, index, &err);
  if (!e) return err;
  *out = &e->addr.sa;
  return static_cast<int>(e->len);
}

ASYNC_API const char *async_addrinfo_canonname(const async_addrinfo *list) {
  const AddrInfo *l = checked<AddrInfo>(list);
  return l ? l->canonname() : nullptr;
}

ASYNC_API const char *async_nameinfo_host(const async_nameinfo *info) {
  const auto *i = checked<async::util::NameInfo>(info);
  return i ? i->host() : nullptr;
}

ASYNC_API const char *async_nameinfo_service(const async_nameinfo *info) {
  const auto *i = checked<async::util::NameInfo>(info);
  return i ? i->service() : nullptr;
}

ASYNC_API int async_dns_set_servers(async_loop *loop, const char *servers) {
  return with_resolver(loop, [&](Resolver &r) { return r.set_servers(servers); });
}

ASYNC_API int async_dns_set_timeout(async_loop *loop, uint32_t timeout_ms, uint32_t tries) {
  return with_resolver(loop, [&](Resolver &r) { return r.set_timeout(timeout_ms, tries); });
}

ASYNC_API int async_dns_set_deadline(async_loop *loop, uint64_t deadline_ms) {
  return with_resolver(loop, [&](Resolver &r) { return r.set_deadline(deadline_ms); });
}

ASYNC_API int async_dns_set_rotate(async_loop *loop, int rotate) {
  return with_resolver(loop, [&](Resolver &r) { return r.set_rotate(rotate != 0); });
}

ASYNC_API int async_dns_set_hosts_file(async_loop *loop, const char *path) {
  return with_resolver(loop, [&](Resolver &r) { return r.set_hosts_file(path); });
}

ASYNC_API int async_dns_set_search(async_loop *loop, const char *domains, uint32_t ndots) {
  return with_resolver(loop, [&](Resolver &r) { return r.set_search(domains, ndots); });
}
}
