/*
 * sock.c - the socket object that TCP, UDP and the Telnet session share.
 *
 * Modelled on liolib.c's file handles: one checker that raises "attempt
 * to use a closed socket", __gc and __close bound to the same idempotent
 * close, __tostring showing "(closed)".  A kind of socket object
 * (nl_sock_kind) starts with an nl_sock and adds fields of its own; the
 * close, __gc, __tostring, fileno, settimeout and gettimeout here serve
 * every kind, and call the kind's release for what it added.  Descriptors
 * are always non-blocking, but for a connected stream's: outside a task
 * its reads wait in a blocking recv() under SO_RCVTIMEO (nl_recv_wait,
 * which makes the descriptor blocking at the first such wait), every
 * other call on it passes MSG_DONTWAIT.  All waiting keeps the
 * call's deadline.  Not here: what a kind's own methods do.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "netlua.h"

int nl_set_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return errno;
  if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) return errno;
  return NL_OK;
}

int nl_connect_wait(int fd, nl_coop *c, const nl_deadline *d) {
  nl_deadline now;
  int err;
  nl_deadline_start(&now, 0);  /* connected already (or resumed after a wait)? */
  err = nl_wait(fd, NL_WAIT_WRITE, &now);
  if (err == NL_TIMEOUT)
    err = c ? nl_coop_wait(c, fd, NL_WAIT_WRITE, d) : nl_wait(fd, NL_WAIT_WRITE, d);
  if (err == NL_OK) {
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
  }
  return err;
}

int nl_recv_wait(int fd, nl_coop *c, double *armed, const nl_deadline *d,
                 int fresh, char *p, size_t cap, size_t *got) {
  for (;;) {
    int r, flags = MSG_DONTWAIT, tasked = nl_coop_yields(c);
    ssize_t n;
    if (armed != NULL && !tasked) {
      r = nl_rcvtimeo(fd, armed, d);
      if (r == NL_OK) flags = 0;
      else if (r != NL_TIMEOUT) return r;  /* passed: one look, no wait */
    } else if (fresh) {
      fresh = 0;
      r = nl_coop_wait(c, fd, NL_WAIT_READ, d);
      if (r != NL_OK) return r;
    }
    n = recv(fd, p, cap, flags);
    if (n > 0) {
      *got = (size_t)n;
      return NL_OK;
    }
    if (n == 0) return NL_CLOSED;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return errno;
    if (flags == 0) {  /* SO_RCVTIMEO ran out, maybe a hair early */
      /* or the descriptor is still non-blocking: its first blocking read
       * (nl_sock_blocking leaves that to here), or something else made it
       * so (libuv's uv_poll_init does, when a loop adapter polls it):
       * blocking now, else every recv returns at once and this loop spins */
      int fl = fcntl(fd, F_GETFL);
      if (fl >= 0 && (fl & O_NONBLOCK)) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
      if (nl_deadline_passed(d)) return NL_TIMEOUT;
      continue;
    }
    r = nl_coop_wait(c, fd, NL_WAIT_READ, d);
    if (r != NL_OK) return r;
  }
}

static int sock_fill(nl_stream *st, const nl_deadline *d) {
  nl_sock *s = (nl_sock *)((char *)st - offsetof(nl_sock, st));
  /* use the free tail when it is big; else ask for 16 KiB, so idle
   * sockets stay small while bulk reads still get large recv()s */
  size_t room = st->in.cap - st->in.start - st->in.len, got = 0;
  char *p;
  int r;
  if (s->fd < 0) return EBADF;
  if (room < 4096) room = 16384;
  p = nl_buf_reserve(&st->in, room);
  if (p == NULL) return ENOMEM;
  r = nl_recv_wait(s->fd, &s->co, s->blocking ? &s->rcvtimeo : NULL, d, 0,
                   p, room, &got);
  if (r != NL_OK) return r;
  nl_buf_commit(&st->in, got);
  s->nrecv += got;
  /* a long read of ready data takes turns: the restart finds it buffered */
  return nl_coop_share(&s->co);
}

void nl_sock_blocking(nl_sock *s) {
  /* the descriptor itself turns blocking at the first read that waits
   * outside a task (nl_recv_wait): a socket used only in tasks, as a
   * fleet's thousands are, never pays the two fcntl calls */
  s->blocking = 1;
}

