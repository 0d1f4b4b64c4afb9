/*
 * resolve.c: resolve host names concurrently on one loop, like
 * `getent ahosts`.
 *
 *   resolve NAME...
 *
 * Every name is looked up at once with async_getaddrinfo() (AF_UNSPEC, no
 * service); all lookups run concurrently inside one loop, with no thread.
 * Once every future is complete, the results are printed in argument order:
 * one line "ADDRESS  NAME" per address, or "NAME: <error text>" when the
 * lookup failed. Numeric addresses ("127.0.0.1", "::1") are answered
 * without DNS.
 *
 * Environment: LIBASYNC_DNS_SERVERS, if set, replaces the system's DNS
 * servers (async_dns_set_servers(), e.g. "127.0.0.1:5353,[::1]:5353").
 *
 * Exit status: 0 if every name resolved, 2 if any failed, 1 on usage or
 * setup errors.
 *
 * Build: cc resolve.c $(pkg-config --cflags --libs libasync)
 */
#include <async.h>

#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

static void check(int rc, const char *what) {
  if (rc < 0) {
    fprintf(stderr, "resolve: %s failed: %s (%s)\n", what, async_err_name(rc), async_strerror(rc));
    exit(1);
  }
}

/* Called once per lookup when it completes: stop the loop after the last. */
static void on_done(async_future *future, int status, void *userdata) {
  (void)status;
  int *remaining = userdata;
  if (--*remaining == 0) {
    async_loop_stop(async_future_loop(future));
  }
}

/* Prints one lookup's outcome; returns 1 if it resolved, 0 if not. */
static int print_result(const char *name, async_future *future) {
  void *value = NULL;
  int rc = async_future_result(&value, future);
  if (rc < 0) {
    printf("%s: %s\n", name, async_strerror(rc));
    return 0;
  }
  const async_addrinfo *list = value; /* owned by the future */
  int count = async_addrinfo_count(list);
  for (int i = 0; i < count; i++) {
    const struct sockaddr *addr = NULL;
    int len = async_addrinfo_addr(&addr, list, (size_t)i);
    check(len, "async_addrinfo_addr");
    char text[ASYNC_ADDR_STRLEN];
    check(async_addr_format(text, sizeof text, addr, (size_t)len, ASYNC_ADDR_NOPORT), "async_addr_format");
    printf("%-40s %s\n", text, name);
  }
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s NAME...\n", argv[0]);
    return 1;
  }
  async_loop *loop = NULL;
  check(async_loop_new(&loop), "async_loop_new");
  const char *servers = getenv("LIBASYNC_DNS_SERVERS");
  if (servers != NULL && servers[0] != '\0') {
    check(async_dns_set_servers(loop, servers), "async_dns_set_servers");
  }

  int n = argc - 1;
  async_future **futures = calloc((size_t)n, sizeof *futures);
  if (futures == NULL) {
    check(ASYNC_ENOMEM, "calloc");
  }
  /* Start every lookup before running the loop: they all run at once. A
   * name rejected at once (e.g. empty or too long) gets no future. */
  int remaining = 0;
  int failed = 0;
  int *started_rc = calloc((size_t)n, sizeof *started_rc);
  if (started_rc == NULL) {
    check(ASYNC_ENOMEM, "calloc");
  }
  for (int i = 0; i < n; i++) {
    started_rc[i] = async_getaddrinfo(&futures[i], loop, argv[i + 1], NULL, AF_UNSPEC, 0, 0);
    if (started_rc[i] == 0) {
      check(async_future_add_callback(futures[i], on_done, &remaining), "async_future_add_callback");
      remaining++;
    }
  }
  if (remaining > 0) {
    check(async_loop_run(loop, ASYNC_RUN_DEFAULT), "async_loop_run");
  }

  for (int i = 0; i < n; i++) {
    if (started_rc[i] < 0) {
      printf("%s: %s\n", argv[i + 1], async_strerror(started_rc[i]));
      failed = 1;
      continue;
    }
    if (!print_result(argv[i + 1], futures[i])) {
      failed = 1;
    }
    check(async_future_free(futures[i]), "async_future_free");
  }
  free(futures);
  free(started_rc);
  /* Let anything the lookups left behind finish, then free the loop. */
  check(async_loop_run(loop, ASYNC_RUN_DEFAULT), "async_loop_run");
  check(async_loop_free(loop), "async_loop_free");
  return failed ? 2 : 0;
}
