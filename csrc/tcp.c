/*
 * tcp.c - TCP client and server sockets.
 *
 * connect() tries every address getaddrinfo gives within one deadline;
 * reads go through the shared stream reader (buffer.c), so io formats,
 * LuaSocket patterns and makefile() all see the same buffered bytes.
 * makefile() itself is Lua (netlua/tcp.lua) on top of these methods.
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

#define TCP NL_TCP
#define SERVER NL_TCPSERVER

static const nl_sock_kind tcp_kind, server_kind;  /* at the end */

static int opt_family(lua_State *L, int opts, const char *field) {
  int fam = AF_UNSPEC;
  if (lua_getfield(L, opts, field) != LUA_TNIL) {
    const char *f = lua_tostring(L, -1);
    if (f && strcmp(f, "inet") == 0) fam = AF_INET;
    else if (f && strcmp(f, "inet6") == 0) fam = AF_INET6;
    else if (!(f && strcmp(f, "unspec") == 0))
      luaL_error(L, "bad option '%s' (expected \"inet\", \"inet6\" or "
                    "\"unspec\")", field);
  }
  lua_pop(L, 1);
  return fam;
}

static void check_opts(lua_State *L, int arg) {
  if (!lua_isnoneornil(L, arg)) luaL_checktype(L, arg, LUA_TTABLE);
}

/* host argument: a string; "*" or nil means any address when passive. */
const char *nl_tcp_host(lua_State *L, int arg, int passive) {
  const char *h;
  if (passive && lua_isnoneornil(L, arg)) return NULL;
  h = luaL_checkstring(L, arg);
  luaL_argcheck(L, strlen(h) == lua_rawlen(L, arg), arg,
                "host contains a NUL byte");
  if (passive && strcmp(h, "*") == 0) return NULL;
  return h;
}

/* port argument: number 0..65535 or a service name string. */
void nl_tcp_serv(lua_State *L, int arg, char *buf, size_t n) {
  if (lua_type(L, arg) == LUA_TSTRING && !lua_isnumber(L, arg)) {
    snprintf(buf, n, "%s", lua_tostring(L, arg));
  } else {
    snprintf(buf, n, "%d", nl_checkport(L, arg));
  }
}

static int resolve_fail(lua_State *L, const char *what, const char *host,
                        const char *serv, int gerr) {
  int limit = gerr == EAI_SYSTEM && (errno == EMFILE || errno == ENFILE);
  return nl_pushfailcode(L, limit ? "limit" : "resolve", "%s %s:%s: %s", what,
                         host ? host : "*", serv,
                         gerr == EAI_SYSTEM ? strerror(errno)
                                            : gai_strerror(gerr));
}

static int bind_local(int fd, int family, const char *ip, int port) {
  nl_addr a;
  if (nl_addr_from(&a, ip, port, family) != 0) return EADDRNOTAVAIL;
  if (bind(fd, (struct sockaddr *)&a.ss, a.len) < 0) return errno;
  return NL_OK;
}

typedef struct connect_opts {
  int family, bindport;
  const char *bindip;
  double timeout;
} connect_opts;

static void check_connect_opts(lua_State *L, connect_opts *o) {
  o->family = AF_UNSPEC;
  o->bindip = NULL;
  o->bindport = 0;
  o->timeout = -1;
  check_opts(L, 3);
  if (!lua_istable(L, 3)) return;
  o->family = opt_family(L, 3, "family");
  o->timeout = nl_opttimeout_field(L, 3, -1);
  if (lua_getfield(L, 3, "bind") == LUA_TSTRING) o->bindip = lua_tostring(L, -1);
  else if (!lua_isnil(L, -1)) luaL_error(L, "bad option 'bind' (string expected)");
  lua_pop(L, 1);  /* the string stays alive in the opts table */
  if (lua_getfield(L, 3, "bindport") != LUA_TNIL) {
    lua_Integer p = lua_tointeger(L, -1);
    if (!lua_isinteger(L, -1) || p < 0 || p > 65535)
      luaL_error(L, "bad option 'bindport' (integer 0..65535 expected)");
    o->bindport = (int)p;
  }
  lua_pop(L, 1);
}

