/* The write family: the first bytes on a deferred socket go out in the SYN.
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <netinet/tcp.h> /* TCP_SYN_SENT, TCP_CLOSE */
#include <poll.h>
#include <string.h>
#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cache.h"
#include "connect.h"
#include "log.h"
#include "shim.h"
#include "tcpinfo.h"

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
  /* Inside the program's own call on fd, which the table says holds a
   * SYN. socket(), accept() and the like reset their number's entry; a
   * number reused out of our sight (open, pipe) after a close out of our
   * sight is no TCP socket: the write itself tells (first_write_blocking
   * hears ENOTSOCK, settled_now finds no tcp_info). */
  return st;
}

static int blocking(int fd, const struct tfo__fd *st, int flags) {
  return !(flags & MSG_DONTWAIT) && tfo__fd_nonblocking(fd, st) == 0;
}

/* The handshake of fd's first write already ended (loopback, or a
 * program slower than one RTT): judged now, in one look, and the entry
 * goes (1); 0 when still under way (then the keeper judges it); -1 when
 * fd is no TCP socket: the entry was stale. */
static int settled_now(int fd, struct tfo__fd *st) {
  struct tfo__tcpinfo ti;
  int saved = errno;

  if (tfo__tcpinfo_get(fd, &ti) != 0) {
    errno = saved;
    return -1;
  }
  /* Only a verdict that changes nothing: recording anything else takes
   * the cache file's lock, which a non-blocking program's write must not
   * wait for (the keeper does it). */
  if (ti.state == TCP_SYN_SENT ||
      ti.state == TCP_CLOSE || !(ti.options & TFO__TCPI_OPT_SYN_DATA) ||
      !tfo__cache_still_good((const struct sockaddr *)&st->addr, st->addrlen,
                             ti.rtt_us)) {
    errno = saved;
    return 0;
  }
  (void)tfo__settle_known(fd, &ti, &st->addr, st->addrlen, st->cookie_sent,
                          st->syn_bytes, 0);
  errno = saved;
  return 1;
}

/* A blocking program's first write on a held socket. The SYN leaves with
 * the data at once (a non-blocking send), then libtfo's connect machine
 * (lib/connect.c, the same one as tfo_connect_send) waits for the
 * answer: it races a plain connection after the fallback delay when the
 * path swallows the SYN, retries plainly at once when it is reset, judges
 * the outcome and feeds the negative cache. The program's socket is kept
 * when TFO wins; when the plain one wins it takes the program's
 * descriptor number. Returns what a blocking write returns: every byte,
 * or -1. */
static ssize_t first_write_blocking(int fd, struct tfo__fd *st,
                                    const struct iovec *iov, int cnt,
                                    int flags) {
  const struct tfo__libc *libc = tfo__libc();
  struct msghdr msg;
  struct tfo_watch w;
  struct tfo_result res;
  struct tfo__conn_storage mem; /* no malloc: a signal handler may write */
  tfo_conn *c;
  ssize_t n;
  size_t total = 0;
  int e, i, rc;

  for (i = 0; i < cnt; i++)
    total += iov[i].iov_len;
  memset(&msg, 0, sizeof(msg));
  msg.msg_iov = (struct iovec *)iov;
  msg.msg_iovlen = (size_t)cnt;
  /* MSG_DONTWAIT, not O_NONBLOCK: the file flags are shared with the
   * program's other threads (and processes), and a blocking read that one
   * makes during the handshake must not fail with EAGAIN. The kernel's
   * Fast Open send honours it like O_NONBLOCK. */
  n = libc->sendmsg(fd, &msg, flags | MSG_NOSIGNAL | MSG_DONTWAIT);
  if (n < 0) {
    e = errno;
    /* Not the socket the table holds a SYN for: its number was closed and
     * reused out of our sight. The program's write is its own. */
    if (e == ENOTSOCK)
      return -2;
    if ((e == ECONNREFUSED || e == ECONNRESET) &&
        tfo__fd_reconnect(fd, st, NULL, 0) == 0)
      return libc->sendmsg(fd, &msg, flags);
    /* The SYN already left without our data: another process sharing the
     * socket released it (a fork child's read, or its exec), which our
     * copy of the table could not know. The handshake is under way; a
     * blocking write waits for it, as it would without the shim. */
    if (e == EAGAIN || e == EWOULDBLOCK)
      return libc->sendmsg(fd, &msg, flags);
    errno = e;
    return -1;
  }
  c = tfo__conn_adopt(fd, 1, (size_t)n, (const struct sockaddr *)&st->addr,
                      st->addrlen, iov, cnt, &w, &mem);
  if (c == NULL) /* no memory: the kernel alone, as without the shim */
    return n;
  rc = tfo__shim_drive(fd, c, &w, -1, &res);
  if (rc == -2) /* SO_SNDTIMEO: a timed-out write returns what it queued */
    return n > 0 ? n : -1;
  if (rc < 0) {
    /* Refused, TFO and plain alike: the port stopped accepting, so the
     * next connect there is not held back and hears it at connect. */
    if (errno == ECONNREFUSED) {
      e = errno;
      (void)tfo__cache_forget((const struct sockaddr *)&st->addr,
                              st->addrlen);
      errno = e;
    }
    return -1;
  }
  if (rc == 0)
    tfo__shim_count(res.outcome);
  return (ssize_t)total;
}

