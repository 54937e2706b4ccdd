/* uv-client: many concurrent requests on one libuv loop, each connection
 * opened by tfo_uv_connect with its request in the SYN when the path
 * allows it; prints the latencies and what TCP Fast Open did.
 *
 *   uv-client [-m tfo|plain] [-n TOTAL] [-c CONCURRENCY] [-s BYTES]
 *             [-F FALLBACK_MS] [-T TIMEOUT_MS] [-R] [-C] [-b BACKGROUND]
 *             [-v] HOST PORT
 *
 * A request is "GET /" padded to BYTES (default 6) and ended by "\n"; the
 * server answers "OK <bytes>\n" (uv-server, lab-server) and the answer is
 * checked. -m plain uses uv_tcp_connect then uv_write instead, for
 * comparison. -b N keeps N plain request loops running beside the others,
 * to show the loop serving other handles meanwhile. -R: no race, -C: no
 * negative cache (tfo_connect_opts flags).
 *
 * With -v, one line per request:
 *   req=3 status=ok outcome=data-acked ms=50.39 connect_ms=50.37 syn=6 \
 *   fallback_ms=151 resp="OK 6"
 * Always, a summary line at the end:
 *   requests=1000 ok=1000 failed=0 wall_ms=... rps=... p50_ms=... \
 *   p90_ms=... p99_ms=... max_ms=... max_gap_ms=... bg_ok=0 \
 *   data-acked=... cookie-requested=... data-not-acked=... fallback=... \
 *   skipped=... disabled=... plain=...
 * max_gap_ms is the longest the loop went without serving a 5 ms timer.
 * Exit status 0 when every request got its answer. LIBTFO_CACHE picks the
 * negative cache file ("off": none), as for every libtfo program.
 *
 * SPDX-License-Identifier: MIT */
#define _POSIX_C_SOURCE 200809L /* getaddrinfo under -std=c11 */

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <tfo_uv.h>

#define TICK_MS 5
#define N_OUTCOMES 7 /* 1..6 are enum tfo_outcome; 0 counts plain ones */

struct request {
  uv_tcp_t tcp;
  uv_connect_t conn;
  uv_write_t wr;
  long id;
  int background;
  uint64_t t0, t_conn;
  char resp[128];
  size_t rlen;
  int status;   /* 0 or UV_E* of the connect */
  int answered; /* got the whole expected answer */
  struct tfo_result result;
  int have_result;
};

static struct {
  uv_loop_t *loop;
  struct sockaddr_storage addr;
  int plain;
  struct tfo_connect_opts opts;
  uv_buf_t req;
  char expect[32];
  long total, started, done, ok, concurrency, background, bg_ok;
  int verbose;
  double *ms; /* per finished request */
  long outcomes[N_OUTCOMES];
  uv_timer_t tick;
  uint64_t last_tick, max_gap;
} g;

static double ms_between(uint64_t a, uint64_t b) {
  return (double)(b - a) / 1e6;
}

static void start_one(int background);

static void on_close(uv_handle_t *h) {
  struct request *r = h->data;
  int background = r->background;

  free(r);
  if (background) {
    if (g.done < g.total)
      start_one(1);
    return;
  }
  if (g.started < g.total)
    start_one(0);
  else if (g.done == g.total && !uv_is_closing((uv_handle_t *)&g.tick))
    uv_close((uv_handle_t *)&g.tick, NULL); /* the loop can end now */
}

