/* The client state machine and outcome decoding against a scripted kernel:
 * socket calls, tcp_info, tcp_metrics and the negative cache are mocked with
 * -Wl,--wrap so every answer the kernel can give is forced.
 *
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <linux/tcp.h>
#include <cmocka.h>

#include "cache.h"
#include "connect.h"
#include "metrics.h"
#include "sys.h"
#include "tcpinfo.h"
#include "tfo.h"

#define ST_ESTABLISHED 1 /* TCP_ESTABLISHED, from netinet/tcp.h */
#define ST_SYN_SENT 2
#define ST_CLOSE 7

/* --- the scripted kernel --------------------------------------------- */

#define FD0 100 /* fake fds: the machine never touches them for real */
#define NFD 4

static struct fake {
  int next_fd;
  int closed[NFD];
  int so_error[NFD];
  int state[NFD];
  int options[NFD];
  int client_fail[NFD];
  int retrans[NFD];
  int answered[NFD];    /* a SYN-ACK came: an RTT sample even once closed */
  int connects[NFD];
  int unspec[NFD];      /* connect(AF_UNSPEC): disconnects */
  ssize_t fastopen_ret; /* sendmsg(MSG_FASTOPEN): count, or -errno */
  int connect_errno;    /* plain connect(): 0 for EINPROGRESS */
  size_t sent_plain[NFD];
  int cookie_len;       /* tcp_metrics: -1 no entry */
  uint32_t metrics_rtt;
  int cache_skip;
  uint32_t cache_rtt;
  int recorded;
  enum tfo__event last_event;
  int tcp_info_short;
} k;

static int slot(int fd) {
  assert_true(fd >= FD0 && fd < FD0 + NFD);
  return fd - FD0;
}

int __wrap_socket(int domain, int type, int protocol);
int __wrap_socket(int domain, int type, int protocol) {
  assert_true(domain == AF_INET || domain == AF_INET6);
  assert_true(type & SOCK_NONBLOCK);
  (void)protocol;
  return FD0 + k.next_fd++;
}

int __wrap_close(int fd);
int __wrap_close(int fd) {
  k.closed[slot(fd)]++;
  return 0;
}

ssize_t __wrap_sendmsg(int fd, const struct msghdr *msg, int flags);
ssize_t __wrap_sendmsg(int fd, const struct msghdr *msg, int flags) {
  size_t i, len = 0;

  for (i = 0; i < msg->msg_iovlen; i++)
    len += msg->msg_iov[i].iov_len;
  if (flags & MSG_FASTOPEN) {
    if (k.fastopen_ret == -EINPROGRESS || k.fastopen_ret >= 0)
      k.state[slot(fd)] = ST_SYN_SENT; /* a SYN left */
    if (k.fastopen_ret < 0) {
      errno = (int)-k.fastopen_ret;
      return -1;
    }
    return k.fastopen_ret < (ssize_t)len ? k.fastopen_ret : (ssize_t)len;
  }
  k.sent_plain[slot(fd)] += len;
  return (ssize_t)len;
}

int __wrap_connect(int fd, const struct sockaddr *a, socklen_t l);
int __wrap_connect(int fd, const struct sockaddr *a, socklen_t l) {
  (void)l;
  if (a->sa_family == AF_UNSPEC) { /* tcp_disconnect of a SYN_SENT socket */
    k.unspec[slot(fd)]++;
    k.state[slot(fd)] = ST_CLOSE;
    k.so_error[slot(fd)] = ECONNRESET;
    return 0;
  }
  k.connects[slot(fd)]++;
  if (k.connect_errno != 0) {
    errno = k.connect_errno;
    return -1;
  }
  k.state[slot(fd)] = ST_SYN_SENT;
  errno = EINPROGRESS;
  return -1;
}

int __wrap_getsockopt(int fd, int level, int name, void *val, socklen_t *len);
int __wrap_getsockopt(int fd, int level, int name, void *val,
                      socklen_t *len) {
  int s = slot(fd);

  if (level == SOL_SOCKET && name == SO_ERROR) {
    *(int *)val = k.so_error[s];
    k.so_error[s] = 0; /* reading clears it, as in the kernel */
    return 0;
  }
  if (level == IPPROTO_TCP && name == TCP_INFO) {
    struct tcp_info ti;

    memset(&ti, 0, sizeof(ti));
    ti.tcpi_state = (uint8_t)k.state[s];
    ti.tcpi_options = (uint8_t)k.options[s];
    ti.tcpi_fastopen_client_fail = (uint8_t)k.client_fail[s];
    /* The kernel has an RTT sample only once a SYN-ACK came. */
    ti.tcpi_rtt = k.state[s] == ST_ESTABLISHED || k.answered[s] ? 50000 : 0;
    ti.tcpi_total_retrans = (uint32_t)k.retrans[s];
    *len = k.tcp_info_short ? 4 : (*len < sizeof(ti) ? *len : sizeof(ti));
    memcpy(val, &ti, *len);
    return 0;
  }
  errno = ENOPROTOOPT;
  return -1;
}

