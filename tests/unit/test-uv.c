/* libtfo-uv on a real loop over loopback: tfo_uv_connect's callback
 * contract, closing the handle in every state, timeouts, many concurrent
 * connections, and tfo_uv_listen. Outcomes depend on this machine's
 * sysctls, so only their validity is checked here; the lab tests check
 * what TFO did.
 *
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "tfo_uv.h"

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  int n = 0;

  assert_non_null(d);
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.')
      n++;
  closedir(d);
  return n - 1; /* the DIR's own fd */
}

static struct sockaddr_in loopback(int port) {
  struct sockaddr_in a;

  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

static int local_port(int fd) {
  struct sockaddr_in a;
  socklen_t len = sizeof(a);

  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  return ntohs(a.sin_port);
}

/* Runs the loop dry, then checks that nothing of ours is left on it: no
 * handle, no request (uv_loop_close says UV_EBUSY for either). */
static void run_and_close(uv_loop_t *loop) {
  assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(loop), 0);
}

/* --- a line server on the loop: "<request>\n" -> "OK <bytes>\n" ---------- */

struct server {
  uv_tcp_t listener;
  int port;
  int accepted;
  int syn_data; /* accepted connections whose SYN carried data */
  int max;      /* close the listener after this many */
};

struct peer {
  uv_tcp_t tcp;
  uv_write_t wr;
  struct server *s;
  size_t len; /* bytes read */
  int answered;
  char resp[32];
};

static char scratch[65536]; /* every read lands here: only counts matter */

static void on_peer_close(uv_handle_t *h) {
  free(h->data);
}

static void on_peer_written(uv_write_t *wr, int status) {
  struct peer *p = wr->data;

  (void)status;
  uv_close((uv_handle_t *)&p->tcp, on_peer_close);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)h;
  (void)hint;
  buf->base = scratch;
  buf->len = sizeof(scratch);
}

static void on_peer_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
  struct peer *p = st->data;
  uv_buf_t out;

  if (n < 0) {
    if (!p->answered)
      uv_close((uv_handle_t *)&p->tcp, on_peer_close);
    return;
  }
  p->len += (size_t)n;
  if (p->answered || memchr(buf->base, '\n', (size_t)n) == NULL)
    return;
  p->answered = 1;
  uv_read_stop(st);
  snprintf(p->resp, sizeof(p->resp), "OK %zu\n", p->len);
  out = uv_buf_init(p->resp, (unsigned)strlen(p->resp));
  p->wr.data = p;
  assert_int_equal(uv_write(&p->wr, st, &out, 1, on_peer_written), 0);
}

static void on_connection(uv_stream_t *l, int status) {
  struct server *s = l->data;
  struct peer *p;
  uv_os_fd_t fd;
  struct tcp_info ti;
  struct tfo_info info;
  socklen_t len = sizeof(ti);

  assert_int_equal(status, 0);
  p = calloc(1, sizeof(*p));
  assert_non_null(p);
  p->s = s;
  assert_int_equal(uv_tcp_init(l->loop, &p->tcp), 0);
  p->tcp.data = p;
  assert_int_equal(uv_accept(l, (uv_stream_t *)&p->tcp), 0);
  assert_int_equal(uv_fileno((uv_handle_t *)&p->tcp, &fd), 0);
  assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
  if (ti.tcpi_options & 32 /* TCPI_OPT_SYN_DATA */)
    s->syn_data++;
  /* An accepted socket is an ordinary one: tfo_info answers for it. */
  assert_int_equal(tfo_info(fd, &info), 0);
  assert_int_equal(info.listener, 0);
  assert_int_equal(info.syn_data, (ti.tcpi_options & 32) != 0);
  assert_int_equal(
      uv_read_start((uv_stream_t *)&p->tcp, on_alloc, on_peer_read), 0);
  if (++s->accepted == s->max)
    uv_close((uv_handle_t *)&s->listener, NULL);
}

