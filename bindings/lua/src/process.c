/* Child processes: async.process(argv, options) and async.process_run().
 *
 * A process object holds the C process (freed by proc:free(), its
 * finalizer or the loop's close; the child is never signalled by that) and,
 * in user values 2..4, the stream objects of the child's fds 0..2 made as
 * pipes. Each pipe's stream object is an ordinary stream (net.c): a
 * protocol table, or reader mode, pinned until its release.
 */
#include <signal.h>
#include <string.h>

#include "lasync.h"

typedef struct lprocess {
  lobj o;
  lnode node;
  async_process *p; /* NULL once freed */
} lprocess;

void lasync_process_drop(lnode *n) {
  lprocess *pr = (lprocess *)((char *)n - offsetof(lprocess, node));
  lasync_list_del(n);
  if (pr->p) async_process_free(pr->p);
  pr->p = NULL;
}

/* A result as {exit_code = n, signal = n, stdout = s, stderr = s}. */
int lasync_push_process_result(lua_State *L, const async_process_result *r) {
  int code = 0, sig = 0;
  async_process_result_status(&code, &sig, r);
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, code);
  lua_setfield(L, -2, "exit_code");
  lua_pushinteger(L, sig);
  lua_setfield(L, -2, "signal");
  static const char *const names[] = {"stdout", "stderr"};
  for (int fd = 1; fd <= 2; fd++) {
    const uint8_t *data = NULL;
    size_t len = 0;
    async_process_result_output(&data, &len, r, fd);
    lua_pushlstring(L, (const char *)(data ? data : (const uint8_t *)""), len);
    lua_setfield(L, -2, names[fd - 1]);
  }
  return 1;
}

/* The strings of the array at idx as a NULL-terminated vector (a userdata
 * left on the stack; the strings stay alive in the table). */
static const char **string_vector(lua_State *L, int idx, const char *what) {
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_Integer n = luaL_len(L, idx);
  luaL_argcheck(L, n >= 1 && n < 65536, idx, what);
  const char **v = lua_newuserdatauv(L, sizeof *v * (size_t)(n + 1), 0);
  for (lua_Integer i = 1; i <= n; i++) {
    if (lua_rawgeti(L, idx, i) != LUA_TSTRING) luaL_argerror(L, idx, "strings expected");
    v[i - 1] = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  v[n] = NULL;
  return v;
}

/* env = {"K=V", ...} or {K = "V", ...}: a new array of "K=V" strings on the stack. */
static void env_array(lua_State *L, int t) {
  luaL_checktype(L, t, LUA_TTABLE);
  lua_newtable(L);
  int out = lua_gettop(L);
  lua_Integer n = 0;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "option 'env': string values expected");
    if (lua_type(L, -2) == LUA_TSTRING)
      lua_pushfstring(L, "%s=%s", lua_tostring(L, -2), lua_tostring(L, -1));
    else
      lua_pushvalue(L, -1);
    lua_rawseti(L, out, ++n);
    lua_pop(L, 1);
  }
}

static uint32_t opt_id(lua_State *L, int t, const char *k, uint32_t *flags, uint32_t flag) {
  lua_Integer v = 0;
  if (lua_getfield(L, t, k) != LUA_TNIL) {
    int isnum;
    v = lua_tointegerx(L, -1, &isnum);
    if (!isnum || v < 0 || v > 0xFFFFFFFF) luaL_error(L, "option '%s': an id in [0, 4294967295] expected", k);
    *flags |= flag;
  }
  lua_pop(L, 1);
  return (uint32_t)v;
}

static int opt_flag(lua_State *L, int t, const char *k) {
  lua_getfield(L, t, k);
  int on = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return on;
}

