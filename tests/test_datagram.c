/*
 * async_datagram: the datagram transport contract of async/datagram.h
 * (DESIGN.md §7; asyncio-semantics.md §5).
 *
 * Transports are opened over UDP on loopback (v4 and v6), over Unix
 * datagram sockets (paths, abstract names, socketpairs) and adopted
 * sockets (netlink). A recording protocol (struct rec) logs every callback
 * in order with the checks every transport must pass (connection_made
 * first, connection_lost once and last, release after it, nothing inside
 * a library call but pause_writing, nothing outside async_loop_run); it
 * keeps the datagrams and errors it got, may echo datagrams back, and an
 * optional hook acts from inside any callback. Callbacks never assert (a
 * cmocka failure would longjmp through the library): they record, the
 * test checks afterwards. Every run is bounded (loop_env.h).
 */
#include "test_util.h"
#include "loop_env.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

/* ------------------------------------------------------------------ */
/* The recording protocol                                              */

enum ev { EV_NONE, EV_MADE, EV_DGRAM, EV_ERROR, EV_LOST, EV_PAUSE, EV_RESUME, EV_RELEASE, EV_COUNT };
static const char *const ev_name[EV_COUNT] = {"?", "made", "dgram", "error", "lost", "pause", "resume", "release"};

#define MAXEV 512
#define MAXDG 128
#define DGCAP 64

struct rec;
typedef void (*rec_hook_fn)(struct rec *r, async_datagram *d, int ev);

struct rec {
  async_loop *loop;
  async_datagram *d;
  /* events */
  int ev[MAXEV];
  size_t wbuf[MAXEV]; /* send queue size at the event */
  int nev;
  int count[EV_COUNT];
  int last_ev;
  /* datagrams */
  size_t len[MAXDG];
  uint8_t data[MAXDG][DGCAP];
  struct sockaddr_storage from[MAXDG];
  size_t fromlen[MAXDG];
  /* errors */
  int err[MAXDG];
  int lost_err;
  /* behaviour */
  int echo; /* send each datagram back to its sender */
  int echo_rc;
  rec_hook_fn hook;
  void *arg;
  int hook_rc;
  /* checks */
  int bad;
  char badmsg[256];
};

static void rec_init(struct rec *r) { memset(r, 0, sizeof *r); }

static void rec_bad(struct rec *r, const char *fmt, const char *arg) {
  if (!r->bad) {
    snprintf(r->badmsg, sizeof r->badmsg, fmt, arg);
  }
  r->bad++;
}

static void rec_event(struct rec *r, async_datagram *d, int ev) {
  if (r->count[EV_RELEASE] > 0) {
    rec_bad(r, "%s after release", ev_name[ev]);
  } else if (r->count[EV_LOST] > 0 && ev != EV_RELEASE) {
    rec_bad(r, "%s after connection_lost", ev_name[ev]);
  }
  if (ev == EV_MADE ? r->nev > 0 : r->nev == 0) {
    rec_bad(r, "%s: connection_made not first (or twice)", ev_name[ev]);
  }
  if (ev == EV_LOST && r->count[EV_LOST] > 0) {
    rec_bad(r, "%s twice", ev_name[ev]);
  }
  if (ev != EV_RELEASE && r->d && d != r->d) {
    rec_bad(r, "%s: wrong transport pointer", ev_name[ev]);
  }
  int may_be_inside = ev == EV_PAUSE || ev == EV_RELEASE;
  if (!may_be_inside && g_depth > 0) {
    rec_bad(r, "%s ran inside a library call", ev_name[ev]);
  }
  if (!may_be_inside && g_in_run == 0) {
    rec_bad(r, "%s ran outside async_loop_run", ev_name[ev]);
  }
  if (r->nev < MAXEV) {
    size_t b = (size_t)-1;
    if (ev != EV_RELEASE) {
      async_datagram_write_buffer_size(&b, d);
    }
    r->ev[r->nev] = ev;
    r->wbuf[r->nev] = b;
  }
  r->nev++;
  r->count[ev]++;
  r->last_ev = ev;
}

/* Records ev and runs the hook: the body of most callbacks. */
static void rec_on(struct rec *r, async_datagram *d, int ev) {
  rec_event(r, d, ev);
  if (r->hook) {
    r->hook(r, d, ev);
  }
}

static void rec_made(async_datagram *d, void *ud) { rec_on(ud, d, EV_MADE); }
static void rec_pause(async_datagram *d, void *ud) { rec_on(ud, d, EV_PAUSE); }
static void rec_resume(async_datagram *d, void *ud) { rec_on(ud, d, EV_RESUME); }

static void rec_dgram(async_datagram *d, const uint8_t *data, size_t len, const struct sockaddr *addr,
                      size_t addrlen, void *ud) {
  struct rec *r = ud;
  int i = r->count[EV_DGRAM];
  if (!data) {
    rec_bad(r, "%s", "NULL data");
  }
  if ((addr == NULL) != (addrlen == 0) || addrlen > sizeof(struct sockaddr_storage)) {
    rec_bad(r, "%s", "address and length disagree");
  }
  if (i < MAXDG) {
    r->len[i] = len;
    memcpy(r->data[i], data, len < DGCAP ? len : DGCAP);
    r->fromlen[i] = addrlen;
    if (addr) {
      memcpy(&r->from[i], addr, addrlen);
    }
  }
  if (r->echo) {
    int rc = LIB(async_datagram_send(d, data, len, addr, addrlen));
    if (rc != 0) {
      r->echo_rc = rc;
    }
  }
  rec_on(r, d, EV_DGRAM);
}

static void rec_error(async_datagram *d, int err, void *ud) {
  struct rec *r = ud;
  if (r->count[EV_ERROR] < MAXDG) {
    r->err[r->count[EV_ERROR]] = err;
  }
  rec_on(r, d, EV_ERROR);
}

static void rec_lost(async_datagram *d, int err, void *ud) {
  struct rec *r = ud;
  r->lost_err = err;
  rec_on(r, d, EV_LOST);
}

static void rec_release(void *ud) {
  struct rec *r = ud;
  if (r->count[EV_LOST] == 0) {
    rec_bad(r, "%s", "release before connection_lost");
  }
  rec_event(r, NULL, EV_RELEASE);
}

static async_datagram_protocol rec_proto(void) {
  async_datagram_protocol p = ASYNC_DATAGRAM_PROTOCOL_INIT;
  p.connection_made = rec_made;
  p.datagram_received = rec_dgram;
  p.error_received = rec_error;
  p.connection_lost = rec_lost;
  p.pause_writing = rec_pause;
  p.resume_writing = rec_resume;
  p.release = rec_release;
  return p;
}

static void rec_dump(const struct rec *r) {
  char line[2048];
  size_t off = 0;
  int n = r->nev < MAXEV ? r->nev : MAXEV;
  off += (size_t)snprintf(line + off, sizeof line - off, "events(%d):", r->nev);
  for (int i = 0; i < n && off < sizeof line - 40; i++) {
    off += (size_t)snprintf(line + off, sizeof line - off, " %s", ev_name[r->ev[i]]);
    if (r->ev[i] == EV_ERROR) {
      int k = 0;
      for (int j = 0; j < i; j++) {
        k += r->ev[j] == EV_ERROR;
      }
      off += (size_t)snprintf(line + off, sizeof line - off, "(%s)", k < MAXDG ? async_err_name(r->err[k]) : "?");
    }
  }
  print_message("%s; lost_err %s; bad: %s\n", line, async_err_name(r->lost_err), r->bad ? r->badmsg : "-");
}

static void rec_check(const struct rec *r) {
  if (r->bad) {
    rec_dump(r);
    fail_msg("%s", r->badmsg);
  }
}

/* The transport ended: lost(err) once, then release once, both last. */
static void rec_assert_end(const struct rec *r, int err) {
  rec_check(r);
  if (r->count[EV_LOST] != 1 || r->count[EV_RELEASE] != 1 || r->lost_err != err || r->last_ev != EV_RELEASE) {
    rec_dump(r);
    fail_msg("want connection_lost(%s) then release; got lost x%d (%s), release x%d", async_err_name(err),
             r->count[EV_LOST], async_err_name(r->lost_err), r->count[EV_RELEASE]);
  }
}

/* Events (in order) must be exactly the list given (EV_NONE-terminated). */
static void rec_assert_seq(const struct rec *r, const int *want) {
  int k = 0;
  while (want[k] != EV_NONE) {
    k++;
  }
  int ok = r->nev == k;
  for (int i = 0; ok && i < k; i++) {
    ok = r->ev[i] == want[i];
  }
  if (!ok) {
    rec_dump(r);
    fail_msg("events differ from the expected sequence (%d wanted)", k);
  }
}

static int c_made(void *arg) { return ((struct rec *)arg)->count[EV_MADE] > 0; }
static int c_released(void *arg) { return ((struct rec *)arg)->count[EV_RELEASE] > 0; }

struct want_n {
  struct rec *r;
  int ev;
  int n;
};
static int c_count(void *arg) {
  struct want_n *w = arg;
  return w->r->count[w->ev] >= w->n;
}

/* Runs until r saw n events of kind ev; fails the test after 3 s. */
static void wait_count(struct env *e, struct rec *r, int ev, int n) {
  struct want_n w = {r, ev, n};
  if (!run_until(e, c_count, &w, NULL, NULL, 3000)) {
    rec_dump(r);
    fail_msg("waited 3 s for %d x %s, got %d", n, ev_name[ev], r->count[ev]);
  }
}

/* Closes d (from outside callbacks) and runs until its release. */
static void close_and_wait(struct env *e, struct rec *r) {
  assert_int_equal(LIB(async_datagram_close(r->d)), 0);
  assert_true(run_until(e, c_released, r, NULL, NULL, 3000));
  rec_assert_end(r, 0);
}

/* Closes each transport of the NULL-terminated list in turn, waiting for
 * its end, then finishes the loop. */
static void end_all(struct env *e, struct rec *const *recs) {
  for (; *recs; recs++) {
    close_and_wait(e, *recs);
  }
  env_finish(e);
}

/* ------------------------------------------------------------------ */
/* Opening transports                                                  */

static int has_ipv6(void) {
  int fd = socket(AF_INET6, SOCK_DGRAM, 0);
  if (fd < 0) {
    return 0;
  }
  struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
  int ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
  close(fd);
  return ok;
}

static const char *loopback(int family) { return family == AF_INET6 ? "[::1]:0" : "127.0.0.1:0"; }

/* async_udp_open with the rec protocol; returns the result code. */
static int udp_open_rc(struct env *e, struct rec *r, const async_udp_options *o) {
  async_datagram_protocol p = rec_proto();
  async_datagram *d = NULL;
  r->loop = e->loop;
  int rc = LIB(async_udp_open(&d, e->loop, o, &p, r));
  if (rc == 0) {
    assert_non_null(d);
    r->d = d;
  }
  return rc;
}

static async_datagram *udp_open(struct env *e, struct rec *r, const char *local, const char *remote) {
  async_udp_options o = ASYNC_UDP_OPTIONS_INIT;
  o.local_address = local;
  o.remote_address = remote;
  int rc = udp_open_rc(e, r, &o);
  if (rc != 0) {
    fail_msg("async_udp_open(%s, %s): %s", local ? local : "-", remote ? remote : "-", async_err_name(rc));
  }
  return r->d;
}

static async_datagram *adopt_rec(struct env *e, int fd, struct rec *r) {
  async_datagram_protocol p = rec_proto();
  r->loop = e->loop;
  int rc = LIB(async_datagram_adopt(&r->d, e->loop, fd, &p, r));
  if (rc != 0) {
    fail_msg("async_datagram_adopt(fd %d): %s", fd, async_err_name(rc));
  }
  return r->d;
}

