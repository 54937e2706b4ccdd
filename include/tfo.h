/* libtfo: TCP Fast Open (RFC 7413) that programs can simply turn on.
 *
 * This header is additive-only: names, values and struct layouts never
 * change once released. Structs that may grow carry reserved space that
 * callers zero (`= {0}`); a future field takes a reserved slot, and a library
 * that does not know it yet refuses a non-zero slot with EINVAL instead of
 * silently ignoring it.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef TFO_H
#define TFO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && __GNUC__ >= 4
#define TFO_EXTERN __attribute__((visibility("default")))
#else
#define TFO_EXTERN
#endif

#define TFO_VERSION_MAJOR 0
#define TFO_VERSION_MINOR 1
#define TFO_VERSION_PATCH 0
#define TFO_VERSION_HEX                                                        \
  ((TFO_VERSION_MAJOR << 16) | (TFO_VERSION_MINOR << 8) | (TFO_VERSION_PATCH))

/* The version of the library actually loaded, as TFO_VERSION_HEX / "0.1.0". */
TFO_EXTERN unsigned int tfo_version(void);
TFO_EXTERN const char *tfo_version_string(void);

/* ------------------------------------------------------------------------
 * Client: the first bytes of a connection ride in the SYN (tfo_connect_send.3)
 */

enum tfo_outcome {
  TFO_OUTCOME_DATA_ACKED = 1,   /* the data rode in the SYN and was acknowledged */
  TFO_OUTCOME_COOKIE_REQUESTED, /* no cookie yet: normal handshake, cookie asked for */
  TFO_OUTCOME_DATA_NOT_ACKED,   /* the SYN's data was not acknowledged; sent after the handshake */
  TFO_OUTCOME_FALLBACK,         /* the TFO attempt failed (no answer, RST); a plain connection carried the data */
  TFO_OUTCOME_SKIPPED,          /* the negative cache knows this destination breaks TFO: plain connection */
  TFO_OUTCOME_DISABLED          /* TFO unavailable here (client sysctl bit off, no kernel support): plain connection */
};

/* tfo_connect_opts.flags */
/* Never race a plain connection against a TFO SYN that got no answer; wait
 * for the kernel's own SYN retransmission instead (about 1 s). For first
 * bytes that are not idempotent: with the race, a SYN's data that did reach
 * the server late is delivered again by the plain connection. */
#define TFO_CONNECT_NO_RACE 0x1u
/* Neither consult nor update the negative cache (always try TFO). */
#define TFO_CONNECT_NO_CACHE 0x2u
/* Return the socket in non-blocking mode (default: blocking). */
#define TFO_CONNECT_NONBLOCK 0x4u

struct tfo_connect_opts {
  unsigned flags;  /* TFO_CONNECT_* */
  int fallback_ms; /* race a plain connect after this long without a SYN-ACK;
                    * 0: automatic (3x the destination's RTT when known,
                    * else 250 ms; never above 1000 ms) */
  int timeout_ms;  /* bound on the whole call, 0: none (the kernel's own) */
  int reserved_int[5]; /* must be 0 */
  void *reserved[4];   /* must be NULL */
};

struct tfo_result {
  enum tfo_outcome outcome;
  size_t bytes_sent;  /* bytes of data handed to the kernel: all of them on
                       * success */
  size_t syn_bytes;   /* of those, carried in the SYN (and acknowledged when
                       * outcome is DATA_ACKED) */
  int fallback_ms;    /* the race delay that was armed for the TFO attempt;
                       * 0 when none was (no TFO attempt, or
                       * TFO_CONNECT_NO_RACE) */
  int client_fail;    /* the kernel's tcpi_fastopen_client_fail: 0 none,
                       * 1 no cookie, 2 data not acked, 3 SYN retransmitted;
                       * -1 when not known */
  unsigned rtt_us;    /* the kernel's smoothed RTT when the call ended */
  unsigned elapsed_us; /* how long the call took */
  uint64_t reserved[6];
};

