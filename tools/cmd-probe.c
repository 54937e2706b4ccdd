/* tfoctl probe: does a server do TCP Fast Open, and if not, where does it
 * break?
 *
 * Two connections with tfo_connect_send (the negative cache left out):
 * the first asks for a cookie (or uses one the kernel holds), the second
 * carries data in the SYN. Their outcomes and the kernel's cookie cache
 * tell a working server, a blackhole (TFO SYNs unanswered) and a server or
 * path that grants no cookie.
 *
 * That last case has two causes: a server without TFO, and a middlebox that
 * strips the TFO option from SYNs. A held cookie tells them apart: a TFO
 * server that gets a cookie it does not take sends a new one, so a cookie
 * sent, neither taken nor replaced, never reached the server. Without a
 * cookie, raw SYNs ask for one with option 34 and with the pre-RFC
 * experimental option (kind 254, magic 0xF989), which Linux servers still
 * answer (the check from the seed's scapy example, in C): a cookie to the
 * second only means the path strips option 34. Raw sockets need
 * CAP_NET_RAW; without it the verdict says it could not tell.
 *
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "env.h"
#include "metrics.h"
#include "tfo.h"
#include "tfoctl.h"

#define DEFAULT_DATA "HEAD / HTTP/1.0\r\n\r\n"
#define DEFAULT_PORT "80"

enum raw_answer {
  RAW_UNTRIED = 0,
  RAW_UNAVAILABLE, /* no raw socket (not privileged) */
  RAW_NO_ANSWER,
  RAW_RESET,
  RAW_NO_COOKIE,
  RAW_COOKIE
};

static const char *raw_str(enum raw_answer a) {
  switch (a) {
    case RAW_UNTRIED:
      return "untried";
    case RAW_UNAVAILABLE:
      return "unavailable";
    case RAW_NO_ANSWER:
      return "no-answer";
    case RAW_RESET:
      return "reset";
    case RAW_NO_COOKIE:
      return "no-cookie";
    case RAW_COOKIE:
      return "cookie";
  }
  return "?";
}

struct conn {
  int done;
  int err; /* errno when the connection failed */
  struct tfo_result r;
  int cookie_after; /* the kernel holds a cookie after it */
};

struct probe {
  struct sockaddr_storage addr;
  socklen_t len;
  const char *data;
  int timeout_ms;
  int fresh; /* forget the kernel's cookie first */
  int had_cookie;
  uint8_t cookie_before[16];
  int cookie_before_len;
  struct conn c[2];
  enum raw_answer raw34, rawexp;
  const char *verdict;
  char detail[320];
  int exit;
};

/* --- the kernel's cookie cache ------------------------------------------ */

static int cookie_of(const struct probe *p, uint8_t *cookie) {
  struct tfo__metrics m;

  if (tfo__metrics_get((const struct sockaddr *)&p->addr, p->len, &m) != 0)
    return 0;
  if (cookie != NULL)
    memcpy(cookie, m.cookie, sizeof(m.cookie));
  return m.cookie_len;
}

/* --- connections through libtfo ----------------------------------------- */

static void drain(int fd, int ms) {
  struct pollfd pfd = {fd, POLLIN, 0};
  char buf[4096];

  /* Take the answer if it comes at once, so that our close is a FIN, not a
   * reset; never wait long, the verdict does not depend on it. */
  shutdown(fd, SHUT_WR);
  while (poll(&pfd, 1, ms) > 0 && read(fd, buf, sizeof(buf)) > 0)
    ;
}

static void connect_once(struct probe *p, struct conn *c) {
  struct tfo_connect_opts o = {0};
  int fd;

  o.flags = TFO_CONNECT_NO_CACHE;
  o.timeout_ms = p->timeout_ms;
  c->done = 1;
  fd = tfo_connect_send((const struct sockaddr *)&p->addr, p->len, p->data,
                        strlen(p->data), &o, &c->r);
  if (fd < 0) {
    c->err = errno;
    return;
  }
  drain(fd, 200);
  close(fd);
  c->cookie_after = cookie_of(p, NULL) > 0;
}

/* --- a raw SYN asking for a cookie -------------------------------------- */

struct pseudo {
  const uint8_t *src, *dst;
  size_t alen; /* 4 or 16 */
};

