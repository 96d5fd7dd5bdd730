/*
 * telnet_client.c PORT MODE [N] - the raw C reference client for
 * bench/telnet.lua: what a careful C program reading Telnet does.
 *
 *   all  plain|ff N  - read to EOF, decoding IAC in place into one buffer
 *   until plain|ff N - the same, stopping at the end marker (memmem on
 *                      the new tail only)
 *   allcopy, untilcopy - the same, then one copy of the result into fresh
 *                      memory (timed): what handing the bytes over as a
 *                      new string costs a C program too
 *   rtt N            - N round trips "ping\n" -> read until "\n"
 * Prints one line: "<bytes> <seconds>" (or "<trips> <seconds>").
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 131072

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Decodes Telnet data in place: IAC IAC -> 0xFF, IAC x (y) dropped. */
static size_t decode(int *state, unsigned char *p, size_t n) {
  unsigned char *in = p, *end = p + n, *out = p;
  while (in < end) {
    if (*state == 0) {
      unsigned char *iac = memchr(in, 255, (size_t)(end - in));
      size_t run = (size_t)((iac ? iac : end) - in);
      if (out != in) memmove(out, in, run);
      out += run;
      in += run;
      if (iac) { in++; *state = 1; }
    } else if (*state == 1) {
      unsigned char c = *in++;
      if (c == 255) { *out++ = 255; *state = 0; }
      else *state = (c >= 251) ? 2 : 0;
    } else {
      in++;
      *state = 0;
    }
  }
  return (size_t)(out - p);
}

static int dial(int port) {
  struct sockaddr_in a;
  int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((unsigned short)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    perror("connect");
    exit(1);
  }
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

int main(int argc, char **argv) {
  int port, fd, state = 0;
  double t0;
  if (argc < 4) {
    fprintf(stderr, "usage: telnet_client PORT all|until plain|ff N | PORT rtt N\n");
    return 2;
  }
  port = atoi(argv[1]);
  fd = dial(port);
  if (strcmp(argv[2], "rtt") == 0) {
    long n = atol(argv[3]), i;
    char buf[256];
    t0 = now();
    if (write(fd, "echo\n", 5) != 5) return 1;
    for (i = 0; i < n; i++) {
      size_t got = 0;
      if (send(fd, "ping\n", 5, 0) != 5) return 1;
      while (got == 0 || buf[got - 1] != '\n') {
        ssize_t k = recv(fd, buf + got, sizeof buf - got, 0);
        if (k <= 0) return 1;
        got += decode(&state, (unsigned char *)buf + got, (size_t)k);
      }
    }
    printf("%ld %.6f\n", n, now() - t0);
    return 0;
  } else {
    int until = strncmp(argv[2], "until", 5) == 0;
    int copy = strstr(argv[2], "copy") != NULL;
    static const char marker[] = "END-OF-BENCH\r\n";
    size_t m = sizeof marker - 1, len = 0, cap = 1 << 20, scanned = 0;
    char *buf = malloc(cap), cmd[64];
    int n = snprintf(cmd, sizeof cmd, "%s %s\n", argv[3], argc > 4 ? argv[4] : "104857600");
    t0 = now();
    if (write(fd, cmd, (size_t)n) != n) return 1;
    for (;;) {
      ssize_t k;
      if (cap - len < CHUNK) {
        cap *= 2;
        buf = realloc(buf, cap);
      }
      k = recv(fd, buf + len, CHUNK, 0);
      if (k <= 0) break;
      len += decode(&state, (unsigned char *)buf + len, (size_t)k);
      if (until) {
        size_t from = scanned >= m ? scanned - m + 1 : 0;
        if (len >= m && memmem(buf + from, len - from, marker, m)) break;
        scanned = len;
      }
    }
    if (copy) {
      char *out = malloc(len);
      if (out == NULL) return 1;
      memcpy(out, buf, len);
      /* the copy must happen even though nobody reads it */
      __asm__ volatile("" : : "r"(out) : "memory");
      free(out);
    }
    printf("%zu %.6f\n", len, now() - t0);
    free(buf);
    return 0;
  }
}
