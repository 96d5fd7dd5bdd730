/*
 * tcp_master.c - LuaSocket's unconnected TCP object and its life cycle.
 *
 * tcp.tcp() / tcp.tcp4() / tcp.tcp6() make a "master": a TCP socket with
 * no connection yet, on which scripts set a timeout and options, bind,
 * and then either connect (it becomes a netlua.tcp client, the same
 * object) or listen (it becomes a netlua.tcpserver).  That is what
 * copas.connect and many LuaSocket scripts do.  With a zero timeout a
 * connect that cannot finish at once answers "timeout" and keeps going;
 * calling connect again answers "timeout" while it is under way and
 * "already connected" once it is done, as LuaSocket does.
 *
 * Also here: setfd, getstats and setstats, which every TCP object has.
 * Not here: reading and writing (tcp.c, buffer.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "netlua.h"

#define MASTER NL_TCPMASTER

/* The options set on a master live in its user value (a table name ->
 * value): a master made by tcp.tcp() may have to remake its descriptor
 * for the other family, and then sets them again. */
static void replay_options(lua_State *L, int obj) {
  int t;
  if (lua_getiuservalue(L, obj, 1) != LUA_TTABLE) {
    lua_pop(L, 1);
    return;
  }
  t = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, t) != 0) {
    lua_pushcfunction(L, nl_tcp_setoption);
    lua_pushvalue(L, obj);
    lua_pushvalue(L, -4);  /* name */
    lua_pushvalue(L, -4);  /* value */
    lua_call(L, 3, 0);     /* a failure to set one again is ignored */
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

static int new_fd(int family, int v6only) {
  int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd >= 0 && family == AF_INET6 && v6only >= 0)
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
  return fd;
}

/* Gives the master at obj a new descriptor of another family; NL_OK or
 * an errno (the old descriptor stays then). */
static int refamily(lua_State *L, int obj, nl_sock *s, int family) {
  int fd = new_fd(family, -1);
  if (fd < 0) return errno;
  close(s->fd);
  s->fd = fd;
  s->family = family;
  replay_options(L, obj);
  return NL_OK;
}

static int m_setoption(lua_State *L);
static int m_bind(lua_State *L);
static int m_listen(lua_State *L);
static int m_connect(lua_State *L);

static const luaL_Reg master_methods[] = {
  {"bind", m_bind}, {"listen", m_listen}, {"connect", m_connect},
  {"setoption", m_setoption}, {"getoption", nl_tcp_getoption},
  {NULL, NULL}};

static const nl_sock_kind master_kind = {
  MASTER, "socket", sizeof(nl_sock), 1, 1, master_methods, NULL, NULL, NULL};

/* tcp.tcp() / tcp.tcp4() / tcp.tcp6() -> master | nil, err, msg, code */
static int make_master(lua_State *L, int family, int any) {
  nl_sock *s;
  int fd = new_fd(family, 1);  /* tcp6: IPv6 only, as LuaSocket's */
  if (fd < 0) return nl_pushlsfail(L, errno, "socket");
  s = nl_sock_new(L, &master_kind, fd, family, SOCK_STREAM);
  s->anyfamily = any;
  return 1;
}

static int tcp_new(lua_State *L) { return make_master(L, AF_INET, 1); }
static int tcp_new4(lua_State *L) { return make_master(L, AF_INET, 0); }
static int tcp_new6(lua_State *L) { return make_master(L, AF_INET6, 0); }

/* master:setoption(name, value): set now and kept for a new descriptor */
static int m_setoption(lua_State *L) {
  int n;
  nl_sock_check(L, 1, MASTER);
  n = nl_tcp_setoption(L);  /* raises on a missing value */
  if (lua_toboolean(L, -n)) {
    if (lua_getiuservalue(L, 1, 1) != LUA_TTABLE) {
      lua_pop(L, 1);
      lua_newtable(L);
      lua_pushvalue(L, -1);
      lua_setiuservalue(L, 1, 1);
    }
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 3);
    lua_rawset(L, -3);
    lua_pop(L, 1);
  }
  return n;
}

