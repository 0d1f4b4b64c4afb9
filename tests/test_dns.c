/*
 * DNS inside the loop (async/dns.h; DESIGN.md §8; cares.md §7-9), tested
 * against a real dnsmasq on loopback and a UDP blackhole (dns_fixture.h).
 *
 * Covered: A / AAAA / AF_UNSPEC answers with their family, socket type,
 * protocol, address and port; CNAME chains and canonical names; NXDOMAIN,
 * NODATA and REFUSED as distinct codes; taking and freeing result lists;
 * 1,000 lookups in flight; completion never inside the starting call
 * (numeric hosts, hosts-file hits, immediate errors); cancellation (at once,
 * after one family answered, one of two, by freeing the future, from inside
 * a callback); capacity (cancelled lookups free their place among the 64
 * at once, abandoned queries bounded at 128); out of file descriptors
 * (ASYNC_EMFILE); freeing the loop with lookups in flight, with and
 * without done callbacks; getnameinfo; the
 * overall deadline against a silent server without a busy loop; numeric
 * hosts never reaching DNS; per-loop configuration (busy while lookups are
 * in flight, malformed input); argument validation; no thread created;
 * error strings.
 *
 * dnsmasq is started once for the whole executable (group setup); tests
 * that need it skip when it is not installed. Every loop is configured with
 * explicit servers, no hosts file, no search domains and short timeouts.
 */
#include "test_util.h"

#include "dns_fixture.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>

/* ------------------------------------------------------------------------ */
/* Fixture and helpers                                                      */
/* ------------------------------------------------------------------------ */

static struct dnsfx g_fx;
static int g_fx_rc = DNSFX_EFAILED;

static int group_setup(void **state) {
  (void)state;
  g_fx_rc = dnsfx_start(&g_fx);
  if (g_fx_rc == DNSFX_ENOTINSTALLED) {
    fprintf(stderr, "test_dns: dnsmasq not installed; tests that need it are skipped\n");
    return 0;
  }
  return g_fx_rc == 0 ? 0 : -1;
}

static int group_teardown(void **state) {
  (void)state;
  dnsfx_stop(&g_fx);
  return 0;
}

static void need_dnsmasq(void) {
  if (g_fx_rc != 0) {
    skip();
  }
}

/* Fails with both codes' names when got != want. */
#define assert_code(got, want)                                                                               \
  do {                                                                                                       \
    int g_ = (got), w_ = (want);                                                                             \
    if (g_ != w_) {                                                                                          \
      print_error("%s:%d: got %s (%d), want %s (%d)\n", __FILE__, __LINE__, async_err_name(g_), g_,          \
                  async_err_name(w_), w_);                                                                   \
      fail();                                                                                                \
    }                                                                                                        \
  } while (0)

/* A loop using servers (if not NULL), no hosts file, no search, 300 ms x 1. */
static async_loop *dns_loop(const char *servers) {
  async_loop *loop = tu_loop_new();
  if (servers != NULL) {
    assert_code(async_dns_set_servers(loop, servers), 0);
  }
  assert_code(async_dns_set_hosts_file(loop, ""), 0);
  assert_code(async_dns_set_search(loop, "", 1), 0);
  assert_code(async_dns_set_timeout(loop, 300, 1), 0);
  return loop;
}

/* A loop using the test dnsmasq (skips without it). */
static async_loop *fx_loop(void) {
  need_dnsmasq();
  return dns_loop(dnsfx_servers(&g_fx));
}

/*
 * Runs the loop until no work is left (bounded: fails if work remains after
 * ms), then frees it. The caller has freed every future.
 */
