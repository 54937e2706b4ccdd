/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <cmocka.h>

#include "tfo.h"

/* The loaded library and the header a program was built with must agree,
 * or version checks in callers would lie. */
static void version_matches_header(void **state) {
  char want[32];

  (void)state;
  assert_int_equal(tfo_version(), TFO_VERSION_HEX);
  snprintf(want, sizeof(want), "%d.%d.%d", TFO_VERSION_MAJOR,
           TFO_VERSION_MINOR, TFO_VERSION_PATCH);
  assert_string_equal(tfo_version_string(), want);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(version_matches_header),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
