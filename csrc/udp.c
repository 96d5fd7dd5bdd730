/*
 * udp.c - UDP sockets and their multicast options (netlua.udp objects).
 *
 * The descriptor is made when the object is made, so options can be set
 * in any order, before or after bind.  Group membership goes through the
 * RFC 3678 protocol-independent MCAST_* options (one code path for IPv4
 * and IPv6, any-source and source-specific); systems without them get the
 * older per-family options.  Receives use recvmsg when the destination
 * group, arrival interface and TTL are wanted (pktinfo), and always see
 * truncation (MSG_TRUNC), so nothing is cut silently; batches use
 * sendmmsg/recvmmsg where they exist, and sendmany lets the kernel cut
 * runs of equal-sized datagrams (UDP_SEGMENT) where it can.  A socket is
 * one object (a kind of sock.c's socket with UDP's fields after it), and
 * a feed from one sender gets the same address string every time.
 *
 * Not here: the option-table constructors receiver{}/sender{} (Lua,
 * netlua/multicast.lua); name lookup beyond what sendto needs (lookup.c).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "netlua.h"

#define UDP "netlua.udp"

#define MAXDGRAM 65535         /* default receive size: never truncates UDP */
#define MAXRECV (1 << 20)      /* largest receive buffer a call may ask for */
#define MAXBATCH 1024          /* datagrams per sendmany/receivemany call */
#define CHUNK 128              /* messages per sendmmsg/recvmmsg call */
#define CTLSZ 128              /* control bytes per datagram (pktinfo) */

#if defined(MCAST_JOIN_GROUP) && !defined(NL_NO_RFC3678)
#define HAVE_RFC3678 1
#endif
#if defined(__linux__) && !defined(NL_NO_MMSG)
#define HAVE_MMSG 1
#endif

/* UDP generic segmentation offload: one send of n equal-sized datagrams
 * (the last may be shorter) that the kernel cuts apart.  It skips the
 * per-datagram route lookup and header build: several times fewer cycles
 * per datagram than sendmmsg alone.  Segments stay below any MTU. */
#if defined(UDP_SEGMENT) && defined(HAVE_MMSG) && !defined(NL_NO_GSO)
#define HAVE_GSO 1
#define GSO_MAXSEG 1200        /* bigger segments could exceed a path MTU */
#define GSO_MAXCOUNT 64        /* UDP_MAX_SEGMENTS on older kernels */
#define GSO_MAXBYTES 65000     /* one GSO send is one IP packet before cutting */
#endif

/* A UDP socket: the shared nl_sock, then what UDP keeps beside it, in
 * the one userdata (a receive fetches nothing else). */
typedef struct udp_sock {
  nl_sock sock;            /* first: the socket it is */
  int pktinfo;             /* receivefrom returns an info table */
  int nogso;               /* sendmany: UDP_SEGMENT failed here once */
  unsigned ifindex;        /* multicast interface last set through us */
  /* sendto destination cache: a loop sending to one address parses once */
  char lastip[256];        /* any DNS name fits: a resumed send never
                            * has to look its name up again */
  int lastport;
  nl_addr lastaddr;
  /* if_indextoname cache for pktinfo (it costs a socket + ioctl) */
  unsigned nameidx;
  char ifname[IF_NAMESIZE];
  /* the sender address last received, whose text is the socket's user
   * value: a feed from one source formats its address once */
  int fromvalid;
  struct { sa_family_t fam; unsigned char addr[16]; } fromkey;
  char *buf;               /* receive scratch, grown on demand */
  size_t bufcap;
} udp_sock;

/* close and __gc (sock.c): the scratch buffer goes with the descriptor */
static void udp_release(nl_sock *s) {
  udp_sock *e = (udp_sock *)s;
  free(e->buf);
  e->buf = NULL;
  e->bufcap = 0;
}

/* A scratch buffer this big is given back after the call instead of
 * being kept for the socket's lifetime. */
#define KEEPBUF (1 << 20)

static void ext_trim(udp_sock *e) {
  if (e->bufcap > KEEPBUF) {
    free(e->buf);
    e->buf = NULL;
    e->bufcap = 0;
  }
}

static char *ext_buf(udp_sock *e, size_t n) {
  if (n > e->bufcap) {
    char *p = (char *)realloc(e->buf, n);
    if (p == NULL) return NULL;
    e->buf = p;
    e->bufcap = n;
  }
  return e->buf;
}

static const nl_sock_kind udp_kind;  /* at the end, with the methods */

static nl_sock *check_udp(lua_State *L, int arg) {
  return nl_sock_check(L, arg, UDP);
}

/* ---- addresses and interfaces ---------------------------------------- */

/* Numeric IP text (IPv6 may carry %scope) into ss; returns the family or 0. */
static int parse_ip(const char *ip, struct sockaddr_storage *ss,
                    socklen_t *len) {
  struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
  memset(ss, 0, sizeof *ss);
  if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
    s4->sin_family = AF_INET;
    *len = sizeof *s4;
    return AF_INET;
  }
  if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1) {
    s6->sin6_family = AF_INET6;
    *len = sizeof *s6;
    return AF_INET6;
  }
  if (strchr(ip, '%') != NULL) {  /* fe80::1%eth0 */
    nl_addr a;
    if (nl_addr_from(&a, ip, 0, AF_INET6) == 0) {
      memcpy(ss, &a.ss, a.len);
      *len = a.len;
      return AF_INET6;
    }
  }
  return 0;
}

static void set_port(struct sockaddr_storage *ss, int port) {
  if (ss->ss_family == AF_INET)
    ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
  else
    ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
}

static void ip_text(const struct sockaddr_storage *ss, char *out,
                    size_t len) {
  const void *a = ss->ss_family == AF_INET
    ? (const void *)&((const struct sockaddr_in *)ss)->sin_addr
    : (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr;
  if (inet_ntop(ss->ss_family, a, out, (socklen_t)len) == NULL) out[0] = 0;
}

static int is_mcast(const struct sockaddr_storage *ss) {
  if (ss->ss_family == AF_INET)
    return IN_MULTICAST(ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr));
  if (ss->ss_family == AF_INET6)
    return IN6_IS_ADDR_MULTICAST(&((const struct sockaddr_in6 *)ss)->sin6_addr);
  return 0;
}

/* Index of the interface holding address ss, or 0. */
static unsigned if_by_addr(const struct sockaddr_storage *ss) {
  struct ifaddrs *all, *i;
  unsigned idx = 0;
  if (getifaddrs(&all) != 0) return 0;
  for (i = all; i != NULL && idx == 0; i = i->ifa_next) {
    const struct sockaddr *a = i->ifa_addr;
    if (a == NULL || a->sa_family != ss->ss_family) continue;
    if (a->sa_family == AF_INET
        ? memcmp(&((const struct sockaddr_in *)a)->sin_addr,
                 &((const struct sockaddr_in *)ss)->sin_addr,
                 sizeof(struct in_addr)) == 0
        : memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                 &((const struct sockaddr_in6 *)ss)->sin6_addr,
                 sizeof(struct in6_addr)) == 0)
      idx = if_nametoindex(i->ifa_name);
  }
  freeifaddrs(all);
  return idx;
}

/* First IPv4 address of interface idx (for IPv4 options that want one). */
static int if_addr4(unsigned idx, struct in_addr *out) {
  struct ifaddrs *all, *i;
  char name[IF_NAMESIZE];
  int found = 0;
  if (if_indextoname(idx, name) == NULL || getifaddrs(&all) != 0) return 0;
  for (i = all; i != NULL && !found; i = i->ifa_next) {
    if (i->ifa_addr == NULL || i->ifa_addr->sa_family != AF_INET) continue;
    if (strcmp(i->ifa_name, name) != 0) continue;
    *out = ((const struct sockaddr_in *)i->ifa_addr)->sin_addr;
    found = 1;
  }
  freeifaddrs(all);
  return found;
}

/* Resolves the interface at stack index idx: a name ("lo"), an address
 * ("127.0.0.1") or an index (0 or "*" = let the system choose).  Returns
 * NULL with *out set, or a message (left on the stack) saying what is
 * wrong. */
static const char *if_resolve(lua_State *L, int idx, unsigned *out) {
  char name[IF_NAMESIZE];
  if (lua_type(L, idx) == LUA_TNUMBER) {
    lua_Integer n;
    if (!lua_isinteger(L, idx))
      return lua_pushfstring(L, "interface index must be an integer");
    n = lua_tointeger(L, idx);
    if (n < 0 || n > 0x7fffffff)
      return lua_pushfstring(L, "interface index out of range");
    if (n > 0 && if_indextoname((unsigned)n, name) == NULL)
      return lua_pushfstring(L, "no interface with index %d", (int)n);
    *out = (unsigned)n;
    return NULL;
  }
  if (lua_type(L, idx) == LUA_TSTRING) {
    const char *s = lua_tostring(L, idx);
    struct sockaddr_storage ss;
    socklen_t len;
    if (s[0] == '\0' || strcmp(s, "*") == 0) { *out = 0; return NULL; }
    if (parse_ip(s, &ss, &len) != 0) {
      if ((ss.ss_family == AF_INET &&
           ((struct sockaddr_in *)&ss)->sin_addr.s_addr == htonl(INADDR_ANY)) ||
          (ss.ss_family == AF_INET6 &&
           IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&ss)->sin6_addr))) {
        *out = 0;
        return NULL;
      }
      *out = if_by_addr(&ss);
      if (*out == 0)
        return lua_pushfstring(L, "no interface has address %s", s);
      return NULL;
    }
    *out = if_nametoindex(s);
    if (*out == 0) return lua_pushfstring(L, "unknown interface '%s'", s);
    return NULL;
  }
  return lua_pushfstring(L, "interface must be a name, an address or an "
                            "index, got %s", luaL_typename(L, idx));
}

