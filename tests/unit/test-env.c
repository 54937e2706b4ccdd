/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <cmocka.h>

#include "env.h"

static void bool_accepts_the_usual_spellings(void **state) {
  static const char *const ones[] = {"1", "yes", "TRUE", "On"};
  static const char *const zeros[] = {"0", "no", "false", "OFF"};
  int v;
  size_t i;

  (void)state;
  for (i = 0; i < 4; i++) {
    v = -1;
    assert_int_equal(tfo__parse_bool(ones[i], &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(tfo__parse_bool(zeros[i], &v), 0);
    assert_int_equal(v, 0);
  }
}

static void bool_rejects_the_rest(void **state) {
  static const char *const bad[] = {"", "2", "yess", " 1", "1 ", "-1", "0x1"};
  int v = 7;
  size_t i;

  (void)state;
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    errno = 0;
    assert_int_equal(tfo__parse_bool(bad[i], &v), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(v, 7); /* untouched on error */
  }
  assert_int_equal(tfo__parse_bool(NULL, &v), -1);
  assert_int_equal(tfo__parse_bool("1", NULL), -1);
}

static void long_parses_within_bounds(void **state) {
  long v = 0;

  (void)state;
  assert_int_equal(tfo__parse_long("0", 0, 10, &v), 0);
  assert_int_equal(v, 0);
  assert_int_equal(tfo__parse_long("10", 0, 10, &v), 0);
  assert_int_equal(v, 10);
  assert_int_equal(tfo__parse_long("-3", -5, 5, &v), 0);
  assert_int_equal(v, -3);
}

static void long_rejects_junk_and_range(void **state) {
  static const char *const junk[] = {"", " 5", "+5", "5x", "x", "-", "1e3",
                                     "0x10", "5 "};
  long v = 42;
  size_t i;

  (void)state;
  for (i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
    errno = 0;
    assert_int_equal(tfo__parse_long(junk[i], 0, 100, &v), -1);
    assert_int_equal(errno, EINVAL);
  }
  errno = 0;
  assert_int_equal(tfo__parse_long("11", 0, 10, &v), -1);
  assert_int_equal(errno, ERANGE);
  assert_int_equal(tfo__parse_long("-1", 0, 10, &v), -1);
  assert_int_equal(errno, ERANGE);
  assert_int_equal(tfo__parse_long("99999999999999999999999", LONG_MIN,
                                   LONG_MAX, &v),
                   -1);
  assert_int_equal(errno, ERANGE);
  assert_int_equal(v, 42);
}

static void env_falls_back_to_default_and_keeps_errno(void **state) {
  (void)state;
  unsetenv("TFO_TEST_VAR");
  assert_int_equal(tfo__env_long("TFO_TEST_VAR", 0, 9, 4), 4);
  setenv("TFO_TEST_VAR", "", 1);
  assert_int_equal(tfo__env_bool("TFO_TEST_VAR", 1), 1);
  setenv("TFO_TEST_VAR", "7", 1);
  assert_int_equal(tfo__env_long("TFO_TEST_VAR", 0, 9, 4), 7);
  setenv("TFO_TEST_VAR", "70", 1);
  errno = 1234;
  assert_int_equal(tfo__env_long("TFO_TEST_VAR", 0, 9, 4), 4);
  assert_int_equal(errno, 1234);
  setenv("TFO_TEST_VAR", "maybe", 1);
  assert_int_equal(tfo__env_bool("TFO_TEST_VAR", 0), 0);
  assert_int_equal(errno, 1234);
  unsetenv("TFO_TEST_VAR");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(bool_accepts_the_usual_spellings),
      cmocka_unit_test(bool_rejects_the_rest),
      cmocka_unit_test(long_parses_within_bounds),
      cmocka_unit_test(long_rejects_junk_and_range),
      cmocka_unit_test(env_falls_back_to_default_and_keeps_errno),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
