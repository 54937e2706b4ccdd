/* tfo_uv_connect: libtfo's connect state machine (tfo_conn_*) driven by a
 * libuv loop, with a uv_poll_t on each socket it asks to watch and a
 * uv_timer_t for its race and deadline. The fallback and the negative cache
 * are the state machine's; nothing here decides anything about TFO.
 *
 * While the machine runs, handle->connect_req points to a request of ours,
 * exactly where uv_tcp_connect leaves its own: libuv then refuses a second
 * connect on the handle (UV_EALREADY), and uv_close(handle) cancels the
 * request through its callback, which is how a close reaches us. When the
 * machine is done, our watchers are stopped (libuv allows one watcher per
 * fd) and the winning socket goes into the handle with uv_tcp_open.
 *
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "tfo_uv.h"

/* libuv hands uv_buf_t arrays to writev itself: on Unix they are iovecs. */
_Static_assert(sizeof(uv_buf_t) == sizeof(struct iovec) &&
                   offsetof(uv_buf_t, base) ==
                       offsetof(struct iovec, iov_base) &&
                   offsetof(uv_buf_t, len) == offsetof(struct iovec, iov_len),
               "uv_buf_t is not a struct iovec");

#define container_of(ptr, type, member)                                        \
  ((type *)((char *)(ptr)-offsetof(type, member)))

struct uconn;

/* One watched socket. Allocated on its own: a uv_poll_t that a step
 * dropped must stay valid until its close callback. */
struct watcher {
  uv_poll_t poll;
  struct uconn *c;
  int fd;
  uint64_t cookie;     /* the socket's identity: a closed socket's fd number
                        * can come back at once for the next socket */
  int events;          /* UV_READABLE / UV_WRITABLE asked for */
  uv_close_cb foreign; /* the close callback of whoever closed it first */
  struct watcher *next;
};

struct uconn {
  uv_connect_t creq; /* handle->connect_req while the machine runs */
  uv_loop_t *loop;
  uv_tcp_t *handle;  /* NULL once detached from it */
  uv_connect_t *req; /* the caller's */
  uv_connect_cb cb;
  tfo_conn *tc; /* NULL once finished or aborted */
  uv_timer_t timer;
  uv_close_cb timer_foreign;
  int timer_released;
  struct watcher *watchers; /* open (not closing) ones */
  unsigned refs;            /* the caller's callback still due + each open or
                             * closing handle of ours */
};

/* --- results, for tfo_uv_result ------------------------------------------ */

#define RESULTS 4096

/* Keyed by the socket cookie (SO_COOKIE), never the fd number, which the
 * next socket reuses. A ring: the oldest answers go first. */
static struct {
  uint64_t cookie;
  struct tfo_result r;
} results[RESULTS];
static uint64_t results_next; /* answers ever stored */
static pthread_mutex_t results_lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t socket_cookie(int fd) {
  uint64_t v = 0;
  socklen_t len = sizeof(v);

  if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &v, &len) != 0)
    return 0;
  return v;
}

static void remember(int fd, const struct tfo_result *r) {
  uint64_t cookie = socket_cookie(fd);

  if (cookie == 0)
    return;
  pthread_mutex_lock(&results_lock);
  results[results_next % RESULTS].cookie = cookie;
  results[results_next % RESULTS].r = *r;
  results_next++;
  pthread_mutex_unlock(&results_lock);
}

static int recall(int fd, struct tfo_result *r) {
  uint64_t cookie = socket_cookie(fd);
  uint64_t i, oldest;
  int err = UV_ENOENT;

  if (cookie == 0)
    return UV_ENOENT;
  pthread_mutex_lock(&results_lock);
  oldest = results_next > RESULTS ? results_next - RESULTS : 0;
  /* Newest first: callers usually ask right after the connect. */
  for (i = results_next; i > oldest; i--) {
    if (results[(i - 1) % RESULTS].cookie == cookie) {
      *r = results[(i - 1) % RESULTS].r;
      err = 0;
      break;
    }
  }
  pthread_mutex_unlock(&results_lock);
  return err;
}

