/*
 * compat.h - the Lua 5.4 C API netlua is written against, on Lua 5.1,
 * 5.2, 5.3 and LuaJIT 2.1.
 *
 * The code uses 5.4's names and meanings; on older Luas this header adds
 * what is missing (as macros or small static functions) and gives the
 * get functions their 5.3 results (the type of the value pushed).  What
 * differs in meaning, not only in name:
 * - user values: 5.4 gives a userdata n values; before, there is one (5.2,
 *   5.3) or an environment table (5.1, LuaJIT).  Here the older Luas keep
 *   a table there whose slot i is user value i.
 * - lua_isyieldable: 5.1 and LuaJIT 2.1 without it: any coroutine but the
 *   main thread (a C call boundary in between is not seen: netlua's waits
 *   are only made from Lua there, through netlua/drive.lua).
 * - integers: 5.1 and 5.2 have none; lua_isinteger says whether a number
 *   has an integral value that fits lua_Integer.
 * Not written against lua-compat53 (Debian ships it for 5.1 and 5.2
 * only): netlua needs a score of functions, and 5.4's user values, which
 * it does not give.
 */
#ifndef NETLUA_COMPAT_H
#define NETLUA_COMPAT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua.h"
#include "lauxlib.h"

#if LUA_VERSION_NUM < 501 || LUA_VERSION_NUM > 504
#error "netlua builds against Lua 5.1 to 5.4 (or LuaJIT 2.1)"
#endif

#if LUA_VERSION_NUM == 501
#include "lualib.h"  /* LUA_FILEHANDLE */
#endif

/* ---- 5.1 and LuaJIT ---------------------------------------------------- */
#if LUA_VERSION_NUM == 501
#if !defined(LUAJIT_VERSION) && defined(luaL_newlibtable)
#define LUAJIT_VERSION "LuaJIT"  /* its lauxlib.h has 5.2's additions */
#endif
#define NL_LUA51 1
#define LUA_OK 0
typedef size_t lua_Unsigned;
#define lua_rawlen(L, i) lua_objlen((L), (i))
#ifndef luaL_newlib
#define luaL_newlib(L, l) (lua_newtable(L), luaL_setfuncs((L), (l), 0))
#endif

static inline int lua_absindex(lua_State *L, int i) {
  return (i > 0 || i <= LUA_REGISTRYINDEX) ? i : lua_gettop(L) + i + 1;
}

#ifndef LUAJIT_VERSION
/* LuaJIT 2.1 has these from 5.2 */
static inline void luaL_setfuncs(lua_State *L, const luaL_Reg *l, int nup) {
  luaL_checkstack(L, nup, "too many upvalues");
  for (; l->name != NULL; l++) {
    int i;
    for (i = 0; i < nup; i++) lua_pushvalue(L, -nup);
    lua_pushcclosure(L, l->func, nup);
    lua_setfield(L, -(nup + 2), l->name);
  }
  lua_pop(L, nup);
}

static inline void *luaL_testudata(lua_State *L, int i, const char *tname) {
  void *p = lua_touserdata(L, i);
  if (p == NULL || !lua_getmetatable(L, i)) return NULL;
  luaL_getmetatable(L, tname);
  if (!lua_rawequal(L, -1, -2)) p = NULL;
  lua_pop(L, 2);
  return p;
}

static inline void luaL_setmetatable(lua_State *L, const char *tname) {
  luaL_getmetatable(L, tname);
  lua_setmetatable(L, -2);
}

/* 5.2's: the value at from into slot to, nothing else moved */
static inline void lua_copy(lua_State *L, int from, int to) {
  int t = lua_absindex(L, to);
  lua_pushvalue(L, from);
  lua_replace(L, t);
}

#endif /* !LUAJIT_VERSION */

static inline const char *luaL_tolstring(lua_State *L, int i, size_t *len) {
  if (!luaL_callmeta(L, i, "__tostring")) {
    switch (lua_type(L, i)) {
      case LUA_TNUMBER: case LUA_TSTRING: lua_pushvalue(L, i); break;
      case LUA_TBOOLEAN:
        lua_pushstring(L, lua_toboolean(L, i) ? "true" : "false");
        break;
      case LUA_TNIL: lua_pushliteral(L, "nil"); break;
      default:
        lua_pushfstring(L, "%s: %p", luaL_typename(L, i), lua_topointer(L, i));
    }
  }
  return lua_tolstring(L, -1, len);
}

