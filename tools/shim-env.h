/* The preload shim's settings as command-line options: shared by the tfo
 * command (the environment of the program it runs) and tfoctl service
 * (a systemd drop-in). One parser, the library's, for each value.
 * SPDX-License-Identifier: MIT */
#ifndef SHIM_ENV_H
#define SHIM_ENV_H

#include <stdio.h>

/* The LIBTFO_* variables an option can set, in the order printed. */
enum {
  SHIM_ENV_CLIENT,
  SHIM_ENV_SERVER,
  SHIM_ENV_QLEN,
  SHIM_ENV_PORTS,
  SHIM_ENV_EXCLUDE,
  SHIM_ENV_CACHE,
  SHIM_ENV_LOG,
  SHIM_ENV_STATS,
  SHIM_ENV_N
};

struct shim_env {
  const char *preload;         /* the shim's path (absolute) */
  const char *val[SHIM_ENV_N]; /* NULL: not set by an option */
};

/* The variable's name, "LIBTFO_QLEN" for SHIM_ENV_QLEN. */
const char *shim_env_name(int i);

/* Defaults: the installed shim, no variable set. */
void shim_env_init(struct shim_env *e);

/* Takes option argv[*i] (with its value from argv[*i + 1] or after '=')
 * if it is one of ours: --no-client, --no-server, --qlen N, --ports LIST,
 * --exclude LIST, --cache PATH|off, --log N, --stats, --preload PATH.
 * 1 taken (*i advanced past a separate value), 0 not ours, -1 a bad value
 * or a missing one: a message naming the option went to stderr, prefixed
 * with prog. */
int shim_env_option(struct shim_env *e, const char *prog, int argc,
                    char **argv, int *i);

/* The shim file is there and readable: 0, else -1 and a message. */
int shim_env_check_preload(const struct shim_env *e, const char *prog);

/* LD_PRELOAD's new value: current (may be NULL or empty) with the shim
 * appended unless it is already listed. Written to buf; -1 if too long. */
int shim_env_preload_list(const struct shim_env *e, const char *current,
                          char *buf, size_t size);

/* Lines for a shell: export NAME='value' (preload_list as LD_PRELOAD). */
void shim_env_print_sh(const struct shim_env *e, const char *preload_list,
                       FILE *out);
/* Lines for a systemd unit: Environment="NAME=value", quoted for it. */
void shim_env_print_systemd(const struct shim_env *e, FILE *out);

/* The option lines of a usage text. */
extern const char shim_env_usage[];

#endif
