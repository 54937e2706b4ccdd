/* Carrying a program's socket options over to the plain socket that takes
 * its socket's place (the shim's race and reset recovery).
 * SPDX-License-Identifier: MIT */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>

#include "sockopt.h"

/* What a program sets before connect() and expects of the connection:
 * routing (mark, device), marking (priority, TOS/TCLASS), keepalive and
 * timeouts, Nagle, congestion control, lingering. Buffer sizes are left
 * out: getsockopt cannot tell a set size from an autotuned one, and setting
 * one would switch autotuning off. */
static const struct opt {
  int level, name, family; /* family 0: both */
} opts[] = {
    {SOL_SOCKET, SO_BINDTODEVICE, 0},
    {SOL_SOCKET, SO_MARK, 0},
    /* Before SO_PRIORITY: setting IP_TOS also sets the priority. */
    {IPPROTO_IP, IP_TOS, AF_INET},
    {IPPROTO_IPV6, IPV6_TCLASS, AF_INET6},
    {SOL_SOCKET, SO_PRIORITY, 0},
    {SOL_SOCKET, SO_KEEPALIVE, 0},
    {SOL_SOCKET, SO_LINGER, 0},
    {SOL_SOCKET, SO_OOBINLINE, 0},
    {IPPROTO_TCP, TCP_NODELAY, 0},
    {IPPROTO_TCP, TCP_KEEPIDLE, 0},
    {IPPROTO_TCP, TCP_KEEPINTVL, 0},
    {IPPROTO_TCP, TCP_KEEPCNT, 0},
    {IPPROTO_TCP, TCP_USER_TIMEOUT, 0},
    {IPPROTO_TCP, TCP_CONGESTION, 0},
};

int tfo__sockopt_copy(int from, int to, int family) {
  char a[64], b[64]; /* the largest: a device name, a congestion name */
  socklen_t alen, blen;
  size_t i;
  int saved = errno, failed = 0;

  for (i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
    if (opts[i].family != 0 && opts[i].family != family)
      continue;
    alen = blen = sizeof(a);
    memset(a, 0, sizeof(a));
    memset(b, 0, sizeof(b));
    if (getsockopt(from, opts[i].level, opts[i].name, a, &alen) != 0 ||
        getsockopt(to, opts[i].level, opts[i].name, b, &blen) != 0)
      continue; /* unknown to this kernel: nothing to carry */
    /* Only what differs from a fresh socket: a default left alone stays
     * the kernel's (and follows its sysctl). */
    if (alen == blen && memcmp(a, b, alen) == 0)
      continue;
    if (setsockopt(to, opts[i].level, opts[i].name, a, alen) != 0)
      failed++;
  }
  errno = saved;
  return failed;
}
