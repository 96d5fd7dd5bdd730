/*
 * resolve.c - name lookups that keep deadlines and let other tasks run.
 *
 * The resolver calls (getaddrinfo, getnameinfo, gethostby*_r) have no
 * timeout and hold the calling thread until the system resolver gives up
 * (5 s per server and try, by default).  So they run in a small pool of
 * resolver threads when it matters: inside netlua.run (the task parks,
 * the others run) and when the caller has a deadline (the wait ends at
 * it; the thread finishes the call on its own later).  A blocking call
 * with no deadline, and a numeric address, run right here.
 *
 * Why a pool and not a thread per lookup: a fleet script starts
 * thousands of lookups at once.  A thread and a pipe each (the first
 * design) took two descriptors per lookup, and with 12 000 of them under
 * a limit of 20 000 the C library itself could no longer open
 * /etc/services and answered "Servname not supported".  The pool holds
 * at most `max` threads (32 by default: a slow DNS server is waited for
 * in parallel, and getaddrinfo's own files stay at a few dozen
 * descriptors) and one wakeup descriptor (an eventfd, a pipe elsewhere)
 * per Lua state: finished lookups of that state's tasks are put on its
 * list and the descriptor is rung once; netlua.run drains the list and
 * wakes exactly the tasks whose lookups ended (they park on a key, the
 * job, not on a descriptor).  Measured here (2 shared cores, under
 * gVisor, where each lookup's file reads cost ~0.3 ms): 12 000 lookups
 * of "localhost" at once took 2.8-3.6 s with 4 threads and 3.4-4.7 s
 * with 32, against 4.4-4.7 s with a thread and a pipe per lookup, which
 * also failed 254 of them under a limit of 20 000 descriptors.  Lookups
 * in local files gain nothing from more threads; waiting on a slow DNS
 * server does, hence 32.
 * glibc's getaddrinfo_a has its own pool but tells completion through a
 * signal or a new thread per lookup, and cannot drop a queued lookup
 * cleanly; c-ares would bypass nsswitch (/etc/hosts only, no NSS modules),
 * answering differently from the rest of the system.
 *
 * A lookup whose caller went away (timeout, closed object) before a
 * thread took it is dropped from the queue without running.
 *
 * A call in progress lives on the Lua stack as a userdata, kept across a
 * wait with what the waiting operation keeps, so its restart finds it
 * again (nl_offload_resumed, nl_offload_top).  What
 * a thread touches is a separate block shared by reference count, since
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
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/eventfd.h>
#endif

#include "netlua.h"

#define OFFLOAD "netlua.offload"
#define BELL "netlua.resolve.bell"
#define ANCHOR "netlua.resolve.anchor"
#define POOL_MAX 32          /* threads, unless resolver_threads() says */
#define POOL_LIMIT 1024      /* the most resolver_threads() accepts */
#define IDLE_SECONDS 10      /* an idle thread ends after this */
#define INFLIGHT 256         /* buckets of the lookups that can be joined */

enum { J_NEW, J_QUEUED, J_RUNNING, J_DONE };

typedef struct bell bell;

/* One lookup, shared by the Lua side and the pool.  Everything in it is
 * under pool.mu, except fn/arg while it runs. */
typedef struct job {
  struct job *next;        /* in the queue, then in its bell's done list */
  int refs;                /* Lua side + queue/thread/done list */
  int state;
  int waiting;             /* a task is parked on it: its bell wakes it */
  int abandoned;           /* its caller timed out or was closed */
  nl_offload_fn fn;
  void *arg;
  void (*release)(void *arg);
  bell *b;                 /* the bell of the Lua state, for a task's job */
  /* joining the same lookup under way (see enqueue): a job with `same`
   * is in the inflight table while queued or running; a follower waits
   * for its lead's answer instead of being queued, and reads it there */
  int (*same)(const void *a, const void *b);
  unsigned hash;
  struct job *hnext;       /* in its inflight bucket */
  struct job *lead;        /* a follower's lead (a reference) */
  struct job *followers;   /* a lead's followers (a reference each) */
  struct job *fnext;       /* in its lead's followers */
} job;

