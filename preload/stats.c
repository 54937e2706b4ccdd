/* LIBTFO_STATS=1: one summary line when the program exits.
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "shim.h"

void tfo__shim_count(enum tfo_outcome out) {
  switch (out) {
    case TFO_OUTCOME_DATA_ACKED:
      atomic_fetch_add(&tfo__stats.data_acked, 1);
      break;
    case TFO_OUTCOME_COOKIE_REQUESTED:
      atomic_fetch_add(&tfo__stats.cookie_requested, 1);
      break;
    case TFO_OUTCOME_FALLBACK:
      atomic_fetch_add(&tfo__stats.fallbacks, 1);
      break;
    case TFO_OUTCOME_SKIPPED:
      atomic_fetch_add(&tfo__stats.skipped, 1);
      break;
    case TFO_OUTCOME_DISABLED:
      atomic_fetch_add(&tfo__stats.disabled, 1);
      break;
    default:
      atomic_fetch_add(&tfo__stats.data_not_acked, 1);
      break;
  }
}

void tfo__shim_report(void) {
  char line[256];
  int n;

  if (!tfo__shim_config()->stats)
    return;
  n = snprintf(line, sizeof(line),
               "libtfo[%ld]: attempts=%lu data_acked=%lu cookie_requested=%lu "
               "data_not_acked=%lu fallbacks=%lu skipped=%lu disabled=%lu\n",
               (long)getpid(), atomic_load(&tfo__stats.attempts),
               atomic_load(&tfo__stats.data_acked),
               atomic_load(&tfo__stats.cookie_requested),
               atomic_load(&tfo__stats.data_not_acked),
               atomic_load(&tfo__stats.fallbacks),
               atomic_load(&tfo__stats.skipped),
               atomic_load(&tfo__stats.disabled));
  if (n > 0)
    (void)!write(STDERR_FILENO, line, (size_t)n < sizeof(line) ? (size_t)n
                                                              : sizeof(line));
}
