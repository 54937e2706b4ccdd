/* libFuzzer harness: server key text (tfo__key_parse, tfo__key_format) and
 * key files (tfo__key_parse_file, tfo__key_read_file).
 *
 * The input is parsed as key text and as a key file's contents from a buffer
 * of its exact size (no NUL: the parsers take a length), then written to a
 * 0600 temporary file that tfo__key_read_file must judge exactly as the
 * in-memory parser did (or refuse as too big past TFO__KEY_FILE_MAX). A key
 * that parses must format back to text that parses to the same key.
 *
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "key.h"

#define CHECK(c)                                                               \
  do {                                                                         \
    if (!(c))                                                                  \
      __builtin_trap();                                                        \
  } while (0)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];
static int wfd = -1;

static void cleanup(void) {
  if (path[0] != '\0')
    unlink(path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  const char *tmp = getenv("TMPDIR");

  (void)argc;
  (void)argv;
  snprintf(path, sizeof(path), "%s/fuzz-key.XXXXXX",
           tmp != NULL && strlen(tmp) < 40 ? tmp : "/tmp");
  wfd = mkstemp(path); /* mode 0600, ours: a file tfo__key_read_file takes */
  if (wfd < 0) {
    perror("mkstemp");
    exit(1);
  }
  atexit(cleanup);
  return 0;
}

static void same_key(const struct tfo__key *a, const struct tfo__key *b) {
  CHECK(a->len == b->len);
  CHECK(memcmp(a->bytes, b->bytes, a->len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct tfo__key k, k2, k3;
  char text[TFO__KEY_TEXT_MAX], why[256];
  char *buf = malloc(size ? size : 1);
  int rc, rc2;

  if (buf == NULL)
    return 0;
  memcpy(buf, data, size);

  /* Key text. */
  memset(&k, 0x5a, sizeof(k));
  if (tfo__key_parse(buf, size, &k) == 0) {
    CHECK(k.len == TFO__KEY_LEN || k.len == TFO__KEY_MAX);
    CHECK(tfo__key_check(k.bytes, k.len) == 0);
    memset(text, 0, sizeof(text));
    tfo__key_format(&k, text);
    CHECK(strlen(text) == (k.len == TFO__KEY_LEN ? 35u : 71u));
    CHECK(tfo__key_parse(text, strlen(text), &k2) == 0);
    same_key(&k, &k2);
  } else {
    CHECK(errno == EINVAL);
  }

  /* Key file contents, in memory; why must always be a terminated string. */
  memset(why, 'x', sizeof(why));
  rc = tfo__key_parse_file(buf, size, &k2, why, sizeof(why));
  if (rc == 0) {
    CHECK(k2.len == TFO__KEY_LEN || k2.len == TFO__KEY_MAX);
    CHECK(tfo__key_check(k2.bytes, k2.len) == 0);
  } else {
    CHECK(errno == EINVAL);
    CHECK(memchr(why, '\0', sizeof(why)) != NULL);
  }
  /* A tiny why buffer must not overflow. */
  (void)tfo__key_parse_file(buf, size, &k3, why, 1);

  /* The same bytes as a key file on disk. */
  if (ftruncate(wfd, 0) == 0 && pwrite(wfd, buf, size, 0) == (ssize_t)size) {
    memset(why, 'x', sizeof(why));
    rc2 = tfo__key_read_file(path, &k3, why, sizeof(why));
    if (size > TFO__KEY_FILE_MAX) {
      CHECK(rc2 == -1 && errno == EINVAL);
    } else {
      CHECK(rc2 == rc);
      if (rc == 0)
        same_key(&k2, &k3);
    }
    if (rc2 != 0)
      CHECK(memchr(why, '\0', sizeof(why)) != NULL);
  }
  free(buf);
  return 0;
}