static void server_start(uv_loop_t *loop, struct server *s, int max) {
  struct sockaddr_in a = loopback(0);
  struct tfo_info info;
  uv_os_fd_t fd;
  int qlen = 0;
  socklen_t len = sizeof(qlen);

  memset(s, 0, sizeof(*s));
  s->max = max;
  assert_int_equal(uv_tcp_init(loop, &s->listener), 0);
  s->listener.data = s;
  assert_int_equal(uv_tcp_bind(&s->listener, (const struct sockaddr *)&a, 0),
                   0);
  assert_int_equal(tfo_uv_listen(&s->listener, 1024, 64, on_connection), 0);
  assert_int_equal(uv_fileno((uv_handle_t *)&s->listener, &fd), 0);
  assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN, &qlen, &len), 0);
  assert_int_equal(qlen, 64);
  assert_int_equal(tfo_info(fd, &info), 0);
  assert_int_equal(info.listener, 1);
  assert_int_equal(info.qlen, 64);
  s->port = local_port(fd);
}

/* --- a client ------------------------------------------------------------ */

struct client {
  uv_tcp_t tcp;
  uv_connect_t req;
  uv_write_t wr;
  uv_timer_t timer;
  char more[16];
  char resp[64];
  size_t rlen;
  int connect_calls;
  int status;
  int closed;       /* the handle's close callback ran */
  int after_close;  /* callbacks after it (must stay 0) */
  int fds_at_close; /* open fds when the timer closed the handle */
  struct tfo_result result;
  int result_err;
  enum tfo_outcome info_outcome;
  uint64_t t0, t_cb;
};

static void on_client_close(uv_handle_t *h) {
  struct client *c = h->data;

  c->closed++;
}

static void on_connect_count(uv_connect_t *req, int status) {
  struct client *c = req->data;

  if (c->closed)
    c->after_close++;
  c->connect_calls++;
  c->status = status;
  c->t_cb = uv_hrtime();
  assert_ptr_equal(req->handle, (uv_stream_t *)&c->tcp);
}

static void on_resp_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
  struct client *c = st->data;

  if (n > 0) {
    memcpy(c->resp + c->rlen, buf->base, (size_t)n);
    c->rlen += (size_t)n;
  }
  if (n < 0 || memchr(c->resp, '\n', c->rlen) != NULL)
    uv_close((uv_handle_t *)&c->tcp, on_client_close);
}

static void on_resp_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  struct client *c = h->data;

  (void)hint;
  buf->base = c->resp + c->rlen;
  buf->len = sizeof(c->resp) - c->rlen - 1;
}

/* Connected: the rest of the request with a plain uv_write, then the
 * answer with uv_read_start: the handle is an ordinary uv_tcp_t now. */
static void on_connect_talk(uv_connect_t *req, int status) {
  struct client *c = req->data;
  struct tfo_info info;
  uv_os_fd_t fd;
  uv_buf_t b;

  on_connect_count(req, status);
  assert_int_equal(status, 0);
  c->result_err = tfo_uv_result(&c->tcp, &c->result);
  /* libtfo's own registry knows the socket too. */
  assert_int_equal(uv_fileno((uv_handle_t *)&c->tcp, &fd), 0);
  assert_int_equal(tfo_info(fd, &info), 0);
  c->info_outcome = info.outcome;
  b = uv_buf_init(c->more, (unsigned)strlen(c->more));
  assert_int_equal(uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, NULL), 0);
  assert_int_equal(
      uv_read_start((uv_stream_t *)&c->tcp, on_resp_alloc, on_resp_read), 0);
}

static void client_init(uv_loop_t *loop, struct client *c) {
  memset(c, 0, sizeof(*c));
  assert_int_equal(uv_tcp_init(loop, &c->tcp), 0);
  c->tcp.data = c;
  c->req.data = c;
  c->t0 = uv_hrtime();
}

static int valid_outcome(enum tfo_outcome o) {
  return strcmp(tfo_outcome_str(o), "unknown") != 0;
}

/* --- tests --------------------------------------------------------------- */

