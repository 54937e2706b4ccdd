/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "env.h"
#include "log.h"

int tfo__parse_bool(const char *s, int *out) {
  static const char *const yes[] = {"1", "yes", "true", "on"};
  static const char *const no[] = {"0", "no", "false", "off"};
  size_t i;

  if (s == NULL || out == NULL) {
    errno = EINVAL;
    return -1;
  }
  for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
    if (strcasecmp(s, yes[i]) == 0) {
      *out = 1;
      return 0;
    }
    if (strcasecmp(s, no[i]) == 0) {
      *out = 0;
      return 0;
    }
  }
  errno = EINVAL;
  return -1;
}

int tfo__parse_long(const char *s, long min, long max, long *out) {
  char *end;
  long v;

  if (s == NULL || out == NULL || *s == '\0') {
    errno = EINVAL;
    return -1;
  }
  /* strtol accepts leading blanks and signs; we accept only what a user
   * would write, so "  5" or "+5" or "5x" are all rejected. */
  if (!(*s == '-' || (*s >= '0' && *s <= '9'))) {
    errno = EINVAL;
    return -1;
  }
  errno = 0;
  v = strtol(s, &end, 10);
  if (*end != '\0' || end == s || (*s == '-' && end == s + 1)) {
    errno = EINVAL;
    return -1;
  }
  if (errno == ERANGE || v < min || v > max) {
    errno = ERANGE;
    return -1;
  }
  *out = v;
  return 0;
}

int tfo__env_bool(const char *name, int def) {
  const char *s = getenv(name);
  int saved = errno;
  int v;

  if (s == NULL || *s == '\0')
    return def;
  if (tfo__parse_bool(s, &v) != 0) {
    tfo__log(TFO__LOG_ERROR, "ignoring %s='%.64s': expected 0 or 1", name, s);
    v = def;
  }
  errno = saved;
  return v;
}

long tfo__env_long(const char *name, long min, long max, long def) {
  const char *s = getenv(name);
  int saved = errno;
  long v;

  if (s == NULL || *s == '\0')
    return def;
  if (tfo__parse_long(s, min, max, &v) != 0) {
    tfo__log(TFO__LOG_ERROR, "ignoring %s='%.64s': expected a number in %ld..%ld",
             name, s, min, max);
    v = def;
  }
  errno = saved;
  return v;
}
