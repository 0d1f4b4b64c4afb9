/* Futures: producer and consumer sides, combinators, await from coroutines,
 * tasks (async.spawn). */
#include <stdlib.h>
#include <string.h>

#include "lasync.h"

#define TASKS_KEY "async.tasks" /* weak-keyed: coroutine -> its task's future */

lfuture *lasync_checkfuture(lua_State *L, int idx) { return luaL_checkudata(L, idx, LASYNC_FUTURE); }

lfuture *lasync_newfuture(lua_State *L, lloop *lp, int loop_idx, async_future *f, int kind) {
  lfuture *fu = lasync_newobj(L, sizeof *fu, LASYNC_FUTURE, loop_idx);
  fu->o.lp = lp;
  fu->f = f;
  fu->kind = kind;
  lasync_list_add(&lp->futures, &fu->node);
  return fu;
}

/* Drops the object's reference (the finalizer and future:release()). */
static int drop(lua_State *L, lfuture *fu, int (*fn)(async_future *)) {
  if (!fu->f) return ASYNC_ECLOSED;
  async_future *f = fu->f;
  fu->f = NULL;
  lasync_list_del(&fu->node);
  LASYNC_ENTER(fu->o.lp, L);
  int rc = fn(f);
  LASYNC_LEAVE(fu->o.lp);
  return rc;
}

static int fu_gc(lua_State *L) {
  lfuture *fu = lua_touserdata(L, 1);
  if (fu->o.lp) drop(L, fu, async_future_release);
  return 0;
}

static lfuture *live(lua_State *L, int idx) { return lasync_checkfuture(L, idx); }

static int f_release(lua_State *L) { return lasync_result(L, drop(L, live(L, 1), async_future_release)); }
static int f_free(lua_State *L) { return lasync_result(L, drop(L, live(L, 1), async_future_free)); }

static int f_retain(lua_State *L) {
  lfuture *fu = live(L, 1);
  if (!fu->f) return lasync_fail(L, ASYNC_ECLOSED);
  int rc = async_future_retain(fu->f);
  if (rc < 0) return lasync_fail(L, rc);
  lua_getiuservalue(L, 1, UV_LOOP);
  lfuture *copy = lasync_newfuture(L, fu->o.lp, lua_gettop(L), fu->f, fu->kind);
  (void)copy;
  for (int uv = UV_EXTRA; uv <= UV_MORE; uv++) {
    lua_getiuservalue(L, 1, uv);
    lua_setiuservalue(L, -2, uv);
  }
  return 1;
}

static int f_state(lua_State *L) {
  lfuture *fu = live(L, 1);
  if (!fu->f) return lasync_fail(L, ASYNC_ECLOSED);
  int st = async_future_get_state(fu->f);
  if (st < 0) return lasync_fail(L, st);
  static const char *const names[] = {"pending", "done", "failed", "cancelled"};
  lua_pushstring(L, st <= 3 ? names[st] : "?");
  return 1;
}

static int f_done(lua_State *L) {
  lfuture *fu = live(L, 1);
  if (!fu->f) return lasync_fail(L, ASYNC_ECLOSED);
  int st = async_future_get_state(fu->f);
  if (st < 0) return lasync_fail(L, st);
  lua_pushboolean(L, st != ASYNC_FUTURE_PENDING);
  return 1;
}

static int f_loop(lua_State *L) {
  lfuture *fu = live(L, 1);
  if (!fu->f || !async_future_loop(fu->f)) return lasync_fail(L, ASYNC_ECLOSED);
  lua_getiuservalue(L, 1, UV_LOOP);
  return 1;
}

