/*
 * DNS test fixtures: a real dnsmasq child process, a UDP blackhole and a
 * delayed responder thread (see dns_fixture.h). Test code: plain C, POSIX +
 * Linux (prctl), no libasync.
 */
#include "dns_fixture.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef DNS_FIXTURE_DIR
#define DNS_FIXTURE_DIR "tests/fixtures"
#endif

/* ------------------------------------------------------------------------ */
/* Small helpers                                                            */
/* ------------------------------------------------------------------------ */

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms) {
  struct timespec ts;
  ts.tv_sec = ms / 1000;
  ts.tv_nsec = (ms % 1000) * 1000000L;
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

const char *dnsfx_fixture_path(const char *file) {
  static char buf[4096 + 512];
  char dir[4096];
  const char *d = DNS_FIXTURE_DIR;
  /* dnsmasq needs absolute paths (it changes directory at startup). */
  if (d[0] != '/' && realpath(d, dir) != NULL) {
    d = dir;
  }
  snprintf(buf, sizeof buf, "%s/%s", d, file);
  return buf;
}

/* A port that was free on 127.0.0.1 (UDP) a moment ago, or -1. */
static int free_udp_port(void) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return -1;
  }
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sin.sin_port = 0;
  socklen_t len = sizeof sin;
  int port = -1;
  if (bind(fd, (struct sockaddr *)&sin, sizeof sin) == 0 && getsockname(fd, (struct sockaddr *)&sin, &len) == 0) {
    port = ntohs(sin.sin_port);
  }
  close(fd);
  return port;
}

/* Fills addr for ip ("127.0.0.1", "::1") and port; returns its length or 0. */
static socklen_t make_addr(struct sockaddr_storage *ss, const char *ip, int port) {
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in *sin = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1) {
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    return sizeof *sin;
  }
  if (inet_pton(AF_INET6, ip, &sin6->sin6_addr) == 1) {
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons((uint16_t)port);
    return sizeof *sin6;
  }
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Hand-made DNS messages                                                   */
/* ------------------------------------------------------------------------ */

static void put16(unsigned char *p, unsigned v) {
  p[0] = (unsigned char)(v >> 8);
  p[1] = (unsigned char)v;
}

static unsigned get16(const unsigned char *p) { return ((unsigned)p[0] << 8) | p[1]; }

/* Encodes a query for name/qtype into buf; returns its length or -1. */
static int build_query(unsigned char *buf, size_t cap, unsigned id, const char *name, int qtype) {
  size_t n = 12;
  if (cap < 12 + strlen(name) + 6) {
    return -1;
  }
  memset(buf, 0, 12);
  put16(buf, id);
  put16(buf + 2, 0x0100); /* RD */
  put16(buf + 4, 1);      /* QDCOUNT */
  const char *p = name;
  while (*p != '\0') {
    const char *dot = strchr(p, '.');
    size_t len = dot != NULL ? (size_t)(dot - p) : strlen(p);
    if (len == 0 || len > 63) {
      return -1;
    }
    buf[n++] = (unsigned char)len;
    memcpy(buf + n, p, len);
    n += len;
    p += len;
    if (*p == '.') {
      p++;
    }
  }
  buf[n++] = 0;
  put16(buf + n, (unsigned)qtype);
  put16(buf + n + 2, 1); /* IN */
  return (int)(n + 4);
}

/* Offset just past the question of a message (one question), or -1. */
static int question_end(const unsigned char *msg, size_t len) {
  size_t n = 12;
  while (n < len) {
    unsigned l = msg[n];
    if (l == 0) {
      n++;
      break;
    }
    if ((l & 0xC0) != 0) {
      return -1; /* no compression in a question we sent or accept */
    }
    n += 1 + l;
  }
  if (n + 4 > len) {
    return -1;
  }
  return (int)(n + 4);
}

