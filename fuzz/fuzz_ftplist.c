/*
 * fuzz_ftplist.c - libFuzzer target for the FTP listing parsers
 * (ftp_list.c).
 *
 * Input: one byte picking LIST or MLSD and the chunking, eight bytes of
 * `now`, then listing text.  Checks, beyond the sanitizers:
 *  - every span of an entry (name, target, perm, owner, group, unique,
 *    type) lies inside its line, and the name is never empty, "." or "..";
 *  - sizes and link counts are -1 or non-negative; kinds are known;
 *  - a link target never overlaps the name;
 *  - modify times are real calendar times (year 0 to 9999), and from a
 *    year-less LIST date ("Nov 27 10:31") at most one day after `now`;
 *  - cutting the text into lines gives the same lines whether it comes
 *    whole or in two pieces, and fed in many pieces to fl_lines (up to
 *    the first line too long for its head, which it reports);
 *  - parsing is deterministic (same line twice, same entry).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ftp_list.h"

static void inside(const fl_span *s, const char *p, size_t n) {
  if (s->p == NULL) {
    if (s->n != 0) abort();
    return;
  }
  if (s->p < p || s->p > p + n || s->n > (size_t)(p + n - s->p)) abort();
}

static void check(const fl_entry *e, const char *p, size_t n, int mlsd, long long now) {
  inside(&e->name, p, n);
  inside(&e->target, p, n);
  inside(&e->perm, p, n);
  inside(&e->owner, p, n);
  inside(&e->group, p, n);
  inside(&e->unique, p, n);
  inside(&e->type, p, n);
  if (e->name.p == NULL || e->name.n == 0) abort();
  if (e->name.n == 1 && e->name.p[0] == '.') abort();
  if (e->name.n == 2 && e->name.p[0] == '.' && e->name.p[1] == '.') abort();
  if (e->size < -1 || e->links < -1) abort();
  if (e->kind < FL_FILE || e->kind > FL_OTHER) abort();
  if (mlsd ? e->style != FL_MLSD : (e->style != FL_UNIX && e->style != FL_DOS)) abort();
  if (mlsd && e->links != -1) abort();
  if (e->target.p != NULL) {
    if (e->kind != FL_LINK) abort();
    if (!mlsd && e->target.p < e->name.p + e->name.n) abort();
  }
  if (e->style == FL_DOS && (!e->has_modify || e->perm.p || e->owner.p)) abort();
  if (e->style == FL_UNIX && (e->perm.p != p || e->perm.n < 2)) abort();
  /* a year-less date ("hh:mm" in the time column, the token just before
   * the name) is never more than a day after now */
  if (e->style == FL_UNIX && e->has_modify && e->modify > now + 86400) {
    const char *q = e->name.p - 1;
    while (q > p && ((q[-1] >= '0' && q[-1] <= '9') || q[-1] == ':')) q--;
    if (memchr(q, ':', (size_t)(e->name.p - 1 - q)) != NULL) abort();
  }
  if (e->has_modify) {
    /* every parser keeps fields in range: the time is a real calendar
     * time between year 0 and 9999 */
    if (e->modify < fl_timegm(0, 1, 1, 0, 0, 0) || e->modify > fl_timegm(10000, 1, 1, 0, 0, 0))
      abort();
  }
}

static int same(const fl_entry *a, const fl_entry *b) {
  return memcmp(a, b, sizeof *a) == 0;
}

/* ---- fl_lines: the text fed in pieces gives the lines of the whole
 * text, up to the first one too long for the head (cap), and then
 * overlong; pieces and cap come from the text's own bytes */
typedef struct seen {
  const char *text;
  size_t n;
  fl_span rest;            /* the whole text's lines not yet matched */
  size_t cap;
  int count;
} seen;

static void on_line(void *ud, const fl_span *line) {
  seen *sn = ud;
  fl_span want;
  const char *at = sn->rest.p;
  if (!fl_next_line(&sn->rest, &want, 1)) abort();   /* one line too many */
  /* a line the head should have refused */
  if ((size_t)(sn->rest.p - at) > sn->cap) abort();
  if (want.n != line->n || memcmp(want.p, line->p, want.n) != 0) abort();
  sn->count++;
}

