/*
 * The Lua 5.4 binding of libasync: shared declarations of the module's files.
 *
 * Every object is a full userdata holding its binding struct (below) with
 * user values: 1 is always the loop object (so a loop outlives its objects),
 * the others are per type (UV_* below). An object the loop may still call
 * back (an active handle, a stream with a Lua protocol, a future with done
 * callbacks) is pinned by a registry reference to itself (self_ref); any
 * other object is collectable and its finalizer closes, releases or frees
 * what it holds.
 *
 * Callbacks run on the lua_State of the call that runs the loop (lloop.L,
 * saved and restored around every call that may run callbacks), always
 * under lua_pcall; an error goes to the loop's error handler.
 */
#ifndef LASYNC_H
#define LASYNC_H

#include <async.h>
#include <lauxlib.h>
#include <lua.h>

#define LASYNC_LOOP "async.loop"
#define LASYNC_TIMER "async.timer"
#define LASYNC_WATCHER "async.watcher"
#define LASYNC_HOOK "async.hook"
#define LASYNC_SIGNAL "async.signal"
#define LASYNC_SERVER "async.server"
#define LASYNC_FUTURE "async.future"
#define LASYNC_STREAM "async.stream"
#define LASYNC_READER "async.reader"
#define LASYNC_DATAGRAM "async.datagram"
#define LASYNC_RECONNECTOR "async.reconnector"
#define LASYNC_ADDRINFO "async.addrinfo"
#define LASYNC_PROCESS "async.process"
#define LASYNC_TLS_CONTEXT "async.tls_context"

/* The status a future gets when Lua code fails it with a Lua value (a task's
 * error, future:reject(value)): not an ASYNC_E* code, far from their range. */
#define LASYNC_ELUA (-1000)

/* User value slots. */
enum { UV_LOOP = 1, UV_CB = 2, UV_EXTRA = 3, UV_MORE = 4, UV_AUX = 5, UV_COUNT = 5 };

typedef struct lmod {
  long refs; /* registry references held by the binding (async.debug_refs()) */
  /* class metatables by the address of their name (lasync_newobj): an
   * integer registry key instead of a lookup by name per object */
  struct {
    const char *tname;
    int ref;
  } classes[24];
  int nclasses;
} lmod;

typedef struct lnode {
  struct lnode *prev, *next;
} lnode;

typedef struct lloop {
  const void *tag;  /* &lasync_loop_tag: tells a loop's userdata from others (lasync_optloop) */
  async_loop *loop; /* NULL once closed */
  lua_State *L;     /* the state callbacks run on */
  lmod *mod;
  int errh_ref; /* the error handler, or LUA_NOREF */
  int log_ref;  /* the log function, or LUA_NOREF */
  int gc_each;  /* a full collection after every callback */
  int running;
  int soon_ref;                     /* the FIFO of call_soon functions (a table) */
  lua_Integer soon_head, soon_tail; /* its first taken and last given slots */
  lnode futures;                    /* live lfuture and lreader objects (their C references) */
  lnode readers;
  lnode processes; /* live lprocess objects (their C processes) */
} lloop;

/* Every object starts with this header. */
typedef struct lobj {
  lloop *lp;
  int self_ref; /* pins the object while the loop may call it back */
} lobj;

/* Calls that may run Lua callbacks inside them run them on the caller's state. */
#define LASYNC_ENTER(lp, Lcur)   \
  lua_State *saved_L_ = (lp)->L; \
  (lp)->L = (Lcur)

/* Protected: calls field of the table in user value uv of argument 1 (a
 * missing field: nothing), see net.c; trampolines push only values that need
 * no allocation and let this build the rest under the pcall. */
int lasync_event_call(lua_State *L);
#define LASYNC_LEAVE(lp) ((lp)->L = saved_L_)

typedef struct lhandle {
  lobj o;
  async_handle *h; /* NULL once the close callback ran (or never opened) */
  int closing;
} lhandle;

