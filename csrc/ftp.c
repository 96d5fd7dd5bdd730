/*
 * ftp.c - the FTP/FTPS session object (netlua.ftp) on one libcurl easy
 * handle driven by a private multi handle.
 *
 * What lives here: option handling, the client-side current directory and
 * URL building, reply reassembly from curl's debug stream (with PASS
 * masked, and a stop at the first line that cannot be FTP, which curl
 * itself would wait on until the timeout), sendcmd/voidcmd through CURLOPT_QUOTE, the transfers (retr*,
 * stor*, size) with their Lua callbacks run under lua_pcall, the mapping
 * of CURLcode to netlua's error codes, and a parallel fetcher for mirror.
 * What does not: listing parsers, get/put/list/mirror and the other thin
 * helpers, which are Lua (lua/netlua/ftp.lua).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>
#ifdef __linux__
#include <sys/epoll.h>
#endif

#include "netlua.h"
#include "ftp_reply.h"

#define FTP "netlua.ftp"
#define NQUOTE 4
#define BIGBUF (512 * 1024)     /* CURLOPT_BUFFERSIZE for downloads */
#define NWATCH 4

enum { TLS_NONE, TLS_EXPLICIT, TLS_IMPLICIT };

/* One transfer in progress: where data goes to or comes from. */
typedef struct xfer {
  struct ftp_sess *s;
  int upload, lines, text;
  int cbref;               /* Lua callback or LUA_NOREF */
  FILE *fp;                /* download target / upload source (Lua file) */
  size_t blocksize;
  nl_buf acc;              /* download data not yet handed to Lua */
  /* upload source */
  const char *str; size_t slen, spos;   /* string source */
  int fnref;               /* chunk function source */
  int chunkref; const char *chunk; size_t clen, cpos;
  int eof, pending_cr, emitted; char last;
  curl_off_t moved;        /* payload bytes seen either way */
  long long announced;     /* the size a 150 reply named, or -1 */
  int failed;              /* a callback failed: errref holds why */
  int errref;
} xfer;

typedef struct reply {
  int code;
  nl_buf text;
} reply;

struct ftp_sess;
/* What a method does with the result once its operation has run. */
typedef int (*finish_fn)(lua_State *L, struct ftp_sess *s, CURLcode rc);
typedef void (*setup_fn)(struct ftp_sess *s);

/* Transfer options beyond the xfer itself. */
typedef struct xsetup {
  int nobody, dirlist, append;
  const char *custom;      /* a static string */
  curl_off_t rest, insize;
} xsetup;

/* The operation in progress.  Inside netlua.run the method's C frame is
 * gone after each wait (the coroutine yields), so everything the
 * operation needs later lives here or on the Lua stack, which the
 * scheduler keeps: strings (URL, commands, paths) stay there. */
typedef struct op_state {
  int active;              /* started, not yet finished */
  int added;               /* the easy handle is on the multi */
  int attempt, was_logged; /* the one retry on a dead reused connection */
  int url;                 /* stack index of the URL */
  nl_deadline dl;          /* the operation's deadline */
  setup_fn setup;          /* method-specific options */
  xsetup xo;
  struct curl_slist *qlist;/* CURLOPT_QUOTE list, freed at the end */
  int use_x;               /* x below is this operation's transfer */
  xfer x;
  finish_fn finish;
  const char *what;        /* method name for messages (static) */
  int k, need2xx;          /* sendcmd: reply index, 2xx wanted */
  int arg;                 /* stack index of a finish argument (cwd) */
} op_state;

typedef struct ftp_sess {
  CURL *easy;
  CURLM *multi;
  int closed, busy, aborting;
  lua_State *L;            /* valid while a curl call may call back */
  char *host; int port;
  char *user, *pass, *acct;
  double timeout;
  int passive, tls, verify;
  char *cafile;
  int debuglevel, debugref;
  int connected, logged;
  char *welcome, *entry, *cwd, *server_cwd;
  int pre_fd;              /* connected socket with the greeting unread */
  curl_socket_t ctl_fd;    /* curl's control connection, while it is open */
  int rs_fd;               /* what connect's name lookup waits on, or -1 */
  int reconnects, logins;
  /* reply reassembly from the debug stream */
  nl_ftpr fr;              /* the framer, and the reply being assembled */
  reply last;              /* last complete reply */
  int not_ftp;             /* a line that cannot start a reply arrived */
  /* which replies belong to which command, in this operation: each
   * command sent wants one final (2xx-5xx) reply; a connection where the
   * two counts differ at the end is not one whose next reply we can
   * attribute, so it is dropped */
  int op_sent, op_finals;
  int got421;              /* the server said it is closing the connection */
  int fresh;               /* the next operation must open a new connection */
  char *label;             /* what failed, for messages ("get f"), or NULL */
  int paused;              /* on_write paused curl to let tasks run */
  char bad_line[100];      /* that line, quoted and cut for messages */
  /* the current operation */
  const char *quote[NQUOTE]; int nquote;
  int qwait;               /* index of the quote awaiting its reply */
  reply qr[NQUOTE];
  int op_login;            /* a USER went out during this operation */
  int after_auth;
  int login_cmd;           /* the last command sent was USER/PASS/ACCT */
  reply login;             /* the reply that ended the login */
  char *op_cwd;            /* CWD target awaiting its reply */
  xfer *x;
  /* waiting: curl tells which sockets it wants (CURLMOPT_SOCKETFUNCTION)
   * and when to call it back (curl_multi_timeout); the sockets go in one epoll
   * set, whose descriptor is what netlua.run or nl_wait waits for */
  int epfd;
  int wfd[NWATCH], wev[NWATCH], nw;  /* the sockets curl wants watched */
  nl_coop co;              /* the operation across yields (netlua.run) */
  /* connect in progress (its waits may yield too) */
  int cn_phase;            /* 0 none, 1 connecting, 2 reading the greeting */
  int cn_fd, cn_err;
  struct addrinfo *cn_ai, *cn_cur;
  char cn_where[300];
  op_state op;
} ftp_sess;

/* ---- small helpers ----------------------------------------------------- */

static char *dupstr(const char *p) {
  char *q;
  if (!p) return NULL;
  q = malloc(strlen(p) + 1);
  if (q) strcpy(q, p);
  return q;
}

static void setstr(char **dst, const char *src) {
  free(*dst);
  *dst = dupstr(src);
}

static void setmem(char **dst, const char *src, size_t n) {
  free(*dst);
  *dst = malloc(n + 1);
  if (*dst) { memcpy(*dst, src, n); (*dst)[n] = '\0'; }
}

/* Raises when the string argument holds CR, LF or NUL: they would
 * smuggle extra commands onto the control connection. */
static const char *check_clean(lua_State *L, int arg, const char *what) {
  size_t n;
  const char *p = luaL_checklstring(L, arg, &n);
  if (strlen(p) != n || strpbrk(p, "\r\n")) {
    lua_pushfstring(L, "CR, LF or NUL in %s", what);
    luaL_argerror(L, arg, lua_tostring(L, -1));
  }
  return p;
}

static ftp_sess *check_sess(lua_State *L) {
  ftp_sess *s = luaL_checkudata(L, 1, FTP);
  if (s->closed) luaL_error(L, "attempt to use a closed ftp session");
  return s;
}

static void check_idle(lua_State *L, ftp_sess *s) {
  if (s->busy) luaL_error(L, "ftp session is busy (called from a callback?)");
}

static void check_logged(lua_State *L, ftp_sess *s) {
  check_idle(L, s);
  if (!s->connected) luaL_error(L, "ftp session is not connected (call connect)");
  if (!s->logged) luaL_error(L, "ftp session is not logged in (call login)");
}

/* Joins p to the client-side cwd and removes ".", ".." and double
 * slashes; pushes the absolute result. */
static const char *push_abspath(lua_State *L, ftp_sess *s, const char *p) {
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
static const char *push_url(lua_State *L, ftp_sess *s, const char *abs,
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

/* ---- debug stream: commands out, reply lines in ------------------------ */

static void debug_print(ftp_sess *s, const char *tag, const char *p,
                        size_t n) {
  lua_State *L = s->L;
  if (s->debuglevel <= 0) return;
  if (s->debugref != LUA_NOREF && L) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->debugref);
    lua_pushfstring(L, "*%s* ", tag);
    lua_pushlstring(L, p, n);
    lua_concat(L, 2);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) lua_pop(L, 1);  /* ignored */
  } else {
    fprintf(stderr, "*%s* '%.*s'\n", tag, (int)n, p);
  }
}

static void reply_set(reply *r, int code, const char *t, size_t n) {
  r->code = code;
  r->text.len = 0; r->text.start = 0;
  nl_buf_append(&r->text, t, n);
}

/* A complete reply arrived: remember it, pair it with its command and
 * give it to whoever waits. */
