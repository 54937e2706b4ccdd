/* libFuzzer harness: the negative cache's file reader (lib/cache.c).
 *
 * Every input becomes a cache file that tfo__cache_configure(path) then
 * opens: either the input's bytes verbatim (a file of the wrong size, to be
 * rebuilt), or a file of the right size whose header and slots come from
 * the input. Then lookups, records, forgets, foreach and clear run on it.
 * None may crash, and whatever the file says, no verdict may break the
 * cache's promises: RTT at most a minute, failures clamped, a skip never
 * longer than TFO__CACHE_TTL_MAX_MS past now (plus the clock slack), and a
 * destination just recorded is found.
 *
 * Byte 0 (flags): bit 0 raw file; bit 1 header from the input (else a valid
 * one); bit 2 slot times are offsets around "now"; bit 3 slots get this
 * process's netns; bit 4 each slot goes where its key hashes (else to the
 * index the record names); bits 5-6: mode 0600, 0644 (taken, chmod'ed back),
 * 0666 (refused), or foreign owner (refused); bit 7: foreach (whose
 * callback forgets every third entry), then clear, at the end.
 * Then records of 2 + 64 bytes: an op byte, an index byte, a slot.
 *
 * The clock is fixed (tfo__cache_clock_ms is defined here; clock.c is not
 * linked), so inputs are reproducible.
 *
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache.h"

#define CHECK(c)                                                               \
  do {                                                                         \
    if (!(c))                                                                  \
      __builtin_trap();                                                        \
  } while (0)

#define NOW INT64_C(1700000000000)
#define MAX_RECORDS 24

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int64_t tfo__cache_clock_ms(void) {
  return NOW;
}

static char dir[64], path[128];
static int wfd = -1;
static uint64_t my_ino, my_dev32;

static void cleanup(void) {
  if (path[0] != '\0')
    unlink(path);
  if (dir[0] != '\0')
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  const char *tmp = getenv("TMPDIR");
  struct stat sb;

  (void)argc;
  (void)argv;
  setenv("LIBTFO_LOG", "0", 1);
  snprintf(dir, sizeof(dir), "%s/fuzz-cache.XXXXXX",
           tmp != NULL && *tmp == '/' && strlen(tmp) < 40 ? tmp : "/tmp");
  if (mkdtemp(dir) == NULL) {
    perror("mkdtemp");
    exit(1);
  }
  snprintf(path, sizeof(path), "%s/cache", dir);
  wfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (wfd < 0) {
    perror(path);
    exit(1);
  }
  atexit(cleanup);
  if (stat("/proc/self/ns/net", &sb) == 0) {
    my_ino = (uint64_t)sb.st_ino;
    my_dev32 = ((uint64_t)sb.st_dev ^ ((uint64_t)sb.st_dev >> 32)) & 0xffffffffu;
  }
  return 0;
}

/* A copy of cache.c's slot hash, so that inputs can put an entry where a
 * lookup will look (if the two drift apart, only coverage suffers). */
static uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= UINT64_C(0xff51afd7ed558ccd);
  x ^= x >> 33;
  x *= UINT64_C(0xc4ceb9fe1a85ec53);
  x ^= x >> 33;
  return x;
}

static uint32_t slot_of(const uint64_t w[8]) {
  uint64_t h = mix(w[1] ^ UINT64_C(0x9e3779b97f4a7c15));
  uint64_t port = (w[0] >> 32) & 0xffff, fam = (w[0] >> 48) & 0xff;

  h = mix(h ^ w[2]);
  h = mix(h ^ w[3]);
  h = mix(h ^ w[4]);
  h = mix(h ^ (port | fam << 16));
  return (uint32_t)h & (TFO__CACHE_SLOTS - 1);
}

/* The destination a slot names, as a caller would pass it. */
static socklen_t addr_of(const uint64_t w[8], struct sockaddr_storage *ss) {
  uint8_t b[16];
  uint16_t port = (uint16_t)(w[0] >> 32);

  memcpy(b, &w[1], 8);
  memcpy(b + 8, &w[2], 8);
  memset(ss, 0, sizeof(*ss));
  if (((w[0] >> 48) & 0xff) == 4) {
    struct sockaddr_in *s = (struct sockaddr_in *)ss;

    s->sin_family = AF_INET;
    s->sin_port = port;
    memcpy(&s->sin_addr, b + 12, 4);
    return sizeof(*s);
  } else {
    struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;

    s->sin6_family = AF_INET6;
    s->sin6_port = port;
    memcpy(&s->sin6_addr, b, 16);
    s->sin6_scope_id = (uint32_t)(w[4] >> 32);
    return sizeof(*s);
  }
}

static void check_verdict(const struct tfo__verdict *v) {
  CHECK(v->rtt_us <= TFO__CACHE_RTT_MAX_US);
  CHECK(v->failures <= TFO__CACHE_FAILURES_MAX);
  CHECK(v->last >= TFO__EV_DATA_ACKED && v->last <= TFO__EV_RESET);
  CHECK(v->expires_ms >= 0);
  CHECK(v->expires_ms <=
        NOW + TFO__CACHE_CLOCK_SLACK_MS + TFO__CACHE_TTL_MAX_MS);
  CHECK(v->skip == (v->expires_ms > NOW));
}

static int n_seen;

