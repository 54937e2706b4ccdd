/* The per-destination negative cache (see cache.h for the policy and the
 * file format).
 *
 * Locking, from the outside in:
 *  - `rw` (in-process reader/writer lock) guards the table handle and the
 *    configuration: every operation holds it shared, (re)opening and
 *    configure hold it exclusive, so a mapping is never unmapped under a
 *    reader. It is a word of C11 atomics rather than a pthread_rwlock so
 *    that a fork child can simply reset it (glibc's rwlock remembers the
 *    writer's tid, which the child does not have).
 *  - `wmu` (in-process mutex) then flock(LOCK_EX) on the file serialise
 *    writers; flock alone would not, as threads share the open file
 *    description. Readers take neither: each slot is a seqlock.
 *  - fork: prepare takes `rw` exclusive (so nobody holds `wmu` or is mid-
 *    reopen); the child resets `rw` and reopens the file, because a flock
 *    belongs to the open file description, which it shares with the parent.
 *    Signals are blocked from prepare to the end of the fork, so a handler
 *    cannot wait for the writer bit its own thread set. (Known limit:
 *    fork() from a signal handler that interrupted a cache call in the same
 *    thread would wait forever in prepare.)
 *
 * SPDX-License-Identifier: MIT */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE /* secure_getenv, GNU strerror_r */
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "connect.h"
#include "sys.h"
#include "log.h"

_Static_assert(sizeof(struct tfo__cache_hdr) == TFO__CACHE_HDR_SIZE,
               "header layout");
_Static_assert(sizeof(struct tfo__cache_slot) == TFO__CACHE_SLOT_SIZE,
               "slot layout");
_Static_assert((TFO__CACHE_SLOTS & (TFO__CACHE_SLOTS - 1)) == 0,
               "slot count must be a power of two");
_Static_assert(TFO__CACHE_WINDOW <= TFO__CACHE_SLOTS, "window too large");
/* Atomics in memory shared between processes are only sound lock-free. */
_Static_assert((sizeof(uint64_t) == sizeof(long) ? ATOMIC_LONG_LOCK_FREE
                                                 : ATOMIC_LLONG_LOCK_FREE) == 2,
               "64-bit atomics must be lock-free");

#define SLOT_MASK (TFO__CACHE_SLOTS - 1u)
#define SEQ_MASK UINT64_C(0xffffffff)

/* A destination: the exact bits stored in w[1..4] and w[0]. */
struct key {
  uint64_t a0, a1; /* address bytes, IPv4 as ::ffff:a.b.c.d */
  uint64_t ns_ino; /* network namespace inode */
  uint64_t ns_aux; /* folded netns device | IPv6 scope id << 32 */
  uint16_t port;   /* network order */
  uint8_t fam;     /* 4 or 6 */
};

struct entry {
  struct key k;
  int64_t expires, updated;
  uint32_t rtt;
  unsigned failures, backoff, last;
};

/* MODE_ENV: no caller configured the cache, so LIBTFO_CACHE decides, at
 * first use (it is read once, like every LIBTFO_ variable). */
enum mode { MODE_ENV, MODE_DEFAULT, MODE_OFF, MODE_PATH };

struct table {
  struct tfo__cache_hdr *hdr; /* NULL: off (or no memory at all) */
  struct tfo__cache_slot *slots;
  int fd;              /* -1: memory table, or the file's fd was lost */
  dev_t dev;           /* the file's identity, to know fd is still ours */
  ino_t ino;
  char path[PATH_MAX]; /* file in use, "" for memory */
};

static _Atomic unsigned rw; /* readers | RW_WRITER */
static pthread_mutex_t wmu = PTHREAD_MUTEX_INITIALIZER;
static sigset_t wmu_mask; /* the holder's signal mask before wlock */

static void wmu_unlock(void) {
  sigset_t old = wmu_mask;

  pthread_mutex_unlock(&wmu);
  tfo__signals_restore(&old);
}
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
static enum mode mode = MODE_ENV;
static char *spec_path;          /* LIBTFO_CACHE's (env_path) or configure's */
static char env_path[PATH_MAX];
static int ready; /* table open for the current configuration and process */
static struct table tab = {.fd = -1};
static uint64_t ns_ino, ns_dev32;

int64_t tfo__now_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t now_ms(void) {
  return tfo__cache_clock_ms();
}

/* --- the in-process lock -------------------------------------------------- */

#define RW_WRITER 0x80000000u

/* Waits are short (a lookup) or rare (configure, reopen after fork): yield
 * first, then sleep so a long open does not burn a CPU per waiter. */
static void rw_wait(unsigned *n) {
  struct timespec ts = {0, 50000};

  if (++*n < 64)
    sched_yield();
  else
    nanosleep(&ts, NULL);
}

static void rd_lock(void) {
  unsigned s, n = 0;

  for (;;) {
    s = atomic_load_explicit(&rw, memory_order_relaxed);
    if (!(s & RW_WRITER) &&
        atomic_compare_exchange_weak_explicit(
            &rw, &s, s + 1, memory_order_acquire, memory_order_relaxed))
      return;
    if (s & RW_WRITER)
      rw_wait(&n);
  }
}

static void rd_unlock(void) {
  atomic_fetch_sub_explicit(&rw, 1, memory_order_release);
}

/* Writer-preferring: once the bit is set no new reader enters, so a stream
 * of lookups cannot starve a reopen. */
static void wr_lock(void) {
  unsigned s, n = 0;

  for (;;) {
    s = atomic_load_explicit(&rw, memory_order_relaxed);
    if (!(s & RW_WRITER) &&
        atomic_compare_exchange_weak_explicit(
            &rw, &s, s | RW_WRITER, memory_order_acquire, memory_order_relaxed))
      break;
    rw_wait(&n);
  }
  n = 0;
  while (atomic_load_explicit(&rw, memory_order_acquire) != RW_WRITER)
    rw_wait(&n);
}

