/*
 * An adopted netlink socket as a route monitor (async_datagram_adopt; the
 * use case of examples/netlink_monitor.c and pyroute2).
 *
 * The test runs in a network namespace of its own (unshare(CLONE_NEWNET)),
 * so nothing it does touches the host's links. There it subscribes a
 * NETLINK_ROUTE socket to the link and address groups, adopts it, creates
 * a dummy link (a veth pair where the kernel has no dummy driver) with
 * ip(8), brings it up, adds and removes an IPv4 and an IPv6 address, brings
 * it down and deletes it, and checks the transport delivered each change,
 * in order, between the steps. It needs root (CAP_NET_ADMIN and
 * CAP_SYS_ADMIN): without, it skips and says why.
 */
#include "test_util.h"
#include "loop_env.h"

#include <arpa/inet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define LINK "dgtest0"

enum change { LINK_DOWN, LINK_UP, ADDR_ADDED, ADDR_REMOVED, LINK_REMOVED };
static const char *const change_name[] = {"link down", "link up", "address added", "address removed",
                                          "link removed"};

#define MAXCH 64

/* The monitor: the changes seen for one interface, in order. */
struct monitor {
  int ifindex;
  int up; /* last state seen: -1 unknown */
  int n;
  enum change what[MAXCH];
  char addr[MAXCH][INET6_ADDRSTRLEN + 4];
  int errors;
  int lost;
};

static void add_change(struct monitor *m, enum change what, const char *addr) {
  if (m->n < MAXCH) {
    m->what[m->n] = what;
    snprintf(m->addr[m->n], sizeof m->addr[m->n], "%s", addr);
  }
  m->n++;
}

static void on_link(struct monitor *m, const struct nlmsghdr *h) {
  const struct ifinfomsg *ifi = NLMSG_DATA(h);
  if (ifi->ifi_index != m->ifindex) {
    return;
  }
  if (h->nlmsg_type == RTM_DELLINK) {
    add_change(m, LINK_REMOVED, "");
    return;
  }
  int up = (ifi->ifi_flags & IFF_UP) != 0;
  if (up != m->up) { /* other attribute changes are not news */
    m->up = up;
    add_change(m, up ? LINK_UP : LINK_DOWN, "");
  }
}

static void on_address(struct monitor *m, const struct nlmsghdr *h) {
  const struct ifaddrmsg *ifa = NLMSG_DATA(h);
  if ((int)ifa->ifa_index != m->ifindex) {
    return;
  }
  const void *addr = NULL;
  int len = (int)IFA_PAYLOAD(h);
  for (const struct rtattr *a = IFA_RTA(ifa); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    if (a->rta_type == IFA_LOCAL || (a->rta_type == IFA_ADDRESS && !addr)) {
      addr = RTA_DATA(a);
    }
  }
  char text[INET6_ADDRSTRLEN], full[INET6_ADDRSTRLEN + 4];
  if (!addr || !inet_ntop(ifa->ifa_family, addr, text, sizeof text)) {
    return;
  }
  if (strncmp(text, "fe80:", 5) == 0) {
    return; /* the kernel's own link-local address comes and goes with the link */
  }
  snprintf(full, sizeof full, "%s/%u", text, ifa->ifa_prefixlen);
  add_change(m, h->nlmsg_type == RTM_NEWADDR ? ADDR_ADDED : ADDR_REMOVED, full);
}

static void mon_received(async_datagram *d, const uint8_t *data, size_t len, const struct sockaddr *addr,
                         size_t addrlen, void *ud) {
  (void)d;
  (void)addr;
  (void)addrlen;
  struct monitor *m = ud;
  for (const struct nlmsghdr *h = (const struct nlmsghdr *)data; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
    if (h->nlmsg_type == RTM_NEWLINK || h->nlmsg_type == RTM_DELLINK) {
      on_link(m, h);
    } else if (h->nlmsg_type == RTM_NEWADDR || h->nlmsg_type == RTM_DELADDR) {
      on_address(m, h);
    }
  }
}

static void mon_error(async_datagram *d, int err, void *ud) {
  (void)d;
  (void)err;
  ((struct monitor *)ud)->errors++;
}

static void mon_lost(async_datagram *d, int err, void *ud) {
  (void)d;
  (void)err;
  ((struct monitor *)ud)->lost++;
}

/* ------------------------------------------------------------------ */

/* Runs an ip(8) command quietly; its exit status. */
static int ip(const char *args) {
  char cmd[256];
  snprintf(cmd, sizeof cmd, "ip %s >/dev/null 2>&1", args);
  int rc = system(cmd);
  return rc == -1 ? -1 : WEXITSTATUS(rc);
}

