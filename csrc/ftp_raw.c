/*
 * ftp_raw.c - transfers of paths that libcurl cannot express: names with
 * control characters (0x01-0x1f).  libcurl 7.88 URL-decodes an FTP path
 * with REJECT_CTRL, so RETR, STOR, APPE, SIZE and the listings of such a
 * path fail before a byte is sent, percent-encoded or not.
 *
 * What lives here: one transfer on a control connection of its own.
 * libcurl connects it (CURLOPT_CONNECT_ONLY: greeting, AUTH TLS, login,
 * with the session's own options) and then carries our commands
 * (curl_easy_send / curl_easy_recv); replies are framed by ftp_reply.c and
 * each final reply belongs to the one command just sent.  The data
 * connection is a plain TCP socket of ours (passive: to the control
 * connection's peer, never to the address a PASV reply names; active:
 * EPRT/PORT on the control connection's local address).  Data goes
 * through the session's sinks and sources (ftp_xfer.c).
 * What does not: TLS on the data connection (we have no TLS of our own):
 * a TLS session asks for PROT C and fails with code "tls" when the server
 * wants the data protected.  And the waits block the thread (bounded by
 * the session's timeout) rather than yield inside netlua.run: this path
 * is rare, and a login of its own per transfer is its price.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ftp.h"

#define RAWBUF (256 * 1024)

typedef struct raw {
  ftp_sess *s;
  lua_State *L;
  CURL *h;
  curl_socket_t fd;         /* control connection (curl's) */
  int dfd, lfd;             /* data connection; listening socket (active) */
  nl_deadline dl;
  nl_ftpr fr;
  char in[16384];           /* control bytes received, not framed yet */
  size_t ilen, ipos;
  const char *what;         /* label for messages */
  /* the failure, if any: message and code (a string, or a reply code) */
  int failed;               /* 1: msg below; 2: curl's code in ereply;
                             * 3: the bytes differ from the 150's size */
  nl_buf msg;
  const char *ecode;
  int ereply;
} raw;

int ftp_raw_needed(const char *abs) {
  const unsigned char *p;
  for (p = (const unsigned char *)abs; *p; p++)
    if (*p < 0x20) return 1;
  return 0;
}

/* ---- failures ------------------------------------------------------------ */

static int rfail(raw *r, const char *code, const char *fmt, ...) {
  char tmp[600];
  va_list ap;
  if (r->failed) return 0;
  r->failed = 1;
  r->ecode = code;
  va_start(ap, fmt);
  vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  nl_buf_append(&r->msg, r->what, strlen(r->what));
  nl_buf_append(&r->msg, ": ", 2);
  nl_buf_append(&r->msg, tmp, strlen(tmp));
  return 0;
}

/* The reply just framed says no: "label: <reply text>", its code. */
static int rfail_reply(raw *r) {
  if (r->failed) return 0;
  r->failed = 1;
  r->ereply = r->fr.code;
  nl_buf_append(&r->msg, r->what, strlen(r->what));
  nl_buf_append(&r->msg, ": ", 2);
  nl_buf_append(&r->msg, r->fr.text ? r->fr.text : "", r->fr.len);
  return 0;
}

static int rfail_wait(raw *r, int w, const char *during) {
  if (w == NL_TIMEOUT) return rfail(r, "timeout", "timed out (%s)", during);
  return rfail(r, "closed", "%s: %s", during, strerror(w));
}

/* ---- the control connection ---------------------------------------------- */

static int on_rawdebug(CURL *h, curl_infotype type, char *p, size_t n,
                       void *ud) {
  raw *r = ud;
  (void)h;
  if (type != CURLINFO_HEADER_IN && type != CURLINFO_HEADER_OUT) return 0;
  while (n > 0) {
    char *e = memchr(p, '\n', n);
    size_t len = e ? (size_t)(e - p) : n, used = e ? len + 1 : n;
    size_t l = len;
    if (l > 0 && p[l - 1] == '\r') l--;
    if (type == CURLINFO_HEADER_OUT) ftp_debug_cmd(r->s, p, l);
    else ftp_debug_print(r->s, "resp", p, l);
    p += used; n -= used;
  }
  return 0;
}

