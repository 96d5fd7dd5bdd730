/*
 * ssh_chan.c - the channels of an SSH connection: opening one, its
 * requests (exec, pty, shell, subsystem, env), reading its two streams,
 * writing, EOF and the exit status; and the transport that puts a
 * Telnet-style session object (telnet.c, nl_term_new) over a shell
 * channel, so a shell has every read, expect and device helper a Telnet
 * session has.
 *
 * Each step waits on the connection's socket (ssh.c: nl_ssh_wait) and is
 * restarted after the wait; the read side (co) and the write side (wco)
 * of a channel can each have one task waiting.  exec and the rest of the
 * policy are Lua's (netlua/ssh.lua).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ssh.h"

#define READ_MAX (1u << 20)  /* the most one _read returns per stream */
#define NL_AGAIN (-100)      /* after(): waited, call libssh again */

/* ---- callbacks from libssh (no Lua in here) --------------------------- */

static void on_status(ssh_session ss, ssh_channel c, int status, void *ud) {
  nl_sshchan *ch = (nl_sshchan *)ud;
  (void)ss;
  (void)c;
  ch->status = status;
  ch->has_status = 1;
}

static void on_signal(ssh_session ss, ssh_channel c, const char *sig,
                      int core, const char *msg, const char *lang, void *ud) {
  nl_sshchan *ch = (nl_sshchan *)ud;
  (void)ss;
  (void)c;
  (void)core;
  (void)msg;
  (void)lang;
  snprintf(ch->signal, sizeof ch->signal, "%s", sig != NULL ? sig : "?");
}

/* ---- the channel object ---------------------------------------------- */

static void chan_free(nl_sshchan *ch) {
  nl_buf_free(&ch->pend[0]);
  nl_buf_free(&ch->pend[1]);
  if (ch->ch != NULL && ch->conn != NULL) {
    /* libssh keeps a channel closed before the server's close came, and
     * would call these callbacks on its exit-status later: they point
     * into this object, which the collector frees */
    ssh_remove_channel_callbacks(ch->ch, &ch->cb);
    if (ssh_channel_is_open(ch->ch)) ssh_channel_close(ch->ch);
    /* libssh keeps it until the server's close arrives */
    ssh_channel_free(ch->ch);
  }
  ch->ch = NULL;
  nl_ssh_unlink(ch);
}

/* The channel object for a step that may restart after a wait on c
 * (its co or wco): NULL with nil, msg, "closed" pushed when it (or its
 * connection) was closed meanwhile or before. */
static nl_sshchan *chan_op(lua_State *L, const char *who, int write) {
  nl_sshchan *ch = (nl_sshchan *)nl_class_self(L, NL_SSH_CHANNEL);
  nl_coop *c = write ? &ch->wco : &ch->co;
  if (nl_coop_closed(L, c) || ch->ch == NULL || ch->conn == NULL) {
    nl_pushfail(L, NL_CLOSED, "ssh %s", who);
    return NULL;
  }
  if (ch->shell)
    luaL_error(L, "%s: this channel belongs to a shell session", who);
  return ch;
}

/* What a step does after a libssh call answered rc (packets having come
 * in meanwhile when moved): NL_OK when it is done, NL_AGAIN to call it
 * again (at once when moved, else after a wait), else why to stop. */
static int after(nl_sshchan *ch, nl_coop *c, const nl_deadline *d, int rc,
                 int moved) {
  int r;
  if (rc == SSH_OK) return NL_OK;
  if (ch->conn == NULL) return NL_CLOSED;
  if (rc != SSH_AGAIN) return nl_ssh_errno(ch->conn);
  if (moved) return NL_AGAIN;
  r = nl_ssh_wait(ch->conn, c, d);
  return r == NL_OK ? NL_AGAIN : r;
}

static int fail(lua_State *L, nl_sshchan *ch, nl_coop *c, int r,
                const char *what) {
  nl_coop_end(c);
  if (ch->conn == NULL) return nl_pushfail(L, NL_CLOSED, "ssh %s", what);
  if (r == NL_TIMEOUT)
    return nl_pushfailcode(L, "timeout", "ssh %s %s: timed out", what,
                           ch->conn->name);
  return nl_ssh_fail(L, ch->conn, r, what);
}

