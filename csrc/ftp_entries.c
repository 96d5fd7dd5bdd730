/*
 * ftp_entries.c - FTP listings into Lua tables, on the parsers of
 * ftp_list.c.  netlua.ftp's list, mlsd, parse_list_line and mlsd_entry sit
 * on these:
 *
 *   core.ftp_list_sink(kind [, now [, fields]]) -> sink (see below)
 *   core.ftp_parse_line(line, kind [, now])  -> entry | nil
 *   core.ftp_sort_names(entries)             -> entries, sorted by name
 *   core.ftp_mlsd_next(text, pos)            -> pos, name, facts | nil
 *   core.ftp_mlsd_entry(name, facts)         -> entry | nil
 *
 * kind is "list" or "mlsd".  A listing becomes its array of entries as
 * it comes, each table made at its final size, so a 100 000-entry
 * listing costs little more than the entries themselves.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ftp.h"
#include "ftp_list.h"

static int check_kind(lua_State *L, int arg) {
  static const char *const kinds[] = {"list", "mlsd", NULL};
  return luaL_checkoption(L, arg, NULL, kinds);
}

static void push_lower(lua_State *L, const char *p, size_t n) {
  char buf[64];
  size_t i;
  if (n <= sizeof buf) {
    for (i = 0; i < n; i++)
      buf[i] = (p[i] >= 'A' && p[i] <= 'Z') ? (char)(p[i] + 32) : p[i];
    lua_pushlstring(L, buf, n);
  } else {
    luaL_Buffer b;
    char *d = luaL_buffinitsize(L, &b, n);
    for (i = 0; i < n; i++)
      d[i] = (p[i] >= 'A' && p[i] <= 'Z') ? (char)(p[i] + 32) : p[i];
    luaL_pushresultsize(&b, n);
  }
}

static void set_span(lua_State *L, const char *k, const fl_span *s) {
  if (s->p == NULL) return;
  lua_pushlstring(L, s->p, s->n);
  lua_setfield(L, -2, k);
}

static void set_int(lua_State *L, const char *k, long long v) {
  lua_pushinteger(L, (lua_Integer)v);
  lua_setfield(L, -2, k);
}

/* Fields an entry may keep (the mask of a listing sink): name is always
 * kept.  Fewer fields make smaller tables: Lua sizes a table's hash part
 * to a power of two, so four fields take half the room of eight. */
enum {
  F_TYPE = 1, F_SIZE = 2, F_MODIFY = 4, F_PERM = 8, F_LINKS = 16,
  F_OWNER = 32, F_GROUP = 64, F_TARGET = 128, F_UNIQUE = 256, F_ALL = 511
};

#define HAS(m, f, cond) (((m) & (f)) && (cond))

static void keep_span(lua_State *L, int mask, int f, const char *k, const fl_span *s) {
  if (mask & f) set_span(L, k, s);
}

/* Pushes the table of an entry with the fields of mask, sized for them
 * plus `extra`. */
static void push_entry(lua_State *L, const fl_entry *e, int extra, int mask) {
  int n = 1 + extra + ((mask & F_TYPE) != 0);   /* name, type */
  n += HAS(mask, F_TARGET, e->target.p != NULL) + HAS(mask, F_PERM, e->perm.p != NULL) +
       HAS(mask, F_OWNER, e->owner.p != NULL) + HAS(mask, F_GROUP, e->group.p != NULL) +
       HAS(mask, F_UNIQUE, e->unique.p != NULL) + HAS(mask, F_SIZE, e->size >= 0) +
       HAS(mask, F_LINKS, e->links >= 0) + HAS(mask, F_MODIFY, e->has_modify != 0);
  lua_createtable(L, 0, n);
  set_span(L, "name", &e->name);
  if (!(mask & F_TYPE)) goto rest;
  switch (e->kind) {
    case FL_FILE: lua_pushliteral(L, "file"); break;
    case FL_DIR: lua_pushliteral(L, "dir"); break;
    case FL_LINK: lua_pushliteral(L, "link"); break;
    default:
      if (e->style == FL_MLSD) push_lower(L, e->type.p, e->type.n);
      else lua_pushliteral(L, "other");
      break;
  }
  lua_setfield(L, -2, "type");
rest:
  if (HAS(mask, F_SIZE, e->size >= 0)) set_int(L, "size", e->size);
  if (HAS(mask, F_MODIFY, e->has_modify)) set_int(L, "modify", e->modify);
  keep_span(L, mask, F_PERM, "perm", &e->perm);
  if (HAS(mask, F_LINKS, e->links >= 0)) set_int(L, "links", e->links);
  keep_span(L, mask, F_OWNER, "owner", &e->owner);
  keep_span(L, mask, F_GROUP, "group", &e->group);
  keep_span(L, mask, F_TARGET, "target", &e->target);
  keep_span(L, mask, F_UNIQUE, "unique", &e->unique);
}

