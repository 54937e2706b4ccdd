/* Growable public structs (see tfo.h): reserved space callers must zero.
 * SPDX-License-Identifier: MIT */
#ifndef TFO_ABI_H
#define TFO_ABI_H

#include <stddef.h>

/* 1 when every reserved slot is zero. A slot a caller filled is an option
 * from a newer libtfo that this one does not know: refused, never ignored. */
static inline int tfo__reserved_zero(const int *ints, size_t nints,
                                     void *const *ptrs, size_t nptrs) {
  size_t i;

  for (i = 0; i < nints; i++)
    if (ints[i] != 0)
      return 0;
  for (i = 0; i < nptrs; i++)
    if (ptrs[i] != NULL)
      return 0;
  return 1;
}

#define TFO__RESERVED_ZERO(o)                                                  \
  tfo__reserved_zero((o)->reserved_int,                                       \
                     sizeof((o)->reserved_int) / sizeof((o)->reserved_int[0]), \
                     (o)->reserved,                                           \
                     sizeof((o)->reserved) / sizeof((o)->reserved[0]))

#endif
