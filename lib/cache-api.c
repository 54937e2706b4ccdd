/* The public face of the negative cache; the policy lives in cache.c.
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "cache.h"
#include "connect.h"
#include "tfo.h"

/* The public and internal event numbers are one list. */
_Static_assert((int)TFO_EVENT_DATA_ACKED == (int)TFO__EV_DATA_ACKED &&
                   (int)TFO_EVENT_RESET == (int)TFO__EV_RESET,
               "public and internal cache events differ");

int tfo_cache_configure(const char *path) {
  return tfo__cache_configure(path);
}

int tfo_cache_lookup(const struct sockaddr *addr, socklen_t addrlen,
                     struct tfo_cache_entry *entry) {
  struct tfo__verdict v;

  if (entry == NULL) {
    errno = EINVAL;
    return -1;
  }
  if (tfo__check_addr(addr, addrlen) != 0 ||
      tfo__cache_lookup(addr, addrlen, &v) != 0)
    return -1;
  memset(entry, 0, sizeof(*entry));
  entry->skip = v.skip;
  entry->last = (enum tfo_cache_event)v.last;
  entry->failures = v.failures;
  entry->rtt_us = v.rtt_us;
  entry->expires_ms = v.expires_ms;
  return 0;
}

int tfo_cache_forget(const struct sockaddr *addr, socklen_t addrlen) {
  if (tfo__check_addr(addr, addrlen) != 0)
    return -1;
  return tfo__cache_forget(addr, addrlen);
}

int tfo_cache_clear(void) {
  return tfo__cache_clear();
}

const char *tfo_cache_event_str(enum tfo_cache_event event) {
  switch (event) {
    case TFO_EVENT_DATA_ACKED:
      return "data-acked";
    case TFO_EVENT_COOKIE_GRANTED:
      return "cookie-granted";
    case TFO_EVENT_NO_COOKIE:
      return "no-cookie";
    case TFO_EVENT_DATA_NOT_ACKED:
      return "data-not-acked";
    case TFO_EVENT_BLACKHOLE:
      return "blackhole";
    case TFO_EVENT_RESET:
      return "reset";
  }
  return "unknown";
}
