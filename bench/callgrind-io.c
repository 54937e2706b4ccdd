/* callgrind-io: costs of the preload shim on an established TCP socket over
 * loopback, for bench/run. Run it with and without LD_PRELOAD.
 *
 *   callgrind-io -m write|read [-n N]   N write()s (read()s) of 64 bytes on an
 *                                       established socket, in bench_write()
 *                                       (bench_read()): run under
 *                                       valgrind --tool=callgrind
 *                                       --toggle-collect=bench_write; also
 *                                       prints ns_per_call (wall clock,
 *                                       kernel included: run it alone)
 *   callgrind-io -m bulk [-b MIB]       MIB through one connection to a
 *                                       forked reader; prints mib_s=...
 *   callgrind-io -m rss [-k K]          VmRSS with one connection, then with
 *                                       K more: rss0_kb=... rssk_kb=...
 *
 * Everything goes over 127.0.0.1 (run it in a lab namespace).
 *
 * SPDX-License-Identifier: MIT */
#define _GNU_SOURCE

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what) {
  fprintf(stderr, "callgrind-io: %s: %s\n", what, strerror(errno));
  exit(1);
}

static int listener(struct sockaddr_in *sa) {
  socklen_t len = sizeof(*sa);
  int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);

  if (fd < 0)
    die("socket");
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  memset(sa, 0, sizeof(*sa));
  sa->sin_family = AF_INET;
  sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)sa, sizeof(*sa)) != 0 ||
      listen(fd, 4096) != 0 ||
      getsockname(fd, (struct sockaddr *)sa, &len) != 0)
    die("listen");
  return fd;
}

/* A connected pair: *c the client end, returned the accepted end. The
 * first byte is written before accept, so a connect that the shim defers
 * to the first write (TFO) completes. */
static int pair(int lfd, const struct sockaddr_in *sa, int *c) {
  char b;
  int s;

  *c = socket(AF_INET, SOCK_STREAM, 0);
  if (*c < 0)
    die("socket");
  if (connect(*c, (const struct sockaddr *)sa, sizeof(*sa)) != 0)
    die("connect");
  if (write(*c, "x", 1) != 1)
    die("write");
  s = accept(lfd, NULL, NULL);
  if (s < 0)
    die("accept");
  if (read(s, &b, 1) != 1)
    die("read");
  return s;
}

static char buf[65536];

/* Not static: callgrind --toggle-collect names them. */
void bench_write(int fd, long n);
void bench_read(int fd, long n);

__attribute__((noinline)) void bench_write(int fd, long n) {
  for (long i = 0; i < n; i++)
    if (write(fd, buf, 64) != 64)
      die("write");
}

__attribute__((noinline)) void bench_read(int fd, long n) {
  for (long i = 0; i < n; i++)
    if (read(fd, buf, 64) != 64)
      die("read");
}

static long rss_kb(void) {
  char line[256];
  long v = -1;
  FILE *f = fopen("/proc/self/status", "r");

  if (f == NULL)
    return -1;
  while (fgets(line, sizeof(line), f))
    if (sscanf(line, "VmRSS: %ld", &v) == 1)
      break;
  fclose(f);
  return v;
}

static double now_s(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  struct sockaddr_in sa;
  const char *mode = "write";
  long n = 10000, mib = 1024, k = 1000, i;
  int c, lfd, cfd, sfd;

  while ((c = getopt(argc, argv, "m:n:b:k:")) != -1) {
    switch (c) {
      case 'm': mode = optarg; break;
      case 'n': n = atol(optarg); break;
      case 'b': mib = atol(optarg); break;
      case 'k': k = atol(optarg); break;
      default:
        fprintf(stderr, "usage: callgrind-io -m write|read|bulk|rss "
                        "[-n N] [-b MIB] [-k K]\n");
        return 2;
    }
  }
  lfd = listener(&sa);

  if (strcmp(mode, "write") == 0 || strcmp(mode, "read") == 0) {
    double spent = 0;

    sfd = pair(lfd, &sa, &cfd);
    /* Warm up both paths (lazy binding, the shim's per-fd state). */
    bench_write(cfd, 10);
    bench_read(sfd, 10);
    if (mode[0] == 'w') {
      /* In pieces the socket takes; the reader drains, unmeasured. */
      for (i = 0; i < n; i += 1000) {
        long m = n - i < 1000 ? n - i : 1000, got = 0;
        double t = now_s();
        bench_write(cfd, m);
        spent += now_s() - t;
        while (got < m * 64) {
          ssize_t r = recv(sfd, buf + 1024, (size_t)(m * 64 - got), 0);
          if (r <= 0)
            die("recv");
          got += r;
        }
      }
    } else {
      /* Queue the bytes first, unmeasured, in pieces the socket takes. */
      for (i = 0; i < n; i += 1000) {
        long m = n - i < 1000 ? n - i : 1000;
        double t;
        for (long j = 0; j < m; j++)
          if (write(cfd, buf, 64) != 64)
            die("write");
        t = now_s();
        bench_read(sfd, m);
        spent += now_s() - t;
      }
    }
    printf("calls=%ld ns_per_call=%.1f\n", n, spent * 1e9 / (double)n);
    return 0;
  }

  if (strcmp(mode, "bulk") == 0) {
    pid_t pid;
    double t0, t1;
    char ack;

    pid = fork();
    if (pid < 0)
      die("fork");
    if (pid == 0) {
      ssize_t r;
      int s = accept(lfd, NULL, NULL);
      if (s < 0)
        die("accept");
      while ((r = read(s, buf, sizeof(buf))) > 0)
        ;
      if (write(s, "k", 1) != 1)
        die("write");
      close(s);
      _exit(0);
    }
    cfd = socket(AF_INET, SOCK_STREAM, 0);
    if (cfd < 0 || connect(cfd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
      die("connect");
    t0 = now_s();
    for (i = 0; i < mib * 16; i++) {
      size_t off = 0;
      while (off < sizeof(buf)) {
        ssize_t w = write(cfd, buf + off, sizeof(buf) - off);
        if (w < 0 && errno == EINTR)
          continue;
        if (w <= 0)
          die("write");
        off += (size_t)w;
      }
    }
    shutdown(cfd, SHUT_WR);
    if (read(cfd, &ack, 1) != 1)
      die("read ack");
    t1 = now_s();
    waitpid(pid, NULL, 0);
    printf("mib=%ld s=%.4f mib_s=%.1f\n", mib, t1 - t0, mib / (t1 - t0));
    return 0;
  }

  if (strcmp(mode, "rss") == 0) {
    long r0, r1;
    int *fds = calloc((size_t)k * 2, sizeof(int));

    if (fds == NULL)
      die("calloc");
    sfd = pair(lfd, &sa, &cfd);
    r0 = rss_kb();
    for (i = 0; i < k; i++)
      fds[2 * i] = pair(lfd, &sa, &fds[2 * i + 1]);
    r1 = rss_kb();
    printf("rss0_kb=%ld rssk_kb=%ld k=%ld\n", r0, r1, k);
    return 0;
  }
  fprintf(stderr, "callgrind-io: unknown mode '%s'\n", mode);
  return 2;
}
