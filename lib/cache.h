/* The per-destination negative cache: what each destination did with TFO.
 *
 * The one implementation of the "should this connect try TFO" policy; the C
 * API, the preload shim and the libuv layer all ask it. A destination whose
 * path breaks TFO (SYNs with option 34 or with payload dropped, SYN+data
 * reset, no cookie ever granted, SYN data never acked) is skipped for a
 * while, with exponential back-off so it is re-probed later and a network
 * change heals itself. Good destinations keep their RTT, which the connect
 * logic turns into its fallback delay.
 *
 * Key: destination address + port (v4-mapped IPv6 counts as IPv4; the scope
 * id only for link-local IPv6) + network namespace, since every bit of TFO
 * state lives per netns.
 *
 * Storage: a fixed-size file shared by all processes of one user (mmap
 * MAP_SHARED), or a private memory table when no trustworthy file can be
 * had. Readers are lockless (per-slot seqlock); writers are serialised by
 * flock on the file plus a mutex in-process.
 *
 * Internal: nothing here is exported from libtfo.
 *
 * SPDX-License-Identifier: MIT */
#ifndef TFO_CACHE_H
#define TFO_CACHE_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

#pragma GCC visibility push(hidden)

/* --- policy ------------------------------------------------------------- */

/* Soft failures (NO_COOKIE, DATA_NOT_ACKED) cost nothing but the TFO gain
 * (the kernel resends the data after the handshake), and one can be a fluke
 * (cookie evicted, server restarted with a new key), so TFO is given up only
 * from the 3rd consecutive failure. Hard failures (BLACKHOLE, RESET) cost a
 * full SYN timeout or a reset each time: skipped at once. */
#define TFO__CACHE_SOFT_THRESHOLD 3

/* First skip period: long enough that a busy client pays the blackhole
 * penalty a handful of times per hour at most, short enough that moving to a
 * working network brings TFO back soon. */
#define TFO__CACHE_TTL_BASE_MS (10 * 60 * 1000LL)

/* Each failed re-probe doubles the period, up to a day: a permanently
 * broken path then costs one probe a day. */
#define TFO__CACHE_TTL_MAX_MS (24 * 60 * 60 * 1000LL)

/* Back-off exponent cap: 10 min << 8 > 1 day, so more is never needed. */
#define TFO__CACHE_BACKOFF_MAX 8

/* An entry not updated for a week is forgotten: its RTT is stale and any
 * skip period (at most a day) is long over. Such slots are reused first. */
#define TFO__CACHE_MAX_AGE_MS (7 * 24 * 60 * 60 * 1000LL)

/* Clamp for a hostile or corrupt failure count; past the threshold the
 * number carries no meaning, it is only shown by "cache list". */
#define TFO__CACHE_FAILURES_MAX 1000

/* No real RTT is a minute; a larger value (from a file or a caller) is
 * treated as unknown rather than turned into an absurd fallback delay. */
#define TFO__CACHE_RTT_MAX_US (60u * 1000u * 1000u)

/* Entries stamped later than now + this are not trusted (a clock step back
 * or a forged file): they are ignored and their slot reused, never obeyed,
 * so a bogus entry can never make a destination skip TFO forever. */
#define TFO__CACHE_CLOCK_SLACK_MS (5 * 60 * 1000LL)

/* --- table geometry ----------------------------------------------------- */

/* 16384 x 64 B = 1 MiB: room for every destination a host talks to often,
 * small enough to mmap in every process. Must be a power of two. */
#define TFO__CACHE_SLOTS 16384u
#define TFO__CACHE_SLOT_SIZE 64u
#define TFO__CACHE_HDR_SIZE 64u
#define TFO__CACHE_FILE_SIZE                                                   \
  ((uint64_t)TFO__CACHE_HDR_SIZE +                                             \
   (uint64_t)TFO__CACHE_SLOTS * TFO__CACHE_SLOT_SIZE)

/* A key lives in one of 16 consecutive slots from its hash (1 KiB, a few
 * cache lines): lookups cost a bounded scan, and a full window evicts. */
#define TFO__CACHE_WINDOW 16u

/* Lockless reads retry a slot that changes under them this many times, then
 * treat it as absent (a writer that died mid-update leaves it odd forever,
 * until the next writer repairs it). */
#define TFO__CACHE_READ_RETRIES 64

/* Writers wait this long for the file lock, then drop the update: the cache
 * is advisory, and a connect must never hang behind a stopped process. */
#define TFO__CACHE_LOCK_TIMEOUT_MS 500

/* "tfocache" read as a little-endian u64; the file is host-local. */
#define TFO__CACHE_MAGIC UINT64_C(0x65686361636f6674)
#define TFO__CACHE_VERSION 1u