/* core.c */
extern const char lasync_loop_tag;
lmod *lasync_mod(lua_State *L);
int lasync_ref(lloop *lp, lua_State *L);
void lasync_unref(lloop *lp, lua_State *L, int *ref);
void lasync_pin(lobj *o, lua_State *L, int idx);
void lasync_unpin(lobj *o, lua_State *L);
int lasync_fail(lua_State *L, int code);
int lasync_error_text(lua_State *L);
int lasync_result(lua_State *L, int code);
size_t lasync_check_size(lua_State *L, int idx);
int lasync_msgh(lua_State *L);
void lasync_report(lloop *lp, lua_State *L);

/* The trampoline of every callback, inline since it runs once per callback
 * (with the module's symbols hidden and -fno-plt, see meson.build).
 * Starts a trampoline: returns the base; the message handler sits at base + 1. */
static inline int lasync_tramp_begin(lua_State *L) {
  int base = lua_gettop(L);
  lua_pushcfunction(L, lasync_msgh);
  return base;
}

/* Calls the function below its nargs arguments; the handler at base + 1. */
static inline int lasync_pcall(lloop *lp, lua_State *L, int nargs, int nres, int base) {
  if (lua_pcall(L, nargs, nres, base + 1) == LUA_OK) return 1;
  lasync_report(lp, L);
  return 0;
}

/* Ends a trampoline: drops what it pushed, collects under aggressive GC. */
static inline void lasync_after(lloop *lp, lua_State *L, int base) {
  lua_settop(L, base);
  if (lp->gc_each) lua_gc(L, LUA_GCCOLLECT);
}

void *lasync_newobj(lua_State *L, size_t size, const char *tname, int loop_idx);
void *lasync_newobj_uv(lua_State *L, size_t size, const char *tname, int loop_idx, int nuv);
lloop *lasync_optloop(lua_State *L, int *arg, int *loop_idx);
lloop *lasync_checkloop(lua_State *L, int idx);
void lasync_list_add(lnode *head, lnode *n);
void lasync_list_del(lnode *n);
int lasync_check_error_name(lua_State *L, int idx);
void lasync_setloopfuncs(lua_State *L, const luaL_Reg *l);
void lasync_newclass(lua_State *L, const char *tname, const luaL_Reg *methods, lua_CFunction gc);
uint64_t lasync_checku64(lua_State *L, int idx);

/* The method's self (argument 1) of the class tname. Methods registered by
 * lasync_newclass have their metatable as upvalue 1: one comparison instead
 * of luaL_checkudata's registry lookup; anything else takes the slow path
 * (and its error). */
static inline void *lasync_checkself(lua_State *L, const char *tname) {
  void *p = lua_touserdata(L, 1);
  if (p && lua_getmetatable(L, 1)) {
    int same = lua_rawequal(L, -1, lua_upvalueindex(1));
    lua_pop(L, 1);
    if (same) return p;
  }
  return luaL_checkudata(L, 1, tname);
}
const char *lasync_obj_kind(int kind);

/* future.c */
enum lfuture_kind {
  LF_VALUE,    /* a Lua value (future:resolve(v), a task's result) */
  LF_STREAM,   /* a connect: the stream object in UV_EXTRA */
  LF_ADDRINFO, /* getaddrinfo */
  LF_NAMEINFO, /* getnameinfo */
  LF_BYTES,    /* a reader's read */
  LF_ALL,      /* all: the inputs' values, inputs in UV_EXTRA */
  LF_ANY,      /* any: the input that completed, inputs in UV_EXTRA */
  LF_TIMEOUT,  /* timeout: the input's value, input in UV_EXTRA */
  LF_SLEEP,    /* sleep: true when the time is up */
  LF_PROCESS   /* a process's wait or run: a table of its exit and output */
};
typedef struct lfuture {
  lobj o;
  lnode node;
  async_future *f; /* one reference, NULL once released */
  int kind;
  int pending_cbs; /* done callbacks not run yet (pins the object) */
  int next_cb;     /* index of the next one in the UV_CB table */
  int ncbs;
} lfuture;
lfuture *lasync_newfuture(lua_State *L, lloop *lp, int loop_idx, async_future *f, int kind);
lfuture *lasync_checkfuture(lua_State *L, int idx);
int lasync_push_outcome(lua_State *L, int idx);
void lasync_open_future(lua_State *L);

