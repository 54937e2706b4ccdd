/* tfo-epoll: many concurrent connections driven by tfo_conn_start,
 * tfo_conn_step and tfo_conn_finish on ONE epoll loop; each sends a request
 * (in the SYN when the path allows it), reads the answer, and reports what
 * TCP Fast Open did.
 *
 *   tfo-epoll [-n COUNT] [-s BYTES] [-S STEP] [-F FALLBACK_MS]
 *             [-T TIMEOUT_MS] [-W WAIT_MS] [-R] [-C] [-q] HOST PORT
 *
 * All COUNT connections (default 10) start at once. Connection i sends
 * "GET /" padded with 'x' to BYTES + i * STEP bytes (default 6 + 0) and
 * ended by "\n", so with STEP > 0 every connection expects its own answer
 * from lab-server or uv-server ("OK <bytes>\n"): a reply on the wrong
 * socket would show. -F, -T, -R and -C set tfo_connect_opts (fallback_ms,
 * timeout_ms, TFO_CONNECT_NO_RACE, TFO_CONNECT_NO_CACHE); -W bounds the
 * wait for each answer (default 5000 ms); -q prints the summary only.
 *
 * One line per connection on stdout, in the order they end:
 *   conn=3 outcome=data-acked ms=51.2 sent=25 syn=25 fallback=150 \
 *   client_fail=0 resp="OK 25" ok=1
 *   conn=4 error=Connection refused ms=50.8
 * ok=1: the answer was "OK <bytes sent>". Then a summary:
 *   summary conns=200 ok=200 errors=0 total_ms=53.0 median_ms=51.9 \
 *   max_ms=52.8 data-acked=200 cookie-requested=0 data-not-acked=0 \
 *   fallback=0 skipped=0 disabled=0
 * total_ms runs from the first tfo_conn_start to the last answer. Exit
 * status 0 when every connection got the right answer, 1 otherwise, 2 for
 * bad usage. LIBTFO_CACHE chooses the negative cache file ("off": none).
 *
 * How the loop drives a tfo_conn (tfo_conn_start.3):
 *  - each tfo_watch lists up to two sockets and a timer; after every
 *    start/step call, the sockets are (re)registered with epoll (data: the
 *    connection's index) and the timer becomes a deadline;
 *  - epoll_wait sleeps until the earliest deadline; any event or expired
 *    deadline of a connection means one tfo_conn_step call for it;
 *  - a socket dropped from the watch may already be closed (its epoll
 *    registration went with it), and a number still listed may be a new
 *    socket that reused a closed one's number: so EPOLL_CTL_DEL ignores
 *    errors, and EPOLL_CTL_MOD falls back to EPOLL_CTL_ADD on ENOENT.
 *
 * Build against an installed libtfo:
 *   cc -std=c11 -Wall -Wextra -o tfo-epoll tfo-epoll.c \
 *      $(pkg-config --cflags --libs libtfo)
 *
 * SPDX-License-Identifier: MIT */
#define _GNU_SOURCE /* getaddrinfo, clock_gettime, epoll under -std=c11 */

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <tfo.h>

#define N_OUTCOMES 7 /* 1..6: enum tfo_outcome */

enum phase { CONNECTING, READING, DONE };

struct conn {
  enum phase phase;
  tfo_conn *tc;        /* while CONNECTING */
  int reg[2];          /* sockets registered with epoll for tc, -1: none */
  int fd;              /* the connected socket, while READING */
  double deadline;     /* ms (monotonic); 0: none */
  double t_end;
  char *req;           /* must stay valid until tfo_conn_finish */
  size_t req_len;
  struct iovec iov;
  struct tfo_result res;
  char resp[128];
  size_t rlen;
  int err;             /* errno of a failure, 0: none */
  int ok;              /* got "OK <bytes sent>" */
};

static struct {
  int ep;
  struct conn *c;
  long n, left;
  int wait_ms, quiet;
  double t0;
} g;

static double now_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static long number(const char *s, const char *what) {
  char *end;
  long v;

  errno = 0;
  v = strtol(s, &end, 10);
  if (*s == '\0' || *end != '\0' || v < 0 || errno != 0 || v > 1000000000) {
    fprintf(stderr, "tfo-epoll: bad %s '%s'\n", what, s);
    exit(2);
  }
  return v;
}

