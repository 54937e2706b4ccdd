/* Unit tests for the per-destination negative cache (lib/cache.c).
 *
 * Linked with -Wl,--wrap=tfo__now_ms: the clock below is ours, so expiry and
 * back-off are checked to the millisecond. Every test gets a fresh mkdtemp
 * directory under /tmp, removed afterwards.
 *
 * SPDX-License-Identifier: MIT */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE /* secure_getenv, GNU strerror_r, unshare */
#define _GNU_SOURCE
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "cache.h"

#define T0 INT64_C(1700000000000) /* an ordinary 2023 timestamp, in ms */
#define MIN_MS (60 * 1000LL)
#define DAY_MS (24 * 60 * MIN_MS)
#define NOBODY 65534

/* --- the clock ------------------------------------------------------------ */

static _Atomic int64_t fake_now = T0;

int64_t __wrap_tfo__now_ms(void);
int64_t __real_tfo__now_ms(void);

int64_t __wrap_tfo__now_ms(void) {
  return atomic_load_explicit(&fake_now, memory_order_relaxed);
}

static void set_now(int64_t t) {
  atomic_store_explicit(&fake_now, t, memory_order_relaxed);
}

static int64_t get_now(void) {
  return atomic_load_explicit(&fake_now, memory_order_relaxed);
}

/* --- fixtures ------------------------------------------------------------- */

struct fx {
  char dir[64];
  char path[128];
};

static int rm_one(const char *p, const struct stat *sb, int flag,
                  struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(p);
}

static int setup(void **state) {
  struct fx *f = calloc(1, sizeof(*f));

  if (f == NULL)
    return -1;
  strcpy(f->dir, "/tmp/tfo-cache-XXXXXX");
  if (mkdtemp(f->dir) == NULL)
    return -1;
  snprintf(f->path, sizeof(f->path), "%s/cache", f->dir);
  set_now(T0);
  if (tfo__cache_configure(f->path) != 0)
    return -1;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  struct fx *f = *state;

  tfo__cache_configure("off");
  nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  free(f);
  return 0;
}

/* --- helpers -------------------------------------------------------------- */

static struct sockaddr_in sin4(const char *ip, uint16_t port) {
  struct sockaddr_in s;

  memset(&s, 0, sizeof(s));
  s.sin_family = AF_INET;
  s.sin_port = htons(port);
  assert_int_equal(inet_pton(AF_INET, ip, &s.sin_addr), 1);
  return s;
}

static struct sockaddr_in6 sin6(const char *ip, uint16_t port, uint32_t scope) {
  struct sockaddr_in6 s;

  memset(&s, 0, sizeof(s));
  s.sin6_family = AF_INET6;
  s.sin6_port = htons(port);
  s.sin6_scope_id = scope;
  assert_int_equal(inet_pton(AF_INET6, ip, &s.sin6_addr), 1);
  return s;
}

/* Distinct IPv4 destinations: 10.g.(i>>8).(i&255), port 1000+g. */
static struct sockaddr_in nth4(unsigned g, unsigned i) {
  struct sockaddr_in s;

  memset(&s, 0, sizeof(s));
  s.sin_family = AF_INET;
  s.sin_port = htons((uint16_t)(1000 + g));
  s.sin_addr.s_addr = htonl(0x0a000000u | (g & 0xff) << 16 | (i & 0xffff));
  return s;
}

#define SA(x) ((const struct sockaddr *)&(x)), (socklen_t)sizeof(x)

static int rec(const void *sa, socklen_t len, enum tfo__event ev,
               uint32_t rtt) {
  return tfo__cache_record(sa, len, ev, rtt);
}

static int look(const void *sa, socklen_t len, struct tfo__verdict *v) {
  memset(v, 0xa5, sizeof(*v));
  return tfo__cache_lookup(sa, len, v);
}

static void assert_unknown(const void *sa, socklen_t len) {
  struct tfo__verdict v;

  errno = 0;
  assert_int_equal(look(sa, len, &v), -1);
  assert_int_equal(errno, ENOENT);
}

static int count_cb(const struct sockaddr *sa, socklen_t len,
                    const struct tfo__verdict *v, void *arg) {
  (void)sa;
  (void)len;
  (void)v;
  ++*(unsigned *)arg;
  return 0;
}

static unsigned count_entries(void) {
  unsigned n = 0;

  assert_int_equal(tfo__cache_foreach(count_cb, &n), 0);
  return n;
}

/* Raw access to the file, as another (possibly hostile) program would. */
static off_t slot_off(long slot, int word) {
  return (off_t)TFO__CACHE_HDR_SIZE + (off_t)slot * TFO__CACHE_SLOT_SIZE +
         word * 8;
}

static uint64_t *raw_load(const char *path) {
  uint64_t *b = malloc(TFO__CACHE_FILE_SIZE);
  int fd = open(path, O_RDONLY);

  assert_non_null(b);
  assert_true(fd >= 0);
  assert_int_equal(pread(fd, b, TFO__CACHE_FILE_SIZE, 0),
                   (ssize_t)TFO__CACHE_FILE_SIZE);
  close(fd);
  return b;
}

static uint64_t *raw_slot(uint64_t *b, long slot) {
  return b + 8 + slot * 8;
}

/* The slot holding the only entry with this (host order) port, or -1. */
static long raw_find_port(const char *path, uint16_t port) {
  uint64_t *b = raw_load(path);
  long i, found = -1;
  int n = 0;

  for (i = 0; i < (long)TFO__CACHE_SLOTS; i++) {
    uint64_t w0 = raw_slot(b, i)[0];
    if (((w0 >> 48) & 0xff) != 0 && (uint16_t)(w0 >> 32) == htons(port)) {
      found = i;
      n++;
    }
  }
  free(b);
  assert_true(n <= 1);
  return found;
}

static void raw_put(const char *path, off_t off, uint64_t val) {
  int fd = open(path, O_WRONLY);

  assert_true(fd >= 0);
  assert_int_equal(pwrite(fd, &val, sizeof(val), off), (ssize_t)sizeof(val));
  close(fd);
}

static uint64_t raw_get(const char *path, off_t off) {
  uint64_t val = 0;
  int fd = open(path, O_RDONLY);

  assert_true(fd >= 0);
  assert_int_equal(pread(fd, &val, sizeof(val), off), (ssize_t)sizeof(val));
  close(fd);
  return val;
}

static void write_file(const char *path, const void *buf, size_t len,
                       mode_t mode) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

  assert_true(fd >= 0);
  if (len > 0)
    assert_int_equal(write(fd, buf, len), (ssize_t)len);
  assert_int_equal(fchmod(fd, mode), 0);
  close(fd);
}

static off_t file_size(const char *path) {
  struct stat sb;

  assert_int_equal(stat(path, &sb), 0);
  return sb.st_size;
}

/* A full consistency check of the file: valid header, every seq even, used
 * slots well-formed and no key twice. Returns the number of used slots. */
static unsigned raw_check(const char *path) {
  uint64_t *b = raw_load(path);
  unsigned used = 0;
  long i, j;

  assert_int_equal(b[0], TFO__CACHE_MAGIC);
  assert_int_equal(b[1],
                   TFO__CACHE_VERSION | (uint64_t)TFO__CACHE_HDR_SIZE << 32);
  assert_int_equal(b[2],
                   TFO__CACHE_SLOT_SIZE | (uint64_t)TFO__CACHE_SLOTS << 32);
  for (i = 0; i < (long)TFO__CACHE_SLOTS; i++) {
    uint64_t *s = raw_slot(b, i);
    unsigned fam = (unsigned)(s[0] >> 48) & 0xff;

    assert_int_equal(s[0] & 1, 0);
    if (fam == 0)
      continue;
    assert_true(fam == 4 || fam == 6);
    used++;
    /* Duplicates can only sit within one window of each other. */
    for (j = 1; j < (long)TFO__CACHE_WINDOW; j++) {
      uint64_t *t = raw_slot(b, (i + j) & (TFO__CACHE_SLOTS - 1));
      if (((t[0] >> 32) & 0xffffff) == ((s[0] >> 32) & 0xffffff) &&
          t[1] == s[1] && t[2] == s[2] && t[3] == s[3] && t[4] == s[4])
        fail_msg("slot %ld and %ld hold the same key", i,
                 (i + j) & (long)(TFO__CACHE_SLOTS - 1));
    }
  }
  free(b);
  return used;
}

/* --- input ---------------------------------------------------------------- */

