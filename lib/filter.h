/* Which destinations to accelerate: LIBTFO_PORTS and LIBTFO_EXCLUDE.
 * SPDX-License-Identifier: MIT */
#ifndef TFO_FILTER_H
#define TFO_FILTER_H

#include <stdint.h>
#include <sys/socket.h>

/* A fixed bound keeps parsing allocation-free (it runs inside programs that
 * never asked for us) and no sane list is longer. */
#define TFO__FILTER_MAX 64

struct tfo__ports {
  int n; /* 0: every port */
  struct {
    uint16_t lo, hi;
  } r[TFO__FILTER_MAX];
};

struct tfo__prefixes {
  int n;
  struct {
    int family; /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    int bits;
  } r[TFO__FILTER_MAX];
};

/* "80,443,8000-8100" (commas or blanks between items). 0, or -1 with
 * EINVAL (malformed, port 0, lo > hi) or ERANGE (too many items); *p is
 * left empty on error. */
int tfo__ports_parse(const char *s, struct tfo__ports *p);
int tfo__ports_match(const struct tfo__ports *p, uint16_t port);

/* "10.0.0.0/8, 2001:db8::/32 192.0.2.1" (a bare address is a /32 or /128).
 * Same errors as tfo__ports_parse. */
int tfo__prefixes_parse(const char *s, struct tfo__prefixes *p);
/* 1 if sa (IPv4, IPv6, or v4-mapped IPv6) lies in one of the prefixes. */
int tfo__prefixes_match(const struct tfo__prefixes *p,
                        const struct sockaddr *sa, socklen_t len);

#endif
