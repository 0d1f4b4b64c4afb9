/* Streams, servers, connects, readers and reconnectors.
 *
 * A stream object runs in one of two modes:
 * - protocol: a Lua table of callbacks (UV_CB; data_received cached in
 *   UV_MORE); the object is the C protocol's userdata, pinned until release;
 * - reader: no protocol given; the stream starts with the binding's
 *   protocol, which hands it to a C reader (UV_EXTRA) in connection_made,
 *   and s:read*() return futures of strings. A server's handler function
 *   (UV_MORE) then runs as a task with the stream.
 */
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>

#include "lasync.h"

enum { MODE_PROTO = 0, MODE_READER = 1 };

struct lstream {
  lobj o;
  async_stream *s; /* one reference (async_stream_retain), NULL before connection_made */
  int mode;
  int dead;      /* finalized: nothing reaches Lua any more */
  int switching; /* inside async_stream_set_protocol: the release is not the end */
  int deliver_each;
  int recon; /* the userdata of a reconnector (UV_AUX: the reconnector object) */
};

typedef struct lreader {
  lobj o;
  lnode node;
  async_reader *r;
} lreader;

typedef struct lrecon {
  lobj o;
  async_reconnector *rc; /* NULL once stopped */
} lrecon;

static const async_stream_protocol *proto_for(int deliver_each);

/* ---- trampolines ---------------------------------------------------------------- */

static void retain_new(lstream *st, async_stream *s) {
  if (st->s == s) return;
  if (st->s) async_stream_release(st->s);
  st->s = async_stream_retain(s) == 0 ? s : NULL;
}

int lasync_event_call(lua_State *L) {
  /* 1 holder, 2 user value slot, 3 field (C string), 4 first argument,
   * 5 error, 6 always an error slot, 7 number of integers, 8.. integers */
  lua_getiuservalue(L, 1, (int)lua_tointeger(L, 2));
  if (lua_type(L, -1) != LUA_TTABLE || lua_getfield(L, -1, lua_touserdata(L, 3)) != LUA_TFUNCTION) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushvalue(L, 4);
  int n = 1, error = (int)lua_tointeger(L, 5);
  if (error) {
    lasync_fail(L, error);
    lua_remove(L, -3); /* message, name */
    n += 2;
  } else if (lua_toboolean(L, 6)) {
    lua_pushnil(L);
    n++;
  }
  for (int i = 0, nint = (int)lua_tointeger(L, 7); i < nint; i++, n++) lua_pushvalue(L, 8 + i);
  lua_call(L, n, 1);
  return 1;
}

/* proto[field](stream [, msg, name]) under the pcall; its result on top when
 * nres is 1. */
static int call_field(lloop *lp, lua_State *L, int base, int self, const char *field, int error, int nres) {
  lua_pushcfunction(L, lasync_event_call);
  lua_pushvalue(L, self);
  lua_pushinteger(L, UV_CB);
  lua_pushlightuserdata(L, (void *)field);
  lua_pushvalue(L, self);
  lua_pushinteger(L, error);
  lua_pushboolean(L, 0);
  lua_pushinteger(L, 0);
  return lasync_pcall(lp, L, 7, nres, base);
}

static int begin(lstream *st, lua_State **Lp) {
  lloop *lp = st->o.lp;
  lua_State *L = lp->L;
  *Lp = L;
  int base = lasync_tramp_begin(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, st->o.self_ref); /* base + 2 */
  return base;
}

/* Protected: spawn(loop, handler, stream), the closure made under the pcall. */
static int spawn_handler(lua_State *L) {
  lua_pushcfunction(L, lasync_spawn);
  lua_insert(L, 1);
  lua_call(L, 3, 0);
  return 0;
}

static void st_made(async_stream *s, void *ud) {
  lstream *st = ud;
  if (st->dead) return;
  retain_new(st, s);
  lua_State *L;
  int base = begin(st, &L);
  lloop *lp = st->o.lp;
  if (st->mode == MODE_PROTO) {
    call_field(lp, L, base, base + 2, "connection_made", 0, 0);
  } else {
    lua_getiuservalue(L, base + 2, UV_EXTRA); /* base + 3: the reader */
    lreader *rd = lua_touserdata(L, base + 3);
    st->switching = 1;
    int reader_freed = !rd || !rd->r;
    int rc = reader_freed ? ASYNC_ECLOSED : async_stream_set_protocol(s, async_reader_protocol(), rd->r);
    st->switching = 0;
    if (rc == ASYNC_ECLOSED && !reader_freed) {
      /* closed before its connection_made (a process's stdin written and
       * closed at once): it ends by itself, through our release */
    } else if (rc < 0) {
      lua_pushcfunction(L, lasync_error_text);
      lua_pushinteger(L, rc);
      lua_pcall(L, 1, 1, 0); /* the text, or the error making it */
      lasync_report(lp, L);
      async_stream_abort(s);
    } else {
      lasync_unpin(&st->o, L); /* our protocol is gone; the reader has the stream */
      if (lua_getiuservalue(L, base + 2, UV_MORE) == LUA_TFUNCTION) {
        /* a server's handler: a task with the stream */
        lua_pushcfunction(L, spawn_handler);
        lua_getiuservalue(L, base + 2, UV_LOOP);
        lua_pushvalue(L, -3);
        lua_pushvalue(L, base + 2);
        lasync_pcall(lp, L, 3, 0, base);
      }
    }
  }
  lasync_after(lp, L, base);
}

static int data_call(lua_State *L) {
  lstream *st = lua_touserdata(L, 1);
  const char *data = lua_touserdata(L, 2);
  size_t len = (size_t)lua_tointeger(L, 3);
  lua_rawgeti(L, LUA_REGISTRYINDEX, st->o.self_ref);
  lua_getiuservalue(L, -1, UV_MORE);
  lua_insert(L, -2);
  lua_pushlstring(L, data, len);
  lua_call(L, 2, 1);
  return 1;
}

static size_t st_data(async_stream *s, const uint8_t *data, size_t len, void *ud) {
  (void)s;
  lstream *st = ud;
  if (st->dead) return len;
  lloop *lp = st->o.lp;
  lua_State *L = lp->L;
  int base = lasync_tramp_begin(L);
  lua_pushcfunction(L, data_call);
  lua_pushlightuserdata(L, st);
  lua_pushlightuserdata(L, (void *)data);
  lua_pushinteger(L, (lua_Integer)len);
  size_t consumed = len;
  if (lasync_pcall(lp, L, 3, 1, base) && lua_type(L, -1) == LUA_TNUMBER) {
    lua_Integer n = lua_tointeger(L, -1);
    consumed = n < 0 ? 0 : (size_t)n > len ? len : (size_t)n;
  }
  lasync_after(lp, L, base);
  return consumed;
}

static int st_eof(async_stream *s, void *ud) {
  (void)s;
  lstream *st = ud;
  if (st->dead) return 0;
  lua_State *L;
  int base = begin(st, &L);
  int keep = 0;
  if (call_field(st->o.lp, L, base, base + 2, "eof_received", 0, 1) == 1) keep = lua_toboolean(L, -1);
  lasync_after(st->o.lp, L, base);
  return keep;
}

