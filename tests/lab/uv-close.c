/* uv-close: closes a tfo_uv_connect handle at a chosen moment and checks
 * that nothing is left behind (for test-uv-close.sh).
 *
 *   uv-close [-F FALLBACK_MS] [-C] -w WHEN HOST PORT
 *
 * WHEN: a number of ms after tfo_uv_connect (while it may still run),
 * "cb" (inside the connect callback) or "resp" (after the answer to the
 * request "GET /\n" was read). Prints one line:
 *   when=120 connect_cb=1 status=ECANCELED close_cb=1 after_close=0 \
 *   fds_held=2 fds_left=0 loop_close=0 outcome=none ms=120.3
 * fds_held: sockets the connect held when the close came (2 = a TFO SYN
 * and a raced plain one); fds_left: fds open after the loop ended minus
 * before the connect; loop_close: uv_loop_close's answer (UV_EBUSY when a
 * handle or request was left on the loop). Exit 0 when the connect
 * callback ran once, the close callback once, nothing ran after it, and no
 * fd, handle or request was left.
 *
 * SPDX-License-Identifier: MIT */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <tfo_uv.h>

static struct {
  uv_loop_t loop;
  uv_tcp_t tcp;
  uv_connect_t req;
  uv_timer_t timer;
  int when_ms; /* -1: cb, -2: resp */
  int base_fds, held;
  int connect_cb, status, close_cb, after_close;
  struct tfo_result result;
  int have_result;
  char resp[64];
  size_t rlen;
  uint64_t t0, t_close;
} g;

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  int n = 0;

  if (d == NULL)
    return -1;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.')
      n++;
  closedir(d);
  return n - 1;
}

static void on_close(uv_handle_t *h) {
  (void)h;
  g.close_cb++;
}

static void close_now(void) {
  if (uv_is_closing((uv_handle_t *)&g.tcp))
    return;
  g.held = count_fds() - g.base_fds;
  g.t_close = uv_hrtime();
  uv_close((uv_handle_t *)&g.tcp, on_close);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)h;
  (void)hint;
  buf->base = g.resp + g.rlen;
  buf->len = sizeof(g.resp) - 1 - g.rlen;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  (void)s;
  (void)buf;
  if (g.close_cb)
    g.after_close++;
  if (n > 0)
    g.rlen += (size_t)n;
  if (n < 0 || memchr(g.resp, '\n', g.rlen) != NULL)
    close_now();
}

static void on_connect(uv_connect_t *req, int status) {
  (void)req;
  if (g.close_cb)
    g.after_close++;
  g.connect_cb++;
  g.status = status;
  if (status == 0)
    g.have_result = tfo_uv_result(&g.tcp, &g.result) == 0;
  if (g.when_ms == -1 || (status < 0 && status != UV_ECANCELED))
    close_now();
  else if (g.when_ms == -2 && status == 0)
    uv_read_start((uv_stream_t *)&g.tcp, on_alloc, on_read);
}

static void on_timer(uv_timer_t *t) {
  (void)t;
  close_now();
}

static void usage(void) {
  fprintf(stderr,
          "usage: uv-close [-F FALLBACK_MS] [-C] -w MS|cb|resp HOST PORT\n");
  exit(2);
}

int main(int argc, char **argv) {
  struct tfo_connect_opts opts = {0};
  struct tfo_cache_entry ce;
  struct sockaddr_storage addr;
  uv_buf_t b = uv_buf_init((char *)"GET /\n", 6);
  const char *when = NULL;
  int c, lc, left;

  while ((c = getopt(argc, argv, "F:Cw:")) != -1) {
    switch (c) {
      case 'F':
        opts.fallback_ms = atoi(optarg);
        break;
      case 'C':
        opts.flags |= TFO_CONNECT_NO_CACHE;
        break;
      case 'w':
        when = optarg;
        break;
      default:
        usage();
    }
  }
  if (when == NULL || argc - optind != 2)
    usage();
  if (strcmp(when, "cb") == 0)
    g.when_ms = -1;
  else if (strcmp(when, "resp") == 0)
    g.when_ms = -2;
  else
    g.when_ms = atoi(when);
  if ((strchr(argv[optind], ':') != NULL
           ? uv_ip6_addr(argv[optind], atoi(argv[optind + 1]),
                         (struct sockaddr_in6 *)&addr)
           : uv_ip4_addr(argv[optind], atoi(argv[optind + 1]),
                         (struct sockaddr_in *)&addr)) != 0)
    usage();

  /* Set explicitly: libtfo builds that predate the variable ignore it. */
  if (getenv("LIBTFO_CACHE") != NULL &&
      tfo_cache_configure(getenv("LIBTFO_CACHE")) != 0) {
    perror("LIBTFO_CACHE");
    return 2;
  }
  if (uv_loop_init(&g.loop) != 0)
    return 99;
  uv_tcp_init(&g.loop, &g.tcp);
  if (g.when_ms >= 0) {
    uv_timer_init(&g.loop, &g.timer);
    uv_timer_start(&g.timer, on_timer, (uint64_t)g.when_ms, 0);
  }
  /* libtfo keeps its cache file open once used: not a leak, so open it
   * before counting. */
  tfo_cache_lookup((struct sockaddr *)&addr, sizeof(addr), &ce);
  g.base_fds = count_fds();
  g.t0 = uv_hrtime();
  c = tfo_uv_connect_ex(&g.req, &g.tcp, (struct sockaddr *)&addr, &b, 1, &opts,
                        on_connect);
  if (c != 0) {
    fprintf(stderr, "uv-close: tfo_uv_connect: %s\n", uv_strerror(c));
    return 99;
  }
  uv_run(&g.loop, UV_RUN_DEFAULT);
  if (g.when_ms >= 0)
    uv_close((uv_handle_t *)&g.timer, NULL);
  uv_run(&g.loop, UV_RUN_DEFAULT);
  left = count_fds() - g.base_fds;
  lc = uv_loop_close(&g.loop);

  printf("when=%s connect_cb=%d status=%s close_cb=%d after_close=%d "
         "fds_held=%d fds_left=%d loop_close=%s outcome=%s ms=%.1f\n",
         when, g.connect_cb, g.status == 0 ? "ok" : uv_err_name(g.status),
         g.close_cb, g.after_close, g.held, left,
         lc == 0 ? "0" : uv_err_name(lc),
         g.have_result ? tfo_outcome_str(g.result.outcome) : "none",
         g.t_close ? (double)(g.t_close - g.t0) / 1e6 : -1.0);
  return g.connect_cb == 1 && g.close_cb == 1 && g.after_close == 0 &&
                 left == 0 && lc == 0
             ? 0
             : 1;
}
