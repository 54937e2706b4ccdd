/* tfoctl cache: libtfo's own negative cache (lib/cache.h), the entries of
 * this network namespace.
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "tfo.h"
#include "tfoctl.h"

struct list {
  const struct ctl *c;
  int n;
  int64_t now_ms;
};

static int list_cb(const struct sockaddr *sa, socklen_t len,
                   const struct tfo__verdict *v, void *arg) {
  struct list *l = arg;
  char addr[80], until[32] = "-";
  const char *ev = tfo_cache_event_str((enum tfo_cache_event)v->last);

  (void)len;
  tfoctl_addr_str(sa, 1, addr, sizeof(addr));
  if (v->skip && v->expires_ms > l->now_ms)
    snprintf(until, sizeof(until), "%.0fs",
             (double)(v->expires_ms - l->now_ms) / 1000.0);
  if (l->c->json) {
    printf("%s{\"destination\":", l->n ? "," : "");
    json_str(stdout, addr);
    printf(",\"skip\":%s,\"last\":\"%s\",\"failures\":%u,\"rtt_us\":%u,"
           "\"expires_ms\":%lld}",
           v->skip ? "true" : "false", ev, v->failures, v->rtt_us,
           (long long)v->expires_ms);
  } else {
    if (l->n == 0)
      printf("%-46s %-5s %-15s %8s %10s %10s\n", "DESTINATION", "TFO", "LAST",
             "FAILURES", "RTT", "SKIP LEFT");
    printf("%-46s %-5s %-15s %8u %8.1fms %10s\n", addr,
           v->skip ? "skip" : "try", ev, v->failures, v->rtt_us / 1000.0,
           until);
  }
  l->n++;
  return 0;
}

static int do_list(const struct ctl *c) {
  struct list l = {c, 0, tfo__now_ms()};
  const char *path;

  if (c->json)
    printf("[");
  if (tfo__cache_foreach(list_cb, &l) != 0) {
    if (c->json)
      printf("]\n");
    return tfoctl_fail("cache", "list: %s", strerror(errno));
  }
  path = tfo__cache_path();
  if (c->json) {
    printf("]\n");
  } else {
    if (l.n == 0)
      printf("no destination cached in this namespace\n");
    printf("(cache: %s)\n", path != NULL ? path : "none: memory only or off");
  }
  return EXIT_OK;
}

struct forget {
  const struct sockaddr *want;
  int n;
  int err;
};

static int same_addr(const struct sockaddr *a, const struct sockaddr *b) {
  if (a->sa_family != b->sa_family)
    return 0;
  if (a->sa_family == AF_INET)
    return memcmp(&((const struct sockaddr_in *)a)->sin_addr,
                  &((const struct sockaddr_in *)b)->sin_addr, 4) == 0;
  return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
}

static int forget_cb(const struct sockaddr *sa, socklen_t len,
                     const struct tfo__verdict *v, void *arg) {
  struct forget *f = arg;

  (void)v;
  if (!same_addr(sa, f->want))
    return 0;
  if (tfo__cache_forget(sa, len) != 0) {
    f->err = errno;
    return 1;
  }
  f->n++;
  return 0;
}

static int do_forget(const struct ctl *c, const char *arg) {
  struct sockaddr_storage ss;
  struct tfo__verdict v;
  struct forget f;
  socklen_t len;
  int port;

  if (tfoctl_parse_addr(arg, &ss, &len, &port) != 0)
    return tfoctl_usage_error("cache",
                              "forget: '%s' is not ADDR, ADDR:PORT "
                              "or [IPV6]:PORT",
                              arg);
  memset(&f, 0, sizeof(f));
  f.want = (const struct sockaddr *)&ss;
  if (port > 0) { /* one destination */
    if (tfo__cache_lookup((struct sockaddr *)&ss, len, &v) == 0) {
      if (tfo__cache_forget((struct sockaddr *)&ss, len) != 0)
        f.err = errno;
      else
        f.n = 1;
    }
  } else if (tfo__cache_foreach(forget_cb, &f) != 0 && f.err == 0) {
    f.err = errno;
  }
  if (f.err != 0)
    return tfoctl_fail("cache", "forget %s: %s", arg, strerror(f.err));
  if (f.n == 0)
    return tfoctl_fail("cache", "forget: nothing cached for %s", arg);
  if (c->json)
    printf("{\"forgotten\":%d}\n", f.n);
  else
    printf("forgot %d destination%s\n", f.n, f.n == 1 ? "" : "s");
  return EXIT_OK;
}

int cmd_cache(const struct ctl *c, int argc, char **argv) {
  if (tfoctl_wants_help(argc, argv)) {
    printf("usage: tfoctl [--json] [--cache FILE] cache [list]\n"
           "       tfoctl cache forget ADDR[:PORT]\n"
           "       tfoctl cache clear\n"
           "libtfo's negative cache: what each destination did with TFO, and "
           "which ones\nTFO is skipped for. forget ADDR drops every port of "
           "ADDR; clear drops\neverything (every namespace's entries). FILE: "
           "the cache file (default\n$LIBTFO_CACHE, else libtfo's: "
           "$XDG_RUNTIME_DIR/libtfo/cache, /run/libtfo/cache).\n");
    return EXIT_OK;
  }
  if (c->cache != NULL && tfo__cache_configure(c->cache) != 0)
    return tfoctl_usage_error("cache",
                              "--cache '%s': want an absolute file "
                              "name or \"off\"",
                              c->cache);
  if (argc == 0 || strcmp(argv[0], "list") == 0) {
    if (argc > 1)
      return tfoctl_usage_error("cache", "list: unexpected argument '%s'",
                                argv[1]);
    return do_list(c);
  }
  if (strcmp(argv[0], "forget") == 0) {
    if (argc != 2)
      return tfoctl_usage_error("cache", "forget needs one ADDR[:PORT]");
    return do_forget(c, argv[1]);
  }
  if (strcmp(argv[0], "clear") == 0) {
    if (argc != 1)
      return tfoctl_usage_error("cache", "clear: unexpected argument '%s'",
                                argv[1]);
    if (tfo__cache_clear() != 0)
      return tfoctl_fail("cache", "clear: %s", strerror(errno));
    if (c->json)
      printf("{\"cleared\":true}\n");
    else
      printf("cleared\n");
    return EXIT_OK;
  }
  return tfoctl_usage_error("cache",
                            "unknown subcommand '%s' (list, forget, "
                            "clear)",
                            argv[0]);
}
