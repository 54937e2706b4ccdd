#!/bin/bash
# check-peer's CPython suite: the network test modules of Debian's
# libpython3.11-testsuite, run by regrtest under Debian's /usr/bin/python3.11.
#
#   cpython.sh prepare                    fetch and unpack the test package
#   cpython.sh order                      "plain-first"
#   cpython.sh run MODE NS OUTDIR [LIST]  run every module (or the cases of
#                                         LIST, "unit<TAB>id" lines) in
#                                         namespace NS, plainly (MODE plain)
#                                         or under $PEER_SHIM (MODE shim);
#                                         append results to OUTDIR/results
#
# Environment: PEER_DIR (work folder), PEER_SHIM, PEER_HELPER (as set by
# run-peer.sh); PEER_PY_TIMEOUT (regrtest's --timeout per module, s),
# PEER_PY_CASE_TIMEOUT (per test case, s: twice test.support's SHORT_TIMEOUT,
# which the slowest case waits out by design; under the shim, a case that
# passed plainly gets 3 times its plain time plus 10 s, one that did not 10 s),
# PEER_PY_JOBS (units at once on each side), PEER_PY_UNITS (these units
# only, e.g. "test_epoll test_asyncio.test_events"), PEER_DEADLINE (epoch s:
# no unit starts after it).
set -uo pipefail

dir=$PEER_DIR/cpython
python=/usr/bin/python3.11
timeout=${PEER_PY_TIMEOUT:-300}
case_timeout=${PEER_PY_CASE_TIMEOUT:-60}
jobs=${PEER_PY_JOBS:-2}

modules=(test_socket test_selectors test_poll test_epoll test_select
         test_httplib test_httpservers test_urllib2_localnet test_ftplib
         test_smtplib test_socketserver test_ssl test_xmlrpc test_wsgiref
         test_telnetlib test_imaplib test_poplib test_subprocess test_signal)

# Cases that cannot run in this environment at all, plainly or not: they
# would only cost a timeout on each side. Not an allow-list: nothing here
# is compared.
#   VSOCK: on a VM with /dev/vsock the stream test connects to the VM's own
#   CID, which goes to the hypervisor and never answers (hangs plainly).
excludes=('test.test_socket.ThreadedVSOCKSocketStreamTest.*')

say() { printf 'peer cpython: %s\n' "$*"; }


