/*
 * ftp.c - the FTP/FTPS session object (netlua.ftp): its life (options,
 * close, __gc, __tostring), the client-side current directory and URL
 * building, sendcmd/voidcmd and the other commands sent through
 * CURLOPT_QUOTE, cwd/pwd, quit, and the method table.
 * What does not live here: running an operation on libcurl
 * (ftp_drive.c), transfers (ftp_xfer.c), connect and login
 * (ftp_connect.c), reply framing (ftp_reply.c), and the listing parsers
 * and helpers such as get/put/list/mirror (lua/netlua/ftp.lua).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/socket.h>

#include "ftp.h"

/* ---- small helpers ----------------------------------------------------- */

char *ftp_dupstr(const char *p) {
  char *q;
  if (!p) return NULL;
  q = malloc(strlen(p) + 1);
  if (q) strcpy(q, p);
  return q;
}

void ftp_setstr(char **dst, const char *src) {
  free(*dst);
  *dst = ftp_dupstr(src);
}

void ftp_setmem(char **dst, const char *src, size_t n) {
  free(*dst);
  *dst = malloc(n + 1);
  if (*dst) { memcpy(*dst, src, n); (*dst)[n] = '\0'; }
}

/* Raises when the string argument holds CR, LF or NUL: they would
 * smuggle extra commands onto the control connection. */
const char *ftp_check_clean(lua_State *L, int arg, const char *what) {
  size_t n;
  const char *p = luaL_checklstring(L, arg, &n);
  if (strlen(p) != n || strpbrk(p, "\r\n")) {
    lua_pushfstring(L, "CR, LF or NUL in %s", what);
    luaL_argerror(L, arg, lua_tostring(L, -1));
  }
  return p;
}

ftp_sess *ftp_check_sess(lua_State *L) {
  ftp_sess *s = luaL_checkudata(L, 1, FTP);
  if (s->closed) luaL_error(L, "attempt to use a closed ftp session");
  return s;
}

void ftp_check_idle(lua_State *L, ftp_sess *s) {
  if (s->busy) luaL_error(L, "ftp session is busy (called from a callback?)");
}

void ftp_check_logged(lua_State *L, ftp_sess *s) {
  ftp_check_idle(L, s);
  if (!s->connected) luaL_error(L, "ftp session is not connected (call connect)");
  if (!s->logged) luaL_error(L, "ftp session is not logged in (call login)");
}

/* Joins p to the client-side cwd and removes ".", ".." and double
 * slashes; pushes the absolute result. */
const char *ftp_push_abspath(lua_State *L, ftp_sess *s, const char *p) {
  luaL_Buffer b;
  const char *parts[256];
  size_t lens[256];
  int n = 0, i;
  const char *srcs[2];
  srcs[0] = (p[0] == '/') ? "" : (s->cwd ? s->cwd : "/");
  srcs[1] = p;
  for (i = 0; i < 2; i++) {
    const char *q = srcs[i];
    while (*q) {
      const char *e;
      while (*q == '/') q++;
      if (!*q) break;
      e = strchr(q, '/');
      if (!e) e = q + strlen(q);
      if (e - q == 1 && q[0] == '.') { /* skip */ }
      else if (e - q == 2 && q[0] == '.' && q[1] == '.') { if (n > 0) n--; }
      else {
        if (n == 256) luaL_error(L, "path too deep");
        parts[n] = q; lens[n] = (size_t)(e - q); n++;
      }
      q = e;
    }
  }
  luaL_buffinit(L, &b);
  if (n == 0) luaL_addchar(&b, '/');
  for (i = 0; i < n; i++) {
    luaL_addchar(&b, '/');
    luaL_addlstring(&b, parts[i], lens[i]);
  }
  luaL_pushresult(&b);
  return lua_tostring(L, -1);
}

