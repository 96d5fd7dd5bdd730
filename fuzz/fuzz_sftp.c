/*
 * fuzz_sftp.c - libFuzzer target for the SFTP codec (sftp_proto.c).
 *
 * Input: one byte of configuration, then bytes a server (or client)
 * sends.  Checks, beyond the sanitizers:
 *  - framing: a packet is never longer than the bytes or the max; every
 *    shorter prefix of it asks for exactly the bytes still missing;
 *  - every packet is decoded from a copy of exactly its bytes (ASan sees
 *    any read past it), every span of the result lies inside it;
 *  - a NAME that decodes walks exactly its count of entries, a VERSION's
 *    extensions walk to the end; neither walk fails after an SFP_OK;
 *  - an EXTENDED_REPLY goes through the limits and statvfs decoders;
 *  - a request that decodes, encoded again from its fields, gives its own
 *    bytes back (up to bytes after the last field, which decode ignores);
 *  - the same bytes also drive the encoders: each request built from them
 *    frames as one packet of exactly its size and decodes to the fields it
 *    was built from; a WRITE built in place equals one built by copy.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sftp_proto.h"

static const unsigned char *lo, *hi;   /* the packet being checked */

static void inside(const sfp_span *s) {
  if (s->p == NULL) {
    if (s->n != 0) abort();
    return;
  }
  if (s->p < lo || s->p > hi || s->n > (size_t)(hi - s->p)) abort();
}

static int same(const sfp_span *s, const void *p, size_t n) {
  return s->p != NULL && s->n == n && (n == 0 || memcmp(s->p, p, n) == 0);
}

static void check_attrs(const sfp_attrs *a) {
  if (a->flags & ~SFP_ATTR_KNOWN) abort();
  if (!(a->flags & SFP_ATTR_EXTENDED) && a->nextended) abort();
}

/* Encodes a decoded request again from its fields: SFP_OK and the bytes
 * in b, or -100 for types this does not rebuild. */
static int reencode(const sfp_packet *pk, sfp_buf *b) {
  const sfp_attrs *a = &pk->attrs;
  switch (pk->type) {
    case SFP_INIT:
      return pk->ext.n == 0 ? sfp_req_init(b, pk->version) : -100;
    case SFP_OPEN:
      return sfp_req_open(b, pk->id, pk->path.p, pk->path.n, pk->pflags, a);
    case SFP_CLOSE: return sfp_req_close(b, pk->id, pk->handle.p, pk->handle.n);
    case SFP_READ:
      return sfp_req_read(b, pk->id, pk->handle.p, pk->handle.n, pk->offset, pk->length);
    case SFP_WRITE:
      return sfp_req_write(b, pk->id, pk->handle.p, pk->handle.n, pk->offset,
                           pk->data.p, pk->data.n);
    case SFP_LSTAT: return sfp_req_lstat(b, pk->id, pk->path.p, pk->path.n);
    case SFP_FSTAT: return sfp_req_fstat(b, pk->id, pk->handle.p, pk->handle.n);
    case SFP_SETSTAT: return sfp_req_setstat(b, pk->id, pk->path.p, pk->path.n, a);
    case SFP_FSETSTAT:
      return sfp_req_fsetstat(b, pk->id, pk->handle.p, pk->handle.n, a);
    case SFP_OPENDIR: return sfp_req_opendir(b, pk->id, pk->path.p, pk->path.n);
    case SFP_READDIR: return sfp_req_readdir(b, pk->id, pk->handle.p, pk->handle.n);
    case SFP_REMOVE: return sfp_req_remove(b, pk->id, pk->path.p, pk->path.n);
    case SFP_MKDIR: return sfp_req_mkdir(b, pk->id, pk->path.p, pk->path.n, a);
    case SFP_RMDIR: return sfp_req_rmdir(b, pk->id, pk->path.p, pk->path.n);
    case SFP_REALPATH: return sfp_req_realpath(b, pk->id, pk->path.p, pk->path.n);
    case SFP_STAT: return sfp_req_stat(b, pk->id, pk->path.p, pk->path.n);
    case SFP_RENAME:
      return sfp_req_rename(b, pk->id, pk->path.p, pk->path.n, pk->path2.p, pk->path2.n);
    case SFP_READLINK: return sfp_req_readlink(b, pk->id, pk->path.p, pk->path.n);
    case SFP_SYMLINK:
      /* wire order in, wire order out: target is the first path */
      return sfp_req_symlink(b, pk->id, pk->path.p, pk->path.n, pk->path2.p, pk->path2.n);
    case SFP_EXTENDED:
      return sfp_req_extended(b, pk->id, (const char *)pk->ext_name.p, pk->ext_name.n,
                              pk->payload.p, pk->payload.n);
    default:
      return -100;
  }
}

