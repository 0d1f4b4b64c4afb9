/*
 * Idle connection memory on libasync: a server on 127.0.0.1 accepts N
 * connections (default 10,000) from a child process that keeps them open
 * and silent; prints the library heap (counted through async_set_allocator,
 * libev's arrays included) and the RSS growth per connection.
 *
 * usage: idle_async [N]
 */
#define _POSIX_C_SOURCE 200809L
#include <async.h>

#include "idle_common.h"

static async_loop *loop;
static struct idle_lib lib = {"async", NULL, 0, 0};

static void *count_realloc(void *ptr, size_t size, void *userdata) {
  (void)userdata;
  return idle_realloc(ptr, size);
}

static void made(async_stream *stream, void *userdata) {
  (void)stream;
  (void)userdata;
  lib.accepted++;
}

static size_t ignore_data(async_stream *stream, const uint8_t *data, size_t len, void *userdata) {
  (void)stream;
  (void)data;
  (void)userdata;
  return len;
}

static void lost(async_stream *stream, int error, void *userdata) {
  (void)stream;
  (void)error;
  (void)userdata;
  lib.closed++;
}

static const async_stream_protocol idle_protocol = {
    sizeof(async_stream_protocol), made, ignore_data, NULL, lost, NULL, NULL, NULL, NULL, 0, NULL,
};

static int factory(const async_stream_protocol **p, void **ud, async_server *server, void *userdata) {
  (void)server;
  (void)userdata;
  *p = &idle_protocol;
  *ud = NULL;
  return 0;
}

static void tick(async_timer *timer, void *userdata) {
  (void)timer;
  (void)userdata;
}

static void run_once(void) { BENCH_CHECK(async_loop_run(loop, ASYNC_RUN_ONCE)); }

int main(int argc, char **argv) {
  long n = idle_conns(argc, argv);
  BENCH_CHECK(async_set_allocator(count_realloc, NULL));
  lib.run_once = run_once;
  BENCH_CHECK(async_loop_new(&loop));
  async_timer *wake;
  BENCH_CHECK(async_timer_new(&wake, loop, NULL));
  BENCH_CHECK(async_timer_start(wake, 100, 100, tick));
  async_server *server;
  BENCH_CHECK(async_tcp_listen(&server, loop, "127.0.0.1", 0, 4096, 0, factory, NULL));
  int port = async_server_port(server);
  BENCH_CHECK(port);

  idle_measure(&lib, (uint16_t)port, n);

  BENCH_CHECK(async_handle_close(async_server_handle(server), NULL));
  BENCH_CHECK(async_handle_close(async_timer_handle(wake), NULL));
  BENCH_CHECK(async_loop_run(loop, ASYNC_RUN_DEFAULT));
  BENCH_CHECK(async_loop_free(loop));
  if (idle_live.blocks != 0) {
    fprintf(stderr, "%ld blocks (%ld bytes) still live after async_loop_free\n", idle_live.blocks, idle_live.bytes);
    return 1;
  }
  return 0;
}
