/* tfo_connect_send and the state machine behind it: data in the SYN when
 * the path allows it, a raced plain connection when it does not, and the
 * negative cache so that a broken path costs time once.
 *
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <netinet/tcp.h> /* TCP_SYN_SENT, TCP_CLOSE */

#include "abi.h"
#include "cache.h"
#include "connect.h"
#include "log.h"
#include "metrics.h"
#include "registry.h"
#include "sockopt.h"
#include "sys.h"
#include "tcpinfo.h"
#include "tfo.h"

enum state {
  ST_CONNECTING, /* a TFO and/or a plain handshake under way */
  ST_SEND,       /* connected: handing the rest of the data to the kernel */
  ST_DONE
};

struct tfo_conn {
  enum state state;
  struct sockaddr_storage addr;
  socklen_t addrlen;
  struct iovec *iov; /* the caller's buffers (our copy of the array) */
  int iovcnt;
  size_t total; /* bytes in iov */
  size_t sent;  /* bytes the kernel took on the winning socket */
  unsigned flags;
  int use_cache;
  int fallback_ms;   /* the race delay, 0: automatic (until armed) */
  int race_armed;    /* a plain connect races the TFO SYN after it */
  int64_t t_start;   /* CLOCK_MONOTONIC, us */
  int64_t t_race;    /* start the plain connect at this time, 0: never */
  int64_t t_deadline;
  int tfo_fd; /* the TFO attempt, -1 when none (any more) */
  int tfo_err;
  int cookie_sent;
  size_t syn_bytes;
  int plain_fd; /* the plain connect, -1 when none (yet) */
  enum tfo_outcome plain_outcome; /* what a plain win is reported as */
  int64_t t_plain;  /* when the plain connect started */
  int unreachable; /* plain connects failed too (no route, or a SYN lost):
                    * the path lost everything for a while, so a lost TFO
                    * SYN proves nothing about TFO */
  int fd; /* the winner */
  int adopted; /* the caller's socket (tfo__conn_adopt): never closed here */
  enum tfo_outcome outcome;
  int client_fail;
  unsigned rtt_us; /* the winner's smoothed RTT when it connected */
  int err; /* final errno, 0: success */
  int in_storage; /* in the caller's tfo__conn_storage: not freed here */
  struct iovec iov_in[4]; /* iov, when it has this few buffers */
};

_Static_assert(sizeof(struct tfo_conn) <= sizeof(struct tfo__conn_storage),
               "TFO__CONN_STORAGE is too small for struct tfo_conn");