int dnsfx_query(const char *server_ip, int port, const char *name, int qtype, int timeout_ms, int *ancount) {
  static unsigned seq;
  struct sockaddr_storage ss;
  socklen_t sslen = make_addr(&ss, server_ip, port);
  if (sslen == 0) {
    return -1;
  }
  int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return -1;
  }
  /* connect(): only this server's replies arrive, ICMP errors are seen. */
  if (connect(fd, (struct sockaddr *)&ss, sslen) != 0) {
    close(fd);
    return -1;
  }
  unsigned char q[512];
  unsigned id = ((unsigned)getpid() * 31u + ++seq) & 0xFFFFu;
  int qlen = build_query(q, sizeof q, id, name, qtype);
  if (qlen < 0 || send(fd, q, (size_t)qlen, 0) != qlen) {
    close(fd);
    return -1;
  }
  long long deadline = now_ms() + timeout_ms;
  int rc = -1;
  for (;;) {
    long long left = deadline - now_ms();
    if (left <= 0) {
      break;
    }
    struct pollfd pfd = {.fd = fd, .events = POLLIN, .revents = 0};
    int pr = poll(&pfd, 1, (int)left);
    if (pr < 0 && errno == EINTR) {
      continue;
    }
    if (pr <= 0) {
      break;
    }
    unsigned char r[4096];
    ssize_t n = recv(fd, r, sizeof r, 0);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) {
        continue;
      }
      break; /* ECONNREFUSED: nobody listening */
    }
    if (n < 12 || get16(r) != id || (r[2] & 0x80) == 0) {
      continue;
    }
    if (ancount != NULL) {
      *ancount = (int)get16(r + 6);
    }
    rc = r[3] & 0x0F;
    break;
  }
  close(fd);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* dnsmasq                                                                  */
/* ------------------------------------------------------------------------ */

static const char *find_dnsmasq(void) {
  const char *env = getenv("DNSFX_DNSMASQ");
  if (env != NULL && env[0] != '\0') {
    return access(env, X_OK) == 0 ? env : NULL;
  }
  static const char *const candidates[] = {"/usr/sbin/dnsmasq", "/usr/local/sbin/dnsmasq", "/sbin/dnsmasq"};
  for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
    if (access(candidates[i], X_OK) == 0) {
      return candidates[i];
    }
  }
  return NULL;
}

/* The whole log so far, NUL-terminated (malloc'ed), or NULL. */
static char *read_log(const struct dnsfx *fx) {
  if (fx->log_fd < 0) {
    return NULL;
  }
  size_t cap = 65536, len = 0;
  char *buf = malloc(cap);
  if (buf == NULL) {
    return NULL;
  }
  for (;;) {
    if (cap - len < 4097) {
      char *nb = realloc(buf, cap * 2);
      if (nb == NULL) {
        free(buf);
        return NULL;
      }
      buf = nb;
      cap *= 2;
    }
    ssize_t n = pread(fx->log_fd, buf + len, cap - len - 1, (off_t)len);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      free(buf);
      return NULL;
    }
    if (n == 0) {
      break;
    }
    len += (size_t)n;
  }
  buf[len] = '\0';
  return buf;
}

void dnsfx_dump_log(struct dnsfx *fx) {
  char *log = read_log(fx);
  fprintf(stderr, "---- dnsmasq log (port %d) ----\n%s---- end of dnsmasq log ----\n", fx->port,
          log != NULL ? log : "(unreadable)\n");
  free(log);
}

static int log_contains(const struct dnsfx *fx, const char *needle) {
  char *log = read_log(fx);
  int found = log != NULL && strstr(log, needle) != NULL;
  free(log);
  return found;
}

static void kill_and_reap(pid_t pid) {
  if (pid <= 0) {
    return;
  }
  kill(pid, SIGTERM);
  for (int i = 0; i < 200; i++) { /* up to 2 s */
    pid_t r = waitpid(pid, NULL, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD)) {
      return;
    }
    sleep_ms(10);
  }
  kill(pid, SIGKILL);
  while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
  }
}

enum attempt_result { ATTEMPT_OK, ATTEMPT_RETRY, ATTEMPT_RETRY_NO_V6, ATTEMPT_FAIL };