static void wr_unlock(void) {
  atomic_fetch_and_explicit(&rw, ~RW_WRITER, memory_order_release);
}

/* --- fork ----------------------------------------------------------------- */

/* The program owns the descriptor table: it may close our cache fd (a
 * close-everything loop, closefrom) or dup2 over its number (a shell's
 * `exec 4>file`). Whether tab.fd still names our file; if not, the number
 * is the program's now, never to be closed, locked or truncated by us. */
static int fd_is_ours(void) {
  struct stat sb;

  return tab.fd >= 0 && fstat(tab.fd, &sb) == 0 && sb.st_dev == tab.dev &&
         sb.st_ino == tab.ino;
}

static void close_table(void) {
  if (tab.hdr != NULL)
    munmap(tab.hdr, TFO__CACHE_FILE_SIZE);
  if (fd_is_ours())
    close(tab.fd);
  tab.hdr = NULL;
  tab.slots = NULL;
  tab.fd = -1;
  tab.path[0] = '\0';
}

static sigset_t fork_mask; /* the forking thread's mask before prepare */

static void fork_prepare(void) {
  sigset_t old;

  /* No signal from here to the fork's end: a handler that connects (a
   * cache lookup) would wait for the writer bit its own thread set. */
  tfo__signals_block(&old);
  /* No thread may be inside the cache (holding wmu or mid-reopen) when the
   * address space is copied. */
  wr_lock();
  fork_mask = old;
}

static void fork_parent(void) {
  sigset_t old = fork_mask;

  wr_unlock();
  tfo__signals_restore(&old);
}

static void fork_child(void) {
  sigset_t old = fork_mask;

  /* Single-threaded here, and nobody held wmu (its holders hold rw). */
  atomic_store_explicit(&rw, 0, memory_order_relaxed);
  /* Our flock would be the parent's: reopen for a description of our own. A
   * private memory table is kept (its knowledge is still right). Either way
   * the netns is read again: children are where unshare() happens. */
  if (tab.path[0] != '\0')
    close_table();
  ready = 0;
  tfo__signals_restore(&old);
}

static void register_fork(void) {
  (void)pthread_atfork(fork_prepare, fork_parent, fork_child);
}

void tfo__cache_prepare(void) {
  pthread_once(&fork_once, register_fork);
}

/* --- opening -------------------------------------------------------------- */

static const char *errstr(int e, char *buf, size_t len) {
  (void)buf;
  (void)len;
  return tfo__strerror(e);
}

static void read_netns(void) {
  struct stat sb;

  /* Without /proc every namespace looks alike; nothing better to key on. */
  if (stat("/proc/self/ns/net", &sb) == 0) {
    ns_ino = (uint64_t)sb.st_ino;
    ns_dev32 = ((uint64_t)sb.st_dev ^ ((uint64_t)sb.st_dev >> 32)) & SEQ_MASK;
  } else {
    ns_ino = 0;
    ns_dev32 = 0;
  }
}

static int hdr_ok(struct tfo__cache_hdr *h) {
  return atomic_load_explicit(&h->h[0], memory_order_acquire) ==
             TFO__CACHE_MAGIC &&
         atomic_load_explicit(&h->h[1], memory_order_relaxed) ==
             (TFO__CACHE_VERSION | (uint64_t)TFO__CACHE_HDR_SIZE << 32) &&
         atomic_load_explicit(&h->h[2], memory_order_relaxed) ==
             (TFO__CACHE_SLOT_SIZE | (uint64_t)TFO__CACHE_SLOTS << 32);
}

/* Empties the table and writes a fresh header. `zero`: the slots may hold
 * old bytes (a new or regrown-from-empty file is already zero). The magic
 * goes last so a concurrent opener never takes a half-built table. */
static void rebuild(struct tfo__cache_hdr *h, int zero) {
  struct tfo__cache_slot *s = (struct tfo__cache_slot *)(h + 1);
  unsigned i, j;

  atomic_store_explicit(&h->h[0], 0, memory_order_relaxed);
  atomic_thread_fence(memory_order_release);
  if (zero)
    for (i = 0; i < TFO__CACHE_SLOTS; i++)
      for (j = 0; j < 8; j++)
        atomic_store_explicit(&s[i].w[j], 0, memory_order_relaxed);
  for (j = 1; j < 8; j++)
    atomic_store_explicit(&h->h[j], 0, memory_order_relaxed);
  atomic_store_explicit(
      &h->h[1], TFO__CACHE_VERSION | (uint64_t)TFO__CACHE_HDR_SIZE << 32,
      memory_order_relaxed);
  atomic_store_explicit(&h->h[2],
                        TFO__CACHE_SLOT_SIZE | (uint64_t)TFO__CACHE_SLOTS << 32,
                        memory_order_relaxed);
  atomic_store_explicit(&h->h[3], (uint64_t)now_ms(), memory_order_relaxed);
  atomic_store_explicit(&h->h[0], TFO__CACHE_MAGIC, memory_order_release);
}

/* flock with a deadline: a stopped or stuck process holding the lock must
 * not hang our caller's connect. */
