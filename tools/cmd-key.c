/* tfoctl key: server keys in the namespace's net.ipv4.tcp_fastopen_key and
 * in key files (the format is lib/key.h's, and every file written here is
 * both a key file and a sysctl.d file).
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "kernel.h"
#include "key.h"
#include "tfoctl.h"

#define KEY_SYSCTL_FILE "60-libtfo-fastopen-key.conf"
#define WANT                                                                   \
  "want xxxxxxxx-xxxxxxxx-xxxxxxxx-xxxxxxxx[,backup], 8 hex digits "           \
  "per group, not all zeros"

/* The namespace's key: 1 and *k when set, 0 when none yet (all zeros), -1
 * with a message when it cannot be read. */
static int read_kernel_key(const char *cmd, struct tfo__key *k) {
  char buf[TFO__KEY_TEXT_MAX + 8];

  if (tfo__sysctl_read(TFO__KEY_SYSCTL, buf, sizeof(buf)) != 0) {
    tfoctl_fail(cmd, "cannot read " TFO__KEY_SYSCTL ": %s%s", strerror(errno),
                errno == EACCES || errno == EPERM ? " (root only)" : "");
    return -1;
  }
  if (strspn(buf, "0-,") == strlen(buf))
    return 0;
  if (tfo__key_parse(buf, strlen(buf), k) != 0) {
    tfoctl_fail(cmd, TFO__KEY_SYSCTL " holds something unexpected");
    return -1;
  }
  return 1;
}

/* Sets the namespace's key and reads it back: the kernel is the judge. */
static int write_kernel_key(const char *cmd, const struct tfo__key *k) {
  char text[TFO__KEY_TEXT_MAX];
  struct tfo__key back;

  tfo__key_format(k, text);
  if (tfo__sysctl_write(TFO__KEY_SYSCTL, text) != 0) {
    tfoctl_fail(cmd, "cannot set " TFO__KEY_SYSCTL ": %s%s", strerror(errno),
                errno == EACCES || errno == EPERM ? " (needs root)" : "");
    tfo__key_wipe(text, sizeof(text));
    return -1;
  }
  tfo__key_wipe(text, sizeof(text));
  if (read_kernel_key(cmd, &back) != 1 || back.len != k->len ||
      memcmp(back.bytes, k->bytes, k->len) != 0) {
    tfoctl_fail(cmd, "the kernel did not take the key%s",
                k->len == TFO__KEY_MAX ? " (a backup key needs Linux 5.3)"
                                       : "");
    tfo__key_wipe(&back, sizeof(back));
    return -1;
  }
  tfo__key_wipe(&back, sizeof(back));
  return 0;
}

/* The content of every file written here. */
static void file_content(const struct tfo__key *k, const char *why, char *out,
                         size_t size) {
  char text[TFO__KEY_TEXT_MAX];

  tfo__key_format(k, text);
  snprintf(out, size,
           "# TCP Fast Open server key (%s), written by tfoctl key %s.\n"
           "# Keep it secret (mode 0600). A key file for tfo_listen and a "
           "sysctl.d file.\n" TFO__KEY_SYSCTL " = %s\n",
           k->len == TFO__KEY_MAX ? "primary,backup" : "primary", why, text);
  tfo__key_wipe(text, sizeof(text));
}

static int write_key_file(const char *cmd, const char *path,
                          const struct tfo__key *k) {
  char content[512];
  int rc;

  file_content(k, cmd, content, sizeof(content));
  rc = tfo__file_replace(path, content, 0600);
  tfo__key_wipe(content, sizeof(content));
  if (rc != 0)
    tfoctl_fail("key", "cannot write %s: %s", path, strerror(errno));
  return rc;
}

static int persist(const struct ctl *c, const char *cmd,
                   const struct tfo__key *k) {
  char content[512];
  int rc;

  file_content(k, cmd, content, sizeof(content));
  rc = tfoctl_persist(c, "key", KEY_SYSCTL_FILE, content, 0600);
  tfo__key_wipe(content, sizeof(content));
  return rc;
}

static void print_key(const struct ctl *c, const struct tfo__key *k,
                      int is_set) {
  char text[TFO__KEY_TEXT_MAX];

  if (!is_set) {
    if (c->json)
      printf("{\"set\":false,\"primary\":null,\"backup\":null}\n");
    else
      printf("no key set (the kernel makes a random one at first use; it is "
             "lost at reboot)\n");
    return;
  }
  tfo__key_format(k, text);
  if (k->len == TFO__KEY_MAX)
    text[35] = '\0';
  if (c->json) {
    printf("{\"set\":true,\"primary\":\"%s\",\"backup\":", text);
    if (k->len == TFO__KEY_MAX)
      printf("\"%s\"}\n", text + 36);
    else
      printf("null}\n");
  } else {
    printf("primary %s\n", text);
    printf("backup  %s\n", k->len == TFO__KEY_MAX ? text + 36 : "none");
  }
  tfo__key_wipe(text, sizeof(text));
}

