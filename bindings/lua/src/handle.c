/* Handles: timers, watchers, hooks, signals (servers are in net.c), and the
 * methods every handle has. */
#include <string.h>

#include "lasync.h"

static const char *const handle_types[] = {LASYNC_TIMER,  LASYNC_WATCHER, LASYNC_HOOK,
                                           LASYNC_SIGNAL, LASYNC_SERVER,  NULL};

static lhandle *check_handle(lua_State *L, int idx) {
  void *self = lua_touserdata(L, idx);
  if (self && idx == 1 && lua_getmetatable(L, 1)) { /* a method of the handle's own class */
    int same = lua_rawequal(L, -1, lua_upvalueindex(1));
    lua_pop(L, 1);
    if (same) return self;
  }
  for (int i = 0; handle_types[i]; i++) {
    void *p = luaL_testudata(L, idx, handle_types[i]);
    if (p) return p;
  }
  luaL_typeerror(L, idx, "async handle");
  return NULL;
}

static lhandle *check_type(lua_State *L, int idx, const char *tname) {
  return idx == 1 ? lasync_checkself(L, tname) : luaL_checkudata(L, idx, tname);
}

/* Pinned while it may call back: active (started) or closing. */
static void sync_pin(lhandle *hd, lua_State *L, int idx) {
  if (hd->h && (hd->closing || async_handle_is_active(hd->h) == 1))
    lasync_pin(&hd->o, L, idx);
  else if (!hd->closing)
    lasync_unpin(&hd->o, L);
}

/* The close callback of every handle (async_handle_close() and shutdown). */
void lasync_handle_closed(async_handle *h, void *ud) {
  (void)h;
  lhandle *hd = ud;
  if (!hd) return; /* collected: nothing to tell */
  lloop *lp = hd->o.lp;
  lua_State *L = lp->L;
  hd->h = NULL;
  hd->closing = 0;
  if (hd->o.self_ref <= 0) return;
  int base = lasync_tramp_begin(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, hd->o.self_ref); /* base + 2: keeps it alive */
  lasync_unpin(&hd->o, L);
  if (lua_getiuservalue(L, base + 2, UV_EXTRA) == LUA_TFUNCTION) {
    lua_pushvalue(L, base + 2);
    lasync_pcall(lp, L, 1, 0, base);
  }
  lua_settop(L, base + 2);
  lua_pushnil(L);
  lua_setiuservalue(L, base + 2, UV_EXTRA);
  lua_pushnil(L);
  lua_setiuservalue(L, base + 2, UV_CB);
  lasync_after(lp, L, base);
}

static int closed(lua_State *L) { return lasync_fail(L, ASYNC_ECLOSED); }

static int h_close(lua_State *L) {
  lhandle *hd = check_handle(L, 1);
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TFUNCTION);
  if (!hd->h || hd->closing) return closed(L);
  lua_settop(L, 2);
  lua_setiuservalue(L, 1, UV_EXTRA);
  int rc = async_handle_close(hd->h, lasync_handle_closed);
  if (rc < 0) return lasync_fail(L, rc);
  hd->closing = 1;
  lasync_pin(&hd->o, L, 1);
  lua_pushboolean(L, 1);
  return 1;
}

/* __gc and __close: an open handle is closed; nothing is called back. */
int lasync_handle_gc(lua_State *L) {
  lhandle *hd = lua_touserdata(L, 1);
  if (!hd->h) return 0;
  async_handle_set_userdata(hd->h, NULL);
  if (!hd->closing) async_handle_close(hd->h, NULL);
  hd->h = NULL;
  hd->closing = 0;
  if (hd->o.lp) lasync_unpin(&hd->o, L);
  return 0;
}

static int h_close_method(lua_State *L) {
  /* __close of a <close> variable: close without a callback, keep the object usable for queries */
  lhandle *hd = check_handle(L, 1);
  if (!hd->h || hd->closing) return 0;
  if (async_handle_close(hd->h, lasync_handle_closed) == 0) {
    hd->closing = 1;
    lasync_pin(&hd->o, L, 1);
  }
  return 0;
}

