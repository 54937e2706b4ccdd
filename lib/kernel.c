/* Sysctls and the kernel version (see kernel.h).
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "env.h"
#include "kernel.h"

/* "net.ipv4.x" -> "/proc/sys/net/ipv4/x". Names are ours, never a user's
 * path: anything but [a-z0-9_.] is refused. */
static int sysctl_path(const char *name, char *path, size_t size) {
  size_t i, n;

  if (name == NULL || *name == '\0')
    goto bad;
  n = strlen(name);
  if (n + sizeof("/proc/sys/") > size)
    goto bad;
  memcpy(path, "/proc/sys/", sizeof("/proc/sys/") - 1);
  for (i = 0; i < n; i++) {
    char c = name[i];

    if (c == '.')
      c = '/';
    else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
      goto bad;
    path[sizeof("/proc/sys/") - 1 + i] = c;
  }
  path[sizeof("/proc/sys/") - 1 + n] = '\0';
  return 0;
bad:
  errno = EINVAL;
  return -1;
}

int tfo__sysctl_read(const char *name, char *buf, size_t size) {
  char path[128];
  ssize_t n;
  int fd, e;

  if (buf == NULL || size < 2 || sysctl_path(name, path, sizeof(path)) != 0) {
    errno = EINVAL;
    return -1;
  }
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  do
    n = read(fd, buf, size);
  while (n < 0 && errno == EINTR);
  e = errno;
  close(fd);
  if (n < 0) {
    errno = e;
    return -1;
  }
  if ((size_t)n >= size) {
    errno = EOVERFLOW;
    return -1;
  }
  buf[n] = '\0';
  buf[strcspn(buf, "\n")] = '\0';
  return 0;
}

int tfo__sysctl_long(const char *name, long *out) {
  char buf[64];

  if (tfo__sysctl_read(name, buf, sizeof(buf)) != 0)
    return -1;
  return tfo__parse_long(buf, -0x7fffffffL - 1, 0x7fffffffL, out);
}

int tfo__sysctl_write(const char *name, const char *value) {
  char path[128];
  size_t len;
  ssize_t n;
  int fd, e;

  if (value == NULL || sysctl_path(name, path, sizeof(path)) != 0) {
    errno = EINVAL;
    return -1;
  }
  fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  len = strlen(value);
  do
    n = write(fd, value, len);
  while (n < 0 && errno == EINTR);
  e = errno;
  if (close(fd) != 0 && n >= 0) {
    e = errno;
    n = -1;
  }
  if (n < 0) {
    errno = e;
    return -1;
  }
  if ((size_t)n != len) {
    errno = EIO;
    return -1;
  }
  return 0;
}

int tfo__kernel_at_least(int major, int minor) {
  struct utsname u;
  char *end;
  long ma, mi;

  if (uname(&u) != 0)
    return 0;
  ma = strtol(u.release, &end, 10);
  if (end == u.release || *end != '.')
    return 0;
  mi = strtol(end + 1, &end, 10);
  return ma > major || (ma == major && mi >= minor);
}
