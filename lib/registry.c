/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>

#include "registry.h"
#include "sys.h"

struct entry {
  uint64_t cookie; /* 0: free */
  enum tfo_outcome outcome;
};

static struct entry table[TFO__REGISTRY_SIZE];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t cookie_of(int fd) {
  uint64_t c = 0;
  socklen_t len = sizeof(c);

  if (tfo__sys.getsockopt(fd, SOL_SOCKET, SO_COOKIE, &c, &len) != 0)
    return 0;
  return c;
}

void tfo__registry_put(int fd, enum tfo_outcome outcome) {
  uint64_t c = cookie_of(fd);
  sigset_t old;
  int saved = errno;

  if (c == 0)
    return;
  tfo__signals_block(&old);
  /* Direct-mapped: a collision overwrites, which forgets an old answer and
   * can never give a wrong one (the cookie is compared on lookup). */
  pthread_mutex_lock(&lock);
  table[c % TFO__REGISTRY_SIZE].cookie = c;
  table[c % TFO__REGISTRY_SIZE].outcome = outcome;
  pthread_mutex_unlock(&lock);
  tfo__signals_restore(&old);
  errno = saved;
}

int tfo__registry_get(int fd, enum tfo_outcome *outcome) {
  uint64_t c = cookie_of(fd);
  int found = 0;

  if (c == 0) {
    errno = ENOENT;
    return -1;
  }
  pthread_mutex_lock(&lock);
  if (table[c % TFO__REGISTRY_SIZE].cookie == c) {
    *outcome = table[c % TFO__REGISTRY_SIZE].outcome;
    found = 1;
  }
  pthread_mutex_unlock(&lock);
  if (!found) {
    errno = ENOENT;
    return -1;
  }
  return 0;
}
