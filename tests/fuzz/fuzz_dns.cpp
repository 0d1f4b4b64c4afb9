// DNS answers (c-ares and libasync's handling of its results), from a fake
// server on 127.0.0.1 fed by the fuzzer: a UDP socket and a TCP listener on
// the same port, configured as the loop's only DNS server, served by
// watchers on the lookup's own loop.
//
// Input: one control byte, then the answer. Control bits 0-1: the lookup
// (getaddrinfo AF_UNSPEC, AF_INET, AF_INET6, or getnameinfo); bit 2:
// ASYNC_DNS_CANONNAME or ASYNC_NI_NAMEREQD; bit 3: service "80" and
// SOCK_STREAM, or an IPv6 address to reverse; bits 4-5: how the answer is
// patched to match the query: 0-2 the query's id and question replace the
// answer's (header flags and counts stay the input's, the question count
// becomes 1, the input's records follow), 3 only the id (bit 7 clear) or
// nothing (bit 7 set); bit 6: cancel the lookup after the first answer went
// out; bit 7: take the getaddrinfo list out of its future. The same answer
// goes to every query (A and AAAA, retries, and TCP after a truncated
// answer). Each lookup has a 5 ms per-try timeout (what c-ares does not
// accept costs that much), one try, a 300 ms deadline.
// Properties: no crash or leak; the lookup's one callback comes with 0 or
// a documented lookup error (ASYNC_ECANCELED when cancelled while
// pending); a result is well formed (entries of the family and socket
// type asked, the port asked, address lengths of their family, a canonical
// name when asked; a non-empty host and a service for getnameinfo);
// everything closes and async_loop_free() returns 0.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <async.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "fuzz_check.h"

