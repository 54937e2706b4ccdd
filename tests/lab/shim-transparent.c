/* shim-transparent: programs that must not notice libtfo_preload.so
 * (issue 12, "the shim is transparent"), and the server that watches them,
 * for test-shim-transparent.sh and test-shim-programs.sh. Each client mode
 * runs the same under the shim and, as a control, without it.
 *
 *   shim-transparent serve [-6] -p PORT [-q QLEN] [-b BANNER]
 *       A server that says when things happen. Per connection, one thread:
 *       [BANNER "\n"], then it reads; at the first '\n' it answers
 *       "OK <bytes up to and including the '\n'>\n", and reads on until
 *       EOF, a reset or 3 s of silence. Lines on stdout (t: CLOCK_MONOTONIC
 *       in ms, the same clock in every network namespace):
 *         accept id=N t=MS lport=PEERPORT peer=ADDR syn_data=0|1
 *         answer id=N bytes=N
 *         end id=N t=MS bytes=TOTAL how=eof|reset|timeout|error
 *
 * Client modes (HOST an IPv4 or IPv6 address). Each prints key=value lines
 * and exits 0 when its own part went as it should (the test judges the
 * rest from these lines and the server's):
 *   req HOST PORT SIZE close|rawclose [nb]
 *       connect (blocking; nb: non-blocking, then poll, as event loops
 *       do), a SIZE-byte request, its answer, then close(2) or
 *       syscall(SYS_close) (as libuv does)
 *   s1 CASE HOST PORT
 *       connect (blocking; sleep-nb: non-blocking), print "connected t=MS
 *       lport=P held=0|1", then do nothing the shim could see for 1.5 s:
 *         sleep   nanosleep
 *         sleep-nb  the same after a non-blocking connect
 *         accept  block in accept(2) on a listener of this process that
 *                 nobody connects to (SO_RCVTIMEO 1.5 s)
 *         join    pthread_join of a thread that sleeps
 *         cond    pthread_cond_timedwait (a futex) that nobody signals
 *         poll    pthread_join of a thread whose poll(2) on a pipe began
 *                 before the connect
 *       then a request and its answer ("answer=ok"). The server says when
 *       it accepted.
 *   s1 self 127.0.0.1 0
 *       this process listens on loopback (TFO queue), connects to itself
 *       once to get a cookie, then connects again and blocks in accept(2)
 *       (SO_RCVTIMEO 2 s): "self_accept_ms=MS" or "self_accept=timeout"
 *   s2 close|rawclose|close-stay|rawclose-stay HOST PORT
 *       connect, then close without writing (close(2), or
 *       syscall(SYS_close)); exit at once, or (-stay) 500 ms later
 *   s3 write|read HOST PORT
 *       fork a child that execs this program (s3-child) without
 *       LD_PRELOAD; connect; pass the socket over a socketpair with
 *       SCM_RIGHTS; close our copy; the child writes first (write) or reads
 *       the banner first (read), then a request and its answer
 *   connect HOST PORT block|nonblock [io]
 *       connect=0|ERRNO; non-blocking: then poll for POLLOUT (2 s):
 *       "revents=OUT,ERR,HUP poll_ms=MS so_error=0|ERRNO"; with io, when
 *       connected: a request and its answer, "io=ok|ERRNO|eof"
 *   s6 HOST PORT
 *       non-blocking connect, poll POLLOUT: connect=, writable_ms=,
 *       so_error=, then a request and its answer: answer=ok
 *   s7 HOST PORT
 *       non-blocking connect, poll POLLOUT, then a first send(2) of 65536
 *       bytes (the last a '\n'): first=N, then the rest; the server's
 *       answer: "sent=65536 answer=N"
 * SPDX-License-Identifier: MIT */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
/* Not <netinet/tcp.h>: only the kernel's header has tcpi_segs_out. */
#include <linux/tcp.h>

#define STATE_SYN_SENT 2 /* TCP_SYN_SENT: in <netinet/tcp.h> only */
#define IO_TIMEOUT_S 3
#define WAIT_MS 1500

extern char **environ;

static struct sockaddr_storage dst;
static socklen_t dstlen;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

