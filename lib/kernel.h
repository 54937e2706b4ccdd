/* What the running kernel and its network namespace say: sysctls under
 * /proc/sys (which shows the namespace of the calling thread) and the kernel
 * version, for the features that cannot be probed on a socket.
 * SPDX-License-Identifier: MIT */
#ifndef TFO_KERNEL_H
#define TFO_KERNEL_H

#include <stddef.h>

/* net.ipv4.tcp_fastopen bits (Documentation/networking/ip-sysctl.rst). */
#define TFO__FO_CLIENT 0x1
#define TFO__FO_SERVER 0x2
#define TFO__FO_CLIENT_NO_COOKIE 0x4
#define TFO__FO_SERVER_NO_COOKIE 0x200
#define TFO__FO_SERVER_ALL_LISTENERS 0x400

/* Reads sysctl name ("net.ipv4.tcp_fastopen") into buf, without the
 * trailing newline. 0, or -1 with errno (ENOENT: no such sysctl here,
 * EACCES, EOVERFLOW: longer than size - 1). */
int tfo__sysctl_read(const char *name, char *buf, size_t size);

/* A sysctl holding one number. 0 or -1 with errno. */
int tfo__sysctl_long(const char *name, long *out);

/* Writes value (one write, as sysctl(8) does). 0 or -1 with errno. */
int tfo__sysctl_write(const char *name, const char *value);

/* 1 when the running kernel is at least major.minor, else 0 (also when the
 * release cannot be read). */
int tfo__kernel_at_least(int major, int minor);

#endif