int __wrap_tfo__metrics_get(const struct sockaddr *dst, socklen_t len,
                            struct tfo__metrics *m);
int __wrap_tfo__metrics_get(const struct sockaddr *dst, socklen_t len,
                            struct tfo__metrics *m) {
  (void)dst;
  (void)len;
  if (k.cookie_len < 0 && k.metrics_rtt == 0) {
    errno = ENOENT;
    return -1;
  }
  memset(m, 0, sizeof(*m));
  m->cookie_len = k.cookie_len > 0 ? k.cookie_len : 0;
  m->rtt_us = k.metrics_rtt;
  return 0;
}

int __wrap_tfo__cache_lookup(const struct sockaddr *sa, socklen_t len,
                             struct tfo__verdict *v);
int __wrap_tfo__cache_lookup(const struct sockaddr *sa, socklen_t len,
                             struct tfo__verdict *v) {
  (void)sa;
  (void)len;
  memset(v, 0, sizeof(*v));
  v->skip = k.cache_skip;
  v->rtt_us = k.cache_rtt;
  return 0;
}

int __wrap_tfo__cache_record(const struct sockaddr *sa, socklen_t len,
                             enum tfo__event ev, uint32_t rtt_us);
int __wrap_tfo__cache_record(const struct sockaddr *sa, socklen_t len,
                             enum tfo__event ev, uint32_t rtt_us) {
  (void)sa;
  (void)len;
  (void)rtt_us;
  k.recorded++;
  k.last_event = ev;
  return 0;
}

static int setup(void **state) {
  (void)state;
  memset(&k, 0, sizeof(k));
  k.cookie_len = -1;
  return 0;
}

static struct sockaddr_in dest(void) {
  struct sockaddr_in a;

  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_port = htons(80);
  a.sin_addr.s_addr = htonl(0xc6120002); /* 198.18.0.2 */
  return a;
}

static const char req[] = "GET / HTTP/1.0\r\n\r\n";

static tfo_conn *start(unsigned flags, int fallback_ms, struct tfo_watch *w) {
  struct sockaddr_in a = dest();
  struct tfo_connect_opts o = {0};
  struct iovec iov = {(void *)req, sizeof(req) - 1};
  tfo_conn *c;

  o.flags = flags | TFO_CONNECT_NONBLOCK;
  o.fallback_ms = fallback_ms;
  c = tfo_conn_start((struct sockaddr *)&a, sizeof(a), &iov, 1, &o, w);
  assert_non_null(c);
  return c;
}

/* --- outcome decoding ------------------------------------------------- */

static void decode_table(void **state) {
  static const struct {
    int cookie_sent;
    size_t syn_bytes;
    int granted;
    unsigned options;
    int client_fail;
    unsigned retrans;
    enum tfo_outcome want;
    enum tfo__event want_ev;
  } rows[] = {
      {0, 0, 1, 0, 1, 0, TFO_OUTCOME_COOKIE_REQUESTED, TFO__EV_COOKIE_GRANTED},
      {0, 0, -1, 0, 1, 0, TFO_OUTCOME_COOKIE_REQUESTED,
       TFO__EV_COOKIE_GRANTED},
      {0, 0, 0, 0, 1, 0, TFO_OUTCOME_COOKIE_REQUESTED, TFO__EV_NO_COOKIE},
      {0, 0, 0, 0, 1, 1, TFO_OUTCOME_COOKIE_REQUESTED, TFO__EV_BLACKHOLE},
      {1, 18, -1, 32, 0, 0, TFO_OUTCOME_DATA_ACKED, TFO__EV_DATA_ACKED},
      {1, 18, -1, 0, 2, 0, TFO_OUTCOME_DATA_NOT_ACKED,
       TFO__EV_DATA_NOT_ACKED},
      {1, 18, -1, 0, 3, 1, TFO_OUTCOME_DATA_NOT_ACKED, TFO__EV_BLACKHOLE},
      /* The data SYN never left (a local transmit failure): no reason. */
      {1, 18, -1, 0, 0, 0, TFO_OUTCOME_DATA_NOT_ACKED, TFO__EV_NONE},
      {1, 0, -1, 0, 0, 0, TFO_OUTCOME_DATA_ACKED, TFO__EV_DATA_ACKED},
  };
  size_t i;

  (void)state;
  for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
    struct tfo__tcpinfo ti = {ST_ESTABLISHED, rows[i].options,
                              rows[i].client_fail, 50000, rows[i].retrans, 1, 1};
    enum tfo__event ev = 0;

    assert_int_equal(tfo__decode_outcome(rows[i].cookie_sent,
                                         rows[i].syn_bytes, rows[i].granted,
                                         &ti, &ev),
                     rows[i].want);
    assert_int_equal(ev, rows[i].want_ev);
  }
}

