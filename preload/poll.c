/* Waits: a deferred socket must not hold its SYN while the program waits.
 *
 * With a cookie cached, the kernel holds a connection's SYN until the
 * program writes. A program that instead waits, for that socket's input
 * (a server that speaks first) or for anything else (curl's FTP waits on
 * the control connection while the server waits for the data connection),
 * would wait forever. So a deferred socket gets a short grace from its
 * connect: event loops (asyncio, node) go round once or twice before the
 * program's first write, and that write should still ride in the SYN. A
 * wait that outlasts the grace is split in two: the grace, then the SYNs
 * are released, then the rest of the wait. Its meaning is kept: it is
 * never shortened, and its result is the real call's.
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <time.h>

#include "shim.h"

/* glibc declares poll's array write-only (access attribute), so GCC warns
 * that we read events the caller set: a false positive. */
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

int tfo__wait_releasing(int (*wait)(void *arg, int ms), void *arg,
                        int timeout) {
  int64_t t0 = 0, now;
  int left, remaining, rc;

  for (;;) {
    if (atomic_load_explicit(&tfo__deferred_count, memory_order_relaxed) == 0)
      return wait(arg, timeout < 0 ? -1 : timeout);
    now = tfo__shim_now_ms();
    if (t0 == 0)
      t0 = now;
    left = tfo__fd_expire(now);
    remaining = timeout < 0 ? -1 : timeout - (int)(now - t0);
    if (remaining < -1 || (timeout >= 0 && remaining < 0))
      remaining = 0;
    if (left < 0 || (remaining >= 0 && remaining <= left))
      return wait(arg, remaining);
    rc = wait(arg, left);
    if (rc != 0)
      return rc;
  }
}

struct poll_arg {
  struct pollfd *fds;
  nfds_t n;
  const sigset_t *mask;
  int use_ppoll;
};

static int poll_part(void *p, int ms) {
  struct poll_arg *a = p;
  struct timespec ts;

  if (!a->use_ppoll)
    return tfo__libc()->poll(a->fds, a->n, ms);
  ts.tv_sec = ms / 1000;
  ts.tv_nsec = (long)(ms % 1000) * 1000000;
  return tfo__libc()->ppoll(a->fds, a->n, ms < 0 ? NULL : &ts, a->mask);
}

TFO_SHIM_EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout) {
  struct poll_arg a = {fds, n, NULL, 0};

  return tfo__wait_releasing(poll_part, &a, timeout);
}

TFO_SHIM_EXPORT int __poll_chk(struct pollfd *fds, nfds_t n, int timeout,
                               size_t fdslen) {
  if (fdslen / sizeof(*fds) < n) /* libc's check reports and aborts */
    return tfo__libc()->poll_chk(fds, n, timeout, fdslen);
  return poll(fds, n, timeout);
}

static int ts_to_ms(const struct timespec *ts) {
  if (ts == NULL)
    return -1;
  if (ts->tv_sec < 0 || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000)
    return -2; /* invalid: let the kernel say EINVAL */
  if (ts->tv_sec > 1000000)
    return 1000000000;
  return (int)(ts->tv_sec * 1000 + (ts->tv_nsec + 999999) / 1000000);
}

TFO_SHIM_EXPORT int ppoll(struct pollfd *fds, nfds_t n,
                          const struct timespec *ts, const sigset_t *mask) {
  struct poll_arg a = {fds, n, mask, 1};
  int ms = ts_to_ms(ts);

  if (ms == -2 ||
      atomic_load_explicit(&tfo__deferred_count, memory_order_relaxed) == 0)
    return tfo__libc()->ppoll(fds, n, ts, mask);
  return tfo__wait_releasing(poll_part, &a, ms);
}

struct select_arg {
  int nfds;
  fd_set *in, *out, *ex;
  fd_set in0, out0, ex0; /* select overwrites its sets: the caller's */
  const sigset_t *mask;
  int use_pselect;
};

static int select_part(void *p, int ms) {
  struct select_arg *a = p;
  struct timeval tv;
  struct timespec ts;

  if (a->in != NULL)
    *a->in = a->in0;
  if (a->out != NULL)
    *a->out = a->out0;
  if (a->ex != NULL)
    *a->ex = a->ex0;
  if (a->use_pselect) {
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long)(ms % 1000) * 1000000;
    return tfo__libc()->pselect(a->nfds, a->in, a->out, a->ex,
                                ms < 0 ? NULL : &ts, a->mask);
  }
  tv.tv_sec = ms / 1000;
  tv.tv_usec = (long)(ms % 1000) * 1000;
  return tfo__libc()->select(a->nfds, a->in, a->out, a->ex,
                             ms < 0 ? NULL : &tv);
}

