/*
 * telnet_engine.c - the Telnet protocol state machine (see the header).
 *
 * Data runs are found with memchr and moved with one memmove each, never
 * byte by byte; the decoder works in place because data never grows.
 * Negotiation follows RFC 1143's Q method, plus one rule of our own: a
 * refusal is sent once per state change, so a peer repeating DO/WILL for
 * a refused option forever gets one answer, not a reply loop.
 * This file is no place for sockets, Lua or malloc.
 */
#include <stdlib.h>
#include <string.h>

#include "telnet_engine.h"

enum { S_DATA, S_IAC, S_NEG, S_SB_OPT, S_SB, S_SB_IAC };

#define Q_EMPTY 0
#define Q_OPPOSITE 1

#define BIT_GET(set, i) (((set)[(i) >> 3] >> ((i) & 7)) & 1)
#define BIT_SET(set, i, v) \
  ((v) ? ((set)[(i) >> 3] |= (unsigned char)(1u << ((i) & 7))) \
       : ((set)[(i) >> 3] &= (unsigned char)~(1u << ((i) & 7))))

static void emit(tn_engine *t, int kind, int cmd, int opt, int on,
                 const unsigned char *data, size_t len) {
  tn_event ev;
  if (t->event == NULL) return;
  ev.kind = kind;
  ev.cmd = cmd;
  ev.opt = opt;
  ev.on = on;
  ev.data = data;
  ev.len = len;
  t->event(t->ud, &ev);
}

static void send_neg(tn_engine *t, int cmd, int opt) {
  unsigned char b[3];
  b[0] = TN_IAC;
  b[1] = (unsigned char)cmd;
  b[2] = (unsigned char)opt;
  t->send(t->ud, b, 3);
  emit(t, TN_EV_SENT, cmd, opt, 0, NULL, 0);
}

void tn_init(tn_engine *t, tn_send_fn send, tn_event_fn event, void *ud) {
  memset(t, 0, sizeof *t);
  t->state = S_DATA;
  t->send = send;
  t->event = event;
  t->ud = ud;
  tn_accept(t, TN_HIM, TN_BINARY, 1);
  tn_accept(t, TN_HIM, TN_ECHO, 1);
  tn_accept(t, TN_HIM, TN_SGA, 1);
  tn_accept(t, TN_US, TN_BINARY, 1);
  tn_accept(t, TN_US, TN_SGA, 1);
}

void tn_free(tn_engine *t) {
  free(t->sb);
  free(t->ttype);
  free(t->env);
  t->sb = NULL;
  t->ttype = NULL;
  t->env = NULL;
  t->sb_cap = t->sb_len = t->ttype_len = t->env_len = 0;
  t->nttype = 0;
}

/* Makes *p hold at least need bytes (max bytes at most): 0 or -1. */
static int grow(void *pp, size_t *cap, size_t need, size_t max) {
  unsigned char **p = (unsigned char **)pp, *q;
  size_t c = *cap ? *cap : 64;
  if (need <= *cap) return 0;
  if (need > max) return -1;
  while (c < need) c *= 2;
  if (c > max) c = max;
  q = (unsigned char *)realloc(*p, c);
  if (q == NULL) return -1;
  *p = q;
  *cap = c;
  return 0;
}

void tn_accept(tn_engine *t, int side, int opt, int yes) {
  opt &= 255;
  if (side == TN_US) BIT_SET(t->accept_us, opt, yes);
  else BIT_SET(t->accept_him, opt, yes);
  /* a changed mind deserves a fresh answer */
  if (side == TN_US) t->opt[opt].us_refused = 0;
  else t->opt[opt].him_refused = 0;
}

int tn_state(const tn_engine *t, int side, int opt) {
  const tn_opt *o = &t->opt[opt & 255];
  return side == TN_US ? o->us : o->him;
}

/* ---- subnegotiation replies -------------------------------------------- */