static void bad_input_is_refused(void **state) {
  struct sockaddr_in a = sin4("192.0.2.1", 80);
  struct sockaddr_in6 b = sin6("2001:db8::1", 80, 0);
  struct sockaddr_storage un;
  struct tfo__verdict v;

  (void)state;
  memset(&un, 0, sizeof(un));
  un.ss_family = AF_UNIX;

  errno = 0;
  assert_int_equal(tfo__cache_lookup(NULL, sizeof(a), &v), -1);
  assert_int_equal(errno, EINVAL);
  errno = 0;
  assert_int_equal(tfo__cache_lookup((void *)&a, 1, &v), -1);
  assert_int_equal(errno, EINVAL);
  errno = 0;
  assert_int_equal(tfo__cache_lookup((void *)&a, sizeof(a) - 1, &v), -1);
  assert_int_equal(errno, EINVAL);
  errno = 0;
  assert_int_equal(tfo__cache_lookup((void *)&b, sizeof(a), &v), -1);
  assert_int_equal(errno, EINVAL);
  errno = 0;
  assert_int_equal(tfo__cache_lookup(SA(un), &v), -1);
  assert_int_equal(errno, EAFNOSUPPORT);
  errno = 0;
  assert_int_equal(tfo__cache_lookup(SA(a), NULL), -1);
  assert_int_equal(errno, EINVAL);

  errno = 0;
  assert_int_equal(tfo__cache_record(SA(a), (enum tfo__event)0, 0), -1);
  assert_int_equal(errno, EINVAL);
  errno = 0;
  assert_int_equal(tfo__cache_record(SA(a), (enum tfo__event)7, 0), -1);
  assert_int_equal(errno, EINVAL);
  errno = 0;
  assert_int_equal(tfo__cache_record(SA(un), TFO__EV_DATA_ACKED, 0), -1);
  assert_int_equal(errno, EAFNOSUPPORT);
  errno = 0;
  assert_int_equal(tfo__cache_record(NULL, 16, TFO__EV_DATA_ACKED, 0), -1);
  assert_int_equal(errno, EINVAL);
  errno = 0;
  assert_int_equal(tfo__cache_forget(NULL, 16), -1);
  assert_int_equal(errno, EINVAL);
  errno = 0;
  assert_int_equal(tfo__cache_forget(SA(un)), -1);
  assert_int_equal(errno, EAFNOSUPPORT);
  errno = 0;
  assert_int_equal(tfo__cache_foreach(NULL, NULL), -1);
  assert_int_equal(errno, EINVAL);
  errno = 0;
  assert_int_equal(tfo__cache_configure(""), -1);
  assert_int_equal(errno, EINVAL);
  errno = 0;
  assert_int_equal(tfo__cache_configure("relative/cache"), -1);
  assert_int_equal(errno, EINVAL);
  assert_unknown(SA(a)); /* nothing was recorded by the refused calls */

  /* errno is left alone on success. */
  errno = 4242;
  assert_int_equal(rec(SA(a), TFO__EV_DATA_ACKED, 10), 0);
  assert_int_equal(look(SA(a), &v), 0);
  assert_int_equal(tfo__cache_forget(SA(b)), 0);
  assert_int_equal(count_entries(), 1);
  assert_non_null(tfo__cache_path());
  assert_int_equal(errno, 4242);
}

/* --- recording and lookup ------------------------------------------------- */

static void v4_record_lookup(void **state) {
  struct fx *f = *state;
  struct sockaddr_in a = sin4("192.0.2.1", 443), a2 = sin4("192.0.2.1", 80),
                     b = sin4("192.0.2.2", 443);
  struct tfo__verdict v;

  assert_unknown(SA(a));
  assert_int_equal(rec(SA(a), TFO__EV_DATA_ACKED, 20000), 0);
  assert_int_equal(look(SA(a), &v), 0);
  assert_int_equal(v.skip, 0);
  assert_int_equal(v.last, TFO__EV_DATA_ACKED);
  assert_int_equal(v.rtt_us, 20000);
  assert_int_equal(v.failures, 0);
  assert_int_equal(v.expires_ms, 0);
  assert_unknown(SA(a2)); /* the port is part of the key */
  assert_unknown(SA(b));
  assert_string_equal(tfo__cache_path(), f->path);
  assert_int_equal(raw_check(f->path), 1);
}

static void v6_record_lookup(void **state) {
  struct fx *f = *state;
  struct sockaddr_in6 a = sin6("2001:db8::1", 443, 0),
                      a_scoped = sin6("2001:db8::1", 443, 7),
                      b = sin6("2001:db8::2", 443, 0),
                      ll2 = sin6("fe80::1", 80, 2),
                      ll3 = sin6("fe80::1", 80, 3);
  struct tfo__verdict v;

  assert_int_equal(rec(SA(a), TFO__EV_RESET, 300), 0);
  assert_int_equal(look(SA(a), &v), 0);
  assert_int_equal(v.skip, 1);
  assert_int_equal(v.last, TFO__EV_RESET);
  assert_int_equal(v.rtt_us, 300);
  assert_int_equal(v.failures, 1);
  assert_int_equal(v.expires_ms, T0 + TFO__CACHE_TTL_BASE_MS);
  /* A scope id on a global address is noise. */
  assert_int_equal(look(SA(a_scoped), &v), 0);
  assert_int_equal(v.last, TFO__EV_RESET);
  assert_unknown(SA(b));

  /* On link-local addresses it tells hosts apart. */
  assert_int_equal(rec(SA(ll2), TFO__EV_DATA_ACKED, 50), 0);
  assert_int_equal(look(SA(ll2), &v), 0);
  assert_int_equal(v.rtt_us, 50);
  assert_unknown(SA(ll3));
  assert_int_equal(rec(SA(ll3), TFO__EV_BLACKHOLE, 60), 0);
  assert_int_equal(look(SA(ll2), &v), 0);
  assert_int_equal(v.last, TFO__EV_DATA_ACKED);
  assert_int_equal(look(SA(ll3), &v), 0);
  assert_int_equal(v.last, TFO__EV_BLACKHOLE);
  assert_int_equal(raw_check(f->path), 3);
}

static void v4_mapped_is_v4(void **state) {
  struct sockaddr_in a = sin4("192.0.2.7", 80);
  struct sockaddr_in6 m = sin6("::ffff:192.0.2.7", 80, 0),
                      m2 = sin6("::ffff:192.0.2.8", 80, 0),
                      compat = sin6("::192.0.2.7", 80, 0);
  struct tfo__verdict v;
  unsigned n = 0;

  (void)state;
  assert_int_equal(rec(SA(m), TFO__EV_BLACKHOLE, 0), 0);
  assert_int_equal(look(SA(a), &v), 0);
  assert_int_equal(v.last, TFO__EV_BLACKHOLE);
  assert_int_equal(rec(SA(a), TFO__EV_DATA_ACKED, 0), 0);
  assert_int_equal(look(SA(m), &v), 0);
  assert_int_equal(v.last, TFO__EV_DATA_ACKED);
  assert_int_equal(v.failures, 0);
  assert_unknown(SA(m2));
  assert_unknown(SA(compat)); /* not mapped: a different (v6) key */
  assert_int_equal(tfo__cache_foreach(count_cb, &n), 0);
  assert_int_equal(n, 1);
}

/* --- policy --------------------------------------------------------------- */

static void soft_failures_need_three(void **state) {
  static const enum tfo__event evs[] = {TFO__EV_NO_COOKIE,
                                        TFO__EV_DATA_NOT_ACKED};
  struct sockaddr_in mixed = sin4("198.51.100.9", 80);
  struct tfo__verdict v;
  unsigned i, k;

  (void)state;
  for (k = 0; k < 2; k++) {
    struct sockaddr_in a = nth4(1, k);

    for (i = 1; i < TFO__CACHE_SOFT_THRESHOLD; i++) {
      set_now(T0 + i);
      assert_int_equal(rec(SA(a), evs[k], 0), 0);
      assert_int_equal(look(SA(a), &v), 0);
      assert_int_equal(v.skip, 0);
      assert_int_equal(v.failures, i);
      assert_int_equal(v.last, evs[k]);
      assert_int_equal(v.expires_ms, 0);
    }
    set_now(T0 + 100);
    assert_int_equal(rec(SA(a), evs[k], 0), 0);
    assert_int_equal(look(SA(a), &v), 0);
    assert_int_equal(v.skip, 1);
    assert_int_equal(v.failures, TFO__CACHE_SOFT_THRESHOLD);
    assert_int_equal(v.expires_ms, T0 + 100 + TFO__CACHE_TTL_BASE_MS);
  }
  /* Any mix of soft failures counts. */
  set_now(T0);
  assert_int_equal(rec(SA(mixed), TFO__EV_NO_COOKIE, 0), 0);
  assert_int_equal(rec(SA(mixed), TFO__EV_DATA_NOT_ACKED, 0), 0);
  assert_int_equal(look(SA(mixed), &v), 0);
  assert_int_equal(v.skip, 0);
  assert_int_equal(rec(SA(mixed), TFO__EV_NO_COOKIE, 0), 0);
  assert_int_equal(look(SA(mixed), &v), 0);
  assert_int_equal(v.skip, 1);
}

static void hard_failures_skip_at_once(void **state) {
  struct sockaddr_in a = sin4("203.0.113.1", 80), b = sin4("203.0.113.2", 80);
  struct tfo__verdict v;

  (void)state;
  set_now(T0 + 5);
  assert_int_equal(rec(SA(a), TFO__EV_BLACKHOLE, 0), 0);
  assert_int_equal(rec(SA(b), TFO__EV_RESET, 0), 0);
  assert_int_equal(look(SA(a), &v), 0);
  assert_int_equal(v.skip, 1);
  assert_int_equal(v.failures, 1);
  assert_int_equal(v.last, TFO__EV_BLACKHOLE);
  assert_int_equal(v.expires_ms, T0 + 5 + TFO__CACHE_TTL_BASE_MS);
  assert_int_equal(look(SA(b), &v), 0);
  assert_int_equal(v.skip, 1);
  assert_int_equal(v.last, TFO__EV_RESET);
  /* Still skipped 1 ms before expiry, probed at expiry. */
  set_now(T0 + 4 + TFO__CACHE_TTL_BASE_MS);
  assert_int_equal(look(SA(a), &v), 0);
  assert_int_equal(v.skip, 1);
  set_now(T0 + 5 + TFO__CACHE_TTL_BASE_MS);
  assert_int_equal(look(SA(a), &v), 0);
  assert_int_equal(v.skip, 0);
  assert_int_equal(v.failures, 1);
  assert_int_equal(v.last, TFO__EV_BLACKHOLE);
  assert_int_equal(v.expires_ms, T0 + 5 + TFO__CACHE_TTL_BASE_MS);
}

