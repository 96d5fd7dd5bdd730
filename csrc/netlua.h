/*
 * netlua.h - what crosses file boundaries inside netlua.core.
 *
 * Kinds of object and their metatables (class.c), deadlines, readiness
 * waits and the timeout rule (timeout.c), the receive buffer and the
 * line/size/all reader on top of it (buffer.c), address conversion
 * (addr.c), error results (error.c) and the socket object that TCP, UDP
 * and the Telnet session are kinds of (sock.c).  Module openers (one per
 * concern) are listed at the end; core.c calls them all.
 */
#ifndef NETLUA_H
#define NETLUA_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <netdb.h>

#include "compat.h"

/* The module is built with -fvisibility=hidden, so calls between its
 * files are direct instead of through the PLT; luaopen_netlua_core is
 * the one symbol Lua looks up. */
#if defined(__GNUC__) || defined(__clang__)
#define NL_EXPORT __attribute__((visibility("default")))
#else
#define NL_EXPORT
#endif

/* ---- kinds of object (class.c) ----------------------------------------- */
/* What makes a kind of object: its metatable's name (also __name), its
 * methods (the __index table; methods and more are both added, so a kind
 * can put its own beside shared ones) and metamethods.  NULL: none. */
typedef struct nl_class {
  const char *name;
  const luaL_Reg *methods, *more;
  lua_CFunction gc, close, tostring;  /* __gc, __close, __tostring */
  int waits;               /* its methods may wait: netlua.run gives them
                            * drivers (core.KINDS, netlua/drive.lua) */
} nl_class;

/* Makes the metatable of kind c.  Every function (methods and
 * metamethods) closes over the metatable (upvalue 1), then the nup values
 * on top (upvalues 2..nup+1), which are popped. */
void nl_class_make(lua_State *L, const nl_class *c, int nup);
/* The object a method of kind name was called on (stack index 1), as
 * luaL_checkudata(L, 1, name) but quicker: from a function nl_class_make
 * made for that kind, the metatable is its upvalue 1. */
void *nl_class_self(lua_State *L, const char *name);
/* A new zeroed userdata of size bytes with nuv user values, of kind name. */
void *nl_class_new(lua_State *L, const char *name, size_t size, int nuv);
/* Pushes the method table of kind name, to add methods to it. */
void nl_class_methods(lua_State *L, const char *name);

/* ---- result codes used inside the C layer ---------------------------- */
#define NL_OK       0
#define NL_TIMEOUT  (-1)   /* deadline passed */
#define NL_CLOSED   (-2)   /* peer closed: EOF */
#define NL_LIMIT    (-3)   /* a buffer limit was reached */
#define NL_ABORTED  (-4)   /* another task closed the object while we waited */
/* any positive value is an errno */

/* ---- deadlines (timeout.c) -------------------------------------------- */
typedef struct nl_deadline {
  double at;               /* monotonic seconds; < 0 means no deadline */
} nl_deadline;

double nl_monotime(void);
void nl_deadline_start(nl_deadline *d, double timeout);  /* < 0: none */
int nl_deadline_ms(const nl_deadline *d);  /* -1 = wait forever */
int nl_deadline_passed(const nl_deadline *d);
double nl_deadline_left(const nl_deadline *d);  /* -1 = forever */
/* The one timeout rule (also core.timeout for the Lua modules): nil or
 * none -> dflt, negative -> block (-1); NaN and what is not a number
 * raise.  For an argument ("bad argument #2 to 'settimeout' (NaN)") and
 * for the `timeout` field of the options table at opts, which may be nil
 * ("bad option 'timeout' (NaN)"). */
double nl_opttimeout(lua_State *L, int arg, double dflt);
double nl_opttimeout_field(lua_State *L, int opts, double dflt);

#define NL_WAIT_READ  1
#define NL_WAIT_WRITE 2
/* The single place netlua waits for a descriptor: NL_OK, NL_TIMEOUT or an
 * errno.  A scheduler can later replace what happens here. */
int nl_wait(int fd, int events, const nl_deadline *d);
/* Prepares one blocking recv() on a blocking socket to return by the
 * deadline (SO_RCVTIMEO), instead of a poll() before every recv().
 * *armed caches the value set (0: none, the socket's default); a client
 * that keeps one timeout pays no setsockopt() per call.  NL_OK: recv()
 * may block, and EAGAIN from it means "look at the deadline again";
 * NL_TIMEOUT: the deadline has passed; else an errno. */
