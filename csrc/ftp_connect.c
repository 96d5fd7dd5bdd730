/*
 * ftp_connect.c - connect and login: reaching the server (every address
 * the name has, waits that pend inside netlua.run), peeking at its whole
 * greeting through the reply framer while leaving it unread for libcurl,
 * and the login operation that hands libcurl the connected socket.
 * What does not live here: running the login operation (ftp_drive.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ftp.h"

/* ---- the pre-connected control socket (connect before login) ---------- */

curl_socket_t ftp_on_opensocket(void *ud, curlsocktype purpose,
                                   struct curl_sockaddr *a) {
  ftp_sess *s = ud;
  if (purpose == CURLSOCKTYPE_IPCXN && s->pre_fd >= 0) {
    int fd = s->pre_fd;
    s->pre_fd = -1;
    return fd;
  }
  return socket(a->family, a->socktype, a->protocol);
}

int ftp_on_sockopt_pre(void *ud, curl_socket_t fd, curlsocktype purpose) {
  (void)ud; (void)fd;
  /* the one socket handed over by ftp_on_opensocket is connected already */
  return purpose == CURLSOCKTYPE_IPCXN ? CURL_SOCKOPT_ALREADY_CONNECTED
                                       : CURL_SOCKOPT_OK;
}

/* Ends a connect: state dropped, the fd (if any) closed unless kept. */
void ftp_connect_end(ftp_sess *s, int keep) {
  if (s->cn_ai) { nl_ai_free(s->cn_ai); s->cn_ai = s->cn_cur = NULL; }
  if (s->cn_fd >= 0 && !keep) close(s->cn_fd);
  s->cn_fd = -1;
  s->cn_phase = 0;
  s->busy = 0;
  nl_coop_end(&s->co);
}

/* Connecting: walks the address list kept in s (a wait may pend; the
 * connect comes back through nl_ftp_connect).  NL_OK with s->cn_fd connected. */
static int connect_addrs(ftp_sess *s, const nl_deadline *d) {
  int err = s->cn_err;
  for (; s->cn_cur != NULL; s->cn_cur = s->cn_cur->ai_next) {
    struct addrinfo *ai = s->cn_cur;
    nl_addr_format(ai->ai_addr, s->cn_where, sizeof s->cn_where);
    if (s->cn_fd < 0) {
      s->cn_fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                        ai->ai_protocol);
      if (s->cn_fd < 0) { s->cn_err = err = errno; continue; }
      err = connect(s->cn_fd, ai->ai_addr, ai->ai_addrlen) == 0 ? NL_OK : errno;
    } else err = EINPROGRESS;  /* resumed after a wait */
    if (err == EINPROGRESS) err = nl_connect_wait(s->cn_fd, &s->co, d);
    if (err == NL_OK || err == NL_PENDING) return err;
    close(s->cn_fd);
    s->cn_fd = -1;
    s->cn_err = err;
    if (err == NL_TIMEOUT) return err;
  }
  return err;
}

/* Looks at the greeting peeked so far: 1 when complete (welcome set), 0
 * when more is due, or pushes nil, message, code and returns -1. */
static int greeting(lua_State *L, ftp_sess *s, const char *buf, size_t have,
                    int full) {
  nl_ftpr fr;
  size_t used;
  int ev, n = -1;
  nl_ftpr_init(&fr);
  ev = nl_ftpr_feed(&fr, buf, have, &used);
  if (ev == NL_FTPR_MORE && !full) n = 0;
  else if (ev == NL_FTPR_MORE || ev == NL_FTPR_LONG)
    nl_pushfailcode(L, "limit", "connect %s: greeting longer than %d bytes",
                    s->cn_where, NL_FTPR_MAX);
  else if (ev == NL_FTPR_NOTFTP)
    nl_pushfailcode(L, "protocol", "connect %s: not an FTP reply: %s",
                    s->cn_where, fr.bad);
  else if (fr.code < 200 || fr.code >= 400) {
    lua_pushnil(L);
    lua_pushfstring(L, "connect %s: ", s->cn_where);
    lua_pushlstring(L, fr.text, fr.len);
    lua_concat(L, 2);
    lua_pushinteger(L, fr.code);
  } else {
    ftp_setmem(&s->welcome, fr.text, fr.len);
    n = 1;
  }
  nl_ftpr_free(&fr);
  return n;
}