static enum attempt_result start_attempt(struct dnsfx *fx, const char *exe, int port, int with_v6) {
  char tmpl[] = "/tmp/libasync-dnsfx-XXXXXX";
  int logfd = mkstemp(tmpl);
  if (logfd < 0) {
    perror("dnsfx: mkstemp");
    return ATTEMPT_FAIL;
  }
  unlink(tmpl);
  fcntl(logfd, F_SETFL, fcntl(logfd, F_GETFL) | O_APPEND);
  fcntl(logfd, F_SETFD, FD_CLOEXEC);
  fx->log_fd = logfd;
  fx->port = port;

  char a_port[32], a_hosts[4096 + 512 + 32];
  snprintf(a_port, sizeof a_port, "--port=%d", port);
  snprintf(a_hosts, sizeof a_hosts, "--addn-hosts=%s", fx->hosts_path);
  const char *argv[40];
  int ac = 0;
  argv[ac++] = "dnsmasq";
  argv[ac++] = "--keep-in-foreground";
  argv[ac++] = "--conf-file=/dev/null";
  argv[ac++] = "--no-resolv";
  argv[ac++] = "--no-hosts";
  argv[ac++] = "--listen-address=127.0.0.1";
  if (with_v6) {
    argv[ac++] = "--listen-address=::1";
  }
  argv[ac++] = "--bind-interfaces";
  argv[ac++] = a_port;
  argv[ac++] = "--pid-file=";
  argv[ac++] = "--log-facility=-";
  argv[ac++] = "--log-queries";
  argv[ac++] = "--local=/test/";
  argv[ac++] = "--local=/2.0.192.in-addr.arpa/";
  argv[ac++] = "--local=/8.b.d.0.1.0.0.2.ip6.arpa/";
  argv[ac++] = "--local-ttl=60";
  argv[ac++] = "--cache-size=0";
  if (geteuid() == 0) {
    argv[ac++] = "--user=root";
  }
  argv[ac++] = a_hosts;
  argv[ac++] = "--host-record=rec.test,192.0.2.30,2001:db8::30";
  argv[ac++] = "--cname=alias.test,dual.test";
  argv[ac++] = "--cname=chain1.test,alias.test";
  argv[ac++] = "--address=/wild.test/192.0.2.40";
  argv[ac] = NULL;

  pid_t parent = getpid();
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    perror("dnsfx: fork");
    return ATTEMPT_FAIL;
  }
  if (pid == 0) {
    /* Child: dies with the test process; stdin/stdout /dev/null, stderr the log. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) {
      _exit(126);
    }
    int devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0) {
      dup2(devnull, 0);
      dup2(devnull, 1);
    }
    dup2(logfd, 2);
    execv(exe, (char *const *)argv);
    _exit(127);
  }
  fx->pid = pid;

  long long deadline = now_ms() + 5000;
  int v4_ok = 0;
  while (now_ms() < deadline) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      fx->pid = 0;
      enum attempt_result res = ATTEMPT_FAIL;
      if (log_contains(fx, "Address already in use")) {
        res = ATTEMPT_RETRY;
      } else if (with_v6 && log_contains(fx, "::1")) {
        res = ATTEMPT_RETRY_NO_V6; /* no IPv6 loopback here */
      } else {
        fprintf(stderr, "dnsfx: dnsmasq exited (status 0x%x)\n", status);
        dnsfx_dump_log(fx);
      }
      close(fx->log_fd);
      fx->log_fd = -1;
      return res;
    }
    int an = 0;
    int rc = dnsfx_query("127.0.0.1", port, "v4only.test", DNSFX_TYPE_A, 100, &an);
    if (rc == 0 && an >= 1) {
      v4_ok = 1;
      break;
    }
    if (rc >= 0) {
      /* Answers, but not the fixture address: the hosts file was not read. */
      fprintf(stderr, "dnsfx: dnsmasq answered v4only.test with rcode %d, %d answers\n", rc, an);
      dnsfx_dump_log(fx);
      break;
    }
    sleep_ms(20);
  }
  if (!v4_ok) {
    fprintf(stderr, "dnsfx: dnsmasq did not answer on 127.0.0.1:%d\n", port);
    dnsfx_dump_log(fx);
    kill_and_reap(fx->pid);
    fx->pid = 0;
    close(fx->log_fd);
    fx->log_fd = -1;
    return ATTEMPT_FAIL;
  }
  fx->has_v6 = 0;
  if (with_v6) {
    int an = 0;
    fx->has_v6 = dnsfx_query("::1", port, "v4only.test", DNSFX_TYPE_A, 1000, &an) == 0 && an >= 1;
  }
  return ATTEMPT_OK;
}

