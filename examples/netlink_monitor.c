/*
 * netlink_monitor.c: prints network links going up and down and addresses
 * being added and removed, as they happen (what pyroute2's IPRoute
 * monitor does, on libasync).
 *
 * An AF_NETLINK / NETLINK_ROUTE socket subscribed to the link and address
 * groups is made here and adopted as a datagram transport: each datagram
 * holds one or more netlink messages. First the current links and
 * addresses are dumped (one request at a time, as the kernel wants), then
 * every change is printed. If the kernel drops events because the socket
 * buffer overflowed, error_received says ASYNC_ENOBUFS: the state is dumped
 * again.
 *
 *   ./netlink_monitor              monitor until Ctrl-C (or kill -TERM);
 *                                  try: ip link set dev X down / up,
 *                                  ip addr add 192.0.2.1/24 dev X
 *   ./netlink_monitor --self-test  print the current state and exit
 *
 * Build: cc netlink_monitor.c $(pkg-config --cflags --libs libasync)
 */
#define _DEFAULT_SOURCE /* IFF_UP, IFF_RUNNING in <net/if.h> */
#include <async.h>

#include <arpa/inet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void check(int rc, const char *what) {
  if (rc < 0) {
    fprintf(stderr, "%s failed: %s (%s)\n", what, async_err_name(rc), async_strerror(rc));
    exit(1);
  }
}

/* What is known of each link, to print only changes of its up state. */
#define TRACKED_LINKS 256
struct link {
  int index;
  int up;
  char name[IF_NAMESIZE];
};

struct monitor {
  async_datagram *dgram;
  async_signal *sigint;
  async_signal *sigterm;
  int self_test;
  uint32_t port_id; /* this socket's netlink address */
  uint32_t seq;     /* of the last dump asked for */
  int next_dump;    /* RTM_GETLINK, then RTM_GETADDR, then 0 */
  struct link links[TRACKED_LINKS];
  int nlinks;
};

/* ---- requests ---- */

/* Asks the kernel for a dump of type (RTM_GETLINK or RTM_GETADDR). */
static void request_dump(struct monitor *m, int type) {
  struct {
    struct nlmsghdr h;
    struct rtgenmsg g;
  } req;
  memset(&req, 0, sizeof req);
  req.h.nlmsg_len = NLMSG_LENGTH(sizeof req.g);
  req.h.nlmsg_type = (uint16_t)type;
  req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.h.nlmsg_seq = ++m->seq;
  req.g.rtgen_family = AF_UNSPEC;
  /* NULL address: a netlink socket sends to the kernel. */
  check(async_datagram_send(m->dgram, &req, req.h.nlmsg_len, NULL, 0), "request dump");
}

static void start_dumps(struct monitor *m) {
  m->next_dump = RTM_GETADDR;
  request_dump(m, RTM_GETLINK);
}

/* ---- messages ---- */

static struct link *find_link(struct monitor *m, int index) {
  for (int i = 0; i < m->nlinks; i++) {
    if (m->links[i].index == index) return &m->links[i];
  }
  if (m->nlinks == TRACKED_LINKS) return NULL;
  struct link *l = &m->links[m->nlinks++];
  l->index = index;
  l->up = -1; /* not seen yet */
  l->name[0] = '\0';
  return l;
}

static const char *link_name(struct monitor *m, int index) {
  struct link *l = find_link(m, index);
  if (l && !l->name[0]) if_indextoname((unsigned)index, l->name);
  return l && l->name[0] ? l->name : "?";
}

static void on_link(struct monitor *m, const struct nlmsghdr *h) {
  const struct ifinfomsg *ifi = NLMSG_DATA(h);
  struct link *l = find_link(m, ifi->ifi_index);
  if (!l) return;
  int len = (int)IFLA_PAYLOAD(h);
  for (const struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    if (a->rta_type == IFLA_IFNAME) snprintf(l->name, sizeof l->name, "%s", (const char *)RTA_DATA(a));
  }
  if (h->nlmsg_type == RTM_DELLINK) {
    printf("link %d %s removed\n", l->index, l->name);
    *l = m->links[--m->nlinks]; /* forget it */
    return;
  }
  int up = (ifi->ifi_flags & IFF_UP) != 0;
  if (up == l->up) return; /* another attribute changed */
  l->up = up;
  printf("link %d %s %s%s\n", l->index, l->name, up ? "up" : "down",
         up && !(ifi->ifi_flags & IFF_RUNNING) ? " (no carrier)" : "");
}