static void reply_done(ftp_sess *s) {
  int code = s->fr.code;
  const char *t = s->fr.text ? s->fr.text : "";
  size_t n = s->fr.len;
  reply_set(&s->last, code, t, n);
  if (s->login_cmd) reply_set(&s->login, code, t, n);
  debug_print(s, "resp", t, n);
  if (code == 421) s->got421 = 1;
  if (code >= 100 && code < 200) {
    /* preliminary: the command's own reply is still to come */
    if (s->x && !s->x->upload && !s->x->text && s->x->announced < 0)
      s->x->announced = nl_ftpr_announced(t, n);
  } else if (s->op_sent > 0) {
    s->op_finals++;  /* before any command: a greeting */
  }
  if (s->qwait >= 0) {
    reply_set(&s->qr[s->qwait], code, t, n);
    if (code < 100 || code >= 200) s->qwait = -1;
  }
  if (s->op_cwd && (code < 100 || code >= 200)) {
    if (code == 250) setstr(&s->server_cwd, s->op_cwd);
    free(s->op_cwd); s->op_cwd = NULL;
  }
}

/* One reply line (without CRLF) from curl's debug stream. */
static void reply_line(ftp_sess *s, const char *p, size_t n) {
  int ev = nl_ftpr_line(&s->fr, p, n);
  if (ev == NL_FTPR_NOTFTP && !s->not_ftp) {
    /* drive() stops the operation: curl would wait for its timeout */
    s->not_ftp = 1;
    memcpy(s->bad_line, s->fr.bad, sizeof s->bad_line);
  }
  if (ev != NL_FTPR_MORE) reply_done(s);
}

static void command_out(ftp_sess *s, const char *p, size_t n) {
  int i;
  s->op_sent++;
  s->login_cmd = n >= 5 && (strncasecmp(p, "USER ", 5) == 0 ||
      strncasecmp(p, "PASS ", 5) == 0 || strncasecmp(p, "ACCT ", 5) == 0);
  if (n >= 5 && strncasecmp(p, "PASS ", 5) == 0) {
    debug_print(s, "cmd", "PASS ****", 9);
  } else {
    debug_print(s, "cmd", p, n);
  }
  if (n >= 5 && strncasecmp(p, "AUTH ", 5) == 0) {
    /* the reply before the first command is the greeting */
    setmem(&s->welcome, nl_buf_head(&s->last.text), s->last.text.len);
    s->after_auth = 1;
  } else if (n >= 5 && strncasecmp(p, "USER ", 5) == 0) {
    if (!s->after_auth)
      setmem(&s->welcome, nl_buf_head(&s->last.text), s->last.text.len);
    s->after_auth = 0;
    s->op_login = 1;
    s->logins++;
    if (s->logged) s->reconnects++;
    setstr(&s->server_cwd, s->entry);
  }
  for (i = 0; i < s->nquote; i++) {
    if (strlen(s->quote[i]) == n && memcmp(s->quote[i], p, n) == 0) {
      s->qwait = i;
      if (n > 4 && strncasecmp(p, "CWD ", 4) == 0) setmem(&s->op_cwd, p + 4, n - 4);
      break;
    }
  }
}

static int on_debug(CURL *h, curl_infotype type, char *p, size_t n,
                    void *ud) {
  ftp_sess *s = ud;
  (void)h;
  if (type == CURLINFO_HEADER_IN || type == CURLINFO_HEADER_OUT) {
    /* each call carries whole lines here; split to be safe */
    while (n > 0) {
      char *e = memchr(p, '\n', n);
      size_t len = e ? (size_t)(e - p) : n, used = e ? len + 1 : n;
      size_t l = len;
      if (l > 0 && p[l - 1] == '\r') l--;
      if (type == CURLINFO_HEADER_IN) reply_line(s, p, l);
      else command_out(s, p, l);
      p += used; n -= used;
    }
  } else if (type == CURLINFO_TEXT && s->debuglevel >= 2) {
    size_t l = n;
    if (l > 0 && p[l - 1] == '\n') l--;
    debug_print(s, "info", p, l);
  }
  return 0;
}

/* ---- callbacks into Lua ------------------------------------------------ */

/* Calls the function at the top of the stack with nargs args under
 * lua_pcall; on error keeps the message and marks the transfer failed. */
static int xcall(xfer *x, int nargs, int nres) {
  lua_State *L = x->s->L;
  if (lua_pcall(L, nargs, nres, 0) != LUA_OK) {
    if (!x->failed) {
      luaL_tolstring(L, -1, NULL);
      x->errref = luaL_ref(L, LUA_REGISTRYINDEX);
      x->failed = 1;
    }
    lua_pop(L, 1);
    return 0;
  }
  return 1;
}

static void xfail(xfer *x, const char *msg) {
  lua_State *L = x->s->L;
  if (x->failed) return;
  lua_pushstring(L, msg);
  x->errref = luaL_ref(L, LUA_REGISTRYINDEX);
  x->failed = 1;
}

static int deliver(xfer *x, const char *p, size_t n) {
  lua_State *L = x->s->L;
  if (x->cbref == LUA_NOREF) {
    fwrite(p, 1, n, stdout);
    if (x->lines) fputc('\n', stdout);
    return 1;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, x->cbref);
  lua_pushlstring(L, p, n);
  return xcall(x, 1, 0);
}

/* Hands complete lines (or whole blocks) to Lua; flush hands the rest. */
static int drain(xfer *x, int flush) {
  nl_buf *b = &x->acc;
  if (x->lines) {
    char *h, *e;
    while (b->len > 0 && (e = memchr(h = nl_buf_head(b), '\n', b->len))) {
      size_t l = (size_t)(e - h);
      if (!deliver(x, h, (l > 0 && h[l - 1] == '\r') ? l - 1 : l)) return 0;
      nl_buf_consume(b, l + 1);
      if (x->s->aborting) return 0;
    }
    if (flush && b->len > 0) {
      size_t l = b->len;
      h = nl_buf_head(b);
      if (!deliver(x, h, h[l - 1] == '\r' ? l - 1 : l)) return 0;
      nl_buf_consume(b, l);
    }
  } else {
    while (b->len >= x->blocksize || (flush && b->len > 0)) {
      size_t l = b->len < x->blocksize ? b->len : x->blocksize;
      if (!deliver(x, nl_buf_head(b), l)) return 0;
      nl_buf_consume(b, l);
      if (x->s->aborting) return 0;
    }
  }
  return 1;
}

static size_t on_write(char *p, size_t sz, size_t nm, void *ud) {
  xfer *x = ud;
  size_t n = sz * nm;
  if (x->s->aborting || x->failed) return 0;  /* != n: curl stops */
  if (nl_coop_due(&x->s->co)) {
    /* curl reads on while data is there: pause it (it keeps this chunk)
     * so that drive() can let the other tasks run */
    x->s->paused = 1;
    return CURL_WRITEFUNC_PAUSE;
  }
  x->moved += (curl_off_t)n;
  if (x->fp) {
    if (fwrite(p, 1, n, x->fp) != n) {
      xfail(x, strerror(errno));
      return 0;
    }
    return n;
  }
  if (nl_buf_append(&x->acc, p, n) != NL_OK) { xfail(x, "out of memory"); return 0; }
  if (!drain(x, 0)) return 0;
  return n;
}

