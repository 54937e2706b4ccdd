/* TFO server keys: text form, key files, generation (see key.h).
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "key.h"

static int is_blank(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

int tfo__key_check(const void *bytes, size_t len) {
  const uint8_t *b = bytes;
  size_t half, i;
  uint8_t acc;

  if (b == NULL || (len != TFO__KEY_LEN && len != TFO__KEY_MAX)) {
    errno = EINVAL;
    return -1;
  }
  for (half = 0; half < len; half += TFO__KEY_LEN) {
    for (acc = 0, i = 0; i < TFO__KEY_LEN; i++)
      acc |= b[half + i];
    if (acc == 0) {
      errno = EINVAL;
      return -1;
    }
  }
  return 0;
}

/* One key of 4 groups at *p (p < end); advances *p past it. The group is
 * the kernel's little-endian u32, so its bytes go in reverse. */
static int parse_one(const char **p, const char *end, uint8_t *out) {
  const char *s = *p;
  int g, i, hi, lo;

  for (g = 0; g < 4; g++) {
    if (g > 0) {
      if (s >= end || *s != '-')
        return -1;
      s++;
    }
    if (end - s < 8)
      return -1;
    for (i = 0; i < 4; i++) {
      hi = hex_value(s[2 * i]);
      lo = hex_value(s[2 * i + 1]);
      if (hi < 0 || lo < 0)
        return -1;
      out[4 * g + 3 - i] = (uint8_t)(hi << 4 | lo);
    }
    s += 8;
  }
  *p = s;
  return 0;
}

int tfo__key_parse(const char *s, size_t n, struct tfo__key *k) {
  const char *end = s + n;
  struct tfo__key t;

  if (s == NULL || k == NULL)
    goto bad;
  while (s < end && is_blank(*s))
    s++;
  while (end > s && is_blank(end[-1]))
    end--;
  memset(&t, 0, sizeof(t));
  if (parse_one(&s, end, t.bytes) != 0)
    goto bad;
  t.len = TFO__KEY_LEN;
  if (s < end && *s == ',') {
    s++;
    if (parse_one(&s, end, t.bytes + TFO__KEY_LEN) != 0)
      goto bad;
    t.len = TFO__KEY_MAX;
  }
  if (s != end || tfo__key_check(t.bytes, t.len) != 0)
    goto bad;
  *k = t;
  tfo__key_wipe(&t, sizeof(t));
  return 0;
bad:
  tfo__key_wipe(&t, sizeof(t));
  errno = EINVAL;
  return -1;
}

static void format_one(const uint8_t *b, char *out) {
  snprintf(out, 36,
           "%02x%02x%02x%02x-%02x%02x%02x%02x-%02x%02x%02x%02x-"
           "%02x%02x%02x%02x",
           b[3], b[2], b[1], b[0], b[7], b[6], b[5], b[4], b[11], b[10], b[9],
           b[8], b[15], b[14], b[13], b[12]);
}

void tfo__key_format(const struct tfo__key *k, char *buf) {
  format_one(k->bytes, buf);
  if (k->len == TFO__KEY_MAX) {
    buf[35] = ',';
    format_one(k->bytes + TFO__KEY_LEN, buf + 36);
  }
}

