/* Which signals the program catches, so that the shim knows when it may
 * be running inside a handler: starting the keeper thread there
 * (pthread_create allocates) would wait forever for a malloc lock that
 * the interrupted code holds. A handler runs with its own signal blocked
 * (unless installed with SA_NODEFER, which this cannot see), so a thread
 * with a caught signal blocked may be in one (tfo__maybe_in_handler); a
 * program that blocks signals it reads from a signalfd is not taken for
 * one, a worker thread that blocks the signals its main thread handles
 * is (it then starts no keeper: another thread, or a later call, does).
 * Each wrapper is the real call, then a store.
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>

#include "shim.h"

/* Bit n-1: signal n has a handler (not SIG_DFL, not SIG_IGN). */
static _Atomic uint64_t caught;

typedef void (*handler_fn)(int);

/* Declared by <signal.h> only under some feature macros. */
handler_fn bsd_signal(int sig, handler_fn h);

static void note(int sig, handler_fn h) {
  uint64_t bit;

  if (sig < 1 || sig > 64)
    return;
  bit = UINT64_C(1) << (sig - 1);
  if (h != SIG_DFL && h != SIG_IGN && h != SIG_ERR)
    atomic_fetch_or(&caught, bit);
  else
    atomic_fetch_and(&caught, ~bit);
}

TFO_SHIM_EXPORT int sigaction(int sig, const struct sigaction *act,
                              struct sigaction *old) {
  int rc = tfo__libc()->sigaction(sig, act, old);

  /* sa_handler and sa_sigaction share their storage. */
  if (rc == 0 && act != NULL)
    note(sig, act->sa_handler);
  return rc;
}

static handler_fn noted(int sig, handler_fn h, handler_fn old) {
  if (old != SIG_ERR)
    note(sig, h);
  return old;
}

TFO_SHIM_EXPORT handler_fn signal(int sig, handler_fn h) {
  return noted(sig, h, tfo__libc()->signal(sig, h));
}

TFO_SHIM_EXPORT handler_fn bsd_signal(int sig, handler_fn h) {
  return noted(sig, h, tfo__libc()->bsd_signal(sig, h));
}

TFO_SHIM_EXPORT handler_fn sysv_signal(int sig, handler_fn h) {
  return noted(sig, h, tfo__libc()->sysv_signal(sig, h));
}

TFO_SHIM_EXPORT handler_fn sigset(int sig, handler_fn h) {
  /* SIG_HOLD only blocks the signal; the disposition stays. */
  if (h == SIG_HOLD)
    return tfo__libc()->sigset(sig, h);
  return noted(sig, h, tfo__libc()->sigset(sig, h));
}

int tfo__maybe_in_handler(void) {
  uint64_t c = atomic_load(&caught);
  sigset_t cur;
  int sig, saved = errno, r = 0;

  if (c == 0)
    return 0;
  if (pthread_sigmask(SIG_BLOCK, NULL, &cur) != 0) {
    errno = saved;
    return 1;
  }
  for (sig = 1; sig <= 64 && !r; sig++)
    if ((c & (UINT64_C(1) << (sig - 1))) && sigismember(&cur, sig) == 1)
      r = 1;
  errno = saved;
  return r;
}