int nl_rcvtimeo(int fd, double *armed, const nl_deadline *d);

/* ---- cooperative waiting (sched.c) ------------------------------------ */
/* A blocking operation is a step in C that finishes or says what it
 * waits for; it never yields from C.  Outside a driven coroutine it just
 * blocks (nl_wait).  In a coroutine that netlua.run drives, a wait comes
 * back up as NL_PENDING to the method, which returns nl_coop_pend(): the
 * wait (WAIT, fd, events, until, key, restart).  Its Lua driver
 * (netlua/drive.lua) waits through the loop, then calls restart (or the
 * method again) with the same arguments; the operation picks up from the
 * state kept here and in its object. */
#define NL_PENDING  (-5)   /* the caller must return nl_coop_pend() */

typedef struct nl_coop {
  lua_State *L;            /* thread running the operation, or NULL */
  lua_CFunction restart;   /* what the driver calls after the wait; NULL:
                            * the method itself */
  nl_deadline dl;          /* the operation's deadline, kept across waits */
  size_t progress;         /* work already done (bytes written) */
  int base;                /* stack slot where the operation's values end */
  int closed;              /* the object is closed (nl_coop_closing) */
  int parked;              /* returned NL_PENDING; its restart not run yet */
  int wfd, wev;            /* what it waits for: a descriptor and events, */
  void *key;               /* or a key (nl_coop_park), */
  double wat;              /* until then */
} nl_coop;

/* Starts (returns 0) or resumes (returns 1: the stack is back as it was
 * at the wait) an operation; *d gets the operation's deadline, computed
 * once from timeout when it starts. */
int nl_coop_begin(lua_State *L, nl_coop *c, lua_CFunction restart,
                  double timeout, nl_deadline *d);
/* The last value L's waiting operation kept, when it is a userdata of
 * type tname (the object it made, a lookup), else NULL: how a restart
 * finds what it had made before nl_coop_begin puts it back. */
void *nl_coop_peek(lua_State *L, const char *tname);
/* Whether this call is the driver's restart of c's operation (before
 * nl_coop_begin takes it). */
int nl_coop_resumes(lua_State *L, const nl_coop *c);
void nl_coop_end(nl_coop *c);
/* Like nl_wait(), but in a driven coroutine it records the wait and
 * returns NL_PENDING instead of blocking the whole process. */
int nl_coop_wait(nl_coop *c, int fd, int events, const nl_deadline *d);
/* Like nl_coop_wait, but on no descriptor: the task is woken when its
 * key is named by a drain of the resolver's bell (resolve.c), when the
 * object closes (nl_coop_closing) or at the deadline.  Only for a c
 * whose nl_coop_yields() is true. */
int nl_coop_park(nl_coop *c, void *key, const nl_deadline *d);
/* The method's answer to NL_PENDING: keeps the operation's whole stack
 * for its restart and returns the wait to the driver. */
int nl_coop_pend(lua_State *L, nl_coop *c);
/* True when L is a coroutine driven by netlua.run that may wait here. */
int nl_coop_active(lua_State *L);
/* Whether nl_coop_wait on c would pend (else it blocks the thread in
 * nl_wait). */
int nl_coop_yields(const nl_coop *c);
/* Where an operation may restart (as after nl_coop_wait): in a driven
 * coroutine, once it has run for a time slice without waiting (its data
 * always there), NL_PENDING on nothing, so that the other tasks get a
 * turn before its restart.  Otherwise NL_OK at once. */
int nl_coop_share(nl_coop *c);
/* Whether nl_coop_share would pend now (for code that must first get
 * out of a library's callback, e.g. pause a libcurl transfer). */
int nl_coop_due(const nl_coop *c);
/* The object that owns c is about to close fd (call it before close()):
 * tasks parked on fd run again and the poller forgets fd, so the number
 * can be reused safely.  Not from __gc: a parked task's driver holds its
 * object, so nothing can be parked on an object being collected. */
void nl_coop_closing(lua_State *L, nl_coop *c, int fd);
/* Every task parked on fd runs again and retries its operation, which
 * waits again if it still has to: for objects that share one descriptor
 * (the channels of an SSH connection), when one task's read took in
 * data that another task waits for.  L: the running thread. */