/* The transport's local address as "host:port" text. */
static void local_text(async_datagram *d, char *out, size_t cap) {
  struct sockaddr_storage ss;
  int len = async_datagram_sockname((struct sockaddr *)&ss, sizeof ss, d);
  assert_true(len > 0);
  assert_true(async_addr_format(out, cap, (struct sockaddr *)&ss, (size_t)len, 0) > 0);
}

static int local_port(async_datagram *d) {
  struct sockaddr_storage ss;
  int len = async_datagram_sockname((struct sockaddr *)&ss, sizeof ss, d);
  assert_true(len > 0);
  return async_addr_port((struct sockaddr *)&ss, (size_t)len);
}

/* A Unix datagram socketpair, both ends non-blocking. */
static void dgram_pair(int sv[2]) {
  assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
}

/* A plain UDP socket bound to loopback port port (0: any), non-blocking. */
static int raw_udp(int family, int port) {
  int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  struct sockaddr_storage ss;
  char text[64];
  snprintf(text, sizeof text, family == AF_INET6 ? "[::1]:%d" : "127.0.0.1:%d", port);
  int len = async_addr_parse((struct sockaddr *)&ss, sizeof ss, text, 0);
  assert_true(len > 0);
  if (bind(fd, (struct sockaddr *)&ss, (socklen_t)len) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static int fd_port(int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
  return async_addr_port((struct sockaddr *)&ss, len);
}

/* Runs the loop until a datagram arrives on the plain socket fd; its
 * length (or fails the test after 3 s). */
static ssize_t raw_wait(struct env *e, int fd, void *buf, size_t cap) {
  uint64_t end = tu_now_ms() + 3000;
  for (;;) {
    ssize_t n = recv(fd, buf, cap, MSG_DONTWAIT);
    if (n >= 0) {
      return n;
    }
    assert_true(errno == EAGAIN);
    if (tu_now_ms() > end) {
      fail_msg("no datagram on the peer socket within 3 s");
    }
    run_once(e, ASYNC_RUN_ONCE);
  }
}

/* ------------------------------------------------------------------ */
/* Ping-pong                                                           */

struct pingpong {
  struct rec *client;
  async_datagram *d;
  int rounds;
  int sent;
  int bad_rc;
  const struct sockaddr *to;
  size_t tolen;
};

/* Client hook: each echo that comes back triggers the next datagram. */
static void pp_hook(struct rec *r, async_datagram *d, int ev) {
  struct pingpong *pp = r->arg;
  if (ev != EV_DGRAM || pp->sent >= pp->rounds) {
    return;
  }
  uint32_t seq = (uint32_t)pp->sent++;
  int rc = LIB(async_datagram_send(d, &seq, sizeof seq, pp->to, pp->tolen));
  if (rc != 0) {
    pp->bad_rc = rc;
  }
}

/* Ping-pong of 200 sequence numbers between two transports of family,
 * the client connected to the server or not. */
static void pingpong(int family, int connected) {
  if (family == AF_INET6 && !has_ipv6()) {
    skip();
  }
  struct env e;
  env_init(&e);
  struct rec rs, rc;
  rec_init(&rs);
  rec_init(&rc);
  rs.echo = 1;
  async_datagram *server = udp_open(&e, &rs, loopback(family), NULL);
  char server_addr[ASYNC_ADDR_STRLEN];
  local_text(server, server_addr, sizeof server_addr);
  assert_true(local_port(server) > 0); /* port 0: the kernel's pick, queryable */
  async_datagram *client = udp_open(&e, &rc, connected ? NULL : loopback(family), connected ? server_addr : NULL);
  struct sockaddr_storage to;
  int tolen = async_addr_parse((struct sockaddr *)&to, sizeof to, server_addr, 0);
  assert_true(tolen > 0);
  struct pingpong pp = {.client = &rc, .d = client, .rounds = 200, .to = (struct sockaddr *)&to, .tolen = (size_t)tolen};
  if (connected) {
    pp.to = NULL;
    pp.tolen = 0;
  }
  rc.hook = pp_hook;
  rc.arg = &pp;
  uint32_t seq = (uint32_t)pp.sent++;
  assert_int_equal(LIB(async_datagram_send(client, &seq, sizeof seq, pp.to, pp.tolen)), 0);
  wait_count(&e, &rc, EV_DGRAM, pp.rounds);
  assert_int_equal(pp.bad_rc, 0);
  assert_int_equal(rs.echo_rc, 0);
  /* Every echo came back in order, from the server's address. */
  for (int i = 0; i < pp.rounds && i < MAXDG; i++) {
    uint32_t got;
    assert_int_equal(rc.len[i], sizeof got);
    memcpy(&got, rc.data[i], sizeof got);
    assert_int_equal(got, (uint32_t)i);
    char from[ASYNC_ADDR_STRLEN];
    assert_true(async_addr_format(from, sizeof from, (struct sockaddr *)&rc.from[i], rc.fromlen[i], 0) > 0);
    assert_string_equal(from, server_addr);
  }
  /* The server saw the client's address (its sockname). */
  char client_addr[ASYNC_ADDR_STRLEN], seen[ASYNC_ADDR_STRLEN];
  local_text(client, client_addr, sizeof client_addr);
  assert_true(async_addr_format(seen, sizeof seen, (struct sockaddr *)&rs.from[0], rs.fromlen[0], 0) > 0);
  assert_string_equal(seen, client_addr);
  /* peername: the server for a connected client, none otherwise. */
  struct sockaddr_storage peer;
  int plen = async_datagram_peername((struct sockaddr *)&peer, sizeof peer, client);
  if (connected) {
    char ptext[ASYNC_ADDR_STRLEN];
    assert_true(plen > 0);
    assert_true(async_addr_format(ptext, sizeof ptext, (struct sockaddr *)&peer, (size_t)plen, 0) > 0);
    assert_string_equal(ptext, server_addr);
  } else {
    assert_int_equal(plen, ASYNC_EINVAL);
  }
  assert_int_equal(rc.count[EV_ERROR] + rs.count[EV_ERROR], 0);
  end_all(&e, (struct rec *[]){&rc, &rs, NULL});
}

/* state: the family and whether the client connects (struct pp_case). */
struct pp_case {
  int family;
  int connected;
};

static void test_pingpong(void **state) {
  const struct pp_case *c = *state;
  pingpong(c->family, c->connected);
}

static const struct pp_case k_pp4 = {AF_INET, 0}, k_pp4c = {AF_INET, 1}, k_pp6 = {AF_INET6, 0},
                            k_pp6c = {AF_INET6, 1};
#define PINGPONG_TEST(name, c) {name, test_pingpong, NULL, NULL, (void *)&(c)}

/* connection_made comes on a later iteration, never inside the open call,
 * and before any datagram; a datagram sent before connection_made is
 * delivered after it. */
static void test_made_first_and_order(void **state) {
  (void)state;
  struct env e;
  env_init(&e);
  struct rec r;
  rec_init(&r);
  async_datagram *d = udp_open(&e, &r, "127.0.0.1:0", NULL);
  assert_int_equal(r.nev, 0);
  assert_int_equal(async_datagram_is_reading(d), 0); /* not before connection_made */
  int peer = raw_udp(AF_INET, 0);
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)local_port(d))};
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(sendto(peer, "early", 5, 0, (struct sockaddr *)&to, sizeof to), 5);
  wait_count(&e, &r, EV_DGRAM, 1);
  assert_int_equal(r.ev[0], EV_MADE);
  assert_int_equal(async_datagram_is_reading(d), 1);
  assert_memory_equal(r.data[0], "early", 5);
  close(peer);
  close_and_wait(&e, &r);
  const int want[] = {EV_MADE, EV_DGRAM, EV_LOST, EV_RELEASE, EV_NONE};
  rec_assert_seq(&r, want);
  env_finish(&e);
}

/* Empty datagrams are delivered (len 0, data not NULL). */
static void test_empty_datagram(void **state) {
  (void)state;
  struct env e;
  env_init(&e);
  struct rec ra, rb;
  rec_init(&ra);
  rec_init(&rb);
  async_datagram *b = udp_open(&e, &rb, "127.0.0.1:0", NULL);
  char addr[ASYNC_ADDR_STRLEN];
  local_text(b, addr, sizeof addr);
  async_datagram *a = udp_open(&e, &ra, NULL, addr);
  assert_int_equal(LIB(async_datagram_send(a, NULL, 0, NULL, 0)), 0);
  assert_int_equal(LIB(async_datagram_send(a, "x", 1, NULL, 0)), 0);
  wait_count(&e, &rb, EV_DGRAM, 2);
  assert_int_equal(rb.len[0], 0);
  assert_int_equal(rb.len[1], 1);
  end_all(&e, (struct rec *[]){&ra, &rb, NULL});
}

/* A connected endpoint sends to its peer only: another address is
 * ASYNC_EINVAL, the peer's own address is accepted; an unconnected one
 * needs an address. */
static void connected_rejects_other_address(int family) {
  struct env e;
  env_init(&e);
  struct rec rs, rc, ro;
  rec_init(&rs);
  rec_init(&rc);
  rec_init(&ro);
  async_datagram *server = udp_open(&e, &rs, loopback(family), NULL);
  async_datagram *other = udp_open(&e, &ro, loopback(family), NULL);
  char server_addr[ASYNC_ADDR_STRLEN], other_addr[ASYNC_ADDR_STRLEN];
  local_text(server, server_addr, sizeof server_addr);
  local_text(other, other_addr, sizeof other_addr);
  async_datagram *client = udp_open(&e, &rc, NULL, server_addr);
  assert_int_equal(LIB(async_datagram_sendto(client, "no", 2, other_addr)), ASYNC_EINVAL);
  struct sockaddr_storage ss;
  int len = async_addr_parse((struct sockaddr *)&ss, sizeof ss, other_addr, 0);
  assert_int_equal(LIB(async_datagram_send(client, "no", 2, (struct sockaddr *)&ss, (size_t)len)), ASYNC_EINVAL);
  assert_int_equal(LIB(async_datagram_sendto(client, "yes", 3, server_addr)), 0);
  len = async_addr_parse((struct sockaddr *)&ss, sizeof ss, server_addr, 0);
  assert_int_equal(LIB(async_datagram_send(client, "yes", 3, (struct sockaddr *)&ss, (size_t)len)), 0);
  assert_int_equal(LIB(async_datagram_send(server, "x", 1, NULL, 0)), ASYNC_EINVAL); /* unconnected: address needed */
  wait_count(&e, &rs, EV_DGRAM, 2);
  run_for(&e, 20, NULL, NULL);
  assert_int_equal(ro.count[EV_DGRAM], 0);
  assert_int_equal(rs.count[EV_DGRAM], 2);
  end_all(&e, (struct rec *[]){&rc, &rs, &ro, NULL});
}

static void test_connected_rejects_other_address(void **state) {
  (void)state;
  connected_rejects_other_address(AF_INET);
}

static void test_connected6_rejects_other_address(void **state) {
  (void)state;
  if (!has_ipv6()) {
    skip();
  }
  connected_rejects_other_address(AF_INET6);
}

/* Neither a local nor a remote address: bound to the family's wildcard on
 * a port of the system's choice, and reachable there. */
