/*
 * sftp_proto.c - the SFTP version 3 codec (see the header).
 *
 * Every packet is built the same way: its fields are listed, their sizes
 * added up in 64 bits (so no 32-bit size_t can wrap), the total checked
 * against what a uint32 length can say, and only then is room taken in
 * the buffer and the bytes written.  A failed encode leaves the buffer as
 * it was.  Decoding reads through a cursor whose every step checks the
 * bytes left first, so a length near 2^32 is only ever compared, never
 * added to a pointer.
 * This file is no place for sockets or Lua.
 */
#include <stdlib.h>
#include <string.h>

#include "sftp_proto.h"

/* ---- output buffer ------------------------------------------------------ */

/* An emptied buffer above this size is given back, so one large write
 * does not pin its memory for the rest of a session. */
#define BUF_KEEP (1024 * 1024)

void sfp_buf_init(sfp_buf *b) {
  b->data = NULL;
  b->start = b->len = b->cap = 0;
}

void sfp_buf_free(sfp_buf *b) {
  free(b->data);
  sfp_buf_init(b);
}

unsigned char *sfp_buf_reserve(sfp_buf *b, size_t n) {
  size_t need, cap;
  unsigned char *q;
  if (b->data != NULL && n <= b->cap - b->start - b->len)
    return b->data + b->start + b->len;
  if (n > SIZE_MAX - b->len) return NULL;
  need = b->len + n;
  if (b->data != NULL && need <= b->cap) {
    /* the room is there, behind the bytes already sent */
    memmove(b->data, b->data + b->start, b->len);
    b->start = 0;
    return b->data + b->len;
  }
  cap = b->cap ? b->cap : 256;
  while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  if (b->start > 0) {
    /* move first: realloc would copy the sent bytes too */
    memmove(b->data, b->data + b->start, b->len);
    b->start = 0;
  }
  q = (unsigned char *)realloc(b->data, cap);
  if (q == NULL) return NULL;
  b->data = q;
  b->cap = cap;
  return b->data + b->len;
}

void sfp_buf_commit(sfp_buf *b, size_t n) {
  b->len += n;
}

void sfp_buf_consume(sfp_buf *b, size_t n) {
  if (n >= b->len) {
    b->start = b->len = 0;
    if (b->cap > BUF_KEEP) sfp_buf_free(b);
    return;
  }
  b->start += n;
  b->len -= n;
}

/* ---- encoding ------------------------------------------------------------- */

static void put32(unsigned char *q, uint32_t v) {
  q[0] = (unsigned char)(v >> 24);
  q[1] = (unsigned char)(v >> 16);
  q[2] = (unsigned char)(v >> 8);
  q[3] = (unsigned char)v;
}

static void put64(unsigned char *q, uint64_t v) {
  put32(q, (uint32_t)(v >> 32));
  put32(q + 4, (uint32_t)v);
}

/* whether n bytes are more than a uint32 length can say: never with a
 * 32-bit size_t (and the compiler would say the test is always false) */
#if SIZE_MAX > UINT32_MAX
#define OVER32(n) ((n) > (size_t)UINT32_MAX)
#else
#define OVER32(n) 0
#endif

/* the kinds of field a request is made of */
enum { F_U32, F_U64, F_STR, F_HANDLE, F_RAW, F_ATTRS };

typedef struct field {
  int kind;
  const void *p;           /* F_STR, F_HANDLE, F_RAW */
  size_t n;
  uint64_t v;              /* F_U32, F_U64 */
  const sfp_attrs *a;      /* F_ATTRS; NULL: none */
} field;

/* the attribute flags an encoder sends: extended pairs are never kept,
 * so there are none to send, and an unknown bit would make the peer look
 * for fields we do not know how to write */
#define ATTR_SENT (SFP_ATTR_SIZE | SFP_ATTR_UIDGID | SFP_ATTR_PERMISSIONS | \
                   SFP_ATTR_ACMODTIME)

static uint64_t attrs_size(const sfp_attrs *a) {
  uint32_t f = a ? a->flags & ATTR_SENT : 0;
  uint64_t n = 4;
  if (f & SFP_ATTR_SIZE) n += 8;
  if (f & SFP_ATTR_UIDGID) n += 8;
  if (f & SFP_ATTR_PERMISSIONS) n += 4;
  if (f & SFP_ATTR_ACMODTIME) n += 8;
  return n;
}