/* Starts a nonblocking connect to s->ai_cur; NL_OK, EINPROGRESS or error */
static int connect_start(nl_sock *s, const connect_opts *o) {
  const struct addrinfo *ai = s->ai_cur;
  int r;
  s->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
                 ai->ai_protocol);
  if (s->fd < 0) return errno;
  s->family = ai->ai_family;
  if (o->bindip) {
    r = bind_local(s->fd, ai->ai_family, o->bindip, o->bindport);
    if (r != NL_OK) return r;
  }
  if (connect(s->fd, ai->ai_addr, ai->ai_addrlen) == 0) return NL_OK;
  return errno == EINTR ? EINPROGRESS : errno;
}

/* Walks the address list kept in s; a wait in a task pends, and the
 * restart comes back here through tcp_connect with s kept above its
 * arguments. */
static int connect_loop(lua_State *L, nl_sock *s, const connect_opts *o,
                        const nl_deadline *d) {
  char where[600] = "";
  int err = ECONNREFUSED;
  for (; s->ai_cur != NULL; s->ai_cur = s->ai_cur->ai_next) {
    nl_addr_format(s->ai_cur->ai_addr, where, sizeof where);
    err = s->fd >= 0 ? EINPROGRESS : connect_start(s, o);
    if (err == EINPROGRESS) err = nl_connect_wait(s->fd, &s->co, d);
    if (err == NL_PENDING) return nl_coop_pend(L, &s->co);
    if (err == NL_OK) break;
    close(s->fd);
    s->fd = -1;
    if (err == NL_TIMEOUT) break;
  }
  nl_coop_end(&s->co);
  nl_ai_free(s->ai_list);
  s->ai_list = s->ai_cur = NULL;
  if (s->fd < 0) return nl_pushfail(L, err, "connect %s", where);
  s->timeout = o->timeout;  /* as Python's create_connection: it stays */
  nl_sock_blocking(s);
  {
    int one = 1;  /* request/response protocols want small writes out now */
    setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  return 1;
}

/* tcp.connect(host, port [, opts]).  One deadline covers the name lookup
 * and the connection attempts; either part waits in its task only inside
 * netlua.run. */
static int tcp_connect(lua_State *L) {
  const char *host;
  char serv[64];
  struct addrinfo hints, *res = NULL;
  connect_opts o;
  nl_deadline d;
  nl_sock *s = (nl_sock *)nl_coop_peek(L, TCP);
  nl_offload *r;
  int gerr, w;
  if (s != NULL && nl_coop_resumes(L, &s->co)) {  /* after a connect wait */
    lua_settop(L, 3);
    check_connect_opts(L, &o);
    nl_coop_begin(L, &s->co, NULL, o.timeout, &d);  /* s back at 4 */
    return connect_loop(L, s, &o, &d);
  }
  r = nl_resolve_resumed(L);  /* after a wait for the name lookup */
  host = nl_tcp_host(L, 1, 0);
  nl_tcp_serv(L, 2, serv, sizeof serv);
  check_connect_opts(L, &o);
  if (r == NULL) {
    lua_settop(L, 3);
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_family = o.family;
    r = nl_resolve_start(L, host, serv, &hints, NULL, o.timeout);
  }
  w = nl_resolve_wait(r, NULL, &res, &gerr, &d);
  if (w == NL_PENDING) return nl_offload_pend(L, r);
  if (w != NL_OK)
    return nl_pushfail(L, w, "connect %s:%s: name lookup", host, serv);
  if (gerr != 0) return resolve_fail(L, "connect", host, serv, gerr);
  s = nl_sock_new(L, &tcp_kind, -1, AF_UNSPEC, SOCK_STREAM);
  s->ai_list = s->ai_cur = nl_resolve_take(L, r);  /* s frees it */
  lua_replace(L, 4);  /* the socket in the lookup's place */
  lua_settop(L, 4);
  {
    nl_deadline fresh;
    nl_coop_begin(L, &s->co, NULL, o.timeout, &fresh);
    s->co.dl = d;  /* what the lookup left of the timeout */
  }
  return connect_loop(L, s, &o, &d);
}

/* tcp.listen(host, port [, opts]) -> server */
static int tcp_listen(lua_State *L) {
  const char *host = nl_tcp_host(L, 1, 1);
  char serv[64], where[600] = "";
  struct addrinfo hints, *res = NULL, *ai;
  int gerr, err = EADDRNOTAVAIL, backlog = 128, reuse = 1, v6only = -1;
  nl_sock *s;
  nl_tcp_serv(L, 2, serv, sizeof serv);
  check_opts(L, 3);
  memset(&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  if (lua_istable(L, 3)) {
    hints.ai_family = opt_family(L, 3, "family");
    if (lua_getfield(L, 3, "backlog") != LUA_TNIL) {
      if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 ||
          lua_tointeger(L, -1) > 65535)
        luaL_error(L, "bad option 'backlog' (integer 1..65535 expected)");
      backlog = (int)lua_tointeger(L, -1);
    }
    if (lua_getfield(L, 3, "reuse") != LUA_TNIL) reuse = lua_toboolean(L, -1);
    if (lua_getfield(L, 3, "ipv6only") != LUA_TNIL)
      v6only = lua_toboolean(L, -1);
    lua_pop(L, 3);
  }
  gerr = getaddrinfo(host, serv, &hints, &res);
  if (gerr != 0) return resolve_fail(L, "listen", host, serv, gerr);
  s = nl_sock_new(L, &server_kind, -1, AF_UNSPEC, SOCK_STREAM);
  for (ai = res; ai != NULL; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
                    ai->ai_protocol);
    nl_addr_format(ai->ai_addr, where, sizeof where);
    if (fd < 0) { err = errno; continue; }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof reuse);
    if (ai->ai_family == AF_INET6 && v6only >= 0)
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, backlog) == 0) {
      s->fd = fd;
      s->family = ai->ai_family;
      break;
    }
    err = errno;
    close(fd);
  }
  freeaddrinfo(res);
  if (s->fd < 0) return nl_pushfail(L, err, "listen %s", where);
  return 1;
}

