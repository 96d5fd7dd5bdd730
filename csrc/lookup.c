/*
 * lookup.c - the resolver and interface calls behind netlua.lookup.
 *
 * getaddrinfo/getnameinfo, the older host/service/protocol databases
 * (through their reentrant _r variants where the libc has them),
 * inet_pton/inet_ntop and the interface list (getifaddrs).  Everything
 * here is a plain function on the `lookup` subtable of netlua.core; the
 * Lua module (netlua/lookup.lua) re-exports them and adds getfqdn.
 *
 * Not here: sockets (sock.c, tcp.c) and numeric address conversion for
 * them (addr.c).  The resolver calls run through resolve.c: a deadline
 * where the caller gives one, and waits in its task only inside netlua.run.
 *
 * Errors: resolver failures return nil, msg, "EAI_*" (the gai error by
 * name; h_errno results are mapped onto the same names), or "limit" when
 * the process ran out of descriptors; database misses
 * that are not gai based return nil, msg, "notfound".  Misuse raises.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <limits.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef AF_PACKET
#include <netpacket/packet.h>
#endif

#include "netlua.h"

/* glibc and musl have the _r database calls; elsewhere use the plain ones
 * (BSD and macOS make those thread-safe or at least still correct for a
 * single Lua state). */
#if defined(__linux__)
#define NL_HAVE_R 1
#endif

#define BOX "netlua.lookup.box"

/* ---- resources that must be freed even when a push raises -------------- */

/* A box owns an addrinfo list or an ifaddrs list until it is emptied, so
 * a memory error while building results does not leak them. */
typedef struct box {
  struct addrinfo *ai;
  struct ifaddrs *ifa;
} box;

static int box_gc(lua_State *L) {
  box *b = (box *)luaL_checkudata(L, 1, BOX);
  if (b->ai) freeaddrinfo(b->ai);
  if (b->ifa) freeifaddrs(b->ifa);
  b->ai = NULL;
  b->ifa = NULL;
  return 0;
}

static box *box_new(lua_State *L) {
  return (box *)nl_class_new(L, BOX, sizeof(box), 0);
}

/* The most the _r calls' buffer grows to on ERANGE. */
#define SCRATCH_MAX (1u << 20)

/* ---- error codes -------------------------------------------------------- */

static const char *gai_code(int e) {
  switch (e) {
#ifdef EAI_ADDRFAMILY
    case EAI_ADDRFAMILY: return "EAI_ADDRFAMILY";
#endif
    case EAI_AGAIN: return "EAI_AGAIN";
    case EAI_BADFLAGS: return "EAI_BADFLAGS";
    case EAI_FAIL: return "EAI_FAIL";
    case EAI_FAMILY: return "EAI_FAMILY";
    case EAI_MEMORY: return "EAI_MEMORY";
#if defined(EAI_NODATA) && EAI_NODATA != EAI_NONAME
    case EAI_NODATA: return "EAI_NODATA";
#endif
    case EAI_NONAME: return "EAI_NONAME";
    case EAI_SERVICE: return "EAI_SERVICE";
    case EAI_SOCKTYPE: return "EAI_SOCKTYPE";
    case EAI_SYSTEM: return "EAI_SYSTEM";
#ifdef EAI_OVERFLOW
    case EAI_OVERFLOW: return "EAI_OVERFLOW";
#endif
    default: return "EAI_FAIL";
  }
}

/* nil, "<what>: <gai reason>", "EAI_*" */
static int gai_fail(lua_State *L, int e, const char *what) {
  const char *why = e == EAI_SYSTEM ? strerror(errno) : gai_strerror(e);
  /* out of descriptors (resolve.c tells it from a misleading answer) */
  if (e == EAI_SYSTEM && (errno == EMFILE || errno == ENFILE))
    return nl_pushfailcode(L, "limit", "%s: %s", what, why);
  return nl_pushfailcode(L, gai_code(e), "%s: %s", what, why);
}

/* The h_errno family (gethostbyname_r and friends) told in gai terms. */
static int herr_to_gai(int h) {
  switch (h) {
    case HOST_NOT_FOUND: return EAI_NONAME;
    case TRY_AGAIN: return EAI_AGAIN;
    case NO_RECOVERY: return EAI_FAIL;
#ifdef EAI_NODATA
    case NO_DATA: return EAI_NODATA;
#else
    case NO_DATA: return EAI_NONAME;
#endif
    default: return EAI_SYSTEM;  /* NETDB_INTERNAL: errno says why */
  }
}

/* ---- argument helpers --------------------------------------------------- */

/* A string without embedded NUL bytes (names go to C APIs).  Numbers
 * are not taken for names: getaddrinfo(80, "localhost") is a mistake. */
static const char *check_name(lua_State *L, int arg) {
  size_t len;
  const char *s;
  if (lua_type(L, arg) != LUA_TSTRING) luaL_typeerror(L, arg, "string");
  s = lua_tolstring(L, arg, &len);
  luaL_argcheck(L, strlen(s) == len, arg, "contains a NUL byte");
  return s;
}