/* One request is over: count it, print it, close it. */
static void end(struct request *r) {
  uint64_t now = uv_hrtime();
  const char *outcome = "none";
  int o;

  if (r->background) {
    g.bg_ok += r->answered;
    uv_close((uv_handle_t *)&r->tcp, on_close);
    return;
  }
  if (r->have_result) {
    o = r->result.outcome;
    outcome = tfo_outcome_str(r->result.outcome);
  } else {
    o = 0;
    if (g.plain)
      outcome = "plain";
  }
  if (r->status == 0 && (g.plain || r->have_result) && o >= 0 && o < N_OUTCOMES)
    g.outcomes[o]++;
  g.ms[g.done++] = ms_between(r->t0, now);
  g.ok += r->answered;
  if (g.verbose) {
    r->resp[strcspn(r->resp, "\r\n")] = '\0';
    printf("req=%ld status=%s outcome=%s ms=%.2f connect_ms=%.2f syn=%zu "
           "fallback_ms=%d resp=\"%s\"\n",
           r->id, r->status == 0 ? "ok" : uv_err_name(r->status), outcome,
           ms_between(r->t0, now),
           r->t_conn ? ms_between(r->t0, r->t_conn) : -1.0,
           r->have_result ? r->result.syn_bytes : 0,
           r->have_result ? r->result.fallback_ms : 0, r->resp);
  }
  uv_close((uv_handle_t *)&r->tcp, on_close);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  struct request *r = h->data;

  (void)hint;
  buf->base = r->resp + r->rlen;
  buf->len = sizeof(r->resp) - 1 - r->rlen;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  struct request *r = s->data;

  (void)buf;
  if (n > 0) {
    r->rlen += (size_t)n;
    r->resp[r->rlen] = '\0';
    if (memchr(r->resp, '\n', r->rlen) == NULL && r->rlen < sizeof(r->resp) - 1)
      return;
  } else if (n == 0) {
    return;
  }
  uv_read_stop(s);
  r->answered = strncmp(r->resp, g.expect, strlen(g.expect)) == 0;
  end(r);
}

static void on_connect(uv_connect_t *c, int status) {
  struct request *r = c->data;
  int err;

  r->t_conn = uv_hrtime();
  r->status = status;
  if (status < 0) {
    if (status != UV_ECANCELED)
      end(r);
    return;
  }
  if (!g.plain && !r->background)
    r->have_result = tfo_uv_result(&r->tcp, &r->result) == 0;
  if (g.plain || r->background) {
    /* Plain connect: the request goes now, one round trip later. */
    err = uv_write(&r->wr, (uv_stream_t *)&r->tcp, &g.req, 1, NULL);
    if (err < 0) {
      r->status = err;
      end(r);
      return;
    }
  }
  err = uv_read_start((uv_stream_t *)&r->tcp, on_alloc, on_read);
  if (err < 0) {
    r->status = err;
    end(r);
  }
}

static void start_one(int background) {
  struct request *r = calloc(1, sizeof(*r));
  int err;

  if (r == NULL) {
    fprintf(stderr, "uv-client: out of memory\n");
    exit(1);
  }
  r->background = background;
  if (!background)
    r->id = g.started++;
  r->t0 = uv_hrtime();
  uv_tcp_init(g.loop, &r->tcp);
  r->tcp.data = r;
  r->conn.data = r;
  if (g.plain || background)
    err = uv_tcp_connect(&r->conn, &r->tcp, (struct sockaddr *)&g.addr,
                         on_connect);
  else
    err = tfo_uv_connect_ex(&r->conn, &r->tcp, (struct sockaddr *)&g.addr,
                            &g.req, 1, &g.opts, on_connect);
  if (err < 0) {
    /* No callback will come: this request failed here. */
    r->status = err;
    end(r);
  }
}

static void on_tick(uv_timer_t *t) {
  uint64_t now = uv_hrtime();

  (void)t;
  if (g.last_tick != 0 && now - g.last_tick > g.max_gap)
    g.max_gap = now - g.last_tick;
  g.last_tick = now;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;

  return x < y ? -1 : x > y;
}

static double pct(double p) {
  long i;

  if (g.done == 0)
    return 0;
  i = (long)(p / 100.0 * (double)(g.done - 1) + 0.5);
  return g.ms[i];
}

static long number(const char *s, const char *what, long lo) {
  char *end;
  long v = strtol(s, &end, 10);

  if (*s == '\0' || *end != '\0' || v < lo) {
    fprintf(stderr, "uv-client: bad %s '%s'\n", what, s);
    exit(2);
  }
  return v;
}

static void usage(void) {
  fprintf(stderr, "usage: uv-client [-m tfo|plain] [-n TOTAL] [-c CONCURRENCY] "
                  "[-s BYTES]\n"
                  "                 [-F FALLBACK_MS] [-T TIMEOUT_MS] [-R] [-C] "
                  "[-b BACKGROUND] [-v]\n"
                  "                 HOST PORT\n");
  exit(2);
}