static void st_lost(async_stream *s, int error, void *ud) {
  (void)s;
  lstream *st = ud;
  if (st->dead) return;
  lua_State *L;
  int base = begin(st, &L);
  call_field(st->o.lp, L, base, base + 2, "connection_lost", error, 0);
  lasync_after(st->o.lp, L, base);
}

#define SIMPLE_EVENT(name, field)                         \
  static void name(async_stream *s, void *ud) {           \
    (void)s;                                              \
    lstream *st = ud;                                     \
    if (st->dead) return;                                 \
    lua_State *L;                                         \
    int base = begin(st, &L);                             \
    call_field(st->o.lp, L, base, base + 2, field, 0, 0); \
    lasync_after(st->o.lp, L, base);                      \
  }
SIMPLE_EVENT(st_pause, "pause_writing")
SIMPLE_EVENT(st_resume, "resume_writing")
SIMPLE_EVENT(st_drained, "write_drained")
SIMPLE_EVENT(st_idle, "idle_timeout")

static void st_release(void *ud) {
  lstream *st = ud;
  if (st->switching) return;
  lloop *lp = st->o.lp;
  lua_State *L = lp->L;
  if (st->recon) {
    /* the reconnector's final notification: it is stopped */
    if (st->o.self_ref > 0) {
      lua_rawgeti(L, LUA_REGISTRYINDEX, st->o.self_ref);
      if (lua_getiuservalue(L, -1, UV_AUX) == LUA_TUSERDATA) {
        lrecon *rc = lua_touserdata(L, -1);
        rc->rc = NULL;
        lasync_unpin(&rc->o, L);
      }
      lua_pop(L, 2);
    }
  }
  lasync_unpin(&st->o, L);
}

static const async_stream_protocol protos[2] = {
    {sizeof(async_stream_protocol), st_made, st_data, st_eof, st_lost, st_pause, st_resume, st_drained, st_release, 0,
     st_idle},
    {sizeof(async_stream_protocol), st_made, st_data, st_eof, st_lost, st_pause, st_resume, st_drained, st_release,
     ASYNC_STREAM_DELIVER_EACH, st_idle},
};

static const async_stream_protocol *proto_for(int deliver_each) { return &protos[deliver_each ? 1 : 0]; }

/* ---- stream objects ---------------------------------------------------------------- */

static lreader *new_reader(lua_State *L, lloop *lp, int loop_idx, size_t limit, int *rc);

/* A new stream object on top of the stack, for the protocol at proto_idx:
 * a table (protocol mode), a reader object, or none (a new reader). */
static lstream *new_stream(lua_State *L, lloop *lp, int loop_idx, int proto_idx, int *rc) {
  *rc = 0;
  /* read before the object is pushed: proto_idx may be just above the arguments */
  int none = lua_isnoneornil(L, proto_idx), table = lua_istable(L, proto_idx);
  if (!none && !table && !luaL_testudata(L, proto_idx, LASYNC_READER))
    luaL_typeerror(L, proto_idx, "protocol table or reader");
  lstream *st = lasync_newobj(L, sizeof *st, LASYNC_STREAM, loop_idx);
  st->o.lp = lp;
  int idx = lua_gettop(L);
  if (table) {
    st->mode = MODE_PROTO;
    lua_getfield(L, proto_idx, "data_received");
    luaL_argcheck(L, lua_isfunction(L, -1), proto_idx, "the protocol needs data_received");
    lua_setiuservalue(L, idx, UV_MORE);
    lua_getfield(L, proto_idx, "connection_lost");
    luaL_argcheck(L, lua_isfunction(L, -1), proto_idx, "the protocol needs connection_lost");
    lua_pop(L, 1);
    lua_getfield(L, proto_idx, "deliver_each");
    st->deliver_each = lua_toboolean(L, -1);
    lua_pop(L, 1);
    lua_pushvalue(L, proto_idx);
    lua_setiuservalue(L, idx, UV_CB);
  } else {
    st->mode = MODE_READER;
    if (none) {
      new_reader(L, lp, loop_idx, 0, rc);
      if (*rc < 0) return st;
    } else {
      lua_pushvalue(L, proto_idx);
    }
    lua_setiuservalue(L, idx, UV_EXTRA);
  }
  return st;
}

static lstream *check_stream(lua_State *L) { return lasync_checkself(L, LASYNC_STREAM); }

#define STREAM()                                    \
  lstream *st = check_stream(L);                    \
  if (!st->s) return lasync_fail(L, ASYNC_ECLOSED); \
  async_stream *s = st->s

static int st_gc(lua_State *L) {
  lstream *st = lua_touserdata(L, 1);
  if (!st->o.lp) return 0;
  st->dead = 1;
  if (st->s) {
    async_stream *s = st->s;
    st->s = NULL;
    if (st->o.lp->loop) async_stream_close(s); /* unreachable: closed (ECLOSED if it ended) */
    async_stream_release(s);
  }
  return 0;
}

static int m_write(lua_State *L) {
  STREAM();
  int n = lua_gettop(L) - 1;
  int rc;
  LASYNC_ENTER(st->o.lp, L);
  if (n == 1) {
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    rc = async_stream_write(s, data, len);
  } else {
    luaL_argcheck(L, n <= 1024, 1024, "at most 1024 buffers");
    struct iovec *iov = lua_newuserdatauv(L, sizeof *iov * (size_t)(n ? n : 1), 0);
    for (int i = 0; i < n; i++) {
      size_t len;
      iov[i].iov_base = (void *)luaL_checklstring(L, i + 2, &len);
      iov[i].iov_len = len;
    }
    rc = async_stream_writev(s, iov, n);
  }
  LASYNC_LEAVE(st->o.lp);
  return lasync_result(L, rc);
}

static int m_write_eof(lua_State *L) {
  STREAM();
  return lasync_result(L, async_stream_write_eof(s));
}

LASYNC_TRANSPORT_OPS(stream_ops, LASYNC_STREAM, lstream, s, async_stream_close, async_stream_abort,
                     async_stream_pause_reading, async_stream_resume_reading, async_stream_is_reading,
                     async_stream_set_write_limits, async_stream_get_write_limits, async_stream_write_buffer_size);

static int m_set_read_limit(lua_State *L) {
  STREAM();
  return lasync_result(L, async_stream_set_read_limit(s, lasync_check_size(L, 2)));
}

static int m_fd(lua_State *L) {
  STREAM();
  int rc = async_stream_fd(s);
  if (rc < 0) return lasync_fail(L, rc);
  lua_pushinteger(L, rc);
  return 1;
}

static int m_loop(lua_State *L) {
  STREAM();
  if (!async_stream_loop(s)) return lasync_fail(L, ASYNC_ECLOSED);
  lua_getiuservalue(L, 1, UV_LOOP);
  return 1;
}