static void finish_ms(async_loop *loop, uint64_t ms) {
  async_timer *t = tu_guard(loop, ms);
  int rc = async_loop_run(loop, ASYNC_RUN_DEFAULT);
  if (rc != 0) {
    print_error("the loop still has work %llu ms after the last lookup\n", (unsigned long long)ms);
  }
  tu_close(async_timer_handle(t));
  assert_code(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  assert_code(rc, 0);
  assert_code(async_loop_free(loop), 0);
}

static void finish(async_loop *loop) { finish_ms(loop, 5000); }

/* Starts a lookup that must be accepted. */
static async_future *gai(async_loop *loop, const char *host, const char *service, int family, int socktype,
                         uint32_t flags) {
  async_future *f = NULL;
  int rc = async_getaddrinfo(&f, loop, host, service, family, socktype, flags);
  if (rc != 0) {
    print_error("async_getaddrinfo(%s, %s, %d, %d, %u) = %s\n", host ? host : "NULL", service ? service : "NULL",
                family, socktype, flags, async_err_name(rc));
  }
  assert_code(rc, 0);
  assert_non_null(f);
  return f;
}

/* The list of a DONE getaddrinfo future (borrowed). */
static const async_addrinfo *gai_list(async_future *f) {
  void *v = NULL;
  assert_code(async_future_result(&v, f), 0);
  assert_non_null(v);
  return v;
}

/* Resolves and waits (5 s max); returns the DONE future (caller frees). */
static async_future *resolve_ok(async_loop *loop, const char *host, const char *service, int family, int socktype,
                                uint32_t flags) {
  async_future *f = gai(loop, host, service, family, socktype, flags);
  int rc = tu_wait_future(loop, f, 5000);
  if (rc != 0) {
    print_error("lookup of %s failed: %s\n", host ? host : "NULL", async_err_name(rc));
  }
  assert_code(rc, 0);
  assert_int_equal(async_future_get_state(f), ASYNC_FUTURE_DONE);
  assert_true(async_addrinfo_count(gai_list(f)) > 0);
  return f;
}

/* Resolves and waits (5 s max); returns the failure status. */
static int resolve_status(async_loop *loop, const char *host, const char *service, int family, int socktype,
                          uint32_t flags) {
  async_future *f = gai(loop, host, service, family, socktype, flags);
  int rc = tu_wait_future(loop, f, 5000);
  int st = async_future_get_state(f);
  if (rc == 0) {
    assert_int_equal(st, ASYNC_FUTURE_DONE);
  } else if (rc != ASYNC_ESTATE) {
    assert_int_equal(st, rc == ASYNC_ECANCELED ? ASYNC_FUTURE_CANCELLED : ASYNC_FUTURE_FAILED);
  }
  assert_code(async_future_free(f), 0);
  return rc;
}

/* Entry i as text (inet_ntop, no scope) and its port. Returns its family. */
static int entry(const async_addrinfo *list, size_t i, char *text, size_t cap, int *port) {
  const struct sockaddr *sa = NULL;
  int len = async_addrinfo_addr(&sa, list, i);
  assert_true(len > 0);
  assert_non_null(sa);
  int fam = async_addrinfo_family(list, i);
  assert_int_equal(fam, sa->sa_family);
  if (fam == AF_INET) {
    const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
    assert_int_equal(len, (int)sizeof *sin);
    assert_non_null(inet_ntop(AF_INET, &sin->sin_addr, text, (socklen_t)cap));
    *port = ntohs(sin->sin_port);
  } else {
    assert_int_equal(fam, AF_INET6);
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
    assert_int_equal(len, (int)sizeof *sin6);
    assert_non_null(inet_ntop(AF_INET6, &sin6->sin6_addr, text, (socklen_t)cap));
    *port = ntohs(sin6->sin6_port);
  }
  return fam;
}

/* 1 if list holds address text (inet_ntop form), else 0. */
static int has_addr(const async_addrinfo *list, const char *want) {
  int n = async_addrinfo_count(list);
  for (int i = 0; i < n; i++) {
    char text[INET6_ADDRSTRLEN];
    int port = 0;
    entry(list, (size_t)i, text, sizeof text, &port);
    if (strcmp(text, want) == 0) {
      return 1;
    }
  }
  return 0;
}

/* Asserts every entry has socktype, protocol and port. */
static void check_entries(const async_addrinfo *list, int socktype, int protocol, int port) {
  int n = async_addrinfo_count(list);
  assert_true(n > 0);
  for (int i = 0; i < n; i++) {
    char text[INET6_ADDRSTRLEN];
    int p = -1;
    entry(list, (size_t)i, text, sizeof text, &p);
    assert_int_equal(async_addrinfo_socktype(list, (size_t)i), socktype);
    assert_int_equal(async_addrinfo_protocol(list, (size_t)i), protocol);
    assert_int_equal(p, port);
  }
}

/* A done callback's record. Never asserts inside callbacks. */
struct rec {
  int calls;
  int status;
  int state;
  int count;          /* entries (getaddrinfo success), else -1 */
  uint64_t iter;      /* loop iteration of the call */
  async_future *free_other; /* freed inside the callback */
  int free_self;      /* free the future inside the callback */
};

static void rec_cb(async_future *f, int status, void *ud) {
  struct rec *r = ud;
  r->calls++;
  r->status = status;
  r->state = async_future_get_state(f);
  r->iter = tu_iter_cb(async_future_loop(f));
  r->count = -1;
  void *v = NULL;
  if (status == 0 && async_future_result(&v, f) == 0 && v != NULL) {
    r->count = async_addrinfo_count(v);
  }
  if (r->free_other != NULL) {
    async_future_free(r->free_other);
    r->free_other = NULL;
  }
  if (r->free_self) {
    async_future_free(f);
  }
}

static void add_rec(async_future *f, struct rec *r) {
  assert_code(async_future_add_callback(f, rec_cb, r), 0);
}

/* Runs ASYNC_RUN_NOWAIT n times. */
static void spin_nowait(async_loop *loop, int n) {
  for (int i = 0; i < n; i++) {
    assert_true(async_loop_run(loop, ASYNC_RUN_NOWAIT) >= 0);
  }
}

/* ------------------------------------------------------------------------ */
/* Answers: families, socket types, ports                                   */
/* ------------------------------------------------------------------------ */

static void test_a_record(void **state) {
  (void)state;
  async_loop *loop = fx_loop();
  async_future *f = resolve_ok(loop, "dual.test", "8080", AF_INET, 0, 0);
  const async_addrinfo *list = gai_list(f);
  assert_int_equal(async_addrinfo_count(list), 1);
  char text[INET6_ADDRSTRLEN];
  int port = 0;
  assert_int_equal(entry(list, 0, text, sizeof text, &port), AF_INET);
  assert_string_equal(text, "192.0.2.20");
  assert_int_equal(port, 8080);
  check_entries(list, 0, 0, 8080);
  assert_null(async_addrinfo_canonname(list)); /* not asked */
  /* async_addr_format agrees with inet_ntop. */
  const struct sockaddr *sa = NULL;
  int len = async_addrinfo_addr(&sa, list, 0);
  char buf[ASYNC_ADDR_STRLEN];
  assert_true(async_addr_format(buf, sizeof buf, sa, (size_t)len, ASYNC_ADDR_NOPORT) > 0);
  assert_string_equal(buf, "192.0.2.20");
  assert_true(async_addr_format(buf, sizeof buf, sa, (size_t)len, 0) > 0);
  assert_string_equal(buf, "192.0.2.20:8080");
  assert_code(async_future_free(f), 0);

  /* Other record kinds of the zone. */
  f = resolve_ok(loop, "rec.test", NULL, AF_INET, 0, 0);
  assert_int_equal(async_addrinfo_count(gai_list(f)), 1);
  assert_true(has_addr(gai_list(f), "192.0.2.30"));
  check_entries(gai_list(f), 0, 0, 0); /* no service: port 0 */
  assert_code(async_future_free(f), 0);
  f = resolve_ok(loop, "foo.wild.test", NULL, AF_INET, 0, 0);
  assert_true(has_addr(gai_list(f), "192.0.2.40"));
  assert_code(async_future_free(f), 0);
  finish(loop);
}

static void test_aaaa_record(void **state) {
  (void)state;
  async_loop *loop = fx_loop();
  async_future *f = resolve_ok(loop, "dual.test", "8080", AF_INET6, 0, 0);
  const async_addrinfo *list = gai_list(f);
  assert_int_equal(async_addrinfo_count(list), 1);
  char text[INET6_ADDRSTRLEN];
  int port = 0;
  assert_int_equal(entry(list, 0, text, sizeof text, &port), AF_INET6);
  assert_string_equal(text, "2001:db8::20");
  assert_int_equal(port, 8080);
  const struct sockaddr *sa = NULL;
  int len = async_addrinfo_addr(&sa, list, 0);
  char buf[ASYNC_ADDR_STRLEN];
  assert_true(async_addr_format(buf, sizeof buf, sa, (size_t)len, 0) > 0);
  assert_string_equal(buf, "[2001:db8::20]:8080");
  assert_code(async_future_free(f), 0);

  f = resolve_ok(loop, "v6only.test", NULL, AF_INET6, 0, 0);
  assert_true(has_addr(gai_list(f), "2001:db8::10"));
  assert_code(async_future_free(f), 0);
  /* AF_UNSPEC on a name with only an AAAA record: that address only. */
  f = resolve_ok(loop, "v6only.test", NULL, AF_UNSPEC, 0, 0);
  assert_int_equal(async_addrinfo_count(gai_list(f)), 1);
  assert_int_equal(async_addrinfo_family(gai_list(f), 0), AF_INET6);
  assert_code(async_future_free(f), 0);
  f = resolve_ok(loop, "v4only.test", NULL, AF_UNSPEC, 0, 0);
  assert_int_equal(async_addrinfo_count(gai_list(f)), 1);
  assert_int_equal(async_addrinfo_family(gai_list(f), 0), AF_INET);
  assert_code(async_future_free(f), 0);
  finish(loop);
}

static void test_unspec_both_families(void **state) {
  (void)state;
  async_loop *loop = fx_loop();
  async_future *f = resolve_ok(loop, "dual.test", "8080", AF_UNSPEC, SOCK_STREAM, 0);
  const async_addrinfo *list = gai_list(f);
  assert_int_equal(async_addrinfo_count(list), 2);
  assert_true(has_addr(list, "192.0.2.20"));
  assert_true(has_addr(list, "2001:db8::20"));
  /* dns.h: IPv6 first when DNS answers both. */
  assert_int_equal(async_addrinfo_family(list, 0), AF_INET6);
  assert_int_equal(async_addrinfo_family(list, 1), AF_INET);
  check_entries(list, SOCK_STREAM, IPPROTO_TCP, 8080);
  assert_code(async_future_free(f), 0);

  f = resolve_ok(loop, "dual.test", "53", AF_UNSPEC, SOCK_DGRAM, 0);
  check_entries(gai_list(f), SOCK_DGRAM, IPPROTO_UDP, 53);
  assert_code(async_future_free(f), 0);

  /* A service name from /etc/services applies too (skipped if absent). */
  f = NULL;
  if (async_getaddrinfo(&f, loop, "dual.test", "http", AF_UNSPEC, SOCK_STREAM, 0) == 0) {
    int rc = tu_wait_future(loop, f, 5000);
    if (rc == 0) {
      check_entries(gai_list(f), SOCK_STREAM, IPPROTO_TCP, 80);
    } else {
      assert_code(rc, ASYNC_EINVAL); /* no /etc/services on this machine */
    }
    assert_code(async_future_free(f), 0);
  }

  /* Several addresses per family. */
  f = resolve_ok(loop, "many.test", "1", AF_UNSPEC, 0, 0);
  list = gai_list(f);
  assert_int_equal(async_addrinfo_count(list), 6);
  static const char *const many[] = {"192.0.2.51", "192.0.2.52", "192.0.2.53", "192.0.2.54", "2001:db8::51",
                                     "2001:db8::52"};
  for (size_t i = 0; i < sizeof many / sizeof many[0]; i++) {
    assert_true(has_addr(list, many[i]));
  }
  check_entries(list, 0, 0, 1);
  assert_int_equal(async_addrinfo_family(list, 0), AF_INET6);
  /* Index out of range. */
  const struct sockaddr *sa = NULL;
  assert_code(async_addrinfo_family(list, 6), ASYNC_ERANGE);
  assert_code(async_addrinfo_socktype(list, 6), ASYNC_ERANGE);
  assert_code(async_addrinfo_protocol(list, 6), ASYNC_ERANGE);
  assert_code(async_addrinfo_addr(&sa, list, 6), ASYNC_ERANGE);
  assert_code(async_future_free(f), 0);
  finish(loop);
}

static void test_cname_chain(void **state) {
  (void)state;
  async_loop *loop = fx_loop();
  /* chain1.test -> alias.test -> dual.test */
  async_future *f = resolve_ok(loop, "chain1.test", "80", AF_UNSPEC, SOCK_STREAM, ASYNC_DNS_CANONNAME);
  const async_addrinfo *list = gai_list(f);
  assert_int_equal(async_addrinfo_count(list), 2); /* CNAMEs de-duplicated, addresses once each */
  assert_true(has_addr(list, "192.0.2.20"));
  assert_true(has_addr(list, "2001:db8::20"));
  assert_non_null(async_addrinfo_canonname(list));
  assert_string_equal(async_addrinfo_canonname(list), "dual.test");
  assert_code(async_future_free(f), 0);

  f = resolve_ok(loop, "alias.test", NULL, AF_INET, 0, ASYNC_DNS_CANONNAME);
  assert_string_equal(async_addrinfo_canonname(gai_list(f)), "dual.test");
  assert_code(async_future_free(f), 0);

  /* No CNAME: the host itself. */
  f = resolve_ok(loop, "dual.test", NULL, AF_INET6, 0, ASYNC_DNS_CANONNAME);
  assert_string_equal(async_addrinfo_canonname(gai_list(f)), "dual.test");
  assert_code(async_future_free(f), 0);

  /* Not asked: NULL. */
  f = resolve_ok(loop, "chain1.test", NULL, AF_UNSPEC, 0, 0);
  assert_null(async_addrinfo_canonname(gai_list(f)));
  assert_code(async_future_free(f), 0);
  finish(loop);
}

/* ------------------------------------------------------------------------ */
/* Failures: NXDOMAIN, NODATA, REFUSED                                      */
/* ------------------------------------------------------------------------ */

static void test_lookup_errors(void **state) {
  (void)state;
  async_loop *loop = fx_loop();
  assert_code(resolve_status(loop, "unknown.test", NULL, AF_UNSPEC, 0, 0), ASYNC_ENOTFOUND);
  assert_code(resolve_status(loop, "unknown.test", "80", AF_INET, SOCK_STREAM, 0), ASYNC_ENOTFOUND);
  assert_code(resolve_status(loop, "unknown.test", NULL, AF_INET6, 0, 0), ASYNC_ENOTFOUND);
  assert_code(resolve_status(loop, "v6only.test", NULL, AF_INET, 0, 0), ASYNC_ENODATA);
  assert_code(resolve_status(loop, "v4only.test", NULL, AF_INET6, 0, 0), ASYNC_ENODATA);
  assert_code(resolve_status(loop, "other.example", NULL, AF_INET, 0, 0), ASYNC_EREFUSED);
  assert_code(resolve_status(loop, "other.example", NULL, AF_UNSPEC, 0, 0), ASYNC_EREFUSED);
  /* The failed future's value: async_future_result gives the error, the
   * accessors reject a NULL list. */
  async_future *f = gai(loop, "unknown.test", NULL, AF_INET, 0, 0);
  assert_code(tu_wait_future(loop, f, 5000), ASYNC_ENOTFOUND);
  void *v = (void *)0x1;
  assert_code(async_future_result(&v, f), ASYNC_ENOTFOUND);
  async_addrinfo *taken = (async_addrinfo *)0x1;
  int rc = async_addrinfo_take(&taken, f);
  assert_true(rc == ASYNC_ESTATE || rc == ASYNC_EINVAL);
  assert_code(async_future_free(f), 0);
  /* The loop still works after failures. */
  f = resolve_ok(loop, "dual.test", NULL, AF_INET, 0, 0);
  assert_code(async_future_free(f), 0);
  finish(loop);
}

/* ------------------------------------------------------------------------ */
/* async_addrinfo_take / async_addrinfo_free                                */
/* ------------------------------------------------------------------------ */

static void destroy_nothing(void *v, void *context) {
  (void)v;
  (void)context;
}

static void test_take_and_free(void **state) {
  (void)state;
  async_loop *loop = fx_loop();
  async_future *f = gai(loop, "dual.test", "443", AF_UNSPEC, SOCK_STREAM, 0);
  async_addrinfo *list = NULL;
  assert_code(async_addrinfo_take(&list, f), ASYNC_ESTATE); /* pending */
  assert_null(list);
  assert_code(tu_wait_future(loop, f, 5000), 0);
  assert_code(async_addrinfo_take(&list, f), 0);
  assert_non_null(list);
  void *v = (void *)0x1;
  assert_code(async_future_result(&v, f), 0);
  assert_null(v); /* the future's value is NULL now */
  async_addrinfo *again = NULL;
  assert_code(async_addrinfo_take(&again, f), ASYNC_EINVAL); /* already taken */
  assert_null(again);
  assert_code(async_future_free(f), 0);
  /* The list outlives its future. */
  assert_int_equal(async_addrinfo_count(list), 2);
  check_entries(list, SOCK_STREAM, IPPROTO_TCP, 443);
  assert_true(has_addr(list, "2001:db8::20"));
  async_addrinfo_free(list);
  async_addrinfo_free(NULL);

  /* Not a getaddrinfo future. */
  async_future *user = NULL;
  static int dummy;
  assert_code(async_future_new(&user, loop), 0);
  assert_code(async_future_resolve(user, &dummy, destroy_nothing, NULL), 0);
  list = NULL;
  assert_code(async_addrinfo_take(&list, user), ASYNC_EINVAL);
  assert_null(list);
  assert_code(async_future_free(user), 0);
  assert_code(async_addrinfo_take(NULL, NULL), ASYNC_EINVAL);
  assert_code(async_addrinfo_take(&list, NULL), ASYNC_EINVAL);

  /* Accessors on NULL. */
  const struct sockaddr *sa = NULL;
  assert_code(async_addrinfo_count(NULL), ASYNC_EINVAL);
  assert_code(async_addrinfo_family(NULL, 0), ASYNC_EINVAL);
  assert_code(async_addrinfo_socktype(NULL, 0), ASYNC_EINVAL);
  assert_code(async_addrinfo_protocol(NULL, 0), ASYNC_EINVAL);
  assert_code(async_addrinfo_addr(&sa, NULL, 0), ASYNC_EINVAL);
  assert_null(async_addrinfo_canonname(NULL));
  assert_null(async_nameinfo_host(NULL));
  assert_null(async_nameinfo_service(NULL));
  finish(loop);
}

/* ------------------------------------------------------------------------ */
/* 1,000 lookups in flight                                                  */
/* ------------------------------------------------------------------------ */

enum { N_MANY = 1000 };

struct many_rec {
  int calls;
  int status;
  int count;
  int family0;
};

static void many_cb(async_future *f, int status, void *ud) {
  struct many_rec *r = ud;
  r->calls++;
  r->status = status;
  r->count = -1;
  r->family0 = -1;
  void *v = NULL;
  if (status == 0 && async_future_result(&v, f) == 0 && v != NULL) {
    r->count = async_addrinfo_count(v);
    r->family0 = async_addrinfo_family(v, 0);
  }
}

static void test_thousand_in_flight(void **state) {
  (void)state;
  async_loop *loop = fx_loop();
  /* ~1,700 datagrams leave at once: allow retransmissions (a full socket
   * buffer on either side drops some) within a generous deadline. */
  assert_code(async_dns_set_timeout(loop, 500, 4), 0);
  assert_code(async_dns_set_deadline(loop, 30000), 0);

  static async_future *futs[N_MANY];
  static struct many_rec recs[N_MANY];
  memset(recs, 0, sizeof recs);
  for (int i = 0; i < N_MANY; i++) {
    char numeric[32];
    switch (i % 7) {
    case 0: futs[i] = gai(loop, "dual.test", "80", AF_UNSPEC, SOCK_STREAM, 0); break;
    case 1: futs[i] = gai(loop, "v4only.test", NULL, AF_INET, 0, 0); break;
    case 2: futs[i] = gai(loop, "unknown.test", NULL, AF_UNSPEC, 0, 0); break;
    case 3: futs[i] = gai(loop, "v6only.test", NULL, AF_INET, 0, 0); break;
    case 4:
      snprintf(numeric, sizeof numeric, "192.0.2.%d", i % 250 + 1);
      futs[i] = gai(loop, numeric, "80", AF_UNSPEC, 0, 0);
      break;
    case 5: futs[i] = gai(loop, "many.test", NULL, AF_INET6, 0, 0); break;
    default: futs[i] = gai(loop, "other.example", NULL, AF_INET, 0, 0); break;
    }
    assert_int_equal(async_future_get_state(futs[i]), ASYNC_FUTURE_PENDING);
    assert_code(async_future_add_callback(futs[i], many_cb, &recs[i]), 0);
  }
  /* Wait for all of them (async_future_all would stop at the first
   * failure, so wait on each in turn). */
  uint64_t t0 = tu_now_ns();
  for (int i = 0; i < N_MANY; i++) {
    if (async_future_get_state(futs[i]) == ASYNC_FUTURE_PENDING) {
      (void)tu_wait_future(loop, futs[i], 30000);
    }
  }
  /* Let every scheduled callback run. */
  spin_nowait(loop, 3);
  int bad = 0;
  for (int i = 0; i < N_MANY; i++) {
    struct many_rec *r = &recs[i];
    int want_status = 0, want_count = -1, want_family = -1;
    switch (i % 7) {
    case 0: want_count = 2; want_family = AF_INET6; break;
    case 1: want_count = 1; want_family = AF_INET; break;
    case 2: want_status = ASYNC_ENOTFOUND; break;
    case 3: want_status = ASYNC_ENODATA; break;
    case 4: want_count = 1; want_family = AF_INET; break;
    case 5: want_count = 2; want_family = AF_INET6; break;
    default: want_status = ASYNC_EREFUSED; break;
    }
    if (r->calls != 1 || r->status != want_status || r->count != want_count || r->family0 != want_family) {
      if (bad < 10) {
        print_error("lookup %d (kind %d): calls %d status %s count %d family %d\n", i, i % 7, r->calls,
                    async_err_name(r->status), r->count, r->family0);
      }
      bad++;
    }
  }
  print_message("1000 lookups took %.1f ms\n", tu_elapsed_ms(t0));
  assert_int_equal(bad, 0);
  for (int i = 0; i < N_MANY; i++) {
    assert_code(async_future_free(futs[i]), 0);
  }
  spin_nowait(loop, 2);
  for (int i = 0; i < N_MANY; i++) {
    assert_int_equal(recs[i].calls, 1);
  }
  finish_ms(loop, 15000);
}

/* ------------------------------------------------------------------------ */
/* Completion never inside the starting call                                */
/* ------------------------------------------------------------------------ */

static void check_later(async_loop *loop, const char *host, const char *service, int family, uint32_t flags,
                        int want_status) {
  uint64_t it0 = tu_iterations(loop);
  async_future *f = gai(loop, host, service, family, 0, flags);
  assert_int_equal(async_future_get_state(f), ASYNC_FUTURE_PENDING);
  void *v = NULL;
  assert_code(async_future_result(&v, f), ASYNC_ESTATE);
  struct rec r = {0};
  add_rec(f, &r);
  assert_int_equal(r.calls, 0);
  assert_code(tu_wait_future(loop, f, 5000), want_status);
  spin_nowait(loop, 1);
  assert_int_equal(r.calls, 1);
  assert_code(r.status, want_status);
  assert_true(r.iter > it0);
  assert_code(async_future_free(f), 0);
}

static void test_never_inside_call(void **state) {
  (void)state;
  need_dnsmasq();
  async_loop *loop = dns_loop(dnsfx_servers(&g_fx));
  /* Numeric hosts (known at once). */
  check_later(loop, "192.0.2.1", "80", AF_UNSPEC, 0, 0);
  check_later(loop, "::1", NULL, AF_UNSPEC, 0, 0);
  check_later(loop, "2001:db8::1", "80", AF_INET6, ASYNC_DNS_NUMERICHOST, 0);
  check_later(loop, NULL, "80", AF_UNSPEC, 0, 0);
  check_later(loop, NULL, "80", AF_INET, ASYNC_DNS_PASSIVE, 0);
  /* An immediate failure through the future: a numeric host of the wrong
   * family. */
  check_later(loop, "192.0.2.1", NULL, AF_INET6, 0, ASYNC_ENODATA);

  /* Hosts-file hits (c-ares completes those synchronously). */
  const char *hosts = dnsfx_fixture_path("hosts.txt");
  assert_code(async_dns_set_hosts_file(loop, hosts), 0);
  check_later(loop, "fileonly.test", NULL, AF_UNSPEC, 0, 0);
  check_later(loop, "fileonly4.test", "80", AF_INET, 0, 0);
  async_future *f = resolve_ok(loop, "fileonly.test", "80", AF_UNSPEC, SOCK_STREAM, ASYNC_DNS_CANONNAME);
  assert_int_equal(async_addrinfo_count(gai_list(f)), 2);
  assert_true(has_addr(gai_list(f), "192.0.2.77"));
  assert_true(has_addr(gai_list(f), "2001:db8::77"));
  check_entries(gai_list(f), SOCK_STREAM, IPPROTO_TCP, 80);
  assert_code(async_future_free(f), 0);
  f = resolve_ok(loop, "fileonly-alias.test", NULL, AF_INET, 0, 0);
  assert_true(has_addr(gai_list(f), "192.0.2.77"));
  assert_code(async_future_free(f), 0);
  /* None of them reached dnsmasq. */
  assert_int_equal(dnsfx_count_queries(&g_fx, "fileonly.test"), 0);
  assert_int_equal(dnsfx_count_queries(&g_fx, "fileonly4.test"), 0);
  assert_int_equal(dnsfx_count_queries(&g_fx, "fileonly-alias.test"), 0);
  /* Names not in the file still go to DNS. */
  f = resolve_ok(loop, "dual.test", NULL, AF_INET, 0, 0);
  assert_code(async_future_free(f), 0);
  assert_code(async_dns_set_hosts_file(loop, ""), 0);
  assert_code(resolve_status(loop, "fileonly.test", NULL, AF_INET, 0, 0), ASYNC_ENOTFOUND);
  assert_true(dnsfx_count_queries(&g_fx, "fileonly.test") >= 1);
  finish(loop);
}

/* The system hosts mode (hosts file NULL) goes through c-ares' own file
 * lookup, which honours $CARES_HOSTS and completes synchronously inside
 * ares_getaddrinfo: the future still completes on a later iteration, and
 * the silent server never hears the name. */
static void test_cares_env_hosts(void **state) {
  (void)state;
  struct dnsfx_hole h;
  assert_int_equal(dnsfx_blackhole_open(&h), 0);
  assert_int_equal(setenv("CARES_HOSTS", dnsfx_fixture_path("hosts.txt"), 1), 0);
  async_loop *loop = dns_loop(dnsfx_blackhole_servers(&h));
  assert_code(async_dns_set_hosts_file(loop, NULL), 0);
  assert_code(async_dns_set_deadline(loop, 2000), 0);
  check_later(loop, "fileonly4.test", "80", AF_INET, 0, 0);
  async_future *f = resolve_ok(loop, "fileonly.test", NULL, AF_INET6, 0, ASYNC_DNS_CANONNAME);
  assert_int_equal(async_addrinfo_count(gai_list(f)), 1);
  assert_true(has_addr(gai_list(f), "2001:db8::77"));
  assert_string_equal(async_addrinfo_canonname(gai_list(f)), "fileonly.test");
  assert_code(async_future_free(f), 0);
  assert_int_equal(dnsfx_blackhole_count(&h), 0);
  finish(loop);
  unsetenv("CARES_HOSTS");
  dnsfx_blackhole_close(&h);
}

/* ------------------------------------------------------------------------ */
/* Cancellation                                                             */
/* ------------------------------------------------------------------------ */

static void test_cancel_at_once(void **state) {
  (void)state;
  async_loop *loop = fx_loop();
  struct rec r = {0};
  async_future *f = gai(loop, "dual.test", NULL, AF_UNSPEC, 0, 0);
  add_rec(f, &r);
  assert_int_equal(async_future_cancel(f), 1);
  assert_int_equal(async_future_get_state(f), ASYNC_FUTURE_CANCELLED);
  assert_code(async_future_result(NULL, f), ASYNC_ECANCELED);
  assert_int_equal(async_future_cancel(f), 0); /* already complete */
  assert_int_equal(r.calls, 0);                /* callbacks run later */
  /* Let any answer arrive and be discarded. */
  for (int i = 0; i < 10; i++) {
    spin_nowait(loop, 1);
    tu_sleep_ms(10);
  }
  assert_int_equal(r.calls, 1);
  assert_code(r.status, ASYNC_ECANCELED);
  assert_int_equal(async_future_get_state(f), ASYNC_FUTURE_CANCELLED);
  assert_code(async_future_free(f), 0);

  /* Numeric hosts can be cancelled too, before their completion runs. */
  struct rec r2 = {0};
  f = gai(loop, "192.0.2.1", "80", AF_INET, 0, 0);
  add_rec(f, &r2);
  assert_int_equal(async_future_cancel(f), 1);
  spin_nowait(loop, 3);
  assert_int_equal(r2.calls, 1);
  assert_code(r2.status, ASYNC_ECANCELED);
  assert_code(async_future_free(f), 0);
  finish(loop);
}

/* Beyond 64 live lookups inside c-ares the rest wait in libasync:
 * cancelling a waiting lookup means its query is never sent, and a waiting
 * lookup's deadline runs from its start. */
static void test_cancel_before_send(void **state) {
  (void)state;
  enum { N = 100, CANCELLED = 10, MAX_LIVE_IN_ARES = 64 };
  struct dnsfx_hole h;
  assert_int_equal(dnsfx_blackhole_open(&h), 0);
  async_loop *loop = dns_loop(dnsfx_blackhole_servers(&h));
  /* c-ares keeps its queries past every deadline, so no slot frees up. */
  assert_code(async_dns_set_timeout(loop, 5000, 1), 0);
  assert_code(async_dns_set_deadline(loop, 300), 0);
  static async_future *f[N];
  static struct rec r[N];
  memset(r, 0, sizeof r);
  for (int i = 0; i < N; i++) {
    char name[32];
    snprintf(name, sizeof name, "n%d.test", i);
    f[i] = gai(loop, name, NULL, AF_INET, 0, 0);
    add_rec(f[i], &r[i]);
  }
  for (int i = N - CANCELLED; i < N; i++) {
    assert_int_equal(async_future_cancel(f[i]), 1);
  }
  uint64_t t0 = tu_now_ns();
  for (int i = 0; i < N; i++) {
    (void)tu_wait_future(loop, f[i], 3000);
  }
  spin_nowait(loop, 2);
  double elapsed = tu_elapsed_ms(t0);
  for (int i = 0; i < N; i++) {
    assert_int_equal(r[i].calls, 1);
    assert_code(r[i].status, i >= N - CANCELLED ? ASYNC_ECANCELED : ASYNC_ETIMEDOUT);
    assert_code(async_future_free(f[i]), 0);
  }
  /* Every deadline ran from the start call, queued or not. */
  assert_true(elapsed < 1000.0);
  /* The lookups c-ares had were sent, once each (one try); a waiting one
   * only if a slot freed up (a lookup past its deadline) while it was
   * still live; the cancelled ones never. */
  tu_sleep_ms(50);
  int sent = dnsfx_blackhole_count(&h);
  assert_true(sent >= MAX_LIVE_IN_ARES && sent <= N - CANCELLED);
  finish(loop);
  dnsfx_blackhole_close(&h);
}

/* A responder answering A queries at once with 192.0.2.1, except names
 * starting with "drop", which it never answers. */
static void start_dropping_responder(struct dnsfx_responder *resp) {
  struct dnsfx_family a = {"192.0.2.1", 0};
  struct dnsfx_family aaaa = {NULL, -1};
  assert_int_equal(dnsfx_responder_start_dropping(resp, &a, &aaaa, "drop"), 0);
}

/* Starts n lookups of unanswered names (drop<first>.test ...), each with
 * a rec, and runs one non-blocking iteration. */
static void start_dropped(async_loop *loop, async_future **f, struct rec *r, int first, int n) {
  for (int i = 0; i < n; i++) {
    char name[32];
    snprintf(name, sizeof name, "drop%d.test", first + i);
    f[i] = gai(loop, name, NULL, AF_INET, 0, 0);
    add_rec(f[i], &r[i]);
  }
  spin_nowait(loop, 1);
}

/* Frees n pending futures; their callbacks report ASYNC_ECANCELED. */
static void free_cancelled(async_loop *loop, async_future **f, struct rec *r, int n) {
  for (int i = 0; i < n; i++) {
    assert_int_equal(async_future_get_state(f[i]), ASYNC_FUTURE_PENDING);
    assert_code(async_future_free(f[i]), 0);
  }
  spin_nowait(loop, 1);
  for (int i = 0; i < n; i++) {
    assert_int_equal(r[i].calls, 1);
    assert_code(r[i].status, ASYNC_ECANCELED);
  }
}

/* Cancelled lookups leave their query to c-ares, but no longer count
 * against the 64 live lookups c-ares may have: a new lookup goes out at
 * once instead of waiting for c-ares to give the cancelled queries up. */
static void test_cancel_frees_capacity(void **state) {
  (void)state;
  enum { MAX_LIVE = 64 };
  struct dnsfx_responder resp;
  start_dropping_responder(&resp);
  async_loop *loop = dns_loop(resp.servers);
  assert_code(async_dns_set_timeout(loop, 3000, 1), 0);
  static async_future *f[MAX_LIVE];
  static struct rec r[MAX_LIVE];
  memset(r, 0, sizeof r);
  start_dropped(loop, f, r, 0, MAX_LIVE);
  free_cancelled(loop, f, r, MAX_LIVE);
  uint64_t t0 = tu_now_ns();
  async_future *answered = gai(loop, "answered.test", NULL, AF_INET, 0, 0);
  assert_code(tu_wait_future(loop, answered, 5000), 0);
  double elapsed = tu_elapsed_ms(t0);
  print_message("a lookup after %d cancelled ones took %.1f ms\n", MAX_LIVE, elapsed);
  assert_true(has_addr(gai_list(answered), "192.0.2.1"));
  assert_code(async_future_free(answered), 0);
  assert_true(elapsed < 1000.0); /* not c-ares' 3 s timeout */
  assert_int_equal(dnsfx_responder_queries(&resp, DNSFX_TYPE_A), MAX_LIVE + 1);
  finish(loop);
  dnsfx_responder_stop(&resp);
}

/* Abandoned queries do not pile up: at most 128 lookups (live or
 * abandoned) are inside c-ares; past that, new lookups wait in libasync
 * (cancelled there, they are never sent) until c-ares gives abandoned
 * queries up at its own timeout. */
static void test_abandoned_queries_bounded(void **state) {
  (void)state;
  enum { ROUND = 64, ROUNDS = 4, MAX_IN_ARES = 128, TIMEOUT_MS = 1000 };
  struct dnsfx_responder resp;
  start_dropping_responder(&resp);
  async_loop *loop = dns_loop(resp.servers);
  assert_code(async_dns_set_timeout(loop, TIMEOUT_MS, 1), 0);
  static async_future *f[ROUND];
  static struct rec r[ROUND];
  uint64_t t0 = tu_now_ns();
  for (int round = 0; round < ROUNDS; round++) {
    memset(r, 0, sizeof r);
    start_dropped(loop, f, r, round * ROUND, ROUND);
    free_cancelled(loop, f, r, ROUND);
  }
  /* A new lookup waits for c-ares to give the abandoned ones up. */
  async_future *answered = gai(loop, "answered.test", NULL, AF_INET, 0, 0);
  spin_nowait(loop, 1);
  tu_sleep_ms(50);
  assert_true(tu_elapsed_ms(t0) < TIMEOUT_MS); /* else c-ares may have retired some */
  assert_int_equal(dnsfx_responder_queries(&resp, DNSFX_TYPE_A), MAX_IN_ARES);
  assert_int_equal(async_future_get_state(answered), ASYNC_FUTURE_PENDING);
  assert_code(tu_wait_future(loop, answered, 5000), 0);
  double elapsed = tu_elapsed_ms(t0);
  assert_code(async_future_free(answered), 0);
  assert_true(elapsed >= TIMEOUT_MS && elapsed < 3 * TIMEOUT_MS);
  assert_int_equal(dnsfx_responder_queries(&resp, DNSFX_TYPE_A), MAX_IN_ARES + 1);
  finish(loop);
  dnsfx_responder_stop(&resp);
}

/* The fd table of the process, filled up to a lowered soft limit. */
struct fd_fill {
  struct rlimit saved;
  int n;
  int fds[256];
};

/* Lowers the soft RLIMIT_NOFILE to 256 and opens /dev/null until EMFILE. */
static void fill_fds(struct fd_fill *ff) {
  assert_int_equal(getrlimit(RLIMIT_NOFILE, &ff->saved), 0);
  struct rlimit low = ff->saved;
  if (low.rlim_cur > 256) {
    low.rlim_cur = 256;
  }
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
  for (ff->n = 0; ff->n < 256; ff->n++) {
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      assert_int_equal(errno, EMFILE);
      return;
    }
    ff->fds[ff->n] = fd;
  }
  fail_msg("no EMFILE after 256 descriptors");
}

