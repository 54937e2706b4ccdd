/* shim-stress: many threads, many connections, fd churn and forks, for
 * running under libtfo_preload.so (test-shim-stress.sh).
 *
 *   shim-stress HOST PORT THREADS CONNS [FORK_EVERY]
 *
 * Each thread makes CONNS connections to a lab-server. Every connection
 * moves to another fd before its first write (dup, dup2, dup3 or
 * fcntl(F_DUPFD_CLOEXEC), the original closed), sends a request of a
 * varying size and checks the "OK <n>" answer. Thread 0 also forks after
 * every FORK_EVERY-th connection (25; 0: never): a child that finishes a
 * connection its parent made (the fd inherited while the SYN may still be
 * held), a child that execs /bin/true with such an fd open, and a vfork()
 * child that does the same (the parent then uses the fd). Prints
 * "ok=N errors=N" and exits 1 on any error.
 *
 *   shim-stress -s HOST PORT THREADS CONNS [FORK_EVERY]
 *
 * The same with signals (issue 14): thread 0 is the main thread, and a
 * SIGALRM every 1 ms runs a handler that does a whole exchange of its own
 * (socket, connect, write, read, close: async-signal-safe calls only) on
 * whichever thread it lands (skipped when the last one ended less than
 * 1 ms before). Adds "handled=N handler_errors=N".
 * SPDX-License-Identifier: MIT */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_storage dst;
static socklen_t dstlen;
static int conns;
static int fork_every = 25;
static atomic_int ok, errors;

static void fail(const char *what, long i) {
  fprintf(stderr, "shim-stress: %s (connection %ld): %s\n", what, i,
          strerror(errno));
  atomic_fetch_add(&errors, 1);
}

/* A connect interrupted by a signal goes on in the kernel (it is never
 * restarted): wait for its end. Async-signal-safe. */
