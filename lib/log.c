/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "env.h"
#include "log.h"

static pthread_once_t level_once = PTHREAD_ONCE_INIT;
static int level = TFO__LOG_ERROR;

const char *tfo__strerror(int e) {
#ifdef HAVE_STRERRORDESC_NP
  const char *s = strerrordesc_np(e);

  if (s != NULL)
    return s;
#endif
  (void)e;
  return "Unknown error";
}

static void emit(const char *fmt, va_list ap) {
  char buf[512];
  int n;

  n = snprintf(buf, sizeof(buf), "libtfo[%ld]: ", (long)getpid());
  vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
  n = (int)strlen(buf);
  buf[n++] = '\n';
  /* One write() per line so lines from several threads never interleave. */
  (void)!write(STDERR_FILENO, buf, (size_t)n);
}

static void emit_now(const char *fmt, ...) {
  va_list ap;

  va_start(ap, fmt);
  emit(fmt, ap);
  va_end(ap);
}

static void read_level(void) {
  const char *s = getenv("LIBTFO_LOG");
  long v;

  if (s == NULL || *s == '\0')
    return;
  /* Not tfo__env_long: its complaint would come back here through the
   * once-guard we are inside of. */
  if (tfo__parse_long(s, 0, 3, &v) == 0)
    level = (int)v;
  else
    emit_now("ignoring LIBTFO_LOG='%.64s': expected a number in 0..3", s);
}

int tfo__log_level(void) {
  int saved = errno;

  pthread_once(&level_once, read_level);
  errno = saved;
  return level;
}

void tfo__log(enum tfo__log_level lvl, const char *fmt, ...) {
  va_list ap;
  int saved = errno; /* logging must never change what the caller sees */

  if ((int)lvl <= tfo__log_level()) {
    va_start(ap, fmt);
    emit(fmt, ap);
    va_end(ap);
  }
  errno = saved;
}