static void connect_sends_then_handle_is_ordinary(void **state) {
  uv_loop_t loop;
  struct server s;
  struct client c;
  struct sockaddr_in a;
  uv_buf_t bufs[2];
  int fds = count_fds();

  (void)state;
  assert_int_equal(uv_loop_init(&loop), 0);
  server_start(&loop, &s, 1);
  client_init(&loop, &c);
  a = loopback(s.port);
  /* Two buffers for the SYN, the end of the line by uv_write later. */
  bufs[0] = uv_buf_init((char *)"hello", 5);
  bufs[1] = uv_buf_init((char *)", wor", 5);
  strcpy(c.more, "ld\n");
  assert_int_equal(tfo_uv_connect(&c.req, &c.tcp, (struct sockaddr *)&a, bufs,
                                  2, on_connect_talk),
                   0);
  assert_int_equal(c.connect_calls, 0); /* never from inside the call */
  assert_int_equal(tfo_uv_connect(&c.req, &c.tcp, (struct sockaddr *)&a, bufs,
                                  2, on_connect_talk),
                   UV_EALREADY);
  /* Until the callback the handle has no socket: the first bytes go in
   * bufs, nothing else is accepted. */
  assert_int_equal(
      uv_read_start((uv_stream_t *)&c.tcp, on_resp_alloc, on_resp_read),
      UV_ENOTCONN);
  assert_int_equal(uv_write(&c.wr, (uv_stream_t *)&c.tcp, bufs, 1, NULL),
                   UV_EBADF);
  assert_int_equal(uv_try_write((uv_stream_t *)&c.tcp, bufs, 1), UV_EAGAIN);
  run_and_close(&loop);

  assert_int_equal(c.connect_calls, 1);
  assert_int_equal(c.status, 0);
  assert_int_equal(c.closed, 1);
  assert_string_equal(c.resp, "OK 13\n"); /* bufs, then the uv_write */
  assert_int_equal(c.result_err, 0);
  assert_true(valid_outcome(c.result.outcome));
  assert_int_equal(c.info_outcome, c.result.outcome);
  assert_int_equal(c.result.bytes_sent, 10);
  assert_true(c.result.syn_bytes <= 10);
  assert_int_equal(s.accepted, 1);
  assert_int_equal(count_fds(), fds);
}

static void refused_reports_through_the_callback(void **state) {
  uv_loop_t loop;
  struct client c;
  struct sockaddr_in a = loopback(0);
  uv_buf_t b = uv_buf_init((char *)"x\n", 2);
  int fd, fds = count_fds();

  (void)state;
  /* A port that was free a moment ago, with nothing listening. */
  fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  a = loopback(local_port(fd));
  close(fd);

  assert_int_equal(uv_loop_init(&loop), 0);
  client_init(&loop, &c);
  assert_int_equal(tfo_uv_connect(&c.req, &c.tcp, (struct sockaddr *)&a, &b, 1,
                                  on_connect_count),
                   0);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(c.connect_calls, 1);
  assert_int_equal(c.status, UV_ECONNREFUSED);
  assert_int_equal(tfo_uv_result(&c.tcp, &c.result), UV_EBADF);
  uv_close((uv_handle_t *)&c.tcp, on_client_close);
  run_and_close(&loop);
  assert_int_equal(c.connect_calls, 1);
  assert_int_equal(c.closed, 1);
  assert_int_equal(count_fds(), fds);
}

/* A listener whose accept queue is full: it drops every SYN, so a connect
 * to it stays before the SYN-ACK for as long as we like. */
struct sink {
  int listener, filler;
  int port;
};

static void sink_open(struct sink *k) {
  struct sockaddr_in a = loopback(0);

  k->listener = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(k->listener >= 0);
  assert_int_equal(bind(k->listener, (struct sockaddr *)&a, sizeof(a)), 0);
  assert_int_equal(listen(k->listener, 0), 0);
  k->port = local_port(k->listener);
  a = loopback(k->port);
  k->filler = socket(AF_INET, SOCK_STREAM, 0);
  assert_int_equal(connect(k->filler, (struct sockaddr *)&a, sizeof(a)), 0);
}

