/* The preload shim's settings as command-line options (shim-env.h).
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "env.h"
#include "filter.h"
#include "shim-env.h"

static const char *const names[SHIM_ENV_N] = {
    "LIBTFO_CLIENT", "LIBTFO_SERVER", "LIBTFO_QLEN", "LIBTFO_PORTS",
    "LIBTFO_EXCLUDE", "LIBTFO_CACHE", "LIBTFO_LOG", "LIBTFO_STATS",
};

const char shim_env_usage[] =
    "  --no-client        leave outgoing connections alone (LIBTFO_CLIENT=0)\n"
    "  --no-server        leave listeners alone (LIBTFO_SERVER=0)\n"
    "  --qlen N           listeners' TFO queue, 1..65535 (LIBTFO_QLEN)\n"
    "  --ports LIST       only these destination ports, e.g. 80,443,8000-8100"
    "\n"
    "                     (LIBTFO_PORTS)\n"
    "  --exclude LIST     never these destinations, e.g. 10.0.0.0/8,2001:db8::/32"
    "\n"
    "                     (LIBTFO_EXCLUDE)\n"
    "  --cache PATH|off   the negative cache file, absolute (LIBTFO_CACHE)\n"
    "  --log N            0 nothing .. 3 every decision, on stderr (LIBTFO_LOG)"
    "\n"
    "  --stats            one line of counts at exit, on stderr (LIBTFO_STATS)"
    "\n"
    "  --preload PATH     the shim to preload (default " TFO_PRELOAD_PATH ")\n";

const char *shim_env_name(int i) { return names[i]; }

void shim_env_init(struct shim_env *e) {
  memset(e, 0, sizeof(*e));
  e->preload = TFO_PRELOAD_PATH;
}

/* Characters that would end a line of a unit file or an environment
 * block's entry. */
static int has_control(const char *s) {
  for (; *s != '\0'; s++)
    if ((unsigned char)*s < 0x20 || *s == 0x7f)
      return 1;
  return 0;
}

static int bad(const char *prog, const char *opt, const char *v,
               const char *want) {
  fprintf(stderr, "%s: %s '%s': %s\n", prog, opt, v, want);
  return -1;
}

/* Checks v for option i with the parser the shim itself uses, so that the
 * shim never has to ignore what we set. */
static int check(int i, const char *prog, const char *opt, const char *v) {
  struct tfo__ports ports;
  struct tfo__prefixes prefixes;
  long n;

  if (*v == '\0' || has_control(v))
    return bad(prog, opt, v, "an empty value or a control character");
  switch (i) {
    case SHIM_ENV_QLEN:
      if (tfo__parse_long(v, 1, 65535, &n) != 0)
        return bad(prog, opt, v, "want a number from 1 to 65535");
      break;
    case SHIM_ENV_LOG:
      if (tfo__parse_long(v, 0, 3, &n) != 0)
        return bad(prog, opt, v, "want a number from 0 to 3");
      break;
    case SHIM_ENV_PORTS:
      if (tfo__ports_parse(v, &ports) != 0)
        return bad(prog, opt, v,
                   errno == ERANGE ? "more than 64 items"
                                   : "want ports and ranges, e.g. 80,443,8000-"
                                     "8100");
      break;
    case SHIM_ENV_EXCLUDE:
      if (tfo__prefixes_parse(v, &prefixes) != 0)
        return bad(prog, opt, v,
                   errno == ERANGE ? "more than 64 items"
                                   : "want addresses or prefixes, e.g. "
                                     "10.0.0.0/8,2001:db8::/32");
      break;
    case SHIM_ENV_CACHE:
      if (strcmp(v, "off") != 0 && v[0] != '/')
        return bad(prog, opt, v, "want an absolute path, or off");
      break;
    default:
      break;
  }
  return 0;
}

struct option_def {
  const char *name;
  int var;           /* SHIM_ENV_*, -1: --preload */
  const char *fixed; /* the value of a flag, NULL: takes one */
};

static const struct option_def options[] = {
    {"--no-client", SHIM_ENV_CLIENT, "0"},
    {"--no-server", SHIM_ENV_SERVER, "0"},
    {"--qlen", SHIM_ENV_QLEN, NULL},
    {"--ports", SHIM_ENV_PORTS, NULL},
    {"--exclude", SHIM_ENV_EXCLUDE, NULL},
    {"--cache", SHIM_ENV_CACHE, NULL},
    {"--log", SHIM_ENV_LOG, NULL},
    {"--stats", SHIM_ENV_STATS, "1"},
    {"--preload", -1, NULL},
};