static int m_sockname(lua_State *L) {
  STREAM();
  uint8_t buf[ASYNC_ADDR_MAXLEN];
  int rc = async_stream_sockname((struct sockaddr *)buf, sizeof buf, s);
  if (rc < 0) return lasync_fail(L, rc);
  return lasync_push_addr(L, (struct sockaddr *)buf, (size_t)rc);
}

static int m_peername(lua_State *L) {
  STREAM();
  uint8_t buf[ASYNC_ADDR_MAXLEN];
  int rc = async_stream_peername((struct sockaddr *)buf, sizeof buf, s);
  if (rc < 0) return lasync_fail(L, rc);
  return lasync_push_addr(L, (struct sockaddr *)buf, (size_t)rc);
}

static int m_set_nodelay(lua_State *L) {
  STREAM();
  return lasync_result(L, async_stream_set_nodelay(s, lua_toboolean(L, 2)));
}

static int m_set_keepalive(lua_State *L) {
  STREAM();
  lua_Integer idle = luaL_optinteger(L, 3, 0);
  luaL_argcheck(L, idle >= 0 && idle <= 0xFFFFFFFF, 3, "out of range");
  return lasync_result(L, async_stream_set_keepalive(s, lua_toboolean(L, 2), (uint32_t)idle));
}

static int m_set_idle_timeout(lua_State *L) {
  STREAM();
  return lasync_result(L, async_stream_set_idle_timeout(s, lasync_checku64(L, 2)));
}

/* set_protocol(table): Lua callbacks from now on (a reader-mode stream leaves
 * its reader). */
static int m_set_protocol(lua_State *L) {
  STREAM();
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_getfield(L, 2, "data_received");
  luaL_argcheck(L, lua_isfunction(L, -1), 2, "the protocol needs data_received");
  lua_getfield(L, 2, "connection_lost");
  luaL_argcheck(L, lua_isfunction(L, -1), 2, "the protocol needs connection_lost");
  lua_pop(L, 1);
  lua_getfield(L, 2, "deliver_each");
  int each = lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (st->mode == MODE_PROTO && st->o.self_ref <= 0) return lasync_fail(L, ASYNC_ECLOSED); /* ended */
  if (st->mode == MODE_READER || each != st->deliver_each) {
    st->switching = st->mode == MODE_PROTO;
    LASYNC_ENTER(st->o.lp, L);
    int rc = async_stream_set_protocol(s, proto_for(each), st);
    LASYNC_LEAVE(st->o.lp);
    st->switching = 0;
    if (rc < 0) return lasync_fail(L, rc);
  }
  st->mode = MODE_PROTO;
  st->deliver_each = each;
  lua_setiuservalue(L, 1, UV_MORE);
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, 1, UV_CB);
  lasync_pin(&st->o, L, 1);
  lua_pushboolean(L, 1);
  return 1;
}

/* ---- layers ------------------------------------------------------------------------------ */

/* The object of the stream a push makes above the one at 1, for the protocol
 * at proto_idx (a table, a reader, or none: reader mode), on top of the stack
 * above its loop. The stream below keeps its object (user value UV_AUX of
 * the one above, for pop). */
static lstream *layer_new(lua_State *L, lstream *st, int proto_idx, int *rc) {
  lua_getiuservalue(L, 1, UV_LOOP);
  lstream *up = new_stream(L, st->o.lp, lua_gettop(L), proto_idx, rc);
  if (*rc < 0) return up;
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, UV_AUX);
  return up;
}

/* After a push: a Lua protocol of the stream below had its release inside
 * the push, the layer drives that stream now. */
static void layer_pushed(lua_State *L, int was_proto) {
  if (!was_proto) return;
  lua_pushnil(L);
  lua_setiuservalue(L, 1, UV_CB);
  lua_pushnil(L);
  lua_setiuservalue(L, 1, UV_MORE);
}

/* push_rate_limit(read_bytes_per_s, write_bytes_per_s [, protocol]): the
 * stream above the limiter. */
static int m_push_rate_limit(lua_State *L) {
  STREAM();
  uint64_t rbps = lasync_checku64(L, 2), wbps = lasync_checku64(L, 3);
  lua_settop(L, 4);
  lloop *lp = st->o.lp;
  if (!lp->loop) return lasync_fail(L, ASYNC_ECLOSED);
  int rc;
  lstream *up = layer_new(L, st, 4, &rc); /* 6 */
  if (rc < 0) return lasync_fail(L, rc);
  async_stream *out;
  int was_proto = st->mode == MODE_PROTO;
  LASYNC_ENTER(lp, L);
  rc = async_layer_push_rate_limit(&out, s, rbps, wbps, proto_for(up->deliver_each), up);
  LASYNC_LEAVE(lp);
  if (rc < 0) return lasync_fail(L, rc);
  layer_pushed(L, was_proto);
  retain_new(up, out);
  lasync_pin(&up->o, L, 6);
  return 1;
}

/* tls(context, server_name [, protocol]): the stream above TLS (plaintext)
 * and the handshake's future (resolves to nil once done). server_name may
 * be nil for a server or a client context without verification. */
static int m_tls(lua_State *L) {
  STREAM();
  async_tls_context *ctx = lasync_checktls(L, 2);
  const char *server_name = luaL_optstring(L, 3, NULL);
  lua_settop(L, 4);
  lloop *lp = st->o.lp;
  if (!lp->loop) return lasync_fail(L, ASYNC_ECLOSED);
  int rc;
  lstream *up = layer_new(L, st, 4, &rc); /* 6 */
  if (rc < 0) return lasync_fail(L, rc);
  async_stream *out;
  async_future *handshake;
  int was_proto = st->mode == MODE_PROTO;
  LASYNC_ENTER(lp, L);
  rc = async_tls_push(&out, &handshake, s, ctx, server_name, proto_for(up->deliver_each), up);
  LASYNC_LEAVE(lp);
  if (rc < 0) return lasync_fail(L, rc);
  layer_pushed(L, was_proto);
  retain_new(up, out);
  lasync_pin(&up->o, L, 6);
  lasync_newfuture(L, lp, 5, handshake, LF_VALUE);
  return 2;
}

static int m_tls_alpn(lua_State *L) {
  STREAM();
  char name[256];
  int rc = async_tls_alpn(name, sizeof name, s);
  if (rc < 0) return lasync_fail(L, rc);
  if (rc == 0)
    lua_pushnil(L);
  else
    lua_pushlstring(L, name, (size_t)rc);
  return 1;
}

static int m_tls_version(lua_State *L) {
  STREAM();
  int rc = async_tls_version(s);
  if (rc < 0) return lasync_fail(L, rc);
  lua_pushinteger(L, rc);
  return 1;
}

static int m_tls_resumed(lua_State *L) {
  STREAM();
  int rc = async_tls_resumed(s);
  if (rc < 0) return lasync_fail(L, rc);
  lua_pushboolean(L, rc);
  return 1;
}