static int has_attrs(int type) {
  return type == SFP_OPEN || type == SFP_SETSTAT || type == SFP_FSETSTAT ||
         type == SFP_MKDIR || type == SFP_ATTRS;
}

/* One whole packet of size bytes (length field included) at p. */
static void check_packet(const unsigned char *p, size_t size) {
  sfp_packet pk;
  sfp_iter it;
  sfp_name e;
  sfp_span k, v;
  uint32_t walked = 0;
  int r;
  unsigned char *copy = malloc(size);
  if (copy == NULL) abort();
  memcpy(copy, p, size);
  lo = copy;
  hi = copy + size;
  r = sfp_decode(copy, size, &pk);
  if (r > 0 || r < SFP_E_ATTRS || r == SFP_E_NOMEM || r == SFP_E_TOOBIG) abort();
  if (r == SFP_E_LENGTH) abort();   /* framed: the length is right */
  if (r != SFP_OK) {
    free(copy);
    return;
  }
  if (sfp_type_name(pk.type) == NULL) abort();
  inside(&pk.ext);
  inside(&pk.message);
  inside(&pk.language);
  inside(&pk.handle);
  inside(&pk.data);
  inside(&pk.names);
  inside(&pk.path);
  inside(&pk.path2);
  inside(&pk.ext_name);
  inside(&pk.payload);
  if (pk.handle.n > SFP_HANDLE_MAX) abort();
  if (has_attrs(pk.type)) check_attrs(&pk.attrs);
  else if (pk.attrs.flags) abort();
  if (pk.type == SFP_STATUS && (pk.message.p == NULL || pk.language.p == NULL)) abort();

  /* NAME: exactly count entries, all inside, and no error */
  sfp_name_begin(&pk, &it);
  while ((r = sfp_name_next(&it, &e)) == 1) {
    inside(&e.filename);
    inside(&e.longname);
    check_attrs(&e.attrs);
    walked++;
  }
  if (r != 0) abort();
  if (pk.type == SFP_NAME ? walked != pk.count : walked != 0) abort();
  if (sfp_name_next(&it, &e) != 0) abort();   /* and it stays ended */

  /* extensions: to the end, no error */
  sfp_ext_begin(&pk, &it);
  while ((r = sfp_ext_next(&it, &k, &v)) == 1) {
    inside(&k);
    inside(&v);
    if (k.p + k.n > v.p) abort();
  }
  if (r != 0) abort();

  if (pk.type == SFP_EXTENDED_REPLY) {
    sfp_limits l;
    sfp_statvfs s;
    r = sfp_decode_limits(pk.payload.p, pk.payload.n, &l);
    if ((r == SFP_OK) != (pk.payload.n >= 32)) abort();
    r = sfp_decode_statvfs(pk.payload.p, pk.payload.n, &s);
    if ((r == SFP_OK) != (pk.payload.n >= 88)) abort();
  }

  /* a request rebuilt from its fields gives its bytes back: the whole
   * packet, but for bytes after the last field (the length then
   * differs) and attrs whose extended pairs the encoder does not send */
  if (!(has_attrs(pk.type) && (pk.attrs.flags & SFP_ATTR_EXTENDED))) {
    sfp_buf b;
    sfp_buf_init(&b);
    r = reencode(&pk, &b);
    if (r == SFP_OK) {
      if (b.len > size || b.len < 9) abort();
      if (memcmp(sfp_buf_head(&b) + 4, copy + 4, b.len - 4) != 0) abort();
      if (b.len == size && memcmp(sfp_buf_head(&b), copy, size) != 0) abort();
    } else if (r != -100) {
      abort();
    }
    sfp_buf_free(&b);
  }
  free(copy);
}

/* ---- the bytes as requests to encode -------------------------------------- */

typedef struct src {
  const unsigned char *p;
  size_t n;
} src;

