/*
 * ssh.c - the SSH connection object behind netlua.ssh: libssh over a
 * socket netlua.tcp connected, its handshake, the server's host key and
 * user authentication, each a step that waits like every netlua call
 * (in a task of netlua.run only that task waits).
 *
 * Policy is Lua's (netlua/ssh.lua): which known_hosts file, whether a
 * key is accepted, which authentication methods are tried in which
 * order.  Here are the mechanisms, and the one rule that keeps several
 * tasks on one connection from losing wakeups: all its operations wait
 * on its one socket, and an operation that took in bytes while others
 * were parked wakes them (nl_ssh_moved), since libssh may have filed
 * what they wait for.  Channels: ssh_chan.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "ssh.h"

/* ---- shared with ssh_chan.c ------------------------------------------ */

nl_ssh *nl_ssh_check(lua_State *L, int arg) {
  nl_ssh *s = (nl_ssh *)(arg == 1 ? nl_class_self(L, NL_SSH)
                                  : luaL_checkudata(L, arg, NL_SSH));
  if (s->s == NULL) luaL_error(L, "attempt to use a closed ssh connection");
  return s;
}

int nl_ssh_wait(nl_ssh *s, nl_coop *c, const nl_deadline *d) {
  int ev = NL_WAIT_READ, r;
  nl_deadline next;
  next.at = s->ka_last + s->keepalive;
  /* a long wait sends an SSH_MSG_IGNORE every keepalive seconds, so that
   * NAT and firewalls keep an idle connection (a device thinking) */
  if (s->keepalive > 0 && nl_monotime() >= next.at) {
    ssh_send_ignore(s->s, "");
    s->ka_last = nl_monotime();
    next.at = s->ka_last + s->keepalive;
  }
  /* after the keepalive: it may be what libssh has queued */
  if (ssh_get_poll_flags(s->s) & SSH_WRITE_PENDING) ev |= NL_WAIT_WRITE;
  if (s->keepalive <= 0 || (d->at >= 0 && d->at < next.at))
    return nl_coop_wait(c, s->fd, ev, d);
  r = nl_coop_wait(c, s->fd, ev, &next);
  /* the caller looks again, and its next wait sends the keepalive */
  return r == NL_TIMEOUT ? NL_OK : r;
}

static int parked_other(const nl_coop *c, const nl_coop *self) {
  return c != NULL && c != self && c->parked;
}

uint64_t nl_ssh_mark(const nl_ssh *s) {
  return s->raw.in_packets;
}

int nl_ssh_moved(nl_ssh *s, nl_coop *self, uint64_t mark) {
  nl_sshchan *ch;
  int any;
  if (s->raw.in_packets == mark) return 0;
  any = parked_other(&s->co, self);
  for (ch = s->chans; ch != NULL && !any; ch = ch->next)
    any = parked_other(&ch->co, self) || parked_other(&ch->wco, self) ||
          parked_other(ch->rco, self);
  if (any && self != NULL) nl_coop_wake_fd(self->L, s->fd);
  return 1;
}

void nl_ssh_link(nl_ssh *s, nl_sshchan *ch) {
  ch->conn = s;
  ch->prev = NULL;
  ch->next = s->chans;
  if (s->chans != NULL) s->chans->prev = ch;
  s->chans = ch;
}

void nl_ssh_unlink(nl_sshchan *ch) {
  if (ch->conn == NULL) return;
  if (ch->prev != NULL) ch->prev->next = ch->next;
  else ch->conn->chans = ch->next;
  if (ch->next != NULL) ch->next->prev = ch->prev;
  ch->prev = ch->next = NULL;
  ch->conn = NULL;
}

int nl_ssh_errno(nl_ssh *s) {
  if (s->s == NULL) return NL_CLOSED;
  if (ssh_get_status(s->s) & (SSH_CLOSED | SSH_CLOSED_ERROR)) return ECONNRESET;
  /* the server said no to a channel or a request: an answer, not a
   * broken protocol */
  if (ssh_get_error_code(s->s) == SSH_REQUEST_DENIED) return EACCES;
  return EPROTO;
}

const char *nl_ssh_error(nl_ssh *s) {
  const char *e = s->s != NULL ? ssh_get_error(s->s) : NULL;
  return e != NULL && *e != '\0' ? e : "protocol error";
}

