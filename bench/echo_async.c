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

#include "echo_policy.h"

static void echo_made(async_stream *stream, void *userdata) {
  (void)userdata;
  BENCH_CHECK(async_stream_set_write_limits(stream, ECHO_HIGH_WATER, ECHO_LOW_WATER));
}

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

static void echo_pause(async_stream *stream, void *userdata) {
  (void)userdata;
  async_stream_pause_reading(stream);
}

static void echo_resume(async_stream *stream, void *userdata) {
  (void)userdata;
  async_stream_resume_reading(stream);
}

static const async_stream_protocol echo = {
    sizeof(async_stream_protocol), echo_made, echo_data, NULL, echo_lost, echo_pause, echo_resume, NULL, NULL, 0, NULL,
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