/* --- the race in place (the shim's non-blocking sockets) ------------- */

static int fo_connect = -1;

static int mock_setsockopt(int fd, int level, int name, const void *val,
                           socklen_t len) {
  (void)fd;
  (void)len;
  if (level == IPPROTO_TCP && name == TCP_FASTOPEN_CONNECT)
    fo_connect = *(const int *)val;
  return 0;
}

static void restart_plain_in_place(void **state) {
  struct sockaddr_in a = dest();
  int (*real)(int, int, int, const void *, socklen_t) = tfo__sys.setsockopt;
  int rc;

  (void)state;
  k.state[0] = ST_SYN_SENT; /* the TFO SYN, unanswered */
  fo_connect = -1;
  tfo__sys.setsockopt = mock_setsockopt;
  rc = tfo__conn_restart_plain(FD0, (struct sockaddr *)&a, sizeof(a));
  tfo__sys.setsockopt = real;
  assert_int_equal(rc, 0);
  assert_int_equal(k.unspec[0], 1);   /* disconnected first */
  assert_int_equal(k.so_error[0], 0); /* its ECONNRESET consumed, not left */
  assert_int_equal(fo_connect, 0);    /* Fast Open off for the socket */
  assert_int_equal(k.connects[0], 1); /* then connected plainly */
  assert_int_equal(k.state[0], ST_SYN_SENT);
  assert_int_equal(k.closed[0], 0); /* the same socket throughout */
}

static void restart_plain_fails_cleanly(void **state) {
  struct sockaddr_in a = dest();
  int (*real)(int, int, int, const void *, socklen_t) = tfo__sys.setsockopt;
  int rc;

  (void)state;
  k.state[0] = ST_SYN_SENT;
  k.connect_errno = ENETUNREACH;
  tfo__sys.setsockopt = mock_setsockopt;
  rc = tfo__conn_restart_plain(FD0, (struct sockaddr *)&a, sizeof(a));
  tfo__sys.setsockopt = real;
  assert_int_equal(rc, -1);
  assert_int_equal(errno, ENETUNREACH);
}

static void judge_restarted_table(void **state) {
  static const struct {
    unsigned retrans, rtt_us;
    int race_ms, recorded;
  } rows[] = {
      {0, 50000, 150, 1},  /* answered at once: the path swallows TFO SYNs */
      {0, 149000, 150, 1}, /* sooner than the TFO one waited */
      {0, 150000, 150, 0}, /* as slow as the TFO SYN: a slow path */
      {1, 50000, 150, 0},  /* retransmitted: a path down for everyone */
      {0, 0, 150, 0},      /* no RTT sample: nothing known */
  };
  struct sockaddr_in a = dest();
  size_t i;

  (void)state;
  for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
    struct tfo__tcpinfo ti = {ST_ESTABLISHED, 0, 0, rows[i].rtt_us,
                              rows[i].retrans, 1, 1};

    k.recorded = 0;
    k.last_event = 0;
    assert_int_equal(tfo__judge_restarted(&ti, (struct sockaddr *)&a,
                                          sizeof(a), rows[i].race_ms),
                     TFO_OUTCOME_FALLBACK);
    assert_int_equal(k.recorded, rows[i].recorded);
    if (rows[i].recorded)
      assert_int_equal(k.last_event, TFO__EV_BLACKHOLE);
  }
}

static void tcpinfo_reads_kernel_fields(void **state) {
  struct tfo__tcpinfo ti;

  (void)state;
  k.state[0] = ST_ESTABLISHED;
  k.options[0] = 32 | 7;
  k.client_fail[0] = 2;
  k.retrans[0] = 1;
  assert_int_equal(tfo__tcpinfo_get(FD0, &ti), 0);
  assert_int_equal(ti.state, ST_ESTABLISHED);
  assert_int_equal(ti.options & TFO__TCPI_OPT_SYN_DATA, 32);
  assert_int_equal(ti.client_fail, 2);
  assert_int_equal(ti.rtt_us, 50000);
  assert_int_equal(ti.retrans, 1);

  k.tcp_info_short = 1;
  errno = 0;
  assert_int_equal(tfo__tcpinfo_get(FD0, &ti), -1);
  assert_int_equal(errno, EPROTO);
}