static unsigned char *put_attrs(unsigned char *q, const sfp_attrs *a) {
  uint32_t f = a ? a->flags & ATTR_SENT : 0;
  put32(q, f);
  q += 4;
  if (f & SFP_ATTR_SIZE) { put64(q, a->size); q += 8; }
  if (f & SFP_ATTR_UIDGID) { put32(q, a->uid); put32(q + 4, a->gid); q += 8; }
  if (f & SFP_ATTR_PERMISSIONS) { put32(q, a->permissions); q += 4; }
  if (f & SFP_ATTR_ACMODTIME) { put32(q, a->atime); put32(q + 4, a->mtime); q += 8; }
  return q;
}

/* Appends the packet type, u32 (the id, or INIT's version), fields. */
static int emit(sfp_buf *b, int type, uint32_t u, const field *f, int nf) {
  uint64_t body = 5;   /* type, id */
  unsigned char *q;
  int i;
  for (i = 0; i < nf; i++) {
    switch (f[i].kind) {
      case F_U32: body += 4; break;
      case F_U64: body += 8; break;
      case F_HANDLE:
        if (f[i].n > SFP_HANDLE_MAX) return SFP_E_TOOBIG;
        /* fall through */
      case F_STR:
        if (OVER32(f[i].n)) return SFP_E_TOOBIG;
        body += 4 + (uint64_t)f[i].n;
        break;
      case F_RAW:
        if (OVER32(f[i].n)) return SFP_E_TOOBIG;
        body += f[i].n;
        break;
      default: body += attrs_size(f[i].a); break;
    }
  }
  /* a handful of fields of < 2^32 bytes each cannot wrap 64 bits; the
   * total must fit the length field and, with it, a size_t */
  if (body > UINT32_MAX || body > (uint64_t)(SIZE_MAX - 4)) return SFP_E_TOOBIG;
  q = sfp_buf_reserve(b, (size_t)body + 4);
  if (q == NULL) return SFP_E_NOMEM;
  put32(q, (uint32_t)body);
  q[4] = (unsigned char)type;
  put32(q + 5, u);
  q += 9;
  for (i = 0; i < nf; i++) {
    switch (f[i].kind) {
      case F_U32: put32(q, (uint32_t)f[i].v); q += 4; break;
      case F_U64: put64(q, f[i].v); q += 8; break;
      case F_STR:
      case F_HANDLE:
        put32(q, (uint32_t)f[i].n);
        q += 4;
        /* fall through */
      case F_RAW:
        if (f[i].n) memcpy(q, f[i].p, f[i].n);
        q += f[i].n;
        break;
      default: q = put_attrs(q, f[i].a); break;
    }
  }
  sfp_buf_commit(b, (size_t)body + 4);
  return SFP_OK;
}

static field fstr(const void *p, size_t n) {
  field f;
  memset(&f, 0, sizeof f);
  f.kind = F_STR;
  f.p = p;
  f.n = n;
  return f;
}

static field fhandle(const void *p, size_t n) {
  field f = fstr(p, n);
  f.kind = F_HANDLE;
  return f;
}

static field fraw(const void *p, size_t n) {
  field f = fstr(p, n);
  f.kind = F_RAW;
  return f;
}

static field fnum(int kind, uint64_t v) {
  field f;
  memset(&f, 0, sizeof f);
  f.kind = kind;
  f.v = v;
  return f;
}

static field fattrs(const sfp_attrs *a) {
  field f;
  memset(&f, 0, sizeof f);
  f.kind = F_ATTRS;
  f.a = a;
  return f;
}

/* requests of one path, or of one handle */
static int one_path(sfp_buf *b, int type, uint32_t id, const void *p, size_t n) {
  field f[1];
  f[0] = fstr(p, n);
  return emit(b, type, id, f, 1);
}

static int one_handle(sfp_buf *b, int type, uint32_t id, const void *h, size_t n) {
  field f[1];
  f[0] = fhandle(h, n);
  return emit(b, type, id, f, 1);
}

static int two_paths(sfp_buf *b, int type, uint32_t id, const void *p1,
                     size_t n1, const void *p2, size_t n2) {
  field f[2];
  f[0] = fstr(p1, n1);
  f[1] = fstr(p2, n2);
  return emit(b, type, id, f, 2);
}