int shim_env_option(struct shim_env *e, const char *prog, int argc,
                    char **argv, int *i) {
  const char *a = argv[*i], *v;
  size_t k, n;

  for (k = 0; k < sizeof(options) / sizeof(options[0]); k++) {
    n = strlen(options[k].name);
    if (strncmp(a, options[k].name, n) != 0 ||
        (a[n] != '\0' && a[n] != '='))
      continue;
    if (options[k].fixed != NULL) {
      if (a[n] == '=') {
        fprintf(stderr, "%s: %s takes no value\n", prog, options[k].name);
        return -1;
      }
      e->val[options[k].var] = options[k].fixed;
      return 1;
    }
    if (a[n] == '=') {
      v = a + n + 1;
    } else if (*i + 1 < argc) {
      v = argv[++*i];
    } else {
      fprintf(stderr, "%s: %s needs a value\n", prog, options[k].name);
      return -1;
    }
    if (options[k].var < 0) {
      if (v[0] != '/' || has_control(v))
        return bad(prog, options[k].name, v, "want an absolute path");
      e->preload = v;
      return 1;
    }
    if (check(options[k].var, prog, options[k].name, v) != 0)
      return -1;
    e->val[options[k].var] = v;
    return 1;
  }
  return 0;
}

int shim_env_check_preload(const struct shim_env *e, const char *prog) {
  if (access(e->preload, R_OK) != 0) {
    fprintf(stderr, "%s: the shim %s: %s (is libtfo's preload shim "
                    "installed? --preload PATH names another)\n",
            prog, e->preload, strerror(errno));
    return -1;
  }
  return 0;
}

/* 1 if path is one of list's entries (separated by colons or blanks, as
 * the dynamic loader reads LD_PRELOAD). */
static int listed(const char *list, const char *path) {
  size_t n = strlen(path), w;

  while (*list != '\0') {
    w = strcspn(list, ": \t");
    if (w == n && strncmp(list, path, n) == 0)
      return 1;
    list += w;
    list += strspn(list, ": \t");
  }
  return 0;
}

int shim_env_preload_list(const struct shim_env *e, const char *current,
                          char *buf, size_t size) {
  int n;

  if (current == NULL || current[strspn(current, ": \t")] == '\0')
    n = snprintf(buf, size, "%s", e->preload);
  else if (listed(current, e->preload))
    n = snprintf(buf, size, "%s", current);
  else
    n = snprintf(buf, size, "%s:%s", current, e->preload);
  return n < 0 || (size_t)n >= size ? -1 : 0;
}

static void sh_quoted(const char *s, FILE *out) {
  fputc('\'', out);
  for (; *s != '\0'; s++) {
    if (*s == '\'')
      fputs("'\\''", out);
    else
      fputc(*s, out);
  }
  fputc('\'', out);
}

void shim_env_print_sh(const struct shim_env *e, const char *preload_list,
                       FILE *out) {
  int i;

  fputs("export LD_PRELOAD=", out);
  sh_quoted(preload_list, out);
  fputc('\n', out);
  for (i = 0; i < SHIM_ENV_N; i++) {
    if (e->val[i] == NULL)
      continue;
    fprintf(out, "export %s=", names[i]);
    sh_quoted(e->val[i], out);
    fputc('\n', out);
  }
}

/* Environment="NAME=value": systemd unquotes backslash escapes and
 * expands % specifiers inside. */
static void systemd_line(const char *name, const char *v, FILE *out) {
  fprintf(out, "Environment=\"%s=", name);
  for (; *v != '\0'; v++) {
    if (*v == '"' || *v == '\\')
      fputc('\\', out);
    else if (*v == '%')
      fputc('%', out);
    fputc(*v, out);
  }
  fputs("\"\n", out);
}

void shim_env_print_systemd(const struct shim_env *e, FILE *out) {
  int i;

  systemd_line("LD_PRELOAD", e->preload, out);
  for (i = 0; i < SHIM_ENV_N; i++)
    if (e->val[i] != NULL)
      systemd_line(names[i], e->val[i], out);
}
