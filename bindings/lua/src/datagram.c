/* Datagram transports (UDP, Unix datagram sockets, adopted fds) with a Lua
 * protocol table; the object is the protocol's userdata, pinned until
 * release, and holds one reference to the transport. */
#include <string.h>

#include "lasync.h"

typedef struct ldgram {
  lobj o;
  async_datagram *d; /* one reference (async_datagram_retain) */
  int dead;
} ldgram;

static int dg_begin(ldgram *dg, lua_State **Lp) {
  lua_State *L = dg->o.lp->L;
  *Lp = L;
  int base = lasync_tramp_begin(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, dg->o.self_ref); /* base + 2 */
  return base;
}

/* proto[field](dgram [, msg, name]) under the pcall */
static void dg_call(ldgram *dg, lua_State *L, int base, const char *field, int error) {
  lua_pushcfunction(L, lasync_event_call);
  lua_pushvalue(L, base + 2);
  lua_pushinteger(L, UV_CB);
  lua_pushlightuserdata(L, (void *)field);
  lua_pushvalue(L, base + 2);
  lua_pushinteger(L, error);
  lua_pushboolean(L, 0);
  lua_pushinteger(L, 0);
  lasync_pcall(dg->o.lp, L, 7, 0, base);
}

static void dg_made(async_datagram *d, void *ud) {
  (void)d;
  ldgram *dg = ud;
  if (dg->dead) return;
  lua_State *L;
  int base = dg_begin(dg, &L);
  dg_call(dg, L, base, "connection_made", 0);
  lasync_after(dg->o.lp, L, base);
}

static int recv_call(lua_State *L) {
  ldgram *dg = lua_touserdata(L, 1);
  const char *data = lua_touserdata(L, 2);
  size_t len = (size_t)lua_tointeger(L, 3);
  const struct sockaddr *addr = lua_touserdata(L, 4);
  size_t addrlen = (size_t)lua_tointeger(L, 5);
  lua_rawgeti(L, LUA_REGISTRYINDEX, dg->o.self_ref); /* 6 */
  lua_getiuservalue(L, 6, UV_MORE);
  lua_pushvalue(L, 6);
  lua_pushlstring(L, data, len);
  lasync_push_addr(L, addr, addrlen);
  lua_call(L, 3, 0);
  return 0;
}

static void dg_received(async_datagram *d, const uint8_t *data, size_t len, const struct sockaddr *addr, size_t addrlen,
                        void *ud) {
  (void)d;
  ldgram *dg = ud;
  if (dg->dead) return;
  lua_State *L = dg->o.lp->L;
  int base = lasync_tramp_begin(L);
  lua_pushcfunction(L, recv_call);
  lua_pushlightuserdata(L, dg);
  lua_pushlightuserdata(L, (void *)data);
  lua_pushinteger(L, (lua_Integer)len);
  lua_pushlightuserdata(L, (void *)addr);
  lua_pushinteger(L, (lua_Integer)addrlen);
  lasync_pcall(dg->o.lp, L, 5, 0, base);
  lasync_after(dg->o.lp, L, base);
}

static void dg_error_event(ldgram *dg, const char *field, int error) {
  if (dg->dead) return;
  lua_State *L;
  int base = dg_begin(dg, &L);
  dg_call(dg, L, base, field, error);
  lasync_after(dg->o.lp, L, base);
}

static void dg_error(async_datagram *d, int error, void *ud) {
  (void)d;
  dg_error_event(ud, "error_received", error);
}

static void dg_lost(async_datagram *d, int error, void *ud) {
  (void)d;
  dg_error_event(ud, "connection_lost", error);
}

static void dg_pause(async_datagram *d, void *ud) {
  (void)d;
  dg_error_event(ud, "pause_writing", 0);
}

static void dg_resume(async_datagram *d, void *ud) {
  (void)d;
  dg_error_event(ud, "resume_writing", 0);
}

static void dg_release(void *ud) {
  ldgram *dg = ud;
  lasync_unpin(&dg->o, dg->o.lp->L);
}

static const async_datagram_protocol dg_proto = {
    sizeof(async_datagram_protocol), dg_made, dg_received, dg_error, dg_lost, dg_pause, dg_resume, dg_release,
};

/* A datagram object for the protocol table at proto_idx, on top. */
static ldgram *new_dgram(lua_State *L, lloop *lp, int loop_idx, int proto_idx) {
  luaL_checktype(L, proto_idx, LUA_TTABLE);
  lua_getfield(L, proto_idx, "connection_lost");
  luaL_argcheck(L, lua_isfunction(L, -1), proto_idx, "the protocol needs connection_lost");
  lua_getfield(L, proto_idx, "datagram_received");
  luaL_argcheck(L, lua_isfunction(L, -1), proto_idx, "the protocol needs datagram_received");
  ldgram *dg = lasync_newobj(L, sizeof *dg, LASYNC_DATAGRAM, loop_idx);
  dg->o.lp = lp;
  lua_insert(L, -2);
  lua_setiuservalue(L, -2, UV_MORE);
  lua_pushvalue(L, proto_idx);
  lua_setiuservalue(L, -2, UV_CB);
  lua_remove(L, -2);
  return dg;
}