/* The outcome of the future at idx: its value(s), or nil, message, name. */
int lasync_push_outcome(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  lfuture *fu = live(L, idx);
  if (!fu->f) return lasync_fail(L, ASYNC_ECLOSED);
  void *v = NULL;
  int rc = async_future_result(&v, fu->f);
  if (fu->kind == LF_SLEEP && rc == ASYNC_ETIMEDOUT) {
    lua_pushboolean(L, 1);
    return 1;
  }
  if (rc == LASYNC_ELUA) {
    lua_pushnil(L);
    if (lua_getiuservalue(L, idx, UV_MORE) == LUA_TNIL) {
      lua_pop(L, 1);
      lua_pushliteral(L, "ELUA: a Lua error");
    }
    lua_pushliteral(L, "ELUA");
    return 3;
  }
  if (rc < 0) return lasync_fail(L, rc);
  switch (fu->kind) {
    case LF_VALUE:
      if (v)
        lua_rawgeti(L, LUA_REGISTRYINDEX, (int)(intptr_t)v);
      else
        lua_pushnil(L);
      return 1;
    case LF_STREAM: lua_getiuservalue(L, idx, UV_EXTRA); return 1;
    case LF_ADDRINFO: {
      return lasync_push_addrinfo(L, v);
    }
    case LF_NAMEINFO:
      lua_pushstring(L, async_nameinfo_host(v));
      lua_pushstring(L, async_nameinfo_service(v));
      return 2;
    case LF_BYTES: lua_pushlstring(L, (const char *)async_bytes_data(v), async_bytes_size(v)); return 1;
    case LF_ALL: {
      lua_getiuservalue(L, idx, UV_EXTRA);
      int inputs = lua_gettop(L);
      lua_Integer n = luaL_len(L, inputs);
      lua_createtable(L, (int)n, 0);
      for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, inputs, i);
        int top = lua_gettop(L);
        lasync_push_outcome(L, top);
        lua_rawseti(L, inputs + 1, i);
        lua_settop(L, inputs + 1);
      }
      return 1;
    }
    case LF_ANY: {
      lua_getiuservalue(L, idx, UV_EXTRA);
      int inputs = lua_gettop(L);
      lua_Integer n = luaL_len(L, inputs);
      for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, inputs, i);
        if (((lfuture *)lua_touserdata(L, -1))->f == v) return 1;
        lua_pop(L, 1);
      }
      lua_pushnil(L);
      return 1;
    }
    case LF_TIMEOUT: lua_getiuservalue(L, idx, UV_EXTRA); return lasync_push_outcome(L, lua_gettop(L));
    case LF_PROCESS: return lasync_push_process_result(L, v);
    default: lua_pushboolean(L, 1); return 1;
  }
}

static int f_result(lua_State *L) {
  lua_settop(L, 1);
  return lasync_push_outcome(L, 1);
}

/* ---- done callbacks and await ------------------------------------------------ */

static void task_failed_report(lloop *lp, lua_State *L, int co_idx);

/* Resumes a coroutine waiting in await (or starting as a task). */
static void resume(lloop *lp, lua_State *L, int co_idx, int base) {
  lua_State *co = lua_tothread(L, co_idx);
  int nargs = 0;
  if (lua_status(co) == LUA_OK && lua_gettop(co) > 0)
    nargs = lua_gettop(co) - 1; /* a task's first start: task_body and its arguments */
  else if (lua_status(co) != LUA_YIELD)
    return; /* running or dead: resumed by someone else, not ours to resume */
  int nres = 0;
  int st = lua_resume(co, L, nargs, &nres);
  if (st == LUA_OK || st == LUA_YIELD) {
    lua_pop(co, nres);
    return;
  }
  (void)base;
  task_failed_report(lp, L, co_idx);
}

static void on_done(async_future *f, int status, void *ud) {
  (void)f;
  (void)status;
  lfuture *fu = ud;
  lloop *lp = fu->o.lp;
  lua_State *L = lp->L;
  int base = lasync_tramp_begin(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, fu->o.self_ref); /* base + 2 */
  lua_getiuservalue(L, base + 2, UV_CB);             /* base + 3 */
  int slot = ++fu->next_cb;
  lua_rawgeti(L, base + 3, slot); /* base + 4 */
  lua_pushnil(L);
  lua_rawseti(L, base + 3, slot);
  if (--fu->pending_cbs == 0) {
    fu->next_cb = fu->ncbs = 0;
    lua_pushnil(L);
    lua_setiuservalue(L, base + 2, UV_CB);
    lasync_unpin(&fu->o, L);
  }
  if (lua_type(L, base + 4) == LUA_TTHREAD) {
    resume(lp, L, base + 4, base);
  } else {
    lua_pushvalue(L, base + 4);
    lua_pushvalue(L, base + 2);
    lasync_pcall(lp, L, 1, 0, base);
  }
  lasync_after(lp, L, base);
}