int nl_ssh_fail(lua_State *L, nl_ssh *s, int r, const char *what) {
  if (r == EPROTO || r == EACCES)
    return nl_pushfailcode(L, r == EPROTO ? "protocol" : "denied",
                           "%s %s: %s", what, s->name, nl_ssh_error(s));
  if (r == ECONNRESET && s->s != NULL) {
    const char *e = ssh_get_error(s->s);
    if (e != NULL && *e != '\0')
      return nl_pushfailcode(L, "closed", "%s %s: connection closed (%s)",
                             what, s->name, e);
  }
  return nl_pushfail(L, r, "%s %s", what, s->name);
}

/* ---- creating and closing -------------------------------------------- */

static void conn_close(lua_State *L, nl_ssh *s);

static int opt_string(lua_State *L, int t, const char *k, const char **v) {
  int ty = lua_getfield(L, t, k);
  *v = NULL;
  if (ty == LUA_TSTRING) *v = lua_tostring(L, -1);
  else if (ty != LUA_TNIL)
    return luaL_error(L, "bad option '%s' (string expected, got %s)", k,
                      luaL_typename(L, -1));
  lua_pop(L, 1);  /* the options table keeps the string */
  return *v != NULL;
}

/* core.ssh_new(tcpsock, opts) -> connection.  Takes the connected
 * socket's descriptor (the TCP object is closed afterwards).  opts: host
 * and port (what known_hosts entries are looked up by), user,
 * known_hosts (a path; false: none), agent_socket (ssh-agent's socket
 * instead of $SSH_AUTH_SOCK), timeout, keepalive (seconds),
 * debug (libssh's log level 0..4, to stderr). */