static void fallback_delay_follows_rtt(void **state) {
  struct sockaddr_in a = dest();
  const struct sockaddr *sa = (const struct sockaddr *)&a;

  (void)state;
  assert_int_equal(tfo__fallback_delay_ms(sa, sizeof(a), 50000), 150);
  assert_int_equal(tfo__fallback_delay_ms(sa, sizeof(a), 1000),
                   TFO__FALLBACK_MIN_MS);
  assert_int_equal(tfo__fallback_delay_ms(sa, sizeof(a), 900000),
                   TFO__FALLBACK_MAX_MS);
  /* Unknown to us and to the kernel. */
  assert_int_equal(tfo__fallback_delay_ms(sa, sizeof(a), 0),
                   TFO__FALLBACK_UNKNOWN_MS);
  /* Unknown to us, known to the kernel's tcp_metrics. */
  k.metrics_rtt = 10000;
  assert_int_equal(tfo__fallback_delay_ms(sa, sizeof(a), 0), 30);
}

/* --- the state machine ------------------------------------------------- */

static void cookie_request_then_granted(void **state) {
  struct tfo_watch w;
  struct tfo_result r;
  tfo_conn *c;
  int fd;

  (void)state;
  k.fastopen_ret = -EINPROGRESS; /* no cookie: a cookie request left */
  c = start(0, 0, &w);
  assert_int_equal(w.fd[0], FD0);
  assert_int_equal(w.events[0], POLLOUT);
  assert_int_equal(w.fd[1], -1);
  assert_in_range(w.timeout_ms, 1, TFO__FALLBACK_UNKNOWN_MS);

  k.state[0] = ST_ESTABLISHED; /* SYN-ACK */
  k.cookie_len = 8;
  assert_int_equal(tfo_conn_step(c, &w), 0);
  fd = tfo_conn_finish(c, &r);
  assert_int_equal(fd, FD0);
  assert_int_equal(r.outcome, TFO_OUTCOME_COOKIE_REQUESTED);
  assert_int_equal(r.bytes_sent, sizeof(req) - 1);
  assert_int_equal(r.syn_bytes, 0);
  assert_int_equal(k.sent_plain[0], sizeof(req) - 1); /* after handshake */
  assert_int_equal(k.last_event, TFO__EV_COOKIE_GRANTED);
  assert_int_equal(k.closed[0], 0);
}

static void data_in_syn_acked(void **state) {
  struct tfo_watch w;
  struct tfo_result r;
  tfo_conn *c;

  (void)state;
  k.fastopen_ret = 10; /* cookie: 10 bytes fit in the SYN */
  c = start(0, 0, &w);
  k.state[0] = ST_ESTABLISHED;
  k.options[0] = 32;
  assert_int_equal(tfo_conn_step(c, &w), 0);
  assert_int_equal(tfo_conn_finish(c, &r), FD0);
  assert_int_equal(r.outcome, TFO_OUTCOME_DATA_ACKED);
  assert_int_equal(r.syn_bytes, 10);
  assert_int_equal(r.bytes_sent, sizeof(req) - 1);
  /* Only the rest went after the handshake. */
  assert_int_equal(k.sent_plain[0], sizeof(req) - 1 - 10);
  assert_int_equal(k.last_event, TFO__EV_DATA_ACKED);
}

static void client_bit_off_is_disabled(void **state) {
  struct tfo_watch w;
  struct tfo_result r;
  tfo_conn *c;

  (void)state;
  k.fastopen_ret = -EOPNOTSUPP;
  c = start(0, 0, &w);
  assert_int_equal(k.connects[0], 1); /* the same socket, connected plainly */
  assert_int_equal(w.fd[1], FD0);
  k.state[0] = ST_ESTABLISHED;
  assert_int_equal(tfo_conn_step(c, &w), 0);
  assert_int_equal(tfo_conn_finish(c, &r), FD0);
  assert_int_equal(r.outcome, TFO_OUTCOME_DISABLED);
  assert_int_equal(k.sent_plain[0], sizeof(req) - 1);
  assert_int_equal(k.recorded, 0);
}

static void reset_retries_plainly_at_once(void **state) {
  struct tfo_watch w;
  struct tfo_result r;
  tfo_conn *c;

  (void)state;
  k.fastopen_ret = 18;
  c = start(0, 0, &w);
  k.so_error[0] = ECONNREFUSED; /* RST to SYN+data */
  k.state[0] = ST_CLOSE;
  assert_int_equal(tfo_conn_step(c, &w), 1);
  assert_int_equal(k.closed[0], 1);
  assert_int_equal(k.connects[1], 1); /* no timer waited for */
  assert_int_equal(w.fd[0], -1);
  assert_int_equal(w.fd[1], FD0 + 1);
  k.state[1] = ST_ESTABLISHED;
  assert_int_equal(tfo_conn_step(c, &w), 0);
  assert_int_equal(tfo_conn_finish(c, &r), FD0 + 1);
  assert_int_equal(r.outcome, TFO_OUTCOME_FALLBACK);
  assert_int_equal(r.syn_bytes, 0);
  assert_int_equal(k.sent_plain[1], sizeof(req) - 1); /* all of it again */
  assert_int_equal(k.last_event, TFO__EV_RESET);
}

