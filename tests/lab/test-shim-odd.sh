#!/bin/bash
# Programs that do odd things between connect() and the first write, when
# libtfo_preload.so holds the SYN back (issue 8, hardening): an fd closed
# by another thread during the first write or a poll, fork, exec, a signal
# handler writing to a held socket, fcntl flag changes (tests/lab/shim-odd.c
# says what each scenario does). Each runs under the shim and, as a
# control, without it, over IPv4 and IPv6 at 20 ms RTT. Checked: exit
# status within a time bound, the program's own checks (answers, errno,
# write counts, flags), no fd leaked, the server saw every request exactly
# once with its byte count (and a request whose fd was closed under it at
# most once), the shim's negative cache (one per run) still trusts the
# server (an odd program is no evidence against a path), and that the
# moment mattered: under the shim every key
# connection still held its SYN after connect, without it none did.
set -eu
here=$(dirname -- "$0")
. "$here/lab.sh"
. "$here/shim.sh"
lab_require
ODD=$top_builddir/tests/lab/shim-odd
[ -x "$ODD" ] || { echo "SKIP: $ODD not built"; exit 77; }
[ -e "$SHIM" ] || { echo "SKIP: $SHIM not built"; exit 77; }
TFOCTL=$top_builddir/tools/tfoctl
[ -x "$TFOCTL" ] || { echo "SKIP: $TFOCTL not built"; exit 77; }

RTT=20
# ODD_SCENARIOS: a subset (repeated runs of one scenario, tests/README).
SCENARIOS=${ODD_SCENARIOS:-close fork exec signal malloc fcntl}
for scen in $SCENARIOS; do
  case $scen in close | fork | exec | signal | malloc | fcntl) ;;
  *) echo "ODD_SCENARIOS: unknown scenario '$scen' (close fork exec signal malloc fcntl)" >&2
     exit 99 ;;
  esac
done
lab_up --rtt "$RTT" || exit 99
lab_server_bg -p 8000 -q 64 >"$LAB_DIR/srv4.log" 2>&1
lab_server_bg -p 8001 -q 64 -b HI >"$LAB_DIR/srv4b.log" 2>&1
lab_server_bg -6 -p 8002 -q 64 >"$LAB_DIR/srv6.log" 2>&1
lab_server_bg -6 -p 8003 -q 64 -b HI >"$LAB_DIR/srv6b.log" 2>&1
for p in 8000 8001; do lab_wait_port $p v4 || exit 99; done
for p in 8002 8003; do lab_wait_port $p v6 || exit 99; done

# Under ASan (shim.sh set ASAN_OPTIONS) this program is ours: leaks count.
[ -n "${ASAN_OPTIONS:-}" ] && export ASAN_OPTIONS=$ASAN_OPTIONS:detect_leaks=1

t_start=$(date +%s%N)
run_base=1000

