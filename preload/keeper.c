/* The keeper: a thread of the shim's own, so that what the shim promises
 * does not depend on what the program does next.
 *
 * Acting only inside the program's own calls cannot keep the promises: a
 * program that connects and then sleeps, blocks in accept() on the other
 * end, waits on a futex, or closes the socket with a raw system call
 * (libuv does) gives the shim no call to act in. So one thread, started on
 * first need with every signal blocked (signals stay the program's):
 * - releases each held SYN when its grace ends (tfo__fd_expire);
 * - watches each connection whose SYN left, in an epoll set of its own
 *   (EPOLLOUT, one-shot: the handshake's end), and judges it then, feeding
 *   the negative cache whether or not the program ever closes it through
 *   us. An epoll set holds no reference to a socket, so the program's
 *   close is never delayed, and a socket closed behind our back simply
 *   leaves the set;
 * - finishes a connection the program closed while the shim held its SYN
 *   (an anchor: the shim's own duplicate of it): the SYN leaves when its
 *   grace ends, unless another copy of the socket (a dup, a forked child,
 *   a receiving process) wrote first, and the duplicate is closed when
 *   the handshake ends, so that the server sees the connection and then
 *   its orderly close, as without the shim.
 * The keeper's descriptors (the epoll set, an eventfd to wake it) exist
 * only while it has work, and a second after (programs and their tests
 * count their descriptors); they sit high in the fd space, out of the way
 * of the lowest free number a program expects, and are close-on-exec. A
 * forked child closes its copies and starts its own keeper on first need.
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <netinet/tcp.h> /* TCP_SYN_SENT */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include "log.h"
#include "shim.h"
#include "tcpinfo.h"

/* How long the shim keeps a connection's anchor after its SYN left: a
 * SYN-ACK later than this is not coming (the kernel's own first
 * retransmission is due at 1 s). */
#define ANCHOR_MS 3000
#define ANCHORS 1024

/* epoll data: a program fd and its entry's generation, an anchor, or the
 * wake-up eventfd. */
#define DATA_ANCHOR (UINT64_C(1) << 62)
#define DATA_WAKE (UINT64_C(1) << 63)

/* An anchor: the shim's own duplicate of a socket whose SYN it held, so
 * that the socket outlives a close the shim never sees (libuv and node
 * close with a raw system call) until its handshake ends. */
enum anchor_mode {
  A_HELD = 1, /* the SYN is held: released by the fd table while the
               * owner entry still stands for it, else at release_at */
  A_GUARD,    /* the SYN left through the program's fd, which judges it:
               * closed when the handshake ends */
  A_JUDGE,    /* the program closed its fd: judged and closed when the
               * handshake ends */
  A_KEEP      /* in a process that closes sockets out of our sight: keeps
               * the socket of a watched entry until that entry is judged
               * (dropped with it), so that a judge who finds the program's
               * fd gone still has the socket (tfo__keeper_settle_kept) */
};

struct anchor {
  _Atomic int fd1;  /* the duplicate + 1; 0: a free slot, -1: being filled */
  _Atomic int mode; /* enum anchor_mode */
  struct tfo__fd *owner; /* the entry that holds the SYN (A_HELD) */
  uint32_t owner_gen;    /* ... while its generation is this one */
  int64_t release_at;
  int64_t deadline;
  int cookie_sent;
  size_t syn_bytes;
  uint64_t sock; /* the socket's SO_COOKIE */
  socklen_t addrlen;
  struct sockaddr_in6 addr;
};

static struct anchor anchors[ANCHORS];
static _Atomic int anchor_count;

static void drop_kept(struct tfo__fd *st);
static int anchor(int fd, struct tfo__fd *st, int mode, int owner);

/* How long the keeper keeps its descriptors with nothing to do. */
#define LINGER_MS 1000