/* Closes what fill_fds() opened and restores the limit. */
static void release_fds(struct fd_fill *ff) {
  for (int i = 0; i < ff->n; i++) {
    close(ff->fds[i]);
  }
  ff->n = 0;
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &ff->saved), 0);
}

/* c-ares cannot open its socket because the process is out of fds: the
 * lookup fails at once with ASYNC_EMFILE, not as a refusal by the server;
 * once fds are back, lookups work again. */
static void test_out_of_fds(void **state) {
  (void)state;
  struct dnsfx_responder resp;
  start_dropping_responder(&resp);
  async_loop *loop = dns_loop(resp.servers);
  assert_code(async_dns_set_timeout(loop, 300, 2), 0);
  /* The channel exists (resolv.conf read); its socket closed again. */
  async_future *f = resolve_ok(loop, "warm.test", NULL, AF_INET, 0, 0);
  assert_code(async_future_free(f), 0);
  static struct fd_fill ff;
  fill_fds(&ff);
  uint64_t t0 = tu_now_ns();
  int rc = async_getaddrinfo(&f, loop, "nofds.test", NULL, AF_INET, 0, 0);
  int status = rc == 0 ? tu_wait_future(loop, f, 3000) : rc;
  double elapsed = tu_elapsed_ms(t0);
  release_fds(&ff);
  assert_code(rc, 0);
  assert_code(status, ASYNC_EMFILE);
  assert_true(elapsed < 250.0);
  assert_code(async_future_free(f), 0);
  f = resolve_ok(loop, "again.test", NULL, AF_INET, 0, 0);
  assert_code(async_future_free(f), 0);
  finish(loop);
  dnsfx_responder_stop(&resp);
}

