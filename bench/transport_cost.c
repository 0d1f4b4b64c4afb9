/*
 * What the kernel charges to move 64 MiB from one process to another over
 * a pipe and over a Unix stream socketpair, with no event loop: the parent
 * writes 256 KiB at a time, a forked child reads 128 KiB at a time (what
 * cat does), both blocking. Prints the CPU time of both processes together
 * (getrusage) and the wall time. The floor under bench/spawn_*.c's cat
 * rows, which pay it twice (to cat and back).
 *
 * usage: transport_cost pipe|socketpair [PIPE_SIZE]   (PIPE_SIZE: F_SETPIPE_SZ)
 */
#define _GNU_SOURCE

#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "bench_common.h"

#define TOTAL (64l * 1024 * 1024)
#define WRITE_SIZE (256 * 1024)
#define READ_SIZE (128 * 1024)

static void check(int ok, const char *what) {
  if (!ok) {
    perror(what);
    exit(1);
  }
}

int main(int argc, char **argv) {
  int socket_pair = argc > 1 && strcmp(argv[1], "socketpair") == 0;
  int fds[2];
  if (socket_pair) {
    check(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0, "socketpair");
  } else {
    check(pipe(fds) == 0, "pipe");
    if (argc > 2) check(fcntl(fds[1], F_SETPIPE_SZ, atoi(argv[2])) >= 0, "F_SETPIPE_SZ");
  }
  static char buf[WRITE_SIZE];
  memset(buf, 'x', sizeof buf);
  double cpu0 = bench_cpu_with_children();
  double t0 = bench_now();
  pid_t pid = fork();
  check(pid >= 0, "fork");
  if (pid == 0) {
    close(fds[1]);
    long got = 0;
    ssize_t n;
    while ((n = read(fds[0], buf, READ_SIZE)) > 0) got += n;
    _exit(got == TOTAL ? 0 : 1);
  }
  close(fds[0]);
  for (long sent = 0; sent < TOTAL;) {
    ssize_t n = write(fds[1], buf, sizeof buf);
    check(n > 0, "write");
    sent += n;
  }
  close(fds[1]);
  int status = 0;
  check(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0, "reader");
  double dt = bench_now() - t0;
  double cpu = bench_cpu_with_children() - cpu0;
  printf("RESULT bench=transport_cost transport=%s cpu_us_per_mib=%.0f mibps=%.0f\n", socket_pair ? "socketpair" : "pipe",
         cpu * 1e6 / 64, 64 / dt);
  return 0;
}
