#include "dns/resolver.hpp"

#include <ares.h>
#include <async/addr.h>
#include <async/dns.h>
#include <async/error.h>
#include <async/watcher.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <strings.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "core/future.hpp"
#include "core/loop.hpp"
#include "dns/hosts_file.hpp"
#include "util/address.hpp"
#include "util/addrinfo.hpp"
#include "util/alloc.hpp"
#include "util/clock.hpp"
#include "util/container_of.hpp"
#include "util/local_name.hpp"
#include "util/nameinfo.hpp"
#include "util/sys_error.hpp"

namespace async::dns {

using util::AddrInfo;
using core::Future;
using util::NameInfo;

struct Resolver::Request {
  // In live_ (by deadline) until the outcome is decided, then in done_
  // until the loop hands it to the future.
  util::ListNode node;
  util::ListNode wait_node;  // in waiting_ until handed to c-ares
  Resolver *resolver;
  Future *future = nullptr;  // until the future completes or is cancelled
  void *result = nullptr;    // AddrInfo or NameInfo, owned until handed over
  async_destroy_fn destroy_result = nullptr;
  int status = 0;
  std::uint64_t deadline_ns = 0;
  bool decided = false;     // outcome known or abandoned; ready slot used or released
  bool in_ares = false;     // c-ares still owes its callback
  // The query, kept until it is handed to c-ares.
  bool nameinfo = false;
  int family = AF_UNSPEC;
  int ares_flags = 0;
  sockaddr_in6 addr{};  // getnameinfo: a sockaddr_in or sockaddr_in6
  std::size_t addrlen = 0;
  char host[256] = {};
  // What the answer needs to become a result list.
  std::uint16_t port = 0;
  int socktype = 0;
  bool canon = false;

  explicit Request(Resolver *r) noexcept : resolver(r) {}

  static Request *of(util::ListNode *n) noexcept { return util::container_of(n, &Request::node); }
  static Request *of_wait(util::ListNode *n) noexcept { return util::container_of(n, &Request::wait_node); }
};

// One per c-ares socket, from open_socket() to close_socket().
struct Resolver::Socket {
  ev::IoSlot io;
  Socket *next = nullptr;
  Resolver *owner;
  int fd = -1;