/* A server answering SERVFAIL (the blackhole, answering by hand). */
static void test_server_failure(void **state) {
  (void)state;
  struct dnsfx_hole h;
  assert_int_equal(dnsfx_blackhole_open(&h), 0);
  h.rcode = 2; /* SERVFAIL */
  async_loop *loop = dns_loop(dnsfx_blackhole_servers(&h));
  assert_code(async_dns_set_deadline(loop, 5000), 0);
  struct rec r = {0};
  async_future *f = gai(loop, "dual.test", NULL, AF_INET, 0, 0);
  add_rec(f, &r);
  /* The query left inside async_getaddrinfo: answer it, then let the loop read. */
  assert_int_equal(dnsfx_blackhole_reply(&h, DNSFX_TYPE_A, 1, 2000), 1);
  assert_code(tu_wait_future(loop, f, 2000), ASYNC_ESERVFAIL);
  spin_nowait(loop, 1);
  assert_int_equal(r.calls, 1);
  assert_code(r.status, ASYNC_ESERVFAIL);
  assert_code(async_future_free(f), 0);
  finish(loop);
  dnsfx_blackhole_close(&h);
}

/*
 * One lookup of family (AF_INET: an A query, AF_INET6: an AAAA query)
 * answered by the blackhole with the records `answers` says (dns_fixture.h);
 * returns the status and, on success, the list's only entry as text.
 */
static int lookup_answered_with(int family, int answers, char *text, size_t cap) {
  struct dnsfx_hole h;
  assert_int_equal(dnsfx_blackhole_open(&h), 0);
  h.answers = answers;
  async_loop *loop = dns_loop(dnsfx_blackhole_servers(&h));
  assert_code(async_dns_set_deadline(loop, 5000), 0);
  async_future *f = gai(loop, "answers.test", NULL, family, 0, 0);
  /* The query left inside async_getaddrinfo: answer it, then let the loop read. */
  assert_int_equal(dnsfx_blackhole_reply(&h, family == AF_INET ? DNSFX_TYPE_A : DNSFX_TYPE_AAAA, 1, 2000), 1);
  int rc = tu_wait_future(loop, f, 2000);
  text[0] = '\0';
  if (rc == 0) {
    const async_addrinfo *list = gai_list(f);
    assert_int_equal(async_addrinfo_count(list), 1);
    int port = -1;
    assert_int_equal(entry(list, 0, text, cap, &port), family);
  }
  assert_code(async_future_free(f), 0);
  finish(loop);
  dnsfx_blackhole_close(&h);
  return rc;
}

/* An answer may carry records of the other address type (c-ares passes an
 * AAAA record answering an A query on): a lookup keeps the entries of the
 * family asked only, and with none of them fails with ASYNC_ENODATA, as
 * for a name without an address of that family. Both directions. */
static void test_answer_of_other_family(void **state) {
  (void)state;
  char text[INET6_ADDRSTRLEN];
  assert_code(lookup_answered_with(AF_INET, DNSFX_ANSWER_ASKED, text, sizeof text), 0);
  assert_string_equal(text, "192.0.2.20");
  assert_code(lookup_answered_with(AF_INET, DNSFX_ANSWER_OTHER, text, sizeof text), ASYNC_ENODATA);
  assert_code(lookup_answered_with(AF_INET, DNSFX_ANSWER_BOTH, text, sizeof text), 0);
  assert_string_equal(text, "192.0.2.20");
  assert_code(lookup_answered_with(AF_INET6, DNSFX_ANSWER_ASKED, text, sizeof text), 0);
  assert_string_equal(text, "2001:db8::20");
  assert_code(lookup_answered_with(AF_INET6, DNSFX_ANSWER_OTHER, text, sizeof text), ASYNC_ENODATA);
  assert_code(lookup_answered_with(AF_INET6, DNSFX_ANSWER_BOTH, text, sizeof text), 0);
  assert_string_equal(text, "2001:db8::20");
}

static void test_cancel_after_one_family(void **state) {
  (void)state;
  struct dnsfx_hole h;
  assert_int_equal(dnsfx_blackhole_open(&h), 0);
  async_loop *loop = dns_loop(dnsfx_blackhole_servers(&h));
  assert_code(async_dns_set_timeout(loop, 500, 1), 0);
  assert_code(async_dns_set_deadline(loop, 5000), 0);
  struct rec r = {0};
  async_future *f = gai(loop, "dual.test", "80", AF_UNSPEC, 0, 0);
  add_rec(f, &r);
  /* Let the queries go out; answer the first family asked (and only it). */
  int answered = 0;
  for (int i = 0; i < 100 && answered == 0; i++) {
    spin_nowait(loop, 1);
    answered = dnsfx_blackhole_reply(&h, 0, 1, 10);
    assert_true(answered >= 0);
  }
  assert_int_equal(answered, 1);
  /* Process the answer: the lookup waits for the other family. */
  tu_sleep_ms(20);
  spin_nowait(loop, 3);
  assert_int_equal(async_future_get_state(f), ASYNC_FUTURE_PENDING);
  assert_int_equal(r.calls, 0);
  /* The other family's query was sent (and dropped by the blackhole). */
  assert_true(dnsfx_blackhole_count(&h) >= 2);
  assert_int_equal(async_future_cancel(f), 1);
  assert_code(async_future_result(NULL, f), ASYNC_ECANCELED);
  /* Run past c-ares' own timeout for the dropped query: nothing changes. */
  uint64_t t0 = tu_now_ns();
  while (tu_elapsed_ms(t0) < 800) {
    spin_nowait(loop, 1);
    tu_sleep_ms(10);
  }
  assert_int_equal(r.calls, 1);
  assert_code(r.status, ASYNC_ECANCELED);
  assert_int_equal(r.state, ASYNC_FUTURE_CANCELLED);
  assert_int_equal(async_future_get_state(f), ASYNC_FUTURE_CANCELLED);
  void *v = (void *)0x1;
  assert_code(async_future_result(&v, f), ASYNC_ECANCELED);
  assert_code(async_future_free(f), 0);
  finish(loop);
  dnsfx_blackhole_close(&h);
}

static void test_cancel_one_of_two(void **state) {
  (void)state;
  async_loop *loop = fx_loop();
  struct rec r1 = {0}, r2 = {0};
  async_future *f1 = gai(loop, "dual.test", NULL, AF_UNSPEC, 0, 0);
  async_future *f2 = gai(loop, "v4only.test", "25", AF_INET, SOCK_STREAM, 0);
  add_rec(f1, &r1);
  add_rec(f2, &r2);
  assert_int_equal(async_future_cancel(f1), 1);
  assert_code(tu_wait_future(loop, f2, 5000), 0);
  spin_nowait(loop, 2);
  assert_int_equal(r1.calls, 1);
  assert_code(r1.status, ASYNC_ECANCELED);
  assert_int_equal(r2.calls, 1);
  assert_code(r2.status, 0);
  assert_int_equal(r2.count, 1);
  assert_true(has_addr(gai_list(f2), "192.0.2.10"));
  check_entries(gai_list(f2), SOCK_STREAM, IPPROTO_TCP, 25);
  assert_code(async_future_free(f1), 0);
  assert_code(async_future_free(f2), 0);

  /* Same, cancelling the second one. */
  struct rec r3 = {0}, r4 = {0};
  async_future *f3 = gai(loop, "many.test", NULL, AF_UNSPEC, 0, 0);
  async_future *f4 = gai(loop, "rec.test", NULL, AF_UNSPEC, 0, 0);
  add_rec(f3, &r3);
  add_rec(f4, &r4);
  assert_int_equal(async_future_cancel(f4), 1);
  assert_code(tu_wait_future(loop, f3, 5000), 0);
  spin_nowait(loop, 2);
  assert_int_equal(r3.calls, 1);
  assert_int_equal(r3.count, 6);
  assert_int_equal(r4.calls, 1);
  assert_code(r4.status, ASYNC_ECANCELED);
  assert_code(async_future_free(f3), 0);
  assert_code(async_future_free(f4), 0);
  finish(loop);
}

