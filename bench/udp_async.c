/*
 * UDP server on libasync: async_udp_open on 127.0.0.1:PORT. In echo mode
 * every datagram goes back to its sender (async_datagram_send); in sink
 * mode datagrams are only counted. Runs until SIGTERM/SIGINT, then prints
 *   RESULT received=N span=S cpu=C
 * (datagrams received, seconds from the first to the last, CPU seconds of
 * the process) for bench/run_udp.sh.
 *
 * usage: udp_async PORT echo|sink
 */
#define _POSIX_C_SOURCE 200809L
#include <async.h>
#include <signal.h>
#include <string.h>

#include "bench_common.h"
#include "bench_udp.h"

static struct udp_count count;

static void on_echo(async_datagram *d, const uint8_t *data, size_t len, const struct sockaddr *addr, size_t addrlen,
                    void *userdata) {
  (void)userdata;
  udp_count_one(&count);
  async_datagram_send(d, data, len, addr, addrlen);
}

static void on_sink(async_datagram *d, const uint8_t *data, size_t len, const struct sockaddr *addr, size_t addrlen,
                    void *userdata) {
  (void)d;
  (void)data;
  (void)len;
  (void)addr;
  (void)addrlen;
  (void)userdata;
  udp_count_one(&count);
}

static void on_lost(async_datagram *d, int error, void *userdata) {
  (void)d;
  (void)error;
  (void)userdata;
}

static void on_signal(async_signal *sig, int signum, void *userdata) {
  (void)sig;
  (void)signum;
  async_loop_stop(userdata);
}

int main(int argc, char **argv) {
  int echo = udp_server_mode(argc, argv, "udp_async");
  async_loop *loop;
  BENCH_CHECK(async_loop_new(&loop));
  async_datagram_protocol p = ASYNC_DATAGRAM_PROTOCOL_INIT;
  p.datagram_received = echo ? on_echo : on_sink;
  p.connection_lost = on_lost;
  char local[32];
  snprintf(local, sizeof local, "127.0.0.1:%s", argv[1]);
  async_udp_options o = ASYNC_UDP_OPTIONS_INIT;
  o.local_address = local;
  o.receive_buffer_size = UDP_BENCH_RCVBUF;
  async_datagram *d;
  BENCH_CHECK(async_udp_open(&d, loop, &o, &p, NULL));
  async_signal *term, *intr;
  BENCH_CHECK(async_signal_new(&term, loop, loop));
  BENCH_CHECK(async_signal_new(&intr, loop, loop));
  BENCH_CHECK(async_signal_start(term, SIGTERM, on_signal));
  BENCH_CHECK(async_signal_start(intr, SIGINT, on_signal));
  udp_ready();
  BENCH_CHECK(async_loop_run(loop, ASYNC_RUN_DEFAULT));
  udp_count_print(&count);
  return 0;
}
