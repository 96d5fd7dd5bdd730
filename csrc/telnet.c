/*
 * telnet.c - the Telnet session (`netlua.telnet`) and the bare engine
 * object (`netlua.telnet_engine`) for Lua.
 *
 * A session is a socket object (it starts with the nl_sock whose close,
 * __gc, __tostring, fileno and settimeout sock.c gives every kind) that
 * owns one telnet_engine.c engine.  Received bytes are decoded in place
 * at the tail of ONE buffer (the socket's read buffer), so reads,
 * read_until and expect only ever look at new bytes (plus a bounded
 * window for Lua patterns): linear time, bounded by max_buffer.
 * Replies the engine produces are sent right after each received chunk.
 * The negotiation callback (telnetlib's set_option_negotiation_callback)
 * runs after the engine has returned, never from inside it.
 * Connecting is netlua.tcp's job; the Lua helpers live in netlua/telnet.lua.
 * The same session object also runs over another transport (nl_term_io:
 * an SSH channel with a pty), with no Telnet decoding: one implementation
 * of the reads, expect and the device helpers for both.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "netlua.h"
#include "telnet_engine.h"

#define SESSION "netlua.telnet"
#define ENGINE "netlua.telnet_engine"
#define TCP "netlua.tcp"

static const nl_sock_kind telnet_kind;  /* at the end, with the methods */

/* what interact writes when the peer closes (telnetlib's words; also
 * core.TELNET_BYE, for interact's version that runs in a task) */
#define BYE "*** Connection closed by remote host ***\n"

#define CHUNK 131072   /* the largest recv() */
#define RECV_MIN 256   /* the first recv(): what a prompt or a reply needs */
#define DEFAULT_MAX_BUFFER (16u << 20)
#define DEFAULT_MAX_MATCH 65536
#define SBQ_MAX (1u << 20)

typedef struct tsession {
  nl_sock sock;        /* first: the socket it is, whose descriptor,
                        * timeout, waits (co: the read in progress, wco:
                        * the write; one reader and one writer task may
                        * wait at once), close, __gc, __tostring, fileno
                        * and settimeout it shares; its read buffer
                        * (IN) holds the decoded data not yet read */
  int eof;             /* the peer closed its side */
  int debug;           /* telnetlib's debuglevel */
  int has_cb;          /* a negotiation callback is set */
  int in_cb;           /* it is running now: no reads from inside it */
  int secret;          /* mask the next debug "send" line */
  int wrote;           /* we just wrote: the answer cannot be there yet */
  int has_log;         /* a session log function is set (uservalue 2) */
  size_t rsize;        /* next recv() size: doubles while recv()s come back
                        * full (bulk data), halves when they do not, so an
                        * idle session's buffer stays small (see fill) */
  size_t max_buffer, max_match;
  nl_buf out;          /* engine replies not yet sent */
  nl_buf sbq;          /* last subnegotiation (option byte first) */
  nl_buf evq;          /* (cmd, opt) pairs for the callback */
  lua_State *L;        /* the state of the running method (callbacks) */
  char name[80];       /* "host:port" for messages */
  const nl_term_io *io;  /* another transport (NULL: the Telnet socket) */
  void *ioctx;
  tn_engine eng;
} tsession;

#define IN(s) (&(s)->sock.st.in)  /* decoded data not yet read */

/* ---- engine callbacks (no Lua in here) ------------------------------- */

static void dbg_line(const char *name, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "Telnet(%s): ", name);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

static void dbg_cmd(char *out, size_t n, int cmd, int opt, int with_opt) {
  const char *c = tn_cmd_name(cmd), *o = tn_opt_name(opt);
  char cb[16], ob[16];
  if (!c) { snprintf(cb, sizeof cb, "%d", cmd); c = cb; }
  if (!o) { snprintf(ob, sizeof ob, "%d", opt); o = ob; }
  if (with_opt) snprintf(out, n, "IAC %s %s", c, o);
  else snprintf(out, n, "IAC %s", c);
}

static void s_send(void *ud, const unsigned char *p, size_t n) {
  tsession *s = (tsession *)ud;
  nl_buf_append(&s->out, (const char *)p, n);  /* lost only on ENOMEM */
}

static void queue_cb(tsession *s, int cmd, int opt) {
  char two[2];
  two[0] = (char)cmd;
  two[1] = (char)opt;
  nl_buf_append(&s->evq, two, 2);
}

static void s_event(void *ud, const tn_event *ev) {
  tsession *s = (tsession *)ud;
  char b[64];
  switch (ev->kind) {
    case TN_EV_NEG:
      if (s->has_cb) queue_cb(s, ev->cmd, ev->opt);
      if (s->debug) {
        dbg_cmd(b, sizeof b, ev->cmd, ev->opt, 1);
        dbg_line(s->name, "recv %s", b);
      }
      break;
    case TN_EV_SENT:
      if (s->debug) {
        dbg_cmd(b, sizeof b, ev->cmd, ev->opt, 1);
        dbg_line(s->name, "send %s", b);
      }
      break;
    case TN_EV_CMD:
      if (s->has_cb) queue_cb(s, ev->cmd, 0);
      if (s->debug) {
        dbg_cmd(b, sizeof b, ev->cmd, 0, 0);
        dbg_line(s->name, "recv %s", b);
      }
      break;
    case TN_EV_SB: {
      char opt = (char)ev->opt;
      s->sbq.start = s->sbq.len = 0;  /* telnetlib keeps the last one */
      if (ev->len < SBQ_MAX) {
        nl_buf_append(&s->sbq, &opt, 1);
        nl_buf_append(&s->sbq, (const char *)ev->data, ev->len);
      }
      if (s->has_cb) {
        queue_cb(s, TN_SB, 0);
        queue_cb(s, TN_SE, 0);
      }
      if (s->debug)
        dbg_line(s->name, "recv IAC SB %d <%zu bytes> IAC SE", ev->opt,
                 ev->len);
      break;
    }
    case TN_EV_SB_OVERFLOW:
      if (s->debug)
        dbg_line(s->name, "subnegotiation %d of %zu bytes dropped (over %d)",
                 ev->opt, ev->len, TN_SB_MAX);
      break;
    case TN_EV_SB_ABORT:
      if (s->debug)
        dbg_line(s->name, "subnegotiation %d cut by IAC %d", ev->opt, ev->cmd);
      break;
    case TN_EV_STATE:
      if (s->debug)
        dbg_line(s->name, "option %d %s %s", ev->opt,
                 ev->cmd == TN_US ? "(ours)" : "(theirs)",
                 ev->on ? "on" : "off");
      break;
    default:
      break;
  }
}

/* ---- checking and options -------------------------------------------- */

static tsession *raw_session(lua_State *L, int arg) {
  /* a method of either kind: upvalue 1 is its own metatable */
  void *p;
  if (arg == 1) {
    p = lua_touserdata(L, 1);
    if (p != NULL && lua_getmetatable(L, 1)) {
      int same = lua_rawequal(L, -1, lua_upvalueindex(1));
      lua_pop(L, 1);
      if (same) return (tsession *)p;
    }
  }
  /* a function with no kind's upvalue (interact's call of write) */
  p = luaL_testudata(L, arg, NL_SSH_SHELL);
  if (p != NULL) return (tsession *)p;
  return (tsession *)luaL_checkudata(L, arg, SESSION);
}

static tsession *open_session(lua_State *L, tsession *s) {
  if (s->sock.fd < 0) luaL_error(L, "attempt to use a closed telnet session");
  s->L = L;
  return s;
}

static tsession *check_session(lua_State *L, int arg) {
  return open_session(L, raw_session(L, arg));
}

static tsession *open_reader(lua_State *L, tsession *s, const char *who) {
  open_session(L, s);
  if (s->in_cb)
    luaL_error(L, "%s: cannot read from inside the negotiation callback", who);
  return s;
}