/* Ends a first write's claim: FD_RELEASING becomes kind. Only if the
 * entry is still ours: had another thread closed the fd meanwhile, the
 * entry was cleared, and may already be a new connection's on the same
 * number, which must keep its state. */
static void settle(int fd, struct tfo__fd *st, int kind) {
  int expect = FD_RELEASING;

  if (!atomic_compare_exchange_strong(&st->kind, &expect, kind))
    return;
  if (kind == FD_NONE)
    tfo__fd_clear(fd);
  else
    tfo__keeper_watch(fd, st); /* judged when the server answers */
}

/* Runs the first write and settles the fd's state. A blocking one goes
 * through first_write_blocking (judged there, so forgotten here); a
 * non-blocking one is judged by the keeper, and learns of a reset later,
 * so its first bytes are kept for tfo__fd_recover. */
#define FIRST_WRITE(fd, st, flags, iov, cnt, op)                               \
  do {                                                                         \
    ssize_t r_;                                                                \
    int e_, s_, saved = errno;                                                 \
    if (tfo__fd_syn_left(fd, st)) { /* another copy's SYN, judged there */    \
      tfo__keeper_unhold(st, 1);                                               \
      settle(fd, st, FD_NONE);                                                 \
      errno = saved;                                                           \
      return (op);                                                             \
    }                                                                          \
    if (blocking(fd, st, flags)) {                                             \
      tfo__keeper_unhold(st, 1); /* the machine owns the socket */             \
      r_ = first_write_blocking(fd, st, iov, cnt, flags);                      \
      e_ = errno;                                                              \
      settle(fd, st, FD_NONE);                                                 \
      if (r_ == -2) { /* a stale entry */                                      \
        errno = saved;                                                         \
        return (op);                                                           \
      }                                                                        \
      errno = r_ < 0 ? e_ : saved;                                             \
      return r_;                                                               \
    }                                                                          \
    r_ = (op);                                                                 \
    e_ = errno;                                                                \
    st->syn_bytes = r_ > 0 ? (size_t)r_ : 0;                                   \
    s_ = r_ >= 0 || e_ == ENOTSOCK ? settled_now(fd, st) : 0;                  \
    if (s_ != 0) {                                                             \
      /* Stale: not this socket's anchor to settle; unlinked by the clear,  \
       * it sends its own SYN. */                                            \
      if (s_ > 0)                                                              \
        tfo__keeper_unhold(st, 1);                                             \
      settle(fd, st, FD_NONE);                                                 \
      errno = e_;                                                              \
      return r_;                                                               \
    }                                                                          \
    tfo__keeper_unhold(st, 0);                                                 \
    tfo__fd_pin(fd, st); /* the keeper's from here */                         \
    if (r_ > 0)                                                                \
      tfo__fd_keep_first(st, iov, cnt, (size_t)r_);                            \
    if (r_ >= 0 || e_ == EAGAIN || e_ == EINPROGRESS)                          \
      tfo__fd_arm_race_nb(fd, st); /* the SYN left */                         \
    settle(fd, st, FD_SENT);                                                   \
    errno = e_;                                                                \
    return r_;                                                                 \
  } while (0)

/* A later write that fails because the data SYN was reset unanswered is
 * made again on the plain connection that replaces it. */
#define LATER_WRITE(fd, op)                                                    \
  do {                                                                         \
    ssize_t r_;                                                                \
    if (tfo__fd_before_io(fd) != 0) /* first bytes not resent yet */          \
      return -1;                                                               \
    r_ = (op);                                                                 \
    if (r_ < 0 && tfo__fd_recover(fd, errno))                                  \
      r_ = (op);                                                               \
    return r_;                                                                 \
  } while (0)

static ssize_t __attribute__((noinline))
write_slow(int fd, const void *buf, size_t n) {
  if (tfo__nested)
    return tfo__libc()->write(fd, buf, n);
  TFO__NEST();
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
  if (tfo__nested)
    return tfo__libc()->writev(fd, iov, cnt);
  TFO__NEST();
  struct tfo__fd *st = claim(fd);

  if (st == NULL)
    LATER_WRITE(fd, tfo__libc()->writev(fd, iov, cnt));
  FIRST_WRITE(fd, st, 0, iov, cnt, tfo__libc()->writev(fd, iov, cnt));
}

