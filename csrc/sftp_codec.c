/*
 * sftp_codec.c - the SFTP codec of sftp_proto.c seen from Lua, for the
 * specs and for scripts that look at SFTP bytes.  No channel here: the
 * SFTP client drives the C codec itself.
 *
 *   core.sftp_encode(kind, id, ...)     -> bytes of one request
 *   core.sftp_decode(bytes [, max [, init]]) -> packet, used
 *                                        | nil, "need", bytes_missing
 *                                        | nil, "malformed", why
 *     (the first packet of bytes; used: its size.  max: the longest
 *     length field taken, 0 or absent for 256 KiB + 1 KiB.  init: where
 *     the packet starts, 1-based as in string.find (default 1), so a
 *     reader walks a buffer of many packets without cutting copies of
 *     it; init past the end is an empty input)
 *   core.sftp_decode_limits(payload)    -> {max_packet=, max_read=,
 *                                           max_write=, max_handles=}
 *                                        | nil, why
 *   core.sftp_decode_statvfs(payload)   -> {bsize=, frsize=, ...} | nil, why
 *
 * Encoding kinds and their arguments after the id (a path, handle or data
 * is a string; attrs a table {size=, uid=, gid=, permissions=, atime=,
 * mtime=}, each field optional but uid/gid and atime/mtime in pairs):
 *   init [version = 3] (no id: the version takes its place)
 *   open path, pflags [, attrs]          close, fstat, readdir handle
 *   read handle, offset, len             write handle, offset, data
 *   lstat, stat, opendir, remove, rmdir, realpath, readlink path
 *   setstat path, attrs                  fsetstat handle, attrs
 *   mkdir path [, attrs]                 rename old, new
 *   symlink target, link (sent in OpenSSH's order: see sftp_proto.h)
 *   extended name [, payload]            posix_rename, hardlink old, new
 *   fsync, fstatvfs handle               statvfs path      limits
 *
 * A decoded packet has type ("status", "name", ... "open" for requests),
 * id (not for init and version) and its fields:
 *   version/init: version, extensions = {name = data}
 *   status: code, name ("no_such_file"; absent for an unknown code),
 *           message, language
 *   handle: handle   data: data   attrs: attrs   extended_reply: data
 *   name: entries = {{name=, longname=, attrs=}, ...}
 *   requests: path, pflags, handle, offset, length, data, attrs,
 *             oldpath/newpath (rename), target/link (symlink, wire order),
 *             request and data (extended)
 * attrs: flags, then the fields the flags announce (extended: how many
 * extended pairs were skipped).  64-bit numbers above the largest Lua
 * integer (or 2^53 on 5.1, 5.2 and LuaJIT) come as floats.
 */
#include <stdint.h>

#include "netlua.h"
#include "sftp_proto.h"

/* ---- numbers -------------------------------------------------------------- */

/* the value at idx as an unsigned integer up to max (2^32 - 1 or
 * 2^64 - 1): a Lua integer (5.3 on), or a float or numeric string with an
 * integral value in range; 0 when it is none of these */
static int to_unsigned(lua_State *L, int idx, uint64_t max, uint64_t *out) {
  lua_Number x;
#if LUA_VERSION_NUM >= 503
  if (lua_isinteger(L, idx)) {
    lua_Integer v = lua_tointeger(L, idx);
    if (v < 0 || (uint64_t)v > max) return 0;
    *out = (uint64_t)v;
    return 1;
  }
#endif
  if (!lua_isnumber(L, idx)) return 0;
  x = lua_tonumber(L, idx);
  /* the comparisons are false for NaN; 2^64 as a double is exact, and
   * only in range is the cast back defined */
  if (!(x >= 0 && x < 18446744073709551616.0)) return 0;
  if (x != (lua_Number)(uint64_t)x || (uint64_t)x > max) return 0;
  *out = (uint64_t)x;
  return 1;
}

static uint64_t check_unsigned(lua_State *L, int arg, uint64_t max) {
  uint64_t v = 0;
  if (!to_unsigned(L, arg, max, &v)) {
    if (lua_type(L, arg) != LUA_TNUMBER && !lua_isnumber(L, arg))
      luaL_checknumber(L, arg);   /* raises "number expected, got ..." */
    luaL_argerror(L, arg, max == UINT32_MAX
                  ? "not a 32-bit unsigned integer"
                  : "not a 64-bit unsigned integer");
  }
  return v;
}