/* server:accept([timeout]) -> client socket | nil, err, msg, code */
static int srv_accept(lua_State *L) {
  nl_sock *srv = nl_sock_lsop(L, 1, SERVER, "accept");
  nl_deadline d;
  if (srv == NULL) return 4;
  nl_coop_begin(L, &srv->co, NULL, nl_opttimeout(L, 2, srv->timeout), &d);
  for (;;) {
    nl_addr a;
    int fd, r;
    a.len = sizeof a.ss;
    fd = accept4(srv->fd, (struct sockaddr *)&a.ss, &a.len,
                 SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd >= 0) {
      nl_sock *c = nl_sock_new(L, &tcp_kind, fd, a.ss.ss_family, SOCK_STREAM);
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      c->timeout = srv->timeout;
      nl_sock_blocking(c);
      nl_coop_end(&srv->co);
      return 1;
    }
    if (errno == EINTR || errno == ECONNABORTED) continue;
    r = errno;
    if (r == EAGAIN || r == EWOULDBLOCK)
      r = nl_coop_wait(&srv->co, srv->fd, NL_WAIT_READ, &d);
    if (r == NL_PENDING) return nl_coop_pend(L, &srv->co);
    if (r != NL_OK) {
      nl_coop_end(&srv->co);
      return nl_pushlsfail(L, r, "accept");
    }
  }
}

/* sock:read(fmt...) io-style.  Results of formats read before a wait
 * are kept above the formats (co.base) and count as done. */
