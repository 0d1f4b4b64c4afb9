/*
 * async_addr_parse / async_addr_format / async_addr_port (async/addr.h):
 * every accepted text form, default ports, port bounds, scope ids (by
 * name, by number, unnamed indexes), strict rejection of malformed text,
 * capacity errors, format round trips and argument checks; the accessors
 * for bindings without struct sockaddr (async_addr_get_family, get_ip,
 * get_scope_id, make, set_port): round trips with parse and format, any
 * alignment, no read past addrlen, no write past capacity.
 */
#include "test_util.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

/* ------------------------------------------------------------------ */
/* Helpers                                                             */

#define FILL 0xA5

/* Parses text into *ss (pre-filled with FILL) with full capacity. */
static int parse(struct sockaddr_storage *ss, const char *text, uint16_t default_port) {
  memset(ss, FILL, sizeof *ss);
  return async_addr_parse((struct sockaddr *)ss, sizeof *ss, text, default_port);
}

/* text must parse as IPv4 addr:port. */
static void expect_v4(const char *text, uint16_t default_port, const char *addr, uint16_t port) {
  struct sockaddr_storage ss;
  int rc = parse(&ss, text, default_port);
  if (rc != (int)sizeof(struct sockaddr_in)) fail_msg("\"%s\": rc %d, want sockaddr_in", text, rc);
  const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
  struct in_addr want;
  assert_int_equal(inet_pton(AF_INET, addr, &want), 1);
  assert_int_equal(sin->sin_family, AF_INET);
  assert_int_equal(sin->sin_addr.s_addr, want.s_addr);
  assert_int_equal(ntohs(sin->sin_port), port);
  const unsigned char zero[sizeof sin->sin_zero] = {0};
  assert_memory_equal(sin->sin_zero, zero, sizeof zero);
}

/* text must parse as IPv6 addr:port with the given scope id. */
static void expect_v6(const char *text, uint16_t default_port, const char *addr, uint16_t port, uint32_t scope) {
  struct sockaddr_storage ss;
  int rc = parse(&ss, text, default_port);
  if (rc != (int)sizeof(struct sockaddr_in6)) fail_msg("\"%s\": rc %d, want sockaddr_in6", text, rc);
  const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;
  struct in6_addr want;
  assert_int_equal(inet_pton(AF_INET6, addr, &want), 1);
  assert_int_equal(sin6->sin6_family, AF_INET6);
  assert_memory_equal(&sin6->sin6_addr, &want, sizeof want);
  assert_int_equal(ntohs(sin6->sin6_port), port);
  assert_int_equal(sin6->sin6_flowinfo, 0);
  assert_int_equal(sin6->sin6_scope_id, scope);
}

/* text must be rejected with ASYNC_EINVAL, leaving the output untouched. */
static void expect_einval(const char *text) {
  struct sockaddr_storage ss;
  int rc = parse(&ss, text, 1);
  if (rc != ASYNC_EINVAL) fail_msg("\"%s\": rc %d, want ASYNC_EINVAL", text, rc);
  unsigned char fill[sizeof ss];
  memset(fill, FILL, sizeof fill);
  assert_memory_equal(&ss, fill, sizeof ss);
}

/* Formats text's parse result with flags and expects want back. */
static void expect_format(const char *text, uint32_t flags, const char *want) {
  struct sockaddr_storage ss;
  int len = parse(&ss, text, 0);
  if (len < 0) fail_msg("\"%s\": parse rc %d", text, len);
  char out[ASYNC_ADDR_STRLEN];
  int rc = async_addr_format(out, sizeof out, (const struct sockaddr *)&ss, (size_t)len, flags);
  if (rc < 0) fail_msg("\"%s\": format rc %d", text, rc);
  assert_string_equal(out, want);
  assert_int_equal(rc, (int)strlen(want));
}

/* parse -> format gives the same text. */
static void expect_roundtrip(const char *text, uint32_t flags) { expect_format(text, flags, text); }

static uint32_t lo_index(void) {
  uint32_t idx = if_nametoindex("lo");
  assert_true(idx > 0);
  return idx;
}

/* One of the 10000 indexes from `from` on with no interface; 0 if none. */
static uint32_t unnamed_index(uint32_t from) {
  char name[IF_NAMESIZE];
  for (uint32_t n = 0; n < 10000u && from + n != 0; n++) {
    if (!if_indextoname(from + n, name)) return from + n;
  }
  return 0;
}

static struct sockaddr_in make_v4(const char *addr, uint16_t port) {
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port);
  assert_int_equal(inet_pton(AF_INET, addr, &sin.sin_addr), 1);
  return sin;
}

static struct sockaddr_in6 make_v6(const char *addr, uint16_t port, uint32_t scope) {
  struct sockaddr_in6 sin6;
  memset(&sin6, 0, sizeof sin6);
  sin6.sin6_family = AF_INET6;
  sin6.sin6_port = htons(port);
  sin6.sin6_scope_id = scope;
  assert_int_equal(inet_pton(AF_INET6, addr, &sin6.sin6_addr), 1);
  return sin6;
}

/* ------------------------------------------------------------------ */
/* Parsing: accepted forms                                             */