static ssize_t __attribute__((noinline))
send_slow(int fd, const void *buf, size_t n, int flags) {
  if (tfo__nested)
    return tfo__libc()->send(fd, buf, n, flags);
  TFO__NEST();
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
  if (tfo__nested)
    return tfo__libc()->sendto(fd, buf, n, flags, sa, len);
  TFO__NEST();
  struct tfo__fd *st = claim(fd);

  if (st == NULL)
    LATER_WRITE(fd, tfo__libc()->sendto(fd, buf, n, flags, sa, len));
  {
    struct iovec one = {(void *)buf, n};

    FIRST_WRITE(fd, st, flags, &one, 1,
                tfo__libc()->sendto(fd, buf, n, flags, sa, len));
  }
}

/* Sockets passed to another process (SCM_RIGHTS) must not hold their SYN:
 * the receiver may have no shim (vsftpd's privileged parent connects
 * active-mode data sockets and hands them to its child). */
static void release_passed(const struct msghdr *msg) {
  struct cmsghdr *cm;
  struct tfo__fd *st;
  const int *fds;
  size_t i, n;

  for (cm = CMSG_FIRSTHDR((struct msghdr *)msg); cm != NULL;
       cm = CMSG_NXTHDR((struct msghdr *)msg, cm)) {
    if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS ||
        cm->cmsg_len < CMSG_LEN(0))
      continue;
    fds = (const int *)CMSG_DATA(cm);
    n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (i = 0; i < n; i++)
      if ((st = tfo__fd_peek(fds[i])) != NULL &&
          atomic_load(&st->kind) == FD_DEFERRED)
        tfo__fd_release(fds[i], st);
  }
}

static ssize_t __attribute__((noinline))
sendmsg_slow(int fd, const struct msghdr *msg, int flags) {
  if (tfo__nested)
    return tfo__libc()->sendmsg(fd, msg, flags);
  TFO__NEST();
  struct tfo__fd *st;

  if (msg != NULL && msg->msg_control != NULL &&
      atomic_load(&tfo__deferred_count) != 0)
    release_passed(msg);
  st = claim(fd);

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

/* Descriptors passed to another process share their file flags with it:
 * what the table knew of them may change out of our sight. */
static void __attribute__((noinline)) passed(const struct msghdr *msg) {
  struct cmsghdr *cm;
  const int *fds;
  size_t i, n;
  int saved = errno;

  for (cm = CMSG_FIRSTHDR((struct msghdr *)msg); cm != NULL;
       cm = CMSG_NXTHDR((struct msghdr *)msg, cm)) {
    if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS ||
        cm->cmsg_len < CMSG_LEN(0))
      continue;
    fds = (const int *)(const void *)CMSG_DATA(cm);
    n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (i = 0; i < n; i++)
      tfo__fd_unlearn(fds[i]);
  }
  errno = saved;
}

TFO_SHIM_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags) {
  ssize_t r = tfo__shim_idle() ? tfo__libc()->sendmsg(fd, msg, flags)
                               : sendmsg_slow(fd, msg, flags);

  if (r >= 0 && msg != NULL && msg->msg_controllen > 0)
    passed(msg);
  return r;
}

/* sendfile and splice do not take the kernel's Fast Open path: release
 * the SYN first (cookie, no data), then let them run as usual. */
TFO_SHIM_EXPORT ssize_t sendfile(int out, int in, off_t *off, size_t n) {
  struct tfo__fd *st = tfo__fd_peek(out);

  if (!tfo__nested && st != NULL && atomic_load(&st->kind) == FD_DEFERRED)
    tfo__fd_release(out, st);
  return tfo__libc()->sendfile(out, in, off, n);
}

TFO_SHIM_EXPORT ssize_t sendfile64(int out, int in, off_t *off, size_t n)
    __attribute__((alias("sendfile")));

TFO_SHIM_EXPORT ssize_t splice(int in, loff_t *off_in, int out, loff_t *off_out,
                               size_t n, unsigned flags) {
  struct tfo__fd *st;

  if (tfo__nested)
    return tfo__libc()->splice(in, off_in, out, off_out, n, flags);
  if ((st = tfo__fd_peek(out)) != NULL && atomic_load(&st->kind) == FD_DEFERRED)
    tfo__fd_release(out, st);
  if ((st = tfo__fd_peek(in)) != NULL && atomic_load(&st->kind) == FD_DEFERRED)
    tfo__fd_release(in, st);
  return tfo__libc()->splice(in, off_in, out, off_out, n, flags);
}
