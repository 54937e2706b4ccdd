/* cache-bench: the negative cache with many destinations, for bench/run.
 *
 *   cache-bench [-n DESTINATIONS] [-l LOOKUPS] FILE
 *
 * Records DESTINATIONS (default 10000) distinct IPv4 destinations in a new
 * cache file FILE, then times LOOKUPS random lookups of known destinations
 * and as many of unknown ones. Prints one line:
 *   dests=10000 stored=... file_bytes=... disk_bytes=... record_ns=...
 *   hit_ns=... miss_ns=...
 *
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"

static double now_ns(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void dest(struct sockaddr_in *sa, long i, int unknown) {
  memset(sa, 0, sizeof(*sa));
  sa->sin_family = AF_INET;
  /* 10.0.0.0/8 for known ones, 100.64.0.0/10 for unknown ones. */
  sa->sin_addr.s_addr =
      htonl((unknown ? 0x64400000u : 0x0a000000u) + (uint32_t)i);
  sa->sin_port = htons((uint16_t)(443 + (i & 7)));
}

int main(int argc, char **argv) {
  struct tfo__verdict v;
  struct sockaddr_in sa;
  struct stat st;
  long n = 10000, lookups = 1000000, i, stored = 0, found = 0;
  unsigned x = 12345;
  double t0, rec, hit, miss;
  int c;

  while ((c = getopt(argc, argv, "n:l:")) != -1) {
    if (c == 'n')
      n = atol(optarg);
    else if (c == 'l')
      lookups = atol(optarg);
    else
      return 2;
  }
  if (optind != argc - 1 || n < 1 || lookups < 1) {
    fprintf(stderr, "usage: cache-bench [-n DESTS] [-l LOOKUPS] FILE\n");
    return 2;
  }
  unlink(argv[optind]);
  if (tfo__cache_configure(argv[optind]) != 0) {
    perror("cache-bench: configure");
    return 1;
  }
  t0 = now_ns();
  for (i = 0; i < n; i++) {
    dest(&sa, i, 0);
    /* Every 4th a broken path (skipped), the rest good ones with an RTT. */
    tfo__cache_record((struct sockaddr *)&sa, sizeof(sa),
                      i % 4 == 0 ? TFO__EV_BLACKHOLE : TFO__EV_DATA_ACKED,
                      (uint32_t)(1000 + i % 200000));
  }
  rec = (now_ns() - t0) / (double)n;
  for (i = 0; i < n; i++) {
    dest(&sa, i, 0);
    stored += tfo__cache_lookup((struct sockaddr *)&sa, sizeof(sa), &v) == 0;
  }
  t0 = now_ns();
  for (i = 0; i < lookups; i++) {
    x = x * 1103515245u + 12345u;
    dest(&sa, (long)(x >> 8) % n, 0);
    found += tfo__cache_lookup((struct sockaddr *)&sa, sizeof(sa), &v) == 0;
  }
  hit = (now_ns() - t0) / (double)lookups;
  t0 = now_ns();
  for (i = 0; i < lookups; i++) {
    x = x * 1103515245u + 12345u;
    dest(&sa, (long)(x >> 8) % n, 1);
    found += tfo__cache_lookup((struct sockaddr *)&sa, sizeof(sa), &v) == 0;
  }
  miss = (now_ns() - t0) / (double)lookups;
  if (stat(argv[optind], &st) != 0) {
    perror("cache-bench: stat");
    return 1;
  }
  printf("dests=%ld stored=%ld file_bytes=%lld disk_bytes=%lld record_ns=%.0f "
         "hit_ns=%.1f miss_ns=%.1f found=%ld\n",
         n, stored, (long long)st.st_size, (long long)st.st_blocks * 512, rec,
         hit, miss, found);
  return 0;
}