static void backoff_doubles_to_the_cap(void **state) {
  struct sockaddr_in a = sin4("203.0.113.50", 443);
  struct tfo__verdict v;
  int64_t t = T0, ttl = TFO__CACHE_TTL_BASE_MS;
  unsigned round;

  (void)state;
  assert_int_equal(rec(SA(a), TFO__EV_BLACKHOLE, 0), 0);
  assert_int_equal(look(SA(a), &v), 0);
  assert_int_equal(v.expires_ms, t + ttl);
  /* Failures of connects begun before the skip do not escalate. */
  set_now(t + ttl / 2);
  assert_int_equal(rec(SA(a), TFO__EV_BLACKHOLE, 0), 0);
  assert_int_equal(rec(SA(a), TFO__EV_NO_COOKIE, 0), 0);
  assert_int_equal(look(SA(a), &v), 0);
  assert_int_equal(v.expires_ms, t + ttl);
  assert_int_equal(v.failures, 3);
  assert_int_equal(v.last, TFO__EV_NO_COOKIE);

  for (round = 0; round < 12; round++) {
    t += ttl; /* expired: the next connect probes, and fails again */
    set_now(t);
    assert_int_equal(look(SA(a), &v), 0);
    assert_int_equal(v.skip, 0);
    assert_int_equal(rec(SA(a), TFO__EV_BLACKHOLE, 0), 0);
    ttl = ttl * 2 > TFO__CACHE_TTL_MAX_MS ? TFO__CACHE_TTL_MAX_MS : ttl * 2;
    assert_int_equal(look(SA(a), &v), 0);
    assert_int_equal(v.skip, 1);
    assert_int_equal(v.expires_ms, t + ttl);
    assert_int_equal(v.failures, 4 + round);
  }
  /* 10 min doubled 12 times is far past a day: capped. */
  assert_int_equal(ttl, TFO__CACHE_TTL_MAX_MS);
  assert_int_equal(v.expires_ms - t, DAY_MS);
  /* The exact sequence, for the record: 20, 40, ... 1280 min, then 1 day. */
  assert_int_equal(TFO__CACHE_TTL_BASE_MS, 10 * MIN_MS);
}

static void good_events_clear(void **state) {
  struct sockaddr_in a = sin4("192.0.2.77", 443), c = sin4("192.0.2.78", 443),
                     s = sin4("192.0.2.79", 443);
  struct tfo__verdict v;
  int64_t t = T0;

  (void)state;
  /* Two failed rounds: back-off at 20 min. */
  assert_int_equal(rec(SA(a), TFO__EV_BLACKHOLE, 0), 0);
  t += TFO__CACHE_TTL_BASE_MS;
  set_now(t);
  assert_int_equal(rec(SA(a), TFO__EV_RESET, 0), 0);
  assert_int_equal(look(SA(a), &v), 0);
  assert_int_equal(v.expires_ms, t + 2 * TFO__CACHE_TTL_BASE_MS);
  /* DATA_ACKED (even during a skip) clears everything, back-off too. */
  t += 1000;
  set_now(t);
  assert_int_equal(rec(SA(a), TFO__EV_DATA_ACKED, 0), 0);
  assert_int_equal(look(SA(a), &v), 0);
  assert_int_equal(v.skip, 0);
  assert_int_equal(v.failures, 0);
  assert_int_equal(v.expires_ms, 0);
  assert_int_equal(v.last, TFO__EV_DATA_ACKED);
  assert_int_equal(rec(SA(a), TFO__EV_BLACKHOLE, 0), 0);
  assert_int_equal(look(SA(a), &v), 0);
  assert_int_equal(v.expires_ms, t + TFO__CACHE_TTL_BASE_MS);
  assert_int_equal(v.failures, 1);

  /* COOKIE_GRANTED ends the run but keeps the back-off exponent. */
  t = T0;
  set_now(t);
  assert_int_equal(rec(SA(c), TFO__EV_BLACKHOLE, 0), 0);
  t += TFO__CACHE_TTL_BASE_MS;
  set_now(t);
  assert_int_equal(rec(SA(c), TFO__EV_BLACKHOLE, 0), 0);
  t += 2 * TFO__CACHE_TTL_BASE_MS;
  set_now(t);
  assert_int_equal(rec(SA(c), TFO__EV_COOKIE_GRANTED, 0), 0);
  assert_int_equal(look(SA(c), &v), 0);
  assert_int_equal(v.skip, 0);
  assert_int_equal(v.failures, 0);
  assert_int_equal(v.expires_ms, 0);
  assert_int_equal(v.last, TFO__EV_COOKIE_GRANTED);
  assert_int_equal(rec(SA(c), TFO__EV_BLACKHOLE, 0), 0);
  assert_int_equal(look(SA(c), &v), 0);
  assert_int_equal(v.expires_ms, t + 4 * TFO__CACHE_TTL_BASE_MS);

  /* ...and restarts the soft count. */
  assert_int_equal(rec(SA(s), TFO__EV_NO_COOKIE, 0), 0);
  assert_int_equal(rec(SA(s), TFO__EV_NO_COOKIE, 0), 0);
  assert_int_equal(rec(SA(s), TFO__EV_COOKIE_GRANTED, 0), 0);
  assert_int_equal(rec(SA(s), TFO__EV_DATA_NOT_ACKED, 0), 0);
  assert_int_equal(rec(SA(s), TFO__EV_DATA_NOT_ACKED, 0), 0);
  assert_int_equal(look(SA(s), &v), 0);
  assert_int_equal(v.skip, 0);
  assert_int_equal(v.failures, 2);
}

static void rtt_is_smoothed(void **state) {
  struct sockaddr_in a = sin4("192.0.2.10", 80);
  struct tfo__verdict v;

  (void)state;
  assert_int_equal(rec(SA(a), TFO__EV_COOKIE_GRANTED, 0), 0);
  assert_int_equal(look(SA(a), &v), 0);
  assert_int_equal(v.rtt_us, 0);
  assert_int_equal(rec(SA(a), TFO__EV_DATA_ACKED, 10000), 0);
  assert_int_equal(look(SA(a), &v), 0);
  assert_int_equal(v.rtt_us, 10000);
  assert_int_equal(rec(SA(a), TFO__EV_DATA_ACKED, 20000), 0);
  assert_int_equal(look(SA(a), &v), 0);
  assert_int_equal(v.rtt_us, 12500); /* (3 * 10000 + 20000) / 4 */
  assert_int_equal(rec(SA(a), TFO__EV_DATA_ACKED, 0), 0); /* unknown: kept */
  assert_int_equal(look(SA(a), &v), 0);
  assert_int_equal(v.rtt_us, 12500);
  /* The plain connect after a blackhole measured the path too. */
  assert_int_equal(rec(SA(a), TFO__EV_BLACKHOLE, 52500), 0);
  assert_int_equal(look(SA(a), &v), 0);
  assert_int_equal(v.rtt_us, 22500);
  /* Absurd values are ignored. */
  assert_int_equal(rec(SA(a), TFO__EV_DATA_ACKED, TFO__CACHE_RTT_MAX_US + 1),
                   0);
  assert_int_equal(look(SA(a), &v), 0);
  assert_int_equal(v.rtt_us, 22500);
}

/* Below the fallback delay's floor (3 RTT < TFO__FALLBACK_MIN_MS) the RTT
 * changes nothing a connect does: a good destination's entry is left as it
 * is (no file lock, no write) until the RTT rises above it. */
static void rtt_below_floor_is_not_rewritten(void **state) {
  struct sockaddr_in a = sin4("192.0.2.12", 80);
  struct tfo__verdict v;

  (void)state;
  assert_int_equal(rec(SA(a), TFO__EV_DATA_ACKED, 1000), 0);
  assert_int_equal(rec(SA(a), TFO__EV_DATA_ACKED, 2000), 0);
  assert_int_equal(look(SA(a), &v), 0);
  assert_int_equal(v.rtt_us, 1000);
  assert_int_equal(rec(SA(a), TFO__EV_DATA_ACKED, 10000), 0);
  assert_int_equal(look(SA(a), &v), 0);
  assert_int_equal(v.rtt_us, 3250); /* (3 * 1000 + 10000) / 4 */
}

static void old_entries_are_forgotten(void **state) {
  struct sockaddr_in a = sin4("192.0.2.11", 80);
  struct tfo__verdict v;

  (void)state;
  assert_int_equal(rec(SA(a), TFO__EV_DATA_ACKED, 100), 0);
  set_now(T0 + TFO__CACHE_MAX_AGE_MS);
  assert_int_equal(look(SA(a), &v), 0);
  set_now(T0 + TFO__CACHE_MAX_AGE_MS + 1);
  assert_unknown(SA(a));
  assert_int_equal(count_entries(), 0);
  /* The stale slot is reused, not duplicated. */
  assert_int_equal(rec(SA(a), TFO__EV_NO_COOKIE, 0), 0);
  assert_int_equal(look(SA(a), &v), 0);
  assert_int_equal(v.rtt_us, 0);
  assert_int_equal(v.failures, 1);
}

/* --- forget, clear, foreach, off ------------------------------------------ */

static void forget_and_clear(void **state) {
  struct fx *f = *state;
  struct sockaddr_in a = sin4("192.0.2.1", 80), b = sin4("192.0.2.2", 80);
  struct sockaddr_in6 c = sin6("2001:db8::3", 80, 0),
                      am = sin6("::ffff:192.0.2.1", 80, 0);
  struct tfo__verdict v;

  assert_int_equal(rec(SA(a), TFO__EV_BLACKHOLE, 0), 0);
  assert_int_equal(rec(SA(b), TFO__EV_DATA_ACKED, 9), 0);
  assert_int_equal(rec(SA(c), TFO__EV_RESET, 0), 0);
  assert_int_equal(count_entries(), 3);
  assert_int_equal(tfo__cache_forget(SA(am)), 0); /* mapped form of a */
  assert_unknown(SA(a));
  assert_int_equal(look(SA(b), &v), 0);
  assert_int_equal(look(SA(c), &v), 0);
  assert_int_equal(tfo__cache_forget(SA(a)), 0); /* unknown: still fine */
  assert_int_equal(count_entries(), 2);
  assert_int_equal(raw_check(f->path), 2);
  assert_int_equal(tfo__cache_clear(), 0);
  assert_unknown(SA(b));
  assert_unknown(SA(c));
  assert_int_equal(count_entries(), 0);
  assert_int_equal(raw_check(f->path), 0);
  /* Usable afterwards. */
  assert_int_equal(rec(SA(b), TFO__EV_DATA_ACKED, 9), 0);
  assert_int_equal(look(SA(b), &v), 0);
  assert_int_equal(v.rtt_us, 9);
}

