/* libFuzzer harness: tfoctl's command line and address parsing.
 *
 * tools/ is compiled in here as is (main renamed, cmd_key and cmd_probe
 * renamed so that stubs take their place): the input, split at NUL bytes,
 * is a command line that goes through tfoctl's main (global options
 * anywhere, compaction, dispatch). The stub commands run only the parsing:
 * "key" runs cmd-key.c's parse_args, "probe" tfoctl_split_host, and every
 * argument goes through tfoctl_parse_addr, whose result must print
 * (tfoctl_addr_str) and parse back to the same address. Nothing touches
 * the system: no sysctl, no socket, no DNS.
 *
 * SPDX-License-Identifier: MIT */
#define main tfoctl_main
#include "../../tools/tfoctl.c"
#undef main
#define cmd_key real_cmd_key
#include "../../tools/cmd-key.c"
#undef cmd_key
#define cmd_probe real_cmd_probe
#include "../../tools/cmd-probe.c"
#undef cmd_probe

#include <stdint.h>

#define CHECK(c)                                                               \
  do {                                                                         \
    if (!(c))                                                                  \
      __builtin_trap();                                                        \
  } while (0)

#define MAX_ARGS 16

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  FILE *null = fopen("/dev/null", "w");

  (void)argc;
  (void)argv;
  setenv("LIBTFO_LOG", "0", 1);
  /* tfoctl's usage and messages: libFuzzer and ASan write to fd 2 on their
   * own, so their reports still show. */
  if (null != NULL) {
    stdout = null;
    stderr = null;
  }
  return 0;
}

static void check_addr(const char *s) {
  struct sockaddr_storage ss, ss2;
  socklen_t len = 0, len2 = 0;
  char buf[INET6_ADDRSTRLEN + 16];
  int port = 12345, port2;

  if (tfoctl_parse_addr(s, &ss, &len, &port) != 0)
    return;
  CHECK(port == -1 || (port >= 1 && port <= 65535));
  CHECK((ss.ss_family == AF_INET && len == sizeof(struct sockaddr_in)) ||
        (ss.ss_family == AF_INET6 && len == sizeof(struct sockaddr_in6)));
  tfoctl_addr_str((struct sockaddr *)&ss, port > 0, buf, sizeof(buf));
  CHECK(tfoctl_parse_addr(buf, &ss2, &len2, &port2) == 0);
  CHECK(len2 == len && port2 == port);
  CHECK(memcmp(&ss, &ss2, len) == 0);
  tfoctl_addr_str((struct sockaddr *)&ss, 1, buf, 4); /* truncated */
  CHECK(strlen(buf) <= 3);
}

static void check_argv(int argc, char **argv) {
  int i;

  CHECK(argc >= 0 && argc < MAX_ARGS + 1);
  CHECK(argv[argc] == NULL);
  for (i = 0; i < argc; i++) {
    CHECK(argv[i] != NULL);
    check_addr(argv[i]);
  }
}

static int stub(const struct ctl *c, int argc, char **argv) {
  CHECK(c != NULL && c->sysctl_dir != NULL && *c->sysctl_dir != '\0');
  CHECK(c->cache == NULL || *c->cache != '\0');
  check_argv(argc, argv);
  return 0;
}

int cmd_status(const struct ctl *c, int argc, char **argv) {
  return stub(c, argc, argv);
}
int cmd_enable(const struct ctl *c, int argc, char **argv) {
  return stub(c, argc, argv);
}
int cmd_stats(const struct ctl *c, int argc, char **argv) {
  return stub(c, argc, argv);
}
int cmd_cookies(const struct ctl *c, int argc, char **argv) {
  return stub(c, argc, argv);
}
int cmd_cache(const struct ctl *c, int argc, char **argv) {
  return stub(c, argc, argv);
}

int cmd_monitor(const struct ctl *c, int argc, char **argv) {
  return stub(c, argc, argv);
}
int cmd_service(const struct ctl *c, int argc, char **argv) {
  return stub(c, argc, argv);
}

int cmd_key(const struct ctl *c, int argc, char **argv) {
  struct args a;

  stub(c, argc, argv);
  if (argc == 0)
    return 0;
  if (parse_args(argv[0], argc - 1, argv + 1, &a) == 0) {
    CHECK(a.file == NULL || *a.file != '\0');
    CHECK(a.out == NULL || *a.out != '\0');
  }
  return 0;
}

int cmd_probe(const struct ctl *c, int argc, char **argv) {
  char host[256];
  const char *port;
  int i;

  stub(c, argc, argv);
  for (i = 0; i < argc; i++) {
    port = NULL;
    if (tfoctl_split_host(argv[i], host, sizeof(host), &port) == 0) {
      CHECK(strlen(host) > 0 && strlen(host) < sizeof(host));
      CHECK(port == NULL ||
            (port > argv[i] && port <= argv[i] + strlen(argv[i])));
    }
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *argv[MAX_ARGS + 2], *copy[MAX_ARGS + 1];
  size_t off = 0, n;
  int argc = 1, i;

  argv[0] = "tfoctl";
  while (off < size && argc <= MAX_ARGS) {
    n = strnlen((const char *)data + off, size - off);
    /* Each argument in a buffer of its exact size (ASan sees overreads). */
    copy[argc - 1] = malloc(n + 1);
    if (copy[argc - 1] == NULL)
      break;
    memcpy(copy[argc - 1], data + off, n);
    copy[argc - 1][n] = '\0';
    argv[argc] = copy[argc - 1];
    argc++;
    off += n + 1;
  }
  argv[argc] = NULL;
  (void)tfoctl_main(argc, argv);
  for (i = 0; i < argc - 1; i++)
    free(copy[i]);
  return 0;
}