static tsession *check_reader(lua_State *L, int arg, const char *who) {
  return open_reader(L, raw_session(L, arg), who);
}

/* The session (argument 1) for a method that may restart after a wait:
 * NULL, with nil, "<who> <name>: closed", "closed" pushed, when another
 * task closed it while the method waited.  Otherwise as check_reader
 * (reading) or check_session. */
static tsession *session_op(lua_State *L, const char *who, int reading) {
  tsession *s = raw_session(L, 1);
  /* only the side being resumed can answer yes */
  if (nl_coop_closed(L, &s->sock.co) || nl_coop_closed(L, &s->sock.wco)) {
    nl_pushfail(L, NL_ABORTED, "%s %s", who, s->name);
    return NULL;
  }
  return reading ? open_reader(L, s, who) : open_session(L, s);
}

static size_t opt_size(lua_State *L, int opts, const char *field,
                       size_t dflt) {
  size_t v = dflt;
  if (lua_getfield(L, opts, field) != LUA_TNIL) {
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1)
      luaL_error(L, "bad option '%s' (positive integer expected)", field);
    v = (size_t)lua_tointeger(L, -1);
  }
  lua_pop(L, 1);
  return v;
}

static void opt_terminal(lua_State *L, int opts, tn_engine *e) {
  int t = lua_getfield(L, opts, "terminal"), ok = 1;
  if (t == LUA_TSTRING) {
    size_t n;
    const char *p = lua_tolstring(L, -1, &n);
    ok = tn_add_ttype(e, p, n) == 0;
  } else if (t == LUA_TTABLE) {
    lua_Integer i, n = (lua_Integer)lua_rawlen(L, -1);
    ok = n > 0;
    for (i = 1; ok && i <= n; i++) {
      size_t k;
      const char *p;
      if (lua_rawgeti(L, -1, i) != LUA_TSTRING) ok = 0;
      else {
        p = lua_tolstring(L, -1, &k);
        ok = tn_add_ttype(e, p, k) == 0;
      }
      lua_pop(L, 1);
    }
  } else if (t != LUA_TNIL) {
    ok = 0;
  }
  if (!ok)
    luaL_error(L, "bad option 'terminal' (a name or a list of names, "
                  "without NUL, %d bytes in all at most)", TN_TTYPE_MAX);
  if (t != LUA_TNIL) tn_accept(e, TN_US, TN_TTYPE, 1);
  lua_pop(L, 1);
}

static int window_field(lua_State *L, int idx, int i, const char *name) {
  lua_Integer v = 0;
  if (lua_rawgeti(L, idx, i) == LUA_TNIL) {
    lua_pop(L, 1);
    lua_getfield(L, idx, name);
  }
  if (!lua_isinteger(L, -1) || (v = lua_tointeger(L, -1)) < 1 || v > 65535)
    luaL_error(L, "bad option 'window' (%s: integer 1..65535 expected)", name);
  lua_pop(L, 1);
  return (int)v;
}

static void opt_window(lua_State *L, int opts, tn_engine *e) {
  int t = lua_getfield(L, opts, "window");
  if (t == LUA_TTABLE) {
    int idx = lua_gettop(L);
    int cols = window_field(L, idx, 1, "cols");
    int rows = window_field(L, idx, 2, "rows");
    tn_accept(e, TN_US, TN_NAWS, 1);
    tn_set_window(e, cols, rows);
  } else if (t != LUA_TNIL) {
    luaL_error(L, "bad option 'window' ({cols, rows} expected)");
  }
  lua_pop(L, 1);
}

static void opt_env(lua_State *L, int opts, tn_engine *e) {
  int t = lua_getfield(L, opts, "env");
  if (t == LUA_TTABLE) {
    int idx = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
      size_t nl, vl;
      const char *n, *v;
      if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "bad option 'env' (string keys and values expected)");
      n = lua_tolstring(L, -2, &nl);
      v = lua_tolstring(L, -1, &vl);
      if (tn_add_env(e, n, nl, v, vl) != 0)
        luaL_error(L, "bad option 'env' (names and values without NUL, "
                      "%d bytes in all at most)", TN_ENV_MAX);
      lua_pop(L, 1);
    }
    tn_accept(e, TN_US, TN_NEW_ENVIRON, 1);
  } else if (t != LUA_TNIL) {
    luaL_error(L, "bad option 'env' (table expected)");
  }
  lua_pop(L, 1);
}

static void engine_opts(lua_State *L, int opts, tn_engine *e) {
  if (lua_isnoneornil(L, opts)) return;
  opt_terminal(L, opts, e);
  opt_window(L, opts, e);
  opt_env(L, opts, e);
}

static int check_opt_number(lua_State *L, int arg) {
  lua_Integer o;
  if (lua_type(L, arg) == LUA_TSTRING) {
    const char *name = lua_tostring(L, arg);
    int i;
    for (i = 0; i < 256; i++) {
      const char *n = tn_opt_name(i);
      if (n && strcasecmp(n, name) == 0) return i;
    }
    return luaL_argerror(L, arg, lua_pushfstring(L, "unknown option '%s'",
                                                 name));
  }
  o = luaL_checkinteger(L, arg);
  luaL_argcheck(L, o >= 0 && o <= 255, arg, "option 0..255 expected");
  return (int)o;
}

/* ---- I/O ------------------------------------------------------------- */

/* Sends what the engine queued; waits at most until d, as the read (co)
 * or the write (wco) in progress. */
static int flush_out(tsession *s, nl_coop *c, const nl_deadline *d) {
  if (s->io != NULL && s->out.len > 0) {
    size_t k = 0;
    int r = s->io->send(s->ioctx, c, d, nl_buf_head(&s->out), s->out.len, &k);
    nl_buf_consume(&s->out, k);
    return r;
  }
  while (s->out.len > 0) {
    ssize_t k = send(s->sock.fd, nl_buf_head(&s->out), s->out.len,
                     MSG_NOSIGNAL | MSG_DONTWAIT);
    if (k >= 0) {
      nl_buf_consume(&s->out, (size_t)k);
      if (nl_coop_share(c) == NL_PENDING)
        return NL_PENDING;  /* a long write that never waits takes turns */
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      int r = nl_coop_wait(c, s->sock.fd, NL_WAIT_WRITE, d);
      if (r != NL_OK) return r;
      continue;
    }
    return errno;
  }
  return NL_OK;
}

/* Runs the negotiation callback for each queued event, after the engine
 * is done with the chunk.  An error in it is raised after the queue has
 * been cleared, so the session stays consistent. */
static void run_callbacks(tsession *s) {
  lua_State *L = s->L;
  size_t i, n = s->evq.len;
  int err = 0;
  if (n == 0) return;
  s->in_cb = 1;
  for (i = 0; i + 1 < n && !err; i += 2) {
    const unsigned char *e = (const unsigned char *)nl_buf_head(&s->evq);
    lua_getiuservalue(L, 1, 1);
    lua_pushvalue(L, 1);
    lua_pushinteger(L, e[i]);
    lua_pushinteger(L, e[i + 1]);
    err = lua_pcall(L, 3, 0, 0) != LUA_OK;
  }
  s->in_cb = 0;
  s->evq.start = s->evq.len = 0;
  if (err) lua_error(L);
}

/* Hands data bytes to the session log (cli.lua's set_log): dir is one of
 * these (core.TELNET_LOG).  Best effort, as a log should be: an error in
 * it must not break the session, so it is dropped. */
enum { LOG_READ, LOG_WRITTEN, LOG_SECRET };
static void log_data(tsession *s, const char *p, size_t n, int dir) {
  lua_State *L = s->L;
  if (!s->has_log || n == 0) return;
  lua_getiuservalue(L, 1, 2);
  lua_pushlstring(L, p, n);
  lua_pushinteger(L, dir);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) lua_pop(L, 1);
}