static void wildcard_when_no_address(int family) {
  struct env e;
  env_init(&e);
  struct rec rw, rs;
  rec_init(&rw);
  rec_init(&rs);
  async_udp_options o = ASYNC_UDP_OPTIONS_INIT;
  o.family = family;
  assert_int_equal(udp_open_rc(&e, &rw, &o), 0);
  struct sockaddr_storage ss;
  int len = async_datagram_sockname((struct sockaddr *)&ss, sizeof ss, rw.d);
  char text[ASYNC_ADDR_STRLEN];
  assert_true(async_addr_format(text, sizeof text, (struct sockaddr *)&ss, (size_t)len, ASYNC_ADDR_NOPORT) > 0);
  assert_string_equal(text, family == AF_INET6 ? "::" : "0.0.0.0");
  int port = local_port(rw.d);
  assert_true(port > 0);
  async_datagram *sender = udp_open(&e, &rs, loopback(family), NULL);
  snprintf(text, sizeof text, family == AF_INET6 ? "[::1]:%d" : "127.0.0.1:%d", port);
  assert_int_equal(LIB(async_datagram_sendto(sender, "hi", 2, text)), 0);
  wait_count(&e, &rw, EV_DGRAM, 1);
  end_all(&e, (struct rec *[]){&rw, &rs, NULL});
}

static void test_wildcard_when_no_address(void **state) {
  (void)state;
  wildcard_when_no_address(AF_INET);
}

static void test_wildcard6_when_no_address(void **state) {
  (void)state;
  if (!has_ipv6()) {
    skip();
  }
  wildcard_when_no_address(AF_INET6);
}

/* ------------------------------------------------------------------ */
/* Errors that leave the transport open                                */

/* ICMP port unreachable on a connected socket: error_received
 * (ASYNC_ECONNREFUSED), the transport stays open and works once something
 * listens there. */
static void test_icmp_refused_then_usable(void **state) {
  (void)state;
  struct env e;
  env_init(&e);
  int probe = raw_udp(AF_INET, 0);
  int port = fd_port(probe);
  close(probe); /* nothing listens on port now */
  struct rec r;
  rec_init(&r);
  char remote[64];
  snprintf(remote, sizeof remote, "127.0.0.1:%d", port);
  async_datagram *d = udp_open(&e, &r, NULL, remote);
  wait_count(&e, &r, EV_MADE, 1);
  assert_int_equal(LIB(async_datagram_send(d, "ping", 4, NULL, 0)), 0);
  wait_count(&e, &r, EV_ERROR, 1);
  assert_int_equal(r.err[0], ASYNC_ECONNREFUSED);
  assert_int_equal(r.count[EV_LOST], 0);
  /* Now something listens there: the same transport talks to it. */
  int peer = raw_udp(AF_INET, port);
  if (peer < 0) {
    fail_msg("port %d was taken meanwhile", port);
  }
  assert_int_equal(LIB(async_datagram_send(d, "ping2", 5, NULL, 0)), 0);
  char buf[16];
  assert_int_equal(raw_wait(&e, peer, buf, sizeof buf), 5);
  assert_memory_equal(buf, "ping2", 5);
  struct sockaddr_in back = {.sin_family = AF_INET, .sin_port = htons((uint16_t)local_port(d))};
  back.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(sendto(peer, "pong", 4, 0, (struct sockaddr *)&back, sizeof back), 4);
  wait_count(&e, &r, EV_DGRAM, 1);
  assert_memory_equal(r.data[0], "pong", 4);
  assert_int_equal(r.count[EV_ERROR], 1);
  close(peer);
  end_all(&e, (struct rec *[]){&r, NULL});
}

/* A datagram larger than UDP allows: not sent, error_received
 * (ASYNC_EMSGSIZE) on a later iteration, never inside the call; the
 * transport goes on. */
static void test_oversize_send_reported(void **state) {
  (void)state;
  struct env e;
  env_init(&e);
  struct rec ra, rb;
  rec_init(&ra);
  rec_init(&rb);
  async_datagram *b = udp_open(&e, &rb, "127.0.0.1:0", NULL);
  char addr[ASYNC_ADDR_STRLEN];
  local_text(b, addr, sizeof addr);
  async_datagram *a = udp_open(&e, &ra, NULL, addr);
  wait_count(&e, &ra, EV_MADE, 1);
  static uint8_t big[70000];
  assert_int_equal(LIB(async_datagram_send(a, big, sizeof big, NULL, 0)), 0);
  assert_int_equal(ra.count[EV_ERROR], 0); /* not inside the call */
  assert_int_equal(LIB(async_datagram_send(a, "after", 5, NULL, 0)), 0);
  wait_count(&e, &ra, EV_ERROR, 1);
  assert_int_equal(ra.err[0], ASYNC_EMSGSIZE);
  wait_count(&e, &rb, EV_DGRAM, 1);
  assert_int_equal(rb.len[0], 5);
  run_for(&e, 20, NULL, NULL);
  assert_int_equal(rb.count[EV_DGRAM], 1); /* never a cut piece of the big one */
  end_all(&e, (struct rec *[]){&ra, &rb, NULL});
}

/* A received datagram larger than the 64 KiB slot (possible on Unix
 * sockets) is reported as ASYNC_EMSGSIZE, never delivered cut short; the
 * next one arrives whole. */
static void test_truncation_reported(void **state) {
  (void)state;
  struct env e;
  env_init(&e);
  int sv[2];
  dgram_pair(sv);
  int big = 256 * 1024;
  assert_int_equal(setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof big), 0);
  struct rec r;
  rec_init(&r);
  adopt_rec(&e, sv[0], &r);
  static uint8_t data[100 * 1024];
  memset(data, 0xab, sizeof data);
  assert_int_equal(send(sv[1], data, sizeof data, 0), (ssize_t)sizeof data);
  assert_int_equal(send(sv[1], "small", 5, 0), 5);
  wait_count(&e, &r, EV_DGRAM, 1);
  assert_int_equal(r.count[EV_ERROR], 1);
  assert_int_equal(r.err[0], ASYNC_EMSGSIZE);
  assert_int_equal(r.ev[1], EV_ERROR); /* in its place, before the next datagram */
  assert_int_equal(r.len[0], 5);
  /* A datagram of exactly the slot size is whole. */
  assert_int_equal(send(sv[1], data, 64 * 1024, 0), 64 * 1024);
  wait_count(&e, &r, EV_DGRAM, 2);
  assert_int_equal(r.len[1], 64 * 1024);
  assert_int_equal(r.count[EV_ERROR], 1);
  close(sv[1]);
  end_all(&e, (struct rec *[]){&r, NULL});
}

/* Sends to a broadcast address need SO_BROADCAST: without it the datagram
 * fails with ASYNC_EACCES (through error_received); the option is set by
 * the open options or async_datagram_set_broadcast, and reads back. */
static void test_broadcast_option(void **state) {
  (void)state;
  struct env e;
  env_init(&e);
  struct rec r;
  rec_init(&r);
  async_datagram *d = udp_open(&e, &r, "0.0.0.0:0", NULL);
  int fd = async_datagram_fd(d);
  int on = -1;
  socklen_t len = sizeof on;
  assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_BROADCAST, &on, &len), 0);
  assert_int_equal(on, 0);
  wait_count(&e, &r, EV_MADE, 1);
  assert_int_equal(LIB(async_datagram_sendto(d, "b", 1, "255.255.255.255:9")), 0);
  wait_count(&e, &r, EV_ERROR, 1);
  assert_int_equal(r.err[0], ASYNC_EACCES);
  assert_int_equal(async_datagram_set_broadcast(d, 1), 0);
  assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_BROADCAST, &on, &len), 0);
  assert_int_equal(on, 1);
  assert_int_equal(async_datagram_set_broadcast(d, 0), 0);
  assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_BROADCAST, &on, &len), 0);
  assert_int_equal(on, 0);
  close_and_wait(&e, &r);

  /* The open option; a broadcast on lo then goes out without error. */
  struct rec rb, rr;
  rec_init(&rb);
  rec_init(&rr);
  async_datagram *recv_d = udp_open(&e, &rr, "0.0.0.0:0", NULL);
  async_udp_options o = ASYNC_UDP_OPTIONS_INIT;
  o.local_address = "127.0.0.1:0";
  o.broadcast = 1;
  assert_int_equal(udp_open_rc(&e, &rb, &o), 0);
  assert_int_equal(getsockopt(async_datagram_fd(rb.d), SOL_SOCKET, SO_BROADCAST, &on, &len), 0);
  assert_int_equal(on, 1);
  char to[64];
  snprintf(to, sizeof to, "127.255.255.255:%d", local_port(recv_d));
  assert_int_equal(LIB(async_datagram_sendto(rb.d, "bc", 2, to)), 0);
  wait_count(&e, &rr, EV_DGRAM, 1);
  assert_memory_equal(rr.data[0], "bc", 2);
  assert_int_equal(rb.count[EV_ERROR], 0);
  end_all(&e, (struct rec *[]){&rb, &rr, NULL});
}

/* ------------------------------------------------------------------ */
/* Multicast                                                           */

#define GROUP4 "239.255.42.99"

/* Join, deliver on loopback, leave, not delivered any more. Skips when the
 * kernel cannot route multicast over lo (asked through IP_MULTICAST_IF
 * 127.0.0.1). */
static void test_multicast_v4_loopback(void **state) {
  (void)state;
  struct env e;
  env_init(&e);
  struct rec rr, rs;
  rec_init(&rr);
  rec_init(&rs);
  async_datagram *member = udp_open(&e, &rr, "0.0.0.0:0", NULL);
  async_datagram *sender = udp_open(&e, &rs, "127.0.0.1:0", NULL);
  int port = local_port(member);
  char group[64], marker_to[64];
  snprintf(group, sizeof group, GROUP4 ":%d", port);
  snprintf(marker_to, sizeof marker_to, "127.0.0.1:%d", port);
  int rc = async_datagram_join_multicast(member, GROUP4, "127.0.0.1");
  if (rc != 0) {
    print_message("multicast join on lo failed (%s): kernel without multicast on lo\n", async_err_name(rc));
    close_and_wait(&e, &rr);
    close_and_wait(&e, &rs);
    env_finish(&e);
    skip();
  }
  assert_int_equal(async_datagram_join_multicast(member, GROUP4, "127.0.0.1"), ASYNC_EADDRINUSE);
  assert_int_equal(async_datagram_set_multicast_interface(sender, "127.0.0.1"), 0);
  assert_int_equal(async_datagram_set_multicast_loop(sender, 1), 0);
  assert_int_equal(async_datagram_set_multicast_ttl(sender, 1), 0);
  wait_count(&e, &rs, EV_MADE, 1);
  assert_int_equal(LIB(async_datagram_sendto(sender, "mc1", 3, group)), 0);
  struct want_n w = {&rr, EV_DGRAM, 1};
  if (!run_until(&e, c_count, &w, NULL, NULL, 1000)) {
    print_message("no multicast delivery on lo (errors seen: %d): kernel lacks a multicast route on lo\n",
                  rs.count[EV_ERROR]);
    close_and_wait(&e, &rr);
    close_and_wait(&e, &rs);
    env_finish(&e);
    skip();
  }
  assert_memory_equal(rr.data[0], "mc1", 3);
  /* Leave: a multicast datagram is not delivered any more; a unicast
   * marker sent after it shows it would have arrived by then. */
  assert_int_equal(async_datagram_leave_multicast(member, GROUP4, "127.0.0.1"), 0);
  assert_int_equal(async_datagram_leave_multicast(member, GROUP4, "127.0.0.1"), ASYNC_EADDRNOTAVAIL);
  assert_int_equal(LIB(async_datagram_sendto(sender, "mc2", 3, group)), 0);
  assert_int_equal(LIB(async_datagram_sendto(sender, "marker", 6, marker_to)), 0);
  wait_count(&e, &rr, EV_DGRAM, 2);
  assert_memory_equal(rr.data[1], "marker", 6);
  /* By interface name: join and leave work the same. */
  assert_int_equal(async_datagram_join_multicast(member, GROUP4, "lo"), 0);
  assert_int_equal(LIB(async_datagram_sendto(sender, "mc3", 3, group)), 0);
  wait_count(&e, &rr, EV_DGRAM, 3);
  assert_memory_equal(rr.data[2], "mc3", 3);
  assert_int_equal(async_datagram_leave_multicast(member, GROUP4, "lo"), 0);
  /* Loopback off: the sender's own host gets nothing. */
  assert_int_equal(async_datagram_join_multicast(member, GROUP4, NULL), 0);
  assert_int_equal(async_datagram_set_multicast_loop(sender, 0), 0);
  assert_int_equal(LIB(async_datagram_sendto(sender, "mc4", 3, group)), 0);
  assert_int_equal(LIB(async_datagram_sendto(sender, "marker", 6, marker_to)), 0);
  wait_count(&e, &rr, EV_DGRAM, 4);
  assert_memory_equal(rr.data[3], "marker", 6);
  /* Bad input. */
  assert_int_equal(async_datagram_join_multicast(member, "127.0.0.1", NULL), ASYNC_EINVAL); /* not multicast */
  assert_int_equal(async_datagram_join_multicast(member, "ff02::1", NULL), ASYNC_EINVAL);   /* other family */
  assert_int_equal(async_datagram_join_multicast(member, GROUP4, "nosuchif0"), ASYNC_EINVAL);
  assert_int_equal(async_datagram_join_multicast(member, "bogus", NULL), ASYNC_EINVAL);
  assert_int_equal(async_datagram_join_multicast(member, NULL, NULL), ASYNC_EINVAL);
  assert_int_equal(async_datagram_set_multicast_ttl(sender, 256), ASYNC_EINVAL);
  assert_int_equal(async_datagram_set_multicast_ttl(sender, -1), ASYNC_EINVAL);
  assert_int_equal(async_datagram_set_multicast_interface(sender, "nosuchif0"), ASYNC_EINVAL);
  assert_int_equal(async_datagram_set_multicast_interface(sender, NULL), 0);
  end_all(&e, (struct rec *[]){&rr, &rs, NULL});
}