/* lock guards the descriptors' creation and closing, and the thread's
 * start; the keeper waits on idle_sem while it has no descriptors. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static sem_t idle_sem;
static int thread_state; /* 0 none, 1 running, -1 cannot run (steps aside) */
static int idle;         /* the keeper waits on idle_sem */
static _Atomic int epfd = -1;
static int evfd = -1;
/* Registrations not yet answered: while any, the descriptors stay. */
static _Atomic int watching;
/* When the keeper will next look (CLOCK_MONOTONIC ms), 0 while awake,
 * INT64_MAX while it waits for events only: a new deadline earlier than
 * this wakes it. */
static _Atomic int64_t wake_at;
/* When a SYN was last held. While that is recent the keeper looks at
 * least once a grace, so that holding one more costs no wake-up. */
static _Atomic int64_t last_hold;

/* A close-on-exec duplicate of fd out of the way of the program's
 * descriptors: programs count on getting the lowest free number, and some
 * compare fd counts. -1 with errno. */
static _Atomic long dup_floor; /* 0: not worked out yet */

static int dup_high(int fd) {
  struct rlimit rl;
  long floor = atomic_load_explicit(&dup_floor, memory_order_relaxed);
  int n;

  if (floor > 0 &&
      ((n = tfo__libc()->fcntl(fd, F_DUPFD_CLOEXEC, floor)) >= 0 ||
       errno != EINVAL))
    return n;
  /* First use, or the program lowered RLIMIT_NOFILE below it (EINVAL). */
  floor = 1024;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
      (long)(rl.rlim_cur / 2) < floor)
    floor = (long)(rl.rlim_cur / 2);
  atomic_store_explicit(&dup_floor, floor, memory_order_relaxed);
  return tfo__libc()->fcntl(fd, F_DUPFD_CLOEXEC, floor);
}

/* Moves a descriptor of ours there (kept where it is if it cannot). */
static int high(int fd) {
  int n;

  if (fd < 0 || (n = dup_high(fd)) < 0)
    return fd;
  tfo__libc()->close(fd);
  return n;
}

static void wake(int64_t deadline) {
  uint64_t one = 1;
  int64_t w = atomic_load(&wake_at);
  int saved = errno;

  if (w == 0 || w > deadline)
    (void)!tfo__libc()->write(evfd, &one, sizeof(one));
  errno = saved;
}

/* Frees a's slot and closes its duplicate, once (the keeper, the exit
 * flush and the owner may meet here). */
static void drop_anchor(struct anchor *a, int fd) {
  if (!atomic_compare_exchange_strong(&a->fd1, &(int){fd + 1}, 0))
    return;
  tfo__libc()->close(fd); /* leaves the epoll set with it */
  atomic_fetch_sub(&anchor_count, 1);
}

/* Watches an anchor's handshake; 0, or -1 (then dropped). */
static int watch_anchor(int i, int fd) {
  struct epoll_event ev;

  ev.events = EPOLLOUT | EPOLLONESHOT;
  ev.data.u64 = DATA_ANCHOR | (uint64_t)i;
  if (tfo__libc()->epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == 0 ||
      (errno == EEXIST &&
       tfo__libc()->epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev) == 0))
    return 0;
  drop_anchor(&anchors[i], fd);
  return -1;
}

/* A held anchor whose owner entry still stands for it: the fd table
 * releases that SYN (with the grace's stretch for a running thread). */
static int linked(const struct anchor *a) {
  int kind;

  if (a->owner == NULL || atomic_load(&a->owner->gen) != a->owner_gen)
    return 0;
  kind = atomic_load(&a->owner->kind);
  return kind == FD_DEFERRED || kind == FD_RELEASING;
}

/* Where a's handshake is: a guard only waits for its end, a judge also
 * judges it. */
static enum tfo__settle anchor_settle(struct anchor *a, int fd) {
  struct tfo__tcpinfo ti;
  int saved = errno, kind = FD_SENT;
  enum tfo__settle r;

