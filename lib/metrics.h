/* The kernel's per-destination TCP metrics (tcp_metrics over generic
 * netlink): the TFO cookie cache and the RTT the kernel remembers.
 * SPDX-License-Identifier: MIT */
#ifndef TFO_METRICS_H
#define TFO_METRICS_H

#include <stdint.h>
#include <sys/socket.h>

struct tfo__metrics {
  int family;             /* AF_INET or AF_INET6 */
  uint8_t daddr[16];      /* IPv4 in the first 4 bytes */
  uint8_t saddr[16];
  int has_saddr;
  uint32_t rtt_us;        /* 0: none recorded */
  uint64_t age_ms;
  int cookie_len;         /* 0: no TFO cookie held */
  uint8_t cookie[16];
  uint16_t fo_mss;
  uint16_t syn_drops;     /* TFO SYNs the kernel saw dropped */
};

/* The entry for one destination (any source address); the port is
 * ignored: the kernel keeps metrics per address pair. 0, or -1 with errno
 * ENOENT (nothing recorded), EAFNOSUPPORT, or a netlink error. */
int tfo__metrics_get(const struct sockaddr *dst, socklen_t len,
                     struct tfo__metrics *m);

/* Every entry of this network namespace; stops at cb's first non-zero
 * return and passes it on. 0 or -1 with errno. */
int tfo__metrics_foreach(int (*cb)(const struct tfo__metrics *m, void *arg),
                         void *arg);

/* Forgets one destination's metrics (and cookie), or all when dst is NULL.
 * Needs CAP_NET_ADMIN. 0 or -1 with errno (ENOENT: nothing to forget). */
int tfo__metrics_delete(const struct sockaddr *dst, socklen_t len);

#endif
