#!/bin/bash
# check-peer's libuv suite: the test runner of the libuv Debian ships, built
# from its source package, one test per process.
#
#   libuv.sh prepare                    fetch the source, build uv_run_tests_a
#   libuv.sh order                      "parallel": plain and shim at once
#   libuv.sh run MODE NS OUTDIR [LIST]  run every test (or those of LIST,
#                                       "unit<TAB>id" lines) in namespace NS,
#                                       plainly (MODE plain) or under
#                                       $PEER_SHIM (MODE shim); append results
#                                       to OUTDIR/results
#
# Environment: PEER_DIR (work folder), PEER_SHIM, PEER_HELPER, PEER_DEADLINE
# (epoch s: no test starts after it), as set by run-peer.sh.
set -uo pipefail

dir=$PEER_DIR/libuv
# libuv refuses to run its tests as root, and some fail as root (fs
# permissions): run them as nobody, the way Debian's buildds do (unprivileged).
user=nobody
group=$(id -gn "$user" 2>/dev/null || echo nogroup)
# Each test gets libuv's own timeout (times the multiplier, as in Debian's
# rules) and ours around it, for a runner that hangs itself.
outer_timeout=${PEER_LIBUV_TIMEOUT:-180}

say() { printf 'peer libuv: %s\n' "$*"; }


# The deb-src entry: Debian's bookworm main, from the URI this machine already
# uses for it (read from apt's own view, so nothing here names a host).
add_deb_src() {
  local list=/etc/apt/sources.list.d/libtfo-peer-src.sources uri
  if [ -e "$list" ]; then
    apt-get update -qq >/dev/null
    return
  fi
  uri=$(apt-cache policy 2>/dev/null |
        awk '$3 == "bookworm/main" && $2 ~ /^https?:\/\// { print $2; exit }')
  if [ -z "$uri" ]; then
    say "no configured Debian bookworm main archive to take a deb-src URI from"
    return 1
  fi
  say "adding deb-src $uri bookworm main ($list)"
  {
    echo "# Added by libtfo's tests/peer/libuv.sh: Debian sources for check-peer."
    echo "Types: deb-src"
    echo "URIs: $uri"
    echo "Suites: bookworm"
    echo "Components: main"
    echo "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
  } > "$list" || return 1
  apt-get update -qq >/dev/null || return 1
}


prepare() {
  local ver src
  ver=$(apt-cache showsrc libuv1 2>/dev/null | awk '/^Version:/ { print $2 }' | sort -V | tail -n 1)
  if [ -z "$ver" ]; then
    add_deb_src || return 1
    ver=$(apt-cache showsrc libuv1 2>/dev/null | awk '/^Version:/ { print $2 }' | sort -V | tail -n 1)
  fi
  if [ -z "$ver" ]; then
    say "apt-get cannot find the libuv1 source package"
    return 1
  fi
  if [ -x "$dir/build/uv_run_tests_a" ] && [ "$(cat "$dir/stamp" 2>/dev/null)" = "$ver" ]; then
    say "libuv $ver already built"
    return 0
  fi

  rm -rf "$dir/src" "$dir/build" "$dir/stamp"
  mkdir -p "$dir/src" || return 1
  say "fetching the source of libuv1 $ver"
  # As root, apt cannot hand the download to its _apt user in our folder.
  (cd "$dir/src" && apt-get -o APT::Sandbox::User=root source -qq "libuv1=$ver" >/dev/null) || {
    say "apt-get source libuv1=$ver failed"; return 1; }
  src=$(find "$dir/src" -mindepth 1 -maxdepth 1 -type d -name 'libuv*' | head -n 1)
  [ -n "$src" ] && [ -f "$src/CMakeLists.txt" ] || { say "no source tree in $dir/src"; return 1; }
  ln -sfn "$src" "$dir/source"

  say "building uv_run_tests_a"
  cmake -S "$src" -B "$dir/build" -DLIBUV_BUILD_TESTS=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    >"$dir/build.log" 2>&1 &&
    make -C "$dir/build" -j"$(nproc)" uv_run_tests_a >>"$dir/build.log" 2>&1 || {
    tail -n 30 "$dir/build.log"; say "build failed (log: $dir/build.log)"; return 1; }
  echo "$ver" > "$dir/stamp"
}