# Waits (bounded) until the server logs of FAM hold a line for each size
# in "sent" lines of OUT; then prints how many lines have bytes=SIZE.
_count() { # LOGS... SIZE
  local size=${!#}
  cat "${@:1:$#-1}" | grep -c -- " bytes=$size syn_data=" || true
}

# odd MODE FAM SCENARIO: one run and its checks.
odd() {
  local mode=$1 fam=$2 scen=$3 host port bport logs base out rc t0 ms n c
  local want held keys before after bad=0 i

  case $fam in
  4) host=$LAB_S_IP4 port=8000 bport=8001
     logs=("$LAB_DIR/srv4.log" "$LAB_DIR/srv4b.log") ;;
  6) host=$LAB_S_IP6 port=8002 bport=8003
     logs=("$LAB_DIR/srv6.log" "$LAB_DIR/srv6b.log") ;;
  esac
  base=$run_base
  run_base=$((run_base + 100))
  out=$LAB_DIR/$mode-$fam-$scen
  t0=$(date +%s%N)
  rc=0
  if [ "$mode" = shim ]; then
    # Starts from the warmed cache: the shim holds a SYN only for a
    # destination it has seen accepting.
    cp "$LAB_DIR/warm$fam.cache" "$out.cache"
    SHIM_CACHE=$out.cache shim_c timeout -k 5 20 "$ODD" "$scen" "$host" "$port" \
      "$bport" "$base" >"$out.out" 2>"$out.err" || rc=$?
  else
    lab_c timeout -k 5 20 "$ODD" "$scen" "$host" "$port" "$bport" "$base" \
      >"$out.out" 2>"$out.err" || rc=$?
  fi
  ms=$((($(date +%s%N) - t0) / 1000000))
  local tag="$scen $mode IPv$fam"
  sed 's/^/  | /' "$out.err" | head -n 8
  lab_check "$tag: exit 0 within 20 s (rc=$rc, $ms ms)" test "$rc" = 0

  read -r held keys < <(awk -F'[= ]' '/^held=/ { print $2, $4 }' "$out.out")
  read -r before after < <(awk -F'[= ]' '/^fds / { print $3, $5 }' "$out.out")
  lab_check "$tag: no fd leaked (${before:-?} -> ${after:-?})" \
    test -n "${before:-}" -a "${before:-x}" = "${after:-y}"
  if [ "$mode" = shim ]; then
    want=${keys:-x}
  else
    want=0
  fi
  lab_check "$tag: SYN held after connect on ${held:-?} of ${keys:-?} key connections (want $want)" \
    test -n "${keys:-}" -a "${keys:-0}" -gt 0 -a "${held:-x}" = "$want"

  # Every "sent" request exactly once (the last lines may still be on
  # their way to the log: bounded wait), every "maybe" at most once.
  local sent maybe
  sent=$(awk '$1 == "sent" { print $2 }' "$out.out")
  maybe=$(awk '$1 == "maybe" { print $2 }' "$out.out")
  n=$(printf '%s\n' $sent | grep -c . || true)
  for ((i = 0; i < 40; i++)); do
    bad=0
    for c in $sent; do
      [ "$(_count "${logs[@]}" "$c")" = 1 ] || bad=1
    done
    [ $bad = 0 ] && break
    sleep 0.05
  done
  local detail=
  for c in $sent; do
    [ "$(_count "${logs[@]}" "$c")" = 1 ] ||
      detail="$detail $c:$(_count "${logs[@]}" "$c")"
  done
  for c in $maybe; do
    [ "$(_count "${logs[@]}" "$c")" -le 1 ] ||
      detail="$detail $c:$(_count "${logs[@]}" "$c")(maybe)"
  done
  lab_check "$tag: $n requests answered, each seen once by the server${detail:+ (bad:$detail)}" \
    test "$n" -gt 0 -a -z "$detail"

  if [ "$mode" = shim ]; then
    # Destinations the cache would no longer try TFO with, or count
    # failures against.
    detail=$(lab_c "$TFOCTL" --cache "$out.cache" cache list 2>&1 |
      awk 'NR > 1 && $1 !~ /^[(]/ && ($2 != "try" || $4 != 0)')
    lab_check "$tag: the negative cache still trusts the server${detail:+ ($detail)}" \
      test -z "$detail"
  fi
}

for fam in 4 6; do
  case $fam in 4) host=$LAB_S_IP4 ;; 6) host=$LAB_S_IP6 ;; esac
  # The cookie (per address pair), so that the shim holds the SYNs.
  SHIM_CACHE=$LAB_DIR/warm$fam.cache shim_c "$ODD" warm "$host" $((8000 + 2 * (fam / 6))) \
    $((8001 + 2 * (fam / 6))) 900 >/dev/null 2>&1 || true
  for scen in $SCENARIOS; do
    for mode in plain shim; do
      odd "$mode" "$fam" "$scen"
    done
  done
done

total_ms=$((($(date +%s%N) - t_start) / 1000000))
echo "figure: $((_LAB_NPASS + _LAB_NFAIL)) checks in $total_ms ms"
lab_finish