/* The rest of connect: reach the server, then wait for its whole greeting
 * (peeked, left unread for curl, which reads it again at login). */
static int connect_step(lua_State *L, ftp_sess *s, const nl_deadline *d) {
  char buf[NL_FTPR_MAX];
  int err;
  if (s->cn_phase == 1) {
    err = connect_addrs(s, d);
    if (err == NL_PENDING) return nl_coop_pend(L, &s->co);
    if (err != NL_OK) {
      ftp_connect_end(s, 0);
      return nl_pushfail(L, err, "connect %s", s->cn_where);
    }
    nl_ai_free(s->cn_ai);
    s->cn_ai = s->cn_cur = NULL;
    s->cn_phase = 2;
    if (s->tls == TLS_IMPLICIT) {
      /* nothing to read in clear: curl takes the socket over at login */
      s->pre_fd = s->cn_fd;
      ftp_connect_end(s, 1);
      s->connected = 1;
      lua_pushliteral(L, "");
      return 1;
    }
  }
  for (;;) {
    /* look first: after a wait we come back here with the data there */
    ssize_t r = recv(s->cn_fd, buf, sizeof buf, MSG_PEEK);
    int g;
    if (r == 0) {
      ftp_connect_end(s, 0);
      return nl_pushfail(L, NL_CLOSED, "connect %s: greeting", s->cn_where);
    }
    if (r < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        int w = nl_coop_wait(&s->co, s->cn_fd, NL_WAIT_READ, d);
        if (w == NL_PENDING) return nl_coop_pend(L, &s->co);
        if (w != NL_OK) {
          ftp_connect_end(s, 0);
          return nl_pushfail(L, w, "connect %s: greeting", s->cn_where);
        }
        continue;
      }
      if (errno == EINTR) continue;
      err = errno;
      ftp_connect_end(s, 0);
      return nl_pushfail(L, err, "connect %s: greeting", s->cn_where);
    }
    /* a greeting that does not fit what we may peek is refused: curl
     * would read it whole, we could not show it whole */
    g = greeting(L, s, buf, (size_t)r, (size_t)r == sizeof buf);
    if (g < 0) { ftp_connect_end(s, 0); return 3; }
    if (g > 0) break;
    {
      /* part of the greeting: peeking again at once would find the same */
      nl_deadline tiny;
      nl_deadline_start(&tiny, 0.01);
      if (d->at >= 0 && tiny.at > d->at) tiny = *d;
      if (nl_coop_wait(&s->co, -1, 0, &tiny) == NL_PENDING)
        return nl_coop_pend(L, &s->co);
      if (nl_deadline_passed(d)) {
        ftp_connect_end(s, 0);
        return nl_pushfail(L, NL_TIMEOUT, "connect %s: greeting", s->cn_where);
      }
    }
  }
  lua_pushstring(L, s->welcome);
  s->pre_fd = s->cn_fd;
  ftp_connect_end(s, 1);
  s->connected = 1;
  return 1;
}

/* s:connect(host, port, timeout) -> welcome.  Opens the control connection
 * and peeks at the greeting (left unread for curl, who takes the socket
 * over at login).  Implicit TLS hides the greeting until login.  Inside
 * netlua.run the name lookup and the waits pend; the timeout bounds
 * both. */