static unsigned check_if(lua_State *L, int arg) {
  unsigned idx;
  const char *msg = if_resolve(L, arg, &idx);
  if (msg) luaL_argerror(L, arg, msg);
  return idx;
}

/* A multicast group argument; raises unless it is one. */
static int check_group(lua_State *L, int arg, nl_sock *s,
                       struct sockaddr_storage *ss, socklen_t *len) {
  const char *ip = luaL_checkstring(L, arg);
  int fam = parse_ip(ip, ss, len);
  if (fam == 0)
    luaL_argerror(L, arg, lua_pushfstring(L, "'%s' is not an IP address", ip));
  if (!is_mcast(ss))
    luaL_argerror(L, arg,
                  lua_pushfstring(L, "'%s' is not a multicast address", ip));
  if (fam != s->family)
    luaL_argerror(L, arg, lua_pushfstring(L, "group %s is %s but the socket "
                                          "is %s", ip, nl_family_name(fam),
                                          nl_family_name(s->family)));
  return fam;
}

/* A source address of the group's family; raises otherwise.  */
static void check_source(lua_State *L, int arg, const char *what, int fam,
                         struct sockaddr_storage *ss, socklen_t *len) {
  const char *ip;
  int sf;
  if (lua_type(L, arg) != LUA_TSTRING)
    luaL_error(L, "bad %s (string expected, got %s)", what,
               luaL_typename(L, arg));
  ip = lua_tostring(L, arg);
  sf = parse_ip(ip, ss, len);
  if (sf == 0)
    luaL_error(L, "bad %s ('%s' is not an IP address)", what, ip);
  if (sf != fam)
    luaL_error(L, "bad %s (source %s is %s but the group is %s)", what, ip,
               nl_family_name(sf), nl_family_name(fam));
  if (is_mcast(ss))
    luaL_error(L, "bad %s (source %s is a multicast address)", what, ip);
}

/* ---- construction ----------------------------------------------------- */

static int family_arg(lua_State *L, int arg) {
  static const char *const names[] = {"inet", "inet6", NULL};
  return luaL_checkoption(L, arg, "inet", names) == 0 ? AF_INET : AF_INET6;
}

/* core.udp_socket([family]) -> netlua.udp */
static int udp_socket(lua_State *L) {
  int fam = family_arg(L, 1), fd, zero = 0;
  udp_sock *e;
  fd = socket(fam, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return nl_pushfail(L, errno, "socket");
  e = (udp_sock *)nl_sock_new(L, &udp_kind, fd, fam, SOCK_DGRAM);
  e->lastport = -1;
  /* Linux by default hands a wildcard-bound socket every group any socket
   * on the host joined; a receiver should get only its own groups. */
#ifdef IP_MULTICAST_ALL
  if (fam == AF_INET)
    setsockopt(fd, IPPROTO_IP, IP_MULTICAST_ALL, &zero, sizeof zero);
#endif
#ifdef IPV6_MULTICAST_ALL
  if (fam == AF_INET6)
    setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_ALL, &zero, sizeof zero);
#endif
  (void)zero;
  return 1;
}

/* core.is_multicast(ip) -> boolean (false for text that is no address) */
static int udp_is_multicast(lua_State *L) {
  struct sockaddr_storage ss;
  socklen_t len;
  const char *ip = luaL_checkstring(L, 1);
  lua_pushboolean(L, parse_ip(ip, &ss, &len) != 0 && is_mcast(&ss));
  return 1;
}

/* sock:bind(ip, port) -> 1 | nil, err, msg, code (LuaSocket's
 * setsockname): ip "*" or nil = any address of the socket's family */
static int udp_bind(lua_State *L) {
  nl_sock *s = check_udp(L, 1);
  const char *ip = luaL_optstring(L, 2, "*");
  int port = nl_checkport(L, 3);
  nl_addr a;
  if (strcmp(ip, "*") == 0) ip = s->family == AF_INET6 ? "::" : "0.0.0.0";
  if (nl_addr_from(&a, ip, port, s->family) != 0)
    return luaL_argerror(L, 2, lua_pushfstring(L, "'%s' is not an %s "
                         "address", ip, nl_family_name(s->family)));
  if (bind(s->fd, (struct sockaddr *)&a.ss, a.len) < 0)
    return nl_pushlsfail(L, errno, "bind %s port %d", ip, port);
  lua_pushinteger(L, 1);
  return 1;
}

/* ---- membership ------------------------------------------------------- */

enum { M_JOIN, M_LEAVE, M_BLOCK, M_UNBLOCK };
static const char *const m_names[] = {"join", "leave", "block", "unblock"};

/* The one membership call for both families; returns NL_OK or errno. */
static int membership(nl_sock *s, int op, const struct sockaddr_storage *grp,
                      unsigned ifindex, const struct sockaddr_storage *src) {
#ifdef HAVE_RFC3678
  int level = grp->ss_family == AF_INET ? IPPROTO_IP : IPPROTO_IPV6, r;
  if (src == NULL) {
    struct group_req gr;
    memset(&gr, 0, sizeof gr);
    gr.gr_interface = ifindex;
    memcpy(&gr.gr_group, grp, sizeof *grp);
    r = setsockopt(s->fd, level,
                   op == M_JOIN ? MCAST_JOIN_GROUP : MCAST_LEAVE_GROUP,
                   &gr, sizeof gr);
  } else {
    static const int opt[] = {MCAST_JOIN_SOURCE_GROUP,
                              MCAST_LEAVE_SOURCE_GROUP, MCAST_BLOCK_SOURCE,
                              MCAST_UNBLOCK_SOURCE};
    struct group_source_req gsr;
    memset(&gsr, 0, sizeof gsr);
    gsr.gsr_interface = ifindex;
    memcpy(&gsr.gsr_group, grp, sizeof *grp);
    memcpy(&gsr.gsr_source, src, sizeof *src);
    r = setsockopt(s->fd, level, opt[op], &gsr, sizeof gsr);
  }
  return r < 0 ? errno : NL_OK;
#else
  /* older per-family options; IPv4 names the interface by an address */
  int r;
  if (grp->ss_family == AF_INET) {
    struct in_addr ifa;
    ifa.s_addr = htonl(INADDR_ANY);
    if (ifindex != 0 && !if_addr4(ifindex, &ifa)) return EADDRNOTAVAIL;
    if (src == NULL) {
      struct ip_mreq mr;
      mr.imr_multiaddr = ((const struct sockaddr_in *)grp)->sin_addr;
      mr.imr_interface = ifa;
      r = setsockopt(s->fd, IPPROTO_IP, op == M_JOIN ? IP_ADD_MEMBERSHIP
                     : IP_DROP_MEMBERSHIP, &mr, sizeof mr);
    } else {
#ifdef IP_ADD_SOURCE_MEMBERSHIP
      static const int opt[] = {IP_ADD_SOURCE_MEMBERSHIP,
                                IP_DROP_SOURCE_MEMBERSHIP, IP_BLOCK_SOURCE,
                                IP_UNBLOCK_SOURCE};
      struct ip_mreq_source ms;
      memset(&ms, 0, sizeof ms);
      ms.imr_multiaddr = ((const struct sockaddr_in *)grp)->sin_addr;
      ms.imr_sourceaddr = ((const struct sockaddr_in *)src)->sin_addr;
      ms.imr_interface = ifa;
      r = setsockopt(s->fd, IPPROTO_IP, opt[op], &ms, sizeof ms);
#else
      return ENOPROTOOPT;
#endif
    }
  } else {
    struct ipv6_mreq mr;
    if (src != NULL) return ENOPROTOOPT;  /* needs RFC 3678 */
    mr.ipv6mr_multiaddr = ((const struct sockaddr_in6 *)grp)->sin6_addr;
    mr.ipv6mr_interface = ifindex;
    r = setsockopt(s->fd, IPPROTO_IPV6, op == M_JOIN ? IPV6_JOIN_GROUP
                   : IPV6_LEAVE_GROUP, &mr, sizeof mr);
  }
  return r < 0 ? errno : NL_OK;
#endif
}

