/*
 * resolve.c - name lookups that keep deadlines and let other tasks run.
 *
 * getaddrinfo() has no timeout and holds the calling thread until the
 * resolver gives up (5 s per server and try, by default).  So a name that
 * is not a numeric address is looked up by a short-lived helper thread
 * when it matters: inside netlua.run (the task waits on the thread's pipe
 * like on any socket, and the others run) and when the caller has a
 * deadline (the wait ends at it; the thread finishes on its own and
 * frees what it has).  A blocking call with no deadline, and any numeric
 * address, are resolved directly.
 *
 * The request lives on the Lua stack as a userdata, so an operation that
 * yields finds it again when it restarts (nl_resolve_resumed).  What the
 * thread touches is a separate block shared by reference count, since a
 * timed-out caller leaves the thread behind.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "netlua.h"

#define RESOLVE "netlua.resolve"

/* What the helper thread and the Lua side share. */
typedef struct job {
  pthread_mutex_t mu;
  int refs;                /* 2 while both sides hold it */
  int rfd, wfd;            /* the thread writes one byte when done */
  char *host, *serv;
  struct addrinfo hints;
  struct addrinfo *res;
  int gerr;
} job;

struct nl_resolve {
  nl_coop co;              /* the wait, restartable after a yield */
  nl_deadline dl;          /* set once, when the lookup starts */
  job *j;                  /* NULL once taken, or when resolved directly */
  struct addrinfo *res;    /* a direct result, until taken */
  int gerr;
  int done;
};

static void job_release(job *j) {
  int left;
  pthread_mutex_lock(&j->mu);
  left = --j->refs;
  pthread_mutex_unlock(&j->mu);
  if (left > 0) return;
  if (j->res) freeaddrinfo(j->res);
  if (j->rfd >= 0) close(j->rfd);
  if (j->wfd >= 0) close(j->wfd);
  free(j->host);
  free(j->serv);
  pthread_mutex_destroy(&j->mu);
  free(j);
}

static void *job_run(void *arg) {
  job *j = (job *)arg;
  ssize_t w;
  j->gerr = getaddrinfo(j->host, j->serv, &j->hints, &j->res);
  do w = write(j->wfd, "", 1); while (w < 0 && errno == EINTR);
  job_release(j);
  return NULL;
}

/* A thread still resolving when the Lua state closes must not find its
 * code unmapped: the first thread pins this library for the process. */
static void pin_library(void) {
  static int pinned = 0;
  Dl_info info;
  if (pinned) return;
  if (dladdr((void *)pin_library, &info) && info.dli_fname &&
      dlopen(info.dli_fname, RTLD_NOW | RTLD_NODELETE) != NULL)
    pinned = 1;
}

static char *dup_or_null(const char *s) {
  return s ? strdup(s) : NULL;
}

/* Starts the helper thread; an errno on failure. */
static int job_start(nl_resolve *r, const char *host, const char *serv,
                     const struct addrinfo *hints) {
  job *j = (job *)calloc(1, sizeof *j);
  int p[2], e;
  pthread_t t;
  pthread_attr_t at;
  if (j == NULL) return ENOMEM;
  j->rfd = j->wfd = -1;
  pthread_mutex_init(&j->mu, NULL);
  j->refs = 1;
  j->hints = *hints;
  j->host = dup_or_null(host);
  j->serv = dup_or_null(serv);
  if ((host && !j->host) || (serv && !j->serv)) e = ENOMEM;
  else if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) e = errno;
  else {
    j->rfd = p[0];
    j->wfd = p[1];
    e = 0;
  }
  if (e == 0) {
    pin_library();
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    j->refs = 2;
    e = pthread_create(&t, &at, job_run, j);
    pthread_attr_destroy(&at);
    if (e != 0) j->refs = 1;
  }
  if (e != 0) {
    job_release(j);
    return e;
  }
  r->j = j;
  return 0;
}

static int resolve_gc(lua_State *L) {
  nl_resolve *r = (nl_resolve *)luaL_checkudata(L, 1, RESOLVE);
  if (r->j) job_release(r->j);
  r->j = NULL;
  if (r->res) freeaddrinfo(r->res);
  r->res = NULL;
  return 0;
}

static int is_numeric(const char *host, const char *serv,
                      const struct addrinfo *hints, nl_resolve *r) {
  struct addrinfo h = *hints;
  if (host == NULL) return 0;
  h.ai_flags |= AI_NUMERICHOST;
  r->gerr = getaddrinfo(host, serv, &h, &r->res);
  if (r->gerr == 0) return 1;
  r->res = NULL;
  return 0;
}

nl_resolve *nl_resolve_start(lua_State *L, const char *host,
                             const char *serv, const struct addrinfo *hints,
                             lua_CFunction restart, double timeout) {
  nl_resolve *r = (nl_resolve *)lua_newuserdatauv(L, sizeof *r, 0);
  nl_deadline d;
  memset(r, 0, sizeof *r);
  if (luaL_newmetatable(L, RESOLVE)) {
    lua_pushcfunction(L, resolve_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  nl_coop_begin(L, &r->co, restart, timeout, &d);
  r->dl = d;
  r->done = 1;
  if (is_numeric(host, serv, hints, r)) return r;
  if ((nl_coop_active(L) || d.at >= 0) && job_start(r, host, serv, hints) == 0) {
    r->done = 0;
    return r;
  }
  /* blocking, or no thread to be had: the plain call */
  r->gerr = getaddrinfo(host, serv, hints, &r->res);
  if (r->gerr != 0) r->res = NULL;
  return r;
}

nl_resolve *nl_resolve_resumed(lua_State *L) {
  nl_resolve *r = (nl_resolve *)luaL_testudata(L, -1, RESOLVE);
  if (r == NULL || !r->co.resuming || r->co.L != L) return NULL;
  return r;
}

int nl_resolve_wait(nl_resolve *r, struct addrinfo **res, int *gerr,
                    nl_deadline *d) {
  *d = r->dl;
  while (!r->done) {
    char c;
    ssize_t n = read(r->j->rfd, &c, 1);
    int w;
    if (n == 1) {
      r->res = r->j->res;
      r->gerr = r->j->gerr;
      r->j->res = NULL;
      job_release(r->j);
      r->j = NULL;
      r->done = 1;
      break;
    }
    if (n < 0 && errno == EINTR) continue;
    /* in a task this yields; the caller's restart comes back here */
    w = nl_coop_wait(&r->co, r->j->rfd, NL_WAIT_READ, &r->dl);
    if (w != NL_OK) {
      nl_coop_end(&r->co);
      return w;
    }
  }
  nl_coop_end(&r->co);
  *res = r->res;
  *gerr = r->gerr;
  return NL_OK;
}

struct addrinfo *nl_resolve_take(nl_resolve *r) {
  struct addrinfo *res = r->res;
  r->res = NULL;
  return res;
}