/* the light userdata keys are addresses: a table of them in the registry
 * works the same */
static inline int nl_rawgetp_(lua_State *L, int i, const void *p) {
  i = lua_absindex(L, i);
  lua_pushlightuserdata(L, (void *)p);
  lua_rawget(L, i);
  return lua_type(L, -1);
}
#define lua_rawgetp(L, i, p) nl_rawgetp_((L), (i), (p))

static inline void lua_rawsetp(lua_State *L, int i, const void *p) {
  i = lua_absindex(L, i);
  lua_pushlightuserdata(L, (void *)p);
  lua_insert(L, -2);
  lua_rawset(L, i);
}

/* a buffer of n bytes at once: 5.1's luaL_Buffer holds LUAL_BUFFERSIZE,
 * so the bytes go in a userdata on top until the result replaces it */
static inline char *nl_buffinitsize_(lua_State *L, luaL_Buffer *b, size_t n) {
  luaL_buffinit(L, b);
  return (char *)lua_newuserdata(L, n > 0 ? n : 1);
}
#define luaL_buffinitsize(L, b, n) nl_buffinitsize_((L), (b), (n))

static inline void nl_pushresultsize_(luaL_Buffer *b, size_t n) {
  lua_State *L = b->L;
  lua_pushlstring(L, (const char *)lua_touserdata(L, -1), n);
  lua_remove(L, -2);
}
#define luaL_pushresultsize(b, n) nl_pushresultsize_((b), (n))

/* a file of io: FILE* first, in 5.1's userdata and in LuaJIT's */
typedef struct luaL_Stream {
  FILE *f;
} luaL_Stream;
#define NL_STREAM_CLOSED(p) ((p)->f == NULL)
#endif /* 5.1 */

/* ---- 5.1 to 5.3 ---------------------------------------------------------- */
#if LUA_VERSION_NUM <= 503
#define luaL_typeerror(L, arg, tname) \
  luaL_argerror((L), (arg), lua_pushfstring((L), "%s expected, got %s", \
                (tname), luaL_typename((L), (arg))))

/* the get functions return the type of what they push, as 5.3's do (a
 * macro does not expand inside itself: the inner call is the real one) */
#if LUA_VERSION_NUM <= 502
#define lua_getfield(L, i, k) (lua_getfield((L), (i), (k)), lua_type((L), -1))
#define lua_rawget(L, i) (lua_rawget((L), (i)), lua_type((L), -1))
#define lua_rawgeti(L, i, n) (lua_rawgeti((L), (i), (int)(n)), lua_type((L), -1))
#define lua_gettable(L, i) (lua_gettable((L), (i)), lua_type((L), -1))
#if LUA_VERSION_NUM == 502
#define lua_rawgetp(L, i, p) (lua_rawgetp((L), (i), (p)), lua_type((L), -1))
#endif
#if LUA_VERSION_NUM == 501
#undef lua_getglobal
#define lua_getglobal(L, k) lua_getfield((L), LUA_GLOBALSINDEX, (k))
#else
#define lua_getglobal(L, k) (lua_getglobal((L), (k)), lua_type((L), -1))
#endif

/* 5.1 and 5.2 answer whether a field was found; 5.3 its type */
static inline int nl_getmetafield_(lua_State *L, int i, const char *e) {
  return luaL_getmetafield(L, i, e) ? lua_type(L, -1) : LUA_TNIL;
}
#define luaL_getmetafield(L, i, e) nl_getmetafield_((L), (i), (e))

static inline int lua_isinteger(lua_State *L, int i) {
  lua_Number n;
  if (lua_type(L, i) != LUA_TNUMBER) return 0;
  n = lua_tonumber(L, i);
  return n == (lua_Number)(lua_Integer)n;
}

/* 5.3's: a number (or numeric string) with an integral value; 5.1's and
 * 5.2's (and LuaJIT's) would truncate 1.5 to 1 and say yes */
