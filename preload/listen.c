/* listen(): legacy daemons accept TCP Fast Open without a code change.
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "log.h"
#include "shim.h"

/* Only IPv4/IPv6 TCP listeners get TFO; everything else is not ours. */
static int is_inet_tcp(int fd) {
  int v;
  socklen_t len = sizeof(v);

  return getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &len) == 0 &&
         (v == AF_INET || v == AF_INET6) && tfo__shim_is_tcp(fd);
}

TFO_SHIM_EXPORT int listen(int fd, int backlog) {
  const struct tfo__shim_config *cfg = tfo__shim_config();
  int saved = errno;
  int qlen;
  socklen_t len = sizeof(qlen);

  if (tfo__nested)
    return tfo__libc()->listen(fd, backlog);
  TFO__NEST();
  if (!cfg->disabled && cfg->server && is_inet_tcp(fd) &&
      getsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN, &qlen, &len) == 0 &&
      qlen == 0) {
    /* A listener that chose its own TFO queue keeps it (qlen != 0). */
    qlen = cfg->qlen;
    if (setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN, &qlen, sizeof(qlen)) != 0)
      tfo__log(TFO__LOG_INFO, "listen(%d): TCP_FASTOPEN not set: %s", fd,
               tfo__strerror(errno));
    else
      tfo__log(TFO__LOG_DEBUG, "listen(%d): TCP_FASTOPEN qlen %d", fd, qlen);
  }
  errno = saved;
  return tfo__libc()->listen(fd, backlog);
}