static int opened(lua_State *L, ldgram *dg, int rc) {
  if (rc < 0) {
    dg->d = NULL;
    return lasync_fail(L, rc);
  }
  if (async_datagram_retain(dg->d) < 0) dg->d = NULL; /* cannot happen on a new transport */
  lasync_pin(&dg->o, L, -1);
  return 1;
}

/* udp_open(options, protocol): options {family=, local=, remote=,
 * reuse_port=, broadcast=, ipv6_only=, send_buffer=, receive_buffer=} */
static int l_udp_open(lua_State *L) {
  int arg, loop_idx;
  lloop *lp = lasync_optloop(L, &arg, &loop_idx);
  luaL_checktype(L, arg, LUA_TTABLE);
  async_udp_options o;
  memset(&o, 0, sizeof o);
  o.size = sizeof o;
  if (lua_getfield(L, arg, "family") == LUA_TSTRING) {
    const char *f = lua_tostring(L, -1);
    o.family = strcmp(f, "inet") == 0 ? ASYNC_AF_INET : strcmp(f, "inet6") == 0 ? ASYNC_AF_INET6 : -1;
  } else if (!lua_isnil(L, -1)) {
    lua_Integer v = luaL_checkinteger(L, -1);
    o.family = v >= 0 && v < 0x7FFFFFFF ? (int)v : -1;
  }
  if (lua_getfield(L, arg, "local") != LUA_TNIL) o.local_address = luaL_checkstring(L, -1);
  if (lua_getfield(L, arg, "remote") != LUA_TNIL) o.remote_address = luaL_checkstring(L, -1);
  lua_getfield(L, arg, "reuse_port");
  o.reuse_port = lua_toboolean(L, -1);
  lua_getfield(L, arg, "broadcast");
  o.broadcast = lua_toboolean(L, -1);
  lua_getfield(L, arg, "ipv6_only");
  o.ipv6_only = lua_toboolean(L, -1);
  lua_getfield(L, arg, "send_buffer");
  lua_Integer v = luaL_optinteger(L, -1, 0);
  luaL_argcheck(L, v >= 0 && v <= 0xFFFFFFFF, arg, "send_buffer out of range");
  o.send_buffer_size = (uint32_t)v;
  lua_getfield(L, arg, "receive_buffer");
  v = luaL_optinteger(L, -1, 0);
  luaL_argcheck(L, v >= 0 && v <= 0xFFFFFFFF, arg, "receive_buffer out of range");
  o.receive_buffer_size = (uint32_t)v;
  lua_pop(L, 5); /* the strings stay referenced by the options table */
  if (!lp->loop) return lasync_fail(L, ASYNC_ECLOSED);
  ldgram *dg = new_dgram(L, lp, loop_idx, arg + 1);
  return opened(L, dg, async_udp_open(&dg->d, lp->loop, &o, &dg_proto, dg));
}

/* unix_datagram_open(local_path, remote_path, protocol): either path may be nil. */
static int l_unix_datagram_open(lua_State *L) {
  int arg, loop_idx;
  lloop *lp = lasync_optloop(L, &arg, &loop_idx);
  const char *local = lua_isnil(L, arg) ? NULL : luaL_checkstring(L, arg);
  const char *remote = lua_isnil(L, arg + 1) ? NULL : luaL_checkstring(L, arg + 1);
  if (!lp->loop) return lasync_fail(L, ASYNC_ECLOSED);
  ldgram *dg = new_dgram(L, lp, loop_idx, arg + 2);
  return opened(L, dg, async_unix_datagram_open(&dg->d, lp->loop, local, remote, &dg_proto, dg));
}

static int l_datagram_adopt(lua_State *L) {
  int arg, loop_idx;
  lloop *lp = lasync_optloop(L, &arg, &loop_idx);
  lua_Integer fd = luaL_checkinteger(L, arg);
  luaL_argcheck(L, fd >= -1 && fd <= 0x7FFFFFFF, arg, "fd out of range");
  if (!lp->loop) return lasync_fail(L, ASYNC_ECLOSED);
  ldgram *dg = new_dgram(L, lp, loop_idx, arg + 1);
  return opened(L, dg, async_datagram_adopt(&dg->d, lp->loop, (int)fd, &dg_proto, dg));
}

#define DGRAM()                                      \
  ldgram *dg = lasync_checkself(L, LASYNC_DATAGRAM); \
  if (!dg->d) return lasync_fail(L, ASYNC_ECLOSED);  \
  async_datagram *d = dg->d

static int dg_gc(lua_State *L) {
  ldgram *dg = lua_touserdata(L, 1);
  if (!dg->o.lp) return 0;
  dg->dead = 1;
  if (dg->d) {
    async_datagram *d = dg->d;
    dg->d = NULL;
    if (dg->o.lp->loop) async_datagram_close(d);
    async_datagram_release(d);
  }
  return 0;
}