static int64_t now_us(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Closes one of c's sockets, unless it is the caller's own (adopted). */
static void drop(const struct tfo_conn *c, int *fd) {
  int saved = errno;

  if (*fd >= 0 && *fd != c->adopted)
    tfo__sys.close(*fd);
  *fd = -1;
  errno = saved;
}

static void fail(struct tfo_conn *c, int err) {
  drop(c, &c->tfo_fd);
  drop(c, &c->plain_fd);
  c->fd = -1;
  c->err = err;
  c->state = ST_DONE;
}

int tfo__check_addr(const struct sockaddr *addr, socklen_t addrlen) {
  if (addr == NULL) {
    errno = EINVAL;
    return -1;
  }
  if (addrlen < sizeof(sa_family_t)) {
    errno = EINVAL;
    return -1;
  }
  switch (addr->sa_family) {
    case AF_INET:
      if (addrlen < sizeof(struct sockaddr_in))
        break;
      return 0;
    case AF_INET6:
      if (addrlen < sizeof(struct sockaddr_in6))
        break;
      return 0;
    default:
      errno = EAFNOSUPPORT;
      return -1;
  }
  errno = EINVAL;
  return -1;
}

static int check_opts(const struct tfo_connect_opts *o) {
  if (o == NULL)
    return 0;
  if (!TFO__RESERVED_ZERO(o))
    goto bad;
  if ((o->flags & ~(TFO_CONNECT_NO_RACE | TFO_CONNECT_NO_CACHE |
                    TFO_CONNECT_NONBLOCK)) != 0 ||
      o->fallback_ms < 0 || o->timeout_ms < 0)
    goto bad;
  return 0;
bad:
  errno = EINVAL;
  return -1;
}

/* Total bytes, or -1/EINVAL for a NULL buffer with a length, too many
 * buffers, or a sum that overflows. */
static ssize_t iov_total(const struct iovec *iov, int iovcnt) {
  size_t total = 0;
  int i;

  if (iovcnt < 0 || iovcnt > IOV_MAX || (iov == NULL && iovcnt > 0))
    goto bad;
  for (i = 0; i < iovcnt; i++) {
    if (iov[i].iov_base == NULL && iov[i].iov_len > 0)
      goto bad;
    if (iov[i].iov_len > (size_t)SSIZE_MAX - total)
      goto bad;
    total += iov[i].iov_len;
  }
  return (ssize_t)total;
bad:
  errno = EINVAL;
  return -1;
}

int tfo__fallback_delay_ms(const struct sockaddr *addr, socklen_t addrlen,
                           uint32_t cached_rtt_us) {
  struct tfo__metrics m;
  uint32_t rtt = cached_rtt_us;
  int64_t ms;

  /* Ours first (it is per port and fresh); else what the kernel remembers
   * for the address. */
  if (rtt == 0 && tfo__metrics_get(addr, addrlen, &m) == 0)
    rtt = m.rtt_us;
  if (rtt == 0)
    return TFO__FALLBACK_UNKNOWN_MS;
  ms = ((int64_t)rtt * TFO__FALLBACK_RTT_FACTOR + 999) / 1000;
  if (ms < TFO__FALLBACK_MIN_MS)
    ms = TFO__FALLBACK_MIN_MS;
  if (ms > TFO__FALLBACK_MAX_MS)
    ms = TFO__FALLBACK_MAX_MS;
  return (int)ms;
}

/* 1 connected (*ti filled: the caller judges from it, no second ask), 0
 * still in the handshake, -1 failed with *err. tcp_info first: its state
 * answers the common cases in one call; SO_ERROR is read only for a socket
 * the kernel closed. */
static int handshake_state(int fd, int *err, struct tfo__tcpinfo *ti) {
  int e = 0;
  socklen_t len = sizeof(e);

  if (tfo__tcpinfo_get(fd, ti) != 0) {
    *err = errno;
    memset(ti, 0, sizeof(*ti));
    return -1;
  }
  if (ti->state == TCP_SYN_SENT)
    return 0;
  if (ti->state != TCP_CLOSE)
    return 1;
  if (tfo__sys.getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) != 0)
    e = errno;
  *err = e != 0 ? e : ECONNRESET; /* reset, error consumed elsewhere */
  return -1;
}

/* Errors that say the destination could not be reached at all, whatever
 * the SYN carried. */
static int route_error(int err) {
  return err == ENETUNREACH || err == EHOSTUNREACH || err == ENETDOWN ||
         err == EHOSTDOWN || err == EADDRNOTAVAIL;
}

static int new_socket(const struct tfo_conn *c) {
  int fd = tfo__sys.socket(c->addr.ss_family,
                           SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                           IPPROTO_TCP);

  /* The shim's race: this socket may stand in for the program's, so it
   * must route and behave like it (device, mark, keepalive, ...). */
  if (fd >= 0 && c->adopted >= 0)
    (void)tfo__sockopt_copy(c->adopted, fd, c->addr.ss_family);
  return fd;
}

/* Starts the plain connect (on fd when given, else a new socket). */
static void start_plain(struct tfo_conn *c, int fd, enum tfo_outcome why) {
  if (fd < 0)
    fd = new_socket(c);
  if (fd < 0) {
    fail(c, errno);
    return;
  }
  c->plain_fd = fd;
  c->plain_outcome = why;
  c->t_race = 0;
  c->t_plain = now_us();
  if (tfo__sys.connect(fd, (const struct sockaddr *)&c->addr, c->addrlen) !=
          0 &&
      errno != EINPROGRESS) {
    /* Synchronous failure (no route, ...): the TFO attempt, if any, can
     * still win; otherwise this is the answer. */
    c->unreachable |= route_error(errno);
    c->plain_fd = -1;
    tfo__sys.close(fd);
    if (c->tfo_fd < 0)
      fail(c, errno);
  }
}