static void sink_close(struct sink *k) {
  close(k->filler);
  close(k->listener);
}

static void on_close_timer(uv_timer_t *t) {
  struct client *c = t->data;

  c->fds_at_close = count_fds();
  uv_close((uv_handle_t *)&c->tcp, on_client_close);
  uv_close((uv_handle_t *)t, NULL);
}

static int client_bit_on(void) {
  FILE *f = fopen("/proc/sys/net/ipv4/tcp_fastopen", "r");
  int v = 0;

  if (f != NULL) {
    if (fscanf(f, "%d", &v) != 1)
      v = 0;
    fclose(f);
  }
  return v & 1;
}

/* Closes the handle close_ms into a connect that gets no SYN-ACK, with the
 * race at fallback_ms; checks libuv's cancel contract and that nothing of
 * ours is left. Returns the fds the connect held when the close came. */
static int close_pending(int fallback_ms, int close_ms) {
  struct tfo_connect_opts o = {0};
  uv_loop_t loop;
  struct sink k;
  struct client c;
  struct sockaddr_in a;
  uv_buf_t b = uv_buf_init((char *)"GET /\n", 6);
  int fds = count_fds(), base;

  sink_open(&k);
  assert_int_equal(uv_loop_init(&loop), 0);
  client_init(&loop, &c);
  a = loopback(k.port);
  base = count_fds();
  o.fallback_ms = fallback_ms;
  assert_int_equal(tfo_uv_connect_ex(&c.req, &c.tcp, (struct sockaddr *)&a, &b,
                                     1, &o, on_connect_count),
                   0);
  assert_int_equal(uv_timer_init(&loop, &c.timer), 0);
  c.timer.data = &c;
  assert_int_equal(uv_timer_start(&c.timer, on_close_timer, close_ms, 0), 0);
  run_and_close(&loop); /* ends: no timer or poll of ours kept it alive */

  /* libuv's contract for a connect cut short by uv_close: the callback
   * once, with UV_ECANCELED, before the close callback; nothing after. */
  assert_int_equal(c.connect_calls, 1);
  assert_int_equal(c.status, UV_ECANCELED);
  assert_int_equal(c.closed, 1);
  assert_int_equal(c.after_close, 0);
  sink_close(&k);
  assert_int_equal(count_fds(), fds);
  return c.fds_at_close - base;
}

static void close_before_synack(void **state) {
  (void)state;
  assert_true(close_pending(1000, 30) >= 1);
}

static void close_during_fallback(void **state) {
  int held;

  (void)state;
  held = close_pending(20, 120);
  /* With the client bit on, the TFO SYN and the raced plain one. */
  if (client_bit_on())
    assert_int_equal(held, 2);
}

static void timeout_fails_with_etimedout(void **state) {
  struct tfo_connect_opts o = {0};
  uv_loop_t loop;
  struct sink k;
  struct client c;
  struct sockaddr_in a;
  uv_buf_t b = uv_buf_init((char *)"GET /\n", 6);
  double ms;
  int fds = count_fds();

  (void)state;
  sink_open(&k);
  assert_int_equal(uv_loop_init(&loop), 0);
  client_init(&loop, &c);
  a = loopback(k.port);
  o.timeout_ms = 150;
  o.fallback_ms = 40;
  assert_int_equal(tfo_uv_connect_ex(&c.req, &c.tcp, (struct sockaddr *)&a, &b,
                                     1, &o, on_connect_count),
                   0);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ms = (double)(c.t_cb - c.t0) / 1e6;
  assert_int_equal(c.connect_calls, 1);
  assert_int_equal(c.status, UV_ETIMEDOUT);
  assert_true(ms >= 145 && ms < 400);
  uv_close((uv_handle_t *)&c.tcp, NULL);
  run_and_close(&loop);
  sink_close(&k);
  assert_int_equal(count_fds(), fds);
}

