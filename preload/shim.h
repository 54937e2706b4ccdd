/* libtfo_preload.so internals.
 *
 * How the shim works (libtfo_preload.8 says it for users):
 * - connect() on an IPv4/IPv6 TCP socket sets TCP_FASTOPEN_CONNECT before
 *   the real connect, unless the negative cache says the destination breaks
 *   TFO. With a cookie the kernel then defers the SYN to the first write,
 *   which carries the data; without one it asks for a cookie.
 * - The SYN is held back only for a destination (address and port) the
 *   cache has seen accepting: a closed port of a host that gave a cookie on
 *   another port is told so at connect, as without the shim. Elsewhere the
 *   SYN leaves at once, with the cookie, and the connect is the kernel's.
 *   A non-blocking connect says EINPROGRESS either way.
 * - A held SYN leaves with the program's first write, at its first read
 *   (or a poll for input alone), or when a 25 ms grace ends, whatever the
 *   program is doing then: the
 *   keeper (keeper.c), a thread of the shim's own, sends it. The keeper
 *   also judges every connection at the end of its handshake, so the cache
 *   learns even of sockets the program closes with a raw system call, and
 *   finishes a connection the program closed while its SYN was held, so
 *   the server sees it and its orderly close.
 * - A blocking program's first write runs libtfo's own connect machine
 *   (lib/connect.c, tfo__conn_adopt) on the program's socket: the race of a
 *   plain connection on a path that swallows TFO SYNs, the plain retry on
 *   one that resets them, the judgement and the negative cache, exactly as
 *   tfo_connect_send does. A reset of a non-blocking program's data SYN is
 *   mended at its next read or write (recover.c), on the same socket.
 *   Either way the next connection, in this process or another, skips a
 *   broken path.
 * - State is never applied to a descriptor that is no longer the socket it
 *   was recorded for: before the shim acts on the fd outside the program's
 *   own call on it, it checks the socket's SO_COOKIE (pinned when the
 *   keeper takes the entry) or, for a SYN only held, that the socket there
 *   still holds one. The calls that make descriptors reset their number's
 *   entry.
 * - listen() gives TCP listeners a TFO queue.
 * Anything that is not an IPv4/IPv6 TCP stream socket passes straight
 * through, and errno is preserved on every path.
 *
 * SPDX-License-Identifier: MIT */
#ifndef TFO_SHIM_H
#define TFO_SHIM_H

#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <signal.h>
#include <spawn.h>

#include "filter.h"
#include "tfo.h" /* tfo_conn, tfo_watch, tfo_result */

/* The intercepted calls are the only symbols the shim exports (shim.map). */
#define TFO_SHIM_EXPORT __attribute__((visibility("default")))

/* --- libc ------------------------------------------------------------- */