static unsigned take8(src *s) {
  unsigned v;
  if (s->n == 0) return 0;
  v = s->p[0];
  s->p++;
  s->n--;
  return v;
}

static uint32_t take32(src *s) {
  uint32_t v = 0;
  int i;
  for (i = 0; i < 4; i++) v = v << 8 | take8(s);
  return v;
}

static uint64_t take64(src *s) {
  uint64_t v = take32(s);
  return v << 32 | take32(s);
}

/* a byte string of the input: length from one byte (0-255, or a longer
 * one when that byte is 255), cut at the input's end */
static const unsigned char *takestr(src *s, size_t *n) {
  const unsigned char *p;
  size_t len = take8(s);
  if (len == 255) len = (size_t)take8(s) * 64;
  if (len > s->n) len = s->n;
  p = s->p;
  s->p += len;
  s->n -= len;
  *n = len;
  return p;
}

static void take_attrs(src *s, sfp_attrs *a) {
  memset(a, 0, sizeof *a);
  a->flags = take32(s);   /* all bits: the encoder must drop the others */
  a->size = take64(s);
  a->uid = take32(s);
  a->gid = take32(s);
  a->permissions = take32(s);
  a->atime = take32(s);
  a->mtime = take32(s);
}

static void same_attrs(const sfp_attrs *got, const sfp_attrs *want) {
  uint32_t f = want->flags & (SFP_ATTR_SIZE | SFP_ATTR_UIDGID |
                              SFP_ATTR_PERMISSIONS | SFP_ATTR_ACMODTIME);
  if (got->flags != f) abort();
  if ((f & SFP_ATTR_SIZE) && got->size != want->size) abort();
  if ((f & SFP_ATTR_UIDGID) && (got->uid != want->uid || got->gid != want->gid)) abort();
  if ((f & SFP_ATTR_PERMISSIONS) && got->permissions != want->permissions) abort();
  if ((f & SFP_ATTR_ACMODTIME) && (got->atime != want->atime || got->mtime != want->mtime))
    abort();
}

static int ext_is(const sfp_packet *pk, const char *name) {
  return pk->type == SFP_EXTENDED && same(&pk->ext_name, name, strlen(name));
}

/* payload of an OpenSSH extension request: strings or a handle */
static void ext_strs(const sfp_packet *pk, const void *a, size_t an,
                     const void *b, size_t bn, int two) {
  const unsigned char *q = pk->payload.p;
  size_t n = pk->payload.n;
  uint32_t len;
  if (n < 4) abort();
  len = (uint32_t)q[0] << 24 | (uint32_t)q[1] << 16 | (uint32_t)q[2] << 8 | q[3];
  if (len != an || n < 4 + an || (an && memcmp(q + 4, a, an) != 0)) abort();
  q += 4 + an;
  n -= 4 + an;
  if (!two) {
    if (n != 0) abort();
    return;
  }
  if (n != 4 + bn || (bn && memcmp(q + 4, b, bn) != 0)) abort();
}