/* A reply being built: bytes are IAC-doubled as they are added. */
typedef struct reply {
  unsigned char b[2 * TN_ENV_MAX + 64];
  size_t n;
} reply;

static void r_raw(reply *r, int c) {
  if (r->n < sizeof r->b) r->b[r->n++] = (unsigned char)c;
}

static void r_byte(reply *r, int c) {
  r_raw(r, c);
  if (c == TN_IAC) r_raw(r, c);
}

static void r_start(reply *r, int opt) {
  r->n = 0;
  r_raw(r, TN_IAC);
  r_raw(r, TN_SB);
  r_raw(r, opt);
}

static void r_end(tn_engine *t, reply *r) {
  r_raw(r, TN_IAC);
  r_raw(r, TN_SE);
  t->send(t->ud, r->b, r->n);
}

static void send_naws(tn_engine *t) {
  reply r;
  if (t->cols <= 0 || t->rows <= 0) return;
  r_start(&r, TN_NAWS);
  r_byte(&r, (t->cols >> 8) & 255);
  r_byte(&r, t->cols & 255);
  r_byte(&r, (t->rows >> 8) & 255);
  r_byte(&r, t->rows & 255);
  r_end(t, &r);
}

void tn_set_window(tn_engine *t, int cols, int rows) {
  t->cols = cols < 0 ? 0 : cols > 65535 ? 65535 : cols;
  t->rows = rows < 0 ? 0 : rows > 65535 ? 65535 : rows;
  if (t->opt[TN_NAWS].us == TN_YES) send_naws(t);
}

int tn_add_ttype(tn_engine *t, const char *name, size_t len) {
  size_t cap = t->ttype_len;  /* kept exact: names are added once */
  if (len == 0 || memchr(name, 0, len) != NULL ||
      grow(&t->ttype, &cap, t->ttype_len + len + 1, TN_TTYPE_MAX) != 0)
    return -1;
  memcpy(t->ttype + t->ttype_len, name, len);
  t->ttype_len += len;
  t->ttype[t->ttype_len++] = '\0';
  t->nttype++;
  return 0;
}

/* RFC 1091: names in order, the last one twice (so the server knows the
 * list ended), then from the start again. */
static void send_ttype(tn_engine *t) {
  reply r;
  const char *p = t->ttype;
  int i, k;
  if (t->nttype == 0) return;
  k = t->ttype_i < t->nttype ? t->ttype_i : t->nttype - 1;
  for (i = 0; i < k; i++) p += strlen(p) + 1;
  t->ttype_i = t->ttype_i >= t->nttype ? 0 : t->ttype_i + 1;
  r_start(&r, TN_TTYPE);
  r_raw(&r, 0);  /* IS */
  for (; *p; p++) r_byte(&r, (unsigned char)*p);
  r_end(t, &r);
}

/* NEW-ENVIRON (RFC 1572) codes */
#define ENV_IS 0
#define ENV_SEND 1
#define ENV_VAR 0
#define ENV_VALUE 1
#define ENV_ESC 2
#define ENV_USERVAR 3

static int well_known(const char *name, size_t n) {
  static const char *const vars[] = {"USER", "JOB", "ACCT", "PRINTER",
                                     "SYSTEMTYPE", "DISPLAY", NULL};
  int i;
  for (i = 0; vars[i]; i++)
    if (strlen(vars[i]) == n && memcmp(vars[i], name, n) == 0) return 1;
  return 0;
}

int tn_add_env(tn_engine *t, const char *name, size_t nlen,
               const char *value, size_t vlen) {
  size_t need = 1 + nlen + 1 + vlen + 1;
  unsigned char *p;
  size_t cap = t->env_len;  /* kept exact: variables are added once */
  if (nlen == 0 || memchr(name, 0, nlen) || memchr(value, 0, vlen) ||
      need > TN_ENV_MAX ||
      grow(&t->env, &cap, t->env_len + need, TN_ENV_MAX) != 0)
    return -1;
  p = t->env + t->env_len;
  *p++ = well_known(name, nlen) ? ENV_VAR : ENV_USERVAR;
  memcpy(p, name, nlen);
  p += nlen;
  *p++ = 0;
  memcpy(p, value, vlen);
  p += vlen;
  *p = 0;
  t->env_len += need;
  return 0;
}

