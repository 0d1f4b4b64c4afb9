/* Addresses (binary sockaddr strings), DNS lookups and configuration. */
#define _POSIX_C_SOURCE 200809L
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "lasync.h"

/* An address as Lua sees it: its text ("192.0.2.1:80", "[::1]:80"), or for
 * a Unix address the path; nil for an empty one. */
int lasync_push_addr(lua_State *L, const struct sockaddr *sa, size_t len) {
  char text[ASYNC_ADDR_STRLEN];
  if (!sa || len == 0) {
    lua_pushnil(L);
    return 1;
  }
  int rc = async_addr_format(text, sizeof text, sa, len, 0);
  if (rc >= 0) {
    lua_pushlstring(L, text, (size_t)rc);
  } else if (sa->sa_family == AF_UNIX && len > sizeof(sa_family_t)) {
    const char *path = (const char *)sa + sizeof(sa_family_t);
    size_t n = len - sizeof(sa_family_t);
    if (path[0] == 0) { /* abstract: "@name" */
      lua_pushliteral(L, "@");
      lua_pushlstring(L, path + 1, n - 1);
      lua_concat(L, 2);
    } else {
      lua_pushlstring(L, path, strnlen(path, n));
    }
  } else {
    lua_pushnil(L);
  }
  return 1;
}

/* A binary sockaddr (from addr_parse, addr_make) or a text address. */
const struct sockaddr *lasync_checkaddr(lua_State *L, int idx, size_t *len, uint8_t *buf) {
  size_t n;
  const char *s = luaL_checklstring(L, idx, &n);
  if (n >= sizeof(sa_family_t) && n <= ASYNC_ADDR_MAXLEN && memchr(s, 0, n)) {
    memcpy(buf, s, n);
    *len = n;
    return (const struct sockaddr *)buf;
  }
  int rc = async_addr_parse((struct sockaddr *)buf, ASYNC_ADDR_MAXLEN, s, 0);
  if (rc < 0) return NULL;
  *len = (size_t)rc;
  return (const struct sockaddr *)buf;
}

static int l_addr_parse(lua_State *L) {
  const char *text = luaL_checkstring(L, 1);
  lua_Integer port = luaL_optinteger(L, 2, 0);
  luaL_argcheck(L, port >= 0 && port <= 65535, 2, "port out of range");
  uint8_t buf[ASYNC_ADDR_MAXLEN];
  int rc = async_addr_parse((struct sockaddr *)buf, sizeof buf, text, (uint16_t)port);
  if (rc < 0) return lasync_fail(L, rc);
  lua_pushlstring(L, (const char *)buf, (size_t)rc);
  return 1;
}

static const struct sockaddr *binary_addr(lua_State *L, int idx, size_t *len) {
  const char *s = luaL_checklstring(L, idx, len);
  return (const struct sockaddr *)s;
}

static int l_addr_format(lua_State *L) {
  size_t len;
  const struct sockaddr *sa = binary_addr(L, 1, &len);
  uint32_t flags = lua_toboolean(L, 2) ? ASYNC_ADDR_NOPORT : 0;
  char text[ASYNC_ADDR_STRLEN];
  int rc = async_addr_format(text, sizeof text, sa, len, flags);
  if (rc < 0) return lasync_fail(L, rc);
  lua_pushlstring(L, text, (size_t)rc);
  return 1;
}

static int l_addr_port(lua_State *L) {
  size_t len;
  const struct sockaddr *sa = binary_addr(L, 1, &len);
  int rc = async_addr_port(sa, len);
  if (rc < 0) return lasync_fail(L, rc);
  lua_pushinteger(L, rc);
  return 1;
}

static int l_addr_family(lua_State *L) {
  size_t len;
  const struct sockaddr *sa = binary_addr(L, 1, &len);
  int rc = async_addr_get_family(sa, len);
  if (rc < 0) return lasync_fail(L, rc);
  lua_pushstring(L, rc == ASYNC_AF_INET ? "inet" : rc == ASYNC_AF_INET6 ? "inet6" : rc == ASYNC_AF_UNIX ? "unix" : "?");
  return 1;
}

