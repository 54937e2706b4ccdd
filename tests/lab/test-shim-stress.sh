#!/bin/bash
# A threaded client with dup/dup2/dup3/F_DUPFD churn, forks and execs runs
# clean under libtfo_preload.so (issue: shim): every exchange right, no
# error, TFO used. CI runs it again with everything built under ASan+UBSan.
set -eu
here=$(dirname -- "$0")
. "$here/lab.sh"
. "$here/shim.sh"
lab_require
STRESS=$top_builddir/tests/lab/shim-stress
[ -x "$STRESS" ] || { echo "SKIP: $STRESS not built"; exit 77; }

lab_up --rtt 2 || exit 99
lab_server_bg -p 8000 -q 4096 >/dev/null 2>&1
lab_wait_port 8000 v4 || exit 99

# Under ASan (shim.sh set ASAN_OPTIONS) this program is ours: leaks count.
[ -n "${ASAN_OPTIONS:-}" ] && export ASAN_OPTIONS=$ASAN_OPTIONS:detect_leaks=1

shim_c "$STRESS" "$LAB_S_IP4" 8000 1 3 >/dev/null # the cookie
a0=$(lab_counter c TCPFastOpenActive)
out=$(shim_c "$STRESS" "$LAB_S_IP4" 8000 16 150 2>"$LAB_DIR/err") || true
rise=$(( $(lab_counter c TCPFastOpenActive) - a0 ))
echo "16 threads x 150 connections: $out, TCPFastOpenActive +$rise"
head -n 5 "$LAB_DIR/err"
lab_check "16 threads x 150 connections with fd churn and forks: $out" \
  test "$out" = "ok=2424 errors=0"
lab_check_range "TFO used by most connections" "$rise" 2000 2418

lab_finish