static int connect_done(int s) {
  struct pollfd p = {s, POLLOUT, 0};
  socklen_t len = sizeof(int);
  int err = 0, r;

  if (connect(s, (struct sockaddr *)&dst, dstlen) == 0)
    return 0;
  if (errno != EINTR)
    return -1;
  while ((r = poll(&p, 1, 5000)) < 0 && errno == EINTR)
    ;
  if (r != 1 || getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
    return -1;
  errno = err;
  return err == 0 ? 0 : -1;
}

static int open_conn(void) {
  struct timeval tv = {5, 0};
  int s = socket(dst.ss_family, SOCK_STREAM, 0);

  if (s < 0)
    return -1;
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (connect_done(s) != 0) {
    close(s);
    return -1;
  }
  return s;
}

/* --- the signal handler's exchange (-s) ------------------------------ */
static atomic_int handled, handler_errors, handler_stage, handler_errno;
static _Atomic long long handler_end; /* ns, CLOCK_MONOTONIC */

static void on_alarm(int sig) {
  static const char req[] = "signal\n", want[] = "OK 7\n";
  struct timeval tv = {5, 0};
  char buf[16];
  size_t off = 0;
  ssize_t r;
  int s, saved = errno, good = 0, stage = 1;
  struct timespec now;

  (void)sig;
  /* At most half the time in handlers: a handler that takes longer than
   * the timer's period (a sanitizer build) would starve its thread, whose
   * own half-sent request the server then gives up on. */
  clock_gettime(CLOCK_MONOTONIC, &now);
  if (now.tv_sec * 1000000000LL + now.tv_nsec - atomic_load(&handler_end) <
      1000000) {
    errno = saved;
    return;
  }
  s = socket(dst.ss_family, SOCK_STREAM, 0);
  if (s >= 0) {
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    stage = 2;
    /* EINTR happens here too, plainly (seen once in a few runs): handled
     * as a careful program does. */
    if (connect_done(s) == 0 &&
        (stage = 3, write(s, req, sizeof(req) - 1)) ==
            (ssize_t)(sizeof(req) - 1)) {
      stage = 4;
      errno = 0; /* 0 after the loop: the server closed (EOF) */
      while (off < sizeof(want) - 1 &&
             ((r = read(s, buf + off, sizeof(buf) - off)) > 0 ||
              (r < 0 && errno == EINTR)))
        off += r > 0 ? (size_t)r : 0;
      good = off == sizeof(want) - 1 && memcmp(buf, want, off) == 0;
      if (!good && off > 0)
        stage = 5;
    }
    close(s);
  }
  if (!good) { /* said at the end: stdio is not for handlers */
    atomic_store(&handler_stage, stage);
    atomic_store(&handler_errno, errno);
  }
  atomic_fetch_add(good ? &handled : &handler_errors, 1);
  clock_gettime(CLOCK_MONOTONIC, &now);
  atomic_store(&handler_end, now.tv_sec * 1000000000LL + now.tv_nsec);
  errno = saved;
}

static int start_alarm(void) {
  struct sigaction sa;
  struct itimerval it = {{0, 1000}, {0, 1000}};

  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_alarm;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  return sigaction(SIGALRM, &sa, NULL) == 0 &&
                 setitimer(ITIMER_REAL, &it, NULL) == 0
             ? 0
             : -1;
}

static void stop_alarm(void) {
  struct itimerval off = {{0, 0}, {0, 0}};

  setitimer(ITIMER_REAL, &off, NULL);
  signal(SIGALRM, SIG_IGN);
}

/* Sends n bytes ending in '\n' and checks the answer. 0 or -1. */
static int exchange(int fd, size_t n) {
  char buf[4096], want[32];
  size_t off = 0;
  ssize_t r;

  memset(buf, 'a', sizeof(buf));
  if (n > sizeof(buf))
    n = sizeof(buf);
  buf[n - 1] = '\n';
  while (off < n) {
    r = write(fd, buf + off, n - off);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return -1;
    off += (size_t)r;
  }
  snprintf(want, sizeof(want), "OK %zu\n", n);
  off = 0;
  while (off < strlen(want)) {
    r = read(fd, buf + off, sizeof(buf) - 1 - off);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return -1;
    off += (size_t)r;
  }
  buf[off] = '\0';
  if (strcmp(buf, want) != 0) {
    /* Said here: the server's count tells lost or doubled bytes. */
    buf[strcspn(buf, "\n")] = '\0';
    fprintf(stderr, "shim-stress: fd %d: answer \"%.40s\", want \"OK %zu\"\n",
            fd, buf, n);
    errno = EPROTO;
    return -1;
  }
  return 0;
}

/* Moves fd to another number in one of four ways; closes the original. */
static int churn(int fd, long i, int spare) {
  int d;

  switch (i % 4) {
    case 0:
      d = dup(fd);
      break;
    case 1:
      d = dup2(fd, spare);
      break;
    case 2:
      d = dup3(fd, spare, O_CLOEXEC);
      break;
    default:
      d = fcntl(fd, F_DUPFD_CLOEXEC, 200);
      break;
  }
  if (d >= 0 && d != fd)
    close(fd);
  return d;
}

static void fork_children(long i) {
  pid_t pid;
  int fd, status;

  /* A child finishes what its parent connected. */
  fd = open_conn();
  if (fd < 0) {
    fail("connect before fork", i);
    return;
  }
  pid = fork();
  if (pid == 0) {
    stop_alarm(); /* the timer is not inherited; a pending signal may be */
    _exit(exchange(fd, 100) == 0 ? 0 : 1);
  }
  close(fd);
  if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
      WEXITSTATUS(status) != 0)
    fail("child's exchange on an inherited fd", i);
  else
    atomic_fetch_add(&ok, 1);

  /* exec with a connected, unwritten fd open: the shim must not leave a
   * held SYN behind (the server sees the connection and its end). */
  fd = open_conn();
  if (fd < 0) {
    fail("connect before exec", i);
    return;
  }
  pid = fork();
  if (pid == 0) {
    execl("/bin/true", "true", (char *)NULL);
    _exit(127);
  }
  close(fd);
  if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
      WEXITSTATUS(status) != 0)
    fail("exec with a held fd", i);
  else
    atomic_fetch_add(&ok, 1);

  /* The same from a vfork() child, which shares our memory until it
   * execs: the shim's execl may not allocate there. Signals stay blocked
   * meanwhile (a handler must not run on the borrowed stack). */
  fd = open_conn();
  if (fd < 0) {
    fail("connect before vfork", i);
    return;
  }
  {
    sigset_t all, old;

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid = vfork();
    if (pid == 0) {
      execl("/bin/true", "true", (char *)NULL);
      _exit(127);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
  }
  if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
      WEXITSTATUS(status) != 0)
    fail("vfork and exec with a held fd", i);
  else if (exchange(fd, 200) != 0)
    fail("exchange after a vfork child's exec", i);
  else
    atomic_fetch_add(&ok, 2);
  close(fd);
}