/* c:_channel([timeout]) -> channel | nil, msg, code: a new session
 * channel, open. */
static int c_channel(lua_State *L) {
  nl_sshchan *ch = (nl_sshchan *)nl_coop_peek(L, NL_SSH_CHANNEL);
  nl_deadline d;
  if (ch != NULL && nl_coop_resumes(L, &ch->co)) {
    if (nl_coop_closed(L, &ch->co))
      return nl_pushfail(L, NL_CLOSED, "ssh channel");
    nl_coop_begin(L, &ch->co, NULL, 0, &d);  /* the channel back on top */
  } else {
    nl_ssh *s = nl_ssh_check(L, 1);
    double timeout = nl_opttimeout(L, 2, s->timeout);
    lua_settop(L, 2);
    ch = (nl_sshchan *)nl_class_new(L, NL_SSH_CHANNEL, sizeof *ch, 1);
    lua_pushvalue(L, 1);  /* the connection lives as long as its channels */
    lua_setiuservalue(L, -2, 1);
    ch->ch = ssh_channel_new(s->s);
    if (ch->ch == NULL) return nl_pushfail(L, ENOMEM, "ssh channel");
    nl_ssh_link(s, ch);
    ssh_callbacks_init(&ch->cb);
    ch->cb.userdata = ch;
    ch->cb.channel_exit_status_function = on_status;
    ch->cb.channel_exit_signal_function = on_signal;
    ssh_set_channel_callbacks(ch->ch, &ch->cb);
    nl_coop_begin(L, &ch->co, NULL, timeout, &d);
  }
  for (;;) {
    uint64_t m;
    int r;
    if (ch->ch == NULL || ch->conn == NULL)
      return fail(L, ch, &ch->co, NL_CLOSED, "channel");
    m = nl_ssh_mark(ch->conn);
    r = ssh_channel_open_session(ch->ch);
    /* opened and closed again by the server at once (dropbear does when
     * a late exit ends a reused slot): "closed", and the caller may open
     * another; libssh leaves no error text for it */
    if (r == SSH_ERROR && ssh_channel_is_closed(ch->ch) &&
        ssh_is_connected(ch->conn->s) &&
        ssh_get_error_code(ch->conn->s) != SSH_REQUEST_DENIED)
      return fail(L, ch, &ch->co, NL_CLOSED, "channel");
    r = after(ch, &ch->co, &d, r, nl_ssh_moved(ch->conn, &ch->co, m));
    if (r == NL_PENDING) return nl_coop_pend(L, &ch->co);
    if (r == NL_OK) break;
    if (r != NL_AGAIN) return fail(L, ch, &ch->co, r, "channel");
  }
  nl_coop_end(&ch->co);
  return 1;  /* the channel, on top */
}

/* One try of request what (arguments from slot 3 on). */
static int request(lua_State *L, nl_sshchan *ch, const char *what) {
  if (strcmp(what, "exec") == 0)
    return ssh_channel_request_exec(ch->ch, luaL_checkstring(L, 3));
  if (strcmp(what, "pty") == 0)
    return ssh_channel_request_pty_size(ch->ch, luaL_checkstring(L, 3),
                                        (int)luaL_checkinteger(L, 4),
                                        (int)luaL_checkinteger(L, 5));
  if (strcmp(what, "shell") == 0) return ssh_channel_request_shell(ch->ch);
  if (strcmp(what, "subsystem") == 0)
    return ssh_channel_request_subsystem(ch->ch, luaL_checkstring(L, 3));
  if (strcmp(what, "env") == 0)
    return ssh_channel_request_env(ch->ch, luaL_checkstring(L, 3),
                                   luaL_checkstring(L, 4));
  if (strcmp(what, "window") == 0)
    return ssh_channel_change_pty_size(ch->ch, (int)luaL_checkinteger(L, 3),
                                       (int)luaL_checkinteger(L, 4));
  if (strcmp(what, "signal") == 0)
    return ssh_channel_request_send_signal(ch->ch, luaL_checkstring(L, 3));
  return luaL_argerror(L, 2, "unknown request");
}