  if (atomic_load(&a->mode) == A_KEEP) {
    /* (Only the exit settles these: the owner's verdict, if nobody
     * claimed it, through this copy of the socket.) */
    if (a->owner == NULL || atomic_load(&a->owner->gen) != a->owner_gen ||
        !atomic_compare_exchange_strong(&a->owner->kind, &kind,
                                        FD_RELEASING))
      return TFO__SETTLED;
    r = tfo__settle(fd, &a->owner->addr, a->owner->addrlen,
                    a->owner->cookie_sent, a->owner->syn_bytes, 0);
    if (r == TFO__PENDING)
      atomic_store(&a->owner->kind, FD_SENT);
  } else if (atomic_load(&a->mode) == A_GUARD) {
    r = tfo__tcpinfo_get(fd, &ti) == 0 && ti.state == TCP_SYN_SENT
            ? TFO__PENDING
            : TFO__SETTLED;
    /* (A guard is made just before the program's write through another
     * copy sends the SYN: the few microseconds until it does, the socket
     * reads writable and the watch fires again; no more.) */
  } else {
    r = tfo__settle(fd, &a->addr, a->addrlen, a->cookie_sent, a->syn_bytes,
                    0);
  }
  errno = saved;
  return r;
}

/* An anchor's handshake ended (or the keeper was woken early). */
static void settle_anchor(int i) {
  struct anchor *a = &anchors[i];
  int fd = atomic_load(&a->fd1) - 1;
  enum tfo__settle r;

  if (fd < 0 || atomic_load(&a->mode) == A_HELD)
    return;
  r = anchor_settle(a, fd);
  if (r == TFO__PENDING)
    (void)watch_anchor(i, fd);
  else
    drop_anchor(a, fd);
}

/* Releases held anchors whose grace ended and whose owner let go of them,
 * and drops those past their deadline; ms to the next such moment, -1 if
 * none. */
static int expire_anchors(int64_t now) {
  struct anchor *a;
  int i, fd, left = -1, d, mode;
  int64_t t;

  if (atomic_load(&anchor_count) == 0)
    return -1;
  for (i = 0; i < ANCHORS; i++) {
    a = &anchors[i];
    if ((fd = atomic_load(&a->fd1) - 1) < 0)
      continue;
    mode = atomic_load(&a->mode);
    if (mode == A_HELD && linked(a))
      continue;
    if (mode == A_HELD && now >= a->release_at) {
      /* Closed while held, and nobody wrote through another copy within
       * the grace: the SYN leaves now, as it would have at connect
       * without the shim. A_HELD to A_JUDGE once: the owner may be
       * turning it into a guard right now (then it wrote first). */
      if (!atomic_compare_exchange_strong(&a->mode, &mode, A_JUDGE))
        continue;
      (void)!tfo__libc()->send(fd, "", 0, MSG_DONTWAIT | MSG_NOSIGNAL);
      a->deadline = now + ANCHOR_MS;
      if (watch_anchor(i, fd) != 0)
        continue;
    } else if (mode != A_HELD && now >= a->deadline) {
      drop_anchor(a, fd);
      continue;
    }
    t = mode == A_HELD ? a->release_at : a->deadline;
    d = (int)(t - now);
    if (left < 0 || d < left)
      left = d;
  }
  return left;
}

static void on_event(uint64_t data) {
  struct tfo__fd *st;
  struct epoll_event ev;
  uint64_t n;
  int fd;

  if (data & DATA_WAKE) {
    (void)!tfo__libc()->read(evfd, &n, sizeof(n));
    return;
  }
  if (data & DATA_ANCHOR) {
    settle_anchor((int)(data & 0xffff));
    return;
  }
  fd = (int)(data & 0xffffffff);
  st = tfo__fd_peek(fd);
  if (st != NULL && atomic_load(&st->gen) == (uint32_t)(data >> 32) &&
      atomic_load(&st->kind) == FD_SENT &&
      tfo__fd_judge(fd, st) == TFO__PENDING) {
    /* Woken early (a spurious EPOLLOUT): watch on. */
    ev.events = EPOLLOUT | EPOLLONESHOT;
    ev.data.u64 = data;
    if (tfo__libc()->epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev) == 0)
      return;
  }
  if (st != NULL && atomic_load(&st->gen) == (uint32_t)(data >> 32))
    tfo__keeper_forget(st);
}

void tfo__keeper_forget(struct tfo__fd *st) {
  if (atomic_exchange(&st->watched, 0))
    atomic_fetch_sub(&watching, 1);
  if (atomic_load(&st->anchor) != 0)
    drop_kept(st);
}