struct seen {
  unsigned n;
  int v4, v6, ll;
  int stop_after;
};

static int collect_cb(const struct sockaddr *sa, socklen_t len,
                      const struct tfo__verdict *v, void *arg) {
  struct seen *s = arg;

  s->n++;
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const void *)sa;
    assert_int_equal(len, sizeof(*in));
    assert_int_equal(ntohs(in->sin_port), 80);
    assert_int_equal(ntohl(in->sin_addr.s_addr), 0xc0000201); /* 192.0.2.1 */
    assert_int_equal(v->last, TFO__EV_BLACKHOLE);
    assert_int_equal(v->skip, 1);
    assert_int_equal(v->failures, 1);
    assert_int_equal(v->expires_ms, T0 + TFO__CACHE_TTL_BASE_MS);
    s->v4++;
  } else if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const void *)sa;
    char buf[INET6_ADDRSTRLEN];
    assert_int_equal(len, sizeof(*in6));
    inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof(buf));
    if (strcmp(buf, "fe80::1") == 0) {
      assert_int_equal(in6->sin6_scope_id, 4);
      assert_int_equal(ntohs(in6->sin6_port), 22);
      assert_int_equal(v->last, TFO__EV_COOKIE_GRANTED);
      s->ll++;
    } else {
      assert_string_equal(buf, "2001:db8::1");
      assert_int_equal(in6->sin6_scope_id, 0);
      assert_int_equal(ntohs(in6->sin6_port), 443);
      assert_int_equal(v->last, TFO__EV_DATA_ACKED);
      assert_int_equal(v->rtt_us, 777);
      assert_int_equal(v->skip, 0);
      s->v6++;
    }
  } else {
    fail_msg("family %d", sa->sa_family);
  }
  return s->stop_after != 0 && (int)s->n == s->stop_after ? 99 : 0;
}

static void foreach_lists_entries(void **state) {
  struct sockaddr_in6 m = sin6("::ffff:192.0.2.1", 80, 0),
                      g = sin6("2001:db8::1", 443, 9),
                      ll = sin6("fe80::1", 22, 4);
  struct seen s;

  (void)state;
  assert_int_equal(rec(SA(m), TFO__EV_BLACKHOLE, 0), 0);
  assert_int_equal(rec(SA(g), TFO__EV_DATA_ACKED, 777), 0);
  assert_int_equal(rec(SA(ll), TFO__EV_COOKIE_GRANTED, 0), 0);
  memset(&s, 0, sizeof(s));
  assert_int_equal(tfo__cache_foreach(collect_cb, &s), 0);
  assert_int_equal(s.n, 3);
  assert_int_equal(s.v4, 1);
  assert_int_equal(s.v6, 1);
  assert_int_equal(s.ll, 1);
  /* A non-zero return stops the walk and is passed back. */
  memset(&s, 0, sizeof(s));
  s.stop_after = 2;
  assert_int_equal(tfo__cache_foreach(collect_cb, &s), 99);
  assert_int_equal(s.n, 2);
}

static int forget_cb(const struct sockaddr *sa, socklen_t len,
                     const struct tfo__verdict *v, void *arg) {
  (void)v;
  (void)arg;
  /* No lock is held during the callback: writing from it must not hang. */
  assert_int_equal(tfo__cache_forget(sa, len), 0);
  return 0;
}

static void foreach_callback_may_write(void **state) {
  unsigned i;

  (void)state;
  for (i = 0; i < 200; i++) {
    struct sockaddr_in a = nth4(3, i);
    assert_int_equal(rec(SA(a), TFO__EV_DATA_ACKED, i), 0);
  }
  assert_int_equal(count_entries(), 200);
  assert_int_equal(tfo__cache_foreach(forget_cb, NULL), 0);
  assert_int_equal(count_entries(), 0);
}

static void off_disables(void **state) {
  struct fx *f = *state;
  struct sockaddr_in a = sin4("192.0.2.1", 80), b = sin4("192.0.2.2", 80);
  struct tfo__verdict v;

  assert_int_equal(rec(SA(a), TFO__EV_BLACKHOLE, 0), 0);
  assert_int_equal(tfo__cache_configure("off"), 0);
  assert_null(tfo__cache_path());
  assert_unknown(SA(a));
  errno = 0;
  assert_int_equal(rec(SA(b), TFO__EV_BLACKHOLE, 0), 0);
  assert_int_equal(errno, 0);
  assert_unknown(SA(b));
  assert_int_equal(tfo__cache_forget(SA(a)), 0);
  assert_int_equal(tfo__cache_clear(), 0);
  assert_int_equal(count_entries(), 0);
  /* Input is still checked. */
  assert_int_equal(rec(NULL, 0, TFO__EV_BLACKHOLE, 0), -1);
  /* The file was not touched while off. */
  assert_int_equal(tfo__cache_configure(f->path), 0);
  assert_int_equal(look(SA(a), &v), 0);
  assert_int_equal(v.last, TFO__EV_BLACKHOLE);
  assert_unknown(SA(b));
}

/* --- persistence and location --------------------------------------------- */

static void persists_across_reopen(void **state) {
  struct fx *f = *state;
  struct sockaddr_in a = sin4("192.0.2.1", 80), b = sin4("192.0.2.2", 80);
  struct tfo__verdict v;
  struct stat sb;
  char other[160];
  pid_t pid;
  int st;

  assert_int_equal(rec(SA(a), TFO__EV_BLACKHOLE, 1234), 0);
  assert_int_equal(stat(f->path, &sb), 0);
  assert_int_equal(sb.st_mode & 07777, 0600);
  assert_int_equal(sb.st_size, (off_t)TFO__CACHE_FILE_SIZE);
  /* A later "process": everything reopened from the file. */
  assert_int_equal(tfo__cache_configure(f->path), 0);
  assert_int_equal(look(SA(a), &v), 0);
  assert_int_equal(v.last, TFO__EV_BLACKHOLE);
  assert_int_equal(v.rtt_us, 1234);
  assert_int_equal(v.skip, 1);
  /* Another process records; we see it without reopening. */
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0)
    _exit(rec(SA(b), TFO__EV_RESET, 5) == 0 ? 0 : 1);
  assert_int_equal(waitpid(pid, &st, 0), pid);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  assert_int_equal(look(SA(b), &v), 0);
  assert_int_equal(v.last, TFO__EV_RESET);
  /* Another file is another table; switching back finds ours again. */
  snprintf(other, sizeof(other), "%s/other", f->dir);
  assert_int_equal(tfo__cache_configure(other), 0);
  assert_unknown(SA(a));
  assert_string_equal(tfo__cache_path(), other);
  assert_int_equal(tfo__cache_configure(f->path), 0);
  assert_int_equal(look(SA(a), &v), 0);
  assert_int_equal(raw_check(f->path), 2);
}

/* The number of the cache's fd, from /proc/self/fd; -1 if none names it. */
static int cache_fd_number(const char *path) {
  char link[64], target[256];
  ssize_t n;
  int fd;

  for (fd = 0; fd < 1024; fd++) {
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    n = readlink(link, target, sizeof(target) - 1);
    if (n <= 0)
      continue;
    target[n] = '\0';
    if (strcmp(target, path) == 0)
      return fd;
  }
  return -1;
}

/* The program owns the fd table: a shell's `exec 4>file` may dup2 over the
 * cache's fd, a close-everything loop may close it. The program's file at
 * that number is never locked, truncated or closed by us, and later
 * updates still reach the cache file. */
static void program_takes_the_fd(void **state) {
  struct fx *f = *state;
  struct sockaddr_in a = sin4("192.0.2.1", 80), b = sin4("192.0.2.2", 80),
                     c = sin4("192.0.2.3", 80);
  struct tfo__verdict v;
  struct stat sb;
  char user[160], buf[16];
  int cfd, ufd;

  assert_int_equal(rec(SA(a), TFO__EV_BLACKHOLE, 100), 0);
  cfd = cache_fd_number(f->path);
  assert_true(cfd >= 0);
  /* dup2 over it: the number now names the program's 5-byte file. */
  snprintf(user, sizeof(user), "%s/user", f->dir);
  ufd = open(user, O_RDWR | O_CREAT | O_TRUNC, 0600);
  assert_true(ufd >= 0);
  assert_int_equal(write(ufd, "hello", 5), 5);
  assert_int_equal(dup2(ufd, cfd), cfd);
  close(ufd);
  assert_int_equal(rec(SA(b), TFO__EV_RESET, 100), 0);
  assert_int_equal(fstat(cfd, &sb), 0);
  assert_int_equal(sb.st_size, 5); /* not grown to the table's size */
  assert_int_equal(pread(cfd, buf, sizeof(buf), 0), 5);
  assert_memory_equal(buf, "hello", 5);
  assert_int_equal(raw_check(f->path), 2); /* b reached the file */
  /* Another configuration closes the table, not the program's fd. */
  assert_int_equal(tfo__cache_configure(f->path), 0);
  assert_int_equal(fstat(cfd, &sb), 0);
  assert_int_equal(sb.st_size, 5);
  close(cfd);
  /* Closed behind our back (closefrom): opened again on the next update. */
  assert_int_equal(rec(SA(c), TFO__EV_RESET, 100), 0); /* opens it */
  cfd = cache_fd_number(f->path);
  assert_true(cfd >= 0);
  close(cfd);
  assert_int_equal(rec(SA(c), TFO__EV_BLACKHOLE, 100), 0);
  assert_int_equal(look(SA(c), &v), 0);
  assert_int_equal(v.last, TFO__EV_BLACKHOLE);
  assert_int_equal(raw_check(f->path), 3);
  /* Lost, and the file replaced meanwhile: the mapping is of the old one,
   * so updates are refused rather than written where nobody reads them. */
  close(cache_fd_number(f->path));
  assert_int_equal(unlink(f->path), 0);
  ufd = open(f->path, O_RDWR | O_CREAT | O_EXCL, 0600);
  assert_true(ufd >= 0);
  close(ufd);
  errno = 0;
  assert_int_equal(rec(SA(a), TFO__EV_RESET, 100), -1);
  assert_int_equal(errno, ESTALE);
  assert_int_equal(stat(f->path, &sb), 0);
  assert_int_equal(sb.st_size, 0); /* the newcomer untouched */
}