/* Raw bytes from the upload source; 0 at its end or on failure. */
static size_t src_raw(xfer *x, char *buf, size_t room) {
  lua_State *L = x->s->L;
  if (x->str) {
    size_t n = x->slen - x->spos;
    if (n > room) n = room;
    memcpy(buf, x->str + x->spos, n);
    x->spos += n;
    return n;
  }
  if (x->fp) {
    size_t n = fread(buf, 1, room, x->fp);
    if (n == 0 && ferror(x->fp)) xfail(x, strerror(errno));
    return n;
  }
  while (x->cpos >= x->clen) {
    if (x->eof) return 0;
    luaL_unref(L, LUA_REGISTRYINDEX, x->chunkref);
    x->chunkref = LUA_NOREF; x->chunk = NULL; x->clen = x->cpos = 0;
    lua_rawgeti(L, LUA_REGISTRYINDEX, x->fnref);
    if (!xcall(x, 0, 1)) return 0;
    if (lua_isnil(L, -1)) { lua_pop(L, 1); x->eof = 1; return 0; }
    if (lua_type(L, -1) != LUA_TSTRING) {
      lua_pop(L, 1);
      xfail(x, "source function returned a non-string");
      return 0;
    }
    x->chunk = lua_tolstring(L, -1, &x->clen);
    x->chunkref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  {
    size_t n = x->clen - x->cpos;
    if (n > room) n = room;
    memcpy(buf, x->chunk + x->cpos, n);
    x->cpos += n;
    return n;
  }
}

/* storlines: bare LF line ends (curl makes CRLF of them), and a final
 * line without one gets one, as ftplib does. */
static size_t src_text(xfer *x, char *buf, size_t room) {
  for (;;) {
    size_t got, i, o = 0;
    char *in = buf + 1;
    if (x->eof && x->str == NULL && x->fp == NULL && x->fnref == LUA_NOREF)
      return 0;
    got = src_raw(x, in, room - 2);
    if (x->failed) return 0;
    if (got == 0) {
      if (x->pending_cr) { buf[o++] = '\r'; x->pending_cr = 0; x->last = '\r'; x->emitted = 1; }
      if (x->emitted && x->last != '\n') { buf[o++] = '\n'; x->last = '\n'; }
      x->emitted = 0;
      return o;
    }
    if (x->pending_cr) {
      if (in[0] != '\n') buf[o++] = '\r';
      x->pending_cr = 0;
    }
    for (i = 0; i < got; i++) {
      char c = in[i];
      if (c == '\r') {
        if (i + 1 == got) { x->pending_cr = 1; continue; }
        if (in[i + 1] == '\n') continue;
      }
      buf[o++] = c;
    }
    if (o > 0) {
      x->last = buf[o - 1];
      x->emitted = 1;
      return o;
    }
  }
}

static size_t on_read(char *buf, size_t sz, size_t nm, void *ud) {
  xfer *x = ud;
  size_t room = sz * nm, n;
  if (x->s->aborting || x->failed) return CURL_READFUNC_ABORT;
  if (room > x->blocksize && x->cbref != LUA_NOREF) room = x->blocksize;
  n = x->text ? src_text(x, buf, room) : src_raw(x, buf, room);
  if (x->failed) return CURL_READFUNC_ABORT;
  x->moved += (curl_off_t)n;
  if (n > 0 && x->cbref != LUA_NOREF) {
    lua_State *L = x->s->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, x->cbref);
    lua_pushlstring(L, buf, n);
    if (!xcall(x, 1, 0)) return CURL_READFUNC_ABORT;
  }
  return n;
}

static int on_seek(void *ud, curl_off_t off, int origin) {
  xfer *x = ud;
  if (origin != SEEK_SET || off < 0) return CURL_SEEKFUNC_FAIL;
  if (x->str) {
    x->spos = (size_t)off > x->slen ? x->slen : (size_t)off;
    return CURL_SEEKFUNC_OK;
  }
  if (x->fp) return fseeko(x->fp, (off_t)off, SEEK_SET) == 0 ?
                 CURL_SEEKFUNC_OK : CURL_SEEKFUNC_CANTSEEK;
  /* a chunk function is taken to start where the caller wants */
  return CURL_SEEKFUNC_OK;
}

/* ---- the pre-connected control socket (connect before login) ---------- */

static curl_socket_t on_opensocket(void *ud, curlsocktype purpose,
                                   struct curl_sockaddr *a) {
  ftp_sess *s = ud;
  if (purpose == CURLSOCKTYPE_IPCXN && s->pre_fd >= 0) {
    int fd = s->pre_fd;
    s->pre_fd = -1;
    return fd;
  }
  return socket(a->family, a->socktype, a->protocol);
}

/* curl closes a socket: the control connection's number stops being ours
 * to hand out (fileno) the moment it goes. */
static int on_closesocket(void *ud, curl_socket_t fd) {
  ftp_sess *s = ud;
  if (fd == s->ctl_fd) s->ctl_fd = CURL_SOCKET_BAD;
  return close(fd);
}

static int on_sockopt_pre(void *ud, curl_socket_t fd, curlsocktype purpose) {
  (void)ud; (void)fd;
  /* the one socket handed over by on_opensocket is connected already */
  return purpose == CURLSOCKTYPE_IPCXN ? CURL_SOCKOPT_ALREADY_CONNECTED
                                       : CURL_SOCKOPT_OK;
}

/* ---- options and the perform loop -------------------------------------- */

static int curl_at_least(unsigned int v) {
  return curl_version_info(CURLVERSION_NOW)->version_num >= v;
}

/* Everything but the URL and the operation; run after every reset, and
 * for the mirror handles too. */
static void apply_common(ftp_sess *s, CURL *h, const nl_deadline *d) {
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "ftp,ftps");
  curl_easy_setopt(h, CURLOPT_USERNAME, s->user ? s->user : "anonymous");
  curl_easy_setopt(h, CURLOPT_PASSWORD, s->pass ? s->pass : "anonymous@");
  if (s->acct) curl_easy_setopt(h, CURLOPT_FTP_ACCOUNT, s->acct);
  curl_easy_setopt(h, CURLOPT_FTP_FILEMETHOD, (long)CURLFTPMETHOD_NOCWD);
  curl_easy_setopt(h, CURLOPT_FTP_SKIP_PASV_IP, 1L);
  curl_easy_setopt(h, CURLOPT_FTP_USE_EPSV, 1L);
  if (!s->passive) curl_easy_setopt(h, CURLOPT_FTPPORT, "-");
  if (d && d->at >= 0) {
    double left = nl_deadline_left(d);
    long ms = (long)(left * 1000.0) + 1;
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, ms);
    curl_easy_setopt(h, CURLOPT_ACCEPTTIMEOUT_MS, ms);
    curl_easy_setopt(h, CURLOPT_SERVER_RESPONSE_TIMEOUT, (long)left + 1);
  }
  if (s->tls != TLS_NONE) {
    if (s->tls == TLS_EXPLICIT) {
      curl_easy_setopt(h, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
      curl_easy_setopt(h, CURLOPT_FTPSSLAUTH, (long)CURLFTPAUTH_TLS);
    }
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, s->verify ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, s->verify ? 2L : 0L);
    if (s->cafile) curl_easy_setopt(h, CURLOPT_CAINFO, s->cafile);
    /* TLS 1.3 uploads lose data before curl 8.9 */
    if (!curl_at_least(0x080900))
      curl_easy_setopt(h, CURLOPT_SSLVERSION,
                       (long)(CURL_SSLVERSION_TLSv1_2 | CURL_SSLVERSION_MAX_TLSv1_2));
  }
}

/* NOBODY operations still "write" header-like info: throw it away. */
static size_t on_discard(char *p, size_t sz, size_t nm, void *ud) {
  (void)p; (void)ud;
  return sz * nm;
}

static void apply_session(ftp_sess *s, const nl_deadline *d, const char *url) {
  CURL *h = s->easy;
  curl_easy_reset(h);
  apply_common(s, h, d);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_discard);
  curl_easy_setopt(h, CURLOPT_URL, url);
  if (s->fresh) {
    curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
    s->fresh = 0;
  }
  curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);
  curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, on_debug);
  curl_easy_setopt(h, CURLOPT_DEBUGDATA, s);
  curl_easy_setopt(h, CURLOPT_CLOSESOCKETFUNCTION, on_closesocket);
  curl_easy_setopt(h, CURLOPT_CLOSESOCKETDATA, s);
  if (s->pre_fd >= 0) {
    curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, on_opensocket);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, s);
    curl_easy_setopt(h, CURLOPT_SOCKOPTFUNCTION, on_sockopt_pre);
  }
}

/* ---- waiting for curl's sockets (multi socket interface) --------------- */

/* CURLMOPT_SOCKETFUNCTION: keep s->epfd watching what curl wants. */
static int on_socket(CURL *e, curl_socket_t fd, int what, void *ud,
                     void *sp) {
  ftp_sess *s = ud;
  (void)e; (void)sp;
  int i;
  for (i = 0; i < s->nw && s->wfd[i] != fd; i++) {}
  if (what == CURL_POLL_REMOVE) {
    if (i < s->nw) { s->nw--; s->wfd[i] = s->wfd[s->nw]; s->wev[i] = s->wev[s->nw]; }
  } else if (i < NWATCH) {
    if (i == s->nw) s->nw++;
    s->wfd[i] = fd;
    s->wev[i] = ((what & CURL_POLL_IN) ? NL_WAIT_READ : 0) |
                ((what & CURL_POLL_OUT) ? NL_WAIT_WRITE : 0);
  }
#ifdef __linux__
  if (what == CURL_POLL_REMOVE) {
    epoll_ctl(s->epfd, EPOLL_CTL_DEL, fd, NULL);  /* may be closed already */
  } else {
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0) |
                ((what & CURL_POLL_OUT) ? EPOLLOUT : 0);
    ev.data.fd = fd;
    if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 && errno == ENOENT)
      epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev);
  }
#endif
  return 0;
}

/* When curl wants curl_multi_socket_action(CURL_SOCKET_TIMEOUT): asked
 * each time (curl_multi_timeout) rather than tracked from the timer
 * callback, which reports changes only. */
static double timer_at(ftp_sess *s) {
  long ms = -1;
  curl_multi_timeout(s->multi, &ms);
  return ms < 0 ? -1.0 : nl_monotime() + (double)ms / 1000.0;
}

