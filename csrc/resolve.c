/*
 * resolve.c - name lookups that keep deadlines and let other tasks run.
 *
 * The resolver calls (getaddrinfo, getnameinfo, gethostby*_r) have no
 * timeout and hold the calling thread until the system resolver gives up
 * (5 s per server and try, by default).  So they run in a short-lived
 * helper thread when it matters: inside netlua.run (the task waits on the
 * thread's pipe like on any socket, and the others run) and when the
 * caller has a deadline (the wait ends at it; the thread finishes on its
 * own and frees what it has).  A blocking call with no deadline, and a
 * numeric address, run right here.
 *
 * A call in progress lives on the Lua stack as a userdata, so an operation
 * that yields finds it again when it restarts (nl_offload_resumed).  What
 * the thread touches is a separate block shared by reference count, since
 * a timed-out caller leaves the thread behind.
 *
 * Not here: what the lookups return to Lua (lookup.c, tcp.c, ftp.c).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "netlua.h"

#define OFFLOAD "netlua.offload"

/* What the helper thread and the Lua side share. */
typedef struct job {
  pthread_mutex_t mu;
  int refs;                /* 2 while both sides hold it */
  int rfd, wfd;            /* the thread writes one byte when done */
  nl_offload_fn fn;
  void *arg;
  void (*release)(void *arg);
} job;

struct nl_offload {
  nl_coop co;              /* the wait, restartable after a yield */
  nl_deadline dl;          /* set once, when the call starts */
  job *j;                  /* NULL once collected */
  int done;
};

static void job_release(job *j) {
  int left;
  pthread_mutex_lock(&j->mu);
  left = --j->refs;
  pthread_mutex_unlock(&j->mu);
  if (left > 0) return;
  if (j->release) j->release(j->arg);
  if (j->rfd >= 0) close(j->rfd);
  if (j->wfd >= 0) close(j->wfd);
  pthread_mutex_destroy(&j->mu);
  free(j);
}

static void *job_run(void *arg) {
  job *j = (job *)arg;
  ssize_t w;
  j->fn(j->arg);
  do w = write(j->wfd, "", 1); while (w < 0 && errno == EINTR);
  job_release(j);
  return NULL;
}

/* A thread still running when the Lua state closes must not find its
 * code unmapped: the first thread pins this library for the process. */
static void pin_library(void) {
  static int pinned = 0;
  Dl_info info;
  if (pinned) return;
  if (dladdr((void *)pin_library, &info) && info.dli_fname &&
      dlopen(info.dli_fname, RTLD_NOW | RTLD_NODELETE) != NULL)
    pinned = 1;
}

/* Starts the helper thread on j; an errno on failure (j untouched). */
static int job_thread(job *j) {
  int p[2], e;
  pthread_t t;
  pthread_attr_t at;
  sigset_t all, old;
  if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) return errno;
  j->rfd = p[0];
  j->wfd = p[1];
  pin_library();
  pthread_attr_init(&at);
  pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
  j->refs = 2;
  /* the thread starts with every signal blocked: Ctrl-C and friends keep
   * going to the script's own thread */
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  e = pthread_create(&t, &at, job_run, j);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&at);
  if (e != 0) {
    j->refs = 1;
    close(p[0]);
    close(p[1]);
    j->rfd = j->wfd = -1;
  }
  return e;
}

static int offload_gc(lua_State *L) {
  nl_offload *o = (nl_offload *)luaL_checkudata(L, 1, OFFLOAD);
  if (o->j) job_release(o->j);
  o->j = NULL;
  return 0;
}

