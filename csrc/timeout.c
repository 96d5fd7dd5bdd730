/*
 * timeout.c - deadlines on the monotonic clock and the one readiness wait.
 *
 * Every call that can block computes one deadline when it starts and asks
 * here how long it may still wait, so a timeout covers the whole call and
 * not each system call.  nl_wait() is the only place netlua sleeps on a
 * descriptor; keep it that way so a scheduler can take it over.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <poll.h>
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

double nl_opttimeout(lua_State *L, int arg, double dflt) {
  lua_Number t;
  if (lua_isnoneornil(L, arg)) return dflt;
  t = luaL_checknumber(L, arg);
  luaL_argcheck(L, !isnan(t), arg, "timeout is NaN");
  return t < 0 ? -1.0 : (double)t;
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
    {"monotime", l_monotime}, {"sleep", l_sleep}, {NULL, NULL}};
  luaL_setfuncs(L, f, 0);
}