static uint32_t check_u32(lua_State *L, int arg) {
  return (uint32_t)check_unsigned(L, arg, UINT32_MAX);
}

static uint64_t check_u64(lua_State *L, int arg) {
  return check_unsigned(L, arg, UINT64_MAX);
}

static void push_u64(lua_State *L, uint64_t v) {
#if LUA_VERSION_NUM >= 503
  if (v <= (uint64_t)LUA_MAXINTEGER) {
    lua_pushinteger(L, (lua_Integer)v);
    return;
  }
#endif
  /* 5.1, 5.2 and LuaJIT keep numbers as doubles anyway: exact to 2^53 */
  lua_pushnumber(L, (lua_Number)v);
}

static void set_u64(lua_State *L, const char *k, uint64_t v) {
  push_u64(L, v);
  lua_setfield(L, -2, k);
}

static void set_span(lua_State *L, const char *k, const sfp_span *s) {
  lua_pushlstring(L, (const char *)s->p, s->n);
  lua_setfield(L, -2, k);
}

/* ---- attributes ----------------------------------------------------------- */

/* a field of the attrs table at arg: 1 and *v when present; narrow: a
 * uint32 field (all but size) */
static int attr_field(lua_State *L, int arg, const char *k, int narrow,
                      uint64_t *v) {
  int t = lua_getfield(L, arg, k);
  if (t == LUA_TNIL) {
    lua_pop(L, 1);
    return 0;
  }
  if (t != LUA_TNUMBER)
    luaL_error(L, "bad attribute '%s' (number expected, got %s)", k,
               luaL_typename(L, -1));
  if (!to_unsigned(L, -1, narrow ? UINT32_MAX : UINT64_MAX, v))
    luaL_error(L, "bad attribute '%s' (not a %s-bit unsigned integer)", k,
               narrow ? "32" : "64");
  lua_pop(L, 1);
  return 1;
}

/* the attrs table at arg, or NULL for none (nil or absent) */
static const sfp_attrs *check_attrs(lua_State *L, int arg, sfp_attrs *a) {
  uint64_t v, w;
  int has_a, has_b;
  memset(a, 0, sizeof *a);
  if (lua_isnoneornil(L, arg)) return NULL;
  luaL_checktype(L, arg, LUA_TTABLE);
  if (attr_field(L, arg, "size", 0, &v)) {
    a->flags |= SFP_ATTR_SIZE;
    a->size = v;
  }
  has_a = attr_field(L, arg, "uid", 1, &v);
  has_b = attr_field(L, arg, "gid", 1, &w);
  if (has_a != has_b) luaL_error(L, "bad attributes (uid and gid go together)");
  if (has_a) {
    a->flags |= SFP_ATTR_UIDGID;
    a->uid = (uint32_t)v;
    a->gid = (uint32_t)w;
  }
  if (attr_field(L, arg, "permissions", 1, &v)) {
    a->flags |= SFP_ATTR_PERMISSIONS;
    a->permissions = (uint32_t)v;
  }
  has_a = attr_field(L, arg, "atime", 1, &v);
  has_b = attr_field(L, arg, "mtime", 1, &w);
  if (has_a != has_b) luaL_error(L, "bad attributes (atime and mtime go together)");
  if (has_a) {
    a->flags |= SFP_ATTR_ACMODTIME;
    a->atime = (uint32_t)v;
    a->mtime = (uint32_t)w;
  }
  return a;
}

static void push_attrs(lua_State *L, const sfp_attrs *a) {
  lua_createtable(L, 0, 8);
  set_u64(L, "flags", a->flags);
  if (a->flags & SFP_ATTR_SIZE) set_u64(L, "size", a->size);
  if (a->flags & SFP_ATTR_UIDGID) {
    set_u64(L, "uid", a->uid);
    set_u64(L, "gid", a->gid);
  }
  if (a->flags & SFP_ATTR_PERMISSIONS) set_u64(L, "permissions", a->permissions);
  if (a->flags & SFP_ATTR_ACMODTIME) {
    set_u64(L, "atime", a->atime);
    set_u64(L, "mtime", a->mtime);
  }
  if (a->flags & SFP_ATTR_EXTENDED) set_u64(L, "extended", a->nextended);
}

/* ---- encoding ------------------------------------------------------------- */