static inline lua_Integer nl_tointegerx_(lua_State *L, int i, int *isnum) {
  lua_Number n = lua_tonumber(L, i);
  int ok = lua_isnumber(L, i) && n == (lua_Number)(lua_Integer)n;
  if (isnum != NULL) *isnum = ok;
  return ok ? (lua_Integer)n : 0;
}
#undef lua_tointegerx
#define lua_tointegerx(L, i, isnum) nl_tointegerx_((L), (i), (isnum))

/* 5.3's checks: 1.5 is no integer (5.1 and 5.2 would take 1) */
static inline lua_Integer nl_checkinteger_(lua_State *L, int arg) {
  int isnum;
  lua_Integer d = lua_tointegerx(L, arg, &isnum);
  if (!isnum) {
    if (lua_isnumber(L, arg))
      luaL_argerror(L, arg, "number has no integer representation");
    else
      luaL_argerror(L, arg, lua_pushfstring(L, "number expected, got %s",
                                            luaL_typename(L, arg)));
  }
  return d;
}
#undef luaL_checkinteger
#define luaL_checkinteger(L, arg) nl_checkinteger_((L), (arg))
#undef luaL_optinteger
#define luaL_optinteger(L, arg, d) \
  (lua_isnoneornil((L), (arg)) ? (lua_Integer)(d) : nl_checkinteger_((L), (arg)))

static inline void lua_rotate(lua_State *L, int idx, int n) {
  /* as 5.3's: rotates the slots from idx to the top n places up */
  int t = lua_gettop(L), m, i;
  idx = lua_absindex(L, idx);
  m = t - idx + 1;
  if (m <= 0) return;
  n = ((n % m) + m) % m;
  for (i = 0; i < n; i++) lua_insert(L, idx);
}

static inline size_t lua_stringtonumber(lua_State *L, const char *s) {
  char *end;
  double d;
  size_t len = strlen(s);
  d = strtod(s, &end);
  /* hex floats and blanks around: strtod takes them as Lua does */
  while (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r' ||
         *end == '\f' || *end == '\v')
    end++;
  if (end == s || *end != '\0') return 0;
  lua_pushnumber(L, d);
  return len + 1;
}
#endif /* <= 5.2 */

#if (LUA_VERSION_NUM == 501 && !defined(LUAJIT_VERSION)) || LUA_VERSION_NUM == 502
static inline int lua_isyieldable(lua_State *L) {
  int main = lua_pushthread(L);
  lua_pop(L, 1);
  return !main;
}
#endif

/* n user values: a table in the one place older Luas have */
static inline void *lua_newuserdatauv(lua_State *L, size_t size, int nuv) {
  void *p = lua_newuserdata(L, size);
  if (nuv > 0) {
    lua_createtable(L, nuv, 0);
#if LUA_VERSION_NUM == 501
    lua_setfenv(L, -2);
#else
    lua_setuservalue(L, -2);
#endif
  }
  return p;
}

/* pushes the table of a userdata's values (or what is there instead) */
static inline void nl_uvtable_(lua_State *L, int i) {
#if LUA_VERSION_NUM == 501
  lua_getfenv(L, i);
#else
  lua_getuservalue(L, i);
#endif
}

static inline int lua_getiuservalue(lua_State *L, int i, int n) {
  nl_uvtable_(L, i);
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    lua_pushnil(L);
    return LUA_TNONE;
  }
  lua_rawgeti(L, -1, n);
  lua_remove(L, -2);
  return lua_type(L, -1);
}

static inline int lua_setiuservalue(lua_State *L, int i, int n) {
  i = lua_absindex(L, i);
  nl_uvtable_(L, i);
  if (!lua_istable(L, -1)) {
    lua_pop(L, 2);
    return 0;
  }
  lua_insert(L, -2);
  lua_rawseti(L, -2, n);
  lua_pop(L, 1);
  return 1;
}
#endif /* <= 5.3 */

#ifndef NL_STREAM_CLOSED
#define NL_STREAM_CLOSED(p) ((p)->closef == NULL)
#endif

#endif