static void usage(void) {
  fprintf(stderr, "usage: see the comment at the top of shim-transparent.c\n");
  exit(2);
}

static double now_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};

  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

static void out(const char *fmt, ...) {
  va_list ap;

  pthread_mutex_lock(&out_lock);
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  fflush(stdout);
  pthread_mutex_unlock(&out_lock);
}

static const char *ename(int e) {
  static char buf[32];

  switch (e) {
    case 0: return "0";
    case EINPROGRESS: return "EINPROGRESS";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ECONNRESET: return "ECONNRESET";
    case EPIPE: return "EPIPE";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EAGAIN: return "EAGAIN";
    case EISCONN: return "EISCONN";
    case EALREADY: return "EALREADY";
    case ENOTCONN: return "ENOTCONN";
    case EHOSTUNREACH: return "EHOSTUNREACH";
    case ENETUNREACH: return "ENETUNREACH";
    case EPROTO: return "EPROTO";
    case EBADF: return "EBADF";
    case EINTR: return "EINTR";
    default:
      snprintf(buf, sizeof(buf), "errno%d", e);
      return buf;
  }
}

static void parse_dst(const char *host, const char *port) {
  struct sockaddr_in *sin = (struct sockaddr_in *)&dst;
  struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&dst;
  long p = strtol(port, NULL, 10);

  memset(&dst, 0, sizeof(dst));
  if (p < 0 || p > 65535)
    usage();
  if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)p);
    dstlen = sizeof(*sin);
  } else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons((uint16_t)p);
    dstlen = sizeof(*sin6);
  } else {
    usage();
  }
}

static unsigned local_port(int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);

  if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
    return 0;
  if (ss.ss_family == AF_INET)
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
  return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

/* 1 when fd's connection has sent nothing yet: the SYN is held back. */
static int is_held(int fd) {
  struct tcp_info ti;
  socklen_t len = sizeof(ti);

  memset(&ti, 0, sizeof(ti));
  return getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
         ti.tcpi_state == STATE_SYN_SENT && ti.tcpi_segs_out == 0;
}

static void set_timeouts(int fd, int sec) {
  struct timeval tv = {sec, 0};

  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int new_socket(int nonblock) {
  int fd = socket(dst.ss_family, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0),
                  0);

  if (fd < 0) {
    perror("shim-transparent: socket");
    exit(1);
  }
  return fd;
}

/* Blocking connect to dst: the fd, or -1 with errno. */
static int connect_blocking(void) {
  int fd = new_socket(0), e;

  set_timeouts(fd, IO_TIMEOUT_S);
  if (connect(fd, (struct sockaddr *)&dst, dstlen) == 0)
    return fd;
  e = errno;
  close(fd);
  errno = e;
  return -1;
}

static int write_all(int fd, const char *buf, size_t n) {
  size_t off = 0;
  ssize_t r;
  struct pollfd p;

  while (off < n) {
    r = write(fd, buf + off, n - off);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0 && errno == EAGAIN && (fcntl(fd, F_GETFL) & O_NONBLOCK)) {
      p.fd = fd;
      p.events = POLLOUT;
      if (poll(&p, 1, IO_TIMEOUT_S * 1000) != 1) {
        errno = ETIMEDOUT;
        return -1;
      }
      continue;
    }
    if (r <= 0)
      return -1;
    off += (size_t)r;
  }
  return 0;
}

/* Reads one line into buf; -1 with errno (0 bytes then EOF: errno 0). */
static int read_line(int fd, char *buf, size_t cap) {
  size_t off = 0;
  ssize_t r;
  struct pollfd p;

  while (off < cap - 1) {
    r = read(fd, buf + off, cap - 1 - off);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0 && errno == EAGAIN && (fcntl(fd, F_GETFL) & O_NONBLOCK)) {
      p.fd = fd;
      p.events = POLLIN;
      if (poll(&p, 1, IO_TIMEOUT_S * 1000) != 1) {
        errno = ETIMEDOUT;
        return -1;
      }
      continue;
    }
    if (r <= 0) {
      if (r == 0)
        errno = 0;
      return -1;
    }
    off += (size_t)r;
    if (buf[off - 1] == '\n')
      break;
  }
  buf[off] = '\0';
  return 0;
}

