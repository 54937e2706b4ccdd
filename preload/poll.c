/* poll, select, epoll: a program that waits to read a socket that holds its SYN waits for
 * the server to speak first (curl's FTP, SMTP, IMAP and POP3 poll for the
 * banner before reading it). Its SYN leaves at once, rather than when the
 * keeper's grace ends. A wait that includes writability keeps the SYN for
 * the write it announces. While a non-blocking socket's TFO SYN is armed
 * for the race (race.c), a wait is split where the race falls due, the
 * plain connection started there, and the wait goes on for the rest of
 * the program's time. Everything else about the wait is libc's.
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>

#include "shim.h"

static int racing(void) {
  return atomic_load_explicit(&tfo__racing_count, memory_order_relaxed) != 0;
}

/* ms of a timespec, rounded up (a wait never ends early); -1 for NULL. */
static int ts_ms(const struct timespec *ts) {
  long long ms;

  if (ts == NULL)
    return -1;
  if (ts->tv_sec < 0 || ts->tv_nsec < 0)
    return 0;
  ms = (long long)ts->tv_sec * 1000 + (ts->tv_nsec + 999999) / 1000000;
  return ms > 0x7fffffff ? 0x7fffffff : (int)ms;
}

static struct timespec ms_ts(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

  return ts;
}

/* glibc declares poll's array write-only (access attribute), so GCC warns
 * that we read events the caller set: a false positive. */
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

static void release_readers(const struct pollfd *fds, nfds_t n) {
  TFO__NEST();
  struct tfo__fd *st;
  nfds_t i;

  for (i = 0; i < n; i++)
    if ((fds[i].events & POLLIN) && !(fds[i].events & POLLOUT) &&
        (st = tfo__fd_peek(fds[i].fd)) != NULL &&
        atomic_load(&st->kind) == FD_DEFERRED)
      tfo__fd_release(fds[i].fd, st);
}

/* The poll family while a race is armed: ppoll's arguments (ts NULL: no
 * timeout), split where races fall due. */
static int ppoll_racing(struct pollfd *fds, nfds_t n,
                        const struct timespec *ts, const sigset_t *mask) {
  struct tfo__wait w;
  struct timespec t;
  int rc, own, ms;

  tfo__wait_start(&w, ts_ms(ts));
  for (;;) {
    ms = tfo__wait_next(&w, &own);
    t = ms_ts(ms);
    rc = tfo__libc()->ppoll(fds, n, own && w.timeout == ms ? ts
                                    : ms < 0               ? NULL
                                                           : &t,
                            mask);
    if (rc != 0 || own)
      return rc;
  }
}

TFO_SHIM_EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout) {
  if (tfo__nested)
    return tfo__libc()->poll(fds, n, timeout);
  if (!tfo__shim_idle() && fds != NULL)
    release_readers(fds, n);
  if (racing()) {
    struct timespec t = ms_ts(timeout);

    return ppoll_racing(fds, n, timeout < 0 ? NULL : &t, NULL);
  }
  return tfo__libc()->poll(fds, n, timeout);
}

TFO_SHIM_EXPORT int ppoll(struct pollfd *fds, nfds_t n,
                          const struct timespec *ts, const sigset_t *mask) {
  if (tfo__nested)
    return tfo__libc()->ppoll(fds, n, ts, mask);
  if (!tfo__shim_idle() && fds != NULL)
    release_readers(fds, n);
  if (racing())
    return ppoll_racing(fds, n, ts, mask);
  return tfo__libc()->ppoll(fds, n, ts, mask);
}

TFO_SHIM_EXPORT int __poll_chk(struct pollfd *fds, nfds_t n, int timeout,
                               size_t fdslen) {
  if (tfo__nested)
    return tfo__libc()->poll_chk(fds, n, timeout, fdslen);
  /* Only an array as long as n is read: libc's check reports the rest. */
  if (!tfo__shim_idle() && fds != NULL && fdslen / sizeof(*fds) >= n)
    release_readers(fds, n);
  if (racing() && fdslen / sizeof(*fds) >= n) {
    struct timespec t = ms_ts(timeout);

    return ppoll_racing(fds, n, timeout < 0 ? NULL : &t, NULL);
  }
  return tfo__libc()->poll_chk(fds, n, timeout, fdslen);
}

