/*
 * ftp_tlsrec.c - counts the TLS records that arrive on an FTPS control
 * connection, so that a reply can be told from one read before its
 * command went out.
 *
 * Why: libcurl reads a TLS record whole and keeps what follows the reply
 * it wanted for the next command, which takes it as its own answer.  On
 * a clear connection the kernel's byte count shows such bytes
 * (ftp_drive.c, stray_input); under TLS the bytes on the wire are not
 * reply bytes.  But a reply to a command can only come in a record that
 * arrived after the command was sent: a reply shown while no record came
 * since its command was read before it, and answers nothing.
 *
 * How: libcurl hands us each new connection's SSL_CTX
 * (CURLOPT_SSL_CTX_FUNCTION, OpenSSL builds only); we give it a message
 * callback that counts the records received on the control connection's
 * SSL.  Which SSL that is comes from CURLINFO_TLS_SSL_PTR each time a
 * command goes out (ftp_tlsrec_command).  OpenSSL is reached through the
 * libssl libcurl loaded, found with dlopen(RTLD_NOLOAD), so netlua needs
 * no OpenSSL headers or link of its own; with another TLS library, or
 * none, nothing is counted and only the wire-level checks remain.
 *
 * What does not live here: acting on the finding (ftp_drive.c).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "ftp.h"

/* OpenSSL's stable ABI, as much as is used here (ssl.h, ssl3.h) */
typedef void (*msg_cb)(int write_p, int version, int content_type,
                       const void *buf, size_t len, void *ssl, void *arg);
#define NL_SSL3_RT_HEADER 0x100             /* a record's 5-byte header */
#define NL_SSL_CTRL_SET_MSG_CALLBACK_ARG 16

static struct {
  int tried, ok;
  void (*set_msg_callback)(void *ctx, msg_cb cb);
  long (*ctx_ctrl)(void *ctx, int cmd, long larg, void *parg);
} ossl;

/* Finds libssl's two functions in the copy libcurl loaded, once. */
static int ossl_load(void) {
  const curl_version_info_data *v;
  char name[32];
  int major = 0;
  void *lib = NULL;
  if (ossl.tried) return ossl.ok;
  ossl.tried = 1;
  v = curl_version_info(CURLVERSION_NOW);
  if (!v->ssl_version || sscanf(v->ssl_version, "OpenSSL/%d", &major) != 1)
    return 0;
  if (major >= 3) {
    snprintf(name, sizeof name, "libssl.so.%d", major);
    lib = dlopen(name, RTLD_NOW | RTLD_NOLOAD);
  } else {
    lib = dlopen("libssl.so.1.1", RTLD_NOW | RTLD_NOLOAD);
  }
  if (!lib) return 0;
  *(void **)&ossl.set_msg_callback = dlsym(lib, "SSL_CTX_set_msg_callback");
  *(void **)&ossl.ctx_ctrl = dlsym(lib, "SSL_CTX_ctrl");
  /* the handle stays open: libcurl holds the library anyway */
  ossl.ok = ossl.set_msg_callback && ossl.ctx_ctrl;
  return ossl.ok;
}

static void on_msg(int write_p, int version, int content_type,
                   const void *buf, size_t len, void *ssl, void *arg) {
  ftp_sess *s = arg;
  (void)version; (void)buf; (void)len;
  if (!write_p && content_type == NL_SSL3_RT_HEADER && ssl == s->tls_ssl)
    s->tls_recs++;
}

static CURLcode on_ctx(CURL *h, void *ctx, void *ud) {
  (void)h;
  ossl.set_msg_callback(ctx, on_msg);
  ossl.ctx_ctrl(ctx, NL_SSL_CTRL_SET_MSG_CALLBACK_ARG, 0, ud);
  return CURLE_OK;
}

void ftp_tlsrec_apply(ftp_sess *s, CURL *h) {
  s->tls_armed = 0;
  if (s->tls == TLS_NONE || !ossl_load()) return;
  if (curl_easy_setopt(h, CURLOPT_SSL_CTX_FUNCTION, on_ctx) != CURLE_OK) return;
  curl_easy_setopt(h, CURLOPT_SSL_CTX_DATA, s);
}

void ftp_tlsrec_command(ftp_sess *s, CURL *h) {
  struct curl_tlssessioninfo *ti = NULL;
  s->tls_armed = 0;
  if (s->tls == TLS_NONE || !ossl.ok) return;
  if (curl_easy_getinfo(h, CURLINFO_TLS_SSL_PTR, &ti) != CURLE_OK || !ti ||
      ti->backend != CURLSSLBACKEND_OPENSSL || !ti->internals)
    return;  /* not under TLS yet (AUTH TLS itself goes in clear) */
  s->tls_ssl = ti->internals;
  s->tls_at_cmd = s->tls_recs;
  s->tls_armed = 1;
}

int ftp_tlsrec_early(ftp_sess *s) {
  return s->tls_armed && s->tls_recs == s->tls_at_cmd;
}
