/*
 * async_getnameinfo answered from the loop's hosts file
 * (async_dns_set_hosts_file): the first name of the first line listing the
 * address, for IPv4 and IPv6, with the scope of a file entry ignored, lines
 * too long to read skipped, and the name whole whatever its length. Every
 * address asked is in the file, so no DNS query is ever sent.
 */
#include "test_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A DNS name of 253 characters: 63-character labels and a last one of 61. */
static char g_long_name[254];

static const char *long_name(void) {
  if (g_long_name[0] == '\0') {
    memset(g_long_name, 'a', 253);
    for (int dot = 63; dot < 253; dot += 64) {
      g_long_name[dot] = '.';
    }
  }
  return g_long_name;
}

/* A temporary hosts file; the caller unlinks path. */
static void write_hosts(char *path, size_t size) {
  snprintf(path, size, "/tmp/libasync-hosts-XXXXXX");
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  FILE *f = fdopen(fd, "w");
  assert_non_null(f);
  /* A line over the reader's limit (1023 characters): skipped whole, so
   * 192.0.2.1 gets the name of the next line, not a cut one. */
  fprintf(f, "192.0.2.1 %0*d\n", 2000, 0);
  fprintf(f, "# comment 192.0.2.1 comment.test\n");
  fprintf(f, "192.0.2.1\tshort.test alias.test  # trailing comment\n");
  fprintf(f, "192.0.2.1 second-line.test\n");
  fprintf(f, "192.0.2.2 %s\n", long_name());
  fprintf(f, "fe80::1%%lo scoped.test\n");
  fprintf(f, "2001:db8::5 six.test\n");
  assert_int_equal(fclose(f), 0);
}

/* getnameinfo(addr, flags) on loop, which must succeed; host and service
 * copied out. */
static void lookup(async_loop *loop, const struct sockaddr *addr, size_t len, uint32_t flags, char *host,
                   size_t host_size, char *service, size_t service_size) {
  async_future *f = NULL;
  assert_int_equal(async_getnameinfo(&f, loop, addr, len, flags), 0);
  assert_int_equal(tu_wait_future(loop, f, 5000), 0);
  void *info = NULL;
  assert_int_equal(async_future_result(&info, f), 0);
  snprintf(host, host_size, "%s", async_nameinfo_host(info));
  snprintf(service, service_size, "%s", async_nameinfo_service(info));
  assert_int_equal(async_future_free(f), 0);
}

static void lookup4(async_loop *loop, const char *ip, uint16_t port, uint32_t flags, char *host, size_t size,
                    char *service) {
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port);
  assert_int_equal(inet_pton(AF_INET, ip, &sin.sin_addr), 1);
  lookup(loop, (struct sockaddr *)&sin, sizeof sin, flags, host, size, service, 16);
}

static void lookup6(async_loop *loop, const char *ip, uint32_t scope, uint16_t port, uint32_t flags, char *host,
                    size_t size, char *service) {
  struct sockaddr_in6 sin6;
  memset(&sin6, 0, sizeof sin6);
  sin6.sin6_family = AF_INET6;
  sin6.sin6_port = htons(port);
  sin6.sin6_scope_id = scope;
  assert_int_equal(inet_pton(AF_INET6, ip, &sin6.sin6_addr), 1);
  lookup(loop, (struct sockaddr *)&sin6, sizeof sin6, flags, host, size, service, 16);
}

static void test_names_from_the_file(void **state) {
  (void)state;
  char path[64];
  write_hosts(path, sizeof path);
  async_loop *loop = tu_loop_new();
  assert_int_equal(async_dns_set_hosts_file(loop, path), 0);
  char host[300], service[16];

  lookup4(loop, "192.0.2.1", 0, 0, host, sizeof host, service);
  assert_string_equal(host, "short.test");
  assert_string_equal(service, "0");
  lookup4(loop, "192.0.2.1", 8080, ASYNC_NI_NUMERICSERV, host, sizeof host, service);
  assert_string_equal(host, "short.test");
  assert_string_equal(service, "8080");

  lookup6(loop, "2001:db8::5", 0, 443, ASYNC_NI_NUMERICSERV | ASYNC_NI_NAMEREQD, host, sizeof host, service);
  assert_string_equal(host, "six.test");
  assert_string_equal(service, "443");
  lookup6(loop, "fe80::1", 1, 0, 0, host, sizeof host, service);
  assert_string_equal(host, "scoped.test");

  tu_finish(loop);
  unlink(path);
}

/* A name as long as DNS allows comes back whole. */
static void test_longest_name_whole(void **state) {
  (void)state;
  char path[64];
  write_hosts(path, sizeof path);
  async_loop *loop = tu_loop_new();
  assert_int_equal(async_dns_set_hosts_file(loop, path), 0);
  char host[300], service[16];
  lookup4(loop, "192.0.2.2", 0, 0, host, sizeof host, service);
  assert_int_equal(strlen(host), 253);
  assert_string_equal(host, long_name());
  tu_finish(loop);
  unlink(path);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_names_from_the_file),
      cmocka_unit_test(test_longest_name_whole),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
