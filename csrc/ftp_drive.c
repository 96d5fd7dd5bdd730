/*
 * ftp_drive.c - runs one operation of an FTP session on its libcurl easy
 * handle, driven by the session's private multi handle.
 *
 * What lives here: the options applied before every operation (curl_easy_
 * reset clears them all), the debug stream (commands out, reply lines in,
 * PASS masked) with each final reply paired to the command that caused
 * it, the waits on curl's sockets and timer (yielding inside netlua.run),
 * the one retry on a dead reused connection, dropping a connection whose
 * replies can no longer be attributed, and the mapping of CURLcode and
 * replies to netlua's nil, message, code.
 * What does not: what an operation asks for (the methods in ftp.c,
 * ftp_xfer.c and ftp_connect.c set it up and read its result) and how
 * replies are framed (ftp_reply.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#ifdef __linux__
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#endif

#include "ftp.h"

/* ---- debug stream: commands out, reply lines in ------------------------ */

void ftp_debug_print(ftp_sess *s, const char *tag, const char *p,
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
  ftp_debug_print(s, "resp", t, n);
  if (code == 421) s->got421 = 1;
  /* under TLS, a reply with no record received since its command was
   * read before the command went out: it answers nothing we asked, and
   * curl would take it as this command's answer */
  if (s->op_sent > 0 && ftp_tlsrec_early(s)) s->early = 1;
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
    if (code == 250) ftp_setstr(&s->server_cwd, s->op_cwd);
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

/* A command for the debug output; a password never reaches it. */
void ftp_debug_cmd(ftp_sess *s, const char *p, size_t n) {
  if (n >= 5 && strncasecmp(p, "PASS ", 5) == 0) ftp_debug_print(s, "cmd", "PASS ****", 9);
  else ftp_debug_print(s, "cmd", p, n);
}

static void command_out(ftp_sess *s, const char *p, size_t n) {
  int i;
  s->op_sent++;
  s->login_cmd = n >= 5 && (strncasecmp(p, "USER ", 5) == 0 ||
      strncasecmp(p, "PASS ", 5) == 0 || strncasecmp(p, "ACCT ", 5) == 0);
  ftp_debug_cmd(s, p, n);
  if (n >= 5 && strncasecmp(p, "AUTH ", 5) == 0) {
    /* the reply before the first command is the greeting */
    ftp_setmem(&s->welcome, nl_buf_head(&s->last.text), s->last.text.len);
    s->after_auth = 1;
  } else if (n >= 5 && strncasecmp(p, "USER ", 5) == 0) {
    if (!s->after_auth)
      ftp_setmem(&s->welcome, nl_buf_head(&s->last.text), s->last.text.len);
    s->after_auth = 0;
    s->op_login = 1;
    s->logins++;
    if (s->logged) s->reconnects++;
    ftp_setstr(&s->server_cwd, s->entry);
  }
  for (i = 0; i < s->nquote; i++) {
    if (strlen(s->quote[i]) == n && memcmp(s->quote[i], p, n) == 0) {
      s->qwait = i;
      if (n > 4 && strncasecmp(p, "CWD ", 4) == 0) ftp_setmem(&s->op_cwd, p + 4, n - 4);
      break;
    }
  }
}

static int on_debug(CURL *h, curl_infotype type, char *p, size_t n,
                    void *ud) {
  ftp_sess *s = ud;
  if (type == CURLINFO_HEADER_OUT) ftp_tlsrec_command(s, h);
  if (type == CURLINFO_HEADER_IN || type == CURLINFO_HEADER_OUT) {
    /* each call carries whole lines here; split to be safe */
    if (type == CURLINFO_HEADER_IN) {
      /* bytes before any command of an operation: a new connection's
       * greeting (on a kept one a command always goes first) */
      if (s->op_sent == 0 && s->op_in == 0) s->in_seen = 0;
      s->in_seen += n;
      s->op_in += n;
    }
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
    ftp_debug_print(s, "info", p, l);
  }
  return 0;
}

/* curl closes a socket: the control connection's number stops being ours
 * to hand out (fileno) the moment it goes. */
static int on_closesocket(void *ud, curl_socket_t fd) {
  ftp_sess *s = ud;
  if (fd == s->ctl_fd) s->ctl_fd = CURL_SOCKET_BAD;
  return close(fd);
}

/* ---- options and the perform loop -------------------------------------- */

int ftp_curl_at_least(unsigned int v) {
  return curl_version_info(CURLVERSION_NOW)->version_num >= v;
}

/* Everything but the URL and the operation; run after every reset, and
 * for the mirror handles too. */
void ftp_apply_common(ftp_sess *s, CURL *h, const nl_deadline *d) {
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
    if (!ftp_curl_at_least(0x080900))
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
  ftp_apply_common(s, h, d);
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
  ftp_tlsrec_apply(s, h);
  if (s->pre_fd >= 0) {
    curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, ftp_on_opensocket);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, s);
    curl_easy_setopt(h, CURLOPT_SOCKOPTFUNCTION, ftp_on_sockopt_pre);
  }
}

/* ---- waiting for curl's sockets (multi socket interface) --------------- */