/* The wakeup of one Lua state: finished jobs with a parked task. */
struct bell {
  int rfd, wfd;            /* the same eventfd, or a pipe's two ends */
  int refs;                /* the registry's userdata + one per job */
  int dead;                /* the Lua state is gone: ring nobody */
  int waiters;             /* tasks parked on a job of this bell */
  job *done;
};

static struct {
  pthread_mutex_t mu;
  pthread_cond_t work;     /* threads wait for jobs */
  pthread_cond_t done;     /* blocking callers wait for their job */
  job *head, *tail;
  int queued, threads, idle, max, blocked;
  unsigned trim;           /* bumped: the threads idle now end (trim_idle) */
  int nended;              /* ended by a trim, to be joined */
  pthread_t ended[POOL_LIMIT];
  job *inflight[INFLIGHT]; /* lookups queued or running that can be joined */
  unsigned long ran, joined;  /* jobs run by the threads; jobs that joined */
  int held;                /* core.resolve_hold: threads take no job */
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
          PTHREAD_COND_INITIALIZER, NULL, NULL, 0, 0, 0, POOL_MAX, 0, 0, 0,
          {0}, {0}, 0, 0, 0};

struct nl_offload {
  nl_coop co;              /* the wait, restartable after it pended */
  nl_deadline dl;          /* set once, when the call starts */
  job *j;                  /* NULL once collected */
  int done;                /* fn ran (here, or the job is J_DONE) */
  int err;                 /* the job could not be queued: an errno */
  int waited;              /* it parked or waited once already */
};

/* ---- the pool (everything *_locked runs under pool.mu) ----------------- */

static void bell_unref_locked(bell *b) {
  if (--b->refs > 0) return;
  close(b->rfd);
  if (b->wfd != b->rfd) close(b->wfd);
  free(b);
}

static void job_unref_locked(job *j) {
  if (--j->refs > 0) return;
  if (j->b) bell_unref_locked(j->b);
  if (j->release) j->release(j->arg);
  if (j->lead) job_unref_locked(j->lead);  /* a lead has no lead: depth 1 */
  free(j);
}

/* Takes j out of the inflight table (if it is there): nobody joins it
 * any more. */
static void inflight_remove_locked(job *j) {
  job **p;
  if (j->same == NULL) return;
  for (p = &pool.inflight[j->hash % INFLIGHT]; *p; p = &(*p)->hnext) {
    if (*p == j) {
      *p = j->hnext;
      break;
    }
  }
  j->hnext = NULL;
}

/* A lookup under way that asks what j asks, or NULL. */
static job *inflight_find_locked(job *j) {
  job *l;
  for (l = pool.inflight[j->hash % INFLIGHT]; l; l = l->hnext)
    if (l->hash == j->hash && l->same == j->same && l->same(l->arg, j->arg))
      return l;
  return NULL;
}

static void job_unref(job *j) {
  pthread_mutex_lock(&pool.mu);
  if (j->waiting) {  /* the task went away while parked (closed) */
    j->waiting = 0;
    j->b->waiters--;
  }
  job_unref_locked(j);
  pthread_mutex_unlock(&pool.mu);
}

static void ring_locked(bell *b) {
  static const unsigned long long one = 1;
  ssize_t w;
  /* eventfd takes 8 bytes, a pipe any; a full pipe is rung already */
  do w = write(b->wfd, &one, sizeof one); while (w < 0 && errno == EINTR);
}

/* Realtime-free waits: the done condition runs on the monotonic clock,
 * the clock deadlines are on. */
static void pool_init_conds(void) {
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&pool.work, &ca);
  pthread_cond_init(&pool.done, &ca);
  pthread_condattr_destroy(&ca);
}

/* In a forked child only the forking thread lives on: no resolver
 * thread exists there, whatever the counts said.  Queued jobs stay and
 * get new threads; a lookup that was running in the parent never ends
 * in the child. */