static char *request(size_t n) {
  char *b = malloc(n);

  if (b == NULL)
    abort();
  memset(b, 'a' + (int)(n % 26), n);
  b[n - 1] = '\n';
  return b;
}

/* A request of n bytes and its answer. 0, or -1 with errno (EPROTO: a
 * wrong answer; 0: EOF). */
static int exchange(int fd, size_t n) {
  char *b = request(n), line[64], want[32];
  int rc = write_all(fd, b, n);

  free(b);
  if (rc != 0)
    return -1;
  if (read_line(fd, line, sizeof(line)) != 0)
    return -1;
  snprintf(want, sizeof(want), "OK %zu\n", n);
  if (strcmp(line, want) != 0) {
    errno = EPROTO;
    return -1;
  }
  return 0;
}

static const char *io_result(int fd, size_t n) {
  if (exchange(fd, n) == 0)
    return "ok";
  return errno == 0 ? "eof" : ename(errno);
}

/* --- serve ---------------------------------------------------------- */

struct sconn {
  int fd;
  unsigned long id;
  const char *banner;
};

static void *serve_conn(void *arg) {
  struct sconn *c = arg;
  char buf[16384];
  size_t total = 0, req = 0;
  int answered = 0;
  ssize_t r;
  const char *how = "eof";

  set_timeouts(c->fd, IO_TIMEOUT_S);
  if (c->banner != NULL) {
    snprintf(buf, sizeof(buf), "%s\n", c->banner);
    if (write_all(c->fd, buf, strlen(buf)) != 0)
      how = "error";
  }
  for (;;) {
    r = read(c->fd, buf, sizeof(buf));
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      how = errno == EAGAIN ? "timeout"
            : errno == ECONNRESET ? "reset"
                                  : "error";
      break;
    }
    if (r == 0)
      break;
    if (!answered) {
      char *nl = memchr(buf, '\n', (size_t)r);

      if (nl != NULL) {
        char line[64];

        req += (size_t)(nl - buf) + 1;
        answered = 1;
        out("answer id=%lu bytes=%zu\n", c->id, req);
        snprintf(line, sizeof(line), "OK %zu\n", req);
        if (write_all(c->fd, line, strlen(line)) != 0) {
          total += (size_t)r;
          how = "error";
          break;
        }
      } else {
        req += (size_t)r;
      }
    }
    total += (size_t)r;
  }
  out("end id=%lu t=%.3f bytes=%zu how=%s\n", c->id, now_ms(), total, how);
  close(c->fd);
  free(c);
  return NULL;
}

static int run_serve(int argc, char **argv) {
  struct sockaddr_storage ss;
  socklen_t slen;
  const char *banner = NULL;
  unsigned long id = 0;
  int family = AF_INET, port = -1, qlen = 64, one = 1, opt, lfd;

  while ((opt = getopt(argc, argv, "6p:q:b:")) != -1) {
    switch (opt) {
      case '6': family = AF_INET6; break;
      case 'p': port = atoi(optarg); break;
      case 'q': qlen = atoi(optarg); break;
      case 'b': banner = optarg; break;
      default: usage();
    }
  }
  if (port <= 0 || port > 65535)
    usage();
  signal(SIGPIPE, SIG_IGN);
  memset(&ss, 0, sizeof(ss));
  if (family == AF_INET) {
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    slen = sizeof(*sin);
  } else {
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons((uint16_t)port);
    sin6->sin6_addr = in6addr_any;
    slen = sizeof(*sin6);
  }
  lfd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (lfd < 0)
    return perror("socket"), 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (family == AF_INET6)
    setsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  if (bind(lfd, (struct sockaddr *)&ss, slen) != 0)
    return perror("bind"), 1;
  if (qlen > 0 &&
      setsockopt(lfd, IPPROTO_TCP, TCP_FASTOPEN, &qlen, sizeof(qlen)) != 0)
    return perror("TCP_FASTOPEN"), 1;
  if (listen(lfd, 128) != 0)
    return perror("listen"), 1;
  out("listen port=%d\n", port);
  for (;;) {
    struct sockaddr_storage peer;
    socklen_t plen = sizeof(peer);
    struct tcp_info ti;
    socklen_t tlen = sizeof(ti);
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned pport = 0;
    struct sconn *c;
    pthread_t t;
    int fd = accept4(lfd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC);
    double t_acc = now_ms();

    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED || errno == EAGAIN)
        continue;
      return perror("accept"), 1;
    }
    memset(&ti, 0, sizeof(ti));
    getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tlen);
    if (peer.ss_family == AF_INET) {
      inet_ntop(AF_INET, &((struct sockaddr_in *)&peer)->sin_addr, host,
                sizeof(host));
      pport = ntohs(((struct sockaddr_in *)&peer)->sin_port);
    } else {
      inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&peer)->sin6_addr, host,
                sizeof(host));
      pport = ntohs(((struct sockaddr_in6 *)&peer)->sin6_port);
    }
    id++;
    out("accept id=%lu t=%.3f lport=%u peer=%s syn_data=%d\n", id, t_acc,
        pport, host, (ti.tcpi_options & TCPI_OPT_SYN_DATA) != 0);
    c = malloc(sizeof(*c));
    if (c == NULL)
      abort();
    c->fd = fd;
    c->id = id;
    c->banner = banner;
    if (pthread_create(&t, NULL, serve_conn, c) != 0)
      return perror("pthread_create"), 1;
    pthread_detach(t);
  }
}

