/* tfoctl cookies: the kernel's TFO cookie cache, which lives in its
 * per-destination TCP metrics (tcp_metrics over generic netlink).
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "metrics.h"
#include "tfoctl.h"

struct list {
  const struct ctl *c;
  int all;
  int n;
};

static void hex(const uint8_t *b, int n, char *out) {
  int i;

  for (i = 0; i < n; i++)
    sprintf(out + 2 * i, "%02x", b[i]);
  out[2 * n] = '\0';
}

static int list_cb(const struct tfo__metrics *m, void *arg) {
  struct list *l = arg;
  char addr[INET6_ADDRSTRLEN] = "?", src[INET6_ADDRSTRLEN] = "";
  char cookie[2 * sizeof(m->cookie) + 1];

  if (!l->all && m->cookie_len == 0)
    return 0;
  inet_ntop(m->family, m->daddr, addr, sizeof(addr));
  if (m->has_saddr)
    inet_ntop(m->family, m->saddr, src, sizeof(src));
  hex(m->cookie, m->cookie_len, cookie);
  if (l->c->json) {
    printf("%s{\"address\":", l->n ? "," : "");
    json_str(stdout, addr);
    printf(",\"source\":");
    json_str(stdout, src);
    printf(",\"cookie\":");
    json_str(stdout, cookie);
    printf(",\"fo_mss\":%u,\"syn_drops\":%u,\"rtt_us\":%u,\"age_ms\":%" PRIu64
           "}",
           m->fo_mss, m->syn_drops, m->rtt_us, m->age_ms);
  } else {
    if (l->n == 0)
      printf("%-39s %-32s %6s %9s %10s\n", "DESTINATION", "COOKIE", "FO_MSS",
             "SYN_DROPS", "AGE");
    printf("%-39s %-32s %6u %9u %9.1fs\n", addr, m->cookie_len ? cookie : "-",
           m->fo_mss, m->syn_drops, (double)m->age_ms / 1000.0);
  }
  l->n++;
  return 0;
}

static int do_list(const struct ctl *c, int all) {
  struct list l = {c, all, 0};

  if (c->json)
    printf("[");
  if (tfo__metrics_foreach(list_cb, &l) != 0) {
    if (c->json)
      printf("]\n");
    return tfoctl_fail("cookies", "cannot read the kernel's tcp_metrics: %s",
                       strerror(errno));
  }
  if (c->json)
    printf("]\n");
  else if (l.n == 0)
    printf("no %s cached\n", all ? "destination" : "cookie");
  return EXIT_OK;
}

static int do_flush(const struct ctl *c, const char *arg) {
  struct sockaddr_storage ss;
  socklen_t len = 0;
  int port, rc;

  if (arg != NULL &&
      (tfoctl_parse_addr(arg, &ss, &len, &port) != 0 || port != -1))
    return tfoctl_usage_error("cookies",
                              "flush: '%s' is not an IP address "
                              "(cookies are per address, not per port)",
                              arg);
  rc = tfo__metrics_delete(arg != NULL ? (struct sockaddr *)&ss : NULL, len);
  if (rc != 0 && errno == ENOENT)
    return tfoctl_fail("cookies", "flush: nothing cached for %s", arg);
  if (rc != 0)
    return tfoctl_fail("cookies", "flush: %s%s", strerror(errno),
                       errno == EPERM ? " (needs CAP_NET_ADMIN)" : "");
  if (c->json)
    printf("{\"flushed\":%s%s%s}\n", arg ? "\"" : "", arg ? arg : "all",
           arg ? "\"" : "");
  else
    printf("flushed %s\n", arg != NULL ? arg : "every destination");
  return EXIT_OK;
}

int cmd_cookies(const struct ctl *c, int argc, char **argv) {
  if (tfoctl_wants_help(argc, argv)) {
    printf("usage: tfoctl [--json] cookies [list [--all]]\n"
           "       tfoctl cookies flush [ADDR]\n"
           "list: the TFO cookies this namespace's kernel holds, per "
           "destination\n(--all: every destination it keeps metrics for).\n"
           "flush: forget the cookie (and the kernel's other metrics) of ADDR, "
           "or of\nevery destination: the next connection asks for a cookie "
           "again.\n");
    return EXIT_OK;
  }
  if (argc == 0 || strcmp(argv[0], "list") == 0) {
    if (argc > 2 || (argc == 2 && strcmp(argv[1], "--all") != 0))
      return tfoctl_usage_error("cookies", "list: unexpected argument '%s'",
                                argv[argc - 1]);
    return do_list(c, argc == 2);
  }
  if (strcmp(argv[0], "flush") == 0) {
    if (argc > 2)
      return tfoctl_usage_error("cookies", "flush: unexpected argument '%s'",
                                argv[2]);
    return do_flush(c, argc == 2 ? argv[1] : NULL);
  }
  return tfoctl_usage_error("cookies", "unknown subcommand '%s' (list, flush)",
                            argv[0]);
}