/* ch:_request(what, ...) -> true | nil, msg, code ("denied" when the
 * server refused it).  what: "exec" cmd, "pty" term cols rows, "shell",
 * "subsystem" name, "env" name value, "window" cols rows, "signal" name.
 * Waits up to the connection's timeout. */
static int ch_request(lua_State *L) {
  nl_sshchan *ch = chan_op(L, "request", 0);
  const char *what;
  nl_deadline d;
  if (ch == NULL) return 3;
  what = luaL_checkstring(L, 2);
  nl_coop_begin(L, &ch->co, NULL, ch->conn->timeout, &d);
  what = lua_tostring(L, 2);  /* after a restart: the stack kept */
  for (;;) {
    uint64_t m = nl_ssh_mark(ch->conn);
    int r = request(L, ch, what);
    /* a channel the server closed meanwhile never answers: libssh 0.10
     * keeps the request pending until the deadline (dropbear closes a
     * fresh channel whose number a session that just ended had, when
     * that session's process exits late) */
    if (r == SSH_AGAIN && ssh_channel_is_closed(ch->ch))
      return fail(L, ch, &ch->co, NL_CLOSED, what);
    r = after(ch, &ch->co, &d, r, nl_ssh_moved(ch->conn, &ch->co, m));
    if (r == NL_PENDING) return nl_coop_pend(L, &ch->co);
    if (r == NL_OK) break;
    if (r != NL_AGAIN) return fail(L, ch, &ch->co, r, what);
  }
  nl_coop_end(&ch->co);
  lua_pushboolean(L, 1);
  return 1;
}

/* Reads what stream (0 stdout, 1 stderr) holds, at most READ_MAX, and
 * pushes it ("" when nothing). */
static void push_stream(lua_State *L, nl_sshchan *ch, int avail, int err) {
  luaL_Buffer b;
  char *p;
  int k;
  if (avail <= 0) {
    lua_pushliteral(L, "");
    return;
  }
  if ((unsigned)avail > READ_MAX) avail = (int)READ_MAX;
  p = luaL_buffinitsize(L, &b, (size_t)avail);
  k = ssh_channel_read_nonblocking(ch->ch, p, (uint32_t)avail, err);
  luaL_pushresultsize(&b, k > 0 ? (size_t)k : 0);
}

/* ch:_read([timeout]) -> stdout, stderr (at least one not empty) |
 * nil, msg, "closed" once both are at their end | nil, msg, code */
static int ch_read(lua_State *L) {
  nl_sshchan *ch = chan_op(L, "read", 0);
  nl_deadline d;
  if (ch == NULL) return 3;
  nl_coop_begin(L, &ch->co, NULL, nl_opttimeout(L, 2, ch->conn->timeout), &d);
  if (ch->pend[0].len > 0 || ch->pend[1].len > 0) {
    int i;
    nl_coop_end(&ch->co);
    for (i = 0; i < 2; i++) {
      lua_pushlstring(L, nl_buf_head(&ch->pend[i]), ch->pend[i].len);
      nl_buf_free(&ch->pend[i]);
    }
    return 2;
  }
  for (;;) {
    uint64_t m = nl_ssh_mark(ch->conn);
    int a, b, r, moved;
    a = ssh_channel_poll(ch->ch, 0);
    b = ssh_channel_poll(ch->ch, 1);
    moved = nl_ssh_moved(ch->conn, &ch->co, m);
    if (a == SSH_ERROR || b == SSH_ERROR)
      return fail(L, ch, &ch->co, nl_ssh_errno(ch->conn), "read");
    if (a > 0 || b > 0) {
      nl_coop_end(&ch->co);
      push_stream(L, ch, a, 0);
      push_stream(L, ch, b, 1);
      return 2;
    }
    if ((a == SSH_EOF && b == SSH_EOF) || ssh_channel_is_closed(ch->ch)) {
      nl_coop_end(&ch->co);
      return nl_pushfail(L, NL_CLOSED, "ssh read %s", ch->conn->name);
    }
    /* the second look may have filed data for the first stream */
    if (moved) continue;
    r = nl_ssh_wait(ch->conn, &ch->co, &d);
    if (r == NL_PENDING) return nl_coop_pend(L, &ch->co);
    if (r != NL_OK) return fail(L, ch, &ch->co, r, "read");
  }
}

