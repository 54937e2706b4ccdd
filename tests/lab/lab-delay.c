/* lab-delay: emulate link latency for the network lab.
 *
 * Binds an NFQUEUE queue and accepts every queued packet DELAY ms after it
 * arrived, strictly in arrival order. The kernel here has no netem qdisc,
 * so holding packets in userspace is how the lab gets its RTT.
 *
 * Usage: lab-delay -q QNUM -d DELAY_MS [-r READY_FILE] [-v]
 *
 * DELAY_MS may have a fraction (12.5). Delay 0 accepts at once. READY_FILE
 * is written once the queue is bound, so a caller can wait for it before it
 * adds the iptables rules (a rule with no listener drops every packet).
 * SIGTERM/SIGINT/SIGHUP: accept whatever is still held, then exit 0.
 */

#ifdef HAVE_CONFIG_H
#include "config.h" /* _GNU_SOURCE under -std=c11 */
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

#define QUEUE_MAXLEN 65536
#define RCVBUF_BYTES (16 * 1024 * 1024)
#define DRAIN_BATCH 64

typedef struct {
  uint32_t id;
  int64_t due;  /* CLOCK_MONOTONIC, ns */
} held_t;

/* FIFO of held packets. The delay is constant and arrivals are in order, so
 * deadlines are non-decreasing and the head is always the next one due. */
static held_t* ring;
static size_t ring_cap;
static size_t ring_head;
static size_t ring_len;

static struct nfq_q_handle* qh;
static int64_t delay_ns;
static int64_t recv_ns;  /* when the message being parsed was read */
static int verbose;
static volatile sig_atomic_t stopping;

static uint64_t n_packets;
static uint64_t n_enobufs;
static uint64_t n_verdict_err;


static int64_t now_ns(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}


static void on_signal(int signum) {
  (void) signum;
  stopping = 1;
}


static void accept_id(uint32_t id) {
  if (nfq_set_verdict(qh, id, NF_ACCEPT, 0, NULL) < 0) {
    n_verdict_err++;
    if (verbose)
      fprintf(stderr, "lab-delay: verdict %u: %s\n", id, strerror(errno));
  }
}


static int ring_push(uint32_t id, int64_t due) {
  held_t* nring;
  size_t ncap;
  size_t i;

  if (ring_len == ring_cap) {
    ncap = ring_cap ? ring_cap * 2 : 1024;
    nring = malloc(ncap * sizeof(*nring));
    if (nring == NULL)
      return -1;
    /* Unwrap into the new array so the order survives the resize. */
    for (i = 0; i < ring_len; i++)
      nring[i] = ring[(ring_head + i) % ring_cap];
    free(ring);
    ring = nring;
    ring_cap = ncap;
    ring_head = 0;
  }

  ring[(ring_head + ring_len) % ring_cap] = (held_t) { id, due };
  ring_len++;
  return 0;
}


static void ring_pop(void) {
  ring_head = (ring_head + 1) % ring_cap;
  ring_len--;
}


/* Accept every held packet whose deadline is <= limit, oldest first. */
static void release(int64_t limit) {
  while (ring_len > 0 && ring[ring_head].due <= limit) {
    accept_id(ring[ring_head].id);
    ring_pop();
  }
}


static int on_packet(struct nfq_q_handle* q,
                     struct nfgenmsg* msg,
                     struct nfq_data* nfa,
                     void* arg) {
  struct nfqnl_msg_packet_hdr* ph;
  uint32_t id;

  (void) q;
  (void) msg;
  (void) arg;

  ph = nfq_get_msg_packet_hdr(nfa);
  if (ph == NULL)
    return 0;
  id = ntohl(ph->packet_id);
  n_packets++;

  /* Out of memory: passing the packet early beats leaving it queued. */
  if (delay_ns == 0 || ring_push(id, recv_ns + delay_ns) != 0)
    accept_id(id);

  return 0;
}


/* Read what the kernel has queued for us, a bounded batch at a time so that
 * a burst cannot hold back verdicts that are already due. */
static int drain(struct nfq_handle* h, int fd) {
  /* Messages carry metadata only (NFQNL_COPY_META), so they are small. */
  static char buf[65536] __attribute__((aligned));
  ssize_t n;
  int i;

  for (i = 0; i < DRAIN_BATCH; i++) {
    n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n > 0) {
      recv_ns = now_ns();
      nfq_handle_packet(h, buf, (int) n);
      continue;
    }

    if (n == 0)
      return 0;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return 0;
    if (errno == EINTR)
      continue;
    if (errno == ENOBUFS) {
      /* The kernel could not queue a message to us and dropped that packet
       * (it is not left pending). Like a full router queue: count, go on. */
      if (n_enobufs++ == 0)
        fprintf(stderr, "lab-delay: ENOBUFS, packets were dropped\n");
      continue;
    }

    fprintf(stderr, "lab-delay: recv: %s\n", strerror(errno));
    return -1;
  }

  return 0;
}


static int write_ready(const char* path) {
  char tmp[PATH_MAX];
  char line[32];
  int fd;
  int n;

  /* Write then rename, so a poller never sees a half-written file. */
  if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int) sizeof(tmp))
    return -1;

  fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return -1;

  n = snprintf(line, sizeof(line), "%ld\n", (long) getpid());
  if (write(fd, line, (size_t) n) != n) {
    close(fd);
    unlink(tmp);
    return -1;
  }

  close(fd);
  return rename(tmp, path);
}


