/* tfo__sockopt_copy: the options a program set on its socket reach the
 * plain socket that takes its place; options it left alone stay the
 * kernel's defaults on the new socket (no buffer size pinned).
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "sockopt.h"

static int get_int(int fd, int level, int name) {
  int v = -1;
  socklen_t len = sizeof(v);

  assert_int_equal(getsockopt(fd, level, name, &v, &len), 0);
  return v;
}

static void set_int(int fd, int level, int name, int v) {
  assert_int_equal(setsockopt(fd, level, name, &v, sizeof(v)), 0);
}

static void carries_what_was_set(int family) {
  int from = socket(family, SOCK_STREAM, IPPROTO_TCP);
  int to = socket(family, SOCK_STREAM, IPPROTO_TCP);
  int fresh = socket(family, SOCK_STREAM, IPPROTO_TCP);
  struct linger l = {1, 7}, lg;
  socklen_t len = sizeof(lg);
  char cc[16] = "";

  assert_true(from >= 0 && to >= 0 && fresh >= 0);
  set_int(from, IPPROTO_TCP, TCP_NODELAY, 1);
  set_int(from, SOL_SOCKET, SO_KEEPALIVE, 1);
  set_int(from, IPPROTO_TCP, TCP_KEEPIDLE, 77);
  set_int(from, IPPROTO_TCP, TCP_KEEPINTVL, 9);
  set_int(from, IPPROTO_TCP, TCP_KEEPCNT, 4);
  set_int(from, IPPROTO_TCP, TCP_USER_TIMEOUT, 12345);
  /* TOS first: setting it also sets the priority. */
  if (family == AF_INET)
    set_int(from, IPPROTO_IP, IP_TOS, 0x28);
  else
    set_int(from, IPPROTO_IPV6, IPV6_TCLASS, 0x28);
  set_int(from, SOL_SOCKET, SO_PRIORITY, 5);
  assert_int_equal(setsockopt(from, SOL_SOCKET, SO_LINGER, &l, sizeof(l)), 0);
  /* reno is always built in. */
  assert_int_equal(setsockopt(from, IPPROTO_TCP, TCP_CONGESTION, "reno", 4), 0);

  errno = 4242;
  assert_int_equal(tfo__sockopt_copy(from, to, family), 0);
  assert_int_equal(errno, 4242); /* untouched */

  assert_int_equal(get_int(to, IPPROTO_TCP, TCP_NODELAY), 1);
  assert_int_equal(get_int(to, SOL_SOCKET, SO_KEEPALIVE), 1);
  assert_int_equal(get_int(to, IPPROTO_TCP, TCP_KEEPIDLE), 77);
  assert_int_equal(get_int(to, IPPROTO_TCP, TCP_KEEPINTVL), 9);
  assert_int_equal(get_int(to, IPPROTO_TCP, TCP_KEEPCNT), 4);
  assert_int_equal(get_int(to, IPPROTO_TCP, TCP_USER_TIMEOUT), 12345);
  assert_int_equal(get_int(to, SOL_SOCKET, SO_PRIORITY), 5);
  if (family == AF_INET)
    assert_int_equal(get_int(to, IPPROTO_IP, IP_TOS), 0x28);
  else
    assert_int_equal(get_int(to, IPPROTO_IPV6, IPV6_TCLASS), 0x28);
  assert_int_equal(getsockopt(to, SOL_SOCKET, SO_LINGER, &lg, &len), 0);
  assert_int_equal(lg.l_onoff, 1);
  assert_int_equal(lg.l_linger, 7);
  len = sizeof(cc);
  assert_int_equal(getsockopt(to, IPPROTO_TCP, TCP_CONGESTION, cc, &len), 0);
  assert_string_equal(cc, "reno");
  /* Buffers are not carried: the new socket's stay autotuned. */
  assert_int_equal(get_int(to, SOL_SOCKET, SO_RCVBUF),
                   get_int(fresh, SOL_SOCKET, SO_RCVBUF));
  close(from);
  close(to);
  close(fresh);
}

static void carries_v4(void **state) {
  (void)state;
  carries_what_was_set(AF_INET);
}

static void carries_v6(void **state) {
  (void)state;
  carries_what_was_set(AF_INET6);
}

/* A socket left at its defaults changes nothing on the new one. */
static void defaults_change_nothing(void **state) {
  int from = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
  int to = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);

  (void)state;
  assert_true(from >= 0 && to >= 0);
  set_int(to, IPPROTO_TCP, TCP_NODELAY, 1); /* differs: would be reset */
  assert_int_equal(tfo__sockopt_copy(from, to, AF_INET), 0);
  assert_int_equal(get_int(to, IPPROTO_TCP, TCP_NODELAY), 0);
  close(from);
  close(to);
}

/* Bad descriptors: nothing set, no crash, errno untouched. */
static void bad_fds(void **state) {
  (void)state;
  errno = 7;
  assert_int_equal(tfo__sockopt_copy(-1, -1, AF_INET), 0);
  assert_int_equal(errno, 7);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(carries_v4),
      cmocka_unit_test(carries_v6),
      cmocka_unit_test(defaults_change_nothing),
      cmocka_unit_test(bad_fds),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
