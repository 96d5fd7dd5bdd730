/*
 * sched.c - how blocking calls cooperate with netlua.run, and the poller
 * the scheduler waits on.
 *
 * An operation that would block inside a coroutine netlua.run drives
 * does not block and does not yield from C: nl_coop_wait records what it
 * waits for and returns NL_PENDING, which every caller passes up until
 * the method returns nl_coop_pend(): (WAIT, fd, events, until, key,
 * restart).  The method's Lua driver (netlua/drive.lua) yields that to
 * the scheduler and, once resumed, calls restart (or the method) again
 * with the same arguments; nl_coop_begin then hands back the deadline and
 * the whole stack the operation had at the wait, kept per thread in the
 * registry meanwhile (values it pushed, results it had read).  Outside netlua.run nothing changes: the
 * operation blocks in nl_wait.  The scheduler itself (queues, timers) is
 * Lua: netlua/sched.lua.
 * Closing an object under a parked operation (nl_coop_closing) hands
 * the descriptor to the scheduler's onclose hook, which wakes the task;
 * the restarted operation then finds nl_coop_closed() and returns
 * "closed".  Also here: netlua.wait(), for scripts that bring their own
 * loop.  Not here: any policy about which coroutine runs next.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/epoll.h>
#endif

#include "netlua.h"

#if defined(__GNUC__) || defined(__clang__)
#define NL_THREAD_LOCAL __thread
#else
#define NL_THREAD_LOCAL
#endif

static const char coop_key = 'c';    /* registry: set of driven threads */
static const char wait_token = 'w';  /* first value of a WAIT */
static const char close_key = 'x';   /* registry: the scheduler's onclose */
static const char kept_key = 'k';    /* registry: thread -> values kept
                                      * across its operation's wait */
static const char driver_key = 'd';  /* registry: set of Lua drivers */

/* Another event loop drives coroutines (netlua.loop.use): then every
 * coroutine that can yield waits through it, not only netlua.run's
 * tasks.  Per OS thread, as the rest of the waiting state. */
static NL_THREAD_LOCAL int foreign = 0;

/* Whether L is one of netlua.run's tasks. */
static int coop_task(lua_State *L) {
  int on;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &coop_key);
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  lua_pushthread(L);
  on = lua_rawget(L, -2) != LUA_TNIL;
  lua_pop(L, 2);
  return on;
}

int nl_coop_active(lua_State *L) {
  if (!lua_isyieldable(L)) return 0;
  return foreign || coop_task(L);
}

/* A weak-keyed table in the registry at key (made on first use), pushed. */
static void weak_table(lua_State *L, const void *key, const char *mode) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, key) == LUA_TTABLE) return;
  lua_pop(L, 1);
  lua_newtable(L);
  lua_newtable(L);
  lua_pushstring(L, mode);
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, key);
}

/* What L's waiting operation keeps across its wait: one table per
 * thread, made on its first wait and used again by every later one, so
 * that a wait allocates nothing (a fleet of tasks waits all the time).
 * Slot 1 holds the count n, slots 2..n+1 the values; n is 0 between
 * waits, the slots nil.  Pushes it (or nil when there is none and not
 * create). */
static int kept_table(lua_State *L, int create) {
  weak_table(L, &kept_key, "k");
  lua_pushthread(L);
  if (lua_rawget(L, -2) != LUA_TTABLE && create) {
    lua_pop(L, 1);
    lua_createtable(L, 8, 0);
    lua_pushthread(L);
    lua_pushvalue(L, -2);
    lua_rawset(L, -4);
  }
  lua_remove(L, -2);
  return lua_istable(L, -1);
}

static lua_Integer kept_count(lua_State *L, int t) {
  lua_Integer n;
  lua_rawgeti(L, t, 1);
  n = lua_tointeger(L, -1);
  lua_pop(L, 1);
  return n;
}

