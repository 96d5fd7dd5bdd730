/*
 * fs.c - the little local filesystem work netlua's Lua modules need and
 * Lua's io library lacks: making directories, reading a folder, a file's
 * type, size and time, and setting that time (all for ftp mirror).  Not a
 * filesystem library: nothing here is part of the public API.
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "netlua.h"

static int is_dir(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* core.mkdir_p(path) -> true | nil, msg, code: path and missing parents,
 * like mkdir -p, with no shell in between. */
static int l_mkdir_p(lua_State *L) {
  size_t n, i;
  const char *path = luaL_checklstring(L, 1, &n);
  luaL_Buffer b;
  char *p;
  luaL_argcheck(L, n > 0 && strlen(path) == n, 1, "empty path or NUL byte");
  p = luaL_buffinitsize(L, &b, n + 1);
  memcpy(p, path, n + 1);
  for (i = 1; i <= n; i++) {
    if (p[i] != '/' && p[i] != '\0') continue;
    p[i] = '\0';
    if (mkdir(p, 0777) != 0 && errno != EEXIST)
      return nl_pushfail(L, errno, "mkdir %s", p);
    if (!is_dir(p)) return nl_pushfail(L, ENOTDIR, "mkdir %s", p);
    if (i < n) p[i] = '/';
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* a path argument: a string with no NUL byte inside */
static const char *checkpath(lua_State *L, int arg) {
  size_t n;
  const char *p = luaL_checklstring(L, arg, &n);
  luaL_argcheck(L, n > 0 && strlen(p) == n, arg, "empty path or NUL byte");
  return p;
}

static const char *kind(mode_t m) {
  if (S_ISREG(m)) return "file";
  if (S_ISDIR(m)) return "dir";
  if (S_ISLNK(m)) return "link";
  return "other";
}

/* fills the table on top with type, size and mtime (whole seconds: what
 * the FTP side can match) of st */
static void set_stat(lua_State *L, const struct stat *st) {
  lua_pushstring(L, kind(st->st_mode));
  lua_setfield(L, -2, "type");
  lua_pushinteger(L, (lua_Integer)st->st_size);
  lua_setfield(L, -2, "size");
  lua_pushinteger(L, (lua_Integer)st->st_mtime);
  lua_setfield(L, -2, "modify");
}

/* core.fs_stat(path [, nofollow]) -> {type=, size=, modify=} | nil, msg,
 * code: lstat when nofollow, so a link can be told from its target. */
static int l_fs_stat(lua_State *L) {
  const char *p = checkpath(L, 1);
  struct stat st;
  int r = lua_toboolean(L, 2) ? lstat(p, &st) : stat(p, &st);
  if (r != 0) return nl_pushfail(L, errno, "stat %s", p);
  lua_createtable(L, 0, 3);
  set_stat(L, &st);
  return 1;
}

/* core.fs_list(dir) -> array of {name=, type=, size=, modify=} (lstat:
 * links are "link"), or nil, msg, code.  "." and ".." are left out; an
 * entry that vanishes while it is read is left out too. */
static int l_fs_list(lua_State *L) {
  const char *p = checkpath(L, 1);
  DIR *d = opendir(p);
  struct dirent *de;
  lua_Integer n = 0;
  if (d == NULL) return nl_pushfail(L, errno, "opendir %s", p);
  lua_newtable(L);
  while ((de = readdir(d)) != NULL) {
    struct stat st;
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    lua_createtable(L, 0, 4);
    lua_pushstring(L, de->d_name);
    lua_setfield(L, -2, "name");
    set_stat(L, &st);
    lua_rawseti(L, -2, ++n);
  }
  closedir(d);
  return 1;
}

/* core.fs_setmtime(path, seconds) -> true | nil, msg, code: the access
 * and modification times both become `seconds` (a remote file's time). */
static int l_fs_setmtime(lua_State *L) {
  const char *p = checkpath(L, 1);
  lua_Number t = luaL_checknumber(L, 2);
  struct timespec ts[2];
  ts[0].tv_sec = (time_t)t;
  ts[0].tv_nsec = (long)((t - (lua_Number)ts[0].tv_sec) * 1e9);
  if (ts[0].tv_nsec < 0 || ts[0].tv_nsec > 999999999) ts[0].tv_nsec = 0;
  ts[1] = ts[0];
  if (utimensat(AT_FDCWD, p, ts, 0) != 0) return nl_pushfail(L, errno, "utime %s", p);
  lua_pushboolean(L, 1);
  return 1;
}

/* core.fs_symlink(target, path) -> true | nil, msg, code: a link at path
 * holding target as it is (mirror's symlinks = "link"). */
static int l_fs_symlink(lua_State *L) {
  const char *target = checkpath(L, 1);
  const char *p = checkpath(L, 2);
  if (symlink(target, p) != 0) return nl_pushfail(L, errno, "symlink %s", p);
  lua_pushboolean(L, 1);
  return 1;
}

void nl_open_fs(lua_State *L) {
  static const luaL_Reg fns[] = {
    {"mkdir_p", l_mkdir_p}, {"fs_stat", l_fs_stat}, {"fs_list", l_fs_list},
    {"fs_setmtime", l_fs_setmtime}, {"fs_symlink", l_fs_symlink}, {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
}