/* In a child with a private, empty /run: configure(NULL) with
 * XDG_RUNTIME_DIR = xdg (NULL: unset). mode 0: root, expect
 * /run/libtfo/cache; 1: root, xdg handed to nobody first, same expectation;
 * NOBODY: run as that user, expect a memory table. */
static void fallback_child(struct fx *f, const char *xdg, unsigned mode) {
  struct sockaddr_in a = sin4("192.0.2.1", 80);
  struct tfo__verdict v;
  struct stat sb;
  const char *p;
  pid_t pid;
  int st;

  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    if (unshare(CLONE_NEWNS) != 0 ||
        mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("tmpfs", "/run", "tmpfs", 0, "mode=0755") != 0)
      _exit(77);
    if (xdg != NULL)
      setenv("XDG_RUNTIME_DIR", xdg, 1);
    else
      unsetenv("XDG_RUNTIME_DIR");
    if (mode == 1 && chown(f->dir, NOBODY, NOBODY) != 0)
      _exit(10);
    if (mode == NOBODY && (setgid(NOBODY) != 0 || setuid(NOBODY) != 0))
      _exit(11);
    tfo__cache_configure(NULL);
    if (rec(SA(a), TFO__EV_RESET, 0) != 0 || look(SA(a), &v) != 0 ||
        v.last != TFO__EV_RESET)
      _exit(12);
    p = tfo__cache_path();
    if (mode == NOBODY)
      _exit(p == NULL && access("/run/libtfo", F_OK) != 0 ? 0 : 13);
    if (p == NULL || strcmp(p, "/run/libtfo/cache") != 0)
      _exit(14);
    if (stat("/run/libtfo", &sb) != 0 || (sb.st_mode & 07777) != 0700 ||
        stat(p, &sb) != 0 || (sb.st_mode & 07777) != 0600)
      _exit(15);
    _exit(0);
  }
  assert_int_equal(waitpid(pid, &st, 0), pid);
  if (mode == 1)
    assert_int_equal(chown(f->dir, 0, 0), 0);
  assert_true(WIFEXITED(st));
  if (WEXITSTATUS(st) == 77) {
    print_message("(no private mount namespace: /run fallback unchecked)\n");
    return;
  }
  assert_int_equal(WEXITSTATUS(st), 0);
}

static void default_location(void **state) {
  struct fx *f = *state;
  struct sockaddr_in a = sin4("192.0.2.1", 80), h = sin4("192.0.2.9", 80);
  struct tfo__verdict v;
  char want[160], dir[160];
  const char *old = getenv("XDG_RUNTIME_DIR");
  char *saved = old ? strdup(old) : NULL;
  struct stat sb;

  snprintf(dir, sizeof(dir), "%s/libtfo", f->dir);
  snprintf(want, sizeof(want), "%s/libtfo/cache", f->dir);
  setenv("XDG_RUNTIME_DIR", f->dir, 1);
  assert_int_equal(tfo__cache_configure(NULL), 0);
  assert_int_equal(rec(SA(a), TFO__EV_RESET, 0), 0);
  assert_string_equal(tfo__cache_path(), want);
  assert_int_equal(stat(dir, &sb), 0);
  assert_true(S_ISDIR(sb.st_mode));
  assert_int_equal(sb.st_mode & 07777, 0700);
  assert_int_equal(stat(want, &sb), 0);
  assert_int_equal(sb.st_mode & 07777, 0600);
  /* The lazy open inside these calls meets EEXIST and the like: none of
   * it may leak into errno on success. */
  assert_int_equal(tfo__cache_configure(NULL), 0);
  errno = 4242;
  assert_int_equal(look(SA(a), &v), 0);
  assert_int_equal(errno, 4242);
  assert_int_equal(tfo__cache_configure(NULL), 0);
  assert_int_equal(rec(SA(a), TFO__EV_RESET, 0), 0);
  assert_int_equal(errno, 4242);
  assert_int_equal(tfo__cache_configure(NULL), 0);
  assert_int_equal(tfo__cache_forget(SA(h)), 0);
  assert_int_equal(errno, 4242);
  assert_int_equal(tfo__cache_configure(NULL), 0);
  assert_int_equal(count_entries(), 1);
  assert_int_equal(errno, 4242);
  assert_int_equal(tfo__cache_configure(NULL), 0);
  assert_string_equal(tfo__cache_path(), want);
  assert_int_equal(errno, 4242);
  assert_int_equal(tfo__cache_configure(NULL), 0);
  assert_int_equal(tfo__cache_clear(), 0);
  assert_int_equal(errno, 4242);
  assert_int_equal(rec(SA(a), TFO__EV_RESET, 0), 0);

  /* A directory others may write into is not trusted. */
  assert_int_equal(chmod(dir, 0777), 0);
  assert_int_equal(tfo__cache_configure(NULL), 0);
  assert_unknown(SA(a));
  assert_null(tfo__cache_path());
  assert_int_equal(rec(SA(a), TFO__EV_DATA_ACKED, 0), 0); /* memory table */
  assert_int_equal(look(SA(a), &v), 0);
  assert_int_equal(v.last, TFO__EV_DATA_ACKED);
  /* Nor one owned by someone else. */
  assert_int_equal(chmod(dir, 0700), 0);
  if (geteuid() == 0) {
    assert_int_equal(chown(dir, NOBODY, NOBODY), 0);
    assert_int_equal(tfo__cache_configure(NULL), 0);
    assert_unknown(SA(a));
    assert_null(tfo__cache_path());
    assert_int_equal(chown(dir, 0, 0), 0);
  }
  /* Nor a symlink in its place. */
  {
    char moved[180];
    snprintf(moved, sizeof(moved), "%s/real", f->dir);
    assert_int_equal(rename(dir, moved), 0);
    assert_int_equal(symlink(moved, dir), 0);
    assert_int_equal(tfo__cache_configure(NULL), 0);
    assert_unknown(SA(a));
    assert_null(tfo__cache_path());
  }
  assert_int_equal(unlink(dir), 0);
  tfo__cache_configure("off");
  /* Where root without a usable XDG_RUNTIME_DIR and an ordinary user
   * without one end up; in children, under a private /run. */
  if (geteuid() == 0) {
    fallback_child(f, NULL, 0);      /* unset: /run/libtfo */
    fallback_child(f, f->dir, 1);    /* not ours (su keeps the caller's) */
    fallback_child(f, NULL, NOBODY); /* a user without one: memory */
    assert_int_equal(access(dir, F_OK), -1); /* nothing planted there */
  }
  if (saved) {
    setenv("XDG_RUNTIME_DIR", saved, 1);
    free(saved);
  } else {
    unsetenv("XDG_RUNTIME_DIR");
  }
}

/* --- damaged files -------------------------------------------------------- */

static void corrupt_files_are_rebuilt(void **state) {
  struct fx *f = *state;
  struct sockaddr_in a = sin4("192.0.2.1", 80), b = sin4("192.0.2.2", 80);
  struct tfo__verdict v;
  unsigned char *junk = malloc(TFO__CACHE_FILE_SIZE + 4096);
  size_t i;
  int kind;

  assert_non_null(junk);
  srand(1);
  for (i = 0; i < TFO__CACHE_FILE_SIZE + 4096; i++)
    junk[i] = (unsigned char)rand();
  for (kind = 0; kind < 7; kind++) {
    /* Start from a good file holding a. */
    tfo__cache_configure("off");
    unlink(f->path);
    assert_int_equal(tfo__cache_configure(f->path), 0);
    assert_int_equal(rec(SA(a), TFO__EV_BLACKHOLE, 0), 0);
    tfo__cache_configure("off");
    switch (kind) {
      case 0: /* garbage of the right size */
        write_file(f->path, junk, TFO__CACHE_FILE_SIZE, 0600);
        break;
      case 1: /* truncated */
        assert_int_equal(truncate(f->path, 1000), 0);
        break;
      case 2: /* truncated, header intact, tail lost */
        assert_int_equal(truncate(f->path, TFO__CACHE_FILE_SIZE / 2), 0);
        break;
      case 3: /* too long */
        assert_int_equal(truncate(f->path, TFO__CACHE_FILE_SIZE + 4096), 0);
        break;
      case 4: /* another version */
        raw_put(f->path, 8, 2 | (uint64_t)TFO__CACHE_HDR_SIZE << 32);
        break;
      case 5: /* wrong magic */
        raw_put(f->path, 0, UINT64_C(0x0123456789abcdef));
        break;
      case 6: /* empty file */
        write_file(f->path, NULL, 0, 0600);
        break;
    }
    assert_int_equal(tfo__cache_configure(f->path), 0);
    assert_unknown(SA(a));
    assert_string_equal(tfo__cache_path(), f->path); /* file, not memory */
    assert_int_equal(file_size(f->path), (off_t)TFO__CACHE_FILE_SIZE);
    assert_int_equal(rec(SA(b), TFO__EV_RESET, 0), 0);
    assert_int_equal(look(SA(b), &v), 0);
    assert_int_equal(v.last, TFO__EV_RESET);
    assert_int_equal(count_entries(), 1);
    assert_int_equal(raw_check(f->path), 1);
  }
  free(junk);
}