  explicit Socket(Resolver *r) noexcept : owner(r) {}
};

namespace {

constexpr std::uint32_t kAddrInfoFlags =
    ASYNC_DNS_NUMERICHOST | ASYNC_DNS_PASSIVE | ASYNC_DNS_CANONNAME | ASYNC_DNS_NUMERICSERV;
constexpr std::uint32_t kNameInfoFlags = ASYNC_NI_NUMERICHOST | ASYNC_NI_NUMERICSERV | ASYNC_NI_NAMEREQD | ASYNC_NI_DGRAM;
constexpr std::size_t kMaxHostLen = 253;
constexpr std::size_t kMaxDomains = 8;
constexpr std::size_t kMaxDomainsLen = 1024;
// Live lookups handed to c-ares at once; the rest wait in libasync. 1,000
// queries sent in one burst overflow a default UDP receive buffer (212,992
// bytes hold ~270 answers) on either side, and the lost ones come back only
// through retransmission timeouts.
constexpr std::size_t kMaxLiveInAres = 64;
// c-ares 1.18 cannot cancel one query: a lookup cancelled or past its
// deadline leaves its query to finish in the background and stops counting
// against kMaxLiveInAres. This caps the lookups inside c-ares, abandoned
// ones included, so they cannot pile up: at most 256 queries (two per
// AF_UNSPEC lookup) are ever outstanding, within one receive buffer.
constexpr std::size_t kMaxInAres = 2 * kMaxLiveInAres;

// c-ares allocates through the library allocator too; ares_library_init is
// retried if it once failed for lack of memory.
int library_init() noexcept {
  static std::mutex lock;
  static bool done = false;
  std::lock_guard<std::mutex> guard(lock);
  if (!done) done = ares_library_init_mem(ARES_LIB_INIT_ALL, util::mem_alloc, util::mem_free, util::mem_realloc) ==
                    ARES_SUCCESS;
  return done ? 0 : ASYNC_ENOMEM;
}

int map_status(int status) noexcept {
  switch (status) {
    case ARES_SUCCESS: return 0;
    case ARES_ENODATA: return ASYNC_ENODATA;
    case ARES_ENOTFOUND:
    case ARES_ENONAME: return ASYNC_ENOTFOUND;
    case ARES_ETIMEOUT: return ASYNC_ETIMEDOUT;
    case ARES_EREFUSED:
    case ARES_ECONNREFUSED: return ASYNC_EREFUSED;
    case ARES_ESERVFAIL:
    case ARES_EFORMERR:
    case ARES_ENOTIMP:
    case ARES_EBADRESP:
    case ARES_EOF: return ASYNC_ESERVFAIL;
    case ARES_EBADNAME:
    case ARES_EBADQUERY: return ASYNC_EBADNAME;
    case ARES_ENOMEM: return ASYNC_ENOMEM;
    case ARES_ECANCELLED:
    case ARES_EDESTRUCTION: return ASYNC_ECANCELED;
    case ARES_EBADFAMILY:
    case ARES_EBADSTR:
    case ARES_EBADFLAGS:
    case ARES_EBADHINTS:
    case ARES_ESERVICE: return ASYNC_EINVAL;
    default: return ASYNC_EIO;
  }
}

// A port number "0".."65535" (digits only), or a service name looked up
// in /etc/services for the socket type's protocol.
int parse_service(const char *service, int socktype, std::uint32_t flags, std::uint16_t *port) noexcept {
  std::size_t len = std::strlen(service);
  if (len == 0) return ASYNC_EINVAL;
  if (std::strspn(service, "0123456789") == len) {
    if (len > 5) return ASYNC_EINVAL;
    unsigned long value = std::strtoul(service, nullptr, 10);
    if (value > 65535) return ASYNC_EINVAL;
    *port = static_cast<std::uint16_t>(value);
    return 0;
  }
  if (flags & ASYNC_DNS_NUMERICSERV) return ASYNC_EINVAL;
  const char *protos[] = {socktype == SOCK_DGRAM ? "udp" : "tcp", socktype == 0 ? "udp" : nullptr};
  for (const char *proto : protos) {
    if (!proto) break;
    servent entry;
    servent *found = nullptr;
    char buf[1024];
    if (getservbyname_r(service, proto, &entry, buf, sizeof buf, &found) == 0 && found) {
      *port = ntohs(static_cast<std::uint16_t>(found->s_port));
      return 0;
    }
  }
  return ASYNC_EINVAL;
}

bool valid_host(const char *host) noexcept {
  std::size_t len = std::strlen(host);
  if (len == 0) return false;
  if (host[len - 1] == '.') --len;  // a fully qualified name's root dot
  return len > 0 && len <= kMaxHostLen;
}

// A one- or two-entry list for host NULL or a local name: loopback, or the
// wildcard with ASYNC_DNS_PASSIVE; IPv6 first for AF_UNSPEC.
AddrInfo *local_list(int family, bool passive, std::uint16_t port, int socktype, const char *canon) noexcept {
  util::SocketAddress addrs[2];
  std::size_t count = util::local_addresses(addrs, family, passive, port);
  AddrInfo *list = AddrInfo::create(count, canon ? std::strlen(canon) : 0);
  if (!list) return nullptr;
  for (std::size_t i = 0; i < count; ++i) list->set(i, reinterpret_cast<sockaddr *>(&addrs[i].addr), port, socktype);
  if (canon) list->set_canonname(canon);
  return list;
}

// The last name of the CNAME chain starting at host.
const char *follow_cnames(const ares_addrinfo *res, const char *host) noexcept {
  const char *name = host;
  for (int hops = 0; hops < 16; ++hops) {
    const ares_addrinfo_cname *c = res->cnames;
    // Hosts-file answers may carry entries without an alias.
    while (c && (!c->alias || !c->name || strcasecmp(c->alias, name) != 0)) c = c->next;
    if (!c) break;
    name = c->name;
  }
  return name;
}

int connect_socket(ares_socket_t fd, const sockaddr *addr, ares_socklen_t len, void *) noexcept {
  return ::connect(fd, addr, len);
}

ares_ssize_t receive_from(ares_socket_t fd, void *buf, std::size_t len, int flags, sockaddr *from,
                          ares_socklen_t *fromlen, void *) noexcept {
  return ::recvfrom(fd, buf, len, flags, from, fromlen);
}

// MSG_NOSIGNAL: a TCP server that went away must not raise SIGPIPE.
ares_ssize_t send_vector(ares_socket_t fd, const iovec *vec, int count, void *) noexcept {
  msghdr msg{};
  msg.msg_iov = const_cast<iovec *>(vec);
  msg.msg_iovlen = static_cast<std::size_t>(count);
  return ::sendmsg(fd, &msg, MSG_NOSIGNAL);
}

int server_count(ares_channel channel) noexcept {
  ares_addr_port_node *servers = nullptr;
  if (ares_get_servers_ports(channel, &servers) != ARES_SUCCESS) return -1;
  int count = 0;
  for (ares_addr_port_node *n = servers; n; n = n->next) ++count;
  ares_free_data(servers);
  return count;
}

}  // namespace

Resolver::Resolver(core::Loop &loop) noexcept : loop_(loop) { ev::Backend::timer_init(timer_, on_timer, this); }

Resolver *Resolver::of(core::Loop &loop) noexcept {
  if (!loop.service()) loop.set_service(util::make<Resolver>(loop));
  return static_cast<Resolver *>(loop.service());
}

void Resolver::destroy() noexcept { util::destroy(this); }

Resolver::~Resolver() {
  close_channel();
  loop_.backend().timer_stop(timer_);
  util::mem_free(servers_);
  util::mem_free(hosts_path_);
  util::mem_free(domains_);
}

// ---- channel --------------------------------------------------------------

int Resolver::open_channel() noexcept {
  if (channel_) return 0;
  // Without an fd c-ares cannot read resolv.conf and silently builds the
  // channel from its defaults (127.0.0.1, no search list) for good.
  int err = util::fd_available();
  if (!err) err = library_init();
  if (err) return err;

  ares_options opts{};
  int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
  opts.sock_state_cb = on_sock_state;
  opts.sock_state_cb_data = this;
  opts.timeout = static_cast<int>(timeout_ms_);
  opts.tries = static_cast<int>(tries_);
  mask |= rotate_ ? ARES_OPT_ROTATE : ARES_OPT_NOROTATE;
  // With our own hosts file (or none) c-ares only asks DNS.
  char dns_only[] = "b";
  if (hosts_path_) {
    mask |= ARES_OPT_LOOKUPS;
    opts.lookups = dns_only;
  }
  char domains_copy[kMaxDomainsLen];
  char *domains[kMaxDomains];
  if (domains_) {
    std::snprintf(domains_copy, sizeof domains_copy, "%s", domains_);
    int n = 0;
    char *save = nullptr;
    for (char *d = strtok_r(domains_copy, ",", &save); d; d = strtok_r(nullptr, ",", &save)) domains[n++] = d;
    mask |= ARES_OPT_DOMAINS | ARES_OPT_NDOTS;
    opts.domains = domains;
    opts.ndomains = n;
    opts.ndots = static_cast<int>(ndots_);
  }

  ares_channel channel = nullptr;
  int status = init_channel(&channel, opts, mask);
  // c-ares turns SERVFAIL and REFUSED into a try of the next server, and
  // reports ECONNREFUSED once none is left. With a single server there is
  // nothing to fail over to: keep its answer code instead.
  if (status == ARES_SUCCESS && server_count(channel) == 1) {
    ares_destroy(channel);
    opts.flags = ARES_FLAG_NOCHECKRESP;
    status = init_channel(&channel, opts, mask | ARES_OPT_FLAGS);
  }
  if (status == ARES_ENOMEM) return ASYNC_ENOMEM;
  if (status != ARES_SUCCESS) return status == ARES_EBADSTR ? ASYNC_EINVAL : ASYNC_EIO;
  channel_ = channel;
  return 0;
}

int Resolver::init_channel(ares_channeldata **out, ares_options &opts, int mask) noexcept {
  static const ares_socket_functions functions = {open_socket, close_socket, connect_socket, receive_from,
                                                   send_vector};
  ares_channel channel = nullptr;
  int status = ares_init_options(&channel, &opts, mask);
  if (status == ARES_SUCCESS) ares_set_socket_functions(channel, &functions, this);
  if (status == ARES_SUCCESS && servers_) status = ares_set_servers_ports_csv(channel, servers_);
  if (status != ARES_SUCCESS) {
    if (channel) ares_destroy(channel);
    return status;
  }
  *out = channel;
  return ARES_SUCCESS;
}

void Resolver::close_channel() noexcept {
  if (!channel_) return;
  // Every callback ares_destroy makes is for an abandoned request (no live
  // future reaches here), and closes its sockets through on_sock_state.
  destroying_ = true;
  ares_destroy(channel_);
  channel_ = nullptr;
  destroying_ = false;
  rearm_soon();
}

int Resolver::reconfigure() noexcept {
  if (!live_.empty()) return ASYNC_EBUSY;
  close_channel();
  return 0;
}

// The record comes first: without memory the socket is not opened, which
// c-ares reports on the query being sent (its server unusable) instead of a
// socket nobody watches.
int Resolver::open_socket(int family, int type, int protocol, void *self) noexcept {
  auto *r = static_cast<Resolver *>(self);
  Socket *s = util::make<Socket>(r);
  int fd = s ? ::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol) : -1;
  if (fd < 0) {
    int err = s ? errno : ENOMEM;
    util::destroy(s);
    if (err == EMFILE || err == ENFILE) r->socket_failure_ = ASYNC_EMFILE;
    if (err == ENOMEM || err == ENOBUFS) r->socket_failure_ = ASYNC_ENOMEM;
    errno = err;
    return ARES_SOCKET_BAD;
  }
  // What c-ares does for the sockets it configures itself.
  if ((type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) == SOCK_STREAM) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  s->fd = fd;
  ev::Backend::io_init(s->io, fd, 0, on_socket, s);
  s->next = r->sockets_;
  r->sockets_ = s;
  return fd;
}