/* The real libc entry points, found with dlsym(RTLD_NEXT) on first use. */
struct tfo__libc {
  int (*socket)(int, int, int);
  int (*socketpair)(int, int, int, int[2]);
  int (*accept)(int, struct sockaddr *, socklen_t *);
  int (*accept4)(int, struct sockaddr *, socklen_t *, int);
  int (*setsockopt)(int, int, int, const void *, socklen_t);
  int (*ioctl)(int, unsigned long, ...);
  FILE *(*fdopen)(int, const char *);
  int (*sigaction)(int, const struct sigaction *, struct sigaction *);
  void (*(*signal)(int, void (*)(int)))(int);
  void (*(*bsd_signal)(int, void (*)(int)))(int);
  void (*(*sysv_signal)(int, void (*)(int)))(int);
  void (*(*sigset)(int, void (*)(int)))(int);
  int (*connect)(int, const struct sockaddr *, socklen_t);
  int (*listen)(int, int);
  int (*close)(int);
  int (*close_range)(unsigned, unsigned, int);
  int (*dup)(int);
  int (*dup2)(int, int);
  int (*dup3)(int, int, int);
  int (*fcntl)(int, int, ...);
  ssize_t (*read)(int, void *, size_t);
  ssize_t (*readv)(int, const struct iovec *, int);
  ssize_t (*recv)(int, void *, size_t, int);
  ssize_t (*recvfrom)(int, void *, size_t, int, struct sockaddr *,
                      socklen_t *);
  ssize_t (*recvmsg)(int, struct msghdr *, int);
  ssize_t (*write)(int, const void *, size_t);
  ssize_t (*writev)(int, const struct iovec *, int);
  ssize_t (*send)(int, const void *, size_t, int);
  ssize_t (*sendto)(int, const void *, size_t, int, const struct sockaddr *,
                    socklen_t);
  ssize_t (*sendmsg)(int, const struct msghdr *, int);
  ssize_t (*sendfile)(int, int, off_t *, size_t);
  ssize_t (*splice)(int, loff_t *, int, loff_t *, size_t, unsigned);
  int (*shutdown)(int, int);
  int (*getpeername)(int, struct sockaddr *, socklen_t *);
  int (*poll)(struct pollfd *, nfds_t, int);
  int (*ppoll)(struct pollfd *, nfds_t, const struct timespec *,
               const sigset_t *);
  int (*poll_chk)(struct pollfd *, nfds_t, int, size_t);
  int (*epoll_ctl)(int, int, int, struct epoll_event *);
  int (*epoll_wait)(int, struct epoll_event *, int, int);
  int (*epoll_pwait)(int, struct epoll_event *, int, int, const sigset_t *);
  int (*epoll_pwait2)(int, struct epoll_event *, int, const struct timespec *,
                      const sigset_t *);
  int (*select)(int, fd_set *, fd_set *, fd_set *, struct timeval *);
  int (*pselect)(int, fd_set *, fd_set *, fd_set *, const struct timespec *,
                 const sigset_t *);
  int (*execve)(const char *, char *const[], char *const[]);
  int (*execveat)(int, const char *, char *const[], char *const[], int);
  int (*fexecve)(int, char *const[], char *const[]);
  int (*execvpe)(const char *, char *const[], char *const[]);
  int (*posix_spawn)(pid_t *, const char *, const posix_spawn_file_actions_t *,
                     const posix_spawnattr_t *, char *const[], char *const[]);
  int (*posix_spawnp)(pid_t *, const char *, const posix_spawn_file_actions_t *,
                      const posix_spawnattr_t *, char *const[], char *const[]);
  ssize_t (*read_chk)(int, void *, size_t, size_t);
  ssize_t (*recv_chk)(int, void *, size_t, size_t, int);
  ssize_t (*recvfrom_chk)(int, void *, size_t, size_t, int, struct sockaddr *,
                          socklen_t *);
};

/* Resolves lazily behind a once-guard: resolving in a constructor would run
 * before other libraries are ready and cost every program that never makes a
 * socket. Never leaves a member NULL: an unresolvable symbol falls back to
 * the system call. Also points lib/'s syscall table (sys.h) at libc, so
 * library code called from the shim never re-enters the shim. */
void tfo__libc_resolve(void);
extern struct tfo__libc tfo__libc_table;
extern _Atomic int tfo__libc_ready;

/* Inline, with the once-guard behind a flag: this runs on every call the
 * shim intercepts, and pthread_once costs a call of its own. */
static inline const struct tfo__libc *tfo__libc(void) {
  if (__builtin_expect(
          !atomic_load_explicit(&tfo__libc_ready, memory_order_acquire), 0))
    tfo__libc_resolve();
  return &tfo__libc_table;
}

/* glibc's _FORTIFY_SOURCE entry points, which it does not declare. */
ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen);
ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags);
ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
                       struct sockaddr *sa, socklen_t *len);
int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen);

/* 1 when fd is a TCP stream socket (SO_TYPE and SO_PROTOCOL): the only
 * sockets the shim touches. */
