/*
 * Option structs and protocols as programs built against other versions
 * pass them (docs/design.md, "Option structs"): size is the caller's
 * sizeof. Every struct is accepted at exactly its first version's size
 * (read no further than that: the struct ends where a page ends), and from
 * a newer header whose unknown fields are all zero; refused (ASYNC_EINVAL)
 * below its first version's size, above 4096 bytes, and from a newer
 * header that set a field this version does not know. Nothing is called
 * and nothing is left behind when a struct is refused.
 */
#include "test_util.h"

#include <netinet/in.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

/* The sizes of the first version (v0), frozen: what older programs pass. */
#define V0_CONNECT_OPTIONS 72
#define V0_RECONNECT_OPTIONS 72
#define V0_UDP_OPTIONS 48
#define V0_DATAGRAM_PROTOCOL 64
#define V0_STREAM_PROTOCOL 88

/* Room for a struct of any size below, and a tail a newer header adds. */
#define TAIL 24
typedef union {
  uint32_t size;
  async_connect_options connect;
  async_reconnect_options reconnect;
  async_udp_options udp;
  async_datagram_protocol datagram;
  async_stream_protocol stream;
  unsigned char bytes[256];
} any_struct;

/*
 * How a caller passes a struct: `apply` gets a copy of the current struct
 * `base` (its size field set as the case says) and returns what the
 * library said. Accepted objects are torn down by `apply` itself.
 */
typedef int (*apply_fn)(async_loop *loop, const void *opts);

/* A page followed by an inaccessible one: a struct placed at its end
 * faults if the library reads one byte too far. */
static unsigned char *g_pages;
static size_t g_page;

