/*
 * ftp_reply.c - FTP reply framing (RFC 959 4.2), kept apart from the
 * protocol as curl keeps pingpong.c apart from ftp.c.
 *
 * What lives here: turning lines (curl's debug stream) or raw bytes (the
 * greeting peeked at connect) into complete replies, multi-line replies
 * included; the limits on line and reply length; spotting a line that
 * cannot be FTP; reading the size a 150 reply announces.
 * What does not: which command a reply belongs to (the session, ftp.c),
 * any I/O, Lua or libcurl.  Fuzzed by fuzz/fuzz_ftpreply.c.
 */
#include <stdlib.h>
#include <string.h>

#include "ftp_reply.h"

void nl_ftpr_init(nl_ftpr *r) {
  memset(r, 0, sizeof *r);
}

void nl_ftpr_free(nl_ftpr *r) {
  free(r->text);
  free(r->line);
  nl_ftpr_init(r);
}

void nl_ftpr_reset(nl_ftpr *r) {
  r->code = r->multi = r->lines = r->done = r->cut = 0;
  r->len = r->llen = 0;
  r->bad[0] = '\0';
}

/* Appends at most what NL_FTPR_MAX leaves room for; 0 when memory ran out. */
static int grow(char **p, size_t *len, size_t *cap, const char *s, size_t n) {
  if (*len + n > *cap) {
    size_t c = *cap ? *cap : 128;
    char *q;
    while (c < *len + n) c *= 2;
    if (c > NL_FTPR_MAX) c = NL_FTPR_MAX;
    q = realloc(*p, c);
    if (!q) return 0;
    *p = q; *cap = c;
  }
  memcpy(*p + *len, s, n);
  *len += n;
  return 1;
}

static void add_text(nl_ftpr *r, const char *p, size_t n) {
  size_t room = NL_FTPR_MAX - r->len;
  if (n > room) { n = room; r->cut = 1; }
  if (n > 0 && !grow(&r->text, &r->len, &r->cap, p, n)) r->cut = 1;
}

static int digits3(const char *p, size_t n) {
  return n >= 3 && p[0] >= '0' && p[0] <= '9' && p[1] >= '0' &&
         p[1] <= '9' && p[2] >= '0' && p[2] <= '9';
}

int nl_ftpr_starts(const char *p, size_t n) {
  return n >= 4 && digits3(p, n) && (p[3] == ' ' || p[3] == '-');
}

void nl_ftpr_quote(char *out, size_t size, const char *p, size_t n) {
  static const char hex[] = "0123456789abcdef";
  size_t i, k = 0;
  out[k++] = '"';
  /* room left for the longest escape (4), the closing quote, "..." and NUL */
  for (i = 0; i < n && k + 4 + 1 + 3 + 1 <= size; i++) {
    unsigned char c = (unsigned char)p[i];
    if (c == '"' || c == '\\') {
      out[k++] = '\\';
      out[k++] = (char)c;
    } else if (c >= 32 && c < 127) {
      out[k++] = (char)c;
    } else {
      out[k++] = '\\'; out[k++] = 'x';
      out[k++] = hex[c >> 4]; out[k++] = hex[c & 15];
    }
  }
  out[k++] = '"';
  if (i < n) { out[k++] = '.'; out[k++] = '.'; out[k++] = '.'; }
  out[k] = '\0';
}

int nl_ftpr_line(nl_ftpr *r, const char *p, size_t n) {
  if (r->done) {  /* the previous reply was handed out: start afresh */
    r->done = 0;
    r->len = 0; r->cut = 0; r->lines = 0; r->multi = 0; r->code = 0;
  }
  if (r->lines == 0) {
    if (!nl_ftpr_starts(p, n)) {
      /* curl waits for a line of this shape and would wait until the
       * timeout: the peer does not speak FTP */
      nl_ftpr_quote(r->bad, sizeof r->bad, p, n);
      r->code = digits3(p, n) ? (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0') : 0;
      r->len = 0;
      add_text(r, p, n);
      r->done = 1;
      return NL_FTPR_NOTFTP;
    }
    r->code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
    r->multi = p[3] == '-';
  } else {
    add_text(r, "\n", 1);
  }
  add_text(r, p, n);
  r->lines++;
  /* a multi-line reply ends at a line with its code and a space; lines
   * in between may look like anything, other codes included */
  if (!r->multi || (r->lines > 1 && digits3(p, n) && (n == 3 || p[3] == ' ') &&
                    (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0') == r->code)) {
    r->done = 1;
    return NL_FTPR_REPLY;
  }
  return NL_FTPR_MORE;
}

int nl_ftpr_feed(nl_ftpr *r, const char *p, size_t n, size_t *used) {
  size_t off = 0;
  while (off < n) {
    const char *e = memchr(p + off, '\n', n - off);
    size_t take = e ? (size_t)(e - (p + off)) : n - off;
    if (r->llen + take > NL_FTPR_MAX) {
      *used = off + (NL_FTPR_MAX - r->llen);
      r->llen = 0;
      return NL_FTPR_LONG;
    }
    if (take > 0 && !grow(&r->line, &r->llen, &r->lcap, p + off, take)) {
      *used = off;
      return NL_FTPR_LONG;  /* no memory for the line: as good as too long */
    }
    off += take;
    if (!e) break;
    off++;  /* the LF */
    {
      size_t l = r->llen;
      int ev;
      if (l > 0 && r->line[l - 1] == '\r') l--;
      r->llen = 0;
      ev = nl_ftpr_line(r, r->line, l);
      if (ev != NL_FTPR_MORE) { *used = off; return ev; }
    }
  }
  *used = off;
  return NL_FTPR_MORE;
}

long long nl_ftpr_announced(const char *t, size_t n) {
  /* the last "(<digits> bytes" in the text, as vsftpd and proftpd write */
  long long found = -1;
  size_t i;
  for (i = 0; i < n; i++) {
    size_t j = i + 1;
    long long v = 0;
    int nd = 0;
    if (t[i] != '(') continue;
    while (j < n && t[j] >= '0' && t[j] <= '9' && nd < 18) {
      v = v * 10 + (t[j] - '0');
      j++; nd++;
    }
    if (nd == 0 || j + 6 > n || t[j] != ' ') continue;
    if ((t[j + 1] | 32) == 'b' && (t[j + 2] | 32) == 'y' && (t[j + 3] | 32) == 't' &&
        (t[j + 4] | 32) == 'e' && (t[j + 5] | 32) == 's')
      found = v;
  }
  return found;
}
