/*
 * addr.c - socket addresses in and out of Lua.
 *
 * Lua sees an address as an IP string plus a port number, never as a
 * packed struct.  Name resolution lives in lookup.c; this file only
 * converts numeric forms.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "netlua.h"

const char *nl_family_name(int family) {
  switch (family) {
    case AF_INET: return "inet";
    case AF_INET6: return "inet6";
    case AF_UNIX: return "unix";
    case AF_UNSPEC: return "unspec";
    default: return "unknown";
  }
}

int nl_addr_from(nl_addr *a, const char *ip, int port, int family) {
  struct addrinfo hints, *res = NULL;
  char serv[8];
  int r;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = family;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
  hints.ai_socktype = SOCK_DGRAM;
  snprintf(serv, sizeof serv, "%d", port);
  /* getaddrinfo also understands "fe80::1%eth0" scope ids */
  r = getaddrinfo(ip, serv, &hints, &res);
  if (r != 0) return r;
  memset(a, 0, sizeof *a);
  memcpy(&a->ss, res->ai_addr, res->ai_addrlen);
  a->len = res->ai_addrlen;
  freeaddrinfo(res);
  return 0;
}

int nl_addr_port(const struct sockaddr *sa) {
  if (sa->sa_family == AF_INET)
    return ntohs(((const struct sockaddr_in *)sa)->sin_port);
  if (sa->sa_family == AF_INET6)
    return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
  return 0;
}

static void ip_text(const struct sockaddr *sa, char *ip, size_t iplen,
                    int *port) {
  ip[0] = '\0';
  *port = nl_addr_port(sa);
  if (sa->sa_family == AF_INET)
    inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, ip,
              (socklen_t)iplen);
  else if (sa->sa_family == AF_INET6)
    inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, ip,
              (socklen_t)iplen);
}

int nl_addr_push(lua_State *L, const struct sockaddr *sa) {
  char ip[INET6_ADDRSTRLEN + 1];
  int port;
  ip_text(sa, ip, sizeof ip, &port);
  lua_pushstring(L, ip);
  lua_pushinteger(L, port);
  return 2;
}

void nl_addr_format(const struct sockaddr *sa, char *out, size_t outlen) {
  char ip[INET6_ADDRSTRLEN + 1];
  int port;
  ip_text(sa, ip, sizeof ip, &port);
  if (sa->sa_family == AF_INET6) snprintf(out, outlen, "[%s]:%d", ip, port);
  else snprintf(out, outlen, "%s:%d", ip, port);
}

int nl_checkport(lua_State *L, int arg) {
  lua_Integer p;
  int isnum;
  p = lua_tointegerx(L, arg, &isnum);
  if (!isnum) {
    if (lua_type(L, arg) == LUA_TNUMBER)
      luaL_argerror(L, arg, "port must be an integer");
    luaL_typeerror(L, arg, "number");
  }
  luaL_argcheck(L, p >= 0 && p <= 65535, arg, "port out of range 0..65535");
  return (int)p;
}

int nl_optport(lua_State *L, int arg, int dflt) {
  return lua_isnoneornil(L, arg) ? dflt : nl_checkport(L, arg);
}
