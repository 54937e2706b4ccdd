/* Recovering from a path that resets SYNs carrying data (rstdata).
 *
 * The kernel alone fails such a connection; a program without the shim
 * would have made a plain one that works. So the shim connects again,
 * plainly, in place of the same fd, and the program never notices: a
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
#include "sockopt.h"
#include "log.h"
#include "shim.h"
#include "tcpinfo.h"

/* Bounds the plain connect and the resend: the program is inside one of
 * its calls meanwhile. A server that does not answer within this is as
 * gone as the refused one was. */
#define REPLACE_TIMEOUT_MS 3000

static int wait_for(int s, short events) {
  struct pollfd p = {s, events, 0};
  int rc = tfo__libc()->poll(&p, 1, REPLACE_TIMEOUT_MS);

  if (rc == 0)
    errno = ETIMEDOUT;
  return rc > 0 ? 0 : -1;
}

int tfo__fd_replace_plain(int fd, struct tfo__fd *st, const void *resend,
                          size_t len) {
  const struct tfo__libc *libc = tfo__libc();
  int s, err = 0;
  socklen_t elen = sizeof(err);
  size_t off = 0;
  ssize_t n;

  s = socket(st->addr.sin6_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
             IPPROTO_TCP);
  if (s < 0)
    return -1;
  (void)tfo__sockopt_copy(fd, s, st->addr.sin6_family);
  if (libc->connect(s, (const struct sockaddr *)&st->addr, st->addrlen) != 0) {
    if (errno != EINPROGRESS || wait_for(s, POLLOUT) != 0)
      goto fail;
    if (getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 || err != 0) {
      errno = err != 0 ? err : errno;
      goto fail;
    }
  }
  while (off < len) {
    n = libc->send(s, (const char *)resend + off, len - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EAGAIN && wait_for(s, POLLOUT) == 0)
      continue;
    if (n < 0)
      goto fail;
    off += (size_t)n;
  }
  if (tfo__fd_take_place(fd, s) != 0)
    return -1;
  tfo__cache_record((const struct sockaddr *)&st->addr, st->addrlen,
                    TFO__EV_RESET, 0);
  tfo__shim_count(TFO_OUTCOME_FALLBACK);
  tfo__log(TFO__LOG_INFO,
           "fd %d: SYN with data was reset; connected again plainly", fd);
  tfo__fd_forget_conn(fd);
  return 0;
fail:
  err = errno;
  libc->close(s);
  errno = err;
  return -1;
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

  if (n == 0 || n > TFO__SHIM_KEEP_MAX || (copy = malloc(n)) == NULL)
    return;
  for (i = 0; i < cnt && off < n; i++) {
    k = iov[i].iov_len < n - off ? iov[i].iov_len : n - off;
    memcpy(copy + off, iov[i].iov_base, k);
    off += k;
  }
  st->first_len = n;
  free(swap_first(st, copy));
}

void tfo__fd_drop_first(struct tfo__fd *st) {
  free(swap_first(st, NULL));
}

int tfo__fd_recover(int fd, int err) {
  struct tfo__fd *st = tfo__fd_peek(fd);
  struct tfo__tcpinfo ti;
  char *first;
  int saved = errno;

  if (err != ECONNREFUSED && err != ECONNRESET && err != EPIPE)
    return 0;
  if (st == NULL || atomic_load(&st->kind) != FD_SENT ||
      atomic_load(&st->first) == NULL || atomic_load(&st->epolled))
    return 0;
  /* Only a connection the server never answered: reset in SYN_SENT, no
   * RTT sample. A reset after data flowed is the program's business. */
  if (tfo__tcpinfo_get(fd, &ti) != 0 || ti.state != TCP_CLOSE ||
      ti.rtt_us != 0)
    return 0;
  first = swap_first(st, NULL);
  if (first == NULL) /* another thread is at it */
    return 0;
  if (tfo__fd_replace_plain(fd, st, first, st->first_len) != 0) {
    /* Refused plainly too: the port is closed; the program hears so. */
    free(first);
    errno = saved;
    return 0;
  }
  free(first);
  errno = saved;
  return 1;
}
