/*
 * https_socks.c: an HTTPS GET through a SOCKS5 proxy, as a stack of layers
 * on one TCP connection:
 *
 *     client:  TCP (to the proxy) / SOCKS5 / TLS / HTTP
 *
 * The program also runs, on the same loop, the two servers it talks to:
 * a small SOCKS5 proxy (no authentication, CONNECT only) and an HTTPS
 * server (async_server_set_tls: each connection's handshake is done before
 * its HTTP protocol starts). The client pushes each layer from the
 * connection_made of the stream below it, and the HTTP code on both ends
 * sees an ordinary async_stream.
 *
 *   ./https_socks tests/tls_certs.sh
 *
 * makes a CA and a server certificate for localhost in a temporary
 * directory with that script (the openssl command), makes one request,
 * checks the answer, and exits 0.
 *
 * Build: cc https_socks.c $(pkg-config --cflags --libs libasync)
 */
#define _GNU_SOURCE /* memmem, mkdtemp */
#include <async.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char k_body[] = "hello through SOCKS5 and TLS\n";

static void check(int rc, const char *what) {
  if (rc < 0) {
    fprintf(stderr, "%s failed: %s (%s)\n", what, async_err_name(rc), async_strerror(rc));
    exit(1);
  }
}

static size_t ignore_data(async_stream *s, const uint8_t *d, size_t n, void *ud) {
  (void)s, (void)d, (void)n, (void)ud;
  return 0; /* a protocol that is replaced in connection_made never reads */
}

static void ignore_lost(async_stream *s, int err, void *ud) { (void)s, (void)err, (void)ud; }

/* ---- the HTTPS server: TCP / TLS / HTTP ---------------------------------------- */

/* Answers the first complete request head, then closes (close_notify, then TCP). */
static size_t http_server_data(async_stream *stream, const uint8_t *data, size_t len, void *ud) {
  (void)ud;
  if (!memmem(data, len, "\r\n\r\n", 4)) return 0; /* incomplete: it comes again, longer */
  char response[256];
  int n = snprintf(response, sizeof response, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                   sizeof k_body - 1, k_body);
  async_stream_write(stream, response, (size_t)n);
  async_stream_close(stream);
  return len;
}

static const async_stream_protocol http_server = {
    sizeof(async_stream_protocol), NULL, http_server_data, NULL, ignore_lost, NULL, NULL, NULL, NULL, 0, NULL,
};

/* Each connection speaks HTTP above TLS: the server (async_server_set_tls)
 * finishes the handshake before the factory and connection_made. */
static int https_factory(const async_stream_protocol **p, void **ud, async_server *server, void *userdata) {
  (void)server, (void)userdata;
  *p = &http_server;
  *ud = NULL;
  return 0;
}

/* ---- the SOCKS5 proxy (RFC 1928: no authentication, CONNECT to a name) --------- */

/* One client of the proxy, and its connection to the target once made. */
struct relay {
  async_stream *client, *target;
  int greeted;    /* the method reply went out */
  int connecting; /* the target's connect is under way */
};

static void relay_free_if_done(struct relay *r) {
  if (!r->client && !r->target && !r->connecting) free(r);
}

/* Bytes from one side go to the other. */
static size_t relay_data(async_stream *from, const uint8_t *data, size_t len, void *ud) {
  struct relay *r = ud;
  async_stream_write(from == r->client ? r->target : r->client, data, len);
  return len;
}

/* Either side ending closes the other once what it was sent went out. */
static void relay_lost(async_stream *from, int error, void *ud) {
  (void)error;
  struct relay *r = ud;
  async_stream *other = from == r->client ? r->target : r->client;
  if (other) async_stream_close(other);
  if (from == r->client) r->client = NULL;
  if (from == r->target) r->target = NULL;
  relay_free_if_done(r);
}

/* Flow control: while one side's write buffer is full, the other side is not read. */
static void relay_pause(async_stream *full, void *ud) {
  struct relay *r = ud;
  async_stream *other = full == r->client ? r->target : r->client;
  if (other) async_stream_pause_reading(other);
}

static void relay_resume(async_stream *drained, void *ud) {
  struct relay *r = ud;
  async_stream *other = drained == r->client ? r->target : r->client;
  if (other) async_stream_resume_reading(other);
}

static const async_stream_protocol relay_protocol = {
    sizeof(async_stream_protocol), NULL, relay_data, NULL, relay_lost, relay_pause, relay_resume, NULL, NULL, 0, NULL,
};