/* IPv6 membership and options on lo (delivery needs a multicast route,
 * which lo usually lacks for IPv6: only the calls are checked). */
static void test_multicast_v6_options(void **state) {
  (void)state;
  if (!has_ipv6()) {
    skip();
  }
  struct env e;
  env_init(&e);
  struct rec r;
  rec_init(&r);
  async_datagram *d = udp_open(&e, &r, "[::]:0", NULL);
  assert_int_equal(async_datagram_join_multicast(d, "ff02::1:4242", "lo"), 0);
  assert_int_equal(async_datagram_join_multicast(d, "ff02::1:4242", "lo"), ASYNC_EADDRINUSE);
  assert_int_equal(async_datagram_leave_multicast(d, "ff02::1:4242%lo", NULL), 0); /* the scope names it too */
  assert_int_equal(async_datagram_leave_multicast(d, "ff02::1:4242", "lo"), ASYNC_EADDRNOTAVAIL);
  assert_int_equal(async_datagram_join_multicast(d, "ff02::1:4242", "1"), 0); /* an index */
  assert_int_equal(async_datagram_join_multicast(d, "::1", "lo"), ASYNC_EINVAL);
  assert_int_equal(async_datagram_join_multicast(d, GROUP4, "lo"), ASYNC_EINVAL);
  assert_int_equal(async_datagram_join_multicast(d, "ff02::1:4243", "127.0.0.1"), ASYNC_EINVAL);
  assert_int_equal(async_datagram_set_multicast_interface(d, "lo"), 0);
  int idx = -1;
  socklen_t len = sizeof idx;
  assert_int_equal(getsockopt(async_datagram_fd(d), IPPROTO_IPV6, IPV6_MULTICAST_IF, &idx, &len), 0);
  assert_int_equal(idx, 1);
  assert_int_equal(async_datagram_set_multicast_ttl(d, 5), 0);
  int hops = -1;
  assert_int_equal(getsockopt(async_datagram_fd(d), IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, &len), 0);
  assert_int_equal(hops, 5);
  assert_int_equal(async_datagram_set_multicast_loop(d, 0), 0);
  end_all(&e, (struct rec *[]){&r, NULL});
}

/* ------------------------------------------------------------------ */
/* Flow control                                                        */

/* Sends 1000-byte datagrams on d until one is queued (the peer does not
 * read, the socket fills). Returns how many were sent directly. */
static int fill_socket(async_datagram *d) {
  static uint8_t chunk[1000];
  size_t queued = 0;
  int n = 0;
  while (queued == 0) {
    assert_int_equal(LIB(async_datagram_send(d, chunk, sizeof chunk, NULL, 0)), 0);
    assert_int_equal(async_datagram_write_buffer_size(&queued, d), 0);
    assert_true(++n < 100000);
  }
  assert_int_equal(queued, sizeof chunk);
  return n - 1;
}

/* A Unix socketpair with a small send buffer, one end adopted by r. */
static async_datagram *flow_pair(struct env *e, struct rec *r, int *peer) {
  int sv[2];
  dgram_pair(sv);
  int small = 4096;
  assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
  *peer = sv[1];
  async_datagram *d = adopt_rec(e, sv[0], r);
  assert_true(run_until(e, c_made, r, NULL, NULL, 2000));
  return d;
}

static int wbuf_at(const struct rec *r, int ev, int k) {
  int n = r->nev < MAXEV ? r->nev : MAXEV;
  for (int i = 0; i < n; i++) {
    if (r->ev[i] == ev && k-- == 0) {
      return (int)r->wbuf[i];
    }
  }
  return -1;
}

/* pause_writing exactly when the queue goes strictly above high (inside
 * the send), not at high; resume_writing exactly when it drains to low. */
static void test_flow_control_boundaries(void **state) {
  (void)state;
  struct env e;
  env_init(&e);
  struct rec r;
  rec_init(&r);
  int peer;
  async_datagram *d = flow_pair(&e, &r, &peer);
  size_t high, low;
  assert_int_equal(async_datagram_get_write_limits(&high, &low, d), 0);
  assert_int_equal(high, 64 * 1024);
  assert_int_equal(low, 16 * 1024);
  assert_int_equal(async_datagram_set_write_limits(d, 4000, 1000), 0);
  int direct = fill_socket(d); /* 1000 queued */
  assert_true(direct > 0);
  static uint8_t chunk[1000];
  for (int i = 0; i < 3; i++) {
    assert_int_equal(LIB(async_datagram_send(d, chunk, sizeof chunk, NULL, 0)), 0);
  }
  size_t q;
  assert_int_equal(async_datagram_write_buffer_size(&q, d), 0);
  assert_int_equal(q, 4000);
  assert_int_equal(r.count[EV_PAUSE], 0); /* exactly at high: no pause */
  assert_int_equal(LIB(async_datagram_send(d, chunk, sizeof chunk, NULL, 0)), 0);
  assert_int_equal(r.count[EV_PAUSE], 1); /* strictly above, synchronously */
  assert_int_equal(wbuf_at(&r, EV_PAUSE, 0), 5000);
  /* Drain one datagram at a time: resume exactly at the first size <= low. */
  uint8_t buf[2000];
  int received = 0;
  while (r.count[EV_RESUME] == 0 && received < 200) {
    assert_int_equal(recv(peer, buf, sizeof buf, MSG_DONTWAIT), 1000);
    received++;
    run_nowait(&e, 2);
    assert_int_equal(async_datagram_write_buffer_size(&q, d), 0);
    if (r.count[EV_RESUME] == 0) {
      assert_true(q > 1000);
    }
  }
  assert_int_equal(r.count[EV_RESUME], 1);
  assert_true(wbuf_at(&r, EV_RESUME, 0) <= 1000);
  /* Everything arrives whole: the direct ones and the five queued. */
  uint64_t end = tu_now_ms() + 3000;
  while (received < direct + 5 && tu_now_ms() < end) {
    ssize_t n = recv(peer, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0) {
      run_once(&e, ASYNC_RUN_NOWAIT);
      continue;
    }
    assert_int_equal(n, 1000);
    received++;
  }
  assert_int_equal(received, direct + 5);
  assert_int_equal(recv(peer, buf, sizeof buf, MSG_DONTWAIT), -1);
  assert_int_equal(r.count[EV_PAUSE], 1);
  close(peer);
  end_all(&e, (struct rec *[]){&r, NULL});
}

/* Limits: low > high refused; (0, 0) pauses whenever anything is queued;
 * lowering the limits below the queue pauses at once. */
static void test_write_limits(void **state) {
  (void)state;
  struct env e;
  env_init(&e);
  struct rec r;
  rec_init(&r);
  int peer;
  async_datagram *d = flow_pair(&e, &r, &peer);
  assert_int_equal(async_datagram_set_write_limits(d, 10, 11), ASYNC_EINVAL);
  assert_int_equal(async_datagram_set_write_limits(d, 0, 0), 0);
  fill_socket(d);
  assert_int_equal(r.count[EV_PAUSE], 1);
  /* Drained completely: resume (low 0 means empty). */
  uint8_t buf[2000];
  size_t q = 1;
  for (int i = 0; q > 0 && i < 1000; i++) {
    (void)recv(peer, buf, sizeof buf, MSG_DONTWAIT);
    run_nowait(&e, 1);
    assert_int_equal(async_datagram_write_buffer_size(&q, d), 0);
  }
  assert_int_equal(q, 0);
  assert_int_equal(r.count[EV_RESUME], 1);
  assert_int_equal(wbuf_at(&r, EV_RESUME, 0), 0);
  /* Raised limits, then lowered under the queue: pause inside the call. */
  assert_int_equal(async_datagram_set_write_limits(d, 1 << 20, 0), 0);
  fill_socket(d);
  assert_int_equal(r.count[EV_PAUSE], 1);
  assert_int_equal(LIB(async_datagram_set_write_limits(d, 500, 100)), 0);
  assert_int_equal(r.count[EV_PAUSE], 2);
  close(peer);
  assert_int_equal(LIB(async_datagram_abort(d)), 0);
  assert_true(run_until(&e, c_released, &r, NULL, NULL, 2000));
  rec_assert_end(&r, 0);
  env_finish(&e);
}

/* close() with queued datagrams flushes them (all arrive, in order), then
 * connection_lost(0); sends after close are ASYNC_ECLOSED. */
static void test_close_flushes_queue(void **state) {
  (void)state;
  struct env e;
  env_init(&e);
  struct rec r;
  rec_init(&r);
  int peer;
  async_datagram *d = flow_pair(&e, &r, &peer);
  int direct = fill_socket(d);
  uint32_t seq[10];
  for (uint32_t i = 0; i < 10; i++) {
    seq[i] = 1000 + i;
    assert_int_equal(LIB(async_datagram_send(d, &seq[i], sizeof seq[i], NULL, 0)), 0);
  }
  assert_int_equal(LIB(async_datagram_close(d)), 0);
  assert_int_equal(LIB(async_datagram_send(d, "x", 1, NULL, 0)), ASYNC_ECLOSED);
  assert_int_equal(LIB(async_datagram_close(d)), 0); /* idempotent */
  run_nowait(&e, 3);
  assert_int_equal(r.count[EV_LOST], 0); /* still flushing */
  int got = 0, got_seq = 0;
  uint8_t buf[2000];
  uint64_t end = tu_now_ms() + 3000;
  while (r.count[EV_RELEASE] == 0 && tu_now_ms() < end) {
    ssize_t n = recv(peer, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0) {
      run_once(&e, ASYNC_RUN_ONCE);
      continue;
    }
    if (n == 4) {
      uint32_t v;
      memcpy(&v, buf, 4);
      assert_int_equal(v, 1000u + (uint32_t)got_seq);
      got_seq++;
    } else {
      got++;
    }
  }
  while (recv(peer, buf, sizeof buf, MSG_DONTWAIT) == 4) {
    got_seq++;
  }
  assert_int_equal(got, direct + 1);
  assert_int_equal(got_seq, 10);
  rec_assert_end(&r, 0);
  close(peer);
  env_finish(&e);
}

