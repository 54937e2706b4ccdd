/* The shim's environment, parsed once.
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "env.h"
#include "log.h"
#include "shim.h"

static struct tfo__shim_config cfg;
static pthread_once_t cfg_once = PTHREAD_ONCE_INIT;

static void list(const char *name, int (*parse)(const char *, void *),
                 void *out) {
  const char *s = getenv(name);

  if (s != NULL && *s != '\0' && parse(s, out) != 0)
    tfo__log(TFO__LOG_ERROR, "ignoring %s='%.64s': %s", name, s,
             errno == ERANGE ? "too many items"
                             : "expected a list like the man page shows");
}

static int parse_ports(const char *s, void *out) {
  return tfo__ports_parse(s, out);
}

static int parse_prefixes(const char *s, void *out) {
  return tfo__prefixes_parse(s, out);
}

static void load(void) {
  cfg.disabled = tfo__env_bool("LIBTFO_DISABLE", 0);
  cfg.client = tfo__env_bool("LIBTFO_CLIENT", 1);
  cfg.server = tfo__env_bool("LIBTFO_SERVER", 1);
  /* The kernel caps the queue at somaxconn itself. */
  cfg.qlen =
      (int)tfo__env_long("LIBTFO_QLEN", 1, 65535, TFO__SHIM_DEFAULT_QLEN);
  cfg.stats = tfo__env_bool("LIBTFO_STATS", 0);
  list("LIBTFO_PORTS", parse_ports, &cfg.ports);
  list("LIBTFO_EXCLUDE", parse_prefixes, &cfg.exclude);
}

const struct tfo__shim_config *tfo__shim_config(void) {
  int saved = errno;

  pthread_once(&cfg_once, load);
  errno = saved;
  return &cfg;
}