static void test_free_pending_future(void **state) {
  (void)state;
  async_loop *loop = fx_loop();
  struct rec r = {0};
  async_future *f = gai(loop, "dual.test", NULL, AF_UNSPEC, 0, 0);
  add_rec(f, &r);
  assert_code(async_future_free(f), 0); /* cancels it */
  assert_int_equal(r.calls, 0);
  for (int i = 0; i < 10; i++) {
    spin_nowait(loop, 1);
    tu_sleep_ms(10);
  }
  assert_int_equal(r.calls, 1);
  assert_code(r.status, ASYNC_ECANCELED);
  /* A pending future freed without callbacks. */
  f = gai(loop, "many.test", NULL, AF_UNSPEC, 0, 0);
  assert_code(async_future_free(f), 0);
  /* The loop keeps working. */
  f = resolve_ok(loop, "dual.test", NULL, AF_INET, 0, 0);
  assert_code(async_future_free(f), 0);
  finish(loop);
}

static void test_free_from_callback(void **state) {
  (void)state;
  /* A numeric lookup's callback frees a lookup still in flight (to a
   * silent server) and its own future; then the loop can be freed. */
  struct dnsfx_hole h;
  assert_int_equal(dnsfx_blackhole_open(&h), 0);
  async_loop *loop = dns_loop(dnsfx_blackhole_servers(&h));
  struct rec rb = {0};
  async_future *slow = gai(loop, "dual.test", NULL, AF_UNSPEC, 0, 0);
  add_rec(slow, &rb);
  struct rec ra = {0};
  ra.free_other = slow;
  ra.free_self = 1;
  async_future *quick = gai(loop, "192.0.2.1", NULL, AF_INET, 0, 0);
  add_rec(quick, &ra);
  uint64_t t0 = tu_now_ns();
  while (ra.calls == 0 && tu_elapsed_ms(t0) < 2000) {
    assert_true(async_loop_run(loop, ASYNC_RUN_ONCE) >= 0);
  }
  assert_int_equal(ra.calls, 1);
  assert_code(ra.status, 0);
  spin_nowait(loop, 2);
  assert_int_equal(rb.calls, 1);
  assert_code(rb.status, ASYNC_ECANCELED);
  finish(loop);
  dnsfx_blackhole_close(&h);
}

/* ------------------------------------------------------------------------ */
/* Freeing the loop with lookups in flight                                  */
/* ------------------------------------------------------------------------ */

static void test_loop_free_with_lookups(void **state) {
  (void)state;
  struct dnsfx_hole h;
  assert_int_equal(dnsfx_blackhole_open(&h), 0);
  async_loop *loop = dns_loop(dnsfx_blackhole_servers(&h));
  async_future *f[4];
  f[0] = gai(loop, "dual.test", NULL, AF_UNSPEC, 0, 0);
  f[1] = gai(loop, "many.test", "80", AF_INET, SOCK_STREAM, 0);
  f[2] = gai(loop, "unknown.test", NULL, AF_INET6, 0, 0);
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_port = htons(80);
  inet_pton(AF_INET, "192.0.2.20", &sin.sin_addr);
  assert_code(async_getnameinfo(&f[3], loop, (struct sockaddr *)&sin, sizeof sin, 0), 0);
  spin_nowait(loop, 2); /* the queries go out */
  assert_true(dnsfx_blackhole_count(&h) >= 3);
  for (int i = 0; i < 4; i++) {
    assert_int_equal(async_future_get_state(f[i]), ASYNC_FUTURE_PENDING);
  }
  assert_code(async_loop_free(loop), ASYNC_EBUSY);
  for (int i = 0; i < 4; i++) {
    assert_code(async_future_free(f[i]), 0);
  }
  /* At once, without running the loop again. */
  assert_code(async_loop_free(loop), 0);
  dnsfx_blackhole_close(&h);
}

/* dns.h's sequence with done callbacks: freeing the futures cancels the
 * lookups and queues their callbacks, which keep the loop busy; one
 * non-blocking run delivers them (ASYNC_ECANCELED), then the loop frees.
 * Lookups of every state: sent, waiting beyond the 64 in c-ares, known at
 * once (numeric: one delivered, one not yet), reverse. */
static void test_loop_free_with_callbacks(void **state) {
  (void)state;
  enum { N = 80, ALL = N + 3 };
  struct dnsfx_hole h;
  assert_int_equal(dnsfx_blackhole_open(&h), 0);
  async_loop *loop = dns_loop(dnsfx_blackhole_servers(&h));
  static async_future *f[ALL];
  static struct rec r[ALL];
  memset(r, 0, sizeof r);
  for (int i = 0; i < N; i++) {
    char name[32];
    snprintf(name, sizeof name, "n%d.test", i);
    f[i] = gai(loop, name, NULL, AF_UNSPEC, 0, 0);
  }
  f[N] = gai(loop, "192.0.2.1", "80", AF_INET, 0, 0);
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  inet_pton(AF_INET, "192.0.2.20", &sin.sin_addr);
  assert_code(async_getnameinfo(&f[N + 1], loop, (struct sockaddr *)&sin, sizeof sin, 0), 0);
  for (int i = 0; i < N + 2; i++) {
    add_rec(f[i], &r[i]);
  }
  spin_nowait(loop, 1);
  f[N + 2] = gai(loop, "192.0.2.2", "80", AF_INET, 0, 0);
  add_rec(f[N + 2], &r[N + 2]);
  for (int i = 0; i < ALL; i++) {
    assert_int_equal(async_future_get_state(f[i]), i == N ? ASYNC_FUTURE_DONE : ASYNC_FUTURE_PENDING);
    assert_code(async_future_free(f[i]), 0);
  }
  /* The callbacks are queued, not run: the loop is busy. */
  assert_code(async_loop_free(loop), ASYNC_EBUSY);
  assert_int_equal(r[0].calls, 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_NOWAIT), 0);
  for (int i = 0; i < ALL; i++) {
    assert_int_equal(r[i].calls, 1);
    assert_code(r[i].status, i == N ? 0 : ASYNC_ECANCELED);
  }
  assert_code(async_loop_free(loop), 0);
  dnsfx_blackhole_close(&h);
}

static void test_loop_free_never_run(void **state) {
  (void)state;
  /* Lookups of every kind, the loop never run: numeric, hosts file, DNS. */
  need_dnsmasq();
  async_loop *loop = dns_loop(dnsfx_servers(&g_fx));
  assert_code(async_dns_set_hosts_file(loop, dnsfx_fixture_path("hosts.txt")), 0);
  async_future *f[4];
  f[0] = gai(loop, "dual.test", NULL, AF_UNSPEC, 0, 0);
  f[1] = gai(loop, "192.0.2.1", "80", AF_UNSPEC, 0, 0);
  f[2] = gai(loop, "fileonly.test", NULL, AF_UNSPEC, 0, 0);
  f[3] = gai(loop, "::1", NULL, AF_INET6, 0, 0);
  assert_code(async_loop_free(loop), ASYNC_EBUSY);
  for (int i = 0; i < 4; i++) {
    assert_code(async_future_free(f[i]), 0);
  }
  int rc = async_loop_free(loop);
  if (rc != 0) {
    print_error("async_loop_free after freeing every future: %s (expected 0 at once, dns.h)\n",
                async_err_name(rc));
    /* Release the loop anyway so the rest of the run is not affected. */
    async_loop_run(loop, ASYNC_RUN_NOWAIT);
    async_loop_run(loop, ASYNC_RUN_NOWAIT);
    async_loop_free(loop);
  }
  assert_code(rc, 0);
}

/* ------------------------------------------------------------------------ */
/* getnameinfo                                                              */
/* ------------------------------------------------------------------------ */

static async_future *gni(async_loop *loop, const struct sockaddr *sa, size_t len, uint32_t flags) {
  async_future *f = NULL;
  assert_code(async_getnameinfo(&f, loop, sa, len, flags), 0);
  assert_non_null(f);
  assert_int_equal(async_future_get_state(f), ASYNC_FUTURE_PENDING);
  return f;
}

/* Waits for getnameinfo future f; on success copies host and service;
 * frees f; returns the status. */
static int nameinfo_wait(async_loop *loop, async_future *f, char *host, char *serv) {
  int rc = tu_wait_future(loop, f, 5000);
  host[0] = serv[0] = '\0';
  if (rc == 0) {
    void *v = NULL;
    assert_code(async_future_result(&v, f), 0);
    assert_non_null(v);
    const char *h = async_nameinfo_host(v);
    const char *s = async_nameinfo_service(v);
    assert_non_null(h);
    assert_non_null(s);
    snprintf(host, 256, "%s", h);
    snprintf(serv, 64, "%s", s);
  }
  assert_code(async_future_free(f), 0);
  return rc;
}

/* Runs a getnameinfo; on success copies host and service; returns the status. */
static int nameinfo(async_loop *loop, const struct sockaddr *sa, size_t len, uint32_t flags, char *host,
                    char *serv) {
  return nameinfo_wait(loop, gni(loop, sa, len, flags), host, serv);
}

static void test_getnameinfo(void **state) {
  (void)state;
  async_loop *loop = fx_loop();
  char host[256], serv[64];
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_port = htons(80);
  inet_pton(AF_INET, "192.0.2.20", &sin.sin_addr);
  const struct sockaddr *sa = (const struct sockaddr *)&sin;

  /* PTR through dnsmasq. */
  assert_code(nameinfo(loop, sa, sizeof sin, ASYNC_NI_NUMERICSERV, host, serv), 0);
  assert_string_equal(host, "dual.test");
  assert_string_equal(serv, "80");
  assert_true(dnsfx_count_queries(&g_fx, "20.2.0.192.in-addr.arpa") >= 1);

  /* Numeric host: no reverse lookup at all. */
  int before = dnsfx_count_queries(&g_fx, "20.2.0.192.in-addr.arpa");
  assert_code(nameinfo(loop, sa, sizeof sin, ASYNC_NI_NUMERICHOST | ASYNC_NI_NUMERICSERV, host, serv), 0);
  assert_string_equal(host, "192.0.2.20");
  assert_string_equal(serv, "80");
  assert_int_equal(dnsfx_count_queries(&g_fx, "20.2.0.192.in-addr.arpa"), before);

  /* Service names (only where /etc/services knows them). */
  assert_code(nameinfo(loop, sa, sizeof sin, ASYNC_NI_NUMERICHOST, host, serv), 0);
  assert_string_equal(host, "192.0.2.20");
  assert_true(strcmp(serv, "http") == 0 || strcmp(serv, "80") == 0);

  /* IPv6 PTR. */
  struct sockaddr_in6 sin6;
  memset(&sin6, 0, sizeof sin6);
  sin6.sin6_family = AF_INET6;
  sin6.sin6_port = htons(443);
  inet_pton(AF_INET6, "2001:db8::20", &sin6.sin6_addr);
  assert_code(nameinfo(loop, (struct sockaddr *)&sin6, sizeof sin6, ASYNC_NI_NUMERICSERV, host, serv), 0);
  assert_string_equal(host, "dual.test");
  assert_string_equal(serv, "443");
  assert_code(nameinfo(loop, (struct sockaddr *)&sin6, sizeof sin6, ASYNC_NI_NUMERICHOST | ASYNC_NI_NUMERICSERV,
                       host, serv),
              0);
  assert_string_equal(host, "2001:db8::20");

  /* An address with no name: the number, or ENOTFOUND with NAMEREQD. */
  inet_pton(AF_INET, "192.0.2.99", &sin.sin_addr);
  assert_code(nameinfo(loop, sa, sizeof sin, ASYNC_NI_NUMERICSERV, host, serv), 0);
  assert_string_equal(host, "192.0.2.99");
  assert_string_equal(serv, "80");
  assert_code(nameinfo(loop, sa, sizeof sin, ASYNC_NI_NAMEREQD | ASYNC_NI_NUMERICSERV, host, serv),
              ASYNC_ENOTFOUND);

  /* NAMEREQD with a name: fine. */
  inet_pton(AF_INET, "192.0.2.60", &sin.sin_addr);
  assert_code(nameinfo(loop, sa, sizeof sin, ASYNC_NI_NAMEREQD, host, serv), 0);
  assert_string_equal(host, "ptr.test");

  /* Cancel a reverse lookup. */
  struct rec r = {0};
  async_future *f = gni(loop, sa, sizeof sin, 0);
  add_rec(f, &r);
  assert_int_equal(async_future_cancel(f), 1);
  spin_nowait(loop, 2);
  assert_int_equal(r.calls, 1);
  assert_code(r.status, ASYNC_ECANCELED);
  assert_code(async_future_free(f), 0);
  finish(loop);
}

/* A getnameinfo whose PTR query the blackhole answers with a PTR record
 * naming the root; returns the status, host and service as nameinfo(). */
static int nameinfo_of_root_ptr(const struct sockaddr *sa, size_t len, uint32_t flags, char *host, char *serv) {
  struct dnsfx_hole h;
  assert_int_equal(dnsfx_blackhole_open(&h), 0);
  async_loop *loop = dns_loop(dnsfx_blackhole_servers(&h));
  assert_code(async_dns_set_deadline(loop, 5000), 0);
  async_future *f = gni(loop, sa, len, flags);
  /* The query left inside async_getnameinfo: answer it, then let the loop read. */
  assert_int_equal(dnsfx_blackhole_reply(&h, DNSFX_TYPE_PTR, 1, 2000), 1);
  int rc = nameinfo_wait(loop, f, host, serv);
  finish(loop);
  dnsfx_blackhole_close(&h);
  return rc;
}