int sfp_req_init(sfp_buf *b, uint32_t version) {
  return emit(b, SFP_INIT, version, NULL, 0);
}

int sfp_req_open(sfp_buf *b, uint32_t id, const void *path, size_t plen,
                 uint32_t pflags, const sfp_attrs *attrs) {
  field f[3];
  f[0] = fstr(path, plen);
  f[1] = fnum(F_U32, pflags);
  f[2] = fattrs(attrs);
  return emit(b, SFP_OPEN, id, f, 3);
}

int sfp_req_close(sfp_buf *b, uint32_t id, const void *h, size_t hlen) {
  return one_handle(b, SFP_CLOSE, id, h, hlen);
}

int sfp_req_read(sfp_buf *b, uint32_t id, const void *h, size_t hlen,
                 uint64_t offset, uint32_t len) {
  field f[3];
  f[0] = fhandle(h, hlen);
  f[1] = fnum(F_U64, offset);
  f[2] = fnum(F_U32, len);
  return emit(b, SFP_READ, id, f, 3);
}

int sfp_req_write(sfp_buf *b, uint32_t id, const void *h, size_t hlen,
                  uint64_t offset, const void *data, size_t dlen) {
  field f[3];
  f[0] = fhandle(h, hlen);
  f[1] = fnum(F_U64, offset);
  f[2] = fstr(data, dlen);
  return emit(b, SFP_WRITE, id, f, 3);
}

int sfp_req_lstat(sfp_buf *b, uint32_t id, const void *path, size_t plen) {
  return one_path(b, SFP_LSTAT, id, path, plen);
}

int sfp_req_stat(sfp_buf *b, uint32_t id, const void *path, size_t plen) {
  return one_path(b, SFP_STAT, id, path, plen);
}

int sfp_req_fstat(sfp_buf *b, uint32_t id, const void *h, size_t hlen) {
  return one_handle(b, SFP_FSTAT, id, h, hlen);
}

int sfp_req_setstat(sfp_buf *b, uint32_t id, const void *path, size_t plen,
                    const sfp_attrs *attrs) {
  field f[2];
  f[0] = fstr(path, plen);
  f[1] = fattrs(attrs);
  return emit(b, SFP_SETSTAT, id, f, 2);
}

int sfp_req_fsetstat(sfp_buf *b, uint32_t id, const void *h, size_t hlen,
                     const sfp_attrs *attrs) {
  field f[2];
  f[0] = fhandle(h, hlen);
  f[1] = fattrs(attrs);
  return emit(b, SFP_FSETSTAT, id, f, 2);
}

int sfp_req_opendir(sfp_buf *b, uint32_t id, const void *path, size_t plen) {
  return one_path(b, SFP_OPENDIR, id, path, plen);
}

int sfp_req_readdir(sfp_buf *b, uint32_t id, const void *h, size_t hlen) {
  return one_handle(b, SFP_READDIR, id, h, hlen);
}

int sfp_req_remove(sfp_buf *b, uint32_t id, const void *path, size_t plen) {
  return one_path(b, SFP_REMOVE, id, path, plen);
}

int sfp_req_mkdir(sfp_buf *b, uint32_t id, const void *path, size_t plen,
                  const sfp_attrs *attrs) {
  field f[2];
  f[0] = fstr(path, plen);
  f[1] = fattrs(attrs);
  return emit(b, SFP_MKDIR, id, f, 2);
}

int sfp_req_rmdir(sfp_buf *b, uint32_t id, const void *path, size_t plen) {
  return one_path(b, SFP_RMDIR, id, path, plen);
}

int sfp_req_realpath(sfp_buf *b, uint32_t id, const void *path, size_t plen) {
  return one_path(b, SFP_REALPATH, id, path, plen);
}

int sfp_req_rename(sfp_buf *b, uint32_t id, const void *oldp, size_t olen,
                   const void *newp, size_t nlen) {
  return two_paths(b, SFP_RENAME, id, oldp, olen, newp, nlen);
}

int sfp_req_readlink(sfp_buf *b, uint32_t id, const void *path, size_t plen) {
  return one_path(b, SFP_READLINK, id, path, plen);
}

int sfp_req_symlink(sfp_buf *b, uint32_t id, const void *target,
                    size_t tlen, const void *link, size_t llen) {
  /* OpenSSH's order, not the draft's: see the header */
  return two_paths(b, SFP_SYMLINK, id, target, tlen, link, llen);
}

