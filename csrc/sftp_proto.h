/*
 * sftp_proto.h - the SFTP version 3 codec: requests to bytes, packets
 * from bytes.
 *
 * Version 3 is draft-ietf-secsh-filexfer-02, what OpenSSH's sftp-server
 * speaks (dropbear runs OpenSSH's sftp-server too), with OpenSSH's
 * extensions (its PROTOCOL file).  Pure functions: no I/O, no Lua, and
 * no allocation but the output buffer that encoders append to, so the
 * codec can be fuzzed on its own and driven over any channel by a layer
 * that reads and writes it.  Decoding never copies: every byte string of
 * a decoded packet (sfp_span) points into the caller's input, which must
 * outlive it.
 *
 * Names are sfp_ / SFP_, not sftp_ / SSH_FXP_: libssh's sftp.h uses
 * those, and the SSH layer may include both headers.
 *
 * Wire format (draft section 3): uint32 length (of what follows), byte
 * type, uint32 request id (INIT and VERSION carry the protocol version
 * there instead), then the fields of that type.  Integers are big
 * endian; a string is a uint32 length then that many bytes.
 *
 * What OpenSSH's sftp-server (9.2) does that the draft does not say, and
 * a driver must know (spec/sftp_codec_spec.lua pins the first four):
 *  - a READ over its max-read (256 KiB - 1 KiB) comes back short, not as
 *    an error: short DATA means "ask again", only STATUS EOF ends a file;
 *  - v3 has no "already exists": MKDIR of an existing folder, OPEN with
 *    CREAT|EXCL of an existing file, SYMLINK onto one are all FAILURE,
 *    and RENAME onto an existing file fails (posix-rename replaces it);
 *  - a handle used after its CLOSE is NO_SUCH_FILE;
 *  - SYMLINK's arguments are swapped (sfp_req_symlink below);
 *  - a truncated request or one over 256 KiB ends the server at once,
 *    with no STATUS BAD_MESSAGE; an unknown packet type gets no reply at
 *    all (it is only logged): a client must never count on an answer to
 *    what it should not have sent;
 *  - at EOF on its input it exits without answering the requests it had
 *    already read: a driver sends the channel's EOF only after the last
 *    reply came.
 */
#ifndef SFTP_PROTO_H
#define SFTP_PROTO_H

#include <stddef.h>
#include <stdint.h>

/* the protocol version this codec speaks */
#define SFP_PROTOCOL 3

/* packet types */
#define SFP_INIT            1
#define SFP_VERSION         2
#define SFP_OPEN            3
#define SFP_CLOSE           4
#define SFP_READ            5
#define SFP_WRITE           6
#define SFP_LSTAT           7
#define SFP_FSTAT           8
#define SFP_SETSTAT         9
#define SFP_FSETSTAT        10
#define SFP_OPENDIR         11
#define SFP_READDIR         12
#define SFP_REMOVE          13
#define SFP_MKDIR           14
#define SFP_RMDIR           15
#define SFP_REALPATH        16
#define SFP_STAT            17
#define SFP_RENAME          18
#define SFP_READLINK        19
#define SFP_SYMLINK         20
#define SFP_STATUS          101
#define SFP_HANDLE          102
#define SFP_DATA            103
#define SFP_NAME            104
#define SFP_ATTRS           105
#define SFP_EXTENDED        200
#define SFP_EXTENDED_REPLY  201

/* status codes (SFP_STATUS) */
#define SFP_FX_OK                 0
#define SFP_FX_EOF                1
#define SFP_FX_NO_SUCH_FILE       2
#define SFP_FX_PERMISSION_DENIED  3
#define SFP_FX_FAILURE            4
#define SFP_FX_BAD_MESSAGE        5
#define SFP_FX_NO_CONNECTION      6
#define SFP_FX_CONNECTION_LOST    7
#define SFP_FX_OP_UNSUPPORTED     8

/* open flags (pflags of SFP_OPEN) */
#define SFP_FXF_READ    0x01
#define SFP_FXF_WRITE   0x02
#define SFP_FXF_APPEND  0x04
#define SFP_FXF_CREAT   0x08
#define SFP_FXF_TRUNC   0x10
#define SFP_FXF_EXCL    0x20