int lasync_spawn(lua_State *L);

/* handle.c */
void lasync_open_handles(lua_State *L);
int lasync_handle_gc(lua_State *L);
void lasync_handle_closed(async_handle *h, void *ud);
void lasync_handle_sync_pin(void *hd, lua_State *L, int idx);
extern const luaL_Reg lasync_handle_methods[];

/* net.c */
void lasync_open_net(lua_State *L);
void lasync_open_dns(lua_State *L);
void lasync_open_datagram(lua_State *L);
int lasync_push_addr(lua_State *L, const struct sockaddr *sa, size_t len);
const struct sockaddr *lasync_checkaddr(lua_State *L, int idx, size_t *len, uint8_t *buf);

void lasync_reader_drop(lnode *n);
typedef struct lstream lstream;
lstream *lasync_new_stream(lua_State *L, lloop *lp, int loop_idx, int proto_idx, int *rc);
const async_stream_protocol *lasync_stream_proto(const lstream *st);
void lasync_stream_attach(lstream *st, async_stream *s);
void lasync_stream_pin(lstream *st, lua_State *L, int idx);

/* transport.c: the methods a stream and a datagram share (close, abort,
 * pause_reading, resume_reading, is_reading, set_write_limits,
 * get_write_limits, write_buffer_size, __close), written once over a table
 * of the type's C calls. LASYNC_TRANSPORT_OPS makes that table from the
 * type's functions, each behind a thunk that takes the object as void *. */
typedef struct ltransport_ops {
  const char *tname;
  void *(*object)(void *self); /* the binding object's C transport, NULL once closed */
  int (*close)(void *t);
  int (*abort)(void *t);
  int (*pause_reading)(void *t);
  int (*resume_reading)(void *t);
  int (*is_reading)(void *t);
  int (*set_write_limits)(void *t, size_t high, size_t low);
  int (*get_write_limits)(size_t *high, size_t *low, void *t);
  int (*write_buffer_size)(size_t *n, void *t);
} ltransport_ops;

#define LASYNC_TRANSPORT_OPS(var, tname_, type, field, f_close, f_abort, f_pause, f_resume, f_is_reading, f_set_limits, \
                             f_get_limits, f_buffered)                                                                 \
  static void *var##_object(void *self) { return ((type *)self)->field; }                                              \
  static int var##_close(void *t) { return f_close(t); }                                                               \
  static int var##_abort(void *t) { return f_abort(t); }                                                               \
  static int var##_pause(void *t) { return f_pause(t); }                                                               \
  static int var##_resume(void *t) { return f_resume(t); }                                                             \
  static int var##_is_reading(void *t) { return f_is_reading(t); }                                                     \
  static int var##_set_limits(void *t, size_t high, size_t low) { return f_set_limits(t, high, low); }                 \
  static int var##_get_limits(size_t *high, size_t *low, void *t) { return f_get_limits(high, low, t); }               \
  static int var##_buffered(size_t *n, void *t) { return f_buffered(n, t); }                                           \
  static const ltransport_ops var = {tname_,          var##_object,     var##_close,        var##_abort,              \
                                     var##_pause,     var##_resume,     var##_is_reading,   var##_set_limits,         \
                                     var##_get_limits, var##_buffered}

/* lasync_newclass for a transport: its own methods, then the shared ones. */
void lasync_newtransport(lua_State *L, const luaL_Reg *methods, lua_CFunction gc, const ltransport_ops *ops);

/* process.c */
void lasync_open_process(lua_State *L);
int lasync_push_process_result(lua_State *L, const async_process_result *r);
void lasync_process_drop(lnode *n);
int lasync_push_addrinfo(lua_State *L, const async_addrinfo *ai);

/* tls.c */
void lasync_open_tls(lua_State *L);
async_tls_context *lasync_checktls(lua_State *L, int idx);

/* core.c: the loop */
int lasync_loop_close(lua_State *L, lloop *lp);
void lasync_open_loop(lua_State *L);

#endif
