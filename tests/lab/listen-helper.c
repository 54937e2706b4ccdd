/* listen-helper: libtfo's server side under test in the network lab.
 *
 * Server (default): a listener made by tfo_listen; each connection is read
 * up to its first '\n' (or the client's half-close) and answered
 * "OK <nbytes>\n", the protocol of lab-server and lab-client, so the
 * kernel's client (lab-client) and tfo_connect_send (tfo-client, -c here)
 * both talk to it. Lines on stdout:
 *   listening port=8000 listen_tfo=1 qlen=256 sysctl=3
 *   conn=1 peer=198.18.0.1:40000 bytes=17 syn_data=1 tfo_child=1
 *   rekeyed len=32                  (after SIGHUP, with -k)
 * syn_data and tfo_child are what tfo_info() says on the accepted socket.
 *
 *   listen-helper [-6] [-d] [-r] [-a ADDR] -p PORT [-q QLEN] [-b BACKLOG]
 *                 [-k KEYFILE] [-n MAXCONN] [-t SECONDS]
 *   -6 IPv6 (:: unless -a), -d dual-stack, -r SO_REUSEPORT, -k the
 *   listener's key from KEYFILE (re-read and applied with tfo_set_key on
 *   SIGHUP), -n exit after MAXCONN connections, -t exit after SECONDS
 *   (default 60: a forgotten helper never outlives its test for long).
 *   On a tfo_listen error: "error=listen:ERRNO_NAME" and exit 1.
 *
 * Client (-c): one request with tfo_connect_send (no race, and a private
 * negative cache when -C FILE is given) and one line:
 *   outcome=data-acked info_outcome=data-acked syn_data=1 resp="OK 17"
 * info_outcome and syn_data are what tfo_info() says on the client socket.
 * With -H TEXT the request is TEXT, an HTTP request, and the answer an HTTP
 * response (status= and body=); with -R too, a 425 Too Early is followed by
 * TEXT again on the same connection, as tfo-server asks (retry_status=).
 *   listen-helper -c [-C CACHEFILE] [-s SIZE | -H TEXT [-R]] HOST PORT
 *
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tfo.h"

#define IO_TIMEOUT_MS 5000

static volatile sig_atomic_t got_hup, got_term;

static void on_signal(int sig) {
  if (sig == SIGHUP)
    got_hup = 1;
  else
    got_term = 1;
}

static const char *errno_name(int e) {
  switch (e) {
    case EPERM:
      return "EPERM";
    case ENOENT:
      return "ENOENT";
    case EACCES:
      return "EACCES";
    case EINVAL:
      return "EINVAL";
    case EADDRINUSE:
      return "EADDRINUSE";
    case EAFNOSUPPORT:
      return "EAFNOSUPPORT";
    case ECONNREFUSED:
      return "ECONNREFUSED";
    case ETIMEDOUT:
      return "ETIMEDOUT";
    case ERANGE:
      return "ERANGE";
    default:
      return "OTHER";
  }
}

static void usage(void) {
  fprintf(stderr,
          "usage: listen-helper [-6] [-d] [-r] [-a ADDR] -p PORT [-q QLEN] "
          "[-b BACKLOG] [-k KEYFILE] [-n MAXCONN] [-t SECONDS]\n"
          "       listen-helper -c [-C CACHEFILE] [-s SIZE | -H TEXT [-R]] "
          "HOST PORT\n");
  exit(2);
}

static long num(const char *s, long lo, long hi) {
  char *end;
  long v;

  errno = 0;
  v = strtol(s, &end, 10);
  if (errno != 0 || *end != '\0' || end == s || v < lo || v > hi)
    usage();
  return v;
}

static int write_all(int fd, const char *buf, size_t len) {
  ssize_t n;

  while (len > 0) {
    n = write(fd, buf, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -1;
    buf += n;
    len -= (size_t)n;
  }
  return 0;
}

/* Bytes up to and including the first '\n' (or to EOF); -1 on timeout. */
static long read_request(int fd, char *buf, size_t size) {
  struct pollfd p = {fd, POLLIN, 0};
  size_t got = 0;
  ssize_t n;
  char *nl;

  while (got < size) {
    if (poll(&p, 1, IO_TIMEOUT_MS) <= 0)
      return -1;
    n = read(fd, buf + got, size - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -1;
    if (n == 0)
      break;
    nl = memchr(buf + got, '\n', (size_t)n);
    if (nl != NULL)
      return (long)(nl - buf + 1);
    got += (size_t)n;
  }
  return (long)got;
}

static void peer_name(const struct sockaddr_storage *ss, char *out, size_t n) {
  char host[INET6_ADDRSTRLEN] = "?";

  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *s = (const struct sockaddr_in *)ss;

    inet_ntop(AF_INET, &s->sin_addr, host, sizeof(host));
    snprintf(out, n, "%s:%u", host, ntohs(s->sin_port));
  } else {
    const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ss;

    inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof(host));
    snprintf(out, n, "[%s]:%u", host, ntohs(s->sin6_port));
  }
}