int tfo__shim_is_tcp(int fd);

/* --- configuration ---------------------------------------------------- */

/* The shim's settings, read from the environment once (libtfo_preload.8). */
struct tfo__shim_config {
  int disabled; /* LIBTFO_DISABLE=1: step aside entirely */
  int client;   /* LIBTFO_CLIENT: accelerate outgoing connections */
  int server;   /* LIBTFO_SERVER: give listeners TCP_FASTOPEN */
  int qlen;     /* LIBTFO_QLEN: the TFO queue length given to listeners */
  int stats;    /* LIBTFO_STATS: one summary line at exit */
  struct tfo__ports ports;       /* LIBTFO_PORTS */
  struct tfo__prefixes exclude;  /* LIBTFO_EXCLUDE */
};

#define TFO__SHIM_DEFAULT_QLEN 256

const struct tfo__shim_config *tfo__shim_config(void);

/* --- per-fd state ----------------------------------------------------- */

enum tfo__fd_kind {
  FD_NONE = 0,   /* not ours: every call passes straight through */
  FD_DEFERRED,   /* TFO connect with a cookie: no SYN sent yet */
  FD_RELEASING,  /* one thread is sending the first bytes, or judging */
  FD_SENT,       /* the SYN left; the keeper judges it when it is answered */
};

struct tfo__fd {
  _Atomic int kind;      /* enum tfo__fd_kind */
  /* What the program told us about this descriptor (TFO__KNOW_*, see
   * tfo__fd_known): kept across connections, unlike the rest. */
  _Atomic unsigned know;
  _Atomic uint32_t gen;  /* bumped whenever the entry is reset: the keeper's
                          * events for an older connection are ignored */
  uint64_t sock;         /* the socket's SO_COOKIE: who this entry is for;
                          * 0 until the shim first acts on the socket out
                          * of the program's own calls (tfo__fd_pin) */
  int64_t deferred_at;   /* when connect deferred the SYN (0: it did not) */
  /* Another copy of the socket may send its SYN: a dup (shared), or a
   * fork since connect (fork_gen != tfo__fork_gen). */
  int shared;
  unsigned fork_gen;
  pid_t tid;             /* the thread that connected */
  int cookie_sent;       /* the SYN carries (or will carry) a cookie */
  size_t syn_bytes;      /* data handed over with the SYN */
  socklen_t addrlen;
  struct sockaddr_in6 addr; /* the destination (fits IPv4 too) */
  /* A non-blocking program's first bytes, kept until the server answers,
   * to resend them plainly if the SYN that carried them is reset. */
  char *_Atomic first;
  size_t first_len;
  _Atomic int watched; /* registered with the keeper (counted there) */
  _Atomic int anchor;  /* the keeper's anchor of the held socket, + 1 */
  /* While the SYN is held: the epoll set it was last registered in (+ 1),
   * with what events, and how many waits on that set began since. */
  _Atomic int ep1;
  _Atomic uint32_t ep_events;
  _Atomic int ep_waits;
  /* A non-blocking socket whose TFO SYN is out: when a plain connection
   * takes over in place if it is still unanswered (ms, 0: no race). */
  _Atomic int64_t race_at;
  int race_ms;            /* the fallback delay it was armed with */
  uint32_t rtt_us;        /* the cache's RTT for the destination, 0 unknown */
  _Atomic int restarted;  /* TFO__RESTART_*: connected again plainly;
                           * first bytes resent when its handshake ends */
  _Atomic int resending;  /* a thread is resending them: others wait */
};

/* Why a non-blocking socket was connected again plainly, in place. */
enum {
  TFO__RESTART_RACE = 1, /* its TFO SYN went unanswered (race.c) */
  TFO__RESTART_RESET     /* its data SYN was reset (recover.c) */
};