/* A TFO SYN just left on c->tfo_fd: a plain connect races it after the
 * fallback delay, unless the caller said its data must not be sent
 * twice. */
static void arm_race(struct tfo_conn *c, uint32_t rtt_us) {
  if (c->flags & TFO_CONNECT_NO_RACE) {
    c->fallback_ms = 0;
    return;
  }
  if (c->fallback_ms == 0)
    c->fallback_ms = tfo__fallback_delay_ms((const struct sockaddr *)&c->addr,
                                            c->addrlen, rtt_us);
  c->t_race = c->t_start + (int64_t)c->fallback_ms * 1000;
  c->race_armed = 1;
}

static void start_tfo(struct tfo_conn *c, uint32_t rtt_us) {
  struct msghdr msg;
  ssize_t n;
  int fd = new_socket(c);

  if (fd < 0) {
    fail(c, errno);
    return;
  }
  memset(&msg, 0, sizeof(msg));
  msg.msg_name = &c->addr;
  msg.msg_namelen = c->addrlen;
  msg.msg_iov = c->iov;
  msg.msg_iovlen = (size_t)c->iovcnt;
  /* Non-blocking MSG_FASTOPEN: with a cookie the SYN leaves with as much
   * data as fits and we get that count; without one a cookie request
   * leaves, nothing is queued, and we get EINPROGRESS. */
  n = tfo__sys.sendmsg(fd, &msg, MSG_FASTOPEN | MSG_NOSIGNAL);
  if (n >= 0) {
    c->cookie_sent = 1;
    c->syn_bytes = (size_t)n;
  } else if (errno == EINPROGRESS) {
    struct tfo__tcpinfo ti;

    /* No data queued: either no cookie (a cookie request left), or no data
     * to send (len 0: the SYN carries the cookie alone). The kernel notes
     * which in client_fail. */
    c->cookie_sent = c->total == 0 && tfo__tcpinfo_get(fd, &ti) == 0 &&
                     ti.client_fail != TFO__FAIL_COOKIE_UNAVAILABLE;
  } else if (errno == EOPNOTSUPP || errno == ENOPROTOOPT || errno == EPIPE) {
    /* Client bit off (EOPNOTSUPP), or a kernel that ignores MSG_FASTOPEN
     * and refuses a send on an unconnected socket (EPIPE). The socket is
     * untouched: connect it plainly. */
    tfo__log(TFO__LOG_DEBUG, "TFO unavailable (%s): plain connect",
             tfo__strerror(errno));
    start_plain(c, fd, TFO_OUTCOME_DISABLED);
    return;
  } else {
    int e = errno;

    tfo__sys.close(fd);
    fail(c, e);
    return;
  }
  c->tfo_fd = fd;
  arm_race(c, rtt_us);
}

static void record(struct tfo_conn *c, enum tfo__event ev, uint32_t rtt_us) {
  if (c->use_cache &&
      tfo__cache_record((const struct sockaddr *)&c->addr, c->addrlen, ev,
                        rtt_us) != 0)
    tfo__log(TFO__LOG_DEBUG, "cache not updated: %s", tfo__strerror(errno));
}