/* Runs every transfer on the multi whatever its sockets say.  curl 7.88
 * can keep an FTP reply it has read already in its cache and then want
 * no socket and no timer, expecting to be run again (as
 * curl_multi_perform would); curl_multi_socket_all does that and, unlike
 * perform, also updates the socket callback. */
static void kick(ftp_sess *s) {
  int running;
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#endif
  curl_multi_socket_all(s->multi, &running);
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
}

/* Tells curl which of its sockets are ready and whether its timer ran out
 * (never waits); when neither, runs it anyway (a wait that ended without
 * a reason, or curl waiting for nothing). */
static void sock_ready(ftp_sess *s) {
  int running, acted = 0;
#ifdef __linux__
  struct epoll_event ev[8];
  int n, i;
  n = epoll_wait(s->epfd, ev, 8, 0);
  for (i = 0; i < n; i++) {
    int mask = 0;
    if (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) mask |= CURL_CSELECT_IN;
    if (ev[i].events & (EPOLLOUT | EPOLLERR)) mask |= CURL_CSELECT_OUT;
    if (ev[i].events & EPOLLERR) mask |= CURL_CSELECT_ERR;
    curl_multi_socket_action(s->multi, ev[i].data.fd, mask, &running);
    acted = 1;
  }
#else
  {
    int i, fds[NWATCH], n = s->nw;
    memcpy(fds, s->wfd, sizeof fds);
    for (i = 0; i < n; i++) {  /* 0: curl checks the socket itself */
      nl_deadline now;
      nl_deadline_start(&now, 0);
      if (nl_wait(fds[i], NL_WAIT_READ | NL_WAIT_WRITE, &now) == NL_OK) {
        curl_multi_socket_action(s->multi, fds[i], 0, &running);
        acted = 1;
      }
    }
  }
#endif
  {
    long ms = -1;
    curl_multi_timeout(s->multi, &ms);
    if (ms == 0) {
      curl_multi_socket_action(s->multi, CURL_SOCKET_TIMEOUT, 0, &running);
      acted = 1;
    }
  }
  if (!acted) kick(s);
}

/* Whether the session's transfer has ended; *rc gets its result. */
static int xfer_done(ftp_sess *s, CURLcode *rc) {
  CURLMsg *msg;
  int left, done = 0;
  while ((msg = curl_multi_info_read(s->multi, &left)) != NULL)
    if (msg->msg == CURLMSG_DONE && msg->easy_handle == s->easy) {
      *rc = msg->data.result;
      done = 1;
    }
  return done;
}

/* Drives the easy handle (on the multi already) to its end;
 * CURLE_OPERATION_TIMEDOUT when the deadline passes first.  Each wait is
 * for s->epfd, capped by curl's timer: inside netlua.run it yields, and
 * the operation comes back here through op_resume. */
static CURLcode drive(ftp_sess *s) {
  const nl_deadline *d = &s->op.dl;
  CURLcode rc = CURLE_OK;
  for (;;) {
    nl_deadline w;
    double t;
    nl_coop_share(&s->co);  /* a transfer that never waits takes turns */
    if (s->paused) {  /* by on_write, for that turn: go on */
      s->paused = 0;
      curl_easy_pause(s->easy, CURLPAUSE_CONT);
    }
    sock_ready(s);
    if (s->not_ftp) return CURLE_WEIRD_SERVER_REPLY;  /* see reply_line */
    if (xfer_done(s, &rc)) return rc;
    if (s->nw == 0) {  /* nothing to wait for: see kick() */
      kick(s);
      if (s->not_ftp) return CURLE_WEIRD_SERVER_REPLY;
      if (xfer_done(s, &rc)) return rc;
    }
    if (d->at >= 0 && nl_monotime() > d->at + 0.25) return CURLE_OPERATION_TIMEDOUT;
    w.at = d->at >= 0 ? d->at + 0.25 : -1.0;
    t = timer_at(s);
    if (t >= 0 && (w.at < 0 || t < w.at)) w.at = t;
    t = nl_monotime() + 0.2;  /* see kick(): never trust a long silence */
    if (w.at < 0 || t < w.at) w.at = t;
#ifdef __linux__
    nl_coop_wait(&s->co, s->epfd, NL_WAIT_READ, &w);
#else
    /* one descriptor per wait: with several (control and data), look
     * again soon */
    if (s->nw > 1) {
      nl_deadline soon;
      nl_deadline_start(&soon, 0.05);
      if (w.at < 0 || soon.at < w.at) w = soon;
    }
    nl_coop_wait(&s->co, s->nw > 0 ? s->wfd[s->nw - 1] : -1,
                 s->nw > 0 ? s->wev[s->nw - 1] : 0, &w);
#endif
  }
}

static void op_reset(ftp_sess *s) {
  int i;
  s->qwait = -1;
  s->op_login = 0;
  s->aborting = 0;
  s->not_ftp = 0;
  s->paused = 0;
  s->op_sent = s->op_finals = 0;
  s->got421 = 0;
  for (i = 0; i < NQUOTE; i++) { s->qr[i].code = -1; s->qr[i].text.len = 0; s->qr[i].text.start = 0; }
  nl_ftpr_reset(&s->fr);
  s->last.code = -1; s->last.text.len = 0; s->last.text.start = 0;
  free(s->op_cwd); s->op_cwd = NULL;
}

static void xfer_free(lua_State *L, xfer *x);

/* Releases what the operation held (idempotent). */
static void op_clear(lua_State *L, ftp_sess *s) {
  op_state *o = &s->op;
  if (o->use_x) { xfer_free(L, &o->x); o->use_x = 0; }
  if (o->qlist) { curl_slist_free_all(o->qlist); o->qlist = NULL; }
  s->nquote = 0;
  o->active = 0;
}

static int op_resume(lua_State *L);

/* The control connection is one whose next reply we could not attribute
 * (a command left unanswered, a reply nobody asked for) or one the
 * server is closing (421): it must not be used again.  Shutting it down
 * makes curl's goodbye on it fail at once; the next operation connects
 * and logs in afresh (curl would otherwise pick it from its cache). */
static void drop_connection(ftp_sess *s) {
  if (s->ctl_fd != CURL_SOCKET_BAD) shutdown(s->ctl_fd, SHUT_RDWR);
  s->fresh = 1;
}

/* Runs the operation in s->op: reset, apply every option, drive; retried
 * once when a reused connection turned out dead before any payload
 * moved.  Then the method's finish step makes the results. */
static int op_loop(lua_State *L, ftp_sess *s) {
  op_state *o = &s->op;
  CURLcode rc;
  int n;
  for (;;) {
    if (!o->added) {
      o->was_logged = s->logged;
      op_reset(s);
      apply_session(s, &o->dl, lua_tostring(L, o->url));
      if (o->setup) o->setup(s);
      s->x = o->use_x ? &o->x : NULL;
      if (curl_multi_add_handle(s->multi, s->easy) != CURLM_OK) {
        rc = CURLE_FAILED_INIT;
        break;
      }
      o->added = 1;
    }
    s->L = L;
    rc = drive(s);  /* may yield: then we come back through op_resume */
    {
      /* only known while the handle is in the multi: kept for fileno */
      curl_socket_t fd = CURL_SOCKET_BAD;
      if (curl_easy_getinfo(s->easy, CURLINFO_ACTIVESOCKET, &fd) == CURLE_OK &&
          fd != CURL_SOCKET_BAD)
        s->ctl_fd = fd;
    }
    curl_multi_remove_handle(s->multi, s->easy);
    o->added = 0;
    if (s->got421 || s->op_sent != s->op_finals) drop_connection(s);
    if (o->attempt == 0 && o->was_logged && !s->op_login &&
        (rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_GOT_NOTHING ||
         rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR) &&
        !(s->x && (s->x->moved > 0 || s->x->failed)) &&
        !nl_deadline_passed(&o->dl)) {
      o->attempt++;
      continue;
    }
    break;
  }
  nl_coop_end(&s->co);
  s->busy = 0; s->x = NULL;
  s->L = L;
  o->active = 0;
  n = o->finish(L, s, rc);
  op_clear(L, s);
  setstr(&s->label, NULL);
  return n;
}

/* Starts the operation set up in s->op (URL at stack index url) and
 * returns what its finish step returns. */
static int op_run(lua_State *L, ftp_sess *s, int url, setup_fn setup,
                  finish_fn finish, const char *what) {
  op_state *o = &s->op;
  o->url = lua_absindex(L, url);
  o->setup = setup;
  o->finish = finish;
  o->what = what;
  o->attempt = 0;
  o->added = 0;
  o->active = 1;
  s->busy = 1;
  nl_coop_begin(L, &s->co, op_resume, s->timeout, &o->dl);
  return op_loop(L, s);
}

