/* tfo_listen, tfo_set_key and tfo_info on real loopback sockets (port 0:
 * nothing fixed is taken; no sysctl is touched): the options land on the
 * socket, bad input fails with the right errno and leaks nothing, and
 * tfo_info tells listeners, accepted sockets and non-TCP fds apart.
 *
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "kernel.h"
#include "tfo.h"

static const uint8_t key32[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                  12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                  23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

static int open_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  int n = 0;

  assert_non_null(d);
  while (readdir(d) != NULL)
    n++;
  closedir(d);
  return n;
}

static struct sockaddr_in lo4(void) {
  struct sockaddr_in a;

  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

static int get_int(int fd, int level, int name) {
  int v = -1;
  socklen_t len = sizeof(v);

  assert_int_equal(getsockopt(fd, level, name, &v, &len), 0);
  return v;
}

static void bad_input_fails_cleanly(void **state) {
  struct sockaddr_in a = lo4();
  struct sockaddr_un_like {
    sa_family_t family;
    char path[20];
  } u = {AF_UNIX, "x"};
  struct tfo_listen_opts o;
  const struct sockaddr *sa = (const struct sockaddr *)&a;
  uint8_t zero[16] = {0};
  int before = open_fds();

  (void)state;
#define BAD(call, err)                                                         \
  do {                                                                         \
    errno = 0;                                                                 \
    assert_int_equal((call), -1);                                              \
    assert_int_equal(errno, (err));                                            \
  } while (0)
  BAD(tfo_listen(NULL, sizeof(a), 0, NULL), EINVAL);
  BAD(tfo_listen(sa, sizeof(a) - 1, 0, NULL), EINVAL);
  BAD(tfo_listen((struct sockaddr *)&u, sizeof(u), 0, NULL), EAFNOSUPPORT);
  BAD(tfo_listen(sa, sizeof(a), -1, NULL), EINVAL);
  memset(&o, 0, sizeof(o));
  o.qlen = -1;
  BAD(tfo_listen(sa, sizeof(a), 0, &o), EINVAL);
  memset(&o, 0, sizeof(o));
  o.flags = 0x80;
  BAD(tfo_listen(sa, sizeof(a), 0, &o), EINVAL);
  memset(&o, 0, sizeof(o));
  o.reserved_int[3] = 1;
  BAD(tfo_listen(sa, sizeof(a), 0, &o), EINVAL);
  memset(&o, 0, sizeof(o));
  o.reserved[0] = &o;
  BAD(tfo_listen(sa, sizeof(a), 0, &o), EINVAL);
  memset(&o, 0, sizeof(o));
  o.flags = TFO_LISTEN_DUALSTACK; /* IPv4 address */
  BAD(tfo_listen(sa, sizeof(a), 0, &o), EINVAL);
  memset(&o, 0, sizeof(o));
  o.key = key32;
  o.key_len = 24;
  BAD(tfo_listen(sa, sizeof(a), 0, &o), EINVAL);
  o.key_len = 0;
  BAD(tfo_listen(sa, sizeof(a), 0, &o), EINVAL);
  o.key_len = 16;
  o.key_file = "/nonexistent";
  BAD(tfo_listen(sa, sizeof(a), 0, &o), EINVAL); /* two key sources */
  memset(&o, 0, sizeof(o));
  o.key_len = 16; /* a length without a key */
  BAD(tfo_listen(sa, sizeof(a), 0, &o), EINVAL);
  memset(&o, 0, sizeof(o));
  o.key = zero;
  o.key_len = 16;
  BAD(tfo_listen(sa, sizeof(a), 0, &o), EINVAL);
  memset(&o, 0, sizeof(o));
  o.key_file = "/nonexistent/key";
  BAD(tfo_listen(sa, sizeof(a), 0, &o), ENOENT);

  BAD(tfo_set_key(-1, key32, 16), EBADF);
  BAD(tfo_set_key(0, key32, 20), EINVAL);
  BAD(tfo_set_key(0, NULL, 16), EINVAL);
  BAD(tfo_set_key(0, zero, 16), EINVAL);

  BAD(tfo_info(-1, (struct tfo_info *)&o), EBADF);
  BAD(tfo_info(0, NULL), EINVAL);
  assert_int_equal(open_fds(), before); /* nothing leaked */
}

