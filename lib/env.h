/* Environment parsing shared by the library and the shim.
 * SPDX-License-Identifier: MIT */
#ifndef TFO_ENV_H
#define TFO_ENV_H

/* Each returns `def` when the variable is unset or empty. A malformed value
 * is reported once through tfo__log (naming the variable and what was
 * expected) and ignored: a program must never abort over our settings. */
int tfo__env_bool(const char *name, int def);
long tfo__env_long(const char *name, long min, long max, long def);

/* The same parsers without the environment, for callers and tests that hold
 * a string. Return 0 and set *out, or -1 with errno EINVAL/ERANGE. */
int tfo__parse_bool(const char *s, int *out);
int tfo__parse_long(const char *s, long min, long max, long *out);

#endif
