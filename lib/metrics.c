/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <linux/genetlink.h>
#include <linux/tcp_metrics.h>
#include <libmnl/libmnl.h>

#include "metrics.h"

/* Large enough for any dump batch the kernel sends (libmnl's advice). */
#define BUF_SIZE 32768

struct req {
  struct mnl_socket *nl;
  char *buf; /* on the heap: the shim runs on threads with small stacks */
  unsigned seq, portid;
  uint16_t family_id;
};

static int family_attr_cb(const struct nlattr *attr, void *data) {
  uint16_t *id = data;

  if (mnl_attr_get_type(attr) == CTRL_ATTR_FAMILY_ID &&
      mnl_attr_validate(attr, MNL_TYPE_U16) >= 0)
    *id = mnl_attr_get_u16(attr);
  return MNL_CB_OK;
}

static int family_cb(const struct nlmsghdr *nlh, void *data) {
  mnl_attr_parse(nlh, sizeof(struct genlmsghdr), family_attr_cb, data);
  return MNL_CB_OK;
}

static struct nlmsghdr *put_header(struct req *r, uint16_t type, uint16_t flags,
                                   uint8_t cmd, uint8_t version) {
  struct nlmsghdr *nlh = mnl_nlmsg_put_header(r->buf);
  struct genlmsghdr *g;

  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = NLM_F_REQUEST | flags;
  nlh->nlmsg_seq = ++r->seq;
  g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
  g->cmd = cmd;
  g->version = version;
  return nlh;
}

/* Sends nlh and runs cb over every answer until the kernel says done. */
static int transact(struct req *r, struct nlmsghdr *nlh, mnl_cb_t cb,
                    void *arg) {
  int n;

  if (mnl_socket_sendto(r->nl, nlh, nlh->nlmsg_len) < 0)
    return -1;
  for (;;) {
    n = (int)mnl_socket_recvfrom(r->nl, r->buf, BUF_SIZE);
    if (n < 0)
      return -1;
    n = mnl_cb_run(r->buf, (size_t)n, r->seq, r->portid, cb, arg);
    if (n <= MNL_CB_STOP)
      return n < 0 ? -1 : 0;
  }
}

static void close_req(struct req *r) {
  int saved = errno;

  mnl_socket_close(r->nl);
  free(r->buf);
  errno = saved;
}

static int open_req(struct req *r) {
  struct nlmsghdr *nlh;

  memset(r, 0, sizeof(*r));
  r->seq = (unsigned)time(NULL);
  r->buf = malloc(BUF_SIZE);
  if (r->buf == NULL)
    return -1;
  r->nl = mnl_socket_open2(NETLINK_GENERIC, SOCK_CLOEXEC);
  if (r->nl == NULL) {
    free(r->buf);
    return -1;
  }
  if (mnl_socket_bind(r->nl, 0, MNL_SOCKET_AUTOPID) < 0)
    goto fail;
  r->portid = mnl_socket_get_portid(r->nl);
  /* The family id is per boot; asking costs one round trip, and these calls
   * are rare (first contact with a destination, tfoctl). */
  nlh = put_header(r, GENL_ID_CTRL, NLM_F_ACK, CTRL_CMD_GETFAMILY, 1);
  mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, TCP_METRICS_GENL_NAME);
  if (transact(r, nlh, family_cb, &r->family_id) != 0)
    goto fail;
  if (r->family_id == 0) {
    errno = EOPNOTSUPP;
    goto fail;
  }
  return 0;
fail:
  close_req(r);
  return -1;
}

static int put_addr(struct nlmsghdr *nlh, const struct sockaddr *sa,
                    socklen_t len) {
  const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

  if (sa == NULL) {
    errno = EINVAL;
    return -1;
  }
  if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
    mnl_attr_put(nlh, TCP_METRICS_ATTR_ADDR_IPV4, 4,
                 &((const struct sockaddr_in *)sa)->sin_addr);
    return 0;
  }
  if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
    /* The kernel files v4-mapped destinations under IPv4. */
    if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
      mnl_attr_put(nlh, TCP_METRICS_ATTR_ADDR_IPV4, 4,
                   &s6->sin6_addr.s6_addr[12]);
    else
      mnl_attr_put(nlh, TCP_METRICS_ATTR_ADDR_IPV6, 16, &s6->sin6_addr);
    return 0;
  }
  errno = (sa->sa_family == AF_INET || sa->sa_family == AF_INET6)
              ? EINVAL
              : EAFNOSUPPORT;
  return -1;
}

static int vals_cb(const struct nlattr *attr, void *data) {
  struct tfo__metrics *m = data;

  /* The kernel keeps the smoothed RTT as tcp_sock's srtt_us does: in
   * units of 1/8 us (ip tcp_metrics shifts it back the same way). */
  if (mnl_attr_get_type(attr) == TCP_METRIC_RTT_US + 1 &&
      mnl_attr_validate(attr, MNL_TYPE_U32) >= 0)
    m->rtt_us = mnl_attr_get_u32(attr) >> 3;
  return MNL_CB_OK;
}