static const char *opt_name(lua_State *L, int arg) {
  return lua_isnoneornil(L, arg) ? NULL : check_name(L, arg);
}

struct named { const char *name; int value; };

static const struct named families[] = {
  {"unspec", AF_UNSPEC}, {"inet", AF_INET}, {"inet6", AF_INET6},
  {NULL, 0}};

static const struct named socktypes[] = {
  {"stream", SOCK_STREAM}, {"dgram", SOCK_DGRAM}, {"raw", SOCK_RAW},
  {"seqpacket", SOCK_SEQPACKET}, {NULL, 0}};

static const struct named gai_flags[] = {
  {"passive", AI_PASSIVE}, {"canonname", AI_CANONNAME},
  {"numerichost", AI_NUMERICHOST}, {"numericserv", AI_NUMERICSERV},
  {"addrconfig", AI_ADDRCONFIG}, {"v4mapped", AI_V4MAPPED}, {"all", AI_ALL},
  {NULL, 0}};

static const struct named gni_flags[] = {
  {"numerichost", NI_NUMERICHOST}, {"numericserv", NI_NUMERICSERV},
  {"namereqd", NI_NAMEREQD}, {"nofqdn", NI_NOFQDN}, {"dgram", NI_DGRAM},
  {NULL, 0}};

static const char *value_name(const struct named *t, int v) {
  for (; t->name; t++)
    if (t->value == v) return t->name;
  return NULL;
}

/* Looks name up in t; raises "unknown <what> 'name'" against arg. */
static int named_value(lua_State *L, int arg, const struct named *t,
                       const char *what, const char *name) {
  const struct named *p;
  for (p = t; p->name; p++)
    if (strcmp(p->name, name) == 0) return p->value;
  return luaL_argerror(L, arg,
                       lua_pushfstring(L, "unknown %s '%s'", what, name));
}

/* Option field on top of the stack: a name from t or an integer
 * (when allow_int) ; raises against arg. */
static int opt_named(lua_State *L, int arg, const struct named *t,
                     const char *what, int allow_int, int maxint) {
  if (lua_type(L, -1) == LUA_TSTRING)
    return named_value(L, arg, t, what, lua_tostring(L, -1));
  if (allow_int && lua_isinteger(L, -1)) {
    lua_Integer v = lua_tointeger(L, -1);
    if (v < 0 || v > maxint)
      luaL_argerror(L, arg, lua_pushfstring(L, "%s out of range", what));
    return (int)v;
  }
  return luaL_argerror(L, arg, lua_pushfstring(L, "option '%s': %s expected,"
                       " got %s", what, allow_int ? "name or integer" : "name",
                       luaL_typename(L, -1)));
}

/* Flags at stack index idx: nil, one name, a list of names or a set
 * {name=true}.  Unknown names raise against arg. */
static int parse_flags(lua_State *L, int arg, int idx,
                       const struct named *t) {
  int flags = 0;
  idx = lua_absindex(L, idx);
  switch (lua_type(L, idx)) {
    case LUA_TNIL: return 0;
    case LUA_TSTRING:
      return named_value(L, arg, t, "flag", lua_tostring(L, idx));
    case LUA_TTABLE: break;
    default:
      return luaL_argerror(L, arg, lua_pushfstring(L, "option 'flags': table"
                           " or name expected, got %s", luaL_typename(L, idx)));
  }
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) == LUA_TNUMBER) {  /* list form */
      if (lua_type(L, -1) != LUA_TSTRING)
        luaL_argerror(L, arg, "option 'flags': list of names expected");
      flags |= named_value(L, arg, t, "flag", lua_tostring(L, -1));
    } else if (lua_type(L, -2) == LUA_TSTRING) {  /* set form */
      int v = named_value(L, arg, t, "flag", lua_tostring(L, -2));
      if (lua_toboolean(L, -1)) flags |= v;
    } else {
      luaL_argerror(L, arg, "option 'flags': bad key");
    }
    lua_pop(L, 1);
  }
  return flags;
}

/* Raises when opts (a table at arg) has a key not in allowed: a typo in
 * an option name should not pass silently. */
static void check_keys(lua_State *L, int arg, const char *const *allowed) {
  lua_pushnil(L);
  while (lua_next(L, arg)) {
    const char *const *a;
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    for (a = allowed; k && *a; a++)
      if (strcmp(*a, k) == 0) break;
    if (!k || !*a)
      luaL_argerror(L, arg, lua_pushfstring(L, "unknown option '%s'",
                    k ? k : luaL_typename(L, -2)));
    lua_pop(L, 1);
  }
}

static int opt_table(lua_State *L, int arg) {
  if (lua_isnoneornil(L, arg)) return 0;
  luaL_checktype(L, arg, LUA_TTABLE);
  return 1;
}