/* attribute flags: which fields an attrs block carries */
#define SFP_ATTR_SIZE         0x00000001u
#define SFP_ATTR_UIDGID       0x00000002u
#define SFP_ATTR_PERMISSIONS  0x00000004u
#define SFP_ATTR_ACMODTIME    0x00000008u
#define SFP_ATTR_EXTENDED     0x80000000u
#define SFP_ATTR_KNOWN        0x8000000fu

/* f_flag bits of a statvfs@openssh.com reply */
#define SFP_STATVFS_RDONLY  0x1
#define SFP_STATVFS_NOSUID  0x2

/* The draft caps a handle at 256 bytes (OpenSSH's are 4). */
#define SFP_HANDLE_MAX 256
/* OpenSSH's sftp-server refuses packets over 256 KiB (SFTP_MAX_MSG_LENGTH)
 * and sends none larger: a DATA reply to a 256 KiB read still fits, as
 * its header takes the 1 KiB on top.  The default of sfp_frame's max. */
#define SFP_MAX_PACKET (256 * 1024 + 1024)

/* results; encoders return SFP_OK or an error, decoders too */
enum {
  SFP_OK = 0,
  SFP_E_NOMEM = -1,    /* the output buffer could not grow */
  SFP_E_TOOBIG = -2,   /* a field or packet of 2^32 bytes or more, or a
                        * handle over SFP_HANDLE_MAX */
  SFP_E_LENGTH = -3,   /* packet length 0 or over the caller's max */
  SFP_E_SHORT = -4,    /* a field runs past the end of the packet */
  SFP_E_COUNT = -5,    /* NAME: fewer entries than its count says */
  SFP_E_TYPE = -6,     /* unknown packet type */
  SFP_E_HANDLE = -7,   /* a handle over SFP_HANDLE_MAX bytes */
  SFP_E_ATTRS = -8     /* attribute flags this version does not define:
                        * the fields after them cannot be found */
};

/* A byte string inside someone else's bytes: p is never NULL for a
 * field that was decoded (an empty string points at where it would be). */
typedef struct sfp_span {
  const unsigned char *p;
  size_t n;
} sfp_span;

/* File attributes (draft section 5).  Only the fields whose flag is set
 * mean anything; extended pairs are skipped (nextended counts them). */
typedef struct sfp_attrs {
  uint32_t flags;          /* SFP_ATTR_* */
  uint64_t size;
  uint32_t uid, gid;
  uint32_t permissions;    /* st_mode: type bits and permission bits */
  uint32_t atime, mtime;
  uint32_t nextended;
} sfp_attrs;

/* ---- output buffer ------------------------------------------------------ */
/* Encoders append whole packets here; the bytes to send are
 * len bytes at data + start (sfp_buf_head). */
typedef struct sfp_buf {
  unsigned char *data;
  size_t start;            /* first byte not yet sent */
  size_t len;              /* bytes not yet sent */
  size_t cap;
} sfp_buf;

void sfp_buf_init(sfp_buf *b);
void sfp_buf_free(sfp_buf *b);
/* Room for at least n more bytes after the last; NULL on out of memory.
 * May move the bytes (pointers into the buffer do not survive it, offsets
 * from the head do). */
unsigned char *sfp_buf_reserve(sfp_buf *b, size_t n);
/* n bytes written into the room reserve gave are now part of it. */
void sfp_buf_commit(sfp_buf *b, size_t n);
/* Drops n bytes (sent) from the front. */
void sfp_buf_consume(sfp_buf *b, size_t n);
#define sfp_buf_head(b) ((b)->data + (b)->start)

/* ---- requests ------------------------------------------------------------
 * Each appends one whole packet to b and returns SFP_OK, SFP_E_NOMEM or
 * SFP_E_TOOBIG; on an error b is as it was.  Paths, handles and data are
 * bytes with a length: anything but 2^32 bytes or more (a handle: at most
 * SFP_HANDLE_MAX).  attrs may be NULL: none (flags 0).  No limit but the
 * format's is applied: keep a write's data within what the server takes
 * (limits@openssh.com, or 32 KiB, which every server takes). */
int sfp_req_init(sfp_buf *b, uint32_t version);
int sfp_req_open(sfp_buf *b, uint32_t id, const void *path, size_t plen,
                 uint32_t pflags, const sfp_attrs *attrs);
