/* libFuzzer harness: the environment parsers (tfo__parse_bool,
 * tfo__parse_long) and the destination filters behind LIBTFO_PORTS and
 * LIBTFO_EXCLUDE (tfo__ports_parse/match, tfo__prefixes_parse/match).
 *
 * Input: byte 0 picks the bounds for tfo__parse_long; the rest is the string
 * (cut at the first NUL), copied to a buffer of its exact size so that any
 * read past the terminator is caught by ASan. Besides "no crash", checks the
 * documented contracts: results within bounds, *p left empty on error, a
 * parsed list matches what it says.
 *
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "env.h"
#include "filter.h"

#define CHECK(c)                                                               \
  do {                                                                         \
    if (!(c))                                                                  \
      __builtin_trap();                                                        \
  } while (0)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  setenv("LIBTFO_LOG", "0", 1);
  return 0;
}

static const long bounds[][2] = {
    {0, 1},       {1, 65535},         {0, 3},         {LONG_MIN, LONG_MAX},
    {-1000, 1000}, {0, LONG_MAX},     {LONG_MIN, 0},  {5, 5},
};

static void check_ports(const char *s) {
  struct tfo__ports p;
  int rc, i;
  unsigned port;

  memset(&p, 0x5a, sizeof(p));
  rc = tfo__ports_parse(s, &p);
  if (rc != 0) {
    CHECK(p.n == 0);
    CHECK(errno == EINVAL || errno == ERANGE);
    return;
  }
  CHECK(p.n >= 0 && p.n <= TFO__FILTER_MAX);
  for (i = 0; i < p.n; i++) {
    CHECK(p.r[i].lo >= 1 && p.r[i].lo <= p.r[i].hi);
    CHECK(tfo__ports_match(&p, p.r[i].lo) == 1);
    CHECK(tfo__ports_match(&p, p.r[i].hi) == 1);
  }
  if (p.n == 0) /* empty list: every port */
    CHECK(tfo__ports_match(&p, 1) == 1 && tfo__ports_match(&p, 65535) == 1);
  for (port = 0; port <= 65535; port += 4099)
    (void)tfo__ports_match(&p, (uint16_t)port);
  (void)tfo__ports_match(&p, 0);
}

static void check_prefixes(const char *s, const uint8_t *raw, size_t rawlen) {
  struct tfo__prefixes p;
  struct sockaddr_in sin;
  struct sockaddr_in6 sin6;
  int rc, i;

  memset(&p, 0x5a, sizeof(p));
  rc = tfo__prefixes_parse(s, &p);
  if (rc != 0) {
    CHECK(p.n == 0);
    CHECK(errno == EINVAL || errno == ERANGE);
    return;
  }
  CHECK(p.n >= 0 && p.n <= TFO__FILTER_MAX);
  for (i = 0; i < p.n; i++) {
    CHECK(p.r[i].family == AF_INET || p.r[i].family == AF_INET6);
    CHECK(p.r[i].bits >= 0 &&
          p.r[i].bits <= (p.r[i].family == AF_INET ? 32 : 128));
    /* The prefix's own address lies in it, and so does its v4-mapped
     * form for an IPv4 prefix. */
    if (p.r[i].family == AF_INET) {
      memset(&sin, 0, sizeof(sin));
      sin.sin_family = AF_INET;
      memcpy(&sin.sin_addr, p.r[i].addr, 4);
      CHECK(tfo__prefixes_match(&p, (struct sockaddr *)&sin, sizeof(sin)));
      memset(&sin6, 0, sizeof(sin6));
      sin6.sin6_family = AF_INET6;
      sin6.sin6_addr.s6_addr[10] = sin6.sin6_addr.s6_addr[11] = 0xff;
      memcpy(sin6.sin6_addr.s6_addr + 12, p.r[i].addr, 4);
      CHECK(tfo__prefixes_match(&p, (struct sockaddr *)&sin6, sizeof(sin6)));
    } else {
      memset(&sin6, 0, sizeof(sin6));
      sin6.sin6_family = AF_INET6;
      memcpy(&sin6.sin6_addr, p.r[i].addr, 16);
      if (!IN6_IS_ADDR_V4MAPPED(&sin6.sin6_addr))
        CHECK(tfo__prefixes_match(&p, (struct sockaddr *)&sin6, sizeof(sin6)));
    }
  }
  /* Addresses taken from the input itself, and short or odd sockaddrs. */
  memset(&sin, 0, sizeof(sin));
  sin.sin_family = AF_INET;
  memcpy(&sin.sin_addr, raw, rawlen < 4 ? rawlen : 4);
  (void)tfo__prefixes_match(&p, (struct sockaddr *)&sin, sizeof(sin));
  (void)tfo__prefixes_match(&p, (struct sockaddr *)&sin, sizeof(sin) - 1);
  memset(&sin6, 0, sizeof(sin6));
  sin6.sin6_family = AF_INET6;
  memcpy(&sin6.sin6_addr, raw, rawlen < 16 ? rawlen : 16);
  (void)tfo__prefixes_match(&p, (struct sockaddr *)&sin6, sizeof(sin6));
  (void)tfo__prefixes_match(&p, (struct sockaddr *)&sin6, 8);
  sin6.sin6_family = AF_UNIX;
  (void)tfo__prefixes_match(&p, (struct sockaddr *)&sin6, sizeof(sin6));
  (void)tfo__prefixes_match(&p, NULL, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const long *b;
  size_t n;
  char *s;
  long v;
  int bv;

  if (size < 1)
    return 0;
  b = bounds[data[0] % (sizeof(bounds) / sizeof(bounds[0]))];
  data++;
  size--;
  n = strnlen((const char *)data, size);
  s = malloc(n + 1);
  if (s == NULL)
    return 0;
  memcpy(s, data, n);
  s[n] = '\0';

  if (tfo__parse_bool(s, &bv) == 0)
    CHECK(bv == 0 || bv == 1);
  v = 0x5a5a;
  if (tfo__parse_long(s, b[0], b[1], &v) == 0) {
    CHECK(v >= b[0] && v <= b[1]);
    CHECK(v == strtol(s, NULL, 10));
  } else {
    CHECK(v == 0x5a5a); /* untouched on error */
    CHECK(errno == EINVAL || errno == ERANGE);
  }
  check_ports(s);
  check_prefixes(s, data + n, size - n);
  free(s);
  return 0;
}