static void closed_port_caches_nothing(void **state) {
  struct tfo_watch w;
  tfo_conn *c;

  (void)state;
  k.fastopen_ret = -EINPROGRESS;
  c = start(0, 0, &w);
  k.so_error[0] = ECONNREFUSED;
  k.state[0] = ST_CLOSE;
  assert_int_equal(tfo_conn_step(c, &w), 1);
  k.so_error[1] = ECONNREFUSED;
  k.state[1] = ST_CLOSE;
  assert_int_equal(tfo_conn_step(c, &w), 0);
  errno = 0;
  assert_int_equal(tfo_conn_finish(c, NULL), -1);
  assert_int_equal(errno, ECONNREFUSED);
  assert_int_equal(k.recorded, 0);
  assert_int_equal(k.closed[0], 1);
  assert_int_equal(k.closed[1], 1);
}

/* The server took the SYN's data, then reset (an application abort, or a
 * close with unread data) before the machine looked: an error for the
 * caller, no plain retry that would deliver the request twice, and TFO is
 * judged on its handshake, not blamed. */
static void reset_after_handshake_is_the_servers(void **state) {
  struct tfo_watch w;
  struct tfo_result r;
  tfo_conn *c;

  (void)state;
  k.fastopen_ret = 18;
  c = start(0, 0, &w);
  k.so_error[0] = ECONNRESET;
  k.state[0] = ST_CLOSE;
  k.answered[0] = 1;
  k.options[0] = 32;
  assert_int_equal(tfo_conn_step(c, &w), 0);
  errno = 0;
  assert_int_equal(tfo_conn_finish(c, &r), -1);
  assert_int_equal(errno, ECONNRESET);
  assert_int_equal(k.connects[1], 0);
  assert_int_equal(k.next_fd, 1); /* no second socket at all */
  assert_int_equal(k.closed[0], 1);
  assert_int_equal(k.recorded, 1);
  assert_int_equal(k.last_event, TFO__EV_DATA_ACKED);
}

/* The racing plain connect found no route (link down, route deleted): the
 * path lost everything for a while, so the TFO SYN that the kernel had to
 * retransmit says nothing about TFO. Nothing is recorded. */
static void no_route_is_not_a_blackhole(void **state) {
  struct tfo_watch w;
  struct tfo_result r;
  tfo_conn *c;

  (void)state;
  k.fastopen_ret = 18;
  k.connect_errno = ENETUNREACH;
  c = start(0, 1, &w);
  while (k.connects[1] == 0)
    assert_int_equal(tfo_conn_step(c, &w), 1);
  assert_int_equal(k.closed[1], 1); /* the racer failed at once */
  assert_int_equal(w.fd[0], FD0);   /* the TFO SYN is still waited for */
  k.state[0] = ST_ESTABLISHED;      /* the route is back: its retransmission */
  k.client_fail[0] = 3;
  k.retrans[0] = 1;
  assert_int_equal(tfo_conn_step(c, &w), 0);
  assert_int_equal(tfo_conn_finish(c, &r), FD0);
  assert_int_equal(r.outcome, TFO_OUTCOME_DATA_NOT_ACKED);
  assert_int_equal(k.recorded, 0);
}

/* The same when the racer's SYN draws an unreachable error later (ICMP). */
static void unreachable_racer_is_not_a_blackhole(void **state) {
  struct tfo_watch w;
  struct tfo_result r;
  tfo_conn *c;

  (void)state;
  k.fastopen_ret = 18;
  c = start(0, 1, &w);
  while (k.connects[1] == 0)
    assert_int_equal(tfo_conn_step(c, &w), 1);
  k.so_error[1] = EHOSTUNREACH;
  k.state[1] = ST_CLOSE;
  assert_int_equal(tfo_conn_step(c, &w), 1);
  assert_int_equal(k.closed[1], 1);
  k.state[0] = ST_ESTABLISHED;
  k.client_fail[0] = 3;
  k.retrans[0] = 1;
  assert_int_equal(tfo_conn_step(c, &w), 0);
  assert_int_equal(tfo_conn_finish(c, &r), FD0);
  assert_int_equal(k.recorded, 0);
}

