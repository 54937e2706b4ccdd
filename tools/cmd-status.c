/* tfoctl status, tfoctl enable: the namespace's net.ipv4.tcp_fastopen.
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "env.h"
#include "kernel.h"
#include "key.h"
#include "metrics.h"
#include "tfoctl.h"

struct bit {
  unsigned value;
  const char *name;
  const char *meaning;
};

/* net.ipv4.tcp_fastopen, per Documentation/networking/ip-sysctl.rst. */
static const struct bit fastopen_bits[] = {
    {TFO__FO_CLIENT, "client", "send data in the opening SYN"},
    {TFO__FO_SERVER, "server",
     "accept data in the SYN on listeners with TCP_FASTOPEN"},
    {TFO__FO_CLIENT_NO_COOKIE, "client-no-cookie",
     "send SYN data without a cookie"},
    {TFO__FO_SERVER_NO_COOKIE, "server-no-cookie",
     "accept SYN data without a cookie"},
    {TFO__FO_SERVER_ALL_LISTENERS, "server-all-listeners",
     "TFO on every listener, no setsockopt"},
};
#define NBITS (sizeof(fastopen_bits) / sizeof(fastopen_bits[0]))

/* 1 set, 0 all zeros (no key yet: the kernel makes a random one at first
 * use), -1 unreadable (the sysctl is mode 0600). */
static int key_state(void) {
  char buf[TFO__KEY_TEXT_MAX + 8];

  if (tfo__sysctl_read("net.ipv4.tcp_fastopen_key", buf, sizeof(buf)) != 0)
    return -1;
  return strspn(buf, "0-,") != strlen(buf);
}

struct features {
  int fastopen_connect; /* TCP_FASTOPEN_CONNECT (4.11) */
  int backup_key;       /* 32-byte TCP_FASTOPEN_KEY (5.3) */
  int client_fail;      /* tcpi_fastopen_client_fail (5.5) */
  int tfo_child;        /* TCPI_OPT_TFO_CHILD (6.16) */
  int blackhole_sysctl; /* tcp_fastopen_blackhole_timeout_sec (4.11) */
  int tcp_metrics;      /* the cookie cache over netlink */
};

static int count_cb(const struct tfo__metrics *m, void *arg) {
  (void)m;
  (*(int *)arg)++;
  return 0;
}

/* Asked of the kernel where a throwaway socket can tell; the version only
 * for what no socket shows before a connection exists. */
static void probe_features(struct features *f) {
  uint8_t key[TFO__KEY_MAX];
  long v;
  int fd, one = 1, n = 0;

  memset(f, 0, sizeof(*f));
  fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
  if (fd >= 0) {
    /* EOPNOTSUPP: known, but the client bit is off: still a feature. */
    f->fastopen_connect = setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT,
                                     &one, sizeof(one)) == 0 ||
                          errno == EOPNOTSUPP;
    /* A key on a socket that never listens: touches nothing else. */
    if (tfo__key_generate(key, sizeof(key)) == 0)
      f->backup_key =
          setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_KEY, key, sizeof(key)) == 0;
    tfo__key_wipe(key, sizeof(key));
    close(fd);
  }
  /* Both are bits in bytes every kernel returns (0 before): only the
   * version tells. */
  f->client_fail = tfo__kernel_at_least(5, 5);
  f->tfo_child = tfo__kernel_at_least(6, 16);
  f->blackhole_sysctl =
      tfo__sysctl_long("net.ipv4.tcp_fastopen_blackhole_timeout_sec", &v) == 0;
  f->tcp_metrics = tfo__metrics_foreach(count_cb, &n) == 0;
}

static const char *yesno(int v) {
  return v ? "yes" : "no";
}

static const char *jbool(int v) {
  return v ? "true" : "false";
}