int tfo_uv_result(const uv_tcp_t *handle, struct tfo_result *result) {
  uv_os_fd_t fd;
  int err;

  if (handle == NULL || result == NULL || handle->type != UV_TCP)
    return UV_EINVAL;
  err = uv_fileno((const uv_handle_t *)handle, &fd);
  if (err != 0)
    return err;
  return recall(fd, result);
}

/* --- driving the state machine ------------------------------------------- */

static void unref(struct uconn *c) {
  if (--c->refs == 0)
    free(c);
}

static void on_watcher_close(uv_handle_t *h) {
  struct watcher *w = h->data;
  struct uconn *c = w->c;

  if (w->foreign != NULL)
    w->foreign(h);
  free(w);
  unref(c);
}

static void on_timer_close(uv_handle_t *h) {
  struct uconn *c = h->data;

  if (c->timer_foreign != NULL)
    c->timer_foreign(h);
  unref(c);
}

struct finding {
  const uv_handle_t *h;
  int found;
};

static void on_walk(uv_handle_t *h, void *arg) {
  struct finding *f = arg;

  if (h == f->h)
    f->found = 1;
}

/* Closes a handle of ours. A uv_walk that closes every handle (a common
 * shutdown) may have closed it already, and a second uv_close would abort:
 * then take over its close callback while the close is pending, or clean
 * up at once when libuv is done with it (it left the loop's list). */
static void close_ours(uv_handle_t *h, uv_close_cb *foreign, uv_close_cb cb) {
  struct finding f = {h, 0};

  if (!uv_is_closing(h)) {
    uv_close(h, cb);
    return;
  }
  uv_walk(h->loop, on_walk, &f);
  if (f.found) {
    *foreign = h->close_cb;
    h->close_cb = cb;
  } else {
    cb(h);
  }
}

/* uv_close stops a uv_poll_t at once: libuv forgets the fd before this
 * returns, so the fd can be closed or given to the handle right after. */
static void watcher_close(struct watcher *w) {
  close_ours((uv_handle_t *)&w->poll, &w->foreign, on_watcher_close);
}

/* Lets go of every socket and the timer. Idempotent. */
static void release(struct uconn *c) {
  struct watcher *w;

  while ((w = c->watchers) != NULL) {
    c->watchers = w->next;
    watcher_close(w);
  }
  if (!c->timer_released) {
    c->timer_released = 1;
    close_ours((uv_handle_t *)&c->timer, &c->timer_foreign, on_timer_close);
  }
}

/* Takes our request off the handle, as libuv does when a connect ends. */
static void detach(struct uconn *c) {
  c->handle->connect_req = NULL;
  c->loop->active_reqs.count--; /* uv__req_unregister */
  c->handle = NULL;
}

static void deliver(struct uconn *c, int status) {
  uv_connect_t *req = c->req;
  uv_connect_cb cb = c->cb;

  unref(c);
  if (cb != NULL)
    cb(req, status);
}

/* The machine ended with fd (or -1 and status). */
static void finish(struct uconn *c, int fd, int status,
                   const struct tfo_result *r) {
  uv_tcp_t *handle = c->handle;

  if (uv_is_closing((uv_handle_t *)handle)) {
    /* uv_close came first, in this loop iteration: libuv cancels our
     * request when the close completes (on_cancel). */
    if (fd >= 0)
      close(fd);
    return;
  }
  detach(c);
  if (fd >= 0) {
    status = uv_tcp_open(handle, fd);
    if (status == 0)
      remember(fd, r);
    else
      close(fd);
  }
  deliver(c, status);
}

static void fail(struct uconn *c, int status) {
  release(c);
  tfo_conn_abort(c->tc);
  c->tc = NULL;
  finish(c, -1, status, NULL);
}

