/* uv-server: a libuv server that accepts TCP Fast Open (tfo_uv_listen).
 *
 *   uv-server [-6] [-a ADDR] -p PORT [-q TFO_QLEN] [-b BACKLOG]
 *             [-n MAXCONN] [-v]
 *
 * Every connection gets one answer, then is closed:
 *   "<request>\n"              ->  "OK <bytes>\n"
 *   "GET /... HTTP/1.x" + headers  ->  an HTTP/1.0 200 whose body is the
 *                                     same "OK <bytes>\n" (curl works)
 * where <bytes> counts what the client sent up to the answer, so the client
 * can check that every byte of a request that rode in the SYN arrived.
 * -q: TCP_FASTOPEN queue (default 4096), -b: listen backlog (default
 * 4096), -n: stop after MAXCONN connections, -v: one line per connection
 *   conn=1 peer=198.18.0.1:40000 bytes=17 syn_data=1
 * (syn_data: the kernel took data from the SYN). On SIGINT/SIGTERM, or
 * after MAXCONN, it closes everything and prints
 *   conns=1000 syn_data=998
 *
 * SPDX-License-Identifier: MIT */
#define _POSIX_C_SOURCE 200809L

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
/* Not <netinet/tcp.h>: only the kernel's header has the full tcp_info. */
#include <linux/tcp.h>

#include <tfo_uv.h>

#ifndef TCPI_OPT_SYN_DATA
#define TCPI_OPT_SYN_DATA 32
#endif

struct conn {
  uv_tcp_t tcp;
  uv_write_t wr;
  long id;
  size_t bytes;
  int http;      /* the request is HTTP: answer after the blank line */
  int crlf;      /* HTTP: how much of "\r\n\r\n" was just seen */
  char tail[10]; /* the last bytes of the first line: " HTTP/1.1\r"? */
  int syn_data;
  char resp[160];
};

static struct {
  uv_loop_t *loop;
  uv_tcp_t listener;
  uv_signal_t sigint, sigterm;
  long conns, syn_data, max, open;
  int verbose;
  int stopping;
  char rbuf[65536]; /* one read buffer: callbacks never overlap */
} g;

static void stop(void);

static void on_conn_close(uv_handle_t *h) {
  free(h->data);
  g.open--;
  if (g.stopping && g.open == 0)
    stop();
}

static void on_written(uv_write_t *wr, int status) {
  struct conn *c = wr->data;

  (void)status;
  if (!uv_is_closing((uv_handle_t *)&c->tcp)) /* a stop may have closed it */
    uv_close((uv_handle_t *)&c->tcp, on_conn_close);
}

static void answer(struct conn *c) {
  char body[48];
  uv_buf_t b;
  int n;

  uv_read_stop((uv_stream_t *)&c->tcp);
  snprintf(body, sizeof(body), "OK %zu\n", c->bytes);
  if (c->http)
    n = snprintf(c->resp, sizeof(c->resp),
                 "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n"
                 "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                 strlen(body), body);
  else
    n = snprintf(c->resp, sizeof(c->resp), "%s", body);
  if (g.verbose)
    printf("conn=%ld bytes=%zu syn_data=%d\n", c->id, c->bytes, c->syn_data);
  b = uv_buf_init(c->resp, (unsigned)n);
  c->wr.data = c;
  if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0)
    uv_close((uv_handle_t *)&c->tcp, on_conn_close);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)h;
  (void)hint;
  buf->base = g.rbuf;
  buf->len = sizeof(g.rbuf);
}

static int is_http(const struct conn *c) {
  return c->bytes > sizeof(c->tail) && memcmp(c->tail, " HTTP/1.", 8) == 0 &&
         c->tail[9] == '\r';
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  struct conn *c = s->data;
  static const char end[] = "\r\n\r\n";
  ssize_t i;

  if (n < 0) {
    /* The client half-closed: its request is all it sent. */
    if (n == UV_EOF && c->bytes > 0)
      answer(c);
    else
      uv_close((uv_handle_t *)&c->tcp, on_conn_close);
    return;
  }
  for (i = 0; i < n; i++) {
    char ch = buf->base[i];

    c->bytes++;
    if (c->http) {
      c->crlf = ch == end[c->crlf] ? c->crlf + 1 : (ch == '\r');
      if (c->crlf == 4) {
        answer(c);
        return;
      }
    } else if (ch == '\n') {
      if (!is_http(c)) {
        answer(c);
        return;
      }
      c->http = 1; /* the request line: headers follow */
      c->crlf = 2;
    } else {
      memmove(c->tail, c->tail + 1, sizeof(c->tail) - 1);
      c->tail[sizeof(c->tail) - 1] = ch;
    }
  }
}

