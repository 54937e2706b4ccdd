/* Remembers what tfo_connect_send reported for the sockets it returned, so
 * that tfo_info() can answer for them later.
 * SPDX-License-Identifier: MIT */
#ifndef TFO_REGISTRY_H
#define TFO_REGISTRY_H

#include "tfo.h"

/* Keyed by the kernel's socket cookie (SO_COOKIE), not the fd number: an fd
 * closed and reused for another socket must not inherit an answer. Bounded:
 * the oldest answers are forgotten first. */
#define TFO__REGISTRY_SIZE 4096

void tfo__registry_put(int fd, enum tfo_outcome outcome);
/* 0 and *outcome, or -1 with ENOENT when fd is not a socket we made. */
int tfo__registry_get(int fd, enum tfo_outcome *outcome);

#endif