static void usage(void) {
  fprintf(stderr,
          "usage: lab-delay -q QNUM -d DELAY_MS [-r READY_FILE] [-v]\n");
  exit(2);
}


int main(int argc, char** argv) {
  struct nfq_handle* h;
  struct sigaction sa;
  struct pollfd pfd;
  struct timespec ts;
  struct timespec* tsp;
  sigset_t block;
  sigset_t waitmask;
  const char* ready;
  char* end;
  double delay_ms;
  long qnum;
  int64_t wait_ns;
  int size;
  int opt;
  int rc;

  qnum = -1;
  delay_ms = -1;
  ready = NULL;

  while ((opt = getopt(argc, argv, "q:d:r:v")) != -1) {
    switch (opt) {
    case 'q':
      errno = 0;
      qnum = strtol(optarg, &end, 10);
      if (errno || *end || qnum < 0 || qnum > 65535)
        usage();
      break;
    case 'd':
      errno = 0;
      delay_ms = strtod(optarg, &end);
      if (errno || *end || !(delay_ms >= 0) || delay_ms > 600000)
        usage();
      break;
    case 'r':
      ready = optarg;
      break;
    case 'v':
      verbose = 1;
      break;
    default:
      usage();
    }
  }

  if (qnum < 0 || delay_ms < 0 || optind != argc)
    usage();

  delay_ns = (int64_t) (delay_ms * 1e6 + 0.5);

  /* Default timer slack (50 us) would blur deadlines; ask for none. */
  prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);

  /* Signals stay blocked except inside ppoll(), so a stop request can never
   * slip in between the check of `stopping` and going to sleep. */
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGHUP);
  sigprocmask(SIG_BLOCK, &block, &waitmask);
  sigdelset(&waitmask, SIGTERM);
  sigdelset(&waitmask, SIGINT);
  sigdelset(&waitmask, SIGHUP);

  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);

  h = nfq_open();
  if (h == NULL) {
    fprintf(stderr, "lab-delay: nfq_open: %s\n", strerror(errno));
    return 1;
  }

  qh = nfq_create_queue(h, (uint16_t) qnum, on_packet, NULL);
  if (qh == NULL) {
    fprintf(stderr, "lab-delay: cannot bind queue %ld: %s\n",
            qnum, strerror(errno));
    nfq_close(h);
    return 1;
  }

  /* We never look at the payload: metadata is all we need. */
  if (nfq_set_mode(qh, NFQNL_COPY_META, 0) < 0) {
    fprintf(stderr, "lab-delay: nfq_set_mode: %s\n", strerror(errno));
    goto fail;
  }

  /* The kernel default (1024) overflows once a window of packets is held
   * for a few tens of ms; overflow would show up as loss, not as delay. */
  if (nfq_set_queue_maxlen(qh, QUEUE_MAXLEN) < 0)
    fprintf(stderr, "lab-delay: nfq_set_queue_maxlen: %s\n", strerror(errno));

  /* We do not touch the payload, so GSO packets need not be segmented for
   * us. Best effort: older kernels may refuse the flag. */
  nfq_set_queue_flags(qh, NFQA_CFG_F_GSO, NFQA_CFG_F_GSO);

  pfd.fd = nfq_fd(h);
  pfd.events = POLLIN;

  /* A large receive buffer absorbs bursts while we sleep to a deadline.
   * FORCE passes rmem_max (we run as root); plain SO_RCVBUF is the fallback. */
  size = RCVBUF_BYTES;
  if (setsockopt(pfd.fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)))
    setsockopt(pfd.fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));

  if (ready != NULL && write_ready(ready) != 0) {
    fprintf(stderr, "lab-delay: cannot write %s: %s\n",
            ready, strerror(errno));
    goto fail;
  }

  rc = 0;
  while (!stopping) {
    release(now_ns());

    tsp = NULL;
    if (ring_len > 0) {
      wait_ns = ring[ring_head].due - now_ns();
      if (wait_ns < 0)
        wait_ns = 0;
      ts.tv_sec = wait_ns / 1000000000;
      ts.tv_nsec = wait_ns % 1000000000;
      tsp = &ts;
    }

    if (ppoll(&pfd, 1, tsp, &waitmask) < 0) {
      if (errno == EINTR)
        continue;
      fprintf(stderr, "lab-delay: ppoll: %s\n", strerror(errno));
      rc = 1;
      break;
    }

    if (pfd.revents & POLLIN) {
      if (drain(h, pfd.fd) != 0) {
        rc = 1;
        break;
      }
    } else if (pfd.revents & (POLLERR | POLLHUP | POLLNVAL)) {
      fprintf(stderr, "lab-delay: netlink socket error\n");
      rc = 1;
      break;
    }
  }

  /* Destroying the queue makes the kernel drop what is still held; let it
   * through instead, so stopping the lab never loses a packet. */
  release(INT64_MAX);

  if (verbose)
    fprintf(stderr,
            "lab-delay: queue %ld: %llu packets, %llu enobufs, "
            "%llu verdict errors\n",
            qnum,
            (unsigned long long) n_packets,
            (unsigned long long) n_enobufs,
            (unsigned long long) n_verdict_err);

  nfq_destroy_queue(qh);
  nfq_close(h);
  free(ring);
  return rc;

fail:
  nfq_destroy_queue(qh);
  nfq_close(h);
  return 1;
}