/* Connects and logs in as the session would, then stops (CONNECT_ONLY). */
static int raw_open(raw *r) {
  ftp_sess *s = r->s;
  CURLcode rc;
  char url[400];
  int n;
  r->h = curl_easy_init();
  if (!r->h) return rfail(r, "protocol", "libcurl init failed");
  ftp_apply_common(s, r->h, &r->dl);
  if (strchr(s->host, ':'))
    n = snprintf(url, sizeof url, "%s://[%s]:%d/",
                 s->tls == TLS_IMPLICIT ? "ftps" : "ftp", s->host, s->port);
  else
    n = snprintf(url, sizeof url, "%s://%s:%d/",
                 s->tls == TLS_IMPLICIT ? "ftps" : "ftp", s->host, s->port);
  if (n < 0 || (size_t)n >= sizeof url) return rfail(r, "protocol", "host name too long");
  curl_easy_setopt(r->h, CURLOPT_URL, url);
  curl_easy_setopt(r->h, CURLOPT_CONNECT_ONLY, 1L);
  if (s->debuglevel > 0) {
    curl_easy_setopt(r->h, CURLOPT_VERBOSE, 1L);
    curl_easy_setopt(r->h, CURLOPT_DEBUGFUNCTION, on_rawdebug);
    curl_easy_setopt(r->h, CURLOPT_DEBUGDATA, r);
  }
  rc = curl_easy_perform(r->h);
  if (rc != CURLE_OK) {
    /* pushed at the end from the handle (timeouts, TLS, login) */
    r->failed = 2;
    r->ereply = (int)rc;
    return 0;
  }
  if (curl_easy_getinfo(r->h, CURLINFO_ACTIVESOCKET, &r->fd) != CURLE_OK ||
      r->fd == CURL_SOCKET_BAD)
    return rfail(r, "protocol", "no control connection");
  return 1;
}

/* Sends one command.  Bytes already received then are a reply nobody
 * asked for: the next reply could not be paired with its command. */
static int raw_cmd(raw *r, const char *verb, const char *arg) {
  nl_buf b;
  size_t off = 0;
  int ok = 1;
  if (r->ipos < r->ilen) {
    char q[100];
    nl_ftpr_quote(q, sizeof q, r->in + r->ipos, r->ilen - r->ipos);
    return rfail(r, "protocol", "a reply no command asked for: %s", q);
  }
  nl_buf_init(&b);
  nl_buf_append(&b, verb, strlen(verb));
  if (arg) { nl_buf_append(&b, " ", 1); nl_buf_append(&b, arg, strlen(arg)); }
  ftp_debug_cmd(r->s, nl_buf_head(&b), b.len);
  if (nl_buf_append(&b, "\r\n", 2) != NL_OK) {
    nl_buf_free(&b);
    return rfail(r, "protocol", "out of memory");
  }
  while (off < b.len) {
    size_t sent = 0;
    CURLcode rc = curl_easy_send(r->h, nl_buf_head(&b) + off, b.len - off, &sent);
    if (rc == CURLE_AGAIN) {
      int w = nl_wait(r->fd, NL_WAIT_WRITE, &r->dl);
      if (w != NL_OK) { ok = rfail_wait(r, w, verb); break; }
      continue;
    }
    if (rc != CURLE_OK) {
      ok = rfail(r, "closed", "%s: %s", verb, curl_easy_strerror(rc));
      break;
    }
    off += sent;
  }
  nl_buf_free(&b);
  return ok;
}

/* Reads the next reply (preliminary or final): its code, or 0. */
static int raw_reply(raw *r, const nl_deadline *d) {
  for (;;) {
    if (r->ipos < r->ilen) {
      size_t used;
      int ev = nl_ftpr_feed(&r->fr, r->in + r->ipos, r->ilen - r->ipos, &used);
      r->ipos += used;
      if (ev == NL_FTPR_REPLY) {
        ftp_debug_print(r->s, "resp", r->fr.text ? r->fr.text : "", r->fr.len);
        if (r->fr.code < 100 || r->fr.code > 599)
          return rfail(r, "protocol", "not an FTP reply code: %d", r->fr.code);
        return r->fr.code;
      }
      if (ev == NL_FTPR_NOTFTP) return rfail(r, "protocol", "not an FTP reply: %s", r->fr.bad);
      if (ev == NL_FTPR_LONG)
        return rfail(r, "limit", "reply line longer than %d bytes", NL_FTPR_MAX);
      continue;
    }
    r->ipos = r->ilen = 0;
    {
      size_t n = 0;
      CURLcode rc = curl_easy_recv(r->h, r->in, sizeof r->in, &n);
      if (rc == CURLE_AGAIN) {
        int w = nl_wait(r->fd, NL_WAIT_READ, d);
        if (w != NL_OK) return rfail_wait(r, w, "waiting for a reply");
        continue;
      }
      if (rc != CURLE_OK)
        return rfail(r, "closed", "control connection: %s", curl_easy_strerror(rc));
      if (n == 0) return rfail(r, "closed", "the server closed the control connection");
      r->ilen = n;
    }
  }
}