static int pages_setup(void **state) {
  (void)state;
  g_page = (size_t)sysconf(_SC_PAGESIZE);
  g_pages = mmap(NULL, 2 * g_page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  assert_true(g_pages != MAP_FAILED);
  assert_int_equal(mprotect(g_pages + g_page, g_page, PROT_NONE), 0);
  return 0;
}

static int pages_teardown(void **state) {
  (void)state;
  munmap(g_pages, 2 * g_page);
  return 0;
}

/* The first len bytes of base with size = len, ending at the guard page. */
static const void *at_page_end(const void *base, uint32_t len) {
  unsigned char *p = g_pages + g_page - len;
  memcpy(p, base, len);
  memcpy(p, &len, sizeof len);
  return p;
}

/*
 * Every case of the size rules for one struct: base is a valid struct of
 * the current size (sizeof current), v0 its first version's size.
 */
static void check_sizes(apply_fn apply, const void *base, size_t current, uint32_t v0) {
  async_loop *loop = tu_loop_new();
  any_struct s;
  assert_true(current + TAIL <= sizeof s.bytes);
  assert_true(v0 <= current);
  /* Exactly the v0 size, read no further. */
  assert_int_equal(apply(loop, at_page_end(base, v0)), 0);
  /* The current size. */
  assert_int_equal(apply(loop, at_page_end(base, (uint32_t)current)), 0);
  /* A newer header whose new fields are 0 (their defaults). */
  memset(&s, 0, sizeof s);
  memcpy(&s, base, current);
  s.size = (uint32_t)(current + TAIL);
  assert_int_equal(apply(loop, &s), 0);
  /* A newer header that set a field this version does not know: refused,
   * whether the field is the first byte past the struct or the last. */
  s.bytes[current] = 1;
  assert_int_equal(apply(loop, &s), ASYNC_EINVAL);
  s.bytes[current] = 0;
  s.bytes[current + TAIL - 1] = 0x80;
  assert_int_equal(apply(loop, &s), ASYNC_EINVAL);
  /* Non-zero bytes beyond size are not the caller's: never looked at. */
  s.size = (uint32_t)(current + TAIL - 1);
  assert_int_equal(apply(loop, &s), 0);
  /* Below v0: refused, the bytes past size not read either. */
  assert_int_equal(apply(loop, at_page_end(base, v0 - 8)), ASYNC_EINVAL);
  assert_int_equal(apply(loop, at_page_end(base, 4)), ASYNC_EINVAL);
  memcpy(&s, base, current);
  s.size = 0;
  assert_int_equal(apply(loop, &s), ASYNC_EINVAL);
  /* Garbage sizes, never read that far. */
  s.size = 4097;
  assert_int_equal(apply(loop, &s), ASYNC_EINVAL);
  s.size = UINT32_MAX;
  assert_int_equal(apply(loop, &s), ASYNC_EINVAL);
  tu_finish(loop);
}

/* ---- callbacks ------------------------------------------------------------ */

static int g_released;
static int g_made;

static void s_made(async_stream *s, void *ud) {
  (void)s;
  (void)ud;
  g_made++;
}
static size_t s_data(async_stream *s, const uint8_t *d, size_t n, void *ud) {
  (void)s;
  (void)d;
  (void)ud;
  return n;
}
static void s_lost(async_stream *s, int err, void *ud) {
  (void)s;
  (void)err;
  (void)ud;
}
static void count_release(void *ud) {
  (void)ud;
  g_released++;
}
static const async_stream_protocol k_stream = {
    sizeof(async_stream_protocol), s_made, s_data, NULL, s_lost, NULL, NULL, NULL, count_release, 0, NULL,
};

static void d_received(async_datagram *d, const uint8_t *data, size_t len, const struct sockaddr *a, size_t alen,
                       void *ud) {
  (void)d;
  (void)data;
  (void)len;
  (void)a;
  (void)alen;
  (void)ud;
}
static void d_lost(async_datagram *d, int err, void *ud) {
  (void)d;
  (void)err;
  (void)ud;
}
static const async_datagram_protocol k_datagram = {
    sizeof(async_datagram_protocol), NULL, d_received, NULL, d_lost, NULL, NULL, count_release,
};

/* Runs until one more release than before, the object's final notification. */
static void wait_release(async_loop *loop, int before) { tu_run_until(loop, &g_released, before + 1, 3000); }

/* ---- one apply per struct --------------------------------------------------- */

static uint16_t g_refused_port;

/* A connect to a refused port: the protocol's release is its end. */
static int connect_refused(async_loop *loop, const void *opts, const void *protocol) {
  async_future *f = NULL;
  int before = g_released;
  int rc = async_tcp_connect(&f, loop, "127.0.0.1", g_refused_port, opts, protocol, NULL);
  if (rc == 0) {
    assert_int_equal(tu_wait_future(loop, f, 3000), ASYNC_ECONNREFUSED);
    assert_int_equal(async_future_free(f), 0);
    wait_release(loop, before);
  } else {
    assert_null(f);
    assert_int_equal(g_released, before);
  }
  return rc;
}

static int apply_connect(async_loop *loop, const void *opts) { return connect_refused(loop, opts, &k_stream); }

static int apply_connect_protocol(async_loop *loop, const void *protocol) {
  return connect_refused(loop, NULL, protocol);
}

static int apply_stream_protocol(async_loop *loop, const void *protocol) {
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  async_stream *s = NULL;
  int before = g_released;
  int rc = async_stream_adopt(&s, loop, sv[0], protocol, NULL);
  if (rc == 0) {
    assert_int_equal(async_stream_close(s), 0);
    wait_release(loop, before);
    close(sv[1]);
  } else {
    assert_null(s);
    assert_int_equal(g_released, before);
    tu_close_pair(sv);
  }
  return rc;
}

/* The protocol through async_stream_set_protocol() too: refused, the old one stays. */
static int apply_set_protocol(async_loop *loop, const void *protocol) {
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  async_stream *s = NULL;
  int before = g_released;
  assert_int_equal(async_stream_adopt(&s, loop, sv[0], &k_stream, NULL), 0);
  int rc = async_stream_set_protocol(s, protocol, NULL);
  /* Accepted: the old userdata was released at once. */
  assert_int_equal(g_released, before + (rc == 0));
  assert_int_equal(async_stream_close(s), 0);
  wait_release(loop, before + (rc == 0));
  close(sv[1]);
  return rc;
}

/* The protocol a server's factory returns. */
static const void *g_factory_protocol;

static int pointing_factory(const async_stream_protocol **p, void **ud, async_server *s, void *userdata) {
  (void)s;
  (void)userdata;
  *p = g_factory_protocol;
  *ud = NULL;
  return 0;
}

/* Accepted, the connection becomes a stream (made, released at its end);
 * refused, it is closed at once (the client reads EOF), nothing called. */
static int apply_factory_protocol(async_loop *loop, const void *protocol) {
  g_factory_protocol = protocol;
  async_server *server = NULL;
  assert_int_equal(async_tcp_listen(&server, loop, "127.0.0.1", 0, 0, 0, pointing_factory, NULL), 0);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)async_server_port(server)),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  int made = g_made;
  int released = g_released;
  int eof = 0;
  uint64_t t0 = tu_now_ns();
  while (g_made == made && !eof) {
    assert_true(tu_elapsed_ms(t0) < 3000.0);
    async_loop_run(loop, ASYNC_RUN_NOWAIT);
    char byte;
    eof = recv(fd, &byte, 1, MSG_DONTWAIT) == 0;
  }
  close(fd);
  if (!eof) wait_release(loop, released);
  assert_int_equal(g_released, released + !eof);
  tu_server_close(loop, server);
  return eof ? ASYNC_EINVAL : 0;
}

static int apply_reconnect(async_loop *loop, const void *opts) {
  async_reconnector *rc = NULL;
  int before = g_released;
  int err = async_reconnector_start(&rc, loop, "127.0.0.1", g_refused_port, opts, &k_stream, NULL);
  if (err == 0) {
    assert_int_equal(async_reconnector_stop(rc), 0);
    wait_release(loop, before);
  } else {
    assert_null(rc);
    assert_int_equal(g_released, before);
  }
  return err;
}