void nl_coop_wake_fd(lua_State *L, int fd);
/* First thing a method that may restart after a wait does: true when it
 * is restarted after another task closed its object; the method then
 * returns its "closed" result (NL_ABORTED) instead of raising "attempt to
 * use a closed ...", which stays the answer to a fresh call. */
int nl_coop_closed(lua_State *L, nl_coop *c);

/* ---- blocking lookups with deadlines (resolve.c) ----------------------- */
/* A call in progress: a userdata on the Lua stack. */
typedef struct nl_offload nl_offload;
typedef void (*nl_offload_fn)(void *arg);
struct addrinfo;
/* Pushes a run of fn(arg), a blocking libc call (a name lookup).  It runs
 * in the resolver pool inside netlua.run or when timeout is a deadline
 * (>= 0), else (or with `here`) right away.  arg is malloc'd by the
 * caller and freed by release(arg) once neither side needs it (a
 * timed-out caller leaves the thread to finish alone).  restart is what
 * the driver calls after a wait (NULL: the calling method), with the same
 * arguments; nl_offload_resumed then puts the run back on top. */
nl_offload *nl_offload_start(lua_State *L, nl_offload_fn fn, void *arg,
                             void (*release)(void *arg), int here,
                             lua_CFunction restart, double timeout);
/* The run the caller made before its wait, put back on top of the stack,
 * when the caller is being restarted after waiting on the run's own
 * nl_coop; else NULL. */
nl_offload *nl_offload_resumed(lua_State *L);
/* The caller's answer when nl_offload_wait without an owner pended. */
int nl_offload_pend(lua_State *L, nl_offload *o);
/* The run on top of the stack, if any (for callers waiting as `owner`). */
nl_offload *nl_offload_top(lua_State *L);
/* Waits for fn to have run: NL_OK, NL_TIMEOUT, NL_PENDING (in a task) or
 * an errno.  *d gets the run's deadline, for the work that follows.  With
 * an owner, the wait parks on the owning object's nl_coop (the caller
 * returns nl_coop_pend on it), so closing that object wakes it; else on
 * the run's own (the caller returns nl_offload_pend). */
int nl_offload_wait(nl_offload *o, nl_coop *owner, nl_deadline *d);
/* The descriptor a run's wait is on: always -1 now (a run parks on a
 * key, and closing the owner wakes it through nl_coop_closing). */
int nl_offload_fd(nl_offload *o);
/* The run parked on key (nl_coop_park) loses its caller (the owner
 * closes): if no thread has taken it yet, none will. */
void nl_offload_abandon(void *key);
/* arg, to read fn's results after NL_OK (alive while the run is). */
void *nl_offload_arg(nl_offload *o);

/* getaddrinfo on top: numeric hosts never go to a thread, and a lookup
 * asking what one under way asks (name, service, hints) joins it. */
nl_offload *nl_resolve_start(lua_State *L, const char *host,
                             const char *serv, const struct addrinfo *hints,
                             lua_CFunction restart, double timeout);
/* NL_OK: *gerr is getaddrinfo's result and *res its list, still owned by
 * the run (freed with it, and maybe shared with lookups that joined it:
 * read only); else NL_PENDING, NL_TIMEOUT or an errno. */
int nl_resolve_wait(nl_offload *o, nl_coop *owner, struct addrinfo **res,
                    int *gerr, nl_deadline *d);
/* A copy of a finished lookup's list, the caller's to free with
 * nl_ai_free (not freeaddrinfo); raises on a memory error. */
struct addrinfo *nl_resolve_take(lua_State *L, nl_offload *o);
void nl_ai_free(struct addrinfo *ai);
#define nl_resolve_resumed nl_offload_resumed

/* ---- errors (error.c) ------------------------------------------------- */
/* Short stable code for an NL_* result or errno ("timeout", "refused"...). */
const char *nl_code(int err);
/* Message text for an NL_* result or errno. */
const char *nl_strerror(int err);
/* Pushes nil, "<what>: <reason>", code; returns 3. */
int nl_pushfail(lua_State *L, int err, const char *fmt, ...);
/* Pushes nil, msg, code with a caller-made code; returns 3. */
int nl_pushfailcode(lua_State *L, const char *code, const char *fmt, ...);
/* LuaSocket-named methods (accept, bind, connect, listen, receive,
 * receivefrom, send, sendto, setpeername, setsockname) fail with
 * nil, err, msg, code: err is LuaSocket's own string ("timeout",
 * "closed", "connection refused", ...), msg and code netlua's. */
