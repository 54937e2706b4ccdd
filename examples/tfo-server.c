/* tfo-server: a small HTTP server on tfo_listen that knows data in a SYN may
 * be a replay.
 *
 * A SYN's data can reach a server twice: the SYN is retransmitted, or it
 * reaches two servers of a farm that share a key. The kernel cannot tell,
 * so the application must: tfo_info() says whether a connection's first
 * bytes came in the SYN. This server runs a request that may have come in
 * the SYN only when it is safe to run twice (GET, HEAD, OPTIONS); one that
 * is not (POST...), or a pipelined one behind it in the SYN, gets
 *   HTTP/1.1 425 Too Early  ... "retry"
 * as HTTP does for TLS early data (RFC 8470), and the connection stays open:
 * the client sends the request again on it, no longer in a SYN, and it is
 * served then. A replayed SYN can thus never run a non-idempotent request.
 *
 *   tfo-server [-a ADDR] [-p PORT] [-q QLEN] [-k KEYFILE] [-n MAXREQ]
 *   -a  address to listen on (default ::, IPv6 and IPv4)
 *   -p  port (default 8080)
 *   -q  TFO queue length (default libtfo's)
 *   -k  the listener's key from a key file (shared by a farm; tfo_listen.3)
 *   -n  exit after MAXREQ requests (for tests)
 *
 * GET /... answers "hello" with what TFO did; POST /... "orders" something:
 * it counts, so a replay would show. One line per request on stdout:
 *   req=3 conn=2 peer=[::ffff:198.18.0.1]:40000 POST /order early=1 -> 425
 *
 * Try it: curl --tcp-fastopen http://HOST:8080/ twice (the second request
 * rides in the SYN), then curl --tcp-fastopen -d x http://HOST:8080/order.
 *
 * SPDX-License-Identifier: MIT */
#define _POSIX_C_SOURCE 200809L /* getopt, strncasecmp, clock_gettime */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <tfo.h>

#define MAX_CLIENTS 64
#define HEAD_MAX 8192
#define BODY_MAX 65536
#define IDLE_MS 10000

struct client {
  int fd;
  int syn_data; /* the connection began with data in the SYN */
  int tfo_child;
  size_t early;  /* the stream's first bytes that may have come in the SYN */
  size_t offset; /* stream offset of buf[0] */
  unsigned long conn;
  unsigned nreq; /* requests answered on this connection */
  char peer[64];
  char buf[HEAD_MAX + BODY_MAX];
  size_t len;
  long long last_ms;
};

static struct client clients[MAX_CLIENTS];
static unsigned long orders, requests;
static volatile sig_atomic_t stopping;

static void on_signal(int sig) {
  (void)sig;
  stopping = 1;
}

static long long now_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Methods that may run twice with the effect of once (RFC 9110: safe). */
static int replay_safe(const char *method) {
  return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0 ||
         strcmp(method, "OPTIONS") == 0;
}

static void drop(struct client *c) {
  close(c->fd);
  c->fd = -1;
}