/* A PTR record naming the root (the empty name) names nothing: the
 * address's numeric form, or ASYNC_ENOTFOUND with ASYNC_NI_NAMEREQD, as
 * for an address without a PTR record; never an empty host. */
static void test_getnameinfo_root_name(void **state) {
  (void)state;
  char host[256], serv[64];
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(80)};
  inet_pton(AF_INET, "192.0.2.20", &sin.sin_addr);
  const struct sockaddr *sa = (const struct sockaddr *)&sin;
  assert_code(nameinfo_of_root_ptr(sa, sizeof sin, ASYNC_NI_NUMERICSERV, host, serv), 0);
  assert_string_equal(host, "192.0.2.20");
  assert_string_equal(serv, "80");
  assert_code(nameinfo_of_root_ptr(sa, sizeof sin, ASYNC_NI_NAMEREQD | ASYNC_NI_NUMERICSERV, host, serv),
              ASYNC_ENOTFOUND);

  struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons(443)};
  inet_pton(AF_INET6, "2001:db8::20", &sin6.sin6_addr);
  const struct sockaddr *sa6 = (const struct sockaddr *)&sin6;
  assert_code(nameinfo_of_root_ptr(sa6, sizeof sin6, ASYNC_NI_NUMERICSERV, host, serv), 0);
  assert_string_equal(host, "2001:db8::20");
  assert_string_equal(serv, "443");
  assert_code(nameinfo_of_root_ptr(sa6, sizeof sin6, ASYNC_NI_NAMEREQD | ASYNC_NI_NUMERICSERV, host, serv),
              ASYNC_ENOTFOUND);
}

/* ------------------------------------------------------------------------ */
/* Silent server: the overall deadline, no busy loop                        */
/* ------------------------------------------------------------------------ */

static void test_silent_server_deadline(void **state) {
  (void)state;
  struct dnsfx_hole h;
  assert_int_equal(dnsfx_blackhole_open(&h), 0);
  async_loop *loop = dns_loop(dnsfx_blackhole_servers(&h));
  assert_code(async_dns_set_timeout(loop, 200, 3), 0);
  assert_code(async_dns_set_deadline(loop, 300), 0);
  assert_code(async_loop_now_update(loop), 0);
  uint64_t it0 = tu_iterations(loop);
  uint64_t t0 = tu_now_ns();
  async_future *f = gai(loop, "dual.test", "80", AF_UNSPEC, 0, 0);
  struct rec r = {0};
  add_rec(f, &r);
  int rc = async_loop_run_until(loop, f);
  double ms = tu_elapsed_ms(t0);
  uint64_t iters = tu_iterations(loop) - it0;
  print_message("silent server: %s after %.1f ms, %llu iterations\n", async_err_name(rc), ms,
                (unsigned long long)iters);
  assert_code(rc, ASYNC_ETIMEDOUT);
  assert_int_equal(async_future_get_state(f), ASYNC_FUTURE_FAILED);
  assert_true(ms >= 299.0);
  assert_true(ms < 2000.0);
  assert_true(iters < 50);
  assert_true(dnsfx_blackhole_count(&h) >= 1);
  spin_nowait(loop, 1);
  assert_int_equal(r.calls, 1);
  assert_code(r.status, ASYNC_ETIMEDOUT);
  assert_code(async_future_free(f), 0);

  /* A second lookup after the deadline expired: same outcome. */
  assert_code(resolve_status(loop, "v4only.test", NULL, AF_INET, 0, 0), ASYNC_ETIMEDOUT);
  /* c-ares' own retries (200 + 400 + 800 ms) end quietly afterwards. */
  finish(loop);
  dnsfx_blackhole_close(&h);
}

/* ------------------------------------------------------------------------ */
/* Numeric hosts never reach DNS                                            */
/* ------------------------------------------------------------------------ */

static void test_numeric_no_packet(void **state) {
  (void)state;
  struct dnsfx_hole h;
  assert_int_equal(dnsfx_blackhole_open(&h), 0);
  async_loop *loop = dns_loop(dnsfx_blackhole_servers(&h));
  char text[INET6_ADDRSTRLEN];
  int port = 0;

  static const struct {
    const char *host;
    int family;
    const char *want;
  } cases[] = {
      {"127.0.0.1", AF_UNSPEC, "127.0.0.1"}, {"127.0.0.1", AF_INET, "127.0.0.1"},
      {"::1", AF_UNSPEC, "::1"},             {"::1", AF_INET6, "::1"},
      {"192.0.2.1", AF_UNSPEC, "192.0.2.1"}, {"2001:db8::1", AF_UNSPEC, "2001:db8::1"},
      {"fe80::1%lo", AF_UNSPEC, "fe80::1"},  {"fe80::1%1", AF_INET6, "fe80::1"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    async_future *f = resolve_ok(loop, cases[i].host, "80", cases[i].family, 0, 0);
    const async_addrinfo *list = gai_list(f);
    assert_int_equal(async_addrinfo_count(list), 1);
    entry(list, 0, text, sizeof text, &port);
    assert_string_equal(text, cases[i].want);
    assert_int_equal(port, 80);
    if (strncmp(cases[i].host, "fe80", 4) == 0) {
      const struct sockaddr *sa = NULL;
      int len = async_addrinfo_addr(&sa, list, 0);
      assert_int_equal(((const struct sockaddr_in6 *)sa)->sin6_scope_id, if_nametoindex("lo"));
      char buf[ASYNC_ADDR_STRLEN];
      assert_true(async_addr_format(buf, sizeof buf, sa, (size_t)len, ASYNC_ADDR_NOPORT) > 0);
      assert_string_equal(buf, "fe80::1%lo");
    }
    assert_code(async_future_free(f), 0);
  }
  /* Ports 0 and 65535, ASYNC_DNS_NUMERICHOST / NUMERICSERV. */
  async_future *f = resolve_ok(loop, "192.0.2.1", "0", AF_INET, SOCK_DGRAM, ASYNC_DNS_NUMERICHOST);
  check_entries(gai_list(f), SOCK_DGRAM, IPPROTO_UDP, 0);
  assert_code(async_future_free(f), 0);
  f = resolve_ok(loop, "::1", "65535", AF_INET6, SOCK_STREAM, ASYNC_DNS_NUMERICHOST | ASYNC_DNS_NUMERICSERV);
  check_entries(gai_list(f), SOCK_STREAM, IPPROTO_TCP, 65535);
  assert_code(async_future_free(f), 0);
  /* CANONNAME on a literal: the literal itself. */
  f = resolve_ok(loop, "192.0.2.1", NULL, AF_INET, 0, ASYNC_DNS_CANONNAME);
  assert_non_null(async_addrinfo_canonname(gai_list(f)));
  assert_string_equal(async_addrinfo_canonname(gai_list(f)), "192.0.2.1");
  assert_code(async_future_free(f), 0);
  /* host NULL: loopback, or the wildcard with PASSIVE. */
  f = resolve_ok(loop, NULL, "80", AF_INET, 0, 0);
  assert_true(has_addr(gai_list(f), "127.0.0.1"));
  assert_code(async_future_free(f), 0);
  f = resolve_ok(loop, NULL, "80", AF_INET6, 0, 0);
  assert_true(has_addr(gai_list(f), "::1"));
  assert_code(async_future_free(f), 0);
  f = resolve_ok(loop, NULL, "80", AF_INET, SOCK_STREAM, ASYNC_DNS_PASSIVE);
  assert_true(has_addr(gai_list(f), "0.0.0.0"));
  check_entries(gai_list(f), SOCK_STREAM, IPPROTO_TCP, 80);
  assert_code(async_future_free(f), 0);
  f = resolve_ok(loop, NULL, "80", AF_INET6, 0, ASYNC_DNS_PASSIVE);
  assert_true(has_addr(gai_list(f), "::"));
  assert_code(async_future_free(f), 0);
  f = resolve_ok(loop, NULL, "80", AF_UNSPEC, 0, 0);
  int n = async_addrinfo_count(gai_list(f));
  for (int i = 0; i < n; i++) {
    entry(gai_list(f), (size_t)i, text, sizeof text, &port);
    assert_true(strcmp(text, "127.0.0.1") == 0 || strcmp(text, "::1") == 0);
    assert_int_equal(port, 80);
  }
  assert_code(async_future_free(f), 0);
  /* Reverse lookups with NUMERICHOST. */
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_port = htons(8080);
  inet_pton(AF_INET, "192.0.2.5", &sin.sin_addr);
  char host[256], serv[64];
  assert_code(nameinfo(loop, (struct sockaddr *)&sin, sizeof sin, ASYNC_NI_NUMERICHOST | ASYNC_NI_NUMERICSERV,
                       host, serv),
              0);
  assert_string_equal(host, "192.0.2.5");
  assert_string_equal(serv, "8080");

  assert_int_equal(dnsfx_blackhole_count(&h), 0);
  finish(loop);
  dnsfx_blackhole_close(&h);

  /* Same against dnsmasq: it logs no query for the literals. */
  if (g_fx_rc != 0) {
    return;
  }
  loop = dns_loop(dnsfx_servers(&g_fx));
  static const char *const literals[] = {"127.0.0.1", "::1", "192.0.2.1", "fe80::1%lo"};
  for (size_t i = 0; i < sizeof literals / sizeof literals[0]; i++) {
    f = resolve_ok(loop, literals[i], NULL, AF_UNSPEC, 0, 0);
    assert_code(async_future_free(f), 0);
  }
  /* A name in the same run is logged: the log works. */
  f = resolve_ok(loop, "rec.test", NULL, AF_UNSPEC, 0, 0);
  assert_code(async_future_free(f), 0);
  assert_true(dnsfx_count_queries(&g_fx, "rec.test") >= 1);
  for (size_t i = 0; i < sizeof literals / sizeof literals[0]; i++) {
    assert_int_equal(dnsfx_count_queries(&g_fx, literals[i]), 0);
  }
  assert_int_equal(dnsfx_count_queries(&g_fx, "fe80::1"), 0);
  finish(loop);
}

/* ------------------------------------------------------------------------ */
/* Local names never reach DNS                                              */
/* ------------------------------------------------------------------------ */

/* Local names (RFC 6761 §6.3): "localhost" in any case, with or without the
 * root dot, and every name under it are loopback and never asked of DNS,
 * also when the loop's hosts file lists them with another address. Names
 * that only look alike are names: DNS answers them. */
static void test_local_names_no_packet(void **state) {
  (void)state;
  struct dnsfx_hole h;
  assert_int_equal(dnsfx_blackhole_open(&h), 0);
  async_loop *loop = dns_loop(dnsfx_blackhole_servers(&h));
  char text[INET6_ADDRSTRLEN];
  int port = 0;
  static const char *const local[] = {"localhost", "LOCALHOST", "localhost.", "Foo.LocalHost", "a.b.localhost."};
  for (int with_file = 0; with_file < 2; with_file++) {
    assert_code(async_dns_set_hosts_file(loop, with_file ? dnsfx_fixture_path("hosts.txt") : ""), 0);
    for (size_t i = 0; i < sizeof local / sizeof local[0]; i++) {
      async_future *f = resolve_ok(loop, local[i], "80", AF_UNSPEC, SOCK_STREAM, ASYNC_DNS_CANONNAME);
      const async_addrinfo *list = gai_list(f);
      assert_int_equal(async_addrinfo_count(list), 2);
      assert_int_equal(entry(list, 0, text, sizeof text, &port), AF_INET6);
      assert_string_equal(text, "::1");
      assert_int_equal(entry(list, 1, text, sizeof text, &port), AF_INET);
      assert_string_equal(text, "127.0.0.1");
      check_entries(list, SOCK_STREAM, IPPROTO_TCP, 80);
      assert_string_equal(async_addrinfo_canonname(list), local[i]);
      assert_code(async_future_free(f), 0);
      f = resolve_ok(loop, local[i], NULL, AF_INET, 0, 0);
      assert_int_equal(async_addrinfo_count(gai_list(f)), 1);
      assert_true(has_addr(gai_list(f), "127.0.0.1"));
      assert_code(async_future_free(f), 0);
      f = resolve_ok(loop, local[i], NULL, AF_INET6, 0, 0);
      assert_int_equal(async_addrinfo_count(gai_list(f)), 1);
      assert_true(has_addr(gai_list(f), "::1"));
      assert_code(async_future_free(f), 0);
    }
  }
  assert_int_equal(dnsfx_blackhole_count(&h), 0);

  assert_code(async_dns_set_hosts_file(loop, ""), 0);
  static const char *const names[] = {"localhostx", "localhost.example", "xlocalhost"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    async_future *f = gai(loop, names[i], NULL, AF_INET, 0, 0);
    int answered = 0;
    for (int tries = 0; tries < 100 && answered == 0; tries++) {
      spin_nowait(loop, 1);
      answered = dnsfx_blackhole_reply(&h, DNSFX_TYPE_A, 1, 10);
      assert_true(answered >= 0);
    }
    assert_int_equal(answered, 1);
    assert_code(tu_wait_future(loop, f, 5000), 0);
    assert_true(has_addr(gai_list(f), "192.0.2.20"));
    assert_code(async_future_free(f), 0);
  }
  finish(loop);
  dnsfx_blackhole_close(&h);
}

/* ------------------------------------------------------------------------ */
/* The loop's hosts file                                                    */
/* ------------------------------------------------------------------------ */

/* tests/fixtures/hosts-edge.txt: lines of any length (over 5000 bytes with
 * 401 names, 60 names on a short one), tabs, CRLF, comments, blank lines, a
 * 305-byte field (no name), fields with a NUL byte (no name), no final
 * newline; link-local addresses keep
 * their scope id. Names the file does not give go to DNS (dnsmasq answers
 * NXDOMAIN), the others never do. */
static void test_hosts_file_edges(void **state) {
  (void)state;
  async_loop *loop = fx_loop();
  assert_code(async_dns_set_hosts_file(loop, dnsfx_fixture_path("hosts-edge.txt")), 0);
  static const struct {
    const char *name, *addr, *canon;
  } found[] = {
      {"crlf.test", "192.0.2.101", "crlf.test"},
      {"alias-crlf.test", "192.0.2.101", "crlf.test"},
      {"TABS.test", "192.0.2.102", "tabs.test"},
      {"glued.test", "192.0.2.104", "glued.test"},
      {"long-first.test", "192.0.2.105", "long-first.test"},
      {"alias200.test", "192.0.2.105", "long-first.test"},
      {"long-last.test", "192.0.2.105", "long-first.test"},
      {"after-long.test", "192.0.2.106", "after-long.test"},
      {"m01.test", "192.0.2.107", "m01.test"},
      {"m60.test", "192.0.2.107", "m01.test"},
      {"overlong-neighbour.test", "192.0.2.108", "overlong-neighbour.test"},
      {"nul-neighbour.test", "192.0.2.110", "nul-neighbour.test"},
      {"lastline.test", "192.0.2.109", "lastline.test"},
  };
  for (size_t i = 0; i < sizeof found / sizeof found[0]; i++) {
    async_future *f = resolve_ok(loop, found[i].name, "80", AF_UNSPEC, SOCK_STREAM, ASYNC_DNS_CANONNAME);
    const async_addrinfo *list = gai_list(f);
    assert_int_equal(async_addrinfo_count(list), 1);
    assert_true(has_addr(list, found[i].addr));
    check_entries(list, SOCK_STREAM, IPPROTO_TCP, 80);
    assert_string_equal(async_addrinfo_canonname(list), found[i].canon);
    assert_code(async_future_free(f), 0);
    assert_int_equal(dnsfx_count_queries(&g_fx, found[i].name), 0);
  }

  /* Scope ids: an interface name, an index. */
  static const struct {
    const char *name, *text;
  } scoped[] = {{"scoped.test", "fe80::1%lo"}, {"scoped-index.test", "fe80::2"}};
  const unsigned scopes[] = {if_nametoindex("lo"), 1};
  assert_true(scopes[0] > 0);
  for (size_t i = 0; i < 2; i++) {
    async_future *f = resolve_ok(loop, scoped[i].name, "80", AF_INET6, 0, 0);
    const struct sockaddr *sa = NULL;
    int len = async_addrinfo_addr(&sa, gai_list(f), 0);
    assert_int_equal(len, (int)sizeof(struct sockaddr_in6));
    assert_int_equal(((const struct sockaddr_in6 *)sa)->sin6_scope_id, scopes[i]);
    char buf[ASYNC_ADDR_STRLEN];
    assert_true(async_addr_format(buf, sizeof buf, sa, (size_t)len, ASYNC_ADDR_NOPORT) > 0);
    assert_true(strncmp(buf, scoped[i].text, strlen(scoped[i].text)) == 0);
    assert_code(async_future_free(f), 0);
  }

  /* Not in the file: commented out, an unknown interface, a NUL byte. */
  static const char *const absent[] = {"commented.test", "comment-only.test", "glued-comment.test", "badscope.test", "nul-first.test", "nul-inside.test"};
  for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++) {
    assert_code(resolve_status(loop, absent[i], NULL, AF_UNSPEC, 0, 0), ASYNC_ENOTFOUND);
    assert_true(dnsfx_count_queries(&g_fx, absent[i]) >= 1);
  }

  /* Reverse: the first name of the first line with the address. */
  static const struct {
    const char *addr, *name;
  } reverse[] = {{"192.0.2.105", "long-first.test"},
                 {"192.0.2.107", "m01.test"},
                 {"192.0.2.108", "overlong-neighbour.test"},
                 {"192.0.2.110", "nul-neighbour.test"},
                 {"192.0.2.109", "lastline.test"}};
  for (size_t i = 0; i < sizeof reverse / sizeof reverse[0]; i++) {
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    inet_pton(AF_INET, reverse[i].addr, &sin.sin_addr);
    char host[256], serv[64];
    assert_code(nameinfo(loop, (struct sockaddr *)&sin, sizeof sin, ASYNC_NI_NUMERICSERV, host, serv), 0);
    assert_string_equal(host, reverse[i].name);
  }
  finish(loop);
}

