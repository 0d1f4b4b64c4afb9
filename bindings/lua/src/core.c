/* Shared machinery (references, pinning, errors, trampolines) and the loop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lasync.h"

#define MOD_KEY "async.mod"
#define DEFAULT_KEY "async.default_loop"

lmod *lasync_mod(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, MOD_KEY);
  lmod *m = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return m;
}

/* Pops the value on top into the registry; counted for async.debug_refs(). */
int lasync_ref(lloop *lp, lua_State *L) {
  int ref = luaL_ref(L, LUA_REGISTRYINDEX);
  if (ref > 0) lp->mod->refs++;
  return ref;
}

void lasync_unref(lloop *lp, lua_State *L, int *ref) {
  if (*ref <= 0) return;
  luaL_unref(L, LUA_REGISTRYINDEX, *ref);
  lp->mod->refs--;
  *ref = LUA_NOREF;
}

void lasync_pin(lobj *o, lua_State *L, int idx) {
  if (o->self_ref > 0) return;
  lua_pushvalue(L, idx);
  o->self_ref = lasync_ref(o->lp, L);
}

void lasync_unpin(lobj *o, lua_State *L) { lasync_unref(o->lp, L, &o->self_ref); }

static void push_error_name(lua_State *L, int code) {
  if (code == LASYNC_ELUA) {
    lua_pushliteral(L, "ELUA");
    return;
  }
  const char *name = async_err_name(code);
  if (strncmp(name, "ASYNC_", 6) == 0) name += 6;
  lua_pushstring(L, name);
}

/* nil, "ENAME: description", "ENAME", as luv. */
int lasync_fail(lua_State *L, int code) {
  lua_pushnil(L);
  push_error_name(L, code);
  lua_pushfstring(L, "%s: %s", lua_tostring(L, -1), async_strerror(code));
  lua_insert(L, -2);
  return 3;
}

/* A status-only call: true, or the failure triple. */
int lasync_result(lua_State *L, int code) {
  if (code < 0) return lasync_fail(L, code);
  lua_pushboolean(L, 1);
  return 1;
}

/* An error code given as a negative integer or a name ("ETIMEDOUT"). */
int lasync_check_error_name(lua_State *L, int idx) {
  if (lua_type(L, idx) == LUA_TNUMBER) {
    lua_Integer code = luaL_checkinteger(L, idx);
    luaL_argcheck(L, code < 0 && code > -100000, idx, "a negative error code expected");
    return (int)code;
  }
  const char *name = luaL_checkstring(L, idx);
  for (int code = -1; code > -100; code--) {
    const char *n = async_err_name(code);
    if (strcmp(n, "ASYNC_UNKNOWN") == 0) break;
    if (strcmp(n + 6, name) == 0 || strcmp(n, name) == 0) return code;
  }
  return luaL_argerror(L, idx, "unknown error name");
}

uint64_t lasync_checku64(lua_State *L, int idx) {
  lua_Integer v = luaL_checkinteger(L, idx);
  luaL_argcheck(L, v >= 0, idx, "must not be negative");
  return (uint64_t)v;
}

/* A size argument: an integer, not negative (lasync_checku64). */
size_t lasync_check_size(lua_State *L, int idx) { return (size_t)lasync_checku64(L, idx); }

const char *lasync_obj_kind(int kind) {
  static const char *const names[] = {"?",      "timer",    "watcher", "hook",   "signal",     "server",
                                      "stream", "datagram", "future",  "reader", "reconnector"};
  return kind >= 1 && kind <= 10 ? names[kind] : "?";
}