static void complete(struct uconn *c) {
  struct tfo_result r;
  int fd, status = 0;

  fd = tfo_conn_finish(c->tc, &r);
  if (fd < 0)
    status = uv_translate_sys_error(errno);
  c->tc = NULL;
  release(c);
  finish(c, fd, status, &r);
}

/* uv_close(handle) while we ran: called by libuv as the handle's close
 * completes, before its close callback; our request is already off it. */
static void on_cancel(uv_connect_t *creq, int status) {
  struct uconn *c = container_of(creq, struct uconn, creq);

  c->handle = NULL;
  if (c->tc != NULL) {
    release(c); /* before the sockets close: stop watching, then close */
    tfo_conn_abort(c->tc);
    c->tc = NULL;
  }
  deliver(c, status);
}

static int uv_events(short events) {
  int e = 0;

  if (events & POLLIN)
    e |= UV_READABLE;
  if (events & POLLOUT)
    e |= UV_WRITABLE;
  return e;
}

static void step(struct uconn *c);

static void on_poll(uv_poll_t *p, int status, int events) {
  struct watcher *w = p->data;

  /* Errors too (POLLERR arrives as UV_EBADF and stops the poll): the
   * machine reads the socket's error itself. */
  (void)status;
  (void)events;
  step(w->c);
}

static void on_timer(uv_timer_t *t) {
  step(t->data);
}

static int watcher_start(struct watcher *w, int events) {
  if (w->events == events && uv_is_active((uv_handle_t *)&w->poll))
    return 0;
  w->events = events;
  return uv_poll_start(&w->poll, events, on_poll);
}

static int watcher_new(struct uconn *c, int fd, uint64_t cookie, int events) {
  struct watcher *w;
  int err;

  w = calloc(1, sizeof(*w));
  if (w == NULL)
    return UV_ENOMEM;
  err = uv_poll_init_socket(c->loop, &w->poll, fd);
  if (err != 0) {
    free(w);
    return err;
  }
  w->poll.data = w;
  w->c = c;
  w->fd = fd;
  w->cookie = cookie;
  w->next = c->watchers;
  c->watchers = w;
  c->refs++;
  return watcher_start(w, events);
}

/* Makes the loop watch what the machine asked for. */
static int watch(struct uconn *c, const struct tfo_watch *tw) {
  struct watcher **pp, *w;
  uint64_t cookie[2];
  int kept[2] = {0, 0};
  int i, err;

  /* Someone else closed a handle of ours: we cannot go on. */
  if (uv_is_closing((uv_handle_t *)&c->timer))
    return UV_ECANCELED;
  for (w = c->watchers; w != NULL; w = w->next)
    if (uv_is_closing((uv_handle_t *)&w->poll))
      return UV_ECANCELED;

  for (i = 0; i < 2; i++)
    cookie[i] = tw->fd[i] >= 0 ? socket_cookie(tw->fd[i]) : 0;

  /* Old watchers go first: libuv allows one per fd, and a new socket may
   * have the number of one the step just closed. */
  pp = &c->watchers;
  while ((w = *pp) != NULL) {
    for (i = 0; i < 2; i++)
      if (!kept[i] && tw->fd[i] == w->fd && cookie[i] == w->cookie)
        break;
    if (i == 2) {
      *pp = w->next;
      watcher_close(w);
      continue;
    }
    kept[i] = 1;
    err = watcher_start(w, uv_events(tw->events[i]));
    if (err != 0)
      return err;
    pp = &w->next;
  }
  for (i = 0; i < 2; i++) {
    if (tw->fd[i] < 0 || kept[i])
      continue;
    err = watcher_new(c, tw->fd[i], cookie[i], uv_events(tw->events[i]));
    if (err != 0)
      return err;
  }

  if (tw->timeout_ms >= 0 || c->watchers == NULL) {
    /* Nothing to watch means decided already: step again from the loop,
     * never from inside tfo_uv_connect. */
    uv_update_time(c->loop);
    uv_timer_start(&c->timer, on_timer,
                   tw->timeout_ms > 0 ? (uint64_t)tw->timeout_ms : 0, 0);
  } else {
    uv_timer_stop(&c->timer);
  }
  return 0;
}

