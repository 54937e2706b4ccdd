/* tfoctl: the operator's view of TCP Fast Open on this host (namespace).
 * main, the global options, dispatch, and what the subcommands share.
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "env.h"
#include "key.h"
#include "tfo.h"
#include "tfoctl.h"

static void vmsg(const char *cmd, const char *fmt, va_list ap) {
  fprintf(stderr, "tfoctl%s%s: ", cmd != NULL ? " " : "",
          cmd != NULL ? cmd : "");
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
}

int tfoctl_usage_error(const char *cmd, const char *fmt, ...) {
  va_list ap;

  va_start(ap, fmt);
  vmsg(cmd, fmt, ap);
  va_end(ap);
  fprintf(stderr, "(tfoctl %s --help for usage)\n", cmd != NULL ? cmd : "");
  return EXIT_USAGE;
}

int tfoctl_fail(const char *cmd, const char *fmt, ...) {
  va_list ap;

  va_start(ap, fmt);
  vmsg(cmd, fmt, ap);
  va_end(ap);
  return EXIT_FAIL;
}

void json_str(FILE *f, const char *s) {
  const unsigned char *p = (const unsigned char *)s;

  fputc('"', f);
  for (; p != NULL && *p != '\0'; p++) {
    if (*p == '"' || *p == '\\')
      fprintf(f, "\\%c", *p);
    else if (*p < 0x20)
      fprintf(f, "\\u%04x", *p);
    else
      fputc(*p, f);
  }
  fputc('"', f);
}

int tfoctl_parse_addr(const char *s, struct sockaddr_storage *ss,
                      socklen_t *len, int *port) {
  struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
  char host[INET6_ADDRSTRLEN + 1];
  const char *p = NULL, *h = s, *colon;
  size_t hl;
  long v;

  if (s == NULL || *s == '\0')
    return -1;
  *port = -1;
  memset(ss, 0, sizeof(*ss));
  if (*s == '[') { /* [v6] or [v6]:port */
    const char *close = strchr(s, ']');

    if (close == NULL || (close[1] != '\0' && close[1] != ':'))
      return -1;
    h = s + 1;
    hl = (size_t)(close - h);
    if (close[1] == ':')
      p = close + 2;
  } else if ((colon = strchr(s, ':')) != NULL &&
             strchr(colon + 1, ':') == NULL) {
    hl = (size_t)(colon - s); /* exactly one colon: v4:port */
    p = colon + 1;
  } else {
    hl = strlen(s);
  }
  if (hl == 0 || hl >= sizeof(host))
    return -1;
  memcpy(host, h, hl);
  host[hl] = '\0';
  if (p != NULL) {
    if (tfo__parse_long(p, 1, 65535, &v) != 0)
      return -1;
    *port = (int)v;
  }
  if (inet_pton(AF_INET, host, &s4->sin_addr) == 1 && *s != '[') {
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)(*port > 0 ? *port : 0));
    *len = sizeof(*s4);
    return 0;
  }
  if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons((uint16_t)(*port > 0 ? *port : 0));
    *len = sizeof(*s6);
    return 0;
  }
  return -1;
}

int tfoctl_split_host(const char *arg, char *host, size_t size,
                      const char **port) {
  const char *colon = strrchr(arg, ':');
  size_t n;

  if (arg[0] == '[') {
    const char *close = strchr(arg, ']');

    if (close == NULL || (close[1] != '\0' && close[1] != ':'))
      return -1;
    n = (size_t)(close - arg - 1);
    if (close[1] == ':')
      *port = close + 2;
    arg++;
  } else if (colon != NULL && strchr(arg, ':') == colon) {
    n = (size_t)(colon - arg);
    *port = colon + 1;
  } else {
    n = strlen(arg);
  }
  if (n == 0 || n >= size)
    return -1;
  memcpy(host, arg, n);
  host[n] = '\0';
  return 0;
}