static void r_envtext(reply *r, const unsigned char *s, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    if (s[i] <= ENV_USERVAR) r_raw(r, ENV_ESC);
    r_byte(r, s[i]);
  }
}

/* Does the SEND request (list of type+name) ask for this variable? */
static int env_wanted(const unsigned char *req, size_t n, int type,
                      const char *name) {
  size_t i = 0;
  if (n == 0) return 1;  /* empty SEND: everything */
  while (i < n) {
    unsigned char want = req[i++], nm[256];
    size_t k = 0;
    while (i < n && req[i] != ENV_VAR && req[i] != ENV_USERVAR) {
      if (req[i] == ENV_ESC && i + 1 < n) i++;
      if (k < sizeof nm - 1) nm[k++] = req[i];
      i++;
    }
    if (want != type) continue;
    if (k == 0) return 1;  /* "all VARs" / "all USERVARs" */
    if (strlen(name) == k && memcmp(name, nm, k) == 0) return 1;
  }
  return 0;
}

static void send_env(tn_engine *t, const unsigned char *req, size_t n) {
  reply r;
  size_t i = 0;
  r_start(&r, TN_NEW_ENVIRON);
  r_raw(&r, ENV_IS);
  while (i < t->env_len) {
    int type = t->env[i];
    const char *name = (const char *)t->env + i + 1;
    const char *value = name + strlen(name) + 1;
    if (env_wanted(req, n, type, name)) {
      r_raw(&r, type);
      r_envtext(&r, (const unsigned char *)name, strlen(name));
      r_raw(&r, ENV_VALUE);
      r_envtext(&r, (const unsigned char *)value, strlen(value));
    }
    i += 1 + strlen(name) + 1 + strlen(value) + 1;
  }
  r_end(t, &r);
}

static void handle_sb(tn_engine *t) {
  const unsigned char *p = t->sb;
  size_t n = t->sb_len;
  emit(t, TN_EV_SB, 0, t->sb_opt, 0, p, n);
  if (n == 0 || p[0] != 1) return;  /* only SEND asks us something */
  if (t->sb_opt == TN_TTYPE && t->opt[TN_TTYPE].us == TN_YES)
    send_ttype(t);
  else if (t->sb_opt == TN_NEW_ENVIRON &&
           t->opt[TN_NEW_ENVIRON].us == TN_YES)
    send_env(t, p + 1, n - 1);
  /* COMPRESS2 and everything else: ignored, never acted upon */
}

/* ---- RFC 1143 -------------------------------------------------------- */

static void changed(tn_engine *t, int side, int opt, int on) {
  emit(t, TN_EV_STATE, side, opt, on, NULL, 0);
  if (side == TN_US && on) {
    if (opt == TN_NAWS) send_naws(t);
    if (opt == TN_TTYPE) t->ttype_i = 0;
  }
}

/* One side of an option, unpacked from its bit-fields (which have no
 * address) while the Q method works on it; stored back with side_store.
 * Nothing the Q method calls in between reads the option's state. */
typedef struct side_state {
  unsigned char st, q, refused;
} side_state;

static void side_load(side_state *v, const tn_opt *o, int side) {
  v->st = side == TN_US ? o->us : o->him;
  v->q = side == TN_US ? o->usq : o->himq;
  v->refused = side == TN_US ? o->us_refused : o->him_refused;
}

static void side_store(tn_opt *o, int side, const side_state *v) {
  if (side == TN_US) {
    o->us = v->st;
    o->usq = v->q;
    o->us_refused = v->refused;
  } else {
    o->him = v->st;
    o->himq = v->q;
    o->him_refused = v->refused;
  }
}

