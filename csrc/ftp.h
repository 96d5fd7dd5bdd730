/*
 * ftp.h - what the FTP session's files share: the session, transfer and
 * operation records, and the functions one file calls in another.
 *
 * The session is split as curl splits its FTP code: ftp_reply.c frames
 * replies (no I/O); ftp_drive.c runs one operation on the libcurl easy
 * handle (options, the debug stream paired with the commands sent, the
 * multi/epoll waits, errors); ftp_xfer.c moves data (sources, sinks,
 * Lua callbacks, size checks); ftp_connect.c connects, reads the
 * greeting and logs in; ftp_tlsrec.c counts the TLS records of the
 * control connection (a reply read before its command); ftp.c holds the
 * session object and its other methods.
 */
#ifndef NL_FTP_H
#define NL_FTP_H

#include <stdio.h>
#include <curl/curl.h>

#include "netlua.h"
#include "ftp_reply.h"

#define FTP "netlua.ftp"
#define NQUOTE 4
#define BIGBUF (512 * 1024)     /* CURLOPT_BUFFERSIZE for downloads */
#define NWATCH 4

enum { TLS_NONE, TLS_EXPLICIT, TLS_IMPLICIT };

/* A C sink: a userdata of kind FTP_CSINK whose block starts with this
 * struct (ftp_entries.c makes the one kind there is, list()'s parser).
 * A download hands it each piece of data as libcurl read it, by calling
 * write under lua_pcall with the sink, a light userdata pointer and a
 * length: no Lua string is made of the data, so a big listing leaves no
 * garbage behind it. */
#define FTP_CSINK "netlua.ftp.sink"
typedef struct ftp_csink {
  lua_CFunction write;
} ftp_csink;

/* One transfer in progress: where data goes to or comes from. */
typedef struct xfer {
  struct ftp_sess *s;
  int upload, lines, text;
  int cbref;               /* Lua callback or LUA_NOREF */
  int csref;               /* C sink (FTP_CSINK) or LUA_NOREF */
  FILE *fp;                /* download target / upload source (Lua file) */
  size_t blocksize;
  nl_buf acc;              /* download data not yet handed to Lua */
  /* upload source */
  const char *str; size_t slen, spos;   /* string source */
  int fnref;               /* chunk function source */
  int chunkref; const char *chunk; size_t clen, cpos;
  int eof, pending_cr, emitted; char last;
  curl_off_t moved;        /* payload bytes seen either way */
  long long announced;     /* the size a 150 reply named, or -1 */
  int failed;              /* a callback failed: errref holds why */
  int errref;
} xfer;

typedef struct reply {
  int code;
  nl_buf text;
} reply;

struct ftp_sess;
/* What a method does with the result once its operation has run. */
typedef int (*finish_fn)(lua_State *L, struct ftp_sess *s, CURLcode rc);
typedef void (*setup_fn)(struct ftp_sess *s);

/* Transfer options beyond the xfer itself. */
typedef struct xsetup {
  int nobody, dirlist, append;
  int filetime;            /* MDTM before RETR, in the same operation */
  const char *custom;      /* a static string */
  curl_off_t rest, insize;
} xsetup;

/* The operation in progress.  Inside netlua.run the method's C frame is
 * gone after each wait (the coroutine yields), so everything the
 * operation needs later lives here or on the Lua stack, which the
 * scheduler keeps: strings (URL, commands, paths) stay there. */
typedef struct op_state {
  int active;              /* started, not yet finished */
  int added;               /* the easy handle is on the multi */
  int attempt, was_logged; /* the one retry on a dead reused connection */
  int url;                 /* stack index of the URL */
  nl_deadline dl;          /* the operation's deadline */
  setup_fn setup;          /* method-specific options */
  xsetup xo;
  struct curl_slist *qlist;/* CURLOPT_QUOTE list, freed at the end */
  int use_x;               /* x below is this operation's transfer */
  xfer x;
  finish_fn finish;
  const char *what;        /* method name for messages (static) */
  int k, need2xx;          /* sendcmd: reply index, 2xx wanted */
  int arg;                 /* stack index of a finish argument (cwd) */
} op_state;