/* the field mask argument: an array of field names, or nil for all */
static int check_fields(lua_State *L, int arg) {
  static const char *const names[] = {"type", "size", "modify", "perm", "links",
                                      "owner", "group", "target", "unique", NULL};
  lua_Integer i, n;
  int mask = 0;
  if (lua_isnoneornil(L, arg)) return F_ALL;
  luaL_checktype(L, arg, LUA_TTABLE);
  n = (lua_Integer)lua_rawlen(L, arg);
  for (i = 1; i <= n; i++) {
    int k;
    lua_rawgeti(L, arg, i);
    if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "name") == 0) {
      lua_pop(L, 1);
      continue;
    }
    k = luaL_checkoption(L, -1, NULL, names);
    mask |= 1 << k;
    lua_pop(L, 1);
  }
  return mask;
}

static lua_Integer opt_now(lua_State *L, int arg) {
  return luaL_opt(L, luaL_checkinteger, arg, (lua_Integer)time(NULL));
}

static int parse(int kind, const fl_span *line, lua_Integer now, fl_entry *e) {
  return kind == 0 ? fl_parse_list(line->p, line->n, (long long)now, e)
                   : fl_parse_mlsd(line->p, line->n, e);
}

/* core.ftp_parse_line(line, kind [, now]) -> entry | nil */
static int l_parse_line(lua_State *L) {
  fl_span line;
  fl_entry e;
  int kind;
  lua_Integer now;
  line.p = luaL_checklstring(L, 1, &line.n);
  kind = check_kind(L, 2);
  now = opt_now(L, 3);
  if (!parse(kind, &line, now, &e)) return 0;
  push_entry(L, &e, 0, F_ALL);
  return 1;
}

typedef struct named {
  const char *p;
  uint32_t n;   /* length of p */
  uint32_t i;   /* where the entry is in the array; 0 once moved */
} named;

/* Lua's own order for strings (strcoll piece by piece between NULs),
 * ties broken by position so the result does not depend on qsort */
static int cmp_named(const void *va, const void *vb) {
  const named *a = va, *b = vb;
  const char *l = a->p, *r = b->p;
  size_t ll = a->n, lr = b->n;
  for (;;) {
    int c = strcoll(l, r);
    size_t k;
    if (c != 0) return c;
    k = strlen(l);
    if (k == lr) {
      if (k == ll) break;
      return 1;
    }
    if (k == ll) return -1;
    k++;
    l += k; ll -= k;
    r += k; lr -= k;
  }
  return a->i < b->i ? -1 : a->i > b->i;
}

/* The name of entry k + 1 of the table at 1 into *v. */
static void get_named(lua_State *L, lua_Integer k, named *v) {
  size_t len;
  lua_rawgeti(L, 1, k + 1);
  if (lua_type(L, -1) != LUA_TTABLE || lua_getfield(L, -1, "name") != LUA_TSTRING)
    luaL_error(L, "entry %d has no name", (int)(k + 1));
  /* the string stays alive in its entry, which stays in the array */
  v->p = lua_tolstring(L, -1, &len);
  if (len > UINT32_MAX) luaL_error(L, "name too long");
  v->n = (uint32_t)len;
  v->i = (uint32_t)(k + 1);
  lua_pop(L, 2);
}

/* core.ftp_sort_names(entries) -> entries, sorted in place by their
 * `name`, as table.sort(t, function(a, b) return a.name < b.name end)
 * would, without a Lua call per comparison nor a second array. */