/* The message handler of every trampoline: the error with a traceback. */
int lasync_msgh(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (!msg) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* Protected: fn(level, message) with the message given as a C string, so
 * that making the Lua string happens under the pcall. */
static int log_call(lua_State *L) {
  lua_pushstring(L, lua_touserdata(L, 3));
  lua_replace(L, 3);
  lua_call(L, 2, 0);
  return 0;
}

/* Protected: "ENAME: description" of an error code. */
int lasync_error_text(lua_State *L) {
  int code = (int)lua_tointeger(L, 1);
  lasync_fail(L, code);
  lua_pop(L, 1);
  return 1;
}

static void log_fallback(lloop *lp, lua_State *L, const char *msg) {
  if (lp->log_ref > 0) {
    lua_pushcfunction(L, lasync_msgh);
    lua_pushcfunction(L, log_call);
    lua_rawgeti(L, LUA_REGISTRYINDEX, lp->log_ref);
    lua_pushinteger(L, ASYNC_LOG_ERROR);
    lua_pushlightuserdata(L, (void *)msg);
    if (lua_pcall(L, 3, 0, -5) == LUA_OK) {
      lua_pop(L, 1);
      return;
    }
    fprintf(stderr, "async: the log function failed: %s\n", lua_tostring(L, -1));
    lua_pop(L, 2);
  }
  fprintf(stderr, "async: error in a callback: %s\n", msg);
}

/* Delivers the error on top of the stack (popped) to the loop's handler. */
void lasync_report(lloop *lp, lua_State *L) {
  if (lp->errh_ref > 0) {
    lua_pushcfunction(L, lasync_msgh);
    lua_rawgeti(L, LUA_REGISTRYINDEX, lp->errh_ref);
    lua_pushvalue(L, -3);
    if (lua_pcall(L, 1, 0, -3) == LUA_OK) {
      lua_pop(L, 2);
      return;
    }
    /* The handler failed too: both go to the log. */
    const char *msg = lua_tostring(L, -1);
    log_fallback(lp, L, msg ? msg : "(the error handler failed)");
    lua_pop(L, 2);
  }
  const char *msg = lua_tostring(L, -1);
  log_fallback(lp, L, msg ? msg : "(error object is not a string)");
  lua_pop(L, 1);
}

/* Sets the metatable of class tname on the object on top; the class's
 * registry key is cached in the module state by the name's address. */
static void set_class(lua_State *L, lmod *m, const char *tname) {
  for (int i = 0; i < m->nclasses; i++) {
    if (m->classes[i].tname == tname) {
      lua_rawgeti(L, LUA_REGISTRYINDEX, m->classes[i].ref);
      lua_setmetatable(L, -2);
      return;
    }
  }
  luaL_setmetatable(L, tname);
  if (m->nclasses < (int)(sizeof m->classes / sizeof m->classes[0])) {
    luaL_getmetatable(L, tname);
    m->classes[m->nclasses].tname = tname;
    m->classes[m->nclasses++].ref = luaL_ref(L, LUA_REGISTRYINDEX); /* the state's own, as the metatable */
  }
}

void *lasync_newobj_uv(lua_State *L, size_t size, const char *tname, int loop_idx, int nuv) {
  void *p = lua_newuserdatauv(L, size, nuv);
  memset(p, 0, size);
  ((lobj *)p)->self_ref = LUA_NOREF;
  if (loop_idx) {
    set_class(L, ((lloop *)lua_touserdata(L, loop_idx))->mod, tname);
    lua_pushvalue(L, loop_idx);
    lua_setiuservalue(L, -2, UV_LOOP);
  } else {
    luaL_setmetatable(L, tname);
  }
  return p;
}

void *lasync_newobj(lua_State *L, size_t size, const char *tname, int loop_idx) {
  return lasync_newobj_uv(L, size, tname, loop_idx, UV_COUNT);
}

void lasync_list_add(lnode *head, lnode *n) {
  n->next = head->next;
  n->prev = head;
  head->next->prev = n;
  head->next = n;
}

void lasync_list_del(lnode *n) {
  if (!n->next) return;
  n->prev->next = n->next;
  n->next->prev = n->prev;
  n->next = n->prev = NULL;
}

/* Functions that take an optional loop first (lasync_optloop) are both
 * module functions (the module table on top) and loop methods. */
void lasync_setloopfuncs(lua_State *L, const luaL_Reg *l) {
  luaL_setfuncs(L, l, 0);
  luaL_getmetatable(L, LASYNC_LOOP);
  luaL_setfuncs(L, l, 0);
  lua_pop(L, 1);
}

/* A metatable whose __index is itself, with __gc and __close = gc. */
void lasync_newclass(lua_State *L, const char *tname, const luaL_Reg *methods, lua_CFunction gc) {
  luaL_newmetatable(L, tname);
  lua_pushvalue(L, -1); /* the upvalue of lasync_checkself */
  luaL_setfuncs(L, methods, 1);
  lua_pushvalue(L, -1);
  lua_setfield(L, -2, "__index");
  if (gc) {
    lua_pushcfunction(L, gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
}

/* ---- loop ------------------------------------------------------------------ */

lloop *lasync_checkloop(lua_State *L, int idx) { return luaL_checkudata(L, idx, LASYNC_LOOP); }

/* The tag every loop's userdata starts with: only this module's C code makes
 * userdata of that size holding its address (Lua code cannot make userdata). */
const char lasync_loop_tag = 0;

static int loop_new_at(lua_State *L) {
  lloop *lp = lua_newuserdatauv(L, sizeof *lp, 1);
  memset(lp, 0, sizeof *lp);
  lp->tag = &lasync_loop_tag;
  lp->errh_ref = lp->log_ref = lp->soon_ref = LUA_NOREF;
  lp->futures.next = lp->futures.prev = &lp->futures;
  lp->readers.next = lp->readers.prev = &lp->readers;
  lp->processes.next = lp->processes.prev = &lp->processes;
  lp->mod = lasync_mod(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  lp->L = lua_tothread(L, -1);
  lua_pop(L, 1);
  const char *gc = getenv("ASYNC_LUA_GC_EACH");
  lp->gc_each = gc && *gc && strcmp(gc, "0") != 0;
  int rc = async_loop_new(&lp->loop);
  if (rc < 0) {
    lp->loop = NULL;
    lua_pop(L, 1);
    return lasync_fail(L, rc);
  }
  async_loop_set_userdata(lp->loop, lp);
  lua_newtable(L);
  lp->soon_ref = luaL_ref(L, LUA_REGISTRYINDEX); /* the loop's own: freed with it */
  luaL_setmetatable(L, LASYNC_LOOP);
  return 1;
}

static int l_new_loop(lua_State *L) { return loop_new_at(L); }

static void push_default(lua_State *L) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, DEFAULT_KEY) != LUA_TNIL) return;
  lua_pop(L, 1);
  if (loop_new_at(L) != 1) luaL_error(L, "async: cannot create the default loop: %s", lua_tostring(L, -2));
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, DEFAULT_KEY);
}