int dnsfx_start(struct dnsfx *fx) {
  memset(fx, 0, sizeof *fx);
  fx->log_fd = -1;
  const char *exe = find_dnsmasq();
  if (exe == NULL) {
    return DNSFX_ENOTINSTALLED;
  }
  snprintf(fx->hosts_path, sizeof fx->hosts_path, "%s", dnsfx_fixture_path("dns.hosts"));
  if (access(fx->hosts_path, R_OK) != 0) {
    fprintf(stderr, "dnsfx: cannot read %s\n", fx->hosts_path);
    return DNSFX_EFAILED;
  }
  int with_v6 = 1;
  for (int attempt = 0; attempt < 8; attempt++) {
    int port = free_udp_port();
    if (port <= 0) {
      return DNSFX_EFAILED;
    }
    switch (start_attempt(fx, exe, port, with_v6)) {
    case ATTEMPT_OK:
      snprintf(fx->servers, sizeof fx->servers, "127.0.0.1:%d", port);
      if (fx->has_v6) {
        snprintf(fx->servers6, sizeof fx->servers6, "[::1]:%d", port);
      } else {
        fx->servers6[0] = '\0';
      }
      return 0;
    case ATTEMPT_RETRY:
      break;
    case ATTEMPT_RETRY_NO_V6:
      with_v6 = 0;
      break;
    case ATTEMPT_FAIL:
      return DNSFX_EFAILED;
    }
  }
  fprintf(stderr, "dnsfx: no free port found for dnsmasq\n");
  return DNSFX_EFAILED;
}

void dnsfx_stop(struct dnsfx *fx) {
  if (fx->pid > 0) {
    kill_and_reap(fx->pid);
    fx->pid = 0;
  }
  if (fx->log_fd >= 0) {
    close(fx->log_fd);
    fx->log_fd = -1;
  }
}

const char *dnsfx_servers(const struct dnsfx *fx) { return fx->servers; }

const char *dnsfx_servers6(const struct dnsfx *fx) { return fx->servers6; }

int dnsfx_count_queries(struct dnsfx *fx, const char *name) {
  sleep_ms(20); /* let dnsmasq log a query that was just sent */
  char *log = read_log(fx);
  if (log == NULL) {
    return -1;
  }
  size_t nlen = strlen(name);
  int count = 0;
  char *line = log;
  while (*line != '\0') {
    char *eol = strchr(line, '\n');
    if (eol == NULL) {
      break; /* incomplete last line */
    }
    *eol = '\0';
    /* "dnsmasq[PID]: query[AAAA] dual.test from 127.0.0.1" */
    char *q = strstr(line, ": query[");
    if (q != NULL) {
      char *close_br = strstr(q, "] ");
      if (close_br != NULL && strncmp(close_br + 2, name, nlen) == 0 &&
          strncmp(close_br + 2 + nlen, " from ", 6) == 0) {
        count++;
      }
    }
    line = eol + 1;
  }
  free(log);
  return count;
}

/* ------------------------------------------------------------------------ */
/* Blackhole                                                                */
/* ------------------------------------------------------------------------ */

static int bind_udp(int family, int port, int *out_port) {
  int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    return -1;
  }
  int big = 1 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  struct sockaddr_storage ss;
  socklen_t len = make_addr(&ss, family == AF_INET ? "127.0.0.1" : "::1", port);
  if (family == AF_INET6) {
    int one = 1;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  }
  if (bind(fd, (struct sockaddr *)&ss, len) != 0) {
    close(fd);
    return -1;
  }
  if (out_port != NULL) {
    socklen_t l = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &l) != 0) {
      close(fd);
      return -1;
    }
    *out_port = ntohs(((struct sockaddr_in *)&ss)->sin_port); /* same offset in sockaddr_in6 */
  }
  return fd;
}