static void listener_gets_its_options(void **state) {
  struct sockaddr_in a = lo4();
  struct tfo_listen_opts o;
  struct tfo_info info;
  uint8_t got[32];
  socklen_t len = sizeof(got);
  long somax = 4096;
  int fd, fl;

  (void)state;
  tfo__sysctl_long("net.core.somaxconn", &somax);
  errno = 4321;
  fd = tfo_listen((struct sockaddr *)&a, sizeof(a), 0, NULL);
  assert_true(fd >= 0);
  assert_int_equal(errno, 4321); /* untouched on success */
  assert_int_equal(get_int(fd, IPPROTO_TCP, TCP_FASTOPEN),
                   somax < TFO_LISTEN_QLEN_DEFAULT ? somax
                                                   : TFO_LISTEN_QLEN_DEFAULT);
  assert_int_equal(get_int(fd, SOL_SOCKET, SO_ACCEPTCONN), 1);
  assert_int_equal(get_int(fd, SOL_SOCKET, SO_REUSEADDR), 1);
  assert_int_equal(get_int(fd, SOL_SOCKET, SO_REUSEPORT), 0);
  assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
  assert_false(fcntl(fd, F_GETFL) & O_NONBLOCK);
  errno = 1234;
  assert_int_equal(tfo_info(fd, &info), 0);
  assert_int_equal(errno, 1234); /* untouched on success */
  assert_int_equal(info.listener, 1);
  assert_int_equal(info.qlen, get_int(fd, IPPROTO_TCP, TCP_FASTOPEN));
  assert_int_equal(info.listen_tfo,
                   info.sysctl >= 0 && (info.sysctl & 2) ? 1 : 0);
  close(fd);

  memset(&o, 0, sizeof(o));
  o.qlen = 7;
  o.flags = TFO_LISTEN_REUSEPORT | TFO_LISTEN_NONBLOCK;
  o.key = key32;
  o.key_len = 32;
  fd = tfo_listen((struct sockaddr *)&a, sizeof(a), 5, &o);
  assert_true(fd >= 0);
  assert_int_equal(get_int(fd, IPPROTO_TCP, TCP_FASTOPEN), 7);
  assert_int_equal(get_int(fd, SOL_SOCKET, SO_REUSEPORT), 1);
  fl = fcntl(fd, F_GETFL);
  assert_true(fl & O_NONBLOCK);
  /* The listener's own key, primary and backup, as given. */
  assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_KEY, got, &len), 0);
  assert_int_equal(len, 32);
  assert_memory_equal(got, key32, 32);
  /* Rotated live: a new primary only. */
  assert_int_equal(tfo_set_key(fd, key32 + 16, 16), 0);
  len = sizeof(got);
  assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_KEY, got, &len), 0);
  assert_int_equal(len, 16);
  assert_memory_equal(got, key32 + 16, 16);
  close(fd);

  o.qlen = 1 << 30; /* capped at somaxconn */
  o.key = NULL;
  o.key_len = 0;
  fd = tfo_listen((struct sockaddr *)&a, sizeof(a), 0, &o);
  assert_true(fd >= 0);
  assert_int_equal(get_int(fd, IPPROTO_TCP, TCP_FASTOPEN), somax);
  close(fd);
}

static void ipv6_only_unless_dual_stack(void **state) {
  struct sockaddr_in6 a;
  struct tfo_listen_opts o;
  int fd;

  (void)state;
  /* The unspecified address: binding a specific one makes the kernel set
   * V6ONLY itself, which would hide what tfo_listen did. */
  memset(&a, 0, sizeof(a));
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_any;
  fd = tfo_listen((struct sockaddr *)&a, sizeof(a), 0, NULL);
  if (fd < 0 && (errno == EADDRNOTAVAIL || errno == EAFNOSUPPORT))
    skip(); /* no IPv6 here */
  assert_true(fd >= 0);
  assert_int_equal(get_int(fd, IPPROTO_IPV6, IPV6_V6ONLY), 1);
  close(fd);
  memset(&o, 0, sizeof(o));
  o.flags = TFO_LISTEN_DUALSTACK;
  fd = tfo_listen((struct sockaddr *)&a, sizeof(a), 0, &o);
  assert_true(fd >= 0);
  assert_int_equal(get_int(fd, IPPROTO_IPV6, IPV6_V6ONLY), 0);
  close(fd);
}

static void info_tells_sockets_apart(void **state) {
  struct sockaddr_in a = lo4();
  socklen_t len = sizeof(a);
  struct tfo_info info;
  int lfd, c, s, u, p[2];

  (void)state;
  lfd = tfo_listen((struct sockaddr *)&a, sizeof(a), 0, NULL);
  assert_true(lfd >= 0);
  assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &len), 0);
  c = socket(AF_INET, SOCK_STREAM, 0);
  assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
  s = accept(lfd, NULL, NULL);
  assert_true(s >= 0);
  memset(&info, 0x55, sizeof(info));
  assert_int_equal(tfo_info(s, &info), 0);
  assert_int_equal(info.listener, 0);
  assert_int_equal(info.syn_data, 0); /* a plain connect */
  assert_int_equal(info.tfo_child, tfo__kernel_at_least(6, 16) ? 0 : -1);
  assert_int_equal(info.outcome, 0); /* not made by tfo_connect_send */
  assert_int_equal(info.reserved_int[0], 0);
  assert_int_equal(tfo_info(c, &info), 0);
  assert_int_equal(info.outcome, 0);
  close(c);
  close(s);
  close(lfd);

  u = socket(AF_INET, SOCK_DGRAM, 0);
  errno = 0;
  assert_int_equal(tfo_info(u, &info), -1);
  assert_int_equal(errno, EPROTOTYPE);
  close(u);
  assert_int_equal(pipe(p), 0);
  errno = 0;
  assert_int_equal(tfo_info(p[0], &info), -1);
  assert_int_equal(errno, ENOTSOCK);
  close(p[0]);
  close(p[1]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(bad_input_fails_cleanly),
      cmocka_unit_test(listener_gets_its_options),
      cmocka_unit_test(ipv6_only_unless_dual_stack),
      cmocka_unit_test(info_tells_sockets_apart),
  };

  setenv("LIBTFO_LOG", "0", 1); /* "no server bit" is not news here */
  return cmocka_run_group_tests(tests, NULL, NULL);
}