/* CURLMOPT_SOCKETFUNCTION: keep s->epfd watching what curl wants. */
static int on_socket(CURL *e, curl_socket_t fd, int what, void *ud,
                     void *sp) {
  ftp_sess *s = ud;
  (void)e; (void)sp;
  int i, known;
  for (i = 0; i < s->nw && s->wfd[i] != fd; i++) {}
  known = i < s->nw;   /* in the epoll set already (unless closed since) */
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
    /* try what is likely first: a socket closed since (its number reused)
     * has left the set, one curl forgot to remove is still in it */
    if (known) {
      if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 && errno == ENOENT)
        epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev);
    } else if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 && errno == EEXIST) {
      epoll_ctl(s->epfd, EPOLL_CTL_MOD, fd, &ev);
    }
  }
#endif
  return 0;
}

/* Makes the session's easy and multi handles and the epoll set its waits
 * use (raises on failure; sess_free releases what was made). */
void ftp_drive_open(lua_State *L, ftp_sess *s) {
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

/* Tells curl which of its sockets are ready and whether its timer ran out;
 * when neither, runs it anyway (a wait that ended without a reason, or
 * curl waiting for nothing).  Waits up to ms for its sockets first (Linux:
 * the blocking wait itself, one system call; 0: only looks). */
static void sock_ready(ftp_sess *s, int ms) {
  int running, acted = 0;
#ifdef __linux__
  struct epoll_event ev[8];
  int n, i;
  n = epoll_wait(s->epfd, ev, 8, ms);
  for (i = 0; i < n; i++) {
    int mask = 0;
    if (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) mask |= CURL_CSELECT_IN;
    if (ev[i].events & (EPOLLOUT | EPOLLERR)) mask |= CURL_CSELECT_OUT;
    if (ev[i].events & EPOLLERR) mask |= CURL_CSELECT_ERR;
    curl_multi_socket_action(s->multi, ev[i].data.fd, mask, &running);
    acted = 1;
  }
#else
  (void)ms;  /* drive() waited already */
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

/* drive()'s answer when a wait pends: the operation returns
 * nl_coop_pend and comes back through op_resume. */
#define DRIVE_PENDING ((CURLcode)-1)

/* Drives the easy handle (on the multi already) to its end;
 * CURLE_OPERATION_TIMEDOUT when the deadline passes first.  Each wait is
 * for s->epfd, capped by curl's timer: inside netlua.run it pends
 * (DRIVE_PENDING), and the operation comes back here through op_resume. */
static CURLcode drive(ftp_sess *s) {
  const nl_deadline *d = &s->op.dl;
  CURLcode rc = CURLE_OK;
  int block_ms = 0;  /* how long sock_ready may wait: the first look does not */
  for (;;) {
    nl_deadline w;
    double t;
    if (nl_coop_share(&s->co) == NL_PENDING)
      return DRIVE_PENDING;  /* a transfer that never waits takes turns */
    if (s->paused) {  /* by on_write, for that turn: go on */
      s->paused = 0;
      curl_easy_pause(s->easy, CURLPAUSE_CONT);
      /* curl 7.88 takes the data socket out of its interest while paused
       * and does not put it back on CONT: without a run of every
       * transfer here the wait below sleeps its whole 0.2 s */
      kick(s);
    }
    sock_ready(s, block_ms);
    block_ms = 0;
    /* see reply_line and reply_done */
    if (s->not_ftp || s->early) return CURLE_WEIRD_SERVER_REPLY;
    if (xfer_done(s, &rc)) return rc;
    if (s->nw == 0) {  /* nothing to wait for: see kick() */
      kick(s);
      if (s->not_ftp || s->early) return CURLE_WEIRD_SERVER_REPLY;
      if (xfer_done(s, &rc)) return rc;
    }
    if (d->at >= 0 && nl_monotime() > d->at + 0.25) return CURLE_OPERATION_TIMEDOUT;
    /* paused by on_write just now: the data socket is out of curl's
     * interest, so a wait would sleep; take turns and go on instead */
    if (s->paused) continue;
    w.at = d->at >= 0 ? d->at + 0.25 : -1.0;
    t = timer_at(s);
    if (t >= 0 && (w.at < 0 || t < w.at)) w.at = t;
    t = nl_monotime() + 0.2;  /* see kick(): never trust a long silence */
    if (w.at < 0 || t < w.at) w.at = t;
#ifdef __linux__
    if (!nl_coop_yields(&s->co)) {
      /* outside a task: the next sock_ready waits in epoll_wait itself
       * rather than poll() on the set and then epoll_wait to read it */
      double left = w.at - nl_monotime();
      block_ms = left <= 0 ? 0 : (int)(left * 1000.0) + 1;
      continue;
    }
    if (nl_coop_wait(&s->co, s->epfd, NL_WAIT_READ, &w) == NL_PENDING)
      return DRIVE_PENDING;
#else
    /* one descriptor per wait: with several (control and data), look
     * again soon */
    if (s->nw > 1) {
      nl_deadline soon;
      nl_deadline_start(&soon, 0.05);
      if (w.at < 0 || soon.at < w.at) w = soon;
    }
    if (nl_coop_wait(&s->co, s->nw > 0 ? s->wfd[s->nw - 1] : -1,
                     s->nw > 0 ? s->wev[s->nw - 1] : 0, &w) == NL_PENDING)
      return DRIVE_PENDING;
#endif
  }
}

/* ---- operations and their results ------------------------------------- */

static void op_reset(ftp_sess *s) {
  int i;
  s->qwait = -1;
  s->op_login = 0;
  s->aborting = 0;
  s->not_ftp = 0;
  s->early = 0;
  s->paused = 0;
  s->op_sent = s->op_finals = 0;
  s->op_in = 0;
  s->got421 = 0;
  for (i = 0; i < NQUOTE; i++) { s->qr[i].code = -1; s->qr[i].text.len = 0; s->qr[i].text.start = 0; }
  nl_ftpr_reset(&s->fr);
  s->last.code = -1; s->last.text.len = 0; s->last.text.start = 0;
  free(s->op_cwd); s->op_cwd = NULL;
}

/* Releases what the operation held (idempotent). */
void ftp_op_clear(lua_State *L, ftp_sess *s) {
  op_state *o = &s->op;
  if (o->use_x) { ftp_xfer_free(L, &o->x); o->use_x = 0; }
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

/* Whether the kept control connection holds reply bytes nobody asked
 * for.  curl reads a segment whole and keeps what follows the reply it
 * wanted for the next command, which would take it as its own answer; a
 * reply sent late waits in the socket for the same fate.  Both show as
 * bytes the kernel received (TCP_INFO) that were never shown to us as
 * reply lines, or as bytes still unread.  Over TLS the wire bytes are
 * not the reply bytes: only unread ones are seen there. */
static int stray_input(ftp_sess *s) {
#ifdef __linux__
  int inq = 0;
  struct tcp_info ti;
  socklen_t len = sizeof ti;
  if (s->ctl_fd == CURL_SOCKET_BAD) return 0;
  if (s->tls == TLS_NONE) {
    /* every byte received, read or not, against those shown as replies:
     * unread bytes are among them */
    memset(&ti, 0, sizeof ti);
    if (getsockopt(s->ctl_fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
        len >= offsetof(struct tcp_info, tcpi_bytes_received) + sizeof ti.tcpi_bytes_received)
      return ti.tcpi_bytes_received > s->in_seen;
    /* a kernel before 4.1: unread bytes are all we can see */
  }
  return ioctl(s->ctl_fd, SIOCINQ, &inq) == 0 && inq > 0;
#else
  (void)s;
  return 0;
#endif
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
      /* a reply that came since the last operation answered nothing */
      if (!s->fresh && stray_input(s)) drop_connection(s);
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
    rc = drive(s);
    if (rc == DRIVE_PENDING) return nl_coop_pend(L, &s->co);  /* op_resume */
    {
      /* only known while the handle is in the multi: kept for fileno */
      curl_socket_t fd = CURL_SOCKET_BAD;
      if (curl_easy_getinfo(s->easy, CURLINFO_ACTIVESOCKET, &fd) == CURLE_OK &&
          fd != CURL_SOCKET_BAD)
        s->ctl_fd = fd;
    }
    curl_multi_remove_handle(s->multi, s->easy);
    o->added = 0;
    if (s->got421 || s->early || s->op_sent != s->op_finals || stray_input(s))
      drop_connection(s);
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
  ftp_op_clear(L, s);
  ftp_setstr(&s->label, NULL);
  return n;
}

/* Starts the operation set up in s->op (URL at stack index url) and
 * returns what its finish step returns. */
int ftp_op_run(lua_State *L, ftp_sess *s, int url, setup_fn setup,
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

/* The restart after a wait: the session (its first argument) and the
 * Lua stack are as they were at the wait. */
static int op_resume(lua_State *L) {
  ftp_sess *s = luaL_checkudata(L, 1, FTP);
  nl_deadline d;
  if (nl_coop_closed(L, &s->co))  /* by another task: sess_free cleaned up */
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

int ftp_error(lua_State *L, ftp_sess *s, CURLcode rc, xfer *x,
                      const char *what) {
  char *text;
  int n, code = s->last.code;
  if (s->label) what = s->label;  /* what the caller named, else the method */
  if (s->not_ftp && !(x && x->failed))
    return nl_pushfailcode(L, "protocol", "%s: not an FTP reply: %s", what,
                           s->bad_line);
  if (s->early && !(x && x->failed))
    return nl_pushfailcode(L, "protocol", "%s: a reply arrived before its "
                           "command was sent (the server answers what was not "
                           "asked); the connection is dropped", what);
  text = malloc(s->last.text.len + 1);
  if (text) {
    memcpy(text, nl_buf_head(&s->last.text), s->last.text.len);
    text[s->last.text.len] = '\0';
  }
  n = push_error(L, s, s->easy, rc, code, text ? text : "", x, what);
  free(text);
  return n;
}

int ftp_push_curlerr(lua_State *L, CURL *h, CURLcode rc, const char *what) {
  return push_error(L, NULL, h, rc, 0, "", NULL, what);
}