/* Connects to addr (IPv4 or IPv6) and sends all len bytes of data, in the
 * SYN when the path allows it. Returns a connected socket (blocking unless
 * TFO_CONNECT_NONBLOCK) or -1 with errno. opts may be NULL (defaults);
 * result may be NULL. */
TFO_EXTERN int tfo_connect_send(const struct sockaddr *addr, socklen_t addrlen,
                                const void *data, size_t len,
                                const struct tfo_connect_opts *opts,
                                struct tfo_result *result);

/* The same with the data in iovcnt buffers (at most IOV_MAX). */
TFO_EXTERN int tfo_connect_sendv(const struct sockaddr *addr,
                                 socklen_t addrlen, const struct iovec *iov,
                                 int iovcnt,
                                 const struct tfo_connect_opts *opts,
                                 struct tfo_result *result);

/* "data-acked", "cookie-requested", ...; "unknown" for other values. */
TFO_EXTERN const char *tfo_outcome_str(enum tfo_outcome outcome);

/* ------------------------------------------------------------------------
 * The same logic for event loops (tfo_conn_start.3): a state machine that
 * any loop drives. It never blocks; it tells the loop which sockets to watch
 * and when to call again.
 */

typedef struct tfo_conn tfo_conn;

struct tfo_watch {
  int fd[2];        /* sockets to watch; -1: slot unused */
  short events[2];  /* poll events to wait for on each (today POLLOUT) */
  int timeout_ms;   /* call tfo_conn_step again after this long even when no
                     * socket is ready; -1: no timer needed */
};

/* Starts a connection. The buffers the iov points to must stay valid until
 * tfo_conn_finish or tfo_conn_abort (the iov array itself is copied).
 * Returns NULL with errno only for bad input (EINVAL, EAFNOSUPPORT) or no
 * memory; any other failure (no socket, no route) is reported by
 * tfo_conn_finish, so callers have one path. */
TFO_EXTERN tfo_conn *tfo_conn_start(const struct sockaddr *addr,
                                    socklen_t addrlen, const struct iovec *iov,
                                    int iovcnt,
                                    const struct tfo_connect_opts *opts,
                                    struct tfo_watch *watch);

/* Advances after any watched socket became ready or the timer expired (a
 * spurious call is harmless). Returns 1 while in progress (watch updated:
 * stop watching sockets no longer listed), 0 when done. */
TFO_EXTERN int tfo_conn_step(tfo_conn *conn, struct tfo_watch *watch);

/* After tfo_conn_step returned 0: the connected, non-blocking socket with
 * all data sent, or -1 with errno. Frees conn in both cases. result may be
 * NULL. */
TFO_EXTERN int tfo_conn_finish(tfo_conn *conn, struct tfo_result *result);

/* Gives up at any point: closes every socket, frees conn. NULL is ignored. */
TFO_EXTERN void tfo_conn_abort(tfo_conn *conn);

/* ------------------------------------------------------------------------
 * The negative cache (tfo_cache.3): what each destination did with TFO,
 * shared by every process of a user, per network namespace.
 */

enum tfo_cache_event {
  TFO_EVENT_DATA_ACKED = 1, /* SYN data acknowledged */
  TFO_EVENT_COOKIE_GRANTED, /* a cookie was granted */
  TFO_EVENT_NO_COOKIE,      /* the SYN was answered without a cookie */
  TFO_EVENT_DATA_NOT_ACKED, /* SYN data not acknowledged */
  TFO_EVENT_BLACKHOLE,      /* no answer to a TFO SYN; a plain one worked */
  TFO_EVENT_RESET           /* TFO SYN reset; a plain one worked */
};

struct tfo_cache_entry {
  int skip;                      /* 1: TFO is not tried until `expires_ms` */
  enum tfo_cache_event last;     /* the last thing the destination did */
  unsigned failures;             /* consecutive failures */
  unsigned rtt_us;               /* smoothed RTT, 0 unknown */
  int64_t expires_ms;            /* end of the current or last skip
                                  * period, ms since the epoch; 0 none.
                                  * Kept after a skip ends until the
                                  * destination next succeeds */
  uint64_t reserved[4];
};