/* Empties the thread's table (pushed at t): the values go to the GC. */
static void kept_clear(lua_State *L, int t, lua_Integer n) {
  lua_Integer i;
  for (i = 2; i <= n + 1; i++) {
    lua_pushnil(L);
    lua_rawseti(L, t, i);
  }
  lua_pushinteger(L, 0);
  lua_rawseti(L, t, 1);
}

/* Puts back on the stack what L's operation kept across its wait. */
static void restore_kept(lua_State *L) {
  int t;
  lua_Integer i, n;
  if (!kept_table(L, 0)) {
    lua_pop(L, 1);
    return;
  }
  t = lua_gettop(L);
  n = kept_count(L, t);
  luaL_checkstack(L, (int)n + 2, "too many values");
  for (i = 2; i <= n + 1; i++) lua_rawgeti(L, t, i);
  kept_clear(L, t, n);
  lua_remove(L, t);
}

void *nl_coop_peek(lua_State *L, const char *tname) {
  void *p = NULL;
  if (kept_table(L, 0)) {
    lua_Integer n = kept_count(L, -1);
    if (n > 0) {
      lua_rawgeti(L, -1, n + 1);
      p = luaL_testudata(L, -1, tname);  /* the kept table anchors it */
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  return p;
}

int nl_coop_resumes(lua_State *L, const nl_coop *c) {
  return c->parked && c->L == L;
}

int nl_coop_begin(lua_State *L, nl_coop *c, lua_CFunction restart,
                  double timeout, nl_deadline *d) {
  if (!lua_isyieldable(L)) {
    /* the main thread, or a callback run from C: this call blocks, and
     * must not disturb the restart of an operation parked on c; a thread
     * left in c by an operation that ended must not make its waits pend;
     * progress is scratch for whoever runs now */
    if (!c->parked) c->L = NULL;
    c->progress = 0;
    nl_deadline_start(d, timeout);
    return 0;
  }
  if (c->parked && c->L == L) {  /* the driver's restart, after the wait */
    c->parked = 0;
    c->key = NULL;
    *d = c->dl;
    lua_settop(L, 0);  /* the stack as it was at the wait */
    restore_kept(L);
    return 1;
  }
  if (c->parked && c->L != NULL && c->L != L)
    /* its state is in c: taking c over would restart it as our call */
    return luaL_error(L, "another task is already waiting on this object "
                      "(one reading and one writing task at a time)");
  c->L = L;
  c->restart = restart;
  c->progress = 0;
  nl_deadline_start(d, timeout);
  c->dl = *d;
  return 0;
}

void nl_coop_end(nl_coop *c) {
  if (c->closed && c->parked) return;  /* its restart must find it closed */
  c->L = NULL;
  c->parked = 0;
}

int nl_coop_yields(const nl_coop *c) {
  return c->L != NULL && nl_coop_active(c->L);
}

int nl_coop_wait(nl_coop *c, int fd, int events, const nl_deadline *d) {
  if (nl_deadline_passed(d)) return NL_TIMEOUT;
  if (!nl_coop_yields(c)) return nl_wait(fd, events, d);
  /* c->dl stays the operation's: d may be a shorter look */
  c->wfd = fd;
  c->wev = events;
  c->key = NULL;
  c->wat = d->at;
  c->parked = 1;
  return NL_PENDING;
}

int nl_coop_park(nl_coop *c, void *key, const nl_deadline *d) {
  if (nl_deadline_passed(d)) return NL_TIMEOUT;
  c->dl = *d;
  c->wfd = -1;
  c->wev = 0;
  c->key = key;
  c->wat = d->at;
  c->parked = 1;
  return NL_PENDING;
}

/* Whether the running C function was called by one of the Lua drivers
 * (netlua/drive.lua), which call it through pcall. */
static int called_by_driver(lua_State *L) {
  lua_Debug ar;
  int level, yes = 0;
  for (level = 1; level <= 2 && !yes; level++) {
    if (!lua_getstack(L, level, &ar)) break;
    lua_getinfo(L, "fS", &ar);
    weak_table(L, &driver_key, "k");
    lua_pushvalue(L, -2);
    yes = lua_rawget(L, -2) != LUA_TNIL;
    lua_pop(L, 3);
    if (strcmp(ar.what, "C") != 0) break;  /* only pcall may stand between */
  }
  return yes;
}

int nl_coop_pend(lua_State *L, nl_coop *c) {
  int n = lua_gettop(L), i;
  if (!called_by_driver(L)) {
    c->parked = 0;
    nl_coop_end(c);
    return luaL_error(L, "a netlua method was called without its driver "
                      "inside a task (a method saved before netlua.run "
                      "started?): call it through its object");
  }
  if (n > 0) {  /* the whole stack, for the restart to pick up from */
    kept_table(L, 1);
    for (i = 1; i <= n; i++) {
      lua_pushvalue(L, i);
      lua_rawseti(L, n + 1, i + 1);
    }
    lua_pushinteger(L, n);
    lua_rawseti(L, n + 1, 1);
  }
  lua_settop(L, 0);
  lua_pushlightuserdata(L, (void *)&wait_token);
  lua_pushinteger(L, c->wfd);
  lua_pushinteger(L, c->wev);
  lua_pushnumber(L, c->wat);
  if (c->key) lua_pushlightuserdata(L, c->key);
  else lua_pushnil(L);
  if (c->restart) lua_pushcfunction(L, c->restart);
  else lua_pushnil(L);
  return 6;
}

/* How long a task whose data is always there (so it never waits) runs
 * before it lets the other tasks have a turn. */
#define NL_SLICE 0.01

/* The task netlua.run resumed last and when (core.coop_slice): a slice
 * spans every call the task makes until it yields.  A coroutine another
 * loop drives is resumed where netlua cannot see it: its slice starts
 * after each of its waits (drive.lua) and at its first call after
 * another coroutine's.  Per OS thread, for programs that run a Lua state
 * in each of several threads. */
static NL_THREAD_LOCAL const lua_State *slice_L = NULL;
static NL_THREAD_LOCAL double slice_start = 0;

static int l_coop_slice(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTHREAD);
  slice_L = lua_tothread(L, 1);
  slice_start = nl_monotime();
  return 0;
}

int nl_coop_due(const nl_coop *c) {
  lua_State *L = c->L;
  if (L == NULL || !nl_coop_active(L)) return 0;
  if (L != slice_L) {  /* only another loop's coroutine: tasks have theirs */
    slice_L = L;
    slice_start = nl_monotime();
    return 0;
  }
  return nl_monotime() - slice_start >= NL_SLICE;
}

int nl_coop_share(nl_coop *c) {
  if (!nl_coop_due(c)) return NL_OK;
  /* a wait on nothing that is already due: the scheduler runs whatever
   * else is ready, then restarts this operation like after any wait */
  c->wfd = -1;
  c->wev = 0;
  c->key = NULL;
  c->wat = nl_monotime();
  c->parked = 1;
  return NL_PENDING;
}

/* Calls the scheduler's onclose hook with the value on top (popped). */
static void call_onclose(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &close_key) != LUA_TFUNCTION) {
    lua_pop(L, 2);  /* the scheduler was never loaded: nobody waits */
    return;
  }
  lua_insert(L, -2);
  /* it only moves tasks between tables: an error here is out of memory,
   * and the close must go on regardless */
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) lua_pop(L, 1);
}