/* Why the test cannot run here, or NULL once it has its own namespace. */
static const char *g_no_netns = "not set up";

static int setup_namespace(void **state) {
  (void)state;
  if (geteuid() != 0) {
    g_no_netns = "creating links needs root (CAP_NET_ADMIN)";
  } else if (unshare(CLONE_NEWNET) != 0) {
    g_no_netns = "no network namespace of its own (unshare failed)";
  } else {
    g_no_netns = NULL;
  }
  return 0;
}

/* Creates LINK in the test's namespace; 0 when neither kind exists. */
static int create_link(void) {
  if (ip("link add " LINK " type dummy") == 0) {
    return 1;
  }
  return ip("link add " LINK " type veth peer name dgtest1") == 0;
}

struct step_wait {
  struct monitor *m;
  int n;
};

static int c_changes(void *arg) {
  struct step_wait *w = arg;
  return w->m->n >= w->n;
}

/* Runs the ip command, then the loop until the monitor has seen n
 * changes in all; fails the test after 3 s. */
static void step(struct env *e, struct monitor *m, const char *args, int n) {
  if (ip(args) != 0) {
    fail_msg("ip %s failed", args);
  }
  struct step_wait w = {m, n};
  if (!run_until(e, c_changes, &w, NULL, NULL, 3000)) {
    fail_msg("after 'ip %s': %d changes seen, %d expected", args, m->n, n);
  }
}

static void test_monitor_sees_changes_in_order(void **state) {
  (void)state;
  if (g_no_netns) {
    print_message("skipped: %s\n", g_no_netns);
    skip();
  }
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  assert_true(fd >= 0);
  struct sockaddr_nl local = {.nl_family = AF_NETLINK};
  local.nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR;
  assert_int_equal(bind(fd, (struct sockaddr *)&local, sizeof local), 0);
  if (!create_link()) {
    close(fd);
    print_message("skipped: neither dummy nor veth links can be created here (ip link add failed)\n");
    skip();
  }
  struct monitor m;
  memset(&m, 0, sizeof m);
  m.up = -1;
  m.ifindex = (int)if_nametoindex(LINK);
  assert_true(m.ifindex > 0);
  struct env e;
  env_init(&e);
  async_datagram_protocol p = ASYNC_DATAGRAM_PROTOCOL_INIT;
  p.datagram_received = mon_received;
  p.error_received = mon_error;
  p.connection_lost = mon_lost;
  async_datagram *d = NULL;
  assert_int_equal(LIB(async_datagram_adopt(&d, e.loop, fd, &p, &m)), 0);
  /* The creation itself (queued in the socket before the adoption). */
  struct step_wait w = {&m, 1};
  assert_true(run_until(&e, c_changes, &w, NULL, NULL, 3000));
  step(&e, &m, "link set " LINK " up", 2);
  step(&e, &m, "addr add 192.0.2.77/24 dev " LINK, 3);
  step(&e, &m, "addr add 2001:db8::77/64 dev " LINK " nodad", 4);
  step(&e, &m, "addr del 192.0.2.77/24 dev " LINK, 5);
  step(&e, &m, "addr del 2001:db8::77/64 dev " LINK, 6);
  step(&e, &m, "link set " LINK " down", 7);
  step(&e, &m, "link del " LINK, 8);
  run_for(&e, 50, NULL, NULL); /* nothing more comes for it */
  static const struct {
    enum change what;
    const char *addr;
  } want[] = {
      {LINK_DOWN, ""},
      {LINK_UP, ""},
      {ADDR_ADDED, "192.0.2.77/24"},
      {ADDR_ADDED, "2001:db8::77/64"},
      {ADDR_REMOVED, "192.0.2.77/24"},
      {ADDR_REMOVED, "2001:db8::77/64"},
      {LINK_DOWN, ""},
      {LINK_REMOVED, ""},
  };
  int nwant = (int)(sizeof want / sizeof want[0]);
  for (int i = 0; i < m.n && i < MAXCH; i++) {
    print_message("change %d: %s %s\n", i, change_name[m.what[i]], m.addr[i]);
  }
  assert_int_equal(m.n, nwant);
  for (int i = 0; i < nwant; i++) {
    assert_int_equal(m.what[i], want[i].what);
    assert_string_equal(m.addr[i], want[i].addr);
  }
  assert_int_equal(m.errors, 0);
  assert_int_equal(LIB(async_datagram_close(d)), 0);
  env_finish(&e);
  assert_int_equal(m.lost, 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_monitor_sees_changes_in_order),
  };
  return cmocka_run_group_tests(tests, setup_namespace, NULL);
}
