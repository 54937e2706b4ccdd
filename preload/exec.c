/* exec: the new program image knows nothing of our table, so a socket that
 * still holds its SYN would hang a read-first program there. Release every
 * such SYN before the image is replaced. posix_spawn too: glibc's execs
 * from inside it without passing through ours.
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <unistd.h>

#include "shim.h"

extern char **environ;

static void before_exec(void) {
  int saved = errno;

  if (tfo__nested) /* a signal handler's, inside the shim: straight on */
    return;
  tfo__fd_release_all();
  errno = saved;
}

TFO_SHIM_EXPORT int execve(const char *path, char *const argv[],
                           char *const envp[]) {
  before_exec();
  return tfo__libc()->execve(path, argv, envp);
}

TFO_SHIM_EXPORT int execveat(int dirfd, const char *path, char *const argv[],
                             char *const envp[], int flags) {
  before_exec();
  return tfo__libc()->execveat(dirfd, path, argv, envp, flags);
}

TFO_SHIM_EXPORT int fexecve(int fd, char *const argv[], char *const envp[]) {
  before_exec();
  return tfo__libc()->fexecve(fd, argv, envp);
}

TFO_SHIM_EXPORT int execvpe(const char *file, char *const argv[],
                            char *const envp[]) {
  before_exec();
  return tfo__libc()->execvpe(file, argv, envp);
}

/* A spawned child shares the descriptors' file flags as a forked one
 * does: what the table knew of them counts as taken before a fork. */
static void spawned(void) {
  atomic_fetch_add(&tfo__fork_gen, 1);
}

TFO_SHIM_EXPORT int posix_spawn(pid_t *pid, const char *path,
                                const posix_spawn_file_actions_t *fa,
                                const posix_spawnattr_t *attr,
                                char *const argv[], char *const envp[]) {
  before_exec();
  spawned();
  return tfo__libc()->posix_spawn(pid, path, fa, attr, argv, envp);
}

TFO_SHIM_EXPORT int posix_spawnp(pid_t *pid, const char *file,
                                 const posix_spawn_file_actions_t *fa,
                                 const posix_spawnattr_t *attr,
                                 char *const argv[], char *const envp[]) {
  before_exec();
  spawned();
  return tfo__libc()->posix_spawnp(pid, file, fa, attr, argv, envp);
}

TFO_SHIM_EXPORT int execv(const char *path, char *const argv[]) {
  return execve(path, argv, environ);
}

TFO_SHIM_EXPORT int execvp(const char *file, char *const argv[]) {
  return execvpe(file, argv, environ);
}

/* The execl family: the list (ended by a NULL; execle's environment
 * follows it) collected into an argv on the stack, as glibc's own execl
 * does. Not malloc: a vfork() child, or a signal handler, may exec. */
static int exec_list(const char *file, const char *arg, va_list ap,
                     int search, int has_env) {
  char *const *envp = environ;
  va_list cp;
  size_t n = 1, i;

  va_copy(cp, ap);
  while (va_arg(cp, char *) != NULL)
    n++;
  va_end(cp);
  if (n >= INT_MAX / sizeof(char *)) {
    errno = E2BIG;
    return -1;
  }
  {
    char *argv[n + 1];

    argv[0] = (char *)arg;
    for (i = 1; i <= n; i++)
      argv[i] = va_arg(ap, char *); /* the last one read is the NULL */
    if (has_env)
      envp = va_arg(ap, char *const *);
    return search ? execvpe(file, argv, envp) : execve(file, argv, envp);
  }
}

TFO_SHIM_EXPORT int execl(const char *path, const char *arg, ...) {
  va_list ap;
  int rc;

  va_start(ap, arg);
  rc = exec_list(path, arg, ap, 0, 0);
  va_end(ap);
  return rc;
}

TFO_SHIM_EXPORT int execlp(const char *file, const char *arg, ...) {
  va_list ap;
  int rc;

  va_start(ap, arg);
  rc = exec_list(file, arg, ap, 1, 0);
  va_end(ap);
  return rc;
}

TFO_SHIM_EXPORT int execle(const char *path, const char *arg, ...) {
  va_list ap;
  int rc;

  va_start(ap, arg);
  rc = exec_list(path, arg, ap, 0, 1);
  va_end(ap);
  return rc;
}