static void test_parse_ipv4(void **state) {
  (void)state;
  expect_v4("192.0.2.1", 0, "192.0.2.1", 0);
  expect_v4("0.0.0.0", 0, "0.0.0.0", 0);
  expect_v4("255.255.255.255", 0, "255.255.255.255", 0);
}

static void test_parse_ipv4_with_port(void **state) {
  (void)state;
  expect_v4("192.0.2.1:8080", 99, "192.0.2.1", 8080);
  expect_v4("127.0.0.1:1", 99, "127.0.0.1", 1);
}

static void test_parse_ipv4_default_port(void **state) {
  (void)state;
  expect_v4("192.0.2.1", 4321, "192.0.2.1", 4321);
}

static void test_parse_ipv6(void **state) {
  (void)state;
  expect_v6("::1", 0, "::1", 0, 0);
  expect_v6("::", 0, "::", 0, 0);
  expect_v6("2001:db8::1", 0, "2001:db8::1", 0, 0);
  expect_v6("2001:DB8:0:0:0:0:0:1", 0, "2001:db8::1", 0, 0);
  expect_v6("::ffff:192.0.2.1", 0, "::ffff:192.0.2.1", 0, 0);
}

static void test_parse_ipv6_default_port(void **state) {
  (void)state;
  expect_v6("2001:db8::1", 7, "2001:db8::1", 7, 0);
}

static void test_parse_ipv6_bracketed_with_port(void **state) {
  (void)state;
  expect_v6("[2001:db8::1]:443", 7, "2001:db8::1", 443, 0);
  expect_v6("[::]:1", 7, "::", 1, 0);
  expect_v6("[::ffff:192.0.2.1]:80", 7, "::ffff:192.0.2.1", 80, 0);
}

/* "::1:80" is a complete IPv6 address, not ::1 with port 80. */
static void test_parse_bare_ipv6_takes_no_port(void **state) {
  (void)state;
  expect_v6("::1:80", 53, "::1:80", 53, 0);
}

static void test_parse_scope_by_name(void **state) {
  (void)state;
  expect_v6("fe80::1%lo", 9, "fe80::1", 9, lo_index());
}

static void test_parse_scope_by_number(void **state) {
  (void)state;
  expect_v6("fe80::1%2", 9, "fe80::1", 9, 2);
  expect_v6("fe80::1%4294967295", 9, "fe80::1", 9, UINT32_MAX);
}

/* The contract does not restrict scopes to link-local addresses. */
static void test_parse_scope_on_global_address(void **state) {
  (void)state;
  expect_v6("::1%lo", 0, "::1", 0, lo_index());
}

static void test_parse_bracketed_scope_with_port(void **state) {
  (void)state;
  expect_v6("[fe80::1%lo]:8080", 9, "fe80::1", 8080, lo_index());
  expect_v6("[fe80::1%3]:8080", 9, "fe80::1", 8080, 3);
}

/* An explicit port, even 0, wins over default_port; 65535 is the top. */
static void test_parse_port_bounds(void **state) {
  (void)state;
  expect_v4("192.0.2.1:0", 99, "192.0.2.1", 0);
  expect_v4("192.0.2.1:65535", 99, "192.0.2.1", 65535);
  expect_v6("[::1]:0", 99, "::1", 0, 0);
  expect_v6("[::1]:65535", 99, "::1", 65535, 0);
  expect_v4("192.0.2.1", 65535, "192.0.2.1", 65535);
}

/* At most five digits; leading zeros within them are plain decimal. */
static void test_parse_port_leading_zeros(void **state) {
  (void)state;
  expect_v4("192.0.2.1:00080", 0, "192.0.2.1", 80);
  expect_einval("192.0.2.1:000080");
}

/* ------------------------------------------------------------------ */
/* Parsing: rejected input                                             */

static void test_parse_null_args(void **state) {
  (void)state;
  struct sockaddr_storage ss;
  assert_int_equal(async_addr_parse(NULL, sizeof ss, "192.0.2.1", 0), ASYNC_EINVAL);
  assert_int_equal(async_addr_parse((struct sockaddr *)&ss, sizeof ss, NULL, 0), ASYNC_EINVAL);
}

static void test_parse_rejects_whitespace(void **state) {
  (void)state;
  static const char *const bad[] = {
      " 1.2.3.4", "1.2.3.4 ", "1.2.3.4\t", "1.2.3.4\n", "1.2.3.4: 80", "1.2.3.4 :80",
      " ::1",     "::1 ",     "[ ::1]:80", "[::1]: 80", "fe80::1% lo", "fe80::1%lo ",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) expect_einval(bad[i]);
}

static void test_parse_rejects_bad_ports(void **state) {
  (void)state;
  static const char *const bad[] = {
      "1.2.3.4:",      "1.2.3.4:65536", "1.2.3.4:99999", "1.2.3.4:-1", "1.2.3.4:+80",
      "1.2.3.4:0080x", "1.2.3.4:0x50",  "1.2.3.4:80:80", "[::1]:",     "[::1]:65536",
      "[::1]:-1",      "[::1]:+1",      "[::1]:x",       "[::1]:80:80",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) expect_einval(bad[i]);
}