/* Pushes "ftp://host:port/%2F<abs path, percent-encoded>[/]". */
const char *ftp_push_url(lua_State *L, ftp_sess *s, const char *abs,
                            int dir) {
  static const char hex[] = "0123456789ABCDEF";
  luaL_Buffer b;
  const unsigned char *p;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, s->tls == TLS_IMPLICIT ? "ftps://" : "ftp://");
  if (strchr(s->host, ':')) {
    luaL_addchar(&b, '['); luaL_addstring(&b, s->host); luaL_addchar(&b, ']');
  } else luaL_addstring(&b, s->host);
  lua_pushfstring(L, ":%d/", s->port);
  luaL_addvalue(&b);
  if (abs) {
    luaL_addstring(&b, "%2F");
    for (p = (const unsigned char *)abs + 1; *p; p++) {
      if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
          (*p >= '0' && *p <= '9') || strchr("-._~/", *p))
        luaL_addchar(&b, (char)*p);
      else {
        luaL_addchar(&b, '%');
        luaL_addchar(&b, hex[*p >> 4]);
        luaL_addchar(&b, hex[*p & 15]);
      }
    }
    if (dir && abs[1] != '\0') luaL_addchar(&b, '/');
  }
  luaL_pushresult(&b);
  return lua_tostring(L, -1);
}

/* ---- session lifecycle -------------------------------------------------- */

static void sess_free(ftp_sess *s, int quit) {
  int i;
  if (s->closed) return;
  s->closed = 1;
  if (s->easy) {
    if (!quit && s->ctl_fd != CURL_SOCKET_BAD) {
      /* no QUIT handshake: make the cache's goodbye fail at once */
      shutdown(s->ctl_fd, SHUT_RDWR);
    }
    curl_easy_setopt(s->easy, CURLOPT_VERBOSE, 0L);
    curl_easy_setopt(s->easy, CURLOPT_DEBUGFUNCTION, NULL);
    if (s->op.added) {  /* an operation parked in a task nobody resumes */
      curl_multi_remove_handle(s->multi, s->easy);
      s->op.added = 0;
    }
    curl_easy_cleanup(s->easy);
    s->easy = NULL;
  }
  if (s->multi) { curl_multi_cleanup(s->multi); s->multi = NULL; }
  if (s->epfd >= 0) { close(s->epfd); s->epfd = -1; }
  if (s->pre_fd >= 0) { close(s->pre_fd); s->pre_fd = -1; }
  if (s->cn_phase) ftp_connect_end(s, 0);
  if (s->L) {
    ftp_op_clear(s->L, s);
    luaL_unref(s->L, LUA_REGISTRYINDEX, s->debugref);
    s->debugref = LUA_NOREF;
  }
  free(s->host); free(s->user); free(s->pass); free(s->acct);
  free(s->cafile); free(s->welcome); free(s->entry); free(s->cwd);
  free(s->server_cwd); free(s->op_cwd); free(s->label);
  s->label = NULL;
  s->host = s->user = s->pass = s->acct = s->cafile = s->welcome = NULL;
  s->entry = s->cwd = s->server_cwd = s->op_cwd = NULL;
  nl_ftpr_free(&s->fr);
  nl_buf_free(&s->last.text);
  nl_buf_free(&s->login.text);
  for (i = 0; i < NQUOTE; i++) nl_buf_free(&s->qr[i].text);
}

/* close() and __close.  Busy is fine when the operation is parked in
 * another task (nothing of curl's is on the C stack then): that task
 * wakes and its call returns "closed".  From a callback of the session's
 * own operation it is not. */
static int m_close(lua_State *L) {
  ftp_sess *s = luaL_checkudata(L, 1, FTP);
  int i;
  if (s->busy && !s->co.parked)
    return luaL_error(L, "close: ftp session is busy");
  if (!s->closed) {
    /* the descriptors a parked operation may be waiting on */
    nl_coop_closing(L, &s->co, s->epfd);
    nl_coop_closing(L, &s->co, s->cn_fd);
    nl_coop_closing(L, &s->co, s->rs_fd);
    for (i = 0; i < s->nw; i++) nl_coop_closing(L, &s->co, s->wfd[i]);
  }
  s->L = L;
  sess_free(s, 0);
  s->busy = 0;
  return 0;
}