static void damaged_while_in_use(void **state) {
  struct fx *f = *state;
  struct sockaddr_in a = sin4("192.0.2.1", 80), b = sin4("192.0.2.2", 80);
  struct tfo__verdict v;

  assert_int_equal(rec(SA(a), TFO__EV_BLACKHOLE, 0), 0);
  /* Another program scribbles over the header: readers stop trusting the
   * table at once, the next writer rebuilds it. */
  raw_put(f->path, 0, 0);
  assert_unknown(SA(a));
  assert_int_equal(count_entries(), 0);
  assert_int_equal(rec(SA(b), TFO__EV_DATA_ACKED, 0), 0);
  assert_int_equal(look(SA(b), &v), 0);
  assert_unknown(SA(a));
  assert_int_equal(raw_check(f->path), 1);
}

static void hostile_fields_are_clamped(void **state) {
  struct fx *f = *state;
  struct sockaddr_in a = sin4("192.0.2.1", 4001), b = sin4("192.0.2.1", 4002),
                     c = sin4("192.0.2.1", 4003), d = sin4("192.0.2.1", 4004),
                     e = sin4("192.0.2.1", 4005), g = sin4("192.0.2.1", 4006);
  struct tfo__verdict v;
  long sa, sb, sc, sd, se, sg;
  uint64_t w7;

  set_now(T0);
  assert_int_equal(rec(SA(a), TFO__EV_DATA_ACKED, 10), 0);
  assert_int_equal(rec(SA(b), TFO__EV_DATA_ACKED, 10), 0);
  assert_int_equal(rec(SA(c), TFO__EV_DATA_ACKED, 10), 0);
  assert_int_equal(rec(SA(d), TFO__EV_DATA_ACKED, 10), 0);
  assert_int_equal(rec(SA(e), TFO__EV_DATA_ACKED, 10), 0);
  assert_int_equal(rec(SA(g), TFO__EV_DATA_ACKED, 10), 0);
  sa = raw_find_port(f->path, 4001);
  sb = raw_find_port(f->path, 4002);
  sc = raw_find_port(f->path, 4003);
  sd = raw_find_port(f->path, 4004);
  se = raw_find_port(f->path, 4005);
  sg = raw_find_port(f->path, 4006);
  assert_true(sa >= 0 && sb >= 0 && sc >= 0 && sd >= 0 && se >= 0 && sg >= 0);

  /* a: updated ten years from now: not obeyed, slot reused. */
  raw_put(f->path, slot_off(sa, 6), (uint64_t)(T0 + 3650 * DAY_MS));
  raw_put(f->path, slot_off(sa, 5), (uint64_t)(T0 + 3650 * DAY_MS));
  assert_unknown(SA(a));
  assert_int_equal(rec(SA(a), TFO__EV_NO_COOKIE, 0), 0);
  assert_int_equal(look(SA(a), &v), 0);
  assert_int_equal(v.failures, 1);
  assert_int_equal(v.skip, 0);
  assert_int_equal(raw_find_port(f->path, 4001), sa);

  /* b: skip until year 2300: at most a day from its last update. */
  raw_put(f->path, slot_off(sb, 5), UINT64_C(10000000000000));
  assert_int_equal(look(SA(b), &v), 0);
  assert_int_equal(v.skip, 1);
  assert_int_equal(v.expires_ms, T0 + TFO__CACHE_TTL_MAX_MS);
  set_now(T0 + TFO__CACHE_TTL_MAX_MS);
  assert_int_equal(look(SA(b), &v), 0);
  assert_int_equal(v.skip, 0);
  set_now(T0);

  /* c: absurd failures, back-off exponent and RTT. */
  w7 = (uint64_t)UINT32_MAX | (uint64_t)60000 << 32 | (uint64_t)200 << 48 |
       (uint64_t)TFO__EV_RESET << 56;
  raw_put(f->path, slot_off(sc, 7), w7);
  assert_int_equal(look(SA(c), &v), 0);
  assert_int_equal(v.failures, TFO__CACHE_FAILURES_MAX);
  assert_int_equal(v.rtt_us, 0);
  assert_int_equal(v.last, TFO__EV_RESET);
  assert_int_equal(rec(SA(c), TFO__EV_BLACKHOLE, 0), 0);
  assert_int_equal(look(SA(c), &v), 0);
  assert_int_equal(v.expires_ms, T0 + TFO__CACHE_TTL_MAX_MS);
  assert_int_equal(v.failures, TFO__CACHE_FAILURES_MAX);

  /* d: unknown event; e: IPv4 family with a non-mapped address; g: negative
   * expiry. */
  raw_put(f->path, slot_off(sd, 7), (uint64_t)99 << 56);
  assert_unknown(SA(d));
  raw_put(f->path, slot_off(se, 1), UINT64_C(0x1234));
  assert_unknown(SA(e));
  raw_put(f->path, slot_off(sg, 5), (uint64_t)INT64_MIN);
  assert_int_equal(look(SA(g), &v), 0);
  assert_int_equal(v.skip, 0);
  assert_int_equal(v.expires_ms, 0);
  /* Writers fix what they touch. */
  assert_int_equal(rec(SA(d), TFO__EV_DATA_ACKED, 0), 0);
  assert_int_equal(look(SA(d), &v), 0);
  assert_int_equal(rec(SA(e), TFO__EV_DATA_ACKED, 0), 0);
  assert_int_equal(look(SA(e), &v), 0);
  assert_int_equal(raw_check(f->path), 6);
}

static int sane_cb(const struct sockaddr *sa, socklen_t len,
                   const struct tfo__verdict *v, void *arg) {
  int64_t now = get_now();

  assert_true(sa->sa_family == AF_INET || sa->sa_family == AF_INET6);
  assert_true(len == sizeof(struct sockaddr_in) ||
              len == sizeof(struct sockaddr_in6));
  assert_true(v->last >= TFO__EV_DATA_ACKED && v->last <= TFO__EV_RESET);
  assert_true(v->failures <= TFO__CACHE_FAILURES_MAX);
  assert_true(v->rtt_us <= TFO__CACHE_RTT_MAX_US);
  assert_true(v->expires_ms >= 0);
  assert_true(v->expires_ms <=
              now + TFO__CACHE_CLOCK_SLACK_MS + TFO__CACHE_TTL_MAX_MS);
  ++*(unsigned *)arg;
  return 0;
}

static void garbage_slots_never_crash(void **state) {
  struct fx *f = *state;
  struct sockaddr_in probe = sin4("192.0.2.99", 4999);
  struct tfo__verdict v;
  long ns_slot;
  unsigned char *junk = malloc(TFO__CACHE_FILE_SIZE);
  uint64_t *b;
  unsigned i, n = 0;
  int fd;

  assert_non_null(junk);
  /* One real entry, to learn how this netns is written. */
  assert_int_equal(rec(SA(probe), TFO__EV_DATA_ACKED, 0), 0);
  ns_slot = raw_find_port(f->path, 4999);
  assert_true(ns_slot >= 0);
  /* Valid header, random slots; then every slot made plausible enough to
   * pass the family and event checks, half of them with an even seq. */
  srand(2);
  for (i = 0; i < TFO__CACHE_FILE_SIZE; i++)
    junk[i] = (unsigned char)rand();
  b = (uint64_t *)junk;
  for (i = 0; i < TFO__CACHE_SLOTS; i++) {
    uint64_t *s = b + 8 + i * 8;
    if (i % 2) {
      s[0] = (s[0] & ~(UINT64_C(0xff) << 48 | UINT64_C(0xff) << 56 | 1)) |
             (uint64_t)(i % 4 == 1 ? 6 : 4) << 48;
      s[7] = (s[7] & ~(UINT64_C(0xff) << 56)) | (uint64_t)(1 + i % 6) << 56;
      s[6] = (uint64_t)(T0 - (int64_t)(s[6] % (2 * DAY_MS)));
      if (i % 4 == 3) { /* an IPv4 key needs the mapped prefix */
        s[1] = 0;
        s[2] = (s[2] & ~UINT64_C(0xffffffff)) | UINT64_C(0xffff0000);
      }
    }
  }
  /* Keep the valid header; give the plausible slots our netns. */
  {
    uint64_t *h = raw_load(f->path);
    memcpy(b, h, 64);
    for (i = 0; i < TFO__CACHE_SLOTS; i++) {
      uint64_t *s = b + 8 + i * 8;
      if (i % 2) {
        s[3] = raw_slot(h, ns_slot)[3];
        s[4] = (s[4] & ~UINT64_C(0xffffffff)) |
               (raw_slot(h, ns_slot)[4] & UINT64_C(0xffffffff));
      }
    }
    free(h);
  }
  fd = open(f->path, O_WRONLY);
  assert_true(fd >= 0);
  assert_int_equal(pwrite(fd, junk, TFO__CACHE_FILE_SIZE, 0),
                   (ssize_t)TFO__CACHE_FILE_SIZE);
  close(fd);
  free(junk);

  assert_int_equal(tfo__cache_foreach(sane_cb, &n), 0);
  assert_true(n > 1000); /* the plausible ones really were read */
  for (i = 0; i < 300; i++) {
    struct sockaddr_in a = nth4(5, i);
    assert_int_equal(rec(SA(a), TFO__EV_DATA_NOT_ACKED, i + 1), 0);
  }
  for (i = 0; i < 300; i++) {
    struct sockaddr_in a = nth4(5, i);
    assert_int_equal(look(SA(a), &v), 0);
    assert_int_equal(v.rtt_us, i + 1);
    assert_int_equal(v.failures, 1);
  }
  n = 0;
  assert_int_equal(tfo__cache_foreach(sane_cb, &n), 0);
}

