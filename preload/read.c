/* The read family: reading before writing must not hang.
 *
 * With a cookie cached, the kernel holds the SYN until the first write; a
 * program that waits for the server to speak first (SMTP, FTP, SSH) would
 * wait forever. So the first read releases the SYN. Only while some socket
 * holds its SYN does a read cost more than a load.
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "shim.h"

static int poll_one(void *arg, int ms) {
  struct pollfd p = {*(int *)arg, POLLIN, 0};

  return tfo__libc()->poll(&p, 1, ms);
}

/* A read that would block on another fd while some socket holds its SYN
 * (a blocking FTP client reads the control connection while the server
 * waits for the data connection) waits like poll does: the held SYN is
 * released when its grace ends. */
static void wait_elsewhere(int fd, int flags) {
  struct pollfd p = {fd, POLLIN, 0};
  int fl, saved = errno;

  if (!(flags & MSG_DONTWAIT) && (fl = tfo__libc()->fcntl(fd, F_GETFL)) >= 0 &&
      !(fl & O_NONBLOCK) && tfo__libc()->poll(&p, 1, 0) == 0)
    tfo__wait_releasing(poll_one, &fd, -1);
  errno = saved;
}

static void before_read_flags(int fd, int flags) {
  struct tfo__fd *st;

  if (atomic_load_explicit(&tfo__deferred_count, memory_order_relaxed) == 0)
    return;
  st = tfo__fd_peek(fd);
  if (st != NULL && atomic_load(&st->kind) == FD_DEFERRED)
    tfo__fd_release(fd, st);
  else
    wait_elsewhere(fd, flags);
}

static void before_read(int fd) {
  before_read_flags(fd, 0);
}

/* Runs a read (op): data means the server answered, so the first bytes
 * kept for a resend can go; a failure because the data SYN was reset
 * unanswered is mended (recover.c) and the read made again. */
#define READ(fd, op)                                                           \
  do {                                                                         \
    ssize_t r_ = (op);                                                         \
    struct tfo__fd *st_;                                                       \
    if (r_ > 0) {                                                              \
      if (atomic_load_explicit(&tfo__kept_count, memory_order_relaxed) != 0 && \
          (st_ = tfo__fd_peek(fd)) != NULL &&                                  \
          atomic_load_explicit(&st_->first, memory_order_relaxed) != NULL)     \
        tfo__fd_drop_first(st_);                                               \
    } else if (r_ < 0 && tfo__fd_recover(fd, errno)) {                         \
      r_ = (op);                                                               \
    }                                                                          \
    return r_;                                                                 \
  } while (0)

static ssize_t __attribute__((noinline))
read_slow(int fd, void *buf, size_t n) {
  before_read(fd);
  READ(fd, tfo__libc()->read(fd, buf, n));
}

static ssize_t __attribute__((noinline))
readv_slow(int fd, const struct iovec *iov, int cnt) {
  before_read(fd);
  READ(fd, tfo__libc()->readv(fd, iov, cnt));
}

static ssize_t __attribute__((noinline))
recv_slow(int fd, void *buf, size_t n, int flags) {
  before_read_flags(fd, flags);
  READ(fd, tfo__libc()->recv(fd, buf, n, flags));
}

static ssize_t __attribute__((noinline))
recvfrom_slow(int fd, void *buf, size_t n, int flags, struct sockaddr *sa,
              socklen_t *len) {
  before_read_flags(fd, flags);
  READ(fd, tfo__libc()->recvfrom(fd, buf, n, flags, sa, len));
}

static ssize_t __attribute__((noinline))
recvmsg_slow(int fd, struct msghdr *msg, int flags) {
  before_read_flags(fd, flags);
  READ(fd, tfo__libc()->recvmsg(fd, msg, flags));
}

/* The exported calls: straight to libc unless the shim has work pending
 * (tfo__shim_idle); the rest is out of line, off the hot path. */
TFO_SHIM_EXPORT ssize_t read(int fd, void *buf, size_t n) {
  if (tfo__shim_idle())
    return tfo__libc()->read(fd, buf, n);
  return read_slow(fd, buf, n);
}

TFO_SHIM_EXPORT ssize_t readv(int fd, const struct iovec *iov, int cnt) {
  if (tfo__shim_idle())
    return tfo__libc()->readv(fd, iov, cnt);
  return readv_slow(fd, iov, cnt);
}

TFO_SHIM_EXPORT ssize_t recv(int fd, void *buf, size_t n, int flags) {
  if (tfo__shim_idle())
    return tfo__libc()->recv(fd, buf, n, flags);
  return recv_slow(fd, buf, n, flags);
}

TFO_SHIM_EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int flags,
                                 struct sockaddr *sa, socklen_t *len) {
  if (tfo__shim_idle())
    return tfo__libc()->recvfrom(fd, buf, n, flags, sa, len);
  return recvfrom_slow(fd, buf, n, flags, sa, len);
}

TFO_SHIM_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags) {
  if (tfo__shim_idle())
    return tfo__libc()->recvmsg(fd, msg, flags);
  return recvmsg_slow(fd, msg, flags);
}

/* _FORTIFY_SOURCE builds call these instead; the buffer checks stay
 * libc's. */
TFO_SHIM_EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen) {
  before_read(fd);
  READ(fd, tfo__libc()->read_chk(fd, buf, n, buflen));
}

TFO_SHIM_EXPORT ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen,
                                   int flags) {
  before_read_flags(fd, flags);
  READ(fd, tfo__libc()->recv_chk(fd, buf, n, buflen, flags));
}

TFO_SHIM_EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t n,
                                       size_t buflen, int flags,
                                       struct sockaddr *sa, socklen_t *len) {
  before_read_flags(fd, flags);
  READ(fd, tfo__libc()->recvfrom_chk(fd, buf, n, buflen, flags, sa, len));
}