enum {
  K_INIT, K_OPEN, K_CLOSE, K_READ, K_WRITE, K_LSTAT, K_FSTAT, K_SETSTAT,
  K_FSETSTAT, K_OPENDIR, K_READDIR, K_REMOVE, K_MKDIR, K_RMDIR, K_REALPATH,
  K_STAT, K_RENAME, K_READLINK, K_SYMLINK, K_EXTENDED, K_POSIX_RENAME,
  K_HARDLINK, K_FSYNC, K_STATVFS, K_FSTATVFS, K_LIMITS
};

static const char *const kinds[] = {
  "init", "open", "close", "read", "write", "lstat", "fstat", "setstat",
  "fsetstat", "opendir", "readdir", "remove", "mkdir", "rmdir", "realpath",
  "stat", "rename", "readlink", "symlink", "extended", "posix_rename",
  "hardlink", "fsync", "statvfs", "fstatvfs", "limits", NULL
};

/* Encodes into b; raises on bad arguments (b is freed by the caller, so
 * nothing is allocated before the arguments are all checked: every
 * check comes first, then one encode call). */
static int encode(lua_State *L, sfp_buf *b, int kind, uint32_t id) {
  size_t n1, n2;
  const char *s1, *s2;
  sfp_attrs a;
  const sfp_attrs *ap;
  uint64_t off;
  switch (kind) {
    case K_INIT:
      return sfp_req_init(b, id);
    case K_OPEN: {
      uint32_t pflags;
      s1 = luaL_checklstring(L, 3, &n1);
      pflags = check_u32(L, 4);
      ap = check_attrs(L, 5, &a);
      return sfp_req_open(b, id, s1, n1, pflags, ap);
    }
    case K_READ: {
      uint32_t len;
      s1 = luaL_checklstring(L, 3, &n1);
      off = check_u64(L, 4);
      len = check_u32(L, 5);
      return sfp_req_read(b, id, s1, n1, off, len);
    }
    case K_WRITE:
      s1 = luaL_checklstring(L, 3, &n1);
      off = check_u64(L, 4);
      s2 = luaL_checklstring(L, 5, &n2);
      return sfp_req_write(b, id, s1, n1, off, s2, n2);
    case K_SETSTAT: case K_FSETSTAT: case K_MKDIR:
      s1 = luaL_checklstring(L, 3, &n1);
      if (kind != K_MKDIR) luaL_checktype(L, 4, LUA_TTABLE);
      ap = check_attrs(L, 4, &a);
      if (kind == K_SETSTAT) return sfp_req_setstat(b, id, s1, n1, ap);
      if (kind == K_FSETSTAT) return sfp_req_fsetstat(b, id, s1, n1, ap);
      return sfp_req_mkdir(b, id, s1, n1, ap);
    case K_RENAME: case K_SYMLINK: case K_POSIX_RENAME: case K_HARDLINK:
      s1 = luaL_checklstring(L, 3, &n1);
      s2 = luaL_checklstring(L, 4, &n2);
      if (kind == K_RENAME) return sfp_req_rename(b, id, s1, n1, s2, n2);
      if (kind == K_SYMLINK) return sfp_req_symlink(b, id, s1, n1, s2, n2);
      if (kind == K_POSIX_RENAME) return sfp_req_posix_rename(b, id, s1, n1, s2, n2);
      return sfp_req_hardlink(b, id, s1, n1, s2, n2);
    case K_EXTENDED:
      s1 = luaL_checklstring(L, 3, &n1);
      s2 = luaL_optlstring(L, 4, "", &n2);
      return sfp_req_extended(b, id, s1, n1, s2, n2);
    case K_LIMITS:
      return sfp_req_limits(b, id);
    default:
      break;
  }
  /* one string: a path or a handle */
  s1 = luaL_checklstring(L, 3, &n1);
  switch (kind) {
    case K_CLOSE: return sfp_req_close(b, id, s1, n1);
    case K_LSTAT: return sfp_req_lstat(b, id, s1, n1);
    case K_FSTAT: return sfp_req_fstat(b, id, s1, n1);
    case K_OPENDIR: return sfp_req_opendir(b, id, s1, n1);
    case K_READDIR: return sfp_req_readdir(b, id, s1, n1);
    case K_REMOVE: return sfp_req_remove(b, id, s1, n1);
    case K_RMDIR: return sfp_req_rmdir(b, id, s1, n1);
    case K_REALPATH: return sfp_req_realpath(b, id, s1, n1);
    case K_STAT: return sfp_req_stat(b, id, s1, n1);
    case K_READLINK: return sfp_req_readlink(b, id, s1, n1);
    case K_FSYNC: return sfp_req_fsync(b, id, s1, n1);
    case K_STATVFS: return sfp_req_statvfs(b, id, s1, n1);
    default: return sfp_req_fstatvfs(b, id, s1, n1);
  }
}

