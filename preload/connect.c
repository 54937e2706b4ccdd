/* connect() and getpeername(): the SYN waits for the first bytes.
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cache.h"
#include "connect.h"
#include "log.h"
#include "shim.h"
#include "tcpinfo.h"

int tfo__shim_is_tcp(int fd) {
  int v;
  socklen_t len = sizeof(v);

  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len) != 0 || v != SOCK_STREAM)
    return 0;
  len = sizeof(v);
  return getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &v, &len) == 0 &&
         v == IPPROTO_TCP;
}

static uint16_t port_of(const struct sockaddr *sa) {
  return ntohs(sa->sa_family == AF_INET
                   ? ((const struct sockaddr_in *)sa)->sin_port
                   : ((const struct sockaddr_in6 *)sa)->sin6_port);
}

/* Whether this connect is one to accelerate (the cache is asked later);
 * *know gets what is known of fd (TFO__KNOW_*, asked of the kernel and
 * remembered when the table had nothing). */
static int wanted(int fd, const struct sockaddr *sa, socklen_t len,
                  struct tfo__fd **stp, unsigned *know) {
  const struct tfo__shim_config *cfg = tfo__shim_config();
  struct tfo__fd *st;
  unsigned k;
  int on = 0, fl;
  socklen_t olen = sizeof(on);

  if (cfg->disabled || !cfg->client || sa == NULL)
    return 0;
  if (!((sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) ||
        (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6))))
    return 0;
  if (!tfo__ports_match(&cfg->ports, port_of(sa)) ||
      tfo__prefixes_match(&cfg->exclude, sa, len))
    return 0;
  if ((st = tfo__fd_get(fd)) == NULL)
    return 0;
  k = tfo__fd_known(st);
  if (k == 0) {
    /* Made out of our sight (inherited, received, a raw call) or copied:
     * asked, and remembered for the next connect on it. */
    if (!tfo__shim_is_tcp(fd) || (fl = tfo__libc()->fcntl(fd, F_GETFL)) < 0)
      return 0;
    k = TFO__KNOW_VALID | TFO__KNOW_TCP;
    if (fl & O_NONBLOCK)
      k |= TFO__KNOW_NONBLOCK;
    if (getsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &on, &olen) == 0 &&
        on)
      k |= TFO__KNOW_OWN_TFO;
    atomic_store_explicit(&st->know,
                          k | atomic_load(&tfo__fork_gen) << TFO__KNOW_SHIFT,
                          memory_order_relaxed);
  }
  /* A program that does TFO itself (curl --tcp-fastopen) is left alone. */
  if (!(k & TFO__KNOW_TCP) || (k & TFO__KNOW_OWN_TFO))
    return 0;
  *stp = st;
  *know = k;
  return 1;
}

/* Records what the TFO connect started on fd. A cookie was cached when it
 * returned 0 (the kernel holds the SYN for the first write). The SYN is
 * held only for a destination seen accepting (known); elsewhere it leaves
 * now, with the cookie and no data, so that the connect's answer is the
 * kernel's own (a refused port says so). Either way the keeper judges
 * the handshake when it ends. */
static void note_started(int fd, struct tfo__fd *st, int deferred,
                         int known) {
  st->sock = 0; /* pinned if the keeper ever acts on it (tfo__fd_pin) */
  st->shared = 0;
  st->fork_gen = atomic_load(&tfo__fork_gen);
  st->cookie_sent = deferred;
  atomic_store(&st->ep1, 0); /* registered after connect, if at all */
  st->deferred_at = 0;
  if (deferred && known) {
    st->deferred_at = tfo__shim_now_ms();
    st->tid = tfo__tid();
    atomic_fetch_add(&tfo__deferred_count, 1);
    atomic_store(&st->kind, FD_DEFERRED);
    tfo__keeper_hold(fd, st);
    return;
  }
  atomic_store(&st->kind, deferred ? FD_DEFERRED : FD_SENT);
  if (deferred) {
    atomic_fetch_add(&tfo__deferred_count, 1);
    tfo__fd_release(fd, st); /* claims, sends, and hands to the keeper */
  } else {
    tfo__keeper_watch(fd, st);
  }
}

/* The end of a handshake on a socket made non-blocking: what a blocking
 * connect would have returned. */