/* --- req -------------------------------------------------------------- */

static int run_req(size_t n, int raw, int nb) {
  int fd, r, e = 0;
  const char *io;
  struct pollfd p;
  socklen_t elen = sizeof(e);

  if (nb) { /* as an event loop does it (libuv: node) */
    fd = new_socket(1);
    r = connect(fd, (struct sockaddr *)&dst, dstlen);
    if (r != 0 && errno != EINPROGRESS) {
      out("connect=%s\n", ename(errno));
      return 1;
    }
    if (r != 0) {
      p.fd = fd;
      p.events = POLLOUT;
      if (poll(&p, 1, IO_TIMEOUT_S * 1000) != 1 ||
          getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &elen) != 0 || e != 0) {
        out("connect=%s\n", e ? ename(e) : "ETIMEDOUT");
        return 1;
      }
    }
  } else {
    fd = connect_blocking();
    if (fd < 0) {
      out("connect=%s\n", ename(errno));
      return 1;
    }
  }
  out("connect=0 lport=%u\n", local_port(fd));
  io = io_result(fd, n);
  out("io=%s\n", io);
  if (raw)
    syscall(SYS_close, fd);
  else
    close(fd);
  return strcmp(io, "ok") != 0;
}

/* --- s8 --------------------------------------------------------------- */

/* Like libuv: a raw closer (first taught to the shim the way a libuv
 * loaded late teaches it: a socket closed out of its sight, its number
 * taken again), then a non-blocking connect, a poll for its end, the raw
 * close at once, and 100 ms of work with no system call before the exit.
 * Under SCHED_FIFO on one CPU nothing else of this process runs until the
 * exit: the connection's verdict must survive the close. */
static int run_s8(void) {
  struct pollfd p;
  int fd, e = 0;
  socklen_t elen = sizeof(e);
  struct timespec t0, t;

  fd = new_socket(1);
  syscall(SYS_close, fd);
  fd = new_socket(1);
  syscall(SYS_close, fd);
  fd = new_socket(1);
  if (connect(fd, (struct sockaddr *)&dst, dstlen) != 0 &&
      errno != EINPROGRESS) {
    out("connect=%s\n", ename(errno));
    return 1;
  }
  p.fd = fd;
  p.events = POLLOUT;
  if (poll(&p, 1, IO_TIMEOUT_S * 1000) != 1 ||
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &elen) != 0 || e != 0) {
    out("connect=%s\n", e ? ename(e) : "ETIMEDOUT");
    return 1;
  }
  syscall(SYS_close, fd);
  clock_gettime(CLOCK_MONOTONIC, &t0);
  do /* vDSO: no system call */
    clock_gettime(CLOCK_MONOTONIC, &t);
  while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 <
         100);
  out("connected=1\n");
  return 0;
}