static int l_ssh_new(lua_State *L) {
  nl_sock *sock = nl_sock_check(L, 1, NL_TCP);
  const char *host, *user, *kh, *agent;
  unsigned int port;
  int one = 1, verbosity = 0, no = 0;
  double s_keepalive;
  nl_ssh *s;
  ssh_session ss;
  luaL_checktype(L, 2, LUA_TTABLE);
  if (!opt_string(L, 2, "host", &host))
    return luaL_error(L, "bad option 'host' (string expected)");
  lua_getfield(L, 2, "port");
  port = (unsigned int)luaL_optinteger(L, -1, 22);
  lua_pop(L, 1);
  opt_string(L, 2, "user", &user);
  opt_string(L, 2, "agent_socket", &agent);
  if (lua_getfield(L, 2, "known_hosts") == LUA_TBOOLEAN) {
    kh = lua_toboolean(L, -1) ? NULL : "/dev/null";
  } else {
    lua_pop(L, 1);
    opt_string(L, 2, "known_hosts", &kh);
    lua_pushnil(L);
  }
  lua_pop(L, 1);
  lua_getfield(L, 2, "keepalive");
  s_keepalive = luaL_optnumber(L, -1, 0);
  lua_pop(L, 1);
  if (lua_getfield(L, 2, "debug") == LUA_TNUMBER)
    verbosity = (int)lua_tointeger(L, -1);
  else if (lua_toboolean(L, -1)) verbosity = SSH_LOG_PROTOCOL;
  lua_pop(L, 1);
  s = (nl_ssh *)nl_class_new(L, NL_SSH, sizeof *s, 0);
  s->fd = s->lfd = -1;
  s->timeout = nl_opttimeout_field(L, 2, sock->timeout);
  s->keepalive = s_keepalive;
  s->ka_last = nl_monotime();
  snprintf(s->name, sizeof s->name, "%s%s%s:%u", user ? user : "",
           user ? "@" : "", host, port);
  ss = ssh_new();
  if (ss == NULL) return nl_pushfail(L, ENOMEM, "ssh %s", s->name);
  s->s = ss;
  /* the descriptor is the connection's from here on */
  s->fd = sock->fd;
  sock->fd = -1;
  nl_sock_closefd(sock);
  s->lfd = fcntl(s->fd, F_DUPFD_CLOEXEC, 0);
  if (s->lfd < 0) {
    int e = errno;
    conn_close(L, s);
    return nl_pushfail(L, e, "ssh %s", s->name);
  }
  /* requests and answers are small: no Nagle delay on a round trip */
  setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  ssh_options_set(ss, SSH_OPTIONS_FD, &s->lfd);
  ssh_options_set(ss, SSH_OPTIONS_HOST, host);
  ssh_options_set(ss, SSH_OPTIONS_PORT, &port);
  if (user != NULL) ssh_options_set(ss, SSH_OPTIONS_USER, user);
  if (agent != NULL) ssh_options_set(ss, SSH_OPTIONS_IDENTITY_AGENT, agent);
  /* the script says what it wants; ~/.ssh/config must not change it */
  ssh_options_set(ss, SSH_OPTIONS_PROCESS_CONFIG, &no);
  if (kh != NULL) {
    ssh_options_set(ss, SSH_OPTIONS_KNOWNHOSTS, kh);
    /* a file named for this connection is the only one asked */
    ssh_options_set(ss, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null");
  }
  ssh_options_set(ss, SSH_OPTIONS_LOG_VERBOSITY, &verbosity);
  ssh_set_counters(ss, &s->sock, &s->raw);
  ssh_set_blocking(ss, 0);
  return 1;
}

/* Closes the connection: every operation parked on it is woken and
 * answers "closed"; its channels are closed with it. */
static void conn_close(lua_State *L, nl_ssh *s) {
  nl_sshchan *ch;
  int held;
  if (s->fd < 0) return;
  if (L != NULL) {
    for (ch = s->chans; ch != NULL; ch = ch->next) {
      nl_coop_closing(L, &ch->co, -1);
      nl_coop_closing(L, &ch->wco, -1);
      if (ch->rco != NULL) nl_coop_closing(L, ch->rco, -1);
    }
    nl_coop_closing(L, &s->co, s->fd);  /* wakes every task on the socket */
  }
  while ((ch = s->chans) != NULL) {
    ch->ch = NULL;  /* ssh_free frees it */
    nl_ssh_unlink(ch);
  }
  if (s->key != NULL) ssh_key_free(s->key);
  s->key = NULL;
  /* libssh closes a descriptor given to it only on some errors: it
   * still holds it when it says so */
  held = s->s != NULL && s->lfd >= 0 && ssh_get_fd(s->s) == s->lfd;
  if (s->s != NULL) {
    ssh_disconnect(s->s);  /* a best-effort goodbye */
    ssh_free(s->s);
  }
  if (held) close(s->lfd);
  close(s->fd);
  s->s = NULL;
  s->fd = s->lfd = -1;
}

static int c_close(lua_State *L) {
  nl_ssh *s = (nl_ssh *)nl_class_self(L, NL_SSH);
  conn_close(L, s);
  lua_pushboolean(L, 1);
  return 1;
}

static int c_gc(lua_State *L) {
  conn_close(NULL, (nl_ssh *)nl_class_self(L, NL_SSH));
  return 0;
}

static int c_tostring(lua_State *L) {
  nl_ssh *s = (nl_ssh *)nl_class_self(L, NL_SSH);
  if (s->s == NULL) lua_pushfstring(L, NL_SSH ": %p (closed)", (void *)s);
  else lua_pushfstring(L, NL_SSH ": %p (%s)", (void *)s, s->name);
  return 1;
}

/* The connection for a step that may restart after a wait on s->co:
 * NULL with nil, msg, "closed" pushed when another task closed it. */
static nl_ssh *conn_op(lua_State *L, const char *who) {
  nl_ssh *s = (nl_ssh *)nl_class_self(L, NL_SSH);
  if (nl_coop_closed(L, &s->co)) {
    nl_pushfail(L, NL_CLOSED, "%s %s", who, s->name);
    return NULL;
  }
  return nl_ssh_check(L, 1);
}

/* ---- the handshake --------------------------------------------------- */

/* c:_handshake([timeout]) -> true | nil, msg, code: the version lines,
 * key exchange and the server's proof of its host key.  The key is not
 * judged here: _hostkey tells what known_hosts says of it. */
static int c_handshake(lua_State *L) {
  nl_ssh *s = conn_op(L, "ssh");
  nl_deadline d;
  if (s == NULL) return 3;
  nl_coop_begin(L, &s->co, NULL, nl_opttimeout(L, 2, s->timeout), &d);
  for (;;) {
    uint64_t m = nl_ssh_mark(s);
    int r, rc = ssh_connect(s->s), moved = nl_ssh_moved(s, &s->co, m);
    if (rc == SSH_OK) break;
    if (rc != SSH_AGAIN) {
      nl_coop_end(&s->co);
      return nl_ssh_fail(L, s, nl_ssh_errno(s), "ssh");
    }
    if (moved) continue;
    r = nl_ssh_wait(s, &s->co, &d);
    if (r == NL_PENDING) return nl_coop_pend(L, &s->co);
    if (r != NL_OK) {
      nl_coop_end(&s->co);
      if (r == NL_TIMEOUT)
        return nl_pushfailcode(L, "timeout", "ssh %s: handshake timed out",
                               s->name);
      return nl_ssh_fail(L, s, r, "ssh");
    }
  }
  nl_coop_end(&s->co);
  lua_pushboolean(L, 1);
  return 1;
}

/* c:_hostkey() -> "SHA256:..." fingerprint, key type, and what the
 * known_hosts files say of it: "ok", "changed" (another key of the same
 * type is listed for the host), "other" (only keys of other types are),
 * "unknown" (the host is not listed), "nofile" (no such file). */
static int c_hostkey(lua_State *L) {
  nl_ssh *s = nl_ssh_check(L, 1);
  ssh_key key = NULL;
  unsigned char *hash = NULL;
  size_t hlen = 0;
  char *fp;
  const char *state;
  if (ssh_get_server_publickey(s->s, &key) != SSH_OK)
    return nl_ssh_fail(L, s, EPROTO, "ssh");
  if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &hlen) != 0) {
    ssh_key_free(key);
    return nl_ssh_fail(L, s, EPROTO, "ssh");
  }
  fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hlen);
  ssh_clean_pubkey_hash(&hash);
  lua_pushstring(L, fp != NULL ? fp : "?");
  ssh_string_free_char(fp);
  lua_pushstring(L, ssh_key_type_to_char(ssh_key_type(key)));
  ssh_key_free(key);
  switch (ssh_session_is_known_server(s->s)) {
    case SSH_KNOWN_HOSTS_OK: state = "ok"; break;
    case SSH_KNOWN_HOSTS_CHANGED: state = "changed"; break;
    case SSH_KNOWN_HOSTS_OTHER: state = "other"; break;
    case SSH_KNOWN_HOSTS_UNKNOWN: state = "unknown"; break;
    case SSH_KNOWN_HOSTS_NOT_FOUND: state = "nofile"; break;
    default: state = "error"; break;
  }
  lua_pushstring(L, state);
  if (strcmp(state, "error") == 0) {
    lua_pushstring(L, nl_ssh_error(s));
    return 4;
  }
  return 3;
}