static void serve(int fd, unsigned long conn,
                  const struct sockaddr_storage *ss) {
  struct tfo_info info;
  char buf[65536], peer[80], line[64];
  long n;
  int r;

  /* Right after accept: the SYN's fate is settled by then. */
  r = tfo_info(fd, &info);
  n = read_request(fd, buf, sizeof(buf));
  if (n >= 0) {
    r |= snprintf(line, sizeof(line), "OK %ld\n", n) < 0;
    write_all(fd, line, strlen(line));
    shutdown(fd, SHUT_WR);
    /* Wait (bounded) for the client's FIN: unread data would turn our
     * close into a RST. */
    read_request(fd, buf, sizeof(buf));
  }
  peer_name(ss, peer, sizeof(peer));
  printf("conn=%lu peer=%s bytes=%ld syn_data=%d tfo_child=%d%s\n", conn, peer,
         n, r == 0 ? info.syn_data : -1, r == 0 ? info.tfo_child : -1,
         n < 0 ? " error=read" : "");
  fflush(stdout);
  close(fd);
}

static void rekey(int lfd, const char *keyfile) {
  unsigned char key[TFO_KEY_MAX];
  int len = tfo_load_key_file(keyfile, key, sizeof(key));

  if (len < 0 || tfo_set_key(lfd, key, (size_t)len) != 0)
    printf("rekey-error=%s\n", errno_name(errno));
  else
    printf("rekeyed len=%d\n", len);
  fflush(stdout);
  memset(key, 0, sizeof(key));
}

static int server(int argc, char **argv) {
  struct tfo_listen_opts o = {0};
  struct sockaddr_storage ss;
  struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
  struct tfo_info info;
  struct sigaction sa;
  struct timespec t0, t;
  const char *addr = NULL, *keyfile = NULL;
  long port = -1, maxconn = 0, seconds = 60, backlog = 0;
  unsigned long conn = 0;
  int c, v6 = 0, lfd, fd;

  while ((c = getopt(argc, argv, "6dra:p:q:b:k:n:t:")) != -1) {
    switch (c) {
      case '6':
        v6 = 1;
        break;
      case 'd':
        o.flags |= TFO_LISTEN_DUALSTACK;
        break;
      case 'r':
        o.flags |= TFO_LISTEN_REUSEPORT;
        break;
      case 'a':
        addr = optarg;
        break;
      case 'p':
        port = num(optarg, 0, 65535);
        break;
      case 'q':
        o.qlen = (int)num(optarg, -1, 1000000);
        break;
      case 'b':
        backlog = num(optarg, -1, 65535);
        break;
      case 'k':
        keyfile = optarg;
        break;
      case 'n':
        maxconn = num(optarg, 1, 1000000);
        break;
      case 't':
        seconds = num(optarg, 1, 3600);
        break;
      default:
        usage();
    }
  }
  if (port < 0 || optind != argc)
    usage();
  if (addr != NULL && strchr(addr, ':') != NULL)
    v6 = 1;
  memset(&ss, 0, sizeof(ss));
  if (v6) {
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons((uint16_t)port);
    s6->sin6_addr = in6addr_any;
    if (addr != NULL && inet_pton(AF_INET6, addr, &s6->sin6_addr) != 1)
      usage();
  } else {
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    if (addr != NULL && inet_pton(AF_INET, addr, &s4->sin_addr) != 1)
      usage();
  }
  o.key_file = keyfile;
  lfd = tfo_listen((struct sockaddr *)&ss, v6 ? sizeof(*s6) : sizeof(*s4),
                   (int)backlog, &o);
  if (lfd < 0) {
    printf("error=listen:%s\n", errno_name(errno));
    fprintf(stderr, "listen-helper: tfo_listen: %s\n", strerror(errno));
    return 1;
  }
  if (tfo_info(lfd, &info) != 0) {
    printf("error=info:%s\n", errno_name(errno));
    return 1;
  }
  printf("listening port=%ld listen_tfo=%d qlen=%d sysctl=%d listener=%d\n",
         port, info.listen_tfo, info.qlen, info.sysctl, info.listener);
  fflush(stdout);

  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal; /* no SA_RESTART: poll must see EINTR */
  sigaction(SIGHUP, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  clock_gettime(CLOCK_MONOTONIC, &t0);
  while (!got_term && (maxconn == 0 || (long)conn < maxconn)) {
    struct pollfd p = {lfd, POLLIN, 0};
    socklen_t len = sizeof(ss);

    clock_gettime(CLOCK_MONOTONIC, &t);
    if (t.tv_sec - t0.tv_sec >= seconds)
      break;
    if (got_hup) {
      got_hup = 0;
      if (keyfile != NULL)
        rekey(lfd, keyfile);
    }
    if (poll(&p, 1, 200) <= 0)
      continue;
    fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC);
    if (fd < 0)
      continue;
    serve(fd, ++conn, &ss);
  }
  close(lfd);
  return 0;
}

