/*
 * core.c - luaopen_netlua_core: builds the one table every Lua module of
 * netlua sits on.  Each concern registers itself through its nl_open_*
 * function; nothing else lives here.
 */
#include "netlua.h"

#define NETLUA_VERSION "0.1.0"

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
  nl_open_pattern(L);
  nl_open_ssh(L);
  nl_open_ftp(L);
  nl_open_ftp_list(L);
  nl_open_fs(L);
  nl_open_sftp_codec(L);
  nl_open_class(L);  /* last: core.KINDS lists the kinds made above */
  lua_pushliteral(L, NETLUA_VERSION);
  lua_setfield(L, -2, "version");
  return 1;
}
