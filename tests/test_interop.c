/*
 * Streams against independent peers and at scale: socat (Debian package,
 * started here on loopback) as an echo server for async_tcp_connect and as
 * a client of async_tcp_listen; 10,000 concurrent connections on one loop
 * (the clients in a child process), all echoing, all closed, fds back to
 * where they started.
 */
#include "test_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define SOCAT "/usr/bin/socat"

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  assert_non_null(d);
  int n = 0;
  while (readdir(d)) n++;
  closedir(d);
  return n;
}

/* A port free right now on 127.0.0.1 (for socat to listen on). */
static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(0x7f000001);
  socklen_t len = sizeof a;
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  close(fd);
  return ntohs(a.sin_port);
}

/* ---- a counting echo / sink protocol ------------------------------------- */

struct side {
  size_t sent;
  size_t got;
  uint32_t sum_sent;
  uint32_t sum_got;
  int made;
  int lost;
  int lost_error;
  size_t want; /* close once this much came back */
};

static size_t sink_data(async_stream *s, const uint8_t *d, size_t n, void *ud) {
  struct side *x = ud;
  for (size_t i = 0; i < n; i++) x->sum_got = x->sum_got * 31u + d[i];
  x->got += n;
  if (x->want && x->got >= x->want) async_stream_close(s);
  return n;
}

static void sink_made(async_stream *s, void *ud) {
  (void)s;
  ((struct side *)ud)->made++;
}

static void sink_lost(async_stream *s, int err, void *ud) {
  (void)s;
  struct side *x = ud;
  x->lost++;
  x->lost_error = err;
}

static const async_stream_protocol k_sink = {
    sizeof(async_stream_protocol), sink_made, sink_data, NULL, sink_lost, NULL, NULL, NULL, NULL, 0, NULL,
};


static pid_t spawn(char *const argv[], int stdin_fd, int stdout_fd) {
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    if (stdin_fd >= 0) dup2(stdin_fd, 0);
    if (stdout_fd >= 0) dup2(stdout_fd, 1);
    execv(argv[0], argv);
    _exit(127);
  }
  return pid;
}

/* ---- socat as the echo server -------------------------------------------- */

static void test_socat_echo_server(void **state) {
  (void)state;
  if (access(SOCAT, X_OK) != 0) skip();
  int port = free_port();
  char listen_arg[96];
  snprintf(listen_arg, sizeof listen_arg, "TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr", port);
  char *argv[] = {SOCAT, "-T", "10", listen_arg, "PIPE", NULL};
  pid_t pid = spawn(argv, -1, -1);
  async_loop *loop = tu_loop_new();
  /* socat needs a moment to listen: retry the connect. */
  struct side x = {.want = 1u << 20};
  async_future *f = NULL;
  uint64_t t0 = tu_now_ns();
  for (;;) {
    assert_int_equal(async_tcp_connect(&f, loop, "127.0.0.1", (uint16_t)port, NULL, &k_sink, &x), 0);
    int st = async_loop_run_until(loop, f);
    if (st == 0) break;
    assert_int_equal(st, ASYNC_ECONNREFUSED);
    assert_int_equal(async_future_free(f), 0);
    assert_true(tu_elapsed_ms(t0) < 3000.0);
    tu_sleep_ms(20);
  }
  void *stream = NULL;
  assert_int_equal(async_future_result(&stream, f), 0);
  static uint8_t data[1u << 20];
  for (size_t i = 0; i < sizeof data; i++) {
    data[i] = (uint8_t)(i * 7u + 3u);
    x.sum_sent = x.sum_sent * 31u + data[i];
  }
  assert_int_equal(async_stream_write(stream, data, sizeof data), 0);
  assert_int_equal(async_future_free(f), 0);
  t0 = tu_now_ns();
  while (x.lost == 0) {
    async_loop_run(loop, ASYNC_RUN_ONCE);
    assert_true(tu_elapsed_ms(t0) < 10000.0);
  }
  assert_int_equal(x.got, sizeof data);
  assert_int_equal(x.sum_got, x.sum_sent);
  assert_int_equal(x.lost_error, 0);
  tu_finish(loop);
  int status;
  kill(pid, SIGTERM);
  waitpid(pid, &status, 0);
}