/* The request and the handle on the heap, freed the libuv way: the request
 * in the connect callback, the handle in the close callback. ASan/valgrind
 * see any touch after that. */
struct heap_client {
  int i;
};

static int heap_connects[4], heap_closes[4], heap_after[4];

static void on_heap_close(uv_handle_t *h) {
  struct heap_client *hc = h->data;

  heap_closes[hc->i]++;
  free(hc);
  free(h);
}

static void on_heap_connect(uv_connect_t *req, int status) {
  struct heap_client *hc = req->data;

  if (heap_closes[hc->i])
    heap_after[hc->i]++;
  heap_connects[hc->i]++;
  if (status == 0)
    uv_close((uv_handle_t *)req->handle, on_heap_close);
  free(req);
}

static void on_heap_timer(uv_timer_t *t) {
  uv_tcp_t *tcp = t->data;

  uv_close((uv_handle_t *)tcp, on_heap_close);
  uv_close((uv_handle_t *)t, NULL);
}

static void heap_objects_closed_in_every_state(void **state) {
  static const int close_ms[] = {-1, 0, 5, 60}; /* -1: after connect */
  struct tfo_connect_opts o = {0};
  uv_timer_t timers[4];
  uv_loop_t loop;
  struct server s;
  struct sink k;
  struct sockaddr_in a;
  uv_buf_t b = uv_buf_init((char *)"GET /\n", 6);
  int fds = count_fds(), i;

  (void)state;
  sink_open(&k);
  assert_int_equal(uv_loop_init(&loop), 0);
  server_start(&loop, &s, 1);
  o.fallback_ms = 20;
  for (i = 0; i < 4; i++) {
    uv_connect_t *req = malloc(sizeof(*req));
    uv_tcp_t *tcp = malloc(sizeof(*tcp));
    struct heap_client *hc = malloc(sizeof(*hc));

    assert_true(req && tcp && hc);
    hc->i = i;
    heap_connects[i] = heap_closes[i] = heap_after[i] = 0;
    assert_int_equal(uv_tcp_init(&loop, tcp), 0);
    tcp->data = hc;
    req->data = hc;
    a = loopback(close_ms[i] < 0 ? s.port : k.port);
    assert_int_equal(tfo_uv_connect_ex(req, tcp, (struct sockaddr *)&a, &b, 1,
                                       &o, on_heap_connect),
                     0);
    if (close_ms[i] == 0) {
      /* At once, before the loop ever ran. */
      uv_close((uv_handle_t *)tcp, on_heap_close);
    } else if (close_ms[i] > 0) {
      assert_int_equal(uv_timer_init(&loop, &timers[i]), 0);
      timers[i].data = tcp;
      uv_timer_start(&timers[i], on_heap_timer, (uint64_t)close_ms[i], 0);
    }
  }
  run_and_close(&loop);
  for (i = 0; i < 4; i++) {
    assert_int_equal(heap_connects[i], 1);
    assert_int_equal(heap_closes[i], 1);
    assert_int_equal(heap_after[i], 0);
  }
  sink_close(&k);
  assert_int_equal(count_fds(), fds);
}

#define MANY 300

static void many_concurrent_on_one_loop(void **state) {
  uv_loop_t loop;
  struct server s;
  struct client *c;
  struct sockaddr_in a;
  uv_buf_t b = uv_buf_init((char *)"GET /many", 9);
  int i, ok = 0, fds = count_fds();

  (void)state;
  c = calloc(MANY, sizeof(*c));
  assert_non_null(c);
  assert_int_equal(uv_loop_init(&loop), 0);
  server_start(&loop, &s, MANY);
  a = loopback(s.port);
  for (i = 0; i < MANY; i++) {
    client_init(&loop, &c[i]);
    strcpy(c[i].more, "\n");
    assert_int_equal(tfo_uv_connect(&c[i].req, &c[i].tcp, (struct sockaddr *)&a,
                                    &b, 1, on_connect_talk),
                     0);
  }
  run_and_close(&loop);
  for (i = 0; i < MANY; i++)
    if (c[i].connect_calls == 1 && c[i].status == 0 && c[i].closed == 1 &&
        strcmp(c[i].resp, "OK 10\n") == 0)
      ok++;
  assert_int_equal(ok, MANY);
  assert_int_equal(s.accepted, MANY);
  free(c);
  assert_int_equal(count_fds(), fds);
}