/* The table: 2^20 fds cover any RLIMIT_NOFILE a system sets by default
 * (an fd past it is simply not accelerated); chunks of 1024 keep a program
 * with a handful of sockets at one small allocation. */
#define TFO__FD_CHUNK_BITS 10
#define TFO__FD_CHUNK_SIZE (1 << TFO__FD_CHUNK_BITS)
#define TFO__FD_MAX (1 << 20)
extern struct tfo__fd *_Atomic tfo__fd_chunks[TFO__FD_MAX / TFO__FD_CHUNK_SIZE];

/* The entry for fd, or NULL when fd is out of range or its chunk was never
 * needed. Cost on the hot path: a bounds check and a load, inline. */
static inline struct tfo__fd *tfo__fd_peek(int fd) {
  struct tfo__fd *c;

  if ((unsigned)fd >= TFO__FD_MAX)
    return NULL;
  c = atomic_load_explicit(&tfo__fd_chunks[fd >> TFO__FD_CHUNK_BITS],
                           memory_order_acquire);
  return c != NULL ? &c[fd & (TFO__FD_CHUNK_SIZE - 1)] : NULL;
}
/* The entry for fd, allocating its chunk; NULL when fd is out of range or
 * memory is short (then the shim steps aside for that fd). */
struct tfo__fd *tfo__fd_get(int fd);
/* Forget fd's connection (it was closed, judged, or connects anew). */
void tfo__fd_clear(int fd);

/* The socket's SO_COOKIE, 0 when fd is not a socket (or the kernel is too
 * old to say: then the entry stays unpinned and is checked by its state). */
uint64_t tfo__sock_cookie(int fd);
/* Records fd's SO_COOKIE in st, if not yet: before the shim hands st to
 * the keeper, which acts on fd outside the program's calls. Called only
 * where fd is known to be st's socket (inside the program's own call on
 * it, or after tfo__fd_same). */
void tfo__fd_pin(int fd, struct tfo__fd *st);
/* 1 when fd still refers to the socket st was recorded for: its SO_COOKIE
 * if pinned, else (a held SYN never handed to the keeper) a TCP socket
 * whose SYN is still held. */
int tfo__fd_same(int fd, const struct tfo__fd *st);
/* 1 when st's held SYN will never leave: its socket, never pinned nor
 * copied, was closed out of our sight (a raw close system call), so fd
 * is no TCP socket now. */
int tfo__fd_lost(int fd, const struct tfo__fd *st);
/* What fd is now, for an entry never pinned: 1 a TCP socket holding its
 * SYN, 0 a TCP socket whose SYN left, -1 no TCP socket at all. */
int tfo__fd_held_state(int fd);

/* What the shim learns from the calls that make and set up a socket
 * (socket.c: socket, setsockopt, ioctl FIONBIO; fcntl F_SETFL), so that
 * connect and the first write ask the kernel nothing: a connection costs
 * the program's own system calls, TCP_FASTOPEN_CONNECT and one tcp_info.
 * Forgotten when the descriptor is closed, copied (the copies share file
 * flags), received, or shared with a forked child; asked of the kernel
 * then (and remembered). Stale knowledge (a close the shim never saw,
 * then a number reused by a call it does not wrap) is caught where it
 * matters: TCP_FASTOPEN_CONNECT fails on anything but a TCP socket, and
 * an EINPROGRESS from a connect taken for blocking is taken for what it
 * says. */
enum {
  TFO__KNOW_VALID = 1u,   /* the rest means something */
  TFO__KNOW_TCP = 2u,     /* an IPv4/IPv6 TCP stream socket */
  TFO__KNOW_NONBLOCK = 4u, /* O_NONBLOCK */
  TFO__KNOW_OWN_TFO = 8u  /* the program set TCP_FASTOPEN_CONNECT itself */
};
/* The fork count the knowledge was taken at sits above the bits. */
#define TFO__KNOW_SHIFT 4
/* st's knowledge (TFO__KNOW_* bits), 0 when none is valid. */
unsigned tfo__fd_known(const struct tfo__fd *st);
/* fd is a new descriptor (socket, accept, socketpair, one received):
 * whatever the table held for the number is stale; know is what is known
 * of it now (0: nothing). Lock-free, so safe in any context. */
