/* tfoctl stats: the kernel's TCP Fast Open counters (TcpExt in
 * /proc/net/netstat, per namespace) and what each one means.
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "env.h"
#include "tfoctl.h"

struct counter {
  const char *name;
  const char *meaning;
};

/* The meanings follow the kernel's use of each counter (net/ipv4/
 * tcp_fastopen.c, tcp_input.c). */
static const struct counter known[] = {
    {"TCPFastOpenActive", "outgoing connections whose SYN data was acked"},
    {"TCPFastOpenActiveFail",
     "outgoing TFO SYNs whose data was not acked or that timed out"},
    {"TCPFastOpenPassive", "incoming connections that took data from the SYN"},
    {"TCPFastOpenPassiveFail",
     "incoming SYNs with an invalid cookie (data dropped)"},
    {"TCPFastOpenListenOverflow",
     "incoming TFO SYNs refused TFO: listener's TFO queue full"},
    {"TCPFastOpenCookieReqd", "incoming SYNs asking for a cookie"},
    {"TCPFastOpenBlackhole", "times blackhole detection turned TFO off"},
    {"TCPFastOpenPassiveAltKey",
     "incoming cookies valid under the backup key (rotation)"},
    {"TCPSynRetrans", "SYN and SYN-ACK retransmissions"},
    {"TCPOrigDataSent", "packets sent with new data, data in SYNs included"},
};
#define NKNOWN (sizeof(known) / sizeof(known[0]))

static int wanted(const char *name) {
  size_t i;

  if (strncmp(name, "TCPFastOpen", 11) == 0)
    return 1; /* future FastOpen counters too */
  for (i = 0; i < NKNOWN; i++)
    if (strcmp(name, known[i].name) == 0)
      return 1;
  return 0;
}

static const char *meaning(const char *name) {
  size_t i;

  for (i = 0; i < NKNOWN; i++)
    if (strcmp(name, known[i].name) == 0)
      return known[i].meaning;
  return "(no description)";
}

/* /proc/net/netstat: pairs of lines, "TcpExt: names..." then
 * "TcpExt: values...". */
int tfoctl_read_counters(struct tfoctl_counters *s) {
  static char names[16384], values[16384];
  char *sn, *sv, *n, *v;
  FILE *f = fopen("/proc/net/netstat", "re");
  int found = 0;

  memset(s, 0, sizeof(*s));
  if (f == NULL)
    return -1;
  while (fgets(names, sizeof(names), f) != NULL &&
         fgets(values, sizeof(values), f) != NULL) {
    if (strncmp(names, "TcpExt:", 7) != 0 || strncmp(values, "TcpExt:", 7) != 0)
      continue;
    found = 1;
    n = strtok_r(names + 7, " \n", &sn);
    v = strtok_r(values + 7, " \n", &sv);
    while (n != NULL && v != NULL && s->n < TFOCTL_MAXC) {
      if (wanted(n) && strlen(n) < sizeof(s->name[0])) {
        strcpy(s->name[s->n], n);
        s->value[s->n] = strtoull(v, NULL, 10);
        s->n++;
      }
      n = strtok_r(NULL, " \n", &sn);
      v = strtok_r(NULL, " \n", &sv);
    }
  }
  fclose(f);
  if (!found) {
    errno = ENOENT;
    return -1;
  }
  return 0;
}

static void print_table(const struct tfoctl_counters *s) {
  int i;

  printf("%-26s %12s  %s\n", "COUNTER", "VALUE", "MEANING");
  for (i = 0; i < s->n; i++)
    printf("%-26s %12" PRIu64 "  %s\n", s->name[i], s->value[i],
           meaning(s->name[i]));
}

static void print_json(const struct tfoctl_counters *s, const struct tfoctl_counters *prev,
                       double t) {
  int i;

  printf("{");
  if (prev != NULL)
    printf("\"time\":%.3f,", t);
  printf("\"counters\":{");
  for (i = 0; i < s->n; i++)
    printf("%s\"%s\":%" PRIu64, i ? "," : "", s->name[i], s->value[i]);
  printf("}");
  if (prev != NULL) {
    printf(",\"delta\":{");
    for (i = 0; i < s->n; i++)
      printf("%s\"%s\":%" PRIu64, i ? "," : "", s->name[i],
             i < prev->n ? s->value[i] - prev->value[i] : 0);
    printf("}");
  }
  printf("}\n");
}

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

static double now_s(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Each sample: the counters that moved since the last one, or a quiet
 * line, so that a watcher sees time pass. */
static void print_delta(const struct tfoctl_counters *s, const struct tfoctl_counters *prev,
                        double t) {
  int i, moved = 0;

  for (i = 0; i < s->n && i < prev->n; i++) {
    if (s->value[i] != prev->value[i]) {
      printf("%9.1fs %-26s +%-8" PRIu64 " = %" PRIu64 "\n", t, s->name[i],
             s->value[i] - prev->value[i], s->value[i]);
      moved = 1;
    }
  }
  if (!moved)
    printf("%9.1fs (no change)\n", t);
}

int cmd_stats(const struct ctl *c, int argc, char **argv) {
  struct tfoctl_counters cur, prev;
  struct sigaction sa;
  struct timespec ts;
  double interval = 1.0, t0;
  long count = 0, k;
  int watch = 0, i;

  if (tfoctl_wants_help(argc, argv)) {
    printf("usage: tfoctl [--json] stats [--watch [--interval SEC] "
           "[--count N]]\n"
           "The namespace's TcpExt TFO counters (and TCPSynRetrans, "
           "TCPOrigDataSent)\nwith their meaning; --watch prints what moved "
           "every SEC seconds (default 1),\nN times (default: until "
           "interrupted).\n");
    return EXIT_OK;
  }
  for (i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--watch") == 0) {
      watch = 1;
    } else if (strcmp(argv[i], "--interval") == 0 && i + 1 < argc) {
      if (tfoctl_parse_interval("stats", argv[++i], 3600, &interval) != 0)
        return EXIT_USAGE;
    } else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
      if (tfo__parse_long(argv[++i], 1, 1000000000L, &count) != 0)
        return tfoctl_usage_error("stats", "--count '%s': want a number >= 1",
                                  argv[i]);
    } else {
      return tfoctl_usage_error("stats", "unexpected argument '%s'", argv[i]);
    }
  }
  if (!watch && count != 0)
    return tfoctl_usage_error("stats", "--count goes with --watch");
  if (tfoctl_read_counters(&cur) != 0)
    return tfoctl_fail("stats", "cannot read /proc/net/netstat: %s",
                       strerror(errno));
  if (!watch) {
    if (c->json)
      print_json(&cur, NULL, 0);
    else
      print_table(&cur);
    return EXIT_OK;
  }

  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  t0 = now_s();
  if (c->json)
    print_json(&cur, &cur, 0);
  else
    print_table(&cur);
  fflush(stdout);
  for (k = 1; !stop && (count == 0 || k < count); k++) {
    ts.tv_sec = (time_t)interval;
    ts.tv_nsec = (long)((interval - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !stop)
      ;
    if (stop)
      break;
    prev = cur;
    if (tfoctl_read_counters(&cur) != 0)
      return tfoctl_fail("stats", "cannot read /proc/net/netstat: %s",
                         strerror(errno));
    if (c->json)
      print_json(&cur, &prev, now_s() - t0);
    else
      print_delta(&cur, &prev, now_s() - t0);
    fflush(stdout);
  }
  return EXIT_OK;
}
