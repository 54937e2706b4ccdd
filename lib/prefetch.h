/* The policy of a cookie prefetch (tfo_cookie_prefetch.3), shared by
 * libtfo's blocking call (cookie.c) and libtfo-uv's (uv/prefetch.c).
 *
 * Static inline over the public API only: libtfo-uv links libtfo.so, whose
 * internals are hidden, so this one source is compiled into both. The
 * handshake itself is tfo_conn's (race, judge, negative cache).
 *
 * SPDX-License-Identifier: MIT */
#ifndef TFO_PREFETCH_H
#define TFO_PREFETCH_H

#include <errno.h>
#include <string.h>

#include "tfo.h"

/* Long enough for the kernel's SYN retransmissions at 1 s and 3 s; the
 * race settles a blackholed path much sooner. */
#define TFO__PREFETCH_TIMEOUT_MS 3000

static inline int tfo__prefetch_skipped(const struct sockaddr *addr,
                                        socklen_t addrlen) {
  struct tfo_cache_entry e;

  return tfo_cache_lookup(addr, addrlen, &e) == 0 && e.skip;
}

/* Before any packet. 1: a cookie is held already, nothing to do (a held
 * cookie is proven by the next real connection; refreshing it would cost
 * a connection and learn nothing). 0: go ahead with *o. -1 with errno:
 * bad input, the kernel unreadable, or ENOPROTOOPT when the negative
 * cache skips TFO for addr (a cookie request would be dropped again). */
static inline int tfo__prefetch_begin(const struct sockaddr *addr,
                                      socklen_t addrlen, int timeout_ms,
                                      struct tfo_connect_opts *o) {
  struct tfo_cookie_info info;

  if (timeout_ms < 0 || o == NULL) {
    errno = EINVAL;
    return -1;
  }
  if (tfo_cookie_lookup(addr, addrlen, &info) != 0)
    return -1;
  if (info.held)
    return 1;
  if (tfo__prefetch_skipped(addr, addrlen)) {
    errno = ENOPROTOOPT;
    return -1;
  }
  memset(o, 0, sizeof(*o));
  o->timeout_ms = timeout_ms > 0 ? timeout_ms : TFO__PREFETCH_TIMEOUT_MS;
  return 0;
}

/* After the handshake (err: its errno, 0 when it connected; r: its result
 * then): 1, 0 or -1 with errno, as tfo_cookie_prefetch returns. The cookie
 * cache is the answer: the kernel stores a granted cookie as the SYN-ACK
 * arrives, before the connect completes. */
static inline int tfo__prefetch_end(const struct sockaddr *addr,
                                    socklen_t addrlen, int err,
                                    const struct tfo_result *r) {
  struct tfo_cookie_info info;

  if (err != 0) {
    errno = err;
    return -1;
  }
  switch (r->outcome) {
    case TFO_OUTCOME_DISABLED:
      errno = EOPNOTSUPP;
      return -1;
    case TFO_OUTCOME_SKIPPED:
      errno = ENOPROTOOPT;
      return -1;
    default:
      break;
  }
  if (tfo_cookie_lookup(addr, addrlen, &info) != 0)
    return -1;
  if (info.held)
    return 1;
  /* A plain SYN won the race: when the judge found the path drops TFO
   * SYNs it is now skipped; a merely slow answer is "no cookie". */
  if (r->outcome == TFO_OUTCOME_FALLBACK &&
      tfo__prefetch_skipped(addr, addrlen)) {
    errno = ENOPROTOOPT;
    return -1;
  }
  return 0;
}

#endif