/* The final reply to the command just sent (preliminaries skipped). */
static int raw_final(raw *r) {
  int code;
  do code = raw_reply(r, &r->dl); while (code > 0 && code < 200);
  return code;
}

/* Sends a command and wants a 2xx (or want) reply; anything else fails. */
static int raw_expect(raw *r, const char *verb, const char *arg, int want) {
  int code;
  if (!raw_cmd(r, verb, arg)) return 0;
  code = raw_final(r);
  if (code == 0) return 0;
  if (want ? code != want : (code < 200 || code > 299)) return rfail_reply(r);
  return code;
}

/* ---- the data connection --------------------------------------------------- */

static int set_port(struct sockaddr_storage *a, unsigned port) {
  if (a->ss_family == AF_INET) ((struct sockaddr_in *)a)->sin_port = htons(port);
  else if (a->ss_family == AF_INET6) ((struct sockaddr_in6 *)a)->sin6_port = htons(port);
  else return 0;
  return 1;
}

/* The port an EPSV (229 "... (|||port|)") or PASV (227 "(h,h,h,h,p,p)")
 * reply names, or -1.  PASV's address is ignored on purpose. */
static long reply_port(const char *t, size_t n, int epsv) {
  const char *p = memchr(t, '(', n), *e = t + n;
  if (!p) return -1;
  p++;
  if (epsv) {
    char d;
    long v = 0;
    int nd = 0;
    if (e - p < 4) return -1;
    d = p[0];
    if (d < 33 || d > 126 || p[1] != d || p[2] != d) return -1;
    for (p += 3; p < e && *p >= '0' && *p <= '9' && nd < 6; p++, nd++) v = v * 10 + (*p - '0');
    if (nd == 0 || p >= e || *p != d || v < 1 || v > 65535) return -1;
    return v;
  } else {
    long f[6];
    int i;
    for (i = 0; i < 6; i++) {
      int nd = 0;
      f[i] = 0;
      while (p < e && *p == ' ') p++;
      for (; p < e && *p >= '0' && *p <= '9' && nd < 4; p++, nd++) f[i] = f[i] * 10 + (*p - '0');
      if (nd == 0 || f[i] > 255) return -1;
      if (i < 5) { if (p >= e || *p != ',') return -1; p++; }
    }
    if (f[4] * 256 + f[5] < 1) return -1;
    return f[4] * 256 + f[5];
  }
}

/* Passive: EPSV (PASV when refused), then a connection to the control
 * connection's peer at that port. */