static int tcp_read(lua_State *L) {
  nl_sock *s = nl_sock_op(L, 1, TCP, "read");
  nl_deadline d;
  int n;
  if (s == NULL) return 3;
  if (!nl_coop_begin(L, &s->co, NULL, s->timeout, &d)) {
    if (lua_gettop(L) == 1) lua_pushliteral(L, "l");
    s->co.base = lua_gettop(L);
  }
  n = nl_stream_read(L, &s->st, &d, 2, s->co.base, "read");
  if (n < 0) return nl_coop_pend(L, &s->co);
  nl_coop_end(&s->co);
  return n;
}

static int lines_iter(lua_State *L) {
  nl_sock *s = nl_sock_raw(L, lua_upvalueindex(1), TCP);
  int n = (int)lua_tointeger(L, lua_upvalueindex(2)), i, got;
  nl_deadline d;
  if (nl_coop_closed(L, &s->co)) return 0;  /* closed by another task: done */
  if (s->fd < 0) return luaL_error(L, "socket is already closed");
  lua_settop(L, 0);  /* the for loop's two values: not ours */
  if (!nl_coop_begin(L, &s->co, NULL, s->timeout, &d)) {
    for (i = 1; i <= n; i++) lua_pushvalue(L, lua_upvalueindex(2 + i));
    s->co.base = n;
  }
  got = nl_stream_read(L, &s->st, &d, 1, s->co.base, "lines");
  if (got < 0) return nl_coop_pend(L, &s->co);
  nl_coop_end(&s->co);
  if (got >= 3 && lua_isnil(L, -3) && lua_type(L, -1) == LUA_TSTRING) {
    if (strcmp(lua_tostring(L, -1), "closed") == 0) {
      lua_pop(L, 2);  /* end of stream: the loop just ends */
      return got - 2;
    }
    return luaL_error(L, "%s", lua_tostring(L, -2));  /* as io.lines does */
  }
  return got;
}

/* sock:lines(fmt...) -> iterator; raises on a read error, like io.lines */
static int tcp_lines(lua_State *L) {
  int n = lua_gettop(L) - 1;
  nl_sock_check(L, 1, TCP);
  luaL_argcheck(L, n <= 250, 252, "too many arguments");
  if (n == 0) { lua_pushliteral(L, "l"); n = 1; }
  lua_pushinteger(L, n);
  lua_insert(L, 2);
  lua_pushcclosure(L, lines_iter, n + 2);
  return 1;
}

/* Python's recv: sock:recv([max]) -> whatever has arrived, up to max
 * bytes (default 65536), waiting only until there is something | nil, msg,
 * code ("closed" at end of stream).  What read(n) is not: that one waits
 * for all n bytes, as io does. */
static int tcp_recv(lua_State *L) {
  nl_sock *s = nl_sock_op(L, 1, TCP, "recv");
  lua_Integer max;
  nl_deadline d;
  size_t n;
  int r = NL_OK;
  if (s == NULL) return 3;
  max = luaL_optinteger(L, 2, 65536);
  luaL_argcheck(L, max >= 1, 2, "size must be at least 1");
  nl_coop_begin(L, &s->co, NULL, s->timeout, &d);
  if (s->st.in.len == 0) r = s->st.fill(&s->st, &d);
  if (r == NL_PENDING) return nl_coop_pend(L, &s->co);
  nl_coop_end(&s->co);
  if (r != NL_OK) return nl_pushfail(L, r, "recv");
  n = s->st.in.len < (size_t)max ? s->st.in.len : (size_t)max;
  lua_pushlstring(L, nl_buf_head(&s->st.in), n);
  nl_buf_consume(&s->st.in, n);
  return 1;
}