static void pool_atfork_child(void) {
  pthread_mutex_init(&pool.mu, NULL);
  pool_init_conds();
  pool.threads = pool.idle = pool.blocked = pool.nended = 0;
  /* nobody joins a lookup of the parent's: one that was running never
   * ends here (queued ones still run, for the followers they have) */
  memset(pool.inflight, 0, sizeof pool.inflight);
}

static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static void pool_setup(void) {
  pool_init_conds();
  pthread_atfork(NULL, NULL, pool_atfork_child);
}

static void abs_time(struct timespec *ts, double secs) {
  double whole;
  clock_gettime(CLOCK_MONOTONIC, ts);
  secs += (double)ts->tv_nsec / 1e9;
  whole = (double)(time_t)secs;
  ts->tv_sec += (time_t)whole;
  ts->tv_nsec = (long)((secs - whole) * 1e9);
  if (ts->tv_nsec >= 1000000000L) { ts->tv_sec++; ts->tv_nsec -= 1000000000L; }
}

/* j has its answer: its task's bell is rung, or the reference the queue
 * (or a lead's list) held goes. */
static void finish_locked(job *j) {
  j->state = J_DONE;
  if (j->waiting && !j->b->dead) {
    /* ring once per batch: a list that is not empty has rung already
     * and not been drained yet (the drain takes it all) */
    if (j->b->done == NULL) ring_locked(j->b);
    j->next = j->b->done;  /* its reference goes with it */
    j->b->done = j;
  } else {
    job_unref_locked(j);
  }
}

static void *worker(void *unused) {
  (void)unused;
  pthread_mutex_lock(&pool.mu);
  for (;;) {
    job *j;
    while (pool.head == NULL || pool.held) {
      struct timespec ts;
      unsigned seen = pool.trim;
      int r;
      abs_time(&ts, IDLE_SECONDS);
      pool.idle++;
      r = pthread_cond_timedwait(&pool.work, &pool.mu, &ts);
      pool.idle--;
      if (pool.head != NULL && !pool.held) break;
      if (pool.trim != seen) {  /* trim_idle joins us */
        pool.threads--;
        pool.ended[pool.nended++] = pthread_self();
        pthread_cond_broadcast(&pool.done);
        pthread_mutex_unlock(&pool.mu);
        return NULL;
      }
      if (r == ETIMEDOUT || pool.threads > pool.max) {
        pool.threads--;
        pthread_detach(pthread_self());  /* nobody joins this one */
        pthread_mutex_unlock(&pool.mu);
        return NULL;
      }
    }
    j = pool.head;
    pool.head = j->next;
    if (pool.head == NULL) pool.tail = NULL;
    pool.queued--;
    j->next = NULL;
    if (j->followers == NULL && (j->refs == 1 || j->abandoned)) {
      inflight_remove_locked(j);  /* nobody wants the answer */
      job_unref_locked(j);
      continue;
    }
    j->state = J_RUNNING;
    pool.ran++;
    pthread_mutex_unlock(&pool.mu);
    j->fn(j->arg);
    pthread_mutex_lock(&pool.mu);
    inflight_remove_locked(j);
    finish_locked(j);
    while (j->followers) {  /* they read the answer in j */
      job *f = j->followers;
      j->followers = f->fnext;
      f->fnext = NULL;
      finish_locked(f);
    }
    if (pool.blocked) pthread_cond_broadcast(&pool.done);
  }
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

/* Starts one more resolver thread; an errno on failure. */
static int start_thread_locked(void) {
  pthread_t t;
  pthread_attr_t at;
  sigset_t all, old;
  int e;
  pin_library();
  pthread_attr_init(&at);
  /* joinable: trim_idle joins the idle ones, others detach themselves */
  /* the thread starts with every signal blocked: Ctrl-C and friends keep
   * going to the script's own thread */
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  e = pthread_create(&t, &at, worker, NULL);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&at);
  if (e == 0) pool.threads++;
  return e;
}

/* Queues j; an errno when there is no thread to run it.  A lookup that
 * asks what one queued or running asks (same name, service and hints)
 * joins it instead: a fleet opening 1000 sessions to one host name makes
 * one getaddrinfo, not 1000, and each waiter still gets the answer of a
 * lookup that started after it asked. */