static int select_releasing(struct select_arg *a, int ms) {
  if (a->in != NULL)
    a->in0 = *a->in;
  if (a->out != NULL)
    a->out0 = *a->out;
  if (a->ex != NULL)
    a->ex0 = *a->ex;
  return tfo__wait_releasing(select_part, a, ms);
}

TFO_SHIM_EXPORT int select(int nfds, fd_set *in, fd_set *out, fd_set *ex,
                           struct timeval *tv) {
  struct select_arg a;
  int64_t t0;
  int ms, rc, used;

  /* An invalid timeout or nfds is the kernel's to refuse: pass through. */
  if (nfds < 0 || nfds > FD_SETSIZE ||
      (tv != NULL && (tv->tv_sec < 0 || tv->tv_usec < 0 ||
                      tv->tv_usec >= 1000000)) ||
      atomic_load_explicit(&tfo__deferred_count, memory_order_relaxed) == 0)
    return tfo__libc()->select(nfds, in, out, ex, tv);
  ms = tv == NULL ? -1
       : tv->tv_sec > 1000000
           ? 1000000000
           : (int)(tv->tv_sec * 1000 + (tv->tv_usec + 999) / 1000);
  a.nfds = nfds;
  a.in = in;
  a.out = out;
  a.ex = ex;
  a.mask = NULL;
  a.use_pselect = 0;
  t0 = tfo__shim_now_ms();
  rc = select_releasing(&a, ms);
  if (tv != NULL) { /* Linux reports the time left, as callers expect */
    used = (int)(tfo__shim_now_ms() - t0);
    ms = ms > used ? ms - used : 0;
    tv->tv_sec = ms / 1000;
    tv->tv_usec = (long)(ms % 1000) * 1000;
  }
  return rc;
}

TFO_SHIM_EXPORT int pselect(int nfds, fd_set *in, fd_set *out, fd_set *ex,
                            const struct timespec *ts, const sigset_t *mask) {
  struct select_arg a;
  int ms = ts_to_ms(ts);

  if (ms == -2 || nfds < 0 || nfds > FD_SETSIZE ||
      atomic_load_explicit(&tfo__deferred_count, memory_order_relaxed) == 0)
    return tfo__libc()->pselect(nfds, in, out, ex, ts, mask);
  a.nfds = nfds;
  a.in = in;
  a.out = out;
  a.ex = ex;
  a.mask = mask;
  a.use_pselect = 1;
  return select_releasing(&a, ms);
}

/* Remembered so that a socket in an epoll set is never replaced behind the
 * set's back (see recover.c): the set would keep watching the old one. */
TFO_SHIM_EXPORT int epoll_ctl(int epfd, int op, int fd,
                              struct epoll_event *ev) {
  struct tfo__fd *st;

  /* Registration often comes before connect: keep it either way. */
  if (op == EPOLL_CTL_ADD && (st = tfo__fd_get(fd)) != NULL)
    atomic_store(&st->epolled, 1);
  else if (op == EPOLL_CTL_DEL && (st = tfo__fd_peek(fd)) != NULL)
    atomic_store(&st->epolled, 0);
  return tfo__libc()->epoll_ctl(epfd, op, fd, ev);
}

struct epoll_arg {
  int epfd;
  struct epoll_event *evs;
  int max;
  const sigset_t *mask;
  int use_pwait;
};

static int epoll_part(void *p, int ms) {
  struct epoll_arg *a = p;

  if (a->use_pwait)
    return tfo__libc()->epoll_pwait(a->epfd, a->evs, a->max, ms, a->mask);
  return tfo__libc()->epoll_wait(a->epfd, a->evs, a->max, ms);
}

TFO_SHIM_EXPORT int epoll_wait(int epfd, struct epoll_event *evs, int max,
                               int timeout) {
  struct epoll_arg a = {epfd, evs, max, NULL, 0};

  return tfo__wait_releasing(epoll_part, &a, timeout);
}

TFO_SHIM_EXPORT int epoll_pwait(int epfd, struct epoll_event *evs, int max,
                                int timeout, const sigset_t *mask) {
  struct epoll_arg a = {epfd, evs, max, mask, 1};

  return tfo__wait_releasing(epoll_part, &a, timeout);
}