void nl_coop_closing(lua_State *L, nl_coop *c, int fd) {
  c->closed = 1;
  if (c->parked && c->key) {  /* a task parked on a key: a lookup */
    nl_offload_abandon(c->key);
    lua_pushlightuserdata(L, c->key);
    call_onclose(L);
  }
  if (fd < 0) return;
  lua_pushinteger(L, fd);
  call_onclose(L);
}

void nl_coop_wake_fd(lua_State *L, int fd) {
  if (L == NULL || fd < 0) return;
  lua_pushinteger(L, fd);
  call_onclose(L);  /* the same hook: it wakes without closing anything */
}

int nl_coop_closed(lua_State *L, nl_coop *c) {
  if (!c->closed || !nl_coop_resumes(L, c)) return 0;
  if (kept_table(L, 0))  /* what it kept is not needed now */
    kept_clear(L, lua_gettop(L), kept_count(L, -1));
  lua_pop(L, 1);
  c->parked = 0;
  nl_coop_end(c);
  return 1;
}

/* core.coop_onclose(fn): fn(fd) is called when an object closes fd, and
 * fn(key) when it closes under a task parked on a key. */
static int l_coop_onclose(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_settop(L, 1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &close_key);
  return 0;
}

/* core.coop_register(co): netlua.run drives co from now on. */
static int l_coop_register(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTHREAD);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &coop_key) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_newtable(L);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &coop_key);
  }
  lua_pushvalue(L, 1);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);
  return 0;
}

