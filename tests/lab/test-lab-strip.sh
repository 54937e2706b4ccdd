#!/bin/bash
# test-lab-strip.sh: strip mode (option 34 removed from SYNs at the server's
# edge, 50 ms RTT, cookie cached first in mode none). The server gets a SYN
# with data but no cookie, drops the data and the client sends it again
# after the handshake: every byte still arrives (the response counts them),
# the client reports client_fail=2 or syn_data=0, and no SYN timeout is paid.

set -eu
. "$(dirname -- "$0")/lab.sh"
lab_require

RTT=50
PORT=8003

lab_up --rtt "$RTT" || exit 99
lab_server_bg -6 -p "$PORT" -q 16 >"$LAB_DIR/server.log"
lab_wait_port "$PORT" v6 || exit 99
echo "lab: RTT $RTT ms, $LAB_C -> $LAB_S"

# req DST MODE SIZE: one request; its result line in $line, status in $rc.
req() {
  rc=0
  line=$(lab_client -m "$2" -s "$3" "$1" "$PORT" 2>>"$LAB_DIR/client.err") ||
    rc=$?
  echo "  [$LAB_MODE] $2 $3 B to $1: $line (exit $rc)"
}

rtts() {
  awk -v ms="$1" -v rtt="$RTT" 'BEGIN { printf "%.2f", ms / rtt }'
}

for dst in "$LAB_S_IP4" "$LAB_S_IP6"; do
  lab_mode none || exit 99
  req "$dst" tfo 16
  req "$dst" tfo 16
  lab_check "$dst mode none: cookie cached, syn_data=1" \
    [ "$(lab_field syn_data "$line")" = 1 ]

  lab_mode strip || exit 99
  passive0=$(lab_counter s TCPFastOpenPassive)
  # 16 B fit in the SYN; 1000 B about fill it; 5000 B do not fit.
  for mode in tfo msgfastopen; do
    for size in 16 1000 5000; do
      req "$dst" "$mode" "$size"
      lab_check "$dst strip $mode $size B: server counted every byte ($(lab_field resp "$line"))" \
        [ "$rc/$(lab_field resp "$line")" = "0/OK $size" ]
      fail=$(lab_field client_fail "$line")
      syn=$(lab_field syn_data "$line")
      lab_check "$dst strip $mode $size B: client_fail=$fail syn_data=$syn (want 2 or 0)" \
        [ "$fail" = 2 -o "$syn" = 0 ]
      lab_check_range "$dst strip $mode $size B: no SYN timeout, in RTT" \
        "$(rtts "$(lab_field ms "$line")")" 1.8 3.6
    done
  done
  passive=$(( $(lab_counter s TCPFastOpenPassive) - passive0 ))
  lab_check "$dst strip: server TCPFastOpenPassive rose by $passive (want 0)" \
    [ "$passive" = 0 ]
done

took=$(grep -c 'syn_data=1' "$LAB_DIR/server.log" || true)
lab_check "server log: $took connections took SYN data (want 2, the mode-none ones)" \
  [ "$took" = 2 ]

lab_finish
