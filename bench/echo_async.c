/*
 * Echo server on libasync: async_tcp_listen on 127.0.0.1:PORT, a protocol
 * that writes back what it receives (async_stream_write sends at once and
 * copies only the unsent rest) and pauses reading from pause_writing to
 * resume_writing, with the write marks of echo_policy.h. Policy and
 * output: echo_policy.h.
 *
 * usage: echo_async PORT
 */
#define _POSIX_C_SOURCE 200809L
#include <async.h>
#include <signal.h>

#include "echo_async_protocol.h"

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
  int port = echo_port(argc, argv);
  async_loop *loop;
  BENCH_CHECK(async_loop_new(&loop));
  async_server *server;
  BENCH_CHECK(async_tcp_listen(&server, loop, "127.0.0.1", (uint16_t)port, ECHO_BACKLOG, 0, factory, NULL));
  async_signal *term, *intr;
  BENCH_CHECK(async_signal_new(&term, loop, loop));
  BENCH_CHECK(async_signal_new(&intr, loop, loop));
  BENCH_CHECK(async_signal_start(term, SIGTERM, on_signal));
  BENCH_CHECK(async_signal_start(intr, SIGINT, on_signal));
  echo_ready();
  BENCH_CHECK(async_loop_run(loop, ASYNC_RUN_DEFAULT));
  echo_report();
  return 0; /* the process exits: no teardown needed for the figures */
}
