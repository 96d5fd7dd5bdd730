/*
 * buffer.c - one growable read buffer and the io-style readers on top.
 *
 * A stream is a buffer plus a `fill` function that appends bytes from
 * somewhere (a TCP socket, the Telnet engine's data output).  The line,
 * count and all readers here only ever look at bytes they have not looked
 * at before, so reading a long line arriving in small pieces stays linear.
 * Nothing is dropped on a timeout: unread bytes stay buffered for the next
 * call.
 *
 * Memory: a buffer is allocated on first use at the size asked for
 * (rounded up to a power of two, at least NL_BUF_MIN), doubles as it must,
 * and is given back once a read drains one that grew past NL_BUF_KEEP.  A
 * fleet of thousands of idle sessions so holds a few hundred bytes each,
 * not a 16 KiB block per buffer, and one large read does not pin its
 * memory for the rest of the session.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "netlua.h"

#define NL_BUF_MIN 256
#define NL_BUF_KEEP (256u << 10)

void nl_buf_init(nl_buf *b) {
  b->data = NULL;
  b->start = b->len = b->cap = 0;
}

void nl_buf_free(nl_buf *b) {
  free(b->data);
  nl_buf_init(b);
}

char *nl_buf_reserve(nl_buf *b, size_t n) {
  size_t need;
  if (b->start + b->len + n <= b->cap) return b->data + b->start + b->len;
  /* slide unread bytes to the front before growing */
  if (b->start > 0) {
    if (b->len > 0) memmove(b->data, b->data + b->start, b->len);
    b->start = 0;
    if (b->len + n <= b->cap) return b->data + b->len;
  }
  need = b->len + n;
  if (need < b->len) return NULL;  /* overflow */
  {
    size_t cap = b->cap ? b->cap : NL_BUF_MIN;
    char *p;
    while (cap < need) {
      if (cap > ((size_t)-1) / 2) { cap = need; break; }
      cap *= 2;
    }
    p = realloc(b->data, cap);
    if (p == NULL) return NULL;
    b->data = p;
    b->cap = cap;
  }
  return b->data + b->len;
}

void nl_buf_commit(nl_buf *b, size_t n) { b->len += n; }

void nl_buf_consume(nl_buf *b, size_t n) {
  if (n >= b->len) {
    b->start = b->len = 0;
    if (b->cap > NL_BUF_KEEP) nl_buf_free(b);  /* a large read is over */
  } else {
    b->start += n;
    b->len -= n;
  }
}

int nl_buf_append(nl_buf *b, const char *p, size_t n) {
  char *dst = nl_buf_reserve(b, n);
  if (dst == NULL) return ENOMEM;
  if (n) memcpy(dst, p, n);
  nl_buf_commit(b, n);
  return NL_OK;
}

static int over_limit(const nl_stream *s) {
  return s->limit > 0 && s->in.len >= s->limit;
}

int nl_stream_line(nl_stream *s, const nl_deadline *d, size_t *n,
                   size_t *used, int keepnl) {
  size_t scanned = 0;
  for (;;) {
    const char *h = nl_buf_head(&s->in);
    const char *nl = s->in.len > scanned
                         ? memchr(h + scanned, '\n', s->in.len - scanned)
                         : NULL;
    int r;
    if (nl != NULL) {
      size_t k = (size_t)(nl - h);
      *used = k + 1;
      if (keepnl) k++;
      else if (k > 0 && h[k - 1] == '\r') k--;  /* network lines end CR LF */
      *n = k;
      return NL_OK;
    }
    scanned = s->in.len;
    if (over_limit(s)) return NL_LIMIT;
    r = s->fill(s, d);
    if (r == NL_CLOSED && s->in.len > 0) {  /* last line without newline */
      *n = *used = s->in.len;
      return NL_OK;
    }
    if (r != NL_OK) return r;
  }
}

int nl_stream_count(nl_stream *s, const nl_deadline *d, size_t want,
                    size_t *n) {
  while (s->in.len < want) {
    int r;
    if (over_limit(s)) break;
    r = s->fill(s, d);
    if (r == NL_CLOSED) {
      if (s->in.len == 0) return NL_CLOSED;
      break;
    }
    if (r != NL_OK) return r;
  }
  *n = s->in.len < want ? s->in.len : want;
  return NL_OK;
}