static int send_all(int fd, const char *p, size_t n) {
  ssize_t w;

  while (n > 0) {
    w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0)
      return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int respond(struct client *c, int status, const char *reason,
                   const char *body, int close_after, int head_only) {
  char out[1024];
  int n;

  n = snprintf(out, sizeof(out),
               "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\n"
               "Content-Length: %zu\r\nConnection: %s\r\n\r\n%s",
               status, reason, strlen(body),
               close_after ? "close" : "keep-alive", head_only ? "" : body);
  return n < 0 || (size_t)n >= sizeof(out) ? -1
                                           : send_all(c->fd, out, (size_t)n);
}

/* Length of the header block ending in an empty line, 0 if incomplete. */
static size_t head_len(const char *b, size_t n) {
  size_t i;

  for (i = 0; i + 1 < n; i++) {
    if (b[i] == '\n' && b[i + 1] == '\n')
      return i + 2;
    if (i + 3 < n && memcmp(b + i, "\r\n\r\n", 4) == 0)
      return i + 4;
  }
  return 0;
}

/* A header's value (first occurrence), copied into out. */
static int header(const char *head, size_t n, const char *name, char *out,
                  size_t size) {
  size_t nl = strlen(name), i = 0, j;

  while (i < n) {
    const char *line = head + i;
    const char *end = memchr(line, '\n', n - i);
    size_t ll = end != NULL ? (size_t)(end - line) : n - i;

    if (ll > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
      for (j = nl + 1; j < ll && (line[j] == ' ' || line[j] == '\t'); j++)
        ;
      ll -= j;
      while (ll > 0 && (line[j + ll - 1] == '\r' || line[j + ll - 1] == ' '))
        ll--;
      if (ll >= size)
        return -1;
      memcpy(out, line + j, ll);
      out[ll] = '\0';
      return 0;
    }
    i += ll + 1;
  }
  return -1;
}

/* Serves every complete request in c's buffer. -1: close the connection. */
static int serve(struct client *c) {
  char method[16], target[256], version[16], value[32], body[256];
  size_t hl, total;
  long clen = 0;
  int keep, early, status;
  const char *reason;

  while ((hl = head_len(c->buf, c->len)) > 0) {
    char *eol = memchr(c->buf, '\n', hl);
    char *end;

    *eol = '\0';
    if (sscanf(c->buf, "%15s %255s %15s", method, target, version) != 3 ||
        strncmp(version, "HTTP/1.", 7) != 0) {
      respond(c, 400, "Bad Request", "bad request line\n", 1, 0);
      return -1;
    }
    *eol = '\n';
    if (header(c->buf, hl, "Content-Length", value, sizeof(value)) == 0) {
      errno = 0;
      clen = strtol(value, &end, 10);
      if (errno != 0 || *end != '\0' || clen < 0 || clen > BODY_MAX) {
        respond(c, 413, "Content Too Large", "body too large\n", 1, 0);
        return -1;
      }
    }
    total = hl + (size_t)clen;
    if (c->len < total)
      return 0; /* the body is not all here yet */
    keep = strcmp(version, "HTTP/1.0") != 0;
    if (header(c->buf, hl, "Connection", value, sizeof(value)) == 0)
      keep = strcasecmp(value, "close") != 0 &&
             (keep || strcasecmp(value, "keep-alive") == 0);
    /* Early: it starts among the bytes that were queued at accept, which
     * hold the SYN's data; pipelined requests there are early too. */
    early = c->offset < c->early;
    c->nreq++;
    requests++;

    if (early && !replay_safe(method)) {
      /* It may be a replay: do not run it. Keep the connection so the
       * client can send it again, now after the handshake. */
      status = 425;
      reason = "Too Early";
      snprintf(body, sizeof(body),
               "retry: this request came in the SYN and may be a replay; "
               "send it again on this connection\n");
      keep = 1;
    } else if (strcmp(method, "POST") == 0) {
      status = 200;
      reason = "OK";
      snprintf(body, sizeof(body), "order %lu placed (%ld bytes)\n", ++orders,
               clen);
    } else if (replay_safe(method)) {
      status = 200;
      reason = "OK";
      snprintf(body, sizeof(body),
               "hello: early=%d tfo_child=%d request=%u orders=%lu\n", early,
               c->tfo_child, c->nreq, orders);
    } else {
      status = 405;
      reason = "Method Not Allowed";
      snprintf(body, sizeof(body), "GET, HEAD, OPTIONS or POST\n");
    }
    printf("req=%lu conn=%lu peer=%s %s %s early=%d -> %d\n", requests, c->conn,
           c->peer, method, target, early, status);
    fflush(stdout);
    if (respond(c, status, reason, body, !keep, strcmp(method, "HEAD") == 0) !=
            0 ||
        !keep)
      return -1;
    memmove(c->buf, c->buf + total, c->len - total);
    c->len -= total;
    c->offset += total;
    clen = 0;
  }
  if (c->len >= HEAD_MAX) {
    respond(c, 431, "Request Header Fields Too Large", "header too large\n", 1,
            0);
    return -1;
  }
  return 0;
}

static void accept_one(int lfd) {
  struct sockaddr_storage ss;
  socklen_t sl = sizeof(ss);
  struct tfo_info info;
  static unsigned long nconn;
  char host[INET6_ADDRSTRLEN] = "?";
  struct client *c = NULL;
  ssize_t queued;
  int fd, i;

  fd = accept(lfd, (struct sockaddr *)&ss, &sl);
  if (fd < 0)
    return;
  for (i = 0; i < MAX_CLIENTS && c == NULL; i++)
    if (clients[i].fd < 0)
      c = &clients[i];
  /* Ask at once: tfo_info tells how this connection began. */
  if (c == NULL || tfo_info(fd, &info) != 0) {
    close(fd);
    return;
  }
  c->fd = fd;
  c->syn_data = info.syn_data;
  c->early = 0;
  c->offset = 0;
  /* Everything queued now counts as early: the SYN's data is in it (the
   * kernel queues it before accept can return the connection), and maybe a
   * little more, which only makes us more careful. Peeked, since FIONREAD
   * says 0 until the handshake completes, which it need not have yet. */
  if (info.syn_data) {
    queued = recv(fd, c->buf, sizeof(c->buf), MSG_PEEK | MSG_DONTWAIT);
    c->early = queued > 0 ? (size_t)queued : 1;
  }
  c->tfo_child = info.tfo_child;
  c->conn = ++nconn;
  c->nreq = 0;
  c->len = 0;
  c->last_ms = now_ms();
  if (ss.ss_family == AF_INET) {
    inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host,
              sizeof(host));
    snprintf(c->peer, sizeof(c->peer), "%s:%u", host,
             ntohs(((struct sockaddr_in *)&ss)->sin_port));
  } else {
    inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host,
              sizeof(host));
    snprintf(c->peer, sizeof(c->peer), "[%s]:%u", host,
             ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
  }
}

