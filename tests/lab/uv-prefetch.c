/* uv-prefetch: tfo_uv_cookie_prefetch on a libuv loop, for
 * tests/lab/test-cookies.sh. A timer ticks every 10 ms meanwhile and the
 * count shows the loop was never blocked.
 *
 *   uv-prefetch ADDR PORT [TIMEOUT_MS]
 *       status=1 ms=51.0 ticks=5 sync=0 data=ok
 *   (sync=1: the callback ran inside the call, which it must not)
 *
 * SPDX-License-Identifier: MIT */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tfo_uv.h>

static int status = 99, in_call, sync_cb, ticks;
static uint64_t t0;
static double ms;
static uv_timer_t tick;
static char data_tag[] = "ok";
static const char *data_seen = "?";

static void on_tick(uv_timer_t *t) {
  (void)t;
  ticks++;
}

static void on_prefetch(tfo_uv_prefetch_t *req, int st) {
  status = st;
  sync_cb = in_call;
  data_seen = req->data == data_tag ? "ok" : "lost";
  ms = (double)(uv_hrtime() - t0) / 1e6;
  uv_close((uv_handle_t *)&tick, NULL);
}

int main(int argc, char **argv) {
  struct sockaddr_storage ss;
  tfo_uv_prefetch_t req;
  uv_loop_t *loop = uv_default_loop();
  int rc;

  if (argc < 3) {
    fprintf(stderr, "usage: uv-prefetch ADDR PORT [TIMEOUT_MS]\n");
    return 2;
  }
  memset(&ss, 0, sizeof(ss));
  if (uv_ip4_addr(argv[1], atoi(argv[2]), (struct sockaddr_in *)&ss) != 0 &&
      uv_ip6_addr(argv[1], atoi(argv[2]), (struct sockaddr_in6 *)&ss) != 0) {
    fprintf(stderr, "uv-prefetch: bad address '%s'\n", argv[1]);
    return 2;
  }
  memset(&req, 0, sizeof(req));
  req.data = data_tag;
  uv_timer_init(loop, &tick);
  uv_timer_start(&tick, on_tick, 10, 10);
  t0 = uv_hrtime();
  in_call = 1;
  rc = tfo_uv_cookie_prefetch(loop, &req, (struct sockaddr *)&ss,
                              argc > 3 ? atoi(argv[3]) : 0, on_prefetch);
  in_call = 0;
  if (rc != 0) {
    printf("call=%s\n", uv_err_name(rc));
    return 1;
  }
  uv_run(loop, UV_RUN_DEFAULT);
  printf("status=%d name=%s ms=%.1f ticks=%d sync=%d data=%s\n", status,
         status < 0 ? uv_err_name(status) : "-", ms, ticks, sync_cb,
         data_seen);
  return uv_loop_close(loop) == 0 ? 0 : 1;
}