int dnsfx_blackhole_open(struct dnsfx_hole *h) {
  memset(h, 0, sizeof *h);
  h->fd4 = -1;
  h->fd6 = -1;
  for (int attempt = 0; attempt < 8; attempt++) {
    int port = 0;
    int fd4 = bind_udp(AF_INET, 0, &port);
    if (fd4 < 0) {
      return -1;
    }
    int fd6 = bind_udp(AF_INET6, port, NULL);
    if (fd6 < 0 && attempt < 7) {
      /* ::1 may simply be unavailable (then go without), or the port taken. */
      int probe = bind_udp(AF_INET6, 0, NULL);
      if (probe >= 0) {
        close(probe);
        close(fd4);
        continue; /* IPv6 works, that port was taken: another port */
      }
    }
    h->fd4 = fd4;
    h->fd6 = fd6;
    h->port = port;
    snprintf(h->servers, sizeof h->servers, "127.0.0.1:%d", port);
    if (fd6 >= 0) {
      snprintf(h->servers6, sizeof h->servers6, "[::1]:%d", port);
    }
    return 0;
  }
  return -1;
}

/* Reads one datagram from fd (non-blocking); 1 read, 0 none. */
static int read_one(int fd, unsigned char *buf, size_t cap, ssize_t *len, struct sockaddr_storage *from,
                    socklen_t *fromlen) {
  if (fd < 0) {
    return 0;
  }
  for (;;) {
    *fromlen = sizeof *from;
    ssize_t n = recvfrom(fd, buf, cap, MSG_DONTWAIT, (struct sockaddr *)from, fromlen);
    if (n >= 0) {
      *len = n;
      return 1;
    }
    if (errno == EINTR) {
      continue;
    }
    return 0;
  }
}


/* Up to 8 records of one type and length (addresses: 4 or 16 bytes each). */
struct records {
  int type;
  int count;
  int len;
  unsigned char data[8][16];
};

/* Fills recs with the comma-separated addresses of list for qtype (A or
 * AAAA); NULL or "": none. Returns 0, or -1 for a malformed list. */
static int parse_records(struct records *recs, int qtype, const char *list) {
  int family = qtype == DNSFX_TYPE_A ? AF_INET : AF_INET6;
  recs->type = qtype;
  recs->count = 0;
  recs->len = family == AF_INET ? 4 : 16;
  while (list != NULL && *list != '\0') {
    const char *comma = strchr(list, ',');
    size_t n = comma != NULL ? (size_t)(comma - list) : strlen(list);
    char one[INET6_ADDRSTRLEN];
    if (n == 0 || n >= sizeof one || recs->count == 8) {
      return -1;
    }
    memcpy(one, list, n);
    one[n] = '\0';
    if (inet_pton(family, one, recs->data[recs->count++]) != 1) {
      return -1;
    }
    list = comma != NULL ? comma + 1 : NULL;
  }
  return 0;
}

/* The type of the one question of query msg (len bytes), and where the
 * question ends in *qend; -1 for anything but a query with one question. */
static int query_type(const unsigned char *msg, size_t len, int *qend) {
  if (len < 12 || (msg[2] & 0x80) != 0 || get16(msg + 4) != 1) {
    return -1;
  }
  *qend = question_end(msg, len);
  return *qend < 0 ? -1 : (int)get16(msg + *qend - 4);
}

/*
 * Builds into r (cap bytes) the reply to query msg whose question ends at
 * qend: with rcode != 0 that rcode and no answer, else NOERROR with the
 * records of the nsets sets, in order, each named as the question (none:
 * NODATA), TTL 60. Returns the reply's length, or 0 if it does not fit.
 */
