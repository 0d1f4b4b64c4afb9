/*
 * echo_server.c: a TCP echo server on 127.0.0.1:PORT, until SIGINT/SIGTERM.
 *
 * Every accepted connection gets the echo protocol: whatever arrives is
 * written back (send-at-once; only what the socket does not take is
 * buffered) and consumed. If a peer reads slower than it sends, the write
 * buffer passes its high-water mark and the connection stops reading until
 * it drains: flow control both ways, with no extra code here.
 *
 *   ./echo_server PORT         serve until Ctrl-C (or kill -TERM)
 *   ./echo_server --self-test  serve on a free port, echo one message to a
 *                              client inside the same loop, then SIGTERM
 *
 * Build: cc echo_server.c $(pkg-config --cflags --libs libasync)
 */
#include <async.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void check(int rc, const char *what) {
  if (rc < 0) {
    fprintf(stderr, "%s failed: %s (%s)\n", what, async_err_name(rc), async_strerror(rc));
    exit(1);
  }
}

/* ---- the echo protocol (no per-connection state: userdata unused) ---- */

static size_t echo_data(async_stream *stream, const uint8_t *data, size_t len, void *userdata) {
  (void)userdata;
  async_stream_write(stream, data, len); /* a failure ends the stream through connection_lost */
  return len;
}

static void echo_pause(async_stream *stream, void *userdata) {
  (void)userdata;
  async_stream_pause_reading(stream); /* the peer is not reading: stop taking more */
}

static void echo_resume(async_stream *stream, void *userdata) {
  (void)userdata;
  async_stream_resume_reading(stream);
}

static void echo_lost(async_stream *stream, int error, void *userdata) {
  (void)stream;
  (void)userdata;
  if (error) fprintf(stderr, "connection lost: %s\n", async_strerror(error));
}

static const async_stream_protocol echo_protocol = {
    sizeof(async_stream_protocol), NULL, echo_data, NULL, echo_lost, echo_pause, echo_resume, NULL, NULL, 0, NULL,
};

static int echo_factory(const async_stream_protocol **out_protocol, void **out_userdata, async_server *server,
                        void *userdata) {
  (void)server;
  (void)userdata;
  *out_protocol = &echo_protocol;
  *out_userdata = NULL;
  return 0;
}

/* ---- shutdown on SIGINT / SIGTERM ---- */

struct app {
  async_server *server;
  async_signal *sigint;
  async_signal *sigterm;
};

static void on_signal(async_signal *sig, int signum, void *userdata) {
  (void)sig;
  struct app *app = userdata;
  printf("signal %d: shutting down\n", signum);
  /* Connections first (while the server can still list them), then the rest. */
  check(async_server_close_connections(app->server, 0), "async_server_close_connections");
  check(async_handle_close(async_server_handle(app->server), NULL), "close server");
  check(async_handle_close(async_signal_handle(app->sigint), NULL), "close SIGINT");
  check(async_handle_close(async_signal_handle(app->sigterm), NULL), "close SIGTERM");
}

/* ---- --self-test: a client on the same loop ---- */

static size_t client_data(async_stream *stream, const uint8_t *data, size_t len, void *userdata) {
  (void)userdata;
  const uint8_t *nl = memchr(data, '\n', len);
  if (!nl) return 0; /* wait for the whole line */
  printf("client got back: %.*s", (int)(nl - data + 1), (const char *)data);
  async_stream_close(stream);
  raise(SIGTERM);
  return (size_t)(nl - data + 1);
}

static void client_lost(async_stream *stream, int error, void *userdata) {
  (void)stream;
  (void)userdata;
  check(error, "client connection");
}

static void start_client(async_loop *loop, int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  /* Completes at once on loopback (the kernel queues it for accept). */
  if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
    perror("connect");
    exit(1);
  }
  static async_stream_protocol client = ASYNC_STREAM_PROTOCOL_INIT;
  client.data_received = client_data;
  client.connection_lost = client_lost;
  async_stream *stream;
  check(async_stream_adopt(&stream, loop, fd, &client, NULL), "async_stream_adopt");
  check(async_stream_write(stream, "hello, echo\n", 12), "async_stream_write");
}

int main(int argc, char **argv) {
  int self_test = argc == 2 && strcmp(argv[1], "--self-test") == 0;
  long port = self_test ? 0 : (argc == 2 ? strtol(argv[1], NULL, 10) : -1);
  if (port < 0 || port > 65535) {
    fprintf(stderr, "usage: echo_server PORT | --self-test\n");
    return 2;
  }
  async_loop *loop;
  check(async_loop_new(&loop), "async_loop_new");
  struct app app;
  check(async_tcp_listen(&app.server, loop, "127.0.0.1", (uint16_t)port, 0, 0, echo_factory, NULL), "listen");
  check(async_signal_new(&app.sigint, loop, &app), "async_signal_new");
  check(async_signal_new(&app.sigterm, loop, &app), "async_signal_new");
  check(async_signal_start(app.sigint, SIGINT, on_signal), "SIGINT");
  check(async_signal_start(app.sigterm, SIGTERM, on_signal), "SIGTERM");
  printf("echo server on 127.0.0.1:%d\n", async_server_port(app.server));
  fflush(stdout);
  if (self_test) start_client(loop, async_server_port(app.server));
  check(async_loop_run(loop, ASYNC_RUN_DEFAULT), "async_loop_run");
  check(async_loop_free(loop), "async_loop_free");
  return 0;
}
