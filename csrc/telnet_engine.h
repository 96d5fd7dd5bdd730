/*
 * telnet_engine.h - the Telnet protocol engine: bytes in, data, events and
 * reply bytes out.
 *
 * Pure state machine (RFC 854/855/1143, NVT line endings, TTYPE, NAWS,
 * NEW-ENVIRON).  It does no I/O and knows nothing about Lua, so it can be
 * fuzzed on its own; telnet.c drives it from a socket.  It allocates only
 * what a session actually uses (a subnegotiation being received, the
 * terminal names and environment it was given): an engine is ~1.7 KiB,
 * not 8 KiB of arrays that a fleet of thousands mostly never touches.
 * tn_free releases that memory.
 * Compression (COMPRESS2) is never negotiated nor started.
 */
#ifndef TELNET_ENGINE_H
#define TELNET_ENGINE_H

#include <stddef.h>

/* commands */
#define TN_IAC   255
#define TN_DONT  254
#define TN_DO    253
#define TN_WONT  252
#define TN_WILL  251
#define TN_SB    250
#define TN_GA    249
#define TN_EL    248
#define TN_EC    247
#define TN_AYT   246
#define TN_AO    245
#define TN_IP    244
#define TN_BRK   243
#define TN_DM    242
#define TN_NOP   241
#define TN_SE    240
#define TN_EOR   239

/* options the engine itself knows about */
#define TN_BINARY      0
#define TN_ECHO        1
#define TN_SGA         3
#define TN_TM          6
#define TN_TTYPE       24
#define TN_NAWS        31
#define TN_NEW_ENVIRON 39
#define TN_COMPRESS2   86

/* RFC 1143 states (per option, per side) */
#define TN_NO      0
#define TN_YES     1
#define TN_WANTNO  2
#define TN_WANTYES 3

/* sides: US = options we perform (WILL/WONT from us, DO/DONT from the
 * peer); HIM = options the peer performs (WILL/WONT from the peer). */
#define TN_US  0
#define TN_HIM 1

#define TN_SB_MAX   4096   /* longest subnegotiation kept; longer ones are
                              discarded up to IAC SE */
#define TN_TTYPE_MAX 512   /* terminal names, NUL separated */
#define TN_ENV_MAX  2048   /* environment, "T name\0value\0" records */

/* events reported through the event callback */
enum {
  TN_EV_CMD = 1,     /* a command that is not negotiation: cmd */
  TN_EV_NEG,         /* negotiation received: cmd (WILL..DONT), opt */
  TN_EV_SENT,        /* negotiation sent: cmd, opt */
  TN_EV_STATE,       /* option state changed: side (in cmd), opt, on */
  TN_EV_SB,          /* complete subnegotiation: opt, data, len */
  TN_EV_SB_OVERFLOW, /* subnegotiation over TN_SB_MAX dropped: opt, len */
  TN_EV_SB_ABORT,    /* a command inside SB ended it early: opt, len */
  TN_EV_ERROR        /* protocol error worth a debug line: cmd, opt */
};

typedef struct tn_event {
  int kind;
  int cmd;
  int opt;
  int on;
  const unsigned char *data;
  size_t len;
} tn_event;

typedef void (*tn_send_fn)(void *ud, const unsigned char *p, size_t n);
typedef void (*tn_event_fn)(void *ud, const tn_event *ev);

/* One byte per option (256 of them in every engine): the RFC 1143 state
 * and queue bit of each side, and whether we refused it already. */
typedef struct tn_opt {
  unsigned char us : 2, usq : 1, him : 2, himq : 1;
  unsigned char us_refused : 1, him_refused : 1;
} tn_opt;

typedef struct tn_engine {
  int state;                 /* parser state */
  int neg_cmd;               /* WILL/WONT/DO/DONT waiting for its option */
  int cr;                    /* last data byte was a CR (NVT mode) */
  int manual;                /* negotiation answered by the user, not us */
  int sb_opt;
  int sb_over;
  size_t sb_len, sb_total, sb_cap;
  unsigned char *sb;         /* grows to TN_SB_MAX while an SB arrives */
  tn_opt opt[256];
  unsigned char accept_us[32], accept_him[32];
  char *ttype;               /* up to TN_TTYPE_MAX bytes */
  size_t ttype_len;
  int nttype, ttype_i;
  unsigned char *env;        /* up to TN_ENV_MAX bytes */
  size_t env_len;
  int cols, rows;            /* 0 = unknown: no NAWS */
  tn_send_fn send;
  tn_event_fn event;
  void *ud;
} tn_engine;

void tn_init(tn_engine *t, tn_send_fn send, tn_event_fn event, void *ud);
/* Frees what the engine allocated; it must be tn_init'ed again to be
 * used after this.  Safe to call twice. */
void tn_free(tn_engine *t);
/* Whether we agree when the peer asks for opt on a side (default: HIM
 * BINARY, ECHO, SGA; US BINARY, SGA). */
void tn_accept(tn_engine *t, int side, int opt, int yes);
/* Terminal names answered to TTYPE SEND, cycled: 0 or -1 (too long, or
 * out of memory). */
int tn_add_ttype(tn_engine *t, const char *name, size_t len);
/* One NEW-ENVIRON variable: 0 or -1 (too long, or out of memory). */
int tn_add_env(tn_engine *t, const char *name, size_t nlen,
               const char *value, size_t vlen);
/* Window size; sent at once when NAWS is on. */
void tn_set_window(tn_engine *t, int cols, int rows);
/* Decodes n received bytes in place; returns how many data bytes now sit
 * at the start of buf.  Replies go out through the send callback. */
size_t tn_recv(tn_engine *t, unsigned char *buf, size_t n);
/* Escapes n data bytes for sending into out (room for 2n): IAC doubled,
 * and unless BINARY is on for us, a bare CR becomes CR NUL. */
size_t tn_escape(const tn_engine *t, const unsigned char *in, size_t n,
                 unsigned char *out);
/* Asks for an option on/off (RFC 1143); 0, or -1 when it is already so
 * or already queued. */
int tn_request(tn_engine *t, int side, int opt, int on);
/* RFC 1143 state of opt on a side. */
int tn_state(const tn_engine *t, int side, int opt);
const char *tn_cmd_name(int cmd);
const char *tn_opt_name(int opt);

#endif