/* abort() drops the queue: only the datagrams sent directly arrive. */
static void test_abort_drops_queue(void **state) {
  (void)state;
  struct env e;
  env_init(&e);
  struct rec r;
  rec_init(&r);
  int peer;
  async_datagram *d = flow_pair(&e, &r, &peer);
  int direct = fill_socket(d);
  assert_int_equal(LIB(async_datagram_abort(d)), 0);
  assert_int_equal(r.count[EV_LOST], 0); /* never inside the call */
  assert_int_equal(LIB(async_datagram_abort(d)), 0);
  assert_true(run_until(&e, c_released, &r, NULL, NULL, 2000));
  rec_assert_end(&r, 0);
  int got = 0;
  uint8_t buf[2000];
  while (recv(peer, buf, sizeof buf, MSG_DONTWAIT) > 0) {
    got++;
  }
  assert_int_equal(got, direct);
  close(peer);
  env_finish(&e);
}

/* ------------------------------------------------------------------ */
/* Close / abort / pause inside callbacks                              */

struct inside {
  int ev;    /* the callback to act in */
  int abort; /* abort instead of close */
  int done;
};

static void inside_hook(struct rec *r, async_datagram *d, int ev) {
  struct inside *in = r->arg;
  if (ev != in->ev || in->done) {
    return;
  }
  in->done = 1;
  r->hook_rc = LIB(in->abort ? async_datagram_abort(d) : async_datagram_close(d));
  if (r->hook_rc == 0) {
    r->hook_rc = LIB(async_datagram_send(d, "late", 4, NULL, 0)) == ASYNC_ECLOSED ? 0 : -1;
  }
}

/* Closes or aborts inside the callback ev; a peer sends 5 datagrams (one
 * batch) and a send error is provoked so each callback runs. Nothing but
 * connection_lost(0) and release follows the action. */
static void close_inside(int ev, int abort) {
  struct env e;
  env_init(&e);
  struct rec r;
  rec_init(&r);
  struct inside in = {ev, abort, 0};
  r.hook = inside_hook;
  r.arg = &in;
  int sv[2];
  dgram_pair(sv);
  int small = 4096;
  assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
  for (int i = 0; i < 5; i++) {
    assert_int_equal(send(sv[1], "hello", 5, 0), 5);
  }
  async_datagram *d = adopt_rec(&e, sv[0], &r);
  if (ev == EV_ERROR) {
    /* A Unix datagram larger than the send buffer allows. */
    static uint8_t big[300 * 1024];
    assert_int_equal(LIB(async_datagram_send(d, big, sizeof big, NULL, 0)), 0);
  }
  if (ev == EV_PAUSE || ev == EV_RESUME) {
    assert_int_equal(async_datagram_set_write_limits(d, 0, 0), 0);
    run_until(&e, c_made, &r, NULL, NULL, 2000);
    /* Fill until the queue pauses (acting there, or later at resume). */
    static uint8_t chunk[1000];
    for (int i = 0; i < 10000 && r.count[EV_PAUSE] == 0; i++) {
      assert_int_equal(LIB(async_datagram_send(d, chunk, sizeof chunk, NULL, 0)), 0);
    }
    assert_int_equal(r.count[EV_PAUSE], 1);
    uint8_t buf[2000];
    for (int i = 0; i < 400 && r.count[EV_RELEASE] == 0; i++) {
      (void)recv(sv[1], buf, sizeof buf, MSG_DONTWAIT);
      run_nowait(&e, 1);
    }
  }
  assert_true(run_until(&e, c_released, &r, NULL, NULL, 3000));
  assert_true(in.done);
  assert_int_equal(r.hook_rc, 0);
  rec_assert_end(&r, 0);
  /* The acting callback was the last before connection_lost, except that
   * a queue close() flushes still tells resume_writing when it drains. */
  int n = r.nev < MAXEV ? r.nev : MAXEV;
  int flushed = ev == EV_PAUSE && !abort;
  assert_int_equal(r.ev[n - 3 - flushed], ev);
  if (flushed) {
    assert_int_equal(r.ev[n - 3], EV_RESUME);
  }
  if (ev == EV_DGRAM) {
    assert_int_equal(r.count[EV_DGRAM], 1); /* the rest of the batch is not delivered */
  }
  close(sv[1]);
  env_finish(&e);
}

/* state: the callback to act in (a pointer to its enum ev). */
static void test_close_inside(void **state) {
  int ev = *(const int *)*state;
  close_inside(ev, 0);
  close_inside(ev, 1);
}

static const int k_in_made = EV_MADE, k_in_dgram = EV_DGRAM, k_in_error = EV_ERROR, k_in_pause = EV_PAUSE,
                 k_in_resume = EV_RESUME;
#define CLOSE_INSIDE_TEST(name, ev) {name, test_close_inside, NULL, NULL, (void *)&(ev)}

/* A transport aborted right after opening: connection_made still comes
 * first, then connection_lost(0). */
static void test_abort_before_made(void **state) {
  (void)state;
  struct env e;
  env_init(&e);
  struct rec r;
  rec_init(&r);
  udp_open(&e, &r, "127.0.0.1:0", NULL);
  assert_int_equal(LIB(async_datagram_abort(r.d)), 0);
  assert_true(run_until(&e, c_released, &r, NULL, NULL, 2000));
  const int want[] = {EV_MADE, EV_LOST, EV_RELEASE, EV_NONE};
  rec_assert_seq(&r, want);
  rec_assert_end(&r, 0);
  env_finish(&e);
}

/* A send error met before connection_made is reported after it. */
static void test_error_before_made_comes_after(void **state) {
  (void)state;
  struct env e;
  env_init(&e);
  struct rec r;
  rec_init(&r);
  udp_open(&e, &r, NULL, "127.0.0.1:9");
  static uint8_t big[70000];
  assert_int_equal(LIB(async_datagram_send(r.d, big, sizeof big, NULL, 0)), 0);
  wait_count(&e, &r, EV_ERROR, 1);
  assert_int_equal(r.ev[0], EV_MADE);
  assert_int_equal(r.err[0], ASYNC_EMSGSIZE);
  /* And one left pending at close comes before connection_lost. */
  assert_int_equal(LIB(async_datagram_send(r.d, big, sizeof big, NULL, 0)), 0);
  close_and_wait(&e, &r);
  const int want[] = {EV_MADE, EV_ERROR, EV_ERROR, EV_LOST, EV_RELEASE, EV_NONE};
  rec_assert_seq(&r, want);
  env_finish(&e);
}

/* pause_reading inside datagram_received: the rest of the batch is kept
 * and delivered, in order, after resume_reading; none is lost. */
struct pauser {
  int pause_at;
  int paused_ok;
};

static void pause_hook(struct rec *r, async_datagram *d, int ev) {
  struct pauser *p = r->arg;
  if (ev == EV_DGRAM && r->count[EV_DGRAM] == p->pause_at) {
    p->paused_ok = LIB(async_datagram_pause_reading(d)) == 0 && async_datagram_is_reading(d) == 0;
  }
}

static void test_pause_reading_keeps_batch(void **state) {
  (void)state;
  struct env e;
  env_init(&e);
  struct rec r;
  rec_init(&r);
  struct pauser p = {3, 0};
  r.hook = pause_hook;
  r.arg = &p;
  int sv[2];
  dgram_pair(sv);
  for (uint32_t i = 0; i < 10; i++) {
    assert_int_equal(send(sv[1], &i, sizeof i, 0), 4);
  }
  async_datagram *d = adopt_rec(&e, sv[0], &r);
  wait_count(&e, &r, EV_DGRAM, 3);
  run_for(&e, 20, NULL, NULL);
  assert_int_equal(r.count[EV_DGRAM], 3);
  assert_true(p.paused_ok);
  assert_int_equal(LIB(async_datagram_resume_reading(d)), 0);
  assert_int_equal(r.count[EV_DGRAM], 3); /* delivered on a later iteration */
  uint32_t more = 10;
  assert_int_equal(send(sv[1], &more, sizeof more, 0), 4);
  wait_count(&e, &r, EV_DGRAM, 11);
  for (uint32_t i = 0; i < 11; i++) {
    uint32_t v;
    memcpy(&v, r.data[i], 4);
    assert_int_equal(v, i);
  }
  /* Idempotent. */
  assert_int_equal(async_datagram_pause_reading(d), 0);
  assert_int_equal(async_datagram_pause_reading(d), 0);
  assert_int_equal(async_datagram_resume_reading(d), 0);
  assert_int_equal(async_datagram_resume_reading(d), 0);
  close(sv[1]);
  end_all(&e, (struct rec *[]){&r, NULL});
}

/* ------------------------------------------------------------------ */
/* 100,000 datagrams, each exactly once                                */

#define FLOOD_N 100000
#define FLOOD_WINDOW 64

struct flood {
  async_datagram *tx;
  uint8_t *seen;
  uint32_t sent;
  uint32_t received;
  uint32_t dups;
  uint32_t bad;
  int send_rc;
};

static void flood_recv(async_datagram *d, const uint8_t *data, size_t len, const struct sockaddr *addr, size_t addrlen,
                       void *ud) {
  (void)d;
  (void)addr;
  (void)addrlen;
  struct flood *f = ud;
  uint32_t seq;
  if (len != 64) {
    f->bad++;
    return;
  }
  memcpy(&seq, data, sizeof seq);
  if (seq >= FLOOD_N || data[63] != (uint8_t)seq) {
    f->bad++;
    return;
  }
  if (f->seen[seq]) {
    f->dups++;
  }
  f->seen[seq] = 1;
  f->received++;
}

static void flood_lost(async_datagram *d, int err, void *ud) {
  (void)d;
  (void)err;
  (void)ud;
}

/* Window-based pacing: never more than FLOOD_WINDOW datagrams in flight. */
static void flood_step(void *arg) {
  struct flood *f = arg;
  uint8_t msg[64] = {0};
  while (f->sent < FLOOD_N && f->sent - f->received < FLOOD_WINDOW) {
    memcpy(msg, &f->sent, sizeof f->sent);
    msg[63] = (uint8_t)f->sent;
    int rc = async_datagram_send(f->tx, msg, sizeof msg, NULL, 0);
    if (rc != 0) {
      f->send_rc = rc;
      return;
    }
    f->sent++;
  }
}

static int flood_done(void *arg) {
  struct flood *f = arg;
  return f->received >= FLOOD_N;
}

