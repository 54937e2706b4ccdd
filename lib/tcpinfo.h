/* What the kernel says about a finished TFO handshake, and what it means.
 * SPDX-License-Identifier: MIT */
#ifndef TFO_TCPINFO_H
#define TFO_TCPINFO_H

#include <stddef.h>

#include "cache.h"
#include "tfo.h"

/* The few tcp_info fields we use. Our own struct because glibc's struct
 * tcp_info lacks tcpi_fastopen_client_fail and <linux/tcp.h>, which has it,
 * cannot be included next to <netinet/tcp.h>. */
struct tfo__tcpinfo {
  unsigned state;       /* TCP_ESTABLISHED, TCP_SYN_SENT, ... */
  unsigned options;     /* TCPI_OPT_* */
  int client_fail;      /* 0..3, see enum tfo__client_fail */
  unsigned rtt_us;      /* smoothed RTT */
  unsigned retrans;     /* segments retransmitted: at the end of a
                         * handshake, the SYNs that went unanswered */
  unsigned segs_in;     /* segments received: a refused SYN got its RST,
                         * one with no route or lost got nothing (0 also
                         * on kernels < 4.2) */
  unsigned segs_out;    /* segments sent: 0 while a TFO SYN waits for the
                         * first write (0 also on kernels < 4.2) */
};

#define TFO__TCPI_OPT_SYN_DATA 32  /* SYN data acknowledged / accepted */
#define TFO__TCPI_OPT_TFO_CHILD 128 /* server: child of a TFO SYN (6.16+) */

enum tfo__client_fail {
  TFO__FAIL_NONE = 0,
  TFO__FAIL_COOKIE_UNAVAILABLE = 1, /* we had no cookie to send */
  TFO__FAIL_DATA_NOT_ACKED = 2,     /* SYN-ACK did not cover the data */
  TFO__FAIL_SYN_RETRANSMITTED = 3   /* the TFO SYN went unanswered */
};

/* getsockopt(TCP_INFO) into *ti. 0 or -1 with errno. */
int tfo__tcpinfo_get(int fd, struct tfo__tcpinfo *ti);

/* What a TFO handshake that completed on its own socket amounts to.
 * cookie_sent: the SYN carried a cookie (sendmsg(MSG_FASTOPEN) returned a
 * count rather than EINPROGRESS); syn_bytes: how many data bytes it carried.
 * cookie_granted: for a cookie request, whether the kernel now holds a
 * cookie for the destination (-1 unknown). *ev gets the event for the
 * negative cache. */
enum tfo_outcome tfo__decode_outcome(int cookie_sent, size_t syn_bytes,
                                     int cookie_granted,
                                     const struct tfo__tcpinfo *ti,
                                     enum tfo__event *ev);

#endif