static void round_trip(src *s) {
  sfp_buf b;
  sfp_packet pk;
  sfp_attrs a;
  size_t n1, n2, size;
  const unsigned char *s1, *s2;
  unsigned kind = take8(s) % 27;
  uint32_t id = take32(s), u;
  uint64_t off = take64(s);
  int r, handle;
  take_attrs(s, &a);
  u = take32(s);
  s1 = takestr(s, &n1);
  s2 = takestr(s, &n2);
  sfp_buf_init(&b);
  /* bytes queued before, mostly sent, as a driver would have them: the
   * packet goes after them, and reserve may move them to the front */
  if (kind & 1) {
    unsigned char *q = sfp_buf_reserve(&b, 300);
    if (q == NULL) abort();
    memset(q, 0xee, 300);
    sfp_buf_commit(&b, 300);
    sfp_buf_consume(&b, 290);
  }
  switch (kind) {
    case 0: r = sfp_req_init(&b, id); break;
    case 1: r = sfp_req_open(&b, id, s1, n1, u, (u & 1) ? NULL : &a); break;
    case 2: r = sfp_req_close(&b, id, s1, n1); break;
    case 3: r = sfp_req_read(&b, id, s1, n1, off, u); break;
    case 4: r = sfp_req_write(&b, id, s1, n1, off, s2, n2); break;
    case 5: r = sfp_req_lstat(&b, id, s1, n1); break;
    case 6: r = sfp_req_stat(&b, id, s1, n1); break;
    case 7: r = sfp_req_fstat(&b, id, s1, n1); break;
    case 8: r = sfp_req_setstat(&b, id, s1, n1, &a); break;
    case 9: r = sfp_req_fsetstat(&b, id, s1, n1, &a); break;
    case 10: r = sfp_req_opendir(&b, id, s1, n1); break;
    case 11: r = sfp_req_readdir(&b, id, s1, n1); break;
    case 12: r = sfp_req_remove(&b, id, s1, n1); break;
    case 13: r = sfp_req_mkdir(&b, id, s1, n1, &a); break;
    case 14: r = sfp_req_rmdir(&b, id, s1, n1); break;
    case 15: r = sfp_req_realpath(&b, id, s1, n1); break;
    case 16: r = sfp_req_rename(&b, id, s1, n1, s2, n2); break;
    case 17: r = sfp_req_readlink(&b, id, s1, n1); break;
    case 18: r = sfp_req_symlink(&b, id, s1, n1, s2, n2); break;
    case 19: r = sfp_req_extended(&b, id, (const char *)s1, n1, s2, n2); break;
    case 20: r = sfp_req_posix_rename(&b, id, s1, n1, s2, n2); break;
    case 21: r = sfp_req_hardlink(&b, id, s1, n1, s2, n2); break;
    case 22: r = sfp_req_fsync(&b, id, s1, n1); break;
    case 23: r = sfp_req_statvfs(&b, id, s1, n1); break;
    case 24: r = sfp_req_fstatvfs(&b, id, s1, n1); break;
    case 25: r = sfp_req_limits(&b, id); break;
    default: {
      /* WRITE in place, against WRITE by copy */
      size_t mark;
      sfp_buf c;
      unsigned char *q;
      r = sfp_req_write_begin(&b, n1, &mark);
      if (r == SFP_OK) {
        if (n2 && (q = sfp_buf_reserve(&b, n2)) == NULL) abort();
        if (n2) {
          memcpy(q, s2, n2);
          sfp_buf_commit(&b, n2);
        }
        r = sfp_req_write_end(&b, mark, id, s1, n1, off);
      }
      sfp_buf_init(&c);
      if (sfp_req_write(&c, id, s1, n1, off, s2, n2) != r) abort();
      if (r == SFP_OK && (b.len != c.len || memcmp(sfp_buf_head(&b), sfp_buf_head(&c), b.len)))
        abort();
      sfp_buf_free(&c);
      break;
    }
  }
  if (kind & 1) {
    /* the earlier bytes are still there, before the packet */
    size_t i;
    if (b.len < 10) abort();
    for (i = 0; i < 10; i++)
      if (sfp_buf_head(&b)[i] != 0xee) abort();
    sfp_buf_consume(&b, 10);
  }
  /* the only failure possible here: a handle over 256 bytes */
  handle = kind == 2 || kind == 3 || kind == 4 || kind == 7 || kind == 9 ||
           kind == 11 || kind == 22 || kind == 24 || kind == 26;
  if (handle && n1 > SFP_HANDLE_MAX) {
    if (r != SFP_E_TOOBIG || b.len != 0) abort();   /* nothing left behind */
    sfp_buf_free(&b);
    return;
  }
  if (r != SFP_OK) abort();
  if (sfp_frame(sfp_buf_head(&b), b.len, UINT32_MAX, &size) != 1 || size != b.len) abort();
  if (sfp_decode(sfp_buf_head(&b), b.len, &pk) != SFP_OK) abort();
  switch (kind) {
    case 0:
      if (pk.type != SFP_INIT || pk.version != id || pk.ext.n) abort();
      break;
    case 1:
      if (pk.type != SFP_OPEN || !same(&pk.path, s1, n1) || pk.pflags != u) abort();
      if (u & 1) {
        if (pk.attrs.flags) abort();
      } else {
        same_attrs(&pk.attrs, &a);
      }
      break;
    case 2: case 7: case 11:
      if (pk.type != (kind == 2 ? SFP_CLOSE : kind == 7 ? SFP_FSTAT : SFP_READDIR)) abort();
      if (!same(&pk.handle, s1, n1)) abort();
      break;
    case 3:
      if (pk.type != SFP_READ || !same(&pk.handle, s1, n1) || pk.offset != off ||
          pk.length != u)
        abort();
      break;
    case 4: case 26:
      if (pk.type != SFP_WRITE || !same(&pk.handle, s1, n1) || pk.offset != off ||
          !same(&pk.data, s2, n2))
        abort();
      break;
    case 5: case 6: case 10: case 12: case 14: case 15: case 17: {
      static const int t[] = {0, 0, 0, 0, 0, SFP_LSTAT, SFP_STAT, 0, 0, 0, SFP_OPENDIR,
                              0, SFP_REMOVE, 0, SFP_RMDIR, SFP_REALPATH, 0, SFP_READLINK};
      if (pk.type != t[kind] || !same(&pk.path, s1, n1)) abort();
      break;
    }
    case 8: case 13:
      if (pk.type != (kind == 8 ? SFP_SETSTAT : SFP_MKDIR) || !same(&pk.path, s1, n1)) abort();
      same_attrs(&pk.attrs, &a);
      break;
    case 9:
      if (pk.type != SFP_FSETSTAT || !same(&pk.handle, s1, n1)) abort();
      same_attrs(&pk.attrs, &a);
      break;
    case 16: case 18:
      if (pk.type != (kind == 16 ? SFP_RENAME : SFP_SYMLINK)) abort();
      if (!same(&pk.path, s1, n1) || !same(&pk.path2, s2, n2)) abort();
      break;
    case 19:
      if (pk.type != SFP_EXTENDED || !same(&pk.ext_name, s1, n1) ||
          !same(&pk.payload, s2, n2))
        abort();
      break;
    case 20: case 21:
      if (!ext_is(&pk, kind == 20 ? "posix-rename@openssh.com" : "hardlink@openssh.com"))
        abort();
      ext_strs(&pk, s1, n1, s2, n2, 1);
      break;
    case 22: case 23: case 24:
      if (!ext_is(&pk, kind == 22 ? "fsync@openssh.com"
                       : kind == 23 ? "statvfs@openssh.com" : "fstatvfs@openssh.com"))
        abort();
      ext_strs(&pk, s1, n1, NULL, 0, 0);
      break;
    case 25:
      if (!ext_is(&pk, "limits@openssh.com") || pk.payload.n != 0) abort();
      break;
    default:
      break;
  }
  if (pk.type != SFP_INIT && pk.id != id) abort();
  sfp_buf_free(&b);
}

