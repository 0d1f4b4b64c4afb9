/* The methods a stream and a datagram share: the same shape over two C
 * types, written once over the type's table of calls (ltransport_ops), which
 * each of these methods has as upvalue 2 (upvalue 1: the class metatable,
 * as for every method, see lasync_checkself). */
#include "lasync.h"

/* self (argument 1) and its C transport; a closed one fails with ECLOSED. */
#define TRANSPORT()                                                   \
  const ltransport_ops *ops = lua_touserdata(L, lua_upvalueindex(2)); \
  lobj *self = lasync_checkself(L, ops->tname);                       \
  void *t = ops->object(self);                                        \
  if (!t) return lasync_fail(L, ASYNC_ECLOSED)

#define TRANSPORT_STATUS(name)             \
  static int tr_##name(lua_State *L) {     \
    TRANSPORT();                           \
    return lasync_result(L, ops->name(t)); \
  }
TRANSPORT_STATUS(close)
TRANSPORT_STATUS(abort)
TRANSPORT_STATUS(pause_reading)
TRANSPORT_STATUS(resume_reading)

static int tr_is_reading(lua_State *L) {
  TRANSPORT();
  int rc = ops->is_reading(t);
  if (rc < 0) return lasync_fail(L, rc);
  lua_pushboolean(L, rc);
  return 1;
}

static int tr_set_write_limits(lua_State *L) {
  TRANSPORT();
  size_t high = lasync_check_size(L, 2), low = lasync_check_size(L, 3);
  LASYNC_ENTER(self->lp, L);
  int rc = ops->set_write_limits(t, high, low);
  LASYNC_LEAVE(self->lp);
  return lasync_result(L, rc);
}

static int tr_get_write_limits(lua_State *L) {
  TRANSPORT();
  size_t high, low;
  int rc = ops->get_write_limits(&high, &low, t);
  if (rc < 0) return lasync_fail(L, rc);
  lua_pushinteger(L, (lua_Integer)high);
  lua_pushinteger(L, (lua_Integer)low);
  return 2;
}

static int tr_write_buffer_size(lua_State *L) {
  TRANSPORT();
  size_t n;
  int rc = ops->write_buffer_size(&n, t);
  if (rc < 0) return lasync_fail(L, rc);
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

void lasync_newtransport(lua_State *L, const luaL_Reg *methods, lua_CFunction gc, const ltransport_ops *ops) {
  static const luaL_Reg shared[] = {
      {"close", tr_close},
      {"abort", tr_abort},
      {"pause_reading", tr_pause_reading},
      {"resume_reading", tr_resume_reading},
      {"is_reading", tr_is_reading},
      {"set_write_limits", tr_set_write_limits},
      {"get_write_limits", tr_get_write_limits},
      {"write_buffer_size", tr_write_buffer_size},
      {"__close", tr_close},
      {NULL, NULL},
  };
  lasync_newclass(L, ops->tname, methods, gc);
  luaL_getmetatable(L, ops->tname);
  lua_pushvalue(L, -1);
  lua_pushlightuserdata(L, (void *)ops);
  luaL_setfuncs(L, shared, 2);
  lua_pop(L, 1);
}