/* c:_learn_hostkey() -> true | nil, msg, code: adds the server's key to
 * the known_hosts file (made, with its folder, when missing). */
static int c_learn_hostkey(lua_State *L) {
  nl_ssh *s = nl_ssh_check(L, 1);
  if (ssh_session_update_known_hosts(s->s) != SSH_OK)
    return nl_pushfailcode(L, "hostkey", "ssh %s: cannot add the host key "
                           "to known_hosts: %s", s->name, nl_ssh_error(s));
  lua_pushboolean(L, 1);
  return 1;
}

/* c:banner() -> the server's version line ("SSH-2.0-OpenSSH_9.2p1 ..."),
 * and the text it shows before login (its issue banner) or nil. */
static int c_banner(lua_State *L) {
  nl_ssh *s = nl_ssh_check(L, 1);
  const char *v = ssh_get_serverbanner(s->s);
  char *issue = ssh_get_issue_banner(s->s);
  if (v != NULL) lua_pushstring(L, v);
  else lua_pushnil(L);
  if (issue != NULL) lua_pushstring(L, issue);
  else lua_pushnil(L);
  ssh_string_free_char(issue);
  return 2;
}

/* ---- user authentication --------------------------------------------- */

static const char *auth_result(int rc) {
  switch (rc) {
    case SSH_AUTH_SUCCESS: return "success";
    case SSH_AUTH_PARTIAL: return "partial";
    case SSH_AUTH_DENIED: return "denied";
    case SSH_AUTH_INFO: return "info";
    default: return NULL;
  }
}

