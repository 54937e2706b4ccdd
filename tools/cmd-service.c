/* tfoctl service: TCP Fast Open for a legacy daemon run by systemd, through
 * a drop-in (UNIT.d/libtfo.conf) that preloads the shim.
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "key.h" /* tfo__file_replace */
#include "shim-env.h"
#include "tfoctl.h"

#define DROPIN "libtfo.conf"

static void usage(FILE *out) {
  fprintf(out,
          "usage: tfoctl service enable UNIT [--root DIR] [SETTINGS]\n"
          "       tfoctl service disable UNIT [--root DIR]\n"
          "       tfoctl service status UNIT [--root DIR]\n"
          "\n"
          "A systemd drop-in, /etc/systemd/system/UNIT.d/" DROPIN ", that "
          "preloads\n"
          "libtfo's shim into the daemon (then: systemctl daemon-reload and\n"
          "systemctl restart UNIT). --root DIR: a tree other than /.\n"
          "SETTINGS (enable; tfoctl's --cache FILE sets LIBTFO_CACHE):\n"
          "%s",
          shim_env_usage);
}

/* systemd's unit name characters; a name without a type gets .service. */
static int unit_name(const char *arg, char *buf, size_t size) {
  const char *dot = strrchr(arg, '.');
  size_t n = strlen(arg);
  int w;

  if (n == 0 || n > 240 || arg[0] == '.' || arg[0] == '-' ||
      strspn(arg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                  "0123456789:_.@-\\") != n)
    return -1;
  if (dot != NULL && strcmp(dot, ".service") != 0)
    return -1; /* only services run programs we can preload into */
  w = snprintf(buf, size, "%s%s", arg, dot != NULL ? "" : ".service");
  return w < 0 || (size_t)w >= size ? -1 : 0;
}

static int dropin_paths(const char *root, const char *unit, char *dir,
                        char *file, size_t size) {
  int a, b;

  if (strcmp(root, "/") == 0)
    root = "";
  a = snprintf(dir, size, "%s/etc/systemd/system/%s.d", root, unit);
  b = snprintf(file, size, "%s/etc/systemd/system/%s.d/" DROPIN, root, unit);
  return a < 0 || b < 0 || (size_t)a >= size || (size_t)b >= size ? -1 : 0;
}

static int enable(const struct ctl *c, const char *unit, const char *dir,
                  const char *file, const struct shim_env *e) {
  char *text = NULL, parent[PATH_MAX];
  size_t len = 0;
  FILE *f;
  int r;

  snprintf(parent, sizeof(parent), "%s", dir);
  *strrchr(parent, '/') = '\0';
  if (access(parent, F_OK) != 0)
    return tfoctl_fail("service", "%s: %s (is systemd installed? --root DIR "
                                  "names another tree)",
                       parent, strerror(errno));
  if (shim_env_check_preload(e, "tfoctl service") != 0)
    return EXIT_FAIL;
  f = open_memstream(&text, &len);
  if (f == NULL)
    return tfoctl_fail("service", "%s", strerror(errno));
  fprintf(f,
          "# Written by tfoctl service enable: TCP Fast Open for %s\n"
          "# through libtfo's preload shim (libtfo_preload(8)). Removed by\n"
          "# tfoctl service disable %s.\n"
          "[Service]\n",
          unit, unit);
  shim_env_print_systemd(e, f);
  if (fclose(f) != 0) {
    free(text);
    return tfoctl_fail("service", "%s", strerror(errno));
  }
  if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
    free(text);
    return tfoctl_fail("service", "cannot create %s: %s", dir,
                       strerror(errno));
  }
  r = tfo__file_replace(file, text, 0644);
  free(text);
  if (r != 0)
    return tfoctl_fail("service", "cannot write %s: %s", file,
                       strerror(errno));
  if (c->json) {
    printf("{\"unit\":");
    json_str(stdout, unit);
    printf(",\"enabled\":true,\"dropin\":");
    json_str(stdout, file);
    printf("}\n");
  } else {
    printf("wrote %s\nnow run: systemctl daemon-reload && systemctl restart "
           "%s\n",
           file, unit);
  }
  return EXIT_OK;
}

static int disable(const struct ctl *c, const char *unit, const char *dir,
                   const char *file) {
  int had = unlink(file) == 0;

  if (!had && errno != ENOENT)
    return tfoctl_fail("service", "cannot remove %s: %s", file,
                       strerror(errno));
  /* The directory goes only if it held nothing else of the operator's. */
  if (rmdir(dir) != 0 && errno != ENOENT && errno != ENOTEMPTY &&
      errno != EEXIST)
    return tfoctl_fail("service", "cannot remove %s: %s", dir,
                       strerror(errno));
  if (c->json) {
    printf("{\"unit\":");
    json_str(stdout, unit);
    printf(",\"enabled\":false,\"removed\":%s}\n", had ? "true" : "false");
  } else if (had) {
    printf("removed %s\nnow run: systemctl daemon-reload && systemctl "
           "restart %s\n",
           file, unit);
  } else {
    printf("%s: no libtfo drop-in (%s): nothing to remove\n", unit, file);
  }
  return EXIT_OK;
}