static void dead_writer_slot_is_repaired(void **state) {
  struct fx *f = *state;
  struct sockaddr_in a = sin4("192.0.2.1", 4100);
  struct tfo__verdict v;
  uint64_t w0;
  long s;

  assert_int_equal(rec(SA(a), TFO__EV_BLACKHOLE, 0), 0);
  s = raw_find_port(f->path, 4100);
  assert_true(s >= 0);
  /* A writer died between its two seq increments. */
  w0 = raw_get(f->path, slot_off(s, 0));
  raw_put(f->path, slot_off(s, 0), w0 + 1);
  assert_unknown(SA(a)); /* bounded retries, then "not known" */
  assert_int_equal(count_entries(), 0);
  assert_int_equal(rec(SA(a), TFO__EV_DATA_ACKED, 0), 0);
  assert_int_equal(look(SA(a), &v), 0);
  assert_int_equal(v.last, TFO__EV_DATA_ACKED);
  assert_int_equal(raw_check(f->path), 1);
}

/* --- hostile files -------------------------------------------------------- */

/* The file at f->path must be refused: memory table, file left untouched. */
static void assert_refused(struct fx *f, const char *spec, off_t size) {
  struct sockaddr_in a = sin4("192.0.2.1", 80);
  struct tfo__verdict v;

  assert_int_equal(tfo__cache_configure(spec), 0);
  assert_unknown(SA(a));
  assert_null(tfo__cache_path());
  assert_int_equal(rec(SA(a), TFO__EV_BLACKHOLE, 0), 0);
  assert_int_equal(look(SA(a), &v), 0); /* the memory table works */
  assert_int_equal(v.last, TFO__EV_BLACKHOLE);
  if (size >= 0)
    assert_int_equal(file_size(f->path), size);
  tfo__cache_configure("off");
}

static void hostile_files_are_refused(void **state) {
  struct fx *f = *state;
  char lnk[160], real[160];
  struct stat sb;

  tfo__cache_configure("off");
  snprintf(lnk, sizeof(lnk), "%s/link", f->dir);
  snprintf(real, sizeof(real), "%s/real", f->dir);

  /* World- and group-writable. */
  write_file(f->path, NULL, 0, 0666);
  assert_refused(f, f->path, 0);
  write_file(f->path, NULL, 0, 0620);
  assert_refused(f, f->path, 0);
  unlink(f->path);
  /* Someone else's (only root can make one). */
  if (geteuid() == 0) {
    write_file(f->path, NULL, 0, 0600);
    assert_int_equal(chown(f->path, NOBODY, NOBODY), 0);
    assert_refused(f, f->path, 0);
    unlink(f->path);
  }
  /* A symlink, even to a good file of ours. */
  write_file(real, NULL, 0, 0600);
  assert_int_equal(symlink(real, lnk), 0);
  assert_refused(f, lnk, -1);
  assert_int_equal(file_size(real), 0);
  /* A second hard link. */
  assert_int_equal(link(real, f->path), 0);
  assert_refused(f, f->path, 0);
  unlink(f->path);
  /* A FIFO (must not hang) and a directory. */
  assert_int_equal(mkfifo(f->path, 0600), 0);
  assert_refused(f, f->path, -1);
  unlink(f->path);
  assert_int_equal(mkdir(f->path, 0700), 0);
  assert_refused(f, f->path, -1);
  rmdir(f->path);
  /* Ours and merely readable by others: used, and tightened. */
  write_file(f->path, NULL, 0, 0644);
  assert_int_equal(tfo__cache_configure(f->path), 0);
  assert_string_equal(tfo__cache_path(), f->path);
  assert_int_equal(stat(f->path, &sb), 0);
  assert_int_equal(sb.st_mode & 07777, 0600);
}

/* --- bounds --------------------------------------------------------------- */

static void table_is_bounded(void **state) {
  struct fx *f = *state;
  const unsigned skipping = 1024, many = 2 * TFO__CACHE_SLOTS + 8192,
                 recent = 2048;
  struct tfo__verdict v;
  unsigned i, n, early = 0;

  /* Blackholed destinations first, so they are the oldest... */
  set_now(T0);
  for (i = 0; i < skipping; i++) {
    struct sockaddr_in a = nth4(7, i);
    assert_int_equal(rec(SA(a), TFO__EV_BLACKHOLE, 0), 0);
  }
  /* ...then far more good ones than there are slots, 1 ms apart. */
  for (i = 0; i < many; i++) {
    struct sockaddr_in6 b = sin6("2001:db8::", 443, 0);
    b.sin6_addr.s6_addr[12] = (uint8_t)(i >> 24);
    b.sin6_addr.s6_addr[13] = (uint8_t)(i >> 16);
    b.sin6_addr.s6_addr[14] = (uint8_t)(i >> 8);
    b.sin6_addr.s6_addr[15] = (uint8_t)i;
    set_now(T0 + 1 + i);
    assert_int_equal(rec(SA(b), TFO__EV_DATA_ACKED, 100 + i % 1000), 0);
  }
  n = raw_check(f->path);
  assert_int_equal(count_entries(), n);
  assert_true(n <= TFO__CACHE_SLOTS);
  assert_true(n >= TFO__CACHE_SLOTS - TFO__CACHE_SLOTS / 20); /* it fills */
  /* Skipping entries cost most to lose: all kept, though oldest. */
  for (i = 0; i < skipping; i++) {
    struct sockaddr_in a = nth4(7, i);
    assert_int_equal(look(SA(a), &v), 0);
    assert_int_equal(v.skip, 1);
  }
  /* Least recently updated go first: the newest are all there, the
   * earliest are gone. */
  for (i = 0; i < many; i++) {
    struct sockaddr_in6 b = sin6("2001:db8::", 443, 0);
    int r;
    b.sin6_addr.s6_addr[12] = (uint8_t)(i >> 24);
    b.sin6_addr.s6_addr[13] = (uint8_t)(i >> 16);
    b.sin6_addr.s6_addr[14] = (uint8_t)(i >> 8);
    b.sin6_addr.s6_addr[15] = (uint8_t)i;
    r = look(SA(b), &v);
    if (i >= many - recent) {
      assert_int_equal(r, 0);
      assert_int_equal(v.rtt_us, 100 + i % 1000);
    } else if (i < 4096 && r == 0) {
      early++;
    }
  }
  assert_int_equal(early, 0);
}

/* --- concurrency ---------------------------------------------------------- */

#define PROCS 8
#define PER 500

#define HAMMER 100
#define HAMMER_KEYS 16

/* Everyone updates the same few destinations: a lost update shows in their
 * failure counts. */
static unsigned hammer(uint16_t port) {
  unsigned i, k, bad = 0;

  for (i = 0; i < HAMMER; i++)
    for (k = 0; k < HAMMER_KEYS; k++) {
      struct sockaddr_in a = nth4(250, k);
      a.sin_port = htons(port);
      if (rec(SA(a), TFO__EV_NO_COOKIE, 0) != 0)
        bad++;
    }
  return bad;
}

static void check_hammered(uint16_t port) {
  struct tfo__verdict v;
  unsigned k;

  for (k = 0; k < HAMMER_KEYS; k++) {
    struct sockaddr_in a = nth4(250, k);
    a.sin_port = htons(port);
    assert_int_equal(look(SA(a), &v), 0);
    assert_int_equal(v.failures, PROCS * HAMMER);
  }
}

static int child_work(unsigned g) {
  struct tfo__verdict v;
  unsigned i, bad = hammer(9);

  for (i = 0; i < PER; i++) {
    struct sockaddr_in a = nth4(g, i);
    if (rec(SA(a), i % 3 ? TFO__EV_DATA_ACKED : TFO__EV_BLACKHOLE,
            g * 1000 + i))
      bad++;
    if (i > 0) {
      struct sockaddr_in p = nth4(g, i - 1);
      if (look(SA(p), &v) != 0 || v.rtt_us != g * 1000 + i - 1)
        bad++;
    }
  }
  return bad > 100 ? 100 : (int)bad;
}

static void check_groups(unsigned first, unsigned groups) {
  struct tfo__verdict v;
  unsigned g, i;

  for (g = first; g < first + groups; g++)
    for (i = 0; i < PER; i++) {
      struct sockaddr_in a = nth4(g, i);
      if (look(SA(a), &v) != 0)
        fail_msg("group %u entry %u missing", g, i);
      assert_int_equal(v.rtt_us, g * 1000 + i);
      assert_int_equal(v.last, i % 3 ? TFO__EV_DATA_ACKED : TFO__EV_BLACKHOLE);
      assert_int_equal(v.failures, i % 3 ? 0 : 1);
    }
}

static void processes_share_the_file(void **state) {
  struct fx *f = *state;
  pid_t pids[PROCS];
  int go[2], st, g;
  char c = 0;

  /* Opened before fork: children must not inherit our flock's file
   * description, or their writes would not exclude each other. */
  assert_int_equal(count_entries(), 0);
  assert_int_equal(pipe(go), 0);
  for (g = 0; g < PROCS; g++) {
    pids[g] = fork();
    assert_true(pids[g] >= 0);
    if (pids[g] == 0) {
      close(go[1]);
      if (read(go[0], &c, 1) != 0)
        _exit(101);
      _exit(child_work(10 + (unsigned)g));
    }
  }
  close(go[0]);
  close(go[1]); /* all start at once */
  for (g = 0; g < PROCS; g++) {
    assert_int_equal(waitpid(pids[g], &st, 0), pids[g]);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
  }
  /* A fresh open, as a later process would. */
  assert_int_equal(tfo__cache_configure(f->path), 0);
  check_groups(10, PROCS);
  check_hammered(9);
  assert_int_equal(raw_check(f->path), PROCS * PER + HAMMER_KEYS);
  assert_int_equal(count_entries(), PROCS * PER + HAMMER_KEYS);
}