#define HANDLE_BOOL_QUERY(name, fn)        \
  static int name(lua_State *L) {          \
    lhandle *hd = check_handle(L, 1);      \
    if (!hd->h) return closed(L);          \
    int rc = fn(hd->h);                    \
    if (rc < 0) return lasync_fail(L, rc); \
    lua_pushboolean(L, rc);                \
    return 1;                              \
  }
HANDLE_BOOL_QUERY(h_has_ref, async_handle_has_ref)
HANDLE_BOOL_QUERY(h_is_active, async_handle_is_active)
HANDLE_BOOL_QUERY(h_is_closing, async_handle_is_closing)

static int h_ref(lua_State *L) {
  lhandle *hd = check_handle(L, 1);
  if (!hd->h) return closed(L);
  return lasync_result(L, async_handle_ref(hd->h));
}

static int h_unref(lua_State *L) {
  lhandle *hd = check_handle(L, 1);
  if (!hd->h) return closed(L);
  return lasync_result(L, async_handle_unref(hd->h));
}

static int h_loop(lua_State *L) {
  lhandle *hd = check_handle(L, 1);
  if (!hd->h || !async_handle_loop(hd->h) || async_handle_userdata(hd->h) != hd) return closed(L);
  lua_getiuservalue(L, 1, UV_LOOP);
  return 1;
}

static int h_tostring(lua_State *L) {
  lhandle *hd = lua_touserdata(L, 1);
  lua_getmetatable(L, 1);
  lua_getfield(L, -1, "__name");
  lua_pushfstring(L, "%s: %p%s", lua_tostring(L, -1), (void *)hd,
                  hd->h ? (hd->closing ? " (closing)" : "") : " (closed)");
  return 1;
}

#define HANDLE_METHODS                                                                                        \
  {"close", h_close}, {"ref", h_ref}, {"unref", h_unref}, {"has_ref", h_has_ref}, {"is_active", h_is_active}, \
      {"is_closing", h_is_closing}, {"loop", h_loop}, {"__close", h_close_method}, {                          \
    "__tostring", h_tostring                                                                                  \
  }

/* A new handle object on the loop at loop_idx; its C handle set by the caller.
 * Timers, watchers, hooks and signals use user values up to UV_EXTRA only:
 * two fewer slots per object (1M timers: 32 MB). */
static lhandle *new_handle(lua_State *L, lloop *lp, int loop_idx, const char *tname) {
  lhandle *hd = lasync_newobj_uv(L, sizeof *hd, tname, loop_idx, UV_EXTRA);
  hd->o.lp = lp;
  return hd;
}

/* The event trampoline shared by timers, watchers, hooks and signals:
 * cb(handle, extra...) with up to one integer argument. Only a timer stops
 * by itself (a one-shot that fired): the others change state only through
 * their methods, which sync the pin themselves, so they skip the query. */
static inline void fire(lhandle *hd, int nint, lua_Integer v, int may_stop) {
  lloop *lp = hd->o.lp;
  lua_State *L = lp->L;
  if (hd->o.self_ref <= 0) return; /* not started by Lua: nothing to call */
  int base = lasync_tramp_begin(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, hd->o.self_ref); /* base + 2 */
  lua_getiuservalue(L, base + 2, UV_CB);
  lua_pushvalue(L, base + 2);
  if (nint) lua_pushinteger(L, v);
  lasync_pcall(lp, L, 1 + nint, 0, base);
  if (may_stop) sync_pin(hd, L, base + 2);
  lasync_after(lp, L, base);
}

/* ---- timer ----------------------------------------------------------------- */

static void on_timer(async_timer *t, void *ud) {
  (void)t;
  if (ud) fire(ud, 0, 0, 1);
}

