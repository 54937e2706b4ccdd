/* tfoctl: what every subcommand shares (tfoctl.c), and the subcommands,
 * one file per concern.
 * SPDX-License-Identifier: MIT */
#ifndef TFOCTL_H
#define TFOCTL_H

#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>

/* Exit codes scripts can rely on (tfoctl.1). */
enum {
  EXIT_OK = 0,
  EXIT_FAIL = 1,       /* the operation failed, or the answer is "no" */
  EXIT_USAGE = 2,      /* bad command line or input: nothing was changed */
  EXIT_UNREACHABLE = 3, /* probe: the server could not be reached at all */
  EXIT_NOT_YET = 4      /* enable --after-uptime --no-wait: too early,
                         * nothing changed */
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
/* HOST[:PORT] and [V6]:PORT (a bare IPv6 literal has no port): the host
 * into host, *port at the port's text (left alone when none). 0, or -1
 * when arg is none of these. */
int tfoctl_split_host(const char *arg, char *host, size_t size,
                      const char **port);
/* "198.18.0.2" or "2001:2::2" (with_port: "198.18.0.2:80",
 * "[2001:2::2]:80"). */
void tfoctl_addr_str(const struct sockaddr *sa, int with_port, char *buf,
                     size_t size);

/* Writes content to --sysctl-dir/name with mode; prints where. 0 or -1
 * (with a message on stderr). */
int tfoctl_persist(const struct ctl *c, const char *cmd, const char *name,
                   const char *content, mode_t mode);

/* --interval's value: seconds from 0.05 to max. 0, or EXIT_USAGE after a
 * message naming cmd. */
int tfoctl_parse_interval(const char *cmd, const char *arg, double max,
                          double *out);

/* getaddrinfo for a TCP destination (family AF_UNSPEC, AF_INET or
 * AF_INET6): AI_ADDRCONFIG first, then without it (a lab namespace may have
 * only loopback). getaddrinfo's answer. */
struct addrinfo;
int tfoctl_resolve(const char *host, const char *port, int family,
                   struct addrinfo **ai);

/* 1 when argv[i] is --help or -h for some i. */
int tfoctl_wants_help(int argc, char **argv);

/* The namespace's TcpExt TFO counters (cmd-stats.c). */
#define TFOCTL_MAXC 32
struct tfoctl_counters {
  int n;
  char name[TFOCTL_MAXC][48];
  uint64_t value[TFOCTL_MAXC];
};
/* Reads /proc/net/netstat. 0 or -1 with errno. */
int tfoctl_read_counters(struct tfoctl_counters *s);

int cmd_status(const struct ctl *c, int argc, char **argv);
int cmd_enable(const struct ctl *c, int argc, char **argv);
int cmd_stats(const struct ctl *c, int argc, char **argv);
int cmd_cookies(const struct ctl *c, int argc, char **argv);
int cmd_key(const struct ctl *c, int argc, char **argv);
int cmd_probe(const struct ctl *c, int argc, char **argv);
int cmd_cache(const struct ctl *c, int argc, char **argv);
int cmd_service(const struct ctl *c, int argc, char **argv);
int cmd_monitor(const struct ctl *c, int argc, char **argv);

#endif
