/*
 * async_server (async/server.h): TCP and Unix listening, the protocol
 * factory, accepting many connections, running out of fds, closing the
 * server and its connections, bad input.
 */
#include "test_util.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* ---- an echo protocol counting its connections ------------------------ */

struct counts {
  int made;
  int lost;
  int released;
  int refused; /* factory calls answered with a refusal */
  int refuse;  /* factory: refuse every connection */
  int last_error;
  int nodelay;     /* async_stream_set_nodelay's answer in connection_made */
  int nodelay_on;  /* connections that had TCP_NODELAY on at connection_made */
  int fd_set_up;   /* connections whose fd was non-blocking and close-on-exec */
};

static void c_made(async_stream *s, void *ud) {
  struct counts *c = ud;
  c->made++;
  int fd = async_stream_fd(s);
  c->fd_set_up += (fcntl(fd, F_GETFL) & O_NONBLOCK) && (fcntl(fd, F_GETFD) & FD_CLOEXEC);
  int on = 0;
  socklen_t len = sizeof on;
  c->nodelay_on += getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &len) == 0 && on;
  c->nodelay = async_stream_set_nodelay(s, 1);
}

static size_t c_data(async_stream *s, const uint8_t *d, size_t n, void *ud) {
  (void)ud;
  assert_int_equal(async_stream_write(s, d, n), 0);
  return n;
}

static void c_lost(async_stream *s, int err, void *ud) {
  (void)s;
  struct counts *c = ud;
  c->lost++;
  c->last_error = err;
}

static void c_release(void *ud) { ((struct counts *)ud)->released++; }

static const async_stream_protocol k_echo = {
    sizeof(async_stream_protocol), c_made, c_data, NULL, c_lost, NULL, NULL, NULL, c_release, 0, NULL,
};

static int factory(const async_stream_protocol **p, void **ud, async_server *server, void *userdata) {
  struct counts *c = userdata;
  assert_non_null(server);
  if (c->refuse) {
    c->refused++;
    return -1;
  }
  *p = &k_echo;
  *ud = c;
  return 0;
}

/* ---- helpers ------------------------------------------------------------ */

/* Runs ONCE iterations until *flag >= want (bounded: 3 s). */
static void run_until_count(async_loop *loop, const int *flag, int want) {
  uint64_t t0 = tu_now_ns();
  while (*flag < want) {
    async_loop_run(loop, ASYNC_RUN_NOWAIT);
    assert_true(tu_elapsed_ms(t0) < 3000.0);
    if (*flag < want) tu_sleep_ms(1);
  }
}

static int tcp_client(int family, int port) {
  int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  struct sockaddr_storage ss = {0};
  socklen_t len;
  if (family == AF_INET6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    a->sin6_family = AF_INET6;
    a->sin6_addr = in6addr_loopback;
    a->sin6_port = htons((uint16_t)port);
    len = sizeof *a;
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a->sin_port = htons((uint16_t)port);
    len = sizeof *a;
  }
  assert_int_equal(connect(fd, (struct sockaddr *)&ss, len), 0);
  return fd;
}

/* Sends msg on fd and reads the echo back while the loop runs. */
static void echo_round_trip(async_loop *loop, int fd, const char *msg) {
  size_t n = strlen(msg);
  assert_int_equal(write(fd, msg, n), (ssize_t)n);
  char buf[256];
  size_t got = 0;
  uint64_t t0 = tu_now_ns();
  fcntl(fd, F_SETFL, O_NONBLOCK);
  while (got < n) {
    async_loop_run(loop, ASYNC_RUN_NOWAIT);
    ssize_t r = read(fd, buf + got, sizeof buf - got);
    if (r > 0) got += (size_t)r;
    assert_true(tu_elapsed_ms(t0) < 3000.0);
  }
  assert_memory_equal(buf, msg, n);
}

static int ipv6_available(void) {
  int fd = socket(AF_INET6, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
  int ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
  close(fd);
  return ok;
}

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  assert_non_null(d);
  int n = 0;
  while (readdir(d)) n++;
  closedir(d);
  return n;
}

