/* Recovering from a path that resets SYNs carrying data (rstdata).
 *
 * The kernel alone fails such a connection; a program without the shim
 * would have made a plain one that works. So the shim connects again,
 * plainly, on the same socket, and the program never notices: a
 * blocking program at its first write, a non-blocking one when it next
 * reads or writes (the first bytes it wrote are kept for that until the
 * server answers). The destination then goes to the negative cache, and
 * later connections do not try TFO at all.
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h> /* TCP_CLOSE */
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cache.h"
#include "connect.h"
#include "sockopt.h"
#include "log.h"
#include "shim.h"
#include "tcpinfo.h"

/* Bounds the plain handshake and the resend: the program is inside one
 * of its calls meanwhile. A server that does not answer within this is as
 * gone as the refused one was. */
#define RECONNECT_TIMEOUT_MS 3000

static int wait_for(int fd, short events) {
  struct pollfd p = {fd, events, 0};
  int rc;

  while ((rc = tfo__libc()->poll(&p, 1, RECONNECT_TIMEOUT_MS)) < 0 &&
         errno == EINTR)
    ;
  if (rc == 0)
    errno = ETIMEDOUT;
  return rc > 0 ? 0 : -1;
}

/* Connects fd, whose handshake failed, again and plainly. The failed
 * socket's first connect call reports the failure and resets it (tcp
 * disconnect); the next starts a new handshake. */
static int connect_again(int fd, const struct sockaddr *sa, socklen_t len) {
  const struct tfo__libc *libc = tfo__libc();
  int zero = 0, err = 0, i;
  socklen_t elen = sizeof(err);

  if (setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &zero,
                 sizeof(zero)) != 0)
    return -1;
  /* A pending error is the reset we already know of: consumed first, so
   * that the next call's answer is about the new attempt. */
  (void)getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
  for (i = 0; i < 2; i++) {
    if (libc->connect(fd, sa, len) == 0 || errno == EISCONN)
      return 0;
    if (errno == ECONNABORTED && i == 0)
      continue; /* the reset reported: now connect anew */
    if (errno != EINPROGRESS && errno != EALREADY)
      return -1;
    if (wait_for(fd, POLLOUT) != 0)
      return -1;
    err = 0;
    elen = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
      return -1;
    errno = err;
    return err == 0 ? 0 : -1;
  }
  errno = ECONNABORTED;
  return -1;
}

int tfo__fd_reconnect(int fd, struct tfo__fd *st, const void *resend,
                      size_t len) {
  const struct sockaddr *sa = (const struct sockaddr *)&st->addr;
  size_t off = 0;
  ssize_t n;
  int err;

  if (connect_again(fd, sa, st->addrlen) != 0) {
    err = errno;
    /* Refused plainly too: the port is closed, not seen accepting. */
    if (err == ECONNREFUSED)
      (void)tfo__cache_forget(sa, st->addrlen);
    errno = err;
    return -1;
  }
  while (off < len) {
    n = tfo__libc()->send(fd, (const char *)resend + off, len - off,
                          MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR) &&
        wait_for(fd, POLLOUT) == 0)
      continue;
    if (n < 0)
      return -1;
    off += (size_t)n;
  }
  tfo__cache_record(sa, st->addrlen, TFO__EV_RESET, 0);
  tfo__shim_count(TFO_OUTCOME_FALLBACK);
  tfo__log(TFO__LOG_INFO,
           "fd %d: SYN with data was reset; connected again plainly", fd);
  tfo__fd_clear(fd);
  return 0;
}

_Atomic int tfo__kept_count;

/* Swaps st's kept buffer, keeping tfo__kept_count true; returns the old. */
static char *swap_first(struct tfo__fd *st, char *buf) {
  char *old = atomic_exchange(&st->first, buf);

  if (old == NULL && buf != NULL)
    atomic_fetch_add(&tfo__kept_count, 1);
  else if (old != NULL && buf == NULL)
    atomic_fetch_sub(&tfo__kept_count, 1);
  return old;
}

void tfo__fd_keep_first(struct tfo__fd *st, const struct iovec *iov, int cnt,
                        size_t n) {
  char *copy;
  size_t off = 0, k;
  int i;

  if (n == 0 || (copy = tfo__kept_alloc(n)) == NULL)
    return;
  for (i = 0; i < cnt && off < n; i++) {
    k = iov[i].iov_len < n - off ? iov[i].iov_len : n - off;
    memcpy(copy + off, iov[i].iov_base, k);
    off += k;
  }
  st->first_len = n;
  tfo__kept_free(swap_first(st, copy));
}

