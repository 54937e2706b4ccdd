/* Finding libc's own calls behind the shim.
 * SPDX-License-Identifier: MIT */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cache.h"
#include "log.h"
#include "shim.h"
#include "sys.h"

_Thread_local int tfo__nested __attribute__((tls_model("initial-exec")));
struct tfo__libc tfo__libc_table;
_Atomic int tfo__libc_ready;
static pthread_once_t libc_once = PTHREAD_ONCE_INIT;

/* close_range and execveat are recent in glibc (2.34); older ones lack the
 * symbol but the kernel has the call. */
static int sys_close_range(unsigned first, unsigned last, int flags) {
  return (int)syscall(SYS_close_range, first, last, flags);
}

static int sys_execveat(int dirfd, const char *path, char *const argv[],
                        char *const envp[], int flags) {
  return (int)syscall(SYS_execveat, dirfd, path, argv, envp, flags);
}

/* Used for a symbol libc does not have at all (never with glibc): the call
 * fails cleanly instead of jumping to NULL. */
static long missing(void) {
  errno = ENOSYS;
  return -1;
}

static void *next(const char *name, void *fallback) {
  void *p = dlsym(RTLD_NEXT, name);
  return p != NULL ? p : fallback;
}

#define RESOLVE(member, name, fallback)                                        \
  *(void **)&tfo__libc_table.member = next(name, (void *)(fallback))

static void resolve(void) {
  int saved = errno;

  RESOLVE(socket, "socket", missing);
  RESOLVE(socketpair, "socketpair", missing);
  RESOLVE(accept, "accept", missing);
  RESOLVE(accept4, "accept4", missing);
  RESOLVE(setsockopt, "setsockopt", missing);
  RESOLVE(ioctl, "ioctl", missing);
  RESOLVE(fdopen, "fdopen", missing);
  RESOLVE(sigaction, "sigaction", missing);
  RESOLVE(signal, "signal", missing);
  RESOLVE(bsd_signal, "bsd_signal", missing);
  RESOLVE(sysv_signal, "sysv_signal", missing);
  RESOLVE(sigset, "sigset", missing);
  RESOLVE(connect, "connect", missing);
  RESOLVE(listen, "listen", missing);
  RESOLVE(close, "close", missing);
  RESOLVE(close_range, "close_range", sys_close_range);
  RESOLVE(dup, "dup", missing);
  RESOLVE(dup2, "dup2", missing);
  RESOLVE(dup3, "dup3", missing);
  RESOLVE(fcntl, "fcntl", missing);
  RESOLVE(read, "read", missing);
  RESOLVE(readv, "readv", missing);
  RESOLVE(recv, "recv", missing);
  RESOLVE(recvfrom, "recvfrom", missing);
  RESOLVE(recvmsg, "recvmsg", missing);
  RESOLVE(write, "write", missing);
  RESOLVE(writev, "writev", missing);
  RESOLVE(send, "send", missing);
  RESOLVE(sendto, "sendto", missing);
  RESOLVE(sendmsg, "sendmsg", missing);
  RESOLVE(sendfile, "sendfile", missing);
  RESOLVE(splice, "splice", missing);
  RESOLVE(shutdown, "shutdown", missing);
  RESOLVE(getpeername, "getpeername", missing);
  RESOLVE(poll, "poll", missing);
  RESOLVE(ppoll, "ppoll", missing);
  RESOLVE(poll_chk, "__poll_chk", missing);
  RESOLVE(epoll_ctl, "epoll_ctl", missing);
  RESOLVE(epoll_wait, "epoll_wait", missing);
  RESOLVE(epoll_pwait, "epoll_pwait", missing);
  RESOLVE(epoll_pwait2, "epoll_pwait2", missing);
  RESOLVE(select, "select", missing);
  RESOLVE(pselect, "pselect", missing);
  RESOLVE(execve, "execve", missing);
  RESOLVE(execveat, "execveat", sys_execveat);
  RESOLVE(fexecve, "fexecve", missing);
  RESOLVE(execvpe, "execvpe", missing);
  RESOLVE(posix_spawn, "posix_spawn", missing);
  RESOLVE(posix_spawnp, "posix_spawnp", missing);
  RESOLVE(read_chk, "__read_chk", missing);
  RESOLVE(recv_chk, "__recv_chk", missing);
  RESOLVE(recvfrom_chk, "__recvfrom_chk", missing);

  /* Library code running inside the shim must reach libc, not us. */
  tfo__sys.connect = tfo__libc_table.connect;
  tfo__sys.sendmsg = tfo__libc_table.sendmsg;
  tfo__sys.close = tfo__libc_table.close;
  tfo__sys.poll = tfo__libc_table.poll;
  tfo__sys.fcntl = tfo__libc_table.fcntl;
  tfo__sys.setsockopt = tfo__libc_table.setsockopt;
  atomic_store_explicit(&tfo__libc_ready, 1, memory_order_release);
  errno = saved;
}

void tfo__libc_resolve(void) {
  pthread_once(&libc_once, resolve);
}

/* 0: not asked yet on this thread (a new thread's TLS starts zeroed; a
 * forked child's thread forgets it in the keeper's fork handler). */
static _Thread_local pid_t tid __attribute__((tls_model("initial-exec")));

pid_t tfo__tid(void) {
  if (tid == 0)
    tid = gettid();
  return tid;
}

void tfo__tid_forget(void) {
  tid = 0;
}

_Atomic int tfo__raw_closer;

/* Everything the shim sets up once is set up at load, before the program
 * runs: a pthread_once (or pthread_atfork) first reached inside a signal
 * handler that interrupted the same one on its thread would wait for
 * itself. Calls made before this runs (another library's constructor)
 * still find each once-guard on their own. */
__attribute__((constructor)) static void load(void) {
  int saved = errno;

  tfo__libc_resolve();
  /* libuv closes its sockets with a raw system call; a libuv loaded
   * later (dlopen), or linked in statically, is caught when a new socket
   * lands on a number the table still held state for (tfo__fd_fresh). */
  if (dlsym(RTLD_DEFAULT, "uv_version") != NULL)
    atomic_store(&tfo__raw_closer, 1);
  (void)tfo__shim_config();
  (void)tfo__log_level();
  tfo__cache_prepare();
  tfo__keeper_prepare();
  errno = saved;
}

/* One destructor, so that the order is ours: the verdicts still to come,
 * then the counts (two destructors run in the reverse of link order). */
__attribute__((destructor)) static void unload(void) {
  int saved = errno;

  tfo__keeper_exit();
  tfo__shim_report();
  errno = saved;
}