/* One file descriptor per connection, and a race may hold two. */
static void raise_fd_limit(void) {
  struct rlimit rl;

  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

int main(int argc, char **argv) {
  struct addrinfo hints, *ai;
  uint64_t t0, t1;
  long size = 6, i;
  char *buf;
  int c, err;

  g.total = 1;
  g.concurrency = 1;
  while ((c = getopt(argc, argv, "m:n:c:s:F:T:RCb:v")) != -1) {
    switch (c) {
      case 'm':
        if (strcmp(optarg, "plain") == 0)
          g.plain = 1;
        else if (strcmp(optarg, "tfo") != 0)
          usage();
        break;
      case 'n':
        g.total = number(optarg, "TOTAL", 1);
        break;
      case 'c':
        g.concurrency = number(optarg, "CONCURRENCY", 1);
        break;
      case 's':
        size = number(optarg, "BYTES", 6);
        break;
      case 'F':
        g.opts.fallback_ms = (int)number(optarg, "FALLBACK_MS", 0);
        break;
      case 'T':
        g.opts.timeout_ms = (int)number(optarg, "TIMEOUT_MS", 0);
        break;
      case 'R':
        g.opts.flags |= TFO_CONNECT_NO_RACE;
        break;
      case 'C':
        g.opts.flags |= TFO_CONNECT_NO_CACHE;
        break;
      case 'b':
        g.background = number(optarg, "BACKGROUND", 0);
        break;
      case 'v':
        g.verbose = 1;
        break;
      default:
        usage();
    }
  }
  if (argc - optind != 2)
    usage();

  memset(&hints, 0, sizeof(hints));
  hints.ai_socktype = SOCK_STREAM;
  err = getaddrinfo(argv[optind], argv[optind + 1], &hints, &ai);
  if (err != 0) {
    fprintf(stderr, "uv-client: %s: %s\n", argv[optind], gai_strerror(err));
    return 2;
  }
  memcpy(&g.addr, ai->ai_addr, ai->ai_addrlen);
  freeaddrinfo(ai);

  buf = malloc((size_t)size);
  g.ms = calloc((size_t)g.total, sizeof(*g.ms));
  if (buf == NULL || g.ms == NULL) {
    fprintf(stderr, "uv-client: out of memory\n");
    return 1;
  }
  memcpy(buf, "GET /", 5);
  memset(buf + 5, 'x', (size_t)size - 6);
  buf[size - 1] = '\n';
  g.req = uv_buf_init(buf, (unsigned)size);
  snprintf(g.expect, sizeof(g.expect), "OK %ld\n", size);
  raise_fd_limit();
  /* Set explicitly: libtfo builds that predate the variable ignore it. */
  if (getenv("LIBTFO_CACHE") != NULL &&
      tfo_cache_configure(getenv("LIBTFO_CACHE")) != 0) {
    perror("LIBTFO_CACHE");
    return 2;
  }

  g.loop = uv_default_loop();
  uv_timer_init(g.loop, &g.tick);
  uv_timer_start(&g.tick, on_tick, TICK_MS, TICK_MS);
  t0 = uv_hrtime();
  for (i = 0; i < g.background; i++)
    start_one(1);
  for (i = 0; i < g.concurrency && g.started < g.total; i++)
    start_one(0);
  uv_run(g.loop, UV_RUN_DEFAULT);
  t1 = uv_hrtime();

  qsort(g.ms, (size_t)g.done, sizeof(*g.ms), cmp_double);
  printf("requests=%ld ok=%ld failed=%ld wall_ms=%.1f rps=%.1f p50_ms=%.2f "
         "p90_ms=%.2f p99_ms=%.2f max_ms=%.2f max_gap_ms=%.1f bg_ok=%ld",
         g.done, g.ok, g.done - g.ok, ms_between(t0, t1),
         (double)g.done / (ms_between(t0, t1) / 1e3), pct(50), pct(90), pct(99),
         g.done ? g.ms[g.done - 1] : 0.0, (double)g.max_gap / 1e6, g.bg_ok);
  for (c = 1; c < N_OUTCOMES; c++)
    printf(" %s=%ld", tfo_outcome_str((enum tfo_outcome)c), g.outcomes[c]);
  printf(" plain=%ld\n", g.outcomes[0]);

  uv_loop_close(g.loop);
  free(buf);
  free(g.ms);
  return g.ok == g.total ? 0 : 1;
}