static void push_methods(lua_State *L, nl_ssh *s) {
  int m = ssh_userauth_list(s->s, NULL), n = 0;
  lua_newtable(L);
#define METHOD(bit, name) \
  if (m & (bit)) { lua_pushliteral(L, name); lua_rawseti(L, -2, ++n); }
  METHOD(SSH_AUTH_METHOD_PUBLICKEY, "publickey");
  METHOD(SSH_AUTH_METHOD_PASSWORD, "password");
  METHOD(SSH_AUTH_METHOD_INTERACTIVE, "keyboard-interactive");
  METHOD(SSH_AUTH_METHOD_HOSTBASED, "hostbased");
  METHOD(SSH_AUTH_METHOD_GSSAPI_MIC, "gssapi-with-mic");
#undef METHOD
}

/* Pushes kbdint's questions: name, instruction, {{prompt =, echo =}...} */
static int push_prompts(lua_State *L, nl_ssh *s) {
  int i, n = ssh_userauth_kbdint_getnprompts(s->s);
  lua_pushstring(L, ssh_userauth_kbdint_getname(s->s));
  lua_pushstring(L, ssh_userauth_kbdint_getinstruction(s->s));
  lua_createtable(L, n > 0 ? n : 0, 0);
  for (i = 0; i < n; i++) {
    char echo = 0;
    const char *p = ssh_userauth_kbdint_getprompt(s->s, (unsigned)i, &echo);
    lua_createtable(L, 0, 2);
    lua_pushstring(L, p != NULL ? p : "");
    lua_setfield(L, -2, "prompt");
    lua_pushboolean(L, echo);
    lua_setfield(L, -2, "echo");
    lua_rawseti(L, -2, i + 1);
  }
  return 3;
}

/* auth_try's answer when the private key cannot be loaded: the script's
 * problem, not the server's */
#define AUTH_NOKEY (-101)

/* One try of method m; SSH_AUTH_AGAIN means call again after a wait. */
static int auth_try(lua_State *L, nl_ssh *s, const char *m, int resumed) {
  if (strcmp(m, "none") == 0) return ssh_userauth_none(s->s, NULL);
  if (strcmp(m, "password") == 0)
    return ssh_userauth_password(s->s, NULL, luaL_checkstring(L, 3));
  if (strcmp(m, "agent") == 0) return ssh_userauth_agent(s->s, NULL);
  if (strcmp(m, "publickey") == 0) {
    if (!resumed || s->key == NULL) {
      const char *path = luaL_checkstring(L, 3);
      const char *pass = luaL_optstring(L, 4, NULL);
      if (s->key != NULL) ssh_key_free(s->key);
      s->key = NULL;
      if (ssh_pki_import_privkey_file(path, pass, NULL, NULL, &s->key) != SSH_OK)
        return AUTH_NOKEY;
    }
    return ssh_userauth_publickey(s->s, NULL, s->key);
  }
  if (strcmp(m, "kbdint") == 0) {
    if (!resumed && lua_istable(L, 3)) {  /* the answers to the last prompts */
      int i, n = ssh_userauth_kbdint_getnprompts(s->s);
      for (i = 0; i < n; i++) {
        const char *a;
        lua_rawgeti(L, 3, i + 1);
        a = lua_tostring(L, -1);
        ssh_userauth_kbdint_setanswer(s->s, (unsigned)i, a != NULL ? a : "");
        lua_pop(L, 1);
      }
    }
    return ssh_userauth_kbdint(s->s, NULL, NULL);
  }
  return luaL_argerror(L, 2, "unknown method");
}

/* c:_auth(method, ... [, timeout in the options of ssh.lua]) -> result,
 * methods | "info", name, instruction, prompts | nil, msg, code.
 * method: "none", "password" (pw), "publickey" (path, passphrase),
 * "agent", "kbdint" (answers to the prompts the last "info" gave, or
 * nothing to start).  result: "success", "partial" (more methods
 * needed) or "denied"; methods: what the server would take now. */