static int l_default_loop(lua_State *L) {
  push_default(L);
  return 1;
}

/* Loop methods double as module functions on the default loop: a loop as the
 * first argument is used, otherwise the default loop is inserted at index 1:
 * either way the loop is at index 1 and the arguments start at 2. */
lloop *lasync_optloop(lua_State *L, int *arg, int *loop_idx) {
  /* A loop's userdata is told by its size and tag: a metatable comparison
   * costs more than the call_soon it guards. */
  lloop *lp = lua_touserdata(L, 1);
  if (lp && lua_rawlen(L, 1) == sizeof *lp && lp->tag == &lasync_loop_tag) {
    *arg = 2;
    *loop_idx = 1;
    return lp;
  }
  push_default(L);
  lua_insert(L, 1); /* the same stack shape as a method call */
  *loop_idx = 1;
  *arg = 2;
  return lua_touserdata(L, 1);
}

#define OPTLOOP()                                 \
  int arg, loop_idx;                              \
  lloop *lp = lasync_optloop(L, &arg, &loop_idx); \
  (void)arg;                                      \
  (void)loop_idx;                                 \
  if (!lp->loop) return lasync_fail(L, ASYNC_ECLOSED)

static int l_run(lua_State *L) {
  OPTLOOP();
  static const char *const modes[] = {"default", "once", "nowait", NULL};
  int mode = luaL_checkoption(L, arg, "default", modes);
  LASYNC_ENTER(lp, L);
  lp->running++;
  int rc = async_loop_run(lp->loop, mode);
  lp->running--;
  LASYNC_LEAVE(lp);
  if (rc < 0) return lasync_fail(L, rc);
  lua_pushboolean(L, rc);
  return 1;
}

static int l_run_until(lua_State *L) {
  OPTLOOP();
  lfuture *fu = lasync_checkfuture(L, arg);
  if (!fu->f) return lasync_fail(L, ASYNC_EINVAL);
  LASYNC_ENTER(lp, L);
  lp->running++;
  int rc = async_loop_run_until(lp->loop, fu->f);
  lp->running--;
  LASYNC_LEAVE(lp);
  if (rc == ASYNC_EBUSY || rc == ASYNC_ESTATE || rc == ASYNC_EINVAL) return lasync_fail(L, rc);
  lua_settop(L, arg);
  return lasync_push_outcome(L, arg);
}

/* run_for(budget_us): NOWAIT iterations within the budget (a frame loop's
 * slice); true when callbacks are still queued for the next call. */
