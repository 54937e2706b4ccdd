/* The read family: reading before writing must not hang.
 *
 * With a cookie cached, the kernel holds the SYN until the first write; a
 * program that waits for the server to speak first (SMTP, FTP, SSH) would
 * wait for the keeper's grace to end. So the first read releases the SYN
 * at once. Only while some socket holds its SYN, or keeps its first bytes,
 * does a read cost more than two loads.
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "shim.h"

static void before_read(int fd) {
  struct tfo__fd *st;

  /* A due race, or first bytes to resend before the answer can come. */
  (void)tfo__fd_before_io(fd);
  if (atomic_load_explicit(&tfo__deferred_count, memory_order_relaxed) == 0)
    return;
  st = tfo__fd_peek(fd);
  if (st != NULL && atomic_load(&st->kind) == FD_DEFERRED)
    tfo__fd_release(fd, st);
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
  if (tfo__nested)
    return tfo__libc()->read(fd, buf, n);
  TFO__NEST();
  before_read(fd);
  READ(fd, tfo__libc()->read(fd, buf, n));
}

static ssize_t __attribute__((noinline))
readv_slow(int fd, const struct iovec *iov, int cnt) {
  if (tfo__nested)
    return tfo__libc()->readv(fd, iov, cnt);
  TFO__NEST();
  before_read(fd);
  READ(fd, tfo__libc()->readv(fd, iov, cnt));
}

static ssize_t __attribute__((noinline))
recv_slow(int fd, void *buf, size_t n, int flags) {
  if (tfo__nested)
    return tfo__libc()->recv(fd, buf, n, flags);
  TFO__NEST();
  before_read(fd);
  READ(fd, tfo__libc()->recv(fd, buf, n, flags));
}

static ssize_t __attribute__((noinline))
recvfrom_slow(int fd, void *buf, size_t n, int flags, struct sockaddr *sa,
              socklen_t *len) {
  if (tfo__nested)
    return tfo__libc()->recvfrom(fd, buf, n, flags, sa, len);
  TFO__NEST();
  before_read(fd);
  READ(fd, tfo__libc()->recvfrom(fd, buf, n, flags, sa, len));
}

static ssize_t __attribute__((noinline))
recvmsg_slow(int fd, struct msghdr *msg, int flags) {
  if (tfo__nested)
    return tfo__libc()->recvmsg(fd, msg, flags);
  TFO__NEST();
  before_read(fd);
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

/* Descriptors received (SCM_RIGHTS) are new numbers to the table. */
static void __attribute__((noinline)) received(const struct msghdr *msg) {
  struct cmsghdr *c;
  const int *fds;
  size_t i, n;
  int saved = errno;

  for (c = CMSG_FIRSTHDR(msg); c != NULL;
       c = CMSG_NXTHDR((struct msghdr *)msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
        c->cmsg_len < CMSG_LEN(0))
      continue;
    fds = (const int *)(const void *)CMSG_DATA(c);
    n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (i = 0; i < n; i++)
      tfo__fd_fresh(fds[i], 0);
  }
  errno = saved;
}

TFO_SHIM_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags) {
  ssize_t r = tfo__shim_idle() ? tfo__libc()->recvmsg(fd, msg, flags)
                               : recvmsg_slow(fd, msg, flags);

  if (r >= 0 && msg != NULL && msg->msg_controllen > 0)
    received(msg);
  return r;
}

/* _FORTIFY_SOURCE builds call these instead; the buffer checks stay
 * libc's. */
TFO_SHIM_EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen) {
  if (tfo__nested)
    return tfo__libc()->read_chk(fd, buf, n, buflen);
  TFO__NEST();
  before_read(fd);
  READ(fd, tfo__libc()->read_chk(fd, buf, n, buflen));
}

TFO_SHIM_EXPORT ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen,
                                   int flags) {
  if (tfo__nested)
    return tfo__libc()->recv_chk(fd, buf, n, buflen, flags);
  TFO__NEST();
  before_read(fd);
  READ(fd, tfo__libc()->recv_chk(fd, buf, n, buflen, flags));
}

TFO_SHIM_EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t n,
                                       size_t buflen, int flags,
                                       struct sockaddr *sa, socklen_t *len) {
  if (tfo__nested)
    return tfo__libc()->recvfrom_chk(fd, buf, n, buflen, flags, sa, len);
  TFO__NEST();
  before_read(fd);
  READ(fd, tfo__libc()->recvfrom_chk(fd, buf, n, buflen, flags, sa, len));
}
