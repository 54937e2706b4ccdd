/* cookie-helper: tfo_cookie_lookup and tfo_cookie_prefetch from the
 * command line, for tests/lab/test-cookies.sh.
 *
 *   cookie-helper lookup ADDR
 *       held=1 cookie_len=8 mss=1460 syn_drops=0 rtt_us=50123 source=...
 *   cookie-helper prefetch ADDR PORT [TIMEOUT_MS]
 *       rc=1 errno=0 ms=50.3   (errno as a name: ECONNREFUSED, ...)
 *
 * SPDX-License-Identifier: MIT */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tfo.h>

static const char *errname(int e) {
  switch (e) {
    case 0: return "0";
    case EINVAL: return "EINVAL";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ETIMEDOUT: return "ETIMEDOUT";
    case ENOPROTOOPT: return "ENOPROTOOPT";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case ENETUNREACH: return "ENETUNREACH";
    case EHOSTUNREACH: return "EHOSTUNREACH";
  }
  return strerror(e);
}

static int parse(const char *host, const char *port,
                 struct sockaddr_storage *ss, socklen_t *len) {
  struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
  int p = port != NULL ? atoi(port) : 0;

  memset(ss, 0, sizeof(*ss));
  if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)p);
    *len = sizeof(*s4);
    return 0;
  }
  if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons((uint16_t)p);
    *len = sizeof(*s6);
    return 0;
  }
  return -1;
}

int main(int argc, char **argv) {
  struct sockaddr_storage ss;
  struct tfo_cookie_info ci;
  struct timespec t0, t1;
  char src[INET6_ADDRSTRLEN] = "-";
  socklen_t len;
  int rc, e;

  if (argc >= 3 && strcmp(argv[1], "lookup") == 0 &&
      parse(argv[2], NULL, &ss, &len) == 0) {
    rc = tfo_cookie_lookup((struct sockaddr *)&ss, len, &ci);
    if (rc != 0) {
      printf("rc=-1 errno=%s\n", errname(errno));
      return 1;
    }
    if (ci.source.ss_family == AF_INET)
      inet_ntop(AF_INET, &((struct sockaddr_in *)&ci.source)->sin_addr, src,
                sizeof(src));
    else if (ci.source.ss_family == AF_INET6)
      inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ci.source)->sin6_addr,
                src, sizeof(src));
    printf("held=%d cookie_len=%u mss=%u syn_drops=%u rtt_us=%u source=%s\n",
           ci.held, ci.cookie_len, ci.mss, ci.syn_drops, ci.rtt_us, src);
    return 0;
  }
  if (argc >= 4 && strcmp(argv[1], "prefetch") == 0 &&
      parse(argv[2], argv[3], &ss, &len) == 0) {
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = tfo_cookie_prefetch((struct sockaddr *)&ss, len,
                             argc > 4 ? atoi(argv[4]) : 0);
    e = rc < 0 ? errno : 0;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("rc=%d errno=%s ms=%.1f\n", rc, errname(e),
           (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
               (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    return 0;
  }
  fprintf(stderr, "usage: cookie-helper lookup ADDR | prefetch ADDR PORT "
                  "[TIMEOUT_MS]\n");
  return 2;
}