static void test_parse_rejects_bad_brackets(void **state) {
  (void)state;
  static const char *const bad[] = {
      "[::1]", "[::1]x", "[1.2.3.4]:80", "[fe80::1%lo", "[fe80::1%lo]", "fe80::1%lo]",
      "[]:80", "[",      "]",            "::1]:80",     "[[::1]]:80",   "[::1]]:80",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) expect_einval(bad[i]);
}

static void test_parse_rejects_bad_scopes(void **state) {
  (void)state;
  static const char *const bad[] = {
      "fe80::1%",           "[fe80::1%]:80",      "fe80::1%0",    "fe80::1%4294967296",
      "fe80::1%99999999999999", "fe80::1%-1",   "fe80::1%+1",   "fe80::1%lo%lo",
      "fe80::1%lo:1",       "fe80::1%lo/x",       "1.2.3.4%lo",   "1.2.3.4%1",
      "1.2.3.4%lo:80",      "%lo",                "fe80::1%%lo",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) expect_einval(bad[i]);
}

static void test_parse_rejects_unknown_interface(void **state) {
  (void)state;
  assert_int_equal(if_nametoindex("nosuchif0"), 0);
  expect_einval("fe80::1%nosuchif0");
  expect_einval("[fe80::1%nosuchif0]:80");
  expect_einval("fe80::1%waytoolonginterfacename");
}

static void test_parse_rejects_bad_addresses(void **state) {
  (void)state;
  static const char *const bad[] = {
      "",          "999.1.1.1", "256.0.0.1", "1.2.3",     "1.2.3.4.5",  "01.2.3.4",
      "0x7f.0.0.1", "127.1",    "1.2.3.4.",  ":",         ":::",        "1::2::3",
      "2001:db8::g", "12345::1", ":80",      "1.2.3.4x",  "::1x",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) expect_einval(bad[i]);
}

/* No DNS here: names are malformed text. */
static void test_parse_rejects_names(void **state) {
  (void)state;
  expect_einval("host.example");
  expect_einval("host.example:80");
  expect_einval("localhost");
  expect_einval("[localhost]:80");
}

static void test_parse_rejects_overlong(void **state) {
  (void)state;
  char text[1001];
  memset(text, '1', 1000);
  text[1000] = '\0';
  expect_einval(text);

  /* A valid address followed by a very long port. */
  memset(text, '0', 1000);
  memcpy(text, "[::1]:", 6);
  expect_einval(text);

  /* A valid address with a very long scope. */
  memset(text, 'a', 1000);
  memcpy(text, "fe80::1%", 8);
  expect_einval(text);

  /* A long run of zero groups. */
  for (int i = 0; i < 1000; i++) text[i] = (i % 2) ? ':' : '0';
  expect_einval(text);
}

/* ------------------------------------------------------------------ */
/* Parsing: capacity                                                   */

static void test_parse_capacity_too_small(void **state) {
  (void)state;
  struct sockaddr_storage ss;
  unsigned char fill[sizeof ss];
  memset(fill, FILL, sizeof fill);
  struct sockaddr *sa = (struct sockaddr *)&ss;

  memset(&ss, FILL, sizeof ss);
  assert_int_equal(async_addr_parse(sa, sizeof(struct sockaddr_in), "::1", 0), ASYNC_ERANGE);
  assert_int_equal(async_addr_parse(sa, sizeof(struct sockaddr_in6) - 1, "[::1]:80", 0), ASYNC_ERANGE);
  assert_int_equal(async_addr_parse(sa, sizeof(struct sockaddr_in) - 1, "192.0.2.1", 0), ASYNC_ERANGE);
  assert_int_equal(async_addr_parse(sa, 0, "192.0.2.1", 0), ASYNC_ERANGE);
  assert_memory_equal(&ss, fill, sizeof ss);
}

static void test_parse_exact_capacity(void **state) {
  (void)state;
  struct sockaddr_in sin;
  struct sockaddr_in6 sin6;
  assert_int_equal(async_addr_parse((struct sockaddr *)&sin, sizeof sin, "192.0.2.1:80", 0), (int)sizeof sin);
  assert_int_equal(async_addr_parse((struct sockaddr *)&sin6, sizeof sin6, "::1", 0), (int)sizeof sin6);
}

/* Malformed text is EINVAL even when the capacity would also be short. */
static void test_parse_einval_before_erange(void **state) {
  (void)state;
  struct sockaddr_in sin;
  assert_int_equal(async_addr_parse((struct sockaddr *)&sin, 0, "nonsense", 0), ASYNC_EINVAL);
}

/* ------------------------------------------------------------------ */
/* Formatting                                                          */

static void test_format_roundtrip(void **state) {
  (void)state;
  expect_roundtrip("192.0.2.1:80", 0);
  expect_roundtrip("0.0.0.0:0", 0);
  expect_roundtrip("255.255.255.255:65535", 0);
  expect_roundtrip("[2001:db8::1]:80", 0);
  expect_roundtrip("[::]:0", 0);
  expect_roundtrip("[::1]:65535", 0);
  expect_roundtrip("[::ffff:192.0.2.1]:8080", 0);
  expect_roundtrip("[fe80::1%lo]:80", 0);
}