/* NULL: the default file ($XDG_RUNTIME_DIR/libtfo/cache when that directory
 * is ours, /run/libtfo/cache for root; else a table in this process's
 * memory); "off": no cache; else an absolute path. Overrides LIBTFO_CACHE.
 * 0 or -1 with errno (EINVAL for a relative path). */
TFO_EXTERN int tfo_cache_configure(const char *path);
/* 0 and *entry filled, or -1 with errno ENOENT (not known, or the cache is
 * off), EINVAL, EAFNOSUPPORT. */
TFO_EXTERN int tfo_cache_lookup(const struct sockaddr *addr, socklen_t addrlen,
                                struct tfo_cache_entry *entry);
TFO_EXTERN int tfo_cache_forget(const struct sockaddr *addr, socklen_t addrlen);
TFO_EXTERN int tfo_cache_clear(void);
TFO_EXTERN const char *tfo_cache_event_str(enum tfo_cache_event event);

/* ------------------------------------------------------------------------
 * The kernel's cookie cache (tfo_cookie_lookup.3): which servers a first
 * connection can already send data to, and getting a cookie ahead of time
 * ("prefetching") so that the first real request saves its round trip too.
 */

struct tfo_cookie_info {
  int held;            /* 1: the kernel holds a cookie for this destination */
  unsigned cookie_len; /* its length in bytes (4..16), 0 when none */
  unsigned mss;        /* the server's MSS cached with it, 0 unknown */
  unsigned syn_drops;  /* TFO SYNs the kernel saw go unanswered */
  unsigned rtt_us;     /* the smoothed RTT the kernel remembers, 0 unknown */
  uint64_t age_ms;     /* since the kernel last updated the entry */
  struct sockaddr_storage source; /* the local address it was learnt from
                       * (port 0); ss_family 0 when the kernel names none */
  uint64_t reserved[6];
};

/* What this network namespace's kernel holds for addr (its tcp_metrics;
 * the port is ignored: cookies are per address pair). 0 and *info filled
 * (held 0 or 1), or -1 with errno (EINVAL, EAFNOSUPPORT, or the netlink
 * error). */
TFO_EXTERN int tfo_cookie_lookup(const struct sockaddr *addr,
                                 socklen_t addrlen,
                                 struct tfo_cookie_info *info);

/* A handshake with addr that asks for a cookie and sends no data (the
 * server sees a connection opened and closed), waiting at most timeout_ms
 * (0: 3000). 1: a cookie is now held (also at once, sending nothing, when
 * one was held already); 0: the server answered without one; -1 with
 * errno: ECONNREFUSED, ETIMEDOUT, ENETUNREACH..., ENOPROTOOPT (the negative
 * cache skips TFO for addr: the path drops TFO SYNs, learnt now or
 * before), EOPNOTSUPP (TFO is off for clients here), EINVAL,
 * EAFNOSUPPORT. Feeds the negative cache like any connection. */
TFO_EXTERN int tfo_cookie_prefetch(const struct sockaddr *addr,
                                   socklen_t addrlen, int timeout_ms);

/* ------------------------------------------------------------------------
 * Server: listeners that take data from the SYN (tfo_listen.3), and what a
 * connection's SYN did (tfo_info.3).
 *
 * Data that arrives in a SYN can be delivered twice (a retransmitted SYN,
 * another server of a farm holding the same key): answer only idempotent
 * requests from it, and ask for anything else again once the connection is
 * established, as HTTP's 425 Too Early does for TLS early data.
 */

/* The TFO queue length when tfo_listen_opts.qlen is 0: how many Fast Open
 * connections may wait for their handshake to complete; beyond that, SYNs
 * get a normal handshake (TCPFastOpenListenOverflow). Always capped by the
 * namespace's net.core.somaxconn. */