enum tfo_outcome tfo__judge(int fd, const struct tfo__tcpinfo *known,
                            const struct sockaddr *addr, socklen_t addrlen,
                            int cookie_sent, size_t syn_bytes, int use_cache,
                            int *client_fail) {
  struct tfo__tcpinfo ti;
  struct tfo__metrics m;
  enum tfo__event ev;
  enum tfo_outcome out;
  int granted = -1;

  memset(&ti, 0, sizeof(ti));
  if (known != NULL)
    ti = *known;
  else
    tfo__tcpinfo_get(fd, &ti);
  /* The kernel had no cookie after all (the shim's connect expected one
   * and the kernel asked for one instead, in a handshake of its own): the
   * SYN carried a cookie request, and no data. */
  if (cookie_sent && ti.client_fail == TFO__FAIL_COOKIE_UNAVAILABLE) {
    cookie_sent = 0;
    syn_bytes = 0;
  }
  /* Only the kernel's cookie cache tells whether a cookie request was
   * answered with one; asked only when the answer feeds the cache. */
  if (!cookie_sent && use_cache)
    granted = tfo__metrics_get(addr, addrlen, &m) == 0
                  ? m.cookie_len > 0
                  : (errno == ENOENT ? 0 : -1);
  out = tfo__decode_outcome(cookie_sent, syn_bytes, granted, &ti, &ev);
  if (client_fail != NULL)
    *client_fail = ti.client_fail;
  if (use_cache && ev != TFO__EV_NONE &&
      tfo__cache_record(addr, addrlen, ev, ti.rtt_us) != 0)
    tfo__log(TFO__LOG_DEBUG, "cache not updated: %s", tfo__strerror(errno));
  return out;
}

int tfo__conn_restart_plain(int fd, const struct sockaddr *addr,
                            socklen_t addrlen) {
  struct sockaddr unspec;
  int zero = 0, err = 0;
  socklen_t elen = sizeof(err);

  memset(&unspec, 0, sizeof(unspec));
  unspec.sa_family = AF_UNSPEC;
  if (tfo__sys.connect(fd, &unspec, sizeof(unspec)) != 0)
    return -1;
  /* The disconnect leaves ECONNRESET pending: ours, not the caller's. */
  (void)tfo__sys.getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
  if (tfo__sys.setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &zero,
                          sizeof(zero)) != 0)
    return -1;
  if (tfo__sys.connect(fd, addr, addrlen) == 0 || errno == EINPROGRESS)
    return 0;
  return -1;
}

enum tfo_outcome tfo__judge_restarted(const struct tfo__tcpinfo *ti,
                                      const struct sockaddr *addr,
                                      socklen_t addrlen, int race_ms) {
  if (ti->retrans == 0 && ti->rtt_us != 0 &&
      ti->rtt_us < (unsigned)race_ms * 1000u) {
    if (tfo__cache_record(addr, addrlen, TFO__EV_BLACKHOLE, ti->rtt_us) != 0)
      tfo__log(TFO__LOG_DEBUG, "cache not updated: %s", tfo__strerror(errno));
    tfo__log(TFO__LOG_INFO, "TFO SYN unanswered, plain one answered: the "
                            "path swallows TFO SYNs");
  }
  return TFO_OUTCOME_FALLBACK;
}

/* The TFO attempt's outcome, from its handshake; fed to the cache unless
 * plain connects failed meanwhile: a TFO SYN lost then (client_fail 3) is
 * not the path's verdict on TFO. */
static void judge_tfo(struct tfo_conn *c, const struct tfo__tcpinfo *ti) {
  c->outcome = tfo__judge(c->tfo_fd, ti, (const struct sockaddr *)&c->addr,
                          c->addrlen, c->cookie_sent, c->syn_bytes,
                          c->use_cache && !c->unreachable, &c->client_fail);
}

static void tfo_won(struct tfo_conn *c, const struct tfo__tcpinfo *ti) {
  /* Won by the kernel's retransmitted SYN, answered one RTT after it
   * left, while our plain SYN, out for longer than that, got no answer: it
   * left first and was lost (a link down, a route gone). On a path that
   * drops only TFO SYNs the earlier plain one is answered first and wins. */
  if (c->plain_fd >= 0 && ti->client_fail == TFO__FAIL_SYN_RETRANSMITTED &&
      ti->rtt_us != 0 && now_us() - c->t_plain > (int64_t)ti->rtt_us)
    c->unreachable = 1;
  judge_tfo(c, ti);
  c->rtt_us = ti->rtt_us;
  drop(c, &c->plain_fd);
  c->fd = c->tfo_fd;
  c->tfo_fd = -1;
  /* Data that rode in the SYN is the kernel's now, acked or not: when not
   * acked it retransmits it itself after the handshake. */
  c->sent = c->syn_bytes;
  c->state = ST_SEND;
}