static int l_sort_names(lua_State *L) {
  lua_Integer n, k;
  named *v;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  n = (lua_Integer)lua_rawlen(L, 1);
  if (n < 2) return 1;
  if (n >= (lua_Integer)UINT32_MAX || (size_t)n > (~(size_t)0) / sizeof *v)
    return luaL_error(L, "too many entries");
  /* many servers (vsftpd, proftpd) send their listings sorted: then one
   * pass says so and the side array (16 bytes an entry, at the moment
   * the listing takes the most memory) is never made */
  {
    named a = {NULL, 0, 0}, b;
    for (k = 0; k < n; k++) {
      b = a;
      get_named(L, k, &a);
      if (k > 0 && cmp_named(&b, &a) > 0) break;
    }
    if (k == n) return 1;
  }
  v = lua_newuserdatauv(L, (size_t)n * sizeof *v, 0);
  for (k = 0; k < n; k++) get_named(L, k, &v[k]);
  qsort(v, (size_t)n, sizeof *v, cmp_named);
  /* position k + 1 takes the entry at v[k].i: follow each cycle of that
   * permutation with one entry in hand */
  for (k = 0; k < n; k++) {
    lua_Integer j = k + 1;
    if (v[k].i == 0) continue;
    if (v[k].i == j) { v[k].i = 0; continue; }
    lua_rawgeti(L, 1, j);   /* the entry whose place is taken first */
    for (;;) {
      lua_Integer src = v[j - 1].i;
      v[j - 1].i = 0;
      if (src == k + 1) { lua_rawseti(L, 1, j); break; }
      lua_rawgeti(L, 1, src);
      lua_rawseti(L, 1, j);
      j = src;
    }
  }
  lua_settop(L, 1);
  return 1;
}

/* core.ftp_mlsd_next(text, pos) -> pos, name, facts: the next MLSD line
 * of text from byte pos on, its facts in a table with lower-case keys;
 * nothing when text has no more.  Lines without a space are skipped. */
static int l_mlsd_next(lua_State *L) {
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  lua_Integer pos = luaL_checkinteger(L, 2);
  fl_span rest, line, facts, name, k, v;
  if (pos < 1) pos = 1;
  if ((lua_Unsigned)pos > len) return 0;
  rest.p = text + pos - 1;
  rest.n = len - (size_t)(pos - 1);
  while (fl_next_line(&rest, &line, 1)) {
    fl_span f;
    int nf = 0;
    if (!fl_mlsd_split(line.p, line.n, &facts, &name)) continue;
    f = facts;
    while (fl_next_fact(&f, &k, &v)) nf++;
    lua_pushinteger(L, (lua_Integer)(rest.p - text) + 1);
    lua_pushlstring(L, name.p, name.n);
    lua_createtable(L, 0, nf);
    while (fl_next_fact(&facts, &k, &v)) {
      push_lower(L, k.p, k.n);
      lua_pushlstring(L, v.p, v.n);
      lua_rawset(L, -3);
    }
    return 3;
  }
  return 0;
}

/* core.ftp_mlsd_entry(name, facts) -> entry | nil: facts (a table, keys
 * in any case) turned into an entry, which keeps them as `facts`. */
static int l_mlsd_entry(lua_State *L) {
  size_t nn;
  const char *name = luaL_checklstring(L, 1, &nn);
  fl_entry e;
  lua_Integer kept = 0;
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  lua_newtable(L);   /* 3: strings made from numbers, alive until we return */
  fl_mlsd_begin(&e);
  lua_pushnil(L);
  while (lua_next(L, 2) != 0) {
    size_t kn, vn;
    const char *k, *v;
    if (lua_type(L, -2) == LUA_TSTRING &&
        (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER)) {
      k = lua_tolstring(L, -2, &kn);
      if (lua_type(L, -1) == LUA_TNUMBER) {
        lua_pushvalue(L, -1);
        v = lua_tolstring(L, -1, &vn);
        lua_rawseti(L, 3, ++kept);
      } else v = lua_tolstring(L, -1, &vn);
      fl_mlsd_fact(&e, k, kn, v, vn);
    }
    lua_pop(L, 1);
  }
  if (!fl_mlsd_end(&e, name, nn)) return 0;
  push_entry(L, &e, 1, F_ALL);
  lua_pushvalue(L, 2);
  lua_setfield(L, -2, "facts");
  return 1;
}

