/*
 * ftp_xfer.c - FTP transfers: retrbinary, retrlines, storbinary,
 * storlines and size.
 *
 * What lives here: sources (string, Lua file, chunk function) and sinks
 * (Lua file, callback, gathered into blocksize pieces, C sink), the Lua callbacks
 * run under lua_pcall with their errors kept for after libcurl returns,
 * storlines' line ends, and the check that a download's bytes match the
 * size the server announced.
 * What does not: running the operation (ftp_drive.c) and the helpers
 * built on transfers (get, put, mirror: lua/netlua/ftp.lua).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ftp.h"

/* ---- callbacks into Lua ------------------------------------------------ */

/* Marks the transfer failed, keeping the value at index idx as the
 * message (the first failure wins). */
static void xkeep(xfer *x, int idx) {
  lua_State *L = x->s->L;
  if (x->failed) return;
  luaL_tolstring(L, idx, NULL);
  x->errref = luaL_ref(L, LUA_REGISTRYINDEX);
  x->failed = 1;
}

static void xfail(xfer *x, const char *msg) {
  lua_State *L = x->s->L;
  lua_pushstring(L, msg);
  xkeep(x, -1);
  lua_pop(L, 1);
}

/* Calls the function at the top of the stack with nargs args under
 * lua_pcall; on error keeps the message and marks the transfer failed. */
static int xcall(xfer *x, int nargs, int nres) {
  lua_State *L = x->s->L;
  if (lua_pcall(L, nargs, nres, 0) != LUA_OK) {
    xkeep(x, -1);
    lua_pop(L, 1);
    return 0;
  }
  return 1;
}

/* After xcall(x, n, 2): a callback or source that answered nil, err (as
 * ltn12's sinks and sources do) has failed; keeps err.  Pops both. */
static int xresult(xfer *x) {
  lua_State *L = x->s->L;
  int ok = lua_toboolean(L, -2) || lua_isnil(L, -1);
  if (!ok) xkeep(x, -1);
  lua_pop(L, 2);
  return ok;
}

static int deliver(xfer *x, const char *p, size_t n) {
  lua_State *L = x->s->L;
  if (x->cbref == LUA_NOREF) {
    fwrite(p, 1, n, stdout);
    if (x->lines) fputc('\n', stdout);
    return 1;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, x->cbref);
  lua_pushlstring(L, p, n);
  return xcall(x, 1, 2) && xresult(x);
}

/* Hands complete lines (or whole blocks) to Lua; flush hands the rest. */
static int drain(xfer *x, int flush) {
  nl_buf *b = &x->acc;
  if (x->lines) {
    char *h, *e;
    while (b->len > 0 && (e = memchr(h = nl_buf_head(b), '\n', b->len))) {
      size_t l = (size_t)(e - h);
      if (!deliver(x, h, (l > 0 && h[l - 1] == '\r') ? l - 1 : l)) return 0;
      nl_buf_consume(b, l + 1);
      if (x->s->aborting) return 0;
    }
    if (flush && b->len > 0) {
      size_t l = b->len;
      h = nl_buf_head(b);
      if (!deliver(x, h, h[l - 1] == '\r' ? l - 1 : l)) return 0;
      nl_buf_consume(b, l);
    }
  } else {
    while (b->len >= x->blocksize || (flush && b->len > 0)) {
      size_t l = b->len < x->blocksize ? b->len : x->blocksize;
      if (!deliver(x, nl_buf_head(b), l)) return 0;
      nl_buf_consume(b, l);
      if (x->s->aborting) return 0;
    }
  }
  return 1;
}

/* Hands p to the C sink as it is: no copy, no Lua string. */
static int csink_write(xfer *x, const char *p, size_t n) {
  lua_State *L = x->s->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, x->csref);
  lua_pushcfunction(L, ((ftp_csink *)lua_touserdata(L, -1))->write);
  lua_insert(L, -2);
  lua_pushlightuserdata(L, (void *)p);
  lua_pushinteger(L, (lua_Integer)n);
  return xcall(x, 3, 0);
}