/* One chunk from another transport: plain bytes, nothing to answer. */
static int fill_io(tsession *s, const nl_deadline *d, int nowait, char *p) {
  static const nl_deadline now = {0};
  size_t n = 0;
  int r = s->io->recv(s->ioctx, &s->sock.co, nowait ? &now : d, nowait, p,
                      s->rsize, &n);
  if (r == NL_CLOSED) s->eof = 1;
  if (r != NL_OK) return r;
  if (n == s->rsize && s->rsize < CHUNK) s->rsize *= 2;
  else if (n < s->rsize / 4 && s->rsize > RECV_MIN) s->rsize /= 2;
  nl_buf_commit(IN(s), n);
  log_data(s, p, n, LOG_READ);
  return nl_coop_share(&s->sock.co);
}

/* Receives one chunk, decodes it into s->in and answers the peer.
 * NL_OK means bytes arrived (possibly only commands).  With nowait, no
 * waiting: NL_TIMEOUT when nothing is there. */
static int fill(tsession *s, const nl_deadline *d, int nowait) {
  static const nl_deadline now = {0};  /* passed: one look */
  char *p;
  size_t n = 0;
  int r, fresh;
  if (s->eof) return NL_CLOSED;
  p = nl_buf_reserve(IN(s), s->rsize);
  if (p == NULL) return ENOMEM;
  if (s->io != NULL) return fill_io(s, d, nowait, p);
  /* after a write a task waits first: the answer cannot be there yet;
   * cleared before the wait, which may pend and restart the read */
  fresh = s->wrote && !nowait;
  if (!nowait) s->wrote = 0;
  r = nl_recv_wait(s->sock.fd, &s->sock.co, &s->sock.rcvtimeo,
                   nowait ? &now : d, fresh, p, s->rsize, &n);
  if (r == NL_CLOSED || r == ECONNRESET) {
    s->eof = 1;
    return NL_CLOSED;
  }
  if (r != NL_OK) return r;
  /* the next receive size follows the traffic (see RECV_MIN) */
  if (n == s->rsize && s->rsize < CHUNK) s->rsize *= 2;
  else if (n < s->rsize / 4 && s->rsize > RECV_MIN) s->rsize /= 2;
  n = tn_recv(&s->eng, (unsigned char *)p, n);
  nl_buf_commit(IN(s), n);
  log_data(s, p, n, LOG_READ);
  run_callbacks(s);
  /* answers to the peer; a pend leaves the rest queued for later */
  r = flush_out(s, &s->sock.co, d);
  if (r != NL_OK && r != NL_TIMEOUT) return r;
  /* a long read of ready data takes turns */
  return nl_coop_share(&s->sock.co);
}

/* Fills until new data bytes arrive (commands alone do not count). */
static int fill_data(tsession *s, const nl_deadline *d, int nowait) {
  size_t before = IN(s)->len;
  for (;;) {
    int r = fill(s, d, nowait);
    if (r != NL_OK || IN(s)->len > before) return r;
  }
}

static int over_limit(const tsession *s) {
  return IN(s)->len >= s->max_buffer;
}

/* Pushes n buffered bytes and consumes them. */
static void take(lua_State *L, tsession *s, size_t n) {
  lua_pushlstring(L, nl_buf_head(IN(s)), n);
  nl_buf_consume(IN(s), n);
}

static int push_limit(lua_State *L, tsession *s, const char *who) {
  return nl_pushfailcode(L, "limit", "%s %s: more than %zu bytes buffered "
                         "(max_buffer)", who, s->name, s->max_buffer);
}

/* What read_some returns when it stops early: the data so far plus why,
 * or nil, msg, "closed" when there is nothing at EOF. */
static int so_far(lua_State *L, tsession *s, int r, const char *who) {
  if (r == NL_TIMEOUT || (r == NL_CLOSED && IN(s)->len > 0)) {
    take(L, s, IN(s)->len);
    lua_pushstring(L, nl_code(r));
    return 2;
  }
  return nl_pushfail(L, r, "%s %s", who, s->name);
}

/* A read with a target (read_until, expect, read_all) that stopped before
 * it: a failure, so that assert() catches it, as LuaSocket's receive
 * does; nil, "<who>: timeout", "timeout" or nil, msg, "closed", then the
 * data so far (consumed, possibly "") as the fourth value. */
static int missed(lua_State *L, tsession *s, int r, const char *who) {
  if (r == NL_TIMEOUT)
    nl_pushfailcode(L, "timeout", "%s: timeout", who);
  else
    nl_pushfail(L, r, "%s %s", who, s->name);
  if (r != NL_TIMEOUT && r != NL_CLOSED) return 3;
  take(L, s, IN(s)->len);
  return 4;
}

/* Whatever is buffered, or nil, msg, "closed" at EOF with nothing. */
static int buffered(lua_State *L, tsession *s, const char *who) {
  if (IN(s)->len == 0 && s->eof)
    return nl_pushfail(L, NL_CLOSED, "%s %s", who, s->name);
  take(L, s, IN(s)->len);
  return 1;
}

/* ---- reading methods --------------------------------------------------- */

/* s:read_until(expected [, timeout]) -> data |
 *   nil, msg, "timeout"|"closed", partial */
static int t_read_until(lua_State *L) {
  tsession *s = session_op(L, "read_until", 1);
  size_t m;
  const char *want;
  size_t *scanned;
  nl_deadline d;
  if (s == NULL) return 3;
  want = luaL_checklstring(L, 2, &m);
  scanned = &s->sock.co.progress;  /* kept across a wait */
  nl_coop_begin(L, &s->sock.co, NULL, nl_opttimeout(L, 3, s->sock.timeout), &d);
  for (;;) {
    const char *h = nl_buf_head(IN(s)), *hit;
    size_t from = *scanned >= m ? *scanned - m + 1 : 0;
    int r;
    if (IN(s)->len >= m &&
        (hit = memmem(h + from, IN(s)->len - from, want, m)) != NULL) {
      take(L, s, (size_t)(hit - h) + m);
      return 1;
    }
    *scanned = IN(s)->len;
    if (over_limit(s)) return push_limit(L, s, "read_until");
    r = fill_data(s, &d, 0);
    if (r == NL_PENDING) return nl_coop_pend(L, &s->sock.co);
    if (r != NL_OK) return missed(L, s, r, "read_until");
  }
}

/* s:read_all() -> every byte up to EOF (nil, msg, "closed" when there is
 * none) | nil, "read_all: timeout", "timeout", partial */
static int t_read_all(lua_State *L) {
  tsession *s = session_op(L, "read_all", 1);
  nl_deadline d;
  int r;
  if (s == NULL) return 3;
  nl_coop_begin(L, &s->sock.co, NULL, nl_opttimeout(L, 2, s->sock.timeout), &d);
  for (;;) {
    if (over_limit(s)) return push_limit(L, s, "read_all");
    r = fill(s, &d, 0);
    if (r != NL_OK) break;
  }
  if (r == NL_PENDING) return nl_coop_pend(L, &s->sock.co);
  if (r == NL_CLOSED && IN(s)->len > 0) {
    take(L, s, IN(s)->len);
    return 1;
  }
  if (r == NL_CLOSED) return nl_pushfail(L, r, "read_all %s", s->name);
  return missed(L, s, r, "read_all");
}

