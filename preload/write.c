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

/* A blocking first write whose SYN was refused or reset: the path (or a
 * middlebox) rejects SYNs with data. Connect again plainly, in place of
 * the same fd, so the program never notices; 0 or -1 with the plain
 * connect's errno (a port that is really closed). Non-blocking sockets
 * learn it later, from the cache (see tfo__fd_judge). */
static int reconnect_plain(int fd, struct tfo__fd *st) {
  const struct tfo__libc *libc = tfo__libc();
  int s, fdflags, err;

  s = socket(st->addr.sin6_family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
  if (s < 0)
    return -1;
  if (libc->connect(s, (const struct sockaddr *)&st->addr, st->addrlen) != 0) {
    err = errno;
    libc->close(s);
    errno = err;
    return -1;
  }
  fdflags = libc->fcntl(fd, F_GETFD);
  if (libc->dup3(s, fd, fdflags >= 0 && (fdflags & FD_CLOEXEC) ? O_CLOEXEC
                                                              : 0) < 0) {
    err = errno;
    libc->close(s);
    errno = err;
    return -1;
  }
  libc->close(s);
  tfo__cache_record((const struct sockaddr *)&st->addr, st->addrlen,
                    TFO__EV_RESET, 0);
  atomic_fetch_add(&tfo__stats.fallbacks, 1);
  tfo__log(TFO__LOG_INFO, "fd %d: SYN with data refused, reconnected plainly",
           fd);
  return 0;
}

static int blocking(int fd, int flags) {
  int fl = tfo__libc()->fcntl(fd, F_GETFL);

  return !(flags & MSG_DONTWAIT) && fl >= 0 && !(fl & O_NONBLOCK);
}

/* Runs the first write (op) and settles the fd's state. */
#define FIRST_WRITE(fd, st, flags, op)                                         \
  do {                                                                         \
    ssize_t r_ = (op);                                                         \
    int e_ = errno;                                                            \
    if (r_ < 0 && (e_ == ECONNREFUSED || e_ == ECONNRESET) &&                  \
        blocking(fd, flags)) {                                                 \
      if (reconnect_plain(fd, st) == 0) {                                      \
        tfo__fd_clear(fd);                                                     \
        errno = saved;                                                         \
        return (op);                                                           \
      }                                                                        \
      e_ = errno;                                                              \
    }                                                                          \
    st->syn_bytes = r_ > 0 ? (size_t)r_ : 0;                                   \
    atomic_store(&st->kind, FD_SENT);                                          \
    errno = e_;                                                                \
    return r_;                                                                 \
  } while (0)

TFO_SHIM_EXPORT ssize_t write(int fd, const void *buf, size_t n) {
  const struct tfo__libc *libc = tfo__libc();
  struct tfo__fd *st = claim(fd);
  int saved = errno;

  if (st == NULL)
    return libc->write(fd, buf, n);
  FIRST_WRITE(fd, st, 0, libc->write(fd, buf, n));
}

TFO_SHIM_EXPORT ssize_t writev(int fd, const struct iovec *iov, int cnt) {
  const struct tfo__libc *libc = tfo__libc();
  struct tfo__fd *st = claim(fd);
  int saved = errno;

  if (st == NULL)
    return libc->writev(fd, iov, cnt);
  FIRST_WRITE(fd, st, 0, libc->writev(fd, iov, cnt));
}

TFO_SHIM_EXPORT ssize_t send(int fd, const void *buf, size_t n, int flags) {
  const struct tfo__libc *libc = tfo__libc();
  struct tfo__fd *st = claim(fd);
  int saved = errno;

  if (st == NULL)
    return libc->send(fd, buf, n, flags);
  FIRST_WRITE(fd, st, flags, libc->send(fd, buf, n, flags));
}

TFO_SHIM_EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags,
                               const struct sockaddr *sa, socklen_t len) {
  const struct tfo__libc *libc = tfo__libc();
  struct tfo__fd *st = claim(fd);
  int saved = errno;

  if (st == NULL)
    return libc->sendto(fd, buf, n, flags, sa, len);
  FIRST_WRITE(fd, st, flags, libc->sendto(fd, buf, n, flags, sa, len));
}

TFO_SHIM_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags) {
  const struct tfo__libc *libc = tfo__libc();
  struct tfo__fd *st = claim(fd);
  int saved = errno;

  if (st == NULL)
    return libc->sendmsg(fd, msg, flags);
  FIRST_WRITE(fd, st, flags, libc->sendmsg(fd, msg, flags));
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