int ftp_xfer_sink(xfer *x, const char *p, size_t n) {
  if (x->s->aborting || x->failed) return 0;
  x->moved += (curl_off_t)n;
  if (x->csref != LUA_NOREF) return csink_write(x, p, n);
  if (x->fp) {
    if (fwrite(p, 1, n, x->fp) != n) {
      xfail(x, strerror(errno));
      return 0;
    }
    return 1;
  }
  if (nl_buf_append(&x->acc, p, n) != NL_OK) { xfail(x, "out of memory"); return 0; }
  return drain(x, 0);
}

int ftp_xfer_flush(xfer *x) {
  return drain(x, 1);
}

static size_t on_write(char *p, size_t sz, size_t nm, void *ud) {
  xfer *x = ud;
  size_t n = sz * nm;
  if (x->s->aborting || x->failed) return 0;  /* != n: curl stops */
  if (nl_coop_due(&x->s->co)) {
    /* curl reads on while data is there: pause it (it keeps this chunk)
     * so that drive() can let the other tasks run */
    x->s->paused = 1;
    return CURL_WRITEFUNC_PAUSE;
  }
  return ftp_xfer_sink(x, p, n) ? n : 0;
}

/* Raw bytes from the upload source; 0 at its end or on failure. */
static size_t src_raw(xfer *x, char *buf, size_t room) {
  lua_State *L = x->s->L;
  if (x->str) {
    size_t n = x->slen - x->spos;
    if (n > room) n = room;
    memcpy(buf, x->str + x->spos, n);
    x->spos += n;
    return n;
  }
  if (x->fp) {
    size_t n = fread(buf, 1, room, x->fp);
    if (n == 0 && ferror(x->fp)) xfail(x, strerror(errno));
    return n;
  }
  while (x->cpos >= x->clen) {
    if (x->eof) return 0;
    luaL_unref(L, LUA_REGISTRYINDEX, x->chunkref);
    x->chunkref = LUA_NOREF; x->chunk = NULL; x->clen = x->cpos = 0;
    lua_rawgeti(L, LUA_REGISTRYINDEX, x->fnref);
    if (!xcall(x, 0, 2)) return 0;
    if (lua_isnil(L, -2)) {  /* the end, or nil, err: a failed source */
      if (xresult(x)) x->eof = 1;
      return 0;
    }
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING) {
      lua_pop(L, 1);
      xfail(x, "source function returned a non-string");
      return 0;
    }
    x->chunk = lua_tolstring(L, -1, &x->clen);
    x->chunkref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  {
    size_t n = x->clen - x->cpos;
    if (n > room) n = room;
    memcpy(buf, x->chunk + x->cpos, n);
    x->cpos += n;
    return n;
  }
}

/* storlines: bare LF line ends (curl makes CRLF of them), and a final
 * line without one gets one, as ftplib does. */
static size_t src_text(xfer *x, char *buf, size_t room) {
  for (;;) {
    size_t got, i, o = 0;
    char *in = buf + 1;
    if (x->eof && x->str == NULL && x->fp == NULL && x->fnref == LUA_NOREF)
      return 0;
    got = src_raw(x, in, room - 2);
    if (x->failed) return 0;
    if (got == 0) {
      if (x->pending_cr) { buf[o++] = '\r'; x->pending_cr = 0; x->last = '\r'; x->emitted = 1; }
      if (x->emitted && x->last != '\n') { buf[o++] = '\n'; x->last = '\n'; }
      x->emitted = 0;
      return o;
    }
    if (x->pending_cr) {
      if (in[0] != '\n') buf[o++] = '\r';
      x->pending_cr = 0;
    }
    for (i = 0; i < got; i++) {
      char c = in[i];
      if (c == '\r') {
        if (i + 1 == got) { x->pending_cr = 1; continue; }
        if (in[i + 1] == '\n') continue;
      }
      buf[o++] = c;
    }
    if (o > 0) {
      x->last = buf[o - 1];
      x->emitted = 1;
      return o;
    }
  }
}