/* tls_verify_error(): OpenSSL's X509_V_ERR_* code (0: none) and its text. */
static int m_tls_verify_error(lua_State *L) {
  STREAM();
  const char *reason = NULL;
  int rc = async_tls_verify_error(&reason, s);
  if (rc < 0) return lasync_fail(L, rc);
  lua_pushinteger(L, rc);
  lua_pushstring(L, reason);
  return 2;
}

/* socks5(host, port [, username, password] [, protocol]) and
 * socks5_addr(address [, username, password] [, protocol]): a future of the
 * tunnel's stream, like connect's. */
static int do_socks5(lua_State *L, int by_addr) {
  STREAM();
  const char *host = NULL;
  lua_Integer port = 0;
  size_t addrlen = 0;
  uint8_t buf[ASYNC_ADDR_MAXLEN];
  const struct sockaddr *addr = NULL;
  int arg = 3;
  if (by_addr) {
    addr = lasync_checkaddr(L, 2, &addrlen, buf);
  } else {
    host = luaL_checkstring(L, 2);
    port = luaL_checkinteger(L, 3);
    luaL_argcheck(L, port >= 0 && port <= 65535, 3, "port out of range");
    arg = 4;
  }
  const char *user = NULL, *pass = NULL;
  int proto_idx = arg;
  if (lua_type(L, arg) == LUA_TSTRING || lua_type(L, arg + 1) == LUA_TSTRING) {
    user = luaL_optstring(L, arg, NULL);
    pass = luaL_optstring(L, arg + 1, NULL);
    proto_idx = arg + 2;
  }
  lua_settop(L, proto_idx);
  if (by_addr && !addr) return lasync_fail(L, ASYNC_EINVAL);
  lloop *lp = st->o.lp;
  if (!lp->loop) return lasync_fail(L, ASYNC_ECLOSED);
  int rc;
  lstream *up = layer_new(L, st, proto_idx, &rc);
  if (rc < 0) return lasync_fail(L, rc);
  int up_idx = lua_gettop(L), loop_idx = up_idx - 1;
  async_future *f;
  int was_proto = st->mode == MODE_PROTO;
  LASYNC_ENTER(lp, L);
  if (by_addr)
    rc = async_layer_push_socks5_addr(&f, s, addr, addrlen, user, pass, proto_for(up->deliver_each), up);
  else
    rc = async_layer_push_socks5(&f, s, host, (uint16_t)port, user, pass, proto_for(up->deliver_each), up);
  LASYNC_LEAVE(lp);
  if (rc < 0) return lasync_fail(L, rc);
  layer_pushed(L, was_proto);
  lasync_pin(&up->o, L, up_idx);
  lasync_newfuture(L, lp, loop_idx, f, LF_STREAM);
  lua_pushvalue(L, up_idx);
  lua_setiuservalue(L, -2, UV_EXTRA);
  return 1;
}

static int m_socks5(lua_State *L) { return do_socks5(L, 0); }
static int m_socks5_addr(lua_State *L) { return do_socks5(L, 1); }

/* pop([protocol]): takes the layer under this stream off; the stream below
 * (returned) goes on with protocol (a table), or in reader mode without one. */
static int m_pop(lua_State *L) {
  STREAM();
  lua_settop(L, 2);
  lloop *lp = st->o.lp;
  if (!lua_isnil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_getfield(L, 2, "data_received");
    luaL_argcheck(L, lua_isfunction(L, -1), 2, "the protocol needs data_received");
    lua_getfield(L, 2, "connection_lost");
    luaL_argcheck(L, lua_isfunction(L, -1), 2, "the protocol needs connection_lost");
    lua_pop(L, 2);
  }
  if (lua_getiuservalue(L, 1, UV_AUX) != LUA_TUSERDATA || !lua_touserdata(L, 3) ||
      !luaL_testudata(L, 3, LASYNC_STREAM)) {
    int rc = async_layer_is_layered(s); /* ECLOSED for an ended stream, else not a layer's */
    return lasync_fail(L, rc < 0 ? rc : ASYNC_EINVAL);
  }
  lstream *low = lua_touserdata(L, 3); /* 3 */
  if (!lp->loop) return lasync_fail(L, ASYNC_ECLOSED);
  if (lua_istable(L, 2)) {
    lua_getfield(L, 2, "deliver_each");
    int each = lua_toboolean(L, -1);
    lua_pop(L, 1);
    int rc = async_layer_pop(s, proto_for(each), low);
    if (rc < 0) return lasync_fail(L, rc);
    low->mode = MODE_PROTO;
    low->deliver_each = each;
    lua_getfield(L, 2, "data_received");
    lua_setiuservalue(L, 3, UV_MORE);
    lua_pushvalue(L, 2);
    lua_setiuservalue(L, 3, UV_CB);
    lasync_pin(&low->o, L, 3); /* until its release */
  } else {
    lua_getiuservalue(L, 1, UV_LOOP); /* 4 */
    int rc;
    lreader *rd = new_reader(L, lp, 4, 0, &rc); /* 5 */
    if (rc < 0) return lasync_fail(L, rc);
    rc = async_layer_pop(s, async_reader_protocol(), rd->r);
    if (rc < 0) return lasync_fail(L, rc);
    low->mode = MODE_READER;
    lua_setiuservalue(L, 3, UV_EXTRA);
  }
  lua_settop(L, 3);
  return 1;
}

static int m_is_layered(lua_State *L) {
  STREAM();
  int rc = async_layer_is_layered(s);
  if (rc < 0) return lasync_fail(L, rc);
  lua_pushboolean(L, rc);
  return 1;
}

/* For process.c: a stream object made by new_stream, its C protocol, and
 * its stream once made (the object takes a reference and stays pinned
 * until the stream's release). */
lstream *lasync_new_stream(lua_State *L, lloop *lp, int loop_idx, int proto_idx, int *rc) {
  return new_stream(L, lp, loop_idx, proto_idx, rc);
}
const async_stream_protocol *lasync_stream_proto(const lstream *st) { return proto_for(st->deliver_each); }
void lasync_stream_attach(lstream *st, async_stream *s) { retain_new(st, s); }
void lasync_stream_pin(lstream *st, lua_State *L, int idx) { lasync_pin(&st->o, L, idx); }

/* ---- readers ---------------------------------------------------------------------------- */

void lasync_reader_drop(lnode *n) {
  lreader *rd = (lreader *)((char *)n - offsetof(lreader, node));
  lasync_list_del(n);
  if (rd->r) async_reader_free(rd->r);
  rd->r = NULL;
}

static lreader *new_reader(lua_State *L, lloop *lp, int loop_idx, size_t limit, int *rc) {
  lreader *rd = lasync_newobj(L, sizeof *rd, LASYNC_READER, loop_idx);
  rd->o.lp = lp;
  *rc = async_reader_new(&rd->r, lp->loop, limit);
  if (*rc < 0)
    rd->r = NULL;
  else
    lasync_list_add(&lp->readers, &rd->node);
  return rd;
}

