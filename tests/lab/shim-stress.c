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
 * held) and a child that execs /bin/true with such an fd open. Prints
 * "ok=N errors=N" and exits 1 on any error.
 * SPDX-License-Identifier: MIT */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <arpa/inet.h>
#include <errno.h>
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

static int open_conn(void) {
  struct timeval tv = {5, 0};
  int s = socket(dst.ss_family, SOCK_STREAM, 0);

  if (s < 0)
    return -1;
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (connect(s, (struct sockaddr *)&dst, dstlen) != 0) {
    close(s);
    return -1;
  }
  return s;
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
  if (pid == 0)
    _exit(exchange(fd, 100) == 0 ? 0 : 1);
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

  if (argc != 5 && argc != 6) {
    fprintf(stderr,
            "usage: shim-stress HOST PORT THREADS CONNS [FORK_EVERY]\n");
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
  for (t = 0; t < threads; t++)
    if (pthread_create(&th[t], NULL, worker, (void *)t) != 0)
      return 1;
  for (t = 0; t < threads; t++)
    pthread_join(th[t], NULL);
  printf("ok=%d errors=%d\n", atomic_load(&ok), atomic_load(&errors));
  return atomic_load(&errors) == 0 ? 0 : 1;
}