const char *nl_lserror(int err);          /* for an NL_* result or errno */
const char *nl_lsgaierror(int gerr);      /* for a getaddrinfo error */
/* Pushes nil, LuaSocket's err, "<what>: <reason>", code; returns 4. */
int nl_pushlsfail(lua_State *L, int err, const char *fmt, ...);
/* After nil, msg, code were pushed: inserts err before msg; returns 4. */
int nl_lsresult(lua_State *L, const char *err);

/* ---- buffer and stream reader (buffer.c) ------------------------------ */
typedef struct nl_buf {
  char *data;
  size_t start;            /* first unread byte */
  size_t len;              /* unread bytes */
  size_t cap;
} nl_buf;

void nl_buf_init(nl_buf *b);
void nl_buf_free(nl_buf *b);
/* Room for at least n more bytes at the end; NULL on out of memory. */
char *nl_buf_reserve(nl_buf *b, size_t n);
void nl_buf_commit(nl_buf *b, size_t n);
/* Drops n bytes from the front; a buffer that grew large is freed once
 * empty, so pointers into it do not survive a consume. */
void nl_buf_consume(nl_buf *b, size_t n);
int nl_buf_append(nl_buf *b, const char *p, size_t n);  /* NL_OK / ENOMEM */
#define nl_buf_head(b) ((b)->data + (b)->start)

/* A byte stream with a read buffer in front of some source. */
typedef struct nl_stream nl_stream;
struct nl_stream {
  nl_buf in;
  size_t limit;            /* max buffered bytes; 0 = unbounded */
  /* Adds at least one byte to `in`, or returns NL_TIMEOUT/NL_CLOSED/errno. */
  int (*fill)(nl_stream *s, const nl_deadline *d);
};

/* Each returns NL_OK with *n bytes at nl_buf_head(&s->in) ready to be
 * pushed and then consumed with nl_buf_consume(&s->in, *used). */
int nl_stream_line(nl_stream *s, const nl_deadline *d, size_t *n,
                   size_t *used, int keepnl);
int nl_stream_count(nl_stream *s, const nl_deadline *d, size_t want,
                    size_t *n);
int nl_stream_all(nl_stream *s, const nl_deadline *d, size_t *n);
/* Reads the io-library formats at stack slots [first, last] and pushes one
 * result per format above `last`, io style; results already above `last`
 * (kept across a wait) count as done.  On failure the stack is cut to
 * `last` and nil, msg, code pushed.  Returns the number of values above
 * `last`, or -1 for NL_PENDING (the results so far left above `last`). */
int nl_stream_read(lua_State *L, nl_stream *s, const nl_deadline *d,
                   int first, int last, const char *who);

/* ---- addresses (addr.c) ----------------------------------------------- */
typedef struct nl_addr {
  struct sockaddr_storage ss;
  socklen_t len;
} nl_addr;

const char *nl_family_name(int family);
/* Converts a numeric IP string and port; 0 on success, else EAI_* code. */
int nl_addr_from(nl_addr *a, const char *ip, int port, int family);
/* The port of an AF_INET/AF_INET6 address (0 for any other family). */
int nl_addr_port(const struct sockaddr *sa);
/* Pushes ip string and port; returns 2. */
int nl_addr_push(lua_State *L, const struct sockaddr *sa);
/* Checks a port argument in 0..65535 (raises otherwise). */
int nl_checkport(lua_State *L, int arg);
int nl_optport(lua_State *L, int arg, int dflt);
/* Formats "ip:port" or "[ip]:port" into out. */
void nl_addr_format(const struct sockaddr *sa, char *out, size_t outlen);

/* ---- the socket object (sock.c) --------------------------------------- */
typedef struct nl_sock {
  int fd;                  /* -1 once closed */
  int family;
  int type;                /* SOCK_STREAM / SOCK_DGRAM */
  double timeout;          /* seconds; < 0 blocks */
  nl_stream st;            /* read side (stream sockets) */
  nl_coop co;              /* the read-side operation in progress */
  nl_coop wco;             /* the write side: one reader and one writer
                            * task can wait on a socket at once */
  struct addrinfo *ai_list, *ai_cur;  /* a connect in progress */
  int blocking;            /* fd is blocking (connected streams) */
  double rcvtimeo;         /* SO_RCVTIMEO set on it (nl_rcvtimeo) */
  /* LuaSocket's getstats/setstats: bytes read from and written to the
   * descriptor, and the time the counting started (monotonic) */
  unsigned long long nrecv, nsent;
  double birth;
  /* an unconnected TCP object (tcp_master.c): bind() fixed its family;
   * anyfamily: made by tcp.tcp(), its family follows the address used */
  int bound, anyfamily;
  /* fd belongs to another object (an SSH shell waits on its
   * connection's socket): closing this object never closes fd */
  int borrowed;
} nl_sock;