/* process(argv [, options]) */
static int l_process(lua_State *L) {
  int arg, loop_idx;
  lloop *lp = lasync_optloop(L, &arg, &loop_idx);
  lua_settop(L, arg + 1);
  const char **argv = string_vector(L, arg, "a non-empty list of strings expected");
  int opt = lua_isnoneornil(L, arg + 1) ? 0 : arg + 1;
  async_process_options o;
  memset(&o, 0, sizeof o);
  o.size = sizeof o;
  o.argv = argv;
  int pipe_idx[3] = {0, 0, 0}; /* the stdio values that make a pipe */
  if (opt) {
    luaL_checktype(L, opt, LUA_TTABLE);
    if (lua_getfield(L, opt, "env") != LUA_TNIL) {
      env_array(L, lua_gettop(L));
      o.envp = string_vector(L, lua_gettop(L), "option 'env'");
    }
    if (lua_getfield(L, opt, "cwd") != LUA_TNIL) o.cwd = luaL_checkstring(L, -1); /* kept on the stack */
    o.uid = opt_id(L, opt, "uid", &o.flags, ASYNC_PROCESS_SET_UID);
    o.gid = opt_id(L, opt, "gid", &o.flags, ASYNC_PROCESS_SET_GID);
    if (opt_flag(L, opt, "new_group")) o.flags |= ASYNC_PROCESS_NEW_GROUP;
    if (opt_flag(L, opt, "new_session")) o.flags |= ASYNC_PROCESS_NEW_SESSION;
    if (opt_flag(L, opt, "reset_sigmask")) o.flags |= ASYNC_PROCESS_RESET_SIGMASK;
    static const char *const names[] = {"stdin", "stdout", "stderr"};
    for (int i = 0; i < 3; i++) {
      int type = lua_getfield(L, opt, names[i]);
      if (type == LUA_TNIL) {
        lua_pop(L, 1);
      } else if (type == LUA_TSTRING) {
        static const char *const modes[] = {"inherit", "null", "pipe", "fifo", NULL};
        static const int32_t values[] = {ASYNC_STDIO_INHERIT, ASYNC_STDIO_NULL, ASYNC_STDIO_PIPE, ASYNC_STDIO_FIFO};
        int m = luaL_checkoption(L, -1, NULL, modes);
        o.stdio_mode[i] = values[m];
        if (m >= 2) {
          lua_pushnil(L); /* a new reader */
          pipe_idx[i] = lua_gettop(L);
        }
      } else if (type == LUA_TNUMBER) {
        lua_Integer fd = lua_tointeger(L, -1);
        if (fd < 0 || fd > 0x7FFFFFFF) luaL_error(L, "option '%s': an fd expected", names[i]);
        o.stdio_mode[i] = ASYNC_STDIO_FD;
        o.stdio_fd[i] = (int32_t)fd;
      } else if (type == LUA_TTABLE || luaL_testudata(L, -1, LASYNC_READER)) {
        o.stdio_mode[i] = ASYNC_STDIO_PIPE;
        pipe_idx[i] = lua_gettop(L);
      } else {
        luaL_error(L,
                   "option '%s': \"inherit\", \"null\", \"pipe\", \"fifo\", an fd, a protocol table or a reader "
                   "expected",
                   names[i]);
      }
    }
  }
  if (!lp->loop) return lasync_fail(L, ASYNC_ECLOSED);
  lprocess *pr = lasync_newobj(L, sizeof *pr, LASYNC_PROCESS, loop_idx);
  pr->o.lp = lp;
  int pr_idx = lua_gettop(L);
  lstream *streams[3] = {NULL, NULL, NULL};
  for (int i = 0; i < 3; i++) { /* may raise (a bad protocol table): nothing pinned yet */
    if (!pipe_idx[i]) continue;
    int rc;
    streams[i] = lasync_new_stream(L, lp, loop_idx, pipe_idx[i], &rc);
    if (rc < 0) return lasync_fail(L, rc);
    lua_setiuservalue(L, pr_idx, UV_CB + i);
  }
  for (int i = 0; i < 3; i++) {
    if (!streams[i]) continue;
    o.stdio_protocol[i] = lasync_stream_proto(streams[i]);
    o.stdio_userdata[i] = streams[i];
    /* pinned before the call: the loop may call a stream back from now on */
    lua_getiuservalue(L, pr_idx, UV_CB + i);
    lasync_stream_pin(streams[i], L, -1);
    lua_pop(L, 1);
  }
  int rc = async_process_spawn(&pr->p, lp->loop, &o, pr);
  if (rc < 0) {
    pr->p = NULL;
    /* Out of memory after the child started: the streams made end through
     * their release, which unpins them; any other failure called nothing. */
    if (rc != ASYNC_ENOMEM) {
      for (int i = 0; i < 3; i++) {
        if (!streams[i]) continue;
        lua_getiuservalue(L, pr_idx, UV_CB + i);
        lobj *so = lua_touserdata(L, -1);
        lasync_unpin(so, L);
        lua_pop(L, 1);
      }
    }
    return lasync_fail(L, rc);
  }
  lasync_list_add(&lp->processes, &pr->node);
  for (int i = 0; i < 3; i++) {
    async_stream *s;
    if (streams[i] && async_process_stream(&s, pr->p, i) == 0) lasync_stream_attach(streams[i], s);
  }
  lua_settop(L, pr_idx);
  return 1;
}