static int wait_connected(int fd) {
  struct pollfd p = {fd, POLLOUT, 0};
  socklen_t len = sizeof(int);
  int err = 0;

  while (tfo__libc()->poll(&p, 1, -1) < 0)
    if (errno != EINTR)
      return -1;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
    return -1;
  errno = err;
  return err == 0 ? 0 : -1;
}

/* A blocking connect that asks for a cookie, or whose SYN leaves now with
 * one, would wait for the kernel's 1 s SYN timeout (and more) on a path
 * that drops TFO SYNs: it is made non-blocking and gets the race of
 * tfo_connect_send, the winner on the program's descriptor. fl: the
 * program's file flags (blocking). known: the destination was seen
 * accepting, so a held SYN may wait for the first write. */
static int connect_blocking(int fd, struct tfo__fd *st,
                            const struct sockaddr *sa, socklen_t len, int fl,
                            int known) {
  const struct tfo__libc *libc = tfo__libc();
  struct tfo_watch w;
  struct tfo_result res;
  struct tfo__conn_storage mem; /* no malloc: a signal handler may write */
  tfo_conn *c;
  int rc, err, cookie = 0;

  rc = libc->connect(fd, sa, len);
  err = errno;
  if (rc == 0 && known) { /* a cookie: the SYN waits for the first write */
    libc->fcntl(fd, F_SETFL, fl);
    note_started(fd, st, 1, 1);
    return 0;
  }
  if (rc == 0) {
    /* A cookie, but a destination never seen accepting: the SYN leaves
     * now (cookie, no data) and the connect waits for its answer. */
    if (libc->send(fd, "", 0, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 &&
        errno != EINPROGRESS) {
      err = errno;
      libc->fcntl(fd, F_SETFL, fl);
      errno = err;
      return -1;
    }
    cookie = 1;
    err = EINPROGRESS;
  }
  if (err != EINPROGRESS ||
      (c = tfo__conn_adopt(fd, cookie, 0, sa, len, NULL, 0, &w, &mem)) == NULL) {
    libc->fcntl(fd, F_SETFL, fl);
    if (err != EINPROGRESS) {
      errno = err;
      return -1;
    }
    /* No memory for the machine: wait as the kernel would have. */
    note_started(fd, st, 0, 0);
    st->cookie_sent = cookie;
    return wait_connected(fd);
  }
  rc = tfo__shim_drive(fd, c, &w, fl, &res);
  if (rc == -2) { /* SO_SNDTIMEO: what the kernel's connect says then */
    note_started(fd, st, 0, 0);
    st->cookie_sent = cookie;
    errno = EINPROGRESS;
    return -1;
  }
  if (rc < 0)
    return -1;
  if (rc == 0)
    tfo__shim_count(res.outcome);
  /* Judged by the machine, and the cache fed: nothing left for the keeper. */
  tfo__fd_clear(fd);
  return 0;
}

/* st's connection is held or in its handshake, or established. */
static int under_way(int fd, struct tfo__fd *st) {
  struct tfo__tcpinfo ti;
  int kind = atomic_load(&st->kind), saved = errno, r;

  if (kind == FD_NONE)
    return 0;
  if (kind == FD_DEFERRED)
    return 1;
  r = tfo__tcpinfo_get(fd, &ti) == 0 && ti.state != TCP_CLOSE;
  errno = saved;
  return r;
}

/* The connect of a non-blocking socket: what the kernel says, except
 * that a SYN held for the first write (or a cookie request out) reads as
 * EINPROGRESS, as a plain one would. */
static int connect_nonblocking(int fd, struct tfo__fd *st,
                               const struct sockaddr *sa, socklen_t len,
                               int known, int saved) {
  int rc, err;

  errno = saved;
  rc = tfo__libc()->connect(fd, sa, len);
  err = errno;
  if (rc == 0 || err == EINPROGRESS) {
    note_started(fd, st, rc == 0, known);
    if (rc != 0) /* a cookie request left: raced like a data SYN */
      tfo__fd_arm_race(st);
    /* What the kernel says of a non-blocking connect without the shim:
     * the SYN is (as good as) on its way. The socket is writable at once
     * and SO_ERROR is 0, so the program writes its request into the SYN. */
    rc = -1;
    err = EINPROGRESS;
  }
  errno = err;
  return rc;
}

TFO_SHIM_EXPORT int connect(int fd, const struct sockaddr *sa,
                            socklen_t len) {
  const struct tfo__libc *libc = tfo__libc();
  struct tfo__verdict v;
  struct tfo__fd *st = NULL;
  int saved = errno;
  int one = 1, rc, fl, known;
  unsigned k = 0;

  if (tfo__nested) /* a signal handler's, inside the shim: a plain one */
    return libc->connect(fd, sa, len);
  TFO__NEST();
  /* A connection of ours under way: a connect again asks how it goes
   * (hiredis does); the kernel answers, the state stays. One that failed
   * is connected anew below. */
  st = tfo__fd_peek(fd);
  if (st != NULL && under_way(fd, st))
    return libc->connect(fd, sa, len);
  if (!wanted(fd, sa, len, &st, &k)) {
    errno = saved;
    return libc->connect(fd, sa, len);
  }
  atomic_fetch_add(&tfo__stats.attempts, 1);
  known = tfo__cache_lookup(sa, len, &v) == 0;
  if (known && v.skip) {
    atomic_fetch_add(&tfo__stats.skipped, 1);
    tfo__log(TFO__LOG_INFO, "fd %d: destination breaks TFO: plain connect",
             fd);
    errno = saved;
    return libc->connect(fd, sa, len);
  }
  /* Also the check that fd is what the table says: it fails on anything
   * but a TCP socket. EOPNOTSUPP: the client bit is off in this
   * namespace. */
  if (libc->setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &one,
                       sizeof(one)) != 0) {
    if (errno != EOPNOTSUPP)
      tfo__fd_unlearn(fd);
    atomic_fetch_add(&tfo__stats.disabled, 1);
    errno = saved;
    return libc->connect(fd, sa, len);
  }
  tfo__fd_clear(fd); /* a connection that failed, connected anew */
  memset(&st->addr, 0, sizeof(st->addr));
  memcpy(&st->addr, sa, len < sizeof(st->addr) ? len : sizeof(st->addr));
  st->addrlen = len < sizeof(st->addr) ? len : sizeof(st->addr);
  st->syn_bytes = 0;
  st->rtt_us = known ? v.rtt_us : 0;

  if (k & TFO__KNOW_NONBLOCK)
    return connect_nonblocking(fd, st, sa, len, known, saved);
  /* Blocking, to a destination whose last connection had its data SYN
   * accepted: the kernel holds a cookie for it (tcp_metrics keeps one
   * until the entry is evicted), so this connect returns at once, the SYN
   * held for the first write, which races. Made non-blocking only when
   * that is not so, where the SYN leaves now and must not block. Should
   * the cookie be gone, the kernel's own handshake answers (a cookie
   * request: one RTT, as plainly); the first write's judge reads it so. */
  if (known && v.last == TFO__EV_DATA_ACKED && v.failures == 0) {
    errno = saved;
    rc = libc->connect(fd, sa, len);
    if (rc == 0) {
      note_started(fd, st, 1, 1);
      errno = saved;
      return 0;
    }
    if (errno != EINPROGRESS)
      return rc;
    /* Non-blocking after all, or SO_SNDTIMEO ran out: told so. */
    tfo__fd_unlearn(fd);
    note_started(fd, st, 0, known);
    tfo__fd_arm_race_nb(fd, st);
    errno = EINPROGRESS;
    return -1;
  }
  fl = libc->fcntl(fd, F_GETFL);
  if (fl >= 0 && !(fl & O_NONBLOCK) &&
      libc->fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0) {
    rc = connect_blocking(fd, st, sa, len, fl, known);
    if (rc == 0)
      errno = saved;
    return rc;
  }
  return connect_nonblocking(fd, st, sa, len, known, saved);
}

TFO_SHIM_EXPORT int getpeername(int fd, struct sockaddr *sa,
                                socklen_t *len) {
  const struct tfo__libc *libc = tfo__libc();
  struct tfo__fd *st;
  int saved = errno;
  int rc = libc->getpeername(fd, sa, len);

  if (rc == 0 || errno != ENOTCONN || tfo__nested)
    return rc;
  /* While the SYN waits for data the kernel has no peer yet; the program
   * connected, so it gets the address it connected to. */
  st = tfo__fd_peek(fd);
  if (st == NULL || atomic_load(&st->kind) == FD_NONE ||
      st->deferred_at == 0 || sa == NULL || len == NULL ||
      !tfo__fd_same(fd, st))
    return rc;
  memcpy(sa, &st->addr, *len < st->addrlen ? *len : st->addrlen);
  *len = st->addrlen;
  errno = saved;
  return 0;
}