/* ---- socat as a client of our echo server --------------------------------- */

static void test_socat_client(void **state) {
  (void)state;
  if (access(SOCAT, X_OK) != 0) skip();
  async_loop *loop = tu_loop_new();
  int lost = 0;
  async_server *server = NULL;
  assert_int_equal(async_tcp_listen(&server, loop, "127.0.0.1", 0, 0, 0, tu_echo_factory, &lost), 0);
  char connect_arg[96];
  snprintf(connect_arg, sizeof connect_arg, "TCP:127.0.0.1:%d", async_server_port(server));
  int in[2], out[2];
  assert_int_equal(pipe2(in, O_CLOEXEC), 0); /* the child keeps only its dup2 copies */
  assert_int_equal(pipe2(out, O_CLOEXEC), 0);
  /* socat - TCP: stdin goes to the server, what comes back to stdout;
   * after stdin's EOF it half-closes and waits up to -t for the rest. */
  char *argv[] = {SOCAT, "-t", "5", "-", connect_arg, NULL};
  pid_t pid = spawn(argv, in[0], out[1]);
  close(in[0]);
  close(out[1]);
  const char msg[] = "interop with socat\nsecond line\n";
  assert_int_equal(write(in[1], msg, sizeof msg - 1), (ssize_t)(sizeof msg - 1));
  close(in[1]);
  fcntl(out[0], F_SETFL, O_NONBLOCK);
  char got[128];
  size_t len = 0;
  uint64_t t0 = tu_now_ns();
  for (;;) {
    async_loop_run(loop, ASYNC_RUN_NOWAIT);
    ssize_t n = read(out[0], got + len, sizeof got - len);
    if (n > 0) len += (size_t)n;
    if (n == 0) break; /* socat exited */
    assert_true(tu_elapsed_ms(t0) < 10000.0);
    if (n < 0) tu_sleep_ms(1);
  }
  assert_int_equal(len, sizeof msg - 1);
  assert_memory_equal(got, msg, len);
  close(out[0]);
  int status;
  waitpid(pid, &status, 0);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  /* Our side saw socat's EOF and closed. */
  while (lost == 0) {
    async_loop_run(loop, ASYNC_RUN_NOWAIT);
    assert_true(tu_elapsed_ms(t0) < 10000.0);
  }
  int closed = 0;
  assert_int_equal(async_handle_set_userdata(async_server_handle(server), &closed), 0);
  assert_int_equal(async_handle_close(async_server_handle(server), tu_count_close_cb), 0);
  while (!closed) async_loop_run(loop, ASYNC_RUN_NOWAIT);
  tu_finish(loop);
}

/* ---- 10,000 concurrent connections ----------------------------------------- */

#ifndef N_CONN
#define N_CONN 10000
#endif

static struct side g_clients[N_CONN];

/* Fails the client process with the line number as its exit status. */
#define CHILD_CHECK(cond) \
  do {                    \
    if (!(cond)) return __LINE__ % 250 + 1; \
  } while (0)

/* The client side, in its own process with its own loop: connects N_CONN
 * times in batches (so the listen backlog keeps up), sends 8 bytes on each,
 * waits until every connection got its echo while all are open, then
 * closes them all. Returns 0 when everything went as expected. */