static void close_server(async_loop *loop, async_server *server) {
  int closed = 0;
  assert_int_equal(async_handle_close(async_server_handle(server), tu_count_close_cb), 0);
  assert_int_equal(async_handle_set_userdata(async_server_handle(server), &closed), 0);
  run_until_count(loop, &closed, 1);
}

/* ---- tests -------------------------------------------------------------- */

/* Listens on a local name: "::1" (when the host has IPv6) and "127.0.0.1",
 * one port, each echoing. */
static void listen_local(async_loop *loop, const char *host) {
  struct counts c = {0};
  async_server *server = NULL;
  assert_int_equal(async_tcp_listen(&server, loop, host, 0, 0, 0, factory, &c), 0);
  int port = async_server_port(server);
  assert_true(port > 0);
  int n = async_server_count(server);
  assert_int_equal(n, ipv6_available() ? 2 : 1);
  /* Every listener is on a loopback address, IPv6 first, with the same port. */
  static const char *const loopbacks[2][2] = {{"127.0.0.1"}, {"::1", "127.0.0.1"}};
  for (int i = 0; i < n; i++) {
    struct sockaddr_storage ss;
    int len = async_server_sockname((struct sockaddr *)&ss, sizeof ss, server, (size_t)i);
    assert_true(len > 0);
    assert_int_equal(async_addr_port((struct sockaddr *)&ss, (size_t)len), port);
    char text[ASYNC_ADDR_STRLEN];
    assert_true(async_addr_format(text, sizeof text, (struct sockaddr *)&ss, (size_t)len, ASYNC_ADDR_NOPORT) > 0);
    assert_string_equal(text, loopbacks[n - 1][i]);
  }
  struct sockaddr_storage ss;
  assert_int_equal(async_server_sockname((struct sockaddr *)&ss, sizeof ss, server, (size_t)n), ASYNC_ERANGE);
  assert_int_equal(async_server_sockname((struct sockaddr *)&ss, 2, server, 0), ASYNC_ERANGE);

  int fd4 = tcp_client(AF_INET, port);
  echo_round_trip(loop, fd4, "over IPv4\n");
  if (n == 2) {
    int fd6 = tcp_client(AF_INET6, port);
    echo_round_trip(loop, fd6, "over IPv6\n");
    close(fd6);
  }
  close(fd4);
  run_until_count(loop, &c.lost, n);
  assert_int_equal(c.made, n);
  /* Accepted TCP connections: non-blocking, close-on-exec, TCP options work. */
  assert_int_equal(c.fd_set_up, n);
  assert_int_equal(c.nodelay_on, n);
  assert_int_equal(c.nodelay, 0);
  assert_int_equal(c.released, n);
  assert_int_equal(c.last_error, 0);
  assert_int_equal(async_server_connection_count(server), 0);
  close_server(loop, server);
}

/* Accepted TCP connections have TCP_NODELAY on: a listener's first one
 * (which shows whether they inherit it from the listener) and the ones
 * after it. */
static void test_accepted_nodelay(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  struct counts c = {0};
  async_server *server = NULL;
  assert_int_equal(async_tcp_listen(&server, loop, "127.0.0.1", 0, 0, 0, factory, &c), 0);
  int port = async_server_port(server);
  for (int i = 0; i < 3; i++) {
    int fd = tcp_client(AF_INET, port);
    echo_round_trip(loop, fd, "no delay\n");
    close(fd);
    run_until_count(loop, &c.lost, i + 1);
  }
  assert_int_equal(c.nodelay_on, 3);
  close_server(loop, server);
  tu_finish(loop);
}

static void test_listen_localhost_both_families(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  listen_local(loop, "localhost");
  tu_finish(loop);
}

/* Local names are those of RFC 6761 §6.3, as for connect and DNS: any
 * case, the root dot, names under "localhost". Names that only look alike
 * are names (resolve them first). */