/* The target's connect is done: the reply, then the client relays. */
static void proxy_connected(async_future *f, int err, void *ud) {
  struct relay *r = ud;
  void *target = NULL;
  async_future_result(&target, f);
  async_future_free(f); /* the target stream stays valid while it is open */
  r->connecting = 0;
  if (!err) r->target = target;
  if (!r->client) { /* the client left meanwhile */
    if (r->target) async_stream_close(r->target);
    relay_free_if_done(r);
    return;
  }
  /* VER REP RSV ATYP=IPv4 BND.ADDR BND.PORT (clients do not use the bound address) */
  uint8_t reply[10] = {5, err ? 5 /* connection refused */ : 0, 0, 1};
  async_stream_write(r->client, reply, sizeof reply);
  if (err) {
    async_stream_close(r->client);
    return;
  }
  check(async_stream_set_protocol(r->client, &relay_protocol, r), "relay");
  check(async_stream_resume_reading(r->client), "resume");
}

static void proxy_made(async_stream *client, void *ud) {
  struct relay *r = ud;
  r->client = client;
}

/* The greeting (VER NMETHODS METHODS), then the request (VER CMD RSV ATYP=3 LEN NAME PORT). */
static size_t proxy_handshake(async_stream *client, const uint8_t *d, size_t n, void *ud) {
  struct relay *r = ud;
  if (!r->greeted) {
    if (n < 2 || n < 2u + d[1]) return 0; /* incomplete: it comes again, longer */
    r->greeted = 1;
    async_stream_write(client, "\x05\x00", 2); /* no authentication */
    return 2u + d[1];
  }
  if (n < 5 || n < 7u + d[4]) return 0;
  if (d[0] != 5 || d[1] != 1 || d[3] != 3) { /* only CONNECT to a name here */
    async_stream_abort(client);
    return n;
  }
  char host[256];
  memcpy(host, d + 5, d[4]);
  host[d[4]] = '\0';
  uint16_t port = (uint16_t)(d[5 + d[4]] << 8 | d[6 + d[4]]);
  async_future *connect;
  check(async_tcp_connect(&connect, async_stream_loop(client), host, port, NULL, &relay_protocol, r), "connect");
  check(async_future_add_callback(connect, proxy_connected, r), "connect callback");
  r->connecting = 1;
  async_stream_pause_reading(client); /* until the target is there */
  return 7u + d[4];
}

static const async_stream_protocol proxy_protocol = {
    sizeof(async_stream_protocol), proxy_made, proxy_handshake, NULL, relay_lost, NULL, NULL, NULL, NULL, 0, NULL,
};

static int proxy_factory(const async_stream_protocol **p, void **ud, async_server *server, void *unused) {
  (void)unused;
  struct relay *r = calloc(1, sizeof *r);
  if (!r) return ASYNC_ENOMEM;
  *p = &proxy_protocol;
  *ud = r;
  (void)server;
  return 0;
}

/* ---- the client: TCP / SOCKS5 / TLS / HTTP ---------------------------------------- */

struct client {
  async_tls_context *tls;
  async_server *proxy, *https;
  uint16_t https_port;
  char got[1024];
  size_t len;
  int ok;
};

static const async_stream_protocol placeholder = {
    sizeof(async_stream_protocol), NULL, ignore_data, NULL, ignore_lost, NULL, NULL, NULL, NULL, 0, NULL,
};

/* HTTP, on the plaintext stream above TLS: one GET (it waits above TLS until the handshake is done). */
static void http_made(async_stream *stream, void *ud) {
  (void)ud;
  static const char request[] = "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
  check(async_stream_write(stream, request, sizeof request - 1), "request");
}

static size_t http_data(async_stream *stream, const uint8_t *data, size_t len, void *ud) {
  struct client *c = ud;
  if (c->len == 0) printf("answered over TLS 1.%d\n", async_tls_version(stream) - 0x0301);
  size_t n = len < sizeof c->got - 1 - c->len ? len : sizeof c->got - 1 - c->len;
  memcpy(c->got + c->len, data, n);
  c->len += n;
  return len;
}