# test_asyncio is a package of 30-odd modules: one regrtest unit each, so
# that a timeout or crash costs one of them, not the whole package.
units() {
  local f
  if [ -n "${PEER_PY_UNITS:-}" ]; then
    printf '%s\n' $PEER_PY_UNITS
    return
  fi
  printf '%s\n' "${modules[@]}"
  for f in "$dir/lib/test/test_asyncio"/test_*.py; do
    f=${f##*/}
    printf 'test_asyncio.%s\n' "${f%.py}"
  done
}


prepare() {
  local have ver cand deb pkg
  have=$(dpkg-query -W -f='${Version}' libpython3.11-stdlib 2>/dev/null)
  if [ -z "$have" ] || [ ! -x "$python" ]; then
    say "needs Debian's python3.11 ($python, libpython3.11-stdlib)"
    return 1
  fi
  # The tests of the installed version if the archive still has it, else
  # the newest of the same upstream version (a Debian revision apart: only
  # its backported fixes differ, and their tests fail plainly and under the
  # shim alike).
  ver=$have
  if ! apt-cache madison libpython3.11-testsuite 2>/dev/null |
       awk -F '|' -v v="$have" '{ gsub(/ /, "", $2) } $2 == v { f = 1 } END { exit !f }'; then
    cand=$(apt-cache policy libpython3.11-testsuite 2>/dev/null |
           awk '/Candidate:/ { print $2 }')
    if [ -z "$cand" ] || [ "$cand" = "(none)" ] || [ "${cand%%-*}" != "${have%%-*}" ]; then
      say "no libpython3.11-testsuite for python3.11 $have (archive has: ${cand:-none})"
      return 1
    fi
    ver=$cand
  fi
  if [ -d "$dir/lib/test/libregrtest" ] && [ "$(cat "$dir/stamp" 2>/dev/null)" = "$ver" ]; then
    say "libpython3.11-testsuite $ver already unpacked"
    write_watchdog
    return
  fi
  [ "$ver" = "$have" ] ||
    say "libpython3.11-stdlib $have is installed; using the tests of $ver (same upstream)"

  rm -rf "$dir/deb" "$dir/root" "$dir/lib" "$dir/stamp"
  mkdir -p "$dir/deb" "$dir/root" "$dir/lib" || return 1
  # Downloaded and unpacked, never installed: installing would upgrade the
  # system's python3.11. The test package of the stdlib package (test.support,
  # libregrtest) comes from the same version, as the test modules need it.
  for pkg in libpython3.11-testsuite libpython3.11-stdlib; do
    say "fetching $pkg $ver"
    (cd "$dir/deb" && apt-get -o APT::Sandbox::User=root download -qq "$pkg=$ver" >/dev/null) || {
      say "apt-get download $pkg=$ver failed"; return 1; }
  done
  for deb in "$dir/deb"/*.deb; do
    dpkg -x "$deb" "$dir/root" || return 1
  done
  # Only the test package goes on PYTHONPATH: the rest of the unpacked
  # stdlib must not shadow the installed one.
  cp -a "$dir/root/usr/lib/python3.11/test" "$dir/lib/" || return 1
  [ -d "$dir/lib/test/libregrtest" ] && [ -f "$dir/lib/test/test_socket.py" ] || {
    say "unpacked test package is incomplete"; return 1; }
  say "python: $($python --version 2>&1) (libpython3.11-stdlib $have), tests: $ver"
  write_watchdog && echo "$ver" > "$dir/stamp"
}


# regrtest's --timeout bounds a whole module: one hung case would cost it all
# (test_socket: 70 s of cases behind it). This sitecustomize, found through
# PYTHONPATH, bounds each case with the same faulthandler timer (it takes
# over regrtest's at the first case; timeout(1) still bounds the module), and
# what runs between cases (class fixtures) with the default limit.
# It shadows Debian's sitecustomize, which only installs apport's hook.
write_watchdog() {
  cat >"$dir/lib/sitecustomize.py" <<'EOF'
# Written by libtfo's tests/peer/cpython.sh: a time limit per test case.
import os
import sys

_limit = float(os.environ.get('PEER_CASE_TIMEOUT') or 0)
_argv = getattr(sys, 'orig_argv', [])
# Only in regrtest itself, not in the pythons its tests start.
if _limit > 0 and ['-m', 'test'] in (_argv[i:i + 2] for i in range(len(_argv))):
    import faulthandler
    import unittest

    # Limits of their own for some cases: "ID<TAB>SECONDS" lines.
    _limits = {}
    if os.environ.get('PEER_CASE_LIMITS'):
        with open(os.environ['PEER_CASE_LIMITS']) as f:
            for line in f:
                tid, _, secs = line.rstrip('\n').partition('\t')
                _limits[tid] = float(secs)

    _run = unittest.TestCase.run

    def _run_bounded(self, result=None):
        faulthandler.dump_traceback_later(_limits.get(self.id(), _limit), exit=True)
        try:
            return _run(self, result)
        finally:
            # Class and module fixtures between cases get the default; at
            # the module's end regrtest cancels the timer (--timeout).
            faulthandler.dump_traceback_later(_limit, exit=True)

    unittest.TestCase.run = _run_bounded
EOF
}


# One unit, its results to $res. When the process dies before writing its
# XML (the per-case timer, regrtest's --timeout, a crash), the cases its log
# shows done and the one it died in are recorded, and the unit goes on
# without them in a new process (bounded, and not past PEER_DEADLINE).
run_unit() {
  local mode=$1 ns=$2 out=$3 unit=$4 match=$5 res=$6 attempt tag log xml rc part
  local ignore=$out/ignore/$unit
  # Temporary files in a folder of this side's own (regrtest's work folder
  # too): nothing is shared with the other side or other units.
  local -a env=(PYTHONPATH="$dir/lib" HOME="$out/work" PYTHONDONTWRITEBYTECODE=1
                TMPDIR="$out/tmp" PEER_CASE_TIMEOUT="$case_timeout")
  local -a args=(-m test -v --timeout "$timeout" -u network --ignorefile "$ignore")

  if [ "$mode" = shim ]; then
    env+=(LD_PRELOAD="$PEER_SHIM" LIBTFO_CACHE="$out/cache/tfo-cache")
    [ -s "$out/limits" ] && env+=(PEER_CASE_LIMITS="$out/limits")
  fi
  [ -n "$match" ] && args+=(--matchfile "$match")
  printf '%s\n' "${excludes[@]}" >"$ignore"
  : >"$res"
  for ((attempt = 1; attempt <= 40; attempt++)); do
    if [ "$(date +%s)" -ge "${PEER_DEADLINE:-99999999999}" ]; then
      printf 'test.%s\tnotrun\t%s\tcheck-peer ran out of time (PEER_BUDGET)\n' \
        "$unit" "$unit" >>"$res"
      return 0
    fi
    tag=$unit.$(date +%s%N)
    log=$out/logs/$tag.log
    xml=$out/logs/$tag.xml
    (cd "$out/work" &&
     timeout -k 10 $((timeout + 120)) ip netns exec "$ns" \
       env "${env[@]}" "$python" "${args[@]}" --junit-xml "$xml" "$unit") >"$log" 2>&1
    rc=$?
    if [ -s "$xml" ]; then
      "$PEER_PYTHON" "$PEER_HELPER" cpython-results "$unit" "$xml" "$log" >>"$res"
      # Logs are kept for runs that did not pass cleanly, for diagnosis.
      grep -q '^Tests result: SUCCESS' "$log" && rm -f "$log" "$xml"
      return 0
    fi
    part=$("$PEER_PYTHON" "$PEER_HELPER" cpython-partial "$unit" "$log")
    if [ $? != 0 ]; then
      # Died outside any case (import, a class fixture, timeout(1)): the rest
      # of the unit is left out, and shows as missing.
      [ -n "$part" ] && printf '%s\n' "$part" >>"$res"
      if [ "$rc" = 124 ] || [ "$rc" = 137 ] || grep -q 'Timeout ([0-9:]*)!' "$log"; then
        printf 'test.%s\thang\t%s\thung outside any case (a fixture?), log %s\n' \
          "$unit" "$unit" "$log" >>"$res"
      else
        printf 'test.%s\tcrash\t%s\tdied outside any case, exit status %s, log %s\n' \
          "$unit" "$unit" "$rc" "$log" >>"$res"
      fi
      return 0
    fi
    # Killed by timeout(1) rather than by a timer of its own: a hang too.
    case $rc in
    124|137) part=$(printf '%s\n' "$part" | sed "\$s/\tcrash\t/\thang\t/") ;;
    esac
    printf '%s\n' "$part" >>"$res"
    printf '%s\n' "$part" | cut -f1 >>"$ignore"
  done
  printf 'test.%s\tcrash\t%s\tgave up after %s runs that died\n' \
    "$unit" "$unit" "$((attempt - 1))" >>"$res"
}


run() {
  local mode=$1 ns=$2 out=$3 list=${4:-} unit m parts
  local -a todo

  mkdir -p "$out/logs" "$out/cache" "$out/work" "$out/ignore" "$out/match" "$out/tmp" || return 1
  chmod 700 "$out/cache"
  parts=$(mktemp -d "$out/parts.XXXXXX") || return 1
  # The plain run went first (see "order"): its times bound the shim's cases.
  if [ "$mode" = shim ] && [ -s "$out/../plain/results" ]; then
    "$PEER_PYTHON" "$PEER_HELPER" cpython-limits "$out/../plain/results" "$case_timeout" \
      >"$out/limits"
  fi
  if [ -n "$list" ]; then
    mapfile -t todo < <(cut -f1 "$list" | sort -u)
  else
    mapfile -t todo < <(units)
  fi
  # Two units at a time (each side; most of a hang's time is idle), each
  # into a results file of its own, joined at the end.
  for unit in "${todo[@]}"; do
    m=
    if [ -n "$list" ]; then
      # Full ids match exactly; a fixture's (test.m.C.setUpClass) is run
      # again through its whole class.
      m=$out/match/$unit
      awk -F '\t' -v u="$unit" '$1 == u { print $2 }' "$list" |
        sed -E 's/\.(setUpClass|tearDownClass|setUpModule|tearDownModule)$/.*/' >"$m"
    fi
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
      wait -n
    done
    run_unit "$mode" "$ns" "$out" "$unit" "$m" "$parts/$unit" &
  done
  wait
  for unit in "${todo[@]}"; do
    cat "$parts/$unit" 2>/dev/null
  done >>"$out/results"
  rm -rf "$parts"
}


case ${1:-} in
prepare) prepare ;;
units) units ;;
# The plain run first, then the shim's, bounded by the plain run's times.
order) echo plain-first ;;
run) shift; [ $# -ge 3 ] || { echo "usage: cpython.sh run MODE NS OUTDIR [LIST]" >&2; exit 2; }
     run "$@" ;;
*) echo "usage: cpython.sh prepare | units | order | run MODE NS OUTDIR [LIST]" >&2; exit 2 ;;
esac