/* Creates the descriptors; lock held. 0, or -1 with errno. */
static int open_fds(void) {
  struct epoll_event ev;
  int ep, e;

  ep = high(epoll_create1(EPOLL_CLOEXEC));
  evfd = high(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  ev.events = EPOLLIN;
  ev.data.u64 = DATA_WAKE;
  if (ep < 0 || evfd < 0 ||
      tfo__libc()->epoll_ctl(ep, EPOLL_CTL_ADD, evfd, &ev) != 0) {
    e = errno;
    if (ep >= 0)
      tfo__libc()->close(ep);
    if (evfd >= 0)
      tfo__libc()->close(evfd);
    evfd = -1;
    errno = e;
    return -1;
  }
  atomic_store(&watching, 0);
  atomic_store(&epfd, ep);
  return 0;
}

/* The keeper's own: closes the descriptors when nothing is left to do and
 * waits for work. 1 when it did (then the caller looks again). */
static int rest(void) {
  int ep;

  pthread_mutex_lock(&lock);
  if (atomic_load(&watching) > 0 || atomic_load(&anchor_count) > 0 ||
      atomic_load(&tfo__deferred_count) > 0) {
    pthread_mutex_unlock(&lock);
    return 0;
  }
  ep = atomic_exchange(&epfd, -1);
  tfo__libc()->close(ep);
  tfo__libc()->close(evfd);
  evfd = -1;
  idle = 1;
  pthread_mutex_unlock(&lock);
  while (sem_wait(&idle_sem) != 0)
    ;
  return 1;
}

static void *run(void *arg) {
  struct epoll_event evs[64];
  int64_t now;
  int i, n, t, tmo, lingering = 0;

  (void)arg;
  for (;;) {
    atomic_store(&wake_at, 0);
    now = tfo__shim_now_ms();
    tmo = tfo__fd_expire(now);
    t = expire_anchors(now);
    if (t >= 0 && (tmo < 0 || t < tmo))
      tmo = t;
    if (tmo < 0 && now - atomic_load(&last_hold) < LINGER_MS) {
      /* Holding SYNs lately: look again within a grace (a new hold's
       * grace cannot end before), so the next hold needs no wake-up. */
      tmo = TFO__SHIM_GRACE_MS;
      lingering = 0;
    } else if (tmo < 0 && atomic_load(&watching) <= 0) {
      /* Nothing to do: a second more, then the descriptors go. */
      if (lingering && rest()) {
        lingering = 0;
        continue;
      }
      lingering = 1;
      tmo = LINGER_MS;
    } else {
      lingering = 0;
    }
    atomic_store(&wake_at, tmo < 0 ? INT64_MAX : now + tmo);
    n = tfo__libc()->epoll_wait(atomic_load(&epfd), evs, 64, tmo);
    for (i = 0; i < n; i++)
      on_event(evs[i].data.u64);
  }
  return NULL;
}

/* The forked child has no keeper: it closes its copies of the parent's
 * descriptors (async-signal-safe, as a child of a threaded fork must be)
 * and starts its own on first need. */
static int disarm_one(int fd, struct tfo__fd *st, void *arg) {
  (void)fd;
  (void)arg;
  tfo__fd_disarm_race(st);
  return -1;
}

static void after_fork_child(void) {
  int i, fd;

  tfo__tid_forget();
  atomic_store(&wake_at, 0); /* no keeper looks in the child yet */

  /* The parent runs its races; two processes reconnecting one socket
   * would undo each other. */
  tfo__fd_each_racing(disarm_one, NULL);

  for (i = 0; i < ANCHORS; i++)
    if ((fd = atomic_load(&anchors[i].fd1) - 1) >= 0) {
      tfo__libc()->close(fd);
      atomic_store(&anchors[i].fd1, 0);
    }
  atomic_store(&anchor_count, 0);
  if ((fd = atomic_exchange(&epfd, -1)) >= 0)
    tfo__libc()->close(fd);
  if (evfd >= 0)
    tfo__libc()->close(evfd);
  evfd = -1;
  atomic_store(&watching, 0);
  pthread_mutex_init(&lock, NULL);
  thread_state = 0;
  idle = 0;
}

static int atfork_done;
_Atomic unsigned tfo__fork_gen;

static void count_fork(void) {
  atomic_fetch_add(&tfo__fork_gen, 1);
}

void tfo__keeper_prepare(void) {
  pthread_mutex_lock(&lock);
  if (!atfork_done &&
      pthread_atfork(count_fork, NULL, after_fork_child) == 0)
    atfork_done = 1;
  pthread_mutex_unlock(&lock);
}

/* Starts the thread; lock held, descriptors open. */
static void start_locked(void) {
  pthread_attr_t attr;
  pthread_t tid;
  sigset_t all, old;
  int rc;

  /* Perhaps inside a signal handler, which may have interrupted malloc:
   * pthread_create would wait for its lock forever. Not now, then: the
   * held SYN leaves at the program's next call on it, and a later need
   * outside a handler starts the thread. */
  if (tfo__maybe_in_handler())
    return;

  if (!atfork_done) {
    if (pthread_atfork(count_fork, NULL, after_fork_child) != 0)
      goto fail;
    atfork_done = 1;
  }
  sem_init(&idle_sem, 0, 0);
  /* Every signal blocked: the program's handlers run on its own threads. */
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  rc = pthread_create(&tid, &attr, run, NULL);
  pthread_attr_destroy(&attr);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc == 0) {
    thread_state = 1;
    return;
  }
  errno = rc;
fail:
  tfo__log(TFO__LOG_ERROR, "no keeper thread (%s): held SYNs leave at "
                           "the program's next call", tfo__strerror(errno));
  thread_state = -1;
}

