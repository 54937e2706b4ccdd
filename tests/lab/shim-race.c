/* shim-race: an event-driven client whose socket is everywhere a program
 * can attach a socket, for running under libtfo_preload.so through a path
 * that swallows TFO SYNs (test-shim-race.sh). The shim then connects the
 * socket again plainly, in place; this checks that the program cannot
 * tell.
 *
 *   shim-race [-r] [-b LOCAL_IP:PORT | -B LOCAL_IP6:PORT] HOST PORT SIZE
 *
 * One request of SIZE bytes (the last a newline) to a lab-server ("OK
 * SIZE\n"), on a non-blocking socket that has, before connect():
 * options (SO_SNDBUF, SO_RCVBUF, TCP_NODELAY, IP_TOS/IPV6_TCLASS,
 * SO_KEEPALIVE), FD_CLOEXEC, an explicit local address with -b/-B, and
 * registrations in three epoll sets: A (EPOLLIN|EPOLLOUT|EPOLLET, the one
 * the program waits on), B (EPOLLIN|EPOLLONESHOT, armed), C
 * (EPOLLOUT|EPOLLONESHOT, fired once at connect, so disarmed). A forked
 * child holds copies of the sets meanwhile (sets inherited across fork).
 * With -r (a path that resets SYNs with data) the reset itself is seen,
 * as events on A and B before the shim mends the socket at the program's
 * next read or write: the program then re-arms B, as a one-shot program
 * does after an event, and epA says "reset-seen".
 * Prints one line:
 *   resp=OK_300 ms=258.1 fd=ok flags=ok opts=ok bound=ok epA=ok epB=ok
 *   epC=ok
 * and exits 0 when every check says ok.
 * SPDX-License-Identifier: MIT */