struct args {
  int persist;
  int backup;
  const char *file;
  const char *out;
  const char *key;
};

static int parse_args(const char *sub, int argc, char **argv, struct args *a) {
  int i;

  memset(a, 0, sizeof(*a));
  for (i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--persist") == 0) {
      a->persist = 1;
    } else if (strcmp(argv[i], "--backup") == 0) {
      a->backup = 1;
    } else if (strcmp(argv[i], "--file") == 0 ||
               strcmp(argv[i], "--out") == 0) {
      if (i + 1 >= argc || argv[i + 1][0] == '\0')
        return tfoctl_usage_error("key", "%s %s needs a file name", sub,
                                  argv[i]);
      if (argv[i][2] == 'f')
        a->file = argv[++i];
      else
        a->out = argv[++i];
    } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
      return tfoctl_usage_error("key", "%s: unknown option '%s'", sub, argv[i]);
    } else if (a->key == NULL) {
      a->key = argv[i];
    } else {
      return tfoctl_usage_error("key", "%s: unexpected argument '%s'", sub,
                                argv[i]);
    }
  }
  return 0;
}

static int key_generate(const struct ctl *c, const struct args *a) {
  struct tfo__key k;
  char text[TFO__KEY_TEXT_MAX];

  if (a->persist || a->file != NULL || a->key != NULL)
    return tfoctl_usage_error("key", "generate takes only --backup and "
                                     "--out FILE");
  k.len = a->backup ? TFO__KEY_MAX : TFO__KEY_LEN;
  /* A zero half is as likely as guessing the key; retry rather than fail. */
  do {
    if (tfo__key_generate(k.bytes, k.len) != 0)
      return tfoctl_fail("key", "generate: no random bytes: %s",
                         strerror(errno));
  } while (tfo__key_check(k.bytes, k.len) != 0);
  if (a->out != NULL) {
    if (write_key_file("generate", a->out, &k) != 0) {
      tfo__key_wipe(&k, sizeof(k));
      return EXIT_FAIL;
    }
    if (c->json)
      printf("{\"written\":true}\n");
    else
      printf("wrote a new %zu-byte key to %s (mode 0600)\n", k.len, a->out);
  } else {
    tfo__key_format(&k, text);
    if (c->json)
      printf("{\"key\":\"%s\"}\n", text);
    else
      printf("%s\n", text);
    tfo__key_wipe(text, sizeof(text));
  }
  tfo__key_wipe(&k, sizeof(k));
  return EXIT_OK;
}

static int key_show(const struct ctl *c, const struct args *a) {
  struct tfo__key k;
  int set;

  if (a->persist || a->file != NULL || a->out != NULL || a->key != NULL ||
      a->backup)
    return tfoctl_usage_error("key", "show takes no arguments");
  set = read_kernel_key("key show", &k);
  if (set < 0)
    return EXIT_FAIL;
  print_key(c, &k, set);
  tfo__key_wipe(&k, sizeof(k));
  return EXIT_OK;
}

static int key_set(const struct ctl *c, const struct args *a) {
  struct tfo__key k, old;
  char why[256];
  int had, rc = EXIT_FAIL;

  if (a->out != NULL || a->backup)
    return tfoctl_usage_error("key", "set takes KEY or --file FILE, and "
                                     "--persist");
  if ((a->key == NULL) == (a->file == NULL))
    return tfoctl_usage_error("key", "set needs a KEY or --file FILE (one of "
                                     "them)");
  if (a->key != NULL && tfo__key_parse(a->key, strlen(a->key), &k) != 0)
    return tfoctl_usage_error("key", "set: not a key: " WANT);
  if (a->file != NULL && tfo__key_read_file(a->file, &k, why, sizeof(why)) != 0)
    return tfoctl_usage_error("key", "set: key file %s: %s", a->file, why);
  had = read_kernel_key("key set", &old);
  if (had < 0)
    goto out;
  if (write_kernel_key("key set", &k) != 0)
    goto out;
  if (a->persist && persist(c, "set", &k) != 0) {
    if (had == 1)
      (void)write_kernel_key("key set", &old); /* all or nothing */
    goto out;
  }
  if (c->json)
    printf("{\"set\":true,\"backup\":%s,\"persisted\":%s}\n",
           k.len == TFO__KEY_MAX ? "true" : "false",
           a->persist ? "true" : "false");
  else
    printf(TFO__KEY_SYSCTL " set: %s\n",
           k.len == TFO__KEY_MAX ? "primary and backup" : "primary");
  rc = EXIT_OK;
out:
  tfo__key_wipe(&k, sizeof(k));
  tfo__key_wipe(&old, sizeof(old));
  return rc;
}

