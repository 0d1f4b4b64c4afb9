/*
 * udp_echo.c: a UDP echo server on 127.0.0.1:PORT, until SIGINT/SIGTERM.
 *
 * Every datagram is sent back to its sender as it is (empty ones too).
 * Sends go out at once; what the socket refuses is queued, and while the
 * queue is over its high-water mark the server stops reading, so a flood
 * waits in the kernel (which drops what does not fit, as UDP does) instead
 * of in memory. Errors that do not end the endpoint (an ICMP error, a
 * datagram too large) arrive through error_received and are printed.
 *
 *   ./udp_echo PORT         serve until Ctrl-C (or kill -TERM);
 *                           try: echo hi | socat - UDP:127.0.0.1:PORT
 *   ./udp_echo --self-test  serve on a free port, echo one datagram to a
 *                           client endpoint inside the same loop, then
 *                           SIGTERM
 *
 * Build: cc udp_echo.c $(pkg-config --cflags --libs libasync)
 */
#include <async.h>

#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static void check(int rc, const char *what) {
  if (rc < 0) {
    fprintf(stderr, "%s failed: %s (%s)\n", what, async_err_name(rc), async_strerror(rc));
    exit(1);
  }
}

/* ---- the echo protocol ---- */

static void echo_received(async_datagram *dgram, const uint8_t *data, size_t len, const struct sockaddr *addr,
                          size_t addrlen, void *userdata) {
  (void)userdata;
  if (!addr) return; /* nobody to answer */
  int rc = async_datagram_send(dgram, data, len, addr, addrlen);
  if (rc < 0) fprintf(stderr, "echo dropped: %s\n", async_strerror(rc));
}

static void echo_error(async_datagram *dgram, int error, void *userdata) {
  (void)dgram;
  (void)userdata;
  fprintf(stderr, "udp error: %s\n", async_strerror(error));
}

static void echo_pause(async_datagram *dgram, void *userdata) {
  (void)userdata;
  async_datagram_pause_reading(dgram); /* the send queue is full: take no more */
}

static void echo_resume(async_datagram *dgram, void *userdata) {
  (void)userdata;
  async_datagram_resume_reading(dgram);
}

static void echo_lost(async_datagram *dgram, int error, void *userdata) {
  (void)dgram;
  (void)userdata;
  if (error) fprintf(stderr, "endpoint lost: %s\n", async_strerror(error));
}

static const async_datagram_protocol echo_protocol = {
    sizeof(async_datagram_protocol), NULL, echo_received, echo_error, echo_lost, echo_pause, echo_resume, NULL,
};

/* ---- shutdown on SIGINT / SIGTERM ---- */

struct app {
  async_datagram *server;
  async_signal *sigint;
  async_signal *sigterm;
};

static void on_signal(async_signal *sig, int signum, void *userdata) {
  (void)sig;
  struct app *app = userdata;
  printf("signal %d: shutting down\n", signum);
  check(async_datagram_close(app->server), "close endpoint"); /* flushes what is queued */
  check(async_handle_close(async_signal_handle(app->sigint), NULL), "close SIGINT");
  check(async_handle_close(async_signal_handle(app->sigterm), NULL), "close SIGTERM");
}

/* ---- --self-test: a client endpoint on the same loop ---- */

static void client_received(async_datagram *dgram, const uint8_t *data, size_t len, const struct sockaddr *addr,
                            size_t addrlen, void *userdata) {
  (void)addr;
  (void)addrlen;
  (void)userdata;
  printf("client got back: %.*s\n", (int)len, (const char *)data);
  async_datagram_close(dgram);
  raise(SIGTERM);
}

static void client_lost(async_datagram *dgram, int error, void *userdata) {
  (void)dgram;
  (void)userdata;
  check(error, "client endpoint");
}

static void start_client(async_loop *loop, async_datagram *server) {
  char server_addr[ASYNC_ADDR_STRLEN];
  struct sockaddr_storage ss;
  int len = async_datagram_sockname((struct sockaddr *)&ss, sizeof ss, server);
  check(len, "async_datagram_sockname");
  check(async_addr_format(server_addr, sizeof server_addr, (struct sockaddr *)&ss, (size_t)len, 0), "format");
  static async_datagram_protocol client = ASYNC_DATAGRAM_PROTOCOL_INIT;
  client.datagram_received = client_received;
  client.error_received = echo_error;
  client.connection_lost = client_lost;
  async_udp_options options = ASYNC_UDP_OPTIONS_INIT;
  options.remote_address = server_addr; /* connected: sends need no address */
  async_datagram *dgram;
  check(async_udp_open(&dgram, loop, &options, &client, NULL), "async_udp_open (client)");
  check(async_datagram_send(dgram, "hello, udp echo", 15, NULL, 0), "async_datagram_send");
}

int main(int argc, char **argv) {
  int self_test = argc == 2 && strcmp(argv[1], "--self-test") == 0;
  long port = self_test ? 0 : (argc == 2 ? strtol(argv[1], NULL, 10) : -1);
  if (port < 0 || port > 65535) {
    fprintf(stderr, "usage: udp_echo PORT | --self-test\n");
    return 2;
  }
  async_loop *loop;
  check(async_loop_new(&loop), "async_loop_new");
  struct app app;
  char local[32];
  snprintf(local, sizeof local, "127.0.0.1:%ld", port);
  async_udp_options options = ASYNC_UDP_OPTIONS_INIT;
  options.local_address = local;
  check(async_udp_open(&app.server, loop, &options, &echo_protocol, NULL), "async_udp_open");
  check(async_signal_new(&app.sigint, loop, &app), "async_signal_new");
  check(async_signal_new(&app.sigterm, loop, &app), "async_signal_new");
  check(async_signal_start(app.sigint, SIGINT, on_signal), "SIGINT");
  check(async_signal_start(app.sigterm, SIGTERM, on_signal), "SIGTERM");
  struct sockaddr_storage bound;
  int len = async_datagram_sockname((struct sockaddr *)&bound, sizeof bound, app.server);
  check(len, "async_datagram_sockname");
  printf("udp echo on 127.0.0.1:%d\n", async_addr_port((struct sockaddr *)&bound, (size_t)len));
  fflush(stdout);
  if (self_test) start_client(loop, app.server);
  check(async_loop_run(loop, ASYNC_RUN_DEFAULT), "async_loop_run");
  check(async_loop_free(loop), "async_loop_free");
  return 0;
}