static int l_run_for(lua_State *L) {
  OPTLOOP();
  uint64_t budget = lasync_checku64(L, arg);
  LASYNC_ENTER(lp, L);
  lp->running++;
  int rc = async_loop_run_for(lp->loop, budget);
  lp->running--;
  LASYNC_LEAVE(lp);
  if (rc < 0) return lasync_fail(L, rc);
  lua_pushboolean(L, rc);
  return 1;
}

/* fd(): the fd a host loop polls for readability, then runs run("nowait"). */
static int l_fd(lua_State *L) {
  OPTLOOP();
  int fd;
  int rc = async_loop_fd(&fd, lp->loop);
  if (rc < 0) return lasync_fail(L, rc);
  lua_pushinteger(L, fd);
  return 1;
}

/* after_fork(): in a child made by fork() (luaposix, a host program), makes
 * the loop the child's own before anything else of it is used. */
static int l_after_fork(lua_State *L) {
  OPTLOOP();
  return lasync_result(L, async_loop_fork(lp->loop));
}

static int l_stop(lua_State *L) {
  OPTLOOP();
  return lasync_result(L, async_loop_stop(lp->loop));
}

static int l_alive(lua_State *L) {
  OPTLOOP();
  int rc = async_loop_alive(lp->loop);
  if (rc < 0) return lasync_fail(L, rc);
  lua_pushboolean(L, rc);
  return 1;
}

static int l_now(lua_State *L) {
  OPTLOOP();
  uint64_t ms;
  int rc = async_loop_now(&ms, lp->loop);
  if (rc < 0) return lasync_fail(L, rc);
  lua_pushinteger(L, (lua_Integer)ms);
  return 1;
}

static int l_now_update(lua_State *L) {
  OPTLOOP();
  return lasync_result(L, async_loop_now_update(lp->loop));
}

static int l_timeout(lua_State *L) {
  OPTLOOP();
  int64_t ms;
  int rc = async_loop_timeout(&ms, lp->loop);
  if (rc < 0) return lasync_fail(L, rc);
  lua_pushinteger(L, (lua_Integer)ms);
  return 1;
}

/* call_soon and post: the userdata is the function's registry reference, so
 * scheduling allocates nothing beyond the registry slot. */
static void on_soon(async_loop *loop, void *ud) {
  lloop *lp = async_loop_userdata(loop);
  lua_State *L = lp->L;
  int ref = (int)(intptr_t)ud;
  int base = lasync_tramp_begin(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
  lasync_unref(lp, L, &ref);
  lasync_pcall(lp, L, 0, 0, base);
  lasync_after(lp, L, base);
}

/* call_soon runs FIFO, so its functions wait in a Lua table used as a queue
 * (the loop's soon_ref): no registry reference per call. */
static void on_soon_fifo(async_loop *loop, void *ud) {
  (void)loop;
  lloop *lp = ud;
  lua_State *L = lp->L;
  int top = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, lp->soon_ref); /* top + 1, below the trampoline */
  int base = lasync_tramp_begin(L);
  lua_Integer slot = ++lp->soon_head;
  lua_rawgeti(L, top + 1, slot);
  lua_pushnil(L);
  lua_rawseti(L, top + 1, slot);
  lp->mod->refs--;
  if (lp->soon_head == lp->soon_tail) lp->soon_head = lp->soon_tail = 0; /* empty: start again at 1 */
  lasync_pcall(lp, L, 0, 0, base);
  lasync_after(lp, L, top);
}

static int l_call_soon(lua_State *L) {
  OPTLOOP();
  luaL_checktype(L, arg, LUA_TFUNCTION);
  lua_rawgeti(L, LUA_REGISTRYINDEX, lp->soon_ref);
  lua_pushvalue(L, arg);
  lua_rawseti(L, -2, lp->soon_tail + 1);
  int rc = async_loop_call_soon(lp->loop, on_soon_fifo, lp);
  if (rc < 0) {
    lua_pushnil(L);
    lua_rawseti(L, -2, lp->soon_tail + 1);
    return lasync_fail(L, rc);
  }
  lp->soon_tail++;
  lp->mod->refs++; /* counted as a reference until it ran */
  lua_pushboolean(L, 1);
  return 1;
}