nl_offload *nl_offload_start(lua_State *L, nl_offload_fn fn, void *arg,
                             void (*release)(void *arg), int here,
                             lua_CFunction restart, double timeout) {
  nl_offload *o;
  job *j;
  o = (nl_offload *)lua_newuserdatauv(L, sizeof *o, 0);
  memset(o, 0, sizeof *o);
  if (luaL_newmetatable(L, OFFLOAD)) {
    lua_pushcfunction(L, offload_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  j = (job *)calloc(1, sizeof *j);
  if (j == NULL) {
    if (release) release(arg);
    luaL_error(L, "not enough memory");
  }
  pthread_mutex_init(&j->mu, NULL);
  j->refs = 1;
  j->rfd = j->wfd = -1;
  j->fn = fn;
  j->arg = arg;
  j->release = release;
  o->j = j;  /* from here the userdata frees it */
  nl_coop_begin(L, &o->co, restart, timeout, &o->dl);
  if (!here && (nl_coop_active(L) || o->dl.at >= 0) && job_thread(j) == 0)
    return o;
  /* blocking, or no thread to be had: the plain call */
  fn(arg);
  o->done = 1;
  return o;
}

nl_offload *nl_offload_resumed(lua_State *L) {
  nl_offload *o = (nl_offload *)luaL_testudata(L, -1, OFFLOAD);
  if (o == NULL || !o->co.resuming || o->co.L != L) return NULL;
  return o;
}

nl_offload *nl_offload_top(lua_State *L) {
  return (nl_offload *)luaL_testudata(L, -1, OFFLOAD);
}

int nl_offload_fd(nl_offload *o) {
  return o->done || o->j == NULL ? -1 : o->j->rfd;
}

int nl_offload_wait(nl_offload *o, nl_coop *owner, nl_deadline *d) {
  nl_coop *c = owner ? owner : &o->co;
  *d = o->dl;
  while (!o->done) {
    char byte;
    ssize_t n = read(o->j->rfd, &byte, 1);
    int w;
    if (n == 1) {
      o->done = 1;
      break;
    }
    if (n < 0 && errno == EINTR) continue;
    /* in a task this yields; the caller's restart comes back here */
    w = nl_coop_wait(c, o->j->rfd, NL_WAIT_READ, &o->dl);
    if (w != NL_OK) {
      nl_coop_end(c);
      return w;
    }
  }
  nl_coop_end(c);
  return NL_OK;
}

void *nl_offload_arg(nl_offload *o) {
  return o->j ? o->j->arg : NULL;
}

/* ---- getaddrinfo ------------------------------------------------------ */

typedef struct gai_job {
  char *host, *serv;
  struct addrinfo hints;
  struct addrinfo *res;
  int gerr, err;
} gai_job;

static void gai_run(void *arg) {
  gai_job *g = (gai_job *)arg;
  g->gerr = getaddrinfo(g->host, g->serv, &g->hints, &g->res);
  g->err = errno;  /* EAI_SYSTEM's reason: errno is the thread's own */
  if (g->gerr != 0) g->res = NULL;
}

static void gai_release(void *arg) {
  gai_job *g = (gai_job *)arg;
  if (g->res) freeaddrinfo(g->res);
  free(g->host);
  free(g->serv);
  free(g);
}

static char *dup_or_null(const char *s) {
  return s ? strdup(s) : NULL;
}

/* A numeric host needs no resolver: it never waits. */
static int numeric_host(const char *host, const struct addrinfo *hints) {
  struct addrinfo h = *hints, *res = NULL;
  if (host == NULL) return 1;
  h.ai_flags |= AI_NUMERICHOST;
  h.ai_flags &= ~AI_CANONNAME;
  if (getaddrinfo(host, NULL, &h, &res) != 0) return 0;
  freeaddrinfo(res);
  return 1;
}

nl_offload *nl_resolve_start(lua_State *L, const char *host,
                             const char *serv, const struct addrinfo *hints,
                             lua_CFunction restart, double timeout) {
  gai_job *g = (gai_job *)calloc(1, sizeof *g);
  if (g == NULL) luaL_error(L, "not enough memory");
  g->host = dup_or_null(host);
  g->serv = dup_or_null(serv);
  g->hints = *hints;
  if ((host && !g->host) || (serv && !g->serv)) {
    gai_release(g);
    luaL_error(L, "not enough memory");
  }
  return nl_offload_start(L, gai_run, g, gai_release,
                          numeric_host(host, hints), restart, timeout);
}

int nl_resolve_wait(nl_offload *o, nl_coop *owner, struct addrinfo **res,
                    int *gerr, nl_deadline *d) {
  int w = nl_offload_wait(o, owner, d);
  gai_job *g;
  if (w != NL_OK) return w;
  g = (gai_job *)nl_offload_arg(o);
  *res = g->res;
  *gerr = g->gerr;
  if (g->gerr != 0) errno = g->err;
  return NL_OK;
}

struct addrinfo *nl_resolve_take(nl_offload *o) {
  gai_job *g = (gai_job *)nl_offload_arg(o);
  struct addrinfo *res = g->res;
  g->res = NULL;
  return res;
}
