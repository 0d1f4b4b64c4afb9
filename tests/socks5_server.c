/* The SOCKS5 test server of socks5_server.h. Callbacks never assert (a
 * cmocka failure would longjmp through the library): a session that meets
 * something unexpected just closes. */
#include "socks5_server.h"

#include "test_util.h"

#include <arpa/inet.h>
#include <string.h>

enum phase { P_GREETING, P_AUTH, P_REQUEST, P_CONNECTING, P_RELAY, P_DEAD };

struct session {
  struct socks5_server *srv;
  async_stream *client, *target;
  enum phase phase;
  int refs;   /* the client protocol's, the target's, a pending connect or drip */
  size_t sent; /* handshake bytes written */
  uint8_t drip[1024];
  size_t drip_len, drip_at;
  int dripping; /* a call_soon is queued */
  int closed;   /* end() ran: nothing more is written */
};

static void unref(struct session *x) {
  if (--x->refs == 0) {
    x->srv->sessions--;
    free(x);
  }
}

/* The proxy hangs up mid-handshake: its end of file, and what the client
 * sends after is read and dropped (a close with unread bytes would reset
 * the connection instead). */
static void hang_up(struct session *x) {
  x->phase = P_DEAD;
  x->closed = 1;
  async_stream_write_eof(x->client);
}

static void end(struct session *x) {
  x->phase = P_DEAD;
  x->closed = 1;
  if (x->client) async_stream_close(x->client);
  if (x->target) async_stream_close(x->target);
}

/* Writes handshake (or, while a drip is on, relayed) bytes to the client,
 * honouring byte_by_byte and close_early. */
static void drip_soon(async_loop *loop, void *ud);

static void send_now(struct session *x, const uint8_t *d, size_t n) {
  const struct socks5_config *c = &x->srv->cfg;
  if (c->close_early && x->sent + n >= c->close_after) {
    size_t room = c->close_after - x->sent;
    if (room) async_stream_write(x->client, d, room);
    x->sent += room;
    hang_up(x);
    return;
  }
  async_stream_write(x->client, d, n);
  x->sent += n;
}

static void out(struct session *x, const uint8_t *d, size_t n) {
  if (!x->client || x->closed) return;
  if (!x->srv->cfg.byte_by_byte && !x->dripping) {
    send_now(x, d, n);
    return;
  }
  if (x->drip_len + n > sizeof x->drip) n = sizeof x->drip - x->drip_len;
  memcpy(x->drip + x->drip_len, d, n);
  x->drip_len += n;
  if (!x->dripping && async_loop_call_soon(x->srv->loop, drip_soon, x) == 0) {
    x->dripping = 1;
    x->refs++;
  }
}

static void drip_soon(async_loop *loop, void *ud) {
  struct session *x = ud;
  if (x->client && !x->closed && x->drip_at < x->drip_len) {
    send_now(x, x->drip + x->drip_at++, 1);
    if (x->drip_at < x->drip_len && !x->closed && async_loop_call_soon(loop, drip_soon, x) == 0) return;
  }
  x->drip_len = x->drip_at = 0;
  x->dripping = 0;
  unref(x);
}

/* ---- the target side -------------------------------------------------- */

static size_t target_data(async_stream *s, const uint8_t *d, size_t n, void *ud) {
  (void)s;
  struct session *x = ud;
  if (x->dripping)
    out(x, d, n); /* behind the handshake bytes still dripping */
  else if (x->client)
    async_stream_write(x->client, d, n);
  return n;
}

static void target_lost(async_stream *s, int err, void *ud) {
  (void)s;
  (void)err;
  struct session *x = ud;
  x->target = NULL;
  if (x->client) async_stream_close(x->client);
}

static void session_release(void *ud) { unref(ud); }

static const async_stream_protocol target_protocol = {
    sizeof(async_stream_protocol), NULL, target_data, NULL, target_lost, NULL, NULL, NULL, session_release, 0, NULL,
};

static void reply(struct session *x, uint8_t rep) {
  const struct socks5_config *c = &x->srv->cfg;
  uint8_t r[4 + 1 + 255 + 2 + 64] = {5, rep, 0, 1};
  size_t n = 4;
  if (rep == 0 && c->bound_type == 3) {
    r[3] = 3;
    r[4] = 10;
    memcpy(r + 5, "proxy.test", 10);
    n = 15;
  } else if (rep == 0 && c->bound_type == 4) {
    r[3] = 4;
    memset(r + 4, 0, 16);
    r[19] = 1;
    n = 20;
  } else {
    r[4] = 127;
    r[7] = 1;
    n = 8;
  }
  r[n++] = 0x12;
  r[n++] = 0x34;
  if (rep == 0 && c->after_reply && c->after_reply_len <= 64) {
    memcpy(r + n, c->after_reply, c->after_reply_len);
    n += c->after_reply_len;
  }
  out(x, r, n);
}

static void connected(async_future *f, int status, void *ud) {
  struct session *x = ud;
  void *value = NULL;
  if (x->phase == P_CONNECTING) {
    if (status == 0 && async_future_result(&value, f) == 0) {
      x->target = value;
      x->phase = P_RELAY;
      reply(x, 0);
    } else {
      x->phase = P_DEAD;
      reply(x, status == ASYNC_ECONNREFUSED ? 5 : 1);
      if (x->client) async_stream_close(x->client);
    }
  } else if (status == 0 && async_future_result(&value, f) == 0) {
    async_stream_abort(value); /* the client went meanwhile */
  }
  async_future_release(f);
  unref(x);
}

/* ---- the client side -------------------------------------------------- */

