/* tfo-client: send a request with tfo_connect_send and print the answer and
 * what TCP Fast Open did.
 *
 *   tfo-client [-n COUNT] [-s SIZE] [-F FALLBACK_MS] [-T TIMEOUT_MS] [-R] [-C]
 *              [-K] [-L] HOST PORT [REQUEST]
 *
 * One line per connection on stdout:
 *   outcome=data-acked ms=51.2 sent=17 syn=17 fallback=150 client_fail=0 \
 *   resp="OK 17"
 * -R: no race (for requests that are not idempotent), -C: no negative cache,
 * -K: print what the negative cache holds for HOST PORT at the end,
 * -L: report descriptors left open at the end (there should be none).
 * The request defaults to "GET /\n"; -s SIZE makes it SIZE bytes.
 *
 * SPDX-License-Identifier: MIT */
#define _POSIX_C_SOURCE 200809L /* getaddrinfo, clock_gettime under -std=c11 */

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <tfo.h>

static double now_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Reads until the peer closes or a line ends the answer, at most 5 s. */
static ssize_t read_response(int fd, char *buf, size_t size) {
  struct pollfd p = {fd, POLLIN, 0};
  size_t got = 0;
  ssize_t n;

  while (got + 1 < size) {
    if (poll(&p, 1, 5000) <= 0)
      return -1;
    n = read(fd, buf + got, size - 1 - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    got += (size_t)n;
    if (memchr(buf, '\n', got) != NULL)
      break;
  }
  buf[got] = '\0';
  buf[strcspn(buf, "\r\n")] = '\0';
  return (ssize_t)got;
}

static int open_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  int n = 0;

  if (d == NULL)
    return -1;
  while ((e = readdir(d)) != NULL)
    n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

static void print_cache(const struct addrinfo *ai) {
  struct tfo_cache_entry e;

  if (tfo_cache_lookup(ai->ai_addr, ai->ai_addrlen, &e) != 0) {
    printf("cache=%s\n", errno == ENOENT ? "none" : strerror(errno));
    return;
  }
  printf("cache=%s skip=%d failures=%u rtt_us=%u\n",
         tfo_cache_event_str(e.last), e.skip, e.failures, e.rtt_us);
}

static long number(const char *s, const char *what) {
  char *end;
  long v = strtol(s, &end, 10);

  if (*s == '\0' || *end != '\0' || v < 0) {
    fprintf(stderr, "tfo-client: bad %s '%s'\n", what, s);
    exit(2);
  }
  return v;
}

int main(int argc, char **argv) {
  struct tfo_connect_opts opts = {0};
  struct tfo_result res;
  struct addrinfo hints = {0}, *ai;
  char resp[4096];
  const char *req = "GET /\n";
  char *big = NULL;
  long count = 1, size = -1, i;
  int c, fd, rc, failures = 0, show_cache = 0, check_fds = 0, fds0 = 0;
  double t0;

  while ((c = getopt(argc, argv, "n:s:F:T:RCKL")) != -1) {
    switch (c) {
      case 'n':
        count = number(optarg, "count");
        break;
      case 's':
        size = number(optarg, "size");
        break;
      case 'F':
        opts.fallback_ms = (int)number(optarg, "fallback");
        break;
      case 'T':
        opts.timeout_ms = (int)number(optarg, "timeout");
        break;
      case 'R':
        opts.flags |= TFO_CONNECT_NO_RACE;
        break;
      case 'C':
        opts.flags |= TFO_CONNECT_NO_CACHE;
        break;
      case 'K':
        show_cache = 1;
        break;
      case 'L':
        check_fds = 1;
        break;
      default:
        fprintf(stderr, "usage: tfo-client [-n COUNT] [-s SIZE] [-F MS] "
                        "[-T MS] [-R] [-C] [-K] [-L] HOST PORT [REQUEST]\n");
        return 2;
    }
  }
  if (argc - optind < 2 || argc - optind > 3) {
    fprintf(stderr, "usage: tfo-client [options] HOST PORT [REQUEST]\n");
    return 2;
  }
  if (argc - optind == 3)
    req = argv[optind + 2];
  if (size >= 0) {
    big = malloc((size_t)size + 1);
    if (big == NULL)
      return 1;
    memset(big, 'x', (size_t)size);
    if (size > 0)
      big[size - 1] = '\n';
    big[size] = '\0';
    req = big;
  }
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  rc = getaddrinfo(argv[optind], argv[optind + 1], &hints, &ai);
  if (rc != 0) {
    fprintf(stderr, "tfo-client: %s: %s\n", argv[optind], gai_strerror(rc));
    return 2;
  }

  if (check_fds) {
    struct tfo_cache_entry e;

    /* The cache keeps its file open once used: open it before counting. */
    tfo_cache_lookup(ai->ai_addr, ai->ai_addrlen, &e);
    fds0 = open_fds();
  }
  for (i = 0; i < count; i++) {
    t0 = now_ms();
    fd = tfo_connect_send(ai->ai_addr, ai->ai_addrlen, req,
                          size >= 0 ? (size_t)size : strlen(req), &opts, &res);
    if (fd < 0) {
      printf("error=%s ms=%.1f\n", strerror(errno), now_ms() - t0);
      failures++;
      continue;
    }
    /* An empty request still needs an end for the server to answer. */
    if (size == 0)
      shutdown(fd, SHUT_WR);
    if (read_response(fd, resp, sizeof(resp)) < 0) {
      printf("error=no-response ms=%.1f\n", now_ms() - t0);
      failures++;
    } else {
      printf("outcome=%s ms=%.1f sent=%zu syn=%zu fallback=%d "
             "client_fail=%d resp=\"%s\"\n",
             tfo_outcome_str(res.outcome), now_ms() - t0, res.bytes_sent,
             res.syn_bytes, res.fallback_ms, res.client_fail, resp);
    }
    fflush(stdout);
    close(fd);
  }
  if (show_cache)
    print_cache(ai);
  if (check_fds)
    printf("fds_leaked=%d\n", open_fds() - fds0);
  freeaddrinfo(ai);
  free(big);
  return failures ? 1 : 0;
}