nl_sock *nl_sock_new(lua_State *L, const nl_sock_kind *k, int fd,
                     int family, int type) {
  nl_sock *s = (nl_sock *)nl_class_new(L, k->name, k->size, k->nuv);
  s->fd = -1;
  s->family = family;
  s->type = type;
  s->timeout = -1;
  nl_buf_init(&s->st.in);
  s->st.fill = sock_fill;
  s->birth = nl_monotime();
  if (fd >= 0) {
    s->fd = fd;  /* owned from here on, so __gc closes it on error */
    nl_set_nonblock(fd);
  }
  return s;
}

void nl_sock_move(nl_sock *to, nl_sock *from) {
  to->fd = from->fd;
  to->family = from->family;
  to->timeout = from->timeout;
  to->blocking = from->blocking;
  to->rcvtimeo = from->rcvtimeo;
  nl_buf_free(&to->st.in);
  to->st.in = from->st.in;  /* the bytes it read already, not copied */
  nl_buf_init(&from->st.in);
  from->fd = -1;
  nl_sock_closefd(from);
}

nl_sock *nl_sock_raw(lua_State *L, int arg, const char *tname) {
  /* a method's own object is the hot case: every call checks it */
  if (arg == 1) return (nl_sock *)nl_class_self(L, tname);
  return (nl_sock *)luaL_checkudata(L, arg, tname);
}

nl_sock *nl_sock_open(lua_State *L, nl_sock *s) {
  if (s->fd < 0) luaL_error(L, "attempt to use a closed socket");
  return s;
}

nl_sock *nl_sock_check(lua_State *L, int arg, const char *tname) {
  return nl_sock_open(L, nl_sock_raw(L, arg, tname));
}

nl_sock *nl_sock_op(lua_State *L, int arg, const char *tname,
                    const char *who) {
  nl_sock *s = nl_sock_raw(L, arg, tname);
  /* only the side being resumed can answer yes */
  if ((s->co.closed || s->wco.closed) &&
      (nl_coop_closed(L, &s->co) || nl_coop_closed(L, &s->wco))) {
    nl_pushfail(L, NL_ABORTED, "%s", who);
    return NULL;
  }
  return nl_sock_open(L, s);
}

nl_sock *nl_sock_lsop(lua_State *L, int arg, const char *tname,
                      const char *who) {
  nl_sock *s = nl_sock_raw(L, arg, tname);
  if ((s->co.closed || s->wco.closed) &&
      (nl_coop_closed(L, &s->co) || nl_coop_closed(L, &s->wco))) {
    nl_pushlsfail(L, NL_ABORTED, "%s", who);
    return NULL;
  }
  return nl_sock_open(L, s);
}

int nl_sock_closefd(nl_sock *s) {
  int r = 0;
  if (s->fd >= 0) {
    if (!s->borrowed) r = close(s->fd);
    s->fd = -1;
  }
  nl_buf_free(&s->st.in);
  nl_ai_free(s->ai_list);
  s->ai_list = s->ai_cur = NULL;
  return r;
}