/* __gc: nothing can wait on a session being collected */
static int m_gc(lua_State *L) {
  ftp_sess *s = luaL_checkudata(L, 1, FTP);
  s->L = L;
  sess_free(s, 0);
  return 0;
}

static int m_tostring(lua_State *L) {
  ftp_sess *s = luaL_checkudata(L, 1, FTP);
  if (s->closed) lua_pushliteral(L, "netlua.ftp (closed)");
  else if (s->connected)
    lua_pushfstring(L, "netlua.ftp: %s:%d (%p)", s->host, s->port, (void *)s);
  else lua_pushfstring(L, "netlua.ftp: %p", (void *)s);
  return 1;
}

static int opt_bool(lua_State *L, int t, const char *k, int dflt) {
  int r = dflt;
  if (lua_getfield(L, t, k) != LUA_TNIL) {
    if (!lua_isboolean(L, -1))
      luaL_error(L, "bad option '%s' (boolean expected, got %s)", k, luaL_typename(L, -1));
    r = lua_toboolean(L, -1);
  }
  lua_pop(L, 1);
  return r;
}

static void opt_str(lua_State *L, int t, const char *k, char **dst) {
  if (lua_getfield(L, t, k) != LUA_TNIL) {
    size_t n;
    const char *p;
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "bad option '%s' (string expected, got %s)", k, luaL_typename(L, -1));
    p = lua_tolstring(L, -1, &n);
    if (strlen(p) != n || strpbrk(p, "\r\n"))
      luaL_error(L, "bad option '%s' (CR, LF or NUL)", k);
    ftp_setstr(dst, p);
  }
  lua_pop(L, 1);
}

static void check_tls_mode(lua_State *L, ftp_sess *s) {
  /* active mode under TLS hangs before curl 8.0 */
  if (s->tls != TLS_NONE && !s->passive && !ftp_curl_at_least(0x080000))
    luaL_error(L, "active mode with TLS needs libcurl >= 8.0 (this is %s)",
               curl_version_info(CURLVERSION_NOW)->version);
}

static void set_debug(lua_State *L, ftp_sess *s, int idx) {
  luaL_unref(L, LUA_REGISTRYINDEX, s->debugref);
  s->debugref = LUA_NOREF;
  if (lua_isfunction(L, idx)) {
    lua_pushvalue(L, idx);
    s->debugref = luaL_ref(L, LUA_REGISTRYINDEX);
    if (s->debuglevel == 0) s->debuglevel = 1;
  } else if (lua_isinteger(L, idx)) {
    s->debuglevel = (int)lua_tointeger(L, idx);
  } else if (lua_isboolean(L, idx)) {
    s->debuglevel = lua_toboolean(L, idx);
  } else if (!lua_isnil(L, idx)) {
    luaL_error(L, "bad option 'debug' (function, integer or boolean expected)");
  }
}

/* core.ftp_session(opts) -> an unconnected session with the options set */
/* Pushes a new session with its handles and no options set. */
static ftp_sess *sess_alloc(lua_State *L) {
  ftp_sess *s = (ftp_sess *)nl_class_new(L, FTP, sizeof *s, 0);
  s->pre_fd = -1;
  s->ctl_fd = CURL_SOCKET_BAD;
  s->rs_fd = -1;
  s->rx_moved = s->rx_announced = s->rx_filetime = -1;
  s->epfd = -1;
  s->cn_fd = -1;
  s->debugref = LUA_NOREF;
  s->passive = 1; s->verify = 1; s->port = 21;
  s->timeout = -1;
  s->closed = 1;  /* until the handles exist */
  nl_ftpr_init(&s->fr); nl_buf_init(&s->last.text); nl_buf_init(&s->login.text);
  {
    int i;
    for (i = 0; i < NQUOTE; i++) nl_buf_init(&s->qr[i].text);
  }
  ftp_drive_open(L, s);
  s->closed = 0;
  return s;
}