static void test_listen_local_names(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  static const char *const local[] = {"LOCALHOST", "localhost.", "Foo.LocalHost", "a.b.localhost."};
  for (size_t i = 0; i < sizeof local / sizeof local[0]; i++) listen_local(loop, local[i]);
  static const char *const names[] = {"localhostx", "localhost.example", "xlocalhost", ".localhost", "localhost.."};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    async_server *server = (async_server *)0x1;
    struct counts c = {0};
    assert_int_equal(async_tcp_listen(&server, loop, names[i], 0, 0, 0, factory, &c), ASYNC_EINVAL);
    assert_ptr_equal(server, (async_server *)0x1);
  }
  tu_finish(loop);
}

static void test_listen_literal_and_wildcard(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  struct counts c = {0};
  async_server *server = NULL;
  assert_int_equal(async_tcp_listen(&server, loop, "127.0.0.1", 0, 16, 0, factory, &c), 0);
  assert_int_equal(async_server_count(server), 1);
  int fd = tcp_client(AF_INET, async_server_port(server));
  echo_round_trip(loop, fd, "literal\n");
  close(fd);
  run_until_count(loop, &c.lost, 1);
  close_server(loop, server);

  /* NULL: every interface, reachable on loopback. */
  assert_int_equal(async_tcp_listen(&server, loop, NULL, 0, 0, ASYNC_LISTEN_REUSEPORT, factory, &c), 0);
  fd = tcp_client(AF_INET, async_server_port(server));
  echo_round_trip(loop, fd, "wildcard\n");
  close(fd);
  run_until_count(loop, &c.lost, 2);
  close_server(loop, server);
  tu_finish(loop);
}

static void test_port_in_use(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  struct counts c = {0};
  async_server *a = NULL, *b = (async_server *)0x1;
  assert_int_equal(async_tcp_listen(&a, loop, "127.0.0.1", 0, 0, 0, factory, &c), 0);
  assert_int_equal(async_tcp_listen(&b, loop, "127.0.0.1", (uint16_t)async_server_port(a), 0, 0, factory, &c),
                   ASYNC_EADDRINUSE);
  assert_ptr_equal(b, (async_server *)0x1); /* untouched on failure */
  /* With REUSEPORT on both, two servers share a port. */
  async_server *r1 = NULL, *r2 = NULL;
  assert_int_equal(async_tcp_listen(&r1, loop, "127.0.0.1", 0, 0, ASYNC_LISTEN_REUSEPORT, factory, &c), 0);
  assert_int_equal(async_tcp_listen(&r2, loop, "127.0.0.1", (uint16_t)async_server_port(r1), 0,
                                    ASYNC_LISTEN_REUSEPORT, factory, &c),
                   0);
  /* An address this host does not have. */
  async_server *x = NULL;
  assert_int_equal(async_tcp_listen(&x, loop, "192.0.2.1", 0, 0, 0, factory, &c), ASYNC_EADDRNOTAVAIL);
  close_server(loop, a);
  close_server(loop, r1);
  close_server(loop, r2);
  tu_finish(loop);
}

static void test_factory_refuses(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  struct counts c = {.refuse = 1};
  async_server *server = NULL;
  assert_int_equal(async_tcp_listen(&server, loop, "127.0.0.1", 0, 0, 0, factory, &c), 0);
  int fd = tcp_client(AF_INET, async_server_port(server));
  run_until_count(loop, &c.refused, 1);
  /* The connection was closed: the client reads EOF. */
  struct pollfd p = {.fd = fd, .events = POLLIN};
  assert_int_equal(poll(&p, 1, 2000), 1);
  char b;
  assert_int_equal(read(fd, &b, 1), 0);
  assert_int_equal(c.made, 0);
  assert_int_equal(c.released, 0);
  close(fd);
  close_server(loop, server);
  tu_finish(loop);
}

