#!/bin/bash
# test-lab-rtt.sh: the lab's emulated RTT is right, and kernel TFO saves
# one round trip through it.
#
# At 50 ms RTT: a plain connect+request+response takes 1.8-2.6 RTT; a repeat
# kernel-TFO request (TCP_FASTOPEN_CONNECT, cookie cached) and a repeat
# sendto(MSG_FASTOPEN) take 0.9-1.4 RTT with syn_data=1; TCPFastOpenActive
# rises on the client and TCPFastOpenPassive on the server by the number of
# such requests. Medians of a few runs. LAB_TEST_FAMILY=6 runs it over IPv6
# (that is test-lab-ipv6.sh).

set -eu
. "$(dirname -- "$0")/lab.sh"
lab_require

RTT=50
RUNS=5
PORT=8001
FAMILY=${LAB_TEST_FAMILY:-4}

lab_up --rtt "$RTT" || exit 99

if [ "$FAMILY" = 6 ]; then
  DST=$LAB_S_IP6
  lab_server_bg -6 -p "$PORT" -q 16 >"$LAB_DIR/server.log"
  lab_wait_port "$PORT" v6 || exit 99
else
  DST=$LAB_S_IP4
  lab_server_bg -p "$PORT" -q 16 >"$LAB_DIR/server.log"
  lab_wait_port "$PORT" v4 || exit 99
fi
echo "lab: IPv$FAMILY, RTT $RTT ms, $LAB_C -> $LAB_S ($DST)"

# run_series MODE COUNT: runs lab-client COUNT times. Sets series_med (median
# ms), series_syn (runs with syn_data=1), series_bad (failed runs or wrong
# responses). Prints every run, indented.
run_series() {
  local mode=$1 count=$2 i line out=

  series_syn=0
  series_bad=0
  for ((i = 0; i < count; i++)); do
    if ! line=$(lab_client -m "$mode" "$DST" "$PORT"); then
      echo "  $mode run $i failed: $line"
      series_bad=$((series_bad + 1))
      continue
    fi
    echo "  $mode: $line"
    [ "$(lab_field resp "$line")" = "OK 16" ] ||
      series_bad=$((series_bad + 1))
    if [ "$(lab_field syn_data "$line")" = 1 ]; then
      series_syn=$((series_syn + 1))
    fi
    out+="$(lab_field ms "$line")"$'\n'
  done
  series_med=$(printf '%s' "$out" | lab_median) || series_med=none
}

rtts() {
  awk -v ms="$1" -v rtt="$RTT" 'BEGIN { printf "%.2f", ms / rtt }'
}

active0=$(lab_counter c TCPFastOpenActive)
passive0=$(lab_counter s TCPFastOpenPassive)

run_series plain "$RUNS"
lab_check_range "plain request/response: median $series_med ms, in RTT" \
  "$(rtts "$series_med")" 1.8 2.6
lab_check "plain: $RUNS/$RUNS responses count every byte" \
  [ "$series_bad" = 0 ]
lab_check "plain: syn_data=0 in every run ($series_syn with 1)" \
  [ "$series_syn" = 0 ]

# First TFO connection: no cookie yet, so a cookie request and a normal
# handshake. It fills the cache for the repeats.
line=$(lab_client -m tfo "$DST" "$PORT") || true
echo "  tfo (no cookie): $line"
lab_check "first TFO request: no cookie yet, syn_data=0 client_fail=1 ($line)" \
  [ "$(lab_field syn_data "$line")/$(lab_field client_fail "$line")" = 0/1 ]

run_series tfo "$RUNS"
lab_check_range "repeat TFO_CONNECT request: median $series_med ms, in RTT" \
  "$(rtts "$series_med")" 0.9 1.4
lab_check "TFO_CONNECT: syn_data=1 in $series_syn/$RUNS runs" \
  [ "$series_syn" = "$RUNS" ]
lab_check "TFO_CONNECT: $RUNS/$RUNS responses count every byte" \
  [ "$series_bad" = 0 ]

run_series msgfastopen "$RUNS"
lab_check_range "repeat MSG_FASTOPEN request: median $series_med ms, in RTT" \
  "$(rtts "$series_med")" 0.9 1.4
lab_check "MSG_FASTOPEN: syn_data=1 in $series_syn/$RUNS runs" \
  [ "$series_syn" = "$RUNS" ]
lab_check "MSG_FASTOPEN: $RUNS/$RUNS responses count every byte" \
  [ "$series_bad" = 0 ]

active=$(( $(lab_counter c TCPFastOpenActive) - active0 ))
passive=$(( $(lab_counter s TCPFastOpenPassive) - passive0 ))
lab_check "client TCPFastOpenActive rose by $active (want $((2 * RUNS)))" \
  [ "$active" = $((2 * RUNS)) ]
lab_check "server TCPFastOpenPassive rose by $passive (want $((2 * RUNS)))" \
  [ "$passive" = $((2 * RUNS)) ]

accepted=$(grep -c 'syn_data=1' "$LAB_DIR/server.log" || true)
lab_check "server log: $accepted connections took data from the SYN" \
  [ "$accepted" = $((2 * RUNS)) ]

lab_finish
