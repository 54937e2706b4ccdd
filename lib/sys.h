/* The system calls the library makes on sockets, through one table.
 *
 * In libtfo.so the table holds libc's functions. Inside libtfo_preload.so
 * the same library code would otherwise call the shim's own connect(),
 * sendmsg() or close() and recurse, so the shim points the table at the
 * real libc symbols before it calls into the library.
 *
 * SPDX-License-Identifier: MIT */
#ifndef TFO_SYS_H
#define TFO_SYS_H

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/types.h>

struct tfo__sys {
  int (*socket)(int domain, int type, int protocol);
  int (*connect)(int fd, const struct sockaddr *addr, socklen_t len);
  ssize_t (*sendmsg)(int fd, const struct msghdr *msg, int flags);
  int (*close)(int fd);
  int (*poll)(struct pollfd *fds, nfds_t nfds, int timeout);
  int (*getsockopt)(int fd, int level, int name, void *val, socklen_t *len);
  int (*setsockopt)(int fd, int level, int name, const void *val,
                    socklen_t len);
  int (*fcntl)(int fd, int cmd, ...);
};

extern struct tfo__sys tfo__sys;

/* Blocks every signal on this thread (the previous mask into *old), for a
 * short section under a lock that a signal handler on the same thread
 * might want: the shim runs inside write(2), which handlers may call. */
void tfo__signals_block(sigset_t *old);
void tfo__signals_restore(const sigset_t *old);

#endif