void tfo__fd_fresh(int fd, unsigned know);
/* Forget what is known of fd (closed, copied); lock-free. */
void tfo__fd_unlearn(int fd);
/* Sets (on) or clears the bit in fd's knowledge, if it has any. */
void tfo__fd_learn(int fd, unsigned bit, int on);
/* Whether fd is non-blocking: known, or asked (F_GETFL; -1 if that fails). */
int tfo__fd_nonblocking(int fd, const struct tfo__fd *st);
/* The calling thread's id, remembered (gettid is a system call). */
pid_t tfo__tid(void);
void tfo__tid_forget(void);
/* 1 when this thread may be inside one of the program's signal handlers:
 * a signal the program catches is blocked (signal.c). One system call. */
int tfo__maybe_in_handler(void);
/* Set once the program is seen to close sockets behind the shim's back
 * (libuv, node: a raw close system call), or has libuv at load: then a
 * held SYN gets an anchor (keeper.c) at connect. */
extern _Atomic int tfo__raw_closer;
/* fd `to` now refers to the same socket as `from` (dup family). */
void tfo__fd_copy(int from, int to);

/* How many fds are FD_DEFERRED: the poll family skips its scan when none. */
extern _Atomic int tfo__deferred_count;

/* Moves a deferred fd to FD_RELEASING; 1 for the one caller that wins
 * (it then sends the SYN and sets FD_SENT), 0 for everyone else. */
int tfo__fd_claim(struct tfo__fd *st);

/* Sends the SYN of a deferred socket now (zero-length send: cookie, no
 * data) and hands it to the keeper to judge. Idempotent, thread-safe. */
void tfo__fd_release(int fd, struct tfo__fd *st);
/* Calls fn for every deferred fd; the least of its answers >= 0, or -1. */
int tfo__fd_each_deferred(int (*fn)(int fd, struct tfo__fd *st, void *arg),
                          void *arg);
/* The same for every fd armed for the race (race.c). */
int tfo__fd_each_racing(int (*fn)(int fd, struct tfo__fd *st, void *arg),
                        void *arg);
/* tfo__fd_release for every deferred fd (before exec). */
void tfo__fd_release_all(void);

/* How long a deferred socket may hold its SYN for the program's first
 * write: event loops go round once or twice between connect and the first
 * write, and a banner one RTT later hardly notices the delay. */
#define TFO__SHIM_GRACE_MS 25
/* A thread still running when the grace ends (busy, or waiting for a CPU
 * on a loaded machine) keeps its SYN held up to this long. */
#define TFO__SHIM_GRACE_MAX_MS 500

/* CLOCK_MONOTONIC in ms. */
int64_t tfo__shim_now_ms(void);
/* Releases every deferred fd whose grace is over; returns the ms until the
 * next one's ends, or -1 when none is left deferred. */
int tfo__fd_expire(int64_t now);

/* --- the keeper (keeper.c) -------------------------------------------- */

/* Registers the keeper's fork handlers; at load (real.c). */
void tfo__keeper_prepare(void);
/* Forks so far, counted in the parent before each (and so inherited). */
extern _Atomic unsigned tfo__fork_gen;
/* Another copy of st's socket may exist (a dup, or a fork since its
 * connect): only then can its SYN leave behind this entry's back. */
static inline int tfo__fd_maybe_shared(const struct tfo__fd *st) {
  return st->shared || st->fork_gen != atomic_load(&tfo__fork_gen);
}
/* 1 when fd's SYN already left through another copy of the socket (a dup
 * or a forked process's): its first write is then not ours to judge.
 * Asks the kernel only when another copy may exist. */