/* The value of our file's LD_PRELOAD line, unescaped, in buf ("" none). */
static void preload_of(FILE *f, char *buf, size_t size) {
  static const char key[] = "Environment=\"LD_PRELOAD=";
  char line[PATH_MAX + 64], *p;
  size_t n = 0;

  buf[0] = '\0';
  while (fgets(line, sizeof(line), f) != NULL) {
    if (strncmp(line, key, sizeof(key) - 1) != 0)
      continue;
    for (p = line + sizeof(key) - 1; *p != '\0' && *p != '"' && n + 1 < size;
         p++) {
      if ((*p == '\\' || *p == '%') && p[1] != '\0')
        p++;
      buf[n++] = *p;
    }
    buf[n] = '\0';
    return;
  }
}

static int status(const struct ctl *c, const char *unit, const char *file) {
  char shim[PATH_MAX];
  FILE *f = fopen(file, "re");
  int ok;

  if (f == NULL && errno != ENOENT)
    return tfoctl_fail("service", "cannot read %s: %s", file,
                       strerror(errno));
  if (f != NULL) {
    preload_of(f, shim, sizeof(shim));
    fclose(f);
  }
  ok = f != NULL && shim[0] != '\0' && access(shim, R_OK) == 0;
  if (c->json) {
    printf("{\"unit\":");
    json_str(stdout, unit);
    printf(",\"enabled\":%s,\"dropin\":", f != NULL ? "true" : "false");
    json_str(stdout, file);
    printf(",\"shim_present\":%s}\n", ok ? "true" : "false");
  } else if (f == NULL) {
    printf("%s: not enabled (no %s)\n", unit, file);
  } else {
    printf("%s: enabled by %s\n", unit, file);
    if (!ok)
      printf("%s: but the shim it preloads, '%s', is missing: the daemon "
             "runs without TFO\n",
             unit, shim);
    printf("(in effect once the unit was restarted after systemctl "
           "daemon-reload)\n");
  }
  return f != NULL && ok ? EXIT_OK : EXIT_FAIL;
}

int cmd_service(const struct ctl *c, int argc, char **argv) {
  char unit[256], dir[PATH_MAX], file[PATH_MAX];
  const char *root = "/", *verb, *name = NULL;
  char *cache_argv[3];
  struct shim_env e;
  int i, j, r;

  if (tfoctl_wants_help(argc, argv)) {
    usage(stdout);
    return EXIT_OK;
  }
  if (argc < 1)
    return tfoctl_usage_error("service", "enable, disable or status?");
  verb = argv[0];
  if (strcmp(verb, "enable") != 0 && strcmp(verb, "disable") != 0 &&
      strcmp(verb, "status") != 0)
    return tfoctl_usage_error("service", "unknown '%s': enable, disable or "
                                         "status",
                              verb);
  shim_env_init(&e);
  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--root") == 0 || strncmp(argv[i], "--root=", 7) == 0) {
      root = argv[i][6] == '=' ? argv[i] + 7 : i + 1 < argc ? argv[++i] : NULL;
      if (root == NULL || root[0] != '/')
        return tfoctl_usage_error("service", "--root needs an absolute "
                                             "directory");
      continue;
    }
    if (argv[i][0] == '-') {
      if (strcmp(verb, "enable") != 0)
        return tfoctl_usage_error("service", "%s: unknown option '%s'", verb,
                                  argv[i]);
      r = shim_env_option(&e, "tfoctl service", argc, argv, &i);
      if (r < 0)
        return EXIT_USAGE;
      if (r == 0)
        return tfoctl_usage_error("service", "unknown option '%s'", argv[i]);
      continue;
    }
    if (name != NULL)
      return tfoctl_usage_error("service", "one UNIT only ('%s' and '%s')",
                                name, argv[i]);
    name = argv[i];
  }
  if (name == NULL)
    return tfoctl_usage_error("service", "%s: which UNIT?", verb);
  if (unit_name(name, unit, sizeof(unit)) != 0)
    return tfoctl_usage_error("service", "'%s' is not a service unit's name",
                              name);
  if (c->cache != NULL && strcmp(verb, "enable") == 0) {
    cache_argv[0] = "--cache";
    cache_argv[1] = (char *)c->cache;
    cache_argv[2] = NULL;
    j = 0;
    if (shim_env_option(&e, "tfoctl service", 2, cache_argv, &j) < 0)
      return EXIT_USAGE;
  }
  if (dropin_paths(root, unit, dir, file, sizeof(dir)) != 0)
    return tfoctl_usage_error("service", "--root: path too long");
  if (strcmp(verb, "enable") == 0)
    return enable(c, unit, dir, file, &e);
  if (strcmp(verb, "disable") == 0)
    return disable(c, unit, dir, file);
  return status(c, unit, file);
}