/* master:bind(host, port) -> 1 | nil, err, msg, code.  "*" is the any
 * address of the object's family; a master made by tcp.tcp() takes the
 * family of the address given. */
static int m_bind(lua_State *L) {
  nl_sock *s = nl_sock_check(L, 1, MASTER);
  const char *host = nl_tcp_host(L, 2, 1);
  char serv[64], where[600] = "";
  struct addrinfo hints, *res = NULL, *ai;
  int gerr, err = EAFNOSUPPORT;
  nl_tcp_serv(L, 3, serv, sizeof serv);
  memset(&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  hints.ai_family = s->anyfamily && !s->bound && host != NULL ? AF_UNSPEC
                                                              : s->family;
  gerr = getaddrinfo(host, serv, &hints, &res);
  if (gerr != 0) {
    nl_pushfailcode(L, "resolve", "bind %s:%s: %s", host ? host : "*", serv,
                    gerr == EAI_SYSTEM ? strerror(errno) : gai_strerror(gerr));
    return nl_lsresult(L, nl_lsgaierror(gerr));
  }
  for (ai = res; ai != NULL; ai = ai->ai_next) {
    nl_addr_format(ai->ai_addr, where, sizeof where);
    if (ai->ai_family != s->family) {
      if (!s->anyfamily || s->bound) continue;
      if ((err = refamily(L, 1, s, ai->ai_family)) != NL_OK) continue;
    }
    if (bind(s->fd, ai->ai_addr, ai->ai_addrlen) == 0) {
      err = NL_OK;
      break;
    }
    err = errno;
  }
  freeaddrinfo(res);
  if (err != NL_OK) return nl_pushlsfail(L, err, "bind %s", where);
  s->bound = 1;
  lua_pushinteger(L, 1);
  return 1;
}

/* master:listen([backlog]) -> 1 | nil, err, msg, code; the object is a
 * server from then on (one that was not bound gets a free port). */
static int m_listen(lua_State *L) {
  nl_sock *s = nl_sock_check(L, 1, MASTER);
  lua_Integer backlog = luaL_optinteger(L, 2, 32);
  luaL_argcheck(L, backlog >= 0 && backlog <= 65535, 2, "out of range");
  if (listen(s->fd, (int)backlog) < 0) return nl_pushlsfail(L, errno, "listen");
  luaL_getmetatable(L, NL_TCPSERVER);
  lua_setmetatable(L, 1);
  lua_pushinteger(L, 1);
  return 1;
}

/* The connection is made (or under way): the object is a client now. */
static void become_client(lua_State *L, nl_sock *s, int done) {
  luaL_getmetatable(L, NL_TCP);
  lua_setmetatable(L, 1);
  s->bound = 1;
  if (!done) return;
  nl_sock_blocking(s);
  {
    int one = 1, set = 0;  /* as tcp.connect, unless the script chose */
    if (lua_getiuservalue(L, 1, 1) == LUA_TTABLE) {
      set = lua_getfield(L, -1, "tcp-nodelay") != LUA_TNIL;
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
    if (!set) setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
}

/* Tries the addresses kept in s from s->ai_cur on; resumed says we come
 * back from a wait for the connect on s->ai_cur. */
static int connect_loop(lua_State *L, nl_sock *s, nl_deadline *d,
                        int resumed) {
  char where[600] = "";
  int err = ECONNREFUSED;
  for (; s->ai_cur != NULL; s->ai_cur = s->ai_cur->ai_next) {
    const struct addrinfo *ai = s->ai_cur;
    nl_addr_format(ai->ai_addr, where, sizeof where);
    if (resumed) {
      resumed = 0;
      err = EINPROGRESS;
    } else {
      if (ai->ai_family != s->family) {
        err = EAFNOSUPPORT;
        if (!s->anyfamily || s->bound) continue;
        if ((err = refamily(L, 1, s, ai->ai_family)) != NL_OK) continue;
      }
      err = connect(s->fd, ai->ai_addr, ai->ai_addrlen) == 0 ? NL_OK : errno;
      if (err == EINTR || err == EALREADY) err = EINPROGRESS;
      if (err == EINPROGRESS && s->timeout == 0) {
        /* LuaSocket's non-blocking connect: "timeout", and it goes on */
        nl_coop_end(&s->co);
        nl_ai_free(s->ai_list);
        s->ai_list = s->ai_cur = NULL;
        become_client(L, s, 0);
        return nl_pushlsfail(L, NL_TIMEOUT, "connect %s", where);
      }
    }
    if (err == EINPROGRESS) err = nl_connect_wait(s->fd, &s->co, d);
    if (err == NL_PENDING) return nl_coop_pend(L, &s->co);
    if (err == NL_OK || err == NL_TIMEOUT || err == EISCONN) break;
  }
  nl_coop_end(&s->co);
  nl_ai_free(s->ai_list);
  s->ai_list = s->ai_cur = NULL;
  if (err != NL_OK) return nl_pushlsfail(L, err, "connect %s", where);
  become_client(L, s, 1);
  lua_pushinteger(L, 1);
  return 1;
}

/* master:connect(host, port) -> 1 | nil, err, msg, code.  Also a
 * client's, for the second call of a non-blocking connect.  The name
 * lookup and the attempts share the object's timeout; in a task both
 * pend, and closing the object wakes them. */
static int m_connect(lua_State *L) {
  nl_sock *s;
  nl_offload *r = NULL;
  struct addrinfo hints, *res = NULL;
  const char *host;
  char serv[64];
  nl_deadline d;
  int gerr, w;
  s = (nl_sock *)luaL_testudata(L, 1, MASTER);
  if (s == NULL) s = (nl_sock *)luaL_checkudata(L, 1, NL_TCP);
  if (nl_coop_closed(L, &s->co)) return nl_pushlsfail(L, NL_ABORTED, "connect");
  nl_sock_open(L, s);
  if (nl_coop_resumes(L, &s->co)) {
    nl_coop_begin(L, &s->co, NULL, s->timeout, &d);  /* what it kept is back */
    if (s->ai_list != NULL) return connect_loop(L, s, &d, 1);  /* a connect */
    r = nl_offload_top(L);  /* the lookup */
  }
  host = nl_tcp_host(L, 2, 0);
  nl_tcp_serv(L, 3, serv, sizeof serv);
  if (r == NULL) {
    lua_settop(L, 3);
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_family = s->anyfamily && !s->bound ? AF_UNSPEC : s->family;
    r = nl_resolve_start(L, host, serv, &hints, NULL, s->timeout);
    nl_coop_begin(L, &s->co, NULL, s->timeout, &d);
  }
  w = nl_resolve_wait(r, &s->co, &res, &gerr, &d);
  if (w == NL_PENDING) return nl_coop_pend(L, &s->co);
  if (w != NL_OK) {
    nl_coop_end(&s->co);
    return nl_pushlsfail(L, w, "connect %s:%s: name lookup", host, serv);
  }
  if (gerr != 0) {
    nl_coop_end(&s->co);
    nl_pushfailcode(L, "resolve", "connect %s:%s: %s", host, serv,
                    gerr == EAI_SYSTEM ? strerror(errno) : gai_strerror(gerr));
    return nl_lsresult(L, nl_lsgaierror(gerr));
  }
  s->ai_list = s->ai_cur = nl_resolve_take(L, r);  /* s frees it */
  return connect_loop(L, s, &d, 0);
}

/* ---- setfd, getstats, setstats: every TCP object --------------------- */

static nl_sock *any_tcp(lua_State *L) {
  void *p = luaL_testudata(L, 1, NL_TCP);
  if (p == NULL) p = luaL_testudata(L, 1, NL_TCPSERVER);
  if (p == NULL) p = luaL_checkudata(L, 1, MASTER);
  return (nl_sock *)p;
}

/* sock:setfd(fd): the object takes descriptor fd and closes the one it
 * had; setfd(-1) lets go of it without closing it (the object is closed
 * then), so it can be handed to other code, as with LuaSocket. */
static int t_setfd(lua_State *L) {
  nl_sock *s = any_tcp(L);
  lua_Integer fd = luaL_checkinteger(L, 2);
  luaL_argcheck(L, fd >= -1 && fd <= 0x7fffffff, 2, "not a descriptor");
  if (s->co.parked || s->wco.parked)
    return luaL_error(L, "setfd: a task is waiting on this object");
  if (s->fd >= 0 && fd >= 0 && s->fd != fd) close(s->fd);
  s->fd = -1;
  nl_sock_closefd(s);  /* the buffer and any lookup belonged to the old one */
  memset(&s->co, 0, sizeof s->co);
  memset(&s->wco, 0, sizeof s->wco);
  s->blocking = 0;
  s->rcvtimeo = 0;
  if (fd >= 0) {
    nl_addr a;
    a.len = sizeof a.ss;
    s->fd = (int)fd;
    nl_set_nonblock(s->fd);
    if (getsockname(s->fd, (struct sockaddr *)&a.ss, &a.len) == 0)
      s->family = a.ss.ss_family;
  }
  return 0;
}

/* sock:getstats() -> bytes received, bytes sent, age in seconds */
static int t_getstats(lua_State *L) {
  nl_sock *s = nl_sock_open(L, any_tcp(L));
  lua_pushinteger(L, (lua_Integer)s->nrecv);
  lua_pushinteger(L, (lua_Integer)s->nsent);
  lua_pushnumber(L, nl_monotime() - s->birth);
  return 3;
}

/* sock:setstats(received, sent [, age]) -> 1: counting goes on from there */
static int t_setstats(lua_State *L) {
  nl_sock *s = nl_sock_open(L, any_tcp(L));
  lua_Integer rcv = luaL_checkinteger(L, 2), snt = luaL_checkinteger(L, 3);
  luaL_argcheck(L, rcv >= 0, 2, "negative count");
  luaL_argcheck(L, snt >= 0, 3, "negative count");
  if (!lua_isnoneornil(L, 4)) {
    lua_Number age = luaL_checknumber(L, 4);
    luaL_argcheck(L, age >= 0, 4, "negative age");
    s->birth = nl_monotime() - age;
  }
  s->nrecv = (unsigned long long)rcv;
  s->nsent = (unsigned long long)snt;
  lua_pushinteger(L, 1);
  return 1;
}

void nl_tcp_common(lua_State *L, const char *tname) {
  static const luaL_Reg common[] = {
    {"setfd", t_setfd}, {"getstats", t_getstats}, {"setstats", t_setstats},
    {NULL, NULL}};
  nl_class_methods(L, tname);
  luaL_setfuncs(L, common, 0);
  lua_pop(L, 1);
}

void nl_open_tcp_master(lua_State *L) {
  static const luaL_Reg f[] = {
    {"tcp_new", tcp_new}, {"tcp_new4", tcp_new4}, {"tcp_new6", tcp_new6},
    {NULL, NULL}};
  nl_sock_class(L, &master_kind);
  nl_tcp_common(L, MASTER);
  /* a client answers a second connect (LuaSocket's non-blocking use) */
  nl_class_methods(L, NL_TCP);
  lua_pushcfunction(L, m_connect);
  lua_setfield(L, -2, "connect");
  lua_pop(L, 1);
  luaL_setfuncs(L, f, 0);
}