static int enqueue(job *j) {
  int e = 0;
  pthread_once(&pool_once, pool_setup);
  pthread_mutex_lock(&pool.mu);
  if (j->same != NULL) {
    job *l = inflight_find_locked(j);
    if (l != NULL) {
      j->refs++;  /* held by l's list */
      j->state = J_QUEUED;
      j->lead = l;
      l->refs++;  /* held by j */
      j->fnext = l->followers;
      l->followers = j;
      pool.joined++;
      pthread_mutex_unlock(&pool.mu);
      return 0;
    }
  }
  if (pool.queued >= pool.idle && pool.threads < pool.max)
    e = start_thread_locked();
  if (e != 0 && pool.threads > 0) e = 0;  /* the others will get to it */
  if (e == 0) {
    j->refs++;
    j->state = J_QUEUED;
    j->next = NULL;
    if (pool.tail) pool.tail->next = j;
    else pool.head = j;
    pool.tail = j;
    pool.queued++;
    if (j->same != NULL) {
      job **b = &pool.inflight[j->hash % INFLIGHT];
      j->hnext = *b;
      *b = j;
    }
    if (pool.idle > 0) pthread_cond_signal(&pool.work);  /* busy ones loop */
  }
  pthread_mutex_unlock(&pool.mu);
  return e;
}

/* ---- the bell of a Lua state ------------------------------------------- */

static int bell_gc(lua_State *L) {
  bell **u = (bell **)luaL_checkudata(L, 1, BELL);
  bell *b = *u;
  if (b == NULL) return 0;
  *u = NULL;
  pthread_mutex_lock(&pool.mu);
  b->dead = 1;
  while (b->done) {
    job *j = b->done;
    b->done = j->next;
    job_unref_locked(j);
  }
  bell_unref_locked(b);
  pthread_mutex_unlock(&pool.mu);
  return 0;
}

/* The bell of L's state, or NULL (no bell yet and create is 0, or no
 * descriptor for one: *err says why). */
static bell *get_bell(lua_State *L, int create, int *err) {
  bell **u, *b;
  int fds[2];
  *err = 0;
  luaL_getmetatable(L, BELL);  /* made by nl_open_resolve */
  lua_getfield(L, -1, "bell");
  b = lua_type(L, -1) == LUA_TUSERDATA ? *(bell **)lua_touserdata(L, -1)
                                        : NULL;
  lua_pop(L, 2);
  if (b != NULL || !create) return b;
#ifdef __linux__
  fds[0] = fds[1] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fds[0] < 0) { *err = errno; return NULL; }
#else
  if (pipe(fds) < 0) { *err = errno; return NULL; }
  fcntl(fds[0], F_SETFD, FD_CLOEXEC);
  fcntl(fds[1], F_SETFD, FD_CLOEXEC);
  nl_set_nonblock(fds[0]);
  nl_set_nonblock(fds[1]);
#endif
  b = (bell *)calloc(1, sizeof *b);
  if (b == NULL) {
    close(fds[0]);
    if (fds[1] != fds[0]) close(fds[1]);
    *err = ENOMEM;
    return NULL;
  }
  b->rfd = fds[0];
  b->wfd = fds[1];
  b->refs = 1;
  u = (bell **)nl_class_new(L, BELL, sizeof *u, 0);
  *u = b;
  luaL_getmetatable(L, BELL);
  lua_insert(L, -2);
  lua_setfield(L, -2, "bell");  /* kept in the metatable: lives with L */
  lua_pop(L, 1);
  return b;
}

/* core.resolve_bell() -> fd, waiters: what netlua.run watches while
 * tasks wait for lookups (fd -1: no lookup was ever made in a task). */
static int l_resolve_bell(lua_State *L) {
  int err, n = 0;
  bell *b = get_bell(L, 0, &err);
  if (b) {
    pthread_mutex_lock(&pool.mu);
    n = b->waiters;
    pthread_mutex_unlock(&pool.mu);
  }
  lua_pushinteger(L, b ? b->rfd : -1);
  lua_pushinteger(L, n);
  return 2;
}

