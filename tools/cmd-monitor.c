/* tfoctl monitor: alerts when the kernel's TFO counters say something is
 * wrong (the seed's "log the event ... will likely monitor kernel
 * messages": the kernel logs nothing, it only counts). Each sample, every
 * watched counter that rose gives one line, with the count, what it means
 * and what to do, on stderr and to syslog (LOG_DAEMON, ident tfoctl).
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "env.h"
#include "tfoctl.h"

#define DEFAULT_INTERVAL 10.0

struct alert {
  const char *counter;
  const char *means;
  const char *todo;
};

/* Counters whose rise is a problem to act on (cmd-stats.c has them all). */
static const struct alert alerts[] = {
    {"TCPFastOpenListenOverflow",
     "TFO SYNs found a listener's TFO queue full and got a normal handshake "
     "(their data waited a round trip)",
     "raise the listener's TFO queue: LIBTFO_QLEN / tfo_listen_opts.qlen / "
     "TCP_FASTOPEN (capped by net.core.somaxconn)"},
    {"TCPFastOpenPassiveFail",
     "SYNs carried a cookie this host did not accept (their data was "
     "dropped and sent again after the handshake)",
     "give every server of a farm the same key (tfoctl key set --file), "
     "rotate with a backup key (tfoctl key rotate)"},
    {"TCPFastOpenActiveFail",
     "outgoing TFO SYNs went unanswered or their data was not acked: a "
     "path may drop TFO (a blackhole, 1 s lost per connection)",
     "find the destination with tfoctl probe HOST; libtfo's negative cache "
     "skips such paths (tfoctl cache list)"},
    {"TCPFastOpenBlackhole",
     "the kernel's blackhole detection turned client TFO off",
     "find the path that drops TFO SYNs (tfoctl probe HOST)"},
};
#define NALERTS (sizeof(alerts) / sizeof(alerts[0]))

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

/* A syslog datagram to path ("<PRI>tfoctl[PID]: msg", as glibc sends to
 * /dev/log): for tests and for a log socket elsewhere than /dev/log. */
static void log_to_socket(int fd, const char *path, const char *msg) {
  struct sockaddr_un sun;
  char buf[1024];
  int n;

  memset(&sun, 0, sizeof(sun));
  sun.sun_family = AF_UNIX;
  memcpy(sun.sun_path, path, strlen(path));
  n = snprintf(buf, sizeof(buf), "<%d>tfoctl[%ld]: %s",
               LOG_DAEMON | LOG_WARNING, (long)getpid(), msg);
  if (n > 0)
    (void)sendto(fd, buf,
                 (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1, 0,
                 (struct sockaddr *)&sun, sizeof(sun));
}

static uint64_t value_of(const struct tfoctl_counters *s, const char *name,
                         int *found) {
  int i;

  for (i = 0; i < s->n; i++) {
    if (strcmp(s->name[i], name) == 0) {
      *found = 1;
      return s->value[i];
    }
  }
  *found = 0;
  return 0;
}

int cmd_monitor(const struct ctl *c, int argc, char **argv) {
  struct tfoctl_counters cur, prev;
  struct sigaction sa;
  struct timespec ts;
  const char *sock_path = NULL;
  double interval = DEFAULT_INTERVAL;
  long count = 0, k;
  int use_syslog = 1, i, fd = -1;
  char msg[768];
  size_t a;

  if (tfoctl_wants_help(argc, argv)) {
    printf("usage: tfoctl monitor [--interval SEC] [--count N] [--no-syslog]"
           "\n                      [--syslog-socket PATH]\n"
           "Samples the namespace's TFO counters every SEC seconds (default "
           "%.0f), N times\n(default: until interrupted), and for each of "
           "TCPFastOpenListenOverflow,\nTCPFastOpenPassiveFail, "
           "TCPFastOpenActiveFail and TCPFastOpenBlackhole that\nrose logs "
           "one line (with the count, what it means, what to do) on "
           "stderr\nand to syslog (LOG_DAEMON, ident tfoctl; PATH: a syslog "
           "datagram socket\nother than /dev/log).\n",
           DEFAULT_INTERVAL);
    return EXIT_OK;
  }
  for (i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--interval") == 0 && i + 1 < argc) {
      if (tfoctl_parse_interval("monitor", argv[++i], 86400, &interval) != 0)
        return EXIT_USAGE;
    } else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
      if (tfo__parse_long(argv[++i], 1, 1000000000L, &count) != 0)
        return tfoctl_usage_error("monitor",
                                  "--count '%s': want a number >= 1", argv[i]);
    } else if (strcmp(argv[i], "--no-syslog") == 0) {
      use_syslog = 0;
    } else if (strcmp(argv[i], "--syslog-socket") == 0 && i + 1 < argc) {
      sock_path = argv[++i];
      if (*sock_path != '/' ||
          strlen(sock_path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return tfoctl_usage_error("monitor",
                                  "--syslog-socket '%s': want an absolute "
                                  "path of at most 107 bytes",
                                  sock_path);
    } else {
      return tfoctl_usage_error("monitor", "unexpected argument '%s'",
                                argv[i]);
    }
  }
  if (!use_syslog && sock_path != NULL)
    return tfoctl_usage_error("monitor",
                              "--syslog-socket and --no-syslog exclude "
                              "each other");
  if (tfoctl_read_counters(&cur) != 0)
    return tfoctl_fail("monitor", "cannot read /proc/net/netstat: %s",
                       strerror(errno));
  if (sock_path != NULL) {
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
      return tfoctl_fail("monitor", "socket: %s", strerror(errno));
  } else if (use_syslog) {
    openlog("tfoctl", LOG_PID, LOG_DAEMON);
  }
  (void)c;

  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  fprintf(stderr, "tfoctl monitor: watching TFO counters every %g s\n",
          interval);
  /* Samples, not events: so at most one line per counter per interval,
   * however fast it rises, and the count says how much. */
  for (k = 1; !stop && (count == 0 || k < count); k++) {
    ts.tv_sec = (time_t)interval;
    ts.tv_nsec = (long)((interval - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !stop)
      ;
    if (stop)
      break;
    prev = cur;
    if (tfoctl_read_counters(&cur) != 0) {
      if (fd >= 0)
        close(fd);
      return tfoctl_fail("monitor", "cannot read /proc/net/netstat: %s",
                         strerror(errno));
    }
    for (a = 0; a < NALERTS; a++) {
      int f1, f0;
      uint64_t now = value_of(&cur, alerts[a].counter, &f1);
      uint64_t was = value_of(&prev, alerts[a].counter, &f0);

      if (!f1 || !f0 || now <= was)
        continue;
      snprintf(msg, sizeof(msg), "%s +%" PRIu64 " in %gs: %s; %s",
               alerts[a].counter, now - was, interval, alerts[a].means,
               alerts[a].todo);
      fprintf(stderr, "tfoctl monitor: %s\n", msg);
      if (fd >= 0)
        log_to_socket(fd, sock_path, msg);
      else if (use_syslog)
        syslog(LOG_WARNING, "%s", msg);
    }
    fflush(stderr);
  }
  if (fd >= 0)
    close(fd);
  else if (use_syslog)
    closelog();
  return EXIT_OK;
}
