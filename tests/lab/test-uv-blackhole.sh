#!/bin/bash
# test-uv-blackhole.sh: a path that drops TFO SYNs (lab mode blackhole, 50
# ms RTT) costs one libtfo-uv connection a short fallback, on the loop's
# timers, and nothing after that.
#
#   - with a cookie cached, the first tfo_uv_connect through the blackhole
#     reports fallback and gets its complete answer well under 1 s (the
#     kernel alone takes > 1 s, test-lab-blackhole.sh);
#   - meanwhile the loop keeps serving its other handles: a 5 ms timer is
#     never late by more than 30 ms (max_gap_ms) and plain requests running
#     beside it on the same loop complete (bg_ok);
#   - later tfo_uv_connect requests are skipped (negative cache) and take a
#     plain 1.8-2.6 RTT.
# Skips (77) when libtfo-uv was not built (no libuv).

set -eu
. "$(dirname -- "$0")/lab.sh"
lab_require
UV_EX=${top_builddir:-$LAB_BIN/../..}/examples
for t in uv-client uv-server; do
  if [ ! -x "$UV_EX/$t" ]; then
    echo "SKIP: $UV_EX/$t not built (libtfo-uv needs libuv)"
    exit 77
  fi
done

RTT=50
PORT=8102

lab_up --rtt "$RTT" || exit 99
export LIBTFO_CACHE=$LAB_DIR/cache
DST=$LAB_S_IP4
lab_s_bg "$UV_EX/uv-server" -p "$PORT" -v >"$LAB_DIR/server.log" 2>&1
lab_wait_port "$PORT" v4 || exit 99
echo "lab: RTT $RTT ms, $LAB_C -> $LAB_S ($DST), uv-server on $PORT"

# client ARGS...: uv-client -v; per-request lines in $reqs, the summary in
# $sum, exit status in $rc.
client() {
  local out
  rc=0
  out=$(lab_c "$UV_EX/uv-client" -v "$@" "$DST" "$PORT" 2>>"$LAB_DIR/client.err") ||
    rc=$?
  reqs=$(printf '%s\n' "$out" | grep '^req=' || true)
  sum=$(printf '%s\n' "$out" | grep '^requests=' || true)
  printf '%s\n' "$reqs" | sed 's/^/  /'
}

rtts() {
  awk -v ms="$1" -v rtt="$RTT" 'BEGIN { printf "%.2f", ms / rtt }'
}

count() {
  printf '%s\n' "$reqs" | grep -c " $1\( \|$\)" || true
}

# A cookie, and the RTT in the negative cache, from a clean path.
client -n 1
client -n 1
lab_check "mode none: cookie cached, outcome=data-acked" \
  [ "$rc/$(lab_field outcome "$reqs")" = 0/data-acked ]

lab_mode blackhole || exit 99
client -n 1 -b 2
echo "  $sum"
lab_check "blackhole: first request falls back, answer complete (rc $rc)" \
  [ "$rc/$(lab_field outcome "$reqs")/$(lab_field resp "$reqs")" = "0/fallback/OK 6" ]
lab_check_range "blackhole: fallback request, ms (race after $(lab_field fallback_ms "$reqs") ms)" \
  "$(lab_field ms "$reqs")" 100 600
lab_check_range "blackhole: meanwhile, longest the loop went without its 5 ms timer, ms" \
  "$(lab_field max_gap_ms "$sum")" 0 30
lab_check_range "blackhole: meanwhile, plain requests completed beside it on the loop" \
  "$(lab_field bg_ok "$sum")" 2 1000

client -n 3
lab_check "blackhole: later requests 3/3 skipped by the negative cache" \
  [ "$(count outcome=skipped)" = 3 ]
lab_check "blackhole: later requests 3/3 answered (rc $rc)" \
  [ "$rc/$(lab_field ok "$sum")" = 0/3 ]
lab_check_range "blackhole: skipped request, in RTT (plain connection)" \
  "$(rtts "$(lab_field p50_ms "$sum")")" 1.8 2.6

lab_finish