int Resolver::close_socket(int fd, void *self) noexcept {
  auto *r = static_cast<Resolver *>(self);
  Socket **link = r->find_socket(fd);
  if (Socket *s = *link) {
    r->loop_.backend().io_stop(s->io);
    *link = s->next;
    util::destroy(s);
  }
  return ::close(fd);
}

Resolver::Socket **Resolver::find_socket(int fd) noexcept {
  Socket **link = &sockets_;
  while (*link && (*link)->fd != fd) link = &(*link)->next;
  return link;
}

// (fd, 0, 0) comes right before c-ares closes the fd: stop watching first.
void Resolver::on_sock_state(void *self, int fd, int readable, int writable) noexcept {
  auto *r = static_cast<Resolver *>(self);
  if (Socket *s = *r->find_socket(fd))
    r->loop_.backend().io_watch(s->io, (readable ? ASYNC_READABLE : 0u) | (writable ? ASYNC_WRITABLE : 0u));
}

void Resolver::process(int read_fd, int write_fd) noexcept {
  socket_failure_ = 0;
  ares_process_fd(channel_, read_fd, write_fd);
}

void Resolver::on_socket(void *socket, std::uint32_t revents) noexcept {
  auto *s = static_cast<Socket *>(socket);
  Resolver *r = s->owner;  // s may be gone once c-ares has run
  int fd = s->fd;
  r->process((revents & ASYNC_READABLE) ? fd : ARES_SOCKET_BAD, (revents & ASYNC_WRITABLE) ? fd : ARES_SOCKET_BAD);
  r->rearm_soon();
}

