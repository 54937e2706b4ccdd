/* LIBTFO_CACHE: where the negative cache lives when no caller configured
 * it. The variable is read once per process, so every case runs in a child.
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "cache.h"

static char dir[64];

static int setup(void **state) {
  (void)state;
  strcpy(dir, "/tmp/tfo-cache-env.XXXXXX");
  assert_non_null(mkdtemp(dir));
  return 0;
}

static int teardown(void **state) {
  char cmd[128];

  (void)state;
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  return system(cmd);
}

static struct sockaddr_in dest(void) {
  struct sockaddr_in a;

  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_port = htons(443);
  a.sin_addr.s_addr = htonl(0xc6120002);
  return a;
}

/* Runs check() in a child with LIBTFO_CACHE=value and stderr in a file;
 * returns the child's exit status and leaves stderr in *err. */
static int in_child(const char *value, int (*check)(void), char *err,
                    size_t errlen) {
  char path[128];
  pid_t pid;
  int status, fd;
  ssize_t n;

  snprintf(path, sizeof(path), "%s/stderr", dir);
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || dup2(fd, 2) < 0)
      _exit(99);
    if (value != NULL)
      setenv("LIBTFO_CACHE", value, 1);
    else
      unsetenv("LIBTFO_CACHE");
    _exit(check());
  }
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  fd = open(path, O_RDONLY);
  assert_true(fd >= 0);
  n = read(fd, err, errlen - 1);
  err[n > 0 ? n : 0] = '\0';
  close(fd);
  return WEXITSTATUS(status);
}

static int record_then_find(void) {
  struct sockaddr_in a = dest();
  struct tfo__verdict v;

  if (tfo__cache_record((struct sockaddr *)&a, sizeof(a), TFO__EV_BLACKHOLE,
                        0) != 0)
    return 10;
  if (tfo__cache_lookup((struct sockaddr *)&a, sizeof(a), &v) != 0)
    return 11;
  return v.skip ? 0 : 12;
}

static int off_forgets(void) {
  struct sockaddr_in a = dest();
  struct tfo__verdict v;

  tfo__cache_record((struct sockaddr *)&a, sizeof(a), TFO__EV_BLACKHOLE, 0);
  if (tfo__cache_lookup((struct sockaddr *)&a, sizeof(a), &v) == 0)
    return 20;
  return errno == ENOENT && tfo__cache_path() == NULL ? 0 : 21;
}

static int default_used(void) {
  const char *p;
  int rc = record_then_find();

  p = tfo__cache_path();
  /* As root: /run/libtfo/cache (or memory-only when /run is not ours). */
  return rc != 0 ? rc : (p == NULL || strstr(p, "/libtfo/cache") ? 0 : 30);
}

static int explicit_call_wins(void) {
  char path[128];

  snprintf(path, sizeof(path), "%s/called", dir);
  if (tfo__cache_configure(path) != 0)
    return 40;
  return record_then_find() == 0 &&
                 strcmp(tfo__cache_path() ? tfo__cache_path() : "", path) == 0
             ? 0
             : 41;
}

/* A destination that stays good is not rewritten for a small RTT change
 * (no file lock per connect); a larger one is recorded. */
static int good_stays_unwritten(void) {
  struct sockaddr_in a = dest();
  struct tfo__verdict v;

  if (tfo__cache_record((struct sockaddr *)&a, sizeof(a), TFO__EV_DATA_ACKED,
                        50000) != 0 ||
      tfo__cache_record((struct sockaddr *)&a, sizeof(a), TFO__EV_DATA_ACKED,
                        53000) != 0 ||
      tfo__cache_lookup((struct sockaddr *)&a, sizeof(a), &v) != 0)
    return 50;
  if (v.rtt_us != 50000)
    return 51; /* within an eighth: left as it was */
  if (tfo__cache_record((struct sockaddr *)&a, sizeof(a), TFO__EV_DATA_ACKED,
                        90000) != 0 ||
      tfo__cache_lookup((struct sockaddr *)&a, sizeof(a), &v) != 0)
    return 52;
  return v.rtt_us > 50000 && v.rtt_us < 90000 ? 0 : 53; /* smoothed in */
}

static void good_destination_not_rewritten(void **state) {
  char value[128], err[512];

  (void)state;
  snprintf(value, sizeof(value), "%s/c", dir);
  assert_int_equal(in_child(value, good_stays_unwritten, err, sizeof(err)), 0);
}

static void path_is_used(void **state) {
  char value[128], err[512];
  struct stat st;

  (void)state;
  snprintf(value, sizeof(value), "%s/mycache", dir);
  assert_int_equal(in_child(value, record_then_find, err, sizeof(err)), 0);
  assert_int_equal(stat(value, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  assert_string_equal(err, "");
  /* A second process finds what the first recorded. */
  assert_int_equal(in_child(value, record_then_find, err, sizeof(err)), 0);
}

static void off_disables(void **state) {
  char err[512];

  (void)state;
  assert_int_equal(in_child("off", off_forgets, err, sizeof(err)), 0);
  assert_string_equal(err, "");
}

static void malformed_is_named_and_ignored(void **state) {
  char err[512];

  (void)state;
  assert_int_equal(in_child("relative/cache", default_used, err, sizeof(err)),
                   0);
  assert_non_null(strstr(err, "LIBTFO_CACHE='relative/cache'"));
  assert_null(strstr(strstr(err, "LIBTFO_CACHE") + 1, "LIBTFO_CACHE"));
}

static void configure_overrides_env(void **state) {
  char err[512];

  (void)state;
  assert_int_equal(in_child("off", explicit_call_wins, err, sizeof(err)), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(path_is_used, setup, teardown),
      cmocka_unit_test_setup_teardown(off_disables, setup, teardown),
      cmocka_unit_test_setup_teardown(malformed_is_named_and_ignored, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(configure_overrides_env, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(good_destination_not_rewritten, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
