/* Waiting for input on a deferred socket releases its SYN, as a read does
 * (see read.c): an event loop that waits for a server's banner before it
 * writes would otherwise wait forever.
 *
 * Not at once, though: event loops (asyncio, for one) register a new
 * connection for input and go round the loop once or twice before the
 * program's first write. So a deferred socket is given a short grace, and
 * only a wait that outlasts it releases the SYN. The wait keeps its
 * meaning: it is split in two (grace, then the rest), never shortened.
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <time.h>

#include "shim.h"

/* Long enough for a loop to reach the program's write, short enough to
 * add nothing noticeable to a banner that follows one RTT later. */
#define GRACE_MS 10

/* glibc declares poll's array write-only (access attribute), so GCC warns
 * that we read events the caller set: a false positive. */
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

/* Only real input counts: curl, for one, adds POLLPRI to a wait for
 * writability to catch errors, and that must not cost the data its SYN. */
#define INPUT (POLLIN | POLLRDNORM)

static int64_t now_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One deferred fd a wait is about: releases it once its grace is over.
 * Returns the grace left in ms, or -1 when it is released (or not ours). */
static int grace_left(int fd, struct tfo__fd *st, int64_t now) {
  int64_t since;

  if (atomic_load(&st->kind) != FD_DEFERRED)
    return -1;
  since = atomic_load(&st->input_since);
  if (since == 0) {
    int64_t expect = 0;

    atomic_compare_exchange_strong(&st->input_since, &expect, now);
    since = expect == 0 ? now : expect;
  }
  if (now - since >= GRACE_MS) {
    tfo__fd_release(fd, st);
    return -1;
  }
  return (int)(since + GRACE_MS - now);
}

static int min_left(int a, int b) {
  return a < 0 ? b : b < 0 ? a : a < b ? a : b;
}

/* The smallest grace left among the polled fds waiting for input. */
static int poll_grace(const struct pollfd *fds, nfds_t n) {
  struct tfo__fd *st;
  int64_t now;
  int left = -1;
  nfds_t i;

  if (atomic_load_explicit(&tfo__deferred_count, memory_order_relaxed) == 0)
    return -1;
  now = now_ms();
  for (i = 0; i < n; i++)
    if ((fds[i].events & INPUT) && (st = tfo__fd_peek(fds[i].fd)) != NULL)
      left = min_left(left, grace_left(fds[i].fd, st, now));
  return left;
}

static int select_grace(int nfds, const fd_set *in) {
  struct tfo__fd *st;
  int64_t now;
  int fd, left = -1;

  if (in == NULL ||
      atomic_load_explicit(&tfo__deferred_count, memory_order_relaxed) == 0)
    return -1;
  now = now_ms();
  for (fd = 0; fd < nfds && fd < FD_SETSIZE; fd++)
    if (FD_ISSET(fd, in) && (st = tfo__fd_peek(fd)) != NULL)
      left = min_left(left, grace_left(fd, st, now));
  return left;
}

static int epoll_grace(void) {
  return tfo__fd_wanting_input_grace(grace_left, now_ms());
}

/* A wait of timeout ms (-1: forever) with a grace of `left` ms pending:
 * wait the grace first; if nothing happened and time remains, let the
 * caller release and wait the rest. Returns 1 when the first wait is the
 * whole answer (*rc set), 0 to go on with *timeout reduced. */
static int first_part(int left, int *timeout, int rc_of_wait, int64_t t0,
                      int *rc) {
  if (rc_of_wait != 0 || (*timeout >= 0 && *timeout <= left)) {
    *rc = rc_of_wait;
    return 1;
  }
  if (*timeout > 0) {
    *timeout -= (int)(now_ms() - t0);
    if (*timeout < 0)
      *timeout = 0;
  }
  return 0;
}

TFO_SHIM_EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout) {
  const struct tfo__libc *libc = tfo__libc();
  int left = poll_grace(fds, n), rc;
  int64_t t0;

  if (left >= 0) {
    t0 = now_ms();
    rc = libc->poll(fds, n, timeout >= 0 && timeout < left ? timeout : left);
    if (first_part(left, &timeout, rc, t0, &rc))
      return rc;
    poll_grace(fds, n); /* the grace is over: release */
  }
  return libc->poll(fds, n, timeout);
}

TFO_SHIM_EXPORT int __poll_chk(struct pollfd *fds, nfds_t n, int timeout,
                               size_t fdslen) {
  if (fdslen / sizeof(*fds) < n)
    return tfo__libc()->poll_chk(fds, n, timeout, fdslen); /* libc aborts */
  return poll(fds, n, timeout);
}

static int ts_ms(const struct timespec *ts) {
  if (ts == NULL)
    return -1;
  if (ts->tv_sec > 1000000)
    return 1000000000;
  return (int)(ts->tv_sec * 1000 + (ts->tv_nsec + 999999) / 1000000);
}

