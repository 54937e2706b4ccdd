#!/bin/bash
# The Debian packages (issue 16): debian/ builds with dpkg-buildpackage in a
# copy of the source tree, lintian reports no error, the packages install
# with dpkg -i (their dependencies already present) and work from where they
# are installed: a program builds against libtfo-dev and libtfo-uv-dev with
# pkg-config; the loader's cache lists the shim, so that
# LD_PRELOAD=libtfo_preload.so finds it by its bare name; at 50 ms RTT a
# repeat request of curl under the bare-named shim, and under /usr/bin/tfo,
# takes about 1 RTT (about 2 without) and the client's TCPFastOpenActive
# rises. Then a purge leaves nothing behind: no file of the packages, no
# libtfo in the loader's cache, no package in dpkg's database.
#
# The machine must have no libtfo package installed (nor a libtfo in the
# loader's cache): the test says so and fails rather than clobber it.
# DEB_BUILD_OPTIONS goes to dpkg-buildpackage (default parallel=2; the
# package build runs the unit tests unless it says nocheck).
set -eu
here=$(dirname -- "$0")
. "$here/lab.sh"
. "$here/shim.sh"
lab_require
# The loader's cache and dpkg's database are the machine's: the tests that
# change them (test-install.sh, test-deb.sh) take turns, even under
# make -j, or one would find the other's libtfo and fail.
exec 9>/run/lock/libtfo-system-tests.lock
flock -w 900 9 || { echo "ERROR: no turn at the system's loader cache in 900 s"; exit 99; }
top_srcdir=${top_srcdir:-$(cd -- "$here/../.." && pwd)}

t_start=$SECONDS
for p in dpkg-buildpackage dpkg-architecture dh lintian curl cc pkg-config "$PY"; do
  if ! command -v "$p" >/dev/null; then
    # As root a skip would hide the packaging: a missing tool is an error.
    echo "ERROR: $p missing (scripts/deps package programs)"
    exit 99
  fi
done
[ -f "$top_srcdir/debian/control" ] || { echo "ERROR: no $top_srcdir/debian/control"; exit 99; }

# The binary packages debian/control builds; with the -dbgsym companions
# of those that have binaries, the names this test may install (and purge).
mapfile -t CONTROL < <(awk '$1 == "Package:" { print $2 }' "$top_srcdir/debian/control")
PKGS=()
for p in "${CONTROL[@]}"; do PKGS+=("$p" "$p-dbgsym"); done
MA=$(dpkg-architecture -qDEB_HOST_MULTIARCH)

# Status of a package in dpkg's database: installed, config-files, ...;
# not-installed when dpkg has never heard of it.
pkg_status() {
  local s
  s=$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) || s=
  printf '%s\n' "${s:-not-installed}"
}

# Those of PKGS dpkg knows: this run's, once it has checked that none were
# there before.
ours() {
  local p
  for p in "${PKGS[@]}"; do
    [ "$(pkg_status "$p")" = not-installed ] || printf '%s\n' "$p"
  done
}