/* ------------------------------------------------------------------------ */
/* Configuration                                                            */
/* ------------------------------------------------------------------------ */

static void test_config_busy(void **state) {
  (void)state;
  async_loop *loop = fx_loop();
  struct rec r = {0};
  async_future *f = gai(loop, "dual.test", NULL, AF_UNSPEC, 0, 0);
  add_rec(f, &r);
  assert_code(async_dns_set_servers(loop, "192.0.2.53"), ASYNC_EBUSY);
  assert_code(async_dns_set_servers(loop, NULL), ASYNC_EBUSY);
  assert_code(async_dns_set_timeout(loop, 1000, 2), ASYNC_EBUSY);
  assert_code(async_dns_set_hosts_file(loop, NULL), ASYNC_EBUSY);
  assert_code(async_dns_set_search(loop, "example", 1), ASYNC_EBUSY);
  assert_code(async_dns_set_rotate(loop, 1), ASYNC_EBUSY);
  assert_code(async_dns_set_deadline(loop, 10000), 0); /* allowed */
  /* Nothing was lost or changed: the lookup completes against dnsmasq. */
  assert_code(tu_wait_future(loop, f, 5000), 0);
  assert_int_equal(async_addrinfo_count(gai_list(f)), 2);
  spin_nowait(loop, 1);
  assert_int_equal(r.calls, 1);
  assert_code(async_future_free(f), 0);
  /* Idle now: accepted. */
  assert_code(async_dns_set_timeout(loop, 300, 1), 0);
  assert_code(async_dns_set_rotate(loop, 0), 0);
  assert_code(async_dns_set_search(loop, "", 1), 0);
  assert_code(async_dns_set_hosts_file(loop, ""), 0);
  assert_code(async_dns_set_servers(loop, dnsfx_servers(&g_fx)), 0);

  /* Cancelled lookups do not count as in flight. */
  f = gai(loop, "many.test", NULL, AF_UNSPEC, 0, 0);
  assert_int_equal(async_future_cancel(f), 1);
  assert_code(async_dns_set_servers(loop, dnsfx_servers(&g_fx)), 0);
  assert_code(async_future_free(f), 0);
  f = gai(loop, "many.test", NULL, AF_UNSPEC, 0, 0);
  assert_code(async_future_free(f), 0);
  assert_code(async_dns_set_servers(loop, dnsfx_servers(&g_fx)), 0);

  /* A server list with IPv6 and IPv4 entries, the first one silent. */
  struct dnsfx_hole h;
  assert_int_equal(dnsfx_blackhole_open(&h), 0);
  if (dnsfx_servers6(&g_fx)[0] != '\0') {
    char list[128];
    snprintf(list, sizeof list, "%s,%s", dnsfx_servers6(&g_fx), dnsfx_servers(&g_fx));
    assert_code(async_dns_set_servers(loop, list), 0);
    f = resolve_ok(loop, "rec.test", NULL, AF_UNSPEC, 0, 0);
    assert_true(has_addr(gai_list(f), "192.0.2.30"));
    assert_code(async_future_free(f), 0);
    /* Only IPv6. */
    assert_code(async_dns_set_servers(loop, dnsfx_servers6(&g_fx)), 0);
    f = resolve_ok(loop, "rec.test", NULL, AF_INET6, 0, 0);
    assert_true(has_addr(gai_list(f), "2001:db8::30"));
    assert_code(async_future_free(f), 0);
  }
  {
    char list[128];
    snprintf(list, sizeof list, "%s,%s", dnsfx_blackhole_servers(&h), dnsfx_servers(&g_fx));
    assert_code(async_dns_set_servers(loop, list), 0);
    assert_code(async_dns_set_timeout(loop, 200, 1), 0);
    f = resolve_ok(loop, "rec.test", NULL, AF_INET, 0, 0);
    assert_true(has_addr(gai_list(f), "192.0.2.30"));
    assert_code(async_future_free(f), 0);
    assert_true(dnsfx_blackhole_count(&h) >= 1); /* tried first */
  }
  dnsfx_blackhole_close(&h);
  assert_code(async_dns_set_servers(loop, dnsfx_servers(&g_fx)), 0);
  assert_code(async_dns_set_timeout(loop, 300, 1), 0);

  /* Malformed server lists: EINVAL, configuration unchanged. */
  static const char *const bad[] = {
      "nonsense",          "dns.example",       "127.0.0.1:",       "127.0.0.1:65536",   "127.0.0.1:-1",
      "127.0.0.1:53x",     "1.2.3.4:abc",       "127.0.0.1,",       ",127.0.0.1",        "127.0.0.1,,::1",
      "[::1",              "[::1]:",            "[::1]:99999",      "[127.0.0.1]:53",    " 127.0.0.1",
      "127.0.0.1 ",        "127.0.0.1;::1",     "256.1.1.1",        "[fe80::1%nosuchif0]:53", ",",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int rc = async_dns_set_servers(loop, bad[i]);
    if (rc != ASYNC_EINVAL) {
      print_error("async_dns_set_servers(\"%s\") = %s, want ASYNC_EINVAL\n", bad[i], async_err_name(rc));
    }
    assert_code(rc, ASYNC_EINVAL);
  }
  assert_code(async_dns_set_servers(NULL, "127.0.0.1"), ASYNC_EINVAL);
  assert_code(async_dns_set_timeout(loop, 0, 1), ASYNC_EINVAL);
  assert_code(async_dns_set_timeout(loop, 300, 0), ASYNC_EINVAL);
  assert_code(async_dns_set_timeout(NULL, 300, 1), ASYNC_EINVAL);
  assert_code(async_dns_set_deadline(loop, 0), ASYNC_EINVAL);
  assert_code(async_dns_set_deadline(NULL, 100), ASYNC_EINVAL);
  assert_code(async_dns_set_search(loop, "", 16), ASYNC_EINVAL);
  assert_code(async_dns_set_search(NULL, "", 1), ASYNC_EINVAL);
  assert_code(async_dns_set_hosts_file(NULL, ""), ASYNC_EINVAL);
  assert_code(async_dns_set_rotate(NULL, 1), ASYNC_EINVAL);
  /* The old configuration still works. */
  f = resolve_ok(loop, "dual.test", NULL, AF_UNSPEC, 0, 0);
  assert_int_equal(async_addrinfo_count(gai_list(f)), 2);
  assert_code(async_future_free(f), 0);
  finish(loop);
}

static void test_sequential_lookups(void **state) {
  (void)state;
  /* One after the other on one loop (c-ares sockets come and go, fd numbers
   * are reused), with a configuration change in the middle. */
  async_loop *loop = fx_loop();
  for (int i = 0; i < 40; i++) {
    async_future *f = resolve_ok(loop, i % 2 ? "dual.test" : "rec.test", NULL, AF_UNSPEC, 0, 0);
    assert_int_equal(async_addrinfo_count(gai_list(f)), 2);
    assert_code(async_future_free(f), 0);
    if (i == 20) {
      assert_code(async_dns_set_servers(loop, dnsfx_servers(&g_fx)), 0);
      assert_code(async_dns_set_timeout(loop, 400, 2), 0);
    }
  }
  finish(loop);
}

/* ------------------------------------------------------------------------ */
/* Bad input                                                                */
/* ------------------------------------------------------------------------ */

/* async_getaddrinfo must refuse at once with want; no future is created. */
static void reject(async_loop *loop, const char *host, const char *service, int family, int socktype,
                   uint32_t flags, int want) {
  async_future *f = NULL;
  int rc = async_getaddrinfo(&f, loop, host, service, family, socktype, flags);
  if (rc != want) {
    print_error("async_getaddrinfo(\"%.40s\", %s%s%s, %d, %d, 0x%x) = %s, want %s\n", host ? host : "(null)",
                service ? "\"" : "", service ? service : "NULL", service ? "\"" : "", family, socktype, flags,
                async_err_name(rc), async_err_name(want));
  }
  assert_code(rc, want);
  assert_null(f);
}