static void test_format_noport(void **state) {
  (void)state;
  expect_roundtrip("192.0.2.1", ASYNC_ADDR_NOPORT);
  expect_roundtrip("2001:db8::1", ASYNC_ADDR_NOPORT);
  expect_roundtrip("fe80::1%lo", ASYNC_ADDR_NOPORT);
  expect_format("192.0.2.1:80", ASYNC_ADDR_NOPORT, "192.0.2.1");
  expect_format("[2001:db8::1]:80", ASYNC_ADDR_NOPORT, "2001:db8::1");
  expect_format("[fe80::1%lo]:80", ASYNC_ADDR_NOPORT, "fe80::1%lo");
}

/* A text without port formats with the default port it was given (0). */
static void test_format_adds_port(void **state) {
  (void)state;
  expect_format("192.0.2.1", 0, "192.0.2.1:0");
  expect_format("::1", 0, "[::1]:0");
  expect_format("fe80::1%lo", 0, "[fe80::1%lo]:0");
}

static void test_format_canonicalizes_ipv6(void **state) {
  (void)state;
  expect_format("2001:DB8:0:0:0:0:0:1", ASYNC_ADDR_NOPORT, "2001:db8::1");
  expect_format("[2001:0db8::0001]:00080", 0, "[2001:db8::1]:80");
}

/* A numeric scope naming lo formats as "lo". */
static void test_format_scope_index_as_name(void **state) {
  (void)state;
  char text[64];
  snprintf(text, sizeof text, "[fe80::1%%%u]:80", (unsigned)lo_index());
  expect_format(text, 0, "[fe80::1%lo]:80");
}

/* A scope index with no interface formats as its number, and parses back. */
static void test_format_unnamed_scope_as_number(void **state) {
  (void)state;
  uint32_t idx = unnamed_index(4242);
  assert_true(idx != 0);
  struct sockaddr_in6 sin6 = make_v6("fe80::1", 80, idx);
  char out[ASYNC_ADDR_STRLEN], want[64];
  snprintf(want, sizeof want, "[fe80::1%%%u]:80", (unsigned)idx);
  assert_int_equal(async_addr_format(out, sizeof out, (struct sockaddr *)&sin6, sizeof sin6, 0), (int)strlen(want));
  assert_string_equal(out, want);
  expect_v6(out, 0, "fe80::1", 80, idx);
  expect_roundtrip(want, 0);
}

/* The longest output fits ASYNC_ADDR_STRLEN. */
static void test_format_longest_fits(void **state) {
  (void)state;
  uint32_t idx = unnamed_index(UINT32_MAX - 9999u);
  assert_true(idx != 0);
  struct sockaddr_in6 sin6 = make_v6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535, idx);
  char out[ASYNC_ADDR_STRLEN];
  int rc = async_addr_format(out, sizeof out, (struct sockaddr *)&sin6, sizeof sin6, 0);
  assert_true(rc > 0 && rc < ASYNC_ADDR_STRLEN);
  assert_int_equal((size_t)rc, strlen(out));
}

/* flowinfo is not part of the text; sin_zero garbage is ignored. */
static void test_format_ignores_extra_fields(void **state) {
  (void)state;
  struct sockaddr_in6 sin6 = make_v6("2001:db8::1", 80, 0);
  sin6.sin6_flowinfo = htonl(0x12345);
  char out[ASYNC_ADDR_STRLEN];
  assert_true(async_addr_format(out, sizeof out, (struct sockaddr *)&sin6, sizeof sin6, 0) > 0);
  assert_string_equal(out, "[2001:db8::1]:80");

  struct sockaddr_in sin = make_v4("192.0.2.1", 80);
  memset(sin.sin_zero, 0xff, sizeof sin.sin_zero);
  assert_true(async_addr_format(out, sizeof out, (struct sockaddr *)&sin, sizeof sin, 0) > 0);
  assert_string_equal(out, "192.0.2.1:80");
}

/* A larger addrlen (e.g. sizeof(struct sockaddr_storage)) is fine. */
static void test_format_long_addrlen(void **state) {
  (void)state;
  struct sockaddr_storage ss;
  assert_true(parse(&ss, "192.0.2.1:80", 0) > 0);
  char out[ASYNC_ADDR_STRLEN];
  assert_int_equal(async_addr_format(out, sizeof out, (struct sockaddr *)&ss, sizeof ss, 0), 12);
  assert_string_equal(out, "192.0.2.1:80");
}

/* The address need not be aligned. */
static void test_format_unaligned(void **state) {
  (void)state;
  struct sockaddr_in6 sin6 = make_v6("2001:db8::1", 80, 0);
  _Alignas(16) unsigned char buf[sizeof sin6 + 1];
  memcpy(buf + 1, &sin6, sizeof sin6);
  char out[ASYNC_ADDR_STRLEN];
  assert_true(async_addr_format(out, sizeof out, (const struct sockaddr *)(void *)(buf + 1), sizeof sin6, 0) > 0);
  assert_string_equal(out, "[2001:db8::1]:80");
  assert_int_equal(async_addr_port((const struct sockaddr *)(void *)(buf + 1), sizeof sin6), 80);
}