static size_t build_reply(unsigned char *r, size_t cap, const unsigned char *msg, int qend, int rcode,
                          const struct records *sets, int nsets) {
  size_t need = (size_t)qend;
  unsigned ancount = 0;
  for (int s = 0; rcode == 0 && s < nsets; s++) {
    need += (size_t)sets[s].count * (12 + (size_t)sets[s].len);
    ancount += (unsigned)sets[s].count;
  }
  if (need > cap) {
    return 0;
  }
  memcpy(r, msg, (size_t)qend);
  /* QR, RD (copied), RA, the rcode; no authority, no EDNS OPT record. */
  put16(r + 2, (unsigned)(0x8180 | (get16(msg + 2) & 0x0100) | (rcode & 0xF)));
  put16(r + 6, ancount);
  put16(r + 8, 0);
  put16(r + 10, 0);
  size_t n = (size_t)qend;
  for (int s = 0; rcode == 0 && s < nsets; s++) {
    const struct records *recs = &sets[s];
    for (int i = 0; i < recs->count; i++) {
      put16(r + n, 0xC00C); /* the question's name */
      put16(r + n + 2, (unsigned)recs->type);
      put16(r + n + 4, 1);
      put16(r + n + 6, 0);
      put16(r + n + 8, 60); /* TTL */
      put16(r + n + 10, (unsigned)recs->len);
      memcpy(r + n + 12, recs->data[i], (size_t)recs->len);
      n += 12 + (size_t)recs->len;
    }
  }
  return n;
}

/* The blackhole's address for an A or AAAA record. */
static const char *hole_address(int qtype) { return qtype == DNSFX_TYPE_A ? "192.0.2.20" : "2001:db8::20"; }

/*
 * Answers query msg (len bytes) if its type is *want (0: A or AAAA, and *want
 * becomes that type) as h says (dnsfx_blackhole_reply()); returns 1 if
 * answered.
 */
static int answer(const struct dnsfx_hole *h, int fd, const unsigned char *msg, size_t len,
                  const struct sockaddr_storage *from, socklen_t fromlen, int *want) {
  int qend = 0;
  int qtype = query_type(msg, len, &qend);
  if (*want == 0 && (qtype == DNSFX_TYPE_A || qtype == DNSFX_TYPE_AAAA)) {
    *want = qtype;
  }
  int address = qtype == DNSFX_TYPE_A || qtype == DNSFX_TYPE_AAAA;
  if (qtype < 0 || qtype != *want || (h->rcode == 0 && !address && qtype != DNSFX_TYPE_PTR)) {
    return 0;
  }
  struct records sets[2] = {{0}, {0}};
  int nsets = 0;
  if (address) {
    int other = qtype == DNSFX_TYPE_A ? DNSFX_TYPE_AAAA : DNSFX_TYPE_A;
    if (h->answers != DNSFX_ANSWER_OTHER) {
      parse_records(&sets[nsets++], qtype, hole_address(qtype));
    }
    if (h->answers != DNSFX_ANSWER_ASKED) {
      parse_records(&sets[nsets++], other, hole_address(other));
    }
  } else if (qtype == DNSFX_TYPE_PTR) {
    /* The root: a name of one empty label. */
    sets[nsets++] = (struct records){.type = DNSFX_TYPE_PTR, .count = 1, .len = 1};
  }
  unsigned char r[1024];
  size_t n = build_reply(r, sizeof r, msg, qend, h->rcode, sets, nsets);
  return n > 0 && sendto(fd, r, n, 0, (const struct sockaddr *)from, fromlen) == (ssize_t)n;
}

/*
 * Reads every datagram waiting on the blackhole, counting them; with want
 * non-NULL, answers those of type *want (see answer()). Returns the number
 * answered.
 */
static int drain_hole(struct dnsfx_hole *h, int *want) {
  unsigned char buf[4096];
  struct sockaddr_storage from;
  socklen_t fromlen;
  ssize_t len;
  int answered = 0;
  int fds[2] = {h->fd4, h->fd6};
  for (int i = 0; i < 2; i++) {
    while (read_one(fds[i], buf, sizeof buf, &len, &from, &fromlen)) {
      h->total++;
      if (want != NULL) {
        answered += answer(h, fds[i], buf, (size_t)len, &from, fromlen, want);
      }
    }
  }
  return answered;
}