/* A kind of socket object: what it adds to the nl_sock it starts with.
 * sock.c gives every kind close, fileno, getfd, settimeout, gettimeout,
 * __close, __gc and __tostring; a kind's own methods come beside them. */
typedef struct nl_sock_kind {
  const char *name;        /* its metatable: "netlua.tcp" */
  const char *noun;        /* "attempt to use a closed <noun>" */
  size_t size;             /* its object: an nl_sock first, then its own */
  int nuv;                 /* user values of its object */
  int addresses;           /* also getsockname, getpeername, getfamily */
  const luaL_Reg *methods; /* its own methods */
  lua_CFunction close;     /* its own close() and __close (NULL: the
                            * shared one), which ends in nl_sock_close */
  /* frees what the kind keeps beside the socket (NULL: nothing): close
   * and __gc call it once the descriptor is closed, maybe twice */
  void (*release)(nl_sock *s);
  /* what __tostring shows in parentheses while it is open (NULL: none) */
  const char *(*label)(const nl_sock *s);
} nl_sock_kind;

/* Makes the metatable of kind k (nl_class_make). */
void nl_sock_class(lua_State *L, const nl_sock_kind *k);
/* Makes a new socket object of kind k; fd must be valid or -1.  The
 * descriptor is made non-blocking and close-on-exec. */
nl_sock *nl_sock_new(lua_State *L, const nl_sock_kind *k, int fd,
                     int family, int type);
/* Hands from's descriptor, timeout and buffered bytes to to (a new
 * object of another kind); from is left closed. */
void nl_sock_move(nl_sock *to, nl_sock *from);
/* The shared close() of a kind's methods, for a kind whose own close
 * checks more first and then calls it (as its method: same upvalues). */
int nl_sock_close(lua_State *L);
/* Lets a connected stream's reads outside a task wait in recv() itself
 * (nl_recv_wait makes the descriptor blocking at the first one); its
 * other calls pass MSG_DONTWAIT. */
void nl_sock_blocking(nl_sock *s);
/* One recv() of up to cap bytes into p for a read that may wait until d.
 * With armed (the descriptor is blocking), outside a task the recv()
 * blocks under SO_RCVTIMEO, no poll() first: one system call less per
 * request/response round trip.  Without armed, or inside a task, the wait
 * is nl_coop_wait's; fresh says data cannot be there yet (we just wrote),
 * so a task waits before it looks.  NL_OK with *got > 0, NL_CLOSED at
 * EOF, NL_TIMEOUT, NL_ABORTED or an errno. */
int nl_recv_wait(int fd, nl_coop *c, double *armed, const nl_deadline *d,
                 int fresh, char *p, size_t cap, size_t *got);
/* Fetches an open socket of metatable tname; raises on a closed one. */
nl_sock *nl_sock_check(lua_State *L, int arg, const char *tname);
/* Raises on a closed socket, else returns s. */
nl_sock *nl_sock_open(lua_State *L, nl_sock *s);
/* nl_sock_check for a method that may restart after a wait: NULL, with
 * nil, "<who>: closed", "closed" pushed, when another task closed the
 * socket while the method waited (nl_coop_closed). */
nl_sock *nl_sock_op(lua_State *L, int arg, const char *tname,
                    const char *who);
/* The same for a LuaSocket-named method: nil, "closed", "<who>: closed",
 * "closed" pushed (4 values). */
nl_sock *nl_sock_lsop(lua_State *L, int arg, const char *tname,
                      const char *who);
/* Fetches without checking that it is open. */
nl_sock *nl_sock_raw(lua_State *L, int arg, const char *tname);
int nl_sock_closefd(nl_sock *s);
int nl_set_nonblock(int fd);
/* Finishes a non-blocking connect on fd: looks at once, then waits for it
 * (yielding inside netlua.run through c; blocking to d when c is NULL)
 * and reads its outcome: NL_OK, NL_TIMEOUT or an errno. */