/* Registers the value on top (a function or a thread) as a done callback. */
static int add_waiter(lua_State *L, lfuture *fu, int idx) {
  int rc = async_future_add_callback(fu->f, on_done, fu);
  if (rc < 0) {
    lua_pop(L, 1);
    return rc;
  }
  if (lua_getiuservalue(L, idx, UV_CB) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, idx, UV_CB);
  }
  lua_insert(L, -2);
  lua_rawseti(L, -2, ++fu->ncbs);
  lua_pop(L, 1);
  fu->pending_cbs++;
  lasync_pin(&fu->o, L, idx);
  return 0;
}

static int f_add_callback(lua_State *L) {
  lfuture *fu = live(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  if (!fu->f) return lasync_fail(L, ASYNC_ECLOSED);
  lua_settop(L, 2);
  return lasync_result(L, add_waiter(L, fu, 1));
}

static int await_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  lua_settop(L, 1);
  return lasync_push_outcome(L, 1);
}

static int f_await(lua_State *L) {
  lfuture *fu = live(L, 1);
  lua_settop(L, 1);
  if (!fu->f) return lasync_fail(L, ASYNC_ECLOSED);
  int st = async_future_get_state(fu->f);
  if (st < 0) return lasync_fail(L, st);
  if (st != ASYNC_FUTURE_PENDING) return lasync_push_outcome(L, 1);
  if (!lua_isyieldable(L)) {
    /* Outside a coroutine: run the loop until the future is complete. */
    lloop *lp = fu->o.lp;
    if (!lp->loop) return lasync_fail(L, ASYNC_ECLOSED);
    LASYNC_ENTER(lp, L);
    lp->running++;
    int rc = async_loop_run_until(lp->loop, fu->f);
    lp->running--;
    LASYNC_LEAVE(lp);
    if (rc == ASYNC_EBUSY || rc == ASYNC_ESTATE || rc == ASYNC_EINVAL) return lasync_fail(L, rc);
    lua_settop(L, 1);
    return lasync_push_outcome(L, 1);
  }
  lua_pushthread(L);
  int rc = add_waiter(L, fu, 1);
  if (rc < 0) return lasync_fail(L, rc);
  return lua_yieldk(L, 0, 0, await_k);
}

/* ---- producer side ------------------------------------------------------------ */

static void destroy_value(void *value, void *context) {
  lloop *lp = context;
  int ref = (int)(intptr_t)value;
  lasync_unref(lp, lp->L, &ref);
}

static int resolve_at(lua_State *L, lfuture *fu, int vidx) {
  if (!fu->f) return ASYNC_ECLOSED;
  lloop *lp = fu->o.lp;
  int ref = LUA_NOREF;
  if (!lua_isnoneornil(L, vidx)) {
    lua_pushvalue(L, vidx);
    ref = lasync_ref(lp, L);
  }
  LASYNC_ENTER(lp, L);
  int rc = async_future_resolve(fu->f, ref > 0 ? (void *)(intptr_t)ref : NULL, ref > 0 ? destroy_value : NULL, lp);
  LASYNC_LEAVE(lp);
  if (rc < 0) lasync_unref(lp, L, &ref);
  return rc;
}

static int f_resolve(lua_State *L) {
  lfuture *fu = live(L, 1);
  if (fu->kind != LF_VALUE) return lasync_fail(L, ASYNC_EINVAL);
  return lasync_result(L, resolve_at(L, fu, 2));
}