/* Reads {interface=, source=} (or a bare interface) at arg. */
static void member_opts(lua_State *L, int arg, int fam, unsigned *ifindex,
                        struct sockaddr_storage *src, int *hassrc,
                        const char *who) {
  socklen_t len;
  if (lua_isnoneornil(L, arg)) return;
  if (!lua_istable(L, arg)) {  /* join(group, "eth0") */
    *ifindex = check_if(L, arg);
    return;
  }
  if (lua_getfield(L, arg, "interface") != LUA_TNIL) {
    const char *msg = if_resolve(L, lua_gettop(L), ifindex);
    if (msg) luaL_error(L, "bad option 'interface' to '%s' (%s)", who, msg);
  }
  lua_pop(L, 1);
  if (hassrc && lua_getfield(L, arg, "source") != LUA_TNIL) {
    char what[64];
    snprintf(what, sizeof what, "option 'source' to '%s'", who);
    check_source(L, lua_gettop(L), what, fam, src, &len);
    *hassrc = 1;
  }
  if (hassrc) lua_pop(L, 1);
}

/* sock:join(group [, {interface=, source=}]) and sock:leave(...) */
static int join_leave(lua_State *L, int op) {
  nl_sock *s = check_udp(L, 1);
  udp_sock *e = (udp_sock *)s;
  struct sockaddr_storage grp, src;
  socklen_t len;
  unsigned ifindex = e->ifindex;  /* default: the interface set for sends */
  int hassrc = 0, fam = check_group(L, 2, s, &grp, &len), r;
  member_opts(L, 3, fam, &ifindex, &src, &hassrc, m_names[op]);
  r = membership(s, op, &grp, ifindex, hassrc ? &src : NULL);
  if (r != NL_OK) {
    char stxt[INET6_ADDRSTRLEN] = "";
    if (hassrc) ip_text(&src, stxt, sizeof stxt);
    return nl_pushfail(L, r, "%s %s%s%s", m_names[op], lua_tostring(L, 2),
                       hassrc ? " from " : "", stxt);
  }
  lua_pushinteger(L, 1);
  return 1;
}

static int udp_join(lua_State *L) { return join_leave(L, M_JOIN); }
static int udp_leave(lua_State *L) { return join_leave(L, M_LEAVE); }

/* sock:block(group, source [, interface | {interface=}]) and unblock */
static int block_unblock(lua_State *L, int op) {
  nl_sock *s = check_udp(L, 1);
  udp_sock *e = (udp_sock *)s;
  struct sockaddr_storage grp, src;
  socklen_t len;
  unsigned ifindex = e->ifindex;
  int fam = check_group(L, 2, s, &grp, &len), r;
  char what[32];
  snprintf(what, sizeof what, "argument #2 to '%s'", m_names[op]);
  check_source(L, 3, what, fam, &src, &len);
  member_opts(L, 4, fam, &ifindex, NULL, NULL, m_names[op]);
  r = membership(s, op, &grp, ifindex, &src);
  if (r != NL_OK)
    return nl_pushfail(L, r, "%s %s from %s", m_names[op],
                       lua_tostring(L, 2), lua_tostring(L, 3));
  lua_pushinteger(L, 1);
  return 1;
}

static int udp_block(lua_State *L) { return block_unblock(L, M_BLOCK); }
static int udp_unblock(lua_State *L) { return block_unblock(L, M_UNBLOCK); }

/* ---- TTL, loop, interface --------------------------------------------- */

static int ttl_level(int fam, int *opt) {
  *opt = fam == AF_INET ? IP_MULTICAST_TTL : IPV6_MULTICAST_HOPS;
  return fam == AF_INET ? IPPROTO_IP : IPPROTO_IPV6;
}

static int loop_level(int fam, int *opt) {
  *opt = fam == AF_INET ? IP_MULTICAST_LOOP : IPV6_MULTICAST_LOOP;
  return fam == AF_INET ? IPPROTO_IP : IPPROTO_IPV6;
}

/* Integer socket options.  IPv4's TTL and loop are a byte on the BSDs;
 * Linux takes an int for both, and an int for every IPv6 one. */
static int set_int(nl_sock *s, int level, int opt, int v) {
#ifndef __linux__
  if (level == IPPROTO_IP &&
      (opt == IP_MULTICAST_TTL || opt == IP_MULTICAST_LOOP)) {
    unsigned char c = (unsigned char)v;
    return setsockopt(s->fd, level, opt, &c, sizeof c) < 0 ? errno : NL_OK;
  }
#endif
  return setsockopt(s->fd, level, opt, &v, sizeof v) < 0 ? errno : NL_OK;
}

static int get_int(nl_sock *s, int level, int opt, int *v) {
  union { int i; unsigned char c; } u;
  socklen_t len = sizeof u.i;
  u.i = 0;
  if (getsockopt(s->fd, level, opt, &u, &len) < 0) return errno;
  *v = len == 1 ? u.c : u.i;
  return NL_OK;
}

static int check_ttl(lua_State *L, int arg) {
  lua_Integer t = luaL_checkinteger(L, arg);
  luaL_argcheck(L, t >= 0 && t <= 255, arg, "TTL out of range 0..255");
  return (int)t;
}

static int udp_setttl(lua_State *L) {
  nl_sock *s = check_udp(L, 1);
  int opt, level = ttl_level(s->family, &opt), r;
  r = set_int(s, level, opt, check_ttl(L, 2));
  if (r != NL_OK) return nl_pushfail(L, r, "setttl");
  lua_pushinteger(L, 1);
  return 1;
}

static int udp_getttl(lua_State *L) {
  nl_sock *s = check_udp(L, 1);
  int opt, level = ttl_level(s->family, &opt), v = 0, r;
  r = get_int(s, level, opt, &v);
  if (r != NL_OK) return nl_pushfail(L, r, "getttl");
  lua_pushinteger(L, v);
  return 1;
}

static int udp_setloop(lua_State *L) {
  nl_sock *s = check_udp(L, 1);
  int opt, level = loop_level(s->family, &opt), r;
  luaL_checkany(L, 2);
  r = set_int(s, level, opt, lua_toboolean(L, 2));
  if (r != NL_OK) return nl_pushfail(L, r, "setloop");
  lua_pushinteger(L, 1);
  return 1;
}

static int udp_getloop(lua_State *L) {
  nl_sock *s = check_udp(L, 1);
  int opt, level = loop_level(s->family, &opt), v = 0, r;
  r = get_int(s, level, opt, &v);
  if (r != NL_OK) return nl_pushfail(L, r, "getloop");
  lua_pushboolean(L, v != 0);
  return 1;
}

/* Sets the outgoing multicast interface of family fam (index 0 = the
 * system's choice); addr4 is the IPv4 address the caller named, if any. */
static int set_mif(nl_sock *s, udp_sock *e, int fam, unsigned idx,
                   const struct in_addr *addr4) {
  int r;
  if (fam == AF_INET) {
#ifdef __linux__
    /* Linux takes an index here; but with the index alone the kernel
     * picks the source address as if routing unicast, which may be
     * another interface's (or 0.0.0.0 on lo): give the interface's own
     * IPv4 address too, as setting the interface by address does */
    struct ip_mreqn mr;
    struct in_addr own;
    memset(&mr, 0, sizeof mr);
    mr.imr_ifindex = (int)idx;
    if (addr4) mr.imr_address = *addr4;
    else if (idx != 0 && if_addr4(idx, &own)) mr.imr_address = own;
    r = setsockopt(s->fd, IPPROTO_IP, IP_MULTICAST_IF, &mr, sizeof mr);
#else
    struct in_addr a;
    a.s_addr = htonl(INADDR_ANY);
    if (addr4) a = *addr4;
    else if (idx != 0 && !if_addr4(idx, &a)) return EADDRNOTAVAIL;
    r = setsockopt(s->fd, IPPROTO_IP, IP_MULTICAST_IF, &a, sizeof a);
#endif
  } else {
    r = setsockopt(s->fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &idx, sizeof idx);
  }
  if (r < 0) return errno;
  e->ifindex = idx;
  return NL_OK;
}

/* The IPv4 address named at arg, if it is one (for IP_MULTICAST_IF). */
static const struct in_addr *arg_addr4(lua_State *L, int arg,
                                       struct in_addr *a) {
  if (lua_type(L, arg) == LUA_TSTRING &&
      inet_pton(AF_INET, lua_tostring(L, arg), a) == 1)
    return a;
  return NULL;
}

/* sock:setinterface(name | address | index) */
static int udp_setinterface(lua_State *L) {
  nl_sock *s = check_udp(L, 1);
  udp_sock *e = (udp_sock *)s;
  struct in_addr a;
  unsigned idx = check_if(L, 2);
  int r = set_mif(s, e, s->family, idx, arg_addr4(L, 2, &a));
  if (r != NL_OK)
    return nl_pushfail(L, r, "setinterface %s", luaL_tolstring(L, 2, NULL));
  lua_pushinteger(L, 1);
  return 1;
}

