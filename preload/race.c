/* The race. For blocking callers: libtfo's connect machine (lib/connect.c,
 * the one behind tfo_connect_send) driven to its end on the program's own
 * socket, and the plain socket that wins put in its place. For
 * non-blocking ones, whose sockets sit in epoll sets the shim cannot
 * rebuild: the fallback delay of that machine, then a plain connection in
 * place, on the same socket (shim.h).
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h> /* TCP_FASTOPEN_CONNECT, TCP_SYN_SENT */
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>

#include "cache.h"
#include "connect.h"
#include "log.h"
#include "shim.h"
#include "tcpinfo.h"

int tfo__fd_take_place(int fd, int s) {
  const struct tfo__libc *libc = tfo__libc();
  int fl = libc->fcntl(fd, F_GETFL), fdflags = libc->fcntl(fd, F_GETFD), e;

  /* The program's file flags and descriptor flags, not ours. */
  if (fl >= 0 && !(fl & O_NONBLOCK))
    libc->fcntl(s, F_SETFL, libc->fcntl(s, F_GETFL) & ~O_NONBLOCK);
  /* What the table knew of fd was of the socket it replaces. */
  tfo__fd_unlearn(fd);
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
   * may be reused at once by a new socket of the program's. Noted before
   * the first wait: an answer already there needs none. */
  known = -1;
  while (tfo_conn_step(c, w) == 1) {
    if (known < 0)
      known = fstat(fd, &sock) == 0;
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
    if (known > 0 && !same_socket(fd, &sock)) {
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

/* --- the race for non-blocking programs (shim.h says how) ------------- */

_Atomic int tfo__racing_count;

void tfo__fd_arm_race(struct tfo__fd *st) {
  int64_t at;

  st->race_ms = tfo__fallback_delay_ms((const struct sockaddr *)&st->addr,
                                       st->addrlen, st->rtt_us);
  at = tfo__shim_now_ms() + st->race_ms;
  if (atomic_exchange(&st->race_at, at) == 0)
    atomic_fetch_add(&tfo__racing_count, 1);
}

void tfo__fd_arm_race_nb(int fd, struct tfo__fd *st) {
  if (tfo__fd_nonblocking(fd, st) == 1)
    tfo__fd_arm_race(st);
}

void tfo__fd_disarm_race(struct tfo__fd *st) {
  if (atomic_load_explicit(&st->race_at, memory_order_relaxed) != 0 &&
      atomic_exchange(&st->race_at, 0) != 0)
    atomic_fetch_sub(&tfo__racing_count, 1);
}

/* st's TFO SYN went unanswered for the fallback delay: the socket is
 * connected again, plainly, in place. */
static void restart(int fd, struct tfo__fd *st) {
  struct tfo__tcpinfo ti;
  int saved = errno;

  /* Ours while we are at it: the keeper must not judge it meanwhile. */
  if (!atomic_compare_exchange_strong(&st->kind, &(int){FD_SENT},
                                      FD_RELEASING))
    return;
  if (!tfo__fd_same(fd, st) || tfo__tcpinfo_get(fd, &ti) != 0 ||
      ti.state != TCP_SYN_SENT) {
    /* Answered (or reset: recover.c's) in the meantime. */
    atomic_compare_exchange_strong(&st->kind, &(int){FD_RELEASING}, FD_SENT);
    errno = saved;
    return;
  }
  if (tfo__conn_restart_plain(fd, (const struct sockaddr *)&st->addr,
                              st->addrlen) != 0) {
    /* The socket is left as the failed connect left it: the program hears
     * the error at its next call, as after a plain connect's failure. */
    tfo__log(TFO__LOG_INFO, "fd %d: no plain connection in place: %s", fd,
             tfo__strerror(errno));
    tfo__fd_clear(fd);
    errno = saved;
    return;
  }
  atomic_store(&st->restarted, TFO__RESTART_RACE);
  tfo__log(TFO__LOG_INFO,
           "fd %d: TFO SYN unanswered after %d ms: connecting plainly", fd,
           st->race_ms);
  if (atomic_compare_exchange_strong(&st->kind, &(int){FD_RELEASING},
                                     FD_SENT))
    tfo__keeper_watch(fd, st); /* judged when the plain handshake ends */
  errno = saved;
}

static int race_one(int fd, struct tfo__fd *st, void *arg) {
  int64_t now = *(const int64_t *)arg, at = atomic_load(&st->race_at);

  if (at == 0)
    return -1;
  if (at > now)
    return (int)(at - now);
  tfo__fd_disarm_race(st);
  restart(fd, st);
  return -1;
}

int tfo__race_due(void) {
  int64_t now;

  if (atomic_load_explicit(&tfo__racing_count, memory_order_relaxed) == 0)
    return -1;
  now = tfo__shim_now_ms();
  return tfo__fd_each_racing(race_one, &now);
}

int tfo__fd_before_io(int fd) {
  struct tfo__fd *st = tfo__fd_peek(fd);
  int64_t now;

  if (st == NULL)
    return 0;
  if (atomic_load_explicit(&st->race_at, memory_order_relaxed) != 0) {
    now = tfo__shim_now_ms();
    (void)race_one(fd, st, &now);
  }
  if (atomic_load_explicit(&st->restarted, memory_order_relaxed) &&
      atomic_load(&st->first) != NULL)
    return tfo__fd_resend_first(fd, st);
  return 0;
}

enum tfo__settle tfo__settle_restarted(int fd, struct tfo__fd *st) {
  struct tfo__tcpinfo ti;
  int saved = errno;

  const struct sockaddr *sa = (const struct sockaddr *)&st->addr;
  int reset = atomic_load(&st->restarted) == TFO__RESTART_RESET;

  if (tfo__tcpinfo_get(fd, &ti) != 0 || ti.state == TCP_CLOSE) {
    /* The plain connection failed too: the program hears. Refused after a
     * reset: the port is closed, not seen accepting. */
    if (reset && ti.segs_in > 0)
      (void)tfo__cache_forget(sa, st->addrlen);
    errno = saved;
    return TFO__SETTLED;
  }
  if (ti.state == TCP_SYN_SENT ||
      (tfo__fd_resend_first(fd, st) != 0 && errno == EAGAIN)) {
    errno = saved;
    return TFO__PENDING;
  }
  if (reset) { /* a plain connection answered where a data SYN was reset */
    if (tfo__cache_record(sa, st->addrlen, TFO__EV_RESET, 0) != 0)
      tfo__log(TFO__LOG_DEBUG, "cache not updated: %s", tfo__strerror(errno));
    tfo__shim_count(TFO_OUTCOME_FALLBACK);
  } else {
    tfo__shim_count(tfo__judge_restarted(&ti, sa, st->addrlen, st->race_ms));
  }
  errno = saved;
  return TFO__SETTLED;
}

void tfo__wait_start(struct tfo__wait *w, int timeout_ms) {
  w->end = timeout_ms < 0 ? -1 : tfo__shim_now_ms() + timeout_ms;
  w->timeout = timeout_ms;
}

int tfo__wait_next(struct tfo__wait *w, int *own) {
  int64_t left;
  int due;

  {
    /* The shim's work between waits; the waits themselves are the
     * program's (a signal handler that runs in one gets the shim). */
    TFO__NEST();
    due = tfo__race_due();
  }

  *own = 1;
  if (w->end < 0) {
    left = -1;
  } else {
    left = w->end - tfo__shim_now_ms();
    if (left < 0)
      left = 0;
  }
  if (due < 0 || (left >= 0 && left <= due))
    return (int)left;
  *own = 0;
  return due;
}