/* TFO wins through the kernel's retransmitted SYN. If our plain SYN had
 * been out for longer than an RTT (50 ms here) unanswered, plain SYNs were
 * lost too (a link that went down, the server's side gone for a while): no
 * blackhole. If it had just left, nothing is known of it: a blackhole, as
 * without a race. */
static void tfo_retransmission_wins_race(int wait_ms, int want_recorded) {
  struct timespec ts = {0, (long)wait_ms * 1000 * 1000};
  struct tfo_watch w;
  struct tfo_result r;
  tfo_conn *c;

  k.fastopen_ret = 18;
  c = start(0, 1, &w);
  while (k.connects[1] == 0)
    assert_int_equal(tfo_conn_step(c, &w), 1);
  nanosleep(&ts, NULL);
  k.state[0] = ST_ESTABLISHED;
  k.client_fail[0] = 3;
  k.retrans[0] = 1;
  assert_int_equal(tfo_conn_step(c, &w), 0);
  assert_int_equal(tfo_conn_finish(c, &r), FD0);
  assert_int_equal(r.outcome, TFO_OUTCOME_DATA_NOT_ACKED);
  assert_int_equal(k.closed[1], 1);
  assert_int_equal(k.recorded, want_recorded);
  if (want_recorded)
    assert_int_equal(k.last_event, TFO__EV_BLACKHOLE);
}

static void plain_syn_lost_too_is_not_a_blackhole(void **state) {
  (void)state;
  tfo_retransmission_wins_race(150, 0);
}

static void fresh_plain_syn_leaves_the_blackhole(void **state) {
  (void)state;
  tfo_retransmission_wins_race(0, 1);
}

static void silence_races_a_plain_connect(void **state) {
  struct tfo_watch w;
  struct tfo_result r;
  tfo_conn *c;

  (void)state;
  k.fastopen_ret = 18;
  c = start(0, 1, &w); /* 1 ms race delay */
  assert_in_range(w.timeout_ms, 0, 1);
  while (k.connects[1] == 0) /* the SYN goes unanswered */
    assert_int_equal(tfo_conn_step(c, &w), 1);
  assert_int_equal(w.fd[0], FD0);
  assert_int_equal(w.fd[1], FD0 + 1);
  assert_int_equal(w.timeout_ms, -1);
  k.state[1] = ST_ESTABLISHED;
  assert_int_equal(tfo_conn_step(c, &w), 0);
  assert_int_equal(tfo_conn_finish(c, &r), FD0 + 1);
  assert_int_equal(r.outcome, TFO_OUTCOME_FALLBACK);
  assert_int_equal(r.fallback_ms, 1);
  assert_int_equal(k.closed[0], 1); /* the loser */
  assert_int_equal(k.last_event, TFO__EV_BLACKHOLE);
}

/* The path lost every SYN for a while (a link down that came back between
 * the TFO SYN's retransmission and the plain one's): the plain connect
 * wins through its own retransmitted SYN. Nothing is held against TFO. */
static void plain_retransmission_wins_race(void **state) {
  struct tfo_watch w;
  struct tfo_result r;
  tfo_conn *c;

  (void)state;
  k.fastopen_ret = 18;
  c = start(0, 1, &w); /* 1 ms race delay */
  while (k.connects[1] == 0)
    assert_int_equal(tfo_conn_step(c, &w), 1);
  k.state[1] = ST_ESTABLISHED;
  k.retrans[1] = 1; /* its first SYN was lost as well */
  assert_int_equal(tfo_conn_step(c, &w), 0);
  assert_int_equal(tfo_conn_finish(c, &r), FD0 + 1);
  assert_int_equal(r.outcome, TFO_OUTCOME_FALLBACK);
  assert_int_equal(k.closed[0], 1);
  assert_int_equal(k.recorded, 0);
}

/* The TFO SYN is answered too, just after the plain one (a busy host, a
 * LAN's jitter over the 20 ms race floor): slow, not a blackhole. */
static void late_answer_is_not_a_blackhole(void **state) {
  struct tfo_watch w;
  struct tfo_result r;
  tfo_conn *c;

  (void)state;
  k.fastopen_ret = 18;
  c = start(0, 1, &w); /* 1 ms race delay */
  while (k.connects[1] == 0)
    assert_int_equal(tfo_conn_step(c, &w), 1);
  k.state[1] = ST_ESTABLISHED;
  k.answered[0] = 1; /* its SYN-ACK is in, the plain one was seen first */
  assert_int_equal(tfo_conn_step(c, &w), 0);
  assert_int_equal(tfo_conn_finish(c, &r), FD0 + 1);
  assert_int_equal(r.outcome, TFO_OUTCOME_FALLBACK);
  assert_int_equal(k.closed[0], 1);
  assert_int_equal(k.recorded, 0);
}