static void test_many_connections_and_close_connections(void **state) {
  (void)state;
  enum { N = 200 };
  int fds_before = count_fds();
  async_loop *loop = tu_loop_new();
  struct counts c = {0};
  async_server *server = NULL;
  assert_int_equal(async_tcp_listen(&server, loop, "127.0.0.1", 0, N, 0, factory, &c), 0);
  static int fds[N];
  for (int i = 0; i < N; i++) fds[i] = tcp_client(AF_INET, async_server_port(server));
  run_until_count(loop, &c.made, N);
  assert_int_equal(async_server_connection_count(server), N);
  /* The server closes first; its connections stay open until asked. */
  int closed = 0;
  assert_int_equal(async_server_close_connections(server, 0), 0);
  assert_int_equal(async_handle_close(async_server_handle(server), tu_count_close_cb), 0);
  assert_int_equal(async_handle_set_userdata(async_server_handle(server), &closed), 0);
  run_until_count(loop, &c.lost, N);
  run_until_count(loop, &closed, 1);
  assert_int_equal(c.released, N);
  assert_int_equal(c.last_error, 0);
  for (int i = 0; i < N; i++) {
    char b;
    assert_int_equal(read(fds[i], &b, 1), 0); /* EOF from the server's close */
    close(fds[i]);
  }
  tu_finish(loop);
  assert_int_equal(count_fds(), fds_before);
}

static void test_server_closed_before_connections(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  struct counts c = {0};
  async_server *server = NULL;
  assert_int_equal(async_tcp_listen(&server, loop, "127.0.0.1", 0, 0, 0, factory, &c), 0);
  int fd = tcp_client(AF_INET, async_server_port(server));
  run_until_count(loop, &c.made, 1);
  close_server(loop, server);
  /* The accepted stream outlived its server and still echoes. */
  echo_round_trip(loop, fd, "still here\n");
  assert_int_equal(async_loop_free(loop), ASYNC_EBUSY);
  close(fd);
  run_until_count(loop, &c.lost, 1);
  tu_finish(loop);
}

static void test_abort_connections(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  struct counts c = {0};
  async_server *server = NULL;
  assert_int_equal(async_tcp_listen(&server, loop, "127.0.0.1", 0, 0, 0, factory, &c), 0);
  int fd = tcp_client(AF_INET, async_server_port(server));
  run_until_count(loop, &c.made, 1);
  assert_int_equal(async_server_close_connections(server, 1), 0);
  run_until_count(loop, &c.lost, 1);
  assert_int_equal(c.last_error, 0);
  close(fd);
  close_server(loop, server);
  tu_finish(loop);
}

/* Streams whose factory returned the same callbacks (from different
 * structs) share one copy of them inside the library: replacing one
 * stream's protocol must leave the others' as they were. */
struct sharing {
  struct counts c;
  async_stream *streams[3];
  int b_bytes;
  int b_lost;
  int b_released;
};

static void sh_made(async_stream *s, void *ud) {
  struct sharing *x = ud;
  x->streams[x->c.made++] = s;
}

static size_t sh_b_data(async_stream *s, const uint8_t *d, size_t n, void *ud) {
  ((struct sharing *)ud)->b_bytes += (int)n;
  assert_int_equal(async_stream_write(s, d, n), 0);
  return n;
}

static void sh_b_lost(async_stream *s, int err, void *ud) {
  (void)s;
  (void)err;
  ((struct sharing *)ud)->b_lost++;
}

static void sh_b_release(void *ud) { ((struct sharing *)ud)->b_released++; }

static int sharing_factory(const async_stream_protocol **p, void **ud, async_server *server, void *userdata) {
  (void)server;
  struct sharing *x = userdata;
  /* A struct of its own per connection, with the same callbacks. */
  static async_stream_protocol copies[3];
  async_stream_protocol *a = &copies[x->c.made];
  *a = (async_stream_protocol)ASYNC_STREAM_PROTOCOL_INIT;
  a->connection_made = sh_made;
  a->data_received = c_data;
  a->connection_lost = c_lost;
  a->release = c_release;
  *p = a;
  *ud = x; /* struct counts comes first: c_* callbacks see x->c */
  return 0;
}

