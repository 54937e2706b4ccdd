#!/bin/bash
# Async-signal safety (issue 14). shim-stress -s: a 1 ms SIGALRM handler
# does whole exchanges (socket, connect, write, read, close) on whichever
# thread it interrupts (one at most every other ms), while the main thread and two others make 3334
# connections each (fd churn, and every 500th on the main thread a fork
# child's exchange, an exec and a vfork child's exec with a held fd open).
# Run plainly and under the shim, SIGNAL_RUNS times each (default 5; the
# 100-run figure is in tests/README): every run ends (no hang) with every
# exchange answered, the handler's too, and under the shim TFO was used.
# The shim before this issue hung in every run (a handler waiting for a
# lock its own thread held).
set -eu
here=$(dirname -- "$0")
. "$here/lab.sh"
. "$here/shim.sh"
lab_require
STRESS=$top_builddir/tests/lab/shim-stress
[ -x "$STRESS" ] || { echo "SKIP: $STRESS not built"; exit 77; }
[ -e "$SHIM" ] || { echo "SKIP: $SHIM not built"; exit 77; }

RUNS=${SIGNAL_RUNS:-5}
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "SIGNAL_RUNS='$RUNS': expected a count" >&2; exit 99; }
THREADS=3 CONNS=3334 FORK_EVERY=500
# 3 x 3334, and 4 more for each of the 7 fork rounds of the main thread.
WANT="ok=10030 errors=0"
LIMIT=120 # seconds; a run takes 3-4 s here (15-40 under ASan)

lab_up || exit 99
lab_server_bg -p 8000 -q 4096 >/dev/null 2>&1
lab_wait_port 8000 v4 || exit 99

# Under ASan (shim.sh set ASAN_OPTIONS) this program is ours: leaks count.
[ -n "${ASAN_OPTIONS:-}" ] && export ASAN_OPTIONS=$ASAN_OPTIONS:detect_leaks=1

shim_c "$STRESS" "$LAB_S_IP4" 8000 1 3 >/dev/null # the cookie
hangs=0
for ((i = 1; i <= RUNS; i++)); do
  for mode in plain shim; do
    run=lab_c
    [ $mode = shim ] && run=shim_c
    a0=$(lab_counter c TCPFastOpenActive)
    t0=$(date +%s%N)
    rc=0
    out=$($run timeout -k 5 $LIMIT "$STRESS" -s "$LAB_S_IP4" 8000 $THREADS $CONNS \
      $FORK_EVERY 2>"$LAB_DIR/err") || rc=$?
    ms=$((($(date +%s%N) - t0) / 1000000))
    rise=$(($(lab_counter c TCPFastOpenActive) - a0))
    [ $rc = 124 ] && hangs=$((hangs + 1))
    head -n 3 "$LAB_DIR/err" | sed 's/^/  | /'
    handled=$(sed -n 's/.* handled=\([0-9]*\) .*/\1/p' <<<"$out")
    lab_check "run $i $mode: exit 0 in $ms ms (rc=$rc): $out" \
      test $rc = 0 -a "${out% handled=*}" = "$WANT"
    lab_check "run $i $mode: the handler ran and every exchange of its was answered" \
      test "${handled:-0}" -gt 0 -a -n "$(grep -o ' handler_errors=0$' <<<"$out")"
    if [ $mode = shim ]; then
      # Every exchange may use TFO, the handler's too (those that interrupt
      # the shim itself go straight to libc, plainly).
      lab_check_range "run $i shim: TFO used (TCPFastOpenActive +$rise)" "$rise" 5000 \
        $((10030 + ${handled:-0}))
    fi
  done
done
echo "runs: $RUNS plain + $RUNS shim, hangs: $hangs"
lab_finish