/* Protocol by name: the two everyone means, then /etc/protocols. */
static int proto_number(const char *name) {
  if (strcmp(name, "tcp") == 0) return IPPROTO_TCP;
  if (strcmp(name, "udp") == 0) return IPPROTO_UDP;
  {
#ifdef NL_HAVE_R
    struct protoent pe, *res = NULL;
    char buf[1024];
    if (getprotobyname_r(name, &pe, buf, sizeof buf, &res) == 0 && res)
      return res->p_proto;
#else
    struct protoent *res = getprotobyname(name);
    if (res) return res->p_proto;
#endif
  }
  return -1;
}

/* Numeric text of an address (with %scope for link-local IPv6). */
static void addr_text(const struct sockaddr *sa, socklen_t len, char *out,
                      size_t outlen) {
  if (getnameinfo(sa, len, out, (socklen_t)outlen, NULL, 0,
                  NI_NUMERICHOST) != 0)
    out[0] = '\0';
}

static socklen_t sa_len(const struct sockaddr *sa) {
  return sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                   : sizeof(struct sockaddr_in);
}

/* ---- getaddrinfo -------------------------------------------------------- */

/* Service argument: nil, a port number or a service name / numeric text.
 * Also writes how to name it in messages. */
static const char *check_service(lua_State *L, int arg, char *buf,
                                 size_t n, char *label, size_t ln) {
  if (lua_isnoneornil(L, arg)) {
    label[0] = '\0';
    return NULL;
  }
  if (lua_type(L, arg) == LUA_TNUMBER) {
    snprintf(buf, n, "%d", nl_checkport(L, arg));
    snprintf(label, ln, " port %s", buf);
    return buf;
  }
  if (lua_type(L, arg) != LUA_TSTRING)
    luaL_typeerror(L, arg, "port number or service name");
  {
    const char *s = check_name(L, arg), *p = s;
    while (*p >= '0' && *p <= '9') p++;
    /* numeric text: glibc would silently take it modulo 65536 */
    if (*s && !*p)
      luaL_argcheck(L, p - s <= 5 && atoi(s) <= 65535, arg,
                    "port out of range 0..65535");
    snprintf(label, ln, " service %s", s);
    return s;
  }
}

static void push_entry(lua_State *L, const struct addrinfo *ai) {
  char ip[NI_MAXHOST];
  const char *st = value_name(socktypes, ai->ai_socktype);
  lua_createtable(L, 0, 6);
  lua_pushstring(L, nl_family_name(ai->ai_family));
  lua_setfield(L, -2, "family");
  if (st) lua_pushstring(L, st);
  else lua_pushinteger(L, ai->ai_socktype);
  lua_setfield(L, -2, "socktype");
  if (ai->ai_protocol == IPPROTO_TCP) lua_pushliteral(L, "tcp");
  else if (ai->ai_protocol == IPPROTO_UDP) lua_pushliteral(L, "udp");
  else lua_pushinteger(L, ai->ai_protocol);
  lua_setfield(L, -2, "protocol");
  addr_text(ai->ai_addr, ai->ai_addrlen, ip, sizeof ip);
  lua_pushstring(L, ip);
  lua_setfield(L, -2, "addr");
  lua_pushinteger(L, nl_addr_port(ai->ai_addr));
  lua_setfield(L, -2, "port");
  if (ai->ai_canonname) {
    lua_pushstring(L, ai->ai_canonname);
    lua_setfield(L, -2, "canonname");
  }
}

/* getaddrinfo(host, port_or_service [, opts]) -> array of entries.
 * Inside netlua.run the lookup waits in its task only; opts.timeout bounds it. */
static int l_getaddrinfo(lua_State *L) {
  static const char *const keys[] = {"family", "socktype", "protocol",
                                     "flags", "timeout", NULL};
  nl_offload *r = nl_resolve_resumed(L);  /* after a wait */
  const char *host = opt_name(L, 1), *serv;
  char sbuf[16], label[300], what[600];
  struct addrinfo hints;
  struct addrinfo *res;
  double timeout = -1;
  nl_deadline d;
  int e, i = 0, w;
  serv = check_service(L, 2, sbuf, sizeof sbuf, label, sizeof label);
  luaL_argcheck(L, host || serv, 1, "host and service are both nil");
  memset(&hints, 0, sizeof hints);
  if (opt_table(L, 3)) {
    check_keys(L, 3, keys);
    if (lua_getfield(L, 3, "family") != LUA_TNIL)
      hints.ai_family = opt_named(L, 3, families, "family", 0, 0);
    if (lua_getfield(L, 3, "socktype") != LUA_TNIL)
      hints.ai_socktype = opt_named(L, 3, socktypes, "socktype", 1, INT_MAX);
    if (lua_getfield(L, 3, "protocol") != LUA_TNIL) {
      if (lua_type(L, -1) == LUA_TSTRING) {
        hints.ai_protocol = proto_number(lua_tostring(L, -1));
        if (hints.ai_protocol < 0)
          luaL_argerror(L, 3, lua_pushfstring(L, "unknown protocol '%s'",
                        lua_tostring(L, -1)));
      } else {
        static const struct named none[] = {{NULL, 0}};
        hints.ai_protocol = opt_named(L, 3, none, "protocol", 1, 255);
      }
    }
    lua_getfield(L, 3, "flags");
    hints.ai_flags = parse_flags(L, 3, -1, gai_flags);
    lua_pop(L, 4);
    timeout = nl_opttimeout_field(L, 3, -1);
  }
  snprintf(what, sizeof what, "getaddrinfo %s%s", host ? host : "*", label);
  if (r == NULL) {
    lua_settop(L, 3);
    r = nl_resolve_start(L, host, serv, &hints, l_getaddrinfo, timeout);
  }
  w = nl_resolve_wait(r, NULL, &res, &e, &d);  /* r keeps res, frees it */
  if (w == NL_PENDING) return nl_offload_pend(L, r);
  if (w != NL_OK) return nl_pushfail(L, w, "%s", what);
  if (e != 0) return gai_fail(L, e, what);
  lua_newtable(L);
  for (; res; res = res->ai_next) {
    if (res->ai_family != AF_INET && res->ai_family != AF_INET6) continue;
    push_entry(L, res);
    lua_rawseti(L, -2, ++i);
  }
  return 1;
}