int nl_ftp_connect(lua_State *L) {
  ftp_sess *s = luaL_checkudata(L, 1, FTP);
  const char *host;
  int port, g, w;
  nl_deadline d, fresh;
  char serv[16];
  struct addrinfo hints, *res = NULL;
  nl_offload *r;
  if (nl_coop_closed(L, &s->co))  /* by another task, while we waited */
    return nl_pushfail(L, NL_ABORTED, "connect %s", s->cn_where);
  ftp_check_sess(L);
  r = NULL;
  if (nl_coop_resumes(L, &s->co)) {  /* after a wait: the stack is back */
    nl_coop_begin(L, &s->co, NULL, 0, &d);
    if (s->cn_phase) return connect_step(L, s, &d);
    r = nl_offload_top(L);  /* the lookup */
  }
  host = ftp_check_clean(L, 2, "host");
  if (r == NULL) {
    ftp_check_idle(L, s);
    port = s->tls == TLS_IMPLICIT ? 990 : 21;
    if (!lua_isnoneornil(L, 3)) port = nl_checkport(L, 3);
    luaL_argcheck(L, port > 0, 3, "port 0");
    if (!lua_isnoneornil(L, 4)) s->timeout = nl_opttimeout(L, 4, s->timeout);
    if (s->pre_fd >= 0) { close(s->pre_fd); s->pre_fd = -1; }
    ftp_setstr(&s->host, host);
    s->port = port;
    s->connected = 0; s->logged = 0;
    ftp_setstr(&s->welcome, NULL);
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    snprintf(serv, sizeof serv, "%d", port);
    snprintf(s->cn_where, sizeof s->cn_where, "%s:%d", host, port);
    lua_settop(L, 4);
    s->busy = 1;  /* the lookup may pend: no other call may start */
    r = nl_resolve_start(L, host, serv, &hints, NULL, s->timeout);
    /* the lookup waits as the session's operation: close() wakes it */
    nl_coop_begin(L, &s->co, NULL, s->timeout, &fresh);
  }
  s->rs_fd = nl_offload_fd(r);
  w = nl_resolve_wait(r, &s->co, &res, &g, &d);
  if (w == NL_PENDING) return nl_coop_pend(L, &s->co);
  s->rs_fd = -1;
  if (w != NL_OK || g != 0) {
    s->busy = 0;
    if (w != NL_OK)
      return nl_pushfail(L, w, "connect %s: name lookup", s->cn_where);
    return nl_pushfailcode(L, "resolve", "connect %s: cannot resolve", host);
  }
  s->cn_ai = s->cn_cur = nl_resolve_take(L, r);  /* owned by s from here */
  s->cn_fd = -1;
  s->cn_err = ECONNREFUSED;
  s->cn_phase = 1;
  nl_coop_begin(L, &s->co, NULL, s->timeout, &fresh);
  s->co.dl = d;  /* what the lookup left of the timeout */
  return connect_step(L, s, &d);
}

static void setup_nobody(ftp_sess *s) {
  curl_easy_setopt(s->easy, CURLOPT_NOBODY, 1L);
}

static int finish_login(lua_State *L, ftp_sess *s, CURLcode rc);

/* s:login(user, passwd, acct) -> reply text.  Connect and login are one
 * curl step: NOBODY on the server's root sends USER, PASS, PWD. */
int nl_ftp_login(lua_State *L) {
  ftp_sess *s = ftp_check_sess(L);
  const char *user = luaL_optstring(L, 2, "anonymous");
  const char *pass = luaL_optstring(L, 3, NULL);
  ftp_check_idle(L, s);
  if (!s->connected) luaL_error(L, "ftp session is not connected (call connect)");
  if (!lua_isnoneornil(L, 2)) ftp_check_clean(L, 2, "user");
  if (pass) ftp_check_clean(L, 3, "password");
  else pass = strcmp(user, "anonymous") == 0 ? "anonymous@" : "";
  if (!lua_isnoneornil(L, 4)) ftp_setstr(&s->acct, ftp_check_clean(L, 4, "acct"));
  ftp_setstr(&s->user, user);
  ftp_setstr(&s->pass, pass);
  s->logged = 0;
  s->nquote = 0;
  ftp_push_url(L, s, NULL, 1);
  ftp_setstr(&s->label, "login");
  return ftp_op_run(L, s, -1, setup_nobody, finish_login, "login");
}

static int finish_login(lua_State *L, ftp_sess *s, CURLcode rc) {
  char *ep = NULL;
  if (rc != CURLE_OK) {
    /* the connection is gone either way: the next login starts afresh */
    return ftp_error(L, s, rc, NULL, "login");
  }
  s->logged = 1;
  if (curl_easy_getinfo(s->easy, CURLINFO_FTP_ENTRY_PATH, &ep) == CURLE_OK && ep && ep[0] == '/')
    ftp_setstr(&s->entry, ep);
  else if (!s->entry) ftp_setstr(&s->entry, "/");
  ftp_setstr(&s->cwd, s->entry);
  ftp_setstr(&s->server_cwd, s->entry);
  lua_pushlstring(L, nl_buf_head(&s->login.text), s->login.text.len);
  return 1;
}