/* New random primary; the old primary becomes the backup, so cookies made
 * with it still work (TCPFastOpenPassiveAltKey) and are replaced. */
static int make_rotated(const struct tfo__key *old, int had,
                        struct tfo__key *k) {
  do {
    if (tfo__key_generate(k->bytes, TFO__KEY_LEN) != 0)
      return -1;
  } while (tfo__key_check(k->bytes, TFO__KEY_LEN) != 0 ||
           (had && memcmp(k->bytes, old->bytes, TFO__KEY_LEN) == 0));
  k->len = TFO__KEY_LEN;
  if (had) {
    memcpy(k->bytes + TFO__KEY_LEN, old->bytes, TFO__KEY_LEN);
    k->len = TFO__KEY_MAX;
  }
  return 0;
}

static int key_rotate(const struct ctl *c, const struct args *a) {
  struct tfo__key k, old;
  char why[256];
  int had, rc = EXIT_FAIL;

  if (a->out != NULL || a->backup || a->key != NULL)
    return tfoctl_usage_error("key", "rotate takes --persist, or --file FILE");
  if (a->file != NULL && a->persist)
    return tfoctl_usage_error("key",
                              "rotate --file changes the file only: "
                              "apply it with key set --file FILE [--persist]");
  if (a->file != NULL) {
    if (tfo__key_read_file(a->file, &old, why, sizeof(why)) != 0)
      return tfoctl_usage_error("key", "rotate: key file %s: %s", a->file, why);
    had = 1;
  } else {
    had = read_kernel_key("key rotate", &old);
    if (had < 0)
      return EXIT_FAIL;
  }
  if (make_rotated(&old, had, &k) != 0) {
    tfoctl_fail("key", "rotate: no random bytes: %s", strerror(errno));
    goto out;
  }
  if (a->file != NULL) {
    if (write_key_file("rotate", a->file, &k) != 0)
      goto out;
  } else {
    if (write_kernel_key("key rotate", &k) != 0)
      goto out;
    if (a->persist && persist(c, "rotate", &k) != 0) {
      if (had)
        (void)write_kernel_key("key rotate", &old);
      goto out;
    }
  }
  if (c->json)
    printf("{\"rotated\":true,\"backup\":%s,\"file\":%s}\n",
           had ? "true" : "false", a->file != NULL ? "true" : "false");
  else
    printf("%s: new primary key%s\n",
           a->file != NULL ? a->file : TFO__KEY_SYSCTL,
           had ? ", the old one kept as backup"
               : " (there was no key to keep as backup)");
  rc = EXIT_OK;
out:
  tfo__key_wipe(&k, sizeof(k));
  tfo__key_wipe(&old, sizeof(old));
  return rc;
}

int cmd_key(const struct ctl *c, int argc, char **argv) {
  struct args a;
  int rc;

  if (tfoctl_wants_help(argc, argv)) {
    printf(
        "usage: tfoctl key generate [--backup] [--out FILE]\n"
        "       tfoctl key show\n"
        "       tfoctl key set KEY | --file FILE [--persist]\n"
        "       tfoctl key rotate [--persist] | --file FILE\n"
        "KEY is xxxxxxxx-xxxxxxxx-xxxxxxxx-xxxxxxxx[,backup], "
        "as " TFO__KEY_SYSCTL " shows it.\n"
        "generate: a random key (from getrandom), printed or written to FILE "
        "(0600).\n"
        "show/set: this namespace's key (root only). rotate: a new primary, "
        "the old\nprimary kept as backup, in the namespace or in FILE (a "
        "farm's "
        "shared key:\nrotate the file once, then key set --file FILE on every "
        "server).\n"
        "--persist: also write %s/" KEY_SYSCTL_FILE " (0600).\n",
        c->sysctl_dir);
    return EXIT_OK;
  }
  if (argc == 0)
    return tfoctl_usage_error("key", "which: generate, show, set or rotate?");
  rc = parse_args(argv[0], argc - 1, argv + 1, &a);
  if (rc != 0)
    return rc;
  if (strcmp(argv[0], "generate") == 0)
    return key_generate(c, &a);
  if (strcmp(argv[0], "show") == 0)
    return key_show(c, &a);
  if (strcmp(argv[0], "set") == 0)
    return key_set(c, &a);
  if (strcmp(argv[0], "rotate") == 0)
    return key_rotate(c, &a);
  return tfoctl_usage_error("key",
                            "unknown subcommand '%s' (generate, show, "
                            "set, rotate)",
                            argv[0]);
}
