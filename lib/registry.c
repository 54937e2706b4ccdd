/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

#include "registry.h"
#include "sys.h"

/* Lock-free, so that neither a thread nor a signal handler ever waits
 * here (and no signal mask is changed: two system calls a connection).
 * One word per slot, the socket's cookie and its outcome together, so a
 * reader gets a pair one writer wrote. Cookies are counted up from 1 by
 * the kernel and never reused: they never reach 2^60. */
#define OUTCOME_BITS 4

static _Atomic uint64_t table[TFO__REGISTRY_SIZE];

static uint64_t cookie_of(int fd) {
  uint64_t c = 0;
  socklen_t len = sizeof(c);

  if (tfo__sys.getsockopt(fd, SOL_SOCKET, SO_COOKIE, &c, &len) != 0)
    return 0;
  return c;
}

void tfo__registry_put(int fd, enum tfo_outcome outcome) {
  int saved = errno;
  uint64_t c = cookie_of(fd);

  errno = saved;
  if (c == 0 || c >> (64 - OUTCOME_BITS) != 0)
    return;
  /* Direct-mapped: a collision overwrites, which forgets an old answer and
   * can never give a wrong one (the cookie is compared on lookup). */
  atomic_store(&table[c % TFO__REGISTRY_SIZE],
               c << OUTCOME_BITS | ((uint64_t)outcome & 0xf));
}

int tfo__registry_get(int fd, enum tfo_outcome *outcome) {
  uint64_t c = cookie_of(fd), w;

  if (c != 0) {
    w = atomic_load(&table[c % TFO__REGISTRY_SIZE]);
    if (w >> OUTCOME_BITS == c) {
      *outcome = (enum tfo_outcome)(w & 0xf);
      return 0;
    }
  }
  errno = ENOENT;
  return -1;
}