int sfp_req_close(sfp_buf *b, uint32_t id, const void *h, size_t hlen);
int sfp_req_read(sfp_buf *b, uint32_t id, const void *h, size_t hlen,
                 uint64_t offset, uint32_t len);
int sfp_req_write(sfp_buf *b, uint32_t id, const void *h, size_t hlen,
                  uint64_t offset, const void *data, size_t dlen);
int sfp_req_lstat(sfp_buf *b, uint32_t id, const void *path, size_t plen);
int sfp_req_stat(sfp_buf *b, uint32_t id, const void *path, size_t plen);
int sfp_req_fstat(sfp_buf *b, uint32_t id, const void *h, size_t hlen);
int sfp_req_setstat(sfp_buf *b, uint32_t id, const void *path, size_t plen,
                    const sfp_attrs *attrs);
int sfp_req_fsetstat(sfp_buf *b, uint32_t id, const void *h, size_t hlen,
                     const sfp_attrs *attrs);
int sfp_req_opendir(sfp_buf *b, uint32_t id, const void *path, size_t plen);
int sfp_req_readdir(sfp_buf *b, uint32_t id, const void *h, size_t hlen);
int sfp_req_remove(sfp_buf *b, uint32_t id, const void *path, size_t plen);
int sfp_req_mkdir(sfp_buf *b, uint32_t id, const void *path, size_t plen,
                  const sfp_attrs *attrs);
int sfp_req_rmdir(sfp_buf *b, uint32_t id, const void *path, size_t plen);
int sfp_req_realpath(sfp_buf *b, uint32_t id, const void *path, size_t plen);
int sfp_req_rename(sfp_buf *b, uint32_t id, const void *oldp, size_t olen,
                   const void *newp, size_t nlen);
int sfp_req_readlink(sfp_buf *b, uint32_t id, const void *path, size_t plen);
/* A symbolic link at link pointing to target.  The draft sends linkpath
 * then targetpath, but OpenSSH's sftp-server (and so dropbear's, and the
 * OpenSSH client) swapped them long ago and kept it (PROTOCOL section
 * 4.1): it reads targetpath first.  This sends target first, the order
 * every server met in practice expects; callers just say which is which. */
int sfp_req_symlink(sfp_buf *b, uint32_t id, const void *target,
                    size_t tlen, const void *link, size_t llen);
/* SSH_FXP_EXTENDED: the request name, then payload as is (the caller
 * encodes its fields). */
int sfp_req_extended(sfp_buf *b, uint32_t id, const char *name,
                     size_t nlen, const void *payload, size_t plen);
/* OpenSSH's extensions (offered in its VERSION): */
int sfp_req_posix_rename(sfp_buf *b, uint32_t id, const void *oldp,
                         size_t olen, const void *newp, size_t nlen);
int sfp_req_hardlink(sfp_buf *b, uint32_t id, const void *oldp, size_t olen,
                     const void *newp, size_t nlen);
int sfp_req_fsync(sfp_buf *b, uint32_t id, const void *h, size_t hlen);
int sfp_req_statvfs(sfp_buf *b, uint32_t id, const void *path, size_t plen);
int sfp_req_fstatvfs(sfp_buf *b, uint32_t id, const void *h, size_t hlen);
int sfp_req_limits(sfp_buf *b, uint32_t id);

/* A WRITE whose data is put straight into b, with no copy: begin reserves
 * the header for a handle of hlen bytes at the end of b and gives its
 * offset from the head in *mark; the caller appends the data
 * (sfp_buf_reserve, read() into it, sfp_buf_commit); end writes the
 * header for all the bytes appended since.  Nothing may be consumed from
 * b in between.  end returns SFP_E_TOOBIG (and drops the packet) when
 * the data made it 2^32 bytes or more. */
int sfp_req_write_begin(sfp_buf *b, size_t hlen, size_t *mark);
int sfp_req_write_end(sfp_buf *b, size_t mark, uint32_t id, const void *h,
                      size_t hlen, uint64_t offset);
/* The bytes of a WRITE header for a handle of hlen bytes. */
#define SFP_WRITE_HEADER(hlen) (25 + (hlen))

/* ---- packets ------------------------------------------------------------ */
/* Whether a whole packet is at p (n bytes): 1 and *size its bytes (the
 * length field included); 0 and *size how many more bytes are needed at
 * least (the rest of the length field, or of the packet); SFP_E_LENGTH
 * when its length is 0 or over max (0: SFP_MAX_PACKET), counting the
 * bytes after the length field as OpenSSH does. */
