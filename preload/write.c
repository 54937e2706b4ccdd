/* The write family: the first bytes on a deferred socket go out in the SYN.
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cache.h"
#include "log.h"
#include "shim.h"

/* Claims fd's first write, or NULL when it is not a deferred socket (the
 * hot path: a bounds check and two loads). */
static struct tfo__fd *claim(int fd) {
  struct tfo__fd *st = tfo__fd_peek(fd);
  int expect = FD_DEFERRED;

  if (st == NULL ||
      atomic_load_explicit(&st->kind, memory_order_relaxed) != FD_DEFERRED)
    return NULL;
  if (!atomic_compare_exchange_strong(&st->kind, &expect, FD_RELEASING))
    return NULL;
  atomic_fetch_sub(&tfo__deferred_count, 1);
  return st;
}

static int blocking(int fd, int flags) {
  int fl = tfo__libc()->fcntl(fd, F_GETFL);

  return !(flags & MSG_DONTWAIT) && fl >= 0 && !(fl & O_NONBLOCK);
}

/* Runs the first write (op) and settles the fd's state. A blocking
 * program whose SYN with data is refused or reset gets a plain connection
 * in its place at once, and the write is made again on it (recover.c); a
 * non-blocking one learns of the reset later, so its first bytes are kept
 * for tfo__fd_recover. */
#define FIRST_WRITE(fd, st, flags, iov, cnt, op)                               \
  do {                                                                         \
    ssize_t r_ = (op);                                                         \
    int e_ = errno;                                                            \
    if (r_ < 0 && (e_ == ECONNREFUSED || e_ == ECONNRESET) &&                  \
        blocking(fd, flags)) {                                                 \
      if (tfo__fd_replace_plain(fd, st, NULL, 0) == 0) {                       \
        errno = saved;                                                         \
        return (op);                                                           \
      }                                                                        \
      e_ = errno;                                                              \
    }                                                                          \
    st->syn_bytes = r_ > 0 ? (size_t)r_ : 0;                                   \
    if (r_ > 0 && !blocking(fd, flags))                                        \
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

TFO_SHIM_EXPORT ssize_t write(int fd, const void *buf, size_t n) {
  const struct tfo__libc *libc = tfo__libc();
  struct tfo__fd *st = claim(fd);
  int saved = errno;

  struct iovec one = {(void *)buf, n};

  if (st == NULL)
    LATER_WRITE(fd, libc->write(fd, buf, n));
  FIRST_WRITE(fd, st, 0, &one, 1, libc->write(fd, buf, n));
}

TFO_SHIM_EXPORT ssize_t writev(int fd, const struct iovec *iov, int cnt) {
  const struct tfo__libc *libc = tfo__libc();
  struct tfo__fd *st = claim(fd);
  int saved = errno;

  if (st == NULL)
    LATER_WRITE(fd, libc->writev(fd, iov, cnt));
  FIRST_WRITE(fd, st, 0, iov, cnt, libc->writev(fd, iov, cnt));
}

TFO_SHIM_EXPORT ssize_t send(int fd, const void *buf, size_t n, int flags) {
  const struct tfo__libc *libc = tfo__libc();
  struct tfo__fd *st = claim(fd);
  int saved = errno;

  struct iovec one = {(void *)buf, n};

  if (st == NULL)
    LATER_WRITE(fd, libc->send(fd, buf, n, flags));
  FIRST_WRITE(fd, st, flags, &one, 1, libc->send(fd, buf, n, flags));
}

TFO_SHIM_EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags,
                               const struct sockaddr *sa, socklen_t len) {
  const struct tfo__libc *libc = tfo__libc();
  struct tfo__fd *st = claim(fd);
  int saved = errno;

  struct iovec one = {(void *)buf, n};

  if (st == NULL)
    LATER_WRITE(fd, libc->sendto(fd, buf, n, flags, sa, len));
  FIRST_WRITE(fd, st, flags, &one, 1,
              libc->sendto(fd, buf, n, flags, sa, len));
}

TFO_SHIM_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags) {
  const struct tfo__libc *libc = tfo__libc();
  struct tfo__fd *st = claim(fd);
  int saved = errno;

  if (st == NULL)
    LATER_WRITE(fd, libc->sendmsg(fd, msg, flags));
  FIRST_WRITE(fd, st, flags, msg->msg_iov, (int)msg->msg_iovlen,
              libc->sendmsg(fd, msg, flags));
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

TFO_SHIM_EXPORT ssize_t splice(int in, loff_t *off_in, int out,
                               loff_t *off_out, size_t n, unsigned flags) {
  struct tfo__fd *st;

  if ((st = tfo__fd_peek(out)) != NULL &&
      atomic_load(&st->kind) == FD_DEFERRED)
    tfo__fd_release(out, st);
  if ((st = tfo__fd_peek(in)) != NULL && atomic_load(&st->kind) == FD_DEFERRED)
    tfo__fd_release(in, st);
  return tfo__libc()->splice(in, off_in, out, off_out, n, flags);
}