/* ---- getnameinfo -------------------------------------------------------- */

/* A numeric IP argument (raises otherwise) into a sockaddr with port. */
static void check_ip(lua_State *L, int arg, int port, nl_addr *a) {
  const char *ip = check_name(L, arg);
  if (nl_addr_from(a, ip, port, AF_UNSPEC) != 0)
    luaL_argerror(L, arg, lua_pushfstring(L, "'%s' is not a numeric IP "
                  "address", ip));
}

/* One getnameinfo call, run where resolve.c decides. */
typedef struct gni_job {
  nl_addr a;
  int flags, gerr, err;
  char host[NI_MAXHOST], serv[NI_MAXSERV];
} gni_job;

static void gni_run(void *arg) {
  gni_job *g = (gni_job *)arg;
  g->gerr = getnameinfo((struct sockaddr *)&g->a.ss, g->a.len, g->host,
                        sizeof g->host, g->serv, sizeof g->serv, g->flags);
  g->err = errno;  /* errno is the thread's own */
}

/* getnameinfo(ip [, port [, opts]]) -> host, service.  A reverse lookup
 * (no numerichost flag) waits in its task only inside netlua.run; opts.timeout bounds it. */
static int l_getnameinfo(lua_State *L) {
  static const char *const keys[] = {"flags", "timeout", NULL};
  nl_offload *o = nl_offload_resumed(L);
  int port = nl_optport(L, 2, 0), flags = 0, w;
  double timeout = -1;
  char what[300];
  nl_addr a;
  nl_deadline d;
  gni_job *g;
  check_ip(L, 1, port, &a);
  if (opt_table(L, 3)) {
    check_keys(L, 3, keys);
    lua_getfield(L, 3, "flags");
    flags = parse_flags(L, 3, -1, gni_flags);
    lua_pop(L, 1);
    timeout = nl_opttimeout_field(L, 3, -1);
  }
  snprintf(what, sizeof what, "getnameinfo %s port %d", lua_tostring(L, 1),
           port);
  if (o == NULL) {
    lua_settop(L, 3);
    g = (gni_job *)calloc(1, sizeof *g);
    if (g == NULL) return luaL_error(L, "not enough memory");
    g->a = a;
    g->flags = flags;
    o = nl_offload_start(L, gni_run, g, free, (flags & NI_NUMERICHOST) != 0,
                         l_getnameinfo, timeout);
  }
  w = nl_offload_wait(o, NULL, &d);
  if (w == NL_PENDING) return nl_offload_pend(L, o);
  if (w != NL_OK) return nl_pushfail(L, w, "%s", what);
  g = (gni_job *)nl_offload_arg(o);
  if (g->gerr != 0) {
    errno = g->err;
    return gai_fail(L, g->gerr, what);
  }
  lua_pushstring(L, g->host);
  lua_pushstring(L, g->serv);
  return 2;
}

/* ---- the hostent calls -------------------------------------------------- */