/* Index of the outgoing multicast interface of family fam, 0 if unset. */
static int get_mif(nl_sock *s, udp_sock *e, int fam, unsigned *idx) {
  if (fam == AF_INET) {
    struct in_addr a;
    socklen_t len = sizeof a;
    if (getsockopt(s->fd, IPPROTO_IP, IP_MULTICAST_IF, &a, &len) < 0)
      return errno;
    if (a.s_addr != htonl(INADDR_ANY)) {  /* set by address */
      struct sockaddr_storage ss;
      memset(&ss, 0, sizeof ss);
      ss.ss_family = AF_INET;
      ((struct sockaddr_in *)&ss)->sin_addr = a;
      *idx = if_by_addr(&ss);
    } else {
      *idx = e->ifindex;  /* set by index: the kernel reports no address */
    }
  } else {
    int v = 0;
    int r = get_int(s, IPPROTO_IPV6, IPV6_MULTICAST_IF, &v);
    if (r != NL_OK) return r;
    *idx = (unsigned)v;
  }
  return NL_OK;
}

/* sock:getinterface() -> index, name (0, nil when the system chooses) */
static int udp_getinterface(lua_State *L) {
  nl_sock *s = check_udp(L, 1);
  char name[IF_NAMESIZE];
  unsigned idx = 0;
  int r = get_mif(s, (udp_sock *)s, s->family, &idx);
  if (r != NL_OK) return nl_pushfail(L, r, "getinterface");
  lua_pushinteger(L, (lua_Integer)idx);
  if (idx != 0 && if_indextoname(idx, name) != NULL) lua_pushstring(L, name);
  else lua_pushnil(L);
  return 2;
}

/* ---- setoption / getoption with LuaSocket's names ---------------------- */

enum { O_BOOL, O_INT, O_TTL, O_LOOP, O_IF, O_ADD, O_DROP, O_BUF, O_PKTINFO,
       O_GSO };

typedef struct optdesc {
  const char *name;
  int kind, fam, level, opt;
} optdesc;

static const optdesc options[] = {
  {"broadcast", O_BOOL, 0, SOL_SOCKET, SO_BROADCAST},
  {"dontroute", O_BOOL, 0, SOL_SOCKET, SO_DONTROUTE},
  {"reuseaddr", O_BOOL, 0, SOL_SOCKET, SO_REUSEADDR},
#ifdef SO_REUSEPORT
  {"reuseport", O_BOOL, 0, SOL_SOCKET, SO_REUSEPORT},
#endif
  {"recv-buffer-size", O_BUF, 0, SOL_SOCKET, SO_RCVBUF},
  {"send-buffer-size", O_BUF, 0, SOL_SOCKET, SO_SNDBUF},
  {"rcvbuf", O_BUF, 0, SOL_SOCKET, SO_RCVBUF},
  {"sndbuf", O_BUF, 0, SOL_SOCKET, SO_SNDBUF},
  {"ip-multicast-ttl", O_TTL, AF_INET, IPPROTO_IP, IP_MULTICAST_TTL},
  {"ip-multicast-loop", O_LOOP, AF_INET, IPPROTO_IP, IP_MULTICAST_LOOP},
  {"ip-multicast-if", O_IF, AF_INET, IPPROTO_IP, IP_MULTICAST_IF},
  {"ip-add-membership", O_ADD, AF_INET, IPPROTO_IP, 0},
  {"ip-drop-membership", O_DROP, AF_INET, IPPROTO_IP, 0},
  {"ipv6-unicast-hops", O_TTL, AF_INET6, IPPROTO_IPV6, IPV6_UNICAST_HOPS},
  {"ipv6-multicast-hops", O_TTL, AF_INET6, IPPROTO_IPV6, IPV6_MULTICAST_HOPS},
  {"ipv6-multicast-loop", O_LOOP, AF_INET6, IPPROTO_IPV6, IPV6_MULTICAST_LOOP},
  {"ipv6-multicast-if", O_IF, AF_INET6, IPPROTO_IPV6, IPV6_MULTICAST_IF},
  {"ipv6-add-membership", O_ADD, AF_INET6, IPPROTO_IPV6, 0},
  {"ipv6-drop-membership", O_DROP, AF_INET6, IPPROTO_IPV6, 0},
  {"ipv6-v6only", O_BOOL, AF_INET6, IPPROTO_IPV6, IPV6_V6ONLY},
  {"pktinfo", O_PKTINFO, 0, 0, 0},
  {"gso", O_GSO, 0, 0, 0},
#ifdef IP_MULTICAST_ALL
  {"ip-multicast-all", O_BOOL, AF_INET, IPPROTO_IP, IP_MULTICAST_ALL},
#endif
#ifdef IPV6_MULTICAST_ALL
  {"ipv6-multicast-all", O_BOOL, AF_INET6, IPPROTO_IPV6, IPV6_MULTICAST_ALL},
#endif
  {NULL, 0, 0, 0, 0}};

static const optdesc *find_option(lua_State *L, nl_sock *s) {
  const char *name = luaL_checkstring(L, 2);
  const optdesc *o;
  for (o = options; o->name; o++) {
    if (strcmp(o->name, name) != 0) continue;
    if (o->fam != 0 && o->fam != s->family)
      luaL_argerror(L, 2, lua_pushfstring(L, "option '%s' needs an %s socket",
                                          name, nl_family_name(o->fam)));
    return o;
  }
  luaL_argerror(L, 2, lua_pushfstring(L, "unsupported option '%s'", name));
  return NULL;
}

/* pktinfo: the destination address and arrival interface, and the TTL
 * (hop limit) the datagram arrived with, come as ancillary data. */
static int set_pktinfo(nl_sock *s, udp_sock *e, int on) {
  int r;
#if defined(IP_PKTINFO) && defined(IPV6_RECVPKTINFO)
  if (s->family == AF_INET)
    r = setsockopt(s->fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof on);
  else
    r = setsockopt(s->fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof on);
  if (r < 0) return errno;
#else
  (void)s;  /* no pktinfo here: info still reports truncation and size */
  (void)r;
#endif
#if defined(IP_RECVTTL) && defined(IPV6_RECVHOPLIMIT)
  if (s->family == AF_INET)
    setsockopt(s->fd, IPPROTO_IP, IP_RECVTTL, &on, sizeof on);
  else
    setsockopt(s->fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &on, sizeof on);
#endif
  e->pktinfo = on;
  return NL_OK;
}

/* LuaSocket's membership value: {multiaddr=, interface=[, source=]} */
static int set_membership(lua_State *L, nl_sock *s, int op) {
  struct sockaddr_storage grp, src;
  socklen_t len;
  unsigned ifindex = ((udp_sock *)s)->ifindex;
  int hassrc = 0, fam;
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_getfield(L, 3, "multiaddr");
  lua_replace(L, 2);  /* option name no longer needed: group at arg 2 */
  fam = check_group(L, 2, s, &grp, &len);
  member_opts(L, 3, fam, &ifindex, &src, &hassrc, "setoption");
  op = membership(s, op, &grp, ifindex, hassrc ? &src : NULL);
  if (op != NL_OK) return nl_pushfail(L, op, "setoption membership %s",
                                      lua_tostring(L, 2));
  lua_pushinteger(L, 1);
  return 1;
}

/* sock:setoption(name, value) -> 1 | nil, msg, code */
static int udp_setoption(lua_State *L) {
  nl_sock *s = check_udp(L, 1);
  udp_sock *e = (udp_sock *)s;
  const optdesc *o = find_option(L, s);
  int r = NL_OK;
  luaL_checkany(L, 3);
  switch (o->kind) {
    case O_BOOL: case O_LOOP:
      r = set_int(s, o->level, o->opt, lua_toboolean(L, 3));
      break;
    case O_TTL:
      r = set_int(s, o->level, o->opt, check_ttl(L, 3));
      break;
    case O_BUF: {
      lua_Integer n = luaL_checkinteger(L, 3);
      luaL_argcheck(L, n > 0 && n <= 0x7fffffff, 3, "size out of range");
      r = set_int(s, o->level, o->opt, (int)n);
#if defined(SO_RCVBUFFORCE) && defined(SO_SNDBUFFORCE)
      {  /* past the system cap, a privileged process may still get it */
        int got = 0;
        if (r == NL_OK && get_int(s, o->level, o->opt, &got) == NL_OK &&
            got < 2 * n)
          set_int(s, o->level, o->opt == SO_RCVBUF ? SO_RCVBUFFORCE
                  : SO_SNDBUFFORCE, (int)n);
      }
#endif
      break;
    }
    case O_IF: {
      struct in_addr a;
      r = set_mif(s, e, o->fam, check_if(L, 3), arg_addr4(L, 3, &a));
      break;
    }
    case O_ADD: return set_membership(L, s, M_JOIN);
    case O_DROP: return set_membership(L, s, M_LEAVE);
    case O_PKTINFO: r = set_pktinfo(s, e, lua_toboolean(L, 3)); break;
    case O_GSO: e->nogso = !lua_toboolean(L, 3); break;
  }
  if (r != NL_OK) return nl_pushfail(L, r, "setoption %s", o->name);
  lua_pushinteger(L, 1);
  return 1;
}