static void test_100k_datagrams_exactly_once(void **state) {
  (void)state;
  struct env e;
  env_init(&e);
  struct flood f;
  memset(&f, 0, sizeof f);
  f.seen = calloc(FLOOD_N, 1);
  assert_non_null(f.seen);
  async_datagram_protocol p = ASYNC_DATAGRAM_PROTOCOL_INIT;
  p.datagram_received = flood_recv;
  p.connection_lost = flood_lost;
  async_udp_options o = ASYNC_UDP_OPTIONS_INIT;
  o.local_address = "127.0.0.1:0";
  async_datagram *rx = NULL;
  assert_int_equal(async_udp_open(&rx, e.loop, &o, &p, &f), 0);
  char addr[ASYNC_ADDR_STRLEN];
  local_text(rx, addr, sizeof addr);
  o.local_address = NULL;
  o.remote_address = addr;
  assert_int_equal(async_udp_open(&f.tx, e.loop, &o, &p, &f), 0);
  uint64_t t0 = tu_now_ns();
  int ok = run_until(&e, flood_done, &f, flood_step, &f, 50000);
  double ms = tu_elapsed_ms(t0);
  print_message("%u datagrams in %.0f ms (%u sent)\n", f.received, ms, f.sent);
  assert_int_equal(f.send_rc, 0);
  assert_int_equal(f.bad, 0);
  assert_int_equal(f.dups, 0);
  assert_true(ok);
  assert_int_equal(f.received, FLOOD_N);
  for (uint32_t i = 0; i < FLOOD_N; i++) {
    if (!f.seen[i]) {
      fail_msg("datagram %u never arrived", i);
    }
  }
  free(f.seen);
  assert_int_equal(async_datagram_close(rx), 0);
  assert_int_equal(async_datagram_close(f.tx), 0);
  env_finish(&e);
}

/* ------------------------------------------------------------------ */
/* Unix datagram sockets                                               */

static void unix_pingpong(const char *a_path, const char *b_path) {
  struct env e;
  env_init(&e);
  struct rec ra, rb;
  rec_init(&ra);
  rec_init(&rb);
  rb.echo = 1;
  async_datagram_protocol p = rec_proto();
  async_datagram *a = NULL, *b = NULL;
  ra.loop = rb.loop = e.loop;
  assert_int_equal(LIB(async_unix_datagram_open(&b, e.loop, b_path, NULL, &p, &rb)), 0);
  rb.d = b;
  assert_int_equal(LIB(async_unix_datagram_open(&a, e.loop, a_path, NULL, &p, &ra)), 0);
  ra.d = a;
  /* The same path again: in use. */
  async_datagram *dup = NULL;
  assert_int_equal(async_unix_datagram_open(&dup, e.loop, b_path, NULL, &p, &rb), ASYNC_EADDRINUSE);
  assert_int_equal(LIB(async_datagram_sendto(a, "ping", 4, b_path)), 0);
  wait_count(&e, &ra, EV_DGRAM, 1);
  assert_memory_equal(ra.data[0], "ping", 4);
  /* Each side saw the other's name. */
  const struct sockaddr_un *from = (const struct sockaddr_un *)&rb.from[0];
  size_t name_len = rb.fromlen[0] - offsetof(struct sockaddr_un, sun_path);
  if (a_path[0] == '@') {
    assert_int_equal(name_len, strlen(a_path));
    assert_int_equal(from->sun_path[0], '\0');
    assert_memory_equal(from->sun_path + 1, a_path + 1, strlen(a_path) - 1);
  } else {
    assert_string_equal(from->sun_path, a_path);
  }
  /* Connected to b: sends need no address. */
  struct rec rc;
  rec_init(&rc);
  rc.loop = e.loop;
  async_datagram *c = NULL;
  assert_int_equal(LIB(async_unix_datagram_open(&c, e.loop, NULL, b_path, &p, &rc)), 0);
  rc.d = c;
  assert_int_equal(LIB(async_datagram_send(c, "conn", 4, NULL, 0)), 0);
  wait_count(&e, &rb, EV_DGRAM, 2);
  assert_memory_equal(rb.data[1], "conn", 4);
  assert_int_equal(rb.fromlen[1], 0); /* c has no name */
  assert_int_equal(rb.echo_rc, ASYNC_EINVAL); /* so b cannot answer it */
  struct sockaddr_un peer;
  assert_true(async_datagram_peername((struct sockaddr *)&peer, sizeof peer, c) > 0);
  assert_int_equal(LIB(async_datagram_sendto(c, "x", 1, a_path)), ASYNC_EINVAL); /* not its peer */
  assert_int_equal(LIB(async_datagram_sendto(c, "y", 1, b_path)), 0);
  wait_count(&e, &rb, EV_DGRAM, 3);
  end_all(&e, (struct rec *[]){&rc, &ra, &rb, NULL});
}

static void test_unix_datagram_paths(void **state) {
  (void)state;
  char a[64], b[64];
  snprintf(a, sizeof a, "/tmp/libasync-dg-%d-a", (int)getpid());
  snprintf(b, sizeof b, "/tmp/libasync-dg-%d-b", (int)getpid());
  unlink(a);
  unlink(b);
  unix_pingpong(a, b);
  /* The socket files stay after close. */
  assert_int_equal(access(a, F_OK), 0);
  assert_int_equal(unlink(a), 0);
  assert_int_equal(unlink(b), 0);
}

static void test_unix_datagram_abstract(void **state) {
  (void)state;
  char a[64], b[64];
  snprintf(a, sizeof a, "@libasync-dg-%d-a", (int)getpid());
  snprintf(b, sizeof b, "@libasync-dg-%d-b", (int)getpid());
  unix_pingpong(a, b);
}

/* A missing peer: ASYNC_ECONNREFUSED at open, and through error_received
 * for a send to a path where nothing is bound. */
static void test_unix_datagram_missing_peer(void **state) {
  (void)state;
  struct env e;
  env_init(&e);
  struct rec r;
  rec_init(&r);
  r.loop = e.loop;
  async_datagram_protocol p = rec_proto();
  async_datagram *d = NULL;
  assert_int_equal(async_unix_datagram_open(&d, e.loop, NULL, "/tmp/libasync-no-such-socket", &p, &r),
                   ASYNC_ECONNREFUSED);
  assert_int_equal(async_unix_datagram_open(&d, e.loop, NULL, "@libasync-no-such-socket", &p, &r),
                   ASYNC_ECONNREFUSED);
  assert_int_equal(LIB(async_unix_datagram_open(&d, e.loop, NULL, NULL, &p, &r)), 0);
  r.d = d;
  assert_int_equal(LIB(async_datagram_sendto(d, "x", 1, "/tmp/libasync-no-such-socket")), 0);
  wait_count(&e, &r, EV_ERROR, 1);
  assert_int_equal(r.err[0], ASYNC_ECONNREFUSED);
  end_all(&e, (struct rec *[]){&r, NULL});
}

/* ------------------------------------------------------------------ */
/* Adopted sockets                                                     */

/* A netlink route socket, adopted: a link dump request goes to the kernel
 * (no address needed) and the answer arrives as datagrams ending with
 * NLMSG_DONE, the loopback link among them. */
struct nl_seen {
  int links;
  int lo;
  int done;
  int from_kernel;
};

static void nl_hook(struct rec *r, async_datagram *d, int ev) {
  (void)d;
  struct nl_seen *s = r->arg;
  if (ev != EV_DGRAM) {
    return;
  }
  int i = r->count[EV_DGRAM] - 1;
  const struct sockaddr_nl *from = (const struct sockaddr_nl *)&r->from[i < MAXDG ? i : MAXDG - 1];
  s->from_kernel += from->nl_family == AF_NETLINK && from->nl_pid == 0;
}

static void nl_parse(async_datagram *d, const uint8_t *data, size_t len, const struct sockaddr *addr, size_t addrlen,
                     void *ud) {
  struct rec *r = ud;
  rec_dgram(d, data, len, addr, addrlen, ud);
  struct nl_seen *s = r->arg;
  for (const struct nlmsghdr *h = (const struct nlmsghdr *)data; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
    if (h->nlmsg_type == NLMSG_DONE) {
      s->done++;
    } else if (h->nlmsg_type == RTM_NEWLINK) {
      const struct ifinfomsg *ifi = NLMSG_DATA(h);
      s->links++;
      s->lo += ifi->ifi_index == 1 && (ifi->ifi_flags & IFF_LOOPBACK);
    }
  }
}

static void test_adopt_netlink(void **state) {
  (void)state;
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) {
    skip();
  }
  struct sockaddr_nl local = {.nl_family = AF_NETLINK};
  assert_int_equal(bind(fd, (struct sockaddr *)&local, sizeof local), 0);
  struct env e;
  env_init(&e);
  struct rec r;
  rec_init(&r);
  struct nl_seen seen = {0, 0, 0, 0};
  r.hook = nl_hook;
  r.arg = &seen;
  r.loop = e.loop;
  async_datagram_protocol p = rec_proto();
  p.datagram_received = nl_parse;
  assert_int_equal(LIB(async_datagram_adopt(&r.d, e.loop, fd, &p, &r)), 0);
  struct sockaddr_nl name;
  assert_int_equal(async_datagram_sockname((struct sockaddr *)&name, sizeof name, r.d), (int)sizeof name);
  assert_int_equal(name.nl_family, AF_NETLINK);
  struct {
    struct nlmsghdr h;
    struct rtgenmsg g;
  } req;
  memset(&req, 0, sizeof req);
  req.h.nlmsg_len = NLMSG_LENGTH(sizeof req.g);
  req.h.nlmsg_type = RTM_GETLINK;
  req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.h.nlmsg_seq = 1;
  req.g.rtgen_family = AF_UNSPEC;
  assert_int_equal(LIB(async_datagram_send(r.d, &req, req.h.nlmsg_len, NULL, 0)), 0);
  assert_int_equal(async_datagram_join_multicast(r.d, "239.1.1.1", NULL), ASYNC_EINVAL); /* not UDP */
  struct want_n w = {&r, EV_DGRAM, 1};
  uint64_t end = tu_now_ms() + 3000;
  while (!seen.done && tu_now_ms() < end) {
    run_until(&e, c_count, &w, NULL, NULL, 100);
    w.n = r.count[EV_DGRAM] + 1;
  }
  assert_int_equal(seen.done, 1);
  assert_true(seen.links >= 1);
  assert_int_equal(seen.lo, 1);
  assert_int_equal(seen.from_kernel, r.count[EV_DGRAM]);
  assert_int_equal(r.count[EV_ERROR], 0);
  end_all(&e, (struct rec *[]){&r, NULL});
}

/* ------------------------------------------------------------------ */
/* Options                                                             */

/* reuse_port lets two transports share a port; without it the second is
 * ASYNC_EADDRINUSE. */
static void test_reuse_port(void **state) {
  (void)state;
  struct env e;
  env_init(&e);
  struct rec r1, r2, r3;
  rec_init(&r1);
  rec_init(&r2);
  rec_init(&r3);
  async_udp_options o = ASYNC_UDP_OPTIONS_INIT;
  o.local_address = "127.0.0.1:0";
  o.reuse_port = 1;
  assert_int_equal(udp_open_rc(&e, &r1, &o), 0);
  char addr[ASYNC_ADDR_STRLEN];
  local_text(r1.d, addr, sizeof addr);
  o.local_address = addr;
  assert_int_equal(udp_open_rc(&e, &r2, &o), 0);
  assert_int_equal(local_port(r2.d), local_port(r1.d));
  o.reuse_port = 0;
  assert_int_equal(udp_open_rc(&e, &r3, &o), ASYNC_EADDRINUSE);
  assert_int_equal(r3.nev, 0);
  end_all(&e, (struct rec *[]){&r1, &r2, NULL});
}

/* ipv6_only: set as asked; a dual-stack transport gets IPv4 datagrams,
 * and async_datagram_sendto() maps an IPv4 address for it. Buffer sizes
 * are applied. */