int tfo__fd_syn_left(int fd, struct tfo__fd *st);
/* 1 when the kernel sent fd's SYN (a held one left out of the table's
 * sight: a signal handler's write inside the shim went straight to libc). */
int tfo__fd_syn_gone(int fd);
/* A SYN is held until deadline (CLOCK_MONOTONIC ms): the keeper is
 * started or woken, unless it will look by then anyway. */
void tfo__keeper_defer(int64_t deadline);
/* fd's SYN left: the keeper judges the connection when its handshake ends.
 * If the keeper cannot run (no thread, no memory), the connection is
 * judged at close, as before it existed. */
void tfo__keeper_watch(int fd, struct tfo__fd *st);
/* The keeper's registration of st (if any) will never be answered for this
 * entry: the socket is closed, or the entry reset. */
void tfo__keeper_forget(struct tfo__fd *st);
/* st's socket was closed out of our sight while the keeper kept a copy
 * (a process that closes with raw system calls): its verdict, through the
 * copy. The caller holds st's verdict (FD_RELEASING). */
void tfo__keeper_settle_kept(struct tfo__fd *st);
/* fd's SYN is now held (st just became FD_DEFERRED): the keeper releases
 * it on time. For a non-blocking socket, or in a process seen closing
 * sockets out of our sight, it also takes an anchor, its own duplicate of
 * the socket, so that such a close (a raw system call: libuv, node)
 * cannot take the socket away before its SYN left and its handshake
 * ended. */
void tfo__keeper_hold(int fd, struct tfo__fd *st);
/* st's held SYN left through the program's descriptor. Its anchor stays
 * until the handshake ends (a close meanwhile then reaches the server
 * after the connection, as without the shim), or goes now with drop set
 * (the connect machine owns the socket from here). */
void tfo__keeper_unhold(struct tfo__fd *st, int drop);
/* fd, whose SYN the shim held back (held: still holds), is being closed
 * by the program before its handshake ended. The keeper keeps its anchor
 * (taken now if there was none): it releases the SYN when its grace ends
 * (unless another copy of the socket wrote first), judges the handshake
 * and then closes it (bounded), so that the server sees the connection
 * and then its close, as it would have without the shim. 0, or -1 when it
 * cannot (the program's close then goes on alone). */
int tfo__keeper_adopt(int fd, struct tfo__fd *st, int held);
/* st's held SYN was lost with its socket (tfo__fd_lost): without the shim
 * the server would have seen a connection and its close, so the keeper
 * makes one, plainly, to the same destination, closed when its handshake
 * ends (its source port differs; an unanchored hold costs nothing, and
 * only a process seen closing sockets out of our sight anchors them). */
void tfo__keeper_surrogate(const struct sockaddr_in6 *addr,
                           socklen_t addrlen);
/* At exit: the connections whose verdict is still to come (held SYNs, the
 * anchors of sockets closed out of our sight) are settled, waiting a
 * bounded time for their handshakes. */
void tfo__keeper_exit(void);

/* What a connection's handshake came to, for the keeper and for close. */
enum tfo__settle {
  TFO__PENDING, /* still in the handshake */
  TFO__SETTLED, /* judged (or nothing to judge): the entry can go */
  TFO__MENDING  /* its data SYN was reset unanswered: recover.c's turn */
};
/* Judges fd's connection from its tcp_info and feeds the cache. A reset
 * unanswered SYN is left to recover.c when kept (its first bytes are
 * kept), else it says the port refused: the destination is forgotten, so
 * the next connect there is not held back. */
enum tfo__settle tfo__settle(int fd, const struct sockaddr_in6 *addr,
                             socklen_t addrlen, int cookie_sent,
                             size_t syn_bytes, int kept);