/* process_run(argv [, input [, limit]]): a future of {exit_code, signal, stdout, stderr}. */
static int l_process_run(lua_State *L) {
  int arg, loop_idx;
  lloop *lp = lasync_optloop(L, &arg, &loop_idx);
  lua_settop(L, arg + 2);
  const char **argv = string_vector(L, arg, "a non-empty list of strings expected");
  size_t len = 0;
  const char *input = luaL_optlstring(L, arg + 1, NULL, &len);
  lua_Integer limit = luaL_optinteger(L, arg + 2, 0);
  luaL_argcheck(L, limit >= 0, arg + 2, "must not be negative");
  if (!lp->loop) return lasync_fail(L, ASYNC_ECLOSED);
  async_future *f;
  int rc = async_process_run(&f, lp->loop, argv, (const uint8_t *)input, len, (size_t)limit);
  if (rc < 0) return lasync_fail(L, rc);
  lasync_newfuture(L, lp, loop_idx, f, LF_PROCESS);
  return 1;
}

#define PROCESS()                                     \
  lprocess *pr = lasync_checkself(L, LASYNC_PROCESS); \
  if (!pr->p) return lasync_fail(L, ASYNC_ECLOSED)

static int p_pid(lua_State *L) {
  PROCESS();
  int rc = async_process_pid(pr->p);
  if (rc < 0) return lasync_fail(L, rc);
  lua_pushinteger(L, rc);
  return 1;
}

/* kill([signum]): SIGTERM by default. */
static int p_kill(lua_State *L) {
  PROCESS();
  lua_Integer sig = luaL_optinteger(L, 2, SIGTERM);
  if (sig < 0 || sig > 64) return lasync_fail(L, ASYNC_EINVAL);
  return lasync_result(L, async_process_kill(pr->p, (int)sig));
}

static int p_wait(lua_State *L) {
  PROCESS();
  async_future *f;
  int rc = async_process_wait(&f, pr->p);
  if (rc < 0) return lasync_fail(L, rc);
  lua_getiuservalue(L, 1, UV_LOOP);
  lasync_newfuture(L, pr->o.lp, lua_gettop(L), f, LF_PROCESS);
  return 1;
}

/* The stream object of fd 0, 1 or 2 (made as a pipe). */
static int push_stream(lua_State *L, lprocess *pr, lua_Integer fd) {
  if (fd < 0 || fd > 2) return lasync_fail(L, ASYNC_EINVAL);
  async_stream *s;
  int rc = async_process_stream(&s, pr->p, (int)fd);
  if (rc < 0) return lasync_fail(L, rc);
  lua_getiuservalue(L, 1, UV_CB + (int)fd);
  return 1;
}

static int p_stream(lua_State *L) {
  PROCESS();
  return push_stream(L, pr, luaL_checkinteger(L, 2));
}

#define STDIO_METHOD(name, fd)     \
  static int name(lua_State *L) {  \
    PROCESS();                     \
    return push_stream(L, pr, fd); \
  }
STDIO_METHOD(p_stdin, 0)
STDIO_METHOD(p_stdout, 1)
STDIO_METHOD(p_stderr, 2)

/* free(): lets go of the process object, never of the child (the loop reaps it). */
static int p_free(lua_State *L) {
  lprocess *pr = lasync_checkself(L, LASYNC_PROCESS);
  if (!pr->p) return lasync_fail(L, ASYNC_ECLOSED);
  lasync_process_drop(&pr->node);
  lua_pushboolean(L, 1);
  return 1;
}

static int p_gc(lua_State *L) {
  lprocess *pr = lua_touserdata(L, 1);
  if (pr->o.lp) lasync_process_drop(&pr->node);
  return 0;
}

void lasync_open_process(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"pid", p_pid},       {"kill", p_kill},     {"wait", p_wait}, {"stream", p_stream}, {"stdin", p_stdin},
      {"stdout", p_stdout}, {"stderr", p_stderr}, {"free", p_free}, {"__close", p_free},  {NULL, NULL},
  };
  lasync_newclass(L, LASYNC_PROCESS, methods, p_gc);
  static const luaL_Reg fns[] = {
      {"process", l_process},
      {"process_run", l_process_run},
      {NULL, NULL},
  };
  lasync_setloopfuncs(L, fns);
}