static int data_passive(raw *r) {
  struct sockaddr_storage a;
  socklen_t alen = sizeof a;
  long port;
  int code, err;
  if (!raw_cmd(r, "EPSV", NULL)) return 0;
  code = raw_final(r);
  if (code == 0) return 0;
  if (code == 229) port = reply_port(r->fr.text, r->fr.len, 1);
  else if (code >= 500) {
    if (!raw_expect(r, "PASV", NULL, 227)) return 0;
    port = reply_port(r->fr.text, r->fr.len, 0);
  } else return rfail_reply(r);
  if (port < 0) {
    char q[100];
    nl_ftpr_quote(q, sizeof q, r->fr.text, r->fr.len);
    return rfail(r, "protocol", "no port in %s", q);
  }
  if (getpeername(r->fd, (struct sockaddr *)&a, &alen) < 0 || !set_port(&a, (unsigned)port))
    return rfail(r, "closed", "control connection: %s", strerror(errno));
  r->dfd = socket(a.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (r->dfd < 0) return rfail(r, "io", "socket: %s", strerror(errno));
  if (connect(r->dfd, (struct sockaddr *)&a, alen) == 0) return 1;
  if (errno != EINPROGRESS) return rfail(r, "refused", "data connection: %s", strerror(errno));
  err = nl_connect_wait(r->dfd, NULL, &r->dl);
  if (err == NL_TIMEOUT) return rfail_wait(r, err, "data connection");
  if (err != NL_OK) return rfail(r, "refused", "data connection: %s", strerror(err));
  return 1;
}

/* Active: a listening socket on the control connection's local address,
 * named by EPRT (PORT when EPRT is refused, IPv4 only). */
static int data_active(raw *r) {
  struct sockaddr_storage a;
  socklen_t alen = sizeof a;
  char ip[INET6_ADDRSTRLEN], arg[100];
  unsigned port;
  int v6, code;
  if (getsockname(r->fd, (struct sockaddr *)&a, &alen) < 0 || !set_port(&a, 0))
    return rfail(r, "closed", "control connection: %s", strerror(errno));
  r->lfd = socket(a.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (r->lfd < 0) return rfail(r, "io", "socket: %s", strerror(errno));
  if (bind(r->lfd, (struct sockaddr *)&a, alen) < 0 || listen(r->lfd, 1) < 0 ||
      getsockname(r->lfd, (struct sockaddr *)&a, &alen) < 0)
    return rfail(r, "io", "data listener: %s", strerror(errno));
  v6 = a.ss_family == AF_INET6;
  if (v6) {
    inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&a)->sin6_addr, ip, sizeof ip);
    port = ntohs(((struct sockaddr_in6 *)&a)->sin6_port);
  } else {
    inet_ntop(AF_INET, &((struct sockaddr_in *)&a)->sin_addr, ip, sizeof ip);
    port = ntohs(((struct sockaddr_in *)&a)->sin_port);
  }
  snprintf(arg, sizeof arg, "|%d|%s|%u|", v6 ? 2 : 1, ip, port);
  if (!raw_cmd(r, "EPRT", arg)) return 0;
  code = raw_final(r);
  if (code == 0) return 0;
  if (code >= 200 && code < 300) return 1;
  if (code < 500 || v6) return rfail_reply(r);
  {
    char *c;
    for (c = ip; *c; c++) if (*c == '.') *c = ',';
    snprintf(arg, sizeof arg, "%s,%u,%u", ip, port >> 8, port & 255);
  }
  return raw_expect(r, "PORT", arg, 0);
}

/* Active: the server's connection, from the control connection's peer. */
static int data_accept(raw *r) {
  struct sockaddr_storage a, peer;
  socklen_t alen = sizeof a, plen = sizeof peer;
  for (;;) {
    int w;
    alen = sizeof a;
    r->dfd = accept(r->lfd, (struct sockaddr *)&a, &alen);
    if (r->dfd >= 0) break;
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      return rfail(r, "io", "data connection: %s", strerror(errno));
    w = nl_wait(r->lfd, NL_WAIT_READ, &r->dl);
    if (w != NL_OK) return rfail_wait(r, w, "waiting for the data connection");
  }
  if (nl_set_nonblock(r->dfd) != NL_OK)
    return rfail(r, "io", "data connection: %s", strerror(errno));
  if (getpeername(r->fd, (struct sockaddr *)&peer, &plen) < 0 ||
      peer.ss_family != a.ss_family ||
      (a.ss_family == AF_INET &&
       memcmp(&((struct sockaddr_in *)&a)->sin_addr,
              &((struct sockaddr_in *)&peer)->sin_addr, 4) != 0) ||
      (a.ss_family == AF_INET6 &&
       memcmp(&((struct sockaddr_in6 *)&a)->sin6_addr,
              &((struct sockaddr_in6 *)&peer)->sin6_addr, 16) != 0))
    return rfail(r, "protocol", "data connection from another address than the server's");
  return 1;
}

/* ---- moving the data --------------------------------------------------------- */

/* Hands received bytes to the sink; in TYPE A, CR LF becomes LF (as curl
 * does for listings), *cr carrying a CR that ended the last piece. */
static int sink(xfer *x, char *p, size_t n, int *cr) {
  if (x->text) {
    size_t i, o = 0;
    if (*cr && n > 0) {
      *cr = 0;
      if (p[0] != '\n' && !ftp_xfer_sink(x, "\r", 1)) return 0;
    }
    for (i = 0; i < n; i++) {
      if (p[i] == '\r') {
        if (i + 1 == n) { *cr = 1; break; }
        if (p[i + 1] == '\n') continue;
      }
      p[o++] = p[i];
    }
    n = o;
  }
  return n == 0 || ftp_xfer_sink(x, p, n);
}

