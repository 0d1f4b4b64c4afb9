/*
 * http_hello.c: a minimal HTTP/1.1 server answering "Hello, world!\n" to
 * every request, with keep-alive and pipelining, on 127.0.0.1:PORT until
 * SIGINT/SIGTERM. Load it with wrk:  wrk -t2 -c100 -d10s http://127.0.0.1:PORT/
 *
 * It shows consumed-bytes reads: data_received parses as many complete
 * requests as the bytes hold and returns how much it used; a request split
 * across reads simply stays unconsumed and comes back, completed, with the
 * next read. No per-connection buffer or state is needed.
 *
 *   ./http_hello PORT          serve until Ctrl-C (or kill -TERM)
 *   ./http_hello --self-test   serve on a free port, send two pipelined
 *                              requests from a client on the same loop,
 *                              check both answers, then exit
 *
 * Build: cc http_hello.c $(pkg-config --cflags --libs libasync)
 */
#define _GNU_SOURCE /* memmem */
#include <async.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_REQUEST 8192 /* a request head larger than this ends the connection */

static const char k_response[] =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 14\r\n"
    "\r\n"
    "Hello, world!\n";

static void check(int rc, const char *what) {
  if (rc < 0) {
    fprintf(stderr, "%s failed: %s (%s)\n", what, async_err_name(rc), async_strerror(rc));
    exit(1);
  }
}

/* 1 if the request head (up to its blank line) asks to close the connection. */
static int wants_close(const char *head, size_t len) {
  return memmem(head, len, "\r\nConnection: close\r\n", 21) != NULL ||
         memmem(head, len, "\r\nconnection: close\r\n", 21) != NULL;
}

/* Answers every complete request head in data (bodies are not expected:
 * GET/HEAD only) and returns the bytes used. */
static size_t http_data(async_stream *stream, const uint8_t *data, size_t len, void *userdata) {
  (void)userdata;
  size_t used = 0;
  for (;;) {
    const char *head = (const char *)data + used;
    const char *end = memmem(head, len - used, "\r\n\r\n", 4);
    if (!end) break; /* incomplete: keep it for the next read */
    size_t head_len = (size_t)(end - head) + 4;
    async_stream_write(stream, k_response, sizeof k_response - 1);
    used += head_len;
    if (wants_close(head, head_len)) {
      async_stream_close(stream);
      return len;
    }
  }
  if (len - used > MAX_REQUEST) async_stream_abort(stream);
  return used;
}

static void http_lost(async_stream *stream, int error, void *userdata) {
  (void)stream;
  (void)error;
  (void)userdata;
}

static const async_stream_protocol http_protocol = {
    sizeof(async_stream_protocol), NULL, http_data, NULL, http_lost, NULL, NULL, NULL, NULL, 0, NULL,
};

static int http_factory(const async_stream_protocol **protocol, void **userdata, async_server *server,
                        void *factory_userdata) {
  (void)server;
  (void)factory_userdata;
  *protocol = &http_protocol;
  *userdata = NULL;
  return 0;
}

/* ---- shutdown ---- */

struct app {
  async_server *server;
  async_signal *sigint;
  async_signal *sigterm;
};

static void shut_down(struct app *app) {
  check(async_server_close_connections(app->server, 1), "close connections");
  check(async_handle_close(async_server_handle(app->server), NULL), "close server");
  check(async_handle_close(async_signal_handle(app->sigint), NULL), "close SIGINT");
  check(async_handle_close(async_signal_handle(app->sigterm), NULL), "close SIGTERM");
}

static void on_signal(async_signal *sig, int signum, void *userdata) {
  (void)sig;
  (void)signum;
  shut_down(userdata);
}

/* ---- --self-test client ---- */

struct client {
  struct app *app;
  char got[1024];
  size_t len;
};

static size_t client_data(async_stream *stream, const uint8_t *data, size_t len, void *userdata) {
  struct client *c = userdata;
  size_t n = len < sizeof c->got - c->len ? len : sizeof c->got - c->len;
  memcpy(c->got + c->len, data, n);
  c->len += n;
  if (c->len >= 2 * (sizeof k_response - 1)) async_stream_close(stream);
  return len;
}

static void client_lost(async_stream *stream, int error, void *userdata) {
  (void)stream;
  struct client *c = userdata;
  check(error, "client connection");
  int ok = c->len == 2 * (sizeof k_response - 1) && memcmp(c->got, k_response, sizeof k_response - 1) == 0;
  printf("self-test: %s\n", ok ? "two pipelined requests answered" : "unexpected answer");
  if (!ok) exit(1);
  shut_down(c->app);
}

static void start_client(async_loop *loop, struct client *c, int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
    perror("connect");
    exit(1);
  }
  static async_stream_protocol client = ASYNC_STREAM_PROTOCOL_INIT;
  client.data_received = client_data;
  client.connection_lost = client_lost;
  async_stream *stream;
  check(async_stream_adopt(&stream, loop, fd, &client, c), "async_stream_adopt");
  /* Two pipelined requests in one write. */
  const char *req = "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /again HTTP/1.1\r\nHost: x\r\n\r\n";
  check(async_stream_write(stream, req, strlen(req)), "async_stream_write");
}

int main(int argc, char **argv) {
  int self_test = argc == 2 && strcmp(argv[1], "--self-test") == 0;
  long port = self_test ? 0 : (argc == 2 ? strtol(argv[1], NULL, 10) : -1);
  if (port < 0 || port > 65535) {
    fprintf(stderr, "usage: http_hello PORT | --self-test\n");
    return 2;
  }
  async_loop *loop;
  check(async_loop_new(&loop), "async_loop_new");
  struct app app;
  check(async_tcp_listen(&app.server, loop, "127.0.0.1", (uint16_t)port, 1024, 0, http_factory, NULL), "listen");
  check(async_signal_new(&app.sigint, loop, &app), "async_signal_new");
  check(async_signal_new(&app.sigterm, loop, &app), "async_signal_new");
  check(async_signal_start(app.sigint, SIGINT, on_signal), "SIGINT");
  check(async_signal_start(app.sigterm, SIGTERM, on_signal), "SIGTERM");
  printf("http_hello on http://127.0.0.1:%d/\n", async_server_port(app.server));
  fflush(stdout);
  struct client client = {.app = &app};
  if (self_test) start_client(loop, &client, async_server_port(app.server));
  check(async_loop_run(loop, ASYNC_RUN_DEFAULT), "async_loop_run");
  check(async_loop_free(loop), "async_loop_free");
  return 0;
}
