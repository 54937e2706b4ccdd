/* tfo-fastopen: the C counterpart of the Go "tcp-fast-open" example, on
 * libtfo. With -l it listens (tfo_listen) and connects to itself; without,
 * it connects to a server. Unlike the Go program it says what TCP Fast Open
 * did, from both ends, instead of leaving that to tcpdump.
 *
 *   tfo-fastopen [-l] [-s ADDR] [-p PORT] [-n COUNT]
 *   -s  server to connect to, and to listen on with -l (default 127.0.0.1;
 *       IPv4 or IPv6)
 *   -p  port (default 2222)
 *   -l  create a listening TFO socket and connect to it
 *   -n  connections (default 2: the first asks for a cookie, the next ones
 *       carry their data in the SYN)
 *
 *   $ tfo-fastopen -l
 *   listening on 127.0.0.1:2222, TFO queue 256: data in SYNs will be accepted
 *   connection 1: cookie-requested: no cookie yet: the 12 bytes went after
 *     the handshake (server: syn_data=0 tfo_child=0, read "HELLO TCP FO")
 *   connection 2: data-acked: 12 bytes rode in the SYN (server: syn_data=1
 *     tfo_child=1, read "HELLO TCP FO")
 *   TFO: yes (1 of 2 connections carried data in the SYN)
 *
 * Exit status: 0 when every connection worked, 1 when one failed, 2 usage.
 *
 * SPDX-License-Identifier: MIT */
#define _POSIX_C_SOURCE 200809L /* getopt, inet_pton under -std=c11 */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <tfo.h>

static const char message[] = "HELLO TCP FO"; /* the Go program's */

static void usage(void) {
  fprintf(stderr, "usage: tfo-fastopen [-l] [-s ADDR] [-p PORT] [-n COUNT]\n"
                  "  -s ADDR   server to connect to (and listen on with -l), "
                  "default 127.0.0.1\n"
                  "  -p PORT   port, default 2222\n"
                  "  -l        create a listening TFO socket, then connect to "
                  "it\n"
                  "  -n COUNT  connections, default 2\n");
  exit(2);
}

static long number(const char *s, long lo, long hi) {
  char *end;
  long v;

  errno = 0;
  v = strtol(s, &end, 10);
  if (errno != 0 || *s == '\0' || *end != '\0' || v < lo || v > hi)
    usage();
  return v;
}

/* The server end of one connection: accept, ask tfo_info, read the
 * message. Prints into out; -1 when nothing came. */
static int serve_one(int lfd, char *out, size_t size) {
  struct pollfd p = {lfd, POLLIN, 0};
  struct tfo_info info;
  char buf[64];
  ssize_t n = 0;
  int fd;

  if (poll(&p, 1, 2000) <= 0)
    return -1;
  fd = accept(lfd, NULL, NULL);
  if (fd < 0)
    return -1;
  if (tfo_info(fd, &info) != 0) {
    close(fd);
    return -1;
  }
  p.fd = fd;
  if (poll(&p, 1, 2000) > 0)
    n = read(fd, buf, sizeof(buf) - 1);
  buf[n > 0 ? n : 0] = '\0';
  snprintf(out, size, "server: syn_data=%d tfo_child=%d, read \"%s\"",
           info.syn_data, info.tfo_child, buf);
  close(fd);
  return 0;
}

static void explain(const struct tfo_result *r) {
  switch (r->outcome) {
    case TFO_OUTCOME_DATA_ACKED:
      printf("%zu bytes rode in the SYN", r->syn_bytes);
      return;
    case TFO_OUTCOME_COOKIE_REQUESTED:
      printf("no cookie yet: the %zu bytes went after the handshake",
             r->bytes_sent);
      return;
    case TFO_OUTCOME_DATA_NOT_ACKED:
      printf("the SYN's %zu bytes were not acknowledged: sent again after "
             "the handshake",
             r->syn_bytes);
      return;
    case TFO_OUTCOME_FALLBACK:
      printf("the TFO SYN got no answer: a plain connection carried the data");
      return;
    case TFO_OUTCOME_SKIPPED:
      printf("this path broke TFO before: a plain connection");
      return;
    case TFO_OUTCOME_DISABLED:
      printf("TFO is off for clients here: a plain connection");
      return;
  }
  printf("?");
}

int main(int argc, char **argv) {
  struct sockaddr_storage ss;
  struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
  struct tfo_result res;
  struct tfo_info info;
  const char *server = "127.0.0.1";
  char srv[160];
  socklen_t len;
  long port = 2222, count = 2, i, tfo = 0;
  int c, listening = 0, lfd = -1, fd, failed = 0;

  while ((c = getopt(argc, argv, "ls:p:n:h")) != -1) {
    switch (c) {
      case 'l':
        listening = 1;
        break;
      case 's':
        server = optarg;
        break;
      case 'p':
        port = number(optarg, 1, 65535);
        break;
      case 'n':
        count = number(optarg, 1, 1000);
        break;
      default:
        usage();
    }
  }
  if (optind != argc)
    usage();
  memset(&ss, 0, sizeof(ss));
  if (inet_pton(AF_INET, server, &s4->sin_addr) == 1) {
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    len = sizeof(*s4);
  } else if (inet_pton(AF_INET6, server, &s6->sin6_addr) == 1) {
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons((uint16_t)port);
    len = sizeof(*s6);
  } else {
    fprintf(stderr, "tfo-fastopen: unable to process IP: %s\n", server);
    return 2;
  }

  if (listening) {
    lfd = tfo_listen((struct sockaddr *)&ss, len, 0, NULL);
    if (lfd < 0) {
      fprintf(stderr, "tfo-fastopen: failed to listen on %s port %ld: %s\n",
              server, port, strerror(errno));
      return 1;
    }
    if (tfo_info(lfd, &info) == 0)
      printf("listening on %s port %ld, TFO queue %d: %s\n", server, port,
             info.qlen,
             info.listen_tfo ? "data in SYNs will be accepted"
                             : "NO TFO: net.ipv4.tcp_fastopen lacks the "
                               "server bit (2); try tfoctl enable server");
  }

  for (i = 1; i <= count; i++) {
    fd = tfo_connect_send((struct sockaddr *)&ss, len, message,
                          sizeof(message) - 1, NULL, &res);
    if (fd < 0) {
      printf("connection %ld: failed: %s\n", i, strerror(errno));
      failed = 1;
      continue;
    }
    srv[0] = '\0';
    if (listening && serve_one(lfd, srv, sizeof(srv)) != 0)
      snprintf(srv, sizeof(srv), "server: nothing accepted");
    printf("connection %ld: %s: ", i, tfo_outcome_str(res.outcome));
    explain(&res);
    printf("%s%s%s\n", srv[0] ? " (" : "", srv, srv[0] ? ")" : "");
    if (res.outcome == TFO_OUTCOME_DATA_ACKED && res.syn_bytes > 0)
      tfo++;
    close(fd);
  }
  printf("TFO: %s (%ld of %ld connections carried data in the SYN)\n",
         tfo > 0 ? "yes" : "no", tfo, count);
  if (lfd >= 0)
    close(lfd);
  return failed ? 1 : 0;
}