static int download(raw *r, xfer *x, char *buf) {
  int cr = 0;
  for (;;) {
    ssize_t n = recv(r->dfd, buf, RAWBUF, 0);
    if (n > 0) {
      if (!sink(x, buf, (size_t)n, &cr)) return 0;
      continue;
    }
    if (n == 0) break;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      int w = nl_wait(r->dfd, NL_WAIT_READ, &r->dl);
      if (w != NL_OK) return rfail_wait(r, w, "data connection");
      continue;
    }
    return rfail(r, "closed", "data connection: %s", strerror(errno));
  }
  if (cr && !ftp_xfer_sink(x, "\r", 1)) return 0;
  return 1;
}

static int send_all(raw *r, const char *p, size_t n) {
  while (n > 0) {
    ssize_t k = send(r->dfd, p, n, MSG_NOSIGNAL);
    if (k > 0) { p += k; n -= (size_t)k; continue; }
    if (k < 0 && errno == EINTR) continue;
    if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      int w = nl_wait(r->dfd, NL_WAIT_WRITE, &r->dl);
      if (w != NL_OK) return rfail_wait(r, w, "data connection");
      continue;
    }
    return rfail(r, "closed", "data connection: %s", strerror(errno));
  }
  return 1;
}

/* Sends the source; in TYPE A each LF goes as CR LF (storlines' source
 * gives bare LF, as it does to curl). */
static int upload(raw *r, xfer *x, char *buf) {
  size_t room = x->text ? RAWBUF / 2 : RAWBUF;
  for (;;) {
    size_t n;
    if (!ftp_xfer_source(x, buf, room, &n)) return 0;
    if (n == 0) break;
    if (x->text) {
      size_t i, nl = 0, o;
      for (i = 0; i < n; i++) nl += buf[i] == '\n';
      o = n + nl;
      for (i = n; i-- > 0;) {   /* in place, from the end */
        buf[--o] = buf[i];
        if (buf[i] == '\n') buf[--o] = '\r';
      }
      n += nl;
    }
    if (!send_all(r, buf, n)) return 0;
  }
  shutdown(r->dfd, SHUT_WR);
  return 1;
}

/* ---- one operation ----------------------------------------------------------- */

static const char *const VERBS[] = {"RETR", "LIST", "NLST", "MLSD", "STOR", "APPE", "SIZE"};

/* The data-channel refusals of RFC 4217 (and vsftpd's 522). */
static int tls_refusal(int code) {
  return code == 521 || code == 522 || code == 533 || code == 534 || code == 536;
}

static int run(raw *r, int kind, const char *abs, xfer *x, curl_off_t rest,
               char *buf, long long *size) {
  ftp_sess *s = r->s;
  int code, upload_ = kind == RAW_STOR || kind == RAW_APPE;
  if (!raw_open(r)) return 0;
  if (s->tls != TLS_NONE && kind != RAW_SIZE) {
    /* our data socket cannot speak TLS: the data must go in clear */
    if (!raw_cmd(r, "PROT", "C")) return 0;
    code = raw_final(r);
    if (code == 0) return 0;
    if (code < 200 || code > 299) {
      char q[200];
      nl_ftpr_quote(q, sizeof q, r->fr.text, r->fr.len);
      return rfail(r, "tls", "names with control characters need a clear data "
                   "channel, which the server refused (%s)", q);
    }
  }
  if (!raw_expect(r, "TYPE", x && x->text ? "A" : "I", 0)) return 0;
  if (kind == RAW_SIZE) {
    char *e;
    long long v;
    if (!raw_expect(r, "SIZE", abs, 213)) return 0;
    if (r->fr.len < 5) return rfail(r, "protocol", "the server gave no size");
    v = strtoll(r->fr.text + 4, &e, 10);
    if (e == r->fr.text + 4 || v < 0) return rfail(r, "protocol", "the server gave no size");
    *size = v;
    return 1;
  }
  if (s->passive ? !data_passive(r) : !data_active(r)) return 0;
  if (rest > 0) {
    if (upload_) {
      if (ftp_xfer_seek(x, rest, SEEK_SET) != CURL_SEEKFUNC_OK)
        return rfail(r, "io", "cannot seek the source to %lld", (long long)rest);
    } else {
      char n[32];
      snprintf(n, sizeof n, "%lld", (long long)rest);
      if (!raw_expect(r, "REST", n, 350)) return 0;
    }
  }
  if (!raw_cmd(r, kind == RAW_STOR && rest > 0 ? "APPE" : VERBS[kind], abs)) return 0;
  code = raw_reply(r, &r->dl);
  if (code == 0) return 0;
  if (code >= 300) {
    if (s->tls != TLS_NONE && tls_refusal(code)) {
      char q[200];
      nl_ftpr_quote(q, sizeof q, r->fr.text, r->fr.len);
      return rfail(r, "tls", "names with control characters need a clear data "
                   "channel, which the server refused (%s)", q);
    }
    return rfail_reply(r);
  }
  if (code < 200) {
    if (!upload_ && !x->text) x->announced = nl_ftpr_announced(r->fr.text, r->fr.len);
    if (!s->passive && !data_accept(r)) return 0;
  }
  if (r->dfd >= 0) {
    if (upload_ ? !upload(r, x, buf) : !download(r, x, buf)) return 0;
    close(r->dfd);
    r->dfd = -1;
  }
  if (code < 200) {
    code = raw_final(r);
    if (code == 0) return 0;
    if (code >= 300) return rfail_reply(r);
  }
  if (!ftp_xfer_whole(r->s, x, rest)) {
    r->failed = 3;  /* pushed at the end by ftp_push_partial */
    return 0;
  }
  if (!upload_ && !ftp_xfer_flush(x)) return 0;
  return 1;
}

