/*
 * error.c - turning failures into netlua's `nil, message, code` results.
 *
 * The message is for people and names what failed; the code is a short
 * stable string for programs.  Misuse by the caller is not handled here:
 * that raises a Lua error at the argument check.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "netlua.h"

const char *nl_code(int err) {
  switch (err) {
    case NL_TIMEOUT: return "timeout";
    case NL_CLOSED: return "closed";
    case NL_ABORTED: return "closed";
    case NL_LIMIT: return "limit";
    case ETIMEDOUT: return "timeout";
    case ECONNREFUSED: return "refused";
    case ECONNRESET: case EPIPE: case ENOTCONN: return "closed";
    case ECONNABORTED: return "closed";
    case ENETUNREACH: case EHOSTUNREACH: case ENETDOWN: return "unreachable";
    case EADDRINUSE: return "addrinuse";
    case EADDRNOTAVAIL: return "addrnotavail";
    case EACCES: case EPERM: return "denied";
    case EMSGSIZE: return "msgsize";
    case ENOMEM: case ENOBUFS: return "nomem";
    case EMFILE: case ENFILE: return "limit";  /* out of descriptors */
    case EAFNOSUPPORT: return "family";
    case EINVAL: return "invalid";
    case ENODEV: case ENXIO: return "nodevice";
    default: return "error";
  }
}

const char *nl_strerror(int err) {
  switch (err) {
    case NL_TIMEOUT: return "timeout";
    case NL_CLOSED: return "closed by peer";
    case NL_ABORTED: return "closed";
    case NL_LIMIT: return "buffer limit reached";
    default: return strerror(err);
  }
}

int nl_pushfail(lua_State *L, int err, const char *fmt, ...) {
  va_list ap;
  char what[512];
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s", what, nl_strerror(err));
  lua_pushstring(L, nl_code(err));
  return 3;
}

int nl_pushfailcode(lua_State *L, const char *code, const char *fmt, ...) {
  va_list ap;
  char msg[1024];
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  lua_pushnil(L);
  lua_pushstring(L, msg);
  lua_pushstring(L, code);
  return 3;
}