/* Whether the losing TFO SYN has been answered by now, merely later than
 * the plain one (a busy host, or a LAN's jitter over the 20 ms floor of
 * the race delay): a SYN-ACK leaves an RTT sample. Slow, not a path that
 * drops TFO SYNs, so nothing to hold against the destination. */
static int tfo_answered_late(const struct tfo_conn *c) {
  struct tfo__tcpinfo t;

  return c->tfo_err == 0 && c->tfo_fd >= 0 &&
         tfo__tcpinfo_get(c->tfo_fd, &t) == 0 && t.rtt_us != 0;
}

static void plain_won(struct tfo_conn *c, const struct tfo__tcpinfo *ti) {
  c->outcome = c->plain_outcome;
  c->rtt_us = ti->rtt_us;
  /* The plain SYN went unanswered too and a retransmission of it got
   * through (a link down that came back between the kernel's two SYN
   * timers): the path lost everything, and a path that drops only TFO
   * SYNs answers the first plain SYN. */
  if (ti->retrans > 0)
    c->unreachable = 1;
  if (c->outcome == TFO_OUTCOME_FALLBACK && tfo_answered_late(c)) {
    tfo__log(TFO__LOG_INFO, "TFO attempt answered after the plain one: "
                            "slow, not a blackhole");
  } else if (c->outcome == TFO_OUTCOME_FALLBACK && !c->unreachable) {
    record(c, c->tfo_err == ECONNREFUSED ? TFO__EV_RESET : TFO__EV_BLACKHOLE,
           ti->rtt_us);
    tfo__log(TFO__LOG_INFO, "TFO attempt %s: plain connection won",
             c->tfo_err != 0 ? tfo__strerror(c->tfo_err) : "unanswered");
  }
  drop(c, &c->tfo_fd);
  c->client_fail = -1;
  c->fd = c->plain_fd;
  c->plain_fd = -1;
  c->sent = 0;
  c->syn_bytes = 0;
  c->state = ST_SEND;
}

static void step_connecting(struct tfo_conn *c, int64_t now) {
  struct tfo__tcpinfo ti;
  int err = 0;
  int r;

  if (c->tfo_fd >= 0) {
    r = handshake_state(c->tfo_fd, &err, &ti);
    if (r > 0) {
      tfo_won(c, &ti);
      return;
    }
    if (r < 0 && (ti.rtt_us != 0 || (ti.options & TFO__TCPI_OPT_SYN_DATA))) {
      /* Answered, then reset or closed: the handshake worked and the
       * server ended the connection (an RST in SYN_SENT leaves no RTT
       * sample). Judged on its handshake, the error reported as is: a
       * plain retry would deliver the request again, and the path does
       * not break TFO. */
      judge_tfo(c, &ti);
      tfo__log(TFO__LOG_INFO, "connection ended by the peer: %s",
               tfo__strerror(err));
      fail(c, err);
      return;
    }
    if (r < 0) {
      drop(c, &c->tfo_fd);
      c->tfo_err = err;
      tfo__log(TFO__LOG_INFO, "TFO attempt failed: %s", tfo__strerror(err));
      /* Refused or reset: retry once, plainly, at once. Had the plain one
       * been refused already, the port is simply closed. */
      if (c->plain_fd < 0) {
        start_plain(c, -1, TFO_OUTCOME_FALLBACK);
        if (c->state == ST_DONE)
          return;
      }
    }
  }
  if (c->plain_fd >= 0) {
    r = handshake_state(c->plain_fd, &err, &ti);
    if (r > 0) {
      plain_won(c, &ti);
      return;
    }
    if (r < 0) {
      drop(c, &c->plain_fd);
      c->unreachable |= route_error(err);
      if (c->tfo_fd < 0) { /* nothing left: nothing is cached either */
        fail(c, err);
        return;
      }
    }
  }
  if (c->tfo_fd >= 0 && c->plain_fd < 0 && c->t_race != 0 &&
      now >= c->t_race) {
    tfo__log(TFO__LOG_INFO, "no SYN-ACK after %d ms: racing a plain connect",
             c->fallback_ms);
    start_plain(c, -1, TFO_OUTCOME_FALLBACK);
  }
}

