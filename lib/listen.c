/* tfo_listen: a listener that takes data from the SYN, with its own key if
 * asked; tfo_set_key and tfo_load_key_file for keys that rotate.
 *
 * SPDX-License-Identifier: MIT */
#include "abi.h"
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "connect.h"
#include "kernel.h"
#include "key.h"
#include "log.h"
#include "sys.h"
#include "tfo.h"

#ifndef TCP_FASTOPEN_KEY
#define TCP_FASTOPEN_KEY 33
#endif

_Static_assert(TFO_KEY_LEN == TFO__KEY_LEN && TFO_KEY_MAX == TFO__KEY_MAX,
               "public and internal key sizes differ");

#define KNOWN_FLAGS                                                            \
  (TFO_LISTEN_REUSEPORT | TFO_LISTEN_DUALSTACK | TFO_LISTEN_NONBLOCK)

static int check_opts(const struct tfo_listen_opts *o, int family) {
  if (!TFO__RESERVED_ZERO(o))
    goto bad;
  if ((o->flags & ~KNOWN_FLAGS) != 0 || o->qlen < 0)
    goto bad;
  /* One key source; a length without a key is a caller's mix-up. */
  if ((o->key != NULL && o->key_file != NULL) ||
      (o->key == NULL && o->key_len != 0))
    goto bad;
  if ((o->flags & TFO_LISTEN_DUALSTACK) && family != AF_INET6)
    goto bad;
  return 0;
bad:
  errno = EINVAL;
  return -1;
}

static int set_int(int fd, int level, int name, int value) {
  return tfo__sys.setsockopt(fd, level, name, &value, sizeof(value));
}

/* The queue length the kernel will use: it caps TCP_FASTOPEN at somaxconn
 * itself, but capping here too makes the value we log the real one. */
static int effective_qlen(int qlen) {
  long max;

  if (qlen == 0)
    qlen = TFO_LISTEN_QLEN_DEFAULT;
  if (tfo__sysctl_long("net.core.somaxconn", &max) == 0 && max > 0 &&
      qlen > max)
    qlen = (int)max;
  return qlen;
}

/* Says so when this namespace will not let the listener take SYN data:
 * the call still succeeds (a server must not fail to start over an
 * optimisation), and tfo_info reports the same. */
static void report_server_bit(int port) {
  long bits;

  if (tfo__sysctl_long("net.ipv4.tcp_fastopen", &bits) != 0)
    tfo__log(TFO__LOG_INFO,
             "listener on port %d: cannot read "
             "net.ipv4.tcp_fastopen: %s",
             port, tfo__strerror(errno));
  else if (!(bits & TFO__FO_SERVER))
    tfo__log(TFO__LOG_ERROR,
             "listener on port %d: net.ipv4.tcp_fastopen=%ld "
             "lacks the server bit (2): listening without TCP Fast Open "
             "(tfoctl enable server)",
             port, bits);
}