/* core.resolve_drain() -> array of keys (light userdata) of the lookups
 * that ended since the last call and whose tasks are parked on them. */
static int l_resolve_drain(lua_State *L) {
  int err, k = 0;
  bell *b = get_bell(L, 0, &err);
  job *list, *j;
  char sink[64];
  lua_newtable(L);
  if (b == NULL) return 1;
  /* empty the descriptor first: a job finishing after this rings again */
  while (read(b->rfd, sink, sizeof sink) > 0) {}
  pthread_mutex_lock(&pool.mu);
  list = b->done;
  b->done = NULL;
  pthread_mutex_unlock(&pool.mu);
  for (j = list; j; j = j->next) {
    lua_pushlightuserdata(L, j);
    lua_rawseti(L, -2, ++k);
  }
  pthread_mutex_lock(&pool.mu);
  while (list) {  /* the keys stay unique: each job is freed only now */
    j = list;
    list = j->next;
    if (j->waiting) {
      j->waiting = 0;
      b->waiters--;
    }
    job_unref_locked(j);
  }
  pthread_mutex_unlock(&pool.mu);
  return 1;
}

/* core.resolve_stats() -> jobs the pool's threads ran, lookups that
 * joined one under way instead (both since the process started) */
static int l_resolve_stats(lua_State *L) {
  unsigned long ran, joined;
  pthread_mutex_lock(&pool.mu);
  ran = pool.ran;
  joined = pool.joined;
  pthread_mutex_unlock(&pool.mu);
  lua_pushinteger(L, (lua_Integer)ran);
  lua_pushinteger(L, (lua_Integer)joined);
  return 2;
}

/* core.resolve_hold(on): while on, the threads take no queued job, so
 * that the specs can see what happens to lookups that wait in the queue
 * (a caller's deadline passing, others joining) whatever the speed of
 * the machine.  Not for scripts. */
static int l_resolve_hold(lua_State *L) {
  int on = lua_toboolean(L, 1);
  pthread_once(&pool_once, pool_setup);
  pthread_mutex_lock(&pool.mu);
  pool.held = on;
  if (!on) {
    /* threads that ended idle meanwhile leave queued jobs behind */
    if (pool.queued > 0 && pool.threads == 0) start_thread_locked();
    pthread_cond_broadcast(&pool.work);
  }
  pthread_mutex_unlock(&pool.mu);
  return 0;
}

/* core.resolver_threads([n]) -> the most resolver threads (before n) */
static int l_resolver_threads(lua_State *L) {
  int old;
  pthread_mutex_lock(&pool.mu);
  old = pool.max;
  pthread_mutex_unlock(&pool.mu);
  if (!lua_isnoneornil(L, 1)) {
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 1 && n <= POOL_LIMIT, 1, "1..1024 threads expected");
    pthread_once(&pool_once, pool_setup);
    pthread_mutex_lock(&pool.mu);
    pool.max = (int)n;
    pthread_cond_broadcast(&pool.work);  /* idle ones over the max end */
    pthread_mutex_unlock(&pool.mu);
  }
  lua_pushinteger(L, old);
  return 1;
}

/* ---- a run of fn on the Lua side --------------------------------------- */

static int offload_gc(lua_State *L) {
  nl_offload *o = (nl_offload *)luaL_checkudata(L, 1, OFFLOAD);
  if (o->j) job_unref(o->j);
  o->j = NULL;
  return 0;
}

/* nl_offload_start; with `same`, a lookup under way for which same(its
 * arg, arg) is true (and whose hash is `hash`) is joined (enqueue). */
