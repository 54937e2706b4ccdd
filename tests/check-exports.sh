#!/bin/bash
# The ABI is exactly what the headers promise: libtfo exports only tfo_
# names, libtfo-uv only tfo_uv_ names, and the shim only the libc calls it
# intercepts. Anything else leaking out would become ABI by accident.
set -u
lib="$top_builddir/lib/.libs"
pre="$top_builddir/preload/.libs"
fail=0

exports() { nm -D --defined-only "$1" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | sed 's/@.*//' | sort -u; }

check() { # FILE REGEX WHAT
  local f=$1 re=$2 what=$3 bad n
  if [ ! -e "$f" ]; then echo "SKIP $what: $f not built"; return 0; fi
  n=$(exports "$f" | wc -l)
  bad=$(exports "$f" | grep -Ev "$re" || true)
  if [ -n "$bad" ]; then
    echo "FAIL $what exports names outside $re:"; echo "$bad" | sed 's/^/  /'
    fail=1
  else
    echo "PASS $what: $n exported symbols, all match $re"
  fi
}

[ -e "$lib/libtfo.so" ] || { echo "FAIL libtfo.so not built"; exit 1; }
check "$lib/libtfo.so" '^tfo_' libtfo.so
[ "$(exports "$lib/libtfo.so" | grep -c '^tfo_version$')" = 1 ] || { echo "FAIL tfo_version not exported"; fail=1; }
# Each public name of the headers is there (a hidden one would link in our
# own tests, which use the convenience library, and fail in programs).
need() { # FILE NAME...
  local f=$1 n
  shift
  [ -e "$f" ] || return 0
  for n in "$@"; do
    if [ "$(exports "$f" | grep -c "^$n\$")" != 1 ]; then
      echo "FAIL $n not exported by ${f##*/}"; fail=1
    fi
  done
}
need "$lib/libtfo.so" tfo_cookie_lookup tfo_cookie_prefetch tfo_connect_send \
  tfo_cache_lookup tfo_listen tfo_info
need "$lib/libtfo-uv.so" tfo_uv_cookie_prefetch tfo_uv_connect tfo_uv_listen \
  tfo_uv_result
check "$lib/libtfo-uv.so" '^tfo_uv_' libtfo-uv.so
check "$pre/libtfo_preload.so" '^(socket|socketpair|accept4?|setsockopt|ioctl|fdopen|sigaction|signal|bsd_signal|sysv_signal|sigset|connect|listen|close|close_range|dup[23]?|fcntl(64)?|read|readv|recv|recvfrom|recvmsg|write|writev|send|sendto|sendmsg|sendfile(64)?|splice|getpeername|poll|ppoll|select|pselect|epoll_wait|epoll_pwait2?|epoll_ctl|shutdown|exec(ve|veat|vpe|v|vp|l|lp|le)|fexecve|posix_spawnp?|__[a-z0-9_]+_chk)$' libtfo_preload.so
exit $fail