static int each(const struct sockaddr *sa, socklen_t len,
                const struct tfo__verdict *v, void *arg) {
  (void)arg;
  CHECK(sa != NULL);
  CHECK((sa->sa_family == AF_INET && len == sizeof(struct sockaddr_in)) ||
        (sa->sa_family == AF_INET6 && len == sizeof(struct sockaddr_in6)));
  check_verdict(v);
  /* The callback may write: forget every third entry. */
  if (++n_seen % 3 == 0)
    (void)tfo__cache_forget(sa, len);
  return n_seen > 4 * MAX_RECORDS;
}

static void write_file(const uint8_t *data, size_t size, unsigned flags) {
  static const uint64_t hdr_ok[8] = {
      TFO__CACHE_MAGIC,
      TFO__CACHE_VERSION | (uint64_t)TFO__CACHE_HDR_SIZE << 32,
      TFO__CACHE_SLOT_SIZE | (uint64_t)TFO__CACHE_SLOTS << 32,
      (uint64_t)NOW};
  uint64_t w[8];
  size_t off = 0;
  int n;

  if (ftruncate(wfd, 0) != 0)
    return;
  if (flags & 1) {
    (void)!pwrite(wfd, data, size, 0);
    return;
  }
  if (ftruncate(wfd, (off_t)TFO__CACHE_FILE_SIZE) != 0)
    return;
  if ((flags & 2) && size >= TFO__CACHE_HDR_SIZE) {
    (void)!pwrite(wfd, data, TFO__CACHE_HDR_SIZE, 0);
    off = TFO__CACHE_HDR_SIZE;
  } else {
    (void)!pwrite(wfd, hdr_ok, sizeof(hdr_ok), 0);
  }
  for (n = 0; n < MAX_RECORDS && off + 2 + sizeof(w) <= size; n++) {
    uint32_t idx;

    memcpy(w, data + off + 2, sizeof(w));
    if (flags & 4) {
      w[5] = (uint64_t)(NOW - TFO__CACHE_TTL_MAX_MS +
                        (int64_t)(w[5] % (3 * TFO__CACHE_TTL_MAX_MS)));
      w[6] = (uint64_t)(NOW - TFO__CACHE_MAX_AGE_MS - TFO__CACHE_CLOCK_SLACK_MS +
                        (int64_t)(w[6] % (TFO__CACHE_MAX_AGE_MS +
                                          3 * TFO__CACHE_CLOCK_SLACK_MS)));
    }
    if (flags & 8) {
      w[3] = my_ino;
      w[4] = (w[4] & ~UINT64_C(0xffffffff)) | my_dev32;
    }
    idx = (flags & 16) ? (slot_of(w) + data[off + 1] % TFO__CACHE_WINDOW)
                       : (uint32_t)data[off + 1] * 61u;
    idx &= TFO__CACHE_SLOTS - 1;
    (void)!pwrite(wfd, w, sizeof(w),
                  (off_t)(TFO__CACHE_HDR_SIZE +
                          (uint64_t)idx * TFO__CACHE_SLOT_SIZE));
    off += 2 + sizeof(w);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct sockaddr_storage ss;
  struct tfo__verdict v;
  unsigned flags, mode;
  size_t off;
  socklen_t len;
  uint64_t w[8];
  int n;

  if (size < 1)
    return 0;
  flags = data[0];
  data++;
  size--;

  CHECK(tfo__cache_configure("off") == 0); /* unmaps the last table */
  if (fchown(wfd, 0, 0) != 0 && geteuid() == 0)
    return 0;
  write_file(data, size, flags);
  mode = (flags >> 5) & 3;
  (void)fchmod(wfd, mode == 0 ? 0600 : mode == 1 ? 0644 : 0666);
  if (mode == 3) {
    (void)fchmod(wfd, 0600);
    if (fchown(wfd, 65534, 65534) != 0)
      (void)fchmod(wfd, 0666); /* not root: refused for its mode instead */
  }
  CHECK(tfo__cache_configure(path) == 0);

  /* Only a file we own and nobody else may write is used. */
  if (mode >= 2)
    CHECK(tfo__cache_path() == NULL);

  for (n = 0, off = (flags & 2) && !(flags & 1) ? TFO__CACHE_HDR_SIZE : 0;
       n < MAX_RECORDS && off + 2 + sizeof(w) <= size;
       n++, off += 2 + sizeof(w)) {
    uint8_t op = data[off];
    enum tfo__event ev = (enum tfo__event)(TFO__EV_DATA_ACKED + op % 6);
    int rc;

    memcpy(w, data + off + 2, sizeof(w));
    len = addr_of(w, &ss);
    if (tfo__cache_lookup((struct sockaddr *)&ss, len, &v) == 0)
      check_verdict(&v);
    if (op & 0x80) {
      rc = tfo__cache_record((struct sockaddr *)&ss, len, ev,
                             (uint32_t)(w[7] >> (op & 31)));
      if (rc == 0) {
        CHECK(tfo__cache_lookup((struct sockaddr *)&ss, len, &v) == 0);
        check_verdict(&v);
        CHECK(v.last == ev);
      } else {
        CHECK(errno == EAGAIN);
      }
    }
    if (op & 0x40)
      CHECK(tfo__cache_forget((struct sockaddr *)&ss, len) == 0);
  }
  /* Both walk all 16384 slots: the slow part, so only for half the
   * inputs. */
  if (flags & 0x80) {
    n_seen = 0;
    (void)tfo__cache_foreach(each, NULL);
    CHECK(tfo__cache_clear() == 0);
  }
  /* Frees the path configure copied: with mallocs and frees balanced,
   * libFuzzer skips its (slow) per-input leak scan. */
  CHECK(tfo__cache_configure("off") == 0);
  return 0;
}