namespace {

constexpr std::size_t kMaxMessage = 4096;

struct Server {
  int udp = -1;
  int tcp = -1;
  char servers[32] = {};
};

// A UDP socket and a TCP listener on one free port of 127.0.0.1, for the
// whole process.
const Server &server() {
  static Server s = [] {
    Server made;
    for (int attempt = 0; attempt < 50 && made.tcp < 0; ++attempt) {
      if (made.udp >= 0) close(made.udp);
      made.udp = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      socklen_t len = sizeof a;
      FUZZ_CHECK(bind(made.udp, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0);
      FUZZ_CHECK(getsockname(made.udp, reinterpret_cast<sockaddr *>(&a), &len) == 0);
      int tcp = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      int one = 1;
      setsockopt(tcp, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (bind(tcp, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0 && listen(tcp, 16) == 0) {
        made.tcp = tcp;
        std::snprintf(made.servers, sizeof made.servers, "127.0.0.1:%u", ntohs(a.sin_port));
      } else {
        close(tcp);
      }
    }
    FUZZ_CHECK(made.tcp >= 0);
    return made;
  }();
  return s;
}

struct Lookup {
  const uint8_t *answer = nullptr;
  std::size_t answer_len = 0;
  int patch = 0;  // 0: id and question, 1: id only, 2: nothing
  bool cancel_after_answer = false;
  async_future *future = nullptr;
  int callbacks = 0;
  int status = 1;
  int answered = 0;
  std::vector<int> conns;  // accepted TCP connections
  std::vector<async_watcher *> watchers;
};

// Where the question of query msg ends, or 0 if it is not a one-question query.
std::size_t question_end(const uint8_t *msg, std::size_t len) {
  if (len < 12 || msg[4] != 0 || msg[5] != 1) return 0;
  std::size_t at = 12;
  while (at < len && msg[at] != 0) {
    if (msg[at] & 0xC0) return 0;
    at += 1u + msg[at];
  }
  at += 1 + 4;  // the root label, type, class
  return at <= len ? at : 0;
}

// The fuzzed answer to query, patched as the input asks; its length.
std::size_t build_answer(const Lookup &l, const uint8_t *query, std::size_t qlen, uint8_t *out) {
  std::size_t n = 0;
  std::size_t qend = question_end(query, qlen);
  if (l.patch == 0 && qend) {
    uint8_t header[12] = {};
    std::memcpy(header, l.answer, l.answer_len < 12 ? l.answer_len : 12);
    header[4] = 0;
    header[5] = 1;
    std::memcpy(out, header, 12);
    std::memcpy(out + 12, query + 12, qend - 12);
    n = qend;
    if (l.answer_len > 12) {
      std::size_t rest = l.answer_len - 12 < kMaxMessage - n ? l.answer_len - 12 : kMaxMessage - n;
      std::memcpy(out + n, l.answer + 12, rest);
      n += rest;
    }
  } else {
    n = l.answer_len < kMaxMessage ? l.answer_len : kMaxMessage;
    std::memcpy(out, l.answer, n);
  }
  if (l.patch != 2 && n >= 2 && qlen >= 2) std::memcpy(out, query, 2);
  return n;
}

void answered(Lookup &l) {
  ++l.answered;
  if (l.cancel_after_answer && l.answered == 1) FUZZ_CHECK(async_future_cancel(l.future) >= 0);
}

void on_udp(async_watcher *, uint32_t, void *ud) {
  auto &l = *static_cast<Lookup *>(ud);
  uint8_t query[kMaxMessage], reply[kMaxMessage];
  sockaddr_storage from;
  socklen_t fromlen = sizeof from;
  ssize_t n = recvfrom(server().udp, query, sizeof query, 0, reinterpret_cast<sockaddr *>(&from), &fromlen);
  if (n <= 0) return;
  std::size_t len = build_answer(l, query, static_cast<std::size_t>(n), reply);
  sendto(server().udp, reply, len, 0, reinterpret_cast<sockaddr *>(&from), fromlen);
  answered(l);
}

// One TCP query per read (c-ares writes each whole): length-prefixed both ways.
void on_conn(async_watcher *w, uint32_t, void *ud) {
  auto &l = *static_cast<Lookup *>(ud);
  int fd = async_watcher_fd(w);
  uint8_t query[2 + kMaxMessage], reply[2 + kMaxMessage];
  ssize_t n = read(fd, query, sizeof query);
  if (n <= 0) {
    async_watcher_stop(w);  // closed (the fd is closed with the others at the end)
    return;
  }
  if (n < 2) return;
  std::size_t len = build_answer(l, query + 2, static_cast<std::size_t>(n) - 2, reply + 2);
  reply[0] = static_cast<uint8_t>(len >> 8);
  reply[1] = static_cast<uint8_t>(len);
  (void)!send(fd, reply, len + 2, MSG_NOSIGNAL);
  answered(l);
}

void watch(Lookup &l, async_loop *loop, int fd, async_watcher_fn cb) {
  async_watcher *w = nullptr;
  FUZZ_CHECK(async_watcher_new(&w, loop, fd, &l) == 0);
  FUZZ_CHECK(async_watcher_start(w, ASYNC_READABLE, cb) == 0);
  l.watchers.push_back(w);
}

void on_accept(async_watcher *w, uint32_t, void *ud) {
  auto &l = *static_cast<Lookup *>(ud);
  int fd = accept4(server().tcp, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) return;
  l.conns.push_back(fd);
  watch(l, async_handle_loop(async_watcher_handle(w)), fd, on_conn);
}

void on_done(async_future *, int status, void *ud) {
  auto &l = *static_cast<Lookup *>(ud);
  ++l.callbacks;
  l.status = status;
}

bool lookup_error(int status) {
  switch (status) {
    case ASYNC_ENOTFOUND:
    case ASYNC_ENODATA:
    case ASYNC_ETIMEDOUT:
    case ASYNC_EREFUSED:
    case ASYNC_ESERVFAIL:
    case ASYNC_EBADNAME:
    case ASYNC_ENOMEM:
      return true;
    default:
      return false;
  }
}

void check_addrinfo(const async_addrinfo *list, int family, int socktype, uint16_t port, bool canon) {
  int count = async_addrinfo_count(list);
  FUZZ_CHECK(count > 0);
  for (int i = 0; i < count; ++i) {
    int f = async_addrinfo_family(list, static_cast<std::size_t>(i));
    FUZZ_CHECK(f == AF_INET || f == AF_INET6);
    FUZZ_CHECK(family == AF_UNSPEC || f == family);
    FUZZ_CHECK(async_addrinfo_socktype(list, static_cast<std::size_t>(i)) == socktype);
    const sockaddr *sa = nullptr;
    int len = async_addrinfo_addr(&sa, list, static_cast<std::size_t>(i));
    FUZZ_CHECK(sa && sa->sa_family == f);
    FUZZ_CHECK(len == static_cast<int>(f == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6)));
    FUZZ_CHECK(async_addr_port(sa, static_cast<std::size_t>(len)) == port);
  }
  FUZZ_CHECK(async_addrinfo_family(list, static_cast<std::size_t>(count)) == ASYNC_ERANGE);
  const char *name = async_addrinfo_canonname(list);
  if (canon) FUZZ_CHECK(name && std::strlen(name) < 1024);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, std::size_t size) {
  if (size < 1) return 0;
  const Server &srv = server();
  uint8_t control = data[0];
  int patch_bits = (control >> 4) & 3;
  Lookup l;
  l.answer = data + 1;
  l.answer_len = size - 1;
  l.patch = patch_bits < 3 ? 0 : (control & 0x80) ? 2 : 1;
  l.cancel_after_answer = (control & 0x40) != 0;

  async_loop *loop = nullptr;
  FUZZ_CHECK(async_loop_new(&loop) == 0);
  FUZZ_CHECK(async_dns_set_servers(loop, srv.servers) == 0);
  FUZZ_CHECK(async_dns_set_timeout(loop, 5, 1) == 0);
  FUZZ_CHECK(async_dns_set_deadline(loop, 300) == 0);
  FUZZ_CHECK(async_dns_set_hosts_file(loop, "") == 0);
  FUZZ_CHECK(async_dns_set_search(loop, "", 1) == 0);
  watch(l, loop, srv.udp, on_udp);
  watch(l, loop, srv.tcp, on_accept);

  int op = control & 3;
  bool flag = (control & 4) != 0, alt = (control & 8) != 0;
  static const int kFamilies[] = {AF_UNSPEC, AF_INET, AF_INET6};
  if (op < 3) {
    int socktype = alt ? SOCK_STREAM : 0;
    FUZZ_CHECK(async_getaddrinfo(&l.future, loop, "fuzz.example", alt ? "80" : nullptr, kFamilies[op], socktype,
                                 flag ? ASYNC_DNS_CANONNAME : 0) == 0);
  } else {
    sockaddr_storage addr{};
    const char *text = alt ? "[2001:db8::1]:80" : "192.0.2.1:80";
    int len = async_addr_parse(reinterpret_cast<sockaddr *>(&addr), sizeof addr, text, 0);
    FUZZ_CHECK(len > 0);
    FUZZ_CHECK(async_getnameinfo(&l.future, loop, reinterpret_cast<sockaddr *>(&addr), static_cast<std::size_t>(len),
                                 flag ? ASYNC_NI_NAMEREQD : 0) == 0);
  }
  FUZZ_CHECK(async_future_add_callback(l.future, on_done, &l) == 0);
  int rc = async_loop_run_until(loop, l.future);
  FUZZ_CHECK(rc != ASYNC_ESTATE && rc != ASYNC_EBUSY && rc != ASYNC_EINVAL);

  int state = async_future_get_state(l.future);
  if (rc == 0) {
    FUZZ_CHECK(state == ASYNC_FUTURE_DONE);
    void *value = nullptr;
    FUZZ_CHECK(async_future_result(&value, l.future) == 0 && value);
    if (op < 3) {
      check_addrinfo(static_cast<const async_addrinfo *>(value), kFamilies[op], alt ? SOCK_STREAM : 0,
                     alt ? 80 : 0, flag);
      if (control & 0x80) {  // the list can be taken and outlive its future
        async_addrinfo *taken = nullptr;
        FUZZ_CHECK(async_addrinfo_take(&taken, l.future) == 0);
        FUZZ_CHECK(async_future_free(l.future) == 0);
        l.future = nullptr;
        check_addrinfo(taken, kFamilies[op], alt ? SOCK_STREAM : 0, alt ? 80 : 0, flag);
        async_addrinfo_free(taken);
      }
    } else {
      auto *info = static_cast<const async_nameinfo *>(value);
      const char *host = async_nameinfo_host(info);
      const char *service = async_nameinfo_service(info);
      // Never an empty host, also for a PTR record naming the root.
      FUZZ_CHECK(host && host[0] && service && service[0]);
    }
  } else if (rc == ASYNC_ECANCELED) {
    FUZZ_CHECK(l.cancel_after_answer && state == ASYNC_FUTURE_CANCELLED);
  } else {
    FUZZ_CHECK(lookup_error(rc));
    FUZZ_CHECK(state == ASYNC_FUTURE_FAILED);
  }
  if (l.future) FUZZ_CHECK(async_future_free(l.future) == 0);

  for (async_watcher *w : l.watchers) FUZZ_CHECK(async_handle_close(async_watcher_handle(w), nullptr) == 0);
  FUZZ_CHECK(async_loop_run(loop, ASYNC_RUN_DEFAULT) == 0);
  for (int fd : l.conns) close(fd);
  // The lookup's callback ran exactly once, with the future's outcome.
  FUZZ_CHECK(l.callbacks == 1 && l.status == rc);
  FUZZ_CHECK(async_loop_free(loop) == 0);
  // Nothing of this input may reach the next one.
  uint8_t drain[kMaxMessage];
  while (recv(srv.udp, drain, sizeof drain, 0) > 0) {
  }
  return 0;
}