void Resolver::on_timer(void *self, std::uint32_t) noexcept {
  auto *r = static_cast<Resolver *>(self);
  if (r->channel_) r->process(ARES_SOCKET_BAD, ARES_SOCKET_BAD);
  r->expire_deadlines();
  r->rearm();
}

void Resolver::rearm() noexcept {
  if (destroying_) return;
  rearm_pending_ = false;
  std::uint64_t delay = UINT64_MAX;
  timeval tv;
  // ares_timeout() rounds down to whole ms: +1 ms so the timer never fires
  // just before c-ares considers the query expired (which would spin).
  if (channel_ && ares_timeout(channel_, nullptr, &tv))
    delay = static_cast<std::uint64_t>(tv.tv_sec) * 1000000000u + static_cast<std::uint64_t>(tv.tv_usec) * 1000u +
            1000000u;
  if (!live_.empty()) {
    std::uint64_t now = util::monotonic_ns();
    std::uint64_t deadline = Request::of(live_.front())->deadline_ns;
    std::uint64_t left = deadline > now ? deadline - now : 0;
    if (left < delay) delay = left;
  }
  if (delay == UINT64_MAX)
    loop_.backend().timer_stop(timer_);
  else
    loop_.backend().timer_start(timer_, delay);
}

void Resolver::expire_deadlines() noexcept {
  std::uint64_t now = util::monotonic_ns();
  while (!live_.empty()) {
    Request *req = Request::of(live_.front());
    if (req->deadline_ns > now) break;
    finish(req, ASYNC_ETIMEDOUT);  // unlinks req
  }
}