static void no_race_waits_for_the_kernel(void **state) {
  struct tfo_watch w;
  struct tfo_result r;
  tfo_conn *c;

  (void)state;
  k.fastopen_ret = 18;
  c = start(TFO_CONNECT_NO_RACE, 1, &w);
  assert_int_equal(w.timeout_ms, -1);
  assert_int_equal(tfo_conn_step(c, &w), 1);
  assert_int_equal(k.connects[1], 0);
  /* The kernel's retransmitted, plain SYN got through a second later. */
  k.state[0] = ST_ESTABLISHED;
  k.client_fail[0] = 3;
  k.retrans[0] = 1;
  assert_int_equal(tfo_conn_step(c, &w), 0);
  assert_int_equal(tfo_conn_finish(c, &r), FD0);
  assert_int_equal(r.outcome, TFO_OUTCOME_DATA_NOT_ACKED);
  assert_int_equal(r.client_fail, 3);
  assert_int_equal(k.last_event, TFO__EV_BLACKHOLE);
}

static void cached_skip_connects_plainly(void **state) {
  struct tfo_watch w;
  struct tfo_result r;
  tfo_conn *c;

  (void)state;
  k.cache_skip = 1;
  k.fastopen_ret = -EPERM; /* must not be reached */
  c = start(0, 0, &w);
  assert_int_equal(k.connects[0], 1);
  k.state[0] = ST_ESTABLISHED;
  assert_int_equal(tfo_conn_step(c, &w), 0);
  assert_int_equal(tfo_conn_finish(c, &r), FD0);
  assert_int_equal(r.outcome, TFO_OUTCOME_SKIPPED);
  assert_int_equal(k.recorded, 0);
}

static void bad_input(void **state) {
  struct sockaddr_in a = dest();
  struct sockaddr_in6 a6;
  struct sockaddr un = {AF_UNIX, {0}};
  struct tfo_connect_opts o = {0};
  struct iovec iov = {NULL, 5};

  (void)state;
  errno = 0;
  assert_int_equal(tfo_connect_send(NULL, sizeof(a), "x", 1, NULL, NULL), -1);
  assert_int_equal(errno, EINVAL);
  assert_int_equal(
      tfo_connect_send((struct sockaddr *)&a, sizeof(a) - 1, "x", 1, NULL,
                       NULL),
      -1);
  assert_int_equal(errno, EINVAL);
  memset(&a6, 0, sizeof(a6));
  a6.sin6_family = AF_INET6;
  assert_int_equal(tfo_connect_send((struct sockaddr *)&a6,
                                    sizeof(struct sockaddr_in), "x", 1, NULL,
                                    NULL),
                   -1);
  assert_int_equal(errno, EINVAL);
  assert_int_equal(tfo_connect_send(&un, sizeof(un), "x", 1, NULL, NULL), -1);
  assert_int_equal(errno, EAFNOSUPPORT);
  assert_int_equal(
      tfo_connect_send((struct sockaddr *)&a, sizeof(a), NULL, 3, NULL, NULL),
      -1);
  assert_int_equal(errno, EINVAL);
  assert_int_equal(tfo_connect_sendv((struct sockaddr *)&a, sizeof(a), &iov, 1,
                                     NULL, NULL),
                   -1);
  assert_int_equal(errno, EINVAL);
  assert_int_equal(tfo_connect_sendv((struct sockaddr *)&a, sizeof(a), &iov,
                                     -1, NULL, NULL),
                   -1);
  o.reserved_int[2] = 1; /* a future option this library does not know */
  assert_int_equal(
      tfo_connect_send((struct sockaddr *)&a, sizeof(a), "x", 1, &o, NULL), -1);
  assert_int_equal(errno, EINVAL);
  o.reserved_int[2] = 0;
  o.fallback_ms = -5;
  assert_int_equal(
      tfo_connect_send((struct sockaddr *)&a, sizeof(a), "x", 1, &o, NULL), -1);
  assert_int_equal(errno, EINVAL);
  o.fallback_ms = 0;
  o.flags = 0x80;
  assert_int_equal(
      tfo_connect_send((struct sockaddr *)&a, sizeof(a), "x", 1, &o, NULL), -1);
  assert_int_equal(errno, EINVAL);
  assert_int_equal(k.next_fd, 0); /* no socket was ever made */
  assert_int_equal(tfo_conn_step(NULL, NULL), 0);
  assert_int_equal(tfo_conn_finish(NULL, NULL), -1);
  tfo_conn_abort(NULL);
  assert_string_equal(tfo_outcome_str((enum tfo_outcome)0), "unknown");
  assert_string_equal(tfo_outcome_str(TFO_OUTCOME_SKIPPED), "skipped");
}

