#include "dns/channel.hpp"

#include <ares.h>
#include <async/addr.h>
#include <async/dns.h>
#include <async/error.h>
#include <async/watcher.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <strings.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "util/address.hpp"
#include "util/addrinfo.hpp"
#include "util/alloc.hpp"
#include "util/nameinfo.hpp"
#include "util/sys_error.hpp"

namespace async::dns {

using util::AddrInfo;
using util::NameInfo;

// One per c-ares socket, from open_socket() to close_socket().
struct Channel::Socket {
  ev::IoSlot io;
  Socket *next = nullptr;
  Channel *owner;
  int fd = -1;

  explicit Socket(Channel *c) noexcept : owner(c) {}
};

namespace {

// c-ares allocates through the library allocator too; ares_library_init is
// retried if it once failed for lack of memory.
int library_init() noexcept {
  static std::mutex lock;
  static bool done = false;
  std::lock_guard<std::mutex> guard(lock);
  if (!done)
    done = ares_library_init_mem(ARES_LIB_INIT_ALL, util::mem_alloc, util::mem_free, util::mem_realloc) == ARES_SUCCESS;
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

// Whether an entry c-ares gives back is of the family asked (AF_UNSPEC:
// either). c-ares keeps every address record of the answer, and an answer
// may carry records of the other type (an AAAA record answering an A query).
bool wanted(const ares_addrinfo_node *n, int family) noexcept {
  if (family == AF_UNSPEC) return n->ai_family == AF_INET || n->ai_family == AF_INET6;
  return n->ai_family == family;
}

// The list of the entries of the family asked into *out: 0, ASYNC_ENODATA
// (none) or ASYNC_ENOMEM.
int convert(const ares_addrinfo *res, const Request &req, AddrInfo **out) noexcept {
  std::size_t count = 0;
  for (const ares_addrinfo_node *n = res->nodes; n; n = n->ai_next)
    if (wanted(n, req.family)) ++count;
  if (count == 0) return ASYNC_ENODATA;
  const char *canon = req.canon ? follow_cnames(res, req.host) : nullptr;
  AddrInfo *list = AddrInfo::create(count, canon);
  if (!list) return ASYNC_ENOMEM;
  std::size_t i = 0;
  for (const ares_addrinfo_node *n = res->nodes; n; n = n->ai_next)
    if (wanted(n, req.family)) list->set(i++, n->ai_addr, req.port, req.socktype);
  list->ipv6_first();
  *out = list;
  return 0;
}

int nameinfo_flags(std::uint32_t flags) noexcept {
  int ares_flags = ARES_NI_LOOKUPHOST | ARES_NI_LOOKUPSERVICE;
  if (flags & ASYNC_NI_NUMERICHOST) ares_flags |= ARES_NI_NUMERICHOST;
  if (flags & ASYNC_NI_NUMERICSERV) ares_flags |= ARES_NI_NUMERICSERV;
  if (flags & ASYNC_NI_NAMEREQD) ares_flags |= ARES_NI_NAMEREQD;
  ares_flags |= (flags & ASYNC_NI_DGRAM) ? ARES_NI_DGRAM : ARES_NI_TCP;
  return ares_flags;
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

Channel::Channel(core::Loop &loop, RequestTable &requests) noexcept : loop_(loop), requests_(requests) {
  ev::Backend::timer_init(timer_, on_timer, this);
}

Channel::~Channel() {
  close();
  loop_.backend().timer_stop(timer_);
}

int Channel::open(const Config &config) noexcept {
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
  opts.timeout = static_cast<int>(config.timeout_ms);
  opts.tries = static_cast<int>(config.tries);
  mask |= config.rotate ? ARES_OPT_ROTATE : ARES_OPT_NOROTATE;
  // With our own hosts file (or none) c-ares only asks DNS.
  char dns_only[] = "b";
  if (config.hosts_path) {
    mask |= ARES_OPT_LOOKUPS;
    opts.lookups = dns_only;
  }
  char domains_copy[Config::kMaxDomainsLen];
  char *domains[Config::kMaxDomains];
  if (config.domains) {
    std::snprintf(domains_copy, sizeof domains_copy, "%s", config.domains);
    int n = 0;
    char *save = nullptr;
    for (char *d = strtok_r(domains_copy, ",", &save); d; d = strtok_r(nullptr, ",", &save)) domains[n++] = d;
    mask |= ARES_OPT_DOMAINS | ARES_OPT_NDOTS;
    opts.domains = domains;
    opts.ndomains = n;
    opts.ndots = static_cast<int>(config.ndots);
  }

  ares_channel channel = nullptr;
  int status = init(&channel, opts, mask, config.servers);
  // c-ares turns SERVFAIL and REFUSED into a try of the next server, and
  // reports ECONNREFUSED once none is left. With a single server there is
  // nothing to fail over to: keep its answer code instead.
  if (status == ARES_SUCCESS && server_count(channel) == 1) {
    ares_destroy(channel);
    opts.flags = ARES_FLAG_NOCHECKRESP;
    status = init(&channel, opts, mask | ARES_OPT_FLAGS, config.servers);
  }
  if (status == ARES_ENOMEM) return ASYNC_ENOMEM;
  if (status != ARES_SUCCESS) return status == ARES_EBADSTR ? ASYNC_EINVAL : ASYNC_EIO;
  channel_ = channel;
  env_hosts_ = !config.hosts_path;
  return 0;
}

int Channel::init(ares_channeldata **out, ares_options &opts, int mask, const char *servers) noexcept {
  static const ares_socket_functions functions = {open_socket, close_socket, connect_socket, receive_from, send_vector};
  ares_channel channel = nullptr;
  int status = ares_init_options(&channel, &opts, mask);
  if (status == ARES_SUCCESS) ares_set_socket_functions(channel, &functions, this);
  if (status == ARES_SUCCESS && servers) status = ares_set_servers_ports_csv(channel, servers);
  if (status != ARES_SUCCESS) {
    if (channel) ares_destroy(channel);
    return status;
  }
  *out = channel;
  return ARES_SUCCESS;
}

void Channel::close() noexcept {
  if (!channel_) return;
  // Every callback ares_destroy makes is for an abandoned request (no live
  // future reaches here) but in recreate(), where live ones are re-queued;
  // it closes its sockets through on_sock_state.
  destroying_ = true;
  ares_destroy(channel_);
  channel_ = nullptr;
  destroying_ = false;
  requests_.mark_changed();
}

int Channel::recreate(const Config &config) noexcept {
  if (!channel_) return 0;
  recreating_ = true;
  close();
  recreating_ = false;
  return open(config);
}

bool Channel::requeue(Request *req) noexcept {
  if (req->decided || !req->channel->recreating_) return false;
  req->channel = nullptr;
  req->table->requeue(req);
  return true;
}

// The record comes first: without memory the socket is not opened, which
// c-ares reports on the query being sent (its server unusable) instead of a
// socket nobody watches.
int Channel::open_socket(int family, int type, int protocol, void *self) noexcept {
  auto *c = static_cast<Channel *>(self);
  Socket *s = util::make<Socket>(c);
  int fd = s ? ::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol) : -1;
  if (fd < 0) {
    int err = s ? errno : ENOMEM;
    util::destroy(s);
    if (err == EMFILE || err == ENFILE) c->socket_failure_ = ASYNC_EMFILE;
    if (err == ENOMEM || err == ENOBUFS) c->socket_failure_ = ASYNC_ENOMEM;
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
  s->next = c->sockets_;
  c->sockets_ = s;
  return fd;
}

int Channel::close_socket(int fd, void *self) noexcept {
  auto *c = static_cast<Channel *>(self);
  Socket **link = c->find_socket(fd);
  if (Socket *s = *link) {
    c->loop_.backend().io_stop(s->io);
    *link = s->next;
    util::destroy(s);
  }
  return ::close(fd);
}

Channel::Socket **Channel::find_socket(int fd) noexcept {
  Socket **link = &sockets_;
  while (*link && (*link)->fd != fd) link = &(*link)->next;
  return link;
}

// (fd, 0, 0) comes right before c-ares closes the fd: stop watching first.
void Channel::on_sock_state(void *self, int fd, int readable, int writable) noexcept {
  auto *c = static_cast<Channel *>(self);
  if (Socket *s = *c->find_socket(fd))
    c->loop_.backend().io_watch(s->io, (readable ? ASYNC_READABLE : 0u) | (writable ? ASYNC_WRITABLE : 0u));
}

void Channel::process(int read_fd, int write_fd) noexcept {
  socket_failure_ = 0;
  ares_process_fd(channel_, read_fd, write_fd);
}

void Channel::on_socket(void *socket, std::uint32_t revents) noexcept {
  auto *s = static_cast<Socket *>(socket);
  Channel *c = s->owner;  // s may be gone once c-ares has run
  int fd = s->fd;
  c->process((revents & ASYNC_READABLE) ? fd : ARES_SOCKET_BAD, (revents & ASYNC_WRITABLE) ? fd : ARES_SOCKET_BAD);
  c->requests_.mark_changed();
}

void Channel::on_timer(void *self, std::uint32_t) noexcept {
  auto *c = static_cast<Channel *>(self);
  if (c->channel_) c->process(ARES_SOCKET_BAD, ARES_SOCKET_BAD);
  c->requests_.expire_deadlines();
  c->rearm();
}

void Channel::rearm() noexcept {
  if (destroying_) return;
  requests_.clear_changed();
  std::uint64_t delay = UINT64_MAX;
  timeval tv;
  // ares_timeout() rounds down to whole ms: +1 ms so the timer never fires
  // just before c-ares considers the query expired (which would spin).
  if (channel_ && ares_timeout(channel_, nullptr, &tv))
    delay =
        static_cast<std::uint64_t>(tv.tv_sec) * 1000000000u + static_cast<std::uint64_t>(tv.tv_usec) * 1000u + 1000000u;
  std::uint64_t deadline = requests_.next_deadline_in();
  if (deadline < delay) delay = deadline;
  if (delay == UINT64_MAX)
    loop_.backend().timer_stop(timer_);
  else
    loop_.backend().timer_start(timer_, delay);
}

void Channel::submit(Request *req) noexcept {
  requests_.handed(req);
  req->channel = this;
  socket_failure_ = 0;
  if (req->nameinfo) {
    ares_getnameinfo(channel_, reinterpret_cast<const sockaddr *>(&req->addr),
                     static_cast<ares_socklen_t>(req->addrlen), nameinfo_flags(req->flags), on_nameinfo, req);
  } else {
    ares_addrinfo_hints hints{};
    hints.ai_flags = ARES_AI_NOSORT | (req->canon ? ARES_AI_CANONNAME : 0) | (env_hosts_ ? ARES_AI_ENVHOSTS : 0);
    hints.ai_family = req->family;
    ares_getaddrinfo(channel_, req->host, nullptr, &hints, on_addrinfo, req);
  }
  requests_.mark_changed();
}

// c-ares reports a query for which it could open no socket as ECONNREFUSED
// (no usable server), synchronously, within the c-ares call that tried.
int Channel::lookup_error(int status) const noexcept {
  if (status == ARES_ECONNREFUSED && socket_failure_) return socket_failure_;
  return map_status(status);
}

void Channel::on_addrinfo(void *request, int status, int, ares_addrinfo *res) noexcept {
  auto *req = static_cast<Request *>(request);
  RequestTable *t = req->table;
  t->answered(req);
  if (requeue(req)) {
    if (res) ares_freeaddrinfo(res);
    return;
  }
  if (req->decided) {
    // Cancelled or past its deadline: c-ares may even report a partial
    // success here; the outcome was settled without it.
    if (res) ares_freeaddrinfo(res);
    t->maybe_free(req);
    return;
  }
  int err = req->channel->lookup_error(status);
  if (!err) {
    AddrInfo *list = nullptr;
    err = res ? convert(res, *req, &list) : ASYNC_ENODATA;
    req->result = list;
  }
  if (res) ares_freeaddrinfo(res);
  t->finish(req, err);
}

void Channel::on_nameinfo(void *request, int status, int, char *host, char *service) noexcept {
  auto *req = static_cast<Request *>(request);
  RequestTable *t = req->table;
  t->answered(req);
  if (requeue(req)) return;
  if (req->decided) {
    t->maybe_free(req);
    return;
  }
  int err = req->channel->lookup_error(status);
  // A PTR record naming the root reaches here as an empty host (c-ares
  // passes it on): that is no name, as when there is no PTR record.
  char numeric[ASYNC_ADDR_STRLEN];
  if (!err && (!host || !*host)) {
    bool fallback = !(req->flags & ASYNC_NI_NAMEREQD) &&
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
  t->finish(req, err);
}

}  // namespace async::dns