static void *worker(void *arg) {
  long t = (long)arg, i;
  int spare = 100 + (int)t; /* each thread's own dup2 target */
  int fd, d;

  for (i = 0; i < conns; i++) {
    fd = open_conn();
    if (fd < 0) {
      fail("connect", i);
      continue;
    }
    d = churn(fd, i + t, spare);
    if (d < 0) {
      fail("dup", i);
      close(fd);
      continue;
    }
    if (exchange(d, (size_t)(1 + (i * 37 + t) % 3000)) != 0)
      fail("exchange", i);
    else
      atomic_fetch_add(&ok, 1);
    close(d);
    if (t == 0 && fork_every > 0 && i % fork_every == 0)
      fork_children(i);
  }
  return NULL;
}

int main(int argc, char **argv) {
  struct sockaddr_in *a4 = (struct sockaddr_in *)&dst;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&dst;
  pthread_t th[256];
  long threads, t;
  int sig = 0;

  if (argc > 1 && strcmp(argv[1], "-s") == 0) {
    sig = 1;
    argv++;
    argc--;
  }
  if (argc != 5 && argc != 6) {
    fprintf(stderr,
            "usage: shim-stress [-s] HOST PORT THREADS CONNS [FORK_EVERY]\n");
    return 2;
  }
  memset(&dst, 0, sizeof(dst));
  if (inet_pton(AF_INET, argv[1], &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)atoi(argv[2]));
    dstlen = sizeof(*a4);
  } else if (inet_pton(AF_INET6, argv[1], &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((uint16_t)atoi(argv[2]));
    dstlen = sizeof(*a6);
  } else {
    fprintf(stderr, "shim-stress: bad address %s\n", argv[1]);
    return 2;
  }
  threads = atol(argv[3]);
  conns = atoi(argv[4]);
  if (argc == 6)
    fork_every = atoi(argv[5]);
  if (threads < 1 || threads > 256 || conns < 1 || fork_every < 0)
    return 2;
  if (!sig) {
    for (t = 0; t < threads; t++)
      if (pthread_create(&th[t], NULL, worker, (void *)t) != 0)
        return 1;
    for (t = 0; t < threads; t++)
      pthread_join(th[t], NULL);
    printf("ok=%d errors=%d\n", atomic_load(&ok), atomic_load(&errors));
    return atomic_load(&errors) == 0 ? 0 : 1;
  }
  if (start_alarm() != 0) {
    perror("shim-stress: SIGALRM timer");
    return 1;
  }
  for (t = 1; t < threads; t++)
    if (pthread_create(&th[t], NULL, worker, (void *)t) != 0)
      return 1;
  worker((void *)0);
  for (t = 1; t < threads; t++)
    pthread_join(th[t], NULL);
  stop_alarm();
  if (atomic_load(&handler_errors) > 0)
    fprintf(stderr, "shim-stress: a handler's exchange failed at %s: %s\n",
            (const char *[]){"", "socket", "connect", "write", "read",
                             "a wrong answer"}[atomic_load(&handler_stage)],
            atomic_load(&handler_errno) == 0
                ? "EOF"
                : strerror(atomic_load(&handler_errno)));
  printf("ok=%d errors=%d handled=%d handler_errors=%d\n", atomic_load(&ok),
         atomic_load(&errors), atomic_load(&handled),
         atomic_load(&handler_errors));
  return atomic_load(&errors) == 0 && atomic_load(&handler_errors) == 0 ? 0 : 1;
}
