/* tfoctl: what every subcommand shares (tfoctl.c), and the subcommands,
 * one file per concern.
 * SPDX-License-Identifier: MIT */
#ifndef TFOCTL_H
#define TFOCTL_H

#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>

/* Exit codes scripts can rely on (tfoctl.1). */
enum {
  EXIT_OK = 0,
  EXIT_FAIL = 1,       /* the operation failed, or the answer is "no" */
  EXIT_USAGE = 2,      /* bad command line or input: nothing was changed */
  EXIT_UNREACHABLE = 3 /* probe: the server could not be reached at all */
};

#define TFOCTL_SYSCTL_DIR "/etc/sysctl.d"

/* Global options, valid anywhere on the command line. */
struct ctl {
  int json;               /* --json */
  const char *sysctl_dir; /* --sysctl-dir: where --persist writes */
  const char *cache;      /* --cache: libtfo's negative cache file */
};

/* Prints "tfoctl CMD: message" on stderr; returns EXIT_USAGE. */
int tfoctl_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Prints "tfoctl CMD: message" on stderr; returns EXIT_FAIL. */
int tfoctl_fail(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* s as a JSON string, quotes included. */
void json_str(FILE *f, const char *s);

/* An IP literal, optionally with a port: "198.18.0.2", "198.18.0.2:80",
 * "2001:2::2", "[2001:2::2]:80". *port is -1 when none was given. 0, or -1
 * when s is not one. */
int tfoctl_parse_addr(const char *s, struct sockaddr_storage *ss,
                      socklen_t *len, int *port);
/* "198.18.0.2" or "2001:2::2" (with_port: "198.18.0.2:80",
 * "[2001:2::2]:80"). */
void tfoctl_addr_str(const struct sockaddr *sa, int with_port, char *buf,
                     size_t size);

/* Writes content to --sysctl-dir/name with mode; prints where. 0 or -1
 * (with a message on stderr). */
int tfoctl_persist(const struct ctl *c, const char *cmd, const char *name,
                   const char *content, mode_t mode);

/* 1 when argv[i] is --help or -h for some i. */
int tfoctl_wants_help(int argc, char **argv);

int cmd_status(const struct ctl *c, int argc, char **argv);
int cmd_enable(const struct ctl *c, int argc, char **argv);
int cmd_stats(const struct ctl *c, int argc, char **argv);
int cmd_cookies(const struct ctl *c, int argc, char **argv);
int cmd_key(const struct ctl *c, int argc, char **argv);
int cmd_probe(const struct ctl *c, int argc, char **argv);
int cmd_cache(const struct ctl *c, int argc, char **argv);
int cmd_service(const struct ctl *c, int argc, char **argv);

#endif