/* --- s1 --------------------------------------------------------------- */

static pthread_mutex_t s1_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t s1_cond = PTHREAD_COND_INITIALIZER;
static volatile int s1_polling;
static int s1_pipe[2];

static void *s1_sleeper(void *arg) {
  (void)arg;
  sleep_ms(WAIT_MS);
  return NULL;
}

static void *s1_poller(void *arg) {
  struct pollfd p;

  (void)arg;
  p.fd = s1_pipe[0];
  p.events = POLLIN;
  __atomic_store_n(&s1_polling, 1, __ATOMIC_SEQ_CST);
  poll(&p, 1, WAIT_MS + 150);
  return NULL;
}

/* A TCP listener on 127.0.0.1, port chosen by the kernel, with a TFO queue
 * when tfo; SO_RCVTIMEO bounds accept(2). */
static int loopback_listener(int tfo, int timeout_ms, struct sockaddr_in *at) {
  struct sockaddr_in sin;
  struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  socklen_t len = sizeof(sin);
  int lfd = socket(AF_INET, SOCK_STREAM, 0), q = 16;

  memset(&sin, 0, sizeof(sin));
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (lfd < 0 || bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
    perror("shim-transparent: listener");
    exit(1);
  }
  if (tfo)
    setsockopt(lfd, IPPROTO_TCP, TCP_FASTOPEN, &q, sizeof(q));
  if (listen(lfd, 16) != 0) {
    perror("shim-transparent: listen");
    exit(1);
  }
  setsockopt(lfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  getsockname(lfd, (struct sockaddr *)&sin, &len);
  if (at != NULL)
    *at = sin;
  return lfd;
}

/* Serves one request on an accepted socket (the "self" case). */
static int serve_one(int fd) {
  char line[256], ans[32];

  set_timeouts(fd, IO_TIMEOUT_S);
  if (read_line(fd, line, sizeof(line)) != 0)
    return -1;
  snprintf(ans, sizeof(ans), "OK %zu\n", strlen(line));
  return write_all(fd, ans, strlen(ans));
}

static int run_s1_self(void) {
  struct sockaddr_in at;
  int lfd = loopback_listener(1, 2000, &at), fd, afd, rc = 0, i;
  double t0;

  memcpy(&dst, &at, sizeof(at));
  dstlen = sizeof(at);
  /* Twice: the first gets the cookie, the second uses it. */
  for (i = 0; i < 2; i++) {
    char *b = request(20);

    fd = connect_blocking();
    if (fd < 0) {
      out("warm_connect=%s\n", ename(errno));
      return 1;
    }
    write_all(fd, b, 20);
    free(b);
    afd = accept(lfd, NULL, NULL);
    if (afd < 0) {
      out("warm_accept=%s\n", ename(errno));
      return 1;
    }
    serve_one(afd);
    {
      char line[64];
      read_line(fd, line, sizeof(line));
    }
    close(afd);
    close(fd);
  }
  fd = connect_blocking();
  if (fd < 0) {
    out("connect=%s\n", ename(errno));
    return 1;
  }
  t0 = now_ms();
  out("connected t=%.3f lport=%u held=%d\n", t0, local_port(fd), is_held(fd));
  afd = accept(lfd, NULL, NULL);
  if (afd < 0) {
    out("self_accept=timeout errno=%s self_accept_ms=%.1f\n", ename(errno),
        now_ms() - t0);
    rc = 1;
  } else {
    char *b = request(30);
    char line[64];

    out("self_accept_ms=%.1f\n", now_ms() - t0);
    write_all(fd, b, 30);
    free(b);
    serve_one(afd);
    if (read_line(fd, line, sizeof(line)) == 0 && strcmp(line, "OK 30\n") == 0)
      out("answer=ok\n");
    else
      rc = 1;
    close(afd);
  }
  close(fd);
  close(lfd);
  return rc;
}

static int run_s1(const char *cas) {
  int nb = strcmp(cas, "sleep-nb") == 0, fd, e;
  double t0;
  pthread_t t;
  const char *io;

  if (strcmp(cas, "poll") == 0) {
    if (pipe(s1_pipe) != 0)
      return perror("pipe"), 1;
    pthread_create(&t, NULL, s1_poller, NULL);
    while (!__atomic_load_n(&s1_polling, __ATOMIC_SEQ_CST))
      sleep_ms(1);
    sleep_ms(100); /* well inside its poll by now */
  }

  fd = new_socket(nb);
  set_timeouts(fd, IO_TIMEOUT_S);
  if (connect(fd, (struct sockaddr *)&dst, dstlen) != 0 &&
      !(nb && errno == EINPROGRESS)) {
    e = errno;
    out("connect=%s\n", ename(e));
    return 1;
  }
  t0 = now_ms();
  out("connected t=%.3f lport=%u held=%d\n", t0, local_port(fd), is_held(fd));

  if (strcmp(cas, "sleep") == 0 || nb) {
    sleep_ms(WAIT_MS);
  } else if (strcmp(cas, "accept") == 0) {
    int lfd = loopback_listener(0, WAIT_MS, NULL);
    int a = accept(lfd, NULL, NULL);

    out("accept_result=%s\n", a < 0 ? ename(errno) : "connection");
    if (a >= 0)
      close(a);
    close(lfd);
  } else if (strcmp(cas, "join") == 0) {
    pthread_create(&t, NULL, s1_sleeper, NULL);
    pthread_join(t, NULL);
  } else if (strcmp(cas, "cond") == 0) {
    struct timespec until;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += WAIT_MS / 1000;
    until.tv_nsec += (WAIT_MS % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s1_lock);
    while (pthread_cond_timedwait(&s1_cond, &s1_lock, &until) != ETIMEDOUT)
      ;
    pthread_mutex_unlock(&s1_lock);
  } else if (strcmp(cas, "poll") == 0) {
    pthread_join(t, NULL);
  } else {
    usage();
  }
  out("waited_ms=%.1f\n", now_ms() - t0);

  io = io_result(fd, 40);
  out("answer=%s\n", io);
  close(fd);
  return strcmp(io, "ok") != 0;
}

/* --- s2 --------------------------------------------------------------- */

static int run_s2(const char *how) {
  int fd = connect_blocking();

  if (fd < 0) {
    out("connect=%s\n", ename(errno));
    return 1;
  }
  out("connected t=%.3f lport=%u held=%d\n", now_ms(), local_port(fd),
      is_held(fd));
  if (strncmp(how, "rawclose", 8) == 0)
    syscall(SYS_close, fd);
  else
    close(fd);
  if (strstr(how, "-stay") != NULL)
    sleep_ms(500);
  return 0;
}

/* --- s3 --------------------------------------------------------------- */

static int s3_child(int ufd, const char *mode) {
  char cbuf[CMSG_SPACE(sizeof(int))], b, line[64];
  struct iovec iov = {&b, 1};
  struct msghdr mh;
  struct cmsghdr *cm;
  int fd = -1, shim = 0;
  const char *io;
  FILE *maps;

  /* Say whether the shim is in this image (it must not be). */
  maps = fopen("/proc/self/maps", "r");
  if (maps != NULL) {
    char l[512];

    while (fgets(l, sizeof(l), maps) != NULL)
      if (strstr(l, "libtfo_preload") != NULL)
        shim = 1;
    fclose(maps);
  }
  out("child_shim=%d\n", shim);
  set_timeouts(ufd, IO_TIMEOUT_S);
  memset(&mh, 0, sizeof(mh));
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = cbuf;
  mh.msg_controllen = sizeof(cbuf);
  if (recvmsg(ufd, &mh, 0) != 1) {
    out("child_recvmsg=%s\n", ename(errno));
    return 1;
  }
  for (cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm))
    if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
      memcpy(&fd, CMSG_DATA(cm), sizeof(int));
  if (fd < 0) {
    out("child_fd=none\n");
    return 1;
  }
  set_timeouts(fd, IO_TIMEOUT_S);
  if (strcmp(mode, "read") == 0) {
    if (read_line(fd, line, sizeof(line)) != 0) {
      out("child_banner=%s\n", errno ? ename(errno) : "eof");
      return 1;
    }
    line[strcspn(line, "\n")] = '\0';
    out("child_banner=%s\n", line);
  }
  io = io_result(fd, 50);
  out("child_answer=%s\n", io);
  close(fd);
  return strcmp(io, "ok") != 0;
}