static size_t request(struct session *x, const uint8_t *d, size_t n) {
  const struct socks5_config *c = &x->srv->cfg;
  if (n < 5) return 0;
  size_t alen = d[3] == 1 ? 4 : d[3] == 4 ? 16 : d[3] == 3 ? 1u + d[4] : 0;
  if (alen == 0) {
    reply(x, 8);
    end(x);
    return n;
  }
  if (n < 4 + alen + 2) return 0;
  struct socks5_server *srv = x->srv;
  srv->connects++;
  srv->last_type = d[3];
  if (d[3] == 3) {
    memcpy(srv->last_host, d + 5, d[4]);
    srv->last_host[d[4]] = 0;
  } else {
    inet_ntop(d[3] == 1 ? AF_INET : AF_INET6, d + 4, srv->last_host, sizeof srv->last_host);
  }
  srv->last_port = (uint16_t)(d[4 + alen] << 8 | d[5 + alen]);
  size_t used = 4 + alen + 2;
  if (c->connect_reply) {
    out(x, c->connect_reply, c->connect_reply_len);
    x->phase = P_DEAD;
    return used;
  }
  if (c->reply) {
    reply(x, c->reply);
    x->phase = P_DEAD;
    return used;
  }
  async_future *f = NULL;
  if (async_tcp_connect(&f, srv->loop, srv->last_host, srv->last_port, NULL, &target_protocol, x) != 0) {
    end(x);
    return used;
  }
  x->refs += 2; /* the target protocol's, the done callback's */
  x->phase = P_CONNECTING;
  if (async_future_add_callback(f, connected, x) != 0) {
    x->refs--;
    async_future_free(f);
    end(x);
  }
  return used;
}

static size_t client_data(async_stream *s, const uint8_t *d, size_t n, void *ud) {
  struct session *x = ud;
  const struct socks5_config *c = &x->srv->cfg;
  x->client = s;
  switch (x->phase) {
    case P_GREETING: {
      if (n < 2 || n < 2u + d[1]) return 0;
      size_t used = 2u + d[1];
      if (c->close_early && c->close_after == 0) {
        hang_up(x);
        return used;
      }
      if (c->silent) {
        x->phase = P_DEAD;
        return used;
      }
      uint8_t want = c->username ? 2 : 0, method = 0xFF;
      for (size_t i = 0; i < d[1]; i++)
        if (d[2 + i] == want) method = want;
      uint8_t r[2] = {5, method};
      if (c->method_reply)
        out(x, c->method_reply, c->method_reply_len);
      else
        out(x, r, 2);
      x->phase = method == 0xFF ? P_DEAD : method == 2 ? P_AUTH : P_REQUEST;
      return used;
    }
    case P_AUTH: {
      if (n < 2 || n < 3u + d[1] || n < 3u + d[1] + d[2 + d[1]]) return 0;
      size_t ulen = d[1], plen = d[2 + ulen];
      int ok = d[0] == 1 && ulen == strlen(c->username) && memcmp(d + 2, c->username, ulen) == 0 &&
               plen == strlen(c->password) && memcmp(d + 3 + ulen, c->password, plen) == 0;
      uint8_t r[2] = {1, ok ? 0 : 1};
      if (c->auth_reply)
        out(x, c->auth_reply, c->auth_reply_len);
      else
        out(x, r, 2);
      if (ok) x->srv->auths++;
      x->phase = ok ? P_REQUEST : P_DEAD;
      return 3 + ulen + plen;
    }
    case P_REQUEST:
      if (d[0] != 5 || (n >= 2 && d[1] != 1)) {
        reply(x, 7);
        end(x);
        return n;
      }
      return request(x, d, n);
    case P_CONNECTING:
      return 0; /* kept until the target is there */
    case P_RELAY:
      if (x->target) async_stream_write(x->target, d, n);
      return n;
    case P_DEAD:
      break;
  }
  return n;
}

static int client_eof(async_stream *s, void *ud) {
  (void)s;
  struct session *x = ud;
  if (x->target) async_stream_write_eof(x->target);
  return x->target != NULL;
}

static void client_lost(async_stream *s, int err, void *ud) {
  (void)s;
  (void)err;
  struct session *x = ud;
  x->client = NULL;
  x->phase = P_DEAD;
  if (x->target) async_stream_abort(x->target);
}

static void client_made(async_stream *s, void *ud) { ((struct session *)ud)->client = s; }

static const async_stream_protocol client_protocol = {
    sizeof(async_stream_protocol), client_made, client_data, client_eof, client_lost, NULL, NULL, NULL,
    session_release,               ASYNC_STREAM_DELIVER_EACH, NULL,
};

static int factory(const async_stream_protocol **p, void **ud, async_server *server, void *userdata) {
  (void)server;
  struct socks5_server *srv = userdata;
  struct session *x = calloc(1, sizeof *x);
  if (!x) return -1;
  x->srv = srv;
  x->refs = 1;
  srv->sessions++;
  *p = &client_protocol;
  *ud = x;
  return 0;
}

void socks5_server_start(struct socks5_server *s, async_loop *loop, const struct socks5_config *cfg) {
  memset(s, 0, sizeof *s);
  s->loop = loop;
  if (cfg) s->cfg = *cfg;
  assert_int_equal(async_tcp_listen(&s->server, loop, "127.0.0.1", 0, 0, 0, factory, s), 0);
  int port = async_server_port(s->server);
  assert_true(port > 0);
  s->port = (uint16_t)port;
}

static void closed(async_handle *h, void *ud) {
  (void)h;
  (void)ud;
}

void socks5_server_stop(struct socks5_server *s) {
  if (!s->server) return;
  async_server_close_connections(s->server, 1);
  async_handle_close(async_server_handle(s->server), closed);
  s->server = NULL;
}
