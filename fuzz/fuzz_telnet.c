/*
 * fuzz_telnet.c - libFuzzer target for the Telnet engine (telnet_engine.c).
 *
 * Input: one byte of configuration, two bytes of chunking seed, then the
 * bytes a peer sends.  Checks, beyond the sanitizers:
 *  - decoding never yields more data than input;
 *  - splitting the input at arbitrary points changes neither the data
 *    nor the replies (commands split across segments);
 *  - escape() then decode gives the data back (IAC doubling, CR NUL).
 * Not a place for sockets: the session has its own specs.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "telnet_engine.h"

typedef struct sink {
  unsigned char *buf;
  size_t len, cap;
} sink;

static void put(sink *s, const unsigned char *p, size_t n) {
  if (s->len + n > s->cap) {
    size_t cap = (s->len + n) * 2 + 64;
    s->buf = realloc(s->buf, cap);
    if (!s->buf) abort();
    s->cap = cap;
  }
  memcpy(s->buf + s->len, p, n);
  s->len += n;
}

static int same(const void *a, size_t la, const void *b, size_t lb) {
  return la == lb && (la == 0 || memcmp(a, b, la) == 0);
}

static void on_send(void *ud, const unsigned char *p, size_t n) {
  put((sink *)ud, p, n);
}

static void on_event(void *ud, const tn_event *ev) {
  (void)ud;
  if (ev->kind == TN_EV_SB && ev->len > TN_SB_MAX) abort();
}

static void setup(tn_engine *t, sink *replies, unsigned cfg) {
  tn_init(t, on_send, on_event, replies);
  t->manual = cfg & 1;
  if (cfg & 2) {
    tn_add_ttype(t, "XTERM", 5);
    tn_add_ttype(t, "VT100", 5);
    tn_accept(t, TN_US, TN_TTYPE, 1);
  }
  if (cfg & 4) {
    tn_accept(t, TN_US, TN_NAWS, 1);
    tn_set_window(t, 255, 0x1ff);
  }
  if (cfg & 8) {
    tn_add_env(t, "USER", 4, "r\377o\001t", 6);
    tn_add_env(t, "LANG", 4, "C", 1);
    tn_accept(t, TN_US, TN_NEW_ENVIRON, 1);
  }
  if (cfg & 16) tn_request(t, TN_HIM, TN_BINARY, 1);
  if (cfg & 32) tn_request(t, TN_US, TN_NAWS, 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static tn_engine a, b, c, d;
  sink ra = {0}, rb = {0}, rc = {0}, rd = {0};
  unsigned char *whole, *part, *esc;
  size_t n, na, nb = 0, i, ne, nd;
  unsigned cfg, seed;
  if (size < 3) return 0;
  cfg = data[0];
  seed = (unsigned)data[1] | ((unsigned)data[2] << 8);
  data += 3;
  n = size - 3;

  /* whole input at once */
  setup(&a, &ra, cfg);
  whole = malloc(n + 1);
  memcpy(whole, data, n);
  na = tn_recv(&a, whole, n);
  if (na > n) abort();

  /* the same input in pieces */
  setup(&b, &rb, cfg);
  part = malloc(n + 1);
  for (i = 0; i < n;) {
    size_t k = 1 + (seed % 7), got;
    seed = seed * 1103515245u + 12345u;
    if (k > n - i) k = n - i;
    memcpy(part + nb, data + i, k);
    got = tn_recv(&b, part + nb, k);
    if (got > k) abort();
    nb += got;
    i += k;
  }
  if (!same(whole, na, part, nb)) abort();
  if (!same(ra.buf, ra.len, rb.buf, rb.len)) abort();

  /* escape then decode is the identity (fresh, non-binary engines) */
  setup(&c, &rc, 0);
  setup(&d, &rd, 0);
  esc = malloc(2 * n + 1);
  ne = tn_escape(&c, data, n, esc);
  if (ne > 2 * n) abort();
  nd = tn_recv(&d, esc, ne);
  if (!same(esc, nd, data, n)) abort();
  if (rd.len != 0) abort();

  tn_free(&a);
  tn_free(&b);
  tn_free(&c);
  tn_free(&d);
  free(whole);
  free(part);
  free(esc);
  free(ra.buf);
  free(rb.buf);
  free(rc.buf);
  free(rd.buf);
  return 0;
}