int ftp_xfer_source(xfer *x, char *buf, size_t room, size_t *got) {
  size_t n;
  *got = 0;
  if (x->s->aborting || x->failed) return 0;
  if (room > x->blocksize && x->cbref != LUA_NOREF) room = x->blocksize;
  n = x->text ? src_text(x, buf, room) : src_raw(x, buf, room);
  if (x->failed) return 0;
  x->moved += (curl_off_t)n;
  if (n > 0 && x->cbref != LUA_NOREF) {
    lua_State *L = x->s->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, x->cbref);
    lua_pushlstring(L, buf, n);
    if (!xcall(x, 1, 2) || !xresult(x)) return 0;
  }
  *got = n;
  return 1;
}

static size_t on_read(char *buf, size_t sz, size_t nm, void *ud) {
  size_t n;
  return ftp_xfer_source(ud, buf, sz * nm, &n) ? n : CURL_READFUNC_ABORT;
}

static int on_seek(void *ud, curl_off_t off, int origin) {
  return ftp_xfer_seek(ud, off, origin);
}

int ftp_xfer_seek(xfer *x, curl_off_t off, int origin) {
  if (origin != SEEK_SET || off < 0) return CURL_SEEKFUNC_FAIL;
  if (x->str) {
    x->spos = (size_t)off > x->slen ? x->slen : (size_t)off;
    return CURL_SEEKFUNC_OK;
  }
  if (x->fp) return fseeko(x->fp, (off_t)off, SEEK_SET) == 0 ?
                 CURL_SEEKFUNC_OK : CURL_SEEKFUNC_CANTSEEK;
  /* a chunk function is taken to start where the caller wants */
  return CURL_SEEKFUNC_OK;
}

static void xfer_init(xfer *x, ftp_sess *s) {
  memset(x, 0, sizeof *x);
  x->s = s;
  x->cbref = x->fnref = x->chunkref = x->errref = x->csref = LUA_NOREF;
  x->blocksize = 8192;
  x->announced = -1;
  nl_buf_init(&x->acc);
}

void ftp_xfer_free(lua_State *L, xfer *x) {
  luaL_unref(L, LUA_REGISTRYINDEX, x->cbref);
  luaL_unref(L, LUA_REGISTRYINDEX, x->csref);
  luaL_unref(L, LUA_REGISTRYINDEX, x->fnref);
  luaL_unref(L, LUA_REGISTRYINDEX, x->chunkref);
  luaL_unref(L, LUA_REGISTRYINDEX, x->errref);
  nl_buf_free(&x->acc);
}

/* ---- transfers --------------------------------------------------------- */

static void setup_xfer(ftp_sess *s) {
  xsetup *o = &s->op.xo;
  CURL *h = s->easy;
  xfer *x = &s->op.x;
  if (o->nobody) { curl_easy_setopt(h, CURLOPT_NOBODY, 1L); return; }
  if (x->upload) {
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(h, CURLOPT_READDATA, x);
    curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
    curl_easy_setopt(h, CURLOPT_SEEKDATA, x);
    curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, 512L * 1024L);
    if (o->append) curl_easy_setopt(h, CURLOPT_APPEND, 1L);
    if (o->insize >= 0) curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, o->insize);
  } else {
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(h, CURLOPT_BUFFERSIZE, (long)BIGBUF);
    /* no SIZE round trip before each RETR: the data's end tells */
    if (o->rest == 0) curl_easy_setopt(h, CURLOPT_IGNORE_CONTENT_LENGTH, 1L);
  }
  if (x->text) curl_easy_setopt(h, CURLOPT_TRANSFERTEXT, 1L);
  if (o->dirlist) curl_easy_setopt(h, CURLOPT_DIRLISTONLY, 1L);
  if (o->custom) curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, o->custom);
  if (o->rest > 0) curl_easy_setopt(h, CURLOPT_RESUME_FROM_LARGE, o->rest);
  /* curl sends MDTM before the transfer (a failed one does not stop it):
   * a round trip as a separate command would be, one operation less */
  if (o->filetime) curl_easy_setopt(h, CURLOPT_FILETIME, 1L);
}

/* Splits an ftplib command string: verb in upper case into verb[], the
 * argument (or NULL) returned. */
