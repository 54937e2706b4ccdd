/* tfo_uv_listen: a libuv listener that accepts TCP Fast Open.
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "tfo_uv.h"

static int listen_fastopen(uv_tcp_t *handle, uv_os_fd_t fd, int backlog,
                           int qlen, uv_connection_cb cb) {
  /* Before listen(): no SYN finds the listener without its queue. A kernel
   * without server TFO still gets a listener, as from tfo_listen: a server
   * must not fail to start over an optimisation (tfo_info tells). */
  if (setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN, &qlen, sizeof(qlen)) != 0 &&
      errno != ENOPROTOOPT && errno != EOPNOTSUPP)
    return uv_translate_sys_error(errno);
  return uv_listen((uv_stream_t *)handle, backlog, cb);
}

int tfo_uv_listen(uv_tcp_t *handle, int backlog, int qlen,
                  uv_connection_cb cb) {
  uv_os_fd_t fd;

  if (handle == NULL || handle->type != UV_TCP || qlen < 0 || cb == NULL)
    return UV_EINVAL;
  /* The socket must exist for the option: uv_tcp_bind makes it. */
  if (uv_fileno((const uv_handle_t *)handle, &fd) != 0)
    return UV_EINVAL;
  return listen_fastopen(handle, fd, backlog,
                         qlen > 0 ? qlen : TFO_LISTEN_QLEN_DEFAULT, cb);
}