static int lock_file(int fd, int timeout_ms) {
  struct timespec t0, t, nap = {0, 10000};
  long waited;

  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (;;) {
    if (flock(fd, LOCK_EX | LOCK_NB) == 0)
      return 0;
    if (errno == EINTR)
      continue;
    if (errno != EWOULDBLOCK)
      return -1;
    clock_gettime(CLOCK_MONOTONIC, &t);
    waited = (long)(t.tv_sec - t0.tv_sec) * 1000 +
             (t.tv_nsec - t0.tv_nsec) / 1000000;
    if (waited >= timeout_ms) {
      errno = EAGAIN;
      return -1;
    }
    nanosleep(&nap, NULL);
    if (nap.tv_nsec < 1000000)
      nap.tv_nsec *= 2;
  }
}

/* Opens `name` (relative to dfd) as the cache file, refusing anything an
 * attacker could have planted or could tamper with. */
static int open_file(int dfd, const char *name, const char *shown) {
  struct stat sb;
  char eb[128];
  const char *why = NULL;
  int fd;

  /* O_NONBLOCK: a FIFO planted at the path must not hang us in open(). */
  fd = openat(dfd, name,
              O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
              0600);
  if (fd < 0) {
    tfo__log(TFO__LOG_ERROR, "cache file %s: %s; using a private table", shown,
             errno == ELOOP ? "is a symbolic link"
                            : errstr(errno, eb, sizeof(eb)));
    return -1;
  }
  if (fstat(fd, &sb) != 0)
    why = errstr(errno, eb, sizeof(eb));
  else if (!S_ISREG(sb.st_mode))
    why = "not a regular file";
  else if (sb.st_uid != geteuid())
    why = "owned by another user";
  else if (sb.st_mode & (S_IWGRP | S_IWOTH))
    why = "writable by group or others";
  else if (sb.st_nlink != 1)
    why = "has other hard links";
  if (why != NULL) {
    tfo__log(TFO__LOG_ERROR,
             "cache file %s: %s; not trusted, using a private table", shown,
             why);
    close(fd);
    return -1;
  }
  /* Ours but readable by others: the destination list is nobody's business. */
  if (sb.st_mode & 077)
    (void)fchmod(fd, 0600);
  return fd;
}

/* $XDG_RUNTIME_DIR/libtfo/cache, or /run/libtfo/cache for root. The
 * directory is ours, 0700, and the file is opened relative to it, so it
 * cannot be swapped between the check and the open. */
static int open_default(char *path, size_t len) {
  const char *xdg = secure_getenv("XDG_RUNTIME_DIR");
  char dir[PATH_MAX], eb[128];
  struct stat sb;
  int dfd, fd, n;

  /* su/sudo keep the caller's XDG_RUNTIME_DIR: only use one that is ours,
   * or we would plant root-owned files in a user's directory. */
  if (xdg != NULL && xdg[0] == '/' && stat(xdg, &sb) == 0 &&
      S_ISDIR(sb.st_mode) && sb.st_uid == geteuid())
    n = snprintf(dir, sizeof(dir), "%s/libtfo", xdg);
  else if (geteuid() == 0)
    n = snprintf(dir, sizeof(dir), "/run/libtfo");
  else {
    tfo__log(TFO__LOG_INFO, "no usable XDG_RUNTIME_DIR: cache kept in memory");
    return -1;
  }
  if (n < 0 || (size_t)n + sizeof("/cache") > sizeof(dir) ||
      (size_t)n + sizeof("/cache") > len) {
    tfo__log(TFO__LOG_ERROR, "cache directory name too long; private table");
    return -1;
  }
  memcpy(path, dir, (size_t)n);
  memcpy(path + n, "/cache", sizeof("/cache"));
  if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
    tfo__log(TFO__LOG_ERROR, "cache directory %s: %s; using a private table",
             dir, errstr(errno, eb, sizeof(eb)));
    return -1;
  }
  dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0) {
    tfo__log(
        TFO__LOG_ERROR, "cache directory %s: %s; using a private table", dir,
        errno == ELOOP ? "is a symbolic link" : errstr(errno, eb, sizeof(eb)));
    return -1;
  }
  if (fstat(dfd, &sb) != 0 || sb.st_uid != geteuid() ||
      (sb.st_mode & (S_IWGRP | S_IWOTH))) {
    tfo__log(TFO__LOG_ERROR,
             "cache directory %s: not ours or writable by others; not "
             "trusted, using a private table",
             dir);
    close(dfd);
    return -1;
  }
  fd = open_file(dfd, "cache", path);
  close(dfd);
  return fd;
}

/* Maps an opened cache file, creating or rebuilding it under the file lock
 * when it is new, of the wrong size, or has a foreign header. Only a file of
 * the exact size is ever mapped: touching a mapping past EOF is SIGBUS. */
static int map_file(int fd, const char *shown) {
  void *p = MAP_FAILED;
  struct stat sb;
  char eb[128];
  int locked = 0, fresh = 0, bad_size = 0;

  if (fstat(fd, &sb) != 0)
    goto fail;
  if ((uint64_t)sb.st_size == TFO__CACHE_FILE_SIZE) {
    p = mmap(NULL, TFO__CACHE_FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
             0);
    if (p == MAP_FAILED)
      goto fail;
    if (hdr_ok(p))
      goto done;
  }
  /* New, short, long or foreign: fix it with writers excluded. */
  if (lock_file(fd, TFO__CACHE_LOCK_TIMEOUT_MS) != 0)
    goto fail;
  locked = 1;
  if (fstat(fd, &sb) != 0)
    goto fail;
  if ((uint64_t)sb.st_size != TFO__CACHE_FILE_SIZE) {
    if (p != MAP_FAILED)
      munmap(p, TFO__CACHE_FILE_SIZE);
    p = MAP_FAILED;
    fresh = sb.st_size == 0;
    bad_size = !fresh;
    /* Never shrunk to zero first: other processes may have it mapped. */
    if (ftruncate(fd, (off_t)TFO__CACHE_FILE_SIZE) != 0)
      goto fail;
  }
  if (p == MAP_FAILED) {
    p = mmap(NULL, TFO__CACHE_FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
             0);
    if (p == MAP_FAILED)
      goto fail;
  }
  if (bad_size || !hdr_ok(p)) {
    if (!fresh)
      tfo__log(TFO__LOG_INFO, "cache file %s: %s; rebuilt", shown,
               bad_size ? "wrong size" : "not a libtfo cache of this version");
    rebuild(p, !fresh);
  }
  flock(fd, LOCK_UN);
done:
  tab.hdr = p;
  tab.slots = (struct tfo__cache_slot *)(tab.hdr + 1);
  tab.fd = fd;
  tab.dev = sb.st_dev;
  tab.ino = sb.st_ino;
  return 0;
fail:
  tfo__log(TFO__LOG_ERROR,
           "cache file %s: cannot set up (%s); using a private table", shown,
           errstr(errno, eb, sizeof(eb)));
  if (p != MAP_FAILED)
    munmap(p, TFO__CACHE_FILE_SIZE);
  if (locked)
    flock(fd, LOCK_UN);
  return -1;
}