static int l_session(lua_State *L) {
  ftp_sess *s;
  if (!lua_isnoneornil(L, 1)) luaL_checktype(L, 1, LUA_TTABLE);
  else { lua_settop(L, 0); lua_newtable(L); }
  s = sess_alloc(L);
  s->passive = opt_bool(L, 1, "passive", 1);
  s->verify = opt_bool(L, 1, "verify", 1);
  opt_str(L, 1, "cafile", &s->cafile);
  opt_str(L, 1, "acct", &s->acct);
  if (lua_getfield(L, 1, "tls") != LUA_TNIL) {
    const char *t = lua_tostring(L, -1);
    if (t && strcmp(t, "explicit") == 0) s->tls = TLS_EXPLICIT;
    else if (t && strcmp(t, "implicit") == 0) s->tls = TLS_IMPLICIT;
    else luaL_error(L, "bad option 'tls' (expected \"explicit\" or \"implicit\")");
  }
  lua_pop(L, 1);
  s->timeout = nl_opttimeout_field(L, 1, -1);
  lua_getfield(L, 1, "debug");
  set_debug(L, s, -1);
  lua_pop(L, 1);
  check_tls_mode(L, s);
  return 1;
}

/* s:fileno() / s:getfd() -> the control connection's descriptor, -1 when
 * there is none (LuaSocket's getfd answer).  For watching it in a loop of
 * one's own: curl owns what is read and written there. */
static int m_fileno(lua_State *L) {
  ftp_sess *s = ftp_check_sess(L);
  curl_socket_t fd = CURL_SOCKET_BAD;
  if (s->pre_fd >= 0) fd = s->pre_fd;
  else if (s->connected) fd = s->ctl_fd;
  lua_pushinteger(L, fd == CURL_SOCKET_BAD ? -1 : (lua_Integer)fd);
  return 1;
}

static int m_getwelcome(lua_State *L) {
  ftp_sess *s = ftp_check_sess(L);
  if (s->welcome) lua_pushstring(L, s->welcome);
  else lua_pushnil(L);
  return 1;
}

static int m_set_debuglevel(lua_State *L) {
  ftp_sess *s = ftp_check_sess(L);
  if (lua_isfunction(L, 2)) set_debug(L, s, 2);
  else s->debuglevel = (int)luaL_checkinteger(L, 2);
  return 0;
}

static int m_set_pasv(lua_State *L) {
  ftp_sess *s = ftp_check_sess(L);
  int old = s->passive;
  luaL_checkany(L, 2);
  s->passive = lua_toboolean(L, 2);
  if (s->tls != TLS_NONE && !s->passive && !ftp_curl_at_least(0x080000)) {
    s->passive = old;
    luaL_error(L, "set_pasv: active mode with TLS needs libcurl >= 8.0 (this is %s)",
               curl_version_info(CURLVERSION_NOW)->version);
  }
  return 0;
}

static int m_settimeout(lua_State *L) {
  ftp_sess *s = ftp_check_sess(L);
  s->timeout = nl_opttimeout(L, 2, -1);
  return 0;
}

/* ---- commands through CURLOPT_QUOTE ------------------------------------ */

static void setup_quote(ftp_sess *s) {
  curl_easy_setopt(s->easy, CURLOPT_NOBODY, 1L);
  curl_easy_setopt(s->easy, CURLOPT_QUOTE, s->op.qlist);
}

/* Runs cmds[0..n) (each prefixed with '*' so a 4xx/5xx keeps the
 * connection; the strings must stay on the Lua stack); finish then finds
 * each reply in s->qr[i] (code -1: none). */
static int run_quotes(lua_State *L, ftp_sess *s, const char **cmds, int n,
                      finish_fn finish, const char *what) {
  struct curl_slist *list = NULL;
  int i;
  for (i = 0; i < n; i++) {
    struct curl_slist *t;
    lua_pushfstring(L, "*%s", cmds[i]);
    t = curl_slist_append(list, lua_tostring(L, -1));
    lua_pop(L, 1);
    if (!t) { curl_slist_free_all(list); luaL_error(L, "out of memory"); }
    list = t;
  }
  ftp_op_clear(L, s);
  s->op.qlist = list;
  for (i = 0; i < n; i++) s->quote[i] = cmds[i];
  s->nquote = n;
  ftp_push_url(L, s, NULL, 1);
  return ftp_op_run(L, s, -1, setup_quote, finish, what);
}