static int listen_socket(const struct sockaddr *addr, socklen_t addrlen,
                         int backlog, const struct tfo_listen_opts *o,
                         const struct tfo__key *key) {
  int family = addr->sa_family;
  int fd, e, qlen;

  fd = tfo__sys.socket(
      family,
      SOCK_STREAM | SOCK_CLOEXEC |
          ((o->flags & TFO_LISTEN_NONBLOCK) ? SOCK_NONBLOCK : 0),
      IPPROTO_TCP);
  if (fd < 0)
    return -1;
  /* SO_REUSEADDR: a restarted server must not wait out TIME_WAIT. */
  if (set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1) != 0)
    goto fail;
  if ((o->flags & TFO_LISTEN_REUSEPORT) &&
      set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1) != 0)
    goto fail;
  /* Explicit either way: the default follows net.ipv6.bindv6only. */
  if (family == AF_INET6 &&
      set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY,
              (o->flags & TFO_LISTEN_DUALSTACK) ? 0 : 1) != 0)
    goto fail;
  /* Before listen(): no SYN may find the listener without its queue or
   * with the wrong key. */
  qlen = effective_qlen(o->qlen);
  if (set_int(fd, IPPROTO_TCP, TCP_FASTOPEN, qlen) != 0) {
    if (errno != ENOPROTOOPT && errno != EOPNOTSUPP)
      goto fail;
    tfo__log(TFO__LOG_ERROR,
             "TCP_FASTOPEN not supported by this kernel (%s): "
             "listening without TCP Fast Open",
             tfo__strerror(errno));
  }
  if (key != NULL &&
      tfo__sys.setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_KEY, key->bytes,
                          (socklen_t)key->len) != 0) {
    /* Asked for explicitly: a key that cannot be set is an error, not a
     * silent fallback to the namespace's key. */
    e = errno;
    tfo__log(TFO__LOG_ERROR, "TCP_FASTOPEN_KEY (%zu bytes): %s%s", key->len,
             tfo__strerror(e),
             key->len == TFO__KEY_MAX && e == EINVAL
                 ? " (a backup key needs Linux 5.3)"
                 : "");
    errno = e;
    goto fail;
  }
  if (bind(fd, addr, addrlen) != 0)
    goto fail;
  if (listen(fd, backlog > 0 ? backlog : SOMAXCONN) != 0)
    goto fail;
  report_server_bit(
      family == AF_INET
          ? ntohs(((const struct sockaddr_in *)addr)->sin_port)
          : ntohs(((const struct sockaddr_in6 *)addr)->sin6_port));
  return fd;
fail:
  e = errno;
  tfo__sys.close(fd);
  errno = e;
  return -1;
}

int tfo_listen(const struct sockaddr *addr, socklen_t addrlen, int backlog,
               const struct tfo_listen_opts *opts) {
  static const struct tfo_listen_opts defaults;
  struct tfo__key key;
  const struct tfo__key *kp = NULL;
  char why[256];
  int fd, e, saved = errno;

  if (tfo__check_addr(addr, addrlen) != 0)
    return -1;
  if (backlog < 0) {
    errno = EINVAL;
    return -1;
  }
  if (opts == NULL)
    opts = &defaults;
  if (check_opts(opts, addr->sa_family) != 0)
    return -1;
  /* The key first: a bad one fails the call before any socket exists. */
  if (opts->key != NULL) {
    if (tfo__key_check(opts->key, opts->key_len) != 0)
      return -1;
    memcpy(key.bytes, opts->key, opts->key_len);
    key.len = opts->key_len;
    kp = &key;
  } else if (opts->key_file != NULL) {
    if (tfo__key_read_file(opts->key_file, &key, why, sizeof(why)) != 0) {
      e = errno;
      tfo__log(TFO__LOG_ERROR, "key file %s: %s", opts->key_file, why);
      errno = e;
      return -1;
    }
    kp = &key;
  }
  fd = listen_socket(addr, addrlen, backlog, opts, kp);
  e = errno;
  tfo__key_wipe(&key, sizeof(key));
  errno = fd >= 0 ? saved : e; /* success leaves errno as it was */
  return fd;
}

int tfo_set_key(int fd, const void *key, size_t key_len) {
  if (tfo__key_check(key, key_len) != 0)
    return -1;
  if (fd < 0) {
    errno = EBADF;
    return -1;
  }
  return tfo__sys.setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_KEY, key,
                             (socklen_t)key_len);
}

int tfo_load_key_file(const char *path, void *key, size_t size) {
  struct tfo__key k;
  char why[256];
  int e, len, saved = errno;

  if (path == NULL || key == NULL) {
    errno = EINVAL;
    return -1;
  }
  if (tfo__key_read_file(path, &k, why, sizeof(why)) != 0) {
    e = errno;
    tfo__log(TFO__LOG_ERROR, "key file %s: %s", path, why);
    errno = e;
    return -1;
  }
  if (size < k.len) {
    tfo__key_wipe(&k, sizeof(k));
    errno = ERANGE;
    return -1;
  }
  memcpy(key, k.bytes, k.len);
  len = (int)k.len;
  tfo__key_wipe(&k, sizeof(k));
  errno = saved;
  return len;
}