/* Takes in what the channel holds (both streams) into ch->pend, so that
 * libssh opens the window again for a server that is blocked writing
 * output while we write its input.  NL_OK or an errno. */
static int drain(nl_sshchan *ch) {
  int i;
  for (i = 0; i < 2; i++) {
    for (;;) {
      int a = ssh_channel_poll(ch->ch, i), k;
      char *p;
      if (a == SSH_ERROR) return nl_ssh_errno(ch->conn);
      if (a <= 0) break;
      if ((p = nl_buf_reserve(&ch->pend[i], (size_t)a)) == NULL) return ENOMEM;
      k = ssh_channel_read_nonblocking(ch->ch, p, (uint32_t)a, i);
      if (k <= 0) break;
      nl_buf_commit(&ch->pend[i], (size_t)k);
    }
  }
  return NL_OK;
}

/* Sends n bytes from p on ch as c until d; *sent counts them (kept by
 * the caller across a wait).  Then waits until libssh has handed all
 * of it to the socket. */
static int send_all(nl_sshchan *ch, nl_coop *c, const nl_deadline *d,
                    const char *p, size_t n, size_t *sent) {
  for (;;) {
    uint64_t m;
    int r, k;
    if (ch->ch == NULL || ch->conn == NULL) return NL_CLOSED;
    m = nl_ssh_mark(ch->conn);
    if (*sent < n) {
      size_t left = n - *sent;
      k = ssh_channel_write(ch->ch, p + *sent,
                            (uint32_t)(left > READ_MAX ? READ_MAX : left));
      if (k == SSH_ERROR) {
        nl_ssh_moved(ch->conn, c, m);
        return nl_ssh_errno(ch->conn);
      }
      *sent += (size_t)k;
      if (k > 0) {
        nl_ssh_moved(ch->conn, c, m);
        continue;
      }
      /* nothing taken: the server's window is full; its adjust must be
       * read first, and its output taken in (drain) in case it waits
       * for room to write before it reads more of ours */
      if ((r = drain(ch)) != NL_OK) return r;
      r = SSH_AGAIN;
    } else {
      r = ssh_blocking_flush(ch->conn->s, 0);
    }
    r = after(ch, c, d, r, nl_ssh_moved(ch->conn, c, m));
    if (r != NL_AGAIN) return r;
  }
}

/* ch:_write(data [, timeout]) -> true | nil, msg, code, sent: sent
 * counts the bytes of data libssh took (they go out whatever happens
 * next), so that a caller writing framed packets (sftp.lua) can finish
 * a packet a timeout cut instead of giving up the stream. */
static int ch_write(lua_State *L) {
  nl_sshchan *ch = chan_op(L, "write", 1);
  size_t n, sent;
  const char *p;
  nl_deadline d;
  int r;
  if (ch == NULL) return 3;
  p = luaL_checklstring(L, 2, &n);
  nl_coop_begin(L, &ch->wco, NULL, nl_opttimeout(L, 3, ch->conn->timeout), &d);
  r = send_all(ch, &ch->wco, &d, p, n, &ch->wco.progress);
  if (r == NL_PENDING) return nl_coop_pend(L, &ch->wco);
  if (r != NL_OK) {
    sent = ch->wco.progress;
    r = fail(L, ch, &ch->wco, r, "write");
    lua_pushinteger(L, (lua_Integer)sent);
    return r + 1;
  }
  nl_coop_end(&ch->wco);
  lua_pushboolean(L, 1);
  return 1;
}