int dnsfx_blackhole_count(struct dnsfx_hole *h) {
  drain_hole(h, NULL);
  return h->total;
}

int dnsfx_blackhole_reply(struct dnsfx_hole *h, int qtype, int min_answers, int timeout_ms) {
  long long deadline = now_ms() + timeout_ms;
  int answered = 0;
  int want = qtype;
  for (;;) {
    answered += drain_hole(h, &want);
    long long left = deadline - now_ms();
    if (answered >= min_answers || left <= 0) {
      return answered;
    }
    struct pollfd pfd[2] = {{.fd = h->fd4, .events = POLLIN, .revents = 0},
                            {.fd = h->fd6, .events = POLLIN, .revents = 0}};
    if (poll(pfd, 2, (int)left) < 0 && errno != EINTR) {
      return -1;
    }
  }
}

const char *dnsfx_blackhole_servers(const struct dnsfx_hole *h) { return h->servers; }

void dnsfx_blackhole_close(struct dnsfx_hole *h) {
  if (h->fd4 >= 0) {
    close(h->fd4);
    h->fd4 = -1;
  }
  if (h->fd6 >= 0) {
    close(h->fd6);
    h->fd6 = -1;
  }
}

/* ------------------------------------------------------------------------ */
/* Delayed responder                                                        */
/* ------------------------------------------------------------------------ */

enum { RESPONDER_QUEUE = 16 };

struct pending_reply {
  long long due_ms;
  int fd;
  struct sockaddr_storage to;
  socklen_t tolen;
  size_t len;
  unsigned char msg[512];
};

struct dnsfx_responder_state {
  struct dnsfx_hole hole;
  struct records recs[2]; /* [0] A, [1] AAAA */
  int delay_ms[2];
  char drop[64]; /* names starting with this are never answered; "": none */
  atomic_int queries[2];
  int wake[2]; /* a pipe: writing to it stops the thread */
  pthread_t thread;
  int npending; /* replies waiting for their time, in arrival order */
  struct pending_reply pending[RESPONDER_QUEUE];
};

/* 1 if the first label of query msg's name starts with prefix (any case;
 * "" never matches). The name starts right after the 12-byte header. */
static int name_has_prefix(const unsigned char *msg, const char *prefix) {
  size_t n = strlen(prefix);
  return n > 0 && msg[12] >= n && strncasecmp((const char *)msg + 13, prefix, n) == 0;
}

/* Reads every waiting query, counts it, queues its reply (dropped when the
 * queue is full or the type is never answered). */
static void responder_read(struct dnsfx_responder_state *st) {
  unsigned char buf[4096];
  struct sockaddr_storage from;
  socklen_t fromlen;
  ssize_t len;
  int fds[2] = {st->hole.fd4, st->hole.fd6};
  for (int i = 0; i < 2; i++) {
    while (read_one(fds[i], buf, sizeof buf, &len, &from, &fromlen)) {
      int qend = 0;
      int qtype = query_type(buf, (size_t)len, &qend);
      int t = qtype == DNSFX_TYPE_A ? 0 : qtype == DNSFX_TYPE_AAAA ? 1 : -1;
      if (t < 0) {
        continue;
      }
      atomic_fetch_add(&st->queries[t], 1);
      if (st->delay_ms[t] < 0 || st->npending == RESPONDER_QUEUE || name_has_prefix(buf, st->drop)) {
        continue;
      }
      struct pending_reply *p = &st->pending[st->npending];
      p->len = build_reply(p->msg, sizeof p->msg, buf, qend, 0, &st->recs[t], 1);
      if (p->len == 0) {
        continue;
      }
      p->due_ms = now_ms() + st->delay_ms[t];
      p->fd = fds[i];
      p->to = from;
      p->tolen = fromlen;
      st->npending++;
    }
  }
}

/* Sends the replies whose time has come; returns the poll() timeout until
 * the next one (-1: none waiting). */