static int push_qreply(lua_State *L, ftp_sess *s, int i, int need2xx) {
  reply *r = &s->qr[i];
  const char *what = ftp_what(s);
  if (r->code < 0)
    return nl_pushfailcode(L, "closed", "%s: no reply", what);
  if (r->code < 200) {
    /* a preliminary reply and nothing after it: the command's own reply
     * never came (drop_connection has dropped the connection) */
    lua_pushnil(L);
    lua_pushfstring(L, "%s: ", what);
    lua_pushlstring(L, nl_buf_head(&r->text), r->text.len);
    lua_pushliteral(L, " (and no final reply)");
    lua_concat(L, 3);
    lua_pushstring(L, r->code >= 100 ? "closed" : "protocol");
    return 3;
  }
  if (r->code >= 400 || r->code > 599 || (need2xx && r->code >= 300)) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: ", what);
    lua_pushlstring(L, nl_buf_head(&r->text), r->text.len);
    lua_concat(L, 2);
    if (r->code > 599) lua_pushliteral(L, "protocol");
    else lua_pushinteger(L, r->code);
    return 3;
  }
  lua_pushlstring(L, nl_buf_head(&r->text), r->text.len);
  return 1;
}

static const struct { const char *cmd, *use; } owned[] = {
  {"TYPE", "retrbinary/retrlines"}, {"PASV", "set_pasv"}, {"EPSV", "set_pasv"},
  {"PORT", "set_pasv"}, {"EPRT", "set_pasv"}, {"LPSV", "set_pasv"},
  {"LPRT", "set_pasv"}, {"REST", "the rest argument of retrbinary/storbinary"},
  {"RETR", "retrbinary or retrlines"}, {"STOR", "storbinary or storlines"},
  {"STOU", "storbinary"}, {"APPE", "storbinary with \"APPE name\""},
  {"LIST", "dir or retrlines(\"LIST\")"}, {"NLST", "nlst"}, {"MLSD", "mlsd"},
  {"ABOR", "abort"}, {"AUTH", "the tls option"}, {"PBSZ", "the tls option"},
  {"PROT", "the tls option"}, {"CCC", "the tls option"}, {"USER", "login"},
  {"PASS", "login"}, {"ACCT", "login"}, {"REIN", "login"}, {"QUIT", "quit"},
  {"CWD", "cwd"}, {"XCWD", "cwd"}, {"CDUP", "cwd(\"..\")"}, {"XCUP", "cwd(\"..\")"},
  {"MODE", "nothing (stream mode only)"}, {"STRU", "nothing (file structure only)"},
  {NULL, NULL}
};

/* sendcmd/voidcmd: refuse commands whose state curl owns. */
static void check_owned(lua_State *L, const char *cmd, const char *fname) {
  char verb[8];
  size_t i = 0;
  int k;
  while (cmd[i] && cmd[i] != ' ' && i < sizeof verb - 1) {
    verb[i] = cmd[i] >= 'a' && cmd[i] <= 'z' ? (char)(cmd[i] - 32) : cmd[i];
    i++;
  }
  verb[i] = '\0';
  if (cmd[i] != '\0' && cmd[i] != ' ') return;
  for (k = 0; owned[k].cmd; k++)
    if (strcmp(verb, owned[k].cmd) == 0)
      luaL_error(L, "bad argument #1 to '%s' (%s is managed by the session: use %s)",
                 fname, owned[k].cmd, owned[k].use);
}

static int finish_sendcmd(lua_State *L, ftp_sess *s, CURLcode rc) {
  if (rc != CURLE_OK) return ftp_error(L, s, rc, NULL, s->op.what);
  return push_qreply(L, s, s->op.k, s->op.need2xx);
}