TFO_SHIM_EXPORT int ppoll(struct pollfd *fds, nfds_t n,
                          const struct timespec *ts, const sigset_t *mask) {
  const struct tfo__libc *libc = tfo__libc();
  int left = poll_grace(fds, n);
  struct timespec g;

  /* Keep it simple for ppoll: wait out the grace with the same mask, then
   * release; the caller's own timeout is left to the kernel afterwards
   * (it can only be longer by the grace). */
  if (left >= 0 && (ts == NULL || ts_ms(ts) > left)) {
    g.tv_sec = left / 1000;
    g.tv_nsec = (long)(left % 1000) * 1000000;
    int rc = libc->ppoll(fds, n, &g, mask);
    if (rc != 0)
      return rc;
    poll_grace(fds, n);
  }
  return libc->ppoll(fds, n, ts, mask);
}

TFO_SHIM_EXPORT int select(int nfds, fd_set *in, fd_set *out, fd_set *ex,
                           struct timeval *tv) {
  const struct tfo__libc *libc = tfo__libc();
  int left = select_grace(nfds, in), rc;
  fd_set i0, o0, e0;
  struct timeval g;

  if (left >= 0 &&
      (tv == NULL || tv->tv_sec * 1000 + tv->tv_usec / 1000 > left)) {
    /* select overwrites its sets: keep the caller's for the second part. */
    if (in != NULL)
      i0 = *in;
    if (out != NULL)
      o0 = *out;
    if (ex != NULL)
      e0 = *ex;
    g.tv_sec = 0;
    g.tv_usec = left * 1000;
    rc = libc->select(nfds, in, out, ex, &g);
    if (rc != 0)
      return rc;
    if (in != NULL)
      *in = i0;
    if (out != NULL)
      *out = o0;
    if (ex != NULL)
      *ex = e0;
    select_grace(nfds, in);
  }
  return libc->select(nfds, in, out, ex, tv);
}

TFO_SHIM_EXPORT int pselect(int nfds, fd_set *in, fd_set *out, fd_set *ex,
                            const struct timespec *ts, const sigset_t *mask) {
  const struct tfo__libc *libc = tfo__libc();
  int left = select_grace(nfds, in), rc;
  fd_set i0, o0, e0;
  struct timespec g;

  if (left >= 0 && (ts == NULL || ts_ms(ts) > left)) {
    if (in != NULL)
      i0 = *in;
    if (out != NULL)
      o0 = *out;
    if (ex != NULL)
      e0 = *ex;
    g.tv_sec = 0;
    g.tv_nsec = (long)left * 1000000;
    rc = libc->pselect(nfds, in, out, ex, &g, mask);
    if (rc != 0)
      return rc;
    if (in != NULL)
      *in = i0;
    if (out != NULL)
      *out = o0;
    if (ex != NULL)
      *ex = e0;
    select_grace(nfds, in);
  }
  return libc->pselect(nfds, in, out, ex, ts, mask);
}

/* epoll sets are opaque to us, so remember per fd whether some set waits
 * for its input; epoll_wait then treats those as poll does. An fd
 * registered only for output (a loop waiting for connect to finish) keeps
 * its SYN for the data the program writes next. */
TFO_SHIM_EXPORT int epoll_ctl(int epfd, int op, int fd,
                              struct epoll_event *ev) {
  struct tfo__fd *st;
  int wants;

  if (op == EPOLL_CTL_DEL) {
    if ((st = tfo__fd_peek(fd)) != NULL)
      atomic_store(&st->wants_input, 0);
  } else if (ev != NULL) {
    wants = (ev->events & (EPOLLIN | EPOLLRDNORM)) != 0;
    /* Registration often comes before connect: keep it either way. */
    st = wants ? tfo__fd_get(fd) : tfo__fd_peek(fd);
    if (st != NULL)
      atomic_store(&st->wants_input, wants);
  }
  return tfo__libc()->epoll_ctl(epfd, op, fd, ev);
}

TFO_SHIM_EXPORT int epoll_wait(int epfd, struct epoll_event *evs, int max,
                               int timeout) {
  const struct tfo__libc *libc = tfo__libc();
  int left = epoll_grace(), rc;
  int64_t t0;

  if (left >= 0) {
    t0 = now_ms();
    rc = libc->epoll_wait(epfd, evs, max,
                          timeout >= 0 && timeout < left ? timeout : left);
    if (first_part(left, &timeout, rc, t0, &rc))
      return rc;
    epoll_grace();
  }
  return libc->epoll_wait(epfd, evs, max, timeout);
}

TFO_SHIM_EXPORT int epoll_pwait(int epfd, struct epoll_event *evs, int max,
                                int timeout, const sigset_t *mask) {
  const struct tfo__libc *libc = tfo__libc();
  int left = epoll_grace(), rc;
  int64_t t0;

  if (left >= 0) {
    t0 = now_ms();
    rc = libc->epoll_pwait(epfd, evs, max,
                           timeout >= 0 && timeout < left ? timeout : left,
                           mask);
    if (first_part(left, &timeout, rc, t0, &rc))
      return rc;
    epoll_grace();
  }
  return libc->epoll_pwait(epfd, evs, max, timeout, mask);
}