static int l_reader(lua_State *L) {
  int arg, loop_idx;
  lloop *lp = lasync_optloop(L, &arg, &loop_idx);
  size_t limit = lua_isnoneornil(L, arg) ? 0 : lasync_check_size(L, arg);
  if (!lp->loop) return lasync_fail(L, ASYNC_ECLOSED);
  int rc;
  new_reader(L, lp, loop_idx, limit, &rc);
  if (rc < 0) return lasync_fail(L, rc);
  return 1;
}

static int rd_gc(lua_State *L) {
  lreader *rd = lua_touserdata(L, 1);
  if (rd->o.lp) lasync_reader_drop(&rd->node);
  return 0;
}

static int rd_free(lua_State *L) {
  lreader *rd = luaL_checkudata(L, 1, LASYNC_READER);
  if (!rd->r) return lasync_fail(L, ASYNC_ECLOSED);
  lasync_reader_drop(&rd->node);
  lua_pushboolean(L, 1);
  return 1;
}

/* The reader of arg 1: a reader object or a reader-mode stream. */
static lreader *reader_arg(lua_State *L, int *rd_idx) {
  lreader *rd = luaL_testudata(L, 1, LASYNC_READER);
  if (rd) {
    *rd_idx = 1;
    return rd;
  }
  lstream *st = luaL_checkudata(L, 1, LASYNC_STREAM);
  if (st->mode != MODE_READER) {
    *rd_idx = 0;
    return NULL;
  }
  lua_getiuservalue(L, 1, UV_EXTRA);
  *rd_idx = lua_gettop(L);
  return lua_touserdata(L, -1);
}

static int read_future(lua_State *L, lreader *rd, int rc, async_future *const *f) {
  if (rc < 0) return lasync_fail(L, rc);
  lua_getiuservalue(L, 1, UV_LOOP);
  lasync_newfuture(L, rd->o.lp, lua_gettop(L), *f, LF_BYTES);
  return 1;
}

#define READER()                                    \
  int rd_idx;                                       \
  lreader *rd = reader_arg(L, &rd_idx);             \
  if (!rd) return lasync_fail(L, ASYNC_ESTATE);     \
  if (!rd->r) return lasync_fail(L, ASYNC_ECLOSED); \
  async_future *f = NULL

static int rd_read(lua_State *L) {
  size_t n = lasync_check_size(L, 2);
  READER();
  return read_future(L, rd, async_reader_read_exactly(&f, rd->r, n), &f);
}

static int rd_read_until(lua_State *L) {
  size_t dlen;
  const char *delim = luaL_checklstring(L, 2, &dlen);
  size_t limit = lua_isnoneornil(L, 3) ? 0 : lasync_check_size(L, 3);
  READER();
  return read_future(L, rd, async_reader_read_until(&f, rd->r, delim, dlen, limit), &f);
}

static int rd_read_line(lua_State *L) {
  size_t limit = lua_isnoneornil(L, 2) ? 0 : lasync_check_size(L, 2);
  READER();
  return read_future(L, rd, async_reader_read_line(&f, rd->r, limit), &f);
}

static int rd_read_some(lua_State *L) {
  size_t max = lua_isnoneornil(L, 2) ? 65536 : lasync_check_size(L, 2);
  READER();
  return read_future(L, rd, async_reader_read_some(&f, rd->r, max), &f);
}

static int m_reader(lua_State *L) {
  lstream *st = check_stream(L);
  if (st->mode != MODE_READER) return lasync_fail(L, ASYNC_ESTATE);
  lua_getiuservalue(L, 1, UV_EXTRA);
  return 1;
}

/* ---- adopt, connect -------------------------------------------------------------------- */

static int l_adopt(lua_State *L) {
  int arg, loop_idx;
  lloop *lp = lasync_optloop(L, &arg, &loop_idx);
  lua_Integer fd = luaL_checkinteger(L, arg);
  luaL_argcheck(L, fd >= -1 && fd <= 0x7FFFFFFF, arg, "fd out of range");
  if (!lp->loop) return lasync_fail(L, ASYNC_ECLOSED);
  int rc;
  lstream *st = new_stream(L, lp, loop_idx, arg + 1, &rc);
  if (rc < 0) return lasync_fail(L, rc);
  async_stream *s;
  rc = async_stream_adopt(&s, lp->loop, (int)fd, proto_for(st->deliver_each), st);
  if (rc < 0) return lasync_fail(L, rc);
  retain_new(st, s);
  lasync_pin(&st->o, L, -1);
  return 1;
}

/* Protected: fn(address_text, msg, name). */
static int attempt_call(lua_State *L) {
  lasync_push_addr(L, lua_touserdata(L, 2), (size_t)lua_tointeger(L, 3));
  lasync_fail(L, (int)lua_tointeger(L, 4));
  lua_remove(L, -3);
  lua_call(L, 3, 0);
  return 0;
}

static void on_attempt_failed(const struct sockaddr *addr, size_t addrlen, int error, void *ud) {
  lstream *st = ud;
  if (st->dead || st->o.self_ref <= 0) return;
  lua_State *L;
  int base = begin(st, &L);
  lloop *lp = st->o.lp;
  lua_pushcfunction(L, attempt_call);
  if (lua_getiuservalue(L, base + 2, UV_AUX) == LUA_TFUNCTION) {
    lua_pushlightuserdata(L, (void *)addr);
    lua_pushinteger(L, (lua_Integer)addrlen);
    lua_pushinteger(L, error);
    lasync_pcall(lp, L, 4, 0, base);
  }
  lasync_after(lp, L, base);
}

static int opt_int(lua_State *L, int t, const char *k, lua_Integer lo, lua_Integer hi, lua_Integer *out) {
  int type = lua_getfield(L, t, k);
  if (type != LUA_TNIL) {
    int isnum;
    lua_Integer v = lua_tointegerx(L, -1, &isnum);
    // luaL_error raises; written as a statement, so the compiler sees *out
    // set whenever this returns 1.
    if (!isnum || v < lo || v > hi) luaL_error(L, "option '%s': an integer in [%I, %I] expected", k, lo, hi);
    *out = v;
  }
  lua_pop(L, 1);
  return type != LUA_TNIL;
}

static int family_of(lua_State *L, int t) {
  lua_Integer fam = 0;
  if (lua_getfield(L, t, "family") == LUA_TSTRING) {
    const char *f = lua_tostring(L, -1);
    fam = strcmp(f, "inet") == 0 ? ASYNC_AF_INET : strcmp(f, "inet6") == 0 ? ASYNC_AF_INET6 : -1;
    if (fam < 0) luaL_error(L, "option 'family': \"inet\" or \"inet6\" expected");
    lua_pop(L, 1);
  } else {
    lua_pop(L, 1);
    opt_int(L, t, "family", 0, 0x7FFFFFFF, &fam);
  }
  return (int)fam;
}

/* Fills connect options from the table at t (0: none); local_address,
 * server_name and the tls context stay referenced by the table while the
 * options are used. */