static int do_sendcmd(lua_State *L, int need2xx, const char *fname) {
  ftp_sess *s = ftp_check_sess(L);
  size_t n;
  const char *cmd = luaL_checklstring(L, 2, &n);
  const char *cmds[2];
  int k = 0;
  if (strlen(cmd) != n || strpbrk(cmd, "\r\n"))
    luaL_error(L, "bad argument #1 to '%s' (CR, LF or NUL in command)", fname);
  luaL_argcheck(L, n > 0, 2, "empty command");
  check_owned(L, cmd, fname);
  ftp_check_logged(L, s);
  /* raw commands with relative paths mean the client-side cwd */
  if (s->cwd && s->entry && (strcmp(s->cwd, s->entry) != 0 ||
      !s->server_cwd || strcmp(s->server_cwd, s->cwd) != 0)) {
    lua_pushfstring(L, "CWD %s", s->cwd);
    cmds[k++] = lua_tostring(L, -1);
  }
  cmds[k++] = cmd;
  s->op.k = k - 1;
  s->op.need2xx = need2xx;
  lua_pushfstring(L, "%s %s", fname, cmd);
  ftp_setstr(&s->label, lua_tostring(L, -1));
  lua_pop(L, 1);
  return run_quotes(L, s, cmds, k, finish_sendcmd, fname);
}

static int m_sendcmd(lua_State *L) { return do_sendcmd(L, 0, "sendcmd"); }

static int m_voidcmd(lua_State *L) { return do_sendcmd(L, 1, "voidcmd"); }

static int finish_cmds(lua_State *L, ftp_sess *s, CURLcode rc);

static int finish_cwd(lua_State *L, ftp_sess *s, CURLcode rc);

/* s:_cmds(cmd...) and s:_ask(label, cmd...) -> array of {code, text}
 * (internal: no owned check); label names what failed in messages. */
static int do_cmds(lua_State *L, int first) {
  ftp_sess *s = ftp_check_sess(L);
  int n = lua_gettop(L) - first + 1, i;
  const char *cmds[NQUOTE];
  const char *label = first > 2 ? luaL_checkstring(L, 2) : "ftp";
  luaL_argcheck(L, n >= 1 && n <= NQUOTE, first, "1 to 4 commands");
  for (i = 0; i < n; i++) {
    size_t l;
    cmds[i] = luaL_checklstring(L, i + first, &l);
    if (strlen(cmds[i]) != l || strpbrk(cmds[i], "\r\n"))
      luaL_error(L, "CR, LF or NUL in command or path");
  }
  ftp_check_logged(L, s);
  s->op.k = n;
  ftp_setstr(&s->label, label);
  return run_quotes(L, s, cmds, n, finish_cmds, "ftp");
}

static int m_cmds(lua_State *L) { return do_cmds(L, 2); }

static int m_ask(lua_State *L) { return do_cmds(L, 3); }