#define TFO_LISTEN_QLEN_DEFAULT 256

/* tfo_listen_opts.flags */
#define TFO_LISTEN_REUSEPORT 0x1u /* SO_REUSEPORT: listeners share the port */
#define TFO_LISTEN_DUALSTACK 0x2u /* IPv6 address: take IPv4 too (default:
                                   * IPv6 only, whatever bindv6only says) */
#define TFO_LISTEN_NONBLOCK 0x4u  /* return the listener non-blocking */

/* Server key sizes: one key, or the primary then a backup that is still
 * accepted (for rotation: clients holding cookies of the old key keep
 * TFO and get a cookie of the new one). */
#define TFO_KEY_LEN 16
#define TFO_KEY_MAX 32

struct tfo_listen_opts {
  int qlen;             /* TFO queue length, 0: TFO_LISTEN_QLEN_DEFAULT */
  unsigned flags;       /* TFO_LISTEN_* */
  const void *key;      /* this listener's key, key_len (16 or 32) bytes;
                         * NULL: the namespace's (net.ipv4.tcp_fastopen_key) */
  size_t key_len;
  const char *key_file; /* or the key read from this file (tfo_listen.3);
                         * not together with key */
  int reserved_int[4];  /* must be 0 */
  void *reserved[4];    /* must be NULL */
};

/* Returns a socket bound to addr and listening, with TCP_FASTOPEN set, or
 * -1 with errno. backlog 0: SOMAXCONN. opts may be NULL (defaults). When
 * the namespace's net.ipv4.tcp_fastopen lacks the server bit (2) it still
 * listens, without TFO: tfo_info's listen_tfo says so. */
TFO_EXTERN int tfo_listen(const struct sockaddr *addr, socklen_t addrlen,
                          int backlog, const struct tfo_listen_opts *opts);

/* Sets the key of a listener (rotation without a restart). 0 or -1 with
 * errno (EINVAL: not 16 or 32 bytes, or a half that is all zeros). */
TFO_EXTERN int tfo_set_key(int fd, const void *key, size_t key_len);

/* Reads a key file (tfo_listen.3) into key (size >= the key: 32 is always
 * enough). Returns the key's length, 16 or 32, or -1 with errno: EPERM when
 * group or others may read or write the file or someone else owns it,
 * EINVAL when it is malformed, ERANGE when size is too small, or open's. */
TFO_EXTERN int tfo_load_key_file(const char *path, void *key, size_t size);

struct tfo_info {
  int syn_data;     /* 1: data rode in this connection's SYN and was taken:
                     * on an accepted socket, accepted by our kernel (the
                     * request may be a replay); on a client, acknowledged */
  int tfo_child;    /* accepted socket: 1 created from a valid Fast Open SYN,
                     * 0 not; -1 the kernel does not say (before 6.16) */
  enum tfo_outcome outcome; /* a socket tfo_connect_send returned: what it
                     * reported; 0 for any other socket */
  int client_fail;  /* the kernel's tcpi_fastopen_client_fail (clients) */
  int listener;     /* 1: fd listens; the fields below apply */
  int listen_tfo;   /* listener: 1 SYN data will be accepted (TFO queue set
                     * and server bit on in net.ipv4.tcp_fastopen), 0 not */
  int qlen;         /* listener: its TFO queue length, 0 none */
  int sysctl;       /* listener: net.ipv4.tcp_fastopen as the caller's
                     * namespace has it, -1 unreadable */
  int reserved_int[8];
  uint64_t reserved[4];
};

/* What TCP Fast Open did on fd (a TCP socket: accepted, client, or
 * listener). 0 and *info filled, or -1 with errno (EBADF, ENOTSOCK,
 * EPROTOTYPE for a socket that is not TCP, EINVAL). */
TFO_EXTERN int tfo_info(int fd, struct tfo_info *info);

#ifdef __cplusplus
}
#endif
#endif /* TFO_H */