static nl_offload *offload_start(lua_State *L, nl_offload_fn fn, void *arg,
                                 void (*release)(void *arg), int here,
                                 lua_CFunction restart, double timeout,
                                 int (*same)(const void *, const void *),
                                 unsigned hash) {
  nl_offload *o;
  job *j;
  int tasked;
  o = (nl_offload *)nl_class_new(L, OFFLOAD, sizeof *o, 0);
  j = (job *)calloc(1, sizeof *j);
  if (j == NULL) {
    if (release) release(arg);
    luaL_error(L, "not enough memory");
  }
  j->refs = 1;
  j->fn = fn;
  j->arg = arg;
  j->release = release;
  j->same = same;
  j->hash = hash;
  o->j = j;  /* from here the userdata frees it */
  nl_coop_begin(L, &o->co, restart, timeout, &o->dl);
  tasked = nl_coop_active(L);
  if (!here && (tasked || o->dl.at >= 0)) {
    int e = 0;
    if (tasked) {
      bell *b = get_bell(L, 1, &e);
      if (b) {
        pthread_mutex_lock(&pool.mu);
        b->refs++;
        j->b = b;
        pthread_mutex_unlock(&pool.mu);
      }
    }
    if (e == 0 && (e = enqueue(j)) == 0) return o;
    if (e == EMFILE || e == ENFILE || e == ENOMEM) {
      /* out of descriptors or memory: the plain call would fail too, and
       * blame something else */
      o->err = e;
      o->done = 1;
      return o;
    }
  }
  /* blocking, or no thread to be had: the plain call */
  fn(arg);
  o->done = 1;
  return o;
}

nl_offload *nl_offload_start(lua_State *L, nl_offload_fn fn, void *arg,
                             void (*release)(void *arg), int here,
                             lua_CFunction restart, double timeout) {
  return offload_start(L, fn, arg, release, here, restart, timeout, NULL, 0);
}

nl_offload *nl_offload_resumed(lua_State *L) {
  nl_offload *o = (nl_offload *)nl_coop_peek(L, OFFLOAD);
  nl_deadline d;
  if (o == NULL || !nl_coop_resumes(L, &o->co)) return NULL;
  nl_coop_begin(L, &o->co, NULL, 0, &d);  /* puts the run back on top */
  return o;
}

int nl_offload_pend(lua_State *L, nl_offload *o) {
  return nl_coop_pend(L, &o->co);
}

nl_offload *nl_offload_top(lua_State *L) {
  return (nl_offload *)luaL_testudata(L, -1, OFFLOAD);
}

int nl_offload_fd(nl_offload *o) {
  (void)o;
  return -1;  /* a parked lookup waits on a key; closing wakes it by that */
}

/* The caller gives up on j: if no thread has taken it yet, none will. */
static void abandon(job *j) {
  pthread_mutex_lock(&pool.mu);
  j->abandoned = 1;
  pthread_mutex_unlock(&pool.mu);
}

void nl_offload_abandon(void *key) {
  job *j = (job *)key;
  pthread_mutex_lock(&pool.mu);
  j->abandoned = 1;
  if (j->waiting) {  /* woken by the close, not the bell: not a waiter */
    j->waiting = 0;
    j->b->waiters--;
  }
  pthread_mutex_unlock(&pool.mu);
}

/* Waits outside any task: on the pool's condition, to the deadline. */
static int wait_blocking(nl_offload *o) {
  job *j = o->j;
  int r = NL_OK;
  pthread_mutex_lock(&pool.mu);
  pool.blocked++;
  while (j->state != J_DONE) {
    if (o->dl.at < 0) {
      pthread_cond_wait(&pool.done, &pool.mu);
    } else {
      struct timespec ts;
      double left = nl_deadline_left(&o->dl);
      if (left <= 0) { r = NL_TIMEOUT; break; }
      abs_time(&ts, left);
      pthread_cond_timedwait(&pool.done, &pool.mu, &ts);
    }
  }
  pool.blocked--;
  pthread_mutex_unlock(&pool.mu);
  return r;
}

