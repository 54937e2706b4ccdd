/* connect() and getpeername(): the SYN waits for the first bytes.
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>

#include "cache.h"
#include "log.h"
#include "shim.h"
#include "tcpinfo.h"

int tfo__shim_is_tcp(int fd) {
  int v;
  socklen_t len = sizeof(v);

  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len) != 0 || v != SOCK_STREAM)
    return 0;
  len = sizeof(v);
  return getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &v, &len) == 0 &&
         v == IPPROTO_TCP;
}

static uint16_t port_of(const struct sockaddr *sa) {
  return ntohs(sa->sa_family == AF_INET
                   ? ((const struct sockaddr_in *)sa)->sin_port
                   : ((const struct sockaddr_in6 *)sa)->sin6_port);
}

/* Whether this connect is one to accelerate (the cache is asked later). */
static int wanted(int fd, const struct sockaddr *sa, socklen_t len) {
  const struct tfo__shim_config *cfg = tfo__shim_config();
  int on = 0;
  socklen_t olen = sizeof(on);

  if (cfg->disabled || !cfg->client || sa == NULL)
    return 0;
  if (!((sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) ||
        (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6))))
    return 0;
  if (!tfo__ports_match(&cfg->ports, port_of(sa)) ||
      tfo__prefixes_match(&cfg->exclude, sa, len))
    return 0;
  if (!tfo__shim_is_tcp(fd))
    return 0;
  /* A program that does TFO itself (curl --tcp-fastopen) is left alone. */
  if (getsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &on, &olen) == 0 &&
      on)
    return 0;
  return 1;
}

TFO_SHIM_EXPORT int connect(int fd, const struct sockaddr *sa,
                            socklen_t len) {
  const struct tfo__libc *libc = tfo__libc();
  struct tfo__verdict v;
  struct tfo__tcpinfo ti;
  struct tfo__fd *st;
  int saved = errno;
  int one = 1, rc, err;

  if (!wanted(fd, sa, len)) {
    errno = saved;
    return libc->connect(fd, sa, len);
  }
  atomic_fetch_add(&tfo__stats.attempts, 1);
  if (tfo__cache_lookup(sa, len, &v) == 0 && v.skip) {
    atomic_fetch_add(&tfo__stats.skipped, 1);
    tfo__log(TFO__LOG_INFO, "fd %d: destination breaks TFO: plain connect",
             fd);
    errno = saved;
    return libc->connect(fd, sa, len);
  }
  st = tfo__fd_get(fd);
  if (st == NULL ||
      setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &one, sizeof(one)) !=
          0) {
    /* EOPNOTSUPP: the client bit is off in this namespace. */
    atomic_fetch_add(&tfo__stats.disabled, 1);
    errno = saved;
    return libc->connect(fd, sa, len);
  }
  tfo__fd_forget_conn(fd); /* an entry from an fd we never saw closed */
  memset(&st->addr, 0, sizeof(st->addr));
  memcpy(&st->addr, sa, len < sizeof(st->addr) ? len : sizeof(st->addr));
  st->addrlen = len < sizeof(st->addr) ? len : sizeof(st->addr);
  st->syn_bytes = 0;

  errno = saved;
  rc = libc->connect(fd, sa, len);
  err = errno;
  if (rc == 0 && tfo__tcpinfo_get(fd, &ti) == 0 && ti.state == TCP_SYN_SENT) {
    /* A cookie is cached: nothing was sent, the first write carries the
     * SYN and the data. */
    st->cookie_sent = 1;
    st->deferred_at = tfo__shim_now_ms();
    atomic_fetch_add(&tfo__deferred_count, 1);
    atomic_store(&st->kind, FD_DEFERRED);
  } else if (rc == 0 || err == EINPROGRESS) {
    /* No cookie: a normal handshake asking for one is under way (or done,
     * for a blocking socket). Judged at close. */
    st->cookie_sent = 0;
    atomic_store(&st->kind, FD_SENT);
  }
  errno = err;
  return rc;
}

TFO_SHIM_EXPORT int getpeername(int fd, struct sockaddr *sa,
                                socklen_t *len) {
  const struct tfo__libc *libc = tfo__libc();
  struct tfo__fd *st;
  int saved = errno;
  int rc = libc->getpeername(fd, sa, len);

  if (rc == 0 || errno != ENOTCONN)
    return rc;
  /* While the SYN waits for data the kernel has no peer yet; the program
   * connected, so it gets the address it connected to. */
  st = tfo__fd_peek(fd);
  if (st == NULL || atomic_load(&st->kind) == FD_NONE || sa == NULL ||
      len == NULL)
    return rc;
  memcpy(sa, &st->addr, *len < st->addrlen ? *len : st->addrlen);
  *len = st->addrlen;
  errno = saved;
  return 0;
}