/* One HTTP response: its status; the body's first line into body. */
static int read_http(int fd, char *body, size_t size) {
  char buf[4096], *p, *end;
  size_t got = 0, need = 0, hl = 0;
  struct pollfd pfd = {fd, POLLIN, 0};
  long clen = 0;
  int status = -1;
  ssize_t n;

  body[0] = '\0';
  buf[0] = '\0';
  while (got < sizeof(buf) - 1) {
    if (hl == 0 && (p = strstr(buf, "\r\n\r\n")) != NULL) {
      hl = (size_t)(p - buf) + 4;
      if ((p = strstr(buf, "Content-Length:")) != NULL && p < buf + hl)
        clen = strtol(p + 15, &end, 10);
      need = hl + (size_t)clen;
    }
    if (hl != 0 && got >= need)
      break;
    if (poll(&pfd, 1, IO_TIMEOUT_MS) <= 0)
      return -1;
    n = read(fd, buf + got, sizeof(buf) - 1 - got);
    if (n <= 0)
      return -1;
    got += (size_t)n;
    buf[got] = '\0';
  }
  if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1 || hl == 0)
    return -1;
  snprintf(body, size, "%.*s", (int)(got - hl), buf + hl);
  body[strcspn(body, "\r\n")] = '\0';
  return status;
}

static int http_client(int fd, const char *text, int retry) {
  char body[256], body2[256] = "";
  int status, status2 = 0;

  status = read_http(fd, body, sizeof(body));
  if (retry && status == 425) {
    if (write_all(fd, text, strlen(text)) != 0)
      status2 = -1;
    else
      status2 = read_http(fd, body2, sizeof(body2));
  }
  printf("status=%d body=\"%s\"", status, body);
  if (retry)
    printf(" retry_status=%d retry_body=\"%s\"", status2, body2);
  printf("\n");
  return status > 0 ? 0 : 1;
}

static int client(int argc, char **argv) {
  struct tfo_connect_opts o = {0};
  struct tfo_result res;
  struct tfo_info info;
  struct addrinfo hints, *ai;
  const char *cache = NULL, *text = NULL;
  char req[2048], resp[256];
  long size = 17, n;
  int c, fd, rc, retry = 0;

  while ((c = getopt(argc, argv, "cC:s:H:R")) != -1) {
    switch (c) {
      case 'c':
        break;
      case 'C':
        cache = optarg;
        break;
      case 'H':
        text = optarg;
        break;
      case 'R':
        retry = 1;
        break;
      case 's':
        size = num(optarg, 1, (long)sizeof(req));
        break;
      default:
        usage();
    }
  }
  if (argc - optind != 2)
    usage();
  if (cache != NULL && tfo_cache_configure(cache) != 0) {
    printf("error=cache:%s\n", errno_name(errno));
    return 1;
  }
  memset(&hints, 0, sizeof(hints));
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST;
  rc = getaddrinfo(argv[optind], argv[optind + 1], &hints, &ai);
  if (rc != 0) {
    fprintf(stderr, "listen-helper: %s: %s\n", argv[optind], gai_strerror(rc));
    return 2;
  }
  if (text != NULL) {
    size = (long)strlen(text);
    if (size == 0 || size >= (long)sizeof(req))
      usage();
    memcpy(req, text, (size_t)size);
  } else {
    memset(req, 'x', (size_t)size);
    req[size - 1] = '\n';
  }
  o.flags = TFO_CONNECT_NO_RACE;
  o.timeout_ms = 5000;
  fd = tfo_connect_send(ai->ai_addr, ai->ai_addrlen, req, (size_t)size, &o,
                        &res);
  freeaddrinfo(ai);
  if (fd < 0) {
    printf("error=connect:%s\n", errno_name(errno));
    return 1;
  }
  if (tfo_info(fd, &info) != 0) {
    printf("error=info:%s\n", errno_name(errno));
    close(fd);
    return 1;
  }
  if (text != NULL) {
    printf("outcome=%s syn_data=%d ", tfo_outcome_str(res.outcome),
           info.syn_data);
    rc = http_client(fd, text, retry);
    close(fd);
    return rc;
  }
  n = read_request(fd, resp, sizeof(resp) - 1);
  if (n < 0)
    n = 0;
  resp[n] = '\0';
  resp[strcspn(resp, "\n")] = '\0';
  printf("outcome=%s info_outcome=%s syn_data=%d client_fail=%d resp=\"%s\"\n",
         tfo_outcome_str(res.outcome), tfo_outcome_str(info.outcome),
         info.syn_data, info.client_fail, resp);
  close(fd);
  return 0;
}

int main(int argc, char **argv) {
  int i;

  for (i = 1; i < argc; i++)
    if (strcmp(argv[i], "-c") == 0)
      return client(argc, argv);
  return server(argc, argv);
}
