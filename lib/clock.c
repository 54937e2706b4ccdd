/* The cache's only way to the clock. It lives apart from cache.c, where
 * tfo__now_ms is defined, so the call below is an undefined reference in
 * this object: tests linked with -Wl,--wrap=tfo__now_ms then get their own
 * clock (a call inside cache.o itself would never be wrapped).
 *
 * SPDX-License-Identifier: MIT */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "cache.h"

int64_t tfo__cache_clock_ms(void) {
  return tfo__now_ms();
}
