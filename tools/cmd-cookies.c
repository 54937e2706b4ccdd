/* tfoctl cookies: the kernel's TFO cookie cache, which lives in its
 * per-destination TCP metrics (tcp_metrics over generic netlink), and
 * prefetch: cookies fetched ahead of the first request
 * (tfo_cookie_prefetch, a few destinations at a time on worker threads).
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "env.h"
#include "metrics.h"
#include "tfo.h"
#include "tfoctl.h"

#define PREFETCH_PORT "80"
#define PREFETCH_PARALLEL 8
#define PREFETCH_PARALLEL_MAX 64

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
    printf(",\"held\":%s,\"cookie\":", m->cookie_len > 0 ? "true" : "false");
    json_str(stdout, cookie);
    printf(",\"fo_mss\":%u,\"syn_drops\":%u,\"rtt_us\":%u,\"age_ms\":%" PRIu64
           "}",
           m->fo_mss, m->syn_drops, m->rtt_us, m->age_ms);
  } else {
    if (l->n == 0)
      printf("%-39s %-4s %-32s %6s %9s %10s\n", "DESTINATION", "HELD",
             "COOKIE", "FO_MSS", "SYN_DROPS", "AGE");
    printf("%-39s %-4s %-32s %6u %9u %9.1fs\n", addr,
           m->cookie_len ? "yes" : "no", m->cookie_len ? cookie : "-",
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

/* --- prefetch ----------------------------------------------------------- */

struct job {
  const char *arg; /* as given */
  struct sockaddr_storage addr[8]; /* what the name resolved to, in order */
  socklen_t len[8];
  int naddr;
  int used;        /* the address that answered (or the last tried) */
  int held_before; /* a cookie was held already: nothing sent */
  int rc;          /* tfo_cookie_prefetch's */
  int err;
  double ms;
};

struct pool {
  struct job *jobs;
  int n;
  int timeout_ms;
  atomic_int next;
};

static double now_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Errors after which the host's next address is worth a try. */
static int try_next(int err) {
  return err == ECONNREFUSED || err == ENETUNREACH || err == EHOSTUNREACH ||
         err == ETIMEDOUT || err == EADDRNOTAVAIL;
}

static void run_job(struct job *j, int timeout_ms) {
  struct tfo_cookie_info info;
  double t0 = now_ms();
  int i;

  for (i = 0; i < j->naddr; i++) {
    const struct sockaddr *sa = (const struct sockaddr *)&j->addr[i];

    j->used = i;
    j->held_before =
        tfo_cookie_lookup(sa, j->len[i], &info) == 0 && info.held;
    j->rc = tfo_cookie_prefetch(sa, j->len[i], timeout_ms);
    j->err = j->rc < 0 ? errno : 0;
    if (j->rc >= 0 || !try_next(j->err))
      break;
  }
  j->ms = now_ms() - t0;
}

static void *worker(void *arg) {
  struct pool *p = arg;
  int i;

  while ((i = atomic_fetch_add(&p->next, 1)) < p->n)
    run_job(&p->jobs[i], p->timeout_ms);
  return NULL;
}

/* Every argument resolved before anything is sent: a bad one is a usage
 * error and nothing was done. */
static int resolve(struct job *j) {
  struct addrinfo *ai = NULL, *a;
  const char *port = NULL;
  char host[256];
  long v;
  int rc;

  if (tfoctl_split_host(j->arg, host, sizeof(host), &port) != 0)
    return tfoctl_usage_error("cookies",
                              "prefetch: '%s': want HOST, HOST:PORT or "
                              "[IPV6]:PORT",
                              j->arg);
  if (port == NULL)
    port = PREFETCH_PORT;
  if (tfo__parse_long(port, 1, 65535, &v) != 0)
    return tfoctl_usage_error("cookies", "prefetch: '%s': port want 1..65535",
                              j->arg);
  rc = tfoctl_resolve(host, port, AF_UNSPEC, &ai);
  if (rc != 0)
    return tfoctl_usage_error("cookies", "prefetch: %s: %s", host,
                              gai_strerror(rc));
  for (a = ai; a != NULL && j->naddr < 8; a = a->ai_next) {
    if ((a->ai_family != AF_INET && a->ai_family != AF_INET6) ||
        a->ai_addrlen > sizeof(j->addr[0]))
      continue;
    memcpy(&j->addr[j->naddr], a->ai_addr, a->ai_addrlen);
    j->len[j->naddr++] = a->ai_addrlen;
  }
  freeaddrinfo(ai);
  if (j->naddr == 0)
    return tfoctl_usage_error("cookies", "prefetch: %s: no IPv4 or IPv6 "
                              "address", host);
  return EXIT_OK;
}

static const char *result_str(const struct job *j) {
  if (j->rc == 1)
    return j->held_before ? "held" : "cookie";
  if (j->rc == 0)
    return "no-cookie";
  if (j->err == ENOPROTOOPT)
    return "skipped";
  return "error";
}

static const char *result_text(const struct job *j) {
  switch (j->rc) {
    case 1:
      return j->held_before ? "a cookie was held already (nothing sent)"
                            : "cookie obtained";
    case 0:
      return "the server answered without a cookie (no TFO there)";
  }
  if (j->err == ENOPROTOOPT)
    return "skipped: libtfo's negative cache says the path drops TFO SYNs "
           "(tfoctl cache list)";
  if (j->err == EOPNOTSUPP)
    return "TFO is off for clients here (tfoctl enable client)";
  return strerror(j->err);
}

