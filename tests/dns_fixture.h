/*
 * DNS test fixtures (test code only, plain C, POSIX/Linux):
 *
 * - dnsfx: a real dnsmasq (Debian dnsmasq-base) started in the foreground as
 *   a child process on 127.0.0.1 and ::1, on a free high port, serving the
 *   zone described below and logging every query to a temporary file, so a
 *   test can assert how many queries a name caused.
 * - dnsfx_hole: a "blackhole" DNS server: UDP sockets on 127.0.0.1 (and ::1
 *   when available) that nobody reads, so clients time out. The test can
 *   count the datagrams that arrived, and may answer chosen query types by
 *   hand (dnsfx_blackhole_reply) to get "one family answered, the other
 *   never" deterministically.
 * - dnsfx_responder: answers A and AAAA queries with chosen addresses after
 *   a chosen delay per type, from a thread of the test; names with a chosen
 *   prefix may be left unanswered.
 *
 * Zone (tests/fixtures/dns.hosts plus dnsmasq flags; cares.md §7):
 *   v4only.test   192.0.2.10             (AAAA: NODATA)
 *   v6only.test   2001:db8::10           (A: NODATA)
 *   dual.test     192.0.2.20 2001:db8::20
 *   many.test     192.0.2.51..54 2001:db8::51 2001:db8::52
 *   ptr.test      192.0.2.60 2001:db8::60
 *   rec.test      192.0.2.30 2001:db8::30 (--host-record)
 *   alias.test    CNAME dual.test
 *   chain1.test   CNAME alias.test       (a CNAME chain ending at dual.test)
 *   wild.test, *.wild.test  192.0.2.40   (--address)
 *   anything else under .test: NXDOMAIN  (--local=/test/)
 *   2.0.192.in-addr.arpa, 8.b.d.0.1.0.0.2.ip6.arpa: PTR for the addresses
 *     above, NXDOMAIN for the others (--local)
 *   any other name (e.g. other.example): REFUSED (no upstream servers)
 * dnsmasq cannot produce a quick SERVFAIL in this setup (forwarding to a dead
 * or unusable upstream gives a timeout or REFUSED), so there is none.
 *
 * DNS_FIXTURE_DIR (absolute path of tests/fixtures, from Meson) locates the
 * fixture files; dnsfx_fixture_path() builds paths inside it.
 *
 * dnsfx_start() sends one readiness query itself (v4only.test, type A):
 * do not count queries for v4only.test.
 */
#ifndef LIBASYNC_DNS_FIXTURE_H
#define LIBASYNC_DNS_FIXTURE_H

#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* dnsfx_start() results besides 0. */
#define DNSFX_ENOTINSTALLED (-1) /* no dnsmasq executable: skip the tests */
#define DNSFX_EFAILED (-2)       /* dnsmasq did not start or did not answer */

/* DNS query types used with dnsfx_query() and dnsfx_blackhole_reply(). */
#define DNSFX_TYPE_A 1
#define DNSFX_TYPE_PTR 12
#define DNSFX_TYPE_AAAA 28

struct dnsfx {
  pid_t pid;          /* the dnsmasq child, 0 when not running */
  int port;           /* its UDP/TCP port on 127.0.0.1 (and ::1) */
  int has_v6;         /* 1 if it also listens on [::1]:port */
  int log_fd;         /* the (unlinked) log file, read with pread() */
  char servers[32];   /* "127.0.0.1:PORT" */
  char servers6[48];  /* "[::1]:PORT", or "" without IPv6 */
  char hosts_path[4096 + 512]; /* absolute path of dns.hosts */
};

/*
 * Starts dnsmasq on a free port (retrying on "Address already in use"),
 * waits (at most 5 s) until it answers a query for v4only.test with the
 * fixture address. Returns 0, DNSFX_ENOTINSTALLED or DNSFX_EFAILED (the
 * reason and dnsmasq's log are printed on stderr). The executable is
 * $DNSFX_DNSMASQ, else /usr/sbin/dnsmasq, else /usr/local/sbin/dnsmasq.
 */
int dnsfx_start(struct dnsfx *fx);

/* Kills (SIGTERM, then SIGKILL) and reaps dnsmasq; closes the log. Idempotent. */
void dnsfx_stop(struct dnsfx *fx);

/* "127.0.0.1:PORT", for async_dns_set_servers(). */
const char *dnsfx_servers(const struct dnsfx *fx);

/* "[::1]:PORT", or "" when dnsmasq could not listen on ::1. */
const char *dnsfx_servers6(const struct dnsfx *fx);

/*
 * How many "query[TYPE] NAME from ..." lines dnsmasq has logged so far for
 * exactly NAME (any type). Waits briefly (~20 ms) first so that a query just
 * sent is logged. Returns the count, or -1 on a read error.
 */
int dnsfx_count_queries(struct dnsfx *fx, const char *name);