static int schedule(lua_State *L, int (*fn)(async_loop *, async_callback, void *)) {
  OPTLOOP();
  luaL_checktype(L, arg, LUA_TFUNCTION);
  lua_pushvalue(L, arg);
  int ref = lasync_ref(lp, L);
  int rc = fn(lp->loop, on_soon, (void *)(intptr_t)ref);
  if (rc < 0) {
    lasync_unref(lp, L, &ref);
    return lasync_fail(L, rc);
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int l_post(lua_State *L) { return schedule(L, async_loop_post); }

static int l_wakeup(lua_State *L) {
  OPTLOOP();
  return lasync_result(L, async_loop_wakeup(lp->loop));
}

static int l_hold(lua_State *L) {
  OPTLOOP();
  return lasync_result(L, async_loop_hold(lp->loop));
}

static int l_unhold(lua_State *L) {
  OPTLOOP();
  return lasync_result(L, async_loop_unhold(lp->loop));
}

static void on_log(async_loop *loop, int level, const char *message, void *ud) {
  (void)ud;
  lloop *lp = async_loop_userdata(loop);
  lua_State *L = lp->L;
  if (lp->log_ref <= 0) return;
  int base = lasync_tramp_begin(L);
  lua_pushcfunction(L, log_call);
  lua_rawgeti(L, LUA_REGISTRYINDEX, lp->log_ref);
  lua_pushinteger(L, level);
  lua_pushlightuserdata(L, (void *)message);
  lasync_pcall(lp, L, 3, 0, base);
  lasync_after(lp, L, base);
}

static void on_log_release(void *ud) {
  lloop *lp = ud;
  lasync_unref(lp, lp->L, &lp->log_ref);
}

static int l_set_log(lua_State *L) {
  OPTLOOP();
  if (lua_isnoneornil(L, arg)) return lasync_result(L, async_loop_set_log(lp->loop, NULL, NULL, NULL));
  luaL_checktype(L, arg, LUA_TFUNCTION);
  LASYNC_ENTER(lp, L);
  int rc = async_loop_set_log(lp->loop, NULL, NULL, NULL); /* releases the previous one */
  LASYNC_LEAVE(lp);
  if (rc < 0) return lasync_fail(L, rc);
  lua_pushvalue(L, arg);
  lp->log_ref = lasync_ref(lp, L);
  rc = async_loop_set_log(lp->loop, on_log, on_log_release, lp);
  if (rc < 0) lasync_unref(lp, L, &lp->log_ref);
  return lasync_result(L, rc);
}

static int l_set_error_handler(lua_State *L) {
  OPTLOOP();
  if (!lua_isnoneornil(L, arg)) luaL_checktype(L, arg, LUA_TFUNCTION);
  lasync_unref(lp, L, &lp->errh_ref);
  if (!lua_isnoneornil(L, arg)) {
    lua_pushvalue(L, arg);
    lp->errh_ref = lasync_ref(lp, L);
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int l_set_slow_callback(lua_State *L) {
  OPTLOOP();
  return lasync_result(L, async_loop_set_slow_callback(lp->loop, lasync_checku64(L, arg)));
}

static int l_metric(lua_State *L) {
  OPTLOOP();
  static const char *const names[] = {"iterations", "poll_time", "callbacks", NULL};
  int metric = luaL_checkoption(L, arg, NULL, names);
  uint64_t v;
  int rc = async_loop_metric(&v, lp->loop, metric);
  if (rc < 0) return lasync_fail(L, rc);
  lua_pushinteger(L, (lua_Integer)v);
  return 1;
}

static int l_set_thread_check(lua_State *L) {
  OPTLOOP();
  return lasync_result(L, async_loop_set_thread_check(lp->loop, lua_toboolean(L, arg)));
}

static int l_set_gc_each(lua_State *L) {
  OPTLOOP();
  lp->gc_each = lua_toboolean(L, arg);
  lua_pushboolean(L, 1);
  return 1;
}

/* walk: fn(kind_name, object) for every object; the object is the Lua object
 * when the loop pins it (it can call it back), else a light userdata. */
typedef struct walk_ctx {
  lloop *lp;
  lua_State *L;
  int fn_idx;
  int failed;
} walk_ctx;

/* Protected: fn(kind_name, object), the name given as a C string. */
static int walk_call(lua_State *L) {
  lua_pushstring(L, lua_touserdata(L, 2));
  lua_replace(L, 2);
  lua_call(L, 2, 0);
  return 0;
}

static void on_walk(int kind, void *object, void *ud) {
  walk_ctx *w = ud;
  lua_State *L = w->L;
  if (w->failed) return;
  int base = lasync_tramp_begin(L);
  lua_pushcfunction(L, walk_call);
  lua_pushvalue(L, w->fn_idx);
  lua_pushlightuserdata(L, (void *)lasync_obj_kind(kind));
  lobj *o = NULL;
  switch (kind) {
    case ASYNC_OBJECT_TIMER:
    case ASYNC_OBJECT_WATCHER:
    case ASYNC_OBJECT_HOOK:
    case ASYNC_OBJECT_SIGNAL:
    case ASYNC_OBJECT_SERVER: o = async_handle_userdata(object); break;
    case ASYNC_OBJECT_STREAM: o = async_stream_userdata(object); break;
    case ASYNC_OBJECT_DATAGRAM: o = async_datagram_userdata(object); break;
    default: break;
  }
  /* Only binding objects of this loop carry our header; a reader protocol's
   * userdata is a C reader, which the stream kind cannot tell apart. */
  if (o && kind != ASYNC_OBJECT_STREAM && o->lp == w->lp && o->self_ref > 0)
    lua_rawgeti(L, LUA_REGISTRYINDEX, o->self_ref);
  else
    lua_pushlightuserdata(L, object);
  if (!lasync_pcall(w->lp, L, 3, 0, base)) w->failed = 1;
  lua_settop(L, base);
}

static int l_walk(lua_State *L) {
  OPTLOOP();
  luaL_checktype(L, arg, LUA_TFUNCTION);
  walk_ctx w = {lp, L, arg, 0};
  LASYNC_ENTER(lp, L);
  int rc = async_loop_walk(lp->loop, on_walk, &w);
  LASYNC_LEAVE(lp);
  if (rc < 0) return lasync_fail(L, rc);
  lua_pushinteger(L, rc);
  return 1;
}

static void on_shutdown_close(async_handle *h, void *ud);

static int l_shutdown(lua_State *L) {
  OPTLOOP();
  LASYNC_ENTER(lp, L);
  int rc = async_loop_shutdown(lp->loop, on_shutdown_close);
  LASYNC_LEAVE(lp);
  return lasync_result(L, rc);
}

/* A handle closed by shutdown: the same as its own close (handle.c's close
 * callback is reached through the handle's __gc-safe path). */
static void on_shutdown_close(async_handle *h, void *ud) { lasync_handle_closed(h, ud); }

/* Ends everything of the loop, drops the C references the Lua objects hold
 * (their methods then return ECLOSED) and frees the loop. */
int lasync_loop_close(lua_State *L, lloop *lp) {
  if (!lp->loop) return 0;
  if (lp->running) return ASYNC_EBUSY;
  LASYNC_ENTER(lp, L);
  int rc = ASYNC_EBUSY;
  for (int round = 0; round < 8 && rc == ASYNC_EBUSY; round++) {
    rc = async_loop_shutdown(lp->loop, on_shutdown_close);
    if (rc < 0) break;
    lp->running++;
    async_loop_run(lp->loop, ASYNC_RUN_DEFAULT);
    lp->running--;
    while (lp->futures.next != &lp->futures) {
      lfuture *fu = (lfuture *)((char *)lp->futures.next - offsetof(lfuture, node));
      lasync_list_del(&fu->node);
      async_future *f = fu->f;
      fu->f = NULL;
      async_future_release(f);
    }
    while (lp->readers.next != &lp->readers) {
      lasync_reader_drop(lp->readers.next);
    }
    while (lp->processes.next != &lp->processes) {
      lasync_process_drop(lp->processes.next);
    }
    lp->running++;
    async_loop_run(lp->loop, ASYNC_RUN_NOWAIT);
    lp->running--;
    rc = async_loop_free(lp->loop);
  }
  LASYNC_LEAVE(lp);
  if (rc < 0) return rc;
  lp->loop = NULL;
  lasync_unref(lp, L, &lp->errh_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, lp->soon_ref);
  lp->soon_ref = LUA_NOREF;
  return 0;
}

static int l_close(lua_State *L) {
  int arg, loop_idx;
  lloop *lp = lasync_optloop(L, &arg, &loop_idx);
  return lasync_result(L, lasync_loop_close(L, lp));
}

static int loop_gc(lua_State *L) {
  lloop *lp = lua_touserdata(L, 1);
  if (lp->loop && lasync_loop_close(L, lp) < 0)
    fprintf(stderr, "async: a collected loop could not be freed (work left): leaked\n");
  return 0;
}

static int loop_tostring(lua_State *L) {
  lloop *lp = lasync_checkloop(L, 1);
  lua_pushfstring(L, "async.loop: %p%s", (void *)lp, lp->loop ? "" : " (closed)");
  return 1;
}

static int l_is_closed(lua_State *L) {
  lloop *lp = lasync_checkloop(L, 1);
  lua_pushboolean(L, lp->loop == NULL);
  return 1;
}

/* ---- module-level -------------------------------------------------------- */

static int l_strerror(lua_State *L) {
  lua_pushstring(L, async_strerror(lasync_check_error_name(L, 1)));
  return 1;
}

static int l_err_name(lua_State *L) {
  lua_Integer code = luaL_checkinteger(L, 1);
  const char *name = async_err_name((int)code);
  lua_pushstring(L, strncmp(name, "ASYNC_", 6) == 0 ? name + 6 : name);
  return 1;
}

static int l_version(lua_State *L) {
  uint32_t v = async_version();
  lua_pushstring(L, async_version_string());
  lua_pushinteger(L, v);
  return 2;
}

static int l_debug_refs(lua_State *L) {
  lua_pushinteger(L, lasync_mod(L)->refs);
  return 1;
}

const luaL_Reg lasync_loop_methods[] = {
    {"run", l_run},
    {"run_until", l_run_until},
    {"run_for", l_run_for},
    {"fd", l_fd},
    {"after_fork", l_after_fork},
    {"stop", l_stop},
    {"alive", l_alive},
    {"now", l_now},
    {"now_update", l_now_update},
    {"timeout", l_timeout},
    {"call_soon", l_call_soon},
    {"post", l_post},
    {"wakeup", l_wakeup},
    {"hold", l_hold},
    {"unhold", l_unhold},
    {"set_log", l_set_log},
    {"set_error_handler", l_set_error_handler},
    {"set_slow_callback", l_set_slow_callback},
    {"metric", l_metric},
    {"set_thread_check", l_set_thread_check},
    {"set_gc_each", l_set_gc_each},
    {"walk", l_walk},
    {"shutdown", l_shutdown},
    {"close", l_close},
    {NULL, NULL},
};

void lasync_open_loop(lua_State *L) {
  /* module table on top */
  luaL_newmetatable(L, LASYNC_LOOP);
  lua_pushcfunction(L, l_is_closed);
  lua_setfield(L, -2, "is_closed");
  lua_pushvalue(L, -1);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, loop_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, loop_gc);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, loop_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  lasync_setloopfuncs(L, lasync_loop_methods);
  static const luaL_Reg fns[] = {
      {"new_loop", l_new_loop},
      {"default_loop", l_default_loop},
      {"strerror", l_strerror},
      {"err_name", l_err_name},
      {"version", l_version},
      {"debug_refs", l_debug_refs},
      {NULL, NULL},
  };
  luaL_setfuncs(L, fns, 0);
  lua_newtable(L);
  for (int code = -1; code > -100; code--) {
    const char *n = async_err_name(code);
    if (strcmp(n, "ASYNC_UNKNOWN") == 0) break;
    lua_pushinteger(L, code);
    lua_setfield(L, -2, n + 6);
  }
  lua_pushinteger(L, LASYNC_ELUA);
  lua_setfield(L, -2, "ELUA");
  lua_setfield(L, -2, "errno");
}

static void open_mod(lua_State *L) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, MOD_KEY) == LUA_TNIL) {
    lua_pop(L, 1);
    lmod *m = lua_newuserdatauv(L, sizeof *m, 0);
    memset(m, 0, sizeof *m);
    lua_setfield(L, LUA_REGISTRYINDEX, MOD_KEY);
  } else {
    lua_pop(L, 1);
  }
}

/* The module's only exported symbol (the rest is hidden: calls between its
 * files need no PLT). */
__attribute__((visibility("default"))) int luaopen_async(lua_State *L) {
  open_mod(L);
  lua_newtable(L);
  lasync_open_loop(L);
  lasync_open_handles(L);
  lasync_open_future(L);
  lasync_open_net(L);
  lasync_open_dns(L);
  lasync_open_datagram(L);
  lasync_open_process(L);
  lasync_open_tls(L);
  return 1;
}