/* core.sftp_encode(kind, id, ...) -> bytes */
static int l_encode(lua_State *L) {
  int kind = luaL_checkoption(L, 1, NULL, kinds), e;
  uint32_t id;
  sfp_buf b;
  if (kind == K_INIT)
    id = lua_isnoneornil(L, 2) ? SFP_PROTOCOL : check_u32(L, 2);
  else
    id = check_u32(L, 2);
  sfp_buf_init(&b);
  /* the checks may raise: they all run before the buffer gets memory,
   * inside encode(), which allocates only in its last call */
  e = encode(L, &b, kind, id);
  if (e == SFP_OK)
    lua_pushlstring(L, (const char *)sfp_buf_head(&b), b.len);
  sfp_buf_free(&b);
  if (e != SFP_OK)
    return luaL_error(L, "sftp_encode %s: %s", kinds[kind], sfp_strerror(e));
  return 1;
}

/* ---- decoding ------------------------------------------------------------- */

static int malformed(lua_State *L, const char *why) {
  lua_pushnil(L);
  lua_pushliteral(L, "malformed");
  lua_pushstring(L, why);
  return 3;
}

static void push_names(lua_State *L, const sfp_packet *pk) {
  sfp_iter it;
  sfp_name e;
  lua_Integer i = 0;
  /* sfp_decode walked the entries already, so count is true here */
  lua_createtable(L, pk->count < 4096 ? (int)pk->count : 4096, 0);
  sfp_name_begin(pk, &it);
  while (sfp_name_next(&it, &e) == 1) {
    lua_createtable(L, 0, 3);
    set_span(L, "name", &e.filename);
    set_span(L, "longname", &e.longname);
    push_attrs(L, &e.attrs);
    lua_setfield(L, -2, "attrs");
    lua_rawseti(L, -2, ++i);
  }
}

static void push_exts(lua_State *L, const sfp_packet *pk) {
  sfp_iter it;
  sfp_span k, v;
  lua_newtable(L);
  sfp_ext_begin(pk, &it);
  while (sfp_ext_next(&it, &k, &v) == 1) {
    lua_pushlstring(L, (const char *)k.p, k.n);
    lua_pushlstring(L, (const char *)v.p, v.n);
    lua_rawset(L, -3);
  }
}

