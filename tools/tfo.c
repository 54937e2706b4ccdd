/* tfo: runs a command with libtfo's preload shim (tfo(1)), as torsocks
 * or eatmydata do: `tfo curl https://example.test/`.
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "env.h"
#include "shim-env.h"
#include "tfo.h"

/* As env(1), nice(1), timeout(1): 125 tfo itself failed, 126 COMMAND found
 * but not run, 127 COMMAND not found; else COMMAND's own status. */
enum { EXIT_TFO = 125, EXIT_CANNOT_RUN = 126, EXIT_NOT_FOUND = 127 };

static void usage(FILE *out) {
  fprintf(out,
          "usage: tfo [OPTIONS] COMMAND [ARGS...]\n"
          "       tfo [OPTIONS] --print-env[=sh|systemd]\n"
          "       tfo --help | --version\n"
          "\n"
          "Runs COMMAND with TCP Fast Open: libtfo's preload shim is added "
          "to\n"
          "LD_PRELOAD (after what is there), with the settings below.\n"
          "\n"
          "options:\n"
          "%s"
          "  --print-env[=sh]   print the environment as shell exports\n"
          "  --print-env=systemd\n"
          "                     ... as Environment= lines for a unit file\n"
          "\n"
          "exit status: COMMAND's own; 125 tfo failed (bad option, no "
          "shim),\n"
          "             126 COMMAND could not be run, 127 COMMAND not "
          "found\n",
          shim_env_usage);
}

/* Where execvp would find name: in buf, 0; -1 if nowhere. */
static int find_command(const char *name, char *buf, size_t size) {
  const char *path = getenv("PATH"), *p;
  struct stat st;
  size_t w;
  int n;

  if (strchr(name, '/') != NULL) {
    n = snprintf(buf, size, "%s", name);
    return n >= 0 && (size_t)n < size && stat(buf, &st) == 0 ? 0 : -1;
  }
  if (path == NULL)
    path = "/usr/local/bin:/usr/bin:/bin"; /* glibc's default */
  for (p = path;; p += w + 1) {
    w = strcspn(p, ":");
    n = snprintf(buf, size, "%.*s%s%s", (int)w, p, w > 0 ? "/" : "./",
                 name);
    if (n >= 0 && (size_t)n < size && stat(buf, &st) == 0 &&
        S_ISREG(st.st_mode) && access(buf, X_OK) == 0)
      return 0;
    if (p[w] == '\0')
      return -1;
  }
}

/* The loader runs a program in secure mode, and drops LD_PRELOAD paths
 * with slashes, when exec changes its credentials: set-user-ID or
 * set-group-ID bits, or file capabilities. Says so; the program still
 * runs, without TFO. */
static void warn_secure(const char *name, const char *path) {
  struct stat st;
  const char *why = NULL;

  if (stat(path, &st) != 0)
    return;
  if ((st.st_mode & S_ISUID) && st.st_uid != getuid())
    why = "set-user-ID";
  else if ((st.st_mode & S_ISGID) && st.st_gid != getgid())
    why = "set-group-ID";
  else if (getuid() != 0 &&
           getxattr(path, "security.capability", NULL, 0) > 0)
    why = "given file capabilities";
  if (why != NULL)
    fprintf(stderr,
            "tfo: %s is %s: the dynamic loader ignores LD_PRELOAD for it, "
            "so it runs without TCP Fast Open\n",
            name, why);
}

int main(int argc, char **argv) {
  char list[8192], path[PATH_MAX];
  struct shim_env e;
  const char *print = NULL, *a;
  int i, r, disabled;

  shim_env_init(&e);
  for (i = 1; i < argc; i++) {
    a = argv[i];
    if (strcmp(a, "--") == 0) {
      i++;
      break;
    }
    if (a[0] != '-')
      break;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      return 0;
    }
    if (strcmp(a, "--version") == 0) {
      printf("tfo (libtfo) %s\n", tfo_version_string());
      return 0;
    }
    if (strcmp(a, "--print-env") == 0 || strncmp(a, "--print-env=", 12) == 0) {
      print = a[11] == '=' ? a + 12 : "sh";
      if (strcmp(print, "sh") != 0 && strcmp(print, "systemd") != 0) {
        fprintf(stderr, "tfo: --print-env='%s': want sh or systemd\n",
                print);
        return EXIT_TFO;
      }
      continue;
    }
    r = shim_env_option(&e, "tfo", argc, argv, &i);
    if (r < 0)
      return EXIT_TFO;
    if (r == 0) {
      fprintf(stderr, "tfo: unknown option '%s' (tfo --help)\n", a);
      return EXIT_TFO;
    }
  }
  if (print != NULL && i < argc) {
    fprintf(stderr, "tfo: --print-env takes no COMMAND\n");
    return EXIT_TFO;
  }
  if (print == NULL && i >= argc) {
    usage(stderr);
    return EXIT_TFO;
  }
  if (shim_env_check_preload(&e, "tfo") != 0)
    return EXIT_TFO;
  if (shim_env_preload_list(&e, getenv("LD_PRELOAD"), list, sizeof(list)) !=
      0) {
    fprintf(stderr, "tfo: LD_PRELOAD is too long\n");
    return EXIT_TFO;
  }
  if (print != NULL) {
    if (strcmp(print, "systemd") == 0)
      shim_env_print_systemd(&e, stdout);
    else
      shim_env_print_sh(&e, list, stdout);
    return fflush(stdout) == 0 ? 0 : EXIT_TFO;
  }

  if (find_command(argv[i], path, sizeof(path)) != 0) {
    fprintf(stderr, "tfo: %s: command not found\n", argv[i]);
    return EXIT_NOT_FOUND;
  }
  warn_secure(argv[i], path);
  if (tfo__parse_bool(getenv("LIBTFO_DISABLE") ? getenv("LIBTFO_DISABLE")
                                               : "0",
                      &disabled) == 0 &&
      disabled)
    fprintf(stderr, "tfo: LIBTFO_DISABLE is set: the shim will step "
                    "aside\n");
  if (setenv("LD_PRELOAD", list, 1) != 0)
    goto failed;
  for (r = 0; r < SHIM_ENV_N; r++)
    if (e.val[r] != NULL && setenv(shim_env_name(r), e.val[r], 1) != 0)
      goto failed;
  execv(path, argv + i);
  r = errno;
  if (r == ENOEXEC) /* a script without #!: as execvp does */
    execvp(argv[i], argv + i), r = errno;
  fprintf(stderr, "tfo: %s: %s\n", argv[i], strerror(r));
  return r == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_RUN;
failed:
  fprintf(stderr, "tfo: %s\n", strerror(errno));
  return EXIT_TFO;
}