/* sock:getoption(name) -> value | nil, msg, code */
static int udp_getoption(lua_State *L) {
  nl_sock *s = check_udp(L, 1);
  udp_sock *e = (udp_sock *)s;
  const optdesc *o = find_option(L, s);
  int v = 0, r = NL_OK;
  switch (o->kind) {
    case O_ADD: case O_DROP:
      return luaL_argerror(L, 2, lua_pushfstring(L, "option '%s' can only "
                           "be set", o->name));
    case O_PKTINFO:
      lua_pushboolean(L, e->pktinfo);
      return 1;
    case O_GSO:  /* whether sendmany may still use UDP_SEGMENT */
#ifdef HAVE_GSO
      lua_pushboolean(L, !e->nogso);
#else
      lua_pushboolean(L, 0);
#endif
      return 1;
    case O_IF: {
      unsigned idx = 0;
      r = get_mif(s, e, o->fam, &idx);
      if (r != NL_OK) break;
      if (o->fam == AF_INET) {  /* LuaSocket gives an address here */
        struct in_addr a;
        char txt[INET_ADDRSTRLEN];
        a.s_addr = htonl(INADDR_ANY);
        if (idx != 0) if_addr4(idx, &a);
        inet_ntop(AF_INET, &a, txt, sizeof txt);
        lua_pushstring(L, txt);
      } else {
        lua_pushinteger(L, (lua_Integer)idx);
      }
      return 1;
    }
    default:
      r = get_int(s, o->level, o->opt, &v);
  }
  if (r != NL_OK) return nl_pushfail(L, r, "getoption %s", o->name);
  if (o->kind == O_BOOL || o->kind == O_LOOP) lua_pushboolean(L, v != 0);
  else lua_pushinteger(L, v);
  return 1;
}

/* ---- sending ----------------------------------------------------------- */

/* dest_addr's answer when its name lookup pends: the caller returns
 * nl_coop_pend(L, &s->wco). */
static const nl_addr pending_addr;

/* Destination ip/port at args [arg, arg+1] into e->lastaddr (cached, so a
 * send loop parses the address once).  Returns the address, NULL after
 * pushing a failure (3 values, or 4 with ls), or &pending_addr. */
static const nl_addr *dest_addr(lua_State *L, nl_sock *s, udp_sock *e,
                                int arg, lua_CFunction self,
                                const char *who, int ls) {
  size_t iplen;
  const char *ip = luaL_checklstring(L, arg, &iplen);
  int port = nl_checkport(L, arg + 1);
  struct addrinfo hints, *res = NULL;
  int gerr;
  if (port == e->lastport && iplen < sizeof e->lastip &&
      memcmp(ip, e->lastip, iplen + 1) == 0)
    return &e->lastaddr;
  e->lastport = -1;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = s->family;
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_flags = s->family == AF_INET6 ? AI_V4MAPPED : 0;
  if (parse_ip(ip, &e->lastaddr.ss, &e->lastaddr.len) != s->family) {
    /* a name, or IPv4 text on an IPv6 socket: looked up as the socket's
     * write (in a task it pends, and close() wakes it) */
    nl_offload *r = NULL;
    nl_deadline dl;
    int w;
    if (nl_coop_resumes(L, &s->wco)) {
      nl_coop_begin(L, &s->wco, self, s->timeout, &dl);  /* the lookup is back */
      r = nl_offload_top(L);
    }
    if (r == NULL) {
      lua_settop(L, arg + 1);
      r = nl_resolve_start(L, ip, NULL, &hints, self, s->timeout);
      nl_coop_begin(L, &s->wco, self, s->timeout, &dl);
    }
    w = nl_resolve_wait(r, &s->wco, &res, &gerr, &dl);
    if (w == NL_PENDING) return &pending_addr;
    if (w != NL_OK) {
      nl_pushfail(L, w, "%s %s: name lookup", who, ip);
      if (ls) nl_lsresult(L, nl_lserror(w));
      return NULL;
    }
    if (gerr != 0) {
      nl_pushfailcode(L, "resolve", "%s %s: %s", who, ip,
                      gerr == EAI_SYSTEM ? strerror(errno)
                                         : gai_strerror(gerr));
      if (ls) nl_lsresult(L, nl_lsgaierror(gerr));
      return NULL;
    }
    memcpy(&e->lastaddr.ss, res->ai_addr, res->ai_addrlen);
    e->lastaddr.len = res->ai_addrlen;
  }
  set_port(&e->lastaddr.ss, port);
  if (iplen < sizeof e->lastip) {
    memcpy(e->lastip, ip, iplen + 1);
    e->lastport = port;
  }
  return &e->lastaddr;
}

/* Sends one datagram to a, or (a NULL) to the connected peer, waiting
 * for room up to the timeout; self restarts the call after a wait. */
static int send_datagram(lua_State *L, nl_sock *s, const char *p,
                         size_t len, const nl_addr *a, lua_CFunction self) {
  nl_deadline d;
  int started = 0, err;
  for (;;) {
    ssize_t n = a ? sendto(s->fd, p, len, MSG_NOSIGNAL,
                           (const struct sockaddr *)&a->ss, a->len)
                  : send(s->fd, p, len, MSG_NOSIGNAL);
    int r;
    if (n >= 0) {
      if (nl_coop_resumes(L, &s->wco)) nl_coop_end(&s->wco);  /* no wait now */
      lua_pushinteger(L, (lua_Integer)n);
      return 1;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) break;
    if (!started) {  /* the clock is read only when we must wait */
      nl_coop_begin(L, &s->wco, self, s->timeout, &d);
      started = 1;
    }
    r = nl_coop_wait(&s->wco, s->fd, NL_WAIT_WRITE, &d);
    if (r == NL_PENDING) return nl_coop_pend(L, &s->wco);
    if (r != NL_OK) {
      errno = r;
      break;
    }
  }
  err = errno;
  if (a != NULL) {
    char where[INET6_ADDRSTRLEN + 16];
    nl_addr_format((const struct sockaddr *)&a->ss, where, sizeof where);
    return nl_pushlsfail(L, err, "sendto %s", where);
  }
  return nl_pushlsfail(L, err, "send");
}

/* sock:sendto(data, ip, port) -> bytes sent | nil, err, msg, code */
static int udp_sendto(lua_State *L) {
  nl_sock *s = nl_sock_lsop(L, 1, UDP, "sendto");
  size_t len;
  const char *p;
  const nl_addr *a;
  if (s == NULL) return 4;
  p = luaL_checklstring(L, 2, &len);
  a = dest_addr(L, s, (udp_sock *)s, 3, udp_sendto, "sendto", 1);
  if (a == NULL) return 4;
  if (a == &pending_addr) return nl_coop_pend(L, &s->wco);
  return send_datagram(L, s, p, len, a, udp_sendto);
}

/* sock:send(data) -> bytes sent | nil, err, msg, code: to the peer that
 * setpeername chose (LuaSocket's connected UDP). */
static int udp_send(lua_State *L) {
  nl_sock *s = nl_sock_lsop(L, 1, UDP, "send");
  size_t len;
  const char *p;
  if (s == NULL) return 4;
  p = luaL_checklstring(L, 2, &len);
  return send_datagram(L, s, p, len, NULL, udp_send);
}

/* Disconnects (connect to AF_UNSPEC).  Linux then also forgets a local
 * port that bind() chose (port 0): the socket would stop receiving on
 * it, and the next send would pick another.  Keep the address it had. */
static int drop_peer(nl_sock *s) {
  nl_addr was, now;
  struct sockaddr none;
  was.len = sizeof was.ss;
  if (getsockname(s->fd, (struct sockaddr *)&was.ss, &was.len) < 0)
    return errno;
  memset(&none, 0, sizeof none);
  none.sa_family = AF_UNSPEC;
  if (connect(s->fd, &none, sizeof none) < 0 && errno != EAFNOSUPPORT)
    return errno;
  now.len = sizeof now.ss;
  if (getsockname(s->fd, (struct sockaddr *)&now.ss, &now.len) < 0)
    return errno;
  if (nl_addr_port((struct sockaddr *)&was.ss) != 0 &&
      nl_addr_port((struct sockaddr *)&now.ss) == 0 &&
      bind(s->fd, (struct sockaddr *)&was.ss, was.len) < 0)
    return errno;
  return NL_OK;
}

/* sock:setpeername(ip, port) -> 1 | nil, err, msg, code; setpeername("*")
 * drops the peer.  With a peer, send() needs no address, the kernel
 * keeps the route (a cheaper send), and only the peer's datagrams are
 * received, as with LuaSocket. */
static int udp_setpeername(lua_State *L) {
  nl_sock *s = nl_sock_lsop(L, 1, UDP, "setpeername");
  const nl_addr *a;
  if (s == NULL) return 4;
  if (strcmp(luaL_checkstring(L, 2), "*") == 0) {
    int r = drop_peer(s);
    if (r != NL_OK) return nl_pushlsfail(L, r, "setpeername *");
    lua_pushinteger(L, 1);
    return 1;
  }
  a = dest_addr(L, s, (udp_sock *)s, 2, udp_setpeername,
                "setpeername", 1);
  if (a == NULL) return 4;
  if (a == &pending_addr) return nl_coop_pend(L, &s->wco);
  if (connect(s->fd, (const struct sockaddr *)&a->ss, a->len) < 0) {
    char where[INET6_ADDRSTRLEN + 16];
    int err = errno;
    nl_addr_format((const struct sockaddr *)&a->ss, where, sizeof where);
    return nl_pushlsfail(L, err, "setpeername %s", where);
  }
  lua_pushinteger(L, 1);
  return 1;
}

