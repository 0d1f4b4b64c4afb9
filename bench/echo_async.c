/*
 * Echo server on libasync: async_tcp_listen on 127.0.0.1:PORT, every
 * connection echoes what it receives. Runs until SIGTERM/SIGINT, then
 * prints its CPU time (user + system) so the runner can report server CPU
 * per operation.
 *
 * usage: echo_async PORT
 */
#define _POSIX_C_SOURCE 200809L
#include <async.h>
#include <signal.h>

#include "bench_common.h"

static size_t echo_data(async_stream *stream, const uint8_t *data, size_t len, void *userdata) {
  (void)userdata;
  async_stream_write(stream, data, len);
  return len;
}

static void echo_lost(async_stream *stream, int error, void *userdata) {
  (void)stream;
  (void)error;
  (void)userdata;
}

static const async_stream_protocol echo = {
    sizeof(async_stream_protocol), NULL, echo_data, NULL, echo_lost, NULL, NULL, NULL, NULL,
};

static int factory(const async_stream_protocol **p, void **ud, async_server *server, void *userdata) {
  (void)server;
  (void)userdata;
  *p = &echo;
  *ud = NULL;
  return 0;
}

static void on_signal(async_signal *sig, int signum, void *userdata) {
  (void)sig;
  (void)signum;
  async_loop_stop(userdata);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: echo_async PORT\n");
    return 2;
  }
  async_loop *loop;
  BENCH_CHECK(async_loop_new(&loop));
  async_server *server;
  BENCH_CHECK(async_tcp_listen(&server, loop, "127.0.0.1", (uint16_t)atoi(argv[1]), 1024, 0, factory, NULL));
  async_signal *term, *intr;
  BENCH_CHECK(async_signal_new(&term, loop, loop));
  BENCH_CHECK(async_signal_new(&intr, loop, loop));
  BENCH_CHECK(async_signal_start(term, SIGTERM, on_signal));
  BENCH_CHECK(async_signal_start(intr, SIGINT, on_signal));
  printf("READY\n");
  fflush(stdout);
  BENCH_CHECK(async_loop_run(loop, ASYNC_RUN_DEFAULT));
  printf("CPU %.6f\n", bench_cpu());
  return 0; /* the process exits: no teardown needed for the figures */
}