static void listen_default_qlen(void **state) {
  struct sockaddr_in a = loopback(0);
  struct tfo_info info;
  uv_loop_t loop;
  uv_tcp_t l;
  uv_os_fd_t fd;

  (void)state;
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(uv_tcp_init(&loop, &l), 0);
  assert_int_equal(uv_tcp_bind(&l, (const struct sockaddr *)&a, 0), 0);
  assert_int_equal(tfo_uv_listen(&l, 16, 0, on_connection), 0);
  assert_int_equal(uv_fileno((uv_handle_t *)&l, &fd), 0);
  assert_int_equal(tfo_info(fd, &info), 0);
  assert_int_equal(info.listener, 1);
  assert_int_equal(info.qlen, TFO_LISTEN_QLEN_DEFAULT);
  uv_close((uv_handle_t *)&l, NULL);
  run_and_close(&loop);
}

/* The machine finishes in the loop iteration in which the handle was
 * closed: the close wins, as with uv_tcp_connect, and the connected socket
 * is closed, not leaked. */
static void close_as_it_completes(void **state) {
  struct sockaddr_in a = loopback(0);
  uv_loop_t loop;
  struct client c;
  uv_buf_t b = uv_buf_init((char *)"GET /\n", 6);
  int l, fds = count_fds();

  (void)state;
  l = socket(AF_INET, SOCK_STREAM, 0);
  assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
  assert_int_equal(listen(l, 16), 0);
  a = loopback(local_port(l));
  assert_int_equal(uv_loop_init(&loop), 0);
  client_init(&loop, &c);
  assert_int_equal(tfo_uv_connect(&c.req, &c.tcp, (struct sockaddr *)&a, &b, 1,
                                  on_connect_count),
                   0);
  usleep(20000); /* the handshake is done; the loop has not seen it yet */
  uv_close((uv_handle_t *)&c.tcp, on_client_close);
  run_and_close(&loop);
  assert_int_equal(c.connect_calls, 1);
  assert_int_equal(c.status, UV_ECANCELED);
  assert_int_equal(c.closed, 1);
  assert_int_equal(c.after_close, 0);
  close(l);
  assert_int_equal(count_fds(), fds);
}

/* More than the socket buffers hold: the callback waits until the kernel
 * took every byte, and they all arrive, in order, before later writes. */
static void large_first_bytes(void **state) {
  enum { BIG = 8 << 20 };
  uv_loop_t loop;
  struct server s;
  struct client c;
  struct sockaddr_in a;
  uv_buf_t b[2];
  char *big, want[32];
  int fds = count_fds();

  (void)state;
  big = malloc(BIG);
  assert_non_null(big);
  memset(big, 'x', BIG);
  assert_int_equal(uv_loop_init(&loop), 0);
  server_start(&loop, &s, 1);
  client_init(&loop, &c);
  a = loopback(s.port);
  b[0] = uv_buf_init((char *)"PUT /", 5);
  b[1] = uv_buf_init(big, BIG);
  strcpy(c.more, "\n");
  assert_int_equal(tfo_uv_connect(&c.req, &c.tcp, (struct sockaddr *)&a, b, 2,
                                  on_connect_talk),
                   0);
  run_and_close(&loop);
  snprintf(want, sizeof(want), "OK %d\n", 5 + BIG + 1);
  assert_int_equal(c.status, 0);
  assert_string_equal(c.resp, want);
  assert_int_equal(c.result.bytes_sent, 5 + BIG);
  free(big);
  assert_int_equal(count_fds(), fds);
}