/* The restart after a yield: the method's frame is gone, the session (its
 * first argument) and the Lua stack are as they were. */
static int op_resume(lua_State *L) {
  ftp_sess *s = luaL_checkudata(L, 1, FTP);
  nl_deadline d;
  if (nl_coop_closed(&s->co))  /* by another task: sess_free cleaned up */
    return nl_pushfail(L, NL_ABORTED, "%s", s->op.what);
  nl_coop_begin(L, &s->co, op_resume, 0, &d);  /* takes the resume */
  return op_loop(L, s);
}

static int is_tls_error(CURLcode rc) {
  switch (rc) {
    case CURLE_SSL_CONNECT_ERROR: case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED: case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER: case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_USE_SSL_FAILED: case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CACERT_BADFILE: case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE: case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH: case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
      return 1;
    default:
      return 0;
  }
}

/* Pushes nil, "what: reply text", code: a reply that says no. */
static int push_reply_fail(lua_State *L, const char *what, const char *text,
                           int code) {
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s", what, text);
  lua_pushinteger(L, code);
  return 3;
}

/* Pushes nil, message, code for a failed operation. */
static int push_error(lua_State *L, ftp_sess *s, CURL *h, CURLcode rc,
                      int last_code, const char *last_text, xfer *x,
                      const char *what) {
  long oserr = 0;
  if (x && x->failed) {
    lua_pushnil(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, x->errref);
    lua_pushliteral(L, "callback");
    return 3;
  }
  if (s && s->aborting)
    return nl_pushfailcode(L, "aborted", "%s: transfer aborted", what);
  /* curl reports a 421 (the server closes the connection) as a timeout */
  if (rc == CURLE_OPERATION_TIMEDOUT && last_code == 421)
    return push_reply_fail(L, what, last_text, 421);
  switch (rc) {
    case CURLE_OPERATION_TIMEDOUT: case CURLE_FTP_ACCEPT_TIMEOUT:
      return nl_pushfailcode(L, "timeout", "%s: timed out", what);
    case CURLE_COULDNT_RESOLVE_HOST:
      return nl_pushfailcode(L, "resolve", "%s: %s", what, curl_easy_strerror(rc));
    case CURLE_COULDNT_CONNECT:
      curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &oserr);
      if (oserr != 0) return nl_pushfail(L, (int)oserr, "%s: connect", what);
      return nl_pushfailcode(L, "refused", "%s: %s", what, curl_easy_strerror(rc));
    default: break;
  }
  if (is_tls_error(rc))
    return nl_pushfailcode(L, "tls", "%s: %s", what, curl_easy_strerror(rc));
  if (last_code >= 400 && last_code <= 599 && rc != CURLE_GOT_NOTHING &&
      rc != CURLE_SEND_ERROR && rc != CURLE_RECV_ERROR &&
      rc != CURLE_PARTIAL_FILE)
    return push_reply_fail(L, what, last_text, last_code);
  switch (rc) {
    case CURLE_GOT_NOTHING: case CURLE_SEND_ERROR: case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE: case CURLE_FTP_ACCEPT_FAILED:
    case CURLE_FTP_CANT_GET_HOST:
      return nl_pushfailcode(L, "closed", "%s: %s", what, curl_easy_strerror(rc));
    case CURLE_WRITE_ERROR: case CURLE_READ_ERROR:
      return nl_pushfailcode(L, "io", "%s: %s", what, curl_easy_strerror(rc));
    default:
      return nl_pushfailcode(L, "protocol", "%s: %s", what, curl_easy_strerror(rc));
  }
}

static int sess_error(lua_State *L, ftp_sess *s, CURLcode rc, xfer *x,
                      const char *what) {
  char *text;
  int n, code = s->last.code;
  if (s->label) what = s->label;
  if (s->not_ftp && !(x && x->failed))
    return nl_pushfailcode(L, "protocol", "%s: not an FTP reply: %s", what,
                           s->bad_line);
  text = malloc(s->last.text.len + 1);
  if (text) {
    memcpy(text, nl_buf_head(&s->last.text), s->last.text.len);
    text[s->last.text.len] = '\0';
  }
  n = push_error(L, s, s->easy, rc, code, text ? text : "", x, what);
  free(text);
  return n;
}

static void xfer_init(xfer *x, ftp_sess *s) {
  memset(x, 0, sizeof *x);
  x->s = s;
  x->cbref = x->fnref = x->chunkref = x->errref = LUA_NOREF;
  x->blocksize = 8192;
  x->announced = -1;
  nl_buf_init(&x->acc);
}

static void xfer_free(lua_State *L, xfer *x) {
  luaL_unref(L, LUA_REGISTRYINDEX, x->cbref);
  luaL_unref(L, LUA_REGISTRYINDEX, x->fnref);
  luaL_unref(L, LUA_REGISTRYINDEX, x->chunkref);
  luaL_unref(L, LUA_REGISTRYINDEX, x->errref);
  nl_buf_free(&x->acc);
}

/* ---- session lifecycle -------------------------------------------------- */

/* Ends a connect: state dropped, the fd (if any) closed unless kept. */
static void connect_end(ftp_sess *s, int keep) {
  if (s->cn_ai) { freeaddrinfo(s->cn_ai); s->cn_ai = s->cn_cur = NULL; }
  if (s->cn_fd >= 0 && !keep) close(s->cn_fd);
  s->cn_fd = -1;
  s->cn_phase = 0;
  s->busy = 0;
  nl_coop_end(&s->co);
}

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
  if (s->cn_phase) connect_end(s, 0);
  if (s->L) {
    op_clear(s->L, s);
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
    setstr(dst, p);
  }
  lua_pop(L, 1);
}

static void check_tls_mode(lua_State *L, ftp_sess *s) {
  /* active mode under TLS hangs before curl 8.0 */
  if (s->tls != TLS_NONE && !s->passive && !curl_at_least(0x080000))
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
  ftp_sess *s = lua_newuserdatauv(L, sizeof *s, 0);
  memset(s, 0, sizeof *s);
  s->pre_fd = -1;
  s->ctl_fd = CURL_SOCKET_BAD;
  s->rs_fd = -1;
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
  luaL_setmetatable(L, FTP);
  s->epfd = -1;
  s->easy = curl_easy_init();
  s->multi = curl_multi_init();
  if (!s->easy || !s->multi) luaL_error(L, "ftp: libcurl init failed");
#ifdef __linux__
  s->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (s->epfd < 0) luaL_error(L, "ftp: epoll_create1: %s", strerror(errno));
#endif
  curl_multi_setopt(s->multi, CURLMOPT_MAXCONNECTS, 1L);
  curl_multi_setopt(s->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(s->multi, CURLMOPT_SOCKETDATA, s);
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
  if (lua_getfield(L, 1, "timeout") != LUA_TNIL) {
    lua_Number t;
    if (!lua_isnumber(L, -1))
      luaL_error(L, "bad option 'timeout' (number expected, got %s)", luaL_typename(L, -1));
    t = lua_tonumber(L, -1);
    if (t != t) luaL_error(L, "bad option 'timeout' (NaN)");
    s->timeout = t < 0 ? -1 : t;
  }
  lua_pop(L, 1);
  lua_getfield(L, 1, "debug");
  set_debug(L, s, -1);
  lua_pop(L, 1);
  check_tls_mode(L, s);
  return 1;
}

/* Connecting: walks the address list kept in s (a wait may yield; the
 * connect comes back through m_connect).  NL_OK with s->cn_fd connected. */
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
    if (err == EINPROGRESS) {
      nl_deadline now;
      nl_deadline_start(&now, 0);
      err = nl_wait(s->cn_fd, NL_WAIT_WRITE, &now);
      if (err == NL_TIMEOUT) err = nl_coop_wait(&s->co, s->cn_fd, NL_WAIT_WRITE, d);
      if (err == NL_OK) {
        socklen_t len = sizeof err;
        if (getsockopt(s->cn_fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
      }
    }
    if (err == NL_OK) return NL_OK;
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
    setmem(&s->welcome, fr.text, fr.len);
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
    if (err != NL_OK) {
      connect_end(s, 0);
      return nl_pushfail(L, err, "connect %s", s->cn_where);
    }
    freeaddrinfo(s->cn_ai);
    s->cn_ai = s->cn_cur = NULL;
    s->cn_phase = 2;
    if (s->tls == TLS_IMPLICIT) {
      /* nothing to read in clear: curl takes the socket over at login */
      s->pre_fd = s->cn_fd;
      connect_end(s, 1);
      s->connected = 1;
      lua_pushliteral(L, "");
      return 1;
    }
  }
  for (;;) {
    /* look first: after a yield we come back here with the data there */
    ssize_t r = recv(s->cn_fd, buf, sizeof buf, MSG_PEEK);
    int g;
    if (r == 0) {
      connect_end(s, 0);
      return nl_pushfail(L, NL_CLOSED, "connect %s: greeting", s->cn_where);
    }
    if (r < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        int w = nl_coop_wait(&s->co, s->cn_fd, NL_WAIT_READ, d);
        if (w != NL_OK) {
          connect_end(s, 0);
          return nl_pushfail(L, w, "connect %s: greeting", s->cn_where);
        }
        continue;
      }
      if (errno == EINTR) continue;
      err = errno;
      connect_end(s, 0);
      return nl_pushfail(L, err, "connect %s: greeting", s->cn_where);
    }
    /* a greeting that does not fit what we may peek is refused: curl
     * would read it whole, we could not show it whole */
    g = greeting(L, s, buf, (size_t)r, (size_t)r == sizeof buf);
    if (g < 0) { connect_end(s, 0); return 3; }
    if (g > 0) break;
    {
      /* part of the greeting: peeking again at once would find the same */
      nl_deadline tiny;
      nl_deadline_start(&tiny, 0.01);
      if (d->at >= 0 && tiny.at > d->at) tiny = *d;
      nl_coop_wait(&s->co, -1, 0, &tiny);
      if (nl_deadline_passed(d)) {
        connect_end(s, 0);
        return nl_pushfail(L, NL_TIMEOUT, "connect %s: greeting", s->cn_where);
      }
    }
  }
  lua_pushstring(L, s->welcome);
  s->pre_fd = s->cn_fd;
  connect_end(s, 1);
  s->connected = 1;
  return 1;
}