# One test: its result line, and its output kept when it did not pass.
run_one() {
  local mode=$1 ns=$2 out=$3 t=$4 log rc status note n
  local -a env=(UV_TEST_TIMEOUT_MULTIPLIER=2 RES_OPTIONS=attempts:0 HOME="$out/work")

  if [ "$mode" = shim ]; then
    env+=(LD_PRELOAD="$PEER_SHIM" LIBTFO_CACHE="$out/cache/tfo-cache")
  fi
  log=$out/logs/$t.log
  # A private /tmp per test (ip netns exec gives each command its own mount
  # namespace): the pipe tests bind fixed paths (/tmp/uv-test-sock), which
  # would collide between the plain and shim runs going on at once.
  (cd "$out/work" &&
   timeout -k 5 "$outer_timeout" ip netns exec "$ns" sh -c '
     mount -t tmpfs -o mode=1777 peer /tmp || exit 125
     u=$1 g=$2
     shift 2
     exec setpriv --reuid="$u" --regid="$g" --clear-groups env "$@"' sh \
     "$user" "$group" "${env[@]}" "$dir/build/uv_run_tests_a" "$t") >"$log" 2>&1
  rc=$?
  # The runner prints "not ok", then "# timeout" or "# exit code N", then
  # the test's own output as "# " lines.
  case $rc in
  0) status=pass ;;
  7) status=skip; note=$(grep -m1 -o '# SKIP.*' "$log") ;;
  124|137) status=hang; note="killed after ${outer_timeout} s" ;;
  *) if grep -q '^# timeout' "$log"; then
       status=hang
       note=$(grep '^# ' "$log" | grep -v -e '^# timeout' -e '^# Output from' | tail -n 1)
       note="libuv's timeout${note:+; last output: $note}"
     else
       status=fail
       note=$(grep -m1 'Assertion failed' "$log" ||
              grep '^# ' "$log" | grep -v -e '^# exit code' -e '^# Output from' | tail -n 1 |
                grep . || grep -m1 '^# exit code' "$log")
     fi ;;
  esac
  note=$(printf '%s' "${note:-}" | sed -E 's|/[^ ]*/(test/[^ /]+\.c)|\1|g; s/^# //')
  # Failures kept as NAME.RUN.log: a rerun must not overwrite the first.
  if [ "$status" = pass ] || [ "$status" = skip ]; then
    rm -f "$log"
  else
    n=$(awk -F '\t' -v t="$t" '$1 == t { n++ } END { print n + 1 }' "$out/results" 2>/dev/null)
    mv "$log" "$out/logs/$t.${n:-1}.log"
  fi
  printf '%s\t%s\t%s\t%s\n' "$t" "$status" "$t" "$(printf '%s' "${note:-}" | tr '\t\n' '  ' | cut -c1-160)" \
    >>"$out/results"
}


run() {
  local mode=$1 ns=$2 out=$3 list=${4:-} t
  local -a tests

  mkdir -p "$out/logs" "$out/cache" "$out/work/test" || return 1
  # Fixtures are read relative to the working folder; files the tests make
  # go there too, so each mode has its own.
  if [ ! -d "$out/work/test/fixtures" ]; then
    cp -a "$dir/source/test/fixtures" "$out/work/test/" || return 1
  fi
  chown -R "$user:$group" "$out/work" "$out/cache" || return 1
  chmod 700 "$out/cache"

  if [ -n "$list" ]; then
    mapfile -t tests < <(cut -f1 "$list" | sort -u)
  else
    # "name (helpers: ...)" lines: the name is the first word.
    mapfile -t tests < <(cd "$out/work" &&
      setpriv --reuid="$user" --regid="$group" --clear-groups \
        "$dir/build/uv_run_tests_a" --list | awk '$1 !~ /^\(/ { print $1 }')
    if [ ${#tests[@]} -lt 100 ]; then
      say "uv_run_tests_a --list gave ${#tests[@]} tests"
      return 1
    fi
  fi
  for t in "${tests[@]}"; do
    if [ "$(date +%s)" -ge "${PEER_DEADLINE:-99999999999}" ]; then
      printf '%s\tnotrun\t%s\tcheck-peer ran out of time (PEER_BUDGET)\n' "$t" "$t" \
        >>"$out/results"
      continue
    fi
    run_one "$mode" "$ns" "$out" "$t"
  done
}


case ${1:-} in
prepare) prepare ;;
# Plain and shim at once (each serial: fixed ports); libuv bounds its tests.
order) echo parallel ;;
run) shift; [ $# -ge 3 ] || { echo "usage: libuv.sh run MODE NS OUTDIR [LIST]" >&2; exit 2; }
     run "$@" ;;
*) echo "usage: libuv.sh prepare | order | run MODE NS OUTDIR [LIST]" >&2; exit 2 ;;
esac
