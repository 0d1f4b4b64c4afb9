/*
 * reconnect_client.c: a client that stays connected (async_reconnector).
 * On every connection it sends "hello N" and prints what comes back; every
 * loss and every failed connect is printed with the delay before the next
 * try (backoff 100 ms doubling up to 5 s, +/- 10 %). Runs until SIGINT or
 * SIGTERM.
 *
 *   ./reconnect_client HOST PORT    e.g. against ./echo_server 7000:
 *                                   ./reconnect_client localhost 7000
 *                                   then stop and restart echo_server
 *   ./reconnect_client --self-test  drives its own echo server: drops the
 *                                   connection, stops listening, listens
 *                                   again on the same port, and checks that
 *                                   the client came back each time
 *
 * Build: cc reconnect_client.c $(pkg-config --cflags --libs libasync)
 */
#include <async.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check(int rc, const char *what) {
  if (rc < 0) {
    fprintf(stderr, "%s failed: %s (%s)\n", what, async_err_name(rc), async_strerror(rc));
    exit(1);
  }
}

struct client {
  async_reconnector *rc;
  async_signal *sigint, *sigterm;
  int connections; /* made so far */
  int echoes;      /* lines that came back */
  int failures;    /* failed connects reported */
  int done;        /* stopped and released */
};

static void on_made(async_stream *stream, void *userdata) {
  struct client *c = userdata;
  char line[32];
  int n = snprintf(line, sizeof line, "hello %d\n", ++c->connections);
  printf("connected (connection %d)\n", c->connections);
  check(async_stream_write(stream, line, (size_t)n), "async_stream_write");
}

static size_t on_data(async_stream *stream, const uint8_t *data, size_t len, void *userdata) {
  (void)stream;
  struct client *c = userdata;
  const uint8_t *nl = memchr(data, '\n', len);
  if (!nl) return 0; /* wait for the whole line */
  size_t line = (size_t)(nl - data) + 1;
  printf("echo: %.*s", (int)line, (const char *)data);
  c->echoes++;
  return line;
}

static void on_lost(async_stream *stream, int error, void *userdata) {
  (void)stream;
  (void)userdata;
  printf("connection lost: %s\n", error ? async_strerror(error) : "closed");
}

static void on_connect_failed(async_reconnector *rc, int error, uint32_t failures, uint64_t retry_ms, void *userdata) {
  (void)rc;
  struct client *c = userdata;
  c->failures++;
  printf("connect failed (%u in a row): %s; retrying in %llu ms\n", failures, async_strerror(error),
         (unsigned long long)retry_ms);
}

static void on_stopped(async_reconnector *rc, int error, void *userdata) {
  (void)rc;
  (void)userdata;
  printf("stopped%s%s\n", error ? ": " : "", error ? async_strerror(error) : "");
}

static void on_release(void *userdata) { ((struct client *)userdata)->done = 1; }

static const async_stream_protocol k_client = {
    sizeof(async_stream_protocol), on_made, on_data, NULL, on_lost, NULL, NULL, NULL, on_release, 0, NULL,
};

static void start_client(struct client *c, async_loop *loop, const char *host, uint16_t port) {
  async_reconnect_options options = ASYNC_RECONNECT_OPTIONS_INIT;
  options.max_delay_ms = 5000;
  options.connect_failed = on_connect_failed;
  options.stopped = on_stopped;
  check(async_reconnector_start(&c->rc, loop, host, port, &options, &k_client, c), "async_reconnector_start");
}

static void on_signal(async_signal *signal, int signum, void *userdata) {
  (void)signal;
  (void)signum;
  struct client *c = userdata;
  check(async_reconnector_stop(c->rc), "async_reconnector_stop");
  check(async_handle_close(async_signal_handle(c->sigint), NULL), "close SIGINT");
  check(async_handle_close(async_signal_handle(c->sigterm), NULL), "close SIGTERM");
}

/* ---- --self-test: an echo server on the same loop ------------------------- */

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

static int echo_factory(const async_stream_protocol **protocol, void **userdata, async_server *server, void *arg) {
  static const async_stream_protocol echo = {
      sizeof(async_stream_protocol), NULL, echo_data, NULL, echo_lost, NULL, NULL, NULL, NULL, 0, NULL,
  };
  (void)server;
  (void)arg;
  *protocol = &echo;
  *userdata = NULL;
  return 0;
}

static async_server *listen_echo(async_loop *loop, uint16_t port) {
  async_server *server = NULL;
  check(async_tcp_listen(&server, loop, "127.0.0.1", port, 0, 0, echo_factory, NULL), "async_tcp_listen");
  return server;
}

/* Runs the loop until *value reaches want; 0 if 5 s passed first. */
static int run_until(async_loop *loop, const int *value, int want) {
  uint64_t start, now;
  async_loop_now(&start, loop);
  do {
    async_loop_run(loop, ASYNC_RUN_ONCE);
    async_loop_now(&now, loop);
  } while (*value < want && now - start < 5000);
  return *value >= want;
}

static int self_test(void) {
  async_loop *loop = NULL;
  check(async_loop_new(&loop), "async_loop_new");
  async_server *server = listen_echo(loop, 0);
  uint16_t port = (uint16_t)async_server_port(server);
  struct client c = {0};
  start_client(&c, loop, "127.0.0.1", port);
  int ok = run_until(loop, &c.echoes, 1);
  /* The server drops the connection: the client comes back by itself. */
  check(async_server_close_connections(server, 0), "async_server_close_connections");
  ok = ok && run_until(loop, &c.echoes, 2);
  /* The server goes away: refused connects, with growing delays... */
  check(async_server_close_connections(server, 1), "async_server_close_connections");
  check(async_handle_close(async_server_handle(server), NULL), "async_handle_close");
  ok = ok && run_until(loop, &c.failures, 2);
  /* ...until it listens again on the same port. */
  server = listen_echo(loop, port);
  ok = ok && run_until(loop, &c.echoes, 3);
  check(async_reconnector_stop(c.rc), "async_reconnector_stop");
  ok = ok && run_until(loop, &c.done, 1);
  check(async_handle_close(async_server_handle(server), NULL), "async_handle_close");
  check(async_loop_run(loop, ASYNC_RUN_DEFAULT), "async_loop_run");
  check(async_loop_free(loop), "async_loop_free");
  printf("self-test %s: %d connections, %d echoes, %d failed connects\n", ok ? "passed" : "FAILED", c.connections,
         c.echoes, c.failures);
  return ok ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "--self-test") == 0) return self_test();
  if (argc != 3) {
    fprintf(stderr, "usage: %s HOST PORT | --self-test\n", argv[0]);
    return 2;
  }
  long port = strtol(argv[2], NULL, 10);
  if (port <= 0 || port > 65535) {
    fprintf(stderr, "bad port: %s\n", argv[2]);
    return 2;
  }
  async_loop *loop = NULL;
  check(async_loop_new(&loop), "async_loop_new");
  struct client c = {0};
  start_client(&c, loop, argv[1], (uint16_t)port);
  check(async_signal_new(&c.sigint, loop, &c), "async_signal_new");
  check(async_signal_new(&c.sigterm, loop, &c), "async_signal_new");
  check(async_signal_start(c.sigint, SIGINT, on_signal), "SIGINT");
  check(async_signal_start(c.sigterm, SIGTERM, on_signal), "SIGTERM");
  check(async_loop_run(loop, ASYNC_RUN_DEFAULT), "async_loop_run");
  check(async_loop_free(loop), "async_loop_free");
  return 0;
}