int cmd_status(const struct ctl *c, int argc, char **argv) {
  struct features f;
  long bits, blackhole = -1, somaxconn = -1;
  int key;
  size_t i;
  int first = 1;

  if (tfoctl_wants_help(argc, argv)) {
    printf("usage: tfoctl [--json] status\n"
           "The namespace's net.ipv4.tcp_fastopen bits in words, blackhole "
           "detection,\nwhether a server key is set, and the kernel's TFO "
           "features.\n");
    return EXIT_OK;
  }
  if (argc > 0)
    return tfoctl_usage_error("status", "unexpected argument '%s'", argv[0]);
  if (tfo__sysctl_long("net.ipv4.tcp_fastopen", &bits) != 0)
    return tfoctl_fail("status",
                       "cannot read net.ipv4.tcp_fastopen: %s "
                       "(kernel without TFO?)",
                       strerror(errno));
  if (tfo__sysctl_long("net.ipv4.tcp_fastopen_blackhole_timeout_sec",
                       &blackhole) != 0)
    blackhole = -1;
  if (tfo__sysctl_long("net.core.somaxconn", &somaxconn) != 0)
    somaxconn = -1;
  key = key_state();
  probe_features(&f);

  if (c->json) {
    printf("{\"tcp_fastopen\":%ld,\"bits\":[", bits);
    for (i = 0; i < NBITS; i++) {
      if (bits & fastopen_bits[i].value) {
        printf("%s\"%s\"", first ? "" : ",", fastopen_bits[i].name);
        first = 0;
      }
    }
    printf("],\"client\":%s,\"server\":%s,\"blackhole_timeout_sec\":%ld,"
           "\"key_set\":%s,\"somaxconn\":%ld,",
           jbool(bits & TFO__FO_CLIENT), jbool(bits & TFO__FO_SERVER),
           blackhole,
           key == 1   ? "true"
           : key == 0 ? "false"
                      : "null",
           somaxconn);
    printf("\"features\":{\"fastopen_connect\":%s,\"backup_key\":%s,"
           "\"client_fail\":%s,\"tfo_child\":%s,\"blackhole_sysctl\":%s,"
           "\"tcp_metrics\":%s}}\n",
           jbool(f.fastopen_connect), jbool(f.backup_key), jbool(f.client_fail),
           jbool(f.tfo_child), jbool(f.blackhole_sysctl), jbool(f.tcp_metrics));
    return EXIT_OK;
  }
  printf("tcp_fastopen           %ld (0x%lx)\n", bits, bits);
  for (i = 0; i < NBITS; i++)
    printf("  %-22s %-3s %s\n", fastopen_bits[i].name,
           (bits & fastopen_bits[i].value) ? "on" : "off",
           fastopen_bits[i].meaning);
  if (blackhole < 0)
    printf("blackhole detection    unknown (no sysctl)\n");
  else if (blackhole == 0)
    printf("blackhole detection    off (kernel pays a SYN timeout per "
           "connection on broken paths)\n");
  else
    printf("blackhole detection    %ld s\n", blackhole);
  printf("server key             %s\n",
         key == 1   ? "set"
         : key == 0 ? "not set (random at first use, lost at reboot)"
                    : "unreadable (root only)");
  if (somaxconn >= 0)
    printf("somaxconn              %ld (caps every TFO queue)\n", somaxconn);
  printf("kernel features\n");
  printf("  %-22s %-3s %s\n", "fastopen-connect", yesno(f.fastopen_connect),
         "TCP_FASTOPEN_CONNECT (4.11)");
  printf("  %-22s %-3s %s\n", "backup-key", yesno(f.backup_key),
         "32-byte keys: rotation without losing clients (5.3)");
  printf("  %-22s %-3s %s\n", "client-fail", yesno(f.client_fail),
         "tcp_info says why a client's TFO failed (5.5)");
  printf("  %-22s %-3s %s\n", "tfo-child", yesno(f.tfo_child),
         "tcp_info marks server sockets made by TFO (6.16)");
  printf("  %-22s %-3s %s\n", "blackhole-sysctl", yesno(f.blackhole_sysctl),
         "tcp_fastopen_blackhole_timeout_sec (4.11)");
  printf("  %-22s %-3s %s\n", "tcp-metrics", yesno(f.tcp_metrics),
         "the cookie cache over netlink (tfoctl cookies)");
  if (!(bits & TFO__FO_SERVER))
    printf("hint: servers will not take data from SYNs here: "
           "tfoctl enable server\n");
  return EXIT_OK;
}

