/* The read family: reading before writing must not hang.
 *
 * With a cookie cached, the kernel holds the SYN until the first write; a
 * program that waits for the server to speak first (SMTP, FTP, SSH) would
 * wait forever. So the first read releases the SYN.
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "shim.h"

static void before_read(int fd) {
  struct tfo__fd *st = tfo__fd_peek(fd);

  if (st != NULL &&
      atomic_load_explicit(&st->kind, memory_order_relaxed) == FD_DEFERRED)
    tfo__fd_release(fd, st);
}

TFO_SHIM_EXPORT ssize_t read(int fd, void *buf, size_t n) {
  before_read(fd);
  return tfo__libc()->read(fd, buf, n);
}

TFO_SHIM_EXPORT ssize_t readv(int fd, const struct iovec *iov, int cnt) {
  before_read(fd);
  return tfo__libc()->readv(fd, iov, cnt);
}

TFO_SHIM_EXPORT ssize_t recv(int fd, void *buf, size_t n, int flags) {
  before_read(fd);
  return tfo__libc()->recv(fd, buf, n, flags);
}

TFO_SHIM_EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int flags,
                                 struct sockaddr *sa, socklen_t *len) {
  before_read(fd);
  return tfo__libc()->recvfrom(fd, buf, n, flags, sa, len);
}

TFO_SHIM_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags) {
  before_read(fd);
  return tfo__libc()->recvmsg(fd, msg, flags);
}

/* _FORTIFY_SOURCE builds call these instead; the buffer checks stay
 * libc's. */
TFO_SHIM_EXPORT ssize_t __read_chk(int fd, void *buf, size_t n,
                                   size_t buflen) {
  before_read(fd);
  return tfo__libc()->read_chk(fd, buf, n, buflen);
}

TFO_SHIM_EXPORT ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen,
                                   int flags) {
  before_read(fd);
  return tfo__libc()->recv_chk(fd, buf, n, buflen, flags);
}

TFO_SHIM_EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t n,
                                       size_t buflen, int flags,
                                       struct sockaddr *sa, socklen_t *len) {
  before_read(fd);
  return tfo__libc()->recvfrom_chk(fd, buf, n, buflen, flags, sa, len);
}