/* ---- list()'s sink --------------------------------------------------
 * list() parses its LIST or MLSD transfer as the bytes come: retrbinary
 * hands each piece libcurl read straight to the sink (a C sink, ftp.h),
 * which cuts it into lines (fl_lines, ftp_list.c) and appends their
 * entries to its table (its user value).  Made of Lua strings, the 10 MB
 * of a 100 000-entry MLSD listing went through the Lua heap as blocks
 * that lived on until a collection came; here only the entries are
 * made.  A line longer than LINE_LIMIT (64 KiB, where a real line is a
 * name and a few facts) is no listing line, and stops the parsing
 * (finish then says so). */
#define LINE_LIMIT (64 * 1024)

typedef struct list_sink {
  ftp_csink cs;            /* first: what retrbinary calls */
  int kind, mask;
  lua_Integer now, n;      /* n: entries in the table so far */
  fl_lines lines;          /* its head: the line begun in an earlier piece */
  lua_State *L;            /* while a piece is fed: where entries go */
  char head[LINE_LIMIT];
} list_sink;

static list_sink *check_sink(lua_State *L) {
  return luaL_checkudata(L, 1, FTP_CSINK);
}

/* one line (fl_lines' fn): its entry, if any, into the table on top */
static void sink_line(void *ud, const fl_span *line) {
  list_sink *ls = ud;
  lua_State *L = ls->L;
  fl_entry e;
  if (!parse(ls->kind, line, ls->now, &e)) return;
  push_entry(L, &e, 0, ls->mask);
  lua_rawseti(L, -2, ++ls->n);
}

/* Feeds p[0..n), which argument 2 keeps alive, to the sink at 1. */
static int feed(lua_State *L, list_sink *ls, const char *p, size_t n) {
  lua_settop(L, 2);
  lua_getiuservalue(L, 1, 1);
  ls->L = L;
  fl_lines_feed(&ls->lines, p, n, sink_line, ls);
  return 0;
}

/* the C sink's write (ftp.h): sink, light userdata pointer, length */
static int sink_cwrite(lua_State *L) {
  list_sink *ls = check_sink(L);
  return feed(L, ls, lua_touserdata(L, 2), (size_t)luaL_checkinteger(L, 3));
}

/* sink:write(text): the same from Lua (the specs cut listings anywhere) */
static int sink_write(lua_State *L) {
  list_sink *ls = check_sink(L);
  size_t n;
  const char *p = luaL_checklstring(L, 2, &n);
  return feed(L, ls, p, n);
}

/* sink:finish() -> entries (in the server's order), or nil, message,
 * "protocol" when a line was too long to be a listing line.  The last
 * line may lack its line end. */
static int sink_finish(lua_State *L) {
  list_sink *ls = check_sink(L);
  lua_settop(L, 1);
  lua_getiuservalue(L, 1, 1);
  if (ls->lines.overlong)
    return nl_pushfailcode(L, "protocol", "listing line over %d bytes", LINE_LIMIT);
  ls->L = L;
  fl_lines_end(&ls->lines, sink_line, ls);
  return 1;
}

/* core.ftp_list_sink(kind [, now [, fields]]) -> sink: a parser to hand
 * retrbinary in place of a callback.  `fields` (array of names) keeps
 * only those fields and name. */
static int l_list_sink(lua_State *L) {
  int kind = check_kind(L, 1);
  lua_Integer now = opt_now(L, 2);
  int mask = check_fields(L, 3);
  list_sink *ls;
  lua_newtable(L);
  ls = nl_class_new(L, FTP_CSINK, sizeof *ls, 1);
  ls->cs.write = sink_cwrite;
  ls->kind = kind;
  ls->mask = mask;
  ls->now = now;
  ls->lines.head = ls->head;
  ls->lines.cap = sizeof ls->head;
  lua_insert(L, -2);
  lua_setiuservalue(L, -2, 1);
  return 1;
}

static const luaL_Reg sink_methods[] = {
  {"write", sink_write},
  {"finish", sink_finish},
  {NULL, NULL}
};

static const nl_class sink_class = {FTP_CSINK, sink_methods, NULL, NULL, NULL, NULL, 0};

static const luaL_Reg funcs[] = {
  {"ftp_list_sink", l_list_sink},
  {"ftp_parse_line", l_parse_line},
  {"ftp_sort_names", l_sort_names},
  {"ftp_mlsd_next", l_mlsd_next},
  {"ftp_mlsd_entry", l_mlsd_entry},
  {NULL, NULL}
};

void nl_open_ftp_list(lua_State *L) {
  nl_class_make(L, &sink_class, 0);
  luaL_setfuncs(L, funcs, 0);
}