static void step(struct uconn *c) {
  struct tfo_watch tw;
  int err;

  if (tfo_conn_step(c->tc, &tw) == 0) {
    complete(c);
    return;
  }
  err = watch(c, &tw);
  if (err != 0)
    fail(c, err);
}

static int connect_start(uv_connect_t *req, uv_tcp_t *handle,
                         const struct sockaddr *addr, socklen_t addrlen,
                         const uv_buf_t bufs[], unsigned int nbufs,
                         const struct tfo_connect_opts *opts,
                         uv_connect_cb cb) {
  struct tfo_watch tw;
  struct uconn *c;
  int err;

  c = calloc(1, sizeof(*c));
  if (c == NULL)
    return UV_ENOMEM;
  c->tc = tfo_conn_start(addr, addrlen, (const struct iovec *)bufs, (int)nbufs,
                         opts, &tw);
  if (c->tc == NULL) {
    err = uv_translate_sys_error(errno);
    free(c);
    return err;
  }
  c->loop = handle->loop;
  c->handle = handle;
  c->req = req;
  c->cb = cb;
  c->refs = 2; /* the callback, the timer */
  uv_timer_init(c->loop, &c->timer);
  c->timer.data = c;

  /* What uv_tcp_connect sets up, with our request on the handle. */
  req->type = UV_CONNECT;
  req->handle = (uv_stream_t *)handle;
  req->cb = cb;
  c->creq.type = UV_CONNECT;
  c->creq.handle = (uv_stream_t *)handle;
  c->creq.cb = on_cancel;
  handle->connect_req = &c->creq;
  c->loop->active_reqs.count++; /* uv__req_register */

  err = watch(c, &tw);
  if (err != 0) {
    release(c);
    tfo_conn_abort(c->tc);
    c->tc = NULL;
    detach(c);
    unref(c); /* no callback: the call fails */
    return err;
  }
  return 0;
}

int tfo_uv_connect_ex(uv_connect_t *req, uv_tcp_t *handle,
                      const struct sockaddr *addr, const uv_buf_t bufs[],
                      unsigned int nbufs, const struct tfo_connect_opts *opts,
                      uv_connect_cb cb) {
  struct tfo_connect_opts o;
  socklen_t addrlen;
  uv_os_fd_t fd;

  if (req == NULL || handle == NULL || addr == NULL ||
      (bufs == NULL && nbufs > 0) || nbufs > INT_MAX)
    return UV_EINVAL;
  if (handle->type != UV_TCP || uv_is_closing((const uv_handle_t *)handle))
    return UV_EINVAL;
  if (handle->connect_req != NULL)
    return UV_EALREADY;
  /* Bound, opened or connected already: the socket is not ours to swap. */
  if (uv_fileno((const uv_handle_t *)handle, &fd) == 0)
    return UV_EINVAL;
  switch (addr->sa_family) {
    case AF_INET:
      addrlen = sizeof(struct sockaddr_in);
      break;
    case AF_INET6:
      addrlen = sizeof(struct sockaddr_in6);
      break;
    default:
      return UV_EINVAL;
  }
  if (opts != NULL)
    o = *opts;
  else
    memset(&o, 0, sizeof(o));
  o.flags |= TFO_CONNECT_NONBLOCK; /* the loop's sockets never block */
  return connect_start(req, handle, addr, addrlen, bufs, nbufs, &o, cb);
}

int tfo_uv_connect(uv_connect_t *req, uv_tcp_t *handle,
                   const struct sockaddr *addr, const uv_buf_t bufs[],
                   unsigned int nbufs, uv_connect_cb cb) {
  return tfo_uv_connect_ex(req, handle, addr, bufs, nbufs, NULL, cb);
}