int sfp_req_extended(sfp_buf *b, uint32_t id, const char *name,
                     size_t nlen, const void *payload, size_t plen) {
  field f[2];
  f[0] = fstr(name, nlen);
  f[1] = fraw(payload, plen);
  return emit(b, SFP_EXTENDED, id, f, 2);
}

/* an extended request whose payload is fields of its own */
static int ext(sfp_buf *b, uint32_t id, const char *name, field *f, int nf) {
  field all[3];
  int i;
  all[0] = fstr(name, strlen(name));
  for (i = 0; i < nf; i++) all[1 + i] = f[i];
  return emit(b, SFP_EXTENDED, id, all, 1 + nf);
}

int sfp_req_posix_rename(sfp_buf *b, uint32_t id, const void *oldp,
                         size_t olen, const void *newp, size_t nlen) {
  field f[2];
  f[0] = fstr(oldp, olen);
  f[1] = fstr(newp, nlen);
  return ext(b, id, "posix-rename@openssh.com", f, 2);
}

int sfp_req_hardlink(sfp_buf *b, uint32_t id, const void *oldp, size_t olen,
                     const void *newp, size_t nlen) {
  field f[2];
  f[0] = fstr(oldp, olen);
  f[1] = fstr(newp, nlen);
  return ext(b, id, "hardlink@openssh.com", f, 2);
}

int sfp_req_fsync(sfp_buf *b, uint32_t id, const void *h, size_t hlen) {
  field f[1];
  f[0] = fhandle(h, hlen);
  return ext(b, id, "fsync@openssh.com", f, 1);
}

int sfp_req_statvfs(sfp_buf *b, uint32_t id, const void *path, size_t plen) {
  field f[1];
  f[0] = fstr(path, plen);
  return ext(b, id, "statvfs@openssh.com", f, 1);
}

int sfp_req_fstatvfs(sfp_buf *b, uint32_t id, const void *h, size_t hlen) {
  field f[1];
  f[0] = fhandle(h, hlen);
  return ext(b, id, "fstatvfs@openssh.com", f, 1);
}

int sfp_req_limits(sfp_buf *b, uint32_t id) {
  return ext(b, id, "limits@openssh.com", NULL, 0);
}

int sfp_req_write_begin(sfp_buf *b, size_t hlen, size_t *mark) {
  size_t head = SFP_WRITE_HEADER(hlen);
  if (hlen > SFP_HANDLE_MAX) return SFP_E_TOOBIG;
  if (sfp_buf_reserve(b, head) == NULL) return SFP_E_NOMEM;
  *mark = b->len;
  /* the header's bytes are taken now and written by end, so the data
   * the caller appends lands right after them */
  sfp_buf_commit(b, head);
  return SFP_OK;
}

int sfp_req_write_end(sfp_buf *b, size_t mark, uint32_t id, const void *h,
                      size_t hlen, uint64_t offset) {
  size_t head = SFP_WRITE_HEADER(hlen), dlen;
  unsigned char *q;
  if (hlen > SFP_HANDLE_MAX || mark > b->len || b->len - mark < head)
    return SFP_E_LENGTH;   /* not what begin reserved */
  dlen = b->len - mark - head;
  if ((uint64_t)(head - 4) + dlen > UINT32_MAX) {
    b->len = mark;
    return SFP_E_TOOBIG;
  }
  q = sfp_buf_head(b) + mark;
  put32(q, (uint32_t)(head - 4 + dlen));
  q[4] = SFP_WRITE;
  put32(q + 5, id);
  put32(q + 9, (uint32_t)hlen);
  if (hlen) memcpy(q + 13, h, hlen);
  q += 13 + hlen;
  put64(q, offset);
  put32(q + 8, (uint32_t)dlen);
  return SFP_OK;
}

/* ---- decoding ------------------------------------------------------------- */

/* what is left of the bytes being decoded */
typedef struct rd {
  const unsigned char *p;
  size_t n;
} rd;