static void test_ipv6_only_and_buffers(void **state) {
  (void)state;
  if (!has_ipv6()) {
    skip();
  }
  struct env e;
  env_init(&e);
  struct rec r6, r4, ro;
  rec_init(&r6);
  rec_init(&r4);
  rec_init(&ro);
  async_udp_options o = ASYNC_UDP_OPTIONS_INIT;
  o.local_address = "[::]:0";
  o.receive_buffer_size = 100000;
  o.send_buffer_size = 50000;
  assert_int_equal(udp_open_rc(&e, &r6, &o), 0);
  int fd = async_datagram_fd(r6.d);
  int v = -1, buf = 0;
  socklen_t len = sizeof v;
  assert_int_equal(getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v, &len), 0);
  assert_int_equal(v, 0);
  assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, &len), 0);
  assert_true(buf >= 100000); /* the kernel doubles it */
  assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, &len), 0);
  assert_true(buf >= 50000);
  async_datagram *v4 = udp_open(&e, &r4, "127.0.0.1:0", NULL);
  char to[64];
  snprintf(to, sizeof to, "127.0.0.1:%d", local_port(r6.d));
  assert_int_equal(LIB(async_datagram_sendto(v4, "v4", 2, to)), 0);
  wait_count(&e, &r6, EV_DGRAM, 1);
  assert_int_equal(r6.from[0].ss_family, AF_INET6); /* ::ffff:127.0.0.1 */
  char back[64];
  snprintf(back, sizeof back, "127.0.0.1:%d", local_port(v4));
  assert_int_equal(LIB(async_datagram_sendto(r6.d, "mapped", 6, back)), 0);
  wait_count(&e, &r4, EV_DGRAM, 1);
  assert_memory_equal(r4.data[0], "mapped", 6);
  o.local_address = "[::1]:0";
  o.ipv6_only = 1;
  assert_int_equal(udp_open_rc(&e, &ro, &o), 0);
  assert_int_equal(getsockopt(async_datagram_fd(ro.d), IPPROTO_IPV6, IPV6_V6ONLY, &v, &len), 0);
  assert_int_equal(v, 1);
  end_all(&e, (struct rec *[]){&r6, &r4, &ro, NULL});
}

/* A link-local IPv6 address with its scope ("[fe80::1%eth0]:0"): bound
 * with the scope, reported back with it, and reachable through it. Skips
 * on a host with no usable link-local address. */
static void test_ipv6_scope_id(void **state) {
  (void)state;
  struct ifaddrs *all = NULL, *ifa;
  char local[ASYNC_ADDR_STRLEN] = "";
  unsigned index = 0;
  assert_int_equal(getifaddrs(&all), 0);
  for (ifa = all; ifa && !local[0]; ifa = ifa->ifa_next) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ifa->ifa_addr;
    if (a && a->sin6_family == AF_INET6 && IN6_IS_ADDR_LINKLOCAL(&a->sin6_addr)) {
      char host[INET6_ADDRSTRLEN];
      inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
      snprintf(local, sizeof local, "[%s%%%s]:0", host, ifa->ifa_name);
      index = if_nametoindex(ifa->ifa_name);
    }
  }
  freeifaddrs(all);
  if (!local[0]) {
    print_message("skipped: no link-local IPv6 address on this host\n");
    skip();
  }
  struct env e;
  env_init(&e);
  struct rec ra, rb;
  rec_init(&ra);
  rec_init(&rb);
  async_udp_options o = ASYNC_UDP_OPTIONS_INIT;
  o.local_address = local;
  int rc = udp_open_rc(&e, &rb, &o);
  if (rc == ASYNC_EADDRNOTAVAIL) { /* still tentative (duplicate address detection) */
    env_finish(&e);
    print_message("skipped: %s not usable yet\n", local);
    skip();
  }
  assert_int_equal(rc, 0);
  struct sockaddr_in6 bound;
  assert_int_equal(async_datagram_sockname((struct sockaddr *)&bound, sizeof bound, rb.d), (int)sizeof bound);
  assert_int_equal(bound.sin6_scope_id, index);
  char to[ASYNC_ADDR_STRLEN];
  local_text(rb.d, to, sizeof to); /* "[fe80::...%ifname]:port" */
  assert_non_null(strchr(to, '%'));
  assert_int_equal(udp_open_rc(&e, &ra, &o), 0);
  assert_int_equal(LIB(async_datagram_sendto(ra.d, "scoped", 6, to)), 0);
  wait_count(&e, &rb, EV_DGRAM, 1);
  assert_memory_equal(rb.data[0], "scoped", 6);
  assert_int_equal(((struct sockaddr_in6 *)&rb.from[0])->sin6_scope_id, index);
  end_all(&e, (struct rec *[]){&ra, &rb, NULL});
}

/* ------------------------------------------------------------------ */
/* Bad input                                                           */