/* Copies dnsmasq's log so far to stderr (for diagnosing a failure). */
void dnsfx_dump_log(struct dnsfx *fx);

/*
 * Sends one hand-made query (recursion desired) for name/qtype to
 * server_ip ("127.0.0.1" or "::1") port and waits up to timeout_ms for the
 * reply. Returns the reply's RCODE (0..15) and stores its answer count in
 * *ancount (may be NULL); -1 on timeout or error.
 */
int dnsfx_query(const char *server_ip, int port, const char *name, int qtype, int timeout_ms, int *ancount);

/* DNS_FIXTURE_DIR "/" file in a static buffer (one call at a time). */
const char *dnsfx_fixture_path(const char *file);

struct dnsfx_hole {
  int fd4;          /* UDP socket on 127.0.0.1:port */
  int fd6;          /* UDP socket on [::1]:port, or -1 */
  int port;
  int total;        /* datagrams received so far (all drained) */
  char servers[32]; /* "127.0.0.1:PORT" */
  char servers6[48];/* "[::1]:PORT" or "" */
  int rcode;        /* dnsfx_blackhole_reply(): 0 answers with records,
                       any other value replies with that rcode and no answer */
  int answers;      /* dnsfx_blackhole_reply() with rcode 0, the records
                       answering an A or AAAA query: DNSFX_ANSWER_* */
};

/* dnsfx_hole.answers: which address records answer an A or AAAA query. */
#define DNSFX_ANSWER_ASKED 0 /* one of the type asked (the default) */
#define DNSFX_ANSWER_OTHER 1 /* one of the other type only: an A query gets
                                the AAAA record, an AAAA query the A record */
#define DNSFX_ANSWER_BOTH 2  /* both, the type asked first */

/* Opens the blackhole on a free port. Returns 0 or -1. */
int dnsfx_blackhole_open(struct dnsfx_hole *h);

/*
 * Drains both sockets without blocking and returns how many datagrams have
 * arrived since dnsfx_blackhole_open() (total).
 */
int dnsfx_blackhole_count(struct dnsfx_hole *h);

/*
 * Waits up to timeout_ms for datagrams, drains them, and answers every
 * query whose type is qtype, for whatever name was asked, TTL 60, with
 * the records h->answers says (an A record is 192.0.2.20, an AAAA record
 * 2001:db8::20; DNSFX_TYPE_PTR: a PTR record naming the root, the empty
 * name), or h->rcode; other queries are dropped. qtype 0: the type (A or AAAA) of the first such query read in
 * this call. Returns after at least min_answers answers were sent (or the
 * timeout): the number of answers sent, or -1 on error. Datagrams read here
 * count in total as well.
 */
int dnsfx_blackhole_reply(struct dnsfx_hole *h, int qtype, int min_answers, int timeout_ms);

/* "127.0.0.1:PORT" of the blackhole. */
const char *dnsfx_blackhole_servers(const struct dnsfx_hole *h);

/* Closes the sockets. Idempotent. */
void dnsfx_blackhole_close(struct dnsfx_hole *h);

/*
 * dnsfx_responder: a DNS server run in a thread of the test, on UDP sockets
 * on 127.0.0.1 (and ::1 when available) like the blackhole's, answering
 * every A and AAAA query, whatever the name, with chosen addresses after a
 * chosen delay per type, counted from the query's arrival (for Happy
 * Eyeballs: "AAAA 25 ms after A"). Other queries are dropped.
 */
struct dnsfx_family {
  const char *addrs; /* up to 8 comma-separated addresses of the type; NULL or "": NODATA */
  int delay_ms;      /* answer this long after the query arrived; < 0: never answer */
};

struct dnsfx_responder {
  char servers[32];  /* "127.0.0.1:PORT" */
  char servers6[48]; /* "[::1]:PORT" or "" */
  struct dnsfx_responder_state *state; /* private */
};

/* Opens the sockets and starts the thread, answering A queries as a says
 * and AAAA ones as aaaa says. Returns 0, or -1 (malformed addresses, no
 * socket, no thread). */
int dnsfx_responder_start(struct dnsfx_responder *r, const struct dnsfx_family *a, const struct dnsfx_family *aaaa);

/* dnsfx_responder_start(), but queries for names whose first label starts
 * with drop (any case) are never answered: a server silent for those only
 * (they still count in dnsfx_responder_queries()). */
int dnsfx_responder_start_dropping(struct dnsfx_responder *r, const struct dnsfx_family *a,
                                   const struct dnsfx_family *aaaa, const char *drop);

/* How many queries of qtype (DNSFX_TYPE_A or DNSFX_TYPE_AAAA) have arrived so far. */
int dnsfx_responder_queries(const struct dnsfx_responder *r, int qtype);

/* Stops and joins the thread (replies still waiting are dropped), closes
 * the sockets. Idempotent. */
void dnsfx_responder_stop(struct dnsfx_responder *r);

#ifdef __cplusplus
}
#endif

#endif
