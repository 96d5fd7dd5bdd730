/*
 * ssh.h - what ssh.c (the connection) and ssh_chan.c (its channels)
 * share.
 *
 * libssh runs in non-blocking mode over a socket netlua connected: every
 * libssh call that would block returns SSH_AGAIN, and the step waits on
 * the socket as every other netlua call does (nl_coop_wait), then calls
 * it again.  All operations of one connection wait on its one socket.
 */
#ifndef NETLUA_SSH_H
#define NETLUA_SSH_H

#include <libssh/libssh.h>
#include <libssh/callbacks.h>

#include "netlua.h"

#define NL_SSH "netlua.ssh"
#define NL_SSH_CHANNEL "netlua.ssh_channel"

typedef struct nl_sshchan nl_sshchan;

typedef struct nl_ssh {
  ssh_session s;           /* NULL once closed */
  int fd;                  /* its socket, what every wait is on */
  int lfd;                 /* a duplicate that libssh reads and writes:
                            * libssh closes it on some errors and not on
                            * others, so the number waited on is ours */
  double timeout;          /* default for every step; < 0 blocks */
  nl_coop co;              /* the handshake or authentication under way */
  ssh_key key;             /* a private key kept across an auth's waits */
  nl_sshchan *chans;       /* its open channels */
  char name[128];          /* "user@host:port" for messages */
  struct ssh_counter_struct raw, sock;  /* libssh counts packets here */
  double keepalive;        /* seconds between keepalives while waiting */
  double ka_last;          /* when the last one went (monotonic) */
} nl_ssh;

/* A channel of a connection; it lives in a channel object (ssh_chan.c). */
struct nl_sshchan {
  ssh_channel ch;          /* NULL once closed, or its connection closed */
  nl_ssh *conn;            /* NULL once its connection closed */
  nl_sshchan *prev, *next; /* in conn->chans */
  nl_coop co, wco;         /* its read side and its write side */
  nl_coop *rco;            /* the read in progress (a shell's is in its
                            * session object) */
  struct ssh_channel_callbacks_struct cb;
  int status;              /* exit status, when has_status */
  int has_status;
  int shell;               /* a shell session reads and writes it now */
  int sent_eof;            /* we said we send no more */
  /* output taken in while a write waited for the server's window: read
   * before anything else (stdout, stderr) */
  nl_buf pend[2];
  char signal[32];         /* the signal that ended the command, or "" */
};

/* The connection (argument arg) open; raises otherwise. */
nl_ssh *nl_ssh_check(lua_State *L, int arg);
/* Waits as c until d for what libssh needs next on the socket (to read,
 * and to write when it has output queued). */
int nl_ssh_wait(nl_ssh *s, nl_coop *c, const nl_deadline *d);
/* libssh takes in packets as a side effect of many calls.  A step notes
 * the count before its calls (nl_ssh_mark); after them, nl_ssh_moved
 * says whether any packet came in meanwhile.  Then the step looks again
 * instead of waiting, since what it waits for may have come with them
 * (the socket will not say so again), and the connection's other
 * parked operations are woken: the packets may be theirs. */
uint64_t nl_ssh_mark(const nl_ssh *s);
int nl_ssh_moved(nl_ssh *s, nl_coop *self, uint64_t mark);
/* Pushes a channel of s into its list, or takes it out. */
void nl_ssh_link(nl_ssh *s, nl_sshchan *ch);
void nl_ssh_unlink(nl_sshchan *ch);
/* Why libssh failed: ECONNRESET when the connection is gone, EACCES
 * when the server refused a channel or a request, else EPROTO (the
 * text is then libssh's, nl_ssh_error). */
int nl_ssh_errno(nl_ssh *s);
const char *nl_ssh_error(nl_ssh *s);
/* Pushes nil, "<what> <name>: <reason>", code for result r (an NL_*
 * result or errno; EPROTO gives libssh's own text); returns 3. */
int nl_ssh_fail(lua_State *L, nl_ssh *s, int r, const char *what);

void nl_open_ssh_chan(lua_State *L);

#endif
