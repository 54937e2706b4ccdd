/* lab-server: a tiny request/response server for the network lab.
 *
 * It tests the kernel and the lab, not libtfo. Every connection gets:
 *   [banner line, with -b]  read one request  ->  "OK <nbytes>\n"
 * where a request is everything up to and including the first '\n', or all
 * the client sent before it half-closed. <nbytes> lets the client check
 * that every byte arrived. One line per connection goes to stdout:
 *   conn=1 peer=198.18.0.1:40000 bytes=17 syn_data=1 tfo_child=1
 * syn_data: the kernel accepted data from the SYN (TCPI_OPT_SYN_DATA);
 * tfo_child: the socket came from a valid Fast Open SYN (6.16+, else 0).
 *
 * Usage: lab-server [-6] -p PORT [-q TFO_QLEN] [-n MAXCONN] [-b BANNER]
 *                   [-r NBYTES]
 *   -q  TCP_FASTOPEN queue length on the listener (default 16, 0 = unset)
 *   -n  exit after MAXCONN connections (after their log lines are out)
 *   -r  a peer that resets: once NBYTES of the request are read (0: at
 *       once, before reading), close with SO_LINGER 0 (a RST) and never
 *       answer; the log line then ends with " reset=1"
 * Connections are served by forked children; SIGTERM/SIGINT stop cleanly.
 */

#ifdef HAVE_CONFIG_H
#include "config.h" /* _GNU_SOURCE under -std=c11 */
#endif

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
/* Not <netinet/tcp.h>: the two cannot both be included, and only the
 * kernel's header has the full tcp_info. */
#include <linux/tcp.h>

#ifndef TCPI_OPT_TFO_CHILD
# define TCPI_OPT_TFO_CHILD 128
#endif

#define IO_TIMEOUT_SEC 5

static volatile sig_atomic_t stopping;
static long reset_after = -1; /* -r: reset after this many bytes, -1: never */


static void on_signal(int signum) {
  (void) signum;
  stopping = 1;
}


static void die(const char* what) {
  fprintf(stderr, "lab-server: %s: %s\n", what, strerror(errno));
  exit(1);
}