static void ep_del(int fd) {
  /* fd may be closed already (by libtfo): then so is its registration. */
  (void)epoll_ctl(g.ep, EPOLL_CTL_DEL, fd, NULL);
}

/* Watches fd for events (poll bits) on behalf of connection i. */
static int ep_set(int fd, short events, long i) {
  struct epoll_event ev;

  memset(&ev, 0, sizeof(ev));
  ev.events = ((events & POLLIN) ? EPOLLIN : 0u) |
              ((events & POLLOUT) ? EPOLLOUT : 0u);
  ev.data.u64 = (uint64_t)i;
  if (epoll_ctl(g.ep, EPOLL_CTL_MOD, fd, &ev) == 0)
    return 0;
  if (errno != ENOENT)
    return -1;
  return epoll_ctl(g.ep, EPOLL_CTL_ADD, fd, &ev);
}

/* Makes epoll and the deadline match what tfo_conn wants watched now. */
static int sync_watch(long i, const struct tfo_watch *w) {
  struct conn *c = &g.c[i];
  int k, j, kept;

  for (k = 0; k < 2; k++) {
    if (c->reg[k] < 0)
      continue;
    for (j = 0, kept = 0; j < 2; j++)
      kept |= w->fd[j] == c->reg[k];
    if (!kept)
      ep_del(c->reg[k]);
    c->reg[k] = -1;
  }
  for (k = 0; k < 2; k++) {
    if (w->fd[k] < 0)
      continue;
    if (ep_set(w->fd[k], w->events[k], i) != 0)
      return -1;
    c->reg[k] = w->fd[k];
  }
  c->deadline = w->timeout_ms >= 0 ? now_ms() + w->timeout_ms : 0;
  return 0;
}

static void finish_conn(long i, int err) {
  struct conn *c = &g.c[i];

  c->phase = DONE;
  c->t_end = now_ms();
  c->deadline = 0;
  if (c->fd >= 0) {
    close(c->fd); /* also leaves the epoll set */
    c->fd = -1;
  }
  if (err != 0) {
    c->err = err;
    if (!g.quiet)
      printf("conn=%ld error=%s ms=%.1f\n", i, strerror(err), c->t_end - g.t0);
  } else {
    char want[32];

    snprintf(want, sizeof(want), "OK %zu", c->req_len);
    c->ok = strcmp(c->resp, want) == 0;
    if (!g.quiet)
      printf("conn=%ld outcome=%s ms=%.1f sent=%zu syn=%zu fallback=%d "
             "client_fail=%d resp=\"%s\" ok=%d\n",
             i, tfo_outcome_str(c->res.outcome), c->t_end - g.t0,
             c->res.bytes_sent, c->res.syn_bytes, c->res.fallback_ms,
             c->res.client_fail, c->resp, c->ok);
  }
  g.left--;
}

/* The tfo_conn is done: take the socket and wait for the answer. */
static void connected(long i) {
  struct conn *c = &g.c[i];
  int fd, err, k;

  fd = tfo_conn_finish(c->tc, &c->res); /* frees tc either way */
  err = errno;
  c->tc = NULL;
  for (k = 0; k < 2; k++) {
    if (c->reg[k] >= 0 && c->reg[k] != fd)
      ep_del(c->reg[k]);
    c->reg[k] = -1;
  }
  if (fd < 0) {
    finish_conn(i, err);
    return;
  }
  c->fd = fd;
  c->phase = READING;
  if (ep_set(fd, POLLIN, i) != 0) {
    finish_conn(i, errno);
    return;
  }
  c->deadline = now_ms() + g.wait_ms;
}

/* Gives up on connection i's tfo_conn after an epoll error. */
static void give_up(long i, int err) {
  struct conn *c = &g.c[i];

  tfo_conn_abort(c->tc); /* closes its sockets: they leave the epoll set */
  c->tc = NULL;
  c->reg[0] = c->reg[1] = -1;
  finish_conn(i, err);
}