static void *thread_work(void *arg) {
  return (void *)(intptr_t)child_work((unsigned)(uintptr_t)arg);
}

static void threads_share_the_table(void **state) {
  struct fx *f = *state;
  pthread_t th[PROCS];
  void *ret;
  int g;

  for (g = 0; g < PROCS; g++)
    assert_int_equal(
        pthread_create(&th[g], NULL, thread_work, (void *)(uintptr_t)(30 + g)),
        0);
  for (g = 0; g < PROCS; g++) {
    assert_int_equal(pthread_join(th[g], &ret), 0);
    assert_int_equal((intptr_t)ret, 0);
  }
  check_groups(30, PROCS);
  check_hammered(9);
  assert_int_equal(raw_check(f->path), PROCS * PER + HAMMER_KEYS);
}

/* Readers never see a torn entry while another process rewrites it. */
static void *reader_work(void *arg) {
  struct sockaddr_in a = sin4("192.0.2.200", 8080);
  struct tfo__verdict v;
  long i, seen[2] = {0, 0}, torn = 0;

  struct timespec t0, t;

  (void)arg;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  /* At least 100000 reads, on until both states were seen (the writer may
   * start late), for at most 20 s. */
  for (i = 0;; i++) {
    if (i >= 100000 && ((seen[0] && seen[1]) || (i & 1023) == 0)) {
      clock_gettime(CLOCK_MONOTONIC, &t);
      if ((seen[0] && seen[1]) || t.tv_sec - t0.tv_sec > 20)
        break;
    }
    if (look(SA(a), &v) != 0)
      continue;
    if (v.last == TFO__EV_DATA_ACKED && v.failures == 0 && v.expires_ms == 0 &&
        !v.skip && v.rtt_us == 1000)
      seen[0]++;
    else if (v.last == TFO__EV_BLACKHOLE && v.failures == 1 &&
             v.expires_ms == T0 + TFO__CACHE_TTL_BASE_MS && v.skip &&
             v.rtt_us == 1000)
      seen[1]++;
    else
      torn++;
  }
  return (void *)(intptr_t)(torn ? -1 : (seen[0] && seen[1]) ? 1 : 0);
}

static void lockless_reads_are_consistent(void **state) {
  struct sockaddr_in a = sin4("192.0.2.200", 8080);
  pthread_t th[4];
  int i, st, both = 0, torn = 0;
  void *ret;
  pid_t pid;

  (void)state;
  assert_int_equal(rec(SA(a), TFO__EV_DATA_ACKED, 1000), 0);
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) { /* the writer: flips the entry between two states */
    /* Never outlive a failed test (cmocka longjmps past our kill). */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    alarm(60);
    for (;;) {
      rec(SA(a), TFO__EV_BLACKHOLE, 0);
      rec(SA(a), TFO__EV_DATA_ACKED, 0);
    }
  }
  for (i = 0; i < 4; i++)
    assert_int_equal(pthread_create(&th[i], NULL, reader_work, NULL), 0);
  for (i = 0; i < 4; i++) {
    assert_int_equal(pthread_join(th[i], &ret), 0);
    torn += (intptr_t)ret == -1;
    both += (intptr_t)ret == 1;
  }
  kill(pid, SIGKILL);
  assert_int_equal(waitpid(pid, &st, 0), pid);
  assert_int_equal(torn, 0);
  assert_true(both > 0); /* both states really were observed */
}

/* The library's own descriptor for the cache file, found in /proc. */
static int library_fd(const char *path) {
  char link[64], target[PATH_MAX];
  int fd, found = -1;
  ssize_t n;

  for (fd = 0; fd < 1024; fd++) {
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    n = readlink(link, target, sizeof(target) - 1);
    if (n < 0)
      continue;
    target[n] = '\0';
    if (strcmp(target, path) == 0) {
      assert_int_equal(found, -1); /* exactly one */
      found = fd;
    }
  }
  return found;
}

static void fork_child_gets_its_own_lock(void **state) {
  struct fx *f = *state;
  struct sockaddr_in a = sin4("192.0.2.1", 80);
  struct tfo__verdict v;
  int fd, st;
  pid_t pid;

  assert_int_equal(rec(SA(a), TFO__EV_DATA_ACKED, 0), 0);
  fd = library_fd(f->path);
  assert_true(fd >= 0);
  /* Lock the library's open file description ourselves. A child still
   * using it would "get" the lock at once (flock is per description) and
   * so could write alongside the parent; a child that reopened must wait,
   * and give up after the timeout. */
  assert_int_equal(flock(fd, LOCK_EX), 0);
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int r = rec(SA(a), TFO__EV_BLACKHOLE, 0);
    /* Lockless reads still work in the child, through its own mapping. */
    if (look(SA(a), &v) != 0 || v.last != TFO__EV_DATA_ACKED)
      _exit(3);
    _exit(r == -1 && errno == EAGAIN ? 0 : r == 0 ? 1 : 2);
  }
  assert_int_equal(waitpid(pid, &st, 0), pid);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 0);
  assert_int_equal(flock(fd, LOCK_UN), 0);
  assert_int_equal(look(SA(a), &v), 0);
  assert_int_equal(v.last, TFO__EV_DATA_ACKED);
}

static void stuck_lock_holder_does_not_hang(void **state) {
  struct fx *f = *state;
  struct sockaddr_in a = sin4("192.0.2.1", 80), b = sin4("192.0.2.2", 80);
  struct tfo__verdict v;
  struct timespec t0, t1;
  int p[2], st, fd;
  pid_t pid;
  char c;
  long ms;

  assert_int_equal(rec(SA(a), TFO__EV_BLACKHOLE, 0), 0);
  assert_int_equal(pipe(p), 0);
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) { /* a process that takes the lock and stops */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    fd = open(f->path, O_RDWR);
    if (fd < 0 || flock(fd, LOCK_EX) != 0)
      _exit(1);
    if (write(p[1], "x", 1) != 1)
      _exit(1);
    pause();
    _exit(0);
  }
  assert_int_equal(read(p[0], &c, 1), 1);
  clock_gettime(CLOCK_MONOTONIC, &t0);
  errno = 0;
  assert_int_equal(rec(SA(b), TFO__EV_RESET, 0), -1);
  assert_int_equal(errno, EAGAIN);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
  assert_true(ms >= TFO__CACHE_LOCK_TIMEOUT_MS - 10);
  assert_true(ms < TFO__CACHE_LOCK_TIMEOUT_MS + 1000);
  /* Reads take no lock. */
  assert_int_equal(look(SA(a), &v), 0);
  kill(pid, SIGKILL);
  assert_int_equal(waitpid(pid, &st, 0), pid);
  close(p[0]);
  close(p[1]);
  assert_int_equal(rec(SA(b), TFO__EV_RESET, 0), 0);
  assert_int_equal(look(SA(b), &v), 0);
}

static void netns_is_part_of_the_key(void **state) {
  struct fx *f = *state;
  struct sockaddr_in a = sin4("192.0.2.1", 80), b = sin4("192.0.2.2", 80);
  struct tfo__verdict v;
  pid_t pid;
  int st;

  assert_int_equal(rec(SA(a), TFO__EV_DATA_ACKED, 0), 0);
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    if (unshare(CLONE_NEWNET) != 0)
      _exit(77);
    /* New namespace: the parent's entry is not ours, ours not theirs. */
    if (look(SA(a), &v) == 0)
      _exit(1);
    if (rec(SA(b), TFO__EV_BLACKHOLE, 0) != 0 || look(SA(b), &v) != 0)
      _exit(2);
    if (rec(SA(a), TFO__EV_RESET, 0) != 0)
      _exit(3);
    _exit(0);
  }
  assert_int_equal(waitpid(pid, &st, 0), pid);
  assert_true(WIFEXITED(st));
  if (WEXITSTATUS(st) == 77)
    skip();
  assert_int_equal(WEXITSTATUS(st), 0);
  assert_unknown(SA(b));
  assert_int_equal(look(SA(a), &v), 0);
  assert_int_equal(v.last, TFO__EV_DATA_ACKED); /* not the child's RESET */
  assert_int_equal(count_entries(), 1);         /* only this netns listed */
  assert_int_equal(raw_check(f->path), 3);      /* but all are in the file */
}

int main(void) {
  const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
      T(bad_input_is_refused),
      T(v4_record_lookup),
      T(v6_record_lookup),
      T(v4_mapped_is_v4),
      T(soft_failures_need_three),
      T(hard_failures_skip_at_once),
      T(backoff_doubles_to_the_cap),
      T(good_events_clear),
      T(rtt_is_smoothed),
      T(rtt_below_floor_is_not_rewritten),
      T(old_entries_are_forgotten),
      T(forget_and_clear),
      T(foreach_lists_entries),
      T(foreach_callback_may_write),
      T(off_disables),
      T(persists_across_reopen),
      T(program_takes_the_fd),
      T(default_location),
      T(corrupt_files_are_rebuilt),
      T(damaged_while_in_use),
      T(hostile_fields_are_clamped),
      T(garbage_slots_never_crash),
      T(dead_writer_slot_is_repaired),
      T(hostile_files_are_refused),
      T(table_is_bounded),
      T(processes_share_the_file),
      T(threads_share_the_table),
      T(lockless_reads_are_consistent),
      T(fork_child_gets_its_own_lock),
      T(stuck_lock_holder_does_not_hang),
      T(netns_is_part_of_the_key),
#undef T
  };

  /* Refusals are logged by design; keep the test output readable unless
   * asked otherwise. */
  setenv("LIBTFO_LOG", "0", 0);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