/* core.coop_driver(fn): fn is a Lua driver (netlua/drive.lua), the only
 * caller a method may hand a wait to. */
static int l_coop_driver(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  weak_table(L, &driver_key, "k");
  lua_pushvalue(L, 1);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);
  return 0;
}

/* core.coop_foreign(on): another event loop drives coroutines from now
 * on (or no longer). */
static int l_coop_foreign(lua_State *L) {
  foreign = lua_toboolean(L, 1);
  return 0;
}

/* core.coop_task() -> whether the calling coroutine is a task of
 * netlua.run (else a wait goes through the other loop's adapter). */
static int l_coop_task(lua_State *L) {
  lua_pushboolean(L, lua_isyieldable(L) && coop_task(L));
  return 1;
}

/* core.coop_active() -> whether the calling coroutine is driven. */
static int l_coop_active(lua_State *L) {
  lua_pushboolean(L, nl_coop_active(L));
  return 1;
}

/* ---- the poller: epoll on Linux, poll(2) elsewhere -------------------- */

#define POLLER "netlua.poller"

typedef struct poller {
  int epfd;                /* -1 when closed (or unused by the fallback) */
  struct pollfd *fds;      /* fallback: watched descriptors */
  size_t nfds, cap;
  int closed;
} poller;

static poller *check_poller(lua_State *L) {
  poller *p = (poller *)luaL_checkudata(L, 1, POLLER);
  if (p->closed) luaL_error(L, "attempt to use a closed poller");
  return p;
}

static int l_poller(lua_State *L) {
  poller *p = (poller *)nl_class_new(L, POLLER, sizeof *p, 0);
  p->epfd = -1;
#ifdef __linux__
  p->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (p->epfd < 0) return nl_pushfail(L, errno, "epoll_create1");
#endif
  return 1;
}

#ifndef __linux__
static struct pollfd *find_fd(poller *p, int fd) {
  size_t i;
  for (i = 0; i < p->nfds; i++)
    if (p->fds[i].fd == fd) return &p->fds[i];
  return NULL;
}
#endif

/* poller:watch(fd, events [, known]): wake once when fd is ready for
 * events (NL_WAIT_READ | NL_WAIT_WRITE); 0 events stops watching.  known:
 * the caller believes the poller has fd already (a hint for epoll). */