void tfo__fd_drop_first(struct tfo__fd *st) {
  tfo__kept_free(swap_first(st, NULL));
}


/* A non-blocking caller must not wait a round trip inside its read or
 * write: the plain handshake starts in place, the call says EAGAIN, and
 * the keeper resends the kept bytes and records the reset once the server
 * answers (tfo__settle_restarted), as after the race's restart. kind is
 * FD_RELEASING (ours); 1 when mending began. */
static int mend_in_background(int fd, struct tfo__fd *st, int saved) {
  tfo__fd_disarm_race(st); /* the SYN was answered: by a reset */
  if (tfo__conn_restart_plain(fd, (const struct sockaddr *)&st->addr,
                              st->addrlen) != 0) {
    tfo__fd_clear(fd); /* the program hears its error */
    errno = saved;
    return 0;
  }
  atomic_store(&st->restarted, TFO__RESTART_RESET);
  tfo__log(TFO__LOG_INFO,
           "fd %d: SYN with data was reset; connecting again plainly", fd);
  if (atomic_compare_exchange_strong(&st->kind, &(int){FD_RELEASING},
                                     FD_SENT))
    tfo__keeper_watch(fd, st);
  errno = saved;
  return 1;
}

int tfo__fd_recover(int fd, int err) {
  struct tfo__fd *st = tfo__fd_peek(fd);
  struct tfo__tcpinfo ti;
  char *first;
  int saved = errno;

  if (err != ECONNREFUSED && err != ECONNRESET && err != EPIPE)
    return 0;
  if (st == NULL || atomic_load(&st->kind) != FD_SENT ||
      atomic_load(&st->first) == NULL || !tfo__fd_same(fd, st))
    return 0;
  if (atomic_load(&st->restarted)) {
    /* Its plain connection in place failed too: once is enough. */
    (void)tfo__fd_judge(fd, st);
    errno = saved;
    return 0;
  }
  /* Only a connection the server never answered: reset in SYN_SENT, no
   * RTT sample. A reset after data flowed is the program's business. */
  if (tfo__tcpinfo_get(fd, &ti) != 0 || ti.state != TCP_CLOSE ||
      ti.rtt_us != 0)
    return 0;
  /* Ours while mending, as a judge claims it: the keeper, woken by the
   * reset or by the new handshake's end, must not judge the plain
   * connection as the TFO one (it counted a mended connection twice). */
  if (!atomic_compare_exchange_strong(&st->kind, &(int){FD_SENT},
                                      FD_RELEASING))
    return 0;
  if (atomic_load(&st->first) != NULL && tfo__fd_nonblocking(fd, st) == 1)
    return mend_in_background(fd, st, saved);
  first = swap_first(st, NULL);
  if (first == NULL) { /* another thread is at it */
    atomic_compare_exchange_strong(&st->kind, &(int){FD_RELEASING}, FD_SENT);
    return 0;
  }
  if (tfo__fd_reconnect(fd, st, first, st->first_len) != 0) {
    /* Refused plainly too: the port is closed; the program hears so. */
    tfo__kept_free(first);
    tfo__fd_clear(fd);
    errno = saved;
    return 0;
  }
  tfo__kept_free(first);
  errno = saved;
  return 1;
}

int tfo__fd_resend_first(int fd, struct tfo__fd *st) {
  struct tfo__tcpinfo ti;
  char *first;
  size_t off = 0, len;
  ssize_t n;
  int64_t end;
  int e;

  if (!atomic_compare_exchange_strong(&st->resending, &(int){0}, 1)) {
    /* Another thread sends them: a later write must wait for it. */
    end = tfo__shim_now_ms() + RECONNECT_TIMEOUT_MS;
    while (atomic_load(&st->resending) && tfo__shim_now_ms() < end)
      (void)tfo__libc()->poll(NULL, 0, 1);
    return 0;
  }
  first = atomic_load(&st->first);
  len = st->first_len;
  if (first == NULL) {
    atomic_store(&st->resending, 0);
    return 0;
  }
  if (tfo__tcpinfo_get(fd, &ti) == 0 && ti.state == TCP_SYN_SENT) {
    atomic_store(&st->resending, 0);
    errno = EAGAIN;
    return -1;
  }
  while (off < len) {
    n = tfo__libc()->send(fd, first + off, len - off,
                          MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR) &&
        wait_for(fd, POLLOUT) == 0)
      continue;
    if (n < 0)
      break;
    off += (size_t)n;
  }
  e = errno;
  tfo__kept_free(swap_first(st, NULL));
  atomic_store(&st->resending, 0);
  errno = e;
  return off < len ? -1 : 0;
}