/* ch:_eof() -> true | nil, msg, code: no more input for the command. */
static int ch_eof(lua_State *L) {
  nl_sshchan *ch = chan_op(L, "eof", 1);
  nl_deadline d;
  int r;
  if (ch == NULL) return 3;
  if (!nl_coop_begin(L, &ch->wco, NULL, ch->conn->timeout, &d) &&
      !ch->sent_eof) {
    ch->sent_eof = 1;
    if (ssh_channel_send_eof(ch->ch) == SSH_ERROR)
      return fail(L, ch, &ch->wco, nl_ssh_errno(ch->conn), "eof");
  }
  for (;;) {
    uint64_t m = nl_ssh_mark(ch->conn);
    r = ssh_blocking_flush(ch->conn->s, 0);
    r = after(ch, &ch->wco, &d, r, nl_ssh_moved(ch->conn, &ch->wco, m));
    if (r == NL_PENDING) return nl_coop_pend(L, &ch->wco);
    if (r == NL_OK) break;
    if (r != NL_AGAIN) return fail(L, ch, &ch->wco, r, "eof");
  }
  nl_coop_end(&ch->wco);
  lua_pushboolean(L, 1);
  return 1;
}

/* ch:_status([timeout]) -> exit status | false, signal name (the command
 * was killed) | false, nil (the channel closed with neither) |
 * nil, msg, code.  Call it once the output is read: while unread output
 * fills the channel's window, the status cannot come. */
static int ch_status(lua_State *L) {
  nl_sshchan *ch = chan_op(L, "status", 0);
  nl_deadline d;
  if (ch == NULL) return 3;
  nl_coop_begin(L, &ch->co, NULL, nl_opttimeout(L, 2, ch->conn->timeout), &d);
  for (;;) {
    uint64_t m;
    int r, a, moved;
    if (ch->has_status || ch->signal[0] != '\0' ||
        ssh_channel_is_closed(ch->ch))
      break;
    m = nl_ssh_mark(ch->conn);
    /* in non-blocking mode: one look at the socket, which takes in what
     * it has (a stream poll would not, after EOF) */
    a = ssh_channel_get_exit_status(ch->ch);
    moved = nl_ssh_moved(ch->conn, &ch->co, m);
    if (a == SSH_ERROR && !ssh_is_connected(ch->conn->s))
      return fail(L, ch, &ch->co, nl_ssh_errno(ch->conn), "status");
    if (ch->has_status || ch->signal[0] != '\0' ||
        ssh_channel_is_closed(ch->ch))
      break;
    if (moved) continue;
    r = nl_ssh_wait(ch->conn, &ch->co, &d);
    if (r == NL_PENDING) return nl_coop_pend(L, &ch->co);
    if (r != NL_OK) return fail(L, ch, &ch->co, r, "status");
  }
  nl_coop_end(&ch->co);
  if (ch->has_status) {
    lua_pushinteger(L, ch->status);
    return 1;
  }
  lua_pushboolean(L, 0);
  if (ch->signal[0] != '\0') lua_pushstring(L, ch->signal);
  else lua_pushnil(L);
  return 2;
}

