/* LIBTFO_PORTS and LIBTFO_EXCLUDE parsing and matching.
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "filter.h"

static void ports_lists_and_ranges(void **state) {
  struct tfo__ports p;

  (void)state;
  assert_int_equal(tfo__ports_parse("80, 443 8000-8100", &p), 0);
  assert_int_equal(p.n, 3);
  assert_true(tfo__ports_match(&p, 80));
  assert_true(tfo__ports_match(&p, 443));
  assert_true(tfo__ports_match(&p, 8000));
  assert_true(tfo__ports_match(&p, 8100));
  assert_false(tfo__ports_match(&p, 8101));
  assert_false(tfo__ports_match(&p, 81));
  assert_int_equal(tfo__ports_parse("", &p), 0);
  assert_true(tfo__ports_match(&p, 1)); /* empty: every port */
}

static void ports_reject_junk(void **state) {
  static const char *const bad[] = {"0",     "65536", "80-",   "-80",
                                    "90-80", "http",  "80;443", "1-2-3",
                                    "8O"};
  struct tfo__ports p;
  char many[512] = "";
  size_t i;

  (void)state;
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    errno = 0;
    assert_int_equal(tfo__ports_parse(bad[i], &p), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(p.n, 0); /* nothing half-applied */
  }
  for (i = 0; i <= TFO__FILTER_MAX; i++)
    snprintf(many + strlen(many), sizeof(many) - strlen(many), "%zu,", i + 1);
  assert_int_equal(tfo__ports_parse(many, &p), -1);
  assert_int_equal(errno, ERANGE);
  assert_int_equal(tfo__ports_parse(NULL, &p), -1);
}

static struct sockaddr_in6 v6(const char *s) {
  struct sockaddr_in6 a;

  memset(&a, 0, sizeof(a));
  a.sin6_family = AF_INET6;
  assert_int_equal(inet_pton(AF_INET6, s, &a.sin6_addr), 1);
  return a;
}

static struct sockaddr_in v4(const char *s) {
  struct sockaddr_in a;

  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  assert_int_equal(inet_pton(AF_INET, s, &a.sin_addr), 1);
  return a;
}

static void prefixes_match_v4_v6_and_mapped(void **state) {
  struct tfo__prefixes p;
  struct sockaddr_in a;
  struct sockaddr_in6 b;

  (void)state;
  assert_int_equal(
      tfo__prefixes_parse("198.18.0.0/15,2001:2::/48 192.0.2.7", &p), 0);
  assert_int_equal(p.n, 3);
  a = v4("198.19.255.1");
  assert_true(tfo__prefixes_match(&p, (struct sockaddr *)&a, sizeof(a)));
  a = v4("198.20.0.1");
  assert_false(tfo__prefixes_match(&p, (struct sockaddr *)&a, sizeof(a)));
  a = v4("192.0.2.7");
  assert_true(tfo__prefixes_match(&p, (struct sockaddr *)&a, sizeof(a)));
  a = v4("192.0.2.8");
  assert_false(tfo__prefixes_match(&p, (struct sockaddr *)&a, sizeof(a)));
  b = v6("2001:2:0:ffff::1");
  assert_true(tfo__prefixes_match(&p, (struct sockaddr *)&b, sizeof(b)));
  b = v6("2001:3::1");
  assert_false(tfo__prefixes_match(&p, (struct sockaddr *)&b, sizeof(b)));
  b = v6("::ffff:198.18.0.2");
  assert_true(tfo__prefixes_match(&p, (struct sockaddr *)&b, sizeof(b)));
  /* Short lengths never match (and never read past the struct). */
  assert_false(tfo__prefixes_match(&p, (struct sockaddr *)&b, 8));
  assert_int_equal(tfo__prefixes_parse("0.0.0.0/0", &p), 0);
  a = v4("203.0.113.9");
  assert_true(tfo__prefixes_match(&p, (struct sockaddr *)&a, sizeof(a)));
}

static void prefixes_reject_junk(void **state) {
  static const char *const bad[] = {"10.0.0.0/33", "10.0.0/8", "::1/129",
                                    "host.example", "10.0.0.1/", "1.2.3.4/x",
                                    "2001:db8::/-1"};
  struct tfo__prefixes p;
  size_t i;

  (void)state;
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    errno = 0;
    assert_int_equal(tfo__prefixes_parse(bad[i], &p), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(p.n, 0);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(ports_lists_and_ranges),
      cmocka_unit_test(ports_reject_junk),
      cmocka_unit_test(prefixes_match_v4_v6_and_mapped),
      cmocka_unit_test(prefixes_reject_junk),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
