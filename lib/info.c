/* tfo_info: what TCP Fast Open did on a socket, from the kernel (tcp_info,
 * the listener's options, the sysctl) and from what tfo_connect_send
 * reported for the sockets it made.
 *
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>

#include "kernel.h"
#include "registry.h"
#include "sys.h"
#include "tcpinfo.h"
#include "tfo.h"

/* TCPI_OPT_TFO_CHILD arrived in 6.16; before, the bit is always 0, so a 0
 * there means "not said", not "no". */
static int kernel_says_tfo_child(void) {
  static atomic_int known; /* 0 not yet asked, 1 no, 2 yes */
  int v = atomic_load(&known);

  if (v == 0) {
    v = tfo__kernel_at_least(6, 16) ? 2 : 1;
    atomic_store(&known, v);
  }
  return v == 2;
}

static int get_int(int fd, int level, int name, int *out) {
  socklen_t len = sizeof(*out);

  *out = 0;
  return tfo__sys.getsockopt(fd, level, name, out, &len);
}

static int info_get(int fd, struct tfo_info *out) {
  struct tfo_info i;
  struct tfo__tcpinfo ti;
  enum tfo_outcome oc;
  long bits;
  int v;

  memset(&i, 0, sizeof(i));
  if (get_int(fd, SOL_SOCKET, SO_PROTOCOL, &v) != 0)
    return -1; /* EBADF, ENOTSOCK */
  if (v != IPPROTO_TCP) {
    errno = EPROTOTYPE;
    return -1;
  }
  if (get_int(fd, SOL_SOCKET, SO_ACCEPTCONN, &i.listener) != 0)
    return -1;
  if (i.listener) {
    if (get_int(fd, IPPROTO_TCP, TCP_FASTOPEN, &i.qlen) != 0)
      i.qlen = 0; /* a kernel without server TFO */
    i.sysctl = tfo__sysctl_long("net.ipv4.tcp_fastopen", &bits) == 0 &&
                       bits >= 0 && bits <= 0x7fffffff
                   ? (int)bits
                   : -1;
    i.listen_tfo = i.qlen > 0 && i.sysctl >= 0 && (i.sysctl & TFO__FO_SERVER);
    *out = i;
    return 0;
  }
  if (tfo__tcpinfo_get(fd, &ti) != 0)
    return -1;
  i.syn_data = (ti.options & TFO__TCPI_OPT_SYN_DATA) != 0;
  i.tfo_child = kernel_says_tfo_child()
                    ? (ti.options & TFO__TCPI_OPT_TFO_CHILD) != 0
                    : -1;
  i.client_fail = ti.client_fail;
  if (tfo__registry_get(fd, &oc) == 0)
    i.outcome = oc;
  *out = i;
  return 0;
}

int tfo_info(int fd, struct tfo_info *info) {
  int saved = errno;

  if (info == NULL) {
    errno = EINVAL;
    return -1;
  }
  if (fd < 0) {
    errno = EBADF;
    return -1;
  }
  if (info_get(fd, info) != 0)
    return -1;
  errno = saved;
  return 0;
}