int nl_offload_wait(nl_offload *o, nl_coop *owner, nl_deadline *d) {
  nl_coop *c = owner ? owner : &o->co;
  job *j = o->j;
  *d = o->dl;
  if (o->err) {
    nl_coop_end(c);
    return o->err;
  }
  while (!o->done) {
    int w;
    pthread_mutex_lock(&pool.mu);
    if (j->waiting) {  /* back from a park: the bell or the timer */
      j->waiting = 0;
      j->b->waiters--;
    }
    /* no time at all (timeout 0) is a timeout even when a thread was
     * quick: as on the first look of any wait */
    if (j->state == J_DONE && (o->waited || !nl_deadline_passed(&o->dl))) {
      pthread_mutex_unlock(&pool.mu);
      o->done = 1;
      break;
    }
    if (nl_deadline_passed(&o->dl)) {
      j->abandoned = 1;
      pthread_mutex_unlock(&pool.mu);
      nl_coop_end(c);
      return NL_TIMEOUT;
    }
    o->waited = 1;
    if (j->b == NULL || !nl_coop_yields(c)) {
      pthread_mutex_unlock(&pool.mu);
      w = wait_blocking(o);
      if (w != NL_OK) {
        abandon(j);
        nl_coop_end(c);
        return w;
      }
      o->done = 1;
      break;
    }
    j->waiting = 1;
    j->b->waiters++;
    pthread_mutex_unlock(&pool.mu);
    /* pends; the caller's restart comes back here */
    w = nl_coop_park(c, j, &o->dl);
    if (w == NL_PENDING) return w;
    if (w != NL_OK) {
      abandon(j);
      nl_coop_end(c);
      return w;
    }
  }
  nl_coop_end(c);
  return NL_OK;
}

void *nl_offload_arg(nl_offload *o) {
  if (o->j == NULL) return NULL;
  /* a follower's answer is its lead's, read-only (the lead is kept until
   * the follower goes) */
  return o->j->lead ? o->j->lead->arg : o->j->arg;
}

/* Ends the threads idle now and waits (200 ms at most) until they have:
 * run when a Lua state closes, so that a program that ends does not
 * leave resolver threads holding the C library's resolver state (under
 * valgrind, glibc's freeres then reports it lost).  Busy threads go on;
 * any thread is made again when a lookup needs it. */
static void trim_idle(void) {
  pthread_t t[POOL_LIMIT];
  int want, n, i;
  struct timespec ts;
  pthread_mutex_lock(&pool.mu);
  want = pool.idle;
  if (want == 0) {
    pthread_mutex_unlock(&pool.mu);
    return;
  }
  pool.trim++;
  pool.blocked++;  /* so the threads' broadcasts of done reach us */
  pthread_cond_broadcast(&pool.work);
  abs_time(&ts, 0.2);
  while (pool.nended < want &&
         pthread_cond_timedwait(&pool.done, &pool.mu, &ts) == 0) {}
  pool.blocked--;
  n = pool.nended;
  memcpy(t, pool.ended, (size_t)n * sizeof t[0]);
  pool.nended = 0;
  pthread_mutex_unlock(&pool.mu);
  for (i = 0; i < n; i++) pthread_join(t[i], NULL);
}

static int anchor_gc(lua_State *L) {
  (void)L;
  pthread_once(&pool_once, pool_setup);  /* trim_idle waits on its clock */
  trim_idle();  /* nothing to do, at once, when no thread is idle */
  return 0;
}

void nl_open_resolve(lua_State *L) {
  static const luaL_Reg f[] = {
    {"resolve_bell", l_resolve_bell}, {"resolve_drain", l_resolve_drain},
    {"resolver_threads", l_resolver_threads},
    {"resolve_stats", l_resolve_stats}, {"resolve_hold", l_resolve_hold},
    {NULL, NULL}};
  static const nl_class offload_class = {
    OFFLOAD, NULL, NULL, offload_gc, NULL, NULL, 0};
  static const nl_class bell_class = {
    BELL, NULL, NULL, bell_gc, NULL, NULL, 0};
  static const nl_class anchor_class = {
    ANCHOR, NULL, NULL, anchor_gc, NULL, NULL, 0};
  nl_class_make(L, &offload_class, 0);
  nl_class_make(L, &bell_class, 0);
  luaL_setfuncs(L, f, 0);
  /* collected when the state closes: then idle threads end (trim_idle) */
  nl_class_make(L, &anchor_class, 0);
  luaL_getmetatable(L, ANCHOR);
  nl_class_new(L, ANCHOR, 1, 0);
  lua_setfield(L, -2, "anchor");  /* kept by its own metatable */
  lua_pop(L, 1);
}