static int m_watch(lua_State *L) {
  poller *p = check_poller(L);
  int fd = (int)luaL_checkinteger(L, 2);
  int ev = (int)luaL_checkinteger(L, 3);
  luaL_argcheck(L, fd >= 0, 2, "negative descriptor");
#ifdef __linux__
  if (ev == 0) {
    epoll_ctl(p->epfd, EPOLL_CTL_DEL, fd, NULL);
  } else {
    struct epoll_event e;
    memset(&e, 0, sizeof e);
    e.events = EPOLLONESHOT | ((ev & NL_WAIT_READ) ? EPOLLIN : 0) |
               ((ev & NL_WAIT_WRITE) ? EPOLLOUT : 0);
    e.data.fd = fd;
    /* `known`: the caller has watched fd before (try MOD first), else
     * it is new (try ADD first); either way the other is the fallback */
    if (lua_toboolean(L, 4)) {
      if (epoll_ctl(p->epfd, EPOLL_CTL_MOD, fd, &e) < 0 &&
          (errno != ENOENT || epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &e) < 0))
        return nl_pushfail(L, errno, "watch fd %d", fd);
    } else if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &e) < 0 &&
               (errno != EEXIST ||
                epoll_ctl(p->epfd, EPOLL_CTL_MOD, fd, &e) < 0)) {
      return nl_pushfail(L, errno, "watch fd %d", fd);
    }
  }
#else
  {
    struct pollfd *f = find_fd(p, fd);
    if (ev == 0) {
      if (f) *f = p->fds[--p->nfds];
    } else {
      if (f == NULL) {
        if (p->nfds == p->cap) {
          size_t cap = p->cap ? p->cap * 2 : 64;
          struct pollfd *n = realloc(p->fds, cap * sizeof *n);
          if (n == NULL) return nl_pushfail(L, ENOMEM, "watch");
          p->fds = n;
          p->cap = cap;
        }
        f = &p->fds[p->nfds++];
        f->fd = fd;
      }
      f->events = (short)(((ev & NL_WAIT_READ) ? POLLIN : 0) |
                          ((ev & NL_WAIT_WRITE) ? POLLOUT : 0));
    }
  }
#endif
  lua_pushboolean(L, 1);
  return 1;
}

/* poller:wait(timeout) -> array of ready descriptors (each fires once). */
static int m_wait(lua_State *L) {
  poller *p = check_poller(L);
  nl_deadline d;
  int n, i, out = 0;
  nl_deadline_start(&d, nl_opttimeout(L, 2, -1));
  lua_newtable(L);
#ifdef __linux__
  {
    struct epoll_event ev[256];
    do n = epoll_wait(p->epfd, ev, 256, nl_deadline_ms(&d));
    while (n < 0 && errno == EINTR && !nl_deadline_passed(&d));
    if (n < 0 && errno != EINTR) return nl_pushfail(L, errno, "epoll_wait");
    for (i = 0; i < n; i++) {
      lua_pushinteger(L, ev[i].data.fd);
      lua_rawseti(L, -2, ++out);
    }
  }
#else
  do n = poll(p->fds, (nfds_t)p->nfds, nl_deadline_ms(&d));
  while (n < 0 && errno == EINTR && !nl_deadline_passed(&d));
  if (n < 0 && errno != EINTR) return nl_pushfail(L, errno, "poll");
  for (i = (int)p->nfds - 1; n > 0 && i >= 0; i--) {
    if (p->fds[i].revents == 0) continue;
    lua_pushinteger(L, p->fds[i].fd);
    lua_rawseti(L, -2, ++out);
    p->fds[i] = p->fds[--p->nfds];  /* one-shot, like EPOLLONESHOT */
  }
#endif
  return 1;
}

/* poller:fileno() -> a descriptor that is readable while the poller has
 * something to report (the epoll descriptor), or nil where there is none
 * (the poll(2) fallback): netlua.run inside another loop's coroutine
 * waits for it through that loop. */
static int m_pfileno(lua_State *L) {
  poller *p = check_poller(L);
  if (p->epfd < 0) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushinteger(L, p->epfd);
  return 1;
}

static int m_pclose(lua_State *L) {
  poller *p = (poller *)luaL_checkudata(L, 1, POLLER);
  if (!p->closed) {
    if (p->epfd >= 0) close(p->epfd);
    free(p->fds);
    p->fds = NULL;
    p->epfd = -1;
    p->closed = 1;
  }
  return 0;
}

