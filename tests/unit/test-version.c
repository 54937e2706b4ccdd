/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <cmocka.h>

#include "tfo.h"

/* Three sources that must agree, or version checks in callers would lie:
 * the release's version (configure.ac, PACKAGE_VERSION), the header's
 * macros a program is built with, and what the loaded library answers. */
static void version_agrees_everywhere(void **state) {
  unsigned maj, min, patch;
  char from_header[32];
  int n = -1;

  (void)state;
  assert_int_equal(sscanf(PACKAGE_VERSION, "%u.%u.%u%n", &maj, &min, &patch,
                          &n),
                   3);
  assert_int_equal(PACKAGE_VERSION[n], '\0');
  snprintf(from_header, sizeof(from_header), "%d.%d.%d", TFO_VERSION_MAJOR,
           TFO_VERSION_MINOR, TFO_VERSION_PATCH);
  assert_string_equal(from_header, PACKAGE_VERSION);
  assert_string_equal(tfo_version_string(), PACKAGE_VERSION);
  assert_int_equal(tfo_version(), (maj << 16) | (min << 8) | patch);
  assert_int_equal(TFO_VERSION_HEX, (maj << 16) | (min << 8) | patch);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(version_agrees_everywhere),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
