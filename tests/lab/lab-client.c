/* lab-client: one timed request/response for the network lab.
 *
 * It tests the kernel and the lab, not libtfo. Sends a request of
 * REQUEST_BYTES (a line: filler then '\n') to lab-server, reads the one-line
 * response and prints one machine-readable line on stdout:
 *   ms=51.23 syn_data=1 client_fail=0 resp="OK 17"
 * ms runs from before socket() to the full response line. syn_data is
 * tcpi_options & TCPI_OPT_SYN_DATA (the SYN's data was acked);
 * client_fail is tcpi_fastopen_client_fail (0 ok/unspecified, 1 no cookie,
 * 2 data not acked, 3 SYN retransmitted).
 * On error it prints the same fields plus error=STAGE:ERRNO_NAME, a message
 * on stderr, and exits 1. Every blocking step is bounded by the timeout
 * (default 5000 ms): a timeout shows as EAGAIN (read/write) or EINPROGRESS
 * (connect); SIGALRM at 2 x timeout + 2 s is the last resort.
 *
 * Usage: lab-client [-m plain|tfo|msgfastopen] [-s REQUEST_BYTES]
 *                   [-t TIMEOUT_MS] [-b] HOST PORT
 *   plain        connect() then write()
 *   tfo          setsockopt(TCP_FASTOPEN_CONNECT) then connect() + write()
 *   msgfastopen  sendto(MSG_FASTOPEN) on an unconnected socket
 *   -b           read a banner line (lab-server -b) before sending
 */

#ifdef HAVE_CONFIG_H
#include "config.h" /* _GNU_SOURCE under -std=c11 */
#endif

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
/* Not <netinet/tcp.h>: glibc's tcp_info lacks tcpi_fastopen_client_fail,
 * and the two headers cannot both be included. */
#include <linux/tcp.h>

#ifndef MSG_FASTOPEN
# define MSG_FASTOPEN 0x20000000
#endif

enum { MODE_PLAIN, MODE_TFO, MODE_MSGFASTOPEN };

static int fd = -1;
static struct timespec t0;


static double elapsed_ms(void) {
  struct timespec t;

  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double) (t.tv_sec - t0.tv_sec) * 1e3 +
         (double) (t.tv_nsec - t0.tv_nsec) / 1e6;
}


/* Fill *syn_data and *client_fail from TCP_INFO; -1 when unavailable. */
static void tfo_info(int* syn_data, int* client_fail) {
  struct tcp_info ti;
  socklen_t len;

  *syn_data = -1;
  *client_fail = -1;
  if (fd < 0)
    return;

  memset(&ti, 0, sizeof(ti));
  len = sizeof(ti);
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
    return;

  *syn_data = (ti.tcpi_options & TCPI_OPT_SYN_DATA) != 0;
  /* Kernels before 5.5 leave this byte zero (it was padding). */
  *client_fail = ti.tcpi_fastopen_client_fail;
}


static void fail(const char* stage) {
  const char* name;
  double ms;
  int err;
  int syn_data;
  int client_fail;

  err = errno;
  ms = elapsed_ms();
  tfo_info(&syn_data, &client_fail);
  name = strerrorname_np(err);
  printf("ms=%.2f syn_data=%d client_fail=%d error=%s:%s\n",
         ms, syn_data, client_fail, stage, name ? name : "?");
  fflush(stdout);
  fprintf(stderr, "lab-client: %s: %s\n", stage, strerror(err));
  exit(1);
}


static void usage(void) {
  fprintf(stderr,
          "usage: lab-client [-m plain|tfo|msgfastopen] [-s REQUEST_BYTES] "
          "[-t TIMEOUT_MS] [-b] HOST PORT\n");
  exit(2);
}


static long parse_num(const char* s, long lo, long hi) {
  char* end;
  long v;

  errno = 0;
  v = strtol(s, &end, 10);
  if (errno || *end || end == s || v < lo || v > hi)
    usage();
  return v;
}


static void write_all(const char* buf, size_t len, const char* stage) {
  ssize_t n;

  while (len > 0) {
    n = write(fd, buf, len);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      fail(stage);
    }
    buf += n;
    len -= (size_t) n;
  }
}


/* Read one line (without its '\n') into out; bytes past it are ignored. */
static void read_line(char* out, size_t cap, const char* stage) {
  size_t len;
  ssize_t n;
  char c;

  len = 0;
  for (;;) {
    n = read(fd, &c, 1);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      fail(stage);
    }
    if (n == 0) {
      errno = ENODATA;  /* EOF before the end of the line */
      fail(stage);
    }
    if (c == '\n')
      break;
    if (len + 1 < cap)
      out[len++] = c;
  }
  out[len] = '\0';
}


