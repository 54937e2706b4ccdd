/* Waiting for input on a deferred socket releases its SYN, as a read does
 * (see read.c): an event loop that waits for a server's banner before it
 * writes would otherwise wait forever.
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>

#include "shim.h"

/* glibc declares poll's array write-only (access attribute), so GCC warns
 * that we read events the caller set: a false positive. */
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

/* Only real input counts: curl, for one, adds POLLPRI to a wait for
 * writability to catch errors, and that must not cost the data its SYN. */
#define INPUT (POLLIN | POLLRDNORM)

static void release_polled(const struct pollfd *fds, nfds_t n) {
  struct tfo__fd *st;
  nfds_t i;

  if (atomic_load_explicit(&tfo__deferred_count, memory_order_relaxed) == 0)
    return;
  for (i = 0; i < n; i++)
    if ((fds[i].events & INPUT) && (st = tfo__fd_peek(fds[i].fd)) != NULL &&
        atomic_load(&st->kind) == FD_DEFERRED)
      tfo__fd_release(fds[i].fd, st);
}

TFO_SHIM_EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout) {
  release_polled(fds, n);
  return tfo__libc()->poll(fds, n, timeout);
}

TFO_SHIM_EXPORT int __poll_chk(struct pollfd *fds, nfds_t n, int timeout,
                               size_t fdslen) {
  release_polled(fds, n);
  return tfo__libc()->poll_chk(fds, n, timeout, fdslen);
}

TFO_SHIM_EXPORT int ppoll(struct pollfd *fds, nfds_t n,
                          const struct timespec *ts, const sigset_t *mask) {
  release_polled(fds, n);
  return tfo__libc()->ppoll(fds, n, ts, mask);
}

static void release_selected(int nfds, const fd_set *in) {
  struct tfo__fd *st;
  int fd;

  if (in == NULL ||
      atomic_load_explicit(&tfo__deferred_count, memory_order_relaxed) == 0)
    return;
  for (fd = 0; fd < nfds && fd < FD_SETSIZE; fd++)
    if (FD_ISSET(fd, in) && (st = tfo__fd_peek(fd)) != NULL &&
        atomic_load(&st->kind) == FD_DEFERRED)
      tfo__fd_release(fd, st);
}

TFO_SHIM_EXPORT int select(int nfds, fd_set *in, fd_set *out, fd_set *ex,
                           struct timeval *tv) {
  release_selected(nfds, in);
  return tfo__libc()->select(nfds, in, out, ex, tv);
}

TFO_SHIM_EXPORT int pselect(int nfds, fd_set *in, fd_set *out, fd_set *ex,
                            const struct timespec *ts, const sigset_t *mask) {
  release_selected(nfds, in);
  return tfo__libc()->pselect(nfds, in, out, ex, ts, mask);
}

/* epoll sets are opaque to us, so remember per fd whether some set waits
 * for its input; epoll_wait then releases those. An fd registered only
 * for output (a loop waiting for connect to finish) keeps its SYN for the
 * data the program writes next. */
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
  tfo__fd_release_all(1);
  return tfo__libc()->epoll_wait(epfd, evs, max, timeout);
}

TFO_SHIM_EXPORT int epoll_pwait(int epfd, struct epoll_event *evs, int max,
                                int timeout, const sigset_t *mask) {
  tfo__fd_release_all(1);
  return tfo__libc()->epoll_pwait(epfd, evs, max, timeout, mask);
}
