/*
 * fs.c - the little local filesystem work netlua's Lua modules need and
 * Lua's io library lacks: making directories (for ftp mirror).  Not a
 * filesystem library: nothing here is part of the public API.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

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

void nl_open_fs(lua_State *L) {
  lua_pushcfunction(L, l_mkdir_p);
  lua_setfield(L, -2, "mkdir_p");
}