/* Makes sure the keeper runs with its descriptors open; 1 when it does,
 * with one registration reserved in `watching` when reserve is set (so
 * the keeper cannot close its set before the caller is done with it). */
static int keeper(int reserve) {
  int saved = errno, ok;

  pthread_mutex_lock(&lock);
  if (thread_state >= 0 && atomic_load(&epfd) < 0 && open_fds() != 0)
    tfo__log(TFO__LOG_ERROR, "keeper: %s", tfo__strerror(errno));
  if (thread_state == 0 && atomic_load(&epfd) >= 0)
    start_locked();
  if (idle) {
    idle = 0;
    sem_post(&idle_sem);
  }
  ok = thread_state > 0 && atomic_load(&epfd) >= 0;
  if (ok && reserve)
    atomic_fetch_add(&watching, 1);
  pthread_mutex_unlock(&lock);
  errno = saved;
  return ok;
}

void tfo__keeper_defer(int64_t deadline) {
  int64_t w;

  atomic_store(&last_hold, deadline - TFO__SHIM_GRACE_MS);
  /* Running, and due to look before then: nothing to do (the common case
   * of a program that connects often). 0: it is looking right now, and
   * may have looked before this hold. */
  w = atomic_load(&wake_at);
  if (w > 0 && w <= deadline && atomic_load(&epfd) >= 0)
    return;
  if (keeper(0))
    wake(deadline);
}

void tfo__keeper_watch(int fd, struct tfo__fd *st) {
  struct epoll_event ev;
  int saved = errno;

  tfo__fd_pin(fd, st);
  if (!keeper(1))
    return;
  /* One count a registered entry: the reservation is it, unless the
   * entry was counted already (registered again). */
  if (atomic_exchange(&st->watched, 1))
    atomic_fetch_sub(&watching, 1);
  ev.events = EPOLLOUT | EPOLLONESHOT;
  ev.data.u64 = (uint64_t)atomic_load(&st->gen) << 32 | (uint32_t)fd;
  /* The same socket connecting again is already in the set. */
  if (tfo__libc()->epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0 &&
      (errno != EEXIST ||
       tfo__libc()->epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev) != 0)) {
    tfo__keeper_forget(st);
  } else if (atomic_load_explicit(&tfo__raw_closer, memory_order_relaxed) &&
             atomic_load(&st->anchor) == 0) {
    /* A raw close would take the socket, and the watch with it, before
     * a busy keeper sees the handshake end: a copy keeps both (a held
     * SYN's anchor becomes this copy at the first write). */
    int i = anchor(fd, st, A_KEEP, 1);

    if (i >= 0)
      atomic_store(&st->anchor, i + 1);
  }
  errno = saved;
}