/* select and pselect: the same, for a held socket in the read set and not
 * in the write set. */
static void release_selected(int n, const fd_set *rd, const fd_set *wr) {
  TFO__NEST();
  struct tfo__fd *st;
  int fd;

  if (rd == NULL)
    return;
  for (fd = 0; fd < n && fd < FD_SETSIZE; fd++)
    if (FD_ISSET(fd, rd) && (wr == NULL || !FD_ISSET(fd, wr)) &&
        (st = tfo__fd_peek(fd)) != NULL &&
        atomic_load(&st->kind) == FD_DEFERRED)
      tfo__fd_release(fd, st);
}

/* The select family while a race is armed: the sets are the program's
 * again for each part of a split wait (a timed-out select empties them). */
static int pselect_racing(int n, fd_set *rd, fd_set *wr, fd_set *ex,
                          const struct timespec *ts, const sigset_t *mask) {
  struct tfo__wait w;
  struct timespec t;
  fd_set r0, w0, e0;
  int rc, own, ms;

  if (rd != NULL)
    r0 = *rd;
  if (wr != NULL)
    w0 = *wr;
  if (ex != NULL)
    e0 = *ex;
  tfo__wait_start(&w, ts_ms(ts));
  for (;;) {
    ms = tfo__wait_next(&w, &own);
    t = ms_ts(ms);
    rc = tfo__libc()->pselect(n, rd, wr, ex,
                              own && w.timeout == ms ? ts
                              : ms < 0               ? NULL
                                                     : &t,
                              mask);
    if (rc != 0 || own)
      return rc;
    if (rd != NULL)
      *rd = r0;
    if (wr != NULL)
      *wr = w0;
    if (ex != NULL)
      *ex = e0;
  }
}

TFO_SHIM_EXPORT int select(int n, fd_set *rd, fd_set *wr, fd_set *ex,
                           struct timeval *tv) {
  if (tfo__nested)
    return tfo__libc()->select(n, rd, wr, ex, tv);
  if (!tfo__shim_idle() && n > 0)
    release_selected(n, rd, wr);
  if (racing() && n >= 0 && n <= FD_SETSIZE) {
    struct timespec t;
    int64_t end = 0;
    int rc;

    if (tv != NULL) {
      if (tv->tv_sec < 0 || tv->tv_usec < 0 || tv->tv_usec >= 1000000)
        return tfo__libc()->select(n, rd, wr, ex, tv); /* EINVAL: libc's */
      t.tv_sec = tv->tv_sec;
      t.tv_nsec = tv->tv_usec * 1000;
      end = tfo__shim_now_ms() + ts_ms(&t);
    }
    rc = pselect_racing(n, rd, wr, ex, tv != NULL ? &t : NULL, NULL);
    if (tv != NULL) { /* Linux's select says how much time was left */
      int64_t left = end - tfo__shim_now_ms();

      if (left < 0 || rc == 0)
        left = 0;
      tv->tv_sec = (time_t)(left / 1000);
      tv->tv_usec = (suseconds_t)(left % 1000) * 1000;
    }
    return rc;
  }
  return tfo__libc()->select(n, rd, wr, ex, tv);
}

TFO_SHIM_EXPORT int pselect(int n, fd_set *rd, fd_set *wr, fd_set *ex,
                            const struct timespec *ts, const sigset_t *mask) {
  if (tfo__nested)
    return tfo__libc()->pselect(n, rd, wr, ex, ts, mask);
  if (!tfo__shim_idle() && n > 0)
    release_selected(n, rd, wr);
  if (racing() && n >= 0 && n <= FD_SETSIZE)
    return pselect_racing(n, rd, wr, ex, ts, mask);
  return tfo__libc()->pselect(n, rd, wr, ex, ts, mask);
}