static void connect_options(lua_State *L, int t, async_connect_options *o) {
  memset(o, 0, sizeof *o);
  o->size = sizeof *o;
  if (!t) return;
  luaL_checktype(L, t, LUA_TTABLE);
  lua_Integer v;
  o->family = family_of(L, t);
  if (lua_getfield(L, t, "local_address") != LUA_TNIL) o->local_address = luaL_checkstring(L, -1);
  lua_pop(L, 1); /* the table keeps the string alive */
  lua_getfield(L, t, "sequential");
  o->sequential = lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (opt_int(L, t, "resolution_delay", -1, 0x7FFFFFFF, &v)) o->resolution_delay_ms = (int32_t)v;
  if (opt_int(L, t, "attempt_delay", -1, 0x7FFFFFFF, &v)) o->attempt_delay_ms = (int32_t)v;
  if (opt_int(L, t, "attempt_timeout", 0, LUA_MAXINTEGER, &v)) o->attempt_timeout_ms = (uint64_t)v;
  if (opt_int(L, t, "timeout", 0, LUA_MAXINTEGER, &v)) o->total_timeout_ms = (uint64_t)v;
  if (opt_int(L, t, "dns_timeout", 0, LUA_MAXINTEGER, &v)) o->dns_timeout_ms = (uint64_t)v;
  if (lua_getfield(L, t, "tls") != LUA_TNIL) o->tls = lasync_checktls(L, lua_gettop(L));
  if (lua_getfield(L, t, "server_name") != LUA_TNIL) o->server_name = luaL_checkstring(L, -1);
  lua_pop(L, 2);
}

/* connect(host, port [, protocol [, options]]) and unix_connect(path [, protocol]). */
static int do_connect(lua_State *L, int is_unix) {
  int arg, loop_idx;
  lloop *lp = lasync_optloop(L, &arg, &loop_idx);
  const char *host = luaL_checkstring(L, arg);
  lua_Integer port = 0;
  int proto_idx = arg + 1;
  if (!is_unix) {
    port = luaL_checkinteger(L, arg + 1);
    luaL_argcheck(L, port >= 0 && port <= 65535, arg + 1, "port out of range");
    proto_idx = arg + 2;
  }
  int opt_idx = lua_isnoneornil(L, proto_idx + 1) || is_unix ? 0 : proto_idx + 1;
  async_connect_options opts;
  connect_options(L, opt_idx, &opts);
  if (!lp->loop) return lasync_fail(L, ASYNC_ECLOSED);
  int rc;
  lstream *st = new_stream(L, lp, loop_idx, proto_idx, &rc);
  if (rc < 0) return lasync_fail(L, rc);
  int st_idx = lua_gettop(L);
  if (opt_idx && lua_getfield(L, opt_idx, "attempt_failed") == LUA_TFUNCTION) {
    lua_setiuservalue(L, st_idx, UV_AUX);
    opts.attempt_failed = on_attempt_failed;
    opts.attempt_failed_userdata = st;
  } else if (opt_idx) {
    lua_pop(L, 1);
  }
  async_future *f;
  if (is_unix)
    rc = async_unix_connect(&f, lp->loop, host, proto_for(st->deliver_each), st);
  else
    rc = async_tcp_connect(&f, lp->loop, host, (uint16_t)port, &opts, proto_for(st->deliver_each), st);
  if (rc < 0) return lasync_fail(L, rc);
  lasync_pin(&st->o, L, st_idx);
  lasync_newfuture(L, lp, loop_idx, f, LF_STREAM);
  lua_pushvalue(L, st_idx);
  lua_setiuservalue(L, -2, UV_EXTRA);
  return 1;
}

static int l_connect(lua_State *L) { return do_connect(L, 0); }
static int l_unix_connect(lua_State *L) { return do_connect(L, 1); }

/* ---- servers ------------------------------------------------------------------------------- */

/* Protected: the stream object of an accepted connection (pinned last). */
static int accept_call(lua_State *L) {
  lhandle *hd = lua_touserdata(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, hd->o.self_ref); /* 2: the server */
  lua_getiuservalue(L, 2, UV_LOOP);                  /* 3 */
  lua_getiuservalue(L, 2, UV_CB);                    /* 4: handler or protocol */
  int handler = lua_isfunction(L, 4);
  if (handler) lua_pushnil(L); /* 5: a new reader */
  int rc;
  lstream *st = new_stream(L, hd->o.lp, 3, handler ? 5 : 4, &rc);
  if (rc < 0) return luaL_error(L, "%s", async_strerror(rc));
  if (handler) {
    lua_pushvalue(L, 4);
    lua_setiuservalue(L, -2, UV_MORE);
  }
  lasync_pin(&st->o, L, -1);
  return 1;
}

static int on_accept(const async_stream_protocol **out_proto, void **out_ud, async_server *srv, void *ud) {
  (void)srv;
  lhandle *hd = ud;
  if (!hd || hd->o.self_ref <= 0) return -1;
  lloop *lp = hd->o.lp;
  lua_State *L = lp->L;
  int base = lasync_tramp_begin(L);
  lua_pushcfunction(L, accept_call);
  lua_pushlightuserdata(L, hd);
  int ok = lasync_pcall(lp, L, 1, 1, base);
  if (ok) {
    lstream *st = lua_touserdata(L, -1);
    *out_proto = proto_for(st->deliver_each);
    *out_ud = st;
  }
  lasync_after(lp, L, base);
  return ok ? 0 : -1;
}

static void check_handler(lua_State *L, int idx) {
  if (lua_isfunction(L, idx)) return;
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_getfield(L, idx, "data_received");
  lua_getfield(L, idx, "connection_lost");
  luaL_argcheck(L, lua_isfunction(L, -1) && lua_isfunction(L, -2), idx,
                "the protocol needs data_received and connection_lost");
  lua_pop(L, 2);
}

static lhandle *new_server(lua_State *L, lloop *lp, int loop_idx, int handler_idx) {
  lhandle *hd = lasync_newobj(L, sizeof *hd, LASYNC_SERVER, loop_idx);
  hd->o.lp = lp;
  lua_pushvalue(L, handler_idx);
  lua_setiuservalue(L, -2, UV_CB);
  return hd;
}

static int listen_done(lua_State *L, lhandle *hd, int rc, async_server *srv) {
  if (rc < 0) return lasync_fail(L, rc);
  hd->h = async_server_handle(srv);
  lasync_handle_sync_pin(hd, L, -1);
  return 1;
}

static void listen_flags(lua_State *L, int t, int *backlog, uint32_t *flags) {
  *backlog = 0;
  *flags = 0;
  if (lua_isnoneornil(L, t)) return;
  luaL_checktype(L, t, LUA_TTABLE);
  lua_Integer v;
  if (opt_int(L, t, "backlog", -0x7FFFFFFF, 0x7FFFFFFF, &v)) *backlog = (int)v;
  lua_getfield(L, t, "reuseport");
  if (lua_toboolean(L, -1)) *flags |= ASYNC_LISTEN_REUSEPORT;
  lua_getfield(L, t, "v6only");
  if (lua_toboolean(L, -1)) *flags |= ASYNC_LISTEN_V6ONLY;
  lua_pop(L, 2);
}