static void say(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(char *why, size_t whylen, const char *fmt, ...) {
  va_list ap;

  if (why == NULL || whylen == 0)
    return;
  va_start(ap, fmt);
  vsnprintf(why, whylen, fmt, ap);
  va_end(ap);
}

/* A sysctl.d setting name as written ("-net/ipv4/x") in normal form. */
static int is_key_setting(const char *name, size_t n) {
  char norm[sizeof(TFO__KEY_SYSCTL)];
  size_t i;

  if (n > 0 && name[0] == '-') { /* sysctl.d: "ignore errors" marker */
    name++;
    n--;
  }
  if (n != sizeof(TFO__KEY_SYSCTL) - 1)
    return 0;
  for (i = 0; i < n; i++)
    norm[i] = name[i] == '/' ? '.' : name[i];
  return memcmp(norm, TFO__KEY_SYSCTL, n) == 0;
}

int tfo__key_parse_file(const char *text, size_t n, struct tfo__key *k,
                        char *why, size_t whylen) {
  const char *p = text, *end = text + n, *nl, *a, *b, *eq;
  struct tfo__key t;
  unsigned line = 0, key_line = 0;

  if (text == NULL || k == NULL) {
    errno = EINVAL;
    return -1;
  }
  if (memchr(text, '\0', n) != NULL) {
    say(why, whylen, "contains a NUL byte: not a text key file");
    goto bad;
  }
  for (; p < end; p = nl + 1) {
    line++;
    nl = memchr(p, '\n', (size_t)(end - p));
    if (nl == NULL)
      nl = end;
    for (a = p; a < nl && is_blank(*a); a++)
      ;
    for (b = nl; b > a && is_blank(b[-1]); b--)
      ;
    if (a == b || *a == '#' || *a == ';')
      continue;
    eq = memchr(a, '=', (size_t)(b - a));
    if (eq != NULL) {
      const char *ne = eq;

      while (ne > a && is_blank(ne[-1]))
        ne--;
      if (!is_key_setting(a, (size_t)(ne - a)))
        continue; /* another sysctl setting: not ours */
      a = eq + 1;
    }
    if (key_line != 0) {
      say(why, whylen, "line %u: a second key (line %u has one already)", line,
          key_line);
      goto bad;
    }
    if (tfo__key_parse(a, (size_t)(b - a), &t) != 0) {
      say(why, whylen,
          "line %u: not a key (want xxxxxxxx-xxxxxxxx-xxxxxxxx-"
          "xxxxxxxx[,backup] in hex, not all zeros)",
          line);
      goto bad;
    }
    key_line = line;
  }
  if (key_line == 0) {
    say(why, whylen,
        "no key in it (want a line xxxxxxxx-xxxxxxxx-xxxxxxxx-"
        "xxxxxxxx[,backup], or " TFO__KEY_SYSCTL " = KEY)");
    goto bad;
  }
  *k = t;
  tfo__key_wipe(&t, sizeof(t));
  return 0;
bad:
  tfo__key_wipe(&t, sizeof(t));
  errno = EINVAL;
  return -1;
}

int tfo__key_read_file(const char *path, struct tfo__key *k, char *why,
                       size_t whylen) {
  char buf[TFO__KEY_FILE_MAX + 1];
  struct stat sb;
  size_t got = 0;
  ssize_t r;
  int fd, e = EINVAL;

  if (path == NULL || *path == '\0' || k == NULL) {
    say(why, whylen, "no key file name");
    errno = EINVAL;
    return -1;
  }
  /* O_NONBLOCK: a FIFO planted under the name must not hang us. */
  fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    e = errno;
    say(why, whylen, "%s", strerror(e));
    errno = e;
    return -1;
  }
  if (fstat(fd, &sb) != 0) {
    e = errno;
    say(why, whylen, "%s", strerror(e));
    goto fail;
  }
  if (!S_ISREG(sb.st_mode)) {
    say(why, whylen, "not a regular file");
    e = EINVAL;
    goto fail;
  }
  if (sb.st_uid != geteuid() && sb.st_uid != 0) {
    say(why, whylen,
        "owned by uid %lu, neither you (uid %lu) nor root: "
        "whoever owns it can change the key",
        (unsigned long)sb.st_uid, (unsigned long)geteuid());
    e = EPERM;
    goto fail;
  }
  if (sb.st_mode & 077) {
    say(why, whylen,
        "mode %04o lets group or others %s it: a key must be "
        "secret (chmod 600)",
        (unsigned)(sb.st_mode & 07777), (sb.st_mode & 044) ? "read" : "write");
    e = EPERM;
    goto fail;
  }
  if (sb.st_size > TFO__KEY_FILE_MAX) {
    say(why, whylen, "%lld bytes: too big for a key file (at most %d)",
        (long long)sb.st_size, TFO__KEY_FILE_MAX);
    e = EINVAL;
    goto fail;
  }
  /* The size can change under us: read at most one byte past the limit. */
  while (got < sizeof(buf)) {
    r = read(fd, buf + got, sizeof(buf) - got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      e = errno;
      say(why, whylen, "%s", strerror(e));
      goto fail;
    }
    if (r == 0)
      break;
    got += (size_t)r;
  }
  if (got > TFO__KEY_FILE_MAX) {
    say(why, whylen, "too big for a key file (at most %d bytes)",
        TFO__KEY_FILE_MAX);
    e = EINVAL;
    goto fail;
  }
  close(fd);
  fd = -1;
  if (tfo__key_parse_file(buf, got, k, why, whylen) != 0)
    goto fail;
  tfo__key_wipe(buf, sizeof(buf));
  return 0;
fail:
  if (fd >= 0)
    close(fd);
  tfo__key_wipe(buf, sizeof(buf));
  errno = e;
  return -1;
}

int tfo__key_generate(void *out, size_t len) {
  uint8_t *p = out;
  size_t got = 0;
  ssize_t r;

  if (out == NULL) {
    errno = EINVAL;
    return -1;
  }
  while (got < len) {
    r = getrandom(p + got, len - got, 0);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return -1;
    got += (size_t)r;
  }
  return 0;
}

void tfo__key_wipe(void *p, size_t len) {
  explicit_bzero(p, len);
}

int tfo__file_replace(const char *path, const char *content, mode_t mode) {
  char tmp[PATH_MAX];
  size_t len, done = 0;
  ssize_t w;
  int fd, n, e;

  if (path == NULL || *path == '\0' || content == NULL) {
    errno = EINVAL;
    return -1;
  }
  n = snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path);
  if (n < 0 || (size_t)n >= sizeof(tmp)) {
    errno = ENAMETOOLONG;
    return -1;
  }
  /* mkstemp creates 0600: the secret is never readable by others, and the
   * final mode is set before any byte is written. */
  fd = mkostemp(tmp, O_CLOEXEC);
  if (fd < 0)
    return -1;
  if (fchmod(fd, mode) != 0)
    goto fail;
  len = strlen(content);
  while (done < len) {
    w = write(fd, content + done, len - done);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0)
      goto fail;
    done += (size_t)w;
  }
  if (fsync(fd) != 0)
    goto fail;
  if (close(fd) != 0) {
    fd = -1;
    goto fail;
  }
  fd = -1;
  if (rename(tmp, path) != 0)
    goto fail;
  return 0;
fail:
  e = errno;
  if (fd >= 0)
    close(fd);
  unlink(tmp);
  errno = e;
  return -1;
}