static int l_timer(lua_State *L) {
  int arg, loop_idx;
  lloop *lp = lasync_optloop(L, &arg, &loop_idx);
  if (!lp->loop) return closed(L);
  lhandle *hd = new_handle(L, lp, loop_idx, LASYNC_TIMER);
  async_timer *t;
  int rc = async_timer_new(&t, lp->loop, hd);
  if (rc < 0) return lasync_fail(L, rc);
  hd->h = async_timer_handle(t);
  return 1;
}

static async_timer *timer_of(lua_State *L, lhandle **out) {
  lhandle *hd = check_type(L, 1, LASYNC_TIMER);
  *out = hd;
  return hd->h ? (async_timer *)hd->h : NULL;
}

static int t_start(lua_State *L) {
  lhandle *hd;
  async_timer *t = timer_of(L, &hd);
  uint64_t timeout = lasync_checku64(L, 2);
  uint64_t repeat = 0;
  int cb = 3;
  if (lua_type(L, 3) == LUA_TNUMBER) {
    repeat = lasync_checku64(L, 3);
    cb = 4;
  }
  luaL_checktype(L, cb, LUA_TFUNCTION);
  if (!t || hd->closing) return closed(L);
  lua_pushvalue(L, cb);
  lua_setiuservalue(L, 1, UV_CB);
  int rc = async_timer_start(t, timeout, repeat, on_timer);
  sync_pin(hd, L, 1);
  return lasync_result(L, rc);
}

static int t_stop(lua_State *L) {
  lhandle *hd;
  async_timer *t = timer_of(L, &hd);
  if (!t) return closed(L);
  int rc = async_timer_stop(t);
  sync_pin(hd, L, 1);
  return lasync_result(L, rc);
}

static int t_again(lua_State *L) {
  lhandle *hd;
  async_timer *t = timer_of(L, &hd);
  if (!t) return closed(L);
  int rc = async_timer_again(t);
  sync_pin(hd, L, 1);
  return lasync_result(L, rc);
}

static int t_set_repeat(lua_State *L) {
  lhandle *hd;
  async_timer *t = timer_of(L, &hd);
  uint64_t repeat = lasync_checku64(L, 2);
  if (!t) return closed(L);
  return lasync_result(L, async_timer_set_repeat(t, repeat));
}

static int t_get_repeat(lua_State *L) {
  lhandle *hd;
  async_timer *t = timer_of(L, &hd);
  if (!t) return closed(L);
  uint64_t v;
  int rc = async_timer_get_repeat(&v, t);
  if (rc < 0) return lasync_fail(L, rc);
  lua_pushinteger(L, (lua_Integer)v);
  return 1;
}

static int t_due_in(lua_State *L) {
  lhandle *hd;
  async_timer *t = timer_of(L, &hd);
  if (!t) return closed(L);
  uint64_t v;
  int rc = async_timer_due_in(&v, t);
  if (rc < 0) return lasync_fail(L, rc);
  lua_pushinteger(L, (lua_Integer)v);
  return 1;
}

/* ---- watcher ----------------------------------------------------------------- */

static void on_watch(async_watcher *w, uint32_t revents, void *ud) {
  (void)w;
  if (ud) fire(ud, 1, revents, 0);
}

static uint32_t check_events(lua_State *L, int idx) {
  if (lua_type(L, idx) == LUA_TNUMBER) {
    lua_Integer v = luaL_checkinteger(L, idx);
    luaL_argcheck(L, v >= 0 && v <= 0xFFFFFFFF, idx, "events out of range");
    return (uint32_t)v;
  }
  const char *s = luaL_checkstring(L, idx);
  uint32_t ev = 0;
  if (strchr(s, 'r')) ev |= 1;
  if (strchr(s, 'w')) ev |= 2;
  luaL_argcheck(L, strspn(s, "rw") == strlen(s), idx, "events: a string of 'r' and 'w' expected");
  return ev;
}