/* ---- netlua.wait(objects, timeout) ------------------------------------ */

/* A descriptor from an integer or an object with a fileno() method. */
static int object_fd(lua_State *L, int idx) {
  int fd;
  if (lua_isinteger(L, idx)) return (int)lua_tointeger(L, idx);
  if (luaL_getmetafield(L, idx, "__index") == LUA_TNIL)
    luaL_error(L, "bad object in wait list (fileno expected)");
  lua_getfield(L, -1, "fileno");
  lua_pushvalue(L, idx);
  lua_call(L, 1, 1);
  fd = (int)luaL_checkinteger(L, -1);
  lua_pop(L, 2);
  return fd;
}

/* netlua.wait(objects [, timeout [, mode]]) -> array of the objects that
 * are ready to read ("r", default), write ("w") or either ("rw"). */
static int l_wait(lua_State *L) {
  struct pollfd *fds;
  lua_Integer n, i;
  const char *mode;
  short ev = 0;
  nl_deadline d;
  int r, out = 0;
  luaL_checktype(L, 1, LUA_TTABLE);
  nl_deadline_start(&d, nl_opttimeout(L, 2, -1));
  mode = luaL_optstring(L, 3, "r");
  if (strchr(mode, 'r')) ev |= POLLIN;
  if (strchr(mode, 'w')) ev |= POLLOUT;
  luaL_argcheck(L, ev != 0, 3, "mode must be \"r\", \"w\" or \"rw\"");
  n = (lua_Integer)lua_rawlen(L, 1);
  fds = (struct pollfd *)lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *fds, 0);
  for (i = 0; i < n; i++) {
    lua_rawgeti(L, 1, i + 1);
    fds[i].fd = object_fd(L, lua_gettop(L));
    fds[i].events = ev;
    fds[i].revents = 0;
    lua_pop(L, 1);
  }
  do r = poll(fds, (nfds_t)n, nl_deadline_ms(&d));
  while (r < 0 && errno == EINTR && !nl_deadline_passed(&d));
  if (r < 0 && errno != EINTR) return nl_pushfail(L, errno, "wait");
  if (r <= 0) return nl_pushfail(L, NL_TIMEOUT, "wait");
  lua_newtable(L);
  for (i = 0; i < n; i++) {
    if (fds[i].revents == 0) continue;
    lua_rawgeti(L, 1, i + 1);
    lua_rawseti(L, -2, ++out);
  }
  return 1;
}

void nl_open_sched(lua_State *L) {
  static const luaL_Reg pm[] = {
    {"watch", m_watch}, {"wait", m_wait}, {"fileno", m_pfileno},
    {"close", m_pclose}, {NULL, NULL}};
  static const luaL_Reg f[] = {
    {"coop_register", l_coop_register}, {"coop_active", l_coop_active},
    {"coop_onclose", l_coop_onclose}, {"coop_slice", l_coop_slice},
    {"coop_driver", l_coop_driver}, {"coop_foreign", l_coop_foreign},
    {"coop_task", l_coop_task},
    {"poller", l_poller}, {"wait", l_wait}, {NULL, NULL}};
  static const nl_class poller_class = {
    POLLER, pm, NULL, m_pclose, NULL, NULL, 0};
  nl_class_make(L, &poller_class, 0);
  luaL_setfuncs(L, f, 0);
  lua_pushlightuserdata(L, (void *)&wait_token);
  lua_setfield(L, -2, "WAIT");
  /* the events of a wait and of poller:watch, for netlua/sched.lua */
  lua_pushinteger(L, NL_WAIT_READ);
  lua_setfield(L, -2, "WAIT_READ");
  lua_pushinteger(L, NL_WAIT_WRITE);
  lua_setfield(L, -2, "WAIT_WRITE");
}
