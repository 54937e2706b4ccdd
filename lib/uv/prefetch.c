/* tfo_uv_cookie_prefetch: tfo_cookie_prefetch for libuv loops. The
 * handshake is a tfo_uv_connect with no data on a handle of our own; what
 * it means (held, none, skipped) is lib/prefetch.h's, as for the blocking
 * call.
 *
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "prefetch.h"
#include "tfo_uv.h"

struct upf {
  tfo_uv_prefetch_t *req;
  tfo_uv_prefetch_cb cb;
  uv_tcp_t tcp;
  uv_connect_t creq;
  uv_close_cb foreign; /* the close callback of whoever closed tcp first */
  struct sockaddr_storage addr;
  socklen_t addrlen;
  int status;
};

static void on_close(uv_handle_t *h) {
  struct upf *u = h->data;
  tfo_uv_prefetch_t *req = u->req;
  tfo_uv_prefetch_cb cb = u->cb;
  int status = u->status;

  if (u->foreign != NULL)
    u->foreign(h);
  req->reserved[0] = NULL;
  free(u);
  cb(req, status);
}

/* Ends with status once the handle is closed: callbacks run from the loop
 * only, whichever way the prefetch ended. */
static void end(struct upf *u, int status) {
  uv_handle_t *h = (uv_handle_t *)&u->tcp;

  u->status = status;
  if (uv_is_closing(h)) {
    /* Someone closed our handle (a uv_walk at shutdown): tfo_uv_connect's
     * callback runs before the close callback, so take that one over. */
    u->foreign = h->close_cb;
    h->close_cb = on_close;
    return;
  }
  uv_close(h, on_close);
}

static int status_of(int rc) {
  return rc >= 0 ? rc : uv_translate_sys_error(errno);
}

static void on_connect(uv_connect_t *creq, int status) {
  struct upf *u = creq->data;
  struct tfo_result r;
  int err = 0, rc;

  memset(&r, 0, sizeof(r));
  /* libuv's errors are negated errnos on Unix. */
  if (status != 0)
    err = -status;
  else if (tfo_uv_result(&u->tcp, &r) != 0)
    r.outcome = TFO_OUTCOME_COOKIE_REQUESTED; /* the cache still answers */
  if (status == UV_ECANCELED) {
    end(u, status);
    return;
  }
  rc = tfo__prefetch_end((const struct sockaddr *)&u->addr, u->addrlen, err,
                         &r);
  end(u, status_of(rc));
}

int tfo_uv_cookie_prefetch(uv_loop_t *loop, tfo_uv_prefetch_t *req,
                           const struct sockaddr *addr, int timeout_ms,
                           tfo_uv_prefetch_cb cb) {
  struct tfo_connect_opts o;
  struct upf *u;
  socklen_t addrlen;
  int rc, err;

  if (loop == NULL || req == NULL || addr == NULL || cb == NULL ||
      timeout_ms < 0)
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
  u = calloc(1, sizeof(*u));
  if (u == NULL)
    return UV_ENOMEM;
  err = uv_tcp_init(loop, &u->tcp);
  if (err != 0) {
    free(u);
    return err;
  }
  u->tcp.data = u;
  u->creq.data = u;
  u->req = req;
  u->cb = cb;
  memcpy(&u->addr, addr, addrlen);
  u->addrlen = addrlen;
  req->loop = loop;
  req->reserved[0] = u;

  rc = tfo__prefetch_begin(addr, addrlen, timeout_ms, &o);
  if (rc != 0) {
    /* Held already, or skipped: answered from the loop all the same. */
    end(u, status_of(rc));
    return 0;
  }
  o.flags |= TFO_CONNECT_NONBLOCK;
  err = tfo_uv_connect_ex(&u->creq, &u->tcp, addr, NULL, 0, &o, on_connect);
  if (err != 0)
    end(u, err);
  return 0;
}
