/* Server keys: the text form (byte order, strictness, hostile input), key
 * files (format, permissions, owners, odd files), tfo_load_key_file and the
 * atomic file writer.
 *
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "key.h"
#include "tfo.h"

#define K16 "03020100-07060504-0b0a0908-0f0e0d0c"
#define K16B "13121110-17161514-1b1a1918-1f1e1d1c"

static char dir[] = "/tmp/tfo-test-key.XXXXXX";

static int parse(const char *s, struct tfo__key *k) {
  return tfo__key_parse(s, strlen(s), k);
}

static void parse_is_little_endian_per_group(void **state) {
  struct tfo__key k;
  char text[TFO__KEY_TEXT_MAX];
  int i;

  (void)state;
  assert_int_equal(parse(K16, &k), 0);
  assert_int_equal(k.len, 16);
  for (i = 0; i < 16; i++)
    assert_int_equal(k.bytes[i], i); /* "03020100" is bytes 00 01 02 03 */
  tfo__key_format(&k, text);
  assert_string_equal(text, K16);

  assert_int_equal(parse(K16 "," K16B, &k), 0);
  assert_int_equal(k.len, 32);
  for (i = 0; i < 32; i++)
    assert_int_equal(k.bytes[i], i);
  tfo__key_format(&k, text);
  assert_string_equal(text, K16 "," K16B);
}

static void parse_accepts_case_and_surrounding_blanks(void **state) {
  struct tfo__key k;
  char text[TFO__KEY_TEXT_MAX];

  (void)state;
  assert_int_equal(parse(" \t01ABCDEF-89abcdef-FEDCBA98-76543210\r\n", &k), 0);
  tfo__key_format(&k, text);
  assert_string_equal(text, "01abcdef-89abcdef-fedcba98-76543210");
}

static void parse_rejects_everything_else(void **state) {
  static const char *const bad[] = {
      "",
      " ",
      "-",
      "0302010-07060504-0b0a0908-0f0e0d0c",   /* 7 digits */
      "030201000-07060504-0b0a0908-0f0e0d0c", /* 9 digits */
      "03020100-07060504-0b0a0908",           /* 3 groups */
      K16 "-13121110",                        /* 5 groups */
      "03020100-07060504-0b0a0908-0f0e0d0g",  /* not hex */
      "0x020100-07060504-0b0a0908-0f0e0d0c",  /* 0x */
      "+3020100-07060504-0b0a0908-0f0e0d0c",  /* sign */
      "03020100 07060504 0b0a0908 0f0e0d0c",  /* blanks */
      "03020100--07060504-0b0a0908-0f0e0d0c",
      "03020100-07060504-0b0a0908-0f0e0d0c-",
      "03020100:07060504:0b0a0908:0f0e0d0c",
      "0302 0100-07060504-0b0a0908-0f0e0d0c",
      K16 ",",                  /* empty backup */
      K16 ",13121110-17161514", /* short backup */
      K16 "," K16B "," K16,     /* three keys */
      K16 " ," K16B,            /* blank inside */
      K16 "x",
      "x" K16,
      "00000000-00000000-00000000-00000000",      /* all zeros */
      K16 ",00000000-00000000-00000000-00000000", /* zero backup */
      "00000000-00000000-00000000-00000000," K16,
      "0302010\xff-07060504-0b0a0908-0f0e0d0c", /* high byte */
  };
  struct tfo__key k;
  size_t i;

  (void)state;
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    memset(&k, 0xaa, sizeof(k));
    errno = 0;
    assert_int_equal(parse(bad[i], &k), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(k.bytes[0], 0xaa); /* untouched on error */
  }
  /* A NUL inside: the length, not the NUL, bounds the text. */
  assert_int_equal(tfo__key_parse(K16 "\0"
                                      "00",
                                  sizeof(K16) + 2, &k),
                   -1);
  assert_int_equal(errno, EINVAL);
  assert_int_equal(tfo__key_parse(NULL, 0, &k), -1);
  assert_int_equal(tfo__key_parse(K16, strlen(K16), NULL), -1);
}

/* Random and mutated input never crashes the parser, and whatever it takes
 * formats back to what it took (modulo case and blanks). */
