/* SPDX-License-Identifier: MIT */
#include "config.h"

#include "tfo.h"

unsigned int tfo_version(void) {
  return TFO_VERSION_HEX;
}

const char *tfo_version_string(void) {
  return PACKAGE_VERSION;
}