/* send(data [, address]): address as text ("host:port", a path) or a binary
 * address from async.addr_parse/addr_make. */
static int m_send(lua_State *L) {
  DGRAM();
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  int rc;
  LASYNC_ENTER(dg->o.lp, L);
  if (lua_isnoneornil(L, 3)) {
    rc = async_datagram_send(d, data, len, NULL, 0);
  } else {
    size_t alen;
    const char *a = luaL_checklstring(L, 3, &alen);
    if (memchr(a, 0, alen))
      rc = async_datagram_send(d, data, len, (const struct sockaddr *)a, alen);
    else
      rc = async_datagram_sendto(d, data, len, a);
  }
  LASYNC_LEAVE(dg->o.lp);
  return lasync_result(L, rc);
}

LASYNC_TRANSPORT_OPS(dgram_ops, LASYNC_DATAGRAM, ldgram, d, async_datagram_close, async_datagram_abort,
                     async_datagram_pause_reading, async_datagram_resume_reading, async_datagram_is_reading,
                     async_datagram_set_write_limits, async_datagram_get_write_limits,
                     async_datagram_write_buffer_size);

static int m_fd(lua_State *L) {
  DGRAM();
  int rc = async_datagram_fd(d);
  if (rc < 0) return lasync_fail(L, rc);
  lua_pushinteger(L, rc);
  return 1;
}

static int m_loop(lua_State *L) {
  DGRAM();
  if (!async_datagram_loop(d) || async_datagram_userdata(d) != dg) return lasync_fail(L, ASYNC_ECLOSED);
  lua_getiuservalue(L, 1, UV_LOOP);
  return 1;
}

static int m_sockname(lua_State *L) {
  DGRAM();
  uint8_t buf[ASYNC_ADDR_MAXLEN];
  int rc = async_datagram_sockname((struct sockaddr *)buf, sizeof buf, d);
  if (rc < 0) return lasync_fail(L, rc);
  return lasync_push_addr(L, (struct sockaddr *)buf, (size_t)rc);
}

static int m_peername(lua_State *L) {
  DGRAM();
  uint8_t buf[ASYNC_ADDR_MAXLEN];
  int rc = async_datagram_peername((struct sockaddr *)buf, sizeof buf, d);
  if (rc < 0) return lasync_fail(L, rc);
  return lasync_push_addr(L, (struct sockaddr *)buf, (size_t)rc);
}

static int m_join_multicast(lua_State *L) {
  DGRAM();
  const char *group = luaL_checkstring(L, 2);
  const char *iface = luaL_optstring(L, 3, NULL);
  return lasync_result(L, async_datagram_join_multicast(d, group, iface));
}

static int m_leave_multicast(lua_State *L) {
  DGRAM();
  const char *group = luaL_checkstring(L, 2);
  const char *iface = luaL_optstring(L, 3, NULL);
  return lasync_result(L, async_datagram_leave_multicast(d, group, iface));
}

static int m_set_multicast_interface(lua_State *L) {
  DGRAM();
  return lasync_result(L, async_datagram_set_multicast_interface(d, luaL_optstring(L, 2, NULL)));
}

static int m_set_multicast_ttl(lua_State *L) {
  DGRAM();
  lua_Integer ttl = luaL_checkinteger(L, 2);
  if (ttl < -0x7FFFFFFF || ttl > 0x7FFFFFFF) return lasync_fail(L, ASYNC_EINVAL);
  return lasync_result(L, async_datagram_set_multicast_ttl(d, (int)ttl));
}

static int m_set_multicast_loop(lua_State *L) {
  DGRAM();
  return lasync_result(L, async_datagram_set_multicast_loop(d, lua_toboolean(L, 2)));
}

static int m_set_broadcast(lua_State *L) {
  DGRAM();
  return lasync_result(L, async_datagram_set_broadcast(d, lua_toboolean(L, 2)));
}

void lasync_open_datagram(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"send", m_send},
      {"fd", m_fd},
      {"loop", m_loop},
      {"sockname", m_sockname},
      {"peername", m_peername},
      {"join_multicast", m_join_multicast},
      {"leave_multicast", m_leave_multicast},
      {"set_multicast_interface", m_set_multicast_interface},
      {"set_multicast_ttl", m_set_multicast_ttl},
      {"set_multicast_loop", m_set_multicast_loop},
      {"set_broadcast", m_set_broadcast},
      {NULL, NULL},
  };
  lasync_newtransport(L, methods, dg_gc, &dgram_ops);
  static const luaL_Reg fns[] = {
      {"udp_open", l_udp_open},
      {"unix_datagram_open", l_unix_datagram_open},
      {"datagram_adopt", l_datagram_adopt},
      {NULL, NULL},
  };
  lasync_setloopfuncs(L, fns);
}
