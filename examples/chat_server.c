/*
 * chat_server.c: a line-based chat on 127.0.0.1:PORT. Every line a client
 * sends goes to every other client, prefixed with its sender's number.
 * Try it with a few terminals running `socat - TCP:127.0.0.1:PORT`.
 *
 * It shows per-connection state (a struct made by the factory, freed by the
 * protocol's release callback: the final notification for its userdata),
 * line framing with consumed-bytes reads (a partial line stays in the
 * stream until its newline arrives), and a slow reader: a client whose
 * write buffer passes the high-water mark is dropped instead of letting
 * the server buffer without bound.
 *
 *   ./chat_server PORT          serve until Ctrl-C (or kill -TERM)
 *   ./chat_server --self-test   two clients on the same loop exchange a line
 *
 * Build: cc chat_server.c $(pkg-config --cflags --libs libasync)
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

#define MAX_LINE 1024

static void check(int rc, const char *what) {
  if (rc < 0) {
    fprintf(stderr, "%s failed: %s (%s)\n", what, async_err_name(rc), async_strerror(rc));
    exit(1);
  }
}

struct client {
  struct client *next;
  struct client **prev; /* the pointer that points at us */
  async_stream *stream;
  int id;
};

static struct client *g_clients;
static int g_next_id = 1;

static void broadcast(struct client *from, const char *line, size_t len) {
  char prefix[32];
  int n = snprintf(prefix, sizeof prefix, "[%d] ", from->id);
  for (struct client *c = g_clients; c; c = c->next) {
    if (c == from || !c->stream) continue; /* not welcomed yet */
    struct iovec iov[2] = {{prefix, (size_t)n}, {(void *)line, len}};
    async_stream_writev(c->stream, iov, 2);
  }
}

/* The factory cannot see the stream; connection_made brings it. */
static void chat_made(async_stream *stream, void *userdata) {
  struct client *c = userdata;
  c->stream = stream;
  char hello[64];
  int n = snprintf(hello, sizeof hello, "welcome, you are [%d]\n", c->id);
  async_stream_write(stream, hello, (size_t)n);
}

static size_t chat_data(async_stream *stream, const uint8_t *data, size_t len, void *userdata) {
  struct client *c = userdata;
  size_t used = 0;
  const uint8_t *nl;
  while ((nl = memchr(data + used, '\n', len - used)) != NULL) {
    size_t line = (size_t)(nl - (data + used)) + 1;
    broadcast(c, (const char *)data + used, line);
    used += line;
  }
  if (len - used > MAX_LINE) async_stream_abort(stream); /* a line too long: drop the client */
  return used;
}

static void chat_slow(async_stream *stream, void *userdata) {
  (void)userdata;
  async_stream_abort(stream); /* not reading what the others say */
}

static void chat_lost(async_stream *stream, int error, void *userdata) {
  (void)stream;
  struct client *c = userdata;
  if (error) fprintf(stderr, "[%d] lost: %s\n", c->id, async_strerror(error));
}

static void chat_release(void *userdata) {
  struct client *c = userdata;
  *c->prev = c->next;
  if (c->next) c->next->prev = c->prev;
  free(c);
}

static const async_stream_protocol chat_protocol = {
    sizeof(async_stream_protocol), chat_made, chat_data, NULL, chat_lost, chat_slow, NULL, NULL, chat_release, 0, NULL,
};

static int chat_factory(const async_stream_protocol **protocol, void **userdata, async_server *server,
                        void *factory_userdata) {
  (void)server;
  (void)factory_userdata;
  struct client *c = calloc(1, sizeof *c);
  if (!c) return -1;
  c->id = g_next_id++;
  c->next = g_clients;
  c->prev = &g_clients;
  if (g_clients) g_clients->prev = &c->next;
  g_clients = c;
  *protocol = &chat_protocol;
  *userdata = c;
  return 0;
}

/* ---- shutdown ---- */

struct app {
  async_server *server;
  async_signal *sigint;
  async_signal *sigterm;
};

static void shut_down(struct app *app) {
  check(async_server_close_connections(app->server, 0), "close connections");
  check(async_handle_close(async_server_handle(app->server), NULL), "close server");
  check(async_handle_close(async_signal_handle(app->sigint), NULL), "close SIGINT");
  check(async_handle_close(async_signal_handle(app->sigterm), NULL), "close SIGTERM");
}

static void on_signal(async_signal *sig, int signum, void *userdata) {
  (void)sig;
  (void)signum;
  shut_down(userdata);
}

/* ---- --self-test: client 1 says hello, client 2 must hear it ---- */

struct tester {
  struct app *app;
  async_stream *speaker;
  int welcomed;
  int heard;
};

static size_t tester_data(async_stream *stream, const uint8_t *data, size_t len, void *userdata) {
  struct tester *t = userdata;
  const uint8_t *nl = memchr(data, '\n', len);
  if (!nl) return 0;
  size_t line = (size_t)(nl - data) + 1;
  if (strncmp((const char *)data, "welcome", 7) == 0) {
    /* Both welcomed: both are registered with the server; speak. */
    if (++t->welcomed == 2) check(async_stream_write(t->speaker, "hello, chat\n", 12), "write");
  } else if (stream != t->speaker) {
    printf("listener heard: %.*s", (int)line, (const char *)data);
    t->heard = strncmp((const char *)data, "[1] hello, chat\n", line) == 0;
    shut_down(t->app);
  }
  return line;
}

static void tester_lost(async_stream *stream, int error, void *userdata) {
  (void)stream;
  (void)error;
  (void)userdata;
}

static async_stream *connect_tester(async_loop *loop, int port, struct tester *t) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
    perror("connect");
    exit(1);
  }
  static async_stream_protocol p = ASYNC_STREAM_PROTOCOL_INIT;
  p.data_received = tester_data;
  p.connection_lost = tester_lost;
  async_stream *stream;
  check(async_stream_adopt(&stream, loop, fd, &p, t), "async_stream_adopt");
  return stream;
}

int main(int argc, char **argv) {
  int self_test = argc == 2 && strcmp(argv[1], "--self-test") == 0;
  long port = self_test ? 0 : (argc == 2 ? strtol(argv[1], NULL, 10) : -1);
  if (port < 0 || port > 65535) {
    fprintf(stderr, "usage: chat_server PORT | --self-test\n");
    return 2;
  }
  async_loop *loop;
  check(async_loop_new(&loop), "async_loop_new");
  struct app app;
  check(async_tcp_listen(&app.server, loop, "127.0.0.1", (uint16_t)port, 0, 0, chat_factory, NULL), "listen");
  check(async_signal_new(&app.sigint, loop, &app), "async_signal_new");
  check(async_signal_new(&app.sigterm, loop, &app), "async_signal_new");
  check(async_signal_start(app.sigint, SIGINT, on_signal), "SIGINT");
  check(async_signal_start(app.sigterm, SIGTERM, on_signal), "SIGTERM");
  printf("chat on 127.0.0.1:%d\n", async_server_port(app.server));
  fflush(stdout);
  struct tester t = {.app = &app};
  if (self_test) {
    t.speaker = connect_tester(loop, async_server_port(app.server), &t);
    async_stream *listener = connect_tester(loop, async_server_port(app.server), &t);
    (void)listener; /* closed by the server's shutdown (EOF ends it) */
  }
  check(async_loop_run(loop, ASYNC_RUN_DEFAULT), "async_loop_run");
  check(async_loop_free(loop), "async_loop_free");
  if (self_test && !t.heard) {
    fprintf(stderr, "self-test: the line did not arrive\n");
    return 1;
  }
  return 0;
}
