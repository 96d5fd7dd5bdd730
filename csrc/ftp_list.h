/*
 * ftp_list.h - parsers for FTP directory listings: LIST lines (Unix
 * `ls -l` and DOS/IIS styles) and MLSD lines (RFC 3659 facts).
 *
 * Pure functions: a line in, an fl_entry out.  No I/O, no allocation, no
 * Lua, so they can be fuzzed on their own; ftp_entries.c turns entries
 * into Lua tables.  Every text field of an entry is a span of the input
 * (p == NULL: absent); nothing is copied.
 */
#ifndef FTP_LIST_H
#define FTP_LIST_H

#include <stddef.h>

/* entry kinds */
enum { FL_FILE = 1, FL_DIR, FL_LINK, FL_OTHER };

/* line styles */
enum { FL_UNIX = 1, FL_DOS, FL_MLSD };

typedef struct fl_span {
  const char *p;   /* NULL: absent */
  size_t n;
} fl_span;

typedef struct fl_entry {
  int style;          /* FL_UNIX, FL_DOS or FL_MLSD */
  int kind;           /* FL_FILE, FL_DIR, FL_LINK or FL_OTHER */
  fl_span type;       /* MLSD: the type fact as sent (for FL_OTHER) */
  fl_span name;
  fl_span target;     /* links: what they point to, when known */
  fl_span perm;       /* "drwxr-xr-x", or the MLSD perm / unix.mode fact */
  fl_span owner, group;
  fl_span unique;     /* MLSD unique fact */
  long long size;     /* bytes; -1: unknown */
  long long links;    /* Unix link count; -1: unknown */
  long long modify;   /* seconds since the epoch, UTC, when has_modify */
  int has_modify;
  /* MLSD facts as sent, before fl_mlsd_end picks among them */
  fl_span f_size, f_sizd, f_modify, f_perm, f_mode;
  fl_span f_owner, f_uid, f_group, f_gid;
} fl_entry;

/* Seconds since the epoch of a UTC calendar time (proleptic Gregorian;
 * fields out of range carry over arithmetically). */
long long fl_timegm(long long y, int mo, int d, int h, int mi, int s);

/* The next line of *rest into *line, without its "\n" and one "\r"
 * before it; *rest moves past it.  Returns 0 when *rest holds no whole
 * line: with `final` its remainder (if any) is taken as the last line. */
int fl_next_line(fl_span *rest, fl_span *line, int final);

/* A listing that comes in pieces, cut into the lines fl_next_line would
 * cut the whole text into: fl_lines_feed hands each whole line of a piece
 * to fn, and keeps a line cut at the piece's end in head (the caller's
 * memory, cap bytes) until its end comes; fl_lines_end hands on the last
 * line, which may lack its line end.  A line that with its line end
 * takes more than cap bytes is no listing line, wherever the pieces are
 * cut: the lines before it are handed on, nothing after it, and
 * overlong is set. */
typedef struct fl_lines {
  char *head;
  size_t len, cap;
  int overlong;
} fl_lines;
typedef void (*fl_line_fn)(void *ud, const fl_span *line);
void fl_lines_feed(fl_lines *j, const char *p, size_t n, fl_line_fn fn, void *ud);
void fl_lines_end(fl_lines *j, fl_line_fn fn, void *ud);

/* One LIST line.  `now` (epoch seconds) places year-less dates: they
 * belong to the last year in which they are not after now + 1 day.
 * Returns 1 and fills *e for an entry; 0 for anything else ("total 12",
 * ".", "..", blank or unknown lines). */
int fl_parse_list(const char *line, size_t n, long long now, fl_entry *e);

/* One MLSD line, "fact=value;fact=value; name".  Returns 1 for an entry,
 * 0 for none (no space, empty name, ".", "..", type cdir or pdir). */
int fl_parse_mlsd(const char *line, size_t n, fl_entry *e);

/* Splits an MLSD line at its first space: facts before, name after.
 * Returns 0 when there is no space. */
int fl_mlsd_split(const char *line, size_t n, fl_span *facts, fl_span *name);

/* The next "key=value" of a facts span (";" separated; pieces without a
 * key or "=" are skipped); *rest moves past it.  Returns 0 at the end. */
int fl_next_fact(fl_span *rest, fl_span *key, fl_span *val);

/* Builds an MLSD entry fact by fact (keys in any case), for facts that
 * are not in a line (a Lua table of them, say).  fl_mlsd_end returns as
 * fl_parse_mlsd does. */
void fl_mlsd_begin(fl_entry *e);
void fl_mlsd_fact(fl_entry *e, const char *k, size_t kn, const char *v, size_t vn);
int fl_mlsd_end(fl_entry *e, const char *name, size_t n);

#endif