/* The usual shutdown, a uv_walk that closes every handle, while connects
 * run: it closes the library's handles too. Nothing may abort (a second
 * uv_close would), leak, or lose a close callback. */
static int walk_closes, walk_walked;

static void on_walk_closed(uv_handle_t *h) {
  (void)h;
  walk_closes++;
}

static void close_every_handle(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) {
    walk_walked++;
    uv_close(h, on_walk_closed);
  }
}

static void on_walk_timer(uv_timer_t *t) {
  uv_walk(t->loop, close_every_handle, NULL);
}

static void walk_closing_everything(void **state) {
  static const int close_ms[] = {10, 60}; /* before, during the race */
  struct tfo_connect_opts o = {0};
  uv_loop_t loop;
  uv_timer_t t;
  struct sink k;
  struct client c;
  struct sockaddr_in a;
  uv_buf_t b = uv_buf_init((char *)"GET /\n", 6);
  int fds = count_fds(), i;

  (void)state;
  for (i = 0; i < 2; i++) {
    sink_open(&k);
    assert_int_equal(uv_loop_init(&loop), 0);
    client_init(&loop, &c);
    a = loopback(k.port);
    o.fallback_ms = 30;
    walk_closes = walk_walked = 0;
    assert_int_equal(tfo_uv_connect_ex(&c.req, &c.tcp, (struct sockaddr *)&a,
                                       &b, 1, &o, on_connect_count),
                     0);
    assert_int_equal(uv_timer_init(&loop, &t), 0);
    assert_int_equal(uv_timer_start(&t, on_walk_timer, close_ms[i], 0), 0);
    run_and_close(&loop);
    assert_int_equal(c.connect_calls, 1);
    assert_int_equal(c.status, UV_ECANCELED);
    /* The tcp handle, the timer, and ours (a timer, one or two polls). */
    assert_true(walk_walked >= 4);
    assert_int_equal(walk_closes, walk_walked);
    sink_close(&k);
    assert_int_equal(count_fds(), fds);
  }
}

static void bad_input(void **state) {
  struct tfo_connect_opts o = {0};
  struct tfo_result r;
  uv_loop_t loop;
  uv_tcp_t tcp, bound;
  uv_connect_t req;
  struct sockaddr_in a = loopback(9);
  struct sockaddr_in6 a6;
  struct sockaddr sa_unix = {AF_UNIX, {0}};
  uv_buf_t b = uv_buf_init((char *)"x", 1);
  struct sockaddr *sa = (struct sockaddr *)&a;

  (void)state;
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(uv_tcp_init(&loop, &tcp), 0);
  assert_int_equal(tfo_uv_connect(NULL, &tcp, sa, &b, 1, NULL), UV_EINVAL);
  assert_int_equal(tfo_uv_connect(&req, NULL, sa, &b, 1, NULL), UV_EINVAL);
  assert_int_equal(tfo_uv_connect(&req, &tcp, NULL, &b, 1, NULL), UV_EINVAL);
  assert_int_equal(tfo_uv_connect(&req, &tcp, sa, NULL, 1, NULL), UV_EINVAL);
  assert_int_equal(tfo_uv_connect(&req, &tcp, &sa_unix, &b, 1, NULL),
                   UV_EINVAL);
  o.reserved_int[0] = 1;
  assert_int_equal(tfo_uv_connect_ex(&req, &tcp, sa, &b, 1, &o, NULL),
                   UV_EINVAL);
  o.reserved_int[0] = 0;
  o.flags = 0x80000000u;
  assert_int_equal(tfo_uv_connect_ex(&req, &tcp, sa, &b, 1, &o, NULL),
                   UV_EINVAL);
  assert_int_equal(tfo_uv_result(NULL, &r), UV_EINVAL);
  assert_int_equal(tfo_uv_result(&tcp, NULL), UV_EINVAL);
  assert_int_equal(tfo_uv_result(&tcp, &r), UV_EBADF);
  assert_int_equal(tfo_uv_listen(&tcp, 16, 16, NULL), UV_EINVAL);

  /* A handle that has a socket already is not ours to connect. */
  assert_int_equal(uv_tcp_init_ex(&loop, &bound, AF_INET), 0);
  assert_int_equal(tfo_uv_connect(&req, &bound, sa, &b, 1, NULL), UV_EINVAL);
  assert_int_equal(tfo_uv_listen(&tcp, 16, -1, (uv_connection_cb)1), UV_EINVAL);
  /* Not bound: no socket to set TCP_FASTOPEN on. */
  assert_int_equal(tfo_uv_listen(&tcp, 16, 16, (uv_connection_cb)1), UV_EINVAL);
  /* Nothing was left on the loop by any of it; a closing handle is
   * refused too. */
  memset(&a6, 0, sizeof(a6));
  a6.sin6_family = AF_INET6;
  uv_close((uv_handle_t *)&tcp, NULL);
  assert_int_equal(
      tfo_uv_connect(&req, &tcp, (struct sockaddr *)&a6, &b, 1, NULL),
      UV_EINVAL);
  uv_close((uv_handle_t *)&bound, NULL);
  run_and_close(&loop);
}