/* The same, from the tcp_info just read. */
struct tfo__tcpinfo;
enum tfo__settle tfo__settle_known(int fd, const struct tfo__tcpinfo *ti,
                                   const struct sockaddr_in6 *addr,
                                   socklen_t addrlen, int cookie_sent,
                                   size_t syn_bytes, int kept);

/* How many fds keep first bytes: reads skip the check when none does. */
extern _Atomic int tfo__kept_count;

/* How deep this thread is inside the shim. A signal handler that
 * interrupts the shim and calls an intercepted function finds it non-zero
 * and goes straight to libc, so it never waits for a lock its own thread
 * holds (async-signal safety; what the shim does outside of that takes no
 * lock a handler could find held and allocates nothing). initial-exec:
 * read without __tls_get_addr, which may allocate. */
extern _Thread_local int tfo__nested __attribute__((tls_model("initial-exec")));

static inline void tfo__unnest(int *unused) {
  (void)unused;
  tfo__nested--;
}

/* The rest of the enclosing block runs inside the shim: every exported
 * call that does more than pass through starts with
 *   if (tfo__nested) return <libc's call>;  TFO__NEST();  */
#define TFO__NEST()                                                            \
  int tfo__nest_ __attribute__((cleanup(tfo__unnest), unused)) = tfo__nested++

/* Nothing to do for any fd: no SYN held, no first bytes kept. The usual
 * state, so every intercepted read and write checks it first (two loads)
 * and otherwise goes straight to libc; the out-of-line rest checks
 * tfo__nested first. */
static inline int tfo__shim_idle(void) {
  return __builtin_expect(
      (atomic_load_explicit(&tfo__deferred_count, memory_order_relaxed) |
       atomic_load_explicit(&tfo__kept_count, memory_order_relaxed)) == 0,
      1);
}

/* Larger first writes are not kept (a SYN carries at most one MSS). */
#define TFO__SHIM_KEEP_MAX 65536

/* mem.c: memory without malloc (async-signal-safe). Pages: n bytes of
 * zeroed anonymous memory, NULL on failure; freed with the same n. Kept
 * bytes: room for n <= TFO__SHIM_KEEP_MAX bytes, freed by pointer. errno
 * is kept by all four. */
void *tfo__pages_alloc(size_t n);
void tfo__pages_free(void *p, size_t n);
char *tfo__kept_alloc(size_t n);
void tfo__kept_free(char *p);

/* The plain socket s takes the program's descriptor number fd, with fd's
 * O_NONBLOCK and FD_CLOEXEC; s is closed either way. 0, or -1 with errno. */
int tfo__fd_take_place(int fd, int s);

/* Drives c (adopted on the program's fd) to its end for a blocking caller.
 * fl: the program's file flags, restored on every path when the caller
 * made fd non-blocking for the machine (connect), -1 when it did not (a
 * first write sent with MSG_DONTWAIT). 0: fd itself won; 1: a plain
 * connection won and took fd's place (counted as a fallback); -1 with
 * errno (EBADF: the program closed fd meanwhile); -2 when fd's SO_SNDTIMEO
 * ran out first (the race abandoned, fd's own handshake going on, as after
 * a blocking call's timeout). res gets the outcome. */
int tfo__shim_drive(int fd, tfo_conn *c, struct tfo_watch *w, int fl,
                    struct tfo_result *res);

/* Keeps the first n bytes of iov in st (see struct tfo__fd). */
void tfo__fd_keep_first(struct tfo__fd *st, const struct iovec *iov, int cnt,
                        size_t n);
void tfo__fd_drop_first(struct tfo__fd *st);
/* fd's TFO SYN was reset unanswered: connects fd again, plainly, on the
 * same socket (Linux lets a TCP socket whose connect failed connect
 * again), so everything the program attached to it stays: its number,
 * flags, options, bound address, every epoll registration in every set.
 * Then sends resend[0..len) and records the destination as resetting TFO.
 * 0, or -1 with errno (refused plainly too: the port is closed, and the
 * destination is forgotten, no longer seen accepting). */
