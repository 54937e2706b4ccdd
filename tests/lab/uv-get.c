/* uv-get: a plain libuv program (no libtfo in it), for running under
 * libtfo_preload.so (test-shim-race.sh): N requests in turn, each on a new
 * connection, to a lab-server ("OK SIZE\n" per request).
 *
 *   uv-get HOST PORT SIZE [N]
 *
 * Prints one line a request, "resp=OK_SIZE ms=12.3" (ms from uv_tcp_connect
 * to the answer), or "error=NAME", and exits 0 when all were answered.
 * SPDX-License-Identifier: MIT */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

static uv_loop_t *loop;
static struct sockaddr_storage dst;
static size_t size;
static int left, failed;
static char *req;

struct conn {
  uv_tcp_t tcp;
  uv_connect_t connect;
  uv_write_t write;
  uint64_t t0;
  char buf[256];
  size_t have;
};

static void start(void);

static void closed(uv_handle_t *h) {
  free(h->data);
  if (--left > 0)
    start();
}

static void finish(struct conn *c, const char *err) {
  if (err != NULL) {
    printf("error=%s\n", err);
    failed = 1;
  } else {
    size_t i;

    c->buf[c->have - 1] = '\0';
    for (i = 0; c->buf[i]; i++)
      if (c->buf[i] == ' ')
        c->buf[i] = '_';
    printf("resp=%s ms=%.1f\n", c->buf, (uv_hrtime() - c->t0) / 1e6);
  }
  fflush(stdout);
  uv_close((uv_handle_t *)&c->tcp, closed);
}

static void alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  struct conn *c = h->data;

  (void)hint;
  *b = uv_buf_init(c->buf + c->have, (unsigned)(sizeof(c->buf) - 1 - c->have));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  struct conn *c = s->data;

  (void)b;
  if (n < 0) {
    uv_read_stop(s);
    finish(c, uv_err_name((int)n));
    return;
  }
  c->have += (size_t)n;
  if (c->have > 0 && c->buf[c->have - 1] == '\n') {
    uv_read_stop(s);
    finish(c, NULL);
  }
}

static void on_write(uv_write_t *w, int status) {
  if (status < 0)
    fprintf(stderr, "uv-get: write: %s\n", uv_err_name(status));
  (void)w;
}

static void on_connect(uv_connect_t *r, int status) {
  struct conn *c = r->handle->data;
  uv_buf_t b = uv_buf_init(req, (unsigned)size);

  if (status < 0) {
    finish(c, uv_err_name(status));
    return;
  }
  uv_write(&c->write, (uv_stream_t *)&c->tcp, &b, 1, on_write);
  uv_read_start((uv_stream_t *)&c->tcp, alloc, on_read);
}

static void start(void) {
  struct conn *c = calloc(1, sizeof(*c));

  if (c == NULL) {
    failed = 1;
    return;
  }
  uv_tcp_init(loop, &c->tcp);
  c->tcp.data = c;
  c->t0 = uv_hrtime();
  uv_tcp_connect(&c->connect, &c->tcp, (struct sockaddr *)&dst, on_connect);
}

int main(int argc, char **argv) {
  int port;

  if (argc < 4 || (port = atoi(argv[2])) <= 0 ||
      (size = (size_t)atol(argv[3])) < 1 || size > 100000 ||
      (uv_ip4_addr(argv[1], port, (struct sockaddr_in *)&dst) != 0 &&
       uv_ip6_addr(argv[1], port, (struct sockaddr_in6 *)&dst) != 0)) {
    fprintf(stderr, "usage: uv-get HOST PORT SIZE [N]\n");
    return 2;
  }
  left = argc > 4 ? atoi(argv[4]) : 1;
  if (left < 1)
    left = 1;
  req = malloc(size);
  if (req == NULL)
    return 2;
  memset(req, 'x', size - 1);
  req[size - 1] = '\n';
  loop = uv_default_loop();
  start();
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  free(req);
  return failed ? 1 : 0;
}