/* s:read_some() -> at least one byte, unless EOF or timeout */
static int t_read_some(lua_State *L) {
  tsession *s = session_op(L, "read_some", 1);
  nl_deadline d;
  if (s == NULL) return 3;
  nl_coop_begin(L, &s->sock.co, NULL, nl_opttimeout(L, 2, s->sock.timeout), &d);
  if (IN(s)->len == 0) {
    int r = fill_data(s, &d, 0);
    if (r == NL_PENDING) return nl_coop_pend(L, &s->sock.co);
    if (r != NL_OK && IN(s)->len == 0) return so_far(L, s, r, "read_some");
  }
  take(L, s, IN(s)->len);
  return 1;
}

/* s:read_very_eager() -> everything readable without blocking */
static int t_read_very_eager(lua_State *L) {
  tsession *s = session_op(L, "read_very_eager", 1);
  nl_deadline d;
  int r = NL_OK;
  if (s == NULL) return 3;
  nl_coop_begin(L, &s->sock.co, NULL, s->sock.timeout, &d);
  while (!over_limit(s) && (r = fill(s, &d, 1)) == NL_OK) {}
  if (r == NL_PENDING) return nl_coop_pend(L, &s->sock.co);
  if (r != NL_OK && r != NL_TIMEOUT && r != NL_CLOSED && IN(s)->len == 0)
    return nl_pushfail(L, r, "read_very_eager %s", s->name);
  return buffered(L, s, "read_very_eager");
}

/* s:read_eager() -> what is readily there; "" when nothing is */
static int t_read_eager(lua_State *L) {
  tsession *s = session_op(L, "read_eager", 1);
  nl_deadline d;
  if (s == NULL) return 3;
  nl_coop_begin(L, &s->sock.co, NULL, s->sock.timeout, &d);
  if (IN(s)->len == 0) {
    int r = fill_data(s, &d, 1);
    if (r == NL_PENDING) return nl_coop_pend(L, &s->sock.co);
    if (r != NL_OK && r != NL_TIMEOUT && r != NL_CLOSED)
      return nl_pushfail(L, r, "read_eager %s", s->name);
  }
  return buffered(L, s, "read_eager");
}

/* s:read_lazy() / s:read_very_lazy(): no I/O at all.  Bytes are decoded
 * as they arrive, so there is no raw queue: both return what is buffered. */
static int t_read_lazy(lua_State *L) {
  tsession *s = check_reader(L, 1, "read_lazy");
  return buffered(L, s, "read_lazy");
}

static int t_read_very_lazy(lua_State *L) {
  tsession *s = check_reader(L, 1, "read_very_lazy");
  return buffered(L, s, "read_very_lazy");
}

/* s:read_sb_data() -> the last subnegotiation (option byte first), "" */
static int t_read_sb_data(lua_State *L) {
  tsession *s = check_session(L, 1);
  lua_pushlstring(L, nl_buf_head(&s->sbq), s->sbq.len);
  s->sbq.start = s->sbq.len = 0;
  return 1;
}

/* ---- expect ---------------------------------------------------------- */

/* expect's progress with one pattern.  Across waits it is kept on the
 * stack as one integer per pattern (done * 4 + tail + 1), so that a call
 * allocates nothing for it. */
typedef struct xpat {
  size_t done;             /* bytes of the buffer searched so far */
  int tail;                /* nl_pattern_line_tail: only the last line
                            * (-1: not known yet) */
} xpat;

/* The last CR or LF in p[0..n), or NULL. */
static const char *last_eol(const char *p, size_t n) {
  while (n > 0) {
    n--;
    if (p[n] == '\n' || p[n] == '\r') return p + n;
  }
  return NULL;
}

/* The window string of a round of expect (slot: where it is kept on the
 * stack): the patterns of a round mostly search the same bytes, which
 * then become one Lua string, not one per pattern. */
typedef struct xwin {
  int slot, made;
  size_t from, to;
} xwin;

/* Tries pattern i (on the stack at pidx) against the window of the buffer
 * it has not fully searched yet.  Returns the number of results pushed
 * (index, text, captures...) or 0.  Position captures count from the
 * buffer's start, which is the start of the text returned. */
static int try_pattern(lua_State *L, tsession *s, int find, int pidx,
                       int i, xpat *x, xwin *w) {
  size_t plen, from, to, len = IN(s)->len;
  const char *pat = lua_tolstring(L, pidx, &plen);
  const char *head = nl_buf_head(IN(s));
  int anchored = plen > 0 && pat[0] == '^', top, nres;
  if (anchored) {  /* an anchored match must end within max_match */
    if (x->done >= s->max_match || (x->done == len && len > 0)) return 0;
    from = 0;
    to = len < s->max_match ? len : s->max_match;
  } else {
    if (x->done == len && len > 0) return 0;
    from = x->done > s->max_match ? x->done - s->max_match : 0;
    to = len;
    /* a match of a line-tail pattern lies after the last line end;
     * reading the pattern costs about what searching 30 bytes does, so
     * it is read only once the search to skip is longer than that */
    if (x->tail != 0) {
      const char *e = last_eol(head + from, to - from);
      if (e != NULL && (size_t)(e - head) >= from + 32) {
        if (x->tail < 0) x->tail = nl_pattern_line_tail(pat, plen);
        if (x->tail) from = (size_t)(e - head) + 1;
      }
    }
  }
  x->done = to;
  top = lua_gettop(L);
  lua_pushvalue(L, find);
  if (w->made && w->from == from && w->to == to) lua_pushvalue(L, w->slot);
  else {
    lua_pushlstring(L, head + from, to - from);
    lua_copy(L, -1, w->slot);
    w->made = 1;
    w->from = from;
    w->to = to;
  }
  lua_pushvalue(L, pidx);
  lua_call(L, 2, LUA_MULTRET);
  nres = lua_gettop(L) - top;
  if (nres < 2 || lua_isnil(L, top + 1)) {
    lua_settop(L, top);
    return 0;
  }
  {
    size_t end = from + (size_t)lua_tointeger(L, top + 2);
    int k;
    for (k = top + 3; from > 0 && k <= top + nres; k++)  /* position captures */
      if (lua_isinteger(L, k)) {
        lua_pushinteger(L, lua_tointeger(L, k) + (lua_Integer)from);
        lua_replace(L, k);
      }
    lua_pushinteger(L, i);
    take(L, s, end);
    /* results: index, text, captures (after start and end) */
    lua_rotate(L, top + 1, 2);  /* index, text, start, end, caps... */
    lua_remove(L, top + 3);
    lua_remove(L, top + 3);
    k = lua_gettop(L) - top;
    return k;
  }
}

/* s:expect(patterns [, timeout]) -> index, text, captures... |
 *   nil, msg, "timeout"|"closed", text */