/* A free slot, claimed (fd1 -1), or NULL. */
static struct anchor *new_slot(int *index) {
  int i, expect;

  for (i = 0; i < ANCHORS; i++) {
    expect = 0;
    if (atomic_compare_exchange_strong(&anchors[i].fd1, &expect, -1)) {
      *index = i;
      return &anchors[i];
    }
  }
  return NULL;
}

/* A new anchor for fd in mode (owner: st's entry, for A_HELD while it
 * stands for the SYN); its index, or -1. */
static int anchor(int fd, struct tfo__fd *st, int mode, int owner) {
  struct anchor *a;
  int i, dup, saved = errno;

  if (atomic_load(&anchor_count) >= ANCHORS || !keeper(1))
    return -1;
  dup = -1;
  a = new_slot(&i);
  if (a != NULL)
    dup = dup_high(fd);
  if (dup < 0) {
    if (a != NULL)
      atomic_store(&a->fd1, 0);
    atomic_fetch_sub(&watching, 1);
    errno = saved;
    return -1;
  }
  a->release_at = st->deferred_at + TFO__SHIM_GRACE_MS;
  a->deadline = tfo__shim_now_ms() + ANCHOR_MS;
  a->cookie_sent = st->cookie_sent;
  a->syn_bytes = st->syn_bytes;
  tfo__fd_pin(fd, st);
  a->sock = st->sock;
  a->addrlen = st->addrlen;
  memcpy(&a->addr, &st->addr, sizeof(a->addr));
  /* The owner is set before the anchor is visible (fd1). */
  a->owner = owner ? st : NULL;
  a->owner_gen = atomic_load(&st->gen);
  atomic_store(&a->mode, mode);
  atomic_store(&a->fd1, dup + 1);
  atomic_fetch_add(&anchor_count, 1);
  if (mode == A_HELD)
    wake(a->release_at);
  else if (mode == A_KEEP || watch_anchor(i, dup) == 0)
    wake(a->deadline);
  atomic_fetch_sub(&watching, 1); /* the anchor keeps the keeper busy now */
  errno = saved;
  return i;
}

/* st's anchor while it is st's, else NULL. */
static struct anchor *anchor_of(struct tfo__fd *st, int *fd) {
  int i = atomic_load(&st->anchor) - 1;
  struct anchor *a;

  if (i < 0 || i >= ANCHORS)
    return NULL;
  a = &anchors[i];
  *fd = atomic_load(&a->fd1) - 1;
  if (*fd < 0 || a->owner != st || a->owner_gen != atomic_load(&st->gen))
    return NULL;
  return a;
}

/* st's A_KEEP copy goes with st's verdict (or the end of st). */
static void drop_kept(struct tfo__fd *st) {
  struct anchor *a;
  int fd;

  a = anchor_of(st, &fd);
  if (a != NULL && atomic_load(&a->mode) == A_KEEP) {
    atomic_store(&st->anchor, 0);
    drop_anchor(a, fd);
  }
}

void tfo__keeper_settle_kept(struct tfo__fd *st) {
  struct anchor *a;
  int fd, mode = A_KEEP;

  a = anchor_of(st, &fd);
  if (a == NULL || atomic_load(&a->mode) != A_KEEP ||
      tfo__settle(fd, &st->addr, st->addrlen, st->cookie_sent, st->syn_bytes,
                  0) != TFO__PENDING)
    return; /* judged (or nothing to judge): dropped with the entry */
  /* Not over yet (a spurious wake-up): the copy judges it when it is. */
  a->cookie_sent = st->cookie_sent;
  a->syn_bytes = st->syn_bytes;
  a->deadline = tfo__shim_now_ms() + ANCHOR_MS;
  a->owner = NULL;
  if (atomic_compare_exchange_strong(&a->mode, &mode, A_JUDGE)) {
    atomic_store(&st->anchor, 0);
    if (watch_anchor((int)(a - anchors), fd) == 0)
      wake(a->deadline);
  }
}