static int l_addr_ip(lua_State *L) {
  size_t len;
  const struct sockaddr *sa = binary_addr(L, 1, &len);
  uint8_t ip[16];
  int rc = async_addr_get_ip(ip, sizeof ip, sa, len);
  if (rc < 0) return lasync_fail(L, rc);
  lua_pushlstring(L, (const char *)ip, (size_t)rc);
  return 1;
}

static int l_addr_scope_id(lua_State *L) {
  size_t len;
  const struct sockaddr *sa = binary_addr(L, 1, &len);
  uint32_t id;
  int rc = async_addr_get_scope_id(&id, sa, len);
  if (rc < 0) return lasync_fail(L, rc);
  lua_pushinteger(L, id);
  return 1;
}

static int l_addr_make(lua_State *L) {
  static const char *const fams[] = {"inet", "inet6", NULL};
  int fam = luaL_checkoption(L, 1, NULL, fams) == 0 ? ASYNC_AF_INET : ASYNC_AF_INET6;
  size_t iplen;
  const char *ip = luaL_checklstring(L, 2, &iplen);
  lua_Integer port = luaL_optinteger(L, 3, 0);
  lua_Integer scope = luaL_optinteger(L, 4, 0);
  luaL_argcheck(L, port >= 0 && port <= 65535, 3, "port out of range");
  luaL_argcheck(L, scope >= 0 && scope <= 0xFFFFFFFF, 4, "scope id out of range");
  uint8_t buf[ASYNC_ADDR_MAXLEN];
  int rc = async_addr_make((struct sockaddr *)buf, sizeof buf, fam, (const uint8_t *)ip, iplen, (uint16_t)port,
                           (uint32_t)scope);
  if (rc < 0) return lasync_fail(L, rc);
  lua_pushlstring(L, (const char *)buf, (size_t)rc);
  return 1;
}

static int l_addr_set_port(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  lua_Integer port = luaL_checkinteger(L, 2);
  luaL_argcheck(L, port >= 0 && port <= 65535, 2, "port out of range");
  uint8_t buf[ASYNC_ADDR_MAXLEN];
  if (len > sizeof buf) return lasync_fail(L, ASYNC_EINVAL);
  memcpy(buf, s, len);
  int rc = async_addr_set_port((struct sockaddr *)buf, len, (uint16_t)port);
  if (rc < 0) return lasync_fail(L, rc);
  lua_pushlstring(L, (const char *)buf, len);
  return 1;
}

/* ---- address lists -------------------------------------------------------------- */

static const char *family_name(int fam) { return fam == AF_INET ? "inet" : fam == AF_INET6 ? "inet6" : "?"; }

int lasync_push_addrinfo(lua_State *L, const async_addrinfo *ai) {
  int n = async_addrinfo_count(ai);
  if (n < 0) return lasync_fail(L, n);
  lua_createtable(L, n, 1);
  for (int i = 0; i < n; i++) {
    lua_createtable(L, 0, 5);
    const struct sockaddr *sa;
    if (async_addrinfo_addr(&sa, ai, (size_t)i) >= 0) {
      char text[ASYNC_ADDR_STRLEN];
      size_t len = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
      if (async_addr_format(text, sizeof text, sa, len, ASYNC_ADDR_NOPORT) >= 0) {
        lua_pushstring(L, text);
        lua_setfield(L, -2, "ip");
      }
      lua_pushinteger(L, async_addr_port(sa, len));
      lua_setfield(L, -2, "port");
      lua_pushlstring(L, (const char *)sa, len);
      lua_setfield(L, -2, "addr");
    }
    lua_pushstring(L, family_name(async_addrinfo_family(ai, (size_t)i)));
    lua_setfield(L, -2, "family");
    int t = async_addrinfo_socktype(ai, (size_t)i);
    if (t > 0) {
      lua_pushstring(L, t == SOCK_STREAM ? "stream" : t == SOCK_DGRAM ? "dgram" : "?");
      lua_setfield(L, -2, "socktype");
    }
    lua_pushinteger(L, async_addrinfo_protocol(ai, (size_t)i));
    lua_setfield(L, -2, "protocol");
    lua_rawseti(L, -2, i + 1);
  }
  const char *canon = async_addrinfo_canonname(ai);
  if (canon) {
    lua_pushstring(L, canon);
    lua_setfield(L, -2, "canonname");
  }
  return 1;
}

