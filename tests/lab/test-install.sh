#!/bin/bash
# make install (issue 16): installed into a directory the dynamic loader
# searches, the shim is found by its bare name at once
# (LD_PRELOAD=libtfo_preload.so), because the install refreshes the
# loader's cache; make uninstall refreshes it again; an install under
# DESTDIR (packaging) or into a directory the loader does not search
# leaves the cache alone and says what to do.
# A build of its own (configured with --prefix in a temporary directory,
# listed for the test in /etc/ld.so.conf.d), so that installing relinks
# nothing under the tests running beside it. Needs root (ldconfig).
set -eu
if [ "$(id -u)" != 0 ]; then echo "SKIP: needs root (ldconfig)"; exit 77; fi
# The loader's cache and dpkg's database are the machine's: the tests that
# change them (test-install.sh, test-deb.sh) take turns, even under
# make -j, or one would find the other's libtfo and fail.
exec 9>/run/lock/libtfo-system-tests.lock
flock -w 900 9 || { echo "ERROR: no turn at the system's loader cache in 900 s"; exit 99; }
command -v ldconfig >/dev/null || PATH=$PATH:/sbin:/usr/sbin
: "${top_srcdir:?}" "${top_builddir:?}"
tmp=$(mktemp -d /tmp/libtfo-install.XXXXXX)
conf=/etc/ld.so.conf.d/zz-libtfo-test-$$.conf
fails=0
cleanup() {
  rm -f "$conf"
  ldconfig || true
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
pass() { echo "PASS: $1"; }
fail() { echo "FAIL: $1"; fails=$((fails + 1)); }
check() { local l=$1; shift; if "$@"; then pass "$l"; else fail "$l"; fi; }
cached() { ldconfig -p | grep -qF "=> $1"; }

# A prefix the loader searches (for this test), one it does not.
echo "$tmp/usr/lib" >"$conf"
ldconfig
mkdir -p "$tmp/build"
# At the lowest priority: the lab tests beside this one (make -j) time
# their connections.
(cd "$tmp/build" &&
  nice -n 19 "$top_srcdir/configure" -q --prefix="$tmp/usr" --libdir="$tmp/usr/lib" \
    --without-libuv CFLAGS=-O0 >"$tmp/configure.log" 2>&1 &&
  nice -n 19 make -s -j2 >"$tmp/make.log" 2>&1) || {
  cat "$tmp/configure.log" "$tmp/make.log" | tail -n 30
  echo "ERROR: could not build"
  exit 99
}
shim=$tmp/usr/lib/libtfo_preload.so
check "not cached before the install" test "$(cached "$shim" && echo y)" != y

t0=$(date +%s%N)
make -s -C "$tmp/build" install >"$tmp/install.log" 2>&1 || {
  cat "$tmp/install.log"; echo "ERROR: make install failed"; exit 99; }
echo "make install: $(( ($(date +%s%N) - t0) / 1000000 )) ms"
check "make install ran ldconfig" grep -qE "^/.*ldconfig$" "$tmp/install.log"
check "the loader's cache lists the installed shim" cached "$shim"
out=$(cd / && LD_PRELOAD=libtfo_preload.so LIBTFO_STATS=1 /bin/true 2>&1)
check "LD_PRELOAD=libtfo_preload.so (the bare name) loads it" \
  grep -q '^libtfo\[[0-9]*\]: attempts=0 ' <<<"$out"
check "... without the loader's complaint" test -z "$(grep 'cannot be preloaded' <<<"$out" || true)"
check "the tfo command installed" test -x "$tmp/usr/bin/tfo"
out=$("$tmp/usr/bin/tfo" --print-env 2>&1)
check "tfo finds the installed shim" grep -qxF "export LD_PRELOAD='$shim'" <<<"$out"

# Packaging: DESTDIR leaves the cache alone (its triggers run ldconfig).
make -s -C "$tmp/build" install DESTDIR="$tmp/dest" >"$tmp/destdir.log" 2>&1
check "DESTDIR: installed" test -e "$tmp/dest$shim"
check "DESTDIR: ldconfig not run" test -z "$(grep -E "^/.*ldconfig$" "$tmp/destdir.log" || true)"
check "DESTDIR: not cached" test "$(cached "$tmp/dest$shim" && echo y)" != y

# A directory the loader does not search: said so, nothing run.
make -s -C "$tmp/build" install libdir="$tmp/elsewhere" >"$tmp/else.log" 2>&1
check "elsewhere: says the loader does not search it" \
  grep -q "is not among the loader's directories" "$tmp/else.log"
check "elsewhere: ldconfig not run" test -z "$(grep -E "^/.*ldconfig$" "$tmp/else.log" || true)"

make -s -C "$tmp/build" uninstall >"$tmp/uninstall.log" 2>&1
check "make uninstall removed the shim" test ! -e "$shim"
check "make uninstall ran ldconfig" grep -qE "^/.*ldconfig$" "$tmp/uninstall.log"
check "the cache no longer lists it" test "$(cached "$shim" && echo y)" != y

[ $fails = 0 ] || { echo "$fails check(s) failed"; exit 1; }
echo "all checks passed"
