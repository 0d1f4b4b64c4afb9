/*
 * UDP server on a hand-written epoll loop, the floor the libraries are
 * measured against: level-triggered epoll, recvmmsg into 16 slots of
 * 64 KiB until the socket is drained, echoes of a batch sent back with one
 * sendmmsg (what the socket refuses is dropped: on loopback it never
 * does). Modes and result line as udp_async.c.
 *
 * usage: udp_epoll PORT echo|sink
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>

#include "bench_common.h"
#include "bench_udp.h"

#define SLOTS 16
#define SLOT 65536
static char buffer[SLOTS][SLOT];

int main(int argc, char **argv) {
  int echo = udp_server_mode(argc, argv, "udp_epoll");
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  BENCH_CHECK(fd);
  int rcvbuf = UDP_BENCH_RCVBUF;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  BENCH_CHECK(bind(fd, (struct sockaddr *)&addr, sizeof addr));
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigprocmask(SIG_BLOCK, &sigs, NULL);
  int sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  BENCH_CHECK(sfd);
  BENCH_CHECK(ep);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
  BENCH_CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
  ev.data.fd = sfd;
  BENCH_CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev));
  struct udp_count count = {0, 0, 0};
  struct mmsghdr msgs[SLOTS];
  struct iovec iov[SLOTS];
  struct sockaddr_in from[SLOTS];
  udp_ready();
  for (;;) {
    struct epoll_event ready[2];
    int n = epoll_wait(ep, ready, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    BENCH_CHECK(n);
    for (int i = 0; i < n; i++) {
      if (ready[i].data.fd == sfd) {
        udp_count_print(&count);
        return 0;
      }
      /* Drain, at most 64 datagrams per wakeup like the libraries. */
      for (int round = 0; round < 4; round++) {
        for (int k = 0; k < SLOTS; k++) {
          iov[k].iov_base = buffer[k];
          iov[k].iov_len = SLOT;
          memset(&msgs[k].msg_hdr, 0, sizeof msgs[k].msg_hdr);
          msgs[k].msg_hdr.msg_name = &from[k];
          msgs[k].msg_hdr.msg_namelen = sizeof from[k];
          msgs[k].msg_hdr.msg_iov = &iov[k];
          msgs[k].msg_hdr.msg_iovlen = 1;
        }
        int got = recvmmsg(fd, msgs, SLOTS, 0, NULL);
        if (got <= 0) break;
        for (int k = 0; k < got; k++) {
          udp_count_one(&count);
          iov[k].iov_len = msgs[k].msg_len; /* echo exactly what came */
        }
        if (echo) sendmmsg(fd, msgs, (unsigned)got, 0);
        if (got < SLOTS) break;
      }
    }
  }
}