/* A watched socket became ready or the timer expired. */
static void step(long i) {
  struct conn *c = &g.c[i];
  struct tfo_watch w;

  if (tfo_conn_step(c->tc, &w) == 0)
    connected(i);
  else if (sync_watch(i, &w) != 0)
    give_up(i, errno);
}

static void readable(long i) {
  struct conn *c = &g.c[i];
  ssize_t n;

  for (;;) {
    n = read(c->fd, c->resp + c->rlen, sizeof(c->resp) - 1 - c->rlen);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return; /* (also a stale event from the connecting phase) */
    if (n < 0) {
      finish_conn(i, errno);
      return;
    }
    c->rlen += (size_t)n;
    c->resp[c->rlen] = '\0';
    /* The answer is one line; the peer closing ends it too. */
    if (n == 0 || memchr(c->resp, '\n', c->rlen) != NULL ||
        c->rlen + 1 == sizeof(c->resp)) {
      c->resp[strcspn(c->resp, "\r\n")] = '\0';
      finish_conn(i, 0);
      return;
    }
  }
}

static void start(long i, const struct sockaddr *addr, socklen_t addrlen,
                  const struct tfo_connect_opts *opts) {
  struct conn *c = &g.c[i];
  struct tfo_watch w;

  c->iov.iov_base = c->req;
  c->iov.iov_len = c->req_len;
  c->tc = tfo_conn_start(addr, addrlen, &c->iov, 1, opts, &w);
  if (c->tc == NULL) { /* bad arguments, out of memory */
    finish_conn(i, errno);
    return;
  }
  /* Nothing to watch and no timer: already decided (an immediate error);
   * tfo_conn_step returns 0 at once. */
  if (w.fd[0] < 0 && w.fd[1] < 0 && w.timeout_ms < 0)
    step(i);
  else if (sync_watch(i, &w) != 0)
    give_up(i, errno);
}

/* Milliseconds until the earliest deadline (rounded up), -1: none. */
static int next_timeout(double now) {
  double first = 0, d;
  long i;

  for (i = 0; i < g.n; i++)
    if (g.c[i].phase != DONE && g.c[i].deadline > 0 &&
        (first <= 0 || g.c[i].deadline < first))
      first = g.c[i].deadline;
  if (first <= 0)
    return -1;
  d = first - now;
  return d <= 0 ? 0 : (int)d + 1;
}

static void expire(double now) {
  long i;

  for (i = 0; i < g.n; i++) {
    struct conn *c = &g.c[i];

    if (c->phase == DONE || c->deadline <= 0 || c->deadline > now)
      continue;
    if (c->phase == CONNECTING)
      step(i);
    else
      finish_conn(i, ETIMEDOUT); /* no answer within -W */
  }
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;

  return (x > y) - (x < y);
}

static void summary(void) {
  long outcomes[N_OUTCOMES] = {0}, i, ok = 0, errors = 0, m = 0;
  double *ms = calloc((size_t)(g.n > 0 ? g.n : 1), sizeof(*ms));
  double last = g.t0;
  int k;

  for (i = 0; i < g.n; i++) {
    const struct conn *c = &g.c[i];

    if (c->t_end > last)
      last = c->t_end;
    if (c->err != 0) {
      errors++;
      continue;
    }
    ok += c->ok;
    if ((int)c->res.outcome > 0 && (int)c->res.outcome < N_OUTCOMES)
      outcomes[c->res.outcome]++;
    if (ms != NULL)
      ms[m++] = c->t_end - g.t0;
  }
  if (ms != NULL && m > 0)
    qsort(ms, (size_t)m, sizeof(*ms), cmp_double);
  printf("summary conns=%ld ok=%ld errors=%ld total_ms=%.1f median_ms=%.1f "
         "max_ms=%.1f",
         g.n, ok, errors, last - g.t0,
         ms != NULL && m > 0 ? ms[m / 2] : 0.0,
         ms != NULL && m > 0 ? ms[m - 1] : 0.0);
  for (k = 1; k < N_OUTCOMES; k++)
    printf(" %s=%ld", tfo_outcome_str((enum tfo_outcome)k), outcomes[k]);
  printf("\n");
  free(ms);
}