static void test_format_null_args(void **state) {
  (void)state;
  struct sockaddr_in sin = make_v4("192.0.2.1", 80);
  char out[ASYNC_ADDR_STRLEN];
  assert_int_equal(async_addr_format(NULL, sizeof out, (struct sockaddr *)&sin, sizeof sin, 0), ASYNC_EINVAL);
  assert_int_equal(async_addr_format(out, sizeof out, NULL, sizeof sin, 0), ASYNC_EINVAL);
}

static void test_format_unknown_flags(void **state) {
  (void)state;
  struct sockaddr_in sin = make_v4("192.0.2.1", 80);
  char out[ASYNC_ADDR_STRLEN];
  assert_int_equal(async_addr_format(out, sizeof out, (struct sockaddr *)&sin, sizeof sin, 2u), ASYNC_EINVAL);
  assert_int_equal(async_addr_format(out, sizeof out, (struct sockaddr *)&sin, sizeof sin, 0x80000000u),
                   ASYNC_EINVAL);
  assert_int_equal(async_addr_format(out, sizeof out, (struct sockaddr *)&sin, sizeof sin, UINT32_MAX),
                   ASYNC_EINVAL);
}

static void test_format_rejects_other_families(void **state) {
  (void)state;
  struct sockaddr_un sun;
  memset(&sun, 0, sizeof sun);
  sun.sun_family = AF_UNIX;
  strcpy(sun.sun_path, "/tmp/sock");
  char out[ASYNC_ADDR_STRLEN];
  assert_int_equal(async_addr_format(out, sizeof out, (struct sockaddr *)&sun, sizeof sun, 0), ASYNC_EINVAL);

  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  ss.ss_family = AF_UNSPEC;
  assert_int_equal(async_addr_format(out, sizeof out, (struct sockaddr *)&ss, sizeof ss, 0), ASYNC_EINVAL);
}

static void test_format_short_addrlen(void **state) {
  (void)state;
  struct sockaddr_in sin = make_v4("192.0.2.1", 80);
  struct sockaddr_in6 sin6 = make_v6("::1", 80, 0);
  char out[ASYNC_ADDR_STRLEN];
  assert_int_equal(async_addr_format(out, sizeof out, (struct sockaddr *)&sin, sizeof sin - 1, 0), ASYNC_EINVAL);
  assert_int_equal(async_addr_format(out, sizeof out, (struct sockaddr *)&sin6, sizeof sin6 - 1, 0), ASYNC_EINVAL);
  /* An IPv6 address is too long for a sockaddr_in-sized length. */
  assert_int_equal(async_addr_format(out, sizeof out, (struct sockaddr *)&sin6, sizeof sin, 0), ASYNC_EINVAL);
  assert_int_equal(async_addr_format(out, sizeof out, (struct sockaddr *)&sin, 1, 0), ASYNC_EINVAL);
  assert_int_equal(async_addr_format(out, sizeof out, (struct sockaddr *)&sin, 0, 0), ASYNC_EINVAL);
}

/* capacity must hold the text and its terminator; otherwise out = "". */
static void test_format_out_too_small(void **state) {
  (void)state;
  struct sockaddr_in6 sin6 = make_v6("2001:db8::1", 80, 0);
  const char *want = "[2001:db8::1]:80";
  size_t n = strlen(want);
  char out[ASYNC_ADDR_STRLEN];
  const struct sockaddr *sa = (const struct sockaddr *)&sin6;

  memset(out, 'x', sizeof out);
  assert_int_equal(async_addr_format(out, n, sa, sizeof sin6, 0), ASYNC_ERANGE);
  assert_int_equal(out[0], '\0');

  memset(out, 'x', sizeof out);
  assert_int_equal(async_addr_format(out, 1, sa, sizeof sin6, 0), ASYNC_ERANGE);
  assert_int_equal(out[0], '\0');

  /* capacity 0: nothing at all is written. */
  memset(out, 'x', sizeof out);
  assert_int_equal(async_addr_format(out, 0, sa, sizeof sin6, 0), ASYNC_ERANGE);
  assert_int_equal(out[0], 'x');

  memset(out, 'x', sizeof out);
  assert_int_equal(async_addr_format(out, n + 1, sa, sizeof sin6, 0), (int)n);
  assert_string_equal(out, want);
}

/* ------------------------------------------------------------------ */
/* async_addr_port                                                     */

static void test_port(void **state) {
  (void)state;
  struct sockaddr_in sin = make_v4("192.0.2.1", 8080);
  struct sockaddr_in6 sin6 = make_v6("::1", 65535, 0);
  assert_int_equal(async_addr_port((struct sockaddr *)&sin, sizeof sin), 8080);
  assert_int_equal(async_addr_port((struct sockaddr *)&sin6, sizeof sin6), 65535);
  sin.sin_port = 0;
  assert_int_equal(async_addr_port((struct sockaddr *)&sin, sizeof sin), 0);
}

static void test_port_of_parsed(void **state) {
  (void)state;
  struct sockaddr_storage ss;
  int len = parse(&ss, "[fe80::1%lo]:4433", 0);
  assert_int_equal(len, (int)sizeof(struct sockaddr_in6));
  assert_int_equal(async_addr_port((struct sockaddr *)&ss, (size_t)len), 4433);
  len = parse(&ss, "192.0.2.1", 53);
  assert_int_equal(async_addr_port((struct sockaddr *)&ss, (size_t)len), 53);
}

