#include "dns/resolver.hpp"

#include <async/addr.h>
#include <async/dns.h>
#include <async/error.h>

#include <cstring>

#include "core/future.hpp"
#include "dns/local_answers.hpp"
#include "util/address.hpp"
#include "util/addrinfo.hpp"
#include "util/alloc.hpp"
#include "util/nameinfo.hpp"

namespace async::dns {

using util::AddrInfo;
using core::Future;
using util::NameInfo;

namespace {

constexpr std::uint32_t kAddrInfoFlags =
    ASYNC_DNS_NUMERICHOST | ASYNC_DNS_PASSIVE | ASYNC_DNS_CANONNAME | ASYNC_DNS_NUMERICSERV;
constexpr std::uint32_t kNameInfoFlags =
    ASYNC_NI_NUMERICHOST | ASYNC_NI_NUMERICSERV | ASYNC_NI_NAMEREQD | ASYNC_NI_DGRAM;

}  // namespace

Resolver::Resolver(core::Loop &loop) noexcept : requests_(loop), channel_(loop, requests_) {}

Resolver *Resolver::of(core::Loop &loop) noexcept {
  if (!loop.service()) loop.set_service(util::make<Resolver>(loop));
  return static_cast<Resolver *>(loop.service());
}

void Resolver::destroy() noexcept { util::destroy(this); }

Resolver::~Resolver() {
  channel_.close();
  util::mem_free(config_.servers);
  util::mem_free(config_.hosts_path);
  util::mem_free(config_.domains);
}

int Resolver::reconfigure() noexcept {
  if (requests_.has_live()) return ASYNC_EBUSY;
  channel_.close();
  return 0;
}

// Answers known without DNS still complete on a later iteration.
int Resolver::start(Future **out, Request *req, bool known, int status) noexcept {
  int err = known ? 0 : channel_.open(config_);
  if (!err) err = requests_.start(out, req, deadline_ms_);
  if (err) {
    requests_.maybe_free(req);
    return err;
  }
  if (known)
    requests_.finish(req, status);
  else if (requests_.wait_unless_room(req))
    channel_.submit(req);
  return 0;
}

int Resolver::after_fork() noexcept {
  int err = channel_.recreate(config_);
  if (err)
    while (Request *req = requests_.next_to_submit()) requests_.finish(req, err);
  return err;
}

void Resolver::submit_waiting() noexcept {
  while (Request *req = requests_.next_to_submit()) channel_.submit(req);
}

int Resolver::getaddrinfo(Future **out, const char *host, const char *service, int family, int socktype,
                          std::uint32_t flags) noexcept {
  if ((!host && !service) || (flags & ~kAddrInfoFlags)) return ASYNC_EINVAL;
  if (family != AF_UNSPEC && family != AF_INET && family != AF_INET6) return ASYNC_EINVAL;
  if (socktype != 0 && socktype != SOCK_STREAM && socktype != SOCK_DGRAM) return ASYNC_EINVAL;
  if (host && !valid_host(host)) return ASYNC_EINVAL;
  std::uint16_t port = 0;
  if (service) {
    int err = parse_service(service, socktype, flags, &port);
    if (err) return err;
  }
  sockaddr_storage numeric;
  socklen_t numeric_len = 0;
  int kind = host ? util::parse_numeric_host_checked(host, AF_UNSPEC, &numeric, &numeric_len) : 0;
  if (kind < 0) return kind;
  if (host && !kind && (flags & ASYNC_DNS_NUMERICHOST)) return ASYNC_EINVAL;

  Request *req = requests_.make();
  if (!req) return ASYNC_ENOMEM;
  req->family = family;
  req->port = port;
  req->socktype = socktype;
  req->canon = flags & ASYNC_DNS_CANONNAME;
  req->destroy_result = AddrInfo::destroy;
  if (host) std::memcpy(req->host, host, std::strlen(host) + 1);

  int status = 0;
  bool known = answer_addrinfo(*req, host, kind, numeric, flags & ASYNC_DNS_PASSIVE, config_.hosts_path, &status);
  if (known && !status && !req->result) {
    requests_.maybe_free(req);
    return ASYNC_ENOMEM;
  }
  return start(out, req, known, status);
}

int Resolver::getnameinfo(Future **out, const sockaddr *addr, std::size_t addrlen, std::uint32_t flags) noexcept {
  if (flags & ~kNameInfoFlags) return ASYNC_EINVAL;
  if (util::address_port(addr, addrlen) < 0) return ASYNC_EINVAL;
  std::uint16_t port = static_cast<std::uint16_t>(util::address_port(addr, addrlen));

  Request *req = requests_.make();
  if (!req) return ASYNC_ENOMEM;
  req->destroy_result = NameInfo::destroy;

  char host[kHostNameSize];
  char service[32];
  bool known = answer_nameinfo(host, service, sizeof service, addr, addrlen, port, flags, config_.hosts_path);
  if (known) {
    req->result = NameInfo::create(host, service);
    if (!req->result) {
      requests_.maybe_free(req);
      return ASYNC_ENOMEM;
    }
  } else {
    req->nameinfo = true;
    req->flags = flags;
    std::size_t copy = addrlen < sizeof req->addr ? addrlen : sizeof req->addr;
    std::memcpy(&req->addr, addr, copy);
    req->addrlen = copy;
  }
  return start(out, req, known, 0);
}

// ---- configuration ------------------------------------------------------

namespace {

// Replaces *slot with a copy of value (NULL allowed).
int store(char **slot, const char *value) noexcept {
  char *copy = nullptr;
  if (value) {
    std::size_t n = std::strlen(value) + 1;
    copy = static_cast<char *>(util::mem_alloc(n));
    if (!copy) return ASYNC_ENOMEM;
    std::memcpy(copy, value, n);
  }
  util::mem_free(*slot);
  *slot = copy;
  return 0;
}

// Every comma-separated entry must be a numeric address with optional port.
bool valid_servers(const char *servers) noexcept {
  if (!*servers) return false;
  const char *p = servers;
  for (;;) {
    const char *end = std::strchr(p, ',');
    std::size_t n = end ? static_cast<std::size_t>(end - p) : std::strlen(p);
    char entry[ASYNC_ADDR_STRLEN];
    if (n == 0 || n >= sizeof entry) return false;
    std::memcpy(entry, p, n);
    entry[n] = '\0';
    sockaddr_storage addr;
    if (util::parse_address(reinterpret_cast<sockaddr *>(&addr), sizeof addr, entry, 0) < 0) return false;
    if (!end) return true;
    p = end + 1;
  }
}

bool valid_domains(const char *domains) noexcept {
  std::size_t len = std::strlen(domains);
  if (len >= Channel::Config::kMaxDomainsLen) return false;
  if (len == 0) return true;
  std::size_t count = 1;
  for (const char *p = domains; *p; ++p) {
    if (*p == ',') ++count;
    if (*p == ' ' || *p == '\t') return false;
  }
  return count <= Channel::Config::kMaxDomains && domains[0] != ',' && domains[len - 1] != ',' &&
         !std::strstr(domains, ",,");
}

}  // namespace

int Resolver::set_servers(const char *servers) noexcept {
  if (servers && !valid_servers(servers)) return ASYNC_EINVAL;
  int err = reconfigure();
  return err ? err : store(&config_.servers, servers);
}

int Resolver::set_timeout(std::uint32_t timeout_ms, std::uint32_t tries) noexcept {
  if (timeout_ms == 0 || tries == 0 || timeout_ms > INT32_MAX || tries > 100) return ASYNC_EINVAL;
  int err = reconfigure();
  if (err) return err;
  config_.timeout_ms = timeout_ms;
  config_.tries = tries;
  return 0;
}

int Resolver::set_deadline(std::uint64_t deadline_ms) noexcept {
  if (deadline_ms == 0) return ASYNC_EINVAL;
  deadline_ms_ = deadline_ms;
  return 0;
}

int Resolver::set_rotate(bool rotate) noexcept {
  int err = reconfigure();
  if (err) return err;
  config_.rotate = rotate;
  return 0;
}

int Resolver::set_hosts_file(const char *path) noexcept {
  int err = reconfigure();
  return err ? err : store(&config_.hosts_path, path);
}

int Resolver::set_search(const char *domains, std::uint32_t ndots) noexcept {
  if (ndots > 15 || (domains && !valid_domains(domains))) return ASYNC_EINVAL;
  int err = reconfigure();
  if (!err) err = store(&config_.domains, domains);
  if (!err) config_.ndots = ndots;
  return err;
}

}  // namespace async::dns