/* LuaSocket: sock:receive([pattern [, prefix]]) -> data | nil, err, partial */
static int tcp_receive(lua_State *L) {
  nl_sock *s = nl_sock_raw(L, 1, TCP);
  size_t plen = 0, n = 0, used = 0;
  const char *prefix = luaL_optlstring(L, 3, "", &plen);
  nl_deadline d;
  int r;
  if (nl_coop_closed(L, &s->co)) {  /* by another task, while we waited */
    lua_pushnil(L);
    lua_pushliteral(L, "closed");
    lua_pushlstring(L, prefix, plen);
    return 3;
  }
  nl_sock_open(L, s);
  nl_coop_begin(L, &s->co, NULL, s->timeout, &d);
  if (lua_type(L, 2) == LUA_TNUMBER) {
    lua_Integer want = luaL_checkinteger(L, 2);
    luaL_argcheck(L, want >= 0, 2, "negative count");
    r = nl_stream_count(&s->st, &d, (size_t)want, &n);
    if (r == NL_OK && n < (size_t)want) r = NL_CLOSED;
    if (r == NL_OK) used = n;
  } else {
    const char *p = luaL_optstring(L, 2, "*l");
    if (*p == '*') p++;
    if (*p == 'l') r = nl_stream_line(&s->st, &d, &n, &used, 0);
    else if (*p == 'a') {
      r = nl_stream_all(&s->st, &d, &n);
      used = n;
    } else return luaL_argerror(L, 2, "invalid receive pattern");
    /* LuaSocket gives a final unterminated line as partial, not data:
     * a line that ended in "\n" consumed more than it returns */
    if (r == NL_OK && *p == 'l' && used == n) r = NL_CLOSED;
  }
  if (r == NL_PENDING) return nl_coop_pend(L, &s->co);
  nl_coop_end(&s->co);
  if (r == NL_OK) {
    lua_pushlstring(L, prefix, plen);
    lua_pushlstring(L, nl_buf_head(&s->st.in), n);
    lua_concat(L, 2);
    nl_buf_consume(&s->st.in, used);
    return 1;
  }
  lua_pushnil(L);
  lua_pushstring(L, nl_lserror(r));
  lua_pushlstring(L, prefix, plen);  /* partial data is handed over */
  lua_pushlstring(L, nl_buf_head(&s->st.in), s->st.in.len);
  lua_concat(L, 2);
  nl_buf_consume(&s->st.in, s->st.in.len);
  return 3;
}

/* LuaSocket: sock:send(data [, i [, j]]) -> last index | nil, err, last */
static int tcp_send(lua_State *L) {
  nl_sock *s = nl_sock_raw(L, 1, TCP);
  size_t len;
  const char *p = luaL_checklstring(L, 2, &len);
  lua_Integer i = luaL_optinteger(L, 3, 1), j = luaL_optinteger(L, 4, -1);
  nl_deadline d;
  size_t done;
  int r;
  if (i < 0) i = (lua_Integer)len + i + 1;
  if (i < 1) i = 1;
  if (j < 0) j = (lua_Integer)len + j + 1;
  if (j > (lua_Integer)len) j = (lua_Integer)len;
  if (nl_coop_closed(L, &s->wco)) {  /* by another task, while we waited */
    lua_pushnil(L);
    lua_pushliteral(L, "closed");
    lua_pushinteger(L, i - 1 + (lua_Integer)s->wco.progress);
    return 3;
  }
  nl_sock_open(L, s);
  nl_coop_begin(L, &s->wco, NULL, s->timeout, &d);
  if (i > j) {
    nl_coop_end(&s->wco);
    lua_pushinteger(L, i - 1);
    return 1;
  }
  done = s->wco.progress;  /* bytes sent before a wait */
  r = nl_sock_send_all(s, p + i - 1 + done, (size_t)(j - i + 1) - done, &d);
  if (r == NL_PENDING) return nl_coop_pend(L, &s->wco);
  done = s->wco.progress;
  nl_coop_end(&s->wco);
  if (r == NL_OK) {
    lua_pushinteger(L, j);
    return 1;
  }
  lua_pushnil(L);
  lua_pushstring(L, nl_lserror(r));
  lua_pushinteger(L, i - 1 + (lua_Integer)done);
  return 3;
}

