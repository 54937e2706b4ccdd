/* The shim's per-fd state: a table indexed by fd, in lazily allocated
 * chunks, read without locks.
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
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
    c = tfo__pages_alloc(TFO__FD_CHUNK_SIZE * sizeof(*c));
    if (c == NULL)
      return NULL;
    /* Two threads may race to install a chunk: one wins, the other frees. */
    if (!atomic_compare_exchange_strong(
            &tfo__fd_chunks[fd >> TFO__FD_CHUNK_BITS], &expect, c)) {
      tfo__pages_free(c, TFO__FD_CHUNK_SIZE * sizeof(*c));
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

void tfo__fd_clear(int fd) {
  struct tfo__fd *st = tfo__fd_peek(fd);

  if (st == NULL)
    return;
  tfo__fd_disarm_race(st);
  tfo__fd_drop_first(st);
  atomic_store(&st->restarted, 0);
  tfo__keeper_forget(st);
  if (atomic_load(&st->kind) != FD_NONE) {
    atomic_fetch_add(&st->gen, 1);
    set_kind(st, FD_NONE);
  }
}

uint64_t tfo__sock_cookie(int fd) {
  uint64_t c = 0;
  socklen_t len = sizeof(c);
  int saved = errno;

  if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &c, &len) != 0)
    c = 0;
  errno = saved;
  return c;
}

void tfo__fd_pin(int fd, struct tfo__fd *st) {
  if (st->sock == 0)
    st->sock = tfo__sock_cookie(fd);
}

int tfo__fd_held_state(int fd) {
  struct tfo__tcpinfo ti;
  int saved = errno, r;

  if (tfo__tcpinfo_get(fd, &ti) != 0)
    r = -1;
  else
    r = ti.state == TCP_SYN_SENT && ti.segs_out == 0;
  errno = saved;
  return r;
}

int tfo__fd_same(int fd, const struct tfo__fd *st) {
  uint64_t c;

  if (st->sock != 0) {
    c = tfo__sock_cookie(fd);
    return c != 0 && c == st->sock;
  }
  /* Never handed to the keeper, so only ever a held SYN: nothing else
   * anyone could have put on the number looks like one. */
  return tfo__fd_held_state(fd) == 1;
}

int tfo__fd_lost(int fd, const struct tfo__fd *st) {
  /* Only this process's only copy: a dup or a forked child's may live. */
  return st->sock == 0 && !tfo__fd_maybe_shared(st) &&
         tfo__fd_held_state(fd) < 0;
}

/* --- knowledge (shim.h) --------------------------------------------------- */

static unsigned fork_stamp(void) {
  return atomic_load_explicit(&tfo__fork_gen, memory_order_relaxed)
         << TFO__KNOW_SHIFT;
}

unsigned tfo__fd_known(const struct tfo__fd *st) {
  unsigned k = atomic_load_explicit(&st->know, memory_order_relaxed);

  /* Taken before a fork: the child, or the parent, may have changed the
   * shared file flags since. */
  if (!(k & TFO__KNOW_VALID) ||
      (k & ~((1u << TFO__KNOW_SHIFT) - 1)) != fork_stamp())
    return 0;
  return k & ((1u << TFO__KNOW_SHIFT) - 1);
}

void tfo__fd_fresh(int fd, unsigned know) {
  struct tfo__fd *st = know != 0 ? tfo__fd_get(fd) : tfo__fd_peek(fd);

  if (st == NULL)
    return;
  /* Something the program made or closed on this number before got past
   * us: it closes sockets with a raw system call (libuv does). */
  if (atomic_load_explicit(&st->know, memory_order_relaxed) != 0 ||
      atomic_load_explicit(&st->kind, memory_order_relaxed) != FD_NONE) {
    atomic_store(&tfo__raw_closer, 1);
    tfo__fd_clear(fd);
  }
  atomic_store_explicit(&st->know, know != 0 ? know | fork_stamp() : 0,
                        memory_order_relaxed);
}