/* Hands the data from offset c->sent on to the kernel. */
static void step_send(struct tfo_conn *c) {
  struct iovec iov[64];
  struct msghdr msg;
  size_t skip, n;
  ssize_t w;
  int i;

  while (c->sent < c->total) {
    /* Rebuild the remaining slice (at most 64 buffers per call). */
    skip = c->sent;
    for (i = 0; i < c->iovcnt && skip >= c->iov[i].iov_len; i++)
      skip -= c->iov[i].iov_len;
    for (n = 0; i < c->iovcnt && n < 64; i++, n++) {
      iov[n].iov_base = (char *)c->iov[i].iov_base + skip;
      iov[n].iov_len = c->iov[i].iov_len - skip;
      skip = 0;
    }
    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = iov;
    msg.msg_iovlen = n;
    w = tfo__sys.sendmsg(c->fd, &msg, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return;
      drop(c, &c->fd);
      fail(c, errno);
      return;
    }
    c->sent += (size_t)w;
  }
  c->state = ST_DONE;
}

static int ms_until(int64_t t, int64_t now) {
  int64_t d = t - now;

  if (d <= 0)
    return 0;
  d = (d + 999) / 1000;
  return d > INT_MAX ? INT_MAX : (int)d;
}

static void fill_watch(const struct tfo_conn *c, struct tfo_watch *w,
                       int64_t now) {
  int64_t t = 0;

  if (w == NULL)
    return;
  w->fd[0] = w->fd[1] = -1;
  w->events[0] = w->events[1] = 0;
  w->timeout_ms = -1;
  switch (c->state) {
    case ST_CONNECTING:
      /* Completion and failure both show on POLLOUT (with POLLERR). */
      if (c->tfo_fd >= 0) {
        w->fd[0] = c->tfo_fd;
        w->events[0] = POLLOUT;
      }
      if (c->plain_fd >= 0) {
        w->fd[1] = c->plain_fd;
        w->events[1] = POLLOUT;
      }
      if (c->t_race != 0 && c->plain_fd < 0)
        t = c->t_race;
      break;
    case ST_SEND:
      w->fd[0] = c->fd;
      w->events[0] = POLLOUT;
      break;
    case ST_DONE:
      return;
  }
  if (c->t_deadline != 0 && (t == 0 || c->t_deadline < t))
    t = c->t_deadline;
  if (t != 0)
    w->timeout_ms = ms_until(t, now);
}

int tfo_conn_step(tfo_conn *c, struct tfo_watch *w) {
  int saved = errno;
  int64_t now;

  if (c == NULL) {
    errno = EINVAL;
    return 0;
  }
  now = now_us();
  if (c->state != ST_DONE && c->t_deadline != 0 && now >= c->t_deadline) {
    drop(c, &c->fd);
    fail(c, ETIMEDOUT);
  }
  if (c->state == ST_CONNECTING)
    step_connecting(c, now);
  if (c->state == ST_SEND)
    step_send(c);
  fill_watch(c, w, now);
  errno = saved;
  return c->state != ST_DONE;
}

static void conn_free(struct tfo_conn *c) {
  if (c->iov != c->iov_in && !c->in_storage)
    free(c->iov);
  if (!c->in_storage)
    free(c);
}

/* Validates and allocates (in *storage when given: nothing from malloc,
 * and more than 4 buffers are the caller's own array, which outlives the
 * machine there); NULL with errno. */
