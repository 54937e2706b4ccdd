/* tfo_cookie_lookup and tfo_cookie_prefetch against a scripted kernel:
 * tcp_metrics, the handshake (tfo_connect_send) and the negative cache are
 * mocked with -Wl,--wrap, so that every answer is forced and the
 * decisions of lib/prefetch.h are pinned down without a network. Bad
 * input must fail before anything is asked.
 *
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "metrics.h"
#include "tfo.h"

static struct {
  int metrics_calls, connects, cache_calls;
  int cookie_before, cookie_after; /* cookie_len; -1: no entry */
  int skip_before, skip_after;
  int connect_errno; /* 0: connected */
  enum tfo_outcome outcome;
  int timeout_seen;
} k;

int __wrap_tfo__metrics_get(const struct sockaddr *dst, socklen_t len,
                            struct tfo__metrics *m);
int __wrap_tfo__metrics_get(const struct sockaddr *dst, socklen_t len,
                            struct tfo__metrics *m) {
  int cl = k.connects > 0 ? k.cookie_after : k.cookie_before;

  (void)dst;
  (void)len;
  k.metrics_calls++;
  if (cl < 0) {
    errno = ENOENT;
    return -1;
  }
  memset(m, 0, sizeof(*m));
  m->family = AF_INET;
  m->cookie_len = cl;
  m->fo_mss = 1460;
  m->rtt_us = 50000;
  m->age_ms = 7;
  m->has_saddr = 1;
  m->saddr[0] = 198;
  m->saddr[1] = 18;
  m->saddr[3] = 1;
  return 0;
}

int __wrap_tfo_connect_send(const struct sockaddr *addr, socklen_t addrlen,
                            const void *data, size_t len,
                            const struct tfo_connect_opts *opts,
                            struct tfo_result *result);
int __wrap_tfo_connect_send(const struct sockaddr *addr, socklen_t addrlen,
                            const void *data, size_t len,
                            const struct tfo_connect_opts *opts,
                            struct tfo_result *result) {
  (void)addr;
  (void)addrlen;
  (void)data;
  assert_int_equal(len, 0); /* a prefetch sends no data */
  k.connects++;
  k.timeout_seen = opts->timeout_ms;
  memset(result, 0, sizeof(*result));
  result->outcome = k.outcome;
  if (k.connect_errno != 0) {
    errno = k.connect_errno;
    return -1;
  }
  return dup(0); /* a real fd, closed by the prefetch */
}

int __wrap_tfo_cache_lookup(const struct sockaddr *addr, socklen_t addrlen,
                            struct tfo_cache_entry *e);
int __wrap_tfo_cache_lookup(const struct sockaddr *addr, socklen_t addrlen,
                            struct tfo_cache_entry *e) {
  (void)addr;
  (void)addrlen;
  k.cache_calls++;
  memset(e, 0, sizeof(*e));
  e->skip = k.connects > 0 ? k.skip_after : k.skip_before;
  return 0;
}

static struct sockaddr_in sin4;

static int setup(void **state) {
  (void)state;
  memset(&k, 0, sizeof(k));
  k.cookie_before = k.cookie_after = -1;
  k.outcome = TFO_OUTCOME_COOKIE_REQUESTED;
  memset(&sin4, 0, sizeof(sin4));
  sin4.sin_family = AF_INET;
  sin4.sin_port = htons(80);
  sin4.sin_addr.s_addr = htonl(0xc6120002);
  return 0;
}

#define SA ((const struct sockaddr *)&sin4)

static void lookup_bad_input(void **state) {
  struct tfo_cookie_info ci;
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};

  (void)state;
  errno = 0;
  assert_int_equal(tfo_cookie_lookup(NULL, sizeof(sin4), &ci), -1);
  assert_int_equal(errno, EINVAL);
  assert_int_equal(tfo_cookie_lookup(SA, sizeof(sin4), NULL), -1);
  assert_int_equal(errno, EINVAL);
  assert_int_equal(tfo_cookie_lookup(SA, sizeof(sin4) - 1, &ci), -1);
  assert_int_equal(errno, EINVAL);
  assert_int_equal(tfo_cookie_lookup((struct sockaddr *)&s6, sizeof(sin4), &ci),
                   -1);
  assert_int_equal(errno, EINVAL);
  assert_int_equal(tfo_cookie_lookup((struct sockaddr *)&sun, sizeof(sun), &ci),
                   -1);
  assert_int_equal(errno, EAFNOSUPPORT);
  assert_int_equal(k.metrics_calls, 0);
}

