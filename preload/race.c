/* The race for blocking callers: libtfo's connect machine (lib/connect.c,
 * the one behind tfo_connect_send) driven to its end on the program's own
 * socket, and the plain socket that wins put in its place.
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/time.h>

#include "log.h"
#include "shim.h"

int tfo__fd_take_place(int fd, int s) {
  const struct tfo__libc *libc = tfo__libc();
  int fl = libc->fcntl(fd, F_GETFL), fdflags = libc->fcntl(fd, F_GETFD), e;

  /* The program's file flags and descriptor flags, not ours. */
  if (fl >= 0 && !(fl & O_NONBLOCK))
    libc->fcntl(s, F_SETFL, libc->fcntl(s, F_GETFL) & ~O_NONBLOCK);
  if (libc->dup3(s, fd, fdflags >= 0 && (fdflags & FD_CLOEXEC) ? O_CLOEXEC
                                                              : 0) < 0) {
    e = errno;
    libc->close(s);
    errno = e;
    return -1;
  }
  libc->close(s);
  return 0;
}

/* Whether fd still refers to the socket `was` describes. */
static int same_socket(int fd, const struct stat *was) {
  struct stat now;
  int saved = errno, rc = fstat(fd, &now) == 0 && now.st_dev == was->st_dev &&
                          now.st_ino == was->st_ino;

  errno = saved;
  return rc;
}

/* The program's SO_SNDTIMEO as a deadline from t0 (ms), 0 when none: it
 * bounds a blocking connect or write, so it bounds our wait in its stead. */
static int64_t send_deadline(int fd, int64_t t0) {
  struct timeval tv;
  socklen_t len = sizeof(tv);
  int saved = errno;

  if (getsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, &len) != 0 ||
      (tv.tv_sec == 0 && tv.tv_usec == 0)) {
    errno = saved;
    return 0;
  }
  return t0 + (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

int tfo__shim_drive(int fd, tfo_conn *c, struct tfo_watch *w, int fl,
                    struct tfo_result *res) {
  const struct tfo__libc *libc = tfo__libc();
  struct pollfd pfd[2];
  struct stat sock;
  nfds_t np;
  int64_t t0 = tfo__shim_now_ms(), deadline = -1, left;
  int nfd, e, i, rc = 0, known, waits = 0, tmo;

  /* Another thread of the program may close fd while we wait (poll does
   * not notice: its own reference keeps the socket alive), and the number
   * may be reused at once by a new socket of the program's. */
  known = fstat(fd, &sock) == 0;
  while (tfo_conn_step(c, w) == 1) {
    for (i = 0, np = 0; i < 2; i++)
      if (w->fd[i] >= 0) {
        pfd[np].fd = w->fd[i];
        pfd[np].events = w->events[i];
        pfd[np].revents = 0;
        np++;
      }
    /* Asked only once a second wait is needed (an answer within the first
     * costs nothing more), so a timeout shorter than the race delay may be
     * overrun by up to that delay. */
    tmo = w->timeout_ms;
    if (waits++ == 1)
      deadline = send_deadline(fd, t0);
    if (deadline > 0) {
      left = deadline - tfo__shim_now_ms();
      if (left <= 0) {
        tfo_conn_abort(c); /* fd itself stays, its handshake going on */
        if (fl >= 0)
          libc->fcntl(fd, F_SETFL, fl);
        errno = EAGAIN;
        return -2;
      }
      if (tmo < 0 || tmo > left)
        tmo = (int)left;
    }
    /* EINTR: the program's handler ran; its blocking call goes on, as a
     * connect or write with SA_RESTART would. */
    if (libc->poll(pfd, np, tmo) < 0 && errno != EINTR) {
      e = errno;
      tfo_conn_abort(c);
      if (fl >= 0)
        libc->fcntl(fd, F_SETFL, fl);
      errno = e;
      return -1;
    }
    /* Then nothing is left to finish, retry, judge or put in fd's place
     * (a plain connection there would resend the data and take over the
     * new socket's number); the call fails as one on a closed fd does. */
    if (known && !same_socket(fd, &sock)) {
      tfo_conn_abort(c);
      errno = EBADF;
      return -1;
    }
  }
  nfd = tfo_conn_finish(c, res);
  e = errno;
  if (fl >= 0)
    libc->fcntl(fd, F_SETFL, fl);
  if (nfd < 0) {
    errno = e;
    return -1;
  }
  if (nfd != fd) {
    if (tfo__fd_take_place(fd, nfd) != 0)
      return -1;
    tfo__shim_count(TFO_OUTCOME_FALLBACK);
    tfo__log(TFO__LOG_INFO, "fd %d: %s: a plain connection took its place", fd,
             tfo_outcome_str(res->outcome));
    rc = 1;
  }
  return rc;
}