static void open_memory(void) {
  void *p = mmap(NULL, TFO__CACHE_FILE_SIZE, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

  if (p == MAP_FAILED) /* then we behave as "off" */
    return;
  rebuild(p, 0);
  tab.hdr = p;
  tab.slots = (struct tfo__cache_slot *)(tab.hdr + 1);
  tab.fd = -1;
}

/* Called with rw held exclusive. */
/* LIBTFO_CACHE=path|off. secure_getenv: a setuid program must not be
 * steered into creating files where its caller chooses. */
static void mode_from_env(void) {
  const char *s = secure_getenv("LIBTFO_CACHE");

  mode = MODE_DEFAULT;
  if (s == NULL || *s == '\0')
    return;
  if (strcmp(s, "off") == 0) {
    mode = MODE_OFF;
  } else if (s[0] == '/' && strlen(s) < sizeof(env_path)) {
    /* Not strdup: the first use may be inside a signal handler's write. */
    memcpy(env_path, s, strlen(s) + 1);
    spec_path = env_path;
    mode = MODE_PATH;
  } else {
    tfo__log(TFO__LOG_ERROR,
             "ignoring LIBTFO_CACHE='%.64s': expected an absolute path or "
             "'off'",
             s);
  }
}

/* Opens the file the configuration names (LIBTFO_CACHE's path, or the
 * default place), its name into path: at first use, and again when the
 * program took our descriptor. */
static int open_configured(char *path, size_t len) {
  if (mode == MODE_PATH) {
    snprintf(path, len, "%s", spec_path);
    return open_file(AT_FDCWD, spec_path, spec_path);
  }
  return open_default(path, len);
}

static void open_table(void) {
  int fd = -1;

  if (mode == MODE_ENV)
    mode_from_env();
  read_netns();
  ready = 1;
  if (tab.hdr != NULL) /* a private table inherited over fork */
    return;
  if (mode == MODE_OFF)
    return;
  fd = open_configured(tab.path, sizeof(tab.path));
  if (fd >= 0 && map_file(fd, tab.path) == 0)
    return;
  if (fd >= 0)
    close(fd);
  tab.path[0] = '\0';
  open_memory();
}

/* Returns with rw held shared and the table open. */
static void enter(void) {
  pthread_once(&fork_once, register_fork);
  for (;;) {
    rd_lock();
    if (ready)
      return;
    rd_unlock();
    wr_lock();
    if (!ready)
      open_table();
    wr_unlock();
  }
}

static void leave(void) {
  rd_unlock();
}

/* Our descriptor of the mapped file (wmu held), opened again when the
 * program took the old one; -1 with errno when the file at our path is no
 * longer the one mapped (removed or replaced): then it is not written. */
static int file_fd(void) {
  char path[PATH_MAX];
  struct stat sb;
  int fd;

  if (fd_is_ours())
    return tab.fd;
  tab.fd = -1;
  fd = open_configured(path, sizeof(path));
  if (fd < 0)
    return -1;
  if (fstat(fd, &sb) != 0 || sb.st_dev != tab.dev || sb.st_ino != tab.ino) {
    tfo__log(TFO__LOG_INFO, "cache file %s: replaced while in use; not updated",
             tab.path);
    close(fd);
    errno = ESTALE;
    return -1;
  }
  tab.fd = fd;
  return fd;
}

/* Takes the writer locks (rw already held shared) and makes sure the file is
 * still a valid table. 0, or -1 with nothing more held. */
static int wlock(void) {
  struct stat sb;
  sigset_t old;
  int e, fd;

  /* No signal while wmu is held: a handler on this thread that records
   * an outcome (the shim runs inside write(2), which handlers may call)
   * would wait for itself. The mask is restored by wunlock. */
  tfo__signals_block(&old);
  pthread_mutex_lock(&wmu);
  wmu_mask = old;
  if (tab.path[0] == '\0') /* a memory table: wmu is enough */
    return 0;
  fd = file_fd();
  if (fd < 0 || lock_file(fd, TFO__CACHE_LOCK_TIMEOUT_MS) != 0) {
    e = errno;
    wmu_unlock();
    errno = e;
    return -1;
  }
  /* Someone truncated it (readers elsewhere may already have faulted):
   * regrow before we touch it, then it is rebuilt below. */
  if (fstat(fd, &sb) == 0 && (uint64_t)sb.st_size != TFO__CACHE_FILE_SIZE) {
    if (ftruncate(fd, (off_t)TFO__CACHE_FILE_SIZE) != 0) {
      e = errno;
      flock(fd, LOCK_UN);
      wmu_unlock();
      errno = e;
      return -1;
    }
    atomic_store_explicit(&tab.hdr->h[0], 0, memory_order_relaxed);
  }
  if (!hdr_ok(tab.hdr)) {
    tfo__log(TFO__LOG_INFO, "cache file %s: damaged while in use; rebuilt",
             tab.path);
    rebuild(tab.hdr, 1);
  }
  return 0;
}

static void wunlock(void) {
  int e = errno;

  if (tab.path[0] != '\0' && fd_is_ours())
    flock(tab.fd, LOCK_UN);
  wmu_unlock();
  errno = e;
}

/* The common start of every update: 1 with the table entered and the write
 * lock held; 0 when the cache is off (nothing to do, errno untouched); -1
 * with errno when the write lock could not be had (nothing held). */
static int enter_write(void) {
  int e;

  enter();
  if (tab.hdr == NULL) {
    leave();
    return 0;
  }
  if (wlock() != 0) {
    e = errno;
    leave();
    errno = e;
    return -1;
  }
  return 1;
}

/* --- keys and slots ------------------------------------------------------- */

/* Validates the caller's address; the netns part is filled in later, under
 * rw, by key_set_ns. */
static int key_from(const struct sockaddr *sa, socklen_t len, struct key *k) {
  unsigned char b[16];
  uint32_t scope = 0;

  memset(k, 0, sizeof(*k));
  if (sa == NULL || len < (socklen_t)sizeof(sa_family_t)) {
    errno = EINVAL;
    return -1;
  }
  if (sa->sa_family == AF_INET) {
    struct sockaddr_in sin;

    if (len < (socklen_t)sizeof(sin)) {
      errno = EINVAL;
      return -1;
    }
    memcpy(&sin, sa, sizeof(sin));
    memset(b, 0, 10);
    b[10] = b[11] = 0xff;
    memcpy(b + 12, &sin.sin_addr, 4);
    k->port = sin.sin_port;
    k->fam = 4;
  } else if (sa->sa_family == AF_INET6) {
    struct sockaddr_in6 sin6;

    if (len < (socklen_t)sizeof(sin6)) {
      errno = EINVAL;
      return -1;
    }
    memcpy(&sin6, sa, sizeof(sin6));
    memcpy(b, &sin6.sin6_addr, 16);
    k->port = sin6.sin6_port;
    /* A v4-mapped destination is the same IPv4 host and path. */
    k->fam = IN6_IS_ADDR_V4MAPPED(&sin6.sin6_addr) ? 4 : 6;
    /* The scope id tells link-local hosts apart; elsewhere it is noise. */
    if (IN6_IS_ADDR_LINKLOCAL(&sin6.sin6_addr) ||
        IN6_IS_ADDR_MC_LINKLOCAL(&sin6.sin6_addr))
      scope = sin6.sin6_scope_id;
  } else {
    errno = EAFNOSUPPORT;
    return -1;
  }
  memcpy(&k->a0, b, 8);
  memcpy(&k->a1, b + 8, 8);
  k->ns_aux = (uint64_t)scope << 32;
  return 0;
}

static void key_set_ns(struct key *k) {
  k->ns_ino = ns_ino;
  k->ns_aux = (k->ns_aux & ~SEQ_MASK) | ns_dev32;
}

static int key_eq(const struct key *a, const struct key *b) {
  return a->a0 == b->a0 && a->a1 == b->a1 && a->ns_ino == b->ns_ino &&
         a->ns_aux == b->ns_aux && a->port == b->port && a->fam == b->fam;
}

static int same_ns(const struct key *k) {
  return k->ns_ino == ns_ino && (k->ns_aux & SEQ_MASK) == ns_dev32;
}

static int is_mapped(uint64_t a0, uint64_t a1) {
  unsigned char b[16];
  static const unsigned char pfx[12] = {0, 0, 0, 0, 0,    0,
                                        0, 0, 0, 0, 0xff, 0xff};

  memcpy(b, &a0, 8);
  memcpy(b + 8, &a1, 8);
  return memcmp(b, pfx, sizeof(pfx)) == 0;
}

static uint64_t mix(uint64_t x) { /* murmur3's finaliser */
  x ^= x >> 33;
  x *= UINT64_C(0xff51afd7ed558ccd);
  x ^= x >> 33;
  x *= UINT64_C(0xc4ceb9fe1a85ec53);
  x ^= x >> 33;
  return x;
}

/* Unkeyed on purpose: every process must agree on it, and the destinations
 * come from local programs, not from whoever might want to flood a window. */
static uint32_t key_slot(const struct key *k) {
  uint64_t h = mix(k->a0 ^ UINT64_C(0x9e3779b97f4a7c15));

  h = mix(h ^ k->a1);
  h = mix(h ^ k->ns_ino);
  h = mix(h ^ k->ns_aux);
  h = mix(h ^ ((uint64_t)k->port | (uint64_t)k->fam << 16));
  return (uint32_t)h & SLOT_MASK;
}

/* Lockless consistent copy of a slot: 1, or 0 when it kept changing under
 * us (or a writer died in it). */
static int slot_read(struct tfo__cache_slot *s, uint64_t w[8]) {
  uint64_t m;
  int i, j;

  memset(w, 0, 8 * sizeof(*w));
  for (i = 0; i < TFO__CACHE_READ_RETRIES; i++) {
    m = atomic_load_explicit(&s->w[0], memory_order_acquire);
    if (m & 1) {
      if (i >= 8)
        sched_yield(); /* the writer may be preempted: let it finish */
      continue;
    }
    w[0] = m;
    if (((m >> 48) & 0xff) == 0) /* empty: nothing else matters */
      return 1;
    for (j = 1; j < 8; j++)
      w[j] = atomic_load_explicit(&s->w[j], memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&s->w[0], memory_order_relaxed) == m)
      return 1;
  }
  return 0;
}