static void q_recv_side(tn_engine *t, int side, int opt, int yes,
                        side_state *v);

/* The peer said WILL/WONT (side HIM) or DO/DONT (side US). */
static void q_recv(tn_engine *t, int side, int opt, int yes) {
  side_state v;
  side_load(&v, &t->opt[opt], side);
  q_recv_side(t, side, opt, yes, &v);
  side_store(&t->opt[opt], side, &v);
}

static void q_recv_side(tn_engine *t, int side, int opt, int yes,
                        side_state *v) {
  unsigned char *st = &v->st, *q = &v->q, *refused = &v->refused;
  int pos = side == TN_US ? TN_WILL : TN_DO;
  int neg = side == TN_US ? TN_WONT : TN_DONT;
  int ok = BIT_GET(side == TN_US ? t->accept_us : t->accept_him, opt);
  if (yes) {
    switch (*st) {
      case TN_NO:
        if (ok) {
          *st = TN_YES;
          send_neg(t, pos, opt);
          changed(t, side, opt, 1);
        } else if (side == TN_US && opt == TN_TM) {
          send_neg(t, neg, opt);  /* a timing mark wants an answer each time */
        } else if (!*refused) {
          *refused = 1;
          send_neg(t, neg, opt);
        }
        break;
      case TN_YES: break;
      case TN_WANTNO:
        emit(t, TN_EV_ERROR, pos, opt, 0, NULL, 0);
        if (*q == Q_EMPTY) *st = TN_NO;
        else {
          *st = TN_YES;
          *q = Q_EMPTY;
          changed(t, side, opt, 1);
        }
        break;
      case TN_WANTYES:
        if (*q == Q_EMPTY) {
          *st = TN_YES;
          changed(t, side, opt, 1);
        } else {
          *st = TN_WANTNO;
          *q = Q_EMPTY;
          send_neg(t, neg, opt);
        }
        break;
    }
  } else {
    switch (*st) {
      case TN_NO: break;
      case TN_YES:
        *st = TN_NO;
        send_neg(t, neg, opt);
        changed(t, side, opt, 0);
        break;
      case TN_WANTNO:
        if (*q == Q_EMPTY) {
          *st = TN_NO;
          changed(t, side, opt, 0);
        } else {
          *st = TN_WANTYES;
          *q = Q_EMPTY;
          send_neg(t, pos, opt);
        }
        break;
      case TN_WANTYES:
        *st = TN_NO;
        *q = Q_EMPTY;
        break;
    }
  }
}

static int request_side(tn_engine *t, int side, int opt, int on,
                        side_state *v);

int tn_request(tn_engine *t, int side, int opt, int on) {
  side_state v;
  int r;
  opt &= 255;
  side_load(&v, &t->opt[opt], side);
  v.refused = 0;
  r = request_side(t, side, opt, on, &v);
  side_store(&t->opt[opt], side, &v);
  return r;
}

static int request_side(tn_engine *t, int side, int opt, int on,
                        side_state *v) {
  unsigned char *st = &v->st, *q = &v->q;
  int pos = side == TN_US ? TN_WILL : TN_DO;
  int neg = side == TN_US ? TN_WONT : TN_DONT;
  switch (*st) {
    case TN_NO:
      if (!on) return -1;
      *st = TN_WANTYES;
      send_neg(t, pos, opt);
      return 0;
    case TN_YES:
      if (on) return -1;
      *st = TN_WANTNO;
      send_neg(t, neg, opt);
      changed(t, side, opt, 0);
      return 0;
    case TN_WANTNO:
      if (*q == (on ? Q_OPPOSITE : Q_EMPTY)) return -1;
      *q = on ? Q_OPPOSITE : Q_EMPTY;
      return 0;
    default: /* TN_WANTYES */
      if (*q == (on ? Q_EMPTY : Q_OPPOSITE)) return -1;
      *q = on ? Q_EMPTY : Q_OPPOSITE;
      return 0;
  }
}