static void test_open_bad_input(void **state) {
  (void)state;
  struct env e;
  env_init(&e);
  struct rec r;
  rec_init(&r);
  async_datagram_protocol p = rec_proto();
  async_datagram *d = NULL;
  async_udp_options o = ASYNC_UDP_OPTIONS_INIT;
  o.local_address = "127.0.0.1:0";
  assert_int_equal(async_udp_open(NULL, e.loop, &o, &p, &r), ASYNC_EINVAL);
  assert_int_equal(async_udp_open(&d, NULL, &o, &p, &r), ASYNC_EINVAL);
  assert_int_equal(async_udp_open(&d, (async_loop *)e.guard, &o, &p, &r), ASYNC_EINVAL);
  assert_int_equal(async_udp_open(&d, e.loop, NULL, &p, &r), ASYNC_EINVAL);
  assert_int_equal(async_udp_open(&d, e.loop, &o, NULL, &r), ASYNC_EINVAL);
  async_datagram_protocol bad = p;
  bad.size = 4;
  assert_int_equal(async_udp_open(&d, e.loop, &o, &bad, &r), ASYNC_EINVAL);
  bad = p;
  bad.datagram_received = NULL;
  assert_int_equal(async_udp_open(&d, e.loop, &o, &bad, &r), ASYNC_EINVAL);
  bad = p;
  bad.connection_lost = NULL;
  assert_int_equal(async_udp_open(&d, e.loop, &o, &bad, &r), ASYNC_EINVAL);
  async_udp_options bo = o;
  bo.size = 4;
  assert_int_equal(async_udp_open(&d, e.loop, &bo, &p, &r), ASYNC_EINVAL);
  static const struct {
    int family;
    const char *local, *remote;
  } cases[] = {
      {AF_UNSPEC, NULL, NULL},                /* no family at all */
      {AF_UNIX, NULL, NULL},                  /* not a UDP family */
      {12345, "127.0.0.1:0", NULL},           /* nonsense */
      {AF_UNSPEC, "127.0.0.1:99999", NULL},   /* port out of range */
      {AF_UNSPEC, "localhost:53", NULL},      /* names are not resolved here */
      {AF_UNSPEC, "bogus", NULL},
      {AF_UNSPEC, "", NULL},
      {AF_UNSPEC, "[fe80::1%nosuchif0]:0", NULL},
      {AF_UNSPEC, NULL, "127.0.0.1"},         /* remote port 0 */
      {AF_UNSPEC, NULL, "127.0.0.1:0"},
      {AF_UNSPEC, "127.0.0.1:0", "[::1]:53"}, /* families differ */
      {AF_INET, "[::1]:0", NULL},             /* not the family asked */
      {AF_INET6, NULL, "127.0.0.1:53"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    async_udp_options c = ASYNC_UDP_OPTIONS_INIT;
    c.family = cases[i].family;
    c.local_address = cases[i].local;
    c.remote_address = cases[i].remote;
    int rc = async_udp_open(&d, e.loop, &c, &p, &r);
    if (rc != ASYNC_EINVAL) {
      fail_msg("case %zu: want ASYNC_EINVAL, got %s", i, async_err_name(rc));
    }
  }
  assert_int_equal(async_udp_open(&d, e.loop, &(async_udp_options){sizeof(async_udp_options), AF_INET, 0, 0, 0, 0, 0,
                                                                   "192.0.2.200:0", NULL},
                                  &p, &r),
                   ASYNC_EADDRNOTAVAIL);
  /* Unix. */
  assert_int_equal(async_unix_datagram_open(&d, e.loop, "", NULL, &p, &r), ASYNC_EINVAL);
  assert_int_equal(async_unix_datagram_open(&d, e.loop, "@", NULL, &p, &r), ASYNC_EINVAL);
  char longpath[200];
  memset(longpath, 'x', sizeof longpath - 1);
  longpath[sizeof longpath - 1] = '\0';
  assert_int_equal(async_unix_datagram_open(&d, e.loop, longpath, NULL, &p, &r), ASYNC_EINVAL);
  assert_int_equal(async_unix_datagram_open(&d, e.loop, NULL, longpath, &p, &r), ASYNC_EINVAL);
  assert_int_equal(async_unix_datagram_open(&d, e.loop, NULL, NULL, NULL, &r), ASYNC_EINVAL);
  assert_int_equal(async_unix_datagram_open(NULL, e.loop, NULL, NULL, &p, &r), ASYNC_EINVAL);
  assert_int_equal(r.nev, 0); /* nothing was called */
  env_finish(&e);
}

/* Adopting refuses what is not a datagram socket, and leaves it open. */
static void test_adopt_bad_input(void **state) {
  (void)state;
  struct env e;
  env_init(&e);
  struct rec r;
  rec_init(&r);
  async_datagram_protocol p = rec_proto();
  async_datagram *d = NULL;
  assert_int_equal(async_datagram_adopt(&d, e.loop, -1, &p, &r), ASYNC_EBADF);
  int pp[2];
  assert_int_equal(pipe(pp), 0);
  int closed = dup(pp[0]);
  close(closed);
  assert_int_equal(async_datagram_adopt(&d, e.loop, closed, &p, &r), ASYNC_EBADF);
  assert_int_equal(async_datagram_adopt(&d, e.loop, pp[0], &p, &r), ASYNC_EINVAL); /* a pipe */
  assert_true(fcntl(pp[0], F_GETFD) >= 0);
  tu_close_pair(pp);
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  assert_int_equal(async_datagram_adopt(&d, e.loop, sv[0], &p, &r), ASYNC_EINVAL);
  tu_close_pair(sv);
  assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
  assert_int_equal(async_datagram_adopt(&d, e.loop, sv[0], &p, &r), ASYNC_EINVAL);
  tu_close_pair(sv);
  int tcp = socket(AF_INET, SOCK_STREAM, 0);
  assert_int_equal(async_datagram_adopt(&d, e.loop, tcp, &p, &r), ASYNC_EINVAL);
  assert_true(fcntl(tcp, F_GETFD) >= 0);
  close(tcp);
  int file = open("/dev/null", O_RDONLY);
  assert_int_equal(async_datagram_adopt(&d, e.loop, file, &p, &r), ASYNC_EINVAL);
  close(file);
  int udp = socket(AF_INET, SOCK_DGRAM, 0);
  assert_int_equal(async_datagram_adopt(NULL, e.loop, udp, &p, &r), ASYNC_EINVAL);
  assert_int_equal(async_datagram_adopt(&d, NULL, udp, &p, &r), ASYNC_EINVAL);
  assert_int_equal(async_datagram_adopt(&d, e.loop, udp, NULL, &r), ASYNC_EINVAL);
  close(udp);
  assert_int_equal(r.nev, 0);
  env_finish(&e);
}

/* Sends and calls with bad arguments, on the wrong kind of object, and
 * after close. */
static void test_send_bad_input(void **state) {
  (void)state;
  struct env e;
  env_init(&e);
  struct rec r, ru;
  rec_init(&r);
  rec_init(&ru);
  async_datagram *d = udp_open(&e, &r, "127.0.0.1:0", NULL);
  struct sockaddr_in6 v6 = {.sin6_family = AF_INET6, .sin6_port = htons(9), .sin6_addr = IN6ADDR_LOOPBACK_INIT};
  struct sockaddr_in v4 = {.sin_family = AF_INET, .sin_port = htons(9)};
  v4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  async_datagram *timer_as_dgram = (async_datagram *)e.guard;
  assert_int_equal(async_datagram_send(NULL, "x", 1, (struct sockaddr *)&v4, sizeof v4), ASYNC_EINVAL);
  assert_int_equal(async_datagram_send(timer_as_dgram, "x", 1, (struct sockaddr *)&v4, sizeof v4), ASYNC_EINVAL);
  assert_int_equal(async_datagram_send(d, NULL, 1, (struct sockaddr *)&v4, sizeof v4), ASYNC_EINVAL);
  assert_int_equal(async_datagram_send(d, "x", 1, (struct sockaddr *)&v6, sizeof v6), ASYNC_EINVAL); /* family */
  assert_int_equal(async_datagram_send(d, "x", 1, (struct sockaddr *)&v4, sizeof v4 - 1), ASYNC_EINVAL);
  assert_int_equal(async_datagram_send(d, "x", 1, (struct sockaddr *)&v4, 1), ASYNC_EINVAL);
  assert_int_equal(async_datagram_send(d, "x", 1, (struct sockaddr *)&v4, 100000), ASYNC_EINVAL);
  assert_int_equal(async_datagram_send(d, "x", 1, NULL, 0), ASYNC_EINVAL); /* unconnected */
  assert_int_equal(async_datagram_sendto(d, "x", 1, NULL), ASYNC_EINVAL);
  assert_int_equal(async_datagram_sendto(d, "x", 1, "127.0.0.1"), ASYNC_EINVAL); /* port 0 */
  assert_int_equal(async_datagram_sendto(d, "x", 1, "not an address"), ASYNC_EINVAL);
  assert_int_equal(async_datagram_sendto(d, "x", 1, "[::1]:9"), ASYNC_EINVAL); /* v6 to a v4 transport */
  assert_int_equal(async_datagram_sendto(d, "x", 1, "@abstract"), ASYNC_EINVAL);
  assert_int_equal(async_datagram_sendto(d, NULL, 1, "127.0.0.1:9"), ASYNC_EINVAL);
  assert_int_equal(LIB(async_datagram_send(d, NULL, 0, (struct sockaddr *)&v4, sizeof v4)), 0); /* empty: fine */
  /* Queries and options. */
  size_t a, b;
  assert_int_equal(async_datagram_get_write_limits(NULL, &b, d), ASYNC_EINVAL);
  assert_int_equal(async_datagram_get_write_limits(&a, &b, NULL), ASYNC_EINVAL);
  assert_int_equal(async_datagram_write_buffer_size(NULL, d), ASYNC_EINVAL);
  assert_int_equal(async_datagram_set_write_limits(timer_as_dgram, 1, 0), ASYNC_EINVAL);
  assert_int_equal(async_datagram_fd(NULL), ASYNC_EINVAL);
  assert_null(async_datagram_loop(NULL));
  assert_ptr_equal(async_datagram_loop(d), e.loop);
  assert_true(async_datagram_fd(d) >= 0);
  struct sockaddr_in small;
  assert_int_equal(async_datagram_sockname((struct sockaddr *)&small, 4, d), ASYNC_ERANGE);
  assert_int_equal(async_datagram_sockname(NULL, 64, d), ASYNC_EINVAL);
  assert_int_equal(async_datagram_peername((struct sockaddr *)&small, sizeof small, d), ASYNC_EINVAL);
  assert_int_equal(async_datagram_close(NULL), ASYNC_EINVAL);
  assert_int_equal(async_datagram_abort(timer_as_dgram), ASYNC_EINVAL);
  assert_int_equal(async_datagram_pause_reading(NULL), ASYNC_EINVAL);
  assert_int_equal(async_datagram_is_reading(NULL), ASYNC_EINVAL);
  assert_int_equal(async_datagram_set_broadcast(NULL, 1), ASYNC_EINVAL);
  /* Options of UDP only. */
  async_datagram_protocol p = rec_proto();
  ru.loop = e.loop;
  assert_int_equal(LIB(async_unix_datagram_open(&ru.d, e.loop, NULL, NULL, &p, &ru)), 0);
  assert_int_equal(async_datagram_set_broadcast(ru.d, 1), ASYNC_EINVAL);
  assert_int_equal(async_datagram_set_multicast_ttl(ru.d, 1), ASYNC_EINVAL);
  assert_int_equal(async_datagram_set_multicast_loop(ru.d, 1), ASYNC_EINVAL);
  assert_int_equal(async_datagram_set_multicast_interface(ru.d, NULL), ASYNC_EINVAL);
  assert_int_equal(async_datagram_join_multicast(ru.d, GROUP4, NULL), ASYNC_EINVAL);
  assert_int_equal(LIB(async_datagram_send(ru.d, "x", 1, (struct sockaddr *)&v4, sizeof v4)), ASYNC_EINVAL);
  assert_int_equal(LIB(async_datagram_send(ru.d, "x", 1, NULL, 0)), ASYNC_EINVAL);
  close_and_wait(&e, &ru);
  /* After close: ASYNC_ECLOSED for what would act; close/abort are fine. */
  assert_int_equal(LIB(async_datagram_close(d)), 0);
  assert_int_equal(LIB(async_datagram_send(d, "x", 1, (struct sockaddr *)&v4, sizeof v4)), ASYNC_ECLOSED);
  assert_int_equal(LIB(async_datagram_sendto(d, "x", 1, "127.0.0.1:9")), ASYNC_ECLOSED);
  assert_int_equal(async_datagram_join_multicast(d, GROUP4, NULL), ASYNC_ECLOSED);
  assert_int_equal(async_datagram_set_broadcast(d, 1), ASYNC_ECLOSED);
  assert_int_equal(async_datagram_set_multicast_ttl(d, 1), ASYNC_ECLOSED);
  assert_int_equal(async_datagram_is_reading(d), 0);
  assert_int_equal(LIB(async_datagram_resume_reading(d)), 0);
  assert_int_equal(async_datagram_is_reading(d), 0);
  assert_int_equal(LIB(async_datagram_close(d)), 0);
  assert_int_equal(LIB(async_datagram_abort(d)), 0);
  assert_true(run_until(&e, c_released, &r, NULL, NULL, 2000));
  rec_assert_end(&r, 0);
  env_finish(&e);
}

/* ------------------------------------------------------------------ */
/* Loop interaction and resources                                      */

/* An open transport keeps the loop running and async_loop_free busy. */
static void test_loop_busy_while_open(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  struct rec r;
  rec_init(&r);
  r.loop = loop;
  async_datagram_protocol p = rec_proto();
  async_udp_options o = ASYNC_UDP_OPTIONS_INIT;
  o.local_address = "127.0.0.1:0";
  g_in_run++;
  assert_int_equal(async_udp_open(&r.d, loop, &o, &p, &r), 0);
  assert_int_equal(async_loop_free(loop), ASYNC_EBUSY);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_NOWAIT), 1); /* still alive */
  assert_int_equal(async_datagram_close(r.d), 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  g_in_run--;
  rec_assert_end(&r, 0);
  assert_int_equal(async_loop_free(loop), 0);
}

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  assert_non_null(d);
  int n = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    n += de->d_name[0] != '.';
  }
  closedir(d);
  return n;
}

/* Every way of ending (close, abort, a fatal error) closes the socket. */
static void test_no_fd_leak(void **state) {
  (void)state;
  int before = count_fds();
  struct env e;
  env_init(&e);
  struct rec r1, r2, r3;
  rec_init(&r1);
  rec_init(&r2);
  rec_init(&r3);
  udp_open(&e, &r1, "127.0.0.1:0", NULL);
  udp_open(&e, &r2, "127.0.0.1:0", NULL);
  int sv[2];
  dgram_pair(sv);
  adopt_rec(&e, sv[0], &r3);
  assert_true(run_until(&e, c_made, &r3, NULL, NULL, 2000));
  assert_int_equal(LIB(async_datagram_abort(r2.d)), 0);
  /* The fd closed behind the transport's back: a send ends it with
   * ASYNC_EBADF. */
  int fd = async_datagram_fd(r3.d);
  assert_int_equal(close(fd), 0);
  assert_int_equal(LIB(async_datagram_send(r3.d, "x", 1, NULL, 0)), 0);
  assert_true(run_until(&e, c_released, &r3, NULL, NULL, 2000));
  rec_assert_end(&r3, ASYNC_EBADF);
  assert_true(run_until(&e, c_released, &r2, NULL, NULL, 2000));
  close_and_wait(&e, &r1);
  close(sv[1]);
  env_finish(&e);
  assert_int_equal(count_fds(), before);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      PINGPONG_TEST("test_udp4_unconnected_pingpong", k_pp4),
      PINGPONG_TEST("test_udp4_connected_pingpong", k_pp4c),
      PINGPONG_TEST("test_udp6_unconnected_pingpong", k_pp6),
      PINGPONG_TEST("test_udp6_connected_pingpong", k_pp6c),
      cmocka_unit_test(test_made_first_and_order),
      cmocka_unit_test(test_empty_datagram),
      cmocka_unit_test(test_connected_rejects_other_address),
      cmocka_unit_test(test_connected6_rejects_other_address),
      cmocka_unit_test(test_wildcard_when_no_address),
      cmocka_unit_test(test_wildcard6_when_no_address),
      cmocka_unit_test(test_icmp_refused_then_usable),
      cmocka_unit_test(test_oversize_send_reported),
      cmocka_unit_test(test_truncation_reported),
      cmocka_unit_test(test_broadcast_option),
      cmocka_unit_test(test_multicast_v4_loopback),
      cmocka_unit_test(test_multicast_v6_options),
      cmocka_unit_test(test_flow_control_boundaries),
      cmocka_unit_test(test_write_limits),
      cmocka_unit_test(test_close_flushes_queue),
      cmocka_unit_test(test_abort_drops_queue),
      CLOSE_INSIDE_TEST("test_close_inside_made", k_in_made),
      CLOSE_INSIDE_TEST("test_close_inside_datagram", k_in_dgram),
      CLOSE_INSIDE_TEST("test_close_inside_error", k_in_error),
      CLOSE_INSIDE_TEST("test_close_inside_pause_writing", k_in_pause),
      CLOSE_INSIDE_TEST("test_close_inside_resume_writing", k_in_resume),
      cmocka_unit_test(test_abort_before_made),
      cmocka_unit_test(test_error_before_made_comes_after),
      cmocka_unit_test(test_pause_reading_keeps_batch),
      cmocka_unit_test(test_100k_datagrams_exactly_once),
      cmocka_unit_test(test_unix_datagram_paths),
      cmocka_unit_test(test_unix_datagram_abstract),
      cmocka_unit_test(test_unix_datagram_missing_peer),
      cmocka_unit_test(test_adopt_netlink),
      cmocka_unit_test(test_reuse_port),
      cmocka_unit_test(test_ipv6_only_and_buffers),
      cmocka_unit_test(test_ipv6_scope_id),
      cmocka_unit_test(test_open_bad_input),
      cmocka_unit_test(test_adopt_bad_input),
      cmocka_unit_test(test_send_bad_input),
      cmocka_unit_test(test_loop_busy_while_open),
      cmocka_unit_test(test_no_fd_leak),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