int tfo__fd_reconnect(int fd, struct tfo__fd *st, const void *resend,
                      size_t len);
/* After a call on fd failed with err: 1 when fd's data SYN had been reset
 * unanswered and fd is now connected plainly (the caller retries), else 0
 * (errno untouched). */
int tfo__fd_recover(int fd, int err);

/* The race for non-blocking programs (race.c). A non-blocking socket's
 * TFO SYN (data, a cookie alone, or a cookie request) is armed when it
 * leaves: if it is still unanswered when the fallback delay ends (3 RTTs,
 * else 250 ms: lib/connect.c's), the socket is connected again, plainly,
 * in place (disconnected with AF_UNSPEC, then connected without
 * TCP_FASTOPEN_CONNECT), so that everything the program attached to it
 * stays: its number, flags, options, bound address, every registration in
 * every epoll set (inherited ones too). Its first bytes, kept, are sent
 * again once the plain handshake ends, before any later write. This runs
 * inside the program's own calls (its waits, reads and writes), so that a
 * single-threaded event loop never sees the socket between the two
 * connects. */
extern _Atomic int tfo__racing_count;
/* Arms the race on st, whose TFO SYN just left, if fd is non-blocking (a
 * blocking program's thread may be inside a call on the socket, which a
 * reconnect would fail; it gets libtfo's race in its connect and first
 * write instead). */
void tfo__fd_arm_race_nb(int fd, struct tfo__fd *st);
void tfo__fd_arm_race(struct tfo__fd *st);
void tfo__fd_disarm_race(struct tfo__fd *st);
/* The judge of a socket connected again plainly (tfo__fd_judge's, st
 * claimed): pending until its handshake ends, then its first bytes are
 * resent and the destination recorded as swallowing TFO SYNs. */
enum tfo__settle tfo__settle_restarted(int fd, struct tfo__fd *st);
/* Sends st's kept first bytes on fd, once, whichever thread comes first;
 * the others wait for it. 0 (sent, or none left), or -1: EAGAIN while the
 * handshake is still on, else the send's error. */
int tfo__fd_resend_first(int fd, struct tfo__fd *st);
/* Starts the plain connection of every armed socket whose delay is over;
 * ms until the next one's ends, -1 when none is armed. */
int tfo__race_due(void);
/* Before the program's own read or write on fd: a due race is run, and the
 * first bytes of a socket connected again are resent (once its handshake
 * ended). 0, or -1 with errno EAGAIN when they could not be yet (the
 * program's write would have failed so too). */
int tfo__fd_before_io(int fd);
/* A wait of the program's, split where a race falls due: the wrapper
 * calls tfo__wait_next before each real wait, with the timeout it gives
 * (ms, -1 none); *own says whether that is the program's own time (then
 * the real wait's answer is the program's), else the race's (then a
 * timeout means: wait again). The program's wait never ends early. */
struct tfo__wait {
  int64_t end; /* CLOCK_MONOTONIC ms, -1 none */
  int timeout;
};
void tfo__wait_start(struct tfo__wait *w, int timeout_ms);
int tfo__wait_next(struct tfo__wait *w, int *own);

/* Judges fd's connection (tfo__settle) if no other thread is at it, and
 * forgets the entry once settled. */
enum tfo__settle tfo__fd_judge(int fd, struct tfo__fd *st);

/* --- statistics (LIBTFO_STATS=1) -------------------------------------- */

struct tfo__shim_stats {
  _Atomic unsigned long attempts, data_acked, cookie_requested,
      data_not_acked, fallbacks, skipped, disabled;
};
extern struct tfo__shim_stats tfo__stats;
/* Counts one connection's outcome in tfo__stats (LIBTFO_STATS). */
void tfo__shim_count(enum tfo_outcome out);
/* LIBTFO_STATS=1: the summary line, once every verdict is in. */
void tfo__shim_report(void);

#endif
