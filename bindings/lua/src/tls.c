/* TLS contexts: async.tls_context{...}, a full userdata holding one
 * reference to its async_tls_context (released by ctx:close(), __close or
 * __gc). Streams made with s:tls(ctx, ...) retain it themselves, so a
 * context may go before its streams. The layer itself is in net.c. */
#include <string.h>

#include "lasync.h"

typedef struct ltls {
  async_tls_context *ctx; /* one reference, NULL once released */
} ltls;

static void flag(lua_State *L, const char *field, uint32_t bit, uint32_t *flags) {
  lua_getfield(L, 1, field);
  if (lua_toboolean(L, -1)) *flags |= bit;
  lua_pop(L, 1);
}

static const char *opt_file(lua_State *L, const char *field) {
  lua_getfield(L, 1, field); /* the table keeps the string alive */
  const char *s = lua_isnil(L, -1) ? NULL : luaL_checkstring(L, -1);
  lua_pop(L, 1);
  return s;
}

/* tls_context{mode = "client" | "server", ca_file =, cert_file =,
 * key_file =, alpn = {"h2", "http/1.1"} (or "h2,http/1.1"), no_verify =,
 * verify_client =, no_session_cache =, handshake_timeout = ms}. */
static int l_tls_context(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  static const char *const modes[] = {"client", "server", NULL};
  lua_getfield(L, 1, "mode");
  int side = luaL_checkoption(L, 2, "client", modes);
  async_tls_options o = ASYNC_TLS_OPTIONS_INIT;
  flag(L, "no_verify", ASYNC_TLS_NO_VERIFY, &o.flags);
  flag(L, "verify_client", ASYNC_TLS_VERIFY_CLIENT, &o.flags);
  flag(L, "no_session_cache", ASYNC_TLS_NO_SESSION_CACHE, &o.flags);
  o.ca_file = opt_file(L, "ca_file");
  o.cert_file = opt_file(L, "cert_file");
  o.key_file = opt_file(L, "key_file");
  lua_getfield(L, 1, "handshake_timeout");
  if (!lua_isnil(L, -1)) o.handshake_timeout_ms = lasync_checku64(L, -1);
  lua_pop(L, 1);
  int t = lua_getfield(L, 1, "alpn"); /* 3, kept: the joined string */
  if (t == LUA_TTABLE) {
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    lua_Integer n = luaL_len(L, 3);
    for (lua_Integer i = 1; i <= n; i++) {
      if (i > 1) luaL_addchar(&b, ',');
      lua_geti(L, 3, i);
      if (!lua_isstring(L, -1)) luaL_error(L, "alpn[%d] is not a string", (int)i);
      luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    o.alpn = lua_tostring(L, -1);
  } else if (t != LUA_TNIL) {
    o.alpn = luaL_checkstring(L, 3);
  }
  ltls *c = lua_newuserdatauv(L, sizeof *c, 0);
  c->ctx = NULL;
  luaL_setmetatable(L, LASYNC_TLS_CONTEXT);
  int rc = async_tls_context_new(&c->ctx, side ? ASYNC_TLS_SERVER : ASYNC_TLS_CLIENT, &o);
  if (rc < 0) return lasync_fail(L, rc);
  return 1;
}

async_tls_context *lasync_checktls(lua_State *L, int idx) {
  ltls *c = luaL_checkudata(L, idx, LASYNC_TLS_CONTEXT);
  if (!c->ctx) luaL_argerror(L, idx, "closed TLS context");
  return c->ctx;
}

/* ctx:add_server_name(name, other): a server context presents other's
 * certificate to clients that name name (SNI). */
static int ctx_add_server_name(lua_State *L) {
  async_tls_context *ctx = lasync_checktls(L, 1);
  const char *name = luaL_checkstring(L, 2);
  int rc = async_tls_context_add_server_name(ctx, name, lasync_checktls(L, 3));
  if (rc < 0) return lasync_fail(L, rc);
  lua_pushboolean(L, 1);
  return 1;
}

static int ctx_close(lua_State *L) {
  ltls *c = luaL_checkudata(L, 1, LASYNC_TLS_CONTEXT);
  if (c->ctx) async_tls_context_release(c->ctx);
  c->ctx = NULL;
  return 0;
}

void lasync_open_tls(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"add_server_name", ctx_add_server_name},
      {"close", ctx_close},
      {"__gc", ctx_close},
      {"__close", ctx_close},
      {NULL, NULL},
  };
  luaL_newmetatable(L, LASYNC_TLS_CONTEXT);
  luaL_setfuncs(L, methods, 0);
  lua_pushvalue(L, -1);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_pushcfunction(L, l_tls_context);
  lua_setfield(L, -2, "tls_context");
}