static void test_set_protocol_on_one_of_shared(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  struct sharing x = {{0}, {NULL}, 0, 0, 0};
  async_server *server = NULL;
  assert_int_equal(async_tcp_listen(&server, loop, "127.0.0.1", 0, 0, 0, sharing_factory, &x), 0);
  int fds[3];
  for (int i = 0; i < 3; i++) {
    fds[i] = tcp_client(AF_INET, async_server_port(server));
    run_until_count(loop, &x.c.made, i + 1); /* one at a time: made order is fd order */
  }
  async_stream_protocol b = ASYNC_STREAM_PROTOCOL_INIT;
  b.data_received = sh_b_data;
  b.connection_lost = sh_b_lost;
  b.release = sh_b_release;
  assert_int_equal(async_stream_set_protocol(x.streams[1], &b, &x), 0);
  assert_int_equal(x.c.released, 1); /* the old userdata's release, at once */
  echo_round_trip(loop, fds[0], "first\n");
  echo_round_trip(loop, fds[1], "second\n");
  echo_round_trip(loop, fds[2], "third\n");
  assert_int_equal(x.b_bytes, 7); /* only the second stream uses b */
  for (int i = 0; i < 3; i++) close(fds[i]);
  run_until_count(loop, &x.c.lost, 2);
  run_until_count(loop, &x.b_lost, 1);
  assert_int_equal(x.c.released, 3);
  assert_int_equal(x.b_released, 1);
  close_server(loop, server);
  tu_finish(loop);
}

/* A factory that returns the same struct every time but changes its
 * callbacks in between: each connection gets the callbacks the struct held
 * when it was accepted, never those the previous connection kept. */
static int changing_factory(const async_stream_protocol **p, void **ud, async_server *server, void *userdata) {
  (void)server;
  struct sharing *x = userdata;
  static async_stream_protocol one;
  one = (async_stream_protocol)ASYNC_STREAM_PROTOCOL_INIT;
  one.connection_made = sh_made;
  one.data_received = x->c.made == 1 ? sh_b_data : c_data; /* the second connection's differ */
  one.connection_lost = c_lost;
  one.release = c_release;
  *p = &one;
  *ud = x;
  return 0;
}

static void test_factory_changing_one_struct(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  struct sharing x = {{0}, {NULL}, 0, 0, 0};
  async_server *server = NULL;
  assert_int_equal(async_tcp_listen(&server, loop, "127.0.0.1", 0, 0, 0, changing_factory, &x), 0);
  int fds[3];
  for (int i = 0; i < 3; i++) {
    fds[i] = tcp_client(AF_INET, async_server_port(server));
    run_until_count(loop, &x.c.made, i + 1);
  }
  echo_round_trip(loop, fds[0], "first\n");
  echo_round_trip(loop, fds[1], "second\n");
  echo_round_trip(loop, fds[2], "third\n");
  assert_int_equal(x.b_bytes, 7); /* only the second stream has sh_b_data */
  for (int i = 0; i < 3; i++) close(fds[i]);
  run_until_count(loop, &x.c.lost, 3);
  assert_int_equal(x.c.released, 3);
  close_server(loop, server);
  tu_finish(loop);
}

/* Out of fds while accepting: accepting pauses (the loop sleeps instead of
 * spinning on the pending connection), then resumes once fds are back. */
static void test_emfile_does_not_spin(void **state) {
  (void)state;
  /* valgrind keeps its own fds under the limit and emulates setrlimit. */
  const char *preload = getenv("LD_PRELOAD");
  if (preload && strstr(preload, "vgpreload")) skip();
  async_loop *loop = tu_loop_new();
  struct counts c = {0};
  async_server *server = NULL;
  assert_int_equal(async_tcp_listen(&server, loop, "127.0.0.1", 0, 0, 0, factory, &c), 0);
  int client = tcp_client(AF_INET, async_server_port(server));
  struct rlimit old;
  assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
  /* Use up every fd below a new, low limit. */
  int fill[64];
  int nfill = 0;
  int highest = count_fds() + 8;
  struct rlimit low = {(rlim_t)highest, old.rlim_max};
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
  int fd;
  while (nfill < 64 && (fd = dup(0)) >= 0) fill[nfill++] = fd;
  assert_int_equal(errno, EMFILE);

  uint64_t it0, it1;
  assert_int_equal(async_loop_metric(&it0, loop, ASYNC_METRIC_ITERATIONS), 0);
  uint64_t t0 = tu_now_ns();
  while (tu_elapsed_ms(t0) < 300.0) async_loop_run(loop, ASYNC_RUN_ONCE);
  assert_int_equal(async_loop_metric(&it1, loop, ASYNC_METRIC_ITERATIONS), 0);
  assert_int_equal(c.made, 0);
  /* About one iteration per 100 ms pause, not thousands. */
  assert_true(it1 - it0 < 30);

  for (int i = 0; i < nfill; i++) close(fill[i]);
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
  run_until_count(loop, &c.made, 1);
  echo_round_trip(loop, client, "after EMFILE\n");
  close(client);
  run_until_count(loop, &c.lost, 1);
  close_server(loop, server);
  tu_finish(loop);
}