static void check_pieces(const char *text, size_t n, unsigned cfg) {
  static char head[512];
  fl_lines j;
  seen sn;
  size_t at = 0, k = 0;
  j.head = head;
  j.cap = 16 + (cfg * 7) % (sizeof head - 16);
  j.len = 0;
  j.overlong = 0;
  sn.text = text;
  sn.n = n;
  sn.rest.p = text;
  sn.rest.n = n;
  sn.cap = j.cap;
  sn.count = 0;
  while (at < n) {   /* piece sizes 1..64 from the text's bytes */
    size_t piece = 1 + (unsigned char)text[k++ % n] % 64;
    if (piece > n - at) piece = n - at;
    fl_lines_feed(&j, text + at, piece, on_line, &sn);
    at += piece;
  }
  fl_lines_end(&j, on_line, &sn);
  if (j.overlong) {
    /* the next line of the whole text is the one too long */
    fl_span want;
    const char *from = sn.rest.p;
    if (!fl_next_line(&sn.rest, &want, 1)) abort();
    if ((size_t)(sn.rest.p - from) <= j.cap) abort();
  } else {
    fl_span want;
    if (fl_next_line(&sn.rest, &want, 1)) abort();   /* a line left out */
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  unsigned cfg;
  long long now = 0;
  size_t i, n, cut;
  const char *text;
  fl_span rest, line, r1, r2, l1;
  char *copy;
  if (size < 9) return 0;
  cfg = data[0];
  for (i = 0; i < 8; i++) now = (long long)((unsigned long long)now << 8 | data[1 + i]);
  /* keep now a plausible time: the Lua side passes os.time() */
  now = (long long)((unsigned long long)now % (400ULL * 366 * 86400));
  text = (const char *)data + 9;
  n = size - 9;

  rest.p = text;
  rest.n = n;
  while (fl_next_line(&rest, &line, 1)) {
    fl_entry e, e2;
    int mlsd = cfg & 1, ok;
    inside(&line, text, n);
    if (memchr(line.p, '\n', line.n) != NULL) abort();
    /* a copy of exactly the line, so ASan sees any read past its end */
    copy = malloc(line.n ? line.n : 1);
    if (copy == NULL) abort();
    if (line.n) memcpy(copy, line.p, line.n);
    memset(&e, 0xa5, sizeof e);
    memset(&e2, 0xa5, sizeof e2);
    ok = mlsd ? fl_parse_mlsd(copy, line.n, &e) : fl_parse_list(copy, line.n, now, &e);
    if (ok) {
      check(&e, copy, line.n, mlsd, now);
      if (!(mlsd ? fl_parse_mlsd(copy, line.n, &e2) : fl_parse_list(copy, line.n, now, &e2)))
        abort();
      if (!same(&e, &e2)) abort();
    }
    if (mlsd) {
      fl_span facts, name, k, v;
      if (fl_mlsd_split(copy, line.n, &facts, &name)) {
        inside(&facts, copy, line.n);
        inside(&name, copy, line.n);
        while (fl_next_fact(&facts, &k, &v)) {
          inside(&k, copy, line.n);
          inside(&v, copy, line.n);
          if (k.n == 0 || memchr(k.p, ';', k.n) || memchr(k.p, '=', k.n)) abort();
        }
      }
    }
    free(copy);
  }

  /* the same lines whether the text comes whole or cut in two (the cut
   * piece's leftover goes before the second piece, as in ftp_entries.c) */
  cut = n ? (size_t)(cfg >> 1) * n / 127 : 0;
  if (cut > n) cut = n;
  r1.p = text;
  r1.n = n;
  r2.p = text;
  r2.n = cut;
  while (fl_next_line(&r2, &l1, 0)) {
    if (!fl_next_line(&r1, &line, 1)) abort();
    if (line.p != l1.p || line.n != l1.n) abort();
  }
  /* r2 holds the unfinished line: whole text from there must agree */
  if (r2.p != r1.p) abort();

  check_pieces(text, n, cfg);
  return 0;
}