/* The server's close_notify ended the answer (an end without it would be ASYNC_ETRUNCATED). */
static void http_lost(async_stream *stream, int error, void *ud) {
  (void)stream;
  struct client *c = ud;
  check(error, "the HTTPS connection");
  c->got[c->len] = '\0';
  printf("%s", c->got);
  c->ok = strncmp(c->got, "HTTP/1.1 200 OK\r\n", 17) == 0 && c->len > strlen(k_body) &&
          strcmp(c->got + c->len - strlen(k_body), k_body) == 0;
  /* done: the servers go, and then the loop has nothing left to run */
  check(async_server_close_connections(c->proxy, 0), "close proxy connections");
  check(async_handle_close(async_server_handle(c->proxy), NULL), "close proxy");
  check(async_server_close_connections(c->https, 0), "close HTTPS connections");
  check(async_handle_close(async_server_handle(c->https), NULL), "close HTTPS server");
}

static const async_stream_protocol http_client = {
    sizeof(async_stream_protocol), http_made, http_data, NULL, http_lost, NULL, NULL, NULL, NULL, 0, NULL,
};

/* The tunnel through the proxy is up: TLS on it, HTTP above. */
static void on_tunnel(async_future *f, int status, void *ud) {
  struct client *c = ud;
  void *tunnel;
  check(status, "SOCKS5 CONNECT");
  async_future_result(&tunnel, f);
  async_stream *tls;
  check(async_tls_push(&tls, NULL, tunnel, c->tls, "localhost", &http_client, c), "client TLS push");
  async_future_free(f);
}

/* Connected to the proxy: SOCKS5 on the TCP stream, asking for localhost:https_port. */
static void on_proxy(async_future *f, int status, void *ud) {
  struct client *c = ud;
  void *tcp;
  check(status, "connect to the proxy");
  async_future_result(&tcp, f);
  async_future *tunnel;
  check(async_layer_push_socks5(&tunnel, tcp, "localhost", c->https_port, NULL, NULL, &placeholder, NULL), "SOCKS5");
  check(async_future_add_callback(tunnel, on_tunnel, c), "tunnel callback");
  async_future_free(f);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: https_socks CERT_SCRIPT (tests/tls_certs.sh)\n");
    return 2;
  }
  /* A CA and a certificate for localhost, made now by the script. */
  char dir[] = "/tmp/https_socks.XXXXXX", cmd[4096], ca[64], cert[64], key[64];
  if (!mkdtemp(dir)) return perror("mkdtemp"), 1;
  snprintf(cmd, sizeof cmd, "sh '%s' '%s'", argv[1], dir);
  if (system(cmd) != 0) return fprintf(stderr, "%s failed\n", cmd), 1;
  snprintf(ca, sizeof ca, "%s/ca.pem", dir);
  snprintf(cert, sizeof cert, "%s/server.pem", dir);
  snprintf(key, sizeof key, "%s/server.key", dir);

  async_loop *loop;
  check(async_loop_new(&loop), "async_loop_new");
  /* Files are read here, once: a push never touches the disk. */
  async_tls_options server_options = ASYNC_TLS_OPTIONS_INIT, client_options = ASYNC_TLS_OPTIONS_INIT;
  server_options.cert_file = cert;
  server_options.key_file = key;
  client_options.ca_file = ca; /* trust our CA (default: the system's store) */
  async_tls_context *server_tls;
  struct client c = {0};
  check(async_tls_context_new(&server_tls, ASYNC_TLS_SERVER, &server_options), "server context");
  check(async_tls_context_new(&c.tls, ASYNC_TLS_CLIENT, &client_options), "client context");
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) return 1;

  check(async_tcp_listen(&c.https, loop, "127.0.0.1", 0, 16, 0, https_factory, NULL), "HTTPS listen");
  check(async_server_set_tls(c.https, server_tls), "HTTPS server TLS");
  check(async_tcp_listen(&c.proxy, loop, "127.0.0.1", 0, 16, 0, proxy_factory, NULL), "proxy listen");
  c.https_port = (uint16_t)async_server_port(c.https);
  printf("HTTPS server on 127.0.0.1:%d, SOCKS5 proxy on 127.0.0.1:%d\n", c.https_port, async_server_port(c.proxy));

  async_future *connect;
  check(async_tcp_connect(&connect, loop, "127.0.0.1", (uint16_t)async_server_port(c.proxy), NULL, &placeholder, NULL),
        "connect");
  check(async_future_add_callback(connect, on_proxy, &c), "connect callback");
  check(async_loop_run(loop, ASYNC_RUN_DEFAULT), "async_loop_run");

  check(async_tls_context_release(c.tls), "release");
  check(async_tls_context_release(server_tls), "release");
  check(async_loop_free(loop), "async_loop_free");
  printf("%s\n", c.ok ? "ok: GET over TCP / SOCKS5 / TLS / HTTP" : "unexpected answer");
  return c.ok ? 0 : 1;
}