#define _GNU_SOURCE

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int parse(const char *s, int port, struct sockaddr_storage *ss,
                 socklen_t *len) {
  struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

  memset(ss, 0, sizeof(*ss));
  if (inet_pton(AF_INET, s, &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    *len = sizeof(*a4);
    return 0;
  }
  if (inet_pton(AF_INET6, s, &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((uint16_t)port);
    *len = sizeof(*a6);
    return 0;
  }
  return -1;
}

/* "IP:PORT" or "IP6:PORT" (the last colon splits). */
static int parse_local(char *s, struct sockaddr_storage *ss, socklen_t *len) {
  char *c = strrchr(s, ':');

  if (c == NULL)
    return -1;
  *c = '\0';
  return parse(s, atoi(c + 1), ss, len);
}

/* The address bound, and its port unless the program let the kernel pick
 * one (port 0). */
static int same_local(const struct sockaddr_storage *got,
                      const struct sockaddr_storage *want) {
  if (got->ss_family != want->ss_family)
    return 0;
  if (want->ss_family == AF_INET) {
    const struct sockaddr_in *g = (const void *)got, *w = (const void *)want;

    return g->sin_addr.s_addr == w->sin_addr.s_addr &&
           (w->sin_port == 0 || g->sin_port == w->sin_port);
  }
  {
    const struct sockaddr_in6 *g = (const void *)got, *w = (const void *)want;

    return memcmp(&g->sin6_addr, &w->sin6_addr, sizeof(g->sin6_addr)) == 0 &&
           (w->sin6_port == 0 || g->sin6_port == w->sin6_port);
  }
}

struct opt {
  int level, name, val;
};

int main(int argc, char **argv) {
  struct sockaddr_storage dst, local, got;
  socklen_t dlen, llen = 0, glen;
  struct opt opts[5];
  int vals[5];
  struct epoll_event ev, bev, out[4];
  char *req, buf[256];
  size_t size, off = 0, have = 0;
  double t0, ms;
  int fd, a, b, c, i, k, m, n, fl0, fd0, ok = 1, opt, v6, got_b = 0;
  int reset = 0;
  uint32_t seen_a = 0;
  pid_t child;
  const char *fd_ok = "ok", *flags_ok = "ok", *opts_ok = "ok",
             *bound_ok = "ok", *a_ok = "ok", *b_ok = "ok", *c_ok = "ok";

  while ((opt = getopt(argc, argv, "rb:B:")) != -1) {
    if (opt == 'r') {
      reset = 1;
      continue;
    }
    if (parse_local(optarg, &local, &llen) != 0) {
      fprintf(stderr, "shim-race: bad local address\n");
      return 2;
    }
  }
  if (argc - optind != 3 ||
      parse(argv[optind], atoi(argv[optind + 1]), &dst, &dlen) != 0 ||
      (size = (size_t)atol(argv[optind + 2])) < 1 || size > 100000) {
    fprintf(stderr, "usage: shim-race [-b LOCAL:PORT] HOST PORT SIZE\n");
    return 2;
  }
  v6 = dst.ss_family == AF_INET6;
  req = malloc(size);
  if (req == NULL)
    return 2;
  memset(req, 'x', size - 1);
  req[size - 1] = '\n';

  fd = socket(dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    perror("socket");
    return 2;
  }
  opts[0] = (struct opt){SOL_SOCKET, SO_SNDBUF, 65536};
  opts[1] = (struct opt){SOL_SOCKET, SO_RCVBUF, 131072};
  opts[2] = (struct opt){IPPROTO_TCP, TCP_NODELAY, 1};
  opts[3] = v6 ? (struct opt){IPPROTO_IPV6, IPV6_TCLASS, 0x28}
               : (struct opt){IPPROTO_IP, IP_TOS, 0x28};
  opts[4] = (struct opt){SOL_SOCKET, SO_KEEPALIVE, 1};
  for (i = 0; i < 5; i++) {
    socklen_t l = sizeof(vals[i]);

    setsockopt(fd, opts[i].level, opts[i].name, &opts[i].val,
               sizeof(opts[i].val));
    /* What the kernel made of it (buffer sizes are doubled). */
    getsockopt(fd, opts[i].level, opts[i].name, &vals[i], &l);
  }
  if (llen != 0 && bind(fd, (struct sockaddr *)&local, llen) != 0) {
    perror("bind");
    return 2;
  }
  fl0 = fcntl(fd, F_GETFL);
  fd0 = fcntl(fd, F_GETFD);

  a = epoll_create1(EPOLL_CLOEXEC);
  b = epoll_create1(EPOLL_CLOEXEC);
  c = epoll_create1(EPOLL_CLOEXEC);
  ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
  ev.data.u64 = 0xA;
  epoll_ctl(a, EPOLL_CTL_ADD, fd, &ev);
  ev.events = EPOLLIN | EPOLLONESHOT;
  ev.data.u64 = 0xB;
  epoll_ctl(b, EPOLL_CTL_ADD, fd, &ev);
  ev.events = EPOLLOUT | EPOLLONESHOT;
  ev.data.u64 = 0xC;
  epoll_ctl(c, EPOLL_CTL_ADD, fd, &ev);

  /* A child that holds the sets (and the socket) while the parent works:
   * copies across fork refer to the same sets. */
  child = fork();
  if (child == 0) {
    pause();
    _exit(0);
  }

  t0 = now_ms();
  if (connect(fd, (struct sockaddr *)&dst, dlen) != 0 &&
      errno != EINPROGRESS) {
    perror("connect");
    return 1;
  }
  /* C fires once (writable) and is disarmed from then on. */
  if (epoll_wait(c, out, 4, 5000) != 1 || out[0].data.u64 != 0xC)
    c_ok = "no-first-event";
  /* The program's loop, on A: write when writable, read when readable. */
  while (have == 0 || buf[have - 1] != '\n') {
    n = epoll_wait(a, out, 4, 5000);
    if (n <= 0) {
      fprintf(stderr, "shim-race: no event in 5 s\n");
      return 1;
    }
    for (i = 0; i < n; i++) {
      if (out[i].data.u64 != 0xA) {
        a_ok = "bad-data";
        continue;
      }
      seen_a |= out[i].events;
      if ((out[i].events & EPOLLERR) != 0 && !reset) {
        a_ok = "EPOLLERR";
      } else if ((out[i].events & EPOLLERR) != 0) {
        a_ok = "reset-seen";
        /* B fired on the reset too (as a one-shot does): re-armed, and
         * the event taken off it. */
        epoll_wait(b, &bev, 1, 0);
        ev.events = EPOLLIN | EPOLLONESHOT;
        ev.data.u64 = 0xB;
        epoll_ctl(b, EPOLL_CTL_MOD, fd, &ev);
      } else if ((out[i].events & EPOLLIN) != 0 && got_b == 0) {
        /* The answer is here, unread: B, armed, reports it once. */
        for (k = 0; k < 2; k++) {
          m = epoll_wait(b, &bev, 1, 0);
          if (m == 1 && bev.data.u64 == 0xB && (bev.events & EPOLLIN))
            got_b++;
        }
        if (got_b == 0)
          got_b = -1;
      }
      while (off < size) {
        ssize_t w = send(fd, req + off, size - off, MSG_NOSIGNAL);

        if (w < 0)
          break;
        off += (size_t)w;
      }
      for (;;) {
        ssize_t r = recv(fd, buf + have, sizeof(buf) - 1 - have, 0);

        if (r <= 0)
          break;
        have += (size_t)r;
        if (have >= sizeof(buf) - 1)
          break;
      }
    }
  }
  ms = now_ms() - t0;
  buf[have - 1] = '\0';
  for (i = 0; buf[i]; i++)
    if (buf[i] == ' ')
      buf[i] = '_';

  /* The same descriptor, with its flags, options and local address. */
  if (fcntl(fd, F_GETFL) != fl0)
    flags_ok = "changed";
  if (fcntl(fd, F_GETFD) != fd0)
    fd_ok = "cloexec-changed";
  for (i = 0; i < 5; i++) {
    int v = -1;
    socklen_t l = sizeof(v);

    if (getsockopt(fd, opts[i].level, opts[i].name, &v, &l) != 0 ||
        v != vals[i])
      opts_ok = "lost";
  }
  glen = sizeof(got);
  if (llen != 0 && getsockname(fd, (struct sockaddr *)&got, &glen) != 0)
    bound_ok = "unknown";
  else if (llen != 0 && !same_local(&got, &local))
    bound_ok = "lost";
  /* B, armed, reported the answer once; C, disarmed, reports nothing. */
  if (got_b != 1)
    b_ok = got_b <= 0 ? "lost" : "not-oneshot";
  if (epoll_wait(c, out, 4, 0) != 0)
    c_ok = "rearmed";
  if (!(seen_a & EPOLLIN))
    a_ok = "no-EPOLLIN";
  kill(child, SIGTERM);
  waitpid(child, NULL, 0);
  ok = strcmp(fd_ok, "ok") == 0 && strcmp(flags_ok, "ok") == 0 &&
       strcmp(opts_ok, "ok") == 0 && strcmp(bound_ok, "ok") == 0 &&
       strcmp(a_ok, reset ? "reset-seen" : "ok") == 0 &&
       strcmp(b_ok, "ok") == 0 &&
       strcmp(c_ok, "ok") == 0;
  printf("resp=%s ms=%.1f fd=%s flags=%s opts=%s bound=%s epA=%s epB=%s "
         "epC=%s\n",
         buf, ms, fd_ok, flags_ok, opts_ok, bound_ok, a_ok, b_ok, c_ok);
  close(fd);
  free(req);
  return ok ? 0 : 1;
}
