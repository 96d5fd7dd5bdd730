/*
 * core.c - luaopen_netlua_core: builds the one table every Lua module of
 * netlua sits on.  Each concern registers itself through its nl_open_*
 * function; nothing else lives here.
 */
#include "netlua.h"

#define NETLUA_VERSION "0.1.0"

/* core.methods(tname) -> the method table of a metatable, so the Lua side
 * can add methods written in Lua (tcp:makefile, ...). */
static int l_methods(lua_State *L) {
  const char *tname = luaL_checkstring(L, 1);
  if (luaL_getmetatable(L, tname) != LUA_TTABLE)
    return luaL_argerror(L, 1, "no such object kind");
  lua_getfield(L, -1, "__index");
  return 1;
}

NL_EXPORT int luaopen_netlua_core(lua_State *L) {
  lua_newtable(L);
  nl_open_timeout(L);
  nl_open_sched(L);
  nl_open_resolve(L);
  nl_open_lookup(L);
  nl_open_tcp(L);
  nl_open_tcp_master(L);
  nl_open_udp(L);
  nl_open_telnet(L);
  nl_open_ftp(L);
  nl_open_ftp_list(L);
  nl_open_fs(L);
  lua_pushcfunction(L, l_methods);
  lua_setfield(L, -2, "methods");
  lua_pushliteral(L, NETLUA_VERSION);
  lua_setfield(L, -2, "version");
  return 1;
}