static uint16_t checksum(const struct pseudo *ph, const uint8_t *tcp,
                         size_t len) {
  uint32_t sum = 0;
  size_t i;

  for (i = 0; i < ph->alen; i += 2)
    sum += (uint32_t)(ph->src[i] << 8 | ph->src[i + 1]) +
           (uint32_t)(ph->dst[i] << 8 | ph->dst[i + 1]);
  sum += IPPROTO_TCP + (uint32_t)len; /* same sum for both pseudo headers */
  for (i = 0; i + 1 < len; i += 2)
    sum += (uint32_t)(tcp[i] << 8 | tcp[i + 1]);
  if (len & 1)
    sum += (uint32_t)tcp[len - 1] << 8;
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

/* Looks for a TFO option (34, or 254 with the magic) in a SYN-ACK's
 * options; 1 when it carries a cookie. */
static int has_cookie(const uint8_t *o, size_t n) {
  size_t i = 0, l;

  while (i < n) {
    if (o[i] == 0)
      break;
    if (o[i] == 1) {
      i++;
      continue;
    }
    if (i + 1 >= n || o[i + 1] < 2 || i + o[i + 1] > n)
      break;
    l = o[i + 1];
    if (o[i] == 34 && l >= 2 + 4)
      return 1;
    if (o[i] == 254 && l >= 4 + 4 && o[i + 2] == 0xf9 && o[i + 3] == 0x89)
      return 1;
    i += l;
  }
  return 0;
}

static enum raw_answer raw_probe(const struct probe *p, int experimental,
                                 int wait_ms) {
  struct sockaddr_storage src, from, to;
  socklen_t slen = sizeof(src), flen;
  const struct sockaddr *dst = (const struct sockaddr *)&p->addr;
  int family = p->addr.ss_family, v6 = family == AF_INET6;
  uint8_t pkt[28], buf[2048];
  const uint8_t *sa, *da, *fa, *t;
  uint16_t sport, dport, sum;
  uint32_t seq;
  struct pseudo ph;
  struct pollfd pfd;
  struct timespec t0, now;
  int u = -1, hold = -1, raw = -1, sent = 0, elapsed, left, n, off;
  enum raw_answer ans = RAW_NO_ANSWER;

  /* The source address the kernel would use, and a port of our own: a
   * bound socket keeps any connection off it, and with no listener there
   * the kernel resets the SYN-ACK for us, freeing the server's slot. */
  u = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (u < 0 || connect(u, dst, p->len) != 0 ||
      getsockname(u, (struct sockaddr *)&src, &slen) != 0)
    goto out_err;
  if (v6)
    ((struct sockaddr_in6 *)&src)->sin6_port = 0;
  else
    ((struct sockaddr_in *)&src)->sin_port = 0;
  hold = socket(family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
  slen = v6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
  if (hold < 0 || bind(hold, (struct sockaddr *)&src, slen) != 0 ||
      getsockname(hold, (struct sockaddr *)&src, &slen) != 0)
    goto out_err;
  raw = socket(family, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_TCP);
  if (raw < 0) {
    ans = (errno == EPERM || errno == EACCES) ? RAW_UNAVAILABLE : RAW_NO_ANSWER;
    goto out;
  }
  if (v6) {
    sa = ((struct sockaddr_in6 *)&src)->sin6_addr.s6_addr;
    da = ((const struct sockaddr_in6 *)dst)->sin6_addr.s6_addr;
    sport = ((struct sockaddr_in6 *)&src)->sin6_port;
    dport = ((const struct sockaddr_in6 *)dst)->sin6_port;
  } else {
    sa = (const uint8_t *)&((struct sockaddr_in *)&src)->sin_addr;
    da = (const uint8_t *)&((const struct sockaddr_in *)dst)->sin_addr;
    sport = ((struct sockaddr_in *)&src)->sin_port;
    dport = ((const struct sockaddr_in *)dst)->sin_port;
  }
  if (getrandom(&seq, sizeof(seq), 0) != (ssize_t)sizeof(seq))
    seq = (uint32_t)time(NULL);

  /* 20-byte header + MSS (4) + the TFO cookie request (4 with padding). */
  memset(pkt, 0, sizeof(pkt));
  memcpy(pkt, &sport, 2);
  memcpy(pkt + 2, &dport, 2);
  pkt[4] = (uint8_t)(seq >> 24);
  pkt[5] = (uint8_t)(seq >> 16);
  pkt[6] = (uint8_t)(seq >> 8);
  pkt[7] = (uint8_t)seq;
  pkt[12] = 7 << 4; /* 28 bytes */
  pkt[13] = 0x02;   /* SYN */
  pkt[14] = 0xff;
  pkt[15] = 0xff;
  pkt[20] = 2; /* MSS 1220: fits any path */
  pkt[21] = 4;
  pkt[22] = 1220 >> 8;
  pkt[23] = 1220 & 0xff;
  if (experimental) {
    pkt[24] = 254;
    pkt[25] = 4;
    pkt[26] = 0xf9;
    pkt[27] = 0x89;
  } else {
    pkt[24] = 1;
    pkt[25] = 1;
    pkt[26] = 34;
    pkt[27] = 2;
  }
  ph.src = sa;
  ph.dst = da;
  ph.alen = v6 ? 16 : 4;
  sum = htons(checksum(&ph, pkt, sizeof(pkt)));
  memcpy(pkt + 16, &sum, 2);

  memcpy(&to, dst, p->len);
  if (v6)
    ((struct sockaddr_in6 *)&to)->sin6_port = 0; /* raw: the protocol */
  else
    ((struct sockaddr_in *)&to)->sin_port = 0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (;;) {
    clock_gettime(CLOCK_MONOTONIC, &now);
    elapsed = (int)((now.tv_sec - t0.tv_sec) * 1000 +
                    (now.tv_nsec - t0.tv_nsec) / 1000000);
    if (elapsed >= wait_ms)
      break;
    /* Once, and again halfway: one lost SYN must not read as "no answer". */
    if (sent == 0 || (sent == 1 && elapsed >= wait_ms / 2)) {
      if (sendto(raw, pkt, sizeof(pkt), 0, (struct sockaddr *)&to, p->len) !=
          (ssize_t)sizeof(pkt))
        goto out_err;
      sent++;
    }
    pfd.fd = raw;
    pfd.events = POLLIN;
    left = (sent == 1 ? wait_ms / 2 : wait_ms) - elapsed;
    if (poll(&pfd, 1, left > 0 ? left : 0) <= 0)
      continue;
    flen = sizeof(from);
    n = (int)recvfrom(raw, buf, sizeof(buf), 0, (struct sockaddr *)&from,
                      &flen);
    if (n <= 0)
      continue;
    /* IPv4 raw sockets deliver the IP header, IPv6 ones do not. */
    off = v6 ? 0 : (buf[0] & 0x0f) * 4;
    fa = v6 ? ((struct sockaddr_in6 *)&from)->sin6_addr.s6_addr
            : (const uint8_t *)&((struct sockaddr_in *)&from)->sin_addr;
    if (n < off + 20 || memcmp(fa, da, ph.alen) != 0)
      continue;
    t = buf + off;
    if (memcmp(t, &dport, 2) != 0 || memcmp(t + 2, &sport, 2) != 0)
      continue;
    if ((t[13] & 0x12) == 0x12) { /* SYN-ACK */
      size_t hl = (size_t)(t[12] >> 4) * 4;

      if (hl < 20 || (int)hl > n - off)
        continue;
      ans = has_cookie(t + 20, hl - 20) ? RAW_COOKIE : RAW_NO_COOKIE;
      goto out;
    }
    if (t[13] & 0x04) {
      ans = RAW_RESET;
      goto out;
    }
  }
  goto out;
out_err:
  ans = RAW_NO_ANSWER;
out:
  if (raw >= 0)
    close(raw);
  if (hold >= 0)
    close(hold);
  if (u >= 0)
    close(u);
  return ans;
}

/* --- the verdict --------------------------------------------------------- */

static void verdict(struct probe *p, const char *v, int exit_code,
                    const char *detail) {
  p->verdict = v;
  p->exit = exit_code;
  snprintf(p->detail, sizeof(p->detail), "%s", detail);
}

/* No cookie came back to option 34: a server without TFO, or a path that
 * strips the option. The raw SYNs tell which. */
static void no_cookie(struct probe *p) {
  p->rawexp = raw_probe(p, 1, 1500);
  if (p->rawexp != RAW_UNAVAILABLE)
    p->raw34 = raw_probe(p, 0, 1500);
  if (p->rawexp == RAW_UNAVAILABLE)
    verdict(p, "no-cookie", EXIT_FAIL,
            "no cookie granted: the server does not do TFO, or the path "
            "strips the TFO option (run as root to tell which)");
  else if (p->rawexp == RAW_COOKIE && p->raw34 != RAW_COOKIE)
    verdict(p, "strip", EXIT_FAIL,
            "the server grants cookies (it answered the experimental TFO "
            "option) but never to option 34: the path strips option 34 from "
            "SYNs");
  else if (p->rawexp == RAW_NO_COOKIE && p->raw34 == RAW_NO_COOKIE)
    verdict(p, "no-tfo", EXIT_FAIL,
            "the server answers SYNs without a cookie, in either option "
            "format: it does not do TFO (server bit of net.ipv4.tcp_fastopen "
            "off, or no TCP_FASTOPEN on the listener), or a middlebox strips "
            "every TFO option (a probe while a cookie is held tells which)");
  else
    verdict(p, "no-cookie", EXIT_FAIL,
            "no cookie granted to this host, and the raw SYNs did not say "
            "why");
}

static int unreachable(int e) {
  return e == ECONNREFUSED || e == ETIMEDOUT || e == EHOSTUNREACH ||
         e == ENETUNREACH || e == EADDRNOTAVAIL || e == ECONNRESET;
}

/* Returns 0 when this address gave an answer, -1 when it could not be
 * reached (the caller tries the next). */
static int run(struct probe *p) {
  struct conn *c1 = &p->c[0], *c2 = &p->c[1];
  uint8_t now_cookie[16];
  int n;

  if (p->fresh &&
      tfo__metrics_delete((const struct sockaddr *)&p->addr, p->len) != 0 &&
      errno != ENOENT) {
    verdict(p, "error", EXIT_FAIL,
            errno == EPERM ? "--fresh: cannot forget the cached cookie "
                             "(needs CAP_NET_ADMIN)"
                           : "--fresh: cannot forget the cached cookie");
    return 0;
  }
  p->cookie_before_len = cookie_of(p, p->cookie_before);
  p->had_cookie = p->cookie_before_len > 0;
  connect_once(p, c1);
  if (c1->err != 0) {
    if (unreachable(c1->err))
      return -1;
    verdict(p, "error", EXIT_FAIL, strerror(c1->err));
    return 0;
  }
  switch (c1->r.outcome) {
    case TFO_OUTCOME_DISABLED:
      verdict(p, "client-disabled", EXIT_FAIL,
              "TFO is off for clients here: the client bit of "
              "net.ipv4.tcp_fastopen is clear (tfoctl enable client)");
      return 0;
    case TFO_OUTCOME_FALLBACK:
    case TFO_OUTCOME_SKIPPED:
      verdict(p, "blackhole", EXIT_FAIL,
              p->had_cookie
                  ? "the TFO SYN (cookie and data) got no answer, or a reset, "
                    "while a plain SYN got through: the path drops SYNs "
                    "carrying the TFO option or data"
                  : "the TFO SYN got no answer (or a reset) while a plain "
                    "SYN got through: the path drops SYNs carrying the TFO "
                    "option");
      return 0;
    case TFO_OUTCOME_COOKIE_REQUESTED:
      if (!c1->cookie_after) {
        no_cookie(p);
        return 0;
      }
      break;
    case TFO_OUTCOME_DATA_NOT_ACKED:
      if (c1->r.client_fail == 3) {
        verdict(p, "blackhole", EXIT_FAIL,
                "the TFO SYN went unanswered and its retransmission without "
                "TFO got through: the path drops SYNs carrying TFO");
        return 0;
      }
      n = cookie_of(p, now_cookie);
      if (n == 0 || (n == p->cookie_before_len &&
                     memcmp(now_cookie, p->cookie_before, (size_t)n) == 0)) {
        /* A TFO server that sees a cookie it does not accept sends a new
         * one. Neither taken nor replaced: the option never reached it. */
        verdict(p, "strip", EXIT_FAIL,
                "this server granted a cookie before, but now it neither "
                "takes it nor sends a new one, as a TFO server that saw it "
                "would: the TFO option is stripped on the path (or the "
                "listener on this port does not do TFO)");
        return 0;
      }
      break; /* cookie refused, a new one granted (the key changed) */
    case TFO_OUTCOME_DATA_ACKED:
      break;
  }
  connect_once(p, c2);
  if (c2->err != 0) {
    verdict(p, "error", EXIT_FAIL, strerror(c2->err));
    return 0;
  }
  switch (c2->r.outcome) {
    case TFO_OUTCOME_DATA_ACKED:
      if (c2->r.syn_bytes > 0) {
        verdict(p, "tfo", EXIT_OK,
                "the server does TCP Fast Open: cookie granted, data in the "
                "SYN accepted");
        return 0;
      }
      break;
    case TFO_OUTCOME_FALLBACK:
      verdict(p, "blackhole", EXIT_FAIL,
              "a cookie was granted, but SYNs carrying data get no answer: "
              "the path drops SYNs with data");
      return 0;
    case TFO_OUTCOME_DATA_NOT_ACKED:
      verdict(p, "data-not-acked", EXIT_FAIL,
              c2->r.client_fail == 3
                  ? "a cookie was granted, but the SYN with data went "
                    "unanswered and was retransmitted without it"
                  : "a cookie was granted, but the data in the SYN was not "
                    "acknowledged (the server refused the cookie or its TFO "
                    "queue is full, or the path strips the option from SYNs "
                    "with data)");
      return 0;
    default:
      break;
  }
  verdict(p, "inconclusive", EXIT_FAIL,
          "the second connection did not use the cookie granted to the "
          "first");
  return 0;
}

static void print_conn(const char *what, const struct conn *c) {
  if (!c->done)
    return;
  if (c->err != 0) {
    printf("  %s: failed: %s\n", what, strerror(c->err));
    return;
  }
  printf("  %s: %s in %.1f ms, %zu of %zu bytes in the SYN, client_fail=%d%s\n",
         what, tfo_outcome_str(c->r.outcome), c->r.elapsed_us / 1000.0,
         c->r.syn_bytes, c->r.bytes_sent, c->r.client_fail,
         c->cookie_after ? ", cookie cached" : "");
}

static void json_conn(const struct conn *c) {
  if (c->err != 0) {
    printf("{\"error\":");
    json_str(stdout, strerror(c->err));
    printf("}");
    return;
  }
  printf("{\"outcome\":\"%s\",\"ms\":%.1f,\"syn_bytes\":%zu,\"bytes\":%zu,"
         "\"client_fail\":%d,\"cookie_cached\":%s}",
         tfo_outcome_str(c->r.outcome), c->r.elapsed_us / 1000.0,
         c->r.syn_bytes, c->r.bytes_sent, c->r.client_fail,
         c->cookie_after ? "true" : "false");
}

static void report(const struct ctl *c, const struct probe *p,
                   const char *host) {
  char addr[80];
  int i;

  tfoctl_addr_str((const struct sockaddr *)&p->addr, 1, addr, sizeof(addr));
  if (c->json) {
    printf("{\"host\":");
    json_str(stdout, host);
    printf(",\"address\":");
    json_str(stdout, addr);
    printf(",\"verdict\":\"%s\",\"cookie_granted\":%s,"
           "\"syn_data_accepted\":%s,\"had_cookie\":%s,\"connections\":[",
           p->verdict,
           (p->c[0].cookie_after || p->c[1].cookie_after) &&
                   strcmp(p->verdict, "no-cookie") != 0
               ? "true"
               : "false",
           strcmp(p->verdict, "tfo") == 0 ? "true" : "false",
           p->had_cookie ? "true" : "false");
    for (i = 0; i < 2; i++) {
      if (!p->c[i].done)
        break;
      if (i > 0)
        printf(",");
      json_conn(&p->c[i]);
    }
    printf("],\"raw_option34\":\"%s\",\"raw_experimental\":\"%s\","
           "\"detail\":",
           raw_str(p->raw34), raw_str(p->rawexp));
    json_str(stdout, p->detail);
    printf("}\n");
    return;
  }
  printf("probe %s (%s)%s\n", host, addr,
         p->had_cookie ? ", a cookie was cached already" : "");
  print_conn("connection 1", &p->c[0]);
  print_conn("connection 2", &p->c[1]);
  if (p->rawexp != RAW_UNTRIED)
    printf("  raw SYN, option 34: %s; experimental option: %s\n",
           raw_str(p->raw34), raw_str(p->rawexp));
  printf("verdict: %s: %s\n", p->verdict, p->detail);
}

int cmd_probe(const struct ctl *c, int argc, char **argv) {
  struct addrinfo *ai = NULL, *a;
  struct probe p;
  const char *target = NULL, *port = NULL, *opt_port = NULL;
  const char *data = DEFAULT_DATA;
  char host[256];
  long v, timeout = 3000;
  int family = AF_UNSPEC, i, rc, tried = 0, fresh = 0;

  if (tfoctl_wants_help(argc, argv)) {
    printf(
        "usage: tfoctl [--json] probe HOST[:PORT] [-p PORT] [-4|-6] "
        "[--fresh]\n"
        "                    [--data TEXT] [--timeout MS]\n"
        "Connects twice (cookie, then data in the SYN) and says whether "
        "the server\ndoes TCP Fast Open, and if not, where it fails: no-tfo, "
        "strip (the option\ndoes not reach the server: told by a cookie "
        "held, or by raw SYNs as root),\nblackhole, data-not-acked. PORT "
        "defaults to " DEFAULT_PORT "; TEXT (sent in the SYN) to\nan HTTP "
        "HEAD request. --fresh: forget the kernel's cookie for the server "
        "first\n(CAP_NET_ADMIN). Exit 0: TFO works, 1: it does not, 3: "
        "unreachable.\n");
    return EXIT_OK;
  }
  for (i = 0; i < argc; i++) {
    if (strcmp(argv[i], "-4") == 0) {
      family = AF_INET;
    } else if (strcmp(argv[i], "-6") == 0) {
      family = AF_INET6;
    } else if (strcmp(argv[i], "--fresh") == 0) {
      fresh = 1;
    } else if (strcmp(argv[i], "-p") == 0 && i + 1 < argc) {
      opt_port = argv[++i];
    } else if (strcmp(argv[i], "--data") == 0 && i + 1 < argc) {
      data = argv[++i];
      if (*data == '\0')
        return tfoctl_usage_error("probe", "--data: the SYN needs at least "
                                           "one byte to show TFO");
    } else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
      if (tfo__parse_long(argv[++i], 100, 60000, &timeout) != 0)
        return tfoctl_usage_error("probe",
                                  "--timeout '%s': want ms in "
                                  "100..60000",
                                  argv[i]);
    } else if (argv[i][0] == '-') {
      return tfoctl_usage_error("probe", "unknown option '%s'", argv[i]);
    } else if (target == NULL) {
      target = argv[i];
    } else {
      return tfoctl_usage_error("probe", "unexpected argument '%s'", argv[i]);
    }
  }
  if (target == NULL)
    return tfoctl_usage_error("probe", "which host?");
  if (tfoctl_split_host(target, host, sizeof(host), &port) != 0)
    return tfoctl_usage_error("probe",
                              "'%s': want HOST, HOST:PORT or "
                              "[IPV6]:PORT",
                              target);
  if (opt_port != NULL && port != NULL)
    return tfoctl_usage_error("probe", "the port is given twice");
  if (port == NULL)
    port = opt_port != NULL ? opt_port : DEFAULT_PORT;
  if (tfo__parse_long(port, 1, 65535, &v) != 0)
    return tfoctl_usage_error("probe", "port '%s': want 1..65535", port);

  rc = tfoctl_resolve(host, port, family, &ai);
  if (rc != 0)
    return tfoctl_usage_error("probe", "%s: %s", host, gai_strerror(rc));

  for (a = ai; a != NULL; a = a->ai_next) {
    if ((a->ai_family != AF_INET && a->ai_family != AF_INET6) ||
        a->ai_addrlen > sizeof(p.addr))
      continue;
    memset(&p, 0, sizeof(p));
    memcpy(&p.addr, a->ai_addr, a->ai_addrlen);
    p.len = a->ai_addrlen;
    p.data = data;
    p.timeout_ms = (int)timeout;
    p.fresh = fresh;
    tried++;
    if (run(&p) == 0) {
      report(c, &p, host);
      freeaddrinfo(ai);
      return p.exit;
    }
    if (!c->json) {
      char s[80];

      tfoctl_addr_str((const struct sockaddr *)&p.addr, 1, s, sizeof(s));
      fprintf(stderr, "tfoctl probe: %s: %s\n", s, strerror(p.c[0].err));
    }
  }
  freeaddrinfo(ai);
  if (c->json) {
    printf("{\"host\":");
    json_str(stdout, host);
    printf(",\"verdict\":\"unreachable\",\"detail\":\"no address of it "
           "answered\"}\n");
  }
  fprintf(stderr, "tfoctl probe: %s: %s\n", host,
          tried ? "unreachable (no address answered)"
                : "no IPv4 or IPv6 address");
  return EXIT_UNREACHABLE;
}