static void test_port_invalid(void **state) {
  (void)state;
  struct sockaddr_in sin = make_v4("192.0.2.1", 80);
  struct sockaddr_in6 sin6 = make_v6("::1", 80, 0);
  struct sockaddr_un sun;
  memset(&sun, 0, sizeof sun);
  sun.sun_family = AF_UNIX;
  assert_int_equal(async_addr_port(NULL, sizeof sin), ASYNC_EINVAL);
  assert_int_equal(async_addr_port((struct sockaddr *)&sun, sizeof sun), ASYNC_EINVAL);
  assert_int_equal(async_addr_port((struct sockaddr *)&sin, sizeof sin - 1), ASYNC_EINVAL);
  assert_int_equal(async_addr_port((struct sockaddr *)&sin6, sizeof sin6 - 1), ASYNC_EINVAL);
  assert_int_equal(async_addr_port((struct sockaddr *)&sin, 0), ASYNC_EINVAL);
}


/* ------------------------------------------------------------------ */
/* Accessors for bindings without struct sockaddr                      */

/* Bytes of any alignment, with guard bytes around what a call may touch. */
struct guarded_buf {
  unsigned char before[8];
  unsigned char bytes[ASYNC_ADDR_MAXLEN + 1];
  unsigned char after[8];
};

static void test_family_values(void **state) {
  (void)state;
  /* The ABI's numbers are the kernel's (async/addr.h). */
  assert_int_equal(ASYNC_AF_UNSPEC, AF_UNSPEC);
  assert_int_equal(ASYNC_AF_UNIX, AF_UNIX);
  assert_int_equal(ASYNC_AF_INET, AF_INET);
  assert_int_equal(ASYNC_AF_INET6, AF_INET6);
  assert_int_equal(ASYNC_ADDR_MAXLEN, sizeof(struct sockaddr_storage));
  struct sockaddr_storage ss;
  assert_int_equal(parse(&ss, "192.0.2.1:80", 0), (int)sizeof(struct sockaddr_in));
  assert_int_equal(async_addr_get_family((struct sockaddr *)&ss, sizeof(struct sockaddr_in)), ASYNC_AF_INET);
  assert_int_equal(parse(&ss, "[2001:db8::1]:80", 0), (int)sizeof(struct sockaddr_in6));
  assert_int_equal(async_addr_get_family((struct sockaddr *)&ss, sizeof(struct sockaddr_in6)), ASYNC_AF_INET6);
  /* Any family: only its field is read, addrlen need cover no more. */
  struct sockaddr_un un = {.sun_family = AF_UNIX};
  assert_int_equal(async_addr_get_family((struct sockaddr *)&un, sizeof(sa_family_t)), ASYNC_AF_UNIX);
  struct sockaddr_storage other = {.ss_family = AF_NETLINK};
  assert_int_equal(async_addr_get_family((struct sockaddr *)&other, sizeof other), AF_NETLINK);
  assert_int_equal(async_addr_get_family((struct sockaddr *)&other, sizeof(sa_family_t) - 1), ASYNC_EINVAL);
  assert_int_equal(async_addr_get_family(NULL, sizeof other), ASYNC_EINVAL);
}

static void test_get_ip_and_scope(void **state) {
  (void)state;
  struct sockaddr_storage ss;
  uint8_t ip[16];
  uint32_t scope = 99;
  assert_int_equal(parse(&ss, "192.0.2.1:80", 0), (int)sizeof(struct sockaddr_in));
  memset(ip, FILL, sizeof ip);
  assert_int_equal(async_addr_get_ip(ip, 4, (struct sockaddr *)&ss, sizeof(struct sockaddr_in)), 4);
  const uint8_t v4[4] = {192, 0, 2, 1};
  assert_memory_equal(ip, v4, 4);
  assert_int_equal(ip[4], FILL);
  assert_int_equal(async_addr_get_scope_id(&scope, (struct sockaddr *)&ss, sizeof(struct sockaddr_in)), 0);
  assert_int_equal(scope, 0);

  assert_int_equal(parse(&ss, "[2001:db8::1%7]:80", 0), (int)sizeof(struct sockaddr_in6));
  memset(ip, FILL, sizeof ip);
  assert_int_equal(async_addr_get_ip(ip, sizeof ip, (struct sockaddr *)&ss, sizeof(struct sockaddr_in6)), 16);
  const uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  assert_memory_equal(ip, v6, 16);
  assert_int_equal(async_addr_get_scope_id(&scope, (struct sockaddr *)&ss, sizeof(struct sockaddr_in6)), 0);
  assert_int_equal(scope, 7);

  /* Too small an output: ASYNC_ERANGE, nothing written. */
  memset(ip, FILL, sizeof ip);
  assert_int_equal(async_addr_get_ip(ip, 15, (struct sockaddr *)&ss, sizeof(struct sockaddr_in6)), ASYNC_ERANGE);
  for (size_t i = 0; i < sizeof ip; i++) assert_int_equal(ip[i], FILL);
  /* addrlen short of the family's length, other families, NULL. */
  assert_int_equal(async_addr_get_ip(ip, sizeof ip, (struct sockaddr *)&ss, sizeof(struct sockaddr_in6) - 1),
                   ASYNC_EINVAL);
  assert_int_equal(async_addr_get_scope_id(&scope, (struct sockaddr *)&ss, sizeof(struct sockaddr_in6) - 1),
                   ASYNC_EINVAL);
  struct sockaddr_un un = {.sun_family = AF_UNIX, .sun_path = "/x"};
  assert_int_equal(async_addr_get_ip(ip, sizeof ip, (struct sockaddr *)&un, sizeof un), ASYNC_EINVAL);
  assert_int_equal(async_addr_get_scope_id(&scope, (struct sockaddr *)&un, sizeof un), ASYNC_EINVAL);
  assert_int_equal(async_addr_get_ip(NULL, sizeof ip, (struct sockaddr *)&ss, sizeof ss), ASYNC_EINVAL);
  assert_int_equal(async_addr_get_ip(ip, sizeof ip, NULL, sizeof ss), ASYNC_EINVAL);
  assert_int_equal(async_addr_get_scope_id(NULL, (struct sockaddr *)&ss, sizeof ss), ASYNC_EINVAL);
  assert_int_equal(async_addr_get_scope_id(&scope, NULL, sizeof ss), ASYNC_EINVAL);
}