/* s:connect(host, port, timeout) -> welcome.  Opens the control connection
 * and peeks at the greeting (left unread for curl, who takes the socket
 * over at login).  Implicit TLS hides the greeting until login.  Inside
 * netlua.run the name lookup and the waits yield; the timeout bounds
 * both. */
static int m_connect(lua_State *L) {
  ftp_sess *s = luaL_checkudata(L, 1, FTP);
  const char *host;
  int port, g, w;
  nl_deadline d, fresh;
  char serv[16];
  struct addrinfo hints, *res = NULL;
  nl_offload *r;
  if (nl_coop_closed(&s->co))  /* by another task, while we waited */
    return nl_pushfail(L, NL_ABORTED, "connect %s", s->cn_where);
  check_sess(L);
  if (s->co.resuming && s->cn_phase) {  /* after a yield */
    nl_coop_begin(L, &s->co, m_connect, 0, &d);
    return connect_step(L, s, &d);
  }
  /* a yield while looking the name up left the lookup on top */
  r = s->co.resuming ? nl_offload_top(L) : NULL;
  host = check_clean(L, 2, "host");
  if (r == NULL) {
    check_idle(L, s);
    port = s->tls == TLS_IMPLICIT ? 990 : 21;
    if (!lua_isnoneornil(L, 3)) port = nl_checkport(L, 3);
    luaL_argcheck(L, port > 0, 3, "port 0");
    if (!lua_isnoneornil(L, 4)) s->timeout = nl_opttimeout(L, 4, s->timeout);
    if (s->pre_fd >= 0) { close(s->pre_fd); s->pre_fd = -1; }
    setstr(&s->host, host);
    s->port = port;
    s->connected = 0; s->logged = 0;
    setstr(&s->welcome, NULL);
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    snprintf(serv, sizeof serv, "%d", port);
    snprintf(s->cn_where, sizeof s->cn_where, "%s:%d", host, port);
    lua_settop(L, 4);
    s->busy = 1;  /* the lookup may yield: no other call may start */
    r = nl_resolve_start(L, host, serv, &hints, m_connect, s->timeout);
    /* the lookup waits as the session's operation: close() wakes it */
    nl_coop_begin(L, &s->co, m_connect, s->timeout, &fresh);
  }
  s->rs_fd = nl_offload_fd(r);
  w = nl_resolve_wait(r, &s->co, &res, &g, &d);
  s->rs_fd = -1;
  if (w != NL_OK || g != 0) {
    s->busy = 0;
    if (w != NL_OK)
      return nl_pushfail(L, w, "connect %s: name lookup", s->cn_where);
    return nl_pushfailcode(L, "resolve", "connect %s: cannot resolve", host);
  }
  s->cn_ai = s->cn_cur = nl_resolve_take(r);  /* owned by s from here */
  s->cn_fd = -1;
  s->cn_err = ECONNREFUSED;
  s->cn_phase = 1;
  nl_coop_begin(L, &s->co, m_connect, s->timeout, &fresh);
  s->co.dl = d;  /* what the lookup left of the timeout */
  return connect_step(L, s, &d);
}

static void setup_nobody(ftp_sess *s) {
  curl_easy_setopt(s->easy, CURLOPT_NOBODY, 1L);
}

static int finish_login(lua_State *L, ftp_sess *s, CURLcode rc);

/* s:login(user, passwd, acct) -> reply text.  Connect and login are one
 * curl step: NOBODY on the server's root sends USER, PASS, PWD. */
static int m_login(lua_State *L) {
  ftp_sess *s = check_sess(L);
  const char *user = luaL_optstring(L, 2, "anonymous");
  const char *pass = luaL_optstring(L, 3, NULL);
  check_idle(L, s);
  if (!s->connected) luaL_error(L, "ftp session is not connected (call connect)");
  if (!lua_isnoneornil(L, 2)) check_clean(L, 2, "user");
  if (pass) check_clean(L, 3, "password");
  else pass = strcmp(user, "anonymous") == 0 ? "anonymous@" : "";
  if (!lua_isnoneornil(L, 4)) setstr(&s->acct, check_clean(L, 4, "acct"));
  setstr(&s->user, user);
  setstr(&s->pass, pass);
  s->logged = 0;
  s->nquote = 0;
  push_url(L, s, NULL, 1);
  setstr(&s->label, "login");
  return op_run(L, s, -1, setup_nobody, finish_login, "login");
}

static int finish_login(lua_State *L, ftp_sess *s, CURLcode rc) {
  char *ep = NULL;
  if (rc != CURLE_OK) {
    /* the connection is gone either way: the next login starts afresh */
    return sess_error(L, s, rc, NULL, "login");
  }
  s->logged = 1;
  if (curl_easy_getinfo(s->easy, CURLINFO_FTP_ENTRY_PATH, &ep) == CURLE_OK && ep && ep[0] == '/')
    setstr(&s->entry, ep);
  else if (!s->entry) setstr(&s->entry, "/");
  setstr(&s->cwd, s->entry);
  setstr(&s->server_cwd, s->entry);
  lua_pushlstring(L, nl_buf_head(&s->login.text), s->login.text.len);
  return 1;
}

/* s:fileno() / s:getfd() -> the control connection's descriptor, -1 when
 * there is none (LuaSocket's getfd answer).  For watching it in a loop of
 * one's own: curl owns what is read and written there. */
static int m_fileno(lua_State *L) {
  ftp_sess *s = check_sess(L);
  curl_socket_t fd = CURL_SOCKET_BAD;
  if (s->pre_fd >= 0) fd = s->pre_fd;
  else if (s->connected) fd = s->ctl_fd;
  lua_pushinteger(L, fd == CURL_SOCKET_BAD ? -1 : (lua_Integer)fd);
  return 1;
}

static int m_getwelcome(lua_State *L) {
  ftp_sess *s = check_sess(L);
  if (s->welcome) lua_pushstring(L, s->welcome);
  else lua_pushnil(L);
  return 1;
}

static int m_set_debuglevel(lua_State *L) {
  ftp_sess *s = check_sess(L);
  if (lua_isfunction(L, 2)) set_debug(L, s, 2);
  else s->debuglevel = (int)luaL_checkinteger(L, 2);
  return 0;
}

static int m_set_pasv(lua_State *L) {
  ftp_sess *s = check_sess(L);
  int old = s->passive;
  luaL_checkany(L, 2);
  s->passive = lua_toboolean(L, 2);
  if (s->tls != TLS_NONE && !s->passive && !curl_at_least(0x080000)) {
    s->passive = old;
    luaL_error(L, "set_pasv: active mode with TLS needs libcurl >= 8.0 (this is %s)",
               curl_version_info(CURLVERSION_NOW)->version);
  }
  return 0;
}

static int m_settimeout(lua_State *L) {
  ftp_sess *s = check_sess(L);
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
  op_clear(L, s);
  s->op.qlist = list;
  for (i = 0; i < n; i++) s->quote[i] = cmds[i];
  s->nquote = n;
  push_url(L, s, NULL, 1);
  return op_run(L, s, -1, setup_quote, finish, what);
}

static int push_qreply(lua_State *L, ftp_sess *s, int i, int need2xx) {
  reply *r = &s->qr[i];
  const char *what = s->label ? s->label : s->op.what;
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
  if (rc != CURLE_OK) return sess_error(L, s, rc, NULL, s->op.what);
  return push_qreply(L, s, s->op.k, s->op.need2xx);
}

