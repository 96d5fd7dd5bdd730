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
#include <netdb.h>
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
    case EISCONN: return "connected";
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

/* nil, "<what>: <strerror>", code for errno err, what made from fmt */
static int vpushfail(lua_State *L, int err, const char *fmt, va_list ap) {
  char what[512];
  vsnprintf(what, sizeof what, fmt, ap);
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s", what, nl_strerror(err));
  lua_pushstring(L, nl_code(err));
  return 3;
}

int nl_pushfail(lua_State *L, int err, const char *fmt, ...) {
  va_list ap;
  int n;
  va_start(ap, fmt);
  n = vpushfail(L, err, fmt, ap);
  va_end(ap);
  return n;
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

/* LuaSocket-named methods answer with LuaSocket's strings, so code that
 * tests `err == "timeout"` or `err == "connection refused"` ports as it
 * is: its own wording for the errnos it names, strerror() for the rest. */
const char *nl_lserror(int err) {
  switch (err) {
    case NL_TIMEOUT: return "timeout";
    case NL_CLOSED: case NL_ABORTED: return "closed";
    case NL_LIMIT: return "limit";
    case EADDRINUSE: return "address already in use";
    case EISCONN: return "already connected";
    case EACCES: return "permission denied";
    case ECONNREFUSED: return "connection refused";
    case ECONNABORTED: case ECONNRESET: case EPIPE: return "closed";
    case ETIMEDOUT: return "connection timeout";
    default: return strerror(err);
  }
}

const char *nl_lsgaierror(int gerr) {
  switch (gerr) {
    case EAI_AGAIN: return "temporary failure in name resolution";
    case EAI_BADFLAGS: return "invalid value for ai_flags";
    case EAI_FAIL: return "non-recoverable failure in name resolution";
    case EAI_FAMILY: return "ai_family not supported";
    case EAI_MEMORY: return "memory allocation failure";
    case EAI_NONAME: return "host or service not provided, or not known";
#ifdef EAI_OVERFLOW
    case EAI_OVERFLOW: return "argument buffer overflow";
#endif
    case EAI_SERVICE: return "service not supported for socket type";
    case EAI_SOCKTYPE: return "ai_socktype not supported";
    case EAI_SYSTEM: return strerror(errno);
    default: return gai_strerror(gerr);
  }
}

/* Turns the nil, msg, code just pushed into LuaSocket's order:
 * nil, err, msg, code. */
int nl_lsresult(lua_State *L, const char *err) {
  lua_pushstring(L, err);
  lua_insert(L, -3);
  return 4;
}

int nl_pushlsfail(lua_State *L, int err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vpushfail(L, err, fmt, ap);
  va_end(ap);
  return nl_lsresult(L, nl_lserror(err));
}