int main(int argc, char** argv) {
  struct sockaddr_storage ss;
  struct sockaddr_in6* sin6;
  struct sockaddr_in* sin;
  struct timeval tv;
  const char* host;
  socklen_t slen;
  char banner[256];
  char resp[256];
  char* req;
  long size;
  long port;
  long timeout_ms;
  ssize_t n;
  size_t off;
  double ms;
  int syn_data;
  int client_fail;
  int want_banner;
  int mode;
  int one;
  int opt;

  mode = MODE_PLAIN;
  size = 16;
  timeout_ms = 5000;
  want_banner = 0;

  while ((opt = getopt(argc, argv, "m:s:t:b")) != -1) {
    switch (opt) {
    case 'm':
      if (strcmp(optarg, "plain") == 0)
        mode = MODE_PLAIN;
      else if (strcmp(optarg, "tfo") == 0)
        mode = MODE_TFO;
      else if (strcmp(optarg, "msgfastopen") == 0)
        mode = MODE_MSGFASTOPEN;
      else
        usage();
      break;
    case 's': size = parse_num(optarg, 1, 64L * 1024 * 1024); break;
    case 't': timeout_ms = parse_num(optarg, 1, 600000); break;
    case 'b': want_banner = 1; break;
    default: usage();
    }
  }
  if (argc - optind != 2)
    usage();
  /* msgfastopen connects in sendto(): there is no socket to read before. */
  if (want_banner && mode == MODE_MSGFASTOPEN)
    usage();

  host = argv[optind];
  port = parse_num(argv[optind + 1], 1, 65535);

  memset(&ss, 0, sizeof(ss));
  sin = (struct sockaddr_in*) &ss;
  sin6 = (struct sockaddr_in6*) &ss;
  if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
    sin->sin_family = AF_INET;
    sin->sin_port = htons((unsigned short) port);
    slen = sizeof(*sin);
  } else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons((unsigned short) port);
    slen = sizeof(*sin6);
  } else {
    fprintf(stderr, "lab-client: HOST must be a numeric address: %s\n", host);
    return 2;
  }

  req = malloc((size_t) size);
  if (req == NULL) {
    fprintf(stderr, "lab-client: out of memory\n");
    return 1;
  }
  memset(req, 'x', (size_t) size - 1);
  req[size - 1] = '\n';

  /* Last resort: socket timeouts bound each call, this bounds the total. */
  alarm((unsigned) (timeout_ms / 1000) * 2 + 2);

  clock_gettime(CLOCK_MONOTONIC, &t0);

  fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    fail("socket");

  tv.tv_sec = timeout_ms / 1000;
  tv.tv_usec = (timeout_ms % 1000) * 1000;
  /* SO_SNDTIMEO also bounds a blocking connect(). */
  if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0)
    fail("setsockopt(SO_RCVTIMEO)");
  if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0)
    fail("setsockopt(SO_SNDTIMEO)");

  off = 0;
  if (mode == MODE_MSGFASTOPEN) {
    /* Returns what went out with the SYN (with a cookie) or, blocking and
     * without one, after a normal handshake; the rest follows below. */
    do
      n = sendto(fd, req, (size_t) size, MSG_FASTOPEN,
                 (struct sockaddr*) &ss, slen);
    while (n < 0 && errno == EINTR);
    if (n < 0)
      fail("sendto");
    off = (size_t) n;
  } else {
    if (mode == MODE_TFO) {
      one = 1;
      if (setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT,
                     &one, sizeof(one)) != 0)
        fail("setsockopt");
    }
    if (connect(fd, (struct sockaddr*) &ss, slen) != 0)
      fail("connect");
  }

  if (want_banner)
    read_line(banner, sizeof(banner), "banner");

  write_all(req + off, (size_t) size - off, "write");
  read_line(resp, sizeof(resp), "read");
  ms = elapsed_ms();

  tfo_info(&syn_data, &client_fail);
  printf("ms=%.2f syn_data=%d client_fail=%d resp=\"%s\"",
         ms, syn_data, client_fail, resp);
  if (want_banner)
    printf(" banner=\"%s\"", banner);
  printf("\n");
  fflush(stdout);

  close(fd);
  free(req);
  return 0;
}