static void usage(void) {
  fprintf(stderr,
          "usage: lab-server [-6] -p PORT [-q TFO_QLEN] [-n MAXCONN] "
          "[-b BANNER] [-r NBYTES]\n");
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


static int write_all(int fd, const char* buf, size_t len) {
  ssize_t n;

  while (len > 0) {
    n = write(fd, buf, len);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    buf += n;
    len -= (size_t) n;
  }
  return 0;
}


static void peer_name(const struct sockaddr_storage* ss, char* out, size_t n) {
  char host[INET6_ADDRSTRLEN];
  const struct sockaddr_in* sin;
  const struct sockaddr_in6* sin6;

  if (ss->ss_family == AF_INET) {
    sin = (const struct sockaddr_in*) ss;
    inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
    snprintf(out, n, "%s:%u", host, ntohs(sin->sin_port));
  } else {
    sin6 = (const struct sockaddr_in6*) ss;
    inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
    snprintf(out, n, "[%s]:%u", host, ntohs(sin6->sin6_port));
  }
}


/* -r: read until at least reset_after bytes came (or the peer stopped),
 * then abort the connection with a RST. */
static int serve_reset(int fd, unsigned long conn, const char* peer,
                       int syn_data, int tfo_child) {
  struct linger lg;
  char buf[16384];
  size_t total = 0;
  ssize_t n;

  while ((long) total < reset_after) {
    n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    total += (size_t) n;
  }
  printf("conn=%lu peer=%s bytes=%zu syn_data=%d tfo_child=%d reset=1\n",
         conn, peer, total, syn_data, tfo_child);
  fflush(stdout);
  lg.l_onoff = 1;
  lg.l_linger = 0;
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  close(fd);
  return 0;
}


/* Serve one connection; runs in a forked child. */
static int serve(int fd, unsigned long conn, const char* peer,
                 const char* banner) {
  struct tcp_info ti;
  struct timeval tv;
  socklen_t len;
  char buf[16384];
  char line[256];
  size_t total;
  ssize_t n;
  int syn_data;
  int tfo_child;
  int done;
  int rc;

  tv.tv_sec = IO_TIMEOUT_SEC;
  tv.tv_usec = 0;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));

  /* Read at once: whether the SYN's data was taken is settled by accept. */
  memset(&ti, 0, sizeof(ti));
  len = sizeof(ti);
  syn_data = 0;
  tfo_child = 0;
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0) {
    syn_data = (ti.tcpi_options & TCPI_OPT_SYN_DATA) != 0;
    tfo_child = (ti.tcpi_options & TCPI_OPT_TFO_CHILD) != 0;
  }

  if (reset_after >= 0)
    return serve_reset(fd, conn, peer, syn_data, tfo_child);

  rc = 0;
  if (banner != NULL) {
    n = snprintf(line, sizeof(line), "%s\n", banner);
    if (write_all(fd, line, (size_t) n) != 0) {
      fprintf(stderr, "lab-server: conn=%lu banner: %s\n",
              conn, strerror(errno));
      rc = 1;
    }
  }

  total = 0;
  done = 0;
  while (rc == 0 && !done) {
    n = read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR)
        continue;
      fprintf(stderr, "lab-server: conn=%lu read: %s\n",
              conn, strerror(errno));
      rc = 1;
      break;
    }
    if (n == 0)
      break;  /* half-close ends the request */
    if (memchr(buf, '\n', (size_t) n) != NULL) {
      /* Count through the newline only: that is the request. */
      n = (char*) memchr(buf, '\n', (size_t) n) - buf + 1;
      done = 1;
    }
    total += (size_t) n;
  }

  if (rc == 0) {
    n = snprintf(line, sizeof(line), "OK %zu\n", total);
    if (write_all(fd, line, (size_t) n) != 0) {
      fprintf(stderr, "lab-server: conn=%lu write: %s\n",
              conn, strerror(errno));
      rc = 1;
    }
  }

  printf("conn=%lu peer=%s bytes=%zu syn_data=%d tfo_child=%d%s\n",
         conn, peer, total, syn_data, tfo_child, rc ? " error=1" : "");
  fflush(stdout);

  /* Close gracefully: send our FIN, then wait (bounded by SO_RCVTIMEO) for
   * the client's, so unread data never turns our close into a RST. */
  if (rc == 0) {
    shutdown(fd, SHUT_WR);
    while ((n = read(fd, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
      ;
  }
  close(fd);
  return rc;
}


static void reap(int block) {
  while (waitpid(-1, NULL, block ? 0 : WNOHANG) > 0)
    ;
}


int main(int argc, char** argv) {
  struct sockaddr_storage ss;
  struct sockaddr_in6* sin6;
  struct sockaddr_in* sin;
  struct sigaction sa;
  struct pollfd pfd;
  struct timespec ts;
  sigset_t block;
  sigset_t waitmask;
  const char* banner;
  unsigned long conn;
  socklen_t slen;
  char peer[80];
  long port;
  long qlen;
  long maxconn;
  pid_t pid;
  int family;
  int lfd;
  int fd;
  int one;
  int opt;
  int q;

  family = AF_INET;
  port = -1;
  qlen = 16;
  maxconn = 0;
  banner = NULL;

  while ((opt = getopt(argc, argv, "6p:q:n:b:r:")) != -1) {
    switch (opt) {
    case '6': family = AF_INET6; break;
    case 'p': port = parse_num(optarg, 1, 65535); break;
    case 'q': qlen = parse_num(optarg, 0, 1000000); break;
    case 'n': maxconn = parse_num(optarg, 1, 1000000000); break;
    case 'b': banner = optarg; break;
    case 'r': reset_after = parse_num(optarg, 0, 1000000000); break;
    default: usage();
    }
  }
  if (port < 0 || optind != argc)
    usage();
  if (banner != NULL && strlen(banner) > 200)
    usage();

  /* Line buffered even into a file or pipe: tests read the log live. */
  setvbuf(stdout, NULL, _IOLBF, 0);

  /* SIGTERM is only taken inside ppoll()/waitpid(), never between the check
   * of `stopping` and the wait, so a stop request is never missed. */
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGHUP);
  sigprocmask(SIG_BLOCK, &block, &waitmask);
  sigdelset(&waitmask, SIGTERM);
  sigdelset(&waitmask, SIGINT);
  sigdelset(&waitmask, SIGHUP);

  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);

  lfd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (lfd < 0)
    die("socket");

  one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));

  memset(&ss, 0, sizeof(ss));
  if (family == AF_INET) {
    sin = (struct sockaddr_in*) &ss;
    sin->sin_family = AF_INET;
    sin->sin_port = htons((unsigned short) port);
    sin->sin_addr.s_addr = htonl(INADDR_ANY);
    slen = sizeof(*sin);
  } else {
    sin6 = (struct sockaddr_in6*) &ss;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons((unsigned short) port);
    sin6->sin6_addr = in6addr_any;
    slen = sizeof(*sin6);
  }

  if (bind(lfd, (struct sockaddr*) &ss, slen) != 0)
    die("bind");

  if (qlen > 0) {
    q = (int) qlen;
    if (setsockopt(lfd, IPPROTO_TCP, TCP_FASTOPEN, &q, sizeof(q)) != 0)
      die("setsockopt(TCP_FASTOPEN)");
  }

  if (listen(lfd, 128) != 0)
    die("listen");

  printf("listen port=%ld family=%d tfo_qlen=%ld\n",
         port, family == AF_INET ? 4 : 6, qlen);

  pfd.fd = lfd;
  pfd.events = POLLIN;
  conn = 0;

  while (!stopping && (maxconn == 0 || conn < (unsigned long) maxconn)) {
    /* Wake now and then to reap finished children. */
    ts.tv_sec = 1;
    ts.tv_nsec = 0;
    if (ppoll(&pfd, 1, &ts, &waitmask) < 0 && errno != EINTR)
      die("ppoll");
    reap(0);
    if (stopping || !(pfd.revents & POLLIN))
      continue;

    slen = sizeof(ss);
    fd = accept4(lfd, (struct sockaddr*) &ss, &slen, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED)
        continue;
      die("accept");
    }

    conn++;
    peer_name(&ss, peer, sizeof(peer));

    fflush(stdout);
    pid = fork();
    if (pid < 0)
      die("fork");
    if (pid == 0) {
      close(lfd);
      signal(SIGTERM, SIG_DFL);
      signal(SIGINT, SIG_DFL);
      signal(SIGHUP, SIG_DFL);
      sigprocmask(SIG_SETMASK, &waitmask, NULL);
      _exit(serve(fd, conn, peer, banner));
    }
    close(fd);
  }

  close(lfd);

  /* After -n connections, let the children finish (each is bounded by its
   * I/O timeouts) so every log line is out before we exit; SIGTERM cuts
   * this short. When stopped by a signal, leave at once: children end on
   * their own timeouts. */
  sigprocmask(SIG_SETMASK, &waitmask, NULL);
  while (!stopping && waitpid(-1, NULL, 0) > 0)
    ;

  return 0;
}
