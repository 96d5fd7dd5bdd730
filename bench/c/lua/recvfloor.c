/*
 * recvfloor.c - the least a Lua binding can do per received datagram,
 * for bench/multicast.lua.
 *
 *   local f = require("recvfloor").wrap(fd)
 *   local data, ip, port = f:receivefrom(max)
 *
 * One method call through a userdata's __index table, one recvfrom(), the
 * data as a Lua string, the sender's address text reused while it stays the
 * same, the port as an integer: what every receivefrom must do.  Nothing
 * else: no check of the object or the arguments, no timeout, no wait, no
 * error message (nil on any failure).  A real binding cannot be faster
 * than this on the same Lua; the bench prints it so the receivefrom ratio
 * can be read against it.  Builds against any Lua 5.1-5.4 or LuaJIT.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include <lauxlib.h>
#include <lua.h>

#define META "recvfloor"

typedef struct {
  int fd;
  struct in_addr last;  /* sender whose text is upvalue 1 of receivefrom */
} floor_sock;

static char buf[65536];

static int f_receivefrom(lua_State *L) {
  floor_sock *u = (floor_sock *)lua_touserdata(L, 1);
  size_t max = (size_t)lua_tointeger(L, 2);
  struct sockaddr_in from;
  socklen_t flen = sizeof from;
  ssize_t n;
  if (max > sizeof buf) max = sizeof buf;
  n = recvfrom(u->fd, buf, max, MSG_DONTWAIT, (struct sockaddr *)&from, &flen);
  if (n < 0) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushlstring(L, buf, (size_t)n);
  if (from.sin_addr.s_addr != u->last.s_addr ||
      lua_isnil(L, lua_upvalueindex(1))) {
    char txt[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &from.sin_addr, txt, sizeof txt);
    lua_pushstring(L, txt);
    lua_replace(L, lua_upvalueindex(1));
    u->last = from.sin_addr;
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushinteger(L, ntohs(from.sin_port));
  return 3;
}

static int f_wrap(lua_State *L) {
  int fd = (int)luaL_checkinteger(L, 1);
  floor_sock *u = (floor_sock *)lua_newuserdata(L, sizeof *u);
  u->fd = fd;
  u->last.s_addr = 0;
  luaL_getmetatable(L, META);
  lua_setmetatable(L, -2);
  return 1;
}

int luaopen_recvfloor(lua_State *L) {
  luaL_newmetatable(L, META);
  lua_newtable(L);
  lua_pushnil(L);  /* no sender yet */
  lua_pushcclosure(L, f_receivefrom, 1);
  lua_setfield(L, -2, "receivefrom");
  lua_setfield(L, -2, "__index");
  lua_newtable(L);
  lua_pushcfunction(L, f_wrap);
  lua_setfield(L, -2, "wrap");
  return 1;
}
