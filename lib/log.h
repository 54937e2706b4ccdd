/* Diagnostics: to stderr, prefixed, at a level chosen by LIBTFO_LOG.
 * SPDX-License-Identifier: MIT */
#ifndef TFO_LOG_H
#define TFO_LOG_H

enum tfo__log_level {
  TFO__LOG_ERROR = 1, /* bad configuration, unusable cache file */
  TFO__LOG_INFO = 2,  /* one line per fallback or cache decision */
  TFO__LOG_DEBUG = 3  /* every decision */
};

/* Current level (LIBTFO_LOG, default 1; 0 silences everything). */
int tfo__log_level(void);
void tfo__log(enum tfo__log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* strerror(e) for log lines: the untranslated text from a static table,
 * async-signal-safe (strerror may take the locale's lock and allocate). */
const char *tfo__strerror(int e);

#endif