static void copy_addr(const struct nlattr *attr, uint8_t *to, size_t want) {
  if (mnl_attr_get_payload_len(attr) >= want)
    memcpy(to, mnl_attr_get_payload(attr), want);
}

static int entry_attr_cb(const struct nlattr *attr, void *data) {
  struct tfo__metrics *m = data;
  size_t len = mnl_attr_get_payload_len(attr);

  switch (mnl_attr_get_type(attr)) {
    case TCP_METRICS_ATTR_ADDR_IPV4:
      m->family = AF_INET;
      copy_addr(attr, m->daddr, 4);
      break;
    case TCP_METRICS_ATTR_ADDR_IPV6:
      m->family = AF_INET6;
      copy_addr(attr, m->daddr, 16);
      break;
    case TCP_METRICS_ATTR_SADDR_IPV4:
      copy_addr(attr, m->saddr, 4);
      m->has_saddr = 1;
      break;
    case TCP_METRICS_ATTR_SADDR_IPV6:
      copy_addr(attr, m->saddr, 16);
      m->has_saddr = 1;
      break;
    case TCP_METRICS_ATTR_AGE:
      if (len >= 8)
        m->age_ms = mnl_attr_get_u64(attr);
      break;
    case TCP_METRICS_ATTR_VALS:
      mnl_attr_parse_nested(attr, vals_cb, m);
      break;
    case TCP_METRICS_ATTR_FOPEN_MSS:
      if (len >= 2)
        m->fo_mss = mnl_attr_get_u16(attr);
      break;
    case TCP_METRICS_ATTR_FOPEN_SYN_DROPS:
      if (len >= 2)
        m->syn_drops = mnl_attr_get_u16(attr);
      break;
    case TCP_METRICS_ATTR_FOPEN_COOKIE:
      m->cookie_len = len > sizeof(m->cookie) ? (int)sizeof(m->cookie)
                                              : (int)len;
      memcpy(m->cookie, mnl_attr_get_payload(attr), (size_t)m->cookie_len);
      break;
  }
  return MNL_CB_OK;
}

struct walk {
  int (*cb)(const struct tfo__metrics *m, void *arg);
  void *arg;
  int ret;
  int seen;
};

static int entry_cb(const struct nlmsghdr *nlh, void *data) {
  struct walk *w = data;
  struct tfo__metrics m;

  memset(&m, 0, sizeof(m));
  if (mnl_attr_parse(nlh, sizeof(struct genlmsghdr), entry_attr_cb, &m) < 0)
    return MNL_CB_ERROR;
  if (m.family == 0)
    return MNL_CB_OK;
  w->seen++;
  w->ret = w->cb(&m, w->arg);
  return w->ret != 0 ? MNL_CB_STOP : MNL_CB_OK;
}

static int copy_cb(const struct tfo__metrics *m, void *arg) {
  memcpy(arg, m, sizeof(*m));
  return 1; /* the first entry is the one */
}

int tfo__metrics_get(const struct sockaddr *dst, socklen_t len,
                     struct tfo__metrics *m) {
  struct req r;
  struct nlmsghdr *nlh;
  struct walk w = {copy_cb, m, 0, 0};
  int rc;

  if (m == NULL) {
    errno = EINVAL;
    return -1;
  }
  if (open_req(&r) != 0)
    return -1;
  nlh = put_header(&r, r.family_id, NLM_F_ACK, TCP_METRICS_CMD_GET,
                   TCP_METRICS_GENL_VERSION);
  rc = put_addr(nlh, dst, len);
  if (rc == 0)
    rc = transact(&r, nlh, entry_cb, &w);
  close_req(&r);
  if (rc != 0) {
    if (errno == ESRCH) /* the kernel's "no such entry" */
      errno = ENOENT;
    return -1;
  }
  if (w.seen == 0) {
    errno = ENOENT;
    return -1;
  }
  return 0;
}

int tfo__metrics_foreach(int (*cb)(const struct tfo__metrics *m, void *arg),
                         void *arg) {
  struct req r;
  struct nlmsghdr *nlh;
  struct walk w = {cb, arg, 0, 0};
  int rc;

  if (cb == NULL) {
    errno = EINVAL;
    return -1;
  }
  if (open_req(&r) != 0)
    return -1;
  nlh = put_header(&r, r.family_id, NLM_F_DUMP, TCP_METRICS_CMD_GET,
                   TCP_METRICS_GENL_VERSION);
  rc = transact(&r, nlh, entry_cb, &w);
  close_req(&r);
  return rc != 0 ? -1 : w.ret;
}

int tfo__metrics_delete(const struct sockaddr *dst, socklen_t len) {
  struct req r;
  struct nlmsghdr *nlh;
  int rc = 0;

  if (open_req(&r) != 0)
    return -1;
  nlh = put_header(&r, r.family_id, NLM_F_ACK, TCP_METRICS_CMD_DEL,
                   TCP_METRICS_GENL_VERSION);
  /* No address: the kernel flushes the whole table. */
  if (dst != NULL)
    rc = put_addr(nlh, dst, len);
  if (rc == 0)
    rc = transact(&r, nlh, NULL, NULL);
  close_req(&r);
  if (rc != 0 && errno == ESRCH)
    errno = ENOENT;
  return rc;
}
