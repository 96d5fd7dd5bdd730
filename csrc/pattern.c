/*
 * pattern.c - what a Lua pattern can match, found from its text alone.
 *
 * expect (telnet.c) re-searches its window on every arrival, once per
 * pattern, and Lua tries an unanchored pattern at every byte of it.  Most
 * patterns a device script waits for are prompts: they end with "$" and
 * never match a line end ("r1> $", "[Pp]assword: ?$", "--More--").  Such
 * a match lies wholly after the window's last CR or LF, so only that
 * last line needs searching, however long the output before it.
 * Reading the pattern follows lstrlib.c's grammar (items, sets, %
 * classes, captures, back references); anything it cannot vouch for (%b,
 * %f, a set with no end) counts as "may match a line end".
 * Not here: running patterns (string.find does that).
 *
 *   core.pattern_line_tail(pattern) -> boolean   (for the specs)
 */
#include <string.h>

#include "netlua.h"

/* Whether the class letter c (after '%') takes byte b, as lstrlib.c's
 * match_class does in the C locale; for a letter that is no class, the
 * letter itself. */
static int class_takes(int c, int b) {
  int r, lower = c | 0x20;
  switch (lower) {
    case 'a': r = (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z'); break;
    case 'c': r = b < 32 || b == 127; break;
    case 'd': r = b >= '0' && b <= '9'; break;
    case 'g': r = b > 32 && b < 127; break;
    case 'l': r = b >= 'a' && b <= 'z'; break;
    case 'p': r = b > 32 && b < 127 && !((b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') ||
                                         (b >= '0' && b <= '9')); break;
    case 's': r = b == ' ' || (b >= '\t' && b <= '\r'); break;
    case 'u': r = b >= 'A' && b <= 'Z'; break;
    case 'w': r = (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9'); break;
    case 'x': r = (b >= '0' && b <= '9') || (b >= 'a' && b <= 'f') || (b >= 'A' && b <= 'F'); break;
    default: return c == b;
  }
  return (c >= 'A' && c <= 'Z') ? !r : r;
}

/* Whether the escape %c takes CR or LF. */
static int class_eol(int c) {
  return class_takes(c, '\n') || class_takes(c, '\r');
}

/* The set starting at p[i] == '[' (i < n): its end (the index after its
 * ']') into *end and whether it takes CR or LF; 0 for a set with no end,
 * which lstrlib rejects anyway. */
static int set_scan(const char *p, size_t n, size_t i, size_t *end, int *eol) {
  int neg = 0, nl = 0, cr = 0;
  i++;
  if (i < n && p[i] == '^') { neg = 1; i++; }
  if (i < n && p[i] == ']') { i++; }   /* a ']' first is a member: not CR, LF */
  while (i < n && p[i] != ']') {
    unsigned char c = (unsigned char)p[i];
    if (c == '%') {
      if (++i >= n) return 0;
      nl |= class_takes((unsigned char)p[i], '\n');
      cr |= class_takes((unsigned char)p[i], '\r');
      i++;
    } else if (i + 2 < n && p[i + 1] == '-' && p[i + 2] != ']') {
      unsigned char hi = (unsigned char)p[i + 2];
      nl |= c <= '\n' && '\n' <= hi;
      cr |= c <= '\r' && '\r' <= hi;
      i += 3;
    } else {
      nl |= c == '\n';
      cr |= c == '\r';
      i++;
    }
  }
  if (i >= n) return 0;
  *end = i + 1;
  *eol = neg ? !(nl && cr) : (nl || cr);
  return 1;
}

int nl_pattern_line_tail(const char *p, size_t n) {
  size_t i = 0;
  if (n == 0 || p[0] == '^') return 0;
  while (i < n) {
    unsigned char c = (unsigned char)p[i];
    int single = 1;   /* an item that takes one byte: may be quantified */
    if (c == '$' && i + 1 == n) return 1;   /* the end anchor, reached */
    switch (c) {
      case '(': case ')': i++; single = 0; break;
      case '.': return 0;
      case '[': {
        size_t end;
        int eol;
        if (!set_scan(p, n, i, &end, &eol) || eol) return 0;
        i = end;
        break;
      }
      case '%':
        if (i + 1 >= n) return 0;
        c = (unsigned char)p[i + 1];
        /* %b: balanced text, any bytes; %f: a frontier looks at the byte
         * before the match, which the last line does not show */
        if (c == 'b' || c == 'f') return 0;
        /* a back reference repeats bytes the earlier items took */
        if (!(c >= '0' && c <= '9') && class_eol(c)) return 0;
        i += 2;
        break;
      default:
        if (c == '\n' || c == '\r') return 0;
        i++;
        break;
    }
    /* a quantifier after a single item changes how often, not what */
    if (single && i < n && (p[i] == '*' || p[i] == '+' || p[i] == '-' || p[i] == '?'))
      i++;
  }
  return 0;   /* no end anchor */
}

/* core.pattern_line_tail(pattern) -> boolean (for the specs) */
static int l_line_tail(lua_State *L) {
  size_t n;
  const char *p = luaL_checklstring(L, 1, &n);
  lua_pushboolean(L, nl_pattern_line_tail(p, n));
  return 1;
}

void nl_open_pattern(lua_State *L) {
  lua_pushcfunction(L, l_line_tail);
  lua_setfield(L, -2, "pattern_line_tail");
}
