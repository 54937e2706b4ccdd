/* poll, select, epoll: a program that waits to read a socket that holds its SYN waits for
 * the server to speak first (curl's FTP, SMTP, IMAP and POP3 poll for the
 * banner before reading it). Its SYN leaves at once, rather than when the
 * keeper's grace ends. A wait that includes writability keeps the SYN for
 * the write it announces. Everything else about the wait is libc's.
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>

#include "shim.h"

/* glibc declares poll's array write-only (access attribute), so GCC warns
 * that we read events the caller set: a false positive. */
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

static void release_readers(const struct pollfd *fds, nfds_t n) {
  struct tfo__fd *st;
  nfds_t i;

  for (i = 0; i < n; i++)
    if ((fds[i].events & POLLIN) && !(fds[i].events & POLLOUT) &&
        (st = tfo__fd_peek(fds[i].fd)) != NULL &&
        atomic_load(&st->kind) == FD_DEFERRED)
      tfo__fd_release(fds[i].fd, st);
}

TFO_SHIM_EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout) {
  if (!tfo__shim_idle() && fds != NULL)
    release_readers(fds, n);
  return tfo__libc()->poll(fds, n, timeout);
}

TFO_SHIM_EXPORT int ppoll(struct pollfd *fds, nfds_t n,
                          const struct timespec *ts, const sigset_t *mask) {
  if (!tfo__shim_idle() && fds != NULL)
    release_readers(fds, n);
  return tfo__libc()->ppoll(fds, n, ts, mask);
}

TFO_SHIM_EXPORT int __poll_chk(struct pollfd *fds, nfds_t n, int timeout,
                               size_t fdslen) {
  /* Only an array as long as n is read: libc's check reports the rest. */
  if (!tfo__shim_idle() && fds != NULL && fdslen / sizeof(*fds) >= n)
    release_readers(fds, n);
  return tfo__libc()->poll_chk(fds, n, timeout, fdslen);
}

/* select and pselect: the same, for a held socket in the read set and not
 * in the write set. */
static void release_selected(int n, const fd_set *rd, const fd_set *wr) {
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

TFO_SHIM_EXPORT int select(int n, fd_set *rd, fd_set *wr, fd_set *ex,
                           struct timeval *tv) {
  if (!tfo__shim_idle() && n > 0)
    release_selected(n, rd, wr);
  return tfo__libc()->select(n, rd, wr, ex, tv);
}

TFO_SHIM_EXPORT int pselect(int n, fd_set *rd, fd_set *wr, fd_set *ex,
                            const struct timespec *ts, const sigset_t *mask) {
  if (!tfo__shim_idle() && n > 0)
    release_selected(n, rd, wr);
  return tfo__libc()->pselect(n, rd, wr, ex, ts, mask);
}

/* epoll: the set a held socket is registered in is noted (only while its
 * SYN is held: one load otherwise). A wait on that set, for input only,
 * releases the SYN at once. Registered for output too, the first wait
 * reports the socket writable and the program writes; one that waits
 * again without writing waits for the server. */
TFO_SHIM_EXPORT int epoll_ctl(int ep, int op, int fd, struct epoll_event *ev) {
  struct tfo__fd *st;

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
  if (timeout != 0 && !tfo__shim_idle())
    tfo__fd_each_deferred(release_waiter, &ep);
}

TFO_SHIM_EXPORT int epoll_wait(int ep, struct epoll_event *evs, int n,
                               int timeout) {
  release_waiters(ep, timeout);
  return tfo__libc()->epoll_wait(ep, evs, n, timeout);
}

TFO_SHIM_EXPORT int epoll_pwait(int ep, struct epoll_event *evs, int n,
                                int timeout, const sigset_t *mask) {
  release_waiters(ep, timeout);
  return tfo__libc()->epoll_pwait(ep, evs, n, timeout, mask);
}

TFO_SHIM_EXPORT int epoll_pwait2(int ep, struct epoll_event *evs, int n,
                                 const struct timespec *ts,
                                 const sigset_t *mask) {
  release_waiters(ep, ts != NULL && ts->tv_sec == 0 && ts->tv_nsec == 0 ? 0
                                                                        : -1);
  return tfo__libc()->epoll_pwait2(ep, evs, n, ts, mask);
}
