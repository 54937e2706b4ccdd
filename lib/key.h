/* TFO server keys: the one parser and formatter of key text and key files,
 * shared by the library (tfo_listen, tfo_load_key_file) and tfoctl (the
 * sysctl, key files, sysctl.d files).
 *
 * Text form, exactly as net.ipv4.tcp_fastopen_key shows and takes it:
 *   xxxxxxxx-xxxxxxxx-xxxxxxxx-xxxxxxxx[,xxxxxxxx-xxxxxxxx-xxxxxxxx-xxxxxxxx]
 * the primary key, then optionally the backup key; each group is 8 hex
 * digits, the little-endian u32 of 4 key bytes (bytes 00 01 02 03 read
 * "03020100"), as the kernel converts them.
 *
 * Key file: text of at most TFO__KEY_FILE_MAX bytes holding one key in that
 * form, either alone on its line or as a sysctl.d setting
 * "net.ipv4.tcp_fastopen_key = KEY" (so the file `tfoctl key --persist`
 * writes is a key file as well). Blank lines, lines starting with '#' or
 * ';', and other "name = value" settings are ignored. It must be a regular
 * file owned by the reader or root and neither readable nor writable by
 * group or others: anyone who can read the key can forge cookies, anyone who
 * can write it can turn TFO off for every client.
 *
 * SPDX-License-Identifier: MIT */
#ifndef TFO_KEY_H
#define TFO_KEY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TFO__KEY_LEN 16 /* one key */
#define TFO__KEY_MAX 32 /* primary + backup */
/* "8-8-8-8" is 35 characters; two of them, a comma and the NUL. */
#define TFO__KEY_TEXT_MAX 72
/* Far more than a key and a few comments need; a bigger file is not ours. */
#define TFO__KEY_FILE_MAX 4096

/* The setting in sysctl.d files. */
#define TFO__KEY_SYSCTL "net.ipv4.tcp_fastopen_key"

struct tfo__key {
  uint8_t bytes[TFO__KEY_MAX];
  size_t len; /* TFO__KEY_LEN or TFO__KEY_MAX */
};

/* 0 when len is 16 or 32 and neither half is all zeros (an all-zero key is
 * what the sysctl shows before any key exists: taking it is a mistake),
 * else -1 with EINVAL. */
int tfo__key_check(const void *bytes, size_t len);

/* Parses the text form from the n bytes at s (no NUL needed; one inside is
 * an error). Blanks around the text are allowed, nothing else. 0, or -1 with
 * EINVAL; *k is untouched on error. */
int tfo__key_parse(const char *s, size_t n, struct tfo__key *k);

/* The text form of k into buf (TFO__KEY_TEXT_MAX bytes). */
void tfo__key_format(const struct tfo__key *k, char *buf);

/* Parses the contents of a key file (n bytes). 0, or -1 with EINVAL and a
 * sentence in why (naming the line) when why is not NULL. */
int tfo__key_parse_file(const char *text, size_t n, struct tfo__key *k,
                        char *why, size_t whylen);

/* Reads and parses a key file, checking it as described above. 0, or -1
 * with errno: EPERM (group/other access, foreign owner), EINVAL (not a
 * regular file, too big, malformed), or open's errno (ENOENT, EACCES...);
 * why gets a sentence that names the problem and its fix. */
int tfo__key_read_file(const char *path, struct tfo__key *k, char *why,
                       size_t whylen);

/* Fills len bytes from the kernel's random source (getrandom). 0 or -1. */
int tfo__key_generate(void *out, size_t len);

/* Wipes key material so that it does not linger in freed memory. */
void tfo__key_wipe(void *p, size_t len);

/* Replaces path with content atomically (a temporary file in the same
 * directory, created with mode, fsync'ed, then renamed over path): readers
 * see the old file or the new one, never a mix, and a secret is never
 * readable by others, not even for a moment. 0 or -1 with errno. */
int tfo__file_replace(const char *path, const char *content, mode_t mode);

#endif