static int c_auth(lua_State *L) {
  nl_ssh *s = conn_op(L, "ssh auth");
  const char *m;
  nl_deadline d;
  int resumed, rc;
  if (s == NULL) return 3;
  m = luaL_checkstring(L, 2);
  resumed = nl_coop_begin(L, &s->co, NULL, s->timeout, &d);
  if (resumed) m = lua_tostring(L, 2);  /* the stack is back as it was */
  for (;;) {
    uint64_t mk = nl_ssh_mark(s);
    int r, moved;
    rc = auth_try(L, s, m, resumed);
    moved = nl_ssh_moved(s, &s->co, mk);
    if (rc != SSH_AUTH_AGAIN) break;
    resumed = 1;
    if (moved) continue;
    r = nl_ssh_wait(s, &s->co, &d);
    if (r == NL_PENDING) return nl_coop_pend(L, &s->co);
    if (r != NL_OK) {
      nl_coop_end(&s->co);
      if (r == NL_TIMEOUT)
        return nl_pushfailcode(L, "timeout", "ssh %s: %s authentication "
                               "timed out", s->name, m);
      return nl_ssh_fail(L, s, r, "ssh auth");
    }
  }
  nl_coop_end(&s->co);
  if (s->key != NULL && strcmp(m, "publickey") == 0) {
    ssh_key_free(s->key);
    s->key = NULL;
  }
  if (rc == AUTH_NOKEY)
    return nl_pushfailcode(L, "key", "ssh %s: cannot load the private key "
                           "%s (missing, unreadable, or wrong passphrase)",
                           s->name, lua_tostring(L, 3));
  if (auth_result(rc) == NULL)
    return nl_ssh_fail(L, s, nl_ssh_errno(s), "ssh auth");
  lua_pushstring(L, auth_result(rc));
  if (rc == SSH_AUTH_INFO) return 1 + push_prompts(L, s);
  push_methods(L, s);
  return 2;
}

/* c:send_ignore([data]) -> true: an SSH_MSG_IGNORE, what keeps an idle
 * connection alive through NAT and firewalls (keepalive). */
static int c_send_ignore(lua_State *L) {
  nl_ssh *s = nl_ssh_check(L, 1);
  if (ssh_send_ignore(s->s, luaL_optstring(L, 2, "")) != SSH_OK)
    return nl_ssh_fail(L, s, nl_ssh_errno(s), "keepalive");
  lua_pushboolean(L, 1);
  return 1;
}

/* c:stats() -> {bytes_in=, bytes_out=, packets_in=, packets_out=}: on
 * the socket, and SSH packets (keepalives count) */
static int c_stats(lua_State *L) {
  nl_ssh *s = (nl_ssh *)nl_class_self(L, NL_SSH);
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, (lua_Integer)s->sock.in_bytes);
  lua_setfield(L, -2, "bytes_in");
  lua_pushinteger(L, (lua_Integer)s->sock.out_bytes);
  lua_setfield(L, -2, "bytes_out");
  lua_pushinteger(L, (lua_Integer)s->raw.in_packets);
  lua_setfield(L, -2, "packets_in");
  lua_pushinteger(L, (lua_Integer)s->raw.out_packets);
  lua_setfield(L, -2, "packets_out");
  return 1;
}

static int c_fileno(lua_State *L) {
  lua_pushinteger(L, nl_ssh_check(L, 1)->fd);
  return 1;
}

static int c_settimeout(lua_State *L) {
  nl_ssh *s = nl_ssh_check(L, 1);
  s->timeout = nl_opttimeout(L, 2, -1);
  lua_pushboolean(L, 1);
  return 1;
}

static int c_gettimeout(lua_State *L) {
  lua_pushnumber(L, nl_ssh_check(L, 1)->timeout);
  return 1;
}

static int c_name(lua_State *L) {
  lua_pushstring(L, ((nl_ssh *)nl_class_self(L, NL_SSH))->name);
  return 1;
}

static int c_isopen(lua_State *L) {
  nl_ssh *s = (nl_ssh *)nl_class_self(L, NL_SSH);
  lua_pushboolean(L, s->s != NULL && ssh_is_connected(s->s));
  return 1;
}

void nl_open_ssh(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"_handshake", c_handshake}, {"_hostkey", c_hostkey},
    {"_learn_hostkey", c_learn_hostkey}, {"banner", c_banner},
    {"_auth", c_auth}, {"send_ignore", c_send_ignore},
    {"close", c_close}, {"fileno", c_fileno},
    {"settimeout", c_settimeout}, {"gettimeout", c_gettimeout},
    {"_name", c_name}, {"isopen", c_isopen}, {"stats", c_stats},
    {NULL, NULL}};
  static const nl_class cls = {
    NL_SSH, methods, NULL, c_gc, c_close, c_tostring, 1};
  nl_class_make(L, &cls, 0);
  lua_pushcfunction(L, l_ssh_new);
  lua_setfield(L, -2, "ssh_new");
  lua_pushstring(L, ssh_version(0));
  lua_setfield(L, -2, "SSH_LIBRARY");
  nl_open_ssh_chan(L);
}