static int reject_at(lua_State *L, lfuture *fu, int code, int errvalue_idx) {
  if (!fu->f) return ASYNC_ECLOSED;
  if (errvalue_idx) {
    lua_pushvalue(L, errvalue_idx);
    lua_setiuservalue(L, 1, UV_MORE);
  }
  LASYNC_ENTER(fu->o.lp, L);
  int rc = async_future_reject(fu->f, code);
  LASYNC_LEAVE(fu->o.lp);
  return rc;
}

/* reject(code or name): an ASYNC_E* code; reject(any other value): ELUA,
 * the value being what await returns as the message. */
static int f_reject(lua_State *L) {
  lfuture *fu = live(L, 1);
  luaL_checkany(L, 2);
  if (fu->kind != LF_VALUE) return lasync_fail(L, ASYNC_EINVAL);
  int code = LASYNC_ELUA, value = 2;
  if (lua_type(L, 2) == LUA_TNUMBER) {
    lua_Integer c = luaL_checkinteger(L, 2);
    if (c >= 0 || c < -0x7FFFFFFF) return lasync_fail(L, ASYNC_EINVAL);
    code = (int)c;
    value = 0;
  } else if (lua_type(L, 2) == LUA_TSTRING && lua_tostring(L, 2)[0] == 'E') {
    const char *name = lua_tostring(L, 2);
    for (int c = -1; c > -100; c--) {
      const char *n = async_err_name(c);
      if (strcmp(n, "ASYNC_UNKNOWN") == 0) break;
      if (strcmp(n + 6, name) == 0) {
        code = c;
        value = 0;
        break;
      }
    }
  }
  return lasync_result(L, reject_at(L, fu, code, value));
}

static void on_cancel(async_future *f, int cancelled, void *ud) {
  lloop *lp = async_loop_userdata(async_future_loop(f));
  lua_State *L = lp->L;
  int ref = (int)(intptr_t)ud;
  int base = lasync_tramp_begin(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
  lasync_unref(lp, L, &ref);
  lua_pushboolean(L, cancelled);
  lasync_pcall(lp, L, 1, 0, base);
  lasync_after(lp, L, base);
}

static int f_set_cancel(lua_State *L) {
  lfuture *fu = live(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  if (!fu->f) return lasync_fail(L, ASYNC_ECLOSED);
  lua_pushvalue(L, 2);
  int ref = lasync_ref(fu->o.lp, L);
  int rc = async_future_set_cancel(fu->f, on_cancel, (void *)(intptr_t)ref);
  if (rc < 0) lasync_unref(fu->o.lp, L, &ref);
  return lasync_result(L, rc);
}

static int f_cancel(lua_State *L) {
  lfuture *fu = live(L, 1);
  if (!fu->f) return lasync_fail(L, ASYNC_ECLOSED);
  LASYNC_ENTER(fu->o.lp, L);
  int rc = async_future_cancel(fu->f);
  LASYNC_LEAVE(fu->o.lp);
  if (rc < 0) return lasync_fail(L, rc);
  lua_pushboolean(L, rc);
  return 1;
}

/* ---- construction and combinators ---------------------------------------- */

static int l_future(lua_State *L) {
  int arg, loop_idx;
  lloop *lp = lasync_optloop(L, &arg, &loop_idx);
  if (!lp->loop) return lasync_fail(L, ASYNC_ECLOSED);
  async_future *f;
  int rc = async_future_new(&f, lp->loop);
  if (rc < 0) return lasync_fail(L, rc);
  lasync_newfuture(L, lp, loop_idx, f, LF_VALUE);
  return 1;
}

static int f_timeout(lua_State *L) {
  lfuture *fu = live(L, 1);
  uint64_t ms = lasync_checku64(L, 2);
  if (!fu->f || !fu->o.lp->loop) return lasync_fail(L, ASYNC_ECLOSED);
  async_future *out;
  int rc = async_future_timeout(&out, fu->f, ms);
  if (rc < 0) return lasync_fail(L, rc);
  lua_getiuservalue(L, 1, UV_LOOP);
  lasync_newfuture(L, fu->o.lp, lua_gettop(L), out, LF_TIMEOUT);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, UV_EXTRA);
  return 1;
}

/* all / any: the inputs as a table (or as arguments). */
static int combine(lua_State *L, int any) {
  int arg, loop_idx;
  lloop *lp = lasync_optloop(L, &arg, &loop_idx);
  int list;
  if (lua_istable(L, arg)) {
    list = arg;
  } else {
    int top = lua_gettop(L);
    lua_createtable(L, top - arg + 1, 0);
    for (int i = arg, n = 1; i <= top; i++, n++) {
      lua_pushvalue(L, i);
      lua_rawseti(L, -2, n);
    }
    list = lua_gettop(L);
  }
  lua_Integer n = luaL_len(L, list);
  luaL_argcheck(L, n >= 0 && n < 65536, arg, "too many futures");
  async_future **fs = lua_newuserdatauv(L, sizeof *fs * (size_t)(n ? n : 1), 0);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, list, i);
    lfuture *in = luaL_testudata(L, -1, LASYNC_FUTURE);
    if (!in) return luaL_argerror(L, arg, "a list of futures expected");
    if (!in->f) return lasync_fail(L, ASYNC_ECLOSED);
    fs[i - 1] = in->f;
    lua_pop(L, 1);
  }
  if (!lp->loop) return lasync_fail(L, ASYNC_ECLOSED);
  async_future *out;
  int rc = any ? async_future_any(&out, lp->loop, fs, (size_t)n) : async_future_all(&out, lp->loop, fs, (size_t)n);
  if (rc < 0) return lasync_fail(L, rc);
  lasync_newfuture(L, lp, loop_idx, out, any ? LF_ANY : LF_ALL);
  /* a copy of the list, so later changes to the caller's table do not matter */
  lua_createtable(L, (int)n, 0);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, list, i);
    lua_rawseti(L, -2, i);
  }
  lua_setiuservalue(L, -2, UV_EXTRA);
  return 1;
}