static int l_watcher(lua_State *L) {
  int arg, loop_idx;
  lloop *lp = lasync_optloop(L, &arg, &loop_idx);
  lua_Integer fd = luaL_checkinteger(L, arg);
  luaL_argcheck(L, fd >= -1 && fd <= 0x7FFFFFFF, arg, "fd out of range");
  if (!lp->loop) return closed(L);
  lhandle *hd = new_handle(L, lp, loop_idx, LASYNC_WATCHER);
  async_watcher *w;
  int rc = async_watcher_new(&w, lp->loop, (int)fd, hd);
  if (rc < 0) return lasync_fail(L, rc);
  hd->h = async_watcher_handle(w);
  return 1;
}

static int w_start(lua_State *L) {
  lhandle *hd = check_type(L, 1, LASYNC_WATCHER);
  uint32_t ev = check_events(L, 2);
  luaL_checktype(L, 3, LUA_TFUNCTION);
  if (!hd->h || hd->closing) return closed(L);
  lua_pushvalue(L, 3);
  lua_setiuservalue(L, 1, UV_CB);
  int rc = async_watcher_start((async_watcher *)hd->h, ev, on_watch);
  sync_pin(hd, L, 1);
  return lasync_result(L, rc);
}

static int w_set_events(lua_State *L) {
  lhandle *hd = check_type(L, 1, LASYNC_WATCHER);
  uint32_t ev = check_events(L, 2);
  if (!hd->h) return closed(L);
  int rc = async_watcher_set_events((async_watcher *)hd->h, ev);
  sync_pin(hd, L, 1);
  return lasync_result(L, rc);
}

static int w_stop(lua_State *L) {
  lhandle *hd = check_type(L, 1, LASYNC_WATCHER);
  if (!hd->h) return closed(L);
  int rc = async_watcher_stop((async_watcher *)hd->h);
  sync_pin(hd, L, 1);
  return lasync_result(L, rc);
}

static int w_fd(lua_State *L) {
  lhandle *hd = check_type(L, 1, LASYNC_WATCHER);
  if (!hd->h) return closed(L);
  int rc = async_watcher_fd((async_watcher *)hd->h);
  if (rc < 0) return lasync_fail(L, rc);
  lua_pushinteger(L, rc);
  return 1;
}

/* ---- hook ---------------------------------------------------------------------- */

static void on_hook(async_hook *hk, void *ud) {
  (void)hk;
  if (ud) fire(ud, 0, 0, 0);
}

static int l_hook(lua_State *L) {
  int arg, loop_idx;
  lloop *lp = lasync_optloop(L, &arg, &loop_idx);
  static const char *const kinds[] = {"prepare", "check", "idle", NULL};
  int kind = luaL_checkoption(L, arg, NULL, kinds);
  if (!lp->loop) return closed(L);
  lhandle *hd = new_handle(L, lp, loop_idx, LASYNC_HOOK);
  async_hook *hk;
  int rc = async_hook_new(&hk, lp->loop, kind, hd);
  if (rc < 0) return lasync_fail(L, rc);
  hd->h = async_hook_handle(hk);
  return 1;
}

static int k_start(lua_State *L) {
  lhandle *hd = check_type(L, 1, LASYNC_HOOK);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  if (!hd->h || hd->closing) return closed(L);
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, 1, UV_CB);
  int rc = async_hook_start((async_hook *)hd->h, on_hook);
  sync_pin(hd, L, 1);
  return lasync_result(L, rc);
}

static int k_stop(lua_State *L) {
  lhandle *hd = check_type(L, 1, LASYNC_HOOK);
  if (!hd->h) return closed(L);
  int rc = async_hook_stop((async_hook *)hd->h);
  sync_pin(hd, L, 1);
  return lasync_result(L, rc);
}

static int k_kind(lua_State *L) {
  lhandle *hd = check_type(L, 1, LASYNC_HOOK);
  if (!hd->h) return closed(L);
  int rc = async_hook_get_kind((async_hook *)hd->h);
  if (rc < 0) return lasync_fail(L, rc);
  static const char *const kinds[] = {"prepare", "check", "idle"};
  lua_pushstring(L, rc <= 2 ? kinds[rc] : "?");
  return 1;
}