static int responder_send_due(struct dnsfx_responder_state *st) {
  int timeout = -1;
  int kept = 0;
  for (int i = 0; i < st->npending; i++) {
    struct pending_reply *p = &st->pending[i];
    long long left = p->due_ms - now_ms();
    if (left <= 0) {
      sendto(p->fd, p->msg, p->len, 0, (const struct sockaddr *)&p->to, p->tolen);
      continue;
    }
    if (timeout < 0 || left < timeout) {
      timeout = (int)left;
    }
    if (kept != i) {
      st->pending[kept] = *p;
    }
    kept++;
  }
  st->npending = kept;
  return timeout;
}

static void *responder_run(void *arg) {
  struct dnsfx_responder_state *st = arg;
  int timeout = -1;
  for (;;) {
    struct pollfd pfd[3] = {{.fd = st->hole.fd4, .events = POLLIN, .revents = 0},
                            {.fd = st->hole.fd6, .events = POLLIN, .revents = 0},
                            {.fd = st->wake[0], .events = POLLIN, .revents = 0}};
    if (poll(pfd, 3, timeout) < 0 && errno != EINTR) {
      return NULL;
    }
    if (pfd[2].revents != 0) {
      return NULL;
    }
    responder_read(st);
    timeout = responder_send_due(st);
  }
}

int dnsfx_responder_start(struct dnsfx_responder *r, const struct dnsfx_family *a, const struct dnsfx_family *aaaa) {
  return dnsfx_responder_start_dropping(r, a, aaaa, NULL);
}

int dnsfx_responder_start_dropping(struct dnsfx_responder *r, const struct dnsfx_family *a,
                                   const struct dnsfx_family *aaaa, const char *drop) {
  memset(r, 0, sizeof *r);
  struct dnsfx_responder_state *st = calloc(1, sizeof *st);
  if (st == NULL) {
    return -1;
  }
  const struct dnsfx_family *fam[2] = {a, aaaa};
  size_t drop_len = drop != NULL ? strlen(drop) : 0;
  int ok = drop_len < sizeof st->drop;
  if (ok && drop_len > 0) {
    memcpy(st->drop, drop, drop_len); /* st is zeroed: terminated */
  }
  for (int t = 0; t < 2; t++) {
    ok = ok && parse_records(&st->recs[t], t == 0 ? DNSFX_TYPE_A : DNSFX_TYPE_AAAA, fam[t]->addrs) == 0;
    st->delay_ms[t] = fam[t]->delay_ms;
    atomic_init(&st->queries[t], 0);
  }
  st->wake[0] = st->wake[1] = -1;
  if (!ok || dnsfx_blackhole_open(&st->hole) != 0) {
    free(st);
    return -1;
  }
  if (pipe2(st->wake, O_CLOEXEC) != 0 || pthread_create(&st->thread, NULL, responder_run, st) != 0) {
    if (st->wake[0] >= 0) {
      close(st->wake[0]);
      close(st->wake[1]);
    }
    dnsfx_blackhole_close(&st->hole);
    free(st);
    return -1;
  }
  snprintf(r->servers, sizeof r->servers, "%s", st->hole.servers);
  snprintf(r->servers6, sizeof r->servers6, "%s", st->hole.servers6);
  r->state = st;
  return 0;
}

int dnsfx_responder_queries(const struct dnsfx_responder *r, int qtype) {
  if (r->state == NULL || (qtype != DNSFX_TYPE_A && qtype != DNSFX_TYPE_AAAA)) {
    return 0;
  }
  return atomic_load(&r->state->queries[qtype == DNSFX_TYPE_A ? 0 : 1]);
}

void dnsfx_responder_stop(struct dnsfx_responder *r) {
  struct dnsfx_responder_state *st = r->state;
  if (st == NULL) {
    return;
  }
  while (write(st->wake[1], "x", 1) < 0 && errno == EINTR) {
  }
  pthread_join(st->thread, NULL);
  close(st->wake[0]);
  close(st->wake[1]);
  dnsfx_blackhole_close(&st->hole);
  free(st);
  r->state = NULL;
}