/* io-style: sock:write(...) -> sock | nil, msg, code */
static int tcp_write(lua_State *L) {
  nl_sock *s = nl_sock_op(L, 1, TCP, "write");
  int top = lua_gettop(L), i;
  size_t skip;
  nl_deadline d;
  if (s == NULL) return 3;
  nl_coop_begin(L, &s->wco, NULL, s->timeout, &d);
  skip = s->wco.progress;  /* bytes sent before a wait */
  for (i = 2; i <= top; i++) {
    size_t len;
    const char *p;
    int r;
    if (lua_type(L, i) == LUA_TNUMBER) {
      p = lua_tolstring(L, i, &len);  /* io.write converts numbers */
    } else {
      p = luaL_checklstring(L, i, &len);
    }
    if (skip >= len) {
      skip -= len;
      continue;
    }
    r = nl_sock_send_all(s, p + skip, len - skip, &d);
    skip = 0;
    if (r == NL_PENDING) return nl_coop_pend(L, &s->wco);
    if (r != NL_OK) {
      nl_coop_end(&s->wco);
      return nl_pushfail(L, r, "write");
    }
  }
  nl_coop_end(&s->wco);
  lua_settop(L, 1);
  return 1;
}

static int tcp_shutdown(lua_State *L) {
  static const char *const how[] = {"both", "send", "receive", NULL};
  static const int hv[] = {SHUT_RDWR, SHUT_WR, SHUT_RD};
  nl_sock *s = nl_sock_check(L, 1, TCP);
  int h = luaL_checkoption(L, 2, "both", how);
  if (shutdown(s->fd, hv[h]) < 0) return nl_pushfail(L, errno, "shutdown");
  lua_pushinteger(L, 1);
  return 1;
}

/* Bytes already received and buffered (LuaSocket's dirty()). */
static int tcp_dirty(lua_State *L) {
  nl_sock *s = nl_sock_check(L, 1, TCP);
  lua_pushboolean(L, s->st.in.len > 0);
  return 1;
}

static int tcp_setlimit(lua_State *L) {
  nl_sock *s = nl_sock_check(L, 1, TCP);
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_argcheck(L, n >= 0, 2, "negative limit");
  s->st.limit = (size_t)n;
  return 0;
}

struct boolopt { const char *name; int level, opt; };
static const struct boolopt bool_opts[] = {
  {"tcp-nodelay", IPPROTO_TCP, TCP_NODELAY},
  {"keepalive", SOL_SOCKET, SO_KEEPALIVE},
  {"reuseaddr", SOL_SOCKET, SO_REUSEADDR},
#ifdef SO_REUSEPORT
  {"reuseport", SOL_SOCKET, SO_REUSEPORT},
#endif
  {NULL, 0, 0}};

static const struct boolopt *find_opt(lua_State *L) {
  const char *name = luaL_checkstring(L, 2);
  const struct boolopt *o;
  for (o = bool_opts; o->name; o++)
    if (strcmp(o->name, name) == 0) return o;
  luaL_argerror(L, 2, lua_pushfstring(L, "unsupported option '%s'", name));
  return NULL;
}

/* "linger" takes and gives LuaSocket's table {on = bool, timeout = s}. */
static int is_linger(lua_State *L) {
  return lua_type(L, 2) == LUA_TSTRING && strcmp(lua_tostring(L, 2), "linger") == 0;
}