static void on_connection(uv_stream_t *l, int status) {
  struct tcp_info ti;
  socklen_t len = sizeof(ti);
  struct conn *c;
  uv_os_fd_t fd;

  if (status < 0) {
    fprintf(stderr, "uv-server: accept: %s\n", uv_strerror(status));
    return;
  }
  c = calloc(1, sizeof(*c));
  if (c == NULL || uv_tcp_init(g.loop, &c->tcp) != 0) {
    fprintf(stderr, "uv-server: out of memory\n");
    exit(1);
  }
  c->tcp.data = c;
  g.open++;
  if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0) {
    uv_close((uv_handle_t *)&c->tcp, on_conn_close);
    return;
  }
  c->id = ++g.conns;
  memset(&ti, 0, sizeof(ti));
  if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0 &&
      getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
      (ti.tcpi_options & TCPI_OPT_SYN_DATA))
    c->syn_data = 1;
  g.syn_data += c->syn_data;
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  if (g.max > 0 && g.conns == g.max) {
    g.stopping = 1;
    uv_close((uv_handle_t *)&g.listener, NULL);
  }
}

/* Everything is answered or closing: let the loop end. */
static void stop(void) {
  if (!uv_is_closing((uv_handle_t *)&g.sigint)) {
    uv_close((uv_handle_t *)&g.sigint, NULL);
    uv_close((uv_handle_t *)&g.sigterm, NULL);
  }
}

static void on_close_walk(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h) && h->type == UV_TCP && h != (uv_handle_t *)&g.listener)
    uv_close(h, on_conn_close);
}

static void on_signal(uv_signal_t *s, int signum) {
  (void)s;
  (void)signum;
  g.stopping = 1;
  if (!uv_is_closing((uv_handle_t *)&g.listener))
    uv_close((uv_handle_t *)&g.listener, NULL);
  uv_walk(g.loop, on_close_walk, NULL);
  if (g.open == 0)
    stop();
}

static void usage(void) {
  fprintf(stderr, "usage: uv-server [-6] [-a ADDR] -p PORT [-q TFO_QLEN] "
                  "[-b BACKLOG] [-n MAXCONN] [-v]\n");
  exit(2);
}

static long number(const char *s, long lo, long hi) {
  char *end;
  long v = strtol(s, &end, 10);

  if (*s == '\0' || *end != '\0' || v < lo || v > hi)
    usage();
  return v;
}

int main(int argc, char **argv) {
  struct sockaddr_storage addr;
  const char *host = NULL;
  struct rlimit rl;
  long port = -1, qlen = 4096, backlog = 4096;
  int c, v6 = 0, err;

  while ((c = getopt(argc, argv, "6a:p:q:b:n:v")) != -1) {
    switch (c) {
      case '6':
        v6 = 1;
        break;
      case 'a':
        host = optarg;
        break;
      case 'p':
        port = number(optarg, 0, 65535);
        break;
      case 'q':
        qlen = number(optarg, 1, 1 << 30);
        break;
      case 'b':
        backlog = number(optarg, 1, 1 << 30);
        break;
      case 'n':
        g.max = number(optarg, 0, 1L << 40);
        break;
      case 'v':
        g.verbose = 1;
        break;
      default:
        usage();
    }
  }
  if (port < 0 || optind != argc)
    usage();
  if (host == NULL)
    host = v6 ? "::" : "0.0.0.0";
  if (strchr(host, ':') != NULL)
    err = uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)&addr);
  else
    err = uv_ip4_addr(host, (int)port, (struct sockaddr_in *)&addr);
  if (err != 0) {
    fprintf(stderr, "uv-server: bad address %s\n", host);
    return 2;
  }
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  setvbuf(stdout, NULL, _IOLBF, 0);

  g.loop = uv_default_loop();
  uv_tcp_init(g.loop, &g.listener);
  err = uv_tcp_bind(&g.listener, (struct sockaddr *)&addr, 0);
  if (err == 0)
    err = tfo_uv_listen(&g.listener, (int)backlog, (int)qlen, on_connection);
  if (err != 0) {
    fprintf(stderr, "uv-server: listen on %s port %ld: %s\n", host, port,
            uv_strerror(err));
    return 1;
  }
  uv_signal_init(g.loop, &g.sigint);
  uv_signal_start(&g.sigint, on_signal, SIGINT);
  uv_signal_init(g.loop, &g.sigterm);
  uv_signal_start(&g.sigterm, on_signal, SIGTERM);
  uv_run(g.loop, UV_RUN_DEFAULT);
  printf("conns=%ld syn_data=%ld\n", g.conns, g.syn_data);
  uv_loop_close(g.loop);
  return 0;
}