static int do_sendcmd(lua_State *L, int need2xx, const char *fname) {
  ftp_sess *s = check_sess(L);
  size_t n;
  const char *cmd = luaL_checklstring(L, 2, &n);
  const char *cmds[2];
  int k = 0;
  if (strlen(cmd) != n || strpbrk(cmd, "\r\n"))
    luaL_error(L, "bad argument #1 to '%s' (CR, LF or NUL in command)", fname);
  luaL_argcheck(L, n > 0, 2, "empty command");
  check_owned(L, cmd, fname);
  check_logged(L, s);
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
  setstr(&s->label, lua_tostring(L, -1));
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
  ftp_sess *s = check_sess(L);
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
  check_logged(L, s);
  s->op.k = n;
  setstr(&s->label, label);
  return run_quotes(L, s, cmds, n, finish_cmds, "ftp");
}

static int m_cmds(lua_State *L) { return do_cmds(L, 2); }
static int m_ask(lua_State *L) { return do_cmds(L, 3); }

static int finish_cmds(lua_State *L, ftp_sess *s, CURLcode rc) {
  int n = s->op.k, i;
  if (rc != CURLE_OK) return sess_error(L, s, rc, NULL, "ftp");
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
  ftp_sess *s = check_sess(L);
  check_clean(L, 2, "path");
  push_abspath(L, s, lua_tostring(L, 2));
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
  ftp_sess *s = check_sess(L);
  const char *abs, *cmds[2];
  check_clean(L, 2, "path");
  check_logged(L, s);
  abs = push_abspath(L, s, lua_tostring(L, 2));
  s->op.arg = lua_gettop(L);
  lua_pushfstring(L, "CWD %s", abs);
  cmds[0] = lua_tostring(L, -1);
  cmds[1] = "PWD";
  lua_pushfstring(L, "cwd %s", lua_tostring(L, 2));
  setstr(&s->label, lua_tostring(L, -1));
  lua_pop(L, 1);
  return run_quotes(L, s, cmds, 2, finish_cwd, "cwd");
}

static int finish_cwd(lua_State *L, ftp_sess *s, CURLcode rc) {
  const char *abs = lua_tostring(L, s->op.arg);
  int n;
  if (rc != CURLE_OK) return sess_error(L, s, rc, NULL, "cwd");
  n = push_qreply(L, s, 0, 1);
  if (n != 1) return n;
  if (s->qr[1].code == 257) {
    push_257(L, nl_buf_head(&s->qr[1].text), s->qr[1].text.len);
    if (lua_isstring(L, -1) && lua_tostring(L, -1)[0] == '/') abs = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  setstr(&s->cwd, abs);
  return 1;
}

/* s:pwd() -> the client-side current directory (no round trip). */
static int m_pwd(lua_State *L) {
  ftp_sess *s = check_sess(L);
  check_logged(L, s);
  lua_pushstring(L, s->cwd ? s->cwd : "/");
  return 1;
}

/* ---- transfers --------------------------------------------------------- */

static void setup_xfer(ftp_sess *s) {
  xsetup *o = &s->op.xo;
  CURL *h = s->easy;
  xfer *x = &s->op.x;
  if (o->nobody) { curl_easy_setopt(h, CURLOPT_NOBODY, 1L); return; }
  if (x->upload) {
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(h, CURLOPT_READDATA, x);
    curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
    curl_easy_setopt(h, CURLOPT_SEEKDATA, x);
    curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, 512L * 1024L);
    if (o->append) curl_easy_setopt(h, CURLOPT_APPEND, 1L);
    if (o->insize >= 0) curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, o->insize);
  } else {
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(h, CURLOPT_BUFFERSIZE, (long)BIGBUF);
    /* no SIZE round trip before each RETR: the data's end tells */
    if (o->rest == 0) curl_easy_setopt(h, CURLOPT_IGNORE_CONTENT_LENGTH, 1L);
  }
  if (x->text) curl_easy_setopt(h, CURLOPT_TRANSFERTEXT, 1L);
  if (o->dirlist) curl_easy_setopt(h, CURLOPT_DIRLISTONLY, 1L);
  if (o->custom) curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, o->custom);
  if (o->rest > 0) curl_easy_setopt(h, CURLOPT_RESUME_FROM_LARGE, o->rest);
}

/* Splits an ftplib command string: verb in upper case into verb[], the
 * argument (or NULL) returned. */
static const char *split_cmd(lua_State *L, int arg, char *verb, size_t vlen,
                             const char *fname) {
  size_t n, i = 0;
  const char *cmd = luaL_checklstring(L, arg, &n);
  if (strlen(cmd) != n || strpbrk(cmd, "\r\n"))
    luaL_error(L, "bad argument #1 to '%s' (CR, LF or NUL in command)", fname);
  while (cmd[i] && cmd[i] != ' ' && i < vlen - 1) {
    verb[i] = cmd[i] >= 'a' && cmd[i] <= 'z' ? (char)(cmd[i] - 32) : cmd[i];
    i++;
  }
  verb[i] = '\0';
  if (cmd[i] == '\0') return NULL;
  if (cmd[i] != ' ') luaL_error(L, "bad argument #1 to '%s' (unknown command)", fname);
  /* one space ends the verb: the name may itself start with spaces */
  i++;
  return cmd[i] ? cmd + i : NULL;
}

/* A transfer's label: the internal form's extra argument (get, put and
 * the rest name themselves so), else "<method> <command>". */
static void set_xlabel(lua_State *L, ftp_sess *s, const char *fname,
                       int arg) {
  if (lua_type(L, arg) == LUA_TSTRING) setstr(&s->label, lua_tostring(L, arg));
  else {
    lua_pushfstring(L, "%s %s", fname, lua_tostring(L, 2));
    setstr(&s->label, lua_tostring(L, -1));
    lua_pop(L, 1);
  }
}

static FILE *tofile(lua_State *L, int idx) {
  luaL_Stream *p = luaL_testudata(L, idx, LUA_FILEHANDLE);
  if (!p) return NULL;
  if (p->closef == NULL) luaL_error(L, "attempt to use a closed file");
  return p->f;
}

static int finish_xfer(lua_State *L, ftp_sess *s, CURLcode rc) {
  xfer *x = &s->op.x;
  if (rc == CURLE_OK && !x->upload && x->announced >= 0 && s->op.xo.rest == 0 &&
      x->moved != (curl_off_t)x->announced) {
    /* the server's 226 says done; its 150 said how much: the bytes decide */
    return nl_pushfailcode(L, "partial", "%s: %lld of %lld bytes received",
                           s->label ? s->label : s->op.what,
                           (long long)x->moved, x->announced);
  }
  if (rc == CURLE_OK && !x->failed && !x->upload) {
    s->L = L;
    drain(x, 1);
  }
  if (rc == CURLE_OK && !x->failed) {
    lua_pushlstring(L, nl_buf_head(&s->last.text), s->last.text.len);
    return 1;
  }
  return sess_error(L, s, rc == CURLE_OK ? CURLE_WRITE_ERROR : rc, x, s->op.what);
}

/* Starts a transfer built in x and o (the URL on top of the stack); the
 * session owns x from here on. */
static int run_xfer(lua_State *L, ftp_sess *s, const xfer *x,
                    const xsetup *o, finish_fn finish, const char *what) {
  op_clear(L, s);
  s->op.x = *x;
  s->op.use_x = 1;
  s->op.xo = *o;
  return op_run(L, s, -1, setup_xfer, finish, what);
}

/* Downloads: retrbinary(cmd, callback, blocksize, rest) and
 * retrlines(cmd, callback).  cmd is "RETR name", "LIST [path]",
 * "NLST [path]" or "MLSD [path]".  The callback may be a Lua file. */
