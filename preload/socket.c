/* The calls that make and set up sockets: what they say is remembered in
 * the fd table (shim.h, TFO__KNOW_*), so that connect asks the kernel
 * nothing it was already told. Each is the real call, then a few stores.
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "shim.h"

/* The knowledge a new socket starts with. */
static unsigned born(int domain, int type, int protocol) {
  unsigned k = TFO__KNOW_VALID;

  if ((domain == AF_INET || domain == AF_INET6) &&
      (type & 0xf) == SOCK_STREAM &&
      (protocol == 0 || protocol == IPPROTO_TCP))
    k |= TFO__KNOW_TCP;
  if (type & SOCK_NONBLOCK)
    k |= TFO__KNOW_NONBLOCK;
  return k;
}

TFO_SHIM_EXPORT int socket(int domain, int type, int protocol) {
  int fd = tfo__libc()->socket(domain, type, protocol), saved;

  /* The shim's own sockets (tfo__nested: the connect machine's plain
   * one) are not the program's, and are closed behind the table's back. */
  if (fd >= 0 && !tfo__nested) {
    saved = errno;
    tfo__fd_fresh(fd, born(domain, type, protocol));
    errno = saved;
  }
  return fd;
}

TFO_SHIM_EXPORT int socketpair(int domain, int type, int protocol,
                               int sv[2]) {
  int rc = tfo__libc()->socketpair(domain, type, protocol, sv), saved;

  if (rc == 0 && !tfo__nested) {
    saved = errno;
    tfo__fd_fresh(sv[0], born(domain, type, protocol));
    tfo__fd_fresh(sv[1], born(domain, type, protocol));
    errno = saved;
  }
  return rc;
}

/* An accepted socket is never connected, so nothing about it is kept; a
 * stale entry on its number must not be taken for it. */
static int accepted(int fd) {
  int saved;

  if (fd >= 0 && !tfo__nested) {
    saved = errno;
    tfo__fd_fresh(fd, 0);
    errno = saved;
  }
  return fd;
}

TFO_SHIM_EXPORT int accept(int fd, struct sockaddr *sa, socklen_t *len) {
  return accepted(tfo__libc()->accept(fd, sa, len));
}

TFO_SHIM_EXPORT int accept4(int fd, struct sockaddr *sa, socklen_t *len,
                            int flags) {
  return accepted(tfo__libc()->accept4(fd, sa, len, flags));
}

TFO_SHIM_EXPORT int setsockopt(int fd, int level, int name, const void *val,
                               socklen_t len) {
  int rc = tfo__libc()->setsockopt(fd, level, name, val, len), saved;

  /* A program that does TFO itself (curl --tcp-fastopen) is left alone. */
  if (rc == 0 && level == IPPROTO_TCP && name == TCP_FASTOPEN_CONNECT &&
      val != NULL && len >= (socklen_t)sizeof(int)) {
    saved = errno;
    tfo__fd_learn(fd, TFO__KNOW_OWN_TFO, *(const int *)val != 0);
    errno = saved;
  }
  return rc;
}

/* ioctl's third argument is a pointer for every request that has one; as
 * for fcntl, passing it on pointer-sized is what the ABI allows. */
TFO_SHIM_EXPORT int ioctl(int fd, unsigned long request, ...) {
  va_list ap;
  void *arg;
  int rc, saved;

  va_start(ap, request);
  arg = va_arg(ap, void *);
  va_end(ap);
  rc = tfo__libc()->ioctl(fd, request, arg);
  if (rc == 0 && request == FIONBIO && arg != NULL) {
    saved = errno;
    tfo__fd_learn(fd, TFO__KNOW_NONBLOCK, *(const int *)arg != 0);
    errno = saved;
  }
  return rc;
}

/* stdio on a socket writes and closes through libc's own calls, out of
 * the shim's sight: a held SYN leaves now (cookie, no data), and its
 * handshake is the keeper's, as for sendfile. */
TFO_SHIM_EXPORT FILE *fdopen(int fd, const char *mode) {
  struct tfo__fd *st;

  if (!tfo__nested && (st = tfo__fd_peek(fd)) != NULL &&
      atomic_load(&st->kind) == FD_DEFERRED)
    tfo__fd_release(fd, st);
  return tfo__libc()->fdopen(fd, mode);
}