int nl_sock_send_all(nl_sock *s, const char *p, size_t n,
                     const nl_deadline *d) {
  size_t done = 0;
  while (done < n) {
    ssize_t k = send(s->fd, p + done, n - done, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (k >= 0) {
      done += (size_t)k;
      s->nsent += (size_t)k;
      s->wco.progress += (size_t)k;  /* survives a wait: no resends */
      /* a long run of writes that never waits takes turns (the restart
       * finds the progress, even all of it) */
      if (nl_coop_share(&s->wco) == NL_PENDING) return NL_PENDING;
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      int r = nl_coop_wait(&s->wco, s->fd, NL_WAIT_WRITE, d);
      if (r != NL_OK) return r;
      continue;
    }
    return errno;
  }
  return NL_OK;
}

/* ---- the methods every kind has; upvalue 2 is its nl_sock_kind ------- */

#define KIND(L) \
  ((const nl_sock_kind *)lua_touserdata(L, lua_upvalueindex(2)))

static nl_sock *raw(lua_State *L) {
  return (nl_sock *)nl_class_self(L, KIND(L)->name);
}

/* The object at 1, open; raises naming the kind ("telnet session"). */
static nl_sock *open_obj(lua_State *L) {
  nl_sock *s = raw(L);
  if (s->fd < 0) luaL_error(L, "attempt to use a closed %s", KIND(L)->noun);
  return s;
}

/* Closes the descriptor, then what the kind keeps beside it. */
static void close_obj(lua_State *L, nl_sock *s) {
  const nl_sock_kind *k = KIND(L);
  nl_sock_closefd(s);
  if (k->release != NULL) k->release(s);
}

/* close() and __close: a task waiting on the socket wakes first */
int nl_sock_close(lua_State *L) {
  nl_sock *s = raw(L);
  if (s->fd >= 0) {
    nl_coop_closing(L, &s->co, s->fd);  /* wakes readers and writers */
    nl_coop_closing(L, &s->wco, -1);
  }
  close_obj(L, s);
  lua_pushboolean(L, 1);
  return 1;
}

/* __gc: nothing can wait on a socket being collected */
static int m_gc(lua_State *L) {
  close_obj(L, raw(L));
  return 0;
}

static int m_tostring(lua_State *L) {
  const nl_sock_kind *k = KIND(L);
  nl_sock *s = raw(L);
  if (s->fd < 0) lua_pushfstring(L, "%s: %p (closed)", k->name, (void *)s);
  else if (k->label != NULL)
    lua_pushfstring(L, "%s: %p (%s)", k->name, (void *)s, k->label(s));
  else lua_pushfstring(L, "%s: %p", k->name, (void *)s);
  return 1;
}

static int m_fileno(lua_State *L) {
  lua_pushinteger(L, open_obj(L)->fd);
  return 1;
}

static int m_settimeout(lua_State *L) {
  nl_sock *s = open_obj(L);
  s->timeout = nl_opttimeout(L, 2, -1);
  lua_pushinteger(L, 1);  /* LuaSocket returns 1 */
  return 1;
}

static int m_gettimeout(lua_State *L) {
  nl_sock *s = open_obj(L);
  if (s->timeout < 0) lua_pushnil(L);
  else lua_pushnumber(L, s->timeout);
  return 1;
}

static int name_result(lua_State *L, int peer) {
  nl_sock *s = open_obj(L);
  nl_addr a;
  int r;
  a.len = sizeof a.ss;
  memset(&a.ss, 0, sizeof a.ss);
  r = peer ? getpeername(s->fd, (struct sockaddr *)&a.ss, &a.len)
           : getsockname(s->fd, (struct sockaddr *)&a.ss, &a.len);
  if (r < 0)
    return nl_pushfail(L, errno, peer ? "getpeername" : "getsockname");
  nl_addr_push(L, (struct sockaddr *)&a.ss);
  lua_pushstring(L, nl_family_name(a.ss.ss_family));
  return 3;
}

static int m_getsockname(lua_State *L) { return name_result(L, 0); }
static int m_getpeername(lua_State *L) { return name_result(L, 1); }

static int m_getfamily(lua_State *L) {
  lua_pushstring(L, nl_family_name(open_obj(L)->family));
  return 1;
}

void nl_sock_class(lua_State *L, const nl_sock_kind *k) {
  static const luaL_Reg base[] = {
    {"close", nl_sock_close}, {"fileno", m_fileno}, {"getfd", m_fileno},
    {"settimeout", m_settimeout}, {"gettimeout", m_gettimeout},
    {NULL, NULL}};
  static const luaL_Reg addresses[] = {
    {"close", nl_sock_close}, {"fileno", m_fileno}, {"getfd", m_fileno},
    {"settimeout", m_settimeout}, {"gettimeout", m_gettimeout},
    {"getsockname", m_getsockname}, {"getpeername", m_getpeername},
    {"getfamily", m_getfamily}, {NULL, NULL}};
  nl_class c;
  c.name = k->name;
  c.methods = k->addresses ? addresses : base;
  c.more = k->methods;  /* after the shared ones: a kind may replace one */
  c.gc = m_gc;
  c.close = k->close != NULL ? k->close : nl_sock_close;
  c.tostring = m_tostring;
  c.waits = 1;
  lua_pushlightuserdata(L, (void *)k);
  nl_class_make(L, &c, 1);
  if (k->close != NULL) {  /* the method too, as __close */
    nl_class_methods(L, k->name);
    luaL_getmetatable(L, k->name);
    lua_pushlightuserdata(L, (void *)k);
    lua_pushcclosure(L, k->close, 2);
    lua_setfield(L, -2, "close");
    lua_pop(L, 1);
  }
}