#define IOVMAX 1024

static size_t item_len(lua_State *L, int t, lua_Integer i, const char **p) {
  size_t len;
  lua_rawgeti(L, t, i);
  *p = lua_tolstring(L, -1, &len);
  lua_pop(L, 1);  /* still anchored in the table */
  return len;
}

#ifdef HAVE_MMSG
/* Fills up to CHUNK messages from datas[first..total]; a message carries
 * one datagram, or with GSO a run of equal-sized ones.  counts[k] is how
 * many datagrams message k carries.  Returns the number of messages. */
static int build_chunk(lua_State *L, const nl_addr *a, int gso,
                       lua_Integer first, lua_Integer total,
                       struct mmsghdr *mm, struct iovec *iov, char *ctl,
                       int *counts) {
  int k = 0, v = 0;
  lua_Integer i = first;
  while (i <= total && k < CHUNK && v < IOVMAX) {
    const char *p;
    size_t len = item_len(L, 2, i, &p), bytes = len;
    int g = 1;
    iov[v].iov_base = (void *)p;
    iov[v].iov_len = len;
#ifdef HAVE_GSO
    if (gso && len > 0 && len <= GSO_MAXSEG) {
      while (i + g <= total && g < GSO_MAXCOUNT && v + g < IOVMAX) {
        size_t l = item_len(L, 2, i + g, &p);
        if (l == 0 || l > len || bytes + l > GSO_MAXBYTES) break;
        iov[v + g].iov_base = (void *)p;
        iov[v + g].iov_len = l;
        bytes += l;
        g++;
        if (l < len) break;  /* only the last segment may be shorter */
      }
    }
#else
    (void)gso;
    (void)bytes;
#endif
    memset(&mm[k], 0, sizeof mm[k]);
    mm[k].msg_hdr.msg_name = (void *)&a->ss;
    mm[k].msg_hdr.msg_namelen = a->len;
    mm[k].msg_hdr.msg_iov = &iov[v];
    mm[k].msg_hdr.msg_iovlen = (size_t)g;
#ifdef HAVE_GSO
    if (g > 1) {
      char *c = ctl + (size_t)k * CMSG_SPACE(sizeof(uint16_t));
      struct cmsghdr *cm = (struct cmsghdr *)c;
      uint16_t seg = (uint16_t)len;
      memset(c, 0, CMSG_SPACE(sizeof seg));  /* padding goes to the kernel */
      mm[k].msg_hdr.msg_control = c;
      mm[k].msg_hdr.msg_controllen = CMSG_SPACE(sizeof seg);
      cm->cmsg_level = SOL_UDP;
      cm->cmsg_type = UDP_SEGMENT;
      cm->cmsg_len = CMSG_LEN(sizeof seg);
      memcpy(CMSG_DATA(cm), &seg, sizeof seg);
    }
#else
    (void)ctl;
#endif
    counts[k++] = g;
    v += g;
    i += g;
  }
  return k;
}
#endif

/* sock:sendmany(datas, ip, port) -> count | nil, msg, code, count */
static int udp_sendmany(lua_State *L) {
  nl_sock *s = nl_sock_raw(L, 1, UDP);
  udp_sock *e;
  const nl_addr *a;
  lua_Integer total, done = 0, i;
  nl_deadline d;
  int err = NL_OK;
  if (nl_coop_closed(L, &s->wco)) {  /* by another task, while we waited */
    nl_pushfail(L, NL_ABORTED, "sendmany");
    lua_pushinteger(L, (lua_Integer)s->wco.progress);
    return 4;
  }
  nl_sock_open(L, s);
  e = (udp_sock *)s;
  luaL_checktype(L, 2, LUA_TTABLE);
  total = (lua_Integer)lua_rawlen(L, 2);
  for (i = 1; i <= total; i++) {  /* check all before sending any */
    if (lua_rawgeti(L, 2, i) != LUA_TSTRING)
      luaL_argerror(L, 2, lua_pushfstring(L, "item %d is a %s, not a string",
                                          (int)i, luaL_typename(L, -1)));
    lua_pop(L, 1);
  }
  a = dest_addr(L, s, e, 3, udp_sendmany, "sendmany", 0);
  if (a == NULL) return 3;
  if (a == &pending_addr) return nl_coop_pend(L, &s->wco);
  if (nl_coop_begin(L, &s->wco, udp_sendmany, s->timeout, &d))
    done = (lua_Integer)s->wco.progress;  /* sent before a wait */
  while (done < total && err == NL_OK) {
#ifdef HAVE_MMSG
    struct mmsghdr mm[CHUNK];
    struct iovec iov[IOVMAX];
    union { struct cmsghdr align;
            char b[CHUNK * CMSG_SPACE(sizeof(uint16_t))]; } ctl;
    int counts[CHUNK], gso = !e->nogso, k, n, j;
    k = build_chunk(L, a, gso, done + 1, total, mm, iov, ctl.b, counts);
    n = sendmmsg(s->fd, mm, (unsigned)k, MSG_NOSIGNAL);
    if (n > 0) {
      for (j = 0; j < n; j++) done += counts[j];
      continue;
    }
    if (gso && counts[0] > 1 && (errno == EINVAL || errno == EIO ||
                                 errno == ENOPROTOOPT || errno == EOPNOTSUPP)) {
      e->nogso = 1;  /* this path cannot segment: plain sendmmsg from now */
      continue;
    }
#else
    const char *p;
    size_t len = item_len(L, 2, done + 1, &p);
    ssize_t n = sendto(s->fd, p, len, MSG_NOSIGNAL,
                       (const struct sockaddr *)&a->ss, a->len);
    if (n >= 0) { done++; continue; }
#endif
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) err = errno;
    else {
      s->wco.progress = (size_t)done;
      err = nl_coop_wait(&s->wco, s->fd, NL_WAIT_WRITE, &d);
    }
  }
  if (err == NL_PENDING) return nl_coop_pend(L, &s->wco);
  nl_coop_end(&s->wco);
  if (err != NL_OK) {
    char where[INET6_ADDRSTRLEN + 16];
    nl_addr_format((const struct sockaddr *)&a->ss, where, sizeof where);
    nl_pushfail(L, err, "sendmany %s (%d of %d sent)", where, (int)done,
                (int)total);
    lua_pushinteger(L, done);
    return 4;
  }
  lua_pushinteger(L, done);
  return 1;
}

/* ---- receiving --------------------------------------------------------- */

static const char *index_name(udp_sock *e, unsigned idx) {
  if (idx == 0) return NULL;
  if (e->nameidx != idx) {
    if (if_indextoname(idx, e->ifname) == NULL) return NULL;
    e->nameidx = idx;
  }
  return e->ifname;
}

/* Pushes the text of a sender's address.  A feed from one source sends
 * the same address again and again: its bytes are compared with the last
 * sender's, and the same Lua string (the socket's user value, so the
 * socket must be at stack index 1) is pushed again, with no formatting
 * (inet_ntop goes through printf) and no new string.  This is the hot
 * path of every receive. */
/* memcmp for the 4 or 16 bytes of an address, without the call (it was
 * most of the cost of a repeated sender) */
static int same_addr(const unsigned char *x, const void *y, size_t n) {
  uint64_t a[2], b[2];
  if (n == 4) {
    uint32_t c, d;
    memcpy(&c, x, 4);
    memcpy(&d, y, 4);
    return c == d;
  }
  memcpy(a, x, 16);
  memcpy(b, y, 16);
  return a[0] == b[0] && a[1] == b[1];
}

static void push_ip(lua_State *L, udp_sock *e, const struct sockaddr *sa) {
  const void *a;
  size_t alen;
  char txt[INET6_ADDRSTRLEN];
  if (sa->sa_family == AF_INET) {
    a = &((const struct sockaddr_in *)sa)->sin_addr;
    alen = 4;
  } else if (sa->sa_family == AF_INET6) {
    a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    alen = 16;
  } else {
    lua_pushliteral(L, "");
    return;
  }
  if (e->fromvalid && e->fromkey.fam == sa->sa_family &&
      same_addr(e->fromkey.addr, a, alen)) {
    lua_getiuservalue(L, 1, 1);
    return;
  }
  inet_ntop(sa->sa_family, a, txt, sizeof txt);
  lua_pushstring(L, txt);
  lua_pushvalue(L, -1);
  lua_setiuservalue(L, 1, 1);
  e->fromkey.fam = sa->sa_family;
  memcpy(e->fromkey.addr, a, alen);
  e->fromvalid = 1;
}