static void on_prefetch_never(tfo_uv_prefetch_t *req, int status) {
  (void)req;
  (void)status;
  fail_msg("the callback of a refused prefetch ran");
}

/* tfo_uv_cookie_prefetch refuses bad input in the call, and the callback
 * never runs; nothing is left on the loop. */
static void prefetch_bad_input(void **state) {
  uv_loop_t loop;
  tfo_uv_prefetch_t req;
  struct sockaddr_in sin;
  struct sockaddr_storage unx;

  (void)state;
  assert_int_equal(uv_loop_init(&loop), 0);
  memset(&req, 0, sizeof(req));
  uv_ip4_addr("127.0.0.1", 9, &sin);
  memset(&unx, 0, sizeof(unx));
  unx.ss_family = AF_UNIX;
  assert_int_equal(tfo_uv_cookie_prefetch(NULL, &req, (struct sockaddr *)&sin,
                                          0, on_prefetch_never),
                   UV_EINVAL);
  assert_int_equal(tfo_uv_cookie_prefetch(&loop, NULL, (struct sockaddr *)&sin,
                                          0, on_prefetch_never),
                   UV_EINVAL);
  assert_int_equal(tfo_uv_cookie_prefetch(&loop, &req, NULL, 0,
                                          on_prefetch_never),
                   UV_EINVAL);
  assert_int_equal(tfo_uv_cookie_prefetch(&loop, &req, (struct sockaddr *)&sin,
                                          0, NULL),
                   UV_EINVAL);
  assert_int_equal(tfo_uv_cookie_prefetch(&loop, &req, (struct sockaddr *)&sin,
                                          -1, on_prefetch_never),
                   UV_EINVAL);
  assert_int_equal(tfo_uv_cookie_prefetch(&loop, &req, (struct sockaddr *)&unx,
                                          0, on_prefetch_never),
                   UV_EINVAL);
  assert_int_equal(uv_run(&loop, UV_RUN_NOWAIT), 0);
  assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(bad_input),
      cmocka_unit_test(listen_default_qlen),
      cmocka_unit_test(connect_sends_then_handle_is_ordinary),
      cmocka_unit_test(refused_reports_through_the_callback),
      cmocka_unit_test(close_before_synack),
      cmocka_unit_test(close_during_fallback),
      cmocka_unit_test(timeout_fails_with_etimedout),
      cmocka_unit_test(heap_objects_closed_in_every_state),
      cmocka_unit_test(close_as_it_completes),
      cmocka_unit_test(walk_closing_everything),
      cmocka_unit_test(large_first_bytes),
      cmocka_unit_test(many_concurrent_on_one_loop),
      cmocka_unit_test(prefetch_bad_input),
  };

  /* Tests must not teach each other (or the user's cache) anything. */
  if (tfo_cache_configure("off") != 0)
    return 99;
  return cmocka_run_group_tests(tests, NULL, NULL);
}
