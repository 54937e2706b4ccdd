/* connrate: new connections per second over loopback, for bench/run.
 *
 *   connrate [-m plain|ktfo|api] [-t THREADS] [-d MS]
 *
 * THREADS client threads, each a loop of: connect, send a one-line
 * request, read the answer to its end, close (plain: socket + connect +
 * write; ktfo: the same with TCP_FASTOPEN_CONNECT, the kernel's TFO by
 * hand; api: tfo_connect_send). As many server threads accept on one
 * listener (TCP_FASTOPEN queue 4096) in the same process, answer "OK\n"
 * and close first (TIME_WAIT stays on the server side). The shim's rate is
 * -m plain under LD_PRELOAD. Prints: conns=... ms=... rate=...
 * Run it in a lab namespace (127.0.0.1).
 *
 *   connrate -S                      serve only: print the port, serve forever
 *   connrate [-m MODE] -p PORT -n N  one client thread, exactly N cycles
 *                                    against 127.0.0.1:PORT (for counting
 *                                    system calls per cycle under strace)
 *
 * SPDX-License-Identifier: MIT */
#define _GNU_SOURCE

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <tfo.h>

static struct sockaddr_in sa;
static int lfd, api, ktfo;
static long cycles = -1; /* -n: exactly this many cycles, no deadline */
static double deadline;
static atomic_long total, errors;
static const char req[] = "GET /\n";

static double now_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void *server(void *arg) {
  char b[256];

  (void)arg;
  for (;;) {
    int s = accept(lfd, NULL, NULL);
    ssize_t r;
    if (s < 0)
      continue;
    while ((r = read(s, b, sizeof(b))) > 0 && memchr(b, '\n', (size_t)r) == NULL)
      ;
    if (write(s, "OK\n", 3) != 3)
      atomic_fetch_add(&errors, 1);
    close(s);
  }
  return NULL;
}

static void *client(void *arg) {
  char b[64];
  long n = 0;

  (void)arg;
  while (cycles >= 0 ? n < cycles : now_ms() < deadline) {
    int fd;
    ssize_t r;
    if (api) {
      fd = tfo_connect_send((struct sockaddr *)&sa, sizeof(sa), req,
                            sizeof(req) - 1, NULL, NULL);
    } else {
      int one = 1;
      fd = socket(AF_INET, SOCK_STREAM, 0);
      if (fd >= 0 && ktfo)
        setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &one, sizeof(one));
      if (fd >= 0 && (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
                      write(fd, req, sizeof(req) - 1) != sizeof(req) - 1)) {
        close(fd);
        fd = -1;
      }
    }
    if (fd < 0) {
      atomic_fetch_add(&errors, 1);
      if (cycles >= 0)
        n++; /* counted: a cycle budget must end */
      continue;
    }
    while ((r = read(fd, b, sizeof(b))) > 0)
      ;
    close(fd);
    n++;
  }
  atomic_fetch_add(&total, n);
  return NULL;
}

int main(int argc, char **argv) {
  pthread_t th[256];
  socklen_t len = sizeof(sa);
  int c, nthreads = 1, one = 1, qlen = 4096, serve_only = 0, port = 0;
  long ms = 2000;
  double t0, t1;

  while ((c = getopt(argc, argv, "m:t:d:n:p:S")) != -1) {
    switch (c) {
      case 'm':
        api = strcmp(optarg, "api") == 0;
        ktfo = strcmp(optarg, "ktfo") == 0;
        break;
      case 't': nthreads = atoi(optarg); break;
      case 'd': ms = atol(optarg); break;
      case 'n': cycles = atol(optarg); break;
      case 'p': port = atoi(optarg); break;
      case 'S': serve_only = 1; break;
      default:
        fprintf(stderr, "usage: connrate [-m plain|ktfo|api] [-t THREADS] [-d MS]\n"
                        "       connrate -S\n"
                        "       connrate [-m plain|ktfo|api] -p PORT -n CYCLES\n");
        return 2;
    }
  }
  if (nthreads < 1 || nthreads > 128)
    nthreads = 1;
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (port > 0 && port < 65536 && cycles >= 0) {
    sa.sin_port = htons((uint16_t)port);
    client(NULL);
    printf("conns=%ld errors=%ld\n", cycles, atomic_load(&errors));
    fflush(stdout);
    _exit(atomic_load(&errors) != 0);
  }
  lfd = socket(AF_INET, SOCK_STREAM, 0);
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  setsockopt(lfd, IPPROTO_TCP, TCP_FASTOPEN, &qlen, sizeof(qlen));
  if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
      listen(lfd, 4096) != 0 ||
      getsockname(lfd, (struct sockaddr *)&sa, &len) != 0) {
    perror("connrate: listen");
    return 1;
  }
  if (serve_only) {
    printf("port=%d\n", ntohs(sa.sin_port));
    fflush(stdout);
    server(NULL);
  }
  for (c = 0; c < nthreads; c++)
    pthread_create(&th[128 + c], NULL, server, NULL);
  t0 = now_ms();
  deadline = t0 + (double)ms;
  for (c = 0; c < nthreads; c++)
    pthread_create(&th[c], NULL, client, NULL);
  for (c = 0; c < nthreads; c++)
    pthread_join(th[c], NULL);
  t1 = now_ms();
  printf("conns=%ld errors=%ld ms=%.0f rate=%.0f\n", atomic_load(&total),
         atomic_load(&errors), t1 - t0, atomic_load(&total) / ((t1 - t0) / 1e3));
  fflush(stdout);
  _exit(0);
}