/*
 * Inputs dns.h does not place on either side (returned, or through the
 * future): either is accepted, but the code must be one of want1/want2 and
 * never a success.
 */
static void reject_either(async_loop *loop, const char *host, const char *service, int family, int socktype,
                          uint32_t flags, int want1, int want2) {
  async_future *f = NULL;
  int rc = async_getaddrinfo(&f, loop, host, service, family, socktype, flags);
  if (rc == 0) {
    assert_non_null(f);
    rc = tu_wait_future(loop, f, 5000);
    assert_code(async_future_free(f), 0);
  } else {
    assert_null(f);
  }
  if (rc != want1 && rc != want2) {
    print_error("lookup (\"%.40s\", \"%s\", %d, %d, 0x%x) gave %s, want %s or %s\n", host ? host : "(null)",
                service ? service : "NULL", family, socktype, flags, async_err_name(rc), async_err_name(want1),
                async_err_name(want2));
    fail();
  }
}

static void test_bad_input(void **state) {
  (void)state;
  struct dnsfx_hole h;
  assert_int_equal(dnsfx_blackhole_open(&h), 0);
  async_loop *loop = dns_loop(dnsfx_blackhole_servers(&h));
  async_future *f = NULL;

  assert_code(async_getaddrinfo(NULL, loop, "dual.test", NULL, AF_UNSPEC, 0, 0), ASYNC_EINVAL);
  reject(NULL, "dual.test", NULL, AF_UNSPEC, 0, 0, ASYNC_EINVAL);
  reject(loop, NULL, NULL, AF_UNSPEC, 0, 0, ASYNC_EINVAL);
  reject(loop, "", NULL, AF_UNSPEC, 0, 0, ASYNC_EINVAL);
  reject(loop, "", "80", AF_UNSPEC, 0, 0, ASYNC_EINVAL);
  reject(loop, "dual.test", "", AF_UNSPEC, 0, 0, ASYNC_EINVAL);
  reject(loop, NULL, "", AF_UNSPEC, 0, 0, ASYNC_EINVAL);

  /* Over-long host names (> 253 characters). */
  char longname[301];
  for (int i = 0; i < 300; i++) {
    longname[i] = (i % 10 == 9) ? '.' : 'a';
  }
  longname[300] = '\0';
  reject(loop, longname, NULL, AF_UNSPEC, 0, 0, ASYNC_EINVAL);
  longname[254] = '\0'; /* 254 characters */
  if (longname[253] == '.') {
    longname[253] = 'a';
  }
  reject(loop, longname, NULL, AF_UNSPEC, 0, 0, ASYNC_EINVAL);
  /* A long service. */
  char longserv[300];
  memset(longserv, '7', sizeof longserv - 1);
  longserv[sizeof longserv - 1] = '\0';
  reject(loop, "dual.test", longserv, AF_UNSPEC, 0, 0, ASYNC_EINVAL);

  /* A label over 63 characters: a malformed name (EBADNAME per the lookup
   * errors, or EINVAL if refused at once). Nothing must be sent for it. */
  char biglabel[80];
  memset(biglabel, 'b', 64);
  memcpy(biglabel + 64, ".test", 6);
  int holes = dnsfx_blackhole_count(&h);
  reject_either(loop, biglabel, NULL, AF_UNSPEC, 0, 0, ASYNC_EBADNAME, ASYNC_EINVAL);
  reject_either(loop, "a..test", NULL, AF_INET, 0, 0, ASYNC_EBADNAME, ASYNC_EINVAL);
  assert_int_equal(dnsfx_blackhole_count(&h), holes);

  /* Malformed scopes. */
  reject(loop, "fe80::1%", NULL, AF_UNSPEC, 0, 0, ASYNC_EINVAL);
  reject(loop, "fe80::1%nosuchif0", NULL, AF_UNSPEC, 0, 0, ASYNC_EINVAL);
  reject(loop, "fe80::1%nosuchif0", "80", AF_INET6, 0, ASYNC_DNS_NUMERICHOST, ASYNC_EINVAL);

  /* NUMERICHOST with a name. */
  reject(loop, "dual.test", NULL, AF_UNSPEC, 0, ASYNC_DNS_NUMERICHOST, ASYNC_EINVAL);
  reject(loop, "192.0.2.1.5", NULL, AF_UNSPEC, 0, ASYNC_DNS_NUMERICHOST, ASYNC_EINVAL);

  /* Family, socket type, flags. */
  reject(loop, "dual.test", NULL, 12345, 0, 0, ASYNC_EINVAL);
  reject(loop, "dual.test", NULL, AF_UNIX, 0, 0, ASYNC_EINVAL);
  reject(loop, "dual.test", NULL, -1, 0, 0, ASYNC_EINVAL);
  reject(loop, "dual.test", NULL, AF_UNSPEC, SOCK_RAW, 0, ASYNC_EINVAL);
  reject(loop, "dual.test", NULL, AF_UNSPEC, 999, 0, ASYNC_EINVAL);
  reject(loop, "dual.test", NULL, AF_UNSPEC, -1, 0, ASYNC_EINVAL);
  reject(loop, "dual.test", NULL, AF_UNSPEC, 0, 16u, ASYNC_EINVAL);
  reject(loop, "dual.test", NULL, AF_UNSPEC, 0, 0x80000000u, ASYNC_EINVAL);

  /* Ports above 65535, unknown service names, names with NUMERICSERV. */
  reject(loop, "192.0.2.1", "65536", AF_INET, 0, 0, ASYNC_EINVAL);
  reject(loop, "192.0.2.1", "99999999999999999999", AF_INET, 0, 0, ASYNC_EINVAL);
  reject(loop, "192.0.2.1", "-1", AF_INET, 0, 0, ASYNC_EINVAL);
  reject(loop, "192.0.2.1", "no-such-service-xyz", AF_INET, 0, 0, ASYNC_EINVAL);
  reject(loop, "dual.test", "no-such-service-xyz", AF_UNSPEC, SOCK_STREAM, 0, ASYNC_EINVAL);
  reject(loop, "192.0.2.1", "http", AF_INET, 0, ASYNC_DNS_NUMERICSERV, ASYNC_EINVAL);
  reject(loop, "192.0.2.1", "80x", AF_INET, 0, ASYNC_DNS_NUMERICSERV, ASYNC_EINVAL);

  /* getnameinfo. */
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  inet_pton(AF_INET, "192.0.2.20", &sin.sin_addr);
  struct sockaddr_in6 sin6;
  memset(&sin6, 0, sizeof sin6);
  sin6.sin6_family = AF_INET6;
  struct sockaddr_un sun;
  memset(&sun, 0, sizeof sun);
  sun.sun_family = AF_UNIX;
  f = NULL;
  assert_code(async_getnameinfo(&f, loop, NULL, sizeof sin, 0), ASYNC_EINVAL);
  assert_null(f);
  assert_code(async_getnameinfo(&f, loop, (struct sockaddr *)&sin, 3, 0), ASYNC_EINVAL);
  assert_null(f);
  assert_code(async_getnameinfo(&f, loop, (struct sockaddr *)&sin, sizeof sin - 1, 0), ASYNC_EINVAL);
  assert_null(f);
  assert_code(async_getnameinfo(&f, loop, (struct sockaddr *)&sin6, sizeof sin6 - 1, 0), ASYNC_EINVAL);
  assert_null(f);
  assert_code(async_getnameinfo(&f, loop, (struct sockaddr *)&sun, sizeof sun, 0), ASYNC_EINVAL);
  assert_null(f);
  assert_code(async_getnameinfo(&f, loop, (struct sockaddr *)&sin, sizeof sin, 1u << 10), ASYNC_EINVAL);
  assert_null(f);
  assert_code(async_getnameinfo(&f, NULL, (struct sockaddr *)&sin, sizeof sin, 0), ASYNC_EINVAL);
  assert_null(f);
  assert_code(async_getnameinfo(NULL, loop, (struct sockaddr *)&sin, sizeof sin, 0), ASYNC_EINVAL);

  /* Nothing reached the network; the loop keeps working. */
  assert_int_equal(dnsfx_blackhole_count(&h), holes);
  finish(loop);
  dnsfx_blackhole_close(&h);
  if (g_fx_rc == 0) {
    loop = fx_loop();
    f = resolve_ok(loop, "dual.test", "80", AF_UNSPEC, 0, 0);
    assert_int_equal(async_addrinfo_count(gai_list(f)), 2);
    assert_code(async_future_free(f), 0);
    finish(loop);
  }
}

/* ------------------------------------------------------------------------ */
/* Error strings; one thread                                                */
/* ------------------------------------------------------------------------ */

static void test_error_strings(void **state) {
  (void)state;
  static const int codes[] = {ASYNC_EINVAL,   ASYNC_ENOMEM,    ASYNC_EBUSY,    ASYNC_ECLOSED,
                              ASYNC_ECANCELED, ASYNC_ETIMEDOUT, ASYNC_ESTATE,   ASYNC_ERANGE,
                              ASYNC_ENOTFOUND, ASYNC_ENODATA,   ASYNC_EREFUSED, ASYNC_ESERVFAIL,
                              ASYNC_EBADNAME};
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
    const char *s = async_strerror(codes[i]);
    assert_non_null(s);
    assert_true(s[0] != '\0');
    assert_string_not_equal(s, "unknown error");
    assert_string_not_equal(async_err_name(codes[i]), "ASYNC_UNKNOWN");
  }
  /* The DNS codes are distinct texts. */
  assert_string_not_equal(async_strerror(ASYNC_ENOTFOUND), async_strerror(ASYNC_ENODATA));
  assert_string_not_equal(async_strerror(ASYNC_ENOTFOUND), async_strerror(ASYNC_EREFUSED));
  assert_string_not_equal(async_strerror(ASYNC_EREFUSED), async_strerror(ASYNC_ESERVFAIL));
}

/* The "Threads:" line of /proc/self/status, e.g. "Threads:\t1". */
static void read_threads_line(char *out, size_t size) {
  FILE *fp = fopen("/proc/self/status", "r");
  assert_non_null(fp);
  char line[256];
  out[0] = '\0';
  while (fgets(line, sizeof line, fp) != NULL) {
    if (strncmp(line, "Threads:", 8) == 0) {
      line[strcspn(line, "\n")] = '\0';
      snprintf(out, size, "%s", line);
      break;
    }
  }
  fclose(fp);
}

static void test_one_thread(void **state) {
  (void)state;
  /* Run after every other test (all lookups done); one more for good measure. */
  if (g_fx_rc == 0) {
    async_loop *loop = fx_loop();
    async_future *f = resolve_ok(loop, "many.test", NULL, AF_UNSPEC, 0, 0);
    assert_code(async_future_free(f), 0);
    char line[256];
    read_threads_line(line, sizeof line);
    assert_string_equal(line, "Threads:\t1");
    finish(loop);
  }
  char line[256];
  read_threads_line(line, sizeof line);
  assert_string_equal(line, "Threads:\t1");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_a_record),
      cmocka_unit_test(test_aaaa_record),
      cmocka_unit_test(test_unspec_both_families),
      cmocka_unit_test(test_cname_chain),
      cmocka_unit_test(test_lookup_errors),
      cmocka_unit_test(test_take_and_free),
      cmocka_unit_test(test_thousand_in_flight),
      cmocka_unit_test(test_never_inside_call),
      cmocka_unit_test(test_cares_env_hosts),
      cmocka_unit_test(test_cancel_at_once),
      cmocka_unit_test(test_cancel_before_send),
      cmocka_unit_test(test_cancel_frees_capacity),
      cmocka_unit_test(test_abandoned_queries_bounded),
      cmocka_unit_test(test_out_of_fds),
      cmocka_unit_test(test_server_failure),
      cmocka_unit_test(test_answer_of_other_family),
      cmocka_unit_test(test_cancel_after_one_family),
      cmocka_unit_test(test_cancel_one_of_two),
      cmocka_unit_test(test_free_pending_future),
      cmocka_unit_test(test_free_from_callback),
      cmocka_unit_test(test_loop_free_with_lookups),
      cmocka_unit_test(test_loop_free_with_callbacks),
      cmocka_unit_test(test_loop_free_never_run),
      cmocka_unit_test(test_getnameinfo),
      cmocka_unit_test(test_getnameinfo_root_name),
      cmocka_unit_test(test_silent_server_deadline),
      cmocka_unit_test(test_numeric_no_packet),
      cmocka_unit_test(test_local_names_no_packet),
      cmocka_unit_test(test_hosts_file_edges),
      cmocka_unit_test(test_config_busy),
      cmocka_unit_test(test_sequential_lookups),
      cmocka_unit_test(test_bad_input),
      cmocka_unit_test(test_error_strings),
      cmocka_unit_test(test_one_thread),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