/* epoll: the set a held socket is registered in is noted (only while its
 * SYN is held: one load otherwise). A wait on that set, for input only,
 * releases the SYN at once. Registered for output too, the first wait
 * reports the socket writable and the program writes; one that waits
 * again without writing waits for the server. */
TFO_SHIM_EXPORT int epoll_ctl(int ep, int op, int fd, struct epoll_event *ev) {
  struct tfo__fd *st; /* atomics only: safe at any depth */

  if (atomic_load_explicit(&tfo__deferred_count, memory_order_relaxed) != 0 &&
      (st = tfo__fd_peek(fd)) != NULL &&
      atomic_load(&st->kind) == FD_DEFERRED) {
    if (op == EPOLL_CTL_DEL || ev == NULL) {
      atomic_store(&st->ep1, 0);
    } else {
      atomic_store(&st->ep_events, ev->events);
      atomic_store(&st->ep_waits, 0);
      atomic_store(&st->ep1, ep + 1);
    }
  }
  return tfo__libc()->epoll_ctl(ep, op, fd, ev);
}

static int release_waiter(int fd, struct tfo__fd *st, void *arg) {
  uint32_t ev;

  if (atomic_load(&st->ep1) != *(const int *)arg + 1)
    return -1;
  ev = atomic_load(&st->ep_events);
  if ((ev & EPOLLIN) &&
      (!(ev & EPOLLOUT) || atomic_fetch_add(&st->ep_waits, 1) >= 1))
    tfo__fd_release(fd, st);
  return -1;
}

static void release_waiters(int ep, int timeout) {
  if (timeout != 0 && !tfo__shim_idle()) {
    TFO__NEST();
    tfo__fd_each_deferred(release_waiter, &ep);
  }
}

/* The epoll family while a race is armed: epoll_pwait's arguments, with
 * ts (exact) passed on where the program's own time is waited. */
static int epoll_racing(int ep, struct epoll_event *evs, int n, int timeout,
                        const struct timespec *ts, const sigset_t *mask) {
  struct tfo__wait w;
  int rc, own, ms;

  tfo__wait_start(&w, timeout);
  for (;;) {
    ms = tfo__wait_next(&w, &own);
    if (own && ts != NULL && w.timeout == ms)
      rc = tfo__libc()->epoll_pwait2(ep, evs, n, ts, mask);
    else
      rc = tfo__libc()->epoll_pwait(ep, evs, n, ms, mask);
    if (rc != 0 || own)
      return rc;
  }
}

TFO_SHIM_EXPORT int epoll_wait(int ep, struct epoll_event *evs, int n,
                               int timeout) {
  if (tfo__nested)
    return tfo__libc()->epoll_wait(ep, evs, n, timeout);
  release_waiters(ep, timeout);
  if (racing())
    return epoll_racing(ep, evs, n, timeout, NULL, NULL);
  return tfo__libc()->epoll_wait(ep, evs, n, timeout);
}

TFO_SHIM_EXPORT int epoll_pwait(int ep, struct epoll_event *evs, int n,
                                int timeout, const sigset_t *mask) {
  if (tfo__nested)
    return tfo__libc()->epoll_pwait(ep, evs, n, timeout, mask);
  release_waiters(ep, timeout);
  if (racing())
    return epoll_racing(ep, evs, n, timeout, NULL, mask);
  return tfo__libc()->epoll_pwait(ep, evs, n, timeout, mask);
}

TFO_SHIM_EXPORT int epoll_pwait2(int ep, struct epoll_event *evs, int n,
                                 const struct timespec *ts,
                                 const sigset_t *mask) {
  if (tfo__nested)
    return tfo__libc()->epoll_pwait2(ep, evs, n, ts, mask);
  release_waiters(ep, ts != NULL && ts->tv_sec == 0 && ts->tv_nsec == 0 ? 0
                                                                        : -1);
  if (racing())
    return epoll_racing(ep, evs, n, ts_ms(ts), ts, mask);
  return tfo__libc()->epoll_pwait2(ep, evs, n, ts, mask);
}
