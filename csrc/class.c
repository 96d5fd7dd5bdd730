/*
 * class.c - the one way a kind of netlua object gets its metatable.
 *
 * As createmeta in liolib.c and auxiliar.c in LuaSocket: a kind is a
 * name, a table of methods and the metamethods __gc, __close and
 * __tostring; nl_class_make builds its metatable under that name in the
 * registry, with __name (which 5.1 and 5.2 do not set) and __index.
 * Every kind uses it: the sockets (sock.c makes theirs through it), the
 * Telnet session and engine, the FTP session, and the internal ones (the
 * poller, a lookup's box, a resolver run, the resolver's bell).  Kinds
 * whose methods may wait are listed for netlua/drive.lua (core.KINDS),
 * so that the names live here only.  Every function of a kind closes over
 * its metatable, so a method checks the object it was called on by
 * comparing metatables (nl_class_self) instead of looking its kind's name
 * up in the registry on every call.
 * Not here: what any kind does (its own file), checking the kind of any
 * other argument (luaL_checkudata, or the kind's checker).
 */
#include <string.h>

#include "netlua.h"

static const char kinds_key = 'k';  /* registry: array of waiting kinds */

/* Sets the functions of l, each a closure over the nup values on top
 * (left there), as fields of the table at absolute index t. */
static void set_funcs(lua_State *L, int t, const luaL_Reg *l, int nup) {
  for (; l != NULL && l->name != NULL; l++) {
    int i;
    if (l->func == NULL) continue;  /* a placeholder, set by the kind */
    for (i = 0; i < nup; i++) lua_pushvalue(L, -nup);
    lua_pushcclosure(L, l->func, nup);
    lua_setfield(L, t, l->name);
  }
}

static void set_meta(lua_State *L, int mt, const char *name,
                     lua_CFunction f, int nup) {
  int i;
  if (f == NULL) return;
  for (i = 0; i < nup; i++) lua_pushvalue(L, -nup);
  lua_pushcclosure(L, f, nup);
  lua_setfield(L, mt, name);
}

void nl_class_make(lua_State *L, const nl_class *c, int nup) {
  int mt, top = lua_gettop(L) - nup, i;
  luaL_checkstack(L, nup + 5, "too many upvalues");
  luaL_newmetatable(L, c->name);
  mt = lua_gettop(L);
  lua_pushstring(L, c->name);
  lua_setfield(L, mt, "__name");
  /* the upvalues on top, above the metatable: the metatable itself
   * first (nl_class_self), then the kind's own */
  lua_pushvalue(L, mt);
  for (i = 1; i <= nup; i++) lua_pushvalue(L, top + i);
  nup++;
  if (c->methods != NULL || c->more != NULL) {
    lua_newtable(L);
    lua_insert(L, -(nup + 1));  /* below the upvalues */
    set_funcs(L, mt + 1, c->methods, nup);
    set_funcs(L, mt + 1, c->more, nup);
    lua_pushvalue(L, mt + 1);
    lua_setfield(L, mt, "__index");
  }
  set_meta(L, mt, "__gc", c->gc, nup);
  set_meta(L, mt, "__close", c->close, nup);
  set_meta(L, mt, "__tostring", c->tostring, nup);
  if (c->waits) {
    lua_Integer n;
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &kinds_key) != LUA_TTABLE) {
      lua_pop(L, 1);
      lua_newtable(L);
      lua_pushvalue(L, -1);
      lua_rawsetp(L, LUA_REGISTRYINDEX, &kinds_key);
    }
    n = (lua_Integer)lua_rawlen(L, -1);
    lua_pushstring(L, c->name);
    lua_rawseti(L, -2, n + 1);
  }
  lua_settop(L, top);  /* the metatable, the table, the upvalues */
}

void *nl_class_self(lua_State *L, const char *name) {
  /* the metatable compared with the method's upvalue: no lookup of the
   * name in the registry, which costs more than the rest of a short
   * method (a string hashed and compared, a table searched) */
  void *p = lua_touserdata(L, 1);
  if (p != NULL && lua_getmetatable(L, 1)) {
    int same = lua_rawequal(L, -1, lua_upvalueindex(1));
    lua_pop(L, 1);
    if (same) return p;
  }
  /* another function (no upvalue: never equal), or not the kind */
  return luaL_checkudata(L, 1, name);
}

void *nl_class_new(lua_State *L, const char *name, size_t size, int nuv) {
  void *p = lua_newuserdatauv(L, size > 0 ? size : 1, nuv);
  memset(p, 0, size);
  luaL_setmetatable(L, name);
  return p;
}

void nl_class_methods(lua_State *L, const char *name) {
  if (luaL_getmetatable(L, name) != LUA_TTABLE ||
      lua_getfield(L, -1, "__index") != LUA_TTABLE)
    luaL_error(L, "no object kind '%s' with methods", name);
  lua_remove(L, -2);
}

/* core.methods(name) -> the method table of a kind, so the Lua side can
 * add methods written in Lua (tcp:makefile, ...). */
static int l_methods(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  if (luaL_getmetatable(L, name) != LUA_TTABLE ||
      lua_getfield(L, -1, "__index") != LUA_TTABLE)
    return luaL_argerror(L, 1, "no such object kind");
  return 1;
}

void nl_open_class(lua_State *L) {
  lua_pushcfunction(L, l_methods);
  lua_setfield(L, -2, "methods");
  /* the kinds made so far (core.c opens this last) */
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &kinds_key) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
  }
  lua_setfield(L, -2, "KINDS");
}