/* ---- addrinfo objects (future:addrinfo(), for listen_addrinfo) ---------------- */

static async_addrinfo *check_ai(lua_State *L) {
  async_addrinfo **ai = luaL_checkudata(L, 1, LASYNC_ADDRINFO);
  return *ai;
}

static int ai_gc(lua_State *L) {
  async_addrinfo **ai = lua_touserdata(L, 1);
  async_addrinfo_free(*ai);
  *ai = NULL;
  return 0;
}

static int ai_count(lua_State *L) {
  int rc = async_addrinfo_count(check_ai(L));
  if (rc < 0) return lasync_fail(L, rc);
  lua_pushinteger(L, rc);
  return 1;
}

static size_t ai_index(lua_State *L) {
  lua_Integer i = luaL_checkinteger(L, 2);
  return i >= 1 ? (size_t)(i - 1) : (size_t)-1;
}

static int ai_family(lua_State *L) {
  int rc = async_addrinfo_family(check_ai(L), ai_index(L));
  if (rc < 0) return lasync_fail(L, rc);
  lua_pushstring(L, family_name(rc));
  return 1;
}

static int ai_socktype(lua_State *L) {
  int rc = async_addrinfo_socktype(check_ai(L), ai_index(L));
  if (rc < 0) return lasync_fail(L, rc);
  lua_pushinteger(L, rc);
  return 1;
}

static int ai_protocol(lua_State *L) {
  int rc = async_addrinfo_protocol(check_ai(L), ai_index(L));
  if (rc < 0) return lasync_fail(L, rc);
  lua_pushinteger(L, rc);
  return 1;
}

static int ai_addr(lua_State *L) {
  const struct sockaddr *sa;
  int rc = async_addrinfo_addr(&sa, check_ai(L), ai_index(L));
  if (rc < 0) return lasync_fail(L, rc);
  lua_pushlstring(L, (const char *)sa, (size_t)rc);
  return 1;
}

static int ai_canonname(lua_State *L) {
  const char *c = async_addrinfo_canonname(check_ai(L));
  if (c)
    lua_pushstring(L, c);
  else
    lua_pushnil(L);
  return 1;
}

static int ai_list(lua_State *L) {
  async_addrinfo *ai = check_ai(L);
  if (!ai) return lasync_fail(L, ASYNC_ECLOSED);
  return lasync_push_addrinfo(L, ai);
}

/* future:addrinfo(): takes a getaddrinfo future's list as an object. */
static int f_addrinfo(lua_State *L) {
  lfuture *fu = lasync_checkfuture(L, 1);
  if (!fu->f) return lasync_fail(L, ASYNC_ECLOSED);
  if (fu->kind != LF_ADDRINFO) return lasync_fail(L, ASYNC_EINVAL);
  async_addrinfo **ai = lua_newuserdatauv(L, sizeof *ai, 0);
  *ai = NULL;
  luaL_setmetatable(L, LASYNC_ADDRINFO);
  int rc = async_addrinfo_take(ai, fu->f);
  if (rc < 0) return lasync_fail(L, rc);
  return 1;
}

/* ---- lookups --------------------------------------------------------------------- */

/* getaddrinfo(host, service [, {family=, socktype=, numerichost=, passive=,
 * canonname=, numericserv=}]) */