void tfo__fd_unlearn(int fd) {
  struct tfo__fd *st = tfo__fd_peek(fd);

  if (st != NULL && atomic_load_explicit(&st->know, memory_order_relaxed))
    atomic_store_explicit(&st->know, 0, memory_order_relaxed);
}

void tfo__fd_learn(int fd, unsigned bit, int on) {
  struct tfo__fd *st = tfo__fd_peek(fd);
  unsigned k;

  if (st == NULL)
    return;
  /* A CAS: a copy made meanwhile (unlearned) must stay unlearned. */
  k = atomic_load(&st->know);
  do {
    if (tfo__fd_known(st) == 0 || k == 0)
      return;
  } while (!atomic_compare_exchange_weak(&st->know, &k,
                                         on ? k | bit : k & ~bit));
}

int tfo__fd_nonblocking(int fd, const struct tfo__fd *st) {
  unsigned k = st != NULL ? tfo__fd_known(st) : 0;
  int saved = errno, fl;

  if (k != 0)
    return (k & TFO__KNOW_NONBLOCK) != 0;
  fl = tfo__libc()->fcntl(fd, F_GETFL);
  errno = saved;
  return fl < 0 ? -1 : (fl & O_NONBLOCK) != 0;
}

void tfo__fd_copy(int from, int to) {
  struct tfo__fd *src = tfo__fd_peek(from), *dst;
  int kind = src != NULL ? atomic_load(&src->kind) : FD_NONE;

  tfo__fd_clear(to);
  /* Only a held SYN matters to a copy: a write or read through it must
   * release it. Judging stays with the original (one verdict a socket). */
  if (kind != FD_DEFERRED || (dst = tfo__fd_get(to)) == NULL)
    return;
  /* Copies are told apart from other sockets by SO_COOKIE (guard_copies):
   * taken now, inside the program's own call on `from`. */
  tfo__fd_pin(from, src);
  dst->sock = src->sock;
  dst->cookie_sent = src->cookie_sent;
  dst->syn_bytes = 0;
  dst->addrlen = src->addrlen;
  memcpy(&dst->addr, &src->addr, sizeof(dst->addr));
  dst->deferred_at = src->deferred_at;
  dst->tid = src->tid;
  dst->shared = src->shared = 1;
  dst->fork_gen = src->fork_gen;
  set_kind(dst, FD_DEFERRED);
}

int tfo__fd_syn_gone(int fd) {
  struct tfo__tcpinfo ti;
  int saved = errno, gone = tfo__tcpinfo_get(fd, &ti) == 0 && ti.segs_out > 0;

  errno = saved;
  return gone;
}

int tfo__fd_syn_left(int fd, struct tfo__fd *st) {
  return tfo__fd_maybe_shared(st) && tfo__fd_syn_gone(fd);
}

int tfo__fd_claim(struct tfo__fd *st) {
  int expect = FD_DEFERRED;

  if (!atomic_compare_exchange_strong(&st->kind, &expect, FD_RELEASING))
    return 0;
  atomic_fetch_sub(&tfo__deferred_count, 1);
  return 1;
}