static uint32_t be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
         (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static uint64_t be64(const unsigned char *p) {
  return (uint64_t)be32(p) << 32 | be32(p + 4);
}

static int get_u32(rd *r, uint32_t *v) {
  if (r->n < 4) return SFP_E_SHORT;
  *v = be32(r->p);
  r->p += 4;
  r->n -= 4;
  return SFP_OK;
}

static int get_u64(rd *r, uint64_t *v) {
  if (r->n < 8) return SFP_E_SHORT;
  *v = be64(r->p);
  r->p += 8;
  r->n -= 8;
  return SFP_OK;
}

static int get_str(rd *r, sfp_span *s) {
  uint32_t len;
  if (get_u32(r, &len) != SFP_OK) return SFP_E_SHORT;
  /* compared with what is left before any pointer moves by it */
  if (len > r->n) return SFP_E_SHORT;
  s->p = r->p;
  s->n = len;
  r->p += len;
  r->n -= len;
  return SFP_OK;
}

static int get_handle(rd *r, sfp_span *s) {
  int e = get_str(r, s);
  if (e == SFP_OK && s->n > SFP_HANDLE_MAX) return SFP_E_HANDLE;
  return e;
}

/* the rest of the bytes, as one span */
static void get_rest(rd *r, sfp_span *s) {
  s->p = r->p;
  s->n = r->n;
  r->p += r->n;
  r->n = 0;
}

static int get_attrs(rd *r, sfp_attrs *a) {
  uint32_t i;
  int e;
  memset(a, 0, sizeof *a);
  if ((e = get_u32(r, &a->flags)) != SFP_OK) return e;
  if (a->flags & ~SFP_ATTR_KNOWN) return SFP_E_ATTRS;
  if (a->flags & SFP_ATTR_SIZE)
    if ((e = get_u64(r, &a->size)) != SFP_OK) return e;
  if (a->flags & SFP_ATTR_UIDGID) {
    if ((e = get_u32(r, &a->uid)) != SFP_OK) return e;
    if ((e = get_u32(r, &a->gid)) != SFP_OK) return e;
  }
  if (a->flags & SFP_ATTR_PERMISSIONS)
    if ((e = get_u32(r, &a->permissions)) != SFP_OK) return e;
  if (a->flags & SFP_ATTR_ACMODTIME) {
    if ((e = get_u32(r, &a->atime)) != SFP_OK) return e;
    if ((e = get_u32(r, &a->mtime)) != SFP_OK) return e;
  }
  if (a->flags & SFP_ATTR_EXTENDED) {
    /* skipped: the count is the peer's word, but every pair takes at
     * least 8 bytes, so a count past the packet stops at its end */
    if ((e = get_u32(r, &a->nextended)) != SFP_OK) return e;
    for (i = 0; i < a->nextended; i++) {
      sfp_span k, v;
      if (r->n < 8) return SFP_E_SHORT;
      if ((e = get_str(r, &k)) != SFP_OK) return e;
      if ((e = get_str(r, &v)) != SFP_OK) return e;
    }
  }
  return SFP_OK;
}

int sfp_frame(const unsigned char *p, size_t n, size_t max, size_t *size) {
  uint32_t len;
  if (n < 4) {
    *size = 4 - n;
    return 0;
  }
  len = be32(p);
  if (max == 0) max = SFP_MAX_PACKET;
  if (len == 0 || len > max) return SFP_E_LENGTH;
#if SIZE_MAX <= UINT32_MAX
  /* a 32-bit size_t: with a max near SIZE_MAX, 4 + len could wrap */
  if (len > SIZE_MAX - 4) return SFP_E_LENGTH;
#endif
  if (n - 4 < len) {
    *size = len - (n - 4);
    return 0;
  }
  *size = (size_t)len + 4;
  return 1;
}

void sfp_name_begin(const sfp_packet *pk, sfp_iter *it) {
  it->p = pk->names.p;
  it->n = pk->names.n;
  it->left = pk->type == SFP_NAME ? pk->count : 0;
}

int sfp_name_next(sfp_iter *it, sfp_name *e) {
  rd r;
  int err;
  if (it->left == 0) return 0;
  if (it->n == 0) {
    err = SFP_E_COUNT;
  } else {
    r.p = it->p;
    r.n = it->n;
    if ((err = get_str(&r, &e->filename)) == SFP_OK &&
        (err = get_str(&r, &e->longname)) == SFP_OK &&
        (err = get_attrs(&r, &e->attrs)) == SFP_OK) {
      it->p = r.p;
      it->n = r.n;
      it->left--;
      return 1;
    }
  }
  /* malformed: nothing more is read from these bytes */
  it->left = 0;
  it->n = 0;
  return err;
}

void sfp_ext_begin(const sfp_packet *pk, sfp_iter *it) {
  it->p = pk->ext.p;
  it->n = pk->ext.n;
  it->left = 0;
}

int sfp_ext_next(sfp_iter *it, sfp_span *name, sfp_span *data) {
  rd r;
  if (it->n == 0) return 0;
  r.p = it->p;
  r.n = it->n;
  if (get_str(&r, name) != SFP_OK || get_str(&r, data) != SFP_OK) {
    it->n = 0;
    return SFP_E_SHORT;
  }
  it->p = r.p;
  it->n = r.n;
  return 1;
}

/* Walks a whole NAME or extension list once, so that the caller's own
 * walk (which may be building tables as it goes) meets no error half way.
 * The count is the peer's word: the walk ends at the packet's end, and as
 * every entry takes 12 bytes at least (two empty strings, flags 0), it
 * runs at most size / 12 times whatever the count says. */
static int check_names(const sfp_packet *pk) {
  sfp_iter it;
  sfp_name e;
  int k;
  sfp_name_begin(pk, &it);
  while ((k = sfp_name_next(&it, &e)) == 1) {}
  return k;
}

static int check_exts(const sfp_packet *pk) {
  sfp_iter it;
  sfp_span k, v;
  int e;
  sfp_ext_begin(pk, &it);
  while ((e = sfp_ext_next(&it, &k, &v)) == 1) {}
  return e;
}

int sfp_decode(const unsigned char *p, size_t size, sfp_packet *pk) {
  rd r;
  int e = SFP_OK;
  memset(pk, 0, sizeof *pk);
  if (size < 5 || be32(p) != size - 4) return SFP_E_LENGTH;
  r.p = p + 5;
  r.n = size - 5;
  pk->type = p[4];
  switch (pk->type) {
    case SFP_INIT:
    case SFP_VERSION:
      if ((e = get_u32(&r, &pk->version)) != SFP_OK) return e;
      get_rest(&r, &pk->ext);
      return check_exts(pk);
    case SFP_OPEN: case SFP_CLOSE: case SFP_READ: case SFP_WRITE:
    case SFP_LSTAT: case SFP_FSTAT: case SFP_SETSTAT: case SFP_FSETSTAT:
    case SFP_OPENDIR: case SFP_READDIR: case SFP_REMOVE: case SFP_MKDIR:
    case SFP_RMDIR: case SFP_REALPATH: case SFP_STAT: case SFP_RENAME:
    case SFP_READLINK: case SFP_SYMLINK: case SFP_STATUS: case SFP_HANDLE:
    case SFP_DATA: case SFP_NAME: case SFP_ATTRS: case SFP_EXTENDED:
    case SFP_EXTENDED_REPLY:
      break;
    default:
      return SFP_E_TYPE;
  }
  if ((e = get_u32(&r, &pk->id)) != SFP_OK) return e;
  switch (pk->type) {
    case SFP_OPEN:
      if ((e = get_str(&r, &pk->path)) == SFP_OK &&
          (e = get_u32(&r, &pk->pflags)) == SFP_OK)
        e = get_attrs(&r, &pk->attrs);
      break;
    case SFP_CLOSE: case SFP_FSTAT: case SFP_READDIR: case SFP_HANDLE:
      e = get_handle(&r, &pk->handle);
      break;
    case SFP_READ:
      if ((e = get_handle(&r, &pk->handle)) == SFP_OK &&
          (e = get_u64(&r, &pk->offset)) == SFP_OK)
        e = get_u32(&r, &pk->length);
      break;
    case SFP_WRITE:
      if ((e = get_handle(&r, &pk->handle)) == SFP_OK &&
          (e = get_u64(&r, &pk->offset)) == SFP_OK)
        e = get_str(&r, &pk->data);
      break;
    case SFP_LSTAT: case SFP_STAT: case SFP_OPENDIR: case SFP_REMOVE:
    case SFP_RMDIR: case SFP_REALPATH: case SFP_READLINK:
      e = get_str(&r, &pk->path);
      break;
    case SFP_SETSTAT: case SFP_MKDIR:
      if ((e = get_str(&r, &pk->path)) == SFP_OK)
        e = get_attrs(&r, &pk->attrs);
      break;
    case SFP_FSETSTAT:
      if ((e = get_handle(&r, &pk->handle)) == SFP_OK)
        e = get_attrs(&r, &pk->attrs);
      break;
    case SFP_RENAME: case SFP_SYMLINK:
      if ((e = get_str(&r, &pk->path)) == SFP_OK)
        e = get_str(&r, &pk->path2);
      break;
    case SFP_STATUS:
      if ((e = get_u32(&r, &pk->code)) != SFP_OK) break;
      /* versions before 3 sent the code alone; a server that still does
       * is understood, with an empty message and language */
      pk->message.p = pk->language.p = r.p;
      if (r.n > 0 && (e = get_str(&r, &pk->message)) == SFP_OK) {
        pk->language.p = r.p;
        if (r.n > 0) e = get_str(&r, &pk->language);
      }
      break;
    case SFP_DATA:
      e = get_str(&r, &pk->data);
      break;
    case SFP_NAME:
      if ((e = get_u32(&r, &pk->count)) != SFP_OK) break;
      get_rest(&r, &pk->names);
      e = check_names(pk);
      break;
    case SFP_ATTRS:
      e = get_attrs(&r, &pk->attrs);
      break;
    case SFP_EXTENDED:
      if ((e = get_str(&r, &pk->ext_name)) == SFP_OK) get_rest(&r, &pk->payload);
      break;
    default: /* SFP_EXTENDED_REPLY */
      get_rest(&r, &pk->payload);
      break;
  }
  return e;
}

int sfp_decode_limits(const unsigned char *p, size_t n, sfp_limits *l) {
  if (n < 32) return SFP_E_SHORT;
  l->max_packet = be64(p);
  l->max_read = be64(p + 8);
  l->max_write = be64(p + 16);
  l->max_handles = be64(p + 24);
  return SFP_OK;
}

int sfp_decode_statvfs(const unsigned char *p, size_t n, sfp_statvfs *s) {
  uint64_t v[11];
  int i;
  if (n < 88) return SFP_E_SHORT;
  for (i = 0; i < 11; i++) v[i] = be64(p + 8 * i);
  s->bsize = v[0];
  s->frsize = v[1];
  s->blocks = v[2];
  s->bfree = v[3];
  s->bavail = v[4];
  s->files = v[5];
  s->ffree = v[6];
  s->favail = v[7];
  s->fsid = v[8];
  s->flag = v[9];
  s->namemax = v[10];
  return SFP_OK;
}

/* ---- names ---------------------------------------------------------------- */

const char *sfp_type_name(int type) {
  static const char *const low[] = {
    NULL, "init", "version", "open", "close", "read", "write", "lstat",
    "fstat", "setstat", "fsetstat", "opendir", "readdir", "remove", "mkdir",
    "rmdir", "realpath", "stat", "rename", "readlink", "symlink"
  };
  static const char *const high[] = {
    "status", "handle", "data", "name", "attrs"
  };
  if (type >= 1 && type <= SFP_SYMLINK) return low[type];
  if (type >= SFP_STATUS && type <= SFP_ATTRS) return high[type - SFP_STATUS];
  if (type == SFP_EXTENDED) return "extended";
  if (type == SFP_EXTENDED_REPLY) return "extended_reply";
  return NULL;
}

const char *sfp_status_name(uint32_t code) {
  static const char *const names[] = {
    "ok", "eof", "no_such_file", "permission_denied", "failure",
    "bad_message", "no_connection", "connection_lost", "op_unsupported"
  };
  return code <= SFP_FX_OP_UNSUPPORTED ? names[code] : NULL;
}

const char *sfp_strerror(int err) {
  switch (err) {
    case SFP_OK: return "no error";
    case SFP_E_NOMEM: return "out of memory";
    case SFP_E_TOOBIG: return "field too long";
    case SFP_E_LENGTH: return "bad packet length";
    case SFP_E_SHORT: return "field runs past the end of the packet";
    case SFP_E_COUNT: return "NAME count larger than its entries";
    case SFP_E_TYPE: return "unknown packet type";
    case SFP_E_HANDLE: return "handle longer than 256 bytes";
    case SFP_E_ATTRS: return "unknown attribute flags";
    default: return "unknown error";
  }
}