void tfoctl_addr_str(const struct sockaddr *sa, int with_port, char *buf,
                     size_t size) {
  char host[INET6_ADDRSTRLEN] = "?";

  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *s = (const struct sockaddr_in *)sa;

    inet_ntop(AF_INET, &s->sin_addr, host, sizeof(host));
    if (with_port)
      snprintf(buf, size, "%s:%u", host, ntohs(s->sin_port));
    else
      snprintf(buf, size, "%s", host);
  } else {
    const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)sa;

    inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof(host));
    if (with_port)
      snprintf(buf, size, "[%s]:%u", host, ntohs(s->sin6_port));
    else
      snprintf(buf, size, "%s", host);
  }
}

int tfoctl_persist(const struct ctl *c, const char *cmd, const char *name,
                   const char *content, mode_t mode) {
  char path[PATH_MAX];
  int n;

  n = snprintf(path, sizeof(path), "%s/%s", c->sysctl_dir, name);
  if (n < 0 || (size_t)n >= sizeof(path)) {
    tfoctl_fail(cmd, "--sysctl-dir: name too long");
    return -1;
  }
  if (tfo__file_replace(path, content, mode) != 0) {
    tfoctl_fail(cmd, "cannot write %s: %s", path, strerror(errno));
    return -1;
  }
  if (!c->json)
    printf("wrote %s (mode %04o): applied at boot by sysctl --system\n", path,
           (unsigned)mode);
  return 0;
}

int tfoctl_parse_interval(const char *cmd, const char *arg, double max,
                          double *out) {
  char *end;
  double v;

  errno = 0;
  v = strtod(arg, &end);
  if (errno != 0 || *end != '\0' || end == arg || !(v >= 0.05 && v <= max))
    return tfoctl_usage_error(cmd, "--interval '%s': want seconds in 0.05..%g",
                              arg, max);
  *out = v;
  return 0;
}

int tfoctl_resolve(const char *host, const char *port, int family,
                   struct addrinfo **ai) {
  struct addrinfo hints;
  int rc;

  memset(&hints, 0, sizeof(hints));
  hints.ai_family = family;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  hints.ai_flags = AI_ADDRCONFIG;
  rc = getaddrinfo(host, port, &hints, ai);
  if (rc == EAI_ADDRFAMILY || rc == EAI_NONAME) {
    hints.ai_flags = 0;
    rc = getaddrinfo(host, port, &hints, ai);
  }
  return rc;
}

int tfoctl_wants_help(int argc, char **argv) {
  int i;

  for (i = 0; i < argc; i++)
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
      return 1;
  return 0;
}

static void usage(FILE *out) {
  fprintf(
      out,
      "usage: tfoctl [--json] [--sysctl-dir DIR] [--cache FILE] COMMAND "
      "[ARGS]\n"
      "       tfoctl COMMAND --help\n"
      "       tfoctl --help | --version\n"
      "\n"
      "commands:\n"
      "  status                 this namespace's TCP Fast Open settings, "
      "decoded\n"
      "  enable [client|server|both] [--persist]\n"
      "  enable server --after-uptime SEC [--no-wait]\n"
      "                         turn TFO on (default both)\n"
      "  stats [--watch] [--interval SEC] [--count N]\n"
      "                         the kernel's TFO counters and their meaning\n"
      "  monitor [--interval SEC] [--count N] [--no-syslog]\n"
      "                         alert (stderr, syslog) when TFO counters say "
      "something\n"
      "                         is wrong: queue overflow, refused cookies, "
      "blackholes\n"
      "  cookies [list [--all] | flush [ADDR]]\n"
      "  cookies prefetch HOST[:PORT]... [--timeout MS] [--parallel N]\n"
      "                         the kernel's TFO cookie cache (tcp_metrics)\n"
      "  key generate [--backup] [--out FILE]\n"
      "  key show\n"
      "  key set KEY | --file FILE [--persist]\n"
      "  key rotate [--persist] | --file FILE\n"
      "                         server keys (net.ipv4.tcp_fastopen_key, key "
      "files)\n"
      "  probe HOST[:PORT] [-4|-6] [--data TEXT] [--timeout MS]\n"
      "                         does this server do TFO, and if not, why?\n"
      "  cache [list | forget ADDR[:PORT] | clear]\n"
      "                         libtfo's negative cache\n"
      "  service enable|disable|status UNIT [--root DIR] [SETTINGS]\n"
      "                         preload the shim into a systemd service\n"
      "\n"
      "options (anywhere on the line):\n"
      "  --json              machine-readable output\n"
      "  --sysctl-dir DIR    where --persist writes (default " TFOCTL_SYSCTL_DIR
      ")\n"
      "  --cache FILE        libtfo's cache file (default: $LIBTFO_CACHE, "
      "else libtfo's)\n"
      "\n"
      "exit status: 0 ok, 1 failed or \"no\", 2 usage error (nothing "
      "changed),\n"
      "             3 probe: the server could not be reached,\n"
      "             4 enable --after-uptime --no-wait: not yet\n");
}