typedef struct ftp_sess {
  CURL *easy;
  CURLM *multi;
  int closed, busy, aborting;
  lua_State *L;            /* valid while a curl call may call back */
  char *host; int port;
  char *user, *pass, *acct;
  double timeout;
  int passive, tls, verify;
  char *cafile;
  int debuglevel, debugref;
  int connected, logged;
  char *welcome, *entry, *cwd, *server_cwd;
  int pre_fd;              /* connected socket with the greeting unread */
  curl_socket_t ctl_fd;    /* curl's control connection, while it is open */
  int rs_fd;               /* what connect's name lookup waits on, or -1 */
  int reconnects, logins;
  /* reply reassembly from the debug stream */
  nl_ftpr fr;              /* the framer, and the reply being assembled */
  reply last;              /* last complete reply */
  int not_ftp;             /* a line that cannot start a reply arrived */
  int early;               /* a reply came before its command (TLS) */
  /* which replies belong to which command, in this operation: each
   * command sent wants one final (2xx-5xx) reply; a connection where the
   * two counts differ at the end is not one whose next reply we can
   * attribute, so it is dropped */
  int op_sent, op_finals;
  int got421;              /* the server said it is closing the connection */
  /* bytes of reply lines curl has shown us (debug stream) on the current
   * control connection, and in this operation: checked against what the
   * kernel received, to find a reply curl read but kept back */
  unsigned long long in_seen;
  size_t op_in;
  /* under TLS, records received on the control connection's SSL, and
   * their count when the last command went out (ftp_tlsrec.c) */
  void *tls_ssl;
  unsigned long tls_recs, tls_at_cmd;
  int tls_armed;           /* the last command went out under TLS */
  int fresh;               /* the next operation must open a new connection */
  char *label;             /* what failed, for messages ("get f"), or NULL */
  long long rx_filetime;   /* what the last download's MDTM said (-1: none) */
  long long rx_moved, rx_announced;  /* the last download's bytes, and the
                                      * size its 150 named (-1: none) */
  int paused;              /* on_write paused curl to let tasks run */
  char bad_line[100];      /* that line, quoted and cut for messages */
  /* the current operation */
  const char *quote[NQUOTE]; int nquote;
  int qwait;               /* index of the quote awaiting its reply */
  reply qr[NQUOTE];
  int op_login;            /* a USER went out during this operation */
  int after_auth;
  int login_cmd;           /* the last command sent was USER/PASS/ACCT */
  reply login;             /* the reply that ended the login */
  char *op_cwd;            /* CWD target awaiting its reply */
  xfer *x;
  /* waiting: curl tells which sockets it wants (CURLMOPT_SOCKETFUNCTION)
   * and when to call it back (curl_multi_timeout); the sockets go in one epoll
   * set, whose descriptor is what netlua.run or nl_wait waits for */
  int epfd;
  int wfd[NWATCH], wev[NWATCH], nw;  /* the sockets curl wants watched */
  nl_coop co;              /* the operation across yields (netlua.run) */
  /* connect in progress (its waits may yield too) */
  int cn_phase;            /* 0 none, 1 connecting, 2 reading the greeting */
  int cn_fd, cn_err;
  struct addrinfo *cn_ai, *cn_cur;
  char cn_where[300];
  op_state op;
} ftp_sess;

/* ftp.c: the session's small helpers */
char *ftp_dupstr(const char *p);
void ftp_setstr(char **dst, const char *src);
void ftp_setmem(char **dst, const char *src, size_t n);
const char *ftp_check_clean(lua_State *L, int arg, const char *what);
ftp_sess *ftp_check_sess(lua_State *L);
void ftp_check_idle(lua_State *L, ftp_sess *s);
void ftp_check_logged(lua_State *L, ftp_sess *s);
const char *ftp_push_abspath(lua_State *L, ftp_sess *s, const char *p);
const char *ftp_push_url(lua_State *L, ftp_sess *s, const char *abs, int dir);

/* ftp_drive.c: running one operation on the easy handle */
void ftp_drive_open(lua_State *L, ftp_sess *s);
int ftp_curl_at_least(unsigned int v);
int ftp_op_run(lua_State *L, ftp_sess *s, int url, setup_fn setup,
               finish_fn finish, const char *what);
void ftp_op_clear(lua_State *L, ftp_sess *s);
int ftp_error(lua_State *L, ftp_sess *s, CURLcode rc, xfer *x,
              const char *what);
void ftp_apply_common(ftp_sess *s, CURL *h, const nl_deadline *d);
/* ftp_tlsrec.c: TLS records on the control connection */
void ftp_tlsrec_apply(ftp_sess *s, CURL *h);
void ftp_tlsrec_command(ftp_sess *s, CURL *h);
int ftp_tlsrec_early(ftp_sess *s);
void ftp_debug_print(ftp_sess *s, const char *tag, const char *p, size_t n);
void ftp_debug_cmd(ftp_sess *s, const char *p, size_t n);

/* What failed, for a message: the operation's label ("get f") when it
 * has one, else the method's name. */
static inline const char *ftp_what(const ftp_sess *s) {
  return s->label ? s->label : s->op.what;
}
/* nil, message, code for a libcurl failure outside the session's handle */
int ftp_push_curlerr(lua_State *L, CURL *h, CURLcode rc, const char *what);

/* ftp_xfer.c: transfers */
int ftp_xfer_whole(ftp_sess *s, const xfer *x, curl_off_t rest);
int ftp_push_partial(lua_State *L, const ftp_sess *s, const char *what);
void ftp_xfer_free(lua_State *L, xfer *x);
int nl_ftp_retrbinary(lua_State *L);
int nl_ftp_retrlines(lua_State *L);
int nl_ftp_storbinary(lua_State *L);
int nl_ftp_storlines(lua_State *L);
int nl_ftp_size(lua_State *L);
/* the raw path (ftp_raw.c) moves data through these, as curl's callbacks
 * do: 1 on success, 0 when the transfer failed (callback, I/O, abort) */
int ftp_xfer_sink(xfer *x, const char *p, size_t n);
int ftp_xfer_flush(xfer *x);
int ftp_xfer_source(xfer *x, char *buf, size_t room, size_t *got);
int ftp_xfer_seek(xfer *x, curl_off_t off, int origin);  /* CURL_SEEKFUNC_* */

/* ftp_raw.c: transfers of paths libcurl refuses (control characters) */
enum { RAW_RETR, RAW_LIST, RAW_NLST, RAW_MLSD, RAW_STOR, RAW_APPE, RAW_SIZE };
int ftp_raw_needed(const char *abs);
int ftp_raw_run(lua_State *L, ftp_sess *s, int kind, const char *abs,
                xfer *x, curl_off_t rest);

/* ftp_connect.c: connect, greeting, login */
curl_socket_t ftp_on_opensocket(void *ud, curlsocktype purpose,
                                struct curl_sockaddr *a);
int ftp_on_sockopt_pre(void *ud, curl_socket_t fd, curlsocktype purpose);
void ftp_connect_end(ftp_sess *s, int keep);
int nl_ftp_connect(lua_State *L);
int nl_ftp_login(lua_State *L);

#endif