/* Two sockets per connection at most, plus a few: raise the soft limit. */
static void enough_fds(long n) {
  struct rlimit rl;
  rlim_t want = (rlim_t)n * 2 + 16;

  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want) {
    rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
  }
}

static _Noreturn void usage(void) {
  fprintf(stderr, "usage: tfo-epoll [-n COUNT] [-s BYTES] [-S STEP] [-F MS] "
                  "[-T MS] [-W MS] [-R] [-C] [-q] HOST PORT\n");
  exit(2);
}

int main(int argc, char **argv) {
  struct tfo_connect_opts opts = {0};
  struct addrinfo hints, *ai;
  struct epoll_event ev[64];
  long i, size = 6, stepb = 0;
  int opt, rc, n, k;

  g.n = 10;
  g.wait_ms = 5000;
  while ((opt = getopt(argc, argv, "n:s:S:F:T:W:RCq")) != -1) {
    switch (opt) {
      case 'n':
        g.n = number(optarg, "count");
        break;
      case 's':
        size = number(optarg, "size");
        break;
      case 'S':
        stepb = number(optarg, "step");
        break;
      case 'F':
        opts.fallback_ms = (int)number(optarg, "fallback");
        break;
      case 'T':
        opts.timeout_ms = (int)number(optarg, "timeout");
        break;
      case 'W':
        g.wait_ms = (int)number(optarg, "wait");
        break;
      case 'R':
        opts.flags |= TFO_CONNECT_NO_RACE;
        break;
      case 'C':
        opts.flags |= TFO_CONNECT_NO_CACHE;
        break;
      case 'q':
        g.quiet = 1;
        break;
      default:
        usage();
    }
  }
  if (argc - optind != 2 || g.n < 1)
    usage();
  /* The socket tfo_conn_finish returns: non-blocking, for the loop. */
  opts.flags |= TFO_CONNECT_NONBLOCK;

  memset(&hints, 0, sizeof(hints));
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  rc = getaddrinfo(argv[optind], argv[optind + 1], &hints, &ai);
  if (rc != 0) {
    fprintf(stderr, "tfo-epoll: %s: %s\n", argv[optind], gai_strerror(rc));
    return 2;
  }

  g.c = calloc((size_t)g.n, sizeof(*g.c));
  if (g.c == NULL)
    return 1;
  for (i = 0; i < g.n; i++) {
    struct conn *c = &g.c[i];
    size_t len = (size_t)(size + i * stepb);

    if (len < 6)
      len = 6; /* "GET /" and the "\n" */
    c->req = malloc(len);
    if (c->req == NULL)
      return 1;
    memcpy(c->req, "GET /", 5);
    memset(c->req + 5, 'x', len - 6);
    c->req[len - 1] = '\n';
    c->req_len = len;
    c->fd = c->reg[0] = c->reg[1] = -1;
  }
  enough_fds(g.n);
  g.ep = epoll_create1(EPOLL_CLOEXEC);
  if (g.ep < 0) {
    perror("tfo-epoll: epoll_create1");
    return 1;
  }

  g.left = g.n;
  g.t0 = now_ms();
  for (i = 0; i < g.n; i++)
    start(i, ai->ai_addr, ai->ai_addrlen, &opts);

  while (g.left > 0) {
    n = epoll_wait(g.ep, ev, (int)(sizeof(ev) / sizeof(ev[0])),
                   next_timeout(now_ms()));
    if (n < 0 && errno != EINTR) {
      perror("tfo-epoll: epoll_wait");
      return 1;
    }
    for (k = 0; k < n; k++) {
      i = (long)ev[k].data.u64;
      if (i < 0 || i >= g.n)
        continue;
      /* A spurious tfo_conn_step is harmless, and a stale event for a
       * connection that moved on is ignored. */
      if (g.c[i].phase == CONNECTING)
        step(i);
      else if (g.c[i].phase == READING)
        readable(i);
    }
    expire(now_ms());
    fflush(stdout);
  }

  summary();
  rc = 0;
  for (i = 0; i < g.n; i++) {
    rc |= !g.c[i].ok;
    free(g.c[i].req);
  }
  free(g.c);
  close(g.ep);
  freeaddrinfo(ai);
  return rc;
}
