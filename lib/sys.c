/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include "sys.h"

struct tfo__sys tfo__sys = {
    .socket = socket,
    .connect = connect,
    .sendmsg = sendmsg,
    .close = close,
    .poll = poll,
    .getsockopt = getsockopt,
    .setsockopt = setsockopt,
    .fcntl = fcntl,
};

void tfo__signals_block(sigset_t *old) {
  sigset_t all;
  int saved = errno;

  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, old);
  errno = saved;
}

void tfo__signals_restore(const sigset_t *old) {
  int saved = errno;

  pthread_sigmask(SIG_SETMASK, old, NULL);
  errno = saved;
}