/* make -> format -> parse -> get_* gives back what was made, at every
 * alignment of the output, writing nothing past the address. */
static void make_round_trip(int family, const uint8_t *ip, size_t ip_len, uint16_t port, uint32_t scope,
                            const char *text) {
  for (size_t shift = 0; shift < 8; shift++) {
    struct guarded_buf g;
    memset(&g, FILL, sizeof g);
    struct sockaddr *out = (struct sockaddr *)(g.bytes + shift);
    int len = async_addr_make(out, sizeof g.bytes - shift, family, ip, ip_len, port, scope);
    int want = family == ASYNC_AF_INET ? (int)sizeof(struct sockaddr_in) : (int)sizeof(struct sockaddr_in6);
    assert_int_equal(len, want);
    for (size_t i = shift + (size_t)len; i < sizeof g.bytes; i++) assert_int_equal(g.bytes[i], FILL);
    for (size_t i = 0; i < shift; i++) assert_int_equal(g.bytes[i], FILL);
    assert_int_equal(async_addr_get_family(out, (size_t)len), family);
    assert_int_equal(async_addr_port(out, (size_t)len), port);
    uint8_t back[16];
    assert_int_equal(async_addr_get_ip(back, sizeof back, out, (size_t)len), (int)ip_len);
    assert_memory_equal(back, ip, ip_len);
    uint32_t back_scope = 1234;
    assert_int_equal(async_addr_get_scope_id(&back_scope, out, (size_t)len), 0);
    assert_int_equal(back_scope, scope);
    char formatted[ASYNC_ADDR_STRLEN];
    assert_true(async_addr_format(formatted, sizeof formatted, out, (size_t)len, 0) > 0);
    assert_string_equal(formatted, text);
    /* And text -> parse gives the same bytes as make. */
    struct sockaddr_storage parsed;
    assert_int_equal(parse(&parsed, text, 0), len);
    assert_memory_equal(&parsed, out, (size_t)len);
    /* set_port in place, at that alignment. */
    assert_int_equal(async_addr_set_port(out, (size_t)len, 65535), 0);
    assert_int_equal(async_addr_port(out, (size_t)len), 65535);
    assert_int_equal(async_addr_set_port(out, (size_t)len, port), 0);
    assert_memory_equal(&parsed, out, (size_t)len);
  }
}