static void parse_survives_hostile_input(void **state) {
  static const char alphabet[] = "0123456789abcdefABCDEF-, \t\n\r\x01\x80xg";
  char buf[200], text[TFO__KEY_TEXT_MAX];
  struct tfo__key k, k2;
  unsigned seed = 12345;
  int i, j, n, taken = 0;

  (void)state;
  for (i = 0; i < 200000; i++) {
    seed = seed * 1103515245u + 12345u;
    if (i % 2) { /* a valid key with a few mutations */
      strcpy(buf, (seed >> 8) & 1 ? K16 "," K16B : K16);
      n = (int)strlen(buf);
      for (j = 0; j < 1 + (int)((seed >> 10) % 3); j++) {
        seed = seed * 1103515245u + 12345u;
        buf[(seed >> 4) % (unsigned)n] =
            alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
      }
    } else {
      n = (int)((seed >> 16) % sizeof(buf));
      for (j = 0; j < n; j++) {
        seed = seed * 1103515245u + 12345u;
        buf[j] = alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
      }
    }
    if (tfo__key_parse(buf, (size_t)n, &k) == 0) {
      taken++;
      tfo__key_format(&k, text);
      assert_int_equal(parse(text, &k2), 0);
      assert_int_equal(k2.len, k.len);
      assert_memory_equal(k2.bytes, k.bytes, k.len);
    }
  }
  assert_true(taken > 0); /* the mutations sometimes stay valid */
}

static void check_wants_16_or_32_nonzero_bytes(void **state) {
  uint8_t b[33];

  (void)state;
  memset(b, 7, sizeof(b));
  assert_int_equal(tfo__key_check(b, 16), 0);
  assert_int_equal(tfo__key_check(b, 32), 0);
  assert_int_equal(tfo__key_check(b, 0), -1);
  assert_int_equal(tfo__key_check(b, 15), -1);
  assert_int_equal(tfo__key_check(b, 17), -1);
  assert_int_equal(tfo__key_check(b, 33), -1);
  assert_int_equal(tfo__key_check(NULL, 16), -1);
  memset(b + 16, 0, 16);
  assert_int_equal(tfo__key_check(b, 16), 0);
  assert_int_equal(tfo__key_check(b, 32), -1);
  assert_int_equal(errno, EINVAL);
}

static int pfile(const char *text, char *why, struct tfo__key *k) {
  return tfo__key_parse_file(text, strlen(text), k, why, 256);
}

static void key_file_formats(void **state) {
  struct tfo__key k;
  char why[256];

  (void)state;
  assert_int_equal(pfile(K16 "\n", why, &k), 0);
  assert_int_equal(k.len, 16);
  assert_int_equal(pfile(K16, why, &k), 0); /* no final newline */
  assert_int_equal(pfile("# farm key\n\n  ; rotated monthly\r\n" K16 "," K16B
                         "\r\n# end\n",
                         why, &k),
                   0);
  assert_int_equal(k.len, 32);
  assert_int_equal(k.bytes[31], 31);
  /* sysctl.d spellings; other settings ignored. */
  assert_int_equal(pfile("net.ipv4.tcp_fastopen = 3\n"
                         "net.ipv4.tcp_fastopen_key = " K16 "\n",
                         why, &k),
                   0);
  assert_int_equal(pfile("net.ipv4.tcp_fastopen_key=" K16, why, &k), 0);
  assert_int_equal(pfile("net/ipv4/tcp_fastopen_key\t=\t" K16, why, &k), 0);
  assert_int_equal(pfile("-net.ipv4.tcp_fastopen_key = " K16, why, &k), 0);
}

static void key_file_refuses_malformed(void **state) {
  static const struct {
    const char *text;
    const char *why;
  } bad[] = {
      {"", "no key in it"},
      {"# only a comment\n\n", "no key in it"},
      {"net.ipv4.tcp_fastopen = 3\n", "no key in it"},
      {"tcp_fastopen_key = " K16 "\n", "no key in it"}, /* not the name */
      {"net.ipv4.tcp_fastopen_keys = " K16 "\n", "no key in it"},
      {"# x\n" K16 "\n" K16B "\n", "line 3: a second key (line 2 has"},
      {K16 "\nnet.ipv4.tcp_fastopen_key = " K16B, "line 2: a second key"},
      {"\n\nhello\n", "line 3: not a key"},
      {"net.ipv4.tcp_fastopen_key = \n", "line 1: not a key"},
      {"net.ipv4.tcp_fastopen_key = " K16 " # comment\n", "line 1: not a key"},
      {"00000000-00000000-00000000-00000000\n", "line 1: not a key"},
  };
  struct tfo__key k;
  char why[256];
  size_t i;

  (void)state;
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    why[0] = '\0';
    errno = 0;
    assert_int_equal(pfile(bad[i].text, why, &k), -1);
    assert_int_equal(errno, EINVAL);
    if (strstr(why, bad[i].why) == NULL)
      fail_msg("'%s': why is '%s', want '%s'", bad[i].text, why, bad[i].why);
  }
  assert_int_equal(
      tfo__key_parse_file(K16 "\n\0", sizeof(K16) + 1, &k, why, sizeof(why)),
      -1);
  assert_non_null(strstr(why, "NUL"));
  /* why may be NULL. */
  assert_int_equal(tfo__key_parse_file("x", 1, &k, NULL, 0), -1);
}