int nl_connect_wait(int fd, nl_coop *c, const nl_deadline *d);
/* Sends all n bytes, adding each chunk sent to s->co.progress. */
int nl_sock_send_all(nl_sock *s, const char *p, size_t n,
                     const nl_deadline *d);

/* ---- TCP pieces shared by tcp.c and tcp_master.c ---------------------- */
#define NL_TCP "netlua.tcp"
#define NL_TCPSERVER "netlua.tcpserver"
#define NL_TCPMASTER "netlua.tcpmaster"
/* host argument: a string; with passive, "*" or nil is NULL (any). */
const char *nl_tcp_host(lua_State *L, int arg, int passive);
/* port argument: a number 0..65535 or a service name, as text in buf. */
void nl_tcp_serv(lua_State *L, int arg, char *buf, size_t n);
/* Any of the three TCP objects, open; raises otherwise. */
nl_sock *nl_tcp_check(lua_State *L, int arg);
/* sock:setoption(name, value) / sock:getoption(name) of any TCP object. */
int nl_tcp_setoption(lua_State *L);
int nl_tcp_getoption(lua_State *L);
/* Methods every TCP object has: setfd, getstats, setstats. */
void nl_tcp_common(lua_State *L, const char *tname);

/* ---- a terminal session over another transport (telnet.c) ------------ */
/* The Telnet session's reads, expect, write, set_window, session log and
 * (in Lua) device helpers, over a byte stream that is not a Telnet
 * socket: an SSH channel with a pty (ssh_chan.c).  No Telnet decoding;
 * the transport moves the bytes and does its own waits. */
#define NL_SSH_SHELL "netlua.ssh_shell"
typedef struct nl_term_io {
  /* One chunk of up to cap bytes into p, waiting as c until d (nowait:
   * one look, NL_TIMEOUT when nothing is there).  NL_OK with *got > 0,
   * NL_CLOSED at the end, NL_TIMEOUT, NL_PENDING or an errno. */
  int (*recv)(void *io, nl_coop *c, const nl_deadline *d, int nowait,
              char *p, size_t cap, size_t *got);
  /* Sends all n bytes, waiting as c until d; *sent counts what went out
   * (also on NL_PENDING: the restart sends the rest). */
  int (*send)(void *io, nl_coop *c, const nl_deadline *d, const char *p,
              size_t n, size_t *sent);
  int (*resize)(void *io, int cols, int rows);  /* NL_OK or an errno */
  /* The object closes (or is collected: L is NULL then): end the
   * stream; tasks waiting on it are woken by the session itself. */
  void (*close)(lua_State *L, void *io);
  /* Why the last call failed with EIO, for the message. */
  const char *(*error)(void *io);
} nl_term_io;

/* Makes a session object of kind NL_SSH_SHELL over io, whose waits are
 * on fd (borrowed: never closed here).  The value at `owner` is kept by
 * the session (its user value 3) for as long as it lives: what io
 * points into.  opts (a table or 0): max_buffer, max_match, timeout,
 * debug as for a Telnet session; name is "user@host:port". */
void nl_term_new(lua_State *L, const nl_term_io *io, void *ctx, int fd,
                 int owner, int opts, double timeout, const char *name);

/* ---- what a Lua pattern can match (pattern.c) ------------------------ */
/* True when every match of pattern p (n bytes) ends the subject (a "$"
 * anchor) and holds no CR or LF, so it lies after the subject's last
 * line end; false when that cannot be shown from the text. */
int nl_pattern_line_tail(const char *p, size_t n);

/* ---- module openers: each adds its functions to the table on top ------ */
void nl_open_class(lua_State *L);
void nl_open_timeout(lua_State *L);
void nl_open_sched(lua_State *L);
void nl_open_resolve(lua_State *L);
void nl_open_lookup(lua_State *L);
void nl_open_tcp(lua_State *L);
void nl_open_tcp_master(lua_State *L);
void nl_open_udp(lua_State *L);
void nl_open_telnet(lua_State *L);
void nl_open_ssh(lua_State *L);
void nl_open_ftp(lua_State *L);
void nl_open_ftp_list(lua_State *L);
void nl_open_pattern(lua_State *L);
void nl_open_fs(lua_State *L);
void nl_open_sftp_codec(lua_State *L);

#endif