/* listen(host, port, handler [, options]): handler is a function (run as a
 * task per connection, with a reader-mode stream) or a protocol table. */
static int l_listen(lua_State *L) {
  int arg, loop_idx;
  lloop *lp = lasync_optloop(L, &arg, &loop_idx);
  const char *host = lua_isnil(L, arg) ? NULL : luaL_checkstring(L, arg);
  lua_Integer port = luaL_checkinteger(L, arg + 1);
  luaL_argcheck(L, port >= 0 && port <= 65535, arg + 1, "port out of range");
  check_handler(L, arg + 2);
  int backlog;
  uint32_t flags;
  listen_flags(L, arg + 3, &backlog, &flags);
  if (!lp->loop) return lasync_fail(L, ASYNC_ECLOSED);
  lhandle *hd = new_server(L, lp, loop_idx, arg + 2);
  async_server *srv;
  int rc = async_tcp_listen(&srv, lp->loop, host, (uint16_t)port, backlog, flags, on_accept, hd);
  return listen_done(L, hd, rc, srv);
}

static int l_listen_addrinfo(lua_State *L) {
  int arg, loop_idx;
  lloop *lp = lasync_optloop(L, &arg, &loop_idx);
  async_addrinfo **ai = luaL_checkudata(L, arg, LASYNC_ADDRINFO);
  check_handler(L, arg + 1);
  int backlog;
  uint32_t flags;
  listen_flags(L, arg + 2, &backlog, &flags);
  if (!lp->loop || !*ai) return lasync_fail(L, ASYNC_ECLOSED);
  lhandle *hd = new_server(L, lp, loop_idx, arg + 1);
  async_server *srv;
  int rc = async_tcp_listen_addrinfo(&srv, lp->loop, *ai, backlog, flags, on_accept, hd);
  return listen_done(L, hd, rc, srv);
}

static int l_unix_listen(lua_State *L) {
  int arg, loop_idx;
  lloop *lp = lasync_optloop(L, &arg, &loop_idx);
  const char *path = luaL_checkstring(L, arg);
  check_handler(L, arg + 1);
  int backlog;
  uint32_t flags;
  listen_flags(L, arg + 2, &backlog, &flags);
  if (!lp->loop) return lasync_fail(L, ASYNC_ECLOSED);
  lhandle *hd = new_server(L, lp, loop_idx, arg + 1);
  async_server *srv;
  int rc = async_unix_listen(&srv, lp->loop, path, backlog, on_accept, hd);
  return listen_done(L, hd, rc, srv);
}

#define SERVER()                                    \
  lhandle *hd = lasync_checkself(L, LASYNC_SERVER); \
  if (!hd->h) return lasync_fail(L, ASYNC_ECLOSED); \
  async_server *srv = (async_server *)hd->h

static int sv_port(lua_State *L) {
  SERVER();
  int rc = async_server_port(srv);
  if (rc < 0) return lasync_fail(L, rc);
  lua_pushinteger(L, rc);
  return 1;
}

/* set_tls(ctx): connections accepted from now on handshake with the server
 * context ctx before their protocol sees them; set_tls(nil): plain again. */
static int sv_set_tls(lua_State *L) {
  SERVER();
  async_tls_context *ctx = lua_isnoneornil(L, 2) ? NULL : lasync_checktls(L, 2);
  int rc = async_server_set_tls(srv, ctx);
  if (rc < 0) return lasync_fail(L, rc);
  lua_pushboolean(L, 1);
  return 1;
}

static int sv_count(lua_State *L) {
  SERVER();
  int rc = async_server_count(srv);
  if (rc < 0) return lasync_fail(L, rc);
  lua_pushinteger(L, rc);
  return 1;
}

static int sv_connection_count(lua_State *L) {
  SERVER();
  int rc = async_server_connection_count(srv);
  if (rc < 0) return lasync_fail(L, rc);
  lua_pushinteger(L, rc);
  return 1;
}

static int sv_sockname(lua_State *L) {
  SERVER();
  lua_Integer i = luaL_optinteger(L, 2, 1);
  if (i < 1) return lasync_fail(L, ASYNC_ERANGE);
  uint8_t buf[ASYNC_ADDR_MAXLEN];
  int rc = async_server_sockname((struct sockaddr *)buf, sizeof buf, srv, (size_t)(i - 1));
  if (rc < 0) return lasync_fail(L, rc);
  return lasync_push_addr(L, (struct sockaddr *)buf, (size_t)rc);
}

static int sv_close_connections(lua_State *L) {
  SERVER();
  return lasync_result(L, async_server_close_connections(srv, lua_toboolean(L, 2)));
}

static int sv_handler(lua_State *L) {
  SERVER();
  if (async_server_userdata(srv) != hd) return lasync_fail(L, ASYNC_ECLOSED);
  lua_getiuservalue(L, 1, UV_CB);
  return 1;
}

/* ---- reconnectors ---------------------------------------------------------------------------- */

/* The reconnector's stream object (the protocol's userdata, all connections). */
static lstream *recon_stream(lua_State *L, int idx) {
  lua_getiuservalue(L, idx, UV_EXTRA);
  lstream *st = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return st;
}

static void rc_event(lstream *st, const char *field, int error, int nint, lua_Integer a, lua_Integer b) {
  if (st->dead || st->o.self_ref <= 0) return;
  lua_State *L;
  int base = begin(st, &L);
  lloop *lp = st->o.lp;
  lua_getiuservalue(L, base + 2, UV_AUX); /* base + 3: the reconnector, its options in UV_CB */
  lua_pushcfunction(L, lasync_event_call);
  lua_pushvalue(L, base + 3);
  lua_pushinteger(L, UV_CB);
  lua_pushlightuserdata(L, (void *)field);
  lua_pushvalue(L, base + 3);
  lua_pushinteger(L, error);
  lua_pushboolean(L, 1);
  lua_pushinteger(L, nint);
  lua_pushinteger(L, a);
  lua_pushinteger(L, b);
  lasync_pcall(lp, L, 9, 0, base);
  lasync_after(lp, L, base);
}

static void on_connect_failed(async_reconnector *rc, int error, uint32_t failures, uint64_t retry_ms, void *ud) {
  (void)rc;
  rc_event(ud, "connect_failed", error, 2, failures, (lua_Integer)retry_ms);
}

static void on_stopped(async_reconnector *rc, int error, void *ud) {
  (void)rc;
  rc_event(ud, "stopped", error, 0, 0, 0);
}