static int l_all(lua_State *L) { return combine(L, 0); }
static int l_any(lua_State *L) { return combine(L, 1); }

static int l_sleep(lua_State *L) {
  int arg, loop_idx;
  lloop *lp = lasync_optloop(L, &arg, &loop_idx);
  uint64_t ms = lasync_checku64(L, arg);
  if (!lp->loop) return lasync_fail(L, ASYNC_ECLOSED);
  async_future *inner, *out;
  int rc = async_future_new(&inner, lp->loop);
  if (rc < 0) return lasync_fail(L, rc);
  lasync_newfuture(L, lp, loop_idx, inner, LF_VALUE); /* owns inner from here */
  rc = async_future_timeout(&out, inner, ms);
  if (rc < 0) return lasync_fail(L, rc);
  lasync_newfuture(L, lp, loop_idx, out, LF_SLEEP);
  lua_insert(L, -2);
  lua_setiuservalue(L, -2, UV_EXTRA);
  return 1;
}

/* ---- tasks ------------------------------------------------------------------------ */

static int task_finish(lua_State *co, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  lfuture *task = lua_touserdata(co, 1);
  int rc = resolve_at(co, task, lua_gettop(co) >= 2 ? 2 : 0);
  (void)rc; /* a task cancelled meanwhile keeps its state */
  return 0;
}

/* The body of a task's coroutine: task future, function, arguments. */
static int task_body(lua_State *co) {
  lua_callk(co, lua_gettop(co) - 2, LUA_MULTRET, 0, task_finish);
  return task_finish(co, LUA_OK, 0);
}

/* Protected: builds the report of a failed task and rejects its future. */
static int task_failure(lua_State *L) {
  lua_State *co = lua_tothread(L, 1);
  const char *msg = lua_tostring(L, 2);
  if (!msg) msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 2));
  luaL_traceback(L, co, msg, 0);
  lua_getfield(L, LUA_REGISTRYINDEX, TASKS_KEY);
  if (lua_rawgetp(L, -1, co) == LUA_TUSERDATA) {
    lfuture *task = lua_touserdata(L, -1);
    if (task->f && async_future_get_state(task->f) == ASYNC_FUTURE_PENDING) {
      lua_pushvalue(L, 2);
      lua_setiuservalue(L, -2, UV_MORE);
      LASYNC_ENTER(task->o.lp, L);
      async_future_reject(task->f, LASYNC_ELUA);
      LASYNC_LEAVE(task->o.lp);
    }
  }
  lua_pop(L, 2);
  return 1;
}