static void negotiate(tn_engine *t, int cmd, int opt) {
  emit(t, TN_EV_NEG, cmd, opt, 0, NULL, 0);
  if (t->manual) return;  /* the user's callback answers */
  switch (cmd) {
    case TN_WILL: q_recv(t, TN_HIM, opt, 1); break;
    case TN_WONT: q_recv(t, TN_HIM, opt, 0); break;
    case TN_DO: q_recv(t, TN_US, opt, 1); break;
    default: q_recv(t, TN_US, opt, 0); break;
  }
}

/* ---- the decoder ----------------------------------------------------- */

static void sb_add(tn_engine *t, const unsigned char *p, size_t n) {
  size_t room;
  if (n == 0) return;
  t->sb_total += n;
  if (!t->sb_over && t->sb_len + n > t->sb_cap) {
    size_t need = t->sb_len + n;
    /* past the limit (or out of memory) it is dropped as too long */
    grow(&t->sb, &t->sb_cap, need < TN_SB_MAX ? need : TN_SB_MAX, TN_SB_MAX);
  }
  room = t->sb_cap - t->sb_len;
  if (n > room) {
    t->sb_over = 1;
    n = room;
  }
  if (n == 0) return;
  memcpy(t->sb + t->sb_len, p, n);
  t->sb_len += n;
}

static void sb_end(tn_engine *t) {
  if (t->sb_over)
    emit(t, TN_EV_SB_OVERFLOW, 0, t->sb_opt, 0, NULL, t->sb_total);
  else
    handle_sb(t);
  if (t->sb_cap > 256) {  /* a long one is over: do not keep its room */
    free(t->sb);
    t->sb = NULL;
    t->sb_cap = 0;
  }
}

size_t tn_recv(tn_engine *t, unsigned char *buf, size_t n) {
  unsigned char *in = buf, *end = buf + n, *out = buf;
  unsigned char *iac_at = buf, *nul_at = buf;  /* cached memchr results */
  int iac_known = 0, nul_known = 0;
  while (in < end) {
    switch (t->state) {
      case S_DATA: {
        /* Only IAC and, in NVT mode, the NUL of CR NUL need work: find
         * them with memchr (cached), copy the run between in one go. */
        unsigned char *stop;
        size_t run;
        int bin = t->opt[TN_BINARY].him == TN_YES;
        if (!iac_known || iac_at < in) {
          iac_at = memchr(in, TN_IAC, (size_t)(end - in));
          if (iac_at == NULL) iac_at = end;
          iac_known = 1;
        }
        stop = iac_at;
        if (!bin) {
          if (!nul_known || nul_at < in) {
            nul_at = memchr(in, 0, (size_t)(end - in));
            if (nul_at == NULL) nul_at = end;
            nul_known = 1;
          }
          if (nul_at < stop) stop = nul_at;
        }
        run = (size_t)(stop - in);
        if (run) {
          if (out != in) memmove(out, in, run);
          out += run;
          in = stop;
          t->cr = out[-1] == '\r';
        }
        if (in == end) break;
        if (*in == TN_IAC) {
          in++;
          t->state = S_IAC;
        } else {  /* NUL in NVT mode: dropped right after a CR */
          if (!t->cr) *out++ = 0;
          in++;
          t->cr = 0;
        }
        break;
      }
      case S_IAC: {
        int c = *in++;
        if (c == TN_IAC) {
          *out++ = TN_IAC;
          t->cr = 0;
          t->state = S_DATA;
        } else if (c >= TN_WILL) {
          t->neg_cmd = c;
          t->state = S_NEG;
        } else if (c == TN_SB) {
          t->state = S_SB_OPT;
        } else {
          t->state = S_DATA;
          emit(t, TN_EV_CMD, c, 0, 0, NULL, 0);
        }
        break;
      }
      case S_NEG:
        t->state = S_DATA;
        negotiate(t, t->neg_cmd, *in++);
        break;
      case S_SB_OPT:
        t->sb_opt = *in++;
        t->sb_len = t->sb_total = 0;
        t->sb_over = 0;
        t->state = S_SB;
        break;
      case S_SB: {
        unsigned char *iac = memchr(in, TN_IAC, (size_t)(end - in));
        unsigned char *stop = iac ? iac : end;
        sb_add(t, in, (size_t)(stop - in));
        in = stop;
        if (iac) {
          in++;
          t->state = S_SB_IAC;
        }
        break;
      }
      case S_SB_IAC: {
        int c = *in;
        if (c == TN_SE) {
          in++;
          t->state = S_DATA;
          sb_end(t);
        } else if (c == TN_IAC) {
          in++;
          sb_add(t, in - 1, 1);
          t->state = S_SB;
        } else if (c >= TN_EOR) {
          /* a command inside SB: the peer forgot IAC SE.  Drop the SB
           * and let the command through rather than swallow the rest. */
          emit(t, TN_EV_SB_ABORT, c, t->sb_opt, 0, NULL, t->sb_total);
          t->state = S_IAC;
        } else {  /* a stray 0xFF inside SB: keep it literally */
          unsigned char two[2];
          two[0] = TN_IAC;
          two[1] = (unsigned char)c;
          in++;
          sb_add(t, two, 2);
          t->state = S_SB;
        }
        break;
      }
    }
  }
  return (size_t)(out - buf);
}