void tfo__keeper_hold(int fd, struct tfo__fd *st) {
  int i = -1;

  /* An anchor only where a close may go unseen (it costs a dup and a
   * close): in an event loop's non-blocking socket (libuv closes with a
   * raw system call, and may be linked in where nobody can see it), or in
   * a process seen doing so. Blocking programs close through us. */
  if (atomic_load_explicit(&tfo__raw_closer, memory_order_relaxed) ||
      tfo__fd_nonblocking(fd, st) == 1)
    i = anchor(fd, st, A_HELD, 1);
  if (i < 0) {
    /* No anchor (none needed, or no slot or descriptor): the SYN is
     * still released on time. */
    atomic_store(&st->anchor, 0);
    tfo__keeper_defer(st->deferred_at + TFO__SHIM_GRACE_MS);
    return;
  }
  atomic_store(&st->anchor, i + 1);
}

/* st's SYN left through st (its first write or release), which is judged:
 * an anchor of the same socket that another copy left behind (the program
 * closed the original after a dup, or before a forked child wrote) only
 * keeps the socket now, so that one connection gets one verdict. */
static void guard_copies(const struct tfo__fd *st) {
  struct anchor *a;
  int i, fd, mode;

  /* Only a socket with copies (a dup, a fork since connect) can have an
   * anchor that is not st's: no scan on the common path. */
  if (atomic_load(&anchor_count) == 0 || st->sock == 0 ||
      !tfo__fd_maybe_shared(st))
    return;
  for (i = 0; i < ANCHORS; i++) {
    a = &anchors[i];
    if ((fd = atomic_load(&a->fd1) - 1) < 0 || a->sock != st->sock)
      continue;
    mode = atomic_load(&a->mode);
    if (mode == A_GUARD || a->owner == st ||
        !atomic_compare_exchange_strong(&a->mode, &mode, A_GUARD))
      continue;
    a->deadline = tfo__shim_now_ms() + ANCHOR_MS;
    if (watch_anchor(i, fd) == 0)
      wake(a->deadline);
  }
}

void tfo__keeper_unhold(struct tfo__fd *st, int drop) {
  struct anchor *a;
  int fd, mode = A_HELD, saved = errno;

  guard_copies(st);
  if (atomic_load(&st->anchor) == 0) {
    errno = saved;
    return;
  }
  a = anchor_of(st, &fd);
  atomic_store(&st->anchor, 0);
  if (a == NULL)
    return;
  if (drop) {
    drop_anchor(a, fd);
  } else if (atomic_load_explicit(&tfo__raw_closer, memory_order_relaxed) &&
             atomic_compare_exchange_strong(&a->mode, &mode, A_KEEP)) {
    /* The entry is watched from here (tfo__keeper_watch): the copy stays
     * its until it is judged. */
    a->deadline = tfo__shim_now_ms() + ANCHOR_MS;
    atomic_store(&st->anchor, (int)(a - anchors) + 1);
    wake(a->deadline);
  } else if (atomic_compare_exchange_strong(&a->mode, &mode, A_GUARD)) {
    a->deadline = tfo__shim_now_ms() + ANCHOR_MS;
    if (watch_anchor((int)(a - anchors), fd) == 0)
      wake(a->deadline);
  }
  errno = saved;
}

int tfo__keeper_adopt(int fd, struct tfo__fd *st, int held) {
  struct anchor *a;
  int afd;

  /* Anchored since connect and still held: the anchor finishes the
   * connection; it is let go when st is cleared (the close), and releases
   * the SYN at release_at. (Once the SYN left, tfo__keeper_unhold cut the
   * link: a guard only keeps the socket, so a close gets a judge of its
   * own.) */
  if (held && (a = anchor_of(st, &afd)) != NULL) {
    atomic_store(&st->anchor, 0);
    wake(a->release_at);
    return 0;
  }
  return anchor(fd, st, held ? A_HELD : A_JUDGE, 0) >= 0 ? 0 : -1;
}