/* Seconds since boot: the first number of /proc/uptime (or of a file of
 * the same format, for tests). 0 or -1 with errno. */
static int read_uptime(const char *path, double *up) {
  char buf[128], *end;
  FILE *f = fopen(path, "re");
  int ok;

  if (f == NULL)
    return -1;
  ok = fgets(buf, sizeof(buf), f) != NULL;
  fclose(f);
  if (!ok) {
    errno = EINVAL;
    return -1;
  }
  errno = 0;
  *up = strtod(buf, &end);
  if (errno != 0 || end == buf || *up < 0) {
    errno = EINVAL;
    return -1;
  }
  return 0;
}

/* --after-uptime: SYN data a server took before a reboot can be replayed to
 * it after (the seed: "Delay enabling TFO by a few minutes"), so the bits
 * are set only once the host has been up `after` seconds. 0 to go on,
 * EXIT_NOT_YET (no_wait), or EXIT_FAIL. */
static int wait_uptime(const struct ctl *c, long after, int no_wait,
                       const char *path) {
  struct timespec ts;
  double up, left;
  int said = 0;

  for (;;) {
    if (read_uptime(path, &up) != 0)
      return tfoctl_fail("enable", "cannot read the uptime from %s: %s", path,
                         strerror(errno));
    left = (double)after - up;
    if (left <= 0)
      return 0;
    if (no_wait) {
      if (c->json)
        printf("{\"changed\":false,\"not_yet\":true,\"uptime\":%.1f,"
               "\"after_uptime\":%ld}\n",
               up, after);
      else
        printf("not yet: up %.1f s, TFO is enabled from %ld s of uptime "
               "(%.0f s to go); nothing changed\n",
               up, after, left);
      return EXIT_NOT_YET;
    }
    if (!said && !c->json) {
      printf("waiting %.0f s: up %.1f s, TFO is enabled from %ld s of "
             "uptime\n",
             left, up, after);
      fflush(stdout);
      said = 1;
    }
    /* Re-read at least every second: the clock that counts is uptime. */
    if (left > 1.0)
      left = 1.0;
    ts.tv_sec = (time_t)left;
    ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
      ;
  }
}