static void test_unix_listen(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  struct counts c = {0};
  char path[108];
  snprintf(path, sizeof path, "/tmp/libasync-test-%d.sock", (int)getpid());
  unlink(path);
  async_server *server = NULL;
  assert_int_equal(async_unix_listen(&server, loop, path, 0, factory, &c), 0);
  assert_int_equal(async_server_port(server), 0);
  /* The socket file exists: a second server on it fails. */
  async_server *second = NULL;
  assert_int_equal(async_unix_listen(&second, loop, path, 0, factory, &c), ASYNC_EADDRINUSE);

  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  strcpy(a.sun_path, path);
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  echo_round_trip(loop, fd, "unix\n");
  close(fd);
  run_until_count(loop, &c.lost, 1);
  /* An accepted Unix connection: set up like a TCP one, no TCP options. */
  assert_int_equal(c.fd_set_up, 1);
  assert_int_equal(c.nodelay, ASYNC_EINVAL);
  close_server(loop, server);
  unlink(path);

  /* An abstract name. */
  char name[64];
  snprintf(name, sizeof name, "@libasync-test-%d", (int)getpid());
  assert_int_equal(async_unix_listen(&server, loop, name, 0, factory, &c), 0);
  fd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un b = {.sun_family = AF_UNIX};
  size_t len = strlen(name);
  memcpy(b.sun_path + 1, name + 1, len - 1);
  assert_int_equal(connect(fd, (struct sockaddr *)&b, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)), 0);
  echo_round_trip(loop, fd, "abstract\n");
  close(fd);
  run_until_count(loop, &c.lost, 2);
  close_server(loop, server);
  tu_finish(loop);
}

static void test_listen_addrinfo(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  struct counts c = {0};
  async_future *f = NULL;
  assert_int_equal(async_getaddrinfo(&f, loop, "127.0.0.1", "0", AF_UNSPEC, SOCK_STREAM, ASYNC_DNS_PASSIVE), 0);
  assert_int_equal(async_loop_run_until(loop, f), 0);
  void *list = NULL;
  assert_int_equal(async_future_result(&list, f), 0);
  async_server *server = NULL;
  assert_int_equal(async_tcp_listen_addrinfo(&server, loop, list, 0, 0, factory, &c), 0);
  assert_int_equal(async_future_free(f), 0);
  int fd = tcp_client(AF_INET, async_server_port(server));
  echo_round_trip(loop, fd, "from addrinfo\n");
  close(fd);
  run_until_count(loop, &c.lost, 1);
  close_server(loop, server);
  tu_finish(loop);
}