static struct tfo_conn *conn_new(const struct sockaddr *addr,
                                 socklen_t addrlen, const struct iovec *iov,
                                 int iovcnt,
                                 const struct tfo_connect_opts *opts,
                                 struct tfo__conn_storage *storage) {
  struct tfo_conn *c;
  ssize_t total;

  if (tfo__check_addr(addr, addrlen) != 0 || check_opts(opts) != 0)
    return NULL;
  total = iov_total(iov, iovcnt);
  if (total < 0)
    return NULL;
  if (addrlen > sizeof(struct sockaddr_storage))
    addrlen = sizeof(struct sockaddr_storage);

  if (storage != NULL) {
    c = memset(storage, 0, sizeof(*c));
    c->in_storage = 1;
  } else if ((c = calloc(1, sizeof(*c))) == NULL) {
    return NULL;
  }
  if (iovcnt <= (int)(sizeof(c->iov_in) / sizeof(c->iov_in[0])))
    c->iov = c->iov_in;
  else if (storage != NULL)
    c->iov = (struct iovec *)iov; /* the shim's: async-signal-safe */
  else
    c->iov = malloc(sizeof(*iov) * (size_t)iovcnt);
  if (c->iov == NULL) {
    conn_free(c);
    errno = ENOMEM;
    return NULL;
  }
  if (iovcnt > 0 && c->iov != iov)
    memcpy(c->iov, iov, sizeof(*iov) * (size_t)iovcnt);
  c->iovcnt = iovcnt;
  c->total = (size_t)total;
  memcpy(&c->addr, addr, addrlen);
  c->addrlen = addrlen;
  c->tfo_fd = c->plain_fd = c->fd = c->adopted = -1;
  c->client_fail = -1;
  c->state = ST_CONNECTING;
  c->t_start = now_us();
  if (opts != NULL) {
    c->flags = opts->flags;
    c->fallback_ms = opts->fallback_ms;
    if (opts->timeout_ms > 0)
      c->t_deadline = c->t_start + (int64_t)opts->timeout_ms * 1000;
  }
  c->use_cache = !(c->flags & TFO_CONNECT_NO_CACHE);
  return c;
}

/* What the negative cache knows of the destination (zeroes if nothing). */
static void verdict(const struct tfo_conn *c, struct tfo__verdict *v) {
  memset(v, 0, sizeof(*v));
  if (c->use_cache)
    tfo__cache_lookup((const struct sockaddr *)&c->addr, c->addrlen, v);
}

tfo_conn *tfo_conn_start(const struct sockaddr *addr, socklen_t addrlen,
                         const struct iovec *iov, int iovcnt,
                         const struct tfo_connect_opts *opts,
                         struct tfo_watch *w) {
  struct tfo__verdict v;
  struct tfo_conn *c = conn_new(addr, addrlen, iov, iovcnt, opts, NULL);

  if (c == NULL)
    return NULL;
  verdict(c, &v);
  if (v.skip) {
    tfo__log(TFO__LOG_DEBUG, "negative cache: skipping TFO");
    start_plain(c, -1, TFO_OUTCOME_SKIPPED);
  } else {
    start_tfo(c, v.rtt_us);
  }
  /* A connect that is already decided (an immediate error) is still
   * reported through step/finish, so callers have one path. */
  tfo_conn_step(c, w);
  return c;
}

tfo_conn *tfo__conn_adopt(int fd, int cookie_sent, size_t syn_bytes,
                          const struct sockaddr *addr, socklen_t addrlen,
                          const struct iovec *iov, int iovcnt,
                          struct tfo_watch *w,
                          struct tfo__conn_storage *storage) {
  struct tfo__verdict v;
  struct tfo_conn *c = conn_new(addr, addrlen, iov, iovcnt, NULL, storage);

  if (c == NULL)
    return NULL;
  if (syn_bytes > c->total) {
    tfo_conn_abort(c);
    errno = EINVAL;
    return NULL;
  }
  verdict(c, &v);
  c->adopted = c->tfo_fd = fd;
  c->cookie_sent = cookie_sent;
  c->syn_bytes = syn_bytes;
  arm_race(c, v.rtt_us);
  tfo_conn_step(c, w);
  return c;
}