void Resolver::insert_live(Request *req) noexcept {
  util::ListNode *after = live_.end()->prev;
  while (after != live_.end() && Request::of(after)->deadline_ns > req->deadline_ns)
    after = after->prev;
  live_.insert_after(*after, req->node);
}

void Resolver::set_live(long delta) noexcept {
  bool was = live_count_ > 0;
  live_count_ += delta;
  bool is = live_count_ > 0;
  // Pending lookups are work: they keep async_loop_run() going.
  if (is != was) is ? loop_.backend().ref() : loop_.backend().unref();
}

// ---- requests -------------------------------------------------------------

int Resolver::start(Future **out, Request *req) noexcept {
  Future *future = Future::create(loop_);
  if (!future) return ASYNC_ENOMEM;
  future->set_cancel(on_cancel, req);
  req->future = future;
  req->deadline_ns = util::saturating_add(util::monotonic_ns(), util::ms_to_ns(deadline_ms_));
  insert_live(req);
  set_live(1);
  rearm_soon();
  *out = future;
  return 0;
}

bool Resolver::has_room() const noexcept { return live_in_ares_ < kMaxLiveInAres && in_ares_count_ < kMaxInAres; }

void Resolver::submit(Request *req) noexcept {
  req->in_ares = true;  // the callback may run before the call returns
  ++in_ares_count_;
  ++live_in_ares_;
  socket_failure_ = 0;
  if (req->nameinfo) {
    ares_getnameinfo(channel_, reinterpret_cast<const sockaddr *>(&req->addr),
                     static_cast<ares_socklen_t>(req->addrlen), req->ares_flags, on_nameinfo, req);
  } else {
    ares_addrinfo_hints hints{};
    hints.ai_flags = req->ares_flags;
    hints.ai_family = req->family;
    ares_getaddrinfo(channel_, req->host, nullptr, &hints, on_addrinfo, req);
  }
  rearm_soon();
}

void Resolver::submit_or_wait(Request *req) noexcept {
  if (has_room() && waiting_.empty())
    submit(req);
  else
    waiting_.push_back(req->wait_node);
}

void Resolver::submit_waiting() noexcept {
  while (has_room() && !waiting_.empty()) {
    Request *req = Request::of_wait(waiting_.front());
    req->wait_node.unlink();
    submit(req);
  }
}

void Resolver::answered(Request *req) noexcept {
  req->in_ares = false;
  --in_ares_count_;
  if (!req->decided) --live_in_ares_;
}