/* core.sftp_decode(bytes [, max [, init]]) */
static int l_decode(lua_State *L) {
  size_t n, size, max;
  const unsigned char *p = (const unsigned char *)luaL_checklstring(L, 1, &n);
  sfp_packet pk;
  int r, e;
  max = lua_isnoneornil(L, 2) ? SFP_MAX_PACKET : (size_t)check_u32(L, 2);
  if (!lua_isnoneornil(L, 3)) {
    lua_Integer init = luaL_checkinteger(L, 3);
    if (init < 1) luaL_argerror(L, 3, "start position below 1");
    if ((uint64_t)(init - 1) >= n) {
      p += n;
      n = 0;
    } else {
      p += init - 1;
      n -= (size_t)(init - 1);
    }
  }
  r = sfp_frame(p, n, max, &size);
  if (r == 0) {
    lua_pushnil(L);
    lua_pushliteral(L, "need");
    push_u64(L, size);
    return 3;
  }
  if (r < 0) {
    unsigned long len = (unsigned long)p[0] << 24 | (unsigned long)p[1] << 16 |
                        (unsigned long)p[2] << 8 | p[3];
    char why[80];
    if (len == 0) return malformed(L, "packet length 0");
    snprintf(why, sizeof why, "packet length %lu over the limit %lu", len,
             (unsigned long)(max ? max : SFP_MAX_PACKET));
    return malformed(L, why);
  }
  e = sfp_decode(p, size, &pk);
  if (e == SFP_E_TYPE) {
    lua_pushfstring(L, "%s %d", sfp_strerror(e), pk.type);
    return malformed(L, lua_tostring(L, -1));
  }
  if (e != SFP_OK) return malformed(L, sfp_strerror(e));
  lua_createtable(L, 0, 6);
  lua_pushstring(L, sfp_type_name(pk.type));
  lua_setfield(L, -2, "type");
  if (pk.type == SFP_INIT || pk.type == SFP_VERSION) {
    set_u64(L, "version", pk.version);
    push_exts(L, &pk);
    lua_setfield(L, -2, "extensions");
  } else {
    set_u64(L, "id", pk.id);
  }
  switch (pk.type) {
    case SFP_STATUS: {
      const char *name = sfp_status_name(pk.code);
      set_u64(L, "code", pk.code);
      if (name != NULL) {
        lua_pushstring(L, name);
        lua_setfield(L, -2, "name");
      }
      set_span(L, "message", &pk.message);
      set_span(L, "language", &pk.language);
      break;
    }
    case SFP_NAME:
      push_names(L, &pk);
      lua_setfield(L, -2, "entries");
      break;
    case SFP_RENAME:
      set_span(L, "oldpath", &pk.path);
      set_span(L, "newpath", &pk.path2);
      break;
    case SFP_SYMLINK:
      set_span(L, "target", &pk.path);
      set_span(L, "link", &pk.path2);
      break;
    case SFP_EXTENDED:
      set_span(L, "request", &pk.ext_name);
      set_span(L, "data", &pk.payload);
      break;
    case SFP_EXTENDED_REPLY:
      set_span(L, "data", &pk.payload);
      break;
    default:
      /* the fields of the other types: whichever were decoded */
      if (pk.path.p) set_span(L, "path", &pk.path);
      if (pk.handle.p) set_span(L, "handle", &pk.handle);
      if (pk.data.p) set_span(L, "data", &pk.data);
      if (pk.type == SFP_OPEN) set_u64(L, "pflags", pk.pflags);
      if (pk.type == SFP_READ || pk.type == SFP_WRITE) set_u64(L, "offset", pk.offset);
      if (pk.type == SFP_READ) set_u64(L, "length", pk.length);
      if (pk.type == SFP_ATTRS || pk.type == SFP_OPEN || pk.type == SFP_SETSTAT ||
          pk.type == SFP_FSETSTAT || pk.type == SFP_MKDIR) {
        push_attrs(L, &pk.attrs);
        lua_setfield(L, -2, "attrs");
      }
      break;
  }
  push_u64(L, size);
  return 2;
}

/* core.sftp_decode_limits(payload) */
static int l_decode_limits(lua_State *L) {
  size_t n;
  const char *p = luaL_checklstring(L, 1, &n);
  sfp_limits l;
  int e = sfp_decode_limits((const unsigned char *)p, n, &l);
  if (e != SFP_OK) {
    lua_pushnil(L);
    lua_pushstring(L, sfp_strerror(e));
    return 2;
  }
  lua_createtable(L, 0, 4);
  set_u64(L, "max_packet", l.max_packet);
  set_u64(L, "max_read", l.max_read);
  set_u64(L, "max_write", l.max_write);
  set_u64(L, "max_handles", l.max_handles);
  return 1;
}

/* core.sftp_decode_statvfs(payload) */
static int l_decode_statvfs(lua_State *L) {
  size_t n;
  const char *p = luaL_checklstring(L, 1, &n);
  sfp_statvfs s;
  int e = sfp_decode_statvfs((const unsigned char *)p, n, &s);
  if (e != SFP_OK) {
    lua_pushnil(L);
    lua_pushstring(L, sfp_strerror(e));
    return 2;
  }
  lua_createtable(L, 0, 11);
  set_u64(L, "bsize", s.bsize);
  set_u64(L, "frsize", s.frsize);
  set_u64(L, "blocks", s.blocks);
  set_u64(L, "bfree", s.bfree);
  set_u64(L, "bavail", s.bavail);
  set_u64(L, "files", s.files);
  set_u64(L, "ffree", s.ffree);
  set_u64(L, "favail", s.favail);
  set_u64(L, "fsid", s.fsid);
  set_u64(L, "flag", s.flag);
  set_u64(L, "namemax", s.namemax);
  return 1;
}

static const luaL_Reg funcs[] = {
  {"sftp_encode", l_encode},
  {"sftp_decode", l_decode},
  {"sftp_decode_limits", l_decode_limits},
  {"sftp_decode_statvfs", l_decode_statvfs},
  {NULL, NULL}
};

void nl_open_sftp_codec(lua_State *L) {
  luaL_setfuncs(L, funcs, 0);
}