int nl_stream_all(nl_stream *s, const nl_deadline *d, size_t *n) {
  for (;;) {
    int r;
    if (over_limit(s)) return NL_LIMIT;
    r = s->fill(s, d);
    if (r == NL_CLOSED) break;
    if (r != NL_OK) return r;
  }
  *n = s->in.len;
  return NL_OK;
}

#define NOT_A_NUMBER (-100)  /* "n" found no numeral: io gives nil, no error */

/* Lua's "n" format: skip blanks, take a numeral of at most 200 chars. */
static int read_number(lua_State *L, nl_stream *s, const nl_deadline *d) {
  char num[201];
  size_t k = 0, i;
  int r;
  for (;;) {  /* skip whitespace */
    while (s->in.len > 0 && strchr(" \t\r\n\f\v", *nl_buf_head(&s->in)) &&
           *nl_buf_head(&s->in) != '\0')
      nl_buf_consume(&s->in, 1);
    if (s->in.len > 0) break;
    r = s->fill(s, d);
    if (r == NL_CLOSED) { lua_pushnil(L); return NL_CLOSED; }
    if (r != NL_OK) return r;
  }
  for (i = 0;; i++) {
    char c;
    if (i >= s->in.len) {
      r = s->fill(s, d);
      if (r == NL_CLOSED) break;
      if (r != NL_OK) return r;
      if (i >= s->in.len) break;
    }
    c = nl_buf_head(&s->in)[i];
    if (k >= 200 || !(strchr("0123456789abcdefABCDEFxX.+-pP", c) && c)) break;
    num[k++] = c;
  }
  num[k] = '\0';
  nl_buf_consume(&s->in, k);
  if (k == 0 || lua_stringtonumber(L, num) == 0) {
    lua_pushnil(L);
    return NOT_A_NUMBER;  /* io.read semantics: a failed "n" ends the reads */
  }
  return NL_OK;
}

/* Reads one format; pushes its value.  NL_CLOSED and NOT_A_NUMBER push a
 * nil that ends the results; other non-OK values are failures (nothing
 * pushed). */
static int read_one(lua_State *L, nl_stream *s, const nl_deadline *d,
                    int arg) {
  size_t n = 0, used = 0;
  int r;
  if (lua_type(L, arg) == LUA_TNUMBER) {
    lua_Integer want = luaL_checkinteger(L, arg);
    luaL_argcheck(L, want >= 0, arg, "negative count");
    if (want == 0) { lua_pushliteral(L, ""); return NL_OK; }
    r = nl_stream_count(s, d, (size_t)want, &n);
    used = n;
  } else {
    const char *f = luaL_checkstring(L, arg);
    if (*f == '*') f++;  /* LuaSocket and Lua 5.1 spelling */
    switch (*f) {
      case 'l': r = nl_stream_line(s, d, &n, &used, 0); break;
      case 'L': r = nl_stream_line(s, d, &n, &used, 1); break;
      case 'a': r = nl_stream_all(s, d, &n); used = n; break;
      case 'n': return read_number(L, s, d);
      default: return luaL_argerror(L, arg, "invalid format");
    }
  }
  if (r == NL_CLOSED) { lua_pushnil(L); return NL_CLOSED; }
  if (r != NL_OK) return r;
  lua_pushlstring(L, nl_buf_head(&s->in), n);
  nl_buf_consume(&s->in, used);
  return NL_OK;
}

int nl_stream_read(lua_State *L, nl_stream *s, const nl_deadline *d,
                   int first, int last, const char *who) {
  int done = lua_gettop(L) - last, arg, r = NL_OK;
  luaL_checkstack(L, last - first + 4, "too many formats");
  for (arg = first + done; arg <= last; arg++) {
    r = read_one(L, s, d, arg);
    if (r != NL_OK) break;
  }
  if (r == NL_OK) return arg - first;
  if (r == NL_PENDING) return -1;  /* the formats read stay above last */
  if (r == NOT_A_NUMBER) return arg - first + 1;
  if (r == NL_CLOSED) {  /* io gives a bare nil; we also say why */
    lua_pushfstring(L, "%s: closed by peer", who);
    lua_pushliteral(L, "closed");
    return arg - first + 3;
  }
  lua_settop(L, last);
  return nl_pushfail(L, r, "%s", who);
}
