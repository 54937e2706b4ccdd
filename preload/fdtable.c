/* The shim's per-fd state: a table indexed by fd, in lazily allocated
 * chunks, read without locks.
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <netinet/tcp.h> /* TCP_SYN_SENT, TCP_CLOSE */
#include <sys/socket.h>

#include "cache.h"
#include "connect.h"
#include "log.h"
#include "shim.h"
#include "tcpinfo.h"

struct tfo__fd *_Atomic tfo__fd_chunks[TFO__FD_MAX / TFO__FD_CHUNK_SIZE];

_Atomic int tfo__deferred_count;
struct tfo__shim_stats tfo__stats;

struct tfo__fd *tfo__fd_get(int fd) {
  struct tfo__fd *c, *expect = NULL;

  if ((unsigned)fd >= TFO__FD_MAX)
    return NULL;
  c = atomic_load_explicit(&tfo__fd_chunks[fd >> TFO__FD_CHUNK_BITS],
                           memory_order_acquire);
  if (c == NULL) {
    c = calloc(TFO__FD_CHUNK_SIZE, sizeof(*c));
    if (c == NULL)
      return NULL;
    /* Two threads may race to install a chunk: one wins, the other frees. */
    if (!atomic_compare_exchange_strong(
            &tfo__fd_chunks[fd >> TFO__FD_CHUNK_BITS], &expect, c)) {
      free(c);
      c = expect;
    }
  }
  return &c[fd & (TFO__FD_CHUNK_SIZE - 1)];
}

static void set_kind(struct tfo__fd *st, int kind) {
  int old = atomic_exchange(&st->kind, kind);

  if (old == FD_DEFERRED && kind != FD_DEFERRED)
    atomic_fetch_sub(&tfo__deferred_count, 1);
  else if (old != FD_DEFERRED && kind == FD_DEFERRED)
    atomic_fetch_add(&tfo__deferred_count, 1);
}

void tfo__fd_forget_conn(int fd) {
  struct tfo__fd *st = tfo__fd_peek(fd);

  if (st == NULL)
    return;
  tfo__fd_drop_first(st);
  if (atomic_load(&st->kind) != FD_NONE)
    set_kind(st, FD_NONE);
}

void tfo__fd_clear(int fd) {
  struct tfo__fd *st = tfo__fd_peek(fd);

  if (st == NULL)
    return;
  atomic_store(&st->epolled, 0);
  tfo__fd_forget_conn(fd);
}

void tfo__fd_copy(int from, int to) {
  struct tfo__fd *src = tfo__fd_peek(from), *dst;
  int kind = src != NULL ? atomic_load(&src->kind) : FD_NONE;

  if (kind == FD_NONE) {
    tfo__fd_clear(to);
    return;
  }
  dst = tfo__fd_get(to);
  if (dst == NULL)
    return;
  dst->cookie_sent = src->cookie_sent;
  dst->syn_bytes = src->syn_bytes;
  dst->addrlen = src->addrlen;
  memcpy(&dst->addr, &src->addr, sizeof(dst->addr));
  dst->deferred_at = src->deferred_at;
  /* The kept first bytes stay with the original fd only (one owner). */
  /* A copy that is mid-release is already sent for all it matters. */
  set_kind(dst, kind == FD_RELEASING ? FD_SENT : kind);
}

int tfo__fd_claim(struct tfo__fd *st) {
  int expect = FD_DEFERRED;

  if (!atomic_compare_exchange_strong(&st->kind, &expect, FD_RELEASING))
    return 0;
  atomic_fetch_sub(&tfo__deferred_count, 1);
  return 1;
}

void tfo__fd_release(int fd, struct tfo__fd *st) {
  int saved = errno;

  if (!tfo__fd_claim(st))
    return;
  /* A zero-length send releases the SYN with the cookie and no data; the
   * server accepts at once and anything it says first comes back. */
  if (tfo__libc()->send(fd, "", 0, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
    tfo__log(TFO__LOG_DEBUG, "fd %d: releasing the SYN: %s", fd,
             strerror(errno));
  else
    tfo__log(TFO__LOG_DEBUG, "fd %d: SYN released before any write", fd);
  st->syn_bytes = 0;
  atomic_store(&st->kind, FD_SENT);
  errno = saved;
}

/* Visits every deferred fd; the scan runs only while some fd is deferred,
 * which lasts from a connect to its first write. */
static int each_deferred(int (*fn)(int fd, struct tfo__fd *st, void *arg),
                         void *arg) {
  size_t i, j;
  struct tfo__fd *c;
  int left = -1, r;

  if (atomic_load(&tfo__deferred_count) == 0)
    return -1;
  for (i = 0; i < TFO__FD_MAX / TFO__FD_CHUNK_SIZE; i++) {
    c = atomic_load_explicit(&tfo__fd_chunks[i], memory_order_acquire);
    if (c == NULL)
      continue;
    for (j = 0; j < TFO__FD_CHUNK_SIZE; j++) {
      if (atomic_load(&c[j].kind) != FD_DEFERRED)
        continue;
      r = fn((int)(i * TFO__FD_CHUNK_SIZE + j), &c[j], arg);
      if (r >= 0 && (left < 0 || r < left))
        left = r;
    }
  }
  return left;
}

static int release_one(int fd, struct tfo__fd *st, void *arg) {
  (void)arg;
  tfo__fd_release(fd, st);
  return -1;
}

void tfo__fd_release_all(void) {
  each_deferred(release_one, NULL);
}

static int expire_one(int fd, struct tfo__fd *st, void *arg) {
  int64_t now = *(const int64_t *)arg;

  if (now - st->deferred_at >= TFO__SHIM_GRACE_MS) {
    tfo__fd_release(fd, st);
    return -1;
  }
  return (int)(st->deferred_at + TFO__SHIM_GRACE_MS - now);
}

int tfo__fd_expire(int64_t now) {
  return each_deferred(expire_one, &now);
}

int64_t tfo__shim_now_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void tfo__fd_judge(int fd, struct tfo__fd *st) {
  struct tfo__tcpinfo ti;
  enum tfo_outcome out;
  int saved = errno;

  if (atomic_load(&st->kind) != FD_SENT || tfo__tcpinfo_get(fd, &ti) != 0)
    goto out;
  /* Closed before the handshake ended: a program's own timeout says
   * nothing about TFO. */
  if (ti.state == TCP_SYN_SENT)
    goto out;
  if (ti.state == TCP_CLOSE && ti.rtt_us == 0) {
    /* Never answered by a SYN-ACK, yet closed: reset. Only a SYN that
     * carried data tells us the path resets TFO (a reset cookie request
     * is just a closed port). */
    if (st->cookie_sent && st->syn_bytes > 0)
      tfo__cache_record((const struct sockaddr *)&st->addr, st->addrlen,
                        TFO__EV_RESET, 0);
    goto out;
  }
  out = tfo__judge(fd, &ti, (const struct sockaddr *)&st->addr, st->addrlen,
                   st->cookie_sent, st->syn_bytes, 1, NULL);
  tfo__shim_count(out);
  tfo__log(TFO__LOG_DEBUG, "fd %d: %s", fd, tfo_outcome_str(out));
out:
  errno = saved;
}