static int l_getaddrinfo(lua_State *L) {
  int arg, loop_idx;
  lloop *lp = lasync_optloop(L, &arg, &loop_idx);
  const char *host = lua_isnil(L, arg) ? NULL : luaL_checkstring(L, arg);
  const char *service = NULL;
  char portbuf[16];
  if (lua_type(L, arg + 1) == LUA_TNUMBER) {
    lua_Integer port = luaL_checkinteger(L, arg + 1);
    if (port < 0 || port > 0x7FFFFFFF) return lasync_fail(L, ASYNC_EINVAL);
    snprintf(portbuf, sizeof portbuf, "%d", (int)port);
    service = portbuf;
  } else if (!lua_isnoneornil(L, arg + 1)) {
    service = luaL_checkstring(L, arg + 1);
  }
  int family = AF_UNSPEC, socktype = 0;
  uint32_t flags = 0;
  int opt = arg + 2;
  if (!lua_isnoneornil(L, opt)) {
    luaL_checktype(L, opt, LUA_TTABLE);
    if (lua_getfield(L, opt, "family") == LUA_TSTRING) {
      const char *f = lua_tostring(L, -1);
      family = strcmp(f, "inet") == 0 ? AF_INET : strcmp(f, "inet6") == 0 ? AF_INET6 : -1;
    } else if (!lua_isnil(L, -1)) {
      family = (int)luaL_checkinteger(L, -1);
    }
    if (lua_getfield(L, opt, "socktype") == LUA_TSTRING) {
      const char *t = lua_tostring(L, -1);
      socktype = strcmp(t, "stream") == 0 ? SOCK_STREAM : strcmp(t, "dgram") == 0 ? SOCK_DGRAM : -1;
    } else if (!lua_isnil(L, -1)) {
      socktype = (int)luaL_checkinteger(L, -1);
    }
    static const struct {
      const char *name;
      uint32_t flag;
    } fl[] = {{"numerichost", ASYNC_DNS_NUMERICHOST},
              {"passive", ASYNC_DNS_PASSIVE},
              {"canonname", ASYNC_DNS_CANONNAME},
              {"numericserv", ASYNC_DNS_NUMERICSERV}};
    for (size_t i = 0; i < sizeof fl / sizeof fl[0]; i++) {
      lua_getfield(L, opt, fl[i].name);
      if (lua_toboolean(L, -1)) flags |= fl[i].flag;
      lua_pop(L, 1);
    }
    lua_pop(L, 2);
  }
  if (!lp->loop) return lasync_fail(L, ASYNC_ECLOSED);
  async_future *f;
  int rc = async_getaddrinfo(&f, lp->loop, host, service, family, socktype, flags);
  if (rc < 0) return lasync_fail(L, rc);
  lasync_newfuture(L, lp, loop_idx, f, LF_ADDRINFO);
  return 1;
}

/* getnameinfo(address [, {numerichost=, numericserv=, namereqd=, dgram=}]) */
static int l_getnameinfo(lua_State *L) {
  int arg, loop_idx;
  lloop *lp = lasync_optloop(L, &arg, &loop_idx);
  uint8_t buf[ASYNC_ADDR_MAXLEN];
  size_t len;
  const struct sockaddr *sa = lasync_checkaddr(L, arg, &len, buf);
  uint32_t flags = 0;
  int opt = arg + 1;
  if (!lua_isnoneornil(L, opt)) {
    luaL_checktype(L, opt, LUA_TTABLE);
    static const struct {
      const char *name;
      uint32_t flag;
    } fl[] = {{"numerichost", ASYNC_NI_NUMERICHOST},
              {"numericserv", ASYNC_NI_NUMERICSERV},
              {"namereqd", ASYNC_NI_NAMEREQD},
              {"dgram", ASYNC_NI_DGRAM}};
    for (size_t i = 0; i < sizeof fl / sizeof fl[0]; i++) {
      lua_getfield(L, opt, fl[i].name);
      if (lua_toboolean(L, -1)) flags |= fl[i].flag;
      lua_pop(L, 1);
    }
  }
  if (!sa) return lasync_fail(L, ASYNC_EINVAL);
  if (!lp->loop) return lasync_fail(L, ASYNC_ECLOSED);
  async_future *f;
  int rc = async_getnameinfo(&f, lp->loop, sa, len, flags);
  if (rc < 0) return lasync_fail(L, rc);
  lasync_newfuture(L, lp, loop_idx, f, LF_NAMEINFO);
  return 1;
}

