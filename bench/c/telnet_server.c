/*
 * telnet_server.c PORT - a fast local Telnet-ish peer for bench/telnet.lua.
 *
 * Listens on 127.0.0.1:PORT, prints "ready", then serves connections one
 * after another.  Each starts with one command line from the client:
 *   "plain N" - N data bytes (text lines) then "\r\nEND-OF-BENCH\r\n", close
 *   "ff N"    - the same with 1% 0xFF data bytes (sent doubled: IAC IAC)
 *   "echo"    - every byte received is sent back, until EOF
 * Not a Telnet server: no negotiation, just the bytes a bulk peer sends.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BLOCK (1 << 20)

static int send_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
    if (k <= 0) return -1;
    p += k;
    n -= (size_t)k;
  }
  return 0;
}

/* one block of wire bytes carrying `data` bytes of payload */
static char *make_block(int ff, size_t *wire, size_t *data) {
  char *b = malloc(2 * BLOCK);
  size_t w = 0, d = 0;
  unsigned seed = 12345;
  while (d < BLOCK) {
    seed = seed * 1103515245u + 12345u;
    if (d % 64 == 62) { b[w++] = '\r'; d++; }
    else if (d % 64 == 63) { b[w++] = '\n'; d++; }
    else if (ff && (seed >> 16) % 100 == 0) { b[w++] = (char)0xff; b[w++] = (char)0xff; d++; }
    else { b[w++] = (char)('a' + (seed >> 16) % 26); d++; }
  }
  *wire = w;
  *data = d;
  return b;
}

static void bulk(int fd, int ff, size_t n) {
  size_t wire, data, sent = 0;
  char *b = make_block(ff, &wire, &data);
  static const char end[] = "\r\nEND-OF-BENCH\r\n";
  while (sent + data <= n) {
    if (send_all(fd, b, wire) < 0) goto out;
    sent += data;
  }
  if (sent < n) {  /* the tail: plain bytes */
    memset(b, 'z', n - sent);
    if (send_all(fd, b, n - sent) < 0) goto out;
  }
  send_all(fd, end, sizeof end - 1);
out:
  free(b);
}

static void echo(int fd) {
  char buf[65536];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof buf, 0)) > 0)
    if (send_all(fd, buf, (size_t)n) < 0) return;
}

int main(int argc, char **argv) {
  struct sockaddr_in a;
  int srv, one = 1;
  if (argc < 2) {
    fprintf(stderr, "usage: telnet_server PORT\n");
    return 2;
  }
  srv = socket(AF_INET, SOCK_STREAM, 0);
  setsockopt(srv, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((unsigned short)atoi(argv[1]));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(srv, (struct sockaddr *)&a, sizeof a) < 0 || listen(srv, 16) < 0) {
    perror("telnet_server");
    return 1;
  }
  printf("ready\n");
  fflush(stdout);
  for (;;) {
    char line[128];
    size_t k = 0;
    int fd = accept(srv, NULL, NULL);
    if (fd < 0) continue;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    while (k < sizeof line - 1 && recv(fd, line + k, 1, 0) == 1 && line[k] != '\n') k++;
    line[k] = '\0';
    if (strncmp(line, "plain ", 6) == 0) bulk(fd, 0, strtoull(line + 6, NULL, 10));
    else if (strncmp(line, "ff ", 3) == 0) bulk(fd, 1, strtoull(line + 3, NULL, 10));
    else if (strcmp(line, "echo") == 0) echo(fd);
    close(fd);
  }
}