# Not ours to touch: a libtfo already on this machine.
mapfile -t pre < <(ours)
if [ ${#pre[@]} -gt 0 ]; then
  echo "FAIL: libtfo packages are already installed here: ${pre[*]}"
  echo "FAIL: this test installs and purges its own; remove them first" \
       "(dpkg --purge ${pre[*]}), or run it on another machine"
  exit 1
fi
if ldconfig -p | grep -q libtfo; then
  echo "FAIL: the loader's cache already lists a libtfo (make install?):"
  ldconfig -p | grep libtfo
  echo "FAIL: LD_PRELOAD=libtfo_preload.so would not test the package; remove it first"
  exit 1
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tfodeb-${BASHPID:-$$}.XXXXXX")
INSTALLED=0
JOB=
deb_cleanup() {
  local left i
  set +e
  # A build or lintian still running (the script was interrupted): its
  # process group (timeout's), before its folder goes.
  if [ -n "$JOB" ] && _lab_pid_alive "$JOB"; then
    kill -TERM -- "-$JOB" "$JOB" 2>/dev/null
    for ((i = 0; i < 100; i++)); do
      _lab_pid_alive "$JOB" || break
      sleep 0.1
    done
    kill -KILL -- "-$JOB" "$JOB" 2>/dev/null
    wait "$JOB" 2>/dev/null
  fi
  if [ "$INSTALLED" = 1 ]; then
    mapfile -t left < <(ours)
    if [ ${#left[@]} -gt 0 ]; then
      echo "test-deb: cleanup: purging ${left[*]}"
      dpkg --purge "${left[@]}" >"$WORK/cleanup-purge.log" 2>&1 ||
        { echo "test-deb: cleanup: dpkg --purge failed:"; cat "$WORK/cleanup-purge.log"; }
    fi
  fi
  rm -rf -- "$WORK"
}
# lab_up keeps this EXIT trap (and runs it after lab_down); until then a
# signal ends the script through it.
trap deb_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# run_job DIR SECONDS LOG CMD...: CMD in DIR under timeout (its own process
# group, that the cleanup can stop), in the background so that a signal is
# taken at once; its status. The environment of make (this test runs under
# make check) stays out: a TESTS=... of the caller's in MAKEFLAGS would
# override the package build's make check-unit and run this test inside
# itself.
run_job() {
  local dir=$1 secs=$2 log=$3 rc=0
  shift 3
  (cd "$dir" &&
   exec env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES \
     -u GNUMAKEFLAGS -u top_srcdir -u top_builddir -u LAB_BIN \
     timeout "$secs" "$@") >"$log" 2>&1 &
  JOB=$!
  wait "$JOB" || rc=$?
  JOB=
  return "$rc"
}

# --- build, in a copy: the source tree is not written to ------------------
SRC=$WORK/libtfo
mkdir "$SRC"
tar -C "$top_srcdir" --exclude=./.git --exclude=./build --exclude='./build-*' \
  --exclude=./_build --exclude=./_inst --exclude=./autom4te.cache \
  --exclude='./libtfo-*' -cf - . | tar -C "$SRC" -xf -
# (make distcheck's tree is read-only)
chmod -R u+w "$SRC"
t0=$SECONDS
if run_job "$SRC" 1800 "$WORK/build.log" \
     env DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:-parallel=2}" \
     nice -n 19 dpkg-buildpackage -us -uc -b; then
  lab_pass "dpkg-buildpackage -us -uc -b ($((SECONDS - t0)) s)"
else
  tail -n 40 "$WORK/build.log"
  lab_fail "dpkg-buildpackage -us -uc -b (log above)"
  lab_finish
fi
t_build=$((SECONDS - t0))
grep -E '^# (TOTAL|PASS|FAIL|SKIP|ERROR):' "$WORK/build.log" | sed 's/^/unit tests in the package build: /' || true

debs=("$WORK"/*.deb)
changes=("$WORK"/*.changes)
if [ ! -e "${debs[0]}" ] || [ ! -e "${changes[0]}" ]; then
  lab_fail "no .deb or .changes in $WORK"
  lab_finish
fi
BUILT=()
for deb in "${debs[@]}"; do BUILT+=("$(dpkg-deb -f "$deb" Package)"); done
echo "built: ${BUILT[*]}"
for p in "${CONTROL[@]}"; do
  case " ${BUILT[*]} " in
  *" $p "*) ;;
  *) lab_fail "debian/control's $p was not built" ;;
  esac
done
for p in "${BUILT[@]}"; do
  case " ${PKGS[*]} " in
  *" $p "*) ;;
  *) lab_fail "$p was built, and is not in debian/control" ;;
  esac
done
lab_check_range "packages built (debian/control's ${#CONTROL[@]}, and -dbgsym)" \
  "${#debs[@]}" "${#CONTROL[@]}" "${#PKGS[@]}"

# --- lintian: no E: ------------------------------------------------------
t0=$SECONDS
rc=0
run_job "$WORK" 900 "$WORK/lintian.log" nice -n 19 lintian --pedantic -I "${changes[@]}" || rc=$?
t_lintian=$((SECONDS - t0))
grep -E '^[EWIPXO]: ' "$WORK/lintian.log" || true
nerr=$(grep -c '^E: ' "$WORK/lintian.log" || true)
nwarn=$(grep -c '^W: ' "$WORK/lintian.log" || true)
echo "lintian: $nerr errors, $nwarn warnings, $(grep -c '^[IP]: ' "$WORK/lintian.log" || true) info/pedantic (${t_lintian} s)"
# lintian exits 2 on an error it found, 1 when it could not run.
if [ "$rc" != 0 ] && [ "$rc" != 2 ]; then
  cat "$WORK/lintian.log"
  lab_fail "lintian ran (exit $rc)"
fi
lab_check_range "lintian errors (E:)" "$nerr" 0 0

# --- install ---------------------------------------------------------------
# Dependencies must be here already: nothing may come from the network now.
missing=()
for deb in "${debs[@]}"; do
  while read -r dep; do
    [ -n "$dep" ] || continue
    case " ${PKGS[*]} " in *" $dep "*) continue ;; esac
    [ "$(pkg_status "$dep")" = installed ] || missing+=("$dep")
  done < <(dpkg-deb -f "$deb" Depends Pre-Depends | sed 's/^[A-Za-z-]*: //' |
             tr ',' '\n' | sed 's/|.*//; s/(.*//; s/:any//; s/[[:space:]]//g')
done
if [ ${#missing[@]} -gt 0 ]; then
  lab_fail "dependencies not installed: ${missing[*]} (scripts/deps)"
  lab_finish
fi
lab_pass "every dependency of the packages is installed already"

# A file the packages ship that is already here (make install with
# --prefix=/usr?) would be overwritten, then removed by the purge.
clash=()
for deb in "${debs[@]}"; do
  while read -r f; do
    f=${f#.}
    case $f in */) continue ;; esac
    if [ -e "$f" ] || [ -L "$f" ]; then clash+=("$f"); fi
  done < <(dpkg-deb --fsys-tarfile "$deb" | tar -t)
done
if [ ${#clash[@]} -gt 0 ]; then
  echo "FAIL: files of the packages exist already (not from a package): ${clash[*]}"
  lab_fail "the packages' files are not on the machine before install"
  lab_finish
fi

# is_file A B: A and B are the same file (with merged /usr, the loader's
# cache says /lib/MA for /usr/lib/MA).
is_file() { [ -n "$1" ] && [ -e "$1" ] && [ "$1" -ef "$2" ]; }
shim_cached() { ldconfig -p | awk '$1 == "libtfo_preload.so" { print $NF }'; }

# libtfo-preload first, alone: the loader's cache must list the shim
# through that package's own ldconfig trigger (the libraries' packages
# trigger ldconfig too, which would hide a missing one).
shim_debs=() other_debs=()
for deb in "${debs[@]}"; do
  if [ "$(dpkg-deb -f "$deb" Package)" = libtfo-preload ]; then
    shim_debs+=("$deb")
  else
    other_debs+=("$deb")
  fi
done
[ ${#shim_debs[@]} = 1 ] || { lab_fail "no libtfo-preload package built"; lab_finish; }
# dpkg_i DEB...: install, or fail and finish.
dpkg_i() {
  if dpkg -i "$@" >"$WORK/install.log" 2>&1; then
    lab_pass "dpkg -i $(for d in "$@"; do dpkg-deb -f "$d" Package; done | xargs)"
  else
    cat "$WORK/install.log"
    lab_fail "dpkg -i"
    lab_finish
  fi
}
INSTALLED=1
dpkg_i "${shim_debs[@]}"
cached=$(shim_cached)
lab_check "libtfo-preload alone: ldconfig -p lists libtfo_preload.so at /usr/lib/$MA (${cached:-not listed})" \
  is_file "$cached" "/usr/lib/$MA/libtfo_preload.so"
dpkg_i "${other_debs[@]}"
n=0
: >"$WORK/files"
for p in "${BUILT[@]}"; do
  if [ "$(pkg_status "$p")" = installed ]; then
    dpkg -L "$p" >>"$WORK/files"
    n=$((n + 1))
  else
    lab_fail "$p is $(pkg_status "$p") after dpkg -i"
  fi
done
lab_check_range "packages installed" "$n" "${#BUILT[@]}" "${#BUILT[@]}"
echo "installed: $(sort -u "$WORK/files" | wc -l) paths from $n packages"

# A bare name loads the package's file.
maps=$(LD_PRELOAD=libtfo_preload.so LIBTFO_CACHE=off cat /proc/self/maps 2>"$WORK/maps.err" || true)
loaded=$(awk '$NF ~ /\/libtfo_preload\.so$/ { print $NF; exit }' <<<"$maps")
if is_file "$loaded" "/usr/lib/$MA/libtfo_preload.so" && [ ! -s "$WORK/maps.err" ]; then
  lab_pass "LD_PRELOAD=libtfo_preload.so loads /usr/lib/$MA/libtfo_preload.so"
else
  cat "$WORK/maps.err"
  lab_fail "LD_PRELOAD=libtfo_preload.so loads /usr/lib/$MA/libtfo_preload.so"
fi
env_line=$(/usr/bin/tfo --print-env 2>&1 | grep LD_PRELOAD || true)
case $env_line in
*"/usr/lib/$MA/libtfo_preload.so"*) lab_pass "tfo preloads /usr/lib/$MA/libtfo_preload.so" ;;
*) lab_fail "tfo preloads /usr/lib/$MA/libtfo_preload.so (got: $env_line)" ;;
esac
# The delayed server start (issue 17): tfo-tools ships the unit and its
# timer, for tfoctl at its installed path, enabled by nobody but the
# operator (no symlink in timers.target.wants).
unit=/lib/systemd/system/libtfo-server-delayed.service
lab_check "tfo-tools ships libtfo-server-delayed.service and .timer" \
  test "$(dpkg -L tfo-tools | grep -c '/systemd/system/libtfo-server-delayed\.\(service\|timer\)$')" = 2
lab_check "the unit runs /usr/bin/tfoctl enable server --after-uptime" \
  grep -qx 'ExecStart=/usr/bin/tfoctl enable server --after-uptime 300' "$unit"
lab_check "the timer is not enabled by the package" \
  test ! -e /etc/systemd/system/timers.target.wants/libtfo-server-delayed.timer

# libtfo-dev and libtfo-uv-dev: a program builds with pkg-config, links the
# installed libraries and runs.
cat >"$WORK/v.c" <<'C'
#include <stdio.h>
#include <tfo.h>
#include <tfo_uv.h>
int main(void) {
  printf("%u %u\n", tfo_version(), tfo_uv_version());
  return tfo_version() == 0 || tfo_uv_version() == 0;
}
C
# shellcheck disable=SC2046
if cc -o "$WORK/v" "$WORK/v.c" $(pkg-config --cflags --libs libtfo-uv libtfo) \
     >"$WORK/cc.log" 2>&1 && "$WORK/v" >>"$WORK/cc.log" 2>&1 &&
   ldd "$WORK/v" >>"$WORK/cc.log" &&
   is_file "$(awk '$1 == "libtfo.so.0" { print $3 }' "$WORK/cc.log")" "/usr/lib/$MA/libtfo.so.0" &&
   is_file "$(awk '$1 == "libtfo-uv.so.0" { print $3 }' "$WORK/cc.log")" "/usr/lib/$MA/libtfo-uv.so.0"; then
  lab_pass "a program builds with pkg-config libtfo-uv libtfo and runs on the installed libraries"
else
  cat "$WORK/cc.log"
  lab_fail "a program builds with pkg-config libtfo-uv libtfo and runs on the installed libraries"
fi

# --- the installed shim and tfo, 50 ms RTT -------------------------------
RTT=50
PORT=8080
lab_up --rtt "$RTT" || exit 99
# The server is a legacy daemon given a TFO queue by the installed shim.
# shellcheck disable=SC2034 # (shim.sh's shim_http_bg)
SHIM_PRELOAD=libtfo_preload.so
shim_www
# An answer within the initial congestion window (shim_www's 20000 bytes
# take a second flight: one more RTT).
head -c 1000 /dev/urandom >"$LAB_DIR/www/small"
BLOB_SUM=$(sha256sum <"$LAB_DIR/www/small" | cut -d' ' -f1)
shim_http_bg "$PORT"
lab_wait_port "$PORT" v4 || exit 99
URL=http://$LAB_S_IP4:$PORT/small

plain() { lab_c "$@"; }
bare() { lab_c env LD_PRELOAD=libtfo_preload.so LIBTFO_CACHE="$LAB_DIR/cache" "$@"; }
viatfo() { lab_c /usr/bin/tfo --cache "$LAB_DIR/cache-tfo" "$@"; }

# One request: prints its ms (curl's time_total: the process's start left
# out); fails on a wrong body or a word from the loader.
get() {
  local t
  t=$("$@" curl -s --max-time 10 -o "$LAB_DIR/out" -w '%{time_total}' "$URL" 2>"$LAB_DIR/err") ||
    { echo "curl failed: $(cat "$LAB_DIR/err")" >&2; return 1; }
  if [ -s "$LAB_DIR/err" ]; then
    echo "stderr under $1: $(cat "$LAB_DIR/err")" >&2
    return 1
  fi
  [ "$(sha256sum <"$LAB_DIR/out" | cut -d' ' -f1)" = "$BLOB_SUM" ] ||
    { echo "body differs under $1" >&2; return 1; }
  awk -v t="$t" 'BEGIN { printf "%.1f\n", t * 1000 }'
}
least() { printf '%s\n' "$@" | sort -g | head -n 1; }

# For each way to run curl: the cookie cache emptied, a first request (it
# fetches the cookie under the shim), then 3 repeats; the least of them
# (a loaded machine only adds) against the bounds.
declare -A t_first min runs rise
for how in plain bare viatfo; do
  lab_c ip tcp_metrics flush all
  a0=$(lab_counter c TCPFastOpenActive)
  if ! t_first[$how]=$(get "$how"); then
    lab_fail "$how: first request"
    continue
  fi
  a1=$(lab_counter c TCPFastOpenActive)
  got=()
  for i in 1 2 3; do
    if ! t=$(get "$how"); then
      lab_fail "$how: repeat $i"
      continue 2
    fi
    got+=("$t")
  done
  runs[$how]=${got[*]}
  min[$how]=$(least "${got[@]}")
  rise[$how]=$(( $(lab_counter c TCPFastOpenActive) - a1 ))
  echo "$how: first ${t_first[$how]} ms, repeats ${runs[$how]} ms (TCPFastOpenActive +$((a1 - a0)), then +${rise[$how]})"
done
lo=$((RTT * 9 / 10)) hi=$((RTT * 3 / 2))
[ -n "${min[plain]:-}" ] &&
  lab_check_range "curl without the shim, repeat (ms, least of 3, ~2 RTT)" "${min[plain]}" $((RTT * 18 / 10)) $((RTT * 4))
[ -n "${min[bare]:-}" ] && {
  lab_check_range "LD_PRELOAD=libtfo_preload.so curl, repeat (ms, least of 3, ~1 RTT)" "${min[bare]}" "$lo" "$hi"
  lab_check_range "LD_PRELOAD=libtfo_preload.so curl: TCPFastOpenActive rise" "${rise[bare]}" 3 3
}
[ -n "${min[viatfo]:-}" ] && {
  lab_check_range "tfo curl, repeat (ms, least of 3, ~1 RTT)" "${min[viatfo]}" "$lo" "$hi"
  lab_check_range "tfo curl: TCPFastOpenActive rise" "${rise[viatfo]}" 3 3
}
lab_down

# --- purge: nothing left ---------------------------------------------------
# The shim and its users first: the shim's own trigger must take it out of
# the loader's cache. Then the rest.
first=() rest=()
for p in "${BUILT[@]}"; do
  case $p in
  libtfo-preload|libtfo-preload-dbgsym|tfo-tools|tfo-tools-dbgsym) first+=("$p") ;;
  *) rest+=("$p") ;;
  esac
done
if dpkg --purge "${first[@]}" >"$WORK/purge.log" 2>&1; then
  lab_pass "dpkg --purge ${first[*]}"
else
  cat "$WORK/purge.log"
  lab_fail "dpkg --purge ${first[*]}"
fi
cached=$(shim_cached)
lab_check "libtfo_preload.so gone from ldconfig -p (${cached:-not listed})" test -z "$cached"
if dpkg --purge "${rest[@]}" >"$WORK/purge.log" 2>&1; then
  lab_pass "dpkg --purge ${rest[*]}"
  INSTALLED=0
else
  cat "$WORK/purge.log"
  lab_fail "dpkg --purge ${rest[*]}"
fi
mapfile -t still < <(ours)
lab_check_range "packages still in dpkg's database after purge (${still[*]:-none})" \
  "${#still[@]}" 0 0
leftover=()
while read -r f; do
  [ "$f" != /. ] || continue
  [ -e "$f" ] || [ -L "$f" ] || continue
  # A directory stays when another package owns it too; a symlink to a
  # directory is the system's (merged /usr: /lib is usr/lib).
  if [ -d "$f" ] && { [ -L "$f" ] || dpkg -S "$f" >/dev/null 2>&1; }; then
    continue
  fi
  leftover+=("$f")
done < <(sort -u "$WORK/files")
[ ${#leftover[@]} -eq 0 ] || echo "left behind: ${leftover[*]}"
lab_check_range "paths of the packages left after purge" "${#leftover[@]}" 0 0
lab_check_range "libtfo entries in ldconfig -p after purge" \
  "$(ldconfig -p | grep -c libtfo || true)" 0 0

echo "test-deb: build ${t_build} s, lintian ${t_lintian} s, whole test $((SECONDS - t_start)) s"
lab_finish