static void test_make_round_trips(void **state) {
  (void)state;
  const uint8_t v4[4] = {192, 0, 2, 1};
  make_round_trip(ASYNC_AF_INET, v4, 4, 8080, 0, "192.0.2.1:8080");
  const uint8_t any4[4] = {0, 0, 0, 0};
  make_round_trip(ASYNC_AF_INET, any4, 4, 0, 0, "0.0.0.0:0");
  const uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  make_round_trip(ASYNC_AF_INET6, v6, 16, 443, 0, "[2001:db8::1]:443");
  /* A scope id no interface has formats as its number. */
  const uint8_t ll[16] = {0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  make_round_trip(ASYNC_AF_INET6, ll, 16, 53, 4000000000u, "[fe80::1%4000000000]:53");
  unsigned lo = if_nametoindex("lo");
  assert_true(lo > 0);
  make_round_trip(ASYNC_AF_INET6, ll, 16, 53, lo, "[fe80::1%lo]:53");
}

static void test_make_bad_input(void **state) {
  (void)state;
  struct guarded_buf g;
  memset(&g, FILL, sizeof g);
  struct sockaddr *out = (struct sockaddr *)g.bytes;
  const uint8_t ip[16] = {1, 2, 3, 4};
  assert_int_equal(async_addr_make(out, sizeof g.bytes, ASYNC_AF_INET, ip, 16, 1, 0), ASYNC_EINVAL);
  assert_int_equal(async_addr_make(out, sizeof g.bytes, ASYNC_AF_INET6, ip, 4, 1, 0), ASYNC_EINVAL);
  assert_int_equal(async_addr_make(out, sizeof g.bytes, ASYNC_AF_INET, ip, 4, 1, 2), ASYNC_EINVAL);
  assert_int_equal(async_addr_make(out, sizeof g.bytes, ASYNC_AF_UNIX, ip, 4, 1, 0), ASYNC_EINVAL);
  assert_int_equal(async_addr_make(out, sizeof g.bytes, ASYNC_AF_UNSPEC, ip, 16, 1, 0), ASYNC_EINVAL);
  assert_int_equal(async_addr_make(out, sizeof g.bytes, -1, ip, 4, 1, 0), ASYNC_EINVAL);
  assert_int_equal(async_addr_make(NULL, sizeof g.bytes, ASYNC_AF_INET, ip, 4, 1, 0), ASYNC_EINVAL);
  assert_int_equal(async_addr_make(out, sizeof g.bytes, ASYNC_AF_INET, NULL, 4, 1, 0), ASYNC_EINVAL);
  /* One byte short: ASYNC_ERANGE. */
  assert_int_equal(async_addr_make(out, sizeof(struct sockaddr_in) - 1, ASYNC_AF_INET, ip, 4, 1, 0), ASYNC_ERANGE);
  assert_int_equal(async_addr_make(out, sizeof(struct sockaddr_in6) - 1, ASYNC_AF_INET6, ip, 16, 1, 0),
                   ASYNC_ERANGE);
  /* Nothing written by any of them. */
  for (size_t i = 0; i < sizeof g.bytes; i++) assert_int_equal(g.bytes[i], FILL);

  /* set_port: other families, short addrlen, NULL; nothing written. */
  struct sockaddr_un un = {.sun_family = AF_UNIX, .sun_path = "/x"};
  struct sockaddr_un un_copy = un;
  assert_int_equal(async_addr_set_port((struct sockaddr *)&un, sizeof un, 1), ASYNC_EINVAL);
  assert_memory_equal(&un, &un_copy, sizeof un);
  struct sockaddr_storage ss;
  assert_int_equal(parse(&ss, "[::1]:1", 0), (int)sizeof(struct sockaddr_in6));
  struct sockaddr_storage copy = ss;
  assert_int_equal(async_addr_set_port((struct sockaddr *)&ss, sizeof(struct sockaddr_in6) - 1, 2), ASYNC_EINVAL);
  assert_memory_equal(&ss, &copy, sizeof ss);
  assert_int_equal(async_addr_set_port(NULL, sizeof ss, 2), ASYNC_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_ipv4),
      cmocka_unit_test(test_parse_ipv4_with_port),
      cmocka_unit_test(test_parse_ipv4_default_port),
      cmocka_unit_test(test_parse_ipv6),
      cmocka_unit_test(test_parse_ipv6_default_port),
      cmocka_unit_test(test_parse_ipv6_bracketed_with_port),
      cmocka_unit_test(test_parse_bare_ipv6_takes_no_port),
      cmocka_unit_test(test_parse_scope_by_name),
      cmocka_unit_test(test_parse_scope_by_number),
      cmocka_unit_test(test_parse_scope_on_global_address),
      cmocka_unit_test(test_parse_bracketed_scope_with_port),
      cmocka_unit_test(test_parse_port_bounds),
      cmocka_unit_test(test_parse_port_leading_zeros),
      cmocka_unit_test(test_parse_null_args),
      cmocka_unit_test(test_parse_rejects_whitespace),
      cmocka_unit_test(test_parse_rejects_bad_ports),
      cmocka_unit_test(test_parse_rejects_bad_brackets),
      cmocka_unit_test(test_parse_rejects_bad_scopes),
      cmocka_unit_test(test_parse_rejects_unknown_interface),
      cmocka_unit_test(test_parse_rejects_bad_addresses),
      cmocka_unit_test(test_parse_rejects_names),
      cmocka_unit_test(test_parse_rejects_overlong),
      cmocka_unit_test(test_parse_capacity_too_small),
      cmocka_unit_test(test_parse_exact_capacity),
      cmocka_unit_test(test_parse_einval_before_erange),
      cmocka_unit_test(test_format_roundtrip),
      cmocka_unit_test(test_format_noport),
      cmocka_unit_test(test_format_adds_port),
      cmocka_unit_test(test_format_canonicalizes_ipv6),
      cmocka_unit_test(test_format_scope_index_as_name),
      cmocka_unit_test(test_format_unnamed_scope_as_number),
      cmocka_unit_test(test_format_longest_fits),
      cmocka_unit_test(test_format_ignores_extra_fields),
      cmocka_unit_test(test_format_long_addrlen),
      cmocka_unit_test(test_format_unaligned),
      cmocka_unit_test(test_format_null_args),
      cmocka_unit_test(test_format_unknown_flags),
      cmocka_unit_test(test_format_rejects_other_families),
      cmocka_unit_test(test_format_short_addrlen),
      cmocka_unit_test(test_format_out_too_small),
      cmocka_unit_test(test_port),
      cmocka_unit_test(test_port_of_parsed),
      cmocka_unit_test(test_port_invalid),
      cmocka_unit_test(test_family_values),
      cmocka_unit_test(test_get_ip_and_scope),
      cmocka_unit_test(test_make_round_trips),
      cmocka_unit_test(test_make_bad_input),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