static void task_failed_report(lloop *lp, lua_State *L, int co_idx) {
  lua_State *co = lua_tothread(L, co_idx);
  int base = lasync_tramp_begin(L);
  lua_pushcfunction(L, task_failure);
  lua_pushvalue(L, co_idx);
  lua_xmove(co, L, 1);
  lua_pcall(L, 2, 1, base + 1); /* the report, or the error building it */
  lasync_report(lp, L);
  lua_resetthread(co);
  lua_settop(L, base);
}

static void on_task_start(async_loop *loop, void *ud) {
  lloop *lp = async_loop_userdata(loop);
  lua_State *L = lp->L;
  int ref = (int)(intptr_t)ud;
  int base = lasync_tramp_begin(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref); /* base + 2: the coroutine */
  lasync_unref(lp, L, &ref);
  resume(lp, L, base + 2, base);
  lasync_after(lp, L, base);
}

/* spawn(fn, ...): runs fn(...) in a new coroutine from the next iteration;
 * returns the task's future (fn's first result, or the Lua error as ELUA). */
int lasync_spawn(lua_State *L) {
  int arg, loop_idx;
  lloop *lp = lasync_optloop(L, &arg, &loop_idx);
  luaL_checktype(L, arg, LUA_TFUNCTION);
  if (!lp->loop) return lasync_fail(L, ASYNC_ECLOSED);
  int top = lua_gettop(L);
  async_future *f;
  int rc = async_future_new(&f, lp->loop);
  if (rc < 0) return lasync_fail(L, rc);
  lasync_newfuture(L, lp, loop_idx, f, LF_VALUE);
  int task = lua_gettop(L);
  lua_State *co = lua_newthread(L);
  int co_idx = lua_gettop(L);
  lua_getfield(L, LUA_REGISTRYINDEX, TASKS_KEY);
  lua_pushvalue(L, task);
  lua_rawsetp(L, -2, co);
  lua_pop(L, 1);
  luaL_checkstack(co, top - arg + 3, "too many arguments");
  lua_pushcfunction(co, task_body);
  lua_pushvalue(L, task);
  lua_xmove(L, co, 1);
  for (int i = arg; i <= top; i++) {
    lua_pushvalue(L, i);
    lua_xmove(L, co, 1);
  }
  lua_pushvalue(L, co_idx);
  int ref = lasync_ref(lp, L);
  rc = async_loop_call_soon(lp->loop, on_task_start, (void *)(intptr_t)ref);
  if (rc < 0) {
    lasync_unref(lp, L, &ref);
    return lasync_fail(L, rc);
  }
  lua_pushvalue(L, task);
  return 1;
}

static int fu_tostring(lua_State *L) {
  lfuture *fu = lua_touserdata(L, 1);
  lua_pushfstring(L, "async.future: %p%s", (void *)fu, fu->f ? "" : " (released)");
  return 1;
}

void lasync_open_future(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"await", f_await},     {"result", f_result}, {"state", f_state},
      {"done", f_done},       {"cancel", f_cancel}, {"add_callback", f_add_callback},
      {"resolve", f_resolve}, {"reject", f_reject}, {"set_cancel", f_set_cancel},
      {"timeout", f_timeout}, {"retain", f_retain}, {"release", f_release},
      {"free", f_free},       {"loop", f_loop},     {"__tostring", fu_tostring},
      {"__close", f_free},    {NULL, NULL},
  };
  lasync_newclass(L, LASYNC_FUTURE, methods, fu_gc);
  static const luaL_Reg fns[] = {{"future", l_future}, {"all", l_all},          {"any", l_any},
                                 {"sleep", l_sleep},   {"spawn", lasync_spawn}, {NULL, NULL}};
  lasync_setloopfuncs(L, fns);
  lua_newtable(L);
  lua_newtable(L);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, TASKS_KEY);
}