int cmd_enable(const struct ctl *c, int argc, char **argv) {
  char content[128], value[32];
  long old, want = TFO__FO_CLIENT | TFO__FO_SERVER, now, after = -1;
  const char *uptime_file = "/proc/uptime";
  int persist = 0, i, have_what = 0, no_wait = 0, rc;

  if (tfoctl_wants_help(argc, argv)) {
    printf("usage: tfoctl enable [client|server|both] [--persist] "
           "[--sysctl-dir DIR]\n"
           "       tfoctl enable server --after-uptime SEC [--no-wait]\n"
           "Sets the client and/or server bit of net.ipv4.tcp_fastopen "
           "(others kept).\n--persist also writes DIR/60-libtfo-fastopen.conf "
           "(default DIR " TFOCTL_SYSCTL_DIR ").\n"
           "--after-uptime: only once the system has been up SEC seconds "
           "(waits until\nthen; --no-wait: exit 4, \"not yet\", changing "
           "nothing), so that SYN data\ntaken before a reboot cannot be "
           "replayed to the restarted server.\n");
    return EXIT_OK;
  }
  for (i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--persist") == 0) {
      persist = 1;
    } else if (strcmp(argv[i], "--no-wait") == 0) {
      no_wait = 1;
    } else if (strcmp(argv[i], "--after-uptime") == 0 && i + 1 < argc) {
      if (tfo__parse_long(argv[++i], 0, 366L * 24 * 3600, &after) != 0)
        return tfoctl_usage_error("enable",
                                  "--after-uptime '%s': want seconds in "
                                  "0..31622400",
                                  argv[i]);
    } else if (strcmp(argv[i], "--uptime-file") == 0 && i + 1 < argc) {
      uptime_file = argv[++i]; /* for tests: /proc/uptime's format */
    } else if (argv[i][0] == '-') {
      return tfoctl_usage_error("enable", "unknown option '%s'", argv[i]);
    } else if (have_what) {
      return tfoctl_usage_error("enable", "unexpected argument '%s'", argv[i]);
    } else {
      have_what = 1;
      if (strcmp(argv[i], "client") == 0)
        want = TFO__FO_CLIENT;
      else if (strcmp(argv[i], "server") == 0)
        want = TFO__FO_SERVER;
      else if (strcmp(argv[i], "both") == 0)
        want = TFO__FO_CLIENT | TFO__FO_SERVER;
      else
        return tfoctl_usage_error("enable",
                                  "'%s': want client, server or "
                                  "both",
                                  argv[i]);
    }
  }
  if (no_wait && after < 0)
    return tfoctl_usage_error("enable", "--no-wait goes with --after-uptime");
  /* A sysctl.d file applies at boot, before any delay: it would undo the
   * point of waiting. */
  if (persist && after >= 0)
    return tfoctl_usage_error("enable",
                              "--persist and --after-uptime exclude each "
                              "other (boot-time sysctl.d has no delay: use "
                              "the libtfo-server-delayed.timer unit)");
  if (tfo__sysctl_long("net.ipv4.tcp_fastopen", &old) != 0)
    return tfoctl_fail("enable", "cannot read net.ipv4.tcp_fastopen: %s",
                       strerror(errno));
  if (after >= 0 && (rc = wait_uptime(c, after, no_wait, uptime_file)) != 0)
    return rc;
  if (after >= 0 && tfo__sysctl_long("net.ipv4.tcp_fastopen", &old) != 0)
    return tfoctl_fail("enable", "cannot read net.ipv4.tcp_fastopen: %s",
                       strerror(errno)); /* may have changed meanwhile */
  now = old | want;
  snprintf(value, sizeof(value), "%ld", now);
  if (now != old && tfo__sysctl_write("net.ipv4.tcp_fastopen", value) != 0)
    return tfoctl_fail("enable", "cannot set net.ipv4.tcp_fastopen=%s: %s%s",
                       value, strerror(errno),
                       errno == EACCES || errno == EPERM ? " (needs root)"
                                                         : "");
  if (persist) {
    snprintf(content, sizeof(content),
             "# Written by tfoctl enable: TCP Fast Open bits.\n"
             "net.ipv4.tcp_fastopen = %ld\n",
             now);
    if (tfoctl_persist(c, "enable", "60-libtfo-fastopen.conf", content, 0644) !=
        0) {
      /* All or nothing: put the running value back. */
      if (now != old) {
        snprintf(value, sizeof(value), "%ld", old);
        (void)tfo__sysctl_write("net.ipv4.tcp_fastopen", value);
      }
      return EXIT_FAIL;
    }
  }
  if (c->json)
    printf("{\"tcp_fastopen\":%ld,\"was\":%ld,\"changed\":%s,\"persisted\":%s}"
           "\n",
           now, old, jbool(now != old), jbool(persist));
  else if (now != old)
    printf("net.ipv4.tcp_fastopen: %ld -> %ld\n", old, now);
  else
    printf("net.ipv4.tcp_fastopen: %ld (already on)\n", now);
  return EXIT_OK;
}
