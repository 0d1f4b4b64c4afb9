/*
 * TLS echo server on libasync: async_tcp_listen on 127.0.0.1:PORT, TLS
 * pushed onto each accepted stream in its connection_made
 * (async_tls_push() with a server context of CERT_FILE and KEY_FILE), and
 * above it the protocol of echo_async.c: write back what comes, pause
 * reading from pause_writing to resume_writing, with the write marks of
 * echo_policy.h. Policy and output: tls_policy.h.
 *
 * usage: tls_echo_async PORT CERT_FILE KEY_FILE
 */
#define _POSIX_C_SOURCE 200809L
#include <async.h>
#include <signal.h>

#include "echo_async_protocol.h"
#include "tls_policy.h"

/* The accepted TCP stream's protocol, until TLS goes on top of it. */
static void tcp_made(async_stream *stream, void *ctx) {
  async_stream *tls;
  if (async_tls_push(&tls, NULL, stream, ctx, NULL, &echo, NULL) != 0) async_stream_abort(stream);
}

/* Never called: reading starts after connection_made, which replaced this protocol. */
static size_t tcp_data(async_stream *stream, const uint8_t *data, size_t len, void *ctx) {
  (void)stream;
  (void)data;
  (void)len;
  (void)ctx;
  return 0;
}

static void tcp_lost(async_stream *stream, int error, void *ctx) {
  (void)stream;
  (void)error;
  (void)ctx;
}

static const async_stream_protocol tcp = {
    sizeof(async_stream_protocol), tcp_made, tcp_data, NULL, tcp_lost, NULL, NULL, NULL, NULL, 0, NULL,
};

static int factory(const async_stream_protocol **p, void **ud, async_server *server, void *ctx) {
  (void)server;
  *p = &tcp;
  *ud = ctx;
  return 0;
}

static void on_stop(async_signal *sig, int signum, void *userdata) {
  (void)sig;
  (void)signum;
  async_loop_stop(userdata);
}

static void on_heap(async_signal *sig, int signum, void *userdata) {
  (void)sig;
  (void)signum;
  (void)userdata;
  tls_report_heap();
}

int main(int argc, char **argv) {
  struct tls_args args = tls_args(argc, argv);
  async_loop *loop;
  BENCH_CHECK(async_loop_new(&loop));
  async_tls_options options = ASYNC_TLS_OPTIONS_INIT;
  options.cert_file = args.cert;
  options.key_file = args.key;
  async_tls_context *ctx;
  BENCH_CHECK(async_tls_context_new(&ctx, ASYNC_TLS_SERVER, &options));
  async_server *server;
  BENCH_CHECK(async_tcp_listen(&server, loop, "127.0.0.1", (uint16_t)args.port, ECHO_BACKLOG, 0, factory, ctx));
  async_signal *term, *intr, *usr1;
  BENCH_CHECK(async_signal_new(&term, loop, loop));
  BENCH_CHECK(async_signal_new(&intr, loop, loop));
  BENCH_CHECK(async_signal_new(&usr1, loop, NULL));
  BENCH_CHECK(async_signal_start(term, SIGTERM, on_stop));
  BENCH_CHECK(async_signal_start(intr, SIGINT, on_stop));
  BENCH_CHECK(async_signal_start(usr1, SIGUSR1, on_heap));
  echo_ready();
  BENCH_CHECK(async_loop_run(loop, ASYNC_RUN_DEFAULT));
  echo_report();
  return 0; /* the process exits: no teardown needed for the figures */
}
