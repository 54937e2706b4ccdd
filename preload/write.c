/* The write family: the first bytes on a deferred socket go out in the SYN.
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "connect.h"
#include "log.h"
#include "shim.h"

/* Claims fd's first write, or NULL when it is not a deferred socket. */
static struct tfo__fd *claim(int fd) {
  struct tfo__fd *st;

  /* No socket holds a SYN: one load, nothing else. */
  if (atomic_load_explicit(&tfo__deferred_count, memory_order_relaxed) == 0)
    return NULL;
  st = tfo__fd_peek(fd);
  if (st == NULL ||
      atomic_load_explicit(&st->kind, memory_order_relaxed) != FD_DEFERRED ||
      !tfo__fd_claim(st))
    return NULL;
  return st;
}

static int blocking(int fd, int flags) {
  int fl = tfo__libc()->fcntl(fd, F_GETFL);

  return !(flags & MSG_DONTWAIT) && fl >= 0 && !(fl & O_NONBLOCK);
}

/* A blocking program's first write on a held socket. The SYN leaves with
 * the data at once (the socket made non-blocking for that send), then
 * libtfo's connect machine (lib/connect.c, the same one as
 * tfo_connect_send) waits for the answer: it races a plain connection
 * after the fallback delay when the path swallows the SYN, retries plainly
 * at once when it is reset, judges the outcome and feeds the negative
 * cache. The program's socket is kept when TFO wins; when the plain one
 * wins it takes the program's descriptor number. Returns what a blocking
 * write returns: every byte, or -1. */