/* Writers only (serialised), so a plain copy is consistent. */
static void slot_peek(struct tfo__cache_slot *s, uint64_t w[8]) {
  int j;

  for (j = 0; j < 8; j++)
    w[j] = atomic_load_explicit(&s->w[j], memory_order_relaxed);
}

static void slot_write(struct tfo__cache_slot *s, const uint64_t w[8]) {
  uint64_t m = atomic_load_explicit(&s->w[0], memory_order_relaxed);
  /* Odd while we write; already odd if a writer died here, and then the
   * final +1 makes it even again. */
  uint32_t seq = (uint32_t)m | 1u;
  int j;

  atomic_store_explicit(&s->w[0], (m & ~SEQ_MASK) | seq, memory_order_relaxed);
  atomic_thread_fence(memory_order_release);
  for (j = 1; j < 8; j++)
    atomic_store_explicit(&s->w[j], w[j], memory_order_relaxed);
  atomic_store_explicit(&s->w[0], (w[0] & ~SEQ_MASK) | (uint32_t)(seq + 1u),
                        memory_order_release);
}

static void slot_empty(struct tfo__cache_slot *s) {
  static const uint64_t zero[8];

  slot_write(s, zero);
}

/* Decodes a slot copy, checking and clamping every field: the file is
 * shared and may be damaged or forged. 0: empty, unusable or stale, so the
 * slot is free for reuse. */