static int t_expect(lua_State *L) {
  tsession *s = session_op(L, "expect", 1);
  int n, i, find, pats, prog;
  nl_deadline d;
  if (s == NULL) return 3;
  find = lua_upvalueindex(2);
  pats = 3;
  if (nl_coop_resumes(L, &s->sock.co)) {  /* after a wait: patterns, progress */
    nl_coop_begin(L, &s->sock.co, NULL, 0, &d);  /* kept above slot 2: back */
    n = (lua_gettop(L) - pats + 1) / 2;
    prog = pats + n;
    luaL_checkstack(L, 20, "too many patterns");
    goto search;
  }
  if (lua_type(L, 2) == LUA_TSTRING) {
    lua_createtable(L, 1, 0);
    lua_pushvalue(L, 2);
    lua_rawseti(L, -2, 1);
    lua_replace(L, 2);
  }
  luaL_checktype(L, 2, LUA_TTABLE);
  nl_coop_begin(L, &s->sock.co, NULL, nl_opttimeout(L, 3, s->sock.timeout), &d);
  lua_settop(L, 2);
  n = (int)lua_rawlen(L, 2);
  luaL_argcheck(L, n > 0, 2, "no patterns");
  luaL_checkstack(L, 2 * n + 20, "too many patterns");
  for (i = 1; i <= n; i++) {
    if (lua_rawgeti(L, 2, i) != LUA_TSTRING)
      luaL_argerror(L, 2, lua_pushfstring(L, "pattern %d is not a string",
                                          i));
  }
  if (lua_type(L, find) != LUA_TFUNCTION)
    return luaL_error(L, "expect: string.find was not available at load");
  prog = pats + n;
  for (i = 0; i < n; i++) lua_pushinteger(L, 0);   /* nothing searched, tail unknown */
search:
  {
    for (;;) {
      int r;
      xwin w;
      lua_pushnil(L);   /* the round's window string, dropped before a wait */
      w.slot = lua_gettop(L);
      w.made = 0;
      for (i = 1; i <= n; i++) {
        lua_Integer v = lua_tointeger(L, prog + i - 1);
        xpat x;
        int k;
        x.done = (size_t)(v >> 2);
        x.tail = (int)(v & 3) - 1;
        k = try_pattern(L, s, find, pats + i - 1, i, &x, &w);
        if (k) return k;
        lua_pushinteger(L, (lua_Integer)(x.done << 2) | (lua_Integer)(x.tail + 1));
        lua_replace(L, prog + i - 1);
      }
      lua_settop(L, w.slot - 1);
      if (over_limit(s)) return push_limit(L, s, "expect");
      r = fill_data(s, &d, 0);
      if (r == NL_PENDING) return nl_coop_pend(L, &s->sock.co);
      if (r != NL_OK) return missed(L, s, r, "expect");
    }
  }
}

/* ---- writing --------------------------------------------------------- */

static void dbg_data(tsession *s, const char *what, const char *p, size_t n) {
  char out[200];
  size_t i, k = 0;
  for (i = 0; i < n && k < sizeof out - 8; i++) {
    unsigned char c = (unsigned char)p[i];
    if (c >= 32 && c < 127 && c != '\\') out[k++] = (char)c;
    else k += (size_t)snprintf(out + k, sizeof out - k, "\\x%02x", c);
  }
  out[k] = '\0';
  dbg_line(s->name, "%s '%s'%s", what, out, i < n ? "..." : "");
}

/* s:write(data [, secret]) -> true | nil, msg, code.  IAC is doubled and,
 * unless BINARY is on for us, a bare CR goes out as CR NUL. */
static int t_write(lua_State *L) {
  tsession *s = session_op(L, "write", 0);
  size_t n;
  const char *p;
  int secret = lua_toboolean(L, 3), r;
  char *room;
  nl_deadline d;
  if (s == NULL) return 3;
  p = luaL_checklstring(L, 2, &n);
  /* the escaped bytes join the engine's replies in s->out, in order; a
   * write restarted after a wait only has to flush what is left */
  if (!nl_coop_begin(L, &s->sock.wco, NULL, s->sock.timeout, &d)) {
    if (s->debug) {
      if (secret) dbg_line(s->name, "send '****'");
      else dbg_data(s, "send", p, n);
    }
    log_data(s, p, n, secret ? LOG_SECRET : LOG_WRITTEN);
    if (s->io != NULL) {  /* no Telnet here: the bytes as they are */
      if (nl_buf_append(&s->out, p, n) != NL_OK)
        return nl_pushfail(L, ENOMEM, "write %s", s->name);
    } else if (n > ((size_t)-1) / 2 ||
               (room = nl_buf_reserve(&s->out, 2 * n)) == NULL) {
      return nl_pushfail(L, ENOMEM, "write %s", s->name);
    } else {
      nl_buf_commit(&s->out, tn_escape(&s->eng, (const unsigned char *)p, n,
                                       (unsigned char *)room));
    }
  }
  r = flush_out(s, &s->sock.wco, &d);
  if (r == NL_PENDING) return nl_coop_pend(L, &s->sock.wco);
  if (s->out.cap > 4 * CHUNK && s->out.len == 0) nl_buf_free(&s->out);
  s->wrote = 1;
  if (r != NL_OK) return nl_pushfail(L, r, "write %s", s->name);
  lua_pushboolean(L, 1);
  return 1;
}

/* s:sendall(bytes) -> true: raw bytes, no escaping (what a negotiation
 * callback uses to answer, like telnetlib's sock.sendall). */
static int t_sendall(lua_State *L) {
  tsession *s = session_op(L, "sendall", 0);
  size_t n;
  const char *p;
  nl_deadline d;
  int r;
  if (s == NULL) return 3;
  p = luaL_checklstring(L, 2, &n);
  if (!nl_coop_begin(L, &s->sock.wco, NULL, s->sock.timeout, &d) &&
      nl_buf_append(&s->out, p, n) != NL_OK)
    return nl_pushfail(L, ENOMEM, "sendall %s", s->name);
  r = flush_out(s, &s->sock.wco, &d);
  if (r == NL_PENDING) return nl_coop_pend(L, &s->sock.wco);
  if (r != NL_OK) return nl_pushfail(L, r, "sendall %s", s->name);
  lua_pushboolean(L, 1);
  return 1;
}

/* ---- negotiation ----------------------------------------------------- */

static const char *const state_names[] = {"no", "yes", "wantno", "wantyes"};

/* s:option(opt) -> our state, their state ("no"|"yes"|"wantno"|"wantyes") */
static int t_option(lua_State *L) {
  tsession *s = check_session(L, 1);
  int opt = check_opt_number(L, 2);
  lua_pushstring(L, state_names[tn_state(&s->eng, TN_US, opt)]);
  lua_pushstring(L, state_names[tn_state(&s->eng, TN_HIM, opt)]);
  return 2;
}

static int do_request(lua_State *L, tn_engine *e, int first) {
  static const char *const cmds[] = {"will", "wont", "do", "dont", NULL};
  int c = luaL_checkoption(L, first, NULL, cmds);
  int opt = check_opt_number(L, first + 1);
  int side = c < 2 ? TN_US : TN_HIM, on = (c % 2) == 0;
  if (on) tn_accept(e, side, opt, 1);
  return tn_request(e, side, opt, on) == 0;
}

/* s:request("will"|"wont"|"do"|"dont", opt) -> true if something was sent
 * or queued, false if the option already is (or goes) that way. */
static int t_request(lua_State *L) {
  tsession *s = session_op(L, "request", 0);
  nl_deadline d;
  int sent, r;
  if (s == NULL) return 3;
  if (!nl_coop_begin(L, &s->sock.wco, NULL, s->sock.timeout, &d))
    /* kept in a wait */
    s->sock.wco.progress = (size_t)do_request(L, &s->eng, 2);
  sent = (int)s->sock.wco.progress;
  r = flush_out(s, &s->sock.wco, &d);
  if (r == NL_PENDING) return nl_coop_pend(L, &s->sock.wco);
  if (r != NL_OK) return nl_pushfail(L, r, "request %s", s->name);
  lua_pushboolean(L, sent);
  return 1;
}

/* s:set_window(cols, rows): NAWS now if it is on, else when it goes on */
static int t_set_window(lua_State *L) {
  tsession *s = session_op(L, "set_window", 0);
  lua_Integer c, r;
  nl_deadline d;
  int e;
  if (s == NULL) return 3;
  c = luaL_checkinteger(L, 2);
  r = luaL_checkinteger(L, 3);
  luaL_argcheck(L, c >= 1 && c <= 65535, 2, "columns 1..65535 expected");
  luaL_argcheck(L, r >= 1 && r <= 65535, 3, "rows 1..65535 expected");
  if (s->io != NULL) {  /* the transport's own resize (a pty's) */
    e = s->io->resize(s->ioctx, (int)c, (int)r);
    if (e != NL_OK) return nl_pushfail(L, e, "set_window %s", s->name);
    lua_pushboolean(L, 1);
    return 1;
  }
  tn_accept(&s->eng, TN_US, TN_NAWS, 1);
  tn_set_window(&s->eng, (int)c, (int)r);
  nl_coop_begin(L, &s->sock.wco, NULL, s->sock.timeout, &d);
  e = flush_out(s, &s->sock.wco, &d);
  if (e == NL_PENDING) return nl_coop_pend(L, &s->sock.wco);
  if (e != NL_OK) return nl_pushfail(L, e, "set_window %s", s->name);
  lua_pushboolean(L, tn_state(&s->eng, TN_US, TN_NAWS) == TN_YES);
  return 1;
}

