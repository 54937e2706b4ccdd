#!/bin/bash
# check-peer (issue 12): is the preload shim transparent? Other projects' own
# test suites run plainly and under LD_PRELOAD=libtfo_preload.so, and every
# case that passes plainly must pass under the shim too.
#
#   tests/peer/run-peer.sh [SUITE...]     suites: libuv cpython (default both)
#   make -C build check-peer
#
# Each suite runs in two network namespaces of its own (loopback only,
# net.ipv4.tcp_fastopen=3), one plain and one under the shim, at the same
# time (libuv) or plain first (cpython: the plain times bound the shim's). Before each run the kernel holds TFO cookies for 127.0.0.1 and ::1 in
# both, so that the shim really defers SYNs: it does so to destinations its
# negative cache has seen accept connections, which each shim run learns in
# a cache file of its own (LIBTFO_CACHE). A case that failed on both sides is
# run again plainly, one that passed plainly and not under the shim is run
# again under the shim, up to PEER_RUNS runs in all (flaky tests pass if any
# run passes). A case that passes plainly and never under the shim is a
# regression unless tests/peer/allow-list names it ("suite test-id | what
# differs | why it is inherent to TCP Fast Open"); any other regression
# makes the exit status 1.
#
# Output: per suite "peer SUITE: N run, N passed plainly, N passed under the
# shim, N regressions, N allowed" and the regressions; the same and more in
# $PEER_DIR/SUITE.log, and failing cases' output under
# $PEER_DIR/SUITE/{plain,shim}/logs/.
#
# Environment:
#   PEER_SHIM   the shim to test (default: the build's libtfo_preload.so,
#               built if missing)
#   PEER_DIR    work folder, not under /tmp (default: $top_builddir/peer,
#               or a folder in /var/tmp when the build is under /tmp)
#   PEER_ALLOW  the allow-list (default: tests/peer/allow-list)
#   PEER_RUNS   runs at most per case and side (default 3)
#   PEER_BUDGET seconds; no test starts after that, and a suite whose tests
#               could not all run fails (default 1320: CI's whole run must
#               stay under 45 min)
# Needs root (network namespaces); without it, exits 77 (skip).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/../.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir/build}
# libuv's tests run with a /tmp of their own, which hides the real one: a
# build under /tmp (CI's clean clone) works in /var/tmp instead.
if [ -z "${PEER_DIR:-}" ]; then
  PEER_DIR=$top_builddir/peer
  case $(readlink -f -- "$top_builddir")/ in
  /tmp/*) PEER_DIR=/var/tmp/libtfo-peer-$(id -u)/$(readlink -f -- "$top_builddir" | cksum | cut -d' ' -f1) ;;
  esac
fi
PEER_ALLOW=${PEER_ALLOW:-$here/allow-list}
PEER_RUNS=${PEER_RUNS:-3}
PEER_PYTHON=${PEER_PYTHON:-/usr/bin/python3}
PEER_BUDGET=${PEER_BUDGET:-1320}
PEER_HELPER=$here/peer-helper.py

if [ "$(id -u)" != 0 ]; then
  echo "SKIP: check-peer needs root (network namespaces)"
  exit 77
fi

suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(libuv cpython)
for s in "${suites[@]}"; do
  [ -f "$here/$s.sh" ] || { echo "run-peer.sh: no suite '$s' (libuv, cpython)" >&2; exit 2; }
done

"$top_srcdir/scripts/deps" build peer || exit 1

if [ -z "${PEER_SHIM:-}" ]; then
  find_shim() {
    local f
    for f in "$top_builddir/.libs/libtfo_preload.so" \
             "$top_builddir/preload/.libs/libtfo_preload.so"; do
      [ -f "$f" ] && { PEER_SHIM=$f; return 0; }
    done
    return 1
  }
  if ! find_shim; then
    echo "peer: no shim in $top_builddir: building it"
    BUILD_DIR=$top_builddir "$top_srcdir/scripts/build" || exit 1
    find_shim || { echo "peer: the build made no libtfo_preload.so" >&2; exit 1; }
  fi
fi
PEER_SHIM=$(readlink -f -- "$PEER_SHIM")
[ -f "$PEER_SHIM" ] || { echo "peer: PEER_SHIM $PEER_SHIM does not exist" >&2; exit 1; }
mkdir -p "$PEER_DIR" || exit 1
PEER_DIR=$(cd "$PEER_DIR" && pwd -P)
case $PEER_DIR/ in
/tmp/*) echo "peer: PEER_DIR must not be under /tmp ($PEER_DIR)" >&2; exit 1 ;;
esac
# The shim under test is a copy: a rebuild during the run does not change it
# (and a shim under /tmp stays visible).
shim_src=$PEER_SHIM
PEER_SHIM=$PEER_DIR/libtfo_preload.so
cp -- "$shim_src" "$PEER_SHIM.new" && mv -f -- "$PEER_SHIM.new" "$PEER_SHIM" || exit 1
chmod 755 "$PEER_SHIM"
# Downloads and builds count too: the budget starts here.
PEER_DEADLINE=$(($(date +%s) + PEER_BUDGET))
export PEER_DIR PEER_SHIM PEER_HELPER PEER_PYTHON PEER_DEADLINE

helper() { "$PEER_PYTHON" "$PEER_HELPER" "$@"; }

_log=/dev/null
say() { printf 'peer: %s\n' "$*" | tee -a "$_log"; }


# --- namespaces -------------------------------------------------------------
_ns=()
_jobs=()

ns_kill_procs() {
  local ns=$1 pids i
  for ((i = 0; i < 40; i++)); do
    pids=$(ip netns pids "$ns" 2>/dev/null)
    [ -n "$pids" ] || return 0
    # shellcheck disable=SC2086
    kill -s "$([ "$i" -lt 20 ] && echo TERM || echo KILL)" $pids 2>/dev/null
    sleep 0.1
  done
}

ns_down() {
  local ns=$1
  ns_kill_procs "$ns"
  ip netns del "$ns" 2>/dev/null
}

cleanup() {
  local rc=$? pid ns
  trap - EXIT
  # The suite runners first, so that they start nothing more.
  for pid in "${_jobs[@]}"; do
    kill -TERM "$pid" 2>/dev/null
  done
  for ns in "${_ns[@]}"; do
    ns_down "$ns"
  done
  for pid in "${_jobs[@]}"; do
    wait "$pid" 2>/dev/null
  done
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# Namespaces of earlier runs whose shell is gone (tfopeer-PID-...).
sweep() {
  local ns pid
  for ns in $(ip netns list 2>/dev/null | awk '{ print $1 }'); do
    case $ns in tfopeer-*) ;; *) continue ;; esac
    pid=${ns#tfopeer-}
    pid=${pid%%-*}
    case $pid in ''|*[!0-9]*) continue ;; esac
    [ -d "/proc/$pid" ] && continue
    ns_down "$ns"
  done
}

ns_up() {
  local ns=$1
  _ns+=("$ns")
  ip netns add "$ns" &&
    ip -n "$ns" link set lo up &&
    ip netns exec "$ns" sysctl -q -w net.ipv4.tcp_fastopen=3 >/dev/null
}

cookies_ok() {
  local m
  m=$(ip -n "$1" tcp_metrics show 2>/dev/null)
  grep -q '^127\.0\.0\.1 .*fo_cookie' <<<"$m" && grep -q '^::1 .*fo_cookie' <<<"$m"
}

# TFO cookies for 127.0.0.1 and ::1 in the kernel's cache, checked.
warm() {
  local ns=$1
  ip netns exec "$ns" "$PEER_PYTHON" "$PEER_HELPER" warm && cookies_ok "$ns" || {
    say "cannot cache TFO cookies for 127.0.0.1 and ::1 in $ns:"
    ip -n "$ns" tcp_metrics show | tee -a "$_log"
    return 1
  }
}

# "Active=N Passive=N": the namespace's TFO connections, client and server.
tfo_counters() {
  ip netns exec "$1" cat /proc/net/netstat | awk '
    $1 != prev { for (i = 2; i <= NF; i++) name[i] = $i; prev = $1; next }
    { for (i = 2; i <= NF; i++)
        if (name[i] == "TCPFastOpenActive" || name[i] == "TCPFastOpenPassive")
          printf "%s=%s ", substr(name[i], 12), $i
      prev = "" }'
}


# --- a suite ------------------------------------------------------------------

# run_modes SUITE NS_PLAIN NS_SHIM DIR [LIST_PLAIN LIST_SHIM]: both sides,
# each in its own namespace, at once or the plain one first, as the suite
# says ("SUITE.sh order"); with lists, only the cases they name (an empty
# list: that side does nothing).
run_modes() {
  local suite=$1 nsp=$2 nss=$3 dir=$4 lp=${5:-} ls=${6:-} order mode ns list rc=0 pid
  order=$(bash "$here/$suite.sh" order)
  _jobs=()
  for mode in plain shim; do
    if [ $mode = plain ]; then ns=$nsp list=$lp; else ns=$nss list=$ls; fi
    [ -n "$list" ] && [ ! -s "$list" ] && continue
    warm "$ns" || return 1
    bash "$here/$suite.sh" run "$mode" "$ns" "$dir/$mode" $list >>"$dir/$mode.out" 2>&1 &
    _jobs+=($!)
    if [ "$order" = plain-first ]; then
      wait "$!" || rc=1
      _jobs=()
    fi
  done
  for pid in "${_jobs[@]}"; do
    wait "$pid" || rc=1
  done
  _jobs=()
  return $rc
}

run_suite() {
  local suite=$1 start=$SECONDS t dir nsp nss round rc n
  dir=$PEER_DIR/$suite
  _log=$PEER_DIR/$suite.log
  : >"$_log"
  say "$suite: shim $shim_src"

  t=$SECONDS
  if ! bash "$here/$suite.sh" prepare 2>&1 | tee -a "$_log"; then
    say "$suite: could not prepare the suite"
    return 1
  fi
  say "$suite: prepared in $((SECONDS - t)) s"

  rm -rf "$dir/plain" "$dir/shim" "$dir/plain.out" "$dir/shim.out" "$dir"/rerun-*
  mkdir -p "$dir/plain" "$dir/shim"
  nsp=tfopeer-$$-$suite-p
  nss=tfopeer-$$-$suite-s
  ns_up "$nsp" && ns_up "$nss" || { say "$suite: cannot create namespaces"; return 1; }

  t=$SECONDS
  run_modes "$suite" "$nsp" "$nss" "$dir" || { say "$suite: a run failed (see $dir/*.out)"; return 1; }
  say "$suite: first runs took $((SECONDS - t)) s ($(bash "$here/$suite.sh" order))"

  for ((round = 2; round <= PEER_RUNS; round++)); do
    [ "$(date +%s)" -lt "$PEER_DEADLINE" ] || { say "$suite: no time left for reruns"; break; }
    helper rerun "$dir/plain/results" "$dir/shim/results" "$PEER_RUNS" \
      "$dir/rerun-plain.$round" "$dir/rerun-shim.$round"
    [ -s "$dir/rerun-plain.$round" ] || [ -s "$dir/rerun-shim.$round" ] || break
    t=$SECONDS
    run_modes "$suite" "$nsp" "$nss" "$dir" "$dir/rerun-plain.$round" "$dir/rerun-shim.$round" ||
      { say "$suite: a run failed (see $dir/*.out)"; return 1; }
    say "$suite: run $round of $(wc -l <"$dir/rerun-plain.$round") cases plainly," \
        "$(wc -l <"$dir/rerun-shim.$round") under the shim, took $((SECONDS - t)) s"
  done

  for n in "$nsp" "$nss"; do
    cookies_ok "$n" && t=kept || t=GONE
    say "$suite: ${n##*-} namespace: TFO cookies $t after the runs, TFO connections $(tfo_counters "$n")"
  done
  ns_down "$nsp"
  ns_down "$nss"

  helper compare "$suite" "$dir/plain/results" "$dir/shim/results" "$PEER_ALLOW" | tee -a "$_log"
  rc=${PIPESTATUS[0]}
  say "$suite: failing cases' output in $dir/{plain,shim}/logs/"
  say "$suite: took $((SECONDS - start)) s"
  return "$rc"
}


sweep
fail=0
start=$SECONDS
for s in "${suites[@]}"; do
  run_suite "$s" || fail=1
done
_log=/dev/null
say "took $((SECONDS - start)) s"
exit $fail