/* ---- the bytes as replies to build ----------------------------------------
 * Replies have no encoder in the codec (a client sends none): they are
 * built here by hand, so that a decoder refusing good packets shows too. */

typedef struct out {
  unsigned char b[16384];   /* the largest reply built below fits */
  size_t n;
} out;

static void o8(out *o, unsigned v) {
  if (o->n >= sizeof o->b) abort();
  o->b[o->n++] = (unsigned char)v;
}

static void o32(out *o, uint32_t v) {
  o8(o, v >> 24);
  o8(o, (v >> 16) & 255);
  o8(o, (v >> 8) & 255);
  o8(o, v & 255);
}

static void o64(out *o, uint64_t v) {
  o32(o, (uint32_t)(v >> 32));
  o32(o, (uint32_t)v);
}

static void ostr(out *o, const unsigned char *p, size_t n) {
  o32(o, (uint32_t)n);
  if (o->n + n > sizeof o->b) abort();
  if (n) memcpy(o->b + o->n, p, n);
  o->n += n;
}

/* attrs with every flag the draft defines, extended pairs included */
static void oattrs(out *o, const sfp_attrs *a, uint32_t next) {
  uint32_t f = a->flags & SFP_ATTR_KNOWN, i;
  if (next == 0) f &= ~SFP_ATTR_EXTENDED;
  o32(o, f);
  if (f & SFP_ATTR_SIZE) o64(o, a->size);
  if (f & SFP_ATTR_UIDGID) { o32(o, a->uid); o32(o, a->gid); }
  if (f & SFP_ATTR_PERMISSIONS) o32(o, a->permissions);
  if (f & SFP_ATTR_ACMODTIME) { o32(o, a->atime); o32(o, a->mtime); }
  if (f & SFP_ATTR_EXTENDED) {
    o32(o, next);
    for (i = 0; i < next; i++) {
      ostr(o, (const unsigned char *)"k@x", 3);
      ostr(o, (const unsigned char *)"v", i & 1);
    }
  }
}