// A request decided while c-ares has its query leaves room for another at
// once (before_poll() hands it over); the query finishes in the background.
bool Resolver::decide(Request *req) noexcept {
  if (req->decided) return false;
  req->decided = true;
  if (req->in_ares) --live_in_ares_;
  return true;
}

void Resolver::finish(Request *req, int status) noexcept {
  if (!decide(req)) return;
  req->status = status;
  req->wait_node.unlink();
  req->node.unlink();
  done_.push_back(req->node);
}

void Resolver::after_poll() noexcept {
  while (!done_.empty()) {
    Request *req = Request::of(done_.front());
    req->node.unlink();
    set_live(-1);
    if (Future *future = req->future) {
      // Completing runs on_cancel(cancelled = 0), which forgets the future.
      if (req->status == 0) {
        void *result = req->result;
        req->result = nullptr;
        future->resolve(result, req->destroy_result);
      } else {
        future->reject(req->status);
      }
    }
    maybe_free(req);
  }
}

void Resolver::on_cancel(async_future *, int cancelled, void *request) noexcept {
  auto *req = static_cast<Request *>(request);
  req->future = nullptr;
  if (!cancelled) return;  // after_poll() is handing over the outcome
  Resolver *r = req->resolver;
  r->decide(req);
  req->wait_node.unlink();
  if (req->node.linked()) {
    req->node.unlink();
    r->set_live(-1);
  }
  // c-ares, if it has the query, calls back later: 1.18 can only cancel
  // every query of a channel at once, so it is left to finish.
  r->maybe_free(req);
  r->rearm_soon();
}

void Resolver::maybe_free(Request *req) noexcept {
  if (req->in_ares || req->node.linked() || req->future) return;
  if (req->result) req->destroy_result(req->result);
  util::destroy(req);
}

// c-ares reports a query for which it could open no socket as ECONNREFUSED
// (no usable server), synchronously, within the c-ares call that tried.
int Resolver::lookup_error(int status) const noexcept {
  if (status == ARES_ECONNREFUSED && socket_failure_) return socket_failure_;
  return map_status(status);
}

// ---- getaddrinfo ----------------------------------------------------------

namespace {

// Whether an entry c-ares gives back is of the family asked (AF_UNSPEC:
// either). c-ares keeps every address record of the answer, and an answer
// may carry records of the other type (an AAAA record answering an A query).
bool wanted(const ares_addrinfo_node *n, int family) noexcept {
  if (family == AF_UNSPEC) return n->ai_family == AF_INET || n->ai_family == AF_INET6;
  return n->ai_family == family;
}

// The list of the entries of the family asked into *out: 0, ASYNC_ENODATA
// (none) or ASYNC_ENOMEM.
int convert(const ares_addrinfo *res, const Resolver::Request &req, AddrInfo **out) noexcept {
  std::size_t count = 0;
  for (const ares_addrinfo_node *n = res->nodes; n; n = n->ai_next)
    if (wanted(n, req.family)) ++count;
  if (count == 0) return ASYNC_ENODATA;
  const char *canon = req.canon ? follow_cnames(res, req.host) : nullptr;
  AddrInfo *list = AddrInfo::create(count, canon ? std::strlen(canon) : 0);
  if (!list) return ASYNC_ENOMEM;
  std::size_t i = 0;
  for (const ares_addrinfo_node *n = res->nodes; n; n = n->ai_next)
    if (wanted(n, req.family)) list->set(i++, n->ai_addr, req.port, req.socktype);
  if (canon) list->set_canonname(canon);
  list->ipv6_first();
  *out = list;
  return 0;
}

AddrInfo *hosts_list(const HostsMatch &match, const Resolver::Request &req) noexcept {
  AddrInfo *list = AddrInfo::create(match.count, req.canon ? std::strlen(match.canon) : 0);
  if (!list) return nullptr;
  for (std::size_t i = 0; i < match.count; ++i)
    list->set(i, reinterpret_cast<const sockaddr *>(&match.addrs[i]), req.port, req.socktype);
  if (req.canon) list->set_canonname(match.canon);
  return list;
}

}  // namespace