/* ---- signal -------------------------------------------------------------------- */

static void on_signal(async_signal *s, int signum, void *ud) {
  (void)s;
  if (ud) fire(ud, 1, signum, 0);
}

static int l_signal(lua_State *L) {
  int arg, loop_idx;
  lloop *lp = lasync_optloop(L, &arg, &loop_idx);
  if (!lp->loop) return closed(L);
  lhandle *hd = new_handle(L, lp, loop_idx, LASYNC_SIGNAL);
  async_signal *s;
  int rc = async_signal_new(&s, lp->loop, hd);
  if (rc < 0) return lasync_fail(L, rc);
  hd->h = async_signal_handle(s);
  return 1;
}

static int s_start(lua_State *L) {
  lhandle *hd = check_type(L, 1, LASYNC_SIGNAL);
  lua_Integer signum = luaL_checkinteger(L, 2);
  luaL_checktype(L, 3, LUA_TFUNCTION);
  if (signum < -1 || signum > 0x7FFFFFFF) return lasync_fail(L, ASYNC_EINVAL);
  if (!hd->h || hd->closing) return closed(L);
  lua_pushvalue(L, 3);
  lua_setiuservalue(L, 1, UV_CB);
  int rc = async_signal_start((async_signal *)hd->h, (int)signum, on_signal);
  sync_pin(hd, L, 1);
  return lasync_result(L, rc);
}

static int s_stop(lua_State *L) {
  lhandle *hd = check_type(L, 1, LASYNC_SIGNAL);
  if (!hd->h) return closed(L);
  int rc = async_signal_stop((async_signal *)hd->h);
  sync_pin(hd, L, 1);
  return lasync_result(L, rc);
}

static int s_signum(lua_State *L) {
  lhandle *hd = check_type(L, 1, LASYNC_SIGNAL);
  if (!hd->h) return closed(L);
  int rc = async_signal_signum((async_signal *)hd->h);
  if (rc < 0) return lasync_fail(L, rc);
  lua_pushinteger(L, rc);
  return 1;
}

/* Servers (net.c) share the handle machinery. */
void lasync_handle_sync_pin(void *hd, lua_State *L, int idx) { sync_pin(hd, L, idx); }
const luaL_Reg lasync_handle_methods[] = {HANDLE_METHODS, {NULL, NULL}};

void lasync_open_handles(lua_State *L) {
  static const luaL_Reg timer[] = {HANDLE_METHODS,
                                   {"start", t_start},
                                   {"stop", t_stop},
                                   {"again", t_again},
                                   {"set_repeat", t_set_repeat},
                                   {"get_repeat", t_get_repeat},
                                   {"due_in", t_due_in},
                                   {NULL, NULL}};
  static const luaL_Reg watcher[] = {HANDLE_METHODS,   {"start", w_start}, {"set_events", w_set_events},
                                     {"stop", w_stop}, {"fd", w_fd},       {NULL, NULL}};
  static const luaL_Reg hook[] = {HANDLE_METHODS, {"start", k_start}, {"stop", k_stop}, {"kind", k_kind}, {NULL, NULL}};
  static const luaL_Reg signal[] = {
      HANDLE_METHODS, {"start", s_start}, {"stop", s_stop}, {"signum", s_signum}, {NULL, NULL}};
  lasync_newclass(L, LASYNC_TIMER, timer, lasync_handle_gc);
  lasync_newclass(L, LASYNC_WATCHER, watcher, lasync_handle_gc);
  lasync_newclass(L, LASYNC_HOOK, hook, lasync_handle_gc);
  lasync_newclass(L, LASYNC_SIGNAL, signal, lasync_handle_gc);
  static const luaL_Reg fns[] = {
      {"timer", l_timer}, {"watcher", l_watcher}, {"hook", l_hook}, {"signal", l_signal}, {NULL, NULL}};
  lasync_setloopfuncs(L, fns);
}
