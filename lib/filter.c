/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "env.h"
#include "filter.h"

/* Splits s at commas and blanks; calls item() on each non-empty token. */
static int each_item(const char *s, int (*item)(const char *tok, void *arg),
                     void *arg) {
  char tok[64];
  size_t n;

  if (s == NULL) {
    errno = EINVAL;
    return -1;
  }
  while (*s != '\0') {
    n = strcspn(s, ", \t");
    if (n >= sizeof(tok)) {
      errno = EINVAL;
      return -1;
    }
    if (n > 0) {
      memcpy(tok, s, n);
      tok[n] = '\0';
      if (item(tok, arg) != 0)
        return -1;
    }
    s += n;
    if (*s != '\0')
      s++;
  }
  return 0;
}

static int port_item(const char *tok, void *arg) {
  struct tfo__ports *p = arg;
  char lo[16];
  const char *dash = strchr(tok, '-');
  long a, b;

  if (p->n == TFO__FILTER_MAX) {
    errno = ERANGE;
    return -1;
  }
  if (dash != NULL) {
    if ((size_t)(dash - tok) >= sizeof(lo)) {
      errno = EINVAL;
      return -1;
    }
    memcpy(lo, tok, (size_t)(dash - tok));
    lo[dash - tok] = '\0';
    if (tfo__parse_long(lo, 1, 65535, &a) != 0 ||
        tfo__parse_long(dash + 1, 1, 65535, &b) != 0 || a > b) {
      errno = EINVAL;
      return -1;
    }
  } else {
    if (tfo__parse_long(tok, 1, 65535, &a) != 0) {
      errno = EINVAL;
      return -1;
    }
    b = a;
  }
  p->r[p->n].lo = (uint16_t)a;
  p->r[p->n].hi = (uint16_t)b;
  p->n++;
  return 0;
}

int tfo__ports_parse(const char *s, struct tfo__ports *p) {
  memset(p, 0, sizeof(*p));
  if (each_item(s, port_item, p) != 0) {
    p->n = 0;
    return -1;
  }
  return 0;
}

int tfo__ports_match(const struct tfo__ports *p, uint16_t port) {
  int i;

  if (p->n == 0)
    return 1;
  for (i = 0; i < p->n; i++)
    if (port >= p->r[i].lo && port <= p->r[i].hi)
      return 1;
  return 0;
}

static int prefix_item(const char *tok, void *arg) {
  struct tfo__prefixes *p = arg;
  char addr[64];
  const char *slash = strchr(tok, '/');
  size_t n = slash != NULL ? (size_t)(slash - tok) : strlen(tok);
  long bits;
  int family, max;

  if (p->n == TFO__FILTER_MAX) {
    errno = ERANGE;
    return -1;
  }
  memcpy(addr, tok, n);
  addr[n] = '\0';
  family = strchr(addr, ':') != NULL ? AF_INET6 : AF_INET;
  max = family == AF_INET ? 32 : 128;
  memset(p->r[p->n].addr, 0, sizeof(p->r[p->n].addr));
  if (inet_pton(family, addr, p->r[p->n].addr) != 1) {
    errno = EINVAL;
    return -1;
  }
  bits = max;
  if (slash != NULL && tfo__parse_long(slash + 1, 0, max, &bits) != 0) {
    errno = EINVAL;
    return -1;
  }
  p->r[p->n].family = family;
  p->r[p->n].bits = (int)bits;
  p->n++;
  return 0;
}

int tfo__prefixes_parse(const char *s, struct tfo__prefixes *p) {
  memset(p, 0, sizeof(*p));
  if (each_item(s, prefix_item, p) != 0) {
    p->n = 0;
    return -1;
  }
  return 0;
}

static int in_prefix(const uint8_t *a, const uint8_t *net, int bits) {
  int full = bits / 8, rest = bits % 8;

  if (memcmp(a, net, (size_t)full) != 0)
    return 0;
  if (rest == 0)
    return 1;
  return ((a[full] ^ net[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

int tfo__prefixes_match(const struct tfo__prefixes *p,
                        const struct sockaddr *sa, socklen_t len) {
  const uint8_t *a;
  int family, i;

  if (sa == NULL)
    return 0;
  if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
    family = AF_INET;
    a = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
  } else if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
    const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;

    /* A v4-mapped destination is an IPv4 one for the user's rules. */
    family = IN6_IS_ADDR_V4MAPPED(a6) ? AF_INET : AF_INET6;
    a = family == AF_INET ? a6->s6_addr + 12 : a6->s6_addr;
  } else {
    return 0;
  }
  for (i = 0; i < p->n; i++)
    if (p->r[i].family == family && in_prefix(a, p->r[i].addr, p->r[i].bits))
      return 1;
  return 0;
}
