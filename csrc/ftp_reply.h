/*
 * ftp_reply.h - FTP reply framing: lines or bytes in, complete replies
 * out.  No I/O, no Lua, no libcurl, so it can be fuzzed on its own.
 */
#ifndef NL_FTP_REPLY_H
#define NL_FTP_REPLY_H

#include <stddef.h>

/* The longest reply text kept (longer text is cut, never grown) and the
 * longest line a byte feed accepts. */
#define NL_FTPR_MAX (64 * 1024)

enum {
  NL_FTPR_MORE,    /* the line was taken; the reply goes on */
  NL_FTPR_REPLY,   /* a reply is complete: code and text below */
  NL_FTPR_NOTFTP,  /* a reply's first line is not "DDD " or "DDD-": bad */
  NL_FTPR_LONG     /* (bytes) a line longer than NL_FTPR_MAX */
};

typedef struct nl_ftpr {
  int code;          /* the reply's code: 3 digits, 0 when not digits */
  int multi;         /* inside a "DDD-" ... "DDD " reply */
  int lines;         /* lines of the reply so far */
  int done;          /* the last event was a complete reply */
  char *text;        /* the reply, lines joined by \n, no CR LF */
  size_t len, cap;
  int cut;           /* text reached NL_FTPR_MAX and was cut */
  char *line;        /* byte feed: the line not ended yet */
  size_t llen, lcap;
  char bad[100];     /* the offending line, quoted (NL_FTPR_NOTFTP) */
} nl_ftpr;

void nl_ftpr_init(nl_ftpr *r);
void nl_ftpr_free(nl_ftpr *r);
/* Forgets any reply and line in progress (a new connection). */
void nl_ftpr_reset(nl_ftpr *r);
/* One line without its line end. */
int nl_ftpr_line(nl_ftpr *r, const char *p, size_t n);
/* Bytes as they arrive; returns at the first event other than MORE with
 * *used set to the bytes consumed (all of them on MORE). */
int nl_ftpr_feed(nl_ftpr *r, const char *p, size_t n, size_t *used);

/* Whether p[0..n) can begin a reply: three digits and a space or '-'. */
int nl_ftpr_starts(const char *p, size_t n);
/* The size a 150/125 reply announces ("... (1048576 bytes)"), or -1. */
long long nl_ftpr_announced(const char *text, size_t n);
/* Writes line p quoted for a message into out (size >= 16): printable
 * ASCII as is with " and \ escaped, other bytes as \xNN, "..." when cut. */
void nl_ftpr_quote(char *out, size_t size, const char *p, size_t n);

#endif