static int ch_close(lua_State *L) {
  nl_sshchan *ch = (nl_sshchan *)nl_class_self(L, NL_SSH_CHANNEL);
  if (ch->ch != NULL && !ch->shell) {
    if (ch->conn != NULL) {
      nl_coop_closing(L, &ch->co, ch->conn->fd);
      nl_coop_closing(L, &ch->wco, -1);
    }
    chan_free(ch);
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int ch_gc(lua_State *L) {
  nl_sshchan *ch = (nl_sshchan *)nl_class_self(L, NL_SSH_CHANNEL);
  chan_free(ch);
  return 0;
}

static int ch_tostring(lua_State *L) {
  nl_sshchan *ch = (nl_sshchan *)nl_class_self(L, NL_SSH_CHANNEL);
  if (ch->ch == NULL || ch->conn == NULL)
    lua_pushfstring(L, NL_SSH_CHANNEL ": %p (closed)", (void *)ch);
  else
    lua_pushfstring(L, NL_SSH_CHANNEL ": %p (%s)", (void *)ch, ch->conn->name);
  return 1;
}

/* ---- a shell session over the channel (telnet.c's session object) ---- */

static int io_recv(void *io, nl_coop *c, const nl_deadline *d, int nowait,
                   char *p, size_t cap, size_t *got) {
  nl_sshchan *ch = (nl_sshchan *)io;
  ch->rco = c;
  if (ch->pend[0].len > 0 || ch->pend[1].len > 0) {  /* taken in by a write */
    nl_buf *b = &ch->pend[ch->pend[0].len > 0 ? 0 : 1];
    size_t k = b->len < cap ? b->len : cap;
    memcpy(p, nl_buf_head(b), k);
    nl_buf_consume(b, k);
    *got = k;
    return NL_OK;
  }
  for (;;) {
    uint64_t m;
    int k, r, moved;
    if (ch->ch == NULL || ch->conn == NULL) return NL_CLOSED;
    m = nl_ssh_mark(ch->conn);
    k = ssh_channel_read_nonblocking(ch->ch, p, (uint32_t)cap, 0);
    /* a pty merges the two; what a server still sends apart comes too */
    if (k == 0 || k == SSH_EOF) {
      int e = ssh_channel_read_nonblocking(ch->ch, p, (uint32_t)cap, 1);
      if (e > 0 || e == SSH_ERROR) k = e;
    }
    moved = nl_ssh_moved(ch->conn, c, m);
    if (k > 0) {
      *got = (size_t)k;
      return NL_OK;
    }
    if (k == SSH_EOF || ssh_channel_is_closed(ch->ch)) return NL_CLOSED;
    if (k < 0) return nl_ssh_errno(ch->conn);
    if (moved) continue;
    if (nowait) return NL_TIMEOUT;
    r = nl_ssh_wait(ch->conn, c, d);
    if (r != NL_OK) return r;
  }
}

static int io_send(void *io, nl_coop *c, const nl_deadline *d,
                   const char *p, size_t n, size_t *sent) {
  return send_all((nl_sshchan *)io, c, d, p, n, sent);
}

static int io_resize(void *io, int cols, int rows) {
  nl_sshchan *ch = (nl_sshchan *)io;
  if (ch->ch == NULL || ch->conn == NULL) return NL_CLOSED;
  if (ssh_channel_change_pty_size(ch->ch, cols, rows) == SSH_ERROR)
    return nl_ssh_errno(ch->conn);
  return NL_OK;
}

static void io_close(lua_State *L, void *io) {
  nl_sshchan *ch = (nl_sshchan *)io;
  (void)L;  /* the session wakes its own waiters */
  ch->rco = NULL;
  chan_free(ch);
}

static const char *io_error(void *io) {
  nl_sshchan *ch = (nl_sshchan *)io;
  return ch->conn != NULL ? nl_ssh_error(ch->conn) : "closed";
}

static const nl_term_io shell_io = {
  io_recv, io_send, io_resize, io_close, io_error};

/* core.ssh_term(channel, opts, name) -> session: the channel (with its
 * pty and shell requested) becomes a session object with the Telnet
 * session's methods; the channel object itself is then only its
 * keeper. */
static int l_term(lua_State *L) {
  nl_sshchan *ch = (nl_sshchan *)luaL_checkudata(L, 1, NL_SSH_CHANNEL);
  const char *name = luaL_checkstring(L, 3);
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
  if (ch->ch == NULL || ch->conn == NULL)
    return luaL_error(L, "attempt to use a closed ssh channel");
  if (ch->shell) return luaL_error(L, "the channel has a session already");
  ch->shell = 1;
  nl_term_new(L, &shell_io, ch, ch->conn->fd, 1, lua_istable(L, 2) ? 2 : 0,
              ch->conn->timeout, name);
  return 1;
}

void nl_open_ssh_chan(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"_request", ch_request}, {"_read", ch_read}, {"_write", ch_write},
    {"_eof", ch_eof}, {"_status", ch_status}, {"close", ch_close},
    {NULL, NULL}};
  static const nl_class cls = {
    NL_SSH_CHANNEL, methods, NULL, ch_gc, ch_close, ch_tostring, 1};
  nl_class_make(L, &cls, 0);
  /* the connection's _channel, with the connection's metatable as its
   * upvalue 1 like its other methods */
  nl_class_methods(L, NL_SSH);
  luaL_getmetatable(L, NL_SSH);
  lua_pushcclosure(L, c_channel, 1);
  lua_setfield(L, -2, "_channel");
  lua_pop(L, 1);
  lua_pushcfunction(L, l_term);
  lua_setfield(L, -2, "ssh_term");
}