/* ---- getaddrinfo ------------------------------------------------------ */

typedef struct gai_job {
  char *host, *serv;
  struct addrinfo hints;
  struct addrinfo *res;
  int gerr, err;
} gai_job;

/* True when this process cannot open one more descriptor now. */
static int out_of_descriptors(int *why) {
  int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    close(fd);
    return 0;
  }
  *why = errno;
  return errno == EMFILE || errno == ENFILE;
}

static void gai_run(void *arg) {
  gai_job *g = (gai_job *)arg;
  int why;
  g->gerr = getaddrinfo(g->host, g->serv, &g->hints, &g->res);
  g->err = errno;  /* EAI_SYSTEM's reason: errno is the thread's own */
  if (g->gerr == 0) return;
  g->res = NULL;
  /* glibc that cannot open /etc/services or /etc/hosts blames the name
   * ("Servname not supported", "Name or service not known"): say what it
   * is instead */
  if (g->gerr != EAI_SYSTEM && out_of_descriptors(&why)) {
    g->gerr = EAI_SYSTEM;
    g->err = why;
  }
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

static int same_str(const char *a, const char *b) {
  return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Two lookups that must get the same answer: same name, service and
 * hints (AI_CANONNAME included, in the flags). */
static int gai_same(const void *x, const void *y) {
  const gai_job *a = (const gai_job *)x, *b = (const gai_job *)y;
  return a->hints.ai_flags == b->hints.ai_flags &&
         a->hints.ai_family == b->hints.ai_family &&
         a->hints.ai_socktype == b->hints.ai_socktype &&
         a->hints.ai_protocol == b->hints.ai_protocol &&
         same_str(a->host, b->host) && same_str(a->serv, b->serv);
}

static unsigned hash_str(unsigned h, const char *s) {
  if (s == NULL) return h * 31u + 7u;
  for (; *s; s++) h = h * 31u + (unsigned char)*s;
  return h * 31u;
}

static unsigned gai_hash(const gai_job *g) {
  unsigned h = hash_str(hash_str(2166136261u, g->host), g->serv);
  h = h * 31u + (unsigned)g->hints.ai_flags;
  h = h * 31u + (unsigned)g->hints.ai_family;
  h = h * 31u + (unsigned)g->hints.ai_socktype;
  return h * 31u + (unsigned)g->hints.ai_protocol;
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
    return NULL;  /* not reached: luaL_error raises */
  }
  return offload_start(L, gai_run, g, gai_release, numeric_host(host, hints),
                       restart, timeout, gai_same, gai_hash(g));
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

void nl_ai_free(struct addrinfo *ai) {
  while (ai != NULL) {
    struct addrinfo *next = ai->ai_next;
    free(ai);  /* its address and canonical name are in the same block */
    ai = next;
  }
}

struct addrinfo *nl_resolve_take(lua_State *L, nl_offload *o) {
  gai_job *g = (gai_job *)nl_offload_arg(o);
  struct addrinfo *head = NULL, **tail = &head;
  const struct addrinfo *ai;
  /* a copy: the answer may be shared with lookups that joined it */
  for (ai = g->res; ai != NULL; ai = ai->ai_next) {
    size_t cn = ai->ai_canonname ? strlen(ai->ai_canonname) + 1 : 0;
    struct addrinfo *c =
        (struct addrinfo *)malloc(sizeof *c + ai->ai_addrlen + cn);
    if (c == NULL) {
      nl_ai_free(head);
      luaL_error(L, "not enough memory");
    }
    *c = *ai;
    c->ai_next = NULL;
    c->ai_addr = (struct sockaddr *)(void *)(c + 1);
    memcpy(c->ai_addr, ai->ai_addr, ai->ai_addrlen);
    c->ai_canonname = NULL;
    if (cn) {
      c->ai_canonname = (char *)c->ai_addr + ai->ai_addrlen;
      memcpy(c->ai_canonname, ai->ai_canonname, cn);
    }
    *tail = c;
    tail = &c->ai_next;
  }
  return head;
}