struct command {
  const char *name;
  int (*run)(const struct ctl *c, int argc, char **argv);
};

static const struct command commands[] = {
    {"status", cmd_status},   {"enable", cmd_enable}, {"stats", cmd_stats},
    {"cookies", cmd_cookies}, {"key", cmd_key},       {"probe", cmd_probe},
    {"cache", cmd_cache},     {"service", cmd_service},
    {"monitor", cmd_monitor},
};

/* Takes a global option's value: "--opt VALUE" or "--opt=VALUE". */
static int opt_value(const char *name, char **argv, int argc, int *i,
                     const char **out) {
  size_t n = strlen(name);

  if (strncmp(argv[*i], name, n) != 0)
    return 0;
  if (argv[*i][n] == '=') {
    *out = argv[*i] + n + 1;
    return 1;
  }
  if (argv[*i][n] != '\0')
    return 0;
  if (*i + 1 >= argc) {
    *out = NULL;
    return 1;
  }
  *out = argv[++*i];
  return 1;
}

int main(int argc, char **argv) {
  struct ctl c = {0, TFOCTL_SYSCTL_DIR, NULL};
  char **rest;
  const char *v;
  int i, n = 0;
  size_t k;

  /* Global options anywhere; everything else, in order, is the command,
   * compacted in place (n <= i always). */
  rest = argv + 1;
  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0) {
      c.json = 1;
    } else if (opt_value("--sysctl-dir", argv, argc, &i, &v)) {
      if (v == NULL || *v == '\0')
        return tfoctl_usage_error(NULL, "--sysctl-dir needs a directory");
      c.sysctl_dir = v;
    } else if (opt_value("--cache", argv, argc, &i, &v)) {
      if (v == NULL || *v == '\0')
        return tfoctl_usage_error(NULL, "--cache needs a file (or \"off\")");
      c.cache = v;
    } else {
      rest[n++] = argv[i];
    }
  }
  if (n == 0) {
    usage(stderr);
    return EXIT_USAGE;
  }
  if (strcmp(rest[0], "--help") == 0 || strcmp(rest[0], "-h") == 0) {
    usage(stdout);
    return EXIT_OK;
  }
  if (strcmp(rest[0], "--version") == 0) {
    printf("tfoctl (libtfo) %s\n", tfo_version_string());
    return EXIT_OK;
  }
  if (rest[0][0] == '-') {
    fprintf(stderr, "tfoctl: unknown option '%s'\n", rest[0]);
    usage(stderr);
    return EXIT_USAGE;
  }
  for (k = 0; k < sizeof(commands) / sizeof(commands[0]); k++) {
    if (strcmp(rest[0], commands[k].name) == 0) {
      rest[n] = NULL;
      return commands[k].run(&c, n - 1, rest + 1);
    }
  }
  fprintf(stderr, "tfoctl: unknown command '%s'\n", rest[0]);
  usage(stderr);
  return EXIT_USAGE;
}