/* The connect options a reconnector's options point to. */
static int apply_reconnect_connect(async_loop *loop, const void *connect) {
  async_reconnect_options o;
  memset(&o, 0, sizeof o);
  o.size = sizeof o;
  o.connect = connect;
  return apply_reconnect(loop, &o);
}

static int open_udp(async_loop *loop, const void *opts, const void *protocol) {
  async_datagram *d = NULL;
  int before = g_released;
  int rc = async_udp_open(&d, loop, opts, protocol, NULL);
  if (rc == 0) {
    assert_int_equal(async_datagram_close(d), 0);
    wait_release(loop, before);
  } else {
    assert_null(d);
    assert_int_equal(g_released, before);
  }
  return rc;
}

static const async_udp_options k_udp = {.size = sizeof(async_udp_options), .local_address = "127.0.0.1:0"};

static int apply_udp(async_loop *loop, const void *opts) { return open_udp(loop, opts, &k_datagram); }

static int apply_datagram_protocol(async_loop *loop, const void *protocol) { return open_udp(loop, &k_udp, protocol); }

/* ---- tests ------------------------------------------------------------------ */

static uint16_t unused_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  close(fd);
  return ntohs(a.sin_port);
}

static void test_connect_options(void **state) {
  (void)state;
  g_refused_port = unused_port();
  async_connect_options o;
  memset(&o, 0, sizeof o);
  o.size = sizeof o;
  check_sizes(apply_connect, &o, sizeof o, V0_CONNECT_OPTIONS);
  check_sizes(apply_reconnect_connect, &o, sizeof o, V0_CONNECT_OPTIONS);
}

static void test_reconnect_options(void **state) {
  (void)state;
  g_refused_port = unused_port();
  async_reconnect_options o;
  memset(&o, 0, sizeof o);
  o.size = sizeof o;
  check_sizes(apply_reconnect, &o, sizeof o, V0_RECONNECT_OPTIONS);
}

static void test_udp_options(void **state) {
  (void)state;
  check_sizes(apply_udp, &k_udp, sizeof k_udp, V0_UDP_OPTIONS);
}

static void test_datagram_protocol(void **state) {
  (void)state;
  check_sizes(apply_datagram_protocol, &k_datagram, sizeof k_datagram, V0_DATAGRAM_PROTOCOL);
}

static void test_stream_protocol(void **state) {
  (void)state;
  check_sizes(apply_stream_protocol, &k_stream, sizeof k_stream, V0_STREAM_PROTOCOL);
  check_sizes(apply_set_protocol, &k_stream, sizeof k_stream, V0_STREAM_PROTOCOL);
  check_sizes(apply_factory_protocol, &k_stream, sizeof k_stream, V0_STREAM_PROTOCOL);
  g_refused_port = unused_port();
  check_sizes(apply_connect_protocol, &k_stream, sizeof k_stream, V0_STREAM_PROTOCOL);
}

/* A zeroed UDP options struct with only a family: the family's wildcard,
 * port picked by the kernel, no SO_REUSEPORT, no SO_BROADCAST, the
 * system's buffer sizes. */
static void test_udp_zeroed_is_defaults(void **state) {
  (void)state;
  async_loop *loop = tu_loop_new();
  async_udp_options o;
  memset(&o, 0, sizeof o);
  o.size = sizeof o;
  async_datagram *d = NULL;
  assert_int_equal(async_udp_open(&d, loop, &o, &k_datagram, NULL), ASYNC_EINVAL); /* no family, no address */
  o.family = AF_INET;
  assert_int_equal(async_udp_open(&d, loop, &o, &k_datagram, NULL), 0);
  struct sockaddr_in a;
  assert_int_equal(async_datagram_sockname((struct sockaddr *)&a, sizeof a, d), (int)sizeof a);
  assert_int_equal(a.sin_addr.s_addr, htonl(INADDR_ANY));
  assert_true(a.sin_port != 0);
  int fd = async_datagram_fd(d);
  int on = -1;
  socklen_t len = sizeof on;
  assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, &len), 0);
  assert_int_equal(on, 0);
  assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_BROADCAST, &on, &len), 0);
  assert_int_equal(on, 0);
  int before = g_released;
  assert_int_equal(async_datagram_close(d), 0);
  wait_release(loop, before);
  tu_finish(loop);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_connect_options),   cmocka_unit_test(test_reconnect_options),
      cmocka_unit_test(test_udp_options),       cmocka_unit_test(test_datagram_protocol),
      cmocka_unit_test(test_stream_protocol),   cmocka_unit_test(test_udp_zeroed_is_defaults),
  };
  return cmocka_run_group_tests(tests, pages_setup, pages_teardown);
}
