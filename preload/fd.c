/* The fd lifecycle: close, close_range, the dup family, fcntl(F_DUPFD) and
 * shutdown keep the per-fd table true to the kernel's fd table.
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cache.h"
#include "shim.h"
#include "tcpinfo.h"

/* fd is about to be closed (or replaced). A socket whose SYN the shim
 * holds or delayed goes to the keeper, so that the server sees what it
 * would have seen without the shim: the connection, then its close (the
 * SYN is not released here: another copy of the socket, a dup or a forked
 * child's, may still write its first bytes into it). Any other connection
 * is judged if its handshake ended; one the program gives up on in the
 * handshake says nothing about TFO. */
static void closing(int fd) {
  struct tfo__fd *st = tfo__fd_peek(fd);
  int saved, kind, hs, gone;

  if (st == NULL)
    return;
  if (atomic_load_explicit(&st->know, memory_order_relaxed))
    atomic_store_explicit(&st->know, 0, memory_order_relaxed);
  if ((kind = atomic_load(&st->kind)) == FD_NONE)
    return;
  saved = errno;
  /* Held by our table, yet gone: a write the program's signal handler
   * made while its thread was inside the shim went straight to libc
   * (tfo__nested), or one through stdio, and the kernel sent the SYN with
   * it. Judged as sent. (Inside the program's own close: fd is the
   * socket, unless it is no TCP socket at all, a stale entry.) */
  if (kind == FD_DEFERRED && st->sock == 0) {
    hs = tfo__fd_held_state(fd);
    gone = hs == 0;
  } else {
    hs = tfo__fd_same(fd, st) ? 1 : -1;
    gone = hs > 0 && kind == FD_DEFERRED && tfo__fd_syn_gone(fd);
  }
  /* A stale entry; or a SYN another copy of the socket (a dup's, a forked
   * child's) sent: that copy judges it (one verdict a connection). */
  if (hs < 0 || (gone && tfo__fd_maybe_shared(st))) {
    tfo__fd_clear(fd);
    errno = saved;
    return;
  }
  if (gone && tfo__fd_claim(st)) {
    tfo__fd_pin(fd, st);
    tfo__keeper_unhold(st, 1);
    st->syn_bytes = 0;
    atomic_store(&st->kind, FD_SENT);
    kind = FD_SENT;
  }
  if (kind == FD_DEFERRED) {
    (void)tfo__keeper_adopt(fd, st, 1);
  } else {
    switch (tfo__fd_judge(fd, st)) {
      case TFO__PENDING:
        if (st->deferred_at != 0)
          (void)tfo__keeper_adopt(fd, st, 0);
        break;
      case TFO__MENDING: /* given up after the reset: not seen accepting */
        (void)tfo__cache_forget((const struct sockaddr *)&st->addr,
                                st->addrlen);
        break;
      case TFO__SETTLED:
        break;
    }
  }
  tfo__fd_clear(fd);
  errno = saved;
}

TFO_SHIM_EXPORT int close(int fd) {
  if (tfo__nested) { /* a stale entry is known by its SO_COOKIE later */
    tfo__fd_unlearn(fd);
    return tfo__libc()->close(fd);
  }
  TFO__NEST();
  closing(fd);
  return tfo__libc()->close(fd);
}

TFO_SHIM_EXPORT int close_range(unsigned first, unsigned last, int flags) {
  unsigned fd;

  if (tfo__nested)
    return tfo__libc()->close_range(first, last, flags);
  TFO__NEST();
  /* CLOSE_RANGE_CLOEXEC only marks the fds; they stay open until exec. */
  if (!(flags & CLOSE_RANGE_CLOEXEC))
    for (fd = first; fd <= last && fd < TFO__FD_MAX; fd++)
      closing((int)fd);
  return tfo__libc()->close_range(first, last, flags);
}

/* A copy shares the original's file flags, which either may now change:
 * neither keeps what was known of them. A held SYN is copied (state)
 * unless this is a signal handler's call inside the shim. */
static void copied(int fd, int nfd, int state) {
  int saved = errno;

  tfo__fd_unlearn(fd);
  tfo__fd_unlearn(nfd);
  if (state)
    tfo__fd_copy(fd, nfd);
  errno = saved;
}

TFO_SHIM_EXPORT int dup(int fd) {
  int nfd = tfo__libc()->dup(fd);

  if (nfd >= 0)
    copied(fd, nfd, !tfo__nested);
  return nfd;
}

static int dup_onto(int fd, int nfd, int rc, int state) {
  if (rc >= 0 && fd != nfd)
    copied(fd, nfd, state);
  return rc;
}

TFO_SHIM_EXPORT int dup2(int fd, int nfd) {
  if (tfo__nested)
    return dup_onto(fd, nfd, tfo__libc()->dup2(fd, nfd), 0);
  TFO__NEST();
  /* nfd's old socket, if ours, is closed by this call. */
  if (fd != nfd && fcntl(fd, F_GETFD) >= 0)
    closing(nfd);
  return dup_onto(fd, nfd, tfo__libc()->dup2(fd, nfd), 1);
}

TFO_SHIM_EXPORT int dup3(int fd, int nfd, int flags) {
  if (tfo__nested)
    return dup_onto(fd, nfd, tfo__libc()->dup3(fd, nfd, flags), 0);
  TFO__NEST();
  if (fd != nfd && fcntl(fd, F_GETFD) >= 0)
    closing(nfd);
  return dup_onto(fd, nfd, tfo__libc()->dup3(fd, nfd, flags), 1);
}

/* fcntl's third argument is an int or a pointer depending on cmd; passing
 * it on as a pointer-sized value is what every interposer does and what the
 * ABI allows. */
static int do_fcntl(int fd, int cmd, void *arg) {
  int saved, rc = tfo__libc()->fcntl(fd, cmd, arg);

  if (rc >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)) {
    copied(fd, rc, !tfo__nested);
  } else if (rc == 0 && cmd == F_SETFL) {
    saved = errno;
    tfo__fd_learn(fd, TFO__KNOW_NONBLOCK, ((long)arg & O_NONBLOCK) != 0);
    errno = saved;
  }
  return rc;
}

TFO_SHIM_EXPORT int fcntl(int fd, int cmd, ...) {
  va_list ap;
  void *arg;

  va_start(ap, cmd);
  arg = va_arg(ap, void *);
  va_end(ap);
  return do_fcntl(fd, cmd, arg);
}

/* glibc 2.28+ builds with _FILE_OFFSET_BITS=64 call fcntl64: the same. */
TFO_SHIM_EXPORT int fcntl64(int fd, int cmd, ...) __attribute__((alias("fcntl")));

TFO_SHIM_EXPORT int shutdown(int fd, int how) {
  struct tfo__fd *st = tfo__fd_peek(fd);

  /* The SYN must leave before a FIN can. */
  if (!tfo__nested && st != NULL && atomic_load(&st->kind) == FD_DEFERRED)
    tfo__fd_release(fd, st);
  return tfo__libc()->shutdown(fd, how);
}