size_t tn_escape(const tn_engine *t, const unsigned char *in, size_t n,
                 unsigned char *out) {
  const unsigned char *end = in + n, *iac_at = in, *cr_at = in;
  unsigned char *o = out;
  int bin = t->opt[TN_BINARY].us == TN_YES, iac_known = 0, cr_known = 0;
  while (in < end) {
    const unsigned char *stop;
    size_t run;
    if (!iac_known || iac_at < in) {
      iac_at = memchr(in, TN_IAC, (size_t)(end - in));
      if (iac_at == NULL) iac_at = end;
      iac_known = 1;
    }
    stop = iac_at;
    if (!bin) {
      if (!cr_known || cr_at < in) {
        cr_at = memchr(in, '\r', (size_t)(end - in));
        if (cr_at == NULL) cr_at = end;
        cr_known = 1;
      }
      if (cr_at < stop) stop = cr_at;
    }
    run = (size_t)(stop - in);
    memcpy(o, in, run);
    o += run;
    in = stop;
    if (in == end) break;
    if (*in == TN_IAC) {
      *o++ = TN_IAC;
      *o++ = TN_IAC;
      in++;
    } else {  /* CR: CR LF stays, a bare CR is CR NUL */
      *o++ = '\r';
      in++;
      if (in < end && *in == '\n') *o++ = *in++;
      else *o++ = 0;
    }
  }
  return (size_t)(o - out);
}

const char *tn_cmd_name(int cmd) {
  static const char *const names[] = {
    "EOR", "SE", "NOP", "DM", "BRK", "IP", "AO", "AYT", "EC", "EL", "GA",
    "SB", "WILL", "WONT", "DO", "DONT", "IAC"};
  if (cmd >= TN_EOR && cmd <= TN_IAC) return names[cmd - TN_EOR];
  return NULL;
}

const char *tn_opt_name(int opt) {
  switch (opt) {
    case 0: return "BINARY";
    case 1: return "ECHO";
    case 3: return "SGA";
    case 5: return "STATUS";
    case 6: return "TM";
    case 24: return "TTYPE";
    case 25: return "EOR";
    case 31: return "NAWS";
    case 32: return "TSPEED";
    case 33: return "LFLOW";
    case 34: return "LINEMODE";
    case 35: return "XDISPLOC";
    case 36: return "ENVIRON";
    case 37: return "AUTHENTICATION";
    case 38: return "ENCRYPT";
    case 39: return "NEW-ENVIRON";
    case 86: return "COMPRESS2";
    default: return NULL;
  }
}