static int finish_cmds(lua_State *L, ftp_sess *s, CURLcode rc) {
  int n = s->op.k, i;
  if (rc != CURLE_OK) return ftp_error(L, s, rc, NULL, "ftp");
  lua_createtable(L, n, 0);
  for (i = 0; i < n; i++) {
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, s->qr[i].code);
    lua_setfield(L, -2, "code");
    lua_pushlstring(L, nl_buf_head(&s->qr[i].text), s->qr[i].text.len);
    lua_setfield(L, -2, "text");
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* s:_abspath(p) -> the absolute path p means (internal). */
static int m_abspath(lua_State *L) {
  ftp_sess *s = ftp_check_sess(L);
  ftp_check_clean(L, 2, "path");
  ftp_push_abspath(L, s, lua_tostring(L, 2));
  return 1;
}

/* Parses the quoted path of a 257 reply into a pushed string, or nil. */
static void push_257(lua_State *L, const char *t, size_t n) {
  const char *q = memchr(t, '"', n);
  luaL_Buffer b;
  if (!q) { lua_pushnil(L); return; }
  luaL_buffinit(L, &b);
  for (q++; q < t + n; q++) {
    if (*q == '"') {
      if (q + 1 < t + n && q[1] == '"') { luaL_addchar(&b, '"'); q++; }
      else break;
    } else luaL_addchar(&b, *q);
  }
  luaL_pushresult(&b);
}

/* s:cwd(path) -> reply text.  The directory is checked with CWD and its
 * canonical name taken from PWD; later paths are built from it. */
static int m_cwd(lua_State *L) {
  ftp_sess *s = ftp_check_sess(L);
  const char *abs, *cmds[2];
  ftp_check_clean(L, 2, "path");
  ftp_check_logged(L, s);
  abs = ftp_push_abspath(L, s, lua_tostring(L, 2));
  s->op.arg = lua_gettop(L);
  lua_pushfstring(L, "CWD %s", abs);
  cmds[0] = lua_tostring(L, -1);
  cmds[1] = "PWD";
  lua_pushfstring(L, "cwd %s", lua_tostring(L, 2));
  ftp_setstr(&s->label, lua_tostring(L, -1));
  lua_pop(L, 1);
  return run_quotes(L, s, cmds, 2, finish_cwd, "cwd");
}

static int finish_cwd(lua_State *L, ftp_sess *s, CURLcode rc) {
  const char *abs = lua_tostring(L, s->op.arg);
  int n;
  if (rc != CURLE_OK) return ftp_error(L, s, rc, NULL, "cwd");
  n = push_qreply(L, s, 0, 1);
  if (n != 1) return n;
  if (s->qr[1].code == 257) {
    push_257(L, nl_buf_head(&s->qr[1].text), s->qr[1].text.len);
    if (lua_isstring(L, -1) && lua_tostring(L, -1)[0] == '/') abs = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  ftp_setstr(&s->cwd, abs);
  return 1;
}

/* s:pwd() -> the client-side current directory (no round trip). */
static int m_pwd(lua_State *L) {
  ftp_sess *s = ftp_check_sess(L);
  ftp_check_logged(L, s);
  lua_pushstring(L, s->cwd ? s->cwd : "/");
  return 1;
}

/* s:abort(): inside a transfer callback, ends the transfer (the control
 * connection is dropped; the next call reconnects).  Outside, nothing. */
static int m_abort(lua_State *L) {
  ftp_sess *s = ftp_check_sess(L);
  if (s->busy) s->aborting = 1;
  lua_pushboolean(L, 1);
  return 1;
}

static int finish_quit(lua_State *L, ftp_sess *s, CURLcode rc);

/* s:quit() -> "221 ..." reply; QUIT, then the session is closed. */
static int m_quit(lua_State *L) {
  ftp_sess *s = ftp_check_sess(L);
  const char *cmds[1] = {"QUIT"};
  ftp_check_idle(L, s);
  if (s->logged) {
    ftp_setstr(&s->label, "quit");
    return run_quotes(L, s, cmds, 1, finish_quit, "quit");
  }
  return finish_quit(L, s, CURLE_OK);
}

static int finish_quit(lua_State *L, ftp_sess *s, CURLcode rc) {
  if (rc == CURLE_OK && s->logged && s->qr[0].code > 0)
    lua_pushlstring(L, nl_buf_head(&s->qr[0].text), s->qr[0].text.len);
  else lua_pushliteral(L, "221 Goodbye");
  s->L = L;
  sess_free(s, 0);
  return 1;
}

/* s:_info() -> table with reconnects, logins, entry, tls, passive
 * (internal, for helpers and specs). */
/* s:_clone() -> a session with the same server, login and settings, as
 * if its connection had dropped: its first call connects and logs in
 * (mirror's workers inside netlua.run, one connection each).  No debug
 * output: that goes to the original's callback only.  Only settings are
 * copied, so a session busy in another task may be cloned. */
static int m_clone(lua_State *L) {
  ftp_sess *s = ftp_check_sess(L), *c;
  if (!s->connected || !s->logged) luaL_error(L, "ftp session is not logged in");
  c = sess_alloc(L);
  c->host = ftp_dupstr(s->host); c->port = s->port;
  c->user = ftp_dupstr(s->user); c->pass = ftp_dupstr(s->pass);
  c->acct = ftp_dupstr(s->acct); c->cafile = ftp_dupstr(s->cafile);
  c->timeout = s->timeout; c->passive = s->passive;
  c->tls = s->tls; c->verify = s->verify;
  c->welcome = ftp_dupstr(s->welcome); c->entry = ftp_dupstr(s->entry);
  c->cwd = ftp_dupstr(s->cwd); c->server_cwd = ftp_dupstr(s->entry);
  if ((s->host && !c->host) || (s->user && !c->user) || (s->pass && !c->pass) ||
      (s->acct && !c->acct) || (s->cafile && !c->cafile) ||
      (s->entry && (!c->entry || !c->server_cwd)) || (s->cwd && !c->cwd))
    return luaL_error(L, "not enough memory");
  c->connected = c->logged = 1;
  return 1;
}

/* s:_received() -> bytes of the last download, the size its 150 reply
 * announced (nil when it named none): for helpers that can check against
 * a size they know otherwise (SIZE, a listing); and the modification
 * time (epoch seconds) its MDTM gave, when one was asked and answered. */
static int m_received(lua_State *L) {
  ftp_sess *s = ftp_check_sess(L);
  if (s->rx_moved < 0) lua_pushnil(L);
  else lua_pushinteger(L, (lua_Integer)s->rx_moved);
  if (s->rx_announced < 0) lua_pushnil(L);
  else lua_pushinteger(L, (lua_Integer)s->rx_announced);
  if (s->rx_filetime < 0) lua_pushnil(L);
  else lua_pushinteger(L, (lua_Integer)s->rx_filetime);
  return 3;
}

static int m_info(lua_State *L) {
  ftp_sess *s = ftp_check_sess(L);
  lua_createtable(L, 0, 8);
  lua_pushinteger(L, s->reconnects); lua_setfield(L, -2, "reconnects");
  lua_pushinteger(L, s->logins); lua_setfield(L, -2, "logins");
  if (s->entry) { lua_pushstring(L, s->entry); lua_setfield(L, -2, "entry"); }
  if (s->host) { lua_pushstring(L, s->host); lua_setfield(L, -2, "host"); }
  lua_pushinteger(L, s->port); lua_setfield(L, -2, "port");
  lua_pushboolean(L, s->passive); lua_setfield(L, -2, "passive");
  lua_pushboolean(L, s->logged); lua_setfield(L, -2, "logged");
  lua_pushboolean(L, s->connected); lua_setfield(L, -2, "connected");
  lua_pushstring(L, s->tls == TLS_NONE ? "none" : s->tls == TLS_EXPLICIT ? "explicit" : "implicit");
  lua_setfield(L, -2, "tls");
  lua_pushnumber(L, s->timeout); lua_setfield(L, -2, "timeout");
  return 1;
}

static int l_curl_version(lua_State *L) {
  lua_pushstring(L, curl_version_info(CURLVERSION_NOW)->version);
  return 1;
}

static const luaL_Reg methods[] = {
  {"connect", nl_ftp_connect}, {"login", nl_ftp_login}, {"getwelcome", m_getwelcome},
  {"fileno", m_fileno}, {"getfd", m_fileno},
  {"set_debuglevel", m_set_debuglevel}, {"set_pasv", m_set_pasv},
  {"settimeout", m_settimeout},
  {"sendcmd", m_sendcmd}, {"voidcmd", m_voidcmd},
  {"retrbinary", nl_ftp_retrbinary}, {"retrlines", nl_ftp_retrlines},
  {"storbinary", nl_ftp_storbinary}, {"storlines", nl_ftp_storlines},
  {"cwd", m_cwd}, {"pwd", m_pwd}, {"size", nl_ftp_size}, {"abort", m_abort},
  {"quit", m_quit}, {"close", m_close},
  {"_cmds", m_cmds}, {"_ask", m_ask}, {"_received", m_received}, {"_abspath", m_abspath}, {"_info", m_info},
  {"_clone", m_clone},
  {NULL, NULL}
};

static const nl_class ftp_class = {
  FTP, methods, NULL, m_gc, m_close, m_tostring, 1};

void nl_open_ftp(lua_State *L) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  nl_class_make(L, &ftp_class, 0);
  lua_pushcfunction(L, l_session);
  lua_setfield(L, -2, "ftp_session");
  lua_pushcfunction(L, l_curl_version);
  lua_setfield(L, -2, "ftp_curl_version");
}
