/* libtfo-uv: TCP Fast Open for libuv programs (tfo_uv_connect.3,
 * tfo_uv_listen.3, tfo_uv_cookie_prefetch.3).
 * Additive-only, like tfo.h.
 *
 * "Write before connect": the caller hands its first bytes over together
 * with the connect, and they ride in the SYN when the path allows it. The
 * connection runs libtfo's own state machine (tfo_conn_start.3) on the
 * loop, so the fallback race and the negative cache behave exactly as in
 * tfo_connect_send.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef TFO_UV_H
#define TFO_UV_H

#include <uv.h>

#include "tfo.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The version of libtfo-uv actually loaded (same scheme as tfo_version()). */
TFO_EXTERN unsigned int tfo_uv_version(void);

/* Connects handle (uv_tcp_init'ed, with no socket yet) to addr (IPv4 or
 * IPv6) and hands the nbufs buffers to the kernel, in the SYN when
 * possible. cb fires once the connection is usable and every byte was
 * handed over, with 0 or a negative UV_E* error; closing handle before
 * then cancels the connect and cb fires with UV_ECANCELED before the
 * handle's close callback, as with uv_tcp_connect. When the call itself
 * fails (UV_EINVAL, UV_EALREADY, UV_ENOMEM, ...) cb never fires.
 *
 * The buffers must stay valid until cb; the bufs array itself is copied.
 * Until cb, uv_read_start and uv_write on handle fail (UV_ENOTCONN,
 * UV_EBADF): the first bytes go in bufs. Afterwards handle is an ordinary
 * connected uv_tcp_t. */
TFO_EXTERN int tfo_uv_connect(uv_connect_t *req, uv_tcp_t *handle,
                              const struct sockaddr *addr,
                              const uv_buf_t bufs[], unsigned int nbufs,
                              uv_connect_cb cb);

/* The same with options (NULL: defaults). TFO_CONNECT_NONBLOCK is implied;
 * timeout_ms bounds the connect and ends it with UV_ETIMEDOUT. */
TFO_EXTERN int tfo_uv_connect_ex(uv_connect_t *req, uv_tcp_t *handle,
                                 const struct sockaddr *addr,
                                 const uv_buf_t bufs[], unsigned int nbufs,
                                 const struct tfo_connect_opts *opts,
                                 uv_connect_cb cb);

/* What TCP Fast Open did for a handle that tfo_uv_connect connected (from
 * its callback on, while the socket is open): 0 and *result filled, or
 * UV_EBADF (no socket), UV_ENOENT (not connected by tfo_uv_connect, or
 * forgotten: the last 4096 such connects of the process are kept),
 * UV_EINVAL. */
TFO_EXTERN int tfo_uv_result(const uv_tcp_t *handle, struct tfo_result *result);

/* uv_listen on a bound handle (uv_tcp_bind) whose socket first gets
 * TCP_FASTOPEN: a queue of qlen pending Fast Open connections (0:
 * TFO_LISTEN_QLEN_DEFAULT; the kernel caps it at somaxconn). Accept with
 * uv_accept as usual; tfo_info answers for the listener and for accepted
 * sockets. A kernel without server TFO gets a plain listener, as with
 * tfo_listen. 0, or a negative UV_E* error and the handle does not
 * listen. */
TFO_EXTERN int tfo_uv_listen(uv_tcp_t *handle, int backlog, int qlen,
                             uv_connection_cb cb);

/* A cookie fetched ahead of the first request, as tfo_cookie_prefetch
 * does, without blocking the loop (tfo_uv_cookie_prefetch.3). */
typedef struct tfo_uv_prefetch_s tfo_uv_prefetch_t;
typedef void (*tfo_uv_prefetch_cb)(tfo_uv_prefetch_t *req, int status);

struct tfo_uv_prefetch_s {
  void *data;        /* the caller's; left alone */
  uv_loop_t *loop;   /* set by tfo_uv_cookie_prefetch */
  void *reserved[6]; /* libtfo-uv's while the prefetch runs */
};

/* Starts a prefetch of a cookie from addr (IPv4 or IPv6) on loop. cb fires
 * once, from the loop, never from inside the call: status 1 a cookie is
 * held (also when one was held already: nothing is sent), 0 the server
 * gave none, or a negative UV_E* error: UV_ECONNREFUSED, UV_ETIMEDOUT
 * (after timeout_ms, 0: 3000), UV_ENOPROTOOPT (the negative cache skips
 * TFO for addr), UV_EOPNOTSUPP (TFO off for clients). req must stay valid
 * until cb. Returns 0, or UV_EINVAL (NULL, a negative timeout, another
 * address family) or UV_ENOMEM, and then cb never fires. The loop keeps
 * running while a prefetch is under way. */
TFO_EXTERN int tfo_uv_cookie_prefetch(uv_loop_t *loop, tfo_uv_prefetch_t *req,
                                      const struct sockaddr *addr,
                                      int timeout_ms, tfo_uv_prefetch_cb cb);

#ifdef __cplusplus
}
#endif
#endif /* TFO_UV_H */