int tfo_conn_finish(tfo_conn *c, struct tfo_result *r) {
  int fd, flags;

  if (c == NULL) {
    errno = EINVAL;
    return -1;
  }
  if (c->state != ST_DONE) { /* finish before done: a caller bug, not a hang */
    tfo_conn_abort(c);
    errno = EINPROGRESS;
    return -1;
  }
  if (r != NULL) {
    memset(r, 0, sizeof(*r));
    r->outcome = c->outcome;
    r->bytes_sent = c->sent;
    r->syn_bytes = c->syn_bytes;
    r->fallback_ms = c->race_armed ? c->fallback_ms : 0;
    r->client_fail = c->client_fail;
    r->elapsed_us = (unsigned)(now_us() - c->t_start);
    r->rtt_us = c->rtt_us; /* as the handshake ended */
  }
  fd = c->fd;
  /* An adopted socket (the shim's) keeps the flags its owner gave it, and
   * nobody asks tfo_result about it. */
  if (fd >= 0 && c->adopted < 0)
    tfo__registry_put(fd, c->outcome);
  if (fd >= 0 && c->adopted < 0 && !(c->flags & TFO_CONNECT_NONBLOCK)) {
    flags = tfo__sys.fcntl(fd, F_GETFL);
    if (flags >= 0)
      tfo__sys.fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  }
  if (fd < 0)
    errno = c->err;
  conn_free(c);
  return fd;
}

void tfo_conn_abort(tfo_conn *c) {
  if (c == NULL)
    return;
  drop(c, &c->tfo_fd);
  drop(c, &c->plain_fd);
  drop(c, &c->fd);
  conn_free(c);
}

int tfo_connect_sendv(const struct sockaddr *addr, socklen_t addrlen,
                      const struct iovec *iov, int iovcnt,
                      const struct tfo_connect_opts *opts,
                      struct tfo_result *result) {
  struct tfo_watch w;
  struct pollfd pfd[2];
  tfo_conn *c;
  nfds_t n;
  int i;

  c = tfo_conn_start(addr, addrlen, iov, iovcnt, opts, &w);
  if (c == NULL)
    return -1;
  while (c->state != ST_DONE) {
    for (i = 0, n = 0; i < 2; i++) {
      if (w.fd[i] >= 0) {
        pfd[n].fd = w.fd[i];
        pfd[n].events = w.events[i];
        pfd[n].revents = 0;
        n++;
      }
    }
    if (tfo__sys.poll(pfd, n, w.timeout_ms) < 0 && errno != EINTR) {
      int e = errno;

      tfo_conn_abort(c);
      errno = e;
      return -1;
    }
    tfo_conn_step(c, &w);
  }
  return tfo_conn_finish(c, result);
}

int tfo_connect_send(const struct sockaddr *addr, socklen_t addrlen,
                     const void *data, size_t len,
                     const struct tfo_connect_opts *opts,
                     struct tfo_result *result) {
  struct iovec iov;

  if (data == NULL && len > 0) {
    errno = EINVAL;
    return -1;
  }
  iov.iov_base = (void *)data;
  iov.iov_len = len;
  return tfo_connect_sendv(addr, addrlen, &iov, 1, opts, result);
}

const char *tfo_outcome_str(enum tfo_outcome outcome) {
  switch (outcome) {
    case TFO_OUTCOME_DATA_ACKED:
      return "data-acked";
    case TFO_OUTCOME_COOKIE_REQUESTED:
      return "cookie-requested";
    case TFO_OUTCOME_DATA_NOT_ACKED:
      return "data-not-acked";
    case TFO_OUTCOME_FALLBACK:
      return "fallback";
    case TFO_OUTCOME_SKIPPED:
      return "skipped";
    case TFO_OUTCOME_DISABLED:
      return "disabled";
  }
  return "unknown";
}