/* Pushes hostname, aliases, addresses from a hostent; returns 3. */
static int push_hostent(lua_State *L, const struct hostent *h) {
  int i;
  lua_pushstring(L, h->h_name);
  lua_newtable(L);
  for (i = 0; h->h_aliases && h->h_aliases[i]; i++) {
    lua_pushstring(L, h->h_aliases[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_newtable(L);
  for (i = 0; h->h_addr_list && h->h_addr_list[i]; i++) {
    char ip[INET6_ADDRSTRLEN];
    if (!inet_ntop(h->h_addrtype, h->h_addr_list[i], ip, sizeof ip)) continue;
    lua_pushstring(L, ip);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  }
  return 3;
}

static int host_fail(lua_State *L, int herr, const char *fn,
                     const char *name) {
  char what[600];
  snprintf(what, sizeof what, "%s %s", fn, name);
  return gai_fail(L, herr_to_gai(herr), what);
}

/* One gethostbyname2_r or gethostbyaddr_r call (by address when byaddr;
 * a name given for an address is resolved first, as Python does), run
 * where resolve.c decides.  res points into he and buf. */
typedef struct hent_job {
  char *name;
  int family, byaddr;
  int gerr;                /* a failed getaddrinfo of byaddr's name */
  int herr, err;
  struct hostent he, *res;
  char *buf;
} hent_job;

static void hent_release(void *arg) {
  hent_job *h = (hent_job *)arg;
  free(h->name);
  free(h->buf);
  free(h);
}

/* The address byaddr looks up: name may be numeric or a host name. */
static int hent_address(hent_job *h, nl_addr *a) {
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_STREAM;
  h->gerr = getaddrinfo(h->name, NULL, &hints, &res);
  if (h->gerr != 0) {
    h->err = errno;
    return -1;
  }
  memcpy(&a->ss, res->ai_addr, res->ai_addrlen);
  a->len = res->ai_addrlen;
  freeaddrinfo(res);
  return 0;
}

static void hent_run(void *arg) {
  hent_job *h = (hent_job *)arg;
  const void *raw = NULL;
  socklen_t rawlen = 0;
  nl_addr a;
  if (h->byaddr) {
    memset(&a, 0, sizeof a);
    if (hent_address(h, &a) != 0) return;
    h->family = a.ss.ss_family;
    if (h->family == AF_INET6) {
      raw = &((struct sockaddr_in6 *)&a.ss)->sin6_addr;
      rawlen = sizeof(struct in6_addr);
    } else {
      raw = &((struct sockaddr_in *)&a.ss)->sin_addr;
      rawlen = sizeof(struct in_addr);
    }
  }
#ifdef NL_HAVE_R
  {
    size_t n = 1024;
    for (;;) {
      char *p = (char *)realloc(h->buf, n);
      int r;
      if (p == NULL) { h->err = ENOMEM; h->herr = NETDB_INTERNAL; return; }
      h->buf = p;
      r = h->byaddr
        ? gethostbyaddr_r(raw, rawlen, h->family, &h->he, p, n, &h->res, &h->herr)
        : gethostbyname2_r(h->name, h->family, &h->he, p, n, &h->res, &h->herr);
      if (r == ERANGE && n < SCRATCH_MAX) { n *= 2; continue; }
      if (r != 0) h->err = r;
      return;
    }
  }
#else
  /* the plain calls share static storage: these run on the Lua thread */
  h->res = h->byaddr ? gethostbyaddr(raw, rawlen, h->family)
                     : gethostbyname2(h->name, h->family);
  h->herr = h_errno;
  h->err = errno;
#endif
}

#ifdef NL_HAVE_R
#define HENT_HERE 0
#else
#define HENT_HERE 1
#endif

/* Runs a hent_job for the function `fn` (its own restart) and pushes
 * hostname, aliases, addresses; the job's name is at stack slot 1. */
static int hent_call(lua_State *L, lua_CFunction fn, const char *fname,
                     int byaddr, int family) {
  nl_offload *o = nl_offload_resumed(L);
  const char *name = check_name(L, 1);
  nl_deadline d;
  hent_job *h;
  int w;
  if (o == NULL) {
    lua_settop(L, 2);
    h = (hent_job *)calloc(1, sizeof *h);
    if (h == NULL || (h->name = strdup(name)) == NULL) {
      free(h);
      return luaL_error(L, "not enough memory");
    }
    h->family = family;
    h->byaddr = byaddr;
    o = nl_offload_start(L, hent_run, h, hent_release, HENT_HERE, fn, -1);
  }
  w = nl_offload_wait(o, NULL, &d);
  if (w == NL_PENDING) return nl_offload_pend(L, o);
  if (w != NL_OK) return nl_pushfail(L, w, "%s %s", fname, name);
  h = (hent_job *)nl_offload_arg(o);
  if (h->gerr != 0) {
    char what[600];
    snprintf(what, sizeof what, "%s %s", fname, name);
    errno = h->err;
    return gai_fail(L, h->gerr, what);
  }
  if (!h->res) {
    errno = h->err;
    return host_fail(L, h->herr, fname, name);
  }
  return push_hostent(L, h->res);
}

/* gethostbyname_ex(name [, family]) -> hostname, aliases, addresses */
static int l_gethostbyname_ex(lua_State *L) {
  int family = AF_INET;
  check_name(L, 1);
  if (!lua_isnoneornil(L, 2)) {
    lua_pushvalue(L, 2);
    family = opt_named(L, 2, families + 1, "family", 0, 0);
    lua_pop(L, 1);
  }
  return hent_call(L, l_gethostbyname_ex, "gethostbyname_ex", 0, family);
}

/* gethostbyaddr(ip_or_name) -> hostname, aliases, addresses */
static int l_gethostbyaddr(lua_State *L) {
  return hent_call(L, l_gethostbyaddr, "gethostbyaddr", 1, AF_UNSPEC);
}

/* gethostbyname(name) -> first IPv4 address as text (waits in its task only) */
static int l_gethostbyname(lua_State *L) {
  nl_offload *r = nl_resolve_resumed(L);
  const char *name = check_name(L, 1);
  struct addrinfo hints;
  char ip[INET_ADDRSTRLEN], what[600];
  struct addrinfo *res;
  nl_deadline d;
  int e, w;
  snprintf(what, sizeof what, "gethostbyname %s", name);
  if (r == NULL) {
    lua_settop(L, 1);
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    r = nl_resolve_start(L, name, NULL, &hints, l_gethostbyname, -1);
  }
  w = nl_resolve_wait(r, NULL, &res, &e, &d);
  if (w == NL_PENDING) return nl_offload_pend(L, r);
  if (w != NL_OK) return nl_pushfail(L, w, "%s", what);
  if (e != 0) return gai_fail(L, e, what);
  addr_text(res->ai_addr, res->ai_addrlen, ip, sizeof ip);
  lua_pushstring(L, ip);
  return 1;
}

/* gethostname() -> name */
static int l_gethostname(lua_State *L) {
  char buf[HOST_NAME_MAX + 2];
  if (gethostname(buf, sizeof buf - 1) != 0)
    return nl_pushfail(L, errno, "gethostname");
  buf[sizeof buf - 1] = '\0';
  lua_pushstring(L, buf);
  return 1;
}

/* ---- services and protocols --------------------------------------------- */

/* getservbyname(name [, proto]) -> port */
static int l_getservbyname(lua_State *L) {
  const char *name = check_name(L, 1), *proto = opt_name(L, 2);
  struct servent *res = NULL;
#ifdef NL_HAVE_R
  struct servent se;
  char buf[4096];
  if (getservbyname_r(name, proto, &se, buf, sizeof buf, &res) != 0)
    res = NULL;
#else
  res = getservbyname(name, proto);
#endif
  if (!res)
    return nl_pushfailcode(L, "notfound", "getservbyname %s%s%s: service "
                           "not found", name, proto ? "/" : "",
                           proto ? proto : "");
  lua_pushinteger(L, ntohs((unsigned short)res->s_port));
  return 1;
}

/* getservbyport(port [, proto]) -> name */
static int l_getservbyport(lua_State *L) {
  int port = nl_checkport(L, 1);
  const char *proto = opt_name(L, 2);
  struct servent *res = NULL;
#ifdef NL_HAVE_R
  struct servent se;
  char buf[4096];
  if (getservbyport_r(htons((unsigned short)port), proto, &se, buf,
                      sizeof buf, &res) != 0)
    res = NULL;
#else
  res = getservbyport(htons((unsigned short)port), proto);
#endif
  if (!res)
    return nl_pushfailcode(L, "notfound", "getservbyport %d%s%s: service "
                           "not found", port, proto ? "/" : "",
                           proto ? proto : "");
  lua_pushstring(L, res->s_name);
  return 1;
}

/* getprotobyname(name) -> number */
static int l_getprotobyname(lua_State *L) {
  const char *name = check_name(L, 1);
  struct protoent *res = NULL;
#ifdef NL_HAVE_R
  struct protoent pe;
  char buf[4096];
  if (getprotobyname_r(name, &pe, buf, sizeof buf, &res) != 0) res = NULL;
#else
  res = getprotobyname(name);
#endif
  if (!res)
    return nl_pushfailcode(L, "notfound", "getprotobyname %s: protocol not "
                           "found", name);
  lua_pushinteger(L, res->p_proto);
  return 1;
}

/* ---- inet_pton / inet_ntop ---------------------------------------------- */

/* Optional leading family name: returns the index of the data argument
 * and sets *family (AF_UNSPEC when absent). */
static int lead_family(lua_State *L, int *family) {
  *family = AF_UNSPEC;
  if (!lua_isnoneornil(L, 2)) {
    lua_pushvalue(L, 1);
    *family = opt_named(L, 1, families + 1, "family", 0, 0);
    lua_pop(L, 1);
    return 2;
  }
  return 1;
}

/* inet_pton([family,] text) -> 4 or 16 bytes | nil, msg, "invalid" */
static int l_inet_pton(lua_State *L) {
  int family, arg = lead_family(L, &family);
  const char *text = check_name(L, arg);
  unsigned char out[sizeof(struct in6_addr)];
  if (family != AF_INET6 && inet_pton(AF_INET, text, out) == 1) {
    lua_pushlstring(L, (const char *)out, 4);
    return 1;
  }
  if (family != AF_INET && inet_pton(AF_INET6, text, out) == 1) {
    lua_pushlstring(L, (const char *)out, 16);
    return 1;
  }
  return nl_pushfailcode(L, "invalid", "inet_pton: '%s' is not an %s "
                         "address", text, family == AF_INET ? "IPv4"
                         : family == AF_INET6 ? "IPv6" : "IPv4 or IPv6");
}

/* inet_ntop([family,] bytes) -> text */
static int l_inet_ntop(lua_State *L) {
  int family, arg = lead_family(L, &family);
  size_t len;
  const char *raw = luaL_checklstring(L, arg, &len);
  char out[INET6_ADDRSTRLEN];
  int want = len == 4 ? AF_INET : len == 16 ? AF_INET6 : AF_UNSPEC;
  luaL_argcheck(L, want != AF_UNSPEC, arg, "packed address of 4 or 16 "
                "bytes expected");
  luaL_argcheck(L, family == AF_UNSPEC || family == want, arg,
                family == AF_INET ? "IPv4 address of 4 bytes expected"
                                  : "IPv6 address of 16 bytes expected");
  if (!inet_ntop(want, raw, out, sizeof out))
    return nl_pushfail(L, errno, "inet_ntop");
  lua_pushstring(L, out);
  return 1;
}

/* ---- interfaces --------------------------------------------------------- */

static int prefix_len(const struct sockaddr *mask) {
  const unsigned char *p;
  size_t n, i;
  int bits = 0;
  if (mask->sa_family == AF_INET6) {
    p = ((const struct sockaddr_in6 *)mask)->sin6_addr.s6_addr;
    n = 16;
  } else {
    p = (const unsigned char *)&((const struct sockaddr_in *)mask)->sin_addr;
    n = 4;
  }
  for (i = 0; i < n; i++) {
    unsigned char c = p[i];
    while (c & 0x80) {
      bits++;
      c = (unsigned char)(c << 1);
    }
    if (p[i] != 0xff) break;
  }
  return bits;
}

/* Sets field k of the table on top to the numeric text of sa; the
 * netmask's family is not always filled in, so fam overrides it. */
static void set_ip(lua_State *L, const char *k, const struct sockaddr *sa,
                   int fam) {
  char ip[NI_MAXHOST];
  const void *raw = fam == AF_INET6
      ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
      : (const void *)&((const struct sockaddr_in *)sa)->sin_addr;
  if (k[0] == 'a') addr_text(sa, sa_len(sa), ip, sizeof ip);  /* scope */
  else if (!inet_ntop(fam, raw, ip, sizeof ip)) return;
  lua_pushstring(L, ip);
  lua_setfield(L, -2, k);
}

static void push_flags(lua_State *L, unsigned int f) {
  lua_createtable(L, 0, 6);
  lua_pushboolean(L, (f & IFF_UP) != 0);
  lua_setfield(L, -2, "up");
  lua_pushboolean(L, (f & IFF_RUNNING) != 0);
  lua_setfield(L, -2, "running");
  lua_pushboolean(L, (f & IFF_LOOPBACK) != 0);
  lua_setfield(L, -2, "loopback");
  lua_pushboolean(L, (f & IFF_BROADCAST) != 0);
  lua_setfield(L, -2, "broadcast");
  lua_pushboolean(L, (f & IFF_MULTICAST) != 0);
  lua_setfield(L, -2, "multicast");
  lua_pushboolean(L, (f & IFF_POINTOPOINT) != 0);
  lua_setfield(L, -2, "pointtopoint");
}

/* Finds or makes the entry for ifa's interface; leaves it on top.
 * byname (at index byname) maps names to entries, list collects them. */
static void iface_entry(lua_State *L, int byname, int list,
                        const struct ifaddrs *ifa) {
  if (lua_getfield(L, byname, ifa->ifa_name) == LUA_TTABLE) return;
  lua_pop(L, 1);
  lua_createtable(L, 0, 5);
  lua_pushstring(L, ifa->ifa_name);
  lua_setfield(L, -2, "name");
  lua_pushinteger(L, if_nametoindex(ifa->ifa_name));
  lua_setfield(L, -2, "index");
  push_flags(L, ifa->ifa_flags);
  lua_setfield(L, -2, "flags");
  lua_newtable(L);
  lua_setfield(L, -2, "addrs");
  lua_pushvalue(L, -1);
  lua_setfield(L, byname, ifa->ifa_name);
  lua_pushvalue(L, -1);
  lua_rawseti(L, list, (lua_Integer)lua_rawlen(L, list) + 1);
}

static void push_ifaddr(lua_State *L, const struct ifaddrs *ifa) {
  int fam = ifa->ifa_addr->sa_family;
  lua_createtable(L, 0, 5);
  lua_pushstring(L, nl_family_name(fam));
  lua_setfield(L, -2, "family");
  set_ip(L, "addr", ifa->ifa_addr, fam);
  if (ifa->ifa_netmask) {
    set_ip(L, "netmask", ifa->ifa_netmask, fam);
    lua_pushinteger(L, prefix_len(ifa->ifa_netmask));
    lua_setfield(L, -2, "prefixlen");
  }
  /* ifa_broadaddr and ifa_dstaddr share storage: the flags say which */
  if (ifa->ifa_broadaddr && fam == AF_INET) {
    if (ifa->ifa_flags & IFF_BROADCAST)
      set_ip(L, "broadcast", ifa->ifa_broadaddr, fam);
    else if (ifa->ifa_flags & IFF_POINTOPOINT)
      set_ip(L, "peer", ifa->ifa_broadaddr, fam);
  }
}

#ifdef AF_PACKET
static void set_mac(lua_State *L, const struct sockaddr *sa) {
  const struct sockaddr_ll *ll = (const struct sockaddr_ll *)sa;
  char mac[3 * 32];
  int i, n = ll->sll_halen;
  if (n <= 0 || n > 20) return;
  for (i = 0; i < n; i++)
    snprintf(mac + 3 * i, 4, i + 1 < n ? "%02x:" : "%02x", ll->sll_addr[i]);
  lua_pushstring(L, mac);
  lua_setfield(L, -2, "mac");
}
#endif

/* interfaces() -> array of {name, index, flags, addrs[, mac]} in the
 * order getifaddrs gives (the Lua side sorts by index). */
static int l_interfaces(lua_State *L) {
  box *b = box_new(L);
  const struct ifaddrs *ifa;
  int byname, list;
  if (getifaddrs(&b->ifa) != 0) return nl_pushfail(L, errno, "getifaddrs");
  lua_newtable(L);
  byname = lua_gettop(L);
  lua_newtable(L);
  list = lua_gettop(L);
  for (ifa = b->ifa; ifa; ifa = ifa->ifa_next) {
    int fam = ifa->ifa_addr ? ifa->ifa_addr->sa_family : AF_UNSPEC;
    iface_entry(L, byname, list, ifa);
    if (fam == AF_INET || fam == AF_INET6) {
      lua_getfield(L, -1, "addrs");
      push_ifaddr(L, ifa);
      lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
      lua_pop(L, 1);
    }
#ifdef AF_PACKET
    else if (fam == AF_PACKET) set_mac(L, ifa->ifa_addr);
#endif
    lua_pop(L, 1);
  }
  freeifaddrs(b->ifa);
  b->ifa = NULL;
  return 1;
}

/* if_nametoindex(name) -> index | nil, msg, "notfound" */
static int l_if_nametoindex(lua_State *L) {
  const char *name = check_name(L, 1);
  unsigned int i = if_nametoindex(name);
  if (i == 0)
    return nl_pushfailcode(L, "notfound", "if_nametoindex %s: no such "
                           "interface", name);
  lua_pushinteger(L, i);
  return 1;
}

/* if_indextoname(index) -> name | nil, msg, "notfound" */
static int l_if_indextoname(lua_State *L) {
  lua_Integer i = luaL_checkinteger(L, 1);
  char name[IF_NAMESIZE + 1];
  luaL_argcheck(L, i >= 1 && i <= (lua_Integer)UINT_MAX, 1,
                "interface index out of range");
  if (!if_indextoname((unsigned int)i, name))
    return nl_pushfailcode(L, "notfound", "if_indextoname %d: no such "
                           "interface", (int)i);
  lua_pushstring(L, name);
  return 1;
}

/* if_nameindex() -> array of {index=, name=} */
static int l_if_nameindex(lua_State *L) {
  struct if_nameindex *ni = if_nameindex(), *p;
  int n = 0;
  if (!ni) return nl_pushfail(L, errno, "if_nameindex");
  /* copy into plain C first: a raised memory error must not leak ni */
  for (p = ni; p->if_index != 0; p++) n++;
  {
    struct item { unsigned int index; char name[IF_NAMESIZE + 1]; } *items;
    int i;
    items = (struct item *)lua_newuserdatauv(L, sizeof *items * (n + 1), 0);
    for (i = 0; i < n; i++) {
      items[i].index = ni[i].if_index;
      snprintf(items[i].name, sizeof items[i].name, "%s", ni[i].if_name);
    }
    if_freenameindex(ni);
    lua_createtable(L, n, 0);
    for (i = 0; i < n; i++) {
      lua_createtable(L, 0, 2);
      lua_pushinteger(L, items[i].index);
      lua_setfield(L, -2, "index");
      lua_pushstring(L, items[i].name);
      lua_setfield(L, -2, "name");
      lua_rawseti(L, -2, i + 1);
    }
  }
  return 1;
}

void nl_open_lookup(lua_State *L) {
  static const luaL_Reg f[] = {
    {"getaddrinfo", l_getaddrinfo}, {"getnameinfo", l_getnameinfo},
    {"gethostbyname", l_gethostbyname},
    {"gethostbyname_ex", l_gethostbyname_ex},
    {"gethostbyaddr", l_gethostbyaddr}, {"gethostname", l_gethostname},
    {"getservbyname", l_getservbyname}, {"getservbyport", l_getservbyport},
    {"getprotobyname", l_getprotobyname}, {"inet_pton", l_inet_pton},
    {"inet_ntop", l_inet_ntop}, {"interfaces", l_interfaces},
    {"if_nametoindex", l_if_nametoindex},
    {"if_indextoname", l_if_indextoname},
    {"if_nameindex", l_if_nameindex}, {NULL, NULL}};
  static const nl_class box_class = {BOX, NULL, NULL, box_gc, NULL, NULL, 0};
  nl_class_make(L, &box_class, 0);
  lua_newtable(L);
  luaL_setfuncs(L, f, 0);
  lua_setfield(L, -2, "lookup");
}