/* Fills the info fields of the table on top from a received message. */
static void push_info(lua_State *L, udp_sock *e, struct msghdr *m,
                      size_t full, size_t max) {
  struct cmsghdr *c;
  char txt[INET6_ADDRSTRLEN];
  lua_pushboolean(L, (m->msg_flags & MSG_TRUNC) != 0);
  lua_setfield(L, -2, "truncated");
  if (m->msg_flags & MSG_TRUNC) {
    lua_pushinteger(L, (lua_Integer)(full > max ? full : max));
    lua_setfield(L, -2, "size");  /* length the datagram had on the wire */
  }
  if (!e->pktinfo) return;
  for (c = CMSG_FIRSTHDR(m); c != NULL; c = CMSG_NXTHDR(m, c)) {
    unsigned idx = 0;
    const char *name;
#if defined(IP_TTL) && defined(IPV6_HOPLIMIT)
    if ((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TTL) ||
        (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT)) {
      int ttl;
      memcpy(&ttl, CMSG_DATA(c), sizeof ttl);
      lua_pushinteger(L, ttl);
      lua_setfield(L, -2, "ttl");
      continue;
    }
#endif
#ifdef IP_PKTINFO
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
      struct in_pktinfo pi;
      memcpy(&pi, CMSG_DATA(c), sizeof pi);
      inet_ntop(AF_INET, &pi.ipi_addr, txt, sizeof txt);
      idx = (unsigned)pi.ipi_ifindex;
    } else
#endif
#ifdef IPV6_PKTINFO
    if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
      struct in6_pktinfo pi;
      memcpy(&pi, CMSG_DATA(c), sizeof pi);
      inet_ntop(AF_INET6, &pi.ipi6_addr, txt, sizeof txt);
      idx = pi.ipi6_ifindex;
    } else
#endif
      continue;
    lua_pushstring(L, txt);
    lua_setfield(L, -2, "group");
    lua_pushinteger(L, (lua_Integer)idx);
    lua_setfield(L, -2, "ifindex");
    name = index_name(e, idx);
    if (name) {
      lua_pushstring(L, name);
      lua_setfield(L, -2, "ifname");
    }
  }
}

static size_t opt_max(lua_State *L, int arg) {
  int isint;
  lua_Integer max = lua_tointegerx(L, arg, &isint);  /* one call, usually */
  if (!isint) max = luaL_optinteger(L, arg, MAXDGRAM);  /* or it raises */
  luaL_argcheck(L, max >= 1 && max <= MAXRECV, arg,
                "size out of range 1..1048576");
  return (size_t)max;
}

/* Linux reports the real length of a cut datagram with MSG_TRUNC. */
#ifdef __linux__
#define RECV_FLAGS (MSG_DONTWAIT | MSG_TRUNC)
#else
#define RECV_FLAGS MSG_DONTWAIT
#endif

/* sock:receivefrom([max]) -> data, ip, port [, info] | nil, err, msg, code
 * Without pktinfo a datagram longer than max fails with "truncated";
 * with pktinfo it is returned cut, and info.truncated says so. */
static int udp_receivefrom(lua_State *L) {
  nl_sock *s = nl_sock_lsop(L, 1, UDP, "receivefrom");
  size_t max;
  udp_sock *e;
  struct sockaddr_storage from;
  union { struct cmsghdr align; char b[CTLSZ]; } ctl;
  struct iovec iov;
  struct msghdr m;
  nl_deadline d;
  int started = 0;
  ssize_t n;
  char *buf;
  if (s == NULL) return 4;
  e = (udp_sock *)s;
  max = opt_max(L, 2);
  buf = ext_buf(e, max);
  if (buf == NULL) return nl_pushlsfail(L, ENOMEM, "receivefrom");
  m.msg_flags = 0;
  for (;;) {
    int r;
#ifdef __linux__
    if (!e->pktinfo) {
      /* recvfrom skips copying a msghdr in and out: the cheaper call when
       * no ancillary data is wanted; with MSG_TRUNC it returns the full
       * length, so a cut is still seen */
      socklen_t flen = sizeof from;
      n = recvfrom(s->fd, buf, max, RECV_FLAGS, (struct sockaddr *)&from,
                   &flen);
      if (n > (ssize_t)max) m.msg_flags = MSG_TRUNC;
    } else
#endif
    {
      memset(&m, 0, sizeof m);
      iov.iov_base = buf;
      iov.iov_len = max;
      m.msg_name = &from;
      m.msg_namelen = sizeof from;
      m.msg_iov = &iov;
      m.msg_iovlen = 1;
      if (e->pktinfo) {
        m.msg_control = ctl.b;
        m.msg_controllen = sizeof ctl.b;
      }
      n = recvmsg(s->fd, &m, RECV_FLAGS);
    }
    if (n >= 0) break;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      return nl_pushlsfail(L, errno, "receivefrom");
    if (!started) {
      nl_coop_begin(L, &s->co, NULL, s->timeout, &d);
      started = 1;
    }
    r = nl_coop_wait(&s->co, s->fd, NL_WAIT_READ, &d);
    if (r == NL_PENDING) return nl_coop_pend(L, &s->co);
    if (r != NL_OK) return nl_pushlsfail(L, r, "receivefrom");
  }
  if (s->co.parked && nl_coop_resumes(L, &s->co)) nl_coop_end(&s->co);
  if ((m.msg_flags & MSG_TRUNC) && !e->pktinfo) {
    nl_pushfailcode(L, "truncated", "receivefrom: datagram of %d bytes "
                    "truncated to %d (ask for more, or set pktinfo)",
                    (int)((size_t)n > max ? (size_t)n : max), (int)max);
    return nl_lsresult(L, "truncated");  /* LuaSocket has no word for it */
  }
  lua_pushlstring(L, buf, (size_t)n < max ? (size_t)n : max);
  push_ip(L, e, (struct sockaddr *)&from);
  lua_pushinteger(L, nl_addr_port((struct sockaddr *)&from));
  if (!e->pktinfo) return 3;
  lua_createtable(L, 0, 5);
  push_info(L, e, &m, (size_t)n, max);
  return 4;
}

/* Pushes {data=, ip=, port=[, truncated=, size=, group=, ifindex=,
 * ifname=]} for one received message. */
static void push_entry(lua_State *L, udp_sock *e, struct msghdr *m,
                       const char *data, size_t n, size_t max) {
  const struct sockaddr *sa = (const struct sockaddr *)m->msg_name;
  lua_createtable(L, 0, 3);
  /* keys are upvalues: lua_setfield would look each name up again */
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushlstring(L, data, n < max ? n : max);
  lua_rawset(L, -3);
  lua_pushvalue(L, lua_upvalueindex(2));
  push_ip(L, e, sa);
  lua_rawset(L, -3);
  lua_pushvalue(L, lua_upvalueindex(3));
  lua_pushinteger(L, nl_addr_port(sa));
  lua_rawset(L, -3);
  if ((m->msg_flags & MSG_TRUNC) || e->pktinfo) push_info(L, e, m, n, max);
}

static int udp_receivemany(lua_State *L);
static int udp_receivedatas(lua_State *L);

/* What receive_batch returns: a table per datagram (receivemany),
 * parallel arrays (receivedatas), or one string holding the whole batch
 * with an array of sizes (receivepacked; bare: without the senders). */
enum { BATCH_TABLES, BATCH_ARRAYS, BATCH_PACKED, BATCH_BARE };
#define IS_PACKED(flat) ((flat) == BATCH_PACKED || (flat) == BATCH_BARE)

/* Stores entry idx of a batch: a table {data=, ip=, port=, ...} into the
 * array at 5, or the data (packed: its size, the bytes going to the end
 * of the pack), ip and port into the arrays at 5, 6 and 7, with the full
 * size of a cut datagram in a table at 8. */
static void store_entry(lua_State *L, udp_sock *e, struct msghdr *m,
                        const char *data, size_t n, size_t max, int idx,
                        int flat, char *pack, size_t *packed) {
  const struct sockaddr *sa = (const struct sockaddr *)m->msg_name;
  size_t keep = n < max ? n : max;
  if (flat == BATCH_TABLES) {
    push_entry(L, e, m, data, n, max);
    lua_rawseti(L, 5, idx);
    return;
  }
  if (IS_PACKED(flat)) {
    /* slid down over the slots already taken: the pack never passes the
     * slot it reads from */
    if (pack + *packed != data) memmove(pack + *packed, data, keep);
    *packed += keep;
    lua_pushinteger(L, (lua_Integer)keep);
  } else
    lua_pushlstring(L, data, keep);
  lua_rawseti(L, 5, idx);
  if (flat != BATCH_BARE) {  /* bare: 6 and 7 hold nil */
    push_ip(L, e, sa);
    lua_rawseti(L, 6, idx);
    lua_pushinteger(L, nl_addr_port(sa));
    lua_rawseti(L, 7, idx);
  }
  if (m->msg_flags & MSG_TRUNC) {  /* never cut silently */
    if (lua_gettop(L) < 8) lua_newtable(L);
    lua_pushinteger(L, (lua_Integer)n);
    lua_rawseti(L, 8, idx);
  }
}