static void same_full_attrs(const sfp_attrs *got, const sfp_attrs *want, uint32_t next) {
  uint32_t f = want->flags & SFP_ATTR_KNOWN;
  if (next == 0) f &= ~SFP_ATTR_EXTENDED;
  if (got->flags != f) abort();
  if ((f & SFP_ATTR_SIZE) && got->size != want->size) abort();
  if ((f & SFP_ATTR_UIDGID) && (got->uid != want->uid || got->gid != want->gid)) abort();
  if ((f & SFP_ATTR_PERMISSIONS) && got->permissions != want->permissions) abort();
  if ((f & SFP_ATTR_ACMODTIME) && (got->atime != want->atime || got->mtime != want->mtime))
    abort();
  if (got->nextended != ((f & SFP_ATTR_EXTENDED) ? next : 0)) abort();
}

static void reply_trip(src *s) {
  static out o;
  sfp_packet pk;
  sfp_attrs a;
  sfp_iter it;
  sfp_name e;
  sfp_span k, v;
  size_t n1, n2, size;
  const unsigned char *s1, *s2;
  unsigned kind = take8(s) % 7, count, i;
  uint32_t id = take32(s), code = take32(s), next = take8(s) % 4;
  int r;
  take_attrs(s, &a);
  s1 = takestr(s, &n1);
  s2 = takestr(s, &n2);
  if (n1 > SFP_HANDLE_MAX) n1 = SFP_HANDLE_MAX;
  if (n2 > 2048) n2 = 2048;
  count = take8(s) % 5;
  o.n = 0;
  o32(&o, 0);   /* the length, set below */
  switch (kind) {
    case 0:
      o8(&o, SFP_VERSION);
      o32(&o, id);
      for (i = 0; i < count; i++) {
        ostr(&o, s1, n1 >> i);
        ostr(&o, s2, n2 >> i);
      }
      break;
    case 1:
      o8(&o, SFP_STATUS);
      o32(&o, id);
      o32(&o, code);
      /* count 0: the code alone, as versions before 3 sent it */
      if (count) {
        ostr(&o, s1, n1);
        if (count > 1) ostr(&o, s2, n2);
      }
      break;
    case 2: o8(&o, SFP_HANDLE); o32(&o, id); ostr(&o, s1, n1); break;
    case 3: o8(&o, SFP_DATA); o32(&o, id); ostr(&o, s2, n2); break;
    case 4:
      o8(&o, SFP_NAME);
      o32(&o, id);
      o32(&o, count);
      for (i = 0; i < count; i++) {
        ostr(&o, s1, n1 >> i);
        ostr(&o, s2, n2 >> i);
        oattrs(&o, &a, next);
      }
      break;
    case 5: o8(&o, SFP_ATTRS); o32(&o, id); oattrs(&o, &a, next); break;
    default:
      o8(&o, SFP_EXTENDED_REPLY);
      o32(&o, id);
      for (i = 0; i < 11; i++) o64(&o, a.size + i);
      break;
  }
  o.b[0] = (unsigned char)((o.n - 4) >> 24);
  o.b[1] = (unsigned char)((o.n - 4) >> 16);
  o.b[2] = (unsigned char)((o.n - 4) >> 8);
  o.b[3] = (unsigned char)(o.n - 4);
  if (sfp_frame(o.b, o.n, 0, &size) != 1 || size != o.n) abort();
  if (sfp_frame(o.b, o.n - 1, 0, &size) != 0 || size != 1) abort();
  if (sfp_decode(o.b, o.n, &pk) != SFP_OK) abort();
  if (kind == 0 ? pk.version != id : pk.id != id) abort();
  switch (kind) {
    case 0:
      if (pk.type != SFP_VERSION) abort();
      sfp_ext_begin(&pk, &it);
      for (i = 0; i < count; i++) {
        if (sfp_ext_next(&it, &k, &v) != 1) abort();
        if (!same(&k, s1, n1 >> i) || !same(&v, s2, n2 >> i)) abort();
      }
      if (sfp_ext_next(&it, &k, &v) != 0) abort();
      break;
    case 1:
      if (pk.type != SFP_STATUS || pk.code != code) abort();
      if (!same(&pk.message, s1, count ? n1 : 0)) abort();
      if (!same(&pk.language, s2, count > 1 ? n2 : 0)) abort();
      break;
    case 2:
      if (pk.type != SFP_HANDLE || !same(&pk.handle, s1, n1)) abort();
      break;
    case 3:
      if (pk.type != SFP_DATA || !same(&pk.data, s2, n2)) abort();
      break;
    case 4:
      if (pk.type != SFP_NAME || pk.count != count) abort();
      sfp_name_begin(&pk, &it);
      for (i = 0; i < count; i++) {
        if (sfp_name_next(&it, &e) != 1) abort();
        if (!same(&e.filename, s1, n1 >> i) || !same(&e.longname, s2, n2 >> i)) abort();
        same_full_attrs(&e.attrs, &a, next);
      }
      if (sfp_name_next(&it, &e) != 0) abort();
      /* one entry fewer than the count says: malformed, never a read past */
      if (count) {
        o.b[12] = (unsigned char)(count + 1);
        if (sfp_decode(o.b, o.n, &pk) != SFP_E_COUNT) abort();
      }
      break;
    case 5:
      if (pk.type != SFP_ATTRS) abort();
      same_full_attrs(&pk.attrs, &a, next);
      break;
    default: {
      sfp_limits l;
      sfp_statvfs st;
      if (pk.type != SFP_EXTENDED_REPLY || pk.payload.n != 88) abort();
      if (sfp_decode_limits(pk.payload.p, pk.payload.n, &l) != SFP_OK) abort();
      if (l.max_packet != a.size || l.max_handles != a.size + 3) abort();
      if (sfp_decode_statvfs(pk.payload.p, pk.payload.n, &st) != SFP_OK) abort();
      if (st.bsize != a.size || st.namemax != a.size + 10) abort();
      break;
    }
  }
  /* cut anywhere inside, with the length fixed to match: an error, or
   * (a STATUS losing its optional strings, a VERSION an extension, or
   * a reply its trailing bytes) a decode that stays inside */
  r = (int)(take8(s) % 64);
  if (r > 0 && (size_t)r < o.n - 5) {
    size_t cut = o.n - (size_t)r;
    o.b[0] = (unsigned char)((cut - 4) >> 24);
    o.b[1] = (unsigned char)((cut - 4) >> 16);
    o.b[2] = (unsigned char)((cut - 4) >> 8);
    o.b[3] = (unsigned char)(cut - 4);
    check_packet(o.b, cut);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const size_t maxes[] = {0, 16, 300, SFP_MAX_PACKET, UINT32_MAX};
  const unsigned char *p;
  size_t n, max, got;
  unsigned cfg;
  src s;
  if (size < 1) return 0;
  cfg = data[0];
  p = data + 1;
  n = size - 1;
  max = maxes[cfg % 5];

  /* the bytes as a stream of packets */
  while (n > 0) {
    size_t cut, need;
    int r = sfp_frame(p, n, max, &got);
    if (r < 0) {
      if (r != SFP_E_LENGTH || n < 4) abort();
      break;
    }
    if (r == 0) {
      if (got == 0) abort();
      break;
    }
    if (r != 1 || got < 5 || got > n || got - 4 > (max ? max : SFP_MAX_PACKET)) abort();
    /* a prefix of the packet asks for exactly what is missing */
    cut = (size_t)(cfg >> 3) * got / 32;
    if (sfp_frame(p, cut, max, &need) != 0) abort();
    if (need != (cut < 4 ? 4 - cut : got - cut)) abort();
    check_packet(p, got);
    p += got;
    n -= got;
  }

  /* the raw bytes as a packet of that size: framing decides nothing here */
  if (size > 1) {
    sfp_packet pk;
    unsigned char *copy = malloc(size - 1);
    int r;
    if (copy == NULL) abort();
    memcpy(copy, data + 1, size - 1);
    r = sfp_decode(copy, size - 1, &pk);
    if (r > 0 || r < SFP_E_ATTRS) abort();
    free(copy);
  }

  /* the bytes as requests to build */
  s.p = data + 1;
  s.n = size - 1;
  round_trip(&s);
  s.p = data + 1;
  s.n = size - 1;
  reply_trip(&s);
  return 0;
}