static void report(const struct ctl *c, const struct job *jobs, int n) {
  char addr[80];
  int i;

  if (c->json)
    printf("[");
  for (i = 0; i < n; i++) {
    const struct job *j = &jobs[i];

    tfoctl_addr_str((const struct sockaddr *)&j->addr[j->used], 1, addr,
                    sizeof(addr));
    if (c->json) {
      printf("%s{\"target\":", i ? "," : "");
      json_str(stdout, j->arg);
      printf(",\"address\":");
      json_str(stdout, addr);
      printf(",\"result\":\"%s\",\"held\":%s,\"held_before\":%s,"
             "\"ms\":%.1f",
             result_str(j), j->rc == 1 ? "true" : "false",
             j->held_before ? "true" : "false", j->ms);
      if (j->rc < 0) {
        printf(",\"error\":");
        json_str(stdout, strerror(j->err));
      }
      printf("}");
    } else {
      printf("%-28s %-30s %-9s %7.1f ms  %s\n", j->arg, addr, result_str(j),
             j->ms, result_text(j));
    }
  }
  if (c->json)
    printf("]\n");
}

static int do_prefetch(const struct ctl *c, int argc, char **argv) {
  pthread_t tid[PREFETCH_PARALLEL_MAX];
  struct pool p;
  struct job *jobs;
  long parallel = PREFETCH_PARALLEL, timeout = 3000;
  int i, n = 0, nthreads, started, rc = EXIT_OK;

  jobs = calloc((size_t)argc + 1, sizeof(*jobs));
  if (jobs == NULL)
    return tfoctl_fail("cookies", "prefetch: out of memory");
  for (i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
      if (tfo__parse_long(argv[++i], 100, 60000, &timeout) != 0) {
        rc = tfoctl_usage_error("cookies",
                                "prefetch: --timeout '%s': want ms in "
                                "100..60000",
                                argv[i]);
        goto out;
      }
    } else if (strcmp(argv[i], "--parallel") == 0 && i + 1 < argc) {
      if (tfo__parse_long(argv[++i], 1, PREFETCH_PARALLEL_MAX, &parallel) !=
          0) {
        rc = tfoctl_usage_error("cookies",
                                "prefetch: --parallel '%s': want 1..%d",
                                argv[i], PREFETCH_PARALLEL_MAX);
        goto out;
      }
    } else if (argv[i][0] == '-') {
      rc = tfoctl_usage_error("cookies", "prefetch: unknown option '%s'",
                              argv[i]);
      goto out;
    } else {
      jobs[n++].arg = argv[i];
    }
  }
  if (n == 0) {
    rc = tfoctl_usage_error("cookies", "prefetch: which HOST[:PORT]?");
    goto out;
  }
  for (i = 0; i < n; i++)
    if ((rc = resolve(&jobs[i])) != EXIT_OK)
      goto out;

  p.jobs = jobs;
  p.n = n;
  p.timeout_ms = (int)timeout;
  atomic_init(&p.next, 0);
  nthreads = n < parallel ? n : (int)parallel;
  for (started = 0; started < nthreads; started++)
    if (pthread_create(&tid[started], NULL, worker, &p) != 0)
      break;
  if (started == 0)
    worker(&p); /* no thread to be had: one at a time, here */
  for (i = 0; i < started; i++)
    pthread_join(tid[i], NULL);
  report(c, jobs, n);
  for (i = 0; i < n; i++)
    if (jobs[i].rc != 1)
      rc = EXIT_FAIL;
out:
  free(jobs);
  return rc;
}

int cmd_cookies(const struct ctl *c, int argc, char **argv) {
  if (tfoctl_wants_help(argc, argv)) {
    printf("usage: tfoctl [--json] cookies [list [--all]]\n"
           "       tfoctl cookies flush [ADDR]\n"
           "       tfoctl [--json] [--cache FILE] cookies prefetch "
           "HOST[:PORT]... [--timeout MS]\n"
           "                                             [--parallel N]\n"
           "list: the TFO cookies this namespace's kernel holds, per "
           "destination\n(--all: every destination it keeps metrics for).\n"
           "flush: forget the cookie (and the kernel's other metrics) of ADDR, "
           "or of\nevery destination: the next connection asks for a cookie "
           "again.\n"
           "prefetch: get a cookie from each HOST (PORT default " PREFETCH_PORT
           ") with a\nhandshake that sends no data, N (default %d) at a time, "
           "each within MS\n(default 3000); one already held is kept and "
           "nothing is sent. Exit 0 when\nevery HOST now holds a cookie, 1 "
           "otherwise.\n",
           PREFETCH_PARALLEL);
    return EXIT_OK;
  }
  if (argc == 0 || strcmp(argv[0], "list") == 0) {
    if (argc > 2 || (argc == 2 && strcmp(argv[1], "--all") != 0))
      return tfoctl_usage_error("cookies", "list: unexpected argument '%s'",
                                argv[argc - 1]);
    return do_list(c, argc == 2);
  }
  if (strcmp(argv[0], "prefetch") == 0) {
    if (c->cache != NULL && tfo__cache_configure(c->cache) != 0)
      return tfoctl_usage_error("cookies",
                                "--cache '%s': want an absolute file "
                                "name or \"off\"",
                                c->cache);
    return do_prefetch(c, argc - 1, argv + 1);
  }
  if (strcmp(argv[0], "flush") == 0) {
    if (argc > 2)
      return tfoctl_usage_error("cookies", "flush: unexpected argument '%s'",
                                argv[2]);
    return do_flush(c, argc == 2 ? argv[1] : NULL);
  }
  return tfoctl_usage_error("cookies", "unknown subcommand '%s' (list, flush, "
                            "prefetch)",
                            argv[0]);
}