static void lookup_fills(void **state) {
  struct tfo_cookie_info ci;
  const struct sockaddr_in *src = (const struct sockaddr_in *)&ci.source;

  (void)state;
  memset(&ci, 0xff, sizeof(ci));
  assert_int_equal(tfo_cookie_lookup(SA, sizeof(sin4), &ci), 0);
  assert_int_equal(ci.held, 0); /* no entry: held 0, not an error */
  assert_int_equal(ci.cookie_len, 0);
  assert_int_equal(ci.source.ss_family, 0);
  assert_int_equal(ci.reserved[0], 0);
  k.cookie_before = 8;
  assert_int_equal(tfo_cookie_lookup(SA, sizeof(sin4), &ci), 0);
  assert_int_equal(ci.held, 1);
  assert_int_equal(ci.cookie_len, 8);
  assert_int_equal(ci.mss, 1460);
  assert_int_equal(ci.rtt_us, 50000);
  assert_int_equal(ci.age_ms, 7);
  assert_int_equal(src->sin_family, AF_INET);
  assert_int_equal(ntohl(src->sin_addr.s_addr), 0xc6120001);
  k.cookie_before = 0; /* an entry without a cookie */
  assert_int_equal(tfo_cookie_lookup(SA, sizeof(sin4), &ci), 0);
  assert_int_equal(ci.held, 0);
}

static void prefetch_bad_input(void **state) {
  struct sockaddr_un sun = {.sun_family = AF_UNIX};

  (void)state;
  assert_int_equal(tfo_cookie_prefetch(NULL, sizeof(sin4), 0), -1);
  assert_int_equal(errno, EINVAL);
  assert_int_equal(tfo_cookie_prefetch(SA, 3, 0), -1);
  assert_int_equal(errno, EINVAL);
  assert_int_equal(tfo_cookie_prefetch(SA, sizeof(sin4), -1), -1);
  assert_int_equal(errno, EINVAL);
  assert_int_equal(tfo_cookie_prefetch((struct sockaddr *)&sun, sizeof(sun), 0),
                   -1);
  assert_int_equal(errno, EAFNOSUPPORT);
  assert_int_equal(k.connects, 0);
}

static void prefetch_granted(void **state) {
  (void)state;
  k.cookie_after = 8;
  assert_int_equal(tfo_cookie_prefetch(SA, sizeof(sin4), 0), 1);
  assert_int_equal(k.connects, 1);
  assert_int_equal(k.timeout_seen, 3000); /* 0: the default */
  setup(NULL);
  k.cookie_after = 8;
  assert_int_equal(tfo_cookie_prefetch(SA, sizeof(sin4), 250), 1);
  assert_int_equal(k.timeout_seen, 250);
}

static void prefetch_no_cookie(void **state) {
  (void)state;
  k.cookie_after = 0;
  assert_int_equal(tfo_cookie_prefetch(SA, sizeof(sin4), 0), 0);
  assert_int_equal(k.connects, 1);
}

static void prefetch_held_sends_nothing(void **state) {
  (void)state;
  k.cookie_before = 8;
  assert_int_equal(tfo_cookie_prefetch(SA, sizeof(sin4), 0), 1);
  assert_int_equal(k.connects, 0);
}

static void prefetch_skipped_sends_nothing(void **state) {
  (void)state;
  k.skip_before = 1;
  errno = 0;
  assert_int_equal(tfo_cookie_prefetch(SA, sizeof(sin4), 0), -1);
  assert_int_equal(errno, ENOPROTOOPT);
  assert_int_equal(k.connects, 0);
}

static void prefetch_blackhole(void **state) {
  (void)state;
  /* The cookie request went unanswered, a plain SYN won the race, and the
   * judge recorded a blackhole: now skipped. */
  k.outcome = TFO_OUTCOME_FALLBACK;
  k.skip_after = 1;
  assert_int_equal(tfo_cookie_prefetch(SA, sizeof(sin4), 0), -1);
  assert_int_equal(errno, ENOPROTOOPT);
  /* Merely slow (the answer came after the plain one): no cookie, no
   * skip. */
  setup(NULL);
  k.outcome = TFO_OUTCOME_FALLBACK;
  assert_int_equal(tfo_cookie_prefetch(SA, sizeof(sin4), 0), 0);
}

static void prefetch_errors(void **state) {
  (void)state;
  k.connect_errno = ECONNREFUSED;
  assert_int_equal(tfo_cookie_prefetch(SA, sizeof(sin4), 0), -1);
  assert_int_equal(errno, ECONNREFUSED);
  setup(NULL);
  k.connect_errno = ETIMEDOUT;
  assert_int_equal(tfo_cookie_prefetch(SA, sizeof(sin4), 100), -1);
  assert_int_equal(errno, ETIMEDOUT);
  setup(NULL);
  k.outcome = TFO_OUTCOME_DISABLED;
  assert_int_equal(tfo_cookie_prefetch(SA, sizeof(sin4), 0), -1);
  assert_int_equal(errno, EOPNOTSUPP);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(lookup_bad_input, setup),
      cmocka_unit_test_setup(lookup_fills, setup),
      cmocka_unit_test_setup(prefetch_bad_input, setup),
      cmocka_unit_test_setup(prefetch_granted, setup),
      cmocka_unit_test_setup(prefetch_no_cookie, setup),
      cmocka_unit_test_setup(prefetch_held_sends_nothing, setup),
      cmocka_unit_test_setup(prefetch_skipped_sends_nothing, setup),
      cmocka_unit_test_setup(prefetch_blackhole, setup),
      cmocka_unit_test_setup(prefetch_errors, setup),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