static ssize_t first_write_blocking(int fd, struct tfo__fd *st,
                                    const struct iovec *iov, int cnt,
                                    int flags) {
  const struct tfo__libc *libc = tfo__libc();
  struct msghdr msg;
  struct tfo_watch w;
  struct pollfd pfd[2];
  struct tfo_result res;
  tfo_conn *c;
  ssize_t n;
  size_t total = 0;
  int fl, nfd, e, i;
  nfds_t np;

  for (i = 0; i < cnt; i++)
    total += iov[i].iov_len;
  memset(&msg, 0, sizeof(msg));
  msg.msg_iov = (struct iovec *)iov;
  msg.msg_iovlen = (size_t)cnt;
  fl = libc->fcntl(fd, F_GETFL);
  if (fl < 0 || libc->fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
    return libc->sendmsg(fd, &msg, flags);
  n = libc->sendmsg(fd, &msg, flags | MSG_NOSIGNAL);
  if (n < 0) {
    e = errno;
    libc->fcntl(fd, F_SETFL, fl);
    if ((e == ECONNREFUSED || e == ECONNRESET) &&
        tfo__fd_replace_plain(fd, st, NULL, 0) == 0)
      return libc->sendmsg(fd, &msg, flags);
    errno = e;
    return -1;
  }
  c = tfo__conn_adopt(fd, 1, (size_t)n, (const struct sockaddr *)&st->addr,
                      st->addrlen, iov, cnt, &w);
  if (c == NULL) { /* no memory: the kernel alone, as without the shim */
    libc->fcntl(fd, F_SETFL, fl);
    return n;
  }
  while (tfo_conn_step(c, &w) == 1) {
    for (i = 0, np = 0; i < 2; i++)
      if (w.fd[i] >= 0) {
        pfd[np].fd = w.fd[i];
        pfd[np].events = w.events[i];
        pfd[np].revents = 0;
        np++;
      }
    if (libc->poll(pfd, np, w.timeout_ms) < 0 && errno != EINTR) {
      e = errno;
      tfo_conn_abort(c);
      libc->fcntl(fd, F_SETFL, fl);
      errno = e;
      return -1;
    }
  }
  nfd = tfo_conn_finish(c, &res); /* blocking again, like the program's */
  if (nfd < 0) {
    e = errno;
    libc->fcntl(fd, F_SETFL, fl);
    errno = e;
    return -1;
  }
  if (nfd != fd) {
    e = libc->fcntl(fd, F_GETFD);
    if (libc->dup3(nfd, fd, e >= 0 && (e & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0) {
      e = errno;
      libc->close(nfd);
      errno = e;
      return -1;
    }
    libc->close(nfd);
    atomic_fetch_add(&tfo__stats.fallbacks, 1);
    tfo__log(TFO__LOG_INFO, "fd %d: %s: a plain connection took its place", fd,
             tfo_outcome_str(res.outcome));
  } else if (res.outcome == TFO_OUTCOME_DATA_ACKED) {
    atomic_fetch_add(&tfo__stats.data_acked, 1);
  } else {
    atomic_fetch_add(&tfo__stats.data_not_acked, 1);
  }
  libc->fcntl(fd, F_SETFL, fl);
  return (ssize_t)total;
}

/* Runs the first write and settles the fd's state. A blocking one goes
 * through first_write_blocking (judged there, so forgotten here); a
 * non-blocking one learns of a reset later, so its first bytes are kept
 * for tfo__fd_recover. */
#define FIRST_WRITE(fd, st, flags, iov, cnt, op)                               \
  do {                                                                         \
    ssize_t r_;                                                                \
    int e_, saved = errno;                                                     \
    if (blocking(fd, flags)) {                                                 \
      r_ = first_write_blocking(fd, st, iov, cnt, flags);                      \
      e_ = errno;                                                              \
      tfo__fd_forget_conn(fd);                                                 \
      errno = r_ < 0 ? e_ : saved;                                             \
      return r_;                                                               \
    }                                                                          \
    r_ = (op);                                                                 \
    e_ = errno;                                                                \
    st->syn_bytes = r_ > 0 ? (size_t)r_ : 0;                                   \
    if (r_ > 0)                                                                \
      tfo__fd_keep_first(st, iov, cnt, (size_t)r_);                            \
    atomic_store(&st->kind, FD_SENT);                                          \
    errno = e_;                                                                \
    return r_;                                                                 \
  } while (0)

/* A later write that fails because the data SYN was reset unanswered is
 * made again on the plain connection that replaces it. */
#define LATER_WRITE(fd, op)                                                    \
  do {                                                                         \
    ssize_t r_ = (op);                                                         \
    if (r_ < 0 && tfo__fd_recover(fd, errno))                                  \
      r_ = (op);                                                               \
    return r_;                                                                 \
  } while (0)

static ssize_t __attribute__((noinline))
write_slow(int fd, const void *buf, size_t n) {
  struct tfo__fd *st = claim(fd);

  if (st == NULL)
    LATER_WRITE(fd, tfo__libc()->write(fd, buf, n));
  {
    struct iovec one = {(void *)buf, n};

    FIRST_WRITE(fd, st, 0, &one, 1, tfo__libc()->write(fd, buf, n));
  }
}

static ssize_t __attribute__((noinline))
writev_slow(int fd, const struct iovec *iov, int cnt) {
  struct tfo__fd *st = claim(fd);

  if (st == NULL)
    LATER_WRITE(fd, tfo__libc()->writev(fd, iov, cnt));
  FIRST_WRITE(fd, st, 0, iov, cnt, tfo__libc()->writev(fd, iov, cnt));
}

static ssize_t __attribute__((noinline))
send_slow(int fd, const void *buf, size_t n, int flags) {
  struct tfo__fd *st = claim(fd);

  if (st == NULL)
    LATER_WRITE(fd, tfo__libc()->send(fd, buf, n, flags));
  {
    struct iovec one = {(void *)buf, n};

    FIRST_WRITE(fd, st, flags, &one, 1, tfo__libc()->send(fd, buf, n, flags));
  }
}

static ssize_t __attribute__((noinline))
sendto_slow(int fd, const void *buf, size_t n, int flags,
            const struct sockaddr *sa, socklen_t len) {
  struct tfo__fd *st = claim(fd);

  if (st == NULL)
    LATER_WRITE(fd, tfo__libc()->sendto(fd, buf, n, flags, sa, len));
  {
    struct iovec one = {(void *)buf, n};

    FIRST_WRITE(fd, st, flags, &one, 1,
                tfo__libc()->sendto(fd, buf, n, flags, sa, len));
  }
}

static ssize_t __attribute__((noinline))
sendmsg_slow(int fd, const struct msghdr *msg, int flags) {
  struct tfo__fd *st = claim(fd);

  if (st == NULL)
    LATER_WRITE(fd, tfo__libc()->sendmsg(fd, msg, flags));
  FIRST_WRITE(fd, st, flags, msg->msg_iov, (int)msg->msg_iovlen,
              tfo__libc()->sendmsg(fd, msg, flags));
}

/* The exported calls: straight to libc unless the shim has work pending
 * (tfo__shim_idle); the rest is out of line, off the hot path. */
TFO_SHIM_EXPORT ssize_t write(int fd, const void *buf, size_t n) {
  if (tfo__shim_idle())
    return tfo__libc()->write(fd, buf, n);
  return write_slow(fd, buf, n);
}

TFO_SHIM_EXPORT ssize_t writev(int fd, const struct iovec *iov, int cnt) {
  if (tfo__shim_idle())
    return tfo__libc()->writev(fd, iov, cnt);
  return writev_slow(fd, iov, cnt);
}

TFO_SHIM_EXPORT ssize_t send(int fd, const void *buf, size_t n, int flags) {
  if (tfo__shim_idle())
    return tfo__libc()->send(fd, buf, n, flags);
  return send_slow(fd, buf, n, flags);
}

TFO_SHIM_EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags,
                               const struct sockaddr *sa, socklen_t len) {
  if (tfo__shim_idle())
    return tfo__libc()->sendto(fd, buf, n, flags, sa, len);
  return sendto_slow(fd, buf, n, flags, sa, len);
}

TFO_SHIM_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags) {
  if (tfo__shim_idle())
    return tfo__libc()->sendmsg(fd, msg, flags);
  return sendmsg_slow(fd, msg, flags);
}

/* sendfile and splice do not take the kernel's Fast Open path: release
 * the SYN first (cookie, no data), then let them run as usual. */
TFO_SHIM_EXPORT ssize_t sendfile(int out, int in, off_t *off, size_t n) {
  struct tfo__fd *st = tfo__fd_peek(out);

  if (st != NULL && atomic_load(&st->kind) == FD_DEFERRED)
    tfo__fd_release(out, st);
  return tfo__libc()->sendfile(out, in, off, n);
}

TFO_SHIM_EXPORT ssize_t sendfile64(int out, int in, off_t *off, size_t n)
    __attribute__((alias("sendfile")));

TFO_SHIM_EXPORT ssize_t splice(int in, loff_t *off_in, int out, loff_t *off_out,
                               size_t n, unsigned flags) {
  struct tfo__fd *st;

  if ((st = tfo__fd_peek(out)) != NULL && atomic_load(&st->kind) == FD_DEFERRED)
    tfo__fd_release(out, st);
  if ((st = tfo__fd_peek(in)) != NULL && atomic_load(&st->kind) == FD_DEFERRED)
    tfo__fd_release(in, st);
  return tfo__libc()->splice(in, off_in, out, off_out, n, flags);
}