static void on_address(struct monitor *m, const struct nlmsghdr *h) {
  const struct ifaddrmsg *ifa = NLMSG_DATA(h);
  const void *addr = NULL;
  int len = (int)IFA_PAYLOAD(h);
  for (const struct rtattr *a = IFA_RTA(ifa); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    /* IPv4: IFA_LOCAL is the address itself (IFA_ADDRESS the peer's on
     * point-to-point links); IPv6 has only IFA_ADDRESS. */
    if (a->rta_type == IFA_LOCAL || (a->rta_type == IFA_ADDRESS && !addr)) addr = RTA_DATA(a);
  }
  char text[INET6_ADDRSTRLEN];
  if (!addr || !inet_ntop(ifa->ifa_family, addr, text, sizeof text)) return;
  /* Dump answers are addressed to this socket; events to the group. */
  const char *what = h->nlmsg_pid == m->port_id ? "" : h->nlmsg_type == RTM_NEWADDR ? "added " : "removed ";
  printf("address %s%s/%u on %s\n", what, text, ifa->ifa_prefixlen, link_name(m, (int)ifa->ifa_index));
}

/* The end of a dump: the next one, or (self-test) the end of the run. */
static void on_done(struct monitor *m) {
  if (m->next_dump) {
    int type = m->next_dump;
    m->next_dump = 0;
    request_dump(m, type);
    return;
  }
  printf(m->self_test ? "state printed\n" : "monitoring changes (Ctrl-C to stop)\n");
  fflush(stdout);
  if (m->self_test) raise(SIGTERM);
}

static void on_datagram(async_datagram *dgram, const uint8_t *data, size_t len, const struct sockaddr *addr,
                        size_t addrlen, void *userdata) {
  (void)dgram;
  (void)addr;
  (void)addrlen;
  struct monitor *m = userdata;
  for (const struct nlmsghdr *h = (const struct nlmsghdr *)data; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
    switch (h->nlmsg_type) {
      case RTM_NEWLINK:
      case RTM_DELLINK: on_link(m, h); break;
      case RTM_NEWADDR:
      case RTM_DELADDR: on_address(m, h); break;
      case NLMSG_DONE: on_done(m); break;
      case NLMSG_ERROR: {
        const struct nlmsgerr *e = NLMSG_DATA(h);
        if (e->error) fprintf(stderr, "netlink request failed: %s\n", strerror(-e->error));
        break;
      }
      default: break;
    }
  }
  fflush(stdout);
}

static void on_error(async_datagram *dgram, int error, void *userdata) {
  (void)dgram;
  struct monitor *m = userdata;
  fprintf(stderr, "netlink: %s\n", async_strerror(error));
  if (error == ASYNC_ENOBUFS && !m->next_dump) {
    fprintf(stderr, "events were lost: dumping the state again\n");
    start_dumps(m);
  }
}

static void on_lost(async_datagram *dgram, int error, void *userdata) {
  (void)dgram;
  (void)userdata;
  if (error) fprintf(stderr, "netlink socket lost: %s\n", async_strerror(error));
}

static const async_datagram_protocol monitor_protocol = {
    sizeof(async_datagram_protocol), NULL, on_datagram, on_error, on_lost, NULL, NULL, NULL,
};

/* ---- shutdown on SIGINT / SIGTERM ---- */

static void on_signal(async_signal *sig, int signum, void *userdata) {
  (void)sig;
  struct monitor *m = userdata;
  if (!m->self_test) printf("signal %d: stopping\n", signum);
  check(async_datagram_close(m->dgram), "close");
  check(async_handle_close(async_signal_handle(m->sigint), NULL), "close SIGINT");
  check(async_handle_close(async_signal_handle(m->sigterm), NULL), "close SIGTERM");
}

int main(int argc, char **argv) {
  static struct monitor m;
  m.self_test = argc == 2 && strcmp(argv[1], "--self-test") == 0;
  if (argc > 2 || (argc == 2 && !m.self_test)) {
    fprintf(stderr, "usage: netlink_monitor [--self-test]\n");
    return 2;
  }
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) {
    perror("socket(AF_NETLINK)");
    return 1;
  }
  struct sockaddr_nl local = {.nl_family = AF_NETLINK};
  local.nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR;
  if (bind(fd, (struct sockaddr *)&local, sizeof local) != 0) {
    perror("bind(AF_NETLINK)");
    return 1;
  }
  socklen_t len = sizeof local;
  getsockname(fd, (struct sockaddr *)&local, &len);
  m.port_id = local.nl_pid;
  async_loop *loop;
  check(async_loop_new(&loop), "async_loop_new");
  check(async_datagram_adopt(&m.dgram, loop, fd, &monitor_protocol, &m), "async_datagram_adopt");
  check(async_signal_new(&m.sigint, loop, &m), "async_signal_new");
  check(async_signal_new(&m.sigterm, loop, &m), "async_signal_new");
  check(async_signal_start(m.sigint, SIGINT, on_signal), "SIGINT");
  check(async_signal_start(m.sigterm, SIGTERM, on_signal), "SIGTERM");
  start_dumps(&m);
  check(async_loop_run(loop, ASYNC_RUN_DEFAULT), "async_loop_run");
  check(async_loop_free(loop), "async_loop_free");
  return 0;
}