void tfo__fd_release(int fd, struct tfo__fd *st) {
  struct sockaddr_in6 addr;
  socklen_t addrlen;
  uint32_t gen;
  int saved = errno, same, lost;

  if (!tfo__fd_claim(st))
    return;
  /* What the entry says now: a socket() on the number (tfo__fd_fresh)
   * may reset it under us, and a connect then rewrite it. */
  gen = atomic_load(&st->gen);
  addr = st->addr;
  addrlen = st->addrlen;
  /* Off the program's own call on fd (the keeper's timer, a close, a
   * dup's twin), the number may have been closed behind our back and
   * reused: then the entry is stale, and nothing is sent; if the socket
   * is simply gone, the server still sees a connection. */
  same = tfo__fd_same(fd, st);
  lost = !same && tfo__fd_lost(fd, st);
  if (atomic_load(&st->gen) != gen) { /* a new socket took the number */
    errno = saved;
    return;
  }
  if (!same) {
    if (lost)
      tfo__keeper_surrogate(&addr, addrlen);
    tfo__fd_clear(fd);
    errno = saved;
    return;
  }
  /* Another copy of the socket sent it already, and judges it. */
  if (tfo__fd_syn_left(fd, st)) {
    tfo__keeper_unhold(st, 1);
    tfo__fd_clear(fd);
    errno = saved;
    return;
  }
  /* A zero-length send releases the SYN with the cookie and no data; the
   * server accepts at once and anything it says first comes back. */
  if (tfo__libc()->send(fd, "", 0, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
    tfo__log(TFO__LOG_DEBUG, "fd %d: releasing the SYN: %s", fd,
             tfo__strerror(errno));
  else
    tfo__log(TFO__LOG_DEBUG, "fd %d: SYN released before any write", fd);
  st->syn_bytes = 0;
  tfo__keeper_unhold(st, 0);
  tfo__fd_arm_race_nb(fd, st);
  /* Unless a close cleared the entry meanwhile. */
  if (atomic_compare_exchange_strong(&st->kind, &(int){FD_RELEASING},
                                     FD_SENT))
    tfo__keeper_watch(fd, st);
  errno = saved;
}

/* Visits every fd that holds its SYN (racing 0) or is armed for the race
 * (racing 1); the scan runs only while there is one, which lasts from a
 * connect to its first write, or from a SYN to its answer. */
static int each(int racing, int (*fn)(int fd, struct tfo__fd *st, void *arg),
                void *arg) {
  size_t i, j;
  struct tfo__fd *c;
  int left = -1, r;

  if (atomic_load(racing ? &tfo__racing_count : &tfo__deferred_count) == 0)
    return -1;
  for (i = 0; i < TFO__FD_MAX / TFO__FD_CHUNK_SIZE; i++) {
    c = atomic_load_explicit(&tfo__fd_chunks[i], memory_order_acquire);
    if (c == NULL)
      continue;
    for (j = 0; j < TFO__FD_CHUNK_SIZE; j++) {
      if (racing ? atomic_load(&c[j].race_at) == 0
                 : atomic_load(&c[j].kind) != FD_DEFERRED)
        continue;
      r = fn((int)(i * TFO__FD_CHUNK_SIZE + j), &c[j], arg);
      if (r >= 0 && (left < 0 || r < left))
        left = r;
    }
  }
  return left;
}

int tfo__fd_each_deferred(int (*fn)(int fd, struct tfo__fd *st, void *arg),
                          void *arg) {
  return each(0, fn, arg);
}

int tfo__fd_each_racing(int (*fn)(int fd, struct tfo__fd *st, void *arg),
                        void *arg) {
  return each(1, fn, arg);
}

static int release_one(int fd, struct tfo__fd *st, void *arg) {
  (void)arg;
  tfo__fd_release(fd, st);
  return -1;
}

void tfo__fd_release_all(void) {
  tfo__fd_each_deferred(release_one, NULL);
}

/* 1 when thread tid of this process is running or runnable (state R), or
 * in an uninterruptible wait (D: a page brought in from disk): busy, or
 * held up by a loaded machine, not blocked waiting for something. */
static int running(pid_t tid) {
  char path[64], buf[256], *p;
  ssize_t n;
  int fd;

  snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  n = tfo__libc()->read(fd, buf, sizeof(buf) - 1);
  tfo__libc()->close(fd);
  if (n <= 0)
    return 0;
  buf[n] = '\0';
  p = strrchr(buf, ')'); /* the name may hold anything */
  return p != NULL && p[1] == ' ' && (p[2] == 'R' || p[2] == 'D');
}

static int expire_one(int fd, struct tfo__fd *st, void *arg) {
  int64_t now = *(const int64_t *)arg, held = now - st->deferred_at;

  if (held < TFO__SHIM_GRACE_MS)
    return (int)(TFO__SHIM_GRACE_MS - held);
  /* The grace is for a program on its way to its first write: one still
   * running (or waiting for a CPU) keeps its SYN a while longer. One that
   * blocks, on anything, is waiting for something the SYN must bring. */
  if (held < TFO__SHIM_GRACE_MAX_MS && st->tid > 0 && running(st->tid))
    return TFO__SHIM_GRACE_MS / 5;
  tfo__fd_release(fd, st);
  return -1;
}

int tfo__fd_expire(int64_t now) {
  return tfo__fd_each_deferred(expire_one, &now);
}

int64_t tfo__shim_now_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

enum tfo__settle tfo__settle(int fd, const struct sockaddr_in6 *addr,
                             socklen_t addrlen, int cookie_sent,
                             size_t syn_bytes, int kept) {
  struct tfo__tcpinfo ti;
  int saved = errno;

  if (tfo__tcpinfo_get(fd, &ti) != 0) {
    errno = saved;
    return TFO__SETTLED;
  }
  return tfo__settle_known(fd, &ti, addr, addrlen, cookie_sent, syn_bytes,
                           kept);
}

enum tfo__settle tfo__settle_known(int fd, const struct tfo__tcpinfo *known,
                                   const struct sockaddr_in6 *addr,
                                   socklen_t addrlen, int cookie_sent,
                                   size_t syn_bytes, int kept) {
  const struct sockaddr *sa = (const struct sockaddr *)addr;
  struct tfo__tcpinfo ti = *known;
  enum tfo_outcome out;
  int saved = errno;

  if (ti.state == TCP_SYN_SENT) {
    errno = saved;
    return TFO__PENDING;
  }
  if (ti.state == TCP_CLOSE && ti.rtt_us == 0) {
    /* Reset before any SYN-ACK. With data in the SYN it may be a path that
     * resets TFO: recover.c tells, by connecting plainly, when it kept the
     * data. Otherwise the port refused: no longer seen accepting, so the
     * next connect there is not held back and hears the refusal itself.
     * Only a refusal: a SYN that found no route, or timed out, got nothing
     * back and says nothing about the port. */
    if (cookie_sent && syn_bytes > 0 && kept) {
      errno = saved;
      return TFO__MENDING;
    }
    if (ti.segs_in > 0)
      (void)tfo__cache_forget(sa, addrlen);
    errno = saved;
    return TFO__SETTLED;
  }
  out = tfo__judge(fd, &ti, sa, addrlen, cookie_sent, syn_bytes, 1, NULL);
  tfo__shim_count(out);
  tfo__log(TFO__LOG_DEBUG, "fd %d: %s", fd, tfo_outcome_str(out));
  errno = saved;
  return TFO__SETTLED;
}

enum tfo__settle tfo__fd_judge(int fd, struct tfo__fd *st) {
  struct tfo__tcpinfo ti;
  enum tfo__settle r;
  int expect = FD_SENT, saved = errno;

  /* A data SYN reset unanswered, its bytes kept, is recover.c's, which the
   * program's own read or write may be running right now: left alone. */
  if (atomic_load(&st->first) != NULL && !atomic_load(&st->restarted) &&
      tfo__tcpinfo_get(fd, &ti) == 0 && ti.state == TCP_CLOSE &&
      ti.rtt_us == 0) {
    errno = saved;
    return TFO__MENDING;
  }
  errno = saved;
  /* One judge a connection: the keeper and a close may meet here. */
  if (!atomic_compare_exchange_strong(&st->kind, &expect, FD_RELEASING))
    return TFO__SETTLED;
  if (!tfo__fd_same(fd, st)) {
    /* Closed out of our sight (libuv's raw close): judged through the
     * keeper's copy of the socket, when it kept one. */
    if (!atomic_load(&st->restarted))
      tfo__keeper_settle_kept(st);
    tfo__fd_clear(fd);
    return TFO__SETTLED;
  }
  if (atomic_load(&st->restarted))
    r = tfo__settle_restarted(fd, st);
  else
    r = tfo__settle(fd, &st->addr, st->addrlen, st->cookie_sent,
                    st->syn_bytes, atomic_load(&st->first) != NULL);
  if (r == TFO__SETTLED) {
    tfo__fd_clear(fd);
  } else {
    expect = FD_RELEASING;
    atomic_compare_exchange_strong(&st->kind, &expect, FD_SENT);
  }
  return r;
}