static int linger_set(lua_State *L, nl_sock *s) {
  struct linger lg;
  lua_Integer t = 0;
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_getfield(L, 3, "on");
  lg.l_onoff = lua_toboolean(L, -1);
  lua_getfield(L, 3, "timeout");
  if (!lua_isnil(L, -1)) {
    if (!lua_isinteger(L, -1))
      luaL_argerror(L, 3, "'timeout' must be a whole number of seconds");
    t = lua_tointeger(L, -1);
  }
  lua_pop(L, 2);
  luaL_argcheck(L, t >= 0 && t <= 65535, 3, "'timeout' out of range");
  lg.l_linger = (int)t;
  if (setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) < 0)
    return nl_pushfail(L, errno, "setoption linger");
  lua_pushinteger(L, 1);
  return 1;
}

static int linger_get(lua_State *L, nl_sock *s) {
  struct linger lg;
  socklen_t len = sizeof lg;
  if (getsockopt(s->fd, SOL_SOCKET, SO_LINGER, &lg, &len) < 0)
    return nl_pushfail(L, errno, "getoption linger");
  lua_createtable(L, 0, 2);
  lua_pushboolean(L, lg.l_onoff != 0);
  lua_setfield(L, -2, "on");
  lua_pushinteger(L, lg.l_linger);
  lua_setfield(L, -2, "timeout");
  return 1;
}

nl_sock *nl_tcp_check(lua_State *L, int arg) {
  void *p = luaL_testudata(L, arg, TCP);
  if (p == NULL) p = luaL_testudata(L, arg, SERVER);
  if (p == NULL) p = luaL_testudata(L, arg, NL_TCPMASTER);
  if (p == NULL) luaL_typeerror(L, arg, TCP);
  return nl_sock_open(L, (nl_sock *)p);
}

int nl_tcp_setoption(lua_State *L) {
  nl_sock *s = nl_tcp_check(L, 1);
  const struct boolopt *o;
  int v;
  if (is_linger(L)) return linger_set(L, s);
  o = find_opt(L);
  luaL_checkany(L, 3);
  v = lua_toboolean(L, 3);
  if (setsockopt(s->fd, o->level, o->opt, &v, sizeof v) < 0)
    return nl_pushfail(L, errno, "setoption %s", o->name);
  lua_pushinteger(L, 1);
  return 1;
}

int nl_tcp_getoption(lua_State *L) {
  nl_sock *s = nl_tcp_check(L, 1);
  const struct boolopt *o;
  int v = 0;
  socklen_t len = sizeof v;
  if (is_linger(L)) return linger_get(L, s);
  o = find_opt(L);
  if (getsockopt(s->fd, o->level, o->opt, &v, &len) < 0)
    return nl_pushfail(L, errno, "getoption %s", o->name);
  lua_pushboolean(L, v != 0);
  return 1;
}


static const luaL_Reg client_methods[] = {
  {"read", tcp_read}, {"lines", tcp_lines}, {"receive", tcp_receive},
  {"recv", tcp_recv},
  {"send", tcp_send}, {"write", tcp_write}, {"shutdown", tcp_shutdown},
  {"dirty", tcp_dirty}, {"setlimit", tcp_setlimit},
  {"setoption", nl_tcp_setoption}, {"getoption", nl_tcp_getoption},
  {NULL, NULL}};

static const luaL_Reg server_methods[] = {
  {"accept", srv_accept}, {"setoption", nl_tcp_setoption},
  {"getoption", nl_tcp_getoption}, {NULL, NULL}};

static const nl_sock_kind tcp_kind = {
  TCP, "socket", sizeof(nl_sock), 1, 1, client_methods, NULL, NULL, NULL};
static const nl_sock_kind server_kind = {
  SERVER, "socket", sizeof(nl_sock), 1, 1, server_methods, NULL, NULL, NULL};

void nl_open_tcp(lua_State *L) {
  static const luaL_Reg f[] = {
    {"tcp_connect", tcp_connect}, {"tcp_listen", tcp_listen}, {NULL, NULL}};
  nl_sock_class(L, &tcp_kind);
  nl_sock_class(L, &server_kind);
  nl_tcp_common(L, TCP);
  nl_tcp_common(L, SERVER);
  luaL_setfuncs(L, f, 0);
}