/* s:set_option_negotiation_callback(fn | nil) */
static int t_set_callback(lua_State *L) {
  tsession *s = check_session(L, 1);
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_settop(L, 2);
  lua_setiuservalue(L, 1, 1);
  s->has_cb = !lua_isnil(L, 2) ? 1 : 0;
  s->eng.manual = s->has_cb;
  return 0;
}

/* s:_set_log(fn | nil): fn(data, dir) gets every data byte read and
 * written (telnet.lua's set_log builds it) */
static int t_set_log(lua_State *L) {
  tsession *s = check_session(L, 1);
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_settop(L, 2);
  lua_setiuservalue(L, 1, 2);
  s->has_log = !lua_isnil(L, 2);
  return 0;
}

/* ---- small things ---------------------------------------------------- */

static int t_set_debuglevel(lua_State *L) {
  tsession *s = check_session(L, 1);
  lua_Integer n = luaL_checkinteger(L, 2);
  s->debug = n > 0 ? (n > 100 ? 100 : (int)n) : 0;
  return 0;
}

static int t_get_debuglevel(lua_State *L) {
  tsession *s = check_session(L, 1);
  lua_pushinteger(L, s->debug);
  return 1;
}

static int t_name(lua_State *L) {
  tsession *s = raw_session(L, 1);
  lua_pushstring(L, s->name);
  return 1;
}

/* s:_memory() -> bytes of C memory the session holds: its struct, its
 * buffers and what its engine allocated (for the memory specs and for
 * scripts sizing a fleet). */