static void test_bad_input(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  struct counts c = {0};
  async_server *s = NULL;
  assert_int_equal(async_tcp_listen(NULL, loop, NULL, 0, 0, 0, factory, &c), ASYNC_EINVAL);
  assert_int_equal(async_tcp_listen(&s, NULL, NULL, 0, 0, 0, factory, &c), ASYNC_EINVAL);
  assert_int_equal(async_tcp_listen(&s, loop, NULL, 0, 0, 0, NULL, &c), ASYNC_EINVAL);
  assert_int_equal(async_tcp_listen(&s, loop, NULL, 0, 0, 0x80, factory, &c), ASYNC_EINVAL);
  assert_int_equal(async_tcp_listen(&s, loop, "example.test", 0, 0, 0, factory, &c), ASYNC_EINVAL);
  assert_int_equal(async_tcp_listen(&s, loop, "", 0, 0, 0, factory, &c), ASYNC_EINVAL);
  assert_int_equal(async_tcp_listen(&s, loop, "fe80::1%nosuchif0", 0, 0, 0, factory, &c), ASYNC_EINVAL);
  assert_int_equal(async_tcp_listen(&s, (async_loop *)&c, NULL, 0, 0, 0, factory, &c), ASYNC_EINVAL);
  assert_int_equal(async_tcp_listen_addrinfo(&s, loop, NULL, 0, 0, factory, &c), ASYNC_EINVAL);
  assert_int_equal(async_tcp_listen_addrinfo(&s, loop, (async_addrinfo *)loop, 0, 0, factory, &c), ASYNC_EINVAL);
  assert_int_equal(async_unix_listen(&s, loop, NULL, 0, factory, &c), ASYNC_EINVAL);
  assert_int_equal(async_unix_listen(&s, loop, "", 0, factory, &c), ASYNC_EINVAL);
  assert_int_equal(async_unix_listen(&s, loop, "@", 0, factory, &c), ASYNC_EINVAL);
  char longpath[300];
  memset(longpath, 'a', sizeof longpath - 1);
  longpath[sizeof longpath - 1] = '\0';
  assert_int_equal(async_unix_listen(&s, loop, longpath, 0, factory, &c), ASYNC_EINVAL);
  assert_int_equal(async_server_port(NULL), ASYNC_EINVAL);
  assert_int_equal(async_server_count((async_server *)loop), ASYNC_EINVAL);
  assert_null(async_server_handle(NULL));
  assert_int_equal(async_server_connection_count(NULL), ASYNC_EINVAL);
  assert_int_equal(async_server_close_connections(NULL, 0), ASYNC_EINVAL);
  struct sockaddr_storage ss;
  assert_int_equal(async_server_sockname(NULL, sizeof ss, NULL, 0), ASYNC_EINVAL);
  /* A closed server: queries report ECLOSED until its close callback. */
  assert_int_equal(async_tcp_listen(&s, loop, "127.0.0.1", 0, 0, 0, factory, &c), 0);
  assert_int_equal(async_handle_close(async_server_handle(s), NULL), 0);
  assert_int_equal(async_server_port(s), ASYNC_ECLOSED);
  assert_int_equal(async_handle_close(async_server_handle(s), NULL), ASYNC_ECLOSED);
  tu_finish(loop);
}

/* An unreferenced server does not keep the loop running. */
static void test_unref(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  struct counts c = {0};
  async_server *s = NULL;
  assert_int_equal(async_tcp_listen(&s, loop, "127.0.0.1", 0, 0, 0, factory, &c), 0);
  assert_int_equal(async_loop_alive(loop), 1);
  assert_int_equal(async_handle_unref(async_server_handle(s)), 0);
  assert_int_equal(async_loop_run(loop, ASYNC_RUN_DEFAULT), 0);
  close_server(loop, s);
  tu_finish(loop);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_accepted_nodelay),
      cmocka_unit_test(test_listen_localhost_both_families),
      cmocka_unit_test(test_listen_local_names),
      cmocka_unit_test(test_listen_literal_and_wildcard),
      cmocka_unit_test(test_port_in_use),
      cmocka_unit_test(test_factory_refuses),
      cmocka_unit_test(test_many_connections_and_close_connections),
      cmocka_unit_test(test_server_closed_before_connections),
      cmocka_unit_test(test_abort_connections),
      cmocka_unit_test(test_set_protocol_on_one_of_shared),
      cmocka_unit_test(test_factory_changing_one_struct),
      cmocka_unit_test(test_emfile_does_not_spin),
      cmocka_unit_test(test_unix_listen),
      cmocka_unit_test(test_listen_addrinfo),
      cmocka_unit_test(test_bad_input),
      cmocka_unit_test(test_unref),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