void Resolver::on_addrinfo(void *request, int status, int, ares_addrinfo *res) noexcept {
  auto *req = static_cast<Request *>(request);
  Resolver *r = req->resolver;
  r->answered(req);
  if (req->decided) {
    // Cancelled or past its deadline: c-ares may even report a partial
    // success here; the outcome was settled without it.
    if (res) ares_freeaddrinfo(res);
    r->maybe_free(req);
    return;
  }
  int err = r->lookup_error(status);
  if (!err) {
    AddrInfo *list = nullptr;
    err = res ? convert(res, *req, &list) : ASYNC_ENODATA;
    req->result = list;
  }
  if (res) ares_freeaddrinfo(res);
  r->finish(req, err);
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

  Request *req = util::make<Request>(this);
  if (!req) return ASYNC_ENOMEM;
  req->port = port;
  req->socktype = socktype;
  req->canon = flags & ASYNC_DNS_CANONNAME;
  req->destroy_result = AddrInfo::destroy;
  if (host) std::memcpy(req->host, host, std::strlen(host) + 1);

  // Answers known without DNS still complete on a later iteration.
  bool known = true;
  int status = 0;
  HostsMatch match;
  if (!host) {
    req->result = local_list(family, flags & ASYNC_DNS_PASSIVE, port, socktype, nullptr);
  } else if (kind) {
    if (family != AF_UNSPEC && numeric.ss_family != family) {
      status = ASYNC_ENODATA;
    } else if (AddrInfo *list = AddrInfo::create(1, req->canon ? std::strlen(host) : 0)) {
      list->set(0, reinterpret_cast<sockaddr *>(&numeric), port, socktype);
      if (req->canon) list->set_canonname(host);
      req->result = list;
    }
  } else if (util::is_local_name(host)) {
    // Loopback, whatever a hosts file says (RFC 6761 §6.3): as for connect and listen.
    req->result = local_list(family, false, port, socktype, req->canon ? host : nullptr);
  } else if (hosts_path_ && *hosts_path_ && HostsFile::lookup(hosts_path_, host, family, match)) {
    req->result = hosts_list(match, *req);
  } else {
    known = false;
  }

  int err = known && !status && !req->result ? ASYNC_ENOMEM : 0;
  if (!err && !known) err = open_channel();
  if (!err) err = start(out, req);
  if (err) {
    maybe_free(req);
    return err;
  }
  if (known) {
    finish(req, status);
    return 0;
  }
  req->ares_flags = ARES_AI_NOSORT | (req->canon ? ARES_AI_CANONNAME : 0) | (hosts_path_ ? 0 : ARES_AI_ENVHOSTS);
  req->family = family;
  submit_or_wait(req);
  return 0;
}

// ---- getnameinfo ----------------------------------------------------------

void Resolver::on_nameinfo(void *request, int status, int, char *host, char *service) noexcept {
  auto *req = static_cast<Request *>(request);
  Resolver *r = req->resolver;
  r->answered(req);
  if (req->decided) {
    r->maybe_free(req);
    return;
  }
  int err = r->lookup_error(status);
  // A PTR record naming the root reaches here as an empty host (c-ares
  // passes it on): that is no name, as when there is no PTR record.
  char numeric[ASYNC_ADDR_STRLEN];
  if (!err && (!host || !*host)) {
    bool fallback = !(req->ares_flags & ARES_NI_NAMEREQD) &&
                    util::format_address(numeric, sizeof numeric, reinterpret_cast<const sockaddr *>(&req->addr),
                                         req->addrlen, ASYNC_ADDR_NOPORT) >= 0;
    if (fallback) {
      host = numeric;
    } else {
      err = ASYNC_ENOTFOUND;
    }
  }
  if (!err) {
    req->result = NameInfo::create(host, service);
    if (!req->result) err = ASYNC_ENOMEM;
  }
  r->finish(req, err);
}