static int decode(const uint64_t w[8], int64_t now, struct entry *e) {
  uint64_t x = w[7];

  memset(e, 0, sizeof(*e));
  e->k.fam = (uint8_t)(w[0] >> 48);
  if ((e->k.fam != 4 && e->k.fam != 6) || (w[0] >> 56) != 0)
    return 0;
  e->k.port = (uint16_t)(w[0] >> 32);
  e->k.a0 = w[1];
  e->k.a1 = w[2];
  e->k.ns_ino = w[3];
  e->k.ns_aux = w[4];
  if (e->k.fam == 4 && !is_mapped(w[1], w[2]))
    return 0;
  e->last = (unsigned)(x >> 56);
  if (e->last < TFO__EV_DATA_ACKED || e->last > TFO__EV_RESET)
    return 0;
  e->updated = (int64_t)w[6];
  /* From the future: a clock step back or a forgery. Obeying it could
   * mean skipping TFO forever, so it is dropped. */
  if (e->updated <= 0 || e->updated > now + TFO__CACHE_CLOCK_SLACK_MS)
    return 0;
  if (now - e->updated > TFO__CACHE_MAX_AGE_MS)
    return 0;
  e->expires = (int64_t)w[5];
  if (e->expires < 0)
    e->expires = 0;
  if (e->expires > e->updated + TFO__CACHE_TTL_MAX_MS)
    e->expires = e->updated + TFO__CACHE_TTL_MAX_MS;
  e->rtt = (uint32_t)x;
  if (e->rtt > TFO__CACHE_RTT_MAX_US)
    e->rtt = 0;
  e->failures = (unsigned)(x >> 32) & 0xffff;
  if (e->failures > TFO__CACHE_FAILURES_MAX)
    e->failures = TFO__CACHE_FAILURES_MAX;
  e->backoff = (unsigned)(x >> 48) & 0xff;
  if (e->backoff > TFO__CACHE_BACKOFF_MAX)
    e->backoff = TFO__CACHE_BACKOFF_MAX;
  return 1;
}

static void encode(const struct entry *e, uint64_t w[8]) {
  w[0] = (uint64_t)e->k.port << 32 | (uint64_t)e->k.fam << 48;
  w[1] = e->k.a0;
  w[2] = e->k.a1;
  w[3] = e->k.ns_ino;
  w[4] = e->k.ns_aux;
  w[5] = (uint64_t)e->expires;
  w[6] = (uint64_t)e->updated;
  w[7] = (uint64_t)e->rtt | (uint64_t)e->failures << 32 |
         (uint64_t)e->backoff << 48 | (uint64_t)e->last << 56;
}

static void to_verdict(const struct entry *e, int64_t now,
                       struct tfo__verdict *v) {
  v->skip = e->expires > now;
  v->last = (enum tfo__event)e->last;
  v->rtt_us = e->rtt;
  v->failures = e->failures;
  v->expires_ms = e->expires;
}

/* --- policy --------------------------------------------------------------- */

static int64_t skip_ttl(unsigned level) {
  int64_t t = TFO__CACHE_TTL_BASE_MS;

  while (level-- > 0 && t < TFO__CACHE_TTL_MAX_MS)
    t *= 2;
  return t < TFO__CACHE_TTL_MAX_MS ? t : TFO__CACHE_TTL_MAX_MS;
}