static int do_retr(lua_State *L, int lines) {
  ftp_sess *s = check_sess(L);
  const char *fname = lines ? "retrlines" : "retrbinary";
  char verb[8];
  const char *arg = split_cmd(L, 2, verb, sizeof verb, fname);
  xfer x;
  xsetup o;
  const char *abs;
  int isdir;
  memset(&o, 0, sizeof o);
  if (strcmp(verb, "RETR") == 0) {
    if (!arg) luaL_argerror(L, 2, "RETR needs a file name");
    isdir = 0;
  } else if (strcmp(verb, "LIST") == 0 || strcmp(verb, "NLST") == 0 ||
             strcmp(verb, "MLSD") == 0) {
    isdir = 1;
    if (arg && arg[0] == '-') {  /* "LIST -la": options are not paths */
      luaL_argerror(L, 2, "listing options are not supported");
    }
  } else {
    return luaL_argerror(L, 2, "expected RETR, LIST, NLST or MLSD");
  }
  check_logged(L, s);
  xfer_init(&x, s);
  x.lines = lines;
  x.text = lines;   /* listings and retrlines go in TYPE A */
  if (!lua_isnoneornil(L, 3)) {
    if ((x.fp = tofile(L, 3)) == NULL) {
      luaL_checktype(L, 3, LUA_TFUNCTION);
      lua_pushvalue(L, 3);
      x.cbref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
  }
  if (!lines) {
    lua_Integer bs = luaL_optinteger(L, 4, 8192);
    lua_Integer rest = luaL_optinteger(L, 5, 0);
    if (bs < 1 || bs > 64 * 1024 * 1024) { xfer_free(L, &x); luaL_argerror(L, 4, "blocksize out of range"); }
    if (rest < 0) { xfer_free(L, &x); luaL_argerror(L, 5, "negative rest"); }
    x.blocksize = (size_t)bs;
    o.rest = rest;
  }
  if (isdir) {
    x.text = 1;
    if (strcmp(verb, "NLST") == 0) o.dirlist = 1;
    else if (strcmp(verb, "MLSD") == 0) o.custom = "MLSD";
  }
  abs = push_abspath(L, s, arg ? arg : ".");
  push_url(L, s, abs, isdir);
  set_xlabel(L, s, fname, lines ? 4 : 6);
  return run_xfer(L, s, &x, &o, finish_xfer, fname);
}

static int m_retrbinary(lua_State *L) { return do_retr(L, 0); }
static int m_retrlines(lua_State *L) { return do_retr(L, 1); }

/* Uploads: storbinary(cmd, source, blocksize, callback, rest) and
 * storlines(cmd, source, callback).  cmd is "STOR name" or "APPE name";
 * source a string, a Lua file or a function returning chunks. */
static int do_stor(lua_State *L, int lines) {
  ftp_sess *s = check_sess(L);
  const char *fname = lines ? "storlines" : "storbinary";
  char verb[8];
  const char *arg = split_cmd(L, 2, verb, sizeof verb, fname);
  int cbarg = lines ? 4 : 5;
  xfer x;
  xsetup o;
  const char *abs;
  memset(&o, 0, sizeof o);
  o.insize = -1;
  if (strcmp(verb, "STOR") == 0) o.append = 0;
  else if (strcmp(verb, "APPE") == 0) o.append = 1;
  else return luaL_argerror(L, 2, "expected STOR or APPE");
  if (!arg) luaL_argerror(L, 2, "a file name is needed");
  luaL_argcheck(L, !lua_isnoneornil(L, 3), 3, "source expected");
  if (!lua_isnoneornil(L, cbarg)) luaL_checktype(L, cbarg, LUA_TFUNCTION);
  check_logged(L, s);
  xfer_init(&x, s);
  x.upload = 1;
  x.text = lines;
  if (lua_type(L, 3) == LUA_TSTRING) {
    x.str = lua_tolstring(L, 3, &x.slen);
    if (!lines) o.insize = (curl_off_t)x.slen;
  } else if ((x.fp = tofile(L, 3)) != NULL) {
    /* read in C */
  } else if (lua_isfunction(L, 3)) {
    lua_pushvalue(L, 3);
    x.fnref = luaL_ref(L, LUA_REGISTRYINDEX);
  } else {
    xfer_free(L, &x);
    return luaL_typeerror(L, 3, "string, file or function");
  }
  if (!lines) {
    lua_Integer bs = luaL_optinteger(L, 4, 8192);
    lua_Integer rest = luaL_optinteger(L, 6, 0);
    if (bs < 1 || bs > 64 * 1024 * 1024) { xfer_free(L, &x); luaL_argerror(L, 4, "blocksize out of range"); }
    if (rest < 0) { xfer_free(L, &x); luaL_argerror(L, 6, "negative rest"); }
    x.blocksize = (size_t)bs;
    if (rest > 0) { o.rest = rest; o.append = 1; o.insize = -1; }
  } else x.blocksize = 8192;
  if (!lua_isnoneornil(L, cbarg)) {
    lua_pushvalue(L, cbarg);
    x.cbref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  abs = push_abspath(L, s, arg);
  push_url(L, s, abs, 0);
  set_xlabel(L, s, fname, lines ? 5 : 7);
  return run_xfer(L, s, &x, &o, finish_xfer, fname);
}

static int m_storbinary(lua_State *L) { return do_stor(L, 0); }
static int m_storlines(lua_State *L) { return do_stor(L, 1); }

static int finish_size(lua_State *L, ftp_sess *s, CURLcode rc);

/* s:size(name) -> bytes, as curl asks: TYPE I, SIZE. */
static int m_size(lua_State *L) {
  ftp_sess *s = check_sess(L);
  xfer x;
  xsetup o;
  const char *abs;
  check_clean(L, 2, "name");
  check_logged(L, s);
  memset(&o, 0, sizeof o);
  xfer_init(&x, s);
  o.nobody = 1;
  abs = push_abspath(L, s, lua_tostring(L, 2));
  push_url(L, s, abs, 0);
  lua_pushfstring(L, "size %s", lua_tostring(L, 2));
  setstr(&s->label, lua_tostring(L, -1));
  lua_pop(L, 1);
  return run_xfer(L, s, &x, &o, finish_size, "size");
}

static int finish_size(lua_State *L, ftp_sess *s, CURLcode rc) {
  curl_off_t len = -1;
  if (rc != CURLE_OK) return sess_error(L, s, rc, NULL, "size");
  curl_easy_getinfo(s->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len);
  if (len < 0) {
    if (s->last.code >= 400) return sess_error(L, s, CURLE_REMOTE_FILE_NOT_FOUND, NULL, "size");
    return nl_pushfailcode(L, "protocol", "size: the server gave no size");
  }
  lua_pushinteger(L, (lua_Integer)len);
  return 1;
}

/* s:abort(): inside a transfer callback, ends the transfer (the control
 * connection is dropped; the next call reconnects).  Outside, nothing. */
static int m_abort(lua_State *L) {
  ftp_sess *s = check_sess(L);
  if (s->busy) s->aborting = 1;
  lua_pushboolean(L, 1);
  return 1;
}

static int finish_quit(lua_State *L, ftp_sess *s, CURLcode rc);

/* s:quit() -> "221 ..." reply; QUIT, then the session is closed. */
static int m_quit(lua_State *L) {
  ftp_sess *s = check_sess(L);
  const char *cmds[1] = {"QUIT"};
  check_idle(L, s);
  if (s->logged) {
    setstr(&s->label, "quit");
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
 * output: that goes to the original's callback only. */
static int m_clone(lua_State *L) {
  ftp_sess *s = check_sess(L), *c;
  check_logged(L, s);
  c = sess_alloc(L);
  c->host = dupstr(s->host); c->port = s->port;
  c->user = dupstr(s->user); c->pass = dupstr(s->pass);
  c->acct = dupstr(s->acct); c->cafile = dupstr(s->cafile);
  c->timeout = s->timeout; c->passive = s->passive;
  c->tls = s->tls; c->verify = s->verify;
  c->welcome = dupstr(s->welcome); c->entry = dupstr(s->entry);
  c->cwd = dupstr(s->cwd); c->server_cwd = dupstr(s->entry);
  if ((s->host && !c->host) || (s->user && !c->user) || (s->pass && !c->pass) ||
      (s->acct && !c->acct) || (s->cafile && !c->cafile) ||
      (s->entry && (!c->entry || !c->server_cwd)) || (s->cwd && !c->cwd))
    return luaL_error(L, "not enough memory");
  c->connected = c->logged = 1;
  return 1;
}

static int m_info(lua_State *L) {
  ftp_sess *s = check_sess(L);
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
  {"connect", m_connect}, {"login", m_login}, {"getwelcome", m_getwelcome},
  {"fileno", m_fileno}, {"getfd", m_fileno},
  {"set_debuglevel", m_set_debuglevel}, {"set_pasv", m_set_pasv},
  {"settimeout", m_settimeout},
  {"sendcmd", m_sendcmd}, {"voidcmd", m_voidcmd},
  {"retrbinary", m_retrbinary}, {"retrlines", m_retrlines},
  {"storbinary", m_storbinary}, {"storlines", m_storlines},
  {"cwd", m_cwd}, {"pwd", m_pwd}, {"size", m_size}, {"abort", m_abort},
  {"quit", m_quit}, {"close", m_close},
  {"_cmds", m_cmds}, {"_ask", m_ask}, {"_abspath", m_abspath}, {"_info", m_info},
  {"_clone", m_clone},
  {NULL, NULL}
};

void nl_open_ftp(lua_State *L) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  luaL_newmetatable(L, FTP);
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, m_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, m_close);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, m_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  lua_pushcfunction(L, l_session);
  lua_setfield(L, -2, "ftp_session");
  lua_pushcfunction(L, l_curl_version);
  lua_setfield(L, -2, "ftp_curl_version");
}