/* Writes text to dir/name with mode; returns the path (static buffer). */
static const char *make(const char *name, const char *text, mode_t mode) {
  static char path[PATH_MAX];
  int fd;

  snprintf(path, sizeof(path), "%s/%s", dir, name);
  unlink(path);
  fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  assert_int_equal(fchmod(fd, mode), 0);
  close(fd);
  return path;
}

static int rfile(const char *path, char *why) {
  struct tfo__key k;

  why[0] = '\0';
  errno = 0;
  return tfo__key_read_file(path, &k, why, 256);
}

static void key_file_permissions(void **state) {
  static const mode_t refused[] = {0640, 0604, 0620, 0602, 0644,
                                   0660, 0666, 0777, 0610, 0601};
  char why[256], name[32];
  size_t i;

  (void)state;
  assert_int_equal(rfile(make("ok", K16 "\n", 0600), why), 0);
  assert_int_equal(rfile(make("ro", K16 "\n", 0400), why), 0);
  for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
    snprintf(name, sizeof(name), "m%04o", (unsigned)refused[i]);
    assert_int_equal(rfile(make(name, K16 "\n", refused[i]), why), -1);
    assert_int_equal(errno, EPERM);
    assert_non_null(strstr(why, "chmod 600"));
  }
  /* Refused before it is read: a world-readable malformed file says perms. */
  assert_int_equal(rfile(make("both", "junk\n", 0644), why), -1);
  assert_int_equal(errno, EPERM);
  assert_non_null(strstr(why, "mode 0644 lets group or others read it"));
  if (geteuid() == 0) { /* someone else's file, even 0600 */
    const char *p = make("foreign", K16 "\n", 0600);

    assert_int_equal(chown(p, 65534, 65534), 0);
    assert_int_equal(rfile(p, why), -1);
    assert_int_equal(errno, EPERM);
    assert_non_null(strstr(why, "owned by uid 65534"));
  }
}

static void key_file_odd_files(void **state) {
  char why[256], path[PATH_MAX], big[TFO__KEY_FILE_MAX + 2];
  struct tfo__key k;

  (void)state;
  snprintf(path, sizeof(path), "%s/none", dir);
  assert_int_equal(rfile(path, why), -1);
  assert_int_equal(errno, ENOENT);
  assert_int_equal(rfile(dir, why), -1); /* a directory */
  assert_int_equal(errno, EINVAL);
  assert_non_null(strstr(why, "not a regular file"));
  snprintf(path, sizeof(path), "%s/fifo", dir);
  assert_int_equal(mkfifo(path, 0600), 0);
  assert_int_equal(rfile(path, why), -1); /* and no hang */
  assert_int_equal(errno, EINVAL);
  unlink(path);
  /* Exactly the limit is fine, one byte more is not. */
  memset(big, '#', sizeof(big));
  memcpy(big, K16 "\n#", sizeof(K16) + 1);
  big[TFO__KEY_FILE_MAX] = '\0';
  assert_int_equal(rfile(make("limit", big, 0600), why), 0);
  big[TFO__KEY_FILE_MAX] = '#';
  big[TFO__KEY_FILE_MAX + 1] = '\0';
  assert_int_equal(rfile(make("big", big, 0600), why), -1);
  assert_int_equal(errno, EINVAL);
  assert_non_null(strstr(why, "too big"));
  /* A symbolic link to a good file is followed (secrets often are). */
  snprintf(path, sizeof(path), "%s/link", dir);
  unlink(path);
  assert_int_equal(symlink(make("target", K16 "\n", 0600), path), 0);
  assert_int_equal(tfo__key_read_file(path, &k, why, sizeof(why)), 0);
  assert_int_equal(tfo__key_read_file(NULL, &k, why, sizeof(why)), -1);
  assert_int_equal(errno, EINVAL);
  assert_int_equal(tfo__key_read_file("", &k, why, sizeof(why)), -1);
}