static void apply(struct entry *e, enum tfo__event ev, uint32_t rtt,
                  int64_t now) {
  int hard = ev == TFO__EV_BLACKHOLE || ev == TFO__EV_RESET;

  /* Any connect that completed measured the path, TFO or plain. Smoothed
   * like TCP's srtt (gain 1/4), so one slow handshake does not halve the
   * fallback delay's margin. */
  if (rtt != 0 && rtt <= TFO__CACHE_RTT_MAX_US)
    e->rtt = e->rtt ? (uint32_t)(((uint64_t)e->rtt * 3 + rtt) / 4) : rtt;
  switch (ev) {
    case TFO__EV_DATA_ACKED:
      e->failures = 0;
      e->backoff = 0;
      e->expires = 0;
      break;
    case TFO__EV_COOKIE_GRANTED:
      /* The option passes both ways, but whether SYN data does is not
       * known yet: end the failure run, keep the back-off exponent, so a
       * path that grants cookies yet drops data SYNs cannot reset its own
       * back-off. Only DATA_ACKED does. */
      e->failures = 0;
      e->expires = 0;
      break;
    default:
      if (e->failures < TFO__CACHE_FAILURES_MAX)
        e->failures++;
      /* Already skipping: these are connects begun before the skip was
       * decided. Escalating on them would send a destination to the cap
       * after one bad burst. */
      if (e->expires > now)
        break;
      if (hard || e->failures >= TFO__CACHE_SOFT_THRESHOLD) {
        e->expires = now + skip_ttl(e->backoff);
        if (e->backoff < TFO__CACHE_BACKOFF_MAX)
          e->backoff++;
      }
      break;
  }
  e->last = (unsigned)ev;
  e->updated = now;
}

/* Lockless search of k's window. The slot index, or -1. */
static int find(const struct key *k, int64_t now, struct entry *e) {
  uint32_t h = key_slot(k), i, idx;
  uint64_t w[8];

  for (i = 0; i < TFO__CACHE_WINDOW; i++) {
    idx = (h + i) & SLOT_MASK;
    if (slot_read(&tab.slots[idx], w) && decode(w, now, e) && key_eq(&e->k, k))
      return (int)idx;
  }
  return -1;
}

/* --- API ------------------------------------------------------------------ */

int tfo__cache_configure(const char *spec) {
  int saved = errno;
  enum mode m = MODE_DEFAULT;
  char *p = NULL;

  if (spec != NULL && strcmp(spec, "off") == 0) {
    m = MODE_OFF;
  } else if (spec != NULL) {
    /* Relative paths would depend on the cwd at the (lazy) first use. */
    if (spec[0] != '/') {
      errno = EINVAL;
      return -1;
    }
    if (strlen(spec) >= PATH_MAX) {
      errno = ENAMETOOLONG;
      return -1;
    }
    p = strdup(spec);
    if (p == NULL)
      return -1;
    m = MODE_PATH;
  }
  pthread_once(&fork_once, register_fork);
  wr_lock();
  close_table();
  if (spec_path != env_path)
    free(spec_path);
  spec_path = p;
  mode = m;
  ready = 0;
  wr_unlock();
  errno = saved;
  return 0;
}

int tfo__cache_lookup(const struct sockaddr *sa, socklen_t len,
                      struct tfo__verdict *v) {
  int saved = errno, idx = -1;
  struct entry e;
  struct key k;
  int64_t now;

  if (key_from(sa, len, &k) != 0)
    return -1;
  if (v == NULL) {
    errno = EINVAL;
    return -1;
  }
  enter();
  if (tab.hdr != NULL && hdr_ok(tab.hdr)) {
    key_set_ns(&k);
    now = now_ms();
    idx = find(&k, now, &e);
    if (idx >= 0)
      to_verdict(&e, now, v);
  }
  leave();
  if (idx < 0) {
    errno = ENOENT;
    return -1;
  }
  errno = saved;
  return 0;
}

#define FLOOR_RTT_US                                                           \
  ((uint32_t)TFO__FALLBACK_MIN_MS * 1000u / TFO__FALLBACK_RTT_FACTOR)

/* A good destination staying good, the common case on every connect:
 * rewriting its entry would take the file lock for nothing. Only a change
 * is written: another event, a failure or skip to clear, or an RTT that
 * moved by more than an eighth (within that, smoothing would barely move
 * it; below the fallback delay's floor it changes nothing at all). A
 * lockless lookup decides. */
int tfo__cache_still_good(const struct sockaddr *sa, socklen_t len,
                          uint32_t rtt_us) {
  struct tfo__verdict v;
  uint32_t d;

  /* Set even when the lookup fails: GCC merges the tests below and reads
   * v.last before the lookup's result, a jump on garbage for memcheck. */
  memset(&v, 0, sizeof(v));
  if (tfo__cache_lookup(sa, len, &v) != 0 || v.last != TFO__EV_DATA_ACKED ||
      v.failures != 0 || v.skip || v.expires_ms != 0 || v.rtt_us == 0 ||
      rtt_us == 0)
    return 0;
  /* Below this, the fallback delay is its floor whatever the RTT. */
  if (rtt_us <= FLOOR_RTT_US && v.rtt_us <= FLOOR_RTT_US)
    return 1;
  d = rtt_us > v.rtt_us ? rtt_us - v.rtt_us : v.rtt_us - rtt_us;
  return d <= v.rtt_us / 8;
}

