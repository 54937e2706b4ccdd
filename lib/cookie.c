/* tfo_cookie_lookup, tfo_cookie_prefetch: the kernel's cookie cache
 * (tcp_metrics, lib/metrics.c) for applications, and a cookie fetched
 * ahead of the first request. The handshake is tfo_connect_send's with no
 * data: the same race, judge and negative cache as any connection.
 *
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "connect.h"
#include "metrics.h"
#include "prefetch.h"
#include "sys.h"
#include "tfo.h"

static void fill(struct tfo_cookie_info *info, const struct tfo__metrics *m) {
  info->held = m->cookie_len > 0;
  info->cookie_len = (unsigned)m->cookie_len;
  info->mss = m->fo_mss;
  info->syn_drops = m->syn_drops;
  info->rtt_us = m->rtt_us;
  info->age_ms = m->age_ms;
  if (!m->has_saddr)
    return;
  if (m->family == AF_INET) {
    struct sockaddr_in *s = (struct sockaddr_in *)&info->source;

    s->sin_family = AF_INET;
    memcpy(&s->sin_addr, m->saddr, 4);
  } else {
    struct sockaddr_in6 *s = (struct sockaddr_in6 *)&info->source;

    s->sin6_family = AF_INET6;
    memcpy(&s->sin6_addr, m->saddr, 16);
  }
}

int tfo_cookie_lookup(const struct sockaddr *addr, socklen_t addrlen,
                      struct tfo_cookie_info *info) {
  struct tfo__metrics m;

  if (info == NULL) {
    errno = EINVAL;
    return -1;
  }
  if (tfo__check_addr(addr, addrlen) != 0)
    return -1;
  memset(info, 0, sizeof(*info));
  if (tfo__metrics_get(addr, addrlen, &m) != 0)
    /* Nothing recorded for the destination: no cookie, a valid answer. */
    return errno == ENOENT ? 0 : -1;
  fill(info, &m);
  return 0;
}

int tfo_cookie_prefetch(const struct sockaddr *addr, socklen_t addrlen,
                        int timeout_ms) {
  struct tfo_connect_opts o;
  struct tfo_result r;
  int rc, fd, err = 0;

  rc = tfo__prefetch_begin(addr, addrlen, timeout_ms, &o);
  if (rc != 0)
    return rc;
  memset(&r, 0, sizeof(r));
  /* No data: the SYN asks for a cookie, and the connection is closed as
   * soon as it is up (a preconnect, as the server sees it). */
  fd = tfo_connect_send(addr, addrlen, NULL, 0, &o, &r);
  if (fd < 0)
    err = errno;
  else
    tfo__sys.close(fd);
  return tfo__prefetch_end(addr, addrlen, err, &r);
}