static void load_key_file_api(void **state) {
  uint8_t key[TFO_KEY_MAX];
  const char *p;
  int i;

  (void)state;
  memset(key, 0, sizeof(key));
  assert_int_equal(tfo_load_key_file(make("a16", K16, 0600), key, 16), 16);
  for (i = 0; i < 16; i++)
    assert_int_equal(key[i], i);
  p = make("a32", "net.ipv4.tcp_fastopen_key = " K16 "," K16B "\n", 0600);
  assert_int_equal(tfo_load_key_file(p, key, sizeof(key)), 32);
  assert_int_equal(key[31], 31);
  errno = 0;
  assert_int_equal(tfo_load_key_file(p, key, 31), -1);
  assert_int_equal(errno, ERANGE);
  assert_int_equal(tfo_load_key_file(make("open", K16, 0644), key, 32), -1);
  assert_int_equal(errno, EPERM);
  assert_int_equal(tfo_load_key_file(make("bad", "nope", 0600), key, 32), -1);
  assert_int_equal(errno, EINVAL);
  assert_int_equal(tfo_load_key_file(NULL, key, 32), -1);
  assert_int_equal(errno, EINVAL);
  assert_int_equal(tfo_load_key_file(p, NULL, 32), -1);
  assert_int_equal(errno, EINVAL);
}

static void generate_gives_fresh_nonzero_keys(void **state) {
  uint8_t a[32], b[32];

  (void)state;
  assert_int_equal(tfo__key_generate(a, sizeof(a)), 0);
  assert_int_equal(tfo__key_generate(b, sizeof(b)), 0);
  assert_memory_not_equal(a, b, sizeof(a));
  assert_int_equal(tfo__key_check(a, 32), 0);
  assert_int_equal(tfo__key_generate(NULL, 16), -1);
}

static void file_replace_is_atomic_and_private(void **state) {
  char path[PATH_MAX], buf[64];
  struct stat sb;
  int fd, n;

  (void)state;
  snprintf(path, sizeof(path), "%s/replaced", dir);
  assert_int_equal(tfo__file_replace(path, "one\n", 0600), 0);
  assert_int_equal(stat(path, &sb), 0);
  assert_int_equal(sb.st_mode & 07777, 0600);
  assert_int_equal(tfo__file_replace(path, "two\n", 0644), 0);
  assert_int_equal(stat(path, &sb), 0);
  assert_int_equal(sb.st_mode & 07777, 0644);
  fd = open(path, O_RDONLY);
  n = (int)read(fd, buf, sizeof(buf) - 1);
  close(fd);
  buf[n > 0 ? n : 0] = '\0';
  assert_string_equal(buf, "two\n");
  snprintf(path, sizeof(path), "%s/missing/file", dir);
  assert_int_equal(tfo__file_replace(path, "x", 0600), -1);
  assert_int_equal(errno, ENOENT);
  assert_int_equal(tfo__file_replace(NULL, "x", 0600), -1);
  assert_int_equal(errno, EINVAL);
}

static int cleanup(void) {
  char cmd[PATH_MAX + 16];

  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  return system(cmd);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(parse_is_little_endian_per_group),
      cmocka_unit_test(parse_accepts_case_and_surrounding_blanks),
      cmocka_unit_test(parse_rejects_everything_else),
      cmocka_unit_test(parse_survives_hostile_input),
      cmocka_unit_test(check_wants_16_or_32_nonzero_bytes),
      cmocka_unit_test(key_file_formats),
      cmocka_unit_test(key_file_refuses_malformed),
      cmocka_unit_test(key_file_permissions),
      cmocka_unit_test(key_file_odd_files),
      cmocka_unit_test(load_key_file_api),
      cmocka_unit_test(generate_gives_fresh_nonzero_keys),
      cmocka_unit_test(file_replace_is_atomic_and_private),
  };
  int rc;

  setenv("LIBTFO_LOG", "0", 1); /* the refusals are expected */
  if (mkdtemp(dir) == NULL)
    return 1;
  rc = cmocka_run_group_tests(tests, NULL, NULL);
  if (cleanup() != 0)
    return 1;
  return rc;
}