/* Says goodbye (briefly: the result is known) and releases everything. */
static void raw_close(raw *r) {
  if (r->dfd >= 0) close(r->dfd);
  if (r->lfd >= 0) close(r->lfd);
  r->dfd = r->lfd = -1;
  if (r->h) {
    if (r->fd != CURL_SOCKET_BAD) {
      if (!r->failed) {
        nl_deadline d;
        nl_deadline_start(&d, 1.0);
        if (r->dl.at >= 0 && r->dl.at < d.at) d = r->dl;
        if (raw_cmd(r, "QUIT", NULL)) raw_reply(r, &d);
      }
      /* curl says goodbye again on cleanup: make that fail at once */
      shutdown(r->fd, SHUT_RDWR);
    }
    curl_easy_setopt(r->h, CURLOPT_VERBOSE, 0L);
    curl_easy_cleanup(r->h);
    r->h = NULL;
  }
}

int ftp_raw_run(lua_State *L, ftp_sess *s, int kind, const char *abs,
                xfer *x, curl_off_t rest) {
  raw r;
  char *buf = NULL;
  long long size = -1;
  int ok, n, aborted;
  memset(&r, 0, sizeof r);
  r.s = s; r.L = L;
  r.fd = CURL_SOCKET_BAD;
  r.dfd = r.lfd = -1;
  r.what = s->label ? s->label : VERBS[kind];
  nl_ftpr_init(&r.fr);
  nl_buf_init(&r.msg);
  nl_deadline_start(&r.dl, s->timeout);
  s->busy = 1;
  s->L = L;
  s->aborting = 0;
  if (kind != RAW_SIZE && (buf = malloc(RAWBUF)) == NULL) {
    ok = rfail(&r, "io", "out of memory");
  } else {
    ok = run(&r, kind, abs, x, rest, buf, &size);
  }
  aborted = s->aborting;
  /* the results first: the handle (for curl's errors), the callback's
   * error and the final reply are still there */
  if (ok) {
    if (kind == RAW_SIZE) lua_pushinteger(L, (lua_Integer)size);
    else lua_pushlstring(L, r.fr.text ? r.fr.text : "", r.fr.len);
    n = 1;
  } else if (x && x->failed) {
    lua_pushnil(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, x->errref);
    lua_pushliteral(L, "callback");
    n = 3;
  } else if (aborted) {
    n = nl_pushfailcode(L, "aborted", "%s: transfer aborted", r.what);
  } else if (r.failed == 2) {
    n = ftp_push_curlerr(L, r.h, (CURLcode)r.ereply, r.what);
  } else if (r.failed == 3) {
    n = ftp_push_partial(L, s, r.what);
  } else {
    lua_pushnil(L);
    lua_pushlstring(L, nl_buf_head(&r.msg), r.msg.len);
    if (r.ereply) lua_pushinteger(L, r.ereply);
    else lua_pushstring(L, r.ecode ? r.ecode : "protocol");
    n = 3;
  }
  if (!ok) r.failed = 1;  /* no QUIT: the connection is just dropped */
  raw_close(&r);
  s->busy = 0;
  s->aborting = 0;
  free(buf);
  nl_ftpr_free(&r.fr);
  nl_buf_free(&r.msg);
  if (x) ftp_xfer_free(L, x);
  ftp_setstr(&s->label, NULL);
  return n;
}
