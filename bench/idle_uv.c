/*
 * Idle connection memory on libuv, the counterpart of idle_async.c: the
 * heap is counted through uv_replace_allocator plus the uv_tcp_t each
 * accepted connection needs (allocated by the user, counted the same way);
 * reading is started on every connection with one static buffer.
 *
 * usage: idle_uv [N]
 */
#define _POSIX_C_SOURCE 200809L
#include <uv.h>

#include "idle_common.h"

static uv_loop_t loop;
static uv_tcp_t server;
static uv_timer_t wake;
static struct idle_lib lib = {"uv", NULL, 0, 0};
static char buffer[65536];

static void *count_calloc(size_t count, size_t size) {
  if (size && count > SIZE_MAX / size) return NULL;
  void *p = idle_malloc(count * size);
  if (p) memset(p, 0, count * size);
  return p;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  (void)suggested;
  *buf = uv_buf_init(buffer, sizeof buffer);
}

static void on_closed(uv_handle_t *h) {
  idle_free(h);
  lib.closed++;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  (void)buf;
  if (n < 0) uv_close((uv_handle_t *)s, on_closed);
}

static void on_connection(uv_stream_t *listener, int status) {
  BENCH_CHECK(status);
  uv_tcp_t *client = idle_malloc(sizeof *client);
  BENCH_ASSERT(client);
  BENCH_CHECK(uv_tcp_init(listener->loop, client));
  BENCH_CHECK(uv_accept(listener, (uv_stream_t *)client));
  uv_tcp_nodelay(client, 1);
  BENCH_CHECK(uv_read_start((uv_stream_t *)client, on_alloc, on_read));
  lib.accepted++;
}

static void tick(uv_timer_t *timer) { (void)timer; }

static void run_once(void) { uv_run(&loop, UV_RUN_ONCE); }

int main(int argc, char **argv) {
  long n = idle_conns(argc, argv);
  BENCH_CHECK(uv_replace_allocator(idle_malloc, idle_realloc, count_calloc, idle_free));
  lib.run_once = run_once;
  BENCH_CHECK(uv_loop_init(&loop));
  BENCH_CHECK(uv_timer_init(&loop, &wake));
  BENCH_CHECK(uv_timer_start(&wake, tick, 100, 100));
  struct sockaddr_in addr;
  BENCH_CHECK(uv_ip4_addr("127.0.0.1", 0, &addr));
  BENCH_CHECK(uv_tcp_init(&loop, &server));
  BENCH_CHECK(uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0));
  BENCH_CHECK(uv_listen((uv_stream_t *)&server, 4096, on_connection));
  struct sockaddr_in bound;
  int len = sizeof bound;
  BENCH_CHECK(uv_tcp_getsockname(&server, (struct sockaddr *)&bound, &len));

  idle_measure(&lib, ntohs(bound.sin_port), n);

  uv_close((uv_handle_t *)&server, NULL);
  uv_close((uv_handle_t *)&wake, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  BENCH_CHECK(uv_loop_close(&loop));
  return 0;
}
