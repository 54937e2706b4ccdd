/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <linux/tcp.h> /* not <netinet/tcp.h>: see tcpinfo.h */
#include <netinet/in.h>

#include "sys.h"
#include "tcpinfo.h"

int tfo__tcpinfo_get(int fd, struct tfo__tcpinfo *ti) {
  struct tcp_info k;
  socklen_t len = sizeof(k);

  memset(&k, 0, sizeof(k));
  if (tfo__sys.getsockopt(fd, IPPROTO_TCP, TCP_INFO, &k, &len) != 0)
    return -1;
  /* Every field we read sits in the first bytes, present since 2.6. */
  if (len < offsetof(struct tcp_info, tcpi_rtt) + sizeof(k.tcpi_rtt)) {
    errno = EPROTO;
    return -1;
  }
  ti->state = k.tcpi_state;
  ti->options = k.tcpi_options;
  ti->client_fail = k.tcpi_fastopen_client_fail; /* 0 on kernels < 5.5 */
  ti->rtt_us = k.tcpi_rtt;
  ti->retrans = len >= offsetof(struct tcp_info, tcpi_total_retrans) +
                          sizeof(k.tcpi_total_retrans)
                    ? k.tcpi_total_retrans
                    : 0;
  ti->segs_in = len >= offsetof(struct tcp_info, tcpi_segs_in) +
                           sizeof(k.tcpi_segs_in)
                    ? k.tcpi_segs_in
                    : 0;
  ti->segs_out = len >= offsetof(struct tcp_info, tcpi_segs_out) +
                            sizeof(k.tcpi_segs_out)
                     ? k.tcpi_segs_out
                     : 0;
  return 0;
}

enum tfo_outcome tfo__decode_outcome(int cookie_sent, size_t syn_bytes,
                                     int cookie_granted,
                                     const struct tfo__tcpinfo *ti,
                                     enum tfo__event *ev) {
  if (!cookie_sent) {
    /* A cookie request is answered with or without one; only the kernel's
     * cookie cache tells which. Unknown counts as granted: a wrong "good"
     * costs one more cookie request, a wrong "bad" would skip TFO. */
    if (cookie_granted != 0)
      *ev = TFO__EV_COOKIE_GRANTED;
    else if (ti->retrans > 0)
      /* The cookie request (option 34) went unanswered and a plain SYN
       * retransmission got through: the path drops TFO SYNs. */
      *ev = TFO__EV_BLACKHOLE;
    else
      *ev = TFO__EV_NO_COOKIE;
    return TFO_OUTCOME_COOKIE_REQUESTED;
  }
  if (ti->options & TFO__TCPI_OPT_SYN_DATA) {
    *ev = TFO__EV_DATA_ACKED;
    return TFO_OUTCOME_DATA_ACKED;
  }
  switch (ti->client_fail) {
    case TFO__FAIL_SYN_RETRANSMITTED:
      /* The TFO SYN was lost and a plain retransmission got through: the
       * path drops TFO SYNs (only seen without the race, or a lost race). */
      *ev = TFO__EV_BLACKHOLE;
      return TFO_OUTCOME_DATA_NOT_ACKED;
    case TFO__FAIL_DATA_NOT_ACKED:
      *ev = TFO__EV_DATA_NOT_ACKED;
      return TFO_OUTCOME_DATA_NOT_ACKED;
    default:
      if (syn_bytes > 0) {
        /* Data handed over, not acked, and no reason given: the kernel
         * sets one for every data SYN that went out (since 5.5), so this
         * one never left the host (its transmit failed locally, a link
         * down, and the kernel sent a plain SYN instead). Nothing to hold
         * against the path. (Before 5.5 a stripped option reads the same
         * way; it costs no delay, so not learning it is cheap.) */
        *ev = TFO__EV_NONE;
        return TFO_OUTCOME_DATA_NOT_ACKED;
      }
      /* A cookie and no data (len 0): the kernel marks no SYN data, yet
       * nothing failed. */
      *ev = TFO__EV_DATA_ACKED;
      return TFO_OUTCOME_DATA_ACKED;
  }
}
