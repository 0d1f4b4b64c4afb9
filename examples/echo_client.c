/*
 * echo_client.c: connects to an echo server with async_tcp_connect (DNS in
 * the loop, Happy Eyeballs), sends each message given on the command line
 * as one line, prints each line that comes back, then closes.
 *
 *   ./echo_client HOST PORT MESSAGE...   e.g. against ./echo_server 7000:
 *                                         ./echo_client localhost 7000 hi there
 *   ./echo_client --self-test            runs its own echo server on the loop
 *
 * Every failed connection attempt is printed (address and reason), so
 * `./echo_client localhost 1 x` shows Happy Eyeballs trying ::1, then
 * 127.0.0.1.
 *
 * Build: cc echo_client.c $(pkg-config --cflags --libs libasync)
 */
#include <async.h>

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

struct client {
  int expected; /* lines still to come back */
  int status;   /* exit status */
};

static size_t on_data(async_stream *stream, const uint8_t *data, size_t len, void *userdata) {
  struct client *c = userdata;
  size_t used = 0;
  const uint8_t *nl;
  while ((nl = memchr(data + used, '\n', len - used)) != NULL) {
    size_t line = (size_t)(nl - (data + used)) + 1;
    printf("echo: %.*s", (int)line, (const char *)data + used);
    used += line;
    if (--c->expected == 0) async_stream_close(stream);
  }
  return used;
}

static void on_lost(async_stream *stream, int error, void *userdata) {
  (void)stream;
  struct client *c = userdata;
  if (error || c->expected) {
    fprintf(stderr, "connection lost: %s\n", error ? async_strerror(error) : "closed early");
    c->status = 1;
  }
}

static void on_attempt_failed(const struct sockaddr *addr, size_t len, int error, void *userdata) {
  (void)userdata;
  char text[ASYNC_ADDR_STRLEN];
  if (async_addr_format(text, sizeof text, addr, len, 0) < 0) strcpy(text, "?");
  fprintf(stderr, "attempt to %s failed: %s\n", text, async_strerror(error));
}

/* --self-test: an echo server on the same loop. */
static size_t echo(async_stream *stream, const uint8_t *data, size_t len, void *userdata) {
  (void)userdata;
  async_stream_write(stream, data, len);
  return len;
}

static void echo_lost(async_stream *stream, int error, void *userdata) {
  (void)stream;
  (void)error;
  (void)userdata;
}

static const async_stream_protocol echo_protocol = {
    sizeof(async_stream_protocol), NULL, echo, NULL, echo_lost, NULL, NULL, NULL, NULL, 0, NULL,
};

static int echo_factory(const async_stream_protocol **p, void **ud, async_server *server, void *userdata) {
  (void)server;
  (void)userdata;
  *p = &echo_protocol;
  *ud = NULL;
  return 0;
}

int main(int argc, char **argv) {
  int self_test = argc == 2 && strcmp(argv[1], "--self-test") == 0;
  if (!self_test && argc < 4) {
    fprintf(stderr, "usage: echo_client HOST PORT MESSAGE... | --self-test\n");
    return 2;
  }
  static char *self_messages[] = {"hello", "world"};
  char **messages = self_test ? self_messages : argv + 3;
  int count = self_test ? 2 : argc - 3;
  async_loop *loop;
  check(async_loop_new(&loop), "async_loop_new");

  const char *host = self_test ? "localhost" : argv[1];
  long port = self_test ? 0 : strtol(argv[2], NULL, 10);
  async_server *server = NULL;
  if (self_test) {
    check(async_tcp_listen(&server, loop, "localhost", 0, 0, 0, echo_factory, NULL), "listen");
    port = async_server_port(server);
  }
  if (port <= 0 || port > 65535) {
    fprintf(stderr, "bad port\n");
    return 2;
  }

  struct client client = {.expected = count};
  async_stream_protocol protocol = ASYNC_STREAM_PROTOCOL_INIT;
  protocol.data_received = on_data;
  protocol.connection_lost = on_lost;
  async_connect_options options = ASYNC_CONNECT_OPTIONS_INIT;
  options.attempt_failed = on_attempt_failed;
  options.total_timeout_ms = 10000;
  async_future *connecting;
  check(async_tcp_connect(&connecting, loop, host, (uint16_t)port, &options, &protocol, &client), "connect");
  int status = async_loop_run_until(loop, connecting);
  check(status, "connecting");
  void *stream;
  check(async_future_result(&stream, connecting), "result");
  for (int i = 0; i < count; i++) {
    check(async_stream_write(stream, messages[i], strlen(messages[i])), "write");
    check(async_stream_write(stream, "\n", 1), "write");
  }
  check(async_future_free(connecting), "async_future_free");
  if (server) {
    /* Run until the echoes are in, then stop serving. */
    while (client.expected > 0 && client.status == 0) check(async_loop_run(loop, ASYNC_RUN_ONCE), "run");
    check(async_server_close_connections(server, 0), "close connections");
    check(async_handle_close(async_server_handle(server), NULL), "close server");
  }
  check(async_loop_run(loop, ASYNC_RUN_DEFAULT), "async_loop_run");
  check(async_loop_free(loop), "async_loop_free");
  return client.status;
}