static long number(const char *s, long lo, long hi) {
  char *end;
  long v;

  errno = 0;
  v = strtol(s, &end, 10);
  if (errno != 0 || *s == '\0' || *end != '\0' || v < lo || v > hi) {
    fprintf(stderr, "tfo-server: bad number '%s'\n", s);
    exit(2);
  }
  return v;
}

int main(int argc, char **argv) {
  struct tfo_listen_opts opts = {0};
  struct sockaddr_storage ss;
  struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
  struct pollfd pfd[MAX_CLIENTS + 1];
  struct tfo_info info;
  struct sigaction sa;
  const char *addr = "::";
  long port = 8080, maxreq = 0;
  socklen_t len;
  int c, i, n, lfd;
  ssize_t r;

  while ((c = getopt(argc, argv, "a:p:q:k:n:")) != -1) {
    switch (c) {
      case 'a':
        addr = optarg;
        break;
      case 'p':
        port = number(optarg, 1, 65535);
        break;
      case 'q':
        opts.qlen = (int)number(optarg, 1, 1000000);
        break;
      case 'k':
        opts.key_file = optarg;
        break;
      case 'n':
        maxreq = number(optarg, 1, 1000000000L);
        break;
      default:
        fprintf(stderr, "usage: tfo-server [-a ADDR] [-p PORT] [-q QLEN] "
                        "[-k KEYFILE] [-n MAXREQ]\n");
        return 2;
    }
  }
  memset(&ss, 0, sizeof(ss));
  if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    len = sizeof(*s4);
  } else if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons((uint16_t)port);
    len = sizeof(*s6);
    if (IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr))
      opts.flags |= TFO_LISTEN_DUALSTACK;
  } else {
    fprintf(stderr, "tfo-server: '%s' is not an IP address\n", addr);
    return 2;
  }
  lfd = tfo_listen((struct sockaddr *)&ss, len, 0, &opts);
  if (lfd < 0) {
    fprintf(stderr, "tfo-server: cannot listen on %s port %ld: %s\n", addr,
            port, strerror(errno));
    return 1;
  }
  if (tfo_info(lfd, &info) == 0)
    printf("listening on %s port %ld: TFO %s (queue %d)\n", addr, port,
           info.listen_tfo ? "on" : "OFF (net.ipv4.tcp_fastopen server bit)",
           info.qlen);
  fflush(stdout);

  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  for (i = 0; i < MAX_CLIENTS; i++)
    clients[i].fd = -1;

  while (!stopping && (maxreq == 0 || (long)requests < maxreq)) {
    pfd[0].fd = lfd;
    pfd[0].events = POLLIN;
    for (i = 0; i < MAX_CLIENTS; i++) {
      pfd[i + 1].fd = clients[i].fd;
      pfd[i + 1].events = POLLIN;
    }
    n = poll(pfd, MAX_CLIENTS + 1, 1000);
    if (n < 0 && errno != EINTR)
      break;
    for (i = 0; n > 0 && i < MAX_CLIENTS; i++) {
      struct client *cl = &clients[i];

      if (cl->fd < 0 || pfd[i + 1].fd != cl->fd || !pfd[i + 1].revents)
        continue;
      r = read(cl->fd, cl->buf + cl->len, sizeof(cl->buf) - cl->len);
      if (r <= 0) {
        if (r < 0 && errno == EINTR)
          continue;
        drop(cl);
        continue;
      }
      cl->len += (size_t)r;
      cl->last_ms = now_ms();
      if (serve(cl) != 0)
        drop(cl);
    }
    for (i = 0; i < MAX_CLIENTS; i++)
      if (clients[i].fd >= 0 && now_ms() - clients[i].last_ms > IDLE_MS)
        drop(&clients[i]);
    if (n > 0 && (pfd[0].revents & POLLIN))
      accept_one(lfd);
  }
  for (i = 0; i < MAX_CLIENTS; i++)
    if (clients[i].fd >= 0)
      drop(&clients[i]);
  close(lfd);
  return 0;
}