/* reconnector(host, port, protocol [, options]) */
static int l_reconnector(lua_State *L) {
  int arg, loop_idx;
  lloop *lp = lasync_optloop(L, &arg, &loop_idx);
  const char *host = luaL_checkstring(L, arg);
  lua_Integer port = luaL_checkinteger(L, arg + 1);
  luaL_argcheck(L, port >= 0 && port <= 65535, arg + 1, "port out of range");
  luaL_checktype(L, arg + 2, LUA_TTABLE);
  int opt = lua_isnoneornil(L, arg + 3) ? 0 : arg + 3;
  async_reconnect_options ro;
  memset(&ro, 0, sizeof ro);
  ro.size = sizeof ro;
  async_connect_options co;
  if (opt) {
    luaL_checktype(L, opt, LUA_TTABLE);
    lua_Integer v;
    if (opt_int(L, opt, "initial_delay", 0, LUA_MAXINTEGER, &v)) ro.initial_delay_ms = (uint64_t)v;
    if (opt_int(L, opt, "max_delay", 0, LUA_MAXINTEGER, &v)) ro.max_delay_ms = (uint64_t)v;
    if (opt_int(L, opt, "max_attempts", 0, 0xFFFFFFFF, &v)) ro.max_attempts = (uint32_t)v;
    lua_getfield(L, opt, "multiplier");
    ro.multiplier = luaL_optnumber(L, -1, 0.0);
    lua_getfield(L, opt, "jitter");
    ro.jitter = luaL_optnumber(L, -1, 0.0);
    lua_pop(L, 2);
    ro.connect_failed = on_connect_failed;
    ro.stopped = on_stopped;
    if (lua_getfield(L, opt, "connect") == LUA_TTABLE) {
      connect_options(L, lua_gettop(L), &co);
      ro.connect = &co;
    }
    lua_pop(L, 1);
  }
  if (!lp->loop) return lasync_fail(L, ASYNC_ECLOSED);
  int rc;
  lstream *st = new_stream(L, lp, loop_idx, arg + 2, &rc);
  int st_idx = lua_gettop(L);
  st->recon = 1;
  lrecon *r = lasync_newobj(L, sizeof *r, LASYNC_RECONNECTOR, loop_idx);
  r->o.lp = lp;
  int r_idx = lua_gettop(L);
  if (opt) {
    lua_pushvalue(L, opt);
    lua_setiuservalue(L, r_idx, UV_CB);
  }
  lua_pushvalue(L, st_idx);
  lua_setiuservalue(L, r_idx, UV_EXTRA);
  lua_pushvalue(L, r_idx);
  lua_setiuservalue(L, st_idx, UV_AUX);
  rc = async_reconnector_start(&r->rc, lp->loop, host, (uint16_t)port, &ro, proto_for(st->deliver_each), st);
  if (rc < 0) {
    r->rc = NULL;
    return lasync_fail(L, rc);
  }
  lasync_pin(&st->o, L, st_idx);
  lasync_pin(&r->o, L, r_idx);
  return 1;
}

#define RECON()                                        \
  lrecon *r = lasync_checkself(L, LASYNC_RECONNECTOR); \
  if (!r->rc) return lasync_fail(L, ASYNC_ECLOSED)

static int rc_reconnect(lua_State *L) {
  RECON();
  return lasync_result(L, async_reconnector_reconnect(r->rc));
}

static int rc_stop(lua_State *L) {
  RECON();
  return lasync_result(L, async_reconnector_stop(r->rc));
}

static int rc_state(lua_State *L) {
  RECON();
  int rc = async_reconnector_state(r->rc);
  if (rc < 0) return lasync_fail(L, rc);
  static const char *const names[] = {"?", "connecting", "connected", "waiting", "stopping"};
  lua_pushstring(L, rc >= 1 && rc <= 4 ? names[rc] : "?");
  return 1;
}

/* The stream object, when connected (nil otherwise). */
static int rc_stream(lua_State *L) {
  RECON();
  async_stream *s = async_reconnector_stream(r->rc);
  if (!s) {
    lua_pushnil(L);
    return 1;
  }
  lstream *st = recon_stream(L, 1);
  retain_new(st, s);
  lua_getiuservalue(L, 1, UV_EXTRA);
  return 1;
}

static int rc_gc(lua_State *L) {
  lrecon *r = lua_touserdata(L, 1);
  if (r->rc && r->o.lp && r->o.lp->loop) async_reconnector_stop(r->rc);
  r->rc = NULL;
  return 0;
}

void lasync_open_net(lua_State *L) {
  static const luaL_Reg stream[] = {
      {"write", m_write},
      {"write_eof", m_write_eof},
      {"set_read_limit", m_set_read_limit},
      {"set_protocol", m_set_protocol},
      {"fd", m_fd},
      {"loop", m_loop},
      {"sockname", m_sockname},
      {"peername", m_peername},
      {"set_nodelay", m_set_nodelay},
      {"set_keepalive", m_set_keepalive},
      {"set_idle_timeout", m_set_idle_timeout},
      {"reader", m_reader},
      {"push_rate_limit", m_push_rate_limit},
      {"pop", m_pop},
      {"is_layered", m_is_layered},
      {"tls", m_tls},
      {"tls_alpn", m_tls_alpn},
      {"tls_version", m_tls_version},
      {"tls_resumed", m_tls_resumed},
      {"tls_verify_error", m_tls_verify_error},
      {"socks5", m_socks5},
      {"socks5_addr", m_socks5_addr},
      {"read", rd_read},
      {"read_until", rd_read_until},
      {"read_line", rd_read_line},
      {"read_some", rd_read_some},
      {NULL, NULL},
  };
  lasync_newtransport(L, stream, st_gc, &stream_ops);
  static const luaL_Reg reader[] = {
      {"read", rd_read},
      {"read_until", rd_read_until},
      {"read_line", rd_read_line},
      {"read_some", rd_read_some},
      {"free", rd_free},
      {"__close", rd_free},
      {NULL, NULL},
  };
  lasync_newclass(L, LASYNC_READER, reader, rd_gc);
  static const luaL_Reg server[] = {
      {"port", sv_port},
      {"set_tls", sv_set_tls},
      {"count", sv_count},
      {"connection_count", sv_connection_count},
      {"sockname", sv_sockname},
      {"close_connections", sv_close_connections},
      {"handler", sv_handler},
      {NULL, NULL},
  };
  lasync_newclass(L, LASYNC_SERVER, server, lasync_handle_gc);
  luaL_getmetatable(L, LASYNC_SERVER);
  lua_pushvalue(L, -1);
  luaL_setfuncs(L, lasync_handle_methods, 1);
  lua_pop(L, 1);
  static const luaL_Reg recon[] = {
      {"reconnect", rc_reconnect}, {"stop", rc_stop},    {"state", rc_state},
      {"stream", rc_stream},       {"__close", rc_stop}, {NULL, NULL},
  };
  lasync_newclass(L, LASYNC_RECONNECTOR, recon, rc_gc);
  static const luaL_Reg fns[] = {
      {"adopt", l_adopt},
      {"connect", l_connect},
      {"unix_connect", l_unix_connect},
      {"listen", l_listen},
      {"listen_addrinfo", l_listen_addrinfo},
      {"unix_listen", l_unix_listen},
      {"reader", l_reader},
      {"reconnector", l_reconnector},
      {NULL, NULL},
  };
  lasync_setloopfuncs(L, fns);
}