static int t_memory(lua_State *L) {
  tsession *s = raw_session(L, 1);
  size_t n = sizeof *s + IN(s)->cap + s->out.cap + s->sbq.cap + s->evq.cap +
             s->eng.sb_cap + s->eng.ttype_len + s->eng.env_len;
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

static int t_get_socket(lua_State *L) {
  check_session(L, 1);
  lua_settop(L, 1);  /* the session: it has fileno, sendall, close */
  return 1;
}

static int t_eof(lua_State *L) {
  tsession *s = check_session(L, 1);
  lua_pushboolean(L, s->eof && IN(s)->len == 0);
  return 1;
}

/* What close and __gc (sock.c) free once the descriptor is closed. */
static void telnet_release(nl_sock *sock) {
  tsession *s = (tsession *)sock;
  if (s->io != NULL) {  /* collected without close: the stream ends too */
    s->io->close(NULL, s->ioctx);
    s->io = NULL;
  }
  nl_buf_free(&s->out);
  nl_buf_free(&s->sbq);
  nl_buf_free(&s->evq);
  tn_free(&s->eng);
}

/* __tostring shows the peer: netlua.telnet: 0x... (10.0.0.1:23) */
static const char *telnet_label(const nl_sock *sock) {
  return ((const tsession *)sock)->name;
}

/* close() and __close: sock.c's, but never from inside the callback,
 * which runs in the middle of a read */
static int t_close(lua_State *L) {
  tsession *s = raw_session(L, 1);
  if (s->in_cb)
    return luaL_error(L, "close: not from inside the callback");
  if (s->io != NULL && s->sock.fd >= 0) {
    s->io->close(L, s->ioctx);
    s->io = NULL;
  }
  return nl_sock_close(L);
}

/* ---- interact: stdin <-> session -------------------------------------- */

/* Waits for either descriptor (interact only: everything else uses
 * nl_wait).  Returns a bit set: 1 = a readable, 2 = b readable. */
static int wait_two(int a, int b) {
  struct pollfd p[2];
  int r;
  p[0].fd = a;
  p[1].fd = b;
  p[0].events = p[1].events = POLLIN;
  for (;;) {
    p[0].revents = p[1].revents = 0;
    r = poll(p, 2, -1);
    if (r > 0) return (p[0].revents ? 1 : 0) | (p[1].revents ? 2 : 0);
    if (r < 0 && errno != EINTR) return -1;
  }
}

static int write_fd(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t k = write(fd, p, n);
    if (k < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    p += k;
    n -= (size_t)k;
  }
  return NL_OK;
}

/* core.fd_read(fd, max) -> bytes ("" at EOF) | nil, msg, code and
 * core.fd_write(fd, bytes) -> true | nil, msg, code: interact's plain
 * descriptor I/O, for its version that runs in a task (telnet.lua). */
static int l_fd_read(lua_State *L) {
  int fd = (int)luaL_checkinteger(L, 1);
  lua_Integer max = luaL_checkinteger(L, 2);
  luaL_Buffer b;
  ssize_t n;
  luaL_argcheck(L, max >= 1 && max <= 65536, 2, "size out of range 1..65536");
  do n = read(fd, luaL_buffinitsize(L, &b, (size_t)max), (size_t)max);
  while (n < 0 && errno == EINTR);
  if (n < 0) return nl_pushfail(L, errno, "read fd %d", fd);
  luaL_pushresultsize(&b, (size_t)n);
  return 1;
}

static int l_fd_write(lua_State *L) {
  int fd = (int)luaL_checkinteger(L, 1), r;
  size_t n;
  const char *p = luaL_checklstring(L, 2, &n);
  r = write_fd(fd, p, n);
  if (r != NL_OK) return nl_pushfail(L, r, "write fd %d", fd);
  lua_pushboolean(L, 1);
  return 1;
}

/* s:interact([in_fd [, out_fd]]) -> true when either side reached EOF */
static int t_interact(lua_State *L) {
  tsession *s = check_reader(L, 1, "interact");
  int in = (int)luaL_optinteger(L, 2, 0), out = (int)luaL_optinteger(L, 3, 1);
  nl_deadline none;
  char buf[4096];
  nl_deadline_start(&none, -1);
  luaL_argcheck(L, in >= 0, 2, "descriptor expected");
  luaL_argcheck(L, out >= 0, 3, "descriptor expected");
  /* a bridge that blocks: no earlier method may be restarted from here */
  nl_coop_end(&s->sock.co);
  nl_coop_end(&s->sock.wco);
  for (;;) {
    int ready, r;
    if (IN(s)->len > 0) {
      r = write_fd(out, nl_buf_head(IN(s)), IN(s)->len);
      nl_buf_consume(IN(s), IN(s)->len);
      if (r != NL_OK) return nl_pushfail(L, r, "interact: output");
    }
    if (s->eof) {
      write_fd(out, BYE, sizeof BYE - 1);
      break;
    }
    ready = wait_two(s->sock.fd, in);
    if (ready < 0) return nl_pushfail(L, errno, "interact");
    if (ready & 1) {
      while ((r = fill(s, &none, 1)) == NL_OK && !over_limit(s)) {}
      if (r != NL_OK && r != NL_TIMEOUT && r != NL_CLOSED)
        return nl_pushfail(L, r, "interact %s", s->name);
    }
    if (ready & 2) {
      ssize_t n = read(in, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  /* EOF (or error) on our side ends it */
      lua_pushcfunction(L, t_write);
      lua_pushvalue(L, 1);
      lua_pushlstring(L, buf, (size_t)n);
      lua_call(L, 2, 3);
      if (lua_isnil(L, -3)) return 3;
      lua_pop(L, 3);
    }
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* ---- creating a session ---------------------------------------------- */

/* What every session starts with; the options at opts (0: none) that
 * both kinds take.  Returns the timeout (dflt unless opts has one). */
static double session_init(lua_State *L, tsession *s, int opts, double dflt) {
  nl_buf_init(&s->out);
  nl_buf_init(&s->sbq);
  nl_buf_init(&s->evq);
  s->max_buffer = DEFAULT_MAX_BUFFER;
  s->max_match = DEFAULT_MAX_MATCH;
  s->rsize = RECV_MIN;
  tn_init(&s->eng, s_send, s_event, s);
  s->L = L;
  if (opts == 0 || !lua_istable(L, opts)) return dflt;
  s->max_buffer = opt_size(L, opts, "max_buffer", s->max_buffer);
  s->max_match = opt_size(L, opts, "max_match", s->max_match);
  switch (lua_getfield(L, opts, "debug")) {
    case LUA_TNIL: break;
    case LUA_TBOOLEAN: s->debug = lua_toboolean(L, -1); break;
    case LUA_TNUMBER: s->debug = (int)lua_tointeger(L, -1); break;
    default: luaL_error(L, "bad option 'debug' (number expected)");
  }
  lua_pop(L, 1);
  return nl_opttimeout_field(L, opts, dflt);
}

/* core.telnet_wrap(tcpsock, opts) -> session.  Takes over the socket's
 * descriptor: the TCP object is closed afterwards. */
static int t_wrap(lua_State *L) {
  nl_sock *sock = nl_sock_check(L, 1, TCP);
  double timeout;
  tsession *s;
  nl_addr a;
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
  s = (tsession *)nl_sock_new(L, &telnet_kind, -1, sock->family,
                              SOCK_STREAM);
  timeout = session_init(L, s, lua_istable(L, 2) ? 2 : 0, sock->timeout);
  if (lua_istable(L, 2)) engine_opts(L, 2, &s->eng);
  a.len = sizeof a.ss;
  if (getpeername(sock->fd, (struct sockaddr *)&a.ss, &a.len) == 0)
    nl_addr_format((struct sockaddr *)&a.ss, s->name, sizeof s->name);
  else
    snprintf(s->name, sizeof s->name, "?");
  /* reads outside a task block in recv(), as tcp.connect leaves it: see
   * nl_recv_wait; every other send and recv here says MSG_DONTWAIT */
  if (!sock->blocking) nl_sock_blocking(sock);
  /* the session is the socket now, with the bytes it read already */
  nl_sock_move(&s->sock, sock);
  s->sock.timeout = timeout;
  if (IN(s)->len > 0) {
    size_t n = tn_recv(&s->eng, (unsigned char *)nl_buf_head(IN(s)),
                       IN(s)->len);
    IN(s)->len = n;
  }
  return 1;
}

static const nl_sock_kind term_kind;

void nl_term_new(lua_State *L, const nl_term_io *io, void *ctx, int fd,
                 int owner, int opts, double timeout, const char *name) {
  tsession *s;
  owner = lua_absindex(L, owner);
  if (opts != 0) opts = lua_absindex(L, opts);
  s = (tsession *)nl_sock_new(L, &term_kind, -1, AF_UNSPEC, SOCK_STREAM);
  s->sock.timeout = session_init(L, s, opts, timeout);
  snprintf(s->name, sizeof s->name, "%s", name);
  s->io = io;
  s->ioctx = ctx;
  s->sock.fd = fd;
  s->sock.borrowed = 1;
  lua_pushvalue(L, owner);
  lua_setiuservalue(L, -2, 3);
}

/* ---- the bare engine object ------------------------------------------ */

typedef struct tengine {
  nl_buf replies;
  nl_buf events;       /* serialized tn_event records + data */
  tn_engine eng;
} tengine;

typedef struct evrec {
  int kind, cmd, opt, on;
  size_t len;
} evrec;

static void e_send(void *ud, const unsigned char *p, size_t n) {
  tengine *e = (tengine *)ud;
  nl_buf_append(&e->replies, (const char *)p, n);
}

static void e_event(void *ud, const tn_event *ev) {
  tengine *e = (tengine *)ud;
  evrec r;
  r.kind = ev->kind;
  r.cmd = ev->cmd;
  r.opt = ev->opt;
  r.on = ev->on;
  r.len = ev->len;  /* data bytes for SB, a size for overflow/abort */
  nl_buf_append(&e->events, (const char *)&r, sizeof r);
  if (ev->kind == TN_EV_SB && r.len)
    nl_buf_append(&e->events, (const char *)ev->data, r.len);
}

static tengine *check_engine(lua_State *L) {
  return (tengine *)luaL_checkudata(L, 1, ENGINE);
}

static const char *const ev_names[] = {
  "", "command", "negotiation", "sent", "state", "subnegotiation",
  "overflow", "aborted", "error"};

/* Builds the Lua list of events recorded during one call. */
static void push_events(lua_State *L, tengine *e) {
  size_t i = 0;
  int k = 0;
  lua_newtable(L);
  while (i + sizeof(evrec) <= e->events.len) {
    evrec r;
    memcpy(&r, nl_buf_head(&e->events) + i, sizeof r);
    i += sizeof r;
    lua_createtable(L, 0, 5);
    lua_pushstring(L, ev_names[r.kind]);
    lua_setfield(L, -2, "kind");
    if (r.kind == TN_EV_STATE) {
      lua_pushstring(L, r.cmd == TN_US ? "us" : "him");
      lua_setfield(L, -2, "side");
      lua_pushboolean(L, r.on);
      lua_setfield(L, -2, "on");
    } else if (r.kind != TN_EV_SB && r.kind != TN_EV_SB_OVERFLOW) {
      lua_pushinteger(L, r.cmd);
      lua_setfield(L, -2, "cmd");
    }
    if (r.kind != TN_EV_CMD) {
      lua_pushinteger(L, r.opt);
      lua_setfield(L, -2, "opt");
    }
    if (r.kind == TN_EV_SB) {
      lua_pushlstring(L, nl_buf_head(&e->events) + i, r.len);
      lua_setfield(L, -2, "data");
      i += r.len;
    } else if (r.kind == TN_EV_SB_OVERFLOW || r.kind == TN_EV_SB_ABORT) {
      lua_pushinteger(L, (lua_Integer)r.len);
      lua_setfield(L, -2, "len");
    }
    lua_rawseti(L, -2, ++k);
  }
  e->events.start = e->events.len = 0;
}

/* telnet.engine([opts]) -> a bare protocol engine (no socket) */
static int e_new(lua_State *L) {
  tengine *e;
  if (!lua_isnoneornil(L, 1)) luaL_checktype(L, 1, LUA_TTABLE);
  e = (tengine *)nl_class_new(L, ENGINE, sizeof *e, 0);
  nl_buf_init(&e->replies);
  nl_buf_init(&e->events);
  tn_init(&e->eng, e_send, e_event, e);
  engine_opts(L, 1, &e->eng);
  if (lua_istable(L, 1)) {
    lua_getfield(L, 1, "manual");
    e->eng.manual = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  return 1;
}

/* Pushes the replies and events gathered by the last engine call. */
static int e_results(lua_State *L, tengine *e) {
  lua_pushlstring(L, nl_buf_head(&e->replies), e->replies.len);
  e->replies.start = e->replies.len = 0;
  push_events(L, e);
  return 2;
}

/* engine:feed(bytes) -> data, replies, events */
static int e_feed(lua_State *L) {
  tengine *e = check_engine(L);
  size_t n, k;
  const char *p = luaL_checklstring(L, 2, &n);
  char *copy = (char *)lua_newuserdatauv(L, n ? n : 1, 0);
  memcpy(copy, p, n);
  k = tn_recv(&e->eng, (unsigned char *)copy, n);
  lua_pushlstring(L, copy, k);
  return 1 + e_results(L, e);
}

/* engine:escape(data) -> bytes to send */
static int e_escape(lua_State *L) {
  tengine *e = check_engine(L);
  size_t n;
  const char *p = luaL_checklstring(L, 2, &n);
  luaL_Buffer b;
  char *out;
  luaL_argcheck(L, n < ((size_t)-1) / 2, 2, "too long");
  out = luaL_buffinitsize(L, &b, 2 * n + 1);
  luaL_pushresultsize(&b, tn_escape(&e->eng, (const unsigned char *)p, n,
                                    (unsigned char *)out));
  return 1;
}

/* engine:request(cmd, opt) -> sent, replies, events */
static int e_request(lua_State *L) {
  tengine *e = check_engine(L);
  lua_pushboolean(L, do_request(L, &e->eng, 2));
  return 1 + e_results(L, e);
}

/* engine:set_window(cols, rows) -> replies, events */
static int e_set_window(lua_State *L) {
  tengine *e = check_engine(L);
  lua_Integer c = luaL_checkinteger(L, 2), r = luaL_checkinteger(L, 3);
  luaL_argcheck(L, c >= 1 && c <= 65535, 2, "columns 1..65535 expected");
  luaL_argcheck(L, r >= 1 && r <= 65535, 3, "rows 1..65535 expected");
  tn_accept(&e->eng, TN_US, TN_NAWS, 1);
  tn_set_window(&e->eng, (int)c, (int)r);
  return e_results(L, e);
}

/* engine:option(opt) -> our state, their state */
static int e_option(lua_State *L) {
  tengine *e = check_engine(L);
  int opt = check_opt_number(L, 2);
  lua_pushstring(L, state_names[tn_state(&e->eng, TN_US, opt)]);
  lua_pushstring(L, state_names[tn_state(&e->eng, TN_HIM, opt)]);
  return 2;
}

static int e_gc(lua_State *L) {
  tengine *e = (tengine *)luaL_checkudata(L, 1, ENGINE);
  nl_buf_free(&e->replies);
  nl_buf_free(&e->events);
  tn_free(&e->eng);
  return 0;
}

static int e_tostring(lua_State *L) {
  lua_pushfstring(L, ENGINE ": %p", lua_touserdata(L, 1));
  return 1;
}

/* The protocol's numbers as the engine knows them, for telnet.lua's
 * telnetlib constants: core.TELNET_CMDS (IAC = 255, ...) and
 * core.TELNET_OPTS (TTYPE = 24, NEW_ENVIRON = 39, ...); the session log's
 * directions, core.TELNET_LOG; interact's last line, core.TELNET_BYE. */
static void push_constants(lua_State *L) {
  int i;
  lua_newtable(L);
  for (i = 0; i < 256; i++) {
    const char *n = tn_cmd_name(i);
    if (n == NULL) continue;
    lua_pushinteger(L, i);
    lua_setfield(L, -2, n);
  }
  lua_setfield(L, -2, "TELNET_CMDS");
  lua_newtable(L);
  for (i = 0; i < 256; i++) {
    const char *n = tn_opt_name(i);
    char key[32];
    size_t k;
    if (n == NULL) continue;
    for (k = 0; n[k] != '\0' && k < sizeof key - 1; k++)
      key[k] = n[k] == '-' ? '_' : n[k];  /* NEW-ENVIRON: NEW_ENVIRON */
    key[k] = '\0';
    lua_pushinteger(L, i);
    lua_setfield(L, -2, key);
  }
  lua_setfield(L, -2, "TELNET_OPTS");
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, LOG_READ);
  lua_setfield(L, -2, "read");
  lua_pushinteger(L, LOG_WRITTEN);
  lua_setfield(L, -2, "written");
  lua_pushinteger(L, LOG_SECRET);
  lua_setfield(L, -2, "secret");
  lua_setfield(L, -2, "TELNET_LOG");
  lua_pushliteral(L, BYE);
  lua_setfield(L, -2, "TELNET_BYE");
}

static const luaL_Reg session_methods[] = {
  {"read_until", t_read_until}, {"read_all", t_read_all},
  {"read_some", t_read_some}, {"read_very_eager", t_read_very_eager},
  {"read_eager", t_read_eager}, {"read_lazy", t_read_lazy},
  {"read_very_lazy", t_read_very_lazy}, {"read_sb_data", t_read_sb_data},
  {"expect", NULL}, {"write", t_write}, {"sendall", t_sendall},
  {"option", t_option}, {"request", t_request},
  {"set_window", t_set_window},
  {"set_option_negotiation_callback", t_set_callback},
  {"_set_log", t_set_log},
  {"set_debuglevel", t_set_debuglevel},
  {"get_debuglevel", t_get_debuglevel}, {"_name", t_name},
  {"_memory", t_memory}, {"get_socket", t_get_socket},
  {"eof", t_eof}, {"interact", t_interact}, {NULL, NULL}};

/* user values: 1 the negotiation callback, 2 the session log */
static const nl_sock_kind telnet_kind = {
  SESSION, "telnet session", sizeof(tsession), 2, 0, session_methods,
  t_close, telnet_release, telnet_label};

/* A session over another transport (nl_term_new): the same methods but
 * Telnet's own (options, negotiation, subnegotiation data). */
static const luaL_Reg term_methods[] = {
  {"read_until", t_read_until}, {"read_all", t_read_all},
  {"read_some", t_read_some}, {"read_very_eager", t_read_very_eager},
  {"read_eager", t_read_eager}, {"read_lazy", t_read_lazy},
  {"read_very_lazy", t_read_very_lazy},
  {"expect", NULL}, {"write", t_write}, {"sendall", t_sendall},
  {"set_window", t_set_window}, {"_set_log", t_set_log},
  {"set_debuglevel", t_set_debuglevel},
  {"get_debuglevel", t_get_debuglevel}, {"_name", t_name},
  {"_memory", t_memory}, {"eof", t_eof}, {"interact", t_interact},
  {NULL, NULL}};

/* user values: 1 unused, 2 the session log, 3 what the transport lives in */
static const nl_sock_kind term_kind = {
  NL_SSH_SHELL, "ssh shell", sizeof(tsession), 3, 0, term_methods,
  t_close, telnet_release, telnet_label};

/* expect calls string.find, captured now (a script may replace the
 * global later; the session keeps working) */
static void set_expect(lua_State *L, const char *kind) {
  nl_class_methods(L, kind);
  lua_getglobal(L, "string");
  if (lua_istable(L, -1)) lua_getfield(L, -1, "find");
  else lua_pushnil(L);
  lua_remove(L, -2);
  luaL_getmetatable(L, kind);  /* upvalue 1 of every method: the kind's */
  lua_insert(L, -2);
  lua_pushcclosure(L, t_expect, 2);
  lua_setfield(L, -2, "expect");
  lua_pop(L, 1);
}

void nl_open_telnet(lua_State *L) {
  static const luaL_Reg emethods[] = {
    {"feed", e_feed}, {"escape", e_escape}, {"request", e_request},
    {"set_window", e_set_window}, {"option", e_option}, {NULL, NULL}};
  static const nl_class engine_class = {
    ENGINE, emethods, NULL, e_gc, NULL, e_tostring, 0};
  static const luaL_Reg f[] = {
    {"telnet_wrap", t_wrap}, {"telnet_engine", e_new},
    {"fd_read", l_fd_read}, {"fd_write", l_fd_write}, {NULL, NULL}};
  nl_sock_class(L, &telnet_kind);
  nl_sock_class(L, &term_kind);
  set_expect(L, SESSION);
  set_expect(L, NL_SSH_SHELL);
  nl_class_make(L, &engine_class, 0);
  luaL_setfuncs(L, f, 0);
  push_constants(L);
}