/* ---- configuration ----------------------------------------------------------------- */

#define CONFIG()                                  \
  int arg, loop_idx;                              \
  lloop *lp = lasync_optloop(L, &arg, &loop_idx); \
  if (!lp->loop) return lasync_fail(L, ASYNC_ECLOSED)

static int l_dns_set_servers(lua_State *L) {
  CONFIG();
  const char *servers = lua_isnoneornil(L, arg) ? NULL : luaL_checkstring(L, arg);
  return lasync_result(L, async_dns_set_servers(lp->loop, servers));
}

static int l_dns_set_timeout(lua_State *L) {
  CONFIG();
  lua_Integer ms = luaL_checkinteger(L, arg), tries = luaL_checkinteger(L, arg + 1);
  if (ms < 0 || ms > 0xFFFFFFFF || tries < 0 || tries > 0xFFFFFFFF) return lasync_fail(L, ASYNC_EINVAL);
  return lasync_result(L, async_dns_set_timeout(lp->loop, (uint32_t)ms, (uint32_t)tries));
}

static int l_dns_set_deadline(lua_State *L) {
  CONFIG();
  return lasync_result(L, async_dns_set_deadline(lp->loop, lasync_checku64(L, arg)));
}

static int l_dns_set_rotate(lua_State *L) {
  CONFIG();
  return lasync_result(L, async_dns_set_rotate(lp->loop, lua_toboolean(L, arg)));
}

static int l_dns_set_hosts_file(lua_State *L) {
  CONFIG();
  const char *path = lua_isnoneornil(L, arg) ? NULL : luaL_checkstring(L, arg);
  return lasync_result(L, async_dns_set_hosts_file(lp->loop, path));
}

static int l_dns_set_search(lua_State *L) {
  CONFIG();
  const char *domains = lua_isnoneornil(L, arg) ? NULL : luaL_checkstring(L, arg);
  lua_Integer ndots = luaL_optinteger(L, arg + 1, 1);
  if (ndots < 0 || ndots > 0xFFFFFFFF) return lasync_fail(L, ASYNC_EINVAL);
  return lasync_result(L, async_dns_set_search(lp->loop, domains, (uint32_t)ndots));
}

void lasync_open_dns(lua_State *L) {
  static const luaL_Reg ai[] = {
      {"count", ai_count}, {"family", ai_family},       {"socktype", ai_socktype}, {"protocol", ai_protocol},
      {"addr", ai_addr},   {"canonname", ai_canonname}, {"list", ai_list},         {NULL, NULL},
  };
  lasync_newclass(L, LASYNC_ADDRINFO, ai, ai_gc);
  luaL_getmetatable(L, LASYNC_FUTURE);
  lua_pushcfunction(L, f_addrinfo);
  lua_setfield(L, -2, "addrinfo");
  lua_pop(L, 1);
  static const luaL_Reg addr[] = {
      {"addr_parse", l_addr_parse},
      {"addr_format", l_addr_format},
      {"addr_port", l_addr_port},
      {"addr_family", l_addr_family},
      {"addr_ip", l_addr_ip},
      {"addr_scope_id", l_addr_scope_id},
      {"addr_make", l_addr_make},
      {"addr_set_port", l_addr_set_port},
      {NULL, NULL},
  };
  luaL_setfuncs(L, addr, 0);
  static const luaL_Reg fns[] = {
      {"getaddrinfo", l_getaddrinfo},
      {"getnameinfo", l_getnameinfo},
      {"dns_set_servers", l_dns_set_servers},
      {"dns_set_timeout", l_dns_set_timeout},
      {"dns_set_deadline", l_dns_set_deadline},
      {"dns_set_rotate", l_dns_set_rotate},
      {"dns_set_hosts_file", l_dns_set_hosts_file},
      {"dns_set_search", l_dns_set_search},
      {NULL, NULL},
  };
  lasync_setloopfuncs(L, fns);
}
