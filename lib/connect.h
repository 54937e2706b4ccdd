/* Internals of the client side shared by the API, the shim and libtfo-uv.
 * SPDX-License-Identifier: MIT */
#ifndef TFO_CONNECT_H
#define TFO_CONNECT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "tfo.h"

/* The race delay: 3x the destination's RTT when known (a SYN-ACK later than
 * that is almost surely not coming), else 250 ms (above nearly every real
 * RTT, a quarter of the kernel's 1 s SYN timeout). Floored so that a LAN's
 * jitter does not start needless races, capped at the kernel's timeout,
 * beyond which its own retransmission would win anyway. */
#define TFO__FALLBACK_UNKNOWN_MS 250
#define TFO__FALLBACK_RTT_FACTOR 3
#define TFO__FALLBACK_MIN_MS 20
#define TFO__FALLBACK_MAX_MS 1000

/* 0 for a usable IPv4/IPv6 address, else -1 with EINVAL (NULL, short) or
 * EAFNOSUPPORT (another family). */
int tfo__check_addr(const struct sockaddr *addr, socklen_t addrlen);

/* The automatic race delay for a destination, given the RTT the negative
 * cache holds for it (0: unknown, then the kernel's tcp_metrics is asked). */
int tfo__fallback_delay_ms(const struct sockaddr *addr, socklen_t addrlen,
                           uint32_t cached_rtt_us);

/* The state machine of tfo_conn_start for a TFO SYN that the caller's
 * own socket fd already sent (the preload shim's deferred connect): it
 * waits for the answer, races a plain connect after the fallback delay,
 * judges and feeds the cache, and sends the rest of iov from syn_bytes on.
 * On a blocking fd the rest is sent blocking (as the caller's own write
 * would); fd is never closed by the machine: when
 * tfo_conn_finish returns another socket, the plain connection won and fd
 * is the caller's to replace or close. With storage, the machine lives
 * there and nothing is allocated (up to 4 buffers in iov): a signal
 * handler may be the one writing, inside malloc's lock. */
struct tfo__conn_storage {
  _Alignas(16) unsigned char bytes[512];
};
tfo_conn *tfo__conn_adopt(int fd, int cookie_sent, size_t syn_bytes,
                          const struct sockaddr *addr, socklen_t addrlen,
                          const struct iovec *iov, int iovcnt,
                          struct tfo_watch *w,
                          struct tfo__conn_storage *storage);

/* Reads what the kernel did with the TFO handshake on fd (which has
 * completed, or failed; known: its tcp_info when the caller has it, else
 * NULL), decodes it, and feeds the negative cache when use_cache. cookie_sent/syn_bytes: what the SYN carried. The one judge of
 * a TFO attempt for the API, the shim and libtfo-uv. */
struct tfo__tcpinfo;
enum tfo_outcome tfo__judge(int fd, const struct tfo__tcpinfo *known,
                            const struct sockaddr *addr, socklen_t addrlen,
                            int cookie_sent, size_t syn_bytes, int use_cache,
                            int *client_fail);

/* The race in place, for a socket whose registrations nobody can rebuild
 * (an event loop's, under the shim): fd's TFO SYN is still unanswered
 * after the fallback delay, so fd is disconnected (AF_UNSPEC: nothing
 * leaves a socket in SYN_SENT) and connected again plainly, without
 * TCP_FASTOPEN_CONNECT, keeping its number, flags, options, bound address
 * and epoll registrations. 0 (the plain SYN is on its way: EINPROGRESS,
 * or connected), or -1 with errno. */
int tfo__conn_restart_plain(int fd, const struct sockaddr *addr,
                            socklen_t addrlen);
/* The judge of such a socket once its plain handshake ended (ti): a plain
 * SYN answered at once, sooner than the TFO one had waited (race_ms), says
 * the path swallows TFO SYNs, recorded in the negative cache; one that
 * needed retransmitting, or took as long, met a path that was down or
 * slow for everyone, and nothing is recorded. The outcome is a fallback
 * either way. */
enum tfo_outcome tfo__judge_restarted(const struct tfo__tcpinfo *ti,
                                      const struct sockaddr *addr,
                                      socklen_t addrlen, int race_ms);

#endif