static const char *split_cmd(lua_State *L, int arg, char *verb, size_t vlen,
                             const char *fname) {
  size_t n, i = 0;
  const char *cmd = luaL_checklstring(L, arg, &n);
  if (strlen(cmd) != n || strpbrk(cmd, "\r\n"))
    luaL_error(L, "bad argument #1 to '%s' (CR, LF or NUL in command)", fname);
  while (cmd[i] && cmd[i] != ' ' && i < vlen - 1) {
    verb[i] = cmd[i] >= 'a' && cmd[i] <= 'z' ? (char)(cmd[i] - 32) : cmd[i];
    i++;
  }
  verb[i] = '\0';
  if (cmd[i] == '\0') return NULL;
  if (cmd[i] != ' ') luaL_error(L, "bad argument #1 to '%s' (unknown command)", fname);
  /* one space ends the verb: the name may itself start with spaces */
  i++;
  return cmd[i] ? cmd + i : NULL;
}

/* A transfer's label: the internal form's extra argument (get, put and
 * the rest name themselves so), else "<method> <command>". */
static void set_xlabel(lua_State *L, ftp_sess *s, const char *fname,
                       int arg) {
  if (lua_type(L, arg) == LUA_TSTRING) ftp_setstr(&s->label, lua_tostring(L, arg));
  else {
    lua_pushfstring(L, "%s %s", fname, lua_tostring(L, 2));
    ftp_setstr(&s->label, lua_tostring(L, -1));
    lua_pop(L, 1);
  }
}

static FILE *tofile(lua_State *L, int idx) {
  luaL_Stream *p = luaL_testudata(L, idx, LUA_FILEHANDLE);
  if (!p) return NULL;
  if (NL_STREAM_CLOSED(p)) luaL_error(L, "attempt to use a closed file");
  return p->f;
}

/* Whether a download got the bytes its 150 reply announced: the server's
 * 226 says done, its 150 said how much, and the bytes decide.  True when
 * nothing was announced, for uploads, and for resumed downloads (curl
 * checks those against SIZE itself).  Keeps the figures for _received. */
int ftp_xfer_whole(ftp_sess *s, const xfer *x, curl_off_t rest) {
  s->rx_moved = x->upload ? -1 : (long long)x->moved;
  s->rx_announced = x->upload || rest != 0 ? -1 : x->announced;
  return s->rx_announced < 0 || s->rx_moved == s->rx_announced;
}

int ftp_push_partial(lua_State *L, const ftp_sess *s, const char *what) {
  return nl_pushfailcode(L, "partial", "%s: %lld of %lld bytes received",
                         what, s->rx_moved, s->rx_announced);
}

static int finish_xfer(lua_State *L, ftp_sess *s, CURLcode rc) {
  xfer *x = &s->op.x;
  s->rx_filetime = -1;
  if (s->op.xo.filetime && rc == CURLE_OK) {
    curl_off_t ft = -1;
    if (curl_easy_getinfo(s->easy, CURLINFO_FILETIME_T, &ft) == CURLE_OK && ft >= 0)
      s->rx_filetime = (long long)ft;
  }
  if (!ftp_xfer_whole(s, x, s->op.xo.rest) && rc == CURLE_OK)
    return ftp_push_partial(L, s, ftp_what(s));
  if (rc == CURLE_OK && !x->failed && !x->upload) {
    s->L = L;
    drain(x, 1);
  }
  if (rc == CURLE_OK && !x->failed) {
    lua_pushlstring(L, nl_buf_head(&s->last.text), s->last.text.len);
    return 1;
  }
  return ftp_error(L, s, rc == CURLE_OK ? CURLE_WRITE_ERROR : rc, x, s->op.what);
}

/* Starts a transfer built in x and o (the URL on top of the stack); the
 * session owns x from here on. */
static int run_xfer(lua_State *L, ftp_sess *s, const xfer *x,
                    const xsetup *o, finish_fn finish, const char *what) {
  ftp_op_clear(L, s);
  s->op.x = *x;
  s->op.use_x = 1;
  s->op.xo = *o;
  return ftp_op_run(L, s, -1, setup_xfer, finish, what);
}

/* Downloads: retrbinary(cmd, callback, blocksize, rest) and
 * retrlines(cmd, callback).  cmd is "RETR name", "LIST [path]",
 * "NLST [path]" or "MLSD [path]".  The callback may be a Lua file.
 * retrbinary's private 6th and 7th arguments, for the Lua helpers: the
 * label messages use, and whether to ask the file's time (_received). */