int Resolver::getnameinfo(Future **out, const sockaddr *addr, std::size_t addrlen, std::uint32_t flags) noexcept {
  if (flags & ~kNameInfoFlags) return ASYNC_EINVAL;
  if (util::address_port(addr, addrlen) < 0) return ASYNC_EINVAL;
  std::uint16_t port = static_cast<std::uint16_t>(util::address_port(addr, addrlen));

  Request *req = util::make<Request>(this);
  if (!req) return ASYNC_ENOMEM;
  req->destroy_result = NameInfo::destroy;

  // Numeric answers and hosts-file names need no c-ares.
  static_assert(kHostNameSize >= ASYNC_ADDR_STRLEN);
  char host[kHostNameSize];
  char service[32];
  bool known = false;
  if ((flags & ASYNC_NI_NUMERICSERV) || port == 0) {
    std::snprintf(service, sizeof service, "%u", port);
    if (flags & ASYNC_NI_NUMERICHOST) {
      known = util::format_address(host, sizeof host, addr, addrlen, ASYNC_ADDR_NOPORT) >= 0;
    } else if (hosts_path_ && *hosts_path_) {
      known = HostsFile::reverse(hosts_path_, addr, host, sizeof host);
    }
  }
  if (known) {
    req->result = NameInfo::create(host, service);
    if (!req->result) {
      maybe_free(req);
      return ASYNC_ENOMEM;
    }
  }

  int err = known ? 0 : open_channel();
  if (!err) err = start(out, req);
  if (err) {
    maybe_free(req);
    return err;
  }
  if (known) {
    finish(req, 0);
    return 0;
  }
  req->nameinfo = true;
  req->ares_flags = ARES_NI_LOOKUPHOST | ARES_NI_LOOKUPSERVICE;
  if (flags & ASYNC_NI_NUMERICHOST) req->ares_flags |= ARES_NI_NUMERICHOST;
  if (flags & ASYNC_NI_NUMERICSERV) req->ares_flags |= ARES_NI_NUMERICSERV;
  if (flags & ASYNC_NI_NAMEREQD) req->ares_flags |= ARES_NI_NAMEREQD;
  req->ares_flags |= (flags & ASYNC_NI_DGRAM) ? ARES_NI_DGRAM : ARES_NI_TCP;
  std::size_t copy = addrlen < sizeof req->addr ? addrlen : sizeof req->addr;
  std::memcpy(&req->addr, addr, copy);
  req->addrlen = copy;
  submit_or_wait(req);
  return 0;
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
  if (len >= kMaxDomainsLen) return false;
  if (len == 0) return true;
  std::size_t count = 1;
  for (const char *p = domains; *p; ++p) {
    if (*p == ',') ++count;
    if (*p == ' ' || *p == '\t') return false;
  }
  return count <= kMaxDomains && domains[0] != ',' && domains[len - 1] != ',' && !std::strstr(domains, ",,");
}

}  // namespace

int Resolver::set_servers(const char *servers) noexcept {
  if (servers && !valid_servers(servers)) return ASYNC_EINVAL;
  int err = reconfigure();
  return err ? err : store(&servers_, servers);
}

int Resolver::set_timeout(std::uint32_t timeout_ms, std::uint32_t tries) noexcept {
  if (timeout_ms == 0 || tries == 0 || timeout_ms > INT32_MAX || tries > 100) return ASYNC_EINVAL;
  int err = reconfigure();
  if (err) return err;
  timeout_ms_ = timeout_ms;
  tries_ = tries;
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
  rotate_ = rotate;
  return 0;
}

int Resolver::set_hosts_file(const char *path) noexcept {
  int err = reconfigure();
  return err ? err : store(&hosts_path_, path);
}

int Resolver::set_search(const char *domains, std::uint32_t ndots) noexcept {
  if (ndots > 15 || (domains && !valid_domains(domains))) return ASYNC_EINVAL;
  int err = reconfigure();
  if (!err) err = store(&domains_, domains);
  if (!err) ndots_ = ndots;
  return err;
}

}  // namespace async::dns
