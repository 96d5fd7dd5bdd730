/*
 * fuzz_ftpreply.c - libFuzzer target for the FTP reply framer
 * (ftp_reply.c).
 *
 * Input: two bytes of chunking seed, then the bytes a server sends on the
 * control connection.  Checks, beyond the sanitizers:
 *  - feeding the bytes whole or split at arbitrary points gives the same
 *    events, codes and reply texts (replies split across segments);
 *  - feeding line by line (as curl's debug stream does) gives the same
 *    replies as feeding bytes, for input with no over-long line;
 *  - a reply's text never exceeds NL_FTPR_MAX, its code is 0..999, a
 *    NOTFTP line is quoted printable and NUL-terminated;
 *  - the size a reply announces is -1 or what the digits say.
 * Not a place for sockets or libcurl: the session has its own specs.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ftp_reply.h"

typedef struct trace {
  unsigned char *buf;
  size_t len, cap;
} trace;

static void put(trace *t, const void *p, size_t n) {
  if (t->len + n > t->cap) {
    size_t cap = (t->len + n) * 2 + 64;
    t->buf = realloc(t->buf, cap);
    if (!t->buf) abort();
    t->cap = cap;
  }
  memcpy(t->buf + t->len, p, n);
  t->len += n;
}

/* Records one event: its kind, and for a reply its code and text. */
static void record(trace *t, const nl_ftpr *r, int ev) {
  put(t, &ev, sizeof ev);
  if (ev == NL_FTPR_REPLY || ev == NL_FTPR_NOTFTP) {
    size_t i;
    if (r->len > NL_FTPR_MAX) abort();
    if (r->code < 0 || r->code > 999) abort();
    put(t, &r->code, sizeof r->code);
    put(t, &r->len, sizeof r->len);
    if (r->len) put(t, r->text, r->len);
    if (ev == NL_FTPR_NOTFTP) {
      if (memchr(r->bad, '\0', sizeof r->bad) == NULL) abort();
      for (i = 0; r->bad[i]; i++)
        if ((unsigned char)r->bad[i] < 32 || (unsigned char)r->bad[i] > 126) abort();
    } else {
      long long a = nl_ftpr_announced(r->text, r->len);
      if (a < -1) abort();
    }
  }
}

/* Feeds p[0..n) in pieces whose sizes come from seed; stops at LONG (the
 * stream is given up on there, as connect does). */
static void by_bytes(trace *t, const uint8_t *p, size_t n, unsigned seed) {
  nl_ftpr r;
  size_t off = 0;
  nl_ftpr_init(&r);
  while (off < n) {
    size_t piece = seed ? 1 + (seed % 7) : n - off, used;
    int ev;
    if (piece > n - off) piece = n - off;
    seed = seed * 1103515245u + 12345u;
    {
      size_t at = 0;
      while (at < piece) {
        ev = nl_ftpr_feed(&r, (const char *)p + off + at, piece - at, &used);
        if (used > piece - at) abort();
        at += used;
        if (ev == NL_FTPR_MORE) break;
        record(t, &r, ev);
        if (ev == NL_FTPR_LONG) { nl_ftpr_free(&r); return; }
      }
      if (at != piece) abort();
    }
    off += piece;
  }
  nl_ftpr_free(&r);
}

/* Splits at LF (dropping a CR before it) and feeds whole lines; the last
 * piece without a LF is not a line yet, as for the byte feed.  Returns 0
 * when a line is too long for the byte feed to compare with. */
static int by_lines(trace *t, const uint8_t *p, size_t n) {
  nl_ftpr r;
  size_t off = 0;
  nl_ftpr_init(&r);
  while (off < n) {
    const uint8_t *e = memchr(p + off, '\n', n - off);
    size_t l;
    int ev;
    if (!e) break;
    l = (size_t)(e - (p + off));
    if (l > NL_FTPR_MAX) { nl_ftpr_free(&r); return 0; }
    ev = nl_ftpr_line(&r, (const char *)p + off, l > 0 && p[off + l - 1] == '\r' ? l - 1 : l);
    if (ev != NL_FTPR_MORE) record(t, &r, ev);
    off += l + 1;
  }
  nl_ftpr_free(&r);
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  trace whole = {0}, split = {0}, lines = {0};
  unsigned seed;
  if (size < 2) return 0;
  seed = (unsigned)data[0] | ((unsigned)data[1] << 8);
  data += 2; size -= 2;
  by_bytes(&whole, data, size, 0);
  by_bytes(&split, data, size, seed | 1);
  if (whole.len != split.len || (whole.len && memcmp(whole.buf, split.buf, whole.len)))
    abort();
  if (by_lines(&lines, data, size)) {
    if (whole.len != lines.len || (whole.len && memcmp(whole.buf, lines.buf, whole.len)))
      abort();
  }
  free(whole.buf); free(split.buf); free(lines.buf);
  return 0;
}
