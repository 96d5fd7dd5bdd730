/*
 * mcast_ref.c - raw C reference for bench/multicast.lua.
 *
 *   mcast_ref send GROUP PORT COUNT SIZE [member]
 *       sendto() loop to an IPv4 group; with "member", a socket of this
 *       process joins the group first (and never reads: its queue fills
 *       and the kernel drops, as for any slow local member)
 *   mcast_ref recv GROUP PORT ROUNDS BATCH SIZE [copy]
 *       per round: queue BATCH datagrams on a joined socket (not timed),
 *       then drain them with a recvfrom() loop (timed); with "copy", each
 *       datagram is also copied into a block of its own, all freed at the
 *       end of the round (what handing each one over as a string costs)
 *
 * Prints "rate <datagrams per second> <datagrams>" on one line.  Plain
 * blocking sockets, no error recovery: this is a measuring stick, not an
 * example.  Run it only inside scripts/netns.sh.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

static struct sockaddr_in group_addr(const char *ip, int port) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((unsigned short)port);
  if (inet_pton(AF_INET, ip, &a.sin_addr) != 1) die("group");
  return a;
}

static int join(const char *ip, int port) {
  struct sockaddr_in any = group_addr(ip, port);
  struct ip_mreq mr;
  int rx = socket(AF_INET, SOCK_DGRAM, 0), one = 1;
  if (rx < 0) die("socket");
  setsockopt(rx, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  mr.imr_multiaddr = any.sin_addr;
  mr.imr_interface.s_addr = htonl(INADDR_ANY);
  any.sin_addr.s_addr = htonl(INADDR_ANY);
  if (bind(rx, (struct sockaddr *)&any, sizeof any) < 0) die("bind");
  if (setsockopt(rx, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr) < 0)
    die("IP_ADD_MEMBERSHIP");
  return rx;
}

static int do_send(const char *ip, int port, long count, int size,
                   int member) {
  struct sockaddr_in to = group_addr(ip, port);
  char *buf = calloc(1, (size_t)size);
  int fd = socket(AF_INET, SOCK_DGRAM, 0), ttl = 1;
  double t0, dt;
  long i;
  if (fd < 0 || buf == NULL) die("socket");
  if (member) join(ip, port);
  setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl);
  t0 = now();
  for (i = 0; i < count; i++)
    if (sendto(fd, buf, (size_t)size, 0, (struct sockaddr *)&to, sizeof to) < 0)
      die("sendto");
  dt = now() - t0;
  printf("rate %.0f %ld\n", (double)count / dt, count);
  return 0;
}

static int do_recv(const char *ip, int port, long rounds, long batch,
                   int size, int copy) {
  struct sockaddr_in to = group_addr(ip, port);
  char *buf = calloc(1, 65536);
  char **kept = calloc((size_t)batch, sizeof *kept);
  int rx = join(ip, port), tx = socket(AF_INET, SOCK_DGRAM, 0);
  int big = 32 << 20;
  double total = 0;
  long r, i, got = 0;
  if (tx < 0 || buf == NULL || kept == NULL) die("socket");
  if (setsockopt(rx, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big) < 0)
    setsockopt(rx, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  for (r = 0; r < rounds; r++) {
    double t0;
    for (i = 0; i < batch; i++)
      if (sendto(tx, buf, (size_t)size, 0, (struct sockaddr *)&to, sizeof to) < 0)
        die("sendto");
    t0 = now();
    for (i = 0; i < batch; i++) {
      struct sockaddr_in from;
      socklen_t flen = sizeof from;
      ssize_t n = recvfrom(rx, buf, 2048, 0, (struct sockaddr *)&from, &flen);
      if (n < 0) die("recvfrom");
      if (copy) {
        kept[i] = malloc((size_t)n + 1);
        if (kept[i] == NULL) die("malloc");
        memcpy(kept[i], buf, (size_t)n);
      }
      got++;
    }
    if (copy) {
      __asm__ volatile("" : : "r"(kept) : "memory");
      for (i = 0; i < batch; i++) free(kept[i]);
    }
    total += now() - t0;
  }
  printf("rate %.0f %ld\n", (double)got / total, got);
  free(kept);
  return 0;
}

int main(int argc, char **argv) {
  if ((argc == 6 || argc == 7) && strcmp(argv[1], "send") == 0)
    return do_send(argv[2], atoi(argv[3]), atol(argv[4]), atoi(argv[5]),
                   argc == 7 && strcmp(argv[6], "member") == 0);
  if ((argc == 7 || argc == 8) && strcmp(argv[1], "recv") == 0)
    return do_recv(argv[2], atoi(argv[3]), atol(argv[4]), atol(argv[5]),
                   atoi(argv[6]), argc == 8 && strcmp(argv[7], "copy") == 0);
  fprintf(stderr, "usage: %s send GROUP PORT COUNT SIZE [member]\n"
                  "       %s recv GROUP PORT ROUNDS BATCH SIZE [copy]\n",
          argv[0], argv[0]);
  return 2;
}