/* At exit, connections the program closed while the shim held or delayed
 * their SYN are still the keeper's: their SYNs leave now and their
 * handshakes get a short while to end (the exit waits only when there is
 * such a connection), so that the server sees the connection and its
 * close, and a refusal teaches the cache, as a longer-lived program
 * would have. */
#define EXIT_WAIT_MS 200

void tfo__keeper_surrogate(const struct sockaddr_in6 *addr,
                           socklen_t addrlen) {
  const struct tfo__libc *libc = tfo__libc();
  struct anchor *a;
  int i, s, saved = errno;

  /* The program's connection, as far as the counts go, went plain. */
  tfo__shim_count(TFO_OUTCOME_FALLBACK);
  if (atomic_load(&anchor_count) >= ANCHORS || !keeper(1))
    return;
  s = high(libc->socket(addr->sin6_family,
                        SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  a = s >= 0 ? new_slot(&i) : NULL;
  if (a == NULL || (libc->connect(s, (const struct sockaddr *)addr,
                                  addrlen) != 0 &&
                    errno != EINPROGRESS)) {
    if (a != NULL)
      atomic_store(&a->fd1, 0);
    if (s >= 0)
      libc->close(s);
    atomic_fetch_sub(&watching, 1);
    errno = saved;
    return;
  }
  tfo__log(TFO__LOG_DEBUG, "a held SYN's socket was closed out of our "
                           "sight: the server sees a connection, and its "
                           "close, all the same");
  a->deadline = tfo__shim_now_ms() + ANCHOR_MS;
  a->cookie_sent = 0;
  a->syn_bytes = 0;
  a->sock = 0;
  a->addrlen = addrlen;
  memcpy(&a->addr, addr, sizeof(a->addr));
  a->owner = NULL;
  atomic_store(&a->mode, A_GUARD);
  atomic_store(&a->fd1, s + 1);
  atomic_fetch_add(&anchor_count, 1);
  if (watch_anchor(i, s) == 0)
    wake(a->deadline);
  atomic_fetch_sub(&watching, 1);
  errno = saved;
}

static int lost_one(int fd, struct tfo__fd *st, void *arg) {
  struct sockaddr_in6 addr;
  socklen_t addrlen;

  (void)arg;
  if (tfo__fd_lost(fd, st) && tfo__fd_claim(st)) {
    addr = st->addr;
    addrlen = st->addrlen;
    tfo__keeper_surrogate(&addr, addrlen);
    tfo__fd_clear(fd);
  }
  return -1;
}

void tfo__keeper_exit(void) {
  int64_t end;
  int i, fd, saved = errno;

  /* Held SYNs whose sockets were closed out of our sight, that the
   * keeper had no time to find. */
  tfo__fd_each_deferred(lost_one, NULL);
  if (atomic_load(&anchor_count) == 0)
    return;
  end = tfo__shim_now_ms() + EXIT_WAIT_MS;
  for (i = 0; i < ANCHORS; i++)
    if ((fd = atomic_load(&anchors[i].fd1) - 1) >= 0 &&
        atomic_compare_exchange_strong(&anchors[i].mode, &(int){A_HELD},
                                       A_JUDGE))
      (void)!tfo__libc()->send(fd, "", 0, MSG_DONTWAIT | MSG_NOSIGNAL);
  while (atomic_load(&anchor_count) > 0 && tfo__shim_now_ms() < end) {
    struct pollfd p = {-1, POLLOUT, 0};

    for (i = 0; i < ANCHORS; i++)
      if ((fd = atomic_load(&anchors[i].fd1) - 1) >= 0) {
        p.fd = fd;
        break;
      }
    if (p.fd < 0)
      break;
    tfo__libc()->poll(&p, 1, (int)(end - tfo__shim_now_ms()));
    /* The keeper settles it (or, if it is not running, this does). */
    if (i < ANCHORS && atomic_load(&anchors[i].fd1) - 1 == p.fd &&
        anchor_settle(&anchors[i], p.fd) != TFO__PENDING)
      drop_anchor(&anchors[i], p.fd);
  }
  errno = saved;
}