/* sock:receivemany([n [, max]]) -> array of entries | nil, msg, code
 * Waits (up to the timeout) for the first datagram, then takes whatever
 * else is already queued, up to n.  -1: the wait pends (the caller
 * returns nl_coop_pend). */
static int receive_batch(lua_State *L, int flat, lua_CFunction self,
                         const char *who) {
  nl_sock *s = check_udp(L, 1);
  lua_Integer want = luaL_optinteger(L, 2, 64);
  size_t max = opt_max(L, 3), per = max, need, packed = 0;
  udp_sock *e;
  int got = 0, started = 0;
  nl_deadline d;
  char *base;
  struct sockaddr_storage *names;
  char *ctls, *data;
  luaL_argcheck(L, want >= 1 && want <= MAXBATCH, 2,
                "count out of range 1..1024");
  lua_settop(L, 4);  /* the results go from 5 on */
  e = (udp_sock *)s;
  per = (max + 15) & ~(size_t)15;
  need = (size_t)want * (sizeof(struct sockaddr_storage) + CTLSZ + per);
  base = ext_buf(e, need);
  if (base == NULL) return nl_pushfail(L, ENOMEM, "%s", who);
  names = (struct sockaddr_storage *)base;
  ctls = base + (size_t)want * sizeof(struct sockaddr_storage);
  data = ctls + (size_t)want * CTLSZ;
  lua_createtable(L, (int)want, 0);
  if (flat == BATCH_BARE) {
    lua_pushnil(L);
    lua_pushnil(L);
  } else if (flat != BATCH_TABLES) {
    lua_createtable(L, (int)want, 0);
    lua_createtable(L, (int)want, 0);
  }
  while (got < want) {
#ifdef HAVE_MMSG
    struct mmsghdr mm[CHUNK];
    struct iovec iov[CHUNK];
    int k = (int)(want - got) < CHUNK ? (int)(want - got) : CHUNK, i, n;
    memset(mm, 0, sizeof(mm[0]) * (size_t)k);
    for (i = 0; i < k; i++) {
      iov[i].iov_base = data + (size_t)(got + i) * per;
      iov[i].iov_len = max;
      mm[i].msg_hdr.msg_name = &names[got + i];
      mm[i].msg_hdr.msg_namelen = sizeof names[0];
      mm[i].msg_hdr.msg_iov = &iov[i];
      mm[i].msg_hdr.msg_iovlen = 1;
      if (e->pktinfo) {
        mm[i].msg_hdr.msg_control = ctls + (size_t)(got + i) * CTLSZ;
        mm[i].msg_hdr.msg_controllen = CTLSZ;
      }
    }
    n = recvmmsg(s->fd, mm, (unsigned)k, RECV_FLAGS, NULL);
    if (n > 0) {
      for (i = 0; i < n; i++) {
        store_entry(L, e, &mm[i].msg_hdr, (const char *)iov[i].iov_base,
                    mm[i].msg_len, max, got + i + 1, flat, data, &packed);
      }
      got += n;
      if (n < k) break;  /* queue drained */
      continue;
    }
#else
    struct msghdr m;
    struct iovec iov;
    ssize_t n;
    memset(&m, 0, sizeof m);
    iov.iov_base = data + (size_t)got * per;
    iov.iov_len = max;
    m.msg_name = &names[got];
    m.msg_namelen = sizeof names[0];
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    if (e->pktinfo) {
      m.msg_control = ctls + (size_t)got * CTLSZ;
      m.msg_controllen = CTLSZ;
    }
    n = recvmsg(s->fd, &m, RECV_FLAGS);
    if (n >= 0) {
      store_entry(L, e, &m, (const char *)iov.iov_base, (size_t)n, max,
                  ++got, flat, data, &packed);
      continue;
    }
#endif
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      if (got > 0) break;  /* hand over what arrived; the error recurs */
      return nl_pushfail(L, errno, "%s", who);
    }
    if (got > 0) break;
    if (!started) {
      nl_coop_begin(L, &s->co, self, s->timeout, &d);
      started = 1;
    }
    {
      int r = nl_coop_wait(&s->co, s->fd, NL_WAIT_READ, &d);
      if (r == NL_PENDING) return -1;  /* the caller pends */
      if (r != NL_OK) return nl_pushfail(L, r, "%s", who);
    }
  }
  if (s->co.parked && nl_coop_resumes(L, &s->co)) nl_coop_end(&s->co);
  if (IS_PACKED(flat)) {
    lua_pushlstring(L, data, packed);
    lua_insert(L, 5);
  }
  return 1;
}

static int udp_receivemany(lua_State *L) {
  int n;
  if (nl_coop_closed(L, &nl_sock_raw(L, 1, UDP)->co))
    return nl_pushfail(L, NL_ABORTED, "receivemany");
  n = receive_batch(L, BATCH_TABLES, udp_receivemany, "receivemany");
  ext_trim((udp_sock *)nl_sock_raw(L, 1, UDP));
  if (n < 0) return nl_coop_pend(L, &nl_sock_raw(L, 1, UDP)->co);
  return n;
}

/* The array-returning batches: both end like this. */
static int receive_arrays(lua_State *L, int flat, lua_CFunction self,
                          const char *who) {
  int n;
  if (nl_coop_closed(L, &nl_sock_raw(L, 1, UDP)->co))
    return nl_pushfail(L, NL_ABORTED, "%s", who);
  n = receive_batch(L, flat, self, who);
  ext_trim((udp_sock *)nl_sock_raw(L, 1, UDP));
  if (n < 0) return nl_coop_pend(L, &nl_sock_raw(L, 1, UDP)->co);
  if (n != 1) return n;  /* a failure: nil, msg, code */
  return lua_gettop(L) - 4;
}

/* sock:receivedatas([n [, max]]) -> datas, ips, ports [, cut]: the same
 * batch as receivemany as three parallel arrays, no table per datagram
 * (about 1.5x the datagrams/s); cut[i] is the full size of a datagram
 * longer than max.  No pktinfo here: use receivemany for that. */
static int udp_receivedatas(lua_State *L) {
  return receive_arrays(L, BATCH_ARRAYS, udp_receivedatas, "receivedatas");
}

/* sock:receivepacked([n [, max [, senders]]]) -> data, sizes, ips, ports
 * [, cut]: the batch's datagrams back to back in ONE string, datagram i
 * being the sizes[i] bytes after the ones before it.  With senders false,
 * ips and ports are nil (no two arrays a batch to fill and collect).  No string per datagram: the
 * receive for feeds too fast for that, read with string.unpack or
 * string.byte at offsets (or sub when a datagram is wanted as a string). */
static int packed_with_senders(lua_State *L) {
  return receive_arrays(L, BATCH_PACKED, packed_with_senders,
                        "receivepacked");
}

static int packed_bare(lua_State *L) {
  return receive_arrays(L, BATCH_BARE, packed_bare, "receivepacked");
}

static int udp_receivepacked(lua_State *L) {
  /* the flag is read here only: a restart after a wait (when the stack
   * holds other things at 4) goes straight to the variant chosen now */
  if (!lua_isnoneornil(L, 4)) {
    luaL_checktype(L, 4, LUA_TBOOLEAN);
    if (!lua_toboolean(L, 4)) return packed_bare(L);
  }
  return packed_with_senders(L);
}

static const luaL_Reg udp_methods[] = {
  {"bind", udp_bind}, {"setsockname", udp_bind},  /* LuaSocket's name */
  {"join", udp_join}, {"leave", udp_leave},
  {"block", udp_block}, {"unblock", udp_unblock},
  {"setttl", udp_setttl}, {"getttl", udp_getttl},
  {"setloop", udp_setloop}, {"getloop", udp_getloop},
  {"setinterface", udp_setinterface}, {"getinterface", udp_getinterface},
  {"setoption", udp_setoption}, {"getoption", udp_getoption},
  {"sendto", udp_sendto}, {"sendmany", udp_sendmany},
  {"send", udp_send}, {"setpeername", udp_setpeername},
  {"receivefrom", udp_receivefrom}, {"receivedatas", udp_receivedatas},
  {"receivepacked", udp_receivepacked}, {NULL, NULL}};

static const nl_sock_kind udp_kind = {
  UDP, "socket", sizeof(udp_sock), 1, 1, udp_methods, NULL, udp_release,
  NULL};

void nl_open_udp(lua_State *L) {
  static const luaL_Reg f[] = {
    {"udp_socket", udp_socket}, {"is_multicast", udp_is_multicast},
    {NULL, NULL}};
  nl_sock_class(L, &udp_kind);
  nl_class_methods(L, UDP);  /* receivemany keeps its field names */
  lua_pushliteral(L, "data");
  lua_pushliteral(L, "ip");
  lua_pushliteral(L, "port");
  lua_pushcclosure(L, udp_receivemany, 3);
  lua_setfield(L, -2, "receivemany");
  lua_pop(L, 1);
  luaL_setfuncs(L, f, 0);
}