/* --- file format ---------------------------------------------------------
 * Native byte order, all fields 64-bit words accessed atomically (the file
 * is shared memory between processes). Offset 0: header; offset 64: slots.
 *
 * header h[0] magic, h[1] version | hdr_size << 32,
 *        h[2] slot_size | slots << 32, h[3] created (ms), rest 0.
 *
 * slot   w[0] seq (32) | port (16, network order) | family (8: 4, 6, 0 =
 *             empty) | 0 (8)
 *        w[1..2] address: 16 bytes, IPv4 as ::ffff:a.b.c.d
 *        w[3] netns inode, w[4] netns device (folded to 32) | scope id << 32
 *        w[5] expires (ms, 0 = no skip), w[6] updated (ms)
 *        w[7] rtt_us (32) | failures (16) | back-off exponent (8) | last (8)
 *
 * seq is odd while a writer is in the slot. Every field read from the file
 * is checked and clamped before use. */
struct tfo__cache_hdr {
  _Atomic uint64_t h[8];
};
struct tfo__cache_slot {
  _Atomic uint64_t w[8];
};

/* --- API ---------------------------------------------------------------- */

enum tfo__event {
  TFO__EV_NONE = 0,       /* nothing learned about the path: not recorded */
  TFO__EV_DATA_ACKED = 1, /* SYN data acknowledged: all good */
  TFO__EV_COOKIE_GRANTED, /* cookie requested and granted: good so far */
  TFO__EV_NO_COOKIE,      /* SYN answered without a cookie: no TFO there */
  TFO__EV_DATA_NOT_ACKED, /* cookie sent, data not acked: option stripped */
  TFO__EV_BLACKHOLE,      /* no SYN-ACK to the TFO SYN, plain worked */
  TFO__EV_RESET           /* TFO SYN reset, plain worked */
};

struct tfo__verdict {
  int skip;             /* 1: do not try TFO now */
  enum tfo__event last; /* last event recorded */
  uint32_t rtt_us;      /* smoothed RTT, 0 = unknown */
  unsigned failures;    /* consecutive failures, 0 after a good event */
  int64_t expires_ms;   /* end of the current or last skip period
                         * (CLOCK_REALTIME ms), 0 = none. failures > 0,
                         * skip == 0 and expires_ms != 0: TFO may be
                         * re-probed */
};

/* NULL: the default location ($XDG_RUNTIME_DIR/libtfo/cache, or
 * /run/libtfo/cache for root without XDG_RUNTIME_DIR; else memory only);
 * "off": disabled; otherwise an absolute file path. The table is (re)opened
 * lazily on next use. -1 EINVAL for "" or a relative path, ENAMETOOLONG,
 * ENOMEM. */
int tfo__cache_configure(const char *spec);

/* 0 and *v filled when known; -1 with errno ENOENT when not known (or the
 * cache is off), EINVAL / EAFNOSUPPORT for bad input. */
/* Registers the cache's fork handlers (otherwise done at first use): the
 * shim does it at load, outside any signal handler. */
void tfo__cache_prepare(void);

int tfo__cache_lookup(const struct sockaddr *sa, socklen_t len,
                      struct tfo__verdict *v);

/* rtt_us: the RTT measured on this connect, TFO or plain, 0 if unknown. 0, or
 * -1 with EINVAL / EAFNOSUPPORT, or EAGAIN when the file lock could not be
 * had in time (update dropped). Ignored (0) when the cache is off. */
int tfo__cache_record(const struct sockaddr *sa, socklen_t len,
                      enum tfo__event ev, uint32_t rtt_us);

/* 1 when recording DATA_ACKED with this RTT would change nothing (no
 * file lock, no write): a lockless lookup. */
int tfo__cache_still_good(const struct sockaddr *sa, socklen_t len,
                          uint32_t rtt_us);

/* Drop one destination (0 also when it was not known). */
int tfo__cache_forget(const struct sockaddr *sa, socklen_t len);

/* Drop every entry, of every network namespace. */
int tfo__cache_clear(void);

/* Calls cb for each entry of this network namespace; stops at and returns
 * the first non-zero value cb returns, else 0. No lock is held during cb,
 * so cb may call any tfo__cache_ function. */
int tfo__cache_foreach(int (*cb)(const struct sockaddr *sa, socklen_t len,
                                 const struct tfo__verdict *v, void *arg),
                       void *arg);

/* The file in use, or NULL when memory-only or off. Valid until the next
 * tfo__cache_configure. */
const char *tfo__cache_path(void);

/* CLOCK_REALTIME in ms (entries outlive processes, so not MONOTONIC).
 * Defined in cache.c; the cache calls it only through tfo__cache_clock_ms
 * (clock.c), so that tests can link with -Wl,--wrap=tfo__now_ms. */
int64_t tfo__now_ms(void);
int64_t tfo__cache_clock_ms(void);

#pragma GCC visibility pop

#endif