/* The shim's path: its own socket (slot 3) already sent the TFO SYN. */
static tfo_conn *adopt(struct tfo_watch *w) {
  struct sockaddr_in a = dest();
  struct iovec iov = {(void *)req, sizeof(req) - 1};
  tfo_conn *c;

  k.state[3] = ST_SYN_SENT;
  c = tfo__conn_adopt(FD0 + 3, 1, 10, (struct sockaddr *)&a, sizeof(a), &iov,
                      1, w, NULL);
  assert_non_null(c);
  return c;
}

static void adopted_socket_wins(void **state) {
  struct tfo_watch w;
  struct tfo_result r;
  tfo_conn *c;

  (void)state;
  k.cache_rtt = 50000; /* race after 150 ms */
  c = adopt(&w);
  assert_int_equal(w.fd[0], FD0 + 3);
  assert_in_range(w.timeout_ms, 140, 150);
  k.state[3] = ST_ESTABLISHED;
  k.options[3] = 32;
  assert_int_equal(tfo_conn_step(c, &w), 0);
  assert_int_equal(tfo_conn_finish(c, &r), FD0 + 3);
  assert_int_equal(r.outcome, TFO_OUTCOME_DATA_ACKED);
  assert_int_equal(k.sent_plain[3], sizeof(req) - 1 - 10); /* the rest */
  assert_int_equal(k.last_event, TFO__EV_DATA_ACKED);
}

static void adopted_socket_loses_and_stays_open(void **state) {
  struct tfo_watch w;
  struct tfo_result r;
  tfo_conn *c;

  (void)state;
  c = adopt(&w);
  while (k.connects[0] == 0) {
    /* No SYN-ACK: wait out the (mocked, real-time) race delay. */
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    assert_int_equal(tfo_conn_step(c, &w), 1);
  }
  k.state[0] = ST_ESTABLISHED;
  assert_int_equal(tfo_conn_step(c, &w), 0);
  assert_int_equal(tfo_conn_finish(c, &r), FD0);
  assert_int_equal(r.outcome, TFO_OUTCOME_FALLBACK);
  assert_int_equal(k.sent_plain[0], sizeof(req) - 1); /* all of it again */
  assert_int_equal(k.closed[3], 0); /* the caller's socket is the caller's */
  assert_int_equal(k.last_event, TFO__EV_BLACKHOLE);
}

static void abort_closes_everything(void **state) {
  struct tfo_watch w;
  tfo_conn *c;

  (void)state;
  k.fastopen_ret = 18;
  c = start(0, 1, &w);
  while (k.connects[1] == 0)
    tfo_conn_step(c, &w);
  tfo_conn_abort(c);
  assert_int_equal(k.closed[0], 1);
  assert_int_equal(k.closed[1], 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(decode_table, setup),
      cmocka_unit_test_setup(restart_plain_in_place, setup),
      cmocka_unit_test_setup(restart_plain_fails_cleanly, setup),
      cmocka_unit_test_setup(judge_restarted_table, setup),
      cmocka_unit_test_setup(tcpinfo_reads_kernel_fields, setup),
      cmocka_unit_test_setup(fallback_delay_follows_rtt, setup),
      cmocka_unit_test_setup(cookie_request_then_granted, setup),
      cmocka_unit_test_setup(data_in_syn_acked, setup),
      cmocka_unit_test_setup(client_bit_off_is_disabled, setup),
      cmocka_unit_test_setup(reset_retries_plainly_at_once, setup),
      cmocka_unit_test_setup(closed_port_caches_nothing, setup),
      cmocka_unit_test_setup(reset_after_handshake_is_the_servers, setup),
      cmocka_unit_test_setup(no_route_is_not_a_blackhole, setup),
      cmocka_unit_test_setup(unreachable_racer_is_not_a_blackhole, setup),
      cmocka_unit_test_setup(plain_syn_lost_too_is_not_a_blackhole, setup),
      cmocka_unit_test_setup(plain_retransmission_wins_race, setup),
      cmocka_unit_test_setup(fresh_plain_syn_leaves_the_blackhole, setup),
      cmocka_unit_test_setup(silence_races_a_plain_connect, setup),
      cmocka_unit_test_setup(late_answer_is_not_a_blackhole, setup),
      cmocka_unit_test_setup(no_race_waits_for_the_kernel, setup),
      cmocka_unit_test_setup(cached_skip_connects_plainly, setup),
      cmocka_unit_test_setup(bad_input, setup),
      cmocka_unit_test_setup(abort_closes_everything, setup),
      cmocka_unit_test_setup(adopted_socket_wins, setup),
      cmocka_unit_test_setup(adopted_socket_loses_and_stays_open, setup),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