static int run_s3(const char *mode) {
  char cbuf[CMSG_SPACE(sizeof(int))], b = 'x', fdarg[16];
  struct iovec iov = {&b, 1};
  struct msghdr mh;
  struct cmsghdr *cm;
  int sv[2], fd, status, n = 0, i;
  char **env;
  pid_t pid;

  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
    return perror("socketpair"), 1;
  /* The child's environment: ours without LD_PRELOAD. */
  for (i = 0; environ[i] != NULL; i++)
    n++;
  env = calloc((size_t)n + 1, sizeof(*env));
  for (i = 0, n = 0; environ[i] != NULL; i++)
    if (strncmp(environ[i], "LD_PRELOAD=", 11) != 0)
      env[n++] = environ[i];
  pid = fork();
  if (pid < 0)
    return perror("fork"), 1;
  if (pid == 0) {
    char *args[5];

    close(sv[0]);
    snprintf(fdarg, sizeof(fdarg), "%d", sv[1]);
    args[0] = (char *)"shim-transparent";
    args[1] = (char *)"s3-child";
    args[2] = fdarg;
    args[3] = (char *)mode;
    args[4] = NULL;
    execve("/proc/self/exe", args, env);
    _exit(127);
  }
  close(sv[1]);
  free(env);

  fd = connect_blocking();
  if (fd < 0) {
    out("connect=%s\n", ename(errno));
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return 1;
  }
  out("connected lport=%u held=%d\n", local_port(fd), is_held(fd));
  memset(&mh, 0, sizeof(mh));
  memset(cbuf, 0, sizeof(cbuf));
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = cbuf;
  mh.msg_controllen = sizeof(cbuf);
  cm = CMSG_FIRSTHDR(&mh);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cm), &fd, sizeof(int));
  if (sendmsg(sv[0], &mh, 0) != 1) {
    out("sendmsg=%s\n", ename(errno));
    return 1;
  }
  close(fd);
  close(sv[0]);
  while (waitpid(pid, &status, 0) != pid)
    if (errno != EINTR)
      return perror("waitpid"), 1;
  out("child_status=%d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128);
  return !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* --- connect / s6 / s7 ------------------------------------------------ */

/* Waits for POLLOUT; prints revents, the wait, SO_ERROR. Returns SO_ERROR
 * (or ETIMEDOUT when nothing came). */
static int wait_writable(int fd, double t0, const char *key) {
  struct pollfd p = {fd, POLLOUT, 0};
  int r, err = 0;
  socklen_t elen = sizeof(err);
  double ms;

  while ((r = poll(&p, 1, 2000)) < 0 && errno == EINTR)
    ;
  ms = now_ms() - t0;
  if (r != 1) {
    out("revents=none %s=%.1f so_error=none\n", key, ms);
    return ETIMEDOUT;
  }
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
  out("revents=%s%s%s%s %s=%.1f so_error=%s\n",
      p.revents & POLLOUT ? "OUT," : "", p.revents & POLLERR ? "ERR," : "",
      p.revents & POLLHUP ? "HUP," : "", p.revents & POLLIN ? "IN," : "", key,
      ms, ename(err));
  return err;
}

static int run_connect(int nb, int io) {
  int fd = new_socket(nb), r, e;
  double t0 = now_ms();

  set_timeouts(fd, IO_TIMEOUT_S);
  r = connect(fd, (struct sockaddr *)&dst, dstlen);
  e = r == 0 ? 0 : errno;
  out("connect=%s lport=%u\n", ename(e), local_port(fd));
  if (nb && e == EINPROGRESS)
    e = wait_writable(fd, t0, "poll_ms");
  if (e == 0 && io)
    out("io=%s\n", io_result(fd, 60));
  close(fd);
  return 0;
}

static int run_s6(void) {
  int fd = new_socket(1), r, e;
  double t0 = now_ms();
  const char *io;

  r = connect(fd, (struct sockaddr *)&dst, dstlen);
  e = r == 0 ? 0 : errno;
  out("connect=%s lport=%u\n", ename(e), local_port(fd));
  if (r != 0 && e != EINPROGRESS)
    return 1;
  e = wait_writable(fd, t0, "writable_ms");
  if (e != 0)
    return 1;
  io = io_result(fd, 70);
  out("answer=%s\n", io);
  close(fd);
  return strcmp(io, "ok") != 0;
}

static int run_s7(void) {
  const size_t total = 65536;
  char *b = request(total), line[64];
  int fd = new_socket(1), r, e;
  ssize_t first;
  double t0 = now_ms();

  r = connect(fd, (struct sockaddr *)&dst, dstlen);
  e = r == 0 ? 0 : errno;
  out("connect=%s lport=%u\n", ename(e), local_port(fd));
  if (r != 0 && e != EINPROGRESS)
    return 1;
  if (wait_writable(fd, t0, "writable_ms") != 0)
    return 1;
  first = send(fd, b, total, MSG_NOSIGNAL);
  e = errno;
  out("first=%zd%s%s\n", first, first < 0 ? " first_errno=" : "",
      first < 0 ? ename(e) : "");
  if (first < 0) {
    if (e != EAGAIN && e != EINPROGRESS)
      return 1;
    first = 0;
  }
  if (write_all(fd, b + first, total - (size_t)first) != 0) {
    out("rest=%s\n", ename(errno));
    return 1;
  }
  free(b);
  if (read_line(fd, line, sizeof(line)) != 0) {
    out("answer=%s\n", errno ? ename(errno) : "eof");
    return 1;
  }
  out("sent=%zu answer=%ld\n", total,
      strncmp(line, "OK ", 3) == 0 ? strtol(line + 3, NULL, 10) : -1L);
  close(fd);
  return 0;
}

int main(int argc, char **argv) {
  const char *mode;

  if (argc < 2)
    usage();
  mode = argv[1];
  setvbuf(stdout, NULL, _IOLBF, 0);
  signal(SIGPIPE, SIG_IGN);
  if (strcmp(mode, "serve") == 0)
    return run_serve(argc - 1, argv + 1);
  if (strcmp(mode, "s3-child") == 0 && argc == 4)
    return s3_child(atoi(argv[2]), argv[3]);
  if (argc < 4)
    usage();
  if (strcmp(mode, "s1") == 0 && argc == 5 && strcmp(argv[2], "self") == 0)
    return run_s1_self();
  if (strcmp(mode, "req") == 0 && (argc == 6 || argc == 7)) {
    parse_dst(argv[2], argv[3]);
    return run_req((size_t)atol(argv[4]), strcmp(argv[5], "rawclose") == 0,
                   argc == 7 && strcmp(argv[6], "nb") == 0);
  }
  if (strcmp(mode, "s1") == 0 && argc == 5) {
    parse_dst(argv[3], argv[4]);
    return run_s1(argv[2]);
  }
  if (strcmp(mode, "s8") == 0 && argc == 4) {
    parse_dst(argv[2], argv[3]);
    return run_s8();
  }
  if (strcmp(mode, "s2") == 0 && argc == 5) {
    parse_dst(argv[3], argv[4]);
    return run_s2(argv[2]);
  }
  if (strcmp(mode, "s3") == 0 && argc == 5) {
    parse_dst(argv[3], argv[4]);
    return run_s3(argv[2]);
  }
  if (strcmp(mode, "connect") == 0 && (argc == 5 || argc == 6)) {
    parse_dst(argv[2], argv[3]);
    return run_connect(strcmp(argv[4], "nonblock") == 0,
                       argc == 6 && strcmp(argv[5], "io") == 0);
  }
  if (strcmp(mode, "s6") == 0 && argc == 4) {
    parse_dst(argv[2], argv[3]);
    return run_s6();
  }
  if (strcmp(mode, "s7") == 0 && argc == 4) {
    parse_dst(argv[2], argv[3]);
    return run_s7();
  }
  usage();
  return 2;
}
