/*
 * ftp_list.c - FTP listing line parsers (see the header).
 *
 * A LIST line is cut into whitespace-separated tokens and matched against
 * the two Unix layouts (with and without a group column), then against
 * the DOS/IIS layout.  Character classes are ASCII by hand, never
 * <ctype.h>: a listing must not parse differently under another locale.
 * This file is no place for sockets, Lua or malloc.
 */
#include <string.h>

#include "ftp_list.h"

#define SEC_LIMIT (1LL << 40)   /* |now| beyond this is clamped */

static int is_space(int c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static int is_digit(int c) { return c >= '0' && c <= '9'; }

static int is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

static int lower(int c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

/* span s equals the lower-case word w, ignoring case */
static int eq_word(const char *s, size_t n, const char *w) {
  size_t i;
  for (i = 0; i < n; i++)
    if (w[i] == '\0' || lower((unsigned char)s[i]) != w[i]) return 0;
  return w[n] == '\0';
}

/* first place of the lower-case word w in s, ignoring case; NULL if none */
static const char *find_word(const char *s, size_t n, const char *w) {
  size_t wn = strlen(w), i;
  for (i = 0; i + wn <= n; i++)
    if (eq_word(s + i, wn, w)) return s + i;
  return NULL;
}

/* decimal digits (all of s, at least one) into *v; 0 on anything else or
 * on overflow */
static int to_int(const char *s, size_t n, long long *v) {
  long long x = 0;
  size_t i;
  if (n == 0) return 0;
  for (i = 0; i < n; i++) {
    int d = (unsigned char)s[i] - '0';
    if (d < 0 || d > 9) return 0;
    if (x > (0x7fffffffffffffffLL - d) / 10) return 0;
    x = x * 10 + d;
  }
  *v = x;
  return 1;
}

/* two digits at s */
static int two(const char *s) { return (s[0] - '0') * 10 + (s[1] - '0'); }

static int all_digits(const char *s, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    if (!is_digit((unsigned char)s[i])) return 0;
  return 1;
}

static int is_dots(const char *s, size_t n) {
  return (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.');
}

static void clear(fl_entry *e, int style) {
  memset(e, 0, sizeof *e);
  e->style = style;
  e->size = -1;
  e->links = -1;
}

long long fl_timegm(long long y, int mo, int d, int h, int mi, int s) {
  long long era, yoe, doy, doe;
  if (mo <= 2) y -= 1;
  era = (y >= 0 ? y : y - 399) / 400;
  yoe = y - era * 400;
  doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return (era * 146097 + doe - 719468) * 86400 + h * 3600LL + mi * 60LL + s;
}

/* the UTC calendar year of epoch second t */
static long long year_of(long long t) {
  long long days = (t >= 0 ? t : t - 86399) / 86400 + 719468;
  long long era = (days >= 0 ? days : days - 146096) / 146097;
  long long doe = days - era * 146097;
  long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  long long mp = (5 * doy + 2) / 153;
  return yoe + era * 400 + (mp >= 10);   /* months Jan, Feb count on */
}

int fl_next_line(fl_span *rest, fl_span *line, int final) {
  const char *nl;
  if (rest->n == 0) return 0;
  nl = memchr(rest->p, '\n', rest->n);
  if (nl == NULL) {
    if (!final) return 0;
    line->p = rest->p;
    line->n = rest->n;
    rest->p += rest->n;
    rest->n = 0;
  } else {
    size_t k = (size_t)(nl - rest->p);
    line->p = rest->p;
    line->n = k;
    rest->p += k + 1;
    rest->n -= k + 1;
  }
  if (line->n > 0 && line->p[line->n - 1] == '\r') line->n--;
  return 1;
}

void fl_lines_feed(fl_lines *j, const char *p, size_t n, fl_line_fn fn, void *ud) {
  fl_span rest, line;
  if (j->overlong) return;
  rest.p = p;
  rest.n = n;
  if (j->len > 0) {   /* the line begun in an earlier piece */
    const char *nl = memchr(p, '\n', n);
    size_t k = nl ? (size_t)(nl - p) + 1 : n;
    fl_span whole;
    if (k > j->cap - j->len) goto overlong;
    memcpy(j->head + j->len, p, k);
    j->len += k;
    if (nl == NULL) return;
    whole.p = j->head;
    whole.n = j->len;
    j->len = 0;
    if (fl_next_line(&whole, &line, 0)) fn(ud, &line);
    rest.p = p + k;
    rest.n = n - k;
  }
  for (;;) {
    const char *at = rest.p;
    if (!fl_next_line(&rest, &line, 0)) break;
    if ((size_t)(rest.p - at) > j->cap) goto overlong;   /* as if cut */
    fn(ud, &line);
  }
  if (rest.n > j->cap) goto overlong;
  memcpy(j->head, rest.p, rest.n);
  j->len = rest.n;
  return;
overlong:
  j->overlong = 1;
  j->len = 0;
}

void fl_lines_end(fl_lines *j, fl_line_fn fn, void *ud) {
  fl_span rest, line;
  if (j->overlong || j->len == 0) return;
  rest.p = j->head;
  rest.n = j->len;
  j->len = 0;
  if (fl_next_line(&rest, &line, 1)) fn(ud, &line);
}

/*
 * LIST
 */

#define MAXTOK 8

typedef struct tokens {
  fl_span t[MAXTOK];
  int n;
} tokens;

/* the first MAXTOK whitespace-separated tokens of a line */
static void tokenize(const char *s, size_t n, tokens *tk) {
  size_t i = 0;
  tk->n = 0;
  while (tk->n < MAXTOK) {
    size_t b;
    while (i < n && is_space((unsigned char)s[i])) i++;
    if (i == n) break;
    b = i;
    while (i < n && !is_space((unsigned char)s[i])) i++;
    tk->t[tk->n].p = s + b;
    tk->t[tk->n].n = i - b;
    tk->n++;
  }
}

static int month_of(const fl_span *m) {
  static const char names[] = "janfebmaraprmayjunjulaugsepoctnovdec";
  int i;
  if (m->n != 3) return 0;
  for (i = 0; i < 12; i++)
    if (lower((unsigned char)m->p[0]) == names[3 * i] &&
        lower((unsigned char)m->p[1]) == names[3 * i + 1] &&
        lower((unsigned char)m->p[2]) == names[3 * i + 2])
      return i + 1;
  return 0;
}

/* "Nov 27 10:31" (the last such time not after now + 1 day) or
 * "Nov 27  2023" (day resolution) */
static void unix_time(fl_entry *e, const fl_span *mon, const fl_span *day,
                      const fl_span *yt, long long now) {
  int mo = month_of(mon), d = 0, h = 0, mi = 0;
  long long y;
  if (mo == 0) return;
  d = day->n == 1 ? day->p[0] - '0' : two(day->p);
  if (d < 1 || d > 31) return;
  if (yt->n == 4 && all_digits(yt->p, 4)) {
    y = two(yt->p) * 100 + two(yt->p + 2);
  } else {
    const char *c = memchr(yt->p, ':', yt->n);
    size_t hn;
    if (c == NULL) return;
    hn = (size_t)(c - yt->p);
    if (hn < 1 || hn > 2 || yt->n - hn - 1 != 2 || !all_digits(c + 1, 2)) return;
    h = hn == 1 ? yt->p[0] - '0' : two(yt->p);
    mi = two(c + 1);
    if (h > 23 || mi > 59) return;
    y = year_of(now + 86400);
    if (fl_timegm(y, mo, d, h, mi, 0) > now + 86400) y--;
  }
  e->modify = fl_timegm(y, mo, d, h, mi, 0);
  e->has_modify = 1;
}

/* Unix layout: tokens[1..] are links, owner, [group,] size, month, day,
 * time; the name is all after the time and one whitespace character. */
static int parse_unix(const char *s, size_t n, long long now, const tokens *tk,
                      int with_group, fl_entry *e) {
  int g = with_group ? 1 : 0;
  const fl_span *t = tk->t;
  const fl_span *links = &t[1], *size = &t[3 + g], *mon = &t[4 + g],
                *day = &t[5 + g], *yt = &t[6 + g];
  const char *name;
  size_t off;
  if (tk->n < 7 + g) return 0;
  if (!all_digits(links->p, links->n) || !all_digits(size->p, size->n)) return 0;
  if (mon->n != 3 || !is_alpha((unsigned char)mon->p[0]) ||
      !is_alpha((unsigned char)mon->p[1]) || !is_alpha((unsigned char)mon->p[2])) return 0;
  if (day->n < 1 || day->n > 2 || !all_digits(day->p, day->n)) return 0;
  if (yt->n < 2 || !is_digit((unsigned char)yt->p[0])) return 0;
  {
    size_t i;
    for (i = 1; i < yt->n; i++)
      if (!is_digit((unsigned char)yt->p[i]) && yt->p[i] != ':') return 0;
  }
  off = (size_t)(yt->p - s) + yt->n;
  if (off >= n) return 0;   /* the one whitespace character after the time */
  name = s + off + 1;
  clear(e, FL_UNIX);
  switch (s[0]) {
    case '-': e->kind = FL_FILE; break;
    case 'd': e->kind = FL_DIR; break;
    case 'l': e->kind = FL_LINK; break;
    default: e->kind = FL_OTHER; break;
  }
  e->perm = t[0];
  if (!to_int(links->p, links->n, &e->links)) e->links = -1;
  e->owner = t[2];
  if (with_group) e->group = t[3];
  if (!to_int(size->p, size->n, &e->size)) e->size = -1;
  unix_time(e, mon, day, yt, now);
  e->name.p = name;
  e->name.n = n - off - 1;
  if (e->kind == FL_LINK) {
    const char *arrow = NULL;
    size_t i;
    for (i = 0; i + 4 <= e->name.n; i++)
      if (memcmp(name + i, " -> ", 4) == 0) { arrow = name + i; break; }
    if (arrow != NULL) {
      e->target.p = arrow + 4;
      e->target.n = e->name.n - i - 4;
      e->name.n = i;
    }
  }
  if (e->name.n == 0 || is_dots(e->name.p, e->name.n)) return 0;
  return 1;
}

/* DOS/IIS: "11-27-23  10:31AM  <DIR>  name" or "... 1,234 name" */
static int parse_dos(const char *s, size_t n, fl_entry *e) {
  const char *p = s, *end = s + n, *what;
  int mo, d, h, mi, pm;
  long long y;
  size_t yn = 0, wn, i;
  if (n < 17) return 0;
  if (!is_digit((unsigned char)p[0]) || !is_digit((unsigned char)p[1]) || p[2] != '-' ||
      !is_digit((unsigned char)p[3]) || !is_digit((unsigned char)p[4]) || p[5] != '-')
    return 0;
  mo = two(p);
  d = two(p + 3);
  p += 6;
  while (p + yn < end && is_digit((unsigned char)p[yn])) yn++;
  if (yn != 2 && yn != 4) return 0;
  y = yn == 2 ? two(p) : two(p) * 100 + two(p + 2);
  if (yn == 2) y += y < 70 ? 2000 : 1900;
  p += yn;
  if (p == end || !is_space((unsigned char)*p)) return 0;
  while (p < end && is_space((unsigned char)*p)) p++;
  if (end - p < 7 || !is_digit((unsigned char)p[0]) || !is_digit((unsigned char)p[1]) ||
      p[2] != ':' || !is_digit((unsigned char)p[3]) || !is_digit((unsigned char)p[4]))
    return 0;
  h = two(p);
  mi = two(p + 3);
  if (lower((unsigned char)p[5]) == 'a') pm = 0;
  else if (lower((unsigned char)p[5]) == 'p') pm = 1;
  else return 0;
  if (lower((unsigned char)p[6]) != 'm') return 0;
  p += 7;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 12 || mi > 59) return 0;
  if (p == end || !is_space((unsigned char)*p)) return 0;
  while (p < end && is_space((unsigned char)*p)) p++;
  what = p;
  while (p < end && !is_space((unsigned char)*p)) p++;
  wn = (size_t)(p - what);
  if (wn == 0 || p == end) return 0;
  while (p < end && is_space((unsigned char)*p)) p++;
  if (p == end) return 0;
  clear(e, FL_DOS);
  e->name.p = p;
  e->name.n = (size_t)(end - p);
  if (is_dots(e->name.p, e->name.n)) return 0;
  e->modify = fl_timegm(y, mo, d, h % 12 + (pm ? 12 : 0), mi, 0);
  e->has_modify = 1;
  if (eq_word(what, wn, "<dir>")) {
    e->kind = FL_DIR;
  } else {
    long long v = 0;
    int any = 0;
    e->kind = FL_FILE;
    for (i = 0; i < wn; i++) {
      int c = (unsigned char)what[i];
      if (c == ',') continue;
      if (!is_digit(c) || v > (0x7fffffffffffffffLL - (c - '0')) / 10) { any = 0; break; }
      v = v * 10 + (c - '0');
      any = 1;
    }
    if (any) e->size = v;
  }
  return 1;
}

int fl_parse_list(const char *line, size_t n, long long now, fl_entry *e) {
  tokens tk;
  if (now > SEC_LIMIT) now = SEC_LIMIT;
  if (now < -SEC_LIMIT) now = -SEC_LIMIT;
  if (n >= 2 && memchr("-dlcbps", line[0], 7) != NULL &&
      !is_space((unsigned char)line[1])) {
    tokenize(line, n, &tk);
    if (tk.t[0].p == line && (parse_unix(line, n, now, &tk, 1, e) ||
                              parse_unix(line, n, now, &tk, 0, e)))
      return 1;
  }
  return parse_dos(line, n, e);
}

/*
 * MLSD
 */

int fl_mlsd_split(const char *line, size_t n, fl_span *facts, fl_span *name) {
  const char *sp = memchr(line, ' ', n);
  if (sp == NULL) return 0;
  facts->p = line;
  facts->n = (size_t)(sp - line);
  name->p = sp + 1;
  name->n = n - facts->n - 1;
  return 1;
}

int fl_next_fact(fl_span *rest, fl_span *key, fl_span *val) {
  while (rest->n > 0) {
    const char *p = rest->p, *semi = memchr(p, ';', rest->n), *eq;
    size_t len = semi ? (size_t)(semi - p) : rest->n;
    rest->p += len + (semi ? 1 : 0);
    rest->n -= len + (semi ? 1 : 0);
    eq = memchr(p, '=', len);
    if (eq == NULL || eq == p) continue;
    key->p = p;
    key->n = (size_t)(eq - p);
    val->p = eq + 1;
    val->n = len - key->n - 1;
    return 1;
  }
  return 0;
}

void fl_mlsd_begin(fl_entry *e) { clear(e, FL_MLSD); }

void fl_mlsd_fact(fl_entry *e, const char *k, size_t kn, const char *v, size_t vn) {
  fl_span s;
  s.p = v;
  s.n = vn;
  if (eq_word(k, kn, "type")) e->type = s;
  else if (eq_word(k, kn, "size")) e->f_size = s;
  else if (eq_word(k, kn, "sizd")) e->f_sizd = s;
  else if (eq_word(k, kn, "modify")) e->f_modify = s;
  else if (eq_word(k, kn, "perm")) e->f_perm = s;
  else if (eq_word(k, kn, "unix.mode")) e->f_mode = s;
  else if (eq_word(k, kn, "unique")) e->unique = s;
  else if (eq_word(k, kn, "unix.owner")) e->f_owner = s;
  else if (eq_word(k, kn, "unix.uid")) e->f_uid = s;
  else if (eq_word(k, kn, "unix.group")) e->f_group = s;
  else if (eq_word(k, kn, "unix.gid")) e->f_gid = s;
}

/* YYYYMMDDHHMMSS[.sss] */
static void mlsd_time(fl_entry *e, const fl_span *v) {
  const char *p = v->p;
  int mo, d, h, mi, s;
  if (p == NULL || v->n < 14 || !all_digits(p, 14)) return;
  mo = two(p + 4);
  d = two(p + 6);
  h = two(p + 8);
  mi = two(p + 10);
  s = two(p + 12);
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return;
  e->modify = fl_timegm(two(p) * 100 + two(p + 2), mo, d, h, mi, s);
  e->has_modify = 1;
}

int fl_mlsd_end(fl_entry *e, const char *name, size_t n) {
  const fl_span *t = &e->type;
  const fl_span *sz = e->f_size.p ? &e->f_size : &e->f_sizd;
  e->name.p = name;
  e->name.n = n;
  if (n == 0 || is_dots(name, n)) return 0;
  if (eq_word(t->p, t->n, "cdir") || eq_word(t->p, t->n, "pdir")) return 0;
  if (eq_word(t->p, t->n, "dir")) e->kind = FL_DIR;
  else if (eq_word(t->p, t->n, "file")) e->kind = FL_FILE;
  else if (find_word(t->p, t->n, "slink") != NULL) {
    const char *c = find_word(t->p, t->n, "slink:");
    e->kind = FL_LINK;
    if (c != NULL) {
      e->target.p = c + 6;
      e->target.n = t->n - (size_t)(c + 6 - t->p);
    }
  } else e->kind = FL_OTHER;
  if (sz->p == NULL || !to_int(sz->p, sz->n, &e->size)) e->size = -1;
  mlsd_time(e, &e->f_modify);
  e->perm = e->f_perm.p ? e->f_perm : e->f_mode;
  e->owner = e->f_owner.p ? e->f_owner : e->f_uid;
  e->group = e->f_group.p ? e->f_group : e->f_gid;
  return 1;
}

int fl_parse_mlsd(const char *line, size_t n, fl_entry *e) {
  fl_span facts, name, k, v;
  fl_mlsd_begin(e);
  if (!fl_mlsd_split(line, n, &facts, &name)) return 0;
  while (fl_next_fact(&facts, &k, &v)) fl_mlsd_fact(e, k.p, k.n, v.p, v.n);
  return fl_mlsd_end(e, name.p, name.n);
}
