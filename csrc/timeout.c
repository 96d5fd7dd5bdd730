/*
 * timeout.c - deadlines on the monotonic clock and the one readiness wait.
 *
 * Every call that can block computes one deadline when it starts and asks
 * here how long it may still wait, so a timeout covers the whole call and
 * not each system call.  nl_wait() is the only place netlua sleeps on a
 * descriptor; keep it that way so a scheduler can take it over.  Also
 * here: the one rule by which a timeout argument or option is read
 * (nl_opttimeout, nl_opttimeout_field, core.timeout for the Lua side).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include "netlua.h"

double nl_monotime(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void nl_deadline_start(nl_deadline *d, double timeout) {
  d->at = timeout < 0 ? -1.0 : nl_monotime() + timeout;
}

double nl_deadline_left(const nl_deadline *d) {
  double left;
  if (d->at < 0) return -1.0;
  left = d->at - nl_monotime();
  return left > 0 ? left : 0.0;
}

int nl_deadline_passed(const nl_deadline *d) {
  return d->at >= 0 && nl_monotime() >= d->at;
}

int nl_deadline_ms(const nl_deadline *d) {
  double left = nl_deadline_left(d);
  if (left < 0) return -1;
  if (left > 2e6) return 2000000000;
  /* round up so we never wake a hair early and spin */
  return (int)ceil(left * 1000.0);
}

/* The one rule for a timeout, wherever it comes from: nil (or none) is
 * dflt, a negative number blocks (-1), NaN is a mistake (it would block
 * forever through every comparison), and what is not a number (nor a
 * string Lua converts to one) is one too.  NULL with *t set, or why it
 * is refused. */
static const char *timeout_value(lua_State *L, int idx, double dflt,
                                 double *t) {
  lua_Number v;
  if (lua_isnoneornil(L, idx)) {
    *t = dflt;
    return NULL;
  }
  if (!lua_isnumber(L, idx))
    return lua_pushfstring(L, "number expected, got %s",
                           luaL_typename(L, idx));
  v = lua_tonumber(L, idx);
  if (isnan(v)) return "NaN";
  *t = v < 0 ? -1.0 : (double)v;
  return NULL;
}

double nl_opttimeout(lua_State *L, int arg, double dflt) {
  double t;
  const char *why = timeout_value(L, arg, dflt, &t);
  if (why != NULL) luaL_argerror(L, arg, why);
  return t;
}

double nl_opttimeout_field(lua_State *L, int opts, double dflt) {
  double t;
  const char *why;
  if (lua_isnoneornil(L, opts)) return dflt;
  lua_getfield(L, opts, "timeout");
  why = timeout_value(L, -1, dflt, &t);
  if (why != NULL) luaL_error(L, "bad option 'timeout' (%s)", why);
  lua_pop(L, 1);
  return t;
}

/* core.timeout(v) -> seconds (-1: block; nil gives -1) | nil, why: the
 * same rule for the Lua modules, which raise in their own words. */
static int l_timeout(lua_State *L) {
  double t;
  const char *why = timeout_value(L, 1, -1, &t);
  if (why != NULL) {
    lua_pushnil(L);
    lua_pushstring(L, why);
    return 2;
  }
  lua_pushnumber(L, t);
  return 1;
}

int nl_wait(int fd, int events, const nl_deadline *d) {
  struct pollfd p;
  int r;
  p.fd = fd;
  p.events = (short)(((events & NL_WAIT_READ) ? POLLIN : 0) |
                     ((events & NL_WAIT_WRITE) ? POLLOUT : 0));
  for (;;) {
    p.revents = 0;
    r = poll(&p, 1, nl_deadline_ms(d));
    if (r > 0) return NL_OK;  /* errors/hangup surface in the next call */
    if (r == 0) return NL_TIMEOUT;
    if (errno != EINTR) return errno;
    if (nl_deadline_passed(d)) return NL_TIMEOUT;
  }
}

/* How far SO_RCVTIMEO may run past the deadline before it is set again:
 * the kernel counts it in scheduler ticks (4 ms at HZ=250) anyway. */
#define RCVTIMEO_SLACK 0.005

int nl_rcvtimeo(int fd, double *armed, const nl_deadline *d) {
  double left = nl_deadline_left(d), want;
  struct timeval tv;
  if (left == 0) return NL_TIMEOUT;
  if (left < 0) {
    if (*armed == 0) return NL_OK;
    want = 0;  /* no deadline: block until data comes */
  } else {
    /* keep a value that ends near enough to the deadline: a client with
     * one timeout for every call then never sets it again; one that ends
     * early only makes the caller loop */
    if (*armed > 0 && *armed <= left + RCVTIMEO_SLACK && *armed >= left / 2)
      return NL_OK;
    want = left > 1e6 ? 1e6 : left;
  }
  tv.tv_sec = (time_t)want;
  tv.tv_usec = (suseconds_t)((want - (double)tv.tv_sec) * 1e6);
  if (want > 0 && tv.tv_sec == 0 && tv.tv_usec == 0)
    tv.tv_usec = 1;  /* zero would mean no timeout at all */
  if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0)
    return errno;
  *armed = want;
  return NL_OK;
}

static int l_monotime(lua_State *L) {
  lua_pushnumber(L, nl_monotime());
  return 1;
}

static int l_sleep(lua_State *L) {
  double s = luaL_checknumber(L, 1);
  struct timespec ts;
  luaL_argcheck(L, !isnan(s), 1, "NaN");
  if (s <= 0) return 0;
  ts.tv_sec = (time_t)s;
  ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
  return 0;
}

void nl_open_timeout(lua_State *L) {
  static const luaL_Reg f[] = {
    {"monotime", l_monotime}, {"sleep", l_sleep}, {"timeout", l_timeout},
    {NULL, NULL}};
  luaL_setfuncs(L, f, 0);
}