static int do_retr(lua_State *L, int lines) {
  ftp_sess *s = ftp_check_sess(L);
  const char *fname = lines ? "retrlines" : "retrbinary";
  char verb[8];
  const char *arg = split_cmd(L, 2, verb, sizeof verb, fname);
  xfer x;
  xsetup o;
  const char *abs;
  int isdir;
  memset(&o, 0, sizeof o);
  if (strcmp(verb, "RETR") == 0) {
    if (!arg) luaL_argerror(L, 2, "RETR needs a file name");
    isdir = 0;
  } else if (strcmp(verb, "LIST") == 0 || strcmp(verb, "NLST") == 0 ||
             strcmp(verb, "MLSD") == 0) {
    isdir = 1;
    if (arg && arg[0] == '-') {  /* "LIST -la": options are not paths */
      luaL_argerror(L, 2, "listing options are not supported");
    }
  } else {
    return luaL_argerror(L, 2, "expected RETR, LIST, NLST or MLSD");
  }
  ftp_check_logged(L, s);
  xfer_init(&x, s);
  x.lines = lines;
  x.text = lines;   /* listings and retrlines go in TYPE A */
  if (!lua_isnoneornil(L, 3)) {
    if ((x.fp = tofile(L, 3)) == NULL) {
      /* private: a C sink (list()'s parser) */
      int cs = !lines && luaL_testudata(L, 3, FTP_CSINK) != NULL;
      if (!cs) luaL_checktype(L, 3, LUA_TFUNCTION);
      lua_pushvalue(L, 3);
      if (cs) x.csref = luaL_ref(L, LUA_REGISTRYINDEX);
      else x.cbref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
  }
  if (!lines) {
    lua_Integer bs = luaL_optinteger(L, 4, 8192);
    lua_Integer rest = luaL_optinteger(L, 5, 0);
    if (bs < 1 || bs > 64 * 1024 * 1024) { ftp_xfer_free(L, &x); luaL_argerror(L, 4, "blocksize out of range"); }
    if (rest < 0) { ftp_xfer_free(L, &x); luaL_argerror(L, 5, "negative rest"); }
    x.blocksize = (size_t)bs;
    o.rest = rest;
    /* private (get's mtime option): the file's time from MDTM as well */
    o.filetime = !isdir && lua_toboolean(L, 7);
  }
  if (isdir) {
    x.text = 1;
    if (strcmp(verb, "NLST") == 0) o.dirlist = 1;
    else if (strcmp(verb, "MLSD") == 0) o.custom = "MLSD";
  }
  abs = ftp_push_abspath(L, s, arg ? arg : ".");
  ftp_push_url(L, s, abs, isdir);
  set_xlabel(L, s, fname, lines ? 4 : 6);
  if (ftp_raw_needed(abs))  /* libcurl refuses the path */
    return ftp_raw_run(L, s, verb[0] == 'R' ? RAW_RETR : verb[0] == 'L' ? RAW_LIST :
                       verb[0] == 'N' ? RAW_NLST : RAW_MLSD, abs, &x, o.rest);
  return run_xfer(L, s, &x, &o, finish_xfer, fname);
}

int nl_ftp_retrbinary(lua_State *L) { return do_retr(L, 0); }

int nl_ftp_retrlines(lua_State *L) { return do_retr(L, 1); }

/* Uploads: storbinary(cmd, source, blocksize, callback, rest) and
 * storlines(cmd, source, callback).  cmd is "STOR name" or "APPE name";
 * source a string, a Lua file or a function returning chunks. */
static int do_stor(lua_State *L, int lines) {
  ftp_sess *s = ftp_check_sess(L);
  const char *fname = lines ? "storlines" : "storbinary";
  char verb[8];
  const char *arg = split_cmd(L, 2, verb, sizeof verb, fname);
  int cbarg = lines ? 4 : 5;
  xfer x;
  xsetup o;
  const char *abs;
  memset(&o, 0, sizeof o);
  o.insize = -1;
  if (strcmp(verb, "STOR") == 0) o.append = 0;
  else if (strcmp(verb, "APPE") == 0) o.append = 1;
  else return luaL_argerror(L, 2, "expected STOR or APPE");
  if (!arg) luaL_argerror(L, 2, "a file name is needed");
  luaL_argcheck(L, !lua_isnoneornil(L, 3), 3, "source expected");
  if (!lua_isnoneornil(L, cbarg)) luaL_checktype(L, cbarg, LUA_TFUNCTION);
  ftp_check_logged(L, s);
  xfer_init(&x, s);
  x.upload = 1;
  x.text = lines;
  if (lua_type(L, 3) == LUA_TSTRING) {
    x.str = lua_tolstring(L, 3, &x.slen);
    if (!lines) o.insize = (curl_off_t)x.slen;
  } else if ((x.fp = tofile(L, 3)) != NULL) {
    /* read in C */
  } else if (lua_isfunction(L, 3)) {
    lua_pushvalue(L, 3);
    x.fnref = luaL_ref(L, LUA_REGISTRYINDEX);
  } else {
    ftp_xfer_free(L, &x);
    return luaL_typeerror(L, 3, "string, file or function");
  }
  if (!lines) {
    lua_Integer bs = luaL_optinteger(L, 4, 8192);
    lua_Integer rest = luaL_optinteger(L, 6, 0);
    if (bs < 1 || bs > 64 * 1024 * 1024) { ftp_xfer_free(L, &x); luaL_argerror(L, 4, "blocksize out of range"); }
    if (rest < 0) { ftp_xfer_free(L, &x); luaL_argerror(L, 6, "negative rest"); }
    x.blocksize = (size_t)bs;
    if (rest > 0) { o.rest = rest; o.append = 1; o.insize = -1; }
  } else x.blocksize = 8192;
  if (!lua_isnoneornil(L, cbarg)) {
    lua_pushvalue(L, cbarg);
    x.cbref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  abs = ftp_push_abspath(L, s, arg);
  ftp_push_url(L, s, abs, 0);
  set_xlabel(L, s, fname, lines ? 5 : 7);
  if (ftp_raw_needed(abs))  /* libcurl refuses the path */
    return ftp_raw_run(L, s, o.append ? RAW_APPE : RAW_STOR, abs, &x, o.rest);
  return run_xfer(L, s, &x, &o, finish_xfer, fname);
}

int nl_ftp_storbinary(lua_State *L) { return do_stor(L, 0); }

int nl_ftp_storlines(lua_State *L) { return do_stor(L, 1); }

static int finish_size(lua_State *L, ftp_sess *s, CURLcode rc);

/* s:size(name) -> bytes, as curl asks: TYPE I, SIZE. */
int nl_ftp_size(lua_State *L) {
  ftp_sess *s = ftp_check_sess(L);
  xfer x;
  xsetup o;
  const char *abs;
  ftp_check_clean(L, 2, "name");
  ftp_check_logged(L, s);
  memset(&o, 0, sizeof o);
  xfer_init(&x, s);
  o.nobody = 1;
  abs = ftp_push_abspath(L, s, lua_tostring(L, 2));
  ftp_push_url(L, s, abs, 0);
  lua_pushfstring(L, "size %s", lua_tostring(L, 2));
  ftp_setstr(&s->label, lua_tostring(L, -1));
  lua_pop(L, 1);
  if (ftp_raw_needed(abs)) return ftp_raw_run(L, s, RAW_SIZE, abs, &x, 0);
  return run_xfer(L, s, &x, &o, finish_size, "size");
}

static int finish_size(lua_State *L, ftp_sess *s, CURLcode rc) {
  curl_off_t len = -1;
  if (rc != CURLE_OK) return ftp_error(L, s, rc, NULL, "size");
  curl_easy_getinfo(s->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len);
  if (len < 0) {
    if (s->last.code >= 400) return ftp_error(L, s, CURLE_REMOTE_FILE_NOT_FOUND, NULL, "size");
    return nl_pushfailcode(L, "protocol", "size: the server gave no size");
  }
  lua_pushinteger(L, (lua_Integer)len);
  return 1;
}
