/* SPDX-License-Identifier: MIT */
#include "config.h"

#include "tfo_uv.h"

unsigned int tfo_uv_version(void) {
  return TFO_VERSION_HEX;
}