static int run_clients(uint16_t port) {
  async_loop *loop = NULL;
  CHILD_CHECK(async_loop_new(&loop) == 0);
  static async_future *futures[N_CONN];
  static async_stream *streams[N_CONN];
  uint64_t t0 = tu_now_ns();
  int started = 0, connected = 0;
  while (connected < N_CONN) {
    while (started < N_CONN && started - connected < 1000) {
      CHILD_CHECK(async_tcp_connect(&futures[started], loop, "127.0.0.1", port, NULL, &k_sink,
                                    &g_clients[started]) == 0);
      started++;
    }
    async_loop_run(loop, ASYNC_RUN_ONCE);
    while (connected < started && async_future_get_state(futures[connected]) != ASYNC_FUTURE_PENDING) {
      void *stream = NULL;
      CHILD_CHECK(async_future_result(&stream, futures[connected]) == 0);
      streams[connected] = stream;
      CHILD_CHECK(async_stream_write(stream, "01234567", 8) == 0);
      CHILD_CHECK(async_future_free(futures[connected]) == 0);
      connected++;
    }
    CHILD_CHECK(tu_elapsed_ms(t0) < 60000.0);
  }
  for (int echoed = 0; echoed < N_CONN;) {
    async_loop_run(loop, ASYNC_RUN_ONCE);
    echoed = 0;
    for (int i = 0; i < N_CONN; i++) echoed += g_clients[i].got == 8;
    CHILD_CHECK(tu_elapsed_ms(t0) < 90000.0);
  }
  for (int i = 0; i < N_CONN; i++) CHILD_CHECK(async_stream_close(streams[i]) == 0);
  CHILD_CHECK(async_loop_run(loop, ASYNC_RUN_DEFAULT) == 0);
  for (int i = 0; i < N_CONN; i++)
    CHILD_CHECK(g_clients[i].made == 1 && g_clients[i].lost == 1 && g_clients[i].lost_error == 0);
  CHILD_CHECK(async_loop_free(loop) == 0);
  return 0;
}

/* 10,000 connections on the server's loop, all open at once, all echoing,
 * then all closed by the clients: every server-side stream lost exactly
 * once and the fd count back where it started. The clients run in a child
 * process so that each process needs only N_CONN fds (a hard limit of
 * 20000 is common and raising it needs CAP_SYS_RESOURCE). */
static void test_ten_thousand_connections(void **state) {
  (void)state;
  struct rlimit old;
  assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
  rlim_t need = N_CONN + 256;
  struct rlimit want = {need, old.rlim_max > need ? old.rlim_max : need};
  if (setrlimit(RLIMIT_NOFILE, &want) != 0) skip(); /* hard limit too low, cannot raise it */
  int fds_before = count_fds();
  /* Forked before any loop exists, so the child inherits none of this
   * process's library state; it learns the port through a pipe. */
  int port_pipe[2];
  assert_int_equal(pipe(port_pipe), 0);
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    uint16_t port = 0;
    close(port_pipe[1]);
    int got = (int)read(port_pipe[0], &port, sizeof port);
    close(port_pipe[0]);
    _exit(got == (int)sizeof port ? run_clients(port) : 1);
  }
  close(port_pipe[0]);
  async_loop *loop = tu_loop_new();
  int server_lost = 0;
  async_server *server = NULL;
  assert_int_equal(async_tcp_listen(&server, loop, "127.0.0.1", 0, 4096, 0, tu_echo_factory, &server_lost), 0);
  uint16_t port = (uint16_t)async_server_port(server);
  assert_int_equal(write(port_pipe[1], &port, sizeof port), (ssize_t)sizeof port);
  close(port_pipe[1]);
  /* A 10 ms tick so the loop notices the child's exit even when idle. */
  async_timer *tick = tu_timer_start(loop, NULL, 10, 10, tu_noop_timer_cb);
  uint64_t t0 = tu_now_ns();
  int most = 0, status = 0;
  pid_t done = 0;
  while (done == 0 || server_lost < N_CONN) {
    async_loop_run(loop, ASYNC_RUN_ONCE);
    int open = async_server_connection_count(server);
    if (open > most) most = open;
    if (done == 0) done = waitpid(pid, &status, WNOHANG);
    if (done != 0 && server_lost < N_CONN) assert_int_equal(status, 0); /* the clients failed */
    assert_true(tu_elapsed_ms(t0) < 120000.0);
  }
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  assert_int_equal(most, N_CONN);
  assert_int_equal(server_lost, N_CONN);
  assert_int_equal(async_server_connection_count(server), 0);
  print_message("%d connections open at once, echoed and closed in %.0f ms\n", N_CONN, tu_elapsed_ms(t0));
  tu_close(async_timer_handle(tick));
  tu_server_close(loop, server);
  tu_finish(loop);
  assert_int_equal(count_fds(), fds_before);
  struct rlimit back = {old.rlim_cur, want.rlim_max};
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &back), 0);
}

int main(void) {
  signal(SIGPIPE, SIG_DFL); /* the library must never raise it */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_socat_echo_server),
      cmocka_unit_test(test_socat_client),
      cmocka_unit_test(test_ten_thousand_connections),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
