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
 * A writer empties the cookie, writes the outcome, then the cookie; a
 * reader takes the outcome only between two equal reads of the cookie it
 * wants. Cookies are never reused, so that suffices. */
struct entry {
  _Atomic uint64_t cookie; /* 0: free (or being written) */
  _Atomic int outcome;     /* enum tfo_outcome */
};

static struct entry table[TFO__REGISTRY_SIZE];

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
  struct entry *e;

  errno = saved;
  if (c == 0)
    return;
  /* Direct-mapped: a collision overwrites, which forgets an old answer and
   * can never give a wrong one (the cookie is compared on lookup). */
  e = &table[c % TFO__REGISTRY_SIZE];
  atomic_store(&e->cookie, 0);
  atomic_store(&e->outcome, (int)outcome);
  atomic_store(&e->cookie, c);
}

int tfo__registry_get(int fd, enum tfo_outcome *outcome) {
  uint64_t c = cookie_of(fd);
  struct entry *e;
  int o;

  if (c != 0) {
    e = &table[c % TFO__REGISTRY_SIZE];
    if (atomic_load(&e->cookie) == c) {
      o = atomic_load(&e->outcome);
      if (atomic_load(&e->cookie) == c) {
        *outcome = (enum tfo_outcome)o;
        return 0;
      }
    }
  }
  errno = ENOENT;
  return -1;
}