int tfo__cache_record(const struct sockaddr *sa, socklen_t len,
                      enum tfo__event ev, uint32_t rtt_us) {
  int saved = errno, rc;
  uint32_t h, i, idx, target = UINT32_MAX, spare = UINT32_MAX,
                      victim = UINT32_MAX;
  struct entry cur, best, found;
  uint64_t w[8];
  struct key k;
  int64_t now;

  if (key_from(sa, len, &k) != 0)
    return -1;
  if ((int)ev < TFO__EV_DATA_ACKED || (int)ev > TFO__EV_RESET) {
    errno = EINVAL;
    return -1;
  }
  if (ev == TFO__EV_DATA_ACKED && tfo__cache_still_good(sa, len, rtt_us)) {
    errno = saved;
    return 0;
  }
  rc = enter_write();
  if (rc <= 0) {
    if (rc == 0)
      errno = saved;
    return rc;
  }
  key_set_ns(&k);
  now = now_ms();
  h = key_slot(&k);
  memset(&best, 0, sizeof(best));
  for (i = 0; i < TFO__CACHE_WINDOW; i++) {
    idx = (h + i) & SLOT_MASK;
    slot_peek(&tab.slots[idx], w);
    if ((w[0] & 1) || !decode(w, now, &cur)) {
      /* A dead writer's slot, garbage or a stale entry: emptied while we
       * are here, so no unreadable copy of a key outlives its rewrite. */
      if ((w[0] & 1) || (w[0] & ~SEQ_MASK) != 0)
        slot_empty(&tab.slots[idx]);
      if (spare == UINT32_MAX)
        spare = idx;
    } else if (key_eq(&cur.k, &k)) {
      if (target == UINT32_MAX) {
        target = idx;
        found = cur;
      } else { /* cannot happen with serialised writers; heal if it does */
        slot_empty(&tab.slots[idx]);
      }
    } else if (victim == UINT32_MAX ||
               (cur.expires > now) < (best.expires > now) ||
               ((cur.expires > now) == (best.expires > now) &&
                cur.updated < best.updated)) {
      /* Evict what costs least to forget: an entry not skipping (at worst
       * one lost RTT or a repeated probe) before one that is (a repeated
       * blackhole penalty), the least recently updated first. */
      victim = idx;
      best = cur;
    }
  }
  if (target == UINT32_MAX) {
    target = spare != UINT32_MAX ? spare : victim;
    memset(&found, 0, sizeof(found));
    found.k = k;
  }
  apply(&found, ev, rtt_us, now);
  encode(&found, w);
  slot_write(&tab.slots[target], w);
  wunlock();
  leave();
  errno = saved;
  return 0;
}

int tfo__cache_forget(const struct sockaddr *sa, socklen_t len) {
  int saved = errno, rc;
  struct entry cur;
  uint32_t h, i, idx;
  uint64_t w[8];
  struct key k;
  int64_t now;

  if (key_from(sa, len, &k) != 0)
    return -1;
  rc = enter_write();
  if (rc <= 0) {
    if (rc == 0)
      errno = saved;
    return rc;
  }
  key_set_ns(&k);
  now = now_ms();
  h = key_slot(&k);
  for (i = 0; i < TFO__CACHE_WINDOW; i++) {
    idx = (h + i) & SLOT_MASK;
    slot_peek(&tab.slots[idx], w);
    if ((w[0] & 1) || (decode(w, now, &cur) && key_eq(&cur.k, &k)))
      slot_empty(&tab.slots[idx]);
  }
  wunlock();
  leave();
  errno = saved;
  return 0;
}

int tfo__cache_clear(void) {
  int saved = errno, rc;
  uint32_t i;
  uint64_t m;

  rc = enter_write();
  if (rc <= 0) {
    if (rc == 0)
      errno = saved;
    return rc;
  }
  /* Emptied in place, seq counters kept counting, so concurrent readers
   * see every slot change; untouched empty slots are not dirtied. */
  for (i = 0; i < TFO__CACHE_SLOTS; i++) {
    m = atomic_load_explicit(&tab.slots[i].w[0], memory_order_relaxed);
    if ((m & ~SEQ_MASK) != 0 || (m & 1) != 0)
      slot_empty(&tab.slots[i]);
  }
  wunlock();
  leave();
  errno = saved;
  return 0;
}

/* Slots copied per hold of rw, so that cb runs with no lock held. */
#define FOREACH_BATCH 64u

int tfo__cache_foreach(int (*cb)(const struct sockaddr *sa, socklen_t len,
                                 const struct tfo__verdict *v, void *arg),
                       void *arg) {
  struct entry batch[FOREACH_BATCH];
  struct tfo__verdict v;
  uint32_t base, i, n;
  int saved = errno, rc, stop;
  uint64_t w[8];
  int64_t now;

  if (cb == NULL) {
    errno = EINVAL;
    return -1;
  }
  for (base = 0; base < TFO__CACHE_SLOTS; base += FOREACH_BATCH) {
    n = 0;
    enter();
    now = now_ms();
    stop = tab.hdr == NULL || !hdr_ok(tab.hdr);
    for (i = 0; !stop && i < FOREACH_BATCH; i++)
      if (slot_read(&tab.slots[base + i], w) && decode(w, now, &batch[n]) &&
          same_ns(&batch[n].k))
        n++;
    leave();
    if (stop)
      break;
    for (i = 0; i < n; i++) {
      struct entry *e = &batch[i];
      unsigned char b[16];

      memcpy(b, &e->k.a0, 8);
      memcpy(b + 8, &e->k.a1, 8);
      to_verdict(e, now, &v);
      if (e->k.fam == 4) {
        struct sockaddr_in sin;

        memset(&sin, 0, sizeof(sin));
        sin.sin_family = AF_INET;
        sin.sin_port = e->k.port;
        memcpy(&sin.sin_addr, b + 12, 4);
        rc = cb((const struct sockaddr *)&sin, sizeof(sin), &v, arg);
      } else {
        struct sockaddr_in6 sin6;

        memset(&sin6, 0, sizeof(sin6));
        sin6.sin6_family = AF_INET6;
        sin6.sin6_port = e->k.port;
        memcpy(&sin6.sin6_addr, b, 16);
        sin6.sin6_scope_id = (uint32_t)(e->k.ns_aux >> 32);
        rc = cb((const struct sockaddr *)&sin6, sizeof(sin6), &v, arg);
      }
      if (rc != 0)
        return rc;
    }
  }
  errno = saved;
  return 0;
}

const char *tfo__cache_path(void) {
  int saved = errno;
  const char *p;

  enter();
  p = tab.path[0] != '\0' ? tab.path : NULL;
  leave();
  errno = saved;
  return p;
}