int sfp_frame(const unsigned char *p, size_t n, size_t max, size_t *size);

/* One decoded packet: which fields mean something depends on type.
 * Requests decode too (a server's view, and the fuzz round trip). */
typedef struct sfp_packet {
  int type;
  uint32_t id;             /* request id; 0 for INIT and VERSION */
  uint32_t version;        /* INIT, VERSION */
  sfp_span ext;            /* INIT, VERSION: the extension pairs, raw
                            * (sfp_ext_begin walks them) */
  /* STATUS */
  uint32_t code;           /* SFP_FX_* */
  sfp_span message, language;  /* empty when a server left them out,
                                * as versions before 3 did */
  /* HANDLE; CLOSE, READ, WRITE, FSTAT, FSETSTAT, READDIR */
  sfp_span handle;
  /* DATA; WRITE */
  sfp_span data;
  /* NAME: count entries, raw (sfp_name_begin walks them) */
  uint32_t count;
  sfp_span names;
  /* ATTRS; OPEN, SETSTAT, FSETSTAT, MKDIR */
  sfp_attrs attrs;
  /* requests: the path (OPEN, LSTAT, STAT, SETSTAT, OPENDIR, REMOVE, MKDIR,
   * RMDIR, REALPATH, READLINK), RENAME's old and new paths, SYMLINK's two
   * paths in wire order (OpenSSH's: target in path, link in path2) */
  sfp_span path, path2;
  uint32_t pflags;         /* OPEN */
  uint64_t offset;         /* READ, WRITE */
  uint32_t length;         /* READ */
  /* EXTENDED: its name; EXTENDED, EXTENDED_REPLY: the rest, raw */
  sfp_span ext_name;
  sfp_span payload;
} sfp_packet;

/* Decodes the one packet of size bytes at p (as sfp_frame found it,
 * length field included).  SFP_OK, or SFP_E_SHORT, SFP_E_COUNT,
 * SFP_E_TYPE, SFP_E_HANDLE, SFP_E_ATTRS, SFP_E_LENGTH (size is not the
 * packet's).  A NAME's entries and the extension pairs are checked here
 * already: when this says SFP_OK, walking them cannot fail.  Bytes after
 * the last field of a type are ignored, as later drafts add fields. */
int sfp_decode(const unsigned char *p, size_t size, sfp_packet *pk);

/* Walking a NAME's entries or a VERSION's (or INIT's) extensions. */
typedef struct sfp_iter {
  const unsigned char *p;
  size_t n;
  uint32_t left;           /* NAME entries still to come */
} sfp_iter;

typedef struct sfp_name {
  sfp_span filename, longname;
  sfp_attrs attrs;
} sfp_name;

void sfp_name_begin(const sfp_packet *pk, sfp_iter *it);
/* 1 and *e: the next entry; 0: no more; < 0 (SFP_E_*): malformed, and
 * nothing more comes. */
int sfp_name_next(sfp_iter *it, sfp_name *e);
void sfp_ext_begin(const sfp_packet *pk, sfp_iter *it);
/* 1 and the next extension's name and data; 0: no more; < 0: malformed. */
int sfp_ext_next(sfp_iter *it, sfp_span *name, sfp_span *data);

/* Replies to OpenSSH's extensions (an EXTENDED_REPLY's payload); SFP_OK
 * or SFP_E_SHORT. */
typedef struct sfp_limits {
  uint64_t max_packet;     /* 0: the server states no limit */
  uint64_t max_read;
  uint64_t max_write;
  uint64_t max_handles;
} sfp_limits;
int sfp_decode_limits(const unsigned char *p, size_t n, sfp_limits *l);

typedef struct sfp_statvfs {
  uint64_t bsize, frsize, blocks, bfree, bavail, files, ffree, favail;
  uint64_t fsid, flag, namemax;
} sfp_statvfs;
int sfp_decode_statvfs(const unsigned char *p, size_t n, sfp_statvfs *s);

/* Names: "open", "status" ... (NULL for an unknown type); "ok",
 * "no_such_file" ... (NULL for an unknown code); a phrase for an SFP_E_*. */
const char *sfp_type_name(int type);
const char *sfp_status_name(uint32_t code);
const char *sfp_strerror(int err);

#endif
